#include "ops.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "events.h"
#include "log.h"
#include "logs.h"
#include "records.h"
#include "util.h"

#define OK_CODE PODMUTATOR__V1__CODE__CODE_OK
#define FAILED_PRECONDITION PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION

typedef struct Op {
        Manager *m;
        App *app;
        OpDone done;
        void *userdata;
        uv_timer_t kill_timer;
        bool timer_armed;
        bool remove_after;
        bool pausing; /* a pause (not a resume) */
        int64_t requested_at; /* a start: when it was asked of systemd */
} Op;

bool pm_app_is_active(const App *a) {
        return a->active == UNIT_ACTIVE || a->active == UNIT_ACTIVATING || a->active == UNIT_DEACTIVATING;
}

static Op *op_new(Manager *m, App *a, OpDone done, void *userdata) {
        Op *op = calloc(1, sizeof(*op));
        if (!op) {
                done(m, a, PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED, "out of memory", userdata);
                return NULL;
        }
        *op = (Op){ .m = m, .app = pm_app_ref(a), .done = done, .userdata = userdata };
        return op;
}

static void op_free(Op *op) {
        pm_app_unref(op->app);
        free(op);
}

static void on_timer_closed(uv_handle_t *h) { op_free(h->data); }

/* Runs `done` and frees the op (after its timer is closed, if it has one). */
static void op_finish(Op *op, PmCode code, const char *error) {
        op->done(op->m, op->app, code, error, op->userdata);
        if (op->timer_armed)
                uv_close((uv_handle_t *) &op->kill_timer, on_timer_closed);
        else
                op_free(op);
}

/* Why a start failed, from how its main process ended. */
static void describe_start_failure(const App *a, const char *result, char *buf, size_t size) {
        if (a->exit.known && a->exit.code == CLD_EXITED && a->exit.status >= 200 && a->exit.status <= 243) {
                static const struct { int status; const char *what; } known[] = {
                        { 200, "the working directory does not exist" },
                        { 203, "the command was not found or is not executable" },
                        { 210, "the rootfs cannot be entered" },
                        { 216, "the group does not exist" },
                        { 217, "the user does not exist" },
                };
                for (size_t i = 0; i < ELEMENTSOF(known); i++)
                        if (known[i].status == a->exit.status) {
                                snprintf(buf, size, "app %s did not start: %s (exit status %d)", a->id,
                                         known[i].what, a->exit.status);
                                return;
                        }
                snprintf(buf, size, "app %s did not start: systemd could not set up its process (exit status %d)",
                         a->id, a->exit.status);
                return;
        }
        snprintf(buf, size, "app %s did not start: systemd job %s", a->id, result);
}

/* Whether this start's process ran and has already ended. systemd fails
 * the start job of an app that ends before it has seen its execve succeed
 * (a command that kills itself at once); but the app did start, and only a
 * status of 200-243 means systemd could not set it up. systemd sends the
 * unit's changes before JobRemoved, so the exit is known here. */
static bool ran_and_ended(const App *a, int64_t since) {
        const AppExit *e = &a->exit;
        bool setup_failed = e->code == CLD_EXITED && e->status >= 200 && e->status <= 243;
        return e->known && !setup_failed && a->exec_started_at >= since && e->finished_at >= a->exec_started_at;
}

static void on_started(Manager *m, int r, const char *result, const char *error, void *userdata) {
        Op *op = userdata;
        op->app->jobs_in_flight--;
        if (r < 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "app %s did not start: %s", op->app->id, strempty(error));
                op_finish(op, FAILED_PRECONDITION, msg);
                return;
        }
        if (!streq(result, "done") && !ran_and_ended(op->app, op->requested_at)) {
                char msg[256];
                describe_start_failure(op->app, result, msg, sizeof(msg));
                op_finish(op, FAILED_PRECONDITION, msg);
                return;
        }
        op_finish(op, OK_CODE, NULL);
}

void pm_op_start(Manager *m, App *a, OpDone done, void *userdata) {
        Op *op = op_new(m, a, done, userdata);
        if (!op)
                return;
        /* An app kept "active (exited)" runs again only through a restart. */
        a->jobs_in_flight++;
        op->requested_at = pm_now_realtime_ns();
        int r = pm_systemd_unit_job(m, a->active == UNIT_EXITED ? "RestartUnit" : "StartUnit", a->unit, on_started,
                                    op);
        if (r < 0) {
                a->jobs_in_flight--;
                char msg[128];
                snprintf(msg, sizeof(msg), "cannot ask systemd to start the app: %s", strerror(-r));
                op_finish(op, PODMUTATOR__V1__CODE__CODE_UNAVAILABLE, msg);
        }
}

static void finish_remove(Op *op) {
        if (op->app->active != UNIT_UNLOADED)
                pm_systemd_reset_failed(op->m, op->app->unit);
        pm_records_delete(op->m, op->app);
        pm_logs_app_removed(op->m, op->app);
        pm_events_emit(op->m, op->app, "removed");
        op_finish(op, OK_CODE, NULL);
}

static void on_stopped(Manager *m, int r, const char *result, const char *error, void *userdata) {
        Op *op = userdata;
        op->app->jobs_in_flight--;
        if (op->timer_armed)
                uv_timer_stop(&op->kill_timer);
        if (r < 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "cannot stop app %s: %s", op->app->id, strempty(error));
                /* A remove that could not stop the app leaves it as it was. */
                if (op->remove_after && pm_store_add(&m->store, op->app) < 0)
                        pm_log_warning("app %s: cannot put it back after a failed remove", op->app->id);
                op_finish(op, PODMUTATOR__V1__CODE__CODE_INTERNAL, msg);
                return;
        }
        if (op->remove_after)
                finish_remove(op);
        else {
                pm_events_emit(m, op->app, "stopped");
                op_finish(op, OK_CODE, NULL);
        }
}

static void on_thawed_for_stop(Manager *m, int r, const char *result, const char *error, void *userdata) {
        if (r < 0)
                pm_log_warning("cannot thaw a unit before stopping it: %s", strempty(error));
}

static void on_grace_expired(uv_timer_t *t) {
        Op *op = t->data;
        pm_log_info("app %s: grace period over, sending SIGKILL", op->app->id);
        pm_systemd_kill_unit(op->m, op->app->unit, SIGKILL);
}

static void stop_unit(Op *op, int64_t timeout_s) {
        App *a = op->app;
        /* A paused app is let go first, so that it can die. */
        if (a->paused && !a->paused_by_signal)
                pm_systemd_freeze(op->m, a->unit, false, on_thawed_for_stop, NULL);
        else if (a->paused)
                pm_systemd_kill_unit(op->m, a->unit, SIGCONT);
        a->paused = a->paused_by_signal = false;
        if (timeout_s < 0)
                timeout_s = a->record->spec->stop_timeout_seconds ? a->record->spec->stop_timeout_seconds
                                                                  : PM_STOP_TIMEOUT_DEFAULT;
        /* No grace period: SIGKILL first, so the app sees no stop signal.
         * (Pods get cgroup2, so systemd notices the processes are gone.) */
        if (timeout_s == 0)
                pm_systemd_kill_unit(op->m, a->unit, SIGKILL);
        else {
                uv_timer_init(op->m->loop, &op->kill_timer);
                op->kill_timer.data = op;
                op->timer_armed = true;
                uv_timer_start(&op->kill_timer, on_grace_expired, (uint64_t) timeout_s * 1000, 0);
        }
        a->jobs_in_flight++;
        int r = pm_systemd_unit_job(op->m, "StopUnit", a->unit, on_stopped, op);
        if (r < 0)
                on_stopped(op->m, r, NULL, strerror(-r), op);
}

static void pause_done(Op *op, bool pause) {
        op->app->paused = pause;
        if (!pause)
                op->app->paused_by_signal = false;
        pm_events_emit(op->m, op->app, pause ? "paused" : "resumed");
        op_finish(op, OK_CODE, NULL);
}

static void on_frozen(Manager *m, int r, const char *result, const char *error, void *userdata) {
        Op *op = userdata;
        bool pause = op->pausing;
        if (r < 0) {
                /* No freezer in this pod: stop the processes by signal. */
                pm_log_info("app %s: systemd cannot %s it (%s); using %s", op->app->id, pause ? "freeze" : "thaw",
                            strempty(error), pause ? "SIGSTOP" : "SIGCONT");
                pm_systemd_kill_unit(m, op->app->unit, pause ? SIGSTOP : SIGCONT);
                op->app->paused_by_signal = pause;
        }
        pause_done(op, pause);
}

void pm_op_pause(Manager *m, App *a, bool pause, OpDone done, void *userdata) {
        PmAppState st = pm_app_state(a);
        PmAppState want = pause ? PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING : PODMUTATOR__V1__APP_STATE__APP_STATE_PAUSED;
        if (st != want || a->jobs_in_flight > 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "app %s is not %s", a->id, pause ? "running" : "paused");
                done(m, a, FAILED_PRECONDITION, msg, userdata);
                return;
        }
        Op *op = op_new(m, a, done, userdata);
        if (!op)
                return;
        op->pausing = pause;
        if (!pause && a->paused_by_signal) {
                pm_systemd_kill_unit(m, a->unit, SIGCONT);
                pause_done(op, false);
                return;
        }
        int r = pm_systemd_freeze(m, a->unit, pause, on_frozen, op);
        if (r < 0)
                on_frozen(m, r, NULL, strerror(-r), op);
}

void pm_op_stop(Manager *m, App *a, int64_t timeout_s, OpDone done, void *userdata) {
        Op *op = op_new(m, a, done, userdata);
        if (!op)
                return;
        /* Stopping what is not running succeeds, as CRI wants. */
        if (!pm_app_is_active(a)) {
                op_finish(op, OK_CODE, NULL);
                return;
        }
        stop_unit(op, timeout_s);
}

void pm_op_remove(Manager *m, App *a, bool force, OpDone done, void *userdata) {
        /* A start or stop still on its way counts as running: the cached
         * state does not show it yet. */
        bool busy = pm_app_is_active(a) || a->jobs_in_flight > 0;
        if (busy && !force) {
                char msg[160];
                snprintf(msg, sizeof(msg), "app %s is %s; stop it first, or remove it with force", a->id,
                         a->active == UNIT_DEACTIVATING ? "stopping"
                         : a->active == UNIT_ACTIVE     ? "running"
                         : a->jobs_in_flight > 0        ? "being started or stopped"
                                                        : "starting");
                done(m, a, FAILED_PRECONDITION, msg, userdata);
                return;
        }
        Op *op = op_new(m, a, done, userdata);
        if (!op)
                return;
        op->remove_after = true;
        pm_store_remove(&m->store, a);
        /* A loaded unit is stopped (a no-op when it is not running) and let
         * go, so that systemd collects it; an unloaded one has only files. */
        if (a->active == UNIT_UNLOADED && !busy)
                finish_remove(op);
        else
                stop_unit(op, 0);
}
