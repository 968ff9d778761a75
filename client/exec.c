/* The attached verbs of pmctl: exec, run --rm (run once), pipe. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "attach.h"
#include "output.h"
#include "pbjson.h"
#include "pmctl.h"

#define SYNC_STDIN_MAX (3u * 1024u * 1024u)

typedef Podmutator__V1__ExecRequest ExecRequest;

/* The local terminal in raw mode for an interactive session, restored by
 * terminal_restore(). */
typedef struct Terminal {
        bool raw;
        struct termios saved;
} Terminal;

static void terminal_raw(Terminal *t) {
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved) < 0)
                return;
        struct termios raw = t->saved;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) >= 0)
                t->raw = true;
}

static void terminal_restore(Terminal *t) {
        if (t->raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
        t->raw = false;
}

/* The exit code pmctl gives for an Exec answer: the command's own. */
static int exec_result(PmResponse *resp) {
        if (resp->code != PODMUTATOR__V1__CODE__CODE_OK) {
                fprintf(stderr, "pmctl: %s: %s\n", pm_code_name(resp->code), resp->message);
                return exit_code_of(resp->code);
        }
        if (resp->result_case != PODMUTATOR__V1__RESPONSE__RESULT_EXEC) {
                fprintf(stderr, "pmctl: the agent answered with an unexpected result\n");
                return EXIT_ERROR;
        }
        return resp->exec->exit_code;
}

/* Runs an Exec request attached to fds; the command's exit code, or a
 * pmctl exit code when the call itself failed. */
static int attach_request(PmClient *c, ExecRequest *exec, const AttachIo *io) {
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_EXEC;
        req.exec = exec;
        Podmutator__V1__WindowResize size = PODMUTATOR__V1__WINDOW_RESIZE__INIT;
        Terminal term = { 0 };
        if (exec->tty) {
                pm_terminal_size(STDOUT_FILENO, &size.rows, &size.cols);
                exec->size = &size;
                if (exec->stdin)
                        terminal_raw(&term);
        }
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = pm_attach(c, &req, io, &resp);
        terminal_restore(&term);
        if (r < 0) {
                fprintf(stderr, "pmctl: the connection to the agent failed: %s\n", strerror(-r));
                return r == -EINTR ? EXIT_ERROR : EXIT_UNAVAILABLE;
        }
        return exec_result(resp);
}

static int attach_stdio(ExecRequest *exec) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        int r = connect_pod(&c);
        if (r < 0)
                return -r;
        AttachIo io = { .in_fd = exec->stdin ? STDIN_FILENO : -1, .out_fd = STDOUT_FILENO, .err_fd = STDERR_FILENO,
                        .tty = exec->tty };
        return attach_request(c, exec, &io);
}

int run_once(PmAppSpec *spec, bool want_stdin, bool tty) {
        ExecRequest exec = PODMUTATOR__V1__EXEC_REQUEST__INIT;
        exec.spec = spec;
        exec.stdin = want_stdin;
        exec.tty = tty;
        return attach_stdio(&exec);
}

static void print_truncated(const char *stream, bool truncated, size_t kept) {
        if (truncated)
                fprintf(stderr, "pmctl: %s was cut after %zu bytes\n", stream, kept);
}

static int exec_sync(ExecRequest *exec) {
        Podmutator__V1__ExecSyncRequest sync = PODMUTATOR__V1__EXEC_SYNC_REQUEST__INIT;
        sync.ref = exec->ref;
        sync.argv = exec->argv;
        sync.n_argv = exec->n_argv;
        sync.env = (Podmutator__V1__ExecSyncRequest__EnvEntry **) exec->env;
        sync.n_env = exec->n_env;
        sync.timeout_seconds = exec->timeout_seconds;
        _cleanup_free_ char *in = NULL;
        if (exec->stdin) {
                int r = pm_read_file("/dev/stdin", SYNC_STDIN_MAX, &in, &sync.stdin.len);
                if (r < 0) {
                        fprintf(stderr, "pmctl: cannot read stdin: %s\n", r == -EFBIG ? "more than 3 MiB" : strerror(-r));
                        return EXIT_INVALID;
                }
                sync.stdin.data = (uint8_t *) in;
        }
        PmRequest req = PODMUTATOR__V1__REQUEST__INIT;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_EXEC_SYNC;
        req.exec_sync = &sync;
        _cleanup_(pm_response_freep) PmResponse *resp = NULL;
        int r = call(&req, &resp);
        if (r != 0)
                return r;
        Podmutator__V1__ExecSyncResponse *res = resp->exec_sync;
        if (arg_json)
                pm_print_json_message_to(stdout, &res->base);
        else {
                if (res->stdout.len > 0)
                        fwrite(res->stdout.data, 1, res->stdout.len, stdout);
                if (res->stderr.len > 0)
                        fwrite(res->stderr.data, 1, res->stderr.len, stderr);
                print_truncated("stdout", res->stdout_truncated, res->stdout.len);
                print_truncated("stderr", res->stderr_truncated, res->stderr.len);
        }
        return res->exit_code;
}

int verb_exec(int argc, char **argv) {
        static const struct option options[] = {
                { "interactive", no_argument, NULL, 'i' },
                { "tty", no_argument, NULL, 't' },
                { "sync", no_argument, NULL, 's' },
                { "timeout", required_argument, NULL, 'T' },
                { "env", required_argument, NULL, 'e' },
                { "ns", required_argument, NULL, 'n' },
                {},
        };
        ExecRequest exec = PODMUTATOR__V1__EXEC_REQUEST__INIT;
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        bool sync = false;
        int c, r = 0;
        reset_getopt();
        while (r == 0 && (c = getopt_long(argc, argv, "+ite:", options, NULL)) >= 0) {
                switch (c) {
                case 'i': exec.stdin = true; break;
                case 't': exec.tty = true; break;
                case 's': sync = true; break;
                case 'T':
                        if (pm_parse_u32(optarg, &exec.timeout_seconds) < 0 || exec.timeout_seconds == 0)
                                r = usage_error("exec: --timeout takes a number of seconds, not \"%s\"", optarg);
                        break;
                case 'e':
                        r = add_pair("--env", optarg, (ProtobufCMessage ***) &exec.env, &exec.n_env,
                                     &podmutator__v1__exec_request__env_entry__descriptor);
                        break;
                case 'n': ref.namespace_ = optarg; break;
                default: r = EXIT_USAGE;
                }
        }
        if (r == 0 && argc - optind < 2)
                r = usage_error("exec: expects APP -- CMD [ARG...]");
        if (r == 0 && sync && exec.tty)
                r = usage_error("exec: --sync captures output; it takes no terminal");
        /* APP -- CMD: getopt stopped at APP, so the "--" is still there. */
        int cmd = optind + 1;
        if (r == 0 && streq(argv[cmd], "--"))
                cmd++;
        if (r == 0 && cmd >= argc)
                r = usage_error("exec: expects APP -- CMD [ARG...]");
        if (r == 0) {
                ref.app = argv[optind];
                exec.ref = &ref;
                exec.argv = argv + cmd;
                exec.n_argv = (size_t) (argc - cmd);
                /* The command's exit code can outlast our default timeout. */
                arg_timeout_ms = exec.timeout_seconds ? (int) (exec.timeout_seconds + 30) * 1000 : 86400 * 1000;
                r = sync ? exec_sync(&exec) : attach_stdio(&exec);
        }
        for (size_t i = 0; i < exec.n_env; i++)
                protobuf_c_message_free_unpacked(&exec.env[i]->base, NULL);
        free(exec.env);
        return r;
}

/* pipe: stage i reads what stage i-1 wrote, kept in memory files, so a
 * failing stage stops the pipeline before the next one starts. */
static int run_stage(PmClient *c, PmAppSpec *spec, int in_fd, int out_fd, int err_fd) {
        ExecRequest exec = PODMUTATOR__V1__EXEC_REQUEST__INIT;
        exec.spec = spec;
        exec.stdin = true;
        AttachIo io = { .in_fd = in_fd, .out_fd = out_fd, .err_fd = err_fd };
        return attach_request(c, &exec, &io);
}

static void report_stage_failure(int stage, const char *name, int code, int err_fd) {
        fprintf(stderr, "pmctl: pipe stage %d (%s) failed with exit code %d", stage, name, code);
        off_t size = lseek(err_fd, 0, SEEK_END);
        if (size <= 0) {
                fprintf(stderr, " and no stderr\n");
                return;
        }
        fprintf(stderr, "; its stderr:\n");
        fflush(stderr);
        char buf[65536];
        ssize_t n;
        lseek(err_fd, 0, SEEK_SET);
        while ((n = read(err_fd, buf, sizeof(buf))) > 0)
                if (write(STDERR_FILENO, buf, (size_t) n) < 0)
                        break;
}

static int run_pipeline(PmAppSpec **specs, size_t n) {
        _cleanup_(pm_client_freep) PmClient *c = NULL;
        int r = connect_pod(&c);
        if (r < 0)
                return -r;
        arg_timeout_ms = 86400 * 1000;
        int in_fd = STDIN_FILENO;
        for (size_t i = 0; i < n; i++) {
                bool last = i == n - 1;
                _cleanup_close_ int err_fd = memfd_create("pmctl-stderr", MFD_CLOEXEC);
                int out_fd = last ? STDOUT_FILENO : memfd_create("pmctl-stage", MFD_CLOEXEC);
                if (err_fd < 0 || out_fd < 0) {
                        fprintf(stderr, "pmctl: cannot make a buffer for a pipe stage: %m\n");
                        r = EXIT_ERROR;
                } else
                        r = run_stage(c, specs[i], in_fd, out_fd, err_fd);
                if (in_fd != STDIN_FILENO)
                        close(in_fd);
                if (r != 0) {
                        report_stage_failure((int) i + 1, specs[i]->name, r, err_fd);
                        if (!last && out_fd >= 0)
                                close(out_fd);
                        return r;
                }
                /* Successful stages' stderr goes where ours goes. */
                lseek(err_fd, 0, SEEK_SET);
                char buf[65536];
                ssize_t k;
                while ((k = read(err_fd, buf, sizeof(buf))) > 0)
                        if (write(STDERR_FILENO, buf, (size_t) k) < 0)
                                break;
                if (!last) {
                        lseek(out_fd, 0, SEEK_SET);
                        in_fd = out_fd;
                }
        }
        return EXIT_OK;
}

int verb_pipe(int argc, char **argv) {
        static const struct option options[] = {
                { "file", required_argument, NULL, 'f' },
                {},
        };
        PmAppSpec *specs[64];
        size_t n = 0;
        int c, r = 0;
        reset_getopt();
        while (r == 0 && (c = getopt_long(argc, argv, "+f:", options, NULL)) >= 0) {
                if (c != 'f')
                        r = EXIT_USAGE;
                else if (n >= ELEMENTSOF(specs))
                        r = usage_error("pipe: at most %zu stages", ELEMENTSOF(specs));
                else if ((r = read_spec_file(optarg, &specs[n])) == 0)
                        n++;
        }
        if (r == 0 && (n == 0 || optind != argc))
                r = usage_error("pipe: expects -f SPEC.json for each stage, and nothing else");
        if (r == 0)
                r = run_pipeline(specs, n);
        for (size_t i = 0; i < n; i++)
                protobuf_c_message_free_unpacked(&specs[i]->base, NULL);
        return r;
}
