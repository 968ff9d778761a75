/* A pod on the node: where its files are, whether it runs, and how it is
 * stopped and removed.
 *
 * Layout (the two base directories can be moved with PM_STATE_ROOT and
 * PM_RUN_ROOT):
 *   PM_NODE_STATE_DIR/NAME/          mode 0700, the pod's lock (flock)
 *       root/                        the root systemd-nspawn boots
 *       console.log                  nspawn's stdout+stderr: the console
 *       nspawn.pid                   the node PID of systemd-nspawn
 *       leader.pid                   the node PID of the pod's PID 1
 *       manifest.json                a copy of the manifest, if any
 *   PM_NODE_RUN_DIR/NAME/            mode 0700, bound at PM_POD_CONTROL_DIR
 *       control.sock                 created by the agent
 *
 * A recorded PID is trusted only after checking that the process is still
 * what it was: nspawn by the "--directory=ROOT" of its command line, the
 * pod's PID 1 by being PID 1 of a nested PID namespace whose root directory
 * is root/. A stale PID file is never a reason to signal a stranger.
 *
 * The lock on the state directory is held by the pm-stage1 that starts the
 * pod (until it is ready, or for the whole life of a foreground pod) and by
 * whoever removes the pod's directories. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum PmPodState {
        PM_POD_STATE_RUNNING,
        PM_POD_STATE_DEAD,
        _PM_POD_STATE_MAX,
        _PM_POD_STATE_INVALID = -EINVAL,
} PmPodState;

const char *pm_pod_state_to_string(PmPodState s);

typedef struct PmPod {
        char *name;
        char *machine;   /* systemd-nspawn --machine */
        char *state_dir;
        char *run_dir;
        char *root_dir;
        char *console_path;
        char *nspawn_pid_path;
        char *leader_pid_path;
        char *cgroup_record_path; /* the pod's own cgroups, one path a line */
        char *manifest_path;
        char *socket_path;
        int lock_fd;     /* the state dir, flock()ed; -1 when not held */
} PmPod;

/* Seconds systemd-nspawn and the pod's PID 1 get to die after SIGKILL. */
#define PM_POD_KILL_TIMEOUT_MS 5000

/* A pod handle for name (a lowercase DNS label). The base directories are
 * made canonical; create_roots creates them if missing, otherwise a
 * missing base is -ENOENT (no pods at all). Nothing of the pod is touched. */
int pm_pod_new(const char *name, bool create_roots, PmPod **ret, char **ret_error);
PmPod *pm_pod_free(PmPod *pod);
static inline void pm_pod_freep(PmPod **pod) {
        pm_pod_free(*pod);
}

/* true if the pod has a state or a run directory. */
bool pm_pod_exists(const PmPod *pod);

/* For a new run: creates the state directory and takes the lock. -EEXIST
 * if the pod is running, -EBUSY if another pm-stage1 holds it. What a dead
 * instance of the same name left behind is killed and removed, and
 * *ret_replaced set. */
int pm_pod_claim(PmPod *pod, bool *ret_replaced, char **ret_error);
/* Takes the lock, waiting at most timeout_ms. -ENOENT if the state
 * directory is gone, or was replaced by another one meanwhile. */
int pm_pod_lock(PmPod *pod, int64_t timeout_ms, char **ret_error);
void pm_pod_unlock(PmPod *pod);

/* A pidfd for the pod's systemd-nspawn and its PID, or -ESRCH if it is not
 * running. */
int pm_pod_open_nspawn(const PmPod *pod, pid_t *ret_pid);
/* A pidfd for the pod's PID 1 as seen from the node: the child of nspawn
 * (nspawn_pid > 0) or, failing that, the recorded leader.pid. -ESRCH if
 * none is alive. */
int pm_pod_open_leader(const PmPod *pod, pid_t nspawn_pid, pid_t *ret_pid);
/* Finds the pod's PID 1 below nspawn_pid and writes leader.pid. */
int pm_pod_record_leader(const PmPod *pod, pid_t nspawn_pid);

/* RUNNING with nspawn's PID, or DEAD with 0. */
PmPodState pm_pod_state(const PmPod *pod, pid_t *ret_pid);

/* Powers the pod off: SIGTERM to nspawn (which halts the pod's systemd),
 * then waits up to timeout_ms, or less when interrupt_fd (if >= 0) becomes
 * readable. If nspawn is still there: SIGKILL to the pod's PID 1 (which
 * takes its whole PID namespace with it) and to nspawn, and a bounded wait
 * for both. timeout_ms 0 skips the graceful part. *ret_forced tells whether
 * SIGKILL was needed. -ETIMEDOUT if nspawn survived SIGKILL. */
int pm_pod_terminate(const PmPod *pod, int nspawn_pidfd, pid_t nspawn_pid, int64_t timeout_ms, int interrupt_fd,
                     bool *ret_forced, char **ret_error);
/* Kills a PID 1 of the pod that outlived its nspawn. 0 if none is left. */
int pm_pod_kill_leftovers(const PmPod *pod, char **ret_error);

/* Removes the run and the state directory. The caller holds the lock, and
 * nothing of the pod runs any more. */
int pm_pod_remove(PmPod *pod, char **ret_error);

/* The names of the pods that have a state directory, sorted; an empty list
 * when there is none. *ret is a NULL-terminated strv. */
int pm_pod_list_names(char ***ret, char **ret_error);
