/*
 * backup_bench.c — backup, verify and restore throughput to a local folder,
 * and foreground write throughput while backups run (docs/backup.md).
 *
 *   backup-bench [MB] [DIR]     default 256 MB in $TMPDIR (or /tmp)
 *
 * Makes an account (embedded keys) with a metadata store and one container
 * store of about MB megabytes of 3 KB random rows, then measures:
 *   backup    backup_job_run into file:DIR/bk (plaintext MB/s)
 *   verify    backup_verify
 *   restore   backup_restore into a new account (new keys)
 *   writes    rows/s of a writer (100 rows of 1 KB per transaction,
 *             synchronous=FULL) for 5 s alone, then for 5 s while backups
 *             run back to back; the ratio is the foreground cost.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup/backup.h"
#include "keys/embedded.h"
#include "storage/store.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "backup-bench: %s: %s\n", what, at_error_detail());
    exit(2);
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
                         "n; COMMIT",
                         NULL, NULL, NULL) != SQLITE_OK)
            die("foreground write");
        w->rows += 100;
    }
    store_disconnect(db);
    return NULL;
}

static double write_rate(struct writer *w, double secs, struct store *meta, struct store *c,
                         struct blob_store *bs, struct key_provider *kp, int *nbackups)
{
    pthread_t t;
    w->rows = 0;
    atomic_store(&w->stop, 0);
    pthread_create(&t, NULL, write_loop, w);
    double t0 = now();
    *nbackups = 0;
    while (now() - t0 < secs) {
        if (!bs) {
            usleep(50000);
            continue;
        }
        struct backup_keys keys = {.outer = kp};
        struct backup_job *j;
        if (backup_job_new(&keys, &j) || backup_job_add(j, "meta", meta) ||
            backup_job_add(j, "c-00000001", c) || backup_job_run(j, bs, NULL, NULL))
            die("backup while writing");
        backup_job_free(j);
        (*nbackups)++;
    }
    atomic_store(&w->stop, 1);
    pthread_join(t, NULL);
    return (double)w->rows / (now() - t0);
}

int main(int argc, char **argv)
{
    int mb = argc > 1 ? atoi(argv[1]) : 256;
    const char *base = argc > 2 ? argv[2] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char root[4096], data[4200], keys[4200], bk[4200], target[4300], rdata[4200], rkeys[4200];
    snprintf(root, sizeof root, "%s/atrest-backup-bench-%d", base, (int)getpid());
    mkdir(root, 0700);
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(keys, sizeof keys, "%s/keys", root);
    snprintf(bk, sizeof bk, "%s/bk", root);
    snprintf(target, sizeof target, "file:%s", bk);
    snprintf(rdata, sizeof rdata, "%s/rdata", root);
    snprintf(rkeys, sizeof rkeys, "%s/rkeys", root);

    struct key_provider *kp;
    struct store_env *env;
    if (embedded_provider_open(keys, data, 1, &kp))
        die("keys");
    struct store_env_options eo = {.data_dir = data, .outer = kp, .create = 1};
    if (store_env_open(&eo, &env))
        die("data folder");
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

    struct blob_options bo = {.target = target};
    struct blob_store *bs;
    if (blob_open(&bo, &bs))
        die("target");
    struct backup_keys bkeys = {.outer = kp};
    struct backup_job *j;
    double t0 = now();
    if (backup_job_new(&bkeys, &j) || backup_job_add(j, "meta", meta) ||
        backup_job_add(j, "c-00000001", c) || backup_job_run(j, bs, NULL, NULL))
        die("backup");
    double t_backup = now() - t0;
    char id[BACKUP_ID_LEN];
    snprintf(id, sizeof id, "%s", backup_job_id(j));
    backup_job_free(j);
    struct backup_info info;
    t0 = now();
    if (backup_verify(bs, &bkeys, id, NULL, NULL, &info))
        die("verify");
    double t_verify = now() - t0;
    struct key_provider *rkp;
    struct store_env *renv;
    if (embedded_provider_open(rkeys, rdata, 1, &rkp))
        die("new keys");
    struct store_env_options ro = {.data_dir = rdata, .outer = rkp, .create = 1};
    if (store_env_open(&ro, &renv))
        die("new data folder");
    t0 = now();
    if (backup_restore(bs, &bkeys, id, renv, NULL, NULL, NULL))
        die("restore");
    double t_restore = now() - t0;
    store_env_close(renv);
    kp_destroy(rkp);

    struct writer w = {.st = c};
    int nb0, nb1;
    double alone = write_rate(&w, 5, meta, c, NULL, kp, &nb0);
    double during = write_rate(&w, 5, meta, c, bs, kp, &nb1);

    double m = (double)info.plain_bytes / 1e6;
    printf("backup-bench: %.1f MB of pages (2 stores), local folder %s\n", m, bk);
    printf("| operation | time | throughput |\n|---|---|---|\n");
    printf("| backup  | %.2f s | %.0f MB/s |\n", t_backup, m / t_backup);
    printf("| verify  | %.2f s | %.0f MB/s |\n", t_verify, m / t_verify);
    printf("| restore | %.2f s | %.0f MB/s |\n", t_restore, m / t_restore);
    printf("| foreground writes alone | 5 s | %.0f rows/s |\n", alone);
    printf("| foreground writes during %d backups | 5 s | %.0f rows/s (%.2f of alone) |\n", nb1,
           during, during / alone);
    blob_close(bs);
    if (store_close(meta) || store_close(c))
        die("close");
    store_env_close(env);
    kp_destroy(kp);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "backup-bench: could not remove %s\n", root);
    return 0;
}
