/*
 * secmem.h — memory for secrets.
 *
 * Invariants:
 *   1. Every byte returned by secmem_alloc() lies in pages that are mlock()ed
 *      (never swapped) and madvise(MADV_DONTDUMP)ed (never in a core dump).
 *   2. secmem_free() overwrites the bytes with a wipe the compiler cannot
 *      remove (OPENSSL_cleanse) before the slot can be handed out again.
 *   3. The first call to secmem_init() (made implicitly by secmem_alloc)
 *      disables core dumps for the whole process: RLIMIT_CORE 0 and
 *      PR_SET_DUMPABLE 0.
 *
 * Allocation fails (NULL) rather than hand out unlocked memory: a secret that
 * cannot be locked is not kept.
 */
#ifndef ATREST_CRYPTO_SECMEM_H
#define ATREST_CRYPTO_SECMEM_H

#include <stddef.h>

#include "common/error.h"

/* Harden the process (no core dumps, not dumpable). Idempotent.
 * Returns 0, or an errno if a setting could not be applied. */
int secmem_init(void) AT_WUR;

/* Zeroed, locked, undumpable memory of n bytes (n > 0), or NULL with errno
 * set (ENOMEM when the lock limit is reached). Thread-safe. */
void *secmem_alloc(size_t n);

/* Wipe and release p (from secmem_alloc with the same n). NULL is a no-op. */
void secmem_free(void *p, size_t n);

/* Wipe any buffer (stack or heap) in a way the compiler keeps. */
void secmem_wipe(void *p, size_t n);

/* Constant-time equality of two buffers of length n: 1 equal, 0 not.
 * Leaks n, not the position of the first difference. */
int secmem_equal(const void *a, const void *b, size_t n);

/* For tests: nonzero when p lies in a locked, undumpable secmem page. */
int secmem_is_secure(const void *p);

#endif
