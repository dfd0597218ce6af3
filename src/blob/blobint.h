/*
 * blobint.h — private to src/blob/: the targets' constructors and the
 * helpers they share (checksums, retry policy, Shared Key signing). The
 * signing and retry functions are pure so tests/unit/blob can check them
 * against documented and independently computed vectors.
 */
#ifndef ATREST_BLOB_BLOBINT_H
#define ATREST_BLOB_BLOBINT_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

/* Options with every default filled in. */
struct blob_cfg {
    size_t block_size;
    int max_attempts;
    unsigned backoff_ms, backoff_max_ms;
    unsigned connect_timeout_s, stall_timeout_s;
    blob_fault_fn fault;
    void *fault_ctx;
};

int blob_file_open(const struct blob_cfg *cfg, const char *dir, struct blob_store **out) AT_WUR;
int blob_az_open(const struct blob_cfg *cfg, const char *url, const char *key_file,
                 const char *account_name, struct blob_store **out) AT_WUR;

/* Call src until buf[0..cap) is full or the source ends, so block
 * boundaries depend only on the bytes (never on how the source chunks
 * them): a resumed upload cuts the same blocks. */
int blob_fill(blob_source_fn src, void *ctx, uint8_t *buf, size_t cap, size_t *got) AT_WUR;

/* ---- checksums: SHA-256, and MD5 beside it where Azure wants one ---- */
struct blob_hash {
    void *sha; /* EVP_MD_CTX * */
    void *md5; /* NULL: no MD5 (final writes zeros) */
};
int blob_hash_init(struct blob_hash *h, int with_md5) AT_WUR;
int blob_hash_update(struct blob_hash *h, const uint8_t *p, size_t n) AT_WUR;
int blob_hash_final(struct blob_hash *h, uint8_t sha256[32], uint8_t md5[16]) AT_WUR;
void blob_hash_free(struct blob_hash *h);
/* One-shot MD5 (Content-MD5 of a block) and SHA-256. */
int blob_md5(const uint8_t *p, size_t n, uint8_t out[16]) AT_WUR;
int blob_sha256(const uint8_t *p, size_t n, uint8_t out[32]) AT_WUR;

/* Lower-case hex of n bytes into out (2n+1). hex_decode: 0 or AT_EFORMAT. */
void blob_hex(const uint8_t *p, size_t n, char *out);
int blob_unhex(const char *s, uint8_t *out, size_t n) AT_WUR;
/* Standard base64 with padding; out needs 4*((n+2)/3)+1. */
void blob_b64(const uint8_t *p, size_t n, char *out);
/* Decode; *len gets the size. AT_EFORMAT on bad input or overflow of cap. */
int blob_unb64(const char *s, uint8_t *out, size_t cap, size_t *len) AT_WUR;

/* ---- retry policy ---- */
/* 1 for HTTP statuses worth retrying: 408, 429, 5xx. */
int blob_status_retryable(long status);
/* Delay before retry number `retry` (1 = first retry): exponential from
 * backoff_ms, capped at backoff_max_ms, with jitter drawn from
 * [delay/2, delay] using the caller's random value r. */
unsigned blob_backoff_ms(const struct blob_cfg *cfg, int retry, uint32_t r);
void blob_sleep_ms(unsigned ms);

/* ---- Azure Shared Key (azsig.c) ---- */
struct azsk_header {
    const char *name; /* any case */
    const char *value;
};
/* Build the Shared Key string-to-sign for the Blob service (version
 * 2015-02-21 and later: Content-Length empty when zero) from the verb, the
 * request headers, the account, the request URL's path (as sent, percent-
 * encoded) and its raw query string (no '?', may be NULL). Returns a
 * malloc()ed string in *out. */
int azsk_string_to_sign(const char *verb, const struct azsk_header *h, size_t nh,
                        const char *account, const char *path, const char *query, char **out) AT_WUR;
/* base64(HMAC-SHA256(key, sts)) into out (45 bytes). */
int azsk_sign(const uint8_t *key, size_t keylen, const char *sts, char out[45]) AT_WUR;
/* Percent-encode s for a query value into out (cap); AT_EINVAL if too long. */
int azsk_query_escape(const char *s, char *out, size_t cap) AT_WUR;

#endif
