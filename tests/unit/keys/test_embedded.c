/*
 * test_embedded.c — the embedded key provider: create/open, wrap/unwrap,
 * KEK rotation, key folder placement and permission checks, the root key
 * file and ATREST_ROOT_KEY, and a damaged keystore.
 */
#include <errno.h>
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
#include "testfs.h"

struct env {
    char root[PATH_MAX]; /* the test's temp folder, resolved */
    char keys[PATH_MAX]; /* root/keys */
    char data[PATH_MAX]; /* root/data (not created) */
    char rootkey[PATH_MAX], keystore[PATH_MAX];
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    char tmp[PATH_MAX];
    if (!e)
        return -1;
    unsetenv("ATREST_ROOT_KEY");
    testfs_mkdtemp(tmp, "embedded");
    if (!realpath(tmp, e->root))
        return -1;
    testfs_join(e->keys, e->root, "keys");
    testfs_join(e->data, e->root, "data");
    testfs_join(e->rootkey, e->keys, "root.key");
    testfs_join(e->keystore, e->keys, "keystore");
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    unsetenv("ATREST_ROOT_KEY");
    testfs_rm_rf(e->root);
    free(e);
    return 0;
}

static struct key_provider *create(struct env *e)
{
    struct key_provider *kp = NULL;
    int rc = embedded_provider_open(e->keys, e->data, 1, &kp);
    if (rc)
        fail_msg("create: %s", at_error_detail());
    return kp;
}

static void key_id(struct key_provider *kp, char id[KP_KEY_ID_MAX])
{
    assert_int_equal(kp_key_id(kp, id, KP_KEY_ID_MAX), 0);
}

static void read_file(const char *path, uint8_t **buf, size_t *len)
{
    assert_int_equal(testfs_read(path, buf, len), 0);
}

/* The detail of the last error mentions every given string. */
static void detail_has(const char *a, const char *b)
{
    const char *d = at_error_detail();
    if (!strstr(d, a) || (b && !strstr(d, b)))
        fail_msg("detail \"%s\" lacks \"%s\"%s%s", d, a, b ? " or " : "", b ? b : "");
}

static void test_create_open_round_trip(void **state)
{
    struct env *e = *state;
    char id1[KP_KEY_ID_MAX], id2[KP_KEY_ID_MAX];
    uint8_t key[32], *out = secmem_alloc(KP_KEY_MAX);
    struct kp_wrapped w;
    size_t n = 0;
    uint32_t v = 0;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 5 + 1);

    struct key_provider *kp = create(e);
    assert_string_equal(kp->ops->name, "embedded");
    key_id(kp, id1);
    assert_int_equal(strncmp(id1, "embedded:", 9), 0);
    assert_int_equal(strlen(id1), 9 + 32);
    assert_int_equal(strspn(id1 + 9, "0123456789abcdef"), 32);
    assert_int_equal(kp_current_version(kp, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(kp_health(kp), 0);
    assert_int_equal(kp_wrap(kp, key, sizeof key, &w), 0);
    assert_int_equal(w.kek_version, 1);
    assert_int_equal(w.len, 40);
    kp_destroy(kp);

    /* What create left on disk. */
    assert_int_equal(testfs_mode(e->keys), 0700);
    assert_int_equal(testfs_mode(e->rootkey), 0600);
    assert_int_equal(testfs_mode(e->keystore), 0600);
    assert_false(testfs_exists(e->data)); /* the provider never creates it */
    uint8_t *buf;
    size_t len;
    read_file(e->rootkey, &buf, &len);
    assert_int_equal(len, strlen("atrest-root-key-v1 ") + 44 + 1);
    assert_memory_equal(buf, "atrest-root-key-v1 ", 19);
    assert_int_equal(buf[len - 2], '=');
    assert_int_equal(buf[len - 1], '\n');
    free(buf);
    read_file(e->keystore, &buf, &len);
    assert_int_equal(len, 56 + 36);
    assert_memory_equal(buf, "ATKS", 4);
    assert_null(memmem(buf, len, key, sizeof key));
    free(buf);

    /* Reopen without create: same identity, the old wrapped key unwraps. */
    kp = NULL;
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    key_id(kp, id2);
    assert_string_equal(id1, id2);
    assert_int_equal(kp_unwrap(kp, &w, out, &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(out, key, 32);
    kp_destroy(kp);
    secmem_free(out, KP_KEY_MAX);
}

static void test_create_never_overwrites(void **state)
{
    struct env *e = *state;
    char id1[KP_KEY_ID_MAX], id2[KP_KEY_ID_MAX];
    uint8_t *rk1, *ks1, *rk2, *ks2;
    size_t rl1, kl1, rl2, kl2;
    struct key_provider *kp = create(e);
    key_id(kp, id1);
    kp_destroy(kp);
    read_file(e->rootkey, &rk1, &rl1);
    read_file(e->keystore, &ks1, &kl1);

    kp = create(e);
    key_id(kp, id2);
    kp_destroy(kp);
    assert_string_equal(id1, id2);
    read_file(e->rootkey, &rk2, &rl2);
    read_file(e->keystore, &ks2, &kl2);
    assert_int_equal(rl1, rl2);
    assert_memory_equal(rk1, rk2, rl1);
    assert_int_equal(kl1, kl2);
    assert_memory_equal(ks1, ks2, kl1);
    free(rk1);
    free(ks1);
    free(rk2);
    free(ks2);
}

static void test_wrap_unwrap(void **state)
{
    struct env *e = *state;
    struct env other;
    uint8_t key[32], *out = secmem_alloc(KP_KEY_MAX);
    struct kp_wrapped w, bad;
    size_t n = 0;
    memset(key, 0x3c, sizeof key);
    struct key_provider *kp = create(e);
    assert_int_equal(kp_wrap(kp, key, sizeof key, &w), 0);
    assert_memory_not_equal(w.bytes, key, 32);
    assert_int_equal(kp_unwrap(kp, &w, out, &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(out, key, 32);

    /* Odd sizes round-trip too. */
    struct kp_wrapped w7;
    assert_int_equal(kp_wrap(kp, key, 7, &w7), 0);
    assert_int_equal(w7.len, 16);
    assert_int_equal(kp_unwrap(kp, &w7, out, &n), 0);
    assert_int_equal(n, 7);

    /* Unknown KEK version. */
    bad = w;
    bad.kek_version = 2;
    assert_int_equal(kp_unwrap(kp, &bad, out, &n), AT_ENOTFOUND);
    /* Damaged wrapped key, at several places. */
    for (int i = 0; i < 40; i += 13) {
        bad = w;
        bad.bytes[i] ^= 0x01;
        assert_int_equal(kp_unwrap(kp, &bad, out, &n), AT_EINTEGRITY);
    }
    bad = w;
    bad.len = 36;
    assert_int_equal(kp_unwrap(kp, &bad, out, &n), AT_EINTEGRITY);
    /* Too large to wrap. */
    uint8_t big[KP_KEY_MAX + 1] = {0};
    assert_int_equal(kp_wrap(kp, big, sizeof big, &bad), AT_EINVAL);

    /* Another key folder (another keystore) cannot unwrap it. */
    memcpy(&other, e, sizeof other);
    testfs_join(other.keys, e->root, "keys2");
    struct key_provider *kp2 = create(&other);
    char id1[KP_KEY_ID_MAX], id2[KP_KEY_ID_MAX];
    key_id(kp, id1);
    key_id(kp2, id2);
    assert_string_not_equal(id1, id2);
    assert_int_equal(kp_unwrap(kp2, &w, out, &n), AT_EINTEGRITY);
    kp_destroy(kp2);
    kp_destroy(kp);
    secmem_free(out, KP_KEY_MAX);
}

static void test_rotate(void **state)
{
    struct env *e = *state;
    uint8_t k1[32], k2[32], *out = secmem_alloc(KP_KEY_MAX);
    struct kp_wrapped w1, w2;
    size_t n = 0;
    uint32_t v = 0;
    memset(k1, 0x11, sizeof k1);
    memset(k2, 0x22, sizeof k2);
    struct key_provider *kp = create(e);
    assert_int_equal(kp_wrap(kp, k1, 32, &w1), 0);
    assert_int_equal(embedded_provider_rotate(kp), 0);
    assert_int_equal(kp_current_version(kp, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(kp_wrap(kp, k2, 32, &w2), 0);
    assert_int_equal(w2.kek_version, 2);
    assert_int_equal(kp_unwrap(kp, &w1, out, &n), 0);
    assert_memory_equal(out, k1, 32);
    assert_int_equal(kp_unwrap(kp, &w2, out, &n), 0);
    assert_memory_equal(out, k2, 32);
    kp_destroy(kp);

    /* Persisted: a fresh open knows both versions, v2 current. */
    uint8_t *buf;
    size_t len;
    read_file(e->keystore, &buf, &len);
    assert_int_equal(len, 56 + 2 * 36);
    free(buf);
    assert_false(testfs_exists(e->keystore) && testfs_mode(e->keystore) != 0600);
    char tmp[PATH_MAX];
    testfs_join(tmp, e->keys, "keystore.tmp");
    assert_false(testfs_exists(tmp));
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    assert_int_equal(kp_current_version(kp, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(kp_unwrap(kp, &w1, out, &n), 0);
    assert_memory_equal(out, k1, 32);
    assert_int_equal(kp_unwrap(kp, &w2, out, &n), 0);
    assert_memory_equal(out, k2, 32);
    assert_int_equal(embedded_provider_rotate(kp), 0);
    assert_int_equal(kp_current_version(kp, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(kp_unwrap(kp, &w1, out, &n), 0);
    kp_destroy(kp);
    secmem_free(out, KP_KEY_MAX);
}

static void expect_keydir(const char *keys, const char *data, int create_it)
{
    struct key_provider *kp = NULL;
    int rc = embedded_provider_open(keys, data, create_it, &kp);
    if (rc != AT_EKEYDIR)
        fail_msg("keys %s data %s: rc %d (%s)", keys, data, rc, at_error_detail());
    assert_null(kp);
}

static void test_placement(void **state)
{
    struct env *e = *state;
    char p[PATH_MAX], q[PATH_MAX + 32];
    assert_int_equal(mkdir(e->data, 0700), 0);

    /* Equal. */
    expect_keydir(e->data, e->data, 1);
    detail_has(e->data, "is the data folder");
    /* Inside (the key folder does not exist yet: nothing may be created). */
    testfs_join(p, e->data, "keys");
    expect_keydir(p, e->data, 1);
    detail_has("inside the data folder", NULL);
    assert_false(testfs_exists(p));
    /* Inside, spelled with ".." through a folder that does not exist. */
    snprintf(q, sizeof q, "%s/nothere/../keys", e->data);
    expect_keydir(q, e->data, 1);
    /* Containing (the data folder need not exist). */
    testfs_join(p, e->keys, "data");
    expect_keydir(e->keys, p, 1);
    detail_has("contains the data folder", NULL);
    assert_false(testfs_exists(e->keys));
    expect_keydir(e->root, e->data, 1);
    /* A symlink to the data folder is the data folder. */
    testfs_join(p, e->root, "link");
    assert_int_equal(symlink(e->data, p), 0);
    expect_keydir(p, e->data, 1);
    /* A relative path: resolved against the working directory. */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(e->data), 0);
    expect_keydir("./sub/keys", e->data, 1);
    expect_keydir(".", e->data, 1);
    assert_int_equal(chdir(cwd), 0);

    /* Siblings are fine. */
    struct key_provider *kp = create(e);
    kp_destroy(kp);
}

static void test_missing_key_folder(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EKEYDIR);
    detail_has(e->keys, "does not exist");
    assert_false(testfs_exists(e->keys));
    assert_null(kp);
    /* An empty key folder: no keystore, and nothing is created. */
    assert_int_equal(mkdir(e->keys, 0700), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EKEYDIR);
    assert_false(testfs_exists(e->keystore));
    assert_false(testfs_exists(e->rootkey));
}

static void expect_perm(struct env *e, const char *path, const char *mode)
{
    struct key_provider *kp = NULL;
    int rc = embedded_provider_open(e->keys, e->data, 0, &kp);
    if (rc != AT_EPERM_OPEN)
        fail_msg("%s: rc %d (%s)", path, rc, at_error_detail());
    detail_has(path, mode);
    assert_null(kp);
}

static void test_permissions(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = create(e);
    kp_destroy(kp);

    assert_int_equal(chmod(e->keys, 0750), 0);
    expect_perm(e, e->keys, "0750");
    assert_int_equal(chmod(e->keys, 0701), 0);
    expect_perm(e, e->keys, "0701");
    assert_int_equal(chmod(e->keys, 0700), 0);

    assert_int_equal(chmod(e->rootkey, 0644), 0);
    expect_perm(e, e->rootkey, "0644");
    detail_has("chmod 600", NULL);
    assert_int_equal(chmod(e->rootkey, 0620), 0);
    expect_perm(e, e->rootkey, "0620");
    assert_int_equal(chmod(e->rootkey, 0600), 0);

    assert_int_equal(chmod(e->keystore, 0640), 0);
    expect_perm(e, e->keystore, "0640");
    assert_int_equal(chmod(e->keystore, 0604), 0);
    expect_perm(e, e->keystore, "0604");
    assert_int_equal(chmod(e->keystore, 0600), 0);

    /* Create does not repair permissions either. */
    assert_int_equal(chmod(e->rootkey, 0644), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 1, &kp), AT_EPERM_OPEN);
    assert_int_equal(testfs_mode(e->rootkey), 0644);
    assert_int_equal(chmod(e->rootkey, 0600), 0);

    /* Owned by someone else (only root can arrange that). */
    if (geteuid() == 0) {
        assert_int_equal(chown(e->rootkey, 12345, 12345), 0);
        expect_perm(e, e->rootkey, "owned by uid 12345");
        assert_int_equal(chown(e->rootkey, 0, 0), 0);
        assert_int_equal(chown(e->keys, 12345, 12345), 0);
        expect_perm(e, e->keys, "owned by uid 12345");
        assert_int_equal(chown(e->keys, 0, 0), 0);
    }

    /* A symlinked key file is refused, not followed. */
    char elsewhere[PATH_MAX];
    testfs_join(elsewhere, e->root, "root.key.real");
    assert_int_equal(rename(e->rootkey, elsewhere), 0);
    assert_int_equal(symlink(elsewhere, e->rootkey), 0);
    assert_int_not_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    assert_int_equal(unlink(e->rootkey), 0);
    assert_int_equal(rename(elsewhere, e->rootkey), 0);

    /* All fixed: opens again. */
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    kp_destroy(kp);
}

static void test_keystore_without_root_key(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = create(e);
    kp_destroy(kp);
    uint8_t *before, *after;
    size_t lb, la;
    read_file(e->keystore, &before, &lb);
    assert_int_equal(unlink(e->rootkey), 0);
    kp = NULL;
    for (int c = 0; c < 2; c++) {
        assert_int_equal(embedded_provider_open(e->keys, e->data, c, &kp), AT_EKEYDIR);
        detail_has("root.key", "keystore");
        assert_null(kp);
    }
    /* Create neither made a new root key nor touched the keystore. */
    assert_false(testfs_exists(e->rootkey));
    read_file(e->keystore, &after, &la);
    assert_int_equal(la, lb);
    assert_memory_equal(before, after, lb);
    free(before);
    free(after);
}

#define ENV_KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */
#define ENV_KEY_B "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=" /* bytes 31..62 */

static void test_root_key_from_env(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = NULL;
    char id1[KP_KEY_ID_MAX], id2[KP_KEY_ID_MAX];
    setenv("ATREST_ROOT_KEY", ENV_KEY_A, 1);
    kp = create(e);
    key_id(kp, id1);
    kp_destroy(kp);
    assert_false(testfs_exists(e->rootkey));
    assert_true(testfs_exists(e->keystore));

    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    key_id(kp, id2);
    assert_string_equal(id1, id2);
    kp_destroy(kp);

    /* Another root key cannot open the keystore. */
    setenv("ATREST_ROOT_KEY", ENV_KEY_B, 1);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EINTEGRITY);
    detail_has(e->keystore, "root key");
    /* Not a key. */
    static const char *bad[] = {"", "short", ENV_KEY_A "A",
                                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx*dHh8="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("ATREST_ROOT_KEY", bad[i], 1);
        assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EKEYDIR);
        detail_has("ATREST_ROOT_KEY", NULL);
    }
    /* Unset: root.key is needed and missing. */
    unsetenv("ATREST_ROOT_KEY");
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EKEYDIR);

    /* A root.key in the same form as the environment opens it. */
    const char *line = "atrest-root-key-v1 " ENV_KEY_A "\n";
    assert_int_equal(testfs_write(e->rootkey, line, strlen(line), 0600), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    kp_destroy(kp);
}

static void test_bad_root_key_file(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = create(e);
    kp_destroy(kp);
    kp = NULL;
    static const char *bad[] = {
        "",
        "atrest-root-key-v1 \n",
        "atrest-root-key-v2 " ENV_KEY_A "\n",
        "atrest-root-key-v1 " ENV_KEY_A "\nextra\n",
        "atrest-root-key-v1 " ENV_KEY_A "AAAA\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(testfs_write(e->rootkey, bad[i], strlen(bad[i]), 0600), 0);
        assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EKEYDIR);
        detail_has(e->rootkey, NULL);
    }
    /* A well-formed but different root key: the keystore fails to open. */
    const char *other = "atrest-root-key-v1 " ENV_KEY_B "\n";
    assert_int_equal(testfs_write(e->rootkey, other, strlen(other), 0600), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EINTEGRITY);
    assert_null(kp);
}

static void test_damaged_keystore(void **state)
{
    struct env *e = *state;
    struct key_provider *kp = create(e);
    assert_int_equal(embedded_provider_rotate(kp), 0);
    kp_destroy(kp);
    kp = NULL;
    uint8_t *orig, *buf;
    size_t len;
    read_file(e->keystore, &orig, &len);
    assert_int_equal(len, 56 + 72);
    buf = malloc(len + 1);
    assert_non_null(buf);

    /* Every byte: header (AAD), nonce, tag and body are all covered. */
    for (size_t off = 0; off < len; off++) {
        memcpy(buf, orig, len);
        buf[off] ^= 0x10;
        assert_int_equal(testfs_write(e->keystore, buf, len, 0600), 0);
        int rc = embedded_provider_open(e->keys, e->data, 0, &kp);
        if (off < 8)
            assert_int_equal(rc, AT_EFORMAT); /* magic, format version */
        else if (rc != AT_EINTEGRITY)
            fail_msg("offset %zu: rc %d (%s)", off, rc, at_error_detail());
        assert_null(kp);
    }
    /* Truncated, extended, empty. */
    static const size_t cuts[] = {0, 4, 8, 55, 56, 91, 127};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(testfs_write(e->keystore, orig, cuts[i], 0600), 0);
        assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EINTEGRITY);
        detail_has(e->keystore, NULL);
    }
    memcpy(buf, orig, len);
    buf[len] = 0;
    assert_int_equal(testfs_write(e->keystore, buf, len + 1, 0600), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), AT_EINTEGRITY);

    /* Create on a damaged keystore refuses and does not replace it. */
    assert_int_equal(testfs_write(e->keystore, orig, 60, 0600), 0);
    assert_int_not_equal(embedded_provider_open(e->keys, e->data, 1, &kp), 0);
    uint8_t *now;
    size_t nlen;
    read_file(e->keystore, &now, &nlen);
    assert_int_equal(nlen, 60);
    free(now);

    /* Restored: opens. */
    assert_int_equal(testfs_write(e->keystore, orig, len, 0600), 0);
    assert_int_equal(embedded_provider_open(e->keys, e->data, 0, &kp), 0);
    kp_destroy(kp);
    free(orig);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_placement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keystore_without_root_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_key_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_root_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_keystore, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
