#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util.h"

static bool is_cgroup_v1(const char *path) {
        struct statfs fs;
        return statfs(path, &fs) >= 0 && fs.f_type == CGROUP_SUPER_MAGIC;
}

/* Our path in a hierarchy, from /proc/self/cgroup: the line whose
 * controller field is `controllers` ("" for cgroup2, "name=systemd"). */
static bool own_path(const char *controllers, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[PATH_MAX + 64];
        while (f && fgets(line, sizeof(line), f)) {
                char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                *b = '\0';
                if (!streq(a + 1, controllers))
                        continue;
                b[strcspn(b + 1, "\n") + 1] = '\0';
                return snprintf(buf, size, "%s", b + 1) < (int) size;
        }
        return false;
}

static void enter(const char *mount, const char *controllers, const char *name, FILE *record) {
        char own[PATH_MAX], dir[PATH_MAX], procs[PATH_MAX + 16];
        if (!own_path(controllers, own, sizeof(own)) ||
            snprintf(dir, sizeof(dir), "%s%s/pm-%s", mount, streq(own, "/") ? "" : own, name) >= (int) sizeof(dir))
                return;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return;
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        if (write(fd, "0", 1) == 1 && record)
                fprintf(record, "%s\n", dir);
        close(fd);
}

void pm_cgroup_enter_own(const char *name, const char *record_path) {
        _cleanup_fclose_ FILE *record = fopen(record_path, "we");
        PmCgroupMode mode = pm_cgroup_mode();
        if (mode == PM_CGROUP_UNIFIED)
                enter("/sys/fs/cgroup", "", name, record);
        else {
                if (mode == PM_CGROUP_HYBRID)
                        enter("/sys/fs/cgroup/unified", "", name, record);
                if (is_cgroup_v1("/sys/fs/cgroup/systemd"))
                        enter("/sys/fs/cgroup/systemd", "name=systemd", name, record);
        }
}

/* rmdir of a cgroup tree, leaves first; cgroupfs has no files to delete. */
static void remove_tree(const char *dir, unsigned depth) {
        DIR *d = depth < 32 ? opendir(dir) : NULL;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char sub[PATH_MAX];
                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) < (int) sizeof(sub))
                        remove_tree(sub, depth + 1);
        }
        if (d)
                closedir(d);
        (void) rmdir(dir);
}

void pm_cgroup_remove_recorded(const char *record_path) {
        _cleanup_fclose_ FILE *f = fopen(record_path, "re");
        char line[PATH_MAX];
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                /* Only what we made: a directory named pm-* in a cgroup fs. */
                const char *base = strrchr(line, '/');
                if (base && startswith(base + 1, "pm-") && startswith(line, "/sys/fs/cgroup/"))
                        remove_tree(line, 0);
        }
}
