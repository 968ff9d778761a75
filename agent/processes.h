/* The processes of an app (ps): systemd's own view of its unit's
 * processes (GetUnitProcesses), and of each of its exec sessions. */
#pragma once

#include "manager.h"
#include "server.h"

void pm_processes_list(Call *call, App *a);

/* exec.c: the units of the exec sessions of app_id in flight; the strings
 * are borrowed until the loop runs again. */
size_t pm_exec_units_of(Manager *m, const char *app_id, const char **units, size_t max);
