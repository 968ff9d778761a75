#include "nspawn.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "errmsg.h"
#include "paths.h"
#include "proc.h"
#include "util.h"

extern char **environ;

#define NSPAWN_BINARY "systemd-nspawn"
/* systemd-nspawn's own bookkeeping on the node (systemd 252) */
#define NSPAWN_PROPAGATE_DIR "/run/systemd/nspawn/propagate"
#define NSPAWN_LOCKS_DIR "/run/systemd/nspawn/locks"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* How long the intermediate process and the exec may take: they do not
 * wait for anything, so this only guards against the impossible. */
#define SPAWN_TIMEOUT_MS 10000

/* What the intermediate and the grandchild report through the pipe. */
typedef struct SpawnReport {
        int kind;
        int value;
} SpawnReport;

enum {
        REPORT_PID,   /* value: nspawn's PID */
        REPORT_ERRNO, /* value: errno of setsid/fork/exec */
};

static uint32_t fnv1a(const char *s) {
        uint32_t h = 2166136261u;

        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 16777619u;
        return h;
}

void pm_nspawn_machine_name(const char *name, char *buf) {
        size_t n = strlen(name);

        if (strlen("pm-") + n <= PM_MACHINE_NAME_MAX) {
                snprintf(buf, PM_MACHINE_NAME_MAX + 1, "pm-%s", name);
                return;
        }
        /* "pm-" + prefix + "-" + 8 hex = 64; the prefix must not end in '-'
         * to keep the name readable (it is valid either way) */
        size_t keep = PM_MACHINE_NAME_MAX - strlen("pm-") - 1 - 8;
        while (keep > 1 && name[keep - 1] == '-')
                keep--;
        snprintf(buf, PM_MACHINE_NAME_MAX + 1, "pm-%.*s-%08x", (int) keep, name, fnv1a(name));
}

int pm_nspawn_directory_arg(const char *root_dir, char **ret) {
        if (asprintf(ret, "--directory=%s", root_dir) < 0)
                return -ENOMEM;
        return 0;
}

void pm_nspawn_forget(const char *root_dir, const char *machine) {
        _cleanup_free_ char *propagate = NULL, *lock = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (asprintf(&propagate, NSPAWN_PROPAGATE_DIR "/%s", machine) >= 0)
                (void) rmdir(propagate);

        if (stat(root_dir, &st) < 0)
                return;
        if (asprintf(&lock, NSPAWN_LOCKS_DIR "/inode-%lu:%lu", (unsigned long) st.st_dev,
                     (unsigned long) st.st_ino) < 0)
                return;
        fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return;
        /* held by nobody: no nspawn uses it */
        if (flock(fd, LOCK_EX | LOCK_NB) >= 0)
                (void) unlink(lock);
}

static int strv_push(char ***v, size_t *n, char *s) {
        char **m;

        if (!s)
                return -ENOMEM;
        m = reallocarray(*v, *n + 2, sizeof(char *));
        if (!m) {
                free(s);
                return -ENOMEM;
        }
        m[(*n)++] = s;
        m[*n] = NULL;
        *v = m;
        return 0;
}

static int strv_pushf(char ***v, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int strv_pushf(char ***v, size_t *n, const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return strv_push(v, n, k < 0 ? NULL : s);
}

static int build_argv(const PmNspawnConfig *c, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        size_t n = 0;
        int r;

        /* --console=read-only: a pty for /dev/console whose output nspawn
         * copies to its stdout. With =pipe the pod would have no
         * /dev/console and systemd's and the agent's messages would be lost.
         * SYSTEMD_COLORS=0 keeps escape codes out of the log. */
        const char *fixed[] = {
                NSPAWN_BINARY,
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--link-journal=no",
                "--console=read-only",
                "--setenv=SYSTEMD_COLORS=0",
                "--bind-ro=/usr",
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
                r = strv_push(&argv, &n, strdup(fixed[i]));
                if (r < 0)
                        return r;
        }

        if ((r = strv_pushf(&argv, &n, "--directory=%s", c->root_dir)) < 0 ||
            (r = strv_pushf(&argv, &n, "--machine=%s", c->machine)) < 0 ||
            (r = strv_pushf(&argv, &n, "--hostname=%s", c->hostname)) < 0 ||
            (r = strv_pushf(&argv, &n, "--bind=%s:" PM_POD_CONTROL_DIR, c->run_dir)) < 0 ||
            (r = strv_pushf(&argv, &n, "--bind-ro=%s:" PM_POD_AGENT_BINARY, c->agent_path)) < 0 ||
            (r = strv_push(&argv, &n, strdup("--boot"))) < 0 ||
            (r = strv_push(&argv, &n, strdup("--"))) < 0 ||
            (r = strv_push(&argv, &n, strdup("systemd.unit=" PM_POD_TARGET))) < 0)
                return r;

        *ret = TAKE_PTR(argv);
        return 0;
}

static int build_env(char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        const char *path = getenv("PATH");
        size_t n = 0;
        int r;

        r = strv_pushf(&env, &n, "PATH=%s", isempty(path) ? DEFAULT_PATH : path);
        if (r < 0)
                return r;
        for (char **e = environ; e && *e; e++) {
                if (!startswith(*e, "SYSTEMD_NSPAWN_") && !startswith(*e, "SYSTEMD_LOG_"))
                        continue;
                r = strv_push(&env, &n, strdup(*e));
                if (r < 0)
                        return r;
        }
        /* The pod's systemd learns that a unit's processes are all gone
         * from cgroup2 notifications; on a legacy hierarchy inside a
         * container it may never learn it, and a stop hangs. So the pod
         * gets cgroup2 whenever the node has it, unless the user chose. */
        if (!getenv("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY") && pm_cgroup_mode() != PM_CGROUP_LEGACY) {
                r = strv_push(&env, &n, strdup("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1"));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static void report(int fd, int kind, int value) {
        SpawnReport m = { .kind = kind, .value = value };

        /* a pipe write this small is atomic; nothing to do if it fails */
        (void) !write(fd, &m, sizeof(m));
}

/* In the grandchild: become systemd-nspawn. Returns only on failure. */
static void exec_nspawn(const PmNspawnConfig *config, int report_fd, int null_fd, int console_fd, char **argv,
                        char **envp) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* our signal mask (signalfd) and ignored signals would be inherited
         * across exec */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);

        if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(console_fd, STDOUT_FILENO) < 0 ||
            dup2(console_fd, STDERR_FILENO) < 0) {
                report(report_fd, REPORT_ERRNO, errno);
                return;
        }
        /* everything else we hold is O_CLOEXEC already; make sure of it for
         * fds a library might have opened without it */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
                report(report_fd, REPORT_ERRNO, errno);
                return;
        }
        if (chdir("/") < 0) {
                report(report_fd, REPORT_ERRNO, errno);
                return;
        }
        pm_cgroup_enter_own(config->name, config->cgroup_record);
        execvpe(argv[0], argv, envp);
        report(report_fd, REPORT_ERRNO, errno);
}

static int read_report(int fd, int64_t deadline, SpawnReport *ret) {
        size_t got = 0;

        while (got < sizeof(*ret)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = pm_ms_until(deadline);
                ssize_t k;
                int n;

                n = poll(&p, 1, (int) (left > INT_MAX ? INT_MAX : left));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                k = read(fd, (char *) ret + got, sizeof(*ret) - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return got == 0 ? 0 : -EBADMSG;
                got += (size_t) k;
        }
        return 1;
}

int pm_nspawn_spawn(const PmNspawnConfig *c, pid_t *ret_pid, int *ret_pidfd, char **ret_error) {
        _cleanup_strv_free_ char **argv = NULL, **envp = NULL;
        _cleanup_close_ int null_fd = -1, console_fd = -1, pidfd = -1;
        int64_t deadline;
        int pipefd[2], r, status;
        pid_t middle, pid = 0;

        /* nspawn splits --bind= at ':' */
        if (strchr(c->run_dir, ':') || strchr(c->agent_path, ':'))
                return pm_errorf(ret_error, -EINVAL, "paths bound into the pod must not contain ':' (%s, %s)",
                                 c->run_dir, c->agent_path);

        r = build_argv(c, &argv);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot build the systemd-nspawn command line: %m");
        r = build_env(&envp);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot build the systemd-nspawn environment: %m");

        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (null_fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open /dev/null: %m");
        console_fd = open(c->console_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0640);
        if (console_fd < 0)
                return pm_errorf(ret_error, -errno, "cannot open %s: %m", c->console_path);

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return pm_errorf(ret_error, -errno, "cannot create a pipe: %m");

        middle = fork();
        if (middle < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return pm_errorf(ret_error, r, "cannot fork: %m");
        }
        if (middle == 0) {
                pid_t grandchild;

                close(pipefd[0]);
                if (setsid() < 0) {
                        report(pipefd[1], REPORT_ERRNO, errno);
                        _exit(EXIT_FAILURE);
                }
                grandchild = fork();
                if (grandchild < 0) {
                        report(pipefd[1], REPORT_ERRNO, errno);
                        _exit(EXIT_FAILURE);
                }
                if (grandchild == 0) {
                        exec_nspawn(c, pipefd[1], null_fd, console_fd, argv, envp);
                        _exit(127);
                }
                report(pipefd[1], REPORT_PID, (int) grandchild);
                _exit(EXIT_SUCCESS);
        }

        close(pipefd[1]);
        _cleanup_close_ int report_fd = pipefd[0];

        /* The intermediate exits at once; reap it so it leaves no zombie. */
        while (waitpid(middle, &status, 0) < 0)
                if (errno != EINTR)
                        break;

        /* Reports arrive in order: the PID from the intermediate, then at
         * most an errno from the grandchild. End of file once the grandchild
         * has exec'ed (the pipe is O_CLOEXEC) or died. */
        deadline = pm_now_monotonic_ns() + SPAWN_TIMEOUT_MS * 1000000LL;
        for (;;) {
                SpawnReport m;

                r = read_report(report_fd, deadline, &m);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot start " NSPAWN_BINARY ": %m");
                if (r == 0)
                        break;
                if (m.kind == REPORT_PID) {
                        pid = (pid_t) m.value;
                        /* Open it now: as our child (we are a subreaper) or
                         * as a process we hold, its PID cannot be reused. */
                        pidfd = pm_pidfd_open(pid);
                        continue;
                }
                /* the grandchild _exit()s right after its report: reap it */
                if (pid > 0)
                        (void) waitpid(pid, NULL, 0);
                if (m.value == ENOENT)
                        return pm_errorf(ret_error, -ENOENT,
                                         NSPAWN_BINARY " not found in $PATH; install systemd-container");
                return pm_errorf(ret_error, -m.value, "cannot start " NSPAWN_BINARY ": %m");
        }

        if (pid <= 0)
                return pm_errorf(ret_error, -ECHILD, "cannot start " NSPAWN_BINARY ": no process");
        if (pidfd < 0)
                return pm_errorf(ret_error, pidfd, "cannot watch " NSPAWN_BINARY " (pid %d): %m", (int) pid);

        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        return 0;
}
