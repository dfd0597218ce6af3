/*
 * keywrap.h — AES key wrap with padding (RFC 5649) through OpenSSL
 * (AES-{128,192,256}-WRAP-PAD). atrest wraps with 256-bit KEKs; the other
 * sizes exist so the RFC's own vectors (192-bit KEK) can be checked.
 *
 * Output length: in_len rounded up to a multiple of 8, plus 8.
 * unwrap returns AT_EINTEGRITY (and wipes out) when the integrity check
 * value does not match: wrong KEK, or a damaged wrapped key.
 */
#ifndef ATREST_CRYPTO_KEYWRAP_H
#define ATREST_CRYPTO_KEYWRAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define KEYWRAP_OVERHEAD   8
#define KEYWRAP_OUT_LEN(n) ((((n) + 7) / 8) * 8 + KEYWRAP_OVERHEAD)

/* out must hold KEYWRAP_OUT_LEN(in_len) bytes; *out_len receives the size. */
int keywrap_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len, uint8_t *out,
                 size_t *out_len) AT_WUR;

/* out must hold in_len - 8 bytes; *out_len receives the unwrapped size. */
int keywrap_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, size_t *out_len) AT_WUR;

#endif
