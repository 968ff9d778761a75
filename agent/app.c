#include "app.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"

App *pm_app_new(PmAppRecord *record) {
        App *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->n_ref = 1;
        snprintf(a->id, sizeof(a->id), "%s", record->id);
        pm_unit_name(a->id, a->unit, sizeof(a->unit));
        if (asprintf(&a->name_key, "%s/%s", pm_spec_namespace(record->spec), record->spec->name) < 0) {
                free(a);
                return NULL;
        }
        a->record = record;
        a->active = UNIT_UNLOADED;
        return a;
}

App *pm_app_ref(App *a) {
        a->n_ref++;
        return a;
}

App *pm_app_unref(App *a) {
        if (!a || --a->n_ref > 0)
                return NULL;
        podmutator__v1__app_record__free_unpacked(a->record, NULL);
        free(a->name_key);
        free(a);
        return NULL;
}

PmAppState pm_app_state(const App *a) {
        /* The main process's exit comes in a signal of its own (the Service
         * properties) just before ActiveState follows: an exit of the run
         * that was started last means the app runs no more. */
        bool run_ended = a->exit.known && a->exec_started_at > 0 && a->exit.finished_at >= a->exec_started_at;
        switch (a->active) {
        case UNIT_ACTIVATING:
                return PODMUTATOR__V1__APP_STATE__APP_STATE_STARTING;
        case UNIT_ACTIVE:
                if (run_ended)
                        break;
                return a->paused ? PODMUTATOR__V1__APP_STATE__APP_STATE_PAUSED
                                 : PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING;
        case UNIT_DEACTIVATING:
                return PODMUTATOR__V1__APP_STATE__APP_STATE_STOPPING;
        case UNIT_UNLOADED:
        case UNIT_INACTIVE:
        case UNIT_FAILED:
        case UNIT_EXITED:
                break;
        }
        if (a->exit.known || a->record->started_at > 0)
                return PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED;
        return PODMUTATOR__V1__APP_STATE__APP_STATE_CREATED;
}

static const char *exit_reason(const AppExit *e) {
        if (streq(e->result, "oom-kill"))
                return "OOMKilled";
        if (streq(e->result, "timeout"))
                return "TimedOut";
        if (e->code == CLD_KILLED || e->code == CLD_DUMPED)
                return "Signaled";
        return e->status == 0 ? "Completed" : "Error";
}

void pm_exit_summary(const AppExit *e, int32_t *ret_code, const char **ret_signal, const char **ret_reason) {
        bool signaled = e->code == CLD_KILLED || e->code == CLD_DUMPED;
        *ret_code = signaled ? 128 + e->status : e->status;
        *ret_signal = signaled ? pm_signal_name(e->status) : NULL;
        *ret_reason = exit_reason(e);
}

void pm_app_fill_status(const App *a, PmAppStatus *s) {
        const PmAppSpec *spec = a->record->spec;
        PmAppState state = pm_app_state(a);

        podmutator__v1__app_status__init(s);
        s->id = (char *) a->id;
        s->name = spec->name;
        s->namespace_ = (char *) pm_spec_namespace(spec);
        s->state = state;
        s->created_at = a->record->created_at;
        s->started_at = a->record->started_at;
        s->restart_count = a->n_restarts > a->record->restart_count ? a->n_restarts : a->record->restart_count;
        /* Map entries of a spec and of a status have the same fields. */
        s->n_labels = spec->n_labels;
        s->labels = (Podmutator__V1__AppStatus__LabelsEntry **) spec->labels;
        s->n_annotations = spec->n_annotations;
        s->annotations = (Podmutator__V1__AppStatus__AnnotationsEntry **) spec->annotations;
        s->unit = (char *) a->unit;

        if (state == PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING ||
            state == PODMUTATOR__V1__APP_STATE__APP_STATE_STOPPING)
                s->pid = a->main_pid;
        /* Exit details describe the last finished run; a running app has none. */
        if (state == PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED && a->exit.known) {
                const char *sig, *reason;
                pm_exit_summary(&a->exit, &s->exit_code, &sig, &reason);
                s->reason = (char *) reason;
                s->signal = (char *) (sig ? sig : "");
                s->finished_at = a->exit.finished_at;
        }
}

int pm_app_exit_format(const AppExit *e, char **ret_text) {
        if (!e->known)
                return -ENODATA;
        if (asprintf(ret_text, "result=%s\ncode=%d\nstatus=%d\nfinished=%lld\n",
                     isempty(e->result) ? "unknown" : e->result, e->code, e->status, (long long) e->finished_at) < 0)
                return -ENOMEM;
        return 0;
}

int pm_app_exit_parse(const char *text, AppExit *ret) {
        AppExit e = { .known = true };
        char result[32], code[4], status[4], finished[20];
        int end = -1;
        uint32_t c, s;
        int64_t f;
        /* Digits only, nothing after the last line: a damaged record is
         * refused rather than read as something else. */
        if (sscanf(text, "result=%31[a-z-]\ncode=%3[0-9]\nstatus=%3[0-9]\nfinished=%19[0-9]\n%n", result, code,
                   status, finished, &end) != 4 ||
            end < 0 || text[end] != '\0')
                return -EBADMSG;
        if (pm_parse_u32(code, &c) < 0 || pm_parse_u32(status, &s) < 0 || pm_parse_i64(finished, &f) < 0)
                return -EBADMSG;
        if (c < CLD_EXITED || c > CLD_DUMPED || s > 255 || f < 0)
                return -EBADMSG;
        e.code = (int) c;
        e.status = (int) s;
        e.finished_at = f;
        snprintf(e.result, sizeof(e.result), "%s", result);
        *ret = e;
        return 0;
}
