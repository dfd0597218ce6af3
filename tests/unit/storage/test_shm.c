/*
 * test_shm.c — the in-memory WAL index (storage/shm.h).
 *
 *  - the lock table: shared locks stack, an exclusive lock excludes every
 *    other holder, a refused range lock takes nothing, a connection may
 *    turn its own lone shared lock exclusive, unlock and detach release;
 *  - regions: absent until extended, zeroed, shared by the connections of
 *    one path and not across paths, freed with the last connection;
 *  - a real SQLite database in WAL mode through the encrypting VFS: two
 *    connections see each other's commits, a reader keeps its snapshot
 *    while a writer commits, a checkpoint waits for the reader, and no
 *    -shm file is ever created.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "storage/shm.h"
#include "storage/store.h"

#define LOCK_SH   (SQLITE_SHM_LOCK | SQLITE_SHM_SHARED)
#define LOCK_EX   (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE)
#define UNLOCK_SH (SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED)
#define UNLOCK_EX (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE)

static void attach3(struct shm_link l[3], const char *path)
{
    memset(l, 0, 3 * sizeof *l);
    for (int i = 0; i < 3; i++) {
        void volatile *p;
        assert_int_equal(shm_map(&l[i], path, 0, 32768, 1, &p), SQLITE_OK);
        assert_non_null(p);
    }
}

static void test_lock_table(void **state)
{
    (void)state;
    struct shm_link l[3];
    attach3(l, "/locks/db");

    /* Shared locks stack; an exclusive one waits for all of them. */
    assert_int_equal(shm_lock(&l[0], 3, 1, LOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 3, 1, LOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[2], 3, 1, LOCK_EX), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[0], 3, 1, UNLOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[2], 3, 1, LOCK_EX), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[1], 3, 1, UNLOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[2], 3, 1, LOCK_EX), SQLITE_OK);
    /* ... and excludes shared and exclusive holders alike. */
    assert_int_equal(shm_lock(&l[0], 3, 1, LOCK_SH), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[1], 3, 1, LOCK_EX), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[2], 3, 1, UNLOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[0], 3, 1, LOCK_SH), SQLITE_OK);

    /* A shared lock taken twice by one connection counts once. */
    assert_int_equal(shm_lock(&l[0], 3, 1, LOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[0], 3, 1, UNLOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 3, 1, LOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 3, 1, UNLOCK_EX), SQLITE_OK);

    /* A range that meets one held slot is refused whole: nothing taken. */
    assert_int_equal(shm_lock(&l[0], 5, 1, LOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[2], 0, SQLITE_SHM_NLOCK, LOCK_EX), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[1], 0, 5, LOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 0, 5, UNLOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[2], 6, 2, LOCK_EX), SQLITE_OK);

    /* A lone shared holder may take its slot exclusively. */
    assert_int_equal(shm_lock(&l[0], 5, 1, LOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 5, 1, LOCK_SH), SQLITE_BUSY);
    assert_int_equal(shm_lock(&l[0], 5, 1, UNLOCK_EX), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 5, 1, LOCK_SH), SQLITE_OK);
    assert_int_equal(shm_lock(&l[1], 5, 1, UNLOCK_SH), SQLITE_OK);

    /* Detaching releases what is still held. */
    assert_int_equal(shm_lock(&l[1], 6, 1, LOCK_SH), SQLITE_BUSY);
    assert_int_equal(shm_unmap(&l[2]), SQLITE_OK);
    assert_null(l[2].node);
    assert_int_equal(shm_unmap(&l[2]), SQLITE_OK); /* twice is harmless */
    assert_int_equal(shm_lock(&l[1], 6, 1, LOCK_EX), SQLITE_OK);

    /* Slots outside 0..7, and a detached link, are errors. */
    assert_int_equal(shm_lock(&l[0], 7, 2, LOCK_SH), SQLITE_IOERR_SHMLOCK);
    assert_int_equal(shm_lock(&l[0], -1, 1, LOCK_SH), SQLITE_IOERR_SHMLOCK);
    assert_int_equal(shm_lock(&l[2], 0, 1, LOCK_SH), SQLITE_IOERR_SHMLOCK);
    assert_int_equal(shm_unmap(&l[0]), SQLITE_OK);
    assert_int_equal(shm_unmap(&l[1]), SQLITE_OK);
}

static void test_regions(void **state)
{
    (void)state;
    struct shm_link a = {0}, b = {0}, other = {0};
    void volatile *p = (void *)1, *q, *r;
    assert_int_equal(shm_map(&a, "/regions/db", 0, 32768, 0, &p), SQLITE_OK);
    assert_null(p); /* not there until extended */
    assert_int_equal(shm_map(&a, "/regions/db", 0, 32768, 1, &p), SQLITE_OK);
    assert_non_null(p);
    for (int i = 0; i < 32768; i++)
        assert_int_equal(((volatile unsigned char *)p)[i], 0);
    ((volatile unsigned char *)p)[100] = 0xab;

    assert_int_equal(shm_map(&b, "/regions/db", 0, 32768, 0, &q), SQLITE_OK);
    assert_ptr_equal(p, q); /* one index per path */
    assert_int_equal(((volatile unsigned char *)q)[100], 0xab);
    assert_int_equal(shm_map(&other, "/regions/other", 0, 32768, 1, &r), SQLITE_OK);
    assert_ptr_not_equal(p, r);
    assert_int_equal(((volatile unsigned char *)r)[100], 0);

    /* Extending to region 2 creates 1 and 2; region 0 stays put. */
    assert_int_equal(shm_map(&b, "/regions/db", 2, 32768, 1, &q), SQLITE_OK);
    assert_non_null(q);
    assert_int_equal(shm_map(&a, "/regions/db", 1, 32768, 0, &q), SQLITE_OK);
    assert_non_null(q);
    assert_int_equal(shm_map(&a, "/regions/db", 0, 32768, 0, &q), SQLITE_OK);
    assert_ptr_equal(p, q);
    assert_int_equal(shm_map(&a, "/regions/db", 0, 65536, 1, &q), SQLITE_IOERR_SHMSIZE);

    /* Gone with the last connection: a new one starts from zeros. */
    assert_int_equal(shm_unmap(&a), SQLITE_OK);
    assert_int_equal(shm_map(&b, "/regions/db", 0, 32768, 0, &q), SQLITE_OK);
    assert_int_equal(((volatile unsigned char *)q)[100], 0xab); /* b still holds it */
    assert_int_equal(shm_unmap(&b), SQLITE_OK);
    assert_int_equal(shm_map(&a, "/regions/db", 0, 32768, 1, &q), SQLITE_OK);
    assert_int_equal(((volatile unsigned char *)q)[100], 0);
    assert_int_equal(shm_unmap(&a), SQLITE_OK);
    assert_int_equal(shm_unmap(&other), SQLITE_OK);
}

static int count(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : "?");
}

static void test_wal_in_one_process(void **state)
{
    (void)state;
    struct fixture fx;
    fx_setup(&fx, "shm_wal");
    struct store *st = NULL;
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    sqlite3 *w = store_db(st), *r = NULL;
    exec(w, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    assert_int_equal(store_connect(st, &r), 0);
    assert_int_equal(count(r), 1);

    /* The reader's snapshot holds while the writer commits and a full
     * checkpoint cannot pass it; once it ends, both see the commit. */
    exec(r, "BEGIN");
    assert_int_equal(count(r), 1);
    exec(w, "INSERT INTO t VALUES (2)");
    assert_int_equal(count(r), 1);
    int log = -1, done = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done),
                     SQLITE_BUSY);
    exec(r, "COMMIT");
    assert_int_equal(count(r), 2);
    assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done),
                     SQLITE_OK);
    assert_int_equal(log, done);
    exec(w, "INSERT INTO t VALUES (3)");
    assert_int_equal(count(r), 3);

    char shm[4200];
    snprintf(shm, sizeof shm, "%s-shm", store_path(st));
    assert_int_equal(access(shm, F_OK), -1);
    store_disconnect(r);
    assert_int_equal(store_close(st), 0);

    /* Reopened (a new index, rebuilt from the WAL if one is left). */
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_int_equal(count(store_db(st)), 3);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

int main(void)
{
    unsetenv("ATREST_ROOT_KEY");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_table),
        cmocka_unit_test(test_regions),
        cmocka_unit_test(test_wal_in_one_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
