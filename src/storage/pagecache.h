/*
 * pagecache.h — decrypted main-file pages, shared by every connection.
 *
 * SQLite's own page cache belongs to one connection, and in WAL mode a
 * connection empties it whenever any other connection has committed since
 * its last transaction: with writes going on, a read of a page that is not
 * in the WAL is a pread and a decryption nearly every time. This cache sits
 * below SQLite, in the VFS (vfs.c invariant 10), holds authenticated
 * plaintext pages by (file, page number) for the whole process, and stays
 * valid across commits page by page: a main-file page changes only when a
 * checkpoint writes it, and the VFS drops it then.
 *
 * Invariants:
 *   1. An entry is a page as it was authenticated and decrypted from the
 *      file, never anything else: pagecache_put is called only with such.
 *   2. Entries are dropped, and their bytes wiped, by pagecache_drop (a
 *      write of the page), pagecache_drop_from (a truncate),
 *      pagecache_drop_file (the file's end) and by any key wipe: every
 *      pagecache call passes the aead_kept_epoch() its caller read before
 *      it read the page, and a newer epoch than the cache's empties the
 *      whole cache before anything else; a put with an older epoch than the
 *      cache's is not kept. So a page decrypted under a key is never served
 *      after that key, or any other, left memory.
 *   3. The cache never holds more than its budget (pagecache_configure) of
 *      page buffers; RSS grows with what is read, up to the budget.
 *
 * Thread-safe: 16 shards, each under its own mutex.
 */
#ifndef ATREST_STORAGE_PAGECACHE_H
#define ATREST_STORAGE_PAGECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The default budget (atrestd --page-cache-mb). */
#define PAGECACHE_DEFAULT_MB 256

/* Set the budget in bytes (0: no cache) and empty the cache. Call before
 * stores are opened; also safe later. AT_ENOMEM leaves no cache. */
int pagecache_configure(size_t bytes) AT_WUR;

/* Copy page pgno of file into dst (PAGE_SIZE bytes): 1, or 0 if absent. */
int pagecache_get(uint64_t file, uint32_t pgno, uint64_t epoch, uint8_t *dst);

/* Keep a copy of src (PAGE_SIZE bytes) as page pgno of file. */
void pagecache_put(uint64_t file, uint32_t pgno, uint64_t epoch, const uint8_t *src);

/* Forget page pgno of file; pages >= first_pgno; every page of file. */
void pagecache_drop(uint64_t file, uint32_t pgno);
void pagecache_drop_from(uint64_t file, uint32_t first_pgno);
void pagecache_drop_file(uint64_t file);

/* Forget every page now (a key layer was dropped: its plaintext goes too,
 * not only at the next call, as invariant 2 would have it). */
void pagecache_clear(void);

struct pagecache_stats {
    size_t budget_pages; /* the most pages held */
    size_t pages;        /* pages held now */
    uint64_t hits, misses;
};

void pagecache_stats_get(struct pagecache_stats *out);

#endif
