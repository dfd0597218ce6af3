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

/* Release the calling thread's cached cipher context (wiped by OpenSSL).
 * Optional: contexts are also released when their thread exits. */
void aead_thread_cleanup(void);

#endif
