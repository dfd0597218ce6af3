/*
 * store.c — store environments (data folders) and stores (SQLite files
 * through the encrypting VFS). See store.h for the contract.
 *
 * Invariants:
 *   1. A store file is only ever opened through the "atrest" VFS, bound to
 *      its keyring entry, so every page on disk is sealed (vfs.c).
 *   2. A store is created with PAGE_SIZE pages and PAGE_RESERVED(layers)
 *      reserved bytes before its first page is written, and refused on
 *      open when its header says otherwise.
 *   3. Every connection runs with journal_mode=WAL, synchronous=FULL,
 *      temp_store=MEMORY, mmap_size=0 and SQLite's defensive mode.
 *   4. store_drop destroys the DEKs (keyring persisted) before unlinking
 *      the files: once it returns, the ciphertext left anywhere (a copy, a
 *      disk block) can no longer be decrypted.
 *   5. A store file appears whole or not at all: store_create builds it under
 *      a temporary name and renames it into place (create_file).
 */
#include "storage/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "crypto/secmem.h"
#include "storage/page.h"
#include "storage/rekey.h"
#include "storage/shm.h"
#include "storage/vfs.h"

struct store_env {
    char *dir;
    int lock_fd;
    struct keyring *kr;
    int layers;
    struct key_provider *outer, *inner; /* not owned */
    const struct store_observer *obs;   /* continuous backups; may be NULL */
    void *obs_ctx;
};

struct store {
    struct store_env *env;
    sqlite3 *db;
    char path[PATH_MAX];
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint64_t failures_seen;
    void *observed; /* the observer's per-store context, or NULL */
    char name[KEYRING_NAME_MAX];
};

#ifdef ATREST_BENCH_PLAINTEXT
/* Benchmark-only build: the same code on plain SQLite, no encryption (the
 * unix VFS with atrest's in-memory WAL index, shm.h). */
#define STORE_VFS              SHM_PLAIN_VFS
#define STORE_RESERVED(layers) 0
#else
#define STORE_VFS              VFS_NAME
#define STORE_RESERVED(layers) PAGE_RESERVED(layers)
#endif

int store_env_open(const struct store_env_options *opt, struct store_env **out)
{
    int rc;
    *out = NULL;
    if (!opt || !opt->data_dir || !opt->outer)
        return AT_EINVAL;
    rc = secmem_init();
    if (rc)
        return at_error_set(rc, "cannot disable core dumps: %s", strerror(rc));
    if (opt->create && mkdir(opt->data_dir, 0700) != 0 && errno != EEXIST)
        return at_error_set(errno, "cannot create data folder %s: %s", opt->data_dir,
                            strerror(errno));
    struct stat sb;
    if (stat(opt->data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return at_error_set(ENOENT, "data folder %s does not exist", opt->data_dir);

    struct store_env *env = calloc(1, sizeof *env);
    if (!env)
        return AT_ENOMEM;
    env->lock_fd = -1;
    env->dir = realpath(opt->data_dir, NULL);
    if (!env->dir) {
        rc = at_error_set(errno, "cannot resolve data folder %s: %s", opt->data_dir,
                          strerror(errno));
        goto fail;
    }
    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/LOCK", env->dir);
    env->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (env->lock_fd < 0) {
        rc = at_error_set(errno, "cannot open %s: %s", lock_path, strerror(errno));
        goto fail;
    }
    if (flock(env->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? at_error_set(AT_ELOCKED, "data folder %s is in use by another process", env->dir)
                 : at_error_set(errno, "cannot lock %s: %s", lock_path, strerror(errno));
        goto fail;
    }
    rc = keyring_open(env->dir, opt->outer, opt->inner, opt->create, &env->kr);
    if (rc)
        goto fail;
    if (opt->rotate_at)
        keyring_set_rotate_at(env->kr, opt->rotate_at);
    env->layers = keyring_layers(env->kr);
    env->outer = opt->outer;
    env->inner = opt->inner;
    rc = vfs_register();
#ifdef ATREST_BENCH_PLAINTEXT
    if (!rc && shm_plain_vfs_register() != SQLITE_OK)
        rc = AT_ESQLITE;
#endif
    if (rc) {
        at_error_set(rc, "cannot register the encrypting VFS");
        goto fail;
    }
    *out = env;
    return 0;
fail:
    store_env_close(env);
    return rc;
}

void store_env_close(struct store_env *env)
{
    if (!env)
        return;
    if (env->kr)
        keyring_close(env->kr);
    if (env->lock_fd >= 0)
        close(env->lock_fd); /* releases the flock */
    free(env->dir);
    free(env);
}

struct keyring *store_env_keyring(struct store_env *env)
{
    return env->kr;
}

const char *store_env_data_dir(struct store_env *env)
{
    return env->dir;
}

void store_env_providers(struct store_env *env, struct key_provider **outer,
                         struct key_provider **inner)
{
    *outer = env->outer;
    *inner = env->inner;
}

void store_env_observe(struct store_env *env, const struct store_observer *obs, void *ctx)
{
    env->obs = obs;
    env->obs_ctx = ctx;
}

void store_file_path(const char *data_dir, const uint8_t id[KEYRING_FILE_ID_LEN], char *out,
                     size_t n)
{
    char hex[2 * KEYRING_FILE_ID_LEN + 1];
    for (int i = 0; i < KEYRING_FILE_ID_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(out, n, "%s/%s.db", data_dir, hex);
}

static void file_path(const struct store_env *env, const uint8_t id[KEYRING_FILE_ID_LEN], char *out,
                      size_t n)
{
    store_file_path(env->dir, id, out, n);
}

int store_error(struct store *st, int src)
{
    uint64_t failures = vfs_auth_failures(st->path);
    if (src == SQLITE_IOERR_DATA || failures > st->failures_seen) {
        st->failures_seen = failures;
        return at_error_set(AT_EINTEGRITY,
                            "store %s: a page failed authentication (corrupted or tampered)",
                            st->path);
    }
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src);
    return at_error_set(AT_ESQLITE, "store %s: %s (SQLite code %d)", st->path, msg, src);
}

int store_exec(struct store *st, const char *sql)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_error(st, rc);
}

static void unobserve(struct store *st)
{
    if (st->observed) {
        st->env->obs->detach(st->observed);
        st->observed = NULL;
    }
}

static int open_db(struct store *st, const uint8_t id[KEYRING_FILE_ID_LEN], int create)
{
    struct store_env *env = st->env;
    int reserved = STORE_RESERVED(env->layers);
    int rc = vfs_bind(st->path, env->kr, id, env->layers);
    if (rc)
        return rc;
    memcpy(st->id, id, KEYRING_FILE_ID_LEN);
    /* A batch of an interrupted re-encryption first (rekey.c). */
    if (!create && (rc = rekey_recover(env->kr, id, env->layers, st->path)) != 0) {
        vfs_unbind(st->path);
        return rc;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
                (create ? SQLITE_OPEN_CREATE : 0);
    int src = sqlite3_open_v2(st->path, &st->db, flags, STORE_VFS);
    if (src != SQLITE_OK) {
        rc = store_error(st, src);
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 10000);
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    if (create) {
        int n = reserved;
        src = sqlite3_file_control(st->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
        if (src != SQLITE_OK) {
            rc = store_error(st, src);
            goto fail;
        }
        if ((rc = store_exec(st, "PRAGMA page_size=4096")) != 0)
            goto fail;
    }
    /* An 8 MB page cache for the main (writer) connection: every miss costs
     * a read and a page decryption, so the cache is worth more here than in
     * plain SQLite (its default is 2 MB). */
    if ((rc = store_exec(st, "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0;"
                             "PRAGMA cache_size=-8192")) != 0)
        goto fail;
    sqlite3_stmt *stmt = NULL;
    src = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(stmt);
    int wal = src == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(stmt, 0), "wal") == 0;
    sqlite3_finalize(stmt);
    if (!wal) {
        rc = src == SQLITE_ROW
                 ? at_error_set(AT_ESQLITE, "store %s: cannot enter WAL mode", st->path)
                 : store_error(st, src);
        goto fail;
    }
    if ((rc = store_exec(st, "PRAGMA synchronous=FULL")) != 0)
        goto fail;
    /* Read the schema now: runs WAL recovery and authenticates page 1. */
    if ((rc = store_exec(st, "SELECT count(*) FROM sqlite_schema")) != 0)
        goto fail;
    int have = -1;
    sqlite3_file_control(st->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &have);
    if (have != reserved) {
        rc = at_error_set(AT_EFORMAT, "store %s has %d reserved bytes per page, expected %d",
                          st->path, have, reserved);
        goto fail;
    }
    /* Nothing above wrote a WAL frame (a new store's first frames come
     * with its schema): the observer sees every commit from here on. A
     * store being made under its temporary name is not observed. */
    if (env->obs && !create) {
        st->observed = env->obs->attach(env->obs_ctx, st->name, env->kr, id, env->layers);
        if (st->observed)
            vfs_set_commit_hook(st->path, env->obs->commit, st->observed);
    }
    return 0;
fail:
    sqlite3_close_v2(st->db);
    st->db = NULL;
    vfs_unbind(st->path);
    return rc;
}

static int new_store(struct store_env *env, struct store **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return AT_ENOMEM;
    (*out)->env = env;
    return 0;
}

/* fsync the data folder so that a create, rename or unlink in it is durable. */
static int sync_dir(const struct store_env *env)
{
    int dfd = open(env->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : errno;
    if (dfd >= 0)
        close(dfd);
    return rc ? at_error_set(rc, "cannot sync folder %s: %s", env->dir, strerror(rc)) : 0;
}

/* Remove a store's file and every side file next to it: SQLite's, the
 * re-encryption journal, and "-new...", what a killed store_create leaves
 * (invariant 5). report: a failure other than ENOENT becomes the error (the
 * first one is returned); else failures are ignored, so that the caller's
 * own error stands. */
static int unlink_store_files(const char *path, int report)
{
    static const char *suffix[] = {"",     "-wal",     "-shm",     "-journal",    "-rekey",
                                   "-new", "-new-wal", "-new-shm", "-new-journal"};
    char side[PATH_MAX + 16];
    int rc = 0;
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffix[i]);
        if (unlink(side) != 0 && errno != ENOENT && report && !rc)
            rc = at_error_set(errno, "cannot remove %s: %s", side, strerror(errno));
    }
    return rc;
}

/* Invariant 5: the new database is made complete under "<file>-new" (header,
 * page size, reserved bytes, WAL mode), closed, synced and only then renamed
 * to its name, so a process killed at any moment leaves either no store file
 * or a whole one. The keyring entry comes first; an entry without a file is
 * what a killed create leaves, and the next create of that name reuses it. */
static int create_file(struct store *st, const uint8_t id[KEYRING_FILE_ID_LEN])
{
    char final[sizeof st->path];
    memcpy(final, st->path, sizeof final);
    if (snprintf(st->path, sizeof st->path, "%s-new", final) >= (int)sizeof st->path) {
        memcpy(st->path, final, sizeof final);
        return at_error_set(AT_EINVAL, "store path %s is too long", final);
    }
    unlink_store_files(st->path, 0); /* left by a killed create */
    int rc = open_db(st, id, 1);
    if (!rc) {
        int src = sqlite3_close(st->db);
        st->db = NULL;
        vfs_unbind(st->path);
        if (src != SQLITE_OK)
            rc = at_error_set(AT_ESQLITE, "cannot close new store %s (SQLite code %d)", st->path,
                              src);
    }
    int fd = rc ? -1 : open(st->path, O_RDONLY | O_CLOEXEC);
    if (!rc && (fd < 0 || fsync(fd) != 0))
        rc = at_error_set(errno, "cannot sync %s: %s", st->path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (!rc && rename(st->path, final) != 0)
        rc = at_error_set(errno, "cannot rename %s: %s", st->path, strerror(errno));
    if (!rc)
        rc = sync_dir(st->env);
    if (rc)
        unlink_store_files(st->path, 0);
    memcpy(st->path, final, sizeof final);
    return rc ? rc : open_db(st, id, 0);
}

int store_create(struct store_env *env, const char *name, struct store **out)
{
    uint8_t id[KEYRING_FILE_ID_LEN];
    struct store *st;
    *out = NULL;
    int rc = keyring_find_file(env->kr, name, id);
    if (rc == AT_ENOTFOUND)
        rc = keyring_add_file(env->kr, name, id);
    if (rc)
        return rc;
    if ((rc = new_store(env, &st)) != 0)
        goto undo;
    file_path(env, id, st->path, sizeof st->path);
    snprintf(st->name, sizeof st->name, "%s", name);
    if (access(st->path, F_OK) == 0) {
        rc = at_error_set(AT_EEXIST, "store %s already exists (%s)", name, st->path);
        free(st);
        return rc; /* its keys stay: they are the existing store's */
    }
    if ((rc = create_file(st, id)) != 0) {
        unlink_store_files(st->path, 0); /* nothing acknowledged lives in it yet */
        free(st);
        goto undo;
    }
    *out = st;
    return 0;
undo : {
    /* Best effort: an orphan entry is harmless (the next create reuses it);
     * keep the first error. */
    int ignored = keyring_remove_file(env->kr, id);
    (void)ignored;
}
    return rc;
}

int store_open(struct store_env *env, const char *name, struct store **out)
{
    uint8_t id[KEYRING_FILE_ID_LEN];
    struct store *st;
    *out = NULL;
    int rc = keyring_find_file(env->kr, name, id);
    if (rc)
        return rc == AT_ENOTFOUND ? at_error_set(rc, "no store named %s", name) : rc;
    if ((rc = new_store(env, &st)) != 0)
        return rc;
    file_path(env, id, st->path, sizeof st->path);
    snprintf(st->name, sizeof st->name, "%s", name);
    if (access(st->path, F_OK) != 0) {
        rc = at_error_set(AT_ENOTFOUND, "store %s: file %s is missing", name, st->path);
        free(st);
        return rc;
    }
    if ((rc = open_db(st, id, 0)) != 0) {
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

int store_close(struct store *st)
{
    if (!st)
        return 0;
    int src = sqlite3_close(st->db);
    int rc = 0;
    if (src != SQLITE_OK) {
        rc = store_error(st, src);
        sqlite3_close_v2(st->db);
    }
    vfs_unbind(st->path);
    unobserve(st);
    free(st);
    return rc;
}

int store_drop(struct store_env *env, const char *name)
{
    uint8_t id[KEYRING_FILE_ID_LEN];
    int rc = keyring_find_file(env->kr, name, id);
    if (rc)
        return rc;
    char path[PATH_MAX];
    file_path(env, id, path, sizeof path);
    /* Crypto-shred first (invariant 4), then remove the files. */
    if ((rc = keyring_remove_file(env->kr, id)) != 0)
        return rc;
    rc = unlink_store_files(path, 1);
    int src = sync_dir(env);
    return rc ? rc : src;
}

sqlite3 *store_db(struct store *st)
{
    return st->db;
}

const char *store_path(struct store *st)
{
    return st->path;
}

struct keyring *store_keyring(struct store *st)
{
    return st->env->kr;
}

const uint8_t *store_file_id(struct store *st)
{
    return st->id;
}

int store_begin(struct store *st)
{
    return store_exec(st, "BEGIN IMMEDIATE");
}

int store_commit(struct store *st)
{
    return store_exec(st, "COMMIT");
}

int store_rollback(struct store *st)
{
    int rc = sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_error(st, rc);
}

/* ---- extra connections --------------------------------------------------- */

int store_connect(struct store *st, sqlite3 **out)
{
    sqlite3 *db = NULL;
    *out = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    int src = sqlite3_open_v2(st->path, &db, flags, STORE_VFS);
    if (src == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, 10000);
        sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        src = sqlite3_exec(db,
                           "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0;"
                           "PRAGMA synchronous=FULL; SELECT count(*) FROM sqlite_schema",
                           NULL, NULL, NULL);
    }
    if (src != SQLITE_OK) {
        int rc = store_error(st, src);
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return 0;
}

void store_disconnect(sqlite3 *db)
{
    sqlite3_close_v2(db);
}

/* ---- group commit --------------------------------------------------------
 *
 *   callers ──store_write()──▶ queue ──▶ writer thread:
 *                                         BEGIN IMMEDIATE
 *                                           SAVEPOINT op; fn(); RELEASE (or
 *                                           ROLLBACK TO on nonzero) — per op
 *                                         COMMIT   (one fsync for the batch)
 *                                         wake every caller of the batch
 *
 * Operations queued while a batch commits form the next batch, so under
 * concurrent load many writes share one fsync; a lone writer pays one
 * commit as before.
 */

struct write_op {
    store_write_fn fn;
    void *arg;
    int rc;
    int done;
    pthread_cond_t *cv;     /* store_write: its own wake-up */
    store_write_done_fn cb; /* store_write_async: completion */
    void *cb_arg;
    struct write_op *next;
};

struct store_writer {
    struct store *st;
    sqlite3_stmt *stmt[6]; /* W_NSTMT, prepared on first use */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct write_op *head, *tail;
    int stopping;
    /* checkpoints (below): their own thread and connection */
    pthread_t ckpt_thread;
    sqlite3 *ckpt_db;
    pthread_cond_t ckpt_cv; /* under mu */
    int ckpt_want, ckpt_on;
    int ckpt_busy, ckpt_done; /* under mu: a round runs; one ended since the WAL started over */
    int ckpt_finish;          /* under mu: the writer checkpoints after its batch is answered */
    int ckpt_copied;          /* under mu: frames in the main file after that round */
    uint64_t ckpt_commits;    /* under mu: commits so far */
    uint64_t ckpt_idle_at;    /* under mu: ckpt_commits when the last round started */
    store_write_fn after;     /* writer thread only: store_writer_after */
    void *after_arg;
};

/* Checkpoints run beside the writer, not in it. SQLite's automatic
 * checkpoint copies WAL frames to the main file inside the commit that
 * crosses 1,000 frames, on the writer thread, so every writer waits for
 * it. Here the WAL hook (called by SQLite after each commit with the WAL's
 * frame count) drives rounds:
 *
 *   frames < CKPT_BG            nothing (the WAL started over: no round
 *                               counts any more)
 *   frames >= CKPT_BG, no round a PASSIVE round on the checkpointer thread,
 *                               its own connection, while the writer goes on
 *   a round ended, at most      the writer copies the rest itself once the
 *   CKPT_REST frames not copied batch is answered (short), and its next
 *                               transaction starts the WAL over
 *   a round ended, more left    another round
 *   frames >= CKPT_FORCE        the writer checkpoints (a round never
 *                               catches up, e.g. behind an old reader)
 *   no commit for CKPT_IDLE_S   a round, if commits came since the last one
 *   after some                  (readers of an idle store then skip the
 *                               WAL, and a restart has little to replay)
 *
 * The WAL starts over from its beginning only at a transaction that finds
 * every frame copied, which a round under steady writes never leaves
 * behind: hence the writer's short finish. A page written many times
 * between two starts of the WAL (index leaves are) is copied to the main
 * file about once. Waking a round after every commit past CKPT_BG instead,
 * as this code first did, copied most frames within a commit or two of
 * their writing: under steady writes with default indexing, as many bytes
 * to the main file as to the WAL, and a create rate 30-40 % lower
 * (docs/bench-query.md). */
#define CKPT_BG     8000
#define CKPT_FORCE  32000
#define CKPT_REST   1000
#define CKPT_IDLE_S 1.0

/* The writer's transaction-control statements, prepared once: parsing
 * SAVEPOINT/RELEASE for every operation cost more than many operations. */
enum { W_BEGIN, W_COMMIT, W_ROLLBACK, W_SAVE, W_RELEASE, W_UNDO, W_NSTMT };
static const char *const wsql[W_NSTMT] = {"BEGIN IMMEDIATE", "COMMIT",     "ROLLBACK",
                                          "SAVEPOINT op",    "RELEASE op", "ROLLBACK TO op"};

static int wstep(struct store_writer *w, int which);

static void run_batch(struct store_writer *w, struct write_op *batch)
{
    sqlite3 *db = w->st->db;
    int src = wstep(w, W_BEGIN);
    if (src != SQLITE_OK) {
        int rc = store_error(w->st, src);
        for (struct write_op *op = batch; op; op = op->next)
            op->rc = rc;
        return;
    }
    for (struct write_op *op = batch; op; op = op->next) {
        src = wstep(w, W_SAVE);
        if (src != SQLITE_OK) {
            op->rc = store_error(w->st, src);
            continue;
        }
        op->rc = op->fn(db, op->arg);
        if (op->rc != 0)
            wstep(w, W_UNDO);
        src = wstep(w, W_RELEASE);
        if (src != SQLITE_OK && op->rc == 0)
            op->rc = store_error(w->st, src);
    }
    src = wstep(w, W_COMMIT);
    if (src != SQLITE_OK) {
        int rc = store_error(w->st, src);
        wstep(w, W_ROLLBACK);
        for (struct write_op *op = batch; op; op = op->next)
            if (op->rc == 0)
                op->rc = rc;
    }
}

static int wstep(struct store_writer *w, int which)
{
    sqlite3_stmt **s = &w->stmt[which];
    if (!*s) {
        int src = sqlite3_prepare_v2(w->st->db, wsql[which], -1, s, NULL);
        if (src != SQLITE_OK)
            return src;
    }
    int src = sqlite3_step(*s);
    sqlite3_reset(*s);
    return src == SQLITE_DONE ? SQLITE_OK : src;
}

void store_writer_after(struct store_writer *w, store_write_fn fn, void *arg)
{
    if (!w->after) {
        w->after = fn;
        w->after_arg = arg;
    }
}

static void run_after(struct store_writer *w)
{
    store_write_fn fn = w->after;
    w->after = NULL;
    if (wstep(w, W_BEGIN) != SQLITE_OK)
        return;
    if (fn(w->st->db, w->after_arg) != 0 || wstep(w, W_COMMIT) != SQLITE_OK)
        wstep(w, W_ROLLBACK);
}

static void *writer_main(void *p)
{
    struct store_writer *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->head)
            break;
        struct write_op *batch = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, batch);
        /* Wake each waiter on its own condition (no thundering herd); a
         * waiter's op lives on its stack, so it is not touched after the
         * unlock. Async ops are completed after the unlock. */
        struct write_op *async = NULL;
        pthread_mutex_lock(&w->mu);
        for (struct write_op *op = batch, *next; op; op = next) {
            next = op->next;
            if (op->cb) {
                op->next = async;
                async = op;
            } else {
                op->done = 1;
                pthread_cond_signal(op->cv);
            }
        }
        pthread_mutex_unlock(&w->mu);
        for (struct write_op *op = async, *next; op; op = next) {
            next = op->next;
            op->cb(op->cb_arg, op->rc);
            free(op);
        }
        if (w->after) /* asked for by an operation of the batch: its own transaction */
            run_after(w);
        pthread_mutex_lock(&w->mu);
        if (w->ckpt_finish) { /* asked for by wal_hook, run once the batch is answered */
            w->ckpt_finish = 0;
            pthread_mutex_unlock(&w->mu);
            sqlite3_wal_checkpoint_v2(w->st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            pthread_mutex_lock(&w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct store_writer *w = arg;
    int mine = frames >= CKPT_FORCE;
    if (w->ckpt_on) {
        pthread_mutex_lock(&w->mu);
        if (w->ckpt_commits++ == w->ckpt_idle_at)
            pthread_cond_signal(&w->ckpt_cv); /* the first commit since a round */
        if (mine) {
            /* the writer's own checkpoint, below */
        } else if (frames < CKPT_BG) {
            w->ckpt_done = 0; /* the WAL started over: a round that ended counts no more */
        } else if (w->ckpt_done && frames - w->ckpt_copied <= CKPT_REST) {
            mine = 1; /* the rest, so that the next transaction starts the WAL over */
            w->ckpt_done = 0;
        } else if (!w->ckpt_busy) {
            w->ckpt_done = 0;
            w->ckpt_want = 1;
            pthread_cond_signal(&w->ckpt_cv);
        }
        w->ckpt_finish |= mine;
        pthread_mutex_unlock(&w->mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *p)
{
    struct store_writer *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* A round when asked, or once commits stopped (above). */
        uint64_t seen = w->ckpt_commits;
        while (!w->ckpt_want && !w->stopping) {
            if (w->ckpt_commits == w->ckpt_idle_at) {
                pthread_cond_wait(&w->ckpt_cv, &w->mu); /* nothing new: the hook wakes us */
                seen = w->ckpt_commits;
                continue;
            }
            struct timespec due = deadline_after(CLOCK_MONOTONIC, CKPT_IDLE_S);
            pthread_cond_timedwait(&w->ckpt_cv, &w->mu, &due);
            if (w->ckpt_want || w->stopping)
                break;
            if (w->ckpt_commits != seen)
                seen = w->ckpt_commits; /* still busy: look again later */
            else
                break; /* quiet since the last commit, which no round followed */
        }
        if (w->stopping)
            break;
        w->ckpt_idle_at = w->ckpt_commits;
        w->ckpt_want = 0;
        w->ckpt_busy = 1;
        pthread_mutex_unlock(&w->mu);
        /* BUSY (the writer is checkpointing) and errors: the writer's
         * forced checkpoint or the next round covers it. */
        int log = 0, copied = 0;
        sqlite3_wal_checkpoint_v2(w->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        pthread_mutex_lock(&w->mu);
        w->ckpt_busy = 0;
        w->ckpt_done = 1;
        w->ckpt_copied = copied;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Start the checkpointer; without one, SQLite's own automatic checkpoint
 * (in the writer) stays in charge. */
static void ckpt_start(struct store_writer *w)
{
    cond_init_monotonic(&w->ckpt_cv);
    if (store_connect(w->st, &w->ckpt_db) != 0) {
        w->ckpt_db = NULL;
        return;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    w->ckpt_on = pthread_create(&w->ckpt_thread, &attr, ckpt_main, w) == 0;
    pthread_attr_destroy(&attr);
    if (w->ckpt_on) {
        pthread_setname_np(w->ckpt_thread, "store-ckpt"); /* for top -H, perf */
        sqlite3_wal_hook(w->st->db, wal_hook, w);         /* replaces the automatic checkpoint */
    } else {
        store_disconnect(w->ckpt_db);
        w->ckpt_db = NULL;
    }
}

int store_writer_start(struct store *st, struct store_writer **out)
{
    struct store_writer *w = calloc(1, sizeof *w);
    if (!w)
        return AT_ENOMEM;
    w->st = st;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    int rc = pthread_create(&w->thread, &attr, writer_main, w);
    pthread_attr_destroy(&attr);
    if (rc) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work);
        free(w);
        return at_error_set(rc, "cannot start the writer thread: %s", strerror(rc));
    }
    pthread_setname_np(w->thread, "store-writer");
    ckpt_start(w);
    *out = w;
    return 0;
}

/* Queue op; w->mu held. 0, or an error when the writer is stopping. */
static int enqueue(struct store_writer *w, struct write_op *op)
{
    if (w->stopping)
        return at_error_set(AT_EINVAL, "store %s is closing", w->st->path);
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    pthread_cond_signal(&w->work);
    return 0;
}

int store_write(struct store_writer *w, store_write_fn fn, void *arg)
{
    pthread_cond_t cv;
    pthread_cond_init(&cv, NULL);
    struct write_op op = {.fn = fn, .arg = arg, .cv = &cv};
    pthread_mutex_lock(&w->mu);
    int rc = enqueue(w, &op);
    while (!rc && !op.done)
        pthread_cond_wait(&cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&cv);
    return rc ? rc : op.rc;
}

int store_write_async(struct store_writer *w, store_write_fn fn, void *arg,
                      store_write_done_fn done, void *done_arg)
{
    struct write_op *op = calloc(1, sizeof *op);
    if (!op)
        return AT_ENOMEM;
    op->fn = fn;
    op->arg = arg;
    op->cb = done;
    op->cb_arg = done_arg;
    pthread_mutex_lock(&w->mu);
    int rc = enqueue(w, op);
    pthread_mutex_unlock(&w->mu);
    if (rc)
        free(op);
    return rc;
}

void store_writer_stop(struct store_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->work);
    pthread_cond_signal(&w->ckpt_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (w->ckpt_on) {
        pthread_join(w->ckpt_thread, NULL);
        sqlite3_wal_hook(w->st->db, NULL, NULL);
        sqlite3_wal_autocheckpoint(w->st->db, 1000); /* the store's owner goes on alone */
        store_disconnect(w->ckpt_db);
    }
    for (int i = 0; i < W_NSTMT; i++)
        sqlite3_finalize(w->stmt[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->ckpt_cv);
    free(w);
}

/* ---- import (restore) ----------------------------------------------------
 * Pages are sealed exactly as the VFS would seal them (page.h) and written
 * to the main file with plain writes, 256 pages at a time: no SQLite, no
 * WAL. The file exists under its final name from the start; until finish
 * succeeds it is removed again (with its keys) on any failure. */

#define IMPORT_BATCH 256

struct store_import {
    struct store_env *env;
    char name[KEYRING_NAME_MAX];
    uint8_t id[KEYRING_FILE_ID_LEN];
    char path[PATH_MAX];
    int fd;
    uint32_t pgno; /* pages written or buffered */
    uint8_t *buf;  /* IMPORT_BATCH sealed pages */
    size_t nbuf;
    uint32_t npages; /* store_import_set_pages; 0: as written */
};

static void import_free(struct store_import *im, int remove)
{
    if (im->fd >= 0)
        close(im->fd);
    if (remove) {
        char side[PATH_MAX + 8];
        unlink(im->path);
        snprintf(side, sizeof side, "%s-wal", im->path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", im->path);
        unlink(side);
        int ignored = keyring_remove_file(im->env->kr, im->id);
        (void)ignored;
    }
    free(im->buf);
    free(im);
}

int store_import_begin(struct store_env *env, const char *name, struct store_import **out)
{
    *out = NULL;
    struct store_import *im = calloc(1, sizeof *im);
    if (!im || !(im->buf = malloc((size_t)IMPORT_BATCH * PAGE_SIZE))) {
        free(im);
        return AT_ENOMEM;
    }
    im->env = env;
    im->fd = -1;
    snprintf(im->name, sizeof im->name, "%s", name);
    int rc = keyring_add_file(env->kr, name, im->id);
    if (rc) {
        free(im->buf);
        free(im);
        return rc;
    }
    file_path(env, im->id, im->path, sizeof im->path);
    im->fd = open(im->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (im->fd < 0) {
        rc = at_error_set(errno, "cannot create %s: %s", im->path, strerror(errno));
        int ignored = keyring_remove_file(env->kr, im->id);
        (void)ignored;
        free(im->buf);
        free(im);
        return rc;
    }
    *out = im;
    return 0;
}

static int import_flush(struct store_import *im)
{
    size_t len = im->nbuf * PAGE_SIZE, done = 0;
    off_t off = (off_t)(im->pgno - im->nbuf) * PAGE_SIZE;
    while (done < len) {
        ssize_t w = pwrite(im->fd, im->buf + done, len - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return at_error_set(w < 0 ? errno : ENOSPC, "cannot write %s: %s", im->path,
                                strerror(w < 0 ? errno : ENOSPC));
        done += (size_t)w;
    }
    im->nbuf = 0;
    return 0;
}

static int check_page1(struct store_import *im, const uint8_t *page)
{
    int layers = im->env->layers;
    (void)layers; /* unused where STORE_RESERVED ignores it */
    unsigned psz = (unsigned)page[16] << 8 | page[17];
    if (psz == 1)
        psz = 65536;
    if (memcmp(page, "SQLite format 3", 16) != 0 || psz != PAGE_SIZE)
        return at_error_set(AT_EFORMAT, "store %s: page 1 is not a %d-byte SQLite page", im->name,
                            PAGE_SIZE);
    if (page[20] != STORE_RESERVED(layers))
        return at_error_set(AT_EFORMAT,
                            "store %s has %u reserved bytes per page; this account's stores "
                            "need %d (a backup keeps its account's key layer count)",
                            im->name, page[20], STORE_RESERVED(layers));
    return 0;
}

int store_import_page(struct store_import *im, uint8_t *page)
{
    int layers = im->env->layers;
    if (im->pgno == 0) {
        int rc = check_page1(im, page);
        if (rc)
            return rc;
    }
    if (im->pgno == UINT32_MAX)
        return at_error_set(AT_EFORMAT, "store %s: too many pages", im->name);
    uint8_t *dst = im->buf + im->nbuf * PAGE_SIZE;
    memcpy(dst, page, PAGE_SIZE);
    secmem_wipe(page, PAGE_SIZE);
    im->pgno++;
    im->nbuf++;
#ifndef ATREST_BENCH_PLAINTEXT
    int rc = page_seal(im->env->kr, im->id, layers, im->pgno, dst);
    if (rc)
        return rc;
#else
    (void)layers;
#endif
    return im->nbuf == IMPORT_BATCH ? import_flush(im) : 0;
}

int store_import_page_at(struct store_import *im, uint32_t pgno, uint8_t *page)
{
    int rc = im->nbuf ? import_flush(im) : 0;
    if (!rc && pgno == 0)
        rc = at_error_set(AT_EFORMAT, "store %s: page number 0", im->name);
    if (!rc && pgno == 1)
        rc = check_page1(im, page);
#ifndef ATREST_BENCH_PLAINTEXT
    if (!rc)
        rc = page_seal(im->env->kr, im->id, im->env->layers, pgno, page);
#endif
    for (size_t done = 0; !rc && done < PAGE_SIZE;) {
        ssize_t w = pwrite(im->fd, page + done, PAGE_SIZE - done,
                           (off_t)(pgno - 1) * PAGE_SIZE + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = at_error_set(w < 0 ? errno : ENOSPC, "cannot write %s: %s", im->path,
                              strerror(w < 0 ? errno : ENOSPC));
        else
            done += (size_t)w;
    }
    secmem_wipe(page, PAGE_SIZE);
    if (!rc && pgno > im->pgno)
        im->pgno = pgno;
    return rc;
}

void store_import_set_pages(struct store_import *im, uint32_t npages)
{
    im->npages = npages;
}

int store_import_finish(struct store_import *im)
{
    int rc = im->pgno == 0 ? at_error_set(AT_EFORMAT, "store %s: no pages", im->name) : 0;
    if (!rc && im->nbuf)
        rc = import_flush(im);
    if (!rc && im->npages && ftruncate(im->fd, (off_t)im->npages * PAGE_SIZE) != 0)
        rc = at_error_set(errno, "cannot truncate %s: %s", im->path, strerror(errno));
    if (!rc && fsync(im->fd) != 0)
        rc = at_error_set(errno, "cannot fsync %s: %s", im->path, strerror(errno));
    if (!rc) {
        close(im->fd);
        im->fd = -1;
        rc = sync_dir(im->env);
    }
    if (!rc) {
        struct store *st = NULL;
        rc = store_open(im->env, im->name, &st);
        if (!rc)
            rc = store_close(st);
    }
    import_free(im, rc != 0);
    return rc;
}

void store_import_abort(struct store_import *im)
{
    if (im)
        import_free(im, 1);
}
