/*
 * aead.c — AES-256-GCM through OpenSSL 3 EVP (see aead.h).
 *
 * The cipher is fetched once per process (an implicit fetch per call costs
 * more than encrypting a page).
 *
 * aead_seal/aead_open: each thread keeps one EVP_CIPHER_CTX and re-keys it
 * on every call; the context is reset right after each call so the expanded
 * key schedule does not outlive the operation (OpenSSL cleanses it on reset).
 *
 * aead_seal_kept/aead_open_kept keep the schedule instead: keying costs about
 * a third of a 4 KiB page's decryption, and the page layer uses the same few
 * keys for every page. Invariants:
 *   K1. A kept schedule lies only in the kept arena: one mapping, mlock()ed
 *       and MADV_DONTDUMP, cut into ARENA_BLOCK-byte blocks. OpenSSL's
 *       allocator is redirected (CRYPTO_set_mem_functions, installed when the
 *       program loads) into the arena while, and only while, a thread keys a
 *       kept context. Every other allocation is malloc's.
 *   K2. A block is wiped (OPENSSL_cleanse) whenever it is freed, and so is a
 *       kept key copy whenever its entry is dropped.
 *   K3. aead_forget_kept() drops every thread's kept schedules before it
 *       returns, waiting for an operation in flight on that thread. Whoever
 *       wipes a key that may have been used with the _kept calls calls it.
 *   K4. When the redirect could not be installed, the arena cannot be
 *       locked or is full, the _kept calls re-key per call like aead_open:
 *       nothing is ever kept outside the arena.
 */
#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* One message through ctx. With key set, ctx is keyed first; without, ctx
 * already holds its key and only the nonce and direction change. */
static int one_message(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, const uint8_t *key, int enc,
                       const uint8_t *nonce, const uint8_t *aad, size_t aad_len, const uint8_t *in,
                       size_t len, uint8_t *out, uint8_t *tag)
{
    int n = 0, fin = 0;
    uint8_t spare[AEAD_TAG_LEN];
    if (!out)
        out = spare; /* zero-length message: OpenSSL still wants a buffer */
    if (!EVP_CipherInit_ex2(ctx, cipher, key, nonce, enc, NULL))
        return 0;
    if (aad_len && !EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len))
        return 0;
    if (len && !EVP_CipherUpdate(ctx, out, &n, in, (int)len))
        return 0;
    if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tag))
        return 0;
    /* For decryption, Final performs the constant-time tag comparison. */
    fin = EVP_CipherFinal_ex(ctx, out + n, &n);
    if (enc && fin && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag))
        return 0;
    return fin;
}

static int failed(int enc, uint8_t *out, size_t len)
{
    if (!enc) {
        if (len)
            secmem_wipe(out, len);
        return AT_EINTEGRITY;
    }
    return AT_ECRYPTO;
}

static int run(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return AT_EINVAL;
    EVP_CIPHER_CTX *ctx = thread_ctx();
    if (!ctx)
        return AT_ECRYPTO;
    int ok = one_message(ctx, gcm, key, enc, nonce, aad, aad_len, in, len, out, tag);
    EVP_CIPHER_CTX_reset(ctx);
    return ok ? 0 : failed(enc, out, len);
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

/* ---- the kept arena (K1, K2) ---------------------------------------- */

#define ARENA_BLOCK  1024 /* OpenSSL 3.0's GCM provider context is 960 bytes */
#define ARENA_BLOCKS 256
#define ARENA_BYTES  ((size_t)ARENA_BLOCK * ARENA_BLOCKS)

static unsigned char *arena; /* published once, read without the lock */
static uint64_t arena_used[ARENA_BLOCKS / 64];
static size_t arena_nused;
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static int redirect_on;       /* CRYPTO_set_mem_functions took our hooks */
static __thread int to_arena; /* this thread is keying a kept context */

static int in_arena(const void *p)
{
    const unsigned char *a = __atomic_load_n(&arena, __ATOMIC_ACQUIRE);
    const unsigned char *q = p;
    return a && q >= a && q < a + ARENA_BYTES;
}

static void *arena_take(size_t n)
{
    const unsigned char *a = __atomic_load_n(&arena, __ATOMIC_ACQUIRE);
    if (!a || n == 0 || n > ARENA_BLOCK)
        return NULL;
    void *out = NULL;
    pthread_mutex_lock(&arena_lock);
    for (size_t w = 0; w < ARENA_BLOCKS / 64 && !out; w++) {
        if (arena_used[w] == UINT64_MAX)
            continue;
        int b = __builtin_ctzll(~arena_used[w]);
        arena_used[w] |= 1ULL << b;
        arena_nused++;
        out = arena + (w * 64 + (size_t)b) * ARENA_BLOCK;
    }
    pthread_mutex_unlock(&arena_lock);
    return out;
}

static void arena_give(void *p)
{
    size_t i = (size_t)((unsigned char *)p - arena) / ARENA_BLOCK;
    OPENSSL_cleanse(arena + i * ARENA_BLOCK, ARENA_BLOCK);
    pthread_mutex_lock(&arena_lock);
    arena_used[i / 64] &= ~(1ULL << (i % 64));
    arena_nused--;
    pthread_mutex_unlock(&arena_lock);
}

static void *hook_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return to_arena ? arena_take(n) : malloc(n);
}

static void *hook_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p && in_arena(p)) { /* a block never moves out of the arena */
        if (n == 0)
            arena_give(p);
        return n && n <= ARENA_BLOCK ? p : NULL;
    }
    if (!p && to_arena)
        return arena_take(n);
    return realloc(p, n);
}

static void hook_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p && in_arena(p))
        arena_give(p);
    else
        free(p);
}

/* Before main: CRYPTO_set_mem_functions refuses once OpenSSL has allocated. */
__attribute__((constructor)) static void install_redirect(void)
{
    redirect_on = CRYPTO_set_mem_functions(hook_malloc, hook_realloc, hook_free);
}

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void map_arena(void)
{
    if (!redirect_on || secmem_init() != 0)
        return;
    void *p = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    if (mlock(p, ARENA_BYTES) != 0 || madvise(p, ARENA_BYTES, MADV_DONTDUMP) != 0) {
        munmap(p, ARENA_BYTES);
        return;
    }
    __atomic_store_n(&arena, (unsigned char *)p, __ATOMIC_RELEASE);
}

/* ---- kept contexts per thread (K3, K4) ------------------------------ */

#define KEPT_PER_THREAD 4 /* two layers, each mid-rotation: two versions */

struct kept_entry {
    EVP_CIPHER_CTX *ctx; /* keyed; its provider context in the arena */
    uint64_t last_use;
    uint8_t key[AEAD_KEY_LEN];
};

struct kept { /* one arena block per thread */
    pthread_mutex_t lock;
    struct kept *prev, *next;
    uint64_t tick;
    struct kept_entry e[KEPT_PER_THREAD];
};

_Static_assert(sizeof(struct kept) <= ARENA_BLOCK, "struct kept must fit an arena block");

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept *threads;
static uint64_t kept_epoch; /* bumped by every aead_forget_kept */
static pthread_key_t kept_key;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void drop_entry(struct kept_entry *e)
{
    EVP_CIPHER_CTX_free(e->ctx); /* OpenSSL cleanses; hook_free wipes again */
    e->ctx = NULL;
    e->last_use = 0;
    OPENSSL_cleanse(e->key, sizeof e->key);
}

static void drop_all(struct kept *k)
{
    for (int i = 0; i < KEPT_PER_THREAD; i++)
        if (k->e[i].ctx)
            drop_entry(&k->e[i]);
}

static void kept_thread_end(void *p)
{
    struct kept *k = p;
    pthread_mutex_lock(&threads_lock);
    if (k->prev)
        k->prev->next = k->next;
    else
        threads = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&threads_lock);
    pthread_mutex_lock(&k->lock);
    drop_all(k);
    pthread_mutex_unlock(&k->lock);
    pthread_mutex_destroy(&k->lock);
    arena_give(k);
}

static void kept_init(void)
{
    pthread_key_create(&kept_key, kept_thread_end);
    pthread_once(&arena_once, map_arena);
}

static struct kept *thread_kept(void)
{
    pthread_once(&gcm_once, init_gcm);
    pthread_once(&kept_once, kept_init);
    if (!gcm || !__atomic_load_n(&arena, __ATOMIC_ACQUIRE))
        return NULL;
    struct kept *k = pthread_getspecific(kept_key);
    if (k)
        return k;
    if (!(k = arena_take(sizeof *k)))
        return NULL;
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->lock, NULL);
    if (pthread_setspecific(kept_key, k) != 0) {
        pthread_mutex_destroy(&k->lock);
        arena_give(k);
        return NULL;
    }
    pthread_mutex_lock(&threads_lock);
    k->next = threads;
    if (threads)
        threads->prev = k;
    threads = k;
    pthread_mutex_unlock(&threads_lock);
    return k;
}

/* The entry keyed with key, keyed now in the least recently used slot if no
 * entry has it; NULL when the arena cannot take one (K4). Under k->lock. */
static struct kept_entry *kept_find(struct kept *k, const uint8_t *key)
{
    struct kept_entry *lru = &k->e[0];
    for (int i = 0; i < KEPT_PER_THREAD; i++) {
        struct kept_entry *e = &k->e[i];
        if (e->ctx && CRYPTO_memcmp(e->key, key, AEAD_KEY_LEN) == 0) {
            e->last_use = ++k->tick;
            return e;
        }
        if (e->last_use < lru->last_use)
            lru = e;
    }
    if (lru->ctx)
        drop_entry(lru);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return NULL;
    to_arena = 1;
    int ok = EVP_CipherInit_ex2(ctx, gcm, key, NULL, 0, NULL);
    to_arena = 0;
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    lru->ctx = ctx;
    memcpy(lru->key, key, AEAD_KEY_LEN);
    lru->last_use = ++k->tick;
    return lru;
}

uint64_t aead_kept_epoch(void)
{
    return __atomic_load_n(&kept_epoch, __ATOMIC_ACQUIRE);
}

/* A forget that began after epoch was read may have run before this call
 * took k->lock: then the key may be one being wiped, and is not kept. The
 * check is under k->lock, after which the forget's own pass drops it. */
static int run_kept(uint64_t epoch, int enc, const uint8_t *key, const uint8_t *nonce,
                    const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len, uint8_t *out,
                    uint8_t *tag)
{
    if (len > INT32_MAX || aad_len > INT32_MAX)
        return AT_EINVAL;
    struct kept *k = thread_kept();
    if (!k)
        return run(enc, key, nonce, aad, aad_len, in, len, out, tag);
    pthread_mutex_lock(&k->lock);
    struct kept_entry *e = NULL;
    if (epoch == __atomic_load_n(&kept_epoch, __ATOMIC_ACQUIRE))
        e = kept_find(k, key);
    if (!e) {
        pthread_mutex_unlock(&k->lock);
        return run(enc, key, nonce, aad, aad_len, in, len, out, tag);
    }
    int ok = one_message(e->ctx, NULL, NULL, enc, nonce, aad, aad_len, in, len, out, tag);
    if (!ok) { /* rare (a bad tag): start the next message from a fresh key */
        drop_entry(e);
        ERR_clear_error();
    }
    pthread_mutex_unlock(&k->lock);
    return ok ? 0 : failed(enc, out, len);
}

int aead_seal_kept(uint64_t epoch, const uint8_t key[AEAD_KEY_LEN],
                   const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[AEAD_TAG_LEN])
{
    return run_kept(epoch, 1, key, nonce, aad, aad_len, in, len, out, tag);
}

int aead_open_kept(uint64_t epoch, const uint8_t key[AEAD_KEY_LEN],
                   const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                   const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[AEAD_TAG_LEN])
{
    return run_kept(epoch, 0, key, nonce, aad, aad_len, in, len, out, (uint8_t *)tag);
}

void aead_forget_kept(void)
{
    __atomic_add_fetch(&kept_epoch, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&threads_lock);
    for (struct kept *k = threads; k; k = k->next) {
        pthread_mutex_lock(&k->lock);
        drop_all(k);
        pthread_mutex_unlock(&k->lock);
    }
    pthread_mutex_unlock(&threads_lock);
}

void aead_kept_stats(struct aead_kept_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_once(&kept_once, kept_init);
    st->available = __atomic_load_n(&arena, __ATOMIC_ACQUIRE) != NULL;
    pthread_mutex_lock(&threads_lock);
    for (struct kept *k = threads; k; k = k->next) {
        pthread_mutex_lock(&k->lock);
        for (int i = 0; i < KEPT_PER_THREAD; i++)
            st->kept += k->e[i].ctx != NULL;
        pthread_mutex_unlock(&k->lock);
    }
    pthread_mutex_unlock(&threads_lock);
    pthread_mutex_lock(&arena_lock);
    st->blocks_used = arena_nused;
    pthread_mutex_unlock(&arena_lock);
}

size_t aead_kept_arena_count(const void *needle, size_t n)
{
    const unsigned char *a = __atomic_load_n(&arena, __ATOMIC_ACQUIRE);
    size_t found = 0;
    if (!a || n == 0)
        return 0;
    pthread_mutex_lock(&arena_lock);
    for (size_t i = 0; i + n <= ARENA_BYTES; i++)
        found += memcmp(a + i, needle, n) == 0;
    pthread_mutex_unlock(&arena_lock);
    return found;
}
