/* JSON <-> protobuf-c messages, driven by the message descriptors, so every
 * message of the API has one JSON form: the field names of the .proto.
 *
 * Mapping:
 *  - string, bool: as is. Integers: JSON integers (64-bit ones too), range
 *    checked against the field's type; 1.0 and 1e3 are not integers.
 *    Floats/doubles: JSON numbers, finite.
 *  - bytes: base64 strings (RFC 4648 standard alphabet; the '=' padding may be
 *    left out on input, and is always written).
 *  - enums: the value's short name: the enum's type-name prefix removed,
 *    lowercased, '_' written as '-': RestartPolicy RESTART_POLICY_ON_FAILURE
 *    is "on-failure", AppState APP_STATE_RUNNING is "running". Parsing also
 *    accepts the full value name; output writes a number the enum does not
 *    know (from a newer peer) as a JSON integer.
 *  - map<string,V> fields (protobuf-c: repeated *Entry messages with key = 1,
 *    value = 2): JSON objects.
 *  - repeated fields: arrays. Messages: objects; an unset message is written
 *    as null. oneof: the set member under its own name.
 *  - null on input means "leave the default" (for a oneof member: not set).
 *  - Output writes every field of a message (defaults included; [] and {} for
 *    empty repeated fields and maps), except oneof members that are not the
 *    set case and fields with explicit presence (proto2, proto3 "optional")
 *    that are not present.
 * Parsing rejects unknown fields, wrong types, out of range numbers, unknown
 * enum names, strings that are not valid UTF-8 or hold NUL, a second member
 * of a oneof, repeated keys in any object, nesting deeper than 32, and text
 * that is not exactly one JSON object (whitespace around it is fine), with a
 * message naming the field path, e.g. "apps[1].env.PATH: expected a string,
 * got number". A few faults only the text shows (integer literals beyond 64
 * bits, "\u0000" in a key, bad JSON) are named by their byte offset instead.
 *
 * All memory of a parsed message is malloc()ed, so it is freed with
 * protobuf_c_message_free_unpacked(msg, NULL). */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdlib.h>

/* Puts value (malloc()ed, taken over; NULL: out of memory) into a string
 * field of a message allocated as parsing does, freeing what it held unless
 * that is the shared empty default of an unset field. */
static inline int pm_message_string_set(char **field, char *value) {
        if (!value)
                return -ENOMEM;
        if (*field != protobuf_c_empty_string)
                free(*field);
        *field = value;
        return 0;
}

/* For _cleanup_(): every user of json-c here takes these. */
static inline void json_object_putp(json_object **p) {
        if (*p)
                json_object_put(*p);
}
static inline void json_tokener_freep(json_tokener **p) {
        if (*p)
                json_tokener_free(*p);
}

/* Parses size bytes of JSON text (no NUL terminator needed) into a new
 * message of type desc, returned in *ret. On failure returns -EINVAL (bad JSON
 * or bad content) or -ENOMEM and, when ret_error is not NULL, stores a
 * malloc()ed message for a person in *ret_error (NULL if even that could not
 * be allocated). *ret is written only on success, *ret_error only on
 * failure. */
int pm_json_parse_message(const char *text, size_t size, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **ret, char **ret_error);

/* Fills an initialised message (desc->message_init(), all of its memory
 * malloc()ed) from a parsed JSON value, which must be an object. Errors as
 * for pm_json_parse_message(), but repeated keys are not looked for: json-c
 * objects only hold them when built with JSON_C_OBJECT_ADD_KEY_IS_NEW
 * against that flag's contract. On failure the message may be partly filled
 * (with malloc()ed fields, as on success): do not use it, only free it. */
int pm_json_to_message(json_object *obj, ProtobufCMessage *msg, char **ret_error);

/* A new JSON object for msg (not NULL); NULL only when out of memory. */
json_object *pm_message_to_json(const ProtobufCMessage *msg);

/* The short JSON name of an enum value, written into buf and returned. NULL
 * if the value is not one of the enum's, or the name does not fit in size
 * bytes (with its NUL). */
const char *pm_enum_to_name(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t size);
/* Looks up an enum value by short ("on-failure") or full
 * ("RESTART_POLICY_ON_FAILURE") name, case-sensitively. -EINVAL if none
 * matches; *ret is written only on success. */
int pm_enum_from_name(const ProtobufCEnumDescriptor *desc, const char *name, int *ret);
