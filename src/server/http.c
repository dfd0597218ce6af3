/*
 * http.c — libmicrohttpd glue.
 *
 * Threads: libmicrohttpd runs a small pool of epoll threads (one per core)
 * that do TLS and HTTP for every connection. Requests that cannot block
 * (GET/HEAD: point reads, feeds, metadata) are answered right there, with
 * no thread switch. Requests that may block — writes waiting for their
 * group commit, queries that scan — are handed to a pool of worker threads:
 * the connection is suspended, a worker runs the handler, and resumes it.
 * That keeps the epoll threads free and lets many writes wait on one fsync.
 *
 * Life of a request:
 *   1. first access-handler call: allocate struct req, check Content-Length
 *      (beyond SRV_BODY_MAX the answer is 413 at once) and Transfer-Encoding
 *      (only "chunked", never with Content-Length), return MHD_YES
 *      without queueing (0.9.75 answers "Connection: close" to a response
 *      queued on the first call; keep-alive matters to the SDKs);
 *   2. calls with upload data: append to r->body (bounded);
 *   3. last call (no more data): GET/HEAD are routed inline and queued;
 *      others are suspended and queued for a worker (r->qnext);
 *   4. the worker routes, sets r->ready and resumes the connection; MHD
 *      calls the handler again and the response is queued;
 *   Media uploads (attachments.c) differ in steps 1-2: the first call
 *      authenticates and checks them at once (limit SRV_MEDIA_MAX), and
 *      each piece of the body streams to attachments_upload_data instead
 *      of r->body. A media response (r->ms) is sent from a callback, chunk
 *      by chunk; a chunk that fails its check cuts the connection.
 *   5. completion callback: log one line if asked (--log-requests) (method, resource type,
 *      status, latency; never ids or data) and free. A connection whose
 *      upload was refused unread is closed by the linger thread: it shuts
 *      down the sending side and reads the rest of what the client sends for
 *      a while, so the client reads the 413 instead of a reset.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"
#include "server/srv.h"
#include "server/tlsio.h"

#define WORKERS      64   /* threads that may block on a group commit */
#define LINGER_MAX   16   /* connections lingering at once */
#define LINGER_MS    2000 /* how long a refused upload is drained */
#define LINGER_BYTES (64 << 20)

struct http {
    struct MHD_Daemon *d;
    struct server *srv;
    pthread_t workers[WORKERS];
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a request was queued, or stopping */
    pthread_cond_t idle; /* inflight dropped to 0 */
    struct req *head, *tail;
    int stopping;
    int inflight; /* queued or running on a worker, or suspended for a write */
    int closing;  /* http_stop began: no request may be suspended any more */
    int lingering;
};

static struct http *the_http; /* for the linger count; one server per process */

/* r's answer is ready (or its asynchronous result stored): wake its
 * connection, and http_stop() once nothing is in flight. */
static void unreserve(struct http *h);

static void resume(struct http *h, struct req *r)
{
    r->ready = 1;
    MHD_resume_connection(r->conn);
    unreserve(h);
}

static void *worker_main(void *p)
{
    struct http *h = p;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->head && !h->stopping)
            pthread_cond_wait(&h->work, &h->mu);
        if (!h->head)
            break;
        struct req *r = h->head;
        h->head = r->qnext;
        if (!h->head)
            h->tail = NULL;
        pthread_mutex_unlock(&h->mu);
        router_dispatch(r); /* never asynchronous here: r->async_ok is 0 */
        resume(h, r);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Count a request that may be suspended as in flight, unless http_stop
 * began (then -1: answer it at once). Checked and counted under one lock,
 * so http_stop never sees no request in flight while one is about to be
 * suspended (MHD aborts when stopped with a suspended connection). */
static int reserve(struct http *h)
{
    pthread_mutex_lock(&h->mu);
    int ok = !h->closing;
    if (ok)
        h->inflight++;
    pthread_mutex_unlock(&h->mu);
    return ok ? 0 : -1;
}

/* Undo reserve(): for a request answered without being suspended, or
 * resumed (resume()). */
static void unreserve(struct http *h)
{
    pthread_mutex_lock(&h->mu);
    if (--h->inflight == 0)
        pthread_cond_signal(&h->idle);
    pthread_mutex_unlock(&h->mu);
}

/* Queue r for a worker (reserve() done). */
static void hand_off(struct http *h, struct req *r)
{
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&h->mu);
    r->qnext = NULL;
    if (h->tail)
        h->tail->qnext = r;
    else
        h->head = r;
    h->tail = r;
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->mu);
}

/* Only within a dispatch that on_request reserved (r->async_ok). */
void http_suspend(struct req *r)
{
    MHD_suspend_connection(r->conn);
    r->suspended = 1;
}

void http_complete(struct req *r, int rc)
{
    r->async_rc = rc;
    resume(the_http, r);
}

void resp_list(struct req *r, const char *rid, const char *key, json_t *list)
{
    json_t *o = json_pack("{s:s,s:O,s:I}", "_rid", rid, key, list, "_count",
                          (json_int_t)json_array_size(list));
    resp_json(r, 200, o);
    resp_header(r, "x-ms-item-count", "%zu", json_array_size(list));
    json_decref(o);
}

/* Document writes (create, upsert, replace, delete) are prepared on the
 * epoll thread and committed asynchronously: no worker thread involved. */
static int async_candidate(const struct req *r)
{
    if (r->nseg < 5 || r->nseg > 6 || strcmp(r->segs[0], "dbs") != 0 ||
        strcmp(r->segs[2], "colls") != 0 || strcmp(r->segs[4], "docs") != 0)
        return 0;
    if (r->nseg == 6)
        return r->verb == SRV_PUT || r->verb == SRV_DELETE;
    if (r->verb != SRV_POST)
        return 0;
    struct req *q = (struct req *)r;
    return !req_header_true(q, "x-ms-cosmos-is-batch-request") && !req_is_query(q);
}

int req_is_query(struct req *r)
{
    const char *ct = req_header(r, "content-type");
    return r->verb == SRV_POST && (req_header_true(r, "x-ms-documentdb-isquery") ||
                                   req_header_true(r, "x-ms-cosmos-is-query-plan-request") ||
                                   (ct && strncmp(ct, "application/query+json", 22) == 0));
}

/* Drain and close a socket whose request body was refused (see top). */
static void *linger_main(void *p)
{
    int fd = (int)(intptr_t)p;
    shutdown(fd, SHUT_WR);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    static char sink[65536];
    size_t total = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= LINGER_MS || total >= LINGER_BYTES)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(LINGER_MS - ms)) <= 0)
            break;
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        if (n > 0)
            total += (size_t)n;
    }
    close(fd);
    pthread_mutex_lock(&the_http->mu);
    the_http->lingering--;
    pthread_mutex_unlock(&the_http->mu);
    return NULL;
}

static void start_linger(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct http *h = the_http;
    if (!ci || !h)
        return;
    pthread_mutex_lock(&h->mu);
    int ok = h->lingering < LINGER_MAX && !h->stopping;
    if (ok)
        h->lingering++;
    pthread_mutex_unlock(&h->mu);
    if (!ok)
        return;
    int fd = dup(ci->connect_fd); /* the socket outlives MHD's close */
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (fd < 0 || pthread_create(&t, &a, linger_main, (void *)(intptr_t)fd) != 0) {
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&h->mu);
        h->lingering--;
        pthread_mutex_unlock(&h->mu);
    }
    pthread_attr_destroy(&a);
}

const char *req_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int req_header_true(struct req *r, const char *name)
{
    const char *v = req_header(r, name);
    return v && strcasecmp(v, "true") == 0;
}

void resp_header(struct req *r, const char *name, const char *fmt, ...)
{
    if (r->nhdr == SRV_MAX_HDRS)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (int i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->hdrs[i].name, name) == 0) {
            free(r->hdrs[i].value);
            r->hdrs[i].value = strdup(buf);
            return;
        }
    r->hdrs[r->nhdr].name = name;
    r->hdrs[r->nhdr].value = strdup(buf);
    if (r->hdrs[r->nhdr].value)
        r->nhdr++;
}

void resp_body(struct req *r, int status, char *text, size_t len)
{
    doc_buf_free(&r->out);
    r->out.p = text;
    r->out.len = len;
    r->out.cap = text ? len + 1 : 0;
    r->status = status;
}

void resp_json(struct req *r, int status, const json_t *v)
{
    size_t len = 0;
    char *t = doc_dump(v, &len);
    if (!t) {
        static const char oom[] =
            "{\"code\":\"InternalServerError\",\"message\":\"Out of memory.\"}";
        t = strdup(oom);
        len = t ? strlen(t) : 0;
        status = 500;
    }
    resp_body(r, status, t, len);
}

static int verb_of(const char *m)
{
    static const char *const names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
    for (int i = 0; i < 6; i++)
        if (strcmp(m, names[i]) == 0)
            return i;
    return SRV_OTHER;
}

static void req_free(struct req *r)
{
    for (int i = 0; i < r->nseg; i++)
        free(r->segs[i]);
    for (int i = 0; i < r->nhdr; i++)
        free(r->hdrs[i].value);
    free(r->body);
    free(r->owned_id);
    attachments_upload_abort(r);
    att_stream_free(r->ms);
    doc_buf_free(&r->out);
    free(r);
}

/* The connection's transport (tlsio.c), set up when libmicrohttpd opens it. */
static struct tlsio *conn_tlsio(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        tlsio_free(*socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = si && si->tls_session && fdi
                          ? tlsio_attach((gnutls_session_t)si->tls_session, fdi->connect_fd)
                          : NULL;
}

/* Whether libmicrohttpd sends a body after the header of this response
 * (not for HEAD, 1xx, 204, 304, or an empty body). */
static int body_follows(const struct req *r, size_t len)
{
    return len > 0 && r->verb != SRV_HEAD && r->status >= 200 && r->status != 204 &&
           r->status != 304 && !r->drain;
}

static ssize_t media_reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    long n = att_stream_read(cls, buf, max);
    return n < 0    ? MHD_CONTENT_READER_END_WITH_ERROR
           : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                    : (ssize_t)n;
}

static void media_free_cb(void *cls)
{
    att_stream_free(cls);
}

/* A media body: streamed from r->ms, which the response then owns. */
static enum MHD_Result queue_media(struct MHD_Connection *conn, struct req *r)
{
    struct att_stream *ms = r->ms;
    r->ms = NULL;
    srv_std_headers(r);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        att_stream_size(ms), 64 * 1024, media_reader_cb, ms, media_free_cb);
    if (!resp) {
        att_stream_free(ms);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", att_stream_type(ms));
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value);
    MHD_add_response_header(resp, "x-ms-gatewayversion", "version=2.14.0");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct req *r)
{
    if (r->ms && r->status == 200)
        return queue_media(conn, r);
    if (r->status == 0)
        srv_error(r, 500, 0, "No response.");
    srv_std_headers(r);
    size_t len = r->out.len;
    char *p = r->out.p;
    r->out.p = NULL;
    r->out.len = r->out.cap = 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, p ? p : (char *)"", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(p);
        return MHD_NO;
    }
    if (len)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value);
    MHD_add_response_header(resp, "x-ms-gatewayversion", "version=2.14.0");
    if (r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    struct tlsio *io = conn_tlsio(conn);
    tlsio_hold_next(io, body_follows(r, len)); /* header and body: one sendmsg */
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    if (ret != MHD_YES)
        tlsio_hold_next(io, 0);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http *h = cls;
    struct server *srv = h->srv;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->verb = verb_of(method);
        r->rtype = "?";
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (srv_path_split(url, r->segs, SRV_MAX_SEGS, &r->nseg) != 0)
            r->nseg = -1;
        *con_cls = r;
        int media = r->nseg > 0 && attachments_upload_route(r);
        if (cl && strtoull(cl, NULL, 10) > (media ? SRV_MEDIA_MAX : SRV_BODY_MAX)) {
            /* Answer before the body arrives; MHD closes the connection. */
            r->too_big = 1;
            r->drain = 1;
            if (r->nseg < 0)
                r->nseg = 0;
            srv_error(r, 413, 0, "Request size is too large.");
            return queue(conn, r);
        }
        const char *te =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if (te && (strcasecmp(te, "chunked") != 0 || cl)) {
            /* libmicrohttpd reads a body only as exactly "chunked" or by
             * Content-Length; anything else would wait for the timeout, and
             * both together invite request smuggling. */
            r->drain = 1;
            if (r->nseg < 0)
                r->nseg = 0;
            if (cl)
                srv_error(r, 400, 0,
                          "A request cannot have both Content-Length and "
                          "Transfer-Encoding.");
            else
                srv_error(r, 501, 0,
                          "Transfer-Encoding '%.40s' is not supported: send the body with "
                          "Content-Length or as 'chunked'.",
                          te);
            return queue(conn, r);
        }
        if (media && attachments_upload_begin(r) != 0) {
            r->drain = 1; /* refused before a byte of the body was read */
            return queue(conn, r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->up) {
            if (attachments_upload_data(r, upload, *upload_size) != 0) {
                r->too_big = 1;
                attachments_upload_abort(r);
            }
        } else if (!r->too_big) {
            size_t n = *upload_size;
            if (r->body_len + n > SRV_BODY_MAX) {
                r->too_big = 1;
            } else {
                if (r->body_len + n + 1 > r->body_cap) {
                    size_t cap = r->body_cap ? r->body_cap : 4096;
                    while (cap < r->body_len + n + 1)
                        cap *= 2;
                    char *b = realloc(r->body, cap);
                    if (!b)
                        return MHD_NO;
                    r->body = b;
                    r->body_cap = cap;
                }
                memcpy(r->body + r->body_len, upload, n);
                r->body_len += n;
                r->body[r->body_len] = 0;
            }
        }
        *upload_size = 0;
        /* A body without Content-Length that outgrows the cap: close the
         * connection (0.9.75 cannot queue a response mid-upload), draining
         * what the client still sends. */
        if (r->too_big) {
            start_linger(conn);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (r->ready) {
        if (r->finish) { /* an asynchronous write finished */
            void (*fin)(struct req *, int) = r->finish;
            r->finish = NULL;
            fin(r, r->async_rc);
        }
        return queue(conn, r); /* a worker built it (step 4) */
    }
    if (r->too_big) {
        srv_error(r, 413, 0, "Request size is too large.");
    } else if (r->nseg < 0) {
        r->nseg = 0;
        srv_error(r, 404, 0, "The requested resource does not exist.");
    } else if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
        router_dispatch(r);
    } else if (reserve(h) != 0) {
        r->close = 1; /* the listener is closed already: retry elsewhere */
        srv_error(r, 503, 0, "The server is shutting down.");
    } else if (async_candidate(r)) {
        r->async_ok = 1;
        router_dispatch(r);
        if (r->suspended)
            return MHD_YES; /* http_complete() resumes it */
        unreserve(h);
    } else {
        hand_off(h, r);
        return MHD_YES;
    }
    return queue(conn, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct server *srv = h->srv;
    struct req *r = *con_cls;
    if (!r)
        return;
    struct tlsio *io = conn_tlsio(conn);
    tlsio_hold_next(io, 0);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && tlsio_held(io)) {
        /* tlsio.c invariant 3 broken: never leave a client waiting */
        fprintf(stderr, "atrestd: http: a response header was held without its body; "
                        "connection closed\n");
        const union MHD_ConnectionInfo *fdi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fdi)
            shutdown(fdi->connect_fd, SHUT_RDWR);
    }
    if (r->drain)
        start_linger(conn);
    if (srv->log_requests) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long us = (t1.tv_sec - r->t0.tv_sec) * 1000000L + (t1.tv_nsec - r->t0.tv_nsec) / 1000;
        fprintf(stderr, "atrestd: %s %s %d %ldus\n", r->method, r->rtype, r->status, us);
    }
    req_free(r);
    *con_cls = NULL;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("atrestd: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static void stop_workers(struct http *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->work);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    h->nworkers = 0;
}

int http_start(struct server *srv, const struct http_options *opt, struct http **out)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", opt->port);
    int grc = getaddrinfo(opt->host, port, &hints, &ai);
    if (grc != 0 || !ai)
        return at_error_set(AT_EINVAL, "cannot resolve listen address %s: %s", opt->host,
                            gai_strerror(grc));
    struct http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return AT_ENOMEM;
    }
    h->srv = srv;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->work, NULL);
    pthread_cond_init(&h->idle, NULL);
    the_http = h;
    pthread_attr_t wa;
    pthread_attr_init(&wa);
    pthread_attr_setstacksize(&wa, 256 * 1024);
    for (h->nworkers = 0; h->nworkers < WORKERS; h->nworkers++) {
        if (pthread_create(&h->workers[h->nworkers], &wa, worker_main, h) != 0)
            break;
        pthread_setname_np(h->workers[h->nworkers], "http-worker"); /* for top -H, perf */
    }
    pthread_attr_destroy(&wa);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = cores < 1 ? 1 : cores > 16 ? 16 : (unsigned)cores;
    /* TURBO: opportunistic reads and writes before asking epoll; measured
     * as the fastest mode here (docs/server.md). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_TLS |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_HTTPS_MEM_CERT, opt->cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, opt->key_pem, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(opt->conn_limit ? opt->conn_limit : 256), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(opt->timeout_s ? opt->timeout_s : 120), MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(512 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)256, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        stop_workers(h);
        free(h);
        return at_error_set(AT_EIO, "cannot listen on %s:%d", opt->host, opt->port);
    }
    *out = h;
    return 0;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    /* Stop accepting; let every handed-off request finish and be resumed
     * (MHD must not stop with a suspended connection), give the epoll
     * threads a moment to send those answers, then stop. */
    MHD_quiesce_daemon(h->d);
    pthread_mutex_lock(&h->mu);
    h->closing = 1;
    while (h->inflight > 0)
        pthread_cond_wait(&h->idle, &h->mu);
    pthread_mutex_unlock(&h->mu);
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    MHD_stop_daemon(h->d);
    stop_workers(h);
    pthread_mutex_lock(&h->mu);
    while (h->lingering > 0) {
        pthread_mutex_unlock(&h->mu);
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    the_http = NULL;
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->work);
    pthread_cond_destroy(&h->idle);
    free(h);
}
