/*
 * parse.c — recursive-descent parser for the Cosmos NoSQL query language,
 * name resolution and the checks Cosmos makes before running a query.
 *
 * Grammar (precedence from loosest to tightest):
 *
 *   query    := select EOF
 *   select   := SELECT [DISTINCT] [TOP n] ( '*' | VALUE expr [[AS] id] | item, ... )
 *               [FROM source (JOIN source)*] [WHERE expr] [GROUP BY expr, ...]
 *               [ORDER BY expr [ASC|DESC], ...] [OFFSET n LIMIT m]
 *   source   := id IN path | path [[AS] id] | '(' select ')' [[AS] id]
 *   expr     := coalesce ['?' expr ':' expr]
 *   coalesce := or ('??' or)*
 *   or       := and (OR and)*            and := not (AND not)*
 *   not      := NOT not | cmp
 *   cmp      := concat ((= != <> < <= > >=) concat
 *                       | [NOT] IN '(' expr, ... ')' | [NOT] BETWEEN concat AND concat
 *                       | [NOT] LIKE concat [ESCAPE 'c'])*
 *   concat   := bor ('||' bor)*   bor := bxor ('|' bxor)*   bxor := band ('^' band)*
 *   band     := shift ('&' shift)*   shift := add ((<< >> >>>) add)*
 *   add      := mul ((+ -) mul)*   mul := unary ((* / %) unary)*
 *   unary    := (- + ~) unary | postfix
 *   postfix  := primary ('.' id | '[' expr ']')*
 *   primary  := literal | @param | id | id '(' args ')' | '(' expr ')' | '(' select ')'
 *               | EXISTS '(' select ')' | ARRAY '(' select ')' | '[' ... ']' | '{' ... '}'
 *
 * The select list names FROM's aliases, which come after it: the parser
 * first skims ahead to FROM, parses the sources, then returns to the list.
 * Errors longjmp to q_parse, which frees the half-built query (everything
 * lives in its arena and consts array).
 *
 * Syntax errors come first, as in Cosmos (which parses the whole text
 * before it binds names): a semantic error (sem_fail: an unknown name,
 * function or parameter, a misplaced aggregate, ...) makes q_parse parse
 * the text again with syntax_only set, where semantic checks pass and
 * names bind to placeholders; a syntax error found then is the answer.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/qint.h"
#include "query/qval.h"

/* ---- tokens ---- */

static void next(struct q_parser *p)
{
    q_lex(p, p->cur.pos + p->cur.len, &p->cur);
}

static void peek(struct q_parser *p, struct q_token *t)
{
    q_lex(p, p->cur.pos + p->cur.len, t);
}

static _Noreturn void syntax_error(struct q_parser *p)
{
    if (p->cur.kind == T_EOF)
        q_fail(p, p->cur.pos, "Syntax error, unexpected end-of-file.");
    size_t n = p->cur.len > 40 ? 40 : p->cur.len;
    /* do not cut a UTF-8 sequence */
    while (n < p->cur.len && n > 0 && ((unsigned char)p->text[p->cur.pos + n] & 0xC0) == 0x80)
        n--;
    q_fail(p, p->cur.pos, "Syntax error, incorrect syntax near '%.*s'.", (int)n,
           p->text + p->cur.pos);
}

static int is_kw(const struct q_parser *p, int kw)
{
    return p->cur.kind == T_IDENT && p->cur.kw == kw;
}

static int accept_kw(struct q_parser *p, int kw)
{
    if (!is_kw(p, kw))
        return 0;
    next(p);
    return 1;
}

static void expect_kw(struct q_parser *p, int kw)
{
    if (!accept_kw(p, kw))
        syntax_error(p);
}

static int accept(struct q_parser *p, int kind)
{
    if (p->cur.kind != kind)
        return 0;
    next(p);
    return 1;
}

static void expect(struct q_parser *p, int kind)
{
    if (!accept(p, kind))
        syntax_error(p);
}

/* An identifier that is not a reserved word; returns its name. */
static const char *expect_ident(struct q_parser *p)
{
    if (p->cur.kind != T_IDENT || p->cur.kw != KW_NONE)
        syntax_error(p);
    const char *s = p->cur.str;
    next(p);
    return s;
}

/* A semantic error: fatal, except while checking syntax alone (then the
 * caller goes on with a placeholder). */
__attribute__((format(printf, 3, 4))) static void sem_fail(struct q_parser *p, size_t pos,
                                                           const char *fmt, ...)
{
    if (p->syntax_only)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->semantic = 1;
    q_fail(p, pos, "%s", msg);
}

static void enter(struct q_parser *p, size_t pos)
{
    if (++p->depth > Q_MAX_DEPTH)
        q_fail(p, pos, "The query is nested too deeply (more than %d levels).", Q_MAX_DEPTH);
}

/* ---- nodes ---- */

static struct q_expr *node(struct q_parser *p, enum q_ekind kind, size_t pos)
{
    struct q_expr *e = q_palloc(p, sizeof *e);
    e->kind = kind;
    e->pos = pos;
    e->end = pos;
    e->height = 1;
    return e;
}

/* Set e's height from its children and its end from the last token. */
static struct q_expr *done(struct q_parser *p, struct q_expr *e)
{
    int h = 0;
    const struct q_expr *kids[3] = {e->a, e->b, e->c};
    for (int i = 0; i < 3; i++)
        if (kids[i] && kids[i]->height > h)
            h = kids[i]->height;
    for (size_t i = 0; i < e->n; i++)
        if (e->args[i] && e->args[i]->height > h)
            h = e->args[i]->height;
    e->height = h + 1;
    if (e->height > Q_MAX_HEIGHT)
        q_fail(p, e->pos, "The query expression is too complex (more than %d levels).",
               Q_MAX_HEIGHT);
    size_t prev_end = p->cur.pos; /* text up to the current token */
    while (prev_end > e->pos && (p->text[prev_end - 1] == ' ' || p->text[prev_end - 1] == '\n' ||
                                 p->text[prev_end - 1] == '\t' || p->text[prev_end - 1] == '\r'))
        prev_end--;
    e->end = prev_end > e->pos ? prev_end : e->pos;
    return e;
}

static struct q_expr *constant(struct q_parser *p, size_t pos, json_t *v /* stolen, NULL ok */)
{
    struct q_expr *e = node(p, E_CONST, pos);
    e->val = v ? q_keep(p, v) : NULL;
    return e;
}

static struct q_expr *binary(struct q_parser *p, enum q_ekind kind, int op, struct q_expr *a,
                             struct q_expr *b)
{
    struct q_expr *e = node(p, kind, a->pos);
    e->op = op;
    e->a = a;
    e->b = b;
    return done(p, e);
}

/* A growable array of pointers in the arena. */
struct pvec {
    void **v;
    size_t n, cap;
};

static void pvec_push(struct q_parser *p, struct pvec *pv, void *x)
{
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 4;
        void **v = q_palloc(p, cap * sizeof *v);
        if (pv->n)
            memcpy(v, pv->v, pv->n * sizeof *v);
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = x;
}

/* ---- names ---- */

static struct q_expr *resolve(struct q_parser *p, const char *name, size_t pos)
{
    int up = 0;
    for (const struct q_sel *s = p->sel; s; s = s->outer, up++) {
        for (size_t i = s->n_srcs; i-- > 0;) {
            if (s->srcs[i].alias && strcmp(s->srcs[i].alias, name) == 0) {
                struct q_expr *e = node(p, E_VAR, pos);
                e->up = up;
                e->slot = (int)i;
                e->end = pos + strlen(name);
                return e;
            }
        }
    }
    sem_fail(p, pos, "Identifier '%s' could not be resolved.", name);
    return node(p, E_CONST, pos);
}

static void add_src(struct q_parser *p, struct q_sel *s, const char *alias, int iterate,
                    struct q_expr *e)
{
    for (size_t i = 0; i < s->n_srcs; i++)
        if (alias && s->srcs[i].alias && strcmp(s->srcs[i].alias, alias) == 0)
            sem_fail(p, p->cur.pos, "The alias '%s' is defined more than once.", alias);
    struct q_src *v = q_palloc(p, (s->n_srcs + 1) * sizeof *v);
    if (s->n_srcs)
        memcpy(v, s->srcs, s->n_srcs * sizeof *v);
    v[s->n_srcs] = (struct q_src){alias, iterate, e};
    s->srcs = v;
    s->n_srcs++;
}

/* ---- expressions ---- */

static struct q_expr *parse_expr(struct q_parser *p);
static struct q_sel *parse_select(struct q_parser *p);

static struct q_expr *subquery(struct q_parser *p, enum q_ekind kind, size_t pos)
{
    struct q_expr *e = node(p, kind, pos);
    enter(p, pos);
    e->sub = parse_select(p);
    p->depth--;
    expect(p, ')');
    return done(p, e);
}

static int agg_kind(const char *name)
{
    static const char *names[] = {"COUNT", "SUM", "AVG", "MIN", "MAX"};
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

static struct q_expr *call(struct q_parser *p, const char *name, size_t pos)
{
    expect(p, '(');
    struct pvec args = {0};
    int agg = agg_kind(name);
    int saved_in_agg = p->in_agg;
    if (agg >= 0) {
        if (!p->agg_ok)
            sem_fail(p, pos,
                     "Aggregate function '%s' is not allowed here: aggregates may only "
                     "appear in the SELECT list.",
                     name);
        if (p->in_agg)
            sem_fail(p, pos,
                     "Cannot perform an aggregate function on an expression containing "
                     "an aggregate.");
        p->in_agg = 1;
    }
    if (p->cur.kind != ')') {
        do {
            if (args.n >= Q_MAX_IN)
                q_fail(p, p->cur.pos, "Too many arguments.");
            pvec_push(p, &args, parse_expr(p));
        } while (accept(p, ','));
    }
    expect(p, ')');
    p->in_agg = saved_in_agg;
    struct q_expr *e;
    if (p->syntax_only)
        return done(p, node(p, E_CONST, pos));
    if (agg >= 0) {
        if (args.n != 1)
            sem_fail(p, pos, "The %s function requires 1 argument(s).", name);
        e = node(p, E_AGG, pos);
        e->op = agg;
        e->a = args.v[0];
        struct q_sel *s = p->sel;
        struct q_expr **v = q_palloc(p, (s->n_aggs + 1) * sizeof *v);
        if (s->n_aggs)
            memcpy(v, s->aggs, s->n_aggs * sizeof *v);
        v[s->n_aggs] = e;
        s->aggs = v;
        e->slot = (int)s->n_aggs++;
        return done(p, e);
    }
    int id = q_builtin_find(name, strlen(name));
    if (id < 0)
        sem_fail(p, pos, "'%s' is not a recognized built-in function name.", name);
    int min, max;
    q_builtin_arity(id, &min, &max);
    if ((int)args.n < min || (max >= 0 && (int)args.n > max)) {
        if (min == max)
            sem_fail(p, pos, "The %s function requires %d argument(s).", q_builtin_name(id),
                     min);
        else if (max < 0)
            sem_fail(p, pos, "The %s function requires at least %d argument(s).",
                     q_builtin_name(id), min);
        else
            sem_fail(p, pos, "The %s function requires between %d and %d argument(s).",
                     q_builtin_name(id), min, max);
    }
    e = node(p, E_CALL, pos);
    e->op = id;
    e->args = (struct q_expr **)args.v;
    e->n = args.n;
    return done(p, e);
}

static json_t *param_value(struct q_parser *p, const struct q_token *t)
{
    size_t i;
    json_t *it;
    json_array_foreach(p->params, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name && strcmp(name, t->str) == 0) {
            json_t *v = json_object_get(it, "value");
            return v ? json_incref(v) : NULL;
        }
    }
    sem_fail(p, t->pos, "The parameter '%s' is not defined.", t->str);
    return NULL;
}

/* An array or object constructor whose members are all constants is a
 * constant itself (so that sargs and IN lists see through it). */
static struct q_expr *fold(struct q_parser *p, struct q_expr *e)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->args[i]->kind != E_CONST)
            return e;
    json_t *v = q_keep(p, e->kind == E_OBJECT ? json_object() : json_array());
    for (size_t i = 0; i < e->n; i++) {
        json_t *m = e->args[i]->val;
        if (!m)
            continue;
        if ((e->kind == E_OBJECT ? json_object_set(v, e->keys[i], m) : json_array_append(v, m)) !=
            0)
            q_fail(p, e->pos, "Out of memory while parsing the query.");
    }
    struct q_expr *c = node(p, E_CONST, e->pos);
    c->val = v;
    c->end = e->end;
    return c;
}

static struct q_expr *primary(struct q_parser *p)
{
    struct q_token t = p->cur;
    switch (t.kind) {
    case T_NUM:
        next(p);
        return done(p, constant(p, t.pos, json_real(t.num)));
    case T_STR:
        next(p);
        return done(p, constant(p, t.pos, json_stringn(t.str, t.slen)));
    case T_PARAM:
        next(p);
        return done(p, constant(p, t.pos, param_value(p, &t)));
    case '(': {
        next(p);
        if (is_kw(p, KW_SELECT))
            return subquery(p, E_SCALARSUB, t.pos);
        struct q_expr *e = parse_expr(p);
        expect(p, ')');
        return e;
    }
    case '[': {
        next(p);
        struct q_expr *e = node(p, E_ARRAY, t.pos);
        struct pvec v = {0};
        if (p->cur.kind != ']') {
            do {
                pvec_push(p, &v, parse_expr(p));
            } while (accept(p, ','));
        }
        expect(p, ']');
        e->args = (struct q_expr **)v.v;
        e->n = v.n;
        return fold(p, done(p, e));
    }
    case '{': {
        next(p);
        struct q_expr *e = node(p, E_OBJECT, t.pos);
        struct pvec keys = {0}, vals = {0};
        if (p->cur.kind != '}') {
            do {
                const char *k;
                if (p->cur.kind == T_STR)
                    k = p->cur.str;
                else if (p->cur.kind == T_IDENT)
                    k = p->cur.str;
                else
                    syntax_error(p);
                for (size_t i = 0; i < keys.n; i++)
                    if (strcmp(keys.v[i], k) == 0)
                        sem_fail(p, p->cur.pos,
                                 "Object creation error, property name '%s' "
                                 "specified more than once.",
                                 k);
                next(p);
                expect(p, ':');
                pvec_push(p, &keys, (void *)k);
                pvec_push(p, &vals, parse_expr(p));
            } while (accept(p, ','));
        }
        expect(p, '}');
        e->keys = (const char **)keys.v;
        e->args = (struct q_expr **)vals.v;
        e->n = vals.n;
        return fold(p, done(p, e));
    }
    case T_IDENT:
        break;
    default:
        syntax_error(p);
    }
    switch (t.kw) {
    case KW_TRUE:
    case KW_FALSE:
        next(p);
        return done(p, constant(p, t.pos, json_boolean(t.kw == KW_TRUE)));
    case KW_NULL:
        next(p);
        return done(p, constant(p, t.pos, json_null()));
    case KW_UNDEFINED:
        next(p);
        return done(p, constant(p, t.pos, NULL));
    case KW_EXISTS:
    case KW_ARRAY:
        next(p);
        expect(p, '(');
        if (!is_kw(p, KW_SELECT))
            syntax_error(p);
        return subquery(p, t.kw == KW_EXISTS ? E_EXISTS : E_ARRAYSUB, t.pos);
    case KW_UDF:
        q_fail(p, t.pos, "User-defined functions are not supported.");
    case KW_LEFT:
    case KW_RIGHT:
    case KW_NONE: {
        struct q_token n;
        peek(p, &n);
        if (n.kind == '(') {
            next(p);
            return call(p, t.str, t.pos);
        }
        if (t.kw != KW_NONE)
            syntax_error(p);
        next(p);
        return resolve(p, t.str, t.pos);
    }
    default:
        syntax_error(p);
    }
}

/* a.name / a[index], folding constant indexes. */
static struct q_expr *member(struct q_parser *p, struct q_expr *a, struct q_expr *idx)
{
    struct q_expr *e = node(p, E_INDEX, a->pos);
    e->a = a;
    if (idx->kind == E_CONST && json_is_string(idx->val)) {
        e->kind = E_PROP;
        e->val = idx->val;
    } else if (idx->kind == E_CONST && json_is_number(idx->val) &&
               json_number_value(idx->val) >= 0 &&
               json_number_value(idx->val) == floor(json_number_value(idx->val)) &&
               json_number_value(idx->val) < 9007199254740992.0) {
        e->kind = E_ELEM;
        e->val = idx->val;
    } else {
        e->b = idx;
    }
    return done(p, e);
}

static struct q_expr *postfix(struct q_parser *p, struct q_expr *a)
{
    for (;;) {
        if (p->cur.kind == '.') {
            next(p);
            if (p->cur.kind != T_IDENT)
                syntax_error(p);
            struct q_expr *name = constant(p, p->cur.pos, json_stringn(p->cur.str, p->cur.slen));
            next(p);
            a = member(p, a, name);
        } else if (p->cur.kind == '[') {
            next(p);
            struct q_expr *idx = parse_expr(p);
            expect(p, ']');
            a = member(p, a, idx);
        } else {
            return a;
        }
    }
}

static struct q_expr *unary(struct q_parser *p)
{
    int op = p->cur.kind;
    if (op == '-' || op == '+' || op == '~') {
        size_t pos = p->cur.pos;
        enter(p, pos);
        next(p);
        struct q_expr *a = unary(p);
        p->depth--;
        if (op == '-' && a->kind == E_CONST && json_is_number(a->val))
            return done(p, constant(p, pos, json_real(-json_number_value(a->val))));
        struct q_expr *e = node(p, E_UNARY, pos);
        e->op = op;
        e->a = a;
        return done(p, e);
    }
    return postfix(p, primary(p));
}

/* One left-associative level: ops is a 0-terminated list of token kinds. */
static struct q_expr *left_assoc(struct q_parser *p, struct q_expr *(*sub)(struct q_parser *),
                                 const int *ops)
{
    struct q_expr *a = sub(p);
    for (;;) {
        int found = 0;
        for (const int *o = ops; *o; o++)
            found |= p->cur.kind == *o;
        if (!found)
            return a;
        int op = p->cur.kind;
        next(p);
        a = binary(p, E_BINARY, op, a, sub(p));
    }
}

static struct q_expr *mul(struct q_parser *p)
{
    static const int ops[] = {'*', '/', '%', 0};
    return left_assoc(p, unary, ops);
}
static struct q_expr *add(struct q_parser *p)
{
    static const int ops[] = {'+', '-', 0};
    return left_assoc(p, mul, ops);
}
static struct q_expr *shift(struct q_parser *p)
{
    static const int ops[] = {T_SHL, T_SHR, T_USHR, 0};
    return left_assoc(p, add, ops);
}
static struct q_expr *band(struct q_parser *p)
{
    static const int ops[] = {'&', 0};
    return left_assoc(p, shift, ops);
}
static struct q_expr *bxor(struct q_parser *p)
{
    static const int ops[] = {'^', 0};
    return left_assoc(p, band, ops);
}
static struct q_expr *bor(struct q_parser *p)
{
    static const int ops[] = {'|', 0};
    return left_assoc(p, bxor, ops);
}
static struct q_expr *concat(struct q_parser *p)
{
    static const int ops[] = {T_CONCAT, 0};
    return left_assoc(p, bor, ops);
}

static struct q_expr *cmp(struct q_parser *p)
{
    struct q_expr *a = concat(p);
    for (;;) {
        int op = p->cur.kind;
        if (op == '=' || op == T_NE || op == '<' || op == T_LE || op == '>' || op == T_GE) {
            next(p);
            a = binary(p, E_BINARY, op, a, concat(p));
            continue;
        }
        int negate = 0;
        if (is_kw(p, KW_NOT)) {
            struct q_token n;
            peek(p, &n);
            if (n.kind != T_IDENT || (n.kw != KW_IN && n.kw != KW_BETWEEN && n.kw != KW_LIKE))
                return a;
            negate = 1;
            next(p);
        }
        if (accept_kw(p, KW_IN)) {
            expect(p, '(');
            struct pvec v = {0};
            do {
                if (v.n >= Q_MAX_IN)
                    q_fail(p, p->cur.pos, "The IN list has more than %d elements.", Q_MAX_IN);
                pvec_push(p, &v, parse_expr(p));
            } while (accept(p, ','));
            expect(p, ')');
            struct q_expr *e = node(p, E_IN, a->pos);
            e->a = a;
            e->negate = negate;
            e->args = (struct q_expr **)v.v;
            e->n = v.n;
            a = done(p, e);
        } else if (accept_kw(p, KW_BETWEEN)) {
            struct q_expr *e = node(p, E_BETWEEN, a->pos);
            e->a = a;
            e->b = concat(p);
            expect_kw(p, KW_AND);
            e->c = concat(p);
            e->negate = negate;
            a = done(p, e);
        } else if (accept_kw(p, KW_LIKE)) {
            struct q_expr *e = node(p, E_LIKE, a->pos);
            e->a = a;
            e->b = concat(p);
            if (accept_kw(p, KW_ESCAPE)) {
                if (p->cur.kind != T_STR)
                    syntax_error(p);
                if (p->cur.slen != 1)
                    sem_fail(p, p->cur.pos, "The ESCAPE clause needs a one-character string.");
                else
                    e->c = constant(p, p->cur.pos, json_stringn(p->cur.str, 1));
                next(p);
            }
            e->negate = negate;
            a = done(p, e);
        } else if (negate) {
            syntax_error(p);
        } else {
            return a;
        }
    }
}

static struct q_expr *not_expr(struct q_parser *p)
{
    if (!is_kw(p, KW_NOT))
        return cmp(p);
    size_t pos = p->cur.pos;
    enter(p, pos);
    next(p);
    struct q_expr *e = node(p, E_UNARY, pos);
    e->op = KW_NOT;
    e->a = not_expr(p);
    p->depth--;
    return done(p, e);
}

/* AND / OR chains become one n-ary node (evaluated without recursion). */
static struct q_expr *chain(struct q_parser *p, struct q_expr *(*sub)(struct q_parser *), int kw,
                            enum q_ekind kind)
{
    struct q_expr *a = sub(p);
    if (!is_kw(p, kw))
        return a;
    struct pvec v = {0};
    pvec_push(p, &v, a);
    while (accept_kw(p, kw))
        pvec_push(p, &v, sub(p));
    struct q_expr *e = node(p, kind, a->pos);
    e->args = (struct q_expr **)v.v;
    e->n = v.n;
    return done(p, e);
}

static struct q_expr *and_expr(struct q_parser *p)
{
    return chain(p, not_expr, KW_AND, E_AND);
}

static struct q_expr *or_expr(struct q_parser *p)
{
    return chain(p, and_expr, KW_OR, E_OR);
}

static struct q_expr *parse_expr(struct q_parser *p)
{
    enter(p, p->cur.pos);
    struct q_expr *a = or_expr(p);
    while (accept(p, T_COALESCE))
        a = binary(p, E_COALESCE, T_COALESCE, a, or_expr(p));
    if (accept(p, '?')) {
        struct q_expr *e = node(p, E_TERNARY, a->pos);
        e->a = a;
        e->b = parse_expr(p);
        expect(p, ':');
        e->c = parse_expr(p);
        a = done(p, e);
    }
    p->depth--;
    return a;
}

/* ---- select ---- */

/* TOP / OFFSET / LIMIT count: a non-negative integer literal or parameter. */
static long long count_arg(struct q_parser *p)
{
    size_t pos = p->cur.pos;
    double d;
    if (p->cur.kind == T_NUM) {
        d = p->cur.num;
    } else if (p->cur.kind == T_PARAM) {
        json_t *v = param_value(p, &p->cur);
        int ok = json_is_number(v);
        d = ok ? json_number_value(v) : -1;
        json_decref(v);
    } else {
        syntax_error(p);
    }
    if (!(d >= 0 && d == floor(d) && d < 9.2e18))
        sem_fail(p, pos, "The count must be a non-negative integer.");
    next(p);
    return (long long)d;
}

/* Skim ahead from the current token to this select's FROM (0 if none). */
static size_t find_from(struct q_parser *p)
{
    struct q_token t = p->cur;
    int depth = 0, after_dot = 0;
    p->skim = 1;
    for (;; after_dot = t.kind == '.', q_lex(p, t.pos + t.len, &t)) {
        if (t.kind == T_EOF)
            break;
        if (t.kind == '(' || t.kind == '[' || t.kind == '{') {
            depth++;
        } else if (t.kind == ')' || t.kind == ']' || t.kind == '}') {
            if (--depth < 0)
                break;
        } else if (depth == 0 && t.kind == T_IDENT && !after_dot) {
            if (t.kw == KW_FROM) {
                p->skim = 0;
                return t.pos;
            }
            if (t.kw == KW_WHERE || t.kw == KW_GROUP || t.kw == KW_ORDER || t.kw == KW_OFFSET ||
                t.kw == KW_JOIN)
                break;
        }
    }
    p->skim = 0;
    return 0;
}

/* The last property name of a path, for a default alias or output name. */
static const char *path_name(const struct q_expr *e)
{
    if (e->kind == E_PROP)
        return json_string_value(e->val);
    return NULL;
}

/* The alias a variable reference names (seen from select s). */
static const char *var_alias(const struct q_sel *s, const struct q_expr *e)
{
    for (int up = e->up; up > 0; up--)
        s = s->outer;
    return s->srcs[e->slot].alias;
}

/* An optional [AS] alias; dflt when there is none. */
static const char *opt_alias(struct q_parser *p, const char *dflt)
{
    if (accept_kw(p, KW_AS) || (p->cur.kind == T_IDENT && p->cur.kw == KW_NONE))
        return expect_ident(p);
    return dflt;
}

/* A source bound to the value of e (no iteration): `e [[AS] alias]`,
 * named by default after e's last property or the alias e names. */
static void value_source(struct q_parser *p, struct q_sel *s, struct q_expr *e)
{
    const char *alias = opt_alias(p, e->kind == E_VAR ? var_alias(s, e) : path_name(e));
    if (!alias && !p->syntax_only) /* a placeholder has no name */
        syntax_error(p);
    add_src(p, s, alias, 0, e);
}

/* Whether the current token opens a subquery: '(' SELECT. */
static int at_subquery(struct q_parser *p)
{
    struct q_token n;
    if (p->cur.kind != '(')
        return 0;
    peek(p, &n);
    return n.kind == T_IDENT && n.kw == KW_SELECT;
}

/* A subquery as a source, `(SELECT ...) [[AS] alias]`: one row per row of
 * the subquery (the subquery page's multi-value subqueries in FROM and
 * JOIN), unnamed without an alias. */
static void subquery_source(struct q_parser *p, struct q_sel *s)
{
    size_t pos = p->cur.pos;
    next(p);
    struct q_expr *e = subquery(p, E_ARRAYSUB, pos);
    add_src(p, s, opt_alias(p, NULL), 1, e);
}

/* The top-level `FROM (SELECT ...) [[AS] alias]`: the subquery reads the
 * container and its rows are the documents of s (s->from_sel). */
static void from_subquery(struct q_parser *p, struct q_sel *s)
{
    size_t pos = p->cur.pos;
    next(p);
    enter(p, pos);
    struct q_sel *saved = p->sel;
    p->sel = NULL; /* the container's scope: nothing outside is visible */
    s->from_sel = parse_select(p);
    p->sel = saved;
    p->depth--;
    expect(p, ')');
    add_src(p, s, opt_alias(p, NULL), 0, done(p, node(p, E_ROOT, pos)));
}

static void parse_from(struct q_parser *p, struct q_sel *s, int top)
{
    expect_kw(p, KW_FROM);
    s->has_from = 1;
    /* first source */
    struct q_token n;
    peek(p, &n);
    if (at_subquery(p)) {
        if (top)
            from_subquery(p, s);
        else
            subquery_source(p, s);
    } else if (p->cur.kind == T_IDENT && p->cur.kw == KW_NONE && n.kind == T_IDENT && n.kw == KW_IN) {
        const char *alias = expect_ident(p);
        next(p);
        struct q_expr *e;
        if (top) {
            size_t pos = p->cur.pos;
            const char *name = expect_ident(p);
            p->q->root_alias = name;
            add_src(p, s, name, 0, done(p, node(p, E_ROOT, pos)));
            e = postfix(p, resolve(p, name, pos));
            s->srcs[0].alias = NULL;
        } else {
            e = postfix(p, primary(p));
        }
        add_src(p, s, alias, 1, e);
    } else if (top) {
        size_t pos = p->cur.pos;
        const char *name = expect_ident(p);
        p->q->root_alias = name;
        add_src(p, s, name, 0, done(p, node(p, E_ROOT, pos)));
        if (p->cur.kind == '.' || p->cur.kind == '[') {
            struct q_expr *e = postfix(p, resolve(p, name, pos));
            s->srcs[0].alias = NULL;
            value_source(p, s, e);
        } else {
            s->srcs[0].alias = opt_alias(p, name);
            p->q->root_alias = s->srcs[0].alias;
        }
    } else {
        value_source(p, s, postfix(p, primary(p)));
    }
    /* joins */
    while (accept_kw(p, KW_JOIN)) {
        if (++s->n_joins >= Q_MAX_DEPTH)
            q_fail(p, p->cur.pos, "The query has more than %d JOINs.", Q_MAX_DEPTH - 1);
        peek(p, &n);
        if (p->cur.kind == T_IDENT && p->cur.kw == KW_NONE && n.kind == T_IDENT && n.kw == KW_IN) {
            const char *alias = expect_ident(p);
            next(p);
            add_src(p, s, alias, 1, postfix(p, primary(p)));
        } else if (at_subquery(p)) {
            subquery_source(p, s);
        } else {
            value_source(p, s, postfix(p, primary(p)));
        }
    }
}

static void parse_items(struct q_parser *p, struct q_sel *s)
{
    p->agg_ok = 1;
    if (p->cur.kind == '*') {
        s->star = 1;
        next(p);
    } else if (accept_kw(p, KW_VALUE)) {
        if (p->cur.kind == '*')
            syntax_error(p);
        s->value = 1;
        s->items = q_palloc(p, sizeof *s->items);
        s->n_items = 1;
        s->items[0].e = parse_expr(p);
        opt_alias(p, NULL);
    } else {
        struct pvec v = {0};
        do {
            struct q_item *it = q_palloc(p, sizeof *it);
            it->e = parse_expr(p);
            it->name = opt_alias(p, NULL);
            pvec_push(p, &v, it);
        } while (accept(p, ','));
        s->items = q_palloc(p, v.n * sizeof *s->items);
        s->n_items = v.n;
        int unnamed = 0;
        for (size_t i = 0; i < v.n; i++) {
            struct q_item *it = v.v[i];
            if (!it->name)
                it->name = path_name(it->e);
            if (!it->name && it->e->kind == E_VAR)
                it->name = var_alias(s, it->e);
            if (!it->name) {
                char *nm = q_palloc(p, 24);
                snprintf(nm, 24, "$%d", ++unnamed);
                it->name = nm;
            }
            for (size_t j = 0; j < i; j++)
                if (strcmp(s->items[j].name, it->name) == 0)
                    sem_fail(p, it->e->pos,
                             "Object creation error, property name '%s' "
                             "specified more than once.",
                             it->name);
            s->items[i] = *it;
        }
    }
    p->agg_ok = 0;
}

static int expr_equal(const struct q_expr *a, const struct q_expr *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind || a->op != b->op || a->negate != b->negate || a->n != b->n ||
        a->up != b->up || a->slot != b->slot || a->sub != b->sub)
        return 0;
    if ((a->val || b->val) && !(a->val && b->val && json_equal(a->val, b->val)))
        return 0;
    if (a->kind == E_CONST && !a->val != !b->val)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (!expr_equal(a->args[i], b->args[i]))
            return 0;
        if (a->keys && strcmp(a->keys[i], b->keys[i]) != 0)
            return 0;
    }
    return expr_equal(a->a, b->a) && expr_equal(a->b, b->b) && expr_equal(a->c, b->c);
}

/* With GROUP BY or aggregates, a select item may use the documents only
 * through aggregates and GROUP BY expressions. Returns the offending node. */
static const struct q_expr *ungrouped(const struct q_sel *s, const struct q_expr *e)
{
    if (!e || e->kind == E_AGG || e->kind == E_CONST)
        return NULL;
    for (size_t i = 0; i < s->n_group; i++)
        if (expr_equal(e, s->group[i]))
            return NULL;
    if (e->kind == E_VAR || e->kind == E_ROOT)
        return e;
    const struct q_expr *bad;
    if ((bad = ungrouped(s, e->a)) || (bad = ungrouped(s, e->b)) || (bad = ungrouped(s, e->c)))
        return bad;
    for (size_t i = 0; i < e->n; i++)
        if ((bad = ungrouped(s, e->args[i])))
            return bad;
    return NULL;
}

/* Whether e contains a subquery (heights are bounded: Q_MAX_HEIGHT). */
static int has_subquery(const struct q_expr *e)
{
    if (!e)
        return 0;
    if (e->sub)
        return 1;
    if (has_subquery(e->a) || has_subquery(e->b) || has_subquery(e->c))
        return 1;
    for (size_t i = 0; i < e->n; i++)
        if (has_subquery(e->args[i]))
            return 1;
    return 0;
}

static void check_select(struct q_parser *p, struct q_sel *s, size_t pos)
{
    if (s->star && !s->has_from)
        sem_fail(p, pos, "'SELECT *' is not valid if FROM clause is omitted.");
    if (s->star && s->n_joins)
        sem_fail(p, pos, "'SELECT *' is only valid with a single input set.");
    if (s->n_group || s->n_aggs) {
        if (s->star)
            sem_fail(p, pos, "'SELECT *' is not valid with GROUP BY or aggregates.");
        for (size_t i = 0; i < s->n_items; i++) {
            const struct q_expr *bad = ungrouped(s, s->items[i].e);
            if (!bad)
                continue;
            const struct q_expr *it = s->items[i].e;
            sem_fail(p, it->pos,
                     "Property reference '%.*s' is invalid in the select list because it is "
                     "not contained in either an aggregate function or the GROUP BY clause.",
                     (int)(it->end - it->pos > 60 ? 60 : it->end - it->pos), p->text + it->pos);
        }
        if (s->n_order)
            sem_fail(p, pos, "ORDER BY is not supported together with GROUP BY or aggregates.");
        /* docs (GROUP BY): not supported */
        if (s->n_aggs && s->from_sel && s->from_sel->n_group)
            sem_fail(p, pos,
                     "Queries with an aggregate function over a subquery with GROUP BY are "
                     "not supported.");
    }
}

static struct q_sel *parse_select(struct q_parser *p)
{
    size_t pos = p->cur.pos;
    expect_kw(p, KW_SELECT);
    struct q_sel *s = q_palloc(p, sizeof *s);
    s->top = s->offset = s->limit = -1;
    s->outer = p->sel;
    int top = !p->sel;
    p->sel = s;
    int saved_agg_ok = p->agg_ok, saved_in_agg = p->in_agg;
    p->agg_ok = 0;
    p->in_agg = 0;

    if (accept_kw(p, KW_DISTINCT))
        s->distinct = 1;
    if (accept_kw(p, KW_TOP))
        s->top = count_arg(p);

    struct q_token list = p->cur;
    size_t from = find_from(p);
    struct q_token after;
    if (from) {
        q_lex(p, from, &p->cur);
        parse_from(p, s, top);
        after = p->cur;
        p->cur = list;
    }
    parse_items(p, s);
    if (from) {
        if (p->cur.pos != from)
            syntax_error(p);
        p->cur = after;
    }
    if (accept_kw(p, KW_WHERE))
        s->where = parse_expr(p);
    if (accept_kw(p, KW_GROUP)) {
        expect_kw(p, KW_BY);
        struct pvec v = {0};
        do {
            struct q_expr *g = parse_expr(p);
            /* docs (GROUP BY): any scalar expression except subqueries */
            if (has_subquery(g))
                sem_fail(p, g->pos, "Subqueries are not allowed in the GROUP BY clause.");
            pvec_push(p, &v, g);
        } while (accept(p, ','));
        s->group = (struct q_expr **)v.v;
        s->n_group = v.n;
    }
    if (accept_kw(p, KW_ORDER)) {
        expect_kw(p, KW_BY);
        struct pvec v = {0};
        do {
            struct q_order_item *o = q_palloc(p, sizeof *o);
            o->e = parse_expr(p);
            if (accept_kw(p, KW_DESC))
                o->desc = 1;
            else
                accept_kw(p, KW_ASC);
            pvec_push(p, &v, o);
        } while (accept(p, ','));
        s->order = q_palloc(p, v.n * sizeof *s->order);
        for (size_t i = 0; i < v.n; i++)
            s->order[i] = *(struct q_order_item *)v.v[i];
        s->n_order = v.n;
    }
    if (accept_kw(p, KW_OFFSET)) {
        s->offset = count_arg(p);
        expect_kw(p, KW_LIMIT);
        s->limit = count_arg(p);
    }
    /* what follows (EOF, or the subquery's ')') the caller checks */
    if (!p->syntax_only)
        check_select(p, s, pos);
    p->sel = s->outer;
    p->agg_ok = saved_agg_ok;
    p->in_agg = saved_in_agg;
    return s;
}

/* ---- entry points ---- */

/* Offset of the first byte that is not valid UTF-8, or -1. */
static long bad_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return (long)i;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return (long)i;
        i += n + 1;
    }
    return -1;
}

static int check_params(const json_t *params, struct q_error *err)
{
    if (!params)
        return 0;
    if (!json_is_array(params)) {
        q_seterr(err, 400, "", 0, -1, "The query parameters must be an array.");
        return -1;
    }
    if (json_array_size(params) > Q_MAX_PARAMS) {
        q_seterr(err, 400, "", 0, -1, "The query has more than %d parameters.", Q_MAX_PARAMS);
        return -1;
    }
    size_t i;
    const json_t *it;
    json_array_foreach(params, i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (!json_is_object(it) || !name || name[0] != '@') {
            q_seterr(err, 400, "", 0, -1,
                     "Each query parameter needs a name starting with '@' and a value.");
            return -1;
        }
    }
    return 0;
}

/* One pass over checked text: the query, or NULL with err filled;
 * *semantic says whether the error was a semantic one. */
static struct q_query *parse_pass(const char *text, size_t len, const json_t *params,
                                  int syntax_only, struct q_error *err, int *semantic)
{
    *semantic = 0;
    struct q_query *q = calloc(1, sizeof *q);
    json_t *consts = json_array();
    struct q_parser *p = calloc(1, sizeof *p);
    if (!q || !consts || !p) {
        free(q);
        free(p);
        json_decref(consts);
        q_seterr(err, 500, "", 0, -1, "Out of memory while parsing the query.");
        return NULL;
    }
    q->consts = consts;
    p->text = text;
    p->len = len;
    p->q = q;
    p->params = params;
    p->err = err;
    p->syntax_only = syntax_only;
    if (setjmp(p->fail)) {
        *semantic = p->semantic;
        q_free(p->q);
        free(p);
        return NULL;
    }
    q_lex(p, 0, &p->cur);
    p->q->sel = parse_select(p);
    if (p->cur.kind != T_EOF)
        syntax_error(p);
    if (!p->syntax_only)
        q_plan(p);
    struct q_query *done_q = p->q;
    free(p);
    return done_q;
}

struct q_query *q_parse(const char *text, size_t len, const json_t *params, struct q_error *err)
{
    struct q_error local;
    if (!err)
        err = &local;
    err->status = 0;
    err->pos = -1;
    err->msg[0] = 0;
    if (!text || len > Q_MAX_TEXT) {
        q_seterr(err, 400, "", 0, -1, "The query text is longer than %d bytes.", Q_MAX_TEXT);
        return NULL;
    }
    long bad = bad_utf8((const unsigned char *)text, len);
    if (bad >= 0) {
        q_seterr(err, 400, text, len, bad, "The query text is not valid UTF-8.");
        return NULL;
    }
    if (check_params(params, err) != 0)
        return NULL;
    int semantic;
    struct q_query *q = parse_pass(text, len, params, 0, err, &semantic);
    if (!q && semantic) {
        /* a syntax error anywhere in the text wins over a semantic one */
        struct q_error syn;
        struct q_query *chk = parse_pass(text, len, params, 1, &syn, &semantic);
        if (chk)
            q_free(chk);
        else if (syn.status == 400)
            *err = syn;
    }
    return q;
}

void q_free(struct q_query *q)
{
    if (!q)
        return;
    json_decref(q->consts);
    q_arena_free(&q->arena);
    free(q);
}
