#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static bool prefix_levels;
static bool debug_enabled;

void pm_log_set_prefix_levels(bool on) { prefix_levels = on; }
void pm_log_set_debug(bool on) { debug_enabled = on; }

void pm_log(int level, const char *fmt, ...) {
        if (level >= 7 && !debug_enabled)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (prefix_levels)
                fprintf(stderr, "<%d>%s\n", level, line);
        else
                fprintf(stderr, "%s\n", line);
}
