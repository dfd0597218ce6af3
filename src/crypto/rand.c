/* rand.c — OpenSSL DRBG wrappers (see rand.h). */
#include "crypto/rand.h"

#include <limits.h>
#include <openssl/rand.h>

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
