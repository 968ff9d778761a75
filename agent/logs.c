#include "logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "log.h"
#include "logfile.h"
#include "util.h"

#define CODE(x) PODMUTATOR__V1__CODE__CODE_##x
#define READERS_MAX 64
#define ENTRIES_PER_TURN 256 /* then the loop gets a turn */
/* A follower paused this long behind the app skips what is older. */
#define FOLLOW_LAG_MAX_USEC (60ull * 1000000ull)
#define STREAM_STDOUT_BIT 1u
#define STREAM_STDERR_BIT 2u

/* ---- the log daemon's side of an app ------------------------------------- */

static int listen_at(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* One datagram to the daemon, with fds when n_fds > 0. Never waits: a daemon
 * that is down or swamped is an error. */
static int tell_logd(Manager *m, const char *text, const int *fds, int n_fds) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" PM_LOGD_SOCKET_NAME, m->state_dir);
        if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        _cleanup_(closep) int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 2)];
        } control = { 0 };
        struct iovec iov = { (void *) text, strlen(text) };
        struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1 };
        if (n_fds > 0) {
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t) n_fds);
        }
        return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int pm_logs_attach(Manager *m, const App *a) {
        int fds[2] = { -1, -1 }, r = 0;
        for (int i = 0; i < 2 && r >= 0; i++) {
                _cleanup_free_ char *path = pm_log_socket_path(m->state_dir, a->id, i ? PM_LOG_STDERR : PM_LOG_STDOUT);
                r = path ? listen_at(path) : -ENOMEM;
                if (r >= 0)
                        fds[i] = r;
        }
        char text[64];
        snprintf(text, sizeof(text), "add %s", a->id);
        if (r >= 0)
                r = tell_logd(m, text, fds, 2);
        /* The daemon has its own copies now; a connection systemd makes
         * meanwhile waits in the listen queue. */
        for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return r;
}

void pm_logs_detach(Manager *m, const App *a) {
        char text[64];
        snprintf(text, sizeof(text), "remove %s", a->id);
        (void) tell_logd(m, text, NULL, 0);
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *path = pm_log_socket_path(m->state_dir, a->id, i ? PM_LOG_STDERR : PM_LOG_STDOUT);
                if (path)
                        (void) unlink(path);
        }
        /* The files go now, so that rm returns with them gone; the daemon
         * closes what it still holds. */
        const PmAppSpec *spec = a->record->spec;
        const Podmutator__V1__Logging *lg = spec->logging;
        _cleanup_free_ char *file = pm_log_file_path(pm_spec_namespace(spec), spec->name);
        PmLogFile f;
        if (file && pm_log_file_init(&f, file, false, 0, lg ? lg->max_files : 0) >= 0) {
                pm_log_file_remove(&f);
                pm_log_file_done(&f);
        }
}

/* ---- the Logs call --------------------------------------------------------- */

struct LogReader {
        Manager *m;
        Call *call;
        char app_id[PM_APP_ID_LEN + 1];
        sd_journal *j;
        uv_poll_t poll;     /* the journal's fd, while following */
        uv_timer_t turn;    /* reading goes on after the loop had a turn */
        bool follow;
        bool live;          /* following: caught up once, new entries from now */
        bool waiting_drain; /* paused until the client catches up */
        uint64_t dropped;   /* bytes skipped since the last marker */
        uint64_t dropped_total;
        unsigned handles;   /* open uv handles; freed when the last closes */
        bool ended;
        LogReader *next;
};

static void reader_unlink(LogReader *r) {
        for (LogReader **p = &r->m->log_readers; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        r->m->n_log_readers--;
                        return;
                }
}

static void on_reader_handle_closed(uv_handle_t *h) {
        LogReader *r = h->data;
        if (--r->handles == 0) {
                sd_journal_close(r->j);
                free(r);
        }
}

/* Ends the call (unless the client is gone: call NULL) and lets go of r. */
static void reader_end(LogReader *r, PmCode code, const char *message) {
        if (r->ended)
                return;
        r->ended = true;
        reader_unlink(r);
        if (r->call && code == CODE(OK)) {
                Podmutator__V1__LogsResponse lr = PODMUTATOR__V1__LOGS_RESPONSE__INIT;
                lr.dropped = r->dropped_total;
                PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
                resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_LOGS;
                resp.logs = &lr;
                pm_call_reply(r->call, &resp);
        } else if (r->call)
                pm_call_fail(r->call, code, "%s", message);
        r->call = NULL;
        uv_close((uv_handle_t *) &r->turn, on_reader_handle_closed);
        uv_close((uv_handle_t *) &r->poll, on_reader_handle_closed);
}

static int send_entry(LogReader *r, int64_t time, uint32_t fd, const void *data, size_t size, bool partial) {
        Podmutator__V1__LogEntry e = PODMUTATOR__V1__LOG_ENTRY__INIT;
        e.time = time;
        e.fd = fd;
        e.data.data = (uint8_t *) data;
        e.data.len = size;
        e.partial = partial;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_LOG;
        env.log = &e;
        return pm_call_send(r->call, &env);
}

/* A field's value, or NULL. */
static const char *field(sd_journal *j, const char *name, size_t *ret_len) {
        const void *d;
        size_t len, n = strlen(name);
        if (sd_journal_get_data(j, name, &d, &len) < 0 || len < n + 1)
                return NULL;
        *ret_len = len - n - 1;
        return (const char *) d + n + 1;
}

static bool entry_partial(sd_journal *j) {
        size_t n;
        const char *v = field(j, "PM_PARTIAL", &n);
        return v && n == 1 && v[0] == '1';
}

/* Sends a marker for what was skipped, if anything was. */
static void flush_dropped(LogReader *r, int64_t time) {
        if (r->dropped == 0)
                return;
        char marker[96];
        int n = snprintf(marker, sizeof(marker), "[podmutator: %llu bytes of log dropped]\n",
                         (unsigned long long) r->dropped);
        send_entry(r, time, 0, marker, (size_t) n, false);
        r->dropped_total += r->dropped;
        r->dropped = 0;
}

/* Sends the entry at r->j's position; a follower more than
 * FOLLOW_LAG_MAX_USEC behind the app skips it and counts its bytes. */
static int send_current(LogReader *r) {
        size_t len = 0, slen = 0;
        const char *msg = field(r->j, "MESSAGE", &len);
        const char *stream = field(r->j, "PM_STREAM", &slen);
        uint64_t usec = 0;
        if (!msg)
                return 0;
        bool partial = entry_partial(r->j);
        uint32_t fd = stream && slen == 6 && memcmp(stream, "stderr", 6) == 0 ? 2 : 1;
        (void) sd_journal_get_realtime_usec(r->j, &usec);
        if (r->live && usec + FOLLOW_LAG_MAX_USEC < (uint64_t) pm_now_realtime_ns() / 1000) {
                r->dropped += len + !partial;
                return 0;
        }
        flush_dropped(r, (int64_t) usec * 1000);
        /* The newline the daemon took off a whole line goes back. */
        _cleanup_free_ char *buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, msg, len);
        if (!partial)
                buf[len++] = '\n';
        return send_entry(r, (int64_t) usec * 1000, fd, buf, len, partial);
}

static void read_on(LogReader *r);

static void on_turn(uv_timer_t *t) { read_on(t->data); }

static void on_journal(uv_poll_t *p, int status, int events) {
        LogReader *r = p->data;
        if (sd_journal_process(r->j) < 0) {
                reader_end(r, CODE(INTERNAL), "the journal cannot be read any more");
                return;
        }
        read_on(r);
}

/* Sends what the journal holds past r's position, a bounded number of
 * entries per loop turn; then ends the call, or waits for new entries. */
static void read_on(LogReader *r) {
        if (r->ended || r->waiting_drain)
                return;
        for (int i = 0; i < ENTRIES_PER_TURN; i++) {
                /* The journal holds what the client has not taken yet: wait
                 * for it to catch up rather than queue more here. */
                if (pm_call_backlogged(r->call)) {
                        r->waiting_drain = true;
                        return;
                }
                int k = sd_journal_next(r->j);
                if (k < 0) {
                        reader_end(r, CODE(INTERNAL), "the journal cannot be read");
                        return;
                }
                if (k == 0) {
                        flush_dropped(r, pm_now_realtime_ns());
                        if (!r->follow) {
                                reader_end(r, CODE(OK), NULL);
                                return;
                        }
                        r->live = true;
                        if (!uv_is_active((uv_handle_t *) &r->poll))
                                uv_poll_start(&r->poll, UV_READABLE, on_journal);
                        return;
                }
                if (send_current(r) < 0) {
                        reader_end(r, CODE(RESOURCE_EXHAUSTED), "out of memory");
                        return;
                }
        }
        uv_timer_start(&r->turn, on_turn, 0, 0);
}

static void on_logs_cancel(void *userdata) { reader_end(userdata, CODE(OK), NULL); }

static void on_logs_close(void *userdata) {
        LogReader *r = userdata;
        /* The call must still be ended; its answer is dropped. */
        reader_end(r, CODE(CANCELLED), "the client went away");
}

static void on_logs_drain(void *userdata) {
        LogReader *r = userdata;
        if (!r->waiting_drain)
                return;
        r->waiting_drain = false;
        read_on(r);
}

static const StreamOps logs_ops = {
        .on_cancel = on_logs_cancel,
        .on_drain = on_logs_drain,
        .on_close = on_logs_close,
};

/* Whether the entry at j's position ends a line (the last entry, one the
 * app left without a newline, counts as one). */
static bool ends_line(sd_journal *j, bool last) {
        return last || !entry_partial(j);
}

/* Positions j so that the next entry is the first of the last n lines
 * logged from since_usec on. */
static int seek_tail_lines(sd_journal *j, int64_t n, uint64_t since_usec) {
        int r = sd_journal_seek_tail(j);
        int64_t ends = 0;
        bool last = true;
        while (r >= 0) {
                uint64_t t = 0;
                r = sd_journal_previous(j);
                if (r <= 0)
                        break;
                if (since_usec > 0 && sd_journal_get_realtime_usec(j, &t) >= 0 && t < since_usec)
                        return 0; /* next() moves past the older entries */
                if (ends_line(j, last) && ++ends == n + 1)
                        return 0; /* next() moves to the line after this one */
                last = false;
        }
        return r < 0 ? r : sd_journal_seek_head(j);
}

static int open_journal(LogReader *r, const Podmutator__V1__LogsRequest *req) {
        char match[64];
        int k = sd_journal_open(&r->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (k < 0)
                return k;
        snprintf(match, sizeof(match), "PM_APP_ID=%s", r->app_id);
        k = sd_journal_add_match(r->j, match, 0);
        uint32_t streams = req->streams & (STREAM_STDOUT_BIT | STREAM_STDERR_BIT);
        if (k >= 0 && streams == STREAM_STDOUT_BIT)
                k = sd_journal_add_match(r->j, "PM_STREAM=stdout", 0);
        if (k >= 0 && streams == STREAM_STDERR_BIT)
                k = sd_journal_add_match(r->j, "PM_STREAM=stderr", 0);
        if (k < 0)
                return k;
        uint64_t since_usec = req->since > 0 ? (uint64_t) req->since / 1000 : 0;
        if (req->tail > 0)
                return seek_tail_lines(r->j, req->tail, since_usec);
        if (since_usec > 0)
                return sd_journal_seek_realtime_usec(r->j, since_usec);
        return sd_journal_seek_head(r->j);
}

void pm_logs_start(Call *call, App *a, const Podmutator__V1__LogsRequest *req) {
        Manager *m = call->m;
        if (req->streams > (STREAM_STDOUT_BIT | STREAM_STDERR_BIT)) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "streams: %u is not 1 (stdout), 2 (stderr) or 3 (both)",
                             req->streams);
                return;
        }
        if (req->tail < -1 || req->since < 0) {
                pm_call_fail(call, CODE(INVALID_ARGUMENT), "%s: %lld is negative", req->tail < -1 ? "tail" : "since",
                             (long long) (req->tail < -1 ? req->tail : req->since));
                return;
        }
        if (m->n_log_readers >= READERS_MAX) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "%d log readers are connected, the most the agent takes",
                             READERS_MAX);
                return;
        }
        LogReader *r = calloc(1, sizeof(*r));
        if (!r) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        *r = (LogReader){ .m = m, .call = call, .follow = req->follow };
        snprintf(r->app_id, sizeof(r->app_id), "%s", a->id);
        int k = open_journal(r, req);
        int fd = k >= 0 ? sd_journal_get_fd(r->j) : k;
        if (fd < 0) {
                pm_call_fail(call, CODE(INTERNAL), "cannot read the pod's journal: %s", strerror(-fd));
                sd_journal_close(r->j);
                free(r);
                return;
        }
        uv_timer_init(m->loop, &r->turn);
        uv_poll_init(m->loop, &r->poll, fd);
        r->turn.data = r->poll.data = r;
        r->handles = 2;
        r->next = m->log_readers;
        m->log_readers = r;
        m->n_log_readers++;
        pm_call_attach_stream(call, &logs_ops, r);
        read_on(r);
}

/* A follower of a removed app reads what is left, then ends. */
void pm_logs_app_removed(Manager *m, const App *a) {
        for (LogReader *r = m->log_readers, *next; r; r = next) {
                next = r->next;
                if (!streq(r->app_id, a->id) || !r->follow)
                        continue;
                r->follow = false;
                (void) sd_journal_process(r->j);
                read_on(r);
        }
}

void pm_logs_done(Manager *m) {
        while (m->log_readers)
                reader_end(m->log_readers, CODE(UNAVAILABLE), "the agent is stopping");
}
