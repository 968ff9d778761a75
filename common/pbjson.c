/* JSON <-> protobuf-c messages, walking the message descriptors. See pbjson.h. */
#include <assert.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>

#include "pbjson.h"
#include "util.h"

#define MAX_DEPTH 32
#define ENUM_NAME_MAX 256

static void message_freep(ProtobufCMessage **p) {
        protobuf_c_message_free_unpacked(*p, NULL);
}

/* Storage size of each field type, and the range of the integer types. */
static const struct {
        size_t size;
        int64_t min;
        uint64_t max; /* 0 for the types that are not integers */
} types[] = {
        [PROTOBUF_C_TYPE_INT32] = { sizeof(int32_t), INT32_MIN, INT32_MAX },
        [PROTOBUF_C_TYPE_SINT32] = { sizeof(int32_t), INT32_MIN, INT32_MAX },
        [PROTOBUF_C_TYPE_SFIXED32] = { sizeof(int32_t), INT32_MIN, INT32_MAX },
        [PROTOBUF_C_TYPE_INT64] = { sizeof(int64_t), INT64_MIN, INT64_MAX },
        [PROTOBUF_C_TYPE_SINT64] = { sizeof(int64_t), INT64_MIN, INT64_MAX },
        [PROTOBUF_C_TYPE_SFIXED64] = { sizeof(int64_t), INT64_MIN, INT64_MAX },
        [PROTOBUF_C_TYPE_UINT32] = { sizeof(uint32_t), 0, UINT32_MAX },
        [PROTOBUF_C_TYPE_FIXED32] = { sizeof(uint32_t), 0, UINT32_MAX },
        [PROTOBUF_C_TYPE_UINT64] = { sizeof(uint64_t), 0, UINT64_MAX },
        [PROTOBUF_C_TYPE_FIXED64] = { sizeof(uint64_t), 0, UINT64_MAX },
        [PROTOBUF_C_TYPE_FLOAT] = { sizeof(float), 0, 0 },
        [PROTOBUF_C_TYPE_DOUBLE] = { sizeof(double), 0, 0 },
        [PROTOBUF_C_TYPE_BOOL] = { sizeof(protobuf_c_boolean), 0, 0 },
        [PROTOBUF_C_TYPE_ENUM] = { sizeof(int), 0, 0 },
        [PROTOBUF_C_TYPE_STRING] = { sizeof(char *), 0, 0 },
        [PROTOBUF_C_TYPE_BYTES] = { sizeof(ProtobufCBinaryData), 0, 0 },
        [PROTOBUF_C_TYPE_MESSAGE] = { sizeof(ProtobufCMessage *), 0, 0 },
};

/* protobuf-c gives map<string,V> as a repeated message "...Entry" with fields key = 1 and value = 2. */
static bool is_map(const ProtobufCFieldDescriptor *f) {
        const ProtobufCMessageDescriptor *e = f->descriptor;
        size_t len;

        if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE || e->n_fields != 2)
                return false;
        len = strlen(e->short_name);
        return len >= 5 && streq(e->short_name + len - 5, "Entry") && e->fields[0].id == 1 &&
               streq(e->fields[0].name, "key") && e->fields[0].type == PROTOBUF_C_TYPE_STRING &&
               e->fields[1].id == 2 && streq(e->fields[1].name, "value");
}

/* ---- enum names ---- */

static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static char to_upper(char c) { return c >= 'a' && c <= 'z' ? (char) (c - 'a' + 'A') : c; }

/* The JSON name of the enum value called name, written into buf: without the
 * prefix made of the type's short name in UPPER_SNAKE_CASE and '_' (RestartPolicy:
 * "RESTART_POLICY_"), lowercase, '_' as '-'. RESTART_POLICY_ON_FAILURE -> "on-failure". */
static const char *enum_short_name(const ProtobufCEnumDescriptor *desc, const char *name, char *buf, size_t size) {
        const char *t = desc->short_name, *s = name;
        size_t n = 0;

        for (size_t i = 0; t[i] && s; i++) {
                if (i > 0 && is_upper(t[i]) &&
                    (is_lower_or_digit(t[i - 1]) || (is_upper(t[i - 1]) && is_lower_or_digit(t[i + 1]))))
                        s = *s == '_' ? s + 1 : NULL; /* a new word: "Restart|Policy", "HTTP|Code" */
                if (s)
                        s = *s == to_upper(t[i]) ? s + 1 : NULL;
        }
        if (s && s[0] == '_' && s[1])
                name = s + 1;
        if (strlen(name) >= size)
                return NULL;
        for (; *name; name++)
                buf[n++] = *name == '_' ? '-' : is_upper(*name) ? (char) (*name - 'A' + 'a') : *name;
        buf[n] = 0;
        return buf;
}

const char *pm_enum_to_name(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t size) {
        const ProtobufCEnumValue *v;

        assert(desc);
        assert(buf || size == 0);

        v = protobuf_c_enum_descriptor_get_value(desc, value);
        if (!v)
                return NULL;
        return enum_short_name(desc, v->name, buf, size);
}

int pm_enum_from_name(const ProtobufCEnumDescriptor *desc, const char *name, int *ret) {
        char buf[ENUM_NAME_MAX];

        assert(desc);
        assert(name);
        assert(ret);

        for (unsigned i = 0; i < desc->n_values; i++) {
                const ProtobufCEnumValue *v = &desc->values[i];

                if (streq(v->name, name) || streq_ptr(enum_short_name(desc, v->name, buf, sizeof buf), name)) {
                        *ret = v->value;
                        return 0;
                }
        }
        return -EINVAL;
}

/* ---- base64 (RFC 4648, standard alphabet) ---- */

static const char base64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const uint8_t *data, size_t len) {
        char *out, *o;

        out = o = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) data[i] << 16 | (i + 1 < len ? (uint32_t) data[i + 1] << 8 : 0) |
                             (i + 2 < len ? data[i + 2] : 0);

                *o++ = base64_chars[v >> 18 & 63];
                *o++ = base64_chars[v >> 12 & 63];
                *o++ = i + 1 < len ? base64_chars[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? base64_chars[v & 63] : '=';
        }
        *o = 0;
        return out;
}

/* Decodes s; the '=' padding may be left out. */
static int base64_decode(const char *s, ProtobufCBinaryData *ret) {
        size_t len = strlen(s), pad = 0, n = 0, bits = 0;
        uint32_t acc = 0;
        uint8_t *out;

        while (pad < 2 && len > 0 && s[len - 1] == '=')
                len--, pad++;
        if ((pad > 0 && (len + pad) % 4 != 0) || len % 4 == 1)
                return -EINVAL;
        out = malloc(len * 3 / 4 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                const char *c = memchr(base64_chars, s[i], 64);

                if (!c) {
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6 | (uint32_t) (c - base64_chars)) & 0xffffff;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t) (acc >> bits);
                }
        }
        if (acc & ((1u << bits) - 1)) { /* "AB==": bits past the end must be zero */
                free(out);
                return -EINVAL;
        }
        *ret = (ProtobufCBinaryData) { .len = n, .data = out };
        return 0;
}

/* ---- JSON -> message ---- */

/* Where a value sits: a chain of frames on the stack, spelled out as
 * "apps[1].env.PATH" only when an error needs it. */
typedef struct Path {
        const struct Path *up;
        const char *key; /* field name or map key; NULL for an array element */
        size_t index;
} Path;

/* One JSON -> message conversion. */
typedef struct Walk {
        char *error;    /* the failure, for a person */
        size_t *counts; /* members of each object of the text, in document order; NULL without text */
        size_t n_counts, next;
} Walk;

static void walk_done(Walk *w) {
        free(w->error);
        free(w->counts);
}

static void path_write(FILE *f, const Path *p) {
        if (!p)
                return;
        path_write(f, p->up);
        if (!p->key)
                fprintf(f, "[%zu]", p->index);
        else
                fprintf(f, "%s%s", p->up ? "." : "",
                        pm_utf8_valid(p->key, strlen(p->key)) ? p->key : "<invalid UTF-8>");
}

/* Records "path: message" as the walk's error; returns -EINVAL. */
static _printf_(3, 4) int fail(Walk *w, const Path *p, const char *fmt, ...) {
        char *buf = NULL;
        size_t size = 0;
        va_list ap;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        path_write(f, p);
        if (p)
                fputs(": ", f);
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        if (fclose(f) < 0) {
                free(buf);
                return -ENOMEM;
        }
        free(w->error);
        w->error = buf;
        return -EINVAL;
}

/* Hands the error of a failed walk to the caller. */
static int walk_fail(Walk *w, int r, char **ret_error) {
        if (ret_error)
                *ret_error = w->error ? TAKE_PTR(w->error) : strdup(r == -ENOMEM ? "out of memory" : "failed");
        return r;
}

static int parse_text(Walk *w, const char *text, size_t size, json_object **ret) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        enum json_tokener_error e;
        json_object *obj;
        size_t end;

        if (size > INT_MAX)
                return fail(w, NULL, "JSON text too large");
        tok = json_tokener_new_ex(MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, text, (int) size);
        e = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (e == json_tokener_continue) {
                /* a number at the very end could go on; a NUL ends it */
                obj = json_tokener_parse_ex(tok, "", 1);
                e = json_tokener_get_error(tok);
                end = size;
        }
        if (e == json_tokener_error_depth)
                return fail(w, NULL, "JSON nested deeper than %d levels", MAX_DEPTH);
        if (e != json_tokener_success)
                return fail(w, NULL, "invalid JSON at offset %zu: %s", end, json_tokener_error_desc(e));
        if (end != size) {
                json_object_put(obj);
                return fail(w, NULL, "trailing characters at offset %zu after the JSON value", end);
        }
        *ret = obj;
        return 0;
}

/* json-c keeps the last of repeated keys, cuts keys short at "\u0000" and
 * saturates integers beyond 64 bits, all silently. So read the text (which
 * json-c accepted) once more: reject such keys and integers, and count the
 * members of each object in document order. The walk meets the objects in the
 * same order and compares each count with what json-c kept. */
/* The 4 hex digits of a \\uXXXX escape at text[i], or -1. */
static long escape_code(const char *text, size_t size, size_t i) {
        if (i + 6 > size || text[i] != '\\' || text[i + 1] != 'u')
                return -1;
        char hex[5] = { text[i + 2], text[i + 3], text[i + 4], text[i + 5], 0 };
        char *end;
        long v = strtol(hex, &end, 16);
        return *end == '\0' ? v : -1;
}

/* json-c turns an unpaired surrogate escape into U+FFFD instead of failing:
 * a high one must be followed by a low one, a low one must follow a high. */
static bool lone_surrogate(const char *text, size_t size, size_t i) {
        long c = escape_code(text, size, i);
        if (c >= 0xdc00 && c <= 0xdfff) {
                long prev = i >= 6 ? escape_code(text, size, i - 6) : -1;
                return !(prev >= 0xd800 && prev <= 0xdbff);
        }
        if (c >= 0xd800 && c <= 0xdbff) {
                long next = escape_code(text, size, i + 6);
                return !(next >= 0xdc00 && next <= 0xdfff);
        }
        return false;
}

static int scan_text(Walk *w, const char *text, size_t size) {
        size_t stack[MAX_DEPTH], depth = 0; /* per open container: its object's index, SIZE_MAX for an array */

        w->counts = calloc(size / 2 + 1, sizeof(size_t));
        if (!w->counts)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                char c = text[i];

                if (c == '"') {
                        bool nul = false;
                        size_t j;

                        for (i++; i < size && text[i] != '"'; i++)
                                if (text[i] == '\\') {
                                        nul = nul || (i + 5 < size && memcmp(text + i + 1, "u0000", 5) == 0);
                                        if (lone_surrogate(text, size, i))
                                                return fail(w, NULL, "unpaired UTF-16 surrogate escape at offset %zu", i);
                                        i++;
                                }
                        for (j = i + 1; j < size && strchr(" \t\r\n", text[j]) && text[j]; j++)
                                ;
                        if (nul && j < size && text[j] == ':')
                                return fail(w, NULL, "the key ending at offset %zu holds a NUL character", i);
                } else if (c == '{' || c == '[') {
                        if (depth >= MAX_DEPTH || w->n_counts > size / 2) /* json-c checked that */
                                return fail(w, NULL, "malformed JSON at offset %zu", i);
                        stack[depth++] = c == '{' ? w->n_counts++ : SIZE_MAX;
                } else if (c == '}' || c == ']') {
                        depth -= depth > 0;
                } else if (c == ':' && depth > 0 && stack[depth - 1] != SIZE_MAX) {
                        w->counts[stack[depth - 1]]++;
                } else if (c == '-' || (c >= '0' && c <= '9')) {
                        bool neg = c == '-';
                        const char *max = neg ? "9223372036854775808" : "18446744073709551615";
                        size_t len = 1, digits;

                        while (i + len < size && text[i + len] && strchr("-+.eE0123456789", text[i + len]))
                                len++;
                        digits = len - neg;
                        if (!memchr(text + i, '.', len) && !memchr(text + i, 'e', len) &&
                            !memchr(text + i, 'E', len) &&
                            (digits > strlen(max) || (digits == strlen(max) && memcmp(text + i + neg, max, digits) > 0)))
                                return fail(w, NULL, "integer %.*s at offset %zu is out of range", (int) len, text + i, i);
                        i += len - 1;
                }
        }
        return 0;
}

static const char *type_name(json_object *v) {
        static const char *const names[] = {
                [json_type_null] = "null",   [json_type_boolean] = "boolean", [json_type_double] = "number",
                [json_type_int] = "number",  [json_type_object] = "object",   [json_type_array] = "array",
                [json_type_string] = "string",
        };
        return names[json_object_get_type(v)];
}

static int expect(Walk *w, const Path *p, json_object *v, json_type type, const char *what) {
        if (json_object_is_type(v, type))
                return 0;
        return fail(w, p, "expected %s, got %s", what, type_name(v));
}

/* Every JSON object the walk reads passes here, in document order. */
static int enter_object(Walk *w, const Path *p, json_object *obj, unsigned depth) {
        int r;

        r = expect(w, p, obj, json_type_object, "an object");
        if (r < 0)
                return r;
        if (depth > MAX_DEPTH)
                return fail(w, p, "JSON nested deeper than %d levels", MAX_DEPTH);
        if (w->counts && (w->next >= w->n_counts || w->counts[w->next++] != (size_t) json_object_object_length(obj)))
                return fail(w, p, "duplicate key in object");
        return 0;
}

/* A JSON integer in [min, max], returned as its 64 bits. */
static int read_integer(Walk *w, const Path *p, json_object *v, int64_t min, uint64_t max, uint64_t *ret) {
        bool big;
        uint64_t u;
        int64_t i;

        if (json_object_is_type(v, json_type_double))
                return fail(w, p, "expected an integer, got %s", json_object_to_json_string(v));
        if (!json_object_is_type(v, json_type_int))
                return fail(w, p, "expected an integer, got %s", type_name(v));
        i = json_object_get_int64(v);
        u = json_object_get_uint64(v);
        big = i == INT64_MAX && u > INT64_MAX; /* json-c holds it as a uint64 */
        if (big ? u > max : i < min || (i > 0 && (uint64_t) i > max))
                return fail(w, p, "%s is out of range [%" PRIi64 ", %" PRIu64 "]", json_object_to_json_string(v),
                            min, max);
        *ret = big ? u : (uint64_t) i;
        return 0;
}

static int read_string(Walk *w, const Path *p, json_object *v, const char **ret) {
        const char *s;
        size_t len;
        int r;

        r = expect(w, p, v, json_type_string, "a string");
        if (r < 0)
                return r;
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        if (memchr(s, 0, len))
                return fail(w, p, "string holds a NUL character");
        if (!pm_utf8_valid(s, len))
                return fail(w, p, "string is not valid UTF-8");
        *ret = s;
        return 0;
}

static int read_enum(Walk *w, const Path *p, const ProtobufCEnumDescriptor *desc, json_object *v, int *ret) {
        _cleanup_free_ char *names = NULL;
        char buf[ENUM_NAME_MAX];
        size_t size = 0;
        const char *s;
        FILE *f;
        int r;

        r = read_string(w, p, v, &s);
        if (r < 0)
                return r;
        if (pm_enum_from_name(desc, s, ret) >= 0)
                return 0;
        f = open_memstream(&names, &size);
        if (!f)
                return -ENOMEM;
        for (unsigned i = 0; i < desc->n_values; i++)
                fprintf(f, "%s%s", i > 0 ? ", " : "",
                        strempty(enum_short_name(desc, desc->values[i].name, buf, sizeof buf)));
        if (fclose(f) < 0)
                return -ENOMEM;
        return fail(w, p, "unknown value \"%s\" (expected one of: %s)", s, names);
}

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *desc) {
        ProtobufCMessage *m = malloc(desc->sizeof_message);

        if (m)
                desc->message_init(m);
        return m;
}

static int fill_message(Walk *w, const Path *p, json_object *obj, ProtobufCMessage *msg, unsigned depth);

/* Reads one value of field f (one element, for a repeated field) into out. */
static int read_value(Walk *w, const Path *p, const ProtobufCFieldDescriptor *f, json_object *v, void *out,
                      unsigned depth) {
        uint64_t u = 0;
        const char *s;
        double d;
        int r;

        if (types[f->type].max > 0) {
                r = read_integer(w, p, v, types[f->type].min, types[f->type].max, &u);
                if (r < 0)
                        return r;
                if (types[f->type].size == sizeof(uint32_t))
                        *(uint32_t *) out = (uint32_t) u; /* the bits of an int32 too */
                else
                        *(uint64_t *) out = u;
                return 0;
        }

        switch (f->type) {
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
                        return fail(w, p, "expected a number, got %s", type_name(v));
                d = json_object_get_double(v);
                if (!isfinite(d) || (f->type == PROTOBUF_C_TYPE_FLOAT && (d > FLT_MAX || d < -FLT_MAX)))
                        return fail(w, p, "%s is out of range", json_object_to_json_string(v));
                if (f->type == PROTOBUF_C_TYPE_FLOAT)
                        *(float *) out = (float) d;
                else
                        *(double *) out = d;
                return 0;
        case PROTOBUF_C_TYPE_BOOL:
                r = expect(w, p, v, json_type_boolean, "a boolean");
                if (r >= 0)
                        *(protobuf_c_boolean *) out = json_object_get_boolean(v);
                return r;
        case PROTOBUF_C_TYPE_ENUM:
                return read_enum(w, p, f->descriptor, v, out);
        case PROTOBUF_C_TYPE_STRING:
                r = read_string(w, p, v, &s);
                if (r < 0)
                        return r;
                /* replaces the descriptor's default, which free_unpacked() leaves alone */
                *(char **) out = strdup(s);
                return *(char **) out ? 0 : -ENOMEM;
        case PROTOBUF_C_TYPE_BYTES:
                r = read_string(w, p, v, &s);
                if (r < 0)
                        return r;
                r = base64_decode(s, out);
                return r == -EINVAL ? fail(w, p, "not valid base64") : r;
        case PROTOBUF_C_TYPE_MESSAGE:
                *(ProtobufCMessage **) out = message_new(f->descriptor);
                if (!*(ProtobufCMessage **) out)
                        return -ENOMEM;
                /* the parent owns it now and frees it also when filling it fails */
                return fill_message(w, p, v, *(ProtobufCMessage **) out, depth + 1);
        default:
                return fail(w, p, "unsupported field type %d", (int) f->type);
        }
}

/* Gives a repeated field n zeroed elements, which the message frees with it. */
static void *alloc_repeated(uint8_t *base, const ProtobufCFieldDescriptor *f, size_t n, size_t size) {
        void *items = calloc(n, size);

        if (items) {
                *(void **) (base + f->offset) = items;
                *(size_t *) (base + f->quantifier_offset) = n;
        }
        return items;
}

static int fill_map(Walk *w, const Path *p, const ProtobufCFieldDescriptor *f, json_object *v, uint8_t *base,
                    unsigned depth) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        ProtobufCMessage **entries;
        size_t n, i = 0;
        int r;

        r = enter_object(w, p, v, depth + 1);
        if (r < 0)
                return r;
        n = (size_t) json_object_object_length(v);
        if (n == 0)
                return 0;
        entries = alloc_repeated(base, f, n, sizeof(ProtobufCMessage *));
        if (!entries)
                return -ENOMEM;

        json_object_object_foreach(v, key, val) {
                const Path kp = { .up = p, .key = key };
                uint8_t *e;

                if (i >= n)
                        break;
                entries[i] = message_new(ed);
                if (!entries[i])
                        return -ENOMEM;
                e = (uint8_t *) entries[i++];
                if (!pm_utf8_valid(key, strlen(key)))
                        return fail(w, &kp, "key is not valid UTF-8");
                *(char **) (e + ed->fields[0].offset) = strdup(key);
                if (!*(char **) (e + ed->fields[0].offset))
                        return -ENOMEM;
                r = read_value(w, &kp, &ed->fields[1], val, e + ed->fields[1].offset, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fill_array(Walk *w, const Path *p, const ProtobufCFieldDescriptor *f, json_object *v, uint8_t *base,
                      unsigned depth) {
        size_t n, size = types[f->type].size;
        uint8_t *items;
        int r;

        r = expect(w, p, v, json_type_array, "an array");
        if (r < 0)
                return r;
        n = json_object_array_length(v);
        if (n == 0)
                return 0;
        items = alloc_repeated(base, f, n, size);
        if (!items)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                const Path ep = { .up = p, .index = i };

                r = read_value(w, &ep, f, json_object_array_get_idx(v, i), items + i * size, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fill_field(Walk *w, const Path *p, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                      json_object *v, unsigned depth) {
        uint8_t *base = (uint8_t *) msg;

        if (f->label == PROTOBUF_C_LABEL_REPEATED)
                return is_map(f) ? fill_map(w, p, f, v, base, depth) : fill_array(w, p, f, v, base, depth);

        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t *which = (uint32_t *) (base + f->quantifier_offset);

                if (*which != 0) {
                        const ProtobufCFieldDescriptor *other =
                                protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
                        return fail(w, p, "only one of %s and %s may be set", other ? other->name : "?", f->name);
                }
                /* set first: the message then frees whatever read_value() leaves behind */
                *which = f->id;
        } else if (f->quantifier_offset != 0)
                *(protobuf_c_boolean *) (base + f->quantifier_offset) = true;

        return read_value(w, p, f, v, base + f->offset, depth);
}

static int fill_message(Walk *w, const Path *p, json_object *obj, ProtobufCMessage *msg, unsigned depth) {
        int r;

        r = enter_object(w, p, obj, depth);
        if (r < 0)
                return r;

        json_object_object_foreach(obj, key, val) {
                const Path fp = { .up = p, .key = key };
                const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, key);

                if (!f)
                        return fail(w, &fp, "unknown field");
                if (!val)
                        continue; /* null: keep the default */
                r = fill_field(w, &fp, msg, f, val, depth);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pm_json_to_message(json_object *obj, ProtobufCMessage *msg, char **ret_error) {
        _cleanup_(walk_done) Walk w = {};
        int r;

        assert(msg);

        r = fill_message(&w, NULL, obj, msg, 1);
        if (r < 0)
                return walk_fail(&w, r, ret_error);
        return 0;
}

int pm_json_parse_message(const char *text, size_t size, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        _cleanup_(message_freep) ProtobufCMessage *msg = NULL;
        _cleanup_(walk_done) Walk w = {};
        int r;

        assert(text || size == 0);
        assert(desc);
        assert(ret);

        r = parse_text(&w, strempty(text), size, &obj);
        if (r < 0)
                return walk_fail(&w, r, ret_error);
        r = scan_text(&w, strempty(text), size);
        if (r < 0)
                return walk_fail(&w, r, ret_error);
        msg = message_new(desc);
        if (!msg)
                return walk_fail(&w, -ENOMEM, ret_error);
        r = fill_message(&w, NULL, obj, msg, 1);
        if (r < 0)
                return walk_fail(&w, r, ret_error);
        *ret = TAKE_PTR(msg);
        return 0;
}

/* ---- message -> JSON ---- */

/* One value of field f, read from in; an unset message is JSON null (NULL). */
static int value_to_json(const ProtobufCFieldDescriptor *f, const void *in, json_object **ret) {
        const ProtobufCBinaryData *b = in;
        _cleanup_free_ char *s = NULL;
        char buf[ENUM_NAME_MAX];
        json_object *v = NULL;
        const char *name;

        if (types[f->type].max > 0 && types[f->type].size == sizeof(uint32_t))
                v = json_object_new_int64(types[f->type].min < 0 ? (int64_t) *(const int32_t *) in
                                                                 : (int64_t) *(const uint32_t *) in);
        else if (types[f->type].max > 0)
                v = types[f->type].min < 0 ? json_object_new_int64(*(const int64_t *) in)
                                           : json_object_new_uint64(*(const uint64_t *) in);
        else
                switch (f->type) {
                case PROTOBUF_C_TYPE_FLOAT:
                        v = json_object_new_double(*(const float *) in);
                        break;
                case PROTOBUF_C_TYPE_DOUBLE:
                        v = json_object_new_double(*(const double *) in);
                        break;
                case PROTOBUF_C_TYPE_BOOL:
                        v = json_object_new_boolean(*(const protobuf_c_boolean *) in);
                        break;
                case PROTOBUF_C_TYPE_ENUM:
                        /* a number the enum does not know (from a newer peer) stays a number */
                        name = pm_enum_to_name(f->descriptor, *(const int *) in, buf, sizeof buf);
                        v = name ? json_object_new_string(name) : json_object_new_int(*(const int *) in);
                        break;
                case PROTOBUF_C_TYPE_STRING:
                        v = json_object_new_string(strempty(*(char *const *) in));
                        break;
                case PROTOBUF_C_TYPE_BYTES:
                        s = base64_encode(b->data, b->data ? b->len : 0);
                        v = s ? json_object_new_string(s) : NULL;
                        break;
                case PROTOBUF_C_TYPE_MESSAGE:
                        if (!*(ProtobufCMessage *const *) in) {
                                *ret = NULL;
                                return 0;
                        }
                        v = pm_message_to_json(*(ProtobufCMessage *const *) in);
                        break;
                default:
                        return -EOPNOTSUPP;
                }
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

/* A repeated field as an array, or as an object for a map. */
static int repeated_to_json(const ProtobufCFieldDescriptor *f, const uint8_t *base, json_object **ret) {
        const uint8_t *items = *(const uint8_t *const *) (base + f->offset);
        size_t n = items ? *(const size_t *) (base + f->quantifier_offset) : 0, size = types[f->type].size;
        const ProtobufCMessageDescriptor *ed = is_map(f) ? f->descriptor : NULL;
        _cleanup_(json_object_putp) json_object *all = NULL;
        int r;

        all = ed ? json_object_new_object() : json_object_new_array();
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const uint8_t *e = ed ? *(const uint8_t *const *) (items + i * size) : NULL;
                json_object *v;

                if (ed && !e)
                        continue;
                r = ed ? value_to_json(&ed->fields[1], e + ed->fields[1].offset, &v)
                       : value_to_json(f, items + i * size, &v);
                if (r < 0)
                        return r;
                r = ed ? json_object_object_add(all, strempty(*(char *const *) (e + ed->fields[0].offset)), v)
                       : json_object_array_add(all, v);
                if (r < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(all);
        return 0;
}

json_object *pm_message_to_json(const ProtobufCMessage *msg) {
        _cleanup_(json_object_putp) json_object *obj = NULL;
        const uint8_t *base = (const uint8_t *) msg;
        const ProtobufCMessageDescriptor *desc;

        assert(msg);
        desc = msg->descriptor;

        obj = json_object_new_object();
        if (!obj)
                return NULL;
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];
                json_object *v = NULL;
                int r;

                if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                        if (*(const uint32_t *) (base + f->quantifier_offset) != f->id)
                                continue;
                } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
                           !*(const protobuf_c_boolean *) (base + f->quantifier_offset))
                        continue; /* proto2 / proto3 "optional" field that is not present */

                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        r = repeated_to_json(f, base, &v);
                else
                        r = value_to_json(f, base + f->offset, &v);
                if (r < 0)
                        return NULL;
                if (json_object_object_add(obj, f->name, v) < 0) {
                        json_object_put(v);
                        return NULL;
                }
        }
        return TAKE_PTR(obj);
}
