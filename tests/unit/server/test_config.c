/*
 * test_config.c — atrestd's backup settings (config.c): continuous mode
 * from flags and from the environment, and the combinations refused
 * (an unknown mode, a window other than 7 or 30 days, a ship interval out
 * of range, continuous-only settings without continuous mode, continuous
 * mode without a target), and number settings that are not numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/server.h"
#include "storage/pagecache.h"

/* config_load on a copy of args (getopt may permute, key flags are wiped). */
static int load(struct config *c, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("atrestd");
    for (; *args; args++)
        argv[argc++] = strdup(*args);
    argv[argc] = NULL;
    int rc = config_load(c, argc, argv);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

static void test_continuous_flags(void **state)
{
    (void)state;
    struct config c;
    const char *ok[] = {"--backup-target",
                        "file:/tmp/x",
                        "--backup-mode",
                        "continuous",
                        "--backup-continuous-days",
                        "30",
                        "--backup-ship-seconds",
                        "5",
                        NULL};
    assert_int_equal(load(&c, ok), 0);
    assert_int_equal(c.backup_continuous, 1);
    assert_int_equal(c.backup_days, 30);
    assert_int_equal(c.backup_ship_s, 5);
    config_free(&c);
    const char *full[] = {"--backup-target", "file:/tmp/x", "--backup-mode", "full", NULL};
    assert_int_equal(load(&c, full), 0);
    assert_int_equal(c.backup_continuous, 0);
    config_free(&c);
}

static void test_continuous_refused(void **state)
{
    (void)state;
    struct config c;
    const char *bad_mode[] = {"--backup-target", "file:/x", "--backup-mode", "sometimes", NULL};
    const char *bad_days[] = {"--backup-target",
                              "file:/x",
                              "--backup-mode",
                              "continuous",
                              "--backup-continuous-days",
                              "10",
                              NULL};
    const char *bad_ship[] = {"--backup-target",
                              "file:/x",
                              "--backup-mode",
                              "continuous",
                              "--backup-ship-seconds",
                              "61",
                              NULL};
    const char *days_full[] = {"--backup-target", "file:/x", "--backup-continuous-days", "7", NULL};
    const char *no_target[] = {"--backup-mode", "continuous", NULL};
    const char *const *cases[] = {bad_mode, bad_days, bad_ship, days_full, no_target};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(load(&c, cases[i]), -1);
        config_free(&c);
    }
}

static void test_continuous_from_environment(void **state)
{
    (void)state;
    struct config c;
    setenv("ATREST_BACKUP_TARGET", "file:/tmp/y", 1);
    setenv("ATREST_BACKUP_MODE", "continuous", 1);
    setenv("ATREST_BACKUP_CONTINUOUS_DAYS", "7", 1);
    const char *none[] = {NULL};
    assert_int_equal(load(&c, none), 0);
    assert_int_equal(c.backup_continuous, 1);
    assert_int_equal(c.backup_days, 7);
    assert_string_equal(c.backup_target, "file:/tmp/y");
    config_free(&c);
    /* a flag wins over the environment */
    const char *flag[] = {"--backup-mode", "full", "--backup-continuous-days", "0", NULL};
    assert_int_equal(load(&c, flag), 0);
    assert_int_equal(c.backup_continuous, 0);
    config_free(&c);
    unsetenv("ATREST_BACKUP_TARGET");
    unsetenv("ATREST_BACKUP_MODE");
    unsetenv("ATREST_BACKUP_CONTINUOUS_DAYS");
}

/* A number setting that is not a whole number in range is refused, from a
 * flag or the environment, instead of read as 0 (which means "default"
 * for most of them); flags and the environment reach the same settings. */
static void test_numbers(void **state)
{
    (void)state;
    struct config c;
    const char *ok[] = {"--index-merge-keys",    "4096",    "--kms-grace-seconds", "60",
                        "--dek-max-encryptions", "1000000", "--log-requests",      NULL};
    assert_int_equal(load(&c, ok), 0);
    assert_int_equal(c.index_merge_keys, 4096);
    assert_int_equal(c.kms_grace_s, 60);
    assert_int_equal(c.dek_max_encryptions, 1000000);
    assert_int_equal(c.log_requests, 1);
    config_free(&c);
    const char *words[] = {"--index-merge-keys", "abc", NULL};
    const char *tail[] = {"--reencrypt-mbps", "64x", NULL};
    const char *empty[] = {"--dek-rotation-days", "", NULL};
    const char *huge[] = {"--backup-target", "file:/x", "--backup-retain", "4294967298", NULL};
    const char *range[] = {"--index-merge-keys", "16777217", NULL};
    /* -1 is how "not given" is kept: given, it is refused, not the default */
    const char *unset1[] = {"--dek-rotation-days", "-1", NULL};
    const char *unset2[] = {"--reencrypt-mbps", "-1", NULL};
    const char *unset3[] = {"--backup-busy-mbps", "-1", NULL};
    const char *unset4[] = {"--kms-grace-seconds", "-1", NULL};
    const char *const *cases[] = {words, tail, empty, huge, range, unset1, unset2, unset3, unset4};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(load(&c, cases[i]), -1);
        config_free(&c);
    }
    setenv("ATREST_INDEX_MERGE_KEYS", "lots", 1);
    const char *none[] = {NULL};
    assert_int_equal(load(&c, none), -1);
    config_free(&c);
    setenv("ATREST_INDEX_MERGE_KEYS", "512", 1);
    assert_int_equal(load(&c, none), 0);
    assert_int_equal(c.index_merge_keys, 512);
    config_free(&c);
    unsetenv("ATREST_INDEX_MERGE_KEYS");
}

/* --page-cache-mb: 256 by default, 0 turns the cache off, -1 or past
 * 1048576 or not a number is refused; the environment reaches it too. */
static void test_page_cache_mb(void **state)
{
    (void)state;
    struct config c;
    const char *none[] = {NULL};
    assert_int_equal(load(&c, none), 0);
    assert_int_equal(c.page_cache_mb, PAGECACHE_DEFAULT_MB);
    config_free(&c);
    const char *off[] = {"--page-cache-mb", "0", NULL};
    assert_int_equal(load(&c, off), 0);
    assert_int_equal(c.page_cache_mb, 0);
    config_free(&c);
    const char *most[] = {"--page-cache-mb", "1048576", NULL};
    assert_int_equal(load(&c, most), 0);
    assert_int_equal(c.page_cache_mb, 1048576);
    config_free(&c);
    const char *neg[] = {"--page-cache-mb", "-1", NULL};
    const char *big[] = {"--page-cache-mb", "1048577", NULL};
    const char *word[] = {"--page-cache-mb", "lots", NULL};
    const char *const *cases[] = {neg, big, word};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(load(&c, cases[i]), -1);
        config_free(&c);
    }
    setenv("ATREST_PAGE_CACHE_MB", "64", 1);
    assert_int_equal(load(&c, none), 0);
    assert_int_equal(c.page_cache_mb, 64);
    config_free(&c);
    setenv("ATREST_PAGE_CACHE_MB", "64MB", 1);
    assert_int_equal(load(&c, none), -1);
    config_free(&c);
    unsetenv("ATREST_PAGE_CACHE_MB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continuous_flags),
        cmocka_unit_test(test_continuous_refused),
        cmocka_unit_test(test_continuous_from_environment),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_page_cache_mb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
