/* OCI runtime bundles (runtime-spec 1.x): the translation of a bundle's
 * config.json into the AppSpec it describes. Pure: nothing is mounted,
 * copied or started here; docs/bundles.md has the field-by-field mapping and
 * the reasons for what is refused.
 *
 * Whatever the spec cannot honour is refused, not dropped: every failure is
 * -EINVAL with a message naming the field ("process.terminal: ...",
 * "mounts[3].type: ..."), so that a bundle either runs as written or not at
 * all. Unknown fields are refused too, at every level (the runtime-spec asks
 * runtimes to ignore them; a translation that ignored them could run a
 * bundle with less isolation than it asks for).
 *
 * The spec returned has no name and no rootfs: the caller names the app,
 * places the bundle's root tree in the pod and sets rootfs to where it put
 * it. The sources of its mounts are paths on the node, as the bundle gives
 * them: the caller makes each one visible in the pod and rewrites source to
 * the path in the pod, as Mount.source is read by the agent.
 *
 * The spec is allocated like pm_json_parse_message()'s messages (every
 * string, array and sub-message malloc()ed), so it is freed with
 * protobuf_c_message_free_unpacked(&spec->base, NULL). */
#pragma once

#include <stddef.h>

#include "spec.h"

/* The largest config.json pm_bundle_load() reads. */
#define PM_BUNDLE_CONFIG_MAX (4u * 1024u * 1024u)

/* Reads DIR/config.json of the OCI runtime bundle in directory dir and builds
 * the AppSpec it describes. ret_rootfs gets the real path of the bundle's
 * root directory on the node (root.path resolved against dir, symlinks
 * resolved; it must be a directory). Relative mount sources are resolved
 * against dir too (lexically: they need not exist yet).
 *
 * Returns 0, -EINVAL (the bundle is not one a pod can run, or config.json is
 * not valid), -ENOMEM, or the errno of a file that could not be read, with a
 * message in *ret_error (when not NULL) for a person: it names the file or
 * the field at fault. *ret_spec and *ret_rootfs are written only on
 * success, *ret_error only on failure. */
int pm_bundle_load(const char *dir, PmAppSpec **ret_spec, char **ret_rootfs, char **ret_error);

/* The same from the len bytes of a config.json's text (no NUL needed), for
 * callers that hold it and for tests. ret_root_path gets root.path exactly as
 * written (relative to the bundle, or absolute), and relative mount sources
 * are left as written. */
int pm_bundle_parse(const char *json_text, size_t len, PmAppSpec **ret_spec, char **ret_root_path, char **ret_error);
