/* Starting systemd-nspawn for a pod.
 *
 * nspawn runs in a session of its own, started through a short-lived
 * intermediate process (a double fork), so that it outlives pm-stage1 in
 * --detach mode and never gets a controlling terminal. It sees stdin
 * /dev/null, stdout and stderr appended to the console log, none of our
 * other fds, default signal dispositions and an empty signal mask, and an
 * environment of PATH plus whatever SYSTEMD_NSPAWN_* and SYSTEMD_LOG_*
 * variables the user set (nothing else of ours, e.g. no NOTIFY_SOCKET).
 *
 * nspawn is an orphan once the intermediate exits: it becomes our child
 * only if the caller made itself a child subreaper (PR_SET_CHILD_SUBREAPER)
 * beforehand, which pm-stage1 run does, so that it can read its exit status
 * and its PID cannot be reused while we hold it. */
#pragma once

#include <sys/types.h>

typedef struct PmNspawnConfig {
        const char *root_dir;     /* --directory */
        const char *machine;      /* --machine, a valid machine name */
        const char *hostname;     /* --hostname */
        const char *run_dir;      /* bound read-write at PM_POD_CONTROL_DIR */
        const char *agent_path;   /* bound read-only at PM_POD_AGENT_BINARY */
        const char *console_path; /* stdout and stderr, appended */
        const char *name;         /* the pod's name, for its cgroup */
        const char *cgroup_record; /* where the pod's cgroups are written down */
} PmNspawnConfig;

/* The longest machine name systemd-nspawn accepts (a host name). */
#define PM_MACHINE_NAME_MAX 64

/* The machine name of pod `name`: "pm-NAME", or when that is too long,
 * "pm-" + a prefix of NAME + "-" + 8 hex digits of a hash of NAME.
 * buf must hold PM_MACHINE_NAME_MAX + 1 bytes. */
void pm_nspawn_machine_name(const char *name, char *buf);

/* The argument that identifies the nspawn of a pod in /proc/PID/cmdline:
 * "--directory=ROOT". malloc()ed. */
int pm_nspawn_directory_arg(const char *root_dir, char **ret);

/* After systemd-nspawn of this root and machine name is gone: removes
 * what it leaves behind when it is killed rather than let exit, its
 * propagation directory (/run/systemd/nspawn/propagate/MACHINE, if empty)
 * and its image lock file (/run/systemd/nspawn/locks/inode-DEV:INO, if
 * nobody holds it). Best effort; call before root_dir is removed. */
void pm_nspawn_forget(const char *root_dir, const char *machine);

/* Starts systemd-nspawn with the pod's command line. Returns its PID and a
 * pidfd for it once it has been exec'ed; on failure a negative errno and a
 * message (e.g. systemd-nspawn not found). */
int pm_nspawn_spawn(const PmNspawnConfig *config, pid_t *ret_pid, int *ret_pidfd, char **ret_error);
