/*
 * query.c — the query subset served until the query engine lands:
 *
 *   SELECT [TOP n] * FROM c [WHERE pred [AND pred]...]
 *   SELECT VALUE COUNT(1) FROM c [WHERE ...]
 *   pred := path op literal | literal op path | ( pred )
 *   path := c(.name | ["name"] | [n])*      op := = != <> < <= > >=
 *   literal := number | 'string' | "string" | true | false | null | @param
 *
 * Comparison follows Cosmos: values of different types never compare
 * (the predicate is undefined, so the row is filtered out); = and != work
 * on any type, ordering only on numbers, strings and booleans.
 *
 * Also the query-plan answer (COSMOS-REST.md, way 2): one range covering
 * everything and a plan with nothing for the SDK to merge, since this
 * server has a single partition key range and runs the query whole.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/srv.h"

#define QMAX_PRED 32

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct pred {
    json_t *path; /* segments */
    int op;
    json_t *val;
};

struct query {
    int count;
    long top;
    int npred;
    struct pred preds[QMAX_PRED];
};

struct lex {
    const char *p;
    const json_t *params;
    char *msg;
    size_t msgsz;
    char alias[64];
};

static void skip(struct lex *l)
{
    while (isspace((unsigned char)*l->p))
        l->p++;
}

static int kw(struct lex *l, const char *word)
{
    skip(l);
    size_t n = strlen(word);
    if (strncasecmp(l->p, word, n) == 0 && !isalnum((unsigned char)l->p[n]) && l->p[n] != '_') {
        l->p += n;
        return 1;
    }
    return 0;
}

static int sym(struct lex *l, const char *s)
{
    skip(l);
    size_t n = strlen(s);
    if (strncmp(l->p, s, n) == 0) {
        l->p += n;
        return 1;
    }
    return 0;
}

static int ident(struct lex *l, char *out, size_t n)
{
    skip(l);
    size_t i = 0;
    if (!isalpha((unsigned char)*l->p) && *l->p != '_')
        return 0;
    while ((isalnum((unsigned char)*l->p) || *l->p == '_') && i + 1 < n)
        out[i++] = *l->p++;
    out[i] = 0;
    return !(isalnum((unsigned char)*l->p) || *l->p == '_');
}

static int err(struct lex *l, const char *m)
{
    snprintf(l->msg, l->msgsz, "%s", m);
    return -1;
}

static json_t *string_lit(struct lex *l)
{
    char q = *l->p;
    if (q != '\'' && q != '"')
        return NULL;
    l->p++;
    struct doc_buf b = {0};
    while (*l->p && *l->p != q) {
        char c = *l->p++;
        if (c == '\\' && *l->p) {
            c = *l->p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            default:
                break;
            }
        }
        if (doc_buf_put(&b, &c, 1) != 0) {
            doc_buf_free(&b);
            return NULL;
        }
    }
    if (*l->p != q) {
        doc_buf_free(&b);
        return NULL;
    }
    l->p++;
    json_t *s = json_stringn(b.p ? b.p : "", b.len);
    doc_buf_free(&b);
    return s;
}

static json_t *literal(struct lex *l)
{
    skip(l);
    if (*l->p == '\'' || *l->p == '"')
        return string_lit(l);
    if (*l->p == '@') {
        char name[128];
        name[0] = '@';
        l->p++;
        if (!ident(l, name + 1, sizeof name - 1))
            return NULL;
        for (size_t i = 0; i < json_array_size(l->params); i++) {
            json_t *p = json_array_get(l->params, i);
            const char *pn = json_string_value(json_object_get(p, "name"));
            if (pn && strcmp(pn, name) == 0) {
                json_t *v = json_object_get(p, "value");
                return v ? json_incref(v) : NULL;
            }
        }
        return NULL;
    }
    if (kw(l, "true"))
        return json_true();
    if (kw(l, "false"))
        return json_false();
    if (kw(l, "null"))
        return json_null();
    if (*l->p == '-' || isdigit((unsigned char)*l->p)) {
        char *end;
        double d = strtod(l->p, &end);
        if (end == l->p)
            return NULL;
        l->p = end;
        return json_real(d);
    }
    return NULL;
}

static json_t *path(struct lex *l)
{
    char name[256];
    const char *save = l->p;
    if (!ident(l, name, sizeof name) || strcmp(name, l->alias) != 0) {
        l->p = save;
        return NULL;
    }
    json_t *segs = json_array();
    for (;;) {
        skip(l);
        if (*l->p == '.') {
            l->p++;
            if (!ident(l, name, sizeof name))
                goto bad;
            json_array_append_new(segs, json_string(name));
        } else if (*l->p == '[') {
            l->p++;
            skip(l);
            json_t *v = literal(l);
            if (json_is_string(v)) {
                json_array_append_new(segs, v);
            } else if (json_is_real(v) && json_real_value(v) >= 0 &&
                       json_real_value(v) == (double)(long)json_real_value(v)) {
                json_array_append_new(segs, json_integer((long)json_real_value(v)));
                json_decref(v);
            } else {
                json_decref(v);
                goto bad;
            }
            if (!sym(l, "]"))
                goto bad;
        } else {
            break;
        }
    }
    return segs;
bad:
    json_decref(segs);
    return NULL;
}

static int op_of(struct lex *l)
{
    if (sym(l, "!="))
        return OP_NE;
    if (sym(l, "<>"))
        return OP_NE;
    if (sym(l, "<="))
        return OP_LE;
    if (sym(l, ">="))
        return OP_GE;
    if (sym(l, "="))
        return OP_EQ;
    if (sym(l, "<"))
        return OP_LT;
    if (sym(l, ">"))
        return OP_GT;
    return -1;
}

static int flip(int op)
{
    switch (op) {
    case OP_LT:
        return OP_GT;
    case OP_LE:
        return OP_GE;
    case OP_GT:
        return OP_LT;
    case OP_GE:
        return OP_LE;
    default:
        return op;
    }
}

static int pred(struct lex *l, struct query *q)
{
    if (sym(l, "(")) {
        if (pred(l, q) != 0)
            return -1;
        while (kw(l, "AND"))
            if (pred(l, q) != 0)
                return -1;
        return sym(l, ")") ? 0 : err(l, "Syntax error: ')' expected.");
    }
    if (q->npred == QMAX_PRED)
        return err(l, "The query has too many conditions.");
    struct pred *p = &q->preds[q->npred++]; /* counted now: query_free cleans up */
    p->path = path(l);
    if (p->path) {
        if ((p->op = op_of(l)) < 0)
            return err(l, "atrest supports only comparisons (=, !=, <, <=, >, >=) in WHERE yet.");
        if (!(p->val = literal(l)))
            return err(l, "Syntax error or unknown parameter in the WHERE clause.");
    } else {
        if (!(p->val = literal(l)))
            return err(l, "atrest supports only 'path op value' conditions in WHERE yet.");
        int op = op_of(l);
        if (op < 0 || !(p->path = path(l)))
            return err(l, "atrest supports only 'path op value' conditions in WHERE yet.");
        p->op = flip(op);
    }
    return 0;
}

void query_free(struct query *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->npred; i++) {
        json_decref(q->preds[i].path);
        json_decref(q->preds[i].val);
    }
    free(q);
}

struct query *query_parse(const char *sql, const json_t *params, char *msg, size_t msgsz)
{
    struct query *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(msg, msgsz, "Out of memory.");
        return NULL;
    }
    q->top = -1;
    struct lex l = {.p = sql ? sql : "", .params = params, .msg = msg, .msgsz = msgsz};
    const char *unsupported = "atrest does not support this query yet (supported now: SELECT * "
                              "FROM c [WHERE c.path = value [AND ...]] and SELECT VALUE "
                              "COUNT(1) FROM c [WHERE ...]).";
    if (!kw(&l, "SELECT"))
        goto bad;
    if (kw(&l, "TOP")) {
        skip(&l);
        char *end;
        long n = strtol(l.p, &end, 10);
        if (end == l.p || n < 0)
            goto bad;
        l.p = end;
        q->top = n;
    }
    if (sym(&l, "*")) {
        /* SELECT * */
    } else if (kw(&l, "VALUE") && kw(&l, "COUNT") && sym(&l, "(") &&
               (sym(&l, "1") || sym(&l, "*")) && sym(&l, ")")) {
        q->count = 1;
    } else {
        goto bad;
    }
    if (!kw(&l, "FROM") || !ident(&l, l.alias, sizeof l.alias))
        goto bad;
    if (kw(&l, "WHERE")) {
        if (pred(&l, q) != 0)
            goto fail;
        while (kw(&l, "AND"))
            if (pred(&l, q) != 0)
                goto fail;
    }
    skip(&l);
    if (*l.p)
        goto bad;
    return q;
bad:
    snprintf(msg, msgsz, "%s", unsupported);
fail:
    query_free(q);
    return NULL;
}

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

static int cmp_ok(const json_t *a, const json_t *b, int op)
{
    if (op == OP_EQ)
        return doc_equal(a, b);
    int same_type = (json_is_number(a) && json_is_number(b)) ||
                    (json_is_boolean(a) && json_is_boolean(b)) || json_typeof(a) == json_typeof(b);
    if (op == OP_NE)
        return same_type && !doc_equal(a, b);
    int c;
    if (json_is_number(a) && json_is_number(b)) {
        double x = num(a), y = num(b);
        c = x < y ? -1 : x > y;
    } else if (json_is_string(a) && json_is_string(b)) {
        c = strcmp(json_string_value(a), json_string_value(b));
    } else if (json_is_boolean(a) && json_is_boolean(b)) {
        c = json_is_true(a) - json_is_true(b);
    } else {
        return 0;
    }
    switch (op) {
    case OP_LT:
        return c < 0;
    case OP_LE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    case OP_GE:
        return c >= 0;
    }
    return 0;
}

int query_match(const struct query *q, const json_t *doc)
{
    for (int i = 0; i < q->npred; i++) {
        const json_t *v = doc_get_path(doc, q->preds[i].path);
        if (!v || !cmp_ok(v, q->preds[i].val, q->preds[i].op))
            return 0;
    }
    return 1;
}

int query_is_count(const struct query *q)
{
    return q->count;
}

int query_is_select_star(const struct query *q)
{
    return !q->count;
}

int query_has_filter(const struct query *q)
{
    return q->npred > 0;
}

long query_top(const struct query *q)
{
    return q->top;
}

static struct query *parse_body(struct req *r)
{
    json_t *b = doc_parse(r->body, r->body_len, NULL);
    json_t *text = json_object_get(b, "query");
    if (!json_is_string(text)) {
        json_decref(b);
        srv_error(r, 400, 0, "The query body must be {\"query\": ..., \"parameters\": [...]}.");
        return NULL;
    }
    char msg[300];
    struct query *q =
        query_parse(json_string_value(text), json_object_get(b, "parameters"), msg, sizeof msg);
    json_decref(b);
    if (!q)
        srv_error(r, 400, 0, "%s", msg);
    return q;
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
    struct query *q = parse_body(r);
    if (!q)
        return;
    if (query_scope_check(r, json_array_size(c->pk_paths),
                          req_header(r, "x-ms-documentdb-partitionkey"),
                          req_header(r, "x-ms-documentdb-query-enablecrosspartition")) != 0) {
        query_free(q);
        return;
    }
    json_t *pkv;
    char *pk;
    if (req_pk(r, c, &pkv, &pk, 0) == 0) {
        json_decref(pkv);
        if (json_array_size(c->pk_paths) == 0) {
            free(pk);
            pk = NULL;
        }
        documents_scan(r, c, pk, q);
        free(pk);
    }
    query_free(q);
}

void query_plan_handle(struct req *r, struct coll *c)
{
    (void)c;
    struct query *q = parse_body(r);
    if (!q)
        return;
    json_t *plan =
        json_pack("{s:i,s:{s:s,s:n,s:n,s:n,s:[],s:[],s:[],s:[],s:[],s:{},s:s,s:b,s:n,s:b},"
                  "s:[{s:s,s:s,s:b,s:b}]}",
                  "partitionedQueryExecutionInfoVersion", 2, "queryInfo", "distinctType", "None",
                  "top", "offset", "limit", "orderBy", "orderByExpressions", "groupByExpressions",
                  "groupByAliases", "aggregates", "groupByAliasToAggregateType", "rewrittenQuery",
                  "", "hasSelectValue", q->count, "dCountInfo", "hasNonStreamingOrderBy", 0,
                  "queryRanges", "min", "", "max", "FF", "isMinInclusive", 1, "isMaxInclusive", 0);
    if (q->top >= 0)
        json_object_set_new(json_object_get(plan, "queryInfo"), "top", json_integer(q->top));
    query_free(q);
    resp_json(r, 200, plan);
    json_decref(plan);
}
