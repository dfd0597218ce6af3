/*
 * aead.h — AES-256-GCM seal/open of a page or blob.
 *
 * seal: out = AES-256-GCM(key, nonce, aad, in), tag written separately.
 * open: authenticates (constant-time tag check inside OpenSSL) and decrypts;
 *       on failure returns AT_EINTEGRITY and wipes out[0..len), so a caller
 *       can never mistake unauthenticated bytes for data.
 * in and out may be the same buffer. Nonces must never repeat under one key:
 * callers draw them with rand_nonce() and count encryptions per key.
 */
#ifndef ATREST_CRYPTO_AEAD_H
#define ATREST_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define AEAD_KEY_LEN   32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN   16

int aead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
              const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
              uint8_t tag[AEAD_TAG_LEN]) AT_WUR;

int aead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
              const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
              const uint8_t tag[AEAD_TAG_LEN]) AT_WUR;

/* As aead_seal/aead_open, but the key's expanded schedule may be kept for
 * the next call with the same key on this thread (up to four keys per
 * thread), in locked, undumpable memory: keying is about a third of the cost
 * of a 4 KiB page. Falls back to keying per call when that memory is not to
 * be had. Only for keys whose end the caller announces with
 * aead_forget_kept(). epoch is aead_kept_epoch() read before the caller
 * obtained key: a forget since then means key may be one being wiped, and
 * it is not kept. */
uint64_t aead_kept_epoch(void);

int aead_seal_kept(uint64_t epoch, const uint8_t key[AEAD_KEY_LEN],
                   const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[AEAD_TAG_LEN]) AT_WUR;

int aead_open_kept(uint64_t epoch, const uint8_t key[AEAD_KEY_LEN],
                   const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out,
                   const uint8_t tag[AEAD_TAG_LEN]) AT_WUR;

/* Wipe every thread's kept schedules and key copies; waits for a kept call
 * in flight. Call it whenever a key used with the _kept calls is wiped. */
void aead_forget_kept(void);

struct aead_kept_stats {
    int available;      /* the locked arena exists and OpenSSL allocates into it */
    size_t kept;        /* keyed contexts kept, all threads */
    size_t blocks_used; /* arena blocks in use (a context's, a thread's table) */
};

/* For tests and diagnostics. */
void aead_kept_stats(struct aead_kept_stats *st);

/* For tests: occurrences of needle[0..n) anywhere in the locked arena. */
size_t aead_kept_arena_count(const void *needle, size_t n);

/* Release the calling thread's cached cipher context (wiped by OpenSSL).
 * Optional: contexts are also released when their thread exits. */
void aead_thread_cleanup(void);

#endif
