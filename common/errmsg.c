#include "errmsg.h"

#include <stdarg.h>

int pm_errorf(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (!ret_error || *ret_error)
                return r;

        errno = r < 0 ? -r : r;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}
