/*
 * rekey.h — data-key rotation: re-seal every page of a store under its
 * current DEK versions while the store serves, then destroy the old DEKs.
 *
 * A rotation starts a new DEK version in every layer of a store
 * (store_rotate_keys): from then on every page SQLite writes is sealed
 * under it. A re-encryption (store_rekey_*) rewrites the pages still under
 * older versions, in batches, crash-safe, and when none is left (main file
 * and WAL) destroys the older versions in the keyring. The state machine
 * and the crash rules are at the top of rekey.c.
 */
#ifndef ATREST_STORAGE_REKEY_H
#define ATREST_STORAGE_REKEY_H

#include <stdint.h>

#include "common/error.h"
#include "storage/store.h"

/* Start a new DEK version in every layer of st (persisted before it
 * returns): new writes use it at once. */
int store_rotate_keys(struct store *st) AT_WUR;

/* 1 when some layer of st has a DEK version older than its current one:
 * a rotation whose re-encryption has not finished (or not started). */
int store_rekey_pending(struct store *st);

struct store_rekey;

/* Begin (or resume: the work is idempotent) the re-encryption of st. The
 * store must stay open until store_rekey_free. */
int store_rekey_new(struct store *st, struct store_rekey **out) AT_WUR;

/* Do up to max_pages pages of work (one batch, one lock hold). *done is
 * set when every page of the main file and every WAL frame is under the
 * current versions and the older DEK versions are destroyed. Errors:
 * AT_EINTEGRITY (a page failed authentication: nothing is written and no
 * key destroyed), errno values (I/O), keyring errors. */
int store_rekey_step(struct store_rekey *rk, uint32_t max_pages, int *done) AT_WUR;

/* Read and re-seal each batch with 1 (default) or 2 threads: 2 for an
 * unthrottled run on an idle machine, 1 beside foreground work. */
void store_rekey_set_threads(struct store_rekey *rk, int threads);

/* Called once the pages are all current, before the older DEK versions
 * are destroyed, with the versions they were made current under: for keys
 * kept outside the pages that the older versions wrap or derive (media
 * keys), to move them first. Returns 0 to go on, 1 to be asked again at a
 * later step (something still uses an older version), or an error, which
 * the step returns (nothing destroyed). */
typedef int (*store_rekey_retire_fn)(void *arg, const uint32_t current[2]);
void store_rekey_set_before_retire(struct store_rekey *rk, store_rekey_retire_fn fn, void *arg);

struct store_rekey_progress {
    uint64_t pages;     /* main-file pages when the current pass began */
    uint64_t visited;   /* pages of the current pass looked at */
    uint64_t rewritten; /* pages re-sealed by this re-encryption */
    uint64_t bytes;     /* bytes read and re-sealed or checked */
    uint64_t destroyed; /* DEK versions destroyed at the end */
    int waiting_wal;    /* waiting for older WAL frames to be checkpointed */
};
void store_rekey_progress(const struct store_rekey *rk, struct store_rekey_progress *p);
void store_rekey_free(struct store_rekey *rk);

/* Called by store open before SQLite opens path: finish or discard the
 * batch an interrupted re-encryption left in path-rekey. */
int rekey_recover(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layers,
                  const char *path) AT_WUR;

/* Which DEK versions a store file's pages are sealed under, from the page
 * trailers: main-file pages and WAL frames (a stale WAL tail included),
 * per layer, versions ascending. The outer version is in the clear; the
 * inner one (two layers) sits under the outer layer's seal and is counted
 * only when kr and id are given (inner_known), else layer 1 stays empty.
 * Pages that do not open count in other[1]. Versions beyond
 * REKEY_CENSUS_MAX distinct ones count in other. */
#define REKEY_CENSUS_MAX 8
struct rekey_census {
    uint64_t pages, wal_frames;
    int inner_known;
    int nver[2];
    uint32_t ver[2][REKEY_CENSUS_MAX];
    uint64_t pages_at[2][REKEY_CENSUS_MAX];  /* main-file pages under ver */
    uint64_t frames_at[2][REKEY_CENSUS_MAX]; /* WAL frames under ver */
    uint64_t other[2];
};
int rekey_census(const char *path, int layers, struct keyring *kr,
                 const uint8_t id[KEYRING_FILE_ID_LEN], struct rekey_census *c) AT_WUR;

#endif
