/*
 * rand.h — randomness from OpenSSL's DRBG (seeded from the OS).
 * rand_key draws from the private DRBG (keys), rand_bytes from the public
 * one (nonces, ids, salts), as OpenSSL recommends.
 */
#ifndef ATREST_CRYPTO_RAND_H
#define ATREST_CRYPTO_RAND_H

#include <stddef.h>

#include "common/error.h"

int rand_key(void *buf, size_t n) AT_WUR;
int rand_bytes(void *buf, size_t n) AT_WUR;

/* Nonces (n <= 64): DRBG output served from a per-thread pool refilled 4 KB
 * at a time, because each RAND_bytes call costs a getpid() system call
 * (OpenSSL's fork check) — about as much as encrypting the page. The pool
 * is discarded in a forked child (pthread_atfork), so parent and child
 * never share nonces. Nonces are not secret; keys never come from here. */
int rand_nonce(void *buf, size_t n) AT_WUR;

#endif
