/*
 * eval.c — expression evaluation with Cosmos semantics.
 *
 * Every function returns a new reference or NULL for undefined. A type
 * mismatch is undefined, never an error: arithmetic and bitwise operators
 * need numbers, || needs strings, comparisons need two values of the same
 * type (= and != compare arrays and objects deeply; < <= > >= refuse
 * them), NOT needs a boolean. AND, OR and NOT follow the three-valued
 * tables of the Cosmos docs (false AND undefined = false, true OR
 * undefined = true); a non-boolean operand counts as undefined. Only
 * resource failures (out of memory, a built-in's error) set ev->failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/qint.h"
#include "query/qval.h"

static json_t *oom(struct q_ev *ev)
{
    if (!ev->failed)
        q_seterr(ev->err, 500, "", 0, -1, "Out of memory while running the query.");
    ev->failed = 1;
    return NULL;
}

static json_t *number(struct q_ev *ev, double d)
{
    if (!isfinite(d))
        return NULL;
    json_t *v = json_real(d);
    return v ? v : oom(ev);
}

/* Type classes for comparison: null, boolean, number, string, array, object. */
static int tclass(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        return 1;
    case JSON_INTEGER:
    case JSON_REAL:
        return 2;
    case JSON_STRING:
        return 3;
    case JSON_ARRAY:
        return 4;
    default:
        return 5;
    }
}

/* a op b for = != < <= > >=: 1 true, 0 false, -1 undefined. */
static int compare(int op, const json_t *a, const json_t *b)
{
    if (!a || !b || tclass(a) != tclass(b))
        return -1;
    int structured = tclass(a) >= 4;
    if (op == '=' || op == T_NE) {
        int eq = structured ? doc_equal(a, b) : q_cmp(a, b) == 0;
        return op == '=' ? eq : !eq;
    }
    if (structured)
        return -1;
    int c = q_cmp(a, b);
    switch (op) {
    case '<':
        return c < 0;
    case T_LE:
        return c <= 0;
    case '>':
        return c > 0;
    default:
        return c >= 0;
    }
}

static json_t *tri(int t)
{
    return t < 0 ? NULL : json_boolean(t);
}

/* ECMAScript ToInt32. */
static int32_t to_i32(double d)
{
    if (!isfinite(d))
        return 0;
    d = trunc(d);
    d = fmod(d, 4294967296.0);
    if (d < 0)
        d += 4294967296.0;
    return (int32_t)(uint32_t)d;
}

static json_t *binary(struct q_ev *ev, int op, const json_t *a, const json_t *b)
{
    switch (op) {
    case '=':
    case T_NE:
    case '<':
    case T_LE:
    case '>':
    case T_GE:
        return tri(compare(op, a, b));
    case T_CONCAT: {
        if (!json_is_string(a) || !json_is_string(b))
            return NULL;
        size_t na = json_string_length(a), nb = json_string_length(b);
        char *buf = malloc(na + nb + 1);
        if (!buf)
            return oom(ev);
        memcpy(buf, json_string_value(a), na);
        memcpy(buf + na, json_string_value(b), nb);
        json_t *v = json_stringn_nocheck(buf, na + nb);
        free(buf);
        return v ? v : oom(ev);
    }
    default:
        break;
    }
    if (!json_is_number(a) || !json_is_number(b))
        return NULL;
    double x = json_number_value(a), y = json_number_value(b);
    int32_t i = to_i32(x), j = to_i32(y);
    switch (op) {
    case '+':
        return number(ev, x + y);
    case '-':
        return number(ev, x - y);
    case '*':
        return number(ev, x * y);
    case '/':
        return number(ev, x / y);
    case '%':
        return number(ev, fmod(x, y));
    case '&':
        return number(ev, (double)(i & j));
    case '|':
        return number(ev, (double)(i | j));
    case '^':
        return number(ev, (double)(i ^ j));
    case T_SHL:
        return number(ev, (double)(int32_t)((uint32_t)i << (j & 31)));
    case T_SHR:
        return number(ev, (double)(i >> (j & 31)));
    case T_USHR:
        return number(ev, (double)((uint32_t)i >> (j & 31)));
    default:
        return NULL;
    }
}

static size_t cp_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return k < n ? k : n;
}

/* The code point at s (n > 0 bytes left); *len gets its size. */
static unsigned decode(const char *s, size_t n, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = cp_len(s, n);
    unsigned cp = k == 1 ? u[0] : u[0] & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (u[i] & 0x3F);
    *len = k;
    return cp;
}

/* A character class [abc], [a-c], [^a-c] at p[pi] (the '['), as in
 * T-SQL: members up to the first ']' that is not escaped; '-' between two
 * members is a range, elsewhere a member. Returns 0 when there is no
 * closing ']' (the '[' is then an ordinary character); else *end is past
 * the ']' and *hit says whether c is in the class. */
static int like_class(const char *p, size_t pn, size_t pi, int esc, unsigned c, size_t *end,
                      int *hit)
{
    size_t i = pi + 1, k;
    int neg = i < pn && p[i] == '^';
    int in = 0;
    if (neg)
        i++;
    while (i < pn && p[i] != ']') {
        if ((unsigned char)p[i] == esc && i + 1 < pn)
            i++;
        unsigned lo = decode(p + i, pn - i, &k), hi = lo;
        i += k;
        if (i + 1 < pn && p[i] == '-' && p[i + 1] != ']') {
            i++;
            if ((unsigned char)p[i] == esc && i + 1 < pn)
                i++;
            hi = decode(p + i, pn - i, &k);
            i += k;
        }
        in |= lo <= c && c <= hi;
    }
    if (i >= pn)
        return 0;
    *end = i + 1;
    *hit = in != neg;
    return 1;
}

/* LIKE: % any run, _ one character, [..] one character of a class, esc
 * makes the next character literal. Greedy with one backtrack point (the
 * last %): every other element matches exactly one character, so the
 * work is bounded by (string length) x (pattern length). */
static int like(const char *s, size_t sn, const char *p, size_t pn, int esc)
{
    size_t si = 0, pi = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < sn) {
        if (pi < pn) {
            unsigned char c = (unsigned char)p[pi];
            size_t ls, end;
            int hit;
            if (c == '%' && c != esc) {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (c == '_' && c != esc) {
                si += cp_len(s + si, sn - si);
                pi++;
                continue;
            }
            if (c == '[' && c != esc &&
                like_class(p, pn, pi, esc, decode(s + si, sn - si, &ls), &end, &hit)) {
                if (hit) {
                    si += ls;
                    pi = end;
                    continue;
                }
            } else {
                size_t lit = pi;
                if (c == esc && pi + 1 < pn)
                    lit = pi + 1;
                size_t lp = cp_len(p + lit, pn - lit);
                ls = cp_len(s + si, sn - si);
                if (lp == ls && memcmp(p + lit, s + si, lp) == 0) {
                    pi = lit + lp;
                    si += ls;
                    continue;
                }
            }
        }
        if (star_p == SIZE_MAX)
            return 0;
        pi = star_p;
        star_s += cp_len(s + star_s, sn - star_s);
        si = star_s;
    }
    while (pi < pn && p[pi] == '%' && '%' != esc)
        pi++;
    return pi == pn;
}

static json_t *logic(struct q_ev *ev, const struct q_expr *e, const struct q_env *env, int is_and)
{
    int undef = 0;
    for (size_t i = 0; i < e->n; i++) {
        json_t *v = q_eval(ev, e->args[i], env);
        int b = json_is_boolean(v) ? json_is_true(v) : -1;
        json_decref(v);
        if (ev->failed)
            return NULL;
        if (b < 0)
            undef = 1;
        else if (b != is_and)
            return json_boolean(!is_and); /* false AND x, true OR x */
    }
    return undef ? NULL : json_boolean(is_and);
}

static json_t *call(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    json_t *local[8];
    json_t **args = e->n <= 8 ? local : calloc(e->n, sizeof *args);
    if (!args)
        return oom(ev);
    for (size_t i = 0; i < e->n; i++)
        args[i] = q_eval(ev, e->args[i], env);
    json_t *out = NULL;
    if (!ev->failed && q_builtin_call(e->op, args, e->n, ev->ctx, &out, ev->err) != 0) {
        ev->failed = 1;
        out = NULL;
    }
    for (size_t i = 0; i < e->n; i++)
        json_decref(args[i]);
    if (args != local)
        free(args);
    return out;
}

static json_t *in_list(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    json_t *a = q_eval(ev, e->a, env);
    if (!a)
        return NULL;
    int found = 0;
    for (size_t i = 0; i < e->n && !found && !ev->failed; i++) {
        json_t *v = q_eval(ev, e->args[i], env);
        found = compare('=', a, v) == 1;
        json_decref(v);
    }
    json_decref(a);
    return ev->failed ? NULL : json_boolean(found != e->negate);
}

static json_t *between(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    json_t *a = q_eval(ev, e->a, env), *lo = q_eval(ev, e->b, env), *hi = q_eval(ev, e->c, env);
    int x = compare(T_GE, a, lo), y = compare(T_LE, a, hi);
    json_decref(a);
    json_decref(lo);
    json_decref(hi);
    int r = x == 0 || y == 0 ? 0 : x < 0 || y < 0 ? -1 : 1;
    if (r >= 0 && e->negate)
        r = !r;
    return tri(r);
}

static json_t *like_expr(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    json_t *a = q_eval(ev, e->a, env), *pat = q_eval(ev, e->b, env);
    int r = -1;
    if (json_is_string(a) && json_is_string(pat)) {
        int esc = e->c ? (unsigned char)json_string_value(e->c->val)[0] : -1;
        r = like(json_string_value(a), json_string_length(a), json_string_value(pat),
                 json_string_length(pat), esc);
        if (e->negate)
            r = !r;
    }
    json_decref(a);
    json_decref(pat);
    return tri(r);
}

static json_t *construct(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    int obj = e->kind == E_OBJECT;
    json_t *out = obj ? json_object() : json_array();
    if (!out)
        return oom(ev);
    for (size_t i = 0; i < e->n; i++) {
        json_t *v = q_eval(ev, e->args[i], env);
        if (!v)
            continue;
        if ((obj ? json_object_set_new(out, e->keys[i], v) : json_array_append_new(out, v)) != 0) {
            json_decref(out);
            return oom(ev);
        }
    }
    if (ev->failed) {
        json_decref(out);
        return NULL;
    }
    if (q_est_size(out, 0) > Q_MEM_LIMIT) { /* [y, y] nested doubles every level */
        json_decref(out);
        if (!ev->failed)
            q_seterr(ev->err, 400, "", 0, -1, "The query needs more memory than atrest allows.");
        ev->failed = 1;
        return NULL;
    }
    return out;
}

static json_t *member(const json_t *o, const json_t *key)
{
    json_t *v = NULL;
    if (json_is_string(key) && json_is_object(o)) {
        v = json_object_getn(o, json_string_value(key), json_string_length(key));
    } else if (json_is_number(key) && json_is_array(o)) {
        double d = json_number_value(key);
        if (d >= 0 && d == floor(d) && d < (double)json_array_size(o))
            v = json_array_get(o, (size_t)d);
    }
    return v ? json_incref(v) : NULL;
}

json_t *q_eval(struct q_ev *ev, const struct q_expr *e, const struct q_env *env)
{
    if (ev->failed)
        return NULL;
    switch (e->kind) {
    case E_CONST:
        return e->val ? json_incref(e->val) : NULL;
    case E_ROOT:
        return ev->doc ? json_incref((json_t *)ev->doc) : NULL;
    case E_VAR: {
        for (int up = e->up; up > 0 && env; up--)
            env = env->up;
        json_t *v = env ? env->vals[e->slot] : NULL;
        return v ? json_incref(v) : NULL;
    }
    case E_PROP:
    case E_ELEM:
    case E_INDEX: {
        json_t *o = q_eval(ev, e->a, env);
        if (!o)
            return NULL;
        json_t *k = e->b ? q_eval(ev, e->b, env) : json_incref(e->val);
        json_t *v = member(o, k);
        json_decref(k);
        json_decref(o);
        return v;
    }
    case E_UNARY: {
        json_t *a = q_eval(ev, e->a, env), *r = NULL;
        if (e->op == KW_NOT)
            r = json_is_boolean(a) ? json_boolean(!json_is_true(a)) : NULL;
        else if (json_is_number(a))
            r = number(ev, e->op == '-'   ? -json_number_value(a)
                           : e->op == '+' ? json_number_value(a)
                                          : (double)~to_i32(json_number_value(a)));
        json_decref(a);
        return r;
    }
    case E_BINARY: {
        json_t *a = q_eval(ev, e->a, env), *b = q_eval(ev, e->b, env);
        json_t *r = ev->failed ? NULL : binary(ev, e->op, a, b);
        json_decref(a);
        json_decref(b);
        return r;
    }
    case E_AND:
    case E_OR:
        return logic(ev, e, env, e->kind == E_AND);
    case E_TERNARY: {
        json_t *c = q_eval(ev, e->a, env);
        int t = q_true(c);
        json_decref(c);
        return q_eval(ev, t ? e->b : e->c, env);
    }
    case E_COALESCE: {
        json_t *a = q_eval(ev, e->a, env);
        return a ? a : q_eval(ev, e->b, env);
    }
    case E_IN:
        return in_list(ev, e, env);
    case E_BETWEEN:
        return between(ev, e, env);
    case E_LIKE:
        return like_expr(ev, e, env);
    case E_CALL:
        return call(ev, e, env);
    case E_AGG:
        return env && env->accs ? q_acc_result(env->accs, e->slot) : NULL;
    case E_OBJECT:
    case E_ARRAY:
        return construct(ev, e, env);
    case E_EXISTS:
    case E_ARRAYSUB:
    case E_SCALARSUB: {
        json_t *rows = q_subquery(ev, e->sub, env, e->kind == E_ARRAYSUB ? 0 : 1);
        if (!rows || e->kind == E_ARRAYSUB)
            return rows;
        json_t *r =
            e->kind == E_EXISTS ? json_boolean(json_array_size(rows) > 0) : json_array_get(rows, 0);
        if (r)
            json_incref(r);
        json_decref(rows);
        return r;
    }
    }
    return NULL;
}
