/* Unit tests for the pure parts of image preparation: the cleaning of tar
 * entry names (what may never reach the file system) and the lookups in
 * an image's /etc/passwd and /etc/group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "oci-fs.h"
#include "oci-image.h"
#include "oci-rootfs.h"
#include "util.h"

static void clean_ok(const char *in, const char *expected) {
        char out[64];

        assert_int_equal(pm_fs_path_clean(in, out, sizeof(out)), 0);
        assert_string_equal(out, expected);
}

static void test_path_clean_drops_dot_and_empty_components(void **state) {
        clean_ok("./usr/bin/sh", "usr/bin/sh");
        clean_ok("usr//bin/./sh/", "usr/bin/sh");
        clean_ok("./", "");
        clean_ok(".", "");
        clean_ok("..foo/...", "..foo/...");
        clean_ok(".wh..wh..opq", ".wh..wh..opq");
}

static void test_path_clean_refuses_escapes(void **state) {
        char out[64];

        assert_int_equal(pm_fs_path_clean("../etc/passwd", out, sizeof(out)), -EINVAL);
        assert_int_equal(pm_fs_path_clean("a/../../b", out, sizeof(out)), -EINVAL);
        assert_int_equal(pm_fs_path_clean("a/..", out, sizeof(out)), -EINVAL);
        assert_int_equal(pm_fs_path_clean("/etc/passwd", out, sizeof(out)), -EINVAL);
}

static void test_path_clean_bounds_its_output(void **state) {
        char out[8];

        assert_int_equal(pm_fs_path_clean("abc/defg", out, sizeof(out)), -ENAMETOOLONG);
        assert_int_equal(pm_fs_path_clean("abc/def", out, sizeof(out)), 0);
        assert_string_equal(out, "abc/def");
}

static void test_digest_parse_takes_only_sha256_hex(void **state) {
        char hex[PM_SHA256_HEX_SIZE];
        const char *good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

        assert_int_equal(pm_oci_digest_parse(good, hex), 0);
        assert_string_equal(hex, good + 7);
        assert_int_equal(pm_oci_digest_parse("sha512:00", hex), -EOPNOTSUPP);
        assert_int_equal(pm_oci_digest_parse("sha256:E3B0", hex), -EINVAL);
        assert_int_equal(pm_oci_digest_parse("sha256:../../../../etc/passwd", hex), -EINVAL);
        assert_int_equal(pm_oci_digest_parse("e3b0", hex), -EINVAL);
        assert_int_equal(pm_oci_digest_parse(NULL, hex), -EINVAL);
}

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "app:x:1000:1001::/home/app:/bin/sh\n"
                             "application:x:1002:1002::/:/bin/sh\n"
                             "broken:x:notanumber:1\n"
                             "last:x:7:8::/:/bin/sh";

static void test_passwd_lookup_matches_whole_names(void **state) {
        uint32_t uid = 99, gid = 99;

        assert_int_equal(pm_passwd_lookup(passwd, "app", &uid, &gid), 0);
        assert_int_equal(uid, 1000);
        assert_int_equal(gid, 1001);
        assert_int_equal(pm_passwd_lookup(passwd, "application", &uid, &gid), 0);
        assert_int_equal(uid, 1002);
        assert_int_equal(pm_passwd_lookup(passwd, "last", &uid, &gid), 0);
        assert_int_equal(uid, 7);
        assert_int_equal(pm_passwd_lookup(passwd, "ap", &uid, &gid), -ENOENT);
        assert_int_equal(pm_passwd_lookup(passwd, "nobody", &uid, &gid), -ENOENT);
        assert_int_equal(pm_passwd_lookup(passwd, "broken", &uid, &gid), -EINVAL);
        assert_int_equal(pm_passwd_lookup("", "root", &uid, &gid), -ENOENT);
}

static void test_group_lookup(void **state) {
        uint32_t gid = 0;

        assert_int_equal(pm_group_lookup("root:x:0:\nstaff:x:50:app\n", "staff", &gid), 0);
        assert_int_equal(gid, 50);
        assert_int_equal(pm_group_lookup("root:x:0:\n", "staff", &gid), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_path_clean_drops_dot_and_empty_components),
                cmocka_unit_test(test_path_clean_refuses_escapes),
                cmocka_unit_test(test_path_clean_bounds_its_output),
                cmocka_unit_test(test_digest_parse_takes_only_sha256_hex),
                cmocka_unit_test(test_passwd_lookup_matches_whole_names),
                cmocka_unit_test(test_group_lookup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
