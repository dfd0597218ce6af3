/*
 * aead.c — AES-256-GCM through OpenSSL 3 EVP (see aead.h).
 *
 * The cipher is fetched once per process (an implicit fetch per call costs
 * more than encrypting a page). Each thread keeps one EVP_CIPHER_CTX and
 * re-keys it on every call; the context is reset right after each call so
 * the expanded key schedule does not outlive the operation (OpenSSL cleanses
 * it on reset).
 */
#include "crypto/aead.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "crypto/secmem.h"

static EVP_CIPHER *gcm;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

static void free_ctx(void *p)
{
    EVP_CIPHER_CTX_free(p);
}

static void init_gcm(void)
{
    gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    pthread_key_create(&ctx_key, free_ctx);
}

static EVP_CIPHER_CTX *thread_ctx(void)
{
    pthread_once(&gcm_once, init_gcm);
    if (!gcm)
        return NULL;
    EVP_CIPHER_CTX *ctx = pthread_getspecific(ctx_key);
    if (!ctx) {
        ctx = EVP_CIPHER_CTX_new();
        if (ctx && pthread_setspecific(ctx_key, ctx) != 0) {
            EVP_CIPHER_CTX_free(ctx);
            ctx = NULL;
        }
    }
    return ctx;
}

void aead_thread_cleanup(void)
{
    pthread_once(&gcm_once, init_gcm);
    EVP_CIPHER_CTX *ctx = pthread_getspecific(ctx_key);
    if (ctx) {
        EVP_CIPHER_CTX_free(ctx);
        pthread_setspecific(ctx_key, NULL);
    }
}

static int run(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = thread_ctx();
    if (!ctx)
        return AT_ECRYPTO;
    int ok = 0, n = 0, fin = 0;
    uint8_t spare[AEAD_TAG_LEN];
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return AT_EINVAL;
    if (!out)
        out = spare; /* zero-length message: OpenSSL still wants a buffer */
    if (!EVP_CipherInit_ex2(ctx, gcm, key, nonce, enc, NULL))
        goto out;
    if (aad_len && !EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len))
        goto out;
    if (len && !EVP_CipherUpdate(ctx, out, &n, in, (int)len))
        goto out;
    if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tag))
        goto out;
    /* For decryption, Final performs the constant-time tag comparison. */
    fin = EVP_CipherFinal_ex(ctx, out + n, &n);
    if (enc && fin && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag))
        goto out;
    ok = fin;
out:
    EVP_CIPHER_CTX_reset(ctx);
    if (ok)
        return 0;
    if (!enc) {
        if (len)
            secmem_wipe(out, len);
        return AT_EINTEGRITY;
    }
    return AT_ECRYPTO;
}

int aead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
              const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
              uint8_t tag[AEAD_TAG_LEN])
{
    return run(1, key, nonce, aad, aad_len, in, len, out, tag);
}

int aead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
              const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
              const uint8_t tag[AEAD_TAG_LEN])
{
    return run(0, key, nonce, aad, aad_len, in, len, out, (uint8_t *)tag);
}
