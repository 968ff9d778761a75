/* libpmclient: a blocking client of the PodMutator control protocol.
 * One PmClient is one connection; calls on it are made one at a time. */
#pragma once

#include <stddef.h>

#include "codes.h"
#include "frame.h"

typedef struct PmClient PmClient;
typedef Podmutator__V1__Request PmRequest;
typedef Podmutator__V1__Response PmResponse;

/* The control socket of pod `pod` on this node. */
int pm_pod_socket_path(const char *pod, char **ret_path);

/* Connects and says hello (protocol version check). timeout_ms bounds every
 * later wait on this connection too; 0 means 30 s. On failure returns a
 * negative errno and, if ret_error is given, a message for a person. An
 * agent that refuses the connection gives -EACCES (not allowed), -EUSERS
 * (too many connections) or -EPROTO (protocol version). */
int pm_client_connect(const char *socket_path, int timeout_ms, PmClient **ret, char **ret_error);
void pm_client_free(PmClient *c);
static inline void pm_client_freep(PmClient **c) {
        if (*c)
                pm_client_free(*c);
}

/* Sends req and waits for its response. A negative errno means the
 * transport failed; otherwise *ret holds the response, whose code may say
 * the call failed. Free it with pm_response_free(). */
int pm_client_call(PmClient *c, PmRequest *req, PmResponse **ret);

/* Streaming calls (Exec). The caller polls pm_client_fd() itself: for
 * reading, and for writing while pm_client_queued() is not zero. */
int pm_client_fd(const PmClient *c);
/* A new call id for a request the caller sends itself. */
uint64_t pm_client_new_call_id(PmClient *c);
/* Appends one frame to the outgoing queue; nothing is sent yet. */
int pm_client_queue(PmClient *c, const PmEnvelope *env);
size_t pm_client_queued(const PmClient *c);
/* Sends what the socket takes now, without blocking. */
int pm_client_flush(PmClient *c);
/* Without blocking: 1 and *ret when a frame is in, 0 when none is yet,
 * -ECONNRESET when the agent closed the connection. */
int pm_client_receive(PmClient *c, PmEnvelope **ret);

/* The agent's version string and pod name from the hello exchange. */
const char *pm_client_agent_version(const PmClient *c);
const char *pm_client_pod_name(const PmClient *c);

void pm_response_free(PmResponse *resp);
static inline void pm_response_freep(PmResponse **r) {
        if (*r)
                pm_response_free(*r);
}
