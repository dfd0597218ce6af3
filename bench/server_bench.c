/*
 * server_bench.c — server-bench: closed-loop keep-alive HTTPS load against
 * atrestd, the same server on the plain-SQLite benchmark twin, and
 * optionally the npm peer @vercel/cosmosdb-server (docs/bench-server.md).
 *
 *   server-bench [--seconds S] [--slices K] [--warmup S] [--docs N] [--rounds R]
 *                [--mode epoll|threads] [--threads T] [--conns C]
 *                [--peer] [--only atrest|plain|peer] [--server PATH]
 *                [--plain PATH] [--peer-dir DIR] [--server-arg ARG]...
 *                [--tmp DIR] [--keep] [--verbose]
 *   server-bench --target HOST:PORT [--insecure | --ca PEM] [...]
 *
 * Each round starts every server (atrest, plain[, peer]) on a free port with
 * fresh temporary folders, waits until GET / answers, creates database
 * "bench" and container "docs" (partition key /pk) and preloads N documents
 * in each (not measured). Then, for each scenario
 *   read    GET  .../docs/{id} of a random preloaded document
 *   create  POST .../docs of a new document
 *   upsert  POST .../docs + x-ms-documentdb-is-upsert of a random preloaded id
 * the servers take turns: S seconds are cut into K slices, and slice k runs
 * on every server in turn, starting with server k % n, each on fresh
 * connections after its own warm-up (run_scenarios), so a change in the
 * machine's load hits every server alike. Last the servers get SIGTERM.
 * With --target it skips the servers and drives HOST:PORT (for testing the
 * client against any TLS server; --pid names the server process whose CPU
 * time to report, --no-setup skips creating the container and preloading).
 *
 * The load engine, signing, the preload and the servers' start and stop are
 * in benchlib.c (shared with query-bench); this file holds the documents,
 * the three scenarios' requests and the turns, table and RESULT line.
 *
 * The load: C connections (default 32), each its own TLS session (OpenSSL,
 * TLS 1.2+), kept alive, one request in flight per connection (closed loop).
 * --mode epoll (default): T threads (default 2), each driving C/T
 * non-blocking connections with edge-triggered epoll. --mode threads: one
 * blocking thread per connection. Every request is signed with the master
 * key as the SDKs sign it (COSMOS-REST.md; checked against its vectors at
 * start). Certificate verification is ON for atrestd (its self-signed
 * certificate from <key-dir>/tls/server.crt as the only CA, IP 127.0.0.1
 * checked) and OFF for the peer (its bundled certificate is not for
 * 127.0.0.1).
 *
 * Invariants:
 *   1. Document i (0 <= i < N) has id "doc-%08d" and partition key
 *      "p<i % 1000>", and every document body is exactly BENCH_DOC_LEN bytes
 *      of JSON, in every configuration.
 *   2. Only requests started after a slice's warm-up count; ops/s divides
 *      them by the sum over slices of the time from the end of the warm-up
 *      to the last completion.
 *   3. Any non-2xx answer (and a read with a body shorter than a document)
 *      is an error; the first error's status and body are printed.
 *
 * Output: a table (scenario x config: ops/s, p50, p99, errors, CPU per op of
 * server and load generator), ratios atrest/plain, and last the line
 *   RESULT read_ops=<a> create_ops=<a> read_vs_plain=<a/b> create_vs_plain=<a/b>
 * (ops/s: medians over rounds; ratios: medians of the per-round ratios).
 */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"

#define BENCH_DOC_LEN     1024 /* bytes of JSON per document */
#define BENCH_PK_COUNT    1000 /* distinct partition key values */
#define BENCH_BATCH_OPS   100  /* documents per preload batch request */
#define BENCH_DB          "bench"
#define BENCH_COLL        "docs"
#define BENCH_LINK        "dbs/" BENCH_DB "/colls/" BENCH_COLL
#define BENCH_MAX_CONFIGS 3
#define BENCH_MAX_ROUNDS  15

#ifndef ATREST_BENCH_PEER_DIR
#define ATREST_BENCH_PEER_DIR "bench/peer"
#endif

/* ---- Options ------------------------------------------------------------- */

struct options {
    double seconds, warmup;
    int docs, rounds, conns, threads, slices;
    int blocking; /* --mode threads */
    int peer, keep;
    const char *only;
    const char *server, *plain, *peer_dir, *tmp;
    const char *target; /* HOST:PORT: no servers started */
    const char *ca;
    int insecure;
    const char *key_b64;
    const char *server_args[8]; /* --server-arg: extra atrestd arguments */
    int nserver_args;
};

static struct options opt = {
    .seconds = 10,
    .warmup = 0.5,
    .docs = 100000,
    .rounds = 1,
    .slices = 5,
    .conns = 32,
    .threads = 2,
    .tmp = "/tmp",
    .key_b64 = BENCH_EMULATOR_KEY,
};

/* ---- Documents ----------------------------------------------------------- */

static char filler[BENCH_DOC_LEN];

static void filler_init(void)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof filler; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        filler[i] = al[x % (sizeof al - 1)];
    }
}

/* Write document {id, pk, n, body} of exactly BENCH_DOC_LEN bytes to out
 * (no terminating NUL needed; returns BENCH_DOC_LEN). */
static int doc_write(char *out, const char *id, int pk, uint64_t n)
{
    int h = sprintf(out, "{\"id\":\"%s\",\"pk\":\"p%d\",\"n\":%" PRIu64 ",\"body\":\"", id, pk, n);
    int pad = BENCH_DOC_LEN - h - 2;
    memcpy(out + h, filler, (size_t)pad);
    memcpy(out + h + pad, "\"}", 2);
    return BENCH_DOC_LEN;
}

static void preload_id(long i, char *id)
{
    sprintf(id, "doc-%08ld", i);
}

/* Preloaded document i (bench_preload's write_doc). */
static int preload_doc(char *out, long i, void *arg)
{
    (void)arg;
    char id[32];
    preload_id(i, id);
    return doc_write(out, id, (int)(i % BENCH_PK_COUNT), (uint64_t)i);
}

/* ---- Scenarios ------------------------------------------------------------ */

enum scenario { SC_READ, SC_CREATE, SC_UPSERT };
static const char *const sc_name[] = {"read", "create", "upsert"};
#define SC_MEASURED 3

/* read: GET a random preloaded document. */
static int build_read(struct bench_conn *c)
{
    char id[64], link[160];
    long i = (long)(bench_rng_next(&c->w->rng) % (uint64_t)opt.docs);
    preload_id(i, id);
    snprintf(link, sizeof link, BENCH_LINK "/docs/%s", id);
    bench_wreserve(c, 1024);
    size_t at = (size_t)sprintf(c->wbuf, "GET /%s HTTP/1.1\r\n", link);
    at = bench_put_headers(c, at, "get", "docs", link);
    at += (size_t)sprintf(c->wbuf + at, "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n\r\n",
                          i % BENCH_PK_COUNT);
    c->wlen = at;
    return 0;
}

static int finish_read(struct bench_conn *c, const char *body, size_t blen)
{
    if (blen < BENCH_DOC_LEN) {
        bench_conn_error(c, "read: body shorter than a document", body, blen);
        return BENCH_FAIL;
    }
    return BENCH_DONE;
}

/* create: POST a new document; upsert: POST + is-upsert of a random
 * preloaded id (a replace). */
static int build_write(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    int upsert = c->run->sc->arg != NULL;
    char id[64];
    int pk;
    if (!upsert) {
        uint64_t s = w->seq++;
        snprintf(id, sizeof id, "new-%d-%d-%" PRIu64, c->run->run_id, w->id, s);
        pk = (int)(s % BENCH_PK_COUNT);
    } else {
        long i = (long)(bench_rng_next(&w->rng) % (uint64_t)opt.docs);
        preload_id(i, id);
        pk = (int)(i % BENCH_PK_COUNT);
    }
    bench_wreserve(c, 1024 + BENCH_DOC_LEN);
    size_t at = (size_t)sprintf(c->wbuf, "POST /" BENCH_LINK "/docs HTTP/1.1\r\n");
    at = bench_put_headers(c, at, "post", "docs", BENCH_LINK);
    at += (size_t)sprintf(c->wbuf + at,
                          "x-ms-documentdb-partitionkey: [\"p%d\"]\r\n"
                          "%s"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n",
                          pk, upsert ? "x-ms-documentdb-is-upsert: true\r\n" : "", BENCH_DOC_LEN);
    at += (size_t)doc_write(c->wbuf + at, id, pk, bench_rng_next(&w->rng) >> 20);
    c->wlen = at;
    return 0;
}

static const struct bench_scenario scenarios[SC_MEASURED] = {
    [SC_READ] = {.name = "read", .build = build_read, .finish = finish_read},
    [SC_CREATE] = {.name = "create", .build = build_write},
    [SC_UPSERT] = {.name = "upsert", .build = build_write, .arg = (void *)"upsert"},
};

static struct bench_load load_cfg(void)
{
    return (struct bench_load){opt.conns, opt.threads, opt.blocking};
}

/* ---- Servers ---------------------------------------------------------------- */

enum config { CFG_ATREST, CFG_PLAIN, CFG_PEER };
static const char *const cfg_name[] = {"atrest", "plain", "peer"};

static void server_start(enum config cfg, struct bench_server *sp)
{
    bench_server_prepare(sp, opt.tmp, cfg_name[cfg]);
    char exe[PATH_MAX + 64], script[PATH_MAX + 64];
    const char *argv[24];
    if (cfg == CFG_PEER) {
        snprintf(script, sizeof script, "%s/start.mjs", opt.peer_dir);
        argv[0] = "node";
        argv[1] = script;
        argv[2] = sp->port_s;
        argv[3] = NULL;
    } else {
        const char *given = cfg == CFG_ATREST ? opt.server : opt.plain;
        if (given)
            snprintf(exe, sizeof exe, "%s", given);
        else
            snprintf(exe, sizeof exe, "%s/%s", bench_self_dir(),
                     cfg == CFG_ATREST ? "atrestd" : "atrestd-plain-bench");
        bench_atrestd_argv(sp, exe, opt.key_b64, opt.server_args, opt.nserver_args, argv);
    }
    bench_server_launch(sp, argv, cfg != CFG_PEER);
}

/* ---- The parent ----------------------------------------------------------- */

static struct bench_result results[BENCH_MAX_ROUNDS][BENCH_MAX_CONFIGS][SC_MEASURED];
static int have[BENCH_MAX_CONFIGS];

static void setup_container(const struct bench_target *t)
{
    bench_create_database(t, BENCH_DB);
    bench_create_container(t, BENCH_DB,
                           "{\"id\":\"" BENCH_COLL "\",\"partitionKey\":{\"paths\":[\"/pk\"],"
                           "\"kind\":\"Hash\"}}");
}

static void preload(const struct bench_target *t, const char *name)
{
    struct bench_load ld = load_cfg();
    struct bench_preload p = {
        .link = BENCH_LINK,
        .docs = opt.docs,
        .pk_count = BENCH_PK_COUNT,
        .batch_ops = BENCH_BATCH_OPS,
        .doc_max = BENCH_DOC_LEN,
        .write_doc = preload_doc,
    };
    bench_preload(t, &ld, &p, name);
}

/* A server under test during one round. */
struct target {
    enum config cfg;
    struct bench_target t;
};

/*
 * Run the three scenarios of one round against n servers. Each scenario's
 * --seconds is cut into --slices slices; the servers take turns slice by
 * slice (the first server of slice k is tgt[k % n]), so a change in the
 * machine's load hits every server alike. Each slice opens fresh connections
 * and has its own warm-up.
 */
static void run_scenarios(struct target *tgt, int n, int round)
{
    double slice = opt.seconds / opt.slices;
    struct bench_load ld = load_cfg();
    for (int sc = 0; sc < SC_MEASURED; sc++) {
        for (int k = 0; k < opt.slices; k++)
            for (int j = 0; j < n; j++) {
                struct target *t = &tgt[(k + j) % n];
                struct bench_result *res = &results[round][t->cfg][sc];
                if (bench_run_load(&t->t, &scenarios[sc], &ld, slice, opt.warmup, res))
                    bench_die("%s: %s: cannot connect", cfg_name[t->cfg], sc_name[sc]);
            }
        for (int j = 0; j < n; j++) {
            struct bench_result *res = &results[round][tgt[j].cfg][sc];
            fprintf(stderr,
                    "server-bench: round %d %-6s %-6s %9.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  "
                    "errors %ld%s\n",
                    round + 1, cfg_name[tgt[j].cfg], sc_name[sc], res->ops, res->p50, res->p99,
                    res->errors, res->reconnects ? "  (reconnects)" : "");
            if (res->errors)
                fprintf(stderr, "server-bench:   first error (HTTP %d): %s\n", res->first_status,
                        res->first_err);
        }
    }
    for (int j = 0; j < n; j++)
        have[tgt[j].cfg] = 1;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over rounds of one field of results[][cfg][sc]. */
static double median(enum config cfg, int sc, size_t off)
{
    double v[BENCH_MAX_ROUNDS];
    for (int r = 0; r < opt.rounds; r++)
        v[r] = *(const double *)((const char *)&results[r][cfg][sc] + off);
    qsort(v, (size_t)opt.rounds, sizeof *v, cmp_dbl);
    return opt.rounds % 2 ? v[opt.rounds / 2] : (v[opt.rounds / 2 - 1] + v[opt.rounds / 2]) / 2;
}

/* The median over rounds of the per-round ratio ops(cfg) / ops(plain). */
static double median_ratio(enum config cfg, int sc)
{
    double v[BENCH_MAX_ROUNDS];
    for (int r = 0; r < opt.rounds; r++) {
        double b = results[r][CFG_PLAIN][sc].ops;
        v[r] = b > 0 ? results[r][cfg][sc].ops / b : 0;
    }
    qsort(v, (size_t)opt.rounds, sizeof *v, cmp_dbl);
    return opt.rounds % 2 ? v[opt.rounds / 2] : (v[opt.rounds / 2 - 1] + v[opt.rounds / 2]) / 2;
}

static long total_errors(enum config cfg, int sc)
{
    long n = 0;
    for (int r = 0; r < opt.rounds; r++)
        n += results[r][cfg][sc].errors;
    return n;
}

static double load_start;

static void report(void)
{
    printf("\nserver-bench: %d connections (%s), %.0f s per scenario and server in %d slices "
           "(each after %.1f s warm-up, servers taking turns), %d documents of %d bytes, "
           "%d round(s), medians over rounds\n",
           opt.conns, opt.blocking ? "one blocking thread each" : "non-blocking, epoll",
           opt.seconds, opt.slices, opt.warmup, opt.docs, BENCH_DOC_LEN, opt.rounds);
    printf("load average (1 min) at start %.2f, at end %.2f\n", load_start, bench_loadavg());
    printf("%-8s %-7s %10s %8s %8s %7s %12s %12s %8s\n", "scenario", "config", "ops/s", "p50 ms",
           "p99 ms", "errors", "srv us/op", "cli us/op", "vs plain");
    for (int sc = 0; sc < SC_MEASURED; sc++)
        for (int cfg = 0; cfg < BENCH_MAX_CONFIGS; cfg++) {
            if (!have[cfg])
                continue;
            double ops = median(cfg, sc, offsetof(struct bench_result, ops));
            char ratio[16] = "-";
            if (have[CFG_PLAIN] && cfg != CFG_PLAIN) {
                snprintf(ratio, sizeof ratio, "%.3f", median_ratio((enum config)cfg, sc));
            }
            printf("%-8s %-7s %10.0f %8.2f %8.2f %7ld %12.1f %12.1f %8s\n", sc_name[sc],
                   cfg_name[cfg], ops, median(cfg, sc, offsetof(struct bench_result, p50)),
                   median(cfg, sc, offsetof(struct bench_result, p99)), total_errors(cfg, sc),
                   median(cfg, sc, offsetof(struct bench_result, srv_cpu_us)),
                   median(cfg, sc, offsetof(struct bench_result, cli_cpu_us)), ratio);
        }
    if (opt.rounds > 1) {
        printf("\nper round ops/s (read / create / upsert):\n");
        for (int cfg = 0; cfg < BENCH_MAX_CONFIGS; cfg++) {
            if (!have[cfg])
                continue;
            printf("  %-7s", cfg_name[cfg]);
            for (int r = 0; r < opt.rounds; r++)
                printf("  %.0f/%.0f/%.0f", results[r][cfg][0].ops, results[r][cfg][1].ops,
                       results[r][cfg][2].ops);
            printf("\n");
        }
    }
    double ra =
        have[CFG_ATREST] ? median(CFG_ATREST, SC_READ, offsetof(struct bench_result, ops)) : 0;
    double ca =
        have[CFG_ATREST] ? median(CFG_ATREST, SC_CREATE, offsetof(struct bench_result, ops)) : 0;
    int both = have[CFG_ATREST] && have[CFG_PLAIN];
    double rr = both ? median_ratio(CFG_ATREST, SC_READ) : 0;
    double cr = both ? median_ratio(CFG_ATREST, SC_CREATE) : 0;
    printf("RESULT read_ops=%.0f create_ops=%.0f read_vs_plain=%.3f create_vs_plain=%.3f\n", ra, ca,
           rr, cr);
}

static void usage(void)
{
    fprintf(stderr, "usage: server-bench [--seconds S] [--warmup S] [--docs N] [--rounds R]\n"
                    "                    [--mode epoll|threads] [--threads T] [--conns C]\n"
                    "                    [--peer] [--only atrest|plain|peer] [--server PATH]\n"
                    "                    [--plain PATH] [--peer-dir DIR] [--tmp DIR] [--keep]\n"
                    "                    [--master-key B64] [--server-arg ARG]... [--verbose]\n"
                    "       server-bench --target HOST:PORT [--insecure | --ca PEM] [--no-setup]\n"
                    "                    [--pid SERVER_PID] ...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bench_prog = "server-bench";
    int no_setup = 0;
    pid_t target_pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--seconds"))
            opt.seconds = atof(v);
        else if (ARG("--warmup"))
            opt.warmup = atof(v);
        else if (ARG("--docs"))
            opt.docs = atoi(v);
        else if (ARG("--slices"))
            opt.slices = atoi(v);
        else if (ARG("--rounds"))
            opt.rounds = atoi(v);
        else if (ARG("--conns"))
            opt.conns = atoi(v);
        else if (ARG("--threads"))
            opt.threads = atoi(v);
        else if (ARG("--mode")) {
            if (strcmp(v, "threads") == 0)
                opt.blocking = 1;
            else if (strcmp(v, "epoll") != 0)
                usage();
        } else if (ARG("--only"))
            opt.only = v;
        else if (ARG("--server"))
            opt.server = v;
        else if (ARG("--plain"))
            opt.plain = v;
        else if (ARG("--peer-dir"))
            opt.peer_dir = v;
        else if (ARG("--tmp"))
            opt.tmp = v;
        else if (ARG("--target"))
            opt.target = v;
        else if (ARG("--pid"))
            target_pid = (pid_t)atoi(v);
        else if (ARG("--ca"))
            opt.ca = v;
        else if (ARG("--server-arg")) {
            if (opt.nserver_args == 8)
                usage();
            opt.server_args[opt.nserver_args++] = v;
        } else if (ARG("--master-key"))
            opt.key_b64 = v;
        else if (strcmp(a, "--insecure") == 0)
            opt.insecure = 1;
        else if (strcmp(a, "--no-setup") == 0)
            no_setup = 1;
        else if (strcmp(a, "--peer") == 0)
            opt.peer = 1;
        else if (strcmp(a, "--keep") == 0)
            opt.keep = 1;
        else if (strcmp(a, "--verbose") == 0)
            bench_verbose = 1;
        else
            usage();
#undef ARG
    }
    if (opt.seconds <= 0 || opt.warmup < 0 || opt.docs <= 0 || opt.conns <= 0 || opt.threads <= 0 ||
        opt.slices <= 0 || opt.rounds <= 0 || opt.rounds > BENCH_MAX_ROUNDS)
        usage();
    signal(SIGPIPE, SIG_IGN);
    load_start = bench_loadavg();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!opt.peer_dir)
        opt.peer_dir = ATREST_BENCH_PEER_DIR;
    filler_init();
    bench_sign_selftest();
    bench_key_init(opt.key_b64);

    if (opt.target) {
        char host[64];
        int port;
        if (sscanf(opt.target, "%63[^:]:%d", host, &port) != 2)
            usage();
        SSL_CTX *ctx = bench_ctx_new(opt.insecure ? NULL : opt.ca);
        if (!opt.insecure && !opt.ca)
            bench_die("--target needs --ca PEM or --insecure");
        struct target t = {CFG_ATREST, {host, port, ctx, target_pid}};
        if (!no_setup) {
            setup_container(&t.t);
            preload(&t.t, "target");
        }
        run_scenarios(&t, 1, 0);
        opt.rounds = 1;
        report();
        SSL_CTX_free(ctx);
        return 0;
    }

    SSL_CTX *insecure = bench_ctx_new(NULL);
    int ncfg = opt.peer ? 3 : 2;
    for (int round = 0; round < opt.rounds; round++) {
        /* Start every server of the round, each with fresh folders and its
         * preload; then they take turns (run_scenarios); then stop them. */
        struct bench_server sp[BENCH_MAX_CONFIGS];
        struct target tgt[BENCH_MAX_CONFIGS];
        int n = 0;
        for (int cfg = 0; cfg < ncfg; cfg++) {
            if (opt.only && strcmp(opt.only, cfg_name[cfg]) != 0)
                continue;
            server_start((enum config)cfg, &sp[n]);
            fprintf(stderr,
                    "server-bench: round %d: %s serving on port %d after %.0f ms (pid %d)\n",
                    round + 1, cfg_name[cfg], sp[n].port, sp[n].ready_ms, (int)sp[n].pid);
            tgt[n] = (struct target){(enum config)cfg,
                                     {"127.0.0.1", sp[n].port,
                                      cfg == CFG_PEER ? insecure : bench_ctx_new(sp[n].cert),
                                      sp[n].pid}};
            setup_container(&tgt[n].t);
            preload(&tgt[n].t, cfg_name[cfg]);
            n++;
        }
        run_scenarios(tgt, n, round);
        for (int j = 0; j < n; j++) {
            double stop_ms;
            bench_server_stop(&sp[j], opt.keep, &stop_ms);
            if (bench_verbose)
                fprintf(stderr, "server-bench: %s stopped in %.0f ms\n", cfg_name[tgt[j].cfg],
                        stop_ms);
            if (tgt[j].t.ctx != insecure)
                SSL_CTX_free(tgt[j].t.ctx);
        }
    }
    report();
    SSL_CTX_free(insecure);
    return 0;
}
