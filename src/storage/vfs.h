/*
 * vfs.h — the encrypting SQLite VFS "atrest", a shim over "unix".
 *
 * Every page SQLite writes to a store's main file, WAL or rollback journal
 * is sealed in the format of page.h before it reaches the disk, and every
 * page read is authenticated and decrypted before SQLite sees it. A page
 * that fails authentication is returned as SQLITE_IOERR_DATA, never as data.
 *
 * The shim only opens files it can encrypt: a main database file must have
 * been bound to its keys with vfs_bind() first; its WAL and journal follow
 * the binding. Temporary files (no name, or TEMP/TRANSIENT/SUBJOURNAL
 * flags) are refused: stores run with temp_store=MEMORY. The io_methods are
 * version 2 (no xFetch), so SQLite never memory-maps a database file.
 *
 * Invariants and the torn-tail rule are spelled out at the top of vfs.c.
 */
#ifndef ATREST_STORAGE_VFS_H
#define ATREST_STORAGE_VFS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "keys/keyring.h"

#define VFS_NAME "atrest"

/* Register the VFS with SQLite (not as the default). Idempotent. */
int vfs_register(void) AT_WUR;

/* Bind the absolute path of a main database file to its keyring entry.
 * Takes a reference on nothing: kr must outlive the binding. */
int vfs_bind(const char *path, struct keyring *kr, const uint8_t file_id[KEYRING_FILE_ID_LEN],
             int layers) AT_WUR;

/* Forget the binding (after the last connection to path has closed). */
void vfs_unbind(const char *path);

/* Data-key rotation (rekey.c) rewrites pages of a bound main file in place.
 * vfs_rekey_hold takes the file's rewrite lock (writes and truncates of
 * that main file through SQLite wait for it; see invariant 6 in vfs.c) and
 * gives a descriptor of the file to read and write pages with, owned by the
 * binding (never close it). vfs_rekey_release lets go. AT_ENOTFOUND when
 * path is not bound. */
struct vfs_rekey;
int vfs_rekey_hold(const char *path, struct vfs_rekey **h, int *fd) AT_WUR;
void vfs_rekey_release(struct vfs_rekey *h);

/* 1 once every WAL frame of path sealed before the first call (with *mark
 * 0; it sets *mark) is in the file: no connection holds unsynced frames,
 * or one synced since (invariant 7 in vfs.c). 0: not yet, ask again. */
int vfs_wal_settled(const char *path, uint64_t *mark);

/* sqlite3_file_control op (arg: int *, 1 on, 0 off) on a connection's
 * main file: read ahead (invariant 8 in vfs.c). Only inside one read
 * transaction of a connection that only reads, turned off before it ends. */
#define VFS_FCNTL_READAHEAD 0x61747261 /* "atra" */

/* sqlite3_file_control op (arg: struct vfs_unwritten *) on a main file
 * after a read-ahead: hands over the numbers of the pages of zeros served as
 * unwritten pages meanwhile (invariant 9 in vfs.c; the caller frees pgno and
 * must check each is a free-list leaf of what it read). */
#define VFS_FCNTL_UNWRITTEN 0x61747275 /* "atru" */
struct vfs_unwritten {
    uint32_t *pgno;
    size_t n;
};

/* Number of authentication failures seen on path's files since bound. */
uint64_t vfs_auth_failures(const char *path);

/* Commit capture (continuous backups; invariant 6 in vfs.c). After each
 * successful sync of path's WAL, fn(ctx, frames, n) receives the n sealed
 * WAL frames (FRAME_SIZE bytes each: frame header, then the page sealed
 * under the store's DEK) of the transaction that sync made durable, on the
 * committing thread, before SQLite publishes the commit. n = 0 (frames
 * NULL) says a commit could not be read back: the capture has a gap. fn
 * owns frames (malloc'd; it frees them) and must return at once. NULL fn
 * removes the hook; set it before the store's first write. */
typedef void (*vfs_commit_fn)(void *ctx, uint8_t *frames, size_t nframes);
void vfs_set_commit_hook(const char *path, vfs_commit_fn fn, void *ctx);

/* Process-wide counters, for tests and benchmarks. */
struct vfs_stats {
    uint64_t pages_sealed;     /* encryptions (per page, all layers) */
    uint64_t pages_opened;     /* successful decryptions */
    uint64_t auth_failures;    /* pages that failed authentication */
    uint64_t ckpt_passthrough; /* checkpoint pages copied without crypto */
    uint64_t torn_tail_frames; /* WAL frames treated as a torn tail */
    uint64_t refused_opens;    /* files refused (temp, unbound) */
};
void vfs_stats_get(struct vfs_stats *out);

#endif
