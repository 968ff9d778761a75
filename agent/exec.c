#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "context.h"
#include "processes.h"
#include "log.h"
#include "util.h"

#define CODE(x) PODMUTATOR__V1__CODE__CODE_##x
#define PIPE_SIZE (256 * 1024)
/* Output is read in pieces this large: one frame each. */
#define READ_SIZE (256 * 1024)
/* After the unit is gone, output still in the pipes is read for this long. */
#define DRAIN_TIMEOUT_MS 2000
/* A stopped exec gets this long after its stop signal before SIGKILL. */
#define STOP_GRACE_USEC (2 * USEC_PER_SEC)

typedef Podmutator__V1__ExecRequest ExecRequest;
typedef Podmutator__V1__ExecSyncRequest ExecSyncRequest;
typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;

/* One fd of the command's stdio, seen from the agent. */
typedef struct Port {
        ExecSession *s;
        int fd;
        uint32_t stream;  /* the output stream it feeds (1, 2); 0 for stdin only */
        bool reads;       /* output to read from it */
        bool writes;      /* stdin to write into it */
        bool eof;         /* no more output */
        bool polling;     /* poll handle initialised */
        int events;       /* what the poll handle waits for now */
        bool close_when_written;
        uv_poll_t poll;
        uint8_t *wbuf;    /* stdin not yet taken by the command: [woff, woff + wlen) of wcap */
        size_t woff;
        size_t wlen;
        size_t wcap;
} Port;

typedef struct Capture {
        uint8_t *data;
        size_t len;
        size_t limit;
        bool truncated;
} Capture;

struct ExecSession {
        Manager *m;
        ExecSession *prev, *next; /* m->sessions */
        char app_id[PM_APP_ID_LEN + 1];
        unsigned n_ref;    /* the session, its job callback, each open handle */
        Call *call;        /* until answered */
        bool sync;
        bool tty;
        char unit[64];
        char *path;        /* the unit's object path: key in m->execs */
        Port out, err, in; /* with a tty, `out` is the pty master and takes stdin too */
        int pty_slave;     /* held until systemd opened the terminal */
        Capture capture[2];
        bool output_paused, input_paused;
        bool seen_active, start_failed, unit_done, answered, cancelled, stop_sent;
        char error[256];
        PmCode error_code;
        uint32_t timeout_s;
        AppExit exit;
        char result[32];
        uv_timer_t drain_timer;
        bool drain_timer_open;
};

static void session_unref(ExecSession *s);
static void maybe_finish(ExecSession *s);

static ExecSession *session_ref(ExecSession *s) {
        s->n_ref++;
        return s;
}

static void session_unref(ExecSession *s) {
        if (--s->n_ref > 0)
                return;
        if (s->path) {
                pm_hashmap_remove(&s->m->execs, s->path);
                free(s->path);
        }
        if (s->prev)
                s->prev->next = s->next;
        else if (s->m->sessions == s)
                s->m->sessions = s->next;
        if (s->next)
                s->next->prev = s->prev;
        if (s->pty_slave >= 0)
                close(s->pty_slave);
        free(s->in.wbuf);
        free(s->out.wbuf);
        free(s->capture[0].data);
        free(s->capture[1].data);
        free(s);
}

/* Ports ----------------------------------------------------------------- */

static void on_port_closed(uv_handle_t *h) {
        Port *p = h->data;
        close(p->fd);
        p->fd = -1;
        session_unref(p->s);
}

static void port_close(Port *p) {
        if (p->polling) {
                p->polling = false;
                uv_close((uv_handle_t *) &p->poll, on_port_closed);
        } else if (p->fd >= 0) {
                close(p->fd);
                p->fd = -1;
        }
        p->eof = true;
        p->writes = false;
        p->wlen = 0;
}

static void on_port_io(uv_poll_t *h, int status, int events);

static void port_update(Port *p) {
        if (!p->polling)
                return;
        int ev = 0;
        if (p->reads && !p->eof && !p->s->output_paused)
                ev |= UV_READABLE;
        if (p->writes && p->wlen > 0)
                ev |= UV_WRITABLE;
        if (ev == p->events)
                return;
        p->events = ev;
        if (ev)
                uv_poll_start(&p->poll, ev, on_port_io);
        else
                uv_poll_stop(&p->poll);
}

static void update_outputs(ExecSession *s) {
        port_update(&s->out);
        port_update(&s->err);
}

static int port_open(ExecSession *s, Port *p, int fd, uint32_t stream, bool reads, bool writes) {
        *p = (Port){ .s = s, .fd = fd, .stream = stream, .reads = reads, .writes = writes, .eof = !reads,
                     .events = -1 };
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        int r = uv_poll_init(s->m->loop, &p->poll, fd);
        if (r < 0)
                return r;
        p->poll.data = p;
        p->polling = true;
        session_ref(s);
        port_update(p);
        return 0;
}

static void capture_append(Capture *c, const uint8_t *data, size_t size) {
        size_t room = c->limit - c->len;
        if (size > room) {
                c->truncated = true;
                size = room;
        }
        if (size == 0)
                return;
        uint8_t *n = realloc(c->data, c->len + size);
        if (!n) {
                c->truncated = true;
                return;
        }
        c->data = n;
        memcpy(c->data + c->len, data, size);
        c->len += size;
}

/* Output goes to the client in the buffer it was read into: buf holds
 * PM_FRAME_DATA_HEADROOM bytes, then the data; deliver() takes it. */
static void deliver(ExecSession *s, uint32_t stream, uint8_t *buf, size_t size) {
        if (s->sync || !s->call || s->answered) {
                if (s->sync)
                        capture_append(&s->capture[stream - 1], buf + PM_FRAME_DATA_HEADROOM, size);
                free(buf);
                return;
        }
        pm_call_send_data_buffer(s->call, stream, buf, size);
        if (pm_call_backlogged(s->call)) {
                s->output_paused = true;
                update_outputs(s);
        }
}

static void port_read(Port *p) {
        uint8_t *buf = malloc(PM_FRAME_DATA_HEADROOM + READ_SIZE);
        if (!buf)
                return; /* polled again: no busy loop, the next turn retries */
        ssize_t n = read(p->fd, buf + PM_FRAME_DATA_HEADROOM, READ_SIZE);
        if (n <= 0) {
                free(buf);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                /* EOF, or EIO from a pty master whose terminal is closed. */
                p->eof = true;
                port_update(p);
                maybe_finish(p->s);
                return;
        }
        /* A short read keeps only what it holds until the client takes it. */
        if ((size_t) n < READ_SIZE / 2) {
                uint8_t *small = realloc(buf, PM_FRAME_DATA_HEADROOM + (size_t) n);
                if (small)
                        buf = small;
        }
        deliver(p->s, p->stream, buf, (size_t) n);
}

static void set_input_paused(ExecSession *s, bool pause) {
        if (s->input_paused == pause || !s->call)
                return;
        s->input_paused = pause;
        pm_call_pause_input(s->call, pause);
}

static void port_write(Port *p) {
        ssize_t n = write(p->fd, p->wbuf + p->woff, p->wlen);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n < 0) {
                /* The command closed its stdin: what is left goes nowhere. */
                p->wlen = 0;
                p->writes = false;
        } else {
                p->woff += (size_t) n;
                p->wlen -= (size_t) n;
        }
        if (p->wlen == 0)
                p->woff = 0;
        if (p->wlen < PM_BACKLOG_LOW)
                set_input_paused(p->s, false);
        if (p->wlen == 0 && p->close_when_written && p != &p->s->out)
                port_close(p);
        else
                port_update(p);
}

static void on_port_io(uv_poll_t *h, int status, int events) {
        Port *p = h->data;
        if (status < 0) {
                port_close(p);
                maybe_finish(p->s);
                return;
        }
        if ((events & UV_WRITABLE) && p->writes && p->wlen > 0)
                port_write(p);
        if ((events & UV_READABLE) && p->reads && !p->eof)
                port_read(p);
}

/* The stream from the client ------------------------------------------- */

static Port *stdin_port(ExecSession *s) { return s->tty ? &s->out : &s->in; }

static void on_stream_data(void *userdata, uint32_t fd, const uint8_t *data, size_t size) {
        ExecSession *s = userdata;
        Port *p = stdin_port(s);
        if (fd != 0 || !p->writes || p->close_when_written || size == 0)
                return;
        /* Appended at the end; what was written is dropped from the front
         * only when the space is needed, and the buffer only grows. */
        if (p->woff + p->wlen + size > p->wcap && p->woff > 0) {
                memmove(p->wbuf, p->wbuf + p->woff, p->wlen);
                p->woff = 0;
        }
        if (p->wlen + size > p->wcap) {
                size_t cap = p->wcap ? p->wcap : 256 * 1024;
                while (cap < p->wlen + size)
                        cap *= 2;
                uint8_t *n = realloc(p->wbuf, cap);
                if (!n)
                        return;
                p->wbuf = n;
                p->wcap = cap;
        }
        memcpy(p->wbuf + p->woff + p->wlen, data, size);
        p->wlen += size;
        if (p->wlen > PM_BACKLOG_HIGH)
                set_input_paused(s, true);
        port_update(p);
}

static void on_stream_end(void *userdata, uint32_t fd) {
        ExecSession *s = userdata;
        Port *p = stdin_port(s);
        if (fd != 0 || !p->writes || s->tty)
                return;
        p->close_when_written = true;
        if (p->wlen == 0)
                port_close(p);
}

static void on_stream_resize(void *userdata, uint32_t rows, uint32_t cols) {
        ExecSession *s = userdata;
        if (!s->tty || s->out.fd < 0 || rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
                return;
        struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };
        (void) ioctl(s->out.fd, TIOCSWINSZ, &ws);
}

/* Stops the command: its stop signal (SIGHUP for a terminal), SIGKILL
 * after STOP_GRACE_USEC; both set on the unit. */
static void stop_command(ExecSession *s) {
        if (s->stop_sent || s->unit_done)
                return;
        s->stop_sent = true;
        pm_systemd_stop_unit_nowait(s->m, s->unit);
}

static void on_stream_cancel(void *userdata) {
        ExecSession *s = userdata;
        s->cancelled = true;
        stop_command(s);
}

static void on_stream_drain(void *userdata) {
        ExecSession *s = userdata;
        s->output_paused = false;
        update_outputs(s);
}

static void on_stream_close(void *userdata) {
        ExecSession *s = userdata;
        s->output_paused = false;
        s->input_paused = false;
        stop_command(s);
        update_outputs(s); /* keep draining the pipes into nowhere */
}

static const StreamOps exec_stream_ops = {
        .on_data = on_stream_data,
        .on_end = on_stream_end,
        .on_resize = on_stream_resize,
        .on_cancel = on_stream_cancel,
        .on_drain = on_stream_drain,
        .on_close = on_stream_close,
};

/* The answer ------------------------------------------------------------- */

static void answer_exit(ExecSession *s) {
        Podmutator__V1__ExecResponse er = PODMUTATOR__V1__EXEC_RESPONSE__INIT;
        Podmutator__V1__ExecSyncResponse sr = PODMUTATOR__V1__EXEC_SYNC_RESPONSE__INIT;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        const char *sig, *reason;
        int32_t code;
        pm_exit_summary(&s->exit, &code, &sig, &reason);
        if (s->sync) {
                sr.exit_code = code;
                sr.signal = (char *) (sig ? sig : "");
                sr.reason = (char *) reason;
                sr.stdout.data = s->capture[0].data;
                sr.stdout.len = s->capture[0].len;
                sr.stderr.data = s->capture[1].data;
                sr.stderr.len = s->capture[1].len;
                sr.stdout_truncated = s->capture[0].truncated;
                sr.stderr_truncated = s->capture[1].truncated;
                resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_EXEC_SYNC;
                resp.exec_sync = &sr;
        } else {
                er.exit_code = code;
                er.signal = (char *) (sig ? sig : "");
                er.reason = (char *) reason;
                resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_EXEC;
                resp.exec = &er;
        }
        pm_call_reply(s->call, &resp);
}

static void answer(ExecSession *s) {
        s->answered = true;
        set_input_paused(s, false);
        if (s->error_code != CODE(OK))
                pm_call_fail(s->call, s->error_code, "%s", s->error);
        else if (s->cancelled)
                pm_call_fail(s->call, CODE(CANCELLED), "the command was cancelled and stopped");
        else if (streq(s->result, "timeout"))
                pm_call_fail(s->call, CODE(DEADLINE_EXCEEDED),
                             "the command ran past its timeout of %u s and was killed", s->timeout_s);
        else if (s->start_failed && s->exit.known && s->exit.code == CLD_EXITED && s->exit.status >= 200)
                pm_call_fail(s->call, CODE(FAILED_PRECONDITION),
                             "the command could not be started (systemd exit status %d: %s)",
                             s->exit.status,
                             s->exit.status == 203 ? "not found or not executable" : "setting up its process failed");
        else if (!s->exit.known)
                pm_call_fail(s->call, CODE(INTERNAL), "the command ended but systemd did not say how");
        else
                answer_exit(s);
        s->call = NULL;
}

static void on_drain_timeout(uv_timer_t *t) {
        ExecSession *s = t->data;
        /* Output held back for a slow client is still on its way. */
        if (s->output_paused) {
                uv_timer_start(&s->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
                return;
        }
        /* Whatever still holds the pipes is not ours to wait for. */
        s->out.eof = s->err.eof = true;
        maybe_finish(s);
}

static void on_timer_closed(uv_handle_t *h) { session_unref(h->data); }

static bool outputs_done(ExecSession *s) { return s->out.eof && s->err.eof; }

static void maybe_finish(ExecSession *s) {
        if (s->answered || !s->unit_done)
                return;
        if (!outputs_done(s)) {
                if (!s->drain_timer_open) {
                        uv_timer_init(s->m->loop, &s->drain_timer);
                        s->drain_timer.data = session_ref(s);
                        s->drain_timer_open = true;
                        uv_timer_start(&s->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
                }
                return;
        }
        answer(s);
        port_close(&s->out);
        port_close(&s->err);
        port_close(&s->in);
        if (s->drain_timer_open) {
                s->drain_timer_open = false;
                uv_close((uv_handle_t *) &s->drain_timer, on_timer_closed);
        }
        session_unref(s); /* the session's own reference */
}

/* systemd's side ---------------------------------------------------------- */

void pm_exec_unit_changed(ExecSession *s, const UnitProps *p) {
        if (p->has_exit && p->exit_usec > 0 && p->has_code && p->code > 0) {
                s->exit = (AppExit){ .known = true,
                                     .code = p->code,
                                     .status = p->has_status ? p->status : 0,
                                     .finished_at = (int64_t) p->exit_usec * NSEC_PER_USEC };
        }
        if (p->has_result)
                snprintf(s->result, sizeof(s->result), "%s", p->result);
        if (!p->has_active)
                return;
        if (p->active == UNIT_ACTIVE || p->active == UNIT_ACTIVATING || p->active == UNIT_DEACTIVATING)
                s->seen_active = true;
        else if (s->seen_active && (p->active == UNIT_INACTIVE || p->active == UNIT_FAILED)) {
                s->unit_done = true;
                maybe_finish(s);
        }
}

void pm_exec_unit_removed(ExecSession *s) {
        s->unit_done = true;
        maybe_finish(s);
}

static void on_exec_started(Manager *m, int r, const char *result, const char *error, void *userdata) {
        ExecSession *s = userdata;
        if (s->pty_slave >= 0) {
                close(s->pty_slave);
                s->pty_slave = -1;
        }
        if (r < 0) {
                s->error_code = CODE(FAILED_PRECONDITION);
                snprintf(s->error, sizeof(s->error), "systemd refused the command: %s", strempty(error));
                s->unit_done = true;
                s->out.eof = s->err.eof = true;
        } else if (!streq(result, "done")) {
                s->start_failed = true;
                s->unit_done = s->unit_done || !s->seen_active;
        } else if (s->cancelled || !s->call)
                stop_command(s);
        maybe_finish(s);
        session_unref(s);
}

/* Setting it up ------------------------------------------------------------ */

static const char *env_lookup(const ExecWorld *w, const char *key) {
        const char *v = NULL;
        for (size_t i = 0; i < w->n_env; i++)
                if (streq(w->env[i]->key, key))
                        v = w->env[i]->value;
        for (size_t i = 0; i < w->n_extra_env; i++)
                if (streq(w->extra_env[i]->key, key))
                        v = w->extra_env[i]->value;
        return v;
}

static int append_strv_prop(sd_bus_message *msg, const char *name, char **strv) {
        int r = sd_bus_message_open_container(msg, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(msg, strv);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        return r;
}

/* Whether entry i of the joined list (the app's, then the request's) is
 * overridden by a later one: systemd takes each key once. */
static bool env_overridden(const ExecWorld *w, size_t i) {
        size_t n = w->n_env + w->n_extra_env;
        const char *key = i < w->n_env ? w->env[i]->key : w->extra_env[i - w->n_env]->key;
        for (size_t j = i + 1; j < n; j++)
                if (streq(key, j < w->n_env ? w->env[j]->key : w->extra_env[j - w->n_env]->key))
                        return true;
        return false;
}

static char **env_strv(const ExecWorld *w) {
        size_t n = w->n_env + w->n_extra_env, k = 0;
        char **strv = calloc(n + 1, sizeof(char *));
        if (!strv)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const EnvEntry *e = i < w->n_env ? w->env[i] : w->extra_env[i - w->n_env];
                if (env_overridden(w, i))
                        continue;
                if (asprintf(&strv[k], "%s=%s", e->key, e->value) < 0) {
                        strv[k] = NULL;
                        strv_freep(&strv);
                        return NULL;
                }
                k++;
        }
        return strv;
}

/* ExecStartEx with "no-env-expand": systemd would otherwise expand $VAR in
 * the arguments, and argv must reach the command byte for byte. */
static int append_exec_start(sd_bus_message *msg, const char *path, char *const *argv, size_t n_argv) {
        int r = sd_bus_message_open_container(msg, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", "ExecStartEx");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'v', "a(sasas)");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(sasas)");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'r', "sasas");
        if (r >= 0)
                r = sd_bus_message_append(msg, "s", path);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n_argv; i++)
                r = sd_bus_message_append(msg, "s", argv[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "as", 1, "no-env-expand");
        for (int i = 0; r >= 0 && i < 4; i++)
                r = sd_bus_message_close_container(msg);
        return r;
}

static int append_stdio(sd_bus_message *msg, ExecSession *s, int in_fd, int out_fd, int err_fd, const char *tty) {
        if (tty)
                return sd_bus_message_append(msg, "(sv)(sv)(sv)(sv)(sv)", "StandardInput", "s", "tty",
                                             "StandardOutput", "s", "tty", "StandardError", "s", "tty", "TTYPath",
                                             "s", tty, "SendSIGHUP", "b", true);
        int r = in_fd >= 0 ? sd_bus_message_append(msg, "(sv)", "StandardInputFileDescriptor", "h", in_fd)
                           : sd_bus_message_append(msg, "(sv)", "StandardInput", "s", "null");
        if (r >= 0)
                r = sd_bus_message_append(msg, "(sv)(sv)", "StandardOutputFileDescriptor", "h", out_fd,
                                          "StandardErrorFileDescriptor", "h", err_fd);
        return r;
}

/* No InaccessiblePaths= here, unlike app units: the agent's dirs are root's
 * alone (0700, socket 0600), and a root command in the pod's root could
 * reach systemd's own socket anyway; an exec is the client's own command,
 * and a mount namespace per exec would double its start time. */
static int append_world(sd_bus_message *msg, ExecSession *s, const ExecWorld *w, const char *exe) {
        _cleanup_strv_free_ char **env = env_strv(w);
        if (!env)
                return -ENOMEM;
        int r = sd_bus_message_append(msg, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s",
                                      "PodMutator exec", "Type", "s", "exec", "DefaultDependencies", "b", false,
                                      "CollectMode", "s", "inactive-or-failed", "KillMode", "s", "control-group",
                                      "KillSignal", "i", s->tty ? SIGHUP : SIGTERM, "TimeoutStopUSec", "t",
                                      (uint64_t) STOP_GRACE_USEC);
        if (r >= 0)
                r = append_exec_start(msg, exe, w->argv, w->n_argv);
        if (r >= 0)
                r = append_strv_prop(msg, "Environment", env);
        if (r >= 0 && !isempty(w->user))
                r = sd_bus_message_append(msg, "(sv)", "User", "s", w->user);
        if (r >= 0 && !isempty(w->group))
                r = sd_bus_message_append(msg, "(sv)", "Group", "s", w->group);
        if (r >= 0 && !isempty(w->working_dir))
                r = sd_bus_message_append(msg, "(sv)", "WorkingDirectory", "s", w->working_dir);
        if (r >= 0 && !isempty(w->rootfs))
                r = sd_bus_message_append(msg, "(sv)", "RootDirectory", "s", w->rootfs);
        if (r >= 0 && s->timeout_s > 0)
                r = sd_bus_message_append(msg, "(sv)", "RuntimeMaxUSec", "t", (uint64_t) s->timeout_s * USEC_PER_SEC);
        if (r >= 0 && w->netns_path)
                r = sd_bus_message_append(msg, "(sv)", "NetworkNamespacePath", "s", w->netns_path);
        else if (r >= 0 && w->private_network)
                r = sd_bus_message_append(msg, "(sv)", "PrivateNetwork", "b", true);
        return r;
}

static int open_pty(ExecSession *s, const ExecOptions *o, char *ret_name, size_t size) {
        int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return -errno;
        if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, ret_name, size) != 0) {
                int r = -errno;
                close(master);
                return r;
        }
        /* Held open until systemd has opened the terminal: a pty with no
         * open terminal side reads as ended. */
        s->pty_slave = open(ret_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s->pty_slave < 0) {
                int r = -errno;
                close(master);
                return r;
        }
        if (o->rows > 0 && o->cols > 0 && o->rows <= 65535 && o->cols <= 65535) {
                struct winsize ws = { .ws_row = (unsigned short) o->rows, .ws_col = (unsigned short) o->cols };
                (void) ioctl(master, TIOCSWINSZ, &ws);
        }
        return port_open(s, &s->out, master, 1, true, o->want_stdin);
}

/* A pipe whose one end the agent polls; the other is returned for systemd. */
static int open_pipe(ExecSession *s, Port *p, uint32_t stream, bool agent_reads, int *ret_child_fd) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        int mine = agent_reads ? fds[0] : fds[1], theirs = agent_reads ? fds[1] : fds[0];
        (void) fcntl(mine, F_SETPIPE_SZ, PIPE_SIZE);
        int r = port_open(s, p, mine, stream, agent_reads, !agent_reads);
        if (r < 0) {
                close(mine);
                close(theirs);
                return r;
        }
        *ret_child_fd = theirs;
        return 0;
}

/* The fds systemd gets; -1 where it has none. */
typedef struct ChildFds {
        int in, out, err;
        char tty[64];
} ChildFds;

static void child_fds_close(ChildFds *c) {
        int *fds[] = { &c->in, &c->out, &c->err };
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (*fds[i] >= 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                }
}

static int open_stdio(ExecSession *s, const ExecOptions *o, ChildFds *c) {
        s->in = s->err = (Port){ .s = s, .fd = -1, .eof = true };
        if (s->tty)
                return open_pty(s, o, c->tty, sizeof(c->tty));
        int r = open_pipe(s, &s->out, 1, true, &c->out);
        if (r >= 0)
                r = open_pipe(s, &s->err, 2, true, &c->err);
        if (r >= 0 && o->want_stdin)
                r = open_pipe(s, &s->in, 0, false, &c->in);
        if (r >= 0 && o->stdin_size > 0) {
                s->in.wbuf = malloc(o->stdin_size);
                if (!s->in.wbuf)
                        return -ENOMEM;
                memcpy(s->in.wbuf, o->stdin_data, o->stdin_size);
                s->in.wlen = s->in.wcap = o->stdin_size;
                s->in.close_when_written = true;
                port_update(&s->in);
        }
        return r;
}

static int send_start(ExecSession *s, const ExecWorld *w, const char *exe, ChildFds *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r = pm_systemd_new_transient(s->m, s->unit, &msg);
        if (r >= 0)
                r = append_world(msg, s, w, exe);
        if (r >= 0)
                r = append_stdio(msg, s, c->in, c->out, c->err, s->tty ? c->tty : NULL);
        if (r < 0)
                return r;
        /* The job callback holds a reference. */
        session_ref(s);
        r = pm_systemd_start_transient(s->m, msg, on_exec_started, s);
        if (r < 0)
                session_unref(s);
        return r;
}

size_t pm_exec_units_of(Manager *m, const char *app_id, const char **units, size_t max) {
        size_t n = 0;
        for (ExecSession *s = m->sessions; s && n < max; s = s->next)
                if (streq(s->app_id, app_id) && !s->answered)
                        units[n++] = s->unit;
        return n;
}

static ExecSession *session_new(Call *call, const ExecOptions *o, const char *prefix) {
        ExecSession *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        *s = (ExecSession){ .m = call->m, .n_ref = 1, .call = call, .sync = o->sync, .tty = o->tty,
                            .pty_slave = -1, .timeout_s = o->timeout_s };
        s->out = s->err = s->in = (Port){ .s = s, .fd = -1, .eof = true };
        size_t limit = o->output_limit == 0 || o->output_limit > PM_EXEC_SYNC_OUTPUT_MAX ? PM_EXEC_SYNC_OUTPUT_MAX
                                                                                         : o->output_limit;
        s->capture[0].limit = s->capture[1].limit = limit;
        char id[17];
        if (pm_random_hex(id, 8) < 0 || snprintf(s->unit, sizeof(s->unit), "%s-%s.service", prefix, id) < 0 ||
            sd_bus_path_encode("/org/freedesktop/systemd1/unit", s->unit, &s->path) < 0 ||
            pm_hashmap_put(&s->m->execs, s->path, s) < 0) {
                free(s->path);
                free(s);
                return NULL;
        }
        s->next = s->m->sessions;
        if (s->next)
                s->next->prev = s;
        s->m->sessions = s;
        return s;
}

/* Ends a session that never got going: answers with the error, closes. */
static void session_abort(ExecSession *s, PmCode code, const char *what, int r) {
        s->error_code = code;
        snprintf(s->error, sizeof(s->error), "%s: %s", what, strerror(-r));
        s->unit_done = true;
        s->out.eof = s->err.eof = true;
        maybe_finish(s);
}

void pm_exec_launch(Call *call, const ExecWorld *w, const ExecOptions *o, const char *prefix) {
        Manager *m = call->m;
        if (pm_hashmap_size(&m->execs) >= PM_EXECS_MAX) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "%d commands are running through the agent, the most it takes",
                             PM_EXECS_MAX);
                return;
        }
        _cleanup_free_ char *exe = NULL;
        int r = pm_context_find_executable(w->rootfs, w->argv[0], env_lookup(w, "PATH"), &exe);
        if (r < 0) {
                pm_call_fail(call, CODE(FAILED_PRECONDITION), "command \"%.128s\" not found in the app's root",
                             w->argv[0]);
                return;
        }
        ExecSession *s = session_new(call, o, prefix);
        if (!s) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        snprintf(s->app_id, sizeof(s->app_id), "%s", strempty(w->app_id));
        pm_call_attach_stream(call, &exec_stream_ops, s);

        ChildFds c = { .in = -1, .out = -1, .err = -1 };
        r = open_stdio(s, o, &c);
        if (r < 0) {
                child_fds_close(&c);
                session_abort(s, CODE(RESOURCE_EXHAUSTED), "cannot set up the command's stdio", r);
                return;
        }
        r = send_start(s, w, exe, &c);
        /* systemd got its own copies (or nothing): ours go now, so that the
         * pipes end when the command's side closes. */
        child_fds_close(&c);
        if (r < 0)
                session_abort(s, CODE(UNAVAILABLE), "cannot ask systemd to run the command", r);
}

