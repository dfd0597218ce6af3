/* keywrap.c — RFC 5649 key wrap with padding via OpenSSL (see keywrap.h). */
#include "crypto/keywrap.h"

#include <openssl/evp.h>

#include "crypto/secmem.h"

static const char *cipher_name(size_t kek_len)
{
    switch (kek_len) {
    case 16:
        return "AES-128-WRAP-PAD";
    case 24:
        return "AES-192-WRAP-PAD";
    case 32:
        return "AES-256-WRAP-PAD";
    default:
        return NULL;
    }
}

static int run(int enc, const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
               uint8_t *out, size_t *out_len)
{
    const char *name = cipher_name(kek_len);
    if (!name || in_len == 0 || in_len > 4096 || (!enc && (in_len < 16 || in_len % 8)))
        return AT_EINVAL;
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int rc = enc ? AT_ECRYPTO : AT_EINTEGRITY, n = 0, m = 0;
    if (!c || !ctx) {
        rc = AT_ECRYPTO;
        goto out;
    }
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (!EVP_CipherInit_ex2(ctx, c, kek, NULL, enc, NULL))
        goto out;
    if (!EVP_CipherUpdate(ctx, out, &n, in, (int)in_len))
        goto out;
    if (!EVP_CipherFinal_ex(ctx, out + n, &m))
        goto out;
    *out_len = (size_t)n + (size_t)m;
    rc = 0;
out:
    if (rc && !enc)
        secmem_wipe(out, in_len - KEYWRAP_OVERHEAD);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return rc;
}

int keywrap_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len, uint8_t *out,
                 size_t *out_len)
{
    return run(1, kek, kek_len, in, in_len, out, out_len);
}

int keywrap_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, size_t *out_len)
{
    return run(0, kek, kek_len, in, in_len, out, out_len);
}
