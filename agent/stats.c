#include "stats.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* The first value of `key` in a "key value" file. */
static bool read_keyed(const char *path, const char *key, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[256];
        size_t n = strlen(key);
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && (line[n] == ' ' || line[n] == ':' || line[n] == '\t'))
                        return sscanf(line + n + 1, " %" SCNu64, ret) == 1;
        return false;
}

static bool read_number(const char *path, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        return f && fscanf(f, "%" SCNu64, ret) == 1;
}

/* Memory and threads summed over the processes of the cgroup. */
static void sum_procs(const char *cg, PmAppStats *s) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned pid;
        unsigned count = 0;
        while (f && fscanf(f, "%u", &pid) == 1 && count++ < 4096) {
                char status[64];
                uint64_t rss = 0, hwm = 0, threads = 0;
                snprintf(status, sizeof(status), "/proc/%u/status", pid);
                if (read_keyed(status, "VmRSS", &rss))
                        s->memory_bytes += rss * 1024;
                if (read_keyed(status, "VmHWM", &hwm))
                        s->memory_peak_bytes += hwm * 1024;
                if (read_keyed(status, "Threads", &threads))
                        s->tasks += (uint32_t) threads;
        }
}

void pm_stats_read(App *a, const char *cgroup_root, PmAppStats *s) {
        const PmAppSpec *spec = a->record->spec;
        podmutator__v1__app_stats__init(s);
        s->id = (char *) a->id;
        s->name = spec->name;
        s->namespace_ = (char *) pm_spec_namespace(spec);
        s->sampled_at = pm_now_realtime_ns();

        char cg[PATH_MAX], path[PATH_MAX + 32];
        /* Unit names are short: this never truncates. */
        snprintf(cg, sizeof(cg), "%s/system.slice/%s", cgroup_root, a->unit);
        uint64_t v;
        snprintf(path, sizeof(path), "%s/cpu.stat", cg);
        if (read_keyed(path, "usage_usec", &v))
                s->cpu_usage_ns = v * 1000;

        snprintf(path, sizeof(path), "%s/memory.current", cg);
        if (read_number(path, &v)) {
                s->memory_bytes = v;
                s->memory_source = (char *) "cgroup";
                snprintf(path, sizeof(path), "%s/memory.peak", cg);
                s->memory_peak_bytes = read_number(path, &v) ? v : s->memory_bytes;
                snprintf(path, sizeof(path), "%s/pids.current", cg);
                if (read_number(path, &v))
                        s->tasks = (uint32_t) v;
                return;
        }
        s->memory_source = (char *) "proc";
        sum_procs(cg, s);
        /* Processes that ended took their peaks along: keep the largest seen. */
        if (s->memory_peak_bytes < a->memory_peak_seen)
                s->memory_peak_bytes = a->memory_peak_seen;
        a->memory_peak_seen = s->memory_peak_bytes;
}
