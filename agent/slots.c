#include "slots.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SLOTS_LOW 16     /* fewer ready than this: a batch is due */
#define SLOTS_HIGH 64    /* a batch makes this many ready */
#define RETIRED_BATCH 32 /* this many directories to take away: a batch is due */
#define DROPIN_FILE "app.conf"
/* A name no unit has: loading it makes systemd re-read its directories. */
#define REFRESH_UNIT "pm-slots-refresh.service"

typedef char SlotId[PM_APP_ID_LEN + 1];

struct Slots {
        uv_timer_t batch; /* a zero timer: the batch runs on the next loop turn */
        SlotId ready[SLOTS_HIGH];
        size_t n_ready;
        SlotId retired[RETIRED_BATCH];
        size_t n_retired;
};

/* What every app shares. Its own settings, Description= included, come from
 * its drop-in. */
static const char template_text[] = "# Written by podmutatord. Each app is an instance of this template;\n"
                                    "# its settings are in pm-app@<id>.service.d/" DROPIN_FILE ".\n"
                                    "[Unit]\n"
                                    "Description=PodMutator app %i\n"
                                    "\n"
                                    "[Service]\n"
                                    "# Not the instances' own slice: apps sit beside the agent.\n"
                                    "Slice=system.slice\n";

char *pm_slots_dropin_path(const Manager *m, const char *id, bool file) {
        char *p;
        if (asprintf(&p, "%s/" PM_UNIT_PREFIX "%s" PM_UNIT_SUFFIX ".d%s", m->unit_dir, id,
                     file ? "/" DROPIN_FILE : "") < 0)
                return NULL;
        return p;
}

/* A new id and its directory. */
static int make_slot(Manager *m, SlotId ret_id) {
        for (int attempt = 0; attempt < 4; attempt++) {
                SlotId id;
                int r = pm_random_hex(id, PM_APP_ID_LEN / 2);
                if (r < 0)
                        return r;
                _cleanup_free_ char *dir = pm_slots_dropin_path(m, id, false);
                if (!dir)
                        return -ENOMEM;
                if (mkdir(dir, 0755) == 0) {
                        memcpy(ret_id, id, sizeof(id));
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static void remove_dir_of(Manager *m, const char *id) {
        _cleanup_free_ char *dir = pm_slots_dropin_path(m, id, false);
        if (dir && rmdir(dir) < 0 && errno != ENOENT)
                pm_log_warning("cannot remove %s: %s", dir, strerror(errno));
}

static void refresh(Manager *m) {
        int r = pm_systemd_load_unit_nowait(m, REFRESH_UNIT);
        if (r < 0)
                pm_log_warning("cannot ask systemd to re-read its unit directories: %s", strerror(-r));
}

static void run_batch(uv_timer_t *t) {
        Manager *m = t->data;
        Slots *s = m->slots;
        for (size_t i = 0; i < s->n_retired; i++)
                remove_dir_of(m, s->retired[i]);
        s->n_retired = 0;
        while (s->n_ready < SLOTS_HIGH) {
                int r = make_slot(m, s->ready[s->n_ready]);
                if (r < 0) {
                        pm_log_warning("cannot make an app slot in %s: %s", m->unit_dir, strerror(-r));
                        break;
                }
                s->n_ready++;
        }
        refresh(m);
}

static void batch_soon(Manager *m) {
        if (!uv_is_active((uv_handle_t *) &m->slots->batch))
                uv_timer_start(&m->slots->batch, run_batch, 0, 0);
}

int pm_slots_take(Manager *m, char ret_id[PM_APP_ID_LEN + 1]) {
        Slots *s = m->slots;
        if (s->n_ready < SLOTS_LOW)
                batch_soon(m);
        if (s->n_ready == 0)
                return make_slot(m, ret_id);
        /* The oldest first: systemd has surely seen its directory. */
        memcpy(ret_id, s->ready[0], sizeof(SlotId));
        memmove(s->ready[0], s->ready[1], --s->n_ready * sizeof(SlotId));
        return 0;
}

void pm_slots_retire(Manager *m, const char *id) {
        Slots *s = m->slots;
        if (s->n_retired == RETIRED_BATCH) {
                remove_dir_of(m, id);
                return;
        }
        snprintf(s->retired[s->n_retired++], sizeof(SlotId), "%s", id);
        if (s->n_retired == RETIRED_BATCH)
                batch_soon(m);
}

/* A drop-in directory without its file: a slot no app took, or what an app
 * removed while the agent was down left. */
static void drop_empty_dirs(Manager *m) {
        DIR *d = opendir(m->unit_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                char id[PM_APP_ID_LEN + 1];
                size_t n = strlen(de->d_name);
                if (n < 3 || !streq(de->d_name + n - 2, ".d"))
                        continue;
                de->d_name[n - 2] = '\0';
                if (!pm_unit_id_from_name(de->d_name, id))
                        continue;
                _cleanup_free_ char *file = pm_slots_dropin_path(m, id, true);
                if (file && access(file, F_OK) < 0 && errno == ENOENT)
                        remove_dir_of(m, id);
        }
        closedir(d);
}

static int write_template(Manager *m) {
        _cleanup_free_ char *path = NULL, *old = NULL;
        if (asprintf(&path, "%s/" PM_UNIT_PREFIX PM_UNIT_SUFFIX, m->unit_dir) < 0)
                return -ENOMEM;
        if (pm_read_file(path, sizeof(template_text) * 2, &old, NULL) >= 0 && streq(old, template_text))
                return 0;
        return pm_write_file_atomic(path, template_text, strlen(template_text), 0644);
}

int pm_slots_init(Manager *m) {
        m->slots = calloc(1, sizeof(Slots));
        if (!m->slots)
                return -ENOMEM;
        uv_timer_init(m->loop, &m->slots->batch);
        m->slots->batch.data = m;
        int r = write_template(m);
        if (r < 0) {
                pm_log_error("cannot write the app template in %s: %s", m->unit_dir, strerror(-r));
                return r;
        }
        drop_empty_dirs(m);
        run_batch(&m->slots->batch);
        return 0;
}

static void free_slots(uv_handle_t *h) {
        free(h->data);
}

void pm_slots_done(Manager *m) {
        if (!m->slots)
                return;
        m->slots->batch.data = m->slots;
        uv_close((uv_handle_t *) &m->slots->batch, free_slots);
        m->slots = NULL;
}
