/*
 * test_query_fuzz.c — hostile query text (issue: "malformed and hostile
 * queries get 400 with a clear message and never crash the server").
 *
 * Seed queries covering the language are mutated with a fixed-seed
 * generator (bytes flipped or cut, tokens and pieces of other queries
 * inserted) and each result is parsed, planned and run over a few
 * documents. Asserted for every one: a failure to parse is a 400 with a
 * message and a position inside the text (or -1); a query that parses
 * runs to the end or fails with a 400; two runs of it give the same rows.
 * Under ASan and UBSan (make test runs both) any memory or undefined-
 * behaviour error fails the test too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doc/doc.h"
#include "fixture.h"
#include "query/query.h"

static const char *const seeds[] = {
    "SELECT * FROM c",
    "SELECT VALUE c.id FROM c WHERE c.n > 1 ORDER BY c.n DESC",
    "SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags",
    "SELECT TOP 2 c.id, c.a.b AS ab FROM c ORDER BY c.id",
    "SELECT c.id FROM c WHERE c.s LIKE 'a%' ESCAPE '!' OR NOT IS_DEFINED(c.s)",
    "SELECT COUNT(1) AS n, SUM(c.n) AS s, AVG(c.n) AS a, MIN(c.s) AS lo, MAX(c.s) AS hi FROM c",
    "SELECT c.s, COUNT(1) AS n FROM c GROUP BY c.s",
    "SELECT * FROM c WHERE c.n BETWEEN 1 AND 3 AND c.id IN ('a', 'b', 'c')",
    "SELECT * FROM c OFFSET 1 LIMIT 2",
    "SELECT VALUE {\"x\": c.n * 2 + 1, \"y\": [c.id, c.s ?? 'none']} FROM c",
    "SELECT VALUE c.n > 2 ? 'big' : 'small' FROM c",
    "SELECT * FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t = 'x')",
    "SELECT c.id, ARRAY(SELECT VALUE t FROM t IN c.tags WHERE t != 'y') AS ts FROM c",
    "SELECT VALUE t FROM t IN c.tags",
    "SELECT * FROM c WHERE c[\"a b\"] = 1 OR c.arr[0] = 2",
    "SELECT * FROM c WHERE ARRAY_CONTAINS(c.tags, 'x') AND STARTSWITH(c.id, 'a', true)",
    "SELECT VALUE CONCAT(UPPER(c.s), LOWER(c.id), SUBSTRING(c.id, 0, 1), REPLICATE('-', 3)) FROM c",
    "SELECT VALUE [ABS(-1), CEILING(1.5), FLOOR(1.5), ROUND(2.5), POWER(2, 10), SQRT(9), LOG(1)]",
    "SELECT VALUE [ARRAY_LENGTH(c.tags), ARRAY_SLICE(c.tags, 1), SetUnion(c.tags, ['z'])] FROM c",
    "SELECT VALUE DateTimeAdd('dd', 1, '2020-01-01T00:00:00.0000000Z')",
    "SELECT VALUE [DateTimePart('yyyy', GetCurrentDateTime()), "
    "DateTimeDiff('hh', '2020-01-01T00:00:00Z', '2020-01-02T00:00:00Z')]",
    "SELECT VALUE RegexMatch(c.s, '^a.*', 'i') FROM c",
    "SELECT VALUE StringToNumber(c.num) FROM c",
    "SELECT VALUE TOSTRING(c) FROM c",
    "SELECT * FROM c WHERE c.n = @p OR c.id IN (@q, 'z')",
    "SELECT VALUE c.n FROM c ORDER BY c.n ASC, c.id DESC",
    "SELECT VALUE -c.n % 3 / 2 - 1 | 2 & 3 ^ ~4 << 1 >> 1 >>> 1 || 'x' FROM c",
    "SELECT VALUE IS_NUMBER(c.n) AND IS_STRING(c.s) AND IS_BOOL(true) AND IS_NULL(null) FROM c",
    "SELECT VALUE 'esc\\'aped \\u00e9 \\n' FROM c",
    "SELECT * FROM root r WHERE r.id = 'a' ORDER BY r._ts",
};

static const char *const tokens[] = {
    "SELECT",
    "VALUE",
    "DISTINCT",
    "TOP",
    "FROM",
    "IN",
    "JOIN",
    "WHERE",
    "ORDER BY",
    "GROUP BY",
    "OFFSET",
    "LIMIT",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "LIKE",
    "ESCAPE",
    "EXISTS",
    "ARRAY",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "?",
    ":",
    "??",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "@p",
    "@missing",
    "c",
    "c.n",
    "c.tags",
    "1",
    "-1",
    "1e308",
    "0.5",
    "'x'",
    "\"y\"",
    "null",
    "true",
    "false",
    "undefined",
    "ASC",
    "DESC",
    "COUNT(1)",
    "SUM(c.n)",
    "AVG(c.n)",
    "SUBSTRING(c.id, 1, 2)",
    "REPLICATE('a', 10000)",
    "udf.f(1)",
    "c[\"a b\"]",
    "c.arr[0]",
    "'",
    "\"",
    ";",
    "--",
    "\\u0000",
    "\xff",
    "\xc3",
    "9999999999999999999999",
};

#define NSEEDS     (sizeof seeds / sizeof *seeds)
#define NTOKENS    (sizeof tokens / sizeof *tokens)
#define ITERATIONS 100000

static const char docs_json[] =
    "[{\"id\":\"a\",\"n\":1,\"s\":\"apple\",\"tags\":[\"x\",\"y\"],\"a\":{\"b\":1},"
    "\"arr\":[2,3],\"num\":\"12.5\",\"_ts\":3},"
    "{\"id\":\"b\",\"n\":2.5,\"s\":\"Banana\",\"tags\":[],\"a b\":1,\"num\":\"x\",\"_ts\":1},"
    "{\"id\":\"c\",\"n\":\"3\",\"tags\":[\"x\",[1],{\"k\":null}],\"arr\":[],\"_ts\":2},"
    "{\"id\":\"d\",\"n\":null,\"s\":\"\\u00e9t\\u00e9\",\"a\":[1,{\"b\":2}],\"_ts\":5},"
    "{\"id\":\"e\",\"n\":-1e300,\"s\":\"a%b\",\"tags\":\"x\",\"arr\":[2],\"_ts\":4}]";

static const char params_json[] =
    "[{\"name\":\"@p\",\"value\":2.5},{\"name\":\"@q\",\"value\":\"b\"}]";

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    return fx_xorshift(&rng);
}

/* A mutation of a seed into out (cap bytes); returns its length. */
static size_t mutate(char *out, size_t cap)
{
    const char *s = seeds[next() % NSEEDS];
    size_t n = strlen(s);
    memcpy(out, s, n);
    int k = next() % 2 ? 1 : 1 + (int)(next() % 3);
    for (int i = 0; i < k; i++) {
        switch (next() % 4) {
        case 0: /* a byte */
            if (n)
                out[next() % n] = (char)(next() & 0xff);
            break;
        case 1: { /* a cut */
            if (!n)
                break;
            size_t a = next() % n, b = a + next() % (n - a + 1);
            memmove(out + a, out + b, n - b);
            n -= b - a;
            break;
        }
        case 2: { /* a token */
            const char *t = tokens[next() % NTOKENS];
            size_t tl = strlen(t), at = next() % (n + 1);
            if (n + tl + 2 > cap)
                break;
            memmove(out + at + tl + 2, out + at, n - at);
            out[at] = ' ';
            memcpy(out + at + 1, t, tl);
            out[at + 1 + tl] = ' ';
            n += tl + 2;
            break;
        }
        default: { /* the tail of another query */
            const char *t = seeds[next() % NSEEDS];
            size_t tl = strlen(t), from = next() % (tl + 1), at = next() % (n + 1);
            if (at + (tl - from) > cap)
                break;
            memcpy(out + at, t + from, tl - from);
            n = at + (tl - from);
            break;
        }
        }
    }
    return n;
}

/* All rows of q over docs, or NULL with err filled. */
static json_t *run(const struct q_query *q, const json_t *docs, struct q_error *err)
{
    struct q_ctx ctx = {1700000000000};
    struct q_exec *x = q_exec_new(q, &ctx);
    assert_non_null(x);
    json_t *out = json_array();
    size_t i;
    json_t *d;
    int rc = 0;
    json_array_foreach(docs, i, d)
    {
        if ((rc = q_exec_feed(x, d, out, err)) != 0 || q_exec_done(x))
            break;
    }
    if (!rc)
        rc = q_exec_finish(x, out, err);
    q_exec_free(x);
    if (rc) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static void test_seeds_parse(void **state)
{
    (void)state;
    json_t *params = doc_parse(params_json, strlen(params_json), NULL);
    for (size_t i = 0; i < NSEEDS; i++) {
        struct q_error err;
        struct q_query *q = q_parse(seeds[i], strlen(seeds[i]), params, &err);
        if (!q)
            fail_msg("seed %zu does not parse: %s\n  %s", i, err.msg, seeds[i]);
        q_free(q);
    }
    json_decref(params);
}

static void test_mutations(void **state)
{
    (void)state;
    json_t *docs = doc_parse(docs_json, strlen(docs_json), NULL);
    json_t *params = doc_parse(params_json, strlen(params_json), NULL);
    assert_non_null(docs);
    assert_non_null(params);
    static char text[16384];
    long parsed = 0, ran = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        size_t n = mutate(text, sizeof text);
        struct q_error err = {0};
        struct q_query *q = q_parse(text, n, params, &err);
        if (!q) {
            if (err.status != 400 || !err.msg[0] || err.pos < -1 || err.pos > (int)n)
                fail_msg("iteration %d: status %d pos %d message '%s' for:\n%.*s", it, err.status,
                         err.pos, err.msg, (int)n, text);
            continue;
        }
        parsed++;
        struct q_info info;
        q_info(q, &info);
        struct q_sarg sargs[8];
        q_sargs(q, sargs, 8);
        int desc;
        q_order(q, 0, &desc);
        struct q_error e1 = {0}, e2 = {0};
        json_t *a = run(q, docs, &e1), *b = run(q, docs, &e2);
        if (!a && e1.status != 400)
            fail_msg("iteration %d: run failed with %d '%s' for:\n%.*s", it, e1.status, e1.msg,
                     (int)n, text);
        if ((a == NULL) != (b == NULL) || (a && !json_equal(a, b)))
            fail_msg("iteration %d: two runs differ for:\n%.*s", it, (int)n, text);
        ran += a != NULL;
        json_decref(a);
        json_decref(b);
        q_free(q);
    }
    print_message("%d mutated queries: %ld parsed, %ld ran to the end\n", ITERATIONS, parsed, ran);
    assert_true(parsed > 1000); /* the mutations still reach the planner and executor */
    json_decref(docs);
    json_decref(params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_parse),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
