/* The node's layer cache: every layer unpacked once, keyed by its diff_id
 * (the digest of its uncompressed tar, which the image config pins).
 *
 *   $PM_CACHE_ROOT (default PM_NODE_CACHE_DIR), mode 0700
 *       .lock                 flock: shared while preparing, exclusive to prune
 *       tmp/                  scratch copies of layout tars
 *       layers/<hex>/tree/    the unpacked layer, whiteouts in overlayfs form
 *       layers/<hex>/devices  present if the layer holds device nodes
 *       layers/<hex>/info.json  {"diff_id", "size", "entries", "created"};
 *                             its mtime is the entry's last use
 *       layers/<name>.tmp-*   an unpacking in progress (or a dead one)
 *
 * An entry appears by rename(), after both the blob digest and the
 * diff_id matched, so a failed or lying layer never leaves one behind. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "oci-image.h"

#define PM_NODE_CACHE_DIR "/var/lib/podmutator/cache"

typedef struct PmCache {
        char *root;
        int fd;
        int lock_fd;
        int layers_fd;
} PmCache;

typedef struct PmCacheEntry {
        char diff_id[PM_SHA256_HEX_SIZE];
        uint64_t size; /* uncompressed tar bytes */
        uint64_t entries;
        int64_t last_used_ns;
} PmCacheEntry;

/* Opens (creates) the cache and takes its lock, shared or exclusive. */
int pm_cache_open(bool exclusive, PmCache **ret, char **ret_error);
PmCache *pm_cache_free(PmCache *c);
static inline void pm_cache_freep(PmCache **c) { pm_cache_free(*c); }

/* The tree of a layer, as a directory fd: from the cache (*ret_hit), or
 * unpacked into it now. */
int pm_cache_layer(PmCache *c, const PmOciImage *img, const PmOciLayer *layer, bool allow_devices, int *ret_fd,
                   bool *ret_hit, char **ret_error);

/* The entries, sorted by diff_id. */
int pm_cache_list(PmCache *c, PmCacheEntry **ret, size_t *ret_n, char **ret_error);
/* Removes one entry (its hex diff_id), and leftovers of unpackings. The
 * caller holds the lock exclusively. */
int pm_cache_remove(PmCache *c, const char *diff_id, char **ret_error);
int pm_cache_remove_leftovers(PmCache *c, char **ret_error);
