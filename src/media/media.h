/*
 * media.h — sealed media: the bytes of a Cosmos attachment, encrypted in
 * chunks under a DEK of their own and streamed into and out of a blob store
 * (docs/attachments.md).
 *
 * A sealed media blob (big-endian):
 *
 *   offset  size        field
 *   0       8           magic "ATRMED01"
 *   8       4           chunk size S (plaintext bytes per chunk; 64 KiB)
 *   12      4           reserved (0)
 *   16      …           C records: ciphertext (S bytes; the last one 1..S,
 *                       or 0 for an empty media) | GCM tag (16)
 *
 * The plaintext length P is not in the blob: it lives in the attachment's
 * row in the container's encrypted store, next to the wrapped DEK, and the
 * reader is told it. C = max(1, ceil(P / S)).
 *
 * Chunk i is AES-256-GCM under the media DEK with
 *   nonce            i (8) | 0 (4)    unique: every blob has a fresh DEK
 *   associated data  "ATRMDC01" (8) | blob name (64, NUL-padded) |
 *                    S (4) | i (8) | last-chunk flag (1)
 * so a chunk cannot move to another index or another blob, and a blob cut
 * after any chunk is caught (the last chunk is marked; the reader also
 * knows C from P).
 *
 * Keys: media DEKs live with the keys of the container the media belongs
 * to. For every key layer (the account's service key always, the customer
 * key too when the account has one) the container's store has a DEK in the
 * keyring, wrapped by that layer's key provider. A media blob gets one
 * random 32-byte share per layer, each wrapped (AES key wrap, RFC 5649)
 * under a key derived from that layer's current container DEK:
 *   KEK_l = HKDF-SHA256(container DEK_l version v, salt = blob name,
 *                       info = "atrest media kek v1")
 *   DEK   = HKDF-SHA256(share_0 [|| share_1], salt = blob name,
 *                       info = "atrest media v1")
 * The wrapped shares with their DEK versions ("wrapped DEK") are kept by
 * the caller in the container's store. So: a KEK or customer-key rotation
 * (which rewraps keyring DEKs) leaves media readable; a revoked layer
 * (keyring_layer_drop) makes it unreadable at once; dropping the container
 * (keyring_remove_file) crypto-shreds it. The media DEK lives only in
 * secmem.
 *
 * Invariants:
 *   1. The blob store receives ciphertext only.
 *   2. media_put holds one chunk of plaintext (and one blob block of
 *      ciphertext) whatever the media size; media_read one window of
 *      sealed chunks (MEDIA_WINDOW).
 *   3. media_read hands out only bytes whose chunk authenticated; a chunk
 *      that fails, a short blob or a wrong header is AT_EINTEGRITY.
 *
 * Errors (error.h): AT_EINTEGRITY, AT_EFORMAT (not a sealed media blob),
 * EFBIG (media_put: more than max bytes), AT_ENOMEM, AT_ECRYPTO, a
 * keyring error, a blob store's error, a source's error (passed
 * through).
 */
#ifndef ATREST_MEDIA_MEDIA_H
#define ATREST_MEDIA_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "common/error.h"
#include "crypto/aead.h"
#include "crypto/keywrap.h"
#include "keys/keyring.h"

#define MEDIA_MAGIC       "ATRMED01"
#define MEDIA_HDR_LEN     16
#define MEDIA_CHUNK       (64u << 10) /* plaintext bytes per chunk */
#define MEDIA_REC_LEN     (MEDIA_CHUNK + AEAD_TAG_LEN)
#define MEDIA_WINDOW      16 /* sealed chunks per blob read */
#define MEDIA_NAME_MAX    64 /* blob name, NUL excluded */
#define MEDIA_AAD_LEN     (8 + MEDIA_NAME_MAX + 4 + 8 + 1)
#define MEDIA_SHARE_LEN   32
#define MEDIA_WRAPPED_REC (4 + KEYWRAP_OUT_LEN(MEDIA_SHARE_LEN)) /* DEK version, share */
#define MEDIA_WRAPPED_MAX (1 + 2 * MEDIA_WRAPPED_REC)

/* Where a media DEK's shares are wrapped: the keyring and the keyring
 * entry of the container's store (not owned). Or, for backups (fixed set,
 * kr NULL), one fixed key for every layer: a backup re-protects each
 * share under a key derived from the backup's own key, so a restore can
 * unwrap them without the old account's keyring (docs/backup.md):
 *   KEK = HKDF-SHA256(fixed, salt = blob name, info = "atrest media backup kek v1")
 * with version 0 in the record. */
struct media_keys {
    struct keyring *kr;
    uint8_t file_id[KEYRING_FILE_ID_LEN];
    const uint8_t *fixed; /* MEDIA_FIXED_LEN bytes (secmem), or NULL */
    int fixed_layers;     /* with fixed: the layer count of the records */
};
#define MEDIA_FIXED_LEN 32

/* A media DEK, in secmem (media_dek_free wipes it). */
struct media_dek {
    uint8_t key[AEAD_KEY_LEN];
};

/* A fresh DEK for blob name: *dek (secmem) and its wrapped shares, encoded
 * into wrapped[0..*wlen) (room for MEDIA_WRAPPED_MAX bytes):
 *   layers (1) | per layer: container DEK version (4) | wrapped share (40)
 * AT_EKEYUNAVAIL when a layer is unavailable (revoked). */
int media_dek_new(const struct media_keys *keys, const char *name, struct media_dek **dek,
                  uint8_t *wrapped, size_t *wlen) AT_WUR;
/* The DEK of blob name from its wrapped shares. AT_EFORMAT when wrapped
 * does not parse, AT_EKEYUNAVAIL when a layer is unavailable,
 * AT_EINTEGRITY when a share does not unwrap (another container's, or
 * damaged), AT_ENOTFOUND when the container's keys are gone. */
int media_dek_open(const struct media_keys *keys, const char *name, const uint8_t *wrapped,
                   size_t wlen, struct media_dek **dek) AT_WUR;
void media_dek_free(struct media_dek *dek);

/* Data-key rotation: rewrap, in place, the shares of wrapped (a record of
 * media_dek_new) that are under a container DEK version below below[l]
 * under layer l's current version; the shares, the media DEK and the blob
 * stay as they are. *changed when the record changed. Errors as
 * media_dek_open. */
int media_dek_rewrap(const struct media_keys *keys, const char *name, uint8_t *wrapped,
                     size_t wlen, const uint32_t below[2], int *changed) AT_WUR;

/* media_dek_rewrap for every attachment row of a container store: the
 * server's table atts(aseq, blob, dek) (src/server/attachments.c),
 * updated in the caller's transaction on db. A store without the table
 * has nothing to rewrap (0). *rewrapped: rows changed. */
struct sqlite3;
int media_rewrap_table(struct sqlite3 *db, const struct media_keys *keys, const uint32_t below[2],
                       size_t *rewrapped) AT_WUR;

/* Rewrap every share of the record in (of media_dek_new) from keys from
 * to keys to (each layer under to's current version) into out (room for
 * MEDIA_WRAPPED_MAX bytes), *outlen its size. The media DEK and the blob
 * stay as they are. The layer counts must match (AT_EFORMAT). Errors as
 * media_dek_open. */
int media_dek_transfer(const struct media_keys *from, const struct media_keys *to,
                       const char *name, const uint8_t *in, size_t inlen, uint8_t *out,
                       size_t *outlen) AT_WUR;

/* Backups (docs/backup.md, "Media"): for every attachment row with media
 * in db (the table atts of a container store, as media_rewrap_table), move
 * its record from keys from to keys to (media_dek_transfer, in the caller's
 * transaction on db) and copy the sealed blob from src (name as stored)
 * to dst (name prefixed with prefix, or, with strip, the other way round).
 *   backup:  db = the store's snapshot image, from = the container's keys,
 *            to = the backup's fixed key, src = media target, dst = backup
 *            target, prefix "<id>/m/", strip 0
 *   restore: db = the restored store, from = the backup's fixed key, to =
 *            the new container's keys, src = backup target, dst = the new
 *            media target, strip 1; each copied blob is then read through
 *            (every chunk authenticated) before it counts.
 * A blob missing from src (deleted after the snapshot; or a row replayed
 * from a continuous log after its base, whose record is not under the
 * backup's key) is left out: its row keeps its record and *missing counts
 * it; the media of such an attachment does not read. *copied: blobs
 * copied, *bytes their sealed size. */
struct media_copy_stats {
    size_t copied, missing;
    uint64_t bytes;
};
int media_copy_table(struct sqlite3 *db, const struct media_keys *from,
                     const struct media_keys *to, struct blob_store *src, struct blob_store *dst,
                     const char *prefix, int strip, struct media_copy_stats *st) AT_WUR;

/* 0 when name can name a sealed media blob (a blob name of at most
 * MEDIA_NAME_MAX bytes), else AT_EINVAL. */
int media_name_check(const char *name) AT_WUR;

/* Seal what src produces (plaintext, read until it reports the end) and
 * put it as blob name. More than max bytes: EFBIG, nothing is stored.
 * *plain_len receives P. */
int media_put(struct blob_store *bs, const char *name, const struct media_dek *dek,
              blob_source_fn src, void *src_ctx, uint64_t max, uint64_t *plain_len) AT_WUR;

/* Streaming reads of a sealed blob whose plaintext is plain_len bytes.
 * The reader keeps pointers to bs and dek: both must outlive it. */
struct media_reader;
int media_reader_open(struct blob_store *bs, const char *name, const struct media_dek *dek,
                      uint64_t plain_len, struct media_reader **out) AT_WUR;
/* The next plaintext bytes, at most cap; *got 0 at the end. */
int media_read(struct media_reader *rd, uint8_t *buf, size_t cap, size_t *got) AT_WUR;
void media_reader_close(struct media_reader *rd);

/* Sealed blob size for P plaintext bytes. */
uint64_t media_sealed_size(uint64_t plain_len);

#endif
