/* podmutatord: the agent inside a pod. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "events.h"
#include "log.h"
#include "logd.h"
#include "logkeep.h"
#include "logs.h"
#include "manager.h"
#include "ops.h"
#include "paths.h"
#include "records.h"
#include "slots.h"
#include "server.h"
#include "util.h"
#include "view.h"

static void usage(void) {
        printf("Usage: podmutatord [OPTIONS]\n"
               "\n"
               "The PodMutator agent: serves the control API of the pod it runs in.\n\n"
               "  --pod-name NAME    the pod's name, reported by Info\n"
               "  --socket PATH      control socket (default " PM_POD_CONTROL_SOCKET ")\n"
               "  --state-dir DIR    agent state (default " PM_POD_STATE_DIR ")\n"
               "  --unit-dir DIR     where app units are written (default /run/systemd/system)\n"

               "  --logd             be the pod's log daemon instead (pm-logd.service)\n"
               "  --logkeep          be the pod's log keeper instead (pm-logkeep.service)\n"
               "  --debug            log debug messages\n");
}

static void on_watchdog(uv_timer_t *t) { sd_notify(0, "WATCHDOG=1"); }

static void on_stop_signal(uv_signal_t *h, int signum) {
        Manager *m = h->data;
        pm_log_info("signal %d: shutting down", signum);
        sd_notify(0, "STOPPING=1");
        uv_stop(m->loop);
}

/* What the pod's cgroup setup allows, read once at start-up. */
static void read_cgroup_mode(Manager *m) {
        PmCgroupMode mode = pm_cgroup_mode();
        m->cgroup_mode = pm_cgroup_mode_name(mode);
        _cleanup_free_ char *controllers = NULL;
        if (mode == PM_CGROUP_UNIFIED &&
            pm_read_file("/sys/fs/cgroup/system.slice/cgroup.subtree_control", 4096, &controllers, NULL) >= 0)
                m->limits_enforced = strstr(controllers, "memory") && strstr(controllers, "cpu") &&
                                     strstr(controllers, "pids");
}

static void on_manager_version(Manager *m) {
        _cleanup_free_ char *v = NULL;
        if (sd_bus_get_property_string(m->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "Version", NULL, &v) >= 0)
                snprintf(m->systemd_version, sizeof(m->systemd_version), "%s", v);
}

static void on_recovered_stop(Manager *m, App *a, PmCode code, const char *error, void *userdata) {
        if (code != PODMUTATOR__V1__CODE__CODE_OK)
                pm_log_warning("app %s: finishing its stop failed: %s", a->id, error);
}

/* A stop that was under way when the agent went away gets its grace period
 * and SIGKILL again; systemd itself never escalates (TimeoutStopSec=infinity). */
static void resume_stops(Manager *m) {
        for (App *a = m->store.first; a; a = a->next)
                if (a->active == UNIT_DEACTIVATING)
                        pm_op_stop(m, a, -1, on_recovered_stop, NULL);
}

/* Start-up ends here, once the store matches systemd: only then is the
 * socket opened and readiness reported. */
static void on_synced(Manager *m, int r) {
        if (r < 0) {
                pm_log_error("cannot read the state of the pod's units: %s", strerror(-r));
                uv_stop(m->loop);
                return;
        }
        resume_stops(m);
        m->serving = true;
        r = pm_server_start(m, m->socket_path);
        if (r < 0) {
                pm_log_error("cannot listen on %s: %s", m->socket_path, uv_strerror(r));
                uv_stop(m->loop);
                return;
        }
        uint64_t wd_usec;
        if (sd_watchdog_enabled(0, &wd_usec) > 0) {
                uv_timer_init(m->loop, &m->watchdog);
                uv_timer_start(&m->watchdog, on_watchdog, 0, wd_usec / 2000);
        }
        sd_notifyf(0, "READY=1\nSTATUS=serving %zu apps on %s", m->store.count, m->socket_path);
        pm_log_info("ready: %zu apps, listening on %s", m->store.count, m->socket_path);
}

/* Without a view, apps are still served: each gets a mount namespace of
 * its own from systemd instead, which costs more at every start. */
static void start_view(Manager *m) {
        PmViewPaths p = {
                .dir = m->view_dir, .root = PM_POD_VIEW_ROOT, .control_dir = m->control_dir, .state_dir = m->state_dir
        };
        if (pm_view_ensure(&p) < 0) {
                pm_log_warning("no app view: apps get a mount namespace each");
                return;
        }
        m->view_root = p.root;
}

static int manager_start(Manager *m) {
        int r = pm_records_init(m);
        if (r < 0) {
                pm_log_error("cannot create %s: %s", m->state_dir, strerror(-r));
                return r;
        }
        start_view(m);
        r = pm_bus_open(m);
        if (r < 0) {
                pm_log_error("cannot connect to the pod's systemd: %s", strerror(-r));
                return r;
        }
        r = pm_slots_init(m);
        if (r < 0)
                return r;
        /* One blocking read at start-up, before anything is served. */
        on_manager_version(m);
        read_cgroup_mode(m);
        r = pm_systemd_subscribe(m);
        if (r >= 0)
                r = pm_records_load_all(m);
        if (r >= 0)
                r = pm_systemd_sync(m, true, on_synced);
        if (r < 0)
                pm_log_error("cannot start: %s", strerror(-r));
        return r;
}

static void manager_done(Manager *m) {
        pm_server_stop(m);
        if (uv_is_active((uv_handle_t *) &m->watchdog))
                uv_close((uv_handle_t *) &m->watchdog, NULL);
        uv_close((uv_handle_t *) &m->sig_term, NULL);
        uv_close((uv_handle_t *) &m->sig_int, NULL);
        pm_logs_done(m);
        pm_slots_done(m);
        pm_bus_close(m);
        /* Let close callbacks run. */
        uv_run(m->loop, UV_RUN_DEFAULT);
        pm_store_done(&m->store);
        pm_hashmap_done(&m->jobs);
        pm_hashmap_done(&m->execs);
        pm_events_free(m);
        uv_loop_close(m->loop);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "pod-name", required_argument, NULL, 'n' },
                { "socket", required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'd' },
                { "unit-dir", required_argument, NULL, 'u' },
                { "debug", no_argument, NULL, 'D' },
                { "logd", no_argument, NULL, 'L' },
                { "logkeep", no_argument, NULL, 'K' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *pod_name = "pod", *socket_path = PM_POD_CONTROL_SOCKET, *state_dir = PM_POD_STATE_DIR;
        const char *unit_dir = "/run/systemd/system";
        bool logd = false, logkeep = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'n': pod_name = optarg; break;
                case 's': socket_path = optarg; break;
                case 'd': state_dir = optarg; break;
                case 'u': unit_dir = optarg; break;
                case 'D': pm_log_set_debug(true); break;
                case 'L': logd = true; break;
                case 'K': logkeep = true; break;
                case 'h': usage(); return EXIT_SUCCESS;
                default: return 2;
                }
        }
        pm_log_set_prefix_levels(getenv("JOURNAL_STREAM") != NULL);
        if (logkeep)
                return pm_logkeep_main(state_dir) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (logd)
                return pm_logd_main(state_dir) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        _cleanup_free_ char *control_dir = strdup(socket_path);
        char *slash = control_dir ? strrchr(control_dir, '/') : NULL;
        if (!slash || slash == control_dir) {
                pm_log_error("--socket must be an absolute path inside a directory");
                return EXIT_FAILURE;
        }
        *slash = '\0';

        uv_loop_t loop;
        uv_loop_init(&loop);
        Manager m = {
                .loop = &loop,
                .pod_name = (char *) pod_name,
                .socket_path = (char *) socket_path,
                .control_dir = control_dir,
                .state_dir = (char *) state_dir,
                .view_dir = PM_POD_VIEW_DIR,
                .unit_dir = (char *) unit_dir,
                .started_at = pm_now_realtime_ns(),
        };
        pm_store_init(&m.store);
        pm_hashmap_init(&m.jobs);
        pm_hashmap_init(&m.execs);
        uv_signal_init(&loop, &m.sig_term);
        uv_signal_init(&loop, &m.sig_int);
        m.sig_term.data = m.sig_int.data = &m;
        uv_signal_start(&m.sig_term, on_stop_signal, SIGTERM);
        uv_signal_start(&m.sig_int, on_stop_signal, SIGINT);
        signal(SIGPIPE, SIG_IGN);
        /* Stream buffers (256 KiB) come from the heap and are reused, not
         * mapped and zero-filled afresh for each frame. */
        mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);

        int r = manager_start(&m);
        if (r >= 0)
                uv_run(&loop, UV_RUN_DEFAULT);
        manager_done(&m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
