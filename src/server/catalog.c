/*
 * catalog.c — the account's databases and containers, and their stores.
 *
 * Stores: "meta" holds the account metadata; every container has its own
 * store "c-<8 hex digits of its number>" (never a user id). Numbers come
 * from counters in meta and are never reused, so a re-created container
 * gets a fresh store and fresh DEKs.
 *
 *   meta:  kv(k, v)                      counters next_db, next_coll
 *          dbs(num, id, body)            body = the database resource JSON
 *          colls(num, db, id, store, body)
 *   c-*:   docs(seq, pk, id, etag, ts, body), UNIQUE(pk, id)
 *          uniq(pk, k, val, seq)         unique key values per partition key
 *          atts, media_gc                attachments (attachments.c)
 *
 * Invariants:
 *   1. Every container in meta has an open store and a running writer while
 *      the catalog is open; every store named c-* in the keyring that meta
 *      does not list is an orphan of an interrupted drop and is dropped at
 *      open.
 *   2. A container is dropped only after it is unpublished (no lookup finds
 *      it) and every request holding a reference has let go; then its
 *      writer stops, its connections close, meta forgets it (durably) and
 *      store_drop crypto-shreds it.
 *   3. DDL is serialised by cat->ddl; lookups take cat->lock shared.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv.h"

struct catalog {
    struct store_env *env;
    struct store *meta;
    struct store_writer *mw;
    pthread_rwlock_t lock;
    pthread_mutex_t ddl;
    pthread_mutex_t ref_mu;
    pthread_cond_t ref_cv;
    struct dbinfo **dbs;
    size_t ndb, capdb;
    struct coll **colls;
    size_t ncoll, capcoll;
    uint32_t next_db, next_coll;
    int64_t dek_rotated_at; /* kv 'dek_rotated_at': unix time of the last data-key rotation */
    struct media_conf media;
};

static const char COLL_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS docs(seq INTEGER PRIMARY KEY, pk TEXT NOT NULL, id TEXT NOT "
    "NULL, etag TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, noix INTEGER, lsn "
    "INTEGER, ttl INTEGER, exp INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS docs_pk_id ON docs(pk, id);"
    "CREATE TABLE IF NOT EXISTS uniq(pk TEXT NOT NULL, k INTEGER NOT NULL, val TEXT NOT NULL, "
    "seq INTEGER NOT NULL, PRIMARY KEY(pk, k, val)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS uniq_seq ON uniq(seq);";

static const char META_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS dbs(num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT "
    "NOT NULL);"
    "CREATE TABLE IF NOT EXISTS colls(num INTEGER PRIMARY KEY, db TEXT NOT NULL, id TEXT NOT "
    "NULL, store TEXT NOT NULL, body TEXT NOT NULL, UNIQUE(db, id));"
    "CREATE TABLE IF NOT EXISTS offers(id TEXT PRIMARY KEY, body TEXT NOT NULL);";

/* ---- small helpers ---- */

static void db_rid(uint32_t num, char out[16])
{
    unsigned char b[4] = {(unsigned char)num, (unsigned char)(num >> 8), (unsigned char)(num >> 16),
                          (unsigned char)(num >> 24)};
    srv_rid_encode(b, 4, out, 16);
}

static void coll_ridb(uint32_t dbnum, uint32_t num, unsigned char b[8])
{
    unsigned char v[8] = {(unsigned char)dbnum,         (unsigned char)(dbnum >> 8),
                          (unsigned char)(dbnum >> 16), (unsigned char)(dbnum >> 24),
                          (unsigned char)num,           (unsigned char)(num >> 8),
                          (unsigned char)(num >> 16),   (unsigned char)(num >> 24) | 0x80};
    memcpy(b, v, 8);
}

static void coll_rid(uint32_t dbnum, uint32_t num, char out[24])
{
    unsigned char b[8];
    coll_ridb(dbnum, num, b);
    srv_rid_encode(b, 8, out, 24);
}

static int exec_sql(sqlite3 *db, void *arg)
{
    int rc = sqlite3_exec(db, (const char *)arg, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : AT_ESQLITE;
}

static int meta_write(struct catalog *cat, char *sql)
{
    if (!sql)
        return AT_ENOMEM;
    int rc = store_write(cat->mw, exec_sql, sql);
    sqlite3_free(sql);
    return rc;
}

/* Columns of docs that came after the first stores were made: add them to
 * a store that lacks them. docs.noix (1: written unindexed,
 * x-ms-indexing-directive); docs.lsn (the change feed's order,
 * changefeed.c: existing documents get their seq, so they come first, in
 * the order they were created) and its index; docs.ttl and docs.exp (time
 * to live, ttl.c: the expiry times are computed by coll_start). */
static int has_column(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int ok = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK;
    sqlite3_finalize(s);
    return ok;
}

static int docs_migrate(struct store *st)
{
    int rc = 0;
    if (!has_column(st, "SELECT noix FROM docs LIMIT 0"))
        rc = store_exec(st, "ALTER TABLE docs ADD COLUMN noix INTEGER");
    if (!rc && !has_column(st, "SELECT lsn FROM docs LIMIT 0"))
        rc = store_exec(st, "BEGIN; ALTER TABLE docs ADD COLUMN lsn INTEGER; "
                            "UPDATE docs SET lsn = seq; COMMIT");
    if (!rc && !has_column(st, "SELECT exp FROM docs LIMIT 0"))
        rc = store_exec(st, "BEGIN; ALTER TABLE docs ADD COLUMN ttl INTEGER; "
                            "ALTER TABLE docs ADD COLUMN exp INTEGER; "
                            "UPDATE docs SET ttl = json_extract(body, '$.ttl') "
                            "WHERE json_type(body, '$.ttl') = 'integer'; COMMIT");
    if (!rc)
        rc = store_exec(st,
                        "CREATE INDEX IF NOT EXISTS docs_lsn ON docs(lsn);"
                        "CREATE INDEX IF NOT EXISTS docs_exp ON docs(exp) WHERE exp IS NOT NULL");
    return rc;
}

static int set_paths(struct coll *c)
{
    json_decref(c->pk_paths);
    json_decref(c->uniq);
    c->pk_paths = json_array();
    c->uniq = json_array();
    json_t *paths = json_object_get(json_object_get(c->def, "partitionKey"), "paths");
    for (size_t i = 0; i < json_array_size(paths); i++) {
        json_t *p = doc_pk_path_parse(json_string_value(json_array_get(paths, i)));
        if (!p)
            return -1;
        json_array_append_new(c->pk_paths, p);
    }
    json_t *keys = json_object_get(json_object_get(c->def, "uniqueKeyPolicy"), "uniqueKeys");
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *kp = json_object_get(json_array_get(keys, i), "paths");
        json_t *parsed = json_array();
        for (size_t j = 0; j < json_array_size(kp); j++) {
            json_t *p = doc_pk_path_parse(json_string_value(json_array_get(kp, j)));
            if (!p) {
                json_decref(parsed);
                return -1;
            }
            json_array_append_new(parsed, p);
        }
        json_array_append_new(c->uniq, parsed);
    }
    return 0;
}

static void coll_free(struct coll *c)
{
    if (!c)
        return;
    ix_free(c);
    dx_destroy(&c->dx);
    json_decref(c->offer);
    json_decref(c->def);
    json_decref(c->pk_paths);
    json_decref(c->uniq);
    pthread_mutex_destroy(&c->pool_mu);
    free(c->db_id);
    free(c->id);
    free(c);
}

/* Stop the writer, close connections and the store. */
static void coll_shutdown(struct coll *c)
{
    ix_close(c);
    if (c->w)
        store_writer_stop(c->w);
    c->w = NULL;
    for (int i = 0; i < COLL_NWSTMT; i++)
        if (c->ws[i])
            sqlite3_finalize(c->ws[i]);
    memset(c->ws, 0, sizeof c->ws);
    for (struct rconn *rc = c->pool, *n; rc; rc = n) {
        n = rc->next;
        sqlite3_finalize(rc->get);
        for (int i = 0; i < RCONN_STMTS; i++) {
            sqlite3_finalize(rc->cache[i].st);
            free(rc->cache[i].sql);
        }
        store_disconnect(rc->db);
        free(rc);
    }
    c->pool = NULL;
    if (c->st && store_close(c->st) != 0)
        fprintf(stderr, "atrestd: closing a container store: %s\n", at_error_detail());
    c->st = NULL;
}

/* The integer a one-row, one-column query of st answers. */
static int one_int(struct store *st, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK &&
                     sqlite3_step(s) == SQLITE_ROW
                 ? 0
                 : AT_ESQLITE;
    if (!rc)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc;
}

static int coll_start(struct catalog *cat, struct coll *c, int create)
{
    int rc = create ? store_create(cat->env, c->store_name, &c->st)
                    : store_open(cat->env, c->store_name, &c->st);
    if (rc)
        return rc;
    int migrated = !create && !has_column(c->st, "SELECT exp FROM docs LIMIT 0");
    if ((rc = store_exec(c->st, COLL_SCHEMA)) != 0 || (rc = docs_migrate(c->st)) != 0 ||
        (rc = store_exec(c->st, IX_SCHEMA)) != 0 || (rc = store_exec(c->st, ATT_SCHEMA)) != 0)
        goto fail;
    int64_t seq = 0;
    if ((rc = one_int(c->st, "SELECT COALESCE(MAX(seq),0)+1 FROM docs", &seq)) != 0 ||
        (rc = one_int(c->st, "SELECT COALESCE(MAX(lsn),0)+1 FROM docs", &c->next_lsn)) != 0)
        goto fail;
    c->next_seq = (uint64_t)seq;
    if ((rc = store_writer_start(c->st, &c->w)) != 0)
        goto fail;
    atomic_store(&c->default_ttl, ttl_default_of(c->def));
    if (migrated && (rc = ttl_apply(c)) != 0) {
        store_writer_stop(c->w);
        c->w = NULL;
        goto fail;
    }
    if ((rc = ix_open(c)) != 0) {
        ix_close(c);
        store_writer_stop(c->w);
        c->w = NULL;
        goto fail;
    }
    return 0;
fail:
    store_close(c->st);
    c->st = NULL;
    return rc;
}

static struct coll *coll_new(struct catalog *cat, uint32_t num, const char *db, uint32_t dbnum,
                             json_t *def)
{
    struct coll *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cat = cat;
    c->num = num;
    c->db_id = strdup(db);
    c->id = strdup(json_string_value(json_object_get(def, "id")));
    c->def = def;
    db_rid(dbnum, c->db_rid);
    coll_rid(dbnum, num, c->rid);
    coll_ridb(dbnum, num, c->ridb);
    snprintf(c->store_name, sizeof c->store_name, "c-%08" PRIx32, num);
    pthread_mutex_init(&c->pool_mu, NULL);
    dx_init(&c->dx);
    if (!c->db_id || !c->id || set_paths(c) != 0) {
        c->def = NULL;
        coll_free(c);
        return NULL;
    }
    return c;
}

static int push(void ***arr, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        void **a = realloc(*arr, nc * sizeof *a);
        if (!a)
            return AT_ENOMEM;
        *arr = a;
        *cap = nc;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static struct dbinfo *find_db(struct catalog *cat, const char *id)
{
    for (size_t i = 0; i < cat->ndb; i++)
        if (strcmp(cat->dbs[i]->id, id) == 0)
            return cat->dbs[i];
    for (size_t i = 0; i < cat->ndb; i++)
        if (strcmp(cat->dbs[i]->rid, id) == 0)
            return cat->dbs[i];
    return NULL;
}

static struct coll *find_coll(struct catalog *cat, const struct dbinfo *d, const char *id)
{
    for (size_t i = 0; i < cat->ncoll; i++)
        if (strcmp(cat->colls[i]->db_id, d->id) == 0 && strcmp(cat->colls[i]->id, id) == 0)
            return cat->colls[i];
    for (size_t i = 0; i < cat->ncoll; i++)
        if (strcmp(cat->colls[i]->db_id, d->id) == 0 && strcmp(cat->colls[i]->rid, id) == 0)
            return cat->colls[i];
    return NULL;
}

/* ---- open / close ---- */

/* Where the offer with id (offers.c: offer_id) belongs: its database's or
 * container's offer field, or NULL when it has none of them (under
 * cat->lock, or while loading). */
static json_t **offer_slot(struct catalog *cat, const char *id)
{
    char want[16];
    for (size_t i = 0; i < cat->ndb; i++)
        if (offer_id(want, 0, cat->dbs[i]->num), strcmp(want, id) == 0)
            return &cat->dbs[i]->offer;
    for (size_t i = 0; i < cat->ncoll; i++)
        if (offer_id(want, 1, cat->colls[i]->num), strcmp(want, id) == 0)
            return &cat->colls[i]->offer;
    return NULL;
}

/* The offers table: each offer to its database or container (offers.c). */
static int load_offers(struct catalog *cat, sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, body FROM offers", -1, &s, NULL) != SQLITE_OK)
        return AT_ESQLITE;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *body = (const char *)sqlite3_column_text(s, 1);
        json_t *o = doc_parse(body, strlen(body), NULL), **slot = offer_slot(cat, id);
        if (slot && json_is_object(o)) {
            json_decref(*slot);
            *slot = o;
        } else {
            json_decref(o); /* of a database or container deleted meanwhile */
        }
    }
    sqlite3_finalize(s);
    return 0;
}

static int load(struct catalog *cat)
{
    sqlite3 *db = store_db(cat->meta);
    sqlite3_stmt *s = NULL;
    int rc = 0;
    cat->next_db = cat->next_coll = 1;
    if (sqlite3_prepare_v2(db, "SELECT k, v FROM kv", -1, &s, NULL) != SQLITE_OK)
        return AT_ESQLITE;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        if (strcmp(k, "next_db") == 0)
            cat->next_db = (uint32_t)sqlite3_column_int64(s, 1);
        else if (strcmp(k, "next_coll") == 0)
            cat->next_coll = (uint32_t)sqlite3_column_int64(s, 1);
        else if (strcmp(k, "dek_rotated_at") == 0)
            cat->dek_rotated_at = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db, "SELECT num, id, body FROM dbs ORDER BY num", -1, &s, NULL) !=
        SQLITE_OK)
        return AT_ESQLITE;
    while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
        struct dbinfo *d = calloc(1, sizeof *d);
        if (!d) {
            rc = AT_ENOMEM;
            break;
        }
        d->num = (uint32_t)sqlite3_column_int64(s, 0);
        d->id = strdup((const char *)sqlite3_column_text(s, 1));
        const char *body = (const char *)sqlite3_column_text(s, 2);
        d->def = doc_parse(body, strlen(body), NULL);
        db_rid(d->num, d->rid);
        if (!d->id || !d->def || push((void ***)&cat->dbs, &cat->ndb, &cat->capdb, d) != 0) {
            free(d->id);
            json_decref(d->def);
            free(d);
            rc = AT_EFORMAT;
        }
    }
    sqlite3_finalize(s);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db, "SELECT num, db, store, body FROM colls ORDER BY num", -1, &s,
                           NULL) != SQLITE_OK)
        return AT_ESQLITE;
    while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
        uint32_t num = (uint32_t)sqlite3_column_int64(s, 0);
        const char *dbid = (const char *)sqlite3_column_text(s, 1);
        const char *body = (const char *)sqlite3_column_text(s, 3);
        struct dbinfo *d = find_db(cat, dbid);
        json_t *def = doc_parse(body, strlen(body), NULL);
        struct coll *c = d && def ? coll_new(cat, num, dbid, d->num, def) : NULL;
        if (!c) {
            json_decref(def);
            rc = at_error_set(AT_EFORMAT, "account metadata: container %u is damaged", num);
            break;
        }
        if ((rc = coll_start(cat, c, 0)) != 0 ||
            (rc = push((void ***)&cat->colls, &cat->ncoll, &cat->capcoll, c)) != 0) {
            coll_shutdown(c);
            coll_free(c);
        }
    }
    sqlite3_finalize(s);
    return rc ? rc : load_offers(cat, db);
}

static void drop_orphans(struct catalog *cat)
{
    enum { MAXF = 4096 };
    char(*names)[KEYRING_NAME_MAX] = calloc(MAXF, KEYRING_NAME_MAX);
    uint8_t(*ids)[KEYRING_FILE_ID_LEN] = calloc(MAXF, KEYRING_FILE_ID_LEN);
    size_t n = 0;
    if (names && ids &&
        keyring_list_files(store_env_keyring(cat->env), names, ids, MAXF, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strncmp(names[i], "c-", 2) != 0)
                continue;
            int used = 0;
            for (size_t j = 0; j < cat->ncoll; j++)
                used |= strcmp(cat->colls[j]->store_name, names[i]) == 0;
            if (!used && store_drop(cat->env, names[i]) == 0)
                fprintf(stderr, "atrestd: dropped an orphaned container store\n");
        }
    }
    free(names);
    free(ids);
}

static void offers_migrate(struct catalog *cat);

int catalog_open(struct store_env *env, struct catalog **out)
{
    struct catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return AT_ENOMEM;
    cat->env = env;
    pthread_rwlock_init(&cat->lock, NULL);
    pthread_mutex_init(&cat->ddl, NULL);
    pthread_mutex_init(&cat->ref_mu, NULL);
    pthread_cond_init(&cat->ref_cv, NULL);
    int rc = store_open(env, "meta", &cat->meta);
    if (rc == AT_ENOTFOUND)
        rc = store_create(env, "meta", &cat->meta);
    if (rc == 0)
        rc = store_exec(cat->meta, META_SCHEMA);
    if (rc == 0)
        rc = load(cat);
    if (rc == 0)
        rc = store_writer_start(cat->meta, &cat->mw);
    if (rc) {
        catalog_close(cat);
        return rc;
    }
    drop_orphans(cat);
    offers_migrate(cat);
    *out = cat;
    return 0;
}

void catalog_close(struct catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->ncoll; i++) {
        coll_shutdown(cat->colls[i]);
        coll_free(cat->colls[i]);
    }
    for (size_t i = 0; i < cat->ndb; i++) {
        json_decref(cat->dbs[i]->def);
        json_decref(cat->dbs[i]->offer);
        free(cat->dbs[i]->id);
        free(cat->dbs[i]);
    }
    if (cat->mw)
        store_writer_stop(cat->mw);
    if (cat->meta && store_close(cat->meta) != 0)
        fprintf(stderr, "atrestd: closing the metadata store: %s\n", at_error_detail());
    free(cat->colls);
    free(cat->dbs);
    free(cat->media.target);
    free(cat->media.key_file);
    pthread_rwlock_destroy(&cat->lock);
    pthread_mutex_destroy(&cat->ddl);
    pthread_mutex_destroy(&cat->ref_mu);
    pthread_cond_destroy(&cat->ref_cv);
    free(cat);
}

/* 1 when a row of c names blob (or the store cannot say: keep it). */
static int blob_referenced(struct coll *c, const char *blob)
{
    struct rconn *rc = coll_reader(c);
    sqlite3_stmt *s = rc ? rconn_stmt(rc, "SELECT 1 FROM atts WHERE blob=?1") : NULL;
    int st = SQLITE_ROW;
    if (s) {
        sqlite3_bind_text(s, 1, blob, -1, SQLITE_STATIC);
        st = sqlite3_step(s);
    }
    coll_reader_put(c, rc);
    return st != SQLITE_DONE;
}

/* At start, before any request: a media blob that no attachment names is
 * the leftover of a crash — an upload stored but never committed, or a
 * container drop interrupted before its blobs were deleted (names start
 * with the container's store name). */
static int sweep_one(void *ctx, const struct blob_info *info)
{
    void **a = ctx;
    struct catalog *cat = a[0];
    const char *slash = strchr(info->name, '/');
    size_t n = slash ? (size_t)(slash - info->name) : strlen(info->name);
    struct coll *owner = NULL;
    for (size_t j = 0; j < cat->ncoll; j++)
        if (strlen(cat->colls[j]->store_name) == n &&
            strncmp(cat->colls[j]->store_name, info->name, n) == 0)
            owner = cat->colls[j];
    if ((!owner || !blob_referenced(owner, info->name)) && blob_delete(a[1], info->name) == 0)
        (*(int *)a[2])++;
    return 0;
}

int catalog_set_media(struct catalog *cat, const char *target, const char *key_file)
{
    cat->media.target = strdup(target);
    cat->media.key_file = key_file ? strdup(key_file) : NULL;
    if (!cat->media.target || (key_file && !cat->media.key_file))
        return AT_ENOMEM;
    cat->media.kr = store_env_keyring(cat->env);
    if (attachments_target_absent(&cat->media))
        return 0; /* no media yet: nothing to finish */
    struct blob_options o = {.target = target, .account_key_file = key_file};
    struct blob_store *bs = NULL;
    int rc = blob_open(&o, &bs);
    if (rc)
        return rc;
    int swept = 0;
    void *a[3] = {cat, bs, &swept};
    rc = blob_list(bs, "", sweep_one, a);
    blob_close(bs);
    if (swept)
        fprintf(stderr, "atrestd: removed %d media blob%s no attachment refers to\n", swept,
                swept == 1 ? "" : "s");
    for (size_t i = 0; i < cat->ncoll && !rc; i++)
        attachments_gc(cat->colls[i]);
    return rc;
}

const struct media_conf *catalog_media(struct catalog *cat)
{
    return &cat->media;
}

int catalog_count_colls(struct catalog *cat)
{
    return (int)cat->ncoll;
}

/* ---- lookups ---- */

struct coll *catalog_coll_get(struct catalog *cat, const char *db, const char *coll)
{
    pthread_rwlock_rdlock(&cat->lock);
    struct dbinfo *d = find_db(cat, db);
    struct coll *c = d ? find_coll(cat, d, coll) : NULL;
    if (c) {
        pthread_mutex_lock(&cat->ref_mu);
        c->refs++;
        pthread_mutex_unlock(&cat->ref_mu);
    }
    pthread_rwlock_unlock(&cat->lock);
    return c;
}

void catalog_coll_hold(struct coll *c)
{
    pthread_mutex_lock(&c->cat->ref_mu);
    c->refs++;
    pthread_mutex_unlock(&c->cat->ref_mu);
}

void catalog_coll_put(struct coll *c)
{
    if (!c)
        return;
    struct catalog *cat = c->cat;
    pthread_mutex_lock(&cat->ref_mu);
    if (--c->refs == 0 && c->dead)
        pthread_cond_broadcast(&cat->ref_cv);
    pthread_mutex_unlock(&cat->ref_mu);
}

json_t *catalog_coll_def(struct coll *c)
{
    pthread_rwlock_rdlock(&c->cat->lock);
    json_t *v = json_deep_copy(c->def);
    pthread_rwlock_unlock(&c->cat->lock);
    return v;
}

json_t *catalog_db_get(struct catalog *cat, const char *db)
{
    pthread_rwlock_rdlock(&cat->lock);
    struct dbinfo *d = find_db(cat, db);
    json_t *v = d ? json_deep_copy(d->def) : NULL;
    pthread_rwlock_unlock(&cat->lock);
    return v;
}

json_t *catalog_db_list(struct catalog *cat)
{
    json_t *a = json_array();
    pthread_rwlock_rdlock(&cat->lock);
    for (size_t i = 0; i < cat->ndb; i++)
        json_array_append_new(a, json_deep_copy(cat->dbs[i]->def));
    pthread_rwlock_unlock(&cat->lock);
    return a;
}

json_t *catalog_coll_list(struct catalog *cat, const char *db, char *rid, size_t n)
{
    pthread_rwlock_rdlock(&cat->lock);
    struct dbinfo *d = find_db(cat, db);
    json_t *a = NULL;
    if (d) {
        a = json_array();
        snprintf(rid, n, "%s", d->rid);
        for (size_t i = 0; i < cat->ncoll; i++)
            if (strcmp(cat->colls[i]->db_id, d->id) == 0)
                json_array_append_new(a, json_deep_copy(cat->colls[i]->def));
    }
    pthread_rwlock_unlock(&cat->lock);
    return a;
}

/* ---- readers and writer statements ---- */

/* Page cache per reader connection (negative: KiB), filled only as pages
 * are read. 8 MB holds the id index and the B-trees' inner pages of a
 * 100,000-document container, so a point read decrypts about one page (the
 * document's) instead of two: 1.18 instead of 1.83 page reads per read and
 * about 8 % more reads/s in server-bench, for about 7 MB more RSS there
 * (docs/bench-server.md). */
#define READER_CACHE_KIB "-8192"

struct rconn *coll_reader(struct coll *c)
{
    pthread_mutex_lock(&c->pool_mu);
    struct rconn *rc = c->pool;
    if (rc)
        c->pool = rc->next;
    pthread_mutex_unlock(&c->pool_mu);
    if (rc)
        return rc;
    rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    if (store_connect(c->st, &rc->db) != 0) {
        free(rc);
        return NULL;
    }
    sqlite3_exec(rc->db, "PRAGMA cache_size=" READER_CACHE_KIB, NULL, NULL, NULL);
    if (sqlite3_prepare_v3(rc->db, "SELECT body, etag, exp FROM docs WHERE pk=?1 AND id=?2", -1,
                           SQLITE_PREPARE_PERSISTENT, &rc->get, NULL) != SQLITE_OK) {
        store_disconnect(rc->db);
        free(rc);
        return NULL;
    }
    return rc;
}

sqlite3_stmt *rconn_stmt(struct rconn *rc, const char *sql)
{
    int lru = 0;
    for (int i = 0; i < RCONN_STMTS; i++) {
        if (rc->cache[i].sql && strcmp(rc->cache[i].sql, sql) == 0) {
            rc->cache[i].used = ++rc->clock;
            sqlite3_reset(rc->cache[i].st);
            sqlite3_clear_bindings(rc->cache[i].st);
            return rc->cache[i].st;
        }
        if (rc->cache[i].used < rc->cache[lru].used)
            lru = i;
    }
    sqlite3_stmt *st = NULL;
    char *copy = strdup(sql);
    if (!copy ||
        sqlite3_prepare_v3(rc->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        free(copy);
        sqlite3_finalize(st);
        return NULL;
    }
    sqlite3_finalize(rc->cache[lru].st);
    free(rc->cache[lru].sql);
    rc->cache[lru].sql = copy;
    rc->cache[lru].st = st;
    rc->cache[lru].used = ++rc->clock;
    return st;
}

void coll_reader_put(struct coll *c, struct rconn *rc)
{
    if (!rc)
        return;
    sqlite3_reset(rc->get);
    sqlite3_clear_bindings(rc->get);
    for (int i = 0; i < RCONN_STMTS; i++)
        if (rc->cache[i].st)
            sqlite3_reset(rc->cache[i].st);
    pthread_mutex_lock(&c->pool_mu);
    rc->next = c->pool;
    c->pool = rc;
    pthread_mutex_unlock(&c->pool_mu);
}

sqlite3_stmt *coll_wstmt(struct coll *c, sqlite3 *db, int idx, const char *sql)
{
    if (c->wdb != db) {
        for (int i = 0; i < COLL_NWSTMT; i++)
            if (c->ws[i])
                sqlite3_finalize(c->ws[i]);
        memset(c->ws, 0, sizeof c->ws);
        c->wdb = db;
    }
    if (!c->ws[idx] &&
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->ws[idx], NULL) != SQLITE_OK)
        return NULL;
    sqlite3_reset(c->ws[idx]);
    sqlite3_clear_bindings(c->ws[idx]);
    return c->ws[idx];
}

/* ---- DDL ---- */

static void add_sys(json_t *o, const char *rid, const char *self, long long ts)
{
    char etag[48];
    srv_new_etag(etag);
    json_object_set_new(o, "_rid", json_string(rid));
    json_object_set_new(o, "_self", json_string(self));
    json_object_set_new(o, "_etag", json_string(etag));
    json_object_set_new(o, "_ts", json_integer(ts));
}

static const char *check_id(json_t *body)
{
    json_t *id = json_object_get(body, "id");
    if (!json_is_string(id))
        return "The input content is invalid because the required properties - 'id; ' - are "
               "missing";
    return doc_id_check(json_string_value(id), json_string_length(id));
}

/* The offer row's SQL for o (its own text), or an empty string. */
static char *offer_sql(const json_t *o)
{
    char *text = o ? doc_dump(o, NULL) : NULL;
    char *sql = o ? sqlite3_mprintf("INSERT OR REPLACE INTO offers(id, body) VALUES(%Q,%Q);",
                                    json_string_value(json_object_get(o, "id")), text)
                  : sqlite3_mprintf("%s", "");
    free(text);
    return sql;
}

int catalog_db_create(struct catalog *cat, struct req *r, json_t *body)
{
    const char *bad = check_id(body);
    if (bad)
        return srv_error(r, 400, 0, "%s", bad);
    json_t *content = NULL;
    if (offer_content_from_headers(r, &content) != 0)
        return 400;
    const char *id = json_string_value(json_object_get(body, "id"));
    pthread_mutex_lock(&cat->ddl);
    pthread_rwlock_rdlock(&cat->lock);
    int exists = 0;
    for (size_t i = 0; i < cat->ndb; i++)
        exists |= strcmp(cat->dbs[i]->id, id) == 0;
    pthread_rwlock_unlock(&cat->lock);
    if (exists) {
        pthread_mutex_unlock(&cat->ddl);
        json_decref(content);
        return srv_error(r, 409, 0, "Entity with the specified id already exists in the system.");
    }
    struct dbinfo *d = calloc(1, sizeof *d);
    d->num = cat->next_db;
    d->id = strdup(id);
    db_rid(d->num, d->rid);
    d->def = json_object();
    json_object_set_new(d->def, "id", json_string(id));
    char self[64];
    snprintf(self, sizeof self, "dbs/%s/", d->rid);
    add_sys(d->def, d->rid, self, (long long)time(NULL));
    json_object_set_new(d->def, "_colls", json_string("colls/"));
    json_object_set_new(d->def, "_users", json_string("users/"));
    /* keep _ts last, as Cosmos does */
    json_t *ts = json_incref(json_object_get(d->def, "_ts"));
    json_object_del(d->def, "_ts");
    json_object_set_new(d->def, "_ts", ts);
    if (content) {
        char oid[16];
        offer_id(oid, 0, d->num);
        d->offer = offer_make(oid, self, d->rid, content, (long long)time(NULL));
    }
    json_decref(content);
    char *text = doc_dump(d->def, NULL), *osql = offer_sql(d->offer);
    int rc = meta_write(cat, sqlite3_mprintf("INSERT INTO dbs(num,id,body) VALUES(%u,%Q,%Q);"
                                             "INSERT OR REPLACE INTO kv VALUES('next_db',%u);%s",
                                             d->num, id, text, d->num + 1, osql ? osql : ""));
    free(text);
    sqlite3_free(osql);
    if (rc == 0) {
        pthread_rwlock_wrlock(&cat->lock);
        rc = push((void ***)&cat->dbs, &cat->ndb, &cat->capdb, d);
        cat->next_db++;
        pthread_rwlock_unlock(&cat->lock);
    }
    pthread_mutex_unlock(&cat->ddl);
    if (rc) {
        json_decref(d->def);
        json_decref(d->offer);
        free(d->id);
        free(d);
        return srv_error(r, 500, 0, "Could not store the database.");
    }
    resp_json(r, 201, d->def);
    resp_header(r, "etag", "%s", json_string_value(json_object_get(d->def, "_etag")));
    return 201;
}

/* Unpublish the given containers, wait until unused, shut them down. */
static void retire(struct catalog *cat, struct coll **v, size_t n)
{
    pthread_rwlock_wrlock(&cat->lock);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < cat->ncoll; i++)
            if (cat->colls[i] == v[k]) {
                cat->colls[i] = cat->colls[--cat->ncoll];
                break;
            }
    pthread_rwlock_unlock(&cat->lock);
    pthread_mutex_lock(&cat->ref_mu);
    for (size_t k = 0; k < n; k++) {
        v[k]->dead = 1;
        while (v[k]->refs > 0)
            pthread_cond_wait(&cat->ref_cv, &cat->ref_mu);
    }
    pthread_mutex_unlock(&cat->ref_mu);
    for (size_t k = 0; k < n; k++)
        coll_shutdown(v[k]);
}

static void shred(struct catalog *cat, struct coll **v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (store_drop(cat->env, v[k]->store_name) != 0)
            fprintf(stderr, "atrestd: dropping a container store: %s\n", at_error_detail());
        else if (cat->media.target) /* their keys are gone: now the sealed bytes */
            attachments_drop_container(cat, v[k]->store_name);
        coll_free(v[k]);
    }
}

int catalog_db_delete(struct catalog *cat, struct req *r, const char *db)
{
    pthread_mutex_lock(&cat->ddl);
    pthread_rwlock_rdlock(&cat->lock);
    struct dbinfo *d = find_db(cat, db);
    struct coll **v = NULL;
    size_t n = 0, cap = 0;
    if (d)
        for (size_t i = 0; i < cat->ncoll; i++)
            if (strcmp(cat->colls[i]->db_id, d->id) == 0)
                push((void ***)&v, &n, &cap, cat->colls[i]);
    pthread_rwlock_unlock(&cat->lock);
    if (!d) {
        pthread_mutex_unlock(&cat->ddl);
        return srv_error(r, 404, 0, "Resource Not Found.");
    }
    retire(cat, v, n);
    char oid[16];
    offer_id(oid, 0, d->num);
    int rc = meta_write(cat, sqlite3_mprintf("DELETE FROM offers WHERE id=%Q OR id IN (SELECT "
                                             "printf('c%%011x', num) FROM colls WHERE db=%Q);"
                                             "DELETE FROM colls WHERE db=%Q; DELETE FROM dbs "
                                             "WHERE id=%Q;",
                                             oid, d->id, d->id, d->id));
    if (rc)
        fprintf(stderr, "atrestd: deleting database metadata failed: %s\n", at_error_detail());
    shred(cat, v, n);
    free(v);
    pthread_rwlock_wrlock(&cat->lock);
    for (size_t i = 0; i < cat->ndb; i++)
        if (cat->dbs[i] == d) {
            memmove(cat->dbs + i, cat->dbs + i + 1, (cat->ndb - i - 1) * sizeof *cat->dbs);
            cat->ndb--;
            break;
        }
    pthread_rwlock_unlock(&cat->lock);
    pthread_mutex_unlock(&cat->ddl);
    json_decref(d->def);
    json_decref(d->offer);
    free(d->id);
    free(d);
    resp_body(r, 204, NULL, 0);
    return 204;
}

static json_t *default_indexing(json_t *given)
{
    json_t *ip = json_is_object(given) ? json_deep_copy(given) : json_object();
    json_t *mode = json_object_get(ip, "indexingMode");
    const char *m = json_is_string(mode) ? json_string_value(mode) : "consistent";
    char lower[32];
    snprintf(lower, sizeof lower, "%s", m);
    for (char *p = lower; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    json_object_set_new(ip, "indexingMode", json_string(lower));
    if (!json_is_boolean(json_object_get(ip, "automatic")))
        json_object_set_new(ip, "automatic", json_true());
    if (strcmp(lower, "none") != 0) {
        if (!json_is_array(json_object_get(ip, "includedPaths"))) {
            json_t *inc = json_array();
            json_array_append_new(inc, json_pack("{s:s}", "path", "/*"));
            json_object_set_new(ip, "includedPaths", inc);
        }
        if (!json_is_array(json_object_get(ip, "excludedPaths")))
            json_object_set_new(ip, "excludedPaths", json_array());
        json_t *exc = json_object_get(ip, "excludedPaths");
        int has = 0;
        for (size_t i = 0; i < json_array_size(exc); i++) {
            const char *p = json_string_value(json_object_get(json_array_get(exc, i), "path"));
            has |= p && strcmp(p, "/\"_etag\"/?") == 0;
        }
        if (!has)
            json_array_append_new(exc, json_pack("{s:s}", "path", "/\"_etag\"/?"));
    }
    return ip;
}

/* Build a container definition from a request body; NULL with *why set. */
static json_t *coll_def(json_t *body, const char **why)
{
    *why = check_id(body);
    if (*why)
        return NULL;
    json_t *def = json_object();
    json_object_set(def, "id", json_object_get(body, "id"));
    json_object_set_new(def, "indexingPolicy",
                        default_indexing(json_object_get(body, "indexingPolicy")));
    static _Thread_local char why_policy[320];
    struct ixpol *pol = NULL;
    if (ixpol_parse(json_object_get(def, "indexingPolicy"), &pol, why_policy, sizeof why_policy) !=
        0) {
        *why = why_policy;
        goto bad;
    }
    ixpol_put(pol);
    json_t *pk = json_object_get(body, "partitionKey");
    if (pk && !json_is_null(pk)) {
        json_t *paths = json_object_get(pk, "paths");
        if (!json_is_object(pk) || !json_is_array(paths) || json_array_size(paths) < 1 ||
            json_array_size(paths) > 3) {
            *why = "The partition key definition is invalid: 'paths' must list 1 to 3 paths.";
            goto bad;
        }
        for (size_t i = 0; i < json_array_size(paths); i++) {
            json_t *p = doc_pk_path_parse(json_string_value(json_array_get(paths, i)));
            if (!p) {
                *why = "The partition key path is invalid.";
                goto bad;
            }
            json_decref(p);
        }
        json_t *npk = json_deep_copy(pk);
        if (!json_is_string(json_object_get(npk, "kind")))
            json_object_set_new(npk, "kind",
                                json_string(json_array_size(paths) > 1 ? "MultiHash" : "Hash"));
        json_object_set_new(def, "partitionKey", npk);
    }
    json_t *uk = json_object_get(body, "uniqueKeyPolicy");
    if (uk) {
        json_t *keys = json_object_get(uk, "uniqueKeys");
        if (!json_is_array(keys)) {
            *why = "The unique key policy is invalid.";
            goto bad;
        }
        for (size_t i = 0; i < json_array_size(keys); i++) {
            json_t *kp = json_object_get(json_array_get(keys, i), "paths");
            if (!json_is_array(kp) || json_array_size(kp) == 0) {
                *why = "The unique key policy is invalid.";
                goto bad;
            }
            for (size_t j = 0; j < json_array_size(kp); j++) {
                json_t *p = doc_pk_path_parse(json_string_value(json_array_get(kp, j)));
                if (!p) {
                    *why = "The unique key path is invalid.";
                    goto bad;
                }
                json_decref(p);
            }
        }
        json_object_set_new(def, "uniqueKeyPolicy", json_deep_copy(uk));
    } else {
        json_object_set_new(def, "uniqueKeyPolicy", json_pack("{s:[]}", "uniqueKeys"));
    }
    json_t *crp = json_object_get(body, "conflictResolutionPolicy");
    json_object_set_new(def, "conflictResolutionPolicy",
                        json_is_object(crp) ? json_deep_copy(crp)
                                            : json_pack("{s:s,s:s,s:s}", "mode", "LastWriterWins",
                                                        "conflictResolutionPath", "/_ts",
                                                        "conflictResolutionProcedure", ""));
    json_object_set_new(def, "geospatialConfig", json_pack("{s:s}", "type", "Geography"));
    json_t *ttl = json_object_get(body, "defaultTtl");
    if (ttl && !json_is_null(ttl)) {
        double t = json_number_value(ttl);
        if (!json_is_number(ttl) || t != (double)(long long)t || (t < 1 && t != -1)) {
            *why = "The value of defaultTtl must be -1 or a positive integer.";
            goto bad;
        }
        json_object_set_new(def, "defaultTtl", json_integer((long long)t));
    }
    json_t *cep = json_object_get(body, "computedProperties");
    if (json_is_array(cep))
        json_object_set(def, "computedProperties", cep);
    return def;
bad:
    json_decref(def);
    return NULL;
}

static void coll_sys(json_t *def, const char *dbrid, const char *rid, long long ts)
{
    char self[96];
    snprintf(self, sizeof self, "dbs/%s/colls/%s/", dbrid, rid);
    add_sys(def, rid, self, ts);
    json_object_set_new(def, "_docs", json_string("docs/"));
    json_object_set_new(def, "_sprocs", json_string("sprocs/"));
    json_object_set_new(def, "_triggers", json_string("triggers/"));
    json_object_set_new(def, "_udfs", json_string("udfs/"));
    json_object_set_new(def, "_conflicts", json_string("conflicts/"));
}

int catalog_coll_create(struct catalog *cat, struct req *r, const char *db, json_t *body)
{
    const char *why = NULL;
    json_t *content = NULL;
    if (offer_content_from_headers(r, &content) != 0)
        return 400;
    json_t *def = coll_def(body, &why);
    if (!def) {
        json_decref(content);
        return srv_error(r, 400, 0, "%s", why);
    }
    const char *id = json_string_value(json_object_get(def, "id"));
    pthread_mutex_lock(&cat->ddl);
    pthread_rwlock_rdlock(&cat->lock);
    struct dbinfo *d = find_db(cat, db);
    int exists = d && find_coll(cat, d, id) && strcmp(find_coll(cat, d, id)->id, id) == 0;
    uint32_t dbnum = d ? d->num : 0;
    char *dbid = d ? strdup(d->id) : NULL;
    /* its own offer: the one asked for, or the default when the database
     * has no shared throughput */
    if (d && !content && !d->offer)
        content = offer_default_content();
    pthread_rwlock_unlock(&cat->lock);
    int status;
    if (!d || exists) {
        status =
            !d ? srv_error(r, 404, 1003, "Owner resource does not exist.")
               : srv_error(r, 409, 0, "Entity with the specified id already exists in the system.");
        goto out;
    }
    uint32_t num = cat->next_coll;
    char rid[24], dbr[16];
    coll_rid(dbnum, num, rid);
    db_rid(dbnum, dbr);
    coll_sys(def, dbr, rid, (long long)time(NULL));
    struct coll *c = coll_new(cat, num, dbid, dbnum, def);
    if (!c) {
        def = NULL;
        status = srv_error(r, 400, 0, "The container definition is invalid.");
        goto out;
    }
    def = NULL;
    int rc = coll_start(cat, c, 1);
    if (rc == AT_EEXIST) { /* a leftover of a crash: shred it and start again */
        if (store_drop(cat->env, c->store_name) == 0)
            rc = coll_start(cat, c, 1);
    }
    if (rc) {
        coll_free(c);
        status = srv_error(r, 500, 0, "Could not create the container store.");
        goto out;
    }
    if (content) {
        char oid[16];
        offer_id(oid, 1, num);
        c->offer = offer_make(oid, json_string_value(json_object_get(c->def, "_self")), c->rid,
                              content, (long long)time(NULL));
    }
    char *text = doc_dump(c->def, NULL), *osql = offer_sql(c->offer);
    rc = meta_write(cat,
                    sqlite3_mprintf("INSERT INTO colls(num,db,id,store,body) "
                                    "VALUES(%u,%Q,%Q,%Q,%Q);"
                                    "INSERT OR REPLACE INTO kv VALUES('next_coll',%u);%s",
                                    num, dbid, id, c->store_name, text, num + 1, osql ? osql : ""));
    free(text);
    sqlite3_free(osql);
    cat->next_coll++;
    if (rc) {
        coll_shutdown(c);
        if (store_drop(cat->env, c->store_name) != 0)
            fprintf(stderr, "atrestd: dropping a failed container store: %s\n", at_error_detail());
        coll_free(c);
        status = srv_error(r, 500, 0, "Could not store the container.");
        goto out;
    }
    pthread_rwlock_wrlock(&cat->lock);
    rc = push((void ***)&cat->colls, &cat->ncoll, &cat->capcoll, c);
    resp_json(r, 201, c->def);
    resp_header(r, "etag", "%s", json_string_value(json_object_get(c->def, "_etag")));
    pthread_rwlock_unlock(&cat->lock);
    status = 201;
out:
    pthread_mutex_unlock(&cat->ddl);
    json_decref(def);
    json_decref(content);
    free(dbid);
    return status;
}

int catalog_coll_replace(struct catalog *cat, struct req *r, const char *db, const char *coll,
                         json_t *body)
{
    const char *why = NULL;
    json_t *def = coll_def(body, &why);
    if (!def)
        return srv_error(r, 400, 0, "%s", why);
    pthread_mutex_lock(&cat->ddl);
    struct coll *c = catalog_coll_get(cat, db, coll);
    int status;
    if (!c) {
        status = srv_error(r, 404, 0, "Resource Not Found.");
        goto out;
    }
    if (strcmp(c->id, json_string_value(json_object_get(def, "id"))) != 0) {
        status = srv_error(r, 400, 0, "The id of a container cannot be changed.");
        goto out;
    }
    json_t *oldpk = json_object_get(c->def, "partitionKey");
    json_t *newpk = json_object_get(def, "partitionKey");
    if ((oldpk == NULL) != (newpk == NULL) ||
        (oldpk && !doc_equal(json_object_get(oldpk, "paths"), json_object_get(newpk, "paths")))) {
        status = srv_error(r, 400, 0, "The partition key of a container cannot be changed.");
        goto out;
    }
    const char *im = req_header(r, "if-match");
    if (im && strcmp(im, "*") != 0 &&
        strcmp(im, json_string_value(json_object_get(c->def, "_etag"))) != 0) {
        status = srv_error(r, 412, 0,
                           "Operation cannot be performed because one of the specified "
                           "precondition is not met.");
        goto out;
    }
    /* unique keys cannot change after creation */
    json_object_set(def, "uniqueKeyPolicy", json_object_get(c->def, "uniqueKeyPolicy"));
    coll_sys(def, c->db_rid, c->rid, (long long)time(NULL));
    char *text = doc_dump(def, NULL);
    int rc =
        meta_write(cat, sqlite3_mprintf("UPDATE colls SET body=%Q WHERE num=%u", text, c->num));
    free(text);
    if (rc) {
        status = srv_error(r, 500, 0, "Could not store the container.");
        goto out;
    }
    struct ixpol *pol = NULL;
    char msg[320];
    if (ixpol_parse(json_object_get(def, "indexingPolicy"), &pol, msg, sizeof msg) == 0) {
        rc = ix_policy_change(c, pol);
        ixpol_put(pol);
    }
    if (rc) /* the new definition is stored: the rebuild happens at the next start */
        fprintf(stderr, "atrestd: starting an index rebuild failed: %s\n", at_strerror(rc));
    int64_t ttl = ttl_default_of(def);
    if (atomic_exchange(&c->default_ttl, ttl) != ttl && ttl_apply(c) != 0)
        fprintf(stderr, "atrestd: applying the new defaultTtl failed; it applies at the next "
                        "start\n");
    pthread_rwlock_wrlock(&cat->lock);
    json_decref(c->def);
    c->def = def;
    def = NULL;
    resp_json(r, 200, c->def);
    resp_header(r, "etag", "%s", json_string_value(json_object_get(c->def, "_etag")));
    pthread_rwlock_unlock(&cat->lock);
    status = 200;
out:
    catalog_coll_put(c);
    pthread_mutex_unlock(&cat->ddl);
    json_decref(def);
    return status;
}

int catalog_coll_delete(struct catalog *cat, struct req *r, const char *db, const char *coll)
{
    pthread_mutex_lock(&cat->ddl);
    struct coll *c = catalog_coll_get(cat, db, coll);
    if (!c) {
        pthread_mutex_unlock(&cat->ddl);
        return srv_error(r, 404, 0, "Resource Not Found.");
    }
    catalog_coll_put(c);
    retire(cat, &c, 1);
    char oid[16];
    offer_id(oid, 1, c->num);
    int rc = meta_write(cat, sqlite3_mprintf("DELETE FROM offers WHERE id=%Q; DELETE FROM colls "
                                             "WHERE num=%u",
                                             oid, c->num));
    if (rc) {
        /* Still in meta: keep its store (it reopens at the next start). */
        fprintf(stderr, "atrestd: deleting container metadata failed: %s\n", at_error_detail());
        coll_free(c);
        pthread_mutex_unlock(&cat->ddl);
        return srv_error(r, 503, 0, "The container could not be deleted; retry.");
    }
    shred(cat, &c, 1);
    pthread_mutex_unlock(&cat->ddl);
    resp_body(r, 204, NULL, 0);
    return 204;
}

/* ---- offers (offers.c) ---- */

/* Containers made before offers were kept get the default offer a new one
 * gets (their database has no shared throughput): once, at open. */
static void offers_migrate(struct catalog *cat)
{
    char *sql = sqlite3_mprintf("%s", "");
    json_t **made = calloc(cat->ncoll + 1, sizeof *made);
    json_t *content = offer_default_content();
    size_t n = 0;
    for (size_t i = 0; sql && made && content && i < cat->ncoll; i++) {
        struct coll *c = cat->colls[i];
        struct dbinfo *d = find_db(cat, c->db_id);
        if (c->offer || !d || d->offer)
            continue;
        char oid[16];
        offer_id(oid, 1, c->num);
        made[i] = offer_make(oid, json_string_value(json_object_get(c->def, "_self")), c->rid,
                             content, (long long)time(NULL));
        char *one = offer_sql(made[i]), *both = one ? sqlite3_mprintf("%s%s", sql, one) : NULL;
        sqlite3_free(one);
        sqlite3_free(sql);
        sql = both;
        n++;
    }
    int rc = !sql || !made || !content ? AT_ENOMEM : 0;
    if (!rc && n)
        rc = meta_write(cat, sql); /* frees sql */
    else
        sqlite3_free(sql);
    for (size_t i = 0; made && i < cat->ncoll; i++)
        if (made[i]) {
            if (rc == 0)
                cat->colls[i]->offer = made[i];
            else
                json_decref(made[i]);
        }
    if (rc)
        fprintf(stderr, "atrestd: recording the default offers of older containers failed; "
                        "retried at the next start\n");
    free(made);
    json_decref(content);
}

json_t *catalog_offer_list(struct catalog *cat)
{
    json_t *a = json_array();
    pthread_rwlock_rdlock(&cat->lock);
    for (size_t i = 0; a && i < cat->ndb; i++)
        if (cat->dbs[i]->offer)
            json_array_append_new(a, json_deep_copy(cat->dbs[i]->offer));
    for (size_t i = 0; a && i < cat->ncoll; i++)
        if (cat->colls[i]->offer)
            json_array_append_new(a, json_deep_copy(cat->colls[i]->offer));
    pthread_rwlock_unlock(&cat->lock);
    return a;
}

int catalog_offer_replace(struct catalog *cat, struct req *r, const char *id, json_t *body)
{
    pthread_mutex_lock(&cat->ddl);
    pthread_rwlock_rdlock(&cat->lock);
    json_t **slot = offer_slot(cat, id);
    json_t *cur = slot ? json_incref(*slot) : NULL; /* NULL: none, or no such owner */
    pthread_rwlock_unlock(&cat->lock);
    int status;
    char msg[200];
    json_t *content = NULL, *o = NULL;
    if (!cur) {
        status = srv_error(r, 404, 0, "Resource Not Found.");
    } else if (!(content = offer_replace_content(body, cur, msg, sizeof msg))) {
        status = srv_error(r, 400, 0, "%s", msg);
    } else if (!(o = offer_make(id, json_string_value(json_object_get(cur, "resource")),
                                json_string_value(json_object_get(cur, "offerResourceId")), content,
                                (long long)time(NULL)))) {
        status = srv_error(r, 500, 0, "Out of memory.");
    } else if (meta_write(cat, offer_sql(o)) != 0) {
        status = srv_error(r, 500, 0, "Could not store the offer.");
    } else {
        pthread_rwlock_wrlock(&cat->lock);
        json_decref(*slot); /* slot stays valid: DDL is held */
        *slot = json_incref(o);
        pthread_rwlock_unlock(&cat->lock);
        resp_json(r, 200, o);
        resp_header(r, "etag", "%s", json_string_value(json_object_get(o, "_etag")));
        status = 200;
    }
    json_decref(o);
    json_decref(content);
    json_decref(cur);
    pthread_mutex_unlock(&cat->ddl);
    return status;
}

/* ---- backups (backups.c) ---- */

/* Continuous mode: a store's snapshot begins on its writer thread, between
 * two batches, so no commit of the store is in flight and the shipper's
 * commit count is exactly what the snapshot holds. */
struct chain_add {
    struct backup_job *j;
    const char *name;
    struct store *st;
    struct ship *ship;
    struct backup_chain_store *rec;
};

static int chain_add_op(sqlite3 *db, void *arg)
{
    (void)db;
    struct chain_add *a = arg;
    snprintf(a->rec->name, sizeof a->rec->name, "%s", a->name);
    a->rec->seq = ship_store_seq(a->ship, a->name);
    return backup_job_add(a->j, a->name, a->st);
}

static int add_store(struct backup_job *j, struct ship *ship, struct store_writer *w,
                     const char *name, struct store *st, struct backup_chain_store *rec)
{
    if (!ship)
        return backup_job_add(j, name, st);
    struct chain_add a = {j, name, st, ship, rec};
    return store_write(w, chain_add_op, &a);
}

int catalog_backup(struct catalog *cat, const struct backup_keys *keys, struct ship *ship,
                   unsigned busy_mbps, struct blob_store *bs, char id[BACKUP_ID_LEN],
                   uint64_t *bytes, int *nstores)
{
    struct backup_job *j = NULL;
    int rc = backup_job_new(keys, &j);
    if (rc)
        return rc;
    backup_job_set_busy_mbps(j, busy_mbps);
    backup_job_set_media(j, attachments_backup_image, cat);
    snprintf(id, BACKUP_ID_LEN, "%s", backup_job_id(j));
    uint64_t first_seg = ship ? ship_next_seg(ship) : 0;
    /* The snapshots are taken under the DDL lock, meta first: the backed-up
     * meta lists exactly the containers backed up with it. Each container
     * stays referenced until the job is done, so a drop waits for it. */
    pthread_mutex_lock(&cat->ddl);
    pthread_rwlock_rdlock(&cat->lock);
    size_t n = cat->ncoll;
    struct coll **held = calloc(n ? n : 1, sizeof *held);
    struct backup_chain_store *chain = calloc(n + 1, sizeof *chain);
    if (!held || !chain)
        n = 0, rc = AT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        held[i] = cat->colls[i];
        catalog_coll_hold(held[i]);
    }
    pthread_rwlock_unlock(&cat->lock);
    if (!rc)
        rc = add_store(j, ship, cat->mw, "meta", cat->meta, &chain[0]);
    for (size_t i = 0; i < n && !rc; i++)
        rc = add_store(j, ship, held[i]->w, held[i]->store_name, held[i]->st, &chain[i + 1]);
    pthread_mutex_unlock(&cat->ddl);
    if (!rc && ship) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rc = backup_job_set_chain(j, ship_epoch(ship), first_seg,
                                  (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000, chain, n + 1);
    }
    if (!rc)
        rc = backup_job_run(j, bs, NULL, NULL);
    *bytes = backup_job_bytes(j);
    *nstores = (int)n + 1;
    backup_job_free(j); /* closes every snapshot connection */
    for (size_t i = 0; i < n; i++)
        catalog_coll_put(held[i]);
    free(held);
    free(chain);
    return rc;
}

/* ---- data-key rotation (datakeys.c) ---- */

struct store *catalog_meta_store(struct catalog *cat)
{
    return cat->meta;
}

int catalog_hold_colls(struct catalog *cat, struct coll ***out, size_t *n)
{
    pthread_rwlock_rdlock(&cat->lock);
    *n = cat->ncoll;
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (*out)
        for (size_t i = 0; i < *n; i++) {
            (*out)[i] = cat->colls[i];
            catalog_coll_hold(cat->colls[i]);
        }
    pthread_rwlock_unlock(&cat->lock);
    if (!*out) {
        *n = 0;
        return AT_ENOMEM;
    }
    return 0;
}

int catalog_coll_dying(struct coll *c)
{
    pthread_mutex_lock(&c->cat->ref_mu);
    int dead = c->dead;
    pthread_mutex_unlock(&c->cat->ref_mu);
    return dead;
}

int64_t catalog_dek_rotated_at(struct catalog *cat)
{
    pthread_rwlock_rdlock(&cat->lock);
    int64_t t = cat->dek_rotated_at;
    pthread_rwlock_unlock(&cat->lock);
    return t;
}

int catalog_set_dek_rotated_at(struct catalog *cat, int64_t t)
{
    int rc = meta_write(cat, sqlite3_mprintf("INSERT OR REPLACE INTO kv VALUES('dek_rotated_at',"
                                             "%lld);",
                                             (long long)t));
    if (rc == 0) {
        pthread_rwlock_wrlock(&cat->lock);
        cat->dek_rotated_at = t;
        pthread_rwlock_unlock(&cat->lock);
    }
    return rc;
}
