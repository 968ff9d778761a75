/* An app prepared outside the pod: its directory in the pod's root, its
 * spec, and its injection through the agent. Whatever makes the rootfs
 * (an OCI image here, a runtime bundle later) uses these three steps.
 *
 * In the pod's root (the node writes it, the running pod sees it):
 *   /var/lib/podmutator-apps/          mode 0700
 *       NAME/rootfs/                   the app's root directory (an overlay
 *                                      mountpoint inside the pod, or a copy)
 *       NAME/upper/, NAME/work/        the overlay's writable layer
 *       NAME/spec.json                 its app spec (AppSpec JSON)
 *       NAME/image.json                where it came from (the layers it used)
 *       NAME.tmp-*                     one being made; renamed to NAME at the end
 * The pod's root belongs to the pod: every path in it is resolved inside it
 * (oci-fs.h), so a symlink planted there leads nowhere on the node. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "pmclient.h"
#include "pod.h"
#include "spec.h"

#define PM_POD_APPS_DIR "/var/lib/podmutator-apps" /* inside the pod */

typedef struct PmAppDir {
        char *name;
        char *pod_root;
        int root_fd;  /* the pod's root */
        int apps_fd;  /* PM_POD_APPS_DIR in the pod's root */
        char tmp[96]; /* NAME.tmp-*, until committed */
        int tmp_fd;
        int rootfs_fd; /* tmp/rootfs: fill it */
        bool committed;
} PmAppDir;

/* Starts a new app directory NAME for a running pod. -EEXIST if the pod
 * already has one of that name. */
int pm_app_dir_begin(const PmPod *pod, const char *name, PmAppDir **ret, char **ret_error);
/* Frees; an uncommitted directory is removed. */
PmAppDir *pm_app_dir_free(PmAppDir *d);
static inline void pm_app_dir_freep(PmAppDir **d) { pm_app_dir_free(*d); }

/* Creates an empty directory in the app directory (upper, work). */
int pm_app_dir_mkdir(PmAppDir *d, const char *name, int *ret_fd, char **ret_error);
/* The app directory as the pod sees it until it is committed. */
char *pm_app_dir_pod_tmp_path(const PmAppDir *d, const char *file);

/* Writes a file of the app directory (spec.json, image.json). */
int pm_app_dir_write(PmAppDir *d, const char *file, const char *text, char **ret_error);
/* systemd resolves User= and Group= through the pod's user database, even
 * for numbers (systemd 252 refuses a uid it cannot look up), while the
 * image names its users in its own /etc/passwd. So a numeric uid or gid
 * the pod does not know gets an entry in the pod's /etc/passwd or
 * /etc/group, named "pm-uid-N" / "pm-gid-N". Empty or "0": nothing. */
int pm_app_dir_register_ids(PmAppDir *d, const char *uid, const char *gid, char **ret_error);
/* Renames it into place. */
int pm_app_dir_commit(PmAppDir *d, char **ret_error);
/* Removes a committed directory again (an injection failed). */
int pm_app_dir_remove(PmAppDir *d, char **ret_error);

/* The rootfs and spec paths, inside the pod and on the node. */
char *pm_app_dir_pod_rootfs(const PmAppDir *d);
char *pm_app_dir_node_path(const PmAppDir *d, const char *file);

/* A spec from its JSON form: parsed as AppSpec, validated (spec.h), and
 * written back as canonical text. */
int pm_app_spec_build(json_object *json, PmAppSpec **ret_spec, char **ret_text, char **ret_error);
static inline void pm_app_spec_freep(PmAppSpec **s) {
        if (*s)
                protobuf_c_message_free_unpacked(&(*s)->base, NULL);
}

/* Injects spec through a connection to the pod's agent (and starts it if
 * start), as a remote client does; the app's id in *ret_id unless it is
 * NULL. label names the app in messages. */
int pm_app_inject_on(PmClient *client, const char *pod_name, const char *label, PmAppSpec *spec, bool start,
                     char **ret_id, char **ret_error);
/* The same on a connection of its own. */
int pm_app_inject(const PmPod *pod, PmAppSpec *spec, bool start, int timeout_ms, char **ret_id, char **ret_error);
