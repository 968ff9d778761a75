/* Unit tests for rpc/frame.c: the length-prefixed Envelope framing and the
 * reader that cuts a byte stream into envelopes within its limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "util.h"

typedef Podmutator__V1__Request Request;
typedef Podmutator__V1__HelloRequest HelloRequest;
typedef Podmutator__V1__StreamData StreamData;

static void reader_donep(PmFrameReader *r) { pm_frame_reader_done(r); }
#define _cleanup_reader_ _cleanup_(reader_donep)

/* A frame for an envelope that carries a Hello request from `client`. */
static uint8_t *hello_frame(uint64_t call_id, const char *client, size_t *ret_size) {
        HelloRequest hello = PODMUTATOR__V1__HELLO_REQUEST__INIT;
        Request req = PODMUTATOR__V1__REQUEST__INIT;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        uint8_t *buf = NULL;

        hello.protocol_version = PM_PROTOCOL_VERSION;
        hello.client = (char *) client;
        req.call_case = PODMUTATOR__V1__REQUEST__CALL_HELLO;
        req.hello = &hello;
        env.call_id = call_id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_REQUEST;
        env.request = &req;
        assert_int_equal(pm_frame_encode(&env, &buf, ret_size), 0);
        assert_non_null(buf);
        return buf;
}

/* A frame for an envelope that carries size bytes of stream data. */
static uint8_t *data_frame(uint64_t call_id, const uint8_t *data, size_t size, size_t *ret_size) {
        StreamData sd = PODMUTATOR__V1__STREAM_DATA__INIT;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        uint8_t *buf = NULL;

        sd.fd = 1;
        sd.data.data = (uint8_t *) data;
        sd.data.len = size;
        env.call_id = call_id;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_DATA;
        env.data = &sd;
        assert_int_equal(pm_frame_encode(&env, &buf, ret_size), 0);
        return buf;
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Takes the next envelope out of r; the test fails unless there is one and
 * it is the Hello of call_id from client. */
static void assert_next_hello(PmFrameReader *r, uint64_t call_id, const char *client) {
        _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;

        assert_int_equal(pm_frame_reader_next(r, &env), 1);
        assert_non_null(env);
        assert_int_equal(env->call_id, call_id);
        assert_int_equal(env->body_case, PODMUTATOR__V1__ENVELOPE__BODY_REQUEST);
        assert_int_equal(env->request->call_case, PODMUTATOR__V1__REQUEST__CALL_HELLO);
        assert_int_equal(env->request->hello->protocol_version, PM_PROTOCOL_VERSION);
        assert_string_equal(env->request->hello->client, client);
}

static void assert_needs_more(PmFrameReader *r) {
        PmEnvelope *env = NULL;

        assert_int_equal(pm_frame_reader_next(r, &env), 0);
        assert_null(env);
}

static void test_encode_prefixes_envelope_with_big_endian_length(void **state) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size = 0;

        frame = hello_frame(0x0102030405060708ull, "pmctl", &size);
        assert_true(size > PM_FRAME_HEADER_SIZE);
        assert_int_equal(be32(frame), size - PM_FRAME_HEADER_SIZE);

        /* The body alone is the Envelope, as protobuf-c reads it. */
        PmEnvelope *env = podmutator__v1__envelope__unpack(NULL, size - PM_FRAME_HEADER_SIZE,
                                                           frame + PM_FRAME_HEADER_SIZE);
        assert_non_null(env);
        assert_int_equal(env->call_id, 0x0102030405060708ull);
        assert_string_equal(env->request->hello->client, "pmctl");
        pm_envelope_free(env);
}

static void test_encode_writes_length_of_large_envelope_in_network_order(void **state) {
        /* A body over 64 KiB makes every byte of the length matter. */
        size_t n = 70000;
        _cleanup_free_ uint8_t *data = calloc(1, n);
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size = 0;

        assert_non_null(data);
        frame = data_frame(1, data, n, &size);
        assert_non_null(frame);
        assert_true(size > n);
        assert_int_equal(frame[0], 0);
        assert_int_equal(frame[1], (uint8_t) ((size - 4) >> 16));
        assert_int_equal(frame[2], (uint8_t) ((size - 4) >> 8));
        assert_int_equal(frame[3], (uint8_t) (size - 4));
}

static void test_encode_refuses_envelope_over_frame_max(void **state) {
        /* Encoding serves both directions: its limit is the larger one. */
        size_t n = PM_FRAME_MAX_TO_CLIENT + 1;
        _cleanup_free_ uint8_t *data = calloc(1, n);
        StreamData sd = PODMUTATOR__V1__STREAM_DATA__INIT;
        PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
        uint8_t *buf = (uint8_t *) "untouched";
        size_t size = 12345;

        assert_non_null(data);
        sd.data.data = data;
        sd.data.len = n;
        env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_DATA;
        env.data = &sd;
        assert_int_equal(pm_frame_encode(&env, &buf, &size), -EMSGSIZE);
        assert_string_equal((char *) buf, "untouched");
        assert_int_equal(size, 12345);
}

/* The zero-copy prefix of a data frame must give the very bytes the
 * general encoder gives, for any size of each varint. */
static void test_data_prefix_matches_the_encoder(void **state) {
        const uint64_t call_ids[] = { 0, 1, 127, 128, 300, 1ull << 40 };
        const uint32_t fds[] = { 0, 1, 2, 200 };
        const size_t sizes[] = { 0, 1, 127, 128, 16383, 16384, 300000 };
        size_t max = 300000;
        _cleanup_free_ uint8_t *buf = malloc(PM_FRAME_DATA_HEADROOM + max);
        assert_non_null(buf);
        for (size_t i = 0; i < max; i++)
                buf[PM_FRAME_DATA_HEADROOM + i] = (uint8_t) (i * 7);
        for (size_t a = 0; a < ELEMENTSOF(call_ids); a++)
                for (size_t b = 0; b < ELEMENTSOF(fds); b++)
                        for (size_t c = 0; c < ELEMENTSOF(sizes); c++) {
                                StreamData sd = PODMUTATOR__V1__STREAM_DATA__INIT;
                                PmEnvelope env = PODMUTATOR__V1__ENVELOPE__INIT;
                                sd.fd = fds[b];
                                sd.data.data = buf + PM_FRAME_DATA_HEADROOM;
                                sd.data.len = sizes[c];
                                env.call_id = call_ids[a];
                                env.body_case = PODMUTATOR__V1__ENVELOPE__BODY_DATA;
                                env.data = &sd;
                                _cleanup_free_ uint8_t *want = NULL;
                                size_t want_size;
                                assert_int_equal(pm_frame_encode(&env, &want, &want_size), 0);
                                uint8_t *start = pm_frame_data_prefix(buf + PM_FRAME_DATA_HEADROOM, call_ids[a],
                                                                      fds[b], sizes[c]);
                                assert_true(start >= buf);
                                size_t got_size = (size_t) (buf + PM_FRAME_DATA_HEADROOM + sizes[c] - start);
                                assert_int_equal(got_size, want_size);
                                assert_memory_equal(start, want, want_size);
                        }
}

static void test_reader_decodes_whole_frame(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        pm_frame_reader_init(&r, 0);
        assert_int_equal(r.max_frame, PM_FRAME_MAX);
        frame = hello_frame(7, "one", &size);
        assert_int_equal(pm_frame_reader_feed(&r, frame, size), 0);
        assert_next_hello(&r, 7, "one");
        assert_needs_more(&r);
}

static void test_reader_returns_nothing_before_any_bytes(void **state) {
        _cleanup_reader_ PmFrameReader r;

        pm_frame_reader_init(&r, 0);
        assert_needs_more(&r);
}

static void test_reader_decodes_frame_fed_one_byte_at_a_time(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        pm_frame_reader_init(&r, 0);
        frame = hello_frame(42, "byte-by-byte", &size);
        for (size_t i = 0; i + 1 < size; i++) {
                assert_int_equal(pm_frame_reader_feed(&r, frame + i, 1), 0);
                assert_needs_more(&r);
        }
        assert_int_equal(pm_frame_reader_feed(&r, frame + size - 1, 1), 0);
        assert_next_hello(&r, 42, "byte-by-byte");
        assert_needs_more(&r);
}

static void test_reader_waits_for_rest_of_split_frame(void **state) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        frame = hello_frame(3, "split", &size);
        /* Split inside the header, right after it, and inside the body. */
        size_t cuts[] = { 1, 3, PM_FRAME_HEADER_SIZE, PM_FRAME_HEADER_SIZE + 1, size - 1 };
        for (size_t i = 0; i < ELEMENTSOF(cuts); i++) {
                _cleanup_reader_ PmFrameReader r;

                pm_frame_reader_init(&r, 0);
                assert_int_equal(pm_frame_reader_feed(&r, frame, cuts[i]), 0);
                assert_needs_more(&r);
                assert_int_equal(pm_frame_reader_feed(&r, frame + cuts[i], size - cuts[i]), 0);
                assert_next_hello(&r, 3, "split");
                assert_needs_more(&r);
        }
}

static void test_reader_decodes_several_frames_from_one_feed(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *stream = NULL;
        size_t len = 0;
        const char *clients[] = { "first", "second", "", "fourth" };

        for (size_t i = 0; i < ELEMENTSOF(clients); i++) {
                _cleanup_free_ uint8_t *frame = NULL;
                size_t size;

                frame = hello_frame(i + 1, clients[i], &size);
                uint8_t *n = realloc(stream, len + size);
                assert_non_null(n);
                stream = n;
                memcpy(stream + len, frame, size);
                len += size;
        }

        pm_frame_reader_init(&r, 0);
        assert_int_equal(pm_frame_reader_feed(&r, stream, len), 0);
        for (size_t i = 0; i < ELEMENTSOF(clients); i++)
                assert_next_hello(&r, i + 1, clients[i]);
        assert_needs_more(&r);
}

static void test_reader_keeps_partial_second_frame_after_first(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *a = NULL, *b = NULL, *both = NULL;
        size_t na, nb;

        a = hello_frame(1, "a", &na);
        b = hello_frame(2, "bbbbbbbb", &nb);
        both = malloc(na + nb);
        assert_non_null(both);
        memcpy(both, a, na);
        memcpy(both + na, b, nb);

        pm_frame_reader_init(&r, 0);
        /* All of the first frame and the first half of the second. */
        assert_int_equal(pm_frame_reader_feed(&r, both, na + nb / 2), 0);
        assert_next_hello(&r, 1, "a");
        assert_needs_more(&r);
        assert_int_equal(pm_frame_reader_feed(&r, both + na + nb / 2, nb - nb / 2), 0);
        assert_next_hello(&r, 2, "bbbbbbbb");
        assert_needs_more(&r);
}

static void test_reader_accepts_zero_length_frame_as_empty_envelope(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
        const uint8_t empty[] = { 0, 0, 0, 0 };

        pm_frame_reader_init(&r, 0);
        assert_int_equal(pm_frame_reader_feed(&r, empty, sizeof(empty)), 0);
        assert_int_equal(pm_frame_reader_next(&r, &env), 1);
        assert_non_null(env);
        assert_int_equal(env->call_id, 0);
        assert_int_equal(env->body_case, PODMUTATOR__V1__ENVELOPE__BODY__NOT_SET);
        assert_needs_more(&r);
}

static void test_reader_rejects_oversize_header_before_buffering_body(void **state) {
        _cleanup_reader_ PmFrameReader r;
        const uint8_t header[] = { 0, 0, 0x04, 0x01 }; /* 1025 */
        PmEnvelope *env = NULL;

        pm_frame_reader_init(&r, 1024);
        /* The header alone is enough to refuse the frame. */
        assert_int_equal(pm_frame_reader_feed(&r, header, sizeof(header)), -EMSGSIZE);
        assert_true(r.len <= PM_FRAME_HEADER_SIZE);
        assert_true(r.cap <= 4096);
        assert_int_equal(pm_frame_reader_next(&r, &env), -EMSGSIZE);
        assert_null(env);
}

static void test_reader_rejects_header_over_default_limit(void **state) {
        const uint8_t headers[][4] = {
                { 0xff, 0xff, 0xff, 0xff },
                { 0x80, 0x00, 0x00, 0x00 },
                { (PM_FRAME_MAX + 1) >> 24, (PM_FRAME_MAX + 1) >> 16 & 0xff, (PM_FRAME_MAX + 1) >> 8 & 0xff,
                  (PM_FRAME_MAX + 1) & 0xff },
        };

        for (size_t i = 0; i < ELEMENTSOF(headers); i++) {
                _cleanup_reader_ PmFrameReader r;
                PmEnvelope *env = NULL;

                pm_frame_reader_init(&r, 0);
                assert_int_equal(pm_frame_reader_feed(&r, headers[i], 4), -EMSGSIZE);
                assert_int_equal(pm_frame_reader_next(&r, &env), -EMSGSIZE);
                assert_null(env);
        }
}

static void test_reader_rejects_oversize_header_that_follows_a_frame(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *frame = NULL, *stream = NULL;
        size_t size;
        PmEnvelope *env = NULL;

        frame = hello_frame(5, "ok", &size);
        stream = malloc(size + 4);
        assert_non_null(stream);
        memcpy(stream, frame, size);
        memcpy(stream + size, (const uint8_t[]){ 0x7f, 0xff, 0xff, 0xff }, 4);

        pm_frame_reader_init(&r, 0);
        /* The feed may refuse already, seeing the second header ... */
        int k = pm_frame_reader_feed(&r, stream, size + 4);
        assert_true(k == 0 || k == -EMSGSIZE);
        /* ... but the good frame still comes out; the stream stops at the bad one. */
        assert_next_hello(&r, 5, "ok");
        assert_int_equal(pm_frame_reader_next(&r, &env), -EMSGSIZE);
        assert_null(env);
}

static void test_reader_accepts_frame_of_exactly_max_frame(void **state) {
        uint8_t data[300];
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) i;
        frame = data_frame(9, data, sizeof(data), &size);
        size_t body = size - PM_FRAME_HEADER_SIZE;

        {
                _cleanup_reader_ PmFrameReader r;
                _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;

                pm_frame_reader_init(&r, body);
                assert_int_equal(pm_frame_reader_feed(&r, frame, size), 0);
                assert_int_equal(pm_frame_reader_next(&r, &env), 1);
                assert_int_equal(env->body_case, PODMUTATOR__V1__ENVELOPE__BODY_DATA);
                assert_int_equal(env->data->data.len, sizeof(data));
                assert_memory_equal(env->data->data.data, data, sizeof(data));
        }
        {
                _cleanup_reader_ PmFrameReader r;

                pm_frame_reader_init(&r, body - 1);
                assert_int_equal(pm_frame_reader_feed(&r, frame, size), -EMSGSIZE);
        }
}

static void test_reader_rejects_garbage_with_ebadmsg_and_moves_past_it(void **state) {
        /* Bodies that are not an Envelope: an overlong tag varint, a varint
         * cut short, a length-delimited field running past the end, field
         * number 0. */
        const struct {
                uint8_t bytes[16];
                size_t len;
        } bodies[] = {
                { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 11 },
                { { 0x08, 0x80 }, 2 },
                { { 0x12, 0x7f, 0x00 }, 3 },
                { { 0x00, 0x01 }, 2 },
        };
        _cleanup_free_ uint8_t *good = NULL;
        size_t ngood;

        good = hello_frame(11, "after", &ngood);
        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                _cleanup_reader_ PmFrameReader r;
                PmEnvelope *env = NULL;
                uint8_t header[4] = { 0, 0, 0, (uint8_t) bodies[i].len };

                pm_frame_reader_init(&r, 0);
                assert_int_equal(pm_frame_reader_feed(&r, header, 4), 0);
                assert_int_equal(pm_frame_reader_feed(&r, bodies[i].bytes, bodies[i].len), 0);
                assert_int_equal(pm_frame_reader_feed(&r, good, ngood), 0);
                assert_int_equal(pm_frame_reader_next(&r, &env), -EBADMSG);
                assert_null(env);
                assert_next_hello(&r, 11, "after");
                assert_needs_more(&r);
        }
}

static void test_reader_feed_of_zero_bytes_changes_nothing(void **state) {
        _cleanup_reader_ PmFrameReader r;
        const uint8_t nothing[1] = { 0 };

        pm_frame_reader_init(&r, 0);
        assert_int_equal(pm_frame_reader_feed(&r, nothing, 0), 0);
        assert_int_equal(r.len, 0);
        assert_needs_more(&r);
}

static void test_reader_accepts_many_small_frames_in_one_feed(void **state) {
        /* Each frame is well under the limit; together they are more than
         * twice the limit. Only a frame over the limit may be refused. */
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *stream = NULL;
        size_t len = 0;
        size_t n_frames = 16;

        for (size_t i = 0; i < n_frames; i++) {
                _cleanup_free_ uint8_t *frame = NULL;
                size_t size;

                frame = hello_frame(i, "small", &size);
                uint8_t *n = realloc(stream, len + size);
                assert_non_null(n);
                stream = n;
                memcpy(stream + len, frame, size);
                len += size;
        }

        pm_frame_reader_init(&r, 64);
        assert_true(len > 2 * (PM_FRAME_HEADER_SIZE + 64));
        assert_int_equal(pm_frame_reader_feed(&r, stream, len), 0);
        for (size_t i = 0; i < n_frames; i++)
                assert_next_hello(&r, i, "small");
        assert_needs_more(&r);
}

static void test_reader_gives_back_memory_after_large_frame(void **state) {
        _cleanup_reader_ PmFrameReader r;
        size_t n = 1024 * 1024;
        _cleanup_free_ uint8_t *data = malloc(n);
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
        size_t size;

        assert_non_null(data);
        memset(data, 0xa5, n);
        frame = data_frame(1, data, n, &size);
        pm_frame_reader_init(&r, 0);
        assert_int_equal(pm_frame_reader_feed(&r, frame, size), 0);
        assert_true(r.cap >= size);
        assert_int_equal(pm_frame_reader_next(&r, &env), 1);
        assert_int_equal(env->data->data.len, n);
        assert_memory_equal(env->data->data.data, data, n);
        /* An idle connection does not keep a megabyte. */
        assert_true(r.cap <= 4096);
        assert_int_equal(r.len, 0);
}

static void test_reader_preserves_every_byte_value_of_stream_data(void **state) {
        _cleanup_reader_ PmFrameReader r;
        _cleanup_free_ uint8_t *frame = NULL;
        _cleanup_(pm_envelope_freep) PmEnvelope *env = NULL;
        uint8_t data[256];
        size_t size;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (255 - i);
        frame = data_frame(77, data, sizeof(data), &size);
        pm_frame_reader_init(&r, 0);
        assert_int_equal(pm_frame_reader_feed(&r, frame, size), 0);
        assert_int_equal(pm_frame_reader_next(&r, &env), 1);
        assert_int_equal(env->call_id, 77);
        assert_int_equal(env->data->fd, 1);
        assert_int_equal(env->data->data.len, sizeof(data));
        assert_memory_equal(env->data->data.data, data, sizeof(data));
}

static void test_reader_done_leaves_reader_empty(void **state) {
        PmFrameReader r;
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size;

        pm_frame_reader_init(&r, 0);
        frame = hello_frame(1, "x", &size);
        assert_int_equal(pm_frame_reader_feed(&r, frame, size - 1), 0);
        pm_frame_reader_done(&r);
        assert_null(r.buf);
        assert_int_equal(r.len, 0);
        assert_int_equal(r.cap, 0);
        /* Done twice is harmless. */
        pm_frame_reader_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode_prefixes_envelope_with_big_endian_length),
                cmocka_unit_test(test_encode_writes_length_of_large_envelope_in_network_order),
                cmocka_unit_test(test_encode_refuses_envelope_over_frame_max),
                cmocka_unit_test(test_data_prefix_matches_the_encoder),
                cmocka_unit_test(test_reader_decodes_whole_frame),
                cmocka_unit_test(test_reader_returns_nothing_before_any_bytes),
                cmocka_unit_test(test_reader_decodes_frame_fed_one_byte_at_a_time),
                cmocka_unit_test(test_reader_waits_for_rest_of_split_frame),
                cmocka_unit_test(test_reader_decodes_several_frames_from_one_feed),
                cmocka_unit_test(test_reader_keeps_partial_second_frame_after_first),
                cmocka_unit_test(test_reader_accepts_zero_length_frame_as_empty_envelope),
                cmocka_unit_test(test_reader_rejects_oversize_header_before_buffering_body),
                cmocka_unit_test(test_reader_rejects_header_over_default_limit),
                cmocka_unit_test(test_reader_rejects_oversize_header_that_follows_a_frame),
                cmocka_unit_test(test_reader_accepts_frame_of_exactly_max_frame),
                cmocka_unit_test(test_reader_rejects_garbage_with_ebadmsg_and_moves_past_it),
                cmocka_unit_test(test_reader_feed_of_zero_bytes_changes_nothing),
                cmocka_unit_test(test_reader_accepts_many_small_frames_in_one_feed),
                cmocka_unit_test(test_reader_gives_back_memory_after_large_frame),
                cmocka_unit_test(test_reader_preserves_every_byte_value_of_stream_data),
                cmocka_unit_test(test_reader_done_leaves_reader_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
