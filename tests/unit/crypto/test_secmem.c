/*
 * test_secmem.c — memory for secrets: zeroed on allocation, locked and
 * excluded from core dumps (checked in /proc/self/smaps, not only through
 * secmem_is_secure), wiped on free, core dumps disabled for the process,
 * constant-time equality.
 *
 * test_core_dumps_disabled must run first: it arms core dumps before the
 * first secmem call so that secmem_init() is seen turning them off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "crypto/secmem.h"

static int all_zero(const volatile uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

struct mapping {
    long locked_kb;
    int flag_lo, flag_dd;
};

/* Find the /proc/self/smaps entry containing p. 0 when found. */
static int smaps_for(const void *p, struct mapping *m)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, found = 0;
    uintptr_t a = (uintptr_t)p;
    memset(m, 0, sizeof *m);
    m->locked_kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        /* Mapping headers read "lo-hi perms ..."; field names hold no '-'. */
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            if (found)
                break;
            in = a >= lo && a < hi;
            found = in;
            continue;
        }
        if (!in)
            continue;
        if (strncmp(line, "Locked:", 7) == 0)
            m->locked_kb = strtol(line + 7, NULL, 10);
        if (strncmp(line, "VmFlags:", 8) == 0) {
            m->flag_lo = strstr(line, " lo") != NULL;
            m->flag_dd = strstr(line, " dd") != NULL;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

static void test_core_dumps_disabled(void **state)
{
    (void)state;
    /* Arm what secmem_init must disarm (where we are allowed to). */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    if (rl.rlim_max > 0) {
        rl.rlim_cur = rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_CORE, &rl), 0);
    }
    assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);

    assert_int_equal(secmem_init(), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_true(rl.rlim_cur == 0);
    assert_true(rl.rlim_max == 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);

    /* Idempotent, and an allocation keeps it so. */
    assert_int_equal(secmem_init(), 0);
    void *p = secmem_alloc(16);
    assert_non_null(p);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    secmem_free(p, 16);
}

static void test_alloc_zeroed(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 32, 64, 65, 5000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint8_t *p = secmem_alloc(n);
        assert_non_null(p);
        assert_true(all_zero(p, n));
        memset(p, 0xa5, n);
        secmem_free(p, n);
        /* The freed slot (or pages) come back zeroed. */
        uint8_t *q = secmem_alloc(n);
        assert_non_null(q);
        assert_true(all_zero(q, n));
        secmem_free(q, n);
    }
    assert_null(secmem_alloc(0));
}

/* AddressSanitizer intercepts mlock() and makes it a no-op that reports
 * success, so pages cannot be seen locked in a sanitizer build. */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MLOCK_WORKS 0
#endif
#endif
#ifndef MLOCK_WORKS
#define MLOCK_WORKS 1
#endif

static void check_locked(const void *p)
{
    struct mapping m;
    assert_int_equal(smaps_for(p, &m), 0);
    if (MLOCK_WORKS) {
        assert_true(m.locked_kb > 0);
        assert_true(m.flag_lo); /* VM_LOCKED */
    }
    assert_true(m.flag_dd); /* VM_DONTDUMP */
}

static void test_locked_and_undumpable(void **state)
{
    (void)state;
    uint8_t *small = secmem_alloc(32), *large = secmem_alloc(10000);
    assert_non_null(small);
    assert_non_null(large);
    assert_true(secmem_is_secure(small));
    assert_true(secmem_is_secure(small + 31));
    assert_true(secmem_is_secure(large));
    assert_true(secmem_is_secure(large + 9999));
    check_locked(small);
    check_locked(large);
    check_locked(large + 9999);

    /* Ordinary memory is not reported secure, nor locked. */
    uint8_t stack[32];
    uint8_t *heap = malloc(32);
    assert_non_null(heap);
    assert_false(secmem_is_secure(stack));
    assert_false(secmem_is_secure(heap));
    struct mapping m;
    assert_int_equal(smaps_for(stack, &m), 0);
    assert_false(m.flag_dd);
    free(heap);
    secmem_free(small, 32);
    secmem_free(large, 10000);
}

/* Small slots stay mapped after free, so the wipe can be observed. */
static void test_wipe_on_free(void **state)
{
    (void)state;
    uint8_t *p = secmem_alloc(48);
    assert_non_null(p);
    memset(p, 0x5a, 48);
    secmem_free(p, 48);
    assert_true(all_zero((volatile uint8_t *)p, 48));

    uint8_t buf[40];
    memset(buf, 0x77, sizeof buf);
    secmem_wipe(buf, sizeof buf);
    assert_true(all_zero(buf, sizeof buf));
    secmem_free(NULL, 10); /* no-op */
}

static void test_equal(void **state)
{
    (void)state;
    uint8_t a[64], b[64];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = b[i] = (uint8_t)i;
    assert_int_equal(secmem_equal(a, b, sizeof a), 1);
    b[0] ^= 1;
    assert_int_equal(secmem_equal(a, b, sizeof a), 0);
    b[0] ^= 1;
    b[63] ^= 0x80;
    assert_int_equal(secmem_equal(a, b, sizeof a), 0);
    assert_int_equal(secmem_equal(a, b, 63), 1);
    assert_int_equal(secmem_equal(a, b, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_dumps_disabled), /* first: see above */
        cmocka_unit_test(test_alloc_zeroed),        cmocka_unit_test(test_locked_and_undumpable),
        cmocka_unit_test(test_wipe_on_free),        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
