/* App lifecycle operations on systemd: start, stop with a grace period,
 * remove. Each ends by calling `done` exactly once, from the loop. */
#pragma once

#include "codes.h"
#include "manager.h"

typedef void (*OpDone)(Manager *m, App *a, PmCode code, const char *error, void *userdata);

void pm_op_start(Manager *m, App *a, OpDone done, void *userdata);
/* timeout_s < 0: the app's stop_timeout_seconds. 0: SIGKILL at once. */
void pm_op_stop(Manager *m, App *a, int64_t timeout_s, OpDone done, void *userdata);
/* Takes the app out of the store at once; force stops a running app
 * (SIGKILL) instead of refusing. */
void pm_op_remove(Manager *m, App *a, bool force, OpDone done, void *userdata);

/* Pause (freeze every process) or resume a running app: systemd's freezer,
 * or SIGSTOP/SIGCONT to the unit's processes where the pod has none. */
void pm_op_pause(Manager *m, App *a, bool pause, OpDone done, void *userdata);

/* Units in these states have processes, or are about to. */
bool pm_app_is_active(const App *a);
