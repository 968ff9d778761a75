/* Exec: a command run as a transient systemd unit in an app's world (its
 * root, environment, user, working directory, network), with its stdio
 * passed to systemd as file descriptors: a pty for a terminal session,
 * pipes otherwise. Also runs an AppSpec once, attached ("run --rm").
 *
 * Output flows to the client as StreamData frames, stdin flows back; both
 * directions pause when the other side falls behind, so a slow reader slows
 * the command rather than growing the agent. A timeout is systemd's
 * RuntimeMaxSec=. A client that goes away has its command stopped. */
#pragma once

#include "manager.h"
#include "server.h"

/* Each output stream of ExecSync is kept up to this many bytes. */
#define PM_EXEC_SYNC_OUTPUT_MAX (16u * 1024u * 1024u)
/* Execs (streaming and sync) in flight in the whole agent. */
#define PM_EXECS_MAX 256

/* What the command runs as: taken from the app it runs in, or from the
 * spec it runs once. The strings are borrowed for the call only. */
typedef struct ExecWorld {
        char *const *argv;
        size_t n_argv;
        Podmutator__V1__AppSpec__EnvEntry *const *env;       /* the app's */
        size_t n_env;
        Podmutator__V1__AppSpec__EnvEntry *const *extra_env; /* the request's, winning */
        size_t n_extra_env;
        const char *user, *group, *working_dir, *rootfs;
        const char *app_id; /* the app it runs in; NULL for a run once */
        /* The network: a namespace to join (NetworkNamespacePath=), or one
         * of its own with loopback only; neither: the pod's. */
        const char *netns_path;
        bool private_network;
        char netns_buf[48]; /* storage for netns_path when it is made up */
} ExecWorld;

typedef struct ExecOptions {
        bool sync;          /* capture output and answer once (ExecSync) */
        bool tty;           /* a pty for all three of stdin, stdout, stderr */
        bool want_stdin;    /* stdin comes from the client, else /dev/null */
        uint32_t timeout_s; /* 0: none */
        uint32_t rows, cols;
        const uint8_t *stdin_data; /* ExecSync: the whole of stdin */
        size_t stdin_size;
        uint32_t output_limit;     /* ExecSync: per stream; 0 = the maximum */
} ExecOptions;

/* Runs w's command as unit "<prefix>-<random>.service"; always ends the
 * call, with ExecResponse or ExecSyncResponse, or an error. */
void pm_exec_launch(Call *call, const ExecWorld *w, const ExecOptions *o, const char *prefix);

/* systemd.c: the signals of an exec's unit. */
void pm_exec_unit_changed(ExecSession *e, const UnitProps *p);
void pm_exec_unit_removed(ExecSession *e);
