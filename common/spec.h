/* Validation of app specs against the written limits (docs/app-spec.md).
 * The agent checks every spec it is given with it; pm-stage1 and tests
 * may use it too. */
#pragma once

#include <stdbool.h>

#include "podmutator.pb-c.h"

typedef Podmutator__V1__AppSpec PmAppSpec;

#define PM_DEFAULT_NAMESPACE "default"
#define PM_ARGV_MAX 1024                    /* entries */
#define PM_ARGV_BYTES_MAX (128u * 1024u)    /* all of argv together */
#define PM_ENV_MAX 1024                     /* entries */
#define PM_ENV_KEY_MAX 255
#define PM_ENV_BYTES_MAX (128u * 1024u)     /* all of env together */
#define PM_LABELS_MAX 256                   /* entries, labels and annotations each */
#define PM_LABEL_KEY_MAX 253
#define PM_LABEL_VALUE_MAX 1024
#define PM_ANNOTATIONS_BYTES_MAX (256u * 1024u)
#define PM_PATH_MAX 4095
#define PM_USER_MAX 32
#define PM_STOP_TIMEOUT_MAX 86400u          /* seconds */
#define PM_LOG_SIZE_MIN 4096u              /* logging.max_size: the smallest rotation size */
#define PM_LOG_SIZE_MAX (1ull << 40)        /* and the largest */
#define PM_LOG_FILES_MAX 100u               /* logging.max_files */
#define PM_STOP_TIMEOUT_DEFAULT 10u
#define PM_MEMORY_MIN (1024u * 1024u)       /* bytes; a smaller MemoryMax= only kills */
#define PM_MEMORY_MAX (UINT64_C(1) << 50)   /* bytes (1 PiB) */
#define PM_CPU_MILLIS_MAX 1000000u          /* 1000 CPUs */
#define PM_TASKS_MAX 4194304u               /* the kernel's pid_max limit */
#define PM_MOUNTS_MAX 64
#define PM_CAPABILITIES_MAX 64
#define PM_RLIMITS_MAX 16

/* The bounding set of the unprivileged profile, as CapabilityBoundingSet=
 * takes it: what a container runtime grants by default, less CAP_MKNOD and
 * CAP_SYS_CHROOT (the app's root is a chroot: agent/view.h). */
#define PM_UNPRIVILEGED_CAPS                                                                                   \
        "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID CAP_SETUID CAP_SETPCAP "         \
        "CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_AUDIT_WRITE CAP_SETFCAP"

/* Checks every field. On failure returns -EINVAL and a message naming the
 * field and what is wrong with it. */
int pm_spec_validate(const PmAppSpec *spec, char **ret_error);

/* The argv and env rules of a spec, for commands run by Exec too. */
int pm_argv_validate(char *const *argv, size_t n_argv, char **ret_error);
int pm_env_validate(Podmutator__V1__AppSpec__EnvEntry *const *env, size_t n_env, char **ret_error);

/* The spec's namespace, "default" when empty. */
const char *pm_spec_namespace(const PmAppSpec *spec);

/* A signal from "SIGTERM", "TERM" or "15"; -EINVAL if none. */
int pm_signal_from_name(const char *name);
/* "TERM" for 15; NULL if unknown. */
const char *pm_signal_name(int sig);

/* A path that a unit file setting split on ':' and whitespace (BindPaths=)
 * can carry verbatim: absolute, no ':', whitespace, quotes, backslash or
 * control characters. Resolved paths are checked with it again. */
bool pm_mount_path_safe(const char *p);

/* The index of a capability name ("CAP_CHOWN", any case, with or without
 * "CAP_"), or -EINVAL. pm_capability_name(i) is "CAP_CHOWN"-style. */
int pm_capability_from_name(const char *name);
const char *pm_capability_name(int cap);

/* The RLIMIT_* number of "RLIMIT_NOFILE" or "nofile" (any case), or
 * -EINVAL; pm_rlimit_directive(n) is its unit setting ("LimitNOFILE"). */
int pm_rlimit_from_name(const char *name);
const char *pm_rlimit_directive(int resource);

/* A user or group as systemd takes it: a name or a numeric id. */
bool pm_user_name_valid(const char *s);
/* A label or annotation key: [A-Za-z0-9._/-], 1..253 bytes. */
bool pm_label_key_valid(const char *s);
