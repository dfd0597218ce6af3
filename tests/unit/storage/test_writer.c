/*
 * test_writer.c — group commit and extra connections.
 *
 * 16 threads × 100 durable writes through one store writer: every write is
 * present afterwards, and they were committed in far fewer transactions
 * than writes (shared fsyncs). An operation that fails rolls back only its
 * own changes. Readers on store_connect() connections see committed rows
 * while the writer runs.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "storage/vfs.h"

#define THREADS    16
#define PER_THREAD 100

static int commits;

static int count_commit(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&commits, 1, __ATOMIC_RELAXED);
    return 0;
}

struct insert {
    long n;
    int fail; /* insert, then report failure: the row must vanish */
};

static int do_insert(sqlite3 *db, void *arg)
{
    struct insert *in = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?, 'x')", -1, &s, NULL) != SQLITE_OK)
        return 1;
    sqlite3_bind_int64(s, 1, in->n);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : 2;
    sqlite3_finalize(s);
    return rc ? rc : (in->fail ? 409 : 0);
}

struct worker {
    struct store_writer *w;
    int id;
    int failures;
};

static void *worker_main(void *p)
{
    struct worker *wk = p;
    for (int i = 0; i < PER_THREAD; i++) {
        struct insert in = {.n = (long)wk->id * 1000 + i, .fail = i % 10 == 9};
        int rc = store_write(wk->w, do_insert, &in);
        if (rc != (in.fail ? 409 : 0))
            wk->failures++;
    }
    return NULL;
}

static long count_rows(sqlite3 *db, const char *where)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM t %s", where);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* A fresh fixture in dir with store "w" holding an empty table t. */
static struct store *store_with_t(struct fixture *fx, const char *dir)
{
    struct store *st;
    fx_setup(fx, dir);
    assert_int_equal(store_create(fx->env, "w", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT)"), 0);
    return st;
}

static void test_group_commit(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "writer");
    sqlite3_commit_hook(store_db(st), count_commit, NULL);
    commits = 0;
    struct store_writer *w;
    assert_int_equal(store_writer_start(st, &w), 0);
    sqlite3 *reader;
    assert_int_equal(store_connect(st, &reader), 0);

    pthread_t th[THREADS];
    struct worker wk[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (struct worker){.w = w, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
    }
    long seen = 0;
    for (int i = 0; i < 50; i++) { /* readers run alongside the writer */
        long n = count_rows(reader, "");
        assert_true(n >= seen);
        seen = n;
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(wk[i].failures, 0);
    }
    store_writer_stop(w);
    long expect = THREADS * PER_THREAD - THREADS * (PER_THREAD / 10);
    assert_int_equal(count_rows(reader, ""), expect);
    assert_int_equal(count_rows(reader, "WHERE n % 1000 % 10 = 9"), 0); /* failed ops gone */
    print_message("%d writes in %d commits\n", THREADS * PER_THREAD, commits);
    assert_true(commits > 0);
    assert_true(commits <= THREADS * PER_THREAD / 2);
    store_disconnect(reader);
    assert_int_equal(store_close(st), 0);

    /* Durable: all of it is there after a reopen. */
    assert_int_equal(store_open(fx.env, "w", &st), 0);
    assert_int_equal(count_rows(store_db(st), ""), expect);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

static void test_write_after_stop_refused_and_lone_writer(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "writer1");
    struct store_writer *w;
    assert_int_equal(store_writer_start(st, &w), 0);
    struct insert a = {.n = 1}, dup = {.n = 1};
    assert_int_equal(store_write(w, do_insert, &a), 0);
    assert_int_equal(store_write(w, do_insert, &dup), 2); /* constraint: only it fails */
    store_writer_stop(w);
    assert_int_equal(count_rows(store_db(st), ""), 1);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

struct done_count {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, ok, conflicts;
};

static void on_done(void *arg, int rc)
{
    struct done_count *d = arg;
    pthread_mutex_lock(&d->mu);
    d->n++;
    d->ok += rc == 0;
    d->conflicts += rc == 409;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* store_write_async: every callback runs once, after its batch committed,
 * with the operation's own result. */
static void test_async(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "writer-async");
    sqlite3_commit_hook(store_db(st), count_commit, NULL);
    commits = 0;
    struct store_writer *w;
    assert_int_equal(store_writer_start(st, &w), 0);
    enum { N = 500 };
    static struct insert ins[N];
    struct done_count d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    for (int i = 0; i < N; i++) {
        ins[i] = (struct insert){.n = i, .fail = i % 5 == 4};
        assert_int_equal(store_write_async(w, do_insert, &ins[i], on_done, &d), 0);
    }
    pthread_mutex_lock(&d.mu);
    while (d.n < N)
        pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    assert_int_equal(d.ok, N - N / 5);
    assert_int_equal(d.conflicts, N / 5);
    assert_true(commits < N / 4); /* queued together, committed together */
    store_writer_stop(w);
    assert_int_equal(count_rows(store_db(st), ""), N - N / 5);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* Checkpoint rounds (store.c): under steady commits that rewrite the same
 * pages, a page is copied to the main file about once per start of the
 * WAL, not once per commit, and the WAL stays bounded. 1,000 commits of 50
 * rows on 50 pages out of ~500: about 52,000 frames, six or so starts of
 * the WAL. Copying each commit's frames soon after it (what a checkpoint
 * woken by every commit does) copies nearly as many pages as were sealed.
 * Once the commits stop, a round copies what they left within a second or
 * so. */
struct hot {
    int round;
};

static int rewrite_hot(sqlite3 *db, void *arg)
{
    struct hot *h = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "UPDATE t SET v = replace(hex(zeroblob(1000)), '00', ?2) WHERE n = ?1",
                           -1, &s, NULL) != SQLITE_OK)
        return 1;
    int rc = 0;
    for (int k = 0; k < 50 && !rc; k++) {
        sqlite3_bind_int64(s, 1, k * 40 + h->round % 40);
        sqlite3_bind_text(s, 2, h->round / 40 % 2 ? "a" : "b", 1, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : 2;
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return rc;
}

static void test_checkpoint_rounds(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "writer-ckpt");
    assert_int_equal(store_exec(st, "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n+1 FROM i "
                                    "WHERE n < 1999) INSERT INTO t SELECT n, "
                                    "replace(hex(zeroblob(1000)), '00', 'x') FROM i"),
                     0);
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", store_path(st));
    struct store_writer *w;
    assert_int_equal(store_writer_start(st, &w), 0);
    struct vfs_stats a, b;
    vfs_stats_get(&a);
    long long wal_max = 0;
    for (int i = 0; i < 1000; i++) {
        struct hot h = {i};
        assert_int_equal(store_write(w, rewrite_hot, &h), 0);
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > wal_max)
            wal_max = sb.st_size;
    }
    vfs_stats_get(&b);

    /* Then quiet: a round copies what the last commits left, so a
     * checkpoint afterwards finds nothing to copy. */
    struct vfs_stats idle, after;
    for (int i = 0; i < 100; i++) { /* up to 10 s (1 s expected) */
        usleep(100 * 1000);
        vfs_stats_get(&idle);
        if (idle.ckpt_passthrough > b.ckpt_passthrough)
            break;
    }
    assert_true(idle.ckpt_passthrough > b.ckpt_passthrough);
    usleep(500 * 1000); /* the round's end */
    sqlite3 *other;
    assert_int_equal(store_connect(st, &other), 0);
    vfs_stats_get(&idle);
    int log = -1, ckpt = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(other, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt),
                     SQLITE_OK);
    vfs_stats_get(&after);
    print_message("idle: %d frames in the WAL, all copied: %llu pages left for a checkpoint\n", log,
                  (unsigned long long)(after.ckpt_passthrough - idle.ckpt_passthrough));
    assert_true(log > 0);
    assert_int_equal(ckpt, log);
    assert_true(after.ckpt_passthrough == idle.ckpt_passthrough);
    store_disconnect(other);
    store_writer_stop(w);
    uint64_t sealed = b.pages_sealed - a.pages_sealed,
             copied = b.ckpt_passthrough - a.ckpt_passthrough;
    print_message("%llu frames sealed, %llu pages copied by checkpoints, WAL at most %lld bytes\n",
                  (unsigned long long)sealed, (unsigned long long)copied, wal_max);
    assert_true(sealed >= 50000);
    assert_true(copied * 4 < sealed);
    assert_true(wal_max < 40000LL * 4200); /* CKPT_FORCE frames and a few commits */
    assert_int_equal(count_rows(store_db(st), "WHERE length(v) = 1000"), 2000);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* A connection that commits without syncing (synchronous=OFF or NORMAL):
 * its frames reach the WAL file by the end of the commit, although the VFS
 * combines WAL writes until a sync, so another connection reads the rows at
 * once instead of finding published frames that are not in the file. */
static void test_unsynced_commit_visible(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "writer-nosync");
    sqlite3 *a, *b;
    assert_int_equal(store_connect(st, &a), 0);
    assert_int_equal(store_connect(st, &b), 0);
    for (int mode = 0; mode < 2; mode++) {
        assert_int_equal(sqlite3_exec(a,
                                      mode ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        for (int i = 0; i < 20; i++) {
            char sql[160];
            snprintf(sql, sizeof sql,
                     "INSERT INTO t VALUES(%d, replace(hex(zeroblob(600)), '00', 'y'))",
                     mode * 100 + i);
            assert_int_equal(sqlite3_exec(a, sql, NULL, NULL, NULL), SQLITE_OK);
            assert_int_equal(count_rows(b, ""), mode * 20 + i + 1);
        }
    }
    store_disconnect(a);
    store_disconnect(b);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* store_writer_after: housekeeping an operation asks for runs once, after
 * the batch is answered, in a transaction of its own (rolled back when it
 * fails). */
struct later {
    struct store_writer *w;
    int ran, in_txn, fail;
    long n;
};

static int later_fn(sqlite3 *db, void *arg)
{
    struct later *l = arg;
    l->ran++;
    l->in_txn = !sqlite3_get_autocommit(db);
    struct insert in = {.n = l->n + 100};
    return do_insert(db, &in) ? 1 : l->fail;
}

static int schedule_later(sqlite3 *db, void *arg)
{
    struct later *l = arg;
    store_writer_after(l->w, later_fn, l);
    store_writer_after(l->w, later_fn, l); /* ignored: one is pending */
    struct insert in = {.n = l->n};
    return do_insert(db, &in);
}

static void test_after(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st = store_with_t(&fx, "after");
    struct store_writer *w;
    assert_int_equal(store_writer_start(st, &w), 0);
    sqlite3 *reader;
    assert_int_equal(store_connect(st, &reader), 0);
    struct insert nothing = {.n = 50};
    for (int fail = 0; fail < 2; fail++) {
        struct later l = {.w = w, .fail = fail, .n = fail + 1};
        commits = 0;
        sqlite3_commit_hook(store_db(st), count_commit, NULL);
        assert_int_equal(store_write(w, schedule_later, &l), 0);
        nothing.n++;
        assert_int_equal(store_write(w, do_insert, &nothing), 0); /* after it ran */
        sqlite3_commit_hook(store_db(st), NULL, NULL);
        assert_int_equal(l.ran, 1);
        assert_true(l.in_txn);
        char where[64];
        snprintf(where, sizeof where, "WHERE n = %ld", l.n);
        assert_int_equal(count_rows(reader, where), 1);
        snprintf(where, sizeof where, "WHERE n = %ld", l.n + 100);
        assert_int_equal(count_rows(reader, where), fail ? 0 : 1); /* rolled back on failure */
        assert_int_equal(commits, fail ? 2 : 3);                   /* its own commit */
    }
    store_disconnect(reader);
    store_writer_stop(w);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_write_after_stop_refused_and_lone_writer),
        cmocka_unit_test(test_async),
        cmocka_unit_test(test_checkpoint_rounds),
        cmocka_unit_test(test_unsynced_commit_visible),
        cmocka_unit_test(test_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
