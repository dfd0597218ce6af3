/*
 * ixdelta.c — the readers' view of a container's index log.
 *
 * The writer does not put a new document's index entries into ix (where
 * each lands on a random leaf, about one 4 KB page written per entry per
 * commit) but appends them, one row per document, to ixlog, in the same
 * transaction as the document; now and then it merges the whole log into
 * ix in key order (index.c: ix_merge), which writes each touched leaf
 * once for many entries. Removed entries leave ix at once and are also
 * logged, so that they hide entries still in the log.
 *
 *   ixlog(n INTEGER PRIMARY KEY, seq INTEGER, adds BLOB, dels BLOB)
 *       n      log position, from the writer, increasing (gaps allowed)
 *       adds   keys added for document seq: (varint length, bytes)*
 *       dels   keys removed for document seq, same layout
 *   ixmeta 'merged'  every log row with n <= merged is in ix (or gone)
 *
 * A reader's snapshot (one read transaction) has its own (merged, top =
 * max(n)). The index it reads is ix plus, for each (key, seq), the last
 * log record with n <= top when that record is an add and n > merged.
 * This file keeps the log rows of recent snapshots in memory, sorted by
 * (key, seq, n) in a skip list, so that readers can merge them into their
 * ix reads in key order.
 *
 * Invariants:
 *   1. A (key, seq) present in ix is never the last add in the log of the
 *      same snapshot, and the reverse (index.c keeps it: the writer logs
 *      only keys a document did not have; the rebuild, which writes ix
 *      directly, merges the log in the transaction that makes the index
 *      ready). So readers add ix and log counts.
 *   2. Memory holds every log row with n in the covered intervals
 *      (lo, hi]; a reader loads, from its own snapshot, the parts of
 *      (merged, top] not covered before it reads.
 *   3. A row with n <= T is freed only when T <= every merged a reader may
 *      still read with: readers register (dx_enter) before their read
 *      transaction begins with the largest merged any reader has seen,
 *      which no later snapshot can be below.
 *   4. Nodes are only read under the lock; readers copy what they keep.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv.h"

struct dx_node {
    uint64_t seq, n;
    uint32_t klen;
    uint8_t del, height;
    struct dx_node *next[]; /* height links, then the key's bytes */
};

static const uint8_t *node_key(const struct dx_node *x)
{
    return (const uint8_t *)&x->next[x->height];
}

void dx_init(struct ixdelta *d)
{
    memset(d, 0, sizeof *d);
    pthread_rwlock_init(&d->lock, NULL);
    pthread_mutex_init(&d->reg_mu, NULL);
    d->rng = 0x9e3779b97f4a7c15ull;
}

void dx_destroy(struct ixdelta *d)
{
    for (struct dx_node *x = d->head[0], *nx; x; x = nx) {
        nx = x->next[0];
        free(x);
    }
    pthread_rwlock_destroy(&d->lock);
    pthread_mutex_destroy(&d->reg_mu);
    memset(d, 0, sizeof *d);
}

/* ---- key lists (the adds and dels blobs) ---- */

int dx_put_key(struct doc_buf *b, const void *k, size_t len)
{
    uint8_t v[10];
    size_t n = 0;
    size_t x = len;
    do {
        v[n++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
        x >>= 7;
    } while (x);
    return doc_buf_put(b, (const char *)v, n) || doc_buf_put(b, k, len) ? AT_ENOMEM : 0;
}

static int next_key(const uint8_t **p, const uint8_t *end, const uint8_t **k, size_t *len)
{
    size_t x = 0;
    for (int shift = 0;; shift += 7) {
        if (*p == end || shift > 28)
            return -1;
        uint8_t c = *(*p)++;
        x |= (size_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    if ((size_t)(end - *p) < x)
        return -1;
    *k = *p;
    *len = x;
    *p += x;
    return 0;
}

int dx_list_keys(const uint8_t *p, size_t n, int del, dx_key_fn fn, void *arg)
{
    const uint8_t *end = p + n, *k;
    size_t len;
    int rc = 0;
    while (!rc && p && p < end)
        rc = next_key(&p, end, &k, &len) != 0 ? AT_EFORMAT : fn(arg, k, len, del);
    return rc;
}

int dx_row_keys(sqlite3_stmt *s, int col, dx_key_fn fn, void *arg)
{
    int rc = 0;
    for (int del = 0; del < 2 && !rc; del++)
        rc = dx_list_keys(sqlite3_column_blob(s, col + del),
                          (size_t)sqlite3_column_bytes(s, col + del), del, fn, arg);
    return rc;
}

/* ---- the skip list ---- */

static int cmp_key(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* node x against (k, seq, n) */
static int cmp_node(const struct dx_node *x, const uint8_t *k, size_t klen, uint64_t seq,
                    uint64_t n)
{
    int c = cmp_key(node_key(x), x->klen, k, klen);
    if (c)
        return c;
    if (x->seq != seq)
        return x->seq < seq ? -1 : 1;
    return (x->n > n) - (x->n < n);
}

/* The first node >= (k, seq, n); with prev: the last node before it on
 * every level (NULL: the head). */
static struct dx_node *seek(struct ixdelta *d, const uint8_t *k, size_t klen, uint64_t seq,
                            uint64_t n, struct dx_node **prev)
{
    struct dx_node *at = NULL; /* NULL: the head */
    for (int l = DX_LEVELS - 1; l >= 0; l--) {
        for (;;) {
            struct dx_node *nx = at ? at->next[l] : d->head[l];
            if (!nx || cmp_node(nx, k, klen, seq, n) >= 0)
                break;
            at = nx;
        }
        if (prev)
            prev[l] = at;
    }
    return at ? at->next[0] : d->head[0];
}

static int insert(struct ixdelta *d, const uint8_t *k, size_t klen, uint64_t seq, uint64_t n,
                  int del)
{
    int h = 1;
    while (h < DX_LEVELS) { /* one in four goes a level up */
        d->rng ^= d->rng << 13;
        d->rng ^= d->rng >> 7;
        d->rng ^= d->rng << 17;
        if (d->rng & 3)
            break;
        h++;
    }
    struct dx_node *x = malloc(sizeof *x + (size_t)h * sizeof x->next[0] + klen);
    if (!x)
        return AT_ENOMEM;
    x->seq = seq;
    x->n = n;
    x->klen = (uint32_t)klen;
    x->del = (uint8_t)del;
    x->height = (uint8_t)h;
    memcpy((uint8_t *)&x->next[h], k, klen);
    struct dx_node *prev[DX_LEVELS];
    seek(d, k, klen, seq, n, prev);
    for (int l = 0; l < h; l++) {
        struct dx_node **link = prev[l] ? &prev[l]->next[l] : &d->head[l];
        x->next[l] = *link;
        *link = x;
    }
    d->nodes++;
    return 0;
}

/* Free every node with n <= t (one pass over each level). */
static void drop_upto(struct ixdelta *d, uint64_t t)
{
    for (int l = DX_LEVELS - 1; l >= 0; l--) {
        struct dx_node **link = &d->head[l];
        while (*link) {
            struct dx_node *x = *link;
            if (x->n > t) {
                link = &x->next[l];
                continue;
            }
            *link = x->next[l];
            if (l == 0) {
                free(x);
                d->nodes--;
            }
        }
    }
}

/* ---- coverage: which log rows memory holds (invariant 2) ---- */

/* Whether (lo, hi] can be recorded: it touches an interval, or one is free. */
static int cover_fits(const struct ixdelta *d, uint64_t lo, uint64_t hi)
{
    if (d->ncov < DX_MAXCOV)
        return 1;
    for (size_t i = 0; i < d->ncov; i++)
        if (d->cov[i].hi >= lo && d->cov[i].lo <= hi)
            return 1;
    return 0;
}

static void cover(struct ixdelta *d, uint64_t lo, uint64_t hi)
{
    size_t i = 0;
    while (i < d->ncov && d->cov[i].hi < lo)
        i++;
    size_t j = i; /* intervals i..j-1 touch (lo, hi]: they join it */
    while (j < d->ncov && d->cov[j].lo <= hi) {
        if (d->cov[j].lo < lo)
            lo = d->cov[j].lo;
        if (d->cov[j].hi > hi)
            hi = d->cov[j].hi;
        j++;
    }
    memmove(&d->cov[i + 1], &d->cov[j], (d->ncov - j) * sizeof d->cov[0]);
    d->ncov = d->ncov - (j - i) + 1;
    d->cov[i].lo = lo;
    d->cov[i].hi = hi;
}

struct loading {
    struct ixdelta *d;
    uint64_t n, seq;
};

static int load_key(void *arg, const uint8_t *k, size_t len, int del)
{
    struct loading *ld = arg;
    return insert(ld->d, k, len, ld->seq, ld->n, del);
}

/* Load log rows with n in (lo, hi] from the reader's snapshot. */
static int load(struct ixdelta *d, struct rconn *rc, uint64_t lo, uint64_t hi)
{
    sqlite3_stmt *s =
        rconn_stmt(rc, "SELECT n, seq, adds, dels FROM ixlog WHERE n > ?1 AND n <= ?2");
    if (!s)
        return AT_ESQLITE;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)lo);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)hi);
    struct loading ld = {d, 0, 0};
    int rc_ = 0, step;
    while (!rc_ && (step = sqlite3_step(s)) == SQLITE_ROW) {
        ld.n = (uint64_t)sqlite3_column_int64(s, 0);
        ld.seq = (uint64_t)sqlite3_column_int64(s, 1);
        rc_ = dx_row_keys(s, 2, load_key, &ld);
    }
    if (!rc_ && step != SQLITE_DONE)
        rc_ = AT_ESQLITE;
    sqlite3_reset(s);
    if (!rc_)
        cover(d, lo, hi);
    return rc_;
}

/* ---- readers ---- */

void dx_enter(struct ixdelta *d, struct dx_view *v)
{
    memset(v, 0, sizeof *v);
    pthread_mutex_lock(&d->reg_mu);
    v->reg = d->merged_seen;
    v->next = d->readers;
    if (d->readers)
        d->readers->prev = v;
    d->readers = v;
    pthread_mutex_unlock(&d->reg_mu);
}

void dx_leave(struct ixdelta *d, struct dx_view *v)
{
    pthread_mutex_lock(&d->reg_mu);
    if (v->prev)
        v->prev->next = v->next;
    else
        d->readers = v->next;
    if (v->next)
        v->next->prev = v->prev;
    pthread_mutex_unlock(&d->reg_mu);
    v->next = v->prev = NULL;
}

int dx_snapshot(struct ixdelta *d, struct rconn *rc, struct dx_view *v)
{
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT (SELECT v FROM ixmeta WHERE k='merged'), "
                                     "(SELECT max(n) FROM ixlog)");
    if (!s)
        return AT_ESQLITE;
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        v->merged = (uint64_t)sqlite3_column_int64(s, 0);
        v->top = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (step != SQLITE_ROW)
        return AT_ESQLITE;
    v->active = v->top > v->merged;
    pthread_mutex_lock(&d->reg_mu);
    if (v->merged > d->merged_seen)
        d->merged_seen = v->merged;
    uint64_t t = d->merged_seen; /* invariant 3 */
    for (const struct dx_view *r = d->readers; r; r = r->next)
        if (r->reg < t)
            t = r->reg;
    pthread_mutex_unlock(&d->reg_mu);
    int rc_ = 0;
    pthread_rwlock_rdlock(&d->lock);
    int work = t > d->reclaimed;
    for (size_t i = 0; !work && v->active && i <= d->ncov; i++) { /* a gap in (merged, top]? */
        uint64_t from = i ? d->cov[i - 1].hi : 0, to = i < d->ncov ? d->cov[i].lo : UINT64_MAX;
        work = from < v->top && to > v->merged && from < to;
    }
    pthread_rwlock_unlock(&d->lock);
    if (!work)
        return 0;
    pthread_rwlock_wrlock(&d->lock);
    if (t > d->reclaimed) {
        drop_upto(d, t);
        size_t w = 0;
        for (size_t i = 0; i < d->ncov; i++) {
            if (d->cov[i].hi <= t)
                continue;
            d->cov[w] = d->cov[i];
            if (d->cov[w].lo < t)
                d->cov[w].lo = t;
            w++;
        }
        d->ncov = w;
        d->reclaimed = t;
    }
    /* load the gaps of (merged, top], lowest first */
    uint64_t at = v->merged;
    while (!rc_ && v->active && at < v->top) {
        size_t i = 0;
        while (i < d->ncov && d->cov[i].hi <= at)
            i++;
        if (i < d->ncov && d->cov[i].lo <= at) {
            at = d->cov[i].hi;
            continue;
        }
        uint64_t to = i < d->ncov && d->cov[i].lo < v->top ? d->cov[i].lo : v->top;
        /* too many separate intervals (readers far behind many merges):
         * this reader goes without the index */
        rc_ = cover_fits(d, at, to) ? load(d, rc, at, to) : AT_ENOMEM;
        at = to;
    }
    pthread_rwlock_unlock(&d->lock);
    return rc_;
}

/* The group (key, seq) starting at x: whether this snapshot sees it (its
 * last record with n <= top is an add not yet merged); returns the node
 * after the group. */
static struct dx_node *group(const struct dx_view *v, struct dx_node *x, int *visible)
{
    const struct dx_node *g = x, *last = NULL;
    for (; x && x->seq == g->seq && x->klen == g->klen &&
           memcmp(node_key(x), node_key(g), g->klen) == 0;
         x = x->next[0])
        if (x->n <= v->top)
            last = x;
    *visible = last && !last->del && last->n > v->merged;
    return x;
}

int dx_scan(struct ixdelta *d, const struct dx_view *v, const struct dx_range *r, int desc,
            const struct dx_pos *from, dx_each_fn fn, void *arg)
{
    if (!v->active)
        return 0;
    int rc = 0, vis;
    pthread_rwlock_rdlock(&d->lock);
    if (!desc) {
        struct dx_node *x = from ? seek(d, from->key, from->len, from->seq, 0, NULL)
                                 : seek(d, r->lo, r->lolen, 0, 0, NULL);
        while (x && !rc) {
            struct dx_node *g = x;
            const uint8_t *k = node_key(g);
            int chi = cmp_key(k, g->klen, r->hi, r->hilen);
            if (chi > 0 || (chi == 0 && !r->hi_incl))
                break;
            x = group(v, g, &vis);
            int clo = cmp_key(k, g->klen, r->lo, r->lolen);
            if (vis && (clo > 0 || (clo == 0 && r->lo_incl)))
                rc = fn(arg, (const char *)k, g->klen, g->seq);
        }
    } else {
        /* backwards, a group at a time: the last node before the bound,
         * then its group from its first node */
        struct dx_node *prev[DX_LEVELS];
        const uint8_t *bk = from ? from->key : r->hi;
        size_t bl = from ? from->len : r->hilen;
        uint64_t bs = from ? from->seq : r->hi_incl ? UINT64_MAX : 0;
        uint64_t bn = from || r->hi_incl ? UINT64_MAX : 0;
        for (;;) {
            seek(d, bk, bl, bs, bn, prev);
            struct dx_node *p = prev[0];
            if (!p || rc)
                break;
            const uint8_t *k = node_key(p);
            int clo = cmp_key(k, p->klen, r->lo, r->lolen);
            if (clo < 0 || (clo == 0 && !r->lo_incl))
                break;
            int chi = cmp_key(k, p->klen, r->hi, r->hilen);
            group(v, seek(d, k, p->klen, p->seq, 0, NULL), &vis);
            if (vis && (chi < 0 || (chi == 0 && r->hi_incl)))
                rc = fn(arg, (const char *)k, p->klen, p->seq);
            bk = k; /* next: before this group */
            bl = p->klen;
            bs = p->seq;
            bn = 0;
        }
    }
    pthread_rwlock_unlock(&d->lock);
    return rc < 0 ? rc : 0;
}
