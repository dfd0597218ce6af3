/*
 * bench_common.h — the workload shared by the storage benchmark's programs:
 * the documents, the SQL, the three phases, and the one-line child protocol.
 *
 * Included by exactly one .c per program, after that program's sqlite3.h:
 *   storage_bench.c            libsqlite3 through atrest's store API
 *                              (storage-bench, and storage-bench-plain built
 *                              with ATREST_BENCH_PLAINTEXT=1)
 *   storage_bench_sqlcipher.c  Debian's SQLCipher (<sqlcipher/sqlite3.h>)
 * The two headers declare the same API, so every configuration runs the same
 * SQL through the same calls; only opening, transactions and closing go
 * through the program's backend (struct bench_backend).
 *
 * Child protocol. A program started as
 *   <program> --child insert|cold|warm --dir D --n N --reads R
 * works on the database in D and prints on stdout exactly one line
 *   PHASE <phase> config=<name> ops=<n> secs=<s> cpu_secs=<s> [key=value ...]
 * then exits 0; on failure it says why on stderr and exits 1.
 *   insert  create the database, N documents in transactions of BENCH_BATCH
 *   cold    drop the OS page cache for D's files (posix_fadvise DONTNEED,
 *           see drop_os_cache), open with a 2 MB SQLite cache, R point reads
 *   warm    open with a cache larger than the database, R point reads
 *           untimed (the pass, reported as pass_secs), then the same R reads
 *           BENCH_WARM_PASSES times, timed; the fastest pass counts
 *
 * Invariants:
 *   1. Document i has the same id and the same 1024-byte body in every
 *      configuration, and the read phases look up the same id sequence.
 *   2. Only the loop of statements is timed: process start, key loading,
 *      opening and the final checkpoint-and-close are reported apart
 *      (open_secs, close_secs) and never counted in ops/s.
 */
#ifndef ATREST_BENCH_COMMON_H
#define ATREST_BENCH_COMMON_H

#ifndef SQLITE_OK
#error "include the program's sqlite3.h before bench_common.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_DOC_LEN     1024 /* bytes of JSON per document */
#define BENCH_ID_LEN      36   /* a UUID-shaped id */
#define BENCH_BATCH       100  /* documents per transaction */
#define BENCH_COLD_CACHE  2000 /* KiB: PRAGMA cache_size=-2000 for the cold phase */
#define BENCH_WARM_PASSES 3    /* timed warm passes; the fastest counts */
#define BENCH_ID_SEED     0x61747265737431ULL
#define BENCH_READ_SEED   0x7265616473ULL

/* The SQL, identical in every configuration. */
#define BENCH_SQL_SCHEMA "CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT)"
#define BENCH_SQL_INSERT "INSERT INTO docs(id, body) VALUES (?1, ?2)"
#define BENCH_SQL_SELECT "SELECT body FROM docs WHERE id = ?1"

/* Page counts of an encryption layer (atrest's VFS: vfs_stats). */
struct bench_counters {
    uint64_t sealed;      /* page encryptions */
    uint64_t opened;      /* page decryptions */
    uint64_t passthrough; /* checkpoint pages copied without crypto */
};

/*
 * A backend opens one database and runs transactions on it. Each program
 * embeds this first in its own struct. Every method returns 0 or nonzero
 * after printing the reason to stderr.
 */
struct bench_backend {
    const char *name; /* "atrest", "plain", "sqlcipher" */

    /* Open (create set: create) the database kept in dir; *db stays owned
     * by the backend and usable for prepared statements until close. */
    int (*open)(struct bench_backend *be, const char *dir, int create, sqlite3 **db);
    int (*begin)(struct bench_backend *be);
    int (*commit)(struct bench_backend *be);
    /* Checkpoint and close everything open() opened. */
    int (*close)(struct bench_backend *be);
    /* The encryption layer's process-wide counters so far; NULL when the
     * backend has none to show. */
    void (*counters)(struct bench_backend *be, struct bench_counters *out);
};

struct bench_args {
    const char *phase;
    const char *dir;
    uint64_t n;
    uint64_t reads;
};

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds this process has used (user + system, all threads). */
static double bench_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall-clock and CPU seconds of one timed loop. */
struct bench_time {
    double secs;
    double cpu;
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* dir + "/" + name into buf[PATH_MAX]; nonzero (and a message) if too long. */
static int bench_path(char *buf, const char *dir, const char *name)
{
    int len = snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    if (len < 0 || len >= PATH_MAX) {
        fprintf(stderr, "storage-bench: path too long: %s/%s\n", dir, name);
        return 1;
    }
    return 0;
}

/* Parse a decimal count in [min, max]; 0 on success. */
static int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The id of document i: 36 characters shaped like a UUID, pseudo-random so
 * that the primary-key index is filled in random order as real ids would
 * be. Distinct for distinct i (splitmix64 is a bijection of its state). */
static void doc_id(uint64_t i, char out[BENCH_ID_LEN + 1])
{
    uint64_t s = BENCH_ID_SEED + i * 0x9e3779b97f4a7c15ULL;
    uint64_t a = splitmix64(&s);
    uint64_t b = splitmix64(&s);

    snprintf(out, BENCH_ID_LEN + 1,
             "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, a >> 32,
             (a >> 16) & 0xffff, a & 0xffff, b >> 48, b & UINT64_C(0xffffffffffff));
}

/* The body of document i: exactly BENCH_DOC_LEN bytes of JSON with the id,
 * a few typed fields and deterministic pseudo-random padding. */
static void doc_body(uint64_t i, const char *id, char out[BENCH_DOC_LEN + 1])
{
    static const char *const regions[] = {"eu-west", "eu-north", "us-east", "ap-south"};
    static const char *const states[] = {"new", "paid", "shipped", "returned"};
    static const char *const tags[] = {"gift", "bulk", "express", "fragile", "promo", "repeat"};
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t s = BENCH_ID_SEED ^ (i * 0xd1b54a32d192ed03ULL);
    uint64_t r1 = splitmix64(&s), r2 = splitmix64(&s);
    int len, pad;

    len = snprintf(out, BENCH_DOC_LEN + 1,
                   "{\"id\":\"%s\",\"type\":\"order\",\"customer\":\"cust-%05u\","
                   "\"region\":\"%s\",\"amount\":%u.%02u,\"qty\":%u,\"status\":\"%s\","
                   "\"created\":\"2024-%02u-%02uT%02u:%02u:%02uZ\",\"tags\":[\"%s\",\"%s\"],"
                   "\"pad\":\"",
                   id, (unsigned)(r1 % 100000), regions[(r1 >> 20) & 3],
                   (unsigned)((r1 >> 24) % 10000), (unsigned)((r1 >> 40) % 100),
                   (unsigned)(1 + (r1 >> 48) % 20), states[(r1 >> 56) & 3], (unsigned)(1 + r2 % 12),
                   (unsigned)(1 + (r2 >> 8) % 28), (unsigned)((r2 >> 16) % 24),
                   (unsigned)((r2 >> 24) % 60), (unsigned)((r2 >> 32) % 60), tags[(r2 >> 40) % 6],
                   tags[(r2 >> 48) % 6]);
    pad = BENCH_DOC_LEN - len - 2; /* room for the closing "} */
    for (int k = 0; k < pad; k += 8) {
        uint64_t r = splitmix64(&s);
        for (int j = 0; j < 8 && k + j < pad; j++, r >>= 8)
            out[len + k + j] = alphabet[(r & 0xff) % (sizeof alphabet - 1)];
    }
    memcpy(out + len + pad, "\"}", 3);
}

/* Bytes in regular files under a folder (nftw has no user pointer). */
static uint64_t tree_bytes_total;

static int tree_bytes_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F)
        tree_bytes_total += (uint64_t)st->st_size;
    return 0;
}

static uint64_t tree_bytes(const char *dir)
{
    tree_bytes_total = 0;
    if (nftw(dir, tree_bytes_visit, 16, FTW_PHYS) != 0)
        return 0;
    return tree_bytes_total;
}

/*
 * Drop what the kernel caches of every file under the folder, without root:
 * write back anything dirty (fdatasync), then posix_fadvise(DONTNEED). That
 * evicts the clean pages of these files from the OS page cache (not the
 * disk's or the hypervisor's caches). Then count, with mincore, how much is
 * still resident, to report whether the drop worked.
 */
static uint64_t drop_resident_bytes;

static int drop_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    int fd;

    (void)ftw;
    if (type != FTW_F || st->st_size == 0)
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    (void)fdatasync(fd);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void *map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
        size_t pages = ((size_t)st->st_size + (size_t)pagesz - 1) / (size_t)pagesz;
        unsigned char *vec = malloc(pages);
        if (vec != NULL && mincore(map, (size_t)st->st_size, vec) == 0) {
            for (size_t k = 0; k < pages; k++)
                if (vec[k] & 1)
                    drop_resident_bytes += (uint64_t)pagesz;
        }
        free(vec);
        munmap(map, (size_t)st->st_size);
    }
    close(fd);
    return 0;
}

static uint64_t drop_os_cache(const char *dir)
{
    drop_resident_bytes = 0;
    (void)nftw(dir, drop_visit, 16, FTW_PHYS);
    return drop_resident_bytes;
}

static int sql_fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "storage-bench: %s: %s\n", what, sqlite3_errmsg(db));
    return 1;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(db, sql);
    return 0;
}

/* The timed insert loop: documents 0..n-1, BENCH_BATCH per transaction. */
static int insert_docs(struct bench_backend *be, sqlite3 *db, uint64_t n)
{
    char id[BENCH_ID_LEN + 1], body[BENCH_DOC_LEN + 1];
    sqlite3_stmt *ins = NULL;
    int rc = 1;

    if (sqlite3_prepare_v2(db, BENCH_SQL_INSERT, -1, &ins, NULL) != SQLITE_OK)
        return sql_fail(db, "prepare insert");
    for (uint64_t i = 0; i < n; i++) {
        if (i % BENCH_BATCH == 0 && be->begin(be) != 0)
            goto out;
        doc_id(i, id);
        doc_body(i, id, body);
        sqlite3_bind_text(ins, 1, id, BENCH_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, body, BENCH_DOC_LEN, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            sql_fail(db, "insert");
            goto out;
        }
        sqlite3_reset(ins);
        if ((i % BENCH_BATCH == BENCH_BATCH - 1 || i == n - 1) && be->commit(be) != 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(ins);
    return rc;
}

/* Point reads of `reads` pseudo-random documents (the same sequence in
 * every configuration and phase); each body is checked. */
static int read_docs(sqlite3 *db, uint64_t n, uint64_t reads)
{
    char id[BENCH_ID_LEN + 1];
    sqlite3_stmt *sel = NULL;
    uint64_t s = BENCH_READ_SEED;
    int rc = 1;

    if (sqlite3_prepare_v2(db, BENCH_SQL_SELECT, -1, &sel, NULL) != SQLITE_OK)
        return sql_fail(db, "prepare select");
    for (uint64_t k = 0; k < reads; k++) {
        doc_id(splitmix64(&s) % n, id);
        sqlite3_bind_text(sel, 1, id, BENCH_ID_LEN, SQLITE_STATIC);
        if (sqlite3_step(sel) != SQLITE_ROW) {
            sql_fail(db, "select (document missing?)");
            goto out;
        }
        const unsigned char *body = sqlite3_column_text(sel, 0);
        if (sqlite3_column_bytes(sel, 0) != BENCH_DOC_LEN || body == NULL ||
            memcmp(body + 7, id, BENCH_ID_LEN) != 0) {
            fprintf(stderr, "storage-bench: document %s came back wrong\n", id);
            goto out;
        }
        sqlite3_reset(sel);
    }
    rc = 0;
out:
    sqlite3_finalize(sel);
    return rc;
}

/* " sealed=.. opened=.. ckpt_passthrough=.." since *before, when counted. */
static void counters_since(struct bench_backend *be, const struct bench_counters *before, char *buf,
                           size_t n)
{
    struct bench_counters now;

    if (be->counters == NULL || n == 0)
        return;
    be->counters(be, &now);
    snprintf(buf, n, " sealed=%" PRIu64 " opened=%" PRIu64 " ckpt_passthrough=%" PRIu64,
             now.sealed - before->sealed, now.opened - before->opened,
             now.passthrough - before->passthrough);
}

static int phase_insert(struct bench_backend *be, const struct bench_args *a, char *extra,
                        size_t extra_len, struct bench_time *t)
{
    struct bench_counters c0 = {0};
    sqlite3 *db;
    double t0, c0_cpu, t_open, t_close;
    int rc, len;

    if (be->counters != NULL)
        be->counters(be, &c0);
    t0 = bench_now();
    if (be->open(be, a->dir, 1, &db) != 0)
        return 1;
    t_open = bench_now() - t0;
    rc = exec_sql(db, BENCH_SQL_SCHEMA);
    if (rc == 0) {
        t0 = bench_now();
        c0_cpu = bench_cpu();
        rc = insert_docs(be, db, a->n);
        t->secs = bench_now() - t0;
        t->cpu = bench_cpu() - c0_cpu;
    }
    t0 = bench_now();
    if (be->close(be) != 0)
        rc = 1;
    t_close = bench_now() - t0;
    if (rc != 0)
        return rc;
    len = snprintf(extra, extra_len, " open_secs=%.4f close_secs=%.4f disk_bytes=%" PRIu64, t_open,
                   t_close, tree_bytes(a->dir));
    if (len > 0 && (size_t)len < extra_len)
        counters_since(be, &c0, extra + len, extra_len - (size_t)len);
    return 0;
}

static int timed_reads(sqlite3 *db, const struct bench_args *a, struct bench_time *t)
{
    double t0 = bench_now(), c0 = bench_cpu();
    int rc = read_docs(db, a->n, a->reads);

    t->secs = bench_now() - t0;
    t->cpu = bench_cpu() - c0;
    return rc;
}

/* Cold: drop the OS cache, open with a 2 MB SQLite cache, time R reads.
 * Warm: open with a cache larger than the database, one untimed pass of the
 * R reads (reported as pass_secs: OS cache warm, SQLite cache empty), then
 * BENCH_WARM_PASSES timed passes of the same reads; the fastest counts. */
static int phase_read(struct bench_backend *be, const struct bench_args *a, int cold, char *extra,
                      size_t extra_len, struct bench_time *t)
{
    struct bench_counters c0 = {0};
    char pragma[64];
    sqlite3 *db;
    uint64_t resident = 0, size_kib = tree_bytes(a->dir) / 1024;
    struct bench_time pass1 = {0, 0}, this;
    double t_open;
    int rc, len;

    if (cold)
        resident = drop_os_cache(a->dir);
    if (be->counters != NULL)
        be->counters(be, &c0);
    t_open = bench_now();
    if (be->open(be, a->dir, 0, &db) != 0)
        return 1;
    t_open = bench_now() - t_open;
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%" PRIu64,
             cold ? (uint64_t)BENCH_COLD_CACHE : size_kib + size_kib / 4 + 16384);
    rc = exec_sql(db, pragma);
    if (rc == 0 && !cold)
        rc = timed_reads(db, a, &pass1);
    for (int pass = 0; rc == 0 && pass < (cold ? 1 : BENCH_WARM_PASSES); pass++) {
        rc = timed_reads(db, a, &this);
        if (pass == 0 || this.secs < t->secs)
            *t = this;
    }
    if (be->close(be) != 0)
        rc = 1;
    if (rc != 0)
        return rc;
    if (cold)
        len = snprintf(extra, extra_len, " open_secs=%.4f resident_after_drop=%" PRIu64, t_open,
                       resident);
    else
        len = snprintf(extra, extra_len, " open_secs=%.4f pass_secs=%.6f pass_cpu_secs=%.6f",
                       t_open, pass1.secs, pass1.cpu);
    if (len > 0 && (size_t)len < extra_len)
        counters_since(be, &c0, extra + len, extra_len - (size_t)len);
    return 0;
}

/* main() of a child: parse the protocol's arguments, run one phase, print
 * its PHASE line. Returns the exit status. */
static int bench_child_main(int argc, char **argv, struct bench_backend *be)
{
    struct bench_args a = {0};
    char extra[512] = "";
    struct bench_time t = {0, 0};
    uint64_t ops;
    int rc;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--child") == 0)
            a.phase = argv[i + 1];
        else if (strcmp(argv[i], "--dir") == 0)
            a.dir = argv[i + 1];
        else if (strcmp(argv[i], "--n") == 0 &&
                 bench_parse_u64(argv[i + 1], 1, 1ULL << 40, &a.n) == 0)
            continue;
        else if (strcmp(argv[i], "--reads") == 0 &&
                 bench_parse_u64(argv[i + 1], 1, 1ULL << 40, &a.reads) == 0)
            continue;
        else {
            fprintf(stderr, "%s: bad child argument %s\n", argv[0], argv[i]);
            return 2;
        }
    }
    if (a.phase == NULL || a.dir == NULL || a.n == 0 || a.reads == 0) {
        fprintf(stderr, "%s: --child needs --dir, --n and --reads\n", argv[0]);
        return 2;
    }
    if (strcmp(a.phase, "insert") == 0) {
        rc = phase_insert(be, &a, extra, sizeof extra, &t);
        ops = a.n;
    } else if (strcmp(a.phase, "cold") == 0 || strcmp(a.phase, "warm") == 0) {
        rc = phase_read(be, &a, a.phase[0] == 'c', extra, sizeof extra, &t);
        ops = a.reads;
    } else {
        fprintf(stderr, "%s: unknown phase %s\n", argv[0], a.phase);
        return 2;
    }
    if (rc != 0)
        return 1;
    printf("PHASE %s config=%s ops=%" PRIu64 " secs=%.6f cpu_secs=%.6f sqlite=%s%s\n", a.phase,
           be->name, ops, t.secs, t.cpu, sqlite3_libversion(), extra);
    return fflush(stdout) == 0 ? 0 : 1;
}

#endif
