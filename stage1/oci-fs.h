/* File system steps that never leave a given root: every path below a
 * root fd is resolved by the kernel with RESOLVE_IN_ROOT, so "..", absolute
 * symlinks and symlinks that climb out all stay inside that root. Used to
 * unpack image layers and to place app rootfses in a pod's root, both of
 * which hold directories written by someone else. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A relative path made of normal components: no "..", not absolute, no
 * empty or "." parts after the leading "./" and trailing "/" are dropped.
 * The clean form is written into ret (size bytes; "" for the root
 * itself). -EINVAL naming nothing: the caller names the entry. */
int pm_fs_path_clean(const char *path, char *ret, size_t size);

/* openat2(rootfd, rel, flags | O_CLOEXEC) with RESOLVE_IN_ROOT (and no
 * magic links, no mount crossing): the fd, or a negative errno. */
int pm_fs_open_in_root(int rootfd, const char *rel, int flags);

/* Opens the directory rel (clean, "" = the root) below rootfd with
 * RESOLVE_IN_ROOT, for *at() calls. When mkdir_mode is not 0, missing
 * directories are created with that mode, one component at a time. */
int pm_fs_open_dir(int rootfd, const char *rel, mode_t mkdir_mode, int *ret_fd);

/* rel split at its last '/': the directory (opened as above) and the
 * name, which points into rel. rel must not be "". */
int pm_fs_open_parent(int rootfd, const char *rel, mode_t mkdir_mode, int *ret_fd, const char **ret_name);


/* Owner, mode (after the owner, which clears set-id bits) and times of
 * name below dirfd, not following a symlink. Symlinks get no mode. */
int pm_fs_set_meta(int dirfd, const char *name, const struct stat *st);

/* A temp name "PREFIX.tmp-XXXXXXXXXXXXXXXX" (random) in ret. */
int pm_fs_tmp_name(const char *prefix, char *ret, size_t size);
