/* config.json of an OCI runtime bundle -> AppSpec. See bundle.h and
 * docs/bundles.md. */
#include "bundle.h"

#include <assert.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "pbjson.h"
#include "util.h"

typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;
typedef Podmutator__V1__AppSpec__AnnotationsEntry AnnotationsEntry;
typedef Podmutator__V1__Mount Mount;
typedef Podmutator__V1__Rlimit Rlimit;
typedef Podmutator__V1__Resources Resources;
typedef Podmutator__V1__Network Network;

#define JSON_DEPTH_MAX 32
/* What systemd runs a service with when it sets no UMask=. */
#define DEFAULT_UMASK 0022
/* The kernel's CFS period, when a quota comes without one (microseconds). */
#define DEFAULT_CPU_PERIOD 100000u
/* The annotation of the image spec that names the stop signal. */
#define STOP_SIGNAL_ANNOTATION "org.opencontainers.image.stopSignal"

/* What one bundle translation knows beyond the spec it builds. */
typedef struct Bundle {
        PmAppSpec *spec;
        const char *dir; /* the bundle's directory, NULL: leave relative paths as written */
        bool root_user;  /* process.user.uid is 0 */
        bool uts_namespace;
} Bundle;

static void spec_freep(PmAppSpec **p) {
        if (*p)
                protobuf_c_message_free_unpacked(&(*p)->base, NULL);
}

/* ---- reading JSON values ---- */

static const char *type_name(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "boolean";
        case json_type_double:
        case json_type_int:
                return "number";
        case json_type_object:
                return "object";
        case json_type_array:
                return "array";
        case json_type_string:
                return "string";
        }
        return "unknown";
}

/* "a.b" from "a" and "b"; "b" alone at the top. Paths are short and fixed by
 * the schema, so a buffer on the caller's stack holds them. */
typedef struct FieldPath {
        char s[256];
} FieldPath;

static _printf_(2, 3) const char *path_fmt(FieldPath *p, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->s, sizeof p->s, fmt, ap);
        va_end(ap);
        return p->s;
}

static const char *path_join(FieldPath *p, const char *parent, const char *key) {
        return path_fmt(p, "%s%s%s", parent, *parent ? "." : "", key);
}

/* dir/path, with any leading "./" of path dropped; NULL when out of memory. */
static char *path_join_alloc(const char *dir, const char *path) {
        char *s;

        while (startswith(path, "./"))
                path += 2;
        if (asprintf(&s, "%s/%s", dir, path) < 0)
                return NULL;
        return s;
}

/* Not set, as the runtime-spec's optional fields go: missing, null, "",
 * false, {} or []. */
static bool is_unset(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return !json_object_get_boolean(v);
        case json_type_string:
                return json_object_get_string_len(v) == 0;
        case json_type_object:
                return json_object_object_length(v) == 0;
        case json_type_array:
                return json_object_array_length(v) == 0;
        default:
                return false;
        }
}

/* s itself when it can go into a message as it is: valid UTF-8 without
 * control characters (keys come straight from the file). */
static const char *printable(const char *s) {
        if (!pm_utf8_valid(s, strlen(s)))
                return "<invalid UTF-8>";
        for (const char *c = s; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        return "<key with control characters>";
        return s;
}

/* Refuses a member of obj the schema has no place for. */
static int check_known(json_object *obj, const char *path, const char *const *known, char **ret_error) {
        json_object_object_foreach(obj, key, v) {
                bool found = false;

                (void) v;
                for (const char *const *k = known; *k && !found; k++)
                        found = streq(*k, key);
                if (!found) {
                        FieldPath fp;
                        return pm_errorf(ret_error, -EINVAL,
                                         "%s: unknown field; remove it (PodMutator runs a bundle only as written)",
                                         path_join(&fp, path, printable(key)));
                }
        }
        return 0;
}

/* The member key of obj, of JSON type type; *ret is NULL when it is missing
 * or null. */
static int member(json_object *obj, const char *path, const char *key, json_type type, json_object **ret,
                  char **ret_error) {
        static const char *const what[] = {
                [json_type_boolean] = "a boolean", [json_type_int] = "an integer",  [json_type_object] = "an object",
                [json_type_array] = "an array",    [json_type_string] = "a string",
        };
        json_object *v = NULL;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, type)) {
                FieldPath fp;
                return pm_errorf(ret_error, -EINVAL, "%s: expected %s, got %s", path_join(&fp, path, key), what[type],
                                 type_name(v));
        }
        *ret = v;
        return 0;
}

/* The object member key of obj, as member() finds it, its own members
 * checked against known. */
static int object_member(json_object *obj, const char *path, const char *key, const char *const *known,
                         json_object **ret, char **ret_error) {
        FieldPath fp;
        int r = member(obj, path, key, json_type_object, ret, ret_error);
        if (r < 0 || !*ret)
                return r;
        return check_known(*ret, path_join(&fp, path, key), known, ret_error);
}

/* Refuses key of obj when it is set, saying why in why. */
static int refuse_set(json_object *obj, const char *path, const char *key, const char *why, char **ret_error) {
        json_object *v = NULL;
        FieldPath fp;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || is_unset(v))
                return 0;
        return pm_errorf(ret_error, -EINVAL, "%s: not supported: %s", path_join(&fp, path, key), why);
}

static int string_value(json_object *v, const char *path, const char **ret, char **ret_error) {
        const char *s;
        size_t len;

        if (!json_object_is_type(v, json_type_string))
                return pm_errorf(ret_error, -EINVAL, "%s: expected a string, got %s", path, type_name(v));
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        if (memchr(s, 0, len) || !pm_utf8_valid(s, len))
                return pm_errorf(ret_error, -EINVAL, "%s: not a valid UTF-8 string without NUL characters", path);
        *ret = s;
        return 0;
}

/* A string member; *ret is NULL when it is missing or null. */
static int string_member(json_object *obj, const char *path, const char *key, const char **ret, char **ret_error) {
        json_object *v = NULL;
        FieldPath fp;
        int r;

        r = member(obj, path, key, json_type_string, &v, ret_error);
        if (r < 0)
                return r;
        if (!v) {
                *ret = NULL;
                return 0;
        }
        return string_value(v, path_join(&fp, path, key), ret, ret_error);
}

static int bool_member(json_object *obj, const char *path, const char *key, bool *ret, char **ret_error) {
        json_object *v = NULL;
        int r;

        r = member(obj, path, key, json_type_boolean, &v, ret_error);
        if (r < 0)
                return r;
        *ret = v && json_object_get_boolean(v);
        return 0;
}

/* A JSON integer as a signed 64-bit value; a number json-c holds as a uint64
 * above INT64_MAX is out of range. */
static int int64_value(json_object *v, const char *path, int64_t *ret, char **ret_error) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return pm_errorf(ret_error, -EINVAL, "%s: expected an integer, got %s", path,
                                 json_object_is_type(v, json_type_double) ? json_object_to_json_string(v)
                                                                          : type_name(v));
        i = json_object_get_int64(v);
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX)
                return pm_errorf(ret_error, -EINVAL, "%s: %s is out of range", path, json_object_to_json_string(v));
        *ret = i;
        return 0;
}

static int uint64_value(json_object *v, const char *path, uint64_t *ret, char **ret_error) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return pm_errorf(ret_error, -EINVAL, "%s: expected an integer, got %s", path,
                                 json_object_is_type(v, json_type_double) ? json_object_to_json_string(v)
                                                                          : type_name(v));
        i = json_object_get_int64(v);
        if (i < 0)
                return pm_errorf(ret_error, -EINVAL, "%s: must not be negative", path);
        *ret = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) i;
        return 0;
}

/* An integer member; *ret_set tells whether it was there. */
static int int64_member(json_object *obj, const char *path, const char *key, int64_t *ret, bool *ret_set,
                        char **ret_error) {
        json_object *v = NULL;
        FieldPath fp;
        int r;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
                *ret_set = false;
                return 0;
        }
        r = int64_value(v, path_join(&fp, path, key), ret, ret_error);
        if (r < 0)
                return r;
        *ret_set = true;
        return 0;
}

/* ---- building the spec (malloc()ed like pbjson's, see bundle.h) ---- */

static int strv_push(char ***arr, size_t *n, const char *s) {
        _cleanup_free_ char *copy = strdup(s);
        char **a;

        if (!copy)
                return -ENOMEM;
        a = realloc(*arr, (*n + 1) * sizeof(char *));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = TAKE_PTR(copy);
        *arr = a;
        return 0;
}

static bool strv_contains(char *const *arr, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(arr[i], s))
                        return true;
        return false;
}

/* Appends a message to a repeated message field; takes it over, even on
 * failure. */
static int message_push(void ***arr, size_t *n, void *m) {
        void **a;

        if (!m)
                return -ENOMEM;
        a = realloc(*arr, (*n + 1) * sizeof(void *));
        if (!a) {
                protobuf_c_message_free_unpacked(m, NULL);
                return -ENOMEM;
        }
        a[(*n)++] = m;
        *arr = a;
        return 0;
}

/* A new map entry (EnvEntry and AnnotationsEntry have the same layout). */
static void *entry_new(void (*init)(void *), size_t size, const char *key, size_t key_len, const char *value) {
        EnvEntry *e = malloc(size);

        if (!e)
                return NULL;
        init(e);
        e->key = strndup(key, key_len);
        e->value = strdup(value);
        if (!e->key || !e->value) {
                protobuf_c_message_free_unpacked(&e->base, NULL);
                return NULL;
        }
        return e;
}

static void env_entry_init(void *e) { podmutator__v1__app_spec__env_entry__init(e); }
static void annotations_entry_init(void *e) { podmutator__v1__app_spec__annotations_entry__init(e); }

static int set_string(char **field, const char *s) {
        return pm_message_string_set(field, strdup(s));
}

static int set_number(char **field, uint64_t v) {
        char *s;

        if (asprintf(&s, "%" PRIu64, v) < 0)
                return -ENOMEM;
        *field = s;
        return 0;
}

static Resources *spec_resources(PmAppSpec *spec) {
        if (!spec->resources) {
                spec->resources = malloc(sizeof(Resources));
                if (spec->resources)
                        podmutator__v1__resources__init(spec->resources);
        }
        return spec->resources;
}

/* ---- ociVersion ---- */

static int parse_version(json_object *top, char **ret_error) {
        const char *v;
        int r;

        r = string_member(top, "", "ociVersion", &v, ret_error);
        if (r < 0)
                return r;
        if (!v)
                return pm_errorf(ret_error, -EINVAL, "ociVersion: required");
        if (!startswith(v, "1.") || v[2] < '0' || v[2] > '9')
                return pm_errorf(ret_error, -EINVAL,
                                 "ociVersion: \"%.32s\" is not supported; runtime-spec 1.x bundles only", v);
        return 0;
}

/* ---- process ---- */

static int parse_args(Bundle *b, json_object *process, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        json_object *args = NULL;
        int r;

        r = member(process, "process", "args", json_type_array, &args, ret_error);
        if (r < 0)
                return r;
        if (!args || json_object_array_length(args) == 0)
                return pm_errorf(ret_error, -EINVAL, "process.args: required: at least the command to run");
        for (size_t i = 0; i < json_object_array_length(args); i++) {
                const char *s;
                FieldPath fp;

                r = string_value(json_object_array_get_idx(args, i), path_fmt(&fp, "process.args[%zu]", i), &s,
                                 ret_error);
                if (r < 0)
                        return r;
                r = strv_push(&b->spec->argv, &b->spec->n_argv, s);
                if (r < 0)
                        return r;
        }
        r = pm_argv_validate(b->spec->argv, b->spec->n_argv, &why);
        if (r < 0)
                return pm_errorf(ret_error, r, "process.args: %s", strempty(why));
        return 0;
}

static bool env_name_valid(const char *s, size_t n) {
        if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '_'))
                        return false;
        return true;
}

static int parse_env(Bundle *b, json_object *process, char **ret_error) {
        PmAppSpec *spec = b->spec;
        json_object *env = NULL;
        int r;

        r = member(process, "process", "env", json_type_array, &env, ret_error);
        if (r < 0 || !env)
                return r;
        for (size_t i = 0; i < json_object_array_length(env); i++) {
                const char *s, *eq;
                FieldPath fp;

                r = string_value(json_object_array_get_idx(env, i), path_fmt(&fp, "process.env[%zu]", i), &s,
                                 ret_error);
                if (r < 0)
                        return r;
                eq = strchr(s, '=');
                if (!eq || eq == s)
                        return pm_errorf(ret_error, -EINVAL, "process.env[%zu]: \"%.64s\" is not KEY=VALUE", i,
                                         printable(s));
                if (!env_name_valid(s, (size_t) (eq - s)))
                        return pm_errorf(ret_error, -EINVAL,
                                         "process.env[%zu]: the name before '=' must be letters, digits and '_', not "
                                         "starting with a digit",
                                         i);
                for (size_t j = 0; j < spec->n_env; j++)
                        if (strlen(spec->env[j]->key) == (size_t) (eq - s) &&
                            memcmp(spec->env[j]->key, s, (size_t) (eq - s)) == 0)
                                return pm_errorf(ret_error, -EINVAL, "process.env[%zu]: %.*s is set twice", i,
                                                 (int) (eq - s), s);
                r = message_push((void ***) &spec->env, &spec->n_env,
                                 entry_new(env_entry_init, sizeof(EnvEntry), s, (size_t) (eq - s), eq + 1));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_user(Bundle *b, json_object *process, char **ret_error) {
        static const char *const known[] = {"uid", "gid", "umask", "additionalGids", "username", NULL};
        json_object *user = NULL, *gids = NULL;
        int64_t uid, gid, umask;
        bool set;
        int r;

        r = object_member(process, "process", "user", known, &user, ret_error);
        if (r < 0)
                return r;
        if (!user)
                return pm_errorf(ret_error, -EINVAL, "process.user: required (uid and gid)");
        r = refuse_set(user, "process.user", "username", "Windows only; give uid and gid", ret_error);
        if (r < 0)
                return r;

        r = int64_member(user, "process.user", "uid", &uid, &set, ret_error);
        if (r < 0)
                return r;
        if (!set)
                return pm_errorf(ret_error, -EINVAL, "process.user.uid: required");
        if (uid < 0 || uid >= (int64_t) UINT32_MAX - 1)
                return pm_errorf(ret_error, -EINVAL, "process.user.uid: %" PRIi64 " is not a valid uid", uid);
        r = int64_member(user, "process.user", "gid", &gid, &set, ret_error);
        if (r < 0)
                return r;
        if (!set)
                return pm_errorf(ret_error, -EINVAL, "process.user.gid: required");
        if (gid < 0 || gid >= (int64_t) UINT32_MAX - 1)
                return pm_errorf(ret_error, -EINVAL, "process.user.gid: %" PRIi64 " is not a valid gid", gid);

        r = int64_member(user, "process.user", "umask", &umask, &set, ret_error);
        if (r < 0)
                return r;
        if (set && umask != DEFAULT_UMASK)
                return pm_errorf(
                        ret_error, -EINVAL,
                        "process.user.umask: not supported: apps run with umask 0022 (%d); remove it or set %d",
                        DEFAULT_UMASK, DEFAULT_UMASK);

        r = member(user, "process.user", "additionalGids", json_type_array, &gids, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; gids && i < json_object_array_length(gids); i++) {
                FieldPath fp;
                int64_t g;

                r = int64_value(json_object_array_get_idx(gids, i),
                                path_fmt(&fp, "process.user.additionalGids[%zu]", i), &g, ret_error);
                if (r < 0)
                        return r;
                if (g != gid)
                        return pm_errorf(
                                ret_error, -EINVAL,
                                "process.user.additionalGids[%zu]: not supported: an app has one group, its gid", i);
        }

        b->root_user = uid == 0;
        r = set_number(&b->spec->user, (uint64_t) uid);
        if (r < 0)
                return r;
        return set_number(&b->spec->group, (uint64_t) gid);
}

/* The capabilities of Linux, as capabilities(7) names them. */
/* clang-format off */
static const char *const capability_names[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        NULL,
};
/* clang-format on */

/* Whether s is in the bounding set of the unprivileged profile (spec.h), or
 * is CAP_SYS_CHROOT: an unprivileged app may hold that one too, and then
 * gets a mount namespace of its own instead of the app view. */
static bool unprivileged_capability(const char *s) {
        if (streq(s, "CAP_SYS_CHROOT"))
                return true;
        size_t n = strlen(s);
        for (const char *w = PM_UNPRIVILEGED_CAPS; *w; w += strcspn(w, " "), w += *w == ' ')
                if (strncmp(w, s, n) == 0 && (w[n] == ' ' || w[n] == '\0'))
                        return true;
        return false;
}

static bool name_in(const char *const *names, const char *s) {
        for (; *names; names++)
                if (streq(*names, s))
                        return true;
        return false;
}

/* The names of one capability set, each checked. */
static int capability_set(json_object *caps, const char *key, json_object **ret, char **ret_error) {
        json_object *set = NULL;
        int r;

        r = member(caps, "process.capabilities", key, json_type_array, &set, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; set && i < json_object_array_length(set); i++) {
                const char *s;
                FieldPath fp;

                r = string_value(json_object_array_get_idx(set, i),
                                 path_fmt(&fp, "process.capabilities.%s[%zu]", key, i), &s, ret_error);
                if (r < 0)
                        return r;
                if (!name_in(capability_names, s))
                        return pm_errorf(ret_error, -EINVAL, "%s: unknown capability \"%.64s\"", fp.s, s);
        }
        *ret = set;
        return 0;
}

static int parse_capabilities(Bundle *b, json_object *process, char **ret_error) {
        static const char *const known[] = {"bounding", "effective", "permitted", "inheritable", "ambient", NULL};
        static const char *const subsets[] = {"effective", "permitted", "inheritable", "ambient"};
        PmAppSpec *spec = b->spec;
        json_object *caps = NULL, *bounding = NULL;
        int r;

        r = object_member(process, "process", "capabilities", known, &caps, ret_error);
        if (r < 0 || !caps)
                return r; /* the profile's set */
        r = capability_set(caps, "bounding", &bounding, ret_error);
        if (r < 0)
                return r;
        if (!bounding || json_object_array_length(bounding) == 0)
                return pm_errorf(ret_error, -EINVAL,
                                 "process.capabilities.bounding: an empty bounding set is not supported; list the "
                                 "capabilities the app keeps, or remove process.capabilities for the profile's set");
        for (size_t i = 0; i < json_object_array_length(bounding); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(bounding, i));

                if (strv_contains(spec->capabilities, spec->n_capabilities, s))
                        continue;
                r = strv_push(&spec->capabilities, &spec->n_capabilities, s);
                if (r < 0)
                        return r;
                if (!unprivileged_capability(s))
                        spec->profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        }

        /* The other sets add nothing under systemd: root gets the whole
         * bounding set, another user none (docs/bundles.md). They must stay
         * inside the bounding set, and ambient capabilities, which would
         * give a non-root user some, are only taken for root. */
        for (size_t k = 0; k < ELEMENTSOF(subsets); k++) {
                json_object *set = NULL;

                r = capability_set(caps, subsets[k], &set, ret_error);
                if (r < 0)
                        return r;
                for (size_t i = 0; set && i < json_object_array_length(set); i++) {
                        const char *s = json_object_get_string(json_object_array_get_idx(set, i));

                        if (!strv_contains(spec->capabilities, spec->n_capabilities, s))
                                return pm_errorf(ret_error, -EINVAL,
                                                 "process.capabilities.%s[%zu]: %s is not in the bounding set",
                                                 subsets[k], i, s);
                        if (streq(subsets[k], "ambient") && !b->root_user)
                                return pm_errorf(ret_error, -EINVAL,
                                                 "process.capabilities.ambient: not supported for a user other than "
                                                 "root: an app's user gets no capabilities");
                }
        }
        return 0;
}

static const char *const rlimit_names[] = {
        "RLIMIT_AS",      "RLIMIT_CORE",     "RLIMIT_CPU",        "RLIMIT_DATA",   "RLIMIT_FSIZE", "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",       "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS",
        "RLIMIT_RTPRIO",  "RLIMIT_RTTIME",   "RLIMIT_SIGPENDING", "RLIMIT_STACK",  NULL,
};

static int parse_rlimits(Bundle *b, json_object *process, char **ret_error) {
        static const char *const known[] = {"type", "soft", "hard", NULL};
        PmAppSpec *spec = b->spec;
        json_object *rlimits = NULL;
        int r;

        r = member(process, "process", "rlimits", json_type_array, &rlimits, ret_error);
        if (r < 0 || !rlimits)
                return r;
        for (size_t i = 0; i < json_object_array_length(rlimits); i++) {
                json_object *e = json_object_array_get_idx(rlimits, i), *v;
                uint64_t soft, hard;
                const char *type;
                FieldPath fp, fq;
                Rlimit *rl;

                path_fmt(&fp, "process.rlimits[%zu]", i);
                if (!json_object_is_type(e, json_type_object))
                        return pm_errorf(ret_error, -EINVAL, "%s: expected an object, got %s", fp.s, type_name(e));
                r = check_known(e, fp.s, known, ret_error);
                if (r < 0)
                        return r;
                r = string_member(e, fp.s, "type", &type, ret_error);
                if (r < 0)
                        return r;
                if (!type || !name_in(rlimit_names, type))
                        return pm_errorf(ret_error, -EINVAL,
                                         "%s.type: %s%.32s%s is not a resource limit of getrlimit(2)", fp.s,
                                         type ? "\"" : "", type ?: "missing", type ? "\"" : "");
                for (size_t j = 0; j < spec->n_rlimits; j++)
                        if (streq(spec->rlimits[j]->type, type))
                                return pm_errorf(ret_error, -EINVAL, "%s.type: %s is given twice", fp.s, type);
                if (!json_object_object_get_ex(e, "soft", &v))
                        return pm_errorf(ret_error, -EINVAL, "%s.soft: required", fp.s);
                r = uint64_value(v, path_fmt(&fq, "%s.soft", fp.s), &soft, ret_error);
                if (r < 0)
                        return r;
                if (!json_object_object_get_ex(e, "hard", &v))
                        return pm_errorf(ret_error, -EINVAL, "%s.hard: required", fp.s);
                r = uint64_value(v, path_fmt(&fq, "%s.hard", fp.s), &hard, ret_error);
                if (r < 0)
                        return r;
                if (soft > hard)
                        return pm_errorf(ret_error, -EINVAL, "%s: soft %" PRIu64 " is above hard %" PRIu64, fp.s, soft,
                                         hard);

                rl = malloc(sizeof(Rlimit));
                if (rl) {
                        podmutator__v1__rlimit__init(rl);
                        rl->soft = soft;
                        rl->hard = hard;
                        if (set_string(&rl->type, type) < 0) {
                                free(rl);
                                rl = NULL;
                        }
                }
                r = message_push((void ***) &spec->rlimits, &spec->n_rlimits, rl);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_process(Bundle *b, json_object *top, char **ret_error) {
        /* clang-format off */
        static const char *const known[] = {
                "terminal", "consoleSize", "cwd", "env", "args", "commandLine", "rlimits", "apparmorProfile",
                "capabilities", "noNewPrivileges", "oomScoreAdj", "scheduler", "selinuxLabel", "ioPriority",
                "execCPUAffinity", "user", NULL,
        };
        /* clang-format on */
        json_object *process = NULL;
        const char *cwd;
        bool terminal;
        int r;

        r = object_member(top, "", "process", known, &process, ret_error);
        if (r < 0)
                return r;
        if (!process)
                return pm_errorf(ret_error, -EINVAL, "process: required: the bundle names no process to run");

        r = bool_member(process, "process", "terminal", &terminal, ret_error);
        if (r < 0)
                return r;
        if (terminal)
                return pm_errorf(ret_error, -EINVAL,
                                 "process.terminal: set it to false: apps run without a terminal (\"pmctl exec -t\" "
                                 "gives one to a command)");
        if ((r = refuse_set(process, "process", "commandLine", "Windows only; give args", ret_error)) < 0 ||
            (r = refuse_set(process, "process", "apparmorProfile", "apps get no AppArmor profile of their own",
                            ret_error)) < 0 ||
            (r = refuse_set(process, "process", "selinuxLabel", "apps get no SELinux label of their own", ret_error)) <
                    0 ||
            (r = refuse_set(process, "process", "oomScoreAdj", "an app keeps the pod's OOM score adjustment",
                            ret_error)) < 0 ||
            (r = refuse_set(process, "process", "scheduler", "apps run with the default scheduling policy",
                            ret_error)) < 0 ||
            (r = refuse_set(process, "process", "ioPriority", "apps run with the default I/O priority", ret_error)) <
                    0 ||
            (r = refuse_set(process, "process", "execCPUAffinity", "apps run on every CPU of the pod", ret_error)) < 0)
                return r;

        r = parse_args(b, process, ret_error);
        if (r < 0)
                return r;
        r = parse_env(b, process, ret_error);
        if (r < 0)
                return r;
        r = string_member(process, "process", "cwd", &cwd, ret_error);
        if (r < 0)
                return r;
        if (!cwd || cwd[0] != '/')
                return pm_errorf(ret_error, -EINVAL, "process.cwd: required, an absolute path");
        r = set_string(&b->spec->working_dir, cwd);
        if (r < 0)
                return r;
        r = parse_user(b, process, ret_error);
        if (r < 0)
                return r;
        r = parse_capabilities(b, process, ret_error);
        if (r < 0)
                return r;
        r = parse_rlimits(b, process, ret_error);
        if (r < 0)
                return r;
        bool nnp;
        r = bool_member(process, "process", "noNewPrivileges", &nnp, ret_error);
        if (r < 0)
                return r;
        b->spec->no_new_privileges = nnp;
        return 0;
}

/* ---- root, hostname ---- */

static int parse_root(Bundle *b, json_object *top, char **ret_root_path, char **ret_error) {
        static const char *const known[] = {"path", "readonly", NULL};
        json_object *root = NULL;
        const char *path;
        bool readonly;
        int r;

        r = object_member(top, "", "root", known, &root, ret_error);
        if (r < 0)
                return r;
        if (!root)
                return pm_errorf(ret_error, -EINVAL, "root: required");
        r = string_member(root, "root", "path", &path, ret_error);
        if (r < 0)
                return r;
        if (isempty(path))
                return pm_errorf(ret_error, -EINVAL, "root.path: required");
        r = bool_member(root, "root", "readonly", &readonly, ret_error);
        if (r < 0)
                return r;
        b->spec->read_only_rootfs = readonly;
        *ret_root_path = strdup(path);
        return *ret_root_path ? 0 : -ENOMEM;
}

static int parse_hostname(Bundle *b, json_object *top, char **ret_error) {
        const char *hostname;
        int r;

        r = refuse_set(top, "", "domainname", "apps have the pod's domain name", ret_error);
        if (r < 0)
                return r;
        r = string_member(top, "", "hostname", &hostname, ret_error);
        if (r < 0 || isempty(hostname))
                return r;
        if (!b->uts_namespace)
                return pm_errorf(ret_error, -EINVAL,
                                 "hostname: needs a uts namespace; add {\"type\": \"uts\"} to linux.namespaces or "
                                 "remove hostname");
        return set_string(&b->spec->hostname, hostname);
}

/* ---- mounts ---- */

/* What a pod's systemd already gives every app: the standard pseudo file
 * systems of a default runtime-spec config. */
static const struct {
        const char *destination;
        const char *type;
} pseudo_mounts[] = {
        {"/proc", "proc"},         {"/dev", "tmpfs"}, {"/dev/pts", "devpts"},       {"/dev/shm", "tmpfs"},
        {"/dev/mqueue", "mqueue"}, {"/sys", "sysfs"}, {"/sys/fs/cgroup", "cgroup"}, {"/sys/fs/cgroup", "cgroup2"},
};

static bool is_pseudo_mount(const char *destination, const char *type) {
        for (size_t i = 0; i < ELEMENTSOF(pseudo_mounts); i++)
                if (streq(pseudo_mounts[i].destination, destination) && streq_ptr(pseudo_mounts[i].type, type))
                        return true;
        return false;
}

static int parse_mount(Bundle *b, json_object *m, size_t i, char **ret_error) {
        static const char *const known[] = {"destination", "type",        "source", "options",
                                            "uidMappings", "gidMappings", NULL};
        static const char *const accepted_options[] = {"ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", NULL};
        _cleanup_free_ char *source_path = NULL;
        const char *destination, *type, *source;
        bool bind = false, read_only = false;
        json_object *options = NULL;
        FieldPath fp;
        Mount *mount;
        int r;

        path_fmt(&fp, "mounts[%zu]", i);
        if (!json_object_is_type(m, json_type_object))
                return pm_errorf(ret_error, -EINVAL, "%s: expected an object, got %s", fp.s, type_name(m));
        r = check_known(m, fp.s, known, ret_error);
        if (r < 0)
                return r;
        if ((r = refuse_set(m, fp.s, "uidMappings", "apps have no id-mapped mounts", ret_error)) < 0 ||
            (r = refuse_set(m, fp.s, "gidMappings", "apps have no id-mapped mounts", ret_error)) < 0)
                return r;
        if ((r = string_member(m, fp.s, "destination", &destination, ret_error)) < 0 ||
            (r = string_member(m, fp.s, "type", &type, ret_error)) < 0 ||
            (r = string_member(m, fp.s, "source", &source, ret_error)) < 0 ||
            (r = member(m, fp.s, "options", json_type_array, &options, ret_error)) < 0)
                return r;
        if (!destination || destination[0] != '/')
                return pm_errorf(ret_error, -EINVAL, "%s.destination: required, an absolute path", fp.s);

        if (is_pseudo_mount(destination, type))
                return 0; /* systemd provides it; its options are systemd's too */

        for (size_t j = 0; options && j < json_object_array_length(options); j++) {
                const char *o;
                FieldPath fo;

                r = string_value(json_object_array_get_idx(options, j), path_fmt(&fo, "%s.options[%zu]", fp.s, j), &o,
                                 ret_error);
                if (r < 0)
                        return r;
                if (!name_in(accepted_options, o))
                        return pm_errorf(ret_error, -EINVAL,
                                         "%s: option \"%.32s\" is not supported (ro, rw, bind, rbind, nosuid, nodev, "
                                         "noexec are)",
                                         fo.s, o);
                if (streq(o, "bind") || streq(o, "rbind"))
                        bind = true;
                else if (streq(o, "ro") || streq(o, "rw"))
                        read_only = streq(o, "ro");
        }
        if (type && (streq(type, "bind") || streq(type, "rbind")))
                bind = true;
        else if (!isempty(type) && !streq(type, "none"))
                return pm_errorf(ret_error, -EINVAL,
                                 "%s.type: \"%.32s\" mounts are not supported at %s; only bind mounts, and the "
                                 "standard /proc, /dev, /sys mounts systemd provides",
                                 fp.s, type, destination);
        if (!bind)
                return pm_errorf(ret_error, -EINVAL,
                                 "%s.options: not a bind mount; only bind mounts are supported (\"bind\" or \"rbind\")",
                                 fp.s);
        if (isempty(source))
                return pm_errorf(ret_error, -EINVAL, "%s.source: required for a bind mount", fp.s);
        if (source[0] != '/' && b->dir) {
                source_path = path_join_alloc(b->dir, source);
                if (!source_path)
                        return -ENOMEM;
                source = source_path;
        }

        mount = malloc(sizeof(Mount));
        if (mount) {
                podmutator__v1__mount__init(mount);
                mount->read_only = read_only;
                if (set_string(&mount->source, source) < 0 || set_string(&mount->target, destination) < 0) {
                        protobuf_c_message_free_unpacked(&mount->base, NULL);
                        mount = NULL;
                }
        }
        return message_push((void ***) &b->spec->mounts, &b->spec->n_mounts, mount);
}

static int parse_mounts(Bundle *b, json_object *top, char **ret_error) {
        json_object *mounts = NULL;
        int r;

        r = member(top, "", "mounts", json_type_array, &mounts, ret_error);
        if (r < 0 || !mounts)
                return r;
        for (size_t i = 0; i < json_object_array_length(mounts); i++) {
                r = parse_mount(b, json_object_array_get_idx(mounts, i), i, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- annotations ---- */

static int parse_annotations(Bundle *b, json_object *top, char **ret_error) {
        PmAppSpec *spec = b->spec;
        json_object *annotations = NULL;
        int r;

        r = member(top, "", "annotations", json_type_object, &annotations, ret_error);
        if (r < 0 || !annotations)
                return r;
        json_object_object_foreach(annotations, key, v) {
                const char *value;
                FieldPath fp;

                r = string_value(v, path_fmt(&fp, "annotations.%s", printable(key)), &value, ret_error);
                if (r < 0)
                        return r;
                if (!pm_label_key_valid(key))
                        return pm_errorf(ret_error, -EINVAL, "%s: not a key an app can carry (1-%d of [A-Za-z0-9._/-])",
                                         fp.s, PM_LABEL_KEY_MAX);
                if (streq(key, STOP_SIGNAL_ANNOTATION)) {
                        if (pm_signal_from_name(value) < 0)
                                return pm_errorf(ret_error, -EINVAL, "%s: unknown signal \"%.32s\"", fp.s, value);
                        r = set_string(&spec->stop_signal, value);
                        if (r < 0)
                                return r;
                }
                r = message_push((void ***) &spec->annotations, &spec->n_annotations,
                                 entry_new(annotations_entry_init, sizeof(AnnotationsEntry), key, strlen(key), value));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- linux ---- */

static int parse_namespaces(Bundle *b, json_object *linux_, char **ret_error) {
        static const char *const known[] = {"type", "path", NULL};
        static const char *const types[] = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time", NULL};
        bool seen[ELEMENTSOF(types)] = {};
        json_object *namespaces = NULL;
        Network *network;
        int r;

        r = member(linux_, "linux", "namespaces", json_type_array, &namespaces, ret_error);
        if (r < 0)
                return r;

        network = malloc(sizeof(Network));
        if (!network)
                return -ENOMEM;
        podmutator__v1__network__init(network);
        /* no network namespace: the runtime's, which is the pod's */
        network->mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_HOST;
        b->spec->network = network;

        for (size_t i = 0; namespaces && i < json_object_array_length(namespaces); i++) {
                json_object *ns = json_object_array_get_idx(namespaces, i);
                const char *type, *path;
                FieldPath fp;
                size_t k;

                path_fmt(&fp, "linux.namespaces[%zu]", i);
                if (!json_object_is_type(ns, json_type_object))
                        return pm_errorf(ret_error, -EINVAL, "%s: expected an object, got %s", fp.s, type_name(ns));
                r = check_known(ns, fp.s, known, ret_error);
                if (r < 0)
                        return r;
                if ((r = string_member(ns, fp.s, "type", &type, ret_error)) < 0 ||
                    (r = string_member(ns, fp.s, "path", &path, ret_error)) < 0)
                        return r;
                for (k = 0; types[k] && !streq_ptr(types[k], type); k++)
                        ;
                if (!types[k])
                        return pm_errorf(ret_error, -EINVAL, "%s.type: %s%.32s%s is not a namespace type", fp.s,
                                         type ? "\"" : "", type ?: "missing", type ? "\"" : "");
                if (seen[k])
                        return pm_errorf(ret_error, -EINVAL, "%s.type: the %s namespace is given twice", fp.s, type);
                seen[k] = true;

                if (streq(type, "user") || streq(type, "cgroup") || streq(type, "time"))
                        return pm_errorf(
                                ret_error, -EINVAL,
                                "%s.type: %s namespaces are not supported; apps share the pod's, remove the entry",
                                fp.s, type);
                if (streq(type, "network")) {
                        if (isempty(path)) {
                                network->mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE;
                                continue;
                        }
                        if (path[0] != '/')
                                return pm_errorf(ret_error, -EINVAL, "%s.path: must be an absolute path", fp.s);
                        network->mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS;
                        r = set_string(&network->netns_path, path);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* pid, ipc, uts, mount: what systemd gives the app (docs/bundles.md) */
                if (!isempty(path))
                        return pm_errorf(ret_error, -EINVAL,
                                         "%s.path: joining an existing %s namespace is not supported", fp.s, type);
                if (streq(type, "uts"))
                        b->uts_namespace = true;
        }
        return 0;
}

/* The rule a default config carries: deny every device, which is also what
 * the profile's device policy starts from. */
static int parse_devices_rules(json_object *resources, char **ret_error) {
        static const char *const known[] = {"allow", "type", "major", "minor", "access", NULL};
        json_object *devices = NULL;
        int r;

        r = member(resources, "linux.resources", "devices", json_type_array, &devices, ret_error);
        if (r < 0 || !devices)
                return r;
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i), *v;
                const char *type, *access;
                int64_t major = -1, minor = -1;
                bool allow, set;
                FieldPath fp;

                path_fmt(&fp, "linux.resources.devices[%zu]", i);
                if (!json_object_is_type(d, json_type_object))
                        return pm_errorf(ret_error, -EINVAL, "%s: expected an object, got %s", fp.s, type_name(d));
                if ((r = check_known(d, fp.s, known, ret_error)) < 0 ||
                    (r = member(d, fp.s, "allow", json_type_boolean, &v, ret_error)) < 0 ||
                    (r = string_member(d, fp.s, "type", &type, ret_error)) < 0 ||
                    (r = string_member(d, fp.s, "access", &access, ret_error)) < 0 ||
                    (r = int64_member(d, fp.s, "major", &major, &set, ret_error)) < 0 ||
                    (r = int64_member(d, fp.s, "minor", &minor, &set, ret_error)) < 0)
                        return r;
                allow = v && json_object_get_boolean(v);
                if (!v || allow || !(isempty(type) || streq(type, "a")) || major != -1 || minor != -1 ||
                    !(isempty(access) || streq(access, "rwm")))
                        return pm_errorf(ret_error, -EINVAL,
                                         "%s: not supported: only the default rule that denies every device; the "
                                         "profile decides device access",
                                         fp.s);
        }
        return 0;
}

static int parse_memory(Bundle *b, json_object *resources, char **ret_error) {
        static const char *const known[] = {
                "limit",        "reservation",       "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
                "useHierarchy", "checkBeforeUpdate", NULL};
        static const char *const refused[] = {
                "reservation",       "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy",
                "checkBeforeUpdate", NULL};
        const char *const path = "linux.resources.memory";
        json_object *memory = NULL;
        int64_t limit;
        bool set;
        int r;

        r = object_member(resources, "linux.resources", "memory", known, &memory, ret_error);
        if (r < 0 || !memory)
                return r;
        for (const char *const *k = refused; *k; k++) {
                r = refuse_set(memory, path, *k, "only memory.limit is (MemoryMax=)", ret_error);
                if (r < 0)
                        return r;
        }
        r = int64_member(memory, path, "limit", &limit, &set, ret_error);
        if (r < 0 || !set || limit == -1)
                return r;
        if (limit <= 0)
                return pm_errorf(ret_error, -EINVAL, "%s.limit: must be a positive number of bytes, or -1 for none",
                                 path);
        if (!spec_resources(b->spec))
                return -ENOMEM;
        b->spec->resources->memory_max = (uint64_t) limit;
        return 0;
}

static int parse_cpu(Bundle *b, json_object *resources, char **ret_error) {
        static const char *const known[] = {"shares",         "quota", "burst", "period", "realtimeRuntime",
                                            "realtimePeriod", "cpus",  "mems",  "idle",   NULL};
        static const char *const refused[] = {"shares", "burst", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
                                              "idle",   NULL};
        const char *const path = "linux.resources.cpu";
        json_object *cpu = NULL, *v = NULL;
        uint64_t period = DEFAULT_CPU_PERIOD, millis;
        int64_t quota;
        bool set;
        int r;

        r = object_member(resources, "linux.resources", "cpu", known, &cpu, ret_error);
        if (r < 0 || !cpu)
                return r;
        for (const char *const *k = refused; *k; k++) {
                r = refuse_set(cpu, path, *k, "only cpu.quota and cpu.period are (CPUQuota=)", ret_error);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(cpu, "period", &v) && !json_object_is_type(v, json_type_null)) {
                r = uint64_value(v, "linux.resources.cpu.period", &period, ret_error);
                if (r < 0)
                        return r;
                if (period < 1000 || period > 1000000)
                        return pm_errorf(ret_error, -EINVAL, "%s.period: must be 1000 to 1000000 microseconds", path);
        }
        r = int64_member(cpu, path, "quota", &quota, &set, ret_error);
        if (r < 0 || !set || quota == -1)
                return r;
        if (quota <= 0)
                return pm_errorf(ret_error, -EINVAL, "%s.quota: must be positive microseconds, or -1 for none", path);
        /* thousandths of a CPU, rounded up so that a small quota stays a limit */
        if ((uint64_t) quota > UINT64_MAX / 1000 ||
            (millis = ((uint64_t) quota * 1000 + period - 1) / period) > UINT32_MAX)
                return pm_errorf(ret_error, -EINVAL, "%s.quota: %" PRIi64 " is too large", path, quota);
        if (!spec_resources(b->spec))
                return -ENOMEM;
        b->spec->resources->cpu_millis = (uint32_t) millis;
        return 0;
}

static int parse_pids(Bundle *b, json_object *resources, char **ret_error) {
        static const char *const known[] = {"limit", NULL};
        json_object *pids = NULL;
        int64_t limit;
        bool set;
        int r;

        r = object_member(resources, "linux.resources", "pids", known, &pids, ret_error);
        if (r < 0 || !pids)
                return r;
        r = int64_member(pids, "linux.resources.pids", "limit", &limit, &set, ret_error);
        if (r < 0 || !set || limit == -1)
                return r;
        if (limit <= 0 || limit > UINT32_MAX)
                return pm_errorf(ret_error, -EINVAL,
                                 "linux.resources.pids.limit: must be 1 to %" PRIu32 ", or -1 for none", UINT32_MAX);
        if (!spec_resources(b->spec))
                return -ENOMEM;
        b->spec->resources->tasks_max = (uint32_t) limit;
        return 0;
}

static int parse_resources(Bundle *b, json_object *linux_, char **ret_error) {
        static const char *const known[] = {"devices", "memory", "cpu",  "blockIO", "hugepageLimits",
                                            "network", "pids",   "rdma", "unified", NULL};
        static const char *const refused[] = {"blockIO", "hugepageLimits", "network", "rdma", "unified", NULL};
        json_object *resources = NULL;
        int r;

        r = object_member(linux_, "linux", "resources", known, &resources, ret_error);
        if (r < 0 || !resources)
                return r;
        for (const char *const *k = refused; *k; k++) {
                r = refuse_set(resources, "linux.resources", *k,
                               "only memory.limit, cpu.quota/period and pids.limit are", ret_error);
                if (r < 0)
                        return r;
        }
        if ((r = parse_devices_rules(resources, ret_error)) < 0 || (r = parse_memory(b, resources, ret_error)) < 0 ||
            (r = parse_cpu(b, resources, ret_error)) < 0 || (r = parse_pids(b, resources, ret_error)) < 0)
                return r;
        return 0;
}

/* The paths a default config masks or makes read-only; the unprivileged
 * profile protects them (docs/bundles.md), so these lists are taken. */
/* clang-format off */
static const char *const default_masked_paths[] = {
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap", NULL,
};
/* clang-format on */
static const char *const default_readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static int parse_path_list(json_object *linux_, const char *key, const char *const *defaults, char **ret_error) {
        json_object *list = NULL;
        int r;

        r = member(linux_, "linux", key, json_type_array, &list, ret_error);
        if (r < 0 || !list)
                return r;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                const char *s;
                FieldPath fp;

                r = string_value(json_object_array_get_idx(list, i), path_fmt(&fp, "linux.%s[%zu]", key, i), &s,
                                 ret_error);
                if (r < 0)
                        return r;
                if (!name_in(defaults, s))
                        return pm_errorf(
                                ret_error, -EINVAL,
                                "%s: \"%.64s\" is not supported; only the default list is, which the profile covers",
                                fp.s, s);
        }
        return 0;
}

static int parse_linux(Bundle *b, json_object *top, char **ret_error) {
        static const char *const known[] = {
                "namespaces",        "uidMappings", "gidMappings",   "timeOffsets",  "devices",     "netDevices",
                "cgroupsPath",       "resources",   "intelRdt",      "memoryPolicy", "sysctl",      "seccomp",
                "rootfsPropagation", "maskedPaths", "readonlyPaths", "mountLabel",   "personality", NULL,
        };
        static const struct {
                const char *key, *why;
        } refused[] = {
                {"uidMappings", "apps have no user namespace"},
                {"gidMappings", "apps have no user namespace"},
                {"timeOffsets", "apps have no time namespace"},
                {"devices", "apps get the devices of their profile"},
                {"netDevices", "apps get the network of the pod or of their namespace"},
                {"intelRdt", "apps get no resctrl group"},
                {"memoryPolicy", "apps run with the default NUMA policy"},
                {"sysctl", "apps share the pod's kernel parameters"},
                {"seccomp", "the profile decides the system call filter"},
                {"rootfsPropagation", "systemd decides mount propagation"},
                {"mountLabel", "apps get no SELinux mount label"},
                {"personality", "apps run with the node's execution domain"},
        };
        json_object *linux_ = NULL;
        int r;

        r = object_member(top, "", "linux", known, &linux_, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                r = refuse_set(linux_, "linux", refused[i].key, refused[i].why, ret_error);
                if (r < 0)
                        return r;
        }
        /* cgroupsPath: taken and not used; an app's cgroup is its unit's. */
        if ((r = parse_namespaces(b, linux_, ret_error)) < 0 || (r = parse_resources(b, linux_, ret_error)) < 0 ||
            (r = parse_path_list(linux_, "maskedPaths", default_masked_paths, ret_error)) < 0 ||
            (r = parse_path_list(linux_, "readonlyPaths", default_readonly_paths, ret_error)) < 0)
                return r;
        return 0;
}

/* ---- the whole config ---- */

/* json-c keeps the last of repeated keys without a word. So count the
 * members of each object in the text, in the order the objects open, and
 * compare with what json-c kept, walking its tree in the same order: the
 * first object that lost a member is the one with a key given twice. */
static int count_members(const char *text, size_t len, size_t **ret_counts, size_t *ret_n) {
        _cleanup_free_ size_t *counts = NULL;
        size_t stack[JSON_DEPTH_MAX + 1], depth = 0, n = 0;

        counts = calloc(len / 2 + 1, sizeof(size_t)); /* an object takes at least "{}" */
        if (!counts)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = text[i];

                if (c == '"') {
                        for (i++; i < len && text[i] != '"'; i++)
                                if (text[i] == '\\')
                                        i++;
                } else if (c == '{' || c == '[') {
                        if (depth > JSON_DEPTH_MAX || n > len / 2)
                                return -EINVAL; /* json-c checked the text already */
                        stack[depth++] = c == '{' ? n++ : SIZE_MAX;
                } else if (c == '}' || c == ']') {
                        depth -= depth > 0;
                } else if (c == ':' && depth > 0 && stack[depth - 1] != SIZE_MAX)
                        counts[stack[depth - 1]]++;
        }
        *ret_counts = TAKE_PTR(counts);
        *ret_n = n;
        return 0;
}

static bool members_kept(json_object *v, const size_t *counts, size_t n, size_t *next) {
        if (json_object_is_type(v, json_type_object)) {
                if (*next >= n || counts[(*next)++] != (size_t) json_object_object_length(v))
                        return false;
                json_object_object_foreach(v, key, member) {
                        (void) key;
                        if (!members_kept(member, counts, n, next))
                                return false;
                }
        } else if (json_object_is_type(v, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        if (!members_kept(json_object_array_get_idx(v, i), counts, n, next))
                                return false;
        }
        return true;
}

static int check_repeated_keys(json_object *top, const char *text, size_t len, char **ret_error) {
        _cleanup_free_ size_t *counts = NULL;
        size_t n, next = 0;
        int r;

        r = count_members(text, len, &counts, &n);
        if (r == -ENOMEM)
                return pm_errorf(ret_error, r, "out of memory");
        if (r < 0 || !members_kept(top, counts, n, &next))
                return pm_errorf(ret_error, -EINVAL, "config.json: an object holds the same key twice");
        return 0;
}

static int parse_hooks(json_object *top, char **ret_error) {
        json_object *hooks = NULL;
        int r;

        r = member(top, "", "hooks", json_type_object, &hooks, ret_error);
        if (r < 0 || !hooks)
                return r;
        json_object_object_foreach(hooks, key, v) {
                if (is_unset(v))
                        continue;
                return pm_errorf(
                        ret_error, -EINVAL,
                        "hooks.%s: not supported: hooks would run programs on the node; prepare the bundle beforehand",
                        key);
        }
        return 0;
}

static int bundle_parse(const char *text, size_t len, const char *dir, PmAppSpec **ret_spec, char **ret_root_path,
                        char **ret_error) {
        static const char *const known[] = {"ociVersion", "process", "root",        "hostname", "domainname",
                                            "mounts",     "hooks",   "annotations", "linux",    NULL};
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *top = NULL;
        _cleanup_(spec_freep) PmAppSpec *spec = NULL;
        _cleanup_free_ char *root_path = NULL;
        enum json_tokener_error e;
        Bundle b = {.dir = dir};
        int r;

        assert(text || len == 0);

        if (len == 0)
                return pm_errorf(ret_error, -EINVAL, "config.json: empty");
        if (len > INT_MAX)
                return pm_errorf(ret_error, -EINVAL, "config.json: too large");
        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return pm_errorf(ret_error, -ENOMEM, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        top = json_tokener_parse_ex(tok, text, (int) len);
        e = json_tokener_get_error(tok);
        if (e == json_tokener_continue)
                return pm_errorf(ret_error, -EINVAL, "config.json: invalid JSON: the text ends early");
        if (e != json_tokener_success)
                return pm_errorf(ret_error, -EINVAL, "config.json: invalid JSON at offset %zu: %s",
                                 json_tokener_get_parse_end(tok), json_tokener_error_desc(e));
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                if (!strchr(" \t\r\n", text[i]) || text[i] == 0)
                        return pm_errorf(ret_error, -EINVAL, "config.json: trailing characters at offset %zu", i);
        if (!json_object_is_type(top, json_type_object))
                return pm_errorf(ret_error, -EINVAL, "config.json: expected an object, got %s", type_name(top));
        r = check_repeated_keys(top, text, len, ret_error);
        if (r < 0)
                return r;

        spec = malloc(sizeof(PmAppSpec));
        if (!spec)
                return pm_errorf(ret_error, -ENOMEM, "out of memory");
        podmutator__v1__app_spec__init(spec);
        b.spec = spec;

        if ((r = check_known(top, "", known, ret_error)) < 0 || (r = parse_version(top, ret_error)) < 0 ||
            (r = parse_hooks(top, ret_error)) < 0 || (r = parse_root(&b, top, &root_path, ret_error)) < 0 ||
            (r = parse_linux(&b, top, ret_error)) < 0 || (r = parse_process(&b, top, ret_error)) < 0 ||
            (r = parse_hostname(&b, top, ret_error)) < 0 || (r = parse_mounts(&b, top, ret_error)) < 0 ||
            (r = parse_annotations(&b, top, ret_error)) < 0)
                return r == -ENOMEM ? pm_errorf(ret_error, r, "out of memory") : r;

        *ret_spec = TAKE_PTR(spec);
        *ret_root_path = TAKE_PTR(root_path);
        return 0;
}

int pm_bundle_parse(const char *json_text, size_t len, PmAppSpec **ret_spec, char **ret_root_path, char **ret_error) {
        assert(ret_spec);
        assert(ret_root_path);

        return bundle_parse(json_text, len, NULL, ret_spec, ret_root_path, ret_error);
}

int pm_bundle_load(const char *dir, PmAppSpec **ret_spec, char **ret_rootfs, char **ret_error) {
        _cleanup_free_ char *real_dir = NULL, *config = NULL, *text = NULL, *root_path = NULL, *root = NULL,
                            *rootfs = NULL;
        _cleanup_(spec_freep) PmAppSpec *spec = NULL;
        struct stat st;
        size_t size;
        int r;

        assert(dir);
        assert(ret_spec);
        assert(ret_rootfs);

        real_dir = realpath(dir, NULL);
        if (!real_dir)
                return pm_errorf(ret_error, -errno, "bundle %s: %m", dir);
        config = path_join_alloc(real_dir, "config.json");
        if (!config)
                return pm_errorf(ret_error, -ENOMEM, "out of memory");
        r = pm_read_file(config, PM_BUNDLE_CONFIG_MAX, &text, &size);
        if (r == -EFBIG)
                return pm_errorf(ret_error, -EINVAL, "%s: larger than %u bytes", config, PM_BUNDLE_CONFIG_MAX);
        if (r < 0)
                return pm_errorf(ret_error, r, "%s: %m", config);

        r = bundle_parse(text, size, real_dir, &spec, &root_path, ret_error);
        if (r < 0)
                return r;

        root = root_path[0] == '/' ? strdup(root_path) : path_join_alloc(real_dir, root_path);
        if (!root)
                return pm_errorf(ret_error, -ENOMEM, "out of memory");
        rootfs = realpath(root, NULL);
        if (!rootfs)
                return pm_errorf(ret_error, -errno, "root.path: %s: %m", root);
        if (stat(rootfs, &st) < 0)
                return pm_errorf(ret_error, -errno, "root.path: %s: %m", rootfs);
        if (!S_ISDIR(st.st_mode))
                return pm_errorf(ret_error, -ENOTDIR, "root.path: %s is not a directory", rootfs);

        *ret_spec = TAKE_PTR(spec);
        *ret_rootfs = TAKE_PTR(rootfs);
        return 0;
}
