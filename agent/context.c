#include "context.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "util.h"

#define DEFAULT_SEARCH_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int pm_context_check_rootfs(Manager *m, const char *rootfs, char **ret_resolved, char **ret_error) {
        char resolved[PATH_MAX];
        if (!realpath(rootfs, resolved))
                return pm_errorf(ret_error, -EINVAL, "rootfs: %s: %s", rootfs, strerror(errno));
        struct stat st;
        if (stat(resolved, &st) < 0 || !S_ISDIR(st.st_mode))
                return pm_errorf(ret_error, -EINVAL, "rootfs: %s is not a directory", rootfs);
        const char *guarded[] = { m->control_dir, m->state_dir };
        for (size_t i = 0; i < ELEMENTSOF(guarded); i++) {
                size_t n = strlen(resolved), g = strlen(guarded[i]);
                bool inside = strncmp(resolved, guarded[i], g) == 0 && (resolved[g] == '/' || resolved[g] == '\0');
                bool above = !streq(resolved, "/") && strncmp(guarded[i], resolved, n) == 0 && guarded[i][n] == '/';
                if (inside || above)
                        return pm_errorf(ret_error, -EPERM, "rootfs: %s would expose the agent's %s", rootfs,
                                    guarded[i]);
        }
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
