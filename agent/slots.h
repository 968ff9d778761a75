/* Unit slots: app ids whose drop-in directory is made before it is needed.
 *
 * An app is an instance of the template pm-app@.service; its own settings
 * are the drop-in pm-app@<id>.service.d/app.conf. Before systemd loads a
 * unit it has not seen, it re-reads every unit directory that changed since
 * it last looked, and that costs a stat of every unit file there, so it grows
 * with the number of apps. A file written into a directory made earlier
 * changes no unit directory: an Inject that takes a ready slot is loaded
 * without the re-read. Slots are made, and the directories of removed apps
 * taken away, in batches; each batch ends with one load of a name that does
 * not exist, so that systemd re-reads its directories then, off the path of
 * any request. */
#pragma once

#include "manager.h"
#include "unit.h"

/* Writes the template, drops the empty directories a previous agent left and
 * makes the first batch of slots. Needs the bus. */
int pm_slots_init(Manager *m);
void pm_slots_done(Manager *m);

/* A fresh app id whose drop-in directory exists. When none is ready, one is
 * made on the spot (that load pays for the re-read). */
int pm_slots_take(Manager *m, char ret_id[PM_APP_ID_LEN + 1]);

/* The drop-in of app id is gone: its directory goes with the next batch. */
void pm_slots_retire(Manager *m, const char *id);

/* The path of app id's drop-in file, or with file false its directory. */
char *pm_slots_dropin_path(const Manager *m, const char *id, bool file);
