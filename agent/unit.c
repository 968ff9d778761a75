#include "unit.h"

#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define UNIT_PATH_PREFIX "/org/freedesktop/systemd1/unit/pm_2dapp_40"
#define UNIT_PATH_SUFFIX "_2eservice"

char *pm_unit_quote(const char *s, bool in_exec) {
        /* Worst case every byte becomes \xNN. */
        size_t n = strlen(s);
        char *out = malloc(n * 4 + 3);
        if (!out)
                return NULL;
        char *o = out;
        *o++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                switch (*p) {
                case '"': o = stpcpy(o, "\\\""); break;
                case '\\': o = stpcpy(o, "\\\\"); break;
                case '\n': o = stpcpy(o, "\\n"); break;
                case '\t': o = stpcpy(o, "\\t"); break;
                case '%': o = stpcpy(o, "%%"); break;
                case '$':
                        o = stpcpy(o, in_exec ? "$$" : "$");
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                o += sprintf(o, "\\x%02x", *p);
                        else
                                *o++ = (char) *p;
                }
        }
        *o++ = '"';
        *o = '\0';
        return out;
}

/* Paths and names were validated; only '%' needs doubling. */
static void put_verbatim(FILE *f, const char *key, const char *value) {
        fprintf(f, "%s=", key);
        for (; *value; value++)
                fputs(*value == '%' ? "%%" : (char[]){ *value, 0 }, f);
        fputc('\n', f);
}

/* key=a:b, for settings that split on ':' (both checked safe for it). */
static void put_verbatim_pair(FILE *f, const char *key, const char *a, const char *b) {
        _cleanup_free_ char *v = NULL;
        if (asprintf(&v, "%s:%s", a, b) < 0) {
                /* The memstream fails the same way; render reports it. */
                fputs("\n", f);
                return;
        }
        put_verbatim(f, key, v);
}

static int put_quoted_words(FILE *f, const char *key, char *const *words, size_t n, bool in_exec) {
        long start = ftell(f);
        fprintf(f, "%s=", key);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *q = pm_unit_quote(words[i], in_exec);
                if (!q)
                        return -ENOMEM;
                fprintf(f, "%s%s", i ? " " : "", q);
        }
        fputc('\n', f);
        return ftell(f) - start > (long) PM_UNIT_LINE_MAX ? -E2BIG : 0;
}

static int put_env(FILE *f, const PmAppSpec *spec) {
        for (size_t i = 0; i < spec->n_env; i++) {
                _cleanup_free_ char *kv = NULL;
                if (asprintf(&kv, "%s=%s", spec->env[i]->key, spec->env[i]->value) < 0)
                        return -ENOMEM;
                int r = put_quoted_words(f, "Environment", &kv, 1, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *restart_value(Podmutator__V1__RestartPolicy p) {
        switch (p) {
        case PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ON_FAILURE: return "on-failure";
        case PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS: return "always";
        default: return "no";
        }
}

static void put_unit_section(FILE *f, const PmAppSpec *spec) {
        /* No OnFailure=, no dependencies on anything that could take the pod
         * down; Conflicts= only so a pod power-off stops apps gracefully. */
        fprintf(f,
                "[Unit]\n"
                "Description=PodMutator app %s/%s\n"
                "DefaultDependencies=no\n"
                "Conflicts=shutdown.target\n"
                "Before=shutdown.target\n"
                "StartLimitIntervalSec=0\n",
                pm_spec_namespace(spec), spec->name);
}

static bool runs_as_root(const PmAppSpec *spec) {
        return isempty(spec->user) || streq(spec->user, "root") || streq(spec->user, "0");
}

/* The spec's capabilities by their canonical names (validated before). */
static void put_capabilities(FILE *f, const PmAppSpec *spec, const char *key) {
        fprintf(f, "%s=", key);
        for (size_t i = 0; i < spec->n_capabilities; i++)
                fprintf(f, "%sCAP_%s", i ? " " : "",
                        pm_capability_name(pm_capability_from_name(spec->capabilities[i])));
        fputc('\n', f);
}

static bool is_unprivileged(const PmAppSpec *spec) {
        return spec->profile == PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED;
}

/* Whether the app is chrooted into the app view: an unprivileged app in
 * the pod's own root whose bounding set can neither chroot nor mount its
 * way out, and that asks for no mounts of its own (those need a namespace
 * anyway, and systemd's needs the pod's root to build it in). Any other
 * app gets a mount namespace of its own from systemd. */
static bool in_view(const PmAppSpec *spec, const PmUnitPaths *paths) {
        if (!paths->view_root || !isempty(spec->rootfs) || !is_unprivileged(spec) || spec->n_mounts > 0 ||
            spec->read_only_rootfs)
                return false;
        for (size_t i = 0; i < spec->n_capabilities; i++) {
                int cap = pm_capability_from_name(spec->capabilities[i]);
                if (cap == CAP_SYS_CHROOT || cap == CAP_SYS_ADMIN)
                        return false;
        }
        return true;
}

static void put_profile(FILE *f, const PmAppSpec *spec, const PmUnitPaths *paths) {
        bool unprivileged = is_unprivileged(spec);
        if (spec->n_capabilities > 0) {
                put_capabilities(f, spec, "CapabilityBoundingSet");
                /* A user other than root holds nothing of its bounding set
                 * after exec unless it is ambient too. */
                if (!runs_as_root(spec))
                        put_capabilities(f, spec, "AmbientCapabilities");
        } else if (unprivileged)
                fprintf(f, "CapabilityBoundingSet=" PM_UNPRIVILEGED_CAPS "\n");
        if (unprivileged || spec->no_new_privileges)
                fprintf(f, "NoNewPrivileges=yes\n");
        if (!unprivileged)
                return;
        /* The view has the pseudo devices only, the tunables and the cgroup
         * tree read-only; as PrivateDevices= would, the set loses what
         * makes or reads raw devices. */
        if (in_view(spec, paths)) {
                if (spec->n_capabilities > 0)
                        fprintf(f, "CapabilityBoundingSet=~CAP_MKNOD CAP_SYS_RAWIO\n");
                return;
        }
        /* PrivateDevices= leaves the pseudo devices only (and drops
         * CAP_MKNOD and CAP_SYS_RAWIO whatever the set says); the kernel's
         * tunables and the cgroup tree are read-only. The app's namespace
         * gets a /proc of its own, without the read-only /proc/sys of the
         * pod, so ProtectKernelTunables= is needed even in the pod's root.
         * ProtectKernelModules= is not: without CAP_SYS_MODULE nothing is
         * loaded, and it would cost mounts at every start. */
        fprintf(f,
                "PrivateDevices=yes\n"
                "ProtectKernelTunables=yes\n"
                "ProtectControlGroups=yes\n");
}

static void put_resources(FILE *f, const Podmutator__V1__Resources *res) {
        if (!res)
                return;
        if (res->memory_max > 0)
                fprintf(f, "MemoryMax=%" PRIu64 "\n", res->memory_max);
        /* CPUQuota= is a percentage of one CPU: 1500 millis is 150%. */
        if (res->cpu_millis > 0)
                fprintf(f, "CPUQuota=%u.%u%%\n", res->cpu_millis / 10, res->cpu_millis % 10);
        if (res->tasks_max > 0)
                fprintf(f, "TasksMax=%u\n", res->tasks_max);
}

static void put_mounts(FILE *f, const PmAppSpec *spec, const PmUnitPaths *paths) {
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const Podmutator__V1__Mount *mt = spec->mounts[i];
                const char *src = paths->mount_sources ? paths->mount_sources[i] : mt->source;
                const char *dst = paths->mount_targets ? paths->mount_targets[i] : mt->target;
                put_verbatim_pair(f, mt->read_only ? "BindReadOnlyPaths" : "BindPaths", src, dst);
        }
}

static void put_network(FILE *f, const Podmutator__V1__Network *net) {
        /* "pod" and "host" are the same here: the pod's namespace is the
         * widest an app can have; the node's is out of reach. */
        if (!net)
                return;
        if (net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE)
                fprintf(f, "PrivateNetwork=yes\n");
        else if (net->mode == PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS)
                put_verbatim(f, "NetworkNamespacePath", net->netns_path);
}

static void put_rlimit_value(FILE *f, uint64_t v) {
        if (v == UINT64_MAX)
                fputs("infinity", f);
        else
                fprintf(f, "%" PRIu64, v);
}

/* Plain numbers are taken in the limit's own unit (seconds for CPU,
 * microseconds for RTTIME, bytes for sizes). */
static void put_rlimits(FILE *f, const PmAppSpec *spec) {
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                const Podmutator__V1__Rlimit *l = spec->rlimits[i];
                fprintf(f, "%s=", pm_rlimit_directive(pm_rlimit_from_name(l->type)));
                put_rlimit_value(f, l->soft);
                fputc(':', f);
                put_rlimit_value(f, l->hard);
                fputc('\n', f);
        }
}

static void put_isolation(FILE *f, const PmAppSpec *spec, const PmUnitPaths *paths) {
        put_profile(f, spec, paths);
        put_resources(f, spec->resources);
        put_mounts(f, spec, paths);
        put_network(f, spec->network);
        put_rlimits(f, spec);
        /* Everything but /dev, /proc and /sys read-only, inside the app's
         * root; the mounts above keep their own mode. ReadOnlyPaths=/ would
         * not do: systemd 252 drops it under RootDirectory= (measured). */
        if (spec->read_only_rootfs)
                fprintf(f, "ProtectSystem=strict\n");
}

/* An app in the pod's root, outside the view: the agent's directories
 * hidden; for an unprivileged one, as in the view, systemd's private socket
 * too (any uid 0 may use it) and the unit directories read-only. */
static void put_hidden_paths(FILE *f, const PmAppSpec *spec, const PmUnitPaths *paths) {
        fprintf(f, "InaccessiblePaths=-%s -%s", paths->control_dir, paths->state_dir);
        if (is_unprivileged(spec))
                fprintf(f, " -/run/systemd/private\nReadOnlyPaths=-/run/systemd -/etc/systemd");
        fputc('\n', f);
}

static int put_service_section(FILE *f, const PmAppSpec *spec, const char *id, const PmUnitPaths *paths) {
        int sig = isempty(spec->stop_signal) ? 15 : pm_signal_from_name(spec->stop_signal);
        fprintf(f, "\n[Service]\nType=exec\n");
        int r = put_quoted_words(f, "ExecStart", spec->argv, spec->n_argv, true);
        if (r < 0)
                return r;
        /* An app that ran to its end stays loaded, "active (exited)" or
         * "failed", with how it ended, until the agent stops or removes it:
         * so its exit status outlives an agent that was down when it came.
         * Restart=always means a clean exit restarts, so nothing to keep. */
        if (spec->restart != PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS)
                fprintf(f, "RemainAfterExit=yes\n");
        r = put_env(f, spec);
        if (r < 0)
                return r;
        if (!isempty(spec->working_dir))
                put_verbatim(f, "WorkingDirectory", spec->working_dir);
        /* An app in a rootfs never sees the agent's files (a rootfs holding
         * them is refused); one in the view has them covered, and no mount
         * namespace of its own (MountAPIVFS= would make one: the view has
         * /proc, /sys and /dev already); any other has them hidden. */
        if (!isempty(spec->rootfs))
                put_verbatim(f, "RootDirectory", spec->rootfs);
        else if (in_view(spec, paths)) {
                put_verbatim(f, "RootDirectory", paths->view_root);
                fprintf(f, "MountAPIVFS=no\n");
        } else
                put_hidden_paths(f, spec, paths);
        if (!isempty(spec->user))
                put_verbatim(f, "User", spec->user);
        if (!isempty(spec->group))
                put_verbatim(f, "Group", spec->group);
        fprintf(f,
                "Restart=%s\n"
                "RestartSec=100ms\n"
                "KillSignal=SIG%s\n"
                /* The agent escalates to SIGKILL itself, with the grace
                 * period each Stop call asks for. */
                "TimeoutStopSec=infinity\n"
                "StandardInput=null\n",
                restart_value(spec->restart), pm_signal_name(sig));
        put_isolation(f, spec, paths);
        /* systemd connects each stream to a socket of the pod's log daemon
         * before it enters the app's root (logd.c). */
        fprintf(f, "StandardOutput=file:%s/logs/%s.out\n", paths->state_dir, id);
        fprintf(f, "StandardError=file:%s/logs/%s.err\n", paths->state_dir, id);
        return 0;
}

int pm_unit_render(const PmAppSpec *spec, const char *id, const PmUnitPaths *paths, char **ret_text) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        put_unit_section(f, spec);
        int r = put_service_section(f, spec, id, paths);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return r;
        }
        *ret_text = text;
        return 0;
}

void pm_unit_name(const char *id, char *buf, size_t size) {
        snprintf(buf, size, PM_UNIT_PREFIX "%s" PM_UNIT_SUFFIX, id);
}

static bool take_id(const char *s, size_t len, char ret_id[PM_APP_ID_LEN + 1]) {
        if (len != PM_APP_ID_LEN)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        memcpy(ret_id, s, len);
        ret_id[len] = '\0';
        return true;
}

static bool id_between(const char *s, const char *prefix, const char *suffix, char ret_id[PM_APP_ID_LEN + 1]) {
        size_t n = strlen(s), p = strlen(prefix), q = strlen(suffix);
        if (n != p + PM_APP_ID_LEN + q || !startswith(s, prefix) || !streq(s + n - q, suffix))
                return false;
        return take_id(s + p, PM_APP_ID_LEN, ret_id);
}

bool pm_unit_id_from_name(const char *name, char ret_id[PM_APP_ID_LEN + 1]) {
        return id_between(name, PM_UNIT_PREFIX, PM_UNIT_SUFFIX, ret_id);
}

bool pm_unit_id_from_path(const char *path, char ret_id[PM_APP_ID_LEN + 1]) {
        return id_between(path, UNIT_PATH_PREFIX, UNIT_PATH_SUFFIX, ret_id);
}
