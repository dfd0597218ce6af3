/*
 * media.c — sealing media into a blob store and reading it back, chunk by
 * chunk (format and invariants in media.h).
 *
 *   put:  src ─▶ plaintext chunk (S bytes, one byte of lookahead decides
 *         "last") ─▶ aead_seal ─▶ record ─▶ blob_put's source callback
 *   read: blob_get of a window of records ─▶ aead_open per record as it
 *         is consumed ─▶ caller's buffer
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/kdf.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "media/media.h"

#include <sqlite3.h>

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int media_name_check(const char *name)
{
    if (!name || strlen(name) > MEDIA_NAME_MAX)
        return at_error_set(AT_EINVAL, "media blob names are at most %d bytes", MEDIA_NAME_MAX);
    return blob_name_check(name);
}

uint64_t media_sealed_size(uint64_t plain_len)
{
    uint64_t chunks = plain_len ? (plain_len + MEDIA_CHUNK - 1) / MEDIA_CHUNK : 1;
    return MEDIA_HDR_LEN + plain_len + chunks * AEAD_TAG_LEN;
}

/* ---- keys ---- */

void media_dek_free(struct media_dek *dek)
{
    secmem_free(dek, sizeof *dek);
}

/* Scratch for one DEK operation, all in secmem. */
struct dek_work {
    uint8_t shares[2 * MEDIA_SHARE_LEN];
    uint8_t cdek[KEYRING_DEK_LEN]; /* a container DEK */
    uint8_t kek[AEAD_KEY_LEN];     /* derived from it */
};

/* The number of layers keys wrap under. */
static int keys_layers(const struct media_keys *keys)
{
    return keys->fixed ? keys->fixed_layers : keyring_layers(keys->kr);
}

/* Wrap (unwrap = 0) or unwrap share under layer's container DEK version
 * *version (wrap: the current one, returned in *version); with a fixed key
 * (media.h) under that key, version 0. */
static int share_key(const struct media_keys *keys, const char *name, int layer, int wrap,
                     uint32_t *version, struct dek_work *w)
{
    if (keys->fixed) {
        if (!wrap && *version != 0)
            return at_error_set(AT_EINTEGRITY, "media %s: its key is not under the backup's key",
                                name);
        *version = 0;
        return kdf_hkdf_sha256(keys->fixed, MEDIA_FIXED_LEN, name, "atrest media backup kek v1",
                               w->kek, sizeof w->kek);
    }
    int rc = wrap ? keyring_copy_key_for_write(keys->kr, keys->file_id, layer, version, w->cdek)
                  : keyring_copy_key_for_read(keys->kr, keys->file_id, layer, *version, w->cdek);
    if (rc)
        return at_error_set(rc, "media %s: no container key of layer %d (version %u): %s", name,
                            layer, *version, at_strerror(rc));
    rc = kdf_hkdf_sha256(w->cdek, sizeof w->cdek, name, "atrest media kek v1", w->kek,
                         sizeof w->kek);
    secmem_wipe(w->cdek, sizeof w->cdek);
    return rc;
}

/* The end of media_dek_new/open: unless rc, derive the DEK from the shares
 * of layers layers into a new secmem key handed out in *dek; wipe w. */
static int dek_finish(int rc, struct dek_work *w, int layers, const char *name,
                      struct media_dek **dek)
{
    struct media_dek *k = rc ? NULL : secmem_alloc(sizeof *k);
    if (!rc && !k)
        rc = AT_ENOMEM;
    if (!rc)
        rc = kdf_hkdf_sha256(w->shares, (size_t)layers * MEDIA_SHARE_LEN, name, "atrest media v1",
                             k->key, sizeof k->key);
    if (!rc) {
        *dek = k;
        k = NULL;
    }
    secmem_free(k, sizeof *k);
    secmem_free(w, sizeof *w);
    return rc;
}

/* Wrap layer l's share (in w->shares) under keys' current version into
 * rec (MEDIA_WRAPPED_REC bytes: version, wrapped share). */
static int share_wrap(const struct media_keys *keys, const char *name, int l,
                      struct dek_work *w, uint8_t rec[MEDIA_WRAPPED_REC])
{
    uint32_t version = 0;
    size_t n = 0;
    int rc = share_key(keys, name, l, 1, &version, w);
    if (!rc)
        rc = keywrap_wrap(w->kek, sizeof w->kek, w->shares + l * MEDIA_SHARE_LEN, MEDIA_SHARE_LEN,
                          rec + 4, &n);
    secmem_wipe(w->kek, sizeof w->kek);
    if (!rc && n != MEDIA_WRAPPED_REC - 4)
        rc = at_error_set(AT_ECRYPTO, "media %s: unexpected wrapped key size", name);
    if (!rc)
        be32(rec, version);
    return rc;
}

int media_dek_new(const struct media_keys *keys, const char *name, struct media_dek **dek,
                  uint8_t *wrapped, size_t *wlen)
{
    *dek = NULL;
    int layers = keys_layers(keys);
    struct dek_work *w = secmem_alloc(sizeof *w);
    if (!w)
        return AT_ENOMEM;
    int rc = 0;
    size_t o = 1;
    wrapped[0] = (uint8_t)layers;
    for (int l = 0; l < layers && !rc; l++) {
        rc = rand_key(w->shares + l * MEDIA_SHARE_LEN, MEDIA_SHARE_LEN);
        if (!rc)
            rc = share_wrap(keys, name, l, w, wrapped + o);
        o += MEDIA_WRAPPED_REC;
    }
    rc = dek_finish(rc, w, layers, name, dek);
    if (!rc)
        *wlen = o;
    return rc;
}

/* The layers of a wrapped record, or an error (AT_EFORMAT) when its size
 * or layer count does not fit the keyring. */
static int record_layers(const struct media_keys *keys, const char *name, const uint8_t *wrapped,
                         size_t wlen, int *layers)
{
    *layers = keys_layers(keys);
    if (wlen != 1 + (size_t)*layers * MEDIA_WRAPPED_REC || wrapped[0] != *layers)
        return at_error_set(AT_EFORMAT, "media %s: its key record is damaged", name);
    return 0;
}

/* Unwrap layer l's share of record rec into w->shares. */
static int share_unwrap(const struct media_keys *keys, const char *name, int l,
                        const uint8_t *rec, struct dek_work *w)
{
    uint32_t version = get32(rec);
    size_t n = 0;
    int rc = share_key(keys, name, l, 0, &version, w);
    if (!rc && keywrap_unwrap(w->kek, sizeof w->kek, rec + 4, MEDIA_WRAPPED_REC - 4,
                              w->shares + l * MEDIA_SHARE_LEN, &n) != 0)
        rc = at_error_set(AT_EINTEGRITY, "media %s: its key does not unwrap (layer %d)", name, l);
    secmem_wipe(w->kek, sizeof w->kek);
    if (!rc && n != MEDIA_SHARE_LEN)
        rc = at_error_set(AT_EINTEGRITY, "media %s: its key has the wrong size", name);
    return rc;
}

int media_dek_open(const struct media_keys *keys, const char *name, const uint8_t *wrapped,
                   size_t wlen, struct media_dek **dek)
{
    *dek = NULL;
    int layers, rc = record_layers(keys, name, wrapped, wlen, &layers);
    struct dek_work *w = rc ? NULL : secmem_alloc(sizeof *w);
    if (rc || !w)
        return rc ? rc : AT_ENOMEM;
    for (int l = 0; l < layers && !rc; l++)
        rc = share_unwrap(keys, name, l, wrapped + 1 + l * MEDIA_WRAPPED_REC, w);
    return dek_finish(rc, w, layers, name, dek);
}

int media_dek_rewrap(const struct media_keys *keys, const char *name, uint8_t *wrapped,
                     size_t wlen, const uint32_t below[2], int *changed)
{
    *changed = 0;
    int layers, rc = record_layers(keys, name, wrapped, wlen, &layers);
    struct dek_work *w = rc ? NULL : secmem_alloc(sizeof *w);
    if (rc || !w)
        return rc ? rc : AT_ENOMEM;
    uint8_t out[MEDIA_WRAPPED_REC];
    for (int l = 0; l < layers && !rc; l++) {
        uint8_t *rec = wrapped + 1 + l * MEDIA_WRAPPED_REC;
        if (get32(rec) >= below[l])
            continue;
        rc = share_unwrap(keys, name, l, rec, w);
        if (!rc)
            rc = share_wrap(keys, name, l, w, out);
        if (!rc) {
            memcpy(rec, out, MEDIA_WRAPPED_REC);
            *changed = 1;
        }
    }
    secmem_free(w, sizeof *w);
    return rc;
}

int media_dek_transfer(const struct media_keys *from, const struct media_keys *to,
                       const char *name, const uint8_t *in, size_t inlen, uint8_t *out,
                       size_t *outlen)
{
    int layers, rc = record_layers(from, name, in, inlen, &layers);
    if (!rc && keys_layers(to) != layers)
        rc = at_error_set(AT_EFORMAT, "media %s: %d key layers, the destination has %d", name,
                          layers, keys_layers(to));
    struct dek_work *w = rc ? NULL : secmem_alloc(sizeof *w);
    if (rc || !w)
        return rc ? rc : AT_ENOMEM;
    out[0] = (uint8_t)layers;
    for (int l = 0; l < layers && !rc; l++) {
        rc = share_unwrap(from, name, l, in + 1 + l * MEDIA_WRAPPED_REC, w);
        if (!rc)
            rc = share_wrap(to, name, l, w, out + 1 + l * MEDIA_WRAPPED_REC);
    }
    secmem_free(w, sizeof *w);
    if (!rc)
        *outlen = 1 + (size_t)layers * MEDIA_WRAPPED_REC;
    return rc;
}

/* Read the blob name of dst through to its end (every chunk
 * authenticated) with the DEK of record rec under keys. */
static int read_through(struct blob_store *bs, const char *name, const struct media_keys *keys,
                        const uint8_t *rec, size_t len, uint64_t size)
{
    struct media_dek *dek = NULL;
    struct media_reader *rd = NULL;
    int rc = media_dek_open(keys, name, rec, len, &dek);
    if (!rc)
        rc = media_reader_open(bs, name, dek, size, &rd);
    uint8_t *buf = rc ? NULL : malloc(MEDIA_CHUNK);
    if (!rc && !buf)
        rc = AT_ENOMEM;
    uint64_t total = 0;
    for (size_t got = 1; !rc && got;) {
        rc = media_read(rd, buf, MEDIA_CHUNK, &got);
        total += got;
    }
    if (!rc && total != size)
        rc = at_error_set(AT_EINTEGRITY, "media %s: %llu bytes read, %llu expected", name,
                          (unsigned long long)total, (unsigned long long)size);
    if (buf)
        secmem_wipe(buf, MEDIA_CHUNK);
    free(buf);
    media_reader_close(rd);
    media_dek_free(dek);
    return rc;
}

int media_copy_table(sqlite3 *db, const struct media_keys *from, const struct media_keys *to,
                     struct blob_store *src, struct blob_store *dst, const char *prefix, int strip,
                     struct media_copy_stats *st)
{
    memset(st, 0, sizeof *st);
    sqlite3_stmt *q = NULL, *u = NULL;
    int src_rc = sqlite3_prepare_v2(
        db, "SELECT aseq, blob, dek, size FROM atts WHERE dek IS NOT NULL AND blob IS NOT NULL", -1,
        &q, NULL);
    if (src_rc != SQLITE_OK) {
        const char *msg = sqlite3_errmsg(db);
        return strstr(msg, "no such table") ? 0 : at_error_set(AT_ESQLITE, "atts: %s", msg);
    }
    if (sqlite3_prepare_v2(db, "UPDATE atts SET dek=?2 WHERE aseq=?1", -1, &u, NULL) != SQLITE_OK) {
        int rc = at_error_set(AT_ESQLITE, "atts: %s", sqlite3_errmsg(db));
        sqlite3_finalize(q);
        return rc;
    }
    int rc = 0;
    while (!rc && (src_rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 1);
        int len = sqlite3_column_bytes(q, 2);
        sqlite3_int64 size = sqlite3_column_int64(q, 3);
        uint8_t in[MEDIA_WRAPPED_MAX], out[MEDIA_WRAPPED_MAX];
        size_t outlen = 0;
        char held[BLOB_NAME_MAX + 1], copy[BLOB_NAME_MAX + 1];
        if (!name || media_name_check(name) != 0 || len <= 0 || len > (int)sizeof in || size < 0) {
            rc = at_error_set(AT_EFORMAT, "an attachment's media row is damaged");
            break;
        }
        memcpy(in, sqlite3_column_blob(q, 2), (size_t)len);
        snprintf(held, sizeof held, "%s%s", strip ? prefix : "", name);
        snprintf(copy, sizeof copy, "%s%s", strip ? "" : prefix, name);
        rc = media_dek_transfer(from, to, name, in, (size_t)len, out, &outlen);
        if (rc == AT_EINTEGRITY && from->fixed) { /* not under the backup's key */
            st->missing++;
            rc = 0;
            continue;
        }
        uint64_t bytes = 0;
        if (!rc)
            rc = blob_copy(src, held, dst, copy, &bytes);
        if (rc == AT_ENOTFOUND) {
            st->missing++;
            rc = 0;
            continue;
        }
        if (!rc && strip &&
            (rc = read_through(dst, copy, to, out, outlen, (uint64_t)size)) != 0) {
            int ignored = blob_delete(dst, copy);
            (void)ignored;
        }
        if (!rc) {
            sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
            sqlite3_bind_blob(u, 2, out, (int)outlen, SQLITE_TRANSIENT);
            rc = sqlite3_step(u) == SQLITE_DONE
                     ? 0
                     : at_error_set(AT_ESQLITE, "atts: %s", sqlite3_errmsg(db));
            sqlite3_reset(u);
        }
        if (!rc) {
            st->copied++;
            st->bytes += bytes;
        }
    }
    if (!rc && src_rc != SQLITE_DONE)
        rc = at_error_set(AT_ESQLITE, "atts: %s", sqlite3_errmsg(db));
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    return rc;
}

int media_rewrap_table(sqlite3 *db, const struct media_keys *keys, const uint32_t below[2],
                       size_t *rewrapped)
{
    sqlite3_stmt *q = NULL, *u = NULL;
    *rewrapped = 0;
    int src = sqlite3_prepare_v2(db, "SELECT aseq, blob, dek FROM atts WHERE dek IS NOT NULL", -1,
                                 &q, NULL);
    if (src != SQLITE_OK) {
        /* no atts table (a store from before attachments): nothing to do */
        const char *msg = sqlite3_errmsg(db);
        return strstr(msg, "no such table") ? 0 : at_error_set(AT_ESQLITE, "atts: %s", msg);
    }
    if (sqlite3_prepare_v2(db, "UPDATE atts SET dek=?2 WHERE aseq=?1", -1, &u, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return AT_ESQLITE;
    }
    int rc = 0;
    while (!rc && (src = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 1);
        int len = sqlite3_column_bytes(q, 2), changed = 0;
        uint8_t rec[MEDIA_WRAPPED_MAX];
        if (!name || len <= 0 || len > (int)sizeof rec) {
            rc = at_error_set(AT_EFORMAT, "an attachment's media key record is damaged");
            break;
        }
        memcpy(rec, sqlite3_column_blob(q, 2), (size_t)len);
        rc = media_dek_rewrap(keys, name, rec, (size_t)len, below, &changed);
        if (!rc && changed) {
            sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
            sqlite3_bind_blob(u, 2, rec, len, SQLITE_TRANSIENT);
            rc = sqlite3_step(u) == SQLITE_DONE ? 0 : AT_ESQLITE;
            sqlite3_reset(u);
            *rewrapped += !rc;
        }
    }
    if (!rc && src != SQLITE_DONE)
        rc = AT_ESQLITE;
    sqlite3_finalize(q);
    sqlite3_finalize(u);
    return rc;
}

/* ---- chunks ---- */

static void chunk_params(const char *name, uint64_t idx, int last, uint8_t nonce[AEAD_NONCE_LEN],
                         uint8_t aad[MEDIA_AAD_LEN])
{
    memset(nonce, 0, AEAD_NONCE_LEN);
    be64(nonce, idx);
    memset(aad, 0, MEDIA_AAD_LEN);
    memcpy(aad, "ATRMDC01", 8);
    memcpy(aad + 8, name, strlen(name)); /* checked: at most MEDIA_NAME_MAX */
    be32(aad + 8 + MEDIA_NAME_MAX, MEDIA_CHUNK);
    be64(aad + 12 + MEDIA_NAME_MAX, idx);
    aad[20 + MEDIA_NAME_MAX] = (uint8_t)(last != 0);
}

/* ---- put ---- */

struct sealer {
    const char *name;
    const struct media_dek *dek;
    blob_source_fn src;
    void *src_ctx;
    uint64_t max, total, idx;
    uint8_t *plain; /* one chunk of plaintext, wiped before it is freed */
    uint8_t *rec;   /* the record being handed out */
    size_t rec_len, rec_off;
    uint8_t extra; /* the lookahead byte */
    int have_extra, hdr_done, done;
};

/* Fill buf with up to cap bytes from the source; *eof when it ended. */
static int pull(struct sealer *s, uint8_t *buf, size_t cap, size_t *n, int *eof)
{
    *n = 0;
    *eof = 0;
    while (*n < cap) {
        size_t got = 0;
        int rc = s->src(s->src_ctx, buf + *n, cap - *n, &got);
        if (rc)
            return rc;
        if (got == 0) {
            *eof = 1;
            return 0;
        }
        *n += got;
    }
    return 0;
}

static int next_record(struct sealer *s)
{
    s->rec_off = 0;
    if (!s->hdr_done) {
        memcpy(s->rec, MEDIA_MAGIC, 8);
        be32(s->rec + 8, MEDIA_CHUNK);
        be32(s->rec + 12, 0);
        s->rec_len = MEDIA_HDR_LEN;
        s->hdr_done = 1;
        return 0;
    }
    size_t n = 0;
    int eof = 0;
    if (s->have_extra) {
        s->plain[0] = s->extra;
        n = 1;
        s->have_extra = 0;
    }
    size_t more = 0;
    int rc = pull(s, s->plain + n, MEDIA_CHUNK - n, &more, &eof);
    n += more;
    if (!rc && !eof) { /* a full chunk: is there anything after it? */
        size_t one = 0;
        rc = pull(s, &s->extra, 1, &one, &eof);
        s->have_extra = one == 1;
    }
    if (rc)
        return rc;
    s->total += n;
    if (s->total > s->max)
        return at_error_set(EFBIG, "the media is larger than %llu bytes",
                            (unsigned long long)s->max);
    uint8_t nonce[AEAD_NONCE_LEN], aad[MEDIA_AAD_LEN];
    chunk_params(s->name, s->idx, eof, nonce, aad);
    if ((rc = aead_seal(s->dek->key, nonce, aad, sizeof aad, s->plain, n, s->rec, s->rec + n)) != 0)
        return rc;
    secmem_wipe(s->plain, n);
    s->rec_len = n + AEAD_TAG_LEN;
    s->idx++;
    s->done = eof;
    return 0;
}

static int seal_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct sealer *s = ctx;
    *got = 0;
    if (s->rec_off == s->rec_len) {
        if (s->done)
            return 0;
        int rc = next_record(s);
        if (rc)
            return rc;
    }
    size_t n = s->rec_len - s->rec_off < cap ? s->rec_len - s->rec_off : cap;
    memcpy(buf, s->rec + s->rec_off, n);
    s->rec_off += n;
    *got = n;
    return 0;
}

int media_put(struct blob_store *bs, const char *name, const struct media_dek *dek,
              blob_source_fn src, void *src_ctx, uint64_t max, uint64_t *plain_len)
{
    int rc = media_name_check(name);
    if (rc)
        return rc;
    struct sealer s = {.name = name, .dek = dek, .src = src, .src_ctx = src_ctx, .max = max};
    s.plain = malloc(MEDIA_CHUNK);
    s.rec = malloc(MEDIA_REC_LEN);
    if (!s.plain || !s.rec)
        rc = AT_ENOMEM;
    if (!rc)
        rc = blob_put(bs, name, seal_source, &s, NULL);
    if (!rc && !s.done) /* the blob store stopped asking before the end */
        rc = at_error_set(AT_EIO, "media %s: the blob store took only part of it", name);
    if (!rc)
        *plain_len = s.total;
    if (s.plain)
        secmem_wipe(s.plain, MEDIA_CHUNK);
    free(s.plain);
    free(s.rec); /* ciphertext only */
    return rc;
}

/* ---- read ---- */

struct media_reader {
    struct blob_store *bs;
    char name[MEDIA_NAME_MAX + 1];
    const struct media_dek *dek;
    uint64_t plain_len, chunks;
    uint64_t next_fetch; /* next record to fetch from the blob */
    uint64_t cur;        /* record index of win[win_pos] */
    uint8_t *win;        /* fetched records (ciphertext, opened in place) */
    size_t win_len, win_pos;
    uint8_t *plain; /* the opened chunk being handed out */
    size_t plain_len_cur, plain_off;
};

static size_t rec_plain(const struct media_reader *rd, uint64_t i)
{
    if (i + 1 < rd->chunks)
        return MEDIA_CHUNK;
    return (size_t)(rd->plain_len - (rd->chunks - 1) * (uint64_t)MEDIA_CHUNK);
}

static int fetch(struct media_reader *rd)
{
    uint64_t first = rd->next_fetch;
    uint64_t off = MEDIA_HDR_LEN + first * (uint64_t)MEDIA_REC_LEN;
    size_t want = 0;
    for (uint64_t i = first; i < rd->chunks && i < first + MEDIA_WINDOW; i++)
        want += rec_plain(rd, i) + AEAD_TAG_LEN;
    size_t got = 0;
    int rc = blob_get_range(rd->bs, rd->name, off, rd->win, want, &got);
    if (rc)
        return rc;
    if (got != want)
        return at_error_set(AT_EINTEGRITY, "media blob %s is truncated", rd->name);
    rd->win_len = want;
    rd->win_pos = 0;
    rd->next_fetch = first + MEDIA_WINDOW < rd->chunks ? first + MEDIA_WINDOW : rd->chunks;
    return 0;
}

/* Open record rd->cur into rd->plain. */
static int open_next(struct media_reader *rd)
{
    if (rd->win_pos == rd->win_len) {
        int rc = fetch(rd);
        if (rc)
            return rc;
    }
    size_t n = rec_plain(rd, rd->cur);
    uint8_t nonce[AEAD_NONCE_LEN], aad[MEDIA_AAD_LEN];
    chunk_params(rd->name, rd->cur, rd->cur + 1 == rd->chunks, nonce, aad);
    uint8_t *in = rd->win + rd->win_pos;
    if (aead_open(rd->dek->key, nonce, aad, sizeof aad, in, n, rd->plain, in + n) != 0)
        return at_error_set(AT_EINTEGRITY,
                            "media blob %s: chunk %llu failed authentication (damaged or "
                            "tampered with)",
                            rd->name, (unsigned long long)rd->cur);
    rd->win_pos += n + AEAD_TAG_LEN;
    rd->plain_len_cur = n;
    rd->plain_off = 0;
    rd->cur++;
    return 0;
}

int media_reader_open(struct blob_store *bs, const char *name, const struct media_dek *dek,
                      uint64_t plain_len, struct media_reader **out)
{
    *out = NULL;
    int rc = media_name_check(name);
    if (rc)
        return rc;
    struct blob_info info;
    if ((rc = blob_head(bs, name, &info)) != 0)
        return rc;
    if (info.size != media_sealed_size(plain_len))
        return at_error_set(AT_EINTEGRITY, "media blob %s has %llu bytes, its record says %llu",
                            name, (unsigned long long)info.size,
                            (unsigned long long)media_sealed_size(plain_len));
    uint8_t hdr[MEDIA_HDR_LEN];
    size_t got = 0;
    if ((rc = blob_get_range(bs, name, 0, hdr, sizeof hdr, &got)) != 0)
        return rc;
    if (got != sizeof hdr || memcmp(hdr, MEDIA_MAGIC, 8) != 0)
        return at_error_set(AT_EFORMAT, "blob %s is not a sealed media blob", name);
    if (get32(hdr + 8) != MEDIA_CHUNK || get32(hdr + 12) != 0)
        return at_error_set(AT_EFORMAT, "media blob %s has an unknown chunk size", name);
    struct media_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return AT_ENOMEM;
    rd->bs = bs;
    snprintf(rd->name, sizeof rd->name, "%s", name);
    rd->dek = dek;
    rd->plain_len = plain_len;
    rd->chunks = plain_len ? (plain_len + MEDIA_CHUNK - 1) / MEDIA_CHUNK : 1;
    rd->win = malloc((size_t)MEDIA_WINDOW * MEDIA_REC_LEN);
    rd->plain = malloc(MEDIA_CHUNK);
    if (!rd->win || !rd->plain) {
        media_reader_close(rd);
        return AT_ENOMEM;
    }
    *out = rd;
    return 0;
}

int media_read(struct media_reader *rd, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    while (*got < cap) {
        if (rd->plain_off == rd->plain_len_cur) {
            if (rd->cur == rd->chunks)
                break;
            int rc = open_next(rd);
            if (rc)
                return rc;
            continue;
        }
        size_t n = rd->plain_len_cur - rd->plain_off;
        if (n > cap - *got)
            n = cap - *got;
        memcpy(buf + *got, rd->plain + rd->plain_off, n);
        rd->plain_off += n;
        *got += n;
    }
    return 0;
}

void media_reader_close(struct media_reader *rd)
{
    if (!rd)
        return;
    if (rd->plain)
        secmem_wipe(rd->plain, MEDIA_CHUNK);
    free(rd->plain);
    free(rd->win);
    free(rd);
}
