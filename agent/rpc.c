/* The RPC handlers: decode a request, check it, run the operation, answer.
 * Requests are freed when dispatch returns, so whatever an asynchronous
 * operation needs later is copied or resolved before that. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "context.h"
#include "events.h"
#include "exec.h"
#include "processes.h"
#include "stats.h"
#include "log.h"
#include "logs.h"
#include "paths.h"
#include "ops.h"
#include "records.h"
#include "slots.h"
#include "server.h"
#include "util.h"

#define CODE(x) PODMUTATOR__V1__CODE__CODE_##x
#define RESULT(x) PODMUTATOR__V1__RESPONSE__RESULT_##x

typedef Podmutator__V1__Request PmRequest;

/* Finds the app a request names, or fails the call. */
static App *resolve(Call *call, const Podmutator__V1__AppRef *ref) {
        const char *name = ref ? ref->app : NULL;
        const char *ns = ref && !isempty(ref->namespace_) ? ref->namespace_ : PM_DEFAULT_NAMESPACE;
        App *a = NULL;
        if (isempty(name)) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "no app given (an id, an id prefix or a name)");
                return NULL;
        }
        int r = pm_store_resolve(&call->m->store, name, ns, &a);
        if (r == -ENOTUNIQ)
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "id prefix \"%.64s\" matches several apps; give more of it",
                             name);
        else if (r < 0)
                pm_call_fail(call, CODE(NOT_FOUND), "no app \"%.64s\" (as id, id prefix, or name in namespace \"%.64s\")",
                             name, ns);
        return a;
}

/* Answers with the app's status, in the result kind the call expects. */
static void reply_status(Call *call, App *a) {
        PmAppStatus status;
        pm_app_fill_status(a, &status);
        Podmutator__V1__StatusResponse st = PODMUTATOR__V1__STATUS_RESPONSE__INIT;
        Podmutator__V1__StartResponse sr = PODMUTATOR__V1__START_RESPONSE__INIT;
        Podmutator__V1__StopResponse pr = PODMUTATOR__V1__STOP_RESPONSE__INIT;
        Podmutator__V1__InjectResponse ir = PODMUTATOR__V1__INJECT_RESPONSE__INIT;
        Podmutator__V1__RemoveResponse rr = PODMUTATOR__V1__REMOVE_RESPONSE__INIT;
        Podmutator__V1__PauseResponse pa = PODMUTATOR__V1__PAUSE_RESPONSE__INIT;
        Podmutator__V1__ResumeResponse re = PODMUTATOR__V1__RESUME_RESPONSE__INIT;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = call->result_case;
        switch (call->result_case) {
        case RESULT(STATUS): st.status = &status, resp.status = &st; break;
        case RESULT(START): sr.status = &status, resp.start = &sr; break;
        case RESULT(STOP): pr.status = &status, resp.stop = &pr; break;
        case RESULT(INJECT): ir.id = a->id, ir.status = &status, resp.inject = &ir; break;
        case RESULT(REMOVE): rr.id = a->id, resp.remove = &rr; break;
        case RESULT(PAUSE): pa.status = &status, resp.pause = &pa; break;
        case RESULT(RESUME): re.status = &status, resp.resume = &re; break;
        default: abort(); /* a handler set no result kind */
        }
        pm_call_reply(call, &resp);
}

static void on_op_done(Manager *m, App *a, PmCode code, const char *error, void *userdata) {
        Call *call = userdata;
        if (code != CODE(OK))
                pm_call_fail(call, code, "%s", error);
        else
                reply_status(call, a);
}

/* A deep copy of the request's spec that the app owns. */
static PmAppSpec *copy_spec(const PmAppSpec *spec) {
        size_t n = podmutator__v1__app_spec__get_packed_size(spec);
        _cleanup_free_ uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return NULL;
        podmutator__v1__app_spec__pack(spec, buf);
        return podmutator__v1__app_spec__unpack(NULL, n, buf);
}

static int new_record(Manager *m, const PmAppSpec *spec, PmAppRecord **ret) {
        PmAppRecord *rec = malloc(sizeof(*rec));
        if (!rec)
                return -ENOMEM;
        podmutator__v1__app_record__init(rec);
        rec->created_at = pm_now_realtime_ns();
        rec->id = malloc(PM_APP_ID_LEN + 1);
        rec->spec = copy_spec(spec);
        if (!rec->id || !rec->spec || pm_slots_take(m, rec->id) < 0) {
                if (rec->id == NULL)
                        rec->id = (char *) protobuf_c_empty_string;
                podmutator__v1__app_record__free_unpacked(rec, NULL);
                return -ENOMEM;
        }
        *ret = rec;
        return 0;
}

/* What of a spec only the pod can tell: its mounts and network namespace.
 * Fails the call if any is wrong. */
static bool check_in_pod(Call *call, const PmAppSpec *spec, const char *rootfs) {
        _cleanup_free_ char *error = NULL;
        _cleanup_strv_free_ char **sources = NULL, **targets = NULL;
        int r = pm_context_check_network(call->m, spec, &error);
        if (r >= 0)
                r = pm_context_resolve_mounts(call->m, spec, rootfs, &sources, &targets, &error);
        if (r < 0) {
                pm_call_fail(call, r == -EPERM ? CODE(PERMISSION_DENIED) : CODE(INVALID_ARGUMENT), "%s",
                             error ? error : strerror(-r));
                return false;
        }
        return true;
}

static void handle_inject(Call *call, const Podmutator__V1__InjectRequest *req) {
        Manager *m = call->m;
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ char *rootfs = NULL;
        if (!req->spec) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "spec: missing");
                return;
        }
        if (pm_spec_validate(req->spec, &error) < 0) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "%s", strempty(error));
                return;
        }
        const char *ns = pm_spec_namespace(req->spec);
        if (pm_store_get_by_name(&m->store, ns, req->spec->name)) {
                pm_call_fail(call, CODE(ALREADY_EXISTS), "an app named \"%s\" exists in namespace \"%s\"",
                             req->spec->name, ns);
                return;
        }
        if (m->store.count >= PM_APPS_MAX) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "the pod holds %d apps, the most it takes",
                             PM_APPS_MAX);
                return;
        }
        if (!isempty(req->spec->rootfs)) {
                int r = pm_context_check_rootfs(m, req->spec->rootfs, &rootfs, &error);
                if (r < 0) {
                        pm_call_fail(call, r == -EPERM ? CODE(PERMISSION_DENIED) : CODE(INVALID_ARGUMENT), "%s",
                                     strempty(error));
                        return;
                }
        }
        if (!check_in_pod(call, req->spec, rootfs))
                return;

        PmAppRecord *rec;
        if (new_record(m, req->spec, &rec) < 0) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        if (rootfs) {
                free(rec->spec->rootfs);
                rec->spec->rootfs = TAKE_PTR(rootfs);
        }
        _cleanup_(pm_app_unrefp) App *a = pm_app_new(rec);
        if (!a) {
                podmutator__v1__app_record__free_unpacked(rec, NULL);
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        int r = pm_records_install(m, a);
        if (r == -E2BIG) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "argv or env too long for a unit file line");
                return;
        }
        if (r == -EHOSTDOWN) {
                pm_call_fail(call, CODE(UNAVAILABLE), "the pod's log daemon (" PM_POD_LOGD_UNIT
                             ") does not answer; the app's output would have nowhere to go");
                return;
        }
        if (r < 0) {
                pm_call_fail(call, CODE(INTERNAL), "cannot write the app's unit: %s", strerror(-r));
                return;
        }
        r = pm_store_add(&m->store, a);
        if (r < 0) {
                pm_records_delete(m, a);
                pm_call_fail(call, pm_code_from_errno(r), "cannot add the app: %s", strerror(-r));
                return;
        }
        pm_log_info("app %s: injected as %s/%s", a->id, ns, rec->spec->name);
        pm_events_emit(m, a, "created");
        call->result_case = RESULT(INJECT);
        if (req->start)
                pm_op_start(m, a, on_op_done, call);
        else
                reply_status(call, a);
}

static void handle_start(Call *call, const Podmutator__V1__StartRequest *req) {
        App *a = resolve(call, req->ref);
        if (!a)
                return;
        call->result_case = RESULT(START);
        pm_op_start(call->m, a, on_op_done, call);
}

static void handle_stop(Call *call, const Podmutator__V1__StopRequest *req) {
        App *a = resolve(call, req->ref);
        if (!a)
                return;
        int64_t timeout = -1;
        if (req->grace_case == PODMUTATOR__V1__STOP_REQUEST__GRACE_TIMEOUT_SECONDS) {
                if (req->timeout_seconds > PM_STOP_TIMEOUT_MAX) {
                        pm_call_fail(call, CODE(INVALID_ARGUMENT), "timeout_seconds: at most %u", PM_STOP_TIMEOUT_MAX);
                        return;
                }
                timeout = req->timeout_seconds;
        }
        call->result_case = RESULT(STOP);
        pm_op_stop(call->m, a, timeout, on_op_done, call);
}

static void handle_remove(Call *call, const Podmutator__V1__RemoveRequest *req) {
        App *a = resolve(call, req->ref);
        if (!a)
                return;
        call->result_case = RESULT(REMOVE);
        pm_op_remove(call->m, a, req->force, on_op_done, call);
}

static void handle_status(Call *call, const Podmutator__V1__StatusRequest *req) {
        App *a = resolve(call, req->ref);
        if (!a)
                return;
        call->result_case = RESULT(STATUS);
        reply_status(call, a);
}

/* The spec as the app keeps it (as injected, rootfs as resolved) with
 * its status. */
static void handle_inspect(Call *call, const Podmutator__V1__InspectRequest *req) {
        App *a = resolve(call, req->ref);
        if (!a)
                return;
        PmAppStatus status;
        pm_app_fill_status(a, &status);
        Podmutator__V1__InspectResponse ir = PODMUTATOR__V1__INSPECT_RESPONSE__INIT;
        ir.status = &status;
        ir.spec = a->record->spec;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = RESULT(INSPECT);
        resp.inspect = &ir;
        pm_call_reply(call, &resp);
}

typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;

/* An exec sees the network its app sees: the namespace the app joined,
 * or the one of its own that its main process holds (a new one would be
 * empty). main_pid 0: a run once, which gets a namespace of its own. */
static void join_network(ExecWorld *w, const PmAppSpec *spec, uint32_t main_pid) {
        const Podmutator__V1__Network *net = spec->network;
        if (!net)
                return;
        if (net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS)
                w->netns_path = net->netns_path;
        else if (net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE && main_pid > 0) {
                snprintf(w->netns_buf, sizeof(w->netns_buf), "/proc/%" PRIu32 "/ns/net", main_pid);
                w->netns_path = w->netns_buf;
        } else if (net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE)
                w->private_network = true;
}

/* The world of a running app, for a command run in it. */
static bool app_world(Call *call, const Podmutator__V1__AppRef *ref, ExecWorld *w) {
        App *a = resolve(call, ref);
        if (!a)
                return false;
        if (pm_app_state(a) != PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING) {
                pm_call_fail(call, CODE(FAILED_PRECONDITION), "app %s is not running; exec needs a running app",
                             a->id);
                return false;
        }
        const PmAppSpec *spec = a->record->spec;
        *w = (ExecWorld){ .env = spec->env, .n_env = spec->n_env, .user = spec->user, .group = spec->group,
                          .working_dir = spec->working_dir, .rootfs = spec->rootfs, .app_id = a->id };
        join_network(w, spec, a->main_pid);
        return true;
}

/* The request's own part of a command: argv (unless the world has one),
 * env on top of the world's (map entries of an Exec or ExecSync request,
 * laid out as an AppSpec's), a timeout within bounds. Fails the call if
 * any is wrong. */
static bool take_command(Call *call, ExecWorld *w, char **argv, size_t n_argv, void *env, size_t n_env,
                         uint32_t timeout_s) {
        _cleanup_free_ char *error = NULL;
        if (timeout_s > PM_STOP_TIMEOUT_MAX) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "timeout_seconds: at most %u", PM_STOP_TIMEOUT_MAX);
                return false;
        }
        if (!w->argv) {
                w->argv = argv;
                w->n_argv = n_argv;
        }
        w->extra_env = env;
        w->n_extra_env = n_env;
        if (pm_argv_validate(w->argv, w->n_argv, &error) < 0 ||
            pm_env_validate(w->extra_env, w->n_extra_env, &error) < 0) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "%s", strempty(error));
                return false;
        }
        return true;
}

/* A run once is a transient unit that gets the spec's root, user and
 * network only: the first other isolation field it sets, or NULL. */
static const char *run_once_unapplied(const PmAppSpec *spec) {
        if (spec->resources && (spec->resources->memory_max || spec->resources->cpu_millis || spec->resources->tasks_max))
                return "resources";
        if (spec->n_mounts > 0)
                return "mounts";
        if (spec->n_capabilities > 0)
                return "capabilities";
        if (spec->n_rlimits > 0)
                return "rlimits";
        if (spec->read_only_rootfs)
                return "read_only_rootfs";
        if (spec->no_new_privileges)
                return "no_new_privileges";
        return NULL;
}

static void handle_exec(Call *call, const Podmutator__V1__ExecRequest *req) {
        ExecWorld w = { 0 };
        _cleanup_free_ char *rootfs = NULL, *error = NULL;
        const char *prefix = "pm-exec";
        if (req->spec) {
                /* Run once: the spec is the world, nothing is kept. */
                if (pm_spec_validate(req->spec, &error) < 0) {
                        pm_call_fail(call, CODE(INVALID_ARGUMENT), "%s", strempty(error));
                        return;
                }
                if (!isempty(req->spec->rootfs)) {
                        int r = pm_context_check_rootfs(call->m, req->spec->rootfs, &rootfs, &error);
                        if (r < 0) {
                                pm_call_fail(call, r == -EPERM ? CODE(PERMISSION_DENIED) : CODE(INVALID_ARGUMENT),
                                             "%s", strempty(error));
                                return;
                        }
                }
                const PmAppSpec *spec = req->spec;
                const char *unapplied = run_once_unapplied(spec);
                if (unapplied) {
                        pm_call_fail(call, CODE(FAILED_PRECONDITION), "%s: a run once does not apply it; inject the app instead",
                                     unapplied);
                        return;
                }
                if (!check_in_pod(call, spec, rootfs))
                        return;
                w = (ExecWorld){ .argv = spec->argv, .n_argv = spec->n_argv, .env = spec->env, .n_env = spec->n_env,
                                 .user = spec->user, .group = spec->group, .working_dir = spec->working_dir,
                                 .rootfs = rootfs };
                join_network(&w, spec, 0);
                prefix = "pm-run";
        } else if (!app_world(call, req->ref, &w))
                return;
        if (!take_command(call, &w, req->argv, req->n_argv, req->env, req->n_env, req->timeout_seconds))
                return;
        ExecOptions o = { .tty = req->tty, .want_stdin = req->stdin, .timeout_s = req->timeout_seconds };
        if (req->size) {
                o.rows = req->size->rows;
                o.cols = req->size->cols;
        }
        pm_exec_launch(call, &w, &o, prefix);
}

static void handle_exec_sync(Call *call, const Podmutator__V1__ExecSyncRequest *req) {
        ExecWorld w;
        if (!app_world(call, req->ref, &w) ||
            !take_command(call, &w, req->argv, req->n_argv, req->env, req->n_env, req->timeout_seconds))
                return;
        ExecOptions o = { .sync = true, .want_stdin = req->stdin.len > 0, .timeout_s = req->timeout_seconds,
                          .stdin_data = req->stdin.data, .stdin_size = req->stdin.len,
                          .output_limit = req->output_limit };
        pm_exec_launch(call, &w, &o, "pm-exec");
}

static void handle_pause(Call *call, const Podmutator__V1__AppRef *ref, bool pause) {
        App *a = resolve(call, ref);
        if (!a)
                return;
        call->result_case = pause ? RESULT(PAUSE) : RESULT(RESUME);
        pm_op_pause(call->m, a, pause, on_op_done, call);
}

static void handle_stats(Call *call, const Podmutator__V1__StatsRequest *req) {
        Store *st = &call->m->store;
        const char *ns = req->ref ? req->ref->namespace_ : NULL;
        App *one = NULL;
        if (req->ref && !isempty(req->ref->app) && !(one = resolve(call, req->ref)))
                return;
        size_t max = one ? 1 : st->count;
        _cleanup_free_ PmAppStats *items = calloc(max ? max : 1, sizeof(*items));
        _cleanup_free_ PmAppStats **ptrs = calloc(max ? max : 1, sizeof(*ptrs));
        if (!items || !ptrs) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        size_t n = 0;
        for (App *a = one ? one : st->first; a && n < max; a = one ? NULL : a->next) {
                if (!one && !isempty(ns) && !streq(ns, pm_spec_namespace(a->record->spec)))
                        continue;
                pm_stats_read(a, "/sys/fs/cgroup", &items[n]);
                ptrs[n] = &items[n];
                n++;
        }
        Podmutator__V1__StatsResponse sr = PODMUTATOR__V1__STATS_RESPONSE__INIT;
        sr.n_apps = n;
        sr.apps = ptrs;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = RESULT(STATS);
        resp.stats = &sr;
        pm_call_reply(call, &resp);
}

static void handle_processes(Call *call, const Podmutator__V1__ProcessesRequest *req) {
        App *a = resolve(call, req->ref);
        if (a)
                pm_processes_list(call, a);
}

static void handle_watch(Call *call, const Podmutator__V1__WatchRequest *req) {
        const char *app_id = NULL;
        if (!isempty(req->namespace_) && !pm_dns_label_valid(req->namespace_)) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "namespace: \"%.64s\" is not a lowercase DNS label",
                             req->namespace_);
                return;
        }
        if (!isempty(req->app)) {
                Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
                ref.app = req->app;
                ref.namespace_ = req->namespace_;
                App *a = resolve(call, &ref);
                if (!a)
                        return;
                app_id = a->id;
        }
        pm_watch_start(call, req->namespace_, app_id, req->since);
}

static void handle_logs(Call *call, const Podmutator__V1__LogsRequest *req) {
        App *a = resolve(call, req->ref);
        if (a)
                pm_logs_start(call, a, req);
}

static bool labels_match(const App *a, const Podmutator__V1__ListRequest *req) {
        const PmAppSpec *spec = a->record->spec;
        for (size_t i = 0; i < req->n_labels; i++) {
                bool found = false;
                for (size_t j = 0; j < spec->n_labels && !found; j++)
                        found = streq(spec->labels[j]->key, req->labels[i]->key) &&
                                streq(spec->labels[j]->value, req->labels[i]->value);
                if (!found)
                        return false;
        }
        return true;
}

static bool list_wants(const App *a, PmAppState state, const Podmutator__V1__ListRequest *req) {
        if (!isempty(req->namespace_) && !streq(pm_spec_namespace(a->record->spec), req->namespace_))
                return false;
        if (req->n_states > 0) {
                bool any = false;
                for (size_t i = 0; i < req->n_states && !any; i++)
                        any = req->states[i] == state;
                if (!any)
                        return false;
        }
        return labels_match(a, req);
}

static void handle_list(Call *call, const Podmutator__V1__ListRequest *req) {
        Store *s = &call->m->store;
        _cleanup_free_ PmAppStatus *items = calloc(s->count ? s->count : 1, sizeof(*items));
        _cleanup_free_ PmAppStatus **ptrs = calloc(s->count ? s->count : 1, sizeof(*ptrs));
        if (!items || !ptrs) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        size_t n = 0;
        for (App *a = s->first; a; a = a->next) {
                if (!list_wants(a, pm_app_state(a), req))
                        continue;
                pm_app_fill_status(a, &items[n]);
                ptrs[n] = &items[n];
                n++;
        }
        Podmutator__V1__ListResponse lr = PODMUTATOR__V1__LIST_RESPONSE__INIT;
        lr.n_apps = n;
        lr.apps = ptrs;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = RESULT(LIST);
        resp.list = &lr;
        pm_call_reply(call, &resp);
}

static void handle_info(Call *call) {
        Manager *m = call->m;
        enum { N_STATES = PODMUTATOR__V1__APP_STATE__APP_STATE_REMOVED + 1 };
        uint32_t counts[N_STATES] = { 0 };
        for (App *a = m->store.first; a; a = a->next)
                counts[pm_app_state(a)]++;

        Podmutator__V1__InfoResponse__AppsByStateEntry entries[N_STATES], *ptrs[N_STATES];
        char names[N_STATES][32];
        size_t n = 0;
        for (int st = 0; st < N_STATES; st++) {
                if (counts[st] == 0)
                        continue;
                podmutator__v1__info_response__apps_by_state_entry__init(&entries[n]);
                const ProtobufCEnumValue *v =
                        protobuf_c_enum_descriptor_get_value(&podmutator__v1__app_state__descriptor, st);
                snprintf(names[n], sizeof(names[n]), "%s", v ? v->name + strlen("APP_STATE_") : "UNKNOWN");
                for (char *c = names[n]; *c; c++)
                        *c = (char) (*c - 'A' + 'a');
                entries[n].key = names[n];
                entries[n].value = counts[st];
                ptrs[n] = &entries[n];
                n++;
        }
        Podmutator__V1__InfoResponse info = PODMUTATOR__V1__INFO_RESPONSE__INIT;
        info.pod_name = m->pod_name;
        info.agent_version = (char *) PM_VERSION;
        info.protocol_version = PM_PROTOCOL_VERSION;
        info.systemd_version = m->systemd_version;
        info.started_at = m->started_at;
        info.uptime_ns = pm_now_realtime_ns() - m->started_at;
        info.apps = (uint32_t) m->store.count;
        info.n_apps_by_state = n;
        info.apps_by_state = ptrs;
        info.cgroup_mode = (char *) m->cgroup_mode;
        info.limits_enforced = m->limits_enforced;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = RESULT(INFO);
        resp.info = &info;
        pm_call_reply(call, &resp);
}

void pm_rpc_dispatch(Call *call, PmRequest *req) {
        switch (req->call_case) {
        case PODMUTATOR__V1__REQUEST__CALL_INJECT: handle_inject(call, req->inject); break;
        case PODMUTATOR__V1__REQUEST__CALL_START: handle_start(call, req->start); break;
        case PODMUTATOR__V1__REQUEST__CALL_STOP: handle_stop(call, req->stop); break;
        case PODMUTATOR__V1__REQUEST__CALL_REMOVE: handle_remove(call, req->remove); break;
        case PODMUTATOR__V1__REQUEST__CALL_LIST: handle_list(call, req->list); break;
        case PODMUTATOR__V1__REQUEST__CALL_STATUS: handle_status(call, req->status); break;
        case PODMUTATOR__V1__REQUEST__CALL_INFO: handle_info(call); break;
        case PODMUTATOR__V1__REQUEST__CALL_EXEC: handle_exec(call, req->exec); break;
        case PODMUTATOR__V1__REQUEST__CALL_EXEC_SYNC: handle_exec_sync(call, req->exec_sync); break;
        case PODMUTATOR__V1__REQUEST__CALL_WATCH: handle_watch(call, req->watch); break;
        case PODMUTATOR__V1__REQUEST__CALL_LOGS: handle_logs(call, req->logs); break;
        case PODMUTATOR__V1__REQUEST__CALL_PROCESSES: handle_processes(call, req->processes); break;
        case PODMUTATOR__V1__REQUEST__CALL_PAUSE: handle_pause(call, req->pause->ref, true); break;
        case PODMUTATOR__V1__REQUEST__CALL_STATS: handle_stats(call, req->stats); break;
        case PODMUTATOR__V1__REQUEST__CALL_RESUME: handle_pause(call, req->resume->ref, false); break;
        case PODMUTATOR__V1__REQUEST__CALL_INSPECT: handle_inspect(call, req->inspect); break;
        default:
                pm_call_fail(call, CODE(UNIMPLEMENTED),
                             "empty request, or a call this agent (version " PM_VERSION ") does not implement");
        }
}
