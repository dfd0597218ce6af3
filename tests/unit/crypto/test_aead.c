/*
 * test_aead.c — AES-256-GCM against the McGrew–Viega / NIST GCM test cases
 * 13–16 (the AES-256 ones), in a separate output buffer and in place, and
 * the failure duties of aead_open: AT_EINTEGRITY and a wiped output. Every
 * one of them runs twice: keyed per call, and with kept schedules
 * (aead_*_kept), whose own duties follow: the schedule and key copy only in
 * the locked arena, wiped by aead_forget_kept, not kept across a forget.
 */
#include <pthread.h>
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

/* 0: aead_seal/aead_open; 1: aead_seal_kept/aead_open_kept. */
static int kept_mode;

static int seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    if (kept_mode)
        return aead_seal_kept(aead_kept_epoch(), key, nonce, aad, aad_len, in, len, out, tag);
    return aead_seal(key, nonce, aad, aad_len, in, len, out, tag);
}

static int open_(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                 const uint8_t *in, size_t len, uint8_t *out, const uint8_t *tag)
{
    if (kept_mode)
        return aead_open_kept(aead_kept_epoch(), key, nonce, aad, aad_len, in, len, out, tag);
    return aead_open(key, nonce, aad, aad_len, in, len, out, tag);
}

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
        assert_int_equal(seal(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len,
                              d.pt_len ? d.pt : NULL, d.pt_len, d.pt_len ? out : NULL, tag),
                         0);
        assert_memory_equal(out, d.ct, d.ct_len);
        assert_memory_equal(tag, d.tag, 16);
        memset(back, 0xee, sizeof back);
        assert_int_equal(open_(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len,
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
        assert_int_equal(seal(d.key, d.iv, d.aad, d.aad_len, buf, d.pt_len, buf, tag), 0);
        assert_memory_equal(buf, d.ct, d.ct_len);
        assert_memory_equal(tag, d.tag, 16);
        assert_int_equal(open_(d.key, d.iv, d.aad, d.aad_len, buf, d.ct_len, buf, tag), 0);
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
    int rc = open_(d.key, d.iv, d.aad_len ? d.aad : NULL, d.aad_len, ct, d.ct_len, dst, d.tag);
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
    assert_int_equal(open_(d.key, d.iv, NULL, 0, NULL, 0, NULL, d.tag), 0);
    d.tag[0] ^= 0x80;
    assert_int_equal(open_(d.key, d.iv, NULL, 0, NULL, 0, NULL, d.tag), AT_EINTEGRITY);
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
    assert_int_equal(seal(key, nonce, aad, sizeof aad, page, sizeof page, page, tag), 0);
    assert_memory_not_equal(page, copy, sizeof page);
    assert_int_equal(open_(key, nonce, aad, sizeof aad, page, sizeof page, page, tag), 0);
    assert_memory_equal(page, copy, sizeof page);
    aead_thread_cleanup();
}

/* ---- kept schedules ---- */

static size_t kept_now(void)
{
    struct aead_kept_stats st;
    aead_kept_stats(&st);
    return st.kept;
}

static size_t blocks_now(void)
{
    struct aead_kept_stats st;
    aead_kept_stats(&st);
    return st.blocks_used;
}

/* The redirect is installed before main, so here it must be on: a build
 * where it is not would silently lose the speed, and this says so. */
static void test_kept_available(void **state)
{
    (void)state;
    struct aead_kept_stats st;
    aead_kept_stats(&st);
    assert_int_equal(st.available, 1);
}

/* A kept key is in the arena twice at least (the entry's copy, and the first
 * round keys of AES-256's schedule, which are the key itself), the arena
 * gained blocks for it, and a forget leaves no byte of it there. */
static void test_kept_lives_in_arena_and_is_wiped(void **state)
{
    (void)state;
    aead_forget_kept();
    uint8_t key[32], nonce[12] = {0}, buf[64] = {0}, tag[16];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(aead_kept_arena_count(key, sizeof key), 0);
    size_t before = blocks_now();
    assert_int_equal(aead_seal_kept(aead_kept_epoch(), key, nonce, NULL, 0, buf, 64, buf, tag), 0);
    assert_int_equal(kept_now(), 1);
    assert_true(blocks_now() > before);
    assert_true(aead_kept_arena_count(key, sizeof key) >= 2);
    /* used again: the same entry, no new block */
    size_t with = blocks_now();
    assert_int_equal(aead_open_kept(aead_kept_epoch(), key, nonce, NULL, 0, buf, 64, buf, tag), 0);
    assert_true(all_zero(buf, sizeof buf));
    assert_int_equal(blocks_now(), with);
    aead_forget_kept();
    assert_int_equal(kept_now(), 0);
    assert_int_equal(aead_kept_arena_count(key, sizeof key), 0);
    assert_int_equal(aead_kept_arena_count(key, 16), 0);
}

/* A forget between reading the epoch and the call: the key may be one being
 * wiped, so the call works but keeps nothing. */
static void test_kept_not_kept_across_forget(void **state)
{
    (void)state;
    aead_forget_kept();
    uint8_t key[32], nonce[12] = {0}, buf[64] = {0}, tag[16];
    memset(key, 0x5c, sizeof key);
    uint64_t epoch = aead_kept_epoch();
    aead_forget_kept();
    assert_int_equal(aead_seal_kept(epoch, key, nonce, NULL, 0, buf, 64, buf, tag), 0);
    assert_int_equal(kept_now(), 0);
    assert_int_equal(aead_kept_arena_count(key, sizeof key), 0);
    assert_int_equal(aead_open(key, nonce, NULL, 0, buf, 64, buf, tag), 0);
    assert_true(all_zero(buf, sizeof buf));
}

/* More keys than a thread keeps: each still right, at most four kept; a key
 * that was evicted comes back. A bad tag drops the entry and fails alone. */
static void test_kept_eviction_and_bad_tag(void **state)
{
    (void)state;
    aead_forget_kept();
    uint8_t key[6][32], nonce[12] = {7}, pt[100], buf[100], tag[6][16];
    for (int i = 0; i < (int)sizeof pt; i++)
        pt[i] = (uint8_t)i;
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 6; k++) {
            memset(key[k], 0x10 + k, 32);
            memcpy(buf, pt, sizeof pt);
            assert_int_equal(aead_seal_kept(aead_kept_epoch(), key[k], nonce, pt, 5, buf,
                                            sizeof buf, buf, tag[k]),
                             0);
            assert_true(kept_now() <= 4);
            assert_int_equal(aead_open(key[k], nonce, pt, 5, buf, sizeof buf, buf, tag[k]), 0);
            assert_memory_equal(buf, pt, sizeof pt);
        }
    assert_int_equal(kept_now(), 4);
    memcpy(buf, pt, sizeof pt);
    assert_int_equal(aead_seal(key[5], nonce, pt, 5, buf, sizeof buf, buf, tag[5]), 0);
    tag[5][0] ^= 1;
    assert_int_equal(
        aead_open_kept(aead_kept_epoch(), key[5], nonce, pt, 5, buf, sizeof buf, buf, tag[5]),
        AT_EINTEGRITY);
    assert_true(all_zero(buf, sizeof buf));
    assert_int_equal(kept_now(), 3);
    tag[5][0] ^= 1;
    assert_int_equal(aead_seal(key[5], nonce, pt, 5, pt, sizeof buf, buf, tag[5]), 0);
    assert_int_equal(
        aead_open_kept(aead_kept_epoch(), key[5], nonce, pt, 5, buf, sizeof buf, buf, tag[5]), 0);
    assert_memory_equal(buf, pt, sizeof pt);
    aead_forget_kept();
    for (int k = 0; k < 6; k++)
        assert_int_equal(aead_kept_arena_count(key[k], 32), 0);
}

static void *kept_worker(void *arg)
{
    uint8_t *key = arg, nonce[12] = {1}, buf[4096], tag[16];
    memset(buf, 0x33, sizeof buf);
    for (int i = 0; i < 200; i++) {
        nonce[0] = (uint8_t)i;
        if (aead_seal_kept(aead_kept_epoch(), key, nonce, NULL, 0, buf, sizeof buf, buf, tag) ||
            aead_open_kept(aead_kept_epoch(), key, nonce, NULL, 0, buf, sizeof buf, buf, tag))
            return (void *)1;
        if (i == 100)
            aead_forget_kept(); /* another thread's entries go too */
    }
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != 0x33)
            return (void *)1;
    return NULL;
}

/* Threads keep their own, forget reaches them all, and a thread's blocks
 * go back to the arena when it ends. */
static void test_kept_threads(void **state)
{
    (void)state;
    aead_forget_kept();
    size_t before = blocks_now();
    uint8_t keys[4][32];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(keys[i], 0x70 + i, 32);
        assert_int_equal(pthread_create(&t[i], NULL, kept_worker, keys[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
    assert_int_equal(blocks_now(), before);
    for (int i = 0; i < 4; i++)
        assert_int_equal(aead_kept_arena_count(keys[i], 32), 0);
}

static int kept_on(void **state)
{
    (void)state;
    kept_mode = 1;
    return 0;
}

static int kept_off(void **state)
{
    (void)state;
    kept_mode = 0;
    aead_forget_kept();
    return 0;
}

#define BOTH(t) cmocka_unit_test(t), cmocka_unit_test_setup_teardown(t, kept_on, kept_off)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_vectors),
        BOTH(test_vectors_in_place),
        BOTH(test_tamper),
        BOTH(test_empty_message_tag),
        BOTH(test_page_round_trip),
        cmocka_unit_test(test_kept_available),
        cmocka_unit_test(test_kept_lives_in_arena_and_is_wiped),
        cmocka_unit_test(test_kept_not_kept_across_forget),
        cmocka_unit_test(test_kept_eviction_and_bad_tag),
        cmocka_unit_test(test_kept_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
