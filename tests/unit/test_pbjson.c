/* Unit tests for common/pbjson.c: JSON <-> protobuf-c messages of podmutator.v1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pbjson.h"
#include "podmutator.pb-c.h"
#include "util.h"

/* Parses text as a desc message; the test fails unless that succeeds. */
static ProtobufCMessage *parse_ok(const ProtobufCMessageDescriptor *desc, const char *text) {
        _cleanup_free_ char *error = NULL;
        ProtobufCMessage *m = NULL;
        int r;

        r = pm_json_parse_message(text, strlen(text), desc, &m, &error);
        if (r < 0)
                fail_msg("parsing %s failed: %s", text, strempty(error));
        assert_non_null(m);
        assert_true(protobuf_c_message_check(m));
        return m;
}

/* Parses size bytes of text; the test fails unless that is refused with an
 * error that holds want. */
static void assert_rejected_n(const ProtobufCMessageDescriptor *desc, const char *text, size_t size, const char *want) {
        _cleanup_free_ char *error = NULL;
        ProtobufCMessage *m = NULL;
        int r;

        r = pm_json_parse_message(text, size, desc, &m, &error);
        if (r >= 0)
                fail_msg("%s was accepted", text);
        assert_int_equal(r, -EINVAL);
        assert_null(m);
        assert_non_null(error);
        if (!strstr(error, want))
                fail_msg("error \"%s\" does not hold \"%s\"", error, want);
}

static void assert_rejected(const ProtobufCMessageDescriptor *desc, const char *text, const char *want) {
        assert_rejected_n(desc, text, strlen(text), want);
}

/* The JSON object for m, compared with the JSON text want (key order aside). */
static void assert_json_equal(const ProtobufCMessage *m, const char *want) {
        _cleanup_(json_object_putp) json_object *got = NULL, *expected = NULL;

        got = pm_message_to_json(m);
        assert_non_null(got);
        expected = json_tokener_parse(want);
        assert_non_null(expected);
        if (!json_object_equal(got, expected))
                fail_msg("got %s\nwant %s", json_object_to_json_string(got), json_object_to_json_string(expected));
}

/* Round trips m through JSON text and back. */
static ProtobufCMessage *round_trip(const ProtobufCMessage *m) {
        _cleanup_(json_object_putp) json_object *obj = NULL;

        obj = pm_message_to_json(m);
        assert_non_null(obj);
        return parse_ok(m->descriptor, json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
}

static const char *map_get(ProtobufCMessage **entries, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++) {
                const Podmutator__V1__AppSpec__EnvEntry *e = (const void *) entries[i];
                if (streq(e->key, key))
                        return e->value;
        }
        return NULL;
}

#define FULL_APP_SPEC                                                                                              \
        "{\"name\":\"web\",\"namespace\":\"prod\",\"argv\":[\"/bin/httpd\",\"-f\",\"hé llo\"],"                  \
        "\"env\":{\"PATH\":\"/usr/bin:/bin\",\"LANG\":\"C.UTF-8\"},\"working_dir\":\"/srv\",\"user\":\"www\","  \
        "\"group\":\"www\",\"rootfs\":\"/apps/web\",\"labels\":{\"tier\":\"front\"},"                             \
        "\"annotations\":{\"note\":\"x=y\"},\"restart\":\"on-failure\",\"stop_signal\":\"SIGINT\","              \
        "\"stop_timeout_seconds\":30,\"profile\":\"privileged\","                                                  \
        "\"resources\":{\"memory_max\":52428800,\"cpu_millis\":1500,\"tasks_max\":64},"                          \
        "\"mounts\":[{\"source\":\"/data\",\"target\":\"/mnt\",\"read_only\":true}],"                          \
        "\"network\":{\"mode\":\"netns\",\"netns_path\":\"/run/netns/blue\"},\"capabilities\":[\"CAP_CHOWN\"]," \
        "\"no_new_privileges\":true,\"rlimits\":[{\"type\":\"nofile\",\"soft\":1024,\"hard\":4096}],"        \
        "\"read_only_rootfs\":true,\"hostname\":\"web\","                                                           \
        "\"logging\":{\"format\":\"cri\",\"max_size\":1048576,\"max_files\":2}}"

static void test_app_spec_round_trips_through_json(void **state) {
        Podmutator__V1__AppSpec *spec, *again;

        spec = (Podmutator__V1__AppSpec *) parse_ok(&podmutator__v1__app_spec__descriptor, FULL_APP_SPEC);
        assert_string_equal(spec->name, "web");
        assert_string_equal(spec->namespace_, "prod");
        assert_int_equal(spec->n_argv, 3);
        assert_string_equal(spec->argv[0], "/bin/httpd");
        assert_string_equal(spec->argv[2], "hé llo");
        assert_int_equal(spec->n_env, 2);
        assert_string_equal(map_get((ProtobufCMessage **) spec->env, spec->n_env, "PATH"), "/usr/bin:/bin");
        assert_string_equal(map_get((ProtobufCMessage **) spec->env, spec->n_env, "LANG"), "C.UTF-8");
        assert_string_equal(map_get((ProtobufCMessage **) spec->labels, spec->n_labels, "tier"), "front");
        assert_string_equal(map_get((ProtobufCMessage **) spec->annotations, spec->n_annotations, "note"), "x=y");
        assert_int_equal(spec->restart, PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ON_FAILURE);
        assert_int_equal(spec->stop_timeout_seconds, 30);

        assert_json_equal(&spec->base, FULL_APP_SPEC);
        again = (Podmutator__V1__AppSpec *) round_trip(&spec->base);
        assert_json_equal(&again->base, FULL_APP_SPEC);

        protobuf_c_message_free_unpacked(&again->base, NULL);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
}

static void test_parsed_message_packs_and_unpacks_on_the_wire(void **state) {
        ProtobufCMessage *spec, *unpacked;
        size_t size;
        uint8_t *buf;

        spec = parse_ok(&podmutator__v1__app_spec__descriptor, FULL_APP_SPEC);
        size = protobuf_c_message_get_packed_size(spec);
        buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(protobuf_c_message_pack(spec, buf), size);
        unpacked = protobuf_c_message_unpack(&podmutator__v1__app_spec__descriptor, NULL, size, buf);
        assert_non_null(unpacked);
        assert_json_equal(unpacked, FULL_APP_SPEC);

        protobuf_c_message_free_unpacked(unpacked, NULL);
        protobuf_c_message_free_unpacked(spec, NULL);
        free(buf);
}

static void test_pod_manifest_reads_nested_apps(void **state) {
        Podmutator__V1__PodManifest *m;

        m = (Podmutator__V1__PodManifest *) parse_ok(
                &podmutator__v1__pod_manifest__descriptor,
                "{\"name\":\"pod1\",\"apps\":[{\"name\":\"db\",\"argv\":[\"/bin/db\"],\"restart\":\"always\"},"
                "{\"name\":\"web\",\"argv\":[\"/bin/web\",\"--port=80\"],\"env\":{\"PORT\":\"80\"}}]}");
        assert_string_equal(m->name, "pod1");
        assert_int_equal(m->n_apps, 2);
        assert_string_equal(m->apps[0]->name, "db");
        assert_int_equal(m->apps[0]->restart, PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS);
        assert_int_equal(m->apps[0]->n_env, 0);
        assert_string_equal(m->apps[1]->name, "web");
        assert_int_equal(m->apps[1]->n_argv, 2);
        assert_string_equal(m->apps[1]->argv[1], "--port=80");
        assert_string_equal(m->apps[1]->env[0]->key, "PORT");
        assert_string_equal(m->apps[1]->env[0]->value, "80");
        assert_int_equal(m->apps[1]->restart, PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO);
        protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void test_null_and_missing_fields_keep_defaults(void **state) {
        Podmutator__V1__AppSpec *spec;

        spec = (Podmutator__V1__AppSpec *) parse_ok(
                &podmutator__v1__app_spec__descriptor,
                "{\"name\":null,\"argv\":null,\"env\":null,\"restart\":null,\"stop_timeout_seconds\":null}");
        assert_string_equal(spec->name, "");
        assert_ptr_equal(spec->user, protobuf_c_empty_string);
        assert_int_equal(spec->n_argv, 0);
        assert_int_equal(spec->n_env, 0);
        assert_int_equal(spec->restart, PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO);
        assert_int_equal(spec->stop_timeout_seconds, 0);
        protobuf_c_message_free_unpacked(&spec->base, NULL);
}

static void test_output_writes_defaults_empty_arrays_and_maps(void **state) {
        Podmutator__V1__AppSpec spec = PODMUTATOR__V1__APP_SPEC__INIT;

        assert_json_equal(&spec.base,
                          "{\"name\":\"\",\"namespace\":\"\",\"argv\":[],\"env\":{},\"working_dir\":\"\",\"user\":\"\","
                          "\"group\":\"\",\"rootfs\":\"\",\"labels\":{},\"annotations\":{},\"restart\":\"no\","
                          "\"stop_signal\":\"\",\"stop_timeout_seconds\":0,\"profile\":\"unprivileged\","
                          "\"resources\":null,\"mounts\":[],\"network\":null,\"capabilities\":[],"
                          "\"no_new_privileges\":false,\"rlimits\":[],\"read_only_rootfs\":false,\"hostname\":\"\","
                          "\"logging\":null}");
}

static void test_app_status_output_has_exactly_the_proto_keys(void **state) {
        static const char *const keys[] = { "id",          "name",       "namespace",  "state",         "exit_code",
                                            "reason",      "created_at", "started_at", "finished_at",   "pid",
                                            "restart_count", "labels",   "annotations", "unit",         "signal" };
        Podmutator__V1__AppStatus st = PODMUTATOR__V1__APP_STATUS__INIT;
        _cleanup_(json_object_putp) json_object *obj = NULL;
        size_t i = 0;

        st.id = (char *) "0123abcd";
        st.name = (char *) "web";
        st.state = PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING;
        st.exit_code = -1;
        st.pid = 4242;

        obj = pm_message_to_json(&st.base);
        assert_non_null(obj);
        assert_int_equal(json_object_object_length(obj), ELEMENTSOF(keys));
        json_object_object_foreach(obj, key, val) {
                assert_string_equal(key, keys[i++]);
                (void) val;
        }
        assert_string_equal(json_object_get_string(json_object_object_get(obj, "state")), "running");
        assert_int_equal(json_object_get_int(json_object_object_get(obj, "exit_code")), -1);
        assert_int_equal(json_object_get_int(json_object_object_get(obj, "pid")), 4242);
        assert_string_equal(json_object_get_string(json_object_object_get(obj, "id")), "0123abcd");
        assert_true(json_object_is_type(json_object_object_get(obj, "labels"), json_type_object));
}

static void test_unknown_enum_number_is_written_as_a_number(void **state) {
        Podmutator__V1__AppStatus st = PODMUTATOR__V1__APP_STATUS__INIT;
        _cleanup_(json_object_putp) json_object *obj = NULL;
        json_object *v;

        st.state = 42;
        obj = pm_message_to_json(&st.base);
        assert_non_null(obj);
        v = json_object_object_get(obj, "state");
        assert_true(json_object_is_type(v, json_type_int));
        assert_int_equal(json_object_get_int(v), 42);
}

static void test_int64_nanosecond_timestamps_survive_exactly(void **state) {
        Podmutator__V1__AppStatus st = PODMUTATOR__V1__APP_STATUS__INIT, *back;
        _cleanup_(json_object_putp) json_object *obj = NULL;
        const char *text;

        st.created_at = INT64_C(1700000000123456789);
        st.started_at = INT64_MAX;
        st.finished_at = INT64_MIN;
        obj = pm_message_to_json(&st.base);
        assert_non_null(obj);
        text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
        assert_non_null(strstr(text, "\"created_at\":1700000000123456789"));
        assert_non_null(strstr(text, "\"started_at\":9223372036854775807"));
        assert_non_null(strstr(text, "\"finished_at\":-9223372036854775808"));

        back = (Podmutator__V1__AppStatus *) parse_ok(&podmutator__v1__app_status__descriptor, text);
        assert_true(back->created_at == INT64_C(1700000000123456789));
        assert_true(back->started_at == INT64_MAX);
        assert_true(back->finished_at == INT64_MIN);
        assert_int_equal(back->state, PODMUTATOR__V1__APP_STATE__APP_STATE_UNKNOWN);
        protobuf_c_message_free_unpacked(&back->base, NULL);
}

static void test_uint64_keeps_full_range_and_rejects_beyond(void **state) {
        Podmutator__V1__Envelope *env;

        env = (Podmutator__V1__Envelope *) parse_ok(&podmutator__v1__envelope__descriptor,
                                                   "{\"call_id\":18446744073709551615}");
        assert_true(env->call_id == UINT64_MAX);
        assert_json_equal(&env->base, "{\"call_id\":18446744073709551615}");
        protobuf_c_message_free_unpacked(&env->base, NULL);

        assert_rejected(&podmutator__v1__envelope__descriptor, "{\"call_id\":18446744073709551616}",
                        "integer 18446744073709551616 at offset 11 is out of range");
        assert_rejected(&podmutator__v1__envelope__descriptor, "{\"call_id\":-1}",
                        "call_id: -1 is out of range [0, 18446744073709551615]");
        assert_rejected(&podmutator__v1__app_status__descriptor, "{\"created_at\":9223372036854775808}",
                        "created_at: 9223372036854775808 is out of range");
        assert_rejected(&podmutator__v1__app_status__descriptor, "{\"created_at\":-9223372036854775809}",
                        "integer -9223372036854775809 at offset 14 is out of range");
}

static void test_enum_names_strip_the_type_prefix(void **state) {
        char buf[64];
        int v = -1;

        assert_string_equal(pm_enum_to_name(&podmutator__v1__restart_policy__descriptor,
                                            PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ON_FAILURE, buf, sizeof buf),
                            "on-failure");
        assert_string_equal(pm_enum_to_name(&podmutator__v1__app_state__descriptor,
                                            PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING, buf, sizeof buf),
                            "running");
        assert_string_equal(pm_enum_to_name(&podmutator__v1__code__descriptor, PODMUTATOR__V1__CODE__CODE_NOT_FOUND,
                                            buf, sizeof buf),
                            "not-found");
        assert_string_equal(pm_enum_to_name(&podmutator__v1__code__descriptor, PODMUTATOR__V1__CODE__CODE_OK, buf,
                                            sizeof buf),
                            "ok");
        /* not one of the enum's values, and a buffer too small */
        assert_null(pm_enum_to_name(&podmutator__v1__code__descriptor, 2, buf, sizeof buf));
        assert_null(pm_enum_to_name(&podmutator__v1__restart_policy__descriptor, 1, buf, 10));
        assert_non_null(pm_enum_to_name(&podmutator__v1__restart_policy__descriptor, 1, buf, 11));

        assert_int_equal(pm_enum_from_name(&podmutator__v1__code__descriptor, "not-found", &v), 0);
        assert_int_equal(v, PODMUTATOR__V1__CODE__CODE_NOT_FOUND);
        assert_int_equal(pm_enum_from_name(&podmutator__v1__code__descriptor, "CODE_INVALID_ARGUMENT", &v), 0);
        assert_int_equal(v, PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT);
        assert_int_equal(pm_enum_from_name(&podmutator__v1__app_state__descriptor, "exited", &v), 0);
        assert_int_equal(v, PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
        v = -1;
        assert_int_equal(pm_enum_from_name(&podmutator__v1__code__descriptor, "NOT_FOUND", &v), -EINVAL);
        assert_int_equal(pm_enum_from_name(&podmutator__v1__code__descriptor, "not_found", &v), -EINVAL);
        assert_int_equal(pm_enum_from_name(&podmutator__v1__app_state__descriptor, "Running", &v), -EINVAL);
        assert_int_equal(pm_enum_from_name(&podmutator__v1__app_state__descriptor, "", &v), -EINVAL);
        assert_int_equal(v, -1);
}

/* Enum types whose names hold an acronym or a digit, to check the prefix rule. */
static void test_enum_prefix_splits_acronyms_and_digits(void **state) {
        static const ProtobufCEnumValue http_values[] = {
                { "HTTP_CODE_OK", "HTTP_CODE_OK", 1 },
                { "HTTP_CODE_NOT_FOUND", "HTTP_CODE_NOT_FOUND", 2 },
        };
        static const ProtobufCIntRange http_ranges[] = { { 1, 0 }, { 0, 2 } };
        static const ProtobufCEnumValue ip_values[] = { { "IPV6_MODE_DUAL_STACK", "IPV6_MODE_DUAL_STACK", 0 } };
        const ProtobufCEnumDescriptor http = {
                .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC, .name = "t.HTTPCode", .short_name = "HTTPCode",
                .n_values = 2, .values = http_values, .n_value_ranges = 1, .value_ranges = http_ranges,
        };
        const ProtobufCEnumDescriptor ip = {
                .magic = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC, .name = "t.Ipv6Mode", .short_name = "Ipv6Mode",
                .n_values = 1, .values = ip_values,
        };
        char buf[64];
        int v = -1;

        assert_string_equal(pm_enum_to_name(&http, 2, buf, sizeof buf), "not-found");
        assert_string_equal(pm_enum_to_name(&http, 1, buf, sizeof buf), "ok");
        assert_null(pm_enum_to_name(&http, 3, buf, sizeof buf));
        assert_int_equal(pm_enum_from_name(&http, "not-found", &v), 0);
        assert_int_equal(v, 2);
        assert_int_equal(pm_enum_from_name(&ip, "dual-stack", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(pm_enum_from_name(&ip, "ipv6-mode-dual-stack", &v), -EINVAL);
}

static void test_enum_field_accepts_short_and_full_names_only(void **state) {
        Podmutator__V1__ListRequest *req;

        req = (Podmutator__V1__ListRequest *) parse_ok(&podmutator__v1__list_request__descriptor,
                                                       "{\"states\":[\"running\",\"APP_STATE_EXITED\"]}");
        assert_int_equal(req->n_states, 2);
        assert_int_equal(req->states[0], PODMUTATOR__V1__APP_STATE__APP_STATE_RUNNING);
        assert_int_equal(req->states[1], PODMUTATOR__V1__APP_STATE__APP_STATE_EXITED);
        assert_json_equal(&req->base, "{\"namespace\":\"\",\"states\":[\"running\",\"exited\"],\"labels\":{}}");
        protobuf_c_message_free_unpacked(&req->base, NULL);

        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"restart\":\"sometimes\"}",
                        "restart: unknown value \"sometimes\" (expected one of: no, on-failure, always)");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"restart\":1}",
                        "restart: expected a string, got number");
        assert_rejected(&podmutator__v1__list_request__descriptor, "{\"states\":[\"running\",\"asleep\"]}",
                        "states[1]: unknown value \"asleep\"");
}

static void test_stop_request_oneof_set_and_unset(void **state) {
        Podmutator__V1__StopRequest *req, init = PODMUTATOR__V1__STOP_REQUEST__INIT;

        req = (Podmutator__V1__StopRequest *) parse_ok(&podmutator__v1__stop_request__descriptor,
                                                       "{\"ref\":{\"app\":\"web\"}}");
        assert_int_equal(req->grace_case, PODMUTATOR__V1__STOP_REQUEST__GRACE__NOT_SET);
        assert_string_equal(req->ref->app, "web");
        assert_json_equal(&req->base, "{\"ref\":{\"app\":\"web\",\"namespace\":\"\"}}");
        protobuf_c_message_free_unpacked(&req->base, NULL);

        /* set to 0 is not the same as unset: 0 kills at once */
        req = (Podmutator__V1__StopRequest *) parse_ok(&podmutator__v1__stop_request__descriptor,
                                                       "{\"ref\":{\"app\":\"web\"},\"timeout_seconds\":0}");
        assert_int_equal(req->grace_case, PODMUTATOR__V1__STOP_REQUEST__GRACE_TIMEOUT_SECONDS);
        assert_int_equal(req->timeout_seconds, 0);
        assert_json_equal(&req->base, "{\"ref\":{\"app\":\"web\",\"namespace\":\"\"},\"timeout_seconds\":0}");
        protobuf_c_message_free_unpacked(&req->base, NULL);

        req = (Podmutator__V1__StopRequest *) parse_ok(&podmutator__v1__stop_request__descriptor,
                                                       "{\"timeout_seconds\":null}");
        assert_int_equal(req->grace_case, PODMUTATOR__V1__STOP_REQUEST__GRACE__NOT_SET);
        protobuf_c_message_free_unpacked(&req->base, NULL);

        /* an unset submessage is written as null */
        assert_json_equal(&init.base, "{\"ref\":null}");
}

static void test_oneof_rejects_two_members(void **state) {
        Podmutator__V1__Envelope *env;

        env = (Podmutator__V1__Envelope *) parse_ok(
                &podmutator__v1__envelope__descriptor,
                "{\"call_id\":7,\"request\":{\"hello\":{\"protocol_version\":1,\"client\":\"pmctl\"}}}");
        assert_int_equal(env->body_case, PODMUTATOR__V1__ENVELOPE__BODY_REQUEST);
        assert_int_equal(env->request->call_case, PODMUTATOR__V1__REQUEST__CALL_HELLO);
        assert_string_equal(env->request->hello->client, "pmctl");
        assert_json_equal(&env->base, "{\"call_id\":7,\"request\":{\"hello\":{\"protocol_version\":1,"
                                      "\"client\":\"pmctl\"}}}");
        protobuf_c_message_free_unpacked(&env->base, NULL);

        assert_rejected(&podmutator__v1__envelope__descriptor,
                        "{\"request\":{\"hello\":{\"client\":\"a\"},\"start\":{\"ref\":{\"app\":\"x\"}}}}",
                        "request.start: only one of hello and start may be set");
}

static void test_map_string_uint32_is_an_object_of_integers(void **state) {
        Podmutator__V1__InfoResponse *info;

        info = (Podmutator__V1__InfoResponse *) parse_ok(&podmutator__v1__info_response__descriptor,
                                                         "{\"apps\":4,\"apps_by_state\":{\"running\":3,\"exited\":1}}");
        assert_int_equal(info->n_apps_by_state, 2);
        assert_string_equal(info->apps_by_state[0]->key, "running");
        assert_int_equal(info->apps_by_state[0]->value, 3);
        assert_string_equal(info->apps_by_state[1]->key, "exited");
        assert_int_equal(info->apps_by_state[1]->value, 1);
        assert_json_equal(&info->base, "{\"pod_name\":\"\",\"agent_version\":\"\",\"protocol_version\":0,"
                                       "\"systemd_version\":\"\",\"started_at\":0,\"uptime_ns\":0,\"apps\":4,"
                                       "\"apps_by_state\":{\"running\":3,\"exited\":1},"
                                       "\"cgroup_mode\":\"\",\"limits_enforced\":false}");
        protobuf_c_message_free_unpacked(&info->base, NULL);

        assert_rejected(&podmutator__v1__info_response__descriptor, "{\"apps_by_state\":{\"running\":-1}}",
                        "apps_by_state.running: -1 is out of range [0, 4294967295]");
        assert_rejected(&podmutator__v1__info_response__descriptor, "{\"apps_by_state\":{\"running\":\"3\"}}",
                        "apps_by_state.running: expected an integer, got string");
        assert_rejected(&podmutator__v1__info_response__descriptor, "{\"apps_by_state\":{\"running\":null}}",
                        "apps_by_state.running: expected an integer, got null");
}

static void test_bytes_are_base64(void **state) {
        Podmutator__V1__StreamData d = PODMUTATOR__V1__STREAM_DATA__INIT, *back;
        uint8_t all[256];

        for (size_t i = 0; i < sizeof all; i++)
                all[i] = (uint8_t) i;
        d.data = (ProtobufCBinaryData) { .len = sizeof all, .data = all };
        back = (Podmutator__V1__StreamData *) round_trip(&d.base);
        assert_int_equal(back->data.len, sizeof all);
        assert_memory_equal(back->data.data, all, sizeof all);
        protobuf_c_message_free_unpacked(&back->base, NULL);

        back = (Podmutator__V1__StreamData *) parse_ok(&podmutator__v1__stream_data__descriptor,
                                                       "{\"fd\":1,\"data\":\"AAEC/w==\"}");
        assert_int_equal(back->data.len, 4);
        assert_memory_equal(back->data.data, "\x00\x01\x02\xff", 4);
        assert_json_equal(&back->base, "{\"fd\":1,\"data\":\"AAEC/w==\"}");
        protobuf_c_message_free_unpacked(&back->base, NULL);

        back = (Podmutator__V1__StreamData *) parse_ok(&podmutator__v1__stream_data__descriptor, "{\"data\":\"aGk\"}");
        assert_int_equal(back->data.len, 2);
        assert_memory_equal(back->data.data, "hi", 2);
        protobuf_c_message_free_unpacked(&back->base, NULL);

        back = (Podmutator__V1__StreamData *) parse_ok(&podmutator__v1__stream_data__descriptor, "{\"data\":\"\"}");
        assert_int_equal(back->data.len, 0);
        assert_json_equal(&back->base, "{\"fd\":0,\"data\":\"\"}");
        protobuf_c_message_free_unpacked(&back->base, NULL);

        assert_rejected(&podmutator__v1__stream_data__descriptor, "{\"data\":\"A\"}", "data: not valid base64");
        assert_rejected(&podmutator__v1__stream_data__descriptor, "{\"data\":\"AA=A\"}", "data: not valid base64");
        assert_rejected(&podmutator__v1__stream_data__descriptor, "{\"data\":\"AAE=\\n\"}", "data: not valid base64");
        assert_rejected(&podmutator__v1__stream_data__descriptor, "{\"data\":\"AB==\"}", "data: not valid base64");
}

static void test_rejects_unknown_fields_with_their_path(void **state) {
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":\"a\",\"bogus\":1}", "bogus: unknown field");
        assert_rejected(&podmutator__v1__inject_request__descriptor, "{\"spec\":{\"bogus\":1}}",
                        "spec.bogus: unknown field");
        assert_rejected(&podmutator__v1__pod_manifest__descriptor, "{\"apps\":[{},{\"argv\":[],\"Name\":\"x\"}]}",
                        "apps[1].Name: unknown field");
}

static void test_rejects_wrong_json_types_with_their_path(void **state) {
        assert_rejected(&podmutator__v1__pod_manifest__descriptor,
                        "{\"apps\":[{\"env\":{\"PATH\":\"/bin\"}},{\"argv\":[\"/bin/sh\"],\"env\":{\"PATH\":1}}]}",
                        "apps[1].env.PATH: expected a string, got number");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"argv\":\"/bin/sh\"}",
                        "argv: expected an array, got string");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"argv\":[\"/bin/sh\",null]}",
                        "argv[1]: expected a string, got null");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"env\":[\"A=1\"]}",
                        "env: expected an object, got array");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":true}", "name: expected a string, got boolean");
        assert_rejected(&podmutator__v1__inject_request__descriptor, "{\"start\":\"yes\"}",
                        "start: expected a boolean, got string");
        assert_rejected(&podmutator__v1__inject_request__descriptor, "{\"spec\":[]}",
                        "spec: expected an object, got array");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":\"30\"}",
                        "stop_timeout_seconds: expected an integer, got string");
}

static void test_rejects_integers_out_of_range_or_fractional(void **state) {
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":-1}",
                        "stop_timeout_seconds: -1 is out of range [0, 4294967295]");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":4294967296}",
                        "stop_timeout_seconds: 4294967296 is out of range");
        assert_rejected(&podmutator__v1__app_status__descriptor, "{\"exit_code\":2147483648}",
                        "exit_code: 2147483648 is out of range [-2147483648, 2147483647]");
        assert_rejected(&podmutator__v1__app_status__descriptor, "{\"exit_code\":-2147483649}",
                        "exit_code: -2147483649 is out of range");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":1.5}",
                        "stop_timeout_seconds: expected an integer, got 1.5");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":1e3}",
                        "stop_timeout_seconds: expected an integer, got 1e3");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"stop_timeout_seconds\":NaN}",
                        "stop_timeout_seconds: expected an integer");
}

static void test_integer_limits_are_accepted(void **state) {
        Podmutator__V1__AppStatus *st;

        st = (Podmutator__V1__AppStatus *) parse_ok(&podmutator__v1__app_status__descriptor,
                                                    "{\"exit_code\":-2147483648,\"pid\":4294967295,"
                                                    "\"restart_count\":0}");
        assert_int_equal(st->exit_code, INT32_MIN);
        assert_true(st->pid == UINT32_MAX);
        protobuf_c_message_free_unpacked(&st->base, NULL);
}

static void test_rejects_bad_strings(void **state) {
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":\"a\xff\"}",
                        "name: string is not valid UTF-8");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"argv\":[\"\xc0\xaf\"]}",
                        "argv[0]: string is not valid UTF-8");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":\"a\\u0000b\"}",
                        "name: string holds a NUL character");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"env\":{\"A\":\"x\\u0000\"}}",
                        "env.A: string holds a NUL character");
        /* json-c would cut the key to "PATH" */
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"env\":{\"PATH\\u0000x\":\"/bin\"}}",
                        "holds a NUL character");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"env\":{\"\xff\":\"x\"}}",
                        "env.<invalid UTF-8>: key is not valid UTF-8");
}

static void test_escaped_backslash_before_u0000_is_not_a_nul(void **state) {
        Podmutator__V1__AppSpec *spec;

        spec = (Podmutator__V1__AppSpec *) parse_ok(&podmutator__v1__app_spec__descriptor,
                                                    "{\"env\":{\"A\\\\u0000\":\"\\\\u0000\"}}");
        assert_string_equal(spec->env[0]->key, "A\\u0000");
        assert_string_equal(spec->env[0]->value, "\\u0000");
        protobuf_c_message_free_unpacked(&spec->base, NULL);
}

static void test_rejects_duplicate_keys(void **state) {
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"env\":{\"A\":\"1\",\"B\":\"2\",\"A\":\"3\"}}",
                        "env: duplicate key");
        assert_rejected(&podmutator__v1__pod_manifest__descriptor,
                        "{\"apps\":[{\"labels\":{}},{\"labels\":{\"a\":\"1\",\"a\":\"1\"}}]}",
                        "apps[1].labels: duplicate key");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":\"a\",\"name\":\"b\"}", "duplicate key");
}

static void test_rejects_nesting_deeper_than_32(void **state) {
        char text[256] = "{\"argv\":";
        size_t n = strlen(text);

        for (int i = 0; i < 40; i++)
                text[n++] = '[';
        for (int i = 0; i < 40; i++)
                text[n++] = ']';
        text[n++] = '}';
        assert_rejected_n(&podmutator__v1__app_spec__descriptor, text, n, "nested deeper than 32");
}

static void test_rejects_anything_but_one_json_object(void **state) {
        assert_rejected(&podmutator__v1__app_spec__descriptor, "[]", "expected an object, got array");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "null", "expected an object, got null");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "42", "expected an object, got number");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "\"x\"", "expected an object, got string");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "", "invalid JSON");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":", "invalid JSON");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{\"name\":'a'}", "invalid JSON");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{} {}", "invalid JSON at offset 3");
        assert_rejected(&podmutator__v1__app_spec__descriptor, "{}x", "invalid JSON at offset 2");
        assert_rejected_n(&podmutator__v1__app_spec__descriptor, "{}\0{\"name\":1}", 13, "trailing characters at offset 2");
        assert_rejected_n(&podmutator__v1__app_spec__descriptor, "{\"name\":\0\"a\"}", 12, "invalid JSON");
}

static void test_accepts_surrounding_whitespace(void **state) {
        ProtobufCMessage *m;

        m = parse_ok(&podmutator__v1__app_spec__descriptor, " \n{\"name\" : \"a\"}\n\t ");
        assert_string_equal(((Podmutator__V1__AppSpec *) m)->name, "a");
        protobuf_c_message_free_unpacked(m, NULL);
}

static void test_text_need_not_be_nul_terminated(void **state) {
        const char text[] = { '{', '"', 'n', 'a', 'm', 'e', '"', ':', '"', 'a', '"', '}' };
        _cleanup_free_ char *error = NULL;
        ProtobufCMessage *m = NULL;

        assert_int_equal(pm_json_parse_message(text, sizeof text, &podmutator__v1__app_spec__descriptor, &m, &error), 0);
        protobuf_c_message_free_unpacked(m, NULL);
        /* a number that runs to the end of the buffer */
        assert_int_equal(pm_json_parse_message("123", 2, &podmutator__v1__app_spec__descriptor, &m, &error), -EINVAL);
        assert_string_equal(error, "expected an object, got number");
}

static void test_json_to_message_fills_an_initialised_message(void **state) {
        Podmutator__V1__AppRef ref = PODMUTATOR__V1__APP_REF__INIT;
        _cleanup_(json_object_putp) json_object *obj = NULL, *arr = NULL;
        _cleanup_free_ char *error = NULL;

        obj = json_tokener_parse("{\"app\":\"web\",\"namespace\":\"prod\"}");
        assert_int_equal(pm_json_to_message(obj, &ref.base, &error), 0);
        assert_null(error);
        assert_string_equal(ref.app, "web");
        assert_string_equal(ref.namespace_, "prod");
        free(ref.app);
        free(ref.namespace_);

        arr = json_tokener_parse("[1]");
        ref = (Podmutator__V1__AppRef) PODMUTATOR__V1__APP_REF__INIT;
        assert_int_equal(pm_json_to_message(arr, &ref.base, &error), -EINVAL);
        assert_string_equal(error, "expected an object, got array");
        assert_int_equal(pm_json_to_message(NULL, &ref.base, NULL), -EINVAL);
}

/* Every prefix and many one-byte changes of a valid manifest: parsing must
 * either succeed or fail with a message, and never crash or leak (ASan). */
static void test_mangled_input_never_crashes(void **state) {
        static const char good[] = "{\"name\":\"p\",\"apps\":[{\"name\":\"a\",\"argv\":[\"/bin/x\",\"-1\"],"
                                   "\"env\":{\"K\":\"v\\u00e9\"},\"restart\":\"always\",\"stop_timeout_seconds\":5}]}";
        static const char bytes[] = { '"', '{', '}', '[', ']', '\\', ':', ',', '1', '-', 'e', '.', ' ', 0, '\xff', 'u' };
        char text[sizeof good];
        size_t len = sizeof good - 1;

        for (size_t n = 0; n <= len; n++) {
                _cleanup_free_ char *error = NULL;
                ProtobufCMessage *m = NULL;
                int r = pm_json_parse_message(good, n, &podmutator__v1__pod_manifest__descriptor, &m, &error);

                assert_true(n == len ? r == 0 : r == -EINVAL);
                assert_true(r == 0 ? !error : !!error);
                protobuf_c_message_free_unpacked(m, NULL);
        }
        for (size_t i = 0; i < len; i++)
                for (size_t b = 0; b < sizeof bytes; b++) {
                        _cleanup_free_ char *error = NULL;
                        ProtobufCMessage *m = NULL;
                        int r;

                        memcpy(text, good, sizeof good);
                        text[i] = bytes[b];
                        r = pm_json_parse_message(text, len, &podmutator__v1__pod_manifest__descriptor, &m, &error);
                        assert_true(r == 0 || r == -EINVAL);
                        assert_true(r == 0 ? !error && m : error && !m);
                        protobuf_c_message_free_unpacked(m, NULL);
                }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_app_spec_round_trips_through_json),
                cmocka_unit_test(test_parsed_message_packs_and_unpacks_on_the_wire),
                cmocka_unit_test(test_pod_manifest_reads_nested_apps),
                cmocka_unit_test(test_null_and_missing_fields_keep_defaults),
                cmocka_unit_test(test_output_writes_defaults_empty_arrays_and_maps),
                cmocka_unit_test(test_app_status_output_has_exactly_the_proto_keys),
                cmocka_unit_test(test_unknown_enum_number_is_written_as_a_number),
                cmocka_unit_test(test_int64_nanosecond_timestamps_survive_exactly),
                cmocka_unit_test(test_uint64_keeps_full_range_and_rejects_beyond),
                cmocka_unit_test(test_enum_names_strip_the_type_prefix),
                cmocka_unit_test(test_enum_prefix_splits_acronyms_and_digits),
                cmocka_unit_test(test_enum_field_accepts_short_and_full_names_only),
                cmocka_unit_test(test_stop_request_oneof_set_and_unset),
                cmocka_unit_test(test_oneof_rejects_two_members),
                cmocka_unit_test(test_map_string_uint32_is_an_object_of_integers),
                cmocka_unit_test(test_bytes_are_base64),
                cmocka_unit_test(test_rejects_unknown_fields_with_their_path),
                cmocka_unit_test(test_rejects_wrong_json_types_with_their_path),
                cmocka_unit_test(test_rejects_integers_out_of_range_or_fractional),
                cmocka_unit_test(test_integer_limits_are_accepted),
                cmocka_unit_test(test_rejects_bad_strings),
                cmocka_unit_test(test_escaped_backslash_before_u0000_is_not_a_nul),
                cmocka_unit_test(test_rejects_duplicate_keys),
                cmocka_unit_test(test_rejects_nesting_deeper_than_32),
                cmocka_unit_test(test_rejects_anything_but_one_json_object),
                cmocka_unit_test(test_accepts_surrounding_whitespace),
                cmocka_unit_test(test_text_need_not_be_nul_terminated),
                cmocka_unit_test(test_json_to_message_fills_an_initialised_message),
                cmocka_unit_test(test_mangled_input_never_crashes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
