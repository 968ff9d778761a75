#include "pod.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cgroup.h"
#include "errmsg.h"
#include "nspawn.h"
#include "paths.h"
#include "proc.h"
#include "util.h"

static const char *const pod_state_table[_PM_POD_STATE_MAX] = {
        [PM_POD_STATE_RUNNING] = "running",
        [PM_POD_STATE_DEAD] = "dead",
};

const char *pm_pod_state_to_string(PmPodState s) {
        if (s < 0 || s >= _PM_POD_STATE_MAX)
                return NULL;
        return pod_state_table[s];
}

/* The canonical path of a base directory: env overrides the default.
 * Without create, a base that does not exist is returned as spelt (with no
 * trailing '/'): it holds no pod, and callers find that out themselves. */
static int base_dir(const char *env, const char *def, bool create, char **ret, char **ret_error) {
        const char *p = getenv(env);
        char *canonical;
        int r;

        if (isempty(p))
                p = def;
        if (p[0] != '/')
                return pm_errorf(ret_error, -EINVAL, "%s must be an absolute path, not '%s'", env, p);
        if (create) {
                r = pm_mkdir_p(p, 0755);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot create %s: %m", p);
        }
        /* One spelling per directory: the nspawn of a pod is recognised by
         * its --directory= argument, so "/x/" and "/x" must not differ. */
        canonical = realpath(p, NULL);
        if (!canonical && errno == ENOENT && !create) {
                size_t n = strlen(p);

                while (n > 1 && p[n - 1] == '/')
                        n--;
                canonical = strndup(p, n);
                if (!canonical)
                        return -ENOMEM;
        }
        if (!canonical)
                return pm_errorf(ret_error, -errno, "cannot resolve %s: %m", p);
        *ret = canonical;
        return 0;
}

PmPod *pm_pod_free(PmPod *pod) {
        if (!pod)
                return NULL;
        pm_pod_unlock(pod);
        free(pod->name);
        free(pod->machine);
        free(pod->state_dir);
        free(pod->cgroup_record_path);
        free(pod->run_dir);
        free(pod->root_dir);
        free(pod->console_path);
        free(pod->nspawn_pid_path);
        free(pod->leader_pid_path);
        free(pod->manifest_path);
        free(pod->socket_path);
        free(pod);
        return NULL;
}

int pm_pod_new(const char *name, bool create_roots, PmPod **ret, char **ret_error) {
        _cleanup_(pm_pod_freep) PmPod *pod = NULL;
        _cleanup_free_ char *state_root = NULL, *run_root = NULL;
        char machine[PM_MACHINE_NAME_MAX + 1];
        int r;

        if (!pm_dns_label_valid(name))
                return pm_errorf(ret_error, -EINVAL,
                                 "invalid pod name '%s': it must be a lowercase DNS label "
                                 "(a-z, 0-9 and '-', at most 63 characters, no '-' at either end)",
                                 name);

        r = base_dir("PM_STATE_ROOT", PM_NODE_STATE_DIR, create_roots, &state_root, ret_error);
        if (r < 0)
                return r;
        r = base_dir("PM_RUN_ROOT", PM_NODE_RUN_DIR, create_roots, &run_root, ret_error);
        if (r < 0)
                return r;

        pod = calloc(1, sizeof(*pod));
        if (!pod)
                return -ENOMEM;
        pod->lock_fd = -1;
        pm_nspawn_machine_name(name, machine);

        if (!(pod->name = strdup(name)) || !(pod->machine = strdup(machine)) ||
            asprintf(&pod->state_dir, "%s/%s", state_root, name) < 0 ||
            asprintf(&pod->run_dir, "%s/%s", run_root, name) < 0 ||
            asprintf(&pod->root_dir, "%s/root", pod->state_dir) < 0 ||
            asprintf(&pod->console_path, "%s/console.log", pod->state_dir) < 0 ||
            asprintf(&pod->nspawn_pid_path, "%s/nspawn.pid", pod->state_dir) < 0 ||
            asprintf(&pod->leader_pid_path, "%s/leader.pid", pod->state_dir) < 0 ||
            asprintf(&pod->manifest_path, "%s/manifest.json", pod->state_dir) < 0 ||
            asprintf(&pod->cgroup_record_path, "%s/cgroups", pod->state_dir) < 0 ||
            asprintf(&pod->socket_path, "%s/" PM_CONTROL_SOCKET_NAME, pod->run_dir) < 0)
                return -ENOMEM;

        if (strlen(pod->socket_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return pm_errorf(ret_error, -ENAMETOOLONG,
                                 "the control socket path %s is too long for a unix socket; use a shorter PM_RUN_ROOT",
                                 pod->socket_path);

        *ret = TAKE_PTR(pod);
        return 0;
}

bool pm_pod_exists(const PmPod *pod) {
        return access(pod->state_dir, F_OK) >= 0 || access(pod->run_dir, F_OK) >= 0;
}

static int same_inode(int fd, const char *path) {
        struct stat a, b;

        if (fstat(fd, &a) < 0)
                return -errno;
        if (stat(path, &b) < 0)
                return errno == ENOENT ? 0 : -errno;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void pm_pod_unlock(PmPod *pod) {
        if (pod->lock_fd >= 0) {
                close(pod->lock_fd);
                pod->lock_fd = -1;
        }
}

int pm_pod_lock(PmPod *pod, int64_t timeout_ms, char **ret_error) {
        _cleanup_close_ int fd = -1;
        int r;

        if (pod->lock_fd >= 0)
                return 0;

        fd = open(pod->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : pm_errorf(ret_error, -errno, "cannot open %s: %m", pod->state_dir);

        r = pm_flock_timeout(fd, LOCK_EX, timeout_ms);
        if (r == -ETIMEDOUT)
                return pm_errorf(ret_error, r, "pod %s is still held by another pm-stage1", pod->name);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot lock %s: %m", pod->state_dir);

        /* it may have been removed (and made anew) while we waited */
        r = same_inode(fd, pod->state_dir);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot stat %s: %m", pod->state_dir);
        if (r == 0)
                return -ENOENT;

        pod->lock_fd = TAKE_FD(fd);
        return 0;
}

/* Removes everything in path but path itself. */
static int rm_contents(const char *path) {
        _cleanup_close_ int fd = -1;
        struct dirent *de;
        DIR *d;
        int r = 0;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);

        while ((de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                int k;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&child, "%s/%s", path, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                k = pm_rm_rf(child);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        return r;
}

int pm_pod_claim(PmPod *pod, bool *ret_replaced, char **ret_error) {
        for (unsigned attempt = 0; attempt < 3; attempt++) {
                _cleanup_close_ int fd = -1;
                bool created;
                pid_t pid;
                int r;

                created = mkdir(pod->state_dir, 0700) >= 0;
                if (!created && errno != EEXIST)
                        return pm_errorf(ret_error, -errno, "cannot create %s: %m", pod->state_dir);

                fd = open(pod->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT)
                        continue; /* removed under our feet: try again */
                if (fd < 0)
                        return pm_errorf(ret_error, -errno, "cannot open %s: %m", pod->state_dir);

                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        if (errno != EWOULDBLOCK)
                                return pm_errorf(ret_error, -errno, "cannot lock %s: %m", pod->state_dir);
                        if (pm_pod_state(pod, &pid) == PM_POD_STATE_RUNNING)
                                return pm_errorf(ret_error, -EEXIST,
                                                 "pod %s is already running (systemd-nspawn pid %d)", pod->name,
                                                 (int) pid);
                        return pm_errorf(ret_error, -EBUSY, "pod %s is being started or stopped by another pm-stage1",
                                         pod->name);
                }

                r = same_inode(fd, pod->state_dir);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot stat %s: %m", pod->state_dir);
                if (r == 0)
                        continue;

                pod->lock_fd = TAKE_FD(fd);
                *ret_replaced = false;
                if (created)
                        return 0;

                if (pm_pod_state(pod, &pid) == PM_POD_STATE_RUNNING) {
                        pm_pod_unlock(pod);
                        return pm_errorf(ret_error, -EEXIST, "pod %s is already running (systemd-nspawn pid %d)",
                                         pod->name, (int) pid);
                }

                /* A dead pod of the same name: make sure nothing of it runs,
                 * then start from a clean directory. */
                r = pm_pod_kill_leftovers(pod, ret_error);
                if (r < 0)
                        return r;
                r = pm_rm_rf(pod->run_dir);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot remove %s: %m", pod->run_dir);
                r = rm_contents(pod->state_dir);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot clean %s: %m", pod->state_dir);
                *ret_replaced = true;
                return 0;
        }
        return pm_errorf(ret_error, -EBUSY, "pod %s: its directory %s keeps changing; is another pm-stage1 at work?",
                         pod->name, pod->state_dir);
}

int pm_pod_open_nspawn(const PmPod *pod, pid_t *ret_pid) {
        _cleanup_free_ char *arg = NULL;
        _cleanup_close_ int fd = -1;
        pid_t pid;
        int r;

        r = pm_pid_file_read(pod->nspawn_pid_path, &pid);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;

        /* open first, check then: a held pidfd keeps the PID from being
         * reused, so what we checked is what we hold */
        fd = pm_pidfd_open(pid);
        if (fd < 0)
                return fd;
        r = pm_nspawn_directory_arg(pod->root_dir, &arg);
        if (r < 0)
                return r;
        r = pm_proc_has_arg(pid, arg);
        if (r < 0)
                return r;
        if (r == 0)
                return -ESRCH; /* exited (a zombie) or a stranger */

        *ret_pid = pid;
        return TAKE_FD(fd);
}

int pm_pod_open_leader(const PmPod *pod, pid_t nspawn_pid, pid_t *ret_pid) {
        pid_t pid;
        int r;

        if (nspawn_pid > 0) {
                _cleanup_free_ pid_t *children = NULL;
                size_t n = 0;

                r = pm_proc_children(nspawn_pid, &children, &n);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        _cleanup_close_ int fd = pm_pidfd_open(children[i]);

                        if (fd < 0)
                                continue;
                        if (pm_proc_is_nested_init(children[i]) <= 0)
                                continue;
                        *ret_pid = children[i];
                        return TAKE_FD(fd);
                }
        }

        r = pm_pid_file_read(pod->leader_pid_path, &pid);
        if (r < 0)
                return -ESRCH;

        _cleanup_close_ int fd = pm_pidfd_open(pid);
        if (fd < 0)
                return fd;
        if (pm_proc_is_nested_init(pid) <= 0 || pm_proc_root_is(pid, pod->root_dir) <= 0)
                return -ESRCH;
        *ret_pid = pid;
        return TAKE_FD(fd);
}

int pm_pod_record_leader(const PmPod *pod, pid_t nspawn_pid) {
        _cleanup_close_ int fd = -1;
        pid_t pid;

        fd = pm_pod_open_leader(pod, nspawn_pid, &pid);
        if (fd < 0)
                return fd;
        return pm_pid_file_write(pod->leader_pid_path, pid);
}

PmPodState pm_pod_state(const PmPod *pod, pid_t *ret_pid) {
        _cleanup_close_ int fd = -1;
        pid_t pid;

        fd = pm_pod_open_nspawn(pod, &pid);
        if (fd < 0) {
                *ret_pid = 0;
                return PM_POD_STATE_DEAD;
        }
        *ret_pid = pid;
        return PM_POD_STATE_RUNNING;
}

static int kill_and_wait(int pidfd, int64_t timeout_ms) {
        int r;

        r = pm_pidfd_signal(pidfd, SIGKILL);
        if (r < 0 && r != -ESRCH)
                return r;
        r = pm_pidfd_wait(pidfd, -1, timeout_ms);
        return r < 0 ? r : 0;
}

int pm_pod_terminate(const PmPod *pod, int nspawn_pidfd, pid_t nspawn_pid, int64_t timeout_ms, int interrupt_fd,
                     bool *ret_forced, char **ret_error) {
        _cleanup_close_ int leader_fd = -1;
        pid_t leader = 0;
        int64_t deadline;
        int r;

        *ret_forced = false;

        if (timeout_ms > 0) {
                /* systemd-nspawn --boot turns this into SIGRTMIN+3 for the
                 * pod's systemd: a clean poweroff */
                r = pm_pidfd_signal(nspawn_pidfd, SIGTERM);
                if (r < 0 && r != -ESRCH)
                        return pm_errorf(ret_error, r, "pod %s: cannot signal systemd-nspawn (pid %d): %m", pod->name,
                                         (int) nspawn_pid);
                r = pm_pidfd_wait(nspawn_pidfd, interrupt_fd, timeout_ms);
                if (r == 1)
                        return 0;
                if (r < 0 && r != -ETIMEDOUT)
                        return pm_errorf(ret_error, r, "pod %s: cannot wait for systemd-nspawn (pid %d): %m", pod->name,
                                         (int) nspawn_pid);
        }

        /* The pod's PID 1 first: nspawn does not take it down when it is
         * killed itself, and its death ends the whole PID namespace. */
        *ret_forced = true;
        deadline = pm_now_monotonic_ns() + PM_POD_KILL_TIMEOUT_MS * 1000000LL;
        leader_fd = pm_pod_open_leader(pod, nspawn_pid, &leader);
        if (leader_fd >= 0) {
                r = pm_pidfd_signal(leader_fd, SIGKILL);
                if (r < 0 && r != -ESRCH)
                        return pm_errorf(ret_error, r, "pod %s: cannot kill its PID 1 (pid %d): %m", pod->name,
                                         (int) leader);
        }
        r = kill_and_wait(nspawn_pidfd, pm_ms_until(deadline));
        if (r == -ETIMEDOUT)
                return pm_errorf(ret_error, r, "pod %s: systemd-nspawn (pid %d) did not exit within %d ms of SIGKILL",
                                 pod->name, (int) nspawn_pid, PM_POD_KILL_TIMEOUT_MS);
        if (r < 0)
                return pm_errorf(ret_error, r, "pod %s: cannot kill systemd-nspawn (pid %d): %m", pod->name,
                                 (int) nspawn_pid);
        if (leader_fd >= 0) {
                r = pm_pidfd_wait(leader_fd, -1, pm_ms_until(deadline));
                if (r < 0)
                        return pm_errorf(ret_error, r, "pod %s: its PID 1 (pid %d) did not exit after SIGKILL: %m",
                                         pod->name, (int) leader);
        }
        return 0;
}

int pm_pod_kill_leftovers(const PmPod *pod, char **ret_error) {
        _cleanup_close_ int fd = -1;
        pid_t pid;
        int r;

        fd = pm_pod_open_leader(pod, 0, &pid);
        if (fd < 0)
                return 0;
        r = kill_and_wait(fd, PM_POD_KILL_TIMEOUT_MS);
        if (r < 0)
                return pm_errorf(ret_error, r,
                                 "pod %s: cannot kill its PID 1 (pid %d), which outlived systemd-nspawn: %m",
                                 pod->name, (int) pid);
        return 0;
}

int pm_pod_remove(PmPod *pod, char **ret_error) {
        int r;

        r = pm_rm_rf(pod->run_dir);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot remove %s: %m", pod->run_dir);
        pm_nspawn_forget(pod->root_dir, pod->machine);
        pm_cgroup_remove_recorded(pod->cgroup_record_path);
        r = pm_rm_rf(pod->state_dir);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot remove %s: %m", pod->state_dir);
        return 0;
}

static int filter_pod_dir(const struct dirent *de) {
        return (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) && pm_dns_label_valid(de->d_name);
}

int pm_pod_list_names(char ***ret, char **ret_error) {
        _cleanup_free_ char *state_root = NULL;
        struct dirent **entries = NULL;
        char **names;
        int n, r;

        r = base_dir("PM_STATE_ROOT", PM_NODE_STATE_DIR, false, &state_root, ret_error);
        if (r < 0)
                return r;

        n = scandir(state_root, &entries, filter_pod_dir, alphasort);
        if (n < 0 && errno == ENOENT)
                n = 0; /* no pod was ever made here */
        else if (n < 0)
                return pm_errorf(ret_error, -errno, "cannot read %s: %m", state_root);

        names = calloc((size_t) n + 1, sizeof(char *));
        r = names ? 0 : -ENOMEM;
        for (int i = 0, j = 0; i < n; i++) {
                if (r >= 0) {
                        names[j] = strdup(entries[i]->d_name);
                        if (!names[j])
                                r = -ENOMEM;
                        else
                                j++;
                }
                free(entries[i]);
        }
        free(entries);
        if (r < 0) {
                strv_freep(&names);
                return r;
        }
        *ret = names;
        return 0;
}
