/* pm-stage1 stop NAME [--timeout S]
 *
 * Powers the pod off (SIGTERM to systemd-nspawn: the pod's systemd halts),
 * kills it when it takes longer than S seconds, and removes its
 * directories. A pod that is not running but left directories is cleaned
 * up; a pod with no directories at all is an error. */
#include <getopt.h>
#include <inttypes.h>

#include "errmsg.h"
#include "pod.h"
#include "verbs.h"

/* Powers the pod off if it runs, and kills a PID 1 that outlived nspawn. */
static int power_off(const PmPod *pod, int64_t timeout_ms, char **ret_error) {
        _cleanup_close_ int pidfd = -1;
        bool forced = false;
        pid_t pid = 0;
        int r;

        pidfd = pm_pod_open_nspawn(pod, &pid);
        if (pidfd >= 0) {
                r = pm_pod_terminate(pod, pidfd, pid, timeout_ms, -1, &forced, ret_error);
                if (r < 0)
                        return r;
                if (forced && timeout_ms > 0)
                        pm_log_warning("pod %s did not power off within %" PRIi64 ".%03" PRIi64 " s and was killed",
                                       pod->name, timeout_ms / 1000, timeout_ms % 1000);
        }
        return pm_pod_kill_leftovers(pod, ret_error);
}

int pm_verb_stop(int argc, char *argv[]) {
        static const struct option options[] = {
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(pm_pod_freep) PmPod *pod = NULL;
        _cleanup_free_ char *error = NULL;
        int64_t timeout_ms = PM_STOP_TIMEOUT_MS;
        const char *name;
        int c, r;

        /* getopt permutes: options may come before or after the name */
        while ((c = getopt_long(argc, argv, "t:h", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (pm_parse_seconds(optarg, &timeout_ms) < 0)
                                return pm_usage_error("stop", "invalid --timeout '%s': expected seconds", optarg);
                        break;
                case 'h':
                        printf("Usage: pm-stage1 stop NAME [--timeout S]\n");
                        return PM_EXIT_OK;
                default:
                        return PM_EXIT_USAGE;
                }
        if (optind >= argc)
                return pm_usage_error("stop", "missing pod name");
        name = argv[optind++];
        if (optind < argc)
                return pm_usage_error("stop", "unexpected argument '%s'", argv[optind]);
        if (!pm_dns_label_valid(name))
                return pm_usage_error("stop", "invalid pod name '%s': it must be a lowercase DNS label", name);

        r = pm_pod_new(name, false, &pod, &error);
        if (r < 0)
                goto fail;
        if (!pm_pod_exists(pod)) {
                r = pm_errorf(&error, -ENOENT, "no such pod: %s", name);
                goto fail;
        }

        /* Not under the lock: a pm-stage1 running the pod in the
         * foreground holds it until the pod is down. */
        r = power_off(pod, timeout_ms, &error);
        if (r < 0)
                goto fail;

        /* That pm-stage1 removes the directories itself once the pod is
         * down; wait for it. A start that was under way ends (the pod it
         * started is gone) or has finished (the pod runs again): under the
         * lock, nobody can start it any more, so look once more. */
        r = pm_pod_lock(pod, PM_LOCK_TIMEOUT_MS, &error);
        if (r == -ENOENT) {
                /* no state dir (any more): what may be left is the run dir */
                r = pm_rm_rf(pod->run_dir);
                if (r < 0)
                        r = pm_errorf(&error, r, "cannot remove %s: %m", pod->run_dir);
                if (r < 0)
                        goto fail;
                return PM_EXIT_OK;
        }
        if (r < 0)
                goto fail;
        r = power_off(pod, timeout_ms, &error);
        if (r < 0)
                goto fail;
        r = pm_pod_remove(pod, &error);
        if (r < 0)
                goto fail;
        return PM_EXIT_OK;

fail:
        if (error)
                pm_log_error(r, "%s", error);
        else
                pm_log_error(r, "cannot stop pod %s: %m", name);
        return PM_EXIT_FAILURE;
}
