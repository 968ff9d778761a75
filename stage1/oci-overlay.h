/* An app's rootfs as an overlay mount inside the pod: the cached layer
 * trees as read-only lower layers, the app's own upper and work directories
 * beside its rootfs in the pod's root. Nothing is copied, so a warm prepare
 * costs a few system calls whatever the image's size, and the app's writes
 * land in its upper directory, never in the shared cache.
 *
 * The mount is built on the node with the new mount API (open_tree clones of
 * the layer trees, made read-only; fsopen/fsconfig/fsmount of the overlay,
 * which takes them as /proc/self/fd paths) and attached by a child that has
 * joined the pod's mount namespace (setns on the pod's PID 1 pidfd), at the
 * target resolved inside the pod's root. It lives as long as the pod's mount
 * namespace or its mountpoint: removing the app directory on the node
 * detaches it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The overlay of layer_fds[0..n) (directory fds of the layer trees, lowest
 * first) with upper_fd and work_fd (empty directories on one file system),
 * as a detached mount: its fd is the overlay's root directory, to read the
 * result with before it is attached. Device nodes work in it only with
 * allow_devices (nodev otherwise). */
int pm_overlay_make(const int *layer_fds, size_t n, int upper_fd, int work_fd, bool allow_devices, int *ret_fd,
                    char **ret_error);

/* Attaches the detached mount mnt_fd at target (a directory as the pod
 * sees it, resolved inside the pod's root) in the mount namespace of the
 * pod's PID 1 (leader_pidfd). */
int pm_overlay_attach(int leader_pidfd, int mnt_fd, const char *target, char **ret_error);
