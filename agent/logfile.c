#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "spec.h"
#include "util.h"

size_t pm_log_next_piece(const char *buf, size_t len, bool eof, bool *ret_partial) {
        size_t scan = len < PM_LOG_CHUNK ? len : PM_LOG_CHUNK;
        const char *nl = memchr(buf, '\n', scan);
        if (nl) {
                *ret_partial = false;
                return (size_t) (nl - buf) + 1;
        }
        if (len >= PM_LOG_CHUNK || (eof && len > 0)) {
                *ret_partial = true;
                return scan;
        }
        return 0;
}

void pm_log_rfc3339_nano(int64_t time_ns, char *buf, size_t size) {
        time_t sec = (time_t) (time_ns / 1000000000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%09uZ", (unsigned) (time_ns % 1000000000));
}

size_t pm_log_cri_line(char *buf, size_t size, int64_t time_ns, PmLogStream stream, const char *piece, size_t len,
                       bool partial) {
        char ts[40];
        if (!partial && len > 0 && piece[len - 1] == '\n')
                len--;
        pm_log_rfc3339_nano(time_ns, ts, sizeof(ts));
        int n = snprintf(buf, size, "%s %s %c ", ts, stream == PM_LOG_STDERR ? "stderr" : "stdout", partial ? 'P' : 'F');
        if (n < 0 || (size_t) n + len + 1 > size)
                return 0;
        memcpy(buf + n, piece, len);
        buf[n + len] = '\n';
        return (size_t) n + len + 1;
}

int pm_log_file_init(PmLogFile *f, const char *path, bool cri, uint64_t max_size, unsigned max_files) {
        *f = (PmLogFile){
                .path = strdup(path),
                .cri = cri,
                .max_size = max_size ? max_size : PM_LOG_MAX_SIZE_DEFAULT,
                .max_files = max_files ? max_files : PM_LOG_MAX_FILES_DEFAULT,
                .fd = -1,
        };
        if (f->max_files > PM_LOG_FILES_MAX)
                f->max_files = PM_LOG_FILES_MAX;
        return f->path ? 0 : -ENOMEM;
}

static char *rotated_path(const PmLogFile *f, unsigned n) {
        char *p;
        return asprintf(&p, "%s.%u", f->path, n) < 0 ? NULL : p;
}

static int open_file(PmLogFile *f) {
        _cleanup_free_ char *dir = strdup(f->path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return -ENOMEM;
        *slash = '\0';
        int r = pm_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        f->fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
        if (f->fd < 0)
                return -errno;
        off_t end = lseek(f->fd, 0, SEEK_END);
        f->size = end > 0 ? (uint64_t) end : 0;
        return 0;
}

/* path.N-1 -> path.N, ..., path -> path.1; the oldest falls off. */
static int rotate(PmLogFile *f) {
        pm_log_file_close(f);
        for (unsigned n = f->max_files; n >= 1; n--) {
                _cleanup_free_ char *to = rotated_path(f, n);
                _cleanup_free_ char *from = n == 1 ? strdup(f->path) : rotated_path(f, n - 1);
                if (!to || !from)
                        return -ENOMEM;
                if (rename(from, to) < 0 && errno != ENOENT)
                        return -errno;
        }
        return open_file(f);
}

int pm_log_file_write(PmLogFile *f, int64_t time_ns, PmLogStream stream, const char *piece, size_t len, bool partial) {
        static char line[PM_LOG_CHUNK + 64];
        const char *out = piece;
        size_t n = len;
        int r;

        if (f->cri) {
                n = pm_log_cri_line(line, sizeof(line), time_ns, stream, piece, len, partial);
                if (n == 0)
                        return -E2BIG;
                out = line;
        }
        if (f->fd < 0) {
                r = open_file(f);
                if (r < 0)
                        return r;
        }
        if (f->size > 0 && f->size + n > f->max_size) {
                r = rotate(f);
                if (r < 0)
                        return r;
        }
        r = pm_write_all(f->fd, out, n);
        if (r < 0)
                return r;
        f->size += n;
        return 0;
}

void pm_log_file_close(PmLogFile *f) {
        if (f->fd >= 0)
                close(f->fd);
        f->fd = -1;
}

void pm_log_file_remove(PmLogFile *f) {
        pm_log_file_close(f);
        if (!f->path)
                return;
        (void) unlink(f->path);
        for (unsigned n = 1; n <= f->max_files; n++) {
                _cleanup_free_ char *p = rotated_path(f, n);
                if (p)
                        (void) unlink(p);
        }
}

void pm_log_file_done(PmLogFile *f) {
        pm_log_file_close(f);
        free(f->path);
        f->path = NULL;
}

char *pm_log_socket_path(const char *state_dir, const char *id, PmLogStream stream) {
        char *p;
        return asprintf(&p, "%s/logs/%s.%s", state_dir, id, stream == PM_LOG_STDERR ? "err" : "out") < 0 ? NULL : p;
}

char *pm_log_file_path(const char *namespace_, const char *name) {
        char *p;
        return asprintf(&p, PM_POD_LOG_DIR "/%s/%s.log", namespace_, name) < 0 ? NULL : p;
}
