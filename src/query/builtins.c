/*
 * builtins.c — the table of Cosmos built-in scalar functions, the call
 * helpers, and the type-checking, mathematical and array functions.
 * String functions are in builtins_str.c, date and time in
 * builtins_time.c. Semantics follow the Azure Cosmos DB for NoSQL
 * function reference; where it is silent the choice is noted at the
 * function.
 *
 * Invariants:
 *   1. The table's arity is the documented one; q_builtin_call is only
 *      called with a count inside it (the parser checks).
 *   2. A built-in never fails on data: wrong types give undefined.
 *   3. Results never hold NaN or infinity (JSON cannot): such results are
 *      undefined.
 */
#include "query/builtins_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- result helpers ---- */

int bi_fail(struct bi_call *c, int status, const char *msg)
{
    c->err->status = status;
    c->err->pos = -1;
    snprintf(c->err->msg, sizeof c->err->msg, "%s", msg);
    return -1;
}

int bi_oom(struct bi_call *c)
{
    return bi_fail(c, 500, "Out of memory evaluating a system function.");
}

int bi_take(struct bi_call *c, json_t *v)
{
    if (!v)
        return bi_oom(c);
    *c->out = v;
    return 0;
}

int bi_num(struct bi_call *c, double d)
{
    if (!isfinite(d))
        return 0;
    return bi_take(c, json_real(d == 0 ? 0.0 : d));
}

int bi_bool(struct bi_call *c, int b)
{
    return bi_take(c, json_boolean(b));
}

int bi_str(struct bi_call *c, const char *s, size_t len)
{
    return bi_take(c, json_stringn_nocheck(s ? s : "", len));
}

int bi_copy(struct bi_call *c, json_t *v)
{
    *c->out = json_incref(v);
    return 0;
}

int bi_number(const json_t *v, double *d)
{
    if (!json_is_number(v))
        return 0;
    *d = json_number_value(v);
    return isfinite(*d);
}

int bi_int(const json_t *v, double *d)
{
    return bi_number(v, d) && trunc(*d) == *d;
}

int bi_i64(const json_t *v, long long *i)
{
    double d;
    /* [-2^63, 2^63): the doubles that convert to int64 exactly */
    if (!bi_int(v, &d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return 0;
    *i = (long long)d;
    return 1;
}

int bi_flag(const struct bi_call *c, size_t i)
{
    json_t *v = bi_arg(c, i);
    if (i >= c->n)
        return 0;
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* ---- type checks ---- */

static int is_array(struct bi_call *c)
{
    return bi_bool(c, json_is_array(c->a[0]));
}

static int is_bool(struct bi_call *c)
{
    return bi_bool(c, json_is_boolean(c->a[0]));
}

static int is_defined(struct bi_call *c)
{
    return bi_bool(c, c->a[0] != NULL);
}

static int is_finite_number(struct bi_call *c)
{
    double d;
    return bi_bool(c, bi_number(c->a[0], &d));
}

/* Documented: integers of the int64 range are integers, and
 * 9223372036854775807 counts (as a double it is 2^63), 2^64 does not. */
static int is_integer(struct bi_call *c)
{
    double d;
    return bi_bool(c, bi_int(c->a[0], &d) && fabs(d) <= 9223372036854775808.0);
}

static int is_null(struct bi_call *c)
{
    return bi_bool(c, json_is_null(c->a[0]));
}

static int is_number(struct bi_call *c)
{
    return bi_bool(c, json_is_number(c->a[0]));
}

static int is_object(struct bi_call *c)
{
    return bi_bool(c, json_is_object(c->a[0]));
}

static int is_primitive(struct bi_call *c)
{
    json_t *v = c->a[0];
    return bi_bool(c, v && !json_is_array(v) && !json_is_object(v));
}

static int is_string(struct bi_call *c)
{
    return bi_bool(c, json_is_string(c->a[0]));
}

/* ---- mathematical functions ---- */

/* One-argument functions of a double. */
static int math1(struct bi_call *c, double (*f)(double))
{
    double x;
    if (!bi_number(c->a[0], &x))
        return 0;
    return bi_num(c, f(x));
}

static double cot(double x)
{
    return 1 / tan(x);
}

static double degrees(double x)
{
    return x * (180 / M_PI);
}

static double radians(double x)
{
    return x * (M_PI / 180);
}

static double sign(double x)
{
    return x > 0 ? 1 : x < 0 ? -1 : 0;
}

static double square(double x)
{
    return x * x;
}

#define MATH1(name, f)                                                                             \
    static int name(struct bi_call *c)                                                             \
    {                                                                                              \
        return math1(c, f);                                                                        \
    }
MATH1(m_abs, fabs)
MATH1(m_acos, acos)
MATH1(m_asin, asin)
MATH1(m_atan, atan)
MATH1(m_ceiling, ceil)
MATH1(m_cos, cos)
MATH1(m_cot, cot)
MATH1(m_degrees, degrees)
MATH1(m_exp, exp)
MATH1(m_floor, floor)
MATH1(m_log10, log10)
MATH1(m_radians, radians)
MATH1(m_sign, sign)
MATH1(m_sin, sin)
MATH1(m_sqrt, sqrt)
MATH1(m_square, square)
MATH1(m_tan, tan)
MATH1(m_trunc, trunc)
#undef MATH1

static int m_atn2(struct bi_call *c)
{
    double y, x;
    if (!bi_number(c->a[0], &y) || !bi_number(c->a[1], &x))
        return 0;
    return bi_num(c, atan2(y, x));
}

static int m_power(struct bi_call *c)
{
    double x, y;
    if (!bi_number(c->a[0], &x) || !bi_number(c->a[1], &y))
        return 0;
    return bi_num(c, pow(x, y));
}

/* LOG(x [, base]): natural logarithm, or in the given base. */
static int m_log(struct bi_call *c)
{
    double x, base;
    if (!bi_number(c->a[0], &x))
        return 0;
    if (c->n < 2)
        return bi_num(c, log(x));
    if (!bi_number(c->a[1], &base))
        return 0;
    return bi_num(c, base == 10 ? log10(x) : log(x) / log(base));
}

static int m_pi(struct bi_call *c)
{
    return bi_num(c, M_PI);
}

static int m_rand(struct bi_call *c)
{
    return bi_num(c, (double)random() / ((double)RAND_MAX + 1));
}

/* ROUND(x [, precision]): midpoint away from zero (C round()); a positive
 * precision keeps that many decimals, a negative one rounds to tens,
 * hundreds... A non-integral precision is undefined. */
static int m_round(struct bi_call *c)
{
    double x, p;
    if (!bi_number(c->a[0], &x))
        return 0;
    if (c->n < 2)
        return bi_num(c, round(x));
    if (!bi_int(c->a[1], &p) || fabs(p) > 308)
        return 0;
    double scale = pow(10, fabs(p));
    return bi_num(c, p >= 0 ? round(x * scale) / scale : round(x / scale) * scale);
}

/* NumberBin(x [, size]): x rounded down to a multiple of size (default 1);
 * size 0 is undefined (documented example). */
static int m_numberbin(struct bi_call *c)
{
    double x, size = 1;
    if (!bi_number(c->a[0], &x) || (c->n > 1 && !bi_number(c->a[1], &size)) || size == 0)
        return 0;
    return bi_num(c, floor(x / size) * size);
}

/* The Int* functions: 64-bit integer arithmetic; any argument that is not
 * an integer in the int64 range gives undefined. Overflow wraps (two's
 * complement); division or modulo by zero, and shifts outside 0..63, give
 * undefined. */
enum int_op { I_ADD, I_SUB, I_MUL, I_DIV, I_MOD, I_AND, I_OR, I_XOR, I_SHL, I_SHR };

static int int2(struct bi_call *c, enum int_op op)
{
    long long a, b;
    if (!bi_i64(c->a[0], &a) || !bi_i64(c->a[1], &b))
        return 0;
    unsigned long long ua = (unsigned long long)a, ub = (unsigned long long)b;
    long long r;
    switch (op) {
    case I_ADD:
        r = (long long)(ua + ub);
        break;
    case I_SUB:
        r = (long long)(ua - ub);
        break;
    case I_MUL:
        r = (long long)(ua * ub);
        break;
    case I_DIV:
    case I_MOD:
        if (b == 0 || (a == INT64_MIN && b == -1))
            return 0;
        r = op == I_DIV ? a / b : a % b;
        break;
    case I_AND:
        r = a & b;
        break;
    case I_OR:
        r = a | b;
        break;
    case I_XOR:
        r = a ^ b;
        break;
    case I_SHL:
    case I_SHR:
        if (b < 0 || b > 63)
            return 0;
        r = op == I_SHL ? (long long)(ua << b) : a >> b;
        break;
    default:
        return 0;
    }
    return bi_num(c, (double)r);
}

#define INT2(name, op)                                                                             \
    static int name(struct bi_call *c)                                                             \
    {                                                                                              \
        return int2(c, op);                                                                        \
    }
INT2(int_add, I_ADD)
INT2(int_sub, I_SUB)
INT2(int_mul, I_MUL)
INT2(int_div, I_DIV)
INT2(int_mod, I_MOD)
INT2(int_bitand, I_AND)
INT2(int_bitor, I_OR)
INT2(int_bitxor, I_XOR)
INT2(int_shl, I_SHL)
INT2(int_shr, I_SHR)
#undef INT2

static int int_bitnot(struct bi_call *c)
{
    long long a;
    if (!bi_i64(c->a[0], &a))
        return 0;
    return bi_num(c, (double)~a);
}

/* ---- array functions ---- */

/* Whether element e matches v: deep equality, or with partial set and v an
 * object, every property of v present in e with an equal value. */
static int matches(const json_t *e, const json_t *v, int partial)
{
    if (!partial || !json_is_object(v))
        return doc_equal(e, v);
    if (!json_is_object(e))
        return 0;
    const char *k;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach((json_t *)v, k, klen, m)
    {
        json_t *o = json_object_getn(e, k, klen);
        if (!o || !doc_equal(o, m))
            return 0;
    }
    return 1;
}

static int array_has(const json_t *arr, const json_t *v, int partial)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (matches(json_array_get(arr, i), v, partial))
            return 1;
    return 0;
}

/* ARRAY_CONTAINS(arr, v [, partial]): undefined v is found nowhere. */
static int array_contains(struct bi_call *c)
{
    int partial = bi_flag(c, 2);
    if (!json_is_array(c->a[0]) || partial < 0)
        return 0;
    return bi_bool(c, c->a[1] && array_has(c->a[0], c->a[1], partial));
}

/* ARRAY_CONTAINS_ANY / _ALL(arr, v1, ...). Documented for ANY: an
 * undefined value matches nothing, and when nothing matched and some value
 * was undefined the result is undefined. ALL mirrors it: false as soon as
 * a defined value is missing, else undefined if some value was. */
static int array_contains_some(struct bi_call *c, int all)
{
    if (!json_is_array(c->a[0]))
        return 0;
    int undef = 0;
    for (size_t i = 1; i < c->n; i++) {
        if (!c->a[i]) {
            undef = 1;
            continue;
        }
        if (array_has(c->a[0], c->a[i], 0) != all)
            return bi_bool(c, !all);
    }
    return undef ? 0 : bi_bool(c, all);
}

static int array_contains_any(struct bi_call *c)
{
    return array_contains_some(c, 0);
}

static int array_contains_all(struct bi_call *c)
{
    return array_contains_some(c, 1);
}

int bi_array_too_big(struct bi_call *c)
{
    return bi_fail(c, 400, "An array built by the query would have more than 1,000,000 elements.");
}

static int array_concat(struct bi_call *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (!json_is_array(c->a[i]))
            return 0;
    size_t total = 0;
    for (size_t i = 0; i < c->n; i++)
        total += json_array_size(c->a[i]);
    if (total > ARRAY_BUILT_MAX) /* nested, they would double without end */
        return bi_array_too_big(c);
    json_t *r = json_array();
    for (size_t i = 0; r && i < c->n; i++)
        if (json_array_extend(r, c->a[i]))
            json_decref(r), r = NULL;
    return bi_take(c, r);
}

static int array_length(struct bi_call *c)
{
    if (!json_is_array(c->a[0]))
        return 0;
    return bi_num(c, (double)json_array_size(c->a[0]));
}

/* Append elements [from, to) of src to a new array. */
static int take_range(struct bi_call *c, const json_t *src, size_t from, size_t to)
{
    json_t *r = json_array();
    for (size_t i = from; r && i < to; i++)
        if (json_array_append(r, json_array_get(src, i)))
            json_decref(r), r = NULL;
    return bi_take(c, r);
}

/* ARRAY_SLICE(arr, start [, length]): a negative start counts from the end
 * (clamped to the first element); a negative length gives []. Fractions
 * are truncated. */
static int array_slice(struct bi_call *c)
{
    double start, len = INFINITY;
    if (!json_is_array(c->a[0]) || !bi_number(c->a[1], &start) ||
        (c->n > 2 && !bi_number(c->a[2], &len)))
        return 0;
    double size = (double)json_array_size(c->a[0]);
    start = trunc(start);
    if (start < 0)
        start = fmax(0, size + start);
    start = fmin(start, size);
    double end = len < 0 ? start : fmin(size, start + trunc(len));
    return take_range(c, c->a[0], (size_t)start, (size_t)end);
}

/* CHOOSE(index, v1, ...): 1-based; out of range is undefined. */
static int choose(struct bi_call *c)
{
    double i;
    if (!bi_int(c->a[0], &i) || i < 1 || i >= (double)c->n)
        return 0;
    return bi_copy(c, c->a[(size_t)i]);
}

static int iif(struct bi_call *c)
{
    return bi_copy(c, json_is_true(c->a[0]) ? c->a[1] : c->a[2]);
}

/* ObjectToArray(obj [, keyName = "k" [, valueName = "v"]]) */
static int object_to_array(struct bi_call *c)
{
    json_t *kn = bi_arg(c, 1), *vn = bi_arg(c, 2);
    if (!json_is_object(c->a[0]) || (c->n > 1 && !json_is_string(kn)) ||
        (c->n > 2 && !json_is_string(vn)))
        return 0;
    const char *kname = kn ? json_string_value(kn) : "k", *vname = vn ? json_string_value(vn) : "v";
    size_t kl = kn ? json_string_length(kn) : 1, vl = vn ? json_string_length(vn) : 1;
    json_t *r = json_array();
    const char *k;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach(c->a[0], k, klen, m)
    {
        json_t *e = r ? json_object() : NULL;
        if (!e || json_object_setn_new_nocheck(e, kname, kl, json_stringn_nocheck(k, klen)) ||
            json_object_setn_nocheck(e, vname, vl, m) || json_array_append_new(r, e)) {
            json_decref(e);
            json_decref(r);
            r = NULL;
            break;
        }
    }
    return bi_take(c, r);
}

/* Append to r the elements of src that are not in r yet (and, when in is
 * not NULL, are in in). */
static int add_new(json_t *r, const json_t *src, const json_t *in)
{
    for (size_t i = 0; i < json_array_size(src); i++) {
        json_t *e = json_array_get(src, i);
        if (in && !array_has(in, e, 0))
            continue;
        if (!array_has(r, e, 0) && json_array_append(r, e))
            return -1;
    }
    return 0;
}

/* SetIntersect(a, b): documented examples give the elements in b's order
 * (SetIntersect([1,2,"A","B"], ["A",1]) is ["A",1]), without duplicates. */
static int set_intersect(struct bi_call *c)
{
    if (!json_is_array(c->a[0]) || !json_is_array(c->a[1]))
        return 0;
    json_t *r = json_array();
    if (r && add_new(r, c->a[1], c->a[0]))
        json_decref(r), r = NULL;
    return bi_take(c, r);
}

/* SetUnion(a, b): a's elements then b's new ones, without duplicates. */
static int set_union(struct bi_call *c)
{
    if (!json_is_array(c->a[0]) || !json_is_array(c->a[1]))
        return 0;
    json_t *r = json_array();
    if (r && (add_new(r, c->a[0], NULL) || add_new(r, c->a[1], NULL)))
        json_decref(r), r = NULL;
    return bi_take(c, r);
}

/* SetDifference(a, b): a's elements that are not in b, without
 * duplicates, in a's order (documented examples). */
static int set_difference(struct bi_call *c)
{
    if (!json_is_array(c->a[0]) || !json_is_array(c->a[1]))
        return 0;
    json_t *r = json_array();
    for (size_t i = 0; r && i < json_array_size(c->a[0]); i++) {
        json_t *e = json_array_get(c->a[0], i);
        if (!array_has(c->a[1], e, 0) && !array_has(r, e, 0) && json_array_append(r, e))
            json_decref(r), r = NULL;
    }
    return bi_take(c, r);
}

/* SetEqual(a, b): the same elements, duplicates and order aside. */
static int set_equal(struct bi_call *c)
{
    if (!json_is_array(c->a[0]) || !json_is_array(c->a[1]))
        return 0;
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < json_array_size(c->a[side]); i++)
            if (!array_has(c->a[!side], json_array_get(c->a[side], i), 0))
                return bi_bool(c, 0);
    return bi_bool(c, 1);
}

/* ARRAY_MAX / ARRAY_MIN: the largest / smallest element in the type order
 * (null < booleans < numbers < strings, documented); undefined when the
 * array is empty or holds an array or object. */
static int array_extreme(struct bi_call *c, int sign)
{
    if (!json_is_array(c->a[0]))
        return 0;
    json_t *best = NULL, *e;
    size_t i;
    json_array_foreach(c->a[0], i, e)
    {
        if (json_is_array(e) || json_is_object(e))
            return 0;
        if (!best || sign * q_cmp(e, best) > 0)
            best = e;
    }
    return bi_copy(c, best);
}

static int array_max(struct bi_call *c)
{
    return array_extreme(c, 1);
}

static int array_min(struct bi_call *c)
{
    return array_extreme(c, -1);
}

/* The array's numbers into a malloc'd list (*n of them); 0 when the
 * argument is not an array of numbers only, -1 out of memory. */
static int numbers_of(const json_t *a, double **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(a))
        return 0;
    size_t k = json_array_size(a);
    double *v = malloc((k ? k : 1) * sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < k; i++) {
        if (!bi_number(json_array_get(a, i), &v[i])) {
            free(v);
            return 0;
        }
    }
    *out = v;
    *n = k;
    return 1;
}

enum num_agg { AGG_SUM, AGG_AVG, AGG_MEDIAN };

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* ARRAY_SUM / ARRAY_AVG / ARRAY_MEDIAN over an array of numbers only
 * (documented); another element makes it undefined, and so does an empty
 * array for the average and the median (the sum of none is 0). */
static int array_numbers(struct bi_call *c, enum num_agg agg)
{
    double *v;
    size_t n;
    int got = numbers_of(c->a[0], &v, &n);
    if (got <= 0)
        return got < 0 ? bi_oom(c) : 0;
    double r = 0;
    if (agg == AGG_MEDIAN && n) {
        qsort(v, n, sizeof *v, cmp_double);
        r = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    } else {
        for (size_t i = 0; i < n; i++)
            r += v[i];
        if (agg == AGG_AVG && n)
            r /= (double)n;
    }
    free(v);
    if (agg != AGG_SUM && n == 0)
        return 0;
    return bi_num(c, r);
}

static int array_sum(struct bi_call *c)
{
    return array_numbers(c, AGG_SUM);
}

static int array_avg(struct bi_call *c)
{
    return array_numbers(c, AGG_AVG);
}

static int array_median(struct bi_call *c)
{
    return array_numbers(c, AGG_MEDIAN);
}

/* ---- the table ---- */

#define VARIADIC -1

static const struct builtin {
    const char *name;
    int min, max;
    bi_fn fn;
} builtins[] = {
    /* type checks */
    {"IS_ARRAY", 1, 1, is_array},
    {"IS_BOOL", 1, 1, is_bool},
    {"IS_DEFINED", 1, 1, is_defined},
    {"IS_FINITE_NUMBER", 1, 1, is_finite_number},
    {"IS_INTEGER", 1, 1, is_integer},
    {"IS_NULL", 1, 1, is_null},
    {"IS_NUMBER", 1, 1, is_number},
    {"IS_OBJECT", 1, 1, is_object},
    {"IS_PRIMITIVE", 1, 1, is_primitive},
    {"IS_STRING", 1, 1, is_string},
    /* mathematical */
    {"ABS", 1, 1, m_abs},
    {"ACOS", 1, 1, m_acos},
    {"ASIN", 1, 1, m_asin},
    {"ATAN", 1, 1, m_atan},
    {"ATN2", 2, 2, m_atn2},
    {"CEILING", 1, 1, m_ceiling},
    {"COS", 1, 1, m_cos},
    {"COT", 1, 1, m_cot},
    {"DEGREES", 1, 1, m_degrees},
    {"EXP", 1, 1, m_exp},
    {"FLOOR", 1, 1, m_floor},
    {"IntAdd", 2, 2, int_add},
    {"IntBitAnd", 2, 2, int_bitand},
    {"IntBitLeftShift", 2, 2, int_shl},
    {"IntBitNot", 1, 1, int_bitnot},
    {"IntBitOr", 2, 2, int_bitor},
    {"IntBitRightShift", 2, 2, int_shr},
    {"IntBitXor", 2, 2, int_bitxor},
    {"IntDiv", 2, 2, int_div},
    {"IntMod", 2, 2, int_mod},
    {"IntMul", 2, 2, int_mul},
    {"IntSub", 2, 2, int_sub},
    {"LOG", 1, 2, m_log},
    {"LOG10", 1, 1, m_log10},
    {"NumberBin", 1, 2, m_numberbin},
    {"PI", 0, 0, m_pi},
    {"POWER", 2, 2, m_power},
    {"RADIANS", 1, 1, m_radians},
    {"RAND", 0, 0, m_rand},
    {"ROUND", 1, 2, m_round},
    {"SIGN", 1, 1, m_sign},
    {"SIN", 1, 1, m_sin},
    {"SQRT", 1, 1, m_sqrt},
    {"SQUARE", 1, 1, m_square},
    {"TAN", 1, 1, m_tan},
    {"TRUNC", 1, 1, m_trunc},
    /* array */
    {"ARRAY_CONCAT", 2, VARIADIC, array_concat},
    {"ARRAY_CONTAINS", 2, 3, array_contains},
    {"ARRAY_CONTAINS_ALL", 2, VARIADIC, array_contains_all},
    {"ARRAY_CONTAINS_ANY", 2, VARIADIC, array_contains_any},
    {"ARRAY_LENGTH", 1, 1, array_length},
    {"ARRAY_SLICE", 2, 3, array_slice},
    {"ARRAY_AVG", 1, 1, array_avg},
    {"ARRAY_MAX", 1, 1, array_max},
    {"ARRAY_MEDIAN", 1, 1, array_median},
    {"ARRAY_MIN", 1, 1, array_min},
    {"ARRAY_SUM", 1, 1, array_sum},
    {"CHOOSE", 2, VARIADIC, choose},
    {"ObjectToArray", 1, 3, object_to_array},
    {"SetDifference", 2, 2, set_difference},
    {"SetEqual", 2, 2, set_equal},
    {"SetIntersect", 2, 2, set_intersect},
    {"SetUnion", 2, 2, set_union},
    /* conditional */
    {"IIF", 3, 3, iif},
    /* string (builtins_str.c) */
    {"CONCAT", 2, VARIADIC, bi_concat},
    {"CONTAINS", 2, 3, bi_contains},
    {"CONTAINS_ALL_CI", 2, VARIADIC, bi_contains_all_ci},
    {"CONTAINS_ALL_CS", 2, VARIADIC, bi_contains_all_cs},
    {"CONTAINS_ANY_CI", 2, VARIADIC, bi_contains_any_ci},
    {"CONTAINS_ANY_CS", 2, VARIADIC, bi_contains_any_cs},
    {"ENDSWITH", 2, 3, bi_endswith},
    {"INDEX_OF", 2, 3, bi_index_of},
    {"LastIndexOf", 2, 3, bi_lastindexof},
    {"LEFT", 2, 2, bi_left},
    {"LENGTH", 1, 1, bi_length},
    {"LOWER", 1, 1, bi_lower},
    {"LTRIM", 1, 2, bi_ltrim},
    {"RegexMatch", 2, 3, bi_regexmatch},
    {"REPLACE", 3, 3, bi_replace},
    {"REPLICATE", 2, 2, bi_replicate},
    {"REVERSE", 1, 1, bi_reverse},
    {"RIGHT", 2, 2, bi_right},
    {"RTRIM", 1, 2, bi_rtrim},
    {"STARTSWITH", 2, 3, bi_startswith},
    {"StringEquals", 2, 3, bi_stringequals},
    {"StringJoin", 2, 2, bi_stringjoin},
    {"StringSplit", 2, 2, bi_stringsplit},
    {"StringToArray", 1, 1, bi_stringtoarray},
    {"StringToBoolean", 1, 1, bi_stringtoboolean},
    {"StringToNull", 1, 1, bi_stringtonull},
    {"StringToNumber", 1, 1, bi_stringtonumber},
    {"StringToObject", 1, 1, bi_stringtoobject},
    {"SUBSTRING", 3, 3, bi_substring},
    {"ToString", 1, 1, bi_tostring},
    {"TRIM", 1, 2, bi_trim},
    {"UPPER", 1, 1, bi_upper},
    /* date and time (builtins_time.c) */
    {"DateTimeAdd", 3, 3, bi_datetimeadd},
    {"DateTimeBin", 2, 4, bi_datetimebin},
    {"DateTimeDiff", 3, 3, bi_datetimediff},
    {"DateTimeFormat", 2, 2, bi_datetimeformat},
    {"DateTimeFromParts", 3, 7, bi_datetimefromparts},
    {"DateTimePart", 2, 2, bi_datetimepart},
    {"DateTimeToTicks", 1, 1, bi_datetimetoticks},
    {"DateTimeToTimestamp", 1, 1, bi_datetimetotimestamp},
    {"DAY", 1, 1, bi_day},
    {"MONTH", 1, 1, bi_month},
    {"YEAR", 1, 1, bi_year},
    {"NOW", 0, 2, bi_now},
    {"AGO", 2, 2, bi_ago},
    {"GetCurrentDateTime", 0, 0, bi_getcurrentdatetime},
    {"GetCurrentDateTimeStatic", 0, 0, bi_getcurrentdatetime},
    {"GetCurrentTicks", 0, 0, bi_getcurrentticks},
    {"GetCurrentTicksStatic", 0, 0, bi_getcurrentticks},
    {"GetCurrentTimestamp", 0, 0, bi_getcurrenttimestamp},
    {"GetCurrentTimestampStatic", 0, 0, bi_getcurrenttimestamp},
    {"TicksToDateTime", 1, 1, bi_tickstodatetime},
    {"TimestampToDateTime", 1, 1, bi_timestamptodatetime},
};

#define N_BUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

int q_builtin_find(const char *name, size_t len)
{
    for (int i = 0; i < N_BUILTINS; i++)
        if (strlen(builtins[i].name) == len && strncasecmp(builtins[i].name, name, len) == 0)
            return i;
    return -1;
}

const char *q_builtin_name(int id)
{
    return id >= 0 && id < N_BUILTINS ? builtins[id].name : "";
}

void q_builtin_arity(int id, int *min, int *max)
{
    *min = id >= 0 && id < N_BUILTINS ? builtins[id].min : 0;
    *max = id >= 0 && id < N_BUILTINS ? builtins[id].max : 0;
}

int q_builtin_call(int id, json_t *const *args, size_t n, const struct q_ctx *ctx, json_t **out,
                   struct q_error *err)
{
    *out = NULL;
    struct bi_call c = {args, n, ctx, out, err};
    if (id < 0 || id >= N_BUILTINS)
        return bi_fail(&c, 400, "Unknown system function.");
    return builtins[id].fn(&c);
}
