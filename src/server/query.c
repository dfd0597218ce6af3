/*
 * query.c — POST .../docs with a query: plan, run, page (src/query does the
 * language; index.c keeps the index this file reads).
 *
 * Plans, cheapest first:
 *
 *   ORDERED  ORDER BY served by an index range read in key order (one path
 *            bounded by a WHERE condition on it, or a composite index):
 *            documents arrive sorted and the query streams.
 *   SEQS     a WHERE condition an index serves (q_sargs): the documents of
 *            the smallest candidate set, fetched in seq order.
 *   SCAN     every document (of the partition key, when given) in seq order.
 *
 * The index is only a filter: every candidate is checked against the whole
 * WHERE by the executor, so results never depend on the plan. Ties in
 * ORDER BY fall back to seq order in every plan (ORDERED reads each run of
 * equal keys by ascending seq, also when descending), so results are
 * identical with and without an index.
 *
 * Continuation tokens (x-ms-continuation, JSON text, opaque to clients):
 * Every token also carries "t", the time the query started, so that the
 * time functions answer the same on every page, and "h", a hash of the
 * request body, so that a token given to another query is refused.
 *   {"s":seq,"j":j,"r":r}          streaming SCAN/SEQS: resume at document
 *                                  seq, dropping its first j rows; r is the
 *                                  executor's rows_passed before it
 *   {"k":"b64","s":..,"j":..,"r":..}  streaming ORDERED: the same at index
 *                                  entry (k, seq)
 *   {"o":n}                        anything else: n rows were returned; the
 *                                  query runs again and skips them
 * They hold no server state, so they survive a restart.
 */
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "query/qval.h"
#include "query/query.h"
#include "server/srv.h"

#define PAGE_BYTES (4u * 1024 * 1024)
/* A streaming page also ends after this long (with a continuation, as
 * Cosmos does), so that slow filters page instead of holding a worker; a
 * query that must see every document before its first row stops (408)
 * after QUERY_SECONDS. */
#define PAGE_SECONDS  5.0
#define QUERY_SECONDS 120.0
#define MAX_SARGS     16
#define COUNT_LIMIT   2000 /* candidates counted per condition to pick one */

/* ---- key ranges ---- */

struct krange {
    struct doc_buf lo, hi;
    int lo_incl, hi_incl;
};

static void krange_free(struct krange *k)
{
    doc_buf_free(&k->lo);
    doc_buf_free(&k->hi);
}

/* The smallest byte string greater than every string with prefix b. */
static int successor(struct doc_buf *b)
{
    while (b->len > 0 && (unsigned char)b->p[b->len - 1] == 0xFF)
        b->len--;
    if (b->len == 0)
        return -1;
    b->p[b->len - 1]++;
    return 0;
}

static int put_byte(struct doc_buf *b, unsigned char c)
{
    return doc_buf_put(b, (const char *)&c, 1);
}

static int band(struct krange *k, const struct doc_buf *p, unsigned char from, unsigned char to)
{
    k->lo_incl = 1;
    k->hi_incl = 0;
    return doc_buf_put(&k->lo, p->p, p->len) || put_byte(&k->lo, from) ||
           doc_buf_put(&k->hi, p->p, p->len) || put_byte(&k->hi, to);
}

static unsigned char type_byte(const json_t *v)
{
    return json_is_number(v) ? Q_KEY_NUMBER : json_is_string(v) ? Q_KEY_STRING : Q_KEY_FALSE;
}

/* The key ranges of one sarg (n of them into out, at most max); 0, or -1
 * when the index cannot serve it. */
static int sarg_ranges(const struct ixpol *pol, const struct q_sarg *s, struct krange *out,
                       size_t max, size_t *n)
{
    *n = 0;
    json_t *full = json_copy((json_t *)s->path);
    if (s->kind == Q_SARG_CONTAINS) {
        json_array_append_new(full, json_null());
        if (s->elem_path)
            json_array_extend(full, (json_t *)s->elem_path);
    }
    int usable = full && ixpol_path_indexed(pol, full);
    struct doc_buf p = {0};
    if (!usable || ix_path_prefix(&p, full) != 0) {
        json_decref(full);
        doc_buf_free(&p);
        return -1;
    }
    json_decref(full);
    int rc = 0;
    switch (s->kind) {
    case Q_SARG_EQ:
    case Q_SARG_CONTAINS:
        if (json_array_size(s->values) > max) {
            rc = -1;
            break;
        }
        for (size_t i = 0; !rc && i < json_array_size(s->values); i++) {
            struct krange *k = &out[(*n)++];
            memset(k, 0, sizeof *k);
            json_t *v = json_array_get(s->values, i);
            k->lo_incl = k->hi_incl = 1;
            rc = doc_buf_put(&k->lo, p.p, p.len) || ix_value_key(&k->lo, v, 0, NULL) ||
                 doc_buf_put(&k->hi, k->lo.p, k->lo.len);
        }
        break;
    case Q_SARG_RANGE: {
        struct krange *k = &out[(*n)++];
        memset(k, 0, sizeof *k);
        const json_t *b = s->lo ? s->lo : s->hi;
        unsigned char t = type_byte(b);
        unsigned char end = json_is_boolean(b) ? Q_KEY_TRUE + 1 : t + 1;
        rc = band(k, &p, t, end);
        int cut = 0;
        if (!rc && s->lo) {
            k->lo.len = 0;
            rc = doc_buf_put(&k->lo, p.p, p.len) || ix_value_key(&k->lo, s->lo, 0, &cut);
            k->lo_incl = s->lo_incl || cut; /* a cut bound keys longer strings too */
        }
        if (!rc && s->hi) {
            k->hi.len = 0;
            rc = doc_buf_put(&k->hi, p.p, p.len) || ix_value_key(&k->hi, s->hi, 0, &cut);
            k->hi_incl = s->hi_incl || cut;
        }
        break;
    }
    case Q_SARG_PREFIX: {
        struct krange *k = &out[(*n)++];
        memset(k, 0, sizeof *k);
        k->lo_incl = 1;
        rc = doc_buf_put(&k->lo, p.p, p.len) || ix_value_key(&k->lo, s->lo, 0, NULL);
        if (!rc) {
            k->lo.len -= 2; /* the string's terminator (or cut mark): a prefix */
            rc = doc_buf_put(&k->hi, k->lo.p, k->lo.len) || successor(&k->hi);
        }
        break;
    }
    case Q_SARG_DEFINED: {
        /* the node's own entry (a scalar or an empty array or object) or
         * any entry below it: every key that starts with its path */
        struct krange *k = &out[(*n)++];
        memset(k, 0, sizeof *k);
        k->lo_incl = 1;
        rc = doc_buf_put(&k->lo, p.p, p.len - 1) || doc_buf_put(&k->hi, p.p, p.len - 1) ||
             successor(&k->hi);
        break;
    }
    }
    doc_buf_free(&p);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            krange_free(&out[i]);
        *n = 0;
        return -1;
    }
    return 0;
}

/* The statement reading (count: counting, up to ?3) the entries of k. */
static const char *range_sql(const struct krange *k, int count)
{
    static const char *const sql[2][2][2] = {
        {{"SELECT seq FROM ix WHERE k > ?1 AND k < ?2",
          "SELECT count(*) FROM (SELECT 1 FROM ix WHERE k > ?1 AND k < ?2 LIMIT ?3)"},
         {"SELECT seq FROM ix WHERE k > ?1 AND k <= ?2",
          "SELECT count(*) FROM (SELECT 1 FROM ix WHERE k > ?1 AND k <= ?2 LIMIT ?3)"}},
        {{"SELECT seq FROM ix WHERE k >= ?1 AND k < ?2",
          "SELECT count(*) FROM (SELECT 1 FROM ix WHERE k >= ?1 AND k < ?2 LIMIT ?3)"},
         {"SELECT seq FROM ix WHERE k >= ?1 AND k <= ?2",
          "SELECT count(*) FROM (SELECT 1 FROM ix WHERE k >= ?1 AND k <= ?2 LIMIT ?3)"}},
    };
    return sql[k->lo_incl != 0][k->hi_incl != 0][count != 0];
}

static void bind_range(sqlite3_stmt *s, const struct krange *k)
{
    sqlite3_bind_blob(s, 1, k->lo.p, (int)k->lo.len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, k->hi.p, (int)k->hi.len, SQLITE_STATIC);
}

/* Entries of the index log in range k that the query's snapshot sees
 * (ixdelta.c), counted or collected. */
struct logged {
    long long count, limit;
    uint64_t *v;
    size_t len, cap;
};

static int logged_count(void *arg, const char *key, size_t len, uint64_t seq)
{
    (void)key, (void)len, (void)seq;
    struct logged *a = arg;
    return ++a->count >= a->limit;
}

/* Append x to the growing array *v (*len used of *cap). */
static int push_u64(uint64_t **v, size_t *len, size_t *cap, uint64_t x)
{
    if (doc_grow(v, cap, *len, sizeof **v))
        return AT_ENOMEM;
    (*v)[(*len)++] = x;
    return 0;
}

static int logged_seq(void *arg, const char *key, size_t len, uint64_t seq)
{
    (void)key, (void)len;
    struct logged *a = arg;
    return push_u64(&a->v, &a->len, &a->cap, seq);
}

/* The log's entries of range k in the query's view (ixdelta.c), ascending
 * (or the plan's way from a position, for ORDERED). */
static int log_scan(struct rconn *rc, const struct krange *k, int desc, const struct dx_pos *from,
                    dx_each_fn fn, void *arg)
{
    struct dx_range r = {k->lo.p, k->lo.len, k->lo_incl, k->hi.p, k->hi.len, k->hi_incl};
    return dx_scan(rc->dx, rc->view, &r, desc, from, fn, arg);
}

static int log_each(struct rconn *rc, const struct krange *k, dx_each_fn fn, void *arg)
{
    return log_scan(rc, k, 0, NULL, fn, arg);
}

/* Entries of range k in ix and the log, up to limit; -1 on error. */
static long long range_count(struct rconn *rc, const struct krange *k, long long limit)
{
    struct logged a = {.limit = limit};
    if (log_each(rc, k, logged_count, &a) != 0)
        return -1;
    if (a.count >= limit)
        return a.count;
    sqlite3_stmt *s = rconn_stmt(rc, range_sql(k, 1));
    if (!s)
        return -1;
    bind_range(s, k);
    sqlite3_bind_int64(s, 3, limit - a.count);
    long long n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return n < 0 ? -1 : a.count + n;
}

static long long ranges_count(struct rconn *rc, const struct krange *k, size_t n, long long limit)
{
    long long total = 0;
    for (size_t i = 0; i < n && total < limit; i++) {
        long long c = range_count(rc, &k[i], limit - total);
        if (c < 0)
            return -1;
        total += c;
    }
    return total;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The sorted, distinct seqs of the entries in ranges k[0..n). */
static int ranges_seqs(struct rconn *rc, const struct krange *k, size_t n, uint64_t **out,
                       size_t *nout)
{
    struct logged a = {0}; /* the log's entries, then ix's */
    for (size_t i = 0; i < n; i++) {
        int err = log_each(rc, &k[i], logged_seq, &a);
        sqlite3_stmt *s = err ? NULL : rconn_stmt(rc, range_sql(&k[i], 0));
        if (!s) {
            free(a.v);
            return err ? err : AT_ESQLITE;
        }
        bind_range(s, &k[i]);
        while (!err && sqlite3_step(s) == SQLITE_ROW)
            err = logged_seq(&a, NULL, 0, (uint64_t)sqlite3_column_int64(s, 0));
        sqlite3_reset(s);
        if (err) {
            free(a.v);
            return err;
        }
    }
    if (a.len)
        qsort(a.v, a.len, sizeof *a.v, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < a.len; i++)
        if (w == 0 || a.v[w - 1] != a.v[i])
            a.v[w++] = a.v[i];
    *out = a.v;
    *nout = w;
    return 0;
}

/* ---- the plan ---- */

enum { P_SCAN, P_SEQS, P_ORDERED };

struct plan {
    int kind;
    uint64_t *seqs; /* P_SEQS */
    size_t nseqs;
    struct krange order; /* P_ORDERED */
    int desc;
    int index_used;
    int hide_noix; /* P_SCAN: leave out documents written unindexed (consistent mode) */
    double lookup_ms;
};

static void plan_free(struct plan *p)
{
    free(p->seqs);
    krange_free(&p->order);
}

/* Checks Cosmos makes on ORDER BY against the policy: 0, or 400 answered. */
static int order_check(struct req *r, const struct q_query *q, const struct q_info *qi,
                       const struct ixpol *pol)
{
    const json_t *paths[IX_MAX_COMP];
    int desc[IX_MAX_COMP];
    for (size_t i = 0; i < qi->n_order; i++) {
        const json_t *p = q_order(q, i, &desc[i < IX_MAX_COMP ? i : 0]);
        if (!p)
            return srv_error(r, 400, 0,
                             "Unsupported ORDER BY clause. ORDER BY item expression could not be "
                             "mapped to a document path.");
        if (i < IX_MAX_COMP)
            paths[i] = p;
        if (ixpol_mode(pol) == IX_CONSISTENT && qi->n_order == 1 && !ixpol_path_indexed(pol, p))
            return srv_error(r, 400, 0,
                             "Order-by item requires a range index to be defined on the "
                             "corresponding index path.");
    }
    int rev;
    if (ixpol_mode(pol) == IX_CONSISTENT && qi->n_order > 1 &&
        (qi->n_order > IX_MAX_COMP ||
         ixpol_composite_find(pol, paths, desc, qi->n_order, &rev) < 0))
        return srv_error(r, 400, 0,
                         "The order by query does not have a corresponding composite index "
                         "that it can be served from.");
    return 0;
}

static long long count_sql(struct rconn *rc, const char *sql, const struct krange *k)
{
    sqlite3_stmt *s = rconn_stmt(rc, sql);
    long long n = -1;
    if (s) {
        if (k)
            bind_range(s, k);
        if (sqlite3_step(s) == SQLITE_ROW)
            n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    return n;
}

/* Whether every document has a scalar at path (then its index entries, in
 * key order, are every document in ORDER BY order); fills *out with the
 * range of those entries. Costs a count of the entries and of the
 * documents: far less than sorting them. */
static int whole_path_in_order(struct rconn *db, const struct ixpol *pol, const json_t *path,
                               struct krange *out)
{
    struct doc_buf p = {0};
    struct krange scalars = {0}, empty = {0}, below = {0};
    int ok = ixpol_path_indexed(pol, path) && ix_path_prefix(&p, path) == 0 &&
             band(&scalars, &p, Q_KEY_NULL, Q_KEY_ARRAY) == 0 &&
             band(&empty, &p, Q_KEY_ARRAY, Q_KEY_OBJECT + 1) == 0;
    if (ok) { /* keys of members: the path, then a name (0x20) or [] (0x21) */
        p.len--;
        ok = doc_buf_put(&below.lo, p.p, p.len) == 0 && put_byte(&below.lo, 0x20) == 0 &&
             doc_buf_put(&below.hi, p.p, p.len) == 0 && put_byte(&below.hi, 0x22) == 0;
        below.lo_incl = 1;
    }
    ok = ok && range_count(db, &empty, 1) == 0 && range_count(db, &below, 1) == 0;
    if (ok) {
        long long docs = count_sql(db, "SELECT count(*) FROM docs WHERE noix IS NULL", NULL);
        ok = docs >= 0 && range_count(db, &scalars, LLONG_MAX) == docs;
    }
    doc_buf_free(&p);
    krange_free(&empty);
    krange_free(&below);
    if (ok)
        *out = scalars;
    else
        krange_free(&scalars);
    return ok;
}

/* Ranges on one path with bounds of one type: the tightest of each bound
 * (c.n >= 100 AND c.n < 110 reads 100..110, not either half). */
static size_t merge_ranges(struct q_sarg *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].kind != Q_SARG_RANGE)
            continue;
        const json_t *ti = s[i].lo ? s[i].lo : s[i].hi;
        for (size_t j = i + 1; j < n;) {
            const json_t *tj = s[j].lo ? s[j].lo : s[j].hi;
            if (s[j].kind != Q_SARG_RANGE || !doc_equal(s[i].path, s[j].path) ||
                type_byte(ti) != type_byte(tj) || json_is_boolean(ti) != json_is_boolean(tj)) {
                j++;
                continue;
            }
            if (s[j].lo) {
                int c = s[i].lo ? q_cmp(s[j].lo, s[i].lo) : 1;
                if (c > 0 || (c == 0 && !s[j].lo_incl)) {
                    s[i].lo = s[j].lo;
                    s[i].lo_incl = s[j].lo_incl;
                }
            }
            if (s[j].hi) {
                int c = s[i].hi ? q_cmp(s[j].hi, s[i].hi) : -1;
                if (c < 0 || (c == 0 && !s[j].hi_incl)) {
                    s[i].hi = s[j].hi;
                    s[i].hi_incl = s[j].hi_incl;
                }
            }
            s[j] = s[--n];
        }
    }
    return n;
}

static int plan_make(struct rconn *db, const struct q_query *q, const json_t *pk_sarg,
                     const struct q_info *qi, const struct ixpol *pol, struct plan *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->kind = P_SCAN;
    /* A document written with x-ms-indexing-directive Exclude (or not
     * included under automatic: false) is in no index, so no query finds
     * it; a scan leaves it out too, so answers do not depend on the plan. */
    pl->hide_noix = !pol || ixpol_mode(pol) == IX_CONSISTENT;
    if (!ix_usable(db, pol))
        return 0;
    double t0 = mono_seconds() * 1e3;
    struct q_sarg sargs[MAX_SARGS];
    size_t ns = q_sargs(q, sargs, MAX_SARGS);
    if (ns > MAX_SARGS)
        ns = MAX_SARGS;
    ns = merge_ranges(sargs, ns);
    /* A partition key header is a condition on the partition key path: the
     * index reads that partition only. */
    if (pk_sarg && ns < MAX_SARGS)
        sargs[ns++] = (struct q_sarg){.kind = Q_SARG_EQ,
                                      .path = json_array_get(pk_sarg, 0),
                                      .values = json_array_get(pk_sarg, 1)};
    struct krange best[64], cur[64];
    size_t nbest = 0, ncur;
    long long best_count = -1;
    int best_sarg = -1;
    for (size_t i = 0; i < ns; i++) {
        if (sarg_ranges(pol, &sargs[i], cur, 64, &ncur) != 0)
            continue;
        long long cnt = ranges_count(db, cur, ncur, COUNT_LIMIT);
        if (cnt >= 0 && (best_count < 0 || cnt < best_count)) {
            for (size_t j = 0; j < nbest; j++)
                krange_free(&best[j]);
            memcpy(best, cur, ncur * sizeof *cur);
            nbest = ncur;
            best_count = cnt;
            best_sarg = (int)i;
        } else {
            for (size_t j = 0; j < ncur; j++)
                krange_free(&cur[j]);
        }
    }
    /* ORDER BY one path with a range condition on that path: read in order. */
    int desc = 0;
    const json_t *op = qi->n_order == 1 ? q_order(q, 0, &desc) : NULL;
    if (op && best_sarg >= 0) {
        for (size_t i = 0; i < ns; i++) {
            const struct q_sarg *s = &sargs[i];
            int fits = (s->kind == Q_SARG_RANGE || s->kind == Q_SARG_PREFIX ||
                        (s->kind == Q_SARG_EQ && json_array_size(s->values) == 1)) &&
                       doc_equal(s->path, op);
            if (!fits || sarg_ranges(pol, s, cur, 1, &ncur) != 0)
                continue;
            /* with TOP or LIMIT the ordered read stops early: no count */
            int bounded = qi->top >= 0 || qi->limit >= 0;
            long long cnt = bounded ? 0 : ranges_count(db, cur, ncur, COUNT_LIMIT);
            if (cnt >= 0 && (bounded || cnt <= 2 * best_count + 1000)) {
                pl->kind = P_ORDERED;
                pl->order = cur[0];
                pl->desc = desc;
                pl->index_used = 1;
                break;
            }
            krange_free(&cur[0]);
        }
    }
    /* ORDER BY one path and no condition narrows it: read the path's
     * scalar values in order when every document has one there (no
     * undefined, array or object values to place around them). */
    if (pl->kind == P_SCAN && op && (best_sarg < 0 || best_count >= 1000) &&
        whole_path_in_order(db, pol, op, &pl->order)) {
        pl->kind = P_ORDERED;
        pl->desc = desc;
        pl->index_used = 1;
    }
    /* ORDER BY several paths: a composite index, unless a condition is
     * selective enough to sort its few documents. */
    if (pl->kind == P_SCAN && qi->n_order > 1 && qi->n_order <= IX_MAX_COMP &&
        (best_sarg < 0 || best_count >= 1000)) {
        const json_t *paths[IX_MAX_COMP];
        int d[IX_MAX_COMP], rev = 0, ok = 1;
        for (size_t i = 0; i < qi->n_order; i++)
            ok &= (paths[i] = q_order(q, i, &d[i])) != NULL;
        int ci = ok ? ixpol_composite_find(pol, paths, d, qi->n_order, &rev) : -1;
        if (ci >= 0) {
            pl->kind = P_ORDERED;
            pl->desc = rev;
            pl->index_used = 1;
            if (put_byte(&pl->order.lo, 0xF0) || put_byte(&pl->order.lo, (unsigned char)ci) ||
                put_byte(&pl->order.hi, 0xF0) || put_byte(&pl->order.hi, (unsigned char)ci + 1))
                pl->kind = P_SCAN;
            pl->order.lo_incl = 1;
        }
    }
    if (pl->kind == P_SCAN && best_sarg >= 0) {
        if (ranges_seqs(db, best, nbest, &pl->seqs, &pl->nseqs) == 0) {
            pl->kind = P_SEQS;
            pl->index_used = 1;
        }
    }
    for (size_t j = 0; j < nbest; j++)
        krange_free(&best[j]);
    pl->lookup_ms = mono_seconds() * 1e3 - t0;
    return 0;
}

/* ---- continuation tokens ---- */

struct cont {
    int present, ordered, offset_mode;
    uint64_t seq, j, r, o;
    int64_t t;  /* when the query started: GetCurrentDateTimeStatic et al. */
    uint64_t h; /* which query, container and key (query_hash) */
    uint64_t n; /* rows sent before this token */
    uint64_t p; /* the plan's order (plan_sig) */
    struct doc_buf key;
};

static int cont_parse(const char *h, struct cont *c)
{
    memset(c, 0, sizeof *c);
    if (!h || !*h)
        return 0;
    json_t *t = doc_parse(h, strlen(h), NULL);
    int ok = json_is_object(t);
    json_t *o = json_object_get(t, "o"), *s = json_object_get(t, "s");
    json_t *j = json_object_get(t, "j"), *r = json_object_get(t, "r");
    json_t *k = json_object_get(t, "k"), *when = json_object_get(t, "t");
    double lim = 9007199254740992.0;
#define NUMOK(v) (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < lim)
    ok = ok && NUMOK(when);
    c->t = ok ? (int64_t)json_number_value(when) : 0;
    const char *hash = json_string_value(json_object_get(t, "h"));
    char *hend = NULL;
    c->h = hash ? strtoull(hash, &hend, 16) : 0;
    ok = ok && hash && hend && !*hend && *hash;
    if (ok && !o) {
        json_t *n = json_object_get(t, "n");
        const char *ps = json_string_value(json_object_get(t, "p"));
        char *pend = NULL;
        c->p = ps ? strtoull(ps, &pend, 16) : 0;
        ok = NUMOK(n) && ps && pend && !*pend && *ps;
        c->n = ok ? (uint64_t)json_number_value(n) : 0;
    }
    if (ok && o) {
        ok = NUMOK(o);
        c->offset_mode = 1;
        c->o = ok ? (uint64_t)json_number_value(o) : 0;
    } else if (ok) {
        ok = NUMOK(s) && NUMOK(j) && NUMOK(r) && (!k || json_is_string(k));
        if (ok) {
            c->seq = (uint64_t)json_number_value(s);
            c->j = (uint64_t)json_number_value(j);
            c->r = (uint64_t)json_number_value(r);
        }
        if (ok && k) {
            size_t n = json_string_length(k);
            unsigned char *raw = n % 4 == 0 && n < 64 * 1024 ? malloc(n / 4 * 3 + 1) : NULL;
            int got =
                raw ? EVP_DecodeBlock(raw, (const unsigned char *)json_string_value(k), (int)n)
                    : -1;
            if (got >= 0) {
                const char *kv = json_string_value(k);
                while (n > 0 && kv[n - 1] == '=') {
                    n--;
                    got--;
                }
            }
            ok = got >= 0 && doc_buf_put(&c->key, (const char *)raw, (size_t)got) == 0;
            c->ordered = 1;
            free(raw);
        }
    }
#undef NUMOK
    json_decref(t);
    c->present = ok;
    return ok ? 0 : -1;
}

/* FNV-1a of the request body: a token names the query it belongs to. */
static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}
#define FNV_BASIS 1469598103934665603ull

/* What a continuation token is bound to: the container (by resource id,
 * so also not a dropped and recreated one of the same name), the partition
 * key header, the range of effective partition keys and the query with its
 * parameters. A token of another container or key would resume at a
 * foreign position and skip rows. */
static uint64_t query_hash(const struct req *r, const struct coll *c)
{
    const char *pk = req_header((struct req *)r, "x-ms-documentdb-partitionkey");
    uint64_t h = fnv1a(FNV_BASIS, c->rid, strlen(c->rid) + 1);
    h = fnv1a(h, pk ? pk : "", pk ? strlen(pk) + 1 : 0);
    static const char *const epk[] = {"x-ms-start-epk", "x-ms-end-epk"};
    for (int i = 0; i < 2; i++) {
        const char *v = req_header((struct req *)r, epk[i]);
        if (v && *v)
            h = fnv1a(h ^ (uint64_t)(i + 1), v, strlen(v) + 1);
    }
    return fnv1a(h, r->body, r->body_len);
}

/* The order a plan reads documents in: 0 for seq order (SCAN and SEQS),
 * else a hash of the ordered index range and direction. A token names it,
 * so that a resumed query whose plan reads in another order starts over
 * and skips the rows already sent instead of resuming at a foreign
 * position (plans may change between pages as data changes). */
static uint64_t plan_sig(const struct plan *pl)
{
    if (pl->kind != P_ORDERED)
        return 0;
    uint64_t h = fnv1a(FNV_BASIS ^ (uint64_t)pl->desc, pl->order.lo.p, pl->order.lo.len);
    return fnv1a(h, pl->order.hi.p, pl->order.hi.len) | 1;
}

/* o: rows sent so far, with this page (the "n" of a streaming token, the
 * "o" of a replayed one). */
static char *cont_make(const struct plan *pl, int streaming, uint64_t seq, uint64_t j, uint64_t r,
                       const struct doc_buf *key, uint64_t o, int64_t t, uint64_t h)
{
    char hx[24], px[24];
    snprintf(hx, sizeof hx, "%" PRIx64, h);
    snprintf(px, sizeof px, "%" PRIx64, plan_sig(pl));
    json_t *tok =
        streaming ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:s}", "s", (json_int_t)seq, "j", (json_int_t)j,
                              "r", (json_int_t)r, "t", (json_int_t)t, "n", (json_int_t)o, "p", px)
                  : json_pack("{s:I,s:I}", "o", (json_int_t)o, "t", (json_int_t)t);
    if (tok && streaming && pl->kind == P_ORDERED) {
        char *b64 = malloc(4 * ((key->len + 2) / 3) + 1);
        if (b64) {
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)key->p, (int)key->len);
            json_object_set_new(tok, "k", json_string(b64));
        }
        if (!b64 || !json_object_get(tok, "k")) {
            json_decref(tok);
            tok = NULL;
        }
        free(b64);
    }
    if (tok && json_object_set_new(tok, "h", json_string(hx)) != 0) {
        json_decref(tok);
        tok = NULL;
    }
    char *text = tok ? json_dumps(tok, JSON_COMPACT) : NULL;
    json_decref(tok);
    return text;
}

/* ---- candidate documents ---- */

/* A source of (seq, key) pairs in the plan's order, starting at the resume
 * point; documents are then loaded by seq. */
struct src {
    struct plan *pl;
    const char *pk; /* NULL, a canonical key, or a prefix of one (pk_prefix) */
    size_t pk_len;
    int pk_prefix;
    const char *epk_lo, *epk_hi; /* a range of effective partition keys, or NULL */
    sqlite3_stmt *st;            /* scan rows or ordered index entries */
    sqlite3_stmt *load;          /* one document by seq */
    size_t si;                   /* P_SEQS position */
    /* P_ORDERED descending: the current run of equal keys, ascending seq */
    uint64_t *run;
    size_t nrun, irun, caprun;
    struct doc_buf runkey, pending_key, resume_key;
    uint64_t pending_seq;
    int pending, first_run;
    uint64_t resume_seq;
    struct doc_buf key; /* key of the current entry (ORDERED) */
    /* ORDERED: the log's entries of the range (ixdelta.c), LOG_CHUNK at a
     * time in the plan's direction, merged with the statement's rows by
     * ord_fetch */
    struct doc_buf lkeys;
    struct lentry {
        size_t off, len;
        uint64_t seq;
    } * lent;
    size_t nlent, caplent, ilent;
    int log_more; /* the log may have more entries than those taken */
    struct rconn *rc;
    int sq_have, sq_eof; /* the statement's next row is held in sq_key/sq_seq */
    struct doc_buf sq_key;
    uint64_t sq_seq;
};

#define LOG_CHUNK 128 /* log entries an ORDERED source copies at a time */

static int collect_entry(void *arg, const char *key, size_t len, uint64_t seq)
{
    struct src *s = arg;
    if (doc_grow(&s->lent, &s->caplent, s->nlent, sizeof *s->lent))
        return AT_ENOMEM;
    s->lent[s->nlent++] = (struct lentry){s->lkeys.len, len, seq};
    if (doc_buf_put(&s->lkeys, key, len))
        return AT_ENOMEM;
    return s->nlent == LOG_CHUNK;
}

/* The log's next entries of the ORDERED range, in the plan's direction,
 * after the last ones taken (first: from the resume point, as the
 * statement's condition has it). */
static int log_fill(struct src *s)
{
    struct dx_pos from, *fp = NULL;
    struct doc_buf last = {0};
    if (s->nlent) {
        const struct lentry *l = &s->lent[s->nlent - 1];
        if (doc_buf_put(&last, s->lkeys.p + l->off, l->len))
            return AT_ENOMEM;
        from = (struct dx_pos){last.p, last.len, s->pl->desc ? l->seq - 1 : l->seq + 1};
        fp = &from;
    } else if (s->resume_key.p) {
        from = (struct dx_pos){s->resume_key.p, s->resume_key.len,
                               s->pl->desc ? UINT64_MAX : s->resume_seq};
        fp = &from;
    }
    s->nlent = s->ilent = 0;
    s->lkeys.len = 0;
    int rc = log_scan(s->rc, &s->pl->order, s->pl->desc, fp, collect_entry, s);
    doc_buf_free(&last);
    s->log_more = !rc && s->nlent == LOG_CHUNK;
    return rc;
}

/* The next ORDERED entry of ix and the log together, in the plan's
 * direction: 1 with *key (valid until the next call) and *seq, 0 at the
 * end, <0 on error. An entry in both (invariant 1 says none is) comes
 * once. */
static int ord_fetch(struct src *s, const char **key, size_t *klen, uint64_t *seq)
{
    if (!s->sq_have && !s->sq_eof) {
        if (sqlite3_step(s->st) != SQLITE_ROW) {
            s->sq_eof = 1; /* (stepping again after the end would restart it) */
        } else {
            s->sq_key.len = 0;
            if (doc_buf_put(&s->sq_key, sqlite3_column_blob(s->st, 0),
                            (size_t)sqlite3_column_bytes(s->st, 0)))
                return AT_ENOMEM;
            s->sq_seq = (uint64_t)sqlite3_column_int64(s->st, 1);
            s->sq_have = 1;
        }
    }
    if (s->ilent == s->nlent && s->log_more) {
        int rc = log_fill(s);
        if (rc)
            return rc;
    }
    const struct lentry *l = s->ilent < s->nlent ? &s->lent[s->ilent] : NULL;
    if (!s->sq_have && !l)
        return 0;
    int c = !l ? -1 : !s->sq_have ? 1 : 0; /* <0: the statement's row first */
    if (l && s->sq_have) {
        size_t a = s->sq_key.len;
        c = memcmp(s->sq_key.p, s->lkeys.p + l->off, a < l->len ? a : l->len);
        c = c ? c : (a > l->len) - (a < l->len);
        c = c ? c : (s->sq_seq > l->seq) - (s->sq_seq < l->seq);
        if (s->pl->desc)
            c = -c;
    }
    if (c <= 0) {
        *key = s->sq_key.p;
        *klen = s->sq_key.len;
        *seq = s->sq_seq;
        s->sq_have = 0;
        if (c == 0)
            s->ilent++;
    } else {
        *key = s->lkeys.p + l->off;
        *klen = l->len;
        *seq = l->seq;
        s->ilent++;
    }
    return 1;
}

static int src_open(struct src *s, struct plan *pl, struct rconn *rc, const char *pk,
                    const struct cont *ct)
{
    memset(s, 0, sizeof *s);
    s->pl = pl;
    s->pk = pk;
    s->pk_len = pk ? strlen(pk) : 0;
    s->pk_prefix = pk && srv_pk_is_prefix(pk);
    uint64_t from = ct->present && !ct->offset_mode ? ct->seq : 0;
    s->resume_seq = from;
    /* Expired documents (ttl.c) are not there, though not yet deleted. */
    sqlite3_int64 now = (sqlite3_int64)time(NULL);
    if (!(s->load = rconn_stmt(rc, "SELECT pk, body FROM docs WHERE seq=?1" DOC_LIVE("?2"))))
        return AT_ESQLITE;
    sqlite3_bind_int64(s->load, 2, now);
    if (pl->kind == P_SCAN) {
#define LIVE DOC_LIVE("?3")
        static const char *const scan_sql[2][2] = {
            {"SELECT seq, pk, body FROM docs WHERE seq >= ?1" LIVE " ORDER BY seq",
             "SELECT seq, pk, body FROM docs WHERE seq >= ?1 AND pk = ?2" LIVE " ORDER BY seq"},
            {"SELECT seq, pk, body FROM docs WHERE seq >= ?1 AND noix IS NULL" LIVE " ORDER BY seq",
             "SELECT seq, pk, body FROM docs WHERE seq >= ?1 AND pk = ?2 AND noix IS NULL" LIVE
             " ORDER BY seq"}};
#undef LIVE
        const int exact = pk && !s->pk_prefix; /* a prefix is matched in src_next */
        const char *sql = scan_sql[pl->hide_noix][exact];
        if (!(s->st = rconn_stmt(rc, sql)))
            return AT_ESQLITE;
        sqlite3_bind_int64(s->st, 1, (sqlite3_int64)from);
        if (exact)
            sqlite3_bind_text(s->st, 2, pk, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->st, 3, now);
        return 0;
    }
    if (pl->kind == P_SEQS) {
        while (s->si < pl->nseqs && pl->seqs[s->si] < from)
            s->si++;
        return 0;
    }
    const struct krange *k = &pl->order;
    char sql[256];
    const int resume = ct->present && ct->ordered;
    if (!pl->desc)
        snprintf(sql, sizeof sql,
                 "SELECT k, seq FROM ix WHERE k %s ?1 AND k %s ?2%s ORDER BY k, seq",
                 k->lo_incl ? ">=" : ">", k->hi_incl ? "<=" : "<",
                 resume ? " AND (k, seq) >= (?3, ?4)" : "");
    else
        snprintf(sql, sizeof sql,
                 "SELECT k, seq FROM ix WHERE k %s ?1 AND k %s ?2%s ORDER BY k DESC, seq DESC",
                 k->lo_incl ? ">=" : ">", k->hi_incl ? "<=" : "<", resume ? " AND k <= ?3" : "");
    if (!(s->st = rconn_stmt(rc, sql)))
        return AT_ESQLITE;
    bind_range(s->st, k);
    if (resume) {
        sqlite3_bind_blob(s->st, 3, ct->key.p, (int)ct->key.len, SQLITE_TRANSIENT);
        if (!pl->desc)
            sqlite3_bind_int64(s->st, 4, (sqlite3_int64)ct->seq);
        s->first_run = 1;
        if (doc_buf_put(&s->resume_key, ct->key.p, ct->key.len))
            return AT_ENOMEM;
    }
    s->rc = rc;
    return log_fill(s);
}

static void src_close(struct src *s)
{
    if (s->st)
        sqlite3_reset(s->st); /* statements belong to the connection's cache */
    if (s->load)
        sqlite3_reset(s->load);
    free(s->run);
    doc_buf_free(&s->runkey);
    doc_buf_free(&s->resume_key);
    doc_buf_free(&s->pending_key);
    doc_buf_free(&s->key);
    doc_buf_free(&s->lkeys);
    doc_buf_free(&s->sq_key);
    free(s->lent);
}

/* Descending ORDERED: fill the next run of equal keys (ascending seq). */
static int next_run(struct src *s)
{
    s->nrun = s->irun = 0;
    const char *k;
    size_t kl;
    if (!s->pending) {
        int r = ord_fetch(s, &k, &kl, &s->pending_seq);
        if (r <= 0)
            return r;
        s->pending_key.len = 0;
        if (doc_buf_put(&s->pending_key, k, kl))
            return AT_ENOMEM;
        s->pending = 1;
    }
    s->runkey.len = 0;
    if (doc_buf_put(&s->runkey, s->pending_key.p, s->pending_key.len))
        return AT_ENOMEM;
    for (;;) {
        if (push_u64(&s->run, &s->nrun, &s->caprun, s->pending_seq))
            return AT_ENOMEM;
        s->pending = 0;
        int r = ord_fetch(s, &k, &kl, &s->pending_seq);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        s->pending_key.len = 0;
        if (doc_buf_put(&s->pending_key, k, kl))
            return AT_ENOMEM;
        s->pending = 1;
        if (kl != s->runkey.len || memcmp(k, s->runkey.p, kl) != 0)
            break;
    }
    for (size_t a = 0, b = s->nrun - 1; a < b; a++, b--) {
        uint64_t t = s->run[a];
        s->run[a] = s->run[b];
        s->run[b] = t;
    }
    if (s->first_run) { /* resuming inside this run, if it is still there */
        s->first_run = 0;
        if (s->runkey.len == s->resume_key.len &&
            memcmp(s->runkey.p, s->resume_key.p, s->runkey.len) == 0)
            while (s->irun < s->nrun && s->run[s->irun] < s->resume_seq)
                s->irun++;
    }
    return 1;
}

/* Whether a document's canonical partition key is the query's, or starts
 * with its components (a prefix of a hierarchical key). */
static int pk_match(const struct src *s, const char *dpk)
{
    if (!dpk)
        return 0;
    return s->pk_prefix ? strncmp(dpk, s->pk, s->pk_len) == 0 : strcmp(dpk, s->pk) == 0;
}

/* Whether a document lies in the request's range of effective partition
 * keys (x-ms-start-epk, x-ms-end-epk), if it names one. */
static int epk_match(const struct src *s, const char *dpk)
{
    return !s->epk_lo || pk_in_epk(dpk, s->epk_lo, s->epk_hi);
}

/* The next candidate: 1 with *seq and the document loaded (s->load row
 * current: column 0 pk, 1 body), 0 at the end, <0 error. */
static int src_next(struct src *s, uint64_t *seq, const char **pk, const char **body, size_t *blen)
{
    for (;;) {
        sqlite3_stmt *row = NULL;
        if (s->pl->kind == P_SCAN) {
            if (sqlite3_step(s->st) != SQLITE_ROW)
                return 0;
            *seq = (uint64_t)sqlite3_column_int64(s->st, 0);
            *pk = (const char *)sqlite3_column_text(s->st, 1);
            if ((s->pk_prefix && !pk_match(s, *pk)) || !epk_match(s, *pk))
                continue;
            *body = (const char *)sqlite3_column_text(s->st, 2);
            *blen = (size_t)sqlite3_column_bytes(s->st, 2);
            return 1;
        }
        if (s->pl->kind == P_SEQS) {
            if (s->si == s->pl->nseqs)
                return 0;
            *seq = s->pl->seqs[s->si++];
        } else if (!s->pl->desc) {
            const char *k;
            size_t kl;
            int r = ord_fetch(s, &k, &kl, seq);
            if (r <= 0)
                return r;
            s->key.len = 0;
            if (doc_buf_put(&s->key, k, kl))
                return AT_ENOMEM;
        } else {
            while (s->irun == s->nrun) {
                int rc = next_run(s);
                if (rc <= 0)
                    return rc;
            }
            *seq = s->run[s->irun++];
            s->key.len = 0;
            if (doc_buf_put(&s->key, s->runkey.p, s->runkey.len))
                return AT_ENOMEM;
        }
        row = s->load;
        sqlite3_reset(row);
        sqlite3_bind_int64(row, 1, (sqlite3_int64)*seq);
        if (sqlite3_step(row) != SQLITE_ROW)
            continue; /* deleted since the index was read, or expired */
        *pk = (const char *)sqlite3_column_text(row, 0);
        if ((s->pk && !pk_match(s, *pk)) || !epk_match(s, *pk))
            continue;
        *body = (const char *)sqlite3_column_text(row, 1);
        *blen = (size_t)sqlite3_column_bytes(row, 1);
        return 1;
    }
}

/* ---- COUNT from the index ---- */

/* Whether the value's key is the whole value (not a string cut at
 * IX_STR_MAX bytes): only then does a key range count values exactly. */
static int whole_key(const json_t *v)
{
    return !v || !json_is_string(v) || json_string_length(v) <= IX_STR_MAX;
}

/* Whether WHERE is exactly one condition whose index ranges hold the
 * documents that pass it and no others: 1 with *out set (its paths and
 * values borrowed from q), else 0. */
static int exact_sarg(const struct q_query *q, const struct q_info *qi, struct q_sarg *out)
{
    struct q_sarg sg[MAX_SARGS];
    size_t ns = q_sargs(q, sg, MAX_SARGS);
    if (!qi->where_exact || ns == 0 || ns > MAX_SARGS)
        return 0;
    /* c.n >= 1 AND c.n < 9 is one range: conditions on one path merge */
    if (merge_ranges(sg, ns) != 1 || !sg[0].exact)
        return 0;
    const struct q_sarg *s = &sg[0];
    if (s->kind == Q_SARG_RANGE ? !whole_key(s->lo) || !whole_key(s->hi) : s->kind != Q_SARG_EQ)
        return 0;
    for (size_t i = 0; i < json_array_size(s->values); i++)
        if (!whole_key(json_array_get(s->values, i)))
            return 0;
    *out = *s;
    return 1;
}

/* SELECT VALUE COUNT(1) FROM c WHERE <one exact condition the index
 * holds>: the number of index entries in its range is the answer, since a
 * document has at most one value at a path and every document is indexed.
 * 1 with *n set, 0 when the query is not of that shape (run it), <0 on
 * error. */
static int count_from_index(struct rconn *rc, const struct q_query *q, const struct q_info *qi,
                            const struct ixpol *pol, long long *n)
{
    struct q_sarg sarg, *s = &sarg;
    if (!qi->count_only || !exact_sarg(q, qi, s) || !ix_usable(rc, pol))
        return 0;
    struct krange k[64];
    size_t nk;
    if (sarg_ranges(pol, s, k, 64, &nk) != 0)
        return 0;
    /* IN (1, 1.0) names one key twice: count each key once */
    size_t u = 0;
    for (size_t i = 0; i < nk; i++) {
        int dup = 0;
        for (size_t j = 0; j < u && !dup; j++)
            dup = k[j].lo.len == k[i].lo.len && memcmp(k[j].lo.p, k[i].lo.p, k[i].lo.len) == 0;
        if (dup)
            krange_free(&k[i]);
        else
            k[u++] = k[i];
    }
    *n = ranges_count(rc, k, u, LLONG_MAX);
    for (size_t i = 0; i < u; i++)
        krange_free(&k[i]);
    return *n < 0 ? -1 : 1;
}

/* ---- running a query ---- */

static void txn(struct rconn *rc, const char *sql)
{
    sqlite3_stmt *s = rconn_stmt(rc, sql);
    if (s) {
        sqlite3_step(s);
        sqlite3_reset(s);
    }
}

struct metrics {
    double total_ms, lookup_ms, load_ms, vm_ms;
    uint64_t retrieved, retrieved_bytes, output, output_bytes, index_hits;
};

static void metrics_header(struct req *r, const struct metrics *m, int index_used)
{
    double ratio = m->retrieved ? (double)(index_used ? m->index_hits : 0) / (double)m->retrieved
                                : (index_used ? 1.0 : 0.0);
    resp_header(r, "x-ms-documentdb-query-metrics",
                "totalExecutionTimeInMs=%.2f;queryCompileTimeInMs=0.00;"
                "queryLogicalPlanBuildTimeInMs=0.00;queryPhysicalPlanBuildTimeInMs=0.00;"
                "queryOptimizationTimeInMs=0.00;VMExecutionTimeInMs=%.2f;"
                "indexLookupTimeInMs=%.2f;documentLoadTimeInMs=%.2f;"
                "systemFunctionExecuteTimeInMs=0.00;userFunctionExecuteTimeInMs=0.00;"
                "retrievedDocumentCount=%" PRIu64 ";retrievedDocumentSize=%" PRIu64
                ";outputDocumentCount=%" PRIu64 ";outputDocumentSize=%" PRIu64
                ";writeOutputTimeInMs=0.00;indexUtilizationRatio=%.2f",
                m->total_ms, m->vm_ms + m->lookup_ms + m->load_ms, m->lookup_ms, m->load_ms,
                m->retrieved, m->retrieved_bytes, m->output, m->output_bytes, ratio);
}

/* Append rows [from, to) of a to the response buffer. A row that is the
 * document itself (SELECT *, SELECT VALUE c) is its stored text, not
 * printed again (doc, body: the document fed last, or NULL). */
static int put_rows(struct doc_buf *b, const json_t *a, size_t from, size_t to, size_t *count,
                    uint64_t *bytes, const json_t *doc, const char *body, size_t blen)
{
    for (size_t i = from; i < to; i++) {
        size_t before = b->len;
        const json_t *row = json_array_get(a, i);
        if ((*count && doc_buf_put(b, ",", 1)) ||
            (doc && row == doc ? doc_buf_put(b, body, blen) : doc_buf_json(b, row)))
            return AT_ENOMEM;
        (*count)++;
        *bytes += b->len - before;
    }
    return 0;
}

/* Whether the ordered plan's range is exactly WHERE: WHERE is one exact
 * condition (exact_sarg) whose single index range is the one the plan
 * reads, so every document read passes WHERE. */
static int range_is_where(const struct plan *pl, const struct q_query *q, const struct q_info *qi,
                          const struct ixpol *pol)
{
    struct q_sarg sarg;
    struct krange k[2];
    size_t nk;
    if (pl->kind != P_ORDERED || !exact_sarg(q, qi, &sarg) ||
        sarg_ranges(pol, &sarg, k, 2, &nk) != 0)
        return 0;
    const struct krange *o = &pl->order;
    int same = nk == 1 && k[0].lo_incl == o->lo_incl && k[0].hi_incl == o->hi_incl &&
               k[0].lo.len == o->lo.len && k[0].hi.len == o->hi.len &&
               memcmp(k[0].lo.p, o->lo.p, o->lo.len) == 0 &&
               memcmp(k[0].hi.p, o->hi.p, o->hi.len) == 0;
    for (size_t i = 0; i < nk; i++)
        krange_free(&k[i]);
    return same;
}

/* pk: canonical partition key text (NULL: all partitions); pk_sarg: [path,
 * [value]] for a one-path partition key, or NULL. */
static void run(struct req *r, struct coll *c, const struct q_query *q, const char *pk,
                const json_t *pk_sarg)
{
    double t0 = mono_seconds() * 1e3;
    struct metrics m = {0};
    struct q_info qi;
    q_info(q, &qi);
    const char *epk_lo, *epk_hi;
    int ranged = req_epk(r, &epk_lo, &epk_hi);
    if (ranged < 0)
        return;
    struct ixpol *pol = ix_policy(c);
    struct cont ct;
    if (cont_parse(req_header(r, "x-ms-continuation"), &ct) != 0) {
        ixpol_put(pol);
        doc_buf_free(&ct.key);
        srv_error(r, 400, 0, "The continuation token is invalid.");
        return;
    }
    uint64_t qhash = query_hash(r, c);
    if (ct.present && ct.h != qhash) {
        ixpol_put(pol);
        doc_buf_free(&ct.key);
        srv_error(r, 400, 0, "The continuation token does not belong to this query.");
        return;
    }
    if (qi.n_order && order_check(r, q, &qi, pol) != 0) {
        ixpol_put(pol);
        doc_buf_free(&ct.key);
        return;
    }
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        ixpol_put(pol);
        doc_buf_free(&ct.key);
        srv_error(r, 503, 0, "No store connection available; retry.");
        return;
    }
    long limit = req_max_items(r);
    struct plan pl;
    struct src s;
    memset(&s, 0, sizeof s);
    struct q_ctx ctx;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    ctx.now_ms = ct.present ? ct.t : (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    struct q_exec *x = NULL;
    json_t *stand_in = NULL; /* below: documents known to pass WHERE */
    json_t *rows = json_array();
    struct doc_buf b = {0};
    char *next = NULL;
    int err = 0, status = 0, more = 0;
    struct q_error qe = {0};
    size_t count = 0;
    struct dx_view view; /* the index log this snapshot sees (ixdelta.c) */
    dx_enter(&c->dx, &view);
    txn(rc, "BEGIN"); /* one snapshot for the plan and the reads */
    rc->view = &view;
    /* NULL: no index (none to read, or no view of its log) */
    rc->dx =
        pol && ixpol_mode(pol) != IX_NONE && dx_snapshot(&c->dx, rc, &view) == 0 ? &c->dx : NULL;
    long long counted;
    if (!pk && !ranged && !ct.present && count_from_index(rc, q, &qi, pol, &counted) == 1) {
        memset(&pl, 0, sizeof pl);
        pl.index_used = 1;
        m.lookup_ms = mono_seconds() * 1e3 - t0;
        char num[32];
        snprintf(num, sizeof num, "%lld", counted);
        err = doc_buf_puts(&b, "{\"_rid\":\"") || doc_buf_puts(&b, c->rid) ||
              doc_buf_puts(&b, "\",\"Documents\":[") || doc_buf_puts(&b, num);
        count = 1;
        m.output_bytes = strlen(num);
        goto counted_done;
    }
    plan_make(rc, q, pk_sarg, &qi, pol, &pl);
    m.lookup_ms = pl.lookup_ms;
    x = q_exec_new(q, &ctx);
    if (!x || !rows) {
        err = AT_ENOMEM;
        goto done;
    }
    if (pl.kind == P_ORDERED)
        q_exec_presorted(x);
    int streaming = q_exec_streaming(x);
    /* SELECT * read in order from a range that is exactly WHERE: each
     * document read passes, and its stored text is the row, so it is not
     * parsed (a stand-in takes its place in the executor). */
    if (streaming && qi.select_star && !qi.has_join && range_is_where(&pl, q, &qi, pol) &&
        (stand_in = json_object()) && q_exec_where_known(x) != 0) {
        json_decref(stand_in);
        stand_in = NULL;
    }
    /* A token from a plan that read in another order (plans change as
     * data does): run afresh and drop the rows already sent. */
    uint64_t sent = ct.present ? (ct.offset_mode ? ct.o : ct.n) : 0; /* rows of earlier pages */
    uint64_t replay = 0;
    if (ct.present && (ct.offset_mode ? streaming : (!streaming || ct.p != plan_sig(&pl)))) {
        replay = sent;
        ct.present = 0;
    }
    if (src_open(&s, &pl, rc, pk, &ct) != 0) {
        err = AT_ENOMEM;
        goto done;
    }
    if (ranged) {
        s.epk_lo = epk_lo;
        s.epk_hi = epk_hi;
    }
    if (streaming && ct.present)
        q_exec_resume(x, ct.r);
    err = doc_buf_puts(&b, "{\"_rid\":\"") || doc_buf_puts(&b, c->rid) ||
          doc_buf_puts(&b, "\",\"Documents\":[");
    uint64_t seq;
    const char *dpk, *body;
    size_t blen, page_bytes = 0;
    int got;
    while (!err && !q_exec_done(x) && (got = src_next(&s, &seq, &dpk, &body, &blen)) == 1) {
        double tl = mono_seconds() * 1e3;
        json_t *doc = stand_in ? json_incref(stand_in) : doc_parse(body, blen, NULL);
        m.load_ms += mono_seconds() * 1e3 - tl;
        if (!doc) {
            status = srv_error(r, 500, 0, "A stored document is damaged.");
            goto done;
        }
        m.retrieved++;
        m.retrieved_bytes += blen;
        uint64_t passed = q_exec_rows_passed(x);
        size_t before = json_array_size(rows);
        double tv = mono_seconds() * 1e3;
        int fe = q_exec_feed(x, doc, rows, &qe);
        m.vm_ms += mono_seconds() * 1e3 - tv;
        if (fe != 0) {
            json_decref(doc);
            status = srv_error(r, qe.status ? qe.status : 400, 0, "%s", qe.msg);
            goto done;
        }
        if (q_exec_rows_passed(x) > passed)
            m.index_hits++;
        if (!streaming) {
            json_decref(doc);
            if (mono_seconds() * 1e3 - t0 > QUERY_SECONDS * 1e3) {
                status = srv_error(r, 408, 0,
                                   "The query ran for more than %.0f seconds without an answer "
                                   "and was stopped: a query that sees every document before "
                                   "its first row (aggregates, GROUP BY, DISTINCT, ORDER BY "
                                   "without an index) must finish within one request.",
                                   QUERY_SECONDS);
                goto done;
            }
            continue;
        }
        size_t made = json_array_size(rows) - before;
        size_t skip = 0;
        if (ct.present && seq == ct.seq &&
            (!ct.ordered ||
             (s.key.len == ct.key.len && memcmp(s.key.p, ct.key.p, s.key.len) == 0))) {
            skip = ct.j < made ? (size_t)ct.j : made; /* rows the last page had */
            ct.present = 0;
        } else if (ct.present) {
            ct.present = 0; /* the resume document is gone: nothing to drop */
        }
        size_t drop = replay < made - skip ? (size_t)replay : made - skip;
        replay -= drop;
        skip += drop;
        size_t room = (size_t)limit - count;
        size_t take = made - skip < room ? made - skip : room;
        err = put_rows(&b, rows, before + skip, before + skip + take, &count, &m.output_bytes, doc,
                       body, blen);
        page_bytes += blen;
        if (skip + take < made || (count == (size_t)limit) || page_bytes > PAGE_BYTES ||
            mono_seconds() * 1e3 - t0 > PAGE_SECONDS * 1e3) {
            /* page full: resume at this document unless it is finished */
            int finished = skip + take == made;
            if (!q_exec_done(x) || !finished) {
                more = 1;
                next = cont_make(&pl, 1, seq, skip + take, passed, &s.key, sent + count, ctx.now_ms,
                                 qhash);
            }
            json_array_clear(rows);
            json_decref(doc);
            break;
        }
        json_array_clear(rows);
        json_decref(doc);
    }
    if (!err && !streaming) {
        json_array_clear(rows);
        if (q_exec_finish(x, rows, &qe) != 0) {
            status = srv_error(r, qe.status ? qe.status : 400, 0, "%s", qe.msg);
            goto done;
        }
        size_t total = json_array_size(rows);
        uint64_t skip_rows = ct.present ? ct.o : replay;
        size_t from = skip_rows < total ? (size_t)skip_rows : total;
        size_t to = from + (size_t)limit < total ? from + (size_t)limit : total;
        err = put_rows(&b, rows, from, to, &count, &m.output_bytes, NULL, NULL, 0);
        if (to < total) {
            more = 1;
            next = cont_make(&pl, 0, 0, 0, 0, NULL, to, ctx.now_ms, qhash);
        }
    }
counted_done:;
    char num[32];
    snprintf(num, sizeof num, "%zu", count);
    if (!err)
        err = doc_buf_puts(&b, "],\"_count\":") || doc_buf_puts(&b, num) || doc_buf_puts(&b, "}");
    if (!err && more && !next)
        err = AT_ENOMEM;
done:
    txn(rc, "COMMIT");
    dx_leave(&c->dx, &view);
    rc->dx = NULL;
    rc->view = NULL;
    src_close(&s);
    coll_reader_put(c, rc);
    m.output = count;
    if (!status && err) {
        srv_error(r, 500, 0, "Out of memory.");
    } else if (!status) {
        resp_body(r, 200, b.p, b.len);
        b.p = NULL;
        resp_header(r, "x-ms-item-count", "%zu", count);
        if (next)
            resp_header(r, "x-ms-continuation", "%s", next);
        m.total_ms = mono_seconds() * 1e3 - t0;
        if (req_header_true(r, "x-ms-documentdb-populatequerymetrics"))
            metrics_header(r, &m, pl.index_used);
    }
    json_decref(stand_in);
    free(next);
    doc_buf_free(&b);
    json_decref(rows);
    q_exec_free(x);
    plan_free(&pl);
    doc_buf_free(&ct.key);
    ixpol_put(pol);
}

/* ---- requests ---- */

static struct q_query *parse_body(struct req *r)
{
    json_t *b = doc_parse(r->body, r->body_len, NULL);
    json_t *text = json_object_get(b, "query");
    json_t *params = json_object_get(b, "parameters");
    if (!json_is_string(text) || (params && !json_is_array(params) && !json_is_null(params))) {
        json_decref(b);
        srv_error(r, 400, 0, "The query body must be {\"query\": ..., \"parameters\": [...]}.");
        return NULL;
    }
    struct q_error e = {0};
    struct q_query *q = q_parse(json_string_value(text), json_string_length(text),
                                json_is_array(params) ? params : NULL, &e);
    json_decref(b);
    if (!q)
        srv_error(r, e.status ? e.status : 400, 0, "%s", e.msg);
    return q;
}

void query_list_handle(struct req *r, const char *rid, const char *key, const json_t *list)
{
    struct q_query *q = parse_body(r);
    if (!q)
        return;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    struct q_ctx ctx = {.now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000};
    struct q_exec *x = q_exec_new(q, &ctx);
    json_t *rows = json_array();
    struct q_error e = {0};
    int rc = x && rows ? 0 : -1;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (rc || q_exec_done(x))
            break;
        rc = q_exec_feed(x, v, rows, &e);
    }
    if (!rc)
        rc = q_exec_finish(x, rows, &e);
    if (rc)
        srv_error(r, e.status ? e.status : 500, 0, "%s", e.msg[0] ? e.msg : "Out of memory.");
    else
        resp_list(r, rid, key, rows);
    json_decref(rows);
    q_exec_free(x);
    q_free(q);
}

int query_scope_check(struct req *r, size_t npaths, const char *pk_hdr, const char *xp_hdr)
{
    if (npaths == 0 || (pk_hdr && *pk_hdr) || (xp_hdr && strcasecmp(xp_hdr, "true") == 0))
        return 0;
    /* The service refuses this even when the container has one range. */
    return srv_error(r, 400, 0,
                     "Cross partition query is required but disabled. Please set "
                     "x-ms-documentdb-query-enablecrosspartition to true, specify "
                     "x-ms-documentdb-partitionkey, or revise your query to avoid this "
                     "exception.");
}

void query_handle(struct req *r, struct coll *c)
{
    struct q_query *q = parse_body(r);
    if (!q)
        return;
    if (query_scope_check(r, json_array_size(c->pk_paths),
                          req_header(r, "x-ms-documentdb-partitionkey"),
                          req_header(r, "x-ms-documentdb-query-enablecrosspartition")) != 0) {
        q_free(q);
        return;
    }
    json_t *pkv;
    char *pk;
    if (req_pk(r, c, &pkv, &pk, 0) == 0) {
        if (json_array_size(c->pk_paths) == 0) {
            free(pk);
            pk = NULL;
        }
        json_t *v = json_array_get(pkv, 0);
        json_t *pk_sarg = pk && json_array_size(c->pk_paths) == 1 && json_array_size(pkv) == 1 &&
                                  !json_is_object(v)
                              ? json_pack("[O,[O]]", json_array_get(c->pk_paths, 0), v)
                              : NULL;
        run(r, c, q, pk, pk_sarg);
        json_decref(pk_sarg);
        json_decref(pkv);
        free(pk);
    }
    q_free(q);
}

void query_plan_handle(struct req *r, struct coll *c)
{
    (void)c;
    struct q_query *q = parse_body(r);
    if (!q)
        return;
    struct q_info qi;
    q_info(q, &qi);
    /* One partition key range, and the server runs the whole query: the
     * plan leaves the SDK nothing to merge (COSMOS-REST.md, way 2). */
    json_t *plan =
        json_pack("{s:i,s:{s:s,s:n,s:n,s:n,s:[],s:[],s:[],s:[],s:[],s:{},s:s,s:b,s:n,s:b},"
                  "s:[{s:s,s:s,s:b,s:b}]}",
                  "partitionedQueryExecutionInfoVersion", 2, "queryInfo", "distinctType", "None",
                  "top", "offset", "limit", "orderBy", "orderByExpressions", "groupByExpressions",
                  "groupByAliases", "aggregates", "groupByAliasToAggregateType", "rewrittenQuery",
                  "", "hasSelectValue", qi.select_value, "dCountInfo", "hasNonStreamingOrderBy", 0,
                  "queryRanges", "min", "", "max", "FF", "isMinInclusive", 1, "isMaxInclusive", 0);
    q_free(q);
    resp_json(r, 200, plan);
    json_decref(plan);
}
