/* pm-bench: latency of the PodMutator control API, measured through the real
 * protocol with libpmclient, and the same operations done straight on the
 * pod's systemd over sd-bus as the floor to compare with.
 *
 * Every verb works on apps named PREFIX-NNNN (NNNN = the app's number), so
 * that separate runs (bench/run calls one verb at a time, and measures the
 * agent's memory and the plain systemd way in between) need no shared state.
 *
 * Each verb prints one row per measurement: a table for a person, or with
 * --kv lines "key=value" that bench/run reads. Times are in microseconds.
 * Exit status: 0 success, 1 a call failed, 2 bad command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "pmclient.h"
#include "util.h"

#define PROGRAM "pm-bench"
#define EXIT_USAGE 2

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

typedef Podmutator__V1__AppSpec PmAppSpec;

/* Parsed options: the only mutable globals. */
static const char *arg_socket;
static const char *arg_address;   /* the pod's systemd, for the sd-bus verbs */
static const char *arg_unit_dir;  /* the pod's /run/systemd/system, as seen here */
static const char *arg_prefix = "bench";
static const char *arg_label;     /* key prefix in --kv output */
static const char *arg_app;       /* status: the app to ask about */
static const char *arg_mode = "transient";
static const char *arg_template;  /* sdstart --mode unitfile: the unit text */
static uint32_t arg_calls = 2000;
static uint32_t arg_from = 1, arg_to = 10;
static uint32_t arg_expect;
static bool arg_kv;
static bool arg_force;
static bool arg_privileged; /* inject: apps of the privileged profile */
static const char *arg_rootfs; /* inject: the apps' rootfs, a directory in the pod */
static bool arg_no_start;

_printf_(1, 2) static int fail(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs(PROGRAM ": ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return -EIO;
}

/* ---- samples ---------------------------------------------------------- */

typedef struct Samples {
        int64_t *ns;
        size_t n, cap;
} Samples;

static void samples_done(Samples *s) {
        free(s->ns);
        *s = (Samples){ 0 };
}

static int samples_add(Samples *s, int64_t ns) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                int64_t *grown = realloc(s->ns, cap * sizeof(*grown));
                if (!grown)
                        return -ENOMEM;
                s->ns = grown;
                s->cap = cap;
        }
        s->ns[s->n++] = ns;
        return 0;
}

static int cmp_i64(const void *x, const void *y) {
        int64_t a = *(const int64_t *) x, b = *(const int64_t *) y;
        return (a > b) - (a < b);
}

/* Nearest-rank percentile, in microseconds; s must be sorted. */
static double pct_us(const Samples *s, double p) {
        if (s->n == 0)
                return NAN;
        size_t rank = (size_t) ceil(p / 100.0 * (double) s->n);
        if (rank < 1)
                rank = 1;
        return (double) s->ns[rank - 1] / 1000.0;
}

static void print_header(void) {
        if (!arg_kv)
                printf("%-42s %6s %11s %11s %11s %11s\n", "measurement", "n", "p50 µs", "p99 µs", "min µs",
                       "max µs");
}

/* One row: the samples' percentiles under a name (key in --kv). */
static void report(const char *key, const char *what, Samples *s) {
        qsort(s->ns, s->n, sizeof(*s->ns), cmp_i64);
        double p50 = pct_us(s, 50), p99 = pct_us(s, 99), min = pct_us(s, 0), max = pct_us(s, 100);
        if (arg_kv) {
                const char *l = arg_label ? arg_label : "";
                const char *dot = arg_label ? "." : "";
                printf("%s%s%s.n=%zu\n%s%s%s.p50_us=%.1f\n%s%s%s.p99_us=%.1f\n%s%s%s.max_us=%.1f\n", l, dot, key,
                       s->n, l, dot, key, p50, l, dot, key, p99, l, dot, key, max);
        } else
                printf("%-42s %6zu %11.1f %11.1f %11.1f %11.1f\n", what, s->n, p50, p99, min, max);
        fflush(stdout);
}

static void report_value(const char *key, const char *what, const char *value) {
        if (arg_kv)
                printf("%s%s%s=%s\n", arg_label ? arg_label : "", arg_label ? "." : "", key, value);
        else
                printf("%-42s %s\n", what, value);
        fflush(stdout);
}

/* ---- the control API -------------------------------------------------- */

static int connect_agent(PmClient **ret) {
        _cleanup_free_ char *error = NULL;
        if (!arg_socket)
                return fail("--socket is required");
        int r = pm_client_connect(arg_socket, 60000, ret, &error);
        if (r < 0)
                return fail("%s: %s", arg_socket, error ? error : strerror(-r));
        return 0;
}

static void app_name(uint32_t i, char *buf, size_t size) { snprintf(buf, size, "%s-%04u", arg_prefix, i); }

/* Makes one call, times it, and checks that it succeeded: -EREMOTEIO when
 * the agent answered with an error, another negative errno when the
 * transport failed. */
static int timed_call(PmClient *c, PmRequest *req, const char *what, PmResponse **ret, int64_t *ret_ns) {
        PmResponse *resp = NULL;
        int64_t t0 = pm_now_monotonic_ns();
        int r = pm_client_call(c, req, &resp);
        int64_t t1 = pm_now_monotonic_ns();
        if (r < 0)
                return fail("%s: transport: %s", what, strerror(-r));
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK) {
                fail("%s: %s: %s", what, pm_code_name(resp->code), resp->message);
                pm_response_free(resp);
                return -EREMOTEIO;
        }
        *ret_ns = t1 - t0;
        if (ret)
                *ret = resp;
        else
                pm_response_free(resp);
        return 0;
}

static int inject_one(PmClient *c, const char *name, bool start, int64_t *ret_ns) {
        char *argv[] = { (char *) "/bin/sleep", (char *) "infinity" };
        PmAppSpec spec = PODMUTATOR__V1__APP_SPEC__INIT;
        spec.name = (char *) name;
        spec.n_argv = ELEMENTSOF(argv);
        spec.argv = argv;
        if (arg_privileged)
                spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        if (arg_rootfs)
                spec.rootfs = (char *) arg_rootfs;
        Podmutator__V1__InjectRequest inject = PODMUTATOR__V1__INJECT_REQUEST__INIT;
        inject.spec = &spec;
        inject.start = start;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_INJECT;
        req.inject = &inject;

        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = timed_call(c, &req, name, &resp, ret_ns);
        if (r < 0)
                return r;
        /* Type=exec: a start job is done once the main process runs. */
        const Podmutator__V1__AppStatus *st = resp->inject ? resp->inject->status : NULL;
        if (start && (!st || st->state != PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING || st->pid == 0))
                return fail("%s: Inject+Start answered without a running main PID (state %d, pid %u)", name,
                            st ? (int) st->state : -1, st ? st->pid : 0);
        return 0;
}

static int remove_one(PmClient *c, const char *name, bool force, int64_t *ret_ns) {
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        ref.app = (char *) name;
        Podmutator__V1__RemoveRequest rm = PODMUTATOR__V1__REMOVE_REQUEST__INIT;
        rm.ref = &ref;
        rm.force = force;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_REMOVE;
        req.remove = &rm;
        return timed_call(c, &req, name, NULL, ret_ns);
}

/* status: Status round trips on one connection, about one app. Without
 * --app, a temporary app (injected, not started) is asked about. */
static int verb_status(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        Samples s = { 0 };
        char temp[64];
        int64_t ns;
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        const char *app = arg_app;
        if (!app) {
                snprintf(temp, sizeof(temp), "%s-status-%d", arg_prefix, (int) getpid());
                r = inject_one(c, temp, false, &ns);
                if (r < 0)
                        return r;
                app = temp;
        }
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        ref.app = (char *) app;
        Podmutator__V1__StatusRequest st = PODMUTATOR__V1__STATUS_REQUEST__INIT;
        st.ref = &ref;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_STATUS;
        req.status = &st;
        /* A few unmeasured calls warm caches and the scheduler. */
        for (uint32_t i = 0; i < 50 && r >= 0; i++)
                r = timed_call(c, &req, "Status", NULL, &ns);
        for (uint32_t i = 0; i < arg_calls && r >= 0; i++) {
                r = timed_call(c, &req, "Status", NULL, &ns);
                if (r >= 0)
                        r = samples_add(&s, ns);
        }
        if (r >= 0)
                report("status", "Status round trip", &s);
        samples_done(&s);
        if (!arg_app) {
                int q = remove_one(c, temp, true, &ns);
                if (r >= 0)
                        r = q;
        }
        return r;
}

/* inject: Inject with start=true (false with --no-start) of apps
 * --from..--to, one call each. An app the agent fails to inject or start is
 * counted, removed and tried once more (not timed), so that the pod still
 * fills up; a second failure ends the run. */
static int verb_inject(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        Samples s = { 0 };
        unsigned failed = 0;
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        for (uint32_t i = arg_from; i <= arg_to && r >= 0; i++) {
                char name[64];
                int64_t ns;
                app_name(i, name, sizeof(name));
                r = inject_one(c, name, !arg_no_start, &ns);
                if (r >= 0)
                        r = samples_add(&s, ns);
                else if (r == -EREMOTEIO) {
                        failed++;
                        (void) remove_one(c, name, true, &ns);
                        r = inject_one(c, name, !arg_no_start, &ns);
                }
        }
        if (r >= 0) {
                char what[96], count[16];
                const char *key = arg_no_start ? "inject" : "inject_start";
                snprintf(what, sizeof(what), "Inject%s, apps %u-%u", arg_no_start ? "" : "+Start", arg_from, arg_to);
                report(key, what, &s);
                snprintf(what, sizeof(what), "%s.failed", key);
                snprintf(count, sizeof(count), "%u", failed);
                report_value(what, "  failed once, then retried", count);
        }
        samples_done(&s);
        return r;
}

/* list: List of every app, --calls times; --expect checks the count. */
static int verb_list(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        Samples s = { 0 };
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        Podmutator__V1__ListRequest list = PODMUTATOR__V1__LIST_REQUEST__INIT;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_LIST;
        req.list = &list;
        size_t n_apps = 0;
        for (uint32_t i = 0; i < arg_calls + 5 && r >= 0; i++) {
                PmResponse *resp = NULL;
                int64_t ns;
                r = timed_call(c, &req, "List", &resp, &ns);
                if (r < 0)
                        break;
                n_apps = resp->list ? resp->list->n_apps : 0;
                pm_response_free(resp);
                if (arg_expect > 0 && n_apps != arg_expect)
                        r = fail("List returned %zu apps, expected %u", n_apps, arg_expect);
                else if (i >= 5) /* the first few warm up */
                        r = samples_add(&s, ns);
        }
        if (r >= 0) {
                char what[96], count[32];
                snprintf(what, sizeof(what), "List, %zu apps", n_apps);
                report("list", what, &s);
                snprintf(count, sizeof(count), "%zu", n_apps);
                report_value("list.apps", "  apps listed", count);
        }
        samples_done(&s);
        return r;
}

/* stop: Stop of apps --from..--to, with each app's own grace period (the
 * SIGTERM ends `sleep` at once). */
static int verb_stop(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        Samples s = { 0 };
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        for (uint32_t i = arg_from; i <= arg_to && r >= 0; i++) {
                char name[64];
                int64_t ns;
                app_name(i, name, sizeof(name));
                Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
                ref.app = name;
                Podmutator__V1__StopRequest stop = PODMUTATOR__V1__STOP_REQUEST__INIT;
                stop.ref = &ref;
                PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
                req.call_case = PODMUTATOR__V1__REQUEST__CALL_STOP;
                req.stop = &stop;
                PmResponse *resp = NULL;
                r = timed_call(c, &req, name, &resp, &ns);
                if (r < 0)
                        break;
                const Podmutator__V1__AppStatus *st = resp->stop ? resp->stop->status : NULL;
                bool exited = st && st->state == PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED;
                pm_response_free(resp);
                if (!exited)
                        r = fail("%s: Stop answered before the app exited", name);
                else
                        r = samples_add(&s, ns);
        }
        if (r >= 0) {
                char what[96];
                snprintf(what, sizeof(what), "Stop, apps %u-%u", arg_from, arg_to);
                report("stop", what, &s);
        }
        samples_done(&s);
        return r;
}

/* remove: Remove of apps --from..--to (stopped ones, unless --force). */
static int verb_remove(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        Samples s = { 0 };
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        for (uint32_t i = arg_from; i <= arg_to && r >= 0; i++) {
                char name[64];
                int64_t ns;
                app_name(i, name, sizeof(name));
                r = remove_one(c, name, arg_force, &ns);
                if (r >= 0)
                        r = samples_add(&s, ns);
        }
        if (r >= 0) {
                char what[96];
                snprintf(what, sizeof(what), "Remove%s, apps %u-%u", arg_force ? " --force" : "", arg_from, arg_to);
                report("remove", what, &s);
        }
        samples_done(&s);
        return r;
}

/* ---- the pod's systemd, straight over sd-bus ---------------------------- */

static void bus_closep(sd_bus **bus) { *bus = sd_bus_flush_close_unref(*bus); }

/* Like the agent: the private socket, no Hello. */
static int connect_systemd(sd_bus **ret) {
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        if (!arg_address)
                return fail("--address is required");
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, arg_address);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return fail("%s: %s", arg_address, strerror(-r));
        *ret = TAKE_PTR(bus);
        return 0;
}

/* sdbus: round trips to the pod's systemd, the floor under Status. */
static int verb_sdbus(void) {
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        Samples ping = { 0 }, get = { 0 };
        int r = connect_systemd(&bus);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < arg_calls + 50 && r >= 0; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *state = NULL;
                int64_t t0 = pm_now_monotonic_ns();
                r = sd_bus_call_method(bus, SD_DEST, SD_PATH, "org.freedesktop.DBus.Peer", "Ping", &e, NULL, "");
                int64_t t1 = pm_now_monotonic_ns();
                if (r >= 0)
                        r = sd_bus_get_property_string(bus, SD_DEST,
                                                       "/org/freedesktop/systemd1/unit/podmutator_2eservice",
                                                       "org.freedesktop.systemd1.Unit", "ActiveState", &e, &state);
                int64_t t2 = pm_now_monotonic_ns();
                if (r < 0)
                        fail("sd-bus call: %s", e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                if (r >= 0 && i >= 50) {
                        r = samples_add(&ping, t1 - t0);
                        if (r >= 0)
                                r = samples_add(&get, t2 - t1);
                }
        }
        if (r >= 0) {
                report("sdbus_ping", "sd-bus Peer.Ping to the pod's systemd", &ping);
                report("sdbus_get", "sd-bus Get ActiveState of a unit", &get);
        }
        samples_done(&ping);
        samples_done(&get);
        return r;
}

typedef struct JobWatch {
        const char *path; /* the job waited for */
        char result[32];
        bool done;
} JobWatch;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->path && streq(path, w->path)) {
                snprintf(w->result, sizeof(w->result), "%s", result);
                w->done = true;
        }
        return 0;
}

/* Waits for the JobRemoved of the job at path. */
static int wait_job(sd_bus *bus, JobWatch *w, const char *path) {
        w->path = path;
        w->done = false;
        while (!w->done) {
                int r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        w->path = NULL;
        return streq(w->result, "done") ? 0 : -EIO;
}

/* Calls a method that queues a job, and waits for the job. */
static int job_call(sd_bus *bus, JobWatch *w, sd_bus_message *req, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *job;
        int r = sd_bus_call(bus, req, 0, &e, &reply);
        if (r < 0) {
                fail("%s: %s", what, e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return fail("%s: unreadable reply: %s", what, strerror(-r));
        r = wait_job(bus, w, job);
        if (r < 0)
                return fail("%s: job ended %s", what, w->result);
        return 0;
}

static int unit_job(sd_bus *bus, JobWatch *w, const char *method, const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        int r = sd_bus_message_new_method_call(bus, &req, SD_DEST, SD_PATH, SD_MANAGER, method);
        if (r >= 0)
                r = sd_bus_message_append(req, "ss", unit, "replace");
        if (r < 0)
                return fail("%s %s: %s", method, unit, strerror(-r));
        return job_call(bus, w, req, unit);
}

static int start_transient(sd_bus *bus, JobWatch *w, const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        int r = sd_bus_message_new_method_call(bus, &req, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(req, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_append(req, "a(sv)a(sa(sv))", 5, "Type", "s", "exec", "DefaultDependencies",
                                          "b", false, "RemainAfterExit", "b", true, "Description", "s",
                                          "pm-bench transient reference", "ExecStart", "a(sasb)", 1,
                                          "/bin/sleep", 2, "sleep", "infinity", false, 0);
        if (r < 0)
                return fail("StartTransientUnit %s: %s", unit, strerror(-r));
        return job_call(bus, w, req, unit);
}

/* A fresh unit file: the text of --template, or a minimal service. */
static int write_unit_file(const char *unit, const char *template) {
        _cleanup_free_ char *path = NULL;
        static const char minimal[] = "[Unit]\n"
                                   "Description=pm-bench unit file reference\n"
                                   "DefaultDependencies=no\n"
                                   "\n"
                                   "[Service]\n"
                                   "Type=exec\n"
                                   "ExecStart=/bin/sleep infinity\n"
                                   "RemainAfterExit=yes\n";
        const char *text = template ? template : minimal;
        if (asprintf(&path, "%s/%s", arg_unit_dir, unit) < 0)
                return -ENOMEM;
        return pm_write_file_atomic(path, text, strlen(text), 0644);
}

static void remove_unit_file(const char *unit) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", arg_unit_dir, unit) >= 0)
                (void) unlink(path);
}

/* The template of --mode dropin: every instance's own text is a drop-in. */
static const char dropin_template[] = "[Unit]\n"
                                      "Description=pm-bench template\n"
                                      "DefaultDependencies=no\n"
                                      "\n"
                                      "[Service]\n"
                                      "Type=exec\n"
                                      "RemainAfterExit=yes\n";

/* --mode dropin: instance i of the template pm-bench-t<tag>@.service, with
 * its drop-in directory made before the clock runs. */
static int dropin_path(const char *tag, uint32_t i, bool file, char *buf, size_t size) {
        int n = snprintf(buf, size, "%s/pm-bench-t%s@%u.service.d%s", arg_unit_dir, tag, i, file ? "/app.conf" : "");
        return n > 0 && (size_t) n < size ? 0 : -ENAMETOOLONG;
}

/* Writes the template and every instance's drop-in directory, then makes
 * systemd re-read its unit directories once (loading a name that does not
 * exist), so that no start below pays for it. */
static int dropin_setup(sd_bus *bus, const char *tag, uint32_t count) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/pm-bench-t%s@.service", arg_unit_dir, tag);
        int r = pm_write_file_atomic(path, dropin_template, strlen(dropin_template), 0644);
        for (uint32_t i = 0; i < count && r >= 0; i++) {
                r = dropin_path(tag, i, false, path, sizeof(path));
                if (r >= 0 && mkdir(path, 0755) < 0)
                        r = -errno;
        }
        if (r < 0)
                return fail("%s: %s", path, strerror(-r));
        snprintf(path, sizeof(path), "pm-bench-refresh-%s.service", tag);
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", NULL, NULL, "s", path);
        return r < 0 ? fail("LoadUnit %s: %s", path, strerror(-r)) : 0;
}

static void dropin_cleanup(const char *tag, uint32_t count) {
        char path[PATH_MAX];
        for (uint32_t i = 0; i < count; i++) {
                if (dropin_path(tag, i, true, path, sizeof(path)) >= 0)
                        (void) unlink(path);
                if (dropin_path(tag, i, false, path, sizeof(path)) >= 0)
                        (void) rmdir(path);
        }
        snprintf(path, sizeof(path), "%s/pm-bench-t%s@.service", arg_unit_dir, tag);
        (void) unlink(path);
}

typedef enum StartMode { START_TRANSIENT, START_UNITFILE, START_DROPIN } StartMode;

/* Starts unit number i the way mode says, until its main process runs. */
static int sdstart_one(sd_bus *bus, JobWatch *w, StartMode mode, const char *tag, uint32_t i, const char *template,
                       char *unit, size_t size) {
        static const char minimal_dropin[] = "[Service]\nExecStart=/bin/sleep infinity\n";
        char path[PATH_MAX];
        int r;

        switch (mode) {
        case START_TRANSIENT:
                snprintf(unit, size, "pm-bench-tr-%s-%u.service", tag, i);
                return start_transient(bus, w, unit);
        case START_UNITFILE:
                snprintf(unit, size, "pm-bench-file-%s-%u.service", tag, i);
                r = write_unit_file(unit, template);
                if (r < 0)
                        return fail("%s/%s: %s", arg_unit_dir, unit, strerror(-r));
                return unit_job(bus, w, "StartUnit", unit);
        case START_DROPIN:
                snprintf(unit, size, "pm-bench-t%s@%u.service", tag, i);
                const char *text = template ? template : minimal_dropin;
                r = dropin_path(tag, i, true, path, sizeof(path));
                if (r >= 0)
                        r = pm_write_file_atomic(path, text, strlen(text), 0644);
                if (r < 0)
                        return fail("%s: %s", path, strerror(-r));
                return unit_job(bus, w, "StartUnit", unit);
        }
        return -EINVAL;
}

/* sdstart: --calls units started straight on the pod's systemd, each until
 * its main process runs, then stopped. --mode transient uses
 * StartTransientUnit; --mode unitfile writes a fresh unit file (atomically,
 * with fsync, as the agent does) and calls StartUnit with no daemon-reload;
 * --mode dropin starts a fresh instance of a template whose own text is a
 * drop-in written into a directory made beforehand (the agent's path). */
static int verb_sdstart(void) {
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        Samples start = { 0 }, stop = { 0 };
        _cleanup_free_ char *template = NULL;
        JobWatch w = { 0 };
        StartMode mode;
        char tag[16];
        int r;

        if (streq(arg_mode, "transient"))
                mode = START_TRANSIENT;
        else if (streq(arg_mode, "unitfile"))
                mode = START_UNITFILE;
        else if (streq(arg_mode, "dropin"))
                mode = START_DROPIN;
        else
                return fail("--mode is transient, unitfile or dropin");
        if (mode != START_TRANSIENT && !arg_unit_dir)
                return fail("--mode %s needs --unit-dir", arg_mode);
        if (arg_template) {
                r = pm_read_file(arg_template, 1024 * 1024, &template, NULL);
                if (r < 0)
                        return fail("%s: %s", arg_template, strerror(-r));
        }
        r = connect_systemd(&bus);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, "");
        if (r < 0)
                return fail("cannot subscribe to systemd's signals: %s", strerror(-r));
        r = pm_random_hex(tag, 4);
        if (r >= 0 && mode == START_DROPIN)
                r = dropin_setup(bus, tag, arg_calls);

        for (uint32_t i = 0; i < arg_calls && r >= 0; i++) {
                char unit[96];
                int64_t t0 = pm_now_monotonic_ns();
                r = sdstart_one(bus, &w, mode, tag, i, template, unit, sizeof(unit));
                int64_t t1 = pm_now_monotonic_ns();
                if (r >= 0)
                        r = samples_add(&start, t1 - t0);
                if (r < 0)
                        break;
                /* Stop at once: the next start sees as many units as this one. */
                t0 = pm_now_monotonic_ns();
                r = unit_job(bus, &w, "StopUnit", unit);
                t1 = pm_now_monotonic_ns();
                if (r >= 0)
                        r = samples_add(&stop, t1 - t0);
                if (mode == START_UNITFILE)
                        remove_unit_file(unit);
        }
        if (mode == START_DROPIN)
                dropin_cleanup(tag, arg_calls);
        if (r >= 0) {
                /* Keys: sd_transient, sd_unitfile, sd_appunitfile, sd_dropin, sd_appdropin. */
                static const char *const keys[] = { "transient", "unitfile", "dropin" };
                static const char *const labels[] = { "sd-bus StartTransientUnit, Type=exec",
                                                      "unit file + StartUnit", "template + drop-in + StartUnit" };
                char k_start[64], k_stop[64], label[96];
                bool app = arg_template && mode != START_TRANSIENT;
                snprintf(k_start, sizeof(k_start), "sd_%s%s_start", app ? "app" : "", keys[mode]);
                snprintf(k_stop, sizeof(k_stop), "sd_%s%s_stop", app ? "app" : "", keys[mode]);
                if (mode == START_TRANSIENT)
                        snprintf(label, sizeof(label), "%s", labels[mode]);
                else
                        snprintf(label, sizeof(label), "sd-bus %s %s", app ? "app's" : "minimal", labels[mode]);
                report(k_start, label, &start);
                report(k_stop, "  sd-bus StopUnit of it", &stop);
        }
        samples_done(&start);
        samples_done(&stop);
        return r;
}

/* pair: the agent's Inject+Start of apps --from..--to, each paired with the
 * same unit file (--template: an app's own) started straight on the pod's
 * systemd and stopped again. Pairs taken back to back see the same load, so
 * the median of their differences is the agent's own share even on a busy
 * machine. Needs --socket, --address, --unit-dir and --template. */
static int verb_pair(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        _cleanup_(bus_closep) sd_bus *bus = NULL;
        _cleanup_free_ char *template = NULL;
        Samples agent = { 0 }, plain = { 0 }, diff = { 0 };
        JobWatch w = { 0 };
        char tag[16];
        int r;

        if (!arg_template || !arg_unit_dir)
                return fail("pair needs --template and --unit-dir");
        r = pm_read_file(arg_template, 1024 * 1024, &template, NULL);
        if (r < 0)
                return fail("%s: %s", arg_template, strerror(-r));
        r = connect_agent(&c);
        if (r >= 0)
                r = connect_systemd(&bus);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r >= 0)
                r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, "");
        if (r < 0)
                return fail("cannot subscribe to systemd's signals: %s", strerror(-r));
        r = pm_random_hex(tag, 4);
        if (r >= 0)
                r = dropin_setup(bus, tag, arg_to - arg_from + 1);

        for (uint32_t i = arg_from; i <= arg_to && r >= 0; i++) {
                char name[64], unit[96];
                int64_t ns_agent = 0, ns_plain = 0;
                app_name(i, name, sizeof(name));
                snprintf(unit, sizeof(unit), "pm-bench-pair-%s-%u.service", tag, i);
                /* Every other pair the other way round: whichever start comes
                 * second pays for the tail of the first (journald, signals). */
                for (int k = 0; k < 2 && r >= 0; k++) {
                        if ((k == 0) == (i % 2 == 0)) {
                                r = inject_one(c, name, true, &ns_agent);
                                continue;
                        }
                        int64_t t0 = pm_now_monotonic_ns();
                        r = sdstart_one(bus, &w, START_DROPIN, tag, i - arg_from, template, unit, sizeof(unit));
                        ns_plain = pm_now_monotonic_ns() - t0;
                        if (r >= 0)
                                r = unit_job(bus, &w, "StopUnit", unit);
                }
                if (r >= 0)
                        r = samples_add(&agent, ns_agent);
                if (r >= 0)
                        r = samples_add(&plain, ns_plain);
                if (r >= 0)
                        r = samples_add(&diff, ns_agent - ns_plain);
        }
        dropin_cleanup(tag, arg_to - arg_from + 1);
        if (r >= 0) {
                report("pair_agent", "Inject+Start through the agent", &agent);
                report("pair_systemd", "  same drop-in + StartUnit, no agent", &plain);
                report("pair_overhead", "  agent's share (pairwise difference)", &diff);
        }
        samples_done(&agent);
        samples_done(&plain);
        samples_done(&diff);
        return r;
}

/* ---- command line ----------------------------------------------------- */

typedef struct Verb {
        const char *name;
        int (*run)(void);
} Verb;

static const Verb verbs[] = {
        { "status", verb_status }, { "inject", verb_inject }, { "list", verb_list },
        { "stop", verb_stop },     { "remove", verb_remove }, { "sdbus", verb_sdbus },
        { "sdstart", verb_sdstart }, { "pair", verb_pair },
};

static void help(void) {
        printf("Usage: " PROGRAM " [OPTIONS] VERB\n"
               "\n"
               "Measures the PodMutator control API through the real protocol, and the\n"
               "pod's systemd straight over sd-bus for reference. Apps are named\n"
               "PREFIX-NNNN and run /bin/sleep infinity.\n"
               "\n"
               "Verbs (through the agent, --socket):\n"
               "  status    Status round trips on one connection (--calls, default 2000);\n"
               "            about --app, else about a temporary app\n"
               "  inject    Inject with start=true of apps --from..--to; each call returns\n"
               "            once the app's main process runs (--no-start: only Inject)\n"
               "  list      List of every app, --calls times; --expect N checks the count\n"
               "  stop      Stop of apps --from..--to (their SIGTERM grace period)\n"
               "  remove    Remove of apps --from..--to (--force: running ones too)\n"
               "Verbs (straight on the pod's systemd, --address; run inside the pod's\n"
               "PID namespace, which its systemd requires of private-socket peers):\n"
               "  sdbus     Peer.Ping and a property Get round trips (--calls)\n"
               "  sdstart   --calls units started until their main process runs, and\n"
               "            stopped: --mode transient (StartTransientUnit) or unitfile\n"
               "            (a fresh unit file in --unit-dir, then StartUnit, no reload;\n"
               "            its text is --template FILE, else a minimal Type=exec service)\n"
               "Both (run inside the pod's PID namespace):\n"
               "  pair      Inject+Start of apps --from..--to through the agent, each\n"
               "            followed by the --template unit started straight on systemd;\n"
               "            prints both and the median of their differences\n"
               "\n"
               "Options:\n"
               "  --socket PATH      the pod's control socket\n"
               "  --address ADDR     the pod's systemd, e.g. unix:path=/proc/PID/root/run/systemd/private\n"
               "  --unit-dir DIR     the pod's /run/systemd/system as seen from here\n"
               "  --prefix NAME      app name prefix (default bench)\n"
               "  --from N --to N    app numbers (default 1..10)\n"
               "  --calls N          calls to time (default 2000)\n"
               "  --app NAME         status: the app to ask about\n"
               "  --expect N         list: the number of apps there must be\n"
               "  --mode MODE        sdstart: transient or unitfile\n"
               "  --template FILE    sdstart --mode unitfile: the unit file's text\n"
               "  --force            remove: stop running apps first\n"
               "  --privileged       inject: apps of the privileged profile (no sandboxing)\n"
               "  --rootfs DIR       inject: apps in this rootfs (a directory in the pod)\n"
               "  --no-start         inject: do not start the apps\n"
               "  --kv               print key=value lines instead of a table\n"
               "  --label L          --kv: prefix every key with L.\n"
               "Exit status: 0 success, 1 a call failed, 2 bad command line.\n");
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs(PROGRAM ": ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\nTry '" PROGRAM " --help'.\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

static int parse_count(const char *opt, const char *s, uint32_t *ret) {
        uint32_t v;
        if (pm_parse_u32(s, &v) < 0 || v == 0 || v > 1000000)
                return usage_error("%s: not a count from 1 to 1000000: %s", opt, s);
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        enum { OPT_SOCKET = 0x100, OPT_ADDRESS, OPT_UNIT_DIR, OPT_PREFIX, OPT_FROM, OPT_TO, OPT_CALLS, OPT_APP,
               OPT_EXPECT, OPT_MODE, OPT_TEMPLATE, OPT_FORCE, OPT_PRIVILEGED, OPT_ROOTFS, OPT_NO_START, OPT_KV, OPT_LABEL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "address", required_argument, NULL, OPT_ADDRESS },
                { "unit-dir", required_argument, NULL, OPT_UNIT_DIR },
                { "prefix", required_argument, NULL, OPT_PREFIX },
                { "from", required_argument, NULL, OPT_FROM },
                { "to", required_argument, NULL, OPT_TO },
                { "calls", required_argument, NULL, OPT_CALLS },
                { "app", required_argument, NULL, OPT_APP },
                { "expect", required_argument, NULL, OPT_EXPECT },
                { "mode", required_argument, NULL, OPT_MODE },
                { "template", required_argument, NULL, OPT_TEMPLATE },
                { "force", no_argument, NULL, OPT_FORCE },
                { "privileged", no_argument, NULL, OPT_PRIVILEGED },
                { "rootfs", required_argument, NULL, OPT_ROOTFS },
                { "no-start", no_argument, NULL, OPT_NO_START },
                { "kv", no_argument, NULL, OPT_KV },
                { "label", required_argument, NULL, OPT_LABEL },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 'h': help(); return 0;
                case OPT_SOCKET: arg_socket = optarg; break;
                case OPT_ADDRESS: arg_address = optarg; break;
                case OPT_UNIT_DIR: arg_unit_dir = optarg; break;
                case OPT_PREFIX:
                        if (!pm_dns_label_valid(optarg) || strlen(optarg) > 40)
                                return usage_error("--prefix: not a short DNS label: %s", optarg);
                        arg_prefix = optarg;
                        break;
                case OPT_FROM: r = parse_count("--from", optarg, &arg_from); break;
                case OPT_TO: r = parse_count("--to", optarg, &arg_to); break;
                case OPT_CALLS: r = parse_count("--calls", optarg, &arg_calls); break;
                case OPT_APP: arg_app = optarg; break;
                case OPT_EXPECT: r = parse_count("--expect", optarg, &arg_expect); break;
                case OPT_MODE: arg_mode = optarg; break;
                case OPT_TEMPLATE: arg_template = optarg; break;
                case OPT_FORCE: arg_force = true; break;
                case OPT_PRIVILEGED: arg_privileged = true; break;
                case OPT_ROOTFS: arg_rootfs = optarg; break;
                case OPT_NO_START: arg_no_start = true; break;
                case OPT_KV: arg_kv = true; break;
                case OPT_LABEL: arg_label = optarg; break;
                default: return EXIT_USAGE;
                }
                if (r != 0)
                        return r;
        }
        if (optind != argc - 1)
                return usage_error("expected one verb");
        if (arg_from > arg_to)
                return usage_error("--from %u is after --to %u", arg_from, arg_to);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind])) {
                        print_header();
                        return verbs[i].run() < 0 ? 1 : 0;
                }
        return usage_error("unknown verb: %s", argv[optind]);
}
