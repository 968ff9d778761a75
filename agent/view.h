/* The app view: one prepared copy of the pod's root for unprivileged apps.
 *
 * systemd builds a mount namespace at every start of a unit that hides
 * paths or protects system directories, and on systemd 252 that costs
 * 20-40 ms a start (it re-reads the mount table after each of its dozens of
 * mount operations). The view is that work done once, by the agent at its
 * first start: a recursive bind of the pod's root, made private (nothing
 * done in it shows in the pod, nor what the pod mounts later in it), less
 * the pod's /dev and the container manager's mounts, in which
 * the agent's directories and systemd's private socket are covered, the
 * unit directories, the kernel's tunables, /sys and the cgroup tree are
 * read-only, and /dev holds the pseudo devices only. It lives in the pod's
 * own namespace, so an app's /proc/self/mountinfo shows its mounts.
 *
 * Unprivileged apps in the pod's root are chrooted into it (RootDirectory=
 * with MountAPIVFS=no: systemd makes no namespace for them). Their bounding
 * set has neither CAP_SYS_CHROOT nor CAP_SYS_ADMIN, and a chrooted process
 * may not make a user namespace, so none can step out of it. */
#pragma once

#include <stddef.h>

typedef struct PmViewPaths {
        const char *dir;         /* the view's own tmpfs */
        const char *root;        /* the root apps see, a directory in dir */
        const char *control_dir; /* covered in the view */
        const char *state_dir;   /* covered in the view */
} PmViewPaths;

/* Makes the view below p->dir unless a complete one is there (an agent
 * restart); a half-made one is taken away first. Blocking: start-up only.
 * Returns 0, or a negative errno after logging what failed. */
int pm_view_ensure(const PmViewPaths *p);
