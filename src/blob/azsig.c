/*
 * azsig.c — Azure Storage Shared Key signing for the Blob service, as the
 * "Authorize with Shared Key" page of the Storage REST reference defines it:
 *
 *   StringToSign = VERB \n Content-Encoding \n Content-Language \n
 *                  Content-Length (empty when 0) \n Content-MD5 \n
 *                  Content-Type \n Date \n If-Modified-Since \n If-Match \n
 *                  If-None-Match \n If-Unmodified-Since \n Range \n
 *                  CanonicalizedHeaders CanonicalizedResource
 *   CanonicalizedHeaders: every x-ms-* header, name lower-cased, value
 *     trimmed, sorted by name, each as "name:value\n".
 *   CanonicalizedResource: "/" account path, then for each query parameter
 *     sorted by lower-cased name "\nname:value" (values URL-decoded; repeated
 *     names joined with ',' in sorted order).
 *   Authorization: "SharedKey account:" base64(HMAC-SHA256(key, StringToSign))
 */
#include "blob/blobint.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

struct sbuf {
    char *p;
    size_t n, cap;
    int err;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = AT_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static const char *find(const struct azsk_header *h, size_t nh, const char *name)
{
    for (size_t i = 0; i < nh; i++)
        if (strcasecmp(h[i].name, name) == 0)
            return h[i].value;
    return "";
}

struct kv {
    char *k, *v;
};

static int cmp_kv(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void trim(const char *s, const char **start, size_t *len)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *start = s;
    *len = n;
}

static char *url_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hx[3] = {s[i + 1], s[i + 2], 0};
            o[j++] = (char)strtol(hx, NULL, 16);
            i += 2;
        } else {
            o[j++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    o[j] = '\0';
    return o;
}

int azsk_string_to_sign(const char *verb, const struct azsk_header *h, size_t nh,
                        const char *account, const char *path, const char *query, char **out)
{
    static const char *const std_headers[] = {
        "Content-Encoding", "Content-Language", "Content-Length",      "Content-MD5",
        "Content-Type",     "Date",             "If-Modified-Since",   "If-Match",
        "If-None-Match",    "If-Unmodified-Since", "Range",
    };
    struct sbuf b = {0};
    struct kv *xs = NULL, *qs = NULL;
    size_t nx = 0, nq = 0;
    int rc = 0;

    sb_str(&b, verb);
    sb_str(&b, "\n");
    for (size_t i = 0; i < sizeof std_headers / sizeof *std_headers; i++) {
        const char *v = find(h, nh, std_headers[i]);
        if (i == 2 && strcmp(v, "0") == 0)
            v = "";
        sb_str(&b, v);
        sb_str(&b, "\n");
    }

    /* CanonicalizedHeaders */
    xs = calloc(nh ? nh : 1, sizeof *xs);
    if (!xs) {
        rc = AT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nh; i++) {
        if (strncasecmp(h[i].name, "x-ms-", 5) != 0)
            continue;
        const char *v;
        size_t vl;
        trim(h[i].value, &v, &vl);
        xs[nx].k = strdup(h[i].name);
        xs[nx].v = strndup(v, vl);
        if (!xs[nx].k || !xs[nx].v) {
            free(xs[nx].k);
            free(xs[nx].v);
            rc = AT_ENOMEM;
            goto out;
        }
        for (char *p = xs[nx].k; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        nx++;
    }
    qsort(xs, nx, sizeof *xs, cmp_kv);
    for (size_t i = 0; i < nx; i++) {
        sb_str(&b, xs[i].k);
        sb_str(&b, ":");
        sb_str(&b, xs[i].v);
        sb_str(&b, "\n");
    }

    /* CanonicalizedResource */
    sb_str(&b, "/");
    sb_str(&b, account);
    sb_str(&b, path && path[0] ? path : "/");
    size_t qn = 1;
    for (const char *p = query; p && *p; p++)
        qn += *p == '&';
    qs = calloc(qn, sizeof *qs);
    if (!qs) {
        rc = AT_ENOMEM;
        goto out;
    }
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        if (kl) {
            qs[nq].k = url_decode(p, kl);
            qs[nq].v = eq ? url_decode(eq + 1, len - kl - 1) : strdup("");
            if (!qs[nq].k || !qs[nq].v) {
                free(qs[nq].k);
                free(qs[nq].v);
                rc = AT_ENOMEM;
                goto out;
            }
            for (char *c = qs[nq].k; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            nq++;
        }
        p += len + (amp ? 1 : 0);
    }
    qsort(qs, nq, sizeof *qs, cmp_kv);
    for (size_t i = 0; i < nq; i++) {
        if (i && strcmp(qs[i].k, qs[i - 1].k) == 0) {
            sb_str(&b, ",");
        } else {
            sb_str(&b, "\n");
            sb_str(&b, qs[i].k);
            sb_str(&b, ":");
        }
        sb_str(&b, qs[i].v);
    }
    rc = b.err;
out:
    for (size_t i = 0; i < nx; i++) {
        free(xs[i].k);
        free(xs[i].v);
    }
    for (size_t i = 0; i < nq; i++) {
        free(qs[i].k);
        free(qs[i].v);
    }
    free(xs);
    free(qs);
    if (rc) {
        free(b.p);
        return at_error_set(rc, "azblob: cannot build the string to sign");
    }
    *out = b.p;
    return 0;
}

int azsk_sign(const uint8_t *key, size_t keylen, const char *sts, char out[45])
{
    uint8_t mac[32];
    unsigned len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)sts, strlen(sts), mac, &len) ||
        len != 32)
        return at_error_set(AT_ECRYPTO, "azblob: HMAC-SHA256 failed");
    blob_b64(mac, 32, out);
    return 0;
}

int azsk_query_escape(const char *s, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
        if (o + (plain ? 1 : 3) + 1 > cap)
            return at_error_set(AT_EINVAL, "azblob: query value too long");
        if (plain) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hx[c >> 4];
            out[o++] = hx[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}
