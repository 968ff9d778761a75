#include "records.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "context.h"
#include "errmsg.h"
#include "log.h"
#include "logs.h"
#include "pbjson.h"
#include "slots.h"
#include "util.h"

#define RECORD_SIZE_MAX (4u * 1024u * 1024u)

static char *path_of(const char *dir, const char *sub, const char *id, const char *suffix) {
        char *p;
        if (asprintf(&p, "%s/%s%s%s", dir, sub, id, suffix) < 0)
                return NULL;
        return p;
}

int pm_records_init(Manager *m) {
        _cleanup_free_ char *apps = path_of(m->state_dir, "apps", "", "");
        _cleanup_free_ char *exits = path_of(m->state_dir, "exit", "", "");
        if (!apps || !exits)
                return -ENOMEM;
        int r = pm_mkdir_p(apps, 0700);
        if (r < 0)
                return r;
        r = pm_mkdir_p(exits, 0700);
        if (r < 0)
                return r;
        return pm_mkdir_p(m->unit_dir, 0755);
}

int pm_records_save(Manager *m, App *a) {
        _cleanup_free_ char *path = path_of(m->state_dir, "apps/", a->id, ".json");
        json_object *j = pm_message_to_json(&a->record->base);
        if (!path || !j) {
                json_object_put(j);
                return -ENOMEM;
        }
        size_t len;
        const char *text = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
        int r = pm_write_file_atomic(path, text, len, 0600);
        json_object_put(j);
        return r;
}

int pm_records_install(Manager *m, App *a) {
        PmUnitPaths paths = {
                .control_dir = m->control_dir,
                .state_dir = m->state_dir,
                .view_root = m->view_root,
        };
        _cleanup_free_ char *text = NULL;
        /* Checked by the caller: what they resolve to now goes in. */
        _cleanup_strv_free_ char **sources = NULL, **targets = NULL;
        int r = pm_context_resolve_mounts(m, a->record->spec, a->record->spec->rootfs, &sources, &targets, NULL);
        if (r < 0)
                return r;
        paths.mount_sources = sources;
        paths.mount_targets = targets;
        r = pm_unit_render(a->record->spec, a->id, &paths, &text);
        if (r < 0)
                return r;
        r = pm_records_save(m, a);
        if (r < 0)
                return r;
        r = pm_logs_attach(m, a);
        if (r < 0) {
                pm_records_delete(m, a);
                return r == -ENOENT || r == -ECONNREFUSED ? -EHOSTDOWN : r;
        }
        /* The app's whole unit text is a drop-in of the template, in a
         * directory made beforehand (slots.h says why). */
        _cleanup_free_ char *dropin = pm_slots_dropin_path(m, a->id, true);
        if (!dropin)
                return -ENOMEM;
        r = pm_write_file_atomic(dropin, text, strlen(text), 0644);
        if (r == -ENOENT) {
                _cleanup_free_ char *dir = pm_slots_dropin_path(m, a->id, false);
                r = !dir ? -ENOMEM : mkdir(dir, 0755) < 0 ? -errno : 0;
                if (r >= 0)
                        r = pm_write_file_atomic(dropin, text, strlen(text), 0644);
        }
        if (r < 0)
                pm_records_delete(m, a);
        return r;
}

void pm_records_delete(Manager *m, App *a) {
        pm_logs_detach(m, a);
        char *paths[] = {
                pm_slots_dropin_path(m, a->id, true),
                path_of(m->state_dir, "apps/", a->id, ".json"),
                path_of(m->state_dir, "exit/", a->id, ""),
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                if (paths[i] && unlink(paths[i]) < 0 && errno != ENOENT)
                        pm_log_warning("cannot remove %s: %s", paths[i], strerror(errno));
                free(paths[i]);
        }
        pm_slots_retire(m, a->id);
}

static void read_exit(Manager *m, App *a) {
        _cleanup_free_ char *path = path_of(m->state_dir, "exit/", a->id, "");
        _cleanup_free_ char *text = NULL;
        if (!path || pm_read_file(path, 4096, &text, NULL) < 0)
                return;
        if (pm_app_exit_parse(text, &a->exit) < 0)
                pm_log_warning("app %s: ignoring a malformed exit record", a->id);
}

int pm_records_read(const char *state_dir, const char *id, PmAppRecord **ret, char **ret_error) {
        _cleanup_free_ char *path = path_of(state_dir, "apps/", id, ".json");
        _cleanup_free_ char *text = NULL, *error = NULL;
        size_t size;
        if (!path)
                return -ENOMEM;
        int r = pm_read_file(path, RECORD_SIZE_MAX, &text, &size);
        if (r < 0)
                return pm_errorf(ret_error, r, "%s: %m", path);
        ProtobufCMessage *msg = NULL;
        r = pm_json_parse_message(text, size, &podmutator__v1__app_record__descriptor, &msg, &error);
        if (r < 0)
                return pm_errorf(ret_error, r, "%s: %s", path, strempty(error));
        PmAppRecord *rec = (PmAppRecord *) msg;
        char unit[64], unit_id[PM_APP_ID_LEN + 1];
        pm_unit_name(rec->id, unit, sizeof(unit));
        if (!rec->spec || !pm_unit_id_from_name(unit, unit_id) || !streq(unit_id, id) ||
            pm_spec_validate(rec->spec, NULL) < 0) {
                podmutator__v1__app_record__free_unpacked(rec, NULL);
                return pm_errorf(ret_error, -EBADMSG, "%s: not a valid app record", path);
        }
        *ret = rec;
        return 0;
}

static int load_one(Manager *m, const char *id, App **ret) {
        _cleanup_free_ char *error = NULL;
        PmAppRecord *rec;
        int r = pm_records_read(m->state_dir, id, &rec, &error);
        if (r < 0) {
                pm_log_warning("%s", strempty(error));
                return r;
        }
        App *a = pm_app_new(rec);
        if (!a) {
                podmutator__v1__app_record__free_unpacked(rec, NULL);
                return -ENOMEM;
        }
        read_exit(m, a);
        *ret = a;
        return 0;
}

static int by_creation(const void *x, const void *y) {
        const App *a = *(App *const *) x, *b = *(App *const *) y;
        return a->record->created_at < b->record->created_at ? -1 : a->record->created_at > b->record->created_at;
}

int pm_records_load_all(Manager *m) {
        _cleanup_free_ char *dir = path_of(m->state_dir, "apps", "", "");
        if (!dir)
                return -ENOMEM;
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        App **apps = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) && n < PM_APPS_MAX) {
                size_t len = strlen(de->d_name);
                if (len != PM_APP_ID_LEN + 5 || !streq(de->d_name + PM_APP_ID_LEN, ".json"))
                        continue;
                de->d_name[PM_APP_ID_LEN] = '\0';
                App *a;
                if (load_one(m, de->d_name, &a) < 0)
                        continue;
                App **grown = realloc(apps, (n + 1) * sizeof(*apps));
                if (!grown) {
                        pm_app_unref(a);
                        break;
                }
                apps = grown;
                apps[n++] = a;
        }
        closedir(d);

        if (n > 0)
                qsort(apps, n, sizeof(*apps), by_creation);
        for (size_t i = 0; i < n; i++) {
                int r = pm_store_add(&m->store, apps[i]);
                if (r < 0)
                        pm_log_warning("app %s: not restored: %s", apps[i]->id, strerror(-r));
                pm_app_unref(apps[i]);
        }
        free(apps);
        return 0;
}

int pm_records_save_exit(Manager *m, App *a) {
        _cleanup_free_ char *text = NULL;
        int r = pm_app_exit_format(&a->exit, &text);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = path_of(m->state_dir, "exit/", a->id, "");
        if (!path)
                return -ENOMEM;
        return pm_write_file_atomic(path, text, strlen(text), 0600);
}
