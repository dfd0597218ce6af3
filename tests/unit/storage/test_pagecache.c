/*
 * test_pagecache.c — the shared cache of decrypted pages (pagecache.h) and
 * its use by the encrypting VFS (vfs.c invariant 10).
 *
 *  - get/put/drop/drop_from/drop_file by (file, page); the budget holds;
 *    a page read often outlives pages read once (CLOCK);
 *  - epochs: a newer epoch empties the cache, an older put is not kept;
 *  - through a real store: reads are served from the cache, a checkpoint
 *    that rewrites pages is seen by the next reader (no stale page), a key
 *    wipe empties the cache, and closing the store drops its pages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "crypto/aead.h"
#include "fixture.h"
#include "storage/page.h"
#include "storage/pagecache.h"
#include "storage/store.h"

static void fill(uint8_t *p, uint64_t file, uint32_t pgno)
{
    for (int i = 0; i < PAGE_SIZE; i++)
        p[i] = (uint8_t)(file * 31 + pgno * 7 + (uint32_t)i);
}

static size_t pages_now(void)
{
    struct pagecache_stats st;
    pagecache_stats_get(&st);
    return st.pages;
}

static void test_get_put_drop(void **state)
{
    (void)state;
    static uint8_t a[PAGE_SIZE], b[PAGE_SIZE];
    assert_int_equal(pagecache_configure((size_t)256 * PAGE_SIZE), 0);
    uint64_t ep = aead_kept_epoch();
    assert_int_equal(pagecache_get(1, 5, ep, b), 0);
    fill(a, 1, 5);
    pagecache_put(1, 5, ep, a);
    memset(b, 0, sizeof b);
    assert_int_equal(pagecache_get(1, 5, ep, b), 1);
    assert_memory_equal(a, b, PAGE_SIZE);
    assert_int_equal(pagecache_get(2, 5, ep, b), 0); /* other file */
    assert_int_equal(pagecache_get(1, 6, ep, b), 0); /* other page */
    /* a put of the same page replaces it */
    fill(a, 9, 9);
    pagecache_put(1, 5, ep, a);
    assert_int_equal(pagecache_get(1, 5, ep, b), 1);
    assert_memory_equal(a, b, PAGE_SIZE);
    assert_int_equal(pages_now(), 1);
    pagecache_drop(1, 5);
    assert_int_equal(pagecache_get(1, 5, ep, b), 0);
    assert_int_equal(pages_now(), 0);
    /* drop_from and drop_file */
    for (uint32_t p = 1; p <= 40; p++) {
        fill(a, 3, p);
        pagecache_put(3, p, ep, a);
        fill(a, 4, p);
        pagecache_put(4, p, ep, a);
    }
    assert_int_equal(pages_now(), 80);
    pagecache_drop_from(3, 21);
    for (uint32_t p = 1; p <= 40; p++) {
        assert_int_equal(pagecache_get(3, p, ep, b), p < 21);
        if (p < 21) {
            fill(a, 3, p);
            assert_memory_equal(a, b, PAGE_SIZE);
        }
    }
    pagecache_drop_file(4);
    for (uint32_t p = 1; p <= 40; p++)
        assert_int_equal(pagecache_get(4, p, ep, b), 0);
    assert_int_equal(pages_now(), 20);
    pagecache_clear();
    assert_int_equal(pages_now(), 0);
    /* no budget, no cache */
    assert_int_equal(pagecache_configure(0), 0);
    pagecache_put(1, 1, ep, a);
    assert_int_equal(pagecache_get(1, 1, ep, b), 0);
}

/* The budget is never exceeded; a page read again and again stays while
 * thousands of pages read once pass through. */
static void test_budget_and_clock(void **state)
{
    (void)state;
    static uint8_t a[PAGE_SIZE], b[PAGE_SIZE];
    assert_int_equal(pagecache_configure((size_t)512 * PAGE_SIZE), 0);
    struct pagecache_stats st;
    pagecache_stats_get(&st);
    assert_int_equal(st.budget_pages, 512);
    uint64_t ep = aead_kept_epoch();
    for (uint32_t hot = 1; hot <= 8; hot++) {
        fill(a, 7, hot);
        pagecache_put(7, hot, ep, a);
    }
    for (uint32_t p = 1; p <= 20000; p++) {
        fill(a, 8, p);
        pagecache_put(8, p, ep, a);
        assert_true(pages_now() <= 512);
        for (uint32_t hot = 1; hot <= 8; hot++)
            if (p % 16 == hot)
                assert_int_equal(pagecache_get(7, hot, ep, b), 1);
    }
    for (uint32_t hot = 1; hot <= 8; hot++) {
        assert_int_equal(pagecache_get(7, hot, ep, b), 1);
        fill(a, 7, hot);
        assert_memory_equal(a, b, PAGE_SIZE);
    }
    assert_int_equal(pagecache_get(8, 1, ep, b), 0); /* read once, long gone */
    assert_int_equal(pagecache_configure(0), 0);
}

/* Invariant 2: a newer epoch empties the cache; a put that read its page
 * before a key wipe (an older epoch) is not kept. */
static void test_epochs(void **state)
{
    (void)state;
    static uint8_t a[PAGE_SIZE], b[PAGE_SIZE];
    assert_int_equal(pagecache_configure((size_t)256 * PAGE_SIZE), 0);
    uint64_t ep = aead_kept_epoch();
    for (uint32_t p = 1; p <= 64; p++) {
        fill(a, 5, p);
        pagecache_put(5, p, ep, a);
    }
    assert_int_equal(pages_now(), 64);
    aead_forget_kept();
    uint64_t ep2 = aead_kept_epoch();
    assert_true(ep2 > ep);
    assert_int_equal(pagecache_get(5, 1, ep2, b), 0);
    for (uint32_t p = 1; p <= 64; p++)
        assert_int_equal(pagecache_get(5, p, ep2, b), 0);
    assert_int_equal(pages_now(), 0);
    pagecache_put(5, 1, ep, a); /* read before the wipe */
    assert_int_equal(pagecache_get(5, 1, ep2, b), 0);
    pagecache_put(5, 1, ep2, a);
    assert_int_equal(pagecache_get(5, 1, ep2, b), 1);
    assert_int_equal(pagecache_configure(0), 0);
}

/* ---- through a store ------------------------------------------------------ */

#define ROWS 3000

static long long one(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Rows from..to of t, each 'letter' and 500 digits, then a checkpoint that
 * leaves them all in the main file. */
static void insert_rows(struct store *st, int from, int to, char letter)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i+1 FROM n WHERE i < %d) "
             "INSERT INTO t SELECT i, '%c' || printf('%%0500d', i) FROM n",
             from, to, letter);
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_exec(st, sql), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
}

static void test_store_reads_coherent(void **state)
{
    (void)state;
    struct fixture fx;
    fx_setup(&fx, "pagecache");
    assert_int_equal(pagecache_configure((size_t)64 << 20), 0);
    struct store *st = NULL;
    assert_int_equal(store_create(fx.env, "pc", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)"), 0);
    insert_rows(st, 1, ROWS, 'a');

    sqlite3 *rd = NULL;
    assert_int_equal(store_connect(st, &rd), 0);
    const char *count_a = "SELECT count(*) FROM t WHERE substr(v, 1, 1) = 'a'";
    const char *count_b = "SELECT count(*) FROM t WHERE substr(v, 1, 1) = 'b'";
    assert_int_equal(one(rd, count_a), ROWS);
    struct pagecache_stats s1, s2;
    pagecache_stats_get(&s1);
    assert_true(s1.pages > ROWS / 8); /* the table's pages, read from the file */
    /* a second connection reads the same pages from the cache */
    sqlite3 *rd2 = NULL;
    assert_int_equal(store_connect(st, &rd2), 0);
    assert_int_equal(one(rd2, count_a), ROWS);
    pagecache_stats_get(&s2);
    assert_true(s2.hits - s1.hits >= s1.pages / 2);
    assert_int_equal(s2.misses - s1.misses, 0);

    /* Rewrite every row, checkpoint into the main file: the next reader
     * must see every new value, none of the cached old pages. */
    assert_int_equal(store_exec(st, "UPDATE t SET v = 'b' || substr(v, 2)"), 0);
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    assert_int_equal(one(rd, count_b), ROWS);
    assert_int_equal(one(rd, count_a), 0);
    assert_int_equal(one(rd2, count_b), ROWS);

    /* Shrink the file (VACUUM in WAL mode: frames, then a checkpoint that
     * writes and truncates the main file), then grow it again. */
    assert_int_equal(store_exec(st, "DELETE FROM t WHERE k > 100"), 0);
    assert_int_equal(store_exec(st, "VACUUM"), 0);
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    assert_int_equal(one(rd, "SELECT count(*) FROM t"), 100);
    insert_rows(st, 101, ROWS, 'c');
    assert_int_equal(one(rd2, "SELECT count(*) FROM t WHERE substr(v, 1, 1) = 'c'"), ROWS - 100);
    assert_int_equal(one(rd2, count_b), 100);
    sqlite3_stmt *ic = NULL;
    assert_int_equal(sqlite3_prepare_v2(rd, "PRAGMA integrity_check", -1, &ic, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(ic), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(ic, 0), "ok");
    sqlite3_finalize(ic);

    /* Any key wipe empties the cache. */
    assert_true(pages_now() > 0);
    aead_forget_kept();
    assert_int_equal(one(rd, "SELECT count(*) FROM t"), ROWS);
    assert_true(pages_now() > 0); /* read again since */
    store_disconnect(rd);
    store_disconnect(rd2);
    /* The store's end drops its pages. */
    assert_int_equal(store_close(st), 0);
    assert_int_equal(pages_now(), 0);
    assert_int_equal(pagecache_configure(0), 0);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_drop),
        cmocka_unit_test(test_budget_and_clock),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_store_reads_coherent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
