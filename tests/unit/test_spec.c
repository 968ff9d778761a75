/* Unit tests for common/spec.c: validation of app specs against the written
 * limits, and the signal and user name helpers it uses. Every rejection
 * must come with a message that names the offending field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/resource.h>

#include "spec.h"
#include "util.h"

typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;
typedef Podmutator__V1__AppSpec__LabelsEntry LabelsEntry;

/* A valid spec that borrows everything; tests change one field at a time. */
typedef struct TestSpec {
        PmAppSpec spec;
        char *argv[2];
        EnvEntry env[2];
        EnvEntry *env_ptrs[2];
        LabelsEntry label;
        LabelsEntry *label_ptrs[1];
        LabelsEntry annotation;
        LabelsEntry *annotation_ptrs[1];
} TestSpec;

static void test_spec_init(TestSpec *t) {
        *t = (TestSpec){ .spec = PODMUTATOR__V1__APP_SPEC__INIT };
        t->spec.name = (char *) "web";
        t->argv[0] = (char *) "/usr/bin/server";
        t->argv[1] = (char *) "--port=8080";
        t->spec.argv = t->argv;
        t->spec.n_argv = 2;
}

/* Also fills every optional field with a valid value. */
static void test_spec_init_full(TestSpec *t) {
        test_spec_init(t);
        t->spec.namespace_ = (char *) "team-a";
        t->env[0] = (EnvEntry) PODMUTATOR__V1__APP_SPEC__ENV_ENTRY__INIT;
        t->env[0].key = (char *) "PATH";
        t->env[0].value = (char *) "/usr/bin:/bin";
        t->env[1] = (EnvEntry) PODMUTATOR__V1__APP_SPEC__ENV_ENTRY__INIT;
        t->env[1].key = (char *) "_private9";
        t->env[1].value = (char *) "";
        t->env_ptrs[0] = &t->env[0];
        t->env_ptrs[1] = &t->env[1];
        t->spec.env = t->env_ptrs;
        t->spec.n_env = 2;
        t->spec.working_dir = (char *) "/srv/app";
        t->spec.rootfs = (char *) "/var/lib/roots/app";
        t->spec.user = (char *) "svc";
        t->spec.group = (char *) "1000";
        t->label = (LabelsEntry) PODMUTATOR__V1__APP_SPEC__LABELS_ENTRY__INIT;
        t->label.key = (char *) "app.kubernetes.io/name";
        t->label.value = (char *) "web";
        t->label_ptrs[0] = &t->label;
        t->spec.labels = t->label_ptrs;
        t->spec.n_labels = 1;
        t->annotation = (LabelsEntry) PODMUTATOR__V1__APP_SPEC__LABELS_ENTRY__INIT;
        t->annotation.key = (char *) "note";
        t->annotation.value = (char *) "any text at all: \"quoted\"\n";
        t->annotation_ptrs[0] = &t->annotation;
        t->spec.annotations = (Podmutator__V1__AppSpec__AnnotationsEntry **) t->annotation_ptrs;
        t->spec.n_annotations = 1;
        t->spec.restart = PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS;
        t->spec.stop_signal = (char *) "SIGINT";
        t->spec.stop_timeout_seconds = 30;
}

static void assert_valid(const PmAppSpec *spec) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = pm_spec_validate(spec, &error);
        if (r < 0)
                fail_msg("valid spec rejected: %s", strempty(error));
        assert_int_equal(r, 0);
        assert_null(error);
        assert_int_equal(pm_spec_validate(spec, NULL), 0);
}

/* The spec is refused with -EINVAL and a message that holds want; what
 * describes the case in a failure report. */
static void assert_invalid(const PmAppSpec *spec, const char *want, const char *what) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = pm_spec_validate(spec, &error);
        if (r >= 0)
                fail_msg("%s: accepted", what);
        assert_int_equal(r, -EINVAL);
        if (!error)
                fail_msg("%s: no message", what);
        if (!strstr(error, want))
                fail_msg("%s: message \"%s\" does not name \"%s\"", what, error, want);
        /* Callers that do not want the message get the same answer. */
        assert_int_equal(pm_spec_validate(spec, NULL), -EINVAL);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void test_accepts_minimal_spec(void **state) {
        TestSpec t;

        test_spec_init(&t);
        assert_valid(&t.spec);
}

static void test_accepts_spec_with_every_field_set(void **state) {
        TestSpec t;

        test_spec_init_full(&t);
        assert_valid(&t.spec);
}

static void test_rejects_bad_names(void **state) {
        _cleanup_free_ char *long_name = repeat('a', 64);
        const char *names[] = {
                "", "a/b", "/web", "..", ".", "we..b", "a\nb", "web\n", "Web", "WEB", "-web", "web-", "we b", "we_b",
                "w\xc3\xa9" "b", "web%", long_name,
        };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                t.spec.name = (char *) names[i];
                assert_invalid(&t.spec, "name:", names[i]);
        }
}

static void test_accepts_dns_label_names(void **state) {
        _cleanup_free_ char *longest = repeat('a', 63);
        const char *names[] = { "a", "0", "web-1", "1-web", "a-b-c", longest };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                t.spec.name = (char *) names[i];
                assert_valid(&t.spec);
        }
}

static void test_namespace_defaults_and_follows_dns_label_rules(void **state) {
        _cleanup_free_ char *long_ns = repeat('n', 64);
        const char *bad[] = { "Default", "a/b", "..", "kube system", "ns\n", "-ns", long_ns };
        TestSpec t;

        test_spec_init(&t);
        t.spec.namespace_ = (char *) "";
        assert_valid(&t.spec);
        assert_string_equal(pm_spec_namespace(&t.spec), PM_DEFAULT_NAMESPACE);
        t.spec.namespace_ = NULL;
        assert_string_equal(pm_spec_namespace(&t.spec), "default");

        t.spec.namespace_ = (char *) "kube-system";
        assert_valid(&t.spec);
        assert_string_equal(pm_spec_namespace(&t.spec), "kube-system");

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t.spec.namespace_ = (char *) bad[i];
                assert_invalid(&t.spec, "namespace:", bad[i]);
        }
}

static void test_rejects_empty_argv(void **state) {
        TestSpec t;

        test_spec_init(&t);
        t.spec.n_argv = 0;
        assert_invalid(&t.spec, "argv", "no argv");
}

static void test_rejects_argv0_that_systemd_would_read_as_prefix(void **state) {
        const char *cmds[] = {
                "@/bin/sh", "-/bin/sh", "+/bin/sh", "!/bin/sh", "!!/bin/sh", ":/bin/sh", "@sh", "-sh", "",
                " /bin/sh", "$SHELL", "%h/bin/app", "\"/bin/sh\"", "'/bin/sh'", ";", "\\/bin/sh",
        };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                t.argv[0] = (char *) cmds[i];
                assert_invalid(&t.spec, "argv[0]", cmds[i]);
        }
}

static void test_rejects_relative_argv0_with_slash(void **state) {
        const char *cmds[] = { "bin/sh", "./run", "../bin/run", "a/", ".local/bin/x" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                t.argv[0] = (char *) cmds[i];
                assert_invalid(&t.spec, "argv[0]", cmds[i]);
        }
}

static void test_rejects_argv0_with_control_chars_or_backslash(void **state) {
        const char *cmds[] = { "/bin/s\nh", "/bin/sh\n", "/bin/s\th", "/bin/s\rh", "/bin/s\x7fh", "/bin\\sh", "sh\\" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                t.argv[0] = (char *) cmds[i];
                assert_invalid(&t.spec, "argv[0]", cmds[i]);
        }
}

static void test_accepts_absolute_or_bare_argv0(void **state) {
        const char *cmds[] = { "/bin/sh", "sleep", "python3", "_run", "9p", "Xvfb", ".hidden", "/opt/my app/bin" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                t.argv[0] = (char *) cmds[i];
                assert_valid(&t.spec);
        }
}

static void test_accepts_arguments_that_need_quoting(void **state) {
        /* Later words only need to be valid UTF-8; the unit writer quotes them. */
        const char *args[] = { "", "a\nb", "\"", "\\", "$HOME", "%h", ";", "-x", "@x", "\t\r\x01\x7f", "caf\xc3\xa9" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                t.argv[1] = (char *) args[i];
                assert_valid(&t.spec);
        }
}

static void test_rejects_more_than_argv_max_entries(void **state) {
        char *argv[PM_ARGV_MAX + 1];
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(argv); i++)
                argv[i] = (char *) "x";
        argv[0] = (char *) "/bin/app";
        t.spec.argv = argv;
        t.spec.n_argv = PM_ARGV_MAX;
        assert_valid(&t.spec);
        t.spec.n_argv = PM_ARGV_MAX + 1;
        assert_invalid(&t.spec, "argv", "PM_ARGV_MAX + 1 entries");
}

static void test_rejects_argv_over_byte_limit(void **state) {
        /* Each word counts with its terminating NUL; `fits` makes exactly
         * PM_ARGV_BYTES_MAX in all. */
        size_t first = strlen("/bin/app") + 1;
        _cleanup_free_ char *fits = repeat('a', PM_ARGV_BYTES_MAX - first - 1);
        _cleanup_free_ char *over = repeat('a', PM_ARGV_BYTES_MAX - first);
        TestSpec t;

        test_spec_init(&t);
        t.argv[0] = (char *) "/bin/app";
        t.argv[1] = fits;
        assert_valid(&t.spec);
        t.argv[1] = over;
        assert_invalid(&t.spec, "argv", "argv one byte over");
}

static void test_rejects_invalid_utf8_in_argv(void **state) {
        const char *bad[] = {
                "\xff", "\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xc3", "\x80",
        };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t.argv[1] = (char *) bad[i];
                assert_invalid(&t.spec, "argv[1]", "invalid UTF-8 in argv[1]");
        }
        t.argv[0] = (char *) "/bin/\xff";
        t.argv[1] = (char *) "ok";
        assert_invalid(&t.spec, "argv[0]", "invalid UTF-8 in argv[0]");
}

static void test_rejects_invalid_env_keys(void **state) {
        _cleanup_free_ char *long_key = repeat('K', PM_ENV_KEY_MAX + 1);
        const char *keys[] = { "1A", "9", "A=B", "=", "A B", " A", "A\n", "", "A-B", "A.B", "K\xc3\xa9", long_key };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                t.env[1].key = (char *) keys[i];
                assert_invalid(&t.spec, "env", keys[i]);
        }
}

static void test_accepts_env_values_that_need_quoting(void **state) {
        const char *values[] = { "", "a=b", "a\nb", "\"'\\", "$HOME", "%h", "\x01\x7f", "caf\xc3\xa9" };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                t.env[0].value = (char *) values[i];
                assert_valid(&t.spec);
        }
}

static void test_rejects_invalid_utf8_in_env_value(void **state) {
        TestSpec t;

        test_spec_init_full(&t);
        t.env[0].value = (char *) "/usr/bin:\xfe";
        assert_invalid(&t.spec, "env.PATH", "invalid UTF-8 env value");
}

static void test_rejects_env_over_entry_and_byte_limits(void **state) {
        EnvEntry entries[PM_ENV_MAX + 1];
        EnvEntry *ptrs[PM_ENV_MAX + 1];
        char keys[PM_ENV_MAX + 1][16];
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                entries[i] = (EnvEntry) PODMUTATOR__V1__APP_SPEC__ENV_ENTRY__INIT;
                snprintf(keys[i], sizeof(keys[i]), "K%zu", i);
                entries[i].key = keys[i];
                entries[i].value = (char *) "v";
                ptrs[i] = &entries[i];
        }
        t.spec.env = ptrs;
        t.spec.n_env = PM_ENV_MAX;
        assert_valid(&t.spec);
        t.spec.n_env = PM_ENV_MAX + 1;
        assert_invalid(&t.spec, "env", "PM_ENV_MAX + 1 variables");

        /* Two values of 64 KiB are over 128 KiB in all with their keys. */
        _cleanup_free_ char *big = repeat('v', 64 * 1024);
        entries[0].value = big;
        entries[1].value = big;
        t.spec.n_env = 2;
        assert_invalid(&t.spec, "env", "env over byte limit");
        t.spec.n_env = 1;
        assert_valid(&t.spec);
}

static void test_rejects_bad_paths(void **state) {
        _cleanup_free_ char *too_long = repeat('a', PM_PATH_MAX + 1);
        too_long[0] = '/';
        const char *paths[] = {
                "relative", "srv/app", "./srv", "~/app", " /srv", "/srv/../etc", "/..", "/../x", "/srv/..", "/srv/.",
                "/.", "/srv/./x", "/srv\napp", "/srv/app\n", "/srv\rapp", "/srv\tapp", "/srv\x7f", "/srv\\app",
                "/srv/app\\", "/srv/app ", "/srv/app\t", "/srv/\xff", too_long,
        };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                t.spec.working_dir = (char *) paths[i];
                assert_invalid(&t.spec, "working_dir", paths[i]);
        }
        t.spec.working_dir = (char *) "/srv/app";
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                t.spec.rootfs = (char *) paths[i];
                assert_invalid(&t.spec, "rootfs", paths[i]);
        }
}

static void test_accepts_plain_absolute_paths(void **state) {
        _cleanup_free_ char *longest = repeat('a', PM_PATH_MAX);
        longest[0] = '/';
        const char *paths[] = { "/", "/srv/app", "/srv/.hidden", "/srv/..x", "/srv/x..", "/srv/...", "/srv/my app",
                                "/srv/caf\xc3\xa9", "/srv/app/", longest };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                t.spec.working_dir = (char *) paths[i];
                t.spec.rootfs = (char *) paths[i];
                assert_valid(&t.spec);
        }
}

static void test_user_name_rules(void **state) {
        _cleanup_free_ char *longest = repeat('u', PM_USER_MAX);
        _cleanup_free_ char *too_long = repeat('u', PM_USER_MAX + 1);
        const char *valid[] = { "root", "_svc", "1000", "0", "user$", "a-b", "a_b9", "4294967293", longest };
        const char *invalid[] = {
                "", "Root", "a b", "4294967295", "4294967294", "4294967296", "-1", "+1", "1a", "us$er", "$", "-user",
                "user\n", "us:er", "us/er", "us\xc3\xa9r", too_long,
        };

        for (size_t i = 0; i < ELEMENTSOF(valid); i++)
                if (!pm_user_name_valid(valid[i]))
                        fail_msg("\"%s\" rejected", valid[i]);
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++)
                if (pm_user_name_valid(invalid[i]))
                        fail_msg("\"%s\" accepted", invalid[i]);
}

static void test_rejects_bad_user_and_group(void **state) {
        _cleanup_free_ char *too_long = repeat('u', PM_USER_MAX + 1);
        const char *bad[] = { "Root", "a b", "4294967295", "us$er", too_long };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t.spec.user = (char *) bad[i];
                assert_invalid(&t.spec, "user:", bad[i]);
        }
        t.spec.user = (char *) "root";
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                t.spec.group = (char *) bad[i];
                assert_invalid(&t.spec, "group:", bad[i]);
        }
}

static void test_rejects_bad_label_keys(void **state) {
        _cleanup_free_ char *long_key = repeat('k', PM_LABEL_KEY_MAX + 1);
        const char *keys[] = { "", "a b", "a=b", "a:b", "a\nb", "k\xc3\xa9", "a\"b", "a,b", long_key };
        TestSpec t;

        test_spec_init_full(&t);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                t.label.key = (char *) keys[i];
                assert_invalid(&t.spec, "labels", keys[i]);
        }
        t.label.key = (char *) "app";
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                t.annotation.key = (char *) keys[i];
                assert_invalid(&t.spec, "annotations", keys[i]);
        }
}

static void test_label_key_rules(void **state) {
        _cleanup_free_ char *longest = repeat('k', PM_LABEL_KEY_MAX);

        assert_true(pm_label_key_valid("app.kubernetes.io/name"));
        assert_true(pm_label_key_valid("A-b_c.D/9"));
        assert_true(pm_label_key_valid(longest));
        assert_false(pm_label_key_valid(""));
        assert_false(pm_label_key_valid("a b"));
        assert_false(pm_label_key_valid("a=b"));
}

static void test_rejects_label_value_over_limit(void **state) {
        _cleanup_free_ char *longest = repeat('v', PM_LABEL_VALUE_MAX);
        _cleanup_free_ char *too_long = repeat('v', PM_LABEL_VALUE_MAX + 1);
        TestSpec t;

        test_spec_init_full(&t);
        t.label.value = longest;
        assert_valid(&t.spec);
        t.label.value = too_long;
        assert_invalid(&t.spec, "labels", "label value over limit");
        t.label.value = (char *) "\xc3";
        assert_invalid(&t.spec, "labels", "invalid UTF-8 label value");
}

static void test_rejects_more_than_labels_max_entries(void **state) {
        LabelsEntry entries[PM_LABELS_MAX + 1];
        LabelsEntry *ptrs[PM_LABELS_MAX + 1];
        char keys[PM_LABELS_MAX + 1][16];
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                entries[i] = (LabelsEntry) PODMUTATOR__V1__APP_SPEC__LABELS_ENTRY__INIT;
                snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
                entries[i].key = keys[i];
                ptrs[i] = &entries[i];
        }
        t.spec.labels = ptrs;
        t.spec.n_labels = PM_LABELS_MAX;
        assert_valid(&t.spec);
        t.spec.n_labels = PM_LABELS_MAX + 1;
        assert_invalid(&t.spec, "labels", "PM_LABELS_MAX + 1 labels");
}

static void test_rejects_annotations_over_total_limit(void **state) {
        LabelsEntry entries[2];
        LabelsEntry *ptrs[2];
        /* One value may be long, far past a label's limit ... */
        _cleanup_free_ char *big = repeat('a', PM_ANNOTATIONS_BYTES_MAX / 2);
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < 2; i++) {
                entries[i] = (LabelsEntry) PODMUTATOR__V1__APP_SPEC__LABELS_ENTRY__INIT;
                entries[i].key = (char *) (i ? "second" : "first");
                entries[i].value = big;
                ptrs[i] = &entries[i];
        }
        t.spec.annotations = (Podmutator__V1__AppSpec__AnnotationsEntry **) ptrs;
        t.spec.n_annotations = 1;
        assert_valid(&t.spec);
        /* ... but not all of them together. */
        t.spec.n_annotations = 2;
        assert_invalid(&t.spec, "annotations", "annotations over total");
}

static void test_rejects_unknown_restart_policy(void **state) {
        TestSpec t;

        test_spec_init(&t);
        t.spec.restart = PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS;
        assert_valid(&t.spec);
        t.spec.restart = (Podmutator__V1__RestartPolicy) 3;
        assert_invalid(&t.spec, "restart", "restart 3");
        t.spec.restart = (Podmutator__V1__RestartPolicy) -1;
        assert_invalid(&t.spec, "restart", "restart -1");
}

static void test_stop_signal_accepts_names_and_numbers(void **state) {
        const char *valid[] = { "", "SIGTERM", "TERM", "15", "SIGINT", "INT", "2", "SIGQUIT", "SIGKILL", "SIGUSR1" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                t.spec.stop_signal = (char *) valid[i];
                assert_valid(&t.spec);
        }
}

static void test_stop_signal_rejects_unknown_signals(void **state) {
        const char *invalid[] = { "SIGFOO", "FOO", "0", "99", "65", "-15", "+15", "15x", "sigterm", "term", "SIG",
                                  "SIGSIGTERM", " TERM", "TERM ", "SIGRTMIN" };
        TestSpec t;

        test_spec_init(&t);
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                t.spec.stop_signal = (char *) invalid[i];
                assert_invalid(&t.spec, "stop_signal", invalid[i]);
        }
}

static void test_signal_helpers_map_names_and_numbers(void **state) {
        assert_int_equal(pm_signal_from_name("SIGTERM"), 15);
        assert_int_equal(pm_signal_from_name("TERM"), 15);
        assert_int_equal(pm_signal_from_name("15"), 15);
        assert_int_equal(pm_signal_from_name("KILL"), 9);
        assert_int_equal(pm_signal_from_name("SIGSEGV"), 11);
        assert_int_equal(pm_signal_from_name("SIGFOO"), -EINVAL);
        assert_int_equal(pm_signal_from_name("0"), -EINVAL);
        assert_int_equal(pm_signal_from_name("99"), -EINVAL);
        assert_int_equal(pm_signal_from_name(""), -EINVAL);
        assert_string_equal(pm_signal_name(15), "TERM");
        assert_string_equal(pm_signal_name(9), "KILL");
        assert_null(pm_signal_name(0));
        assert_null(pm_signal_name(-1));
        assert_null(pm_signal_name(1000));
}

static void test_rejects_stop_timeout_over_max(void **state) {
        TestSpec t;

        test_spec_init(&t);
        t.spec.stop_timeout_seconds = PM_STOP_TIMEOUT_MAX;
        assert_valid(&t.spec);
        t.spec.stop_timeout_seconds = PM_STOP_TIMEOUT_MAX + 1;
        assert_invalid(&t.spec, "stop_timeout_seconds", "stop timeout max + 1");
        t.spec.stop_timeout_seconds = UINT32_MAX;
        assert_invalid(&t.spec, "stop_timeout_seconds", "stop timeout UINT32_MAX");
}

/* Isolation fields, with storage a test can point a spec at. */
typedef struct IsoSpec {
        TestSpec t;
        Podmutator__V1__Resources res;
        Podmutator__V1__Mount mounts[3];
        Podmutator__V1__Mount *mount_ptrs[3];
        Podmutator__V1__Network net;
        char *caps[2];
        Podmutator__V1__Rlimit rl[2];
        Podmutator__V1__Rlimit *rl_ptrs[2];
} IsoSpec;

static void iso_spec_init(IsoSpec *s) {
        test_spec_init(&s->t);
        s->res = (Podmutator__V1__Resources) PODMUTATOR__V1__RESOURCES__INIT;
        s->res.memory_max = 64u << 20;
        s->res.cpu_millis = 1500;
        s->res.tasks_max = 32;
        s->t.spec.resources = &s->res;
        const char *paths[][2] = { { "/srv/data", "/data" }, { "/srv/100%", "/mnt/x-y_z.d" }, { "/a", "/b/c" } };
        for (size_t i = 0; i < 3; i++) {
                s->mounts[i] = (Podmutator__V1__Mount) PODMUTATOR__V1__MOUNT__INIT;
                s->mounts[i].source = (char *) paths[i][0];
                s->mounts[i].target = (char *) paths[i][1];
                s->mounts[i].read_only = i == 0;
                s->mount_ptrs[i] = &s->mounts[i];
        }
        s->t.spec.mounts = s->mount_ptrs;
        s->t.spec.n_mounts = 3;
        s->net = (Podmutator__V1__Network) PODMUTATOR__V1__NETWORK__INIT;
        s->net.mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS;
        s->net.netns_path = (char *) "/run/netns/blue";
        s->t.spec.network = &s->net;
        s->caps[0] = (char *) "CAP_NET_ADMIN";
        s->caps[1] = (char *) "chown";
        s->t.spec.capabilities = s->caps;
        s->t.spec.n_capabilities = 2;
        const char *types[] = { "RLIMIT_NOFILE", "nproc" };
        for (size_t i = 0; i < 2; i++) {
                s->rl[i] = (Podmutator__V1__Rlimit) PODMUTATOR__V1__RLIMIT__INIT;
                s->rl[i].type = (char *) types[i];
                s->rl[i].soft = 100;
                s->rl[i].hard = UINT64_MAX;
                s->rl_ptrs[i] = &s->rl[i];
        }
        s->t.spec.rlimits = s->rl_ptrs;
        s->t.spec.n_rlimits = 2;
        s->t.spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        s->t.spec.no_new_privileges = true;
        s->t.spec.read_only_rootfs = true;
}

static void test_accepts_every_isolation_field(void **state) {
        IsoSpec s;

        iso_spec_init(&s);
        assert_valid(&s.t.spec);
        s.net.mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE;
        s.net.netns_path = (char *) "";
        assert_valid(&s.t.spec);
        s.res.memory_max = PM_MEMORY_MIN;
        s.res.cpu_millis = 1;
        assert_valid(&s.t.spec);
}

static void test_rejects_unknown_profile(void **state) {
        IsoSpec s;

        iso_spec_init(&s);
        s.t.spec.profile = 7;
        assert_invalid(&s.t.spec, "profile: unknown profile 7", "profile 7");
}

static void test_rejects_resources_out_of_range(void **state) {
        const struct {
                uint64_t memory;
                uint32_t cpu, tasks;
                const char *want;
        } cases[] = {
                { 1, 0, 0, "resources.memory_max" },
                { PM_MEMORY_MIN - 1, 0, 0, "resources.memory_max" },
                { PM_MEMORY_MAX + 1, 0, 0, "resources.memory_max" },
                { UINT64_MAX, 0, 0, "resources.memory_max" },
                { 0, PM_CPU_MILLIS_MAX + 1, 0, "resources.cpu_millis" },
                { 0, 0, PM_TASKS_MAX + 1, "resources.tasks_max" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IsoSpec s;
                iso_spec_init(&s);
                s.res.memory_max = cases[i].memory;
                s.res.cpu_millis = cases[i].cpu;
                s.res.tasks_max = cases[i].tasks;
                assert_invalid(&s.t.spec, cases[i].want, cases[i].want);
        }
}

static void test_rejects_bad_mount_paths_naming_the_mount(void **state) {
        const struct {
                const char *source, *target, *want;
        } cases[] = {
                { "srv/data", "/y", "mounts[1].source: must be an absolute path" },
                { "", "/y", "mounts[1].source: missing" },
                { "/srv", "", "mounts[1].target: missing" },
                { "/srv", "y", "mounts[1].target: must be an absolute path" },
                { "/srv", "/a/../../y", "mounts[1].target: must be an absolute path without \"..\"" },
                { "/srv/..", "/y", "mounts[1].source: must be an absolute path without \"..\"" },
                { "/srv", "/a/./y", "mounts[1].target: must be an absolute path without \"..\" or \".\"" },
                { "/srv:/etc", "/y", "mounts[1].source: ':'" },
                { "/srv", "/y:ro", "mounts[1].target: ':'" },
                { "/srv", "/y z", "mounts[1].target: ':', whitespace" },
                { "/srv", "/y\tz", "mounts[1].target" },
                { "/srv", "/y\"z", "mounts[1].target" },
                { "/srv", "/y'z", "mounts[1].target" },
                { "/srv", "/y\nBindPaths=/:/x", "mounts[1].target" },
                { "/srv\\", "/y", "mounts[1].source" },
                { "/srv", "/", "mounts[1].target: cannot be the app's root" },
                { "/srv", "//", "mounts[1].target: cannot be the app's root" },
                { "/srv", "/data", "mounts[1].target: \"/data\" is also the target of mounts[0]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IsoSpec s;
                iso_spec_init(&s);
                s.mounts[1].source = (char *) cases[i].source;
                s.mounts[1].target = (char *) cases[i].target;
                assert_invalid(&s.t.spec, cases[i].want, cases[i].want);
        }
}

static void test_rejects_too_many_mounts(void **state) {
        IsoSpec s;
        Podmutator__V1__Mount *many[PM_MOUNTS_MAX + 1];

        iso_spec_init(&s);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = &s.mounts[0];
        s.t.spec.mounts = many;
        s.t.spec.n_mounts = ELEMENTSOF(many);
        assert_invalid(&s.t.spec, "mounts: more than", "too many mounts");
}

static void test_rejects_bad_network(void **state) {
        const struct {
                int mode;
                const char *path, *want;
        } cases[] = {
                { 9, "", "network.mode: unknown mode 9" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS, "", "network.netns_path: missing" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS, "netns/blue", "network.netns_path: must be an absolute" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS, "/run/netns/a b", "network.netns_path: ':', whitespace" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS, "/run/../x", "network.netns_path: must be an absolute" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_POD, "/run/netns/blue", "network.netns_path: only with mode" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE, "/run/netns/blue", "network.netns_path: only with mode" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IsoSpec s;
                iso_spec_init(&s);
                s.net.mode = cases[i].mode;
                s.net.netns_path = (char *) cases[i].path;
                assert_invalid(&s.t.spec, cases[i].want, cases[i].want);
        }
}

static void test_rejects_unknown_capabilities(void **state) {
        const char *bad[] = { "CAP_WIZARD", "", "CAP_", "cap_chown ", "CAP_CHOWN\n", "41" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                IsoSpec s;
                iso_spec_init(&s);
                s.caps[1] = (char *) bad[i];
                assert_invalid(&s.t.spec, "capabilities[1]: unknown capability", bad[i]);
        }
}

static void test_capability_names_map_both_ways(void **state) {
        assert_int_equal(pm_capability_from_name("CAP_CHOWN"), 0);
        assert_int_equal(pm_capability_from_name("chown"), 0);
        assert_int_equal(pm_capability_from_name("Cap_Sys_Admin"), 21);
        assert_int_equal(pm_capability_from_name("CAP_CHECKPOINT_RESTORE"), 40);
        assert_int_equal(pm_capability_from_name("CAP_WIZARD"), -EINVAL);
        assert_string_equal(pm_capability_name(27), "MKNOD");
        assert_null(pm_capability_name(41));
        assert_null(pm_capability_name(-1));
}

static void test_rejects_bad_rlimits(void **state) {
        const struct {
                const char *type;
                uint64_t soft, hard;
                const char *want;
        } cases[] = {
                { "RLIMIT_BOGUS", 1, 1, "rlimits[1].type: unknown limit \"RLIMIT_BOGUS\"" },
                { "", 1, 1, "rlimits[1].type: unknown limit" },
                { "LimitNOFILE", 1, 1, "rlimits[1].type: unknown limit" },
                { "nproc", 10, 9, "rlimits[1]: soft limit 10 is above the hard limit 9" },
                { "nofile", 1, 1, "rlimits[1].type: nofile is also set by rlimits[0]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IsoSpec s;
                iso_spec_init(&s);
                s.rl[1].type = (char *) cases[i].type;
                s.rl[1].soft = cases[i].soft;
                s.rl[1].hard = cases[i].hard;
                assert_invalid(&s.t.spec, cases[i].want, cases[i].want);
        }
}

static void test_rlimit_names_map_to_directives(void **state) {
        assert_int_equal(pm_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
        assert_int_equal(pm_rlimit_from_name("nofile"), RLIMIT_NOFILE);
        assert_int_equal(pm_rlimit_from_name("rlimit_rttime"), RLIMIT_RTTIME);
        assert_int_equal(pm_rlimit_from_name("NOPE"), -EINVAL);
        assert_string_equal(pm_rlimit_directive(RLIMIT_NOFILE), "LimitNOFILE");
        assert_string_equal(pm_rlimit_directive(RLIMIT_AS), "LimitAS");
        assert_null(pm_rlimit_directive(99));
}

static void test_rejects_a_hostname_saying_why(void **state) {
        IsoSpec s;

        iso_spec_init(&s);
        s.t.spec.hostname = (char *) "web";
        assert_invalid(&s.t.spec, "hostname: an app's own hostname is not supported", "hostname");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accepts_minimal_spec),
                cmocka_unit_test(test_accepts_spec_with_every_field_set),
                cmocka_unit_test(test_rejects_bad_names),
                cmocka_unit_test(test_accepts_dns_label_names),
                cmocka_unit_test(test_namespace_defaults_and_follows_dns_label_rules),
                cmocka_unit_test(test_rejects_empty_argv),
                cmocka_unit_test(test_rejects_argv0_that_systemd_would_read_as_prefix),
                cmocka_unit_test(test_rejects_relative_argv0_with_slash),
                cmocka_unit_test(test_rejects_argv0_with_control_chars_or_backslash),
                cmocka_unit_test(test_accepts_absolute_or_bare_argv0),
                cmocka_unit_test(test_accepts_arguments_that_need_quoting),
                cmocka_unit_test(test_rejects_more_than_argv_max_entries),
                cmocka_unit_test(test_rejects_argv_over_byte_limit),
                cmocka_unit_test(test_rejects_invalid_utf8_in_argv),
                cmocka_unit_test(test_rejects_invalid_env_keys),
                cmocka_unit_test(test_accepts_env_values_that_need_quoting),
                cmocka_unit_test(test_rejects_invalid_utf8_in_env_value),
                cmocka_unit_test(test_rejects_env_over_entry_and_byte_limits),
                cmocka_unit_test(test_rejects_bad_paths),
                cmocka_unit_test(test_accepts_plain_absolute_paths),
                cmocka_unit_test(test_user_name_rules),
                cmocka_unit_test(test_rejects_bad_user_and_group),
                cmocka_unit_test(test_rejects_bad_label_keys),
                cmocka_unit_test(test_label_key_rules),
                cmocka_unit_test(test_rejects_label_value_over_limit),
                cmocka_unit_test(test_rejects_more_than_labels_max_entries),
                cmocka_unit_test(test_rejects_annotations_over_total_limit),
                cmocka_unit_test(test_rejects_unknown_restart_policy),
                cmocka_unit_test(test_stop_signal_accepts_names_and_numbers),
                cmocka_unit_test(test_stop_signal_rejects_unknown_signals),
                cmocka_unit_test(test_signal_helpers_map_names_and_numbers),
                cmocka_unit_test(test_rejects_stop_timeout_over_max),
                cmocka_unit_test(test_accepts_every_isolation_field),
                cmocka_unit_test(test_rejects_unknown_profile),
                cmocka_unit_test(test_rejects_resources_out_of_range),
                cmocka_unit_test(test_rejects_bad_mount_paths_naming_the_mount),
                cmocka_unit_test(test_rejects_too_many_mounts),
                cmocka_unit_test(test_rejects_bad_network),
                cmocka_unit_test(test_rejects_unknown_capabilities),
                cmocka_unit_test(test_capability_names_map_both_ways),
                cmocka_unit_test(test_rejects_bad_rlimits),
                cmocka_unit_test(test_rlimit_names_map_to_directives),
                cmocka_unit_test(test_rejects_a_hostname_saying_why),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
