/* An app as the agent knows it: its spec and record, plus the live view of
 * its unit that systemd's signals keep current. Status, List and Info are
 * served from here without a D-Bus round trip. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "unit.h"

typedef Podmutator__V1__AppRecord PmAppRecord;
typedef Podmutator__V1__AppStatus PmAppStatus;
typedef Podmutator__V1__AppState PmAppState;

typedef enum UnitActiveState {
        UNIT_UNLOADED, /* not loaded in systemd (never started, or collected) */
        UNIT_INACTIVE,
        UNIT_ACTIVATING,
        UNIT_ACTIVE,
        UNIT_DEACTIVATING,
        UNIT_FAILED,
        UNIT_EXITED, /* "active (exited)": ran to its end, kept loaded */
} UnitActiveState;

/* How the main process of the last run ended. */
typedef struct AppExit {
        bool known;
        int code;        /* CLD_EXITED, CLD_KILLED, CLD_DUMPED */
        int status;      /* exit status or signal number */
        int64_t finished_at;
        char result[32]; /* systemd's Result: success, exit-code, signal, timeout, oom-kill, ... */
} AppExit;

typedef struct App App;
struct App {
        unsigned n_ref;
        char id[PM_APP_ID_LEN + 1];
        char unit[64];
        char *name_key; /* "<namespace>/<name>", key of the name index */
        PmAppRecord *record;  /* owns the spec */
        UnitActiveState active;
        uint32_t main_pid;
        uint32_t n_restarts;
        uint32_t restarts_at_start; /* n_restarts when the current run started */
        int64_t exec_started_at; /* of the current or last run, from systemd */
        AppExit exit;
        bool removed;    /* out of the store; in-flight calls may still hold it */
        unsigned jobs_in_flight; /* Start/Stop calls of ours systemd has not finished */
        bool paused;             /* frozen by systemd, or stopped by SIGSTOP */
        bool paused_by_signal;   /* SIGSTOP: the pod's systemd has no freezer */
        uint64_t memory_peak_seen; /* by Stats, where the cgroup keeps no peak */
        unsigned sync_generation; /* the last sync that found its unit loaded */
        App *prev, *next; /* creation order */
};

App *pm_app_new(PmAppRecord *record);
App *pm_app_ref(App *a);
App *pm_app_unref(App *a);
static inline void pm_app_unrefp(App **a) {
        if (*a)
                pm_app_unref(*a);
}

PmAppState pm_app_state(const App *a);
/* Fills a status message that borrows strings and maps from a; valid
 * while a is unchanged. */
void pm_app_fill_status(const App *a, PmAppStatus *ret);

/* How a run ended, as reported: exit code (128+N for signal N), the
 * signal's name or NULL, and the reason (Completed, Error, Signaled, ...). */
void pm_exit_summary(const AppExit *e, int32_t *ret_code, const char **ret_signal, const char **ret_reason);

/* The exit record kept for each app: four "key=value" lines. */
int pm_app_exit_parse(const char *text, AppExit *ret);
int pm_app_exit_format(const AppExit *e, char **ret_text);
