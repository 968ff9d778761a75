/* Small helpers every binary uses: cleanup attributes, ownership hand-over,
 * time, checked number parsing, atomic file writes. No policy lives here. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership over: returns the value and leaves NULL behind. */
#define TAKE_PTR(p)                                                            \
        ({                                                                     \
                __typeof__(p) _p_ = (p);                                       \
                (p) = NULL;                                                    \
                _p_;                                                           \
        })
#define TAKE_FD(fd)                                                            \
        ({                                                                     \
                int _fd_ = (fd);                                               \
                (fd) = -1;                                                     \
                _fd_;                                                          \
        })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void strv_freep(char ***p) {
        if (!*p)
                return;
        for (char **s = *p; *s; s++)
                free(*s);
        free(*p);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}
static inline bool isempty(const char *s) { return !s || !*s; }
static inline const char *strempty(const char *s) { return s ? s : ""; }

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_USEC 1000LL
#define USEC_PER_SEC 1000000LL

/* Wall clock in nanoseconds since the epoch. */
int64_t pm_now_realtime_ns(void);
/* Monotonic clock in nanoseconds. */
int64_t pm_now_monotonic_ns(void);

/* Checked parsing: the whole string must be a number in range. */
int pm_parse_u64(const char *s, uint64_t *ret);
int pm_parse_u32(const char *s, uint32_t *ret);
int pm_parse_i64(const char *s, int64_t *ret);

/* Writes data to path atomically: a temp file beside it, fsync, rename. */
/* Writes all size bytes to a blocking fd, across short writes and EINTR. */
int pm_write_all(int fd, const void *data, size_t size);
int pm_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* Reads a whole file of at most max bytes; the result is NUL-terminated. */
int pm_read_file(const char *path, size_t max, char **ret_data, size_t *ret_size);

/* mkdir -p with the given mode for every created component. */
int pm_mkdir_p(const char *path, mode_t mode);
/* rm -rf that stays on one file system and never follows symlinks; 0 if
 * there is nothing. _at: name below dirfd. */
int pm_rm_rf(const char *path);
int pm_rm_rf_at(int dirfd, const char *name);
/* Removes everything in directory fd, keeping it, the same way. */
int pm_clear_dir(int fd);

/* Fills buf with len random bytes as 2*len lowercase hex digits + NUL. */
int pm_random_hex(char *buf, size_t len);

/* The cgroup hierarchy this process sees: cgroup2 alone at /sys/fs/cgroup
 * (unified), cgroup2 at /sys/fs/cgroup/unified beside v1 ones (hybrid), or
 * v1 only (legacy). */
typedef enum PmCgroupMode {
        PM_CGROUP_LEGACY,
        PM_CGROUP_HYBRID,
        PM_CGROUP_UNIFIED,
} PmCgroupMode;
PmCgroupMode pm_cgroup_mode(void);
const char *pm_cgroup_mode_name(PmCgroupMode mode);

/* A lowercase DNS label: [a-z0-9]([-a-z0-9]{0,61}[a-z0-9])? */
bool pm_dns_label_valid(const char *s);

/* Well-formed UTF-8 of exactly len bytes, with no NUL. */
bool pm_utf8_valid(const char *s, size_t len);
