#include "pmclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "paths.h"
#include "util.h"

struct PmClient {
        int fd;
        int timeout_ms;
        uint64_t next_call_id;
        PmFrameReader reader;
        char *agent_version;
        char *pod_name;
        uint8_t *out;      /* queued frames, not yet sent: [out_sent, out_len) of out_cap */
        size_t out_len;
        size_t out_sent;
        size_t out_cap;
};

int pm_pod_socket_path(const char *pod, char **ret_path) {
        if (!pm_dns_label_valid(pod))
                return -EINVAL;
        const char *base = getenv("PM_RUN_ROOT");
        if (asprintf(ret_path, "%s/%s/%s", isempty(base) ? PM_NODE_RUN_DIR : base, pod,
                     PM_CONTROL_SOCKET_NAME) < 0)
                return -ENOMEM;
        return 0;
}

/* Waits until fd is ready for events, or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline_ns) {
        for (;;) {
                int64_t left = deadline_ns - pm_now_monotonic_ns();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = events };
                int n = poll(&p, 1, (int) ((left + 999999) / 1000000));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n > 0)
                        return 0;
        }
}

static int64_t deadline_of(const PmClient *c) {
        return pm_now_monotonic_ns() + (int64_t) c->timeout_ms * 1000000;
}

/* The blocking forms of queue/flush and receive, bounded by the timeout. */
static int send_envelope(PmClient *c, const PmEnvelope *env) {
        int r = pm_client_queue(c, env);
        int64_t deadline = deadline_of(c);
        while (r >= 0 && pm_client_queued(c) > 0) {
                r = pm_client_flush(c);
                if (r >= 0 && pm_client_queued(c) > 0)
                        r = wait_fd(c->fd, POLLOUT, deadline);
        }
        return r;
}

static int recv_envelope(PmClient *c, PmEnvelope **ret) {
        int64_t deadline = deadline_of(c);
        for (;;) {
                int r = pm_client_receive(c, ret);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = wait_fd(c->fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

int pm_client_call(PmClient *c, PmRequest *req, PmResponse **ret) {
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.call_id = ++c->next_call_id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_REQUEST;
        env.request = req;

        int r = send_envelope(c, &env);
        /* The agent may have closed after telling us why (call 0): read it. */
        bool closed = r == -EPIPE || r == -ECONNRESET;
        if (r < 0 && !closed)
                return r;

        for (;;) {
                _cleanup_(pm_envelope_freep) PmEnvelope *in = NULL;
                r = recv_envelope(c, &in);
                if (r < 0)
                        return r;
                if (closed && in->call_id != 0)
                        continue;
                /* A response for call 0 is the agent closing the connection
                 * over a protocol error; pass it up as this call's answer. */
                if (in->body_case != PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE)
                        continue;
                if (in->call_id != env.call_id && in->call_id != 0)
                        continue;
                *ret = TAKE_PTR(in->response);
                return 0;
        }
}

static int say_hello(PmClient *c, char **ret_error) {
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        Podmutator__V1__HelloRequest hello = PODMUTATOR__V1__HELLO_REQUEST__INIT;
        hello.protocol_version = PM_PROTOCOL_VERSION;
        hello.client = (char *) "libpmclient/" PM_VERSION;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_HELLO;
        req.hello = &hello;

        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = pm_client_call(c, &req, &resp);
        if (r < 0) {
                if (ret_error)
                        asprintf(ret_error, "no answer from the agent: %s", strerror(-r));
                return r;
        }
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK ||
            resp->result_case != PODMUTATOR__V1__RESPONSE__RESULT_HELLO) {
                if (ret_error)
                        asprintf(ret_error, "the agent refused the connection: %s: %s",
                                 pm_code_name(resp->code), resp->message);
                return resp->code == PODMUTATOR__V1__CODE__CODE_PERMISSION_DENIED    ? -EACCES
                       : resp->code == PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED ? -EUSERS
                                                                                     : -EPROTO;
        }
        c->agent_version = strdup(resp->hello->agent_version);
        c->pod_name = strdup(resp->hello->pod_name);
        if (!c->agent_version || !c->pod_name)
                return -ENOMEM;
        return 0;
}

int pm_client_connect(const char *socket_path, int timeout_ms, PmClient **ret, char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(socket_path) >= sizeof(sa.sun_path)) {
                if (ret_error)
                        asprintf(ret_error, "socket path too long: %s", socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, socket_path);

        PmClient *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
        pm_frame_reader_init(&c->reader, PM_FRAME_MAX_TO_CLIENT);
        _cleanup_(pm_client_freep) PmClient *owned = c;

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                if (ret_error)
                        asprintf(ret_error, "cannot connect to %s: %s", socket_path, strerror(-r));
                return r;
        }
        int r = say_hello(c, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(owned);
        return 0;
}

void pm_client_free(PmClient *c) {
        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        pm_frame_reader_done(&c->reader);
        free(c->out);
        free(c->agent_version);
        free(c->pod_name);
        free(c);
}

int pm_client_fd(const PmClient *c) { return c->fd; }

uint64_t pm_client_new_call_id(PmClient *c) { return ++c->next_call_id; }

size_t pm_client_queued(const PmClient *c) { return c->out_len - c->out_sent; }

int pm_client_queue(PmClient *c, const PmEnvelope *env) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;
        int r = pm_frame_encode(env, &frame, &size);
        if (r < 0)
                return r;
        if (c->out_sent == c->out_len)
                c->out_sent = c->out_len = 0;
        if (c->out_len + size > c->out_cap && c->out_sent > 0) {
                memmove(c->out, c->out + c->out_sent, c->out_len - c->out_sent);
                c->out_len -= c->out_sent;
                c->out_sent = 0;
        }
        if (c->out_len + size > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 65536;
                while (cap < c->out_len + size)
                        cap *= 2;
                uint8_t *n = realloc(c->out, cap);
                if (!n)
                        return -ENOMEM;
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, frame, size);
        c->out_len += size;
        return 0;
}

int pm_client_flush(PmClient *c) {
        while (c->out_sent < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0)
                        return -errno;
                c->out_sent += (size_t) n;
        }
        return 0;
}

int pm_client_receive(PmClient *c, PmEnvelope **ret) {
        for (;;) {
                int r = pm_frame_reader_next(&c->reader, ret);
                if (r != 0)
                        return r;
                uint8_t buf[65536];
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ECONNRESET;
                r = pm_frame_reader_feed(&c->reader, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

const char *pm_client_agent_version(const PmClient *c) { return c->agent_version; }
const char *pm_client_pod_name(const PmClient *c) { return c->pod_name; }

void pm_response_free(PmResponse *resp) {
        podmutator__v1__response__free_unpacked(resp, NULL);
}
