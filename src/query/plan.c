/*
 * plan.c — what an index could serve: q_info, the sargs of WHERE, the root
 * paths of ORDER BY. Computed once by q_plan at the end of q_parse.
 *
 * A sarg is only ever derived from a top-level conjunct of WHERE, and only
 * when the conjunct cannot be true unless the sarg holds (comparisons with
 * mixed types are undefined in Cosmos, so `c.a > 3` implies c.a is a
 * number). Anything less certain yields no sarg.
 */
#include <string.h>

#include "query/qint.h"
#include "query/qval.h"

/* The select that reads the container's documents: the top one, or the
 * innermost FROM (SELECT ...) under it. */
static const struct q_sel *doc_sel(const struct q_query *q)
{
    const struct q_sel *s = q->sel;
    while (s->from_sel)
        s = s->from_sel;
    return s;
}

/* The path segments of e (an expression of select s) from the root
 * document, or NULL. */
static json_t *root_path(struct q_parser *p, const struct q_sel *s, const struct q_expr *e)
{
    if (s->from_sel || !s->n_srcs || s->srcs[0].e->kind != E_ROOT)
        return NULL;
    size_t n = 0;
    const struct q_expr *b = e;
    while (b->kind == E_PROP || b->kind == E_ELEM) {
        n++;
        b = b->a;
    }
    if (!n || b->kind != E_VAR || b->up != 0 || b->slot != 0)
        return NULL;
    json_t *path = q_keep(p, json_array());
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(path, json_null()) != 0)
            return NULL;
    for (size_t i = n; i-- > 0; e = e->a) {
        json_t *seg = e->kind == E_PROP ? json_incref(e->val)
                                        : json_integer((json_int_t)json_number_value(e->val));
        if (!seg || json_array_set_new(path, i, seg) != 0)
            return NULL;
    }
    return path;
}

static int is_scalar(const json_t *v)
{
    return v && !json_is_array(v) && !json_is_object(v);
}

/* A constant usable as a range bound: number, string or boolean. */
static const json_t *bound(const struct q_expr *e)
{
    if (e->kind != E_CONST || !e->val)
        return NULL;
    if (json_is_number(e->val) || json_is_string(e->val) || json_is_boolean(e->val))
        return e->val;
    return NULL;
}

static int same_type(const json_t *a, const json_t *b)
{
    if (json_is_boolean(a))
        return json_is_boolean(b);
    return json_typeof(a) == json_typeof(b) || (json_is_number(a) && json_is_number(b));
}

struct sargs {
    struct q_sarg *v;
    size_t n, cap;
};

static struct q_sarg *push(struct q_parser *p, struct sargs *sv, enum q_sarg_kind kind,
                           const json_t *path)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        struct q_sarg *v = q_palloc(p, cap * sizeof *v);
        if (sv->n)
            memcpy(v, sv->v, sv->n * sizeof *v);
        sv->v = v;
        sv->cap = cap;
    }
    struct q_sarg *s = &sv->v[sv->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->path = path;
    return s;
}

static void eq_sarg(struct q_parser *p, struct sargs *sv, const json_t *path, const json_t *v)
{
    json_t *values = q_keep(p, json_array());
    if (json_array_append(values, (json_t *)v) == 0)
        push(p, sv, Q_SARG_EQ, path)->values = values;
}

/* The first scalar reached through object members of v: its member path
 * goes to elem (an array), the scalar is returned. */
static const json_t *leaf(const json_t *v, json_t *elem, int depth)
{
    if (is_scalar(v))
        return v;
    if (!json_is_object(v) || depth > Q_MAX_DEPTH)
        return NULL;
    const char *k;
    const json_t *m;
    json_object_foreach((json_t *)v, k, m)
    {
        json_t *key = json_string(k);
        if (!key || json_array_append_new(elem, key) != 0)
            return NULL;
        const json_t *r = leaf(m, elem, depth + 1);
        if (r)
            return r;
        json_array_remove(elem, json_array_size(elem) - 1);
    }
    return NULL;
}

static void call_sarg(struct q_parser *p, const struct q_sel *sel, struct sargs *sv,
                      const struct q_expr *e)
{
    const char *fn = q_builtin_name(e->op);
    if (!fn || e->n == 0)
        return;
    json_t *path = root_path(p, sel, e->args[0]);
    if (!path)
        return;
    const struct q_expr *a1 = e->n > 1 ? e->args[1] : NULL;
    const struct q_expr *a2 = e->n > 2 ? e->args[2] : NULL;
    int third_false = !a2 || (a2->kind == E_CONST && json_is_false(a2->val));
    int third_bool = !a2 || (a2->kind == E_CONST && json_is_boolean(a2->val));
    if (strcmp(fn, "IS_DEFINED") == 0 && e->n == 1) {
        push(p, sv, Q_SARG_DEFINED, path);
    } else if (strcmp(fn, "STARTSWITH") == 0 && a1 && a1->kind == E_CONST &&
               json_is_string(a1->val) && third_false) {
        push(p, sv, Q_SARG_PREFIX, path)->lo = a1->val;
    } else if (strcmp(fn, "ARRAY_CONTAINS") == 0 && a1 && a1->kind == E_CONST && a1->val) {
        json_t *elem = q_keep(p, json_array());
        const json_t *v;
        if (is_scalar(a1->val) && third_false)
            v = a1->val;
        else if (json_is_object(a1->val) && third_bool)
            v = leaf(a1->val, elem, 0);
        else
            return;
        json_t *values = q_keep(p, json_array());
        if (!v || json_array_append(values, (json_t *)v) != 0)
            return;
        struct q_sarg *s = push(p, sv, Q_SARG_CONTAINS, path);
        s->values = values;
        s->elem_path = elem;
    }
}

static int flip(int op)
{
    switch (op) {
    case '<':
        return '>';
    case '>':
        return '<';
    case T_LE:
        return T_GE;
    case T_GE:
        return T_LE;
    default:
        return op;
    }
}

/* The sarg conjunct_sarg pushed last, marked exact (see query.h). */
static void exact(struct sargs *sv, size_t before)
{
    if (sv->n == before + 1)
        sv->v[before].exact = 1;
}

static void conjunct_sarg(struct q_parser *p, const struct q_sel *sel, struct sargs *sv,
                          const struct q_expr *e)
{
    size_t before = sv->n;
    if (e->kind == E_PROP || e->kind == E_ELEM) {
        json_t *path = root_path(p, sel, e);
        if (path) {
            eq_sarg(p, sv, path, json_true());
            exact(sv, before);
        }
        return;
    }
    if (e->kind == E_CALL) {
        call_sarg(p, sel, sv, e);
        return;
    }
    if (e->kind == E_IN && !e->negate) {
        json_t *path = root_path(p, sel, e->a);
        if (!path)
            return;
        json_t *values = q_keep(p, json_array());
        for (size_t i = 0; i < e->n; i++) {
            const struct q_expr *x = e->args[i];
            if (x->kind != E_CONST || !is_scalar(x->val))
                return;
            if (json_array_append(values, x->val) != 0)
                return;
        }
        push(p, sv, Q_SARG_EQ, path)->values = values;
        exact(sv, before);
        return;
    }
    if (e->kind == E_BETWEEN && !e->negate) {
        json_t *path = root_path(p, sel, e->a);
        const json_t *lo = bound(e->b), *hi = bound(e->c);
        if (!path || !lo || !hi || !same_type(lo, hi))
            return;
        struct q_sarg *s = push(p, sv, Q_SARG_RANGE, path);
        s->lo = lo;
        s->hi = hi;
        s->lo_incl = s->hi_incl = 1;
        exact(sv, before);
        return;
    }
    if (e->kind != E_BINARY)
        return;
    int op = e->op;
    const struct q_expr *pe = e->a, *ce = e->b;
    if (pe->kind == E_CONST) {
        pe = e->b;
        ce = e->a;
        op = flip(op);
    }
    if (ce->kind != E_CONST)
        return;
    json_t *path = root_path(p, sel, pe);
    if (!path)
        return;
    if (op == '=') {
        if (is_scalar(ce->val)) {
            eq_sarg(p, sv, path, ce->val);
            exact(sv, before);
        }
        return;
    }
    const json_t *b = bound(ce);
    if (!b || (op != '<' && op != '>' && op != T_LE && op != T_GE))
        return;
    struct q_sarg *s = push(p, sv, Q_SARG_RANGE, path);
    if (op == '<' || op == T_LE) {
        s->hi = b;
        s->hi_incl = op == T_LE;
    } else {
        s->lo = b;
        s->lo_incl = op == T_GE;
    }
    exact(sv, before);
}

void q_plan(struct q_parser *p)
{
    struct q_query *q = p->q;
    /* sargs come from the WHERE of the select that reads the documents:
     * a document it filters out yields no row to anything above it */
    const struct q_sel *s = doc_sel(q);
    struct sargs sv = {0};
    int exact_all = s->where != NULL;
    if (s->where) {
        int is_and = s->where->kind == E_AND;
        size_t n = is_and ? s->where->n : 1;
        for (size_t i = 0; i < n; i++) {
            size_t before = sv.n;
            conjunct_sarg(p, s, &sv, is_and ? s->where->args[i] : s->where);
            exact_all &= sv.n == before + 1 && sv.v[before].exact;
        }
    }
    q->sargs = sv.v;
    q->n_sargs = sv.n;
    q->where_exact = exact_all;
    s = q->sel;
    if (s->n_order) {
        q->order_paths = q_palloc(p, s->n_order * sizeof *q->order_paths);
        for (size_t i = 0; i < s->n_order; i++)
            q->order_paths[i] = root_path(p, s, s->order[i].e);
    }
}

void q_info(const struct q_query *q, struct q_info *out)
{
    const struct q_sel *s = q->sel;
    memset(out, 0, sizeof *out);
    out->select_value = s->value;
    out->select_star = s->star;
    out->distinct = s->distinct;
    out->has_aggregate = s->n_aggs > 0;
    out->has_group_by = s->n_group > 0;
    out->has_join = s->n_srcs > 1;
    out->n_order = s->n_order;
    out->top = s->top;
    out->offset = s->offset;
    out->limit = s->limit;
    out->streaming =
        s->has_from && !s->n_order && !s->n_group && !s->n_aggs && !s->distinct && !s->from_sel;
    out->root_alias = q->root_alias;
    const struct q_expr *item = s->n_items == 1 ? s->items[0].e : NULL;
    out->count_only = s->value && item && item->kind == E_AGG && item->op == AGG_COUNT && item->a &&
                      item->a->kind == E_CONST && item->a->val && s->has_from && s->n_srcs == 1 &&
                      !s->srcs[0].iterate && s->srcs[0].e->kind == E_ROOT && !s->from_sel &&
                      !s->n_group && !s->distinct && !s->n_order && s->offset < 0 && s->top != 0 &&
                      s->limit != 0;
    out->where_exact = q->where_exact;
}

size_t q_sargs(const struct q_query *q, struct q_sarg *out, size_t max)
{
    for (size_t i = 0; i < q->n_sargs && i < max; i++)
        out[i] = q->sargs[i];
    return q->n_sargs;
}

const json_t *q_order(const struct q_query *q, size_t i, int *desc)
{
    if (i >= q->sel->n_order)
        return NULL;
    if (desc)
        *desc = q->sel->order[i].desc;
    return q->order_paths[i];
}
