/*
 * backup.c — making, listing, verifying, restoring and pruning backups
 * (contract in backup.h, formats in backupint.h and docs/backup.md).
 *
 *   backup_job_add ─▶ connection + read transaction per store (a snapshot)
 *   backup_job_run ─▶ for each store: bk_snapshot → seal chunks → put
 *                     <id>/sNNNN; then put <id>/manifest   (commit point)
 *   verify/restore ─▶ get manifest → unwrap shares → check MAC → for each
 *                     store: stream the blob, open each chunk, (restore:
 *                     hand its pages to store_import) → compare count,
 *                     length and SHA-256 with the manifest
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "backup/backupint.h"
#include "crypto/kdf.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "storage/page.h"
#include "storage/vfs.h"

#define BK_SERVER_VERSION "atrest 0.1"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Put a prefix before the detail the failing call recorded (the detail
 * buffer cannot be both source and target of at_error_set). */
static int __attribute__((format(printf, 2, 3))) add_context(int rc, const char *fmt, ...)
{
    char prefix[256], old[512];
    snprintf(old, sizeof old, "%s", at_error_detail());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    return at_error_set(rc, "%s: %s", prefix, old);
}

static void manifest_name(const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/manifest", id);
}

/* Ids sort in time order (retention relies on it): UTC to the ms, then 3
 * random bytes. Backups and log epochs (ship.c) are named this way. */
int bk_new_id(char id[BACKUP_ID_LEN])
{
    uint8_t rnd[3];
    int rc = rand_bytes(rnd, sizeof rnd);
    if (rc)
        return rc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[16], rh[7];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    hex(rnd, 3, rh);
    snprintf(id, BACKUP_ID_LEN, "%.15s%03uZ-%.6s", ts, (unsigned)(now.tv_nsec / 1000000) % 1000u,
             rh);
    return 0;
}

/* ---- jobs ------------------------------------------------------------- */

struct jstore {
    char name[BK_NAME_LEN];
    sqlite3 *db;
    uint64_t plain_len;
};

struct backup_job {
    struct backup_keys keys;
    char id[BACKUP_ID_LEN];
    struct jstore *s;
    size_t n, cap;
    uint64_t bytes, total;
    unsigned busy_mbps;        /* 0: not paced */
    backup_media_fn media;     /* or NULL */
    void *media_ctx;
    struct cs_position *chain; /* continuous mode, or NULL */
};

int backup_job_new(const struct backup_keys *keys, struct backup_job **out)
{
    *out = NULL;
    if (!keys || !keys->outer)
        return AT_EINVAL;
    struct backup_job *j = calloc(1, sizeof *j);
    if (!j)
        return AT_ENOMEM;
    j->keys = *keys;
    int rc;
    if ((rc = bk_new_id(j->id)) != 0) {
        free(j);
        return rc;
    }
    *out = j;
    return 0;
}

void backup_job_set_busy_mbps(struct backup_job *j, unsigned busy_mbps)
{
    j->busy_mbps = busy_mbps;
}

void backup_job_set_media(struct backup_job *j, backup_media_fn fn, void *ctx)
{
    j->media = fn;
    j->media_ctx = ctx;
}

/* The media key and prefix of backup id under its keys k. */
static int media_key_of(const struct bk_keys *k, const char *id, uint8_t *key, char *prefix,
                        size_t prefix_cap)
{
    snprintf(prefix, prefix_cap, "%s/m/", id);
    return kdf_hkdf_sha256(k->data, sizeof k->data, id, "atrest backup v1 media", key,
                           BACKUP_MEDIA_KEY_LEN);
}

/* Let the media hook change store idx's snapshot in plain. */
static int media_step(struct backup_job *j, const struct bk_keys *k, struct blob_store *bs,
                      uint32_t idx, struct bk_mem *plain)
{
    uint8_t *key = secmem_alloc(BACKUP_MEDIA_KEY_LEN);
    char prefix[BACKUP_ID_LEN + 8];
    sqlite3 *db = NULL;
    int rc = key ? media_key_of(k, j->id, key, prefix, sizeof prefix) : AT_ENOMEM;
    if (!rc)
        rc = bk_image_open(plain, &db);
    if (!rc && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = at_error_set(AT_ESQLITE, "the snapshot: %s", sqlite3_errmsg(db));
    if (!rc)
        rc = j->media(j->media_ctx, j->s[idx].name, db, key, prefix, bs);
    if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = at_error_set(AT_ESQLITE, "the snapshot: %s", sqlite3_errmsg(db));
    if (db)
        bk_image_close(plain, db);
    secmem_free(key, BACKUP_MEDIA_KEY_LEN);
    return rc;
}

const char *backup_job_id(const struct backup_job *j)
{
    return j->id;
}

uint64_t backup_job_bytes(const struct backup_job *j)
{
    return j->bytes;
}

int backup_job_add(struct backup_job *j, const char *store_name, struct store *st)
{
    if (strlen(store_name) >= BK_NAME_LEN || j->n == BACKUP_MAX_STORES)
        return AT_EINVAL;
    if (j->n == j->cap) {
        size_t nc = j->cap ? 2 * j->cap : 8;
        struct jstore *v = realloc(j->s, nc * sizeof *v);
        if (!v)
            return AT_ENOMEM;
        j->s = v;
        j->cap = nc;
    }
    struct jstore *s = &j->s[j->n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", store_name);
    int rc = store_connect(st, &s->db);
    if (rc)
        return rc;
    /* BEGIN, then a read: the read transaction (and its WAL snapshot)
     * starts here and lasts until backup_job_run is done with the store. */
    sqlite3_stmt *q = NULL;
    int src = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(s->db, "PRAGMA page_count", -1, &q, NULL);
    if (src == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        s->plain_len = (uint64_t)sqlite3_column_int64(q, 0) * PAGE_SIZE;
    else if (src == SQLITE_OK)
        src = sqlite3_errcode(s->db);
    sqlite3_finalize(q);
    if (src != SQLITE_OK) {
        rc = at_error_set(AT_ESQLITE, "store %s: cannot start its snapshot: %s", store_name,
                          sqlite3_errmsg(s->db));
        store_disconnect(s->db);
        return rc;
    }
    j->total += s->plain_len;
    j->n++;
    return 0;
}

static void end_snapshot(struct jstore *s)
{
    if (s->db) {
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        store_disconnect(s->db);
        s->db = NULL;
    }
}

void backup_job_free(struct backup_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++)
        end_snapshot(&j->s[i]);
    if (j->chain)
        free(j->chain->stores);
    free(j->chain);
    free(j->s);
    free(j);
}

int backup_job_set_chain(struct backup_job *j, const char *epoch, uint64_t first_seg,
                         int64_t t_end_us, const struct backup_chain_store *stores, size_t n)
{
    if (j->chain || n > BACKUP_MAX_STORES || strlen(epoch) >= BACKUP_ID_LEN)
        return AT_EINVAL;
    struct cs_position *p = calloc(1, sizeof *p);
    if (!p || !(p->stores = calloc(n ? n : 1, sizeof *p->stores))) {
        free(p);
        return AT_ENOMEM;
    }
    snprintf(p->id, sizeof p->id, "%s", j->id);
    snprintf(p->epoch, sizeof p->epoch, "%s", epoch);
    p->first_seg = first_seg;
    p->t_end_us = t_end_us;
    p->nstores = (uint32_t)n;
    memcpy(p->stores, stores, n * sizeof *stores);
    j->chain = p;
    return 0;
}

/* The put source of one store blob: header, then each chunk's ciphertext
 * and tag. The chunks are sealed in place in the snapshot buffer by a
 * worker thread running ahead of the put (the put's own SHA-256 and writes
 * take the calling thread), so sealing and storing overlap on two cores.
 * The worker publishes how many chunks are sealed under mu; the source
 * waits for the chunk it is about to emit. */
struct seal_src {
    const struct bk_keys *k;
    const char *id, *store;
    uint32_t idx, chunk_size, chunks;
    struct bk_mem *plain; /* sealed in place: ciphertext once sealed */
    uint8_t (*tags)[AEAD_TAG_LEN];
    uint8_t hdr[BK_STORE_HDR];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t sealed; /* chunks sealed so far (mu) */
    int stop;        /* the put gave up: the worker stops (mu) */
    int err;         /* the worker's failure (mu) */
    /* the put's position: the chunk being emitted (UINT32_MAX: the
     * header) and the offset in its record (ciphertext | tag) */
    uint32_t emit;
    size_t rec_off;
    uint64_t produced, done_before, total;
    backup_progress_fn progress;
    void *pctx;
    /* pacing while the stores are busy (backup_job_set_busy_mbps) */
    double busy_bps;     /* 0: never paced */
    double due;          /* paced: when the bytes put so far may be done */
    double checked;      /* when the storage layer's counter was last read, */
    uint64_t vfs_sealed; /* its value then, */
    int busy;            /* and whether it had moved */
};

#define PACE_WINDOW 0.05 /* seconds between looks at the stores' activity */

/* After each chunk (n bytes) is handed to the put: while foreground commits
 * seal pages, sleep so that the put runs at busy_bps; a quiet spell puts at
 * full speed and builds up no credit. The first look covers the time since
 * the store's snapshot began. */
static void pace(struct seal_src *s, size_t n)
{
    if (s->busy_bps <= 0)
        return;
    double t = mono_seconds();
    if (t - s->checked >= PACE_WINDOW) {
        struct vfs_stats st;
        vfs_stats_get(&st);
        s->busy = st.pages_sealed != s->vfs_sealed;
        s->vfs_sealed = st.pages_sealed;
        s->checked = t;
    }
    if (!s->busy || s->due < t - PACE_WINDOW)
        s->due = t;
    s->due += (double)n / s->busy_bps;
    if (s->busy && s->due > t)
        usleep((useconds_t)((s->due - t) * 1e6));
}

static size_t chunk_bytes(const struct seal_src *s, uint32_t c)
{
    uint64_t off = (uint64_t)c * s->chunk_size;
    return s->plain->len - off < s->chunk_size ? (size_t)(s->plain->len - off) : s->chunk_size;
}

static void *seal_worker(void *arg)
{
    struct seal_src *s = arg;
    for (uint32_t c = 0; c < s->chunks; c++) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        uint8_t *p = s->plain->p + (uint64_t)c * s->chunk_size;
        size_t len = chunk_bytes(s, c);
        int rc = bk_chunk_seal(s->k, s->id, s->store, s->idx, c, c + 1 == s->chunks,
                               s->plain->len, p, len, p, s->tags[c]);
        pthread_mutex_lock(&s->mu);
        if (rc)
            s->err = rc;
        else
            s->sealed = c + 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (rc)
            break;
    }
    return NULL;
}

/* Wait until chunk c is sealed (0) or the worker failed (its code). */
static int wait_sealed(struct seal_src *s, uint32_t c)
{
    pthread_mutex_lock(&s->mu);
    while (s->sealed <= c && !s->err)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = s->sealed > c ? 0 : s->err;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Copy up to want bytes of the record a|b from offset off into dst. */
static size_t copy_record(uint8_t *dst, size_t want, const uint8_t *a, size_t alen,
                          const uint8_t *b, size_t blen, size_t off)
{
    size_t n = 0;
    if (off < alen) {
        n = alen - off < want ? alen - off : want;
        memcpy(dst, a + off, n);
        off += n;
    }
    if (n < want && off < alen + blen) {
        size_t m = alen + blen - off < want - n ? alen + blen - off : want - n;
        memcpy(dst + n, b + (off - alen), m);
        n += m;
    }
    return n;
}

static int seal_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct seal_src *s = ctx;
    size_t n = 0;
    while (n < cap) {
        if (s->emit == UINT32_MAX) { /* the header */
            size_t c = copy_record(buf + n, cap - n, s->hdr, sizeof s->hdr, NULL, 0, s->rec_off);
            n += c;
            if ((s->rec_off += c) == sizeof s->hdr)
                s->emit = 0, s->rec_off = 0;
            continue;
        }
        if (s->emit == s->chunks)
            break;
        int rc = s->rec_off == 0 ? wait_sealed(s, s->emit) : 0;
        if (rc)
            return rc;
        size_t clen = chunk_bytes(s, s->emit);
        const uint8_t *ct = s->plain->p + (uint64_t)s->emit * s->chunk_size;
        size_t c = copy_record(buf + n, cap - n, ct, clen, s->tags[s->emit], AEAD_TAG_LEN,
                               s->rec_off);
        n += c;
        if ((s->rec_off += c) == clen + AEAD_TAG_LEN) {
            if (s->progress)
                s->progress(s->pctx, "backup",
                            s->done_before + (uint64_t)s->emit * s->chunk_size + clen, s->total);
            s->emit++;
            s->rec_off = 0;
            pace(s, clen + AEAD_TAG_LEN);
        }
    }
    s->produced += n;
    *got = n;
    return 0;
}

static int put_store(struct backup_job *j, struct blob_store *bs, const struct bk_keys *k,
                     uint32_t idx, uint32_t chunk_size, struct bk_store *rec, uint64_t done_before,
                     backup_progress_fn progress, void *pctx)
{
    struct jstore *js = &j->s[idx];
    struct bk_mem plain = {0};
    struct vfs_stats vs;
    vfs_stats_get(&vs);
    double t_start = mono_seconds();
    /* One mapping of the store's size up front (it would otherwise grow by
     * doubling, copying what it holds each time). */
    int rc = bk_mem_reserve(&plain, js->plain_len);
    if (!rc)
        rc = bk_snapshot(js->db, &plain);
    end_snapshot(js); /* the snapshot is in memory: let the WAL move on */
    if (!rc && j->media)
        rc = media_step(j, k, bs, idx, &plain);
    if (rc) {
        bk_mem_free(&plain);
        return add_context(rc, "store %s", js->name);
    }
    if (plain.len == 0 || plain.len % PAGE_SIZE) {
        bk_mem_free(&plain);
        return at_error_set(AT_EFORMAT, "store %s: snapshot of %zu bytes is not whole pages",
                            js->name, plain.len);
    }
    snprintf(rec->name, sizeof rec->name, "%s", js->name);
    rec->plain_len = plain.len;
    rec->pages = (uint32_t)(plain.len / PAGE_SIZE);
    rec->chunks = (uint32_t)((plain.len + chunk_size - 1) / chunk_size);
    rec->blob_len = BK_STORE_HDR + plain.len + (uint64_t)rec->chunks * AEAD_TAG_LEN;
    struct seal_src s = {
        .k = k,
        .id = j->id,
        .store = js->name,
        .idx = idx,
        .chunk_size = chunk_size,
        .chunks = rec->chunks,
        .plain = &plain,
        .tags = calloc(rec->chunks, AEAD_TAG_LEN),
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
        .emit = UINT32_MAX,
        .done_before = done_before,
        .total = j->total,
        .progress = progress,
        .pctx = pctx,
        .busy_bps = (double)j->busy_mbps * 1e6,
    };
    pthread_t worker;
    if (!s.tags) {
        rc = AT_ENOMEM;
        goto out;
    }
    if ((rc = pthread_create(&worker, NULL, seal_worker, &s)) != 0) {
        rc = at_error_set(AT_ENOMEM, "store %s: cannot start the sealing thread: %s", js->name,
                          strerror(rc));
        goto out;
    }
    bk_store_hdr(s.hdr, chunk_size, rec->chunks, plain.len, idx);
    char name[BLOB_NAME_MAX];
    bk_store_blob_name(j->id, idx, name, sizeof name);
    struct blob_put_stats st = {0};
    s.vfs_sealed = vs.pages_sealed;
    s.checked = t_start - PACE_WINDOW;
    rc = blob_put(bs, name, seal_source, &s, &st);
    pthread_mutex_lock(&s.mu);
    s.stop = 1;
    pthread_mutex_unlock(&s.mu);
    pthread_join(worker, NULL);
    if (!rc && s.produced != rec->blob_len)
        rc = at_error_set(AT_EIO, "store %s: wrote %llu bytes, expected %llu", js->name,
                          (unsigned long long)s.produced, (unsigned long long)rec->blob_len);
    if (!rc) {
        memcpy(rec->sha256, st.sha256, sizeof rec->sha256); /* the blob store hashed it */
        j->bytes += s.produced;
    }
out:
    free(s.tags);
    bk_mem_free(&plain);
    return rc;
}

int bk_make_shares(const struct backup_keys *keys, const char *id, struct bk_manifest *m,
                   struct bk_keys *k)
{
    struct key_provider *kp[2] = {keys->outer, keys->inner};
    uint8_t *ikm = secmem_alloc(2 * BK_SHARE_LEN);
    if (!ikm)
        return AT_ENOMEM;
    int rc = 0;
    m->layers = keys->inner ? 2 : 1;
    for (uint32_t i = 0; i < m->layers && !rc; i++) {
        uint8_t *share = ikm + i * BK_SHARE_LEN;
        rc = rand_key(share, BK_SHARE_LEN);
        if (!rc)
            rc = kp_key_id(kp[i], m->share[i].key_id, sizeof m->share[i].key_id);
        if (!rc)
            rc = kp_wrap(kp[i], share, BK_SHARE_LEN, &m->share[i].w);
        if (rc)
            at_error_set(rc, "cannot wrap the backup key (layer %u): %s", i, at_strerror(rc));
    }
    if (!rc)
        rc = bk_derive(ikm, m->layers * BK_SHARE_LEN, id, k);
    secmem_free(ikm, 2 * BK_SHARE_LEN);
    return rc;
}

struct mem_src {
    const uint8_t *p;
    size_t len, off;
};

static int mem_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct mem_src *m = ctx;
    size_t n = m->len - m->off < cap ? m->len - m->off : cap;
    memcpy(buf, m->p + m->off, n);
    m->off += n;
    *got = n;
    return 0;
}

int bk_put_mem(struct blob_store *bs, const char *name, const uint8_t *buf, size_t len)
{
    struct mem_src ms = {buf, len, 0};
    return blob_put(bs, name, mem_source, &ms, NULL);
}

int backup_job_run(struct backup_job *j, struct blob_store *bs, backup_progress_fn progress,
                   void *ctx)
{
    struct bk_manifest m = {0};
    struct bk_keys *k = secmem_alloc(sizeof *k);
    uint8_t *man = NULL;
    size_t man_len = 0;
    int rc = 0;
    if (!k)
        return AT_ENOMEM;
    if (j->n == 0) {
        rc = at_error_set(AT_EINVAL, "backup %s: no stores", j->id);
        goto out;
    }
    snprintf(m.id, sizeof m.id, "%s", j->id);
    snprintf(m.version, sizeof m.version, "%s", BK_SERVER_VERSION);
    m.created = (int64_t)time(NULL);
    m.chunk_size = BACKUP_CHUNK_DEFAULT;
    m.page_size = PAGE_SIZE;
    m.nstores = (uint32_t)j->n;
    m.stores = calloc(j->n, sizeof *m.stores);
    if (!m.stores) {
        rc = AT_ENOMEM;
        goto out;
    }
    if ((rc = bk_make_shares(&j->keys, j->id, &m, k)) != 0)
        goto out;
    uint64_t done = 0;
    for (uint32_t i = 0; i < m.nstores; i++) {
        rc = put_store(j, bs, k, i, m.chunk_size, &m.stores[i], done, progress, ctx);
        if (rc) {
            add_context(rc, "backup %s", j->id);
            goto out;
        }
        done += m.stores[i].plain_len;
    }
    char name[BLOB_NAME_MAX];
    if (j->chain) {
        uint8_t *pos = NULL;
        size_t pos_len = 0;
        rc = cs_position_encode(j->chain, k, &pos, &pos_len);
        snprintf(name, sizeof name, "%s/position", j->id);
        if (!rc && (rc = bk_put_mem(bs, name, pos, pos_len)) != 0)
            add_context(rc, "backup %s: writing its log position", j->id);
        free(pos);
        if (rc)
            goto out;
        j->bytes += pos_len;
    }
    if ((rc = bk_manifest_encode(&m, k, &man, &man_len)) != 0)
        goto out;
    manifest_name(j->id, name, sizeof name);
    if ((rc = bk_put_mem(bs, name, man, man_len)) != 0) {
        add_context(rc, "backup %s: writing the manifest", j->id);
        goto out;
    }
    j->bytes += man_len;
out:
    if (rc) {
        /* No manifest: the backup does not exist; remove what it left. */
        char keep[256];
        snprintf(keep, sizeof keep, "%s", at_error_detail());
        int ignored = bk_delete_backup(bs, j->id); /* its stores, media, position */
        (void)ignored;
        at_error_set(rc, "%s", keep);
    }
    free(man);
    bk_manifest_free(&m);
    secmem_free(k, sizeof *k);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

struct buf_sink {
    uint8_t *p;
    size_t len, cap, max;
};

static int buf_sink(void *ctx, const uint8_t *b, size_t n)
{
    struct buf_sink *s = ctx;
    if (s->len + n > s->max)
        return at_error_set(AT_EFORMAT, "the backup manifest is larger than any atrest writes");
    if (s->len + n > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4096;
        while (nc < s->len + n)
            nc *= 2;
        uint8_t *v = realloc(s->p, nc);
        if (!v)
            return AT_ENOMEM;
        s->p = v;
        s->cap = nc;
    }
    memcpy(s->p + s->len, b, n);
    s->len += n;
    return 0;
}

int bk_get_all(struct blob_store *bs, const char *name, size_t max, uint8_t **out, size_t *len)
{
    struct buf_sink s = {.max = max};
    int rc = blob_get(bs, name, 0, UINT64_MAX, buf_sink, &s);
    if (rc) {
        free(s.p);
        return rc;
    }
    *out = s.p;
    *len = s.len;
    return 0;
}

int bk_load_manifest(struct blob_store *bs, const struct backup_keys *keys, const char *name,
                     const char *id, struct bk_manifest *m, struct bk_keys **kout)
{
    if (kout)
        *kout = NULL;
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = bk_get_all(bs, name, BK_MANIFEST_MAX, &b, &len);
    if (rc == AT_ENOTFOUND)
        rc = at_error_set(AT_ENOTFOUND, "no backup %s (no %s)", id, name);
    else if (rc)
        add_context(rc, "backup %s: reading %s", id, name);
    if (!rc && (rc = bk_manifest_decode(b, len, m)) != 0)
        add_context(rc, "backup %s", id);
    if (!rc && strcmp(m->id, id) != 0)
        rc = at_error_set(AT_EINTEGRITY, "backup %s: its manifest names backup %s", id, m->id);
    if (!rc && keys) {
        struct bk_keys *k = NULL;
        rc = bk_unwrap(m, keys, &k);
        if (!rc && bk_manifest_check(b, len, k) != 0)
            rc = at_error_set(AT_EINTEGRITY,
                              "backup %s: the manifest failed authentication (edited or damaged)",
                              id);
        if (!rc && kout)
            *kout = k;
        else
            bk_keys_free(k);
    }
    if (rc)
        bk_manifest_free(m);
    free(b);
    return rc;
}

/* Get and parse <id>/manifest; with keys, authenticate it (and keep the
 * derived keys in *kout when kout is given). */
static int load_manifest(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                         struct bk_manifest *m, struct bk_keys **kout)
{
    char name[BLOB_NAME_MAX];
    if (kout)
        *kout = NULL;
    if (strlen(id) >= BACKUP_ID_LEN || blob_name_check(id) != 0 || strchr(id, '/'))
        return at_error_set(AT_EINVAL, "'%s' is not a backup id", id);
    manifest_name(id, name, sizeof name);
    return bk_load_manifest(bs, keys, name, id, m, kout);
}

int backup_media_key(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                     uint8_t *key, char *prefix, size_t prefix_cap)
{
    struct bk_manifest m = {0};
    struct bk_keys *k = NULL;
    int rc = load_manifest(bs, keys, id, &m, &k);
    if (!rc)
        rc = media_key_of(k, id, key, prefix, prefix_cap);
    bk_manifest_free(&m);
    secmem_free(k, sizeof *k);
    return rc;
}

static uint64_t manifest_len_of(const struct bk_manifest *m)
{
    return BK_HDR + (uint64_t)m->layers * BK_SHARE_REC + (uint64_t)m->nstores * BK_STORE_REC +
           BK_MAC_LEN;
}

static void fill_info(const struct bk_manifest *m, struct backup_info *info, int verified)
{
    memset(info, 0, sizeof *info);
    snprintf(info->id, sizeof info->id, "%s", m->id);
    info->created = m->created;
    snprintf(info->server_version, sizeof info->server_version, "%s", m->version);
    info->nstores = m->nstores;
    info->bytes = manifest_len_of(m);
    for (uint32_t i = 0; i < m->nstores; i++) {
        info->bytes += m->stores[i].blob_len;
        info->plain_bytes += m->stores[i].plain_len;
    }
    info->verified = verified;
}

/* Backup ids that have a manifest (sorted: ids start with their time). */
struct idlist {
    char (*id)[BACKUP_ID_LEN];
    size_t n, cap;
    int orphans; /* collect ids of any blob, manifest or not */
};

static int id_of(const char *name, char id[BACKUP_ID_LEN], int *is_manifest)
{
    const char *slash = strchr(name, '/');
    if (!slash || slash == name || (size_t)(slash - name) >= BACKUP_ID_LEN ||
        strncmp(name, "cont/", 5) == 0) /* the continuous log (ship.c) */
        return -1;
    memcpy(id, name, (size_t)(slash - name));
    id[slash - name] = 0;
    *is_manifest = strcmp(slash + 1, "manifest") == 0;
    return 0;
}

/* Listings come in name order and the continuous log's names ("cont/...")
 * sort after every backup id (ids start with a digit): a listing of
 * backups stops there, however long the log is. */
#define LIST_DONE (-1999)
#define IS_LOG(name) (strncmp((name), "cont/", 5) == 0)

static int collect(void *ctx, const struct blob_info *info)
{
    struct idlist *l = ctx;
    char id[BACKUP_ID_LEN];
    int is_manifest;
    if (IS_LOG(info->name))
        return LIST_DONE;
    if (id_of(info->name, id, &is_manifest) != 0 || (!is_manifest && !l->orphans))
        return 0;
    if (l->n && strcmp(l->id[l->n - 1], id) == 0)
        return 0; /* names come in order: one entry per id */
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *v = realloc(l->id, nc * sizeof *l->id);
        if (!v)
            return AT_ENOMEM;
        l->id = v;
        l->cap = nc;
    }
    memcpy(l->id[l->n++], id, BACKUP_ID_LEN);
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int list_ids(struct blob_store *bs, struct idlist *l)
{
    int rc = blob_list(bs, "", collect, l);
    if (rc == LIST_DONE)
        rc = 0;
    if (rc) {
        free(l->id);
        l->id = NULL;
        l->n = 0;
        return rc;
    }
    if (l->n > 1)
        qsort(l->id, l->n, sizeof *l->id, cmp_id);
    return 0;
}

int backup_list(struct blob_store *bs, const struct backup_keys *keys, struct backup_info **out,
                size_t *n)
{
    *out = NULL;
    *n = 0;
    struct idlist l = {0};
    int rc = list_ids(bs, &l);
    if (rc)
        return rc;
    struct backup_info *v = calloc(l.n ? l.n : 1, sizeof *v);
    if (!v) {
        free(l.id);
        return AT_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct bk_manifest m;
        int vr = 0;
        rc = load_manifest(bs, keys, l.id[i], &m, NULL);
        if (rc && keys && (rc == AT_EINTEGRITY || rc == AT_EKEYMISMATCH)) {
            /* List it as failing rather than hide it. */
            if (load_manifest(bs, NULL, l.id[i], &m, NULL) == 0)
                rc = 0, vr = -1;
        } else if (!rc && keys)
            vr = 1;
        if (rc == AT_EFORMAT || rc == AT_EINTEGRITY) {
            memset(&v[k], 0, sizeof v[k]);
            snprintf(v[k].id, sizeof v[k].id, "%s", l.id[i]);
            v[k++].verified = -1;
            rc = 0;
            continue;
        }
        if (rc)
            break;
        fill_info(&m, &v[k++], vr);
        bk_manifest_free(&m);
    }
    free(l.id);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int backup_key_ids(struct blob_store *bs, const char *id, char ids[2][KP_KEY_ID_MAX],
                   int *layers)
{
    char latest[BACKUP_ID_LEN];
    int rc = id ? 0 : backup_latest(bs, latest);
    struct bk_manifest m;
    if (!rc)
        rc = load_manifest(bs, NULL, id ? id : latest, &m, NULL);
    if (rc)
        return rc;
    *layers = (int)m.layers;
    for (uint32_t l = 0; l < m.layers && l < 2; l++)
        snprintf(ids[l], KP_KEY_ID_MAX, "%s", m.share[l].key_id);
    bk_manifest_free(&m);
    return 0;
}

int backup_latest(struct blob_store *bs, char id[BACKUP_ID_LEN])
{
    struct idlist l = {0};
    int rc = list_ids(bs, &l);
    if (rc)
        return rc;
    if (l.n == 0)
        rc = at_error_set(AT_ENOTFOUND, "the target holds no backup");
    else
        memcpy(id, l.id[l.n - 1], BACKUP_ID_LEN);
    free(l.id);
    return rc;
}

/* Streams one store blob: checks the header against the manifest, opens
 * each chunk as soon as it is whole, hands its pages to page_fn (may be
 * NULL), and at the end compares chunk count, length and SHA-256. */

struct open_sink {
    const struct bk_manifest *m;
    const struct bk_store *st;
    const struct bk_keys *k;
    uint32_t idx;
    uint8_t hdr[BK_STORE_HDR];
    size_t hdr_len;
    uint8_t *rec; /* ciphertext | tag of the chunk being received */
    size_t rec_len;
    struct bk_mem plain;
    uint32_t chunk;
    uint64_t got;
    EVP_MD_CTX *sha;
    bk_page_fn fn;
    void *fn_ctx;
    uint64_t done_before, total;
    const char *phase;
    backup_progress_fn progress;
    void *pctx;
};

static size_t chunk_len(const struct open_sink *s, uint32_t c)
{
    uint64_t off = (uint64_t)c * s->m->chunk_size;
    uint64_t left = s->st->plain_len - off;
    return left < s->m->chunk_size ? (size_t)left : s->m->chunk_size;
}

static int open_chunk(struct open_sink *s)
{
    size_t len = chunk_len(s, s->chunk);
    int last = s->chunk + 1 == s->st->chunks;
    int rc = bk_chunk_open(s->k, s->m->id, s->st->name, s->idx, s->chunk, last, s->st->plain_len,
                           s->rec, len, s->plain.p, s->rec + len);
    if (rc)
        return at_error_set(AT_EINTEGRITY,
                            "backup %s, store %s: chunk %u of %u failed authentication "
                            "(damaged, edited, reordered or from another store)",
                            s->m->id, s->st->name, s->chunk, s->st->chunks);
    for (size_t off = 0; s->fn && off < len; off += PAGE_SIZE) {
        rc = s->fn(s->fn_ctx, s->plain.p + off);
        if (rc)
            return rc;
    }
    secmem_wipe(s->plain.p, len);
    s->chunk++;
    s->rec_len = 0;
    if (s->progress)
        s->progress(s->pctx, s->phase,
                    s->done_before + (uint64_t)(s->chunk - 1) * s->m->chunk_size + len, s->total);
    return 0;
}

static int open_sink_fn(void *ctx, const uint8_t *b, size_t n)
{
    struct open_sink *s = ctx;
    if (EVP_DigestUpdate(s->sha, b, n) != 1)
        return AT_ECRYPTO;
    s->got += n;
    if (s->got > s->st->blob_len)
        return at_error_set(AT_EINTEGRITY, "backup %s, store %s: the blob is longer than its "
                                           "manifest says", s->m->id, s->st->name);
    while (n) {
        if (s->hdr_len < BK_STORE_HDR) {
            size_t take = BK_STORE_HDR - s->hdr_len < n ? BK_STORE_HDR - s->hdr_len : n;
            memcpy(s->hdr + s->hdr_len, b, take);
            s->hdr_len += take;
            b += take;
            n -= take;
            if (s->hdr_len == BK_STORE_HDR) {
                uint8_t want[BK_STORE_HDR];
                bk_store_hdr(want, s->m->chunk_size, s->st->chunks, s->st->plain_len, s->idx);
                if (memcmp(want, s->hdr, BK_STORE_HDR) != 0)
                    return at_error_set(AT_EINTEGRITY,
                                        "backup %s, store %s: the blob's header does not match "
                                        "the manifest (damaged or swapped)",
                                        s->m->id, s->st->name);
            }
            continue;
        }
        if (s->chunk >= s->st->chunks)
            return at_error_set(AT_EINTEGRITY, "backup %s, store %s: bytes after the last chunk",
                                s->m->id, s->st->name);
        size_t want = chunk_len(s, s->chunk) + AEAD_TAG_LEN;
        size_t take = want - s->rec_len < n ? want - s->rec_len : n;
        memcpy(s->rec + s->rec_len, b, take);
        s->rec_len += take;
        b += take;
        n -= take;
        if (s->rec_len == want) {
            int rc = open_chunk(s);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int bk_read_store(struct blob_store *bs, const struct bk_manifest *m, const struct bk_keys *k,
                      uint32_t idx, bk_page_fn fn, void *fn_ctx, uint64_t done_before,
                      uint64_t total, const char *phase, backup_progress_fn progress, void *pctx)
{
    const struct bk_store *st = &m->stores[idx];
    struct open_sink s = {
        .m = m,
        .st = st,
        .k = k,
        .idx = idx,
        .rec = malloc(m->chunk_size + AEAD_TAG_LEN),
        .sha = EVP_MD_CTX_new(),
        .fn = fn,
        .fn_ctx = fn_ctx,
        .done_before = done_before,
        .total = total,
        .phase = phase,
        .progress = progress,
        .pctx = pctx,
    };
    int rc = 0;
    if (!s.rec || !s.sha || EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL) != 1 ||
        (rc = bk_mem_reserve(&s.plain, m->chunk_size)) != 0) {
        rc = rc ? rc : AT_ENOMEM;
        goto out;
    }
    char name[BLOB_NAME_MAX];
    bk_store_blob_name(m->id, idx, name, sizeof name);
    rc = blob_get(bs, name, 0, UINT64_MAX, open_sink_fn, &s);
    if (rc == AT_ENOTFOUND)
        rc = at_error_set(AT_EINTEGRITY, "backup %s, store %s: its blob %s is missing", m->id,
                          st->name, name);
    else if (rc == AT_EINTEGRITY || rc == AT_EFORMAT) {
        if (!strstr(at_error_detail(), "backup "))
            add_context(AT_EINTEGRITY, "backup %s, store %s", m->id, st->name);
        rc = AT_EINTEGRITY;
    } else if (rc && !strstr(at_error_detail(), name))
        add_context(rc, "backup %s, store %s", m->id, st->name);
    uint8_t sha[32];
    unsigned int dl = 0;
    if (!rc && (s.got != st->blob_len || s.chunk != st->chunks))
        rc = at_error_set(AT_EINTEGRITY,
                          "backup %s, store %s: the blob is truncated (%llu of %llu bytes, %u of "
                          "%u chunks)",
                          m->id, st->name, (unsigned long long)s.got,
                          (unsigned long long)st->blob_len, s.chunk, st->chunks);
    if (!rc && (EVP_DigestFinal_ex(s.sha, sha, &dl) != 1 || dl != 32))
        rc = AT_ECRYPTO;
    if (!rc && memcmp(sha, st->sha256, 32) != 0)
        rc = at_error_set(AT_EINTEGRITY,
                          "backup %s, store %s: the blob's SHA-256 differs from the manifest's",
                          m->id, st->name);
out:
    EVP_MD_CTX_free(s.sha);
    free(s.rec);
    bk_mem_free(&s.plain);
    return rc;
}

static uint64_t plain_total(const struct bk_manifest *m)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < m->nstores; i++)
        t += m->stores[i].plain_len;
    return t;
}

int backup_verify(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                  backup_progress_fn progress, void *ctx, struct backup_info *info)
{
    struct bk_manifest m;
    struct bk_keys *k = NULL;
    if (!keys)
        return AT_EINVAL;
    int rc = load_manifest(bs, keys, id, &m, &k);
    if (rc)
        return rc;
    uint64_t total = plain_total(&m), done = 0;
    for (uint32_t i = 0; i < m.nstores && !rc; i++) {
        rc = bk_read_store(bs, &m, k, i, NULL, NULL, done, total, "verify", progress, ctx);
        done += m.stores[i].plain_len;
    }
    if (!rc && info)
        fill_info(&m, info, 1);
    bk_keys_free(k);
    bk_manifest_free(&m);
    return rc;
}

int bk_import_page(void *ctx, uint8_t *page)
{
    return store_import_page(ctx, page);
}

int bk_check_empty(struct store_env *env)
{
    char one[1][KEYRING_NAME_MAX];
    uint8_t oneid[1][KEYRING_FILE_ID_LEN];
    size_t have = 0;
    int rc = keyring_list_files(store_env_keyring(env), one, oneid, 1, &have);
    if (!rc && have)
        rc = at_error_set(AT_EEXIST, "restore goes to a new, empty data folder; %s holds stores",
                          store_env_data_dir(env));
    return rc;
}

int backup_restore(struct blob_store *bs, const struct backup_keys *keys, const char *id,
                   struct store_env *env, backup_progress_fn progress, void *ctx,
                   struct backup_info *info)
{
    struct bk_manifest m;
    struct bk_keys *k = NULL;
    if (!keys)
        return AT_EINVAL;
    int rc = bk_check_empty(env);
    if (rc)
        return rc;
    if ((rc = load_manifest(bs, keys, id, &m, &k)) != 0)
        return rc;
    uint64_t total = plain_total(&m), done = 0;
    uint32_t made = 0;
    for (uint32_t i = 0; i < m.nstores && !rc; i++, made = i) {
        struct store_import *im = NULL;
        rc = store_import_begin(env, m.stores[i].name, &im);
        if (rc)
            break;
        rc = bk_read_store(bs, &m, k, i, bk_import_page, im, done, total, "restore", progress, ctx);
        if (rc) {
            store_import_abort(im);
            break;
        }
        if ((rc = store_import_finish(im)) != 0) {
            add_context(rc, "restoring store %s", m.stores[i].name);
            break;
        }
        done += m.stores[i].plain_len;
    }
    if (rc) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", at_error_detail());
        for (uint32_t i = 0; i < made; i++) {
            int ignored = store_drop(env, m.stores[i].name);
            (void)ignored;
        }
        at_error_set(rc, "%s", keep);
    } else if (info)
        fill_info(&m, info, 1);
    bk_keys_free(k);
    bk_manifest_free(&m);
    return rc;
}

/* ---- retention ---------------------------------------------------------- */

static int collect_names(void *ctx, const struct blob_info *info);

int bk_list_names(struct blob_store *bs, const char *prefix, int backups_only,
                  struct bk_names *out)
{
    memset(out, 0, sizeof *out);
    out->backups_only = backups_only;
    int rc = blob_list(bs, prefix, collect_names, out);
    if (rc == LIST_DONE)
        rc = 0;
    if (rc) {
        free(out->v);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

static int collect_names(void *ctx, const struct blob_info *info)
{
    struct bk_names *l = ctx;
    if (l->backups_only && IS_LOG(info->name))
        return LIST_DONE;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *v = realloc(l->v, nc * sizeof *l->v);
        if (!v)
            return AT_ENOMEM;
        l->v = v;
        l->cap = nc;
    }
    snprintf(l->v[l->n++], sizeof *l->v, "%s", info->name);
    return 0;
}

int bk_delete_backup(struct blob_store *bs, const char *id)
{
    char prefix[BACKUP_ID_LEN + 2], name[BLOB_NAME_MAX];
    manifest_name(id, name, sizeof name);
    int rc = blob_delete(bs, name); /* first: the backup is gone at once */
    if (rc && rc != AT_ENOTFOUND)
        return rc;
    snprintf(prefix, sizeof prefix, "%s/", id);
    struct bk_names l = {0};
    rc = blob_list(bs, prefix, collect_names, &l);
    for (size_t i = 0; !rc && i < l.n; i++) {
        rc = blob_delete(bs, l.v[i]);
        if (rc == AT_ENOTFOUND)
            rc = 0;
    }
    free(l.v);
    return rc;
}

int backup_prune(struct blob_store *bs, unsigned keep)
{
    if (keep < 1)
        return AT_EINVAL;
    struct idlist good = {0}, all = {.orphans = 1};
    int rc = list_ids(bs, &good);
    if (!rc)
        rc = list_ids(bs, &all);
    if (!rc && good.n > keep) {
        for (size_t i = 0; !rc && i < good.n - keep; i++)
            rc = bk_delete_backup(bs, good.id[i]);
    }
    /* Leftovers of failed backups older than the newest good one. */
    for (size_t i = 0; !rc && good.n && i < all.n; i++) {
        if (strcmp(all.id[i], good.id[good.n - 1]) >= 0)
            continue;
        int listed = bsearch(all.id[i], good.id, good.n, sizeof *good.id, cmp_id) != NULL;
        if (!listed)
            rc = bk_delete_backup(bs, all.id[i]);
    }
    free(good.id);
    free(all.id);
    return rc;
}
