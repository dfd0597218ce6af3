/*
 * test_kdf.c — HKDF-SHA256 against RFC 5869 test case 3 (empty salt and
 * info) and a media-key-shaped vector computed independently with Python's
 * hmac module (string salt and info, as atrest uses them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/kdf.h"
#include "testhex.h"

static void test_rfc5869_case3(void **state)
{
    (void)state;
    uint8_t ikm[22], want[42], out[42];
    memset(ikm, 0x0b, sizeof ikm);
    assert_int_equal(testhex_decode("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c73"
                                    "8d2d9d201395faa4b61a96c8",
                                    want, sizeof want),
                     sizeof want);
    assert_int_equal(kdf_hkdf_sha256(ikm, sizeof ikm, "", "", out, sizeof out), 0);
    assert_memory_equal(out, want, sizeof want);
}

static void test_string_salt_and_info(void **state)
{
    (void)state;
    uint8_t ikm[32], want[32], out[32];
    for (size_t i = 0; i < sizeof ikm; i++)
        ikm[i] = (uint8_t)i;
    assert_int_equal(testhex_decode("b3993dc14f0754f39b20f3b060407a78732235dc7ef29fda12db14b5ae39"
                                    "568a",
                                    want, sizeof want),
                     sizeof want);
    assert_int_equal(kdf_hkdf_sha256(ikm, sizeof ikm, "c-00000001/0123456789abcdef0123456789abcdef",
                                     "atrest media v1", out, sizeof out),
                     0);
    assert_memory_equal(out, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869_case3),
        cmocka_unit_test(test_string_salt_and_info),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
