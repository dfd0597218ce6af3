/*
 * test_aead.c — AES-256-GCM against the McGrew–Viega / NIST GCM test cases
 * 13–16 (the AES-256 ones), in a separate output buffer and in place, and
 * the failure duties of aead_open: AT_EINTEGRITY and a wiped output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/aead.h"
#include "testhex.h"

struct vector {
    const char *name, *key, *iv, *pt, *aad, *ct, *tag;
};

#define K15  "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define IV15 "cafebabefacedbaddecaf888"
#define PT15                                                                                       \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"     \
    "49a6b525b16aedf5aa0de657ba637b391aafd255"
#define CT15                                                                                       \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"     \
    "56828838c5f61e6393ba7a0abcc9f662898015ad"
#define PT16                                                                                       \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"     \
    "49a6b525b16aedf5aa0de657ba637b39"
#define CT16                                                                                       \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"     \
    "56828838c5f61e6393ba7a0abcc9f662"

static const struct vector vectors[] = {
    {"TC13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"TC14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"TC15", K15, IV15, PT15, "", CT15, "b094dac5d93471bdec1a502270e3cc6c"},
    {"TC16", K15, IV15, PT16, "feedfacedeadbeeffeedfacedeadbeefabaddad2", CT16,
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

struct decoded {
    uint8_t key[32], iv[12], pt[64], aad[32], ct[64], tag[16];
    size_t pt_len, aad_len, ct_len;
};

static void decode(const struct vector *v, struct decoded *d)
{
    memset(d, 0, sizeof *d);
    assert_int_equal(testhex_decode(v->key, d->key, sizeof d->key), 32);
    assert_int_equal(testhex_decode(v->iv, d->iv, sizeof d->iv), 12);
    d->pt_len = testhex_decode(v->pt, d->pt, sizeof d->pt);
    d->aad_len = testhex_decode(v->aad, d->aad, sizeof d->aad);
    d->ct_len = testhex_decode(v->ct, d->ct, sizeof d->ct);
    assert_int_equal(testhex_decode(v->tag, d->tag, sizeof d->tag), 16);
    assert_int_equal(d->pt_len, d->ct_len);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Seal and open every vector into a separate buffer. */
static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        struct decoded d;
        uint8_t out[64], back[64], tag[16];
        decode(&vectors[i], &d);
        memset(out, 0xee, sizeof out);
        memset(tag, 0xee, sizeof tag);
        assert_int_equal(aead_seal(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len,
                                   d.pt_len ? d.pt : NULL, d.pt_len, d.pt_len ? out : NULL, tag),
                         0);
        assert_memory_equal(out, d.ct, d.ct_len);
        assert_memory_equal(tag, d.tag, 16);
        memset(back, 0xee, sizeof back);
        assert_int_equal(aead_open(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len,
                                   d.ct_len ? d.ct : NULL, d.ct_len, d.ct_len ? back : NULL, d.tag),
                         0);
        assert_memory_equal(back, d.pt, d.pt_len);
    }
}

/* in == out. */
static void test_vectors_in_place(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        struct decoded d;
        uint8_t buf[64], tag[16];
        decode(&vectors[i], &d);
        if (d.pt_len == 0)
            continue;
        memcpy(buf, d.pt, d.pt_len);
        assert_int_equal(aead_seal(d.key, d.iv, d.aad, d.aad_len, buf, d.pt_len, buf, tag), 0);
        assert_memory_equal(buf, d.ct, d.ct_len);
        assert_memory_equal(tag, d.tag, 16);
        assert_int_equal(aead_open(d.key, d.iv, d.aad, d.aad_len, buf, d.ct_len, buf, tag), 0);
        assert_memory_equal(buf, d.pt, d.pt_len);
    }
}

enum tamper { FLIP_TAG, FLIP_CT, WRONG_AAD, WRONG_NONCE, WRONG_KEY, NO_AAD };

/* Open TC16 with one thing changed: AT_EINTEGRITY and nothing of the
 * plaintext (or of the unauthenticated decryption) left in the output. */
static void check_tamper(enum tamper t, int in_place)
{
    struct decoded d;
    uint8_t out[64], ct[64];
    decode(&vectors[3], &d);
    memcpy(ct, d.ct, d.ct_len);
    switch (t) {
    case FLIP_TAG:
        d.tag[15] ^= 0x01;
        break;
    case FLIP_CT:
        ct[7] ^= 0x80;
        break;
    case WRONG_AAD:
        d.aad[0] ^= 0x01;
        break;
    case WRONG_NONCE:
        d.iv[11] ^= 0x01;
        break;
    case WRONG_KEY:
        d.key[31] ^= 0x01;
        break;
    case NO_AAD:
        d.aad_len = 0;
        break;
    }
    uint8_t *dst = in_place ? ct : out;
    memset(out, 0xaa, sizeof out);
    int rc = aead_open(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len, ct, d.ct_len, dst, d.tag);
    assert_int_equal(rc, AT_EINTEGRITY);
    assert_true(all_zero(dst, d.ct_len));
    if (!in_place)
        assert_true(out[d.ct_len] == 0xaa); /* wiped exactly len bytes */
}

static void test_tamper(void **state)
{
    (void)state;
    for (int in_place = 0; in_place < 2; in_place++)
        for (enum tamper t = FLIP_TAG; t <= NO_AAD; t++)
            check_tamper(t, in_place);
}

/* TC13 has no plaintext: only the tag authenticates, and a flipped tag bit
 * must still fail. */
static void test_empty_message_tag(void **state)
{
    (void)state;
    struct decoded d;
    decode(&vectors[0], &d);
    assert_int_equal(aead_open(d.key, d.iv, NULL, 0, NULL, 0, NULL, d.tag), 0);
    d.tag[0] ^= 0x80;
    assert_int_equal(aead_open(d.key, d.iv, NULL, 0, NULL, 0, NULL, d.tag), AT_EINTEGRITY);
}

/* A page-sized round trip, in place, with AAD (the VFS's use). */
static void test_page_round_trip(void **state)
{
    (void)state;
    static uint8_t page[4096], copy[4096];
    uint8_t key[32], nonce[12], aad[24], tag[16];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (uint8_t)(i * 7 + 3);
    memcpy(copy, page, sizeof page);
    memset(key, 0x42, sizeof key);
    memset(nonce, 0x24, sizeof nonce);
    memset(aad, 0x11, sizeof aad);
    assert_int_equal(aead_seal(key, nonce, aad, sizeof aad, page, sizeof page, page, tag), 0);
    assert_memory_not_equal(page, copy, sizeof page);
    assert_int_equal(aead_open(key, nonce, aad, sizeof aad, page, sizeof page, page, tag), 0);
    assert_memory_equal(page, copy, sizeof page);
    aead_thread_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),         cmocka_unit_test(test_vectors_in_place),
        cmocka_unit_test(test_tamper),          cmocka_unit_test(test_empty_message_tag),
        cmocka_unit_test(test_page_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
