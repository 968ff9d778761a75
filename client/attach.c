#include "attach.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util.h"

#define CHUNK 65536
/* Stdin is read only while less than this waits for the socket. */
#define QUEUE_HIGH (1024 * 1024)

typedef struct Attach {
        PmClient *c;
        const AttachIo *io;
        uint64_t call_id;
        bool stdin_done;
        unsigned interrupts;
} Attach;

void pm_terminal_size(int fd, uint32_t *ret_rows, uint32_t *ret_cols) {
        struct winsize ws = { 0 };
        if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
                ws = (struct winsize){ 0 };
        *ret_rows = ws.ws_row;
        *ret_cols = ws.ws_col;
}

static int queue_body(Attach *a, PmEnvelope *env) {
        env->call_id = a->call_id;
        return pm_client_queue(a->c, env);
}

static int send_stdin(Attach *a) {
        uint8_t buf[CHUNK];
        ssize_t n = read(a->io->in_fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        if (n <= 0) {
                Podmutator__V1__StreamEnd end = PODMUTATOR__V1__STREAM_END__INIT;
                a->stdin_done = true;
                env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_END;
                env.end = &end;
                return queue_body(a, &env);
        }
        Podmutator__V1__StreamData d = PODMUTATOR__V1__STREAM_DATA__INIT;
        d.data.data = buf;
        d.data.len = (size_t) n;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_DATA;
        env.data = &d;
        return queue_body(a, &env);
}

static int send_resize(Attach *a) {
        Podmutator__V1__WindowResize ws = PODMUTATOR__V1__WINDOW_RESIZE__INIT;
        pm_terminal_size(a->io->out_fd, &ws.rows, &ws.cols);
        if (ws.rows == 0)
                return 0;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_RESIZE;
        env.resize = &ws;
        return queue_body(a, &env);
}

static int on_signal(Attach *a, int sfd) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != sizeof(si))
                return 0;
        if (si.ssi_signo == SIGWINCH)
                return send_resize(a);
        if (++a->interrupts > 1)
                return -EINTR;
        Podmutator__V1__Cancel cancel = PODMUTATOR__V1__CANCEL__INIT;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_CANCEL;
        env.cancel = &cancel;
        return queue_body(a, &env);
}

/* Handles what came in; 1 with *ret when the answer is there. */
static int on_socket(Attach *a, PmResponse **ret) {
        for (;;) {
                _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
                int r = pm_client_receive(a->c, &env);
                if (r <= 0)
                        return r;
                if (env->call_id != a->call_id && env->call_id != 0)
                        continue;
                if (env->body_case == PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE) {
                        *ret = TAKE_PTR(env->response);
                        return 1;
                }
                if (env->body_case != PODMUTATOR__V1__ENVELOPE__BODY_DATA)
                        continue;
                int fd = env->data->fd == 2 ? a->io->err_fd : a->io->out_fd;
                r = pm_write_all(fd, env->data->data.data, env->data->data.len);
                if (r < 0)
                        return r;
        }
}

static int pump(Attach *a, int sfd, PmResponse **ret) {
        for (;;) {
                bool want_stdin = a->io->in_fd >= 0 && !a->stdin_done && pm_client_queued(a->c) < QUEUE_HIGH;
                struct pollfd p[3] = {
                        { .fd = pm_client_fd(a->c), .events = POLLIN | (pm_client_queued(a->c) ? POLLOUT : 0) },
                        { .fd = want_stdin ? a->io->in_fd : -1, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                int r = 0;
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = on_socket(a, ret);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }
                if (p[1].revents)
                        r = send_stdin(a);
                if (r >= 0 && (p[2].revents & POLLIN))
                        r = on_signal(a, sfd);
                if (r >= 0)
                        r = pm_client_flush(a->c);
                if (r < 0)
                        return r;
        }
}

int pm_attach(PmClient *c, PmRequest *req, const AttachIo *io, PmResponse **ret) {
        Attach a = { .c = c, .io = io, .call_id = pm_client_new_call_id(c) };
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_REQUEST;
        env.request = req;
        int r = queue_body(&a, &env);
        if (r < 0)
                return r;

        sigset_t mask, old;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (io->tty)
                sigaddset(&mask, SIGWINCH);
        sigprocmask(SIG_BLOCK, &mask, &old);
        _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        r = sfd < 0 ? -errno : pm_client_flush(c);
        if (r >= 0)
                r = pump(&a, sfd, ret);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}
