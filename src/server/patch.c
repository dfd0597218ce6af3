/*
 * patch.c — partial document update (PATCH .../docs/{id}).
 *
 * Body: {"operations":[{op, path, value|from}, ...], "condition": "from c
 * where ..."} (a bare array of operations is accepted too). Operations, as
 * Cosmos defines them:
 *   add      object: create or replace the member; array: insert at index
 *            (or append with "-"); the parent must exist
 *   set      like add, but an existing array index is replaced
 *   replace  the target must exist
 *   remove   the target must exist
 *   incr     add a number to a number (an absent target becomes the value)
 *   move     remove at "from", add at "path"
 * At most 10 operations. The condition is evaluated on the stored document
 * inside the write; false answers 412. All operations apply or none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "server/srv.h"

#define PATCH_MAX_OPS 10

/* Split a JSON-pointer-like path into unescaped segments. */
static json_t *split(const char *path)
{
    if (!path || path[0] != '/' || path[1] == 0)
        return NULL;
    json_t *segs = json_array();
    const char *p = path;
    while (*p == '/') {
        p++;
        struct doc_buf b = {0};
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1'))
                ch = *p++ == '0' ? '~' : '/';
            if (doc_buf_put(&b, &ch, 1) != 0)
                break;
        }
        if (b.len == 0) {
            doc_buf_free(&b);
            json_decref(segs);
            return NULL;
        }
        json_array_append_new(segs, json_stringn(b.p, b.len));
        doc_buf_free(&b);
    }
    return segs;
}

/* The container holding the last segment, or NULL. */
static json_t *parent_of(json_t *doc, json_t *segs)
{
    json_t *cur = doc;
    size_t n = json_array_size(segs);
    for (size_t i = 0; i + 1 < n && cur; i++) {
        const char *s = json_string_value(json_array_get(segs, i));
        if (json_is_object(cur)) {
            cur = json_object_get(cur, s);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(s, &end, 10);
            cur = (*end || idx < 0) ? NULL : json_array_get(cur, (size_t)idx);
        } else {
            cur = NULL;
        }
    }
    return json_is_object(cur) || json_is_array(cur) ? cur : NULL;
}

static int index_of(const char *s, size_t size, int allow_end, size_t *out)
{
    if (allow_end && strcmp(s, "-") == 0) {
        *out = size;
        return 0;
    }
    char *end;
    long idx = strtol(s, &end, 10);
    if (*s == 0 || *end || idx < 0 || (size_t)idx > size || (!allow_end && (size_t)idx == size))
        return -1;
    *out = (size_t)idx;
    return 0;
}

static int err(char *msg, size_t n, const char *m)
{
    snprintf(msg, n, "%s", m);
    return -1;
}

/* Take (remove and return a reference to) the value at segs. */
static json_t *take(json_t *doc, json_t *segs)
{
    json_t *par = parent_of(doc, segs);
    const char *last = json_string_value(json_array_get(segs, json_array_size(segs) - 1));
    if (json_is_object(par)) {
        json_t *v = json_object_get(par, last);
        if (!v)
            return NULL;
        json_incref(v);
        json_object_del(par, last);
        return v;
    }
    size_t idx;
    if (json_is_array(par) && index_of(last, json_array_size(par), 0, &idx) == 0) {
        json_t *v = json_incref(json_array_get(par, idx));
        json_array_remove(par, idx);
        return v;
    }
    return NULL;
}

/* Put v (reference stolen) at segs: kind 'a' add, 's' set, 'r' replace. */
static int put(json_t *doc, json_t *segs, json_t *v, char kind, char *msg, size_t n)
{
    json_t *par = parent_of(doc, segs);
    const char *last = json_string_value(json_array_get(segs, json_array_size(segs) - 1));
    if (!par) {
        json_decref(v);
        return err(msg, n, "The patch path's parent does not exist.");
    }
    if (json_is_object(par)) {
        if (kind == 'r' && !json_object_get(par, last)) {
            json_decref(v);
            return err(msg, n, "The patch path to replace does not exist.");
        }
        json_object_set_new(par, last, v);
        return 0;
    }
    size_t idx, size = json_array_size(par);
    if (index_of(last, size, kind == 'a' || kind == 's', &idx) != 0) {
        json_decref(v);
        return err(msg, n, "The patch path has an invalid array index.");
    }
    if (kind == 'a' || (kind == 's' && idx == size))
        json_array_insert_new(par, idx, v);
    else
        json_array_set_new(par, idx, v);
    return 0;
}

int patch_apply(json_t *doc, const json_t *ops, char *msg, size_t n)
{
    if (!json_is_array(ops) || json_array_size(ops) == 0)
        return err(msg, n, "The patch request must list operations.");
    if (json_array_size(ops) > PATCH_MAX_OPS)
        return err(msg, n, "A patch request may list at most 10 operations.");
    for (size_t i = 0; i < json_array_size(ops); i++) {
        json_t *o = json_array_get(ops, i);
        const char *op = json_string_value(json_object_get(o, "op"));
        json_t *segs = split(json_string_value(json_object_get(o, "path")));
        json_t *val = json_object_get(o, "value");
        int rc = 0;
        if (!op || !segs) {
            json_decref(segs);
            return err(msg, n, "A patch operation needs 'op' and a valid 'path'.");
        }
        if (strcmp(op, "add") == 0 || strcmp(op, "set") == 0 || strcmp(op, "replace") == 0) {
            if (!val)
                rc = err(msg, n, "The patch operation needs a 'value'.");
            else
                rc = put(doc, segs, json_deep_copy(val),
                         op[0] == 'a'   ? 'a'
                         : op[0] == 's' ? 's'
                                        : 'r',
                         msg, n);
        } else if (strcmp(op, "remove") == 0) {
            json_t *v = take(doc, segs);
            if (!v)
                rc = err(msg, n, "The patch path to remove does not exist.");
            json_decref(v);
        } else if (strcmp(op, "incr") == 0) {
            json_t *par = parent_of(doc, segs);
            const char *last = json_string_value(json_array_get(segs, json_array_size(segs) - 1));
            json_t *cur = json_is_object(par) ? json_object_get(par, last) : NULL;
            if (!json_is_number(val))
                rc = err(msg, n, "The value of an incr operation must be a number.");
            else if (!json_is_object(par))
                rc = err(msg, n, "The patch path's parent does not exist or is not an object.");
            else if (cur && !json_is_number(cur))
                rc = err(msg, n, "The target of an incr operation must be a number.");
            else if (!isfinite((cur ? json_number_value(cur) : 0) + json_number_value(val)))
                rc = err(msg, n, "The result of an incr operation is not a finite number.");
            else if (json_object_set_new(par, last,
                                         json_real((cur ? json_number_value(cur) : 0) +
                                                   json_number_value(val))) != 0)
                rc = err(msg, n, "Out of memory.");
        } else if (strcmp(op, "move") == 0) {
            const char *fromp = json_string_value(json_object_get(o, "from"));
            const char *top = json_string_value(json_object_get(o, "path"));
            json_t *from = split(fromp);
            size_t fl = fromp ? strlen(fromp) : 0;
            if (!from)
                rc = err(msg, n, "A move operation needs a valid 'from'.");
            else if (strncmp(top, fromp, fl) == 0 && top[fl] == '/')
                rc = err(msg, n, "A move cannot put a value inside itself.");
            else {
                json_t *v = take(doc, from);
                if (!v)
                    rc = err(msg, n, "The 'from' path of a move does not exist.");
                else
                    rc = put(doc, segs, v, 's', msg, n);
            }
            json_decref(from);
        } else {
            rc = err(msg, n, "Unknown patch operation.");
        }
        json_decref(segs);
        if (rc)
            return rc;
    }
    return 0;
}

void patch_handle(struct req *r, struct coll *c, const char *id)
{
    json_t *b = doc_parse(r->body, r->body_len, NULL);
    json_t *ops = json_is_array(b) ? b : json_object_get(b, "operations");
    json_t *cond = json_is_object(b) ? json_object_get(b, "condition") : NULL;
    if (!json_is_array(ops) || (cond && !json_is_string(cond) && !json_is_null(cond))) {
        json_decref(b);
        srv_error(r, 400, 0, "The patch request body is invalid.");
        return;
    }
    struct dop op = {0};
    op.kind = DOP_PATCH;
    op.id = id;
    op.patch = ops;
    op.cond = json_is_string(cond) ? json_string_value(cond) : NULL;
    op.if_match = req_header(r, "if-match");
    if (req_directive(r, &op.directive) != 0) {
        json_decref(b);
        return;
    }
    if (req_pk(r, c, &op.pkval, &op.pk, 1) == 0)
        documents_run(r, c, &op);
    dop_free(&op);
    json_decref(b);
}
