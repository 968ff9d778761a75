/* pmctl logs: an app's stdout and stderr, from the pod's journal, byte for
 * byte; stdout lines to our stdout, stderr lines to our stderr. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pmctl.h"

#define STREAM_STDOUT_BIT 1u
#define STREAM_STDERR_BIT 2u

typedef struct LogPrinter {
        bool timestamps;
        bool line_start[3]; /* per fd: the next byte starts a line */
} LogPrinter;

static void on_log_frame(const PmEnvelope *env, void *userdata) {
        LogPrinter *p = userdata;
        if (env->body_case != PODMUTATOR__V1__ENVELOPE__BODY_LOG)
                return;
        const Podmutator__V1__LogEntry *e = env->log;
        uint32_t fd = e->fd <= 2 ? e->fd : 2;
        FILE *out = fd == 1 ? stdout : stderr;
        if (p->timestamps && p->line_start[fd]) {
                time_t t = (time_t) (e->time / NSEC_PER_SEC);
                struct tm tm;
                char when[32];
                gmtime_r(&t, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                fprintf(out, "%s.%09lldZ ", when, (long long) (e->time % NSEC_PER_SEC));
        }
        fwrite(e->data.data, 1, e->data.len, out);
        fflush(out);
        p->line_start[fd] = !e->partial;
}

static int parse_stream(const char *s, uint32_t *ret) {
        if (streq(s, "stdout"))
                *ret = STREAM_STDOUT_BIT;
        else if (streq(s, "stderr"))
                *ret = STREAM_STDERR_BIT;
        else
                return -EINVAL;
        return 0;
}

int verb_logs(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                { "tail", required_argument, NULL, 'T' },
                { "since", required_argument, NULL, 's' },
                { "follow", no_argument, NULL, 'f' },
                { "timestamps", no_argument, NULL, 't' },
                { "stream", required_argument, NULL, 'S' },
                {},
        };
        Podmutator__V1__LogsRequest logs = PODMUTATOR__V1__LOGS_REQUEST__INIT;
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        LogPrinter printer = { .line_start = { true, true, true } };
        int64_t tail = -1;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+ft", options, NULL)) >= 0) {
                switch (c) {
                case 'n': ref.namespace_ = optarg; break;
                case 'f': logs.follow = true; break;
                case 't': printer.timestamps = true; break;
                case 'T':
                        if (pm_parse_i64(optarg, &tail) < 0 || tail < 0)
                                return usage_error("logs: --tail takes a number of lines, 0 or more");
                        break;
                case 's':
                        if (parse_since(optarg, &logs.since) < 0 || logs.since <= 0)
                                return usage_error("logs: --since takes 30s, 5m, 2h, an RFC 3339 time or seconds "
                                                   "since the epoch");
                        break;
                case 'S':
                        if (parse_stream(optarg, &logs.streams) < 0)
                                return usage_error("logs: --stream is stdout or stderr, not \"%s\"", optarg);
                        break;
                default: return EXIT_USAGE;
                }
        }
        if (optind != argc - 1)
                return usage_error("logs: expects exactly one APP (an id, an id prefix or a name)");
        ref.app = argv[optind];
        logs.ref = &ref;
        /* --tail 0: none of the past, only what comes (with -f). */
        if (tail == 0)
                logs.since = pm_now_realtime_ns();
        else if (tail > 0)
                logs.tail = tail;

        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_LOGS;
        req.logs = &logs;
        return run_stream_call(&req, on_log_frame, &printer);
}
