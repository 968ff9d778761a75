#include "view.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "util.h"

#define READY_FILE "ready" /* made last: the view is complete */
#define BLANK_FILE "blank" /* a mode 0 file, bound over a socket to cover it */
#define HIDDEN_OPTS "mode=000,size=4k,nr_inodes=2"
#define DEV_OPTS "mode=0755,size=64k,nr_inodes=64"

/* What ProtectKernelTunables= makes read-only, and /sys whole (with the
 * cgroup tree below it). Paths the kernel lacks are passed over. */
static const char *const kernel_paths[] = {
        "/proc/sys",  "/proc/sysrq-trigger", "/proc/acpi", "/proc/apm",           "/proc/asound",
        "/proc/bus",  "/proc/fs",            "/proc/irq",  "/proc/latency_stats", "/proc/mtrr",
        "/proc/scsi", "/proc/timer_stats",   "/sys",
};
/* Where units and their drop-ins live: an app that wrote one could have
 * systemd run it with more than its own rights. */
static const char *const unit_paths[] = { "/run/systemd", "/etc/systemd" };
/* What PrivateDevices= leaves in /dev. */
static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
static const char *const dev_dirs[] = { "pts", "shm", "mqueue" };
static const char *const dev_links[][2] = {
        { "ptmx", "pts/ptmx" },          { "fd", "/proc/self/fd" },        { "stdin", "/proc/self/fd/0" },
        { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" }, { "log", "/run/systemd/journal/dev-log" },
};

static int fail(const char *what, const char *path) {
        int r = -errno;
        pm_log_error("app view: %s %s: %s", what, path, strerror(errno));
        return r;
}

/* root + path, bounded. */
static int in_root(const char *root, const char *path, char buf[static PATH_MAX]) {
        int n = snprintf(buf, PATH_MAX, "%s%s", root, path);
        return n > 0 && n < PATH_MAX ? 0 : -ENAMETOOLONG;
}

static bool is_kind(const char *path, mode_t kind) {
        struct stat st;
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static bool is_mount_root(const char *path) {
        struct statx stx;
        return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 &&
               (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static int cover_dir(const char *root, const char *path) {
        char p[PATH_MAX];
        if (in_root(root, path, p) < 0 || !is_kind(p, S_IFDIR))
                return 0;
        if (mount("pm-hidden", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, HIDDEN_OPTS) < 0)
                return fail("covering", p);
        return 0;
}

static int cover_file(const char *root, const char *path, const char *blank) {
        char p[PATH_MAX];
        if (in_root(root, path, p) < 0 || !exists(p) || is_kind(p, S_IFDIR) || is_kind(p, S_IFLNK))
                return 0;
        if (mount(blank, p, NULL, MS_BIND, NULL) < 0)
                return fail("covering", p);
        return 0;
}

/* Read-only with everything below it. A path that is no mount of its own
 * is bound onto itself first; one that is keeps its mounts, not copies. */
static int make_read_only(const char *root, const char *path) {
        char p[PATH_MAX];
        if (in_root(root, path, p) < 0 || !exists(p) || is_kind(p, S_IFLNK))
                return 0;
        if (!is_mount_root(p) && mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
                return fail("binding", p);
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (mount_setattr(AT_FDCWD, p, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &attr, sizeof(attr)) < 0)
                return fail("making read-only", p);
        return 0;
}

/* The pod's /dev/<name> and the new /dev's, bounded. */
static int dev_pair(const char *dev, const char *name, char src[static PATH_MAX], char dst[static PATH_MAX]) {
        int n = snprintf(src, PATH_MAX, "/dev/%s", name);
        int m = snprintf(dst, PATH_MAX, "%s/%s", dev, name);
        return n > 0 && n < PATH_MAX && m > 0 && m < PATH_MAX ? 0 : -ENAMETOOLONG;
}

/* A device node like the pod's own; bound from it where mknod is refused. */
static int add_dev_node(const char *dev, const char *name) {
        char src[PATH_MAX], dst[PATH_MAX];
        struct stat st;
        if (dev_pair(dev, name, src, dst) < 0)
                return -ENAMETOOLONG;
        if (stat(src, &st) < 0 || !S_ISCHR(st.st_mode))
                return 0;
        if (mknod(dst, S_IFCHR | (st.st_mode & 07777), st.st_rdev) == 0)
                return 0;
        if (mknod(dst, S_IFREG | 0666, 0) < 0)
                return fail("making", dst);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                return fail("binding", dst);
        return 0;
}

static int add_dev_dir(const char *dev, const char *name) {
        char src[PATH_MAX], dst[PATH_MAX];
        if (dev_pair(dev, name, src, dst) < 0)
                return -ENAMETOOLONG;
        if (!is_kind(src, S_IFDIR))
                return 0;
        if (mkdir(dst, 0755) < 0)
                return fail("making", dst);
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return fail("binding", dst);
        return 0;
}

static int add_dev_links(const char *dev) {
        _cleanup_close_ int fd = open(dev, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return fail("opening", dev);
        for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
                if (symlinkat(dev_links[i][1], fd, dev_links[i][0]) < 0)
                        return fail("linking in", dev);
        return 0;
}

/* A read-only tmpfs with the pseudo devices of the pod's /dev: no disk, no
 * tun, nothing an app without CAP_MKNOD could add to. Built in the holder,
 * then moved into place. */
static int make_dev(const char *dir, const char *root) {
        char dev[PATH_MAX], target[PATH_MAX];
        if (in_root(dir, "/dev", dev) < 0 || in_root(root, "/dev", target) < 0)
                return -ENAMETOOLONG;
        if (mkdir(dev, 0755) < 0)
                return fail("making", dev);
        if (mount("pm-dev", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, DEV_OPTS) < 0)
                return fail("mounting", dev);
        int r = 0;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dev_nodes); i++)
                r = add_dev_node(dev, dev_nodes[i]);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dev_dirs); i++)
                r = add_dev_dir(dev, dev_dirs[i]);
        if (r >= 0)
                r = add_dev_links(dev);
        if (r < 0)
                return r;
        if (mount(NULL, dev, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                return fail("making read-only", dev);
        if (mount(dev, target, NULL, MS_MOVE, NULL) < 0)
                return fail("moving /dev to", target);
        return 0;
}

/* A private tmpfs to hold the view, so that binding the root below it does
 * not propagate back into the root itself. */
static int make_holder(const char *dir, char blank[static PATH_MAX]) {
        int r = pm_mkdir_p(dir, 0700);
        if (r < 0) {
                errno = -r;
                return fail("making", dir);
        }
        if (mount("pm-view", dir, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0700,size=128k,nr_inodes=128") < 0)
                return fail("mounting", dir);
        if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) < 0)
                return fail("making private", dir);
        snprintf(blank, PATH_MAX, "%s/" BLANK_FILE, dir);
        if (mknod(blank, S_IFREG | 0000, 0) < 0)
                return fail("making", blank);
        return 0;
}

/* Whether path is a directory with nothing in it (or no directory). */
static bool is_empty_dir(const char *path) {
        DIR *d = opendir(path);
        if (!d)
                return true;
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)))
                empty = streq(de->d_name, ".") || streq(de->d_name, "..");
        closedir(d);
        return empty;
}

#define MOUNTS_BELOW_MAX 64

/* The mount points listed at or below path, in mountinfo's order (parents
 * before children). Mount points with bytes mountinfo escapes are never
 * ours to take. */
static size_t mounts_below(const char *path, char (*points)[PATH_MAX], size_t max) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return 0;
        char line[2 * PATH_MAX];
        size_t n = strlen(path), count = 0;
        while (count < max && fgets(line, sizeof(line), f))
                if (sscanf(line, "%*s %*s %*s %*s %4095s", points[count]) == 1 &&
                    strncmp(points[count], path, n) == 0 && (points[count][n] == '\0' || points[count][n] == '/'))
                        count++;
        fclose(f);
        return count;
}

/* Takes the mounts at and below path away in the view (copies: the pod
 * keeps its own), children first; covers what is left if that is not an
 * empty directory. */
static int hide(const char *root, const char *path) {
        char p[PATH_MAX];
        if (in_root(root, path, p) < 0)
                return -ENAMETOOLONG;
        static char points[MOUNTS_BELOW_MAX][PATH_MAX];
        /* Again while it helps: a mount shadowed by another shows once that
         * one is gone. */
        for (bool progress = true; progress;) {
                progress = false;
                for (size_t i = mounts_below(p, points, MOUNTS_BELOW_MAX); i > 0; i--) {
                        if (umount2(points[i - 1], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                                progress = true;
                        else if (errno != EINVAL && errno != ENOENT)
                                return fail("unmounting", points[i - 1]);
                }
        }
        if (is_kind(p, S_IFDIR) && !is_empty_dir(p))
                return cover_dir(root, path);
        return 0;
}

/* The pod's root, bound whole, then made private, so that nothing done here
 * shows in the pod and the view's mounts stay as few as made here. */
static int bind_pod_root(const char *root) {
        if (mkdir(root, 0755) < 0)
                return fail("making", root);
        if (mount("/", root, NULL, MS_BIND | MS_REC, NULL) < 0)
                return fail("binding / to", root);
        if (mount(NULL, root, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
                return fail("making private", root);
        return 0;
}

/* What apps need not see of the pod's mounts: its /dev (replaced), the
 * container manager's /run/host, the agent's binary. Fewer mounts in the
 * pod make every mount namespace systemd builds there cheaper. */
static const char *const pruned[] = { "/dev", "/run/host", PM_POD_AGENT_BINARY };

static int cover_and_protect(const PmViewPaths *p, const char *blank) {
        const char *root = p->root, *hidden[] = { p->control_dir, p->state_dir, p->dir };
        int r = 0;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(pruned); i++)
                r = hide(root, pruned[i]);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(hidden); i++)
                r = hide(root, hidden[i]);
        if (r >= 0)
                r = make_dev(p->dir, root);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(unit_paths); i++)
                r = make_read_only(root, unit_paths[i]);
        /* After /run/systemd is bound: the cover is not copied. */
        if (r >= 0)
                r = cover_file(root, "/run/systemd/private", blank);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(kernel_paths); i++)
                r = make_read_only(root, kernel_paths[i]);
        return r;
}

static void take_away(const char *dir) {
        /* Detached, so a busy half-made view cannot hold the agent up. */
        if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                pm_log_warning("app view: cannot take %s away: %s", dir, strerror(errno));
}

int pm_view_ensure(const PmViewPaths *p) {
        char ready[PATH_MAX], blank[PATH_MAX];
        snprintf(ready, sizeof(ready), "%s/" READY_FILE, p->dir);
        if (access(ready, F_OK) == 0)
                return 0;
        take_away(p->dir);
        int r = make_holder(p->dir, blank);
        if (r >= 0)
                r = bind_pod_root(p->root);
        if (r >= 0)
                r = cover_and_protect(p, blank);
        if (r >= 0 && mknod(ready, S_IFREG | 0600, 0) < 0)
                r = fail("making", ready);
        if (r < 0)
                take_away(p->dir);
        return r;
}
