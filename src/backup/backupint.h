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

/* snap.c: memory that never reaches a core dump, wiped when released. */
struct bk_mem {
    uint8_t *p;
    size_t len, cap;
};
int bk_mem_reserve(struct bk_mem *m, size_t cap) AT_WUR;
void bk_mem_free(struct bk_mem *m);
/* Copy every page of src's main database, as of src's open read
 * transaction, into out (plaintext). */
int bk_snapshot(sqlite3 *src, struct bk_mem *out) AT_WUR;

#endif
