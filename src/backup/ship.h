/*
 * ship.h — continuous backups: every store's durable commits, shipped to
 * the blob store as authenticated log segments within seconds, so that
 * backup_restore_at can restore any moment of the retention window
 * (docs/backup.md, "Continuous mode").
 *
 *   commit (VFS sync) ──copy sealed frames──▶ queue ──shipper thread──▶
 *     open each page under the store's DEK, seal the segment under the
 *     epoch DEK ──▶ put cont/<epoch>/<segno> ──▶ put cont/<epoch>/head
 *
 * An epoch is one run of the shipper (one server process): its own DEK
 * (one random share per key layer, wrapped by the account's providers like
 * a backup's, in cont/<epoch>/key), segments numbered from 0 and chained
 * by their tags, per-store commit sequences from 1. Base backups taken
 * while it runs record their position in it (backup_job_set_chain).
 *
 * Invariants:
 *   1. The log never depends on a store DEK: pages are re-sealed under the
 *      epoch DEK as they are shipped; DEK rotation or a dropped container
 *      cannot make a shipped segment unreadable.
 *   2. No plaintext page leaves process memory: the queue holds sealed
 *      frames; the segment being built lives in an undumpable mapping and
 *      is sealed before it is put or spooled.
 *   3. A commit is never silently skipped: the commit sequences of a store
 *      are contiguous in the log; a commit that cannot be captured (out of
 *      memory, a page that fails to open) leaves a gap that restore
 *      detects, is counted in the status and asks for a new base backup.
 *   4. A segment that cannot be put waits, sealed, in the spool folder and
 *      is retried with backoff, in order; the head is only advanced past
 *      segments that are in the target.
 */
#ifndef ATREST_BACKUP_SHIP_H
#define ATREST_BACKUP_SHIP_H

#include <stdint.h>

#include "backup/backup.h"
#include "storage/store.h"

struct ship;

struct ship_options {
    const char *target;           /* blob target (blob.h) */
    const char *account_key_file; /* azblob account key file, or NULL */
    struct backup_keys keys;      /* the account's providers (not owned) */
    const char *spool_dir;        /* created 0700 when missing */
    unsigned interval_ms;         /* a segment at least this often; 0: 2000 */
    /* Called (on the shipper thread) when the log got a gap and a new base
     * backup is needed; may be NULL. */
    void (*need_base)(void *ctx);
    void *need_base_ctx;
    blob_fault_fn fault; /* file target test hook (blob.h), normally NULL */
    void *fault_ctx;
};

/* Start an epoch: write its key blob, upload segments left in the spool by
 * an earlier run, install the commit observer on env (before any store is
 * opened) and start the shipper thread. */
int ship_start(struct store_env *env, const struct ship_options *o, struct ship **out) AT_WUR;

/* After every store is closed: ship what is queued, mark the epoch closed
 * in its head when everything is in the target (else the spool keeps it),
 * stop the thread, free. */
void ship_stop(struct ship *s);

/* For base backups: the epoch id, the number of the next segment to be
 * cut, and how many commits of store name were captured so far. Read
 * them while no commit of the store is in flight (catalog_backup runs on
 * the store's writer). */
const char *ship_epoch(const struct ship *s);
uint64_t ship_next_seg(struct ship *s);
uint64_t ship_store_seq(struct ship *s, const char *name);

/* Cut a segment now and wait (at most timeout_ms) until every commit made
 * before the call is in the target and the head says so. 0, or ETIMEDOUT. */
int ship_flush(struct ship *s, int timeout_ms) AT_WUR;

struct ship_status {
    char epoch[BACKUP_ID_LEN];
    int64_t covered_us;       /* every commit up to this time is shipped */
    uint64_t segments;        /* segments in the target */
    uint64_t commits_shipped; /* commits in them */
    uint64_t commits_queued;  /* captured, not yet in the target */
    uint64_t bytes_shipped;
    uint64_t spooled;                          /* segments waiting in the spool folder */
    uint64_t gaps;                             /* commits lost to the log (invariant 3) */
    double lag_p50_ms, lag_p99_ms, lag_max_ms; /* commit → in the target,
                                                  over the last 8192 commits */
    char last_error[256];                      /* the last failed put, "" when none since */
};
void ship_status_get(struct ship *s, struct ship_status *out);

#endif
