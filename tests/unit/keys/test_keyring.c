/*
 * test_keyring.c — the data folder's keyring: round trips, two layers,
 * wrong key folders, damaged files (nothing overwritten), encryption
 * counting and rotation, reservations persisted before use, crypto-shred,
 * crash safety of the replace, and concurrent writers.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "testfs.h"

struct env {
    char root[PATH_MAX], data[PATH_MAX], keys1[PATH_MAX], keys2[PATH_MAX], keys3[PATH_MAX];
    char kr_path[PATH_MAX], tmp_path[PATH_MAX];
    struct key_provider *kp1, *kp2;
    char id1[KP_KEY_ID_MAX], id2[KP_KEY_ID_MAX];
};

static struct key_provider *provider(const char *keys, const char *data)
{
    struct key_provider *kp = NULL;
    if (embedded_provider_open(keys, data, 1, &kp) != 0)
        fail_msg("provider %s: %s", keys, at_error_detail());
    return kp;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    char tmp[PATH_MAX];
    if (!e)
        return -1;
    unsetenv("ATREST_ROOT_KEY");
    testfs_mkdtemp(tmp, "keyring");
    if (!realpath(tmp, e->root))
        return -1;
    testfs_join(e->data, e->root, "data");
    testfs_join(e->keys1, e->root, "keys1");
    testfs_join(e->keys2, e->root, "keys2");
    testfs_join(e->keys3, e->root, "keys3");
    testfs_join(e->kr_path, e->data, "keyring");
    testfs_join(e->tmp_path, e->data, "keyring.tmp");
    if (mkdir(e->data, 0700) != 0)
        return -1;
    e->kp1 = provider(e->keys1, e->data);
    e->kp2 = provider(e->keys2, e->data);
    if (kp_key_id(e->kp1, e->id1, sizeof e->id1) || kp_key_id(e->kp2, e->id2, sizeof e->id2))
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    kp_destroy(e->kp1);
    kp_destroy(e->kp2);
    testfs_rm_rf(e->root);
    free(e);
    return 0;
}

static struct keyring *kopen(const char *data, struct key_provider *outer,
                             struct key_provider *inner, int create)
{
    struct keyring *kr = NULL;
    int rc = keyring_open(data, outer, inner, create, &kr);
    if (rc)
        fail_msg("keyring_open %s: %d %s", data, rc, at_error_detail());
    return kr;
}

static void expect_open(const char *data, struct key_provider *outer, struct key_provider *inner,
                        int create, int want)
{
    struct keyring *kr = NULL;
    int rc = keyring_open(data, outer, inner, create, &kr);
    if (rc != want)
        fail_msg("keyring_open: want %d, got %d (%s)", want, rc, at_error_detail());
    assert_null(kr);
}

static void detail_has(const char *s)
{
    if (!strstr(at_error_detail(), s))
        fail_msg("detail \"%s\" lacks \"%s\"", at_error_detail(), s);
}

static void add(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN])
{
    int rc = keyring_add_file(kr, name, id);
    if (rc)
        fail_msg("add %s: %d %s", name, rc, at_error_detail());
}

static const uint8_t *write_key(struct keyring *kr, const uint8_t *id, int layer, uint32_t *v)
{
    const uint8_t *k = NULL;
    int rc = keyring_key_for_write(kr, id, layer, v, &k);
    if (rc)
        fail_msg("key_for_write: %d %s", rc, at_error_detail());
    assert_non_null(k);
    return k;
}

static const uint8_t *read_key(struct keyring *kr, const uint8_t *id, int layer, uint32_t v)
{
    const uint8_t *k = NULL;
    int rc = keyring_key_for_read(kr, id, layer, v, &k);
    if (rc)
        fail_msg("key_for_read v%u: %d %s", v, rc, at_error_detail());
    return k;
}

static void snapshot(const char *path, uint8_t **buf, size_t *len)
{
    assert_int_equal(testfs_read(path, buf, len), 0);
}

static void same_file(const char *path, const uint8_t *buf, size_t len)
{
    uint8_t *now;
    size_t n;
    snapshot(path, &now, &n);
    assert_int_equal(n, len);
    assert_memory_equal(now, buf, len);
    free(now);
}

static void status(struct keyring *kr, const uint8_t *id, int layer, uint32_t *v, uint64_t *n)
{
    assert_int_equal(keyring_file_status(kr, id, layer, v, n), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_create_open_round_trip(void **state)
{
    struct env *e = *state;
    uint8_t a[16], b[16], x[16], ka[32], kb[32];
    uint32_t v = 0;

    expect_open(e->data, e->kp1, NULL, 0, AT_EKEYRING);
    assert_false(testfs_exists(e->kr_path));

    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    assert_int_equal(keyring_layers(kr), 1);
    assert_int_equal(testfs_mode(e->kr_path), 0600);
    assert_false(testfs_exists(e->tmp_path));
    add(kr, "alpha", a);
    add(kr, "beta", b);
    assert_memory_not_equal(a, b, 16);
    assert_int_equal(keyring_find_file(kr, "alpha", x), 0);
    assert_memory_equal(x, a, 16);
    assert_int_equal(keyring_find_file(kr, "gamma", x), AT_ENOTFOUND);
    assert_int_equal(keyring_add_file(kr, "alpha", x), AT_EEXIST);

    char long_ok[64], long_bad[65];
    memset(long_ok, 'a', 63);
    long_ok[63] = '\0';
    memset(long_bad, 'a', 64);
    long_bad[64] = '\0';
    static const char *bad[] = {"", "Alpha", "a/b", "a.b", "a b", "../x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(keyring_add_file(kr, bad[i], x), AT_EINVAL);
    assert_int_equal(keyring_add_file(kr, long_bad, x), AT_EINVAL);
    assert_int_equal(keyring_add_file(kr, NULL, x), AT_EINVAL);
    add(kr, long_ok, x);
    add(kr, "with_under-dash9", x);

    char names[8][KEYRING_NAME_MAX];
    uint8_t ids[8][KEYRING_FILE_ID_LEN];
    size_t n = 0;
    assert_int_equal(keyring_list_files(kr, names, ids, 8, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "alpha");
    assert_memory_equal(ids[0], a, 16);
    assert_string_equal(names[1], "beta");
    assert_int_equal(keyring_list_files(kr, names, ids, 2, &n), 0);
    assert_int_equal(n, 2);

    const uint8_t *k = write_key(kr, a, 0, &v);
    assert_int_equal(v, 1);
    assert_true(secmem_is_secure(k));
    memcpy(ka, k, 32);
    assert_memory_equal(read_key(kr, a, 0, 1), ka, 32);
    memcpy(kb, write_key(kr, b, 0, &v), 32);
    assert_memory_not_equal(ka, kb, 32);
    const uint8_t *kk;
    assert_int_equal(keyring_key_for_write(kr, a, 1, &v, &kk), AT_EINVAL);
    assert_int_equal(keyring_key_for_write(kr, a, -1, &v, &kk), AT_EINVAL);
    uint8_t nobody[16] = {0};
    assert_int_equal(keyring_key_for_write(kr, nobody, 0, &v, &kk), AT_ENOTFOUND);
    assert_int_equal(keyring_key_for_read(kr, a, 0, 2, &kk), AT_ENOTFOUND);
    keyring_close(kr);

    /* Only wrapped keys on disk. */
    uint8_t *buf;
    size_t len;
    snapshot(e->kr_path, &buf, &len);
    assert_memory_equal(buf, "ATRKEYR1", 8);
    assert_null(memmem(buf, len, ka, 32));
    assert_null(memmem(buf, len, kb, 32));
    free(buf);

    /* Reopen: same files, same keys. Create on an existing keyring opens it. */
    for (int create = 0; create < 2; create++) {
        kr = kopen(e->data, e->kp1, NULL, create);
        assert_int_equal(keyring_find_file(kr, "alpha", x), 0);
        assert_memory_equal(x, a, 16);
        assert_memory_equal(read_key(kr, a, 0, 1), ka, 32);
        assert_memory_equal(read_key(kr, b, 0, 1), kb, 32);
        assert_true(secmem_is_secure(read_key(kr, b, 0, 1)));
        assert_int_equal(keyring_list_files(kr, names, ids, 8, &n), 0);
        assert_int_equal(n, 4);
        keyring_close(kr);
    }
    assert_false(testfs_exists(e->tmp_path));
}

static void test_two_layers(void **state)
{
    struct env *e = *state;
    uint8_t c[16], k0[32], k1[32];
    uint32_t v = 0;
    uint64_t cnt = 0;
    struct keyring *kr = kopen(e->data, e->kp1, e->kp2, 1);
    assert_int_equal(keyring_layers(kr), 2);
    add(kr, "c", c);
    memcpy(k0, write_key(kr, c, KEYRING_LAYER_OUTER, &v), 32);
    memcpy(k1, write_key(kr, c, KEYRING_LAYER_INNER, &v), 32);
    assert_memory_not_equal(k0, k1, 32);
    assert_int_equal(keyring_rotate_file(kr, c, KEYRING_LAYER_INNER), 0);
    status(kr, c, KEYRING_LAYER_INNER, &v, &cnt);
    assert_int_equal(v, 2);
    assert_int_equal(cnt, 0);
    status(kr, c, KEYRING_LAYER_OUTER, &v, &cnt);
    assert_int_equal(v, 1);
    assert_int_equal(cnt, 1);
    keyring_close(kr);

    kr = kopen(e->data, e->kp1, e->kp2, 0);
    assert_int_equal(keyring_layers(kr), 2);
    assert_memory_equal(read_key(kr, c, 0, 1), k0, 32);
    assert_memory_equal(read_key(kr, c, 1, 1), k1, 32);
    read_key(kr, c, 1, 2);
    keyring_close(kr);

    /* The customer key is part of the account: without it, or with another,
     * or with the layers swapped, the keyring does not open. */
    struct key_provider *kp3 = provider(e->keys3, e->data);
    char id3[KP_KEY_ID_MAX];
    assert_int_equal(kp_key_id(kp3, id3, sizeof id3), 0);
    expect_open(e->data, e->kp1, NULL, 0, AT_EKEYMISMATCH);
    expect_open(e->data, e->kp1, kp3, 0, AT_EKEYMISMATCH);
    detail_has(id3);
    detail_has(e->id2);
    expect_open(e->data, e->kp2, e->kp1, 0, AT_EKEYMISMATCH);

    /* A one-layer keyring refuses an inner provider. */
    char data2[PATH_MAX];
    testfs_join(data2, e->root, "data2");
    assert_int_equal(mkdir(data2, 0700), 0);
    kr = kopen(data2, e->kp1, NULL, 1);
    keyring_close(kr);
    expect_open(data2, e->kp1, e->kp2, 0, AT_EKEYMISMATCH);
    expect_open(data2, e->kp1, e->kp2, 1, AT_EKEYMISMATCH);
    kp_destroy(kp3);
}

static void test_wrong_key_folder(void **state)
{
    struct env *e = *state;
    uint8_t c[16];
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, "c", c);
    keyring_close(kr);
    uint8_t *orig;
    size_t len;
    snapshot(e->kr_path, &orig, &len);

    for (int create = 0; create < 2; create++) {
        expect_open(e->data, e->kp2, NULL, create, AT_EKEYMISMATCH);
        detail_has(e->id1);
        detail_has(e->id2);
        same_file(e->kr_path, orig, len);
    }
    /* The right folder still opens it. */
    kr = kopen(e->data, e->kp1, NULL, 0);
    keyring_close(kr);
    same_file(e->kr_path, orig, len);
    free(orig);
}

static void fix_checksum(uint8_t *buf, size_t len)
{
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(buf, len - 32, buf + len - 32, &n, EVP_sha256(), NULL), 1);
}

/* Write bytes as the keyring, open it, expect want (or also alt), and check
 * the file was left exactly as written. */
static int try_corrupt(struct env *e, const uint8_t *buf, size_t len, int create)
{
    struct keyring *kr = NULL;
    assert_int_equal(testfs_write(e->kr_path, buf, len, 0600), 0);
    int rc = keyring_open(e->data, e->kp1, NULL, create, &kr);
    if (rc == 0)
        keyring_close(kr);
    same_file(e->kr_path, buf, len);
    assert_false(testfs_exists(e->tmp_path));
    return rc;
}

static void test_corrupted(void **state)
{
    struct env *e = *state;
    uint8_t a[16], b[16];
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, "alpha", a);
    add(kr, "beta", b);
    assert_int_equal(keyring_rotate_file(kr, b, 0), 0);
    keyring_close(kr);
    uint8_t *orig, *buf;
    size_t len;
    snapshot(e->kr_path, &orig, &len);
    buf = malloc(len + 16);
    assert_non_null(buf);

    /* One flipped bit anywhere: corrupted, never a key mismatch. */
    for (size_t off = 0; off < len; off++) {
        static const uint8_t masks[] = {0x01, 0x80};
        for (int m = 0; m < 2; m++) {
            memcpy(buf, orig, len);
            buf[off] ^= masks[m];
            int rc = try_corrupt(e, buf, len, off % 7 == 0);
            if (rc != AT_EKEYRING)
                fail_msg("flip 0x%02x at %zu: rc %d (%s)", masks[m], off, rc, at_error_detail());
        }
    }

    /* Changed and the checksum recomputed: the HMAC catches it. The wrapped
     * MAC key record (kek version, length, wrapped key) sits before the
     * HMAC's key is known, so damage there cannot be told from a wrong key
     * folder: it is refused as a mismatch. */
    size_t mac_rec = 13 + 2 + strlen(e->id1), mac_rec_end = mac_rec + 4 + 2 + 40;
    for (size_t off = 0; off < len - 32; off++) {
        memcpy(buf, orig, len);
        buf[off] ^= 0x04;
        fix_checksum(buf, len);
        int rc = try_corrupt(e, buf, len, 0);
        if (off >= mac_rec && off < mac_rec_end) {
            if (rc != AT_EKEYMISMATCH && rc != AT_EKEYRING)
                fail_msg("MAC record flip at %zu: rc %d (%s)", off, rc, at_error_detail());
        } else if (rc != AT_EKEYRING) {
            fail_msg("flip at %zu with checksum: rc %d (%s)", off, rc, at_error_detail());
        }
        if (off >= len - 64)
            detail_has("authentication failed");
    }

    /* Truncated anywhere, extended, empty, garbage. */
    const size_t cuts[] = {0,           1,        7,        8,        12,       13,     40,
                           mac_rec_end, len - 65, len - 64, len - 33, len - 32, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(try_corrupt(e, orig, cuts[i], i % 2), AT_EKEYRING);
        detail_has(e->kr_path);
    }
    memcpy(buf, orig, len);
    memset(buf + len, 0, 16);
    assert_int_equal(try_corrupt(e, buf, len + 1, 0), AT_EKEYRING);
    assert_int_equal(try_corrupt(e, buf, len + 16, 1), AT_EKEYRING);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 131 + 17);
    assert_int_equal(try_corrupt(e, buf, len, 1), AT_EKEYRING);
    memcpy(buf, "ATRKEYR1", 8);
    assert_int_equal(try_corrupt(e, buf, len, 0), AT_EKEYRING);
    fix_checksum(buf, len);
    assert_int_equal(try_corrupt(e, buf, len, 0), AT_EKEYRING);
    assert_int_equal(try_corrupt(e, buf, 10, 0), AT_EKEYRING);

    /* Put back: opens, keys intact. */
    assert_int_equal(try_corrupt(e, orig, len, 0), 0);
    kr = kopen(e->data, e->kp1, NULL, 0);
    read_key(kr, b, 0, 2);
    keyring_close(kr);
    free(orig);
    free(buf);
}

static void test_counters_rotate(void **state)
{
    struct env *e = *state;
    uint8_t c[16], keys[4][32];
    uint32_t v = 0;
    uint64_t n = 0;
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    keyring_set_rotate_at(kr, 100);
    add(kr, "c", c);
    for (int i = 1; i <= 250; i++) {
        const uint8_t *k = write_key(kr, c, 0, &v);
        uint32_t want = (uint32_t)((i - 1) / 100 + 1);
        if (v != want)
            fail_msg("write %d: version %u, want %u", i, v, want);
        if ((i - 1) % 100 == 0)
            memcpy(keys[v], k, 32);
        assert_memory_equal(k, keys[v], 32);
    }
    status(kr, c, 0, &v, &n);
    assert_int_equal(v, 3);
    assert_int_equal(n, 50);
    for (uint32_t i = 1; i <= 3; i++)
        assert_memory_equal(read_key(kr, c, 0, i), keys[i], 32);
    assert_memory_not_equal(keys[1], keys[2], 32);
    assert_memory_not_equal(keys[2], keys[3], 32);
    const uint8_t *kk;
    assert_int_equal(keyring_key_for_read(kr, c, 0, 4, &kk), AT_ENOTFOUND);
    assert_int_equal(keyring_key_for_read(kr, c, 0, 0, &kk), AT_ENOTFOUND);
    keyring_close(kr);

    /* Reopened: versions kept, the count did not go down. */
    kr = kopen(e->data, e->kp1, NULL, 0);
    keyring_set_rotate_at(kr, 100);
    status(kr, c, 0, &v, &n);
    assert_int_equal(v, 3);
    assert_true(n >= 50 && n <= 100);
    for (uint32_t i = 1; i <= 3; i++)
        assert_memory_equal(read_key(kr, c, 0, i), keys[i], 32);
    uint64_t left = 100 - n;
    for (uint64_t i = 0; i < left; i++) {
        write_key(kr, c, 0, &v);
        assert_int_equal(v, 3);
    }
    write_key(kr, c, 0, &v);
    assert_int_equal(v, 4);
    keyring_close(kr);
}

static void test_reservation_before_use(void **state)
{
    struct env *e = *state;
    uint8_t c[16];
    uint32_t v = 0, ov = 0;
    uint64_t n = 0, on = 0;
    /* One more than a reservation block (65536): the block boundary must be
     * reserved on disk before the 65537th key is handed out. */
    const uint32_t writes = 65537;
    struct stat st1, st2;
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    keyring_set_rotate_at(kr, 100000);
    add(kr, "c", c);
    /* The common case does no I/O: every persist replaces the file (a new
     * inode), and the first block of writes needs none. */
    assert_int_equal(stat(e->kr_path, &st1), 0);
    for (uint32_t i = 0; i < 1000; i++)
        write_key(kr, c, 0, &v);
    assert_int_equal(stat(e->kr_path, &st2), 0);
    assert_true(st1.st_ino == st2.st_ino);
    for (uint32_t i = 1000; i < writes; i++)
        write_key(kr, c, 0, &v);
    status(kr, c, 0, &v, &n);
    assert_int_equal(n, writes);

    /* What a crash now would leave: the file covers every key handed out. */
    uint8_t *before;
    size_t blen;
    snapshot(e->kr_path, &before, &blen);
    struct keyring *obs = kopen(e->data, e->kp1, NULL, 0);
    status(obs, c, 0, &ov, &on);
    assert_int_equal(ov, 1);
    assert_true(on >= writes);
    assert_true(on <= 100000); /* never reserved past the rotation threshold */
    keyring_close(obs);        /* nothing to write: it must not clobber kr's file */
    same_file(e->kr_path, before, blen);
    free(before);

    /* A small threshold bounds the reservation too. */
    keyring_set_rotate_at(kr, 1000);
    for (int i = 0; i < 10; i++) {
        write_key(kr, c, 0, &v);
        assert_int_equal(v, 2);
    }
    obs = kopen(e->data, e->kp1, NULL, 0);
    status(obs, c, 0, &ov, &on);
    assert_int_equal(ov, 2);
    assert_true(on >= 10 && on <= 1000);
    keyring_close(obs);
    keyring_close(kr);

    kr = kopen(e->data, e->kp1, NULL, 0);
    status(kr, c, 0, &v, &n);
    assert_int_equal(v, 2);
    assert_true(n >= 10 && n <= 1000);
    read_key(kr, c, 0, 1);
    keyring_close(kr);
}

static void test_remove_file(void **state)
{
    struct env *e = *state;
    static const char *gone = "container-to-drop";
    uint8_t x[16], y[16], id[16], ky[32];
    uint32_t v = 0;
    uint64_t n = 0;
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, gone, x);
    add(kr, "keeper", y);
    assert_int_equal(keyring_rotate_file(kr, x, 0), 0);
    const volatile uint8_t *kx1 = read_key(kr, x, 0, 1), *kx2 = read_key(kr, x, 0, 2);
    memcpy(ky, read_key(kr, y, 0, 1), 32);

    assert_int_equal(keyring_remove_file(kr, x), 0);
    /* Wiped in memory (secmem slots stay mapped, so this is observable). */
    for (int i = 0; i < 32; i++)
        assert_int_equal(kx1[i] | kx2[i], 0);
    const uint8_t *kk;
    assert_int_equal(keyring_find_file(kr, gone, id), AT_ENOTFOUND);
    assert_int_equal(keyring_key_for_write(kr, x, 0, &v, &kk), AT_ENOTFOUND);
    assert_int_equal(keyring_key_for_read(kr, x, 0, 1, &kk), AT_ENOTFOUND);
    assert_int_equal(keyring_file_status(kr, x, 0, &v, &n), AT_ENOTFOUND);
    assert_int_equal(keyring_rotate_file(kr, x, 0), AT_ENOTFOUND);
    assert_int_equal(keyring_remove_file(kr, x), AT_ENOTFOUND);
    assert_memory_equal(read_key(kr, y, 0, 1), ky, 32);

    /* Gone from the file too. */
    uint8_t *buf;
    size_t len;
    snapshot(e->kr_path, &buf, &len);
    assert_null(memmem(buf, len, gone, strlen(gone)));
    assert_null(memmem(buf, len, x, 16));
    assert_non_null(memmem(buf, len, "keeper", 6));
    free(buf);
    keyring_close(kr);

    kr = kopen(e->data, e->kp1, NULL, 0);
    assert_int_equal(keyring_find_file(kr, gone, id), AT_ENOTFOUND);
    assert_int_equal(keyring_key_for_read(kr, x, 0, 1, &kk), AT_ENOTFOUND);
    char names[4][KEYRING_NAME_MAX];
    size_t cnt = 0;
    assert_int_equal(keyring_list_files(kr, names, NULL, 4, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_string_equal(names[0], "keeper");
    assert_memory_equal(read_key(kr, y, 0, 1), ky, 32);
    /* The name is free again, with new keys. */
    add(kr, gone, id);
    assert_memory_not_equal(id, x, 16);
    keyring_close(kr);
}

static void test_crash_safety(void **state)
{
    struct env *e = *state;
    uint8_t c[16], d[16];
    uint32_t v = 0;
    uint64_t n = 0;
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, "c", c);
    keyring_close(kr);
    assert_false(testfs_exists(e->tmp_path));

    /* A half-written tmp from a crash does not matter, and goes away. */
    static const char junk[] = "half a keyring";
    assert_int_equal(testfs_write(e->tmp_path, junk, sizeof junk, 0644), 0);
    kr = kopen(e->data, e->kp1, NULL, 0);
    read_key(kr, c, 0, 1);
    add(kr, "d", d);
    assert_false(testfs_exists(e->tmp_path));
    assert_int_equal(testfs_mode(e->kr_path), 0600);

    /* A write that cannot complete changes nothing, in memory or on disk. */
    uint8_t *before;
    size_t blen;
    for (int i = 0; i < 5; i++) /* the first one reserves (a write) */
        write_key(kr, c, 0, &v);
    snapshot(e->kr_path, &before, &blen);
    assert_int_equal(mkdir(e->tmp_path, 0700), 0); /* the tmp cannot be created */
    uint8_t id[16];
    assert_int_not_equal(keyring_add_file(kr, "e", id), 0);
    assert_int_equal(keyring_find_file(kr, "e", id), AT_ENOTFOUND);
    assert_int_not_equal(keyring_rotate_file(kr, c, 0), 0);
    assert_int_not_equal(keyring_remove_file(kr, d), 0);
    assert_int_equal(keyring_find_file(kr, "d", id), 0);
    keyring_set_rotate_at(kr, 5); /* the next write must rotate, and cannot */
    const uint8_t *kk = NULL;
    assert_int_not_equal(keyring_key_for_write(kr, c, 0, &v, &kk), 0);
    assert_null(kk);
    status(kr, c, 0, &v, &n);
    assert_int_equal(v, 1);
    assert_int_equal(n, 5);
    same_file(e->kr_path, before, blen);
    free(before);

    /* Once writes work again, so does everything. */
    assert_int_equal(rmdir(e->tmp_path), 0);
    write_key(kr, c, 0, &v);
    assert_int_equal(v, 2);
    add(kr, "e", id);
    keyring_close(kr);
    assert_false(testfs_exists(e->tmp_path));
    kr = kopen(e->data, e->kp1, NULL, 0);
    read_key(kr, c, 0, 2);
    assert_int_equal(keyring_find_file(kr, "e", id), 0);
    keyring_close(kr);
}

struct worker {
    struct keyring *kr;
    const uint8_t *id;
    int n, errors;
    const uint8_t *key;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        uint32_t v;
        const uint8_t *k;
        if (keyring_key_for_write(w->kr, w->id, 0, &v, &k) != 0 || v != 1 || k != w->key)
            w->errors++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct env *e = *state;
    uint8_t c[16];
    uint32_t v = 0;
    uint64_t n = 0;
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, "c", c);
    const uint8_t *key = read_key(kr, c, 0, 1);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){kr, c, 40000, 0, key};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].errors, 0);
    }
    status(kr, c, 0, &v, &n);
    assert_int_equal(v, 1);
    assert_int_equal(n, 160000);
    keyring_close(kr);
    kr = kopen(e->data, e->kp1, NULL, 0);
    status(kr, c, 0, &v, &n);
    assert_true(n >= 160000);
    keyring_close(kr);
}

/* Rotating the outer KEK: old wraps (MAC key, old DEKs) and new ones both
 * open with a fresh provider instance. */
static void test_outer_kek_rotation(void **state)
{
    struct env *e = *state;
    uint8_t a[16], b[16], ka[32], kb[32];
    struct keyring *kr = kopen(e->data, e->kp1, NULL, 1);
    add(kr, "a", a);
    assert_int_equal(embedded_provider_rotate(e->kp1), 0);
    add(kr, "b", b);
    memcpy(ka, read_key(kr, a, 0, 1), 32);
    memcpy(kb, read_key(kr, b, 0, 1), 32);
    keyring_close(kr);

    struct key_provider *fresh = provider(e->keys1, e->data);
    kr = kopen(e->data, fresh, NULL, 0);
    assert_memory_equal(read_key(kr, a, 0, 1), ka, 32);
    assert_memory_equal(read_key(kr, b, 0, 1), kb, 32);
    keyring_close(kr);
    kp_destroy(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation_before_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outer_kek_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
