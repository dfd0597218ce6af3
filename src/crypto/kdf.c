/*
 * kdf.c — HKDF-SHA256 over OpenSSL's EVP_PKEY_HKDF (see kdf.h).
 */
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#include "crypto/kdf.h"
#include "crypto/secmem.h"

int kdf_hkdf_sha256(const uint8_t *ikm, size_t n, const char *salt, const char *info, uint8_t *out,
                    size_t outlen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    int ok = c && EVP_PKEY_derive_init(c) > 0 && EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_salt(c, (const unsigned char *)salt, (int)strlen(salt)) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_key(c, ikm, (int)n) > 0 &&
             EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info, (int)strlen(info)) > 0 &&
             EVP_PKEY_derive(c, out, &outlen) > 0;
    EVP_PKEY_CTX_free(c);
    if (ok)
        return 0;
    secmem_wipe(out, outlen);
    return at_error_set(AT_ECRYPTO, "HKDF failed");
}
