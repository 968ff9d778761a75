#include "oci-image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "pbjson.h"
#include "oci-fs.h"
#include "util.h"

#define MEDIA_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

static const struct {
        const char *media_type;
        PmOciCompression compression;
} layer_types[] = {
        {"application/vnd.oci.image.layer.v1.tar", PM_OCI_COMPRESSION_NONE},
        {"application/vnd.oci.image.layer.v1.tar+gzip", PM_OCI_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.v1.tar+zstd", PM_OCI_COMPRESSION_ZSTD},
        {"application/vnd.docker.image.rootfs.diff.tar.gzip", PM_OCI_COMPRESSION_GZIP},
};

int pm_oci_digest_parse(const char *s, char ret_hex[PM_SHA256_HEX_SIZE]) {
        const char *hex;

        if (!s || !strchr(s, ':'))
                return -EINVAL;
        if (!startswith(s, "sha256:"))
                return -EOPNOTSUPP;
        hex = s + strlen("sha256:");
        if (strlen(hex) != PM_SHA256_HEX_SIZE - 1 || hex[strspn(hex, "0123456789abcdef")] != '\0')
                return -EINVAL;
        memcpy(ret_hex, hex, PM_SHA256_HEX_SIZE);
        return 0;
}

PmOciImage *pm_oci_image_free(PmOciImage *img) {
        if (!img)
                return NULL;
        closep(&img->layout_fd);
        if (img->scratch)
                (void) pm_rm_rf(img->scratch);
        free(img->scratch);
        free(img->path);
        free(img->layers);
        if (img->config)
                json_object_put(img->config);
        free(img);
        return NULL;
}

/* A layout's tar holds files and directories under a few known names; the
 * rest of it is skipped, and nothing else is ever created. */
static bool layout_name_wanted(const char *clean, bool *ret_dir) {
        const char *hex;

        *ret_dir = streq(clean, "blobs") || streq(clean, "blobs/sha256");
        if (*ret_dir || streq(clean, "oci-layout") || streq(clean, "index.json"))
                return true;
        if (!startswith(clean, "blobs/sha256/"))
                return false;
        hex = clean + strlen("blobs/sha256/");
        return strlen(hex) == PM_SHA256_HEX_SIZE - 1 && hex[strspn(hex, "0123456789abcdef")] == '\0';
}

static int copy_entry_data(struct archive *a, int fd) {
        const void *buf;
        size_t size;
        int64_t offset;
        int k;

        while ((k = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
                if (pwrite(fd, buf, size, offset) != (ssize_t) size)
                        return -errno ?: -EIO;
        }
        return k == ARCHIVE_EOF ? 0 : -EIO;
}

static int unpack_layout_tar(const char *path, int dirfd, char **ret_error) {
        struct archive *a;
        struct archive_entry *e;
        int r = 0, k;

        if (mkdirat(dirfd, "blobs", 0700) < 0 || mkdirat(dirfd, "blobs/sha256", 0700) < 0)
                return pm_errorf(ret_error, -errno, "cannot create a scratch copy of %s: %m", path);
        a = archive_read_new();
        if (!a)
                return -ENOMEM;
        archive_read_support_format_tar(a);
        archive_read_support_filter_all(a);
        if (archive_read_open_filename(a, path, 64 * 1024) != ARCHIVE_OK) {
                r = pm_errorf(ret_error, -EINVAL, "cannot read %s: %s", path, archive_error_string(a));
                goto out;
        }
        while ((k = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
                char clean[256];
                const char *name = archive_entry_pathname(e);
                _cleanup_close_ int fd = -1;
                bool dir;

                if (!name || pm_fs_path_clean(name, clean, sizeof(clean)) < 0 || !layout_name_wanted(clean, &dir))
                        continue;
                if (dir != (archive_entry_filetype(e) == AE_IFDIR) || (!dir && archive_entry_filetype(e) != AE_IFREG)) {
                        r = pm_errorf(ret_error, -EINVAL, "%s: %s is not a %s", path, clean,
                                      dir ? "directory" : "regular file");
                        goto out;
                }
                if (dir)
                        continue;
                fd = openat(dirfd, clean, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) {
                        r = pm_errorf(ret_error, -errno, "%s: cannot copy %s: %m", path, clean);
                        goto out;
                }
                r = copy_entry_data(a, fd);
                if (r < 0) {
                        r = pm_errorf(ret_error, r, "%s: cannot copy %s: %s", path, clean,
                                      archive_error_string(a) ?: strerror(-r));
                        goto out;
                }
        }
        if (k != ARCHIVE_EOF)
                r = pm_errorf(ret_error, -EINVAL, "%s: not a readable tar: %s", path, archive_error_string(a));
out:
        archive_read_free(a);
        return r;
}

static int open_layout(PmOciImage *img, const char *scratch_dir, char **ret_error) {
        _cleanup_free_ char *tmpl = NULL;
        struct stat st;
        int r;

        if (stat(img->path, &st) < 0)
                return pm_errorf(ret_error, -errno, "image %s: %m", img->path);
        if (!S_ISDIR(st.st_mode)) {
                if (asprintf(&tmpl, "%s/layout-XXXXXX", scratch_dir) < 0)
                        return -ENOMEM;
                if (!mkdtemp(tmpl))
                        return pm_errorf(ret_error, -errno, "cannot create a scratch directory in %s: %m", scratch_dir);
                img->scratch = TAKE_PTR(tmpl);
        }
        img->layout_fd = open(img->scratch ?: img->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (img->layout_fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open %s: %m", img->scratch ?: img->path);
        if (img->scratch) {
                r = unpack_layout_tar(img->path, img->layout_fd, ret_error);
                if (r < 0)
                        return r;
        }
        if (faccessat(img->layout_fd, "oci-layout", F_OK, 0) < 0)
                return pm_errorf(ret_error, -EINVAL, "image %s: no oci-layout file: not an OCI image layout",
                                 img->path);
        return 0;
}

int pm_oci_blob_open(const PmOciImage *img, const char *digest, uint64_t size, int *ret_fd, char **ret_error) {
        _cleanup_close_ int fd = -1;
        char path[96];
        struct stat st;

        snprintf(path, sizeof(path), "blobs/sha256/%s", digest);
        fd = openat(img->layout_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return pm_errorf(ret_error, -errno, "image %s: blob sha256:%s: %m", img->path, digest);
        if (fstat(fd, &st) < 0)
                return pm_errorf(ret_error, -errno, "image %s: blob sha256:%s: %m", img->path, digest);
        if (!S_ISREG(st.st_mode))
                return pm_errorf(ret_error, -EINVAL, "image %s: blob sha256:%s is not a regular file", img->path,
                                 digest);
        if ((uint64_t) st.st_size != size)
                return pm_errorf(ret_error, -EBADMSG,
                                 "image %s: blob sha256:%s has %jd bytes, its descriptor says %ju: size mismatch",
                                 img->path, digest, (intmax_t) st.st_size, (uintmax_t) size);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int parse_json(const char *text, size_t size, const char *what, const char *image, json_object **ret,
                      char **ret_error) {
        json_tokener *tok;
        json_object *o;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int) size);
        if (!o || json_tokener_get_parse_end(tok) != size || !json_object_is_type(o, json_type_object)) {
                json_tokener_free(tok);
                if (o)
                        json_object_put(o);
                return pm_errorf(ret_error, -EINVAL, "image %s: %s is not a JSON object", image, what);
        }
        json_tokener_free(tok);
        *ret = o;
        return 0;
}

/* Reads a JSON blob whole, checks its size and digest, then parses it. */
static int read_json_blob(const PmOciImage *img, const char *what, const char *digest, uint64_t size, json_object **ret,
                          char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *text = NULL;
        char hex[PM_SHA256_HEX_SIZE];
        PmSha256 sha;
        int r;

        if (size > PM_OCI_JSON_MAX)
                return pm_errorf(ret_error, -EFBIG, "image %s: %s sha256:%s has %ju bytes, more than the %u allowed",
                                 img->path, what, digest, (uintmax_t) size, PM_OCI_JSON_MAX);
        r = pm_oci_blob_open(img, digest, size, &fd, ret_error);
        if (r < 0)
                return r;
        text = malloc(size + 1);
        if (!text)
                return -ENOMEM;
        if (pread(fd, text, size, 0) != (ssize_t) size)
                return pm_errorf(ret_error, -EIO, "image %s: cannot read %s sha256:%s", img->path, what, digest);
        pm_sha256_init(&sha);
        pm_sha256_update(&sha, text, size);
        pm_sha256_final_hex(&sha, hex);
        if (!streq(hex, digest))
                return pm_errorf(ret_error, -EBADMSG,
                                 "image %s: %s blob sha256:%s has the digest sha256:%s: digest mismatch", img->path,
                                 what, digest, hex);
        return parse_json(text, size, what, img->path, ret, ret_error);
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* A descriptor's digest and size, checked for form. */
static int descriptor(const PmOciImage *img, json_object *d, const char *what, char hex[PM_SHA256_HEX_SIZE],
                      uint64_t *ret_size, char **ret_error) {
        json_object *size;
        int r;

        if (!json_object_is_type(d, json_type_object))
                return pm_errorf(ret_error, -EINVAL, "image %s: %s is not a descriptor object", img->path, what);
        r = pm_oci_digest_parse(json_str(d, "digest"), hex);
        if (r == -EOPNOTSUPP)
                return pm_errorf(ret_error, r, "image %s: %s: digest \"%.80s\": only sha256 is supported", img->path,
                                 what, json_str(d, "digest"));
        if (r < 0)
                return pm_errorf(ret_error, r, "image %s: %s: invalid digest \"%.80s\"", img->path, what,
                                 strempty(json_str(d, "digest")));
        if (!json_object_object_get_ex(d, "size", &size) || !json_object_is_type(size, json_type_int) ||
            json_object_get_int64(size) < 0)
                return pm_errorf(ret_error, -EINVAL, "image %s: %s: missing or invalid size", img->path, what);
        *ret_size = (uint64_t) json_object_get_int64(size);
        return 0;
}

static int pick_manifest(PmOciImage *img, json_object *index, const char *tag, json_object **ret, char **ret_error) {
        json_object *manifests, *found = NULL;
        size_t n;

        if (!json_object_object_get_ex(index, "manifests", &manifests) ||
            !json_object_is_type(manifests, json_type_array))
                return pm_errorf(ret_error, -EINVAL, "image %s: index.json has no manifests array", img->path);
        n = json_object_array_length(manifests);
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(manifests, i), *ann = NULL;

                if (tag) {
                        if (!json_object_is_type(m, json_type_object) ||
                            !json_object_object_get_ex(m, "annotations", &ann) ||
                            !streq_ptr(json_str(ann, PM_OCI_ANNOTATION_REF_NAME), tag))
                                continue;
                        if (found)
                                return pm_errorf(ret_error, -EINVAL, "image %s: tag %s names more than one manifest",
                                                 img->path, tag);
                }
                found = m;
        }
        if (tag && !found)
                return pm_errorf(ret_error, -ENOENT, "image %s: no manifest is tagged %s", img->path, tag);
        if (n == 0)
                return pm_errorf(ret_error, -EINVAL, "image %s: index.json lists no manifest", img->path);
        if (!tag && n > 1)
                return pm_errorf(ret_error, -EINVAL, "image %s: index.json lists %zu manifests: pick one with :TAG",
                                 img->path, n);
        if (streq_ptr(json_str(found, "mediaType"), MEDIA_INDEX))
                return pm_errorf(ret_error, -EOPNOTSUPP, "image %s: the manifest is a nested index: not supported",
                                 img->path);
        *ret = found;
        return 0;
}

static int read_layers(PmOciImage *img, json_object *manifest, json_object *config, char **ret_error) {
        json_object *layers, *rootfs, *diff_ids;
        size_t n;
        int r;

        if (!json_object_object_get_ex(manifest, "layers", &layers) || !json_object_is_type(layers, json_type_array))
                return pm_errorf(ret_error, -EINVAL, "image %s: the manifest has no layers array", img->path);
        if (!json_object_object_get_ex(config, "rootfs", &rootfs) ||
            !json_object_object_get_ex(rootfs, "diff_ids", &diff_ids) ||
            !json_object_is_type(diff_ids, json_type_array))
                return pm_errorf(ret_error, -EINVAL, "image %s: the config has no rootfs.diff_ids array", img->path);
        n = json_object_array_length(layers);
        if (n > PM_OCI_LAYERS_MAX)
                return pm_errorf(ret_error, -E2BIG, "image %s: %zu layers, more than the %u allowed", img->path, n,
                                 PM_OCI_LAYERS_MAX);
        if (json_object_array_length(diff_ids) != n)
                return pm_errorf(ret_error, -EINVAL,
                                 "image %s: the manifest has %zu layers but the config %zu diff_ids", img->path, n,
                                 json_object_array_length(diff_ids));
        img->layers = calloc(n ?: 1, sizeof(PmOciLayer));
        if (!img->layers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(layers, i);
                PmOciLayer *l = &img->layers[i];
                const char *type;
                char what[32];
                size_t t;

                snprintf(what, sizeof(what), "layer %zu", i + 1);
                r = descriptor(img, d, what, l->digest, &l->size, ret_error);
                if (r < 0)
                        return r;
                type = json_str(d, "mediaType");
                for (t = 0; t < ELEMENTSOF(layer_types); t++)
                        if (streq_ptr(type, layer_types[t].media_type))
                                break;
                if (t == ELEMENTSOF(layer_types))
                        return pm_errorf(ret_error, -EOPNOTSUPP,
                                         "image %s: layer sha256:%s has media type \"%.100s\": "
                                         "not a supported layer type",
                                         img->path, l->digest, strempty(type));
                l->compression = layer_types[t].compression;
                json_object *id = json_object_array_get_idx(diff_ids, i);
                if (pm_oci_digest_parse(json_object_is_type(id, json_type_string) ? json_object_get_string(id) : NULL,
                                        l->diff_id) < 0)
                        return pm_errorf(ret_error, -EINVAL, "image %s: diff_ids[%zu] is not a sha256 digest",
                                         img->path, i);
        }
        img->n_layers = n;
        return 0;
}

static int read_image(PmOciImage *img, const char *tag, char **ret_error) {
        _cleanup_(json_object_putp) json_object *index = NULL, *manifest = NULL, *config = NULL;
        _cleanup_free_ char *text = NULL;
        json_object *desc = NULL, *cdesc;
        uint64_t size;
        size_t text_size;
        const char *type;
        int r;

        {
                _cleanup_close_ int fd = openat(img->layout_fd, "index.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;

                if (fd < 0)
                        return pm_errorf(ret_error, -errno, "image %s: index.json: %m", img->path);
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > PM_OCI_JSON_MAX)
                        return pm_errorf(ret_error, -EINVAL,
                                         "image %s: index.json is not a regular file of at most %u bytes", img->path,
                                         PM_OCI_JSON_MAX);
                text_size = (size_t) st.st_size;
                text = malloc(text_size + 1);
                if (!text)
                        return -ENOMEM;
                if (pread(fd, text, text_size, 0) != (ssize_t) text_size)
                        return pm_errorf(ret_error, -EIO, "image %s: cannot read index.json", img->path);
        }
        r = parse_json(text, text_size, "index.json", img->path, &index, ret_error);
        if (r < 0)
                return r;
        r = pick_manifest(img, index, tag, &desc, ret_error);
        if (r < 0)
                return r;
        r = descriptor(img, desc, "the manifest descriptor", img->manifest_digest, &size, ret_error);
        if (r < 0)
                return r;
        r = read_json_blob(img, "manifest", img->manifest_digest, size, &manifest, ret_error);
        if (r < 0)
                return r;
        type = json_str(manifest, "mediaType") ?: json_str(desc, "mediaType");
        if (type && !streq(type, MEDIA_MANIFEST) && !streq(type, MEDIA_DOCKER_MANIFEST))
                return pm_errorf(ret_error, -EOPNOTSUPP, "image %s: manifest sha256:%s has media type \"%.100s\"",
                                 img->path, img->manifest_digest, type);

        if (!json_object_object_get_ex(manifest, "config", &cdesc))
                return pm_errorf(ret_error, -EINVAL, "image %s: manifest sha256:%s has no config", img->path,
                                 img->manifest_digest);
        r = descriptor(img, cdesc, "the config descriptor", img->config_digest, &size, ret_error);
        if (r < 0)
                return r;
        type = json_str(cdesc, "mediaType");
        if (!streq_ptr(type, MEDIA_CONFIG) && !streq_ptr(type, MEDIA_DOCKER_CONFIG))
                return pm_errorf(ret_error, -EOPNOTSUPP, "image %s: config sha256:%s has media type \"%.100s\"",
                                 img->path, img->config_digest, strempty(type));
        r = read_json_blob(img, "config", img->config_digest, size, &config, ret_error);
        if (r < 0)
                return r;
        r = read_layers(img, manifest, config, ret_error);
        if (r < 0)
                return r;
        img->config = TAKE_PTR(config);
        return 0;
}

int pm_oci_image_open(const char *path, const char *tag, const char *scratch_dir, PmOciImage **ret, char **ret_error) {
        _cleanup_(pm_oci_image_freep) PmOciImage *img = NULL;
        int r;

        img = calloc(1, sizeof(*img));
        if (!img)
                return -ENOMEM;
        img->layout_fd = -1;
        img->path = strdup(path);
        if (!img->path)
                return -ENOMEM;
        r = open_layout(img, scratch_dir, ret_error);
        if (r < 0)
                return r;
        r = read_image(img, tag, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(img);
        return 0;
}

json_object *pm_oci_image_run_config(const PmOciImage *img) {
        json_object *c;

        if (!json_object_object_get_ex(img->config, "config", &c) || !json_object_is_type(c, json_type_object))
                return NULL;
        return c;
}
