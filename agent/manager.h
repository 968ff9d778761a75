/* The agent's one state object, passed as userdata everywhere: the loop,
 * the bus to the pod's systemd, the app store, the control server. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <uv.h>

#include "hashmap.h"
#include "store.h"

typedef struct Server Server;
typedef struct ExecSession ExecSession;
typedef struct EventRing EventRing;
typedef struct Slots Slots;
typedef struct LogReader LogReader;

/* What systemd's signals say about a unit; has_* tells which came. */
typedef struct UnitProps {
        UnitActiveState active;
        uint32_t main_pid;
        uint64_t start_usec, exit_usec;
        int32_t code, status;
        uint32_t n_restarts;
        char result[32];
        char freezer[16];
        bool has_freezer;
        bool has_active, has_main_pid, has_start, has_exit, has_code, has_status, has_restarts, has_result;
} UnitProps;

typedef struct Manager {
        uv_loop_t *loop;

        /* The bus to the pod's systemd, driven by the loop. */
        sd_bus *bus;
        uv_poll_t bus_poll;
        uv_timer_t bus_timer;
        uv_prepare_t bus_prepare;
        int bus_poll_events; /* what the poll handle waits for now */

        PmHashmap jobs;  /* job object path -> JobWait, for JobRemoved */
        PmHashmap execs; /* unit object path -> ExecSession, for its signals */
        bool reloading;  /* systemd is between Reloading(true) and Reloading(false) */
        bool serving;    /* start-up is over: changes from now on are events */
        EventRing *events;
        ExecSession *sessions; /* every exec in flight, for ps */
        unsigned sync_generation;

        Store store;
        Server *server;

        char *pod_name;
        char *socket_path;
        char *control_dir; /* holds the socket; hidden from apps */
        char *state_dir;   /* apps/ and exit/ below it */
        const char *view_dir;   /* the app view (view.h), hidden from apps */
        const char *view_root;  /* its root; NULL when there is no view */
        char *unit_dir;    /* where the app template and the apps' drop-ins go */
        Slots *slots;      /* app ids whose drop-in directory is ready */
        LogReader *log_readers; /* Logs calls in flight */
        unsigned n_log_readers;
        char systemd_version[64];
        const char *cgroup_mode;  /* unified, hybrid, legacy */
        bool limits_enforced;
        int64_t started_at;

        uv_timer_t watchdog;
        uv_signal_t sig_term;
        uv_signal_t sig_int;
} Manager;

/* A finished systemd job, or a failed request to start one. */
typedef void (*JobDone)(Manager *m, int r, const char *result, const char *error, void *userdata);

/* bus.c: connects to the pod's systemd and drives the bus from the loop. */
int pm_bus_open(Manager *m);
void pm_bus_close(Manager *m);

/* systemd.c: unit operations, all asynchronous. */
int pm_systemd_subscribe(Manager *m);
/* method is StartUnit, RestartUnit or StopUnit; done runs when the job is
 * removed. Several calls may wait for the same job. */
int pm_systemd_unit_job(Manager *m, const char *method, const char *unit, JobDone done, void *userdata);
int pm_systemd_kill_unit(Manager *m, const char *unit, int sig);
/* FreezeUnit or ThawUnit; done gets r < 0 and systemd's error if it failed. */
int pm_systemd_freeze(Manager *m, const char *unit, bool freeze, JobDone done, void *userdata);
/* A StartTransientUnit call for `unit`, its property array opened: the
 * caller appends (sv) properties, then hands it to pm_systemd_start_transient. */
int pm_systemd_new_transient(Manager *m, const char *unit, sd_bus_message **ret);
int pm_systemd_start_transient(Manager *m, sd_bus_message *msg, JobDone done, void *userdata);
/* LoadUnit without waiting for the answer. */
int pm_systemd_load_unit_nowait(Manager *m, const char *unit);
/* StopUnit without waiting for the job. */
int pm_systemd_stop_unit_nowait(Manager *m, const char *unit);
/* Lets a failed unit go, so that systemd collects it. */
int pm_systemd_reset_failed(Manager *m, const char *unit);
/* Loads the live state of every loaded app unit (and marks the others
 * unloaded); runs done when all is in. At start-up it also stops the exec
 * units a previous agent left: their clients went away with it. */
int pm_systemd_sync(Manager *m, bool startup, void (*done)(Manager *m, int r));
