/* What the agent keeps on disk for each app, so that a restarted agent
 * rebuilds its view: the unit file (in the unit dir), the record
 * (<state>/apps/<id>.json: spec, creation and start times) and how its
 * last run ended (<state>/exit/<id>), written when the agent sees it. An
 * exit that happens while the agent is down is kept by systemd instead:
 * the unit stays loaded until the agent stops it. All files are written
 * atomically; the state dir lives on the pod's /run, like the units. */
#pragma once

#include "manager.h"

int pm_records_init(Manager *m);
/* Writes the record, then the unit file. */
int pm_records_install(Manager *m, App *a);
int pm_records_save(Manager *m, App *a);
/* Removes the unit file, the record and the exit record. */
void pm_records_delete(Manager *m, App *a);
/* Reads and checks the record of app id (<state_dir>/apps/<id>.json). */
int pm_records_read(const char *state_dir, const char *id, PmAppRecord **ret, char **ret_error);
/* Loads every record (and exit record) into the store, oldest first. */
int pm_records_load_all(Manager *m);

/* Writes a->exit. */
int pm_records_save_exit(Manager *m, App *a);
