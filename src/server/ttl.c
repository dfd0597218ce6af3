/*
 * ttl.c — time to live, as Cosmos has it (docs/server.md, "Time to live").
 *
 *   container defaultTtl   absent/null: nothing expires (an item's "ttl" is
 *                          ignored); -1: items expire only with a "ttl" of
 *                          their own; n > 0: n seconds after the last write
 *   item "ttl"             -1: never; n > 0: n seconds after its last write
 *                          (only where the container has a defaultTtl)
 *
 * docs.ttl keeps the item's own value, docs.exp the expiry time (NULL:
 * never), set on every write and recomputed for the whole container when
 * its defaultTtl changes (ttl_apply). An expired document is gone at once
 * for point reads, feeds, the change feed and writes (a create of its id
 * succeeds; dop_exec deletes the old one first); the sweeper thread
 * deletes it for good within about a second (index entries, unique keys
 * and attachments with it, through the container's writer), which is when
 * queries stop seeing it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bgthread.h"
#include "common/clock.h"
#include "server/srv.h"

#define TTL_MAX        2147483647LL
#define SWEEP_PERIOD_S 1

int64_t ttl_expiry(int64_t def, int64_t item, int64_t ts)
{
    if (def == TTL_NONE || item == -1)
        return 0;
    int64_t t = item != TTL_NONE ? item : def;
    return t > 0 ? ts + t : 0;
}

int ttl_item(const json_t *doc, int64_t *item, char *msg, size_t msgsz)
{
    *item = TTL_NONE;
    const json_t *v = json_object_get(doc, "ttl");
    if (!v || json_is_null(v))
        return 0;
    double d = json_number_value(v);
    if (json_is_integer(v) && (json_integer_value(v) == -1 ||
                               (json_integer_value(v) >= 1 && json_integer_value(v) <= TTL_MAX))) {
        *item = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && d == (double)(long long)d && (d == -1 || (d >= 1 && d <= TTL_MAX))) {
        *item = (int64_t)d;
        return 0;
    }
    snprintf(msg, msgsz,
             "The input ttl is invalid. Ensure to provide a nonzero positive integer less than or "
             "equal to '2147483647', or '-1' which means never expire.");
    return 400;
}

int ttl_row_expired(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) != SQLITE_NULL &&
           sqlite3_column_int64(s, col) <= (sqlite3_int64)time(NULL);
}

int64_t ttl_default_of(const json_t *def)
{
    const json_t *v = json_object_get(def, "defaultTtl");
    return json_is_integer(v) ? json_integer_value(v) : TTL_NONE;
}

/* ---- recomputing a container's expiry times ---- */

static int apply_rows(sqlite3 *db, void *arg)
{
    struct coll *c = arg;
    int64_t def = atomic_load(&c->default_ttl);
    /* the SQL form of ttl_expiry(def, ttl, ts), NULL for 0 */
    sqlite3_stmt *u = NULL;
#define EXP_SQL                                                                                    \
    "(CASE WHEN ?1 IS NULL OR ttl = -1 THEN NULL WHEN ttl IS NOT NULL THEN ts + ttl "              \
    "WHEN ?1 > 0 THEN ts + ?1 ELSE NULL END)"
    int rc = sqlite3_prepare_v2(db, "UPDATE docs SET exp = " EXP_SQL " WHERE exp IS NOT " EXP_SQL,
                                -1, &u, NULL) == SQLITE_OK
                 ? 0
                 : 1;
#undef EXP_SQL
    if (!rc) {
        if (def == TTL_NONE)
            sqlite3_bind_null(u, 1);
        else
            sqlite3_bind_int64(u, 1, def);
        rc = sqlite3_step(u) == SQLITE_DONE ? 0 : 1;
    }
    if (rc)
        fprintf(stderr, "atrestd: recomputing expiry times failed: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(u);
    return rc;
}

int ttl_apply(struct coll *c)
{
    return store_write(c->w, apply_rows, c);
}

/* ---- the sweeper ---- */

struct ttl_sweeper {
    struct catalog *cat;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
};

/* Whether c has an expired document (a look through a reader, so that a
 * container with nothing to delete costs no write transaction). */
static int has_expired(struct coll *c)
{
    struct rconn *rc = coll_reader(c);
    if (!rc)
        return 0;
    int found = 0;
    sqlite3_stmt *q = rconn_stmt(rc, "SELECT 1 FROM docs WHERE exp <= ?1 LIMIT 1");
    if (q) {
        sqlite3_bind_int64(q, 1, (sqlite3_int64)time(NULL));
        found = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_reset(q);
    }
    coll_reader_put(c, rc);
    return found;
}

static void sweep_all(struct ttl_sweeper *t)
{
    struct coll **colls = NULL;
    size_t n = 0;
    if (catalog_hold_colls(t->cat, &colls, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct coll *c = colls[i];
        if (atomic_load(&c->default_ttl) != TTL_NONE && !catalog_coll_dying(c) && has_expired(c) &&
            docs_delete_where(
                c, "SELECT pk, id FROM docs WHERE exp <= ?1 AND seq <= ?3 ORDER BY exp LIMIT ?2",
                NULL, (int64_t)time(NULL)) < 0)
            fprintf(stderr, "atrestd: deleting expired documents failed\n");
        catalog_coll_put(c);
    }
    free(colls);
}

static void *sweeper_main(void *arg)
{
    struct ttl_sweeper *t = arg;
    bg_thread_lower();
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        struct timespec due = deadline_after(CLOCK_REALTIME, SWEEP_PERIOD_S);
        while (!t->stopping && pthread_cond_timedwait(&t->cv, &t->mu, &due) == 0)
            ;
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->mu);
        sweep_all(t);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int ttl_start(struct catalog *cat, struct ttl_sweeper **out)
{
    struct ttl_sweeper *t = calloc(1, sizeof *t);
    if (!t)
        return AT_ENOMEM;
    t->cat = cat;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = pthread_create(&t->thread, NULL, sweeper_main, t);
    if (rc) {
        free(t);
        return at_error_set(AT_ENOMEM, "cannot start the TTL sweeper: %s", strerror(rc));
    }
    *out = t;
    return 0;
}

void ttl_stop(struct ttl_sweeper *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
