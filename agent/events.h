/* App events (created, started, restarted, exited, stopped, removed), as
 * systemd's signals and the agent's own operations make them, kept in a
 * bounded ring for late watchers and streamed to Watch calls. A watcher that
 * falls more than PM_BACKLOG_HIGH behind is ended, never waited for. */
#pragma once

#include "manager.h"
#include "server.h"

#define PM_EVENTS_RING 1024
#define PM_WATCHERS_MAX 64

typedef struct EventRing EventRing;
typedef struct Watcher Watcher;

/* Records an event of app a; `exited` events carry its exit. Nothing is
 * recorded before the agent serves (start-up sync is not news). */
void pm_events_emit(Manager *m, const App *a, const char *type);

/* rpc.c: a Watch call; the app filter is resolved by the caller. */
void pm_watch_start(Call *call, const char *ns, const char *app_id, int64_t since);

void pm_events_free(Manager *m);
