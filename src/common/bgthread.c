/*
 * bgthread.c — see bgthread.h.
 */
#include "common/bgthread.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

void bg_thread_lower(void)
{
    pid_t tid = gettid(); /* PRIO_PROCESS with a thread id: that thread only */
    errno = 0;
    int now = getpriority(PRIO_PROCESS, (id_t)tid);
    if (now == -1 && errno)
        return;
    int want = now + BG_THREAD_NICE > 19 ? 19 : now + BG_THREAD_NICE;
    (void)setpriority(PRIO_PROCESS, (id_t)tid, want);
}
