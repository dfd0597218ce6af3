/*
 * shm.c — the WAL index of a store in this process's memory (shm.h).
 *
 * Nodes: one per database path with a mapped connection, in a list under
 * reg_mu; a node's regions and lock table under its own mutex.
 *
 * Invariants:
 *   1. For each slot, either one connection holds it exclusively (excl[slot])
 *      and no other holds it at all, or shared[slot] connections hold it
 *      shared; each link's mask says which of the shared holds are its own.
 *   2. Regions never move once handed out (each is its own allocation; the
 *      array of pointers may grow), and live until the node's last link
 *      detaches: SQLite keeps the pointers it got until xShmUnmap.
 *   3. Only one process opens a data folder (store.c's LOCK), so no other
 *      process can hold a copy of the index: a new node starts zeroed and
 *      SQLite rebuilds the index from the WAL, as it does after a crash.
 */
#include "storage/shm.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct shm_node {
    struct shm_node *next;
    char *path;
    int links;
    pthread_mutex_t mu;
    int size; /* bytes per region */
    int nregion;
    void **region;
    int shared[SQLITE_SHM_NLOCK];                  /* connections holding the slot shared */
    const struct shm_link *excl[SQLITE_SHM_NLOCK]; /* the one holding it exclusively */
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shm_node *nodes;

static struct shm_node *attach(const char *path)
{
    pthread_mutex_lock(&reg_mu);
    struct shm_node *n = nodes;
    while (n && strcmp(n->path, path) != 0)
        n = n->next;
    if (!n && (n = calloc(1, sizeof *n)) != NULL) {
        if (!(n->path = strdup(path))) {
            free(n);
            n = NULL;
        } else {
            pthread_mutex_init(&n->mu, NULL);
            n->next = nodes;
            nodes = n;
        }
    }
    if (n)
        n->links++;
    pthread_mutex_unlock(&reg_mu);
    return n;
}

int shm_map(struct shm_link *l, const char *path, int region, int size, int extend,
            void volatile **pp)
{
    *pp = NULL;
    if (region < 0 || size <= 0)
        return SQLITE_IOERR_SHMMAP;
    if (!l->node && !(l->node = attach(path)))
        return SQLITE_NOMEM;
    struct shm_node *n = l->node;
    int rc = SQLITE_OK;
    pthread_mutex_lock(&n->mu);
    if (n->size == 0)
        n->size = size;
    if (size != n->size) {
        rc = SQLITE_IOERR_SHMSIZE;
    } else if (region >= n->nregion && extend) {
        void **grown = realloc(n->region, (size_t)(region + 1) * sizeof *grown);
        if (grown) {
            n->region = grown;
            while (n->nregion <= region && (grown[n->nregion] = calloc(1, (size_t)size)))
                n->nregion++;
        }
        if (region >= n->nregion)
            rc = SQLITE_NOMEM;
    }
    if (rc == SQLITE_OK && region < n->nregion)
        *pp = n->region[region];
    pthread_mutex_unlock(&n->mu);
    return rc;
}

int shm_lock(struct shm_link *l, int offset, int n, int flags)
{
    struct shm_node *node = l->node;
    if (!node || offset < 0 || n < 1 || offset + n > SQLITE_SHM_NLOCK)
        return SQLITE_IOERR_SHMLOCK;
    unsigned mask = ((1u << n) - 1u) << offset;
    int rc = SQLITE_OK;
    pthread_mutex_lock(&node->mu);
    if (flags & SQLITE_SHM_UNLOCK) {
        for (int i = offset; i < offset + n; i++) {
            if (l->shared & (1u << i))
                node->shared[i]--;
            if (node->excl[i] == l)
                node->excl[i] = NULL;
        }
        l->shared &= ~mask;
    } else if (flags & SQLITE_SHM_SHARED) {
        for (int i = offset; i < offset + n; i++)
            if (node->excl[i] && node->excl[i] != l)
                rc = SQLITE_BUSY;
        for (int i = offset; rc == SQLITE_OK && i < offset + n; i++) {
            if (!(l->shared & (1u << i)))
                node->shared[i]++;
            l->shared |= 1u << i;
        }
    } else {
        for (int i = offset; i < offset + n; i++) {
            int own = (l->shared >> i) & 1u;
            if ((node->excl[i] && node->excl[i] != l) || node->shared[i] - own > 0)
                rc = SQLITE_BUSY;
        }
        for (int i = offset; rc == SQLITE_OK && i < offset + n; i++)
            node->excl[i] = l;
    }
    pthread_mutex_unlock(&node->mu);
    return rc;
}

void shm_barrier(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}

int shm_unmap(struct shm_link *l)
{
    struct shm_node *n = l->node;
    if (!n)
        return SQLITE_OK;
    shm_lock(l, 0, SQLITE_SHM_NLOCK, SQLITE_SHM_UNLOCK); /* whatever it still holds */
    l->node = NULL;
    pthread_mutex_lock(&reg_mu);
    int last = --n->links == 0;
    if (last)
        for (struct shm_node **pp = &nodes; *pp; pp = &(*pp)->next)
            if (*pp == n) {
                *pp = n->next;
                break;
            }
    pthread_mutex_unlock(&reg_mu);
    if (last) {
        for (int i = 0; i < n->nregion; i++)
            free(n->region[i]);
        free(n->region);
        pthread_mutex_destroy(&n->mu);
        free(n->path);
        free(n);
    }
    return SQLITE_OK;
}

#ifdef ATREST_BENCH_PLAINTEXT
#include "crypto/aead.h"
#include "storage/page.h"
#include "storage/pagecache.h"

/* ---- the benchmark twin's VFS: unix, with this WAL index -----------------
 *
 * The unix VFS opens the file itself, into the start of the space SQLite
 * gives; a struct pextra follows it. Its main files get a copy of unix's
 * own io_methods with the shm methods (and xClose, to detach) replaced;
 * WAL and journal files (unix's methods without locks) keep theirs. */

struct pextra {
    struct shm_link shm;
    const char *path; /* main files: the database path (SQLite keeps the
                         name valid until xClose) */
    uint64_t cache_file; /* main files: the page cache's name for the file */
};

static sqlite3_vfs *unix_vfs;
static size_t extra_at; /* unix's file size, rounded up for struct pextra */
static pthread_mutex_t pm_mu = PTHREAD_MUTEX_INITIALIZER;
static const sqlite3_io_methods *unix_methods; /* set by the first open */
static sqlite3_io_methods pm;

static struct pextra *extra(sqlite3_file *pf)
{
    return (struct pextra *)((char *)pf + extra_at);
}

static int p_close(sqlite3_file *pf)
{
    shm_unmap(&extra(pf)->shm);
    return unix_methods->xClose(pf);
}
/* The page cache as vfs.c uses it (its invariant 10), minus the crypto:
 * the twin pays what atrest pays but for the encryption. */
static int p_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
    struct pextra *x = extra(pf);
    if (amt != PAGE_SIZE || off % PAGE_SIZE)
        return unix_methods->xRead(pf, buf, amt, off);
    uint64_t epoch = aead_kept_epoch();
    uint32_t pgno = (uint32_t)(off / PAGE_SIZE + 1);
    if (pagecache_get(x->cache_file, pgno, epoch, buf))
        return SQLITE_OK;
    int rc = unix_methods->xRead(pf, buf, amt, off);
    if (rc == SQLITE_OK)
        pagecache_put(x->cache_file, pgno, epoch, buf);
    return rc;
}
static int p_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
    int rc = unix_methods->xWrite(pf, buf, amt, off);
    for (sqlite3_int64 o = off / PAGE_SIZE * PAGE_SIZE; o < off + amt; o += PAGE_SIZE)
        pagecache_drop(extra(pf)->cache_file, (uint32_t)(o / PAGE_SIZE + 1));
    return rc;
}
static int p_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    int rc = unix_methods->xTruncate(pf, size);
    pagecache_drop_from(extra(pf)->cache_file, (uint32_t)(size / PAGE_SIZE + 1));
    return rc;
}
static int p_shm_map(sqlite3_file *pf, int pg, int sz, int extend, void volatile **pp)
{
    struct pextra *x = extra(pf);
    return x->path ? shm_map(&x->shm, x->path, pg, sz, extend, pp) : SQLITE_IOERR_SHMMAP;
}
static int p_shm_lock(sqlite3_file *pf, int offset, int n, int flags)
{
    return shm_lock(&extra(pf)->shm, offset, n, flags);
}
static void p_shm_barrier(sqlite3_file *pf)
{
    (void)pf;
    shm_barrier();
}
static int p_shm_unmap(sqlite3_file *pf, int del)
{
    (void)del;
    return shm_unmap(&extra(pf)->shm);
}

static int p_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags, int *out_flags)
{
    (void)vfs;
    struct pextra *x = extra(pf);
    memset(x, 0, sizeof *x);
    if (flags & SQLITE_OPEN_MAIN_DB) {
        x->path = name;
        x->cache_file = 1469598103934665603ULL; /* FNV-1a of the path */
        for (const char *c = name; c && *c; c++)
            x->cache_file = (x->cache_file ^ (unsigned char)*c) * 1099511628211ULL;
    }
    int rc = unix_vfs->xOpen(unix_vfs, name, pf, flags, out_flags);
    if (rc != SQLITE_OK || !pf->pMethods || !x->path)
        return rc; /* SQLite maps the WAL index only through main files */
    pthread_mutex_lock(&pm_mu);
    if (!unix_methods) {
        unix_methods = pf->pMethods;
        pm = *unix_methods;
        pm.xClose = p_close;
        pm.xRead = p_read;
        pm.xWrite = p_write;
        pm.xTruncate = p_truncate;
        pm.xShmMap = p_shm_map;
        pm.xShmLock = p_shm_lock;
        pm.xShmBarrier = p_shm_barrier;
        pm.xShmUnmap = p_shm_unmap;
    }
    int same = pf->pMethods == unix_methods;
    pthread_mutex_unlock(&pm_mu);
    if (!same) { /* every main file of the unix VFS has one set of methods */
        pf->pMethods->xClose(pf);
        pf->pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    pf->pMethods = &pm;
    return SQLITE_OK;
}

static sqlite3_vfs plain;
static pthread_once_t plain_once = PTHREAD_ONCE_INIT;
static int plain_rc = SQLITE_ERROR;

static void plain_register(void)
{
    unix_vfs = sqlite3_vfs_find("unix");
    if (!unix_vfs)
        return;
    size_t align = _Alignof(struct pextra);
    extra_at = ((size_t)unix_vfs->szOsFile + align - 1) / align * align;
    plain = *unix_vfs; /* every VFS method but xOpen is unix's own */
    plain.pNext = NULL;
    plain.zName = SHM_PLAIN_VFS;
    plain.szOsFile = (int)(extra_at + sizeof(struct pextra));
    plain.xOpen = p_open;
    plain_rc = sqlite3_vfs_register(&plain, 0);
}

int shm_plain_vfs_register(void)
{
    pthread_once(&plain_once, plain_register);
    return plain_rc;
}
#endif
