/* Unit operations on the pod's systemd and the signals that keep each app's
 * live view current. Every call is asynchronous; results come back through
 * callbacks run from the loop. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "log.h"
#include "manager.h"
#include "events.h"
#include "exec.h"
#include "records.h"
#include "util.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"

/* Callers waiting for one job; systemd hands out the job already queued
 * when a second Start or Stop of a unit comes in. */
typedef struct JobWait JobWait;
struct JobWait {
        char *path; /* the key, owned by the first waiter */
        JobDone done;
        void *userdata;
        JobWait *next;
};

typedef struct MethodCall {
        Manager *m;
        JobDone done;
        void *userdata;
} MethodCall;

static UnitActiveState active_state_from_string(const char *s, const char *sub) {
        if (streq(s, "active") && streq_ptr(sub, "exited"))
                return UNIT_EXITED;
        if (streq(s, "active") || streq(s, "reloading"))
                return UNIT_ACTIVE;
        if (streq(s, "activating"))
                return UNIT_ACTIVATING;
        if (streq(s, "deactivating"))
                return UNIT_DEACTIVATING;
        if (streq(s, "failed"))
                return UNIT_FAILED;
        return UNIT_INACTIVE;
}

static int read_props(sd_bus_message *msg, UnitProps *p) {
        char state[32] = "", sub[32] = "";
        int r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                const char *s;
                if (streq(key, "ActiveState") || streq(key, "SubState")) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r >= 0)
                                snprintf(key[0] == 'A' ? state : sub, sizeof(state), "%s", s);
                } else if (streq(key, "FreezerState")) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r >= 0)
                                snprintf(p->freezer, sizeof(p->freezer), "%s", s), p->has_freezer = true;
                } else if (streq(key, "MainPID"))
                        r = sd_bus_message_read(msg, "v", "u", &p->main_pid), p->has_main_pid = true;
                else if (streq(key, "ExecMainStartTimestamp"))
                        r = sd_bus_message_read(msg, "v", "t", &p->start_usec), p->has_start = true;
                else if (streq(key, "ExecMainExitTimestamp"))
                        r = sd_bus_message_read(msg, "v", "t", &p->exit_usec), p->has_exit = true;
                else if (streq(key, "ExecMainCode"))
                        r = sd_bus_message_read(msg, "v", "i", &p->code), p->has_code = true;
                else if (streq(key, "ExecMainStatus"))
                        r = sd_bus_message_read(msg, "v", "i", &p->status), p->has_status = true;
                else if (streq(key, "NRestarts"))
                        r = sd_bus_message_read(msg, "v", "u", &p->n_restarts), p->has_restarts = true;
                else if (streq(key, "Result")) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r >= 0)
                                snprintf(p->result, sizeof(p->result), "%s", s), p->has_result = true;
                } else
                        r = sd_bus_message_skip(msg, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (*state && *sub) {
                p->active = active_state_from_string(state, sub);
                p->has_active = true;
        }
        return sd_bus_message_exit_container(msg);
}

static void apply_service_props(Manager *m, App *a, const UnitProps *p) {
        if (p->has_main_pid)
                a->main_pid = p->main_pid;
        if (p->has_restarts)
                a->n_restarts = p->n_restarts;
        if (p->has_start && p->start_usec > 0) {
                int64_t started = (int64_t) p->start_usec * NSEC_PER_USEC;
                if (started != a->exec_started_at) {
                        /* systemd counts a restart before the run it starts. */
                        bool restarted = a->n_restarts > a->restarts_at_start;
                        if (a->exec_started_at > 0 || !restarted)
                                pm_events_emit(m, a, restarted ? "restarted" : "started");
                        a->restarts_at_start = a->n_restarts;
                }
                a->exec_started_at = started;
                if (started != a->record->started_at ||
                    (p->has_restarts && p->n_restarts > a->record->restart_count)) {
                        a->record->started_at = started;
                        if (p->has_restarts && p->n_restarts > a->record->restart_count)
                                a->record->restart_count = p->n_restarts;
                        int r = pm_records_save(m, a);
                        if (r < 0)
                                pm_log_warning("app %s: cannot save its record: %s", a->id, strerror(-r));
                }
        }
        /* An exit of the current run: its timestamp is reset when a run starts. */
        if (p->has_exit && p->exit_usec > 0 && p->has_code && p->code > 0) {
                AppExit e = {
                        .known = true,
                        .code = p->code,
                        .status = p->has_status ? p->status : 0,
                        .finished_at = (int64_t) p->exit_usec * NSEC_PER_USEC,
                };
                snprintf(e.result, sizeof(e.result), "%s", p->has_result ? p->result : a->exit.result);
                bool changed = memcmp(&e, &a->exit, sizeof(e)) != 0;
                a->exit = e;
                /* Kept on disk: the unit may be collected once stopped. */
                if (changed) {
                        pm_events_emit(m, a, "exited");
                        int r = pm_records_save_exit(m, a);
                        if (r < 0)
                                pm_log_warning("app %s: cannot save its exit: %s", a->id, strerror(-r));
                }
        }
}

static App *app_of_path(Manager *m, const char *path) {
        char id[PM_APP_ID_LEN + 1];
        if (!pm_unit_id_from_path(path, id))
                return NULL;
        return pm_store_get(&m->store, id);
}

static int on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *path = sd_bus_message_get_path(msg);
        App *a = app_of_path(m, path);
        ExecSession *e = a ? NULL : pm_hashmap_get(&m->execs, path);
        if (!a && !e)
                return 0;

        const char *iface;
        if (sd_bus_message_read(msg, "s", &iface) < 0)
                return 0;
        UnitProps p = { 0 };
        int r = read_props(msg, &p);
        if (r < 0) {
                pm_log_warning("%s: unreadable PropertiesChanged: %s", path, strerror(-r));
                return 0;
        }
        if (e) {
                pm_exec_unit_changed(e, &p);
                return 0;
        }
        if (p.has_active)
                a->active = p.active;
        /* systemd's freezer is the truth, unless the agent paused by signal. */
        if (p.has_freezer && !a->paused_by_signal)
                a->paused = streq(p.freezer, "frozen") || streq(p.freezer, "freezing");
        if (streq(iface, SD_SERVICE))
                apply_service_props(m, a, &p);
        return 0;
}

static void on_resynced(Manager *m, int r) {
        if (r < 0)
                pm_log_error("cannot read the state of the pod's units after a reload: %s", strerror(-r));
        else
                pm_log_info("state of %zu apps read again after systemd reloaded", m->store.count);
}

/* A daemon-reload drops and re-creates every unit: the UnitRemoved signals
 * it sends mean nothing, and the view is read again once it is over. */
static int on_reloading(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        int active;
        if (sd_bus_message_read(msg, "b", &active) < 0)
                return 0;
        m->reloading = active;
        if (!active) {
                int r = pm_systemd_sync(m, false, on_resynced);
                if (r < 0)
                        on_resynced(m, r);
        }
        return 0;
}

static int on_unit_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        if (m->reloading)
                return 0;
        const char *name, *path;
        if (sd_bus_message_read(msg, "so", &name, &path) < 0)
                return 0;
        App *a = app_of_path(m, path);
        if (a)
                a->active = UNIT_UNLOADED;
        ExecSession *e = a ? NULL : pm_hashmap_get(&m->execs, path);
        if (e)
                pm_exec_unit_removed(e);
        return 0;
}

static int on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        if (sd_bus_message_read(msg, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        JobWait *w = pm_hashmap_remove(&m->jobs, path);
        char *key = w ? w->path : NULL;
        while (w) {
                JobWait *next = w->next;
                w->done(m, 0, result, NULL, w->userdata);
                free(w);
                w = next;
        }
        free(key);
        return 0;
}

static int on_subscribed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e)
                pm_log_error("cannot subscribe to systemd's signals: %s", e->message);
        return 0;
}

int pm_systemd_subscribe(Manager *m) {
        static const struct {
                const char *iface, *member;
                sd_bus_message_handler_t handler;
        } matches[] = {
                { SD_MANAGER, "JobRemoved", on_job_removed },
                { SD_MANAGER, "UnitRemoved", on_unit_removed },
                { SD_MANAGER, "Reloading", on_reloading },
                { "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed },
        };
        /* Matches first, then Subscribe: no signal can slip between. */
        for (size_t i = 0; i < ELEMENTSOF(matches); i++) {
                int r = sd_bus_match_signal(m->bus, NULL, NULL, NULL, matches[i].iface, matches[i].member,
                                            matches[i].handler, m);
                if (r < 0)
                        return r;
        }
        return sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", on_subscribed, m,
                                        "");
}

static int wait_for_job(Manager *m, const char *path, JobDone done, void *userdata) {
        JobWait *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (JobWait){ .done = done, .userdata = userdata };
        JobWait *first = pm_hashmap_get(&m->jobs, path);
        if (first) {
                w->next = first->next;
                first->next = w;
                return 0;
        }
        w->path = strdup(path);
        if (!w->path || pm_hashmap_put(&m->jobs, w->path, w) < 0) {
                free(w->path);
                free(w);
                return -ENOMEM;
        }
        return 0;
}

static int on_job_queued(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MethodCall *c = userdata;
        Manager *m = c->m;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *path;
        int r;

        if (e) {
                c->done(m, -EIO, NULL, e->message, c->userdata);
                goto out;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = wait_for_job(m, path, c->done, c->userdata);
        if (r < 0)
                c->done(m, r, NULL, "cannot track the systemd job", c->userdata);
out:
        free(c);
        return 0;
}

int pm_systemd_unit_job(Manager *m, const char *method, const char *unit, JobDone done, void *userdata) {
        MethodCall *c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (MethodCall){ .m = m, .done = done, .userdata = userdata };
        int r = sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, method, on_job_queued, c,
                                         "ss", unit, "replace");
        if (r < 0)
                free(c);
        return r;
}

static int on_killed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        /* A unit that stopped meanwhile has nothing left to kill. */
        if (e && !sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit") &&
            !sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchProcess"))
                pm_log_warning("KillUnit failed: %s", e->message);
        return 0;
}

int pm_systemd_kill_unit(Manager *m, const char *unit, int sig) {
        return sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "KillUnit", on_killed, NULL,
                                        "ssi", unit, "all", sig);
}

int pm_systemd_new_transient(Manager *m, const char *unit, sd_bus_message **ret) {
        sd_bus_message *msg = NULL;
        int r = sd_bus_message_new_method_call(m->bus, &msg, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(msg, "ss", unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "(sv)");
        if (r < 0) {
                sd_bus_message_unref(msg);
                return r;
        }
        *ret = msg;
        return 0;
}

int pm_systemd_start_transient(Manager *m, sd_bus_message *msg, JobDone done, void *userdata) {
        int r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_append(msg, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        MethodCall *c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (MethodCall){ .m = m, .done = done, .userdata = userdata };
        r = sd_bus_call_async(m->bus, NULL, msg, on_job_queued, c, 0);
        if (r < 0)
                free(c);
        return r;
}

int pm_systemd_load_unit_nowait(Manager *m, const char *unit) {
        return sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", NULL, NULL, "s", unit);
}

int pm_systemd_stop_unit_nowait(Manager *m, const char *unit) {
        return sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", NULL, NULL, "ss",
                                        unit, "replace");
}

static int on_freeze_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MethodCall *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        c->done(c->m, e ? -EOPNOTSUPP : 0, NULL, e ? e->message : NULL, c->userdata);
        free(c);
        return 0;
}

int pm_systemd_freeze(Manager *m, const char *unit, bool freeze, JobDone done, void *userdata) {
        MethodCall *c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (MethodCall){ .m = m, .done = done, .userdata = userdata };
        int r = sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, freeze ? "FreezeUnit" : "ThawUnit",
                                         on_freeze_reply, c, "s", unit);
        if (r < 0)
                free(c);
        return r;
}

int pm_systemd_reset_failed(Manager *m, const char *unit) {
        /* Errors mean there is nothing to reset. */
        return sd_bus_call_method_async(m->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", NULL, NULL,
                                        "s", unit);
}

/* Start-up sync: one ListUnitsByPatterns for the states, then the Service
 * properties of each loaded app unit. */
typedef struct Sync {
        Manager *m;
        bool startup;
        unsigned pending;
        int error;
        void (*done)(Manager *m, int r);
} Sync;

typedef struct SyncItem {
        Sync *sync;
        App *app;
} SyncItem;

static void sync_step_done(Sync *s) {
        if (--s->pending > 0)
                return;
        s->done(s->m, s->error);
        free(s);
}

static int on_sync_props(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        SyncItem *item = userdata;
        Sync *s = item->sync;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e)
                pm_log_warning("app %s: cannot read its unit's state: %s", item->app->id, e->message);
        else {
                UnitProps p = { 0 };
                if (read_props(reply, &p) >= 0)
                        apply_service_props(s->m, item->app, &p);
        }
        pm_app_unref(item->app);
        free(item);
        sync_step_done(s);
        return 0;
}

static int sync_one(Sync *s, App *a, const char *path) {
        SyncItem *item = malloc(sizeof(*item));
        if (!item)
                return -ENOMEM;
        *item = (SyncItem){ .sync = s, .app = pm_app_ref(a) };
        int r = sd_bus_call_method_async(s->m->bus, NULL, SD_DEST, path, "org.freedesktop.DBus.Properties",
                                         "GetAll", on_sync_props, item, "s", SD_SERVICE);
        if (r < 0) {
                pm_app_unref(a);
                free(item);
                return r;
        }
        s->pending++;
        return 0;
}

static int read_unit_list(Sync *s, sd_bus_message *reply) {
        int r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        const char *name, *load, *active, *sub, *path;
        while ((r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, &load, &active, &sub, NULL, &path,
                                        NULL, NULL, NULL)) > 0) {
                if (s->startup && (startswith(name, "pm-exec-") || startswith(name, "pm-run-"))) {
                        pm_log_info("stopping %s, left by the previous agent", name);
                        pm_systemd_stop_unit_nowait(s->m, name);
                        continue;
                }
                char id[PM_APP_ID_LEN + 1];
                App *a = pm_unit_id_from_name(name, id) ? pm_store_get(&s->m->store, id) : NULL;
                if (!a)
                        continue;
                a->active = active_state_from_string(active, sub);
                a->sync_generation = s->m->sync_generation;
                r = sync_one(s, a, path);
                if (r < 0)
                        return r;
        }
        return r;
}

static int on_sync_list(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Sync *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                pm_log_error("cannot list the pod's units: %s", e->message);
                s->error = -EIO;
        } else {
                int r = read_unit_list(s, reply);
                if (r < 0)
                        s->error = r;
                /* What systemd did not list is not loaded. */
                for (App *a = s->m->store.first; a && r >= 0; a = a->next)
                        if (a->sync_generation != s->m->sync_generation)
                                a->active = UNIT_UNLOADED;
        }
        sync_step_done(s);
        return 0;
}

int pm_systemd_sync(Manager *m, bool startup, void (*done)(Manager *m, int r)) {
        Sync *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (Sync){ .m = m, .startup = startup, .pending = 1, .done = done };
        m->sync_generation++;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        int r = sd_bus_message_new_method_call(m->bus, &req, SD_DEST, SD_PATH, SD_MANAGER, "ListUnitsByPatterns");
        if (r >= 0)
                r = sd_bus_message_append_strv(req, NULL);
        if (r >= 0)
                r = sd_bus_message_append_strv(req, (char *[]){ (char *) PM_UNIT_PREFIX "*" PM_UNIT_SUFFIX,
                                                               (char *) "pm-exec-*.service", (char *) "pm-run-*.service",
                                                               NULL });
        if (r >= 0)
                r = sd_bus_call_async(m->bus, NULL, req, on_sync_list, s, 0);
        if (r < 0)
                free(s);
        return r;
}
