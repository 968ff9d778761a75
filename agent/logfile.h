/* An app's log file: the pieces the log daemon cuts an output stream into,
 * how they are written (the app's bytes, or CRI lines), and rotation.
 *
 * A stream is cut into pieces at each newline and, for a line longer than
 * PM_LOG_CHUNK, every PM_LOG_CHUNK bytes; a piece is "partial" when it does
 * not end its line (it was cut, or the stream ended without a newline). The
 * same pieces go to the journal, so that a reader can put lines of any
 * length back together. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_LOG_CHUNK (16u * 1024u)
#define PM_LOG_MAX_SIZE_DEFAULT (10u * 1024u * 1024u)
#define PM_LOG_MAX_FILES_DEFAULT 3u

typedef enum PmLogStream { PM_LOG_STDOUT = 1, PM_LOG_STDERR = 2 } PmLogStream;

/* The length of the next piece of buf[0..len): up to and including a newline
 * (*ret_partial false), PM_LOG_CHUNK bytes of a longer line (*ret_partial
 * true), or 0 when buf holds only the start of a line shorter than
 * PM_LOG_CHUNK (keep it and read more). At the end of the stream (eof), what
 * is left is one partial piece. */
size_t pm_log_next_piece(const char *buf, size_t len, bool eof, bool *ret_partial);

/* The CRI line for a piece ("<RFC3339Nano> <stdout|stderr> <P|F> <content>\n",
 * the piece's own newline dropped) into buf; returns its length, or 0 when
 * size is too small (PM_LOG_CHUNK + 64 always suffices). */
size_t pm_log_cri_line(char *buf, size_t size, int64_t time_ns, PmLogStream stream, const char *piece, size_t len,
                       bool partial);

/* "2026-11-30T12:00:00.123456789Z" into buf (at least 40 bytes). */
void pm_log_rfc3339_nano(int64_t time_ns, char *buf, size_t size);

typedef struct PmLogFile {
        char *path;         /* /var/log/<namespace>/<name>.log */
        bool cri;
        uint64_t max_size;  /* rotate before a write would pass it */
        unsigned max_files; /* rotated files kept: path.1 .. path.N */
        int fd;             /* -1 until the first write */
        uint64_t size;
} PmLogFile;

int pm_log_file_init(PmLogFile *f, const char *path, bool cri, uint64_t max_size, unsigned max_files);
/* Writes one piece in the file's format, rotating first when needed. */
int pm_log_file_write(PmLogFile *f, int64_t time_ns, PmLogStream stream, const char *piece, size_t len, bool partial);
void pm_log_file_close(PmLogFile *f);
/* Closes it and deletes the file and its rotated files. */
void pm_log_file_remove(PmLogFile *f);
void pm_log_file_done(PmLogFile *f);

/* Where things are, below the agent's state dir (hidden from apps) and in
 * the pod: the sockets systemd connects an app's stdout and stderr to, the
 * log daemon's own socket, the app's file. */
#define PM_LOGD_SOCKET_NAME "logd.sock"
char *pm_log_socket_path(const char *state_dir, const char *id, PmLogStream stream);
char *pm_log_file_path(const char *namespace_, const char *name);
