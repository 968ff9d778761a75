/* Messages for a person, built once at the place that understands the
 * failure and printed (or sent) once by the boundary that called it. */
#pragma once

#include "util.h"

/* When ret_error is not NULL and holds no message yet, sets it to the
 * formatted text (a "%m" in fmt names the error r). Returns r, so that a
 * failure is described and returned in one statement:
 *
 *         return pm_errorf(ret_error, r, "cannot write %s: %m", path);
 *
 * The first message set wins: it is the most precise one. */
int pm_errorf(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
