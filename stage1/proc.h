/* Processes seen from the node: pidfds, bounded waits, and the /proc facts
 * that tell stage1's own processes apart from strangers that reused a PID.
 * Every wait here takes a timeout; none of them sleep-polls. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Milliseconds left until deadline_ns (CLOCK_MONOTONIC), 0 once past it. */
int64_t pm_ms_until(int64_t deadline_ns);

/* A pidfd (O_CLOEXEC) for pid, or -ESRCH when there is no such process. */
int pm_pidfd_open(pid_t pid);
/* Sends sig through a pidfd. -ESRCH once the process has been reaped. */
int pm_pidfd_signal(int pidfd, int sig);
/* Waits until the process behind pidfd has exited (it may still be a
 * zombie), until interrupt_fd (ignored when < 0) is readable, or until
 * timeout_ms (< 0: no limit) has passed. Returns 1 when it exited, 0 when
 * interrupted, -ETIMEDOUT on timeout. */
int pm_pidfd_wait(int pidfd, int interrupt_fd, int64_t timeout_ms);

/* A file holding one decimal PID and a newline. */
int pm_pid_file_read(const char *path, pid_t *ret);
int pm_pid_file_write(const char *path, pid_t pid);

/* The children of pid's main thread (/proc/PID/task/PID/children).
 * *ret is malloc()ed; *ret_n may be 0. */
int pm_proc_children(pid_t pid, pid_t **ret, size_t *ret_n);
/* 1 if pid is PID 1 of a PID namespace nested in ours (its NSpid line has
 * more than one entry and ends in 1), 0 if not, -ESRCH if it is gone. */
int pm_proc_is_nested_init(pid_t pid);
/* 1 if one argument of pid's command line is exactly arg, else 0 (also for
 * zombies, whose command line is empty); -ESRCH if it is gone. */
int pm_proc_has_arg(pid_t pid, const char *arg);
/* 1 if pid's root directory is the directory at path (same inode). */
int pm_proc_root_is(pid_t pid, const char *path);

/* flock(fd, op) that gives up after timeout_ms with -ETIMEDOUT. op must not
 * hold LOCK_NB. Uses SIGALRM and ITIMER_REAL for the time it waits. */
int pm_flock_timeout(int fd, int op, int64_t timeout_ms);
