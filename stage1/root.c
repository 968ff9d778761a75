#include "root.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "paths.h"
#include "util.h"

/* The agent's watchdog: it pings at half of this (WATCHDOG_USEC). */
#define AGENT_WATCHDOG "10s"

typedef struct Dir {
        const char *path;
        mode_t mode;
} Dir;

static const Dir dirs[] = {
        { "etc", 0755 },
        { "etc/systemd", 0755 },
        { "etc/systemd/system", 0755 },
        { "etc/systemd/journald.conf.d", 0755 },
        { "usr", 0755 },  /* host /usr, bound read-only at boot */
        { "run", 0755 },
        { "tmp", 01777 },
        { "var", 0755 },
        { "var/tmp", 01777 },
        { "var/lib", 0755 },
        { "var/log", 0755 },
        { "proc", 0555 },
        { "sys", 0555 },
        { "dev", 0755 },
        { "opt", 0755 },
        { "root", 0700 },
};

/* Merged-/usr links, made for the ones the host's /usr has. */
static const char *const usr_links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char group[] = "root:x:0:\n"
                            "nogroup:x:65534:\n";
static const char nsswitch[] = "passwd: files systemd\n"
                               "group: files systemd\n"
                               "shadow: files\n"
                               "hosts: files myhostname\n";

/* The pod's log daemon speaks for every app: journald must not drop its
 * lines (a unit's LogRateLimitIntervalSec=0 only means journald's default).
 * The journal stays bounded by its size limits. */
static const char journald_conf[] = "[Journal]\n"
                                    "RateLimitIntervalSec=0\n";

static bool env_name_valid(const char *s, size_t n) {
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

int pm_unit_env_quote(const char *assignment, char **ret) {
        const char *eq = strchr(assignment, '=');
        size_t n = strlen(assignment);
        _cleanup_free_ char *out = NULL;
        char *p;

        if (!eq || !env_name_valid(assignment, (size_t) (eq - assignment)))
                return -EINVAL;
        if (!pm_utf8_valid(assignment, n))
                return -EINVAL;

        /* worst case: every byte becomes \xNN */
        out = malloc(4 * n + 3);
        if (!out)
                return -ENOMEM;
        p = out;
        *p++ = '"';
        for (const unsigned char *s = (const unsigned char *) assignment; *s; s++) {
                if (*s == '\\' || *s == '"') {
                        *p++ = '\\';
                        *p++ = (char) *s;
                } else if (*s == '%') {
                        *p++ = '%';
                        *p++ = '%';
                } else if (*s < 0x20 || *s == 0x7f) {
                        p += sprintf(p, "\\x%02x", *s);
                } else
                        *p++ = (char) *s;
        }
        *p++ = '"';
        *p = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

int pm_unit_pod_target(const char *name, char **ret) {
        char *text;

        if (!pm_dns_label_valid(name))
                return -EINVAL;
        /* No Requires=, no OnFailure=: nothing here can fail the pod. The
         * agent is wanted, not required, and restarts itself. */
        if (asprintf(&text,
                     "# Written by pm-stage1. The default target of pod %s.\n"
                     "[Unit]\n"
                     "Description=PodMutator pod %s\n"
                     "Wants=" PM_POD_AGENT_UNIT " " PM_POD_LOGD_UNIT " " PM_POD_LOGKEEP_UNIT
                     " systemd-journald.socket systemd-journald.service\n"
                     "AllowIsolate=yes\n",
                     name, name) < 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* Environment= lines for env (the sanitizer settings of a test run). */
static int env_lines(char *const *env, char **ret) {
        _cleanup_free_ char *envs = NULL;
        size_t envs_len = 0;
        FILE *f = open_memstream(&envs, &envs_len);
        if (!f)
                return -ENOMEM;
        for (char *const *e = env; e && *e; e++) {
                _cleanup_free_ char *q = NULL;
                int r = pm_unit_env_quote(*e, &q);
                if (r < 0) {
                        fclose(f);
                        return r;
                }
                fprintf(f, "Environment=%s\n", q);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(envs);
        return 0;
}

/* A daemon of the pod's own, run from the agent's binary: what the agent
 * and the log daemon share. DefaultDependencies=no: neither needs anything
 * of sysinit.target, and both must come up even when something there fails.
 * They log to the journal and to the console, which pm-stage1 shows when the
 * pod does not become ready. */
typedef struct PodDaemon {
        const char *what;        /* the header comment, after "The " */
        const char *description;
        const char *after;       /* units it starts after */
        const char *args;        /* of the agent's binary */
        const char *service;     /* its own [Service] lines */
} PodDaemon;

static int pod_daemon_service(const PodDaemon *d, const char *name, char *const *env, char **ret) {
        _cleanup_free_ char *envs = NULL;
        char *text;
        int r;

        if (!pm_dns_label_valid(name))
                return -EINVAL;
        r = env_lines(env, &envs);
        if (r < 0)
                return r;
        if (asprintf(&text,
                     "# Written by pm-stage1. The %s of pod %s.\n"
                     "[Unit]\n"
                     "Description=%s\n"
                     "DefaultDependencies=no\n"
                     "Conflicts=shutdown.target\n"
                     "Before=shutdown.target\n"
                     "After=%s\n"
                     "StartLimitIntervalSec=0\n"
                     "\n"
                     "[Service]\n"
                     "Type=notify\n"
                     "NotifyAccess=main\n"
                     "ExecStart=" PM_POD_AGENT_BINARY " %s\n"
                     "Restart=always\n"
                     "RestartSec=100ms\n"
                     "%s"
                     "TimeoutStopSec=10s\n"
                     "StandardOutput=journal+console\n"
                     "StandardError=inherit\n"
                     "%s",
                     d->what, name, d->description, d->after, d->args, d->service, strempty(envs)) < 0)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int pm_unit_agent_service(const char *name, char *const *env, char **ret) {
        _cleanup_free_ char *args = NULL;

        if (asprintf(&args, "--pod-name %s", name) < 0)
                return -ENOMEM;
        /* After the log daemon: apps' output goes there from the first
         * Inject on. */
        PodDaemon d = {
                .what = "PodMutator agent",
                .description = "PodMutator agent",
                .after = "systemd-journald.socket " PM_POD_LOGD_UNIT,
                .args = args,
                .service = "WatchdogSec=" AGENT_WATCHDOG "\n",
        };
        return pod_daemon_service(&d, name, env, ret);
}

int pm_unit_logd_service(const char *name, char *const *env, char **ret) {
        /* After the keeper, which holds the apps' open streams across a
         * restart of the daemon. */
        static const PodDaemon d = {
                .what = "log daemon (apps' stdout and stderr)",
                .description = "PodMutator log daemon",
                .after = "systemd-journald.socket " PM_POD_LOGKEEP_UNIT,
                .args = "--logd",
                .service = "LimitNOFILE=65536\n",
        };
        return pod_daemon_service(&d, name, env, ret);
}

int pm_unit_logkeep_service(const char *name, char *const *env, char **ret) {
        static const PodDaemon d = {
                .what = "log keeper (a copy of each app stream: agent/logkeep.h)",
                .description = "PodMutator log keeper",
                .after = "systemd-journald.socket",
                .args = "--logkeep",
                .service = "LimitNOFILE=65536\n",
        };
        return pod_daemon_service(&d, name, env, ret);
}

static int write_text(const char *root, const char *path, const char *text, mode_t mode, char **ret_error) {
        _cleanup_free_ char *full = NULL;
        int r;

        if (asprintf(&full, "%s/%s", root, path) < 0)
                return -ENOMEM;
        r = pm_write_file_atomic(full, text, strlen(text), mode);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot write %s: %m", full);
        return 0;
}

static int make_dirs(int rootfd, const char *root, char **ret_error) {
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (mkdirat(rootfd, dirs[i].path, dirs[i].mode) < 0 && errno != EEXIST)
                        return pm_errorf(ret_error, -errno, "cannot create %s/%s: %m", root, dirs[i].path);
                /* mkdir() honours the umask; sticky /tmp needs the exact mode */
                if (fchmodat(rootfd, dirs[i].path, dirs[i].mode, 0) < 0)
                        return pm_errorf(ret_error, -errno, "cannot chmod %s/%s: %m", root, dirs[i].path);
        }

        for (size_t i = 0; i < ELEMENTSOF(usr_links); i++) {
                char target[64], host[64];
                struct stat st;

                snprintf(host, sizeof(host), "/usr/%s", usr_links[i]);
                if (stat(host, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                snprintf(target, sizeof(target), "usr/%s", usr_links[i]);
                if (symlinkat(target, rootfd, usr_links[i]) < 0 && errno != EEXIST)
                        return pm_errorf(ret_error, -errno, "cannot link %s/%s: %m", root, usr_links[i]);
        }
        return 0;
}

static int write_etc(const char *root, const char *name, char **ret_error) {
        _cleanup_free_ char *os_release = NULL, *hosts = NULL, *hostname = NULL;
        char machine_id[16 * 2 + 2];
        int r;

        /* systemd-nspawn looks for os-release before /usr is bound, so a
         * copy must be in etc/ */
        r = pm_read_file("/usr/lib/os-release", 64 * 1024, &os_release, NULL);
        if (r == -ENOENT)
                r = pm_read_file("/etc/os-release", 64 * 1024, &os_release, NULL);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot read the host's os-release: %m");
        r = write_text(root, "etc/os-release", os_release, 0644, ret_error);
        if (r < 0)
                return r;

        /* a fresh identity per pod */
        r = pm_random_hex(machine_id, 16);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot make a machine id: %m");
        strcat(machine_id, "\n");
        r = write_text(root, "etc/machine-id", machine_id, 0444, ret_error);
        if (r < 0)
                return r;

        if (asprintf(&hostname, "%s\n", name) < 0 ||
            asprintf(&hosts, "127.0.0.1\tlocalhost %s\n::1\tlocalhost %s\n", name, name) < 0)
                return -ENOMEM;

        const struct {
                const char *path;
                const char *text;
                mode_t mode;
        } files[] = {
                { "etc/hostname", hostname, 0644 },
                { "etc/hosts", hosts, 0644 },
                { "etc/passwd", passwd, 0644 },
                { "etc/group", group, 0644 },
                { "etc/nsswitch.conf", nsswitch, 0644 },
                { "etc/systemd/journald.conf.d/podmutator.conf", journald_conf, 0644 },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                r = write_text(root, files[i].path, files[i].text, files[i].mode, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A unit of the pod's, as make returned it, into etc/systemd/system. */
static int put_unit(const char *root, const char *unit, int r, const char *text, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot make %s: %m", unit);
        if (asprintf(&path, "etc/systemd/system/%s", unit) < 0)
                return -ENOMEM;
        return write_text(root, path, text, 0644, ret_error);
}

static int write_units(int rootfd, const char *root, const char *name, char *const *env, char **ret_error) {
        static const struct {
                const char *unit;
                int (*make)(const char *name, char *const *env, char **ret);
        } daemons[] = {
                { PM_POD_AGENT_UNIT, pm_unit_agent_service },
                { PM_POD_LOGD_UNIT, pm_unit_logd_service },
                { PM_POD_LOGKEEP_UNIT, pm_unit_logkeep_service },
        };
        _cleanup_free_ char *target = NULL;
        int r = pm_unit_pod_target(name, &target);
        r = put_unit(root, PM_POD_TARGET, r, target, ret_error);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(daemons); i++) {
                _cleanup_free_ char *text = NULL;
                r = daemons[i].make(name, env, &text);
                r = put_unit(root, daemons[i].unit, r, text, ret_error);
        }
        if (r < 0)
                return r;

        /* It would wait for an answer at the console and block the boot. */
        if (symlinkat("/dev/null", rootfd, "etc/systemd/system/systemd-firstboot.service") < 0 && errno != EEXIST)
                return pm_errorf(ret_error, -errno, "cannot mask systemd-firstboot.service in %s: %m", root);
        return 0;
}

static int make_agent_mount_point(const char *root, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char *slash;
        int r;

        if (asprintf(&path, "%s" PM_POD_AGENT_BINARY, root) < 0)
                return -ENOMEM;
        slash = strrchr(path, '/');
        *slash = '\0';
        r = pm_mkdir_p(path, 0755);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot create %s: %m", path);
        *slash = '/';

        fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd < 0)
                return pm_errorf(ret_error, -errno, "cannot create %s: %m", path);
        return 0;
}

int pm_root_assemble(const PmRootConfig *config, char **ret_error) {
        _cleanup_close_ int rootfd = -1;
        int r;

        rootfd = open(config->root_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfd < 0)
                return pm_errorf(ret_error, -errno, "cannot open %s: %m", config->root_dir);

        r = make_dirs(rootfd, config->root_dir, ret_error);
        if (r < 0)
                return r;
        r = write_etc(config->root_dir, config->name, ret_error);
        if (r < 0)
                return r;
        r = write_units(rootfd, config->root_dir, config->name, config->env, ret_error);
        if (r < 0)
                return r;

        /* the mount point of the agent's binary, bound read-only at boot */
        return make_agent_mount_point(config->root_dir, ret_error);
}
