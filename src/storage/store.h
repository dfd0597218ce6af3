/*
 * store.h — the encrypted store: what the rest of atrest uses for storage.
 *
 * A store environment is an open data folder: it holds the folder's lock
 * (one process owns a data folder), its keyring, and registers the
 * encrypting VFS. A store is one SQLite database file in it, opened through
 * the encrypting VFS under its own DEKs, in WAL mode with
 * synchronous=FULL (a commit that returned is on disk), temp_store=MEMORY,
 * and no memory-mapped I/O.
 *
 * Store names are chosen by atrest (never user data): [a-z0-9_-]{1,63}. On
 * disk a store is <data_dir>/<hex file id>.db (plus -wal and -shm), so file
 * names say nothing about what is inside.
 *
 * Errors: see error.h. AT_EINTEGRITY whenever SQLite met a page that failed
 * authentication (SQLITE_IOERR_DATA), so callers can tell tampering from
 * other I/O errors.
 */
#ifndef ATREST_STORAGE_STORE_H
#define ATREST_STORAGE_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "keys/keyring.h"
#include "keys/provider.h"

struct store_env;
struct store;

struct store_env_options {
    const char *data_dir;       /* created (0700) when create is set */
    struct key_provider *outer; /* service layer; required; not owned */
    struct key_provider *inner; /* customer layer; NULL for one layer; not owned */
    int create;                 /* create folder and keyring when missing */
    uint64_t rotate_at;         /* DEK rotation threshold; 0 = default */
};

/* Open a data folder: take <data_dir>/LOCK (AT_ELOCKED if another process
 * holds it), open the keyring, register the VFS. */
int store_env_open(const struct store_env_options *opt, struct store_env **out) AT_WUR;

/* Close the environment. Every store must be closed first. */
void store_env_close(struct store_env *env);

struct keyring *store_env_keyring(struct store_env *env);
const char *store_env_data_dir(struct store_env *env);
/* The key providers the environment was opened with (inner NULL for one
 * layer); owned by the caller of store_env_open. */
void store_env_providers(struct store_env *env, struct key_provider **outer,
                         struct key_provider **inner);

/* ---- commit observer (continuous backups, docs/backup.md) ----------------
 * With an observer set, every store opened afterwards is announced with
 * attach (on the opening thread; it returns the observer's context for
 * that store, or NULL to leave it alone); each of its durable commits is
 * passed to commit (the sealed WAL frames, see vfs_set_commit_hook: on the
 * committing thread, which hands over the buffer); detach follows the store's close. Set it
 * before the first store is opened; obs must outlive the environment's
 * stores. */
struct store_observer {
    void *(*attach)(void *ctx, const char *name, struct keyring *kr,
                    const uint8_t id[KEYRING_FILE_ID_LEN], int layers);
    void (*commit)(void *store_ctx, uint8_t *frames, size_t nframes); /* owns frames */
    void (*detach)(void *store_ctx);
};
void store_env_observe(struct store_env *env, const struct store_observer *obs, void *ctx);

/* Create a new, empty store called name (AT_EEXIST if it exists). */
int store_create(struct store_env *env, const char *name, struct store **out) AT_WUR;

/* Open an existing store (AT_ENOTFOUND if there is none). Recovers the WAL
 * if the last process died; a page that fails authentication outside a torn
 * WAL tail makes this fail with AT_EINTEGRITY. */
int store_open(struct store_env *env, const char *name, struct store **out) AT_WUR;

/* Checkpoint and close. */
int store_close(struct store *st);

/* Crypto-shred and delete a closed store: its DEKs are destroyed first,
 * then its files are unlinked. */
int store_drop(struct store_env *env, const char *name) AT_WUR;

/* The SQLite connection, for prepared statements. Owned by the store. */
sqlite3 *store_db(struct store *st);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int store_begin(struct store *st) AT_WUR;
int store_commit(struct store *st) AT_WUR;
int store_rollback(struct store *st);

/* Run SQL without results (schema, pragmas). */
int store_exec(struct store *st, const char *sql) AT_WUR;

/* Map a SQLite result code to an atrest error (records a detail). */
int store_error(struct store *st, int sqlite_rc);

/* An extra connection to an open store, through the same keys and with the
 * same settings, for concurrent readers (WAL lets readers run while the
 * writer commits). Close each with store_disconnect() before store_close().
 * A connection is used by one thread at a time. */
int store_connect(struct store *st, sqlite3 **out) AT_WUR;
void store_disconnect(sqlite3 *db);

/* ---- group commit -------------------------------------------------------
 * A store writer owns the store's main connection (store_db) and runs
 * write operations from many threads in shared transactions: one fsync
 * covers every operation that was queued while the previous commit ran.
 *
 * An operation runs inside its own SAVEPOINT within the batch transaction:
 * when it returns nonzero only its own changes are rolled back and that
 * value is returned to its caller; the others commit. store_write() returns
 * only after the batch holding the operation is durable (COMMIT returned
 * with synchronous=FULL), or with the error that failed the batch. While a
 * writer runs, nobody else may use store_db(st). */
struct store_writer;
typedef int (*store_write_fn)(sqlite3 *db, void *arg);

int store_writer_start(struct store *st, struct store_writer **out) AT_WUR;
int store_write(struct store_writer *w, store_write_fn fn, void *arg) AT_WUR;

/* The same without waiting: done(done_arg, rc) is called on the writer
 * thread once the batch holding the operation is durable (or failed), with
 * what store_write() would have returned. fn and arg must stay valid until
 * then. Returns 0 when queued (done will be called exactly once), or an
 * error when the writer is stopping (done is not called). */
typedef void (*store_write_done_fn)(void *done_arg, int rc);
int store_write_async(struct store_writer *w, store_write_fn fn, void *arg,
                      store_write_done_fn done, void *done_arg) AT_WUR;
/* On the writer thread only (from inside an operation): run fn(db, arg)
 * once, in a transaction of its own, after the current batch is committed
 * and answered (housekeeping that no caller should wait for; a nonzero
 * return rolls it back). A second call before it ran is ignored. */
void store_writer_after(struct store_writer *w, store_write_fn fn, void *arg);
/* Finish queued operations, stop the thread, free. */
void store_writer_stop(struct store_writer *w);

/* The main file of store file id in data_dir: <data_dir>/<32 hex>.db. */
void store_file_path(const char *data_dir, const uint8_t id[KEYRING_FILE_ID_LEN], char *out,
                     size_t n);

/* Path of the store's main database file (for tools and tests). */
const char *store_path(struct store *st);
/* The keyring of the store's environment, and the store's file id in it. */
struct keyring *store_keyring(struct store *st);
const uint8_t *store_file_id(struct store *st);

/* ---- import (restore) -----------------------------------------------------
 * Create the store name from plaintext pages handed over in order, page 1
 * first (PAGE_SIZE bytes each, reserved bytes zero, as SQLite wrote them):
 * each page is sealed under the new store's fresh DEKs and appended to its
 * main file. store_import_finish fsyncs the file and opens the store once
 * to check it; store_import_abort (or a failed finish) removes the file and
 * crypto-shreds the new DEKs. Page 1's header must name PAGE_SIZE pages and
 * this environment's reserved bytes (AT_EFORMAT otherwise). */
struct store_import;
int store_import_begin(struct store_env *env, const char *name, struct store_import **out) AT_WUR;
/* Seals page (PAGE_SIZE bytes) in place and writes it. */
int store_import_page(struct store_import *im, uint8_t *page) AT_WUR;
/* Point-in-time restore: seal page (plaintext, wiped on return) as page
 * pgno and write it in place, over whatever was written there; page 1 is
 * checked as above. store_import_set_pages makes finish cut the file to
 * npages pages (the database size of the last commit applied). */
int store_import_page_at(struct store_import *im, uint32_t pgno, uint8_t *page) AT_WUR;
void store_import_set_pages(struct store_import *im, uint32_t npages);
int store_import_finish(struct store_import *im) AT_WUR; /* frees im */
void store_import_abort(struct store_import *im);        /* frees im */

#endif
