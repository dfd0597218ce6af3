/*
 * page.h — the encrypted page format shared by the VFS and `atrest verify`.
 *
 * Every page of a store's main file, of its WAL and of any rollback journal
 * is a SQLite page of PAGE_SIZE bytes whose last PAGE_RESERVED bytes SQLite
 * leaves to us (the "reserved bytes", set when the store is created). They
 * hold one trailer per layer:
 *
 *   offset (from page end)  size  field
 *   -32 * L - 32 .. ]       ...   (layer L's trailer; L = 0 outer, 1 inner)
 *   +0                      4     key version, big-endian (DEK version)
 *   +4                      12    nonce (random, from the DRBG)
 *   +16                     16    GCM tag
 *
 * The outer trailer is always the last 32 bytes of the page. With two
 * layers the inner trailer sits just before it.
 *
 * Layer encryption (inner first, then outer):
 *   inner: region = [hdr, PAGE_SIZE - 64)      → ciphertext in place
 *   outer: region = [hdr, PAGE_SIZE - 32)      → covers inner trailer too
 * where hdr = 24 for page 1 (SQLite's first 24 header bytes stay plaintext:
 * magic, page size, format versions, reserved-byte count) and 0 otherwise.
 *
 * Associated data (binds a page to its place and key):
 *   "ATRP" | version 1 (1) | file id (16) | page number (4, BE) |
 *   layer (1) | key version (4, BE) | for page 1: its plaintext bytes 0..23
 *
 * The file id is the database's, for the main file, its WAL and journal
 * alike: a page's ciphertext is valid wherever SQLite puts that page, so a
 * checkpoint copies WAL frames into the main file without any crypto.
 */
#ifndef ATREST_STORAGE_PAGE_H
#define ATREST_STORAGE_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "keys/keyring.h"

#define PAGE_SIZE 4096

/* SQLite's WAL layout (wal.c): a 32-byte header, then frames of a 24-byte
 * header (pgno, nTruncate, salt1, salt2, cksum1, cksum2; big-endian) and
 * one page. */
#define WAL_HDR    32
#define FRAME_HDR  24
#define FRAME_SIZE (FRAME_HDR + PAGE_SIZE)

/* Unwritten pages. A main file can hold pages of zeros that were never
 * sealed: SQLite never writes the page holding its lock byte (offset
 * 2^30), and it does not write a page it allocated and freed again in one
 * transaction (a free-list leaf), so a checkpoint that copies later pages
 * leaves a hole there until the page is used (its content then sits in the
 * WAL). A sealed page is never all zero (its trailer holds a version >= 1
 * and a random nonce), and SQLite never reads such a page as data: a read
 * of one still fails authentication, so zeroing a live page is caught. */
#define PAGE_LOCK_BYTE_PGNO ((uint32_t)(0x40000000u / PAGE_SIZE) + 1)

#define PAGE_TRAILER_LEN      32
#define PAGE_PLAIN_HDR        24 /* page 1 only */
#define PAGE_RESERVED(layers) (PAGE_TRAILER_LEN * (layers))

static inline uint32_t page_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 when all n bytes are zero (an unwritten page, a hole, a cleared trailer). */
static inline int page_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static inline void page_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Encrypt a plaintext page in place (its reserved bytes must be zero on
 * entry). Draws keys for writing from the keyring (counting encryptions). */
int page_seal(struct keyring *kr, const uint8_t file_id[KEYRING_FILE_ID_LEN], int layers,
              uint32_t pgno, uint8_t page[PAGE_SIZE]) AT_WUR;

/* Authenticate and decrypt a page in place; on success the reserved bytes
 * are zero again, as SQLite wrote them. AT_EINTEGRITY (page wiped) on any
 * failure to authenticate, including an unknown key version. */
int page_open(struct keyring *kr, const uint8_t file_id[KEYRING_FILE_ID_LEN], int layers,
              uint32_t pgno, uint8_t page[PAGE_SIZE]) AT_WUR;

/* page_open, also telling the DEK version of each layer (versions[0]
 * outer, [1] inner). The inner trailer sits inside the outer layer's
 * ciphertext, so its version is known only after the outer layer opens. */
int page_open_versions(struct keyring *kr, const uint8_t file_id[KEYRING_FILE_ID_LEN], int layers,
                       uint32_t pgno, uint8_t page[PAGE_SIZE], uint32_t versions[2]) AT_WUR;

#endif
