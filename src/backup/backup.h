/*
 * backup.h — encrypted full backups of an account to a blob store, and
 * their listing, verification and restore (docs/backup.md).
 *
 * A backup is one blob per store plus a manifest written last:
 *
 *   <id>/s000 … <id>/sNNN   a store's pages, read as plaintext inside one
 *                           read transaction (a WAL snapshot) and sealed in
 *                           chunks with AES-256-GCM under a key derived from
 *                           a fresh per-backup DEK; the associated data of a
 *                           chunk binds backup id, store name, chunk index
 *                           and whether it is the last one
 *   <id>/manifest           what the backup holds (stores, sizes, SHA-256 of
 *                           each store blob, chunk size, the wrapped backup
 *                           DEK with key ids and KEK versions, server
 *                           version, time), authenticated with HMAC-SHA256
 *                           under a second key derived from the same DEK.
 *                           Its put is the commit point: a backup without
 *                           a manifest does not exist.
 *
 * The backup DEK is the HKDF of one random share per key layer, each share
 * wrapped by that layer's key provider (the outer one always, the customer
 * key's too when the account has one): every layer is needed to read it.
 *
 * Invariants:
 *   1. The blob store receives ciphertext only; plaintext pages exist only
 *      in process memory (anonymous, undumpable mappings, wiped on release).
 *   2. Nothing read from a backup is used before it is authenticated: the
 *      manifest's MAC is checked before any of its fields is trusted; a
 *      chunk's tag before any of its bytes is passed on.
 *   3. A failed backup leaves no manifest: earlier backups stay listed and
 *      untouched; its store blobs are removed (best effort).
 *   4. A restore that fails removes what it created (the new data folder's
 *      store files and keyring entries); it never writes into an existing
 *      store.
 *
 * Errors (error.h): AT_EINTEGRITY (a chunk, store blob or manifest failed
 * authentication, was truncated, reordered or swapped), AT_EFORMAT (not a
 * backup atrest wrote, or a newer format), AT_ENOTFOUND (no such backup),
 * AT_EKEYMISMATCH (the key folder given is not the one the backup was made
 * with), a key provider's error, a blob store's error, or an errno. Each
 * failure records a detail naming the backup, the store and what failed.
 */
#ifndef ATREST_BACKUP_BACKUP_H
#define ATREST_BACKUP_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "common/error.h"
#include "keys/provider.h"
#include "storage/store.h"

#define BACKUP_ID_LEN        27 /* "YYYYMMDDTHHMMSSmmmZ-xxxxxx" (UTC, ms) + NUL */
#define BACKUP_CHUNK_DEFAULT (1u << 20) /* plaintext bytes per sealed chunk */
#define BACKUP_MAX_STORES    4096

/* The account's key providers (not owned). inner is NULL for one layer. */
struct backup_keys {
    struct key_provider *outer;
    struct key_provider *inner;
};

/* Called as work goes on: phase ("backup", "verify", "restore"), bytes
 * done and bytes in all (0 when unknown). */
typedef void (*backup_progress_fn)(void *ctx, const char *phase, uint64_t done, uint64_t total);

/* ---- making a backup ----------------------------------------------------
 * backup_job_new, then backup_job_add for every store in the order the
 * account needs them restored (metadata first), then backup_job_run once.
 * backup_job_add opens its own connection to the store and a read
 * transaction on it at once: the backup holds the store as it was at that
 * moment, however long the run takes and whatever writers do meanwhile. */
struct backup_job;

int backup_job_new(const struct backup_keys *keys, struct backup_job **out) AT_WUR;
int backup_job_add(struct backup_job *j, const char *store_name, struct store *st) AT_WUR;
/* Seal and put every store, then the manifest. On failure, the store blobs
 * already put are removed and no manifest exists. */
int backup_job_run(struct backup_job *j, struct blob_store *bs, backup_progress_fn progress,
                   void *ctx) AT_WUR;
/* Yield the disk to foreground writes: while the stores commit (any page
 * sealed by the storage layer in the last 50 ms), the run puts at
 * most busy_mbps megabytes per second; when they are quiet it runs at full
 * speed. 0 (the default): never paced. Call before backup_job_run. */
#define BACKUP_BUSY_MBPS_DEFAULT 64
void backup_job_set_busy_mbps(struct backup_job *j, unsigned busy_mbps);
/* Media (docs/backup.md, "Media"): fn is called for every store after its
 * snapshot is in memory and before it is sealed, with the snapshot opened
 * as a database (memory only: what fn changes goes into the backup, never
 * into the store), the backup's media key (BACKUP_MEDIA_KEY_LEN bytes,
 * secmem), and the name prefix "<id>/m/" under which blobs fn puts into bs
 * belong to this backup (they go with it when it fails or is pruned).
 * Nonzero fails the backup. */
#define BACKUP_MEDIA_KEY_LEN 32
struct sqlite3;
typedef int (*backup_media_fn)(void *ctx, const char *store_name, struct sqlite3 *image,
                               const uint8_t *key, const char *prefix, struct blob_store *bs);
void backup_job_set_media(struct backup_job *j, backup_media_fn fn, void *ctx);
const char *backup_job_id(const struct backup_job *j);
uint64_t backup_job_bytes(const struct backup_job *j); /* ciphertext put */
/* End the read transactions, close the connections, wipe keys, free. */
void backup_job_free(struct backup_job *j);

/* Continuous mode (docs/backup.md, ship.h): the position in each store's
 * commit stream the job's snapshots hold. store i's snapshot holds exactly
 * its first seq commits of the log epoch; first_seg is the first log
 * segment that can hold a later commit; t_end_us (unix µs) is a time after
 * every snapshot began. The job then puts <id>/position before its
 * manifest. */
struct backup_chain_store {
    char name[64];
    uint64_t seq;
};
int backup_job_set_chain(struct backup_job *j, const char *epoch, uint64_t first_seg,
                         int64_t t_end_us, const struct backup_chain_store *stores,
                         size_t n) AT_WUR;

/* ---- reading backups ---------------------------------------------------- */

struct backup_info {
    char id[BACKUP_ID_LEN];
    int64_t created;        /* unix seconds */
    uint64_t bytes;         /* store blobs plus manifest, as stored */
    uint64_t plain_bytes;   /* pages backed up */
    uint32_t nstores;
    char server_version[32];
    int verified;           /* manifest MAC checked (keys were given) */
};

/* Every backup with a manifest, oldest first (*out malloc'd). With keys,
 * each manifest is authenticated (info.verified; a manifest that fails is
 * still listed, verified = -1); without, only parsed. */
int backup_list(struct blob_store *bs, const struct backup_keys *keys, struct backup_info **out,
                size_t *n) AT_WUR;

/* The newest backup's id, or AT_ENOTFOUND. */
/* The key ids (kp_key_id) a backup's DEK is wrapped under, per layer, read
 * from its manifest without keys (not authenticated: for choosing the
 * providers to open; restore and verify check them). id NULL: the newest
 * backup. AT_ENOTFOUND without backups. */
int backup_key_ids(struct blob_store *bs, const char *id, char ids[2][KP_KEY_ID_MAX],
                   int *layers) AT_WUR;

int backup_latest(struct blob_store *bs, char id[BACKUP_ID_LEN]) AT_WUR;

/* Authenticate the manifest and every chunk of every store of backup id
 * without writing anything. info may be NULL. */
int backup_verify(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                  backup_progress_fn progress, void *ctx, struct backup_info *info) AT_WUR;

/* Restore backup id into env, a new, empty data folder (its keyring made
 * by another key provider): every store is created with fresh DEKs and its
 * pages sealed under them. AT_EEXIST when env already holds a store. On
 * failure every store the restore created is dropped again. */
/* The media key of backup id and its blob prefix ("<id>/m/"), for the
 * restore's side of backup_media_fn: key (BACKUP_MEDIA_KEY_LEN bytes) is
 * the caller's, best in secmem. Errors as backup_verify's manifest checks. */
int backup_media_key(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                     uint8_t *key, char *prefix, size_t prefix_cap) AT_WUR;
int backup_restore(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                   struct store_env *env, backup_progress_fn progress, void *ctx,
                   struct backup_info *info) AT_WUR;

/* Point-in-time restore (continuous mode): the newest base backup whose
 * snapshots all began at or before at_us (unix µs), then, per store, every
 * logged commit after its base position with a commit time <= at_us, into
 * env as backup_restore does (fresh DEKs; plaintext only in memory). The
 * log must reach at_us (the covered-until time of its head or of a
 * segment, or the epoch was closed by a clean stop). AT_EINVAL (with a detail) when at_us is before
 * the first base, in the future, or beyond what the log holds;
 * AT_EINTEGRITY when a segment, the head or a position fails
 * authentication, a segment is missing or a store's commits have a gap.
 * used_id (may be NULL) receives the base used. */
int backup_restore_at(struct blob_store *bs, const struct backup_keys *keys, int64_t at_us,
                      struct store_env *env, backup_progress_fn progress, void *ctx,
                      char used_id[BACKUP_ID_LEN]) AT_WUR;

/* The continuous log's epochs in the target, oldest first (*out
 * malloc'd): segments counted; with keys, the head authenticated and read
 * (covered_us: every commit up to it is in the log; closed: the server
 * stopped cleanly). verified: 1 head authentic, 0 not checked, -1 missing
 * or failed. */
struct backup_log_info {
    char epoch[BACKUP_ID_LEN];
    uint64_t segments;
    int64_t covered_us;
    int closed;
    int verified;
};
int backup_log_list(struct blob_store *bs, const struct backup_keys *keys,
                    struct backup_log_info **out, size_t *n) AT_WUR;

/* Continuous-mode retention: keep every base made in the last `days` days,
 * the newest older one (so the window's first moment stays restorable) and
 * at least the newest keep_min; delete the others, each epoch's log
 * segments older than its oldest kept base, and whole epochs no kept base
 * uses (except live_epoch, the running one). now: unix seconds. */
int backup_prune_days(struct blob_store *bs, const struct backup_keys *keys, unsigned days,
                      unsigned keep_min, const char *live_epoch, int64_t now) AT_WUR;

/* Keep the newest `keep` backups (keep >= 1): delete every older backup
 * (manifest first, then its store blobs) and the leftovers of failed
 * backups older than the newest one. */
int backup_prune(struct blob_store *bs, unsigned keep) AT_WUR;

#endif
