#include "events.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

#define CODE(x) PODMUTATOR__V1__CODE__CODE_##x

typedef struct EventRecord {
        uint64_t seq;
        int64_t time;
        char type[16];
        char id[PM_APP_ID_LEN + 1];
        char name[64];
        char ns[64];
        int32_t exit_code;
        char reason[16];
        char signal[16];
} EventRecord;

struct Watcher {
        Manager *m;
        Call *call;
        char ns[64];                 /* "" = every namespace */
        char app_id[PM_APP_ID_LEN + 1]; /* "" = every app */
        Watcher *next;
};

struct EventRing {
        EventRecord records[PM_EVENTS_RING];
        uint64_t next_seq; /* records[(seq - 1) % size] holds event seq */
        Watcher *watchers;
        unsigned n_watchers;
};

static bool wants(const Watcher *w, const EventRecord *e) {
        return (!*w->ns || streq(w->ns, e->ns)) && (!*w->app_id || streq(w->app_id, e->id));
}

static void watcher_end(Watcher *w, PmCode code, const char *message) {
        EventRing *ring = w->m->events;
        for (Watcher **p = &ring->watchers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        ring->n_watchers--;
                        break;
                }
        if (code == CODE(OK)) {
                Podmutator__V1__WatchResponse wr = PODMUTATOR__V1__WATCH_RESPONSE__INIT;
                PmResponse resp = PODMUTATOR__V1__RESPONSE__INIT;
                resp.result_case = PODMUTATOR__V1__RESPONSE__RESULT_WATCH;
                resp.watch = &wr;
                pm_call_reply(w->call, &resp);
        } else
                pm_call_fail(w->call, code, "%s", message);
        free(w);
}

/* Sends one event; a watcher that cannot keep up is ended (false). */
static bool send_event(Watcher *w, const EventRecord *e) {
        Podmutator__V1__Event ev = PODMUTATOR__V1__EVENT__INIT;
        ev.seq = e->seq;
        ev.time = e->time;
        ev.type = (char *) e->type;
        ev.id = (char *) e->id;
        ev.name = (char *) e->name;
        ev.namespace_ = (char *) e->ns;
        ev.exit_code = e->exit_code;
        ev.reason = (char *) e->reason;
        ev.signal = (char *) e->signal;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_EVENT;
        env.event = &ev;
        pm_call_send(w->call, &env);
        if (!pm_call_backlogged(w->call))
                return true;
        watcher_end(w, CODE(RESOURCE_EXHAUSTED),
                    "the watcher fell too far behind the events; watch again with a since time");
        return false;
}

static EventRing *ring_of(Manager *m) {
        if (!m->events)
                m->events = calloc(1, sizeof(EventRing));
        return m->events;
}

void pm_events_emit(Manager *m, const App *a, const char *type) {
        EventRing *ring = m->serving ? ring_of(m) : NULL;
        if (!ring)
                return;
        uint64_t seq = ++ring->next_seq;
        EventRecord *e = &ring->records[(seq - 1) % PM_EVENTS_RING];
        const PmAppSpec *spec = a->record->spec;
        *e = (EventRecord){ .seq = seq, .time = pm_now_realtime_ns() };
        snprintf(e->type, sizeof(e->type), "%s", type);
        snprintf(e->id, sizeof(e->id), "%s", a->id);
        snprintf(e->name, sizeof(e->name), "%s", spec->name);
        snprintf(e->ns, sizeof(e->ns), "%s", pm_spec_namespace(spec));
        if (streq(type, "exited") && a->exit.known) {
                const char *sig, *reason;
                pm_exit_summary(&a->exit, &e->exit_code, &sig, &reason);
                snprintf(e->reason, sizeof(e->reason), "%s", reason);
                snprintf(e->signal, sizeof(e->signal), "%s", strempty(sig));
        }
        for (Watcher *w = ring->watchers, *next; w; w = next) {
                next = w->next;
                if (wants(w, e))
                        (void) send_event(w, e);
        }
}

static void on_watch_cancel(void *userdata) { watcher_end(userdata, CODE(OK), NULL); }

/* A watch takes no data; it ends on Cancel or when the client goes. */
static const StreamOps watch_ops = {
        .on_cancel = on_watch_cancel,
        .on_close = on_watch_cancel,
};

void pm_watch_start(Call *call, const char *ns, const char *app_id, int64_t since) {
        Manager *m = call->m;
        EventRing *ring = ring_of(m);
        if (!ring) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        if (ring->n_watchers >= PM_WATCHERS_MAX) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "%d watchers are connected, the most the agent takes",
                             PM_WATCHERS_MAX);
                return;
        }
        Watcher *w = calloc(1, sizeof(*w));
        if (!w) {
                pm_call_fail(call, CODE(RESOURCE_EXHAUSTED), "out of memory");
                return;
        }
        *w = (Watcher){ .m = m, .call = call, .next = ring->watchers };
        snprintf(w->ns, sizeof(w->ns), "%s", strempty(ns));
        snprintf(w->app_id, sizeof(w->app_id), "%s", strempty(app_id));
        ring->watchers = w;
        ring->n_watchers++;
        pm_call_attach_stream(call, &watch_ops, w);

        /* The recent past first, oldest first, from what the ring still holds. */
        if (since <= 0)
                return;
        uint64_t first = ring->next_seq > PM_EVENTS_RING ? ring->next_seq - PM_EVENTS_RING + 1 : 1;
        for (uint64_t seq = first; seq <= ring->next_seq; seq++) {
                const EventRecord *e = &ring->records[(seq - 1) % PM_EVENTS_RING];
                if (e->time >= since && wants(w, e) && !send_event(w, e))
                        return;
        }
}

void pm_events_free(Manager *m) {
        free(m->events);
        m->events = NULL;
}
