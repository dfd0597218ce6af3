/*
 * query.h — the Cosmos DB NoSQL query language: parse, inspect, execute.
 *
 * Layer: pure (jansson only). No storage and no HTTP here: the server feeds
 * documents in and takes result rows out, and asks the parsed query what an
 * index could serve (q_sargs, q_order).
 *
 * Values are jansson values. "undefined" is the NULL pointer everywhere:
 * an expression that yields undefined returns NULL, an absent argument is
 * NULL. Numbers are doubles (json_real) as in doc.h; an integral result is
 * printed without a fraction by doc_dump.
 *
 * Life of a query:
 *
 *   q_parse(text, params) --> struct q_query  (immutable, shareable)
 *        |  q_info / q_sargs / q_order         (planner's view)
 *        v
 *   q_exec_new(q, ctx) --> struct q_exec
 *        |  q_exec_feed(doc) ...  rows appended to an array as they appear
 *        |                        (streaming queries) or kept (ORDER BY,
 *        |                        GROUP BY, aggregates, DISTINCT)
 *        v
 *   q_exec_finish(out)   the kept rows, in their final order
 *
 * Invariants:
 *   1. q_parse never crashes on any input: nesting depth, IN list length,
 *      text length and identifier length are bounded (Q_MAX_*), non-UTF-8
 *      text is refused, and every error names the byte offset it found.
 *   2. Evaluation never fails on data: a type mismatch is undefined, not
 *      an error (Cosmos semantics). Errors come only from resource limits.
 *   3. The rows a query produces do not depend on how its input is split
 *      into feed calls, nor on the order of documents unless the query has
 *      no ORDER BY (then rows follow input order).
 */
#ifndef ATREST_QUERY_QUERY_H
#define ATREST_QUERY_QUERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define Q_MAX_TEXT   (256 * 1024) /* bytes of query text */
#define Q_MAX_DEPTH  64           /* expression nesting */
#define Q_MAX_IN     10000        /* elements of one IN list */
#define Q_MAX_IDENT  255          /* bytes of one identifier */
#define Q_MAX_PARAMS 1000         /* query parameters */

/* An error to report to the client: HTTP status (400 for anything in the
 * query text, 500 for out-of-memory), and a message. pos is the byte offset
 * into the query text the error is about, or -1. The message includes the
 * position in Cosmos's style when pos >= 0, e.g.
 *   "Syntax error, incorrect syntax near 'FORM'. (at line 1, column 10)" */
struct q_error {
    int status;
    int pos;
    char msg[320];
};

struct q_query;
struct q_exec;

/* Parse query text (len bytes, need not be NUL-terminated) with its
 * parameters (a JSON array of {"name":"@p","value":v}, or NULL). Parameters
 * are bound at parse time; a parameter referenced but not supplied is an
 * error. Returns NULL and fills err on failure. */
struct q_query *q_parse(const char *text, size_t len, const json_t *params, struct q_error *err);
void q_free(struct q_query *q);

/* ---- the planner's view ---- */

struct q_info {
    int select_value;  /* SELECT VALUE ... */
    int select_star;   /* SELECT * */
    int distinct;      /* SELECT DISTINCT */
    int has_aggregate; /* an aggregate anywhere in the SELECT list */
    int has_group_by;
    int has_join;     /* FROM has JOINs, or FROM x IN y */
    size_t n_order;   /* ORDER BY items (0 = none) */
    long long top;    /* TOP n, or -1 */
    long long offset; /* OFFSET n, or -1 */
    long long limit;  /* LIMIT m, or -1 */
    /* Rows are produced by q_exec_feed as documents arrive, in input order,
     * with no state across documents except the TOP/OFFSET/LIMIT counters:
     * no ORDER BY, GROUP BY, aggregate or DISTINCT. The server can then page
     * by input position. */
    int streaming;
    const char *root_alias; /* the FROM alias documents are bound to ("c") */
    /* SELECT VALUE COUNT(<constant>) FROM <root> [WHERE ...] and nothing
     * else (no JOIN, GROUP BY, DISTINCT, ORDER BY, OFFSET): the answer is
     * the number of documents that pass WHERE. */
    int count_only;
    /* Every top-level conjunct of WHERE is one sarg with exact set: a
     * document passes WHERE exactly when every sarg holds (no WHERE: 0). */
    int where_exact;
};
void q_info(const struct q_query *q, struct q_info *out);

/* A condition that an index could serve: a top-level conjunct of WHERE over
 * a path from the root document. path is a JSON array of segments (strings
 * for properties, integers for array positions) from the root. A document
 * that satisfies WHERE always satisfies every sarg (sargs are necessary,
 * not sufficient: the server still evaluates WHERE on each candidate). */
enum q_sarg_kind {
    Q_SARG_EQ,       /* path = one of values (values: array, >= 1 scalar) */
    Q_SARG_RANGE,    /* lo <(=) path <(=) hi; lo/hi NULL when open; both
                        bounds (when present) have the same type, a number,
                        string or boolean, and path's value has that type */
    Q_SARG_PREFIX,   /* STARTSWITH(path, lo) case-sensitive; lo a string */
    Q_SARG_CONTAINS, /* ARRAY_CONTAINS(path, v): an element of the array at
                        path has sub-path elem_path (maybe empty) equal to
                        one of values (scalars) */
    Q_SARG_DEFINED,  /* IS_DEFINED(path), or any comparison that needs it */
};
struct q_sarg {
    enum q_sarg_kind kind;
    const json_t *path;      /* borrowed from the query */
    const json_t *values;    /* EQ, CONTAINS: array of scalars */
    const json_t *elem_path; /* CONTAINS: segments within an element */
    const json_t *lo, *hi;   /* RANGE; PREFIX uses lo */
    int lo_incl, hi_incl;
    /* EQ and RANGE from a comparison of the path with constants (=, <, <=,
     * >, >=, BETWEEN, IN, a bare boolean path): the conjunct is true
     * exactly when the value at the path (not inside an array there)
     * satisfies the sarg. */
    int exact;
};
/* Fill up to max sargs; returns how many the query has (may exceed max). */
size_t q_sargs(const struct q_query *q, struct q_sarg *out, size_t max);

/* ORDER BY item i: the path (segments from the root document) if the item
 * is a plain property path of the root alias, else NULL; *desc set. */
const json_t *q_order(const struct q_query *q, size_t i, int *desc);

/* ---- execution ---- */

struct q_ctx {
    int64_t now_ms; /* GetCurrentDateTime etc.: fixed for one execution */
};

/* A new execution. Returns NULL only on allocation failure. */
struct q_exec *q_exec_new(const struct q_query *q, const struct q_ctx *ctx);
void q_exec_free(struct q_exec *x);

/* The server feeds documents already in ORDER BY order (it read them from
 * an index, ties in input order): ORDER BY alone then no longer keeps rows
 * back, and the query streams if nothing else (GROUP BY, aggregates,
 * DISTINCT) does. Call before the first feed. */
void q_exec_presorted(struct q_exec *x);

/* Whether this execution streams (q_info.streaming, or presorted). */
int q_exec_streaming(const struct q_exec *x);

/* Streaming queries resuming from a continuation: rows_passed is the value
 * q_exec_rows_passed returned at the resume point, so TOP/OFFSET/LIMIT keep
 * counting from there. Call before the first feed. */
void q_exec_resume(struct q_exec *x, uint64_t rows_passed);

/* The server feeds only documents it knows pass WHERE (read from an index
 * range that is exactly the WHERE clause): WHERE is not evaluated, so a
 * query that reads nothing else of the document (SELECT * from the root,
 * no JOIN) may be fed a stand-in for it. Call after q_exec_presorted and
 * before the first feed; -1 (and no change) for a query with subqueries
 * in FROM. */
int q_exec_where_known(struct q_exec *x);

/* Offer one document (borrowed). Streaming queries append their rows for
 * it to out (a JSON array; new references); others keep state. Returns 0,
 * or -1 with err filled (resource limits only). */
int q_exec_feed(struct q_exec *x, const json_t *doc, json_t *out, struct q_error *err);

/* Rows that passed FROM/WHERE so far, including resumed ones and rows
 * OFFSET skipped (streaming queries). */
uint64_t q_exec_rows_passed(const struct q_exec *x);

/* True once no further document can add a row (TOP or LIMIT reached). */
int q_exec_done(const struct q_exec *x);

/* Append the final rows of a non-streaming query to out, in order (after
 * ORDER BY, GROUP BY, aggregates, DISTINCT, OFFSET/LIMIT, TOP). No-op for
 * streaming queries. Returns 0 or -1 with err. */
int q_exec_finish(struct q_exec *x, json_t *out, struct q_error *err);

/* Evaluate WHERE alone on a document: 1 when it is true, else 0 (used by
 * conditional PATCH, whose filter is "FROM c WHERE ..."). */
int q_match(const struct q_query *q, const json_t *doc, const struct q_ctx *ctx);

#endif
