/*
 * pitr.c — point-in-time restore and retention for continuous mode
 * (contract in backup.h, formats in backupint.h and docs/backup.md).
 *
 *   backup_restore_at(T):
 *     choose ─▶ the newest base whose snapshots began at or before T
 *               (manifest and position authenticated)
 *     scan   ─▶ the base's epoch: key, head, then segments from the base's
 *               first segment on, each authenticated and chained to the
 *               one before; per store, commits after its base position
 *               must follow each other (seq + 1); the first with a time
 *               after T ends that store. Result: for every page the
 *               (segment, offset) of its latest image, and the database
 *               size of the last commit applied. Nothing is written yet.
 *     write  ─▶ every base store through store_import (fresh DEKs), stores
 *               born after the base from nothing; then each segment holding
 *               a winning image once more (its tag must be the one seen in
 *               the scan), those pages written over (store_import_page_at);
 *               each file cut to its size, checked, opened once.
 *
 * Invariant: plaintext pages exist only in memory (a segment body at a
 * time, in an undumpable mapping) and go to disk only sealed under the new
 * account's DEKs. Full-page images make the replay idempotent: applying a
 * commit the base snapshot already holds changes nothing.
 */
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup/backupint.h"
#include "crypto/secmem.h"

#define NO_SEG UINT32_MAX

struct pstore {
    char name[BK_NAME_LEN];
    int base_idx;      /* index in the base manifest, or -1 */
    uint64_t next_seq; /* the commit expected next */
    int done;          /* a commit after T was met */
    uint32_t db_pages; /* size after the last commit applied; 0: none */
    uint32_t base_pages;
    uint32_t *wseg, *woff; /* per page (pgno - 1): latest image, NO_SEG none */
    uint32_t cap;
    struct store_import *im;
    int finished;
};

struct pitr {
    struct blob_store *bs;
    const struct backup_keys *keys;
    int64_t at;
    struct bk_manifest base;
    struct bk_keys *bk; /* the base's keys */
    struct cs_position pos;
    struct bk_manifest em; /* the epoch key blob */
    struct bk_keys *ek;
    struct cs_head head;
    struct pstore *s;
    size_t ns;
    uint8_t (*tags)[AEAD_TAG_LEN]; /* per segment scanned */
    uint8_t *wins;                 /* per segment: holds a winning image */
    size_t nseg;
    struct bk_mem body;
};

static void fmt_time(int64_t us, char *out, size_t n)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, n, "%s.%03dZ", b, (int)(us % 1000000 / 1000));
}

static int load_position(struct blob_store *bs, const char *id, const struct bk_keys *k,
                         struct cs_position *p)
{
    char name[BLOB_NAME_MAX];
    snprintf(name, sizeof name, "%s/position", id);
    uint8_t *b = NULL;
    size_t len = 0;
    int rc =
        bk_get_all(bs, name, CS_POS_HDR + BACKUP_MAX_STORES * CS_POS_REC + BK_MAC_LEN, &b, &len);
    if (!rc && (rc = cs_position_decode(b, len, k, p)) != 0)
        rc = at_error_set(rc, "backup %s: %s", id, at_error_detail());
    if (!rc && strcmp(p->id, id) != 0) {
        free(p->stores);
        p->stores = NULL;
        rc = at_error_set(AT_EINTEGRITY, "backup %s: its position names backup %s", id, p->id);
    }
    free(b);
    return rc;
}

/* Ids of backups that have a manifest and a position, oldest first. */
static int list_bases(struct blob_store *bs, struct bk_names *ids)
{
    struct bk_names all;
    memset(ids, 0, sizeof *ids);
    int rc = bk_list_names(bs, "", 1, &all);
    for (size_t i = 0; !rc && i < all.n; i++) {
        char *slash = strchr(all.v[i], '/');
        if (!slash || strcmp(slash + 1, "position") != 0)
            continue;
        /* the manifest sorts before the position: it is the entry before */
        if (i == 0 || strncmp(all.v[i - 1], all.v[i], (size_t)(slash - all.v[i]) + 1) != 0 ||
            strcmp(all.v[i - 1] + (slash - all.v[i]) + 1, "manifest") != 0)
            continue;
        if (ids->n == ids->cap) {
            size_t nc = ids->cap ? 2 * ids->cap : 16;
            void *v = realloc(ids->v, nc * sizeof *ids->v);
            if (!v) {
                rc = AT_ENOMEM;
                break;
            }
            ids->v = v;
            ids->cap = nc;
        }
        *slash = 0;
        snprintf(ids->v[ids->n++], sizeof *ids->v, "%s", all.v[i]);
    }
    free(all.v);
    if (rc) {
        free(ids->v);
        memset(ids, 0, sizeof *ids);
    }
    return rc;
}

/* The newest base whose snapshots all began at or before at. */
static int choose_base(struct pitr *p)
{
    struct bk_names ids;
    int rc = list_bases(p->bs, &ids);
    if (rc)
        return rc;
    int64_t oldest = 0;
    rc = AT_ENOTFOUND;
    for (size_t i = ids.n; i-- > 0;) {
        char name[BLOB_NAME_MAX];
        snprintf(name, sizeof name, "%s/manifest", ids.v[i]);
        int lrc = bk_load_manifest(p->bs, p->keys, name, ids.v[i], &p->base, &p->bk);
        if (!lrc)
            lrc = load_position(p->bs, ids.v[i], p->bk, &p->pos);
        if (lrc) {
            rc = lrc;
            break;
        }
        if (p->pos.t_end_us <= p->at) {
            rc = 0;
            break;
        }
        oldest = p->pos.t_end_us;
        free(p->pos.stores);
        p->pos.stores = NULL;
        bk_manifest_free(&p->base);
        bk_keys_free(p->bk);
        p->bk = NULL;
    }
    free(ids.v);
    if (rc == AT_ENOTFOUND) {
        char t[40], o[40];
        fmt_time(p->at, t, sizeof t);
        fmt_time(oldest, o, sizeof o);
        rc = at_error_set(AT_EINVAL,
                          oldest ? "%s is before the oldest base backup in the target (the "
                                   "earliest restorable time is %s; older ones are outside the "
                                   "retention window)"
                                 : "%s: the target holds no continuous-mode base backup%s",
                          t, oldest ? o : "");
    }
    return rc;
}

static struct pstore *find_store(struct pitr *p, const char *name, int create)
{
    for (size_t i = 0; i < p->ns; i++)
        if (strcmp(p->s[i].name, name) == 0)
            return &p->s[i];
    if (!create || p->ns == BACKUP_MAX_STORES)
        return NULL;
    void *v = realloc(p->s, (p->ns + 1) * sizeof *p->s);
    if (!v)
        return NULL;
    p->s = v;
    struct pstore *ps = &p->s[p->ns++];
    memset(ps, 0, sizeof *ps);
    snprintf(ps->name, sizeof ps->name, "%s", name);
    ps->base_idx = -1;
    ps->next_seq = 1;
    return ps;
}

static int set_win(struct pstore *ps, uint32_t pgno, uint32_t seg, uint32_t off)
{
    if (pgno == 0)
        return AT_EINTEGRITY;
    if (pgno > ps->cap) {
        uint32_t nc = ps->cap ? ps->cap : 1024;
        while (nc < pgno)
            nc *= 2;
        uint32_t *a = realloc(ps->wseg, nc * sizeof *a);
        if (a)
            ps->wseg = a;
        uint32_t *b = a ? realloc(ps->woff, nc * sizeof *b) : NULL;
        if (!b)
            return AT_ENOMEM;
        ps->woff = b;
        for (uint32_t i = ps->cap; i < nc; i++)
            ps->wseg[i] = NO_SEG;
        ps->cap = nc;
    }
    ps->wseg[pgno - 1] = seg;
    ps->woff[pgno - 1] = off;
    return 0;
}

/* Get segment segno and open it into p->body; its tag into tag. */
static int get_segment(struct pitr *p, uint64_t segno, struct cs_seg_hdr *h,
                       uint8_t tag[AEAD_TAG_LEN])
{
    char name[BLOB_NAME_MAX];
    cs_seg_name(p->pos.epoch, segno, name, sizeof name);
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = bk_get_all(p->bs, name, SIZE_MAX, &b, &len);
    if (rc)
        return rc;
    rc = cs_seg_hdr_decode(b, len, h);
    if (!rc && (strcmp(h->epoch, p->pos.epoch) != 0 || h->segno != segno))
        rc = at_error_set(AT_EINTEGRITY,
                          "log segment %s holds segment %llu of epoch %s "
                          "(moved or swapped)",
                          name, (unsigned long long)h->segno, h->epoch);
    if (!rc)
        rc = bk_mem_reserve(&p->body, h->body_len ? h->body_len : 1);
    if (!rc && cs_seg_open(p->ek, b, len, p->body.p) != 0)
        rc = at_error_set(AT_EINTEGRITY,
                          "log segment %s failed authentication (damaged or "
                          "edited)",
                          name);
    if (!rc) {
        p->body.len = h->body_len;
        memcpy(tag, b + len - AEAD_TAG_LEN, AEAD_TAG_LEN);
    }
    free(b);
    return rc;
}

/* One opened segment body: note every page image that wins so far. */
static int scan_body(struct pitr *p, uint32_t segi, const struct cs_seg_hdr *h)
{
    size_t off = 0;
    for (uint32_t r = 0; r < h->nrec; r++) {
        struct cs_rec rec;
        if (cs_rec_decode(p->body.p + off, p->body.len - off, &rec) != 0)
            return at_error_set(AT_EINTEGRITY, "log segment %llu: record %u is damaged",
                                (unsigned long long)h->segno, r);
        size_t fo = off + CS_REC_HDR;
        struct pstore *ps = find_store(p, rec.name, 1);
        if (!ps)
            return AT_ENOMEM;
        int apply = !ps->done && rec.seq >= ps->next_seq;
        if (apply && rec.seq > ps->next_seq)
            return at_error_set(AT_EINTEGRITY,
                                "store %s: commits %llu to %llu are missing from the log (a "
                                "gap: restore to a time after the next base backup)",
                                rec.name, (unsigned long long)ps->next_seq,
                                (unsigned long long)rec.seq - 1);
        if (!ps->done && rec.seq < ps->next_seq && ps->base_idx < 0)
            return at_error_set(AT_EINTEGRITY, "the log holds commit %llu of store %s twice",
                                (unsigned long long)rec.seq, rec.name);
        if (apply && rec.time_us > p->at)
            ps->done = 1, apply = 0;
        for (uint32_t f = 0; f < rec.nframes; f++) {
            uint32_t pgno;
            size_t next;
            if (cs_frame_next(p->body.p, p->body.len, fo, &pgno, &next) != 0)
                return at_error_set(AT_EINTEGRITY, "log segment %llu: record %u is damaged",
                                    (unsigned long long)h->segno, r);
            if (apply) {
                int rc = set_win(ps, pgno, segi, (uint32_t)fo);
                if (rc)
                    return rc;
            }
            fo = next;
        }
        off = fo;
        if (!apply)
            continue;
        p->wins[segi] = 1;
        ps->db_pages = rec.db_pages;
        ps->next_seq++;
    }
    if (off != p->body.len)
        return at_error_set(AT_EINTEGRITY, "log segment %llu: bytes after its last record",
                            (unsigned long long)h->segno);
    return 0;
}

static int grow_segs(struct pitr *p)
{
    void *t = realloc(p->tags, (p->nseg + 1) * sizeof *p->tags);
    if (t)
        p->tags = t;
    void *w = t ? realloc(p->wins, p->nseg + 1) : NULL;
    if (!w)
        return AT_ENOMEM;
    p->wins = w;
    p->wins[p->nseg] = 0;
    return 0;
}

static int scan_log(struct pitr *p)
{
    char name[BLOB_NAME_MAX];
    snprintf(name, sizeof name, "cont/%s/key", p->pos.epoch);
    int rc = bk_load_manifest(p->bs, p->keys, name, p->pos.epoch, &p->em, &p->ek);
    if (rc == AT_ENOTFOUND)
        return at_error_set(AT_EINTEGRITY, "the key of log epoch %s is missing", p->pos.epoch);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "cont/%s/head", p->pos.epoch);
    uint8_t *b = NULL;
    size_t len = 0;
    rc = bk_get_all(p->bs, name, CS_HEAD_LEN, &b, &len);
    if (rc == AT_ENOTFOUND)
        rc = at_error_set(AT_EINTEGRITY, "the head of log epoch %s is missing", p->pos.epoch);
    if (!rc)
        rc = cs_head_decode(b, len, p->ek, &p->head);
    free(b);
    if (!rc && strcmp(p->head.epoch, p->pos.epoch) != 0)
        rc = at_error_set(AT_EINTEGRITY, "the head of log epoch %s names epoch %s", p->pos.epoch,
                          p->head.epoch);
    if (rc)
        return rc;
    /* Base stores in manifest order (meta first); stores born later follow
     * as the log names them. */
    for (uint32_t i = 0; i < p->base.nstores; i++) {
        struct pstore *ps = find_store(p, p->base.stores[i].name, 1);
        if (!ps)
            return AT_ENOMEM;
        ps->base_idx = (int)i;
        ps->base_pages = p->base.stores[i].pages;
    }
    for (uint32_t i = 0; i < p->pos.nstores; i++) {
        struct pstore *ps = find_store(p, p->pos.stores[i].name, 0);
        if (!ps)
            return at_error_set(AT_EINTEGRITY,
                                "backup %s: its position names a store it does "
                                "not hold",
                                p->base.id);
        ps->next_seq = p->pos.stores[i].seq + 1;
    }
    int64_t reach = p->head.covered_us;
    uint8_t prev[AEAD_TAG_LEN];
    for (uint64_t segno = p->pos.first_seg;; segno++) {
        struct cs_seg_hdr h;
        if ((rc = grow_segs(p)) != 0)
            return rc;
        rc = get_segment(p, segno, &h, p->tags[p->nseg]);
        if (rc == AT_ENOTFOUND) {
            if (segno < p->head.nsegs)
                return at_error_set(AT_EINTEGRITY,
                                    "log segment %llu of epoch %s is missing (the head lists "
                                    "%llu segments)",
                                    (unsigned long long)segno, p->pos.epoch,
                                    (unsigned long long)p->head.nsegs);
            rc = 0;
            break;
        }
        if (rc)
            return rc;
        if (segno > p->pos.first_seg && CRYPTO_memcmp(h.prev_tag, prev, AEAD_TAG_LEN) != 0)
            return at_error_set(AT_EINTEGRITY,
                                "log segment %llu does not follow segment %llu (reordered or "
                                "replaced)",
                                (unsigned long long)segno, (unsigned long long)segno - 1);
        if (segno + 1 == p->head.nsegs &&
            CRYPTO_memcmp(p->tags[p->nseg], p->head.last_tag, AEAD_TAG_LEN) != 0)
            return at_error_set(AT_EINTEGRITY, "log segment %llu is not the one the head lists",
                                (unsigned long long)segno);
        memcpy(prev, p->tags[p->nseg], AEAD_TAG_LEN);
        rc = scan_body(p, (uint32_t)p->nseg, &h);
        secmem_wipe(p->body.p, p->body.len);
        p->nseg++;
        if (rc)
            return rc;
        if (h.covered_us > reach)
            reach = h.covered_us; /* segments past the head (spooled by a run that died) */
        if (h.first_us > p->at)
            break; /* everything later is after T */
    }
    if (p->at > reach && !p->head.closed) {
        char t[40], r[40];
        fmt_time(p->at, t, sizeof t);
        fmt_time(reach, r, sizeof r);
        return at_error_set(AT_EINVAL,
                            "the log reaches only to %s, not %s (not shipped yet, or the server "
                            "stopped without shipping; try a later base or an earlier time)",
                            r, t);
    }
    return 0;
}

static int import_base(struct pitr *p, struct store_env *env, backup_progress_fn progress,
                       void *ctx)
{
    uint64_t total = 0, done = 0;
    for (uint32_t i = 0; i < p->base.nstores; i++)
        total += p->base.stores[i].plain_len;
    for (uint32_t i = 0; i < p->base.nstores; i++) {
        struct pstore *ps = &p->s[i]; /* scan_log put them first, in order */
        int rc = store_import_begin(env, ps->name, &ps->im);
        if (!rc)
            rc = bk_read_store(p->bs, &p->base, p->bk, i, bk_import_page, ps->im, done, total,
                               "restore", progress, ctx);
        if (rc)
            return rc;
        done += p->base.stores[i].plain_len;
    }
    for (size_t i = 0; i < p->ns; i++) {
        struct pstore *ps = &p->s[i];
        if (ps->im || ps->db_pages == 0)
            continue; /* in the base, or born after T */
        int rc = store_import_begin(env, ps->name, &ps->im);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_log(struct pitr *p)
{
    uint8_t *page = secmem_alloc(PAGE_SIZE);
    if (!page)
        return AT_ENOMEM;
    int rc = 0;
    for (uint32_t si = 0; si < p->nseg && !rc; si++) {
        if (!p->wins[si])
            continue;
        struct cs_seg_hdr h;
        uint8_t tag[AEAD_TAG_LEN];
        rc = get_segment(p, p->pos.first_seg + si, &h, tag);
        if (rc == AT_ENOTFOUND)
            rc = at_error_set(AT_EINTEGRITY, "log segment %llu disappeared during the restore",
                              (unsigned long long)(p->pos.first_seg + si));
        if (!rc && CRYPTO_memcmp(tag, p->tags[si], AEAD_TAG_LEN) != 0)
            rc = at_error_set(AT_EINTEGRITY, "log segment %llu changed during the restore",
                              (unsigned long long)(p->pos.first_seg + si));
        size_t off = 0;
        for (uint32_t r = 0; !rc && r < h.nrec; r++) {
            struct cs_rec rec;
            if (cs_rec_decode(p->body.p + off, p->body.len - off, &rec) != 0) {
                rc = AT_EINTEGRITY;
                break;
            }
            size_t fo = off + CS_REC_HDR;
            struct pstore *ps = find_store(p, rec.name, 0);
            for (uint32_t f = 0; !rc && f < rec.nframes; f++) {
                uint32_t pgno;
                size_t next;
                if (cs_frame_next(p->body.p, p->body.len, fo, &pgno, &next) != 0) {
                    rc = AT_EINTEGRITY;
                    break;
                }
                int win = ps && ps->im && pgno <= ps->cap && ps->wseg[pgno - 1] == si &&
                          ps->woff[pgno - 1] == fo && !(ps->db_pages && pgno > ps->db_pages);
                if (win) {
                    cs_frame_unpack(p->body.p + fo, page);
                    rc = store_import_page_at(ps->im, pgno, page);
                }
                fo = next;
            }
            off = fo;
        }
        secmem_wipe(p->body.p, p->body.len);
    }
    secmem_free(page, PAGE_SIZE);
    return rc;
}

static int finish_stores(struct pitr *p)
{
    for (size_t i = 0; i < p->ns; i++) {
        struct pstore *ps = &p->s[i];
        if (!ps->im)
            continue;
        uint32_t size = ps->db_pages ? ps->db_pages : ps->base_pages;
        for (uint32_t pg = ps->base_pages + 1; pg <= size; pg++)
            if (pg > ps->cap || ps->wseg[pg - 1] == NO_SEG)
                return at_error_set(AT_EINTEGRITY,
                                    "store %s: page %u is in neither the base nor the log",
                                    ps->name, pg);
        store_import_set_pages(ps->im, size);
        int rc = store_import_finish(ps->im);
        ps->im = NULL;
        if (rc)
            return at_error_set(rc, "restoring store %s: %s", ps->name, at_error_detail());
        ps->finished = 1;
    }
    return 0;
}

static void pitr_free(struct pitr *p, struct store_env *env, int failed)
{
    char keep[512];
    snprintf(keep, sizeof keep, "%s", at_error_detail());
    for (size_t i = 0; i < p->ns; i++) {
        struct pstore *ps = &p->s[i];
        store_import_abort(ps->im);
        if (failed && ps->finished) {
            int ignored = store_drop(env, ps->name);
            (void)ignored;
        }
        free(ps->wseg);
        free(ps->woff);
    }
    if (failed)
        at_error_set(AT_EINVAL, "%s", keep);
    free(p->s);
    free(p->tags);
    free(p->wins);
    free(p->pos.stores);
    bk_manifest_free(&p->base);
    bk_manifest_free(&p->em);
    bk_keys_free(p->bk);
    bk_keys_free(p->ek);
    bk_mem_free(&p->body);
}

int backup_restore_at(struct blob_store *bs, const struct backup_keys *keys, int64_t at_us,
                      struct store_env *env, backup_progress_fn progress, void *ctx,
                      char used_id[BACKUP_ID_LEN])
{
    if (!keys)
        return AT_EINVAL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (at_us > (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000)
        return at_error_set(AT_EINVAL, "the time to restore to is in the future");
    int rc = bk_check_empty(env);
    if (rc)
        return rc;
    struct pitr p = {.bs = bs, .keys = keys, .at = at_us};
    rc = choose_base(&p);
    if (!rc)
        rc = scan_log(&p);
    if (!rc)
        rc = import_base(&p, env, progress, ctx);
    if (!rc)
        rc = apply_log(&p);
    if (!rc)
        rc = finish_stores(&p);
    if (!rc && used_id)
        snprintf(used_id, BACKUP_ID_LEN, "%s", p.base.id);
    pitr_free(&p, env, rc != 0);
    return rc;
}

/* ---- the log's epochs ------------------------------------------------------- */

static void read_head(struct blob_store *bs, const struct backup_keys *keys,
                      struct backup_log_info *e)
{
    char name[BLOB_NAME_MAX];
    struct bk_manifest m;
    struct bk_keys *k = NULL;
    struct cs_head h;
    uint8_t *b = NULL;
    size_t len = 0;
    snprintf(name, sizeof name, "cont/%s/key", e->epoch);
    e->verified = -1;
    if (bk_load_manifest(bs, keys, name, e->epoch, &m, &k) != 0)
        return;
    snprintf(name, sizeof name, "cont/%s/head", e->epoch);
    if (bk_get_all(bs, name, CS_HEAD_LEN, &b, &len) == 0 && cs_head_decode(b, len, k, &h) == 0 &&
        strcmp(h.epoch, e->epoch) == 0) {
        e->verified = 1;
        e->covered_us = h.covered_us;
        e->closed = (int)h.closed;
    }
    free(b);
    bk_manifest_free(&m);
    bk_keys_free(k);
}

int backup_log_list(struct blob_store *bs, const struct backup_keys *keys,
                    struct backup_log_info **out, size_t *n)
{
    struct bk_names names;
    *out = NULL;
    *n = 0;
    int rc = bk_list_names(bs, "cont/", 0, &names);
    if (rc)
        return rc;
    struct backup_log_info *v = NULL;
    size_t nv = 0;
    for (size_t i = 0; !rc && i < names.n; i++) {
        const char *e = names.v[i] + 5, *slash = strchr(e, '/');
        if (!slash || (size_t)(slash - e) >= BACKUP_ID_LEN)
            continue;
        if (!nv || strncmp(v[nv - 1].epoch, e, (size_t)(slash - e)) != 0 ||
            v[nv - 1].epoch[slash - e] != 0) {
            void *nvv = realloc(v, (nv + 1) * sizeof *v);
            if (!nvv) {
                rc = AT_ENOMEM;
                break;
            }
            v = nvv;
            memset(&v[nv], 0, sizeof v[nv]);
            memcpy(v[nv].epoch, e, (size_t)(slash - e));
            nv++;
        }
        char *end = NULL;
        strtoull(slash + 1, &end, 10);
        if (end && *end == 0 && end != slash + 1)
            v[nv - 1].segments++;
    }
    free(names.v);
    for (size_t i = 0; !rc && keys && i < nv; i++)
        read_head(bs, keys, &v[i]);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}

/* ---- retention ---------------------------------------------------------------- */

struct kept {
    char epoch[BACKUP_ID_LEN];
    uint64_t first_seg;
};

int backup_prune_days(struct blob_store *bs, const struct backup_keys *keys, unsigned days,
                      unsigned keep_min, const char *live_epoch, int64_t now)
{
    struct backup_info *v = NULL;
    size_t n = 0;
    int rc = backup_list(bs, NULL, &v, &n);
    if (rc)
        return rc;
    int64_t cutoff = now - (int64_t)days * 86400;
    struct kept *kept = calloc(n ? n : 1, sizeof *kept);
    size_t nkept = 0;
    if (!kept)
        rc = AT_ENOMEM;
    /* Newest first: keep the window, the newest base before it, keep_min. */
    int older_kept = 0;
    for (size_t i = n; !rc && i-- > 0;) {
        size_t rank = n - 1 - i;
        int keep = v[i].created >= cutoff || rank < keep_min || !older_kept;
        if (v[i].created < cutoff && keep)
            older_kept = 1;
        if (!keep) {
            rc = bk_delete_backup(bs, v[i].id);
            continue;
        }
        struct bk_manifest m;
        struct bk_keys *k = NULL;
        struct cs_position pos = {0};
        char name[BLOB_NAME_MAX];
        snprintf(name, sizeof name, "%s/manifest", v[i].id);
        if (bk_load_manifest(bs, keys, name, v[i].id, &m, &k) == 0) {
            if (load_position(bs, v[i].id, k, &pos) == 0) {
                snprintf(kept[nkept].epoch, sizeof kept[nkept].epoch, "%s", pos.epoch);
                kept[nkept++].first_seg = pos.first_seg;
                free(pos.stores);
            }
            bk_manifest_free(&m);
            bk_keys_free(k);
        }
    }
    free(v);
    /* The log: whole epochs no kept base uses, and segments before the
     * oldest kept base of an epoch. */
    struct bk_names names = {0};
    if (!rc)
        rc = bk_list_names(bs, "cont/", 0, &names);
    for (size_t i = 0; !rc && i < names.n; i++) {
        char epoch[BACKUP_ID_LEN];
        const char *e = names.v[i] + 5, *slash = strchr(e, '/');
        if (!slash || (size_t)(slash - e) >= BACKUP_ID_LEN)
            continue;
        memcpy(epoch, e, (size_t)(slash - e));
        epoch[slash - e] = 0;
        if (live_epoch && strcmp(epoch, live_epoch) == 0 && !nkept)
            continue;
        uint64_t min_seg = UINT64_MAX;
        int used = live_epoch && strcmp(epoch, live_epoch) == 0;
        for (size_t j = 0; j < nkept; j++)
            if (strcmp(kept[j].epoch, epoch) == 0) {
                used = 1;
                if (kept[j].first_seg < min_seg)
                    min_seg = kept[j].first_seg;
            }
        char *end = NULL;
        unsigned long long segno = strtoull(slash + 1, &end, 10);
        int is_seg = end && *end == 0 && end != slash + 1;
        int drop = !used || (is_seg && min_seg != UINT64_MAX && segno < min_seg);
        if (drop && (rc = blob_delete(bs, names.v[i])) == AT_ENOTFOUND)
            rc = 0;
    }
    free(names.v);
    free(kept);
    return rc;
}
