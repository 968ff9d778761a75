#include "oci-overlay.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "errmsg.h"
#include "oci-fs.h"
#include "util.h"

/* A read-only detached clone of the tree at fd. */
static int readonly_clone(int fd) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        int m;

        m = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (m < 0)
                return -errno;
        if (mount_setattr(m, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
                int r = -errno;
                close(m);
                return r;
        }
        return m;
}

static int set_fd_path(int fsfd, const char *key, int fd) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        return fsconfig(fsfd, FSCONFIG_SET_STRING, key, path, 0) < 0 ? -errno : 0;
}

/* The overlay as a detached mount. */
int pm_overlay_make(const int *layer_fds, size_t n, int upper_fd, int work_fd, bool allow_devices, int *ret_fd,
                    char **ret_error) {
        _cleanup_close_ int fsfd = -1;
        _cleanup_free_ int *clones = NULL;
        int r = 0, m;

        clones = calloc(n ?: 1, sizeof(int));
        if (!clones)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                clones[i] = -1;
        fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fsfd < 0) {
                r = pm_errorf(ret_error, -errno, "cannot create an overlay file system: %m");
                goto out;
        }
        /* "lowerdir+" stacks downwards: the top layer first */
        for (size_t i = n; i-- > 0 && r >= 0;) {
                clones[i] = readonly_clone(layer_fds[i]);
                r = clones[i] < 0 ? clones[i] : set_fd_path(fsfd, "lowerdir+", clones[i]);
        }
        if (r >= 0)
                r = set_fd_path(fsfd, "upperdir", upper_fd);
        if (r >= 0)
                r = set_fd_path(fsfd, "workdir", work_fd);
        if (r >= 0 && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                r = -errno;
        if (r < 0) {
                pm_errorf(ret_error, r, "cannot set up the overlay of %zu layers: %m", n);
                goto out;
        }
        m = fsmount(fsfd, FSMOUNT_CLOEXEC, allow_devices ? 0 : MOUNT_ATTR_NODEV);
        if (m < 0) {
                r = pm_errorf(ret_error, -errno, "cannot mount the overlay of %zu layers: %m", n);
                goto out;
        }
        *ret_fd = m;
out:
        for (size_t i = 0; i < n; i++)
                closep(&clones[i]);
        return r;
}

/* In a child: join the pod's mount namespace, attach the mount there.
 * Returns the child's errno as a negative number. */
typedef struct Attach {
        int leader_pidfd, mnt_fd;
        const char *target;
        int error; /* the child's errno, 0 when it worked */
} Attach;

/* Runs in a child that shares our memory (and so copies no page table):
 * joins the pod's mount namespace, which a thread of ours may not, and
 * moves the mount to the target resolved inside the pod's root. */
static int attach_child(void *userdata) {
        Attach *a = userdata;
        int root, dir;

        if (setns(a->leader_pidfd, CLONE_NEWNS) < 0)
                return a->error = errno, 1;
        /* setns() moved our root to the pod's; resolve inside it */
        root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return a->error = errno, 1;
        dir = pm_fs_open_in_root(root, a->target + 1, O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (dir < 0)
                return a->error = -dir, 1;
        if (move_mount(a->mnt_fd, "", dir, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return a->error = errno, 1;
        return 0;
}

static int attach_in_pod(int leader_pidfd, int mnt_fd, const char *target) {
        static char stack[64 * 1024] __attribute__((aligned(16)));
        Attach a = { .leader_pidfd = leader_pidfd, .mnt_fd = mnt_fd, .target = target, .error = EIO };
        int status;
        pid_t pid;

        /* CLONE_VFORK: we wait until it is done with our memory. Not
         * CLONE_FS: setns(CLONE_NEWNS) wants a file system context of its
         * own. */
        pid = clone(attach_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        if (pid < 0)
                return -errno;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status))
                return -ECHILD;
        return WEXITSTATUS(status) == 0 ? 0 : -a.error;
}

int pm_overlay_attach(int leader_pidfd, int mnt_fd, const char *target, char **ret_error) {
        int r;

        r = attach_in_pod(leader_pidfd, mnt_fd, target);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot mount the app's overlay at %s in the pod: %m", target);
        return 0;
}
