/* pm-stage1 prepare --pod NAME --image DIR[:TAG] [--name N] [--inject [--start]] [--allow-devices] [--copy]
 * pm-stage1 prepare --pod NAME --bundle DIR [--name N] [--inject [--start]]
 *
 *  1. find the pod (it must be running: its root is where the app goes)
 *  2. read the image layout: index.json -> manifest (TAG) -> config, every
 *     blob checked against its descriptor's size and digest
 *  3. each layer from the node's cache, unpacked into it first if missing
 *     (oci-cache.h), its blob digest and diff_id checked
 *  4. a new app directory in the pod (oci-app.h) whose rootfs is an overlay
 *     of the cached layers, mounted in the pod's mount namespace
 *     (oci-overlay.h), or with --copy a copy of them (oci-rootfs.h)
 *  5. an app spec from the image config: argv = Entrypoint + Cmd, env,
 *     working_dir, user and group as numbers from the image's own
 *     /etc/passwd and /etc/group, stop_signal; validated, then written as
 *     spec.json beside the rootfs, and the directory renamed into place
 *  6. print the spec's path on the node; with --inject, inject it through
 *     the agent instead (started too with --start) and print the app's id
 *
 * A runtime bundle (--bundle) goes the same way from step 4 on: its
 * config.json becomes the spec (bundle.h), its root directory is bound into
 * the app directory as the rootfs (a bind mount of the node's tree, attached
 * in the pod's mount namespace like the overlay), and so is the source of
 * each of its bind mounts, under mounts/<i>, the spec's mount sources
 * rewritten to those paths in the pod.
 *
 * Any failure leaves the pod's app directory and the cache as they were. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <libgen.h>

#include <linux/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "bundle.h"
#include "errmsg.h"
#include "pbjson.h"
#include "oci-app.h"
#include "oci-cache.h"
#include "oci-image.h"
#include "oci-overlay.h"
#include "oci-rootfs.h"
#include "pod.h"
#include "verbs.h"

#define INJECT_TIMEOUT_MS (10 * 1000)

typedef struct PrepareOptions {
        const char *pod;
        char *image; /* DIR, without :TAG */
        const char *bundle;
        char *tag;
        const char *name;
        bool inject, start, allow_devices, copy;
} PrepareOptions;

static void options_done(PrepareOptions *o) {
        free(o->image);
        free(o->tag);
}

/* DIR[:TAG]: a ':' after the last '/' starts the tag. */
static int split_image(const char *arg, PrepareOptions *o) {
        const char *slash = strrchr(arg, '/'), *colon = strrchr(arg, ':');

        if (colon && (!slash || colon > slash)) {
                o->image = strndup(arg, (size_t) (colon - arg));
                o->tag = strdup(colon + 1);
                if (!o->image || !o->tag)
                        return -ENOMEM;
                return isempty(o->tag) || isempty(o->image) ? -EINVAL : 0;
        }
        o->image = strdup(arg);
        return o->image ? 0 : -ENOMEM;
}

/* 0 to go on, -1 when --help was printed, or PM_EXIT_USAGE. */
static int parse_args(int argc, char *argv[], PrepareOptions *o) {
        static const struct option options[] = {
                { "pod", required_argument, NULL, 'p' },
                { "image", required_argument, NULL, 'i' },
                { "bundle", required_argument, NULL, 'b' },
                { "name", required_argument, NULL, 'n' },
                { "inject", no_argument, NULL, 'j' },
                { "start", no_argument, NULL, 's' },
                { "allow-devices", no_argument, NULL, 'D' },
                { "copy", no_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "p:i:n:h", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        o->pod = optarg;
                        break;
                case 'i':
                        if (o->image || split_image(optarg, o) < 0)
                                return pm_usage_error("prepare", "invalid --image '%s': expected DIR[:TAG], once",
                                                      optarg);
                        break;
                case 'b':
                        o->bundle = optarg;
                        break;
                case 'n':
                        o->name = optarg;
                        break;
                case 'j':
                        o->inject = true;
                        break;
                case 's':
                        o->start = true;
                        break;
                case 'D':
                        o->allow_devices = true;
                        break;
                case 'c':
                        o->copy = true;
                        break;
                case 'h':
                        printf("Usage: pm-stage1 prepare --pod NAME --image DIR[:TAG] [--name N] [--inject [--start]] "
                               "[--allow-devices] [--copy]\n"
                               "       pm-stage1 prepare --pod NAME --bundle DIR [--name N] [--inject [--start]]\n");
                        return -1;
                default:
                        return PM_EXIT_USAGE;
                }
        if (optind < argc)
                return pm_usage_error("prepare", "unexpected argument '%s'", argv[optind]);
        if (!o->pod || !pm_dns_label_valid(o->pod))
                return pm_usage_error("prepare", "missing or invalid --pod: it must be a lowercase DNS label");
        if (!o->image == !o->bundle)
                return pm_usage_error("prepare", "give either --image DIR[:TAG] or --bundle DIR");
        if (o->bundle && (o->copy || o->allow_devices))
                return pm_usage_error("prepare", "--copy and --allow-devices are for images");
        if (o->name && !pm_dns_label_valid(o->name))
                return pm_usage_error("prepare", "invalid --name '%s': it must be a lowercase DNS label", o->name);
        if (o->start && !o->inject)
                return pm_usage_error("prepare", "--start needs --inject");
        return 0;
}

/* The default app name: the layout's file name, as a DNS label. */
static int default_name(const char *image, char **ret) {
        _cleanup_free_ char *copy = strdup(image), *s = NULL;
        const char *base;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        base = basename(copy);
        s = calloc(1, strlen(base) + 1);
        if (!s)
                return -ENOMEM;
        for (const char *p = base; *p && n < 63; p++) {
                char ch = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);

                if (streq(p, ".tar"))
                        break;
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
                        ch = '-';
                if (ch == '-' && (n == 0 || s[n - 1] == '-'))
                        continue;
                s[n++] = ch;
        }
        while (n > 0 && s[n - 1] == '-')
                s[--n] = '\0';
        if (!pm_dns_label_valid(s))
                return -EINVAL;
        *ret = TAKE_PTR(s);
        return 0;
}

/* The running pod, and a pidfd for its PID 1 (whose mount namespace is
 * the pod's). */
static int find_pod(const char *name, PmPod **ret, int *ret_leader, char **ret_error) {
        _cleanup_(pm_pod_freep) PmPod *pod = NULL;
        pid_t pid, leader;
        int r, fd;

        r = pm_pod_new(name, false, &pod, ret_error);
        if (r == -ENOENT)
                return pm_errorf(ret_error, r, "no such pod: %s", name);
        if (r < 0)
                return r;
        if (!pm_pod_exists(pod))
                return pm_errorf(ret_error, -ENOENT, "no such pod: %s", name);
        if (pm_pod_state(pod, &pid) != PM_POD_STATE_RUNNING)
                return pm_errorf(ret_error, -ESRCH, "pod %s is not running", name);
        fd = pm_pod_open_leader(pod, pid, &leader);
        if (fd < 0)
                return pm_errorf(ret_error, fd, "pod %s: cannot find its PID 1: %m", name);
        *ret = TAKE_PTR(pod);
        *ret_leader = fd;
        return 0;
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                closep(&fds[i]);
}

/* The image's layers from the cache, as the app's rootfs: an overlay of
 * them (a detached mount, attached later), or with --copy a copy of them in
 * the app directory. *ret_view is the rootfs's root directory either way. */
static int build_rootfs(PmCache *cache, const PmOciImage *img, PmAppDir *dir, const PrepareOptions *o,
                        int *ret_view, char **ret_error) {
        size_t n = img->n_layers;
        _cleanup_free_ int *fds = calloc(n ?: 1, sizeof(int));
        _cleanup_free_ char **names = calloc(n ?: 1, sizeof(char *));
        _cleanup_close_ int upper = -1, work = -1;
        int r = 0;

        if (!fds || !names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                fds[i] = -1;
        for (size_t i = 0; i < n && r >= 0; i++) {
                bool hit;

                names[i] = (char *) img->layers[i].diff_id;
                r = pm_cache_layer(cache, img, &img->layers[i], o->allow_devices, &fds[i], &hit, ret_error);
        }
        if (r >= 0 && o->copy) {
                r = pm_rootfs_compose(fds, names, n, dir->rootfs_fd, o->allow_devices, ret_error);
                if (r >= 0 && (*ret_view = fcntl(dir->rootfs_fd, F_DUPFD_CLOEXEC, 3)) < 0)
                        r = -errno;
        } else if (r >= 0) {
                r = pm_app_dir_mkdir(dir, "upper", &upper, ret_error);
                if (r >= 0)
                        r = pm_app_dir_mkdir(dir, "work", &work, ret_error);
                if (r >= 0)
                        r = pm_overlay_make(fds, n, upper, work, o->allow_devices, ret_view, ret_error);
        }
        close_fds(fds, n);
        return r;
}

static json_object *strv_json(json_object *a, json_object *b) {
        json_object *out = json_object_new_array(), *parts[2] = {a, b};

        for (size_t p = 0; out && p < ELEMENTSOF(parts); p++)
                if (json_object_is_type(parts[p], json_type_array))
                        for (size_t i = 0; i < json_object_array_length(parts[p]); i++)
                                json_object_array_add(out, json_object_get(json_object_array_get_idx(parts[p], i)));
        return out;
}

static int env_json(json_object *list, json_object **ret, char **ret_error) {
        json_object *env = json_object_new_object();

        if (!env)
                return -ENOMEM;
        for (size_t i = 0; json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
                const char *kv = json_object_get_string(json_object_array_get_idx(list, i));
                const char *eq = kv ? strchr(kv, '=') : NULL;
                _cleanup_free_ char *key = NULL;

                if (!eq || eq == kv) {
                        json_object_put(env);
                        return pm_errorf(ret_error, -EINVAL, "image config: Env[%zu] \"%.64s\" is not KEY=VALUE", i,
                                         strempty(kv));
                }
                key = strndup(kv, (size_t) (eq - kv));
                if (!key)
                        return -ENOMEM;
                json_object_object_add(env, key, json_object_new_string(eq + 1));
        }
        *ret = env;
        return 0;
}

static const char *config_str(json_object *config, const char *key) {
        json_object *v;

        return json_object_object_get_ex(config, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

/* The AppSpec JSON the image config describes. */
static int spec_json(const PmOciImage *img, const PmAppDir *dir, const char *uid, const char *gid, json_object **ret,
                     char **ret_error) {
        _cleanup_(json_object_putp) json_object *spec = json_object_new_object();
        json_object *config = pm_oci_image_run_config(img), *entrypoint = NULL, *cmd = NULL, *argv, *env = NULL;
        _cleanup_free_ char *rootfs = pm_app_dir_pod_rootfs(dir);
        int r;

        if (!spec || !rootfs)
                return -ENOMEM;
        if (config) {
                json_object_object_get_ex(config, "Entrypoint", &entrypoint);
                json_object_object_get_ex(config, "Cmd", &cmd);
        }
        argv = strv_json(entrypoint, cmd);
        if (!argv)
                return -ENOMEM;
        json_object_object_add(spec, "argv", argv);
        if (json_object_array_length(argv) == 0)
                return pm_errorf(ret_error, -EINVAL,
                                 "image %s: its config has neither Entrypoint nor Cmd: "
                                 "nothing to run",
                                 img->path);
        r = env_json(config ? json_object_object_get(config, "Env") : NULL, &env, ret_error);
        if (r < 0)
                return r;
        json_object_object_add(spec, "env", env);
        json_object_object_add(spec, "name", json_object_new_string(dir->name));
        json_object_object_add(spec, "rootfs", json_object_new_string(rootfs));
        json_object_object_add(spec, "user", json_object_new_string(uid));
        json_object_object_add(spec, "group", json_object_new_string(gid));
        if (config_str(config, "WorkingDir"))
                json_object_object_add(spec, "working_dir", json_object_new_string(config_str(config, "WorkingDir")));
        if (config_str(config, "StopSignal"))
                json_object_object_add(spec, "stop_signal", json_object_new_string(config_str(config, "StopSignal")));
        *ret = TAKE_PTR(spec);
        return 0;
}

/* Where the rootfs came from: the layers it needs, for cache prune. */
static int image_record(const PmOciImage *img, const char *tag, bool copy, char **ret) {
        json_object *o = json_object_new_object(), *layers = json_object_new_array();
        char d[80];

        if (!o || !layers)
                return -ENOMEM;
        json_object_object_add(o, "image", json_object_new_string(img->path));
        if (tag)
                json_object_object_add(o, "tag", json_object_new_string(tag));
        snprintf(d, sizeof(d), "sha256:%s", img->manifest_digest);
        json_object_object_add(o, "manifest", json_object_new_string(d));
        snprintf(d, sizeof(d), "sha256:%s", img->config_digest);
        json_object_object_add(o, "config", json_object_new_string(d));
        for (size_t i = 0; i < img->n_layers; i++) {
                snprintf(d, sizeof(d), "sha256:%s", img->layers[i].diff_id);
                json_object_array_add(layers, json_object_new_string(d));
        }
        json_object_object_add(o, "diff_ids", layers);
        /* an overlay needs its layers for as long as it exists; a copy does not */
        json_object_object_add(o, "rootfs", json_object_new_string(copy ? "copy" : "overlay"));
        if (asprintf(ret, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY)) < 0)
                *ret = NULL;
        json_object_put(o);
        return *ret ? 0 : -ENOMEM;
}

/* Everything up to a committed app directory; the spec in *ret_spec. */
static int make_app(const PrepareOptions *o, const char *name, PmPod *pod, int leader, PmAppDir **ret_dir,
                    PmAppSpec **ret_spec, char **ret_error) {
        _cleanup_(pm_cache_freep) PmCache *cache = NULL;
        _cleanup_(pm_oci_image_freep) PmOciImage *img = NULL;
        _cleanup_(pm_app_dir_freep) PmAppDir *dir = NULL;
        _cleanup_(json_object_putp) json_object *json = NULL;
        _cleanup_(pm_app_spec_freep) PmAppSpec *spec = NULL;
        _cleanup_free_ char *uid = NULL, *gid = NULL, *text = NULL, *record = NULL, *scratch = NULL, *at = NULL;
        _cleanup_close_ int view = -1;
        int r;

        r = pm_cache_open(false, &cache, ret_error);
        if (r < 0)
                return r;
        if (asprintf(&scratch, "%s/tmp", cache->root) < 0)
                return -ENOMEM;
        r = pm_oci_image_open(o->image, o->tag, scratch, &img, ret_error);
        if (r < 0)
                return r;
        r = pm_app_dir_begin(pod, name, &dir, ret_error);
        if (r < 0)
                return r;
        r = build_rootfs(cache, img, dir, o, &view, ret_error);
        if (r < 0)
                return r;
        r = pm_rootfs_resolve_user(view, config_str(pm_oci_image_run_config(img), "User"), &uid, &gid, ret_error);
        if (r < 0)
                return pm_errorf(ret_error, r, "image %s: %m", o->image);
        r = spec_json(img, dir, uid, gid, &json, ret_error);
        if (r < 0)
                return r;
        r = pm_app_spec_build(json, &spec, &text, ret_error);
        if (r < 0)
                return r;
        r = image_record(img, o->tag, o->copy, &record);
        if (r < 0)
                return r;
        r = pm_app_dir_register_ids(dir, uid, gid, ret_error);
        if (r >= 0)
                r = pm_app_dir_write(dir, "spec.json", text, ret_error);
        if (r >= 0)
                r = pm_app_dir_write(dir, "image.json", record, ret_error);
        if (r >= 0 && !o->copy) {
                at = pm_app_dir_pod_tmp_path(dir, "rootfs");
                r = at ? pm_overlay_attach(leader, view, at, ret_error) : -ENOMEM;
        }
        if (r >= 0)
                r = pm_app_dir_commit(dir, ret_error);
        if (r < 0)
                return r;
        *ret_dir = TAKE_PTR(dir);
        *ret_spec = TAKE_PTR(spec);
        return 0;
}

/* ---- runtime bundles ------------------------------------------------------ */


/* A clone of the node's tree at path (with what is mounted below it), to
 * attach in the pod; read-only when asked. */
static int clone_tree(const char *path, bool read_only, int *ret_fd, char **ret_error) {
        int fd = (int) syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fd < 0)
                return pm_errorf(ret_error, -errno, "cannot bind %s: %m", path);
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (read_only && syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                int r = -errno;
                close(fd);
                return pm_errorf(ret_error, r, "cannot make the bind of %s read-only: %m", path);
        }
        *ret_fd = fd;
        return 0;
}

/* Binds the node's source into the app directory as mounts/<i> and points
 * the spec's mount at it (as the pod sees it once committed). */
static int bind_mount_source(PmAppDir *dir, int mounts_fd, int leader, Podmutator__V1__Mount *m, size_t i,
                             char **ret_error) {
        _cleanup_free_ char *entry = NULL, *at = NULL, *in_pod = NULL;
        _cleanup_close_ int mnt = -1;
        struct stat st;
        int r;

        if (stat(m->source, &st) < 0)
                return pm_errorf(ret_error, -errno, "mounts[%zu].source: %s: %m", i, m->source);
        if (asprintf(&entry, "%zu", i) < 0 || asprintf(&at, "mounts/%zu", i) < 0)
                return -ENOMEM;
        if (S_ISDIR(st.st_mode) ? mkdirat(mounts_fd, entry, 0755) < 0
                                : mknodat(mounts_fd, entry, S_IFREG | 0644, 0) < 0)
                return pm_errorf(ret_error, -errno, "cannot make the mount point of mounts[%zu]: %m", i);
        r = clone_tree(m->source, m->read_only, &mnt, ret_error);
        if (r < 0)
                return r;
        _cleanup_free_ char *target = pm_app_dir_pod_tmp_path(dir, at);
        r = target ? pm_overlay_attach(leader, mnt, target, ret_error) : -ENOMEM;
        if (r < 0)
                return r;
        if (asprintf(&in_pod, PM_POD_APPS_DIR "/%s/%s", dir->name, at) < 0)
                return -ENOMEM;
        return pm_message_string_set(&m->source, TAKE_PTR(in_pod));
}

/* The bundle's spec as JSON, named, with its rootfs where the pod sees it. */
static int bundle_spec_json(PmAppSpec *spec, const PmAppDir *dir, json_object **ret) {
        if (pm_message_string_set(&spec->name, strdup(dir->name)) < 0 ||
            pm_message_string_set(&spec->rootfs, pm_app_dir_pod_rootfs(dir)) < 0)
                return -ENOMEM;
        *ret = pm_message_to_json(&spec->base);
        return *ret ? 0 : -ENOMEM;
}

static int make_bundle_app(const PrepareOptions *o, const char *name, PmPod *pod, int leader, PmAppDir **ret_dir,
                           PmAppSpec **ret_spec, char **ret_error) {
        _cleanup_(pm_app_dir_freep) PmAppDir *dir = NULL;
        _cleanup_(pm_app_spec_freep) PmAppSpec *bundle = NULL, *spec = NULL;
        _cleanup_(json_object_putp) json_object *json = NULL;
        _cleanup_free_ char *rootfs = NULL, *text = NULL, *at = NULL;
        _cleanup_close_ int mnt = -1, mounts_fd = -1;
        int r;

        r = pm_bundle_load(o->bundle, &bundle, &rootfs, ret_error);
        if (r < 0)
                return r;
        r = pm_app_dir_begin(pod, name, &dir, ret_error);
        if (r < 0)
                return r;
        if (bundle->n_mounts > 0)
                r = pm_app_dir_mkdir(dir, "mounts", &mounts_fd, ret_error);
        for (size_t i = 0; i < bundle->n_mounts && r >= 0; i++)
                r = bind_mount_source(dir, mounts_fd, leader, bundle->mounts[i], i, ret_error);
        if (r >= 0)
                r = clone_tree(rootfs, bundle->read_only_rootfs, &mnt, ret_error);
        if (r >= 0) {
                at = pm_app_dir_pod_tmp_path(dir, "rootfs");
                r = at ? pm_overlay_attach(leader, mnt, at, ret_error) : -ENOMEM;
        }
        if (r >= 0)
                r = bundle_spec_json(bundle, dir, &json);
        if (r >= 0)
                r = pm_app_spec_build(json, &spec, &text, ret_error);
        if (r >= 0)
                r = pm_app_dir_register_ids(dir, spec->user, spec->group, ret_error);
        if (r >= 0)
                r = pm_app_dir_write(dir, "spec.json", text, ret_error);
        if (r >= 0)
                r = pm_app_dir_commit(dir, ret_error);
        if (r < 0)
                return r;
        *ret_dir = TAKE_PTR(dir);
        *ret_spec = TAKE_PTR(spec);
        return 0;
}

static int prepare(const PrepareOptions *o, const char *name, char **ret_out, char **ret_error) {
        _cleanup_(pm_pod_freep) PmPod *pod = NULL;
        _cleanup_(pm_app_dir_freep) PmAppDir *dir = NULL;
        _cleanup_(pm_app_spec_freep) PmAppSpec *spec = NULL;
        _cleanup_close_ int leader = -1;
        int r;

        r = find_pod(o->pod, &pod, &leader, ret_error);
        if (r < 0)
                return r;
        r = o->bundle ? make_bundle_app(o, name, pod, leader, &dir, &spec, ret_error)
                      : make_app(o, name, pod, leader, &dir, &spec, ret_error);
        if (r < 0)
                return r;
        if (!o->inject) {
                *ret_out = pm_app_dir_node_path(dir, "spec.json");
                return *ret_out ? 0 : -ENOMEM;
        }
        r = pm_app_inject(pod, spec, o->start, INJECT_TIMEOUT_MS, ret_out, ret_error);
        if (r < 0)
                (void) pm_app_dir_remove(dir, NULL); /* the app never existed */
        return r;
}

int pm_verb_prepare(int argc, char *argv[]) {
        _cleanup_(options_done) PrepareOptions o = {};
        _cleanup_free_ char *error = NULL, *out = NULL, *name = NULL;
        int r;

        r = parse_args(argc, argv, &o);
        if (r != 0)
                return r < 0 ? PM_EXIT_OK : r;
        if (o.name)
                name = strdup(o.name);
        else if (default_name(o.image ?: o.bundle, &name) == -EINVAL)
                return pm_usage_error("prepare", "cannot make an app name from '%s': pass --name",
                                      o.image ?: o.bundle);
        if (!name)
                return pm_log_error(-ENOMEM, "%m"), PM_EXIT_FAILURE;

        r = prepare(&o, name, &out, &error);
        if (r < 0) {
                pm_log_error(r, "%s", error ?: strerror(-r));
                return PM_EXIT_FAILURE;
        }
        printf("%s\n", out);
        return PM_EXIT_OK;
}
