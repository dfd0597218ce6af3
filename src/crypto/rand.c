/* rand.c — OpenSSL DRBG wrappers (see rand.h). */
#include "crypto/rand.h"

#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#define POOL 4096

static _Thread_local unsigned char pool[POOL];
static _Thread_local size_t pool_left;
static _Thread_local unsigned pool_gen;
static unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    __atomic_add_fetch(&fork_gen, 1, __ATOMIC_SEQ_CST);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

int rand_key(void *buf, size_t n)
{
    if (n > INT_MAX)
        return AT_EINVAL;
    return RAND_priv_bytes(buf, (int)n) == 1 ? 0 : AT_ECRYPTO;
}

int rand_bytes(void *buf, size_t n)
{
    if (n > INT_MAX)
        return AT_EINVAL;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : AT_ECRYPTO;
}

int rand_nonce(void *buf, size_t n)
{
    if (n > 64)
        return AT_EINVAL;
    pthread_once(&atfork_once, install_atfork);
    unsigned gen = __atomic_load_n(&fork_gen, __ATOMIC_SEQ_CST);
    if (pool_gen != gen || pool_left < n) {
        if (RAND_bytes(pool, POOL) != 1)
            return AT_ECRYPTO;
        pool_left = POOL;
        pool_gen = gen;
    }
    unsigned char *p = pool + (POOL - pool_left);
    memcpy(buf, p, n);
    memset(p, 0, n); /* each pool byte is handed out once */
    pool_left -= n;
    return 0;
}
