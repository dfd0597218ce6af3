/*
 * test_keywrap.c — AES key wrap with padding against RFC 5649 section 6,
 * 256-bit KEK round trips, and AT_EINTEGRITY (output wiped) for a wrong KEK
 * or a damaged wrapped key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/keywrap.h"
#include "testhex.h"

#define RFC_KEK "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"

static const struct {
    const char *key, *wrapped;
} rfc[] = {
    {"c37b7e6492584340bed12207808941155068f738",
     "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
    {"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
};

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void test_rfc5649_vectors(void **state)
{
    (void)state;
    uint8_t kek[24];
    assert_int_equal(testhex_decode(RFC_KEK, kek, sizeof kek), 24);
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        uint8_t key[32], want[48], out[48], back[48];
        size_t klen = testhex_decode(rfc[i].key, key, sizeof key);
        size_t wlen = testhex_decode(rfc[i].wrapped, want, sizeof want);
        size_t out_len = 0, back_len = 0;
        assert_int_equal(KEYWRAP_OUT_LEN(klen), wlen);
        assert_int_equal(keywrap_wrap(kek, sizeof kek, key, klen, out, &out_len), 0);
        assert_int_equal(out_len, wlen);
        assert_memory_equal(out, want, wlen);
        assert_int_equal(keywrap_unwrap(kek, sizeof kek, want, wlen, back, &back_len), 0);
        assert_int_equal(back_len, klen);
        assert_memory_equal(back, key, klen);
    }
}

static void test_256_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 8, 9, 16, 31, 32, 64};
    uint8_t kek[32];
    for (size_t i = 0; i < sizeof kek; i++)
        kek[i] = (uint8_t)(0xa0 + i);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint8_t key[64], out[KEYWRAP_OUT_LEN(64)], back[64];
        size_t n = sizes[s], out_len = 0, back_len = 0;
        for (size_t i = 0; i < n; i++)
            key[i] = (uint8_t)(i * 13 + n);
        assert_int_equal(keywrap_wrap(kek, sizeof kek, key, n, out, &out_len), 0);
        assert_int_equal(out_len, KEYWRAP_OUT_LEN(n));
        assert_int_equal(keywrap_unwrap(kek, sizeof kek, out, out_len, back, &back_len), 0);
        assert_int_equal(back_len, n);
        assert_memory_equal(back, key, n);
    }
}

static void test_wrong_kek(void **state)
{
    (void)state;
    uint8_t kek[32], other[32], key[32], out[40], back[40];
    size_t out_len = 0, back_len = 0;
    memset(kek, 0x11, sizeof kek);
    memcpy(other, kek, sizeof other);
    other[0] ^= 0x01;
    memset(key, 0x77, sizeof key);
    assert_int_equal(keywrap_wrap(kek, sizeof kek, key, sizeof key, out, &out_len), 0);
    memset(back, 0xaa, sizeof back);
    assert_int_equal(keywrap_unwrap(other, sizeof other, out, out_len, back, &back_len),
                     AT_EINTEGRITY);
    assert_true(all_zero(back, out_len - KEYWRAP_OVERHEAD));
}

/* Every single flipped byte of a wrapped key is detected. */
static void test_flipped_byte(void **state)
{
    (void)state;
    uint8_t kek[32], key[32], out[40], bad[40], back[40];
    size_t out_len = 0, back_len = 0;
    memset(kek, 0x33, sizeof kek);
    memset(key, 0x5c, sizeof key);
    assert_int_equal(keywrap_wrap(kek, sizeof kek, key, sizeof key, out, &out_len), 0);
    assert_int_equal(out_len, 40);
    for (size_t i = 0; i < out_len; i++) {
        memcpy(bad, out, out_len);
        bad[i] ^= 0x01;
        memset(back, 0xaa, sizeof back);
        assert_int_equal(keywrap_unwrap(kek, sizeof kek, bad, out_len, back, &back_len),
                         AT_EINTEGRITY);
        assert_true(all_zero(back, out_len - KEYWRAP_OVERHEAD));
    }
    /* A truncated wrapped key does not unwrap either. */
    assert_int_not_equal(keywrap_unwrap(kek, sizeof kek, out, out_len - 8, back, &back_len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5649_vectors),
        cmocka_unit_test(test_256_round_trip),
        cmocka_unit_test(test_wrong_kek),
        cmocka_unit_test(test_flipped_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
