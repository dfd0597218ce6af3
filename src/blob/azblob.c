/*
 * azblob.c — the Azure Blob Storage target (azblob:URL), over the Blob
 * service REST API with libcurl and Shared Key authorization (azsig.c).
 *
 * URL is a container URL: path-style (http://127.0.0.1:10000/ACCOUNT/C, as
 * Azurite serves it) or host-style (https://ACCOUNT.blob.core.windows.net/C).
 *
 * put = Get Block List (what is already staged) + Put Block per block that
 * is not + Put Block List. Invariants:
 *  1. A blob becomes visible (or replaces its predecessor) only in Put Block
 *     List, after every block is staged: readers never see a partial blob.
 *  2. A block's id is base64("NNNNNN-" + hex of the first 16 bytes of the
 *     block's SHA-256): the same bytes at the same index always get the
 *     same id, so a restarted put skips blocks an interrupted one staged
 *     (or that the committed blob already has) — and never reuses a staged
 *     block whose bytes differ. Every id has the same length, as Azure
 *     requires.
 *  3. Each Put Block carries Content-MD5: the service rejects a block that
 *     arrived damaged. Put Block List stores the whole blob's SHA-256 as
 *     metadata x-ms-meta-sha256 and its MD5 as the blob's Content-MD5.
 *  4. Every request is retried on connection errors, timeouts, 408, 429 and
 *     5xx, at most max_attempts times, with exponential backoff and jitter;
 *     never on other 4xx. A get that fails mid-body resumes at the next byte
 *     (x-ms-range, If-Match on the ETag, so a replaced blob is not mixed in).
 * A store is used by one thread at a time (one libcurl handle, whose
 * connection is kept alive between requests).
 */
#include "blob/blobint.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "crypto/rand.h"
#include "crypto/secmem.h"

#define AZ_VERSION   "2021-08-06"
#define KEY_MAX      128
#define ID_RAW_LEN   39 /* "NNNNNN-" + 32 hex: a multiple of 3, so no '=' */
#define ID_LEN       52 /* base64 of 39 bytes */
#define RESP_MAX     (64u << 20)
#define MAX_HDRS     12

struct az_store {
    struct blob_store base;
    struct blob_cfg cfg;
    CURL *curl;
    char *origin;     /* scheme://host[:port] */
    char *cpath;      /* container path as in the URL: /ACCOUNT/C or /C */
    char *target;     /* for details: azblob:URL */
    char account[128];
    uint8_t *key;     /* secmem, KEY_MAX */
    size_t keylen;
    uint32_t retries; /* counted for put stats */
};

struct buf {
    char *p;
    size_t n, cap;
};

static int buf_add(struct buf *b, const void *p, size_t n, size_t limit)
{
    if (b->n + n + 1 > limit)
        return -1;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* One REST call, with whatever its retries need to resume. */
struct az_call {
    const char *method; /* GET PUT HEAD DELETE */
    const char *what;   /* for details: "Put Block 3 of 'x'" */
    const char *blob;   /* NULL: the container */
    const char *query;  /* percent-encoded, NULL: none */
    struct azsk_header hdr[MAX_HDRS];
    size_t nh;
    const uint8_t *body; /* PUT body */
    size_t body_len, body_pos;
    /* streamed GET */
    blob_sink_fn sink;
    void *sink_ctx;
    struct blob_hash *hash;
    int need_sha;           /* refuse a body without x-ms-meta-sha256 */
    uint64_t range_start;   /* first byte wanted */
    uint64_t range_end;     /* last byte wanted + 1; 0: to the end */
    uint64_t delivered;     /* bytes given to the sink so far */
    /* response of the last attempt */
    long status;
    struct buf in;
    char err_code[96];
    char etag[128];
    char if_match[128];     /* ETag of the first response that gave bytes */
    char meta_sha[80];
    char content_md5[40];
    char last_modified[64];
    uint64_t content_length;
    int have_length;
    int cb_rc;
    CURL *curl;
};

static void call_free(struct az_call *c)
{
    free(c->in.p);
    c->in = (struct buf){0};
}

static void add_hdr(struct az_call *c, const char *name, const char *value)
{
    if (c->nh < MAX_HDRS)
        c->hdr[c->nh++] = (struct azsk_header){name, value};
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct az_call *c = ud;
    size_t n = sz * nm;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after 100 Continue) */
        c->err_code[0] = c->etag[0] = c->meta_sha[0] = c->content_md5[0] = '\0';
        c->last_modified[0] = '\0';
        c->have_length = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t kl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
#define IS(name) (kl == sizeof name - 1 && strncasecmp(p, name, kl) == 0)
    if (IS("x-ms-error-code"))
        copy_value(c->err_code, sizeof c->err_code, v, vl);
    else if (IS("ETag"))
        copy_value(c->etag, sizeof c->etag, v, vl);
    else if (IS("x-ms-meta-sha256"))
        copy_value(c->meta_sha, sizeof c->meta_sha, v, vl);
    else if (IS("Content-MD5"))
        copy_value(c->content_md5, sizeof c->content_md5, v, vl);
    else if (IS("Last-Modified"))
        copy_value(c->last_modified, sizeof c->last_modified, v, vl);
    else if (IS("Content-Length")) {
        char tmp[32];
        copy_value(tmp, sizeof tmp, v, vl);
        c->content_length = strtoull(tmp, NULL, 10);
        c->have_length = 1;
    }
#undef IS
    return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct az_call *c = ud;
    size_t n = sz * nm;
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (c->sink && code >= 200 && code < 300) {
        if (c->need_sha && !c->meta_sha[0]) {
            c->cb_rc = AT_EFORMAT;
            return 0;
        }
        if (c->hash && blob_hash_update(c->hash, (const uint8_t *)p, n) != 0) {
            c->cb_rc = AT_ECRYPTO;
            return 0;
        }
        if (!c->if_match[0])
            memcpy(c->if_match, c->etag, sizeof c->if_match);
        int rc = c->sink(c->sink_ctx, (const uint8_t *)p, n);
        if (rc) {
            c->cb_rc = rc;
            return 0;
        }
        c->delivered += n;
        return n;
    }
    if (buf_add(&c->in, p, n, RESP_MAX) != 0) {
        c->cb_rc = at_error_set(AT_EIO, "azblob: response too large");
        return 0;
    }
    return n;
}

static size_t on_read(char *p, size_t sz, size_t nm, void *ud)
{
    struct az_call *c = ud;
    size_t n = sz * nm, left = c->body_len - c->body_pos;
    if (n > left)
        n = left;
    memcpy(p, c->body + c->body_pos, n);
    c->body_pos += n;
    return n;
}

/* libcurl rewinds the body when it sends a request again by itself (a
 * reused connection that turned out dead): the body is in memory. */
static int on_seek(void *ud, curl_off_t off, int origin)
{
    struct az_call *c = ud;
    if (origin != SEEK_SET || off < 0 || (size_t)off > c->body_len)
        return CURL_SEEKFUNC_FAIL;
    c->body_pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* A failure worth another attempt. */
static int curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

static int curl_errno(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return ETIMEDOUT;
    default:
        return AT_EIO;
    }
}

static void http_date(char out[64])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* One attempt: 0 when an HTTP response arrived (c->status), else a CURLcode
 * (> 0) or the callback's error in c->cb_rc. */
static int az_once(struct az_store *s, struct az_call *c, CURLcode *ccp)
{
    char url[4096 + BLOB_NAME_MAX], path[2048 + BLOB_NAME_MAX], date[64], len[24];
    char range[64], auth[256], sig[45];
    char *sts = NULL;
    struct curl_slist *sl = NULL;
    int rc = 0;

    snprintf(path, sizeof path, "%s%s%s", s->cpath, c->blob ? "/" : "", c->blob ? c->blob : "");
    snprintf(url, sizeof url, "%s%s%s%s", s->origin, path, c->query ? "?" : "",
             c->query ? c->query : "");
    http_date(date);
    size_t nh0 = c->nh;
    add_hdr(c, "x-ms-date", date);
    add_hdr(c, "x-ms-version", AZ_VERSION);
    if (c->range_start + c->delivered > 0 || c->range_end) {
        if (c->range_end)
            snprintf(range, sizeof range, "bytes=%llu-%llu",
                     (unsigned long long)(c->range_start + c->delivered),
                     (unsigned long long)(c->range_end - 1));
        else
            snprintf(range, sizeof range, "bytes=%llu-",
                     (unsigned long long)(c->range_start + c->delivered));
        add_hdr(c, "x-ms-range", range);
        if (c->delivered && c->if_match[0])
            add_hdr(c, "If-Match", c->if_match);
    }
    int is_put = strcmp(c->method, "PUT") == 0;
    snprintf(len, sizeof len, "%zu", c->body_len);
    struct azsk_header sh[MAX_HDRS + 1];
    memcpy(sh, c->hdr, c->nh * sizeof *sh);
    size_t nsh = c->nh;
    if (is_put)
        sh[nsh++] = (struct azsk_header){"Content-Length", len};
    rc = azsk_string_to_sign(c->method, sh, nsh, s->account, path, c->query, &sts);
    if (rc)
        goto out;
    rc = azsk_sign(s->key, s->keylen, sts, sig);
    if (rc)
        goto out;
    snprintf(auth, sizeof auth, "Authorization: SharedKey %s:%s", s->account, sig);
    for (size_t i = 0; i < c->nh; i++) {
        char line[512];
        snprintf(line, sizeof line, "%s: %s", c->hdr[i].name, c->hdr[i].value);
        sl = curl_slist_append(sl, line);
    }
    sl = curl_slist_append(sl, auth);
    sl = curl_slist_append(sl, "Expect:");
    sl = curl_slist_append(sl, "Content-Type:");
    if (!sl) {
        rc = AT_ENOMEM;
        goto out;
    }

    CURL *h = s->curl;
    curl_easy_reset(h);
    c->curl = h;
    c->status = 0;
    c->in.n = 0;
    c->cb_rc = 0;
    c->body_pos = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)s->cfg.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)s->cfg.stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (is_put) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, c);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, c);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
    } else if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    }
    *ccp = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
out:
    c->nh = nh0;
    curl_slist_free_all(sl);
    free(sts);
    return rc;
}

/* The service's error code and message, for details. */
static void describe(const struct az_call *c, char *out, size_t cap)
{
    char code[96] = "", msg[200] = "";
    snprintf(code, sizeof code, "%s", c->err_code);
    const char *m = c->in.p ? strstr(c->in.p, "<Message>") : NULL;
    if (m) {
        m += 9;
        const char *e = strstr(m, "</Message>");
        size_t n = e ? (size_t)(e - m) : strlen(m);
        const char *nl = memchr(m, '\n', n);
        if (nl)
            n = (size_t)(nl - m);
        copy_value(msg, sizeof msg, m, n);
    }
    if (!code[0] && c->in.p) {
        const char *k = strstr(c->in.p, "<Code>");
        const char *e = k ? strstr(k, "</Code>") : NULL;
        if (k && e)
            copy_value(code, sizeof code, k + 6, (size_t)(e - k - 6));
    }
    snprintf(out, cap, "HTTP %ld%s%s%s%s", c->status, code[0] ? " " : "", code,
             msg[0] ? ": " : "", msg);
}

/* Run c with retries. Returns 0 when a non-transient HTTP response arrived
 * (the caller judges c->status), else the error, with a detail. */
static int az_call_run(struct az_store *s, struct az_call *c)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int attempt = 1;; attempt++) {
        CURLcode cc = CURLE_OK;
        int rc = az_once(s, c, &cc);
        if (rc)
            return rc;
        if (c->cb_rc) {
            if (c->cb_rc == AT_EFORMAT)
                return at_error_set(AT_EFORMAT,
                                    "%s: %s: the blob has no x-ms-meta-sha256: not written by "
                                    "atrest's blob store, refusing to return it unchecked",
                                    s->target, c->what);
            return c->cb_rc;
        }
        int transient = cc != CURLE_OK ? curl_transient(cc) : blob_status_retryable(c->status);
        if (!transient) {
            if (cc == CURLE_OK)
                return 0;
            return at_error_set(curl_errno(cc), "%s: %s: %s", s->target, c->what,
                                curl_easy_strerror(cc));
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (attempt >= s->cfg.max_attempts) {
            char why[320];
            if (cc != CURLE_OK)
                snprintf(why, sizeof why, "%s", curl_easy_strerror(cc));
            else
                describe(c, why, sizeof why);
            return at_error_set(cc != CURLE_OK ? curl_errno(cc) : AT_EIO,
                                "%s: %s: %s; gave up after %d attempts over %.1f s", s->target,
                                c->what, why, attempt, secs);
        }
        uint32_t r = 0;
        if (rand_bytes(&r, sizeof r) != 0)
            r = (uint32_t)attempt * 2654435761u;
        s->retries++;
        blob_sleep_ms(blob_backoff_ms(&s->cfg, attempt, r));
    }
}

/* Map a final non-2xx status to an error with a detail. */
static int http_fail(struct az_store *s, const struct az_call *c)
{
    char why[320];
    describe(c, why, sizeof why);
    int err = AT_EIO;
    if (c->status == 403)
        err = EACCES;
    else if (c->status == 404)
        err = AT_ENOTFOUND;
    return at_error_set(err, "%s: %s: %s", s->target, c->what, why);
}

static int container_missing(const struct az_call *c)
{
    return c->status == 404 && (strcmp(c->err_code, "ContainerNotFound") == 0 ||
                                (c->in.p && strstr(c->in.p, "ContainerNotFound")));
}

static int create_container(struct az_store *s)
{
    struct az_call c = {.method = "PUT", .what = "Create Container", .query = "restype=container"};
    int rc = az_call_run(s, &c);
    if (!rc && c.status != 201 && c.status != 409)
        rc = http_fail(s, &c);
    call_free(&c);
    return rc;
}

/* ---- tiny XML helpers (the service's own, well-formed output) ---- */

/* Find <tag>…</tag> within [p, end); returns the contents' bounds. A
 * self-closing <tag/> yields an empty value. */
static int xml_find(const char *p, const char *end, const char *tag, const char **v, size_t *vl)
{
    char open[64], close[64], empty[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    snprintf(empty, sizeof empty, "<%s />", tag);
    size_t ol = strlen(open);
    for (const char *q = p; q < end; q++) {
        if (*q != '<')
            continue;
        if ((size_t)(end - q) >= ol && memcmp(q, open, ol) == 0) {
            const char *e = memmem(q + ol, (size_t)(end - q - (ptrdiff_t)ol), close,
                                   strlen(close));
            if (!e)
                return -1;
            *v = q + ol;
            *vl = (size_t)(e - q - (ptrdiff_t)ol);
            return 0;
        }
        size_t tl = strlen(tag);
        if ((size_t)(end - q) > tl + 2 && memcmp(q + 1, tag, tl) == 0 &&
            (q[tl + 1] == '/' || (q[tl + 1] == ' ' && q[tl + 2] == '/'))) {
            *v = q;
            *vl = 0;
            return 0;
        }
    }
    return -1;
}

static void xml_text(const char *v, size_t n, char *out, size_t cap)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        char c = v[i];
        if (c == '&')
            for (size_t k = 0; k < sizeof ents / sizeof *ents; k++) {
                size_t el = strlen(ents[k].ent);
                if (n - i >= el && memcmp(v + i, ents[k].ent, el) == 0) {
                    c = ents[k].c;
                    i += el - 1;
                    break;
                }
            }
        out[o++] = c;
    }
    out[o] = '\0';
}

static int64_t parse_http_date(const char *s)
{
    struct tm tm = {0};
    if (!s[0] || !strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

/* ---- put ---- */

struct staged {
    char id[ID_LEN + 1];
    uint64_t size;
};

static int cmp_staged(const void *a, const void *b)
{
    return strcmp(((const struct staged *)a)->id, ((const struct staged *)b)->id);
}

/* Every block the service holds for name (committed or not), sorted. */
static int get_block_list(struct az_store *s, const char *name, struct staged **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char what[BLOB_NAME_MAX + 64];
    snprintf(what, sizeof what, "Get Block List of '%s'", name);
    struct az_call c = {.method = "GET", .what = what, .blob = name,
                        .query = "comp=blocklist&blocklisttype=all"};
    int rc = az_call_run(s, &c);
    if (rc)
        goto out;
    if (c.status == 404) { /* no blob, no staged blocks */
        if (container_missing(&c))
            rc = create_container(s); /* before any block is sent for nothing */
        goto out;
    }
    if (c.status != 200) {
        rc = http_fail(s, &c);
        goto out;
    }
    size_t cap = 0;
    const char *p = c.in.p ? c.in.p : "", *end = p + c.in.n;
    const char *v;
    size_t vl;
    while (xml_find(p, end, "Block", &v, &vl) == 0 && vl) {
        const char *bend = v + vl, *nv, *sv;
        size_t nl, svl;
        if (xml_find(v, bend, "Name", &nv, &nl) == 0 && nl == ID_LEN &&
            xml_find(v, bend, "Size", &sv, &svl) == 0) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 256;
                struct staged *ns = realloc(*out, cap * sizeof **out);
                if (!ns) {
                    rc = AT_ENOMEM;
                    goto out;
                }
                *out = ns;
            }
            memcpy((*out)[*n].id, nv, ID_LEN);
            (*out)[*n].id[ID_LEN] = '\0';
            (*out)[*n].size = strtoull(sv, NULL, 10);
            (*n)++;
        }
        p = bend;
    }
    if (*n)
        qsort(*out, *n, sizeof **out, cmp_staged);
out:
    call_free(&c);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* Run a PUT, creating the container once if it does not exist yet. */
static int put_call(struct az_store *s, struct az_call *c, int expect)
{
    int rc = az_call_run(s, c);
    if (!rc && container_missing(c)) {
        if ((rc = create_container(s)) != 0)
            return rc;
        rc = az_call_run(s, c);
    }
    if (!rc && c->status != expect)
        rc = http_fail(s, c);
    return rc;
}

static int az_put(struct blob_store *bs, const char *name, blob_source_fn src, void *ctx,
                  struct blob_put_stats *stats)
{
    struct az_store *s = (struct az_store *)bs;
    int rc = blob_name_check(name);
    if (rc)
        return rc;
    struct staged *staged = NULL;
    size_t nstaged = 0;
    struct blob_hash h = {0};
    struct buf list = {0};
    uint8_t *block = NULL;
    struct blob_put_stats st = {0};
    uint32_t retries0 = s->retries;
    char what[BLOB_NAME_MAX + 96];

    if ((rc = get_block_list(s, name, &staged, &nstaged)) != 0)
        goto out;
    if ((rc = blob_hash_init(&h, 1)) != 0)
        goto out;
    if (!(block = malloc(s->cfg.block_size))) {
        rc = AT_ENOMEM;
        goto out;
    }
    static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    if (buf_add(&list, head, sizeof head - 1, SIZE_MAX) != 0) {
        rc = AT_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t got = 0;
        if ((rc = blob_fill(src, ctx, block, s->cfg.block_size, &got)) != 0)
            goto out;
        if (got == 0)
            break;
        if (st.blocks == BLOB_MAX_BLOCKS) {
            rc = at_error_set(AT_EINVAL,
                              "%s: blob '%s' needs more than %u blocks of %zu bytes: use a "
                              "larger block size",
                              s->target, name, BLOB_MAX_BLOCKS, s->cfg.block_size);
            goto out;
        }
        uint8_t sha[32], md5[16];
        char raw[ID_RAW_LEN + 1], id[ID_LEN + 1], md5b64[25], hex[33], q[3 * ID_LEN + 32];
        if ((rc = blob_hash_update(&h, block, got)) != 0 ||
            (rc = blob_sha256(block, got, sha)) != 0 || (rc = blob_md5(block, got, md5)) != 0)
            goto out;
        blob_hex(sha, 16, hex);
        snprintf(raw, sizeof raw, "%06u-%s", st.blocks, hex);
        blob_b64((const uint8_t *)raw, ID_RAW_LEN, id);
        struct staged key;
        memcpy(key.id, id, sizeof key.id);
        struct staged *hit =
            nstaged ? bsearch(&key, staged, nstaged, sizeof *staged, cmp_staged) : NULL;
        if (hit && hit->size == got) {
            st.blocks_skipped++;
        } else {
            char esc[3 * ID_LEN + 1];
            if ((rc = azsk_query_escape(id, esc, sizeof esc)) != 0)
                goto out;
            snprintf(q, sizeof q, "comp=block&blockid=%s", esc);
            blob_b64(md5, 16, md5b64);
            snprintf(what, sizeof what, "Put Block %u of '%s'", st.blocks, name);
            struct az_call c = {.method = "PUT", .what = what, .blob = name, .query = q,
                                .body = block, .body_len = got};
            add_hdr(&c, "Content-MD5", md5b64);
            rc = put_call(s, &c, 201);
            call_free(&c);
            if (rc)
                goto out;
            st.blocks_sent++;
        }
        if (buf_add(&list, "<Latest>", 8, SIZE_MAX) || buf_add(&list, id, ID_LEN, SIZE_MAX) ||
            buf_add(&list, "</Latest>", 9, SIZE_MAX)) {
            rc = AT_ENOMEM;
            goto out;
        }
        st.blocks++;
        st.bytes += got;
        if (got < s->cfg.block_size)
            break;
    }
    if (buf_add(&list, "</BlockList>", 12, SIZE_MAX)) {
        rc = AT_ENOMEM;
        goto out;
    }
    uint8_t sha[32], md5[16];
    char shahex[65], md5b64[25];
    if ((rc = blob_hash_final(&h, sha, md5)) != 0)
        goto out;
    memcpy(st.sha256, sha, 32);
    blob_hex(sha, 32, shahex);
    blob_b64(md5, 16, md5b64);
    snprintf(what, sizeof what, "Put Block List of '%s' (%u blocks)", name, st.blocks);
    struct az_call c = {.method = "PUT", .what = what, .blob = name, .query = "comp=blocklist",
                        .body = (const uint8_t *)list.p, .body_len = list.n};
    add_hdr(&c, "x-ms-meta-sha256", shahex);
    add_hdr(&c, "x-ms-blob-content-md5", md5b64);
    add_hdr(&c, "x-ms-blob-content-type", "application/octet-stream");
    rc = put_call(s, &c, 201);
    call_free(&c);
out:
    st.retries = s->retries - retries0;
    if (stats)
        *stats = st;
    free(staged);
    free(list.p);
    free(block);
    blob_hash_free(&h);
    return rc;
}

/* ---- get, head, list, delete ---- */

static int az_get(struct blob_store *bs, const char *name, uint64_t offset, uint64_t length,
                  blob_sink_fn sink, void *ctx)
{
    struct az_store *s = (struct az_store *)bs;
    int rc = blob_name_check(name);
    if (rc)
        return rc;
    int whole = offset == 0 && length == UINT64_MAX;
    if (!whole && length == 0)
        return 0;
    struct blob_hash h = {0};
    if (whole && (rc = blob_hash_init(&h, 1)) != 0)
        return rc;
    char what[BLOB_NAME_MAX + 32];
    snprintf(what, sizeof what, "Get Blob '%s'", name);
    struct az_call c = {.method = "GET", .what = what, .blob = name, .sink = sink,
                        .sink_ctx = ctx, .hash = whole ? &h : NULL, .need_sha = whole,
                        .range_start = offset};
    if (!whole && length != UINT64_MAX && offset + length > offset)
        c.range_end = offset + length;
    rc = az_call_run(s, &c);
    if (rc)
        goto out;
    if (c.status == 416 && !whole)
        goto out; /* the range starts at or past the end: nothing to return */
    if (c.status == 412 && c.delivered) {
        rc = at_error_set(AT_EIO, "%s: blob '%s' was replaced while it was being read; read it "
                                  "again", s->target, name);
        goto out;
    }
    if (c.status != 200 && c.status != 206) {
        rc = http_fail(s, &c);
        if (rc == AT_ENOTFOUND)
            at_error_set(rc, "%s: no blob '%s'", s->target, name);
        goto out;
    }
    if (whole) {
        uint8_t sha[32], md5[16], want[32];
        if (!c.meta_sha[0]) {
            rc = at_error_set(AT_EFORMAT, "%s: blob '%s' has no x-ms-meta-sha256: not written "
                                          "by atrest's blob store", s->target, name);
            goto out;
        }
        if ((rc = blob_hash_final(&h, sha, md5)) != 0)
            goto out;
        if (blob_unhex(c.meta_sha, want, 32) != 0 || CRYPTO_memcmp(sha, want, 32) != 0)
            rc = at_error_set(AT_EINTEGRITY,
                              "%s: blob '%s' fails its SHA-256 check (%llu bytes read): the "
                              "stored bytes were changed or damaged; discard what was read",
                              s->target, name, (unsigned long long)c.delivered);
    }
out:
    call_free(&c);
    blob_hash_free(&h);
    return rc;
}

static void info_from(struct blob_info *out, const char *name, uint64_t size, const char *md5,
                      const char *sha, const char *mtime)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->size = size;
    out->mtime = parse_http_date(mtime);
    size_t n = 0;
    out->has_md5 = md5[0] && blob_unb64(md5, out->md5, 16, &n) == 0 && n == 16;
    out->has_sha256 = sha[0] && blob_unhex(sha, out->sha256, 32) == 0;
}

static int az_head(struct blob_store *bs, const char *name, struct blob_info *out)
{
    struct az_store *s = (struct az_store *)bs;
    int rc = blob_name_check(name);
    if (rc)
        return rc;
    char what[BLOB_NAME_MAX + 32];
    snprintf(what, sizeof what, "Get Blob Properties '%s'", name);
    struct az_call c = {.method = "HEAD", .what = what, .blob = name};
    rc = az_call_run(s, &c);
    if (!rc && c.status != 200) {
        rc = http_fail(s, &c);
        if (rc == AT_ENOTFOUND)
            at_error_set(rc, "%s: no blob '%s'", s->target, name);
    }
    if (!rc)
        info_from(out, name, c.content_length, c.content_md5, c.meta_sha, c.last_modified);
    call_free(&c);
    return rc;
}

static int az_list(struct blob_store *bs, const char *prefix, blob_list_fn fn, void *ctx)
{
    struct az_store *s = (struct az_store *)bs;
    char marker[1024] = "", q[8192 + 64], esc_p[3 * BLOB_NAME_MAX + 1], esc_m[3 * sizeof marker];
    int rc = azsk_query_escape(prefix ? prefix : "", esc_p, sizeof esc_p);
    if (rc)
        return rc;
    do {
        if ((rc = azsk_query_escape(marker, esc_m, sizeof esc_m)) != 0)
            return rc;
        snprintf(q, sizeof q, "restype=container&comp=list&include=metadata%s%s%s%s",
                 esc_p[0] ? "&prefix=" : "", esc_p, marker[0] ? "&marker=" : "", esc_m);
        struct az_call c = {.method = "GET", .what = "List Blobs", .query = q};
        rc = az_call_run(s, &c);
        if (!rc && c.status == 404 && container_missing(&c)) {
            call_free(&c);
            return 0; /* no container yet: no blobs */
        }
        if (!rc && c.status != 200)
            rc = http_fail(s, &c);
        const char *p = c.in.p ? c.in.p : "", *end = p + c.in.n, *v;
        size_t vl;
        marker[0] = '\0';
        while (!rc && xml_find(p, end, "Blob", &v, &vl) == 0 && vl) {
            const char *be = v + vl, *x;
            size_t xl;
            char name[BLOB_NAME_MAX + 1] = "", len[32] = "", md5[64] = "", sha[80] = "",
                 mt[64] = "";
            if (xml_find(v, be, "Name", &x, &xl) == 0)
                xml_text(x, xl, name, sizeof name);
            if (xml_find(v, be, "Content-Length", &x, &xl) == 0)
                xml_text(x, xl, len, sizeof len);
            if (xml_find(v, be, "Content-MD5", &x, &xl) == 0)
                xml_text(x, xl, md5, sizeof md5);
            if (xml_find(v, be, "sha256", &x, &xl) == 0)
                xml_text(x, xl, sha, sizeof sha);
            if (xml_find(v, be, "Last-Modified", &x, &xl) == 0)
                xml_text(x, xl, mt, sizeof mt);
            struct blob_info info;
            info_from(&info, name, strtoull(len, NULL, 10), md5, sha, mt);
            rc = fn(ctx, &info);
            p = be;
        }
        if (!rc && xml_find(c.in.p ? c.in.p : "", end, "NextMarker", &v, &vl) == 0)
            xml_text(v, vl, marker, sizeof marker);
        call_free(&c);
    } while (!rc && marker[0]);
    return rc;
}

static int az_del(struct blob_store *bs, const char *name)
{
    struct az_store *s = (struct az_store *)bs;
    int rc = blob_name_check(name);
    if (rc)
        return rc;
    char what[BLOB_NAME_MAX + 32];
    snprintf(what, sizeof what, "Delete Blob '%s'", name);
    struct az_call c = {.method = "DELETE", .what = what, .blob = name};
    rc = az_call_run(s, &c);
    if (!rc && c.status != 202) {
        rc = http_fail(s, &c);
        if (rc == AT_ENOTFOUND)
            at_error_set(rc, "%s: no blob '%s'", s->target, name);
    }
    call_free(&c);
    return rc;
}

static void az_close(struct blob_store *bs)
{
    struct az_store *s = (struct az_store *)bs;
    if (s->curl)
        curl_easy_cleanup(s->curl);
    if (s->key)
        secmem_free(s->key, KEY_MAX);
    free(s->origin);
    free(s->cpath);
    free(s->target);
    free(s);
}

static const struct blob_store_ops az_ops = {
    .iVersion = 1,
    .name = "azblob",
    .put = az_put,
    .get = az_get,
    .head = az_head,
    .list = az_list,
    .del = az_del,
    .close = az_close,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Read the base64 account key from path into s->key. */
static int read_key(struct az_store *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return at_error_set(errno, "%s: cannot open the account key file %s: %s", s->target,
                            path, strerror(errno));
    struct stat st;
    char text[256];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = at_error_set(AT_EINVAL, "%s: account key file %s is not a regular file", s->target,
                          path);
    } else if (st.st_mode & 077) {
        rc = at_error_set(AT_EPERM_OPEN,
                          "%s: account key file %s has mode %o: it must be readable by its "
                          "owner only (chmod 600)",
                          s->target, path, (unsigned)(st.st_mode & 0777));
    } else if ((n = read(fd, text, sizeof text - 1)) < 0) {
        rc = at_error_set(errno, "%s: reading %s: %s", s->target, path, strerror(errno));
    }
    close(fd);
    if (!rc) {
        size_t a = 0, b = (size_t)n;
        while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\r' ||
                         text[b - 1] == '\t'))
            b--;
        text[b] = '\0';
        if (!(s->key = secmem_alloc(KEY_MAX)))
            rc = AT_ENOMEM;
        else if (blob_unb64(text + a, s->key, KEY_MAX, &s->keylen) != 0 || s->keylen < 16)
            rc = at_error_set(AT_EINVAL, "%s: account key file %s does not hold a base64 key",
                              s->target, path);
    }
    secmem_wipe(text, sizeof text);
    return rc;
}

int blob_az_open(const struct blob_cfg *cfg, const char *url, const char *key_file,
                 const char *account_name, struct blob_store **out)
{
    struct az_store *s = calloc(1, sizeof *s);
    if (!s)
        return AT_ENOMEM;
    s->base.ops = &az_ops;
    s->cfg = *cfg;
    int rc = 0;
    size_t ul = strlen(url);
    if (!(s->target = malloc(ul + 8))) {
        rc = AT_ENOMEM;
        goto fail;
    }
    snprintf(s->target, ul + 8, "azblob:%s", url);
    while (ul && url[ul - 1] == '/')
        ul--;
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : NULL;
    const char *slash = host ? memchr(host, '/', ul - (size_t)(host - url)) : NULL;
    if (!sep || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || !slash) {
        rc = at_error_set(AT_EINVAL, "%s: expected http(s)://HOST[:PORT]/[ACCOUNT/]CONTAINER",
                          s->target);
        goto fail;
    }
    s->origin = strndup(url, (size_t)(slash - url));
    s->cpath = strndup(slash, ul - (size_t)(slash - url));
    if (!s->origin || !s->cpath) {
        rc = AT_ENOMEM;
        goto fail;
    }
    /* Segments of the path: ACCOUNT/CONTAINER (path-style) or CONTAINER. */
    const char *seg1 = s->cpath + 1, *seg2 = strchr(seg1, '/');
    const char *dot = memchr(host, '.', (size_t)(slash - host));
    int host_style = dot && memmem(host, (size_t)(slash - host), ".blob.", 6) != NULL;
    if (host_style ? seg2 != NULL || !seg1[0] : !seg2 || strchr(seg2 + 1, '/') || !seg2[1]) {
        rc = at_error_set(AT_EINVAL, "%s: the URL must name exactly one container (%s)",
                          s->target,
                          host_style ? "https://ACCOUNT.blob.HOST/CONTAINER"
                                     : "http://HOST:PORT/ACCOUNT/CONTAINER");
        goto fail;
    }
    if (account_name)
        snprintf(s->account, sizeof s->account, "%s", account_name);
    else if (host_style)
        snprintf(s->account, sizeof s->account, "%.*s", (int)(dot - host), host);
    else
        snprintf(s->account, sizeof s->account, "%.*s", (int)(seg2 - seg1), seg1);
    if ((rc = read_key(s, key_file)) != 0)
        goto fail;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK || !(s->curl = curl_easy_init())) {
        rc = at_error_set(AT_EIO, "%s: libcurl failed to initialise", s->target);
        goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    az_close(&s->base);
    return rc;
}
