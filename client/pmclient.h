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

/* The agent's version string and pod name from the hello exchange. */
const char *pm_client_agent_version(const PmClient *c);
const char *pm_client_pod_name(const PmClient *c);

void pm_response_free(PmResponse *resp);
static inline void pm_response_freep(PmResponse **r) {
        if (*r)
                pm_response_free(*r);
}
