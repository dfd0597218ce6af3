/*
 * freelist.h — SQLite's free list, read from a database's pages.
 *
 * Page 1's header holds the first trunk page (offset 32); a trunk holds the
 * next trunk (offset 0), its number of leaves (offset 4) and the leaves'
 * page numbers (from offset 8). Used to tell an unwritten page (page.h)
 * from a page in use: by verify.c on a store file and by the backup's
 * snapshot on its plaintext copy.
 */
#ifndef ATREST_STORAGE_FREELIST_H
#define ATREST_STORAGE_FREELIST_H

#include <stddef.h>
#include <stdint.h>

/* The plaintext of page pgno, or NULL (the walk ends there). The pointer
 * is used until the next call. */
typedef const uint8_t *(*freelist_page_fn)(void *arg, uint32_t pgno);
typedef void (*freelist_leaf_fn)(void *arg, uint32_t pgno);

/* leaf(arg, n) for each leaf of the free list whose page 1 is page1 (read
 * before the first get), pages of usable bytes (page size less reserved
 * bytes), in a file of npages pages: trunks past npages end the walk, as
 * does a chain of more than npages trunks (a cycle). */
void freelist_walk(const uint8_t *page1, size_t usable, uint64_t npages, freelist_page_fn get,
                   freelist_leaf_fn leaf, void *arg);

#endif
