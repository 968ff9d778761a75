/* An app's output, the agent's side: the sockets systemd connects the app's
 * stdout and stderr to are made here and handed to the pod's log daemon
 * (logd.c), and the Logs call is served from the pod's journal, where the
 * daemon puts every line with the app's id. */
#pragma once

#include "manager.h"
#include "server.h"

/* Makes the app's two sockets and hands them to the log daemon. Its record
 * must be on disk (the daemon reads its name and logging settings there). */
int pm_logs_attach(Manager *m, const App *a);
/* Tells the daemon to let the app go, and deletes its sockets and files. */
void pm_logs_detach(Manager *m, const App *a);

/* Serves a Logs call about a; always ends the call. */
void pm_logs_start(Call *call, App *a, const Podmutator__V1__LogsRequest *req);
/* The app is gone: its followers end. */
void pm_logs_app_removed(Manager *m, const App *a);
void pm_logs_done(Manager *m);
