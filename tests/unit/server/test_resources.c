/*
 * test_resources.c — pieces of the resource handlers that need no server:
 * Cosmos error bodies, patch operations, query filters through the engine (parse, match,
 * hostile input), resource id encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "query/query.h"
#include "server/srv.h"

static void test_error_body(void **state)
{
    (void)state;
    struct req r;
    memset(&r, 0, sizeof r);
    assert_int_equal(srv_error(&r, 404, 1003, "Owner resource does not exist."), 404);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.substatus, 1003);
    assert_string_equal(r.out.p,
                        "{\"code\":\"NotFound\",\"message\":\"Owner resource does not exist.\"}");
    srv_error(&r, 412, 0, "x");
    assert_string_equal(r.out.p, "{\"code\":\"PreconditionFailed\",\"message\":\"x\"}");
    static const int codes[] = {400, 401, 403, 404, 405, 408, 409, 412, 413, 429, 500, 503};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        srv_error(&r, codes[i], 0, "m");
        json_t *v = doc_parse(r.out.p, r.out.len, NULL);
        assert_non_null(v);
        assert_string_equal(json_string_value(json_object_get(v, "code")),
                            srv_status_code(codes[i]));
        assert_non_null(json_string_value(json_object_get(v, "message")));
        json_decref(v);
    }
    doc_buf_free(&r.out);
}

static char *patched(const char *doc, const char *ops, int want_rc)
{
    json_t *d = doc_parse(doc, strlen(doc), NULL);
    json_t *o = doc_parse(ops, strlen(ops), NULL);
    assert_non_null(d);
    assert_non_null(o);
    char msg[200];
    int rc = patch_apply(d, o, msg, sizeof msg);
    assert_int_equal(rc != 0, want_rc != 0);
    char *out = rc ? NULL : doc_dump(d, NULL);
    json_decref(d);
    json_decref(o);
    return out;
}

static void expect_patch(const char *doc, const char *ops, const char *want)
{
    char *out = patched(doc, ops, 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_patch(void **state)
{
    (void)state;
    const char *d = "{\"id\":\"a\",\"n\":1,\"arr\":[1,2],\"o\":{\"k\":\"v\"}}";
    expect_patch(d, "[{\"op\":\"add\",\"path\":\"/x\",\"value\":true}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,2],\"o\":{\"k\":\"v\"},\"x\":true}");
    expect_patch(d, "[{\"op\":\"add\",\"path\":\"/arr/0\",\"value\":0}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[0,1,2],\"o\":{\"k\":\"v\"}}");
    expect_patch(d, "[{\"op\":\"add\",\"path\":\"/arr/-\",\"value\":3}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,2,3],\"o\":{\"k\":\"v\"}}");
    expect_patch(d, "[{\"op\":\"set\",\"path\":\"/arr/1\",\"value\":9}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,9],\"o\":{\"k\":\"v\"}}");
    expect_patch(d, "[{\"op\":\"replace\",\"path\":\"/o/k\",\"value\":\"w\"}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,2],\"o\":{\"k\":\"w\"}}");
    expect_patch(d, "[{\"op\":\"remove\",\"path\":\"/arr/0\"}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[2],\"o\":{\"k\":\"v\"}}");
    expect_patch(d, "[{\"op\":\"incr\",\"path\":\"/n\",\"value\":2.5}]",
                 "{\"id\":\"a\",\"n\":3.5,\"arr\":[1,2],\"o\":{\"k\":\"v\"}}");
    expect_patch(d, "[{\"op\":\"incr\",\"path\":\"/m\",\"value\":2}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,2],\"o\":{\"k\":\"v\"},\"m\":2}");
    expect_patch(d, "[{\"op\":\"move\",\"from\":\"/o/k\",\"path\":\"/k\"}]",
                 "{\"id\":\"a\",\"n\":1,\"arr\":[1,2],\"o\":{},\"k\":\"v\"}");
    /* failures */
    assert_null(patched(d, "[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":1}]", 1));
    assert_null(patched(d, "[{\"op\":\"remove\",\"path\":\"/nope\"}]", 1));
    assert_null(patched(d, "[{\"op\":\"add\",\"path\":\"/no/such\",\"value\":1}]", 1));
    assert_null(patched(d, "[{\"op\":\"incr\",\"path\":\"/o\",\"value\":1}]", 1));
    assert_null(patched(d, "[{\"op\":\"incr\",\"path\":\"/n\",\"value\":\"1\"}]", 1));
    assert_null(patched(d, "[{\"op\":\"move\",\"from\":\"/o\",\"path\":\"/o/x\"}]", 1));
    assert_null(patched(d, "[{\"op\":\"add\",\"path\":\"/arr/7\",\"value\":1}]", 1));
    assert_null(patched(d, "[{\"op\":\"frobnicate\",\"path\":\"/n\"}]", 1));
    assert_null(patched(d, "[{\"op\":\"add\",\"path\":\"\",\"value\":1}]", 1));
    assert_null(patched(d, "[]", 1));
}

static int matches(const char *sql, const char *params, const char *doc)
{
    json_t *p = params ? doc_parse(params, strlen(params), NULL) : NULL;
    struct q_error e;
    struct q_query *q = q_parse(sql, strlen(sql), p, &e);
    json_decref(p);
    if (!q) {
        assert_int_equal(e.status, 400);
        assert_true(strlen(e.msg) > 0);
        return -1;
    }
    json_t *d = doc_parse(doc, strlen(doc), NULL);
    struct q_ctx ctx = {0};
    int m = q_match(q, d, &ctx);
    json_decref(d);
    q_free(q);
    return m;
}

static void test_query(void **state)
{
    (void)state;
    const char *d =
        "{\"id\":\"a\",\"n\":5,\"s\":\"x\",\"o\":{\"k\":[1,{\"z\":true}]},\"nul\":null}";
    assert_int_equal(matches("SELECT * FROM c", NULL, d), 1);
    assert_int_equal(matches("select * from root", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.n = 5", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.n = 5.0", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.n = '5'", NULL, d), 0);
    assert_int_equal(matches("SELECT * FROM c WHERE c.s = \"x\" AND c.n > 4", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.s = 'x' AND c.n < 4", NULL, d), 0);
    assert_int_equal(matches("SELECT * FROM c WHERE c.o.k[1].z = true", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c[\"o\"][\"k\"][0] = 1", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.nul = null", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c WHERE c.missing = null", NULL, d), 0);
    assert_int_equal(matches("SELECT * FROM c WHERE c.missing != 1", NULL, d), 0);
    assert_int_equal(matches("SELECT * FROM c WHERE 5 = c.n", NULL, d), 1);
    assert_int_equal(
        matches("SELECT * FROM c WHERE c.id = @id", "[{\"name\":\"@id\",\"value\":\"a\"}]", d), 1);
    assert_int_equal(
        matches("SELECT * FROM c WHERE (c.id = @id)", "[{\"name\":\"@id\",\"value\":\"b\"}]", d),
        0);
    assert_int_equal(matches("SELECT VALUE COUNT(1) FROM c WHERE c.n >= 5", NULL, d), 1);
    assert_int_equal(matches("SELECT TOP 3 * FROM c", NULL, d), 1);
    assert_int_equal(matches("SELECT c.id FROM c", NULL, d), 1);
    assert_int_equal(matches("SELECT * FROM c ORDER BY c.id", NULL, d), 1);
    /* malformed: refused, never crash */
    assert_int_equal(matches("SELECT * FROM c WHERE c.id = @nope", "[]", d), -1);
    assert_int_equal(matches("SELECT * FROM c WHERE", NULL, d), -1);
    assert_int_equal(matches("SELECT * FROM c WHERE x.id = 1", NULL, d), -1);
    assert_int_equal(matches("", NULL, d), -1);
    srand(7);
    static const char *const frag[] = {
        "SELECT", " * ", "FROM", " c ", "WHERE", " c.a ", "=",  " 1 ", "'",     "\"",       "[",
        "]",      "(",   ")",    "@p",  "AND",   ".",     "\\", "TOP", "VALUE", "COUNT(1)", "\xff"};
    for (int i = 0; i < 20000; i++) {
        char sql[256] = "";
        int n = rand() % 12;
        for (int k = 0; k < n; k++)
            strncat(sql, frag[rand() % (sizeof frag / sizeof *frag)], sizeof sql - strlen(sql) - 1);
        matches(sql, "[{\"name\":\"@p\",\"value\":1}]", d);
    }
}

static void test_rid(void **state)
{
    (void)state;
    unsigned char b[4] = {1, 0, 0, 0};
    char out[16];
    srv_rid_encode(b, 4, out, sizeof out);
    assert_string_equal(out, "AQAAAA==");
    unsigned char c[3] = {0xfb, 0xff, 0xff};
    srv_rid_encode(c, 3, out, sizeof out);
    assert_string_equal(out, "+---"); /* '/' becomes '-' */
    char e1[48], e2[48];
    srv_new_etag(e1);
    srv_new_etag(e2);
    assert_string_not_equal(e1, e2);
    assert_int_equal(e1[0], '"');
}

/* Partition key header: 0 and the canonical key, or a 400 Cosmos error. */
static int pk_status(size_t npaths, const char *h, int required, const char *want_canon)
{
    struct req r;
    memset(&r, 0, sizeof r);
    json_t *v = NULL;
    char *canon = NULL;
    int rc = srv_pk_parse(&r, npaths, h, &v, &canon, required);
    if (rc == 0) {
        assert_int_equal(r.status, 0);
        if (want_canon) {
            assert_non_null(canon);
            assert_string_equal(canon, want_canon);
        } else {
            assert_null(canon);
            assert_null(v);
        }
    } else {
        assert_int_equal(rc, r.status);
        assert_null(v);
        assert_null(canon);
        json_t *b = doc_parse(r.out.p, r.out.len, NULL);
        assert_string_equal(json_string_value(json_object_get(b, "code")), "BadRequest");
        assert_non_null(json_string_value(json_object_get(b, "message")));
        json_decref(b);
    }
    json_decref(v);
    free(canon);
    doc_buf_free(&r.out);
    return rc;
}

static void test_pk_header(void **state)
{
    (void)state;
    /* one path: an array of exactly one value */
    assert_int_equal(pk_status(1, "[\"p\"]", 1, "[\"p\"]"), 0);
    assert_int_equal(pk_status(1, "[ \"\\u0070\" ]", 1, "[\"p\"]"), 0);
    assert_int_equal(pk_status(1, "[5.0]", 1, "[5]"), 0);
    assert_int_equal(pk_status(1, "[null]", 1, "[null]"), 0);
    assert_int_equal(pk_status(1, "[{}]", 1, "[{}]"), 0); /* the SDKs' "undefined" */
    static const char *const bad[] = {
        "\"p\"",       "5",         "null",          "{}", "true", "abc", "[\"p\"",
        "[{\"a\":1}]", "[[\"p\"]]", "[\"p\",\"q\"]", "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(pk_status(1, bad[i], 1, NULL), 400);
        assert_int_equal(pk_status(1, bad[i], 0, NULL), 400);
    }
    /* absent: required -> 400, else no key */
    assert_int_equal(pk_status(1, NULL, 1, NULL), 400);
    assert_int_equal(pk_status(1, "", 1, NULL), 400);
    assert_int_equal(pk_status(1, NULL, 0, NULL), 0);
    /* two paths: a prefix only where not required */
    assert_int_equal(pk_status(2, "[\"a\",\"b\"]", 1, "[\"a\",\"b\"]"), 0);
    assert_int_equal(pk_status(2, "[\"a\"]", 1, NULL), 400);
    assert_int_equal(pk_status(2, "[\"a\"]", 0, "[\"a\","), 0); /* every key under it */
    assert_int_equal(pk_status(3, "[\"a\",1]", 0, "[\"a\",1,"), 0);
    assert_true(srv_pk_is_prefix("[\"a\","));
    assert_false(srv_pk_is_prefix("[\"a\"]"));
    assert_false(srv_pk_is_prefix("[\"a,\"]")); /* a comma inside a value */
    assert_int_equal(pk_status(2, "\"a\"", 0, NULL), 400);
    /* not partitioned: any array (or none) is the empty key; a bare value is not */
    assert_int_equal(pk_status(0, NULL, 1, "[]"), 0);
    assert_int_equal(pk_status(0, "[]", 1, "[]"), 0);
    assert_int_equal(pk_status(0, "[{}]", 1, "[]"), 0);
    assert_int_equal(pk_status(0, "\"p\"", 1, NULL), 400);
}

static int scope(size_t npaths, const char *pk, const char *xp)
{
    struct req r;
    memset(&r, 0, sizeof r);
    int rc = query_scope_check(&r, npaths, pk, xp);
    if (rc) {
        assert_int_equal(r.status, 400);
        assert_int_equal(r.substatus, 0);
        json_t *b = doc_parse(r.out.p, r.out.len, NULL);
        assert_string_equal(json_string_value(json_object_get(b, "code")), "BadRequest");
        assert_non_null(strstr(json_string_value(json_object_get(b, "message")),
                               "Cross partition query is required but disabled."));
        json_decref(b);
    }
    doc_buf_free(&r.out);
    return rc;
}

static void test_cross_partition_query(void **state)
{
    (void)state;
    assert_int_equal(scope(1, NULL, NULL), 400);
    assert_int_equal(scope(1, "", ""), 400);
    assert_int_equal(scope(1, NULL, "false"), 400);
    assert_int_equal(scope(1, NULL, "1"), 400);
    assert_int_equal(scope(2, NULL, NULL), 400);
    assert_int_equal(scope(1, NULL, "true"), 0);
    assert_int_equal(scope(1, NULL, "True"), 0);
    assert_int_equal(scope(1, NULL, "TRUE"), 0);
    assert_int_equal(scope(1, "[\"p\"]", NULL), 0);
    assert_int_equal(scope(1, "[\"p\"]", "false"), 0);
    assert_int_equal(scope(0, NULL, NULL), 0); /* not partitioned */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_body), cmocka_unit_test(test_patch),
        cmocka_unit_test(test_query),      cmocka_unit_test(test_rid),
        cmocka_unit_test(test_pk_header),  cmocka_unit_test(test_cross_partition_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
