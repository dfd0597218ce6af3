/*
 * builtins_int.h — private to the built-in function files (builtins*.c):
 * the call frame every built-in receives and the helpers that produce its
 * result. Not for the rest of the query engine: it goes through qval.h.
 *
 * Every built-in follows the same contract (qval.h, q_builtin_call):
 *   - arguments are borrowed, NULL is undefined, c->n is within the arity
 *     the table declares;
 *   - a wrong argument type gives undefined (*c->out stays NULL), never an
 *     error;
 *   - it returns 0, or -1 with *c->err filled (out of memory: 500, a
 *     regular expression that does not compile: 400).
 */
#ifndef ATREST_QUERY_BUILTINS_INT_H
#define ATREST_QUERY_BUILTINS_INT_H

#include "query/qval.h"

struct bi_call {
    json_t *const *a;
    size_t n;
    const struct q_ctx *ctx;
    json_t **out;
    struct q_error *err;
};

typedef int (*bi_fn)(struct bi_call *c);

/* Argument i, or NULL (undefined) when absent. */
static inline json_t *bi_arg(const struct bi_call *c, size_t i)
{
    return i < c->n ? c->a[i] : NULL;
}

int bi_fail(struct bi_call *c, int status, const char *msg);
int bi_oom(struct bi_call *c);
/* Set the result; each returns 0, or -1 (out of memory) via bi_oom. */
int bi_take(struct bi_call *c, json_t *v); /* v: new reference, NULL = OOM */
int bi_num(struct bi_call *c, double d);   /* NaN/inf give undefined */
int bi_bool(struct bi_call *c, int b);
int bi_str(struct bi_call *c, const char *s, size_t len);
int bi_copy(struct bi_call *c, json_t *v); /* a new reference to v (or undefined) */

/* Elements an array built by a built-in may have (ARRAY_CONCAT nested
 * would double without end, StringSplit of a long string); beyond it the
 * query fails with 400 (bi_array_too_big). */
#define ARRAY_BUILT_MAX 1000000
int bi_array_too_big(struct bi_call *c);

/* Numeric argument tests: 1 and *d set when v is a number (an integral
 * number for bi_int, within int64 for bi_i64). */
int bi_number(const json_t *v, double *d);
int bi_int(const json_t *v, double *d);
int bi_i64(const json_t *v, long long *i);

/* Optional boolean flag at position i: 1/0, or -1 when present but not a
 * boolean (the call is then undefined). */
int bi_flag(const struct bi_call *c, size_t i);

/* The built-ins by file. */
/* clang-format off */
#define BI_STRING_FNS(X) \
    X(concat) \
    X(contains) \
    X(contains_all_ci) \
    X(contains_all_cs) \
    X(contains_any_ci) \
    X(contains_any_cs) \
    X(endswith) \
    X(index_of) \
    X(lastindexof) \
    X(left) \
    X(length) \
    X(lower) \
    X(ltrim) \
    X(regexmatch) \
    X(replace) \
    X(replicate) \
    X(reverse) \
    X(right) \
    X(rtrim) \
    X(startswith) \
    X(stringequals) \
    X(stringjoin) \
    X(stringsplit) \
    X(stringtoarray) \
    X(stringtoboolean) \
    X(stringtonull) \
    X(stringtonumber) \
    X(stringtoobject) \
    X(substring) \
    X(tostring) \
    X(trim) \
    X(upper)
#define BI_TIME_FNS(X) \
    X(ago) \
    X(datetimeadd) \
    X(datetimebin) \
    X(datetimediff) \
    X(datetimeformat) \
    X(datetimefromparts) \
    X(datetimepart) \
    X(datetimetoticks) \
    X(datetimetotimestamp) \
    X(day) \
    X(getcurrentdatetime) \
    X(getcurrentticks) \
    X(getcurrenttimestamp) \
    X(month) \
    X(now) \
    X(tickstodatetime) \
    X(timestamptodatetime) \
    X(year)
/* clang-format on */

#define BI_DECLARE(f) int bi_##f(struct bi_call *c);
BI_STRING_FNS(BI_DECLARE)
BI_TIME_FNS(BI_DECLARE)
#undef BI_DECLARE

#endif
