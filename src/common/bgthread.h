/*
 * bgthread.h — background work yields the CPU to requests.
 *
 * Periodic backups and other bulk work run on their own threads; on a
 * small machine they compete with the threads that serve requests. Linux
 * keeps a nice value per thread (and threads started later inherit it), so
 * such a thread lowers its own priority once when it starts: when the CPU
 * is free it runs at full speed, when requests want it they come first.
 */
#ifndef ATREST_COMMON_BGTHREAD_H
#define ATREST_COMMON_BGTHREAD_H

#define BG_THREAD_NICE 10 /* added to the thread's nice value (at most 19) */

/* Lower the calling thread's CPU priority by BG_THREAD_NICE. Best effort:
 * a failure leaves the priority as it was. */
void bg_thread_lower(void);

#endif
