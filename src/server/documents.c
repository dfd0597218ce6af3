/*
 * documents.c — /dbs/{db}/colls/{coll}/docs[/{id}]: create, upsert, read,
 * replace, delete, feed; and the document operation (struct dop) that
 * batch.c and patch.c share.
 *
 * A write is prepared on the request's thread (parse, validate, partition
 * key, JSON text) and executed by dop_exec() inside store_write() on the
 * container's writer connection, where existence, etags and unique keys
 * are checked and the row is written. The stored body already carries the
 * system properties, so a point read returns it without re-encoding.
 *
 * Invariants:
 *   1. (pk, id) is unique per container (409 otherwise); seq never changes
 *      for a document and orders feeds.
 *   2. Each failing operation returns nonzero from its write fn, so only
 *      its own changes roll back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "doc/epk.h"
#include "query/query.h"
#include "server/srv.h"

enum { W_GET, W_INS, W_UPD, W_DEL, W_UQ_GET, W_UQ_DEL, W_UQ_INS };

static const char *const WSQL[] = {
    [W_GET] = "SELECT seq, etag, body, noix, exp FROM docs WHERE pk=?1 AND id=?2",
    [W_INS] = "INSERT INTO docs(seq, pk, id, etag, ts, body, noix, lsn, ttl, exp) VALUES(?1, ?2, "
              "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [W_UPD] = "UPDATE docs SET etag=?2, ts=?3, body=?4, noix=?5, lsn=?6, ttl=?7, exp=?8 WHERE "
              "seq=?1",
    [W_DEL] = "DELETE FROM docs WHERE seq=?1",
    [W_UQ_GET] = "SELECT seq FROM uniq WHERE pk=?1 AND k=?2 AND val=?3",
    [W_UQ_DEL] = "DELETE FROM uniq WHERE seq=?1",
    [W_UQ_INS] = "INSERT INTO uniq(pk, k, val, seq) VALUES(?1, ?2, ?3, ?4)",
};

static const char MSG_412[] =
    "Operation cannot be performed because one of the specified precondition is not met.";

static int fail(struct dop *op, int status, int sub, const char *msg)
{
    op->status = status;
    op->substatus = sub;
    snprintf(op->msg, sizeof op->msg, "%s", msg);
    return status;
}

void dop_free(struct dop *op)
{
    free(op->pk);
    json_decref(op->pkval);
    json_decref(op->doc);
    free(op->text);
    free(op->body);
    ixpre_free(&op->pre);
    memset(op, 0, sizeof *op);
}

static int pk_ok(const json_t *pk)
{
    for (size_t i = 0; i < json_array_size(pk); i++) {
        json_t *v = json_array_get(pk, i);
        if (json_is_array(v) || (json_is_object(v) && json_object_size(v) != 0))
            return 0;
    }
    return 1;
}

int srv_pk_parse(struct req *r, size_t npaths, const char *h, json_t **val, char **canon,
                 int required)
{
    *val = NULL;
    *canon = NULL;
    int given = h && *h;
    json_t *v = given ? doc_pk_header(h) : NULL;
    if (given && (!v || !pk_ok(v) ||
                  (npaths && (json_array_size(v) == 0 || json_array_size(v) > npaths ||
                              (required && json_array_size(v) != npaths))))) {
        json_decref(v);
        return srv_error(r, 400, 0,
                         "The partition key supplied in x-ms-documentdb-partitionkey header is "
                         "invalid or has the wrong number of components.");
    }
    if (npaths == 0) {
        /* Not partitioned: every document is under the empty key. */
        json_decref(v);
        *val = json_array();
        *canon = strdup("[]");
        if (!*val || !*canon) {
            json_decref(*val);
            free(*canon);
            *val = NULL;
            *canon = NULL;
            return srv_error(r, 500, 0, "Out of memory.");
        }
        return 0;
    }
    if (!given) {
        if (!required)
            return 0;
        return srv_error(r, 400, 0, "PartitionKey value must be supplied for this operation.");
    }
    *canon = doc_pk_canon(v);
    if (!*canon) {
        json_decref(v);
        return srv_error(r, 500, 0, "Out of memory.");
    }
    if (json_array_size(v) < npaths) /* ["a"] -> ["a", */
        (*canon)[strlen(*canon) - 1] = ',';
    *val = v;
    return 0;
}

int srv_pk_is_prefix(const char *canon)
{
    size_t n = strlen(canon);
    return n > 0 && canon[n - 1] == ',';
}

/* An effective partition key as a header: uppercase hex, at most three
 * components and the "FF" that closes a prefix's range. */
static int epk_header_ok(const char *h)
{
    size_t n = strspn(h, "0123456789ABCDEF");
    return h[n] == '\0' && n <= 3 * EPK_HEX + 2;
}

int req_epk(struct req *r, const char **lo, const char **hi)
{
    *lo = req_header(r, "x-ms-start-epk");
    *hi = req_header(r, "x-ms-end-epk");
    if (!*lo)
        *lo = "";
    if (!*hi)
        *hi = "";
    if (!epk_header_ok(*lo) || !epk_header_ok(*hi)) {
        srv_error(r, 400, 0,
                  "x-ms-start-epk and x-ms-end-epk must be effective partition keys "
                  "(uppercase hex).");
        return -1;
    }
    /* "" to "FF" is every key: the one partition key range's bounds */
    return **lo != '\0' || (**hi != '\0' && strcmp(*hi, "FF") != 0);
}

int pk_in_epk(const char *canon, const char *lo, const char *hi)
{
    char epk[3 * EPK_HEX + 1];
    json_t *v = canon ? doc_parse(canon, strlen(canon), NULL) : NULL;
    int in = v && epk_of(v, epk, sizeof epk) == 0 && epk_in(epk, lo, hi);
    json_decref(v);
    return in;
}

int req_pk(struct req *r, struct coll *c, json_t **val, char **canon, int required)
{
    return srv_pk_parse(r, json_array_size(c->pk_paths),
                        req_header(r, "x-ms-documentdb-partitionkey"), val, canon, required);
}

int dop_prepare_doc(struct coll *c, struct dop *op, json_t *doc, json_t *hdr_pk, int require_pk)
{
    if (!json_is_object(doc))
        return fail(op, 400, 0, "The document must be a JSON object.");
    json_t *id = json_object_get(doc, "id");
    if (!id)
        return fail(op, 400, 0,
                    "The input content is invalid because the required properties - 'id; ' - "
                    "are missing");
    if (!json_is_string(id))
        return fail(op, 400, 0, "The value of 'id' must be a string.");
    const char *bad = doc_id_check(json_string_value(id), json_string_length(id));
    if (bad)
        return fail(op, 400, 0, bad);
    doc_strip_system(doc);
    json_t *pk = json_array_size(c->pk_paths) ? doc_pk_extract(doc, c->pk_paths) : json_array();
    char *canon = doc_pk_canon(pk);
    if (!canon) {
        json_decref(pk);
        return fail(op, 500, 0, "Out of memory.");
    }
    if (hdr_pk && json_array_size(c->pk_paths)) {
        char *h = doc_pk_canon(hdr_pk);
        int same = h && strcmp(h, canon) == 0;
        free(h);
        if (!same) {
            json_decref(pk);
            free(canon);
            return fail(op, 400, 1001,
                        "PartitionKey extracted from document doesn't match the one specified "
                        "in the header. Learn more: https://aka.ms/CosmosDB/sql/errors/wrong-pk-"
                        "value");
        }
    } else if (require_pk && json_array_size(c->pk_paths)) {
        json_decref(pk);
        free(canon);
        return fail(op, 400, 0, "PartitionKey value must be supplied for this operation.");
    }
    if (!pk_ok(pk)) {
        json_decref(pk);
        free(canon);
        return fail(op, 400, 0, "A partition key value must be a string, number, boolean or null.");
    }
    op->pkval = pk;
    op->pk = canon;
    op->doc = json_incref(doc);
    op->id = json_string_value(id);
    op->text = doc_dump(doc, &op->text_len);
    if (!op->text)
        return fail(op, 500, 0, "Out of memory.");
    if (op->text_len > DOC_MAX_BYTES)
        return fail(op, 413, 0, "Request size is too large.");
    return 0;
}

/* body = text without its final '}' + system properties. */
static char *compose(struct coll *c, const char *text, size_t len, uint64_t seq, const char *etag,
                     long long ts, size_t *outlen)
{
    unsigned char rb[16];
    memcpy(rb, c->ridb, 8);
    for (int i = 0; i < 8; i++)
        rb[8 + i] = (unsigned char)(seq >> (8 * i));
    char rid[32], self[128], tsbuf[32];
    srv_rid_encode(rb, 16, rid, sizeof rid);
    snprintf(self, sizeof self, "dbs/%s/colls/%s/docs/%s/", c->db_rid, c->rid, rid);
    snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
    struct doc_buf b = {0};
    size_t keep = len;
    while (keep > 0 && text[keep - 1] != '}')
        keep--;
    if (keep == 0)
        return NULL;
    keep--; /* drop the '}' */
    int empty = keep <= 1;
    int rc = doc_buf_put(&b, text, keep);
    if (!rc)
        rc = doc_buf_puts(&b, empty ? "\"_rid\":\"" : ",\"_rid\":\"");
    if (!rc)
        rc = doc_buf_puts(&b, rid);
    if (!rc)
        rc = doc_buf_puts(&b, "\",\"_self\":\"");
    if (!rc)
        rc = doc_buf_puts(&b, self);
    if (!rc)
        rc = doc_buf_puts(&b, "\",\"_etag\":");
    if (!rc)
        rc = doc_buf_str(&b, etag, strlen(etag));
    if (!rc)
        rc = doc_buf_puts(&b, ",\"_attachments\":\"attachments/\",\"_ts\":");
    if (!rc)
        rc = doc_buf_puts(&b, tsbuf);
    if (!rc)
        rc = doc_buf_puts(&b, "}");
    if (rc) {
        doc_buf_free(&b);
        return NULL;
    }
    *outlen = b.len;
    return b.p;
}

static int sql_fail(struct dop *op)
{
    return fail(op, 500, 0, "The store failed the operation.");
}

/* Unique keys: 0 ok, else 409 set. Removes old entries of seq, adds new. */
static int uniq_apply(struct coll *c, sqlite3 *db, struct dop *op, uint64_t seq, int remove_only)
{
    if (json_array_size(c->uniq) == 0)
        return 0;
    sqlite3_stmt *del = coll_wstmt(c, db, W_UQ_DEL, WSQL[W_UQ_DEL]);
    if (!del)
        return sql_fail(op);
    sqlite3_bind_int64(del, 1, (sqlite3_int64)seq);
    if (sqlite3_step(del) != SQLITE_DONE)
        return sql_fail(op);
    if (remove_only)
        return 0;
    for (size_t k = 0; k < json_array_size(c->uniq); k++) {
        json_t *vals = doc_pk_extract(op->doc, json_array_get(c->uniq, k));
        char *val = doc_dump(vals, NULL);
        json_decref(vals);
        if (!val)
            return sql_fail(op);
        sqlite3_stmt *g = coll_wstmt(c, db, W_UQ_GET, WSQL[W_UQ_GET]);
        int taken = 0;
        if (g) {
            sqlite3_bind_text(g, 1, op->pk, -1, SQLITE_STATIC);
            sqlite3_bind_int64(g, 2, (sqlite3_int64)k);
            sqlite3_bind_text(g, 3, val, -1, SQLITE_STATIC);
            taken = sqlite3_step(g) == SQLITE_ROW;
            sqlite3_reset(g);
        }
        sqlite3_stmt *ins = taken ? NULL : coll_wstmt(c, db, W_UQ_INS, WSQL[W_UQ_INS]);
        int ok = 0;
        if (ins) {
            sqlite3_bind_text(ins, 1, op->pk, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)k);
            sqlite3_bind_text(ins, 3, val, -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 4, (sqlite3_int64)seq);
            ok = sqlite3_step(ins) == SQLITE_DONE;
            sqlite3_reset(ins);
        }
        free(val);
        if (taken)
            return fail(op, 409, 0, "Unique index constraint violation.");
        if (!ok)
            return sql_fail(op);
    }
    return 0;
}

static int etag_matches(const char *want, const char *have)
{
    return strcmp(want, "*") == 0 || strcmp(want, have) == 0;
}

/* Parse the stored body into op->doc (system properties stripped) for patch. */
static int patch_prepare(struct coll *c, struct dop *op, const char *body)
{
    json_t *doc = doc_parse(body, strlen(body), NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(op, 500, 0, "A stored document is damaged.");
    }
    doc_strip_system(doc);
    if (op->cond) {
        size_t n = strlen(op->cond) + 16;
        char *sql = malloc(n);
        if (!sql) {
            json_decref(doc);
            return fail(op, 500, 0, "Out of memory.");
        }
        snprintf(sql, n, "SELECT * %s", op->cond);
        struct q_error qe = {0};
        struct q_query *q = q_parse(sql, strlen(sql), NULL, &qe);
        free(sql);
        if (!q) {
            json_decref(doc);
            return fail(op, 400, 0, qe.msg);
        }
        struct q_ctx ctx = {.now_ms = (int64_t)time(NULL) * 1000};
        int m = q_match(q, doc, &ctx);
        q_free(q);
        if (!m) {
            json_decref(doc);
            return fail(op, 412, 1110, MSG_412);
        }
    }
    char msg[200];
    if (patch_apply(doc, op->patch, msg, sizeof msg) != 0) {
        json_decref(doc);
        return fail(op, 400, 0, msg);
    }
    json_t *id = json_object_get(doc, "id");
    if (!json_is_string(id) || strcmp(json_string_value(id), op->id) != 0) {
        json_decref(doc);
        return fail(op, 400, 0, "The id of a document cannot be changed by a patch.");
    }
    doc_strip_system(doc);
    json_t *pk = json_array_size(c->pk_paths) ? doc_pk_extract(doc, c->pk_paths) : json_array();
    char *canon = doc_pk_canon(pk);
    json_decref(pk);
    int same = canon && strcmp(canon, op->pk) == 0;
    free(canon);
    if (!same) {
        json_decref(doc);
        return fail(op, 400, 0, "The partition key of a document cannot be changed by a patch.");
    }
    json_decref(op->doc);
    op->doc = doc;
    free(op->text);
    op->text = doc_dump(doc, &op->text_len);
    if (!op->text)
        return fail(op, 500, 0, "Out of memory.");
    if (op->text_len > DOC_MAX_BYTES)
        return fail(op, 413, 0, "Request size is too large.");
    return 0;
}

int dop_exec(struct coll *c, sqlite3 *db, struct dop *op)
{
    op->status = 0;
    sqlite3_stmt *g = coll_wstmt(c, db, W_GET, WSQL[W_GET]);
    if (!g)
        return sql_fail(op);
    sqlite3_bind_text(g, 1, op->pk, -1, SQLITE_STATIC);
    sqlite3_bind_text(g, 2, op->id, -1, SQLITE_STATIC);
    int step = sqlite3_step(g);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        sqlite3_reset(g);
        return sql_fail(op);
    }
    int exists = step == SQLITE_ROW;
    if (exists && !op->purge && ttl_row_expired(g, 4)) {
        /* Expired (ttl.c): gone for every request; delete it for good now
         * when this write would take its place. */
        sqlite3_reset(g);
        if (op->kind != DOP_CREATE && op->kind != DOP_UPSERT)
            return fail(op, 404, 0, "Entity with the specified id does not exist in the system.");
        struct dop gone = {.kind = DOP_DELETE, .pk = op->pk, .id = op->id, .purge = 1};
        int st = dop_exec(c, db, &gone);
        if (st)
            return fail(op, st, gone.substatus, gone.msg);
        exists = 0;
    }
    uint64_t seq = 0;
    char etag[48] = "";
    char *old = NULL;
    int old_noix = 0;
    if (exists) {
        seq = (uint64_t)sqlite3_column_int64(g, 0);
        old_noix = sqlite3_column_int(g, 3) != 0;
        snprintf(etag, sizeof etag, "%s", (const char *)sqlite3_column_text(g, 1));
        int indexed = c->wpol && ixpol_mode(c->wpol) != IX_NONE;
        if (op->kind == DOP_READ || op->kind == DOP_PATCH || (indexed && op->kind != DOP_CREATE)) {
            old = strdup((const char *)sqlite3_column_text(g, 2));
            if (!old) {
                sqlite3_reset(g);
                return fail(op, 500, 0, "Out of memory.");
            }
        }
    }
    sqlite3_reset(g);
    int rc = 0;
    switch (op->kind) {
    case DOP_READ:
        if (!exists) {
            rc = fail(op, 404, 0, "Entity with the specified id does not exist in the system.");
            break;
        }
        snprintf(op->etag, sizeof op->etag, "%s", etag);
        op->body = old;
        op->body_len = strlen(old);
        old = NULL;
        op->status = 200;
        break;
    case DOP_DELETE:
        if (!exists) {
            rc = fail(op, 404, 0, "Entity with the specified id does not exist in the system.");
            break;
        }
        if (op->if_match && !etag_matches(op->if_match, etag)) {
            rc = fail(op, 412, 0, MSG_412);
            break;
        }
        {
            sqlite3_stmt *d = coll_wstmt(c, db, W_DEL, WSQL[W_DEL]);
            if (!d) {
                rc = sql_fail(op);
                break;
            }
            sqlite3_bind_int64(d, 1, (sqlite3_int64)seq);
            int s = sqlite3_step(d);
            sqlite3_reset(d);
            if (s != SQLITE_DONE) {
                rc = sql_fail(op);
                break;
            }
        }
        if ((rc = uniq_apply(c, db, op, seq, 1)) != 0)
            break;
        if (attachments_doc_deleted(c, db, seq) != 0) { /* its attachments go with it */
            rc = sql_fail(op);
            break;
        }
        if (ix_update(c, db, seq, old_noix ? NULL : old, NULL, 0, NULL) != 0) {
            rc = sql_fail(op);
            break;
        }
        op->status = 204;
        break;
    case DOP_CREATE:
    case DOP_UPSERT:
    case DOP_REPLACE:
    case DOP_PATCH: {
        if (op->kind == DOP_CREATE && exists) {
            rc = fail(op, 409, 0, "Entity with the specified id already exists in the system.");
            break;
        }
        if ((op->kind == DOP_REPLACE || op->kind == DOP_PATCH) && !exists) {
            rc = fail(op, 404, 0, "Entity with the specified id does not exist in the system.");
            break;
        }
        if (exists && op->if_match && !etag_matches(op->if_match, etag)) {
            rc = fail(op, 412, 0, MSG_412);
            break;
        }
        if (op->kind == DOP_PATCH && (rc = patch_prepare(c, op, old)) != 0)
            break;
        if (!exists)
            seq = c->next_seq++;
        long long ts = (long long)time(NULL);
        srv_new_etag(op->etag);
        op->body = compose(c, op->text, op->text_len, seq, op->etag, ts, &op->body_len);
        if (!op->body) {
            rc = fail(op, 500, 0, "Out of memory.");
            break;
        }
        sqlite3_stmt *w =
            exists ? coll_wstmt(c, db, W_UPD, WSQL[W_UPD]) : coll_wstmt(c, db, W_INS, WSQL[W_INS]);
        if (!w) {
            rc = sql_fail(op);
            break;
        }
        /* Indexed unless the request says Exclude, or the policy is not
         * automatic and the request does not say Include. */
        int noix = !ix_indexed(c->wpol, op->directive);
        if (op->kind == DOP_PATCH && !op->directive)
            noix = old_noix; /* a patch keeps how the document was indexed */
        sqlite3_bind_int64(w, 1, (sqlite3_int64)seq);
        if (exists) {
            sqlite3_bind_text(w, 2, op->etag, -1, SQLITE_STATIC);
            sqlite3_bind_int64(w, 3, ts);
            sqlite3_bind_text(w, 4, op->body, (int)op->body_len, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(w, 2, op->pk, -1, SQLITE_STATIC);
            sqlite3_bind_text(w, 3, op->id, -1, SQLITE_STATIC);
            sqlite3_bind_text(w, 4, op->etag, -1, SQLITE_STATIC);
            sqlite3_bind_int64(w, 5, ts);
            sqlite3_bind_text(w, 6, op->body, (int)op->body_len, SQLITE_STATIC);
        }
        if (noix)
            sqlite3_bind_int(w, exists ? 5 : 7, 1);
        else
            sqlite3_bind_null(w, exists ? 5 : 7);
        sqlite3_bind_int64(w, exists ? 6 : 8, c->next_lsn++); /* the change feed's order */
        int64_t item_ttl;
        char ttl_msg[200];
        if (ttl_item(op->doc, &item_ttl, ttl_msg, sizeof ttl_msg) != 0) {
            sqlite3_reset(w);
            rc = fail(op, 400, 0, ttl_msg);
            break;
        }
        int64_t exp = ttl_expiry(atomic_load(&c->default_ttl), item_ttl, ts);
        if (item_ttl == TTL_NONE)
            sqlite3_bind_null(w, exists ? 7 : 9);
        else
            sqlite3_bind_int64(w, exists ? 7 : 9, item_ttl);
        if (exp)
            sqlite3_bind_int64(w, exists ? 8 : 10, exp);
        else
            sqlite3_bind_null(w, exists ? 8 : 10);
        int s = sqlite3_step(w);
        sqlite3_reset(w);
        if (s != SQLITE_DONE) {
            rc = sql_fail(op);
            break;
        }
        if ((rc = uniq_apply(c, db, op, seq, 0)) != 0)
            break;
        /* the old version's keys are in the index only if it was indexed */
        if (ix_update(c, db, seq, exists && !old_noix ? old : NULL, noix ? NULL : op->doc, ts,
                      &op->pre) != 0) {
            rc = sql_fail(op);
            break;
        }
        op->status = exists ? 200 : 201;
        break;
    }
    }
    free(old);
    return rc;
}

void dop_respond(struct req *r, struct coll *c, struct dop *op)
{
    (void)c;
    if (op->status >= 400) {
        srv_error(r, op->status, op->substatus, "%s", op->msg);
        return;
    }
    if (op->status == 204) {
        resp_body(r, 204, NULL, 0);
    } else {
        resp_body(r, op->status, op->body, op->body_len);
        op->body = NULL;
    }
    if (op->etag[0])
        resp_header(r, "etag", "%s", op->etag);
}

static int write_one(sqlite3 *db, void *arg)
{
    void **a = arg;
    return dop_exec(a[0], db, a[1]) ? 1 : 0;
}

/* Answer r once op went through the writer with result rc. */
static void write_done(struct req *r, struct coll *c, struct dop *op, int rc)
{
    if (op->kind == DOP_DELETE)
        attachments_after_write(c);
    if (rc && op->status < 400) {
        fprintf(stderr, "atrestd: a write failed: %s\n", at_strerror(rc));
        srv_error(r, 503, 0, "The write could not be made durable; retry.");
        return;
    }
    dop_respond(r, c, op);
}

/* Run one op through the container's writer; answers r. */
static void run_write(struct req *r, struct coll *c, struct dop *op)
{
    void *a[2] = {c, op};
    write_done(r, c, op, store_write(c->w, write_one, a));
}

/* An asynchronous write: the op, its container reference and the writer's
 * argument live here until the epoll thread answers (http.c). */
struct async_write {
    struct coll *c;
    struct dop op;
    void *a[2];
};

static void async_finish(struct req *r, int rc)
{
    struct async_write *aw = r->fin_arg;
    write_done(r, aw->c, &aw->op, rc);
    dop_free(&aw->op);
    catalog_coll_put(aw->c);
    free(aw);
}

static void async_done(void *arg, int rc)
{
    http_complete(arg, rc);
}

/* Hand op (ownership moves) to the writer without waiting, when r may go
 * asynchronous; otherwise run it here. */
static void start_write(struct req *r, struct coll *c, struct dop *op)
{
    struct async_write *aw = r->async_ok ? malloc(sizeof *aw) : NULL;
    if (!aw) {
        run_write(r, c, op);
        dop_free(op);
        return;
    }
    /* the document's index keys here, not on the (one) writer thread */
    if (op->doc && op->kind != DOP_PATCH)
        ix_prepare(c, op->doc, op->directive, &op->pre);
    catalog_coll_hold(c); /* until async_finish */
    aw->c = c;
    aw->op = *op;
    aw->a[0] = c;
    aw->a[1] = &aw->op;
    r->finish = async_finish;
    r->fin_arg = aw;
    http_suspend(r);
    int rc = store_write_async(c->w, write_one, aw->a, async_done, r);
    if (rc)
        http_complete(r, rc); /* the writer is stopping: answer 503 */
}

static void doc_read(struct req *r, struct coll *c, const char *id)
{
    json_t *pkv;
    char *pk;
    if (req_pk(r, c, &pkv, &pk, 1) != 0)
        return;
    json_decref(pkv);
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        free(pk);
        srv_error(r, 503, 0, "No store connection available; retry.");
        return;
    }
    sqlite3_bind_text(rc->get, 1, pk, -1, SQLITE_STATIC);
    sqlite3_bind_text(rc->get, 2, id, -1, SQLITE_STATIC);
    int s = sqlite3_step(rc->get);
    if (s == SQLITE_ROW && ttl_row_expired(rc->get, 2))
        s = SQLITE_DONE; /* expired (ttl.c): not there any more */
    if (s == SQLITE_ROW) {
        const char *etag = (const char *)sqlite3_column_text(rc->get, 1);
        const char *inm = req_header(r, "if-none-match");
        if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
            resp_body(r, 304, NULL, 0);
        } else {
            size_t n = (size_t)sqlite3_column_bytes(rc->get, 0);
            char *body = malloc(n + 1);
            if (body) {
                memcpy(body, sqlite3_column_text(rc->get, 0), n);
                body[n] = 0;
                resp_body(r, 200, body, n);
            } else {
                srv_error(r, 500, 0, "Out of memory.");
            }
        }
        resp_header(r, "etag", "%s", etag);
    } else if (s == SQLITE_DONE) {
        srv_error(r, 404, 0, "Entity with the specified id does not exist in the system.");
    } else {
        srv_error(r, 500, 0, "The store failed the read.");
    }
    coll_reader_put(c, rc);
    free(pk);
}

/* x-ms-indexing-directive: Include (1), Exclude (-1), Default or absent
 * (0). Anything else is answered 400 (nonzero returned). */
int req_directive(struct req *r, int *out)
{
    const char *v = req_header(r, "x-ms-indexing-directive");
    *out = 0;
    if (!v || strcasecmp(v, "Default") == 0)
        return 0;
    if (strcasecmp(v, "Include") == 0)
        *out = 1;
    else if (strcasecmp(v, "Exclude") == 0)
        *out = -1;
    else
        return srv_error(r, 400, 0,
                         "Invalid value for the header x-ms-indexing-directive: expected "
                         "Include, Exclude or Default.");
    return 0;
}

static void doc_write(struct req *r, struct coll *c, int kind, const char *id)
{
    struct dop op = {0};
    op.kind = kind;
    op.if_match = req_header(r, "if-match");
    if (kind != DOP_DELETE && req_directive(r, &op.directive) != 0)
        return;
    json_t *pkv = NULL;
    char *pk = NULL;
    if (req_pk(r, c, &pkv, &pk, 1) != 0)
        return;
    if (kind == DOP_DELETE) {
        op.pk = pk;
        op.pkval = pkv;
        op.id = id;
        start_write(r, c, &op);
        return;
    }
    const char *why = NULL;
    json_t *doc = doc_parse(r->body, r->body_len, &why);
    if (!json_is_object(doc)) {
        json_decref(doc);
        json_decref(pkv);
        free(pk);
        if (r->body_len > DOC_MAX_BYTES)
            srv_error(r, 413, 0, "Request size is too large.");
        else
            srv_error(r, 400, 0, "The request payload is invalid: %s.",
                      doc ? "not a JSON object" : "malformed JSON");
        return;
    }
    int st = dop_prepare_doc(c, &op, doc, pkv, 1);
    json_decref(doc);
    json_decref(pkv);
    free(pk);
    if (st == 0 && kind == DOP_REPLACE && strcmp(op.id, id) != 0)
        st = fail(&op, 400, 0, "The id in the document does not match the id in the URL.");
    if (st) {
        srv_error(r, op.status, op.substatus, "%s", op.msg);
        dop_free(&op);
        return;
    }
    start_write(r, c, &op);
}

long req_max_items(struct req *r)
{
    const char *m = req_header(r, "x-ms-max-item-count");
    long n = m ? strtol(m, NULL, 10) : 100;
    if (n <= 0 || n > 1000)
        n = n < 0 ? 1000 : 100;
    return n;
}

int req_continuation(struct req *r, uint64_t *after)
{
    *after = 0;
    const char *cont = req_header(r, "x-ms-continuation");
    if (cont && *cont) {
        char *end;
        *after = strtoull(cont, &end, 10);
        if (*end)
            return srv_error(r, 400, 0, "The continuation token is invalid.");
    }
    return 0;
}

void resp_feed(struct req *r, struct doc_buf *b, int err, long n, int more, uint64_t last)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", n);
    err = err || doc_buf_puts(b, "],\"_count\":") || doc_buf_puts(b, num) || doc_buf_puts(b, "}");
    if (err) {
        doc_buf_free(b);
        srv_error(r, 500, 0, "Out of memory.");
        return;
    }
    resp_body(r, 200, b->p, b->len);
    resp_header(r, "x-ms-item-count", "%ld", n);
    if (more)
        resp_header(r, "x-ms-continuation", "%" PRIu64, last);
}

void documents_scan(struct req *r, struct coll *c, const char *pk)
{
    long limit = req_max_items(r);
    uint64_t after = 0;
    if (req_continuation(r, &after) != 0)
        return;
    const char *lo, *hi;
    int ranged = req_epk(r, &lo, &hi);
    if (ranged < 0)
        return;
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        srv_error(r, 503, 0, "No store connection available; retry.");
        return;
    }
    sqlite3_stmt *s = NULL;
    const char *sql =
        !pk ? "SELECT seq, body FROM docs WHERE seq > ?1" DOC_LIVE("?3") " ORDER BY seq"
        : srv_pk_is_prefix(pk) ? "SELECT seq, body FROM docs WHERE seq > ?1" DOC_LIVE("?3")
                                     PK_PREFIX("?2") " ORDER BY seq"
                               : "SELECT seq, body FROM docs WHERE seq > ?1" DOC_LIVE(
                                     "?3") " AND pk = ?2 ORDER BY seq";
    if (sqlite3_prepare_v2(rc->db, sql, -1, &s, NULL) != SQLITE_OK) {
        coll_reader_put(c, rc);
        srv_error(r, 500, 0, "The store failed the query.");
        return;
    }
    sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
    if (pk)
        sqlite3_bind_text(s, 2, pk, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL));
    struct doc_buf b = {0};
    int err = doc_buf_puts(&b, "{\"_rid\":\"") || doc_buf_puts(&b, c->rid) ||
              doc_buf_puts(&b, "\",\"Documents\":[");
    long n = 0;
    uint64_t last = 0;
    int more = 0;
    while (!err && sqlite3_step(s) == SQLITE_ROW) {
        if (n == limit || b.len > 4 * 1024 * 1024) {
            more = 1;
            break;
        }
        last = (uint64_t)sqlite3_column_int64(s, 0);
        if (ranged && !pk_in_epk((const char *)sqlite3_column_text(s, 2), lo, hi))
            continue;
        if (n)
            err = doc_buf_put(&b, ",", 1);
        if (!err)
            err = doc_buf_put(&b, (const char *)sqlite3_column_text(s, 1),
                              (size_t)sqlite3_column_bytes(s, 1));
        n++;
    }
    sqlite3_finalize(s);
    coll_reader_put(c, rc);
    resp_feed(r, &b, err, n, more, last);
}

static void doc_feed(struct req *r, struct coll *c)
{
    json_t *pkv;
    char *pk;
    if (req_pk(r, c, &pkv, &pk, 0) != 0)
        return;
    json_decref(pkv);
    if (json_array_size(c->pk_paths) == 0) {
        free(pk);
        pk = NULL;
    }
    const char *aim = req_header(r, "a-im");
    if (aim && strcasecmp(aim, "Incremental feed") == 0)
        changefeed_handle(r, c, pk);
    else
        documents_scan(r, c, pk);
    free(pk);
}

/* Whether the container was addressed by its resource id rather than its
 * id: then the document segment is a document _rid too (a _self link). */
static int rid_link(const struct req *r, const struct coll *c)
{
    return strcmp(r->segs[3], c->rid) == 0 && strcmp(r->segs[3], c->id) != 0;
}

/* The id of the document whose _rid is rid, or NULL (malloc'd). A document
 * _rid is the container's 8-byte rid followed by the document's sequence
 * number, little-endian (compose()). */
static char *id_by_rid(struct coll *c, const char *rid)
{
    unsigned char raw[64];
    size_t n = strlen(rid);
    if (n == 0 || n > 44 || n % 4)
        return NULL;
    int got = EVP_DecodeBlock(raw, (const unsigned char *)rid, (int)n);
    if (got < 0)
        return NULL;
    while (n > 0 && rid[n - 1] == '=') { /* DecodeBlock counts padding */
        n--;
        got--;
    }
    if (got != 16 || memcmp(raw, c->ridb, 8) != 0)
        return NULL;
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq |= (uint64_t)raw[8 + i] << (8 * i);
    struct rconn *rc = coll_reader(c);
    if (!rc)
        return NULL;
    char *id = NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(rc->db, "SELECT id FROM docs WHERE seq=?1", -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
        if (sqlite3_step(q) == SQLITE_ROW)
            id = strdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    coll_reader_put(c, rc);
    return id;
}

void documents_handle(struct req *r)
{
    struct coll *c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3]);
    if (!c) {
        srv_error(r, 404, 1003, "Owner resource does not exist.");
        return;
    }
    if (r->nseg == 5) {
        const char *ct = req_header(r, "content-type");
        if (r->verb == SRV_GET || r->verb == SRV_HEAD)
            doc_feed(r, c);
        else if (r->verb != SRV_POST)
            srv_error(r, 405, 0, "The requested verb is not supported.");
        else if (req_header_true(r, "x-ms-cosmos-is-query-plan-request"))
            query_plan_handle(r, c);
        else if (req_header_true(r, "x-ms-documentdb-isquery") ||
                 (ct && strncmp(ct, "application/query+json", 22) == 0))
            query_handle(r, c);
        else if (req_header_true(r, "x-ms-cosmos-is-batch-request"))
            batch_handle(r, c);
        else
            doc_write(r, c,
                      req_header_true(r, "x-ms-documentdb-is-upsert") ? DOP_UPSERT : DOP_CREATE,
                      NULL);
    } else {
        const char *id = r->segs[5];
        if (rid_link(r, c)) {
            /* A _self link (dbs/<rid>/colls/<rid>/docs/<rid>): find the id. */
            if (!(r->owned_id = id_by_rid(c, id))) {
                srv_error(r, 404, 0, "Entity with the specified id does not exist in the system.");
                catalog_coll_put(c);
                return;
            }
            id = r->owned_id;
        }
        switch (r->verb) {
        case SRV_GET:
        case SRV_HEAD:
            doc_read(r, c, id);
            break;
        case SRV_PUT:
            doc_write(r, c, DOP_REPLACE, id);
            break;
        case SRV_DELETE:
            doc_write(r, c, DOP_DELETE, id);
            break;
        case SRV_PATCH:
            patch_handle(r, c, id);
            break;
        default:
            srv_error(r, 405, 0, "The requested verb is not supported.");
        }
    }
    catalog_coll_put(c);
}

struct del_where {
    struct coll *c;
    const char *sql, *text;
    int64_t num;
    int64_t upto; /* the last seq when the first batch ran: later documents stay */
    long deleted;
    int more; /* a full batch: there may be more */
};

static int del_where_rows(sqlite3 *db, void *arg)
{
    struct del_where *w = arg;
    sqlite3_stmt *q = NULL;
    if (w->upto < 0) {
        if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) FROM docs", -1, &q, NULL) !=
                SQLITE_OK ||
            sqlite3_step(q) != SQLITE_ROW) {
            sqlite3_finalize(q);
            return 1;
        }
        w->upto = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        q = NULL;
    }
    if (sqlite3_prepare_v2(db, w->sql, -1, &q, NULL) != SQLITE_OK)
        return 1;
    if (w->text)
        sqlite3_bind_text(q, 1, w->text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(q, 1, w->num);
    sqlite3_bind_int(q, 2, DOCS_DELETE_BATCH);
    sqlite3_bind_int64(q, 3, w->upto);
    /* collect first: the deletes change the table being read */
    char *keys[2 * DOCS_DELETE_BATCH];
    size_t n = 0;
    while (n < DOCS_DELETE_BATCH && sqlite3_step(q) == SQLITE_ROW) {
        keys[2 * n] = strdup((const char *)sqlite3_column_text(q, 0));
        keys[2 * n + 1] = strdup((const char *)sqlite3_column_text(q, 1));
        n++;
    }
    sqlite3_finalize(q);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && keys[2 * i] && keys[2 * i + 1]) {
            struct dop op = {
                .kind = DOP_DELETE, .pk = keys[2 * i], .id = keys[2 * i + 1], .purge = 1};
            int st = dop_exec(w->c, db, &op);
            if (st && st != 404)
                rc = 1;
            else if (!st)
                w->deleted++;
            free(op.body);
        } else if (!keys[2 * i] || !keys[2 * i + 1]) {
            rc = 1; /* out of memory: this batch is undone */
        }
        free(keys[2 * i]);
        free(keys[2 * i + 1]);
    }
    w->more = n == DOCS_DELETE_BATCH;
    return rc;
}

long docs_delete_where(struct coll *c, const char *sql, const char *text, int64_t num)
{
    struct del_where w = {.c = c, .sql = sql, .text = text, .num = num, .upto = -1};
    do {
        w.more = 0;
        if (store_write(c->w, del_where_rows, &w) != 0)
            return -1; /* that batch was rolled back; the ones before stay deleted */
        attachments_after_write(c);
    } while (w.more && !catalog_coll_dying(c));
    return w.deleted;
}

void documents_run(struct req *r, struct coll *c, struct dop *op)
{
    run_write(r, c, op);
}
