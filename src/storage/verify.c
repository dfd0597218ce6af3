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

static int verify_main(struct keyring *kr, const uint8_t *id, int layers, const char *path,
                       struct verify_report *r, verify_fail_fn on_fail, void *ctx)
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
        if (read_full(fd, page, PAGE_SIZE, off) != 0 ||
            (!(pgno == PAGE_LOCK_BYTE_PGNO && page_all_zero(page, PAGE_SIZE)) &&
             page_open(kr, id, layers, pgno, page) != 0)) {
            r->pages_failed++;
            if (on_fail)
                on_fail(ctx, path, (uint64_t)off, pgno);
        }
    }
    secmem_wipe(page, sizeof page);
    close(fd);
    return rc;
}

static int verify_wal(struct keyring *kr, const uint8_t *id, int layers, const char *path,
                      struct verify_report *r, verify_fail_fn on_fail, void *ctx)
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
            page_open(kr, id, layers, pgno, frame + FRAME_HDR) == 0)
            continue;
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
    int rc = verify_main(kr, id, layers, path, r, on_fail, ctx);
    if (rc)
        return rc;
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    return verify_wal(kr, id, layers, wal, r, on_fail, ctx);
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
