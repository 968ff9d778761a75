/* Logging for the binaries' boundaries: one line on stderr, which systemd
 * sends to the journal for the agent. Level prefixes follow sd-daemon's
 * <N> convention so the journal keeps the priority. */
#pragma once

#include <stdbool.h>

#include "util.h"

void pm_log_set_prefix_levels(bool on);
void pm_log_set_debug(bool on);
_printf_(2, 3) void pm_log(int level, const char *fmt, ...);

#define pm_log_error(...) pm_log(3, __VA_ARGS__)
#define pm_log_warning(...) pm_log(4, __VA_ARGS__)
#define pm_log_info(...) pm_log(6, __VA_ARGS__)
#define pm_log_debug(...) pm_log(7, __VA_ARGS__)
