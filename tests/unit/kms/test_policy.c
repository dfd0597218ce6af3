/*
 * test_policy.c — access policies: permission lists, the policy file
 * (parse, grant, revoke, drop), the decision for each kind of request, and
 * the daemon's view picking up a change made by another process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kmstest.h"

static void test_perms(void **state)
{
    (void)state;
    unsigned p = 0;
    char buf[64];
    assert_int_equal(kms_perms_parse("get,wrapKey,unwrapKey", &p), 0);
    assert_int_equal(p, KMS_PERM_ALL);
    assert_int_equal(kms_perms_parse("UNWRAPKEY", &p), 0);
    assert_int_equal(p, KMS_PERM_UNWRAP);
    assert_int_equal(kms_perms_parse("wrapKey,get", &p), 0);
    kms_perms_format(p, buf, sizeof buf);
    assert_string_equal(buf, "get,wrapKey");
    assert_int_equal(kms_perms_parse("get,sign", &p), -1);
    assert_int_equal(kms_perms_parse("", &p), -1);
    assert_int_equal(kms_perms_parse("wrap", &p), -1);
}

static void test_parse(void **state)
{
    (void)state;
    struct kms_policy p;
    const char *text = "# comment\n"
                       "cmk atrestd wrapKey,unwrapKey\n"
                       "\n"
                       "cmk auditor get\n"
                       "cmk atrestd get\n" /* merged with the first */
                       "other atrestd get";
    assert_int_equal(kms_policy_parse(text, strlen(text), &p), 0);
    assert_int_equal(p.n, 3);
    assert_int_equal(kms_policy_perms(&p, "cmk", "atrestd"), KMS_PERM_ALL);
    assert_int_equal(kms_policy_perms(&p, "cmk", "auditor"), KMS_PERM_GET);
    assert_int_equal(kms_policy_perms(&p, "other", "atrestd"), KMS_PERM_GET);
    assert_int_equal(kms_policy_perms(&p, "other", "auditor"), 0);
    assert_int_equal(kms_policy_perms(&p, "cmk", "nobody"), 0);
    assert_int_equal(kms_policy_perms(&p, "CMK", "atrestd"), 0); /* names are exact */
    kms_policy_free(&p);
    static const char *const bad[] = {"cmk atrestd\n", "cmk atrestd get extra\n",
                                      "cmk atrestd sign\n", "c_mk atrestd get\n",
                                      "cmk atr|estd get\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kms_policy_parse(bad[i], strlen(bad[i]), &p), AT_EFORMAT);
}

static void test_decisions(void **state)
{
    (void)state;
    struct kms_identity admin = {.name = "root", .admin = 1}, app = {.name = "app"};
    const enum kms_action all[] = {KMS_ACT_GET, KMS_ACT_WRAP, KMS_ACT_UNWRAP, KMS_ACT_MANAGE,
                                   KMS_ACT_LISTALL};
    for (size_t i = 0; i < 5; i++) {
        /* Admins may do everything, whatever the policy says. */
        assert_true(kms_access_allowed(&admin, 0, all[i]));
        /* Nobody without an identity. */
        assert_false(kms_access_allowed(NULL, KMS_PERM_ALL, all[i]));
    }
    assert_false(kms_access_allowed(&app, 0, KMS_ACT_GET));
    assert_true(kms_access_allowed(&app, KMS_PERM_GET, KMS_ACT_GET));
    assert_false(kms_access_allowed(&app, KMS_PERM_GET, KMS_ACT_WRAP));
    assert_true(kms_access_allowed(&app, KMS_PERM_WRAP, KMS_ACT_WRAP));
    assert_false(kms_access_allowed(&app, KMS_PERM_WRAP, KMS_ACT_UNWRAP));
    assert_true(kms_access_allowed(&app, KMS_PERM_UNWRAP, KMS_ACT_UNWRAP));
    /* A grant never extends to managing keys or listing deleted ones. */
    assert_false(kms_access_allowed(&app, KMS_PERM_ALL, KMS_ACT_MANAGE));
    assert_false(kms_access_allowed(&app, KMS_PERM_ALL, KMS_ACT_LISTALL));
}

static void test_edit_and_view(void **state)
{
    struct kt *t = *state;
    struct kms_policy_view pv;
    char path[PATH_MAX];
    kt_file(t, KMS_POLICY_FILE, path);
    kms_policy_view_init(&pv);
    /* No file: no grants. */
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "app"), 0);

    assert_int_equal(kms_policy_edit(&t->d, "cmk", "app", KMS_PERM_WRAP | KMS_PERM_UNWRAP, 1), 0);
    assert_int_equal(testfs_mode(path), 0600);
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "app"), KMS_PERM_WRAP | KMS_PERM_UNWRAP);

    assert_int_equal(kms_policy_edit(&t->d, "cmk", "app", KMS_PERM_GET, 1), 0);
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "ops", KMS_PERM_GET, 1), 0);
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "app", KMS_PERM_UNWRAP, 0), 0);
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "app"), KMS_PERM_GET | KMS_PERM_WRAP);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "ops"), KMS_PERM_GET);

    /* Revoke without a list: everything that identity had on the key. */
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "app", 0, 0), 0);
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "app"), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "ops"), KMS_PERM_GET);

    /* A purged key takes its grants with it. */
    assert_int_equal(kms_policy_edit(&t->d, "other", "ops", KMS_PERM_GET, 1), 0);
    assert_int_equal(kms_policy_drop_key(&t->d, "cmk"), 0);
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "cmk", "ops"), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "other", "ops"), KMS_PERM_GET);

    /* Bad input is refused before the file is touched. */
    assert_int_equal(kms_policy_edit(&t->d, "bad name", "ops", KMS_PERM_GET, 1), AT_EINVAL);
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "", KMS_PERM_GET, 1), AT_EINVAL);
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "ops", 0, 1), AT_EINVAL);

    /* A broken file: the view fails closed, and recovers when fixed. */
    uint8_t *saved;
    size_t len;
    assert_int_equal(testfs_read(path, &saved, &len), 0);
    assert_int_equal(testfs_write(path, "garbage line\n", 13, 0600), 0);
    assert_int_not_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "other", "ops"), 0);
    assert_int_equal(testfs_write(path, saved, len, 0600), 0);
    assert_int_equal(kms_policy_view_refresh(&pv, &t->d), 0);
    assert_int_equal(kms_policy_view_perms(&pv, "other", "ops"), KMS_PERM_GET);
    /* Readable by others: refused like any other file of the folder. */
    chmod(path, 0644);
    assert_int_equal(kms_policy_edit(&t->d, "cmk", "ops", KMS_PERM_GET, 1), AT_EPERM_OPEN);
    free(saved);
    kms_policy_view_free(&pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perms),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test_setup_teardown(test_edit_and_view, kt_setup, kt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
