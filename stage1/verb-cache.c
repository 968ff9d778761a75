/* pm-stage1 cache ls [--json] | cache prune [--all]
 *
 * ls: the layer cache's entries: DIFF_ID SIZE LAST_USED, or a JSON array of
 * {diff_id, size, entries, last_used (ns since the epoch)}.
 * prune: removes the entries that no prepared app of any pod of this node
 * needs (an app whose rootfs is an overlay needs the layers its image.json
 * lists; a copied rootfs needs none), and what failed unpackings left.
 * --all removes every entry, and refuses (removing nothing) while an app's
 * overlay still uses one. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <time.h>

#include "errmsg.h"
#include "oci-app.h"
#include "oci-cache.h"
#include "oci-fs.h"
#include "oci-image.h"
#include "pod.h"
#include "verbs.h"

#define RECORD_MAX (1024u * 1024u)

static void print_table(const PmCacheEntry *e, size_t n) {
        printf("%-71s %12s  %s\n", "DIFF_ID", "SIZE", "LAST_USED");
        for (size_t i = 0; i < n; i++) {
                time_t t = (time_t) (e[i].last_used_ns / NSEC_PER_SEC);
                char when[32];
                struct tm tm;

                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
                printf("sha256:%s %12ju  %s\n", e[i].diff_id, (uintmax_t) e[i].size, when);
        }
}

static int print_json(const PmCacheEntry *e, size_t n) {
        json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();
                char id[80];

                if (!o) {
                        json_object_put(a);
                        return -ENOMEM;
                }
                snprintf(id, sizeof(id), "sha256:%s", e[i].diff_id);
                json_object_object_add(o, "diff_id", json_object_new_string(id));
                json_object_object_add(o, "size", json_object_new_int64((int64_t) e[i].size));
                json_object_object_add(o, "entries", json_object_new_int64((int64_t) e[i].entries));
                json_object_object_add(o, "last_used", json_object_new_int64(e[i].last_used_ns));
                json_object_array_add(a, o);
        }
        puts(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PRETTY));
        json_object_put(a);
        return 0;
}

static int cache_ls(bool json, char **ret_error) {
        _cleanup_(pm_cache_freep) PmCache *cache = NULL;
        _cleanup_free_ PmCacheEntry *entries = NULL;
        size_t n;
        int r;

        r = pm_cache_open(false, &cache, ret_error);
        if (r < 0)
                return r;
        r = pm_cache_list(cache, &entries, &n, ret_error);
        if (r < 0)
                return r;
        if (json)
                return print_json(entries, n);
        print_table(entries, n);
        return 0;
}

/* Adds the diff_ids one app's image.json lists to used (a JSON object:
 * diff_id -> "POD/APP" of its first user), when the app's rootfs is an
 * overlay of them. A record that cannot be read counts for nothing. */
static void add_record(int rootfd, const char *pod, const char *app, json_object *used) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char *text;
        json_object *o, *ids;
        struct stat st;

        if (asprintf(&path, "%s/%s/image.json", PM_POD_APPS_DIR + 1, app) < 0)
                return;
        fd = pm_fs_open_in_root(rootfd, path, O_RDONLY | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > RECORD_MAX)
                return;
        text = calloc(1, (size_t) st.st_size + 1);
        if (!text)
                return;
        if (pread(fd, text, (size_t) st.st_size, 0) == st.st_size && (o = json_tokener_parse(text))) {
                json_object *mode = NULL;
                char user[2 * 256 + 2];

                snprintf(user, sizeof(user), "%s/%s", pod, app);
                if (json_object_object_get_ex(o, "rootfs", &mode) &&
                    streq_ptr(json_object_get_string(mode), "copy"))
                        ids = NULL;
                else if (!json_object_object_get_ex(o, "diff_ids", &ids))
                        ids = NULL;
                if (json_object_is_type(ids, json_type_array))
                        for (size_t i = 0; i < json_object_array_length(ids); i++) {
                                char hex[PM_SHA256_HEX_SIZE];
                                const char *s = json_object_get_string(json_object_array_get_idx(ids, i));

                                if (pm_oci_digest_parse(s, hex) >= 0 && !json_object_object_get_ex(used, hex, NULL))
                                        json_object_object_add(used, hex, json_object_new_string(user));
                        }
                json_object_put(o);
        }
        free(text);
}

static int collect_pod(const char *name, json_object *used, char **ret_error) {
        _cleanup_(pm_pod_freep) PmPod *pod = NULL;
        _cleanup_close_ int rootfd = -1, appsfd = -1;
        struct dirent *de;
        DIR *d;
        int r;

        r = pm_pod_new(name, false, &pod, ret_error);
        if (r < 0)
                return r;
        rootfd = open(pod->root_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfd < 0)
                return 0; /* a pod without a root has no apps */
        if (pm_fs_open_dir(rootfd, PM_POD_APPS_DIR + 1, 0, &appsfd) < 0)
                return 0;
        d = fdopendir(TAKE_FD(appsfd));
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && !strstr(de->d_name, ".tmp-"))
                        add_record(rootfd, name, de->d_name, used);
        closedir(d);
        return 0;
}

static int cache_prune(bool all, char **ret_error) {
        _cleanup_(pm_cache_freep) PmCache *cache = NULL;
        _cleanup_free_ PmCacheEntry *entries = NULL;
        _cleanup_strv_free_ char **pods = NULL;
        json_object *used = NULL;
        uint64_t bytes = 0;
        size_t n, removed = 0;
        int r;

        /* exclusive: no prepare is between unpacking and recording a layer */
        r = pm_cache_open(true, &cache, ret_error);
        if (r < 0)
                return r;
        r = pm_cache_list(cache, &entries, &n, ret_error);
        if (r < 0)
                return r;
        used = json_object_new_object();
        if (!used)
                return -ENOMEM;
        r = pm_pod_list_names(&pods, ret_error);
        for (char **p = pods; r >= 0 && p && *p; p++)
                r = collect_pod(*p, used, ret_error);
        /* an overlay whose lower layer goes away loses files under a
         * running app: --all refuses rather than break apps */
        for (size_t i = 0; r >= 0 && all && i < n; i++) {
                json_object *user;

                if (json_object_object_get_ex(used, entries[i].diff_id, &user))
                        r = pm_errorf(ret_error, -EBUSY,
                                      "cannot remove every layer: sha256:%s is in use by the app %s (and maybe "
                                      "others); remove those apps or stop their pods first. Nothing was removed.",
                                      entries[i].diff_id, json_object_get_string(user));
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (json_object_object_get_ex(used, entries[i].diff_id, NULL))
                        continue;
                r = pm_cache_remove(cache, entries[i].diff_id, ret_error);
                if (r >= 0) {
                        removed++;
                        bytes += entries[i].size;
                }
        }
        json_object_put(used);
        if (r >= 0)
                r = pm_cache_remove_leftovers(cache, ret_error);
        if (r < 0)
                return r;
        printf("removed %zu of %zu layers (%ju bytes)\n", removed, n, (uintmax_t) bytes);
        return 0;
}

int pm_verb_cache(int argc, char *argv[]) {
        static const struct option options[] = {
                {"json", no_argument, NULL, 'j'},
                {"all", no_argument, NULL, 'a'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_free_ char *error = NULL;
        bool json = false, all = false;
        const char *sub;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'a':
                        all = true;
                        break;
                case 'h':
                        printf("Usage: pm-stage1 cache ls [--json] | pm-stage1 cache prune [--all]\n");
                        return PM_EXIT_OK;
                default:
                        return PM_EXIT_USAGE;
                }
        if (optind >= argc)
                return pm_usage_error("cache", "missing ls or prune");
        sub = argv[optind++];
        if (optind < argc)
                return pm_usage_error("cache", "unexpected argument '%s'", argv[optind]);
        if (streq(sub, "ls") && !all)
                r = cache_ls(json, &error);
        else if (streq(sub, "prune") && !json)
                r = cache_prune(all, &error);
        else
                return pm_usage_error("cache", "expected 'ls [--json]' or 'prune [--all]', not '%s'", sub);
        if (r < 0) {
                pm_log_error(r, "%s", error ?: strerror(-r));
                return PM_EXIT_FAILURE;
        }
        return PM_EXIT_OK;
}
