/*
 * client.h — a small HTTPS client for atrest-kms (or Azure Key Vault's keys
 * API): get a key, wrap and unwrap with it, authenticated by a bearer token.
 * Meant for src/keys/ to build a remote key provider on (atrestd --kms).
 *
 * Each call opens one TLS connection (OpenSSL, TLS 1.2+, the peer verified
 * against ca_file or the system's roots, its name or IP checked against
 * the URL's host unless insecure is set), sends one request with
 * "Connection: close", and reads the answer. Calls are thread-safe: the
 * client holds only the immutable SSL_CTX and settings.
 *
 * Errors: 0; AT_EIO when the service cannot be reached or the connection
 * breaks (nothing was answered: retry later); AT_EKEYUNAVAIL when the
 * service answered with an error (the status and Key Vault error code are
 * in *st: 401 bad token, 403 no permission or key disabled/expired
 * (st->inner: AccessDenied, KeyDisabled, ...), 404 no such key or version,
 * 400 bad input, e.g. a value not wrapped by this key); AT_EINVAL for bad
 * arguments; AT_ENOMEM. A detail line (at_error_detail) names the URL path
 * and the service's message; it never holds a token or a key.
 */
#ifndef ATREST_KMS_CLIENT_H
#define ATREST_KMS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct kms_client;

struct kms_client_options {
    const char *url;     /* https://HOST:PORT (a trailing slash is fine) */
    const char *token;   /* bearer token; copied into locked memory */
    const char *ca_file; /* PEM file of trusted certificates; NULL: system roots */
    int insecure;        /* 1: do not verify the certificate (tests, --kms-insecure) */
    int timeout_ms;      /* connect/read/write timeout; 0: 10 s */
};

/* What the service said, for callers that must tell a revoked key from an
 * unreachable service. */
struct kms_client_status {
    int http;        /* HTTP status, 0 when nothing was answered */
    char code[64];   /* error.code, e.g. "Forbidden" */
    char inner[64];  /* error.innererror.code, e.g. "KeyDisabled" */
};

struct kms_client_key {
    char kid[512];  /* https://HOST:PORT/keys/NAME/VERSION */
    char kty[16];   /* oct-HSM, oct, RSA, RSA-HSM */
    int enabled;
    long long nbf, exp; /* 0: unset */
};

int kms_client_open(const struct kms_client_options *o, struct kms_client **out) AT_WUR;
void kms_client_close(struct kms_client *c);

/* version NULL or "": the key's current version. st may be NULL. */
int kms_client_get_key(struct kms_client *c, const char *name, const char *version,
                       struct kms_client_key *key, struct kms_client_status *st) AT_WUR;

/* Create the key name (admins only), or add a version when it exists:
 * kty "oct-HSM"/"oct" (AES-256) or "RSA"/"RSA-HSM" (3072 bits), with the
 * operations wrapKey and unwrapKey. key (may be NULL) receives the bundle. */
int kms_client_create_key(struct kms_client *c, const char *name, const char *kty,
                          struct kms_client_key *key, struct kms_client_status *st) AT_WUR;

/* alg "A256KW", "RSA-OAEP-256" or "RSA-OAEP". out receives at most cap
 * bytes; kid (512 bytes, may be NULL) the version the service used. */
int kms_client_wrap(struct kms_client *c, const char *name, const char *version, const char *alg,
                    const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len,
                    char *kid, struct kms_client_status *st) AT_WUR;
/* The unwrapped key is written to out (use locked memory); wiped on error. */
int kms_client_unwrap(struct kms_client *c, const char *name, const char *version,
                      const char *alg, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      size_t *out_len, struct kms_client_status *st) AT_WUR;

#endif
