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
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define BENCH_DOC_LEN     1024 /* bytes of JSON per document */
#define BENCH_PK_COUNT    1000 /* distinct partition key values */
#define BENCH_BATCH_OPS   100  /* documents per preload batch request */
#define BENCH_DB          "bench"
#define BENCH_COLL        "docs"
#define BENCH_LINK        "dbs/" BENCH_DB "/colls/" BENCH_COLL
#define BENCH_MAX_CONFIGS 3
#define BENCH_MAX_ROUNDS  15
#define BENCH_ERR_MAX     600 /* bytes of the first error body kept */
#define EMULATOR_KEY                                                                               \
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

#ifndef ATREST_BENCH_PEER_DIR
#define ATREST_BENCH_PEER_DIR "bench/peer"
#endif

/* ---- Options ------------------------------------------------------------- */

struct options {
    double seconds, warmup;
    int docs, rounds, conns, threads, slices;
    int blocking; /* --mode threads */
    int peer, keep, verbose;
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
    .key_b64 = EMULATOR_KEY,
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- Latency histogram: log-linear buckets, < 1% relative error --------- */

#define HIST_SUB_BITS 7 /* 128 sub-buckets per power of two */
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (64 * HIST_SUB)

struct hist {
    uint64_t n;
    uint32_t b[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The middle of bucket i's value range. */
static double hist_value(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t lo = ((uint64_t)HIST_SUB + (i % HIST_SUB)) << shift;
    return (double)lo + (double)(1ull << shift) / 2;
}

static void hist_add(struct hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->n++;
}

static void hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->n += src->n;
}

static double hist_pct_ms(const struct hist *h, double pct)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(pct / 100.0 * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return hist_value(i) / 1e6;
    }
    return 0;
}

/* ---- Master-key signing (COSMOS-REST.md) -------------------------------- */

static unsigned char mkey[64];
static int mkey_len;

static void b64_encode(const unsigned char *in, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, n);
}

/* Append the url-encoded authorization value for (verb, type, link, date)
 * to out (at least 128 bytes). verb and type are lowercase already. */
static void sign(const char *verb, const char *type, const char *link, const char *date_lc,
                 char *out)
{
    char text[512];
    int n = snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n\n", verb, type, link, date_lc);
    if (n < 0 || (size_t)n >= sizeof text)
        die("resource link too long to sign");
    unsigned char mac[32];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), mkey, mkey_len, (unsigned char *)text, (size_t)n, mac, &maclen))
        die("HMAC failed");
    char sig[48];
    b64_encode(mac, 32, sig);
    char *o = out + sprintf(out, "type%%3Dmaster%%26ver%%3D1.0%%26sig%%3D");
    for (const char *s = sig; *s; s++) {
        if (*s == '+')
            o += sprintf(o, "%%2B");
        else if (*s == '/')
            o += sprintf(o, "%%2F");
        else if (*s == '=')
            o += sprintf(o, "%%3D");
        else
            *o++ = *s;
    }
    *o = 0;
}

static void url_decode(const char *in, char *out)
{
    while (*in) {
        if (in[0] == '%' && in[1] && in[2]) {
            char hex[3] = {in[1], in[2], 0};
            *out++ = (char)strtol(hex, NULL, 16);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = 0;
}

/* Check sign() against the vectors of COSMOS-REST.md (emulator key). */
static void sign_selftest(void)
{
    static const struct {
        const char *verb, *type, *link, *sig;
    } v[] = {
        {"get", "", "", "gFB1bRB/PLJTG3bCgMuoVgNzOyFvZAamzEtLuSITjRc="},
        {"post", "dbs", "", "CHjhNtQltyEuPdWLf2/f+hSkSlYg+7UuFlwMyv8L7mI="},
        {"get", "dbs", "dbs/testdb", "7AMHA4cc5jwSUmI/2jieU+QBY0EdhgZAyXiOAu+MEzs="},
        {"post", "docs", "dbs/testdb/colls/coll", "x8SKhqDogEokqcvlKYbOWTHcoQa0xmmxrKnuTkmh3ng="},
        {"get", "docs", "dbs/testdb/colls/coll/docs/a",
         "9DZ4qOAzYbnCxT5OPDaayRmrA5ZUuYSGWWHY6ODZOL4="},
        {"get", "pkranges", "dbs/testdb/colls/coll",
         "Nyt4ATWQ4oOJSpMO7sdHs17WZgelmddH6bkcMnggAu8="},
        {"get", "colls", "dbs/my db/colls/c 1", "+8l3f1grzvQc8fb3BeA6WWsEFHi43k9ptZagJtMtQAA="},
    };
    unsigned char saved[64];
    int saved_len = mkey_len;
    memcpy(saved, mkey, sizeof saved);
    mkey_len = EVP_DecodeBlock(mkey, (const unsigned char *)EMULATOR_KEY, strlen(EMULATOR_KEY));
    mkey_len -= 2; /* "==" padding */
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char auth[160], dec[160];
        sign(v[i].verb, v[i].type, v[i].link, "thu, 27 apr 2017 00:51:12 gmt", auth);
        url_decode(auth, dec);
        const char *sig = strstr(dec, "sig=");
        if (!sig || strcmp(sig + 4, v[i].sig) != 0)
            die("signing self-test failed for %s %s '%s': %s", v[i].verb, v[i].type, v[i].link,
                dec);
    }
    memcpy(mkey, saved, sizeof saved);
    mkey_len = saved_len;
    OPENSSL_cleanse(saved, sizeof saved);
}

static void key_init(const char *b64)
{
    size_t len = strlen(b64);
    unsigned char buf[128];
    if (len == 0 || len % 4 || len / 4 * 3 > sizeof buf)
        die("--master-key: not base64 of at most 64 bytes");
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0)
        die("--master-key: not base64");
    if (len >= 1 && b64[len - 1] == '=')
        n--;
    if (len >= 2 && b64[len - 2] == '=')
        n--;
    if (n > (int)sizeof mkey)
        die("--master-key: longer than 64 bytes");
    memcpy(mkey, buf, (size_t)n);
    mkey_len = n;
    OPENSSL_cleanse(buf, sizeof buf);
}

/* The x-ms-date of the current second, and its lowercase twin for signing;
 * recomputed only when the second changes (one per thread). */
struct date_cache {
    time_t t;
    char date[40], lc[40];
};

static void date_update(struct date_cache *d)
{
    time_t t = time(NULL);
    if (t == d->t)
        return;
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(d->date, sizeof d->date, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
             tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    size_t i = 0;
    for (; d->date[i]; i++)
        d->lc[i] = (char)((d->date[i] >= 'A' && d->date[i] <= 'Z') ? d->date[i] + 32 : d->date[i]);
    d->lc[i] = 0;
    d->t = t;
}

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

/* ---- Scenarios and requests ------------------------------------------------ */

enum scenario { SC_READ, SC_CREATE, SC_UPSERT, SC_PRELOAD_BATCH, SC_PRELOAD_CREATE, SC_NAMED };
static const char *const sc_name[] = {"read", "create", "upsert", "preload-batch",
                                      "preload-create"};
#define SC_MEASURED 3

/* One run of load: shared by the workers. */
struct run {
    enum scenario sc;
    const char *host;
    int port;
    SSL_CTX *ctx;
    atomic_int stop;
    atomic_long next;      /* preload: next index to load */
    long limit;            /* preload: indexes below this */
    uint64_t measure_from; /* ns: requests started earlier do not count */
    int run_id;
    pthread_mutex_t err_mu;
    int first_status;
    char first_err[BENCH_ERR_MAX + 1];
    atomic_long errors, reconnects;
};

struct conn {
    struct run *run;
    struct worker *w;
    int fd;
    SSL *ssl;
    int state; /* C_IDLE, C_WRITE, C_READ */
    char *wbuf;
    size_t wlen, woff, wcap;
    char *rbuf;
    size_t rlen, rcap;
    size_t hdr_end; /* offset of the body, 0 while headers are incomplete */
    long clen;      /* Content-Length, -1 chunked */
    int status, close_after;
    uint64_t t0;
    int counts;      /* this request counts (started after the warm-up) */
    long batch_docs; /* documents in the request (preload) */
};

enum { C_IDLE, C_WRITE, C_READ };

struct worker {
    struct run *run;
    int id;
    pthread_t th;
    struct conn *c;
    int nc;
    uint64_t rng;
    uint64_t seq;
    struct date_cache date;
    struct hist h;
    uint64_t ok;
    long docs_loaded;
};

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void wreserve(struct conn *c, size_t need)
{
    if (c->wcap >= need)
        return;
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(c->wbuf, cap);
    if (!p)
        die("out of memory");
    c->wbuf = p;
    c->wcap = cap;
}

/* Headers common to every request, after the request line. */
static size_t put_headers(struct conn *c, size_t at, const char *verb, const char *type,
                          const char *link)
{
    struct worker *w = c->w;
    date_update(&w->date);
    char auth[160];
    sign(verb, type, link, w->date.lc, auth);
    return at + (size_t)sprintf(c->wbuf + at,
                                "Host: 127.0.0.1:%d\r\n"
                                "x-ms-date: %s\r\n"
                                "x-ms-version: 2020-07-15\r\n"
                                "authorization: %s\r\n"
                                "Accept: application/json\r\n",
                                c->run->port, w->date.date, auth);
}

static void preload_id(long i, char *id)
{
    sprintf(id, "doc-%08ld", i);
}

/* Build the next request into c->wbuf. Returns 0, or 1 when there is no
 * more work (preload done). */
static int build_request(struct conn *c)
{
    struct run *r = c->run;
    struct worker *w = c->w;
    char id[64], link[160];
    size_t at;
    c->batch_docs = 0;
    switch (r->sc) {
    case SC_READ: {
        long i = (long)(rng_next(&w->rng) % (uint64_t)opt.docs);
        preload_id(i, id);
        snprintf(link, sizeof link, BENCH_LINK "/docs/%s", id);
        wreserve(c, 1024);
        at = (size_t)sprintf(c->wbuf, "GET /%s HTTP/1.1\r\n", link);
        at = put_headers(c, at, "get", "docs", link);
        at += (size_t)sprintf(c->wbuf + at, "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n\r\n",
                              i % BENCH_PK_COUNT);
        break;
    }
    case SC_CREATE:
    case SC_UPSERT:
    case SC_PRELOAD_CREATE: {
        long i;
        int pk;
        if (r->sc == SC_CREATE) {
            uint64_t s = w->seq++;
            snprintf(id, sizeof id, "new-%d-%d-%" PRIu64, r->run_id, w->id, s);
            pk = (int)(s % BENCH_PK_COUNT);
        } else {
            if (r->sc == SC_UPSERT) {
                i = (long)(rng_next(&w->rng) % (uint64_t)opt.docs);
            } else {
                i = atomic_fetch_add(&r->next, 1);
                if (i >= r->limit)
                    return 1;
                c->batch_docs = 1;
            }
            preload_id(i, id);
            pk = (int)(i % BENCH_PK_COUNT);
        }
        wreserve(c, 1024 + BENCH_DOC_LEN);
        at = (size_t)sprintf(c->wbuf, "POST /" BENCH_LINK "/docs HTTP/1.1\r\n");
        at = put_headers(c, at, "post", "docs", BENCH_LINK);
        at += (size_t)sprintf(c->wbuf + at,
                              "x-ms-documentdb-partitionkey: [\"p%d\"]\r\n"
                              "%s"
                              "Content-Type: application/json\r\n"
                              "Content-Length: %d\r\n\r\n",
                              pk, r->sc == SC_UPSERT ? "x-ms-documentdb-is-upsert: true\r\n" : "",
                              BENCH_DOC_LEN);
        at += (size_t)doc_write(c->wbuf + at, id, pk, rng_next(&w->rng) >> 20);
        break;
    }
    case SC_PRELOAD_BATCH: {
        /* Batch k holds documents k, k+1000, k+2000, ...: one partition key
         * value ("p<k % 1000>"), so it is a valid transactional batch. */
        long k = atomic_fetch_add(&r->next, 1);
        long nbatch = (r->limit + BENCH_BATCH_OPS - 1) / BENCH_BATCH_OPS;
        if (k >= nbatch)
            return 1;
        long stride = nbatch, pk = k % BENCH_PK_COUNT;
        /* With nbatch a multiple of BENCH_PK_COUNT every member of batch k
         * shares k's partition key; the preload checks that. */
        size_t body_max = (size_t)BENCH_BATCH_OPS * (BENCH_DOC_LEN + 128) + 16;
        wreserve(c, 2048 + body_max);
        char *body = c->wbuf + 2048, *b = body;
        *b++ = '[';
        long n = 0;
        for (long i = k; i < r->limit && n < BENCH_BATCH_OPS; i += stride, n++) {
            preload_id(i, id);
            if (n)
                *b++ = ',';
            b += sprintf(b,
                         "{\"operationType\":\"Create\",\"partitionKey\":\"[\\\"p%ld\\\"]\","
                         "\"resourceBody\":",
                         pk);
            b += doc_write(b, id, (int)pk, (uint64_t)i);
            *b++ = '}';
        }
        *b++ = ']';
        size_t blen = (size_t)(b - body);
        c->batch_docs = n;
        at = (size_t)sprintf(c->wbuf, "POST /" BENCH_LINK "/docs HTTP/1.1\r\n");
        at = put_headers(c, at, "post", "docs", BENCH_LINK);
        at += (size_t)sprintf(c->wbuf + at,
                              "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n"
                              "x-ms-cosmos-is-batch-request: true\r\n"
                              "x-ms-cosmos-batch-atomic: true\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              pk, blen);
        memmove(c->wbuf + at, body, blen);
        at += blen;
        break;
    }
    default:
        die("bad scenario");
    }
    c->wlen = at;
    c->woff = 0;
    return 0;
}

/* ---- Connections ----------------------------------------------------------- */

static void record_error(struct conn *c, const char *why, const char *body, size_t len)
{
    struct run *r = c->run;
    atomic_fetch_add(&r->errors, 1);
    pthread_mutex_lock(&r->err_mu);
    if (!r->first_err[0]) {
        r->first_status = c->status;
        int n = snprintf(r->first_err, sizeof r->first_err, "%s: ", why);
        if (n > 0 && (size_t)n < sizeof r->first_err && body) {
            size_t room = sizeof r->first_err - 1 - (size_t)n;
            if (len > room)
                len = room;
            memcpy(r->first_err + n, body, len);
            r->first_err[(size_t)n + len] = 0;
        }
    }
    pthread_mutex_unlock(&r->err_mu);
}

static int tcp_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Connect and finish the TLS handshake (blocking). 0 or -1 (reason on stderr). */
static int conn_open(struct conn *c, int nonblocking)
{
    struct run *r = c->run;
    c->fd = tcp_connect(r->host, r->port);
    if (c->fd < 0) {
        fprintf(stderr, "server-bench: connect %s:%d: %s\n", r->host, r->port, strerror(errno));
        return -1;
    }
    c->ssl = SSL_new(r->ctx);
    if (!c->ssl)
        die("SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (SSL_connect(c->ssl) != 1) {
        fprintf(stderr, "server-bench: TLS handshake with %s:%d failed: ", r->host, r->port);
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "\n");
        conn_close(c);
        return -1;
    }
    if (nonblocking)
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->state = C_IDLE;
    return 0;
}

/* Parse what c->rbuf holds. Returns 1 when the response is complete (and
 * sets *body / *blen), 0 when more is needed, -1 on a malformed response. */
static int parse_response(struct conn *c, const char **body, size_t *blen)
{
    if (!c->hdr_end) {
        char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!e)
            return 0;
        c->hdr_end = (size_t)(e - c->rbuf) + 4;
        if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7) != 0)
            return -1;
        c->status = atoi(c->rbuf + 9);
        c->clen = 0;
        c->close_after = 0;
        for (char *p = memchr(c->rbuf, '\n', c->hdr_end); p && (size_t)(p - c->rbuf) < c->hdr_end;
             p = memchr(p, '\n', c->hdr_end - (size_t)(p - c->rbuf))) {
            p++;
            if (strncasecmp(p, "content-length:", 15) == 0)
                c->clen = strtol(p + 15, NULL, 10);
            else if (strncasecmp(p, "transfer-encoding:", 18) == 0 &&
                     strncasecmp(p + 18 + strspn(p + 18, " "), "chunked", 7) == 0)
                c->clen = -1;
            else if (strncasecmp(p, "connection:", 11) == 0 &&
                     strncasecmp(p + 11 + strspn(p + 11, " "), "close", 5) == 0)
                c->close_after = 1;
        }
    }
    if (c->clen >= 0) {
        if (c->rlen < c->hdr_end + (size_t)c->clen)
            return 0;
        *body = c->rbuf + c->hdr_end;
        *blen = (size_t)c->clen;
        return 1;
    }
    /* chunked: walk the chunks until the last one */
    size_t at = c->hdr_end;
    for (;;) {
        char *eol = memmem(c->rbuf + at, c->rlen - at, "\r\n", 2);
        if (!eol)
            return 0;
        long sz = strtol(c->rbuf + at, NULL, 16);
        at = (size_t)(eol - c->rbuf) + 2;
        if (sz == 0) {
            if (c->rlen - at < 2)
                return 0;
            *body = c->rbuf + c->hdr_end;
            *blen = at - c->hdr_end;
            return 1;
        }
        if (c->rlen < at + (size_t)sz + 2)
            return 0;
        at += (size_t)sz + 2;
    }
}

/* A response is complete: account for it. */
static void finish_request(struct conn *c, const char *body, size_t blen)
{
    struct run *r = c->run;
    struct worker *w = c->w;
    uint64_t t1 = now_ns();
    int ok = c->status >= 200 && c->status < 300;
    if (!ok) {
        char why[64];
        snprintf(why, sizeof why, "%s: HTTP %d", sc_name[r->sc], c->status);
        record_error(c, why, body, blen);
    } else if (r->sc == SC_READ && blen < BENCH_DOC_LEN) {
        record_error(c, "read: body shorter than a document", body, blen);
    } else if (r->sc == SC_PRELOAD_BATCH && memmem(body, blen, "\"statusCode\":201", 16) == NULL) {
        record_error(c, "preload batch: no 201 in the answer", body, blen);
    } else {
        w->docs_loaded += c->batch_docs;
        if (c->counts) {
            w->ok++;
            hist_add(&w->h, t1 - c->t0);
        }
    }
}

/*
 * Drive one connection as far as it goes without blocking. Returns 0 when it
 * waits for the socket, 1 when it is done (stop asked, or no more work), -1
 * when the connection failed (closed by the server, reset).
 */
static int conn_drive(struct conn *c)
{
    struct run *r = c->run;
    for (;;) {
        switch (c->state) {
        case C_IDLE:
            if (atomic_load_explicit(&r->stop, memory_order_relaxed))
                return 1;
            if (build_request(c))
                return 1;
            c->t0 = now_ns();
            c->counts = c->t0 >= r->measure_from;
            c->state = C_WRITE;
            /* fall through */
        case C_WRITE: {
            int n = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
            if (n > 0) {
                c->woff += (size_t)n;
                if (c->woff < c->wlen)
                    continue;
                c->state = C_READ;
                c->rlen = 0;
                c->hdr_end = 0;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return 0;
            return -1;
        }
        case C_READ: {
            if (c->rcap - c->rlen < 16384) {
                size_t cap = c->rcap ? c->rcap * 2 : 65536;
                char *p = realloc(c->rbuf, cap);
                if (!p)
                    die("out of memory");
                c->rbuf = p;
                c->rcap = cap;
            }
            int n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen - 1));
            if (n > 0) {
                c->rlen += (size_t)n;
                const char *body = NULL;
                size_t blen = 0;
                int p = parse_response(c, &body, &blen);
                if (p < 0) {
                    c->status = 0;
                    record_error(c, "malformed response", c->rbuf, c->rlen);
                    return -1;
                }
                if (p == 0)
                    continue;
                finish_request(c, body, blen);
                c->state = C_IDLE;
                if (c->close_after)
                    return -1;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            return -1;
        }
        }
    }
}

/* ---- Workers ----------------------------------------------------------------- */

static int conn_restart(struct conn *c, int epfd)
{
    struct run *r = c->run;
    if (c->state != C_IDLE) {
        c->status = 0;
        record_error(c, "connection closed by the server mid-request", NULL, 0);
        /* a preload request that failed is lost: count it as an error only */
    }
    atomic_fetch_add(&r->reconnects, 1);
    conn_close(c);
    if (conn_open(c, epfd >= 0) != 0)
        return -1;
    if (epfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    if (w->nc == 1 && opt.blocking) {
        struct conn *c = &w->c[0];
        for (;;) {
            int rc = conn_drive(c);
            if (rc == 1)
                break;
            if (atomic_load(&r->stop) && c->state == C_IDLE)
                break;
            if (conn_restart(c, -1) != 0)
                break;
        }
        return NULL;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    int active = 0;
    for (int i = 0; i < w->nc; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &w->c[i]};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->c[i].fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        active++;
    }
    /* Start every connection's first request, then follow the events. */
    char *done = calloc((size_t)w->nc, 1);
    for (int i = 0; i < w->nc; i++) {
        int rc = conn_drive(&w->c[i]);
        while (rc < 0 && conn_restart(&w->c[i], epfd) == 0)
            rc = conn_drive(&w->c[i]);
        if (rc != 0) {
            done[i] = 1;
            active--;
        }
    }
    struct epoll_event evs[64];
    while (active > 0) {
        int n = epoll_wait(epfd, evs, 64, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            int i = (int)(c - w->c);
            if (done[i])
                continue;
            int rc = conn_drive(c);
            while (rc < 0 && !(atomic_load(&r->stop) && c->state == C_IDLE)) {
                if (conn_restart(c, epfd) != 0)
                    break;
                rc = conn_drive(c);
            }
            if (rc != 0) {
                done[i] = 1;
                active--;
            }
        }
        /* Idle connections notice the stop flag without an event. */
        if (atomic_load(&r->stop))
            for (int i = 0; i < w->nc; i++)
                if (!done[i] && w->c[i].state == C_IDLE) {
                    done[i] = 1;
                    active--;
                }
    }
    free(done);
    close(epfd);
    return NULL;
}

/* What the runs of load of one scenario against one server measured: raw
 * sums over its slices, then (result_finish) the derived figures. */
struct result {
    struct hist h;
    uint64_t ok;                   /* counted requests */
    double secs, srv_cpu, cli_cpu; /* measured seconds, CPU seconds */
    long errors, reconnects, docs_loaded;
    int first_status;
    char first_err[BENCH_ERR_MAX + 1];
    /* derived */
    double ops, p50, p99;
    double srv_cpu_us, cli_cpu_us; /* CPU time per counted request */
};

static void result_finish(struct result *res)
{
    res->ops = res->secs > 0 ? (double)res->ok / res->secs : 0;
    res->p50 = hist_pct_ms(&res->h, 50);
    res->p99 = hist_pct_ms(&res->h, 99);
    res->srv_cpu_us = res->ok ? res->srv_cpu * 1e6 / (double)res->ok : 0;
    res->cli_cpu_us = res->ok ? res->cli_cpu * 1e6 / (double)res->ok : 0;
}

static double proc_cpu_s(pid_t pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * Run scenario sc against host:port: open the connections, run for
 * warmup + seconds (or, for a preload, until every document is loaded),
 * close, and add what was measured to *res. Returns 0, or -1 when no
 * connection could be opened.
 */
static int run_load(const char *host, int port, SSL_CTX *ctx, enum scenario sc, pid_t srv_pid,
                    double seconds, double warmup, struct result *res)
{
    static struct run r;
    static int run_counter; /* new ids never repeat within one process */
    int run_id = ++run_counter;
    memset(&r, 0, sizeof r);
    r.sc = sc;
    r.host = host;
    r.port = port;
    r.ctx = ctx;
    r.run_id = run_id;
    r.limit = opt.docs;
    pthread_mutex_init(&r.err_mu, NULL);
    int preload = sc == SC_PRELOAD_BATCH || sc == SC_PRELOAD_CREATE;

    int nthreads = opt.blocking ? opt.conns : opt.threads;
    if (nthreads > opt.conns)
        nthreads = opt.conns;
    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    struct conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    if (!ws || !cs)
        die("out of memory");
    int ci = 0;
    for (int t = 0; t < nthreads; t++) {
        struct worker *w = &ws[t];
        w->run = &r;
        w->id = t;
        w->rng = 0x853c49e6748fea9bull ^ ((uint64_t)(t + 1) * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)run_id << 32);
        w->nc = opt.conns / nthreads + (t < opt.conns % nthreads);
        w->c = &cs[ci];
        for (int i = 0; i < w->nc; i++, ci++) {
            cs[ci].run = &r;
            cs[ci].w = w;
            cs[ci].fd = -1;
            if (conn_open(&cs[ci], !opt.blocking) != 0)
                return -1;
        }
    }

    double cpu0_srv = 0, cpu0_cli = 0;
    double start = now_s();
    r.measure_from = preload ? 0 : now_ns() + (uint64_t)(warmup * 1e9);
    for (int t = 0; t < nthreads; t++)
        if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) != 0)
            die("pthread_create failed");
    double t_measure = start;
    if (!preload) {
        sleep_s(warmup);
        t_measure = now_s();
        cpu0_srv = proc_cpu_s(srv_pid);
        cpu0_cli = self_cpu_s();
        sleep_s(seconds);
        atomic_store(&r.stop, 1);
    } else {
        cpu0_srv = proc_cpu_s(srv_pid);
        cpu0_cli = self_cpu_s();
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(ws[t].th, NULL);
    double end = now_s();
    double cpu_srv = proc_cpu_s(srv_pid) - cpu0_srv, cpu_cli = self_cpu_s() - cpu0_cli;

    for (int t = 0; t < nthreads; t++) {
        hist_merge(&res->h, &ws[t].h);
        res->ok += ws[t].ok;
        res->docs_loaded += ws[t].docs_loaded;
    }
    for (int i = 0; i < opt.conns; i++) {
        conn_close(&cs[i]);
        free(cs[i].wbuf);
        free(cs[i].rbuf);
    }
    free(cs);
    free(ws);

    res->secs += end - t_measure;
    res->srv_cpu += cpu_srv;
    res->cli_cpu += cpu_cli;
    res->errors += atomic_load(&r.errors);
    res->reconnects += atomic_load(&r.reconnects);
    if (!res->first_err[0] && r.first_err[0]) {
        res->first_status = r.first_status;
        memcpy(res->first_err, r.first_err, sizeof res->first_err);
    }
    pthread_mutex_destroy(&r.err_mu);
    result_finish(res);
    return 0;
}

/* ---- One-off requests (setup) ---------------------------------------------- */

/* Send one signed request on a fresh connection; returns the status (0 when
 * the connection failed) and copies up to outlen-1 bytes of body to out. */
static int one_request(const char *host, int port, SSL_CTX *ctx, const char *verb_uc,
                       const char *type, const char *link, const char *path, const char *body,
                       char *out, size_t outlen)
{
    static struct run r;
    memset(&r, 0, sizeof r);
    r.host = host;
    r.port = port;
    r.ctx = ctx;
    struct worker w = {.run = &r};
    struct conn c = {.run = &r, .w = &w, .fd = -1};
    if (out && outlen)
        out[0] = 0;
    ERR_clear_error();
    int fd = tcp_connect(host, port);
    if (fd < 0)
        return 0;
    c.fd = fd;
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, fd);
    SSL_set_tlsext_host_name(c.ssl, "localhost");
    if (SSL_connect(c.ssl) != 1) {
        if (opt.verbose)
            ERR_print_errors_fp(stderr);
        conn_close(&c);
        return 0;
    }
    char verb_lc[16];
    size_t i = 0;
    for (; verb_uc[i] && i < sizeof verb_lc - 1; i++)
        verb_lc[i] = (char)(verb_uc[i] | 0x20);
    verb_lc[i] = 0;
    size_t blen = body ? strlen(body) : 0;
    wreserve(&c, 2048 + blen);
    size_t at = (size_t)sprintf(c.wbuf, "%s %s HTTP/1.1\r\n", verb_uc, path);
    at = put_headers(&c, at, verb_lc, type, link);
    at += (size_t)sprintf(c.wbuf + at,
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n",
                          blen);
    memcpy(c.wbuf + at, body ? body : "", blen);
    at += blen;
    int status = 0;
    if (SSL_write(c.ssl, c.wbuf, (int)at) == (int)at) {
        c.rcap = 1 << 16;
        c.rbuf = malloc(c.rcap);
        for (;;) {
            int n = SSL_read(c.ssl, c.rbuf + c.rlen, (int)(c.rcap - c.rlen - 1));
            if (n <= 0)
                break;
            c.rlen += (size_t)n;
            const char *b;
            size_t bl;
            int p = parse_response(&c, &b, &bl);
            if (p < 0)
                break;
            if (p == 1) {
                status = c.status;
                if (out && outlen) {
                    if (bl >= outlen)
                        bl = outlen - 1;
                    memcpy(out, b, bl);
                    out[bl] = 0;
                }
                break;
            }
            if (c.rcap - c.rlen < 1024)
                break;
        }
    }
    conn_close(&c);
    free(c.wbuf);
    free(c.rbuf);
    return status;
}

/* ---- Servers ---------------------------------------------------------------- */

enum config { CFG_ATREST, CFG_PLAIN, CFG_PEER };
static const char *const cfg_name[] = {"atrest", "plain", "peer"};

struct server_proc {
    pid_t pid;
    int port;
    char dir[PATH_MAX]; /* temporary folder: data/, keys/, server.log */
    char cert[PATH_MAX + 64];
    double ready_ms;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "server-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        die("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static char self_dir[PATH_MAX];

static void find_self_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = 0;
    snprintf(self_dir, sizeof self_dir, "%s", dirname(exe));
}

static SSL_CTX *ctx_new(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Read whole socket buffers instead of record header, then record: one
     * read(2) per response instead of two or more. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
            die("cannot load CA %s", ca_file);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1");
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void server_start(enum config cfg, struct server_proc *sp, SSL_CTX *insecure)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s/server-bench-%s-XXXXXX", opt.tmp, cfg_name[cfg]);
    if (!mkdtemp(sp->dir))
        die("mkdtemp %s: %s", sp->dir, strerror(errno));
    sp->port = free_port();
    char data[PATH_MAX + 16], keys[PATH_MAX + 16], log[PATH_MAX + 16], listen[64], port[16];
    snprintf(data, sizeof data, "%s/data", sp->dir);
    snprintf(keys, sizeof keys, "%s/keys", sp->dir);
    snprintf(log, sizeof log, "%s/server.log", sp->dir);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", sp->port);
    snprintf(port, sizeof port, "%d", sp->port);
    char exe[PATH_MAX + 64], script[PATH_MAX + 64];
    const char *argv[24];
    int argc = 0;
    if (cfg == CFG_PEER) {
        snprintf(script, sizeof script, "%s/start.mjs", opt.peer_dir);
        argv[argc++] = "node";
        argv[argc++] = script;
        argv[argc++] = port;
    } else {
        const char *given = cfg == CFG_ATREST ? opt.server : opt.plain;
        if (given)
            snprintf(exe, sizeof exe, "%s", given);
        else
            snprintf(exe, sizeof exe, "%s/%s", self_dir,
                     cfg == CFG_ATREST ? "atrestd" : "atrestd-plain-bench");
        argv[argc++] = exe;
        argv[argc++] = "--data-dir";
        argv[argc++] = data;
        argv[argc++] = "--key-dir";
        argv[argc++] = keys;
        argv[argc++] = "--listen";
        argv[argc++] = listen;
        argv[argc++] = "--master-key";
        argv[argc++] = opt.key_b64;
        for (int i = 0; i < opt.nserver_args; i++)
            argv[argc++] = opt.server_args[i];
    }
    argv[argc] = NULL;
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    sp->pid = pid;
    /* Wait until GET / answers 200 (10 s at most). */
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            die("%s exited before serving; its log: %s", argv[0], log);
        if (one_request("127.0.0.1", sp->port, insecure, "GET", "", "", "/", NULL, NULL, 0) == 200)
            break;
        if (now_s() - t0 > 10)
            die("%s does not answer GET / after 10 s; its log: %s", argv[0], log);
        usleep(2000);
    }
    sp->ready_ms = (now_s() - t0) * 1e3;
    if (cfg != CFG_PEER) {
        snprintf(sp->cert, sizeof sp->cert, "%s/tls/server.crt", keys);
        if (access(sp->cert, R_OK) != 0)
            die("no certificate at %s", sp->cert);
    }
}

static void server_stop(struct server_proc *sp, double *stop_ms)
{
    double t0 = now_s();
    kill(sp->pid, SIGTERM);
    int st = 0;
    for (;;) {
        pid_t p = waitpid(sp->pid, &st, WNOHANG);
        if (p == sp->pid)
            break;
        if (now_s() - t0 > 30) {
            fprintf(stderr, "server-bench: server %d ignores SIGTERM for 30 s: SIGKILL\n",
                    (int)sp->pid);
            kill(sp->pid, SIGKILL);
            waitpid(sp->pid, &st, 0);
            break;
        }
        usleep(2000);
    }
    *stop_ms = (now_s() - t0) * 1e3;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM))
        fprintf(stderr, "server-bench: server exited with status 0x%x (log: %s/server.log)\n", st,
                sp->dir);
    if (!opt.keep)
        nftw(sp->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- The parent ----------------------------------------------------------- */

static struct result results[BENCH_MAX_ROUNDS][BENCH_MAX_CONFIGS][SC_MEASURED];
static int have[BENCH_MAX_CONFIGS];

static void setup_container(const char *host, int port, SSL_CTX *ctx)
{
    char out[1024];
    int st = one_request(host, port, ctx, "POST", "dbs", "", "/dbs", "{\"id\":\"" BENCH_DB "\"}",
                         out, sizeof out);
    if (st != 201 && st != 409)
        die("POST /dbs: HTTP %d %s", st, out);
    st = one_request(host, port, ctx, "POST", "colls", "dbs/" BENCH_DB, "/dbs/" BENCH_DB "/colls",
                     "{\"id\":\"" BENCH_COLL "\",\"partitionKey\":{\"paths\":[\"/pk\"],"
                     "\"kind\":\"Hash\"}}",
                     out, sizeof out);
    if (st != 201 && st != 409)
        die("POST /dbs/" BENCH_DB "/colls: HTTP %d %s", st, out);
}

static void preload(const char *host, int port, SSL_CTX *ctx, pid_t pid, const char *name)
{
    double t0 = now_s();
    static struct result res;
    memset(&res, 0, sizeof res);
    long nbatch = (opt.docs + BENCH_BATCH_OPS - 1) / BENCH_BATCH_OPS;
    enum scenario sc = nbatch % BENCH_PK_COUNT == 0 ? SC_PRELOAD_BATCH : SC_PRELOAD_CREATE;
    if (run_load(host, port, ctx, sc, pid, 0, 0, &res) != 0)
        die("%s: preload: cannot connect", name);
    if (sc == SC_PRELOAD_BATCH && res.errors) {
        if (opt.verbose)
            fprintf(stderr, "server-bench: %s: batch preload failed (%s); creates instead\n", name,
                    res.first_err);
        sc = SC_PRELOAD_CREATE;
        memset(&res, 0, sizeof res);
        if (run_load(host, port, ctx, sc, pid, 0, 0, &res) != 0)
            die("%s: preload: cannot connect", name);
        /* ids already created by successful batches answer 409: fine */
        if (res.errors && res.first_status != 409)
            die("%s: preload failed: %s", name, res.first_err);
    } else if (res.errors) {
        die("%s: preload failed: %s", name, res.first_err);
    }
    fprintf(stderr, "server-bench: %s: preloaded %d documents in %.1f s (%s)\n", name, opt.docs,
            now_s() - t0, sc_name[sc]);
}

/* A server under test during one round. */
struct target {
    enum config cfg;
    const char *host;
    int port;
    SSL_CTX *ctx;
    pid_t pid;
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
    for (int sc = 0; sc < SC_MEASURED; sc++) {
        for (int k = 0; k < opt.slices; k++)
            for (int j = 0; j < n; j++) {
                struct target *t = &tgt[(k + j) % n];
                struct result *res = &results[round][t->cfg][sc];
                if (run_load(t->host, t->port, t->ctx, (enum scenario)sc, t->pid, slice, opt.warmup,
                             res))
                    die("%s: %s: cannot connect", cfg_name[t->cfg], sc_name[sc]);
            }
        for (int j = 0; j < n; j++) {
            struct result *res = &results[round][tgt[j].cfg][sc];
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

/* The 1-minute load average: how busy the machine was (other programs too). */
static double loadavg(void)
{
    double l = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = 0;
        fclose(f);
    }
    return l;
}

static double load_start;

static void report(void)
{
    printf("\nserver-bench: %d connections (%s), %.0f s per scenario and server in %d slices "
           "(each after %.1f s warm-up, servers taking turns), %d documents of %d bytes, "
           "%d round(s), medians over rounds\n",
           opt.conns, opt.blocking ? "one blocking thread each" : "non-blocking, epoll",
           opt.seconds, opt.slices, opt.warmup, opt.docs, BENCH_DOC_LEN, opt.rounds);
    printf("load average (1 min) at start %.2f, at end %.2f\n", load_start, loadavg());
    printf("%-8s %-7s %10s %8s %8s %7s %12s %12s %8s\n", "scenario", "config", "ops/s", "p50 ms",
           "p99 ms", "errors", "srv us/op", "cli us/op", "vs plain");
    for (int sc = 0; sc < SC_MEASURED; sc++)
        for (int cfg = 0; cfg < BENCH_MAX_CONFIGS; cfg++) {
            if (!have[cfg])
                continue;
            double ops = median(cfg, sc, offsetof(struct result, ops));
            char ratio[16] = "-";
            if (have[CFG_PLAIN] && cfg != CFG_PLAIN) {
                snprintf(ratio, sizeof ratio, "%.3f", median_ratio((enum config)cfg, sc));
            }
            printf("%-8s %-7s %10.0f %8.2f %8.2f %7ld %12.1f %12.1f %8s\n", sc_name[sc],
                   cfg_name[cfg], ops, median(cfg, sc, offsetof(struct result, p50)),
                   median(cfg, sc, offsetof(struct result, p99)), total_errors(cfg, sc),
                   median(cfg, sc, offsetof(struct result, srv_cpu_us)),
                   median(cfg, sc, offsetof(struct result, cli_cpu_us)), ratio);
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
    double ra = have[CFG_ATREST] ? median(CFG_ATREST, SC_READ, offsetof(struct result, ops)) : 0;
    double ca = have[CFG_ATREST] ? median(CFG_ATREST, SC_CREATE, offsetof(struct result, ops)) : 0;
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
            opt.verbose = 1;
        else
            usage();
#undef ARG
    }
    if (opt.seconds <= 0 || opt.warmup < 0 || opt.docs <= 0 || opt.conns <= 0 || opt.threads <= 0 ||
        opt.slices <= 0 || opt.rounds <= 0 || opt.rounds > BENCH_MAX_ROUNDS)
        usage();
    signal(SIGPIPE, SIG_IGN);
    load_start = loadavg();
    setvbuf(stdout, NULL, _IOLBF, 0);
    find_self_dir();
    if (!opt.peer_dir)
        opt.peer_dir = ATREST_BENCH_PEER_DIR;
    filler_init();
    sign_selftest();
    key_init(opt.key_b64);

    if (opt.target) {
        char host[64];
        int port;
        if (sscanf(opt.target, "%63[^:]:%d", host, &port) != 2)
            usage();
        SSL_CTX *ctx = ctx_new(opt.insecure ? NULL : opt.ca);
        if (!opt.insecure && !opt.ca)
            die("--target needs --ca PEM or --insecure");
        if (!no_setup) {
            setup_container(host, port, ctx);
            preload(host, port, ctx, target_pid, "target");
        }
        struct target t = {CFG_ATREST, host, port, ctx, target_pid};
        run_scenarios(&t, 1, 0);
        opt.rounds = 1;
        report();
        SSL_CTX_free(ctx);
        return 0;
    }

    SSL_CTX *insecure = ctx_new(NULL);
    int ncfg = opt.peer ? 3 : 2;
    for (int round = 0; round < opt.rounds; round++) {
        /* Start every server of the round, each with fresh folders and its
         * preload; then they take turns (run_scenarios); then stop them. */
        struct server_proc sp[BENCH_MAX_CONFIGS];
        struct target tgt[BENCH_MAX_CONFIGS];
        int n = 0;
        for (int cfg = 0; cfg < ncfg; cfg++) {
            if (opt.only && strcmp(opt.only, cfg_name[cfg]) != 0)
                continue;
            server_start((enum config)cfg, &sp[n], insecure);
            fprintf(stderr,
                    "server-bench: round %d: %s serving on port %d after %.0f ms (pid %d)\n",
                    round + 1, cfg_name[cfg], sp[n].port, sp[n].ready_ms, (int)sp[n].pid);
            tgt[n] = (struct target){(enum config)cfg, "127.0.0.1", sp[n].port,
                                     cfg == CFG_PEER ? insecure : ctx_new(sp[n].cert), sp[n].pid};
            setup_container("127.0.0.1", sp[n].port, tgt[n].ctx);
            preload("127.0.0.1", sp[n].port, tgt[n].ctx, sp[n].pid, cfg_name[cfg]);
            n++;
        }
        run_scenarios(tgt, n, round);
        for (int j = 0; j < n; j++) {
            double stop_ms;
            server_stop(&sp[j], &stop_ms);
            if (opt.verbose)
                fprintf(stderr, "server-bench: %s stopped in %.0f ms\n", cfg_name[tgt[j].cfg],
                        stop_ms);
            if (tgt[j].ctx != insecure)
                SSL_CTX_free(tgt[j].ctx);
        }
    }
    report();
    SSL_CTX_free(insecure);
    return 0;
}
