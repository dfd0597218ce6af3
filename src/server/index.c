/*
 * index.c — a container's index: kept in the same encrypted store as its
 * documents and written in the same transaction (ix_update, called by
 * dop_exec on the writer), rebuilt online when the policy changes, and read
 * by the query planner (query.c).
 *
 * Tables of a container store:
 *   ix(k BLOB, seq INTEGER, PRIMARY KEY(k, seq)) WITHOUT ROWID
 *       one row per indexed document node (key layout: ixpolicy.c)
 *   ixmeta(k TEXT PRIMARY KEY, v)
 *       'policy'  canonical text of the policy the index follows
 *       'cursor'  rebuild: documents with seq <= cursor are indexed
 *       'ready'   1 when every document is indexed
 *
 * Rebuild state machine (one rebuild thread per container while building):
 *
 *   ready(P) --policy change to Q: ix_reset on the writer-->  building(Q, 0)
 *   building(Q, n) --rebuild_batch: next 256 documents-->    building(Q, n')
 *   building(Q, n) --rebuild_batch finds no more-->          ready(Q)
 *
 * Invariants:
 *   1. The writer's policy (c->wpol) changes only inside ix_reset, on the
 *      writer, in the transaction that empties ix: every entry in ix was
 *      made under the policy recorded in ixmeta.
 *   2. A reader uses the index only when, in its own read transaction,
 *      ixmeta says ready under the policy the reader plans with.
 *   3. Index writes are idempotent (INSERT OR IGNORE), so the rebuild may
 *      index a document that a concurrent write indexed already.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv.h"

#define REBUILD_BATCH 256

const char IX_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS ix(k BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(k, seq)) "
    "WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ixmeta(k TEXT PRIMARY KEY, v);"
    "CREATE TABLE IF NOT EXISTS ixlog(n INTEGER PRIMARY KEY, seq INTEGER NOT NULL, adds BLOB, "
    "dels BLOB);";

/* Log entries (added and removed keys) after which the writer merges the
 * log into ix: more makes merges cheaper per entry (a merge writes each
 * leaf it touches once) and readers' memory larger (about 100 bytes per
 * entry, docs/query.md). */
#define MERGE_KEYS_DEFAULT 131072
static atomic_long merge_keys = MERGE_KEYS_DEFAULT;

void ix_set_merge_keys(long n)
{
    atomic_store(&merge_keys, n > 0 ? n : MERGE_KEYS_DEFAULT);
}

/* ---- writer side ---- */

static int add_keys(const struct ixpol *p, json_t *doc, long long ts, struct ixkeys *out)
{
    memset(out, 0, sizeof *out);
    if (!doc || !json_is_object(doc))
        return 0;
    int had = json_object_get(doc, "_ts") != NULL;
    if (ts >= 0 && json_object_set_new(doc, "_ts", json_real((double)ts)) != 0)
        return AT_ENOMEM;
    int rc = ix_doc_keys(p, doc, out);
    if (ts >= 0 && !had)
        json_object_del(doc, "_ts");
    return rc;
}

static int step_key(sqlite3_stmt *s, const char *k, size_t len, uint64_t seq)
{
    sqlite3_bind_blob(s, 1, k, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : AT_ESQLITE;
}

/* Document seq's keys go from old to nw. Directly in ix (the rebuild), or
 * through the log: added keys only logged, removed keys deleted from ix and
 * logged (they may still be in the log). */
static int apply_diff(struct coll *c, sqlite3 *db, uint64_t seq, const struct ixkeys *old,
                      const struct ixkeys *nw, int direct)
{
    sqlite3_stmt *del = coll_wstmt(c, db, W_IX_DEL, "DELETE FROM ix WHERE k=?1 AND seq=?2");
    sqlite3_stmt *ins =
        coll_wstmt(c, db, W_IX_INS, "INSERT OR IGNORE INTO ix(k, seq) VALUES(?1, ?2)");
    if (!del || !ins)
        return AT_ESQLITE;
    struct doc_buf adds = {0}, dels = {0};
    size_t i = 0, j = 0, logged = 0;
    int rc = 0;
    while (!rc && (i < old->n || j < nw->n)) {
        int d = i == old->n ? 1 : j == nw->n ? -1 : ixkeys_cmp(old, i, nw, j);
        size_t len;
        const char *k;
        if (d < 0) {
            k = ixkeys_get(old, i++, &len);
            rc = step_key(del, k, len, seq);
            if (!rc && !direct)
                rc = dx_put_key(&dels, k, len);
            logged++;
        } else if (d > 0) {
            k = ixkeys_get(nw, j++, &len);
            rc = direct ? step_key(ins, k, len, seq) : dx_put_key(&adds, k, len);
            logged++;
        } else {
            i++;
            j++;
        }
    }
    if (!rc && !direct && logged) {
        sqlite3_stmt *s = coll_wstmt(
            c, db, W_IX_LOG, "INSERT INTO ixlog(n, seq, adds, dels) VALUES(?1, ?2, ?3, ?4)");
        if (!s) {
            rc = AT_ESQLITE;
        } else {
            sqlite3_bind_int64(s, 1, (sqlite3_int64)c->dx_next++);
            sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
            if (adds.len)
                sqlite3_bind_blob(s, 3, adds.p, (int)adds.len, SQLITE_STATIC);
            if (dels.len)
                sqlite3_bind_blob(s, 4, dels.p, (int)dels.len, SQLITE_STATIC);
            rc = sqlite3_step(s) == SQLITE_DONE ? 0 : AT_ESQLITE;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            c->dx_pending += logged;
        }
    }
    doc_buf_free(&adds);
    doc_buf_free(&dels);
    return rc;
}

static int merge_due(sqlite3 *db, void *arg);

int ix_indexed(const struct ixpol *p, int directive)
{
    return directive ? directive > 0 : !p || ixpol_mode(p) != IX_CONSISTENT || ixpol_automatic(p);
}

void ix_prepare(struct coll *c, json_t *doc, int directive, struct ixpre *out)
{
    memset(out, 0, sizeof *out);
    struct ixpol *p = ix_policy(c);
    if (!p || ixpol_mode(p) == IX_NONE || !ix_indexed(p, directive)) {
        ixpol_put(p);
        return;
    }
    out->ts = (long long)time(NULL);
    if (add_keys(p, doc, out->ts, &out->keys) != 0) {
        ixpol_put(p);
        return;
    }
    out->pol = p;
}

void ixpre_free(struct ixpre *p)
{
    ixkeys_free(&p->keys);
    ixpol_put(p->pol);
    memset(p, 0, sizeof *p);
}

int ix_update(struct coll *c, sqlite3 *db, uint64_t seq, const char *old_body, json_t *newdoc,
              long long ts, const struct ixpre *pre)
{
    if (!c->wpol || ixpol_mode(c->wpol) == IX_NONE)
        return 0;
    struct ixkeys old = {0}, nw = {0};
    json_t *od = old_body ? doc_parse(old_body, strlen(old_body), NULL) : NULL;
    int rc = old_body && !od ? AT_EFORMAT : 0;
    /* keys computed early hold if the policy and the second are the same */
    int early = newdoc && pre && pre->pol == c->wpol && pre->ts == ts;
    if (!rc)
        rc = add_keys(c->wpol, od, -1, &old);
    if (!rc && !early)
        rc = add_keys(c->wpol, newdoc, ts, &nw);
    if (!rc)
        rc = apply_diff(c, db, seq, &old, early ? &pre->keys : &nw, 0);
    if (!rc && c->dx_pending >= (uint64_t)atomic_load(&merge_keys) && c->w)
        store_writer_after(c->w, merge_due, c);
    json_decref(od);
    ixkeys_free(&old);
    ixkeys_free(&nw);
    return rc;
}

static int meta_set(sqlite3 *db, const char *k, const char *text, long long num)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO ixmeta(k, v) VALUES(?1, ?2)", -1, &s,
                           NULL) != SQLITE_OK)
        return AT_ESQLITE;
    sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 2, num);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : AT_ESQLITE;
}

/* One logged key of a merge: its bytes at off in the merge's buffer. */
struct lent {
    size_t off;
    uint64_t seq;
    uint32_t len;
    uint32_t row; /* the log row's place in n order */
    uint8_t del;
};

static int lent_cmp_key(const struct lent *x, const char *xp, const struct lent *y, const char *yp)
{
    int c = memcmp(xp + x->off, yp + y->off, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int lent_cmp(const void *a, const void *b, void *base)
{
    const struct lent *x = a, *y = b;
    int c = lent_cmp_key(x, base, y, base);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Log rows read for a merge, then sorted by (key, seq, row). */
struct merging {
    struct doc_buf keys; /* the log rows' key lists, copied whole */
    struct lent *e;
    size_t n, cap;
    uint64_t seq;
    uint32_t row;
};

/* A key of a list already copied into m->keys (dx_list_keys over it). */
static int merge_key(void *arg, const uint8_t *k, size_t len, int del)
{
    struct merging *m = arg;
    if (doc_grow(&m->e, &m->cap, m->n, sizeof *m->e))
        return AT_ENOMEM;
    m->e[m->n++] = (struct lent){(size_t)((const char *)k - m->keys.p), m->seq, (uint32_t)len,
                                 m->row, (uint8_t)del};
    return 0;
}

static int merge_list(struct merging *m, sqlite3_stmt *s, int col, int del)
{
    size_t n = (size_t)sqlite3_column_bytes(s, col), at = m->keys.len;
    if (n == 0)
        return 0;
    if (doc_buf_put(&m->keys, sqlite3_column_blob(s, col), n))
        return AT_ENOMEM;
    return dx_list_keys((const uint8_t *)m->keys.p + at, n, del, merge_key, m);
}

static const char LOG_UPTO[] = "SELECT seq, adds, dels FROM ixlog WHERE n <= ?1";

/* Read the log rows sql selects (seq, adds, dels; in n order; ?1 bound to
 * bound) into m, room made for about expect keys, and sort them. */
static int merge_read(sqlite3 *db, const char *sql, uint64_t bound, size_t expect,
                      struct merging *m)
{
    memset(m, 0, sizeof *m);
    m->cap = expect + 64;
    if (!(m->e = malloc(m->cap * sizeof *m->e)))
        return AT_ENOMEM;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return AT_ESQLITE;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)bound);
    int rc = 0, step;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        m->seq = (uint64_t)sqlite3_column_int64(s, 0);
        m->row++; /* rows come in n order: row numbers order them as n does */
        rc = merge_list(m, s, 1, 0);
        if (!rc)
            rc = merge_list(m, s, 2, 1);
    }
    if (!rc && step != SQLITE_DONE)
        rc = AT_ESQLITE;
    sqlite3_finalize(s);
    if (!rc && m->n)
        qsort_r(m->e, m->n, sizeof *m->e, lent_cmp, m->keys.p);
    return rc;
}

static void merge_free(struct merging *m)
{
    free(m->e);
    doc_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

/* Rows per INSERT of a merge: one statement per row costs more than the
 * B-tree insert itself while the index is small (cursor opened and closed,
 * statement started and ended each time). */
#define MERGE_ROWS 64

/* Insert e[pick[0..n)] into ix: n == MERGE_ROWS through many, else one at
 * a time through one. */
static int insert_rows(sqlite3_stmt *many, sqlite3_stmt *one, const char *keys,
                       const struct lent *e, const size_t *pick, int n)
{
    if (n < MERGE_ROWS) {
        int rc = 0;
        for (int r = 0; !rc && r < n; r++)
            rc = step_key(one, keys + e[pick[r]].off, e[pick[r]].len, e[pick[r]].seq);
        return rc;
    }
    for (int r = 0; r < n; r++) {
        const struct lent *x = &e[pick[r]];
        sqlite3_bind_blob(many, 2 * r + 1, keys + x->off, (int)x->len, SQLITE_STATIC);
        sqlite3_bind_int64(many, 2 * r + 2, (sqlite3_int64)x->seq);
    }
    int rc = sqlite3_step(many);
    sqlite3_reset(many);
    return rc == SQLITE_DONE ? 0 : AT_ESQLITE;
}

/* Into ix, in key order: each (key, seq) of m as its last record left it,
 * except those that skip (sorted, may be empty) also has: a later log row
 * decides them. */
static int merge_insert(struct coll *c, sqlite3 *db, const struct merging *m,
                        const struct merging *skip)
{
    sqlite3_stmt *many = NULL;
    sqlite3_stmt *one =
        coll_wstmt(c, db, W_IX_INS, "INSERT OR IGNORE INTO ix(k, seq) VALUES(?1, ?2)");
    char sql[64 + MERGE_ROWS * 8];
    size_t at = (size_t)sprintf(sql, "INSERT OR IGNORE INTO ix(k, seq) VALUES(?,?)");
    for (int r = 1; r < MERGE_ROWS; r++)
        at += (size_t)sprintf(sql + at, ",(?,?)");
    if (!one || sqlite3_prepare_v2(db, sql, -1, &many, NULL) != SQLITE_OK)
        return AT_ESQLITE;
    const struct lent *e = m->e;
    const char *keys = m->keys.p;
    size_t pick[MERGE_ROWS], j = 0;
    int n = 0, rc = 0;
    for (size_t i = 0; !rc && i < m->n; i++) {
        int last = i + 1 == m->n || lent_cmp_key(&e[i + 1], keys, &e[i], keys) != 0;
        if (last && !e[i].del) {
            int d = 1;
            while (j < skip->n && (d = lent_cmp_key(&skip->e[j], skip->keys.p, &e[i], keys)) < 0)
                j++;
            if (d != 0)
                pick[n++] = i;
        }
        if (n == MERGE_ROWS || (i + 1 == m->n && n > 0)) {
            rc = insert_rows(many, one, keys, e, pick, n);
            n = 0;
        }
    }
    sqlite3_finalize(many);
    return rc;
}

static int merge_done(struct coll *c, sqlite3 *db, uint64_t upto, uint64_t left)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, "DELETE FROM ixlog WHERE n <= ?1", -1, &s, NULL) == SQLITE_OK
                 ? 0
                 : AT_ESQLITE;
    if (!rc) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)upto);
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : AT_ESQLITE;
    }
    sqlite3_finalize(s);
    if (!rc)
        rc = meta_set(db, "merged", NULL, (long long)upto);
    if (!rc)
        c->dx_pending = left;
    c->dx_epoch++;
    return rc;
}

int ix_merge(struct coll *c, sqlite3 *db)
{
    struct merging m, none = {0};
    int rc = merge_read(db, LOG_UPTO, c->dx_next - 1, c->dx_pending, &m);
    if (!rc)
        rc = merge_insert(c, db, &m, &none);
    merge_free(&m);
    return rc ? rc : merge_done(c, db, c->dx_next - 1, 0);
}

/*
 * A merge in the background. Reading and sorting the log is a third of a
 * merge's time, and needs no write lock: a thread of its own reads the log
 * rows up to upto (committed before it starts) on a reader connection and
 * sorts them; then merge_apply, on the writer, inserts them and deletes
 * those rows, so writes wait only for the inserts.
 *
 * Rows written in between (n > upto) may record the same (key, seq) again;
 * theirs is the last record, so merge_apply leaves such entries out of ix
 * (their rows stay in the log and decide them; ixdelta.c, invariant 1).
 * A merge, policy reset or rebuild in between changes the log under the
 * snapshot: dx_epoch tells, and merge_apply then does nothing.
 */
static void merge_failed(int rc)
{
    fprintf(stderr, "atrestd: an index log merge failed: %s (tried again later)\n",
            at_strerror(rc));
}

struct bg_merge {
    struct coll *c;
    uint64_t upto, epoch;
    size_t expect;
    struct merging m;
};

static int merge_apply(sqlite3 *db, void *arg)
{
    struct bg_merge *b = arg;
    struct coll *c = b->c;
    if (c->dx_epoch != b->epoch)
        return 0;
    struct merging later;
    int rc = merge_read(db, "SELECT seq, adds, dels FROM ixlog WHERE n > ?1", b->upto, 0, &later);
    if (!rc)
        rc = merge_insert(c, db, &b->m, &later);
    if (!rc)
        rc = merge_done(c, db, b->upto, later.n);
    merge_free(&later);
    return rc;
}

static void *merge_main(void *arg)
{
    struct bg_merge *b = arg;
    struct coll *c = b->c;
    struct rconn *r = coll_reader(c);
    int rc = r ? merge_read(r->db, LOG_UPTO, b->upto, b->expect, &b->m) : AT_ESQLITE;
    coll_reader_put(c, r);
    if (!rc && !atomic_load(&c->ix_stop))
        rc = store_write(c->w, merge_apply, b);
    if (rc)
        merge_failed(rc);
    merge_free(&b->m);
    free(b);
    atomic_store(&c->mg_done, 1);
    return NULL;
}

/* On the writer, once the batch that made the log due is answered: start a
 * background merge unless one runs (or the container closes); without a
 * thread, merge here. A merge that fails (a full disk, say) is rolled back
 * and tried again after a quarter more keys. */
static int merge_due(sqlite3 *db, void *arg)
{
    struct coll *c = arg;
    if (c->mg_on) {
        if (!atomic_load(&c->mg_done))
            return 0;
        pthread_join(c->mg_thread, NULL);
        c->mg_on = 0;
    }
    if (atomic_load(&c->ix_stop) || c->dx_pending < (uint64_t)atomic_load(&merge_keys))
        return 0;
    /* the next merge is due after a quarter more keys if this one fails */
    uint64_t retry = (uint64_t)atomic_load(&merge_keys) / 4;
    struct bg_merge *b = calloc(1, sizeof *b);
    if (b) {
        *b = (struct bg_merge){
            .c = c, .upto = c->dx_next - 1, .epoch = c->dx_epoch, .expect = c->dx_pending};
        atomic_store(&c->mg_done, 0);
        if (pthread_create(&c->mg_thread, NULL, merge_main, b) == 0) {
            pthread_setname_np(c->mg_thread, "ix-merge"); /* for top -H, perf */
            c->mg_on = 1;
            c->dx_pending = c->dx_pending > retry ? c->dx_pending - retry : 0;
            return 0;
        }
        free(b);
    }
    int rc = ix_merge(c, db);
    if (rc) {
        c->dx_pending -= retry;
        merge_failed(rc);
    }
    return rc;
}

struct reset {
    struct coll *c;
    struct ixpol *p;
};

/* On the writer: empty the index and follow policy p from now on. */
static int ix_reset(sqlite3 *db, void *arg)
{
    struct reset *a = arg;
    int none = ixpol_mode(a->p) == IX_NONE;
    if (sqlite3_exec(db, "DROP TABLE IF EXISTS ix", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, IX_SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
        meta_set(db, "policy", ixpol_canon(a->p), 0) || meta_set(db, "cursor", NULL, 0) ||
        meta_set(db, "ready", NULL, none) ||
        sqlite3_exec(db, "DELETE FROM ixlog", NULL, NULL, NULL) != SQLITE_OK ||
        meta_set(db, "merged", NULL, (long long)(a->c->dx_next - 1)))
        return AT_ESQLITE;
    a->c->dx_pending = 0;
    a->c->dx_epoch++;
    struct ixpol *old = a->c->wpol;
    a->c->wpol = ixpol_hold(a->p);
    ixpol_put(old);
    return 0;
}

/* On the writer: index the next documents after the cursor. Returns 0;
 * sets *done (arg) when every document is indexed. */
struct batch {
    struct coll *c;
    int done;
    int progress; /* percent, published once this batch commits: a reader
                     that sees 100 also sees the index ready */
};

static int rebuild_batch(sqlite3 *db, void *arg)
{
    struct batch *b = arg;
    struct coll *c = b->c;
    sqlite3_stmt *s = NULL;
    uint64_t cursor = 0, maxseq = 0;
    int rc = AT_ESQLITE;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT v FROM ixmeta WHERE k='cursor'), "
                           "(SELECT COALESCE(MAX(seq),0) FROM docs)",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto out;
    cursor = (uint64_t)sqlite3_column_int64(s, 0);
    maxseq = (uint64_t)sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, body FROM docs WHERE seq > ?1 AND noix IS NULL ORDER BY "
                           "seq LIMIT ?2",
                           -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)cursor);
    sqlite3_bind_int(s, 2, REBUILD_BATCH);
    int n = 0, step;
    rc = 0;
    while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
        const char *body = (const char *)sqlite3_column_text(s, 1);
        json_t *doc = doc_parse(body, (size_t)sqlite3_column_bytes(s, 1), NULL);
        struct ixkeys none = {0}, nw = {0};
        rc = doc ? add_keys(c->wpol, doc, -1, &nw) : AT_EFORMAT;
        if (!rc)
            rc = apply_diff(c, db, seq, &none, &nw, 1);
        ixkeys_free(&nw);
        json_decref(doc);
        cursor = seq;
        n++;
    }
    if (!rc && n < REBUILD_BATCH) {
        /* writes during the rebuild logged keys it may have put in ix too:
         * merged now, ix and the log share no entry (ixdelta.c, 1) */
        b->done = 1;
        rc = ix_merge(c, db);
        if (!rc)
            rc = meta_set(db, "ready", NULL, 1);
    }
    if (!rc)
        rc = meta_set(db, "cursor", NULL, (long long)cursor);
    if (!rc)
        b->progress = b->done ? 100 : maxseq ? (int)(cursor * 100 / (maxseq + 1)) : 0;
out:
    sqlite3_finalize(s);
    return rc;
}

static void *rebuild_main(void *arg)
{
    struct coll *c = arg;
    struct batch b = {.c = c};
    int failures = 0;
    while (!atomic_load(&c->ix_stop) && !b.done) {
        int rc = store_write(c->w, rebuild_batch, &b);
        if (!rc)
            atomic_store(&c->ix_progress, b.progress);
        if (rc) {
            if (++failures > 5 || atomic_load(&c->ix_stop)) {
                fprintf(stderr,
                        "atrestd: an index rebuild stopped: %s (it resumes at the next "
                        "start)\n",
                        at_strerror(rc));
                break;
            }
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static void rebuild_start(struct coll *c)
{
    if (c->ix_thread_on) {
        pthread_join(c->ix_thread, NULL);
        c->ix_thread_on = 0;
    }
    atomic_store(&c->ix_stop, 0);
    if (pthread_create(&c->ix_thread, NULL, rebuild_main, c) == 0)
        c->ix_thread_on = 1;
    else
        fprintf(stderr, "atrestd: could not start an index rebuild thread\n");
}

struct ixpol *ix_policy(struct coll *c)
{
    pthread_mutex_lock(&c->pool_mu);
    struct ixpol *p = c->pol ? ixpol_hold(c->pol) : NULL;
    pthread_mutex_unlock(&c->pool_mu);
    return p;
}

static void set_reader_policy(struct coll *c, struct ixpol *p)
{
    pthread_mutex_lock(&c->pool_mu);
    struct ixpol *old = c->pol;
    c->pol = ixpol_hold(p);
    pthread_mutex_unlock(&c->pool_mu);
    ixpol_put(old);
}

/* The writer's log position and backlog, before it runs anything. */
static int log_open(struct coll *c, sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int ok = sqlite3_prepare_v2(db,
                                "SELECT max(COALESCE((SELECT v FROM ixmeta WHERE k='merged'), 0), "
                                "COALESCE((SELECT max(n) FROM ixlog), 0)), "
                                "(SELECT count(*) FROM ixlog)",
                                -1, &s, NULL) == SQLITE_OK &&
             sqlite3_step(s) == SQLITE_ROW;
    if (ok) {
        c->dx_next = (uint64_t)sqlite3_column_int64(s, 0) + 1;
        c->dx_pending = (uint64_t)sqlite3_column_int64(s, 1) * 12; /* about; merges sooner */
    }
    sqlite3_finalize(s);
    return ok ? 0 : AT_ESQLITE;
}

int ix_open(struct coll *c)
{
    char msg[300];
    struct ixpol *p = NULL;
    if (ixpol_parse(json_object_get(c->def, "indexingPolicy"), &p, msg, sizeof msg) != 0) {
        fprintf(stderr, "atrestd: a container's indexing policy is invalid: %s\n", msg);
        return AT_EFORMAT;
    }
    set_reader_policy(c, p);
    sqlite3 *db = store_db(c->st);
    if (log_open(c, db) != 0) {
        ixpol_put(p);
        return AT_ESQLITE;
    }
    sqlite3_stmt *s = NULL;
    char *canon = NULL;
    int ready = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT (SELECT v FROM ixmeta WHERE k='policy'), "
                           "(SELECT v FROM ixmeta WHERE k='ready')",
                           -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        canon = t ? strdup(t) : NULL;
        ready = sqlite3_column_int(s, 1);
    }
    sqlite3_finalize(s);
    int rc = 0;
    if (!canon || strcmp(canon, ixpol_canon(p)) != 0) {
        struct reset a = {c, p};
        rc = store_write(c->w, ix_reset, &a);
        ready = ixpol_mode(p) == IX_NONE;
        atomic_store(&c->ix_progress, ready ? 100 : 0);
    } else {
        c->wpol = ixpol_hold(p); /* the writer has run nothing yet */
        atomic_store(&c->ix_progress, ready ? 100 : 0);
    }
    free(canon);
    if (!rc && !ready)
        rebuild_start(c);
    ixpol_put(p);
    return rc;
}

int ix_policy_change(struct coll *c, struct ixpol *p)
{
    if (strcmp(ixpol_canon(p), ixpol_canon(c->pol)) == 0)
        return 0;
    atomic_store(&c->ix_stop, 1);
    if (c->ix_thread_on) {
        pthread_join(c->ix_thread, NULL);
        c->ix_thread_on = 0;
    }
    struct reset a = {c, p};
    int rc = store_write(c->w, ix_reset, &a);
    if (rc)
        return rc;
    atomic_store(&c->ix_progress, ixpol_mode(p) == IX_NONE ? 100 : 0);
    set_reader_policy(c, p);
    if (ixpol_mode(p) != IX_NONE)
        rebuild_start(c);
    return 0;
}

static int merge_all(sqlite3 *db, void *arg)
{
    struct coll *c = arg;
    sqlite3_stmt *s = NULL;
    int rows =
        sqlite3_prepare_v2(db, "SELECT EXISTS(SELECT 1 FROM ixlog)", -1, &s, NULL) == SQLITE_OK &&
                sqlite3_step(s) == SQLITE_ROW
            ? sqlite3_column_int(s, 0)
            : -1;
    sqlite3_finalize(s);
    return rows < 0 ? AT_ESQLITE : rows ? ix_merge(c, db) : 0;
}

static int no_op(sqlite3 *db, void *arg)
{
    (void)db;
    (void)arg;
    return 0;
}

void ix_close(struct coll *c)
{
    atomic_store(&c->ix_stop, 1);
    if (c->ix_thread_on) {
        pthread_join(c->ix_thread, NULL);
        c->ix_thread_on = 0;
    }
    /* Once the writer has run something after ix_stop was set, no
     * merge_due starts a background merge any more (a stopping writer runs
     * nothing at all), and one that runs leaves its rows to the merge
     * below. */
    int drained = c->w ? store_write(c->w, no_op, NULL) : 0;
    (void)drained;
    if (c->mg_on) {
        pthread_join(c->mg_thread, NULL);
        c->mg_on = 0;
    }
    /* A clean stop leaves the log merged: the next start has nothing to
     * read back, and every entry is in ix for whatever opens the store
     * next (an atrestd from before the log, too). A dropped container's
     * store is shredded: nothing to merge. */
    if (c->w && !c->dead && store_write(c->w, merge_all, c) != 0)
        fprintf(stderr, "atrestd: merging an index log at shutdown failed (it is merged later)\n");
}

void ix_free(struct coll *c)
{
    ixpol_put(c->wpol);
    ixpol_put(c->pol);
    c->wpol = c->pol = NULL;
}

/* ---- reader side ---- */

int ix_usable(struct rconn *rc, const struct ixpol *p)
{
    if (ixpol_mode(p) == IX_NONE || !rc->dx) /* no view of the index log: ix alone misses entries */
        return 0;
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT (SELECT v FROM ixmeta WHERE k='policy'), "
                                     "(SELECT v FROM ixmeta WHERE k='ready')");
    int ok = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        ok = t && sqlite3_column_int(s, 1) == 1 && strcmp(t, ixpol_canon(p)) == 0;
    }
    if (s)
        sqlite3_reset(s);
    return ok;
}

int ix_progress(struct coll *c)
{
    return atomic_load(&c->ix_progress);
}
