/*
 * format.c — the backup formats (tables in backupint.h and docs/backup.md):
 * key derivation, the manifest and its MAC, chunk sealing.
 *
 * Keys: the backup DEK is the concatenation of one 32-byte random share per
 * key layer (each wrapped by that layer's provider). Two keys are derived
 * from it with HKDF-SHA256 (salt: the backup id), info "atrest backup v1
 * data" for chunks and "atrest backup v1 manifest" for the MAC, so a key
 * never serves two purposes.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backupint.h"
#include "crypto/kdf.h"
#include "crypto/secmem.h"
#include "storage/page.h"

static void put64(uint8_t *p, uint64_t v)
{
    page_put32(p, (uint32_t)(v >> 32));
    page_put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)page_get32(p) << 32 | page_get32(p + 4);
}

static void put_str(uint8_t *p, size_t n, const char *s)
{
    memset(p, 0, n);
    size_t l = strlen(s);
    memcpy(p, s, l < n ? l : n);
}

/* A NUL-padded field into a C string; refuses a field without its NUL or
 * with bytes after it. */
static int get_str(const uint8_t *p, size_t n, char *out, size_t outn)
{
    size_t l = strnlen((const char *)p, n);
    if (l >= n || l >= outn)
        return -1;
    for (size_t i = l; i < n; i++)
        if (p[i])
            return -1;
    memcpy(out, p, l);
    out[l] = 0;
    return 0;
}

int bk_derive(const uint8_t *ikm, size_t n, const char *id, struct bk_keys *out)
{
    int rc = kdf_hkdf_sha256(ikm, n, id, "atrest backup v1 data", out->data, sizeof out->data);
    if (!rc)
        rc = kdf_hkdf_sha256(ikm, n, id, "atrest backup v1 manifest", out->mac, sizeof out->mac);
    if (rc)
        secmem_wipe(out, sizeof *out);
    return rc;
}

static size_t manifest_len(uint32_t layers, uint32_t nstores)
{
    return BK_HDR + (size_t)layers * BK_SHARE_REC + (size_t)nstores * BK_STORE_REC + BK_MAC_LEN;
}

static int mac(const struct bk_keys *k, const uint8_t *buf, size_t len, uint8_t out[32])
{
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), k->mac, sizeof k->mac, buf, len, out, &n) || n != 32)
        return at_error_set(AT_ECRYPTO, "HMAC failed");
    return 0;
}

int bk_manifest_encode(const struct bk_manifest *m, const struct bk_keys *k, uint8_t **out,
                       size_t *len)
{
    *out = NULL;
    if (m->layers < 1 || m->layers > 2 || m->nstores > BACKUP_MAX_STORES)
        return AT_EINVAL;
    size_t L = manifest_len(m->layers, m->nstores);
    uint8_t *b = calloc(1, L);
    if (!b)
        return AT_ENOMEM;
    memcpy(b, BK_MAGIC_MANIFEST, 8);
    page_put32(b + 8, (uint32_t)L);
    page_put32(b + 12, BK_FORMAT);
    put_str(b + 16, 32, m->id);
    put64(b + 48, (uint64_t)m->created);
    put_str(b + 56, 32, m->version);
    page_put32(b + 88, m->chunk_size);
    page_put32(b + 92, m->page_size);
    page_put32(b + 96, m->layers);
    page_put32(b + 100, m->nstores);
    uint8_t *p = b + BK_HDR;
    for (uint32_t i = 0; i < m->layers; i++, p += BK_SHARE_REC) {
        const struct bk_share *s = &m->share[i];
        put_str(p, KP_KEY_ID_MAX, s->key_id);
        page_put32(p + KP_KEY_ID_MAX, s->w.kek_version);
        p[KP_KEY_ID_MAX + 4] = (uint8_t)(s->w.len >> 8);
        p[KP_KEY_ID_MAX + 5] = (uint8_t)s->w.len;
        memcpy(p + KP_KEY_ID_MAX + 6, s->w.bytes, s->w.len);
    }
    for (uint32_t i = 0; i < m->nstores; i++, p += BK_STORE_REC) {
        const struct bk_store *s = &m->stores[i];
        put_str(p, BK_NAME_LEN, s->name);
        put64(p + 64, s->plain_len);
        put64(p + 72, s->blob_len);
        page_put32(p + 80, s->pages);
        page_put32(p + 84, s->chunks);
        memcpy(p + 88, s->sha256, 32);
    }
    int rc = mac(k, b, L - BK_MAC_LEN, b + L - BK_MAC_LEN);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = L;
    return 0;
}

int bk_manifest_decode(const uint8_t *b, size_t len, struct bk_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (len < BK_HDR + BK_MAC_LEN || memcmp(b, BK_MAGIC_MANIFEST, 8) != 0)
        return at_error_set(AT_EFORMAT, "not a backup manifest");
    if (page_get32(b + 12) != BK_FORMAT)
        return at_error_set(AT_EFORMAT, "backup manifest format %u is not one this atrest reads",
                            page_get32(b + 12));
    m->layers = page_get32(b + 96);
    m->nstores = page_get32(b + 100);
    if (m->layers < 1 || m->layers > 2 || m->nstores > BACKUP_MAX_STORES ||
        page_get32(b + 8) != len || manifest_len(m->layers, m->nstores) != len)
        return at_error_set(AT_EINTEGRITY,
                            "the backup manifest is truncated or damaged (%zu bytes)", len);
    if (get_str(b + 16, 32, m->id, sizeof m->id) != 0 ||
        get_str(b + 56, 32, m->version, sizeof m->version) != 0)
        return at_error_set(AT_EINTEGRITY, "the backup manifest is damaged (id or version)");
    m->created = (int64_t)get64(b + 48);
    m->chunk_size = page_get32(b + 88);
    m->page_size = page_get32(b + 92);
    if (m->page_size != PAGE_SIZE || m->chunk_size < PAGE_SIZE || m->chunk_size % PAGE_SIZE ||
        m->chunk_size > (64u << 20))
        return at_error_set(AT_EINTEGRITY, "the backup manifest is damaged (chunk or page size)");
    const uint8_t *p = b + BK_HDR;
    for (uint32_t i = 0; i < m->layers; i++, p += BK_SHARE_REC) {
        struct bk_share *s = &m->share[i];
        s->w.kek_version = page_get32(p + KP_KEY_ID_MAX);
        s->w.len = (uint16_t)(p[KP_KEY_ID_MAX + 4] << 8 | p[KP_KEY_ID_MAX + 5]);
        if (get_str(p, KP_KEY_ID_MAX, s->key_id, sizeof s->key_id) != 0 || s->w.len == 0 ||
            s->w.len > KP_WRAPPED_MAX)
            return at_error_set(AT_EINTEGRITY, "the backup manifest is damaged (key share %u)", i);
        memcpy(s->w.bytes, p + KP_KEY_ID_MAX + 6, s->w.len);
    }
    m->stores = calloc(m->nstores ? m->nstores : 1, sizeof *m->stores);
    if (!m->stores)
        return AT_ENOMEM;
    for (uint32_t i = 0; i < m->nstores; i++, p += BK_STORE_REC) {
        struct bk_store *s = &m->stores[i];
        s->plain_len = get64(p + 64);
        s->blob_len = get64(p + 72);
        s->pages = page_get32(p + 80);
        s->chunks = page_get32(p + 84);
        memcpy(s->sha256, p + 88, 32);
        uint64_t want_chunks = (s->plain_len + m->chunk_size - 1) / m->chunk_size;
        if (get_str(p, BK_NAME_LEN, s->name, sizeof s->name) != 0 || !s->name[0] ||
            s->plain_len != (uint64_t)s->pages * PAGE_SIZE || s->chunks != want_chunks ||
            s->blob_len != BK_STORE_HDR + s->plain_len + (uint64_t)s->chunks * AEAD_TAG_LEN) {
            bk_manifest_free(m);
            return at_error_set(AT_EINTEGRITY, "the backup manifest is damaged (store %u)", i);
        }
    }
    return 0;
}

int bk_manifest_check(const uint8_t *b, size_t len, const struct bk_keys *k)
{
    uint8_t want[32];
    if (len < BK_MAC_LEN)
        return AT_EINTEGRITY;
    int rc = mac(k, b, len - BK_MAC_LEN, want);
    if (!rc && CRYPTO_memcmp(want, b + len - BK_MAC_LEN, BK_MAC_LEN) != 0)
        rc = AT_EINTEGRITY;
    secmem_wipe(want, sizeof want);
    return rc;
}

void bk_manifest_free(struct bk_manifest *m)
{
    free(m->stores);
    m->stores = NULL;
}

void bk_store_blob_name(const char *id, uint32_t idx, char *out, size_t n)
{
    snprintf(out, n, "%s/s%04u", id, idx);
}

void bk_store_hdr(uint8_t h[BK_STORE_HDR], uint32_t chunk_size, uint32_t chunks, uint64_t plain_len,
                  uint32_t idx)
{
    memset(h, 0, BK_STORE_HDR);
    memcpy(h, BK_MAGIC_STORE, 8);
    page_put32(h + 8, chunk_size);
    page_put32(h + 12, chunks);
    put64(h + 16, plain_len);
    page_put32(h + 24, idx);
}

static void chunk_params(const char *id, const char *store, uint32_t store_idx, uint32_t chunk,
                         int last, uint64_t plain_len, uint8_t nonce[AEAD_NONCE_LEN],
                         uint8_t aad[BK_AAD_LEN])
{
    page_put32(nonce, store_idx);
    put64(nonce + 4, chunk);
    memcpy(aad, "ATRBKC01", 8);
    put_str(aad + 8, 32, id);
    put_str(aad + 40, 64, store);
    page_put32(aad + 104, chunk);
    aad[108] = last ? 1 : 0;
    put64(aad + 109, plain_len);
}

int bk_chunk_seal(const struct bk_keys *k, const char *id, const char *store, uint32_t store_idx,
                  uint32_t chunk, int last, uint64_t plain_len, const uint8_t *in, size_t len,
                  uint8_t *out, uint8_t tag[AEAD_TAG_LEN])
{
    uint8_t nonce[AEAD_NONCE_LEN], aad[BK_AAD_LEN];
    chunk_params(id, store, store_idx, chunk, last, plain_len, nonce, aad);
    return aead_seal(k->data, nonce, aad, sizeof aad, in, len, out, tag);
}

int bk_chunk_open(const struct bk_keys *k, const char *id, const char *store, uint32_t store_idx,
                  uint32_t chunk, int last, uint64_t plain_len, const uint8_t *in, size_t len,
                  uint8_t *out, const uint8_t tag[AEAD_TAG_LEN])
{
    uint8_t nonce[AEAD_NONCE_LEN], aad[BK_AAD_LEN];
    chunk_params(id, store, store_idx, chunk, last, plain_len, nonce, aad);
    return aead_open(k->data, nonce, aad, sizeof aad, in, len, out, tag);
}

int bk_unwrap(const struct bk_manifest *m, const struct backup_keys *keys, struct bk_keys **out)
{
    *out = NULL;
    struct key_provider *kp[2] = {keys ? keys->outer : NULL, keys ? keys->inner : NULL};
    uint8_t *ikm = secmem_alloc(2 * KP_KEY_MAX);
    struct bk_keys *k = secmem_alloc(sizeof *k);
    int rc = 0;
    if (!ikm || !k) {
        rc = AT_ENOMEM;
        goto out;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < m->layers; i++) {
        char have[KP_KEY_ID_MAX];
        if (!kp[i]) {
            rc = at_error_set(AT_EKEYUNAVAIL,
                              "backup %s is sealed under %s too; no provider for that layer was "
                              "given",
                              m->id, m->share[i].key_id);
            goto out;
        }
        if ((rc = kp_key_id(kp[i], have, sizeof have)) != 0)
            goto out;
        if (strcmp(have, m->share[i].key_id) != 0) {
            rc = at_error_set(AT_EKEYMISMATCH,
                              "backup %s was made under key %s; the key folder given holds %s",
                              m->id, m->share[i].key_id, have);
            goto out;
        }
        size_t n = 0;
        if ((rc = kp_unwrap(kp[i], &m->share[i].w, ikm + off, &n)) != 0) {
            at_error_set(rc, "backup %s: cannot unwrap its key (layer %u, KEK version %u): %s",
                         m->id, i, m->share[i].w.kek_version, at_strerror(rc));
            goto out;
        }
        if (n != BK_SHARE_LEN) {
            rc =
                at_error_set(AT_EINTEGRITY, "backup %s: its wrapped key has the wrong size", m->id);
            goto out;
        }
        off += n;
    }
    if ((rc = bk_derive(ikm, off, m->id, k)) != 0)
        goto out;
    *out = k;
    k = NULL;
out:
    if (ikm)
        secmem_free(ikm, 2 * KP_KEY_MAX);
    if (k)
        secmem_free(k, sizeof *k);
    return rc;
}

void bk_keys_free(struct bk_keys *k)
{
    if (k)
        secmem_free(k, sizeof *k);
}

/* ---- continuous mode: segments, log head, base positions ---------------- */

void cs_seg_hdr_encode(const struct cs_seg_hdr *h, uint8_t out[CS_SEG_HDR])
{
    memset(out, 0, CS_SEG_HDR);
    memcpy(out, CS_MAGIC_SEG, 8);
    put_str(out + 8, 32, h->epoch);
    put64(out + 40, h->segno);
    memcpy(out + 48, h->prev_tag, AEAD_TAG_LEN);
    put64(out + 64, (uint64_t)h->first_us);
    put64(out + 72, (uint64_t)h->last_us);
    page_put32(out + 80, h->nrec);
    put64(out + 88, (uint64_t)h->covered_us);
    put64(out + 96, h->body_len);
}

int cs_seg_hdr_decode(const uint8_t *b, size_t len, struct cs_seg_hdr *h)
{
    memset(h, 0, sizeof *h);
    if (len < CS_SEG_HDR + AEAD_TAG_LEN || memcmp(b, CS_MAGIC_SEG, 8) != 0 ||
        get_str(b + 8, 32, h->epoch, sizeof h->epoch) != 0 || page_get32(b + 84) != 0)
        return at_error_set(AT_EINTEGRITY, "not a log segment, or its header is damaged");
    h->segno = get64(b + 40);
    memcpy(h->prev_tag, b + 48, AEAD_TAG_LEN);
    h->first_us = (int64_t)get64(b + 64);
    h->last_us = (int64_t)get64(b + 72);
    h->nrec = page_get32(b + 80);
    h->covered_us = (int64_t)get64(b + 88);
    h->body_len = get64(b + 96);
    if (h->body_len != len - CS_SEG_HDR - AEAD_TAG_LEN)
        return at_error_set(AT_EINTEGRITY, "log segment %llu is truncated or damaged",
                            (unsigned long long)h->segno);
    return 0;
}

/* Nonce: 0xffffffff | segment number. Backup chunk nonces start with a
 * store index below BACKUP_MAX_STORES, so the two never meet (and the keys
 * differ anyway). The associated data is the whole segment header. */
static void seg_nonce(const uint8_t *hdr, uint8_t nonce[AEAD_NONCE_LEN])
{
    memset(nonce, 0xff, 4);
    memcpy(nonce + 4, hdr + 40, 8);
}

int cs_seg_seal(const struct bk_keys *k, uint8_t *blob, size_t body_len)
{
    uint8_t nonce[AEAD_NONCE_LEN];
    seg_nonce(blob, nonce);
    return aead_seal(k->data, nonce, blob, CS_SEG_HDR, blob + CS_SEG_HDR, body_len,
                     blob + CS_SEG_HDR, blob + CS_SEG_HDR + body_len);
}

int cs_seg_open(const struct bk_keys *k, const uint8_t *blob, size_t len, uint8_t *body)
{
    uint8_t nonce[AEAD_NONCE_LEN];
    size_t body_len = len - CS_SEG_HDR - AEAD_TAG_LEN;
    seg_nonce(blob, nonce);
    int rc = aead_open(k->data, nonce, blob, CS_SEG_HDR, blob + CS_SEG_HDR, body_len, body,
                       blob + CS_SEG_HDR + body_len);
    if (rc) {
        secmem_wipe(body, body_len);
        return AT_EINTEGRITY;
    }
    return 0;
}

void cs_rec_encode(const struct cs_rec *r, uint8_t out[CS_REC_HDR])
{
    put_str(out, BK_NAME_LEN, r->name);
    put64(out + 64, r->seq);
    put64(out + 72, (uint64_t)r->time_us);
    page_put32(out + 80, r->db_pages);
    page_put32(out + 84, r->nframes);
}

int cs_rec_decode(const uint8_t *p, size_t left, struct cs_rec *r)
{
    if (left < CS_REC_HDR || get_str(p, BK_NAME_LEN, r->name, sizeof r->name) != 0 ||
        !r->name[0])
        return AT_EINTEGRITY;
    r->seq = get64(p + 64);
    r->time_us = (int64_t)get64(p + 72);
    r->db_pages = page_get32(p + 80);
    r->nframes = page_get32(p + 84);
    if ((uint64_t)r->nframes * CS_FRAME_HDR > left - CS_REC_HDR || r->nframes == 0 ||
        r->db_pages == 0)
        return AT_EINTEGRITY;
    return 0;
}

size_t cs_frame_pack(uint8_t *f, uint32_t pgno)
{
    uint8_t *page = f + CS_FRAME_HDR;
    size_t best = 0, best_len = 0;
    /* in 8-byte words: cheap, and a page's free space is one long run */
    for (size_t i = 0; i < PAGE_SIZE;) {
        uint64_t w;
        memcpy(&w, page + i, 8);
        if (w) {
            i += 8;
            continue;
        }
        size_t j = i + 8;
        for (; j < PAGE_SIZE; j += 8) {
            memcpy(&w, page + j, 8);
            if (w)
                break;
        }
        if (j - i > best_len)
            best = i, best_len = j - i;
        i = j;
    }
    memmove(page + best, page + best + best_len, PAGE_SIZE - best - best_len);
    page_put32(f, pgno);
    f[4] = (uint8_t)(best >> 8);
    f[5] = (uint8_t)best;
    f[6] = (uint8_t)(best_len >> 8);
    f[7] = (uint8_t)best_len;
    return CS_FRAME_HDR + PAGE_SIZE - best_len;
}

int cs_frame_next(const uint8_t *b, size_t len, size_t off, uint32_t *pgno, size_t *next)
{
    if (off > len || len - off < CS_FRAME_HDR)
        return AT_EINTEGRITY;
    const uint8_t *f = b + off;
    size_t z = (size_t)f[4] << 8 | f[5], n = (size_t)f[6] << 8 | f[7];
    if (z + n > PAGE_SIZE || len - off - CS_FRAME_HDR < PAGE_SIZE - n || page_get32(f) == 0)
        return AT_EINTEGRITY;
    *pgno = page_get32(f);
    *next = off + CS_FRAME_HDR + PAGE_SIZE - n;
    return 0;
}

void cs_frame_unpack(const uint8_t *f, uint8_t page[PAGE_SIZE])
{
    size_t z = (size_t)f[4] << 8 | f[5], n = (size_t)f[6] << 8 | f[7];
    memcpy(page, f + CS_FRAME_HDR, z);
    memset(page + z, 0, n);
    memcpy(page + z + n, f + CS_FRAME_HDR + z, PAGE_SIZE - z - n);
}

int cs_head_encode(const struct cs_head *h, const struct bk_keys *k, uint8_t out[CS_HEAD_LEN])
{
    memset(out, 0, CS_HEAD_LEN);
    memcpy(out, CS_MAGIC_HEAD, 8);
    put_str(out + 8, 32, h->epoch);
    put64(out + 40, h->nsegs);
    memcpy(out + 48, h->last_tag, AEAD_TAG_LEN);
    put64(out + 64, (uint64_t)h->covered_us);
    page_put32(out + 72, h->closed);
    return mac(k, out, CS_HEAD_LEN - BK_MAC_LEN, out + CS_HEAD_LEN - BK_MAC_LEN);
}

int cs_head_decode(const uint8_t *b, size_t len, const struct bk_keys *k, struct cs_head *h)
{
    memset(h, 0, sizeof *h);
    if (len != CS_HEAD_LEN || memcmp(b, CS_MAGIC_HEAD, 8) != 0 ||
        bk_manifest_check(b, len, k) != 0 || get_str(b + 8, 32, h->epoch, sizeof h->epoch) != 0)
        return at_error_set(AT_EINTEGRITY, "the log head failed authentication (edited or damaged)");
    h->nsegs = get64(b + 40);
    memcpy(h->last_tag, b + 48, AEAD_TAG_LEN);
    h->covered_us = (int64_t)get64(b + 64);
    h->closed = page_get32(b + 72);
    return 0;
}

static size_t position_len(uint32_t n)
{
    return CS_POS_HDR + (size_t)n * CS_POS_REC + BK_MAC_LEN;
}

int cs_position_encode(const struct cs_position *p, const struct bk_keys *k, uint8_t **out,
                       size_t *len)
{
    size_t L = position_len(p->nstores);
    uint8_t *b = calloc(1, L);
    if (!b)
        return AT_ENOMEM;
    memcpy(b, CS_MAGIC_POS, 8);
    put_str(b + 8, 32, p->id);
    put_str(b + 40, 32, p->epoch);
    put64(b + 72, p->first_seg);
    put64(b + 80, (uint64_t)p->t_end_us);
    page_put32(b + 88, p->nstores);
    for (uint32_t i = 0; i < p->nstores; i++) {
        uint8_t *r = b + CS_POS_HDR + (size_t)i * CS_POS_REC;
        put_str(r, BK_NAME_LEN, p->stores[i].name);
        put64(r + 64, p->stores[i].seq);
    }
    int rc = mac(k, b, L - BK_MAC_LEN, b + L - BK_MAC_LEN);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = L;
    return 0;
}

int cs_position_decode(const uint8_t *b, size_t len, const struct bk_keys *k,
                       struct cs_position *p)
{
    memset(p, 0, sizeof *p);
    if (len < position_len(0) || memcmp(b, CS_MAGIC_POS, 8) != 0 ||
        bk_manifest_check(b, len, k) != 0)
        return at_error_set(AT_EINTEGRITY, "the base position failed authentication");
    p->nstores = page_get32(b + 88);
    if (p->nstores > BACKUP_MAX_STORES || position_len(p->nstores) != len ||
        get_str(b + 8, 32, p->id, sizeof p->id) != 0 ||
        get_str(b + 40, 32, p->epoch, sizeof p->epoch) != 0)
        return at_error_set(AT_EINTEGRITY, "the base position is damaged");
    p->first_seg = get64(b + 72);
    p->t_end_us = (int64_t)get64(b + 80);
    p->stores = calloc(p->nstores ? p->nstores : 1, sizeof *p->stores);
    if (!p->stores)
        return AT_ENOMEM;
    for (uint32_t i = 0; i < p->nstores; i++) {
        const uint8_t *r = b + CS_POS_HDR + (size_t)i * CS_POS_REC;
        if (get_str(r, BK_NAME_LEN, p->stores[i].name, sizeof p->stores[i].name) != 0) {
            free(p->stores);
            p->stores = NULL;
            return at_error_set(AT_EINTEGRITY, "the base position is damaged (store %u)", i);
        }
        p->stores[i].seq = get64(r + 64);
    }
    return 0;
}

void cs_seg_name(const char *epoch, uint64_t segno, char *out, size_t n)
{
    snprintf(out, n, "cont/%s/%012llu", epoch, (unsigned long long)segno);
}
