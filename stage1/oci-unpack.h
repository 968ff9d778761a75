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
 *  - whiteouts are written the way overlayfs reads them, so a tree can be
 *    a lower layer as is: ".wh.NAME" becomes a 0:0 character device NAME
 *    (unless the layer has its own NAME: a whiteout hides lower layers
 *    only), ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its
 *    directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "oci-image.h"

#define PM_WHITEOUT_PREFIX ".wh."
#define PM_WHITEOUT_OPAQUE ".wh..wh..opq"
#define PM_OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

typedef struct PmLayerStats {
        uint64_t entries;
        uint64_t devices;   /* character and block devices (not whiteouts) */
        uint64_t bytes; /* of the uncompressed tar */
} PmLayerStats;

int pm_oci_layer_unpack(const PmOciImage *img, const PmOciLayer *layer, int destfd, bool allow_devices,
                        PmLayerStats *ret_stats, char **ret_error);
