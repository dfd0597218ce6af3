/*
 * clock.h — elapsed time for measuring and pacing (not wall-clock time),
 * and deadlines for timed waits on condition variables.
 */
#ifndef ATREST_COMMON_CLOCK_H
#define ATREST_COMMON_CLOCK_H

#include <pthread.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC, as a double. */
static inline double mono_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The time s seconds from now on clock clk, for pthread_cond_timedwait
 * (clk: the condition's clock). */
static inline struct timespec deadline_after(clockid_t clk, double s)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += (time_t)s;
    ts.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* A condition whose timed waits count on CLOCK_MONOTONIC, so that setting
 * the wall clock neither cuts nor stretches them. */
static inline int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

#endif
