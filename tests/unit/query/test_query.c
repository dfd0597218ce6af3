/*
 * test_query.c — the query engine (query.h): parsing and its limits,
 * Cosmos semantics of operators, projections, FROM/JOIN, subqueries,
 * aggregates, GROUP BY, DISTINCT, ORDER BY, OFFSET/LIMIT/TOP, the
 * streaming contract, and the planner's view (q_info, q_sargs, q_order).
 *
 * Expected results come from the Cosmos DB for NoSQL documentation (its
 * examples and stated rules), not from running this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "doc/doc.h"
#include "query/query.h"

static json_t *J(const char *text)
{
    json_t *v = doc_parse(text, strlen(text), NULL);
    if (!v)
        fail_msg("bad JSON in test: %s", text);
    return v;
}

static struct q_query *parse_ok(const char *text, const char *params)
{
    struct q_error err;
    json_t *p = params ? J(params) : NULL;
    struct q_query *q = q_parse(text, strlen(text), p, &err);
    json_decref(p);
    if (!q)
        fail_msg("parse failed: %s\n  query: %s", err.msg, text);
    return q;
}

/* Parse must fail with 400; returns the error for further checks. */
static struct q_error parse_bad_len(const char *text, size_t len, const char *params)
{
    struct q_error err;
    json_t *p = params ? J(params) : NULL;
    struct q_query *q = q_parse(text, len, p, &err);
    json_decref(p);
    if (q) {
        q_free(q);
        fail_msg("parse should fail: %.200s", text);
    }
    assert_int_equal(err.status, 400);
    return err;
}

static struct q_error parse_bad(const char *text)
{
    return parse_bad_len(text, strlen(text), NULL);
}

static void expect_error(const char *text, const char *fragment)
{
    struct q_error err = parse_bad(text);
    if (!strstr(err.msg, fragment))
        fail_msg("error for %s\n  was: %s\n  want fragment: %s", text, err.msg, fragment);
}

/* Run a query over the documents of docs (a JSON array), one feed each. */
static json_t *run_q(const char *text, const char *params, const char *docs)
{
    struct q_query *q = parse_ok(text, params);
    struct q_ctx ctx = {1700000000000};
    struct q_exec *x = q_exec_new(q, &ctx);
    assert_non_null(x);
    json_t *in = J(docs ? docs : "[]");
    json_t *out = json_array();
    struct q_error err;
    size_t i;
    json_t *d;
    json_array_foreach(in, i, d)
    {
        if (q_exec_feed(x, d, out, &err) != 0)
            fail_msg("feed failed: %s", err.msg);
    }
    if (q_exec_finish(x, out, &err) != 0)
        fail_msg("finish failed: %s", err.msg);
    q_exec_free(x);
    q_free(q);
    json_decref(in);
    return out;
}

static void expect_rows(const char *text, const char *params, const char *docs, const char *want)
{
    json_t *out = run_q(text, params, docs);
    json_t *w = J(want);
    if (!doc_equal(out, w)) {
        char *got = doc_dump(out, NULL);
        fail_msg("query %s\n  got  %s\n  want %s", text, got, want);
    }
    json_decref(out);
    json_decref(w);
}

static int cmp_dump(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rows in any order (GROUP BY gives no order guarantee). */
static void expect_rows_unordered(const char *text, const char *docs, const char *want)
{
    json_t *out = run_q(text, NULL, docs);
    json_t *w = J(want);
    assert_int_equal(json_array_size(out), json_array_size(w));
    size_t n = json_array_size(w);
    char **a = calloc(n + 1, sizeof *a), **b = calloc(n + 1, sizeof *b);
    for (size_t i = 0; i < n; i++) {
        a[i] = doc_dump(json_array_get(out, i), NULL);
        b[i] = doc_dump(json_array_get(w, i), NULL);
    }
    qsort(a, n, sizeof *a, cmp_dump);
    qsort(b, n, sizeof *b, cmp_dump);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(a[i], b[i]) != 0)
            fail_msg("query %s\n  row %s\n  want %s", text, a[i], b[i]);
    }
    for (size_t i = 0; i < n; i++) {
        free(a[i]);
        free(b[i]);
    }
    free(a);
    free(b);
    json_decref(out);
    json_decref(w);
}

/* ---- parsing ---- */

static void test_parse_good(void **state)
{
    (void)state;
    static const char *good[] = {
        "SELECT * FROM c",
        "select * from c where c.a = 1",
        "SELECT * FROM root r",
        "SELECT * FROM c AS x WHERE x.id = 'a'",
        "SELECT c.a, c.b AS bee, c[\"x y\"] FROM c",
        "SELECT VALUE c.a FROM c",
        "SELECT DISTINCT VALUE c.a FROM c",
        "SELECT TOP 5 * FROM c ORDER BY c.a DESC, c.b ASC",
        "SELECT * FROM c OFFSET 1 LIMIT 2",
        "SELECT t FROM c JOIN t IN c.tags",
        "SELECT a, b FROM c JOIN a IN c.x JOIN b IN c.y",
        "SELECT VALUE x FROM x IN c.arr",
        "SELECT c.cat, COUNT(1) AS n FROM c GROUP BY c.cat",
        "SELECT VALUE COUNT(1) * 2 FROM c",
        "SELECT VALUE {a: c.a, \"b c\": [c.b, 1]} FROM c",
        "SELECT * FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t = 'x')",
        "SELECT ARRAY(SELECT VALUE t FROM t IN c.tags) AS tags FROM c",
        "SELECT VALUE (SELECT VALUE COUNT(1) FROM t IN c.tags) FROM c",
        "SELECT * FROM c WHERE c.a IN (1, 2, 'x') AND c.b NOT IN (3)",
        "SELECT * FROM c WHERE c.a BETWEEN 1 AND 5 OR c.a NOT BETWEEN 7 AND 8",
        "SELECT * FROM c WHERE c.s LIKE 'a%' AND c.s NOT LIKE '%!%' ESCAPE '!'",
        "SELECT VALUE c.a ?? c.b ? 1 : 2 FROM c",
        "SELECT VALUE -c.a + +c.b * ~c.c FROM c",
        "SELECT VALUE 1 << 2 >> 1 >>> 0 | 3 & 5 ^ 6 FROM c",
        "SELECT VALUE 'a' || 'b' FROM c",
        "SELECT VALUE c.arr[0].x FROM c",
        "SELECT VALUE [undefined, null, true, false, 1.5e3, .5, 'it\\'s', "
        "\"\\u00e9\\ud83d\\ude00\"]",
        "SELECT * FROM c WHERE NOT IS_DEFINED(c.x) -- comment\n",
        "SELECT * FROM c WHERE c.a <> 1 AND c.b != 2",
        "SELECT VALUE LEFT('abc', 1)",
        "SELECT c.value1 FROM c",
        "SELECT * FROM c WHERE c[@p] = @v",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        q_free(
            parse_ok(good[i], "[{\"name\":\"@p\",\"value\":\"a\"},{\"name\":\"@v\",\"value\":1}]"));
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct q_error err = parse_bad("SELECT * FORM c");
    assert_int_equal(err.pos, 9);
    assert_non_null(strstr(err.msg, "Syntax error, incorrect syntax near 'FORM'."));
    assert_non_null(strstr(err.msg, "line 1, column 10"));

    err = parse_bad("SELECT *\nFROM c\nWHERE c.a = = 1");
    assert_non_null(strstr(err.msg, "line 3, column 13"));

    expect_error("SELECT", "end-of-file");
    expect_error("", "end-of-file");
    expect_error("SELECT * FROM c WHERE", "end-of-file");
    expect_error("SELECT * FROM c WHERE c.a = 'abc", "unclosed quotation mark");
    expect_error("SELECT VALUE '\\q'", "escape");
    expect_error("SELECT VALUE '\\ud800'", "unicode");
    expect_error("SELECT VALUE '\\u12'", "unicode");
    expect_error("SELECT VALUE FOO(1)", "'FOO' is not a recognized built-in function name.");
    expect_error("SELECT VALUE ABS(1, 2)", "ABS");
    expect_error("SELECT VALUE udf.f(1)", "User-defined functions");
    expect_error("SELECT * FROM c JOIN t IN c.tags",
                 "'SELECT *' is only valid with a single input set.");
    expect_error("SELECT *", "FROM clause");
    expect_error("SELECT VALUE * FROM c", "Syntax error");
    expect_error("SELECT *, c.id FROM c", "Syntax error");
    expect_error("SELECT c.a, COUNT(1) FROM c", "c.a");
    expect_error("SELECT c.b, COUNT(1) FROM c GROUP BY c.a", "GROUP BY");
    expect_error("SELECT * FROM c WHERE COUNT(1) > 1", "aggregate");
    expect_error("SELECT c.a FROM c ORDER BY COUNT(1)", "aggregate");
    expect_error("SELECT VALUE COUNT(MAX(c.a)) FROM c", "aggregate");
    expect_error("SELECT VALUE d.a FROM c", "Identifier 'd' could not be resolved.");
    expect_error("SELECT VALUE @p FROM c", "@p");
    expect_error("SELECT TOP -1 * FROM c", "Syntax error");
    expect_error("SELECT TOP 1.5 * FROM c", "non-negative integer");
    expect_error("SELECT * FROM c OFFSET 1", "end-of-file");
    expect_error("SELECT c.a, c.b.a FROM c", "more than once");
    expect_error("SELECT * FROM c WHERE c.a # 1", "Syntax error");
    expect_error("SELECT * FROM c WHERE c.s LIKE 'a' ESCAPE 'ab'", "ESCAPE");
    expect_error("SELECT * FROM c c2 JOIN c2 IN c2.x", "more than once");
    expect_error("SELECT 1e999", "out of range");
    expect_error("SELECT 12abc", "Syntax error");
    /* docs (GROUP BY): any scalar expression except subqueries */
    expect_error("SELECT COUNT(1) AS n FROM c GROUP BY (SELECT VALUE 1)", "GROUP BY");
    expect_error("SELECT COUNT(1) AS n FROM c GROUP BY c.a, ARRAY(SELECT VALUE 1)", "GROUP BY");
    /* the whole text is parsed before names bind: a syntax error anywhere
     * wins over an unknown name, function, parameter or misplaced aggregate */
    err = parse_bad("SELECT d.id FROM c WHERE c.a = 1 ORDR BY c.a");
    assert_non_null(strstr(err.msg, "Syntax error, incorrect syntax near 'ORDR'."));
    assert_int_equal(err.pos, 33);
    expect_error("SELECT VALUE FOO(1) FROM c WHERE", "end-of-file");
    expect_error("SELECT VALUE @nope FROM c WHERE c.a LIKE 'x' ESCAPE 1", "near '1'");
    expect_error("SELECT VALUE COUNT(1) FROM c WHERE COUNT(1) > 1 ORDER", "end-of-file");
    expect_error("SELECT c.a, c.a FROM c JOIN c IN c.x GROUP BY", "end-of-file");
    expect_error("SELECT COUNT(1) FROM c GROUP BY (SELECT VALUE 1) LIMT", "near 'LIMT'");
    /* without a syntax error the semantic one is reported */
    expect_error("SELECT VALUE FOO(1) FROM c WHERE d.x", "'FOO' is not a recognized");

    /* a NUL byte inside the text */
    err = parse_bad_len("SELECT 1\0", 9, NULL);
    assert_int_equal(err.pos, 8);
    /* non-UTF-8 text */
    err = parse_bad_len("SELECT 'a\xff'", 11, NULL);
    assert_int_equal(err.pos, 9);
    assert_non_null(strstr(err.msg, "UTF-8"));
    parse_bad_len("SELECT '\xc0\x80'", 11, NULL);     /* overlong */
    parse_bad_len("SELECT '\xed\xa0\x80'", 12, NULL); /* surrogate */
    parse_bad_len("SELECT '\xe2\x82'", 10, NULL);     /* truncated */
    q_free(parse_ok("SELECT VALUE '\xe2\x82\xac \xf0\x9f\x98\x80'", NULL));
    /* parameters must be well formed */
    parse_bad_len("SELECT 1", 8, "{\"name\":\"@a\"}");
    parse_bad_len("SELECT 1", 8, "[{\"name\":\"a\",\"value\":1}]");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + n * ul, tail, tl + 1);
    return s;
}

static void test_parse_limits(void **state)
{
    (void)state;
    /* 100k nested parentheses, unary chains, arrays, subqueries */
    char *s = repeat("SELECT VALUE ", "(", 100000, "1");
    struct q_error err = parse_bad(s);
    assert_non_null(strstr(err.msg, "nested too deeply"));
    free(s);
    s = repeat("SELECT VALUE ", "-", 100000, "1");
    parse_bad(s);
    free(s);
    s = repeat("SELECT VALUE ", "NOT ", 100000, "true");
    parse_bad(s);
    free(s);
    s = repeat("SELECT VALUE ", "[", 100000, "");
    parse_bad(s);
    free(s);
    s = repeat("SELECT VALUE ", "(SELECT VALUE ", 20000, "1");
    parse_bad(s);
    free(s);
    /* a left-deep chain is bounded by height, not recursion */
    s = repeat("SELECT VALUE 1", " + 1", 50000, "");
    err = parse_bad(s);
    assert_non_null(strstr(err.msg, "too complex"));
    free(s);
    /* long AND chains are fine (one n-ary node) */
    s = repeat("SELECT * FROM c WHERE true", " AND c.a = 1", 5000, "");
    q_free(parse_ok(s, NULL));
    free(s);
    /* moderate nesting is fine */
    s = repeat("SELECT VALUE ", "(", 30, "1");
    char *t = repeat(s, ")", 30, "");
    q_free(parse_ok(t, NULL));
    free(s);
    free(t);
    /* IN lists */
    s = repeat("SELECT * FROM c WHERE c.a IN (0", ",1", 20000, ")");
    err = parse_bad(s);
    assert_non_null(strstr(err.msg, "IN list"));
    free(s);
    s = repeat("SELECT * FROM c WHERE c.a IN (0", ",1", Q_MAX_IN - 1, ")");
    q_free(parse_ok(s, NULL));
    free(s);
    /* identifier length */
    s = repeat("SELECT * FROM ", "a", Q_MAX_IDENT + 1, "");
    parse_bad(s);
    free(s);
    s = repeat("SELECT * FROM ", "a", Q_MAX_IDENT, "");
    q_free(parse_ok(s, NULL));
    free(s);
    /* text length */
    s = repeat("SELECT VALUE 1", " ", Q_MAX_TEXT, "");
    parse_bad(s);
    free(s);
    /* many JOINs */
    s = repeat("SELECT VALUE 1 FROM c", " JOIN a IN c.x", 100, "");
    parse_bad(s);
    free(s);
}

static void test_parse_fuzz(void **state)
{
    (void)state;
    /* random mutations of valid queries must never crash or leak */
    static const char *seeds[] = {
        "SELECT c.a, COUNT(1) AS n FROM c JOIN t IN c.tags WHERE c.x IN (1,'a') GROUP BY c.a",
        "SELECT TOP 3 VALUE {a: c.a ?? [1, 2], b: ARRAY(SELECT VALUE t FROM t IN c.t)} FROM c "
        "WHERE c.s LIKE 'a%' ESCAPE '!' ORDER BY c.a DESC OFFSET 1 LIMIT 2",
    };
    const char alphabet[] = "()[]{},.:?*/%+-<>=~&|^'\"@ \\xSELCTFROMWHEAND0123456789";
    unsigned seed = 12345;
    for (int round = 0; round < 4000; round++) {
        const char *base = seeds[round % 2];
        size_t n = strlen(base);
        char buf[512];
        memcpy(buf, base, n + 1);
        int edits = 1 + round % 4;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245 + 12345;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245 + 12345;
            buf[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        struct q_error err;
        struct q_query *q = q_parse(buf, n, NULL, &err);
        if (q) {
            json_t *out = json_array();
            json_t *doc = J("{\"a\":1,\"tags\":[1,2],\"t\":[\"x\"],\"s\":\"ab\",\"x\":1}");
            struct q_exec *x = q_exec_new(q, NULL);
            q_exec_feed(x, doc, out, &err);
            q_exec_finish(x, out, &err);
            q_exec_free(x);
            json_decref(doc);
            json_decref(out);
            q_free(q);
        } else {
            assert_true(err.status == 400);
        }
    }
}

/* ---- projections ---- */

static void test_select(void **state)
{
    (void)state;
    /* docs (SELECT): unnamed values get $1, $2 */
    expect_rows("SELECT \"Cosmic\", \"Works\"", NULL, NULL,
                "[{\"$1\":\"Cosmic\",\"$2\":\"Works\"}]");
    expect_rows("SELECT VALUE \"Cosmic Works\"", NULL, NULL, "[\"Cosmic Works\"]");
    expect_rows("SELECT { identifier: p.name, model: p.sku } FROM products p", NULL,
                "[{\"name\":\"Remdriel Shoes\",\"sku\":\"61506\"}]",
                "[{\"$1\":{\"identifier\":\"Remdriel Shoes\",\"model\":\"61506\"}}]");
    /* paths are named by their last property; $n counts unnamed ones only */
    expect_rows("SELECT c.a, 1, c.b, c[\"x y\"], 2 AS two, 3 FROM c", NULL,
                "[{\"a\":1,\"b\":2,\"x y\":3}]",
                "[{\"a\":1,\"$1\":1,\"b\":2,\"x y\":3,\"two\":2,\"$2\":3}]");
    /* undefined projections are omitted; all undefined gives {} */
    expect_rows("SELECT c.a, c.missing FROM c", NULL, "[{\"a\":1},{\"b\":2}]", "[{\"a\":1},{}]");
    /* VALUE skips undefined rows */
    expect_rows("SELECT VALUE c.a FROM c", NULL, "[{\"a\":1},{\"b\":2},{\"a\":null}]", "[1,null]");
    /* SELECT * is the document itself */
    expect_rows("SELECT * FROM c", NULL, "[{\"id\":\"1\",\"x\":[1]}]",
                "[{\"id\":\"1\",\"x\":[1]}]");
    /* keywords may follow a dot */
    expect_rows("SELECT c.from, c[\"value\"] FROM c", NULL, "[{\"from\":1,\"value\":2}]",
                "[{\"from\":1,\"value\":2}]");
    /* the alias itself names its property */
    expect_rows("SELECT c FROM c", NULL, "[{\"a\":1}]", "[{\"c\":{\"a\":1}}]");
    /* array and object construction leave undefined members out */
    expect_rows("SELECT VALUE {a: c.a, m: c.missing, arr: [c.a, c.missing]} FROM c", NULL,
                "[{\"a\":1}]", "[{\"a\":1,\"arr\":[1]}]");
    /* property and index access */
    expect_rows("SELECT VALUE [c.arr[1], c.arr[5], c.o[\"k\"], c.arr.x, c.o[0], c[@p]] FROM c",
                "[{\"name\":\"@p\",\"value\":\"o\"}]", "[{\"arr\":[1,2],\"o\":{\"k\":\"v\"}}]",
                "[[2,\"v\",{\"k\":\"v\"}]]");
}

static void test_literals(void **state)
{
    (void)state;
    expect_rows("SELECT VALUE ['it\\'s', \"q\\\"\", '\\\\\\/\\b\\f\\n\\r\\t', "
                "'\\u00e9\\ud83d\\ude00', 1.5e3, .25, 2E-2, true, false, null, undefined]",
                NULL, NULL,
                "[[\"it's\",\"q\\\"\",\"\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\ud83d\\ude00\","
                "1500,0.25,0.02,true,false,null]]");
    expect_rows("SELECT VALUE @v", "[{\"name\":\"@v\",\"value\":{\"a\":[1]}}]", NULL,
                "[{\"a\":[1]}]");
    /* docs (constants): hexadecimal_literal is 0x followed by hex digits */
    expect_rows("SELECT VALUE [0x1F, 0xff, 0X10, 0x0, -0x10]", NULL, NULL, "[[31,255,16,0,-16]]");
    expect_error("SELECT VALUE 0x", "Syntax error");
    expect_error("SELECT VALUE 0x1G", "Syntax error");
}

/* ---- operators ---- */

static void test_logic(void **state)
{
    (void)state;
    /* docs truth tables (logical operators) */
    expect_rows("SELECT VALUE {"
                "tt: true AND true, tf: true AND false, tu: true AND undefined,"
                "ft: false AND true, ff: false AND false, fu: false AND undefined,"
                "ut: undefined AND true, uf: undefined AND false, uu: undefined AND undefined}",
                NULL, NULL,
                "[{\"tt\":true,\"tf\":false,\"ft\":false,\"ff\":false,\"fu\":false,\"uf\":false}]");
    expect_rows("SELECT VALUE {"
                "tt: true OR true, tf: true OR false, tu: true OR undefined,"
                "ft: false OR true, ff: false OR false, fu: false OR undefined,"
                "ut: undefined OR true, uf: undefined OR false, uu: undefined OR undefined}",
                NULL, NULL,
                "[{\"tt\":true,\"tf\":true,\"tu\":true,\"ft\":true,\"ff\":false,\"ut\":true}]");
    expect_rows("SELECT VALUE {t: NOT true, f: NOT false, u: NOT undefined, n: NOT 1}", NULL, NULL,
                "[{\"t\":false,\"f\":true}]");
    /* WHERE keeps a row only when it is true */
    expect_rows(
        "SELECT VALUE c.id FROM c WHERE c.flag", NULL,
        "[{\"id\":1,\"flag\":true},{\"id\":2,\"flag\":1},{\"id\":3},{\"id\":4,\"flag\":false}]",
        "[1]");
    expect_rows(
        "SELECT VALUE c.id FROM c WHERE NOT c.flag", NULL,
        "[{\"id\":1,\"flag\":true},{\"id\":2,\"flag\":1},{\"id\":3},{\"id\":4,\"flag\":false}]",
        "[4]");
    /* precedence: NOT binds tighter than AND, AND tighter than OR */
    expect_rows("SELECT VALUE {a: true OR false AND false, b: NOT false AND false}", NULL, NULL,
                "[{\"a\":true,\"b\":false}]");
}

static void test_comparison(void **state)
{
    (void)state;
    /* docs (equality and comparison operators): different types are undefined;
     * = on arrays and objects is deep; ordering on them is undefined */
    expect_rows("SELECT VALUE {a: 1 = '1', b: null = null, c: [1,2] = [1,2], d: {x:1} = {x:1},"
                "e: [1] < [2], f: 'a' < 'b', g: 1 != 'x', h: 1 != 2, i: false < true,"
                "j: null <= null, k: undefined = undefined, l: [1,2] != [2,1], m: 2 >= 2,"
                "n: 'B' < 'a', o: {x:1} = {x:1.0}}",
                NULL, NULL,
                "[{\"b\":true,\"c\":true,\"d\":true,\"f\":true,\"h\":true,\"i\":true,"
                "\"j\":true,\"l\":true,\"m\":true,\"n\":true,\"o\":true}]");
    /* docs: a number compared with a string filters nothing in */
    expect_rows("SELECT VALUE c.id FROM c WHERE c.v > 'x'", NULL,
                "[{\"id\":1,\"v\":5},{\"id\":2,\"v\":\"y\"}]", "[2]");
}

static void test_arithmetic(void **state)
{
    (void)state;
    expect_rows("SELECT VALUE {a: 1 + 2 * 3, b: (1 + 2) * 3, c: 7 % 4, d: 1 / 4, e: -(2 - 5),"
                "f: 1 + 'a', g: 'a' || 'b', h: 'a' || 1, i: 1 / 0, j: +true, k: -'x',"
                "l: 2 - 1 - 1, m: 8 / 2 / 2}",
                NULL, NULL,
                "[{\"a\":7,\"b\":9,\"c\":3,\"d\":0.25,\"e\":3,\"g\":\"ab\",\"l\":0,\"m\":2}]");
    /* docs (bitwise operators) example */
    expect_rows("SELECT (100 >> 2) AS rightShift, (100 << 2) AS leftShift,"
                "(100 >>> 2) AS zeroFillRightShift, (100 & 1000) AS bitwiseAnd,"
                "(100 | 1000) AS bitwiseOr, (100 ^ 1000) AS bitwiseExclusiveOr",
                NULL, NULL,
                "[{\"rightShift\":25,\"leftShift\":400,\"zeroFillRightShift\":25,"
                "\"bitwiseAnd\":96,\"bitwiseOr\":1004,\"bitwiseExclusiveOr\":908}]");
    expect_rows("SELECT VALUE [~5, -8 >> 1, -8 >>> 28, 1 << 33, 'a' & 1]", NULL, NULL,
                "[[-6,-4,15,2]]");
}

static void test_conditional(void **state)
{
    (void)state;
    /* docs (ternary and coalesce operators) */
    expect_rows("SELECT VALUE c.onSale ? c.price * 0.5 : c.price FROM c", NULL,
                "[{\"price\":20,\"onSale\":true},{\"price\":20,\"onSale\":false},"
                "{\"price\":20}]",
                "[10,20,20]");
    expect_rows("SELECT VALUE c.collapsible ?? false FROM c", NULL,
                "[{\"collapsible\":true},{},{\"collapsible\":null}]", "[true,false,null]");
    expect_rows("SELECT VALUE c.a ?? c.b ?? 'none' FROM c", NULL, "[{\"b\":2},{}]", "[2,\"none\"]");
}

static void test_in_between_like(void **state)
{
    (void)state;
    const char *docs = "[{\"id\":1,\"a\":1},{\"id\":2,\"a\":\"x\"},{\"id\":3,\"a\":3},"
                       "{\"id\":4},{\"id\":5,\"a\":[1]}]";
    expect_rows("SELECT VALUE c.id FROM c WHERE c.a IN (1, 'x', [1])", NULL, docs, "[1,2,5]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.a NOT IN (1, 'x')", NULL, docs, "[3,5]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.a BETWEEN 1 AND 3", NULL, docs, "[1,3]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.a NOT BETWEEN 2 AND 5", NULL, docs, "[1]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.a BETWEEN 'a' AND 'z'", NULL, docs, "[2]");
    const char *s =
        "[{\"id\":1,\"s\":\"apple\"},{\"id\":2,\"s\":\"ample\"},"
        "{\"id\":3,\"s\":\"a%b\"},{\"id\":4,\"s\":\"\xc3\xa9t\xc3\xa9\"},{\"id\":5,\"s\":5}]";
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'a%'", NULL, s, "[1,2,3]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'a_ple'", NULL, s, "[1,2]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE '%p%e'", NULL, s, "[1,2]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'a!%b' ESCAPE '!'", NULL, s, "[3]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE '_t_'", NULL, s, "[4]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s NOT LIKE 'a%'", NULL, s, "[4]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'APPLE'", NULL, s, "[]");
    /* docs (keywords, LIKE): [ ] a range or set, [^ ] not in it */
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE '[a-b]%'", NULL, s, "[1,2,3]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'a[mn]%'", NULL, s, "[2]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE 'a[^m]%'", NULL, s, "[1,3]");
    expect_rows("SELECT VALUE c.id FROM c WHERE c.s LIKE '[\xc3\xa0-\xc3\xaa]t_'", NULL, s, "[4]");
    /* docs: a wildcard in brackets is literal; the page's table of examples */
    expect_rows("SELECT VALUE [\"20-30%\" LIKE \"20-30[%]\", \"_n\" LIKE \"[_]n\", "
                "\"[\" LIKE \"[ [ ]\", \"]\" LIKE \"]\", \"20-30x\" LIKE \"20-30[%]\"]",
                NULL, NULL, "[[true,true,true,true,false]]");
    /* an unclosed [ is an ordinary character; - at an end is a member */
    expect_rows("SELECT VALUE ['a[b' LIKE 'a[b', '-' LIKE '[a-]', 'x' LIKE '[]', "
                "'!' LIKE '[!%]' ESCAPE '!', '%' LIKE '[!%]' ESCAPE '!']",
                NULL, NULL, "[[true,true,false,false,true]]");
}

/* ---- FROM, JOIN, subqueries ---- */

static const char *families =
    "[{\"id\":\"AndersenFamily\",\"children\":[{\"givenName\":\"Henriette\",\"grade\":5,"
    "\"pets\":[{\"givenName\":\"Fluffy\"}]}]},"
    "{\"id\":\"WakefieldFamily\",\"children\":[{\"givenName\":\"Jesse\",\"grade\":1,"
    "\"pets\":[{\"givenName\":\"Goofy\"},{\"givenName\":\"Shadow\"}]},"
    "{\"givenName\":\"Lisa\",\"grade\":8}]},"
    "{\"id\":\"Lonely\",\"children\":\"none\"}]";

static void test_join(void **state)
{
    (void)state;
    expect_rows("SELECT f.id, c.givenName FROM Families f JOIN c IN f.children", NULL, families,
                "[{\"id\":\"AndersenFamily\",\"givenName\":\"Henriette\"},"
                "{\"id\":\"WakefieldFamily\",\"givenName\":\"Jesse\"},"
                "{\"id\":\"WakefieldFamily\",\"givenName\":\"Lisa\"}]");
    expect_rows("SELECT f.id AS familyName, c.givenName AS childGivenName, p.givenName AS petName "
                "FROM Families f JOIN c IN f.children JOIN p IN c.pets",
                NULL, families,
                "[{\"familyName\":\"AndersenFamily\",\"childGivenName\":\"Henriette\","
                "\"petName\":\"Fluffy\"},"
                "{\"familyName\":\"WakefieldFamily\",\"childGivenName\":\"Jesse\","
                "\"petName\":\"Goofy\"},"
                "{\"familyName\":\"WakefieldFamily\",\"childGivenName\":\"Jesse\","
                "\"petName\":\"Shadow\"}]");
    expect_rows("SELECT VALUE c.givenName FROM c IN Families.children", NULL, families,
                "[\"Henriette\",\"Jesse\",\"Lisa\"]");
    expect_rows("SELECT * FROM c IN f.children WHERE c.grade > 4", NULL, families,
                "[{\"givenName\":\"Henriette\",\"grade\":5,\"pets\":[{\"givenName\":\"Fluffy\"}]},"
                "{\"givenName\":\"Lisa\",\"grade\":8}]");
    /* FROM over a path binds its value (no iteration) */
    expect_rows("SELECT VALUE ARRAY_LENGTH(children) FROM f.children", NULL, families, "[1,2]");
    /* subquery page: JOIN over a multi-value subquery, one row per row it
     * yields, with or without an alias ("optimize JOIN expressions") */
    const char *tagged = "[{\"id\":1,\"tags\":[{\"n\":\"a\"},{\"n\":\"b\"}]},"
                         "{\"id\":2,\"tags\":[{\"n\":\"b\"}]},{\"id\":3}]";
    expect_rows("SELECT VALUE p.id FROM p JOIN (SELECT VALUE t FROM t IN p.tags "
                "WHERE t.n = 'b')",
                NULL, tagged, "[1,2]");
    expect_rows("SELECT p.id, t.n FROM p JOIN (SELECT VALUE t FROM t IN p.tags) AS t", NULL, tagged,
                "[{\"id\":1,\"n\":\"a\"},{\"id\":1,\"n\":\"b\"},{\"id\":2,\"n\":\"b\"}]");
    /* "evaluate once and reference many times": an aggregate subquery */
    expect_rows("SELECT p.id, n FROM p JOIN (SELECT VALUE COUNT(1) FROM t IN p.tags) n "
                "WHERE n > 0",
                NULL, tagged, "[{\"id\":1,\"n\":2},{\"id\":2,\"n\":1}]");
    /* SELECT VALUE undefined yields no row, so the JOIN yields none */
    expect_rows("SELECT VALUE p.id FROM p JOIN (SELECT VALUE p.nope) x", NULL, tagged, "[]");
    /* cartesian product of two JOINs */
    expect_rows("SELECT VALUE [a, b] FROM c JOIN a IN c.x JOIN b IN c.y", NULL,
                "[{\"x\":[1,2],\"y\":[\"p\",\"q\"]}]", "[[1,\"p\"],[1,\"q\"],[2,\"p\"],[2,\"q\"]]");
}

/* JOINs over one document's arrays multiply: the executor stops a
 * document's expansion at Q_MAX_STEPS bindings (and the rows it streams at
 * Q_MEM_LIMIT) with a 400, instead of growing without end. */
static void test_join_bounds(void **state)
{
    (void)state;
    json_t *arr = json_array();
    for (int i = 0; i < 200; i++)
        json_array_append_new(arr, json_integer(i));
    json_t *doc = json_pack("{s:o}", "arr", arr);
    const char *queries[] = {
        /* 8,000,000 rows */
        "SELECT VALUE 1 FROM c JOIN a IN c.arr JOIN b IN c.arr JOIN d IN c.arr",
        /* no row at all, the same work */
        "SELECT VALUE 1 FROM c JOIN a IN c.arr JOIN b IN c.arr JOIN d IN c.arr WHERE false",
        /* in a subquery */
        "SELECT VALUE ARRAY(SELECT VALUE 1 FROM a IN c.arr JOIN b IN c.arr JOIN d IN c.arr) "
        "FROM c",
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        struct q_query *q = parse_ok(queries[i], NULL);
        struct q_ctx ctx = {1700000000000};
        struct q_exec *x = q_exec_new(q, &ctx);
        json_t *out = json_array();
        struct q_error err = {0};
        int rc = q_exec_feed(x, doc, out, &err);
        if (rc == 0)
            rc = q_exec_finish(x, out, &err);
        if (rc == 0)
            fail_msg("%s: ran to the end (%zu rows)", queries[i], json_array_size(out));
        assert_int_equal(err.status, 400);
        assert_non_null(strstr(err.msg, "combinations"));
        assert_true(json_array_size(out) <= 2000000);
        json_decref(out);
        q_exec_free(x);
        q_free(q);
    }
    /* under the bound: every row (200 x 200) */
    json_t *two = run_q("SELECT VALUE 1 FROM c JOIN a IN c.arr JOIN b IN c.arr", NULL,
                        "[{\"arr\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]}]");
    assert_int_equal(json_array_size(two), 400);
    json_decref(two);
    json_decref(doc);
}

/* q_exec_where_known: WHERE is not evaluated, so a stand-in document
 * passes; TOP still counts; refused once feeding started and for FROM
 * subqueries. */
static void test_where_known(void **state)
{
    (void)state;
    struct q_query *q = parse_ok("SELECT TOP 2 * FROM c WHERE c.n > 5 ORDER BY c.n", NULL);
    struct q_exec *x = q_exec_new(q, NULL);
    q_exec_presorted(x);
    assert_true(q_exec_streaming(x));
    assert_int_equal(q_exec_where_known(x), 0);
    json_t *stand_in = json_object(), *out = json_array();
    struct q_error err = {0};
    for (int i = 0; i < 3 && !q_exec_done(x); i++)
        assert_int_equal(q_exec_feed(x, stand_in, out, &err), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_ptr_equal(json_array_get(out, 0), stand_in); /* the row is the document */
    assert_true(q_exec_done(x));
    assert_int_equal(q_exec_where_known(x), -1);
    json_decref(out);
    q_exec_free(x);
    q_free(q);
    /* without it the stand-in (no n) fails WHERE */
    q = parse_ok("SELECT * FROM c WHERE c.n > 5", NULL);
    x = q_exec_new(q, NULL);
    out = json_array();
    assert_int_equal(q_exec_feed(x, stand_in, out, &err), 0);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    q_exec_free(x);
    q_free(q);
    q = parse_ok("SELECT * FROM (SELECT VALUE c.n FROM c) n WHERE n > 5", NULL);
    x = q_exec_new(q, NULL);
    assert_int_equal(q_exec_where_known(x), -1);
    q_exec_free(x);
    q_free(q);
    json_decref(stand_in);
}

/* The query fails (feed or finish) with a message holding fragment. */
static void expect_exec_error(const char *text, const char *params, const char *docs,
                              const char *fragment)
{
    struct q_query *q = parse_ok(text, params);
    struct q_ctx ctx = {1700000000000};
    struct q_exec *x = q_exec_new(q, &ctx);
    json_t *in = J(docs), *out = json_array();
    struct q_error err = {0};
    int rc = 0;
    size_t i;
    json_t *d;
    json_array_foreach(in, i, d)
    {
        if (!rc)
            rc = q_exec_feed(x, d, out, &err);
    }
    if (!rc)
        rc = q_exec_finish(x, out, &err);
    if (!rc || !strstr(err.msg, fragment))
        fail_msg("query %s\n  want an error with: %s\n  got: %s", text, fragment,
                 rc ? err.msg : "success");
    assert_int_equal(err.status, 400);
    json_decref(in);
    json_decref(out);
    q_exec_free(x);
    q_free(q);
}

/* Built values that nesting would grow without end are bounded: strings
 * (CONCAT, REPLACE) at 16 MB, ARRAY_CONCAT at 1,000,000 elements, a row
 * at the query memory limit even when it shares one value many times;
 * REPLICATE of "" any number of times is "" at once. */
static void test_built_value_bounds(void **state)
{
    (void)state;
    char params[256];
    snprintf(params, sizeof params, "[{\"name\":\"@s\",\"value\":\"%s\"}]",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    /* 32 -> 32*32 -> ... bytes: the fifth REPLACE passes 16 MB */
    expect_exec_error("SELECT VALUE LENGTH(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(@s, 'a', @s), "
                      "'a', @s), 'a', @s), 'a', @s), 'a', @s))",
                      params, "[{}]", "longer than 16 MB");
    expect_rows("SELECT VALUE LENGTH(REPLACE(REPLACE(@s, 'a', @s), 'a', @s))", params, "[{}]",
                "[32768]");
    expect_rows("SELECT VALUE REPLICATE('', 1e300)", NULL, "[{}]", "[\"\"]");
    expect_rows("SELECT VALUE REPLICATE('', 9007199254740993)", NULL, "[{}]", "[\"\"]");
    expect_rows("SELECT VALUE REPLICATE('ab', 3)", NULL, "[{}]", "[\"ababab\"]");
    /* doubling through JOINed subqueries: 2^21 elements */
    char q[2048] = "SELECT VALUE ARRAY_LENGTH(x20) FROM c JOIN (SELECT VALUE ARRAY_CONCAT(c.a, "
                   "c.a)) x0";
    for (int i = 1; i <= 20; i++) {
        char part[96];
        snprintf(part, sizeof part, " JOIN (SELECT VALUE ARRAY_CONCAT(x%d, x%d)) x%d", i - 1, i - 1,
                 i);
        strcat(q, part);
    }
    expect_exec_error(q, NULL, "[{\"a\":[1]}]", "1,000,000 elements");
    /* a row sharing one array 2^40 times over: refused, quickly */
    char r[4096] = "SELECT VALUE y39 FROM c JOIN (SELECT VALUE [c.a, c.a]) y0";
    for (int i = 1; i < 40; i++) {
        char part[96];
        snprintf(part, sizeof part, " JOIN (SELECT VALUE [y%d, y%d]) y%d", i - 1, i - 1, i);
        strcat(r, part);
    }
    expect_exec_error(r, NULL, "[{\"a\":[1,2,3]}]", "more memory");
    /* ... also where it would only be compared or grouped, never output */
    char w[4200];
    const char *sel = strstr(r, " FROM");
    snprintf(w, sizeof w, "SELECT VALUE 1%s WHERE y39 = [1]", sel);
    expect_exec_error(w, NULL, "[{\"a\":[1,2,3]}]", "more memory");
    snprintf(w, sizeof w, "SELECT VALUE COUNT(1)%s GROUP BY y39", sel);
    expect_exec_error(w, NULL, "[{\"a\":[1,2,3]}]", "more memory");
}

/* RegexMatch stops after its time budget (undefined), also where the
 * match limit does not: '(?=a*b)(?=a*c)' over 300,000 'a' is quadratic
 * (about 15 s here without the budget). A pattern too large for the timed
 * form (1,000 alternatives) still works. */
static void test_regex_budget(void **state)
{
    (void)state;
    size_t n = 300000;
    char *params = malloc(n + 200);
    int k = snprintf(params, n + 200, "[{\"name\":\"@s\",\"value\":\"");
    memset(params + k, 'a', n);
    snprintf(params + k + n, 200, "\"},{\"name\":\"@p\",\"value\":\"(?=a*b)(?=a*c)\"}]");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_rows("SELECT VALUE RegexMatch(@s, @p)", params, "[{}]", "[]");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    free(params);
    size_t cap = 1000 * 12 + 100;
    char *alt = malloc(cap), *p = alt;
    p += sprintf(p, "[{\"name\":\"@p\",\"value\":\"^(");
    for (int i = 0; i < 1000; i++)
        p += sprintf(p, "%sw%05d", i ? "|" : "", i);
    sprintf(p, ")$\"}]");
    expect_rows("SELECT VALUE [RegexMatch('w00999', @p), RegexMatch('w01000', @p)]", alt, "[{}]",
                "[[true,false]]");
    free(alt);
}

static void test_subqueries(void **state)
{
    (void)state;
    const char *docs = "[{\"id\":1,\"tags\":[\"x\",\"y\"]},{\"id\":2,\"tags\":[\"y\"]},{\"id\":3}]";
    expect_rows("SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags "
                "WHERE t = 'x')",
                NULL, docs, "[1]");
    expect_rows("SELECT c.id, ARRAY(SELECT VALUE UPPER(t) FROM t IN c.tags) AS up FROM c", NULL,
                docs,
                "[{\"id\":1,\"up\":[\"X\",\"Y\"]},{\"id\":2,\"up\":[\"Y\"]},{\"id\":3,\"up\":[]}]");
    expect_rows("SELECT VALUE (SELECT VALUE COUNT(1) FROM t IN c.tags) FROM c", NULL, docs,
                "[2,1,0]");
    expect_rows("SELECT VALUE (SELECT VALUE t FROM t IN c.tags WHERE t = 'x') FROM c", NULL, docs,
                "[\"x\"]");
    /* a subquery referring to an outer alias inside its WHERE */
    expect_rows("SELECT VALUE c.id FROM c WHERE (SELECT VALUE COUNT(1) FROM t IN c.tags "
                "WHERE t != c.skip) = 1",
                NULL,
                "[{\"id\":1,\"skip\":\"x\",\"tags\":[\"x\",\"y\"]},{\"id\":2,\"tags\":[\"y\"]}]",
                "[1]");
    /* subqueries with their own TOP, ORDER BY and DISTINCT */
    expect_rows("SELECT VALUE ARRAY(SELECT DISTINCT VALUE t FROM t IN c.a ORDER BY t DESC) FROM c",
                NULL, "[{\"a\":[1,3,2,3,1]}]", "[[3,2,1]]");
    expect_rows("SELECT VALUE ARRAY(SELECT TOP 2 VALUE t FROM t IN c.a) FROM c", NULL,
                "[{\"a\":[5,6,7]}]", "[[5,6]]");
}

/* ---- aggregates and GROUP BY ---- */

static void test_aggregates(void **state)
{
    (void)state;
    /* docs (SUM): undefined values are left out */
    expect_rows("SELECT VALUE SUM(p.quantity) FROM products p WHERE p.category = \"hiking-bags\"",
                NULL,
                "[{\"name\":\"Cosmoxy pack\",\"quantity\":35,\"category\":\"hiking-bags\"},"
                "{\"name\":\"Heliont pack\",\"category\":\"hiking-bags\"},"
                "{\"name\":\"Immery bag\",\"quantity\":15,\"category\":\"hiking-bags\"}]",
                "[50]");
    /* docs (MIN) */
    expect_rows("SELECT MIN(p.price) AS minPrice FROM products p WHERE p.category = "
                "\"fashion-bracelet\"",
                NULL,
                "[{\"price\":87.66,\"category\":\"fashion-bracelet\"},"
                "{\"price\":27.60,\"category\":\"fashion-bracelet\"}]",
                "[{\"minPrice\":27.6}]");
    /* docs (SUM, AVG): a string, boolean or null makes the aggregate undefined */
    expect_rows("SELECT VALUE SUM(c.v) FROM c", NULL, "[{\"v\":1},{\"v\":\"2\"}]", "[]");
    expect_rows("SELECT AVG(c.v) AS a FROM c", NULL, "[{\"v\":1},{\"v\":null}]", "[{}]");
    expect_rows("SELECT VALUE AVG(c.v) FROM c", NULL, "[{\"v\":1},{\"v\":2},{}]", "[1.5]");
    /* docs (MIN/MAX): undefined ignored; null < boolean < number < string */
    const char *mixed = "[{\"v\":1},{\"v\":\"a\"},{\"v\":true},{\"v\":null},{}]";
    expect_rows("SELECT MIN(c.v) AS lo, MAX(c.v) AS hi FROM c", NULL, mixed,
                "[{\"lo\":null,\"hi\":\"a\"}]");
    expect_rows("SELECT VALUE MAX(c.v) FROM c", NULL, "[{\"v\":false},{\"v\":true}]", "[true]");
    /* COUNT counts defined values */
    expect_rows("SELECT COUNT(1) AS all_, COUNT(c.v) AS v FROM c", NULL, mixed,
                "[{\"all_\":5,\"v\":4}]");
    /* empty input: COUNT and SUM are 0; AVG, MIN, MAX undefined */
    expect_rows("SELECT VALUE COUNT(1) FROM c", NULL, "[]", "[0]");
    expect_rows("SELECT COUNT(1) AS n FROM c", NULL, "[]", "[{\"n\":0}]");
    expect_rows("SELECT VALUE SUM(c.v) FROM c", NULL, "[]", "[0]");
    expect_rows("SELECT VALUE MIN(c.v) FROM c", NULL, "[]", "[]");
    expect_rows("SELECT MAX(c.v) AS m FROM c", NULL, "[]", "[{}]");
    expect_rows("SELECT VALUE AVG(c.v) FROM c", NULL, "[]", "[]");
    /* aggregates inside expressions */
    expect_rows("SELECT VALUE COUNT(1) * 2 FROM c WHERE IS_DEFINED(c.v)", NULL, mixed, "[8]");
    expect_rows("SELECT VALUE {n: COUNT(1), s: SUM(c.v)} FROM c", NULL, "[{\"v\":2},{\"v\":3}]",
                "[{\"n\":2,\"s\":5}]");
    /* aggregate over JOIN rows */
    expect_rows("SELECT VALUE COUNT(1) FROM f JOIN c IN f.children", NULL, families, "[3]");
}

static void test_group_by(void **state)
{
    (void)state;
    const char *docs =
        "[{\"cat\":\"a\",\"v\":1},{\"cat\":\"b\",\"v\":2},{\"cat\":\"a\",\"v\":3},"
        "{\"v\":4},{\"cat\":null,\"v\":5},{\"cat\":1,\"v\":6},{\"cat\":1.0,\"v\":7}]";
    expect_rows_unordered("SELECT c.cat, COUNT(1) AS n, SUM(c.v) AS s FROM c GROUP BY c.cat", docs,
                          "[{\"cat\":\"a\",\"n\":2,\"s\":4},{\"cat\":\"b\",\"n\":1,\"s\":2},"
                          "{\"n\":1,\"s\":4},{\"cat\":null,\"n\":1,\"s\":5},"
                          "{\"cat\":1,\"n\":2,\"s\":13}]");
    expect_rows_unordered("SELECT VALUE c.cat FROM c GROUP BY c.cat", docs, "[\"a\",\"b\",null,1]");
    expect_rows_unordered("SELECT UPPER(c.cat) AS u, MAX(c.v) AS m FROM c WHERE IS_STRING(c.cat) "
                          "GROUP BY UPPER(c.cat)",
                          docs, "[{\"u\":\"A\",\"m\":3},{\"u\":\"B\",\"m\":2}]");
    expect_rows_unordered("SELECT c.x, c.y, COUNT(1) AS n FROM c GROUP BY c.x, c.y",
                          "[{\"x\":1,\"y\":1},{\"x\":1,\"y\":2},{\"x\":1,\"y\":1},{\"x\":[1]}]",
                          "[{\"x\":1,\"y\":1,\"n\":2},{\"x\":1,\"y\":2,\"n\":1},"
                          "{\"x\":[1],\"n\":1}]");
    /* GROUP BY over no input has no groups */
    expect_rows("SELECT c.cat, COUNT(1) AS n FROM c GROUP BY c.cat", NULL, "[]", "[]");
}

static void test_distinct(void **state)
{
    (void)state;
    expect_rows("SELECT DISTINCT VALUE c.a FROM c", NULL,
                "[{\"a\":1},{\"a\":\"1\"},{\"a\":1.0},{},{\"a\":[1]},{\"a\":[1]},{\"a\":{\"k\":1}},"
                "{\"a\":{\"k\":1}}]",
                "[1,\"1\",[1],{\"k\":1}]");
    expect_rows("SELECT DISTINCT c.a FROM c", NULL, "[{\"a\":1,\"b\":1},{\"a\":1,\"b\":2},{}]",
                "[{\"a\":1},{}]");
    expect_rows("SELECT DISTINCT TOP 2 VALUE c.a FROM c", NULL,
                "[{\"a\":1},{\"a\":1},{\"a\":2},{\"a\":3}]", "[1,2]");
    expect_rows("SELECT DISTINCT VALUE c.a FROM c ORDER BY c.a DESC", NULL,
                "[{\"a\":1},{\"a\":3},{\"a\":1},{\"a\":2}]", "[3,2,1]");
}

/* ---- ORDER BY, OFFSET/LIMIT, TOP ---- */

static void test_order_by(void **state)
{
    (void)state;
    /* undefined sorts first, then null < false < true < numbers < strings */
    const char *docs =
        "[{\"id\":1,\"v\":\"b\"},{\"id\":2,\"v\":3},{\"id\":3},{\"id\":4,\"v\":null},"
        "{\"id\":5,\"v\":true},{\"id\":6,\"v\":false},{\"id\":7,\"v\":-1},"
        "{\"id\":8,\"v\":\"a\"}]";
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.v", NULL, docs, "[3,4,6,5,7,2,8,1]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.v DESC", NULL, docs, "[1,8,2,7,5,6,4,3]");
    /* several keys; ties keep input order */
    const char *people =
        "[{\"id\":1,\"last\":\"b\",\"age\":30},{\"id\":2,\"last\":\"a\",\"age\":40},"
        "{\"id\":3,\"last\":\"b\",\"age\":20},{\"id\":4,\"last\":\"a\",\"age\":40},"
        "{\"id\":5,\"last\":\"b\",\"age\":30}]";
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.last ASC, c.age DESC", NULL, people,
                "[2,4,1,5,3]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.last", NULL, people, "[2,4,1,3,5]");
    /* TOP and OFFSET/LIMIT over the ordered rows (bounded keeping) */
    expect_rows("SELECT TOP 2 VALUE c.id FROM c ORDER BY c.last", NULL, people, "[2,4]");
    expect_rows("SELECT TOP 3 VALUE c.id FROM c ORDER BY c.age DESC", NULL, people, "[2,4,1]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.last OFFSET 1 LIMIT 3", NULL, people,
                "[4,1,3]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.last OFFSET 4 LIMIT 3", NULL, people, "[5]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.last OFFSET 9 LIMIT 3", NULL, people, "[]");
    expect_rows("SELECT TOP 0 VALUE c.id FROM c ORDER BY c.last", NULL, people, "[]");
    /* ORDER BY an expression, over JOIN rows */
    expect_rows("SELECT VALUE c.givenName FROM f JOIN c IN f.children ORDER BY c.grade DESC", NULL,
                families, "[\"Lisa\",\"Henriette\",\"Jesse\"]");
    /* many rows: a bounded heap gives the same as a full sort */
    char docs2[8192];
    size_t n = 0;
    n += (size_t)snprintf(docs2 + n, sizeof docs2 - n, "[");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(docs2 + n, sizeof docs2 - n, "%s{\"id\":%d,\"k\":%d}", i ? "," : "",
                              i, (i * 37) % 50);
    snprintf(docs2 + n, sizeof docs2 - n, "]");
    expect_rows("SELECT TOP 6 VALUE c.id FROM c ORDER BY c.k", NULL, docs2, "[0,50,100,150,23,73]");
    expect_rows("SELECT VALUE c.id FROM c ORDER BY c.k DESC OFFSET 2 LIMIT 3", NULL, docs2,
                "[127,177,4]");
}

static void test_offset_limit(void **state)
{
    (void)state;
    const char *docs = "[{\"v\":1},{\"v\":2},{\"v\":3},{\"v\":4},{\"v\":5}]";
    expect_rows("SELECT VALUE c.v FROM c OFFSET 1 LIMIT 2", NULL, docs, "[2,3]");
    expect_rows("SELECT VALUE c.v FROM c OFFSET 0 LIMIT 0", NULL, docs, "[]");
    expect_rows("SELECT TOP 2 VALUE c.v FROM c", NULL, docs, "[1,2]");
    expect_rows("SELECT TOP @n VALUE c.v FROM c", "[{\"name\":\"@n\",\"value\":3}]", docs,
                "[1,2,3]");
    expect_rows("SELECT VALUE c.v FROM c OFFSET @o LIMIT @l",
                "[{\"name\":\"@o\",\"value\":3},{\"name\":\"@l\",\"value\":10}]", docs, "[4,5]");
    /* VALUE rows that are undefined are not rows */
    expect_rows("SELECT TOP 2 VALUE c.w FROM c", NULL, "[{\"w\":1},{},{\"w\":2},{\"w\":3}]",
                "[1,2]");
}

/* ---- the streaming contract ---- */

static void test_streaming(void **state)
{
    (void)state;
    struct q_query *q = parse_ok("SELECT VALUE c.v FROM c WHERE c.v > 1 OFFSET 1 LIMIT 2", NULL);
    struct q_info info;
    q_info(q, &info);
    assert_true(info.streaming);
    assert_int_equal(info.offset, 1);
    assert_int_equal(info.limit, 2);
    assert_int_equal(info.top, -1);
    assert_string_equal(info.root_alias, "c");
    struct q_exec *x = q_exec_new(q, NULL);
    assert_true(q_exec_streaming(x));
    json_t *out = json_array();
    struct q_error err;
    json_t *d1 = J("{\"v\":1}"), *d2 = J("{\"v\":2}"), *d3 = J("{\"v\":3}"), *d4 = J("{\"v\":4}");
    assert_int_equal(q_exec_feed(x, d1, out, &err), 0);
    assert_int_equal(q_exec_rows_passed(x), 0);
    assert_int_equal(q_exec_feed(x, d2, out, &err), 0); /* skipped by OFFSET */
    assert_int_equal(json_array_size(out), 0);
    assert_int_equal(q_exec_rows_passed(x), 1);
    assert_int_equal(q_exec_feed(x, d3, out, &err), 0);
    assert_int_equal(json_array_size(out), 1);
    assert_false(q_exec_done(x));
    uint64_t passed = q_exec_rows_passed(x);
    assert_int_equal(passed, 2);
    q_exec_free(x);

    /* resume from the continuation: the next row is the last one LIMIT allows */
    x = q_exec_new(q, NULL);
    q_exec_resume(x, passed);
    assert_int_equal(q_exec_feed(x, d4, out, &err), 0);
    assert_int_equal(json_array_size(out), 2);
    assert_true(q_exec_done(x));
    assert_int_equal(q_exec_finish(x, out, &err), 0);
    assert_int_equal(json_array_size(out), 2);
    json_t *w = J("[3,4]");
    assert_true(doc_equal(out, w));
    json_decref(w);
    q_exec_free(x);
    q_free(q);

    /* ORDER BY: kept back, unless the server feeds in order */
    q = parse_ok("SELECT TOP 2 VALUE c.v FROM c ORDER BY c.v DESC", NULL);
    q_info(q, &info);
    assert_false(info.streaming);
    assert_int_equal(info.n_order, 1);
    x = q_exec_new(q, NULL);
    assert_false(q_exec_streaming(x));
    json_array_clear(out);
    q_exec_feed(x, d1, out, &err);
    q_exec_feed(x, d3, out, &err);
    q_exec_feed(x, d2, out, &err);
    assert_int_equal(json_array_size(out), 0);
    q_exec_finish(x, out, &err);
    w = J("[3,2]");
    assert_true(doc_equal(out, w));
    json_decref(w);
    q_exec_free(x);
    x = q_exec_new(q, NULL);
    q_exec_presorted(x);
    assert_true(q_exec_streaming(x));
    json_array_clear(out);
    q_exec_feed(x, d4, out, &err);
    assert_int_equal(json_array_size(out), 1);
    q_exec_feed(x, d3, out, &err);
    assert_true(q_exec_done(x));
    q_exec_free(x);
    q_free(q);

    /* without FROM there is one row, at finish */
    q = parse_ok("SELECT VALUE 1 + 1", NULL);
    q_info(q, &info);
    assert_false(info.streaming);
    x = q_exec_new(q, NULL);
    assert_true(q_exec_done(x));
    json_array_clear(out);
    q_exec_finish(x, out, &err);
    w = J("[2]");
    assert_true(doc_equal(out, w));
    json_decref(w);
    q_exec_free(x);
    q_free(q);

    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    json_decref(d4);
    json_decref(out);
}

static void test_match(void **state)
{
    (void)state;
    struct q_query *q = parse_ok("SELECT * FROM c WHERE c.a > 1 AND c.b = 'x'", NULL);
    json_t *yes = J("{\"a\":2,\"b\":\"x\"}"), *no = J("{\"a\":1,\"b\":\"x\"}");
    json_t *undef = J("{\"b\":\"x\"}");
    assert_int_equal(q_match(q, yes, NULL), 1);
    assert_int_equal(q_match(q, no, NULL), 0);
    assert_int_equal(q_match(q, undef, NULL), 0);
    q_free(q);
    q = parse_ok("SELECT * FROM c WHERE EXISTS(SELECT VALUE 1 FROM t IN c.t WHERE t = @v)",
                 "[{\"name\":\"@v\",\"value\":3}]");
    json_t *d = J("{\"t\":[1,3]}");
    assert_int_equal(q_match(q, d, NULL), 1);
    json_decref(d);
    q_free(q);
    json_decref(yes);
    json_decref(no);
    json_decref(undef);
}

/* ---- the planner's view ---- */

static void expect_json(const json_t *v, const char *want)
{
    json_t *w = J(want);
    if (!v || !doc_equal(v, w)) {
        char *got = v ? doc_dump(v, NULL) : NULL;
        fail_msg("got %s want %s", got ? got : "(null)", want);
    }
    json_decref(w);
}

static void test_sargs(void **state)
{
    (void)state;
    struct q_query *q =
        parse_ok("SELECT * FROM c WHERE c.a = 5 AND 'x' = c.b.c AND c.n IN (1, 2, 'x') AND c.r > 3 "
                 "AND c.r <= 9 AND c.t BETWEEN 'a' AND 'm' AND STARTSWITH(c.s, 'ab') "
                 "AND ARRAY_CONTAINS(c.tags, 'x') AND ARRAY_CONTAINS(c.items, {name: 'a'}, true) "
                 "AND IS_DEFINED(c.d) AND c[\"x y\"] = null AND c.arr[2] = true AND 3 > c.q",
                 NULL);
    struct q_sarg s[20];
    size_t n = q_sargs(q, s, 20);
    assert_int_equal(n, 13);
    assert_int_equal(s[0].kind, Q_SARG_EQ);
    expect_json(s[0].path, "[\"a\"]");
    expect_json(s[0].values, "[5]");
    assert_int_equal(s[1].kind, Q_SARG_EQ);
    expect_json(s[1].path, "[\"b\",\"c\"]");
    expect_json(s[1].values, "[\"x\"]");
    assert_int_equal(s[2].kind, Q_SARG_EQ);
    expect_json(s[2].values, "[1,2,\"x\"]");
    assert_int_equal(s[3].kind, Q_SARG_RANGE);
    expect_json(s[3].lo, "3");
    assert_false(s[3].lo_incl);
    assert_null(s[3].hi);
    assert_int_equal(s[4].kind, Q_SARG_RANGE);
    expect_json(s[4].hi, "9");
    assert_true(s[4].hi_incl);
    assert_null(s[4].lo);
    assert_int_equal(s[5].kind, Q_SARG_RANGE);
    expect_json(s[5].lo, "\"a\"");
    expect_json(s[5].hi, "\"m\"");
    assert_true(s[5].lo_incl && s[5].hi_incl);
    assert_int_equal(s[6].kind, Q_SARG_PREFIX);
    expect_json(s[6].path, "[\"s\"]");
    expect_json(s[6].lo, "\"ab\"");
    assert_int_equal(s[7].kind, Q_SARG_CONTAINS);
    expect_json(s[7].path, "[\"tags\"]");
    expect_json(s[7].elem_path, "[]");
    expect_json(s[7].values, "[\"x\"]");
    assert_int_equal(s[8].kind, Q_SARG_CONTAINS);
    expect_json(s[8].path, "[\"items\"]");
    expect_json(s[8].elem_path, "[\"name\"]");
    expect_json(s[8].values, "[\"a\"]");
    assert_int_equal(s[9].kind, Q_SARG_DEFINED);
    expect_json(s[9].path, "[\"d\"]");
    assert_int_equal(s[10].kind, Q_SARG_EQ);
    expect_json(s[10].path, "[\"x y\"]");
    expect_json(s[10].values, "[null]");
    expect_json(s[11].path, "[\"arr\",2]");
    assert_true(json_is_integer(json_array_get(s[11].path, 1)));
    assert_int_equal(s[12].kind, Q_SARG_RANGE); /* 3 > c.q is c.q < 3 */
    expect_json(s[12].hi, "3");
    assert_false(s[12].hi_incl);
    assert_int_equal(q_sargs(q, s, 2), 13);
    /* exact: comparisons with constants; not the function conditions */
    for (int i = 0; i < 13; i++)
        assert_int_equal(s[i].exact, i < 6 || i >= 10);
    struct q_info info;
    q_info(q, &info);
    assert_false(info.where_exact); /* STARTSWITH etc. are only necessary */
    assert_false(info.count_only);
    q_free(q);

    /* COUNT over exact conditions: the index can count it */
    static const struct {
        const char *q;
        int count_only, exact;
    } counts[] = {
        {"SELECT VALUE COUNT(1) FROM c WHERE c.a >= 1 AND c.a < 5", 1, 1},
        {"SELECT VALUE COUNT(1) FROM c WHERE c.a IN (1, 2)", 1, 1},
        {"SELECT VALUE COUNT(1) FROM c WHERE c.flag", 1, 1},
        {"SELECT VALUE COUNT(1) FROM c", 1, 0},
        {"SELECT VALUE COUNT(1) FROM c WHERE c.a = 1 OR c.b = 2", 1, 0},
        {"SELECT VALUE COUNT(1) FROM c WHERE STARTSWITH(c.s, 'a')", 1, 0},
        {"SELECT VALUE COUNT(c.a) FROM c WHERE c.a > 1", 0, 1},
        {"SELECT COUNT(1) FROM c WHERE c.a > 1", 0, 1},
        {"SELECT VALUE COUNT(1) FROM t IN c.tags WHERE t > 1", 0, 0},
        {"SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags WHERE c.a > 1", 0, 1},
        {"SELECT VALUE COUNT(1) FROM c WHERE c.a > 1 GROUP BY c.b", 0, 1},
        {"SELECT DISTINCT VALUE COUNT(1) FROM c WHERE c.a > 1", 0, 1},
    };
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        q = parse_ok(counts[i].q, NULL);
        q_info(q, &info);
        if (info.count_only != counts[i].count_only || info.where_exact != counts[i].exact)
            fail_msg("%s: count_only %d where_exact %d", counts[i].q, info.count_only,
                     info.where_exact);
        q_free(q);
    }

    /* nothing that is not necessary */
    static const char *none[] = {
        "SELECT * FROM c WHERE c.a = 1 OR c.b = 2",
        "SELECT * FROM c WHERE NOT (c.a = 1)",
        "SELECT * FROM c WHERE c.a != 1",
        "SELECT * FROM c WHERE c.a NOT IN (1)",
        "SELECT * FROM c WHERE c.a IN (1, [2])",
        "SELECT * FROM c WHERE c.a = [1]",
        "SELECT * FROM c WHERE c.a = {x: 1}",
        "SELECT * FROM c WHERE c.a = undefined",
        "SELECT * FROM c WHERE c.a > null",
        "SELECT * FROM c WHERE c.a BETWEEN 1 AND 'z'",
        "SELECT * FROM c WHERE STARTSWITH(c.s, 'ab', true)",
        "SELECT * FROM c WHERE ARRAY_CONTAINS(c.t, 'x', true)",
        "SELECT * FROM c WHERE ARRAY_CONTAINS(c.t, c.u)",
        "SELECT * FROM c WHERE NOT IS_DEFINED(c.a)",
        "SELECT t FROM c JOIN t IN c.tags WHERE t = 1",
        "SELECT * FROM x IN c.arr WHERE x.a = 1",
        "SELECT * FROM c WHERE c.a = c.b",
        "SELECT * FROM c WHERE c.a = @p",
        "SELECT * FROM c WHERE UPPER(c.a) = 'X'",
        "SELECT * FROM c WHERE c.a + 1 = 2",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        q = parse_ok(none[i], "[{\"name\":\"@p\",\"value\":[1]}]");
        if (q_sargs(q, s, 20) != 0)
            fail_msg("unexpected sarg for %s", none[i]);
        q_free(q);
    }
    /* a scalar parameter is a constant like any other */
    q = parse_ok("SELECT * FROM c WHERE c.a = @p AND c.b >= -2",
                 "[{\"name\":\"@p\",\"value\":\"v\"}]");
    assert_int_equal(q_sargs(q, s, 20), 2);
    expect_json(s[0].values, "[\"v\"]");
    expect_json(s[1].lo, "-2");
    assert_true(s[1].lo_incl);
    q_free(q);
}

/* FROM (SELECT ...): the subquery reads the documents, the outer select
 * its rows (docs: "SELECT COUNT(1) FROM (SELECT DISTINCT ...)"). */
static void test_from_subquery(void **state)
{
    (void)state;
    const char *emp = "[{\"team\":\"a\",\"pk\":\"e\"},{\"team\":\"b\",\"pk\":\"e\"},"
                      "{\"team\":\"a\",\"pk\":\"e\"},{\"team\":\"c\",\"pk\":\"x\"}]";
    expect_rows("SELECT VALUE COUNT(1) FROM (SELECT DISTINCT VALUE e.team FROM e "
                "WHERE e.pk = 'e') AS t",
                NULL, emp, "[2]");
    expect_rows("SELECT VALUE COUNT(1) FROM (SELECT DISTINCT r.team FROM root r)", NULL, emp,
                "[3]");
    expect_rows("SELECT * FROM (SELECT VALUE c.team FROM c WHERE c.pk = 'e')", NULL, emp,
                "[\"a\",\"b\",\"a\"]");
    expect_rows("SELECT VALUE t.team FROM (SELECT c.team FROM c) t WHERE t.team != 'a'", NULL, emp,
                "[\"b\",\"c\"]");
    expect_rows("SELECT VALUE x FROM (SELECT VALUE c.team FROM (SELECT * FROM c "
                "WHERE c.pk = 'e') c) x",
                NULL, emp, "[\"a\",\"b\",\"a\"]");
    expect_rows("SELECT TOP 1 VALUE t FROM (SELECT TOP 3 VALUE c.team FROM c) t", NULL, emp,
                "[\"a\"]");
    expect_rows("SELECT VALUE COUNT(1) FROM (SELECT VALUE 1)", NULL, emp, "[1]");
    /* docs (GROUP BY): an aggregate over a subquery with GROUP BY is refused */
    expect_error("SELECT VALUE COUNT(1) FROM (SELECT c.team FROM c GROUP BY c.team)",
                 "not supported");
    /* the outer select cannot see into the subquery's scope */
    expect_error("SELECT VALUE c.team FROM (SELECT VALUE c.team FROM c) t", "'c'");

    /* the planner: not streaming; sargs from the subquery's WHERE (the
     * select that reads documents), none from the outer one; the outer
     * ORDER BY is no document path */
    struct q_query *q = parse_ok("SELECT VALUE t FROM (SELECT VALUE c.team FROM c "
                                 "WHERE c.pk = 'e') t WHERE t = 'a' ORDER BY t",
                                 NULL);
    struct q_info info;
    q_info(q, &info);
    assert_false(info.streaming);
    assert_string_equal(info.root_alias, "c");
    struct q_sarg sg[4];
    assert_int_equal(q_sargs(q, sg, 4), 1);
    expect_json(sg[0].path, "[\"pk\"]");
    expect_json(sg[0].values, "[\"e\"]");
    int desc;
    assert_null(q_order(q, 0, &desc));
    struct q_ctx ctx = {0};
    struct q_exec *x = q_exec_new(q, &ctx);
    assert_false(q_exec_streaming(x));
    q_exec_presorted(x);
    assert_false(q_exec_streaming(x));
    q_exec_free(x);
    q_free(q);
    /* a JOIN over a subquery still streams by document */
    q = parse_ok("SELECT VALUE p.id FROM p JOIN (SELECT VALUE t FROM t IN p.tags)", NULL);
    q_info(q, &info);
    assert_true(info.streaming);
    assert_true(info.has_join);
    q_free(q);
}

static void test_order_paths(void **state)
{
    (void)state;
    struct q_query *q =
        parse_ok("SELECT * FROM r ORDER BY r.a.b DESC, r[\"x\"], UPPER(r.c), r.arr[1]", NULL);
    int desc = -1;
    expect_json(q_order(q, 0, &desc), "[\"a\",\"b\"]");
    assert_int_equal(desc, 1);
    expect_json(q_order(q, 1, &desc), "[\"x\"]");
    assert_int_equal(desc, 0);
    assert_null(q_order(q, 2, &desc));
    expect_json(q_order(q, 3, &desc), "[\"arr\",1]");
    assert_null(q_order(q, 4, &desc));
    struct q_info info;
    q_info(q, &info);
    assert_int_equal(info.n_order, 4);
    assert_true(info.select_star);
    assert_string_equal(info.root_alias, "r");
    q_free(q);

    q = parse_ok("SELECT DISTINCT VALUE COUNT(1) FROM c JOIN t IN c.x GROUP BY c.a", NULL);
    q_info(q, &info);
    assert_true(info.select_value);
    assert_true(info.distinct);
    assert_true(info.has_aggregate);
    assert_true(info.has_group_by);
    assert_true(info.has_join);
    assert_false(info.streaming);
    q_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),      cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_limits),    cmocka_unit_test(test_parse_fuzz),
        cmocka_unit_test(test_select),          cmocka_unit_test(test_literals),
        cmocka_unit_test(test_logic),           cmocka_unit_test(test_comparison),
        cmocka_unit_test(test_arithmetic),      cmocka_unit_test(test_conditional),
        cmocka_unit_test(test_in_between_like), cmocka_unit_test(test_join),
        cmocka_unit_test(test_join_bounds),     cmocka_unit_test(test_built_value_bounds),
        cmocka_unit_test(test_regex_budget),    cmocka_unit_test(test_subqueries),
        cmocka_unit_test(test_aggregates),      cmocka_unit_test(test_group_by),
        cmocka_unit_test(test_distinct),        cmocka_unit_test(test_order_by),
        cmocka_unit_test(test_offset_limit),    cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_match),           cmocka_unit_test(test_sargs),
        cmocka_unit_test(test_order_paths),     cmocka_unit_test(test_from_subquery),
        cmocka_unit_test(test_where_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
