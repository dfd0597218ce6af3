/*
 * test_index.c — indexing policies and index keys (ixpolicy.c): which
 * document nodes the default and custom policies index (Cosmos path rules:
 * the root path, /?, /[], the more precise path wins), invalid policies refused,
 * composite index lookup, and key order within a path following the
 * Cosmos type order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/qval.h"
#include "server/srv.h"

static struct ixpol *policy(const char *json)
{
    json_t *p = doc_parse(json, strlen(json), NULL);
    assert_non_null(p);
    struct ixpol *pol = NULL;
    char msg[320];
    int st = ixpol_parse(p, &pol, msg, sizeof msg);
    json_decref(p);
    if (st != 0)
        fail_msg("policy %s refused: %s", json, msg);
    return pol;
}

static int refused(const char *json)
{
    json_t *p = doc_parse(json, strlen(json), NULL);
    struct ixpol *pol = NULL;
    char msg[320] = "";
    int st = ixpol_parse(p, &pol, msg, sizeof msg);
    json_decref(p);
    ixpol_put(pol);
    if (st)
        assert_true(strlen(msg) > 10);
    return st == 400;
}

/* The key of value v (JSON text, NULL: no value part) at path (JSON array
 * of segments, null for []). */
static void key_of(const char *path, const char *v, struct doc_buf *b)
{
    json_t *segs = doc_parse(path, strlen(path), NULL);
    assert_int_equal(ix_path_prefix(b, segs), 0);
    json_decref(segs);
    if (v) {
        json_t *val = doc_parse(v, strlen(v), NULL);
        assert_int_equal(q_key_put(b, val), 0);
        json_decref(val);
    }
}

static int has_key(const struct ixkeys *k, const char *path, const char *v)
{
    struct doc_buf want = {0};
    key_of(path, v, &want);
    int found = 0;
    for (size_t i = 0; i < k->n && !found; i++) {
        size_t len;
        const char *got = ixkeys_get(k, i, &len);
        found = len == want.len && memcmp(got, want.p, len) == 0;
    }
    doc_buf_free(&want);
    return found;
}

static void keys_of(const struct ixpol *p, const char *doc, struct ixkeys *k)
{
    json_t *d = doc_parse(doc, strlen(doc), NULL);
    assert_non_null(d);
    assert_int_equal(ix_doc_keys(p, d, k), 0);
    json_decref(d);
}

static const char DOC[] = "{\"id\":\"a\",\"n\":5,\"arr\":[1,\"x\",{\"b\":true},1],\"o\":{},"
                          "\"_etag\":\"e\",\"_rid\":\"r\",\"_ts\":7}";

static void test_default_policy(void **state)
{
    (void)state;
    struct ixpol *p = policy("{\"indexingMode\":\"consistent\",\"includedPaths\":[{\"path\":"
                             "\"/*\"}],\"excludedPaths\":[{\"path\":\"/\\\"_etag\\\"/?\"}]}");
    struct ixkeys k;
    keys_of(p, DOC, &k);
    assert_true(has_key(&k, "[\"id\"]", "\"a\""));
    assert_true(has_key(&k, "[\"n\"]", "5"));
    assert_false(has_key(&k, "[\"arr\"]", "[]"));    /* found through its elements */
    assert_true(has_key(&k, "[\"arr\",null]", "1")); /* elements */
    assert_true(has_key(&k, "[\"arr\",null]", "\"x\""));
    assert_false(has_key(&k, "[\"arr\",null]", "{}"));
    assert_true(has_key(&k, "[\"arr\",null,\"b\"]", "true"));
    assert_true(has_key(&k, "[\"o\"]", "{}")); /* an empty object: a type marker */
    assert_true(has_key(&k, "[\"_ts\"]", "7"));
    assert_false(has_key(&k, "[\"_etag\"]", "\"e\"")); /* excluded by the policy */
    assert_false(has_key(&k, "[\"_rid\"]", "\"r\""));  /* system property */
    assert_false(has_key(&k, "[\"n\"]", "6"));
    /* id n 1 x b o _ts: the element 1 is there twice, indexed once */
    assert_int_equal(k.n, 7);
    /* sorted, distinct */
    for (size_t i = 1; i < k.n; i++)
        assert_true(ixkeys_cmp(&k, i - 1, &k, i) < 0);
    ixkeys_free(&k);
    ixpol_put(p);
}

static void test_custom_paths(void **state)
{
    (void)state;
    /* everything but the array subtree */
    struct ixpol *p = policy("{\"includedPaths\":[{\"path\":\"/*\"}],\"excludedPaths\":[{\"path\":"
                             "\"/arr/*\"}]}");
    struct ixkeys k;
    keys_of(p, DOC, &k);
    assert_true(has_key(&k, "[\"n\"]", "5"));
    assert_false(has_key(&k, "[\"arr\"]", "[]"));
    assert_false(has_key(&k, "[\"arr\",null]", "1"));
    assert_false(has_key(&k, "[\"arr\",null,\"b\"]", "true"));
    ixkeys_free(&k);
    ixpol_put(p);

    /* only n and the elements' b: the more precise path wins over the root */
    p = policy("{\"includedPaths\":[{\"path\":\"/n/?\"},{\"path\":\"/arr/[]/b/?\"}],"
               "\"excludedPaths\":[{\"path\":\"/*\"}]}");
    keys_of(p, DOC, &k);
    assert_true(has_key(&k, "[\"n\"]", "5"));
    assert_true(has_key(&k, "[\"arr\",null,\"b\"]", "true"));
    assert_false(has_key(&k, "[\"id\"]", "\"a\""));
    assert_false(has_key(&k, "[\"arr\",null]", "1"));
    assert_int_equal(k.n, 2);
    json_t *segs = json_pack("[s]", "n");
    assert_true(ixpol_path_indexed(p, segs));
    json_decref(segs);
    segs = json_pack("[s]", "id");
    assert_false(ixpol_path_indexed(p, segs));
    json_decref(segs);
    segs = json_pack("[s,n,s]", "arr", "b");
    assert_true(ixpol_path_indexed(p, segs));
    json_decref(segs);
    segs = json_pack("[s,i]", "arr", 0); /* positions are never in the index */
    assert_false(ixpol_path_indexed(p, segs));
    json_decref(segs);
    ixkeys_free(&k);
    ixpol_put(p);

    /* quoted names */
    p = policy("{\"includedPaths\":[{\"path\":\"/\\\"a b\\\"/?\"}],\"excludedPaths\":[{\"path\":"
               "\"/*\"}]}");
    keys_of(p, "{\"a b\":1,\"a\":2}", &k);
    assert_true(has_key(&k, "[\"a b\"]", "1"));
    assert_int_equal(k.n, 1);
    ixkeys_free(&k);
    ixpol_put(p);

    /* none: nothing */
    p = policy("{\"indexingMode\":\"none\",\"automatic\":false}");
    keys_of(p, DOC, &k);
    assert_int_equal(k.n, 0);
    ixkeys_free(&k);
    ixpol_put(p);
}

static void test_invalid_policies(void **state)
{
    (void)state;
    assert_true(refused("{\"includedPaths\":[{\"path\":\"/a/b\"}]}"));     /* no terminal */
    assert_true(refused("{\"includedPaths\":[{\"path\":\"a/?\"}]}"));      /* not rooted */
    assert_true(refused("{\"includedPaths\":[{\"path\":\"/a/*/b/?\"}]}")); /* wildcard inside */
    assert_true(refused("{\"includedPaths\":[{\"nope\":1}]}"));
    assert_true(refused("{\"includedPaths\":[{\"path\":\"/a/?\"}]}")); /* no root path */
    assert_true(refused("{\"indexingMode\":\"sometimes\"}"));
    assert_true(refused("{\"includedPaths\":\"/*\"}"));
    assert_true(refused("{\"includedPaths\":[{\"path\":\"/*\"}],\"compositeIndexes\":[[{\"path\":"
                        "\"/a\"}]]}")); /* one path */
    assert_true(refused("{\"includedPaths\":[{\"path\":\"/*\"}],\"compositeIndexes\":[[{\"path\":"
                        "\"/a\"},{\"path\":\"/b\",\"order\":\"sideways\"}]]}"));
}

static void test_composite(void **state)
{
    (void)state;
    struct ixpol *p =
        policy("{\"includedPaths\":[{\"path\":\"/*\"}],\"compositeIndexes\":[[{\"path\":\"/a\","
               "\"order\":\"ascending\"},{\"path\":\"/b\",\"order\":\"descending\"}]]}");
    json_t *a = json_pack("[s]", "a"), *b = json_pack("[s]", "b");
    const json_t *paths[2] = {a, b};
    int rev = -1;
    assert_int_equal(ixpol_composite_find(p, paths, (int[]){0, 1}, 2, &rev), 0);
    assert_int_equal(rev, 0);
    assert_int_equal(ixpol_composite_find(p, paths, (int[]){1, 0}, 2, &rev), 0);
    assert_int_equal(rev, 1); /* all directions inverted: read backwards */
    assert_int_equal(ixpol_composite_find(p, paths, (int[]){0, 0}, 2, &rev), -1);
    const json_t *swapped[2] = {b, a};
    assert_int_equal(ixpol_composite_find(p, swapped, (int[]){1, 0}, 2, &rev), -1);
    /* one composite entry per document, also when a component is missing */
    struct ixkeys k;
    keys_of(p, "{\"a\":1}", &k);
    size_t comp = 0;
    for (size_t i = 0; i < k.n; i++) {
        size_t len;
        comp += (unsigned char)ixkeys_get(&k, i, &len)[0] == 0xF0;
    }
    assert_int_equal(comp, 1);
    ixkeys_free(&k);
    json_decref(a);
    json_decref(b);
    ixpol_put(p);
}

/* Keys of one path sort like the Cosmos type order:
 * null < false < true < numbers < strings < arrays < objects. */
static void test_key_order(void **state)
{
    (void)state;
    const char *vals[] = {"null",  "false", "true",   "-1e300",      "-2.5",
                          "0",     "1",     "1.5",    "1e300",       "\"\"",
                          "\"A\"", "\"a\"", "\"ab\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"",
                          "[]",    "{}"};
    struct ixpol *p = policy("{\"includedPaths\":[{\"path\":\"/*\"}]}");
    struct doc_buf prev = {0};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"v\":%s}", vals[i]);
        struct ixkeys k;
        keys_of(p, doc, &k);
        assert_int_equal(k.n, 1);
        size_t len;
        const char *key = ixkeys_get(&k, 0, &len);
        if (i > 0) {
            size_t m = len < prev.len ? len : prev.len;
            int c = memcmp(prev.p, key, m);
            assert_true(c < 0 || (c == 0 && prev.len < len));
        }
        prev.len = 0;
        assert_int_equal(doc_buf_put(&prev, key, len), 0);
        ixkeys_free(&k);
    }
    doc_buf_free(&prev);
    ixpol_put(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy),   cmocka_unit_test(test_custom_paths),
        cmocka_unit_test(test_invalid_policies), cmocka_unit_test(test_composite),
        cmocka_unit_test(test_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
