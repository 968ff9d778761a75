/* The pod's log daemon: podmutatord --logd, run as pm-logd.service.
 *
 * systemd connects each app's stdout and stderr to a socket of the app's
 * (StandardOutput=file:<state>/logs/<id>.out), so what an app writes reaches
 * this daemon and never the agent: an agent restart loses nothing. The
 * daemon cuts each stream into pieces (logfile.h), appends them to the app's
 * file with rotation, and sends each to the journal with the app's fields.
 *
 * The agent makes an app's two listening sockets and hands them over in a
 * datagram "add <id>" on <state>/logd.sock; "remove <id>" lets them go. At
 * start the daemon makes the sockets of every app the agent has a record of,
 * and takes back from the log keeper (logkeep.h), which holds a copy of each
 * stream, the connections of a previous run: its own restart loses no
 * stream either. */
#include "logd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <uv.h>

#include "app.h"
#include "hashmap.h"
#include "log.h"
#include "logfile.h"
#include "logkeep.h"
#include "records.h"
#include "spec.h"
#include "unit.h"
#include "util.h"

#define READ_SIZE (64u * 1024u)
#define BUF_SIZE (PM_LOG_CHUNK + READ_SIZE) /* a piece never spans more */
#define CONNS_PER_APP_MAX 16                /* runs whose stream is still open */
#define KEEPER_RETRY_MS 200                 /* while the log keeper is down */

typedef struct LogApp LogApp;

typedef struct LogConn {
        LogApp *app;
        PmLogStream stream;
        uv_pipe_t pipe;
        char fdname[PM_LOGKEEP_NAME_MAX + 1]; /* its name at the keeper */
        char *buf;
        size_t len;
        struct LogConn *next;
} LogConn;

struct LogApp {
        char id[PM_APP_ID_LEN + 1];
        char *name, *namespace_, *unit;
        PmLogFile file;
        uv_pipe_t listeners[2];
        bool listening[2];
        LogConn *conns;
        unsigned n_conns;
        unsigned handles; /* open handles; freed when the last closes */
        bool removed;
};

typedef struct Logd {
        uv_loop_t *loop;
        const char *state_dir;
        PmHashmap apps; /* id -> LogApp */
        uv_poll_t control;
        int control_fd;
        uint64_t conn_seq;
        uv_signal_t sig_term;
        int keeper_fd;           /* -1: no keeper now */
        uv_poll_t keeper_poll;   /* its end, while connected */
        bool keeper_poll_closing;
        uv_timer_t keeper_retry; /* reconnects while it is down */
} Logd;

static Logd logd;

/* ---- the keeper ------------------------------------------------------------- */

static void keeper_lost(void);

static void keeper_keep(LogConn *c) {
        uv_os_fd_t fd;
        if (logd.keeper_fd >= 0 && uv_fileno((uv_handle_t *) &c->pipe, &fd) >= 0 &&
            pm_logkeep_keep(logd.keeper_fd, c->fdname, fd) < 0)
                keeper_lost();
}

static void keeper_drop(const char *name) {
        /* A stream that never got its name was never kept. */
        if (logd.keeper_fd >= 0 && name[0] && pm_logkeep_drop(logd.keeper_fd, name) < 0)
                keeper_lost();
}

/* ---- the journal ---------------------------------------------------------- */

static void journal_send(LogApp *a, PmLogStream stream, const char *piece, size_t len, bool partial) {
        char id[64], unit[128], ns[96], name[96];
        size_t mlen = !partial && len > 0 && piece[len - 1] == '\n' ? len - 1 : len;
        _cleanup_free_ char *msg = malloc(mlen + 8);
        if (!msg)
                return;
        memcpy(msg, "MESSAGE=", 8);
        memcpy(msg + 8, piece, mlen);
        snprintf(id, sizeof(id), "PM_APP_ID=%s", a->id);
        snprintf(unit, sizeof(unit), "OBJECT_SYSTEMD_UNIT=%s", a->unit);
        snprintf(ns, sizeof(ns), "PM_APP_NAMESPACE=%s", a->namespace_);
        snprintf(name, sizeof(name), "SYSLOG_IDENTIFIER=%s", a->name);
        struct iovec iov[8] = {
                { msg, mlen + 8 },
                { id, strlen(id) },
                { unit, strlen(unit) },
                { ns, strlen(ns) },
                { name, strlen(name) },
                { stream == PM_LOG_STDERR ? "PM_STREAM=stderr" : "PM_STREAM=stdout", 16 },
                { stream == PM_LOG_STDERR ? "PRIORITY=3" : "PRIORITY=6", 10 },
                { "PM_PARTIAL=1", 12 },
        };
        int r = sd_journal_sendv(iov, partial ? 8 : 7);
        if (r < 0)
                pm_log_debug("app %s: cannot send to the journal: %s", a->id, strerror(-r));
}

/* ---- streams -------------------------------------------------------------- */

static void emit(LogApp *a, PmLogStream stream, const char *piece, size_t len, bool partial) {
        int64_t now = pm_now_realtime_ns();
        int r = pm_log_file_write(&a->file, now, stream, piece, len, partial);
        if (r < 0)
                pm_log_warning("app %s: cannot write %s: %s", a->id, a->file.path, strerror(-r));
        journal_send(a, stream, piece, len, partial);
}

/* Emits every whole piece in c's buffer and keeps the rest. */
static void drain(LogConn *c, bool eof) {
        size_t off = 0, n;
        bool partial;
        while ((n = pm_log_next_piece(c->buf + off, c->len - off, eof, &partial)) > 0) {
                emit(c->app, c->stream, c->buf + off, n, partial);
                off += n;
        }
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
}

static void app_handle_closed(LogApp *a);

static void on_conn_closed(uv_handle_t *h) {
        LogConn *c = h->data;
        LogApp *a = c->app;
        free(c->buf);
        free(c);
        app_handle_closed(a);
}

static void conn_close(LogConn *c) {
        LogApp *a = c->app;
        for (LogConn **p = &a->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        a->n_conns--;
        keeper_drop(c->fdname);
        uv_close((uv_handle_t *) &c->pipe, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        LogConn *c = h->data;
        *buf = uv_buf_init(c->buf + c->len, (unsigned) (BUF_SIZE - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
        LogConn *c = s->data;
        if (n > 0) {
                c->len += (size_t) n;
                drain(c, false);
                return;
        }
        if (n == 0)
                return;
        /* The run ended (EOF) or the stream broke: what is left is a line
         * without its newline. */
        drain(c, true);
        if (c->app->file.fd >= 0 && c->app->n_conns == 1)
                pm_log_file_close(&c->app->file);
        conn_close(c);
}

static void free_handle(uv_handle_t *h) {
        free(h);
}

static LogConn *conn_new(LogApp *a, PmLogStream stream) {
        if (a->n_conns >= CONNS_PER_APP_MAX)
                return NULL;
        LogConn *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->buf = malloc(BUF_SIZE);
        if (!c->buf) {
                free(c);
                return NULL;
        }
        c->app = a;
        c->stream = stream;
        uv_pipe_init(logd.loop, &c->pipe, 0);
        c->pipe.data = c;
        c->next = a->conns;
        a->conns = c;
        a->n_conns++;
        a->handles++;
        return c;
}

/* Reads c from now on. A new connection goes to the keeper, so that a
 * restarted daemon goes on reading it; one from there keeps its name. */
static int conn_start(LogConn *c, const char *stored_name) {
        LogApp *a = c->app;
        if (stored_name)
                snprintf(c->fdname, sizeof(c->fdname), "%s", stored_name);
        else
                snprintf(c->fdname, sizeof(c->fdname), "%s.%s.%llu", a->id, c->stream == PM_LOG_STDERR ? "err" : "out",
                         (unsigned long long) ++logd.conn_seq);
        int r = uv_read_start((uv_stream_t *) &c->pipe, on_alloc, on_read);
        if (r < 0)
                return r;
        if (!stored_name)
                keeper_keep(c);
        return 0;
}

static void on_connection(uv_stream_t *server, int status) {
        LogApp *a = server->data;
        PmLogStream stream = server == (uv_stream_t *) &a->listeners[1] ? PM_LOG_STDERR : PM_LOG_STDOUT;
        if (status < 0)
                return;
        LogConn *c = conn_new(a, stream);
        if (!c) {
                /* Refuse it: systemd fails that start rather than the app
                 * writing into nothing. */
                uv_pipe_t *drop = malloc(sizeof(*drop));
                if (!drop)
                        return;
                uv_pipe_init(logd.loop, drop, 0);
                if (uv_accept(server, (uv_stream_t *) drop) == 0)
                        pm_log_warning("app %s: too many open streams, one refused", a->id);
                uv_close((uv_handle_t *) drop, free_handle);
                return;
        }
        int r = uv_accept(server, (uv_stream_t *) &c->pipe);
        if (r >= 0)
                r = conn_start(c, NULL);
        if (r < 0) {
                pm_log_warning("app %s: cannot take a stream: %s", a->id, uv_strerror(r));
                conn_close(c);
        }
}

/* ---- apps ----------------------------------------------------------------- */

static void app_free(LogApp *a) {
        pm_log_file_done(&a->file);
        free(a->name);
        free(a->namespace_);
        free(a->unit);
        free(a);
}

static void app_handle_closed(LogApp *a) {
        if (--a->handles == 0 && a->removed)
                app_free(a);
}

static void on_listener_closed(uv_handle_t *h) {
        app_handle_closed(h->data);
}

/* The app's name, namespace and logging settings, from the agent's record. */
static int app_new(const char *id, LogApp **ret) {
        PmAppRecord *rec;
        int r = pm_records_read(logd.state_dir, id, &rec, NULL);
        if (r < 0)
                return r;
        LogApp *a = calloc(1, sizeof(*a));
        r = -ENOMEM;
        if (a) {
                const Podmutator__V1__Logging *lg = rec->spec->logging;
                char unit[96];
                pm_unit_name(id, unit, sizeof(unit));
                snprintf(a->id, sizeof(a->id), "%s", id);
                a->name = strdup(rec->spec->name);
                a->namespace_ = strdup(pm_spec_namespace(rec->spec));
                a->unit = strdup(unit);
                _cleanup_free_ char *file = a->name && a->namespace_ ? pm_log_file_path(a->namespace_, a->name) : NULL;
                if (file && a->unit)
                        r = pm_log_file_init(&a->file, file, lg && lg->format == PODMUTATOR__V1__LOG_FORMAT__LOG_FORMAT_CRI,
                                             lg ? lg->max_size : 0, lg ? lg->max_files : 0);
        }
        podmutator__v1__app_record__free_unpacked(rec, NULL);
        if (r < 0) {
                if (a)
                        app_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

/* Listens on fd, or, when fd < 0, on a socket made here at the app's path. */
static int app_listen(LogApp *a, PmLogStream stream, int fd) {
        int i = stream == PM_LOG_STDERR;
        uv_pipe_t *l = &a->listeners[i];
        uv_pipe_init(logd.loop, l, 0);
        l->data = a;
        a->handles++;
        a->listening[i] = true;
        int r;
        if (fd >= 0)
                r = uv_pipe_open(l, fd);
        else {
                _cleanup_free_ char *path = pm_log_socket_path(logd.state_dir, a->id, stream);
                if (!path)
                        return -ENOMEM;
                (void) unlink(path);
                r = uv_pipe_bind(l, path);
        }
        if (r >= 0)
                r = uv_listen((uv_stream_t *) l, 128, on_connection);
        return r;
}

static void app_remove(LogApp *a, bool delete_files) {
        pm_hashmap_remove(&logd.apps, a->id);
        a->removed = true;
        a->handles++; /* held while closing */
        while (a->conns) {
                drain(a->conns, true);
                conn_close(a->conns);
        }
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *path = pm_log_socket_path(logd.state_dir, a->id, i ? PM_LOG_STDERR : PM_LOG_STDOUT);
                if (path)
                        (void) unlink(path);
                if (a->listening[i])
                        uv_close((uv_handle_t *) &a->listeners[i], on_listener_closed);
                a->listening[i] = false;
        }
        if (delete_files)
                pm_log_file_remove(&a->file);
        else
                pm_log_file_close(&a->file);
        app_handle_closed(a);
}

/* An app of the agent's: listens on fds[] (the agent's sockets) or on
 * sockets of its own. Replaces what was known of it. */
static int app_add(const char *id, const int fds[2]) {
        LogApp *old = pm_hashmap_get(&logd.apps, id), *a;
        if (old)
                app_remove(old, false);
        int r = app_new(id, &a);
        if (r < 0)
                return r;
        r = pm_hashmap_put(&logd.apps, a->id, a);
        if (r < 0) {
                app_free(a);
                return r;
        }
        for (int i = 0; i < 2 && r >= 0; i++)
                r = app_listen(a, i ? PM_LOG_STDERR : PM_LOG_STDOUT, fds ? fds[i] : -1);
        if (r < 0)
                app_remove(a, false);
        return r;
}

/* ---- the agent's datagrams -------------------------------------------------- */

static void on_control(uv_poll_t *h, int status, int events) {
        char text[128];
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 2)];
        } control;
        struct iovec iov = { text, sizeof(text) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t n = recvmsg(logd.control_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return;
        text[n] = '\0';
        int fds[2] = { -1, -1 }, n_fds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        n_fds = (int) ((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                        memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t) (n_fds > 2 ? 2 : n_fds));
                }
        char id[PM_APP_ID_LEN + 1], unit[96];
        bool add = startswith(text, "add ") && n_fds == 2 && (mh.msg_flags & MSG_CTRUNC) == 0;
        const char *arg = add ? text + 4 : startswith(text, "remove ") ? text + 7 : "";
        pm_unit_name(arg, unit, sizeof(unit));
        if (!pm_unit_id_from_name(unit, id)) {
                pm_log_warning("ignoring a malformed request from the agent");
                add = false;
        } else if (add) {
                int r = app_add(id, fds);
                if (r < 0)
                        pm_log_warning("app %s: cannot take its log sockets: %s", id, strerror(-r));
                else
                        fds[0] = fds[1] = -1; /* the listeners own them */
        } else {
                LogApp *a = pm_hashmap_get(&logd.apps, id);
                if (a)
                        app_remove(a, true);
        }
        for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

static int control_open(void) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/" PM_LOGD_SOCKET_NAME, logd.state_dir) < 0)
                return -ENOMEM;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        logd.control_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (logd.control_fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(logd.control_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        int r = uv_poll_init(logd.loop, &logd.control, logd.control_fd);
        if (r >= 0)
                r = uv_poll_start(&logd.control, UV_READABLE, on_control);
        return r;
}

/* ---- start-up ----------------------------------------------------------------- */

static void add_recorded_apps(void) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/apps", logd.state_dir) < 0)
                return;
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len != PM_APP_ID_LEN + 5 || !streq(de->d_name + PM_APP_ID_LEN, ".json"))
                        continue;
                de->d_name[PM_APP_ID_LEN] = '\0';
                int r = app_add(de->d_name, NULL);
                if (r < 0)
                        pm_log_warning("app %s: cannot listen for its output: %s", de->d_name, strerror(-r));
        }
        closedir(d);
}

/* A stream a previous run gave the keeper: "<id>.<out|err>.<n>". One whose
 * app is gone goes into *stale, for the keeper to drop once it has given
 * everything (it does not read while it gives). */
typedef struct StaleNames {
        char **v;
        size_t n;
} StaleNames;

static void stale_add(StaleNames *s, const char *name) {
        char **v = realloc(s->v, (s->n + 1) * sizeof(char *));
        char *copy = v ? strdup(name) : NULL;
        if (v)
                s->v = v;
        if (!copy) {
                pm_log_warning("stream %s: kept on, out of memory", name);
                return;
        }
        s->v[s->n++] = copy;
}

static void take_kept_stream(const char *name, int fd, void *userdata) {
        StaleNames *stale = userdata;
        char id[PM_APP_ID_LEN + 1];
        unsigned long long seq = 0;
        char kind[4] = "";
        LogApp *a = NULL;
        if (sscanf(name, "%32[0-9a-f].%3[a-z].%llu", id, kind, &seq) == 3)
                a = pm_hashmap_get(&logd.apps, id);
        LogConn *c = a ? conn_new(a, streq(kind, "err") ? PM_LOG_STDERR : PM_LOG_STDOUT) : NULL;
        bool opened = c && uv_pipe_open(&c->pipe, fd) >= 0;
        if (opened && conn_start(c, name) >= 0) {
                if (seq > logd.conn_seq)
                        logd.conn_seq = seq;
                return;
        }
        stale_add(stale, name);
        if (c) {
                c->fdname[0] = '\0'; /* dropped with the others, below */
                conn_close(c);
        }
        if (!opened)
                close(fd);
}

static void keep_conns_of(void *value, void *userdata) {
        for (LogConn *c = ((LogApp *) value)->conns; c && logd.keeper_fd >= 0; c = c->next)
                keeper_keep(c);
}

static void on_keeper_event(uv_poll_t *h, int status, int events) {
        /* It never speaks unasked: anything here is its end. */
        keeper_lost();
}

static void keeper_watch(void) {
        uv_poll_init(logd.loop, &logd.keeper_poll, logd.keeper_fd);
        /* libuv made it non-blocking; its sends wait (2 s at most) instead,
         * the keeper being a local process that only stores what it gets. */
        int flags = fcntl(logd.keeper_fd, F_GETFL);
        if (flags >= 0)
                (void) fcntl(logd.keeper_fd, F_SETFL, flags & ~O_NONBLOCK);
        uv_poll_start(&logd.keeper_poll, UV_READABLE | UV_DISCONNECT, on_keeper_event);
}

/* A new keeper holds nothing: it gets a copy of every stream read now. */
static void on_keeper_retry(uv_timer_t *t) {
        if (logd.keeper_poll_closing)
                return; /* the last one's handle is not closed yet */
        int fd = pm_logkeep_connect(logd.state_dir);
        if (fd < 0)
                return;
        uv_timer_stop(&logd.keeper_retry);
        logd.keeper_fd = fd;
        keeper_watch();
        pm_hashmap_foreach(&logd.apps, keep_conns_of, NULL);
        if (logd.keeper_fd >= 0)
                pm_log_info("log keeper back: it holds the open streams again");
}

static void on_keeper_poll_closed(uv_handle_t *h) {
        /* Closed only now, so that no new socket can take its number first. */
        close((int) (intptr_t) h->data);
        logd.keeper_poll_closing = false;
}

static void keeper_lost(void) {
        if (logd.keeper_fd < 0)
                return;
        pm_log_warning("log keeper gone: a restart of this daemon now would cut the apps' streams");
        logd.keeper_poll.data = (void *) (intptr_t) logd.keeper_fd;
        logd.keeper_poll_closing = true;
        uv_close((uv_handle_t *) &logd.keeper_poll, on_keeper_poll_closed);
        logd.keeper_fd = -1;
        uv_timer_start(&logd.keeper_retry, on_keeper_retry, KEEPER_RETRY_MS, KEEPER_RETRY_MS);
}

/* At start: the keeper is ordered before this daemon, but give it a moment
 * (bounded) before going on without the streams of a previous run. */
static void keeper_start(void) {
        uv_timer_init(logd.loop, &logd.keeper_retry);
        int fd = -ENOENT;
        for (int i = 0; i < 20 && fd < 0; i++) {
                fd = pm_logkeep_connect(logd.state_dir);
                if (fd < 0)
                        usleep(100 * 1000);
        }
        if (fd < 0) {
                pm_log_warning("no log keeper: %s", strerror(-fd));
                uv_timer_start(&logd.keeper_retry, on_keeper_retry, KEEPER_RETRY_MS, KEEPER_RETRY_MS);
                return;
        }
        logd.keeper_fd = fd;
        keeper_watch();
        StaleNames stale = { 0 };
        int n = pm_logkeep_give(fd, take_kept_stream, &stale);
        if (n < 0) {
                pm_log_warning("cannot take the kept streams back: %s", strerror(-n));
                keeper_lost();
        }
        for (size_t i = 0; i < stale.n; i++) {
                keeper_drop(stale.v[i]);
                free(stale.v[i]);
        }
        free(stale.v);
}

static void close_handle(uv_handle_t *h, void *arg) {
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

static void on_stop(uv_signal_t *h, int signum) {
        sd_notify(0, "STOPPING=1");
        uv_stop(logd.loop);
}

int pm_logd_main(const char *state_dir) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        logd = (Logd){ .loop = &loop, .state_dir = state_dir, .control_fd = -1, .keeper_fd = -1 };
        pm_hashmap_init(&logd.apps);
        _cleanup_free_ char *logs = NULL;
        if (asprintf(&logs, "%s/logs", state_dir) < 0)
                return -ENOMEM;
        int r = pm_mkdir_p(logs, 0700);
        if (r < 0) {
                pm_log_error("cannot create %s: %s", logs, strerror(-r));
                return r;
        }
        r = control_open();
        if (r < 0) {
                pm_log_error("cannot listen on %s/" PM_LOGD_SOCKET_NAME ": %s", state_dir, strerror(-r));
                return r;
        }
        add_recorded_apps();
        keeper_start();
        uv_signal_init(&loop, &logd.sig_term);
        uv_signal_start(&logd.sig_term, on_stop, SIGTERM);
        sd_notifyf(0, "READY=1\nSTATUS=keeping the logs of %zu apps", pm_hashmap_size(&logd.apps));
        uv_run(&loop, UV_RUN_DEFAULT);
        /* Stopping: the streams stay with the keeper for the next run, so
         * their handles are closed here without telling it. */
        uv_walk(&loop, close_handle, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        if (logd.control_fd >= 0)
                close(logd.control_fd);
        return 0;
}
