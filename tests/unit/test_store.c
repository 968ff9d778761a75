/* Unit tests for agent/store.c and agent/app.c: the app store's indexes and
 * lookups, reference counting of apps, the state and status an app reports,
 * and the exit record kept for each app. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "app.h"
#include "store.h"
#include "util.h"

#define ID_A "aaaa0000000000000000000000000001"
#define ID_B "aaaa0000000000000000000000000002"
#define ID_C "bbbb0000000000000000000000000003"
#define ID_D "cccc0000000000000000000000000004"
_Static_assert(sizeof(ID_A) == PM_APP_ID_LEN + 1 && sizeof(ID_B) == PM_APP_ID_LEN + 1 &&
                       sizeof(ID_C) == PM_APP_ID_LEN + 1 && sizeof(ID_D) == PM_APP_ID_LEN + 1,
               "test ids are whole ids");

static char *xstrdup(const char *s) {
        char *d = strdup(s);
        assert_non_null(d);
        return d;
}

/* A record as protobuf-c would unpack it: every string, array and message
 * on the heap, so podmutator__v1__app_record__free_unpacked() frees it all. */
static PmAppRecord *record_new(const char *id, const char *ns, const char *name) {
        PmAppRecord *rec = malloc(sizeof(*rec));
        PmAppSpec *spec = malloc(sizeof(*spec));

        assert_non_null(rec);
        assert_non_null(spec);
        podmutator__v1__app_record__init(rec);
        podmutator__v1__app_spec__init(spec);
        rec->id = xstrdup(id);
        rec->created_at = 1000;
        rec->spec = spec;
        spec->name = xstrdup(name);
        if (ns)
                spec->namespace_ = xstrdup(ns);
        spec->argv = malloc(2 * sizeof(char *));
        assert_non_null(spec->argv);
        spec->argv[0] = xstrdup("/bin/app");
        spec->argv[1] = xstrdup("--flag");
        spec->n_argv = 2;
        return rec;
}

static App *app_new(const char *id, const char *ns, const char *name) {
        App *a = pm_app_new(record_new(id, ns, name));
        assert_non_null(a);
        return a;
}

/* Adds a new app to s and leaves the store the only owner. */
static App *store_add_new(Store *s, const char *id, const char *ns, const char *name) {
        App *a = app_new(id, ns, name);

        assert_int_equal(pm_store_add(s, a), 0);
        pm_app_unref(a);
        return a;
}

static void store_donep(Store *s) { pm_store_done(s); }
#define _cleanup_store_ _cleanup_(store_donep)

/* The ids of the store in creation order, joined by ','. */
static void assert_order(const Store *s, const char *want) {
        char got[512] = "";
        size_t n = 0;

        for (App *a = s->first; a; a = a->next) {
                if (a != s->first)
                        strcat(got, ",");
                strcat(got, a->id);
                n++;
                /* The back links agree with the forward ones. */
                assert_ptr_equal(a->prev ? a->prev->next : s->first, a);
        }
        assert_string_equal(got, want);
        assert_int_equal(n, s->count);
        if (s->last)
                assert_null(s->last->next);
        else
                assert_null(s->first);
}

static void test_app_new_derives_unit_and_name_key(void **state) {
        _cleanup_(pm_app_unrefp) App *a = app_new(ID_A, "team-a", "web");
        _cleanup_(pm_app_unrefp) App *b = app_new(ID_B, NULL, "web");

        assert_int_equal(a->n_ref, 1);
        assert_string_equal(a->id, ID_A);
        assert_string_equal(a->unit, "pm-app@" ID_A ".service");
        assert_string_equal(a->name_key, "team-a/web");
        assert_int_equal(a->active, UNIT_UNLOADED);
        assert_false(a->exit.known);
        assert_false(a->removed);
        /* An empty namespace is the default one. */
        assert_string_equal(b->name_key, "default/web");
}

static void test_store_get_finds_added_app_by_id(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        App *b = store_add_new(&s, ID_B, NULL, "db");
        assert_ptr_equal(pm_store_get(&s, ID_A), a);
        assert_ptr_equal(pm_store_get(&s, ID_B), b);
        assert_null(pm_store_get(&s, ID_C));
        assert_null(pm_store_get(&s, "aaaa"));
        assert_int_equal(s.count, 2);
}

static void test_store_get_by_name_is_scoped_to_namespace(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        App *b = store_add_new(&s, ID_B, "team-a", "web");
        assert_ptr_equal(pm_store_get_by_name(&s, "default", "web"), a);
        assert_ptr_equal(pm_store_get_by_name(&s, "team-a", "web"), b);
        assert_null(pm_store_get_by_name(&s, "team-b", "web"));
        assert_null(pm_store_get_by_name(&s, "default", "db"));
}

static void test_store_get_by_name_handles_longest_names(void **state) {
        char name[64], ns[64];
        _cleanup_store_ Store s;

        memset(name, 'n', 63);
        name[63] = '\0';
        memset(ns, 's', 63);
        ns[63] = '\0';
        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, ns, name);
        assert_ptr_equal(pm_store_get_by_name(&s, ns, name), a);
}

static void test_store_add_takes_a_reference(void **state) {
        _cleanup_store_ Store s;
        App *a = app_new(ID_A, NULL, "web");

        pm_store_init(&s);
        assert_int_equal(pm_store_add(&s, a), 0);
        assert_int_equal(a->n_ref, 2);
        pm_app_unref(a);
        assert_int_equal(a->n_ref, 1);
}

static void test_store_add_refuses_duplicate_name_in_namespace(void **state) {
        _cleanup_store_ Store s;
        _cleanup_(pm_app_unrefp) App *dup = app_new(ID_B, NULL, "web");
        _cleanup_(pm_app_unrefp) App *dup_explicit = app_new(ID_C, "default", "web");

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        assert_int_equal(pm_store_add(&s, dup), -EEXIST);
        /* "" and "default" are the same namespace. */
        assert_int_equal(pm_store_add(&s, dup_explicit), -EEXIST);
        /* A refused add leaves the store and the app as they were. */
        assert_int_equal(dup->n_ref, 1);
        assert_int_equal(s.count, 1);
        assert_ptr_equal(pm_store_get_by_name(&s, "default", "web"), a);
        assert_null(pm_store_get(&s, ID_B));
        assert_order(&s, ID_A);
}

static void test_store_add_allows_same_name_in_other_namespace(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        store_add_new(&s, ID_A, NULL, "web");
        store_add_new(&s, ID_B, "team-a", "web");
        assert_int_equal(s.count, 2);
}

static void test_store_add_refuses_duplicate_id(void **state) {
        _cleanup_store_ Store s;
        _cleanup_(pm_app_unrefp) App *dup = app_new(ID_A, NULL, "other");

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        assert_int_equal(pm_store_add(&s, dup), -EEXIST);
        assert_int_equal(dup->n_ref, 1);
        assert_ptr_equal(pm_store_get(&s, ID_A), a);
        assert_null(pm_store_get_by_name(&s, "default", "other"));
        assert_order(&s, ID_A);
}

static void test_store_add_refuses_app_past_limit(void **state) {
        _cleanup_store_ Store s;
        char id[PM_APP_ID_LEN + 1], name[32];

        pm_store_init(&s);
        for (unsigned i = 0; i < PM_APPS_MAX; i++) {
                snprintf(id, sizeof(id), "%032x", i);
                snprintf(name, sizeof(name), "app-%u", i);
                store_add_new(&s, id, NULL, name);
        }
        _cleanup_(pm_app_unrefp) App *extra = app_new("ffffffffffffffffffffffffffffffff", NULL, "extra");
        assert_int_equal(pm_store_add(&s, extra), -ENOSPC);
        assert_int_equal(s.count, PM_APPS_MAX);
        assert_int_equal(extra->n_ref, 1);
}

static void test_resolve_finds_exact_id(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        store_add_new(&s, ID_B, NULL, "db");
        assert_int_equal(pm_store_resolve(&s, ID_A, NULL, &got), 0);
        assert_ptr_equal(got, a);
        /* An exact id wins even though it is also a prefix of nothing else
         * and the namespace given is another one. */
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, ID_A, "team-z", &got), 0);
        assert_ptr_equal(got, a);
}

static void test_resolve_finds_unique_id_prefix(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        store_add_new(&s, ID_A, NULL, "web");
        store_add_new(&s, ID_B, NULL, "db");
        App *c = store_add_new(&s, ID_C, "team-a", "cache");
        assert_int_equal(pm_store_resolve(&s, "b", NULL, &got), 0);
        assert_ptr_equal(got, c);
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "bbbb0000", "default", &got), 0);
        assert_ptr_equal(got, c);
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "aaaa000000000000000000000000000", NULL, &got), -ENOTUNIQ);
        assert_int_equal(pm_store_resolve(&s, "aaaa0000000000000000000000000002", NULL, &got), 0);
        assert_string_equal(got->id, ID_B);
}

static void test_resolve_refuses_ambiguous_prefix(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        store_add_new(&s, ID_A, NULL, "web");
        store_add_new(&s, ID_B, "team-a", "db");
        assert_int_equal(pm_store_resolve(&s, "a", NULL, &got), -ENOTUNIQ);
        assert_int_equal(pm_store_resolve(&s, "aaaa", NULL, &got), -ENOTUNIQ);
        assert_null(got);
}

static void test_resolve_finds_name_in_namespace(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        App *b = store_add_new(&s, ID_B, "team-a", "web");
        assert_int_equal(pm_store_resolve(&s, "web", NULL, &got), 0);
        assert_ptr_equal(got, a);
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "web", "", &got), 0);
        assert_ptr_equal(got, a);
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "web", "default", &got), 0);
        assert_ptr_equal(got, a);
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "web", "team-a", &got), 0);
        assert_ptr_equal(got, b);
}

static void test_resolve_does_not_find_name_of_other_namespace(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        store_add_new(&s, ID_A, "team-a", "web");
        assert_int_equal(pm_store_resolve(&s, "web", NULL, &got), -ENOENT);
        assert_int_equal(pm_store_resolve(&s, "web", "team-b", &got), -ENOENT);
        assert_null(got);
}

static void test_resolve_prefers_name_over_id_prefix(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        /* "cccc" is both the name of one app and a prefix of another's id. */
        App *named = store_add_new(&s, ID_A, NULL, "cccc");
        App *prefixed = store_add_new(&s, ID_D, NULL, "other");
        assert_int_equal(pm_store_resolve(&s, "cccc", NULL, &got), 0);
        assert_ptr_equal(got, named);
        /* In a namespace without that name, the prefix matches. */
        got = NULL;
        assert_int_equal(pm_store_resolve(&s, "cccc", "team-a", &got), 0);
        assert_ptr_equal(got, prefixed);
}

static void test_resolve_does_not_prefix_match_non_hex_ref(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;
        const char *refs[] = {
                "",
                "aaaaz",
                "AAAA",
                "aaaa-",
                " aaaa",
                "aaaa0000000000000000000000000001 ",
                "aaaa00000000000000000000000000010", /* longer than an id */
                "d-not",                              /* prefix of the odd id */
                "e",                                  /* hex, prefix of none */
        };

        pm_store_init(&s);
        store_add_new(&s, ID_A, NULL, "web");
        /* Real ids are hex; one that is not shows that a ref must be hex to
         * be taken for a prefix at all. */
        store_add_new(&s, "d-not-hex-000000000000000000000a", NULL, "odd");
        for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
                int r = pm_store_resolve(&s, refs[i], NULL, &got);
                if (r != -ENOENT)
                        fail_msg("\"%s\" resolved to %d, want -ENOENT", refs[i], r);
        }
        assert_int_equal(pm_store_resolve(&s, NULL, NULL, &got), -ENOENT);
        assert_null(got);
}

static void test_resolve_in_empty_store_finds_nothing(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        assert_int_equal(pm_store_resolve(&s, "a", NULL, &got), -ENOENT);
        assert_int_equal(pm_store_resolve(&s, "web", NULL, &got), -ENOENT);
        assert_null(got);
}

static void test_store_remove_keeps_creation_order_of_the_rest(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "a");
        App *b = store_add_new(&s, ID_B, NULL, "b");
        App *c = store_add_new(&s, ID_C, NULL, "c");
        App *d = store_add_new(&s, ID_D, NULL, "d");
        assert_order(&s, ID_A "," ID_B "," ID_C "," ID_D);

        pm_store_remove(&s, b); /* middle */
        assert_order(&s, ID_A "," ID_C "," ID_D);
        pm_store_remove(&s, a); /* first */
        assert_order(&s, ID_C "," ID_D);
        pm_store_remove(&s, d); /* last */
        assert_order(&s, ID_C);

        App *b2 = store_add_new(&s, ID_B, NULL, "b");
        assert_order(&s, ID_C "," ID_B);
        assert_ptr_equal(s.last, b2);
        pm_store_remove(&s, c);
        pm_store_remove(&s, b2);
        assert_order(&s, "");
        assert_null(s.first);
        assert_null(s.last);
}

static void test_store_remove_drops_both_indexes(void **state) {
        _cleanup_store_ Store s;
        App *got = NULL;

        pm_store_init(&s);
        App *a = store_add_new(&s, ID_A, NULL, "web");
        pm_store_remove(&s, a);
        assert_null(pm_store_get(&s, ID_A));
        assert_null(pm_store_get_by_name(&s, "default", "web"));
        assert_int_equal(pm_store_resolve(&s, "aaaa", NULL, &got), -ENOENT);
        assert_int_equal(pm_store_resolve(&s, "web", NULL, &got), -ENOENT);
        /* The name and the id are free again. */
        App *again = store_add_new(&s, ID_A, NULL, "web");
        assert_ptr_equal(pm_store_get_by_name(&s, "default", "web"), again);
}

static void test_removed_app_stays_valid_while_referenced(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        App *held = pm_app_ref(store_add_new(&s, ID_A, "team-a", "web"));
        assert_int_equal(held->n_ref, 2);

        pm_store_remove(&s, held);
        /* The in-flight call still reads a whole app. */
        assert_true(held->removed);
        assert_int_equal(held->n_ref, 1);
        assert_string_equal(held->id, ID_A);
        assert_string_equal(held->name_key, "team-a/web");
        assert_string_equal(held->record->spec->name, "web");
        assert_string_equal(held->record->spec->argv[1], "--flag");
        assert_null(held->prev);
        assert_null(held->next);

        /* Removing it again does not drop a reference the store no longer has. */
        pm_store_remove(&s, held);
        assert_int_equal(held->n_ref, 1);
        assert_int_equal(s.count, 0);
        assert_null(pm_app_unref(held));
}

static void test_store_readds_removed_app_and_removes_it_again(void **state) {
        _cleanup_store_ Store s;

        pm_store_init(&s);
        App *a = pm_app_ref(store_add_new(&s, ID_A, NULL, "web"));
        pm_store_remove(&s, a);
        assert_true(a->removed);

        /* Put back, it is a member like any other ... */
        assert_int_equal(pm_store_add(&s, a), 0);
        assert_false(a->removed);
        assert_int_equal(a->n_ref, 2);
        assert_ptr_equal(pm_store_get(&s, ID_A), a);
        assert_order(&s, ID_A);

        /* ... so removing it again takes it out and drops the store's reference. */
        pm_store_remove(&s, a);
        assert_null(pm_store_get(&s, ID_A));
        assert_null(pm_store_get_by_name(&s, "default", "web"));
        assert_order(&s, "");
        assert_int_equal(a->n_ref, 1);
        pm_app_unref(a);
}

static void test_store_done_drops_only_its_own_references(void **state) {
        Store s;

        pm_store_init(&s);
        App *kept = pm_app_ref(store_add_new(&s, ID_A, NULL, "a"));
        store_add_new(&s, ID_B, NULL, "b");
        pm_store_done(&s);
        assert_int_equal(kept->n_ref, 1);
        assert_true(kept->removed);
        assert_string_equal(kept->record->spec->name, "a");
        pm_app_unref(kept);
}

static void test_app_unref_accepts_null(void **state) {
        assert_null(pm_app_unref(NULL));
}

static void test_app_state_follows_unit_and_history(void **state) {
        _cleanup_(pm_app_unrefp) App *a = app_new(ID_A, NULL, "web");

        /* Never started. */
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_CREATED);
        a->active = UNIT_INACTIVE;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_CREATED);

        a->active = UNIT_ACTIVATING;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_STARTING);
        a->active = UNIT_ACTIVE;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING);
        a->active = UNIT_DEACTIVATING;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_STOPPING);

        /* Started once, now gone: exited, whether or not the exit is known. */
        a->record->started_at = 2000;
        a->active = UNIT_UNLOADED;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
        a->active = UNIT_FAILED;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
        /* "active (exited)": ran to its end and was kept loaded. */
        a->active = UNIT_EXITED;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);

        a->record->started_at = 0;
        a->exit.known = true;
        a->active = UNIT_INACTIVE;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);

        /* A restarted app runs, whatever its last exit was. */
        a->active = UNIT_ACTIVE;
        a->exec_started_at = 5000;
        a->exit.finished_at = 4000;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING);
        /* The exit of this run came; ActiveState has not followed yet. */
        a->exit.finished_at = 6000;
        assert_int_equal(pm_app_state(a), PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
}

static App *exited_app(int code, int status, const char *result) {
        App *a = app_new(ID_A, NULL, "web");

        /* Ran to its end and kept loaded, as RemainAfterExit=yes does. */
        a->active = UNIT_EXITED;
        a->record->started_at = 2000;
        a->exit = (AppExit){ .known = true, .code = code, .status = status, .finished_at = 3000 };
        snprintf(a->exit.result, sizeof(a->exit.result), "%s", result);
        return a;
}

static void test_status_reports_exit_reason_code_and_signal(void **state) {
        const struct {
                int code, status;
                const char *result;
                int32_t want_code;
                const char *want_reason, *want_signal;
        } cases[] = {
                { CLD_EXITED, 0, "success", 0, "Completed", "" },
                { CLD_EXITED, 3, "exit-code", 3, "Error", "" },
                { CLD_EXITED, 255, "exit-code", 255, "Error", "" },
                { CLD_KILLED, SIGTERM, "signal", 128 + 15, "Signaled", "TERM" },
                { CLD_KILLED, SIGKILL, "signal", 128 + 9, "Signaled", "KILL" },
                { CLD_DUMPED, SIGSEGV, "core-dump", 128 + 11, "Signaled", "SEGV" },
                { CLD_KILLED, SIGKILL, "oom-kill", 137, "OOMKilled", "KILL" },
                { CLD_EXITED, 1, "oom-kill", 1, "OOMKilled", "" },
                { CLD_KILLED, SIGTERM, "timeout", 143, "TimedOut", "TERM" },
                { CLD_EXITED, 0, "timeout", 0, "TimedOut", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(pm_app_unrefp) App *a = exited_app(cases[i].code, cases[i].status, cases[i].result);
                PmAppStatus st;

                pm_app_fill_status(a, &st);
                assert_int_equal(st.state, PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
                if (st.exit_code != cases[i].want_code || !streq(st.reason, cases[i].want_reason) ||
                    !streq(strempty(st.signal), cases[i].want_signal))
                        fail_msg("case %zu: got exit_code %d reason \"%s\" signal \"%s\"", i, st.exit_code,
                                 st.reason, strempty(st.signal));
                assert_int_equal(st.finished_at, 3000);
                assert_int_equal(st.pid, 0);
        }
}

static void test_status_carries_identity_and_counters(void **state) {
        _cleanup_(pm_app_unrefp) App *a = app_new(ID_A, NULL, "web");
        Podmutator__V1__AppSpec__LabelsEntry label = PODMUTATOR__V1__APP_SPEC__LABELS_ENTRY__INIT;
        Podmutator__V1__AppSpec__LabelsEntry *labels[] = { &label };
        PmAppStatus st;

        label.key = (char *) "tier";
        label.value = (char *) "front";
        a->record->spec->labels = labels;
        a->record->spec->n_labels = 1;
        a->record->created_at = 1111;
        a->record->started_at = 2222;
        a->record->restart_count = 4;
        a->n_restarts = 2;

        pm_app_fill_status(a, &st);
        assert_string_equal(st.id, ID_A);
        assert_string_equal(st.name, "web");
        assert_string_equal(st.namespace_, "default");
        assert_string_equal(st.unit, "pm-app@" ID_A ".service");
        assert_int_equal(st.created_at, 1111);
        assert_int_equal(st.started_at, 2222);
        /* The larger of what was recorded and what was seen since. */
        assert_int_equal(st.restart_count, 4);
        a->n_restarts = 6;
        pm_app_fill_status(a, &st);
        assert_int_equal(st.restart_count, 6);
        assert_int_equal(st.n_labels, 1);
        assert_string_equal(st.labels[0]->key, "tier");
        assert_string_equal(st.labels[0]->value, "front");

        /* Borrowed, not owned: the record must not be freed through them. */
        a->record->spec->labels = NULL;
        a->record->spec->n_labels = 0;
}

static void test_status_of_running_app_has_pid_and_no_exit(void **state) {
        _cleanup_(pm_app_unrefp) App *a = exited_app(CLD_KILLED, SIGTERM, "signal");
        PmAppStatus st;

        /* Restarted after the recorded exit. */
        a->active = UNIT_ACTIVE;
        a->main_pid = 42;
        pm_app_fill_status(a, &st);
        assert_int_equal(st.state, PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING);
        assert_int_equal(st.pid, 42);
        assert_int_equal(st.exit_code, 0);
        assert_string_equal(strempty(st.reason), "");
        assert_string_equal(strempty(st.signal), "");
        assert_int_equal(st.finished_at, 0);

        a->active = UNIT_DEACTIVATING;
        pm_app_fill_status(a, &st);
        assert_int_equal(st.state, PODMUTATOR__V1__APP_STATE__APP_STATE_STOPPING);
        assert_int_equal(st.pid, 42);
}

static void test_status_has_no_pid_unless_running(void **state) {
        _cleanup_(pm_app_unrefp) App *a = app_new(ID_A, NULL, "web");
        PmAppStatus st;

        /* A stale pid from the last run is not reported. */
        a->main_pid = 42;
        pm_app_fill_status(a, &st);
        assert_int_equal(st.state, PODMUTATOR__V1__APP_STATE__APP_STATE_CREATED);
        assert_int_equal(st.pid, 0);
        a->active = UNIT_ACTIVATING;
        pm_app_fill_status(a, &st);
        assert_int_equal(st.pid, 0);
        a->active = UNIT_FAILED;
        a->exit = (AppExit){ .known = true, .code = CLD_EXITED, .status = 1 };
        pm_app_fill_status(a, &st);
        assert_int_equal(st.state, PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
        assert_int_equal(st.pid, 0);
}

static AppExit exit_of(int code, int status, const char *result, int64_t finished_at) {
        AppExit e = { .known = true, .code = code, .status = status, .finished_at = finished_at };

        snprintf(e.result, sizeof(e.result), "%s", result);
        return e;
}

static void test_exit_record_round_trips(void **state) {
        const struct {
                int code, status;
                const char *result, *want_result;
        } cases[] = {
                { CLD_EXITED, 0, "success", "success" },
                { CLD_EXITED, 3, "exit-code", "exit-code" },
                { CLD_EXITED, 255, "exit-code", "exit-code" },
                { CLD_KILLED, SIGTERM, "signal", "signal" },
                { CLD_KILLED, SIGKILL, "oom-kill", "oom-kill" },
                { CLD_DUMPED, SIGSEGV, "core-dump", "core-dump" },
                { CLD_KILLED, SIGABRT, "timeout", "timeout" },
                { CLD_EXITED, 1, "start-limit-hit", "start-limit-hit" },
                { CLD_EXITED, 0, "", "unknown" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                int64_t finished = 1700000000123456789 + (int64_t) i;
                AppExit in = exit_of(cases[i].code, cases[i].status, cases[i].result, finished), out;

                assert_int_equal(pm_app_exit_format(&in, &text), 0);
                assert_non_null(text);
                if (pm_app_exit_parse(text, &out) < 0)
                        fail_msg("case %zu: record \"%s\" not read back", i, text);
                assert_true(out.known);
                assert_int_equal(out.code, cases[i].code);
                assert_int_equal(out.status, cases[i].status);
                assert_int_equal(out.finished_at, finished);
                assert_string_equal(out.result, cases[i].want_result);
        }
}

static void test_exit_format_writes_four_lines(void **state) {
        _cleanup_free_ char *text = NULL;
        AppExit e = exit_of(CLD_KILLED, SIGTERM, "signal", 123);

        assert_int_equal(pm_app_exit_format(&e, &text), 0);
        assert_string_equal(text, "result=signal\ncode=2\nstatus=15\nfinished=123\n");
}

static void test_exit_format_refuses_unknown_exit(void **state) {
        char *sentinel = (char *) "untouched", *text = sentinel;
        AppExit e = exit_of(CLD_EXITED, 0, "success", 1);

        e.known = false;
        assert_int_equal(pm_app_exit_format(&e, &text), -ENODATA);
        assert_ptr_equal(text, sentinel);
}

static void test_exit_parse_rejects_malformed_records(void **state) {
        const char *bad[] = {
                "",
                "garbage",
                "result=success\n",
                "result=success\ncode=1\nstatus=0\n",
                "code=1\nstatus=0\nfinished=1\nresult=success\n",
                "result=\ncode=1\nstatus=0\nfinished=1\n",
                "result=Success\ncode=1\nstatus=0\nfinished=1\n",
                "result=exit_code\ncode=1\nstatus=0\nfinished=1\n",
                "result=success\ncode=0\nstatus=0\nfinished=1\n",
                "result=success\ncode=4\nstatus=0\nfinished=1\n",
                "result=success\ncode=-1\nstatus=0\nfinished=1\n",
                "result=success\ncode=1\nstatus=256\nfinished=1\n",
                "result=success\ncode=1\nstatus=-1\nfinished=1\n",
                "result=success\ncode=1\nstatus=0\nfinished=-1\n",
                "result=success\ncode=x\nstatus=0\nfinished=1\n",
                "result=success\ncode=1\nstatus=0\nfinished=\n",
                "result=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ncode=1\nstatus=0\nfinished=1\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                AppExit e = { .code = -7 };
                int r = pm_app_exit_parse(bad[i], &e);
                if (r != -EBADMSG)
                        fail_msg("record %zu \"%s\": got %d, want -EBADMSG", i, bad[i], r);
                /* Nothing is written on failure. */
                assert_false(e.known);
                assert_int_equal(e.code, -7);
        }
}

static void test_exit_parse_rejects_numbers_that_overflow_or_carry_junk(void **state) {
        /* A damaged record must not read as a plausible exit: 2^32 + 1 is
         * not code 1, 2^32 is not status 0, and "12x" is not 12. */
        const char *bad[] = {
                "result=success\ncode=4294967297\nstatus=0\nfinished=1\n",
                "result=success\ncode=1\nstatus=4294967296\nfinished=1\n",
                "result=success\ncode=1\nstatus=0\nfinished=12x\n",
                "result=success\ncode=1x\nstatus=0\nfinished=12\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                AppExit e = { 0 };
                int r = pm_app_exit_parse(bad[i], &e);
                if (r != -EBADMSG)
                        fail_msg("record %zu \"%s\": got %d (code %d, status %d, finished %lld), want -EBADMSG", i,
                                 bad[i], r, e.code, e.status, (long long) e.finished_at);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_app_new_derives_unit_and_name_key),
                cmocka_unit_test(test_store_get_finds_added_app_by_id),
                cmocka_unit_test(test_store_get_by_name_is_scoped_to_namespace),
                cmocka_unit_test(test_store_get_by_name_handles_longest_names),
                cmocka_unit_test(test_store_add_takes_a_reference),
                cmocka_unit_test(test_store_add_refuses_duplicate_name_in_namespace),
                cmocka_unit_test(test_store_add_allows_same_name_in_other_namespace),
                cmocka_unit_test(test_store_add_refuses_duplicate_id),
                cmocka_unit_test(test_store_add_refuses_app_past_limit),
                cmocka_unit_test(test_resolve_finds_exact_id),
                cmocka_unit_test(test_resolve_finds_unique_id_prefix),
                cmocka_unit_test(test_resolve_refuses_ambiguous_prefix),
                cmocka_unit_test(test_resolve_finds_name_in_namespace),
                cmocka_unit_test(test_resolve_does_not_find_name_of_other_namespace),
                cmocka_unit_test(test_resolve_prefers_name_over_id_prefix),
                cmocka_unit_test(test_resolve_does_not_prefix_match_non_hex_ref),
                cmocka_unit_test(test_resolve_in_empty_store_finds_nothing),
                cmocka_unit_test(test_store_remove_keeps_creation_order_of_the_rest),
                cmocka_unit_test(test_store_remove_drops_both_indexes),
                cmocka_unit_test(test_removed_app_stays_valid_while_referenced),
                cmocka_unit_test(test_store_readds_removed_app_and_removes_it_again),
                cmocka_unit_test(test_store_done_drops_only_its_own_references),
                cmocka_unit_test(test_app_unref_accepts_null),
                cmocka_unit_test(test_app_state_follows_unit_and_history),
                cmocka_unit_test(test_status_reports_exit_reason_code_and_signal),
                cmocka_unit_test(test_status_carries_identity_and_counters),
                cmocka_unit_test(test_status_of_running_app_has_pid_and_no_exit),
                cmocka_unit_test(test_status_has_no_pid_unless_running),
                cmocka_unit_test(test_exit_record_round_trips),
                cmocka_unit_test(test_exit_format_writes_four_lines),
                cmocka_unit_test(test_exit_format_refuses_unknown_exit),
                cmocka_unit_test(test_exit_parse_rejects_malformed_records),
                cmocka_unit_test(test_exit_parse_rejects_numbers_that_overflow_or_carry_junk),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
