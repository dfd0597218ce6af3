/*
 * batch.c — transactional batch and bulk (POST .../docs with
 * x-ms-cosmos-is-batch-request), as @azure/cosmos 4.9.3 sends them.
 *
 * Body: [{operationType, id?, resourceBody?, partitionKey? (JSON text, bulk),
 *         ifMatch?, ifNoneMatch?}, ...]
 * Answer: [{statusCode, requestCharge, eTag?, resourceBody?, subStatusCode?}]
 *
 * Atomic (x-ms-cosmos-batch-atomic true): every operation runs inside ONE
 * store_write fn; the first failure fails the fn, so nothing commits; the
 * failing op keeps its status, the others answer 424, the response is 207.
 * Bulk (atomic false): each operation in its own savepoint; the response is
 * 200 when all succeeded, else 207. continue-on-error false stops at the
 * first failure (the rest answer 424).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/srv.h"

#define BATCH_MAX_OPS 100

struct batch {
    struct coll *c;
    struct dop *ops;
    size_t n;
    int atomic, cont;
    int failed; /* atomic: an op failed */
};

static int kind_of(const char *t)
{
    static const struct {
        const char *name;
        int kind;
    } map[] = {{"Create", DOP_CREATE},   {"Upsert", DOP_UPSERT}, {"Read", DOP_READ},
               {"Replace", DOP_REPLACE}, {"Delete", DOP_DELETE}, {"Patch", DOP_PATCH}};
    for (size_t i = 0; t && i < sizeof map / sizeof *map; i++)
        if (strcasecmp(t, map[i].name) == 0)
            return map[i].kind;
    return -1;
}

static int run(sqlite3 *db, void *arg)
{
    struct batch *b = arg;
    int stop = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct dop *op = &b->ops[i];
        if (op->status >= 400) { /* failed while preparing */
            if (b->atomic)
                return b->failed = 1;
            stop |= !b->cont;
            continue;
        }
        if (stop) {
            op->status = 424;
            continue;
        }
        if (b->atomic) {
            if (dop_exec(b->c, db, op) != 0)
                return b->failed = 1;
            continue;
        }
        sqlite3_exec(db, "SAVEPOINT bulk_op", NULL, NULL, NULL);
        if (dop_exec(b->c, db, op) != 0) {
            sqlite3_exec(db, "ROLLBACK TO bulk_op", NULL, NULL, NULL);
            stop |= !b->cont;
        }
        sqlite3_exec(db, "RELEASE bulk_op", NULL, NULL, NULL);
    }
    return 0;
}

static int prepare(struct req *r, struct coll *c, struct dop *op, json_t *o, json_t *batch_pk)
{
    (void)r;
    int kind = kind_of(json_string_value(json_object_get(o, "operationType")));
    op->kind = kind;
    op->if_match = json_string_value(json_object_get(o, "ifMatch"));
    op->if_none_match = json_string_value(json_object_get(o, "ifNoneMatch"));
    if (kind < 0) {
        op->status = 400;
        snprintf(op->msg, sizeof op->msg, "Unknown operationType.");
        return 400;
    }
    json_t *pk = NULL;
    json_t *pks = json_object_get(o, "partitionKey");
    if (json_is_string(pks))
        pk = doc_pk_header(json_string_value(pks));
    else if (json_is_array(pks))
        pk = json_incref(pks);
    else if (batch_pk)
        pk = json_incref(batch_pk);
    if (json_array_size(c->pk_paths) == 0) {
        json_decref(pk);
        pk = json_array();
    }
    int rc = 0;
    json_t *body = json_object_get(o, "resourceBody");
    if (kind == DOP_CREATE || kind == DOP_UPSERT || kind == DOP_REPLACE) {
        rc = dop_prepare_doc(c, op, body, pk, 1);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (rc == 0 && kind == DOP_REPLACE && id && strcmp(id, op->id) != 0) {
            op->status = rc = 400;
            snprintf(op->msg, sizeof op->msg, "The id does not match the document's id.");
        }
    } else {
        op->id = json_string_value(json_object_get(o, "id"));
        if (!op->id || !pk) {
            op->status = rc = 400;
            snprintf(op->msg, sizeof op->msg, "The operation needs an id and a partition key.");
        } else {
            op->pkval = json_incref(pk);
            op->pk = doc_pk_canon(pk);
            if (kind == DOP_PATCH) {
                op->patch = json_is_array(body) ? body : json_object_get(body, "operations");
                json_t *cond = json_object_get(body, "condition");
                op->cond = json_string_value(cond);
            }
        }
    }
    json_decref(pk);
    return rc;
}

static int emit(struct doc_buf *out, struct dop *op, size_t i)
{
    char head[160];
    snprintf(head, sizeof head, "%s{\"statusCode\":%d,\"requestCharge\":%s", i ? "," : "",
             op->status, op->status < 400 ? "5.71" : "1");
    int rc = doc_buf_puts(out, head);
    if (!rc && op->substatus) {
        snprintf(head, sizeof head, ",\"subStatusCode\":%d", op->substatus);
        rc = doc_buf_puts(out, head);
    }
    if (!rc && op->status < 400 && op->etag[0])
        rc = doc_buf_puts(out, ",\"eTag\":") || doc_buf_str(out, op->etag, strlen(op->etag));
    if (!rc && op->status < 400 && op->body)
        rc = doc_buf_puts(out, ",\"resourceBody\":") || doc_buf_put(out, op->body, op->body_len);
    if (!rc)
        rc = doc_buf_puts(out, "}");
    return rc;
}

void batch_handle(struct req *r, struct coll *c)
{
    json_t *arr = doc_parse(r->body, r->body_len, NULL);
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        json_decref(arr);
        srv_error(r, 400, 0, "The batch request body must be a non-empty JSON array.");
        return;
    }
    struct batch b = {.c = c, .n = json_array_size(arr)};
    const char *atomic = req_header(r, "x-ms-cosmos-batch-atomic");
    b.atomic = !atomic || strcasecmp(atomic, "false") != 0;
    const char *cont = req_header(r, "x-ms-cosmos-batch-continue-on-error");
    b.cont = !cont || strcasecmp(cont, "false") != 0;
    if (b.atomic && b.n > BATCH_MAX_OPS) {
        json_decref(arr);
        srv_error(r, 400, 0, "A transactional batch may hold at most 100 operations.");
        return;
    }
    json_t *batch_pk = NULL;
    char *canon = NULL;
    if (req_pk(r, c, &batch_pk, &canon, b.atomic) != 0) {
        json_decref(arr);
        return;
    }
    free(canon);
    b.ops = calloc(b.n, sizeof *b.ops);
    if (!b.ops) {
        json_decref(arr);
        json_decref(batch_pk);
        srv_error(r, 500, 0, "Out of memory.");
        return;
    }
    for (size_t i = 0; i < b.n; i++) {
        json_t *o = json_array_get(arr, i);
        if (!json_is_object(o)) {
            b.ops[i].status = 400;
            snprintf(b.ops[i].msg, sizeof b.ops[i].msg, "An operation must be a JSON object.");
            continue;
        }
        prepare(r, c, &b.ops[i], o, batch_pk);
    }
    int rc = store_write(c->w, run, &b);
    attachments_after_write(c); /* deletes retire the documents' media */
    if (rc && !b.failed) {
        srv_error(r, 503, 0, "The batch could not be made durable; retry.");
    } else {
        int any_fail = 0;
        for (size_t i = 0; i < b.n; i++) {
            if (b.failed && b.ops[i].status < 400)
                b.ops[i].status = 424; /* rolled back or never ran */
            any_fail |= b.ops[i].status >= 400;
        }
        struct doc_buf out = {0};
        int err = doc_buf_puts(&out, "[");
        for (size_t i = 0; i < b.n && !err; i++)
            err = emit(&out, &b.ops[i], i);
        err = err || doc_buf_puts(&out, "]");
        if (err) {
            doc_buf_free(&out);
            srv_error(r, 500, 0, "Out of memory.");
        } else {
            resp_body(r, any_fail ? 207 : 200, out.p, out.len);
        }
    }
    for (size_t i = 0; i < b.n; i++)
        dop_free(&b.ops[i]);
    free(b.ops);
    json_decref(batch_pk);
    json_decref(arr);
}
