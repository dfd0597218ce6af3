/*
 * vfs.c — the encrypting VFS shim over SQLite's "unix" VFS.
 *
 * Role: SQLite keeps doing B-trees, WAL and crash recovery; this file only
 * turns plaintext pages into sealed pages (page.h) on the way to the disk
 * and back. It sees three kinds of files per store:
 *
 *   main file  pages at (pgno-1)*PAGE_SIZE, whole-page reads and writes,
 *              plus short reads of the header (100 bytes at 0, 16 at 24)
 *   WAL        32-byte header, then frames: 24-byte frame header
 *              (pgno, nTruncate, salt1, salt2, cksum1, cksum2; plaintext)
 *              followed by one page
 *   journal    rollback journal (only while a new store switches to WAL):
 *              header, then records pgno(4) | page | cksum(4)
 *
 * Invariants:
 *   1. No byte of a page reaches the disk unsealed: every whole-page write
 *      to a main file, WAL frame or journal record is sealed; any other
 *      write shape that could carry page content is refused
 *      (SQLITE_IOERR_WRITE), never written through.
 *   2. No unauthenticated byte reaches SQLite as page content: a page that
 *      fails authentication is SQLITE_IOERR_DATA with the buffer wiped; the
 *      one exception is rule 4, which returns a frame SQLite will reject.
 *   3. Checkpoints cost no crypto. Between SQLITE_FCNTL_CKPT_START and
 *      CKPT_DONE on a main file, on the checkpointing thread, whole-page
 *      reads of that store's WAL return the stored ciphertext and whole-page
 *      writes to its main file store it unchanged. This is sound because a
 *      page's associated data names the database file and page number, not
 *      the file it sits in (page.h).
 *   4. Torn WAL tail. During WAL recovery (the thread holds the WAL-index
 *      RECOVER lock exclusively), a frame whose page fails authentication
 *      is either a torn write at the tail or tampering. With
 *      synchronous=FULL every commit is fsynced before the next transaction
 *      starts, so a frame with two or more commit frames of its own
 *      generation (same salts) at or after it (itself included) belongs to
 *      a transaction that was followed by another, and was durable: it is tampering, and recovery
 *      fails with SQLITE_IOERR_DATA. Otherwise the frame belongs to the
 *      last, possibly unacknowledged, transaction: the shim hands SQLite the
 *      frame with its checksum inverted and the page zeroed, so SQLite ends
 *      the log there exactly as it does for a torn write (and nothing of the
 *      frame is ever used as data). verify.c applies the same rule.
 *   5. Temporary files and files not bound with vfs_bind() are refused.
 *   6. Data-key rotation (rekey.c) re-seals main-file pages in place, the
 *      one writer of a main file besides SQLite. It holds the binding's
 *      rekey_mu while it reads, re-seals and writes a batch, and every other
 *      write or truncate of that main file takes the same mutex, so no
 *      checkpoint write is lost between its read and its write. Readers do
 *      not lock: a rewrite bumps rekey_gen before and after (odd while it
 *      runs), and a main-file page that fails authentication while a
 *      rewrite may have overlapped the read is read again under the mutex
 *      before it counts as a failure.
 *   7. A WAL file handle is "unsettled" from just before it seals its first
 *      frame (the key is fetched then) until an xSync of it succeeds; the
 *      binding counts such handles (wal_unsettled) and the syncs that
 *      settled one (wal_settles). Data-key rotation waits, before it looks
 *      at the WAL, until every frame sealed before the rotation is in the
 *      file: no handle unsettled, or a settle since the rotation
 *      (vfs_wal_settled).
 *   8. Read-ahead. Between VFS_FCNTL_READAHEAD on and off, which the caller
 *      issues inside one read transaction of a connection that only reads
 *      (backups: snap.c), whole-page reads of that main file are served
 *      from a buffer of sealed bytes filled by one read of RA_SIZE. Sound
 *      because a main-file page that SQLite reads inside a WAL read
 *      transaction cannot change during it: a checkpoint only writes pages
 *      that have a WAL frame at or before every reader's snapshot (such
 *      pages are read from the WAL), and a rewrite (invariant 6) keeps the
 *      content. Every page is still authenticated when it is served; a page
 *      the buffer holds torn or under a retired key fails and is read
 *      afresh (read_page), so the buffer can cost a read, never a result.
 *   9. Unwritten pages (page.h). SQLite's backup API, which snap.c uses
 *      with read-ahead on, reads every page, free-list leaves too, and a
 *      leaf SQLite never wrote is a page of zeros, no sealed page. With
 *      read-ahead on (and only then) such a page, other than page 1, is
 *      handed to SQLite as zeros and its number recorded; the caller takes
 *      the list (VFS_FCNTL_UNWRITTEN) and must check in the copy, whose
 *      pages all authenticated, that each one is a free-list leaf, and
 *      fail as for an authentication failure otherwise. Everywhere else a
 *      page of zeros fails authentication like any damage.
 *  10. Page cache (pagecache.h). Outside read-ahead, a whole-page read of a
 *      main file is served from the process's page cache when it holds the
 *      page, and a page read from the file that authenticated is put there.
 *      Sound for the reason of invariant 8: a main-file page cannot change
 *      while a reader that reads it from the main file is in its
 *      transaction. A write of a main-file page (a checkpoint, a rollback)
 *      drops it right after the write, a truncate drops the pages past the
 *      new end, and the binding's end drops all of its pages, so a reader
 *      that starts later finds none of the old content. Rewrites (invariant
 *      6) keep the plaintext, so the cache keeps it too. The epoch of every
 *      call (aead_kept_epoch, read before the page is read) empties the
 *      cache once any key has been wiped since.
 */
#include "storage/vfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/secmem.h"
#include "storage/page.h"
#include "storage/pagecache.h"
#include "storage/shm.h"

#define WAL_RECOVER_LOCK 2 /* slot index of the WAL-index recover lock (wal.c) */

static const uint8_t journal_magic[8] = {0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7};

enum kind { K_MAIN, K_WAL, K_JOURNAL };

struct binding {
    struct binding *next;
    char *path;
    struct keyring *kr;
    uint8_t id[KEYRING_FILE_ID_LEN];
    int layers;
    vfs_commit_fn hook; /* commit capture (below), set before the first write */
    void *hook_ctx;
    int refs; /* open files using it, plus one while bound */
    atomic_uint_fast64_t auth_failures;
    /* invariant 6 */
    pthread_mutex_t rekey_mu;
    atomic_uint rekey_gen; /* odd while a rewrite runs */
    int rekey_fd;          /* the main file, opened at the first rewrite or
                              checkpoint writeback start; closed only when the
                              binding is freed (closing a file descriptor
                              drops the process's POSIX locks on it) */
    int ckpt_unflushed;    /* checkpoint pages written since the last writeback start (rekey_mu) */
    /* invariant 7 */
    atomic_int wal_unsettled;
    atomic_uint_fast64_t wal_settles;
};

struct efile {
    sqlite3_file base;
    enum kind kind;
    struct binding *b;
    uint8_t *scratch;        /* FRAME_SIZE bytes */
    sqlite3_int64 hdr_off;   /* WAL: offset of the last frame header written, */
    uint32_t hdr_pgno;       /*      its page number */
    int hdr_commit;          /*      and whether it ends a transaction */
    sqlite3_int64 jpgno_off; /* journal: offset of the last 4-byte write */
    uint32_t jpgno;          /*          and its value */
    int unsettled;           /* WAL: frames sealed since the last xSync (invariant 7) */
    uint8_t *wbuf;           /* WAL: sealed frames not yet handed to the file */
    size_t wlen;             /*      bytes in wbuf, */
    sqlite3_int64 woff;      /*      which belong at this offset */
    sqlite3_int64 cap_lo;    /* WAL: frames written since the last sync */
    sqlite3_int64 cap_hi;    /*      (commit capture); cap_lo == cap_hi: none */
    uint8_t *ra;             /* main: read-ahead of sealed pages (invariant 8), */
    sqlite3_int64 ra_off;    /*       which hold the file's bytes from here */
    size_t ra_len;           /*       on (0: nothing held) */
    uint32_t *unw;           /* main, read-ahead on: unwritten pages served (invariant 9) */
    size_t unw_n, unw_cap;
    struct shm_link shm; /* main: its connection's hold on the WAL index */
    sqlite3_file *real;
};

/* WAL writes are combined: SQLite writes each frame as a 24-byte header and
 * a page, two pwrite calls per page of every transaction. The shim keeps
 * consecutive writes in wbuf and hands them to the file in one write at the
 * next sync, read, size query, truncate, file control, close, or write
 * elsewhere, and at the end of a commit frame (a frame header with a
 * nonzero database size). Nothing is lost by waiting: SQLite treats no
 * write as durable before xSync, and it publishes a commit (the WAL-index
 * header) only after writing its commit frame, so other connections never
 * look for frames still in the buffer, whatever the connection's
 * synchronous setting (the stores run with FULL, which also syncs there;
 * a connection with OFF or NORMAL must not leave published frames behind).
 * A write error surfaces at that point instead. */
#define RA_SIZE (124 * 1024) /* read-ahead, invariant 8: < 128 KiB as WAL_WBUF */
#define WAL_WBUF                                                                                   \
    (124 * 1024) /* < 128 KiB: SQLite's unix VFS writes at most                                    \
                    0x1ffff bytes per call (it masks the count)                                    \
                    and takes a 0-byte write as a full disk */

static pthread_mutex_t bind_lock = PTHREAD_MUTEX_INITIALIZER;
static struct binding *bindings;
static sqlite3_vfs shim;
static sqlite3_vfs *unix_vfs;

static _Thread_local const struct binding *tls_ckpt;
static _Thread_local const struct binding *tls_recover;

static atomic_uint_fast64_t st_sealed, st_opened, st_fail, st_pass, st_torn, st_refused;

/* ---- bindings ---------------------------------------------------------- */

static struct binding *find_locked(const char *path)
{
    for (struct binding *b = bindings; b; b = b->next)
        if (strcmp(b->path, path) == 0)
            return b;
    return NULL;
}

/* The page cache's name for a binding's main file (invariant 10). */
#define CACHE_FILE(b) ((uint64_t)(uintptr_t)(b))

static void binding_free(struct binding *b)
{
    pagecache_drop_file(CACHE_FILE(b));
    if (b->rekey_fd >= 0)
        close(b->rekey_fd);
    pthread_mutex_destroy(&b->rekey_mu);
    free(b->path);
    free(b);
}

static void release_locked(struct binding *b)
{
    if (--b->refs > 0)
        return;
    for (struct binding **pp = &bindings; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    binding_free(b);
}

int vfs_bind(const char *path, struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN],
             int layers)
{
    if (!path || !kr || layers < 1 || layers > 2)
        return AT_EINVAL;
    struct binding *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(b);
        return AT_ENOMEM;
    }
    b->kr = kr;
    memcpy(b->id, id, KEYRING_FILE_ID_LEN);
    b->layers = layers;
    b->refs = 1;
    b->rekey_fd = -1;
    pthread_mutex_init(&b->rekey_mu, NULL);
    pthread_mutex_lock(&bind_lock);
    if (find_locked(path)) {
        pthread_mutex_unlock(&bind_lock);
        binding_free(b);
        return at_error_set(AT_EEXIST, "store file %s is already open", path);
    }
    b->next = bindings;
    bindings = b;
    pthread_mutex_unlock(&bind_lock);
    return 0;
}

void vfs_unbind(const char *path)
{
    pthread_mutex_lock(&bind_lock);
    struct binding *b = find_locked(path);
    if (b) {
        /* Unlink from lookups now; free when the last file closes. */
        for (struct binding **pp = &bindings; *pp; pp = &(*pp)->next) {
            if (*pp == b) {
                *pp = b->next;
                break;
            }
        }
        b->next = NULL;
        if (--b->refs == 0)
            binding_free(b);
    }
    pthread_mutex_unlock(&bind_lock);
}

uint64_t vfs_auth_failures(const char *path)
{
    uint64_t n = 0;
    pthread_mutex_lock(&bind_lock);
    struct binding *b = find_locked(path);
    if (b)
        n = atomic_load(&b->auth_failures);
    pthread_mutex_unlock(&bind_lock);
    return n;
}

void vfs_set_commit_hook(const char *path, vfs_commit_fn fn, void *ctx)
{
    pthread_mutex_lock(&bind_lock);
    struct binding *b = find_locked(path);
    if (b) {
        b->hook = fn;
        b->hook_ctx = ctx;
    }
    pthread_mutex_unlock(&bind_lock);
}

void vfs_stats_get(struct vfs_stats *out)
{
    out->pages_sealed = atomic_load(&st_sealed);
    out->pages_opened = atomic_load(&st_opened);
    out->auth_failures = atomic_load(&st_fail);
    out->ckpt_passthrough = atomic_load(&st_pass);
    out->torn_tail_frames = atomic_load(&st_torn);
    out->refused_opens = atomic_load(&st_refused);
}

/* ---- rewrites by data-key rotation (invariant 6) -------------------------- */

int vfs_rekey_hold(const char *path, struct vfs_rekey **out, int *fd)
{
    pthread_mutex_lock(&bind_lock);
    struct binding *b = find_locked(path);
    if (b)
        b->refs++;
    pthread_mutex_unlock(&bind_lock);
    if (!b)
        return at_error_set(AT_ENOTFOUND, "store file %s is not open", path);
    pthread_mutex_lock(&b->rekey_mu);
    if (b->rekey_fd < 0)
        b->rekey_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (b->rekey_fd < 0) {
        int e = errno;
        pthread_mutex_unlock(&b->rekey_mu);
        pthread_mutex_lock(&bind_lock);
        release_locked(b);
        pthread_mutex_unlock(&bind_lock);
        return at_error_set(e, "cannot open %s: %s", path, strerror(e));
    }
    atomic_fetch_add(&b->rekey_gen, 1);
    *fd = b->rekey_fd;
    *out = (struct vfs_rekey *)b;
    return 0;
}

int vfs_wal_settled(const char *path, uint64_t *mark)
{
    int settled = 0;
    pthread_mutex_lock(&bind_lock);
    struct binding *b = find_locked(path);
    if (b) {
        uint64_t n = atomic_load(&b->wal_settles);
        if (*mark == 0) /* the first look: remember where the settles were */
            *mark = n + 1;
        else
            settled = n >= *mark;
        settled = settled || atomic_load(&b->wal_unsettled) == 0;
    }
    pthread_mutex_unlock(&bind_lock);
    return settled;
}

void vfs_rekey_release(struct vfs_rekey *h)
{
    struct binding *b = (struct binding *)h;
    atomic_fetch_add(&b->rekey_gen, 1);
    pthread_mutex_unlock(&b->rekey_mu);
    pthread_mutex_lock(&bind_lock);
    release_locked(b);
    pthread_mutex_unlock(&bind_lock);
}

/* ---- page helpers -------------------------------------------------------- */

static int seal(struct efile *f, uint32_t pgno, uint8_t *page)
{
    size_t reserved = PAGE_RESERVED(f->b->layers);
    for (size_t i = PAGE_SIZE - reserved; i < PAGE_SIZE; i++)
        if (page[i])
            return SQLITE_IOERR_WRITE; /* reserved bytes are ours */
    if (pgno == 0)
        return SQLITE_IOERR_WRITE;
    if (pgno == 1 && (page[16] != (PAGE_SIZE >> 8 & 0xff) || page[17] != (PAGE_SIZE & 0xff) ||
                      page[20] != reserved))
        return SQLITE_IOERR_WRITE; /* not a store created with our page format */
    if (page_seal(f->b->kr, f->b->id, f->b->layers, pgno, page) != 0)
        return SQLITE_IOERR_WRITE;
    atomic_fetch_add_explicit(&st_sealed, 1, memory_order_relaxed);
    return SQLITE_OK;
}

static void count_failure(struct binding *b)
{
    atomic_fetch_add_explicit(&st_fail, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->auth_failures, 1, memory_order_relaxed);
}

/* Decrypt; a failure to authenticate is SQLITE_IOERR_DATA, not counted. */
static int unseal_quiet(struct efile *f, uint32_t pgno, uint8_t *page)
{
    int rc = page_open(f->b->kr, f->b->id, f->b->layers, pgno, page);
    if (rc == 0) {
        atomic_fetch_add_explicit(&st_opened, 1, memory_order_relaxed);
        return SQLITE_OK;
    }
    return rc == AT_EINTEGRITY ? SQLITE_IOERR_DATA : SQLITE_IOERR_READ;
}

static int unseal(struct efile *f, uint32_t pgno, uint8_t *page)
{
    int rc = unseal_quiet(f, pgno, page);
    if (rc == SQLITE_IOERR_DATA)
        count_failure(f->b);
    return rc;
}

static int real_read(struct efile *f, void *buf, int amt, sqlite3_int64 off)
{
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int real_write(struct efile *f, const void *buf, int amt, sqlite3_int64 off)
{
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int wal_flush(struct efile *f)
{
    if (f->wlen == 0)
        return SQLITE_OK;
    int rc = real_write(f, f->wbuf, (int)f->wlen, f->woff);
    f->wlen = 0;
    return rc;
}

/* A WAL write (already sealed): appended to wbuf when it continues it. */
static int wal_put(struct efile *f, const void *buf, int amt, sqlite3_int64 off)
{
    if (f->wlen && (off != f->woff + (sqlite3_int64)f->wlen || f->wlen + (size_t)amt > WAL_WBUF)) {
        int rc = wal_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!f->wbuf)
        f->wbuf = malloc(WAL_WBUF);
    if (!f->wbuf || (size_t)amt > WAL_WBUF)
        return real_write(f, buf, amt, off);
    if (f->wlen == 0)
        f->woff = off;
    memcpy(f->wbuf + f->wlen, buf, (size_t)amt);
    f->wlen += (size_t)amt;
    return SQLITE_OK;
}

/* Read one whole page at off into page and decrypt it. A page wholly past
 * the end of the file reads as zeros with SQLITE_IOERR_SHORT_READ, as SQLite
 * expects; a partial page is damage. Failures are not counted here. */
static int read_page_quiet(struct efile *f, uint32_t pgno, uint8_t *page, sqlite3_int64 off)
{
    int rc = real_read(f, page, PAGE_SIZE, off);
    if (rc == SQLITE_IOERR_SHORT_READ) {
        if (page_all_zero(page, PAGE_SIZE))
            return rc;
        memset(page, 0, PAGE_SIZE);
        return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK)
        return rc;
    return unseal_quiet(f, pgno, page);
}

/* read_page_quiet for a main-file page, read again after a rewrite that
 * may have overlapped it (invariant 6); a failure that stands is counted. */
static int read_page(struct efile *f, uint32_t pgno, uint8_t *page, sqlite3_int64 off)
{
    unsigned gen = atomic_load(&f->b->rekey_gen);
    int rc = read_page_quiet(f, pgno, page, off);
    if (rc == SQLITE_IOERR_DATA && ((gen & 1) || atomic_load(&f->b->rekey_gen) != gen)) {
        pthread_mutex_lock(&f->b->rekey_mu);
        rc = read_page_quiet(f, pgno, page, off);
        pthread_mutex_unlock(&f->b->rekey_mu);
    }
    if (rc == SQLITE_IOERR_DATA)
        count_failure(f->b);
    return rc;
}

/* ---- main database file ------------------------------------------------- */

/* Invariant 8: page pgno at off, out of the read-ahead buffer (filled with
 * one read of RA_SIZE bytes when off is not in it). A page from the buffer
 * is authenticated like any other; one that fails is read afresh. */
static int ra_page(struct efile *f, uint32_t pgno, uint8_t *page, sqlite3_int64 off)
{
    if (off < f->ra_off || off + PAGE_SIZE > f->ra_off + (sqlite3_int64)f->ra_len) {
        f->ra_len = 0;
        int rc = real_read(f, f->ra, RA_SIZE, off);
        sqlite3_int64 size = 0;
        if (rc == SQLITE_IOERR_SHORT_READ &&
            f->real->pMethods->xFileSize(f->real, &size) == SQLITE_OK && size > off)
            f->ra_len = (size_t)(size - off) / PAGE_SIZE * PAGE_SIZE; /* the file's tail */
        else if (rc == SQLITE_OK)
            f->ra_len = RA_SIZE;
        f->ra_off = off;
        if (f->ra_len == 0)
            return read_page(f, pgno, page, off);
    }
    memcpy(page, f->ra + (off - f->ra_off), PAGE_SIZE);
    if (pgno != 1 && page_all_zero(page, PAGE_SIZE)) { /* invariant 9 */
        if (f->unw_n == f->unw_cap) {
            size_t cap = f->unw_cap ? 2 * f->unw_cap : 64;
            uint32_t *p = realloc(f->unw, cap * sizeof *p);
            if (!p)
                return SQLITE_IOERR_NOMEM;
            f->unw = p;
            f->unw_cap = cap;
        }
        f->unw[f->unw_n++] = pgno;
        return SQLITE_OK;
    }
    if (unseal_quiet(f, pgno, page) == SQLITE_OK)
        return SQLITE_OK;
    return read_page(f, pgno, page, off);
}

static int main_read(struct efile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    while (amt > 0) {
        sqlite3_int64 pg = off / PAGE_SIZE;
        int in = (int)(off % PAGE_SIZE);
        int n = PAGE_SIZE - in < amt ? PAGE_SIZE - in : amt;
        int rc;
        if (in == 0 && n == PAGE_SIZE && f->ra) {
            rc = ra_page(f, (uint32_t)(pg + 1), buf, off);
        } else if (in == 0 && n == PAGE_SIZE) { /* invariant 10 */
            uint64_t epoch = aead_kept_epoch();
            uint32_t pgno = (uint32_t)(pg + 1);
            if (pagecache_get(CACHE_FILE(f->b), pgno, epoch, buf))
                rc = SQLITE_OK;
            else if ((rc = read_page(f, pgno, buf, off)) == SQLITE_OK)
                pagecache_put(CACHE_FILE(f->b), pgno, epoch, buf);
        } else {
            rc = read_page(f, (uint32_t)(pg + 1), f->scratch, pg * PAGE_SIZE);
            if (rc == SQLITE_OK)
                memcpy(buf, f->scratch + in, (size_t)n);
            else
                memset(buf, 0, (size_t)n);
            secmem_wipe(f->scratch, PAGE_SIZE);
        }
        if (rc != SQLITE_OK) {
            memset(buf, 0, (size_t)amt);
            return rc;
        }
        buf += n;
        off += n;
        amt -= n;
    }
    return SQLITE_OK;
}

/* A checkpoint's pages: start their writeback every CKPT_FLUSH_PAGES, so
 * the checkpoint's final fsync has little left to write and the WAL's
 * commit fsyncs do not queue behind tens of megabytes at once. rekey_mu
 * held; failures only cost the early start. */
#define CKPT_FLUSH_PAGES 256

static void ckpt_writeback(struct binding *b)
{
    b->ckpt_unflushed = 0;
    if (b->rekey_fd < 0)
        b->rekey_fd = open(b->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (b->rekey_fd >= 0)
        sync_file_range(b->rekey_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int main_write(struct efile *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (amt != PAGE_SIZE || off % PAGE_SIZE)
        return SQLITE_IOERR_WRITE;
    f->ra_len = 0; /* a handle that writes drops what it read ahead */
    int rc = SQLITE_OK;
    if (tls_ckpt == f->b) {
        /* Invariant 3: ciphertext copied from the WAL by a checkpoint. */
        atomic_fetch_add_explicit(&st_pass, 1, memory_order_relaxed);
    } else {
        memcpy(f->scratch, buf, PAGE_SIZE);
        rc = seal(f, (uint32_t)(off / PAGE_SIZE + 1), f->scratch);
        buf = f->scratch;
    }
    if (rc == SQLITE_OK) {
        pthread_mutex_lock(&f->b->rekey_mu); /* invariant 6 */
        rc = real_write(f, buf, amt, off);
        if (rc == SQLITE_OK && tls_ckpt == f->b && ++f->b->ckpt_unflushed >= CKPT_FLUSH_PAGES)
            ckpt_writeback(f->b);
        pthread_mutex_unlock(&f->b->rekey_mu);
    }
    pagecache_drop(CACHE_FILE(f->b), (uint32_t)(off / PAGE_SIZE + 1)); /* invariant 10 */
    return rc;
}

/* ---- WAL ------------------------------------------------------------------ */

/*
 * Commit capture (continuous backups). When a binding has a commit hook
 * (vfs_set_commit_hook), every successful xSync of a WAL hands the hook the
 * sealed frames written since the previous sync, up to and including the
 * last commit frame among them, in WAL order, read back from the file.
 * With synchronous=FULL SQLite syncs the WAL once per commit, after the
 * commit frame and before publishing it, so each call is one durable
 * transaction of that WAL's connection. The hook runs on the committing
 * thread with SQLite's write lock held: it takes the buffer and returns at
 * once. Without a hook nothing here runs.
 */

/* Remember which frames this connection wrote since its last sync. A WAL
 * header write starts the log over. */
static void note_frames(struct efile *f, sqlite3_int64 off, int amt)
{
    if (off + amt <= WAL_HDR) {
        f->cap_lo = f->cap_hi = WAL_HDR;
        return;
    }
    sqlite3_int64 frame = WAL_HDR + (off - WAL_HDR) / FRAME_SIZE * FRAME_SIZE;
    if (f->cap_lo == f->cap_hi || frame < f->cap_lo)
        f->cap_lo = frame;
    if (frame + FRAME_SIZE > f->cap_hi)
        f->cap_hi = frame + FRAME_SIZE;
}

/* After a successful WAL sync: read back the frames since the last one and
 * hand those up to the last commit frame to the hook. Frames that do not
 * end in a commit frame wait for the next sync. */
static void capture(struct efile *f)
{
    vfs_commit_fn hook = f->b->hook;
    if (!hook || f->cap_hi <= f->cap_lo)
        return;
    size_t len = (size_t)(f->cap_hi - f->cap_lo);
    uint8_t *buf = malloc(len);
    if (!buf || real_read(f, buf, (int)len, f->cap_lo) != SQLITE_OK) {
        free(buf);
        hook(f->b->hook_ctx, NULL, 0); /* tells the hook a commit was missed */
        f->cap_lo = f->cap_hi;
        return;
    }
    size_t n = 0;
    for (size_t k = 0; k < len / FRAME_SIZE; k++)
        if (page_get32(buf + k * FRAME_SIZE + 4) != 0)
            n = k + 1;
    f->cap_lo += (sqlite3_int64)(n * FRAME_SIZE);
    if (n)
        hook(f->b->hook_ctx, buf, n); /* the hook owns buf */
    else
        free(buf);
}

/* Commit frames at or after frame k (whose header is hdr) with k's salts. */
static int commits_from(struct efile *f, sqlite3_int64 k, const uint8_t *hdr)
{
    const uint8_t *salts = hdr + 8;
    int n = page_get32(hdr + 4) != 0;
    sqlite3_int64 size = 0;
    if (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK)
        return n;
    uint8_t h[FRAME_HDR];
    for (sqlite3_int64 j = k + 1; WAL_HDR + (j + 1) * FRAME_SIZE <= size && n < 2; j++) {
        if (real_read(f, h, FRAME_HDR, WAL_HDR + j * FRAME_SIZE) != SQLITE_OK)
            break;
        if (memcmp(h + 8, salts, 8) == 0 && page_get32(h + 4) != 0)
            n++;
    }
    return n;
}

static int wal_pgno(struct efile *f, sqlite3_int64 hdr_off, uint32_t *pgno)
{
    if (f->hdr_off == hdr_off) {
        *pgno = f->hdr_pgno;
        return SQLITE_OK;
    }
    uint8_t h[4];
    int rc = wal_flush(f);
    if (rc == SQLITE_OK)
        rc = real_read(f, h, 4, hdr_off);
    if (rc != SQLITE_OK)
        return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_DATA : rc;
    *pgno = page_get32(h);
    return SQLITE_OK;
}

/* Invariant 7: this handle is about to seal a frame. */
static void wal_unsettle(struct efile *f)
{
    if (!f->unsettled) {
        f->unsettled = 1;
        atomic_fetch_add(&f->b->wal_unsettled, 1);
    }
}

static void wal_settle(struct efile *f)
{
    if (f->unsettled) {
        f->unsettled = 0;
        atomic_fetch_add(&f->b->wal_settles, 1);
        atomic_fetch_sub(&f->b->wal_unsettled, 1);
    }
}

static int wal_write(struct efile *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (f->b->hook)
        note_frames(f, off, amt);
    if (off + amt <= WAL_HDR) {
        int rc = wal_flush(f);
        return rc == SQLITE_OK ? real_write(f, buf, amt, off) : rc;
    }
    if (off < WAL_HDR)
        return SQLITE_IOERR_WRITE;
    sqlite3_int64 k = (off - WAL_HDR) / FRAME_SIZE;
    sqlite3_int64 r = (off - WAL_HDR) % FRAME_SIZE;
    sqlite3_int64 frame = WAL_HDR + k * FRAME_SIZE;
    int rc;
    if (r == 0 && amt == FRAME_HDR) {
        rc = wal_put(f, buf, amt, off);
        if (rc == SQLITE_OK) {
            f->hdr_off = off;
            f->hdr_pgno = page_get32(buf);
            f->hdr_commit = page_get32(buf + 4) != 0;
        }
        return rc;
    }
    if ((r == FRAME_HDR && amt == PAGE_SIZE) || (r == 0 && amt == FRAME_SIZE))
        wal_unsettle(f);
    if (r == FRAME_HDR && amt == PAGE_SIZE) {
        uint32_t pgno;
        if ((rc = wal_pgno(f, frame, &pgno)) != SQLITE_OK)
            return rc;
        memcpy(f->scratch, buf, PAGE_SIZE);
        if ((rc = seal(f, pgno, f->scratch)) != SQLITE_OK)
            return rc;
        rc = wal_put(f, f->scratch, PAGE_SIZE, off);
        return rc == SQLITE_OK && f->hdr_off == frame && f->hdr_commit ? wal_flush(f) : rc;
    }
    if (r == 0 && amt == FRAME_SIZE) {
        memcpy(f->scratch, buf, FRAME_SIZE);
        if ((rc = seal(f, page_get32(buf), f->scratch + FRAME_HDR)) != SQLITE_OK)
            return rc;
        rc = wal_put(f, f->scratch, FRAME_SIZE, off);
        if (rc == SQLITE_OK) {
            f->hdr_off = off;
            f->hdr_pgno = page_get32(buf);
            f->hdr_commit = page_get32(buf + 4) != 0;
        }
        return rc == SQLITE_OK && f->hdr_commit ? wal_flush(f) : rc;
    }
    return SQLITE_IOERR_WRITE; /* invariant 1: no other shape is written */
}

/* Whether [off, off+amt) overlaps the page part of any frame. */
static int touches_page(sqlite3_int64 off, int amt)
{
    sqlite3_int64 end = off + amt;
    sqlite3_int64 k = off < WAL_HDR ? 0 : (off - WAL_HDR) / FRAME_SIZE;
    for (;; k++) {
        sqlite3_int64 pstart = WAL_HDR + k * FRAME_SIZE + FRAME_HDR;
        if (pstart >= end)
            return 0;
        if (pstart + PAGE_SIZE > off)
            return 1;
    }
}

static int wal_read(struct efile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    int rc = wal_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    rc = real_read(f, buf, amt, off);
    sqlite3_int64 end = off + amt;
    if (rc == SQLITE_IOERR_SHORT_READ && touches_page(off, amt)) {
        /* Past the end is fine for headers, never for page content. */
        memset(buf, 0, (size_t)amt);
        atomic_fetch_add_explicit(&st_fail, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&f->b->auth_failures, 1, memory_order_relaxed);
        return SQLITE_IOERR_DATA;
    }
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_int64 first = off < WAL_HDR ? 0 : (off - WAL_HDR) / FRAME_SIZE;
    for (sqlite3_int64 k = first;; k++) {
        sqlite3_int64 frame = WAL_HDR + k * FRAME_SIZE;
        sqlite3_int64 pstart = frame + FRAME_HDR;
        if (frame >= end)
            break;
        if (pstart + PAGE_SIZE <= off)
            continue;
        if (pstart >= end)
            break;
        if (off == pstart && amt == PAGE_SIZE && tls_ckpt == f->b) {
            atomic_fetch_add_explicit(&st_pass, 1, memory_order_relaxed);
            return SQLITE_OK; /* invariant 3: ciphertext straight to the main file */
        }
        uint32_t pgno;
        if (frame >= off)
            pgno = page_get32(buf + (frame - off));
        else if ((rc = wal_pgno(f, frame, &pgno)) != SQLITE_OK)
            goto fail;
        uint8_t *page;
        int whole = pstart >= off && pstart + PAGE_SIZE <= end;
        if (whole) {
            page = buf + (pstart - off);
        } else {
            page = f->scratch;
            rc = real_read(f, page, PAGE_SIZE, pstart);
            if (rc != SQLITE_OK) {
                rc = SQLITE_IOERR_DATA;
                goto fail;
            }
        }
        rc = unseal(f, pgno, page);
        if (rc == SQLITE_IOERR_DATA && tls_recover == f->b && frame == off && amt == FRAME_SIZE &&
            commits_from(f, k, buf) < 2) {
            /* Invariant 4: a torn tail. Make SQLite's checksum fail. */
            atomic_fetch_sub_explicit(&st_fail, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&f->b->auth_failures, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&st_torn, 1, memory_order_relaxed);
            for (int i = 16; i < FRAME_HDR; i++)
                buf[i] = (uint8_t)~buf[i];
            return SQLITE_OK;
        }
        if (rc != SQLITE_OK)
            goto fail;
        if (!whole) {
            sqlite3_int64 a = pstart > off ? pstart : off;
            sqlite3_int64 z = pstart + PAGE_SIZE < end ? pstart + PAGE_SIZE : end;
            memcpy(buf + (a - off), page + (a - pstart), (size_t)(z - a));
            secmem_wipe(page, PAGE_SIZE);
        }
    }
    return SQLITE_OK;
fail:
    memset(buf, 0, (size_t)amt);
    return rc;
}

/* ---- rollback journal --------------------------------------------------- */

static int journal_write(struct efile *f, const uint8_t *buf, int amt, sqlite3_int64 off)
{
    if (amt == 4) {
        int rc = real_write(f, buf, amt, off);
        if (rc == SQLITE_OK) {
            f->jpgno_off = off;
            f->jpgno = page_get32(buf);
        }
        return rc;
    }
    if (amt != PAGE_SIZE)
        return amt < PAGE_SIZE ? real_write(f, buf, amt, off) : SQLITE_IOERR_WRITE;
    if (f->jpgno_off == off - 4 && f->jpgno != 0) {
        memcpy(f->scratch, buf, PAGE_SIZE);
        int rc = seal(f, f->jpgno, f->scratch);
        return rc == SQLITE_OK ? real_write(f, f->scratch, PAGE_SIZE, off) : rc;
    }
    /* A page-sized write that is not a page record must be a journal
     * header: magic first, nothing but small fields and zeros after. */
    if (memcmp(buf, journal_magic, 8) == 0 && page_all_zero(buf + 28, PAGE_SIZE - 28))
        return real_write(f, buf, amt, off);
    return SQLITE_IOERR_WRITE;
}

static int journal_read(struct efile *f, uint8_t *buf, int amt, sqlite3_int64 off)
{
    int rc = real_read(f, buf, amt, off);
    if (rc != SQLITE_OK || amt != PAGE_SIZE)
        return rc;
    if (memcmp(buf, journal_magic, 8) == 0 && page_all_zero(buf + 28, PAGE_SIZE - 28))
        return SQLITE_OK; /* a header */
    uint8_t h[4];
    if (off < 4 || real_read(f, h, 4, off - 4) != SQLITE_OK) {
        memset(buf, 0, PAGE_SIZE);
        return SQLITE_IOERR_DATA;
    }
    return unseal(f, page_get32(h), buf);
}

/* ---- io_methods ------------------------------------------------------------ */

static int x_close(sqlite3_file *pf)
{
    struct efile *f = (struct efile *)pf;
    int frc = f->real->pMethods ? wal_flush(f) : SQLITE_OK;
    shm_unmap(&f->shm);
    if (f->unsettled) { /* unsynced frames on close: a rollback's, or a failure's */
        f->unsettled = 0;
        atomic_fetch_sub(&f->b->wal_unsettled, 1);
    }
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = frc;
    free(f->wbuf);
    free(f->ra);
    free(f->unw);
    if (f->scratch) {
        secmem_wipe(f->scratch, FRAME_SIZE);
        free(f->scratch);
    }
    pthread_mutex_lock(&bind_lock);
    release_locked(f->b);
    pthread_mutex_unlock(&bind_lock);
    return rc;
}

static int x_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
    struct efile *f = (struct efile *)pf;
    switch (f->kind) {
    case K_MAIN:
        return main_read(f, buf, amt, off);
    case K_WAL:
        return wal_read(f, buf, amt, off);
    default:
        return journal_read(f, buf, amt, off);
    }
}

static int x_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
    struct efile *f = (struct efile *)pf;
    switch (f->kind) {
    case K_MAIN:
        return main_write(f, buf, amt, off);
    case K_WAL:
        return wal_write(f, buf, amt, off);
    default:
        return journal_write(f, buf, amt, off);
    }
}

#define REAL(pf) (((struct efile *)(pf))->real)

static int x_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    struct efile *f = (struct efile *)pf;
    int rc = wal_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (f->kind != K_MAIN)
        return f->real->pMethods->xTruncate(f->real, size);
    f->ra_len = 0;
    pthread_mutex_lock(&f->b->rekey_mu); /* invariant 6 */
    rc = f->real->pMethods->xTruncate(f->real, size);
    pthread_mutex_unlock(&f->b->rekey_mu);
    pagecache_drop_from(CACHE_FILE(f->b), (uint32_t)(size / PAGE_SIZE + 1));
    return rc;
}
static int x_sync(sqlite3_file *pf, int flags)
{
    struct efile *f = (struct efile *)pf;
    int rc = wal_flush(f);
    if (rc == SQLITE_OK)
        rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK && f->kind == K_WAL)
        wal_settle(f);
    return rc;
}
static int x_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    int rc = wal_flush((struct efile *)pf);
    return rc == SQLITE_OK ? REAL(pf)->pMethods->xFileSize(REAL(pf), size) : rc;
}
static int x_lock(sqlite3_file *pf, int lock)
{
    return REAL(pf)->pMethods->xLock(REAL(pf), lock);
}
static int x_unlock(sqlite3_file *pf, int lock)
{
    return REAL(pf)->pMethods->xUnlock(REAL(pf), lock);
}
static int x_check_reserved(sqlite3_file *pf, int *out)
{
    return REAL(pf)->pMethods->xCheckReservedLock(REAL(pf), out);
}
static int x_sector_size(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xSectorSize(REAL(pf));
}
static int x_device_chars(sqlite3_file *pf)
{
    return REAL(pf)->pMethods->xDeviceCharacteristics(REAL(pf));
}
/* The WAL index lives in this process's memory, not in a -shm file
 * (shm.h): SQLite only maps it through a main file. */
static int x_shm_map(sqlite3_file *pf, int pg, int sz, int extend, void volatile **pp)
{
    struct efile *f = (struct efile *)pf;
    if (f->kind != K_MAIN)
        return SQLITE_IOERR_SHMMAP;
    return shm_map(&f->shm, f->b->path, pg, sz, extend, pp);
}
static void x_shm_barrier(sqlite3_file *pf)
{
    (void)pf;
    shm_barrier();
}
static int x_shm_unmap(sqlite3_file *pf, int del)
{
    (void)del; /* there is no file to delete */
    return shm_unmap(&((struct efile *)pf)->shm);
}

static int x_shm_lock(sqlite3_file *pf, int offset, int n, int flags)
{
    struct efile *f = (struct efile *)pf;
    int rc = shm_lock(&f->shm, offset, n, flags);
    if (rc == SQLITE_OK && offset <= WAL_RECOVER_LOCK && WAL_RECOVER_LOCK < offset + n) {
        if ((flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE))
            tls_recover = f->b;
        else if ((flags & SQLITE_SHM_UNLOCK) && tls_recover == f->b)
            tls_recover = NULL;
    }
    return rc;
}

static int x_file_control(sqlite3_file *pf, int op, void *arg)
{
    struct efile *f = (struct efile *)pf;
    if (op == VFS_FCNTL_READAHEAD) { /* invariant 8 */
        if (f->kind != K_MAIN)
            return SQLITE_NOTFOUND;
        free(f->ra); /* sealed bytes only */
        f->ra = *(int *)arg ? malloc(RA_SIZE) : NULL;
        f->ra_len = 0;
        if (*(int *)arg)
            f->unw_n = 0;
        return *(int *)arg && !f->ra ? SQLITE_NOMEM : SQLITE_OK;
    }
    if (op == VFS_FCNTL_UNWRITTEN) { /* invariant 9 */
        if (f->kind != K_MAIN)
            return SQLITE_NOTFOUND;
        struct vfs_unwritten *u = arg;
        u->pgno = f->unw;
        u->n = f->unw_n;
        f->unw = NULL;
        f->unw_n = f->unw_cap = 0;
        return SQLITE_OK;
    }
    if (f->kind == K_MAIN && op == SQLITE_FCNTL_CKPT_START)
        tls_ckpt = f->b;
    else if (f->kind == K_MAIN && op == SQLITE_FCNTL_CKPT_DONE)
        tls_ckpt = NULL;
    int rc = wal_flush(f);
    return rc == SQLITE_OK ? f->real->pMethods->xFileControl(f->real, op, arg) : rc;
}

/* xSync, then the commit capture of a WAL (above). */
static int x_sync_capture(sqlite3_file *pf, int flags)
{
    struct efile *f = (struct efile *)pf;
    int rc = x_sync(pf, flags);
    if (rc == SQLITE_OK && f->kind == K_WAL)
        capture(f);
    return rc;
}

static const sqlite3_io_methods io_methods = {
    2, /* no xFetch/xUnfetch: SQLite never memory-maps a store */
    x_close,   x_read,     x_write,          x_truncate,     x_sync_capture, x_file_size,
    x_lock,    x_unlock,   x_check_reserved, x_file_control, x_sector_size,  x_device_chars,
    x_shm_map, x_shm_lock, x_shm_barrier,    x_shm_unmap,    NULL,           NULL,
};

/* ---- the VFS ------------------------------------------------------------- */

static int refuse(void)
{
    atomic_fetch_add_explicit(&st_refused, 1, memory_order_relaxed);
    return SQLITE_CANTOPEN;
}

static int x_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags, int *out_flags)
{
    (void)vfs;
    struct efile *f = (struct efile *)pf;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    const int temp = SQLITE_OPEN_TEMP_DB | SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_TRANSIENT_DB |
                     SQLITE_OPEN_SUBJOURNAL | SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_DELETEONCLOSE;
    if (!name || (flags & temp))
        return refuse();
    const char *db = name;
    if (flags & SQLITE_OPEN_MAIN_DB)
        f->kind = K_MAIN;
    else if (flags & SQLITE_OPEN_WAL)
        f->kind = K_WAL, db = sqlite3_filename_database(name);
    else if (flags & SQLITE_OPEN_MAIN_JOURNAL)
        f->kind = K_JOURNAL, db = sqlite3_filename_database(name);
    else
        return refuse();
    pthread_mutex_lock(&bind_lock);
    struct binding *b = db ? find_locked(db) : NULL;
    if (b)
        b->refs++;
    pthread_mutex_unlock(&bind_lock);
    if (!b)
        return refuse();
    f->b = b;
    f->hdr_off = f->jpgno_off = -1;
    f->scratch = malloc(FRAME_SIZE);
    int rc = f->scratch ? unix_vfs->xOpen(unix_vfs, name, f->real, flags, out_flags) : SQLITE_NOMEM;
    if (rc != SQLITE_OK) {
        free(f->scratch);
        pthread_mutex_lock(&bind_lock);
        release_locked(b);
        pthread_mutex_unlock(&bind_lock);
        return rc;
    }
    f->base.pMethods = &io_methods;
    return SQLITE_OK;
}

static int x_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return unix_vfs->xDelete(unix_vfs, name, sync_dir);
}
static int x_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return unix_vfs->xAccess(unix_vfs, name, flags, out);
}
static int x_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return unix_vfs->xFullPathname(unix_vfs, name, n, out);
}
static int x_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return unix_vfs->xRandomness(unix_vfs, n, out);
}
static int x_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return unix_vfs->xSleep(unix_vfs, us);
}
static int x_current_time(sqlite3_vfs *v, double *t)
{
    (void)v;
    return unix_vfs->xCurrentTime(unix_vfs, t);
}
static int x_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return unix_vfs->xGetLastError(unix_vfs, n, out);
}
static int x_current_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
    (void)v;
    return unix_vfs->xCurrentTimeInt64(unix_vfs, t);
}

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static int reg_rc = SQLITE_ERROR;

static void do_register(void)
{
    unix_vfs = sqlite3_vfs_find("unix");
    if (!unix_vfs)
        return;
    shim.iVersion = 2;
    shim.szOsFile = (int)sizeof(struct efile) + unix_vfs->szOsFile;
    shim.mxPathname = unix_vfs->mxPathname;
    shim.zName = VFS_NAME;
    shim.xOpen = x_open;
    shim.xDelete = x_delete;
    shim.xAccess = x_access;
    shim.xFullPathname = x_full_pathname;
    shim.xRandomness = x_randomness;
    shim.xSleep = x_sleep;
    shim.xCurrentTime = x_current_time;
    shim.xGetLastError = x_last_error;
    shim.xCurrentTimeInt64 = x_current_time64;
    /* No xDlOpen family: a store never loads extensions. */
    reg_rc = sqlite3_vfs_register(&shim, 0);
}

int vfs_register(void)
{
    pthread_once(&reg_once, do_register);
    return reg_rc == SQLITE_OK ? 0 : AT_ESQLITE;
}
