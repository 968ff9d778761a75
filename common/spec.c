#include "spec.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "errmsg.h"
#include "util.h"

typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;
typedef Podmutator__V1__AppSpec__LabelsEntry LabelsEntry;

const char *pm_spec_namespace(const PmAppSpec *spec) {
        return isempty(spec->namespace_) ? PM_DEFAULT_NAMESPACE : spec->namespace_;
}

static bool has_control_chars(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

bool pm_user_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > PM_USER_MAX)
                return false;
        uint32_t id;
        if (pm_parse_u32(s, &id) >= 0)
                return id < UINT32_MAX - 1; /* (uid_t) -1 and -2 are special */
        if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                      (c == '$' && i == n - 1)))
                        return false;
        }
        return true;
}

bool pm_label_key_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > PM_LABEL_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '/'))
                        return false;
        }
        return true;
}

static bool env_key_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > PM_ENV_KEY_MAX || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_'))
                        return false;
        }
        return true;
}

/* An absolute, normalised-enough path that a unit file can carry verbatim:
 * no control characters, no backslash, no "." or ".." component, no
 * trailing whitespace. */
static int check_path(const char *field, const char *p, char **ret_error) {
        size_t n = strlen(p);
        if (p[0] != '/')
                return pm_errorf(ret_error, -EINVAL, "%s: must be an absolute path", field);
        if (n > PM_PATH_MAX)
                return pm_errorf(ret_error, -EINVAL, "%s: longer than %u bytes", field, PM_PATH_MAX);
        if (!pm_utf8_valid(p, n) || has_control_chars(p) || strchr(p, '\\'))
                return pm_errorf(ret_error, -EINVAL, "%s: control characters, backslashes and invalid UTF-8 are not allowed",
                            field);
        if (p[n - 1] == ' ' || p[n - 1] == '\t')
                return pm_errorf(ret_error, -EINVAL, "%s: trailing whitespace is not allowed", field);
        for (const char *c = p; (c = strchr(c, '/')); c++) {
                size_t len = strcspn(c + 1, "/");
                if ((len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
                        return pm_errorf(ret_error, -EINVAL, "%s: \".\" and \"..\" components are not allowed", field);
        }
        return 0;
}

bool pm_mount_path_safe(const char *p) {
        return p[0] == '/' && !has_control_chars(p) && !strpbrk(p, ": \t\"'\\");
}

/* Indexed by capability number (linux/capability.h), up to the newest
 * systemd 252 knows. */
static const char *const capability_names[] = {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};

int pm_capability_from_name(const char *name) {
        if (strncasecmp(name, "CAP_", 4) == 0)
                name += 4;
        for (size_t i = 0; i < ELEMENTSOF(capability_names); i++)
                if (strcasecmp(name, capability_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *pm_capability_name(int cap) {
        return cap >= 0 && (size_t) cap < ELEMENTSOF(capability_names) ? capability_names[cap] : NULL;
}

static const struct {
        int resource;
        const char *name;      /* after "RLIMIT_" */
        const char *directive; /* systemd's setting */
} rlimits[] = {
        { RLIMIT_CPU, "CPU", "LimitCPU" },           { RLIMIT_FSIZE, "FSIZE", "LimitFSIZE" },
        { RLIMIT_DATA, "DATA", "LimitDATA" },        { RLIMIT_STACK, "STACK", "LimitSTACK" },
        { RLIMIT_CORE, "CORE", "LimitCORE" },        { RLIMIT_RSS, "RSS", "LimitRSS" },
        { RLIMIT_NPROC, "NPROC", "LimitNPROC" },     { RLIMIT_NOFILE, "NOFILE", "LimitNOFILE" },
        { RLIMIT_MEMLOCK, "MEMLOCK", "LimitMEMLOCK" }, { RLIMIT_AS, "AS", "LimitAS" },
        { RLIMIT_LOCKS, "LOCKS", "LimitLOCKS" },     { RLIMIT_SIGPENDING, "SIGPENDING", "LimitSIGPENDING" },
        { RLIMIT_MSGQUEUE, "MSGQUEUE", "LimitMSGQUEUE" }, { RLIMIT_NICE, "NICE", "LimitNICE" },
        { RLIMIT_RTPRIO, "RTPRIO", "LimitRTPRIO" },  { RLIMIT_RTTIME, "RTTIME", "LimitRTTIME" },
};

int pm_rlimit_from_name(const char *name) {
        if (strncasecmp(name, "RLIMIT_", 7) == 0)
                name += 7;
        for (size_t i = 0; i < ELEMENTSOF(rlimits); i++)
                if (strcasecmp(name, rlimits[i].name) == 0)
                        return rlimits[i].resource;
        return -EINVAL;
}

const char *pm_rlimit_directive(int resource) {
        for (size_t i = 0; i < ELEMENTSOF(rlimits); i++)
                if (rlimits[i].resource == resource)
                        return rlimits[i].directive;
        return NULL;
}

int pm_argv_validate(char *const *argv, size_t n_argv, char **ret_error) {
        if (n_argv == 0)
                return pm_errorf(ret_error, -EINVAL, "argv: must name a command");
        if (n_argv > PM_ARGV_MAX)
                return pm_errorf(ret_error, -EINVAL, "argv: more than %d arguments", PM_ARGV_MAX);
        size_t total = 0;
        for (size_t i = 0; i < n_argv; i++) {
                const char *a = argv[i];
                size_t n = strlen(a);
                if (!pm_utf8_valid(a, n))
                        return pm_errorf(ret_error, -EINVAL, "argv[%zu]: not valid UTF-8", i);
                total += n + 1;
        }
        if (total > PM_ARGV_BYTES_MAX)
                return pm_errorf(ret_error, -EINVAL, "argv: longer than %u bytes in all", PM_ARGV_BYTES_MAX);
        /* systemd reads prefix characters (@-:+!) off the first word, so the
         * command must start like a path or a plain name. */
        const char *cmd = argv[0];
        if (!(cmd[0] == '/' || (cmd[0] >= 'a' && cmd[0] <= 'z') || (cmd[0] >= 'A' && cmd[0] <= 'Z') ||
              (cmd[0] >= '0' && cmd[0] <= '9') || cmd[0] == '_' || cmd[0] == '.'))
                return pm_errorf(ret_error, -EINVAL, "argv[0]: must be an absolute path or a command name, got \"%.64s\"", cmd);
        /* What systemd refuses in an executable, refused here, before a
         * unit is written: special characters, and paths that are no file. */
        if (has_control_chars(cmd) || strpbrk(cmd, "\\\"'$"))
                return pm_errorf(ret_error, -EINVAL, "argv[0]: control characters, quotes, '$' and backslashes are not allowed in the command");
        if (cmd[0] != '/' && strchr(cmd, '/'))
                return pm_errorf(ret_error, -EINVAL, "argv[0]: a relative path is ambiguous; give an absolute path or a bare name");
        size_t n = strlen(cmd);
        const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
        if (cmd[n - 1] == '/' || streq(base, ".") || streq(base, ".."))
                return pm_errorf(ret_error, -EINVAL, "argv[0]: \"%.64s\" names a directory, not a command", cmd);
        if (n > PM_PATH_MAX || strlen(base) > 255)
                return pm_errorf(ret_error, -EINVAL, "argv[0]: the command is too long (a path of at most %d bytes, names of at most 255)",
                            PM_PATH_MAX);
        return 0;
}

int pm_env_validate(EnvEntry *const *env, size_t n_env, char **ret_error) {
        if (n_env > PM_ENV_MAX)
                return pm_errorf(ret_error, -EINVAL, "env: more than %d variables", PM_ENV_MAX);
        size_t total = 0;
        for (size_t i = 0; i < n_env; i++) {
                const EnvEntry *e = env[i];
                if (!env_key_valid(e->key))
                        return pm_errorf(ret_error, -EINVAL, "env: invalid variable name \"%.64s\" (letters, digits, '_', not starting with a digit)",
                                    e->key);
                size_t n = strlen(e->value);
                if (!pm_utf8_valid(e->value, n))
                        return pm_errorf(ret_error, -EINVAL, "env.%s: not valid UTF-8", e->key);
                total += strlen(e->key) + n + 2;
        }
        if (total > PM_ENV_BYTES_MAX)
                return pm_errorf(ret_error, -EINVAL, "env: longer than %u bytes in all", PM_ENV_BYTES_MAX);
        return 0;
}

static int check_map(const char *field, LabelsEntry *const *entries, size_t n_entries, size_t value_max,
                     size_t bytes_max, char **ret_error) {
        if (n_entries > PM_LABELS_MAX)
                return pm_errorf(ret_error, -EINVAL, "%s: more than %d entries", field, PM_LABELS_MAX);
        size_t total = 0;
        for (size_t i = 0; i < n_entries; i++) {
                const LabelsEntry *e = entries[i];
                if (!pm_label_key_valid(e->key))
                        return pm_errorf(ret_error, -EINVAL, "%s: invalid key \"%.64s\" (1-%d of [A-Za-z0-9._/-])", field, e->key,
                                    PM_LABEL_KEY_MAX);
                size_t n = strlen(e->value);
                if (n > value_max)
                        return pm_errorf(ret_error, -EINVAL, "%s.%s: value longer than %zu bytes", field, e->key, value_max);
                if (!pm_utf8_valid(e->value, n))
                        return pm_errorf(ret_error, -EINVAL, "%s.%s: not valid UTF-8", field, e->key);
                total += strlen(e->key) + n;
        }
        if (total > bytes_max)
                return pm_errorf(ret_error, -EINVAL, "%s: longer than %zu bytes in all", field, bytes_max);
        return 0;
}

static int check_resources(const Podmutator__V1__Resources *res, char **ret_error) {
        if (!res)
                return 0;
        if (res->memory_max != 0 && (res->memory_max < PM_MEMORY_MIN || res->memory_max > PM_MEMORY_MAX))
                return pm_errorf(ret_error, -EINVAL, "resources.memory_max: %" PRIu64 " bytes is out of range (0 for no limit, or 1 MiB to 1 PiB)",
                                 res->memory_max);
        if (res->cpu_millis > PM_CPU_MILLIS_MAX)
                return pm_errorf(ret_error, -EINVAL, "resources.cpu_millis: at most %u (%u CPUs)", PM_CPU_MILLIS_MAX,
                                 PM_CPU_MILLIS_MAX / 1000);
        if (res->tasks_max > PM_TASKS_MAX)
                return pm_errorf(ret_error, -EINVAL, "resources.tasks_max: at most %u", PM_TASKS_MAX);
        return 0;
}

static bool has_dot_component(const char *p) {
        for (const char *c = p; (c = strchr(c, '/')); c++) {
                size_t len = strcspn(c + 1, "/");
                if ((len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
                        return true;
        }
        return false;
}

/* A path of a mount or a namespace: a valid path that BindPaths= and its
 * kin can also carry ("field" names it in the message). */
static int check_mount_path(const char *field, const char *p, char **ret_error) {
        if (isempty(p))
                return pm_errorf(ret_error, -EINVAL, "%s: missing", field);
        if (p[0] != '/' || has_dot_component(p))
                return pm_errorf(ret_error, -EINVAL, "%s: must be an absolute path without \"..\" or \".\" components, got \"%.64s\"",
                                 field, p);
        int r = check_path(field, p, ret_error);
        if (r < 0)
                return r;
        if (!pm_mount_path_safe(p))
                return pm_errorf(ret_error, -EINVAL, "%s: ':', whitespace and quotes are not allowed in mount paths, got \"%.64s\"",
                                 field, p);
        return 0;
}

static int check_mounts(Podmutator__V1__Mount *const *mounts, size_t n, char **ret_error) {
        if (n > PM_MOUNTS_MAX)
                return pm_errorf(ret_error, -EINVAL, "mounts: more than %d", PM_MOUNTS_MAX);
        for (size_t i = 0; i < n; i++) {
                char field[48];
                snprintf(field, sizeof(field), "mounts[%zu].source", i);
                int r = check_mount_path(field, mounts[i]->source, ret_error);
                if (r < 0)
                        return r;
                snprintf(field, sizeof(field), "mounts[%zu].target", i);
                r = check_mount_path(field, mounts[i]->target, ret_error);
                if (r < 0)
                        return r;
                if (strspn(mounts[i]->target, "/") == strlen(mounts[i]->target))
                        return pm_errorf(ret_error, -EINVAL, "%s: cannot be the app's root \"/\"", field);
                for (size_t j = 0; j < i; j++)
                        if (streq(mounts[j]->target, mounts[i]->target))
                                return pm_errorf(ret_error, -EINVAL, "%s: \"%.64s\" is also the target of mounts[%zu]",
                                                 field, mounts[i]->target, j);
        }
        return 0;
}

static int check_network(const Podmutator__V1__Network *net, char **ret_error) {
        if (!net)
                return 0;
        if (net->mode > PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS)
                return pm_errorf(ret_error, -EINVAL, "network.mode: unknown mode %d", (int) net->mode);
        bool netns = net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS;
        if (!netns && !isempty(net->netns_path))
                return pm_errorf(ret_error, -EINVAL, "network.netns_path: only with mode \"netns\"");
        if (netns)
                return check_mount_path("network.netns_path", net->netns_path, ret_error);
        return 0;
}

static int check_capabilities(char *const *caps, size_t n, char **ret_error) {
        if (n > PM_CAPABILITIES_MAX)
                return pm_errorf(ret_error, -EINVAL, "capabilities: more than %d", PM_CAPABILITIES_MAX);
        for (size_t i = 0; i < n; i++)
                if (pm_capability_from_name(caps[i]) < 0)
                        return pm_errorf(ret_error, -EINVAL, "capabilities[%zu]: unknown capability \"%.64s\" (e.g. CAP_NET_ADMIN)",
                                         i, caps[i]);
        return 0;
}

static int check_rlimits(Podmutator__V1__Rlimit *const *limits, size_t n, char **ret_error) {
        if (n > PM_RLIMITS_MAX)
                return pm_errorf(ret_error, -EINVAL, "rlimits: more than %d", PM_RLIMITS_MAX);
        for (size_t i = 0; i < n; i++) {
                int res = pm_rlimit_from_name(limits[i]->type);
                if (res < 0)
                        return pm_errorf(ret_error, -EINVAL, "rlimits[%zu].type: unknown limit \"%.64s\" (e.g. RLIMIT_NOFILE or nofile)",
                                         i, limits[i]->type);
                if (limits[i]->soft > limits[i]->hard)
                        return pm_errorf(ret_error, -EINVAL, "rlimits[%zu]: soft limit %" PRIu64 " is above the hard limit %" PRIu64,
                                         i, limits[i]->soft, limits[i]->hard);
                for (size_t j = 0; j < i; j++)
                        if (pm_rlimit_from_name(limits[j]->type) == res)
                                return pm_errorf(ret_error, -EINVAL, "rlimits[%zu].type: %s is also set by rlimits[%zu]", i,
                                                 limits[i]->type, j);
        }
        return 0;
}

/* What the unit file of an app can hold beyond what it runs. */
static int check_isolation(const PmAppSpec *spec, char **ret_error) {
        if (spec->profile > PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED)
                return pm_errorf(ret_error, -EINVAL, "profile: unknown profile %d (unprivileged or privileged)",
                                 (int) spec->profile);
        int r = check_resources(spec->resources, ret_error);
        if (r < 0)
                return r;
        r = check_mounts(spec->mounts, spec->n_mounts, ret_error);
        if (r < 0)
                return r;
        r = check_network(spec->network, ret_error);
        if (r < 0)
                return r;
        r = check_capabilities(spec->capabilities, spec->n_capabilities, ret_error);
        if (r < 0)
                return r;
        r = check_rlimits(spec->rlimits, spec->n_rlimits, ret_error);
        if (r < 0)
                return r;
        /* systemd 252 gives a service a UTS namespace of its own only with
         * the pod's name in it (ProtectHostname=), never a name of its own. */
        if (!isempty(spec->hostname))
                return pm_errorf(ret_error, -EINVAL, "hostname: an app's own hostname is not supported (the pod's systemd 252 cannot set one); leave it empty to use the pod's");
        return 0;
}

static int check_logging(const Podmutator__V1__Logging *lg, char **ret_error) {
        if (!lg)
                return 0;
        if (lg->format > PODMUTATOR__V1__LOG_FORMAT__LOG_FORMAT_CRI)
                return pm_errorf(ret_error, -EINVAL, "logging.format: unknown format %d", (int) lg->format);
        if (lg->max_size != 0 && (lg->max_size < PM_LOG_SIZE_MIN || lg->max_size > PM_LOG_SIZE_MAX))
                return pm_errorf(ret_error, -EINVAL, "logging.max_size: %llu is not between %u and %llu bytes",
                                 (unsigned long long) lg->max_size, PM_LOG_SIZE_MIN, (unsigned long long) PM_LOG_SIZE_MAX);
        if (lg->max_files > PM_LOG_FILES_MAX)
                return pm_errorf(ret_error, -EINVAL, "logging.max_files: at most %u", PM_LOG_FILES_MAX);
        return 0;
}

int pm_spec_validate(const PmAppSpec *spec, char **ret_error) {
        int r;

        if (!pm_dns_label_valid(spec->name))
                return pm_errorf(ret_error, -EINVAL, "name: \"%.64s\" is not a lowercase DNS label (a-z, 0-9, '-', at most 63)",
                            spec->name);
        if (!isempty(spec->namespace_) && !pm_dns_label_valid(spec->namespace_))
                return pm_errorf(ret_error, -EINVAL, "namespace: \"%.64s\" is not a lowercase DNS label (a-z, 0-9, '-', at most 63)",
                            spec->namespace_);
        r = pm_argv_validate(spec->argv, spec->n_argv, ret_error);
        if (r < 0)
                return r;
        r = pm_env_validate(spec->env, spec->n_env, ret_error);
        if (r < 0)
                return r;
        if (!isempty(spec->working_dir) && (r = check_path("working_dir", spec->working_dir, ret_error)) < 0)
                return r;
        if (!isempty(spec->rootfs) && (r = check_path("rootfs", spec->rootfs, ret_error)) < 0)
                return r;
        if (!isempty(spec->user) && !pm_user_name_valid(spec->user))
                return pm_errorf(ret_error, -EINVAL, "user: \"%.64s\" is not a user name or numeric uid", spec->user);
        if (!isempty(spec->group) && !pm_user_name_valid(spec->group))
                return pm_errorf(ret_error, -EINVAL, "group: \"%.64s\" is not a group name or numeric gid", spec->group);
        r = check_map("labels", (LabelsEntry *const *) spec->labels, spec->n_labels, PM_LABEL_VALUE_MAX,
                      PM_LABELS_MAX * (PM_LABEL_KEY_MAX + PM_LABEL_VALUE_MAX), ret_error);
        if (r < 0)
                return r;
        r = check_map("annotations", (LabelsEntry *const *) spec->annotations, spec->n_annotations,
                      PM_ANNOTATIONS_BYTES_MAX, PM_ANNOTATIONS_BYTES_MAX, ret_error);
        if (r < 0)
                return r;
        if (spec->restart > PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS)
                return pm_errorf(ret_error, -EINVAL, "restart: unknown policy %d", (int) spec->restart);
        if (!isempty(spec->stop_signal) && pm_signal_from_name(spec->stop_signal) < 0)
                return pm_errorf(ret_error, -EINVAL, "stop_signal: unknown signal \"%.32s\"", spec->stop_signal);
        if (spec->stop_timeout_seconds > PM_STOP_TIMEOUT_MAX)
                return pm_errorf(ret_error, -EINVAL, "stop_timeout_seconds: at most %u", PM_STOP_TIMEOUT_MAX);
        r = check_isolation(spec, ret_error);
        if (r < 0)
                return r;
        return check_logging(spec->logging, ret_error);
}

const char *pm_signal_name(int sig) {
        if (sig <= 0 || sig >= NSIG)
                return NULL;
        return sigabbrev_np(sig);
}

int pm_signal_from_name(const char *name) {
        uint32_t n;
        if (pm_parse_u32(name, &n) >= 0)
                return n > 0 && n < (uint32_t) SIGRTMIN && pm_signal_name((int) n) ? (int) n : -EINVAL;
        if (startswith(name, "SIG"))
                name += 3;
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                const char *s = pm_signal_name(sig);
                if (s && streq(s, name))
                        return sig;
        }
        return -EINVAL;
}
