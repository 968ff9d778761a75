/* JSON <-> protobuf-c messages, driven by the message descriptors, so every
 * message of the API has one JSON form: the field names of the .proto.
 *
 * Mapping:
 *  - string, bool: as is. Integers: JSON integers (64-bit ones too), range
 *    checked against the field's type. Floats/doubles: JSON numbers.
 *  - bytes: base64 strings.
 *  - enums: the value's short name: the enum's type-name prefix removed,
 *    lowercased, '_' written as '-': RestartPolicy RESTART_POLICY_ON_FAILURE
 *    is "on-failure", AppState APP_STATE_RUNNING is "running". Parsing also
 *    accepts the full value name.
 *  - map<K,V> fields (repeated *Entry messages with key/value): JSON objects.
 *  - repeated fields: arrays. Messages: objects. oneof: the member's name.
 *  - Output writes every field of a message (defaults included), except
 *    oneof members that are not set.
 * Parsing rejects unknown fields, wrong types, out of range numbers, unknown
 * enum names, strings that are not valid UTF-8 or hold NUL, duplicate map
 * keys, and nesting deeper than 32, with a message naming the field path,
 * e.g. "apps[1].env.PATH: expected a string, got number".
 *
 * All memory of a parsed message is malloc()ed, so it is freed with
 * protobuf_c_message_free_unpacked(msg, NULL). */
#pragma once

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Parses JSON text into a new message of type desc. On failure returns
 * -EINVAL (bad JSON or bad content) or -ENOMEM and, when ret_error is not
 * NULL, a malloc()ed message for a person. */
int pm_json_parse_message(const char *text, size_t size, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **ret, char **ret_error);

/* Fills an initialised message from a parsed JSON value (an object). On
 * failure the message may be partly filled; free it. */
int pm_json_to_message(json_object *obj, ProtobufCMessage *msg, char **ret_error);

/* A new JSON object for msg; NULL only when out of memory. */
json_object *pm_message_to_json(const ProtobufCMessage *msg);

/* The short JSON name of an enum value, written into buf. NULL if the value
 * is not one of the enum's. */
const char *pm_enum_to_name(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t size);
/* Looks up an enum value by short or full name. -EINVAL if none matches. */
int pm_enum_from_name(const ProtobufCEnumDescriptor *desc, const char *name, int *ret);
