#include "context.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "util.h"

#define DEFAULT_SEARCH_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Whether path is one of the agent's dirs, inside one, or above one. */
static const char *exposed_dir(Manager *m, const char *path) {
        const char *guarded[] = { m->control_dir, m->state_dir, m->view_dir };
        size_t n = strlen(path);
        for (size_t i = 0; i < ELEMENTSOF(guarded); i++) {
                size_t g = strlen(guarded[i]);
                bool inside = strncmp(path, guarded[i], g) == 0 && (path[g] == '/' || path[g] == '\0');
                bool above = strncmp(guarded[i], path, n) == 0 && (guarded[i][n] == '/' || streq(path, "/"));
                if (inside || above)
                        return guarded[i];
        }
        return NULL;
}

int pm_context_check_rootfs(Manager *m, const char *rootfs, char **ret_resolved, char **ret_error) {
        char resolved[PATH_MAX];
        if (!realpath(rootfs, resolved))
                return pm_errorf(ret_error, -EINVAL, "rootfs: %s: %s", rootfs, strerror(errno));
        struct stat st;
        if (stat(resolved, &st) < 0 || !S_ISDIR(st.st_mode))
                return pm_errorf(ret_error, -EINVAL, "rootfs: %s is not a directory", rootfs);
        /* "/" is above them all, but stands for the pod's own root, where
         * they are hidden from the app. */
        const char *dir = streq(resolved, "/") ? NULL : exposed_dir(m, resolved);
        if (dir)
                return pm_errorf(ret_error, -EPERM, "rootfs: %s would expose the agent's %s", rootfs, dir);
        *ret_resolved = strdup(streq(resolved, "/") ? "" : resolved);
        return *ret_resolved ? 0 : -ENOMEM;
}

/* Whether path names an executable file as seen from inside rootfs:
 * symlinks (absolute ones too) resolve within it, never out of it. */
static bool executable_in(int root_fd, const char *path) {
        struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
        _cleanup_close_ int fd = root_fd >= 0 ? (int) syscall(SYS_openat2, root_fd, path, &how, sizeof(how))
                                               : open(path, O_PATH | O_CLOEXEC);
        struct stat st;
        return fd >= 0 && fstat(fd, &st) >= 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

int pm_context_find_executable(const char *rootfs, const char *cmd, const char *path, char **ret) {
        if (cmd[0] == '/') {
                *ret = strdup(cmd);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *dirs = strdup(isempty(path) ? DEFAULT_SEARCH_PATH : path);
        if (!dirs)
                return -ENOMEM;
        _cleanup_close_ int root_fd = -1;
        if (!isempty(rootfs)) {
                root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (root_fd < 0)
                        return -errno;
        }
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (d[0] != '/')
                        continue;
                char inside[PATH_MAX];
                if (snprintf(inside, sizeof(inside), "%s/%s", d, cmd) >= (int) sizeof(inside))
                        continue;
                if (executable_in(root_fd, inside)) {
                        *ret = strdup(inside);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

static int open_in_root(int root_fd, const char *path, int flags) {
        struct open_how how = { .flags = (uint64_t) flags | O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
        int fd = (int) syscall(SYS_openat2, root_fd, isempty(path) ? "/" : path, &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

/* Target as a path inside the root that root_fd (real path `root`, "" for
 * "/") opens: the longest part that exists, symlinks resolved in the root,
 * then the rest as written (plain names: ".." was refused). */
static int resolve_target(int root_fd, const char *root, const char *target, char **ret) {
        _cleanup_free_ char *prefix = strdup(target);
        if (!prefix)
                return -ENOMEM;
        size_t cut = strlen(prefix);
        _cleanup_close_ int fd = -1;
        for (;;) {
                prefix[cut] = '\0';
                fd = open_in_root(root_fd, prefix, 0);
                if (fd >= 0)
                        break;
                if (fd != -ENOENT)
                        return fd;
                /* A symlink that leads nowhere would be followed by the
                 * mount, from wherever it points. */
                _cleanup_close_ int link = open_in_root(root_fd, prefix, O_NOFOLLOW);
                if (link >= 0)
                        return -ELOOP;
                cut = (size_t) (strrchr(prefix, '/') - prefix);
        }
        char proc[64], real[PATH_MAX];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, real, sizeof(real) - 1);
        if (n < 0)
                return -errno;
        real[n] = '\0';
        size_t r = strlen(root);
        if (strncmp(real, root, r) != 0 || (real[r] != '/' && real[r] != '\0'))
                return -EXDEV; /* moved out of the root under our feet */
        const char *inside = real + r;
        if (streq(inside, "/"))
                inside = "";
        if (asprintf(ret, "%s%s", inside, target + cut) < 0)
                return -ENOMEM;
        if (isempty(*ret)) {
                free(*ret);
                *ret = strdup("/");
        }
        return *ret ? 0 : -ENOMEM;
}

static bool path_in(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* What the unprivileged profile keeps from an app, it must not get back
 * through a mount: devices (the pod has no device controller to stop a
 * node opened through a bind) and the kernel's file systems. */
static int check_unprivileged_source(size_t i, const char *source, const char *real, char **ret_error) {
        struct stat st;
        if (path_in(real, "/dev") || path_in(real, "/proc") || path_in(real, "/sys"))
                return pm_errorf(ret_error, -EPERM, "mounts[%zu].source: %s is in /dev, /proc or /sys, which the unprivileged profile keeps from apps (use profile privileged)",
                                 i, source);
        if (stat(real, &st) >= 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
                return pm_errorf(ret_error, -EPERM, "mounts[%zu].source: %s is a device, which the unprivileged profile keeps from apps (use profile privileged)",
                                 i, source);
        return 0;
}

static int resolve_source(Manager *m, const PmAppSpec *spec, size_t i, char **ret, char **ret_error) {
        const char *source = spec->mounts[i]->source;
        char real[PATH_MAX];
        if (!realpath(source, real))
                return pm_errorf(ret_error, -EINVAL, "mounts[%zu].source: %s: %s", i, source, strerror(errno));
        const char *dir = exposed_dir(m, real);
        if (dir)
                return pm_errorf(ret_error, -EPERM, "mounts[%zu].source: %s would expose the agent's %s", i, source, dir);
        if (spec->profile == PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED) {
                int r = check_unprivileged_source(i, source, real, ret_error);
                if (r < 0)
                        return r;
        }
        if (!pm_mount_path_safe(real))
                return pm_errorf(ret_error, -EINVAL, "mounts[%zu].source: %s resolves to \"%.64s\", which holds ':', whitespace or quotes",
                                 i, source, real);
        *ret = strdup(real);
        return *ret ? 0 : -ENOMEM;
}

static int check_target(Manager *m, size_t i, const char *rootfs, const char *target, const char *resolved,
                        char **ret_error) {
        if (streq(resolved, "/"))
                return pm_errorf(ret_error, -EINVAL, "mounts[%zu].target: %s leads to the app's root itself", i, target);
        if (!pm_mount_path_safe(resolved))
                return pm_errorf(ret_error, -EINVAL, "mounts[%zu].target: %s resolves to \"%.64s\", which holds ':', whitespace or quotes",
                                 i, target, resolved);
        const char *dir = isempty(rootfs) ? exposed_dir(m, resolved) : NULL;
        if (dir)
                return pm_errorf(ret_error, -EPERM, "mounts[%zu].target: %s would cover the agent's %s", i, target, dir);
        return 0;
}

int pm_context_resolve_mounts(Manager *m, const PmAppSpec *spec, const char *rootfs, char ***ret_sources,
                              char ***ret_targets, char **ret_error) {
        size_t n = spec->n_mounts;
        _cleanup_strv_free_ char **sources = calloc(n + 1, sizeof(char *));
        _cleanup_strv_free_ char **targets = calloc(n + 1, sizeof(char *));
        if (!sources || !targets)
                return -ENOMEM;
        _cleanup_close_ int root_fd = open(isempty(rootfs) ? "/" : rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return pm_errorf(ret_error, -EINVAL, "rootfs: %s: %s", rootfs, strerror(errno));
        for (size_t i = 0; i < n; i++) {
                const Podmutator__V1__Mount *mt = spec->mounts[i];
                int r = resolve_source(m, spec, i, &sources[i], ret_error);
                if (r < 0)
                        return r;
                r = resolve_target(root_fd, strempty(rootfs), mt->target, &targets[i]);
                if (r == -ELOOP)
                        return pm_errorf(ret_error, -EINVAL, "mounts[%zu].target: %s passes a symlink that leads nowhere in the app's root",
                                         i, mt->target);
                if (r < 0)
                        return pm_errorf(ret_error, -EINVAL, "mounts[%zu].target: cannot resolve %s in the app's root: %s", i,
                                         mt->target, strerror(-r));
                r = check_target(m, i, rootfs, mt->target, targets[i], ret_error);
                if (r < 0)
                        return r;
        }
        *ret_sources = TAKE_PTR(sources);
        *ret_targets = TAKE_PTR(targets);
        return 0;
}

int pm_context_check_network(Manager *m, const PmAppSpec *spec, char **ret_error) {
        if (!spec->network || spec->network->mode != PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS)
                return 0;
        const char *path = spec->network->netns_path;
        if (exposed_dir(m, path))
                return pm_errorf(ret_error, -EPERM, "network.netns_path: %s is in the agent's own dirs", path);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return pm_errorf(ret_error, -EINVAL, "network.netns_path: %s: %s", path, strerror(errno));
        int type = ioctl(fd, NS_GET_NSTYPE);
        if (type != CLONE_NEWNET)
                return pm_errorf(ret_error, -EINVAL, "network.netns_path: %s is not a network namespace", path);
        return 0;
}
