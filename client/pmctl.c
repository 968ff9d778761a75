/* pmctl: the command line of the PodMutator control API. One function per
 * verb, dispatched from a table; only main() prints usage errors and exits. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "pmctl.h"
#include "pbjson.h"
#include "pmclient.h"
#include "spec.h"
#include "util.h"

/* The CLI's parsed global options: the only mutable globals. */
const char *arg_pod;
const char *arg_socket;
bool arg_json;
int arg_timeout_ms = 30000;

_printf_(1, 2) int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("pmctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputs("\nTry 'pmctl --help'.\n", stderr);
        va_end(ap);
        return EXIT_USAGE;
}

int exit_code_of(PmCode code) {
        switch (code) {
        case PODMUTATOR__V1__CODE__CODE_OK: return EXIT_OK;
        case PODMUTATOR__V1__CODE__CODE_NOT_FOUND: return EXIT_NOT_FOUND;
        case PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT: return EXIT_INVALID;
        case PODMUTATOR__V1__CODE__CODE_ALREADY_EXISTS: return EXIT_EXISTS;
        case PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION: return EXIT_PRECONDITION;
        case PODMUTATOR__V1__CODE__CODE_DEADLINE_EXCEEDED: return EXIT_DEADLINE;
        case PODMUTATOR__V1__CODE__CODE_PERMISSION_DENIED: return EXIT_DENIED;
        case PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED: return EXIT_EXHAUSTED;
        case PODMUTATOR__V1__CODE__CODE_UNAVAILABLE: return EXIT_UNAVAILABLE;
        default: return EXIT_ERROR;
        }
}

int connect_pod(PmClient **ret) {
        _cleanup_free_ char *path = NULL;
        if (arg_socket)
                path = strdup(arg_socket);
        else {
                const char *pod = arg_pod ? arg_pod : getenv("PM_POD");
                if (isempty(pod)) {
                        fprintf(stderr, "pmctl: no pod given: use --pod NAME, --socket PATH or $PM_POD\n");
                        return -EXIT_USAGE;
                }
                if (pm_pod_socket_path(pod, &path) < 0) {
                        fprintf(stderr, "pmctl: \"%s\" is not a pod name (a lowercase DNS label)\n", pod);
                        return -EXIT_USAGE;
                }
        }
        if (!path)
                return -EXIT_ERROR;
        _cleanup_free_ char *error = NULL;
        int r = pm_client_connect(path, arg_timeout_ms, ret, &error);
        if (r < 0) {
                fprintf(stderr, "pmctl: %s\n", error ? error : strerror(-r));
                if (r == -ENOENT || r == -ECONNREFUSED)
                        fprintf(stderr, "pmctl: is the pod running? (pm-stage1 list)\n");
                return r == -EACCES ? -EXIT_DENIED
                       : r == -EUSERS ? -EXIT_EXHAUSTED
                       : r == -EPROTO ? -EXIT_PRECONDITION
                                      : -EXIT_UNAVAILABLE;
        }
        return 0;
}

/* Connects, makes one call, and turns a failure into a message and an exit
 * code. Returns 0 with *ret set, or a positive exit code. */
int call(PmRequest *req, PmResponse **ret) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        int r = connect_pod(&c);
        if (r < 0)
                return -r;
        return call_on(c, req, ret);
}

int call_on(PmClient *c, PmRequest *req, PmResponse **ret) {
        PmResponse *resp = NULL;
        int r = pm_client_call(c, req, &resp);
        if (r < 0) {
                fprintf(stderr, "pmctl: the call failed: %s\n", strerror(-r));
                return r == -ETIMEDOUT ? EXIT_DEADLINE : EXIT_UNAVAILABLE;
        }
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK) {
                fprintf(stderr, "pmctl: %s: %s\n", pm_code_name(resp->code), resp->message);
                int code = exit_code_of(resp->code);
                pm_response_free(resp);
                return code;
        }
        *ret = resp;
        return 0;
}

static int print_status(const PmAppStatus *st) {
        if (arg_json)
                return pm_print_json_message(&st->base) < 0 ? EXIT_ERROR : EXIT_OK;
        pm_print_app_details(st);
        return EXIT_OK;
}

/* "2026-11-30T12:00:00[.frac](Z|+hh:mm|-hh:mm)" */
static int parse_rfc3339(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        int64_t frac = 0;
        if (*p == '.') {
                int digits = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 9)
                                frac = frac * 10 + (*p - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 9; digits++)
                        frac *= 10;
        }
        int64_t offset = 0;
        if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                int hh = atoi(p + 1), mm = atoi(p + 4);
                offset = (int64_t) (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        } else if (!streq(p, "Z") && !streq(p, "z"))
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = ((int64_t) t - offset) * NSEC_PER_SEC + frac;
        return 0;
}

int parse_since(const char *s, int64_t *ret) {
        uint64_t v;
        size_t n = strlen(s);
        char unit = n > 0 ? s[n - 1] : 0;
        if (strchr(s, 'T'))
                return parse_rfc3339(s, ret);
        if (unit == 's' || unit == 'm' || unit == 'h') {
                char num[32];
                if (n >= sizeof(num))
                        return -EINVAL;
                memcpy(num, s, n - 1);
                num[n - 1] = '\0';
                if (pm_parse_u64(num, &v) < 0 || v > 86400 * 365)
                        return -EINVAL;
                int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : 3600;
                *ret = pm_now_realtime_ns() - (int64_t) v * mult * NSEC_PER_SEC;
                return 0;
        }
        if (pm_parse_u64(s, &v) < 0 || v > INT64_MAX)
                return -EINVAL;
        *ret = n > 12 ? (int64_t) v : (int64_t) v * NSEC_PER_SEC;
        return 0;
}

uint64_t start_call(PmClient *c, PmRequest *req) {
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.call_id = pm_client_new_call_id(c);
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_REQUEST;
        env.request = req;
        if (pm_client_queue(c, &env) < 0 || pm_client_flush(c) < 0) {
                fprintf(stderr, "pmctl: cannot send the request\n");
                return 0;
        }
        return env.call_id;
}

/* Verb option parsing: getopt on the verb's own argv. */
void reset_getopt(void) { optind = 0; }

static int parse_ref(int argc, char **argv, const char *ns, Podmutator__V1__AppRef *ref) {
        if (optind != argc - 1)
                return usage_error("%s: expects exactly one APP (an id, an id prefix or a name)", argv[0]);
        ref->app = argv[optind];
        ref->namespace_ = (char *) (ns ? ns : "");
        return 0;
}

static int verb_simple(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                { "timeout", required_argument, NULL, 't' },
                { "force", no_argument, NULL, 'f' },
                {},
        };
        bool is_stop = streq(argv[0], "stop"), is_rm = streq(argv[0], "rm");
        const char *ns = NULL;
        bool force = false, has_timeout = false;
        uint32_t timeout = 0;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, is_stop ? "+t:" : is_rm ? "+f" : "+", options, NULL)) >= 0) {
                switch (c) {
                case 'n': ns = optarg; break;
                case 't':
                        if (!is_stop || pm_parse_u32(optarg, &timeout) < 0)
                                return usage_error("%s: invalid -t \"%s\" (seconds)", argv[0], optarg);
                        has_timeout = true;
                        break;
                case 'f':
                        if (!is_rm)
                                return usage_error("%s: unknown option -f", argv[0]);
                        force = true;
                        break;
                default: return EXIT_USAGE;
                }
        }
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        int r = parse_ref(argc, argv, ns, &ref);
        if (r != 0)
                return r;

        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        Podmutator__V1__StartRequest start = PODMUTATOR__V1__START_REQUEST__INIT;
        Podmutator__V1__StopRequest stop = PODMUTATOR__V1__STOP_REQUEST__INIT;
        Podmutator__V1__RemoveRequest rm = PODMUTATOR__V1__REMOVE_REQUEST__INIT;
        Podmutator__V1__StatusRequest status = PODMUTATOR__V1__STATUS_REQUEST__INIT;
        Podmutator__V1__PauseRequest pause = PODMUTATOR__V1__PAUSE_REQUEST__INIT;
        Podmutator__V1__ResumeRequest resume = PODMUTATOR__V1__RESUME_REQUEST__INIT;
        if (streq(argv[0], "pause")) {
                pause.ref = &ref, req.pause = &pause, req.call_case = PODMUTATOR__V1__REQUEST__CALL_PAUSE;
        } else if (streq(argv[0], "resume")) {
                resume.ref = &ref, req.resume = &resume, req.call_case = PODMUTATOR__V1__REQUEST__CALL_RESUME;
        } else if (streq(argv[0], "start")) {
                start.ref = &ref, req.start = &start, req.call_case = PODMUTATOR__V1__REQUEST__CALL_START;
        } else if (is_stop) {
                stop.ref = &ref, req.stop = &stop, req.call_case = PODMUTATOR__V1__REQUEST__CALL_STOP;
                if (has_timeout) {
                        stop.grace_case = PODMUTATOR__V1__STOP_REQUEST__GRACE_TIMEOUT_SECONDS;
                        stop.timeout_seconds = timeout;
                }
        } else if (is_rm) {
                rm.ref = &ref, rm.force = force, req.remove = &rm;
                req.call_case = PODMUTATOR__V1__REQUEST__CALL_REMOVE;
        } else {
                status.ref = &ref, req.status = &status, req.call_case = PODMUTATOR__V1__REQUEST__CALL_STATUS;
        }

        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        r = call(&req, &resp);
        if (r != 0)
                return r;
        switch (resp->result_case) {
        case PODMUTATOR__V1__RESPONSE__RESULT_STATUS: return print_status(resp->status->status);
        case PODMUTATOR__V1__RESPONSE__RESULT_START:
                return arg_json ? print_status(resp->start->status) : (puts(resp->start->status->id), EXIT_OK);
        case PODMUTATOR__V1__RESPONSE__RESULT_STOP:
                return arg_json ? print_status(resp->stop->status) : (puts(resp->stop->status->id), EXIT_OK);
        case PODMUTATOR__V1__RESPONSE__RESULT_PAUSE:
                return arg_json ? print_status(resp->pause->status) : (puts(resp->pause->status->id), EXIT_OK);
        case PODMUTATOR__V1__RESPONSE__RESULT_RESUME:
                return arg_json ? print_status(resp->resume->status) : (puts(resp->resume->status->id), EXIT_OK);
        case PODMUTATOR__V1__RESPONSE__RESULT_REMOVE:
                if (arg_json)
                        return pm_print_json_message(&resp->remove->base) < 0 ? EXIT_ERROR : EXIT_OK;
                puts(resp->remove->id);
                return EXIT_OK;
        default:
                fprintf(stderr, "pmctl: the agent answered with an unexpected result\n");
                return EXIT_ERROR;
        }
}

static int inject(PmAppSpec *spec, bool start) {
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        Podmutator__V1__InjectRequest inj = PODMUTATOR__V1__INJECT_REQUEST__INIT;
        inj.spec = spec;
        inj.start = start;
        req.inject = &inj;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_INJECT;
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = call(&req, &resp);
        if (r != 0)
                return r;
        if (arg_json)
                return print_status(resp->inject->status);
        puts(resp->inject->id);
        return EXIT_OK;
}

static int verb_inject(int argc, char **argv) {
        static const struct option options[] = {
                { "file", required_argument, NULL, 'f' },
                { "start", no_argument, NULL, 's' },
                {},
        };
        const char *file = NULL;
        bool start = false;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+f:", options, NULL)) >= 0) {
                switch (c) {
                case 'f': file = optarg; break;
                case 's': start = true; break;
                default: return EXIT_USAGE;
                }
        }
        if (!file || optind != argc)
                return usage_error("inject: expects -f SPEC.json and nothing else");

        PmAppSpec *spec;
        int r = read_spec_file(file, &spec);
        if (r != 0)
                return r;
        r = inject(spec, start);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return r;
}

int read_spec_file(const char *file, PmAppSpec **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r = pm_read_file(streq(file, "-") ? "/dev/stdin" : file, SPEC_FILE_MAX, &text, &size);
        if (r < 0) {
                fprintf(stderr, "pmctl: cannot read %s: %s\n", file, r == -EFBIG ? "larger than 4 MiB" : strerror(-r));
                return EXIT_INVALID;
        }
        ProtobufCMessage *msg = NULL;
        _cleanup_free_ char *error = NULL;
        r = pm_json_parse_message(text, size, &podmutator__v1__app_spec__descriptor, &msg, &error);
        if (r < 0) {
                fprintf(stderr, "pmctl: %s: %s\n", file, error ? error : strerror(-r));
                return EXIT_INVALID;
        }
        *ret = (PmAppSpec *) msg;
        return 0;
}

/* A KEY=VALUE argument into a new map entry of the given descriptor. */
int add_pair(const char *what, const char *arg, ProtobufCMessage ***entries, size_t *n,
                    const ProtobufCMessageDescriptor *desc) {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg)
                return usage_error("%s: expected KEY=VALUE, got \"%s\"", what, arg);
        Podmutator__V1__AppSpec__EnvEntry *e = calloc(1, desc->sizeof_message);
        ProtobufCMessage **grown = realloc(*entries, (*n + 1) * sizeof(**entries));
        if (!e || !grown) {
                free(e);
                if (grown)
                        *entries = grown;
                return EXIT_ERROR;
        }
        desc->message_init((ProtobufCMessage *) e);
        e->key = strndup(arg, (size_t) (eq - arg));
        e->value = strdup(eq + 1);
        *entries = grown;
        (*entries)[(*n)++] = &e->base;
        return e->key && e->value ? 0 : EXIT_ERROR;
}

/* A name for `run` without --name: the command's base name, made a DNS
 * label, plus a random suffix. */
static char *default_name(const char *cmd) {
        const char *base = strrchr(cmd, '/');
        base = base ? base + 1 : cmd;
        char name[64] = "";
        size_t n = 0;
        for (; *base && n < 40; base++) {
                char ch = *base;
                if (ch >= 'A' && ch <= 'Z')
                        ch = (char) (ch - 'A' + 'a');
                if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
                        name[n++] = ch;
                else if (n > 0 && name[n - 1] != '-')
                        name[n++] = '-';
        }
        if (n == 0)
                n = (size_t) snprintf(name, sizeof(name), "app");
        if (name[n - 1] != '-')
                name[n++] = '-';
        if (pm_random_hex(name + n, 3) < 0)
                return NULL;
        return strdup(name);
}

static int parse_restart(const char *s, Podmutator__V1__RestartPolicy *ret) {
        int v;
        if (pm_enum_from_name(&podmutator__v1__restart_policy__descriptor, s, &v) < 0)
                return usage_error("run: --restart takes no, on-failure or always, not \"%s\"", s);
        *ret = (Podmutator__V1__RestartPolicy) v;
        return 0;
}

static int run_spec_file(const char *file, const char *name, bool once, bool interactive, bool tty);

/* What run's isolation options build; the spec points into it. */
typedef struct RunIsolation {
        Podmutator__V1__Resources resources;
        Podmutator__V1__Network network;
        Podmutator__V1__Mount *mounts[PM_MOUNTS_MAX];
        size_t n_mounts;
} RunIsolation;

/* "512m", "2G", "1048576": bytes, with binary k/m/g/t suffixes. */
static int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "kmgt";
        size_t n = strlen(s);
        unsigned shift = 0;
        const char *p = n > 0 ? strchr(suffixes, s[n - 1] | 0x20) : NULL;
        if (p)
                shift = 10 * (unsigned) (p - suffixes + 1);
        _cleanup_free_ char *digits = strndup(s, shift ? n - 1 : n);
        uint64_t v;
        if (!digits || pm_parse_u64(digits, &v) < 0 || v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = v << shift;
        return 0;
}

/* "1.5" CPUs as 1500 millis; at most three decimals. */
static int parse_cpus(const char *s, uint32_t *ret) {
        const char *dot = strchr(s, '.');
        _cleanup_free_ char *whole = strndup(s, dot ? (size_t) (dot - s) : strlen(s));
        uint32_t w, frac = 0;
        if (!whole || pm_parse_u32(whole, &w) < 0 || w > UINT32_MAX / 1000)
                return -EINVAL;
        if (dot) {
                size_t n = strlen(dot + 1);
                if (n == 0 || n > 3 || pm_parse_u32(dot + 1, &frac) < 0)
                        return -EINVAL;
                for (; n < 3; n++)
                        frac *= 10;
        }
        if ((uint64_t) w * 1000 + frac > UINT32_MAX)
                return -EINVAL;
        *ret = w * 1000 + frac;
        return 0;
}

/* -v SRC:DST[:ro|:rw] */
static int add_mount(RunIsolation *x, const char *arg) {
        if (x->n_mounts >= PM_MOUNTS_MAX)
                return usage_error("run: at most %d -v mounts", PM_MOUNTS_MAX);
        _cleanup_free_ char *copy = strdup(arg);
        if (!copy)
                return EXIT_ERROR;
        char *save = NULL;
        char *src = strtok_r(copy, ":", &save), *dst = strtok_r(NULL, ":", &save);
        char *opt = strtok_r(NULL, ":", &save);
        if (!src || !dst || strtok_r(NULL, ":", &save) || (opt && !streq(opt, "ro") && !streq(opt, "rw")))
                return usage_error("run: -v takes SRC:DST[:ro|:rw] (paths cannot hold ':'), not \"%s\"", arg);
        Podmutator__V1__Mount *mt = malloc(sizeof(*mt));
        if (!mt)
                return EXIT_ERROR;
        podmutator__v1__mount__init(mt);
        mt->source = strdup(src);
        mt->target = strdup(dst);
        mt->read_only = opt && streq(opt, "ro");
        x->mounts[x->n_mounts++] = mt;
        return mt->source && mt->target ? 0 : EXIT_ERROR;
}

/* --network pod|none|host|netns:PATH */
static int parse_network(RunIsolation *x, const char *arg) {
        int v;
        if (startswith(arg, "netns:") && arg[6] == '/') {
                x->network.mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS;
                x->network.netns_path = (char *) arg + 6;
        } else if (!strchr(arg, ':') && pm_enum_from_name(&podmutator__v1__network_mode__descriptor, arg, &v) >= 0 &&
                   v != PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS)
                x->network.mode = (Podmutator__V1__NetworkMode) v;
        else
                return usage_error("run: --network takes pod, none, host or netns:/PATH, not \"%s\"", arg);
        return 0;
}

/* One of run's isolation options into spec; a usage error if malformed. */
static int parse_isolation_option(int c, const char *arg, PmAppSpec *spec, RunIsolation *x) {
        int v;
        switch (c) {
        case 'P':
                if (pm_enum_from_name(&podmutator__v1__profile__descriptor, arg, &v) < 0)
                        return usage_error("run: --profile takes unprivileged or privileged, not \"%s\"", arg);
                spec->profile = (Podmutator__V1__Profile) v;
                return 0;
        case 'm':
                if (parse_size(arg, &x->resources.memory_max) < 0 || x->resources.memory_max == 0)
                        return usage_error("run: --memory takes a size in bytes, with k, m, g or t (e.g. 512m), not \"%s\"", arg);
                break;
        case 'c':
                if (parse_cpus(arg, &x->resources.cpu_millis) < 0 || x->resources.cpu_millis == 0)
                        return usage_error("run: --cpus takes a number of CPUs such as 0.5 or 2, not \"%s\"", arg);
                break;
        case 'k':
                if (pm_parse_u32(arg, &x->resources.tasks_max) < 0 || x->resources.tasks_max == 0)
                        return usage_error("run: --pids takes a positive number of tasks, not \"%s\"", arg);
                break;
        case 'v': return add_mount(x, arg);
        case 'W': return parse_network(x, arg);
        }
        spec->resources = &x->resources;
        return 0;
}

static int verb_run(int argc, char **argv) {
        static const struct option options[] = {
                { "name", required_argument, NULL, 'N' },
                { "ns", required_argument, NULL, 'n' },
                { "env", required_argument, NULL, 'e' },
                { "label", required_argument, NULL, 'l' },
                { "annotation", required_argument, NULL, 'a' },
                { "restart", required_argument, NULL, 'r' },
                { "workdir", required_argument, NULL, 'w' },
                { "user", required_argument, NULL, 'u' },
                { "rootfs", required_argument, NULL, 'R' },
                { "rm", no_argument, NULL, 'M' },
                { "interactive", no_argument, NULL, 'i' },
                { "tty", no_argument, NULL, 't' },
                { "file", required_argument, NULL, 'f' },
                { "profile", required_argument, NULL, 'P' },
                { "memory", required_argument, NULL, 'm' },
                { "cpus", required_argument, NULL, 'c' },
                { "pids", required_argument, NULL, 'k' },
                { "volume", required_argument, NULL, 'v' },
                { "network", required_argument, NULL, 'W' },
                {},
        };
        PmAppSpec spec = PODMUTATOR__V1__APP_SPEC__INIT;
        RunIsolation iso = { .resources = PODMUTATOR__V1__RESOURCES__INIT, .network = PODMUTATOR__V1__NETWORK__INIT };
        _cleanup_free_ char *generated = NULL;
        const char *file = NULL;
        bool once = false, interactive = false, tty = false;
        int c, r = 0;
        reset_getopt();
        while (r == 0 && (c = getopt_long(argc, argv, "+e:l:w:u:itf:v:", options, NULL)) >= 0) {
                switch (c) {
                case 'M': once = true; break;
                case 'i': interactive = true; break;
                case 't': tty = true; break;
                case 'f': file = optarg; break;
                case 'N': spec.name = optarg; break;
                case 'n': spec.namespace_ = optarg; break;
                case 'e':
                        r = add_pair("--env", optarg, (ProtobufCMessage ***) &spec.env, &spec.n_env,
                                     &podmutator__v1__app_spec__env_entry__descriptor);
                        break;
                case 'l':
                        r = add_pair("--label", optarg, (ProtobufCMessage ***) &spec.labels, &spec.n_labels,
                                     &podmutator__v1__app_spec__labels_entry__descriptor);
                        break;
                case 'a':
                        r = add_pair("--annotation", optarg, (ProtobufCMessage ***) &spec.annotations,
                                     &spec.n_annotations, &podmutator__v1__app_spec__annotations_entry__descriptor);
                        break;
                case 'r': r = parse_restart(optarg, &spec.restart); break;
                case 'w': spec.working_dir = optarg; break;
                case 'u': spec.user = optarg; break;
                case 'R': spec.rootfs = optarg; break;
                case 'P':
                case 'm':
                case 'c':
                case 'k':
                case 'v':
                case 'W': r = parse_isolation_option(c, optarg, &spec, &iso); break;
                default: r = EXIT_USAGE;
                }
        }
        spec.network = &iso.network;
        spec.mounts = iso.mounts;
        spec.n_mounts = iso.n_mounts;
        if (r == 0 && file && (spec.resources || spec.n_mounts || spec.profile ||
                               iso.network.mode != PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_POD))
                r = usage_error("run: with -f, the spec file says how the app is isolated");
        if (r == 0 && file)
                r = optind < argc ? usage_error("run: -f SPEC and a command exclude each other")
                                  : run_spec_file(file, spec.name, once, interactive, tty);
        else if (r == 0 && optind >= argc)
                r = usage_error("run: expects -- CMD [ARG...]");
        else if (r == 0) {
                spec.argv = argv + optind;
                spec.n_argv = (size_t) (argc - optind);
                if (isempty(spec.name) && !(spec.name = generated = default_name(spec.argv[0])))
                        r = EXIT_ERROR;
                if (r == 0 && once)
                        r = run_once(&spec, interactive, tty);
                else if (r == 0)
                        r = (interactive || tty) ? usage_error("run: -i and -t need --rm (an app that stays has no client attached)")
                                                 : inject(&spec, true);
        }

        /* The entries were built here; the strings of argv are borrowed. */
        ProtobufCMessage **maps[] = { (ProtobufCMessage **) spec.env, (ProtobufCMessage **) spec.labels,
                                      (ProtobufCMessage **) spec.annotations };
        size_t counts[] = { spec.n_env, spec.n_labels, spec.n_annotations };
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                for (size_t j = 0; j < counts[i]; j++)
                        protobuf_c_message_free_unpacked(maps[i][j], NULL);
                free(maps[i]);
        }
        for (size_t i = 0; i < iso.n_mounts; i++)
                protobuf_c_message_free_unpacked(&iso.mounts[i]->base, NULL);
        return r;
}

/* run -f SPEC: the app of a spec file, kept (started) or run once. */
static int run_spec_file(const char *file, const char *name, bool once, bool interactive, bool tty) {
        PmAppSpec *spec;
        int r = read_spec_file(file, &spec);
        if (r != 0)
                return r;
        char *saved = spec->name;
        if (!isempty(name))
                spec->name = (char *) name;
        r = once ? run_once(spec, interactive, tty) : inject(spec, true);
        spec->name = saved;
        protobuf_c_message_free_unpacked(&spec->base, NULL);
        return r;
}

static int verb_ls(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                { "state", required_argument, NULL, 's' },
                { "label", required_argument, NULL, 'l' },
                {},
        };
        Podmutator__V1__ListRequest list = PODMUTATOR__V1__LIST_REQUEST__INIT;
        Podmutator__V1__AppState states[8];
        int c, r = 0;
        reset_getopt();
        while (r == 0 && (c = getopt_long(argc, argv, "+l:", options, NULL)) >= 0) {
                switch (c) {
                case 'n': list.namespace_ = optarg; break;
                case 's':
                        if (list.n_states >= ELEMENTSOF(states) ||
                            pm_state_from_name(optarg, &states[list.n_states]) < 0)
                                r = usage_error("ls: unknown --state \"%s\" (created, starting, running, stopping, exited, paused, unknown)",
                                                optarg);
                        else
                                list.n_states++;
                        break;
                case 'l':
                        r = add_pair("--label", optarg, (ProtobufCMessage ***) &list.labels, &list.n_labels,
                                     &podmutator__v1__list_request__labels_entry__descriptor);
                        break;
                default: r = EXIT_USAGE;
                }
        }
        if (r == 0 && optind != argc)
                r = usage_error("ls: unexpected argument \"%s\"", argv[optind]);
        list.states = states;

        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        if (r == 0) {
                PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
                req.list = &list;
                req.call_case = PODMUTATOR__V1__REQUEST__CALL_LIST;
                r = call(&req, &resp);
        }
        if (r == 0) {
                Podmutator__V1__ListResponse *l = resp->list;
                if (arg_json)
                        r = pm_print_json_array((ProtobufCMessage *const *) l->apps, l->n_apps) < 0 ? EXIT_ERROR : 0;
                else
                        pm_print_app_table(l->apps, l->n_apps);
        }
        for (size_t i = 0; i < list.n_labels; i++)
                protobuf_c_message_free_unpacked(&list.labels[i]->base, NULL);
        free(list.labels);
        return r;
}

static int verb_info(int argc, char **argv) {
        if (argc != 1)
                return usage_error("info: takes no arguments");
        Podmutator__V1__InfoRequest info = PODMUTATOR__V1__INFO_REQUEST__INIT;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.info = &info;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_INFO;
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = call(&req, &resp);
        if (r != 0)
                return r;
        if (arg_json)
                return pm_print_json_message(&resp->info->base) < 0 ? EXIT_ERROR : EXIT_OK;
        pm_print_info(resp->info);
        return EXIT_OK;
}

static int verb_inspect(int argc, char **argv) {
        static const struct option options[] = {
                { "ns", required_argument, NULL, 'n' },
                {},
        };
        const char *ns = NULL;
        int c;
        reset_getopt();
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (c != 'n')
                        return EXIT_USAGE;
                ns = optarg;
        }
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        int r = parse_ref(argc, argv, ns, &ref);
        if (r != 0)
                return r;
        Podmutator__V1__InspectRequest inspect = PODMUTATOR__V1__INSPECT_REQUEST__INIT;
        inspect.ref = &ref;
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.inspect = &inspect;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_INSPECT;
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        r = call(&req, &resp);
        if (r != 0)
                return r;
        if (resp->result_case != PODMUTATOR__V1__RESPONSE__RESULT_INSPECT || !resp->inspect->status ||
            !resp->inspect->spec) {
                fprintf(stderr, "pmctl: the agent answered with an unexpected result\n");
                return EXIT_ERROR;
        }
        if (arg_json)
                return pm_print_json_message(&resp->inspect->base) < 0 ? EXIT_ERROR : EXIT_OK;
        pm_print_app_details(resp->inspect->status);
        pm_print_app_spec(resp->inspect->spec);
        return EXIT_OK;
}

static void help(void) {
        printf("Usage: pmctl [--pod NAME | --socket PATH] [--json] [--timeout S] VERB [ARGS...]\n\n"
               "Control the apps of a running pod.\n\n"
               "Verbs:\n"
               "  inject -f SPEC.json [--start]   add an app from a spec file; prints its id\n"
               "  run [OPTIONS] -- CMD [ARG...]   add and start an app; prints its id\n"
               "        --name N --ns NS --env K=V --label K=V --annotation K=V\n"
               "        --restart no|on-failure|always --workdir D --user U --rootfs DIR\n"
               "        --profile unprivileged|privileged --memory SIZE[k|m|g|t] --cpus N.N --pids N\n"
               "        -v SRC:DST[:ro] (repeatable) --network pod|none|host|netns:PATH\n"
               "  start APP                       start an app\n"
               "  stop [-t SECONDS] APP           SIGTERM (or the app's stop signal), SIGKILL after\n"
               "                                  SECONDS (default: the app's, 10); -t 0 kills at once\n"
               "  rm [-f] APP                     remove an app; -f stops a running one first\n"
               "  ls [--ns NS] [--state S] [-l K=V]...   list apps\n"
               "  status APP                      show one app\n"
               "  inspect APP                     show one app and its spec; --json: the spec as injected\n"
               "  info                            show the pod and its agent\n"
               "  exec [-i] [-t] [--sync] [--timeout S] [-e K=V]... APP -- CMD [ARG...]\n"
               "                                  run a command in a running app; exits with its exit\n"
               "                                  code (128+N for signal N). -i streams stdin, -t gives\n"
               "                                  it a terminal, --sync captures output (16 MiB a stream)\n"
               "  run --rm [-i] [-t] [OPTIONS] -- CMD | run --rm [-i] -f SPEC.json\n"
               "                                  run an app once, attached; exits with its exit code\n"
               "  pipe -f A.json -f B.json ...    run apps in order, each one's stdout the next one's\n"
               "                                  stdin; stops at the first that fails\n"
               "  logs [-f] [--tail N] [--since TIME] [--timestamps] [--stream stdout|stderr] APP\n"
               "                                  an app's output, byte for byte: stdout to stdout,\n"
               "                                  stderr to stderr; -f follows until ^C or the app is\n"
               "                                  removed. TIME: 30s, 5m, 2h ago, RFC 3339, or seconds\n"
               "                                  since the epoch\n"
               "  events [--ns NS] [--app APP] [--since TIME]\n"
               "                                  stream app events (created, started, restarted,\n"
               "                                  exited, stopped, removed, paused, resumed) until ^C;\n"
               "                                  --json: one object a line\n"
               "  ps APP                          the processes of an app and of its exec sessions\n"
               "  pause APP | resume APP          suspend every process of an app, and resume them\n"
               "  stats [--ns NS] [APP]           CPU %%, CPU time, memory now and peak, tasks\n"
               "  top [--ns NS] [APP]             the same, refreshed every second until ^C\n\n"
               "APP is an id, a unique id prefix, or a name (in --ns, default \"default\").\n"
               "The pod is --pod NAME, else $PM_POD; --socket PATH names the control socket itself.\n"
               "--json prints machine-readable output.\n\n"
               "Exit codes:\n"
               "  0 success             1 other error           2 usage error\n"
               "  3 agent unavailable   4 not found             5 invalid argument\n"
               "  6 already exists      7 failed precondition   8 deadline exceeded\n"
               "  9 permission denied  10 resource exhausted\n");
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} verbs[] = {
        { "inject", verb_inject }, { "run", verb_run },       { "start", verb_simple },
        { "stop", verb_simple },   { "rm", verb_simple },     { "status", verb_simple },
        { "ls", verb_ls },         { "info", verb_info },     { "exec", verb_exec },
        { "pipe", verb_pipe },     { "events", verb_events }, { "ps", verb_ps },
        { "pause", verb_simple },  { "resume", verb_simple }, { "stats", verb_stats },
        { "top", verb_stats },     { "logs", verb_logs },
        { "inspect", verb_inspect },
};

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "pod", required_argument, NULL, 'p' },
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "timeout", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        uint32_t seconds;
        int c;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (c) {
                case 'p': arg_pod = optarg; break;
                case 's': arg_socket = optarg; break;
                case 'j': arg_json = true; break;
                case 'T':
                        if (pm_parse_u32(optarg, &seconds) < 0 || seconds == 0 || seconds > 86400)
                                return usage_error("--timeout takes 1 to 86400 seconds");
                        arg_timeout_ms = (int) seconds * 1000;
                        break;
                case 'h': help(); return EXIT_OK;
                case 'V': puts("pmctl " PM_VERSION); return EXIT_OK;
                default: return EXIT_USAGE;
                }
        }
        if (optind >= argc)
                return usage_error("no verb given");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(argc - optind, argv + optind);
        return usage_error("unknown verb \"%s\"", argv[optind]);
}
