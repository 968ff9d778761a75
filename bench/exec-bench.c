/* exec-bench: Exec and ExecSync measured through the real protocol with
 * libpmclient, every verb on one connection to the agent.
 *
 *   sync         ExecSync of /bin/true in --app: --warmup unmeasured calls,
 *                then -n measured ones; p50 / p99 of the round trip.
 *   stream-out   Exec of `head -c BYTES /dev/zero`: stdout is consumed here
 *                as fast as it comes, counted, and checked to be BYTES zero
 *                bytes; MiB/s from the request to the answer.
 *   stream-in    Exec -i of `wc -c`: BYTES of stdin sent as StreamData frames
 *                of 64 KiB, honouring flow control; wc must count BYTES.
 *   stream-echo  Exec -i of `cat`: BYTES sent and read back at the same time;
 *                the count and checksum of what came back must match.
 *
 * Streaming uses the queue / flush / receive primitives of libpmclient with
 * poll(): stdin is queued only while nothing waits for the socket, the
 * socket is always polled for input too, so the bench never blocks on a
 * send while output is pending (the agent's flow control, not ours, sets
 * the pace). BYTES is --mib MiB; each stream verb runs --runs times after
 * one unmeasured run of 4 MiB, and prints every run and their median.
 *
 * Output: a table for a person, or with --kv lines "key=value" that
 * bench/run-exec reads (times in ms, rates in MiB/s).
 * Exit status: 0 success, 1 a call failed or a check did not hold,
 * 2 bad command line. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmclient.h"
#include "util.h"

#define PROGRAM "exec-bench"
#define EXIT_USAGE 2

#define MIB (1024u * 1024u)
/* Stdin goes out in frames of this size, one queued at a time and only
 * once the queue is empty: libpmclient resizes its queue to what it holds
 * (for a large one, an mremap per frame) and resets it only when empty;
 * the socket's own buffer keeps the pipe full meanwhile. */
#define FRAME_SIZE (64u * 1024u)
/* The stdin pattern repeats after this many bytes: not a multiple of the
 * frame size nor of a page, so a lost or repeated frame changes the sum. */
#define PATTERN_SIZE (1u * MIB + 4093u)
#define WARMUP_MIB 4u
#define RUNS_MAX 100u
#define MIB_MAX 65536u

typedef Podmutator__V1__ExecRequest ExecRequest;

/* Parsed options: the only mutable globals. */
static const char *arg_socket;
static const char *arg_app;
static const char *arg_namespace;
static const char *arg_label; /* key prefix in --kv output */
static uint32_t arg_calls = 200;
static uint32_t arg_warmup = 10;
static uint32_t arg_mib = 200;
static uint32_t arg_runs = 1;
static uint32_t arg_timeout_s = 60;
static bool arg_kv;

_printf_(1, 2) static int fail(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs(PROGRAM ": ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return -EIO;
}

/* ---- figures ------------------------------------------------------------ */

static int cmp_double(const void *x, const void *y) {
        double a = *(const double *) x, b = *(const double *) y;
        return (a > b) - (a < b);
}

/* Nearest-rank percentile of n sorted values. */
static double percentile(const double *v, size_t n, double p) {
        if (n == 0)
                return NAN;
        size_t rank = (size_t) ceil(p / 100.0 * (double) n);
        return v[rank < 1 ? 0 : rank - 1];
}

/* The median of n values (sorted in place): the mean of the middle two for
 * an even n. */
static double median(double *v, size_t n) {
        if (n == 0)
                return NAN;
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One --kv line: "[LABEL.]GROUP.NAME=value". */
_printf_(3, 4) static void put_kv(const char *group, const char *name, const char *fmt, ...) {
        va_list ap;
        printf("%s%s%s.%s=", arg_label ? arg_label : "", arg_label ? "." : "", group, name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

/* ---- the connection ----------------------------------------------------- */

static int connect_agent(PmClient **ret) {
        _cleanup_free_ char *error = NULL;
        if (!arg_socket)
                return fail("--socket is required");
        if (!arg_app)
                return fail("--app is required");
        int r = pm_client_connect(arg_socket, (int) arg_timeout_s * 1000, ret, &error);
        if (r < 0)
                return fail("%s: %s", arg_socket, error ? error : strerror(-r));
        return 0;
}

/* ---- sync ----------------------------------------------------------------- */

static int exec_sync_true(PmClient *c, int64_t *ret_ns) {
        char *argv[] = {(char *) "/bin/true"};
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        ref.app = (char *) arg_app;
        ref.namespace_ = (char *) strempty(arg_namespace);
        Podmutator__V1__ExecSyncRequest sync = PODMUTATOR__V1__EXEC_SYNC_REQUEST__INIT;
        sync.ref = &ref;
        sync.argv = argv;
        sync.n_argv = ELEMENTSOF(argv);
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_EXEC_SYNC;
        req.exec_sync = &sync;

        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int64_t t0 = pm_now_monotonic_ns();
        int r = pm_client_call(c, &req, &resp);
        int64_t t1 = pm_now_monotonic_ns();
        if (r < 0)
                return fail("ExecSync: transport: %s", strerror(-r));
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK)
                return fail("ExecSync: %s: %s", pm_code_name(resp->code), resp->message);
        if (resp->result_case != PODMUTATOR__V1__RESPONSE__RESULT_EXEC_SYNC)
                return fail("ExecSync: the answer carries no ExecSyncResponse");
        if (resp->exec_sync->exit_code != 0)
                return fail("ExecSync: /bin/true exited with %d (%s)", resp->exec_sync->exit_code,
                            resp->exec_sync->reason);
        *ret_ns = t1 - t0;
        return 0;
}

static int verb_sync(void) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        _cleanup_free_ double *ms = NULL;
        int64_t ns;
        int r = connect_agent(&c);
        if (r < 0)
                return r;
        ms = calloc(arg_calls, sizeof(*ms));
        if (!ms)
                return fail("out of memory");
        for (uint32_t i = 0; i < arg_warmup; i++) {
                r = exec_sync_true(c, &ns);
                if (r < 0)
                        return r;
        }
        for (uint32_t i = 0; i < arg_calls; i++) {
                r = exec_sync_true(c, &ns);
                if (r < 0)
                        return r;
                ms[i] = (double) ns / 1e6;
        }
        qsort(ms, arg_calls, sizeof(*ms), cmp_double);
        double p50 = percentile(ms, arg_calls, 50), p99 = percentile(ms, arg_calls, 99);
        double min = ms[0], max = ms[arg_calls - 1];
        if (arg_kv) {
                put_kv("sync", "n", "%u", arg_calls);
                put_kv("sync", "warmup", "%u", arg_warmup);
                put_kv("sync", "p50_ms", "%.3f", p50);
                put_kv("sync", "p99_ms", "%.3f", p99);
                put_kv("sync", "min_ms", "%.3f", min);
                put_kv("sync", "max_ms", "%.3f", max);
        } else
                printf("ExecSync /bin/true in %s: %u calls after %u unmeasured\n"
                       "  p50 %.3f ms   p99 %.3f ms   min %.3f ms   max %.3f ms\n",
                       arg_app, arg_calls, arg_warmup, p50, p99, min, max);
        return 0;
}

/* ---- checksum ------------------------------------------------------------- */

/* A fast order-sensitive 64-bit checksum of a byte stream, however it is
 * cut: four lanes of multiply-rotate over 32-byte blocks. It guards against
 * lost, repeated, reordered or altered bytes, not against an adversary. */
#define SUM_LANES 4
#define SUM_BLOCK (SUM_LANES * 8)
#define SUM_K UINT64_C(0x9E3779B97F4A7C15)

typedef struct Checksum {
        uint64_t lane[SUM_LANES];
        uint8_t tail[SUM_BLOCK];
        size_t n_tail;
        uint64_t total;
} Checksum;

static void checksum_init(Checksum *s) { *s = (Checksum){.lane = {1, 2, 3, 4}}; }

static inline uint64_t rotl64(uint64_t x, unsigned k) { return (x << k) | (x >> (64 - k)); }

static inline void checksum_block(Checksum *s, const uint8_t *p) {
        for (size_t i = 0; i < SUM_LANES; i++) {
                uint64_t w;
                memcpy(&w, p + 8 * i, sizeof(w));
                s->lane[i] = rotl64((s->lane[i] ^ w) * SUM_K, 29);
        }
}

static void checksum_add(Checksum *s, const uint8_t *p, size_t n) {
        s->total += n;
        if (s->n_tail > 0) {
                size_t k = SUM_BLOCK - s->n_tail < n ? SUM_BLOCK - s->n_tail : n;
                memcpy(s->tail + s->n_tail, p, k);
                s->n_tail += k;
                p += k;
                n -= k;
                if (s->n_tail < SUM_BLOCK)
                        return;
                checksum_block(s, s->tail);
                s->n_tail = 0;
        }
        for (; n >= SUM_BLOCK; p += SUM_BLOCK, n -= SUM_BLOCK)
                checksum_block(s, p);
        memcpy(s->tail, p, n);
        s->n_tail = n;
}

static uint64_t checksum_final(const Checksum *s) {
        Checksum f = *s;
        memset(f.tail + f.n_tail, 0, SUM_BLOCK - f.n_tail);
        checksum_block(&f, f.tail);
        uint64_t h = f.total * SUM_K;
        for (size_t i = 0; i < SUM_LANES; i++)
                h = rotl64((h ^ f.lane[i]) * SUM_K, 31);
        return h;
}

/* ---- stdin pattern ------------------------------------------------------- */

/* PATTERN_SIZE pseudo-random bytes followed by a copy of the first
 * FRAME_SIZE, so that the frame at any stream offset is one slice. */
typedef struct Pattern {
        uint8_t *buf;
} Pattern;

static void pattern_done(Pattern *p) {
        free(p->buf);
        p->buf = NULL;
}

static int pattern_init(Pattern *p) {
        p->buf = malloc(PATTERN_SIZE + FRAME_SIZE);
        if (!p->buf)
                return -ENOMEM;
        uint64_t x = UINT64_C(0x2545F4914F6CDD1D);
        for (size_t i = 0; i < PATTERN_SIZE; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p->buf[i] = (uint8_t) (x >> 24);
        }
        memcpy(p->buf + PATTERN_SIZE, p->buf, FRAME_SIZE);
        return 0;
}

static const uint8_t *pattern_at(const Pattern *p, uint64_t offset) { return p->buf + offset % PATTERN_SIZE; }

/* The checksum of the first `bytes` bytes of the stdin stream. */
static uint64_t pattern_checksum(const Pattern *p, uint64_t bytes) {
        Checksum s;
        checksum_init(&s);
        for (uint64_t off = 0; off < bytes;) {
                size_t n = bytes - off < FRAME_SIZE ? (size_t) (bytes - off) : FRAME_SIZE;
                checksum_add(&s, pattern_at(p, off), n);
                off += n;
        }
        return checksum_final(&s);
}

/* ---- one streaming Exec ------------------------------------------------- */

typedef enum OutputCheck {
        OUTPUT_ZEROS,    /* stdout must be zero bytes */
        OUTPUT_CAPTURE,  /* stdout is short and kept (wc's count) */
        OUTPUT_CHECKSUM, /* stdout is summed */
} OutputCheck;

typedef struct StreamRun {
        /* what to run */
        char **argv;
        size_t n_argv;
        uint64_t in_bytes; /* stdin to send */
        bool want_stdin;
        OutputCheck check;
        /* progress */
        uint64_t call_id;
        uint64_t sent;
        bool end_queued;
        uint64_t out_bytes, err_bytes, frames_in;
        bool out_nonzero;
        Checksum out_sum;
        char capture[64];
        size_t capture_len;
        char err_text[256];
        size_t err_len;
        int64_t t_start, t_first_out, t_last_out, t_end;
        PmResponse *resp;
} StreamRun;

static void stream_run_done(StreamRun *s) {
        if (s->resp)
                pm_response_free(s->resp);
        s->resp = NULL;
}

static bool all_zero(const uint8_t *p, size_t n) {
        static const uint8_t zeros[4096];
        while (n > 0) {
                size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
                if (memcmp(p, zeros, k) != 0)
                        return false;
                p += k;
                n -= k;
        }
        return true;
}

static void keep(char *buf, size_t size, size_t *len, const uint8_t *data, size_t n) {
        size_t room = size - 1 - *len;
        if (n > room)
                n = room;
        memcpy(buf + *len, data, n);
        *len += n;
        buf[*len] = 0;
}

static void on_output(StreamRun *s, const Podmutator__V1__StreamData *d) {
        const uint8_t *p = d->data.data;
        size_t n = d->data.len;
        if (d->fd == 2) {
                s->err_bytes += n;
                keep(s->err_text, sizeof(s->err_text), &s->err_len, p, n);
                return;
        }
        int64_t now = pm_now_monotonic_ns();
        if (s->out_bytes == 0)
                s->t_first_out = now;
        s->t_last_out = now;
        s->out_bytes += n;
        s->frames_in++;
        switch (s->check) {
        case OUTPUT_ZEROS:
                if (!s->out_nonzero && !all_zero(p, n))
                        s->out_nonzero = true;
                break;
        case OUTPUT_CAPTURE:
                keep(s->capture, sizeof(s->capture), &s->capture_len, p, n);
                break;
        case OUTPUT_CHECKSUM:
                checksum_add(&s->out_sum, p, n);
                break;
        }
}

static int queue_envelope(PmClient *c, uint64_t call_id, PmEnvelope *env) {
        env->call_id = call_id;
        return pm_client_queue(c, env);
}

/* Queues the next frame of stdin, and its end after the last byte; only
 * while nothing else waits for the socket. */
static int top_up_stdin(PmClient *c, const Pattern *pat, StreamRun *s) {
        if (!s->want_stdin || s->end_queued || pm_client_queued(c) > 0)
                return 0;
        if (s->sent < s->in_bytes) {
                size_t n = s->in_bytes - s->sent < FRAME_SIZE ? (size_t) (s->in_bytes - s->sent) : FRAME_SIZE;
                Podmutator__V1__StreamData d = PODMUTATOR__V1__STREAM_DATA__INIT;
                d.fd = 0;
                d.data.data = (uint8_t *) pattern_at(pat, s->sent);
                d.data.len = n;
                PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
                env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_DATA;
                env.data = &d;
                int r = queue_envelope(c, s->call_id, &env);
                if (r < 0)
                        return r;
                s->sent += n;
        }
        if (s->sent == s->in_bytes) {
                Podmutator__V1__StreamEnd end = PODMUTATOR__V1__STREAM_END__INIT;
                end.fd = 0;
                PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
                env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_END;
                env.end = &end;
                int r = queue_envelope(c, s->call_id, &env);
                if (r < 0)
                        return r;
                s->end_queued = true;
        }
        return 0;
}

/* Takes in whatever frames are there; 1 once the call's answer came. */
static int take_input(PmClient *c, StreamRun *s) {
        for (;;) {
                _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
                int r = pm_client_receive(c, &env);
                if (r <= 0)
                        return r;
                if (env->call_id != s->call_id && env->call_id != 0)
                        continue;
                if (env->body_case == PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE) {
                        s->t_end = pm_now_monotonic_ns();
                        s->resp = TAKE_PTR(env->response);
                        return 1;
                }
                if (env->body_case == PODMUTATOR__V1__ENVELOPE__BODY_DATA)
                        on_output(s, env->data);
        }
}

/* Runs s's command through Exec and pumps its streams until the answer. */
static int stream_run(PmClient *c, const Pattern *pat, StreamRun *s) {
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        ref.app = (char *) arg_app;
        ref.namespace_ = (char *) strempty(arg_namespace);
        ExecRequest exec = PODMUTATOR__V1__EXEC_REQUEST__INIT;
        exec.ref = &ref;
        exec.argv = s->argv;
        exec.n_argv = s->n_argv;
        exec.stdin = s->want_stdin;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_EXEC;
        req.exec = &exec;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_REQUEST;
        env.request = &req;

        checksum_init(&s->out_sum);
        s->call_id = pm_client_new_call_id(c);
        s->t_start = pm_now_monotonic_ns();
        int r = queue_envelope(c, s->call_id, &env);
        if (r < 0)
                return fail("cannot queue the Exec request: %s", strerror(-r));

        for (;;) {
                r = top_up_stdin(c, pat, s);
                if (r >= 0)
                        r = pm_client_flush(c);
                if (r < 0)
                        return fail("sending to the agent: %s", strerror(-r));
                bool queued = pm_client_queued(c) > 0;
                /* The socket took all that was queued and more stdin is
                 * due: queue it before waiting for anything. */
                if (!queued && s->want_stdin && !s->end_queued) {
                        r = take_input(c, s);
                        if (r != 0)
                                break;
                        continue;
                }
                struct pollfd p = {.fd = pm_client_fd(c), .events = POLLIN | (queued ? POLLOUT : 0)};
                int n = poll(&p, 1, (int) arg_timeout_s * 1000);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return fail("poll: %m");
                if (n == 0)
                        return fail("no progress for %u s: %" PRIu64 " bytes sent, %" PRIu64 " received", arg_timeout_s,
                                    s->sent, s->out_bytes);
                if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = take_input(c, s);
                        if (r != 0)
                                break;
                }
        }
        if (r < 0)
                return fail("receiving from the agent: %s", strerror(-r));

        PmResponse *resp = s->resp;
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK)
                return fail("Exec %s: %s: %s", s->argv[0], pm_code_name(resp->code), resp->message);
        if (resp->result_case != PODMUTATOR__V1__RESPONSE__RESULT_EXEC)
                return fail("Exec %s: the answer carries no ExecResponse", s->argv[0]);
        if (resp->exec->exit_code != 0)
                return fail("Exec %s: exited with %d (%s); stderr: %s", s->argv[0], resp->exec->exit_code,
                            resp->exec->reason, s->err_text);
        if (s->want_stdin && s->sent != s->in_bytes)
                return fail("Exec %s: answered after %" PRIu64 " of %" PRIu64 " bytes of stdin", s->argv[0], s->sent,
                            s->in_bytes);
        if (s->err_bytes > 0)
                return fail("Exec %s: wrote %" PRIu64 " bytes to stderr: %s", s->argv[0], s->err_bytes, s->err_text);
        return 0;
}

/* ---- stream verbs --------------------------------------------------------- */

typedef enum StreamKind {
        STREAM_OUT,
        STREAM_IN,
        STREAM_ECHO,
} StreamKind;

static const char *const stream_key[] = {
        [STREAM_OUT] = "stream_out",
        [STREAM_IN] = "stream_in",
        [STREAM_ECHO] = "stream_echo",
};

static const char *const stream_what[] = {
        [STREAM_OUT] = "Exec stream out (head -c N /dev/zero)",
        [STREAM_IN] = "Exec stream in (-i, wc -c)",
        [STREAM_ECHO] = "Exec stream echo (-i, cat)",
};

typedef struct RunFigures {
        double mib_s; /* request to answer */
        double seconds;
        double first_out_ms; /* request to the first byte of stdout */
        double flow_mib_s;   /* first to last byte of stdout */
} RunFigures;

/* One run of kind with `bytes`; checks what came back. */
static int stream_once(PmClient *c, const Pattern *pat, StreamKind kind, uint64_t bytes, uint64_t expected_sum,
                       RunFigures *ret) {
        char count[32];
        snprintf(count, sizeof(count), "%" PRIu64, bytes);
        char *argv_out[] = {(char *) "head", (char *) "-c", count, (char *) "/dev/zero"};
        char *argv_in[] = {(char *) "wc", (char *) "-c"};
        char *argv_echo[] = {(char *) "cat"};
        StreamRun s = {0};
        switch (kind) {
        case STREAM_OUT:
                s.argv = argv_out;
                s.n_argv = ELEMENTSOF(argv_out);
                s.check = OUTPUT_ZEROS;
                break;
        case STREAM_IN:
                s.argv = argv_in;
                s.n_argv = ELEMENTSOF(argv_in);
                s.want_stdin = true;
                s.in_bytes = bytes;
                s.check = OUTPUT_CAPTURE;
                break;
        case STREAM_ECHO:
                s.argv = argv_echo;
                s.n_argv = ELEMENTSOF(argv_echo);
                s.want_stdin = true;
                s.in_bytes = bytes;
                s.check = OUTPUT_CHECKSUM;
                break;
        }
        int r = stream_run(c, pat, &s);
        if (r >= 0) {
                switch (kind) {
                case STREAM_OUT:
                        if (s.out_bytes != bytes)
                                r = fail("stream out: %" PRIu64 " bytes arrived, %" PRIu64 " expected", s.out_bytes,
                                         bytes);
                        else if (s.out_nonzero)
                                r = fail("stream out: bytes other than zero arrived");
                        break;
                case STREAM_IN: {
                        uint64_t counted;
                        char *nl = strchr(s.capture, '\n');
                        if (nl)
                                *nl = 0;
                        if (pm_parse_u64(s.capture, &counted) < 0)
                                r = fail("stream in: wc -c printed \"%s\", not a count", s.capture);
                        else if (counted != bytes)
                                r = fail("stream in: wc -c counted %" PRIu64 " bytes, %" PRIu64 " were sent", counted,
                                         bytes);
                        break;
                }
                case STREAM_ECHO: {
                        uint64_t sum = checksum_final(&s.out_sum);
                        if (s.out_bytes != bytes)
                                r = fail("stream echo: %" PRIu64 " bytes came back, %" PRIu64 " were sent", s.out_bytes,
                                         bytes);
                        else if (sum != expected_sum)
                                r = fail("stream echo: checksum %016" PRIx64 " of what came back, %016" PRIx64
                                         " of what was sent",
                                         sum, expected_sum);
                        break;
                }
                }
        }
        if (r >= 0) {
                double secs = (double) (s.t_end - s.t_start) / 1e9;
                double flow = (double) (s.t_last_out - s.t_first_out) / 1e9;
                *ret = (RunFigures){
                        .seconds = secs,
                        .mib_s = (double) bytes / MIB / secs,
                        .first_out_ms =
                                kind != STREAM_IN && s.out_bytes > 0 ? (double) (s.t_first_out - s.t_start) / 1e6 : NAN,
                        .flow_mib_s = kind != STREAM_IN && flow > 0 ? (double) s.out_bytes / MIB / flow : NAN,
                };
        }
        stream_run_done(&s);
        return r;
}

/* The median of one figure (a double at offset) over n runs; NaN when the
 * runs have none. */
static double median_of(const RunFigures *runs, size_t n, size_t offset) {
        double v[RUNS_MAX];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                double x;
                memcpy(&x, (const uint8_t *) &runs[i] + offset, sizeof(x));
                if (!isnan(x))
                        v[k++] = x;
        }
        return median(v, k);
}

static int verb_stream(StreamKind kind) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        _cleanup_(pattern_done) Pattern pat = {0};
        RunFigures runs[RUNS_MAX], warm;
        uint64_t bytes = (uint64_t) arg_mib * MIB, warm_bytes = (uint64_t) WARMUP_MIB * MIB;
        uint64_t sum = 0, warm_sum = 0;
        const char *key = stream_key[kind];

        int r = connect_agent(&c);
        if (r < 0)
                return r;
        if (kind != STREAM_OUT) {
                if (pattern_init(&pat) < 0)
                        return fail("out of memory");
                sum = pattern_checksum(&pat, bytes);
                warm_sum = pattern_checksum(&pat, warm_bytes);
        }
        r = stream_once(c, &pat, kind, warm_bytes, warm_sum, &warm);
        if (r < 0)
                return r;
        if (!arg_kv)
                printf("%s, %u MiB, %u run%s on one connection:\n", stream_what[kind], arg_mib, arg_runs,
                       arg_runs == 1 ? "" : "s");
        for (uint32_t i = 0; i < arg_runs; i++) {
                RunFigures *f = &runs[i];
                r = stream_once(c, &pat, kind, bytes, sum, f);
                if (r < 0)
                        return r;
                if (arg_kv) {
                        char name[32];
                        snprintf(name, sizeof(name), "run%u.mib_s", i + 1);
                        put_kv(key, name, "%.1f", f->mib_s);
                        snprintf(name, sizeof(name), "run%u.seconds", i + 1);
                        put_kv(key, name, "%.4f", f->seconds);
                } else {
                        printf("  run %2u: %8.1f MiB/s  %7.3f s", i + 1, f->mib_s, f->seconds);
                        if (!isnan(f->first_out_ms))
                                printf("   first byte after %.2f ms", f->first_out_ms);
                        if (!isnan(f->flow_mib_s))
                                printf(", %.1f MiB/s from first to last byte", f->flow_mib_s);
                        putchar('\n');
                }
                fflush(stdout);
        }

        const char *check = kind == STREAM_OUT  ? "every byte arrived, all zero"
                            : kind == STREAM_IN ? "wc -c counted every byte"
                                                : "every byte came back, checksum equal";
        double mib_s = median_of(runs, arg_runs, offsetof(RunFigures, mib_s));
        double secs = median_of(runs, arg_runs, offsetof(RunFigures, seconds));
        double first = median_of(runs, arg_runs, offsetof(RunFigures, first_out_ms));
        double flow = median_of(runs, arg_runs, offsetof(RunFigures, flow_mib_s));
        if (arg_kv) {
                put_kv(key, "mib", "%u", arg_mib);
                put_kv(key, "runs", "%u", arg_runs);
                put_kv(key, "mib_s", "%.1f", mib_s);
                put_kv(key, "seconds", "%.4f", secs);
                if (!isnan(first))
                        put_kv(key, "first_byte_ms", "%.2f", first);
                if (!isnan(flow))
                        put_kv(key, "flow_mib_s", "%.1f", flow);
                if (kind == STREAM_ECHO)
                        put_kv(key, "checksum", "%016" PRIx64, sum);
                put_kv(key, "check", "ok");
        } else {
                printf("  median: %.1f MiB/s (%.3f s)", mib_s, secs);
                if (!isnan(first))
                        printf("; first byte after %.2f ms", first);
                printf("\n  check: %s", check);
                if (kind == STREAM_ECHO)
                        printf(" (%016" PRIx64 ")", sum);
                putchar('\n');
        }
        return 0;
}

static int verb_stream_out(void) { return verb_stream(STREAM_OUT); }
static int verb_stream_in(void) { return verb_stream(STREAM_IN); }
static int verb_stream_echo(void) { return verb_stream(STREAM_ECHO); }

/* ---- command line ----------------------------------------------------- */

typedef struct Verb {
        const char *name;
        int (*run)(void);
} Verb;

static const Verb verbs[] = {
        {"sync", verb_sync},
        {"stream-out", verb_stream_out},
        {"stream-in", verb_stream_in},
        {"stream-echo", verb_stream_echo},
};

static void help(void) {
        printf("Usage: " PROGRAM " [OPTIONS] VERB\n"
               "\n"
               "Measures Exec and ExecSync of the PodMutator agent through the real\n"
               "protocol, on one connection, in the running app --app.\n"
               "\n"
               "Verbs:\n"
               "  sync         ExecSync of /bin/true: --warmup unmeasured calls, then -n\n"
               "               measured ones; p50 / p99 / min / max in ms\n"
               "  stream-out   Exec of `head -c BYTES /dev/zero`, stdout consumed here;\n"
               "               checks that exactly BYTES zero bytes arrived; MiB/s\n"
               "  stream-in    Exec -i of `wc -c`, BYTES sent in 64 KiB StreamData frames\n"
               "               under flow control; checks wc's count; MiB/s\n"
               "  stream-echo  Exec -i of `cat`, BYTES sent and read back at once;\n"
               "               checks count and checksum; MiB/s\n"
               "BYTES is --mib MiB. Stream verbs make one unmeasured run of %u MiB, then\n"
               "--runs runs, and print each and their median.\n"
               "\n"
               "Options:\n"
               "  --socket PATH      the pod's control socket\n"
               "  --app NAME         a running app to exec into\n"
               "  --namespace NS     its namespace (default \"default\")\n"
               "  -n, --calls N      sync: measured calls (default 200)\n"
               "  --warmup N         sync: unmeasured calls first (default 10; 0 allowed)\n"
               "  --mib M            stream verbs: MiB to stream (default 200)\n"
               "  --runs R           stream verbs: measured runs (default 1, at most %u)\n"
               "  --timeout S        give up after S s without progress (default 60)\n"
               "  --kv               print key=value lines instead of text\n"
               "  --label L          --kv: prefix every key with L.\n"
               "Exit status: 0 success, 1 a call failed or a check did not hold,\n"
               "2 bad command line.\n",
               WARMUP_MIB, RUNS_MAX);
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs(PROGRAM ": ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\nTry '" PROGRAM " --help'.\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

static int parse_number(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *ret) {
        uint32_t v;
        if (pm_parse_u32(s, &v) < 0 || v < min || v > max)
                return usage_error("%s: not a number from %u to %u: %s", opt, min, max, s);
        *ret = v;
        return 0;
}

int main(int argc, char *argv[]) {
        enum {
                OPT_SOCKET = 0x100,
                OPT_APP,
                OPT_NAMESPACE,
                OPT_WARMUP,
                OPT_MIB,
                OPT_RUNS,
                OPT_TIMEOUT,
                OPT_KV,
                OPT_LABEL
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"socket", required_argument, NULL, OPT_SOCKET},
                {"app", required_argument, NULL, OPT_APP},
                {"namespace", required_argument, NULL, OPT_NAMESPACE},
                {"calls", required_argument, NULL, 'n'},
                {"warmup", required_argument, NULL, OPT_WARMUP},
                {"mib", required_argument, NULL, OPT_MIB},
                {"runs", required_argument, NULL, OPT_RUNS},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"kv", no_argument, NULL, OPT_KV},
                {"label", required_argument, NULL, OPT_LABEL},
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "hn:", options, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case OPT_SOCKET:
                        arg_socket = optarg;
                        break;
                case OPT_APP:
                        arg_app = optarg;
                        break;
                case OPT_NAMESPACE:
                        arg_namespace = optarg;
                        break;
                case 'n':
                        r = parse_number("--calls", optarg, 1, 1000000, &arg_calls);
                        break;
                case OPT_WARMUP:
                        r = parse_number("--warmup", optarg, 0, 1000000, &arg_warmup);
                        break;
                case OPT_MIB:
                        r = parse_number("--mib", optarg, 1, MIB_MAX, &arg_mib);
                        break;
                case OPT_RUNS:
                        r = parse_number("--runs", optarg, 1, RUNS_MAX, &arg_runs);
                        break;
                case OPT_TIMEOUT:
                        r = parse_number("--timeout", optarg, 1, 86400, &arg_timeout_s);
                        break;
                case OPT_KV:
                        arg_kv = true;
                        break;
                case OPT_LABEL:
                        arg_label = optarg;
                        break;
                default:
                        return EXIT_USAGE;
                }
                if (r != 0)
                        return r;
        }
        if (optind != argc - 1)
                return usage_error("expected one verb");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        return verbs[i].run() < 0 ? 1 : 0;
        return usage_error("unknown verb: %s", argv[optind]);
}
