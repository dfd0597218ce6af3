/*
 * backup_bench.c — backup, verify and restore throughput to a local folder,
 * and foreground write throughput while backups run (docs/backup.md).
 *
 *   backup-bench [MB] [DIR]     default 256 MB in $TMPDIR (or /tmp)
 *   backup-bench --continuous [SECONDS] [DIR]   continuous mode (below)
 *   BACKUP_BENCH_TARGET=azblob:URL BACKUP_BENCH_KEY_FILE=F backup-bench ...
 *                               back up to that target instead of DIR/bk
 *
 * Makes an account (embedded keys) with a metadata store and one container
 * store of about MB megabytes of 3 KB random rows, then measures:
 *   backup    backup_job_run into file:DIR/bk (plaintext MB/s)
 *   verify    backup_verify
 *   restore   backup_restore into a new account (new keys)
 *   writes    rows/s of a writer (100 rows of 1 KB per transaction,
 *             synchronous=FULL) for 5 s alone, then for 5 s while backups
 *             run back to back; the ratio is the foreground cost.
 *
 * --continuous: shipping lag under a steady write load, and what shipping
 * costs the writers. Each run makes a fresh account with one container
 * store and drives its group-commit writer (store_write, as the server's
 * document creates do) from 8 threads, each inserting one 1 KB row per
 * call, for SECONDS (default 10):
 *   paced   500 creates/s in all (the steady load of the lag target)
 *   max     as fast as the writer goes
 * once with continuous shipping off and once on (shipper to a local
 * folder, a segment every second and every 2 s, the default), off and on
 * alternating over two rounds. The lag of a commit — until its segment is
 * in the target — comes from ship_status (the last 8192 commits), read
 * after a final flush.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/bgthread.h"
#include "backup/backup.h"
#include "backup/ship.h"
#include "keys/embedded.h"
#include "storage/store.h"

static void die(const char *what)
{
    fprintf(stderr, "backup-bench: %s: %s\n", what, at_error_detail());
    exit(2);
}

/* A new account in dir: dir/keys (embedded provider) and dir/data. */
static void open_account(const char *dir, struct key_provider **kp, struct store_env **env)
{
    char data[4200], keys[4200];
    mkdir(dir, 0700);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    if (embedded_provider_open(keys, data, 1, kp))
        die("keys");
    struct store_env_options eo = {.data_dir = data, .outer = *kp, .create = 1};
    if (store_env_open(&eo, env))
        die("data folder");
}

/* Close an account from open_account and remove dir. */
static void close_account(struct key_provider *kp, struct store_env *env, const char *dir)
{
    store_env_close(env);
    kp_destroy(kp);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "backup-bench: could not remove %s\n", dir);
}

struct writer {
    struct store *st;
    atomic_int stop;
    long rows;
};

static void *write_loop(void *p)
{
    struct writer *w = p;
    sqlite3 *db;
    if (store_connect(w->st, &db) != 0)
        die("connect");
    while (!atomic_load(&w->stop)) {
        if (sqlite3_exec(db,
                         "BEGIN IMMEDIATE; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 "
                         "FROM n WHERE i < 100) INSERT INTO fg(body) SELECT randomblob(1000) FROM "
                         "n; DELETE FROM fg WHERE id <= (SELECT max(id) FROM fg) - 10000; COMMIT",
                         NULL, NULL, NULL) != SQLITE_OK)
            die("foreground write");
        w->rows += 100;
    }
    store_disconnect(db);
    return NULL;
}

/* Backups back to back until stop, on a thread of their own at the
 * priority atrestd's backup thread takes (bg_thread_lower). */
struct backups_loop {
    struct store *meta, *c;
    struct blob_store *bs;
    struct key_provider *kp;
    unsigned busy_mbps;
    atomic_int stop;
    int n;
};

static void *backup_loop(void *p)
{
    struct backups_loop *l = p;
    bg_thread_lower();
    while (!atomic_load(&l->stop)) {
        struct backup_keys keys = {.outer = l->kp};
        struct backup_job *j;
        if (backup_job_new(&keys, &j))
            die("backup while writing");
        backup_job_set_busy_mbps(j, l->busy_mbps);
        if (backup_job_add(j, "meta", l->meta) ||
            backup_job_add(j, "c-00000001", l->c) || backup_job_run(j, l->bs, NULL, NULL))
            die("backup while writing");
        backup_job_free(j);
        l->n++;
    }
    return NULL;
}

#define ROUNDS 3
#define FG_SECS 4

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double v[ROUNDS])
{
    double c[ROUNDS];
    memcpy(c, v, sizeof c);
    qsort(c, ROUNDS, sizeof *c, cmp_double);
    return c[ROUNDS / 2];
}

static double write_rate(struct writer *w, double secs, struct store *meta, struct store *c,
                         struct blob_store *bs, unsigned busy_mbps, struct key_provider *kp,
                         int *nbackups)
{
    pthread_t t, bt;
    struct backups_loop l = {.meta = meta, .c = c, .bs = bs, .kp = kp, .busy_mbps = busy_mbps};
    w->rows = 0;
    atomic_store(&w->stop, 0);
    pthread_create(&t, NULL, write_loop, w);
    if (bs)
        pthread_create(&bt, NULL, backup_loop, &l);
    double t0 = mono_seconds();
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&w->stop, 1);
    pthread_join(t, NULL);
    double rate = (double)w->rows / (mono_seconds() - t0);
    if (bs) {
        atomic_store(&l.stop, 1);
        pthread_join(bt, NULL);
    }
    *nbackups = l.n;
    return rate;
}

/* ---- --continuous ---------------------------------------------------------- */

#define THREADS 8

struct load {
    struct store_writer *w;
    double secs, rate; /* rate: creates/s per thread, 0 = as fast as possible */
    atomic_long done;
};

static int insert_row(sqlite3 *db, void *arg)
{
    (void)arg;
    static const char sql[] = "INSERT INTO docs(body) VALUES (randomblob(1000))";
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return AT_ESQLITE;
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : AT_ESQLITE;
    sqlite3_finalize(s);
    return rc;
}

static void *client(void *p)
{
    struct load *l = p;
    double t0 = mono_seconds();
    for (long n = 0;; n++) {
        double t = mono_seconds() - t0;
        if (t >= l->secs)
            break;
        if (l->rate > 0 && n / l->rate > t)
            usleep((useconds_t)((n / l->rate - t) * 1e6));
        if (store_write(l->w, insert_row, NULL) != 0)
            die("write");
        atomic_fetch_add(&l->done, 1);
    }
    return NULL;
}

struct result {
    double rate;
    struct ship_status st;
};

static void run(const char *root, int n, int ship_ms, double secs, double rate, struct result *r)
{
    char dir[4200], target[4400], spool[4400];
    struct key_provider *kp;
    struct store_env *env;
    snprintf(dir, sizeof dir, "%s/run%d", root, n);
    open_account(dir, &kp, &env);
    snprintf(target, sizeof target, "file:%s/bk", dir);
    snprintf(spool, sizeof spool, "%s/spool", store_env_data_dir(env));
    struct ship *sh = NULL;
    struct ship_options so = {.target = target,
                              .keys = {.outer = kp},
                              .spool_dir = spool,
                              .interval_ms = (unsigned)ship_ms};
    if (ship_ms && ship_start(env, &so, &sh))
        die("ship");
    struct store *c;
    if (store_create(env, "c-1", &c) ||
        store_exec(c, "CREATE TABLE docs(id INTEGER PRIMARY KEY, body BLOB)"))
        die("store");
    struct load l = {.secs = secs, .rate = rate / THREADS};
    if (store_writer_start(c, &l.w))
        die("writer");
    pthread_t t[THREADS];
    double t0 = mono_seconds();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, client, &l);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    r->rate = (double)atomic_load(&l.done) / (mono_seconds() - t0);
    memset(&r->st, 0, sizeof r->st);
    if (sh) {
        if (ship_flush(sh, 60000) != 0)
            die("flush");
        ship_status_get(sh, &r->st);
    }
    store_writer_stop(l.w);
    if (store_close(c))
        die("close");
    ship_stop(sh);
    close_account(kp, env, dir);
}

static int continuous_main(int argc, char **argv)
{
    double secs = argc > 2 ? atof(argv[2]) : 10;
    const char *base = argc > 3 ? argv[3] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char root[4096];
    snprintf(root, sizeof root, "%s/atrest-backup-bench-c%d", base, (int)getpid());
    mkdir(root, 0700);
    static const struct {
        const char *name;
        double rate;
        int ship_ms;
    } cases[] = {
        {"paced 500/s", 500, 1000}, {"paced 500/s", 500, 2000}, {"max", 0, 1000}, {"max", 0, 2000}};
    printf("backup-bench --continuous: %.0f s per run, %d writer threads, 1 KB rows, file target "
           "in %s\n",
           secs, THREADS, base);
    printf("| load | segment every | creates/s off | creates/s on | on/off | lag p50 | lag p99 "
           "| lag max | segments | MB shipped |\n|---|---|---|---|---|---|---|---|---|---|\n");
    int n = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct result off[2], on[2];
        for (int round = 0; round < 2; round++) {
            run(root, n++, 0, secs, cases[i].rate, &off[round]);
            run(root, n++, cases[i].ship_ms, secs, cases[i].rate, &on[round]);
        }
        double roff = (off[0].rate + off[1].rate) / 2, ron = (on[0].rate + on[1].rate) / 2;
        const struct ship_status *a = &on[0].st, *b = &on[1].st;
        printf("| %s | %d s | %.0f | %.0f | %.2f | %.0f ms | %.0f ms | %.0f ms | %llu | %.1f |\n",
               cases[i].name, cases[i].ship_ms / 1000, roff, ron, ron / roff,
               (a->lag_p50_ms + b->lag_p50_ms) / 2,
               a->lag_p99_ms > b->lag_p99_ms ? a->lag_p99_ms : b->lag_p99_ms,
               a->lag_max_ms > b->lag_max_ms ? a->lag_max_ms : b->lag_max_ms,
               (unsigned long long)(a->segments + b->segments),
               (double)(a->bytes_shipped + b->bytes_shipped) / 2e6);
        fflush(stdout);
    }
    rmdir(root);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--continuous") == 0)
        return continuous_main(argc, argv);
    int mb = argc > 1 ? atoi(argv[1]) : 256;
    const char *base = argc > 2 ? argv[2] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char root[4096], bk[4200], target[4300], rroot[4200];
    snprintf(root, sizeof root, "%s/atrest-backup-bench-%d", base, (int)getpid());
    snprintf(bk, sizeof bk, "%s/bk", root);
    snprintf(target, sizeof target, "file:%s", bk);
    snprintf(rroot, sizeof rroot, "%s/restored", root);
    struct key_provider *kp;
    struct store_env *env;
    open_account(root, &kp, &env);
    struct store *meta, *c;
    if (store_create(env, "meta", &meta) || store_create(env, "c-00000001", &c))
        die("stores");
    if (store_exec(meta, "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)") ||
        store_exec(c, "CREATE TABLE docs(id INTEGER PRIMARY KEY, body BLOB);"
                      "CREATE TABLE fg(id INTEGER PRIMARY KEY, body BLOB)"))
        die("schema");
    int rows = mb * 1000000 / 3100;
    for (int done = 0; done < rows; done += 10000) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < "
                 "%d) INSERT INTO docs(body) SELECT randomblob(3000) FROM n; COMMIT",
                 rows - done < 10000 ? rows - done : 10000);
        if (store_exec(c, sql))
            die("fill");
    }
    if (store_exec(c, "PRAGMA wal_checkpoint(TRUNCATE)"))
        die("checkpoint");

    /* BACKUP_BENCH_TARGET (e.g. azblob:http://127.0.0.1:10000/devstoreaccount1/bench) and
     * BACKUP_BENCH_KEY_FILE put the backups elsewhere than DIR/bk. */
    const char *other = getenv("BACKUP_BENCH_TARGET");
    if (other)
        snprintf(target, sizeof target, "%s", other);
    struct blob_options bo = {.target = target, .account_key_file = getenv("BACKUP_BENCH_KEY_FILE")};
    struct blob_store *bs;
    if (blob_open(&bo, &bs))
        die("target");
    struct backup_keys bkeys = {.outer = kp};
    /* Backup, verify and restore ROUNDS times each; the table shows the
     * median time (this machine is shared and noisy). */
    double t_backup[ROUNDS], t_verify[ROUNDS], t_restore[ROUNDS];
    struct backup_info info;
    for (int r = 0; r < ROUNDS; r++) {
        struct backup_job *j;
        double t0 = mono_seconds();
        if (backup_job_new(&bkeys, &j))
            die("backup");
        backup_job_set_busy_mbps(j, BACKUP_BUSY_MBPS_DEFAULT); /* idle: not paced */
        if (backup_job_add(j, "meta", meta) ||
            backup_job_add(j, "c-00000001", c) || backup_job_run(j, bs, NULL, NULL))
            die("backup");
        t_backup[r] = mono_seconds() - t0;
        char id[BACKUP_ID_LEN];
        snprintf(id, sizeof id, "%s", backup_job_id(j));
        backup_job_free(j);
        t0 = mono_seconds();
        if (backup_verify(bs, &bkeys, id, NULL, NULL, &info))
            die("verify");
        t_verify[r] = mono_seconds() - t0;
        struct key_provider *rkp;
        struct store_env *renv;
        open_account(rroot, &rkp, &renv);
        t0 = mono_seconds();
        if (backup_restore(bs, &bkeys, id, renv, NULL, NULL, NULL))
            die("restore");
        t_restore[r] = mono_seconds() - t0;
        close_account(rkp, renv, rroot);
    }

    /* Foreground: alone, during back-to-back backups paced as atrestd
     * paces them by default, and during unpaced ones, alternating. */
    struct writer w = {.st = c};
    double fg[3][ROUNDS];
    int nb[3][ROUNDS];
    static const unsigned pace_of[3] = {0, BACKUP_BUSY_MBPS_DEFAULT, 0};
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < 3; k++)
            fg[k][r] = write_rate(&w, FG_SECS, meta, c, k ? bs : NULL, pace_of[k], kp, &nb[k][r]);

    double m = (double)info.plain_bytes / 1e6;
    double tb = median(t_backup), tv = median(t_verify), tr = median(t_restore);
    printf("backup-bench: %.1f MB of pages (2 stores), target %s, median of %d\n", m, target,
           ROUNDS);
    printf("| operation | time | throughput |\n|---|---|---|\n");
    printf("| backup  | %.2f s | %.0f MB/s |\n", tb, m / tb);
    printf("| verify  | %.2f s | %.0f MB/s |\n", tv, m / tv);
    printf("| restore | %.2f s | %.0f MB/s |\n", tr, m / tr);
    printf("\nforeground writer (rows/s), %d s each; backups back to back on a thread at "
           "atrestd's backup priority\n\n"
           "| round | alone | during paced backups (%u MB/s when busy) | backups | ratio | during "
           "unpaced backups | backups | ratio |\n|---|---|---|---|---|---|---|---|\n",
           FG_SECS, BACKUP_BUSY_MBPS_DEFAULT);
    double sum[3] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        printf("| %d | %.0f | %.0f | %d | %.2f | %.0f | %d | %.2f |\n", r + 1, fg[0][r], fg[1][r],
               nb[1][r], fg[1][r] / fg[0][r], fg[2][r], nb[2][r], fg[2][r] / fg[0][r]);
        for (int k = 0; k < 3; k++)
            sum[k] += fg[k][r];
    }
    printf("| all | %.0f | %.0f | | **%.2f** | %.0f | | **%.2f** |\n", sum[0] / ROUNDS,
           sum[1] / ROUNDS, sum[1] / sum[0], sum[2] / ROUNDS, sum[2] / sum[0]);
    blob_close(bs);
    if (store_close(meta) || store_close(c))
        die("close");
    close_account(kp, env, root);
    return 0;
}
