/*
 * test_crash.c — SIGKILL at random moments loses no acknowledged commit.
 *
 * A child process opens the store and commits numbered transactions, each
 * inserting one row (n, payload of 500..6000 bytes, so transactions span
 * several pages and checkpoints run often), and reports n on a pipe after
 * store_commit() returned. The parent kills it with SIGKILL after a random
 * delay — during open, recovery, a commit, a checkpoint or a keyring
 * update — 100 times. After each kill: the store opens, every reported
 * commit is present with the right payload, and verify passes (no failed
 * page; a torn tail is allowed). Every 25th round also runs `atrest verify`.
 *
 * A second test kills a child while it creates a store, 60 times: each time
 * the store is afterwards either absent or whole, and can be created or
 * opened again (a kill between the keyring entry and the file used to make
 * the name unusable; a kill before the header was written left a file that
 * would not open).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "storage/verify.h"

#define ROUNDS 100

static size_t payload_len(long n)
{
    return 500 + (size_t)((n * 2654435761u) % 5500);
}

static void payload(char *out, long n)
{
    size_t len = payload_len(n);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)('a' + (n + (long)i * 7) % 26);
    out[len] = 0;
}

static void child(struct fixture *fx, int fd, long start)
{
    struct store *st;
    if (fx_reopen(fx)) {
        fprintf(stderr, "child: %s\n", at_error_detail());
        _exit(3);
    }
    int rc = store_open(fx->env, "crash", &st);
    if (rc == AT_ENOTFOUND)
        rc = store_create(fx->env, "crash", &st);
    if (rc) {
        fprintf(stderr, "child: %s\n", at_error_detail());
        _exit(4);
    }
    if (store_exec(st, "CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY, p TEXT);"
                       "PRAGMA wal_autocheckpoint=64"))
        _exit(5);
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(store_db(st), "INSERT INTO t VALUES(?,?)", -1, &ins, NULL))
        _exit(6);
    long ready = 0; /* tells the parent the store is open */
    if (write(fd, &ready, sizeof ready) != sizeof ready)
        _exit(10);
    static char buf[8192];
    for (long n = start;; n++) {
        payload(buf, n);
        if (store_begin(st))
            _exit(7);
        sqlite3_bind_int64(ins, 1, n);
        sqlite3_bind_text(ins, 2, buf, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            _exit(8);
        sqlite3_reset(ins);
        if (store_commit(st))
            _exit(9);
        if (write(fd, &n, sizeof n) != sizeof n)
            _exit(10);
    }
}

static long check_store(struct fixture *fx, long reported)
{
    struct store *st;
    int rc = fx_reopen(fx);
    if (rc)
        fail_msg("reopen: %s", at_error_detail());
    rc = store_open(fx->env, "crash", &st);
    if (rc == AT_ENOTFOUND && reported == 0) {
        fx_close(fx); /* killed before the store existed */
        return 0;
    }
    if (rc)
        fail_msg("store_open after kill: %d %s", rc, at_error_detail());
    sqlite3_stmt *q;
    long max = 0, count = 0;
    if (sqlite3_prepare_v2(store_db(st), "SELECT n, p FROM t ORDER BY n", -1, &q, NULL) ==
        SQLITE_OK) {
        static char want[8192];
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            long n = (long)sqlite3_column_int64(q, 0);
            payload(want, n);
            assert_string_equal((const char *)sqlite3_column_text(q, 1), want);
            count++;
            max = n;
        }
        assert_int_equal(rc, SQLITE_DONE);
        sqlite3_finalize(q);
    } else {
        assert_int_equal(reported, 0); /* table not created yet */
    }
    if (max < reported)
        fail_msg("commit %ld was acknowledged but is missing (max %ld)", reported, max);
    assert_int_equal(count, max); /* 1..max, no gaps */
    assert_int_equal(store_close(st), 0);
    struct verify_report r;
    assert_int_equal(verify_data_dir(store_env_keyring(fx->env), fx->data_dir, &r, NULL, NULL), 0);
    if (r.pages_failed)
        fail_msg("verify: %llu failed pages", (unsigned long long)r.pages_failed);
    fx_close(fx);
    return max;
}

static void run_cli_verify(struct fixture *fx)
{
    const char *cli = getenv("ATREST_CLI");
    if (!cli)
        return;
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' verify --data-dir '%s' --key-dir '%s' >/dev/null", cli,
             fx->data_dir, fx->key_dir);
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sigkill_rounds(void **state)
{
    (void)state;
    struct fixture fx;
    fx_setup(&fx, "crash");
    fx_close(&fx);
    srand((unsigned)time(NULL));
    long committed = 0;
    int torn_rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fd;
        pid_t pid = fx_fork_piped(&fd);
        if (pid == 0)
            child(&fx, fd, committed + 1);
        /* Every 10th round dies at once: during open, recovery or create.
         * The others once the store is open, after 0..60 ms of commits
         * (checkpoints and keyring updates included). */
        long reported = committed, n;
        if (round % 10 != 0 && read(fd, &n, sizeof n) != sizeof n) {
            int status;
            waitpid(pid, &status, 0);
            fail_msg("round %d: the child died before the store was open (status 0x%x)", round,
                     (unsigned)status);
        }
        int delay_ms = round % 10 == 0 ? rand() % 3 : rand() % 60;
        struct timespec ts = {0, (long)delay_ms * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        while (read(fd, &n, sizeof n) == sizeof n)
            if (n > 0)
                reported = n;
        close(fd);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status))
            fail_msg("child exited with %d before the kill", WEXITSTATUS(status));
        long max = check_store(&fx, reported);
        assert_true(max >= reported);
        torn_rounds += max > reported; /* committed but not yet reported */
        committed = max;
        if (round % 25 == 24)
            run_cli_verify(&fx);
    }
    print_message("%d rounds, %ld commits survived, %d rounds with an unreported commit\n", ROUNDS,
                  committed, torn_rounds);
    assert_true(committed > ROUNDS); /* the children did real work */
    fx_teardown(&fx);
}

static void create_child(struct fixture *fx, int fd)
{
    struct store *st;
    if (fx_reopen(fx))
        _exit(3);
    int rc = store_open(fx->env, "made", &st);
    if (rc == AT_ENOTFOUND)
        rc = store_create(fx->env, "made", &st);
    if (rc) {
        fprintf(stderr, "child: %s\n", at_error_detail());
        _exit(4);
    }
    char done = 1;
    if (write(fd, &done, 1) != 1)
        _exit(5);
    pause();
    _exit(6);
}

static void test_sigkill_during_create(void **state)
{
    (void)state;
    struct fixture fx;
    fx_setup(&fx, "create");
    fx_close(&fx);
    srand((unsigned)time(NULL));
    int made = 0;
    for (int round = 0; round < 60; round++) {
        int fd;
        pid_t pid = fx_fork_piped(&fd);
        if (pid == 0)
            create_child(&fx, fd);
        /* Most kills land in key loading, the keyring update or the
         * store's creation (a few ms on this machine). */
        struct timespec ts = {0, (long)(rand() % 12000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        char done = 0;
        ssize_t got = read(fd, &done, 1);
        close(fd);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status))
            fail_msg("round %d: child exited with %d", round, WEXITSTATUS(status));
        assert_int_equal(fx_reopen(&fx), 0);
        struct store *st;
        int rc = store_open(fx.env, "made", &st);
        if (got == 1 && rc)
            fail_msg("round %d: a created store does not open: %s", round, at_error_detail());
        if (rc == AT_ENOTFOUND) {
            fx_close(&fx);
            continue; /* killed before the file was whole: the next round creates it */
        }
        if (rc)
            fail_msg("round %d: store_open after a killed create: %s", round, at_error_detail());
        assert_int_equal(store_exec(st, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"), 0);
        assert_int_equal(store_close(st), 0);
        assert_int_equal(store_drop(fx.env, "made"), 0); /* the next round creates again */
        made++;
        fx_close(&fx);
    }
    print_message("60 create rounds, %d stores whole after the kill\n", made);
    /* A dropped store leaves no file behind, whole or half made. */
    assert_int_equal(fx_reopen(&fx), 0);
    uint8_t id[KEYRING_FILE_ID_LEN];
    if (keyring_find_file(store_env_keyring(fx.env), "made", id) == 0)
        assert_int_equal(store_drop(fx.env, "made"), 0);
    DIR *d = opendir(fx.data_dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".db"))
            fail_msg("%s left after the drop", e->d_name);
    closedir(d);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_during_create),
        cmocka_unit_test(test_sigkill_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
