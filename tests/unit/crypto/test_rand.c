/*
 * test_rand.c — nonces from the per-thread pool never repeat, not across
 * pool refills, not between threads, and not between a parent and a forked
 * child (which would otherwise inherit the parent's unused pool).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/rand.h"

#define N 5000

static int cmp12(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

static void assert_distinct(uint8_t (*v)[12], size_t n)
{
    qsort(v, n, 12, cmp12);
    for (size_t i = 1; i < n; i++)
        assert_true(memcmp(v[i - 1], v[i], 12) != 0);
}

static void test_no_repeats_across_refills(void **state)
{
    (void)state;
    uint8_t(*v)[12] = malloc(N * 12);
    for (int i = 0; i < N; i++) /* 5000 x 12 bytes: ~15 pool refills */
        assert_int_equal(rand_nonce(v[i], 12), 0);
    assert_distinct(v, N);
    free(v);
    uint8_t big[65];
    assert_int_equal(rand_nonce(big, sizeof big), AT_EINVAL);
}

static void *draw(void *p)
{
    uint8_t(*v)[12] = p;
    for (int i = 0; i < N; i++)
        if (rand_nonce(v[i], 12) != 0)
            memset(v[i], 0, 12);
    return NULL;
}

static void test_threads_do_not_share(void **state)
{
    (void)state;
    uint8_t(*v)[12] = malloc(2 * N * 12);
    pthread_t a, b;
    pthread_create(&a, NULL, draw, v);
    pthread_create(&b, NULL, draw, v + N);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_distinct(v, 2 * N);
    free(v);
}

static void test_fork_does_not_reuse_pool(void **state)
{
    (void)state;
    uint8_t first[12], parent_next[12], child_next[12];
    assert_int_equal(rand_nonce(first, 12), 0); /* pool now filled */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t c[12];
        if (rand_nonce(c, 12) != 0 || write(p[1], c, 12) != 12)
            _exit(1);
        _exit(0);
    }
    assert_int_equal(read(p[0], child_next, 12), 12);
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(rand_nonce(parent_next, 12), 0);
    assert_true(memcmp(parent_next, child_next, 12) != 0);
    assert_true(memcmp(first, child_next, 12) != 0);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_repeats_across_refills),
        cmocka_unit_test(test_threads_do_not_share),
        cmocka_unit_test(test_fork_does_not_reuse_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
