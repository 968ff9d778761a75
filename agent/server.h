/* The control server: a unix socket (mode 0600, peers checked by their
 * credentials), framed envelopes, many calls in flight per connection.
 * Limits are checked before allocation. */
#pragma once

#include <stdint.h>

#include "codes.h"
#include "frame.h"
#include "manager.h"
#include "util.h"

#define PM_CONNECTIONS_MAX 128
#define PM_CALLS_IN_FLIGHT_MAX 64
/* A client that does not read its replies is cut off past this. */
#define PM_WRITE_BACKLOG_MAX (64u * 1024u * 1024u)

typedef struct Conn Conn;
typedef Podmutator__V1__Response PmResponse;

/* One call in flight. Handlers finish it exactly once with pm_call_reply()
 * or pm_call_fail(); if the client went away meanwhile, the answer is
 * dropped. */
typedef struct Call {
        Manager *m;
        Conn *conn;
        uint64_t id;
        int result_case; /* what a successful answer carries */
} Call;

int pm_server_start(Manager *m, const char *socket_path);
void pm_server_stop(Manager *m);

/* Sends resp (code set by the caller, normally OK) and frees the call. */
void pm_call_reply(Call *call, PmResponse *resp);
_printf_(3, 4) void pm_call_fail(Call *call, PmCode code, const char *fmt, ...);

/* rpc.c: runs one request; always ends the call. */
void pm_rpc_dispatch(Call *call, Podmutator__V1__Request *req);
