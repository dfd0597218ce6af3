/*
 * test_token.c — bearer tokens: mint and verify, what a forged, altered,
 * expired or foreign token gets, and the token secret file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "crypto/secmem.h"
#include "kmstest.h"

static const uint8_t SECRET[KMS_SECRET_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t OTHER[KMS_SECRET_LEN] = "0123456789abcdef0123456789abcdeF";

static void test_round_trip(void **state)
{
    (void)state;
    char tok[KMS_TOKEN_MAX];
    struct kms_identity id;
    assert_int_equal(kms_token_mint(SECRET, "atrestd", 0, 1000, 60, tok), 0);
    assert_int_equal(strncmp(tok, "akms1.", 6), 0);
    assert_int_equal(kms_token_verify(SECRET, tok, 1000, &id), 0);
    assert_string_equal(id.name, "atrestd");
    assert_int_equal(id.admin, 0);
    assert_int_equal(id.expires, 1060);
    assert_int_equal(kms_token_mint(SECRET, "ops@example.com", 1, 1000, 60, tok), 0);
    assert_int_equal(kms_token_verify(SECRET, tok, 1059, &id), 0);
    assert_string_equal(id.name, "ops@example.com");
    assert_int_equal(id.admin, 1);
}

static void test_refused(void **state)
{
    (void)state;
    char tok[KMS_TOKEN_MAX], bad[KMS_TOKEN_MAX + 8];
    struct kms_identity id;
    assert_int_equal(kms_token_mint(SECRET, "app", 0, 1000, 60, tok), 0);
    /* Expired at exactly issued + ttl. */
    assert_int_equal(kms_token_verify(SECRET, tok, 1060, &id), AT_EINVAL);
    /* Another service's secret. */
    assert_int_equal(kms_token_verify(OTHER, tok, 1000, &id), AT_EINVAL);
    /* Every single-character change is refused. */
    for (size_t i = 0; i < strlen(tok); i++) {
        strcpy(bad, tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_not_equal(kms_token_verify(SECRET, bad, 1000, &id), 0);
    }
    /* A payload promoted to admin, with the MAC of the original. */
    char payload[64], b64[128];
    snprintf(payload, sizeof payload, "app|a|1000|1060");
    kms_b64url_encode((const uint8_t *)payload, strlen(payload), b64);
    snprintf(bad, sizeof bad, "akms1.%s%s", b64, strrchr(tok, '.'));
    assert_int_equal(kms_token_verify(SECRET, bad, 1000, &id), AT_EINVAL);
    /* Truncated, empty, junk, missing MAC. */
    strcpy(bad, tok);
    bad[strlen(bad) - 3] = '\0';
    assert_int_equal(kms_token_verify(SECRET, bad, 1000, &id), AT_EINVAL);
    assert_int_equal(kms_token_verify(SECRET, "", 1000, &id), AT_EINVAL);
    assert_int_equal(kms_token_verify(SECRET, NULL, 1000, &id), AT_EINVAL);
    assert_int_equal(kms_token_verify(SECRET, "akms1.", 1000, &id), AT_EINVAL);
    assert_int_equal(kms_token_verify(SECRET, "Bearer x.y.z", 1000, &id), AT_EINVAL);
    /* Identities are restricted; lifetimes positive. */
    assert_int_equal(kms_token_mint(SECRET, "a|b", 0, 1000, 60, tok), AT_EINVAL);
    assert_int_equal(kms_token_mint(SECRET, "", 0, 1000, 60, tok), AT_EINVAL);
    assert_int_equal(kms_token_mint(SECRET, "app", 0, 1000, 0, tok), AT_EINVAL);
}

static void test_secret_file(void **state)
{
    struct kt *t = *state;
    uint8_t *s1 = NULL, *s2 = NULL;
    char path[PATH_MAX], tok[KMS_TOKEN_MAX];
    struct kms_identity id;
    assert_int_equal(kms_token_secret_load(&t->d, 0, &s1), AT_EKEYDIR); /* none yet */
    assert_int_equal(kms_token_secret_load(&t->d, 1, &s1), 0);
    assert_true(secmem_is_secure(s1));
    kt_file(t, KMS_SECRET_FILE, path);
    assert_int_equal(testfs_mode(path), 0600);
    assert_int_equal(kms_token_secret_load(&t->d, 1, &s2), 0);
    assert_memory_equal(s1, s2, KMS_SECRET_LEN); /* created once, then read */
    /* A token minted by one process verifies in another (no round trip). */
    assert_int_equal(kms_token_mint(s1, "app", 0, 1000, 60, tok), 0);
    assert_int_equal(kms_token_verify(s2, tok, 1001, &id), 0);
    secmem_free(s1, KMS_SECRET_LEN);
    secmem_free(s2, KMS_SECRET_LEN);
    chmod(path, 0640);
    assert_int_equal(kms_token_secret_load(&t->d, 1, &s1), AT_EPERM_OPEN);
    assert_int_equal(testfs_write(path, "not a secret\n", 13, 0600), 0);
    assert_int_equal(kms_token_secret_load(&t->d, 1, &s1), AT_EKEYDIR);
    assert_null(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test_setup_teardown(test_secret_file, kt_setup, kt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
