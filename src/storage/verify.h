/*
 * verify.h — authenticate every page of every store file of a data folder
 * without SQLite: the main files page by page and every WAL frame. Reads
 * only; safe to run while atrestd serves the folder.
 *
 * A WAL frame that fails authentication counts as failed unless the
 * torn-tail rule of vfs.c (invariant 4) says it may be a torn write: then
 * it counts as a tail frame, which recovery discards and which is no data.
 *
 * A main-file page of zeros is no sealed page (page.h, "Unwritten pages").
 * It counts as unwritten when the store accounts for it: a leaf of the free
 * list in the main file, past the database's size, or a page with a frame
 * in the WAL (its content is there); otherwise it is damage and fails.
 */
#ifndef ATREST_STORAGE_VERIFY_H
#define ATREST_STORAGE_VERIFY_H

#include <stdint.h>

#include "common/error.h"
#include "keys/keyring.h"

struct verify_report {
    uint64_t files;           /* store files examined (main + WAL) */
    uint64_t pages_checked;   /* main-file pages and WAL frames examined */
    uint64_t pages_failed;    /* of those, failed authentication */
    uint64_t wal_frames;      /* WAL frames among pages_checked */
    uint64_t wal_tail_frames; /* failed frames that may be a torn tail */
    uint64_t missing_files;   /* keyring entries whose main file is absent */
    uint64_t unwritten_pages; /* main-file pages of zeros the store accounts for */
};

/* Called for each failed page: file path, byte offset, page number. */
typedef void (*verify_fail_fn)(void *ctx, const char *path, uint64_t offset, uint32_t pgno);

/* Verify all stores of data_dir listed in kr. Returns 0 when it could run
 * (the verdict is in the report), or an error that stopped it. */
int verify_data_dir(struct keyring *kr, const char *data_dir, struct verify_report *report,
                    verify_fail_fn on_fail, void *ctx) AT_WUR;

/* Verify one store file (and its -wal if present). */
int verify_store_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], const char *path,
                      struct verify_report *report, verify_fail_fn on_fail, void *ctx) AT_WUR;

#endif
