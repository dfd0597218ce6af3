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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmp_types),
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
