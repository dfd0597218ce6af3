/*
 * test_vault.c — the sealed keystore: files and modes, keys that survive a
 * reopen, the wrong root key, a damaged keystore, group/other access
 * refused, soft delete/recover/purge persisted, purge protection for good,
 * A256KW against RFC 3394's vector, RSA-OAEP-256 round trips, key material
 * in locked memory only.
 */
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/secmem.h"
#include "kmstest.h"
#include "testhex.h"

static struct kms_vault *open_vault(struct kt *t, int create)
{
    struct kms_vault *v = NULL;
    int rc = kms_vault_open(&t->d, create, &v);
    if (rc)
        fail_msg("kms_vault_open: %s", at_error_detail());
    return v;
}

static struct kms_version *add(struct kms_vault *v, const char *name, int kty, const uint8_t *mat,
                               size_t len)
{
    struct kms_new_version nv = {.kty = kty, .hsm = 1, .bits = kty == KMS_KTY_OCT ? 256 : 2048,
                                 .ops = KMS_OP_WRAP | KMS_OP_UNWRAP, .enabled = 1,
                                 .tags = "{\"env\":\"test\"}"};
    struct kms_version *kv = NULL;
    uint8_t *gen = NULL;
    size_t glen = 0;
    if (!mat) {
        assert_int_equal(kms_keygen(kty, nv.bits, &gen, &glen), 0);
        mat = gen;
        len = glen;
    }
    int rc = kms_vault_add_version(v, name, &nv, mat, len, &kv);
    if (rc)
        fail_msg("add_version: %s", at_error_detail());
    secmem_free(gen, glen);
    return kv;
}

static void test_files_and_reopen(void **state)
{
    struct kt *t = *state;
    char path[PATH_MAX];
    uint8_t key[32], out[KMS_WRAP_MAX], back[KMS_WRAP_MAX], dek[32];
    size_t olen, blen;
    memset(key, 0x5a, sizeof key);
    memset(dek, 0x33, sizeof dek);
    struct kms_vault *v = open_vault(t, 1);
    assert_true(secmem_is_secure(v->root));
    struct kms_version *kv = add(v, "cmk", KMS_KTY_OCT, key, sizeof key);
    assert_int_equal(strlen(kv->id), KMS_VERSION_HEX);
    char ver[KMS_VERSION_HEX + 1];
    strcpy(ver, kv->id);
    assert_true(secmem_is_secure(v->arena + kv->mat_off));
    assert_int_equal(kms_vault_wrap(v, kv, KMS_ALG_A256KW, dek, sizeof dek, out, &olen), 0);
    assert_int_equal(olen, 40);
    struct kms_version *rsa = add(v, "rsa", KMS_KTY_RSA, NULL, 0);
    assert_int_equal(rsa->bits, 2048);
    assert_non_null(rsa->n_b64);
    assert_string_equal(rsa->e_b64, "AQAB");
    kms_vault_close(v);

    /* Files: private, and no key in the clear. */
    const char *files[] = {KMS_ROOT_FILE, KMS_KEYSTORE_FILE};
    for (int i = 0; i < 2; i++) {
        kt_file(t, files[i], path);
        assert_int_equal(testfs_mode(path), 0600);
    }
    uint8_t *ks;
    size_t kslen;
    kt_file(t, KMS_KEYSTORE_FILE, path);
    assert_int_equal(testfs_read(path, &ks, &kslen), 0);
    assert_null(memmem(ks, kslen, key, sizeof key));
    assert_null(memmem(ks, kslen, "cmk", 3)); /* names are sealed too */
    free(ks);

    /* Reopened: same keys, versions, tags; old wraps unwrap. */
    v = open_vault(t, 0);
    struct kms_key *k = kms_vault_find(v, "cmk");
    assert_non_null(k);
    assert_int_equal(k->nver, 1);
    kv = kms_key_version(k, ver);
    assert_non_null(kv);
    assert_string_equal(kv->tags, "{\"env\":\"test\"}");
    assert_int_equal(kms_vault_unwrap(v, kv, KMS_ALG_A256KW, out, olen, back, &blen), 0);
    assert_int_equal(blen, 32);
    assert_memory_equal(back, dek, 32);
    assert_null(kms_key_version(k, "00000000000000000000000000000000"));
    assert_ptr_equal(kms_key_version(k, ""), kv);
    assert_non_null(kms_vault_find(v, "rsa"));
    assert_null(kms_vault_find(v, "none"));
    kms_vault_close(v);
}

static void test_root_key(void **state)
{
    struct kt *t = *state;
    char path[PATH_MAX], b64[64];
    uint8_t other[32];
    struct kms_vault *v = open_vault(t, 1);
    add(v, "cmk", KMS_KTY_OCT, (const uint8_t *)"0123456789abcdef0123456789abcdef", 32);
    kms_vault_close(v);
    /* Another root key (from the environment) does not open it. */
    memset(other, 7, sizeof other);
    EVP_EncodeBlock((unsigned char *)b64, other, 32);
    setenv(KMS_ROOT_ENV, b64, 1);
    v = NULL;
    assert_int_equal(kms_vault_open(&t->d, 0, &v), AT_EINTEGRITY);
    assert_null(v);
    setenv(KMS_ROOT_ENV, "not base64", 1);
    assert_int_equal(kms_vault_open(&t->d, 0, &v), AT_EKEYDIR);
    unsetenv(KMS_ROOT_ENV);
    /* The right root key from the environment opens it without root.key. */
    uint8_t *text;
    size_t len;
    kt_file(t, KMS_ROOT_FILE, path);
    assert_int_equal(testfs_read(path, &text, &len), 0);
    assert_int_equal(len, strlen("atrest-kms-root-key-v1 ") + 45);
    char env[64];
    memcpy(env, text + strlen("atrest-kms-root-key-v1 "), 44);
    env[44] = '\0';
    unlink(path);
    assert_int_equal(kms_vault_open(&t->d, 1, &v), AT_EKEYDIR); /* never a new root key */
    setenv(KMS_ROOT_ENV, env, 1);
    v = open_vault(t, 0);
    assert_non_null(kms_vault_find(v, "cmk"));
    kms_vault_close(v);
    assert_false(testfs_exists(path)); /* the environment's key is not written */
    unsetenv(KMS_ROOT_ENV);
    free(text);
}

static void test_damage_and_modes(void **state)
{
    struct kt *t = *state;
    char path[PATH_MAX];
    uint8_t *ks;
    size_t len;
    struct kms_vault *v = open_vault(t, 1);
    add(v, "cmk", KMS_KTY_OCT, (const uint8_t *)"0123456789abcdef0123456789abcdef", 32);
    kms_vault_close(v);
    kt_file(t, KMS_KEYSTORE_FILE, path);
    assert_int_equal(testfs_read(path, &ks, &len), 0);
    /* A flipped bit anywhere (header, nonce, tag, body) or a cut file. */
    for (size_t off = 0; off < len; off += 7) {
        ks[off] ^= 0x10;
        assert_int_equal(testfs_write(path, ks, len, 0600), 0);
        v = NULL;
        int rc = kms_vault_open(&t->d, 0, &v);
        assert_true(rc == AT_EINTEGRITY || rc == AT_EFORMAT);
        assert_null(v);
        ks[off] ^= 0x10;
    }
    assert_int_equal(testfs_write(path, ks, len - 1, 0600), 0);
    assert_int_equal(kms_vault_open(&t->d, 0, &v), AT_EINTEGRITY);
    assert_int_equal(testfs_write(path, ks, len, 0600), 0);
    /* Group/other access refused: keystore, root key, folder. */
    chmod(path, 0640);
    assert_int_equal(kms_vault_open(&t->d, 0, &v), AT_EPERM_OPEN);
    chmod(path, 0600);
    kt_file(t, KMS_ROOT_FILE, path);
    chmod(path, 0604);
    assert_int_equal(kms_vault_open(&t->d, 0, &v), AT_EPERM_OPEN);
    chmod(path, 0600);
    v = open_vault(t, 0);
    kms_vault_close(v);
    struct kms_dir d2;
    chmod(t->path, 0750);
    assert_int_equal(kms_dir_open(t->path, 0, &d2), AT_EPERM_OPEN);
    chmod(t->path, 0700);
    free(ks);
}

static void test_delete_recover_purge(void **state)
{
    struct kt *t = *state;
    struct kms_vault *v = open_vault(t, 1);
    uint8_t mat[32] = {1};
    add(v, "a", KMS_KTY_OCT, mat, 32);
    add(v, "b", KMS_KTY_OCT, mat, 32);
    add(v, "b", KMS_KTY_OCT, mat, 32); /* a second version */
    add(v, "c", KMS_KTY_RSA, NULL, 0);
    assert_int_equal(kms_vault_delete(v, kms_vault_find(v, "b")), 0);
    struct kms_new_version nv = {.kty = KMS_KTY_OCT, .bits = 256, .enabled = 1};
    struct kms_version *kv;
    assert_int_equal(kms_vault_add_version(v, "b", &nv, mat, 32, &kv), AT_EEXIST);
    kms_vault_close(v);
    v = open_vault(t, 0);
    struct kms_key *b = kms_vault_find(v, "b");
    assert_true(b->deleted);
    assert_int_equal(b->purge_on - b->deleted_on, KMS_RETENTION_S);
    assert_int_equal(kms_vault_recover(v, b), 0);
    assert_int_equal(kms_vault_delete(v, b), 0);
    assert_int_equal(kms_vault_purge(v, b), 0);
    assert_null(kms_vault_find(v, "b"));
    /* The others survive the arena's compaction. */
    uint8_t dek[16] = {9}, w[KMS_WRAP_MAX], back[KMS_WRAP_MAX];
    size_t wl, bl;
    struct kms_version *c = kms_key_version(kms_vault_find(v, "c"), NULL);
    assert_int_equal(kms_vault_wrap(v, c, KMS_ALG_RSA_OAEP_256, dek, 16, w, &wl), 0);
    kms_vault_close(v);
    v = open_vault(t, 0);
    assert_int_equal(v->nkeys, 2);
    assert_null(kms_vault_find(v, "b"));
    c = kms_key_version(kms_vault_find(v, "c"), NULL);
    assert_int_equal(kms_vault_unwrap(v, c, KMS_ALG_RSA_OAEP_256, w, wl, back, &bl), 0);
    assert_memory_equal(back, dek, 16);
    /* Purge protection is kept for good. */
    assert_int_equal(kms_vault_set_purge_protection(v), 0);
    kms_vault_close(v);
    v = open_vault(t, 0);
    assert_true(v->flags & KMS_VAULT_PURGE_PROTECTION);
    kms_vault_close(v);
}

static void test_wrap_algorithms(void **state)
{
    struct kt *t = *state;
    struct kms_vault *v = open_vault(t, 1);
    /* RFC 3394 section 4.6: 256 bits of key data with a 256-bit KEK. */
    uint8_t kek[32], data[32], want[40], out[KMS_WRAP_MAX], back[KMS_WRAP_MAX];
    size_t olen, blen;
    testhex_decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", kek, 32);
    testhex_decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", data, 32);
    testhex_decode("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
                   want, 40);
    struct kms_version *kv = add(v, "kek", KMS_KTY_OCT, kek, 32);
    assert_int_equal(kms_vault_wrap(v, kv, KMS_ALG_A256KW, data, 32, out, &olen), 0);
    assert_int_equal(olen, 40);
    assert_memory_equal(out, want, 40);
    assert_int_equal(kms_vault_unwrap(v, kv, KMS_ALG_A256KW, want, 40, back, &blen), 0);
    assert_memory_equal(back, data, 32);
    /* Damaged input: refused, output wiped. */
    want[5] ^= 1;
    memset(back, 0xee, sizeof back);
    assert_int_equal(kms_vault_unwrap(v, kv, KMS_ALG_A256KW, want, 40, back, &blen),
                     AT_EINTEGRITY);
    for (int i = 0; i < 40; i++)
        assert_int_equal(back[i], 0);
    /* RFC 3394 needs whole 64-bit blocks, two at least. */
    assert_int_equal(kms_vault_wrap(v, kv, KMS_ALG_A256KW, data, 12, out, &olen), AT_EINVAL);
    assert_int_equal(kms_vault_wrap(v, kv, KMS_ALG_A256KW, data, 8, out, &olen), AT_EINVAL);
    /* Algorithms must fit the key type. */
    assert_int_equal(kms_vault_wrap(v, kv, KMS_ALG_RSA_OAEP_256, data, 32, out, &olen), AT_EINVAL);
    struct kms_version *rsa = add(v, "rsa", KMS_KTY_RSA, NULL, 0);
    assert_int_equal(kms_vault_wrap(v, rsa, KMS_ALG_A256KW, data, 32, out, &olen), AT_EINVAL);
    assert_int_equal(kms_vault_wrap(v, rsa, KMS_ALG_RSA_OAEP_256, data, 32, out, &olen), 0);
    assert_int_equal(olen, 256);
    assert_int_equal(kms_vault_unwrap(v, rsa, KMS_ALG_RSA_OAEP_256, out, olen, back, &blen), 0);
    assert_int_equal(blen, 32);
    assert_memory_equal(back, data, 32);
    /* OAEP-256 ciphertext does not open as OAEP (SHA-1), nor when damaged. */
    assert_int_equal(kms_vault_unwrap(v, rsa, KMS_ALG_RSA_OAEP, out, olen, back, &blen),
                     AT_EINTEGRITY);
    out[100] ^= 1;
    assert_int_equal(kms_vault_unwrap(v, rsa, KMS_ALG_RSA_OAEP_256, out, olen, back, &blen),
                     AT_EINTEGRITY);
    kms_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_and_reopen, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_root_key, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_damage_and_modes, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_delete_recover_purge, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_wrap_algorithms, kt_setup, kt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
