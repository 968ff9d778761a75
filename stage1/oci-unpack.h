/* Unpacks one image layer (a tar, gzip or zstd compressed or not) into an
 * empty directory, checking as it goes the blob's digest and the digest of
 * the uncompressed tar (the layer's diff_id). The result counts only if
 * both matched: the caller unpacks into a temp directory and renames it
 * on success.
 *
 * Rules (docs/images.md):
 *  - entry names are relative, with no ".." component; every directory on
 *    the way is resolved inside the destination (RESOLVE_IN_ROOT), so a
 *    symlink the layer made earlier cannot lead a write outside;
 *  - the final component is never followed: what is there is replaced;
 *  - hard links must name a file of the same layer, also resolved inside;
 *  - device nodes are refused unless allowed; sockets are refused;
 *  - owners, modes and times are kept; directories get their times last;
 *  - whiteouts (".wh.NAME", ".wh..wh..opq") are kept as the empty files
 *    they are in the tar: they mean something only when layers are
 *    stacked (oci-rootfs.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "oci-image.h"

typedef struct PmLayerStats {
        uint64_t entries;
        uint64_t bytes; /* of the uncompressed tar */
} PmLayerStats;

int pm_oci_layer_unpack(const PmOciImage *img, const PmOciLayer *layer, int destfd, bool allow_devices,
                        PmLayerStats *ret_stats, char **ret_error);
