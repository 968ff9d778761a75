#include "oci-fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "util.h"

int pm_fs_path_clean(const char *path, char *ret, size_t size) {
        size_t n = 0;
        const char *p = path;

        if (p[0] == '/')
                return -EINVAL; /* absolute: an image names paths from its root, relatively */
        while (*p) {
                const char *end = strchrnul(p, '/');
                size_t len = (size_t) (end - p);

                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (n + (n > 0) + len + 1 > size)
                                return -ENAMETOOLONG;
                        if (n > 0)
                                ret[n++] = '/';
                        memcpy(ret + n, p, len);
                        n += len;
                }
                p = *end ? end + 1 : end;
        }
        ret[n] = '\0';
        return 0;
}

int pm_fs_open_in_root(int rootfd, const char *rel, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        long fd;

        fd = syscall(SYS_openat2, rootfd, isempty(rel) ? "." : rel, &how, sizeof(how));
        return fd < 0 ? -errno : (int) fd;
}

int pm_fs_open_dir(int rootfd, const char *rel, mode_t mkdir_mode, int *ret_fd) {
        _cleanup_free_ char *prefix = NULL;
        int fd;

        fd = pm_fs_open_in_root(rootfd, rel, O_RDONLY | O_DIRECTORY);
        if (fd >= 0 || fd != -ENOENT || mkdir_mode == 0) {
                if (fd >= 0)
                        *ret_fd = fd;
                return fd < 0 ? fd : 0;
        }

        /* create what is missing, one component at a time, each below a
         * directory that was itself resolved inside the root */
        prefix = strdup(rel);
        if (!prefix)
                return -ENOMEM;
        for (char *slash = prefix;; slash++) {
                _cleanup_close_ int parent = -1;
                char *name, saved;

                slash = strchrnul(slash, '/');
                saved = *slash;
                *slash = '\0';
                name = strrchr(prefix, '/');
                if (name) {
                        *name = '\0';
                        fd = pm_fs_open_in_root(rootfd, prefix, O_RDONLY | O_DIRECTORY);
                        *name++ = '/';
                } else {
                        fd = pm_fs_open_in_root(rootfd, "", O_RDONLY | O_DIRECTORY);
                        name = prefix;
                }
                if (fd < 0)
                        return fd;
                parent = fd;
                if (mkdirat(parent, name, mkdir_mode) < 0 && errno != EEXIST)
                        return -errno;
                *slash = saved;
                if (saved == '\0')
                        break;
        }
        fd = pm_fs_open_in_root(rootfd, rel, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

int pm_fs_open_parent(int rootfd, const char *rel, mode_t mkdir_mode, int *ret_fd, const char **ret_name) {
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(rel, '/');
        int r;

        if (isempty(rel))
                return -EINVAL;
        dir = slash ? strndup(rel, (size_t) (slash - rel)) : strdup("");
        if (!dir)
                return -ENOMEM;
        r = pm_fs_open_dir(rootfd, dir, mkdir_mode, ret_fd);
        if (r < 0)
                return r;
        *ret_name = slash ? slash + 1 : rel;
        return 0;
}

int pm_fs_set_meta(int dirfd, const char *name, const struct stat *st) {
        struct timespec times[2] = {st->st_atim, st->st_mtim};

        if (fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, st->st_mode & 07777, 0) < 0)
                return -errno;
        if (utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

int pm_fs_tmp_name(const char *prefix, char *ret, size_t size) {
        char hex[17];
        int r;

        r = pm_random_hex(hex, 8);
        if (r < 0)
                return r;
        if ((size_t) snprintf(ret, size, "%s.tmp-%s", prefix, hex) >= size)
                return -ENAMETOOLONG;
        return 0;
}
