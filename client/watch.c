/* pmctl events and ps. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "pbjson.h"
#include "pmctl.h"

typedef Podmutator__V1__Event Event;

static void print_event(const Event *e) {
        if (arg_json) {
                json_object *j = pm_message_to_json(&e->base);
                if (j)
                        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                json_object_put(j);
        } else {
                time_t t = (time_t) (e->time / NSEC_PER_SEC);
                struct tm tm;
                char when[32];
                gmtime_r(&t, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                printf("%s.%03lldZ  %-9s  %s/%s  %.12s", when, (long long) (e->time % NSEC_PER_SEC) / 1000000,
                       e->type, e->namespace_, e->name, e->id);
                if (streq(e->type, "exited"))
                        printf("  exit=%d reason=%s%s%s", e->exit_code, e->reason, *e->signal ? " signal=" : "",
                               e->signal);
                printf("\n");
        }
        fflush(stdout);
}

int stream_loop(PmClient *c, uint64_t call_id, void (*on_frame)(const PmEnvelope *env, void *userdata),
                void *userdata) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        bool cancelled = false;
        for (;;) {
                struct pollfd p[2] = { { .fd = pm_client_fd(c), .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return EXIT_ERROR;
                if ((p[1].revents & POLLIN) && !cancelled) {
                        Podmutator__V1__Cancel cancel = PODMUTATOR__V1__CANCEL__INIT;
                        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
                        env.call_id = call_id;
                        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_CANCEL;
                        env.cancel = &cancel;
                        cancelled = pm_client_queue(c, &env) >= 0 && pm_client_flush(c) >= 0;
                }
                for (;;) {
                        _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
                        int r = pm_client_receive(c, &env);
                        if (r < 0) {
                                fprintf(stderr, "pmctl: the connection to the agent failed: %s\n", strerror(-r));
                                return EXIT_UNAVAILABLE;
                        }
                        if (r == 0)
                                break;
                        if (env->call_id != call_id && env->call_id != 0)
                                continue;
                        if (env->body_case != PODMUTATOR__V1__ENVELOPE__BODY_RESPONSE)
                                on_frame(env, userdata);
                        else {
                                PmResponse *resp = env->response;
                                if (resp->code == PODMUTATOR__V1__CODE__CODE_OK)
                                        return EXIT_OK;
                                fprintf(stderr, "pmctl: %s: %s\n", pm_code_name(resp->code), resp->message);
                                return exit_code_of(resp->code);
                        }
                }
        }
}

int run_stream_call(PmRequest *req, void (*on_frame)(const PmEnvelope *env, void *userdata), void *userdata) {
        _cleanup_(pm_client_freep) PmClient *client = NULL;
        int r = connect_pod(&client);
        if (r < 0)
                return -r;
        uint64_t id = start_call(client, req);
        if (id == 0)
                return EXIT_UNAVAILABLE;
        return stream_loop(client, id, on_frame, userdata);
}

static void on_event_frame(const PmEnvelope *env, void *userdata) {
        if (env->body_case == PODMUTATOR__V1__ENVELOPE__BODY_EVENT)
                print_event(env->event);
}

int verb_events(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                { "app", required_argument, NULL, 'a' },
                { "since", required_argument, NULL, 's' },
                {},
        };
        Podmutator__V1__WatchRequest watch = PODMUTATOR__V1__WATCH_REQUEST__INIT;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (c) {
                case 'n': watch.namespace_ = optarg; break;
                case 'a': watch.app = optarg; break;
                case 's':
                        if (parse_since(optarg, &watch.since) < 0)
                                return usage_error("events: --since takes 30s, 5m, 2h, an RFC 3339 time or seconds "
                                                   "since the epoch");
                        break;
                default: return EXIT_USAGE;
                }
        }
        if (optind != argc)
                return usage_error("events: unexpected argument \"%s\"", argv[optind]);

        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_WATCH;
        req.watch = &watch;
        return run_stream_call(&req, on_event_frame, NULL);
}

int verb_ps(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                {},
        };
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (c != 'n')
                        return EXIT_USAGE;
                ref.namespace_ = optarg;
        }
        if (optind != argc - 1)
                return usage_error("ps: expects exactly one APP");
        ref.app = argv[optind];
        Podmutator__V1__ProcessesRequest pr = PODMUTATOR__V1__PROCESSES_REQUEST__INIT;
        pr.ref = &ref;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_PROCESSES;
        req.processes = &pr;
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = call(&req, &resp);
        if (r != 0)
                return r;
        Podmutator__V1__ProcessesResponse *ps = resp->processes;
        if (arg_json)
                return pm_print_json_array((ProtobufCMessage *const *) ps->processes, ps->n_processes) < 0 ? EXIT_ERROR
                                                                                                         : EXIT_OK;
        printf("%-8s  %-12s  %-47s  %s\n", "PID", "USER", "UNIT", "COMMAND");
        for (size_t i = 0; i < ps->n_processes; i++)
                printf("%-8u  %-12s  %-47s  %s\n", ps->processes[i]->pid, ps->processes[i]->user,
                       ps->processes[i]->unit, ps->processes[i]->command);
        return EXIT_OK;
}

/* stats and top: two samples of every app, CPU % from their difference. */
typedef Podmutator__V1__StatsResponse StatsResponse;
typedef Podmutator__V1__AppStats AppStats;

static int stats_call(PmClient *c, Podmutator__V1__AppRef *ref, PmResponse **ret) {
        Podmutator__V1__StatsRequest sr = PODMUTATOR__V1__STATS_REQUEST__INIT;
        sr.ref = ref;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_STATS;
        req.stats = &sr;
        return call_on(c, &req, ret);
}

static double cpu_percent(const StatsResponse *before, const AppStats *now) {
        for (size_t i = 0; before && i < before->n_apps; i++) {
                const AppStats *b = before->apps[i];
                if (!streq(b->id, now->id) || now->sampled_at <= b->sampled_at || now->cpu_usage_ns < b->cpu_usage_ns)
                        continue;
                return 100.0 * (double) (now->cpu_usage_ns - b->cpu_usage_ns) /
                       (double) (now->sampled_at - b->sampled_at);
        }
        return 0.0;
}

static void print_stats(const StatsResponse *before, const StatsResponse *now) {
        if (arg_json) {
                json_object *arr = json_object_new_array();
                for (size_t i = 0; arr && i < now->n_apps; i++) {
                        json_object *j = pm_message_to_json(&now->apps[i]->base);
                        if (j)
                                json_object_object_add(j, "cpu_percent",
                                                       json_object_new_double(cpu_percent(before, now->apps[i])));
                        json_object_array_add(arr, j);
                }
                printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
                json_object_put(arr);
                return;
        }
        printf("%-12s  %-24s  %-12s  %7s  %12s  %10s  %10s  %5s\n", "ID", "NAME", "NAMESPACE", "CPU %", "CPU TIME",
               "MEMORY", "PEAK", "TASKS");
        for (size_t i = 0; i < now->n_apps; i++) {
                const AppStats *a = now->apps[i];
                printf("%-12.12s  %-24s  %-12s  %7.1f  %11.2fs  %9.1fM  %9.1fM  %5u\n", a->id, a->name, a->namespace_,
                       cpu_percent(before, a), (double) a->cpu_usage_ns / 1e9, (double) a->memory_bytes / 1048576.0,
                       (double) a->memory_peak_bytes / 1048576.0, a->tasks);
        }
        fflush(stdout);
}

int verb_stats(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                {},
        };
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        bool top = streq(argv[0], "top");
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (c != 'n')
                        return EXIT_USAGE;
                ref.namespace_ = optarg;
        }
        if (optind < argc - 1)
                return usage_error("%s: expects at most one APP", argv[0]);
        if (optind == argc - 1)
                ref.app = argv[optind];

        _cleanup_(pm_client_freep) PmClient *client = NULL;
        int r = connect_pod(&client);
        if (r < 0)
                return -r;
        _cleanup_(pm_response_freep) PmResponse *before = NULL;
        r = stats_call(client, &ref, &before);
        for (unsigned round = 0; r == 0; round++) {
                /* The CPU % of a sample is over the time since the one before. */
                usleep(top ? 1000000 : 500000);
                PmResponse *now = NULL;
                r = stats_call(client, &ref, &now);
                if (r != 0)
                        break;
                if (top)
                        printf("\033[H\033[2J");
                print_stats(before->stats, now->stats);
                pm_response_free(before);
                before = now;
                if (!top)
                        break;
        }
        return r;
}
