/*
 * cont_bench.c — continuous backups under a steady write load: how long a
 * commit takes to reach the blob store (lag), and what shipping costs the
 * writers (docs/backup.md, "Continuous mode").
 *
 *   continuous-bench [SECONDS] [DIR]     default 10 s per run, $TMPDIR or /tmp
 *
 * Each run makes a fresh account (embedded keys) with one container store
 * and drives its group-commit writer (store_write, as the server's
 * document creates do) from 8 threads, each inserting one 1 KB row per
 * call, for SECONDS:
 *   paced   500 creates/s in all (the steady load of the lag target)
 *   max     as fast as the writer goes
 * once with continuous shipping off and once on (shipper to file:DIR/bk,
 * a segment every second as with --backup-ship-seconds 1, and every 2 s,
 * the default), off and on alternating over two rounds. With shipping on
 * the lag of every commit — commit to its segment being in the target —
 * comes from ship_status (the last 8192 commits), after a final flush.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup/ship.h"
#include "keys/embedded.h"
#include "storage/store.h"

#define THREADS 8

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "continuous-bench: %s: %s\n", what, at_error_detail());
    exit(2);
}

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
    double t0 = now();
    for (long n = 0;; n++) {
        double t = now() - t0;
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
    char dir[4200], data[4300], keys[4300], bk[4300], target[4400], spool[4400];
    snprintf(dir, sizeof dir, "%s/run%d", root, n);
    mkdir(dir, 0700);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    snprintf(bk, sizeof bk, "%s/bk", dir);
    snprintf(target, sizeof target, "file:%s", bk);
    snprintf(spool, sizeof spool, "%s/spool", data);
    struct key_provider *kp;
    struct store_env *env;
    if (embedded_provider_open(keys, data, 1, &kp))
        die("keys");
    struct store_env_options eo = {.data_dir = data, .outer = kp, .create = 1};
    if (store_env_open(&eo, &env))
        die("data folder");
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
    double t0 = now();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, client, &l);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    r->rate = (double)atomic_load(&l.done) / (now() - t0);
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
    store_env_close(env);
    kp_destroy(kp);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "continuous-bench: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 10;
    const char *base = argc > 2 ? argv[2] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    char root[4096];
    snprintf(root, sizeof root, "%s/atrest-cont-bench-%d", base, (int)getpid());
    mkdir(root, 0700);
    static const struct {
        const char *name;
        double rate;
        int ship_ms;
    } cases[] = {{"paced 500/s", 500, 1000}, {"paced 500/s", 500, 2000}, {"max", 0, 1000},
                 {"max", 0, 2000}};
    printf("continuous-bench: %.0f s per run, %d writer threads, 1 KB rows, file target in %s\n",
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
