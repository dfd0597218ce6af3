/*
 * query_bench.c — query-bench: what queries and the index cost a client of
 * atrestd over HTTPS (docs/bench-query.md).
 *
 *   query-bench [--docs N] [--concurrency C] [--seconds S] [--warmup S]
 *               [--queries NAME,...] [--scan-queries N] [--scan-concurrency C]
 *               [--write-conns C] [--write-seconds S] [--write-slices K] [--no-writes]
 *               [--preload-conns C] [--threads T] [--page-size N]
 *               [--server PATH] [--server-arg ARG]... [--master-key B64]
 *               [--tmp DIR] [--keep] [--verbose]
 *
 * It starts atrestd (next to itself unless --server) on a free port with
 * fresh temporary folders, creates database "qbench" with three containers
 * (partition key /pk):
 *   docs       the query container: everything indexed but /filler/?, and
 *              the composite index (category ASC, price DESC)
 *   w_default  no indexing policy given: the server's default (all paths)
 *   w_none     indexingMode "none"
 * preloads N documents into docs in transactional batches (benchlib), then
 * measures each query for S seconds at concurrency C (closed loop, keep-alive
 * TLS; default 1, so p50/p99 are a query's own latency, not time queued
 * behind the benchmark's other connections on a 2-core machine), and last creates/s into w_default and w_none, taking turns slice by
 * slice, at --write-conns connections.
 *
 * The queries (cross-partition; parameters drawn at random per query):
 *   eq            SELECT * FROM c WHERE c.name = @v            (1 document)
 *   range_top100  SELECT TOP 100 * FROM c WHERE c.price > @lo ORDER BY c.price
 *   composite     SELECT TOP 100 c.id, c.category, c.price FROM c
 *                 ORDER BY c.category ASC, c.price DESC
 *   xp_aggregate  SELECT VALUE COUNT(1) FROM c WHERE c.rating >= @r
 *                 (@r in 4.5 .. 5.0: 2-12 % of the documents)
 *   scan          SELECT VALUE COUNT(1) FROM c WHERE CONTAINS(c.filler, @w)
 *                 (/filler/? is not indexed: reads every document; at most
 *                 --scan-queries queries at --scan-concurrency)
 *
 * Invariants:
 *   1. Document i has id "d%08d", partition key "p<i % 1000>" and exactly
 *      DOC_LEN bytes of JSON; every field is a function of i alone
 *      (qdoc_write), so every run loads the same documents.
 *   2. A measured query is a whole query: its requests follow
 *      x-ms-continuation until the server sends none (benchlib invariant 1),
 *      and its latency spans all its pages.
 *   3. Retrieved documents per query are the sum over its pages of
 *      retrievedDocumentCount in x-ms-documentdb-query-metrics (asked for
 *      with x-ms-documentdb-populatequerymetrics); "-" when the server sends
 *      no metrics.
 *   4. Each query is tried once (one connection) before it is measured; a
 *      query the server refuses is reported as not run, and its p50 in the
 *      RESULT line is nan.
 *
 * Output: the query table, the write table, and last the line
 *   RESULT eq_p50_ms=<x> range_top100_p50_ms=<y> index_write_ratio=<z>
 * (index_write_ratio = creates/s into w_default / creates/s into w_none).
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"

#define DOC_LEN     1024 /* bytes of JSON per document */
#define PK_COUNT    1000 /* distinct partition key values */
#define BATCH_OPS   100  /* documents per preload batch */
#define DB          "qbench"
#define QUERY_COLL  "docs"
#define QUERY_LINK  "dbs/" DB "/colls/" QUERY_COLL
#define MAX_PAGES   100000 /* a query with more pages is an error */
#define CONT_MAX    16384  /* bytes of continuation token kept */
#define NCATEGORIES 100
#define NTAGS       50
#define NWORDS      10000 /* distinct scan markers "w0000".."w9999" */

struct options {
    long docs;
    int conc, threads, preload_conns, write_conns, write_slices;
    int scan_queries, scan_conc, page_size, no_writes, keep;
    double seconds, warmup, write_seconds;
    const char *queries, *server, *tmp, *key_b64;
    const char *server_args[8];
    int nserver_args;
};

static struct options opt = {
    .docs = 1000000,
    .conc = 1, /* latency of one query at a time; --concurrency 8 for throughput */
    .threads = 2,
    .preload_conns = 16,
    .write_conns = 32,
    .write_slices = 4,
    .scan_queries = 4,
    .scan_conc = 2,
    .seconds = 10,
    .warmup = 1,
    .write_seconds = -1, /* --seconds */
    .tmp = "/tmp",
    .key_b64 = BENCH_EMULATOR_KEY,
};

/* ---- Documents (invariant 1) ----------------------------------------------- */

static uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Document i's name: distinct for every i < 2^32, not in insertion order. */
static void doc_name(long i, char *out)
{
    sprintf(out, "n%08" PRIx32, (uint32_t)((uint64_t)i * 2654435761u));
}

/* Lowercase words and spaces: what the filler is cut from. */
static char words[65536];

static void words_init(void)
{
    uint64_t x = 0x2545f4914f6cdd1dull;
    size_t i = 0;
    while (i < sizeof words) {
        size_t len = 3 + bench_rng_next(&x) % 7;
        for (size_t k = 0; k < len && i < sizeof words; k++)
            words[i++] = (char)('a' + bench_rng_next(&x) % 26);
        if (i < sizeof words)
            words[i++] = ' ';
    }
}

/* Write document i with id id (exactly DOC_LEN bytes, no NUL). */
static int qdoc_write_id(char *out, const char *id, long i)
{
    uint64_t h1 = mix((uint64_t)i), h2 = mix(h1), h3 = mix(h2);
    char name[16];
    doc_name(i, name);
    long cents = (long)(h2 % 1000001); /* price 0.00 .. 10000.00 */
    int rating = (int)(h3 % 51);       /* 0.0 .. 5.0 */
    int t1 = (int)(h1 >> 32) % NTAGS;
    int t2 = (t1 + 1 + (int)((h1 >> 40) % 24)) % NTAGS;
    int t3 = (t2 + 1 + (int)((h1 >> 48) % 24)) % NTAGS; /* t1, t2, t3 distinct */
    int h = sprintf(out,
                    "{\"id\":\"%s\",\"pk\":\"p%ld\",\"category\":\"cat%02d\",\"price\":%ld.%02ld,"
                    "\"rating\":%d.%d,\"ts\":%" PRId64 ",\"tags\":[\"t%02d\",\"t%02d\",\"t%02d\"],"
                    "\"name\":\"%s\",\"filler\":\"w%04d ",
                    id, i % PK_COUNT, (int)(h1 % NCATEGORIES), cents / 100, cents % 100,
                    rating / 10, rating % 10, (int64_t)1700000000000 + (int64_t)i * 1000, t1, t2,
                    t3, name, (int)((h3 >> 20) % NWORDS));
    int pad = DOC_LEN - h - 2;
    memcpy(out + h, words + (h3 >> 40) % (sizeof words - (size_t)pad), (size_t)pad);
    memcpy(out + h + pad, "\"}", 2);
    return DOC_LEN;
}

static int qdoc_write(char *out, long i, void *arg)
{
    (void)arg;
    char id[24];
    sprintf(id, "d%08ld", i);
    return qdoc_write_id(out, id, i);
}

/* ---- Queries ------------------------------------------------------------------- */

enum param { P_NONE, P_NAME, P_PRICE, P_RATING, P_WORD };

struct qdef {
    const char *name, *sql, *param_name;
    enum param param;
    int scan;
    /* what the counted queries saw (invariant 3) */
    atomic_long ops, pages, retrieved, returned, with_metrics;
    /* results */
    int tried, refused;
    struct bench_result res;
};

static struct qdef queries[] = {
    {.name = "eq", .sql = "SELECT * FROM c WHERE c.name = @v", .param_name = "@v", .param = P_NAME},
    {.name = "range_top100",
     .sql = "SELECT TOP 100 * FROM c WHERE c.price > @lo ORDER BY c.price",
     .param_name = "@lo",
     .param = P_PRICE},
    {.name = "composite",
     .sql = "SELECT TOP 100 c.id, c.category, c.price FROM c "
            "ORDER BY c.category ASC, c.price DESC"},
    {.name = "xp_aggregate",
     .sql = "SELECT VALUE COUNT(1) FROM c WHERE c.rating >= @r",
     .param_name = "@r",
     .param = P_RATING},
    {.name = "scan",
     .sql = "SELECT VALUE COUNT(1) FROM c WHERE CONTAINS(c.filler, @w)",
     .param_name = "@w",
     .param = P_WORD,
     .scan = 1},
};
#define NQUERIES (sizeof queries / sizeof *queries)

/* One connection's query under way. */
struct qstate {
    char value[32]; /* the parameter's JSON */
    char cont[CONT_MAX];
    size_t cont_len;
    long pages, retrieved, returned;
    int metrics;
};

static long header_long(const struct bench_conn *c, const char *name, long dflt)
{
    size_t len;
    const char *v = bench_conn_header(c, name, &len);
    return v && len ? strtol(v, NULL, 10) : dflt;
}

static int build_query(struct bench_conn *c)
{
    struct qdef *q = c->run->sc->arg;
    struct qstate *s = c->user;
    if (!c->in_op) {
        uint64_t x = bench_rng_next(&c->w->rng);
        char name[16];
        switch (q->param) {
        case P_NONE:
            s->value[0] = 0;
            break;
        case P_NAME:
            doc_name((long)(x % (uint64_t)opt.docs), name);
            snprintf(s->value, sizeof s->value, "\"%s\"", name);
            break;
        case P_PRICE:
            snprintf(s->value, sizeof s->value, "%d", (int)(x % 9901));
            break;
        case P_RATING:
            snprintf(s->value, sizeof s->value, "%d.%d", 4 + (int)(5 + x % 6) / 10,
                     (int)(5 + x % 6) % 10);
            break;
        case P_WORD:
            snprintf(s->value, sizeof s->value, "\"w%04d\"", (int)(x % NWORDS));
            break;
        }
        s->cont_len = 0;
        s->pages = s->retrieved = s->returned = 0;
        s->metrics = 0;
    }
    bench_wreserve(c, 4096 + CONT_MAX);
    char *body = c->wbuf + 2048 + CONT_MAX;
    int blen;
    if (q->param == P_NONE)
        blen = sprintf(body, "{\"query\":\"%s\",\"parameters\":[]}", q->sql);
    else
        blen = sprintf(body, "{\"query\":\"%s\",\"parameters\":[{\"name\":\"%s\",\"value\":%s}]}",
                       q->sql, q->param_name, s->value);
    size_t at = (size_t)sprintf(c->wbuf, "POST /" QUERY_LINK "/docs HTTP/1.1\r\n");
    at = bench_put_headers(c, at, "post", "docs", QUERY_LINK);
    at += (size_t)sprintf(c->wbuf + at, "x-ms-documentdb-isquery: true\r\n"
                                        "x-ms-documentdb-query-enablecrosspartition: true\r\n"
                                        "x-ms-documentdb-populatequerymetrics: true\r\n");
    if (opt.page_size)
        at += (size_t)sprintf(c->wbuf + at, "x-ms-max-item-count: %d\r\n", opt.page_size);
    if (s->cont_len) {
        at += (size_t)sprintf(c->wbuf + at, "x-ms-continuation: ");
        memcpy(c->wbuf + at, s->cont, s->cont_len);
        at += s->cont_len;
        at += (size_t)sprintf(c->wbuf + at, "\r\n");
    }
    at += (size_t)sprintf(c->wbuf + at,
                          "Content-Type: application/query+json\r\n"
                          "Content-Length: %d\r\n\r\n",
                          blen);
    memmove(c->wbuf + at, body, (size_t)blen);
    c->wlen = at + (size_t)blen;
    return 0;
}

static int finish_query(struct bench_conn *c, const char *body, size_t blen)
{
    struct qdef *q = c->run->sc->arg;
    struct qstate *s = c->user;
    s->pages++;
    size_t len;
    const char *m = bench_conn_header(c, "x-ms-documentdb-query-metrics", &len);
    if (m) {
        const char *k = memmem(m, len, "retrievedDocumentCount=", 23);
        if (k) {
            s->retrieved += strtol(k + 23, NULL, 10);
            s->metrics = 1;
        }
    }
    long n = header_long(c, "x-ms-item-count", -1);
    if (n < 0) {
        const char *k = memmem(body, blen, "\"_count\":", 9);
        n = k ? strtol(k + 9, NULL, 10) : 0;
    }
    s->returned += n;
    const char *cont = bench_conn_header(c, "x-ms-continuation", &len);
    if (cont && len) {
        if (len > CONT_MAX) {
            bench_conn_error(c, "continuation token longer than CONT_MAX", cont, len);
            return BENCH_FAIL;
        }
        if (s->pages >= MAX_PAGES) {
            bench_conn_error(c, "more pages than MAX_PAGES", body, blen);
            return BENCH_FAIL;
        }
        memcpy(s->cont, cont, len);
        s->cont_len = len;
        return BENCH_MORE;
    }
    if (c->counts) {
        atomic_fetch_add(&q->ops, 1);
        atomic_fetch_add(&q->pages, s->pages);
        atomic_fetch_add(&q->retrieved, s->retrieved);
        atomic_fetch_add(&q->returned, s->returned);
        atomic_fetch_add(&q->with_metrics, s->metrics);
    }
    return BENCH_DONE;
}

/* Try q once on one connection (invariant 4), then measure it. */
static void run_query(const struct bench_target *t, struct qdef *q)
{
    struct bench_scenario sc = {
        .name = q->name,
        .build = build_query,
        .finish = finish_query,
        .arg = q,
        .conn_user = sizeof(struct qstate),
        .max_ops = 1,
    };
    struct bench_load one = {1, 1, 0};
    struct bench_result probe;
    memset(&probe, 0, sizeof probe);
    q->tried = 1;
    if (bench_run_load(t, &sc, &one, 3600, 0, &probe) != 0)
        bench_die("%s: cannot connect", q->name);
    if (probe.errors || probe.ok != 1) {
        q->refused = 1;
        q->res = probe;
        fprintf(stderr, "%s: %-12s not measured: %s\n", bench_prog, q->name,
                probe.first_err[0] ? probe.first_err : "no answer");
        return;
    }
    fprintf(stderr, "%s: %-12s first query %.1f ms, %ld page(s), %ld returned, retrieved %s%ld\n",
            bench_prog, q->name, probe.p50, atomic_load(&q->pages), atomic_load(&q->returned),
            atomic_load(&q->with_metrics) ? "" : "(no metrics) ", atomic_load(&q->retrieved));
    atomic_store(&q->ops, 0);
    atomic_store(&q->pages, 0);
    atomic_store(&q->retrieved, 0);
    atomic_store(&q->returned, 0);
    atomic_store(&q->with_metrics, 0);
    struct bench_load ld = {opt.conc, opt.threads, 0};
    double warmup = opt.warmup;
    if (q->scan) {
        sc.max_ops = opt.scan_queries;
        ld.conns = opt.scan_conc;
        warmup = 0;
    } else {
        sc.max_ops = 0;
    }
    if (ld.threads > ld.conns)
        ld.threads = ld.conns;
    if (bench_run_load(t, &sc, &ld, opt.seconds, warmup, &q->res) != 0)
        bench_die("%s: cannot connect", q->name);
    fprintf(stderr, "%s: %-12s %8.1f queries/s  p50 %8.2f ms  p99 %8.2f ms  errors %ld\n",
            bench_prog, q->name, q->res.ops, q->res.p50, q->res.p99, q->res.errors);
    if (q->res.errors)
        fprintf(stderr, "%s:   first error (HTTP %d): %s\n", bench_prog, q->res.first_status,
                q->res.first_err);
}

/* ---- Writes ------------------------------------------------------------------------ */

enum { W_DEFAULT, W_NONE, NWCOLL };
static const char *const wcoll[NWCOLL] = {"w_default", "w_none"};
static const char *const wlink[NWCOLL] = {"dbs/" DB "/colls/w_default", "dbs/" DB "/colls/w_none"};
static struct bench_result wres[NWCOLL];
static atomic_long write_next; /* document numbers of the creates */

/* create: POST a new document of the preload's shape (number >= N). */
static int build_create(struct bench_conn *c)
{
    const char *link = c->run->sc->arg;
    struct bench_worker *w = c->w;
    long i = opt.docs + atomic_fetch_add_explicit(&write_next, 1, memory_order_relaxed);
    char id[64];
    snprintf(id, sizeof id, "w%d-%d-%" PRIu64, c->run->run_id, w->id, w->seq++);
    bench_wreserve(c, 1024 + DOC_LEN);
    size_t at = (size_t)sprintf(c->wbuf, "POST /%s/docs HTTP/1.1\r\n", link);
    at = bench_put_headers(c, at, "post", "docs", link);
    at += (size_t)sprintf(c->wbuf + at,
                          "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n",
                          i % PK_COUNT, DOC_LEN);
    at += (size_t)qdoc_write_id(c->wbuf + at, id, i);
    c->wlen = at;
    return 0;
}

/* Creates into w_default and w_none, taking turns slice by slice (the first
 * of slice k alternates), so the machine's load hits both alike. */
static void run_writes(const struct bench_target *t)
{
    struct bench_load ld = {opt.write_conns, opt.threads, 0};
    double slice = opt.write_seconds / opt.write_slices;
    for (int k = 0; k < opt.write_slices; k++)
        for (int j = 0; j < NWCOLL; j++) {
            int w = (k + j) % NWCOLL;
            struct bench_scenario sc = {
                .name = wcoll[w], .build = build_create, .arg = (void *)wlink[w]};
            if (bench_run_load(t, &sc, &ld, slice, 0.5, &wres[w]) != 0)
                bench_die("%s: cannot connect", wcoll[w]);
        }
    for (int w = 0; w < NWCOLL; w++) {
        fprintf(stderr, "%s: create %-9s %8.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %ld\n",
                bench_prog, wcoll[w], wres[w].ops, wres[w].p50, wres[w].p99, wres[w].errors);
        if (wres[w].errors)
            fprintf(stderr, "%s:   first error (HTTP %d): %s\n", bench_prog, wres[w].first_status,
                    wres[w].first_err);
    }
}

/* ---- Report ------------------------------------------------------------------------- */

static double per_query(const struct qdef *q, long v)
{
    long n = atomic_load(&q->ops);
    return n ? (double)v / (double)n : 0;
}

static double query_p50(const char *name)
{
    for (size_t i = 0; i < NQUERIES; i++)
        if (strcmp(queries[i].name, name) == 0 && queries[i].tried && !queries[i].refused &&
            queries[i].res.ok)
            return queries[i].res.p50;
    return NAN;
}

static void report(const char *server, double load_start)
{
    printf("\nquery-bench: %ld documents of %d bytes (%d partition key values), server %s\n",
           opt.docs, DOC_LEN, PK_COUNT, server);
    printf("queries: %d connections, %.0f s each after %.1f s warm-up (scan: %d connections, at "
           "most %d queries); load average (1 min) at start %.2f, at end %.2f\n",
           opt.conc, opt.seconds, opt.warmup, opt.scan_conc, opt.scan_queries, load_start,
           bench_loadavg());
    printf("%-13s %9s %9s %9s %7s %8s %12s %11s %10s\n", "query", "ops/s", "p50 ms", "p99 ms",
           "errors", "pages/q", "retrieved/q", "returned/q", "srv ms/q");
    for (size_t i = 0; i < NQUERIES; i++) {
        const struct qdef *q = &queries[i];
        if (!q->tried)
            continue;
        if (q->refused) {
            printf("%-13s not run: %.*s\n", q->name, 100, q->res.first_err);
            continue;
        }
        char retrieved[32] = "-";
        if (atomic_load(&q->with_metrics) == atomic_load(&q->ops) && atomic_load(&q->ops))
            snprintf(retrieved, sizeof retrieved, "%.1f", per_query(q, atomic_load(&q->retrieved)));
        printf("%-13s %9.1f %9.2f %9.2f %7ld %8.2f %12s %11.2f %10.2f\n", q->name, q->res.ops,
               q->res.p50, q->res.p99, q->res.errors, per_query(q, atomic_load(&q->pages)),
               retrieved, per_query(q, atomic_load(&q->returned)), q->res.srv_cpu_us / 1e3);
    }
    double ratio = NAN;
    if (!opt.no_writes) {
        printf("\ncreates: %d connections, %.0f s per container in %d slices (taking turns)\n",
               opt.write_conns, opt.write_seconds, opt.write_slices);
        printf("%-10s %-22s %10s %8s %8s %7s %10s\n", "container", "indexing", "creates/s",
               "p50 ms", "p99 ms", "errors", "srv us/op");
        static const char *const how[NWCOLL] = {"default (all paths)", "none"};
        for (int w = 0; w < NWCOLL; w++)
            printf("%-10s %-22s %10.0f %8.2f %8.2f %7ld %10.1f\n", wcoll[w], how[w], wres[w].ops,
                   wres[w].p50, wres[w].p99, wres[w].errors, wres[w].srv_cpu_us);
        if (wres[W_NONE].ops > 0)
            ratio = wres[W_DEFAULT].ops / wres[W_NONE].ops;
        printf("index_write_ratio (creates/s default / none) = %.3f\n", ratio);
    }
    printf("RESULT eq_p50_ms=%.3f range_top100_p50_ms=%.3f index_write_ratio=%.3f\n",
           query_p50("eq"), query_p50("range_top100"), ratio);
}

/* ---- Main --------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: query-bench [--docs N] [--concurrency C] [--seconds S] [--warmup S]\n"
                    "                   [--queries eq,range_top100,composite,xp_aggregate,scan]\n"
                    "                   [--scan-queries N] [--scan-concurrency C]\n"
                    "                   [--write-conns C] [--write-seconds S] [--write-slices K]\n"
                    "                   [--no-writes] [--preload-conns C] [--threads T]\n"
                    "                   [--page-size N] [--server PATH] [--server-arg ARG]...\n"
                    "                   [--master-key B64] [--tmp DIR] [--keep] [--verbose]\n");
    exit(2);
}

static int selected(const char *name)
{
    if (!opt.queries)
        return 1;
    size_t n = strlen(name);
    for (const char *p = opt.queries; (p = strstr(p, name)) != NULL; p += n)
        if ((p == opt.queries || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_prog = "query-bench";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--docs"))
            opt.docs = atol(v);
        else if (ARG("--concurrency"))
            opt.conc = atoi(v);
        else if (ARG("--seconds"))
            opt.seconds = atof(v);
        else if (ARG("--warmup"))
            opt.warmup = atof(v);
        else if (ARG("--queries"))
            opt.queries = v;
        else if (ARG("--scan-queries"))
            opt.scan_queries = atoi(v);
        else if (ARG("--scan-concurrency"))
            opt.scan_conc = atoi(v);
        else if (ARG("--write-conns"))
            opt.write_conns = atoi(v);
        else if (ARG("--write-seconds"))
            opt.write_seconds = atof(v);
        else if (ARG("--write-slices"))
            opt.write_slices = atoi(v);
        else if (ARG("--preload-conns"))
            opt.preload_conns = atoi(v);
        else if (ARG("--threads"))
            opt.threads = atoi(v);
        else if (ARG("--page-size"))
            opt.page_size = atoi(v);
        else if (ARG("--server"))
            opt.server = v;
        else if (ARG("--server-arg")) {
            if (opt.nserver_args == 8)
                usage();
            opt.server_args[opt.nserver_args++] = v;
        } else if (ARG("--master-key"))
            opt.key_b64 = v;
        else if (ARG("--tmp"))
            opt.tmp = v;
        else if (strcmp(a, "--no-writes") == 0)
            opt.no_writes = 1;
        else if (strcmp(a, "--keep") == 0)
            opt.keep = 1;
        else if (strcmp(a, "--verbose") == 0)
            bench_verbose = 1;
        else
            usage();
#undef ARG
    }
    if (opt.write_seconds < 0)
        opt.write_seconds = opt.seconds;
    if (opt.docs <= 0 || opt.docs > 100000000 || opt.conc <= 0 || opt.threads <= 0 ||
        opt.seconds <= 0 || opt.warmup < 0 || opt.scan_queries <= 0 || opt.scan_conc <= 0 ||
        opt.write_conns <= 0 || opt.write_seconds <= 0 || opt.write_slices <= 0 ||
        opt.preload_conns <= 0 || opt.page_size < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double load_start = bench_loadavg();
    words_init();
    bench_sign_selftest();
    bench_key_init(opt.key_b64);

    char exe[PATH_MAX + 64];
    if (opt.server)
        snprintf(exe, sizeof exe, "%s", opt.server);
    else
        snprintf(exe, sizeof exe, "%s/atrestd", bench_self_dir());
    struct bench_server sp;
    bench_server_prepare(&sp, opt.tmp, "atrest");
    const char *sargv[24];
    bench_atrestd_argv(&sp, exe, opt.key_b64, opt.server_args, opt.nserver_args, sargv);
    bench_server_launch(&sp, sargv, 1);
    fprintf(stderr, "%s: %s serving on port %d after %.0f ms (pid %d), folder %s\n", bench_prog,
            exe, sp.port, sp.ready_ms, (int)sp.pid, sp.dir);
    struct bench_target t = {"127.0.0.1", sp.port, bench_ctx_new(sp.cert), sp.pid};

    bench_create_database(&t, DB);
    bench_create_container(
        &t, DB,
        "{\"id\":\"" QUERY_COLL "\",\"partitionKey\":{\"paths\":[\"/pk\"],\"kind\":\"Hash\"},"
        "\"indexingPolicy\":{\"indexingMode\":\"consistent\",\"automatic\":true,"
        "\"includedPaths\":[{\"path\":\"/*\"}],"
        "\"excludedPaths\":[{\"path\":\"/filler/?\"}],"
        "\"compositeIndexes\":[[{\"path\":\"/category\",\"order\":\"ascending\"},"
        "{\"path\":\"/price\",\"order\":\"descending\"}]]}}");
    if (!opt.no_writes) {
        bench_create_container(&t, DB,
                               "{\"id\":\"w_default\",\"partitionKey\":{\"paths\":[\"/pk\"],"
                               "\"kind\":\"Hash\"}}");
        bench_create_container(&t, DB,
                               "{\"id\":\"w_none\",\"partitionKey\":{\"paths\":[\"/pk\"],"
                               "\"kind\":\"Hash\"},\"indexingPolicy\":{\"indexingMode\":\"none\","
                               "\"automatic\":false}}");
    }

    struct bench_load pl = {opt.preload_conns, opt.threads, 0};
    struct bench_preload p = {
        .link = QUERY_LINK,
        .docs = opt.docs,
        .pk_count = PK_COUNT,
        .batch_ops = BATCH_OPS,
        .doc_max = DOC_LEN,
        .write_doc = qdoc_write,
        .progress_s = 10,
    };
    bench_preload(&t, &pl, &p, QUERY_COLL);

    for (size_t i = 0; i < NQUERIES; i++)
        if (selected(queries[i].name))
            run_query(&t, &queries[i]);
    if (!opt.no_writes)
        run_writes(&t);

    bench_server_stop(&sp, opt.keep, NULL);
    if (opt.keep)
        fprintf(stderr, "%s: kept %s\n", bench_prog, sp.dir);
    report(exe, load_start);
    SSL_CTX_free(t.ctx);
    return 0;
}
