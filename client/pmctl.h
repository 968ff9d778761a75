/* What the verbs of pmctl share: global options, connecting, calling,
 * exit codes. Only main() exits; verbs return an exit code. */
#pragma once

#include <stdbool.h>

#include "pmclient.h"
#include "util.h"

/* Exit codes, documented in --help and the README. */
enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,
        EXIT_USAGE = 2,
        EXIT_UNAVAILABLE = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_INVALID = 5,
        EXIT_EXISTS = 6,
        EXIT_PRECONDITION = 7,
        EXIT_DEADLINE = 8,
        EXIT_DENIED = 9,
        EXIT_EXHAUSTED = 10,
};

#define SPEC_FILE_MAX (4u * 1024u * 1024u)

typedef Podmutator__V1__AppSpec PmAppSpec;

extern const char *arg_pod;
extern const char *arg_socket;
extern bool arg_json;
extern int arg_timeout_ms;

_printf_(1, 2) int usage_error(const char *fmt, ...);
int exit_code_of(PmCode code);
/* Connects to the pod; a negative exit code on failure (message printed). */
int connect_pod(PmClient **ret);
/* One call; 0 with *ret, or an exit code (message printed). */
int call(PmRequest *req, PmResponse **ret);
/* The same on a connection the caller keeps. */
int call_on(PmClient *c, PmRequest *req, PmResponse **ret);
void reset_getopt(void);
/* A KEY=VALUE argument as a new map entry of the given descriptor. */
int add_pair(const char *what, const char *arg, ProtobufCMessage ***entries, size_t *n,
             const ProtobufCMessageDescriptor *desc);
/* An AppSpec from a JSON file ("-" for stdin); an exit code on failure. */
int read_spec_file(const char *file, PmAppSpec **ret);

/* "30s", "5m", "2h" ago, an RFC 3339 time, or seconds since the epoch
 * (nanoseconds when it has more than 12 digits), as ns since the epoch. */
int parse_since(const char *s, int64_t *ret);
/* A stream call in flight: on_frame gets each frame of call_id but the
 * final Response, until that Response; SIGINT/SIGTERM send Cancel. Returns
 * the exit code. */
int stream_loop(PmClient *c, uint64_t call_id, void (*on_frame)(const PmEnvelope *env, void *userdata),
                void *userdata);
/* Sends req as a new call on c; its call id, or 0 (message printed). */
uint64_t start_call(PmClient *c, PmRequest *req);
/* Connects to the pod, sends req and runs stream_loop on its frames.
 * Returns the exit code. */
int run_stream_call(PmRequest *req, void (*on_frame)(const PmEnvelope *env, void *userdata), void *userdata);

/* logs.c */
int verb_logs(int argc, char **argv);

/* watch.c */
int verb_events(int argc, char **argv);
int verb_ps(int argc, char **argv);
int verb_stats(int argc, char **argv);

/* exec.c */
int verb_exec(int argc, char **argv);
int verb_pipe(int argc, char **argv);
/* Runs spec once, attached to our stdio; returns the command's exit code. */
int run_once(PmAppSpec *spec, bool want_stdin, bool tty);
