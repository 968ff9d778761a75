/* A cgroup of its own for each pod. systemd-nspawn puts the pod in a
 * "payload" group below the cgroup it runs in; pods started from the same
 * cgroup would share it, and one pod's systemd would then manage (and
 * remove) the other's unit cgroups. */
#pragma once

/* In the process about to become systemd-nspawn: creates "pm-<name>" below
 * its own cgroup, in the cgroup2 hierarchy and in the named systemd v1 one
 * where mounted, moves itself there, and appends the paths to record_path.
 * Best effort: a hierarchy it cannot use is left as it was. */
void pm_cgroup_enter_own(const char *name, const char *record_path);

/* Removes the cgroups listed in record_path (empty ones only). */
void pm_cgroup_remove_recorded(const char *record_path);
