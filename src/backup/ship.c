/*
 * ship.c — the continuous-backup shipper (contract in ship.h, formats in
 * backupint.h and docs/backup.md).
 *
 *   on_commit (committing thread)    shipper thread, every interval_ms or
 *   ─────────────────────────────    when asked (flush, a store closing,
 *   copy the sealed frames, stamp    a large queue):
 *   seq and time under mu, queue       take the queue ─▶ build_segment
 *                                      (open pages, records, seal)
 *                                      ─▶ pending ─▶ put_pending (put,
 *                                      or spool and retry with backoff)
 *                                      ─▶ put_head
 *
 * Commit times are taken under mu in queue order, so every commit stamped
 * at or before the moment the shipper takes the queue is in that take:
 * once a take's segment and all earlier ones are in the target, the log
 * covers everything up to the take time (the head's covered-until).
 */
#include "backup/ship.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup/backupint.h"
#include "crypto/secmem.h"

#define QUEUE_MAX   (256u << 20) /* captured bytes beyond this are a gap */
#define QUEUE_WAKE  (32u << 20)  /* cut early when this much is queued */
#define SPOOL_MAX   (1ull << 30) /* spooled bytes beyond this are a gap */
#define LAG_SAMPLES 8192
#define BACKOFF_MAX 60000

struct sstore {
    struct ship *sh;
    struct sstore *next;
    char name[BK_NAME_LEN];
    struct keyring *kr; /* NULL once detached */
    uint8_t id[KEYRING_FILE_ID_LEN];
    int layers;
    uint64_t seq;    /* commits captured (under mu) */
    uint64_t queued; /* of them in the queue (under mu) */
};

struct commit {
    struct commit *next;
    struct sstore *st;
    uint64_t seq;
    int64_t time_us;
    size_t nframes;
    uint8_t *frames; /* sealed WAL frames (the VFS's buffer, owned) */
};

struct pending {
    struct pending *next;
    uint64_t segno;
    uint8_t *blob; /* sealed segment, or NULL when spooled */
    size_t len;
    int64_t covered_us; /* the take it was cut from */
    int64_t *times;     /* commit times in it, for the lag */
    size_t ntimes;
    uint8_t tag[AEAD_TAG_LEN];
};

struct ship {
    struct store_env *env;
    struct blob_store *bs;
    struct backup_keys keys;
    struct bk_keys *k; /* the epoch's keys (secmem) */
    char epoch[BACKUP_ID_LEN];
    char spool[PATH_MAX];
    unsigned interval_ms;
    void (*need_base)(void *ctx);
    void *need_base_ctx;
    struct store_observer obs;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* work for the thread */
    pthread_cond_t drained; /* the queue was taken / the head advanced */
    struct sstore *stores;
    struct commit *head, *tail;
    size_t queue_bytes;
    int stopping, flush_req;
    uint64_t next_seg;  /* segments cut */
    int64_t covered_us; /* head's covered-until, as put */
    uint64_t gaps, segments, commits_shipped, bytes_shipped, spooled, queued;
    int want_base; /* a gap happened: ask for a base once puts work */
    char last_error[256];
    double lag[LAG_SAMPLES];
    size_t nlag;

    /* the thread's own (no lock) */
    struct pending *pend, *pend_tail;
    uint64_t spool_bytes;
    uint8_t prev_tag[AEAD_TAG_LEN];
    uint8_t head_tag[AEAD_TAG_LEN]; /* tag of the last segment in the target */
    uint64_t uploaded;              /* segments in the target */
    int64_t head_put_us;            /* when the head was last put */
    unsigned backoff_ms;
    int64_t retry_at_us;
    struct bk_mem body;
};

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* ---- capture (committing threads) ----------------------------------------- */

static void gap_locked(struct ship *sh, const char *what)
{
    sh->gaps++;
    sh->want_base = 1;
    snprintf(sh->last_error, sizeof sh->last_error, "%s", what);
}

static void on_commit(void *ctx, uint8_t *frames, size_t n)
{
    struct sstore *st = ctx;
    struct ship *sh = st->sh;
    size_t bytes = n * FRAME_SIZE;
    struct commit *c = n ? malloc(sizeof *c) : NULL;
    if (c) {
        c->frames = frames;
        c->next = NULL;
        c->st = st;
        c->nframes = n;
    } else {
        free(frames);
    }
    pthread_mutex_lock(&sh->mu);
    st->seq++; /* a lost commit still takes its number: the gap shows */
    if (!c || sh->queue_bytes + bytes > QUEUE_MAX) {
        gap_locked(sh, "a commit could not be captured (memory or queue full)");
        pthread_mutex_unlock(&sh->mu);
        if (c)
            free(c->frames);
        free(c);
        return;
    }
    c->seq = st->seq;
    c->time_us = now_us();
    if (sh->tail)
        sh->tail->next = c;
    else
        sh->head = c;
    sh->tail = c;
    sh->queue_bytes += bytes;
    sh->queued++;
    st->queued++;
    if (sh->queue_bytes >= QUEUE_WAKE)
        pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&sh->mu);
}

static void *on_attach(void *ctx, const char *name, struct keyring *kr,
                       const uint8_t id[KEYRING_FILE_ID_LEN], int layers)
{
    struct ship *sh = ctx;
    if (strlen(name) >= BK_NAME_LEN)
        return NULL;
    pthread_mutex_lock(&sh->mu);
    struct sstore *st = sh->stores;
    while (st && strcmp(st->name, name) != 0)
        st = st->next;
    if (!st && (st = calloc(1, sizeof *st)) != NULL) {
        /* Kept for the epoch: a store opened again goes on counting. */
        st->sh = sh;
        snprintf(st->name, sizeof st->name, "%s", name);
        st->next = sh->stores;
        sh->stores = st;
    }
    if (st) {
        st->kr = kr;
        memcpy(st->id, id, KEYRING_FILE_ID_LEN);
        st->layers = layers;
    }
    pthread_mutex_unlock(&sh->mu);
    return st;
}

/* The store is closing (and may be dropped next, destroying its DEKs):
 * its queued commits are opened before this returns. */
static void on_detach(void *ctx)
{
    struct sstore *st = ctx;
    struct ship *sh = st->sh;
    pthread_mutex_lock(&sh->mu);
    while (st->queued && !sh->stopping) {
        sh->flush_req = 1;
        pthread_cond_signal(&sh->wake);
        pthread_cond_wait(&sh->drained, &sh->mu);
    }
    st->kr = NULL;
    pthread_mutex_unlock(&sh->mu);
}

/* ---- segments (shipper thread) -------------------------------------------- */

/* Append one commit's record to the body, each page opened under its
 * store's DEK. The plaintext exists only in sh->body. */
static int add_record(struct ship *sh, const struct commit *c, size_t *off)
{
    size_t need = CS_REC_HDR + c->nframes * CS_FRAME_MAX;
    int rc = bk_mem_reserve(&sh->body, *off + need + AEAD_TAG_LEN);
    if (rc)
        return rc;
    uint8_t *r = sh->body.p + *off;
    struct cs_rec rec = {.seq = c->seq, .time_us = c->time_us, .nframes = (uint32_t)c->nframes};
    snprintf(rec.name, sizeof rec.name, "%s", c->st->name);
    if (!c->st->kr)
        return at_error_set(AT_EINVAL, "store %s closed with commits queued", c->st->name);
    uint8_t *p = r + CS_REC_HDR;
    for (size_t i = 0; i < c->nframes; i++) {
        const uint8_t *f = c->frames + i * FRAME_SIZE;
        uint32_t pgno = page_get32(f);
        if (page_get32(f + 4))
            rec.db_pages = page_get32(f + 4);
        memcpy(p + CS_FRAME_HDR, f + FRAME_HDR, PAGE_SIZE);
        if ((rc = page_open(c->st->kr, c->st->id, c->st->layers, pgno, p + CS_FRAME_HDR)) != 0)
            return at_error_set(rc, "store %s, commit %llu: page %u failed to open", c->st->name,
                                (unsigned long long)c->seq, pgno);
        p += cs_frame_pack(p, pgno);
    }
    if (rec.db_pages == 0)
        return at_error_set(AT_EFORMAT, "store %s: a captured commit has no commit frame",
                            c->st->name);
    cs_rec_encode(&rec, r);
    *off = (size_t)(p - sh->body.p);
    sh->body.len = *off;
    return 0;
}

/* Turn a take of the queue into a sealed pending segment. Commits that
 * cannot be opened become gaps (invariant 3); the rest is shipped. */
static void build_segment(struct ship *sh, struct commit *take, int64_t take_us)
{
    struct pending *pd = calloc(1, sizeof *pd);
    size_t n = 0;
    for (struct commit *c = take; c; c = c->next)
        n++;
    if (pd)
        pd->times = malloc(n * sizeof *pd->times);
    size_t off = CS_SEG_HDR;
    struct cs_seg_hdr h = {0};
    uint64_t lost = 0;
    int rc = pd && pd->times ? bk_mem_reserve(&sh->body, CS_SEG_HDR + AEAD_TAG_LEN) : AT_ENOMEM;
    for (struct commit *c = take; c; c = c->next) {
        size_t before = off;
        int arc = rc ? rc : add_record(sh, c, &off);
        if (arc) {
            off = before;
            lost++;
            continue;
        }
        if (!h.nrec)
            h.first_us = c->time_us;
        h.last_us = c->time_us;
        h.nrec++;
        pd->times[pd->ntimes++] = c->time_us;
    }
    pthread_mutex_lock(&sh->mu);
    for (struct commit *c = take, *next; c; c = next) {
        next = c->next;
        c->st->queued--;
        sh->queued--;
        sh->queue_bytes -= c->nframes * FRAME_SIZE;
        free(c->frames);
        free(c);
    }
    if (lost)
        gap_locked(sh, at_error_detail());
    if (h.nrec)
        h.segno = sh->next_seg++;
    pthread_cond_broadcast(&sh->drained);
    pthread_mutex_unlock(&sh->mu);
    if (!h.nrec) {
        if (pd)
            free(pd->times);
        free(pd);
        sh->body.len = 0;
        return;
    }
    snprintf(h.epoch, sizeof h.epoch, "%s", sh->epoch);
    memcpy(h.prev_tag, sh->prev_tag, AEAD_TAG_LEN);
    h.body_len = off - CS_SEG_HDR;
    h.covered_us = take_us;
    cs_seg_hdr_encode(&h, sh->body.p);
    pd->segno = h.segno;
    pd->covered_us = take_us;
    pd->len = off + AEAD_TAG_LEN;
    rc = cs_seg_seal(sh->k, sh->body.p, h.body_len);
    if (!rc && !(pd->blob = malloc(pd->len)))
        rc = AT_ENOMEM;
    if (rc) {
        /* The segment number is taken: restore sees the segment missing. */
        secmem_wipe(sh->body.p, off);
        sh->body.len = 0;
        pthread_mutex_lock(&sh->mu);
        gap_locked(sh, "a log segment could not be sealed");
        pthread_mutex_unlock(&sh->mu);
        free(pd->times);
        free(pd);
        return;
    }
    memcpy(pd->blob, sh->body.p, pd->len); /* ciphertext from here on */
    memcpy(pd->tag, sh->body.p + off, AEAD_TAG_LEN);
    memcpy(sh->prev_tag, pd->tag, AEAD_TAG_LEN);
    secmem_wipe(sh->body.p, pd->len);
    sh->body.len = 0;
    if (sh->pend_tail)
        sh->pend_tail->next = pd;
    else
        sh->pend = pd;
    sh->pend_tail = pd;
}

/* ---- putting (shipper thread) ----------------------------------------------- */

static void spool_path(const struct ship *sh, const char *epoch, uint64_t segno, char *out,
                       size_t n)
{
    snprintf(out, n, "%s/%s-%012llu.seg", sh->spool, epoch, (unsigned long long)segno);
}

static int write_file(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    size_t done = 0;
    int rc = 0;
    while (done < len && !rc) {
        ssize_t w = write(fd, b + done, len - done);
        if (w > 0)
            done += (size_t)w;
        else if (w < 0 && errno != EINTR)
            rc = errno;
    }
    if (!rc && fsync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return e;
    }
    uint8_t *b = malloc(sb.st_size ? (size_t)sb.st_size : 1);
    size_t done = 0;
    int rc = b ? 0 : ENOMEM;
    while (!rc && done < (size_t)sb.st_size) {
        ssize_t r = read(fd, b + done, (size_t)sb.st_size - done);
        if (r > 0)
            done += (size_t)r;
        else if (r == 0)
            rc = EIO;
        else if (errno != EINTR)
            rc = errno;
    }
    close(fd);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = done;
    return 0;
}

/* Move every in-memory pending segment to the spool folder. Past
 * SPOOL_MAX a segment is dropped instead (a gap, invariant 3). */
static void spool_pending(struct ship *sh)
{
    for (struct pending *pd = sh->pend; pd; pd = pd->next) {
        if (!pd->blob)
            continue;
        char path[PATH_MAX + 64];
        spool_path(sh, sh->epoch, pd->segno, path, sizeof path);
        int rc =
            sh->spool_bytes + pd->len > SPOOL_MAX ? ENOSPC : write_file(path, pd->blob, pd->len);
        if (rc) {
            /* Stays in memory; if memory fails too the queue cap makes the gap. */
            continue;
        }
        sh->spool_bytes += pd->len;
        free(pd->blob);
        pd->blob = NULL;
        pthread_mutex_lock(&sh->mu);
        sh->spooled++;
        pthread_mutex_unlock(&sh->mu);
    }
}

static int put_head(struct ship *sh, int64_t covered_us, int closed)
{
    struct cs_head h = {
        .nsegs = sh->uploaded, .covered_us = covered_us, .closed = (uint32_t)closed};
    snprintf(h.epoch, sizeof h.epoch, "%s", sh->epoch);
    memcpy(h.last_tag, sh->head_tag, AEAD_TAG_LEN);
    uint8_t b[CS_HEAD_LEN];
    char name[BLOB_NAME_MAX];
    snprintf(name, sizeof name, "cont/%s/head", sh->epoch);
    int rc = cs_head_encode(&h, sh->k, b);
    if (!rc)
        rc = bk_put_mem(sh->bs, name, b, sizeof b);
    if (!rc) {
        sh->head_put_us = now_us();
        pthread_mutex_lock(&sh->mu);
        sh->covered_us = covered_us;
        pthread_cond_broadcast(&sh->drained);
        pthread_mutex_unlock(&sh->mu);
    }
    return rc;
}

static void note_failure(struct ship *sh, int rc)
{
    sh->backoff_ms = sh->backoff_ms ? sh->backoff_ms * 2 : 500;
    if (sh->backoff_ms > BACKOFF_MAX)
        sh->backoff_ms = BACKOFF_MAX;
    sh->retry_at_us = now_us() + (int64_t)sh->backoff_ms * 1000;
    pthread_mutex_lock(&sh->mu);
    snprintf(sh->last_error, sizeof sh->last_error, "%s (%s)", at_error_detail(), at_strerror(rc));
    pthread_mutex_unlock(&sh->mu);
    fprintf(stderr, "atrestd: continuous backup: a put failed, retrying in %u ms: %s\n",
            sh->backoff_ms, at_error_detail());
}

/* Put the pending segments in order; on the first failure spool the rest
 * and back off. Returns 0 when nothing is left pending. */
static int put_pending(struct ship *sh)
{
    if (sh->pend && now_us() < sh->retry_at_us)
        return AT_EIO;
    while (sh->pend) {
        struct pending *pd = sh->pend;
        char name[BLOB_NAME_MAX], path[PATH_MAX + 64];
        cs_seg_name(sh->epoch, pd->segno, name, sizeof name);
        spool_path(sh, sh->epoch, pd->segno, path, sizeof path);
        uint8_t *b = pd->blob;
        size_t len = pd->len;
        int rc = b ? 0 : read_file(path, &b, &len);
        if (rc)
            rc = at_error_set(rc, "cannot read the spooled segment %s: %s", path, strerror(rc));
        if (!rc)
            rc = bk_put_mem(sh->bs, name, b, len);
        if (b != pd->blob)
            free(b);
        if (rc) {
            note_failure(sh, rc);
            spool_pending(sh);
            return rc;
        }
        if (!pd->blob) {
            unlink(path);
            sh->spool_bytes -= len;
        }
        sh->uploaded = pd->segno + 1;
        memcpy(sh->head_tag, pd->tag, AEAD_TAG_LEN);
        int64_t done = now_us();
        pthread_mutex_lock(&sh->mu);
        sh->segments++;
        sh->commits_shipped += pd->ntimes;
        sh->bytes_shipped += len;
        if (!pd->blob)
            sh->spooled--;
        for (size_t i = 0; i < pd->ntimes; i++)
            sh->lag[sh->nlag++ % LAG_SAMPLES] = (double)(done - pd->times[i]) / 1000.0;
        pthread_mutex_unlock(&sh->mu);
        sh->pend = pd->next;
        if (!sh->pend)
            sh->pend_tail = NULL;
        int64_t covered = pd->covered_us;
        free(pd->blob);
        free(pd->times);
        free(pd);
        if (!sh->pend && (rc = put_head(sh, covered, 0)) != 0) {
            note_failure(sh, rc);
            return rc;
        }
    }
    sh->backoff_ms = 0;
    pthread_mutex_lock(&sh->mu);
    sh->last_error[0] = 0;
    int want = sh->want_base;
    sh->want_base = 0;
    pthread_mutex_unlock(&sh->mu);
    if (want && sh->need_base)
        sh->need_base(sh->need_base_ctx);
    return 0;
}

static void *ship_main(void *p)
{
    struct ship *sh = p;
    int64_t last_cut = now_us();
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        int64_t due = last_cut + (int64_t)sh->interval_ms * 1000;
        if (sh->pend && sh->retry_at_us < due)
            due = sh->retry_at_us;
        while (!sh->stopping && !sh->flush_req && sh->queue_bytes < QUEUE_WAKE && now_us() < due) {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000),
                                  .tv_nsec = (long)(due % 1000000) * 1000};
            pthread_cond_timedwait(&sh->wake, &sh->mu, &ts);
        }
        int stopping = sh->stopping, flush = sh->flush_req;
        sh->flush_req = 0;
        struct commit *take = sh->head;
        sh->head = sh->tail = NULL;
        int64_t take_us = now_us();
        pthread_mutex_unlock(&sh->mu);
        last_cut = take_us;
        if (take)
            build_segment(sh, take, take_us);
        int clean = put_pending(sh) == 0;
        /* Idle: advance covered-until now and then (and on request). */
        if (clean && !take &&
            (flush || take_us - sh->head_put_us > 5 * (int64_t)sh->interval_ms * 1000)) {
            int rc = put_head(sh, take_us, 0);
            if (rc)
                note_failure(sh, rc);
        }
        pthread_mutex_lock(&sh->mu);
        if (stopping && !sh->head)
            break;
    }
    pthread_mutex_unlock(&sh->mu);
    if (!sh->pend) {
        if (put_head(sh, now_us(), 1) != 0)
            fprintf(stderr, "atrestd: continuous backup: cannot close the log: %s\n",
                    at_error_detail());
    } else {
        sh->retry_at_us = 0;
        if (put_pending(sh) == 0) {
            if (put_head(sh, now_us(), 1) != 0)
                fprintf(stderr, "atrestd: continuous backup: cannot close the log: %s\n",
                        at_error_detail());
        } else {
            spool_pending(sh);
            fprintf(stderr,
                    "atrestd: continuous backup: segments left in %s; the next start puts them\n",
                    sh->spool);
        }
    }
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------ */

/* Segments an earlier run spooled (its epoch's key blob is in the target):
 * put them now. Their epoch's head is not advanced; restore follows the
 * chain past it (backup_restore_at). */
static void put_leftovers(struct ship *sh)
{
    DIR *d = opendir(sh->spool);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* <epoch>-<segno>.seg; the epoch id has a '-' of its own. */
        size_t l = strlen(e->d_name);
        const char *dash = strrchr(e->d_name, '-');
        if (l < 5 || strcmp(e->d_name + l - 4, ".seg") != 0 || !dash ||
            (size_t)(dash - e->d_name) >= BACKUP_ID_LEN)
            continue;
        char epoch[BACKUP_ID_LEN];
        memcpy(epoch, e->d_name, (size_t)(dash - e->d_name));
        epoch[dash - e->d_name] = 0;
        unsigned long long segno = strtoull(dash + 1, NULL, 10);
        char path[PATH_MAX + 300], name[BLOB_NAME_MAX];
        snprintf(path, sizeof path, "%s/%s", sh->spool, e->d_name);
        cs_seg_name(epoch, segno, name, sizeof name);
        uint8_t *b = NULL;
        size_t len = 0;
        if (read_file(path, &b, &len) == 0 && bk_put_mem(sh->bs, name, b, len) == 0)
            unlink(path);
        else
            fprintf(stderr, "atrestd: continuous backup: cannot put the spooled %s yet\n", name);
        free(b);
    }
    closedir(d);
}

static int put_epoch_key(struct ship *sh)
{
    struct bk_manifest m = {.chunk_size = BACKUP_CHUNK_DEFAULT, .page_size = PAGE_SIZE};
    snprintf(m.id, sizeof m.id, "%s", sh->epoch);
    snprintf(m.version, sizeof m.version, "atrest 0.1 log");
    m.created = (int64_t)time(NULL);
    int rc = bk_make_shares(&sh->keys, sh->epoch, &m, sh->k);
    uint8_t *b = NULL;
    size_t len = 0;
    if (!rc)
        rc = bk_manifest_encode(&m, sh->k, &b, &len);
    char name[BLOB_NAME_MAX];
    snprintf(name, sizeof name, "cont/%s/key", sh->epoch);
    if (!rc && (rc = bk_put_mem(sh->bs, name, b, len)) != 0)
        at_error_set(rc, "continuous backup: cannot put %s: %s", name, at_error_detail());
    free(b);
    return rc;
}

static void ship_free(struct ship *sh)
{
    if (!sh)
        return;
    for (struct sstore *st = sh->stores, *n; st; st = n) {
        n = st->next;
        free(st);
    }
    for (struct commit *c = sh->head, *n; c; c = n) {
        n = c->next;
        free(c->frames);
        free(c);
    }
    for (struct pending *pd = sh->pend, *n; pd; pd = n) {
        n = pd->next;
        free(pd->blob);
        free(pd->times);
        free(pd);
    }
    bk_mem_free(&sh->body);
    bk_keys_free(sh->k);
    blob_close(sh->bs);
    pthread_mutex_destroy(&sh->mu);
    pthread_cond_destroy(&sh->wake);
    pthread_cond_destroy(&sh->drained);
    free(sh);
}

int ship_start(struct store_env *env, const struct ship_options *o, struct ship **out)
{
    *out = NULL;
    if (!o->target || !o->keys.outer || !o->spool_dir)
        return AT_EINVAL;
    struct ship *sh = calloc(1, sizeof *sh);
    if (!sh)
        return AT_ENOMEM;
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->wake, NULL);
    pthread_cond_init(&sh->drained, NULL);
    sh->env = env;
    sh->keys = o->keys;
    sh->interval_ms = o->interval_ms ? o->interval_ms : 2000;
    sh->need_base = o->need_base;
    sh->need_base_ctx = o->need_base_ctx;
    snprintf(sh->spool, sizeof sh->spool, "%s", o->spool_dir);
    struct blob_options bo = {.target = o->target,
                              .account_key_file = o->account_key_file,
                              .max_attempts = 2,
                              .backoff_ms = 100,
                              .fault = o->fault,
                              .fault_ctx = o->fault_ctx};
    int rc = blob_open(&bo, &sh->bs);
    if (!rc && mkdir(sh->spool, 0700) != 0 && errno != EEXIST)
        rc = at_error_set(errno, "cannot create %s: %s", sh->spool, strerror(errno));
    if (!rc && !(sh->k = secmem_alloc(sizeof *sh->k)))
        rc = AT_ENOMEM;
    if (!rc)
        rc = bk_new_id(sh->epoch);
    if (!rc)
        rc = put_epoch_key(sh);
    if (rc) {
        ship_free(sh);
        return rc;
    }
    put_leftovers(sh);
    sh->head_put_us = 0;
    sh->obs = (struct store_observer){on_attach, on_commit, on_detach};
    if ((rc = pthread_create(&sh->thread, NULL, ship_main, sh)) != 0) {
        ship_free(sh);
        return at_error_set(rc, "cannot start the shipper thread");
    }
    store_env_observe(env, &sh->obs, sh);
    *out = sh;
    return 0;
}

void ship_stop(struct ship *sh)
{
    if (!sh)
        return;
    store_env_observe(sh->env, NULL, NULL);
    pthread_mutex_lock(&sh->mu);
    sh->stopping = 1;
    pthread_cond_signal(&sh->wake);
    pthread_cond_broadcast(&sh->drained);
    pthread_mutex_unlock(&sh->mu);
    pthread_join(sh->thread, NULL);
    ship_free(sh);
}

const char *ship_epoch(const struct ship *sh)
{
    return sh->epoch;
}

uint64_t ship_next_seg(struct ship *sh)
{
    pthread_mutex_lock(&sh->mu);
    uint64_t n = sh->next_seg;
    pthread_mutex_unlock(&sh->mu);
    return n;
}

uint64_t ship_store_seq(struct ship *sh, const char *name)
{
    uint64_t n = 0;
    pthread_mutex_lock(&sh->mu);
    for (struct sstore *st = sh->stores; st; st = st->next)
        if (strcmp(st->name, name) == 0)
            n = st->seq;
    pthread_mutex_unlock(&sh->mu);
    return n;
}

int ship_flush(struct ship *sh, int timeout_ms)
{
    int64_t want = now_us();
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    sh->flush_req = 1;
    pthread_cond_signal(&sh->wake);
    while (sh->covered_us < want && !rc && !sh->stopping)
        rc = pthread_cond_timedwait(&sh->drained, &sh->mu, &dl);
    pthread_mutex_unlock(&sh->mu);
    return sh->covered_us >= want ? 0 : ETIMEDOUT;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void ship_status_get(struct ship *sh, struct ship_status *out)
{
    memset(out, 0, sizeof *out);
    double *v = malloc(LAG_SAMPLES * sizeof *v);
    pthread_mutex_lock(&sh->mu);
    snprintf(out->epoch, sizeof out->epoch, "%s", sh->epoch);
    out->covered_us = sh->covered_us;
    out->segments = sh->segments;
    out->commits_shipped = sh->commits_shipped;
    out->commits_queued = sh->queued;
    out->bytes_shipped = sh->bytes_shipped;
    out->spooled = sh->spooled;
    out->gaps = sh->gaps;
    snprintf(out->last_error, sizeof out->last_error, "%s", sh->last_error);
    size_t n = sh->nlag < LAG_SAMPLES ? sh->nlag : LAG_SAMPLES;
    if (v)
        memcpy(v, sh->lag, n * sizeof *v);
    pthread_mutex_unlock(&sh->mu);
    if (v && n) {
        qsort(v, n, sizeof *v, cmp_double);
        out->lag_p50_ms = v[n / 2];
        out->lag_p99_ms = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
        out->lag_max_ms = v[n - 1];
    }
    free(v);
}
