#include "server.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

#define READ_CHUNK 65536

struct Server {
        Manager *m;
        uv_pipe_t listener;
        Conn *conns;
        unsigned n_conns;
};

typedef struct Stream Stream;
struct Stream {
        Call *call;
        const StreamOps *ops;
        void *userdata;
        Stream *next;
};

struct Conn {
        Server *server; /* NULL once the server is gone */
        Stream *streams;
        unsigned input_pauses;
        uv_timer_t hangup_timer; /* while input is paused: is the client still there? */
        bool hangup_timer_open;
        bool drain_wanted;
        uv_pipe_t pipe;
        unsigned n_ref;  /* the open pipe, and each call in flight */
        unsigned calls_in_flight;
        size_t write_backlog;
        bool hello_done;
        bool closing;
        PmFrameReader reader;
        Conn *prev, *next;
        uint8_t read_buf[READ_CHUNK];
};

typedef struct WriteReq {
        uv_write_t req;
        Conn *conn;
        size_t size;
        uint8_t *data;
} WriteReq;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static Conn *conn_ref(Conn *c) {
        c->n_ref++;
        return c;
}

static void conn_unref(Conn *c) {
        if (--c->n_ref > 0)
                return;
        pm_frame_reader_done(&c->reader);
        free(c);
}

static void on_conn_closed(uv_handle_t *h) { conn_unref(h->data); }
static void on_hangup_timer_closed(uv_handle_t *h) { conn_unref(h->data); }

static Stream *stream_of(Conn *c, uint64_t call_id) {
        for (Stream *s = c->streams; s; s = s->next)
                if (s->call->id == call_id)
                        return s;
        return NULL;
}

static void stream_detach(Conn *c, Call *call) {
        for (Stream **p = &c->streams; *p; p = &(*p)->next)
                if ((*p)->call == call) {
                        Stream *s = *p;
                        *p = s->next;
                        free(s);
                        return;
                }
}

static void conn_close(Conn *c) {
        if (c->closing)
                return;
        c->closing = true;
        /* Streams learn it first; each ends its call now or later, and
         * ending it takes its Stream off the list. */
        for (Stream *s = c->streams, *next; s; s = next) {
                next = s->next;
                s->ops->on_close(s->userdata);
        }
        if (c->hangup_timer_open) {
                c->hangup_timer_open = false;
                uv_close((uv_handle_t *) &c->hangup_timer, on_hangup_timer_closed);
        }
        Server *s = c->server;
        if (s) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->conns = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                s->n_conns--;
        }
        uv_close((uv_handle_t *) &c->pipe, on_conn_closed);
}

static void on_written(uv_write_t *req, int status) {
        WriteReq *w = (WriteReq *) req;
        Conn *c = w->conn;
        c->write_backlog -= w->size;
        if (status < 0)
                conn_close(c);
        else if (c->drain_wanted && c->write_backlog < PM_BACKLOG_LOW) {
                c->drain_wanted = false;
                for (Stream *s = c->streams, *next; s; s = next) {
                        next = s->next;
                        if (s->ops->on_drain)
                                s->ops->on_drain(s->userdata);
                }
        }
        conn_unref(c);
        free(w->data);
        free(w);
}

/* Writes the frame at start (size bytes, inside the malloc()ed block
 * alloc, which the write takes). */
static int conn_send_frame(Conn *c, uint8_t *alloc, const uint8_t *start, size_t size) {
        WriteReq *w = c->closing ? NULL : calloc(1, sizeof(*w));
        if (!w) {
                free(alloc);
                return c->closing ? -ECONNRESET : -ENOMEM;
        }
        w->data = alloc;
        w->size = size;
        if (c->write_backlog + w->size > PM_WRITE_BACKLOG_MAX) {
                pm_log_warning("closing a connection that does not read its replies");
                free(w->data);
                free(w);
                conn_close(c);
                return -ENOBUFS;
        }
        w->conn = conn_ref(c);
        uv_buf_t buf = uv_buf_init((char *) start, (unsigned) w->size);
        int r;
        r = uv_write(&w->req, (uv_stream_t *) &c->pipe, &buf, 1, on_written);
        if (r < 0) {
                conn_unref(c);
                free(w->data);
                free(w);
                conn_close(c);
                return r;
        }
        c->write_backlog += w->size;
        return 0;
}

static int conn_send(Conn *c, const PmEnvelope *env) {
        if (c->closing)
                return -ECONNRESET;
        uint8_t *frame;
        size_t size;
        int r = pm_frame_encode(env, &frame, &size);
        if (r < 0)
                return r;
        return conn_send_frame(c, frame, frame, size);
}

static void send_error(Conn *c, uint64_t call_id, PmCode code, const char *message) {
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.code = code;
        resp.message = (char *) message;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.call_id = call_id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE;
        env.response = &resp;
        conn_send(c, &env);
}

/* A protocol error: one answer on call 0, then the connection is closed. */
static void conn_abort(Conn *c, PmCode code, const char *message) {
        pm_log_warning("closing a connection: %s", message);
        send_error(c, 0, code, message);
        uv_read_stop((uv_stream_t *) &c->pipe);
        conn_close(c);
}

void pm_call_reply(Call *call, PmResponse *resp) {
        Conn *c = call->conn;
        stream_detach(c, call);
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.call_id = call->id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE;
        env.response = resp;
        int r = conn_send(c, &env);
        if (r == -EMSGSIZE)
                send_error(c, call->id, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED,
                           "the answer is larger than the frame limit; narrow the request");
        c->calls_in_flight--;
        conn_unref(c);
        free(call);
}

void pm_call_fail(Call *call, PmCode code, const char *fmt, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&message, fmt, ap) < 0)
                message = NULL;
        va_end(ap);
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.code = code;
        resp.message = message ? message : (char *) "out of memory";
        pm_call_reply(call, &resp);
}

static void handle_hello(Conn *c, uint64_t call_id, const Podmutator__V1__HelloRequest *hello) {
        Manager *m = c->server->m;
        if (hello->protocol_version != PM_PROTOCOL_VERSION) {
                char msg[160];
                snprintf(msg, sizeof(msg), "protocol version %u is not supported; this agent speaks %u",
                         hello->protocol_version, PM_PROTOCOL_VERSION);
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION, msg);
                return;
        }
        c->hello_done = true;
        Podmutator__V1__HelloResponse hr = PODMUTATOR__V1__HELLO_RESPONSE__INIT;
        hr.protocol_version = PM_PROTOCOL_VERSION;
        hr.agent_version = (char *) PM_VERSION;
        hr.pod_name = m->pod_name;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_HELLO;
        resp.hello = &hr;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.call_id = call_id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE;
        env.response = &resp;
        conn_send(c, &env);
}

void pm_call_attach_stream(Call *call, const StreamOps *ops, void *userdata) {
        Stream *s = malloc(sizeof(*s));
        if (!s)
                abort(); /* a few bytes; nothing sensible is left to do */
        *s = (Stream){ .call = call, .ops = ops, .userdata = userdata, .next = call->conn->streams };
        call->conn->streams = s;
}

int pm_call_send(Call *call, PmEnvelope *env) {
        env->call_id = call->id;
        return conn_send(call->conn, env);
}

int pm_call_send_data_buffer(Call *call, uint32_t fd, uint8_t *buf, size_t size) {
        uint8_t *start = pm_frame_data_prefix(buf + PM_FRAME_DATA_HEADROOM, call->id, fd, size);
        return conn_send_frame(call->conn, buf, start, (size_t) (buf + PM_FRAME_DATA_HEADROOM + size - start));
}

bool pm_call_backlogged(Call *call) {
        Conn *c = call->conn;
        if (c->write_backlog <= PM_BACKLOG_HIGH)
                return false;
        c->drain_wanted = true;
        return true;
}

/* Not reading a connection hides its hang-up too: look for it now and then. */
static void on_hangup_check(uv_timer_t *t) {
        Conn *c = t->data;
        uv_os_fd_t fd;
        if (c->closing || uv_fileno((uv_handle_t *) &c->pipe, &fd) < 0)
                return;
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                conn_close(c);
}

void pm_call_pause_input(Call *call, bool pause) {
        Conn *c = call->conn;
        if (c->closing || !c->server)
                return;
        if (pause && c->input_pauses++ == 0) {
                uv_read_stop((uv_stream_t *) &c->pipe);
                if (!c->hangup_timer_open) {
                        uv_timer_init(c->server->m->loop, &c->hangup_timer);
                        c->hangup_timer.data = conn_ref(c);
                        c->hangup_timer_open = true;
                }
                uv_timer_start(&c->hangup_timer, on_hangup_check, 200, 200);
        } else if (!pause && c->input_pauses > 0 && --c->input_pauses == 0) {
                uv_read_start((uv_stream_t *) &c->pipe, on_alloc, on_read);
                uv_timer_stop(&c->hangup_timer);
        }
}

/* A frame of an open stream: stdin, its end, a resize, a cancel. */
static void handle_stream_frame(Conn *c, PmEnvelope *env) {
        Stream *s = stream_of(c, env->call_id);
        if (!s) {
                send_error(c, env->call_id, PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION,
                           "no open stream for this call id");
                return;
        }
        switch (env->body_case) {
        case PODMUTATOR__V1__ENVELOPE__BODY_DATA:
                if (s->ops->on_data)
                        s->ops->on_data(s->userdata, env->data->fd, env->data->data.data, env->data->data.len);
                break;
        case PODMUTATOR__V1__ENVELOPE__BODY_END:
                if (s->ops->on_end)
                        s->ops->on_end(s->userdata, env->end->fd);
                break;
        case PODMUTATOR__V1__ENVELOPE__BODY_RESIZE:
                if (s->ops->on_resize)
                        s->ops->on_resize(s->userdata, env->resize->rows, env->resize->cols);
                break;
        case PODMUTATOR__V1__ENVELOPE__BODY_CANCEL: s->ops->on_cancel(s->userdata); break;
        default:
                send_error(c, env->call_id, PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT,
                           "a client sends requests and stream frames, not responses");
        }
}

static void handle_envelope(Conn *c, PmEnvelope *env) {
        if (env->body_case != PODMUTATOR__V1__ENVELOPE__BODY_REQUEST) {
                if (!c->hello_done)
                        conn_abort(c, PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION,
                                   "the first call on a connection must be Hello");
                else
                        handle_stream_frame(c, env);
                return;
        }
        Podmutator__V1__Request *req = env->request;
        if (req->call_case == PODMUTATOR__V1__REQUEST__CALL_HELLO) {
                handle_hello(c, env->call_id, req->hello);
                return;
        }
        if (!c->hello_done) {
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION,
                           "the first call on a connection must be Hello");
                return;
        }
        if (c->calls_in_flight >= PM_CALLS_IN_FLIGHT_MAX) {
                send_error(c, env->call_id, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED,
                           "too many calls in flight on this connection");
                return;
        }
        Call *call = malloc(sizeof(*call));
        if (!call) {
                send_error(c, env->call_id, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED, "out of memory");
                return;
        }
        *call = (Call){ .m = c->server->m, .conn = conn_ref(c), .id = env->call_id };
        c->calls_in_flight++;
        pm_rpc_dispatch(call, req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        Conn *c = h->data;
        *buf = uv_buf_init((char *) c->read_buf, sizeof(c->read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
        Conn *c = stream->data;
        if (n < 0) {
                conn_close(c);
                return;
        }
        int r = pm_frame_reader_feed(&c->reader, (const uint8_t *) buf->base, (size_t) n);
        /* Keep the connection alive while it dispatches what it read. */
        conn_ref(c);
        while (r >= 0 && !c->closing) {
                PmEnvelope *env = NULL;
                r = pm_frame_reader_next(&c->reader, &env);
                if (r <= 0)
                        break;
                handle_envelope(c, env);
                pm_envelope_free(env);
        }
        if (r == -EMSGSIZE)
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED,
                           "frame larger than the limit of " "4 MiB");
        else if (r == -EBADMSG)
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT, "frame is not a valid Envelope");
        else if (r < 0 && !c->closing)
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_INTERNAL, "out of memory reading a frame");
        conn_unref(c);
}

static bool peer_allowed(uv_pipe_t *pipe) {
        uv_os_fd_t fd;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (uv_fileno((uv_handle_t *) pipe, &fd) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        return cred.uid == 0 || cred.uid == geteuid();
}

static void on_connection(uv_stream_t *listener, int status) {
        Server *s = listener->data;
        if (status < 0)
                return;
        Conn *c = calloc(1, sizeof(*c));
        if (!c)
                return;
        c->server = s;
        c->n_ref = 1;
        pm_frame_reader_init(&c->reader, PM_FRAME_MAX);
        uv_pipe_init(s->m->loop, &c->pipe, 0);
        c->pipe.data = c;
        if (uv_accept(listener, (uv_stream_t *) &c->pipe) < 0) {
                c->closing = true;
                uv_close((uv_handle_t *) &c->pipe, on_conn_closed);
                return;
        }
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;

        if (s->n_conns > PM_CONNECTIONS_MAX) {
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED, "too many connections to the agent");
                return;
        }
        if (!peer_allowed(&c->pipe)) {
                conn_abort(c, PODMUTATOR__V1__CODE__CODE_PERMISSION_DENIED, "peer is not allowed to control this pod");
                return;
        }
        uv_read_start((uv_stream_t *) &c->pipe, on_alloc, on_read);
}

int pm_server_start(Manager *m, const char *socket_path) {
        Server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->m = m;
        uv_pipe_init(m->loop, &s->listener, 0);
        s->listener.data = s;
        m->server = s;

        (void) unlink(socket_path);
        /* Created 0600 from the start: no window where others may connect. */
        mode_t old = umask(0177);
        int r = uv_pipe_bind(&s->listener, socket_path);
        umask(old);
        if (r >= 0)
                r = uv_listen((uv_stream_t *) &s->listener, 128, on_connection);
        return r;
}

static void on_server_closed(uv_handle_t *h) { free(h->data); }

void pm_server_stop(Manager *m) {
        Server *s = m->server;
        if (!s)
                return;
        while (s->conns) {
                Conn *c = s->conns;
                conn_close(c);
                c->server = NULL;
        }
        uv_close((uv_handle_t *) &s->listener, on_server_closed);
        m->server = NULL;
}
