/*
 * api.h — the key service's REST layer: a request in, a response out, with
 * no HTTP library in sight (http.c adapts libmicrohttpd to this; the unit
 * tests could call it directly).
 *
 * kms_api_handle() authenticates the bearer token, routes the Key Vault
 * keys subset (api-version 7.x), checks the identity's access, performs the
 * operation on the vault, appends one audit entry, and fills the response:
 * a Key Vault JSON body or {"error":{"code","message"}} with its status.
 */
#ifndef ATREST_KMS_API_H
#define ATREST_KMS_API_H

#include <stddef.h>

#include "kms/kms.h"

struct kms_server {
    struct kms_dir dir;
    struct kms_vault *vault;
    struct kms_audit *audit;
    struct kms_policy_view policy;
    uint8_t *secret;  /* token secret, secmem */
    char url[320];    /* https://HOST:PORT, the base of every kid */
    int log_requests; /* one stderr line per request (method, route, status) */
};

struct kms_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* without the query */
    const char *api_version;   /* query parameter, or NULL */
    const char *authorization; /* header, or NULL */
    const char *body;          /* NUL-terminated, may be NULL */
    size_t body_len;
};

struct kms_response {
    int status;
    char *body; /* malloc'd JSON, or NULL (204); the caller wipes and frees it */
    size_t len;
    int challenge; /* add the WWW-Authenticate Bearer challenge */
    char route[32]; /* the operation, for logs */
};

void kms_api_handle(struct kms_server *s, const struct kms_request *rq, struct kms_response *rs);

/* The WWW-Authenticate value for s (Key Vault's challenge). */
void kms_api_challenge(const struct kms_server *s, char *out, size_t cap);

/* free() that wipes the block first (responses carry unwrapped keys). */
void kms_wipe_free(void *p);

/* ---- http.c: HTTPS (TLS 1.2+) with libmicrohttpd, a thread per connection.
 * kms_http_stop stops accepting, finishes the requests in flight, closes. */
struct kms_http;
int kms_http_start(struct kms_server *s, const char *host, int port, const char *cert_pem,
                   const char *key_pem, struct kms_http **out) AT_WUR;
void kms_http_stop(struct kms_http *h);
/* The port actually bound (useful with port 0). */
int kms_http_port(const struct kms_http *h);

#endif
