/* pm-stage1 run --name NAME [--manifest FILE] [--detach] [--timeout S] [--agent PATH]
 *
 *  1. claim the pod (its lock; a running pod of that name is an error, the
 *     remains of a dead one are removed)
 *  2. assemble root/ and the run directory, copy the manifest
 *  3. start systemd-nspawn (pod.h, nspawn.h)
 *  4. wait until the agent answers on its control socket, at most --timeout
 *  5. inject and start the manifest's apps through the agent, in order,
 *     exactly as a remote client would
 *  6. print "NAME SOCKET"; with --detach return, otherwise stay until the
 *     pod ends (SIGINT/SIGTERM/SIGHUP power it off, a second one kills it)
 *
 * Whatever fails after step 1 undoes what was done: the pod is stopped and
 * its directories removed. A pod that does not become ready has the tail of
 * its console printed first. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "errmsg.h"
#include "nspawn.h"
#include "oci-app.h"
#include "pbjson.h"
#include "pmclient.h"
#include "pod.h"
#include "proc.h"
#include "root.h"
#include "verbs.h"

#define AGENT_BINARY_NAME "podmutatord"
#define MANIFEST_MAX (4u * 1024u * 1024u)
/* While the control socket exists but does not answer yet (the agent
 * binds before it listens, or is being restarted), try again this often. */
#define CONNECT_RETRY_MS 50

/* Sanitizer settings reach the agent through its unit. */
static const char *const agent_env_vars[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };

typedef struct RunOptions {
        const char *name;
        const char *manifest;
        const char *agent;
        bool detach;
        int64_t timeout_ms;
} RunOptions;

typedef Podmutator__V1__PodManifest PmPodManifest;

static void manifest_freep(PmPodManifest **m) {
        if (*m)
                protobuf_c_message_free_unpacked(&(*m)->base, NULL);
}

typedef struct Run {
        RunOptions opt;
        PmPod *pod;
        PmPodManifest *manifest;
        char *manifest_text;
        size_t manifest_size;
        char *agent_path;
        char **agent_env;
        int sigfd;        /* SIGINT, SIGTERM, SIGHUP */
        int nspawn_pidfd; /* -1 until nspawn runs */
        pid_t nspawn_pid;
        int64_t started_ns;
} Run;

static void run_done(Run *run) {
        pm_pod_free(run->pod);
        manifest_freep(&run->manifest);
        free(run->manifest_text);
        free(run->agent_path);
        strv_freep(&run->agent_env);
        closep(&run->sigfd);
        closep(&run->nspawn_pidfd);
}

/* 0 to go on, -1 when --help was printed, or PM_EXIT_USAGE. */
static int parse_args(int argc, char *argv[], RunOptions *o) {
        static const struct option options[] = {
                { "name", required_argument, NULL, 'n' },
                { "manifest", required_argument, NULL, 'm' },
                { "detach", no_argument, NULL, 'd' },
                { "timeout", required_argument, NULL, 't' },
                { "agent", required_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        *o = (RunOptions) { .timeout_ms = PM_READY_TIMEOUT_MS };
        while ((c = getopt_long(argc, argv, "n:m:dt:a:h", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        o->name = optarg;
                        break;
                case 'm':
                        o->manifest = optarg;
                        break;
                case 'd':
                        o->detach = true;
                        break;
                case 't':
                        if (pm_parse_seconds(optarg, &o->timeout_ms) < 0 || o->timeout_ms == 0)
                                return pm_usage_error("run", "invalid --timeout '%s': expected seconds > 0", optarg);
                        break;
                case 'a':
                        o->agent = optarg;
                        break;
                case 'h':
                        printf("Usage: pm-stage1 run --name NAME [--manifest FILE] [--detach] [--timeout S] "
                               "[--agent PATH]\n");
                        return -1;
                default:
                        return PM_EXIT_USAGE;
                }
        if (optind < argc)
                return pm_usage_error("run", "unexpected argument '%s'", argv[optind]);
        return 0;
}

static int load_manifest(Run *run, char **ret_error) {
        _cleanup_free_ char *parse_error = NULL;
        ProtobufCMessage *msg = NULL;
        int r;

        r = pm_read_file(run->opt.manifest, MANIFEST_MAX, &run->manifest_text, &run->manifest_size);
        if (r == -EFBIG)
                return pm_errorf(ret_error, r, "manifest %s is larger than %u bytes", run->opt.manifest, MANIFEST_MAX);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot read manifest %s: %m", run->opt.manifest);

        r = pm_json_parse_message(run->manifest_text, run->manifest_size, &podmutator__v1__pod_manifest__descriptor,
                                  &msg, &parse_error);
        if (r < 0)
                return pm_errorf(ret_error, r, "invalid manifest %s: %s", run->opt.manifest,
                                 parse_error ? parse_error : strerror(-r));
        run->manifest = (PmPodManifest *) msg;
        return 0;
}

/* An executable regular file, made absolute and canonical. */
static int agent_candidate(const char *path, char **ret) {
        _cleanup_free_ char *canonical = NULL;
        struct stat st;

        canonical = realpath(path, NULL);
        if (!canonical)
                return -errno;
        if (stat(canonical, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if (access(canonical, X_OK) < 0)
                return -errno;
        *ret = TAKE_PTR(canonical);
        return 0;
}

static int find_agent(Run *run, char **ret_error) {
        _cleanup_free_ char *exe = NULL, *beside = NULL, *build_tree = NULL;
        const char *given = run->opt.agent, *what = "--agent";
        int r;

        if (!given && !isempty(getenv("PM_AGENT"))) {
                given = getenv("PM_AGENT");
                what = "PM_AGENT";
        }
        if (given) {
                r = agent_candidate(given, &run->agent_path);
                if (r < 0)
                        return pm_errorf(ret_error, r, "%s %s is not an executable file: %m", what, given);
                return 0;
        }

        /* next to us: ../agent/podmutatord in the meson build tree, or
         * podmutatord in the same directory once installed */
        exe = realpath("/proc/self/exe", NULL);
        if (!exe)
                return pm_errorf(ret_error, -errno, "cannot resolve /proc/self/exe: %m");
        char *dir = dirname(exe);
        if (asprintf(&build_tree, "%s/../agent/" AGENT_BINARY_NAME, dir) < 0 ||
            asprintf(&beside, "%s/" AGENT_BINARY_NAME, dir) < 0)
                return -ENOMEM;
        if (agent_candidate(build_tree, &run->agent_path) >= 0 || agent_candidate(beside, &run->agent_path) >= 0 ||
            agent_candidate(PM_AGENT_INSTALLED, &run->agent_path) >= 0)
                return 0;
        return pm_errorf(ret_error, -ENOENT,
                         "cannot find the agent binary " AGENT_BINARY_NAME " (looked for %s, %s and %s); "
                         "pass --agent PATH or set PM_AGENT",
                         build_tree, beside, PM_AGENT_INSTALLED);
}

static int collect_agent_env(Run *run) {
        size_t n = 0;

        run->agent_env = calloc(ELEMENTSOF(agent_env_vars) + 1, sizeof(char *));
        if (!run->agent_env)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(agent_env_vars); i++) {
                _cleanup_free_ char *assignment = NULL, *quoted = NULL;
                const char *v = getenv(agent_env_vars[i]);

                if (!v)
                        continue;
                if (asprintf(&assignment, "%s=%s", agent_env_vars[i], v) < 0)
                        return -ENOMEM;
                if (pm_unit_env_quote(assignment, &quoted) < 0) {
                        pm_log_warning("not passing %s to the agent: its value is not valid UTF-8", agent_env_vars[i]);
                        continue;
                }
                run->agent_env[n++] = TAKE_PTR(assignment);
        }
        return 0;
}

static int setup_signals(Run *run) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        run->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (run->sigfd < 0)
                return -errno;
        /* a dead agent must not kill us through a socket write */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

/* The signal waiting on sigfd, consumed; 0 if none. */
static int pending_signal(const Run *run) {
        struct signalfd_siginfo si;

        if (read(run->sigfd, &si, sizeof(si)) != (ssize_t) sizeof(si))
                return 0;
        return (int) si.ssi_signo;
}

static int prepare_dirs(Run *run, char **ret_error) {
        PmPod *pod = run->pod;
        int r;

        /* We hold the pod and nothing of it runs: whatever is in its run
         * directory (an old control.sock) is stale and would only mislead
         * the readiness check. */
        r = pm_rm_rf(pod->run_dir);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot remove %s: %m", pod->run_dir);
        r = pm_mkdir_p(pod->run_dir, 0700);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot create %s: %m", pod->run_dir);
        /* the pod's control directory: only root of the node gets in */
        if (chmod(pod->run_dir, 0700) < 0)
                return pm_errorf(ret_error, -errno, "cannot chmod %s: %m", pod->run_dir);
        if (mkdir(pod->root_dir, 0755) < 0)
                return pm_errorf(ret_error, -errno, "cannot create %s: %m", pod->root_dir);
        if (run->manifest_text) {
                r = pm_write_file_atomic(pod->manifest_path, run->manifest_text, run->manifest_size, 0600);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot write %s: %m", pod->manifest_path);
        }
        return 0;
}

static int start_pod(Run *run, char **ret_error) {
        PmPod *pod = run->pod;
        PmRootConfig root = {
                .root_dir = pod->root_dir,
                .name = pod->name,
                .env = run->agent_env,
        };
        PmNspawnConfig nspawn = {
                .root_dir = pod->root_dir,
                .machine = pod->machine,
                .hostname = pod->name,
                .run_dir = pod->run_dir,
                .agent_path = run->agent_path,
                .console_path = pod->console_path,
                .name = pod->name,
                .cgroup_record = pod->cgroup_record_path,
        };
        int r;

        r = pm_root_assemble(&root, ret_error);
        if (r < 0)
                return r;
        r = pm_nspawn_spawn(&nspawn, &run->nspawn_pid, &run->nspawn_pidfd, ret_error);
        if (r < 0)
                return r;
        r = pm_pid_file_write(pod->nspawn_pid_path, run->nspawn_pid);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot write %s: %m", pod->nspawn_pid_path);
        return 0;
}

static bool is_socket(const char *path) {
        struct stat st;

        return lstat(path, &st) >= 0 && S_ISSOCK(st.st_mode);
}

/* Waits until the agent answers a hello on the control socket: woken by
 * the socket appearing (inotify), the pod dying (pidfd), a signal
 * (signalfd) or the deadline. */
static int wait_ready(Run *run, int64_t deadline, char **ret_error) {
        _cleanup_free_ char *last_error = NULL;
        _cleanup_close_ int ifd = -1;
        PmPod *pod = run->pod;
        int sig;

        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return pm_errorf(ret_error, -errno, "cannot create an inotify instance: %m");
        if (inotify_add_watch(ifd, pod->run_dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0)
                return pm_errorf(ret_error, -errno, "cannot watch %s: %m", pod->run_dir);

        for (;;) {
                int64_t left = pm_ms_until(deadline), wait_ms = left;
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                struct pollfd p[3] = {
                        { .fd = ifd, .events = POLLIN },
                        { .fd = run->nspawn_pidfd, .events = POLLIN },
                        { .fd = run->sigfd, .events = POLLIN },
                };

                if (left == 0)
                        return pm_errorf(ret_error, -ETIMEDOUT,
                                         "pod %s: the agent did not answer on %s within %" PRIi64 " ms%s%s", pod->name,
                                         pod->socket_path, run->opt.timeout_ms, last_error ? ": " : "",
                                         strempty(last_error));

                if (is_socket(pod->socket_path)) {
                        _cleanup_(pm_client_freep) PmClient *client = NULL;
                        _cleanup_free_ char *error = NULL;
                        const char *served;
                        int r;

                        r = pm_client_connect(pod->socket_path, (int) (left > INT_MAX ? INT_MAX : left), &client,
                                              &error);
                        if (r >= 0) {
                                served = pm_client_pod_name(client);
                                if (!isempty(served) && !streq(served, pod->name))
                                        return pm_errorf(ret_error, -EPROTO,
                                                         "the agent on %s serves pod '%s', not '%s'",
                                                         pod->socket_path, served, pod->name);
                                return 0;
                        }
                        free(last_error);
                        if (error)
                                last_error = TAKE_PTR(error);
                        else if (asprintf(&last_error, "%s", strerror(-r)) < 0)
                                last_error = NULL;
                        wait_ms = left < CONNECT_RETRY_MS ? left : CONNECT_RETRY_MS;
                }

                if (poll(p, ELEMENTSOF(p), (int) (wait_ms > INT_MAX ? INT_MAX : wait_ms)) < 0) {
                        if (errno == EINTR)
                                continue;
                        return pm_errorf(ret_error, -errno, "cannot wait for pod %s: %m", pod->name);
                }
                if (p[1].revents)
                        return pm_errorf(ret_error, -ECHILD, "pod %s: systemd-nspawn exited before the agent answered",
                                         pod->name);
                if (p[2].revents && (sig = pending_signal(run)) > 0)
                        return pm_errorf(ret_error, -ECANCELED, "pod %s: interrupted by SIG%s while starting",
                                         pod->name, sigabbrev_np(sig));
                /* the events only wake us; the socket is looked at anew */
                while (read(ifd, buf, sizeof(buf)) > 0)
                        ;
        }
}

static const char *app_label(const Podmutator__V1__AppSpec *spec, size_t i, char *buf, size_t size) {
        if (isempty(spec->name))
                snprintf(buf, size, "#%zu (no name)", i + 1);
        else if (!isempty(spec->namespace_))
                snprintf(buf, size, "%s/%s", spec->namespace_, spec->name);
        else
                snprintf(buf, size, "%s", spec->name);
        return buf;
}

/* Injects and starts the manifest's apps, in order, through the agent:
 * the same call a remote client makes. */
static int inject_apps(Run *run, char **ret_error) {
        _cleanup_(pm_client_freep) PmClient *client = NULL;
        _cleanup_free_ char *error = NULL;
        PmPod *pod = run->pod;
        int r;

        if (!run->manifest || run->manifest->n_apps == 0)
                return 0;

        r = pm_client_connect(pod->socket_path, (int) run->opt.timeout_ms, &client, &error);
        if (r < 0)
                return pm_errorf(ret_error, r, "pod %s: cannot connect to the agent: %s", pod->name,
                                 error ? error : strerror(-r));

        for (size_t i = 0; i < run->manifest->n_apps; i++) {
                Podmutator__V1__AppSpec *spec = run->manifest->apps[i];
                char label[160];
                int sig;

                if ((sig = pending_signal(run)) > 0)
                        return pm_errorf(ret_error, -ECANCELED, "pod %s: interrupted by SIG%s while starting apps",
                                         pod->name, sigabbrev_np(sig));

                app_label(spec, i, label, sizeof(label));
                r = pm_app_inject_on(client, pod->name, label, spec, true, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Stops what was started and removes the directories. Reports its own
 * failures: the caller is already failing. */
static void undo(Run *run) {
        _cleanup_free_ char *error = NULL;
        bool forced;
        int r = 0;

        if (run->nspawn_pidfd >= 0) {
                r = pm_pod_terminate(run->pod, run->nspawn_pidfd, run->nspawn_pid, PM_STOP_TIMEOUT_MS, run->sigfd,
                                     &forced, &error);
                (void) waitpid(run->nspawn_pid, NULL, WNOHANG);
        }
        if (r >= 0)
                r = pm_pod_kill_leftovers(run->pod, &error);
        if (r >= 0)
                r = pm_pod_remove(run->pod, &error);
        if (r < 0)
                pm_log_error(r, "%s; the pod is left in %s", error ? error : strerror(-r), run->pod->state_dir);
}

/* In the foreground: until the pod ends or we are told to end it. Returns
 * the exit status. */
static int run_foreground(Run *run) {
        _cleanup_free_ char *error = NULL;
        PmPod *pod = run->pod;
        bool forced = false;
        int status = 0, r, sig = 0;

        r = pm_pidfd_wait(run->nspawn_pidfd, run->sigfd, -1);
        if (r < 0) {
                pm_log_error(r, "pod %s: cannot wait for systemd-nspawn: %m", pod->name);
                undo(run);
                return PM_EXIT_FAILURE;
        }
        if (r == 0) {
                sig = pending_signal(run);
                /* a second signal during the poweroff kills the pod */
                r = pm_pod_terminate(pod, run->nspawn_pidfd, run->nspawn_pid, PM_STOP_TIMEOUT_MS, run->sigfd, &forced,
                                     &error);
                if (r < 0) {
                        pm_log_error(r, "%s", error);
                        return PM_EXIT_FAILURE;
                }
                if (forced)
                        pm_log_warning("pod %s was killed", pod->name);
        }

        if (waitpid(run->nspawn_pid, &status, 0) < 0)
                status = 0; /* not our child after all: nothing to report */
        if (sig == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                pm_console_tail(pod->console_path, PM_CONSOLE_TAIL_LINES);

        r = pm_pod_kill_leftovers(pod, &error);
        if (r >= 0)
                r = pm_pod_remove(pod, &error);
        if (r < 0) {
                pm_log_error(r, "%s", error);
                return PM_EXIT_FAILURE;
        }

        if (sig > 0)
                return forced ? PM_EXIT_FAILURE : PM_EXIT_OK;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return PM_EXIT_OK;
        if (WIFEXITED(status))
                pm_log_error(-ECHILD, "pod %s ended: systemd-nspawn exited with status %d", pod->name,
                             WEXITSTATUS(status));
        else
                pm_log_error(-ECHILD, "pod %s ended: systemd-nspawn was killed by SIG%s", pod->name,
                             sigabbrev_np(WTERMSIG(status)));
        return PM_EXIT_FAILURE;
}

int pm_verb_run(int argc, char *argv[]) {
        _cleanup_(run_done) Run run = { .sigfd = -1, .nspawn_pidfd = -1 };
        _cleanup_free_ char *error = NULL;
        bool replaced, started = false;
        const char *name;
        int r;

        r = parse_args(argc, argv, &run.opt);
        if (r != 0)
                return r < 0 ? PM_EXIT_OK : r;
        run.started_ns = pm_now_monotonic_ns();

        if (run.opt.manifest) {
                r = load_manifest(&run, &error);
                if (r < 0)
                        goto fail;
        }
        name = run.opt.name;
        if (!name && run.manifest && !isempty(run.manifest->name))
                name = run.manifest->name;
        if (!name)
                return pm_usage_error("run", "missing --name (and the manifest names no pod)");
        if (run.opt.name && !pm_dns_label_valid(run.opt.name))
                return pm_usage_error("run", "invalid pod name '%s': it must be a lowercase DNS label", run.opt.name);

        if (geteuid() != 0) {
                r = pm_errorf(&error, -EPERM, "pod %s: must run as root (systemd-nspawn needs it)", name);
                goto fail;
        }
        r = find_agent(&run, &error);
        if (r < 0)
                goto fail;
        r = collect_agent_env(&run);
        if (r < 0)
                goto fail;
        r = pm_pod_new(name, true, &run.pod, &error);
        if (r < 0)
                goto fail;

        r = setup_signals(&run);
        if (r < 0) {
                pm_errorf(&error, r, "cannot set up signal handling: %m");
                goto fail;
        }
        /* nspawn, orphaned by the double fork, becomes our child: we can
         * read its exit status, and its PID stays ours while we run */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                r = pm_errorf(&error, -errno, "cannot become a child subreaper: %m");
                goto fail;
        }

        r = pm_pod_claim(run.pod, &replaced, &error);
        if (r < 0)
                goto fail;
        if (replaced)
                pm_log_warning("removed what a dead pod named %s left behind", name);

        started = true;
        r = prepare_dirs(&run, &error);
        if (r < 0)
                goto fail;
        r = start_pod(&run, &error);
        if (r < 0)
                goto fail;

        r = wait_ready(&run, run.started_ns + run.opt.timeout_ms * 1000000LL, &error);
        if (r < 0) {
                pm_log_error(r, "%s", error);
                if (r != -ECANCELED)
                        pm_console_tail(run.pod->console_path, PM_CONSOLE_TAIL_LINES);
                undo(&run);
                return PM_EXIT_FAILURE;
        }
        r = pm_pod_record_leader(run.pod, run.nspawn_pid);
        if (r < 0)
                pm_log_warning("pod %s: cannot record the PID of its PID 1: %s", name, strerror(-r));

        r = inject_apps(&run, &error);
        if (r < 0)
                goto fail;

        printf("%s %s\n", run.pod->name, run.pod->socket_path);
        fflush(stdout);

        if (run.opt.detach)
                return PM_EXIT_OK; /* the lock goes with us; the pod stays */
        return run_foreground(&run);

fail:
        pm_log_error(r, "%s", error ? error : strerror(-r));
        if (started)
                undo(&run);
        return PM_EXIT_FAILURE;
}
