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

#endif
