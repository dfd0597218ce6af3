/*
 * backupint.h — the backup layer's own structs: the manifest and store-blob
 * formats (format.c, tables in docs/backup.md), key derivation, chunk
 * sealing, and consistent page snapshots (snap.c). Not for other layers.
 *
 * Manifest (big-endian; fixed-size records, so a reader bounds-checks the
 * length once):
 *
 *   offset  size        field
 *   0       8           magic "ATRBKM01"
 *   8       4           manifest length L, MAC included
 *   12      4           format version (1)
 *   16      32          backup id, ASCII, NUL-padded
 *   48      8           created, unix seconds (signed)
 *   56      32          server version, ASCII, NUL-padded
 *   88      4           chunk size (plaintext bytes per chunk)
 *   92      4           page size (4096)
 *   96      4           key layers K (1 or 2: one DEK share per layer)
 *   100     4           store count N
 *   104     774 * K     key shares: provider key id (256, NUL-padded) |
 *                       KEK version (4) | wrapped length (2) | wrapped
 *                       share (512, zero-padded)
 *   …       120 * N     stores, in restore order: name (64, NUL-padded) |
 *                       plaintext length (8) | blob length (8) | pages (4)
 *                       | chunks (4) | SHA-256 of the store blob (32)
 *   L-32    32          HMAC-SHA256 under the manifest key of bytes [0, L-32)
 *
 * Store blob <id>/s<NNN>:
 *
 *   0       8           magic "ATRBKS01"
 *   8       4           chunk size
 *   12      4           chunk count C
 *   16      8           plaintext length P
 *   24      4           store index (its place in the manifest)
 *   28      4           reserved (0)
 *   32      …           C records: ciphertext (chunk size, the last one
 *                       P - (C-1) * chunk size) | GCM tag (16)
 *
 * Chunk nonce: store index (4) | chunk index (8) — unique under a key that
 * is fresh for every backup. Associated data (BK_AAD_LEN bytes):
 *   "ATRBKC01" | backup id (32) | store name (64) | chunk index (4) |
 *   last chunk flag (1) | plaintext length P (8)
 */
#ifndef ATREST_BACKUP_BACKUPINT_H
#define ATREST_BACKUP_BACKUPINT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/backup.h"
#include "crypto/aead.h"
#include "storage/page.h"

#define BK_MAGIC_MANIFEST "ATRBKM01"
#define BK_MAGIC_STORE    "ATRBKS01"
#define BK_FORMAT         1
#define BK_HDR            104
#define BK_SHARE_REC      (KP_KEY_ID_MAX + 4 + 2 + KP_WRAPPED_MAX)
#define BK_STORE_REC      120
#define BK_MAC_LEN        32
#define BK_MANIFEST_MAX   (BK_HDR + 2 * BK_SHARE_REC + BACKUP_MAX_STORES * BK_STORE_REC + BK_MAC_LEN)
#define BK_STORE_HDR      32
#define BK_AAD_LEN        (8 + 32 + 64 + 4 + 1 + 8)
#define BK_NAME_LEN       64
#define BK_SHARE_LEN      32

struct bk_share {
    char key_id[KP_KEY_ID_MAX];
    struct kp_wrapped w; /* w.kek_version: the KEK version that wrapped it */
};

struct bk_store {
    char name[BK_NAME_LEN];
    uint64_t plain_len, blob_len;
    uint32_t pages, chunks;
    uint8_t sha256[32];
};

struct bk_manifest {
    char id[BACKUP_ID_LEN];
    int64_t created;
    char version[32];
    uint32_t chunk_size, page_size, layers, nstores;
    struct bk_share share[2];
    struct bk_store *stores; /* malloc'd, nstores */
};

/* Keys derived from the backup DEK; live in secmem. */
struct bk_keys {
    uint8_t data[AEAD_KEY_LEN]; /* chunk sealing */
    uint8_t mac[32];            /* manifest HMAC */
};

/* format.c */
int bk_derive(const uint8_t *ikm, size_t n, const char *id, struct bk_keys *out) AT_WUR;
int bk_manifest_encode(const struct bk_manifest *m, const struct bk_keys *k, uint8_t **out,
                       size_t *len) AT_WUR;
/* Parse without trusting: bounds and formats only (the MAC is not checked). */
int bk_manifest_decode(const uint8_t *buf, size_t len, struct bk_manifest *m) AT_WUR;
/* 0 when the manifest's MAC is right under k, else AT_EINTEGRITY. */
int bk_manifest_check(const uint8_t *buf, size_t len, const struct bk_keys *k) AT_WUR;
void bk_manifest_free(struct bk_manifest *m);
void bk_store_blob_name(const char *id, uint32_t idx, char *out, size_t n);
void bk_store_hdr(uint8_t hdr[BK_STORE_HDR], uint32_t chunk_size, uint32_t chunks,
                  uint64_t plain_len, uint32_t idx);
int bk_chunk_seal(const struct bk_keys *k, const char *id, const char *store, uint32_t store_idx,
                  uint32_t chunk, int last, uint64_t plain_len, const uint8_t *in, size_t len,
                  uint8_t *out, uint8_t tag[AEAD_TAG_LEN]) AT_WUR;
int bk_chunk_open(const struct bk_keys *k, const char *id, const char *store, uint32_t store_idx,
                  uint32_t chunk, int last, uint64_t plain_len, const uint8_t *in, size_t len,
                  uint8_t *out, const uint8_t tag[AEAD_TAG_LEN]) AT_WUR;
/* Unwrap the manifest's shares with keys and derive; *out is secmem. */
int bk_unwrap(const struct bk_manifest *m, const struct backup_keys *keys, struct bk_keys **out) AT_WUR;
void bk_keys_free(struct bk_keys *k);

/* Wrap fresh shares (one per key layer) into m->share and derive k from
 * them with id as salt (backup.c). */
int bk_make_shares(const struct backup_keys *keys, const char *id, struct bk_manifest *m,
                   struct bk_keys *k) AT_WUR;
/* Get, parse and (with keys) authenticate the manifest-format blob name,
 * which must carry id (backup.c). */
int bk_load_manifest(struct blob_store *bs, const struct backup_keys *keys, const char *name,
                     const char *id, struct bk_manifest *m, struct bk_keys **kout) AT_WUR;
/* Stream store idx of backup m (keys k) through page_fn: header checked
 * against the manifest, chunks opened as they complete, count, length and
 * SHA-256 compared at the end (backup.c). */
typedef int (*bk_page_fn)(void *ctx, uint8_t *page);
int bk_read_store(struct blob_store *bs, const struct bk_manifest *m, const struct bk_keys *k,
                  uint32_t idx, bk_page_fn fn, void *fn_ctx, uint64_t done_before, uint64_t total,
                  const char *phase, backup_progress_fn progress, void *pctx) AT_WUR;
/* A bk_page_fn for store_import_page (ctx: the struct store_import). */
int bk_import_page(void *ctx, uint8_t *page) AT_WUR;
/* 0 when env holds no store (a restore makes a new account), else
 * AT_EEXIST with a detail. */
int bk_check_empty(struct store_env *env) AT_WUR;
/* Delete backup id: manifest first, then every other blob under it. */
int bk_delete_backup(struct blob_store *bs, const char *id) AT_WUR;
/* Names of the blobs under prefix, in name order (out->v malloc'd); with
 * backups_only, those of backups (not of the continuous log). */
struct bk_names {
    char (*v)[BLOB_NAME_MAX + 1];
    size_t n, cap;
    int backups_only;
};
int bk_list_names(struct blob_store *bs, const char *prefix, int backups_only,
                  struct bk_names *out) AT_WUR;

/* A new backup or epoch id (time-sorted). */
int bk_new_id(char id[BACKUP_ID_LEN]) AT_WUR;
/* Put len bytes from memory as blob name. */
int bk_put_mem(struct blob_store *bs, const char *name, const uint8_t *buf, size_t len) AT_WUR;
/* Every blob's bytes into memory (malloc'd), at most max bytes. */
int bk_get_all(struct blob_store *bs, const char *name, size_t max, uint8_t **out,
               size_t *len) AT_WUR;

/* ---- continuous mode (format.c; tables in docs/backup.md) ----------------
 *
 * Log segment cont/<epoch>/<segno, 12 digits>:
 *
 *   0     8    magic "ATRCSG01"
 *   8     32   epoch id, NUL-padded
 *   40    8    segment number (from 0 in each epoch)
 *   48    16   GCM tag of segment number - 1 (zeros for segment 0)
 *   64    8    first commit time (unix microseconds)
 *   72    8    last commit time
 *   80    4    record count
 *   84    4    reserved (0)
 *   88    8    covered-until time (µs): every commit of the epoch up to it
 *              is in this segment or an earlier one
 *   96    8    body length B
 *   104   B    body, AES-256-GCM under the epoch's data key; nonce
 *              0xffffffff | segment number; associated data bytes [0, 104)
 *   104+B 16   GCM tag
 *
 * Body: records, one per captured commit of one store:
 *   store name (64) | commit sequence (8, from 1 per store and epoch) |
 *   commit time (8, µs) | database size in pages after it (4) | frames F
 *   (4) | F frames
 * Frame: page number (4) | zero run start Z (2) | zero run length N (2) |
 *   the plaintext page without bytes [Z, Z+N) (4096 - N bytes); those are
 *   zero (a page's free space: SQLite zeroes freed bytes)
 *
 * Log head cont/<epoch>/head (rewritten after every upload):
 *   "ATRCHD01" | epoch (32) | segments uploaded N (8) | tag of segment N-1
 *   (16) | covered-until time (8, µs: every commit up to it is in segments
 *   < N) | closed (4: the server stopped cleanly) | reserved (4) |
 *   HMAC-SHA256 (32) under the epoch's manifest key
 *
 * Epoch key cont/<epoch>/key: a backup manifest with no stores, id = the
 * epoch: the wrapped shares of the epoch's DEK, authenticated.
 *
 * Base position <backup id>/position (a base backup in continuous mode,
 * put before its manifest):
 *   "ATRCPS01" | backup id (32) | epoch (32) | first segment (8) | snapshot
 *   time (8, µs) | store count N (4) | reserved (4) | N × (store name (64) |
 *   commits in its snapshot (8)) | HMAC-SHA256 (32) under the backup's
 *   manifest key
 */
#define CS_MAGIC_SEG  "ATRCSG01"
#define CS_MAGIC_HEAD "ATRCHD01"
#define CS_MAGIC_POS  "ATRCPS01"
#define CS_SEG_HDR    104
#define CS_REC_HDR    88
#define CS_FRAME_HDR  8
#define CS_FRAME_MAX  (CS_FRAME_HDR + PAGE_SIZE)
#define CS_HEAD_LEN   112
#define CS_POS_HDR    96
#define CS_POS_REC    72

struct cs_seg_hdr {
    char epoch[BACKUP_ID_LEN];
    uint64_t segno;
    uint8_t prev_tag[AEAD_TAG_LEN];
    int64_t first_us, last_us, covered_us;
    uint32_t nrec;
    uint64_t body_len;
};

struct cs_rec {
    char name[BK_NAME_LEN];
    uint64_t seq;
    int64_t time_us;
    uint32_t db_pages, nframes;
};

struct cs_head {
    char epoch[BACKUP_ID_LEN];
    uint64_t nsegs;
    uint8_t last_tag[AEAD_TAG_LEN];
    int64_t covered_us;
    uint32_t closed;
};

struct cs_position {
    char id[BACKUP_ID_LEN];
    char epoch[BACKUP_ID_LEN];
    uint64_t first_seg;
    int64_t t_end_us;
    uint32_t nstores;
    struct backup_chain_store *stores; /* malloc'd */
};

void cs_seg_hdr_encode(const struct cs_seg_hdr *h, uint8_t out[CS_SEG_HDR]);
/* Parse a whole segment blob's header (len: the blob's length). */
int cs_seg_hdr_decode(const uint8_t *blob, size_t len, struct cs_seg_hdr *h) AT_WUR;
/* blob: header (encoded), then body_len plaintext bytes, then room for the
 * tag; encrypts the body in place and appends the tag. */
int cs_seg_seal(const struct bk_keys *k, uint8_t *blob, size_t body_len) AT_WUR;
/* Authenticate and decrypt a whole segment blob's body into body
 * (len - CS_SEG_HDR - AEAD_TAG_LEN bytes); AT_EINTEGRITY, body wiped. */
int cs_seg_open(const struct bk_keys *k, const uint8_t *blob, size_t len, uint8_t *body) AT_WUR;
void cs_rec_encode(const struct cs_rec *r, uint8_t out[CS_REC_HDR]);
/* f + CS_FRAME_HDR holds a plaintext page: drop its longest zero run in
 * place, fill the frame header; returns the frame's length. */
size_t cs_frame_pack(uint8_t *f, uint32_t pgno);
/* The frame at b + off (b holds len bytes): its page number and where the
 * next one starts; AT_EINTEGRITY when it does not fit. */
int cs_frame_next(const uint8_t *b, size_t len, size_t off, uint32_t *pgno, size_t *next) AT_WUR;
/* The page of a frame that cs_frame_next accepted. */
void cs_frame_unpack(const uint8_t *f, uint8_t page[PAGE_SIZE]);
int cs_rec_decode(const uint8_t *p, size_t left, struct cs_rec *r) AT_WUR;
int cs_head_encode(const struct cs_head *h, const struct bk_keys *k, uint8_t out[CS_HEAD_LEN]) AT_WUR;
int cs_head_decode(const uint8_t *b, size_t len, const struct bk_keys *k, struct cs_head *h) AT_WUR;
int cs_position_encode(const struct cs_position *p, const struct bk_keys *k, uint8_t **out,
                       size_t *len) AT_WUR;
int cs_position_decode(const uint8_t *b, size_t len, const struct bk_keys *k,
                       struct cs_position *p) AT_WUR;
void cs_seg_name(const char *epoch, uint64_t segno, char *out, size_t n);

/* snap.c: memory that never reaches a core dump, wiped when released. */
struct bk_mem {
    uint8_t *p;
    size_t len, cap;
    uint8_t hdr_ver[2]; /* bk_image_open: the header's version bytes */
};
int bk_mem_reserve(struct bk_mem *m, size_t cap) AT_WUR;
void bk_mem_free(struct bk_mem *m);
/* Copy every page of src's main database, as of src's open read
 * transaction, into out (plaintext). */
int bk_snapshot(sqlite3 *src, struct bk_mem *out) AT_WUR;
/* Open a snapshot in memory as a database to change it before it is
 * sealed (still memory only: no journal, no other file). The image says
 * WAL mode (its store's); while open it says rollback (the capture VFS has
 * no WAL), and bk_image_close puts the bytes back. */
int bk_image_open(struct bk_mem *m, sqlite3 **db) AT_WUR;
void bk_image_close(struct bk_mem *m, sqlite3 *db);

#endif
