#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pbjson.h"
#include "util.h"

const char *pm_state_name(Podmutator__V1__AppState state) {
        static char buf[32];
        const char *name = pm_enum_to_name(&podmutator__v1__app_state__descriptor, (int) state, buf, sizeof(buf));
        return name ? name : "unknown";
}

int pm_state_from_name(const char *name, Podmutator__V1__AppState *ret) {
        int v;
        int r = pm_enum_from_name(&podmutator__v1__app_state__descriptor, name, &v);
        if (r < 0)
                return r;
        *ret = (Podmutator__V1__AppState) v;
        return 0;
}

/* "3s ago", "5m ago": how long since ns (nanoseconds since the epoch). */
static void format_age(int64_t ns, char *buf, size_t size) {
        if (ns <= 0) {
                snprintf(buf, size, "-");
                return;
        }
        int64_t s = (pm_now_realtime_ns() - ns) / NSEC_PER_SEC;
        if (s < 0)
                s = 0;
        if (s < 120)
                snprintf(buf, size, "%llds ago", (long long) s);
        else if (s < 7200)
                snprintf(buf, size, "%lldm ago", (long long) s / 60);
        else if (s < 172800)
                snprintf(buf, size, "%lldh ago", (long long) s / 3600);
        else
                snprintf(buf, size, "%lldd ago", (long long) s / 86400);
}

static void format_time(int64_t ns, char *buf, size_t size) {
        if (ns <= 0) {
                snprintf(buf, size, "-");
                return;
        }
        time_t t = (time_t) (ns / NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03lldZ", (long long) (ns % NSEC_PER_SEC) / 1000000);
}

static void format_exit(const PmAppStatus *a, char *buf, size_t size) {
        if (a->state != PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED || isempty(a->reason))
                snprintf(buf, size, "-");
        else if (!isempty(a->signal))
                snprintf(buf, size, "%d (SIG%s)", a->exit_code, a->signal);
        else
                snprintf(buf, size, "%d", a->exit_code);
}

void pm_print_app_table(PmAppStatus *const *apps, size_t n) {
        printf("%-12s  %-24s  %-12s  %-8s  %-14s  %-8s  %s\n", "ID", "NAME", "NAMESPACE", "STATE", "EXIT", "PID",
               "CREATED");
        for (size_t i = 0; i < n; i++) {
                const PmAppStatus *a = apps[i];
                char exit_buf[32], age[32], pid[16];
                format_exit(a, exit_buf, sizeof(exit_buf));
                format_age(a->created_at, age, sizeof(age));
                snprintf(pid, sizeof(pid), a->pid ? "%u" : "-", a->pid);
                printf("%-12.12s  %-24s  %-12s  %-8s  %-14s  %-8s  %s\n", a->id, a->name, a->namespace_,
                       pm_state_name(a->state), exit_buf, pid, age);
        }
}

static void print_map(const char *title, Podmutator__V1__AppStatus__LabelsEntry *const *entries, size_t n) {
        printf("%-13s", title);
        if (n == 0)
                printf("-\n");
        for (size_t i = 0; i < n; i++)
                printf("%s%s=%s\n", i ? "             " : "", entries[i]->key, entries[i]->value);
}

void pm_print_app_details(const PmAppStatus *a) {
        char created[48], started[48], finished[48], exit_buf[32];
        format_time(a->created_at, created, sizeof(created));
        format_time(a->started_at, started, sizeof(started));
        format_time(a->finished_at, finished, sizeof(finished));
        format_exit(a, exit_buf, sizeof(exit_buf));
        printf("ID:         %s\n"
               "Name:       %s\n"
               "Namespace:  %s\n"
               "State:      %s\n"
               "Exit code:  %s\n"
               "Reason:     %s\n"
               "PID:        %u\n"
               "Restarts:   %u\n"
               "Created:    %s\n"
               "Started:    %s\n"
               "Finished:   %s\n"
               "Unit:       %s\n",
               a->id, a->name, a->namespace_, pm_state_name(a->state), exit_buf,
               isempty(a->reason) ? "-" : a->reason, a->pid, a->restart_count, created, started, finished,
               a->unit);
        print_map("Labels:", a->labels, a->n_labels);
        print_map("Annotations:", (Podmutator__V1__AppStatus__LabelsEntry *const *) a->annotations,
                  a->n_annotations);
}

static const char *enum_name(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t size) {
        return pm_enum_to_name(desc, value, buf, size) ?: "unknown";
}

static void print_resources(const Podmutator__V1__Resources *res) {
        uint64_t mem = res ? res->memory_max : 0;
        uint32_t cpu = res ? res->cpu_millis : 0, tasks = res ? res->tasks_max : 0;
        if (mem)
                printf("Memory max:   %" PRIu64 " bytes\n", mem);
        else
                printf("Memory max:   -\n");
        if (cpu)
                printf("CPUs:         %u.%03u\n", cpu / 1000, cpu % 1000);
        else
                printf("CPUs:         -\n");
        if (tasks)
                printf("Tasks max:    %u\n", tasks);
        else
                printf("Tasks max:    -\n");
}

static void print_isolation(const Podmutator__V1__AppSpec *spec) {
        char buf[64];
        printf("Profile:      %s\n", enum_name(&podmutator__v1__profile__descriptor, spec->profile, buf, sizeof(buf)));
        printf("Capabilities: ");
        for (size_t i = 0; i < spec->n_capabilities; i++)
                printf("%s%s", i ? " " : "", spec->capabilities[i]);
        printf("%s\n", spec->n_capabilities ? "" : "(the profile's)");
        printf("No new privs: %s\n", spec->no_new_privileges ? "yes" : "(the profile's)");
        printf("Read-only /:  %s\n", spec->read_only_rootfs ? "yes" : "no");
        print_resources(spec->resources);
        printf("Mounts:       %s", spec->n_mounts ? "" : "-\n");
        for (size_t i = 0; i < spec->n_mounts; i++)
                printf("%s%s -> %s (%s)\n", i ? "              " : "", spec->mounts[i]->source, spec->mounts[i]->target,
                       spec->mounts[i]->read_only ? "ro" : "rw");
        const Podmutator__V1__Network *net = spec->network;
        printf("Network:      %s%s%s\n",
               enum_name(&podmutator__v1__network_mode__descriptor, net ? (int) net->mode : 0, buf, sizeof(buf)),
               net && !isempty(net->netns_path) ? " " : "", net ? net->netns_path : "");
        printf("Rlimits:      %s", spec->n_rlimits ? "" : "-\n");
        for (size_t i = 0; i < spec->n_rlimits; i++)
                printf("%s%s soft %" PRIu64 " hard %" PRIu64 "\n", i ? "              " : "", spec->rlimits[i]->type,
                       spec->rlimits[i]->soft, spec->rlimits[i]->hard);
}

void pm_print_app_spec(const Podmutator__V1__AppSpec *spec) {
        char buf[64];
        printf("Command:     ");
        for (size_t i = 0; i < spec->n_argv; i++)
                printf(" %s", spec->argv[i]);
        printf("\nRoot:         %s\n"
               "Workdir:      %s\n"
               "User:         %s\n"
               "Group:        %s\n"
               "Restart:      %s\n",
               isempty(spec->rootfs) ? "(the pod's)" : spec->rootfs, isempty(spec->working_dir) ? "-" : spec->working_dir,
               isempty(spec->user) ? "root" : spec->user, isempty(spec->group) ? "-" : spec->group,
               enum_name(&podmutator__v1__restart_policy__descriptor, spec->restart, buf, sizeof(buf)));
        print_map("Env:", (Podmutator__V1__AppStatus__LabelsEntry *const *) spec->env, spec->n_env);
        print_isolation(spec);
}

void pm_print_info(const Podmutator__V1__InfoResponse *info) {
        printf("Pod:              %s\n"
               "Agent version:    %s\n"
               "Protocol version: %u\n"
               "systemd version:  %s\n"
               "Agent uptime:     %llds\n"
               "cgroup mode:      %s\n"
               "Limits enforced:  %s\n"
               "Apps:             %u\n",
               info->pod_name, info->agent_version, info->protocol_version, info->systemd_version,
               (long long) (info->uptime_ns / NSEC_PER_SEC), info->cgroup_mode,
               info->limits_enforced ? "yes" : "no (no memory, cpu and pids controllers in this pod)", info->apps);
        for (size_t i = 0; i < info->n_apps_by_state; i++)
                printf("  %-16s%u\n", info->apps_by_state[i]->key, info->apps_by_state[i]->value);
}

static int print_json_to(FILE *f, json_object *j) {
        if (!j)
                return -ENOMEM;
        fprintf(f, "%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return 0;
}

static int print_json(json_object *j) { return print_json_to(stdout, j); }

int pm_print_json_message(const ProtobufCMessage *msg) { return print_json(pm_message_to_json(msg)); }

int pm_print_json_message_to(FILE *f, const ProtobufCMessage *msg) { return print_json_to(f, pm_message_to_json(msg)); }

int pm_print_json_array(ProtobufCMessage *const *msgs, size_t n) {
        json_object *arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *j = pm_message_to_json(msgs[i]);
                if (!j || json_object_array_add(arr, j) < 0) {
                        json_object_put(j);
                        json_object_put(arr);
                        return -ENOMEM;
                }
        }
        return print_json(arr);
}
