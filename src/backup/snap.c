/*
 * snap.c — a consistent copy of a store's pages, in memory only.
 *
 * Debian's SQLite has no sqlite_dbpage table, so the copy is made with the
 * online backup API (sqlite3_backup_step(-1), one step) from a connection
 * that already holds a read transaction: SQLite reuses that transaction, so
 * the copy is the store exactly as of its snapshot while writers go on in
 * their own connections. The destination is a database on "atrest-capture",
 * a VFS whose only file is a bk_mem buffer: an anonymous mapping marked
 * MADV_DONTDUMP and wiped before it is unmapped. It opens no other file
 * (journals are off; a request for one is refused), so no page ever
 * reaches a disk in plaintext.
 *
 * The copy holds one store's plaintext in memory at a time (its size in
 * bytes); see docs/backup.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backup/backupint.h"
#include "crypto/secmem.h"
#include "storage/freelist.h"
#include "storage/vfs.h"

#define CAPTURE_VFS "atrest-capture"

int bk_mem_reserve(struct bk_mem *m, size_t cap)
{
    if (cap <= m->cap)
        return 0;
    size_t nc = m->cap ? m->cap : (1u << 20);
    while (nc < cap)
        nc *= 2;
    void *p = m->p ? mremap(m->p, m->cap, nc, MREMAP_MAYMOVE)
                   : mmap(NULL, nc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return at_error_set(AT_ENOMEM, "cannot map %zu bytes for a store snapshot", nc);
    madvise(p, nc, MADV_DONTDUMP);
    madvise(p, nc, MADV_HUGEPAGE); /* a store's size in 4 KiB faults is slow */
    m->p = p;
    m->cap = nc;
    return 0;
}

void bk_mem_free(struct bk_mem *m)
{
    if (m->p) {
        secmem_wipe(m->p, m->len);
        munmap(m->p, m->cap);
    }
    m->p = NULL;
    m->len = m->cap = 0;
}

/* ---- the capture VFS ---------------------------------------------------- */

struct cfile {
    sqlite3_file base;
    struct bk_mem *m;
};

static int c_close(sqlite3_file *f)
{
    (void)f;
    return SQLITE_OK;
}

static int c_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    struct bk_mem *m = ((struct cfile *)f)->m;
    size_t have = (size_t)off < m->len ? m->len - (size_t)off : 0;
    size_t take = have < (size_t)n ? have : (size_t)n;
    if (take)
        memcpy(buf, m->p + off, take);
    if (take < (size_t)n) {
        memset((uint8_t *)buf + take, 0, (size_t)n - take);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int c_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    struct bk_mem *m = ((struct cfile *)f)->m;
    size_t end = (size_t)off + (size_t)n;
    if (bk_mem_reserve(m, end) != 0)
        return SQLITE_IOERR_NOMEM;
    if ((size_t)off > m->len)
        memset(m->p + m->len, 0, (size_t)off - m->len);
    memcpy(m->p + off, buf, (size_t)n);
    if (end > m->len)
        m->len = end;
    return SQLITE_OK;
}

static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct bk_mem *m = ((struct cfile *)f)->m;
    if ((size_t)size < m->len) {
        secmem_wipe(m->p + size, m->len - (size_t)size);
        m->len = (size_t)size;
    }
    return SQLITE_OK;
}

static int c_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    return SQLITE_OK;
}

static int c_size(sqlite3_file *f, sqlite3_int64 *out)
{
    *out = (sqlite3_int64)((struct cfile *)f)->m->len;
    return SQLITE_OK;
}

static int c_lock(sqlite3_file *f, int level)
{
    (void)f;
    (void)level;
    return SQLITE_OK;
}

static int c_reserved(sqlite3_file *f, int *out)
{
    (void)f;
    *out = 0;
    return SQLITE_OK;
}

static int c_fcntl(sqlite3_file *f, int op, void *arg)
{
    (void)f;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND;
}

static int c_sector(sqlite3_file *f)
{
    (void)f;
    return 4096;
}

static int c_devchar(sqlite3_file *f)
{
    (void)f;
    return 0;
}

static const sqlite3_io_methods c_methods = {
    .iVersion = 1,
    .xClose = c_close,
    .xRead = c_read,
    .xWrite = c_write,
    .xTruncate = c_truncate,
    .xSync = c_sync,
    .xFileSize = c_size,
    .xLock = c_lock,
    .xUnlock = c_lock,
    .xCheckReservedLock = c_reserved,
    .xFileControl = c_fcntl,
    .xSectorSize = c_sector,
    .xDeviceCharacteristics = c_devchar,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    void *p = NULL;
    f->pMethods = NULL;
    if (!(flags & SQLITE_OPEN_MAIN_DB) || !name || sscanf(name, "/" CAPTURE_VFS "/%p", &p) != 1 ||
        !p)
        return SQLITE_CANTOPEN; /* no journal, no temp file: memory only */
    struct cfile *cf = (struct cfile *)f;
    cf->m = p;
    f->pMethods = &c_methods;
    if (out_flags)
        *out_flags = flags;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
    (void)vfs;
    (void)name;
    (void)sync;
    return SQLITE_OK;
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    (void)name;
    (void)flags;
    *out = 0;
    return SQLITE_OK;
}

static int v_full(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    if ((int)strlen(name) >= n)
        return SQLITE_CANTOPEN;
    strcpy(out, name);
    return SQLITE_OK;
}

static int v_random(sqlite3_vfs *vfs, int n, char *out)
{
    sqlite3_vfs *d = vfs->pAppData;
    return d->xRandomness(d, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
    sqlite3_vfs *d = vfs->pAppData;
    return d->xSleep(d, us);
}

static int v_time(sqlite3_vfs *vfs, double *out)
{
    sqlite3_vfs *d = vfs->pAppData;
    return d->xCurrentTime(d, out);
}

static int v_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    if (n > 0)
        out[0] = 0;
    return 0;
}

static sqlite3_vfs capture = {
    .iVersion = 1,
    .szOsFile = sizeof(struct cfile),
    .mxPathname = 256,
    .zName = CAPTURE_VFS,
    .xOpen = v_open,
    .xDelete = v_delete,
    .xAccess = v_access,
    .xFullPathname = v_full,
    .xRandomness = v_random,
    .xSleep = v_sleep,
    .xCurrentTime = v_time,
    .xGetLastError = v_error,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int reg_rc;

static void do_register(void)
{
    capture.pAppData = sqlite3_vfs_find(NULL);
    reg_rc = capture.pAppData ? sqlite3_vfs_register(&capture, 0) : SQLITE_ERROR;
}

/* A connection to the database in m, on the capture VFS. */
static int open_mem(struct bk_mem *m, sqlite3 **db)
{
    pthread_once(&once, do_register);
    if (reg_rc != SQLITE_OK)
        return at_error_set(AT_ESQLITE, "cannot register the capture VFS");
    char name[64];
    snprintf(name, sizeof name, "/" CAPTURE_VFS "/%p", (void *)m);
    *db = NULL;
    int src_rc = sqlite3_open_v2(name, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, CAPTURE_VFS);
    if (src_rc == SQLITE_OK)
        src_rc =
            sqlite3_exec(*db, "PRAGMA journal_mode=OFF; PRAGMA cache_size=-2048", NULL, NULL, NULL);
    if (src_rc != SQLITE_OK) {
        int rc = at_error_set(AT_ESQLITE, "cannot open the snapshot buffer: %s",
                              *db ? sqlite3_errmsg(*db) : sqlite3_errstr(src_rc));
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    return 0;
}

#define HDR_WRITE_VERSION 18 /* file format bytes: 1 rollback, 2 WAL */
#define HDR_READ_VERSION  19

int bk_image_open(struct bk_mem *m, sqlite3 **db)
{
    *db = NULL;
    if (m->len < PAGE_SIZE)
        return at_error_set(AT_EFORMAT, "a store snapshot of %zu bytes", m->len);
    m->hdr_ver[0] = m->p[HDR_WRITE_VERSION];
    m->hdr_ver[1] = m->p[HDR_READ_VERSION];
    m->p[HDR_WRITE_VERSION] = m->p[HDR_READ_VERSION] = 1;
    int rc = open_mem(m, db);
    if (rc)
        bk_image_close(m, NULL);
    return rc;
}

void bk_image_close(struct bk_mem *m, sqlite3 *db)
{
    sqlite3_close(db);
    m->p[HDR_WRITE_VERSION] = m->hdr_ver[0];
    m->p[HDR_READ_VERSION] = m->hdr_ver[1];
}

/* The pages served as unwritten (vfs.c invariant 9), and how many of them
 * the copy's free list holds. */
struct unwritten {
    const struct bk_mem *m;
    uint32_t *pgno;
    size_t n, found;
};

static const uint8_t *image_page(void *arg, uint32_t pgno)
{
    const struct unwritten *u = arg;
    return u->m->p + (size_t)(pgno - 1) * PAGE_SIZE;
}

static void image_leaf(void *arg, uint32_t pgno)
{
    struct unwritten *u = arg;
    for (size_t k = 0; k < u->n; k++)
        if (u->pgno[k] == pgno) { /* each found once: mark it done */
            u->pgno[k] = 0;
            u->found++;
        }
}

/* Whether every page in pgno[0..n) is a leaf of the free list of the image
 * in m (a SQLite database file, plaintext, made of authenticated pages). */
static int all_free_leaves(const struct bk_mem *m, uint32_t *pgno, size_t n)
{
    if (n == 0)
        return 1;
    if (m->len < 100)
        return 0;
    struct unwritten u = {m, pgno, n, 0};
    freelist_walk(m->p, PAGE_SIZE - m->p[20], m->len / PAGE_SIZE, image_page, image_leaf, &u);
    return u.found == n;
}

int bk_snapshot(sqlite3 *src, struct bk_mem *out)
{
    sqlite3 *dst = NULL;
    int rc = open_mem(out, &dst);
    if (rc)
        return rc;
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        rc = at_error_set(AT_ESQLITE, "cannot start the snapshot: %s", sqlite3_errmsg(dst));
        goto out;
    }
    /* The caller's read transaction is open: read the store ahead in
     * large reads (invariant 8 in vfs.c); a source not on the atrest VFS
     * answers SQLITE_NOTFOUND and reads page by page. */
    int on = 1, off = 0;
    int ra = sqlite3_file_control(src, "main", VFS_FCNTL_READAHEAD, &on);
    int step = sqlite3_backup_step(b, -1);
    if (ra == SQLITE_OK)
        sqlite3_file_control(src, "main", VFS_FCNTL_READAHEAD, &off);
    int fin = sqlite3_backup_finish(b);
    struct vfs_unwritten unw = {0};
    if (ra == SQLITE_OK)
        sqlite3_file_control(src, "main", VFS_FCNTL_UNWRITTEN, &unw);
    int unwritten_ok = all_free_leaves(out, unw.pgno, unw.n);
    free(unw.pgno);
    if (step == SQLITE_DONE && fin == SQLITE_OK && !unwritten_ok)
        rc = at_error_set(AT_EINTEGRITY, "a page of the store failed authentication while "
                                         "it was being backed up (a page in use reads as zeros)");
    else if (step != SQLITE_DONE || fin != SQLITE_OK) {
        int code = step != SQLITE_DONE ? step : fin;
        rc = code == SQLITE_IOERR_DATA || sqlite3_extended_errcode(src) == SQLITE_IOERR_DATA
                 ? at_error_set(AT_EINTEGRITY, "a page of the store failed authentication while "
                                               "it was being backed up")
                 : at_error_set(AT_ESQLITE, "copying the store failed: %s (SQLite code %d)",
                                sqlite3_errstr(code), code);
    }
out:
    sqlite3_close(dst);
    return rc;
}
