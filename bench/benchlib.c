/*
 * benchlib.c — the shared part of the HTTPS benchmarks (benchlib.h): clocks,
 * the latency histogram, master-key signing, TLS connections, the
 * closed-loop load engine, setup requests, the batch preload and starting
 * and stopping servers. Moved here from server_bench.c unchanged in what it
 * does; what a request is comes from the program's struct bench_scenario.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509v3.h>

#include "benchlib.h"

const char *bench_prog = "bench";
int bench_verbose;

/* ---- Messages, clocks ------------------------------------------------------ */

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

double bench_loadavg(void)
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

double bench_proc_cpu_s(pid_t pid)
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

double bench_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

uint64_t bench_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---- Latency histogram: log-linear buckets, < 1% relative error --------- */

static unsigned hist_index(uint64_t v)
{
    if (v < BENCH_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - BENCH_HIST_SUB_BITS;
    return (shift + 1) * BENCH_HIST_SUB + (unsigned)((v >> shift) & (BENCH_HIST_SUB - 1));
}

/* The middle of bucket i's value range. */
static double hist_value(unsigned i)
{
    if (i < BENCH_HIST_SUB)
        return i;
    unsigned shift = i / BENCH_HIST_SUB - 1;
    uint64_t lo = ((uint64_t)BENCH_HIST_SUB + (i % BENCH_HIST_SUB)) << shift;
    return (double)lo + (double)(1ull << shift) / 2;
}

void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->n++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->n += src->n;
}

double bench_hist_pct_ms(const struct bench_hist *h, double pct)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(pct / 100.0 * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return hist_value(i) / 1e6;
    }
    return 0;
}

/* ---- Master-key signing (COSMOS-REST.md) -------------------------------- */

static unsigned char mkey[64];
static int mkey_len;

void bench_sign(const char *verb, const char *type, const char *link, const char *date_lc,
                char *out)
{
    char text[512];
    int n = snprintf(text, sizeof text, "%s\n%s\n%s\n%s\n\n", verb, type, link, date_lc);
    if (n < 0 || (size_t)n >= sizeof text)
        bench_die("resource link too long to sign");
    unsigned char mac[32];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), mkey, mkey_len, (unsigned char *)text, (size_t)n, mac, &maclen))
        bench_die("HMAC failed");
    char sig[48];
    EVP_EncodeBlock((unsigned char *)sig, mac, 32);
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

void bench_sign_selftest(void)
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
    mkey_len = EVP_DecodeBlock(mkey, (const unsigned char *)BENCH_EMULATOR_KEY,
                               strlen(BENCH_EMULATOR_KEY));
    mkey_len -= 2; /* "==" padding */
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char auth[160], dec[160];
        bench_sign(v[i].verb, v[i].type, v[i].link, "thu, 27 apr 2017 00:51:12 gmt", auth);
        url_decode(auth, dec);
        const char *sig = strstr(dec, "sig=");
        if (!sig || strcmp(sig + 4, v[i].sig) != 0)
            bench_die("signing self-test failed for %s %s '%s': %s", v[i].verb, v[i].type,
                      v[i].link, dec);
    }
    memcpy(mkey, saved, sizeof saved);
    mkey_len = saved_len;
    OPENSSL_cleanse(saved, sizeof saved);
}

void bench_key_init(const char *b64)
{
    size_t len = strlen(b64);
    unsigned char buf[128];
    if (len == 0 || len % 4 || len / 4 * 3 > sizeof buf)
        bench_die("--master-key: not base64 of at most 64 bytes");
    int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0)
        bench_die("--master-key: not base64");
    if (len >= 1 && b64[len - 1] == '=')
        n--;
    if (len >= 2 && b64[len - 2] == '=')
        n--;
    if (n > (int)sizeof mkey)
        bench_die("--master-key: longer than 64 bytes");
    memcpy(mkey, buf, (size_t)n);
    mkey_len = n;
    OPENSSL_cleanse(buf, sizeof buf);
}

void bench_date_update(struct bench_date *d)
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

/* ---- TLS connections ---------------------------------------------------------- */

SSL_CTX *bench_ctx_new(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        bench_die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Read whole socket buffers instead of record header, then record: one
     * read(2) per response instead of two or more. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
            bench_die("cannot load CA %s", ca_file);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1");
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

void bench_wreserve(struct bench_conn *c, size_t need)
{
    if (c->wcap >= need)
        return;
    size_t cap = c->wcap ? c->wcap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(c->wbuf, cap);
    if (!p)
        bench_die("out of memory");
    c->wbuf = p;
    c->wcap = cap;
}

size_t bench_put_headers(struct bench_conn *c, size_t at, const char *verb, const char *type,
                         const char *link)
{
    struct bench_worker *w = c->w;
    bench_date_update(&w->date);
    char auth[160];
    bench_sign(verb, type, link, w->date.lc, auth);
    return at + (size_t)sprintf(c->wbuf + at,
                                "Host: 127.0.0.1:%d\r\n"
                                "x-ms-date: %s\r\n"
                                "x-ms-version: 2020-07-15\r\n"
                                "authorization: %s\r\n"
                                "Accept: application/json\r\n",
                                c->run->t->port, w->date.date, auth);
}

const char *bench_conn_header(const struct bench_conn *c, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *end = c->rbuf + c->hdr_end;
    for (const char *p = memchr(c->rbuf, '\n', c->hdr_end); p && p < end;
         p = memchr(p, '\n', (size_t)(end - p))) {
        p++;
        if ((size_t)(end - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            v += strspn(v, " \t");
            const char *e = memchr(v, '\r', (size_t)(end - v));
            *len = e ? (size_t)(e - v) : 0;
            return v;
        }
    }
    return NULL;
}

void bench_conn_error(struct bench_conn *c, const char *why, const char *body, size_t len)
{
    struct bench_run *r = c->run;
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

static void conn_close(struct bench_conn *c)
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
static int conn_open(struct bench_conn *c, int nonblocking)
{
    const struct bench_target *t = c->run->t;
    c->fd = tcp_connect(t->host, t->port);
    if (c->fd < 0) {
        fprintf(stderr, "%s: connect %s:%d: %s\n", bench_prog, t->host, t->port, strerror(errno));
        return -1;
    }
    c->ssl = SSL_new(t->ctx);
    if (!c->ssl)
        bench_die("SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    if (SSL_connect(c->ssl) != 1) {
        fprintf(stderr, "%s: TLS handshake with %s:%d failed: ", bench_prog, t->host, t->port);
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "\n");
        conn_close(c);
        return -1;
    }
    if (nonblocking)
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->state = BENCH_C_IDLE;
    return 0;
}

/* Parse what c->rbuf holds. Returns 1 when the response is complete (and
 * sets *body / *blen), 0 when more is needed, -1 on a malformed response. */
static int parse_response(struct bench_conn *c, const char **body, size_t *blen)
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

/* A response is complete: account for it (invariants 1 and 3). */
static void finish_request(struct bench_conn *c, const char *body, size_t blen)
{
    struct bench_run *r = c->run;
    struct bench_worker *w = c->w;
    uint64_t t1 = bench_now_ns();
    int rc;
    if (c->status < 200 || c->status >= 300) {
        char why[96];
        snprintf(why, sizeof why, "%s: HTTP %d", r->sc->name, c->status);
        bench_conn_error(c, why, body, blen);
        rc = BENCH_FAIL;
    } else {
        rc = r->sc->finish ? r->sc->finish(c, body, blen) : BENCH_DONE;
    }
    if (rc == BENCH_MORE)
        return;
    c->in_op = 0;
    if (rc != BENCH_DONE)
        return;
    if (c->batch_docs) {
        w->docs_loaded += c->batch_docs;
        atomic_fetch_add_explicit(&r->docs_done, c->batch_docs, memory_order_relaxed);
    }
    if (c->counts) {
        w->ok++;
        bench_hist_add(&w->h, t1 - c->t0);
    }
}

/*
 * Drive one connection as far as it goes without blocking. Returns 0 when it
 * waits for the socket, 1 when it is done (stop asked, or no more work), -1
 * when the connection failed (closed by the server, reset).
 */
static int conn_drive(struct bench_conn *c)
{
    struct bench_run *r = c->run;
    const struct bench_scenario *sc = r->sc;
    for (;;) {
        switch (c->state) {
        case BENCH_C_IDLE:
            if (!c->in_op) {
                if (atomic_load_explicit(&r->stop, memory_order_relaxed))
                    return 1;
                if (sc->max_ops > 0 && atomic_fetch_add(&r->started, 1) >= sc->max_ops)
                    return 1;
            }
            c->batch_docs = 0;
            if (sc->build(c))
                return 1;
            if (!c->in_op) {
                c->t0 = bench_now_ns();
                c->counts = c->t0 >= r->measure_from;
                c->in_op = 1;
            }
            c->woff = 0;
            c->state = BENCH_C_WRITE;
            /* fall through */
        case BENCH_C_WRITE: {
            int n = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
            if (n > 0) {
                c->woff += (size_t)n;
                if (c->woff < c->wlen)
                    continue;
                c->state = BENCH_C_READ;
                c->rlen = 0;
                c->hdr_end = 0;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                return 0;
            return -1;
        }
        case BENCH_C_READ: {
            if (c->rcap - c->rlen < 16384) {
                size_t cap = c->rcap ? c->rcap * 2 : 65536;
                char *p = realloc(c->rbuf, cap);
                if (!p)
                    bench_die("out of memory");
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
                    bench_conn_error(c, "malformed response", c->rbuf, c->rlen);
                    c->in_op = 0;
                    return -1;
                }
                if (p == 0)
                    continue;
                finish_request(c, body, blen);
                c->state = BENCH_C_IDLE;
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

static int conn_restart(struct bench_conn *c, int epfd)
{
    struct bench_run *r = c->run;
    if (c->state != BENCH_C_IDLE) {
        c->status = 0;
        bench_conn_error(c, "connection closed by the server mid-request", NULL, 0);
        /* a preload request that failed is lost: count it as an error only;
         * an operation of several requests is abandoned */
        c->in_op = 0;
        c->state = BENCH_C_IDLE;
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
    struct bench_worker *w = arg;
    struct bench_run *r = w->run;
    if (w->nc == 1 && w->blocking) {
        struct bench_conn *c = &w->c[0];
        for (;;) {
            int rc = conn_drive(c);
            if (rc == 1)
                break;
            if (atomic_load(&r->stop) && c->state == BENCH_C_IDLE && !c->in_op)
                break;
            if (conn_restart(c, -1) != 0)
                break;
        }
        atomic_fetch_add(&r->workers_done, 1);
        return NULL;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        bench_die("epoll_create1: %s", strerror(errno));
    int active = 0;
    for (int i = 0; i < w->nc; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &w->c[i]};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, w->c[i].fd, &ev) != 0)
            bench_die("epoll_ctl: %s", strerror(errno));
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
            bench_die("epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            struct bench_conn *c = evs[k].data.ptr;
            int i = (int)(c - w->c);
            if (done[i])
                continue;
            int rc = conn_drive(c);
            while (rc < 0 && !(atomic_load(&r->stop) && c->state == BENCH_C_IDLE && !c->in_op)) {
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
                if (!done[i] && w->c[i].state == BENCH_C_IDLE && !w->c[i].in_op) {
                    done[i] = 1;
                    active--;
                }
    }
    free(done);
    close(epfd);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void result_finish(struct bench_result *res)
{
    res->ops = res->secs > 0 ? (double)res->ok / res->secs : 0;
    res->p50 = bench_hist_pct_ms(&res->h, 50);
    res->p99 = bench_hist_pct_ms(&res->h, 99);
    res->srv_cpu_us = res->ok ? res->srv_cpu * 1e6 / (double)res->ok : 0;
    res->cli_cpu_us = res->ok ? res->cli_cpu * 1e6 / (double)res->ok : 0;
}

/* Sleep until deadline (bench_now_s; 0: none) or until every worker is done,
 * printing a preload's progress every sc->progress_s seconds. */
static void wait_workers(struct bench_run *r, int nthreads, double deadline)
{
    const struct bench_scenario *sc = r->sc;
    double start = bench_now_s(), next_progress = start + sc->progress_s;
    for (;;) {
        double now = bench_now_s();
        if (atomic_load(&r->workers_done) == nthreads || (deadline > 0 && now >= deadline))
            return;
        if (sc->progress_s > 0 && now >= next_progress) {
            long done = atomic_load(&r->docs_done);
            fprintf(stderr, "%s: %s: %ld of %ld documents after %.0f s (%.0f/s)\n", bench_prog,
                    sc->progress_name ? sc->progress_name : sc->name, done, sc->limit, now - start,
                    (double)done / (now - start));
            next_progress += sc->progress_s;
        }
        double step = 0.1;
        if (deadline > 0 && deadline - now < step)
            step = deadline - now;
        bench_sleep_s(step);
    }
}

int bench_run_load(const struct bench_target *t, const struct bench_scenario *sc,
                   const struct bench_load *ld, double seconds, double warmup,
                   struct bench_result *res)
{
    static struct bench_run r;
    static int run_counter; /* new ids never repeat within one process */
    int run_id = ++run_counter;
    memset(&r, 0, sizeof r);
    r.sc = sc;
    r.t = t;
    r.run_id = run_id;
    pthread_mutex_init(&r.err_mu, NULL);

    int nthreads = ld->blocking ? ld->conns : ld->threads;
    if (nthreads > ld->conns)
        nthreads = ld->conns;
    struct bench_worker *ws = calloc((size_t)nthreads, sizeof *ws);
    struct bench_conn *cs = calloc((size_t)ld->conns, sizeof *cs);
    if (!ws || !cs)
        bench_die("out of memory");
    int ci = 0;
    for (int k = 0; k < nthreads; k++) {
        struct bench_worker *w = &ws[k];
        w->run = &r;
        w->id = k;
        w->blocking = ld->blocking;
        w->rng = 0x853c49e6748fea9bull ^ ((uint64_t)(k + 1) * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)run_id << 32);
        w->nc = ld->conns / nthreads + (k < ld->conns % nthreads);
        w->c = &cs[ci];
        for (int i = 0; i < w->nc; i++, ci++) {
            cs[ci].run = &r;
            cs[ci].w = w;
            cs[ci].fd = -1;
            if (sc->conn_user && !(cs[ci].user = calloc(1, sc->conn_user)))
                bench_die("out of memory");
            if (conn_open(&cs[ci], !ld->blocking) != 0)
                return -1;
        }
    }

    double cpu0_srv = 0, cpu0_cli = 0;
    double start = bench_now_s();
    r.measure_from = sc->until_done ? 0 : bench_now_ns() + (uint64_t)(warmup * 1e9);
    for (int k = 0; k < nthreads; k++)
        if (pthread_create(&ws[k].th, NULL, worker_main, &ws[k]) != 0)
            bench_die("pthread_create failed");
    double t_measure = start;
    if (!sc->until_done) {
        bench_sleep_s(warmup);
        t_measure = bench_now_s();
        cpu0_srv = bench_proc_cpu_s(t->pid);
        cpu0_cli = bench_self_cpu_s();
        wait_workers(&r, nthreads, t_measure + seconds);
        atomic_store(&r.stop, 1);
    } else {
        cpu0_srv = bench_proc_cpu_s(t->pid);
        cpu0_cli = bench_self_cpu_s();
        if (sc->progress_s > 0)
            wait_workers(&r, nthreads, 0);
    }
    for (int k = 0; k < nthreads; k++)
        pthread_join(ws[k].th, NULL);
    double end = bench_now_s();
    double cpu_srv = bench_proc_cpu_s(t->pid) - cpu0_srv, cpu_cli = bench_self_cpu_s() - cpu0_cli;

    for (int k = 0; k < nthreads; k++) {
        bench_hist_merge(&res->h, &ws[k].h);
        res->ok += ws[k].ok;
        res->docs_loaded += ws[k].docs_loaded;
    }
    for (int i = 0; i < ld->conns; i++) {
        conn_close(&cs[i]);
        free(cs[i].wbuf);
        free(cs[i].rbuf);
        free(cs[i].user);
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

/* ---- Setup requests ------------------------------------------------------------ */

int bench_one_request(const struct bench_target *t, const char *verb_uc, const char *type,
                      const char *link, const char *path, const char *body, char *out,
                      size_t outlen)
{
    static const struct bench_scenario sc = {.name = "setup"};
    static struct bench_run r;
    memset(&r, 0, sizeof r);
    r.sc = &sc;
    r.t = t;
    struct bench_worker w = {.run = &r};
    struct bench_conn c = {.run = &r, .w = &w, .fd = -1};
    if (out && outlen)
        out[0] = 0;
    ERR_clear_error();
    int fd = tcp_connect(t->host, t->port);
    if (fd < 0)
        return 0;
    c.fd = fd;
    c.ssl = SSL_new(t->ctx);
    SSL_set_fd(c.ssl, fd);
    SSL_set_tlsext_host_name(c.ssl, "localhost");
    if (SSL_connect(c.ssl) != 1) {
        if (bench_verbose)
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
    bench_wreserve(&c, 2048 + blen);
    size_t at = (size_t)sprintf(c.wbuf, "%s %s HTTP/1.1\r\n", verb_uc, path);
    at = bench_put_headers(&c, at, verb_lc, type, link);
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

void bench_create_database(const struct bench_target *t, const char *db)
{
    char body[256], out[1024];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", db);
    int st = bench_one_request(t, "POST", "dbs", "", "/dbs", body, out, sizeof out);
    if (st != 201 && st != 409)
        bench_die("POST /dbs: HTTP %d %s", st, out);
}

void bench_create_container(const struct bench_target *t, const char *db, const char *def_json)
{
    char link[256], path[256], out[1024];
    snprintf(link, sizeof link, "dbs/%s", db);
    snprintf(path, sizeof path, "/dbs/%s/colls", db);
    int st = bench_one_request(t, "POST", "colls", link, path, def_json, out, sizeof out);
    if (st != 201 && st != 409)
        bench_die("POST %s: HTTP %d %s", path, st, out);
}

/* ---- Preload ------------------------------------------------------------------- */

static long preload_batches(const struct bench_preload *p)
{
    long per_pk = (p->docs + p->pk_count - 1) / p->pk_count;
    return (long)p->pk_count * ((per_pk + p->batch_ops - 1) / p->batch_ops);
}

/* Batch k: partition key value k % pk_count, documents
 * pk + pk_count * (batch_ops * (k / pk_count) + m), m < batch_ops. */
static int preload_build_batch(struct bench_conn *c)
{
    struct bench_run *r = c->run;
    const struct bench_preload *p = r->sc->arg;
    long nbatch = preload_batches(p), k, pk, first;
    do {
        k = atomic_fetch_add(&r->next, 1);
        if (k >= nbatch)
            return 1;
        pk = k % p->pk_count;
        first = pk + (long)p->pk_count * p->batch_ops * (k / p->pk_count);
    } while (first >= p->docs); /* fewer documents than partitions */
    size_t body_max = (size_t)p->batch_ops * (p->doc_max + 128) + 16;
    bench_wreserve(c, 2048 + body_max);
    char *body = c->wbuf + 2048, *b = body;
    *b++ = '[';
    long n = 0;
    for (long i = first; i < p->docs && n < p->batch_ops; i += p->pk_count, n++) {
        if (n)
            *b++ = ',';
        b += sprintf(b,
                     "{\"operationType\":\"Create\",\"partitionKey\":\"[\\\"p%ld\\\"]\","
                     "\"resourceBody\":",
                     pk);
        b += p->write_doc(b, i, p->arg);
        *b++ = '}';
    }
    *b++ = ']';
    size_t blen = (size_t)(b - body);
    c->batch_docs = n;
    char link[256];
    snprintf(link, sizeof link, "%s", p->link);
    size_t at = (size_t)sprintf(c->wbuf, "POST /%s/docs HTTP/1.1\r\n", link);
    at = bench_put_headers(c, at, "post", "docs", link);
    at += (size_t)sprintf(c->wbuf + at,
                          "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n"
                          "x-ms-cosmos-is-batch-request: true\r\n"
                          "x-ms-cosmos-batch-atomic: true\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          pk, blen);
    memmove(c->wbuf + at, body, blen);
    c->wlen = at + blen;
    return 0;
}

static int preload_finish_batch(struct bench_conn *c, const char *body, size_t blen)
{
    if (memmem(body, blen, "\"statusCode\":201", 16) == NULL) {
        bench_conn_error(c, "preload batch: no 201 in the answer", body, blen);
        return BENCH_FAIL;
    }
    return BENCH_DONE;
}

static int preload_build_create(struct bench_conn *c)
{
    struct bench_run *r = c->run;
    const struct bench_preload *p = r->sc->arg;
    long i = atomic_fetch_add(&r->next, 1);
    if (i >= p->docs)
        return 1;
    c->batch_docs = 1;
    bench_wreserve(c, 2048 + p->doc_max);
    char *doc = c->wbuf + 2048;
    int n = p->write_doc(doc, i, p->arg);
    size_t at = (size_t)sprintf(c->wbuf, "POST /%s/docs HTTP/1.1\r\n", p->link);
    at = bench_put_headers(c, at, "post", "docs", p->link);
    at += (size_t)sprintf(c->wbuf + at,
                          "x-ms-documentdb-partitionkey: [\"p%ld\"]\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n",
                          i % p->pk_count, n);
    memmove(c->wbuf + at, doc, (size_t)n);
    c->wlen = at + (size_t)n;
    return 0;
}

void bench_preload(const struct bench_target *t, const struct bench_load *ld,
                   const struct bench_preload *p, const char *name)
{
    double t0 = bench_now_s();
    struct bench_scenario batch = {
        .name = "preload-batch",
        .build = preload_build_batch,
        .finish = preload_finish_batch,
        .arg = (void *)p,
        .until_done = 1,
        .limit = p->docs,
        .progress_s = p->progress_s,
        .progress_name = name,
    };
    struct bench_scenario create = batch;
    create.name = "preload-create";
    create.build = preload_build_create;
    create.finish = NULL;
    static struct bench_result res;
    memset(&res, 0, sizeof res);
    const struct bench_scenario *sc = &batch;
    if (bench_run_load(t, sc, ld, 0, 0, &res) != 0)
        bench_die("%s: preload: cannot connect", name);
    if (res.errors) {
        if (bench_verbose)
            fprintf(stderr, "%s: %s: batch preload failed (%s); creates instead\n", bench_prog,
                    name, res.first_err);
        sc = &create;
        memset(&res, 0, sizeof res);
        if (bench_run_load(t, sc, ld, 0, 0, &res) != 0)
            bench_die("%s: preload: cannot connect", name);
        /* ids already created by successful batches answer 409: fine */
        if (res.errors && res.first_status != 409)
            bench_die("%s: preload failed: %s", name, res.first_err);
    }
    fprintf(stderr, "%s: %s: preloaded %ld documents in %.1f s (%s)\n", bench_prog, name, p->docs,
            bench_now_s() - t0, sc->name);
}

/* ---- Servers ---------------------------------------------------------------- */

const char *bench_self_dir(void)
{
    static char dir[PATH_MAX];
    if (!dir[0]) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            bench_die("readlink /proc/self/exe: %s", strerror(errno));
        exe[n] = 0;
        snprintf(dir, sizeof dir, "%s", dirname(exe));
    }
    return dir;
}

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        bench_die("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bench_server_prepare(struct bench_server *sp, const char *tmp, const char *tag)
{
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s/%s-%s-XXXXXX", tmp, bench_prog, tag);
    if (!mkdtemp(sp->dir))
        bench_die("mkdtemp %s: %s", sp->dir, strerror(errno));
    sp->port = bench_free_port();
    snprintf(sp->data, sizeof sp->data, "%s/data", sp->dir);
    snprintf(sp->keys, sizeof sp->keys, "%s/keys", sp->dir);
    snprintf(sp->log, sizeof sp->log, "%s/server.log", sp->dir);
    snprintf(sp->listen, sizeof sp->listen, "127.0.0.1:%d", sp->port);
    snprintf(sp->port_s, sizeof sp->port_s, "%d", sp->port);
}

int bench_atrestd_argv(const struct bench_server *sp, const char *exe, const char *key_b64,
                       const char *const *extra, int nextra, const char **argv)
{
    int argc = 0;
    argv[argc++] = exe;
    argv[argc++] = "--data-dir";
    argv[argc++] = sp->data;
    argv[argc++] = "--key-dir";
    argv[argc++] = sp->keys;
    argv[argc++] = "--listen";
    argv[argc++] = sp->listen;
    argv[argc++] = "--master-key";
    argv[argc++] = key_b64;
    for (int i = 0; i < nextra; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return argc;
}

void bench_server_launch(struct bench_server *sp, const char *const *argv, int want_cert)
{
    double t0 = bench_now_s();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* the server goes when this program goes, however it ends */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(sp->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
    SSL_CTX *insecure = bench_ctx_new(NULL);
    struct bench_target t = {"127.0.0.1", sp->port, insecure, pid};
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            bench_die("%s exited before serving; its log: %s", argv[0], sp->log);
        if (bench_one_request(&t, "GET", "", "", "/", NULL, NULL, 0) == 200)
            break;
        if (bench_now_s() - t0 > 10)
            bench_die("%s does not answer GET / after 10 s; its log: %s", argv[0], sp->log);
        usleep(2000);
    }
    SSL_CTX_free(insecure);
    sp->ready_ms = (bench_now_s() - t0) * 1e3;
    if (want_cert) {
        snprintf(sp->cert, sizeof sp->cert, "%s/tls/server.crt", sp->keys);
        if (access(sp->cert, R_OK) != 0)
            bench_die("no certificate at %s", sp->cert);
    }
}

void bench_server_stop(struct bench_server *sp, int keep, double *stop_ms)
{
    double t0 = bench_now_s();
    kill(sp->pid, SIGTERM);
    int st = 0;
    for (;;) {
        pid_t p = waitpid(sp->pid, &st, WNOHANG);
        if (p == sp->pid)
            break;
        if (bench_now_s() - t0 > 30) {
            fprintf(stderr, "%s: server %d ignores SIGTERM for 30 s: SIGKILL\n", bench_prog,
                    (int)sp->pid);
            kill(sp->pid, SIGKILL);
            waitpid(sp->pid, &st, 0);
            break;
        }
        usleep(2000);
    }
    if (stop_ms)
        *stop_ms = (bench_now_s() - t0) * 1e3;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM))
        fprintf(stderr, "%s: server exited with status 0x%x (log: %s)\n", bench_prog, st, sp->log);
    if (!keep)
        nftw(sp->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
