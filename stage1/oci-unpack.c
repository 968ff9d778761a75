#include "oci-unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "errmsg.h"
#include "oci-fs.h"
#include "util.h"

#define READ_CHUNK (128u * 1024u)

/* Two libarchive readers stacked: "blob" decompresses the blob (raw
 * format, any filter) while hashing the bytes read from the file; "tar"
 * reads the decompressed stream from it while hashing that. One pass over
 * the data checks both digests. */
typedef struct Unpack {
        const PmOciImage *img;
        const PmOciLayer *layer;
        int blob_fd;
        uint64_t blob_offset;
        PmSha256 blob_sha, tar_sha;
        uint64_t tar_bytes;
        struct archive *blob, *tar;
        uint8_t in[READ_CHUNK], out[READ_CHUNK];
        int destfd;
        bool allow_devices;
        uint64_t entries, devices;
        /* directories, whose times are set once their content is in */
        struct DirMeta {
                char *path;
                struct stat st;
        } * dirs;
        size_t n_dirs, cap_dirs;
        char *error; /* from inside a read callback */
} Unpack;

static ssize_t on_blob_read(struct archive *a, void *userdata, const void **ret_buf) {
        Unpack *u = userdata;
        ssize_t n;

        n = pread(u->blob_fd, u->in, sizeof(u->in), (off_t) u->blob_offset);
        if (n < 0) {
                archive_set_error(a, errno, "cannot read the blob: %s", strerror(errno));
                return -1;
        }
        pm_sha256_update(&u->blob_sha, u->in, (size_t) n);
        u->blob_offset += (uint64_t) n;
        *ret_buf = u->in;
        return n;
}

static ssize_t on_tar_read(struct archive *a, void *userdata, const void **ret_buf) {
        Unpack *u = userdata;
        la_ssize_t n;

        n = archive_read_data(u->blob, u->out, sizeof(u->out));
        if (n < 0) {
                archive_set_error(a, archive_errno(u->blob) ?: EIO, "%s",
                                  archive_error_string(u->blob) ?: "read error");
                return -1;
        }
        pm_sha256_update(&u->tar_sha, u->out, (size_t) n);
        u->tar_bytes += (uint64_t) n;
        *ret_buf = u->out;
        return n;
}

static int open_readers(Unpack *u, char **ret_error) {
        struct archive_entry *e;

        u->blob = archive_read_new();
        u->tar = archive_read_new();
        if (!u->blob || !u->tar)
                return -ENOMEM;
        archive_read_support_format_raw(u->blob);
        archive_read_support_filter_none(u->blob);
        archive_read_support_filter_gzip(u->blob);
        archive_read_support_filter_zstd(u->blob);
        if (archive_read_open(u->blob, u, NULL, on_blob_read, NULL) != ARCHIVE_OK ||
            archive_read_next_header(u->blob, &e) != ARCHIVE_OK)
                return pm_errorf(ret_error, -EBADMSG, "image %s: layer sha256:%s: cannot decompress it: %s",
                                 u->img->path, u->layer->digest, archive_error_string(u->blob) ?: "unknown format");
        archive_read_support_format_tar(u->tar);
        archive_read_support_format_gnutar(u->tar);
        archive_read_support_filter_none(u->tar);
        if (archive_read_open(u->tar, u, NULL, on_tar_read, NULL) != ARCHIVE_OK)
                return pm_errorf(ret_error, -EBADMSG, "image %s: layer sha256:%s: not a tar: %s", u->img->path,
                                 u->layer->digest, archive_error_string(u->tar) ?: "unknown format");
        return 0;
}

static int remember_dir(Unpack *u, const char *path, const struct stat *st) {
        if (u->n_dirs == u->cap_dirs) {
                size_t cap = u->cap_dirs ? 2 * u->cap_dirs : 64;
                struct DirMeta *d = reallocarray(u->dirs, cap, sizeof(*d));
                if (!d)
                        return -ENOMEM;
                u->dirs = d;
                u->cap_dirs = cap;
        }
        u->dirs[u->n_dirs].path = strdup(path);
        if (!u->dirs[u->n_dirs].path)
                return -ENOMEM;
        u->dirs[u->n_dirs++].st = *st;
        return 0;
}

static int make_dir(Unpack *u, int parent, const char *name, const char *clean, const struct stat *st) {
        struct stat cur;

        if (fstatat(parent, name, &cur, AT_SYMLINK_NOFOLLOW) >= 0 && !S_ISDIR(cur.st_mode)) {
                if (unlinkat(parent, name, 0) < 0)
                        return -errno;
        }
        if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        return remember_dir(u, clean, st);
}

static int write_data(Unpack *u, int fd, int64_t size) {
        const void *buf;
        size_t n;
        int64_t offset;
        int k;

        while ((k = archive_read_data_block(u->tar, &buf, &n, &offset)) == ARCHIVE_OK)
                if (pwrite(fd, buf, n, offset) != (ssize_t) n)
                        return errno ? -errno : -EIO;
        if (k != ARCHIVE_EOF)
                return -EBADMSG;
        /* a sparse file may end in a hole */
        return ftruncate(fd, size) < 0 ? -errno : 0;
}

static int make_file(Unpack *u, int parent, const char *name, struct archive_entry *e) {
        _cleanup_close_ int fd = -1;
        int r;

        r = pm_rm_rf_at(parent, name);
        if (r < 0)
                return r;
        fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return write_data(u, fd, archive_entry_size(e));
}

static int make_hardlink(Unpack *u, int parent, const char *name, const char *entry, const char *target,
                         char **ret_error) {
        char clean[PATH_MAX];
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (pm_fs_path_clean(target, clean, sizeof(clean)) < 0 || isempty(clean))
                return pm_errorf(ret_error, -EXDEV,
                                 "image %s: layer sha256:%s: entry \"%.200s\" is a hard link to \"%.200s\", "
                                 "which is outside the layer (absolute or with \"..\")",
                                 u->img->path, u->layer->digest, entry, target);
        fd = pm_fs_open_in_root(u->destfd, clean, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return pm_errorf(ret_error, fd,
                                 "image %s: layer sha256:%s: entry \"%.200s\" is a hard link to \"%.200s\", "
                                 "which is not a file of this layer: %m",
                                 u->img->path, u->layer->digest, entry, target);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return pm_errorf(ret_error, -EPERM,
                                 "image %s: layer sha256:%s: entry \"%.200s\" is a hard link to a directory",
                                 u->img->path, u->layer->digest, entry);
        r = pm_rm_rf_at(parent, name);
        if (r < 0)
                return r;
        if (linkat(fd, "", parent, name, AT_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

static int make_node(Unpack *u, int parent, const char *name, const char *entry, struct archive_entry *e,
                     char **ret_error) {
        mode_t type = archive_entry_filetype(e);
        int r;

        if ((type == AE_IFCHR || type == AE_IFBLK) && !u->allow_devices)
                return pm_errorf(ret_error, -EPERM,
                                 "image %s: layer sha256:%s: entry \"%.200s\" is a device node: refused "
                                 "(pass --allow-devices to accept device nodes)",
                                 u->img->path, u->layer->digest, entry);
        if (type != AE_IFCHR && type != AE_IFBLK && type != AE_IFIFO)
                return pm_errorf(ret_error, -EOPNOTSUPP,
                                 "image %s: layer sha256:%s: entry \"%.200s\" has an unsupported type (0%o)",
                                 u->img->path, u->layer->digest, entry, (unsigned) type);
        r = pm_rm_rf_at(parent, name);
        if (r < 0)
                return r;
        if (mknodat(parent, name, type | 0600, archive_entry_rdev(e)) < 0)
                return -errno;
        if (type != AE_IFIFO)
                u->devices++;
        return 0;
}

/* A whiteout in the form overlayfs reads, so that the tree can be a lower
 * layer as is: ".wh.NAME" becomes a 0:0 character device NAME, unless this
 * layer has its own NAME (a whiteout hides lower layers only);
 * ".wh..wh..opq" marks its directory opaque. */
static int make_whiteout(Unpack *u, int parent, const char *name, const char *entry, char **ret_error) {
        const char *hidden = name + strlen(PM_WHITEOUT_PREFIX);
        struct stat st;

        if (streq(name, PM_WHITEOUT_OPAQUE))
                return fsetxattr(parent, PM_OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0 ? -errno : 0;
        if (isempty(hidden) || streq(hidden, ".") || streq(hidden, ".."))
                return pm_errorf(ret_error, -EINVAL, "image %s: layer sha256:%s: entry \"%.200s\" is not a valid whiteout",
                                 u->img->path, u->layer->digest, entry);
        if (fstatat(parent, hidden, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return 0;
        return mknodat(parent, hidden, S_IFCHR | 0, makedev(0, 0)) < 0 ? -errno : 0;
}

static void entry_stat(struct archive_entry *e, struct stat *st) {
        *st = (struct stat){
                .st_mode = archive_entry_mode(e),
                .st_uid = (uid_t) archive_entry_uid(e),
                .st_gid = (gid_t) archive_entry_gid(e),
        };
        st->st_mtim.tv_sec = archive_entry_mtime(e);
        st->st_mtim.tv_nsec = archive_entry_mtime_nsec(e);
        st->st_atim = st->st_mtim;
        if (archive_entry_atime_is_set(e)) {
                st->st_atim.tv_sec = archive_entry_atime(e);
                st->st_atim.tv_nsec = archive_entry_atime_nsec(e);
        }
}

static int unpack_entry(Unpack *u, struct archive_entry *e, char **ret_error) {
        const char *entry = archive_entry_pathname(e), *name, *link;
        _cleanup_close_ int parent = -1;
        char clean[PATH_MAX];
        struct stat st;
        mode_t type;
        int r;

        if (!entry)
                return pm_errorf(ret_error, -EBADMSG, "image %s: layer sha256:%s: an entry has no name", u->img->path,
                                 u->layer->digest);
        r = pm_fs_path_clean(entry, clean, sizeof(clean));
        if (r < 0)
                return pm_errorf(ret_error, r == -EINVAL ? -EXDEV : r,
                                 "image %s: layer sha256:%s: entry \"%.200s\" escapes the root "
                                 "(an absolute path or a \"..\" component)",
                                 u->img->path, u->layer->digest, entry);
        entry_stat(e, &st);
        type = archive_entry_filetype(e);
        u->entries++;
        if (isempty(clean))
                return type == AE_IFDIR ? remember_dir(u, "", &st) : 0;

        r = pm_fs_open_parent(u->destfd, clean, 0755, &parent, &name);
        if (r < 0)
                return pm_errorf(ret_error, r,
                                 "image %s: layer sha256:%s: entry \"%.200s\": its directory cannot be resolved "
                                 "inside the rootfs: %m",
                                 u->img->path, u->layer->digest, entry);

        if (startswith(name, PM_WHITEOUT_PREFIX)) {
                r = make_whiteout(u, parent, name, entry, ret_error);
                if (r < 0)
                        return pm_errorf(ret_error, r, "image %s: layer sha256:%s: entry \"%.200s\": %m", u->img->path,
                                         u->layer->digest, entry);
                return 0;
        }
        link = archive_entry_hardlink(e);
        if (link)
                r = make_hardlink(u, parent, name, entry, link, ret_error);
        else if (type == AE_IFDIR)
                r = make_dir(u, parent, name, clean, &st);
        else if (type == AE_IFREG)
                r = make_file(u, parent, name, e);
        else if (type == AE_IFLNK) {
                r = pm_rm_rf_at(parent, name);
                if (r >= 0 && symlinkat(archive_entry_symlink(e) ?: "", parent, name) < 0)
                        r = -errno;
        } else
                r = make_node(u, parent, name, entry, e, ret_error);
        if (r >= 0 && !link && type != AE_IFDIR)
                r = pm_fs_set_meta(parent, name, &st);
        if (r < 0)
                return pm_errorf(ret_error, r, "image %s: layer sha256:%s: entry \"%.200s\": %s", u->img->path,
                                 u->layer->digest, entry,
                                 r == -EBADMSG ? (archive_error_string(u->tar) ?: "corrupt data") : strerror(-r));
        return 0;
}

static int finish_dirs(Unpack *u, char **ret_error) {
        for (size_t i = u->n_dirs; i-- > 0;) {
                _cleanup_close_ int parent = -1;
                const char *name = ".";
                int r;

                if (isempty(u->dirs[i].path))
                        parent = fcntl(u->destfd, F_DUPFD_CLOEXEC, 3);
                else if ((r = pm_fs_open_parent(u->destfd, u->dirs[i].path, 0, &parent, &name)) < 0)
                        return pm_errorf(ret_error, r, "image %s: layer sha256:%s: directory %s: %m", u->img->path,
                                         u->layer->digest, u->dirs[i].path);
                r = parent < 0 ? -errno : pm_fs_set_meta(parent, name, &u->dirs[i].st);
                if (r < 0)
                        return pm_errorf(ret_error, r, "image %s: layer sha256:%s: directory %s: %m", u->img->path,
                                         u->layer->digest, u->dirs[i].path);
        }
        return 0;
}

/* The digests, once the whole blob (past what the decompressor needed)
 * has gone through the hash. */
static int check_digests(Unpack *u, char **ret_error) {
        char hex[PM_SHA256_HEX_SIZE];
        ssize_t n;

        while ((n = archive_read_data(u->blob, u->out, sizeof(u->out))) > 0) {
                pm_sha256_update(&u->tar_sha, u->out, (size_t) n);
                u->tar_bytes += (uint64_t) n;
        }
        if (n < 0)
                return pm_errorf(ret_error, -EBADMSG, "image %s: layer sha256:%s: %s", u->img->path, u->layer->digest,
                                 archive_error_string(u->blob) ?: "corrupt data");
        while ((n = pread(u->blob_fd, u->in, sizeof(u->in), (off_t) u->blob_offset)) > 0) {
                pm_sha256_update(&u->blob_sha, u->in, (size_t) n);
                u->blob_offset += (uint64_t) n;
        }
        pm_sha256_final_hex(&u->blob_sha, hex);
        if (u->blob_offset != u->layer->size || !streq(hex, u->layer->digest))
                return pm_errorf(ret_error, -EBADMSG,
                                 "image %s: layer blob sha256:%s has the digest sha256:%s (%ju bytes): digest mismatch",
                                 u->img->path, u->layer->digest, hex, (uintmax_t) u->blob_offset);
        pm_sha256_final_hex(&u->tar_sha, hex);
        if (!streq(hex, u->layer->diff_id))
                return pm_errorf(ret_error, -EBADMSG,
                                 "image %s: layer sha256:%s unpacks to sha256:%s, not its diff_id sha256:%s: "
                                 "digest mismatch",
                                 u->img->path, u->layer->digest, hex, u->layer->diff_id);
        return 0;
}

static int run(Unpack *u, char **ret_error) {
        struct archive_entry *e;
        int r, k;

        r = pm_oci_blob_open(u->img, u->layer->digest, u->layer->size, &u->blob_fd, ret_error);
        if (r < 0)
                return r;
        r = open_readers(u, ret_error);
        if (r < 0)
                return r;
        while ((k = archive_read_next_header(u->tar, &e)) == ARCHIVE_OK || k == ARCHIVE_WARN) {
                r = unpack_entry(u, e, ret_error);
                if (r < 0)
                        return r;
        }
        if (k != ARCHIVE_EOF)
                return pm_errorf(ret_error, -EBADMSG, "image %s: layer sha256:%s: %s", u->img->path, u->layer->digest,
                                 archive_error_string(u->tar) ?: "corrupt tar");
        r = check_digests(u, ret_error);
        if (r < 0)
                return r;
        return finish_dirs(u, ret_error);
}

/* After a failure: was it the blob that lies? Then that is the error to
 * report, whatever the decompressor or tar reader made of it. */
static bool blob_lies(Unpack *u, char hex[PM_SHA256_HEX_SIZE]) {
        PmSha256 sha;
        uint64_t off = 0;
        ssize_t n;

        if (u->blob_fd < 0)
                return false;
        pm_sha256_init(&sha);
        while ((n = pread(u->blob_fd, u->in, sizeof(u->in), (off_t) off)) > 0) {
                pm_sha256_update(&sha, u->in, (size_t) n);
                off += (uint64_t) n;
        }
        pm_sha256_final_hex(&sha, hex);
        return n == 0 && !streq(hex, u->layer->digest);
}

int pm_oci_layer_unpack(const PmOciImage *img, const PmOciLayer *layer, int destfd, bool allow_devices,
                        PmLayerStats *ret_stats, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        char hex[PM_SHA256_HEX_SIZE];
        Unpack *u;
        int r;

        /* the buffers make it too large for the stack */
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->img = img;
        u->layer = layer;
        u->blob_fd = -1;
        u->destfd = destfd;
        u->allow_devices = allow_devices;
        pm_sha256_init(&u->blob_sha);
        pm_sha256_init(&u->tar_sha);

        r = run(u, &error);
        if (r < 0 && error && !strstr(error, "mismatch") && blob_lies(u, hex)) {
                free(error);
                error = NULL;
                r = pm_errorf(&error, -EBADMSG,
                              "image %s: layer blob sha256:%s has the digest sha256:%s: digest mismatch", img->path,
                              layer->digest, hex);
        }
        if (r < 0)
                pm_errorf(ret_error, r, "%s", error ?: strerror(-r));
        if (r >= 0 && ret_stats)
                *ret_stats = (PmLayerStats){.entries = u->entries, .bytes = u->tar_bytes, .devices = u->devices};

        if (u->tar)
                archive_read_free(u->tar);
        if (u->blob)
                archive_read_free(u->blob);
        closep(&u->blob_fd);
        for (size_t i = 0; i < u->n_dirs; i++)
                free(u->dirs[i].path);
        free(u->dirs);
        free(u);
        return r;
}
