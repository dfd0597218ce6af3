/*
 * exec.c — running a select: FROM/JOIN expansion, WHERE, projection,
 * ORDER BY, GROUP BY and aggregates, DISTINCT, OFFSET/LIMIT and TOP.
 *
 * One struct run executes one select, for the top-level query (fed one
 * document at a time by q_exec_feed) and for every evaluation of a
 * subquery (fed once, in the environment of the enclosing row). A row is
 * one binding of every FROM source; each row goes through:
 *
 *   WHERE true? --> grouping?  --> group_row: accumulate into its group
 *                   ordering?  --> order_row: keep (keys, projection)
 *                   otherwise  --> project, DISTINCT filter, emit
 *
 * and run_finish turns groups and kept rows into output through the same
 * DISTINCT filter and emit. emit applies OFFSET, LIMIT and TOP by counting
 * (run.passed) and sets run.done once no later row can be output.
 *
 * Invariants:
 *   1. With ORDER BY and a bound (TOP, OFFSET+LIMIT) and no DISTINCT, at
 *      most `bound` rows are kept (a max-heap whose root is the row that
 *      goes first when a better one arrives); ties keep input order by
 *      a sequence number.
 *   2. Kept rows are charged to ev->mem by estimated size; past
 *      Q_MEM_LIMIT the execution fails with 400 rather than grow.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/qint.h"
#include "query/qval.h"

/* ---- aggregates ---- */

struct q_acc {
    int kind;
    int bad; /* SUM/AVG saw a non-number, MIN/MAX an array or object */
    uint64_t count;
    double sum;
    json_t *best;
};

static void acc_add(struct q_acc *a, const json_t *v)
{
    if (!v)
        return;
    switch (a->kind) {
    case AGG_COUNT:
        a->count++;
        break;
    case AGG_SUM:
    case AGG_AVG:
        if (json_is_number(v)) {
            a->sum += json_number_value(v);
            a->count++;
        } else {
            a->bad = 1;
        }
        break;
    default:
        if (json_is_array(v) || json_is_object(v)) {
            a->bad = 1;
        } else if (!a->best ||
                   (a->kind == AGG_MIN ? q_cmp(v, a->best) < 0 : q_cmp(v, a->best) > 0)) {
            json_decref(a->best);
            a->best = json_incref((json_t *)v);
        }
    }
}

json_t *q_acc_result(const struct q_acc *accs, int slot)
{
    const struct q_acc *a = &accs[slot];
    double d;
    switch (a->kind) {
    case AGG_COUNT:
        return json_real((double)a->count);
    case AGG_SUM:
    case AGG_AVG:
        if (a->bad || (a->kind == AGG_AVG && a->count == 0))
            return NULL;
        d = a->kind == AGG_SUM ? a->sum : a->sum / (double)a->count;
        return d - d == 0 ? json_real(d) : NULL; /* finite */
    default:
        return a->bad || !a->best ? NULL : json_incref(a->best);
    }
}

/* ---- a set of strings (DISTINCT rows, group keys) ---- */

struct strset {
    char **keys;
    size_t *vals;
    size_t n, cap;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Find key; if absent insert it (taking ownership) with value val and
 * return SIZE_MAX; if present free key and return its value. -2 cast:
 * allocation failure (key freed). */
#define SET_OOM (SIZE_MAX - 1)
static size_t strset_put(struct strset *s, char *key, size_t val)
{
    if (s->n * 2 >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **keys = calloc(cap, sizeof *keys);
        size_t *vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            free(key);
            return SET_OOM;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i])
                continue;
            size_t j = hash(s->keys[i], strlen(s->keys[i])) & (cap - 1);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = s->keys[i];
            vals[j] = s->vals[i];
        }
        free(s->keys);
        free(s->vals);
        s->keys = keys;
        s->vals = vals;
        s->cap = cap;
    }
    size_t j = hash(key, strlen(key)) & (s->cap - 1);
    while (s->keys[j]) {
        if (strcmp(s->keys[j], key) == 0) {
            free(key);
            return s->vals[j];
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[j] = key;
    s->vals[j] = val;
    s->n++;
    return SIZE_MAX;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->vals);
    memset(s, 0, sizeof *s);
}

/* ---- the run of one select ---- */

struct krow {
    json_t **keys; /* n_order values (NULL = undefined) */
    json_t *row;
    uint64_t seq;
    size_t mem;
};

struct group {
    json_t **vals; /* the first row's bindings (references) */
    struct q_acc *accs;
};

struct run {
    const struct q_sel *s;
    struct q_ev *ev;
    const struct q_env *outer;
    int grouping, ordering, match_only, matched;
    int where_known; /* every document fed passes WHERE (q_exec_where_known) */
    json_t *sink;    /* where emit appends */
    json_t *kept;    /* DISTINCT without ORDER BY: rows so far */
    uint64_t passed, offset, bound;
    int done;
    size_t max_rows;
    size_t mem;
    struct krow *rows;
    size_t n_rows, cap_rows, heap_max; /* heap_max 0: keep every row */
    uint64_t seq;
    struct strset seen;
    struct group *groups;
    size_t n_groups, cap_groups;
    struct strset group_keys;
};

static void fail(struct q_ev *ev, int status, const char *msg)
{
    if (!ev->failed)
        q_seterr(ev->err, status, "", 0, -1, "%s", msg);
    ev->failed = 1;
}

size_t q_est_size(const json_t *v, int depth)
{
    if (!v)
        return 0;
    size_t n = 16;
    if (depth > 2 * DOC_MAX_DEPTH)
        return n;
    /* Past the memory limit the answer is "too much" anyway: stop there
     * (a value that shares one array many times over would otherwise take
     * exponential time to measure). */
    if (json_is_string(v)) {
        n += json_string_length(v);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x)
        {
            n += q_est_size(x, depth + 1);
            if (n > Q_MEM_LIMIT)
                break;
        }
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            n += strlen(k) + 16 + q_est_size(x, depth + 1);
            if (n > Q_MEM_LIMIT)
                break;
        }
    }
    return n;
}

static int charge(struct run *r, size_t n)
{
    r->mem += n;
    r->ev->mem += n;
    if (r->ev->mem > Q_MEM_LIMIT) {
        fail(r->ev, 400, "The query needs more memory than atrest allows.");
        return -1;
    }
    return 0;
}

static void release(struct run *r, size_t n)
{
    r->mem -= n;
    r->ev->mem -= n;
}

static void run_init(struct run *r, const struct q_sel *s, struct q_ev *ev,
                     const struct q_env *outer, int presorted)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->ev = ev;
    r->outer = outer;
    r->grouping = s->n_group || s->n_aggs;
    r->ordering = s->n_order && !presorted && !r->grouping;
    r->offset = s->offset > 0 ? (uint64_t)s->offset : 0;
    uint64_t take = UINT64_MAX;
    if (s->limit >= 0)
        take = (uint64_t)s->limit;
    if (s->top >= 0 && (uint64_t)s->top < take)
        take = (uint64_t)s->top;
    r->bound = take == UINT64_MAX || r->offset > UINT64_MAX - take ? UINT64_MAX : r->offset + take;
    if (r->bound == 0)
        r->done = 1;
    if (r->ordering && !s->distinct && r->bound != UINT64_MAX)
        r->heap_max = (size_t)(r->bound < SIZE_MAX / 2 ? r->bound : SIZE_MAX / 2);
}

static void group_free(struct run *r, struct group *g)
{
    if (g->vals)
        for (size_t i = 0; i < r->s->n_srcs; i++)
            json_decref(g->vals[i]);
    if (g->accs)
        for (size_t i = 0; i < r->s->n_aggs; i++)
            json_decref(g->accs[i].best);
    free(g->vals);
    free(g->accs);
}

static void krow_free(struct run *r, struct krow *k)
{
    for (size_t i = 0; i < r->s->n_order; i++)
        json_decref(k->keys[i]);
    free(k->keys);
    json_decref(k->row);
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->n_rows; i++)
        krow_free(r, &r->rows[i]);
    free(r->rows);
    for (size_t i = 0; i < r->n_groups; i++)
        group_free(r, &r->groups[i]);
    free(r->groups);
    strset_free(&r->seen);
    strset_free(&r->group_keys);
    json_decref(r->kept);
    r->ev->mem -= r->mem;
    memset(r, 0, sizeof *r);
}

/* The output row of a binding, or NULL (SELECT VALUE of undefined). */
static json_t *project(struct run *r, const struct q_env *env)
{
    const struct q_sel *s = r->s;
    if (s->star) {
        json_t *v = env->vals[s->n_srcs - 1];
        return v ? json_incref(v) : NULL;
    }
    if (s->value)
        return q_eval(r->ev, s->items[0].e, env);
    json_t *o = json_object();
    if (!o) {
        fail(r->ev, 500, "Out of memory while running the query.");
        return NULL;
    }
    for (size_t i = 0; i < s->n_items; i++) {
        json_t *v = q_eval(r->ev, s->items[i].e, env);
        if (v && json_object_set_new(o, s->items[i].name, v) != 0)
            fail(r->ev, 500, "Out of memory while running the query.");
    }
    if (r->ev->failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Hand a finished row (stolen) to the output, counting OFFSET/LIMIT/TOP. */
static void emit(struct run *r, json_t *row)
{
    if (r->done) {
        json_decref(row);
        return;
    }
    size_t size = q_est_size(row, 0);
    if (size > Q_MEM_LIMIT) { /* before DISTINCT prints it */
        json_decref(row);
        fail(r->ev, 400, "The query needs more memory than atrest allows.");
        return;
    }
    if (r->s->distinct) {
        char *key = doc_dump(row, NULL);
        size_t got = key ? strset_put(&r->seen, key, 0) : SET_OOM;
        if (got == SET_OOM) {
            json_decref(row);
            fail(r->ev, 500, "Out of memory while running the query.");
            return;
        }
        if (got != SIZE_MAX) {
            json_decref(row);
            return;
        }
    }
    r->passed++;
    if (r->passed <= r->offset) {
        json_decref(row);
    } else if (json_array_append_new(r->sink, row) != 0) {
        fail(r->ev, 500, "Out of memory while running the query.");
    } else if (r->sink == r->kept) {
        if (charge(r, size) != 0)
            return;
    } else if ((r->ev->out_mem += size) > Q_MEM_LIMIT) {
        /* streamed rows of one document, before the server pages them */
        fail(r->ev, 400, "The query needs more memory than atrest allows.");
        return;
    }
    if (r->passed >= r->bound || (r->max_rows && json_array_size(r->sink) >= r->max_rows))
        r->done = 1;
}

/* ---- ORDER BY ---- */

static int krow_cmp(const struct q_sel *s, const struct krow *a, const struct krow *b)
{
    for (size_t i = 0; i < s->n_order; i++) {
        int c = q_cmp(a->keys[i], b->keys[i]);
        if (c)
            return s->order[i].desc ? -c : c;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void sift_down(const struct q_sel *s, struct krow *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && krow_cmp(s, &h[l], &h[m]) > 0)
            m = l;
        if (l + 1 < n && krow_cmp(s, &h[l + 1], &h[m]) > 0)
            m = l + 1;
        if (m == i)
            return;
        struct krow t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(const struct q_sel *s, struct krow *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (krow_cmp(s, &h[i], &h[parent]) <= 0)
            return;
        struct krow t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static void order_row(struct run *r, const struct q_env *env)
{
    const struct q_sel *s = r->s;
    struct krow k = {0};
    k.keys = calloc(s->n_order, sizeof *k.keys);
    if (!k.keys) {
        fail(r->ev, 500, "Out of memory while running the query.");
        return;
    }
    for (size_t i = 0; i < s->n_order; i++)
        k.keys[i] = q_eval(r->ev, s->order[i].e, env);
    k.row = r->ev->failed ? NULL : project(r, env);
    k.seq = r->seq++;
    if (!k.row) {
        krow_free(r, &k);
        return;
    }
    k.mem = q_est_size(k.row, 0) + 32 * s->n_order;
    for (size_t i = 0; i < s->n_order; i++)
        k.mem += q_est_size(k.keys[i], 0);
    if (r->heap_max && r->n_rows == r->heap_max) {
        if (krow_cmp(s, &k, &r->rows[0]) >= 0) {
            krow_free(r, &k);
            return;
        }
        release(r, r->rows[0].mem);
        krow_free(r, &r->rows[0]);
        r->rows[0] = k;
        sift_down(s, r->rows, r->n_rows, 0);
    } else {
        if (r->n_rows == r->cap_rows) {
            size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
            struct krow *v = realloc(r->rows, cap * sizeof *v);
            if (!v) {
                krow_free(r, &k);
                fail(r->ev, 500, "Out of memory while running the query.");
                return;
            }
            r->rows = v;
            r->cap_rows = cap;
        }
        r->rows[r->n_rows++] = k;
        if (r->heap_max)
            sift_up(s, r->rows, r->n_rows - 1);
    }
    charge(r, k.mem);
}

static void merge_sort(const struct q_sel *s, struct krow *v, struct krow *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(s, v, tmp, h);
    merge_sort(s, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = krow_cmp(s, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

/* ---- GROUP BY and aggregates ---- */

static struct group *new_group(struct run *r, const struct q_env *env)
{
    const struct q_sel *s = r->s;
    if (doc_grow(&r->groups, &r->cap_groups, r->n_groups, sizeof *r->groups))
        return NULL;
    struct group *g = &r->groups[r->n_groups];
    g->vals = calloc(s->n_srcs + 1, sizeof *g->vals);
    g->accs = calloc(s->n_aggs + 1, sizeof *g->accs);
    if (!g->vals || !g->accs) {
        free(g->vals);
        free(g->accs);
        return NULL;
    }
    r->n_groups++;
    for (size_t i = 0; env && i < s->n_srcs; i++)
        g->vals[i] = env->vals[i] ? json_incref(env->vals[i]) : NULL;
    for (size_t i = 0; i < s->n_aggs; i++)
        g->accs[i].kind = s->aggs[i]->op;
    return g;
}

static void group_row(struct run *r, const struct q_env *env)
{
    const struct q_sel *s = r->s;
    struct group *g;
    if (!s->n_group) {
        if (!r->n_groups && !new_group(r, NULL)) {
            fail(r->ev, 500, "Out of memory while running the query.");
            return;
        }
        g = &r->groups[0];
    } else {
        struct doc_buf key = {0};
        int bad = 0;
        for (size_t i = 0; i < s->n_group && !bad; i++) {
            json_t *v = q_eval(r->ev, s->group[i], env);
            bad = (v ? doc_buf_json(&key, v) : doc_buf_puts(&key, "~")) != 0 ||
                  doc_buf_put(&key, "\x1e", 1) != 0;
            json_decref(v);
        }
        if (!bad)
            bad = doc_buf_put(&key, "", 1) != 0;
        if (bad || r->ev->failed) {
            doc_buf_free(&key);
            if (!r->ev->failed)
                fail(r->ev, 500, "Out of memory while running the query.");
            return;
        }
        size_t klen = key.len;
        size_t got = strset_put(&r->group_keys, key.p, r->n_groups);
        if (got == SET_OOM) {
            fail(r->ev, 500, "Out of memory while running the query.");
            return;
        }
        if (got == SIZE_MAX) {
            g = new_group(r, env);
            if (!g) {
                fail(r->ev, 500, "Out of memory while running the query.");
                return;
            }
            size_t m = klen + 64 * (s->n_aggs + 1);
            for (size_t i = 0; i < s->n_srcs; i++)
                m += q_est_size(g->vals[i], 0);
            if (charge(r, m) != 0)
                return;
        } else {
            g = &r->groups[got];
        }
    }
    for (size_t i = 0; i < s->n_aggs; i++) {
        json_t *v = q_eval(r->ev, s->aggs[i]->a, env);
        acc_add(&g->accs[i], v);
        json_decref(v);
    }
}

/* ---- rows ---- */

static void process_row(struct run *r, const struct q_env *env)
{
    const struct q_sel *s = r->s;
    if (s->where && !r->where_known) {
        json_t *w = q_eval(r->ev, s->where, env);
        int ok = q_true(w);
        json_decref(w);
        if (!ok || r->ev->failed)
            return;
    }
    if (r->match_only) {
        r->matched = r->done = 1;
    } else if (r->grouping) {
        group_row(r, env);
    } else if (r->ordering) {
        order_row(r, env);
    } else {
        json_t *row = project(r, env);
        if (row)
            emit(r, row);
    }
}

/* Bind source i and everything after it, one row per combination. */
static void expand(struct run *r, struct q_env *env, size_t i)
{
    const struct q_sel *s = r->s;
    if (r->done || r->ev->failed)
        return;
    if (++r->ev->steps > Q_MAX_STEPS) {
        /* JOINs over arrays multiply: a few over long arrays of one
         * document would otherwise run and grow without end */
        fail(r->ev, 400,
             "The query's FROM and JOIN sources make more than 2,000,000 combinations "
             "in one document; atrest does not run it.");
        return;
    }
    if (i == s->n_srcs) {
        process_row(r, env);
        return;
    }
    json_t *v = q_eval(r->ev, s->srcs[i].e, env);
    if (!v)
        return;
    if (!s->srcs[i].iterate) {
        env->vals[i] = v;
        expand(r, env, i + 1);
    } else if (json_is_array(v)) {
        size_t k;
        json_t *x;
        json_array_foreach(v, k, x)
        {
            env->vals[i] = x;
            expand(r, env, i + 1);
            if (r->done || r->ev->failed)
                break;
        }
    }
    env->vals[i] = NULL;
    json_decref(v);
}

static int run_rows(struct run *r)
{
    json_t *local[8] = {0};
    size_t n = r->s->n_srcs;
    json_t **vals = n <= 8 ? local : calloc(n, sizeof *vals);
    if (!vals) {
        fail(r->ev, 500, "Out of memory while running the query.");
        return -1;
    }
    struct q_env env = {r->outer, vals, NULL};
    expand(r, &env, 0);
    if (vals != local)
        free(vals);
    return r->ev->failed ? -1 : 0;
}

/* Output of everything kept, appended to out. */
static int run_finish(struct run *r, json_t *out)
{
    const struct q_sel *s = r->s;
    r->sink = out;
    if (r->grouping) {
        if (!s->n_group && !r->n_groups && !new_group(r, NULL)) {
            fail(r->ev, 500, "Out of memory while running the query.");
            return -1;
        }
        for (size_t i = 0; i < r->n_groups && !r->done && !r->ev->failed; i++) {
            struct group *g = &r->groups[i];
            struct q_env env = {r->outer, g->vals, g->accs};
            json_t *row = project(r, &env);
            if (row)
                emit(r, row);
        }
    } else if (r->ordering) {
        struct krow *tmp = malloc((r->n_rows + 1) * sizeof *tmp);
        if (!tmp) {
            fail(r->ev, 500, "Out of memory while running the query.");
            return -1;
        }
        merge_sort(s, r->rows, tmp, r->n_rows);
        free(tmp);
        for (size_t i = 0; i < r->n_rows && !r->done && !r->ev->failed; i++) {
            emit(r, r->rows[i].row);
            r->rows[i].row = NULL;
        }
    } else if (r->kept) {
        size_t i;
        json_t *row;
        json_array_foreach(r->kept, i, row)
        {
            if (json_array_append(out, row) != 0) {
                fail(r->ev, 500, "Out of memory while running the query.");
                break;
            }
        }
        json_array_clear(r->kept);
    }
    return r->ev->failed ? -1 : 0;
}

json_t *q_subquery(struct q_ev *ev, const struct q_sel *s, const struct q_env *env, size_t max_rows)
{
    struct run r;
    run_init(&r, s, ev, env, 0);
    r.max_rows = max_rows;
    json_t *out = json_array();
    if (!out) {
        fail(ev, 500, "Out of memory while running the query.");
        return NULL;
    }
    r.sink = out;
    if (run_rows(&r) == 0)
        run_finish(&r, out);
    run_free(&r);
    if (ev->failed) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- the public executor ---- */

/* A top-level FROM (SELECT ...) chain runs as stages: stages[0] is the
 * innermost select, fed the documents; at finish each stage's rows are
 * fed, one by one as the document (E_ROOT), to the next, and the last
 * stage's rows go to run. */
#define MAX_STAGES Q_MAX_DEPTH

struct q_exec {
    const struct q_query *q;
    struct q_ctx ctx;
    struct q_ev ev;
    struct q_error err;
    struct run run;
    struct run *stages; /* n_stages runs, innermost first; NULL without */
    size_t n_stages;
    int presorted, started;
};

/* A run that keeps its rows until finish. */
static int keep_rows(struct run *r)
{
    if (!r->grouping && !r->ordering && !r->kept && !(r->kept = json_array()))
        return -1;
    return 0;
}

static void exec_setup(struct q_exec *x)
{
    run_free(&x->run);
    run_init(&x->run, x->q->sel, &x->ev, NULL, x->presorted);
    if (!q_exec_streaming(x) && !x->run.grouping && !x->run.ordering)
        x->run.kept = json_array();
}

/* The runs of the selects under a top-level FROM (SELECT ...). */
static int stages_setup(struct q_exec *x)
{
    size_t n = 0;
    for (const struct q_sel *s = x->q->sel->from_sel; s; s = s->from_sel)
        n++;
    if (!n)
        return 0;
    x->stages = calloc(n, sizeof *x->stages);
    if (!x->stages)
        return -1;
    x->n_stages = n;
    const struct q_sel *s = x->q->sel->from_sel;
    for (size_t i = n; i-- > 0; s = s->from_sel) {
        run_init(&x->stages[i], s, &x->ev, NULL, 0);
        if (keep_rows(&x->stages[i]) != 0)
            return -1;
    }
    return 0;
}

/* Feed doc to stage r (its rows kept for finish). */
static void stage_feed(struct q_exec *x, struct run *r, const json_t *doc)
{
    x->ev.doc = doc;
    r->sink = r->kept;
    run_rows(r);
    r->sink = NULL;
    x->ev.doc = NULL;
}

/* Finish the stages: the rows of the last one fed to the top run. */
static void stages_finish(struct q_exec *x)
{
    json_t *rows = json_array(), *row;
    size_t i;
    if (!rows) {
        fail(&x->ev, 500, "Out of memory while running the query.");
        return;
    }
    if (!x->stages[0].s->has_from)
        stage_feed(x, &x->stages[0], NULL);
    for (size_t k = 0; k < x->n_stages && !x->ev.failed; k++) {
        json_array_clear(rows);
        if (run_finish(&x->stages[k], rows) != 0)
            break;
        struct run *next = k + 1 < x->n_stages ? &x->stages[k + 1] : &x->run;
        json_array_foreach(rows, i, row)
        {
            if (next->done || x->ev.failed)
                break;
            stage_feed(x, next, row);
        }
    }
    json_decref(rows);
}

struct q_exec *q_exec_new(const struct q_query *q, const struct q_ctx *ctx)
{
    struct q_exec *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->q = q;
    if (ctx)
        x->ctx = *ctx;
    x->ev.ctx = &x->ctx;
    x->ev.err = &x->err;
    run_init(&x->run, q->sel, &x->ev, NULL, 0);
    exec_setup(x);
    if ((!q_exec_streaming(x) && !x->run.grouping && !x->run.ordering && !x->run.kept) ||
        stages_setup(x) != 0) {
        q_exec_free(x);
        return NULL;
    }
    return x;
}

void q_exec_free(struct q_exec *x)
{
    if (!x)
        return;
    run_free(&x->run);
    for (size_t i = 0; i < x->n_stages; i++)
        run_free(&x->stages[i]);
    free(x->stages);
    free(x);
}

void q_exec_presorted(struct q_exec *x)
{
    if (x->started || x->n_stages)
        return;
    x->presorted = 1;
    exec_setup(x);
}

int q_exec_streaming(const struct q_exec *x)
{
    const struct q_sel *s = x->q->sel;
    return s->has_from && !s->n_group && !s->n_aggs && !s->distinct && !s->from_sel &&
           (!s->n_order || x->presorted);
}

void q_exec_resume(struct q_exec *x, uint64_t rows_passed)
{
    if (x->started || !q_exec_streaming(x))
        return;
    x->run.passed = rows_passed;
    if (rows_passed >= x->run.bound)
        x->run.done = 1;
}

int q_exec_feed(struct q_exec *x, const json_t *doc, json_t *out, struct q_error *err)
{
    x->started = 1;
    x->ev.steps = 0;
    x->ev.out_mem = 0;
    if (x->ev.failed) {
        if (err)
            *err = x->err;
        return -1;
    }
    if (q_exec_done(x))
        return 0;
    if (x->n_stages) {
        stage_feed(x, &x->stages[0], doc);
    } else {
        x->ev.doc = doc;
        x->run.sink = q_exec_streaming(x) ? out : x->run.kept;
        run_rows(&x->run);
        x->run.sink = NULL;
        x->ev.doc = NULL;
    }
    if (x->ev.failed) {
        if (err)
            *err = x->err;
        return -1;
    }
    return 0;
}

int q_exec_where_known(struct q_exec *x)
{
    if (x->n_stages || x->started)
        return -1;
    x->run.where_known = 1;
    return 0;
}

uint64_t q_exec_rows_passed(const struct q_exec *x)
{
    return x->run.passed;
}

int q_exec_done(const struct q_exec *x)
{
    if (x->n_stages)
        return x->stages[0].done || !x->stages[0].s->has_from;
    return x->run.done || !x->q->sel->has_from;
}

int q_exec_finish(struct q_exec *x, json_t *out, struct q_error *err)
{
    x->started = 1;
    if (!x->ev.failed && !q_exec_streaming(x)) {
        if (x->n_stages)
            stages_finish(x);
        else if (!x->q->sel->has_from) {
            x->run.sink = x->run.kept;
            run_rows(&x->run);
        }
        run_finish(&x->run, out);
    }
    if (x->ev.failed) {
        if (err)
            *err = x->err;
        return -1;
    }
    return 0;
}

int q_match(const struct q_query *q, const json_t *doc, const struct q_ctx *ctx)
{
    struct q_error err;
    struct q_ctx c = {0};
    if (ctx)
        c = *ctx;
    struct q_ev ev = {.ctx = &c, .doc = doc, .err = &err};
    struct run r;
    run_init(&r, q->sel, &ev, NULL, 0);
    r.match_only = 1;
    r.done = 0;
    run_rows(&r);
    int matched = r.matched && !ev.failed;
    run_free(&r);
    return matched;
}
