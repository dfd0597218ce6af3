/*
 * test_no_plaintext.c — nothing a store writes reaches the disk readable.
 *
 * 10,000 JSON documents carrying a unique canary string and known field
 * values are written; then every byte of every file under the data folder
 * (main file, WAL, shm, keyring, lock) is scanned for the canary, for field
 * values, and for the DEK itself. Once after a clean close, once with the
 * writer killed (SIGKILL) before it could close, so the WAL and shm are
 * still there.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/rand.h"
#include "fixture.h"
#include "storage/vfs.h"

#define NDOCS    10000
#define DOC_SIZE 600

static char canary[40];

static void make_canary(void)
{
    uint8_t r[12];
    assert_int_equal(rand_bytes(r, sizeof r), 0);
    int n = snprintf(canary, sizeof canary, "CANARY-");
    for (size_t i = 0; i < sizeof r; i++)
        n += snprintf(canary + n, sizeof canary - (size_t)n, "%02X", r[i]);
}

/* The needles: canary, several field values, and JSON fragments. */
static size_t scan_all(const char *dir)
{
    static const char *fixed[] = {"Tromsoe-0004242", "Tromsoe-0000001", "\"city\":", "doc-9999",
                                  "\"amount\":29694.25"};
    size_t hits = fx_scan_dir(dir, canary, strlen(canary));
    /* The canary spans 600-byte documents: also look for a short prefix of
     * the random part, which would survive a page split. */
    hits += fx_scan_dir(dir, canary + 7, 12);
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        hits += fx_scan_dir(dir, fixed[i], strlen(fixed[i]));
    /* Table and index names live in page 1's schema. */
    hits += fx_scan_dir(dir, "CREATE TABLE", 12);
    return hits;
}

static void scan_for_key(struct fixture *fx, const char *name)
{
    /* The store's DEK must not appear in the data folder either. */
    uint8_t id[KEYRING_FILE_ID_LEN];
    const uint8_t *key;
    uint32_t ver;
    uint64_t count;
    assert_int_equal(keyring_find_file(store_env_keyring(fx->env), name, id), 0);
    assert_int_equal(keyring_file_status(store_env_keyring(fx->env), id, 0, &ver, &count), 0);
    assert_int_equal(keyring_key_for_read(store_env_keyring(fx->env), id, 0, ver, &key), 0);
    assert_int_equal(fx_scan_dir(fx->data_dir, key, 32), 0);
    assert_int_equal(fx_scan_dir(fx->key_dir, key, 32), 0);
}

static void test_clean_close(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    make_canary();
    fx_setup(&fx, "noplain");
    assert_int_equal(store_create(fx.env, "docs", &st), 0);
    fx_fill(st, NDOCS, DOC_SIZE, 100, canary);
    /* A sort big enough to spill if temp files were on disk. */
    assert_int_equal(store_exec(st, "CREATE INDEX by_body ON docs(body)"), 0);
    assert_int_equal(fx_check_docs(st, NDOCS, DOC_SIZE, canary), 0);
    assert_int_equal(store_close(st), 0);
    assert_int_equal(scan_all(fx.data_dir), 0);
    /* And the data is really there: reopen and read it back. */
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(fx_check_docs(st, NDOCS, DOC_SIZE, canary), 0);
    assert_int_equal(store_close(st), 0);
    scan_for_key(&fx, "docs");
    fx_teardown(&fx);
}

static void test_killed_writer(void **state)
{
    (void)state;
    struct fixture fx;
    make_canary();
    fx_setup(&fx, "noplain-kill");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    fx_close(&fx); /* the child owns the data folder */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        struct store *st;
        if (fx_reopen(&fx) || store_create(fx.env, "docs", &st))
            _exit(3);
        /* Keep everything in the WAL: no checkpoint before the kill. */
        if (store_exec(st, "PRAGMA wal_autocheckpoint=0"))
            _exit(4);
        fx_fill(st, NDOCS, DOC_SIZE, 100, canary);
        if (write(pipefd[1], "k", 1) != 1)
            _exit(5);
        pause();
        _exit(0);
    }
    close(pipefd[1]);
    char c = 0;
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    close(pipefd[0]);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    char path[PATH_MAX + 8];
    fx_store_file(fx.data_dir, path, sizeof path - 8);
    strcat(path, "-wal");
    assert_true(fx_file_size(path) > NDOCS * 400LL); /* the data is in the WAL */
    assert_int_equal(scan_all(fx.data_dir), 0);
    /* Recovery reads it all back. */
    struct store *st;
    assert_int_equal(fx_reopen(&fx), 0);
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(fx_check_docs(st, NDOCS, DOC_SIZE, canary), 0);
    assert_int_equal(store_close(st), 0);
    assert_int_equal(scan_all(fx.data_dir), 0);
    fx_teardown(&fx);
}

/* Rollback-journal mode (not used by stores, which run in WAL, but SQLite
 * briefly opens a journal when a store switches to WAL, and a caller could
 * switch modes): journal page images are sealed too, and a hot journal left
 * by a crash rolls back through the VFS. */
static void test_rollback_journal(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    const int n = 2000;
    make_canary();
    fx_setup(&fx, "journal");
    assert_int_equal(store_create(fx.env, "docs", &st), 0);
    fx_fill(st, n, DOC_SIZE, 500, canary);
    assert_int_equal(store_exec(st, "PRAGMA journal_mode=DELETE; PRAGMA cache_size=8"), 0);
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_exec(st, "UPDATE docs SET body = 'gone'"), 0);
    char journal[PATH_MAX + 16], snap[PATH_MAX];
    snprintf(journal, sizeof journal, "%s-journal", store_path(st));
    assert_true(fx_file_size(journal) > 100 * 4096); /* page images are in it */
    snprintf(snap, sizeof snap, "%.3900s/snapshot", fx.root);
    fx_copy_tree(fx.data_dir, snap); /* a crash image: db + hot journal */
    assert_int_equal(store_rollback(st), 0);
    assert_int_equal(store_close(st), 0);
    assert_int_equal(scan_all(snap), 0);
    fx_close(&fx);
    fx_rmrf(fx.data_dir);
    fx_copy_tree(snap, fx.data_dir);
    assert_int_equal(fx_reopen(&fx), 0);
    assert_int_equal(store_open(fx.env, "docs", &st), 0); /* plays the journal back */
    assert_int_equal(fx_check_docs(st, n, DOC_SIZE, canary), 0);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* The scanner itself must find plaintext, or the tests above prove nothing. */
static void test_scanner_finds_plaintext(void **state)
{
    (void)state;
    struct fixture fx;
    make_canary();
    fx_mkroot(&fx, "scanner");
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/plain.txt", fx.root);
    char body[1024];
    fx_doc_body(body, sizeof body, 4242, DOC_SIZE, canary);
    fx_write_file(path, (const uint8_t *)body, strlen(body));
    assert_true(scan_all(fx.root) >= 3);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner_finds_plaintext),
        cmocka_unit_test(test_clean_close),
        cmocka_unit_test(test_killed_writer),
        cmocka_unit_test(test_rollback_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
