/* An app's rootfs from unpacked layers, and what the image's own files say
 * about its user.
 *
 * Layers (trees in overlayfs form, oci-unpack.h) are stacked by copying
 * each, lowest first, into the destination: an opaque directory first
 * empties its counterpart, a whiteout removes what is there, a directory
 * merges with one already there, anything else replaces what is there.
 * This is the copy mode of prepare (--copy); the default is an overlay
 * mount (oci-overlay.h). Regular files are copied (copy_file_range: a reflink where the
 * file system shares extents, an in-kernel copy elsewhere), never hard
 * linked to the source: the app may write its files, and the source is the
 * shared layer cache. Hard links inside one layer stay hard links. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stacks the layer trees layer_fds[0..n) (lowest first) into destfd.
 * names[i] names layer i in messages. Device nodes are refused unless
 * allow_devices. */
int pm_rootfs_compose(const int *layer_fds, char *const *names, size_t n, int destfd, bool allow_devices,
                      char **ret_error);

/* Looks name up in the text of a passwd (or, with want_gid false for the
 * third field, group) file: uid and gid of a passwd entry, gid of a group
 * entry in *ret_id (and *ret_gid for passwd). -ENOENT if absent. */
int pm_passwd_lookup(const char *text, const char *name, uint32_t *ret_uid, uint32_t *ret_gid);
int pm_group_lookup(const char *text, const char *name, uint32_t *ret_gid);

/* An image config's User ("", "name", "uid", "name:group", "uid:gid", ...)
 * as numeric "uid" and "gid" strings, names resolved through the rootfs's
 * own /etc/passwd and /etc/group. Empty user: "" and "" (root). A uid
 * that has no passwd entry gets gid 0. */
int pm_rootfs_resolve_user(int rootfd, const char *user, char **ret_uid, char **ret_gid, char **ret_error);
