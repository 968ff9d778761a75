#include "proc.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "util.h"

int64_t pm_ms_until(int64_t deadline_ns) {
        int64_t now = pm_now_monotonic_ns();

        if (now >= deadline_ns)
                return 0;
        /* round up, so that a wait never ends a hair before its deadline */
        return (deadline_ns - now + 999999) / 1000000;
}

int pm_pidfd_open(pid_t pid) {
        int fd;

        if (pid <= 0)
                return -ESRCH;
        fd = pidfd_open(pid, 0);
        if (fd < 0)
                return -errno;
        /* pidfds are O_CLOEXEC from the kernel */
        return fd;
}

int pm_pidfd_signal(int pidfd, int sig) {
        if (pidfd_send_signal(pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

int pm_pidfd_wait(int pidfd, int interrupt_fd, int64_t timeout_ms) {
        int64_t deadline = timeout_ms >= 0 ? pm_now_monotonic_ns() + timeout_ms * 1000000 : 0;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = pidfd, .events = POLLIN },
                        { .fd = interrupt_fd, .events = POLLIN },
                };
                int64_t left = timeout_ms >= 0 ? pm_ms_until(deadline) : -1;
                int n;

                n = poll(p, interrupt_fd >= 0 ? 2 : 1, left > INT_MAX ? INT_MAX : (int) left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
                        return 1;
                if (interrupt_fd >= 0 && p[1].revents)
                        return 0;
                if (n == 0 && timeout_ms >= 0 && pm_ms_until(deadline) == 0)
                        return -ETIMEDOUT;
        }
}

int pm_pid_file_read(const char *path, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        uint32_t pid;
        size_t n;
        int r;

        r = pm_read_file(path, 64, &text, &n);
        if (r < 0)
                return r;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
                text[--n] = '\0';
        r = pm_parse_u32(text, &pid);
        if (r < 0)
                return r;
        if (pid <= 1 || pid > INT32_MAX)
                return -ERANGE;
        *ret = (pid_t) pid;
        return 0;
}

int pm_pid_file_write(const char *path, pid_t pid) {
        char buf[32];
        int n;

        n = snprintf(buf, sizeof(buf), "%d\n", (int) pid);
        return pm_write_file_atomic(path, buf, (size_t) n, 0644);
}

static int proc_read(pid_t pid, const char *what, size_t max, char **ret, size_t *ret_n) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "/proc/%d/%s", (int) pid, what) < 0)
                return -ENOMEM;
        r = pm_read_file(path, max, ret, ret_n);
        if (r == -ENOENT)
                return -ESRCH;
        return r;
}

int pm_proc_children(pid_t pid, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        char path[64], *p, *tok;
        size_t n = 0, cap = 0;
        int r;

        snprintf(path, sizeof(path), "task/%d/children", (int) pid);
        r = proc_read(pid, path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;

        for (p = text; (tok = strsep(&p, " \n"));) {
                uint32_t c;

                if (*tok == '\0')
                        continue;
                if (pm_parse_u32(tok, &c) < 0 || c == 0 || c > INT32_MAX)
                        return -EBADMSG;
                if (n == cap) {
                        pid_t *m = reallocarray(pids, cap ? cap * 2 : 4, sizeof(pid_t));
                        if (!m)
                                return -ENOMEM;
                        pids = m;
                        cap = cap ? cap * 2 : 4;
                }
                pids[n++] = (pid_t) c;
        }
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

int pm_proc_is_nested_init(pid_t pid) {
        _cleanup_free_ char *text = NULL;
        const char *last = NULL;
        char *line, *tok;
        unsigned n = 0;
        int r;

        r = proc_read(pid, "status", 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        line = strstr(text, "\nNSpid:");
        if (!line)
                return 0;
        line += strlen("\nNSpid:");
        line[strcspn(line, "\n")] = '\0';
        /* "\t4324\t1": the PID in our namespace first, the innermost last */
        while ((tok = strsep(&line, " \t")))
                if (*tok != '\0') {
                        last = tok;
                        n++;
                }
        return n >= 2 && streq(last, "1");
}

int pm_proc_has_arg(pid_t pid, const char *arg) {
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r;

        r = proc_read(pid, "cmdline", 256 * 1024, &text, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i += strlen(text + i) + 1)
                if (streq(text + i, arg))
                        return 1;
        return 0;
}

int pm_proc_root_is(pid_t pid, const char *path) {
        struct stat a, b;
        char p[64];

        snprintf(p, sizeof(p), "/proc/%d/root", (int) pid);
        if (stat(p, &a) < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        if (stat(path, &b) < 0)
                return -errno;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void on_alarm(int sig) {
        /* nothing: its only job is to interrupt flock() with EINTR */
        (void) sig;
}

int pm_flock_timeout(int fd, int op, int64_t timeout_ms) {
        struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
        /* The interval re-arms the alarm, so that a signal that arrives just
         * before flock() blocks cannot leave it blocked for good. */
        struct itimerval it = {
                .it_value = { .tv_sec = 0, .tv_usec = 10000 },
                .it_interval = { .tv_sec = 0, .tv_usec = 10000 },
        }, off = {};
        int64_t deadline = pm_now_monotonic_ns() + timeout_ms * 1000000;
        sigset_t alrm, old_mask;
        int r;

        if (op & LOCK_NB)
                return -EINVAL;

        if (flock(fd, op | LOCK_NB) >= 0)
                return 0;
        if (errno != EWOULDBLOCK)
                return -errno;
        if (timeout_ms <= 0)
                return -ETIMEDOUT;

        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        if (sigaction(SIGALRM, &sa, &old_sa) < 0)
                return -errno;
        sigprocmask(SIG_UNBLOCK, &alrm, &old_mask);
        if (setitimer(ITIMER_REAL, &it, NULL) < 0) {
                r = -errno;
                goto finish;
        }

        for (;;) {
                if (flock(fd, op) >= 0) {
                        r = 0;
                        break;
                }
                if (errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (pm_ms_until(deadline) == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
        }

        setitimer(ITIMER_REAL, &off, NULL);
finish:
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        sigaction(SIGALRM, &old_sa, NULL);
        return r;
}
