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

/* watch.c */
int verb_events(int argc, char **argv);
int verb_ps(int argc, char **argv);
int verb_stats(int argc, char **argv);

/* exec.c */
int verb_exec(int argc, char **argv);
int verb_pipe(int argc, char **argv);
/* Runs spec once, attached to our stdio; returns the command's exit code. */
int run_once(PmAppSpec *spec, bool want_stdin, bool tty);
