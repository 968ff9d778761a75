/* An OCI image layout (image-layout spec v1.0: oci-layout, index.json,
 * blobs/sha256/...) on the node, read and checked down to its layers:
 * index.json -> the manifest (by tag, or the only one) -> its config.
 * Every blob read here is checked against the size and sha256 digest of
 * the descriptor that names it before its content is used; layers are
 * checked while they are unpacked (oci-unpack.h). A layout may also be a
 * tar of such a directory: it is unpacked into a scratch directory first,
 * taking only the names a layout has. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "sha256.h"

#define PM_OCI_JSON_MAX (4u * 1024u * 1024u) /* index, manifest, config */
#define PM_OCI_LAYERS_MAX 256
#define PM_OCI_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

typedef enum PmOciCompression {
        PM_OCI_COMPRESSION_NONE,
        PM_OCI_COMPRESSION_GZIP,
        PM_OCI_COMPRESSION_ZSTD,
} PmOciCompression;

typedef struct PmOciLayer {
        char digest[PM_SHA256_HEX_SIZE];  /* of the blob, hex */
        char diff_id[PM_SHA256_HEX_SIZE]; /* of the uncompressed tar, hex */
        uint64_t size;                    /* of the blob */
        PmOciCompression compression;
} PmOciLayer;

typedef struct PmOciImage {
        char *path;    /* as given, for messages */
        int layout_fd; /* the layout directory */
        char *scratch; /* the unpacked tar of a layout, removed on free */
        char manifest_digest[PM_SHA256_HEX_SIZE];
        char config_digest[PM_SHA256_HEX_SIZE];
        PmOciLayer *layers;
        size_t n_layers;
        json_object *config; /* the config blob, parsed */
} PmOciImage;

/* Opens the layout at path (a directory, or a tar of one: its scratch copy
 * is made below scratch_dir) and reads the manifest tagged tag (NULL: the
 * only one) and its config. On failure a message names the file or blob
 * and what is wrong with it. */
int pm_oci_image_open(const char *path, const char *tag, const char *scratch_dir, PmOciImage **ret, char **ret_error);
PmOciImage *pm_oci_image_free(PmOciImage *img);
static inline void pm_oci_image_freep(PmOciImage **img) { pm_oci_image_free(*img); }

/* Opens the blob of that digest (hex) for reading, checking that it is a
 * regular file of the given size. */
int pm_oci_blob_open(const PmOciImage *img, const char *digest, uint64_t size, int *ret_fd, char **ret_error);

/* "sha256:<64 lowercase hex>" into its hex part; -EINVAL otherwise
 * (-EOPNOTSUPP for another algorithm). */
int pm_oci_digest_parse(const char *s, char ret_hex[PM_SHA256_HEX_SIZE]);

/* The image config's "config" member (may be NULL: no such member). */
json_object *pm_oci_image_run_config(const PmOciImage *img);
