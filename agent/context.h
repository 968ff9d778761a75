/* The world a process of an app runs in, as far as the agent checks it
 * before asking systemd: the root it runs in and the command it runs. */
#pragma once

#include "manager.h"

/* A rootfs must be a directory that does not hold, or sit above, the
 * agent's control or state dir. On success *ret_resolved is its real path
 * ("" for the pod's own root). -EINVAL or -EPERM with a message otherwise. */
int pm_context_check_rootfs(Manager *m, const char *rootfs, char **ret_resolved, char **ret_error);

/* The absolute path of command `cmd` inside `rootfs` ("" = the pod's root):
 * cmd itself if absolute, else the first executable match along path
 * (a PATH value; NULL for systemd's default search path), symlinks
 * resolved inside the rootfs. */
int pm_context_find_executable(const char *rootfs, const char *cmd, const char *path, char **ret);

/* The mounts of a spec as systemd is to be given them. Each source must be
 * an existing path of the pod, its real path neither in nor above the
 * agent's control or state dir. Each target is resolved inside `rootfs`
 * (its real path, "" for the pod's root) with symlinks kept inside it; the
 * parts that do not exist yet are appended as written (systemd creates
 * them). On success *ret_sources and *ret_targets are NULL-terminated
 * arrays, one entry per mount. -EINVAL or -EPERM with a message naming the
 * mount otherwise. */
int pm_context_resolve_mounts(Manager *m, const PmAppSpec *spec, const char *rootfs, char ***ret_sources,
                              char ***ret_targets, char **ret_error);

/* With network mode "netns", the path must name a network namespace of
 * the pod. 0 otherwise; -EINVAL with a message if not. */
int pm_context_check_network(Manager *m, const PmAppSpec *spec, char **ret_error);
