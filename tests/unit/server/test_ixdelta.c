/*
 * test_ixdelta.c — the readers' view of the index log (ixdelta.c) over a
 * real SQLite file in WAL mode (plain SQLite: the log's rules do not depend
 * on the encryption), one writer connection and reader connections with
 * their own snapshots: which log records a snapshot sees, key ranges, a
 * reader that keeps an old snapshot across a merge (its entries are not
 * freed under it), memory freed once no reader needs it, rows a newer
 * reader skipped loaded later by an older one, and scans in both
 * directions from a position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/srv.h"
#include "testfs.h"

struct env {
    char dir[PATH_MAX], path[PATH_MAX];
    sqlite3 *w;
    struct ixdelta d;
};

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    testfs_mkdtemp(e->dir, "ixdelta");
    testfs_join(e->path, e->dir, "c.db");
    e->w = open_db(e->path);
    assert_int_equal(sqlite3_exec(e->w, IX_SCHEMA, NULL, NULL, NULL), SQLITE_OK);
    dx_init(&e->d);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    dx_destroy(&e->d);
    sqlite3_close(e->w);
    testfs_rm_rf(e->dir);
    free(e);
    return 0;
}

/* One log row: keys as C strings, "+k" added, "-k" removed. */
static void log_row(struct env *e, uint64_t n, uint64_t seq, const char *const *keys)
{
    struct doc_buf adds = {0}, dels = {0};
    for (; *keys; keys++)
        assert_int_equal(
            dx_put_key((*keys)[0] == '+' ? &adds : &dels, *keys + 1, strlen(*keys + 1)), 0);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(e->w,
                                        "INSERT INTO ixlog(n, seq, adds, dels) "
                                        "VALUES(?1, ?2, ?3, ?4)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
    if (adds.len)
        sqlite3_bind_blob(s, 3, adds.p, (int)adds.len, SQLITE_STATIC);
    if (dels.len)
        sqlite3_bind_blob(s, 4, dels.p, (int)dels.len, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    doc_buf_free(&adds);
    doc_buf_free(&dels);
}

/* What a merge leaves for readers: no rows, the mark past them. */
static void merged(struct env *e, uint64_t mark)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "BEGIN; DELETE FROM ixlog; INSERT OR REPLACE INTO ixmeta(k, v) VALUES('merged', "
             "%llu); COMMIT",
             (unsigned long long)mark);
    assert_int_equal(sqlite3_exec(e->w, sql, NULL, NULL, NULL), SQLITE_OK);
}

struct reader {
    struct rconn rc;
    struct dx_view v;
};

static void reader_open(struct env *e, struct reader *r)
{
    memset(r, 0, sizeof *r);
    r->rc.db = open_db(e->path);
}

/* dx_enter, BEGIN and a first read: the snapshot is fixed from here. */
static void reader_begin(struct env *e, struct reader *r)
{
    dx_enter(&e->d, &r->v);
    assert_int_equal(sqlite3_exec(r->rc.db, "BEGIN; SELECT count(*) FROM ixmeta", NULL, NULL, NULL),
                     SQLITE_OK);
}

static void reader_end(struct env *e, struct reader *r)
{
    assert_int_equal(sqlite3_exec(r->rc.db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    dx_leave(&e->d, &r->v);
}

static void reader_close(struct reader *r)
{
    for (int i = 0; i < RCONN_STMTS; i++) {
        sqlite3_finalize(r->rc.cache[i].st);
        free(r->rc.cache[i].sql);
    }
    sqlite3_close(r->rc.db);
}

static int collect(void *arg, const char *key, size_t len, uint64_t seq)
{
    struct doc_buf *b = arg;
    char item[64];
    snprintf(item, sizeof item, "%.*s/%llu ", (int)len, key, (unsigned long long)seq);
    return doc_buf_puts(b, item) ? -1 : 0;
}

/* The entries r sees in [lo, hi] as "key/seq key/seq ". */
static char *seen(struct env *e, struct reader *r, const char *lo, int lo_incl, const char *hi,
                  int hi_incl)
{
    struct doc_buf b = {0};
    assert_int_equal(doc_buf_puts(&b, ""), 0);
    struct dx_range rg = {lo, strlen(lo), lo_incl, hi, strlen(hi), hi_incl};
    assert_int_equal(dx_scan(&e->d, &r->v, &rg, 0, NULL, collect, &b), 0);
    return b.p;
}

#define ALL(e, r) seen(e, r, "", 1, "~", 1)

static void expect(char *got, const char *want)
{
    assert_string_equal(got, want);
    free(got);
}

static void test_visibility(void **state)
{
    struct env *e = *state;
    struct reader r;
    reader_open(e, &r);
    log_row(e, 1, 10, (const char *const[]){"+a", "+b", NULL});
    log_row(e, 2, 11, (const char *const[]){"+a", NULL});
    reader_begin(e, &r);
    assert_int_equal(dx_snapshot(&e->d, &r.rc, &r.v), 0);
    assert_true(r.v.active);
    expect(ALL(e, &r), "a/10 a/11 b/10 ");
    reader_end(e, &r);

    /* document 10 loses a, gains c; 11 is deleted */
    log_row(e, 3, 10, (const char *const[]){"-a", "+c", NULL});
    log_row(e, 5, 11, (const char *const[]){"-a", NULL}); /* (4: a rolled-back write) */
    reader_begin(e, &r);
    assert_int_equal(dx_snapshot(&e->d, &r.rc, &r.v), 0);
    expect(ALL(e, &r), "b/10 c/10 ");
    /* bounds */
    expect(seen(e, &r, "b", 0, "c", 1), "c/10 ");
    expect(seen(e, &r, "b", 1, "c", 0), "b/10 ");
    expect(seen(e, &r, "a", 1, "a", 1), "");
    reader_end(e, &r);

    /* a key removed and added again is there */
    log_row(e, 6, 10, (const char *const[]){"+a", NULL});
    reader_begin(e, &r);
    assert_int_equal(dx_snapshot(&e->d, &r.rc, &r.v), 0);
    expect(ALL(e, &r), "a/10 b/10 c/10 ");
    reader_end(e, &r);

    /* merged: none of it is the log's any more */
    merged(e, 6);
    reader_begin(e, &r);
    assert_int_equal(dx_snapshot(&e->d, &r.rc, &r.v), 0);
    assert_false(r.v.active);
    expect(ALL(e, &r), "");
    reader_end(e, &r);
    reader_close(&r);
}

static void test_old_snapshot_across_merge(void **state)
{
    struct env *e = *state;
    struct reader a, b;
    reader_open(e, &a);
    reader_open(e, &b);
    log_row(e, 1, 1, (const char *const[]){"+x", NULL});
    log_row(e, 2, 2, (const char *const[]){"+y", NULL});
    reader_begin(e, &a);
    assert_int_equal(dx_snapshot(&e->d, &a.rc, &a.v), 0);
    expect(ALL(e, &a), "x/1 y/2 ");

    merged(e, 2);
    log_row(e, 3, 3, (const char *const[]){"+z", NULL});
    /* b reads after the merge: sees z only, and must not free x, y under a */
    reader_begin(e, &b);
    assert_int_equal(dx_snapshot(&e->d, &b.rc, &b.v), 0);
    expect(ALL(e, &b), "z/3 ");
    reader_end(e, &b);
    reader_begin(e, &b);
    assert_int_equal(dx_snapshot(&e->d, &b.rc, &b.v), 0);
    reader_end(e, &b);
    expect(ALL(e, &a), "x/1 y/2 ");
    assert_int_equal(e->d.nodes, 3);
    reader_end(e, &a);

    /* no reader needs x, y now: the next snapshot frees them */
    reader_begin(e, &b);
    assert_int_equal(dx_snapshot(&e->d, &b.rc, &b.v), 0);
    assert_int_equal(e->d.nodes, 1);
    expect(ALL(e, &b), "z/3 ");
    reader_end(e, &b);
    reader_close(&a);
    reader_close(&b);
}

static void test_rows_a_newer_reader_skipped(void **state)
{
    struct env *e = *state;
    struct reader old, nw;
    reader_open(e, &old);
    reader_open(e, &nw);
    log_row(e, 1, 1, (const char *const[]){"+p", NULL});
    reader_begin(e, &nw);
    assert_int_equal(dx_snapshot(&e->d, &nw.rc, &nw.v), 0); /* memory holds (0, 1] */
    reader_end(e, &nw);

    log_row(e, 2, 2, (const char *const[]){"+q", NULL});
    log_row(e, 3, 3, (const char *const[]){"+r", NULL});
    reader_begin(e, &old); /* its snapshot has rows 1-3, not loaded yet */
    merged(e, 3);
    log_row(e, 4, 4, (const char *const[]){"+s", NULL});
    reader_begin(e, &nw); /* loads (3, 4] only: rows 2 and 3 are gone from its snapshot */
    assert_int_equal(dx_snapshot(&e->d, &nw.rc, &nw.v), 0);
    expect(ALL(e, &nw), "s/4 ");
    reader_end(e, &nw);
    /* the old reader finds (1, 3] not held and loads it from its own snapshot */
    assert_int_equal(dx_snapshot(&e->d, &old.rc, &old.v), 0);
    expect(ALL(e, &old), "p/1 q/2 r/3 ");
    reader_end(e, &old);
    reader_close(&old);
    reader_close(&nw);
}

/* dx_scan in both directions from a position, stopped after a count. */
struct upto {
    struct doc_buf b;
    int left;
};

static int collect_upto(void *arg, const char *key, size_t len, uint64_t seq)
{
    struct upto *u = arg;
    if (collect(&u->b, key, len, seq))
        return -1;
    return --u->left == 0;
}

static char *scan(struct env *e, struct reader *r, int desc, const char *from, uint64_t seq,
                  int count)
{
    struct upto u = {.left = count};
    assert_int_equal(doc_buf_puts(&u.b, ""), 0);
    struct dx_range rg = {"b", 1, 1, "d", 1, 0}; /* [b, d) */
    struct dx_pos p = {from, from ? strlen(from) : 0, seq};
    assert_int_equal(dx_scan(&e->d, &r->v, &rg, desc, from ? &p : NULL, collect_upto, &u), 0);
    return u.b.p;
}

static void test_scan_directions(void **state)
{
    struct env *e = *state;
    struct reader r;
    reader_open(e, &r);
    log_row(e, 1, 1, (const char *const[]){"+a", "+b", "+c", "+d", NULL});
    log_row(e, 2, 2, (const char *const[]){"+b", "+c", NULL});
    log_row(e, 3, 3, (const char *const[]){"+c", NULL});
    log_row(e, 4, 2, (const char *const[]){"-c", NULL}); /* gone again */
    reader_begin(e, &r);
    assert_int_equal(dx_snapshot(&e->d, &r.rc, &r.v), 0);
    expect(scan(e, &r, 0, NULL, 0, 100), "b/1 b/2 c/1 c/3 ");
    expect(scan(e, &r, 1, NULL, 0, 100), "c/3 c/1 b/2 b/1 ");
    expect(scan(e, &r, 0, "b", 2, 2), "b/2 c/1 ");       /* from (b, 2) on */
    expect(scan(e, &r, 1, "c", 2, 100), "c/1 b/2 b/1 "); /* from (c, 2) down */
    expect(scan(e, &r, 1, "c", UINT64_MAX, 1), "c/3 ");
    expect(scan(e, &r, 0, "z", 0, 100), "");
    reader_end(e, &r);
    reader_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_snapshot_across_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows_a_newer_reader_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_directions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
