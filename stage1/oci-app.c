#include "oci-app.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "errmsg.h"
#include "oci-fs.h"
#include "pbjson.h"
#include "pmclient.h"
#include "util.h"

PmAppDir *pm_app_dir_free(PmAppDir *d) {
        if (!d)
                return NULL;
        closep(&d->rootfs_fd);
        closep(&d->tmp_fd);
        if (!d->committed && d->apps_fd >= 0 && d->tmp[0])
                (void) pm_rm_rf_at(d->apps_fd, d->tmp);
        closep(&d->apps_fd);
        closep(&d->root_fd);
        free(d->name);
        free(d->pod_root);
        free(d);
        return NULL;
}

int pm_app_dir_begin(const PmPod *pod, const char *name, PmAppDir **ret, char **ret_error) {
        _cleanup_(pm_app_dir_freep) PmAppDir *d = NULL;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->root_fd = d->apps_fd = d->tmp_fd = d->rootfs_fd = -1;
        d->name = strdup(name);
        d->pod_root = strdup(pod->root_dir);
        if (!d->name || !d->pod_root)
                return -ENOMEM;

        d->root_fd = open(pod->root_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d->root_fd < 0)
                return pm_errorf(ret_error, -errno, "pod %s: cannot open its root %s: %m", pod->name, pod->root_dir);
        r = pm_fs_open_dir(d->root_fd, PM_POD_APPS_DIR + 1, 0700, &d->apps_fd);
        if (r < 0)
                return pm_errorf(ret_error, r, "pod %s: cannot open %s in its root: %m", pod->name, PM_POD_APPS_DIR);
        if (faccessat(d->apps_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return pm_errorf(ret_error, -EEXIST, "pod %s: an app named %s was already prepared (%s/%s)", pod->name,
                                 name, PM_POD_APPS_DIR, name);
        r = pm_fs_tmp_name(name, d->tmp, sizeof(d->tmp));
        if (r < 0)
                return r;
        if (mkdirat(d->apps_fd, d->tmp, 0700) < 0)
                return pm_errorf(ret_error, -errno, "pod %s: cannot create %s/%s: %m", pod->name, PM_POD_APPS_DIR,
                                 d->tmp);
        d->tmp_fd = openat(d->apps_fd, d->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d->tmp_fd < 0 || mkdirat(d->tmp_fd, "rootfs", 0755) < 0 ||
            (d->rootfs_fd = openat(d->tmp_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return pm_errorf(ret_error, -errno, "pod %s: cannot create %s/%s/rootfs: %m", pod->name,
                                 PM_POD_APPS_DIR, d->tmp);
        *ret = TAKE_PTR(d);
        return 0;
}

int pm_app_dir_write(PmAppDir *d, const char *file, const char *text, char **ret_error) {
        _cleanup_close_ int fd = -1;
        size_t n = strlen(text);

        fd = openat(d->tmp_fd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, n) != (ssize_t) n)
                return pm_errorf(ret_error, errno ? -errno : -EIO, "cannot write %s/%s/%s: %m", PM_POD_APPS_DIR, d->tmp,
                                 file);
        return 0;
}

/* true if a line of text has id as its third field */
static bool id_known(const char *text, uint32_t id) {
        for (const char *line = text; *line; line = *strchrnul(line, '\n') ? strchrnul(line, '\n') + 1 : "") {
                const char *f = line, *end = strchrnul(line, '\n');
                uint32_t v;
                char num[16];
                size_t n;

                for (int i = 0; i < 2 && f; i++) {
                        f = memchr(f, ':', (size_t) (end - f));
                        f = f ? f + 1 : NULL;
                }
                if (!f)
                        continue;
                n = strcspn(f, ":\n");
                if (n == 0 || n >= sizeof(num))
                        continue;
                memcpy(num, f, n);
                num[n] = '\0';
                if (pm_parse_u32(num, &v) >= 0 && v == id)
                        return true;
        }
        return false;
}

/* Appends line to the pod's etc/FILE unless it has id already: a new file
 * beside it, renamed over it. */
static int add_id(PmAppDir *d, int etcfd, const char *file, uint32_t id, const char *line) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1, out = -1;
        char tmp[64];
        struct stat st;
        ssize_t n;
        int r;

        fd = openat(etcfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size > 1024 * 1024)
                return -EINVAL;
        text = calloc(1, (size_t) st.st_size + 2);
        if (!text)
                return -ENOMEM;
        n = pread(fd, text, (size_t) st.st_size, 0);
        if (n != st.st_size)
                return -EIO;
        if (id_known(text, id))
                return 0;
        if (n > 0 && text[n - 1] != '\n')
                text[n++] = '\n';
        r = pm_fs_tmp_name(file, tmp, sizeof(tmp));
        if (r < 0)
                return r;
        out = openat(etcfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
        if (out < 0)
                return -errno;
        if (write(out, text, (size_t) n) != n || write(out, line, strlen(line)) != (ssize_t) strlen(line) ||
            fsync(out) < 0 || renameat(etcfd, tmp, etcfd, file) < 0) {
                r = errno ? -errno : -EIO;
                (void) unlinkat(etcfd, tmp, 0);
                return r;
        }
        return 0;
}

int pm_app_dir_register_ids(PmAppDir *d, const char *uid, const char *gid, char **ret_error) {
        _cleanup_close_ int etcfd = -1;
        uint32_t u = 0, g = 0;
        char line[96];
        int r;

        if ((!isempty(uid) && pm_parse_u32(uid, &u) < 0) || (!isempty(gid) && pm_parse_u32(gid, &g) < 0))
                return -EINVAL;
        if (u == 0 && g == 0)
                return 0;
        r = pm_fs_open_dir(d->root_fd, "etc", 0, &etcfd);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot open the pod's /etc: %m");
        /* two prepares at once must not lose each other's line */
        if (flock(etcfd, LOCK_EX) < 0)
                return pm_errorf(ret_error, -errno, "cannot lock the pod's /etc: %m");
        if (g != 0) {
                snprintf(line, sizeof(line), "pm-gid-%" PRIu32 ":x:%" PRIu32 ":\n", g, g);
                r = add_id(d, etcfd, "group", g, line);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot add group %" PRIu32 " to the pod's /etc/group: %m", g);
        }
        if (u != 0) {
                snprintf(line, sizeof(line), "pm-uid-%" PRIu32 ":x:%" PRIu32 ":%" PRIu32 "::/:/usr/sbin/nologin\n", u,
                         u, g);
                r = add_id(d, etcfd, "passwd", u, line);
                if (r < 0)
                        return pm_errorf(ret_error, r, "cannot add user %" PRIu32 " to the pod's /etc/passwd: %m", u);
        }
        return 0;
}

int pm_app_dir_commit(PmAppDir *d, char **ret_error) {
        /* No sync: the pod's root does not outlive a crash of the node (it
         * is made anew at every run), so durability would only cost time. */
        if (renameat2(d->apps_fd, d->tmp, d->apps_fd, d->name, RENAME_NOREPLACE) < 0)
                return pm_errorf(ret_error, -errno, "cannot rename %s/%s to %s: %m", PM_POD_APPS_DIR, d->tmp, d->name);
        d->committed = true;
        return 0;
}

int pm_app_dir_remove(PmAppDir *d, char **ret_error) {
        int r;

        r = pm_rm_rf_at(d->apps_fd, d->committed ? d->name : d->tmp);
        if (r < 0)
                return pm_errorf(ret_error, r, "cannot remove %s/%s: %m", PM_POD_APPS_DIR, d->name);
        d->committed = false;
        d->tmp[0] = '\0';
        return 0;
}

int pm_app_dir_mkdir(PmAppDir *d, const char *name, int *ret_fd, char **ret_error) {
        int fd;

        if (mkdirat(d->tmp_fd, name, 0755) < 0 ||
            (fd = openat(d->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return pm_errorf(ret_error, -errno, "cannot create %s/%s/%s: %m", PM_POD_APPS_DIR, d->tmp, name);
        *ret_fd = fd;
        return 0;
}

char *pm_app_dir_pod_tmp_path(const PmAppDir *d, const char *file) {
        char *s;

        return asprintf(&s, PM_POD_APPS_DIR "/%s/%s", d->tmp, file) < 0 ? NULL : s;
}

char *pm_app_dir_pod_rootfs(const PmAppDir *d) {
        char *s;

        return asprintf(&s, PM_POD_APPS_DIR "/%s/rootfs", d->name) < 0 ? NULL : s;
}

char *pm_app_dir_node_path(const PmAppDir *d, const char *file) {
        char *s;

        return asprintf(&s, "%s" PM_POD_APPS_DIR "/%s/%s", d->pod_root, d->name, file) < 0 ? NULL : s;
}

int pm_app_spec_build(json_object *json, PmAppSpec **ret_spec, char **ret_text, char **ret_error) {
        _cleanup_(pm_app_spec_freep) PmAppSpec *spec = NULL;
        _cleanup_free_ char *error = NULL;
        ProtobufCMessage *msg = NULL;
        json_object *out;
        const char *text;
        int r;

        text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PLAIN);
        r = pm_json_parse_message(text, strlen(text), &podmutator__v1__app_spec__descriptor, &msg, &error);
        if (r < 0)
                return pm_errorf(ret_error, r, "the app spec made from the image is invalid: %s",
                                 error ?: strerror(-r));
        spec = (PmAppSpec *) msg;
        r = pm_spec_validate(spec, &error);
        if (r < 0)
                return pm_errorf(ret_error, r, "the app spec made from the image is invalid: %s",
                                 error ?: strerror(-r));
        out = pm_message_to_json(&spec->base);
        if (!out)
                return -ENOMEM;
        r = asprintf(ret_text, "%s\n",
                     json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(out);
        if (r < 0)
                return -ENOMEM;
        *ret_spec = TAKE_PTR(spec);
        return 0;
}

int pm_app_inject_on(PmClient *client, const char *pod_name, const char *label, PmAppSpec *spec, bool start,
                     char **ret_id, char **ret_error) {
        _cleanup_(pm_response_freep) PmResponse *response = NULL;
        Podmutator__V1__InjectRequest inject = PODMUTATOR__V1__INJECT_REQUEST__INIT;
        Podmutator__V1__Request request = PODMUTATOR__V1__REQUEST__INIT;
        int r;

        inject.spec = spec;
        inject.start = start;
        request.call_case = PODMUTATOR__V1__REQUEST__CALL_INJECT;
        request.inject = &inject;
        r = pm_client_call(client, &request, &response);
        if (r < 0)
                return pm_errorf(ret_error, r, "pod %s: app %s: cannot inject it: %m", pod_name, label);
        if (response->code != PODMUTATOR__V1__CODE__CODE_OK)
                return pm_errorf(ret_error, -EINVAL, "pod %s: app %s: the agent refused it: %s: %s", pod_name, label,
                                 pm_code_name(response->code),
                                 isempty(response->message) ? "(no message)" : response->message);
        if (!ret_id)
                return 0;
        if (!response->inject || isempty(response->inject->id))
                return pm_errorf(ret_error, -EPROTO, "pod %s: app %s: the agent's answer has no app id", pod_name,
                                 label);
        *ret_id = strdup(response->inject->id);
        return *ret_id ? 0 : -ENOMEM;
}

int pm_app_inject(const PmPod *pod, PmAppSpec *spec, bool start, int timeout_ms, char **ret_id, char **ret_error) {
        _cleanup_(pm_client_freep) PmClient *client = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = pm_client_connect(pod->socket_path, timeout_ms, &client, &error);
        if (r < 0)
                return pm_errorf(ret_error, r, "pod %s: cannot connect to the agent: %s", pod->name,
                                 error ?: strerror(-r));
        return pm_app_inject_on(client, pod->name, spec->name, spec, start, ret_id, ret_error);
}
