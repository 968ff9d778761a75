#include "oci-cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "oci-fs.h"
#include "oci-unpack.h"
#include "util.h"

#define INFO_MAX (64u * 1024u)

PmCache *pm_cache_free(PmCache *c) {
        if (!c)
                return NULL;
        closep(&c->layers_fd);
        closep(&c->lock_fd);
        closep(&c->fd);
        free(c->root);
        free(c);
        return NULL;
}

int pm_cache_open(bool exclusive, PmCache **ret, char **ret_error) {
        _cleanup_(pm_cache_freep) PmCache *c = NULL;
        const char *root = getenv("PM_CACHE_ROOT");
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = c->lock_fd = c->layers_fd = -1;
        c->root = strdup(isempty(root) ? PM_NODE_CACHE_DIR : root);
        if (!c->root)
                return -ENOMEM;
        r = pm_mkdir_p(c->root, 0700);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot create the layer cache %s: %m", c->root);
        c->fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open the layer cache %s: %m", c->root);
        if ((mkdirat(c->fd, "layers", 0700) < 0 && errno != EEXIST) ||
            (mkdirat(c->fd, "tmp", 0700) < 0 && errno != EEXIST))
                return pm_errorf(ret_error, -errno, "cannot create the layer cache in %s: %m", c->root);
        c->layers_fd = openat(c->fd, "layers", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        c->lock_fd = openat(c->fd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (c->layers_fd < 0 || c->lock_fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open the layer cache in %s: %m", c->root);
        if (flock(c->lock_fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
                return pm_errorf(ret_error, -errno, "cannot lock the layer cache %s: %m", c->root);
        *ret = TAKE_PTR(c);
        return 0;
}

static int write_info(int dirfd, const PmOciLayer *layer, const PmLayerStats *stats) {
        _cleanup_close_ int fd = -1;
        char text[512];
        int n;

        n = snprintf(
                text, sizeof(text), "{\"diff_id\": \"sha256:%s\", \"size\": %ju, \"entries\": %ju, \"created\": %jd}\n",
                layer->diff_id, (uintmax_t) stats->bytes, (uintmax_t) stats->entries, (intmax_t) pm_now_realtime_ns());
        fd = openat(dirfd, "info.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (write(fd, text, (size_t) n) != n)
                return errno ? -errno : -EIO;
        return 0;
}

/* Unpacks the layer into layers/<hex>.tmp-*, then renames it into place.
 * Someone else who got there first wins; ours is dropped. */
static int fill(PmCache *c, const PmOciImage *img, const PmOciLayer *layer, bool allow_devices, char **ret_error) {
        _cleanup_close_ int tmpfd = -1, treefd = -1;
        PmLayerStats stats;
        char tmp[128];
        int r;

        r = pm_fs_tmp_name(layer->diff_id, tmp, sizeof(tmp));
        if (r < 0)
                return r;
        if (mkdirat(c->layers_fd, tmp, 0700) < 0)
                return pm_errorf(ret_error, -errno, "cannot create %s/layers/%s: %m", c->root, tmp);
        tmpfd = openat(c->layers_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (tmpfd < 0 || mkdirat(tmpfd, "tree", 0755) < 0 ||
            (treefd = openat(tmpfd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                r = pm_errorf(ret_error, -errno, "cannot create %s/layers/%s: %m", c->root, tmp);
                goto fail;
        }
        /* the tree's root, when the tar has no "./" entry */
        if (fchmod(treefd, 0755) < 0) {
                r = pm_errorf(ret_error, -errno, "cannot chmod %s/layers/%s/tree: %m", c->root, tmp);
                goto fail;
        }
        r = pm_oci_layer_unpack(img, layer, treefd, allow_devices, &stats, ret_error);
        if (r < 0)
                goto fail;
        /* a later prepare without --allow-devices must not get them */
        if (stats.devices > 0 && mknodat(tmpfd, "devices", S_IFREG | 0600, 0) < 0) {
                r = pm_errorf(ret_error, -errno, "cannot write %s/layers/%s/devices: %m", c->root, tmp);
                goto fail;
        }
        r = write_info(tmpfd, layer, &stats);
        if (r < 0) {
                pm_errorf(ret_error, r, "cannot write %s/layers/%s/info.json: %m", c->root, tmp);
                goto fail;
        }
        /* durable before it is visible */
        if (syncfs(tmpfd) < 0) {
                r = pm_errorf(ret_error, -errno, "cannot sync the layer cache %s: %m", c->root);
                goto fail;
        }
        if (renameat2(c->layers_fd, tmp, c->layers_fd, layer->diff_id, RENAME_NOREPLACE) < 0 && errno != EEXIST) {
                r = pm_errorf(ret_error, -errno, "cannot rename %s/layers/%s: %m", c->root, tmp);
                goto fail;
        }
        (void) pm_rm_rf_at(c->layers_fd, tmp); /* nothing left if the rename happened */
        return 0;
fail:
        (void) pm_rm_rf_at(c->layers_fd, tmp);
        return r;
}

int pm_cache_layer(PmCache *c, const PmOciImage *img, const PmOciLayer *layer, bool allow_devices, int *ret_fd,
                   bool *ret_hit, char **ret_error) {
        char tree[128], info[128], devices[128];
        bool hit = true;
        int fd, r;

        snprintf(tree, sizeof(tree), "%s/tree", layer->diff_id);
        snprintf(info, sizeof(info), "%s/info.json", layer->diff_id);
        snprintf(devices, sizeof(devices), "%s/devices", layer->diff_id);
        fd = openat(c->layers_fd, tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                hit = false;
                r = fill(c, img, layer, allow_devices, ret_error);
                if (r < 0)
                        return r;
                fd = openat(c->layers_fd, tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open %s/layers/%s: %m", c->root, tree);
        if (!allow_devices && faccessat(c->layers_fd, devices, F_OK, AT_SYMLINK_NOFOLLOW) >= 0) {
                close(fd);
                return pm_errorf(ret_error, -EPERM,
                                 "image %s: layer sha256:%s (cached) holds device nodes: refused "
                                 "(pass --allow-devices to accept device nodes)",
                                 img->path, layer->digest);
        }
        /* last use: the mtime of info.json */
        (void) utimensat(c->layers_fd, info, NULL, AT_SYMLINK_NOFOLLOW);
        *ret_fd = fd;
        *ret_hit = hit;
        return 0;
}

static int read_entry(PmCache *c, const char *name, PmCacheEntry *ret) {
        _cleanup_close_ int fd = -1;
        json_object *o, *v;
        char text[INFO_MAX];
        char path[128];
        struct stat st;
        ssize_t n;

        snprintf(path, sizeof(path), "%s/info.json", name);
        fd = openat(c->layers_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        n = read(fd, text, sizeof(text) - 1);
        if (n < 0)
                return -errno;
        text[n] = '\0';
        o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        *ret = (PmCacheEntry){.last_used_ns = (int64_t) st.st_mtim.tv_sec * NSEC_PER_SEC + st.st_mtim.tv_nsec};
        memcpy(ret->diff_id, name, PM_SHA256_HEX_SIZE);
        if (json_object_object_get_ex(o, "size", &v))
                ret->size = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "entries", &v))
                ret->entries = (uint64_t) json_object_get_int64(v);
        json_object_put(o);
        return 0;
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const PmCacheEntry *) a)->diff_id, ((const PmCacheEntry *) b)->diff_id);
}

static bool is_entry_name(const char *s) {
        return strlen(s) == PM_SHA256_HEX_SIZE - 1 && s[strspn(s, "0123456789abcdef")] == '\0';
}

int pm_cache_list(PmCache *c, PmCacheEntry **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ PmCacheEntry *list = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int fd;

        fd = fcntl(c->layers_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || !(d = fdopendir(fd))) {
                closep(&fd);
                return pm_errorf(ret_error, -errno, "cannot read %s/layers: %m", c->root);
        }
        while ((de = readdir(d))) {
                if (!is_entry_name(de->d_name))
                        continue;
                if (n == cap) {
                        PmCacheEntry *l = reallocarray(list, cap ? 2 * cap : 16, sizeof(*l));
                        if (!l) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        list = l;
                        cap = cap ? 2 * cap : 16;
                }
                if (read_entry(c, de->d_name, &list[n]) >= 0)
                        n++;
        }
        closedir(d);
        if (n > 0)
                qsort(list, n, sizeof(*list), cmp_entry);
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int pm_cache_remove(PmCache *c, const char *diff_id, char **ret_error) {
        int r;

        if (!is_entry_name(diff_id))
                return -EINVAL;
        r = pm_rm_rf_at(c->layers_fd, diff_id);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot remove %s/layers/%s: %m", c->root, diff_id);
        return 0;
}

int pm_cache_remove_leftovers(PmCache *c, char **ret_error) {
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        fd = fcntl(c->layers_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || !(d = fdopendir(fd))) {
                closep(&fd);
                return pm_errorf(ret_error, -errno, "cannot read %s/layers: %m", c->root);
        }
        while ((de = readdir(d)) && r >= 0)
                if (strstr(de->d_name, ".tmp-"))
                        r = pm_rm_rf_at(c->layers_fd, de->d_name);
        closedir(d);
        if (r >= 0) {
                _cleanup_close_ int tmpfd = openat(c->fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = tmpfd < 0 ? -errno : pm_clear_dir(tmpfd);
        }
        return r < 0 ? pm_errorf(ret_error, r, "cannot remove leftovers in %s: %m", c->root) : 0;
}
