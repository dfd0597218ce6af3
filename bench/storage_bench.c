/*
 * storage_bench.c — storage-bench: atrest's encrypted store next to the same
 * code without encryption and next to SQLCipher (docs/bench-storage.md).
 *
 *   storage-bench [--n N] [--reads R] [--repeat K] [--dir D] [--keep] [--verbose]
 *
 * This file builds two programs:
 *   storage-bench        the store API over atrest_core (config "atrest")
 *   storage-bench-plain  the same source with ATREST_BENCH_PLAINTEXT=1, over
 *                        the library twin whose page encryption is compiled
 *                        out (config "plain")
 * and storage_bench_sqlcipher.c builds the third, storage-bench-sqlcipher.
 *
 * Run without --child, a program is the parent: it finds the three programs
 * next to its own executable (/proc/self/exe), and for each of K rounds runs,
 * for each configuration in turn (a, b, c, a, b, c, ...), three children:
 * insert into a fresh folder, cold reads, warm reads (bench_common.h).
 * Every phase is its own process, so "cold" starts with nothing in memory.
 * It parses each child's PHASE line, and prints the median ops/s per
 * configuration and phase, the ratios to plain, the VFS counters of the last
 * round (vfs_stats: pages sealed, opened, passed through by checkpoints),
 * and last the RESULT line.
 */
#include <sqlite3.h>

#include <limits.h>
#include <libgen.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "keys/embedded.h"
#include "storage/store.h"
#include "storage/vfs.h"

#define BENCH_STORE_NAME "bench"

#ifdef ATREST_BENCH_PLAINTEXT
#define BENCH_CONFIG_NAME "plain"
#else
#define BENCH_CONFIG_NAME "atrest"
#endif

/* ---- The store backend (a child's side) ---------------------------------- */

/* A config folder holds keys/ (the embedded provider's key folder) and data/
 * (the data folder): siblings, as the provider requires. */
struct store_backend {
    struct bench_backend base;
    struct key_provider *kp;
    struct store_env *env;
    struct store *st;
};

static int at_fail(const char *what, int err)
{
    fprintf(stderr, "storage-bench: %s: %s (%s)\n", what, at_strerror(err), at_error_detail());
    return 1;
}

static int sb_close(struct bench_backend *be)
{
    struct store_backend *sb = (struct store_backend *)be;
    int rc = 0, err;

    if (sb->st != NULL && (err = store_close(sb->st)) != 0)
        rc = at_fail("store_close", err);
    sb->st = NULL;
    if (sb->env != NULL)
        store_env_close(sb->env);
    sb->env = NULL;
    kp_destroy(sb->kp);
    sb->kp = NULL;
    return rc;
}

static int sb_open(struct bench_backend *be, const char *dir, int create, sqlite3 **db)
{
    struct store_backend *sb = (struct store_backend *)be;
    char keydir[PATH_MAX], datadir[PATH_MAX];
    int err;

    if (bench_path(keydir, dir, "keys") != 0 || bench_path(datadir, dir, "data") != 0)
        return 1;
    err = embedded_provider_open(keydir, datadir, create, &sb->kp);
    if (err != 0)
        return at_fail("embedded_provider_open", err);

    struct store_env_options opt = {
        .data_dir = datadir, .outer = sb->kp, .inner = NULL, .create = create, .rotate_at = 0};
    err = store_env_open(&opt, &sb->env);
    if (err != 0) {
        at_fail("store_env_open", err);
        goto fail;
    }
    err = create ? store_create(sb->env, BENCH_STORE_NAME, &sb->st)
                 : store_open(sb->env, BENCH_STORE_NAME, &sb->st);
    if (err != 0) {
        at_fail(create ? "store_create" : "store_open", err);
        goto fail;
    }
    *db = store_db(sb->st);
    return 0;
fail:
    sb_close(be);
    return 1;
}

static int sb_begin(struct bench_backend *be)
{
    int err = store_begin(((struct store_backend *)be)->st);
    return err == 0 ? 0 : at_fail("store_begin", err);
}

static int sb_commit(struct bench_backend *be)
{
    int err = store_commit(((struct store_backend *)be)->st);
    return err == 0 ? 0 : at_fail("store_commit", err);
}

/* The VFS's process-wide counters (all zero in the plain twin, which does
 * not use the VFS). */
static void sb_counters(struct bench_backend *be, struct bench_counters *out)
{
    struct vfs_stats vs;

    (void)be;
    vfs_stats_get(&vs);
    out->sealed = vs.pages_sealed;
    out->opened = vs.pages_opened;
    out->passthrough = vs.ckpt_passthrough;
}

/* ---- The parent ----------------------------------------------------------- */

enum { PH_INSERT, PH_COLD, PH_WARM, PH_PASS, PH_COUNT };
static const char *const phase_arg[] = {"insert", "cold", "warm"};
static const char *const phase_title[PH_COUNT] = {"insert/s", "cold read/s", "warm read/s",
                                                  "1st pass/s"};

#define MAX_REPEAT 99

struct config {
    const char *name;   /* "atrest", "plain", "sqlcipher" */
    const char *binary; /* file name next to ours */
    char path[PATH_MAX];
    int present;
    int failed;
    double ops[PH_COUNT][MAX_REPEAT]; /* ops/s per round */
    double cpu[PH_COUNT][MAX_REPEAT]; /* CPU us per operation per round */
    int runs[PH_COUNT];
    struct bench_counters vfs[PH_COUNT]; /* last run's, when reported */
    int have_vfs[PH_COUNT];
    char sqlite[32];
};

struct options {
    uint64_t n, reads, repeat;
    const char *dir;
    int keep, verbose;
};

static int rm_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "storage-bench: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rm_tree(const char *path)
{
    (void)nftw(path, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
}

/* The value of " key=" in a PHASE line, or NULL. */
static const char *field(const char *line, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = strchr(line, ' '); p != NULL; p = strchr(p + 1, ' '))
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '=')
            return p + 2 + klen;
    return NULL;
}

/* Run one child phase; on success record its ops/s. 0 or nonzero. */
static int run_child(struct config *c, int ph, const char *dir, const struct options *o)
{
    char n_arg[24], r_arg[24], out[4096];
    size_t used = 0;
    int fds[2], status;
    pid_t pid;

    snprintf(n_arg, sizeof n_arg, "%" PRIu64, o->n);
    snprintf(r_arg, sizeof r_arg, "%" PRIu64, o->reads);
    char *const argv[] = {
        c->path, "--child", (char *)phase_arg[ph], "--dir", (char *)dir, "--n", n_arg, "--reads",
        r_arg,   NULL};

    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "storage-bench: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "storage-bench: fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 1;
    }
    if (pid == 0) {
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        execv(c->path, argv);
        fprintf(stderr, "storage-bench: exec %s: %s\n", c->path, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t got = read(fds[0], out + used, sizeof out - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        used += (size_t)got;
        if (used == sizeof out - 1) /* keep draining; the PHASE line is short */
            used = 0;
    }
    out[used] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (o->verbose)
        fprintf(stderr, "  %s", out);

    const char *line = strstr(out, "PHASE ");
    const char *ops = line ? field(line, "ops") : NULL;
    const char *secs = line ? field(line, "secs") : NULL;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || ops == NULL || secs == NULL ||
        strtod(secs, NULL) <= 0) {
        fprintf(stderr, "storage-bench: %s %s failed (%s %d)\n", c->name, phase_arg[ph],
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 1;
    }
    const char *cpu = field(line, "cpu_secs");
    const char *pass = field(line, "pass_secs"), *pass_cpu = field(line, "pass_cpu_secs");
    double n_ops = strtod(ops, NULL);
    c->cpu[ph][c->runs[ph]] = cpu ? strtod(cpu, NULL) * 1e6 / n_ops : 0;
    c->ops[ph][c->runs[ph]++] = n_ops / strtod(secs, NULL);
    if (ph == PH_WARM && pass != NULL && pass_cpu != NULL && strtod(pass, NULL) > 0) {
        c->cpu[PH_PASS][c->runs[PH_PASS]] = strtod(pass_cpu, NULL) * 1e6 / n_ops;
        c->ops[PH_PASS][c->runs[PH_PASS]++] = n_ops / strtod(pass, NULL);
    }
    const char *sealed = field(line, "sealed"), *opened = field(line, "opened");
    const char *passed = field(line, "ckpt_passthrough");
    c->have_vfs[ph] = sealed != NULL && opened != NULL && passed != NULL;
    if (c->have_vfs[ph]) {
        c->vfs[ph].sealed = strtoull(sealed, NULL, 10);
        c->vfs[ph].opened = strtoull(opened, NULL, 10);
        c->vfs[ph].passthrough = strtoull(passed, NULL, 10);
    }
    const char *ver = field(line, "sqlite");
    if (ver != NULL)
        snprintf(c->sqlite, sizeof c->sqlite, "%.*s", (int)strcspn(ver, " \n"), ver);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values, or 0 when there are none. */
static double median_of(const double *values, int n)
{
    double v[MAX_REPEAT];

    if (n == 0)
        return 0;
    memcpy(v, values, sizeof v[0] * (size_t)n);
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median ops/s of a configuration's phase, or 0 when it has no runs. */
static double median(const struct config *c, int ph)
{
    return median_of(c->ops[ph], c->runs[ph]);
}

/* The latest run's ops/s, or 0. */
static double last_ops(const struct config *c, int ph)
{
    return c->runs[ph] > 0 ? c->ops[ph][c->runs[ph] - 1] : 0;
}

/* "0.85" or "n/a" into buf. */
static const char *ratio(char *buf, size_t n, double a, double b)
{
    if (a > 0 && b > 0)
        snprintf(buf, n, "%.2f", a / b);
    else
        snprintf(buf, n, "n/a");
    return buf;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--n N] [--reads R] [--repeat K] [--dir D] [--keep] [--verbose]\n"
            "  --n N       documents to insert (default 100000), %d per transaction\n"
            "  --reads R   random point reads per read phase (default 20000)\n"
            "  --repeat K  rounds, interleaved across configurations; medians reported\n"
            "              (default 3)\n"
            "  --dir D     scratch folder (default: a new one under $TMPDIR or /tmp,\n"
            "              removed afterwards)\n"
            "  --keep      keep the last round's databases\n"
            "  --verbose   show every child's PHASE line\n",
            argv0, BENCH_BATCH);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;

        if (strcmp(arg, "--n") == 0) {
            ok = bench_parse_u64(val, 1, 1ULL << 32, &o->n) == 0;
            i++;
        } else if (strcmp(arg, "--reads") == 0) {
            ok = bench_parse_u64(val, 1, 1ULL << 32, &o->reads) == 0;
            i++;
        } else if (strcmp(arg, "--repeat") == 0) {
            ok = bench_parse_u64(val, 1, MAX_REPEAT, &o->repeat) == 0;
            i++;
        } else if (strcmp(arg, "--dir") == 0) {
            ok = val != NULL;
            o->dir = val;
            i++;
        } else if (strcmp(arg, "--keep") == 0)
            o->keep = 1;
        else if (strcmp(arg, "--verbose") == 0)
            o->verbose = 1;
        else
            ok = 0;
        if (!ok) {
            usage(argv[0]);
            return 1;
        }
    }
    return 0;
}

static void print_results(struct config *cfg, int ncfg, const struct options *o)
{
    const struct config *plain = &cfg[1], *sqlcipher = &cfg[2];
    char r1[16], r2[16], r3[16];

    printf("\nstorage-bench: %" PRIu64 " documents of %d bytes, %d per transaction, "
           "%" PRIu64 " reads, median of %" PRIu64 " round(s)\n",
           o->n, BENCH_DOC_LEN, BENCH_BATCH, o->reads, o->repeat);
    printf("%-10s", "config");
    for (int ph = 0; ph < PH_COUNT; ph++)
        printf(" %12s %6s", phase_title[ph], "/plain");
    printf("  sqlite\n");
    for (int k = 0; k < ncfg; k++) {
        const struct config *c = &cfg[k];
        printf("%-10s", c->name);
        for (int ph = 0; ph < PH_COUNT; ph++) {
            double m = median(c, ph);
            if (m > 0)
                printf(" %12.0f %6s", m, ratio(r1, sizeof r1, m, median(plain, ph)));
            else
                printf(" %12s %6s", "n/a", "n/a");
        }
        printf("  %s%s\n", c->sqlite[0] ? c->sqlite : "-",
               c->present ? (c->failed ? " (failed)" : "") : " (not built)");
    }
    printf("1st pass = the warm child's untimed pass: OS cache warm, SQLite cache empty.\n");
    printf("CPU us per operation, median (ratio: us / plain's us; waits for I/O not "
           "included):\n");
    for (int k = 0; k < ncfg; k++) {
        if (cfg[k].runs[PH_INSERT] == 0)
            continue;
        printf("%-10s", cfg[k].name);
        for (int ph = 0; ph < PH_COUNT; ph++) {
            double us = median_of(cfg[k].cpu[ph], cfg[k].runs[ph]);
            printf(" %12.1f %6s", us,
                   ratio(r1, sizeof r1, us, median_of(plain->cpu[ph], plain->runs[ph])));
        }
        printf("\n");
    }
    for (int k = 0; k < ncfg; k++) {
        const struct config *c = &cfg[k];
        uint64_t any = 0;
        for (int ph = PH_INSERT; ph <= PH_WARM; ph++)
            if (c->have_vfs[ph])
                any |= c->vfs[ph].sealed | c->vfs[ph].opened | c->vfs[ph].passthrough;
        if (c->have_vfs[PH_INSERT] && !any)
            printf("VFS %s: no page crypto (all counters 0)\n", c->name);
        for (int ph = PH_INSERT; any && ph <= PH_WARM; ph++)
            if (c->have_vfs[ph])
                printf("VFS %s %-6s pages sealed %" PRIu64 ", opened %" PRIu64
                       ", checkpoint pass-through %" PRIu64 "\n",
                       c->name, phase_arg[ph], c->vfs[ph].sealed, c->vfs[ph].opened,
                       c->vfs[ph].passthrough);
    }
    printf("RESULT insert_vs_plain=%s read_cold_vs_plain=%s insert_vs_sqlcipher=%s\n",
           ratio(r1, sizeof r1, median(&cfg[0], PH_INSERT), median(plain, PH_INSERT)),
           ratio(r2, sizeof r2, median(&cfg[0], PH_COLD), median(plain, PH_COLD)),
           ratio(r3, sizeof r3, median(&cfg[0], PH_INSERT), median(sqlcipher, PH_INSERT)));
}

static int parent_main(int argc, char **argv)
{
    static struct config cfg[] = {
        {.name = "atrest", .binary = "storage-bench"},
        {.name = "plain", .binary = "storage-bench-plain"},
        {.name = "sqlcipher", .binary = "storage-bench-sqlcipher"},
    };
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    struct options o = {.n = 100000, .reads = 20000, .repeat = 3};
    char self[PATH_MAX], scratch[PATH_MAX], dir[PATH_MAX];
    int made_scratch = 0, rc = 1;
    ssize_t len;

    if (parse_options(argc, argv, &o) != 0)
        return 2;
    len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "storage-bench: /proc/self/exe: %s\n", strerror(errno));
        return 1;
    }
    self[len] = '\0';
    const char *bindir = dirname(self);
    for (int k = 0; k < ncfg; k++) {
        if (bench_path(cfg[k].path, bindir, cfg[k].binary) != 0)
            return 1;
        cfg[k].present = access(cfg[k].path, X_OK) == 0;
    }
    if (!cfg[0].present || !cfg[1].present) {
        fprintf(stderr, "storage-bench: need %s and %s (build target storage-bench-plain)\n",
                cfg[0].path, cfg[1].path);
        return 1;
    }
    if (!cfg[2].present)
        fprintf(stderr,
                "storage-bench: %s not built (libsqlcipher-dev missing?); "
                "skipping SQLCipher\n",
                cfg[2].path);

    if (o.dir != NULL) {
        if (mkdir(o.dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "storage-bench: mkdir %s: %s\n", o.dir, strerror(errno));
            return 1;
        }
        if (strlen(o.dir) >= sizeof scratch) {
            fprintf(stderr, "storage-bench: --dir too long\n");
            return 1;
        }
        strcpy(scratch, o.dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        if (bench_path(scratch, tmp && *tmp ? tmp : "/tmp", "atrest-bench-XXXXXX") != 0)
            return 1;
        if (mkdtemp(scratch) == NULL) {
            fprintf(stderr, "storage-bench: mkdtemp %s: %s\n", scratch, strerror(errno));
            return 1;
        }
        made_scratch = 1;
    }
    /* Never delete what we did not create: refuse existing config folders. */
    for (int k = 0; k < ncfg; k++) {
        if (bench_path(dir, scratch, cfg[k].name) != 0)
            goto out;
        if (access(dir, F_OK) == 0) {
            fprintf(stderr, "storage-bench: %s exists; remove it or pick another --dir\n", dir);
            goto out;
        }
    }
    fprintf(stderr, "storage-bench: scratch folder %s\n", scratch);

    double t_start = bench_now();
    for (uint64_t round = 0; round < o.repeat; round++) {
        for (int k = 0; k < ncfg; k++) {
            struct config *c = &cfg[k];
            if (!c->present || c->failed)
                continue;
            if (bench_path(dir, scratch, c->name) != 0)
                goto out;
            rm_tree(dir);
            if (mkdir(dir, 0700) != 0) {
                fprintf(stderr, "storage-bench: mkdir %s: %s\n", dir, strerror(errno));
                goto out;
            }
            for (int ph = PH_INSERT; ph <= PH_WARM && !c->failed; ph++)
                c->failed = run_child(c, ph, dir, &o) != 0;
            if (c->failed && k < 2)
                goto out; /* no ratio means anything without atrest and plain */
            fprintf(stderr,
                    "round %" PRIu64 "/%" PRIu64 " %-9s insert %8.0f/s  cold %8.0f/s  "
                    "warm %8.0f/s\n",
                    round + 1, o.repeat, c->name, last_ops(c, PH_INSERT), last_ops(c, PH_COLD),
                    last_ops(c, PH_WARM));
            if (!o.keep || round + 1 < o.repeat)
                rm_tree(dir);
        }
    }
    fprintf(stderr, "storage-bench: %.1f s in all\n", bench_now() - t_start);
    rc = 0;
out:
    if (made_scratch && !o.keep)
        rm_tree(scratch);
    else if (made_scratch)
        fprintf(stderr, "storage-bench: kept %s\n", scratch);
    if (rc == 0)
        print_results(cfg, ncfg, &o);
    return rc;
}

int main(int argc, char **argv)
{
    struct store_backend sb = {
        .base = {.name = BENCH_CONFIG_NAME,
                 .open = sb_open,
                 .begin = sb_begin,
                 .commit = sb_commit,
                 .close = sb_close,
                 .counters = sb_counters},
    };

    if (argc >= 2 && strcmp(argv[1], "--child") == 0)
        return bench_child_main(argc, argv, &sb.base);
    return parent_main(argc, argv);
}
