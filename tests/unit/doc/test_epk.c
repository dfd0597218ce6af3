/*
 * test_epk.c — effective partition keys (doc/epk.h): each value type's
 * hash against what @azure/cosmos 4.9.3 computes for it
 * (hashV2PartitionKey; the vectors were printed by that package), the
 * concatenation for hierarchical keys, and range membership.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doc/doc.h"
#include "doc/epk.h"

static void expect_epk(const char *pk, const char *want)
{
    json_t *v = doc_parse(pk, strlen(pk), NULL);
    assert_non_null(v);
    char out[3 * EPK_HEX + 1];
    assert_int_equal(epk_of(v, out, sizeof out), 0);
    assert_string_equal(out, want);
    json_decref(v);
}

static void test_sdk_vectors(void **state)
{
    (void)state;
    expect_epk("[\"a\"]", "3A5381E1114EB8D3FCC90795045B49B7");
    expect_epk("[\"x\"]", "11E3F358618BE9AA5BAFF4C7C74F0716");
    expect_epk("[1]", "20CD98B339BA78A5D0CF6953B87070B0");
    expect_epk("[1.0]", "20CD98B339BA78A5D0CF6953B87070B0");
    expect_epk("[true]", "0E711127C5B5A8E4726AC6DD306A3E59");
    expect_epk("[null]", "378867E4430E67857ACE5C908374FE16");
    expect_epk("[{}]", "11622DAA78F835834610ABE56EFF5CB5"); /* undefined */
    expect_epk("[\"\\u00e9\"]", "007199F104E04116EE25AF912CA4889B");
    expect_epk("[\"日本\"]", "2F64A78CFF1F1D412A8B6220090E9767");
    expect_epk("[1.5]", "35C5DDEB6C795D16A9963C73C54E97BC");
    expect_epk("[-0.25]", "1F5A810A544C1AFAAECC09DF7B53FABC");
    expect_epk("[-1e-7]", "16DC7970C94A0623D8B60A1CF4D551FE");
    expect_epk("[12345678901234567000]", "0DF94B5D3130A1303C6B59AD0FDEB839");
    expect_epk("[\"\"]", "32E9366E637A71B4E710384B2F4970A0");
    /* version 2 hashes a long string whole (version 1 cut it at 100) */
    char pk[200] = "[\"";
    memset(pk + 2, 'k', 150);
    strcpy(pk + 152, "\"]");
    expect_epk(pk, "1E319A420D5A3ED1BF16A94407448077");
}

static void test_hierarchical(void **state)
{
    (void)state;
    expect_epk("[\"a\",\"x\",1]", "3A5381E1114EB8D3FCC90795045B49B7"
                                  "11E3F358618BE9AA5BAFF4C7C74F0716"
                                  "20CD98B339BA78A5D0CF6953B87070B0");
    expect_epk("[\"a\",{}]", "3A5381E1114EB8D3FCC90795045B49B7"
                             "11622DAA78F835834610ABE56EFF5CB5");
}

static void test_refused(void **state)
{
    (void)state;
    char out[3 * EPK_HEX + 1];
    const char *bad[] = {"[[1]]", "[{\"a\":1}]", "\"a\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *v = doc_parse(bad[i], strlen(bad[i]), NULL);
        assert_non_null(v);
        assert_int_equal(epk_of(v, out, sizeof out), -1);
        json_decref(v);
    }
    json_t *v = doc_parse("[\"a\",\"b\"]", 9, NULL);
    assert_int_equal(epk_of(v, out, EPK_HEX + 1), -1); /* no room for two */
    json_decref(v);
}

static void test_ranges(void **state)
{
    (void)state;
    const char *a = "3A5381E1114EB8D3FCC90795045B49B7";
    const char *ax = "3A5381E1114EB8D3FCC90795045B49B711E3F358618BE9AA5BAFF4C7C74F0716";
    assert_true(epk_in(ax, "", "FF"));
    assert_true(epk_in(ax, NULL, NULL));
    /* a prefix's range: [hash, hash + "FF") holds every longer key */
    assert_true(epk_in(ax, a, "3A5381E1114EB8D3FCC90795045B49B7FF"));
    assert_true(epk_in(a, a, "3A5381E1114EB8D3FCC90795045B49B7FF"));
    assert_false(
        epk_in("3A5381E1114EB8D3FCC90795045B49B8", a, "3A5381E1114EB8D3FCC90795045B49B7FF"));
    assert_false(epk_in(ax, "", a)); /* hi is exclusive, and ax > a */
    assert_false(epk_in("11E3F358618BE9AA5BAFF4C7C74F0716", a, ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_vectors),
        cmocka_unit_test(test_hierarchical),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
