/* Unit tests for common/sha256.c against the FIPS 180-4 example vectors
 * (NIST "Examples with intermediate values"), fed in one piece and in
 * uneven pieces, so the block buffering is checked as well as the core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void hex_of(const void *data, size_t size, size_t piece, char ret[PM_SHA256_HEX_SIZE]) {
        const uint8_t *p = data;
        PmSha256 c;

        pm_sha256_init(&c);
        if (piece == 0)
                piece = size ? size : 1;
        for (size_t off = 0; off < size; off += piece)
                pm_sha256_update(&c, p + off, size - off < piece ? size - off : piece);
        pm_sha256_final_hex(&c, ret);
}

static void check(const char *msg, const char *expected) {
        static const size_t pieces[] = {0, 1, 3, 63, 64, 65};
        char hex[PM_SHA256_HEX_SIZE];

        for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
                hex_of(msg, strlen(msg), pieces[i], hex);
                assert_string_equal(hex, expected);
        }
}

static void test_sha256_empty_message(void **state) {
        check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_abc(void **state) {
        check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_448_bit_message_needs_a_second_padding_block(void **state) {
        check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_896_bit_message(void **state) {
        check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrs"
              "tnopqrstu",
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_one_million_a(void **state) {
        static char a[1000000];
        char hex[PM_SHA256_HEX_SIZE];

        memset(a, 'a', sizeof(a));
        hex_of(a, sizeof(a), 0, hex);
        assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        hex_of(a, sizeof(a), 4097, hex);
        assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_context_is_reusable_after_init(void **state) {
        char first[PM_SHA256_HEX_SIZE], second[PM_SHA256_HEX_SIZE];

        hex_of("abc", 3, 0, first);
        hex_of("abc", 3, 0, second);
        assert_string_equal(first, second);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sha256_empty_message),
                cmocka_unit_test(test_sha256_abc),
                cmocka_unit_test(test_sha256_448_bit_message_needs_a_second_padding_block),
                cmocka_unit_test(test_sha256_896_bit_message),
                cmocka_unit_test(test_sha256_one_million_a),
                cmocka_unit_test(test_sha256_context_is_reusable_after_init),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
