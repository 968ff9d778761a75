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
/* Streams pause their producers while a connection's unsent bytes are over
 * the high mark, and resume once they are under the low one. */
#define PM_BACKLOG_HIGH (1024u * 1024u)
#define PM_BACKLOG_LOW (256u * 1024u)

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

/* A streaming call (Exec, Watch) gets the stream frames of its call id.
 * on_cancel and on_close are required; a NULL one of the others ignores
 * what it would be told. */
typedef struct StreamOps {
        void (*on_data)(void *userdata, uint32_t fd, const uint8_t *data, size_t size);
        void (*on_end)(void *userdata, uint32_t fd);
        void (*on_resize)(void *userdata, uint32_t rows, uint32_t cols);
        void (*on_cancel)(void *userdata);
        /* The client caught up: producers paused by pm_call_backlogged() may go on. */
        void (*on_drain)(void *userdata);
        /* The client is gone; the call must still be ended, its answer is dropped. */
        void (*on_close)(void *userdata);
} StreamOps;

void pm_call_attach_stream(Call *call, const StreamOps *ops, void *userdata);
/* Sends env (a stream frame such as an event) on the call's id. */
int pm_call_send(Call *call, PmEnvelope *env);
/* Sends StreamData of stream fd without a copy: the data is at
 * buf + PM_FRAME_DATA_HEADROOM, and buf (malloc()ed) is the send's to free. */
int pm_call_send_data_buffer(Call *call, uint32_t fd, uint8_t *buf, size_t size);
/* True while the client has more than PM_BACKLOG_HIGH unsent bytes. */
bool pm_call_backlogged(Call *call);
/* Stops (or resumes) reading the call's connection: back pressure on a
 * client that sends faster than a command reads its stdin. Counted. */
void pm_call_pause_input(Call *call, bool pause);

/* rpc.c: runs one request; always ends the call. */
void pm_rpc_dispatch(Call *call, Podmutator__V1__Request *req);
