/*
 * keyring.h — the data folder's keyring: wrapped DEKs only.
 *
 * One file, <data_dir>/keyring (mode 0600). For every store file it holds
 * one DEK per layer per version, each wrapped by that layer's key provider
 * (layer 0, "outer": the service KEK; layer 1, "inner": the optional
 * customer key), plus a per-DEK count of encryptions. It never holds an
 * unwrapped key. The record layout is documented in keyring.c.
 *
 * Invariants:
 *   1. Updates are atomic and crash-safe: write keyring.tmp, fsync, rename
 *      over keyring, fsync the folder. A reader sees the old or the new file.
 *   2. The whole file is authenticated (HMAC-SHA256 under a MAC key that is
 *      itself wrapped by the outer provider): a flipped bit, a truncation or
 *      a swapped record is AT_EKEYRING, never a wrong key.
 *   3. The keyring records each layer's provider key identity; opening it
 *      with another provider fails with AT_EKEYMISMATCH.
 *   4. Encryption counts only over-count: the count persisted is a
 *      reservation taken before the encryptions it covers are used.
 *   5. A DEK whose count reaches the rotation threshold (default 2^30, far
 *      below the 2^32 NIST SP 800-38D limit for random 96-bit nonces) is
 *      retired: a new version becomes current for writes; old versions stay
 *      readable.
 *   6. Unwrapped DEKs live only in secmem (locked, undumpable), and are
 *      wiped when their file is removed or the keyring is closed.
 *   7. A layer can be dropped (keyring_layer_drop: its unwrapped DEKs are
 *      wiped and it is marked unavailable) and restored (unwrapped again
 *      through its provider). While a layer is unavailable no key of it is
 *      handed out (AT_EKEYUNAVAIL) and no DEK is created in it, so nothing
 *      is ever encrypted under an unknown or wiped key.
 *
 * All functions are thread-safe.
 */
#ifndef ATREST_KEYS_KEYRING_H
#define ATREST_KEYS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "keys/provider.h"

#define KEYRING_FILE_ID_LEN       16
#define KEYRING_NAME_MAX          64 /* store names: [a-z0-9_-]{1,63} chosen by atrest */
#define KEYRING_LAYER_OUTER       0
#define KEYRING_LAYER_INNER       1
#define KEYRING_DEFAULT_ROTATE_AT (1ULL << 30)
#define KEYRING_DEK_LEN           32
#define KEYRING_INFO_KEKS         8

struct keyring;

/* Open <data_dir>/keyring with the outer provider and, for a two-layer
 * account, the inner one (NULL otherwise). With create set and no keyring
 * present, a new empty keyring is written (the layer count is fixed then:
 * 2 when inner is given). Errors: AT_EKEYRING (missing without create,
 * corrupted, wrong format), AT_EKEYMISMATCH (providers are not the ones the
 * keyring was made with, or the layer count differs), errno. */
int keyring_open(const char *data_dir, struct key_provider *outer, struct key_provider *inner,
                 int create, struct keyring **out) AT_WUR;

/* Wipe all keys in memory and free. Persists counters first (best effort). */
void keyring_close(struct keyring *kr);

/* 1 or 2. */
int keyring_layers(const struct keyring *kr);

/* Create the DEKs (version 1 for each layer) of a new store file called
 * name, with a fresh random file id written to id. AT_EEXIST if the name is
 * taken. Persisted before returning. */
int keyring_add_file(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN]) AT_WUR;

/* The file id of name, or AT_ENOTFOUND. */
int keyring_find_file(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN]) AT_WUR;

/* Crypto-shred: drop every DEK version of the file (memory wiped), persist. */
int keyring_remove_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN]) AT_WUR;

/* List store files: up to max names (each KEYRING_NAME_MAX) and ids. */
int keyring_list_files(struct keyring *kr, char (*names)[KEYRING_NAME_MAX],
                       uint8_t (*ids)[KEYRING_FILE_ID_LEN], size_t max, size_t *n) AT_WUR;

/* The key for one new encryption: counts it, rotates first if the current
 * version has reached the threshold. *key points at keyring-owned secmem (32
 * bytes) valid until the file is removed or the keyring closed; its bytes
 * are zeroed if the layer is dropped (7), so code that may run while a
 * layer is dropped uses the copying variants below. AT_EKEYUNAVAIL when the
 * layer is unavailable. */
int keyring_key_for_write(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                          uint32_t *version, const uint8_t **key) AT_WUR;

/* The key of a given version, for reading. AT_ENOTFOUND if unknown. */
int keyring_key_for_read(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                         uint32_t version, const uint8_t **key) AT_WUR;

/* The same, copying the key into out under the keyring's lock (the storage
 * layer uses these, and wipes out after each page). */
int keyring_copy_key_for_write(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN],
                               int layer, uint32_t *version, uint8_t out[KEYRING_DEK_LEN]) AT_WUR;
int keyring_copy_key_for_read(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                              uint32_t version, uint8_t out[KEYRING_DEK_LEN]) AT_WUR;

/* Start a new DEK version for the file and layer now. */
int keyring_rotate_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN],
                        int layer) AT_WUR;

/* The current version and its encryption count (for status and tests). */
int keyring_file_status(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                        uint32_t *current_version, uint64_t *encryptions) AT_WUR;

/* The oldest and the current DEK version of a file's layer. More than one
 * version means pages may still be sealed under an older one. */
int keyring_file_versions(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                          uint32_t *oldest, uint32_t *current) AT_WUR;

/* Destroy every DEK version of a file's layer below version below (never
 * the current one): the keyring is persisted without them first, then
 * their keys are wiped from memory. For data-key rotation, once no page
 * on disk is sealed under them any more. *destroyed: how many. */
int keyring_retire(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                   uint32_t below, size_t *destroyed) AT_WUR;

/* Change the rotation threshold (tests use small values). */
void keyring_set_rotate_at(struct keyring *kr, uint64_t encryptions);

/* Persist counters now. */
int keyring_flush(struct keyring *kr) AT_WUR;

/* ---- layers (7): what atrestd's key monitor uses ---------------------- */

/* The provider key id a layer was made with (e.g. a key URL). */
const char *keyring_key_id(const struct keyring *kr, int layer);

/* Wipe every unwrapped DEK of layer in memory and mark the layer
 * unavailable (idempotent). The wrapped DEKs on disk are untouched. */
int keyring_layer_drop(struct keyring *kr, int layer) AT_WUR;

/* Unwrap the layer's DEKs again through its provider and mark it
 * available; nothing changes on failure (the provider's error). No lock is
 * held during the provider's calls. 0 at once when the layer is available. */
int keyring_layer_restore(struct keyring *kr, int layer) AT_WUR;

/* 1 when the layer's keys are in memory. */
int keyring_layer_available(struct keyring *kr, int layer);

/* Ask the layer's provider to unwrap one wrapped value per KEK version the
 * layer uses (layer 0: the MAC key too; a layer with no DEK: the provider's
 * health check). 0 when the provider can unwrap them now, else its error
 * (kp_last_status() then tells why). Changes nothing. */
int keyring_layer_check(struct keyring *kr, int layer) AT_WUR;

/* 1 when some wrapped value of the layer is not under KEK version current. */
int keyring_layer_stale(struct keyring *kr, int layer, uint32_t current);

/* Rewrap every DEK of the layer (layer 0: and the MAC key) under the
 * provider's current KEK version and persist atomically: after a KEK or
 * customer-key rotation, so that older versions can be disabled. Takes one
 * wrap per DEK, independent of the amount of data. *rewrapped: how many
 * values were rewrapped. AT_EKEYUNAVAIL when the layer is unavailable. */
int keyring_rewrap(struct keyring *kr, int layer, size_t *rewrapped) AT_WUR;

/* What a keyring file says, read without any key: for status tools and
 * for choosing providers before keyring_open. Not authenticated (only the
 * keyless checksum is checked): keyring_open verifies everything again.
 * AT_ENOTFOUND when the data folder has no keyring. */
struct keyring_info {
    int layers;
    char key_id[2][KP_KEY_ID_MAX];
    size_t files;                   /* store files */
    size_t deks[2];                 /* DEK versions per layer */
    uint32_t max_dek_version[2];    /* highest DEK version per layer */
    uint64_t encryptions[2];        /* encryption count reservations, summed */
    size_t nkek[2];                 /* distinct KEK versions in use (at most KEYRING_INFO_KEKS) */
    struct kp_wrapped kek[2][KEYRING_INFO_KEKS]; /* one wrapped value per KEK version */
};
int keyring_peek(const char *data_dir, struct keyring_info *info) AT_WUR;

/* The store files a keyring lists (up to max), read like keyring_peek:
 * name, file id, and per layer the oldest and current DEK version. */
struct keyring_peek_file {
    char name[KEYRING_NAME_MAX];
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint32_t oldest[2], current[2];
};
int keyring_peek_files(const char *data_dir, struct keyring_peek_file *files, size_t max,
                       size_t *n) AT_WUR;

#endif
