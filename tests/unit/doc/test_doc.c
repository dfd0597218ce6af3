/*
 * test_doc.c — the document model: number round-trip (integers stay
 * integers, beyond-int64 integers parse, shortest doubles), member order,
 * id rules, partition key paths/extraction/canonical comparison, and
 * random bytes that must never crash the parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doc/doc.h"

static char *round_trip(const char *in)
{
    json_t *v = doc_parse(in, strlen(in), NULL);
    assert_non_null(v);
    char *out = doc_dump(v, NULL);
    json_decref(v);
    return out;
}

static void expect_rt(const char *in, const char *want)
{
    char *out = round_trip(in);
    assert_string_equal(out, want);
    free(out);
}

static void test_numbers(void **state)
{
    (void)state;
    expect_rt("42", "42");
    expect_rt("-7", "-7");
    expect_rt("42.0", "42");
    expect_rt("0.1", "0.1");
    expect_rt("1e2", "100");
    expect_rt("12345678901234567890", "12345678901234567000");
    expect_rt("123456789012345678901234567890", "1.2345678901234568e+29");
    expect_rt("9007199254740993", "9007199254740992");
    expect_rt("1e-7", "1e-7");
    expect_rt("0.000025", "0.000025");
    expect_rt("-0", "0");
    expect_rt("0.30000000000000004", "0.30000000000000004");
    expect_rt("1.7976931348623157e308", "1.7976931348623157e+308");
}

static void test_order_and_strings(void **state)
{
    (void)state;
    expect_rt("{\"z\":1,\"a\":[true,false,null],\"m\":{\"b\":\"x\"}}",
              "{\"z\":1,\"a\":[true,false,null],\"m\":{\"b\":\"x\"}}");
    expect_rt("\"\\u0070\\u0031\\n\\u0001\\\"\"", "\"p1\\n\\u0001\\\"\"");
    expect_rt("\"\\u00f6\"", "\"\xc3\xb6\"");
    /* canonical output is a fixed point */
    char *once = round_trip("{\"a\" : 1.50, \"b\":\"\\/\"}");
    char *twice = round_trip(once);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
}

static void test_ids(void **state)
{
    (void)state;
    assert_null(doc_id_check("abc", 3));
    assert_null(doc_id_check("a b+c", 5));
    assert_non_null(doc_id_check("", 0));
    assert_non_null(doc_id_check("a/b", 3));
    assert_non_null(doc_id_check("a\\b", 3));
    assert_non_null(doc_id_check("a?b", 3));
    assert_non_null(doc_id_check("a#b", 3));
    char id[300];
    memset(id, 'x', sizeof id);
    assert_null(doc_id_check(id, 255));
    assert_non_null(doc_id_check(id, 256));
    /* 255 two-byte characters are 255 characters */
    char u[510];
    for (int i = 0; i < 255; i++) {
        u[2 * i] = (char)0xc3;
        u[2 * i + 1] = (char)0xb6;
    }
    assert_null(doc_id_check(u, 510));
}

static char *canon_of_header(const char *h)
{
    json_t *v = doc_pk_header(h);
    assert_non_null(v);
    char *c = doc_pk_canon(v);
    json_decref(v);
    return c;
}

static void test_partition_keys(void **state)
{
    (void)state;
    char *a = canon_of_header("[\"p1\"]");
    char *b = canon_of_header("[\"\\u0070\\u0031\"]");
    assert_string_equal(a, b);
    free(a);
    free(b);
    a = canon_of_header("[5]");
    b = canon_of_header("[5.0]");
    assert_string_equal(a, b);
    free(a);
    free(b);
    a = canon_of_header("[\"\\u00f6\"]");
    b = canon_of_header("[\"\xc3\xb6\"]");
    assert_string_equal(a, b);
    free(a);
    free(b);
    a = canon_of_header("[{}]");
    assert_string_equal(a, "[{}]");
    free(a);
    assert_null(doc_pk_header("[\"unterminated"));
    /* Cosmos requires an array: a bare value is refused, not wrapped. */
    assert_null(doc_pk_header("\"x\""));
    assert_null(doc_pk_header("5"));
    assert_null(doc_pk_header("null"));
    assert_null(doc_pk_header("{}"));
    a = canon_of_header("[]");
    assert_string_equal(a, "[]");
    free(a);

    json_t *paths = json_array();
    json_array_append_new(paths, doc_pk_path_parse("/a/b"));
    json_array_append_new(paths, doc_pk_path_parse("/\"x y\""));
    assert_non_null(json_array_get(paths, 0));
    assert_non_null(json_array_get(paths, 1));
    assert_null(doc_pk_path_parse("a"));
    assert_null(doc_pk_path_parse("/"));
    assert_null(doc_pk_path_parse("/a//b"));
    const char *d = "{\"a\":{\"b\":\"v\"},\"x y\":3}";
    json_t *doc = doc_parse(d, strlen(d), NULL);
    json_t *pk = doc_pk_extract(doc, paths);
    char *c = doc_pk_canon(pk);
    assert_string_equal(c, "[\"v\",3]");
    free(c);
    json_decref(pk);
    json_decref(doc);
    d = "{\"a\":1}";
    doc = doc_parse(d, strlen(d), NULL);
    pk = doc_pk_extract(doc, paths);
    c = doc_pk_canon(pk);
    assert_string_equal(c, "[{},{}]"); /* absent paths are undefined */
    free(c);
    json_decref(pk);
    json_decref(doc);
    json_decref(paths);
}

static void test_equal(void **state)
{
    (void)state;
    json_t *a = doc_parse("{\"a\":[1,2],\"b\":1}", 17, NULL);
    json_t *b = doc_parse("{\"b\":1.0,\"a\":[1,2.0]}", 21, NULL);
    assert_true(doc_equal(a, b));
    json_t *c = doc_parse("{\"b\":1,\"a\":[2,1]}", 17, NULL);
    assert_false(doc_equal(a, c));
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_depth_and_fuzz(void **state)
{
    (void)state;
    char deep[2 * DOC_MAX_DEPTH + 10];
    memset(deep, '[', sizeof deep);
    assert_null(doc_parse(deep, sizeof deep, NULL));
    srand(42);
    static const char alphabet[] = "{}[]\",:\\0123456789.eE+-truefalsnu \t\n\x01\xff";
    char buf[512];
    for (int iter = 0; iter < 50000; iter++) {
        size_t len = (size_t)(rand() % sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = rand() % 4 ? alphabet[rand() % (sizeof alphabet - 1)] : (char)rand();
        json_t *v = doc_parse(buf, len, NULL);
        if (v) {
            char *out = doc_dump(v, NULL);
            assert_non_null(out);
            json_t *again = doc_parse(out, strlen(out), NULL);
            assert_non_null(again);
            assert_true(doc_equal(v, again));
            json_decref(again);
            free(out);
            json_decref(v);
        }
        json_t *h = doc_pk_header(len ? buf : NULL);
        json_decref(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers), cmocka_unit_test(test_order_and_strings),
        cmocka_unit_test(test_ids),     cmocka_unit_test(test_partition_keys),
        cmocka_unit_test(test_equal),   cmocka_unit_test(test_depth_and_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
