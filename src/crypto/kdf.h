/*
 * kdf.h — HKDF-SHA256 (RFC 5869) through OpenSSL, for keys derived from a
 * DEK: the backup's data and manifest keys, media keys.
 */
#ifndef ATREST_CRYPTO_KDF_H
#define ATREST_CRYPTO_KDF_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* out[0..outlen) = HKDF-SHA256(ikm[0..n), salt, info) with salt and info
 * NUL-terminated strings. AT_ECRYPTO (out wiped) when OpenSSL fails. */
int kdf_hkdf_sha256(const uint8_t *ikm, size_t n, const char *salt, const char *info, uint8_t *out,
                    size_t outlen) AT_WUR;

#endif
