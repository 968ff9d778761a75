/* Resource use of an app, read from its unit's cgroup (cgroup2 cpu.stat is
 * there without any controller; memory.* and pids.* only where those are
 * enabled) and, for what the cgroup lacks, summed over /proc of the
 * processes in it. Small procfs and cgroupfs reads: they never block on
 * I/O. */
#pragma once

#include "app.h"

typedef Podmutator__V1__AppStats PmAppStats;

/* Fills s (its strings borrowed from a). cgroup_root is where the pod's
 * cgroup2 hierarchy is mounted ("/sys/fs/cgroup"). */
void pm_stats_read(App *a, const char *cgroup_root, PmAppStats *s);
