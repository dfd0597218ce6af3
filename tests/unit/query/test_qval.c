/*
 * test_qval.c — Cosmos value semantics: the total order (q_cmp), the
 * order-preserving key encoding (memcmp of keys == q_cmp for thousands of
 * random and edge scalars, ascending and descending, and concatenated),
 * and the built-in functions against the Cosmos documentation's examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>

#include <cmocka.h>

#include "doc/doc.h"
#include "query/qval.h"

static json_t *J(const char *text)
{
    json_t *v = doc_parse(text, strlen(text), NULL);
    assert_non_null(v);
    return v;
}

static int sign(int c)
{
    return c < 0 ? -1 : c > 0;
}

/* memcmp order of two byte strings, shorter first on a common prefix */
static int key_cmp(const struct doc_buf *a, const struct doc_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c)
        return sign(c);
    return a->len < b->len ? -1 : a->len > b->len;
}

static void key_of(const json_t *v, int desc, struct doc_buf *b)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(desc ? q_key_put_desc(b, v) : q_key_put(b, v), 0);
}

static void test_cmp_types(void **state)
{
    (void)state;
    const char *asc[] = {"null",   "false",     "true",      "-1e300", "-1",    "0",
                         "0.5",    "1",         "1e300",     "\"\"",   "\"A\"", "\"a\"",
                         "\"ab\"", "\"b\"",     "[]",        "[null]", "[1]",   "[1,2]",
                         "[2]",    "{\"a\":1}", "{\"b\":0}", "{}"};
    /* objects order by canonical text: '"' < '}' puts {} last */
    size_t n = sizeof asc / sizeof asc[0];
    assert_int_equal(q_cmp(NULL, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        json_t *a = J(asc[i]);
        assert_true(q_cmp(NULL, a) < 0);
        assert_true(q_cmp(a, NULL) > 0);
        for (size_t j = 0; j < n; j++) {
            json_t *b = J(asc[j]);
            int want = i < j ? -1 : i > j;
            assert_int_equal(sign(q_cmp(a, b)), want);
            json_decref(b);
        }
        json_decref(a);
    }
    /* -0 == 0, integers and reals compare as numbers */
    json_t *nz = json_real(-0.0), *z = json_integer(0);
    assert_int_equal(q_cmp(nz, z), 0);
    json_decref(nz);
    json_decref(z);
}

/* ---- random scalars for the encoding property ---- */

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static json_t *random_number(void)
{
    static const double edge[] = {0.0,
                                  -0.0,
                                  1.0,
                                  -1.0,
                                  DBL_MAX,
                                  -DBL_MAX,
                                  DBL_MIN,
                                  -DBL_MIN,
                                  4.9406564584124654e-324,
                                  -4.9406564584124654e-324,
                                  2.2250738585072009e-308,
                                  1e-300,
                                  -1e-300,
                                  9007199254740992.0,
                                  9007199254740993.0,
                                  0.1,
                                  0.2,
                                  0.30000000000000004,
                                  1e21};
    switch (next() % 4) {
    case 0:
        return json_real(edge[next() % (sizeof edge / sizeof edge[0])]);
    case 1:
        return json_real((double)(int64_t)(next() % 2001) - 1000.0);
    default: {
        double d;
        do {
            uint64_t u = next();
            memcpy(&d, &u, sizeof d);
        } while (!isfinite(d));
        return json_real(d);
    }
    }
}

static json_t *random_string(void)
{
    /* small alphabet so prefixes and ties are common: NUL, 0x01, ASCII,
     * 0x7F, 2-, 3- and 4-byte UTF-8 */
    static const char *const piece[] = {"",
                                        "a",
                                        "b",
                                        "\x01",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80",
                                        "\xef\xbf\xbf",
                                        "A"};
    char buf[64];
    size_t len = 0, n = next() % 6;
    for (size_t i = 0; i < n; i++) {
        if (next() % 5 == 0) {
            buf[len++] = '\0';
            continue;
        }
        const char *p = piece[next() % (sizeof piece / sizeof piece[0])];
        memcpy(buf + len, p, strlen(p));
        len += strlen(p);
    }
    return json_stringn(buf, len);
}

static json_t *random_scalar(void)
{
    switch (next() % 8) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(next() % 2);
    case 2:
    case 3:
    case 4:
        return random_number();
    case 5:
        return next() % 8 ? random_string() : json_array();
    default:
        return next() % 8 ? random_string() : json_object();
    }
}

static void test_key_order(void **state)
{
    (void)state;
    enum { N = 600 };
    json_t *v[N];
    struct doc_buf asc[N], desc[N];
    for (size_t i = 0; i < N; i++) {
        v[i] = random_scalar();
        key_of(v[i], 0, &asc[i]);
        key_of(v[i], 1, &desc[i]);
    }
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < N; j++) {
            int want = sign(q_cmp(v[i], v[j]));
            int scalar = !json_is_array(v[i]) && !json_is_object(v[i]) && !json_is_array(v[j]) &&
                         !json_is_object(v[j]);
            if (scalar || want == 0 || json_typeof(v[i]) != json_typeof(v[j])) {
                assert_int_equal(key_cmp(&asc[i], &asc[j]), want);
                assert_int_equal(key_cmp(&desc[i], &desc[j]), -want);
            }
        }
    }
    /* concatenated keys compare component by component */
    for (size_t i = 0; i + 3 < N; i += 2) {
        struct doc_buf a = {0}, b = {0};
        assert_int_equal(q_key_put(&a, v[i]), 0);
        assert_int_equal(q_key_put_desc(&a, v[i + 2]), 0);
        assert_int_equal(q_key_put(&b, v[i + 1]), 0);
        assert_int_equal(q_key_put_desc(&b, v[i + 3]), 0);
        int want = sign(q_cmp(v[i], v[i + 1]));
        if (!want)
            want = -sign(q_cmp(v[i + 2], v[i + 3]));
        int containers = json_is_array(v[i + 2]) || json_is_object(v[i + 2]) ||
                         json_is_array(v[i + 3]) || json_is_object(v[i + 3]);
        if (!containers || sign(q_cmp(v[i], v[i + 1])) != 0)
            assert_int_equal(key_cmp(&a, &b), want);
        doc_buf_free(&a);
        doc_buf_free(&b);
    }
    for (size_t i = 0; i < N; i++) {
        json_decref(v[i]);
        doc_buf_free(&asc[i]);
        doc_buf_free(&desc[i]);
    }
}

static void test_key_layout(void **state)
{
    (void)state;
    struct doc_buf b;
    json_t *v = json_stringn("a\0b", 3);
    key_of(v, 0, &b);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.p,
                        "\x05"
                        "a\x00\xff"
                        "b\x00\x00",
                        7);
    doc_buf_free(&b);
    json_decref(v);
    v = json_real(1.0);
    key_of(v, 0, &b);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.p, "\x04\xbf\xf0\x00\x00\x00\x00\x00\x00", 9);
    doc_buf_free(&b);
    json_decref(v);
    v = json_real(-0.0);
    key_of(v, 0, &b);
    assert_memory_equal(b.p, "\x04\x80\x00\x00\x00\x00\x00\x00\x00", 9);
    doc_buf_free(&b);
    json_decref(v);
    v = J("[1,2]");
    key_of(v, 1, &b);
    assert_int_equal(b.len, 1);
    assert_int_equal((unsigned char)b.p[0], 0xFF ^ Q_KEY_ARRAY);
    doc_buf_free(&b);
    json_decref(v);
    v = json_null();
    key_of(v, 0, &b);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.p[0], Q_KEY_NULL);
    doc_buf_free(&b);
    json_decref(v);
    /* long strings with many NULs cross the internal chunking */
    char big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = i % 3 ? 'x' : '\0';
    v = json_stringn(big, sizeof big);
    key_of(v, 0, &b);
    assert_int_equal(b.len, 1 + 300 + 100 + 2);
    doc_buf_free(&b);
    json_decref(v);
}

/* ---- built-ins ---- */

#define U NULL /* an undefined argument or result */
static const char end_mark[] = "end";
#define END end_mark               /* ends an argument list */
#define NOW INT64_C(1597360794300) /* 2020-08-13T23:19:54.300Z */

/* Call built-in fn on args (JSON texts, U for undefined) and compare the
 * result with want (JSON text, U for undefined): deep equality, and for
 * strings and numbers the exact canonical text too. */
static void check_call(int line, const char *want, const char *fn, const char *const *args)
{
    json_t *a[16];
    size_t n = 0;
    for (; args[n] != END && n < 16; n++)
        a[n] = args[n] ? J(args[n]) : NULL;
    int id = q_builtin_find(fn, strlen(fn));
    if (id < 0)
        fail_msg("line %d: no built-in %s", line, fn);
    int min, max;
    q_builtin_arity(id, &min, &max);
    if ((int)n < min || (max >= 0 && (int)n > max))
        fail_msg("line %d: %s called with %zu arguments outside %d..%d", line, fn, n, min, max);
    struct q_ctx ctx = {NOW};
    struct q_error err = {0};
    json_t *out = (json_t *)1;
    if (q_builtin_call(id, a, n, &ctx, &out, &err) != 0)
        fail_msg("line %d: %s failed: %s", line, fn, err.msg);
    char *got = out ? doc_dump(out, NULL) : NULL;
    if (!want != !out)
        fail_msg("line %d: %s gave %s, want %s", line, fn, got ? got : "undefined",
                 want ? want : "undefined");
    if (want) {
        json_t *w = J(want);
        char *wt = doc_dump(w, NULL);
        if (!doc_equal(w, out) || strcmp(wt, got) != 0)
            fail_msg("line %d: %s gave %s, want %s", line, fn, got, wt);
        free(wt);
        json_decref(w);
    }
    free(got);
    json_decref(out);
    for (size_t i = 0; i < n; i++)
        json_decref(a[i]);
}

#define CALL(want, fn, ...) check_call(__LINE__, want, fn, (const char *const[]){__VA_ARGS__, END})
#define CALL0(want, fn)     check_call(__LINE__, want, fn, (const char *const[]){END})

static void test_builtin_table(void **state)
{
    (void)state;
    int id = q_builtin_find("array_contains", 14);
    assert_true(id >= 0);
    assert_string_equal(q_builtin_name(id), "ARRAY_CONTAINS");
    assert_int_equal(q_builtin_find("ARRAY_CONTAINSX", 14), id); /* len bytes only */
    assert_int_equal(q_builtin_find("Array_Contains", 14), id);
    assert_int_equal(q_builtin_find("COUNT", 5), -1); /* aggregates are not built-ins */
    assert_int_equal(q_builtin_find("NOPE", 4), -1);
    assert_int_equal(q_builtin_find("", 0), -1);
    static const struct {
        const char *name;
        int min, max;
    } arity[] = {
        {"IS_DEFINED", 1, 1},
        {"CONCAT", 2, -1},
        {"CONTAINS", 2, 3},
        {"INDEX_OF", 2, 3},
        {"SUBSTRING", 3, 3},
        {"ROUND", 1, 2},
        {"LOG", 1, 2},
        {"PI", 0, 0},
        {"ARRAY_SLICE", 2, 3},
        {"ARRAY_CONCAT", 2, -1},
        {"ARRAY_CONTAINS", 2, 3},
        {"RegexMatch", 2, 3},
        {"DateTimeFromParts", 3, 7},
        {"DateTimeBin", 2, 4},
        {"ObjectToArray", 1, 3},
        {"LTRIM", 1, 2},
        {"GetCurrentDateTime", 0, 0},
        {"IIF", 3, 3},
        {"ARRAY_CONTAINS_ANY", 2, -1},
        {"NumberBin", 1, 2},
    };
    for (size_t i = 0; i < sizeof arity / sizeof arity[0]; i++) {
        int min, max;
        id = q_builtin_find(arity[i].name, strlen(arity[i].name));
        assert_true(id >= 0);
        q_builtin_arity(id, &min, &max);
        assert_int_equal(min, arity[i].min);
        assert_int_equal(max, arity[i].max);
    }
}

/* Expected values: the examples of the Cosmos DB for NoSQL function
 * reference (query and result pairs), plus the documented rules. */
static void test_type_checks(void **state)
{
    (void)state;
    CALL("true", "IS_ARRAY", "[25344, 82947]");
    CALL("false", "IS_ARRAY", "{\"size\":\"small\"}");
    CALL("false", "IS_ARRAY", "null");
    CALL("false", "IS_ARRAY", U);
    CALL("true", "IS_BOOL", "true");
    CALL("false", "IS_BOOL", "65");
    CALL("false", "IS_BOOL", U);
    CALL("true", "IS_DEFINED", "5");
    CALL("true", "IS_DEFINED", "null");
    CALL("false", "IS_DEFINED", U);
    CALL("true", "IS_FINITE_NUMBER", "1234.567");
    CALL("false", "IS_FINITE_NUMBER", "\"1\"");
    CALL("false", "IS_INTEGER", "3454.123");
    CALL("true", "IS_INTEGER", "5523432");
    CALL("true", "IS_INTEGER", "-9223372036854775808");
    CALL("true", "IS_INTEGER", "9223372036854775807");
    CALL("false", "IS_INTEGER", "18446744073709551615");
    CALL("false", "IS_INTEGER", U);
    CALL("true", "IS_NULL", "null");
    CALL("false", "IS_NULL", "true");
    CALL("false", "IS_NULL", U);
    CALL("true", "IS_NUMBER", "1");
    CALL("false", "IS_NUMBER", "\"value\"");
    CALL("false", "IS_NUMBER", U);
    CALL("true", "IS_OBJECT", "{\"name\":\"Tecozow coat\"}");
    CALL("false", "IS_OBJECT", "[\"green\"]");
    CALL("false", "IS_OBJECT", U);
    CALL("true", "IS_PRIMITIVE", "true");
    CALL("true", "IS_PRIMITIVE", "null");
    CALL("true", "IS_PRIMITIVE", "\"value\"");
    CALL("false", "IS_PRIMITIVE", "[1]");
    CALL("false", "IS_PRIMITIVE", "{}");
    CALL("false", "IS_PRIMITIVE", U);
    CALL("true", "IS_STRING", "\"value\"");
    CALL("false", "IS_STRING", "1");
    CALL("false", "IS_STRING", U);
}

static void test_math(void **state)
{
    (void)state;
    CALL("1", "ABS", "-1");
    CALL("0", "ABS", "0");
    CALL("1", "ABS", "1");
    CALL(U, "ABS", "\"1\"");
    CALL(U, "ABS", U);
    CALL("3.141592653589793", "ACOS", "-1");
    CALL(U, "ACOS", "2"); /* NaN */
    CALL("-1.5485826962062663", "ATAN", "-45.01");
    CALL("0.265344532064832", "ATN2", "35.175643", "129.44");
    CALL("124", "CEILING", "123.45");
    CALL("-45", "CEILING", "-45.72");
    CALL("0", "CEILING", "0");
    CALL("-0.5994654261946543", "COS", "14.78");
    CALL("-0.040311998371148884", "COT", "124.1332");
    CALL("90", "DEGREES", "1.5707963267948966");
    CALL("180", "DEGREES", "3.141592653589793");
    CALL("270", "DEGREES", "4.71238898038469");
    CALL("360", "DEGREES", "6.283185307179586");
    CALL("1", "EXP", "0");
    CALL("22026.465794806718", "EXP", "10");
    CALL("485165195.4097903", "EXP", "20");
    CALL(U, "EXP", "1000"); /* infinity */
    CALL("62", "FLOOR", "62.6");
    CALL("-146", "FLOOR", "-145.12");
    CALL("0", "FLOOR", "0.2989");
    CALL(U, "FLOOR", "null");
    CALL("1.6094379124341003", "LOG", "5");
    CALL("0.3010299956639812", "LOG", "2", "10");
    CALL(U, "LOG", "-1");
    CALL(U, "LOG", "0"); /* -infinity */
    CALL("0.6989700043360189", "LOG10", "5");
    CALL("2", "LOG10", "100");
    CALL0("3.141592653589793", "PI");
    CALL("1", "POWER", "1", "1");
    CALL("3125", "POWER", "5", "5");
    CALL("0", "POWER", "0", "2");
    CALL(U, "POWER", "null", "3");
    CALL(U, "POWER", "2", U);
    CALL("1.5707963267948966", "RADIANS", "90");
    CALL("6.283185307179586", "RADIANS", "360");
    CALL("2", "ROUND", "2.4");
    CALL("3", "ROUND", "2.6");
    CALL("3", "ROUND", "2.5");
    CALL("-2", "ROUND", "-2.4");
    CALL("-3", "ROUND", "-2.6");
    CALL("-7", "ROUND", "-6.5");
    CALL("-1", "ROUND", "-0.5");
    CALL("1", "ROUND", "0.5");
    CALL("7", "ROUND", "6.5");
    CALL("1234.57", "ROUND", "1234.5678", "2");
    CALL("1200", "ROUND", "1234", "-2");
    CALL(U, "ROUND", "1.5", "0.5");
    CALL("-1", "SIGN", "-2");
    CALL("0", "SIGN", "0");
    CALL("1", "SIGN", "2");
    CALL("0.929607286611012", "SIN", "45.175643");
    CALL("4.123105625617661", "SQRT", "17");
    CALL("5", "SQRT", "25");
    CALL(U, "SQRT", "-1");
    CALL("9", "SQUARE", "3");
    CALL(U, "SQUARE", "null");
    CALL("16331239353195370", "TAN", "1.5707963267948966");
    CALL("-24.80651023035602", "TAN", "124.1332");
    CALL("2", "TRUNC", "2.37");
    CALL("-2", "TRUNC", "-2.78");
    CALL("0", "TRUNC", "0.0000714");
    CALL("3", "TRUNC", "3.141592653589793");
    /* NumberBin: documented examples; bin size 0 is undefined */
    CALL("100", "NumberBin", "37.752", "-100");
    CALL("30", "NumberBin", "37.752", "10");
    CALL("37", "NumberBin", "37.752", "1");
    CALL(U, "NumberBin", "37.752", "0");
    CALL("37.7", "NumberBin", "37.752", "0.1");
    CALL("37.75", "NumberBin", "37.752", "0.01");
    CALL("37", "NumberBin", "37.752");
    /* RAND: [0, 1) */
    for (int i = 0; i < 100; i++) {
        json_t *out = NULL;
        struct q_error err;
        assert_int_equal(q_builtin_call(q_builtin_find("RAND", 4), NULL, 0, NULL, &out, &err), 0);
        assert_true(json_is_number(out));
        assert_true(json_number_value(out) >= 0 && json_number_value(out) < 1);
        json_decref(out);
    }
}

static void test_int_math(void **state)
{
    (void)state;
    CALL("30", "IntAdd", "20", "10");
    CALL("20", "IntAdd", "20", "0");
    CALL(U, "IntAdd", "20", "0.10");
    CALL("9", "IntBitAnd", "15", "25");
    CALL("0", "IntBitAnd", "15", "0");
    CALL(U, "IntBitAnd", "15", "1.5");
    CALL("256", "IntBitLeftShift", "16", "4");
    CALL(U, "IntBitLeftShift", "16", "0.4");
    CALL("-66", "IntBitNot", "65");
    CALL("-1", "IntBitNot", "0");
    CALL(U, "IntBitNot", "0.1");
    CALL("124", "IntBitOr", "56", "100");
    CALL(U, "IntBitOr", "56", "0.1");
    CALL("1", "IntBitRightShift", "16", "4");
    CALL(U, "IntBitRightShift", "16", "0.4");
    CALL("92", "IntBitXor", "56", "100");
    CALL("0", "IntBitXor", "56", "56");
    CALL("5", "IntDiv", "10", "2");
    CALL("-5", "IntDiv", "10", "-2");
    CALL("5", "IntDiv", "-10", "-2");
    CALL(U, "IntDiv", "10", "0");
    CALL(U, "IntDiv", "10", "0.1");
    CALL("2", "IntMod", "12", "5");
    CALL("2", "IntMod", "12", "-5");
    CALL("-2", "IntMod", "-12", "-5");
    CALL("0", "IntMod", "15", "5");
    CALL(U, "IntMod", "12", "0");
    CALL("10", "IntMul", "5", "2");
    CALL("-10", "IntMul", "5", "-2");
    CALL(U, "IntMul", "5", "0.5");
    CALL("-25", "IntSub", "25", "50");
    CALL("10", "IntSub", "25", "15");
    CALL(U, "IntSub", "25", "2.5");
    CALL(U, "IntAdd", "\"1\"", "2");
}

static void test_arrays(void **state)
{
    (void)state;
    CALL("[\"apples\",\"strawberries\",\"bananas\"]", "ARRAY_CONCAT",
         "[\"apples\",\"strawberries\"]", "[\"bananas\"]");
    CALL("[1,2,3]", "ARRAY_CONCAT", "[1]", "[]", "[2,3]");
    CALL(U, "ARRAY_CONCAT", "[1]", "2");
    const char *coats = "[\"coats\",\"jackets\",\"sweatshirts\"]";
    const char *shirts = "[{\"category\":\"shirts\",\"color\":\"blue\"}]";
    CALL("true", "ARRAY_CONTAINS", coats, "\"coats\"");
    CALL("false", "ARRAY_CONTAINS", coats, "\"hoodies\"");
    CALL("true", "ARRAY_CONTAINS", shirts, "{\"category\":\"shirts\",\"color\":\"blue\"}");
    CALL("false", "ARRAY_CONTAINS", shirts, "{\"category\":\"shirts\"}");
    CALL("true", "ARRAY_CONTAINS", shirts, "{\"category\":\"shirts\"}", "true");
    CALL("false", "ARRAY_CONTAINS", shirts, "{\"category\":\"shorts\",\"color\":\"blue\"}", "true");
    CALL("true", "ARRAY_CONTAINS", shirts, "{}", "true");
    CALL("true", "ARRAY_CONTAINS", "[1,[2,{\"a\":1}]]", "[2,{\"a\":1}]");
    CALL("true", "ARRAY_CONTAINS", "[1.0]", "1");
    CALL("false", "ARRAY_CONTAINS", coats, U);
    CALL(U, "ARRAY_CONTAINS", "\"coats\"", "\"coats\"");
    CALL(U, "ARRAY_CONTAINS", coats, "\"coats\"", "1");
    CALL("true", "ARRAY_CONTAINS_ANY", "[1,true,\"3\",[1,2,3]]", "1", "true", "\"3\"", "[1,2,3]");
    CALL("true", "ARRAY_CONTAINS_ANY", "[1,2,3,4]", "2", "3", "4", "5");
    CALL("true", "ARRAY_CONTAINS_ANY", "[1,2,3,4]", "1", U);
    CALL("false", "ARRAY_CONTAINS_ANY", "[1,2,3,4]", "5", "6", "7", "8");
    CALL("false", "ARRAY_CONTAINS_ANY", "[]", "1", "2", "3");
    CALL(U, "ARRAY_CONTAINS_ANY", "[1,2,3,4]", "5", U);
    CALL("true", "ARRAY_CONTAINS_ALL", "[1,true,\"3\",[1,2,3]]", "1", "true", "\"3\"", "[1,2,3]");
    CALL("false", "ARRAY_CONTAINS_ALL", "[1,2,3,4]", "2", "5");
    CALL("false", "ARRAY_CONTAINS_ALL", "[]", "1");
    CALL(U, "ARRAY_CONTAINS_ALL", "[1,2]", "1", U);
    CALL("7", "ARRAY_LENGTH", "[70,86,92,99,85,90,82]");
    CALL("0", "ARRAY_LENGTH", "[]");
    CALL(U, "ARRAY_LENGTH", "null");
    const char *a7 = "[70,86,92,99,85,90,82]";
    CALL("[70,86,92,99,85,90,82]", "ARRAY_SLICE", a7, "0");
    CALL("[86,92,99,85,90,82]", "ARRAY_SLICE", a7, "1");
    CALL("[82]", "ARRAY_SLICE", a7, "-1");
    CALL("[90,82]", "ARRAY_SLICE", a7, "-2");
    CALL("[70,86,92]", "ARRAY_SLICE", a7, "0", "3");
    CALL("[70,86,92,99,85,90,82]", "ARRAY_SLICE", a7, "0", "12");
    CALL("[99,85,90,82]", "ARRAY_SLICE", a7, "3", "5");
    CALL("[90]", "ARRAY_SLICE", a7, "-2", "1");
    CALL("[]", "ARRAY_SLICE", a7, "7");
    CALL("[]", "ARRAY_SLICE", a7, "100", "2");
    CALL("[70,86,92,99,85,90,82]", "ARRAY_SLICE", a7, "-100");
    CALL("[]", "ARRAY_SLICE", a7, "1", "-1");
    CALL(U, "ARRAY_SLICE", a7, "\"1\"");
    CALL(U, "ARRAY_SLICE", "{}", "1");
    CALL("\"adventure\"", "CHOOSE", "1", "\"adventure\"", "\"works\"", "true", "[1]");
    CALL("[1]", "CHOOSE", "4", "\"adventure\"", "\"works\"", "true", "[1]");
    CALL(U, "CHOOSE", "5", "\"adventure\"", "\"works\"", "true", "[1]");
    CALL(U, "CHOOSE", "0", "\"adventure\"");
    CALL("123", "IIF", "true", "123", "456");
    CALL("456", "IIF", "false", "123", "456");
    CALL("456", "IIF", "123", "123", "456");
    CALL("456", "IIF", "\"ABC\"", "123", "456");
    CALL("456", "IIF", "[1,2,3]", "123", "456");
    CALL(U, "IIF", U, "123", U);
    const char *ab = "{\"a\":\"12345\",\"b\":\"67890\"}";
    CALL("[{\"k\":\"a\",\"v\":\"12345\"},{\"k\":\"b\",\"v\":\"67890\"}]", "ObjectToArray", ab);
    CALL("[{\"name\":\"a\",\"v\":\"12345\"},{\"name\":\"b\",\"v\":\"67890\"}]", "ObjectToArray", ab,
         "\"name\"");
    CALL("[{\"key\":\"a\",\"value\":\"12345\"},{\"key\":\"b\",\"value\":\"67890\"}]",
         "ObjectToArray", ab, "\"key\"", "\"value\"");
    CALL("[]", "ObjectToArray", "{}");
    CALL(U, "ObjectToArray", "[1]");
    CALL("[3,4]", "SetIntersect", "[1,2,3,4]", "[3,4,5,6]");
    CALL("[]", "SetIntersect", "[1,2,3,4]", "[]");
    CALL("[1]", "SetIntersect", "[1,2,3,4]", "[1,1,1,1]");
    CALL("[]", "SetIntersect", "[1,2,3,4]", "[\"A\",\"B\"]");
    CALL("[\"A\",1]", "SetIntersect", "[1,2,\"A\",\"B\"]", "[\"A\",1]");
    CALL("[{\"a\":[1]}]", "SetIntersect", "[{\"a\":[1]},2]", "[{\"a\":[1]},{\"a\":[1]}]");
    CALL(U, "SetIntersect", "[1]", "1");
    CALL("[1,2,3,4,5,6]", "SetUnion", "[1,2,3,4]", "[3,4,5,6]");
    CALL("[1,2,3,4]", "SetUnion", "[1,2,3,4]", "[]");
    CALL("[1,2,3,4]", "SetUnion", "[1,2,3,4]", "[1,1,1,1]");
    CALL("[1,2,\"A\",\"B\"]", "SetUnion", "[1,2,\"A\",\"B\"]", "[\"A\",1]");
    CALL("[1]", "SetUnion", "[1,1]", "[]");
    CALL(U, "SetUnion", U, "[1]");
}

static void test_strings(void **state)
{
    (void)state;
    const char *aw = "\"AdventureWorks\"";
    CALL("\"adventureworks\"", "CONCAT", "\"adventure\"", "\"works\"");
    CALL("\"abc\"", "CONCAT", "\"a\"", "\"\"", "\"b\"", "\"c\"");
    CALL(U, "CONCAT", "\"a\"", "1");
    CALL(U, "CONCAT", "\"a\"", U);
    CALL("true", "CONTAINS", aw, "\"Adventure\"");
    CALL("true", "CONTAINS", aw, "\"Works\"");
    CALL("false", "CONTAINS", aw, "\"adventure\"");
    CALL("false", "CONTAINS", aw, "\"adventure\"", "false");
    CALL("true", "CONTAINS", aw, "\"works\"", "true");
    CALL("false", "CONTAINS", aw, "\"Contoso\"");
    CALL("true", "CONTAINS", aw, "\"\"");
    CALL(U, "CONTAINS", aw, "1");
    CALL(U, "CONTAINS", aw, "\"a\"", "\"yes\"");
    CALL("false", "ENDSWITH", aw, "\"Adventure\"");
    CALL("true", "ENDSWITH", aw, "\"Works\"");
    CALL("false", "ENDSWITH", aw, "\"works\"");
    CALL("true", "ENDSWITH", aw, "\"works\"", "true");
    CALL("false", "STARTSWITH", aw, "\"Works\"");
    CALL("true", "STARTSWITH", aw, "\"Adventure\"");
    CALL("false", "STARTSWITH", aw, "\"adventure\"");
    CALL("true", "STARTSWITH", aw, "\"adventure\"", "true");
    CALL(U, "STARTSWITH", "1", "\"1\"");
    CALL("true", "StringEquals", aw, aw);
    CALL("false", "StringEquals", aw, "\"adventureworks\"");
    CALL("true", "StringEquals", aw, "\"adventureworks\"", "true");
    CALL("0", "INDEX_OF", aw, "\"A\"");
    CALL("13", "INDEX_OF", aw, "\"s\"");
    CALL("0", "INDEX_OF", aw, "\"Adventure\"");
    CALL("9", "INDEX_OF", aw, "\"Works\"");
    CALL("5", "INDEX_OF", aw, "\"tureW\"");
    CALL("-1", "INDEX_OF", aw, "\"Cosmos\"");
    CALL("9", "INDEX_OF", aw, "\"Works\"", "5");
    CALL("-1", "INDEX_OF", aw, "\"Adventure\"", "5");
    CALL("-1", "INDEX_OF", aw, "\"aD\"");
    CALL("-1", "INDEX_OF", aw, "\"A\"", "100");
    CALL("13", "LastIndexOf", aw, "\"s\"");
    CALL("5", "LastIndexOf", "\"abcabc\"", "\"c\"");
    CALL("2", "LastIndexOf", "\"abcabc\"", "\"c\"", "4");
    CALL("-1", "LastIndexOf", "\"abcabc\"", "\"c\"", "1");
    CALL("-1", "LastIndexOf", aw, "\"x\"");
    CALL("\"\"", "LEFT", aw, "0");
    CALL("\"A\"", "LEFT", aw, "1");
    CALL("\"Adven\"", "LEFT", aw, "5");
    CALL("\"AdventureWorks\"", "LEFT", aw, "14");
    CALL("\"AdventureWorks\"", "LEFT", aw, "100");
    CALL(U, "LEFT", aw, U);
    CALL("\"\"", "RIGHT", aw, "0");
    CALL("\"s\"", "RIGHT", aw, "1");
    CALL("\"Works\"", "RIGHT", aw, "5");
    CALL("\"AdventureWorks\"", "RIGHT", aw, "100");
    CALL("14", "LENGTH", aw);
    CALL("0", "LENGTH", "\"\"");
    CALL(U, "LENGTH", "null");
    CALL(U, "LENGTH", "0");
    CALL(U, "LENGTH", "[\"Adventure\",\"Works\"]");
    CALL("\"adventure_works\"", "LOWER", "\"ADVENTURE_WORKS\"");
    CALL("\"adventureworks\"", "LOWER", "\"adventureWorks\"");
    CALL("\"ADVENTUREWORKS\"", "UPPER", "\"adventureworks\"");
    CALL("\"ADVENTURE_WORKS\"", "UPPER", "\"ADVENTURE_WORKS\"");
    CALL(U, "UPPER", "1");
    CALL("\"AdventureWorks\"", "LTRIM", "\"  AdventureWorks\"");
    CALL("\"AdventureWorks  \"", "LTRIM", "\"  AdventureWorks  \"");
    CALL("\"AdventureWorks\"", "LTRIM", aw, "\"Works\"");
    CALL("\"Works\"", "LTRIM", aw, "\"Adventure\"");
    CALL("\"\"", "LTRIM", aw, aw);
    CALL("\"AdventureWorks\"", "LTRIM", aw, "\"\"");
    CALL("\"  AdventureWorks\"", "RTRIM", "\"  AdventureWorks  \"");
    CALL("\"Adventure\"", "RTRIM", aw, "\"Works\"");
    CALL("\"AdventureWorks\"", "RTRIM", aw, "\"Adventure\"");
    CALL("\"\"", "RTRIM", aw, aw);
    CALL("\"AdventureWorks\"", "TRIM", "\"   AdventureWorks   \"");
    CALL("\"---AdventureWorks---\"", "TRIM", "\"---AdventureWorks---\"");
    CALL("\"AdventureWorks\"", "TRIM", "\"___AdventureWorks___\"", "\"_\"");
    CALL("\" AdventureWorks \"", "TRIM", "\"-- AdventureWorks --\"", "\"-\"");
    CALL("\"AdventureWorks\"", "TRIM", "\"-_-AdventureWorks-_-\"", "\"-_\"");
    CALL("\"x\"", "TRIM", "\"\\t\\n x \\r\"");
    CALL(U, "TRIM", "1");
    CALL(U, "TRIM", aw, "1");
    CALL("\"AdventureWorksLT2\"", "REPLACE", "\"AdventureWorksLT\"", "\"LT\"", "\"LT2\"");
    CALL("\"xbxb\"", "REPLACE", "\"abab\"", "\"a\"", "\"x\"");
    CALL("\"bb\"", "REPLACE", "\"abab\"", "\"a\"", "\"\"");
    CALL("\"abab\"", "REPLACE", "\"abab\"", "\"\"", "\"x\"");
    CALL(U, "REPLACE", "\"abab\"", "\"a\"", "1");
    CALL("\"CosmicCosmicCosmic\"", "REPLICATE", "\"Cosmic\"", "3");
    CALL("\"\"", "REPLICATE", "\"Cosmic\"", "0");
    CALL(U, "REPLICATE", "\"Cosmic\"", "-1");
    CALL(U, "REPLICATE", "\"ab\"", "5001"); /* 10,002 characters */
    CALL("\"skroWerutnevdA\"", "REVERSE", aw);
    CALL("\"\"", "REVERSE", "\"\"");
    CALL("\"Adventure\"", "SUBSTRING", aw, "0", "9");
    CALL("\"Works\"", "SUBSTRING", aw, "9", "5");
    CALL("\"AdventureWorks\"", "SUBSTRING", aw, "0", "14");
    CALL("\"\"", "SUBSTRING", aw, "0", "-1");
    CALL("\"\"", "SUBSTRING", aw, "20", "2");
    CALL(U, "SUBSTRING", aw, U, "2");
    /* REPLICATE's cap is in characters */
    json_t *s = json_string("ab");
    json_t *n = json_real(5000);
    json_t *args[] = {s, n};
    json_t *out = NULL;
    struct q_error err;
    assert_int_equal(q_builtin_call(q_builtin_find("REPLICATE", 9), args, 2, NULL, &out, &err), 0);
    assert_int_equal(json_string_length(out), 10000);
    json_decref(out);
    json_decref(s);
    json_decref(n);
}

static void test_unicode(void **state)
{
    (void)state;
    /* "héllo€😀": 7 code points, 13 bytes */
    const char *u = "\"h\xc3\xa9llo\xe2\x82\xac\xf0\x9f\x98\x80\"";
    CALL("7", "LENGTH", u);
    CALL("\"\xf0\x9f\x98\x80\"", "RIGHT", u, "1");
    CALL("\"h\xc3\xa9\"", "LEFT", u, "2");
    CALL("\"\xc3\xa9llo\xe2\x82\xac\"", "SUBSTRING", u, "1", "5");
    CALL("5", "INDEX_OF", u, "\"\xe2\x82\xac\"");
    CALL("6", "INDEX_OF", u, "\"\xf0\x9f\x98\x80\"", "2");
    CALL("1", "LastIndexOf", u, "\"\xc3\xa9\"");
    CALL("\"\xf0\x9f\x98\x80\xe2\x82\xac"
         "oll\xc3\xa9h\"",
         "REVERSE", u);
    CALL("\"H\xc3\x89LLO\xe2\x82\xac\xf0\x9f\x98\x80\"", "UPPER", u);
    CALL("\"stra\xc3\x9f"
         "e \xce\xb1\xce\xb2\"",
         "LOWER",
         "\"STRA\xc3\x9f"
         "E \xce\x91\xce\x92\"");
    CALL("true", "CONTAINS", u, "\"\xc3\x89L\"", "true");
    CALL("true", "StringEquals", "\"\xc3\xa9\"", "\"\xc3\x89\"", "true");
    CALL("\"\xc3\xa9\"", "TRIM", "\"\xe2\x82\xac\xc3\xa9\xe2\x82\xac\"", "\"\xe2\x82\xac\"");
    CALL("\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\"", "REPLICATE", "\"\xf0\x9f\x98\x80\"", "2");
    /* strings with NUL */
    CALL("3", "LENGTH", "\"a\\u0000b\"");
    CALL("\"b\\u0000a\"", "REVERSE", "\"a\\u0000b\"");
    CALL("2", "INDEX_OF", "\"a\\u0000b\"", "\"b\"");
    CALL("true", "ENDSWITH", "\"a\\u0000b\"", "\"\\u0000b\"");
    CALL("\"a\\u0000b!\"", "CONCAT", "\"a\\u0000b\"", "\"!\"");
}

static void test_conversions(void **state)
{
    (void)state;
    CALL("\"125\"", "ToString", "125");
    CALL("\"0.1234\"", "ToString", "0.1234");
    CALL("\"false\"", "ToString", "false");
    CALL("\"null\"", "ToString", "null");
    CALL("\"[1,2,3]\"", "ToString", "[ 1, 2, 3 ]");
    CALL("\"{\\\"department\\\":\\\"Bicycles\\\"}\"", "ToString",
         "{ \"department\" : \"Bicycles\" }");
    CALL("\"Hello World\"", "ToString", "\"Hello World\"");
    CALL("\"1e-7\"", "ToString", "0.0000001");
    CALL(U, "ToString", U);
    CALL("100", "StringToNumber", "\"100\"");
    CALL("3.14", "StringToNumber", "\"3.14\"");
    CALL("60", "StringToNumber", "\"   60   \"");
    CALL("-1.79769e+308", "StringToNumber", "\"-1.79769e+308\"");
    CALL(U, "StringToNumber", "\"Hello\"");
    CALL(U, "StringToNumber", "\"1e999\"");
    CALL(U, "StringToNumber", "\"0x10\"");
    CALL(U, "StringToNumber", U);
    CALL(U, "StringToNumber", "null");
    CALL(U, "StringToNumber", "5");
    CALL("true", "StringToBoolean", "\"true\"");
    CALL("true", "StringToBoolean", "\"true  \"");
    CALL("false", "StringToBoolean", "\"  false\"");
    CALL("false", "StringToBoolean", "\"  false  \"");
    CALL(U, "StringToBoolean", "true");
    CALL(U, "StringToBoolean", "\"TRUE\"");
    CALL(U, "StringToBoolean", "null");
    CALL("null", "StringToNull", "\"null\"");
    CALL("null", "StringToNull", "\"  null  \"");
    CALL(U, "StringToNull", "\"NULL\"");
    CALL(U, "StringToNull", "\"Null\"");
    CALL(U, "StringToNull", "null");
    CALL(U, "StringToNull", U);
    CALL("[]", "StringToArray", "\"[]\"");
    CALL("[\"coats\",\"gloves\",\"hats\"]", "StringToArray",
         "\"[ \\\"coats\\\", \\\"gloves\\\", \\\"hats\\\" ]\"");
    CALL("[{\"types\":[\"coats\",\"gloves\"]},[\"hats\"],76,false,null]", "StringToArray",
         "\"[ { \\\"types\\\": [ \\\"coats\\\", \\\"gloves\\\" ] }, [ \\\"hats\\\" ], 76, false, "
         "null ]\"");
    CALL(U, "StringToArray", "\"[ 'coats', 'gloves', 'hats' ]\"");
    CALL(U, "StringToArray", "\"{}\"");
    CALL(U, "StringToArray", "null");
    CALL("{}", "StringToObject", "\"{}\"");
    CALL("{\"isAvailable\":true}", "StringToObject", "\"{\\\"isAvailable\\\": true}\"");
    CALL("{\"division\":{\"name\":\"Sales\"}}", "StringToObject",
         "\"{\\\"division\\\": {\\\"name\\\": \\\"Sales\\\"}}\"");
    CALL(U, "StringToObject", "\"{'price': 27.55}\"");
    CALL(U, "StringToObject", "\"[]\"");
}

static void test_regex(void **state)
{
    (void)state;
    CALL("false", "RegexMatch", "\"abcd\"", "\"ABC\"");
    CALL("true", "RegexMatch", "\"abcd\"", "\"ABC\"", "\"i\"");
    CALL("true", "RegexMatch", "\"abcd\"", "\"ab.\"", "\"\"");
    CALL("true", "RegexMatch", "\"abcd\"", "\"ab c\"", "\"x\"");
    CALL("true", "RegexMatch", "\"abcd\"", "\"aB c\"", "\"ix\"");
    CALL("true", "RegexMatch", "\"03a\"", "\"[0-9]\"");
    CALL("true", "RegexMatch", "\"salt3824908\"", "\"salt{1}\"");
    CALL("true", "RegexMatch", "\"shame\"", "\"s....\"", "\"i\"");
    CALL("true", "RegexMatch", "\"Tecozow coat\"", "\" coat{1}\"");
    CALL("false", "RegexMatch", "\"a\\nb\"", "\"^b\"");
    CALL("true", "RegexMatch", "\"a\\nb\"", "\"^b\"", "\"m\"");
    CALL("false", "RegexMatch", "\"a\\nb\"", "\"a.b\"");
    CALL("true", "RegexMatch", "\"a\\nb\"", "\"a.b\"", "\"s\"");
    CALL("true", "RegexMatch", "\"\xc3\xa9t\xc3\xa9\"", "\"^.{3}$\""); /* UTF mode */
    CALL("true", "RegexMatch", "\"a\\u0000b\"", "\"a\\\\x00b\"");
    CALL(U, "RegexMatch", "\"abcd\"", "\"a\"", "\"q\"");
    CALL(U, "RegexMatch", "1", "\"a\"");
    CALL(U, "RegexMatch", "\"a\"", U);
    /* same pattern twice (compiled once), then another */
    CALL("true", "RegexMatch", "\"xyz\"", "\"y\"");
    CALL("false", "RegexMatch", "\"xzz\"", "\"y\"");
    CALL("false", "RegexMatch", "\"xyz\"", "\"Y\"");
    /* a pattern that does not compile is a 400 error */
    int id = q_builtin_find("RegexMatch", 10);
    json_t *a[] = {json_string("abc"), json_string("a(b")};
    json_t *out = NULL;
    struct q_error err = {0};
    assert_int_equal(q_builtin_call(id, a, 2, NULL, &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.msg, "regular expression"));
    json_decref(a[1]);
    /* catastrophic backtracking stops at the match limit: undefined */
    char subject[64];
    memset(subject, 'a', 40);
    strcpy(subject + 40, "!");
    a[1] = json_string("^(a+)+$");
    json_decref(a[0]);
    a[0] = json_string(subject);
    assert_int_equal(q_builtin_call(id, a, 2, NULL, &out, &err), 0);
    assert_null(out);
    json_decref(a[0]);
    json_decref(a[1]);
}

static void test_datetime(void **state)
{
    (void)state;
    const char *d = "\"2020-07-03T00:00:00.0000000\"";
    CALL("\"2021-07-03T00:00:00.0000000Z\"", "DateTimeAdd", "\"yyyy\"", "1", d);
    CALL("\"2020-08-03T00:00:00.0000000Z\"", "DateTimeAdd", "\"mm\"", "1", d);
    CALL("\"2020-07-04T00:00:00.0000000Z\"", "DateTimeAdd", "\"dd\"", "1", d);
    CALL("\"2020-07-03T01:00:00.0000000Z\"", "DateTimeAdd", "\"hh\"", "1", d);
    CALL("\"2019-07-03T00:00:00.0000000Z\"", "DateTimeAdd", "\"yyyy\"", "-1", d);
    CALL("\"2020-06-03T00:00:00.0000000Z\"", "DateTimeAdd", "\"mm\"", "-1", d);
    CALL("\"2020-07-02T00:00:00.0000000Z\"", "DateTimeAdd", "\"dd\"", "-1", d);
    CALL("\"2020-07-02T23:00:00.0000000Z\"", "DateTimeAdd", "\"hh\"", "-1", d);
    CALL("\"2020-07-02T23:59:35.0000000Z\"", "DateTimeAdd", "\"ss\"", "-25", d);
    CALL("\"2020-07-03T00:00:00.0010000Z\"", "DateTimeAdd", "\"millisecond\"", "1", d);
    CALL("\"2020-07-03T00:00:00.0000010Z\"", "DateTimeAdd", "\"mcs\"", "1", d);
    CALL("\"2020-07-03T00:00:00.0000002Z\"", "DateTimeAdd", "\"ns\"", "250", d);
    CALL("\"2020-07-03T00:05:00.0000000Z\"", "DateTimeAdd", "\"n\"", "5", d);
    CALL("\"2020-02-29T00:00:00.0000000Z\"", "DateTimeAdd", "\"m\"", "1",
         "\"2020-01-31T00:00:00Z\"");
    CALL("\"2021-02-28T00:00:00.0000000Z\"", "DateTimeAdd", "\"yy\"", "1",
         "\"2020-02-29T00:00:00Z\"");
    CALL(U, "DateTimeAdd", "\"fortnight\"", "1", d);
    CALL(U, "DateTimeAdd", "\"dd\"", "1.5", d);
    CALL(U, "DateTimeAdd", "\"dd\"", "1", "\"2020-07-03\"");
    CALL(U, "DateTimeAdd", "\"yyyy\"", "1", "\"9999-01-01T00:00:00Z\"");
    CALL(U, "DateTimeAdd", "\"dd\"", "-1", "\"0001-01-01T00:00:00Z\"");
    CALL(U, "DateTimeAdd", "\"dd\"", "1e300", d);

    const char *p = "\"2016-05-29T08:30:00.1301617\"";
    CALL("2016", "DateTimePart", "\"yyyy\"", p);
    CALL("5", "DateTimePart", "\"mm\"", p);
    CALL("29", "DateTimePart", "\"dd\"", p);
    CALL("8", "DateTimePart", "\"hh\"", p);
    CALL("30", "DateTimePart", "\"mi\"", p);
    CALL("0", "DateTimePart", "\"ss\"", p);
    CALL("130", "DateTimePart", "\"ms\"", p);
    CALL("130161", "DateTimePart", "\"mcs\"", p);
    CALL("130161700", "DateTimePart", "\"ns\"", p);
    CALL(U, "DateTimePart", "\"week\"", p);
    CALL(U, "DateTimePart", "\"yyyy\"", "\"2016-02-30T00:00:00Z\"");
    CALL(U, "DateTimePart", "\"yyyy\"", "\"2016-05-29T24:00:00Z\"");
    CALL(U, "DateTimePart", "\"yyyy\"", "\"2016-05-29T08:30:00.12345678Z\"");
    CALL(U, "DateTimePart", "\"yyyy\"", "\"2016-05-29T08:30:00.Z\"");
    CALL(U, "DateTimePart", "\"yyyy\"", "\"2016-05-29T08:30:00Zx\"");
    CALL(U, "DateTimePart", "\"yyyy\"", "20160529");

    const char *a = "\"2019-02-04T16:00:00.0000000\"", *b = "\"2018-03-05T05:00:00.0000000\"";
    CALL("-1", "DateTimeDiff", "\"yyyy\"", a, b);
    CALL("-11", "DateTimeDiff", "\"mm\"", a, b);
    CALL("-336", "DateTimeDiff", "\"dd\"", a, b);
    CALL("-8075", "DateTimeDiff", "\"hh\"", a, b);
    CALL("-29070000", "DateTimeDiff", "\"ss\"", a, b);
    CALL("1", "DateTimeDiff", "\"yyyy\"", b, a);
    CALL("11", "DateTimeDiff", "\"mm\"", b, a);
    CALL("336", "DateTimeDiff", "\"dd\"", b, a);
    CALL("8075", "DateTimeDiff", "\"hh\"", b, a);
    CALL("29070000", "DateTimeDiff", "\"ss\"", b, a);
    /* boundaries crossed, not elapsed time */
    CALL("1", "DateTimeDiff", "\"yyyy\"", "\"2019-12-31T23:59:59Z\"", "\"2020-01-01T00:00:00Z\"");
    CALL("1", "DateTimeDiff", "\"dd\"", "\"2019-12-31T23:59:59Z\"", "\"2020-01-01T00:00:00Z\"");
    CALL("1000", "DateTimeDiff", "\"ms\"", "\"2020-01-01T00:00:00Z\"", "\"2020-01-01T00:00:01Z\"");
    CALL("100", "DateTimeDiff", "\"ns\"", "\"2020-01-01T00:00:00Z\"",
         "\"2020-01-01T00:00:00.0000001Z\"");
    CALL(U, "DateTimeDiff", "\"dd\"", a, "\"yesterday\"");

    const char *bin = "\"2021-01-08T18:35:00.0000000\"";
    CALL("\"2021-01-08T00:00:00.0000000Z\"", "DateTimeBin", bin, "\"dd\"");
    CALL("\"2021-01-08T18:00:00.0000000Z\"", "DateTimeBin", bin, "\"hh\"");
    CALL("\"2021-01-08T18:35:00.0000000Z\"", "DateTimeBin", bin, "\"ss\"");
    CALL("\"2021-01-08T15:00:00.0000000Z\"", "DateTimeBin", bin, "\"hh\"", "5");
    CALL("\"2021-01-07T00:00:00.0000000Z\"", "DateTimeBin", bin, "\"dd\"", "7");
    CALL("\"2021-01-04T00:00:00.0000000Z\"", "DateTimeBin", bin, "\"dd\"", "7",
         "\"1601-01-01T00:00:00.0000000\"");
    CALL(U, "DateTimeBin", bin, "\"dd\"", "0");
    CALL(U, "DateTimeBin", bin, "\"dd\"", "-1");
    CALL(U, "DateTimeBin", bin, "\"dd\"", "1.5");
    CALL(U, "DateTimeBin", bin, "\"yyyy\"");
    CALL(U, "DateTimeBin", bin, "\"dd\"", "1", "\"1600-12-31T00:00:00Z\"");

    CALL("\"2017-04-20T00:00:00.0000000Z\"", "DateTimeFromParts", "2017", "4", "20");
    CALL("\"2017-04-20T00:00:00.0000000Z\"", "DateTimeFromParts", "2017", "4", "20", "0", "0", "0",
         "0");
    CALL("\"2017-04-20T13:15:20.3456789Z\"", "DateTimeFromParts", "2017", "4", "20", "13", "15",
         "20", "3456789");
    CALL("\"2017-04-20T13:15:00.0000000Z\"", "DateTimeFromParts", "2017", "4", "20", "13", "15");
    CALL(U, "DateTimeFromParts", "-2000", "-1", "-1");
    CALL(U, "DateTimeFromParts", "2017", "2", "29");
    CALL(U, "DateTimeFromParts", "2017", "4", "20.5");
    CALL(U, "DateTimeFromParts", "2017", "4", "20", "0", "0", "0", "10000000");

    CALL("14320368000000000", "DateTimeToTicks", "\"2015-05-19T12:00:00.0000000\"");
    CALL("1432036800000", "DateTimeToTimestamp", "\"2015-05-19T12:00:00.0000000\"");
    CALL("-11644473600000", "DateTimeToTimestamp", "\"1601-01-01T00:00:00Z\"");
    CALL(U, "DateTimeToTicks", "\"now\"");
    CALL("\"2020-08-13T23:19:54.3002652Z\"", "TicksToDateTime", "15973607943002652");
    CALL("\"1970-01-01T00:00:00.0000000Z\"", "TicksToDateTime", "0");
    CALL("\"1601-01-01T00:00:00.0000000Z\"", "TicksToDateTime", "-116444736000000000");
    CALL(U, "TicksToDateTime", "\"0\"");
    CALL(U, "TicksToDateTime", "1e300");
    CALL("\"2020-08-13T23:19:54.3000000Z\"", "TimestampToDateTime", "1597360794300");
    CALL("\"1970-01-01T00:00:00.0000000Z\"", "TimestampToDateTime", "0");
    CALL("\"1601-01-01T00:00:00.0000000Z\"", "TimestampToDateTime", "-11644473600000");
    CALL("\"9999-12-31T23:59:59.9990000Z\"", "TimestampToDateTime", "253402300799999");
    CALL(U, "TimestampToDateTime", "253402300800000");
    /* the current time comes from the context */
    CALL0("\"2020-08-13T23:19:54.3000000Z\"", "GetCurrentDateTime");
    CALL0("\"2020-08-13T23:19:54.3000000Z\"", "GetCurrentDateTimeStatic");
    CALL0("15973607943000000", "GetCurrentTicks");
    CALL0("15973607943000000", "GetCurrentTicksStatic");
    CALL0("1597360794300", "GetCurrentTimestamp");
    CALL0("1597360794300", "GetCurrentTimestampStatic");
}

/* Round trips across the whole calendar: parse(format(t)) == t. */
static void test_datetime_round_trip(void **state)
{
    (void)state;
    int to = q_builtin_find("TicksToDateTime", 15), from = q_builtin_find("DateTimeToTicks", 15);
    for (int i = 0; i < 2000; i++) {
        /* ticks in [0001-01-01, 9999-12-31] */
        double t = -62135596800.0e7 + (double)(next() % 3155378975999999999ULL);
        t = floor(t);
        json_t *tv = json_real(t), *s = NULL, *back = NULL;
        struct q_error err;
        assert_int_equal(q_builtin_call(to, &tv, 1, NULL, &s, &err), 0);
        assert_non_null(s);
        assert_int_equal(q_builtin_call(from, &s, 1, NULL, &back, &err), 0);
        assert_non_null(back);
        assert_true(fabs(json_number_value(back) - t) <= 512); /* double precision */
        json_decref(tv);
        json_decref(s);
        json_decref(back);
    }
}

/* Every built-in with every combination of awkward values (undefined,
 * each type, empty and mixed arrays, strings with a NUL and non-ASCII,
 * huge and negative numbers) at each arity it takes, up to three
 * arguments: a result or undefined, or a 400; never a crash (ASan and
 * UBSan run this too) and never another status. */
static void test_every_builtin_hostile(void **state)
{
    (void)state;
    const char *texts[] = {"null",
                           "true",
                           "0",
                           "-1.5",
                           "1e300",
                           "3",
                           "\"\"",
                           "\"ab\\u0000c\"",
                           "\"h\u00e9llo w\u00f6rld\"",
                           "\"2024-01-10\"",
                           "\"yyyy-MM-dd f F t\"",
                           "[]",
                           "[1,\"a\",null,[2],{\"k\":1}]",
                           "[3,1,2]",
                           "{}",
                           "{\"a\":[1]}"};
    enum { NV = sizeof texts / sizeof *texts + 1 };
    json_t *vals[NV];
    vals[0] = NULL; /* undefined */
    for (size_t i = 1; i < NV; i++) {
        vals[i] = doc_parse(texts[i - 1], strlen(texts[i - 1]), NULL);
        assert_non_null(vals[i]);
    }
    struct q_ctx ctx = {1700000000000};
    int n_fns = 0;
    size_t calls = 0, defined = 0;
    for (int id = 0; *q_builtin_name(id); id++, n_fns++) {
        int min, max;
        q_builtin_arity(id, &min, &max);
        int top = max < 0 || max > 3 ? 3 : max;
        for (int n = min; n <= top; n++) {
            size_t combos = 1;
            for (int k = 0; k < n; k++)
                combos *= NV;
            for (size_t c = 0; c < combos; c++) {
                json_t *args[3] = {NULL, NULL, NULL};
                for (int k = 0, r = (int)c; k < n; k++, r /= NV)
                    args[k] = vals[r % NV];
                json_t *out = NULL;
                struct q_error err = {0};
                calls++;
                if (q_builtin_call(id, args, (size_t)n, &ctx, &out, &err) != 0) {
                    if (err.status != 400)
                        fail_msg("%s with %d arguments (combination %zu): status %d",
                                 q_builtin_name(id), n, c, err.status);
                    assert_null(out);
                }
                defined += out != NULL;
                json_decref(out);
            }
        }
    }
    assert_true(n_fns > 100);
    /* some results: not every call can have been refused for its types */
    assert_true(defined > calls / 100);
    print_message("%d built-ins, %zu calls, %zu defined results\n", n_fns, calls, defined);
    for (size_t i = 1; i < NV; i++)
        json_decref(vals[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmp_types),
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_key_order),
        cmocka_unit_test(test_builtin_table),
        cmocka_unit_test(test_type_checks),
        cmocka_unit_test(test_math),
        cmocka_unit_test(test_int_math),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_datetime),
        cmocka_unit_test(test_datetime_round_trip),
        cmocka_unit_test(test_every_builtin_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
