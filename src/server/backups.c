/*
 * backups.c — atrestd's backups: a thread that runs a full backup every
 * --backup-interval-hours and on demand, and the admin resource
 * /atrest/backups (docs/backup.md).
 *
 *   POST /atrest/backups   run a backup now; answers 201 {"id", "bytes",
 *                          "stores", "durationMs"} once it is complete, or
 *                          the Cosmos error body (500) naming what failed
 *   GET  /atrest/backups   {"backups": [{"id", "created", "bytes",
 *                          "stores"}...]}, oldest first; in continuous
 *                          mode also "continuous": {"epoch",
 *                          "coveredUntil" (unix ms: every commit up to
 *                          it is in the target), "segments",
 *                          "commitsShipped", "commitsQueued", "spooled",
 *                          "gaps", "lagP50Ms", "lagP99Ms", "lagMaxMs",
 *                          "lastError"}
 *
 * Signed like every request (master-key HMAC; resource type "atrest",
 * link "atrest/backups"); a read-only key may GET but not POST (auth.c).
 *
 * Invariants:
 *   1. One backup runs at a time (this thread); a request that arrives
 *      while one runs waits for the next one, which starts right after.
 *   2. Retention runs only after a backup completed: a failed backup never
 *      deletes or replaces an older one (backup_prune, backup.h).
 *   3. Continuous mode (--backup-mode continuous): the shipper (ship.h)
 *      starts before the catalog opens any store and stops after the last
 *      one closed; the periodic backups are the log's bases, the first one
 *      right at start (a new epoch needs one), another whenever the
 *      shipper reports a gap; retention is by days (backup_prune_days).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/bgthread.h"
#include "server/server.h"
#include "server/srv.h"

struct backups {
    struct catalog *cat;
    struct backup_keys keys;
    char *target, *key_file;
    int interval_h, retain;
    unsigned busy_mbps;
    struct ship *ship; /* continuous mode, else NULL */
    int days;
    int running; /* the thread was started */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* work for the thread, or stopping */
    pthread_cond_t done; /* a backup finished */
    int stopping;
    uint64_t requested, started, finished; /* request generations */
    /* the last backup's outcome, under mu */
    int last_rc;
    char last_id[BACKUP_ID_LEN];
    char last_err[512];
    uint64_t last_bytes;
    int last_stores;
    double last_ms;
};

static int open_target(struct backups *b, struct blob_store **bs)
{
    struct blob_options o = {.target = b->target, .account_key_file = b->key_file};
    return blob_open(&o, bs);
}

static void run_one(struct backups *b)
{
    double t0 = mono_seconds() * 1e3;
    char id[BACKUP_ID_LEN] = "";
    uint64_t bytes = 0;
    int nstores = 0;
    struct blob_store *bs = NULL;
    at_error_clear();
    int rc = open_target(b, &bs);
    if (!rc)
        rc = catalog_backup(b->cat, &b->keys, b->ship, b->busy_mbps, bs, id, &bytes, &nstores);
    char err[512] = "";
    if (rc)
        snprintf(err, sizeof err, "%s", at_error_detail());
    else if (b->ship ? backup_prune_days(bs, &b->keys, (unsigned)b->days, (unsigned)b->retain,
                                         ship_epoch(b->ship), (int64_t)time(NULL)) != 0
                     : backup_prune(bs, (unsigned)b->retain) != 0)
        fprintf(stderr, "atrestd: backup %s done; removing older backups failed: %s\n", id,
                at_error_detail());
    blob_close(bs);
    double ms = mono_seconds() * 1e3 - t0;
    if (rc)
        fprintf(stderr, "atrestd: backup failed: %s\n", err);
    else
        fprintf(stderr, "atrestd: backup %s: %d stores, %" PRIu64 " bytes in %.0f ms\n", id,
                nstores, bytes, ms);
    pthread_mutex_lock(&b->mu);
    b->last_rc = rc;
    snprintf(b->last_id, sizeof b->last_id, "%s", id);
    snprintf(b->last_err, sizeof b->last_err, "%s", err);
    b->last_bytes = bytes;
    b->last_stores = nstores;
    b->last_ms = ms;
    b->finished = b->started;
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->mu);
}

static void *backups_main(void *p)
{
    struct backups *b = p;
    bg_thread_lower(); /* requests first; the sealing thread inherits it */
    struct timespec due = deadline_after(CLOCK_REALTIME, b->interval_h * 3600.0);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        int timed_out = 0;
        while (!b->stopping && b->requested == b->finished && !timed_out)
            timed_out = pthread_cond_timedwait(&b->cv, &b->mu, &due) != 0;
        if (b->stopping)
            break;
        b->started = b->requested;
        pthread_mutex_unlock(&b->mu);
        run_one(b);
        due = deadline_after(CLOCK_REALTIME, b->interval_h * 3600.0);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* The shipper found a gap in the log: a new base makes later times
 * restorable again. */
static void need_base(void *ctx)
{
    struct backups *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->requested++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void backups_free(struct backups *b)
{
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_cond_destroy(&b->done);
    free(b->target);
    free(b->key_file);
    free(b);
}

static int backups_new(struct server *srv, struct store_env *env, const struct backup_settings *s)
{
    struct backups *b = calloc(1, sizeof *b);
    if (!b)
        return AT_ENOMEM;
    b->cat = srv->cat;
    store_env_providers(env, &b->keys.outer, &b->keys.inner);
    b->target = strdup(s->target);
    b->key_file = s->account_key_file ? strdup(s->account_key_file) : NULL;
    b->interval_h = s->interval_h ? s->interval_h : 4;
    b->retain = s->retain ? s->retain : 2;
    b->busy_mbps = s->busy_mbps > 0 ? (unsigned)s->busy_mbps : 0;
    b->days = s->days ? s->days : 7;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_cond_init(&b->done, NULL);
    /* Check the target (and its key file) now, not hours later. */
    struct blob_store *bs = NULL;
    int rc = b->target ? open_target(b, &bs) : AT_ENOMEM;
    blob_close(bs);
    if (!rc && s->continuous) {
        char spool[4096];
        snprintf(spool, sizeof spool, "%s/backup-spool", store_env_data_dir(env));
        struct ship_options so = {.target = b->target,
                                  .account_key_file = b->key_file,
                                  .keys = b->keys,
                                  .spool_dir = spool,
                                  .interval_ms = (unsigned)(s->ship_s ? s->ship_s : 2) * 1000,
                                  .need_base = need_base,
                                  .need_base_ctx = b};
        rc = ship_start(env, &so, &b->ship);
        b->requested = 1; /* the new epoch's first base, at once */
    }
    if (rc) {
        backups_free(b);
        return rc;
    }
    srv->backups = b;
    return 0;
}

int backups_prepare(struct server *srv, struct store_env *env, const struct backup_settings *s)
{
    return s->target && s->continuous ? backups_new(srv, env, s) : 0;
}

int backups_start(struct server *srv, struct store_env *env, const struct backup_settings *s)
{
    if (!s->target)
        return 0;
    int rc = srv->backups ? 0 : backups_new(srv, env, s);
    if (rc)
        return rc;
    struct backups *b = srv->backups;
    b->cat = srv->cat;
    rc = pthread_create(&b->thread, NULL, backups_main, b);
    if (rc)
        return at_error_set(rc, "cannot start the backup thread");
    b->running = 1;
    return 0;
}

int backups_ship_drain(struct server *srv, int timeout_ms)
{
    struct backups *b = srv->backups;
    if (!b || !b->ship)
        return 0;
    return ship_flush(b->ship, timeout_ms) == 0 ? 0 : 1;
}

void backups_stop(struct server *srv)
{
    struct backups *b = srv->backups;
    if (!b)
        return;
    if (b->running) {
        pthread_mutex_lock(&b->mu);
        b->stopping = 1;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL); /* a backup in progress completes first */
        b->running = 0;
    }
    if (!b->ship) {
        backups_free(b);
        srv->backups = NULL;
    }
}

void backups_finish(struct server *srv)
{
    struct backups *b = srv->backups;
    if (!b)
        return;
    backups_stop(srv);
    if (b->ship)
        ship_stop(b->ship);
    backups_free(b);
    srv->backups = NULL;
}

static void backup_now(struct req *r, struct backups *b)
{
    pthread_mutex_lock(&b->mu);
    uint64_t mine = ++b->requested;
    pthread_cond_signal(&b->cv);
    while (b->finished < mine && !b->stopping)
        pthread_cond_wait(&b->done, &b->mu);
    int rc = b->finished >= mine ? b->last_rc : AT_EINVAL;
    char id[BACKUP_ID_LEN], err[512];
    snprintf(id, sizeof id, "%s", b->last_id);
    snprintf(err, sizeof err, "%s", b->finished >= mine ? b->last_err : "the server is stopping");
    uint64_t bytes = b->last_bytes;
    int stores = b->last_stores;
    double ms = b->last_ms;
    pthread_mutex_unlock(&b->mu);
    if (rc) {
        srv_error(r, 500, 0, "The backup failed: %s", err);
        return;
    }
    json_t *o = json_pack("{s:s,s:I,s:i,s:i}", "id", id, "bytes", (json_int_t)bytes, "stores",
                          stores, "durationMs", (int)ms);
    resp_json(r, 201, o);
    json_decref(o);
}

static void backup_list_resp(struct req *r, struct backups *b)
{
    struct blob_store *bs = NULL;
    struct backup_info *v = NULL;
    size_t n = 0;
    int rc = open_target(b, &bs);
    if (!rc)
        rc = backup_list(bs, NULL, &v, &n);
    blob_close(bs);
    if (rc) {
        srv_error(r, 500, 0, "Cannot list the backups: %s", at_error_detail());
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:i}", "id", v[i].id, "created",
                                           (json_int_t)v[i].created, "bytes",
                                           (json_int_t)v[i].bytes, "stores", (int)v[i].nstores));
    free(v);
    json_t *o = json_pack("{s:o}", "backups", a);
    if (b->ship) {
        struct ship_status st;
        ship_status_get(b->ship, &st);
        json_object_set_new(o, "continuous",
                            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:s}", "epoch",
                                      st.epoch, "coveredUntil", (json_int_t)(st.covered_us / 1000),
                                      "segments", (json_int_t)st.segments, "commitsShipped",
                                      (json_int_t)st.commits_shipped, "commitsQueued",
                                      (json_int_t)st.commits_queued, "spooled",
                                      (json_int_t)st.spooled, "gaps", (json_int_t)st.gaps,
                                      "lagP50Ms", st.lag_p50_ms, "lagP99Ms", st.lag_p99_ms,
                                      "lagMaxMs", st.lag_max_ms, "lastError", st.last_error));
    }
    resp_json(r, 200, o);
    json_decref(o);
}

void backups_handle(struct req *r)
{
    struct backups *b = r->srv->backups;
    if (r->nseg != 2 || strcmp(r->segs[1], "backups") != 0) {
        srv_error(r, 404, 0, "The requested resource does not exist.");
        return;
    }
    if (!b) {
        srv_error(r, 400, 0, "Backups are off: start atrestd with --backup-target.");
        return;
    }
    if (r->verb == SRV_POST)
        backup_now(r, b);
    else if (r->verb == SRV_GET)
        backup_list_resp(r, b);
    else
        srv_error(r, 405, 0, "The requested verb is not supported.");
}
