/* verify.c — offline/online page authentication scan (see verify.h). */
#include "storage/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "storage/freelist.h"
#include "storage/page.h"
#include "storage/store.h"

static int read_full(int fd, uint8_t *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            return EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Main-file pages of zeros (page.h, "Unwritten pages"), to be told apart
 * from a page zeroed by damage once the WAL has been read. */
struct zeros {
    struct zero {
        uint32_t pgno;
        int ok; /* explained: a free-list leaf, past the end, or in the WAL */
    } * z;
    size_t n, cap;
};

static int zeros_add(struct zeros *z, uint32_t pgno)
{
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 16;
        struct zero *p = realloc(z->z, cap * sizeof *p);
        if (!p)
            return AT_ENOMEM;
        z->z = p;
        z->cap = cap;
    }
    z->z[z->n++] = (struct zero){pgno, 0};
    return 0;
}

/* Mark pgno explained if it is one of z's (they are in ascending order). */
static void zeros_explain(struct zeros *z, uint32_t pgno)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->z[mid].pgno < pgno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < z->n && z->z[lo].pgno == pgno)
        z->z[lo].ok = 1;
}

static int open_page(int fd, struct keyring *kr, const uint8_t *id, int layers, uint32_t pgno,
                     uint8_t *page)
{
    return read_full(fd, page, PAGE_SIZE, (off_t)(pgno - 1) * PAGE_SIZE) != 0 ||
           page_open(kr, id, layers, pgno, page) != 0;
}

/* The free list's pages, authenticated, one at a time in one buffer. */
struct trunks {
    int fd, layers;
    struct keyring *kr;
    const uint8_t *id;
    uint8_t *page;
    struct zeros *z;
};

static const uint8_t *trunk_page(void *arg, uint32_t pgno)
{
    struct trunks *t = arg;
    return open_page(t->fd, t->kr, t->id, t->layers, pgno, t->page) == 0 ? t->page : NULL;
}

static void trunk_leaf(void *arg, uint32_t pgno)
{
    zeros_explain(((struct trunks *)arg)->z, pgno);
}

/* Explain the zero pages the main file's own state accounts for: pages past
 * the database's size in page 1, and leaves of its free list (read from
 * authenticated pages only; a list that does not open explains nothing). */
static void zeros_explain_main(struct zeros *z, int fd, struct keyring *kr, const uint8_t *id,
                               int layers, uint64_t npages, uint8_t *page)
{
    if (open_page(fd, kr, id, layers, 1, page) != 0)
        return;
    uint32_t size = page_get32(page + 28);
    if (page_get32(page + 24) == page_get32(page + 92)) /* the size is valid */
        for (size_t i = 0; i < z->n; i++)
            z->z[i].ok |= z->z[i].pgno > size;
    struct trunks t = {fd, layers, kr, id, page, z};
    freelist_walk(page, PAGE_SIZE - PAGE_RESERVED((size_t)layers), npages, trunk_page, trunk_leaf,
                  &t);
}

static int verify_main(struct keyring *kr, const uint8_t *id, int layers, const char *path,
                       struct verify_report *r, struct zeros *z, verify_fail_fn on_fail, void *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return at_error_set(errno, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int rc = fstat(fd, &sb) == 0 ? 0 : errno;
    uint8_t page[PAGE_SIZE];
    uint64_t npages = rc ? 0 : ((uint64_t)sb.st_size + PAGE_SIZE - 1) / PAGE_SIZE;
    r->files++;
    for (uint64_t i = 0; i < npages && !rc; i++) {
        off_t off = (off_t)(i * PAGE_SIZE);
        uint32_t pgno = (uint32_t)i + 1;
        r->pages_checked++;
        int bad = read_full(fd, page, PAGE_SIZE, off) != 0;
        if (!bad && page_all_zero(page, PAGE_SIZE)) {
            if (pgno != PAGE_LOCK_BYTE_PGNO)
                rc = zeros_add(z, pgno);
        } else if (bad || page_open(kr, id, layers, pgno, page) != 0) {
            r->pages_failed++;
            if (on_fail)
                on_fail(ctx, path, (uint64_t)off, pgno);
        }
    }
    if (!rc && z->n)
        zeros_explain_main(z, fd, kr, id, layers, npages, page);
    secmem_wipe(page, sizeof page);
    close(fd);
    return rc;
}

static int verify_wal(struct keyring *kr, const uint8_t *id, int layers, const char *path,
                      struct verify_report *r, struct zeros *z, verify_fail_fn on_fail, void *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0
                               : at_error_set(errno, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    r->files++;
    uint64_t nframes = sb.st_size < WAL_HDR ? 0 : ((uint64_t)sb.st_size - WAL_HDR) / FRAME_SIZE;
    uint8_t *frame = malloc(FRAME_SIZE);
    uint8_t *hdrs = malloc(nframes * FRAME_HDR + 1);
    if (!frame || !hdrs) {
        free(frame);
        free(hdrs);
        close(fd);
        return AT_ENOMEM;
    }
    /* The WAL header's salts name the current generation of frames. */
    uint8_t whdr[WAL_HDR];
    if (read_full(fd, whdr, WAL_HDR, 0) != 0)
        memset(whdr, 0, sizeof whdr);
    /* Frame headers first: the torn-tail rule looks ahead. */
    for (uint64_t k = 0; k < nframes; k++)
        if (read_full(fd, hdrs + k * FRAME_HDR, FRAME_HDR, (off_t)(WAL_HDR + k * FRAME_SIZE)))
            memset(hdrs + k * FRAME_HDR, 0, FRAME_HDR);
    for (uint64_t k = 0; k < nframes; k++) {
        off_t off = (off_t)(WAL_HDR + k * FRAME_SIZE);
        r->pages_checked++;
        r->wal_frames++;
        uint32_t pgno = page_get32(hdrs + k * FRAME_HDR);
        if (read_full(fd, frame, FRAME_SIZE, off) == 0 &&
            page_open(kr, id, layers, pgno, frame + FRAME_HDR) == 0) {
            if (memcmp(hdrs + k * FRAME_HDR + 8, whdr + 16, 8) == 0)
                zeros_explain(z, pgno); /* the page's content is in the WAL */
            continue;
        }
        /* vfs.c invariant 4: commit frames at or after k, k included. */
        int commits = page_get32(hdrs + k * FRAME_HDR + 4) != 0;
        const uint8_t *salts = hdrs + k * FRAME_HDR + 8;
        for (uint64_t j = k + 1; j < nframes && commits < 2; j++) {
            const uint8_t *h = hdrs + j * FRAME_HDR;
            if (memcmp(h + 8, salts, 8) == 0 && page_get32(h + 4) != 0)
                commits++;
        }
        if (commits < 2) {
            r->wal_tail_frames++;
        } else {
            r->pages_failed++;
            if (on_fail)
                on_fail(ctx, path, (uint64_t)off + FRAME_HDR, pgno);
        }
    }
    secmem_wipe(frame, FRAME_SIZE);
    free(frame);
    free(hdrs);
    close(fd);
    return 0;
}

int verify_store_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], const char *path,
                      struct verify_report *r, verify_fail_fn on_fail, void *ctx)
{
    int layers = keyring_layers(kr);
    struct zeros z = {0};
    int rc = verify_main(kr, id, layers, path, r, &z, on_fail, ctx);
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (!rc)
        rc = verify_wal(kr, id, layers, wal, r, &z, on_fail, ctx);
    for (size_t i = 0; !rc && i < z.n; i++) {
        if (z.z[i].ok) {
            r->unwritten_pages++;
        } else { /* zeros where a live page should be: damage */
            r->pages_failed++;
            if (on_fail)
                on_fail(ctx, path, (uint64_t)(z.z[i].pgno - 1) * PAGE_SIZE, z.z[i].pgno);
        }
    }
    free(z.z);
    return rc;
}

int verify_data_dir(struct keyring *kr, const char *data_dir, struct verify_report *r,
                    verify_fail_fn on_fail, void *ctx)
{
    enum { MAX_FILES = 65536 };
    char(*names)[KEYRING_NAME_MAX] = calloc(MAX_FILES, KEYRING_NAME_MAX);
    uint8_t(*ids)[KEYRING_FILE_ID_LEN] = calloc(MAX_FILES, KEYRING_FILE_ID_LEN);
    size_t n = 0;
    int rc = names && ids ? keyring_list_files(kr, names, ids, MAX_FILES, &n) : AT_ENOMEM;
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[PATH_MAX];
        store_file_path(data_dir, ids[i], path, sizeof path);
        if (access(path, F_OK) != 0) {
            r->missing_files++;
            continue;
        }
        rc = verify_store_file(kr, ids[i], path, r, on_fail, ctx);
    }
    free(names);
    free(ids);
    return rc;
}
