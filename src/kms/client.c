/* client.c — HTTPS client for the keys API over OpenSSL (see client.h). */
#include "kms/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "kms/kms.h"

#define RESP_MAX    (256 * 1024)
#define API_VERSION "7.4"

struct kms_client {
    SSL_CTX *ctx;
    char host[256], port[8], hostport[300];
    char *token; /* secmem */
    size_t token_len;
    int insecure, timeout_ms;
};

void kms_client_close(struct kms_client *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    secmem_free(c->token, c->token_len + 1);
    free(c);
}

int kms_client_open(const struct kms_client_options *o, struct kms_client **out)
{
    if (!o || !o->url || !o->token || strncmp(o->url, "https://", 8) != 0)
        return at_error_set(AT_EINVAL, "kms client: an https:// URL and a token are required");
    const char *h = o->url + 8;
    size_t hl = strcspn(h, "/");
    struct kms_client *c = calloc(1, sizeof *c);
    if (!c)
        return AT_ENOMEM;
    c->insecure = o->insecure;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    if (hl == 0 || hl >= sizeof c->hostport)
        goto bad_url;
    memcpy(c->hostport, h, hl);
    c->hostport[hl] = '\0';
    const char *colon = strrchr(c->hostport, ':');
    const char *hs = c->hostport;
    size_t hsl = hl;
    if (colon && !strchr(colon, ']')) {
        hsl = (size_t)(colon - c->hostport);
        kms_copy(c->port, sizeof c->port, colon + 1);
    } else {
        kms_copy(c->port, sizeof c->port, "443");
    }
    if (hs[0] == '[') {
        if (hsl < 2 || hs[hsl - 1] != ']')
            goto bad_url;
        hs++;
        hsl -= 2;
    }
    if (hsl == 0 || hsl >= sizeof c->host)
        goto bad_url;
    memcpy(c->host, hs, hsl);
    c->host[hsl] = '\0';
    c->token_len = strlen(o->token);
    if (!(c->token = secmem_alloc(c->token_len + 1))) {
        kms_client_close(c);
        return at_error_set(AT_ENOMEM, "kms client: no locked memory for the token");
    }
    memcpy(c->token, o->token, c->token_len);
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1 ||
        (o->ca_file ? SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL)
                    : SSL_CTX_set_default_verify_paths(c->ctx)) != 1) {
        kms_client_close(c);
        return at_error_set(AT_ECRYPTO, "kms client: cannot set up TLS%s%s",
                            o->ca_file ? " with " : "", o->ca_file ? o->ca_file : "");
    }
    SSL_CTX_set_verify(c->ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    *out = c;
    return 0;
bad_url:
    kms_client_close(c);
    return at_error_set(AT_EINVAL, "kms client: cannot parse the URL %s", o->url);
}

/* ---- one request ------------------------------------------------------------ */

static int connect_to(struct kms_client *c)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &ai);
    if (rc != 0)
        return -1;
    int fd = -1;
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* The response body (NUL-terminated, secmem, cap RESP_MAX + 1) and status. */
static int exchange(struct kms_client *c, const char *method, const char *path, const char *body,
                    int *status, char **resp, size_t *resp_len)
{
    int rc = AT_EIO, fd = connect_to(c);
    SSL *ssl = NULL;
    size_t blen = body ? strlen(body) : 0;
    size_t hcap = strlen(path) + c->token_len + 512, rlen = 0;
    char *req = secmem_alloc(hcap + blen);
    char *buf = secmem_alloc(RESP_MAX + 1);
    *resp = NULL;
    if (!req || !buf) {
        rc = AT_ENOMEM;
        goto out;
    }
    if (fd < 0) {
        at_error_set(AT_EIO, "kms: cannot connect to %s", c->hostport);
        goto out;
    }
    ssl = SSL_new(c->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1)
        goto tls;
    struct in6_addr a6;
    int is_ip = inet_pton(AF_INET, c->host, &a6) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, c->host);
    if (!c->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host)
                   : X509_VERIFY_PARAM_set1_host(vp, c->host, 0)) != 1)
            goto tls;
    }
    if (SSL_connect(ssl) != 1)
        goto tls;
    int n = snprintf(req, hcap,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Accept: application/json\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, c->hostport, c->token, blen);
    if (n < 0 || (size_t)n >= hcap)
        goto tls;
    memcpy(req + n, body ? body : "", blen);
    if (SSL_write(ssl, req, (int)((size_t)n + blen)) != (int)((size_t)n + blen))
        goto tls;
    for (;;) {
        if (rlen >= RESP_MAX) {
            at_error_set(AT_EIO, "kms: the answer from %s is too large", c->hostport);
            goto out;
        }
        int r = SSL_read(ssl, buf + rlen, (int)(RESP_MAX - rlen));
        if (r <= 0)
            break; /* close_notify or EOF: Connection: close */
        rlen += (size_t)r;
    }
    buf[rlen] = '\0';
    int major = 0, minor = 0, code = 0;
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (!hdr_end || sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &code) != 3) {
        at_error_set(AT_EIO, "kms: no HTTP answer from %s", c->hostport);
        goto out;
    }
    char *b = hdr_end + 4;
    *resp_len = rlen - (size_t)(b - buf);
    memmove(buf, b, *resp_len + 1);
    *status = code;
    *resp = buf;
    buf = NULL;
    rc = 0;
    goto out;
tls:
    at_error_set(AT_EIO, "kms: TLS with %s failed: %s", c->hostport,
                 ERR_reason_error_string(ERR_peek_last_error())
                     ? ERR_reason_error_string(ERR_peek_last_error())
                     : "connection closed");
    ERR_clear_error();
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
    secmem_free(req, hcap + blen);
    secmem_free(buf, RESP_MAX + 1);
    return rc;
}

static void free_resp(char *resp)
{
    secmem_free(resp, RESP_MAX + 1);
}

/* Run a request; on 2xx *doc is its JSON (decref it). */
static int call(struct kms_client *c, const char *method, const char *path, const char *body,
                json_t **doc, struct kms_client_status *st)
{
    struct kms_client_status dummy;
    int status = 0;
    char *resp = NULL;
    size_t len = 0;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    *doc = NULL;
    int rc = exchange(c, method, path, body, &status, &resp, &len);
    if (rc)
        return rc;
    st->http = status;
    json_t *j = json_loadb(resp, len, 0, NULL);
    free_resp(resp);
    if (status >= 200 && status < 300) {
        if (!j)
            return at_error_set(AT_EIO, "kms: %s %s answered %d without JSON", method, path,
                                status);
        *doc = j;
        return 0;
    }
    json_t *e = json_object_get(j, "error");
    kms_copy(st->code, sizeof st->code, json_string_value(json_object_get(e, "code")));
    kms_copy(st->inner, sizeof st->inner,
             json_string_value(json_object_get(json_object_get(e, "innererror"), "code")));
    const char *msg = json_string_value(json_object_get(e, "message"));
    rc = at_error_set(AT_EKEYUNAVAIL, "kms: %s %s: %d %s%s%s%s: %.200s", method, path, status,
                      st->code, st->inner[0] ? " (" : "", st->inner, st->inner[0] ? ")" : "",
                      msg ? msg : "");
    json_decref(j);
    return rc;
}

static int key_path(char *out, size_t cap, const char *name, const char *version,
                    const char *suffix)
{
    if (!kms_name_ok(name) || (version && *version && strlen(version) > 64))
        return at_error_set(AT_EINVAL, "kms client: bad key name or version");
    for (const char *p = version; p && *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return at_error_set(AT_EINVAL, "kms client: bad key version");
    snprintf(out, cap, "/keys/%s/%s%s?api-version=" API_VERSION, name, version ? version : "",
             suffix);
    return 0;
}

int kms_client_get_key(struct kms_client *c, const char *name, const char *version,
                       struct kms_client_key *key, struct kms_client_status *st)
{
    char path[512];
    json_t *doc;
    int rc = key_path(path, sizeof path, name, version, "");
    if (rc || (rc = call(c, "GET", path, NULL, &doc, st)) != 0)
        return rc;
    json_t *k = json_object_get(doc, "key"), *a = json_object_get(doc, "attributes");
    memset(key, 0, sizeof *key);
    kms_copy(key->kid, sizeof key->kid, json_string_value(json_object_get(k, "kid")));
    kms_copy(key->kty, sizeof key->kty, json_string_value(json_object_get(k, "kty")));
    key->enabled = json_is_true(json_object_get(a, "enabled"));
    key->nbf = json_integer_value(json_object_get(a, "nbf"));
    key->exp = json_integer_value(json_object_get(a, "exp"));
    json_decref(doc);
    return key->kid[0] ? 0 : at_error_set(AT_EIO, "kms: GET %s: no key in the answer", path);
}

int kms_client_create_key(struct kms_client *c, const char *name, const char *kty,
                          struct kms_client_key *key, struct kms_client_status *st)
{
    char path[512], body[160];
    json_t *doc;
    int rc = key_path(path, sizeof path, name, NULL, "create");
    if (rc)
        return rc;
    if (!kty || strlen(kty) > 16)
        return at_error_set(AT_EINVAL, "kms client: bad key type");
    int rsa = strncmp(kty, "RSA", 3) == 0;
    snprintf(body, sizeof body, "{\"kty\":\"%s\",\"key_size\":%d,\"key_ops\":[\"wrapKey\",\"unwrapKey\"]}",
             kty, rsa ? 3072 : 256);
    if ((rc = call(c, "POST", path, body, &doc, st)) != 0)
        return rc;
    json_t *k = json_object_get(doc, "key");
    const char *kid = json_string_value(json_object_get(k, "kid"));
    if (key) {
        memset(key, 0, sizeof *key);
        kms_copy(key->kid, sizeof key->kid, kid);
        kms_copy(key->kty, sizeof key->kty, json_string_value(json_object_get(k, "kty")));
        key->enabled = json_is_true(json_object_get(json_object_get(doc, "attributes"), "enabled"));
    }
    rc = kid ? 0 : at_error_set(AT_EIO, "kms: POST %s: no key in the answer", path);
    json_decref(doc);
    return rc;
}

static int wrap_op(struct kms_client *c, const char *op, const char *name, const char *version,
                 const char *alg, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                 size_t *out_len, char *kid, struct kms_client_status *st)
{
    char path[512];
    json_t *doc = NULL;
    int rc = key_path(path, sizeof path, name, version, op);
    if (rc)
        return rc;
    if (!alg || !in || len == 0 || len > KMS_WRAP_MAX)
        return at_error_set(AT_EINVAL, "kms client: nothing to %s", op + 1);
    size_t b64cap = KMS_B64URL_LEN(len) + 1, bodycap = b64cap + 64;
    char *b64 = secmem_alloc(b64cap), *body = secmem_alloc(bodycap);
    if (!b64 || !body) {
        rc = AT_ENOMEM;
        goto out;
    }
    kms_b64url_encode(in, len, b64);
    snprintf(body, bodycap, "{\"alg\":\"%.16s\",\"value\":\"%s\"}", alg, b64);
    if ((rc = call(c, "POST", path, body, &doc, st)) != 0)
        goto out;
    json_t *v = json_object_get(doc, "value");
    size_t vl = json_string_length(v);
    if (!json_is_string(v) || vl * 3 / 4 > cap ||
        kms_b64url_decode(json_string_value(v), vl, out, out_len) != 0 || *out_len > cap) {
        secmem_wipe(out, cap);
        rc = at_error_set(AT_EIO, "kms: POST %s: no value in the answer", path);
        goto out;
    }
    if (kid)
        kms_copy(kid, 512, json_string_value(json_object_get(doc, "kid")));
out:
    json_decref(doc); /* the daemon's JSON allocator wipes; see kms_wipe_free */
    secmem_free(b64, b64cap);
    secmem_free(body, bodycap);
    return rc;
}

int kms_client_wrap(struct kms_client *c, const char *name, const char *version, const char *alg,
                    const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len,
                    char *kid, struct kms_client_status *st)
{
    return wrap_op(c, "/wrapkey", name, version, alg, in, len, out, cap, out_len, kid, st);
}

int kms_client_unwrap(struct kms_client *c, const char *name, const char *version,
                      const char *alg, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      size_t *out_len, struct kms_client_status *st)
{
    return wrap_op(c, "/unwrapkey", name, version, alg, in, len, out, cap, out_len, NULL, st);
}
