/*
 * qint.h — the query engine's private structures: tokens, the syntax tree,
 * and the evaluation environment. Shared by lex.c, parse.c, plan.c,
 * eval.c and exec.c; nothing outside src/query includes it.
 *
 * Ownership: every node, string and array of a parsed query lives in the
 * query's arena (freed in one piece by q_free); every jansson value the
 * tree points to (literals, parameters, property names, sarg paths) is
 * held by the query's consts array. A tree is immutable after q_parse, so
 * one query can run in many executions at once.
 *
 * Invariants:
 *   1. Syntactic nesting (parentheses, subqueries, unary chains, calls)
 *      never exceeds Q_MAX_DEPTH, and no node's height exceeds Q_MAX_HEIGHT
 *      (left-deep operator chains): evaluation recursion is bounded.
 *   2. A variable reference (E_VAR) is resolved at parse time to
 *      (up, slot): `up` selects walked outward, `slot` is the FROM source
 *      of that select. Evaluation never looks a name up.
 *   3. Aggregates (E_AGG) appear only in a select list, never nested;
 *      each has a slot in its select's accumulator array.
 */
#ifndef ATREST_QUERY_QINT_H
#define ATREST_QUERY_QINT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "query/query.h"

#define Q_MAX_HEIGHT 256                  /* height of an expression tree */
#define Q_MEM_LIMIT  (256u * 1024 * 1024) /* estimated bytes of kept rows */
#define Q_MAX_STEPS  2000000u             /* bindings of FROM/JOIN sources for one document */

/* ---- arena ---- */

struct q_arena {
    struct q_block *head;
};
void *q_arena_alloc(struct q_arena *a, size_t n); /* zeroed; NULL on OOM */
void q_arena_free(struct q_arena *a);

/* ---- tokens (lex.c) ---- */

enum q_tok {
    T_EOF = 0,
    /* single-character punctuation uses its own code: ( ) [ ] { } , . : ? * / % + - < > = ~ & | ^
     */
    T_IDENT = 256,
    T_NUM,
    T_STR,
    T_PARAM,
    T_LE,       /* <= */
    T_GE,       /* >= */
    T_NE,       /* != or <> */
    T_SHL,      /* << */
    T_SHR,      /* >> */
    T_USHR,     /* >>> */
    T_CONCAT,   /* || */
    T_COALESCE, /* ?? */
};

/* Reserved words; an identifier token carries one of these in kw. */
enum q_kw {
    KW_NONE = 0,
    KW_AND,
    KW_ARRAY,
    KW_AS,
    KW_ASC,
    KW_BETWEEN,
    KW_BY,
    KW_DESC,
    KW_DISTINCT,
    KW_ESCAPE,
    KW_EXISTS,
    KW_FALSE,
    KW_FROM,
    KW_GROUP,
    KW_IN,
    KW_JOIN,
    KW_LEFT,
    KW_LIKE,
    KW_LIMIT,
    KW_NOT,
    KW_NULL,
    KW_OFFSET,
    KW_OR,
    KW_ORDER,
    KW_RIGHT,
    KW_SELECT,
    KW_TOP,
    KW_TRUE,
    KW_UDF,
    KW_UNDEFINED,
    KW_VALUE,
    KW_WHERE,
    /* reserved but unsupported: refused where an identifier is expected */
    KW_CASE,
    KW_CAST,
    KW_CONVERT,
    KW_CROSS,
    KW_ELSE,
    KW_END,
    KW_FOR,
    KW_HAVING,
    KW_INNER,
    KW_INSERT,
    KW_INTO,
    KW_IS,
    KW_ON,
    KW_OUTER,
    KW_OVER,
    KW_SET,
    KW_THEN,
    KW_UPDATE,
    KW_WHEN,
    KW_WITH,
};

struct q_token {
    int kind;    /* enum q_tok or a punctuation character */
    int kw;      /* enum q_kw for T_IDENT */
    size_t pos;  /* byte offset in the text */
    size_t len;  /* bytes of source text */
    double num;  /* T_NUM */
    char *str;   /* T_STR (decoded, arena), T_IDENT and T_PARAM (name, arena) */
    size_t slen; /* bytes of str */
};

struct q_parser;
/* Lex the token starting at or after byte offset at; longjmps on error. */
void q_lex(struct q_parser *p, size_t at, struct q_token *out);

/* ---- the tree ---- */

enum q_ekind {
    E_CONST,     /* val (NULL = undefined) */
    E_ROOT,      /* the document fed to the execution */
    E_VAR,       /* up, slot */
    E_PROP,      /* a.<val> (val a string) */
    E_ELEM,      /* a[<val>] (val an integral number) */
    E_INDEX,     /* a[b], b computed */
    E_UNARY,     /* op a: '-' '+' '~' KW_NOT */
    E_BINARY,    /* a op b: arithmetic, bitwise, comparison, T_CONCAT */
    E_AND,       /* args[0..n) */
    E_OR,        /* args[0..n) */
    E_TERNARY,   /* a ? b : c */
    E_COALESCE,  /* a ?? b */
    E_IN,        /* a [NOT] IN (args) */
    E_BETWEEN,   /* a [NOT] BETWEEN b AND c */
    E_LIKE,      /* a [NOT] LIKE b [ESCAPE c] */
    E_CALL,      /* built-in id (args) */
    E_AGG,       /* aggregate op (a), slot in the select's accumulators */
    E_OBJECT,    /* { keys[i]: args[i] } */
    E_ARRAY,     /* [ args ] */
    E_EXISTS,    /* EXISTS(sub) */
    E_ARRAYSUB,  /* ARRAY(sub) */
    E_SCALARSUB, /* (sub) */
};

enum q_agg { AGG_COUNT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX };

struct q_sel;
struct q_expr {
    enum q_ekind kind;
    int op;          /* operator token, aggregate kind, built-in id */
    int negate;      /* NOT IN, NOT BETWEEN, NOT LIKE */
    int height;      /* 1 for a leaf */
    size_t pos, end; /* source text span */
    struct q_expr *a, *b, *c;
    struct q_expr **args;
    size_t n;
    const char **keys; /* E_OBJECT */
    json_t *val;       /* E_CONST, E_PROP, E_ELEM (held by consts) */
    int up, slot;      /* E_VAR; slot also for E_AGG */
    struct q_sel *sub; /* subqueries */
};

struct q_src {
    const char *alias; /* NULL when not nameable (the container in FROM x IN c.a) */
    int iterate;       /* x IN e: one row per element of the array e */
    struct q_expr *e;  /* evaluated with the sources before it bound */
};

struct q_item {
    struct q_expr *e;
    const char *name; /* output property (alias, inferred, or "$n") */
};

struct q_order_item {
    struct q_expr *e;
    int desc;
};

struct q_sel {
    int star, value, distinct;
    long long top, offset, limit; /* -1 when absent */
    struct q_item *items;
    size_t n_items;
    struct q_src *srcs;
    size_t n_srcs;
    int has_from;
    size_t n_joins; /* JOIN clauses */
    struct q_expr *where;
    struct q_expr **group;
    size_t n_group;
    struct q_order_item *order;
    size_t n_order;
    size_t n_aggs;        /* E_AGG nodes in the select list */
    struct q_expr **aggs; /* by slot */
    struct q_sel *outer;  /* enclosing select (parse time scope) */
    /* FROM (SELECT ...) at the top: that select reads the container and
     * its rows are this select's documents (srcs[0] is E_ROOT); NULL when
     * this select reads the container itself. */
    struct q_sel *from_sel;
};

struct q_query {
    struct q_arena arena;
    json_t *consts; /* holds every jansson value the tree points to */
    struct q_sel *sel;
    const char *root_alias;
    struct q_sarg *sargs;
    size_t n_sargs;
    int where_exact;            /* q_info's */
    const json_t **order_paths; /* n_order entries, NULL when not a root path */
};

/* ---- parser state (parse.c, lex.c) ---- */

struct q_parser {
    const char *text;
    size_t len;
    struct q_token cur;
    struct q_query *q;
    const json_t *params;
    struct q_error *err;
    jmp_buf fail;
    int depth;
    int skim;        /* scanning ahead: strings and parameters not decoded */
    int agg_ok;      /* aggregates allowed here (a select list) */
    int in_agg;      /* inside an aggregate's argument */
    int syntax_only; /* checking syntax alone: semantic checks pass (sem_fail) */
    int semantic;    /* the error being raised is a semantic one */
    struct q_sel *sel;
};

/* Fill err with status and a message at pos (-1: none), line/column
 * appended; used by every layer. */
void q_seterr(struct q_error *err, int status, const char *text, size_t len, long pos,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Fail the parse: fill p->err and longjmp out. */
_Noreturn void q_fail(struct q_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *q_palloc(struct q_parser *p, size_t n);  /* arena, longjmps on OOM */
json_t *q_keep(struct q_parser *p, json_t *v); /* hand v to consts; NULL OOM longjmps */

/* plan.c: sargs and ORDER BY paths, computed once after parsing. */
void q_plan(struct q_parser *p);

/* ---- evaluation (eval.c) ---- */

struct q_acc; /* exec.c */

/* One select's bound sources during a row, chained to enclosing selects. */
struct q_env {
    const struct q_env *up;
    json_t **vals;            /* n_srcs values, borrowed */
    const struct q_acc *accs; /* the current group's accumulators, or NULL */
};

/* Evaluation state shared by one execution and its subqueries. */
struct q_ev {
    const struct q_ctx *ctx;
    const json_t *doc;
    struct q_error *err;
    int failed; /* err is filled; results are meaningless */
    size_t mem; /* estimated bytes held by kept rows */
    /* per document (q_exec_feed resets them): sources bound so far, at
     * every level (JOINs multiply), and estimated bytes of streamed rows */
    uint64_t steps;
    size_t out_mem;
};

/* exec.c: estimated bytes of v (depth: 0), measured only up to a little
 * past Q_MEM_LIMIT, so that a value sharing one part many times over is
 * cheap to find too big. */
size_t q_est_size(const json_t *v, int depth);

/* Evaluate e; a new reference or NULL (undefined, or failure: ev->failed). */
json_t *q_eval(struct q_ev *ev, const struct q_expr *e, const struct q_env *env);

/* exec.c: run a subquery in env and return its rows as an array (new
 * reference; NULL when ev->failed). max_rows stops early (0: all). */
json_t *q_subquery(struct q_ev *ev, const struct q_sel *s, const struct q_env *env,
                   size_t max_rows);
/* exec.c: an aggregate's result for the current group. */
json_t *q_acc_result(const struct q_acc *accs, int slot);

/* Strict truth: 1 only for JSON true. */
static inline int q_true(const json_t *v)
{
    return v && json_is_true(v);
}

#endif
