/*
 * test_writer.c — group commit and extra connections.
 *
 * 16 threads × 100 durable writes through one store writer: every write is
 * present afterwards, and they were committed in far fewer transactions
 * than writes (shared fsyncs). An operation that fails rolls back only its
 * own changes. Readers on store_connect() connections see committed rows
 * while the writer runs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

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

static void test_group_commit(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    fx_setup(&fx, "writer");
    assert_int_equal(store_create(fx.env, "w", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT)"), 0);
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
    struct store *st;
    fx_setup(&fx, "writer1");
    assert_int_equal(store_create(fx.env, "w", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT)"), 0);
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
    struct store *st;
    fx_setup(&fx, "writer-async");
    assert_int_equal(store_create(fx.env, "w", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT)"), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_write_after_stop_refused_and_lone_writer),
        cmocka_unit_test(test_async),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
