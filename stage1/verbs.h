/* The verbs of pm-stage1 and the little they share. Each verb is a
 * boundary: it prints its errors, once, on stderr, and returns an exit
 * status for main(). */
#pragma once

#include <stdint.h>

#include "util.h"

enum {
        PM_EXIT_OK = 0,
        PM_EXIT_FAILURE = 1,
        PM_EXIT_USAGE = 2, /* bad command line */
};

#define PM_READY_TIMEOUT_MS (30 * 1000)
#define PM_STOP_TIMEOUT_MS (10 * 1000)
/* How long stop waits for the pm-stage1 that owns a pod to let go of it
 * once the pod is down (it removes the directories itself). */
#define PM_LOCK_TIMEOUT_MS (10 * 1000)
/* How much of the console a failed start shows. */
#define PM_CONSOLE_TAIL_LINES 40

int pm_verb_run(int argc, char *argv[]);
int pm_verb_stop(int argc, char *argv[]);
int pm_verb_list(int argc, char *argv[]);
int pm_verb_prepare(int argc, char *argv[]);
int pm_verb_cache(int argc, char *argv[]);

/* "S" or "S.fff" seconds, at most a day, into milliseconds. */
int pm_parse_seconds(const char *s, int64_t *ret_ms);

/* "pm-stage1: " + the message + "\n" on stderr, where "%m" names r.
 * Returns r. */
int pm_log_error(int r, const char *fmt, ...) _printf_(2, 3);
/* "pm-stage1: warning: " + the message: for what does not fail. */
void pm_log_warning(const char *fmt, ...) _printf_(1, 2);
/* For a usage error: the message and a pointer to --help. Returns
 * PM_EXIT_USAGE. */
int pm_usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);

/* Prints the last `lines` lines of a console log on stderr, framed. */
void pm_console_tail(const char *path, unsigned lines);
