/* How pmctl prints: tables and key/value blocks for people, JSON for
 * programs (the field names of the proto, see docs/protocol.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "podmutator.pb-c.h"

typedef Podmutator__V1__AppStatus PmAppStatus;

/* "running", "exited", ... */
const char *pm_state_name(Podmutator__V1__AppState state);
int pm_state_from_name(const char *name, Podmutator__V1__AppState *ret);

void pm_print_app_table(PmAppStatus *const *apps, size_t n);
void pm_print_app_details(const PmAppStatus *app);
/* The spec of an app, a field a line (inspect). */
void pm_print_app_spec(const Podmutator__V1__AppSpec *spec);
void pm_print_info(const Podmutator__V1__InfoResponse *info);

/* One JSON document on stdout: a message, or an array of messages. */
int pm_print_json_message(const ProtobufCMessage *msg);
int pm_print_json_message_to(FILE *f, const ProtobufCMessage *msg);
int pm_print_json_array(ProtobufCMessage *const *msgs, size_t n);
