/*
 * secmem.c — locked, undumpable memory for keys (see secmem.h).
 *
 * Small allocations (<= SLOT bytes) share slabs: one page cut into 64-byte
 * slots, with a bitmap of the slots in use. Larger allocations get pages of
 * their own. Every page is mlock()ed and MADV_DONTDUMP before use; a slab is
 * kept for the life of the process (keys come and go, the pages stay
 * locked), so no key byte ever lands on an unlocked page.
 */
#include "crypto/secmem.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define SLOT      64
#define MAX_SLABS 1024

struct slab {
    unsigned char *base;
    size_t nslots;
    uint64_t used[1]; /* one bit per slot; nslots <= 64 */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab slabs[MAX_SLABS];
static int nslabs;
static size_t page_size;
static int hardened;

/* Large allocations are tracked so secmem_is_secure can answer for them. */
#define MAX_LARGE 256
static struct {
    unsigned char *base;
    size_t len;
} large[MAX_LARGE];

int secmem_init(void)
{
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (!hardened) {
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_CORE, &rl) != 0)
            rc = errno;
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 && rc == 0)
            rc = errno;
        page_size = (size_t)sysconf(_SC_PAGESIZE);
        hardened = rc == 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static unsigned char *map_locked(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mlock(p, len) != 0 || madvise(p, len, MADV_DONTDUMP) != 0) {
        int e = errno;
        munmap(p, len);
        errno = e == EPERM ? ENOMEM : e;
        return NULL;
    }
    return p;
}

void *secmem_alloc(size_t n)
{
    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (secmem_init() != 0) {
        errno = EPERM;
        return NULL;
    }
    void *out = NULL;
    pthread_mutex_lock(&lock);
    if (n <= SLOT) {
        for (int i = 0; i < nslabs && !out; i++) {
            struct slab *s = &slabs[i];
            for (size_t k = 0; k < s->nslots; k++) {
                if (!(s->used[0] & (1ULL << k))) {
                    s->used[0] |= 1ULL << k;
                    out = s->base + k * SLOT;
                    break;
                }
            }
        }
        if (!out && nslabs < MAX_SLABS) {
            unsigned char *base = map_locked(page_size);
            if (base) {
                struct slab *s = &slabs[nslabs++];
                s->base = base;
                s->nslots = page_size / SLOT > 64 ? 64 : page_size / SLOT;
                s->used[0] = 1;
                out = base;
            }
        } else if (!out) {
            errno = ENOMEM;
        }
    } else {
        size_t len = (n + page_size - 1) / page_size * page_size;
        int slot = -1;
        for (int i = 0; i < MAX_LARGE; i++)
            if (!large[i].base) {
                slot = i;
                break;
            }
        if (slot >= 0) {
            out = map_locked(len);
            if (out) {
                large[slot].base = out;
                large[slot].len = len;
            }
        } else {
            errno = ENOMEM;
        }
    }
    pthread_mutex_unlock(&lock);
    if (out)
        memset(out, 0, n);
    return out;
}

void secmem_free(void *p, size_t n)
{
    if (!p)
        return;
    unsigned char *q = p;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nslabs; i++) {
        struct slab *s = &slabs[i];
        if (q >= s->base && q < s->base + s->nslots * SLOT) {
            size_t k = (size_t)(q - s->base) / SLOT;
            OPENSSL_cleanse(s->base + k * SLOT, SLOT);
            s->used[0] &= ~(1ULL << k);
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    for (int i = 0; i < MAX_LARGE; i++) {
        if (large[i].base == q) {
            OPENSSL_cleanse(q, large[i].len);
            munlock(q, large[i].len);
            munmap(q, large[i].len);
            large[i].base = NULL;
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    pthread_mutex_unlock(&lock);
    /* Not ours: still wipe what the caller says it is. */
    OPENSSL_cleanse(p, n);
}

void secmem_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

int secmem_equal(const void *a, const void *b, size_t n)
{
    /* CRYPTO_memcmp runs in time that depends on n only. */
    return CRYPTO_memcmp(a, b, n) == 0;
}

int secmem_is_secure(const void *p)
{
    const unsigned char *q = p;
    int yes = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nslabs && !yes; i++)
        yes = q >= slabs[i].base && q < slabs[i].base + slabs[i].nslots * SLOT;
    for (int i = 0; i < MAX_LARGE && !yes; i++)
        yes = large[i].base && q >= large[i].base && q < large[i].base + large[i].len;
    pthread_mutex_unlock(&lock);
    return yes;
}
