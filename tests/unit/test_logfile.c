/* Unit tests for agent/logfile.c: how the log daemon cuts an app's output
 * into pieces, the CRI lines it writes, and the spec's logging limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "logfile.h"
#include "spec.h"
#include "util.h"

static void test_piece_is_a_whole_line_with_its_newline(void **state) {
        bool partial = true;
        assert_int_equal(pm_log_next_piece("ab\ncd\n", 6, false, &partial), 3);
        assert_false(partial);
}

static void test_piece_waits_for_the_rest_of_a_short_line(void **state) {
        bool partial = false;
        assert_int_equal(pm_log_next_piece("abc", 3, false, &partial), 0);
}

static void test_piece_at_eof_is_what_is_left_and_partial(void **state) {
        bool partial = false;
        assert_int_equal(pm_log_next_piece("abc", 3, true, &partial), 3);
        assert_true(partial);
        assert_int_equal(pm_log_next_piece("", 0, true, &partial), 0);
}

static void test_long_line_is_cut_every_chunk(void **state) {
        static char buf[PM_LOG_CHUNK * 2 + 10];
        bool partial = false;
        memset(buf, 'x', sizeof(buf));
        buf[sizeof(buf) - 1] = '\n';
        assert_int_equal(pm_log_next_piece(buf, sizeof(buf), false, &partial), PM_LOG_CHUNK);
        assert_true(partial);
        /* A newline just past the chunk does not make the piece longer. */
        buf[PM_LOG_CHUNK] = '\n';
        assert_int_equal(pm_log_next_piece(buf, sizeof(buf), false, &partial), PM_LOG_CHUNK);
        assert_true(partial);
        buf[PM_LOG_CHUNK - 1] = '\n';
        assert_int_equal(pm_log_next_piece(buf, sizeof(buf), false, &partial), PM_LOG_CHUNK);
        assert_false(partial);
}

static void test_binary_bytes_are_kept_in_pieces(void **state) {
        const char data[] = { 0, 1, (char) 0xff, '\r', '\n', 7 };
        bool partial = true;
        assert_int_equal(pm_log_next_piece(data, sizeof(data), false, &partial), 5);
        assert_false(partial);
}

static void test_rfc3339_nano(void **state) {
        char buf[40];
        pm_log_rfc3339_nano(1764504000123456789LL, buf, sizeof(buf));
        assert_string_equal(buf, "2025-11-30T12:00:00.123456789Z");
        pm_log_rfc3339_nano(5, buf, sizeof(buf));
        assert_string_equal(buf, "1970-01-01T00:00:00.000000005Z");
}

static void test_cri_line_full_and_partial(void **state) {
        char buf[256];
        size_t n = pm_log_cri_line(buf, sizeof(buf), 1764504000000000001LL, PM_LOG_STDOUT, "hello\n", 6, false);
        assert_int_equal(n, strlen("2025-11-30T12:00:00.000000001Z stdout F hello\n"));
        assert_memory_equal(buf, "2025-11-30T12:00:00.000000001Z stdout F hello\n", n);
        n = pm_log_cri_line(buf, sizeof(buf), 1764504000000000001LL, PM_LOG_STDERR, "part", 4, true);
        assert_memory_equal(buf, "2025-11-30T12:00:00.000000001Z stderr P part\n", n);
}

static void test_cri_line_too_small_a_buffer_is_refused(void **state) {
        char buf[40];
        assert_int_equal(pm_log_cri_line(buf, sizeof(buf), 0, PM_LOG_STDOUT, "0123456789", 10, false), 0);
}

static void assert_logging_rejected(uint64_t max_size, uint32_t max_files, int format, const char *want) {
        Podmutator__V1__Logging lg = PODMUTATOR__V1__LOGGING__INIT;
        PmAppSpec spec = PODMUTATOR__V1__APP_SPEC__INIT;
        char *argv[] = { (char *) "/bin/true" };
        _cleanup_free_ char *error = NULL;
        lg.max_size = max_size;
        lg.max_files = max_files;
        lg.format = format;
        spec.name = (char *) "app";
        spec.argv = argv;
        spec.n_argv = 1;
        spec.logging = &lg;
        assert_int_equal(pm_spec_validate(&spec, &error), -EINVAL);
        if (!error || !strstr(error, want))
                fail_msg("error \"%s\" does not hold \"%s\"", strempty(error), want);
}

static void test_spec_logging_limits(void **state) {
        assert_logging_rejected(100, 0, 0, "logging.max_size: 100 is not between");
        assert_logging_rejected(0, 101, 0, "logging.max_files: at most 100");
        assert_logging_rejected(0, 0, 7, "logging.format: unknown format 7");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_piece_is_a_whole_line_with_its_newline),
                cmocka_unit_test(test_piece_waits_for_the_rest_of_a_short_line),
                cmocka_unit_test(test_piece_at_eof_is_what_is_left_and_partial),
                cmocka_unit_test(test_long_line_is_cut_every_chunk),
                cmocka_unit_test(test_binary_bytes_are_kept_in_pieces),
                cmocka_unit_test(test_rfc3339_nano),
                cmocka_unit_test(test_cri_line_full_and_partial),
                cmocka_unit_test(test_cri_line_too_small_a_buffer_is_refused),
                cmocka_unit_test(test_spec_logging_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
