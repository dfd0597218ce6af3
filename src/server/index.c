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
    "CREATE TABLE IF NOT EXISTS ixmeta(k TEXT PRIMARY KEY, v);";

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

static int apply_diff(struct coll *c, sqlite3 *db, uint64_t seq, const struct ixkeys *old,
                      const struct ixkeys *nw)
{
    sqlite3_stmt *del = coll_wstmt(c, db, W_IX_DEL, "DELETE FROM ix WHERE k=?1 AND seq=?2");
    sqlite3_stmt *ins =
        coll_wstmt(c, db, W_IX_INS, "INSERT OR IGNORE INTO ix(k, seq) VALUES(?1, ?2)");
    if (!del || !ins)
        return AT_ESQLITE;
    size_t i = 0, j = 0;
    int rc = 0;
    while (!rc && (i < old->n || j < nw->n)) {
        int d = i == old->n ? 1 : j == nw->n ? -1 : ixkeys_cmp(old, i, nw, j);
        size_t len;
        const char *k;
        if (d < 0) {
            k = ixkeys_get(old, i++, &len);
            rc = step_key(del, k, len, seq);
        } else if (d > 0) {
            k = ixkeys_get(nw, j++, &len);
            rc = step_key(ins, k, len, seq);
        } else {
            i++;
            j++;
        }
    }
    return rc;
}

int ix_update(struct coll *c, sqlite3 *db, uint64_t seq, const char *old_body, json_t *newdoc,
              long long ts)
{
    if (!c->wpol || ixpol_mode(c->wpol) == IX_NONE)
        return 0;
    struct ixkeys old = {0}, nw = {0};
    json_t *od = old_body ? doc_parse(old_body, strlen(old_body), NULL) : NULL;
    int rc = old_body && !od ? AT_EFORMAT : 0;
    if (!rc)
        rc = add_keys(c->wpol, od, -1, &old);
    if (!rc)
        rc = add_keys(c->wpol, newdoc, ts, &nw);
    if (!rc)
        rc = apply_diff(c, db, seq, &old, &nw);
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
        meta_set(db, "ready", NULL, none))
        return AT_ESQLITE;
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
            rc = apply_diff(c, db, seq, &none, &nw);
        ixkeys_free(&nw);
        json_decref(doc);
        cursor = seq;
        n++;
    }
    if (!rc && n < REBUILD_BATCH) {
        b->done = 1;
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

void ix_close(struct coll *c)
{
    atomic_store(&c->ix_stop, 1);
    if (c->ix_thread_on) {
        pthread_join(c->ix_thread, NULL);
        c->ix_thread_on = 0;
    }
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
    if (ixpol_mode(p) == IX_NONE)
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
