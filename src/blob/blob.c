/*
 * blob.c — target selection, name rules, and the helpers every target
 * shares: SHA-256/MD5 side by side, hex and base64, the retry policy, and
 * file-descriptor sources and sinks.
 */
#include "blob/blobint.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

int blob_name_check(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > BLOB_NAME_MAX)
        return at_error_set(AT_EINVAL, "blob name must be 1..%d bytes", BLOB_NAME_MAX);
    if (name[0] == '/' || name[n - 1] == '/')
        return at_error_set(AT_EINVAL, "blob name '%s' starts or ends with '/'", name);
    const char *seg = name;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '/' || c == '\0') {
            size_t len = (size_t)(name + i - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return at_error_set(AT_EINVAL, "blob name '%s' has an empty, '.' or '..' segment",
                                    name);
            seg = name + i + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '~'))
            return at_error_set(AT_EINVAL,
                                "blob name has a character outside [A-Za-z0-9._~/-] at byte %zu",
                                i);
    }
    return 0;
}

int blob_open(const struct blob_options *opt, struct blob_store **out)
{
    *out = NULL;
    if (!opt || !opt->target || !opt->target[0])
        return at_error_set(AT_EINVAL, "blob store: no target given");
    struct blob_cfg cfg = {
        .block_size = opt->block_size ? opt->block_size : BLOB_BLOCK_DEFAULT,
        .max_attempts = opt->max_attempts > 0 ? opt->max_attempts : BLOB_ATTEMPTS_DEFAULT,
        .backoff_ms = opt->backoff_ms ? opt->backoff_ms : 200,
        .backoff_max_ms = opt->backoff_max_ms ? opt->backoff_max_ms : 10000,
        .connect_timeout_s = opt->connect_timeout_s ? opt->connect_timeout_s : 10,
        .stall_timeout_s = opt->stall_timeout_s ? opt->stall_timeout_s : 30,
        .fault = opt->fault,
        .fault_ctx = opt->fault_ctx,
    };
    if (cfg.block_size < BLOB_BLOCK_MIN || cfg.block_size > BLOB_BLOCK_MAX)
        return at_error_set(AT_EINVAL, "blob store: block size %zu outside %u..%u",
                            cfg.block_size, BLOB_BLOCK_MIN, BLOB_BLOCK_MAX);
    const char *t = opt->target;
    if (strncmp(t, "azblob:", 7) == 0) {
        if (!opt->account_key_file)
            return at_error_set(AT_EINVAL, "blob store %s: an account key file is required", t);
        return blob_az_open(&cfg, t + 7, opt->account_key_file, opt->account_name, out);
    }
    if (strncmp(t, "file:", 5) == 0)
        t += 5;
    else if (strchr(t, ':') && !strchr(t, '/'))
        return at_error_set(AT_EINVAL, "blob store: unknown target '%s' (file:DIR or azblob:URL)",
                            t);
    if (!t[0])
        return at_error_set(AT_EINVAL, "blob store: file: target without a folder");
    return blob_file_open(&cfg, t, out);
}

int blob_fill(blob_source_fn src, void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    size_t have = 0;
    while (have < cap) {
        size_t n = 0;
        int rc = src(ctx, buf + have, cap - have, &n);
        if (rc)
            return rc;
        if (n == 0)
            break;
        if (n > cap - have)
            return at_error_set(AT_EINVAL, "blob source returned more bytes than asked for");
        have += n;
    }
    *got = have;
    return 0;
}

/* ---- checksums ---- */

int blob_hash_init(struct blob_hash *h, int with_md5)
{
    h->sha = EVP_MD_CTX_new();
    h->md5 = with_md5 ? EVP_MD_CTX_new() : NULL;
    if (!h->sha || (with_md5 && !h->md5) || !EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL) ||
        (with_md5 && !EVP_DigestInit_ex(h->md5, EVP_md5(), NULL))) {
        blob_hash_free(h);
        return at_error_set(AT_ECRYPTO, "blob store: cannot start SHA-256/MD5");
    }
    return 0;
}

int blob_hash_update(struct blob_hash *h, const uint8_t *p, size_t n)
{
    if (!EVP_DigestUpdate(h->sha, p, n) || (h->md5 && !EVP_DigestUpdate(h->md5, p, n)))
        return at_error_set(AT_ECRYPTO, "blob store: digest update failed");
    return 0;
}

int blob_hash_final(struct blob_hash *h, uint8_t sha256[32], uint8_t md5[16])
{
    unsigned a = 0, b = 16;
    if (!h->md5)
        memset(md5, 0, 16);
    if (!EVP_DigestFinal_ex(h->sha, sha256, &a) ||
        (h->md5 && !EVP_DigestFinal_ex(h->md5, md5, &b)) || a != 32 || b != 16)
        return at_error_set(AT_ECRYPTO, "blob store: digest final failed");
    return 0;
}

void blob_hash_free(struct blob_hash *h)
{
    EVP_MD_CTX_free(h->sha);
    EVP_MD_CTX_free(h->md5);
    h->sha = h->md5 = NULL;
}

static int digest(const EVP_MD *md, const uint8_t *p, size_t n, uint8_t *out)
{
    unsigned len = 0;
    if (!EVP_Digest(p, n, out, &len, md, NULL))
        return at_error_set(AT_ECRYPTO, "blob store: digest failed");
    return 0;
}

int blob_md5(const uint8_t *p, size_t n, uint8_t out[16])
{
    return digest(EVP_md5(), p, n, out);
}

int blob_sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    return digest(EVP_sha256(), p, n, out);
}

void blob_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int blob_unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return AT_EFORMAT;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return AT_EFORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void blob_b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

int blob_unb64(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap + 2)
        return AT_EFORMAT;
    uint8_t tmp[n / 4 * 3];
    int r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
    if (r < 0)
        return AT_EFORMAT;
    size_t got = (size_t)r;
    if (s[n - 1] == '=')
        got--;
    if (s[n - 2] == '=')
        got--;
    if (got > cap)
        return AT_EFORMAT;
    memcpy(out, tmp, got);
    *len = got;
    return 0;
}

/* ---- retries ---- */

int blob_status_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

unsigned blob_backoff_ms(const struct blob_cfg *cfg, int retry, uint32_t r)
{
    uint64_t d = cfg->backoff_ms;
    for (int i = 1; i < retry && d < cfg->backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->backoff_max_ms)
        d = cfg->backoff_max_ms;
    uint64_t half = d / 2;
    return (unsigned)(half + (half ? r % (d - half + 1) : 0));
}

void blob_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- fd sources and sinks ---- */

int blob_fd_source(void *fd_ptr, uint8_t *buf, size_t cap, size_t *got)
{
    int fd = *(int *)fd_ptr;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r >= 0) {
            *got = (size_t)r;
            return 0;
        }
        if (errno != EINTR)
            return at_error_set(errno, "reading the blob's source: %s", strerror(errno));
    }
}

int blob_fd_sink(void *fd_ptr, const uint8_t *buf, size_t len)
{
    int fd = *(int *)fd_ptr;
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return at_error_set(errno, "writing the blob's bytes: %s", strerror(errno));
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* ---- ranged reads into a buffer, blob_copy ---- */

struct range_buf {
    uint8_t *p;
    size_t n, cap;
};

static int range_sink(void *ctx, const uint8_t *b, size_t n)
{
    struct range_buf *r = ctx;
    if (n > r->cap - r->n)
        return at_error_set(AT_EIO, "a ranged get returned more than it asked for");
    memcpy(r->p + r->n, b, n);
    r->n += n;
    return 0;
}

int blob_get_range(struct blob_store *bs, const char *name, uint64_t off, uint8_t *buf,
                   size_t want, size_t *got)
{
    struct range_buf r = {buf, 0, want};
    int rc = blob_get(bs, name, off, want, range_sink, &r);
    *got = r.n;
    return rc;
}

struct copy_src {
    struct blob_store *bs;
    const char *name;
    uint64_t off, size;
};

static int copy_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct copy_src *s = ctx;
    *got = 0;
    if (s->off >= s->size)
        return 0;
    size_t want = s->size - s->off < cap ? (size_t)(s->size - s->off) : cap, n = 0;
    int rc = blob_get_range(s->bs, s->name, s->off, buf, want, &n);
    if (rc)
        return rc;
    if (n != want)
        return at_error_set(AT_EIO, "blob copy: '%s' changed while it was copied", s->name);
    s->off += n;
    *got = n;
    return 0;
}

int blob_copy(struct blob_store *src, const char *from_name, struct blob_store *dst,
              const char *to_name, uint64_t *bytes)
{
    struct blob_info info;
    int rc = blob_head(src, from_name, &info);
    if (rc)
        return rc;
    struct copy_src s = {src, from_name, 0, info.size};
    rc = blob_put(dst, to_name, copy_source, &s, NULL);
    if (!rc && bytes)
        *bytes = info.size;
    return rc;
}
