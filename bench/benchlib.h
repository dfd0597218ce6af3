/*
 * benchlib.h — what the HTTPS benchmarks of atrestd share (server-bench,
 * query-bench; docs/bench-server.md, docs/bench-query.md):
 *
 *   messages   bench_die, bench_prog (the prefix), bench_verbose
 *   clocks     bench_now_s/_ns, bench_sleep_s, CPU time of a process and of
 *              this one, the load average, a xorshift generator
 *   histogram  log-linear latency buckets (< 1 % error), percentiles in ms
 *   signing    Cosmos master-key authorization (COSMOS-REST.md), checked
 *              against its vectors by bench_sign_selftest; the x-ms-date cache
 *   load       bench_run_load: C keep-alive TLS connections, one request in
 *              flight each (closed loop), driven by T epoll threads or one
 *              blocking thread per connection; what a request is comes from a
 *              struct bench_scenario (build / finish callbacks)
 *   setup      bench_one_request, database and container creation, the
 *              preload in transactional batches (bench_preload)
 *   servers    atrestd (or any program) started on a free port with fresh
 *              temporary folders, readiness on GET /, SIGTERM at the end
 *
 * Invariants of the load engine:
 *   1. An operation is one or more requests on one connection: build() is
 *      called with c->in_op == 0 to start one and with c->in_op == 1 to send
 *      its next request (after finish() answered BENCH_MORE). Its latency
 *      runs from the first byte of its first request to the last byte of its
 *      last response.
 *   2. Only operations started after the warm-up count; ops/s divides them
 *      by the time from the end of the warm-up to the last completion. Once
 *      the time is up no operation starts, and those under way finish.
 *   3. A non-2xx answer fails the operation; so does a finish() that answers
 *      BENCH_FAIL. The first failure's status and body are kept.
 */
#ifndef ATREST_BENCHLIB_H
#define ATREST_BENCHLIB_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#define BENCH_ERR_MAX 600 /* bytes of the first error body kept */
#define BENCH_EMULATOR_KEY                                                                         \
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

/* ---- Messages, clocks ------------------------------------------------------ */

extern const char *bench_prog; /* every message starts "<bench_prog>: " */
extern int bench_verbose;

void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
double bench_now_s(void); /* CLOCK_MONOTONIC */
uint64_t bench_now_ns(void);
void bench_sleep_s(double s);
double bench_loadavg(void);         /* the 1-minute load average, 0 if unknown */
double bench_proc_cpu_s(pid_t pid); /* user + system seconds of pid (0 if pid <= 0) */
double bench_self_cpu_s(void);
uint64_t bench_rng_next(uint64_t *s); /* xorshift64*; *s must not be 0 */

/* ---- Latency histogram ------------------------------------------------------ */

#define BENCH_HIST_SUB_BITS 7 /* 128 sub-buckets per power of two */
#define BENCH_HIST_SUB      (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS  (64 * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t n;
    uint32_t b[BENCH_HIST_BUCKETS];
};

void bench_hist_add(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
double bench_hist_pct_ms(const struct bench_hist *h, double pct); /* 0 when empty */

/* ---- Master-key signing ------------------------------------------------------ */

/* Decode the base64 master key once (dies when it is not base64 of <= 64 bytes). */
void bench_key_init(const char *b64);
/* Check bench_sign against COSMOS-REST.md's vectors; dies on a mismatch.
 * Call before bench_key_init (it borrows the key slot). */
void bench_sign_selftest(void);
/* Write the url-encoded authorization for (verb, type, link, date) to out
 * (>= 128 bytes). verb, type and date_lc are lowercase. */
void bench_sign(const char *verb, const char *type, const char *link, const char *date_lc,
                char *out);

/* The x-ms-date of the current second and its lowercase twin for signing,
 * recomputed when the second changes (one per thread). */
struct bench_date {
    time_t t;
    char date[40], lc[40];
};
void bench_date_update(struct bench_date *d);

/* ---- TLS ----------------------------------------------------------------------- */

/* A client context, TLS 1.2+, read-ahead. ca_file NULL: no verification;
 * else ca_file is the only CA and the peer must be 127.0.0.1. */
SSL_CTX *bench_ctx_new(const char *ca_file);

/* Where the requests go. pid (0: unknown) is the server whose CPU time the
 * results report. */
struct bench_target {
    const char *host;
    int port;
    SSL_CTX *ctx;
    pid_t pid;
};

/* ---- The load engine ------------------------------------------------------------ */

struct bench_run;
struct bench_worker;

enum { BENCH_C_IDLE, BENCH_C_WRITE, BENCH_C_READ };
/* What finish() answers. */
enum { BENCH_DONE = 0, BENCH_MORE = 1, BENCH_FAIL = -1 };

struct bench_conn {
    struct bench_run *run;
    struct bench_worker *w;
    int fd;
    SSL *ssl;
    int state;               /* BENCH_C_* */
    char *wbuf;              /* build() writes the request here (bench_wreserve) ... */
    size_t wlen, woff, wcap; /* ... and sets wlen */
    char *rbuf;              /* the response: headers up to hdr_end, then the body */
    size_t rlen, rcap;
    size_t hdr_end; /* offset of the body, 0 while headers are incomplete */
    long clen;      /* Content-Length, -1 chunked */
    int status, close_after;
    uint64_t t0;     /* start of the operation */
    int counts;      /* the operation counts (started after the warm-up) */
    int in_op;       /* an operation is under way (invariant 1) */
    long batch_docs; /* documents the request writes (a preload's progress) */
    void *user;      /* scenario->conn_user bytes, zeroed at the start of a run */
};

struct bench_worker {
    struct bench_run *run;
    int id;
    pthread_t th;
    struct bench_conn *c;
    int nc, blocking;
    uint64_t rng;
    uint64_t seq; /* free for build(): e.g. a counter for new ids */
    struct bench_date date;
    struct bench_hist h;
    uint64_t ok;
    long docs_loaded;
};

struct bench_scenario {
    const char *name; /* in error messages */
    /* Write the next request to c->wbuf and set c->wlen; 0, or 1 when there
     * is no more work for this connection. */
    int (*build)(struct bench_conn *c);
    /* A 2xx response is complete (NULL: BENCH_DONE). BENCH_DONE ends the
     * operation, BENCH_MORE sends its next request, BENCH_FAIL (after
     * bench_conn_error) fails it. */
    int (*finish)(struct bench_conn *c, const char *body, size_t blen);
    void *arg;         /* for the callbacks: c->run->sc->arg */
    size_t conn_user;  /* bytes of c->user per connection */
    long max_ops;      /* > 0: operations started at most, over all connections */
    int until_done;    /* run until build() says no more (a preload): no clock, all count */
    long limit;        /* for build(): e.g. a preload's documents */
    double progress_s; /* until_done: print documents loaded every so often (0: never) */
    const char *progress_name;
};

struct bench_run {
    const struct bench_scenario *sc;
    const struct bench_target *t;
    atomic_int stop;
    atomic_long next;      /* for build(): e.g. a preload's next index */
    atomic_long started;   /* operations started (max_ops) */
    atomic_long docs_done; /* sum of batch_docs of successful requests */
    atomic_int workers_done;
    uint64_t measure_from; /* ns: operations started earlier do not count */
    int run_id;            /* 1, 2, ... within this process */
    pthread_mutex_t err_mu;
    int first_status;
    char first_err[BENCH_ERR_MAX + 1];
    atomic_long errors, reconnects;
};

/* How to load: C connections over T epoll threads, or one blocking thread
 * per connection. */
struct bench_load {
    int conns, threads, blocking;
};

/* What the runs of one scenario measured: raw sums over runs, then (after
 * each bench_run_load) the derived figures. */
struct bench_result {
    struct bench_hist h;
    uint64_t ok;                   /* counted operations */
    double secs, srv_cpu, cli_cpu; /* measured seconds, CPU seconds */
    long errors, reconnects, docs_loaded;
    int first_status;
    char first_err[BENCH_ERR_MAX + 1];
    /* derived */
    double ops, p50, p99;
    double srv_cpu_us, cli_cpu_us; /* CPU time per counted operation */
};

/* Run sc against t with ld's connections for warmup + seconds (until_done:
 * until the work is done) and add what was measured to *res. 0, or -1 when a
 * connection could not be opened. */
int bench_run_load(const struct bench_target *t, const struct bench_scenario *sc,
                   const struct bench_load *ld, double seconds, double warmup,
                   struct bench_result *res);

/* For build(): make room for need bytes in c->wbuf; append the headers every
 * request carries (Host, x-ms-date, x-ms-version, authorization, Accept)
 * after the request line at c->wbuf + at, and return the new end. */
void bench_wreserve(struct bench_conn *c, size_t need);
size_t bench_put_headers(struct bench_conn *c, size_t at, const char *verb, const char *type,
                         const char *link);
/* For finish(): the value of response header name (case-insensitive), not
 * NUL-terminated, its length in *len; NULL when absent. */
const char *bench_conn_header(const struct bench_conn *c, const char *name, size_t *len);
/* For finish(): count an error (the first one's text is kept). */
void bench_conn_error(struct bench_conn *c, const char *why, const char *body, size_t len);

/* ---- Setup requests ------------------------------------------------------------- */

/* One signed request on a fresh connection: the status (0 when the
 * connection failed), and up to outlen-1 bytes of body in out. */
int bench_one_request(const struct bench_target *t, const char *verb_uc, const char *type,
                      const char *link, const char *path, const char *body, char *out,
                      size_t outlen);
/* Create database db, and a container in it from its JSON definition; an
 * existing one (409) is fine, anything else dies. */
void bench_create_database(const struct bench_target *t, const char *db);
void bench_create_container(const struct bench_target *t, const char *db, const char *def_json);

/* Preload documents 0..docs-1: document i has partition key "p<i % pk_count>"
 * and the JSON write_doc writes (at most doc_max bytes). Transactional batches
 * of up to batch_ops documents of one partition key (batch k: partition
 * k % pk_count, its chunk k / pk_count), or single creates when the server
 * refuses batches. Dies on failure; says how long it took on stderr. */
struct bench_preload {
    const char *link; /* dbs/{db}/colls/{coll} */
    long docs;
    int pk_count, batch_ops;
    size_t doc_max;
    int (*write_doc)(char *out, long i, void *arg); /* returns its length */
    void *arg;
    double progress_s; /* print progress every so often (0: never) */
};
void bench_preload(const struct bench_target *t, const struct bench_load *ld,
                   const struct bench_preload *p, const char *name);

/* ---- Servers ----------------------------------------------------------------------- */

struct bench_server {
    pid_t pid;
    int port;
    char dir[PATH_MAX]; /* temporary folder: data/, keys/, server.log */
    char data[PATH_MAX + 16], keys[PATH_MAX + 16], log[PATH_MAX + 16];
    char listen[64], port_s[16]; /* "127.0.0.1:<port>", "<port>" */
    char cert[PATH_MAX + 64];    /* keys/tls/server.crt (atrestd) */
    double ready_ms;
};

/* The folder this program's executable is in. */
const char *bench_self_dir(void);
int bench_free_port(void);
/* Make the folder <tmp>/<bench_prog>-<tag>-XXXXXX, pick a free port. */
void bench_server_prepare(struct bench_server *sp, const char *tmp, const char *tag);
/* Fill argv (room for 10 + nextra) to start atrestd exe on sp's folders and
 * port with the master key; returns argc (argv[argc] is NULL). */
int bench_atrestd_argv(const struct bench_server *sp, const char *exe, const char *key_b64,
                       const char *const *extra, int nextra, const char **argv);
/* Start argv (stdout and stderr to sp->log), wait until GET / answers 200
 * over TLS without verification (10 s at most); with want_cert the server's
 * certificate must be at sp->keys/tls/server.crt (sp->cert). Dies on failure. */
void bench_server_launch(struct bench_server *sp, const char *const *argv, int want_cert);
/* SIGTERM (SIGKILL after 30 s), report an unclean exit, remove the folder
 * unless keep. */
void bench_server_stop(struct bench_server *sp, int keep, double *stop_ms);

#endif
