/*
 * keys_bench.c — key rotation and the customer-key layer, measured on the
 * storage engine (docs/bench-keys.md):
 *
 *   1. KEK rewrap: a store of --size-mb MB (default 1024), a new KEK
 *      version in the embedded provider, keyring_rewrap timed: it rewraps
 *      DEKs, never data, so its time does not depend on the data size.
 *   2. Re-encryption after a DEK rotation, unthrottled: MB/s over the
 *      whole store file (read, re-seal, journal, write, fsync).
 *   3. Foreground writes while a re-encryption runs at the default
 *      throttle (64 MB/s, atrestd's --reencrypt-mbps) and unthrottled, as a
 *      fraction of the same writes with no re-encryption.
 *   4. The same writes on a one-layer and a two-layer (customer key) data
 *      folder: the ratio.
 *
 * Foreground writes: --threads group-commit writers (default 4), each
 * store_write one 300-byte row, for --seconds (default 5) per measurement;
 * rounds alternate between the compared sides (--rounds, default 3) and
 * the median ratio is reported. Prints a table, then a RESULT line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "storage/rekey.h"
#include "storage/store.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "keys-bench: %s: %d %s\n", what, rc, at_error_detail());
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- an account: provider(s) + environment ------------------------------- */

struct acct {
    char data[512], keys[512], cmk[512];
    struct key_provider *kp[2];
    struct store_env *env;
};

static void acct_open(struct acct *a, const char *root, const char *name, int layers)
{
    snprintf(a->data, sizeof a->data, "%s/%s-data", root, name);
    snprintf(a->keys, sizeof a->keys, "%s/%s-keys", root, name);
    snprintf(a->cmk, sizeof a->cmk, "%s/%s-cmk", root, name);
    int rc = embedded_provider_open(a->keys, a->data, 1, &a->kp[0]);
    if (!rc && layers == 2)
        rc = embedded_provider_open(a->cmk, a->data, 1, &a->kp[1]);
    if (rc)
        die("provider", rc);
    struct store_env_options o = {
        .data_dir = a->data, .outer = a->kp[0], .inner = a->kp[1], .create = 1};
    if ((rc = store_env_open(&o, &a->env)) != 0)
        die("store_env_open", rc);
}

static void acct_close(struct acct *a)
{
    store_env_close(a->env);
    kp_destroy(a->kp[0]);
    kp_destroy(a->kp[1]);
}

/* ---- foreground writes ----------------------------------------------------- */

struct fg {
    struct store_writer *w;
    volatile int stop;
    long ops[64];
};

struct fg_thread {
    struct fg *fg;
    int idx;
};

static int insert_row(sqlite3 *db, void *arg)
{
    (void)arg;
    static const char sql[] = "INSERT INTO fg(p) VALUES(randomblob(300))";
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : AT_ESQLITE;
}

static void *fg_main(void *p)
{
    struct fg_thread *t = p;
    while (!t->fg->stop)
        if (store_write(t->fg->w, insert_row, NULL) == 0)
            t->fg->ops[t->idx]++;
    return NULL;
}

/* Writes per second into st's table fg from threads writers for secs. */
static double foreground(struct store *st, int threads, double secs)
{
    struct fg fg = {0};
    struct fg_thread t[64];
    pthread_t th[64];
    int rc = store_exec(st, "CREATE TABLE IF NOT EXISTS fg(i INTEGER PRIMARY KEY, p BLOB)");
    if (rc || (rc = store_writer_start(st, &fg.w)) != 0)
        die("writer", rc);
    double t0 = mono_seconds();
    for (int i = 0; i < threads; i++) {
        t[i] = (struct fg_thread){&fg, i};
        pthread_create(&th[i], NULL, fg_main, &t[i]);
    }
    while (mono_seconds() - t0 < secs)
        usleep(20000);
    fg.stop = 1;
    long ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += fg.ops[i];
    }
    double dt = mono_seconds() - t0;
    store_writer_stop(fg.w);
    return (double)ops / dt;
}

/* ---- re-encryption in a thread (throttled like atrestd's) -------------------- */

struct rk_run {
    struct store *st;
    int mbps; /* 0: no limit */
    volatile int stop;
    int done;
    double secs;
    uint64_t bytes;
};

static void *rk_main(void *p)
{
    struct rk_run *r = p;
    struct store_rekey *rk;
    int rc = store_rekey_new(r->st, &rk);
    if (rc)
        die("store_rekey_new", rc);
    store_rekey_set_threads(rk, r->mbps ? 1 : 2);
    double t0 = mono_seconds();
    while (!r->stop && !r->done) {
        if ((rc = store_rekey_step(rk, r->mbps ? 1024 : 8192, &r->done)) != 0)
            die("store_rekey_step", rc);
        struct store_rekey_progress pr;
        store_rekey_progress(rk, &pr);
        r->bytes = pr.bytes;
        if (pr.waiting_wal) {
            usleep(50000);
        } else if (r->mbps > 0) {
            double ahead = (double)pr.bytes / (r->mbps * 1048576.0) - (mono_seconds() - t0);
            if (ahead > 0)
                usleep((useconds_t)(ahead * 1e6));
        }
    }
    r->secs = mono_seconds() - t0;
    store_rekey_free(rk);
    return NULL;
}

/* ---- main -------------------------------------------------------------------- */

static void fill(struct store *st, long mb)
{
    int rc = store_exec(st, "CREATE TABLE big(i INTEGER PRIMARY KEY, p BLOB)");
    for (long done = 0; !rc && done < mb * 256; done += 1024) {
        rc = store_exec(st, "BEGIN; WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM "
                            "n WHERE x < 1024) INSERT INTO big(p) SELECT randomblob(3900) FROM n; "
                            "COMMIT");
    }
    if (!rc)
        rc = store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (rc)
        die("fill", rc);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

int main(int argc, char **argv)
{
    long size_mb = 1024;
    int threads = 4, rounds = 3;
    double secs = 5;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size-mb") && i + 1 < argc)
            size_mb = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            secs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: keys-bench [--size-mb N] [--seconds S] [--threads N] "
                            "[--rounds N] [--dir D]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || rounds < 1 || rounds > 15 || size_mb < 1)
        return 2;
    char root[600];
    snprintf(root, sizeof root, "%s/keys-bench-XXXXXX", dir);
    if (!mkdtemp(root))
        die("mkdtemp", errno);
    fprintf(stderr, "keys-bench: filling a %ld MB store in %s ...\n", size_mb, root);

    struct acct one = {0}, two = {0};
    acct_open(&one, root, "one", 1);
    struct store *big;
    int rc = store_create(one.env, "big", &big);
    if (rc)
        die("store_create", rc);
    double t0 = mono_seconds();
    fill(big, size_mb);
    double mb = (double)file_size(store_path(big)) / 1048576.0;
    fprintf(stderr, "keys-bench: %.0f MB written in %.1f s\n", mb, mono_seconds() - t0);

    /* 1. KEK rewrap */
    struct keyring *kr = store_env_keyring(one.env);
    if ((rc = embedded_provider_rotate(one.kp[0])) != 0)
        die("embedded_provider_rotate", rc);
    size_t nrewrap = 0;
    t0 = mono_seconds();
    if ((rc = keyring_rewrap(kr, 0, &nrewrap)) != 0)
        die("keyring_rewrap", rc);
    double rewrap_ms = (mono_seconds() - t0) * 1e3;

    /* 2. unthrottled re-encryption of the whole store */
    if ((rc = store_rotate_keys(big)) != 0)
        die("store_rotate_keys", rc);
    struct rk_run full = {.st = big, .mbps = 0};
    rk_main(&full);
    double reenc_mbs = (double)full.bytes / 1048576.0 / full.secs;

    /* 3. foreground during re-encryption, at 64 MB/s and unthrottled */
    double fr64[15], frmax[15];
    double base_sum = 0, r64_sum = 0, rmax_sum = 0;
    for (int r = 0; r < rounds; r++) {
        double base = foreground(big, threads, secs);
        double with[2];
        for (int k = 0; k < 2; k++) {
            if ((rc = store_rotate_keys(big)) != 0)
                die("store_rotate_keys", rc);
            struct rk_run run = {.st = big, .mbps = k == 0 ? 64 : 0};
            pthread_t th;
            pthread_create(&th, NULL, rk_main, &run);
            with[k] = foreground(big, threads, secs);
            run.stop = 1;
            pthread_join(th, NULL);
            if (run.done && k == 0)
                fprintf(stderr, "keys-bench: note: the throttled pass ended within %.1f s\n",
                        run.secs);
        }
        fr64[r] = with[0] / base;
        frmax[r] = with[1] / base;
        base_sum += base, r64_sum += with[0], rmax_sum += with[1];
        fprintf(stderr, "keys-bench: round %d: %.0f writes/s alone, %.0f at 64 MB/s, %.0f unthrottled\n",
                r + 1, base, with[0], with[1]);
    }
    /* finish the last rotation so the store ends on one version */
    struct rk_run tail = {.st = big, .mbps = 0};
    rk_main(&tail);

    /* 4. one layer vs two layers (customer key) */
    acct_open(&two, root, "two", 2);
    struct store *s1, *s2;
    if ((rc = store_create(one.env, "cmp", &s1)) != 0 || (rc = store_create(two.env, "cmp", &s2)))
        die("store_create", rc);
    double cmk[15], w1_sum = 0, w2_sum = 0;
    for (int r = 0; r < rounds; r++) {
        double w1 = foreground(s1, threads, secs);
        double w2 = foreground(s2, threads, secs);
        cmk[r] = w2 / w1;
        w1_sum += w1, w2_sum += w2;
        fprintf(stderr, "keys-bench: round %d: %.0f writes/s one layer, %.0f two layers\n", r + 1,
                w1, w2);
    }
    /* reads of the big store through both layers would need a two-layer copy;
     * the write path seals every page under both layers, which is the cost. */

    double m64 = median(fr64, rounds), mmax = median(frmax, rounds), mcmk = median(cmk, rounds);
    printf("\nkeys-bench: %.0f MB store, %d writer threads, %.0f s per measurement, %d rounds\n\n",
           mb, threads, secs, rounds);
    printf("| measurement                                   | result        | target    |\n");
    printf("|-----------------------------------------------|---------------|-----------|\n");
    printf("| KEK rewrap (%zu wrapped DEKs + MAC key, %4.0f MB) | %8.2f ms   | < 100 ms  |\n",
           nrewrap, mb, rewrap_ms);
    printf("| re-encryption, unthrottled                    | %8.0f MB/s | >= 300    |\n",
           reenc_mbs);
    printf("| writes/s, no re-encryption (mean)             | %8.0f      |           |\n",
           base_sum / rounds);
    printf("| writes/s during re-encryption at 64 MB/s      | %8.0f      |           |\n",
           r64_sum / rounds);
    printf("| writes/s during unthrottled re-encryption     | %8.0f      |           |\n",
           rmax_sum / rounds);
    printf("| foreground ratio at 64 MB/s (median)          | %8.2f      | >= 0.80   |\n", m64);
    printf("| foreground ratio unthrottled (median)         | %8.2f      |           |\n", mmax);
    printf("| writes/s one layer / two layers (mean)        | %5.0f / %5.0f |           |\n",
           w1_sum / rounds, w2_sum / rounds);
    printf("| two layers / one layer (median)               | %8.2f      | >= 0.95   |\n", mcmk);
    printf("\nRESULT kek_rewrap_ms=%.2f reencrypt_mbs=%.0f fg_ratio_64=%.2f fg_ratio_max=%.2f "
           "cmk_ratio=%.2f\n",
           rewrap_ms, reenc_mbs, m64, mmax, mcmk);

    if (store_close(s1) || store_close(s2) || store_close(big))
        die("store_close", AT_ESQLITE);
    acct_close(&one);
    acct_close(&two);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "keys-bench: could not remove %s\n", root);
    return 0;
}
