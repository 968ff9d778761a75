/* Unit tests for stage1/bundle.c: an OCI runtime bundle's config.json turned
 * into an AppSpec. A config in the shape `crun spec` writes must come out as
 * the exact spec fields; whatever a pod cannot honour must be refused with a
 * message that names the field. Run under ASan too, so a leak on any path
 * fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bundle.h"
#include "util.h"

/* What `crun spec` writes, with terminal false, the runtime-spec's default
 * mounts, capabilities and masked paths, plus what this test adds: args,
 * env, cwd, a bind mount, a memory limit, a network namespace of its own. */
static const char crun_config[] =
        "{\n"
        "  \"ociVersion\": \"1.0.0\",\n"
        "  \"process\": {\n"
        "    \"terminal\": false,\n"
        "    \"user\": { \"uid\": 1000, \"gid\": 1001 },\n"
        "    \"args\": [ \"/usr/bin/server\", \"--port\", \"8080\" ],\n"
        "    \"env\": [\n"
        "      \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
        "      \"TERM=xterm\",\n"
        "      \"GREETING=a=b\"\n"
        "    ],\n"
        "    \"cwd\": \"/srv\",\n"
        "    \"capabilities\": {\n"
        "      \"bounding\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
        "      \"effective\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
        "      \"inheritable\": [],\n"
        "      \"permitted\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ]\n"
        "    },\n"
        "    \"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 } ],\n"
        "    \"noNewPrivileges\": true\n"
        "  },\n"
        "  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
        "  \"hostname\": \"crun\",\n"
        "  \"mounts\": [\n"
        "    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
        "    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
        "      \"options\": [ \"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\" ] },\n"
        "    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
        "      \"options\": [ \"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\" ] "
        "},\n"
        "    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
        "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\" ] },\n"
        "    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
        "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\" ] },\n"
        "    { \"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
        "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"ro\" ] },\n"
        "    { \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\",\n"
        "      \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\" ] },\n"
        "    { \"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/volumes/data\",\n"
        "      \"options\": [ \"rbind\", \"ro\", \"nosuid\", \"nodev\" ] }\n"
        "  ],\n"
        "  \"annotations\": { \"com.example.team\": \"web\" },\n"
        "  \"linux\": {\n"
        "    \"resources\": {\n"
        "      \"devices\": [ { \"allow\": false, \"access\": \"rwm\" } ],\n"
        "      \"memory\": { \"limit\": 268435456 }\n"
        "    },\n"
        "    \"namespaces\": [\n"
        "      { \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" },\n"
        "      { \"type\": \"uts\" }, { \"type\": \"mount\" }\n"
        "    ],\n"
        "    \"maskedPaths\": [\n"
        "      \"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\",\n"
        "      \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"\n"
        "    ],\n"
        "    \"readonlyPaths\": [\n"
        "      \"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"\n"
        "    ]\n"
        "  }\n"
        "}\n";

static void spec_free(PmAppSpec *spec) {
        if (spec)
                protobuf_c_message_free_unpacked(&spec->base, NULL);
}

static const char *env_get(const PmAppSpec *spec, const char *key) {
        for (size_t i = 0; i < spec->n_env; i++)
                if (streq(spec->env[i]->key, key))
                        return spec->env[i]->value;
        return NULL;
}

/* Walks a dotted path ("process.user.uid", "mounts.7") of a parsed config;
 * returns the parent and leaves the last key in *ret_key. */
static json_object *walk(json_object *top, const char *path, char *buf, size_t size, const char **ret_key) {
        json_object *cur = top;
        char *key, *dot;

        snprintf(buf, size, "%s", path);
        key = buf;
        while ((dot = strchr(key, '.'))) {
                json_object *next = NULL;

                *dot = 0;
                if (json_object_is_type(cur, json_type_array))
                        next = json_object_array_get_idx(cur, (size_t) strtoul(key, NULL, 10));
                else if (!json_object_object_get_ex(cur, key, &next)) {
                        next = json_object_new_object();
                        json_object_object_add(cur, key, next);
                }
                assert_non_null(next);
                cur = next;
                key = dot + 1;
        }
        *ret_key = key;
        return cur;
}

/* The crun config with the member at path set to the JSON text value (NULL:
 * removed; for an array, key "+" appends). */
static char *config_with(const char *path, const char *value) {
        json_object *top = json_tokener_parse(crun_config), *parent;
        const char *key;
        char buf[256], *out;

        assert_non_null(top);
        parent = walk(top, path, buf, sizeof buf, &key);
        if (json_object_is_type(parent, json_type_array)) {
                json_object *v = json_tokener_parse(value);
                assert_non_null(v);
                if (streq(key, "+"))
                        json_object_array_add(parent, v);
                else
                        json_object_array_put_idx(parent, (size_t) strtoul(key, NULL, 10), v);
        } else if (!value)
                json_object_object_del(parent, key);
        else {
                json_object *v = json_tokener_parse(value);
                assert_true(v || streq(value, "null"));
                json_object_object_add(parent, key, v);
        }
        out = strdup(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PLAIN));
        assert_non_null(out);
        json_object_put(top);
        return out;
}

static PmAppSpec *parse_ok(const char *text) {
        PmAppSpec *spec = NULL;
        char *root = NULL, *error = NULL;
        int r;

        r = pm_bundle_parse(text, strlen(text), &spec, &root, &error);
        if (r < 0)
                fail_msg("refused: %s", error);
        assert_int_equal(r, 0);
        assert_null(error);
        free(root);
        return spec;
}

/* Parses the crun config with path set to value, expects a refusal whose
 * message contains each of the fragments given. */
static void assert_refused_text(const char *text, const char *fragment, const char *fragment2) {
        PmAppSpec *spec = NULL;
        char *root = NULL, *error = NULL;
        int r;

        r = pm_bundle_parse(text, strlen(text), &spec, &root, &error);
        if (r >= 0)
                fail_msg("accepted, expected a message with \"%s\"", fragment);
        assert_int_equal(r, -EINVAL);
        assert_null(spec);
        assert_null(root);
        assert_non_null(error);
        if (!strstr(error, fragment) || (fragment2 && !strstr(error, fragment2)))
                fail_msg("message \"%s\" lacks \"%s\"%s%s", error, fragment, fragment2 ? " or " : "",
                         strempty(fragment2));
        free(error);
}

static void assert_refused(const char *path, const char *value, const char *fragment, const char *fragment2) {
        char *text = config_with(path, value);
        assert_refused_text(text, fragment, fragment2);
        free(text);
}

static PmAppSpec *parse_with(const char *path, const char *value) {
        char *text = config_with(path, value);
        PmAppSpec *spec = parse_ok(text);
        free(text);
        return spec;
}

/* ---- the default config ---- */

static void test_crun_default_config_becomes_the_exact_spec(void **state) {
        PmAppSpec *spec = NULL;
        char *root = NULL, *error = NULL;

        assert_int_equal(pm_bundle_parse(crun_config, strlen(crun_config), &spec, &root, &error), 0);
        assert_null(error);
        assert_string_equal(root, "rootfs");

        assert_string_equal(spec->name, "");
        assert_string_equal(spec->rootfs, "");
        assert_int_equal(spec->n_argv, 3);
        assert_string_equal(spec->argv[0], "/usr/bin/server");
        assert_string_equal(spec->argv[1], "--port");
        assert_string_equal(spec->argv[2], "8080");
        assert_int_equal(spec->n_env, 3);
        assert_string_equal(spec->env[0]->key, "PATH");
        assert_string_equal(spec->env[0]->value, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assert_string_equal(env_get(spec, "TERM"), "xterm");
        assert_string_equal(env_get(spec, "GREETING"), "a=b");
        assert_string_equal(spec->working_dir, "/srv");
        assert_string_equal(spec->user, "1000");
        assert_string_equal(spec->group, "1001");

        /* every one of them is in the unprivileged profile's set */
        assert_int_equal(spec->profile, PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED);
        assert_int_equal(spec->n_capabilities, 3);
        assert_string_equal(spec->capabilities[0], "CAP_AUDIT_WRITE");
        assert_string_equal(spec->capabilities[1], "CAP_KILL");
        assert_string_equal(spec->capabilities[2], "CAP_NET_BIND_SERVICE");
        assert_true(spec->no_new_privileges);

        assert_int_equal(spec->n_rlimits, 1);
        assert_string_equal(spec->rlimits[0]->type, "RLIMIT_NOFILE");
        assert_int_equal(spec->rlimits[0]->soft, 1024);
        assert_int_equal(spec->rlimits[0]->hard, 1024);

        assert_true(spec->read_only_rootfs);
        assert_string_equal(spec->hostname, "crun");

        /* the seven pseudo mounts are systemd's; the bind mount stays */
        assert_int_equal(spec->n_mounts, 1);
        assert_string_equal(spec->mounts[0]->source, "/srv/volumes/data");
        assert_string_equal(spec->mounts[0]->target, "/data");
        assert_true(spec->mounts[0]->read_only);

        assert_non_null(spec->resources);
        assert_int_equal(spec->resources->memory_max, 268435456);
        assert_int_equal(spec->resources->cpu_millis, 0);
        assert_int_equal(spec->resources->tasks_max, 0);

        assert_non_null(spec->network);
        assert_int_equal(spec->network->mode, PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE);
        assert_string_equal(spec->network->netns_path, "");

        assert_int_equal(spec->n_annotations, 1);
        assert_string_equal(spec->annotations[0]->key, "com.example.team");
        assert_string_equal(spec->annotations[0]->value, "web");

        assert_int_equal(spec->n_labels, 0);
        assert_int_equal(spec->restart, PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO);
        assert_string_equal(spec->stop_signal, "");
        assert_null(spec->logging);

        spec_free(spec);
        free(root);
}

/* The default config names a hostname, which an app cannot have (spec.c
 * says why): validation refuses it by name; without it the spec passes. */
static void test_named_spec_from_default_config_passes_validation(void **state) {
        PmAppSpec *spec = parse_ok(crun_config);
        char *error = NULL;
        char *unnamed = spec->name, *hostname = spec->hostname;

        spec->name = (char *) "web";
        assert_int_equal(pm_spec_validate(spec, &error), -EINVAL);
        assert_non_null(strstr(error, "hostname"));
        free(error);
        error = NULL;
        spec->hostname = (char *) "";
        assert_int_equal(pm_spec_validate(spec, &error), 0);
        assert_null(error);
        spec->name = unnamed;
        spec->hostname = hostname;
        spec_free(spec);
}

static void test_spec_survives_pack_and_unpack(void **state) {
        PmAppSpec *spec = parse_ok(crun_config), *back;
        size_t size = protobuf_c_message_get_packed_size(&spec->base);
        uint8_t *buf = malloc(size);

        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(&spec->base, buf), size);
        back = podmutator__v1__app_spec__unpack(NULL, size, buf);
        assert_non_null(back);
        assert_int_equal(back->n_mounts, 1);
        assert_string_equal(back->mounts[0]->target, "/data");
        assert_int_equal(back->resources->memory_max, 268435456);
        podmutator__v1__app_spec__free_unpacked(back, NULL);
        free(buf);
        spec_free(spec);
}

static void test_text_needs_no_nul_terminator(void **state) {
        size_t len = strlen(crun_config);
        char *text = malloc(len), *root = NULL, *error = NULL; /* exactly the text: ASan sees any read past it */
        PmAppSpec *spec = NULL;

        assert_non_null(text);
        memcpy(text, crun_config, len);
        assert_int_equal(pm_bundle_parse(text, len, &spec, &root, &error), 0);
        spec_free(spec);
        free(root);
        free(text);
}

/* ---- mappings ---- */

static void test_bounding_set_within_unprivileged_defaults_keeps_the_profile(void **state) {
        PmAppSpec *spec = parse_with("process.capabilities",
                                     "{\"bounding\": [\"CAP_CHOWN\", \"CAP_NET_RAW\", \"CAP_SYS_CHROOT\"],"
                                     " \"effective\": [\"CAP_CHOWN\"]}");

        assert_int_equal(spec->profile, PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED);
        assert_int_equal(spec->n_capabilities, 3);
        assert_string_equal(spec->capabilities[2], "CAP_SYS_CHROOT");
        spec_free(spec);

        spec = parse_with("process.capabilities", NULL);
        assert_int_equal(spec->profile, PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED);
        assert_int_equal(spec->n_capabilities, 0);
        spec_free(spec);
}

static void test_ambient_capabilities_only_for_root(void **state) {
        PmAppSpec *spec;
        char *text;

        assert_refused("process.capabilities.ambient", "[\"CAP_KILL\"]", "process.capabilities.ambient", "root");

        text = config_with("process.user", "{\"uid\": 0, \"gid\": 0}");
        spec = parse_ok(text); /* no ambient: fine for root too */
        assert_string_equal(spec->user, "0");
        assert_string_equal(spec->group, "0");
        spec_free(spec);
        free(text);
}

static void test_network_namespaces_map_to_network_modes(void **state) {
        PmAppSpec *spec;

        /* no network entry: the runtime's namespace, i.e. the pod's */
        spec = parse_with("linux.namespaces", "[{\"type\": \"pid\"}, {\"type\": \"uts\"}]");
        assert_int_equal(spec->network->mode, PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_HOST);
        spec_free(spec);

        spec = parse_with("linux.namespaces.1", "{\"type\": \"network\", \"path\": \"/run/netns/blue\"}");
        assert_int_equal(spec->network->mode, PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS);
        assert_string_equal(spec->network->netns_path, "/run/netns/blue");
        spec_free(spec);
}

static void test_cpu_quota_and_pids_limit_become_resources(void **state) {
        PmAppSpec *spec;
        char *text;

        spec = parse_with("linux.resources.cpu", "{\"quota\": 150000, \"period\": 100000}");
        assert_int_equal(spec->resources->cpu_millis, 1500);
        spec_free(spec);

        /* no period: the kernel's 100 ms; a tiny quota rounds up, never to "no limit" */
        spec = parse_with("linux.resources.cpu", "{\"quota\": 1}");
        assert_int_equal(spec->resources->cpu_millis, 1);
        spec_free(spec);

        spec = parse_with("linux.resources.pids", "{\"limit\": 64}");
        assert_int_equal(spec->resources->tasks_max, 64);
        spec_free(spec);

        text = config_with("linux.resources.memory.limit", "-1");
        spec = parse_ok(text);
        assert_null(spec->resources); /* -1: no limit at all */
        spec_free(spec);
        free(text);

        assert_refused("linux.resources.pids", "{\"limit\": 0}", "linux.resources.pids.limit", NULL);
        assert_refused("linux.resources.cpu", "{\"quota\": 100000, \"shares\": 1024}", "linux.resources.cpu.shares",
                       NULL);
}

static void test_rlimits_keep_type_soft_and_hard(void **state) {
        PmAppSpec *spec = parse_with("process.rlimits.+",
                                     "{\"type\": \"RLIMIT_CORE\", \"soft\": 0, \"hard\": 18446744073709551615}");

        assert_int_equal(spec->n_rlimits, 2);
        assert_string_equal(spec->rlimits[1]->type, "RLIMIT_CORE");
        assert_int_equal(spec->rlimits[1]->soft, 0);
        assert_true(spec->rlimits[1]->hard == UINT64_MAX);
        spec_free(spec);

        assert_refused("process.rlimits.+", "{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1, \"hard\": 1}",
                       "process.rlimits[1].type", "twice");
        assert_refused("process.rlimits.0", "{\"type\": \"RLIMIT_NOFILE\", \"soft\": 2, \"hard\": 1}",
                       "process.rlimits[0]", "above hard");
        assert_refused("process.rlimits.0", "{\"type\": \"RLIMIT_BOGUS\", \"soft\": 1, \"hard\": 1}",
                       "process.rlimits[0].type", NULL);
}

static void test_stop_signal_annotation_sets_stop_signal(void **state) {
        PmAppSpec *spec = parse_with("annotations", "{\"org.opencontainers.image.stopSignal\": \"SIGQUIT\"}");

        assert_string_equal(spec->stop_signal, "SIGQUIT");
        assert_int_equal(spec->n_annotations, 1);
        spec_free(spec);

        assert_refused("annotations", "{\"org.opencontainers.image.stopSignal\": \"SIGNOPE\"}",
                       "annotations.org.opencontainers.image.stopSignal", NULL);
}

static void test_bind_mount_forms_and_options(void **state) {
        PmAppSpec *spec;

        /* type "none" with "bind", rw, noexec: a writable bind mount */
        spec = parse_with("mounts.7", "{\"destination\": \"/cache\", \"type\": \"none\", \"source\": \"/var/cache\","
                                      " \"options\": [\"bind\", \"rw\", \"noexec\"]}");
        assert_int_equal(spec->n_mounts, 1);
        assert_string_equal(spec->mounts[0]->target, "/cache");
        assert_false(spec->mounts[0]->read_only);
        spec_free(spec);

        /* a relative source stays as written without a bundle directory */
        spec = parse_with("mounts.7", "{\"destination\": \"/cache\", \"source\": \"cache\", \"options\": [\"rbind\"]}");
        assert_string_equal(spec->mounts[0]->source, "cache");
        spec_free(spec);

        assert_refused("mounts.7",
                       "{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/y\", \"options\": [\"rprivate\"]}",
                       "mounts[7].options[0]", "rprivate");
        assert_refused("mounts.7", "{\"destination\": \"/x\", \"source\": \"/y\"}", "mounts[7].options", "bind mount");
        assert_refused("mounts.7", "{\"destination\": \"x\", \"type\": \"bind\", \"source\": \"/y\"}",
                       "mounts[7].destination", NULL);
}

static void test_default_masked_and_readonly_lists_are_taken_others_refused(void **state) {
        assert_refused("linux.maskedPaths.+", "\"/etc/shadow\"", "linux.maskedPaths[10]", "/etc/shadow");
        assert_refused("linux.readonlyPaths.+", "\"/srv\"", "linux.readonlyPaths[5]", NULL);
}

/* ---- refusals, one per field ---- */

static void test_refuses_terminal_and_says_to_set_it_false(void **state) {
        assert_refused("process.terminal", "true", "process.terminal", "set it to false");
}

static void test_refuses_hooks_naming_them(void **state) {
        assert_refused("hooks", "{\"createRuntime\": [{\"path\": \"/usr/bin/setup-net\"}]}", "hooks.createRuntime",
                       NULL);
        assert_refused("hooks", "{\"prestart\": [{\"path\": \"/bin/true\"}]}", "hooks.prestart", NULL);
}

static void test_refuses_user_cgroup_and_time_namespaces(void **state) {
        assert_refused("linux.namespaces.+", "{\"type\": \"user\"}", "linux.namespaces[5].type", "user");
        assert_refused("linux.namespaces.+", "{\"type\": \"cgroup\"}", "linux.namespaces[5].type", "cgroup");
        assert_refused("linux.namespaces.+", "{\"type\": \"time\"}", "linux.namespaces[5].type", "time");
        assert_refused("linux.namespaces.+", "{\"type\": \"pid\"}", "linux.namespaces[5].type", "twice");
        assert_refused("linux.namespaces.0", "{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}",
                       "linux.namespaces[0].path", NULL);
        assert_refused("linux.uidMappings", "[{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]",
                       "linux.uidMappings", NULL);
}

static void test_refuses_unknown_fields_naming_them(void **state) {
        assert_refused("solaris", "{}", "solaris", "unknown field");
        assert_refused("process.bogus", "1", "process.bogus", "unknown field");
        assert_refused("linux.resources.memory.bogus", "1", "linux.resources.memory.bogus", "unknown field");
}

static void test_refuses_non_bind_extra_mounts(void **state) {
        assert_refused("mounts.+", "{\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"}",
                       "mounts[8].type", "tmpfs");
        /* a pseudo file system at a place other than its standard one */
        assert_refused("mounts.+", "{\"destination\": \"/host-proc\", \"type\": \"proc\", \"source\": \"proc\"}",
                       "mounts[8].type", "proc");
}

static void test_refuses_malformed_env_entries_naming_the_index(void **state) {
        assert_refused("process.env.1", "\"NOEQUALS\"", "process.env[1]", "KEY=VALUE");
        assert_refused("process.env.2", "\"=value\"", "process.env[2]", NULL);
        assert_refused("process.env.2", "\"TERM=vt100\"", "process.env[2]", "twice");
        assert_refused("process.env.0", "42", "process.env[0]", "expected a string");
        assert_refused("process.env.1", "\"MY-VAR=1\"", "process.env[1]", "letters, digits");
        assert_refused("process.env.1", "\"\\u001b[31m\"", "process.env[1]", "<key with control characters>");
}

static void test_refuses_oci_versions_other_than_1x(void **state) {
        assert_refused("ociVersion", "\"2.0.0\"", "ociVersion", "2.0.0");
        assert_refused("ociVersion", "\"0.6.0\"", "ociVersion", NULL);
        assert_refused("ociVersion", "\"1\"", "ociVersion", NULL);
        assert_refused("ociVersion", NULL, "ociVersion", "required");
}

static void test_refuses_wrong_json_types_naming_the_field(void **state) {
        assert_refused("process.args", "\"/bin/sh\"", "process.args", "expected an array, got string");
        assert_refused("process.terminal", "\"no\"", "process.terminal", "expected a boolean");
        assert_refused("process.user.uid", "\"1000\"", "process.user.uid", "expected an integer, got string");
        assert_refused("process.user.uid", "1.5", "process.user.uid", "1.5");
        assert_refused("root", "[]", "root", "expected an object, got array");
        assert_refused("linux.resources.memory.limit", "\"1G\"", "linux.resources.memory.limit", NULL);
        assert_refused("mounts", "{}", "mounts", "expected an array, got object");
        assert_refused("annotations", "{\"k\": 1}", "annotations.k", "expected a string");
        assert_refused_text("[]", "config.json", "expected an object");
        assert_refused_text("{\"ociVersion\": ", "config.json", "invalid JSON");
        assert_refused_text("{} {}", "config.json", NULL);
        assert_refused_text("", "config.json", "empty");
}

static void test_refuses_a_key_given_twice(void **state) {
        /* the second "process" would silently win in json-c */
        assert_refused_text("{\"ociVersion\": \"1.0.0\", \"process\": {}, \"process\": {}}", "config.json", "twice");
        /* deep in the tree, after other objects and arrays */
        const char *at = strstr(crun_config, "\"cwd\": \"/srv\"");
        char *text = NULL;
        assert_non_null(at);
        assert_true(asprintf(&text, "%.*s\"cwd\": \"/tmp\", %s", (int) (at - crun_config), crun_config, at) > 0);
        assert_refused_text(text, "config.json", "twice");
        free(text);
        /* keys and colons inside strings are not members */
        assert_refused("annotations", "{\"a\": \"{\\\"x\\\": 1, \\\"x\\\": 2}\", \"b:c\": \"1\"}", "annotations.b:c",
                       "not a key");
}

static void test_refuses_what_a_unit_cannot_carry(void **state) {
        assert_refused("process.user.additionalGids", "[5]", "process.user.additionalGids[0]", NULL);
        assert_refused("process.user.umask", "63", "process.user.umask", NULL);
        assert_refused("process.apparmorProfile", "\"acme\"", "process.apparmorProfile", NULL);
        assert_refused("process.selinuxLabel", "\"system_u:system_r:svirt_lxc_net_t:s0\"", "process.selinuxLabel",
                       NULL);
        assert_refused("process.oomScoreAdj", "100", "process.oomScoreAdj", NULL);
        assert_refused("linux.seccomp", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}", "linux.seccomp", NULL);
        assert_refused("linux.resources.blockIO", "{\"weight\": 10}", "linux.resources.blockIO", NULL);
        assert_refused("linux.resources.hugepageLimits", "[{\"pageSize\": \"2MB\", \"limit\": 1}]",
                       "linux.resources.hugepageLimits", NULL);
        assert_refused("linux.resources.devices.+", "{\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3}",
                       "linux.resources.devices[1]", NULL);
        assert_refused("process.capabilities.bounding", "[]", "process.capabilities.bounding", NULL);
        assert_refused("process.capabilities.effective", "[\"CAP_SYS_ADMIN\"]", "process.capabilities.effective[0]",
                       "bounding");
        assert_refused("process.capabilities.bounding.0", "\"CAP_FLY\"", "process.capabilities.bounding[0]", NULL);
        assert_refused("process.args", "[]", "process.args", "required");
        assert_refused("process.args", "[\"bin/server\"]", "process.args", "argv[0]");
        assert_refused_text("{\"\\u0007bell\": 1}", "<key with control characters>", "unknown field");
        assert_refused("process.cwd", "\"srv\"", "process.cwd", NULL);
        assert_refused("root.path", "\"\"", "root.path", NULL);
        assert_refused("domainname", "\"example.com\"", "domainname", NULL);
        assert_refused("linux.namespaces", "[{\"type\": \"pid\"}]", "hostname", "uts");
}

/* ---- pm_bundle_load ---- */

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void test_load_resolves_root_and_relative_sources_against_the_bundle(void **state) {
        char dir[] = "/tmp/test-bundle-XXXXXX", path[512], *rootfs = NULL, *error = NULL, *text;
        PmAppSpec *spec = NULL;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/rootfs", dir);
        assert_int_equal(mkdir(path, 0755), 0);
        text = config_with("mounts.7", "{\"destination\": \"/data\", \"source\": \"./volumes/data\","
                                       " \"options\": [\"bind\"]}");
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_text(path, text);
        free(text);

        assert_int_equal(pm_bundle_load(dir, &spec, &rootfs, &error), 0);
        assert_null(error);
        snprintf(path, sizeof path, "%s/rootfs", dir);
        assert_string_equal(rootfs, path);
        snprintf(path, sizeof path, "%s/volumes/data", dir);
        assert_string_equal(spec->mounts[0]->source, path);
        spec_free(spec);
        free(rootfs);

        /* a root that is missing is named with its path */
        snprintf(path, sizeof path, "%s/rootfs", dir);
        assert_int_equal(rmdir(path), 0);
        spec = NULL;
        rootfs = NULL;
        assert_int_equal(pm_bundle_load(dir, &spec, &rootfs, &error), -ENOENT);
        assert_null(spec);
        assert_null(rootfs);
        assert_non_null(strstr(error, "root.path"));
        free(error);
        error = NULL;

        snprintf(path, sizeof path, "%s/config.json", dir);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(pm_bundle_load(dir, &spec, &rootfs, &error), -ENOENT);
        assert_non_null(strstr(error, "config.json"));
        free(error);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crun_default_config_becomes_the_exact_spec),
                cmocka_unit_test(test_named_spec_from_default_config_passes_validation),
                cmocka_unit_test(test_spec_survives_pack_and_unpack),
                cmocka_unit_test(test_text_needs_no_nul_terminator),
                cmocka_unit_test(test_bounding_set_within_unprivileged_defaults_keeps_the_profile),
                cmocka_unit_test(test_ambient_capabilities_only_for_root),
                cmocka_unit_test(test_network_namespaces_map_to_network_modes),
                cmocka_unit_test(test_cpu_quota_and_pids_limit_become_resources),
                cmocka_unit_test(test_rlimits_keep_type_soft_and_hard),
                cmocka_unit_test(test_stop_signal_annotation_sets_stop_signal),
                cmocka_unit_test(test_bind_mount_forms_and_options),
                cmocka_unit_test(test_default_masked_and_readonly_lists_are_taken_others_refused),
                cmocka_unit_test(test_refuses_terminal_and_says_to_set_it_false),
                cmocka_unit_test(test_refuses_hooks_naming_them),
                cmocka_unit_test(test_refuses_user_cgroup_and_time_namespaces),
                cmocka_unit_test(test_refuses_unknown_fields_naming_them),
                cmocka_unit_test(test_refuses_non_bind_extra_mounts),
                cmocka_unit_test(test_refuses_malformed_env_entries_naming_the_index),
                cmocka_unit_test(test_refuses_oci_versions_other_than_1x),
                cmocka_unit_test(test_refuses_wrong_json_types_naming_the_field),
                cmocka_unit_test(test_refuses_a_key_given_twice),
                cmocka_unit_test(test_refuses_what_a_unit_cannot_carry),
                cmocka_unit_test(test_load_resolves_root_and_relative_sources_against_the_bundle),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
