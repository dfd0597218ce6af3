/*
 * clock.h — elapsed time for measuring and pacing (not wall-clock time).
 */
#ifndef ATREST_COMMON_CLOCK_H
#define ATREST_COMMON_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC, as a double. */
static inline double mono_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif
