#include "processes.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

#define CODE(x) PODMUTATOR__V1__CODE__CODE_##x
#define UNITS_MAX 65
#define PROCESSES_MAX 4096

typedef Podmutator__V1__Process Process;

/* One ps: a GetUnitProcesses per unit, answered when all are in. */
typedef struct Ps {
        Call *call;
        unsigned pending;
        Process *procs;
        size_t n, cap;
} Ps;

/* The owner of a pod process, by name when the pod knows it. */
static char *user_of(uint32_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%u/status", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned uid = UINT32_MAX;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "Uid: %u", &uid) == 1)
                        break;
        if (uid == UINT32_MAX)
                return strdup("?");
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
                return strdup(found->pw_name);
        char *s;
        return asprintf(&s, "%u", uid) < 0 ? NULL : s;
}

static void ps_add(Ps *ps, const char *unit, uint32_t pid, const char *cmd) {
        if (ps->n >= PROCESSES_MAX)
                return;
        if (ps->n == ps->cap) {
                size_t cap = ps->cap ? ps->cap * 2 : 16;
                Process *n = realloc(ps->procs, cap * sizeof(*n));
                if (!n)
                        return;
                ps->procs = n;
                ps->cap = cap;
        }
        Process *p = &ps->procs[ps->n];
        podmutator__v1__process__init(p);
        p->pid = pid;
        p->user = user_of(pid);
        p->command = strdup(cmd);
        p->unit = strdup(unit);
        if (!p->user || !p->command || !p->unit) {
                free(p->user);
                free(p->command);
                free(p->unit);
                return;
        }
        ps->n++;
}

static void ps_finish(Ps *ps) {
        _cleanup_free_ Process **ptrs = calloc(ps->n ? ps->n : 1, sizeof(*ptrs));
        Podmutator__V1__ProcessesResponse pr = PODMUTATOR__V1__PROCESSES_RESPONSE__INIT;
        PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
        if (!ptrs)
                pm_call_fail(ps->call, CODE(RESOURCE_EXHAUSTED), "out of memory");
        else {
                for (size_t i = 0; i < ps->n; i++)
                        ptrs[i] = &ps->procs[i];
                pr.n_processes = ps->n;
                pr.processes = ptrs;
                resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_PROCESSES;
                resp.processes = &pr;
                pm_call_reply(ps->call, &resp);
        }
        for (size_t i = 0; i < ps->n; i++) {
                free(ps->procs[i].user);
                free(ps->procs[i].command);
                free(ps->procs[i].unit);
        }
        free(ps->procs);
        free(ps);
}

typedef struct PsUnit {
        Ps *ps;
        char unit[80];
} PsUnit;

static int on_unit_processes(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PsUnit *u = userdata;
        Ps *ps = u->ps;
        /* A unit that is gone, or not loaded, has no processes. */
        if (!sd_bus_message_get_error(reply) && sd_bus_message_enter_container(reply, 'a', "(sus)") >= 0) {
                const char *cgroup, *cmd;
                uint32_t pid;
                while (sd_bus_message_read(reply, "(sus)", &cgroup, &pid, &cmd) > 0)
                        ps_add(ps, u->unit, pid, cmd);
        }
        free(u);
        if (--ps->pending == 0)
                ps_finish(ps);
        return 0;
}

static int ask(Manager *m, Ps *ps, const char *unit) {
        PsUnit *u = malloc(sizeof(*u));
        if (!u)
                return -ENOMEM;
        *u = (PsUnit){ .ps = ps };
        snprintf(u->unit, sizeof(u->unit), "%s", unit);
        int r = sd_bus_call_method_async(m->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", "GetUnitProcesses", on_unit_processes,
                                         u, "s", unit);
        if (r < 0) {
                free(u);
                return r;
        }
        ps->pending++;
        return 0;
}

void pm_processes_list(Call *call, App *a) {
        Manager *m = call->m;
        Ps *ps = calloc(1, sizeof(*ps));
        if (!ps) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        ps->call = call;
        ps->pending = 1; /* held until every question is asked */
        const char *units[UNITS_MAX];
        units[0] = a->unit;
        size_t n = 1 + pm_exec_units_of(m, a->id, units + 1, UNITS_MAX - 1);
        for (size_t i = 0; i < n; i++)
                if (ask(m, ps, units[i]) < 0)
                        pm_log_warning("app %s: cannot ask systemd for the processes of %s", a->id, units[i]);
        if (--ps->pending == 0)
                ps_finish(ps);
}
