#include "oci-rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "errmsg.h"
#include "oci-fs.h"
#include "oci-unpack.h"
#include "util.h"

#define ID_FILE_MAX (1024u * 1024u)

typedef struct Link {
        ino_t ino;
        char *path;
} Link;

typedef struct Compose {
        int destfd;
        bool allow_devices;
        const char *layer; /* for messages */
        Link *links;       /* files of this layer with more than one name */
        size_t n_links, cap_links;
        char *error;
} Compose;

static void links_clear(Compose *c) {
        for (size_t i = 0; i < c->n_links; i++)
                free(c->links[i].path);
        c->n_links = 0;
}

static const char *link_find(const Compose *c, ino_t ino) {
        for (size_t i = 0; i < c->n_links; i++)
                if (c->links[i].ino == ino)
                        return c->links[i].path;
        return NULL;
}

static int link_add(Compose *c, ino_t ino, const char *path) {
        if (c->n_links == c->cap_links) {
                size_t cap = c->cap_links ? 2 * c->cap_links : 32;
                Link *l = reallocarray(c->links, cap, sizeof(*l));
                if (!l)
                        return -ENOMEM;
                c->links = l;
                c->cap_links = cap;
        }
        c->links[c->n_links].path = strdup(path);
        if (!c->links[c->n_links].path)
                return -ENOMEM;
        c->links[c->n_links++].ino = ino;
        return 0;
}

static int copy_data(int in, int out) {
        char buf[64 * 1024];
        ssize_t n;

        for (;;) {
                n = copy_file_range(in, NULL, out, NULL, SIZE_MAX >> 2, 0);
                if (n == 0)
                        return 0;
                if (n < 0)
                        break;
        }
        if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
                return -errno;
        /* no in-kernel copy between these two: by hand, from where it stopped */
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t) n) != n)
                        return errno ? -errno : -EIO;
        return n < 0 ? -errno : 0;
}

static int copy_file(int src, int dst, const char *name) {
        _cleanup_close_ int in = -1, out = -1;

        in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return -errno;
        out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        return copy_data(in, out);
}

static int copy_symlink(int src, int dst, const char *name) {
        char target[PATH_MAX];
        ssize_t n;

        n = readlinkat(src, name, target, sizeof(target));
        if (n < 0)
                return -errno;
        if ((size_t) n >= sizeof(target))
                return -ENAMETOOLONG;
        target[n] = '\0';
        return symlinkat(target, dst, name) < 0 ? -errno : 0;
}

static bool is_whiteout(const struct stat *st) {
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int dirfd) {
        char v[2];

        return fgetxattr(dirfd, PM_OVERLAY_OPAQUE_XATTR, v, sizeof(v)) == 1 && v[0] == 'y';
}

static int copy_dir(Compose *c, int src, int dst, const char *path);

static int copy_subdir(Compose *c, int src, int dst, const char *name, const char *path, const struct stat *st) {
        _cleanup_close_ int sfd = -1, dfd = -1;
        struct stat cur;
        int r;

        if (fstatat(dst, name, &cur, AT_SYMLINK_NOFOLLOW) >= 0 && !S_ISDIR(cur.st_mode)) {
                r = pm_rm_rf_at(dst, name);
                if (r < 0)
                        return r;
        }
        if (mkdirat(dst, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        sfd = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        dfd = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0 || dfd < 0)
                return -errno;
        r = copy_dir(c, sfd, dfd, path);
        if (r < 0)
                return r;
        return pm_fs_set_meta(dst, name, st);
}

static int copy_entry(Compose *c, int src, int dst, const char *name, const char *path) {
        struct stat st;
        const char *first;
        int r;

        if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return copy_subdir(c, src, dst, name, path, &st);

        r = pm_rm_rf_at(dst, name);
        if (r < 0 || is_whiteout(&st))
                return r;
        if (S_ISREG(st.st_mode) && st.st_nlink > 1 && (first = link_find(c, st.st_ino))) {
                _cleanup_close_ int fd = pm_fs_open_in_root(c->destfd, first, O_PATH | O_NOFOLLOW);
                if (fd < 0)
                        return fd;
                return linkat(fd, "", dst, name, AT_EMPTY_PATH) < 0 ? -errno : 0;
        }
        if (S_ISREG(st.st_mode))
                r = copy_file(src, dst, name);
        else if (S_ISLNK(st.st_mode))
                r = copy_symlink(src, dst, name);
        else if ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && !c->allow_devices)
                return pm_errorf(&c->error, -EPERM,
                                 "layer %s: %s is a device node: refused (pass --allow-devices to accept device nodes)",
                                 c->layer, path);
        else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode))
                r = mknodat(dst, name, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0 ? -errno : 0;
        else
                return 0; /* a socket: nothing an image can carry */
        if (r < 0)
                return r;
        r = pm_fs_set_meta(dst, name, &st);
        if (r < 0)
                return r;
        if (S_ISREG(st.st_mode) && st.st_nlink > 1)
                return link_add(c, st.st_ino, path);
        return 0;
}

static int copy_dir(Compose *c, int src, int dst, const char *path) {
        struct dirent *de;
        DIR *d;
        int fd, r;

        fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        /* an opaque directory hides what lower layers put there */
        r = is_opaque(src) ? pm_clear_dir(dst) : 0;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *sub = NULL;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&sub, "%s%s%s", path, isempty(path) ? "" : "/", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = copy_entry(c, src, dst, de->d_name, sub);
                if (r < 0 && !c->error)
                        r = pm_errorf(&c->error, r, "layer %s: cannot copy %s: %m", c->layer, sub);
        }
        closedir(d);
        return r;
}

int pm_rootfs_compose(const int *layer_fds, char *const *names, size_t n, int destfd, bool allow_devices,
                      char **ret_error) {
        Compose c = {.destfd = destfd, .allow_devices = allow_devices};
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                struct stat st;

                c.layer = names[i];
                links_clear(&c);
                r = copy_dir(&c, layer_fds[i], destfd, "");
                if (r >= 0 && (fstat(layer_fds[i], &st) < 0 || pm_fs_set_meta(destfd, ".", &st) < 0))
                        r = pm_errorf(&c.error, -errno, "layer %s: cannot set the root's owner and mode: %m", c.layer);
        }
        links_clear(&c);
        free(c.links);
        if (r < 0) {
                pm_errorf(ret_error, r, "%s", c.error ?: strerror(-r));
                free(c.error);
        }
        return r;
}

/* The line of text whose first field is name; fields split at ':'. */
static int id_line_fields(const char *text, const char *name, char *fields[4], char *buf, size_t size) {
        size_t nlen = strlen(name);

        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *end = strchrnul(line, '\n');
                size_t len = (size_t) (end - line);
                char *p;

                if (len <= nlen || strncmp(line, name, nlen) != 0 || line[nlen] != ':' || len >= size)
                        continue;
                memcpy(buf, line, len);
                buf[len] = '\0';
                p = buf;
                for (int i = 0; i < 4; i++)
                        fields[i] = p ? strsep(&p, ":") : NULL;
                return 0;
        }
        return -ENOENT;
}

int pm_passwd_lookup(const char *text, const char *name, uint32_t *ret_uid, uint32_t *ret_gid) {
        char buf[1024], *f[4];
        uint32_t uid, gid;

        if (id_line_fields(text, name, f, buf, sizeof(buf)) < 0)
                return -ENOENT;
        if (!f[2] || !f[3] || pm_parse_u32(f[2], &uid) < 0 || pm_parse_u32(f[3], &gid) < 0)
                return -EINVAL;
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

int pm_group_lookup(const char *text, const char *name, uint32_t *ret_gid) {
        char buf[1024], *f[4];
        uint32_t gid;

        if (id_line_fields(text, name, f, buf, sizeof(buf)) < 0)
                return -ENOENT;
        if (!f[2] || pm_parse_u32(f[2], &gid) < 0)
                return -EINVAL;
        *ret_gid = gid;
        return 0;
}

/* etc/passwd or etc/group of the rootfs, read inside it; "" if absent. */
static int read_id_file(int rootfd, const char *rel, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *text = NULL;
        struct stat st;

        fd = pm_fs_open_in_root(rootfd, rel, O_RDONLY);
        if (fd == -ENOENT) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > ID_FILE_MAX)
                return -EFBIG;
        text = calloc(1, (size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        if (pread(fd, text, (size_t) st.st_size, 0) != st.st_size)
                return -EIO;
        *ret = TAKE_PTR(text);
        return 0;
}

static int passwd_gid_of_uid(const char *text, uint32_t uid, uint32_t *ret_gid) {
        for (const char *line = text; *line; line = *strchrnul(line, '\n') ? strchrnul(line, '\n') + 1 : "") {
                size_t len = (size_t) (strchrnul(line, '\n') - line);
                char buf[1024], *p = buf, *f[4];
                uint32_t u, g;

                if (len >= sizeof(buf))
                        continue;
                memcpy(buf, line, len);
                buf[len] = '\0';
                for (int i = 0; i < 4; i++)
                        f[i] = p ? strsep(&p, ":") : NULL;
                if (f[3] && pm_parse_u32(f[2], &u) >= 0 && u == uid && pm_parse_u32(f[3], &g) >= 0) {
                        *ret_gid = g;
                        return 0;
                }
        }
        return -ENOENT;
}

int pm_rootfs_resolve_user(int rootfd, const char *user, char **ret_uid, char **ret_gid, char **ret_error) {
        _cleanup_free_ char *name = NULL, *passwd = NULL, *group = NULL;
        uint32_t uid, gid = 0;
        char *colon;
        int r;

        if (isempty(user)) {
                *ret_uid = strdup("");
                *ret_gid = strdup("");
                return *ret_uid && *ret_gid ? 0 : -ENOMEM;
        }
        name = strdup(user);
        if (!name)
                return -ENOMEM;
        colon = strchr(name, ':');
        if (colon)
                *colon++ = '\0';
        r = read_id_file(rootfd, "etc/passwd", &passwd);
        if (r >= 0)
                r = read_id_file(rootfd, "etc/group", &group);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot read the image's /etc/passwd or /etc/group: %m");

        if (pm_parse_u32(name, &uid) >= 0) {
                /* a uid: its passwd entry, if any, gives the group */
                (void) passwd_gid_of_uid(passwd, uid, &gid);
        } else if ((r = pm_passwd_lookup(passwd, name, &uid, &gid)) < 0)
                return pm_errorf(ret_error, -ENOENT, "image user \"%.64s\": %s in the image's /etc/passwd", name,
                                 r == -ENOENT ? "no such user" : "a malformed entry");

        if (colon && *colon && pm_parse_u32(colon, &gid) < 0 && (r = pm_group_lookup(group, colon, &gid)) < 0)
                return pm_errorf(ret_error, -ENOENT, "image group \"%.64s\": %s in the image's /etc/group", colon,
                                 r == -ENOENT ? "no such group" : "a malformed entry");

        if (asprintf(ret_uid, "%" PRIu32, uid) < 0)
                return -ENOMEM;
        if (asprintf(ret_gid, "%" PRIu32, gid) < 0) {
                free(*ret_uid);
                return -ENOMEM;
        }
        return 0;
}
