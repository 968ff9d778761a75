/* The unit file of an app: pure text generation, no I/O.
 *
 * Every value taken from a spec is either validated to be safe verbatim
 * (names, paths, users: see common/spec.c) or written as a C-escaped,
 * double-quoted word, so no input can add a line, a directive or a section. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "spec.h"

#define PM_APP_ID_LEN 32 /* lowercase hex */
#define PM_UNIT_PREFIX "pm-app@"
#define PM_UNIT_SUFFIX ".service"

/* systemd reads unit file lines of at most 1 MiB. */
#define PM_UNIT_LINE_MAX (1024u * 1024u - 1024u)

typedef struct PmUnitPaths {
        const char *control_dir;   /* made inaccessible to the app */
        const char *state_dir;     /* made inaccessible to the app */
        const char *view_root;     /* the app view's root (view.h); NULL: none */
        /* The spec's mounts as resolved in the pod (sources) and in the
         * app's root (targets), one per spec->mounts; NULL: as written. */
        char *const *mount_sources;
        char *const *mount_targets;
} PmUnitPaths;

/* Quotes s as one word of a unit setting: "..." with C escapes for quote,
 * backslash and control bytes, "%%" for '%', and, when in_exec is true,
 * "$$" for '$' (ExecStart= expands variables; Environment= does not). */
char *pm_unit_quote(const char *s, bool in_exec);

/* Renders the unit file of app `id`. -E2BIG when a line would pass
 * systemd's limit. */
int pm_unit_render(const PmAppSpec *spec, const char *id, const PmUnitPaths *paths, char **ret_text);

/* "pm-app@<id>.service" into buf (at least 64 bytes). */
void pm_unit_name(const char *id, char *buf, size_t size);
/* The id of a unit name or of its D-Bus object path; false if not an app. */
bool pm_unit_id_from_name(const char *name, char ret_id[PM_APP_ID_LEN + 1]);
bool pm_unit_id_from_path(const char *path, char ret_id[PM_APP_ID_LEN + 1]);
