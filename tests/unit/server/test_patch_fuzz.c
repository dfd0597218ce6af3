/*
 * test_patch_fuzz.c — hostile partial-update requests (patch.c): lists of
 * operations made by a fixed-seed generator from every operation name (and
 * unknown ones), paths with array indexes in range, out of range, "-",
 * leading zeros, escapes ("~0", "~1"), empty and malformed segments, values
 * of every JSON type up to the edges of the number range, missing fields,
 * and documents with nested arrays and objects.
 *
 * Asserted for each of 200,000 requests: a refusal has a message; an
 * accepted one leaves a document that is still an object and serializes;
 * the same request on a fresh copy of the document gives the same result. ASan and UBSan (make test
 * runs both) catch the rest.
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
#include "server/srv.h"

static const char *const names[] = {"add",  "set", "replace", "remove", "incr",
                                    "move", "Add", "",        "x"};
static const char *const paths[] = {"/a",
                                    "/a/b",
                                    "/a/0",
                                    "/a/-",
                                    "/arr/0",
                                    "/arr/1",
                                    "/arr/-",
                                    "/arr/99",
                                    "/arr/-1",
                                    "/o/x",
                                    "/o/x/y",
                                    "/",
                                    "",
                                    "/id",
                                    "/n",
                                    "/s",
                                    "/a~1b",
                                    "/a~0b",
                                    "/arr/01",
                                    "/arr/ 1",
                                    "/o",
                                    "/o/",
                                    "//",
                                    "/arr/0/z",
                                    "/n/0",
                                    "/s/0",
                                    "a",
                                    "/arr/18446744073709551616",
                                    "/deep/0/0/0/0",
                                    "/~2"};
static const char *const values[] = {"1",
                                     "-1",
                                     "1.5",
                                     "1e308",
                                     "-1e308",
                                     "\"x\"",
                                     "null",
                                     "true",
                                     "[]",
                                     "[1,2]",
                                     "{}",
                                     "{\"q\":1}",
                                     "9007199254740993",
                                     "\"\\u0000\"",
                                     "1.7976931348623157e308"};
static const char *const docs[] = {
    "{\"id\":\"d\",\"a\":{\"b\":1},\"arr\":[1,2,3],\"o\":{\"x\":{\"y\":2}},\"n\":5,\"s\":\"t\"}",
    "{\"id\":\"d\"}",
    "{\"id\":\"d\",\"arr\":[],\"n\":1.7976931348623157e308}",
    "{\"id\":\"d\",\"a\":[[[[1]]]],\"o\":null,\"deep\":[[[[[0]]]]]}",
};

#define COUNT(x) (sizeof x / sizeof *x)

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t next(void)
{
    return fx_xorshift(&rng);
}

/* One request body: usually 1 to 3 operations, one time in ten up to 12
 * (the limit is 10); each field left out now and then. */
static size_t make_ops(char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    int k = next() % 10 ? 1 + (int)(next() % 3) : (int)(next() % 13);
    for (int i = 0; i < k && n + 256 < cap; i++) {
        const char *name = names[next() % COUNT(names)];
        int move = strcmp(name, "move") == 0;
        n += (size_t)snprintf(buf + n, cap - n, "%s{", i ? "," : "");
        const char *sep = "";
        if (next() % 20) {
            n += (size_t)snprintf(buf + n, cap - n, "\"op\":\"%s\"", name);
            sep = ",";
        }
        if (next() % 20) {
            n += (size_t)snprintf(buf + n, cap - n, "%s\"path\":\"%s\"", sep,
                                  paths[next() % COUNT(paths)]);
            sep = ",";
        }
        if (move ? next() % 10 : next() % 10 == 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s\"from\":\"%s\"", sep,
                                  paths[next() % COUNT(paths)]);
        else if (next() % 10)
            n += (size_t)snprintf(buf + n, cap - n, "%s\"value\":%s", sep,
                                  values[next() % COUNT(values)]);
        n += (size_t)snprintf(buf + n, cap - n, "}");
    }
    n += (size_t)snprintf(buf + n, cap - n, "]");
    return n;
}

static void test_random_requests(void **state)
{
    (void)state;
    static char body[8192];
    long applied = 0;
    for (int it = 0; it < 200000; it++) {
        size_t n = make_ops(body, sizeof body);
        json_t *ops = doc_parse(body, n, NULL);
        assert_non_null(ops);
        const char *text = docs[next() % COUNT(docs)];
        json_t *d1 = doc_parse(text, strlen(text), NULL), *d2 = json_deep_copy(d1);
        char m1[256] = "", m2[256] = "";
        int r1 = patch_apply(d1, ops, m1, sizeof m1), r2 = patch_apply(d2, ops, m2, sizeof m2);
        if (r1 != r2 || strcmp(m1, m2) != 0 || (r1 == 0 && !json_equal(d1, d2)))
            fail_msg("request %d is not deterministic: %s", it, body);
        if (r1 != 0 && !m1[0])
            fail_msg("request %d refused without a message: %s", it, body);
        if (r1 == 0) {
            applied++;
            /* (a change of id or partition key is refused by the caller,
             * documents.c, after the operations) */
            if (!json_is_object(d1))
                fail_msg("request %d left no document: %s", it, body);
            char *out = doc_dump(d1, NULL);
            if (!out)
                fail_msg("request %d left a document that does not serialize: %s", it, body);
            free(out);
        }
        json_decref(ops);
        json_decref(d1);
        json_decref(d2);
    }
    print_message("200000 patch requests: %ld applied\n", applied);
    assert_true(applied > 5000); /* the generator reaches the operations, not only refusals */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
