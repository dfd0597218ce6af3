/*
 * test_blob_azsig.c — pure parts of the blob store: Shared Key signing
 * (the documented string-to-sign example of the Storage REST reference,
 * and signatures computed independently with Debian's python3-azure
 * azure.storage.blob SharedKeyCredentialPolicy over Azurite's well-known
 * dev account key), the retry policy, name rules, hex/base64.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blob/blobint.h"

/* Azurite's documented development account key (public, not a secret). */
static const char DEV_KEY[] =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
#define DATE "Sat, 28 Nov 2026 01:00:00 GMT"

static void check_sig(const char *verb, const struct azsk_header *h, size_t nh, const char *path,
                      const char *query, const char *want)
{
    uint8_t key[64];
    size_t kl = 0;
    assert_int_equal(blob_unb64(DEV_KEY, key, sizeof key, &kl), 0);
    assert_int_equal(kl, 64);
    char *sts = NULL, sig[45];
    assert_int_equal(azsk_string_to_sign(verb, h, nh, "devstoreaccount1", path, query, &sts), 0);
    assert_int_equal(azsk_sign(key, kl, sts, sig), 0);
    if (strcmp(sig, want) != 0)
        fail_msg("signature %s != %s for string-to-sign:\n%s", sig, want, sts);
    free(sts);
}

/* "Authorize with Shared Key", Blob service example (version 2015-02-21). */
static void test_documented_string_to_sign(void **state)
{
    (void)state;
    const struct azsk_header h[] = {
        {"x-ms-version", "2015-02-21"},
        {"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
    };
    char *sts = NULL;
    assert_int_equal(azsk_string_to_sign("GET", h, 2, "myaccount", "/mycontainer",
                                         "restype=container&comp=metadata&timeout=20", &sts),
                     0);
    assert_string_equal(sts, "GET\n\n\n\n\n\n\n\n\n\n\n\n"
                             "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
                             "x-ms-version:2015-02-21\n"
                             "/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20");
    free(sts);
}

static void test_put_block_vector(void **state)
{
    (void)state;
    const struct azsk_header h[] = {
        {"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="},
        {"Content-Length", "4194304"},
        {"x-ms-date", DATE},
        {"x-ms-version", "2021-08-06"},
    };
    check_sig("PUT", h, 4, "/devstoreaccount1/backups/a/b.bin",
              "comp=block&blockid=MDAwMDAwLWFi%2Bcd%2F%3D%3D",
              "8veyzKJXrx1Kh5rhRKhfKjIufn9m82RKI3AOmlRbYWQ=");
}

static void test_put_block_list_vector(void **state)
{
    (void)state;
    /* Header order must not matter: these are not sorted. */
    const struct azsk_header h[] = {
        {"x-ms-meta-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"Content-Length", "120"},
        {"x-ms-version", "2021-08-06"},
        {"x-ms-blob-content-type", "application/octet-stream"},
        {"X-Ms-Date", DATE},
        {"x-ms-blob-content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="},
    };
    check_sig("PUT", h, 6, "/devstoreaccount1/backups/a/b.bin", "comp=blocklist",
              "aK7xc6jks8McmtcTuZ8tMcJSU2Kgd12kAZb9YXDmZPs=");
}

static void test_list_vector(void **state)
{
    (void)state;
    const struct azsk_header h[] = {{"x-ms-date", DATE}, {"x-ms-version", "2021-08-06"}};
    check_sig("GET", h, 2, "/devstoreaccount1/backups",
              "restype=container&comp=list&include=metadata&prefix=db%2F2026&marker=abc",
              "XVVjuUNb8v+9jDHkGx+ulKQdRhdJmm39xN3vOcFnOTU=");
}

static void test_ranged_get_and_delete_vectors(void **state)
{
    (void)state;
    const struct azsk_header g[] = {
        {"x-ms-date", DATE},
        {"x-ms-version", "2021-08-06"},
        {"x-ms-range", "bytes=100-"},
        {"If-Match", "\"0x8D\""},
    };
    check_sig("GET", g, 4, "/devstoreaccount1/backups/x", NULL,
              "gFCafX2ub8cS7KQUzaydaO+AEdyPvgpPkGC874bV4KY=");
    /* Content-Length 0 is signed as an empty line (2015-02-21 and later). */
    const struct azsk_header d[] = {
        {"x-ms-date", DATE},
        {"x-ms-version", "2021-08-06"},
        {"Content-Length", "0"},
    };
    check_sig("DELETE", d, 3, "/devstoreaccount1/backups/x", NULL,
              "oVuBm1vr8vWgSyuzhmb7us5yqx7MSUQSkK79e8BqZtw=");
    check_sig("DELETE", d, 2, "/devstoreaccount1/backups/x", "",
              "oVuBm1vr8vWgSyuzhmb7us5yqx7MSUQSkK79e8BqZtw=");
}

static void test_query_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(azsk_query_escape("ab+/=c-_.~ d", out, sizeof out), 0);
    assert_string_equal(out, "ab%2B%2F%3Dc-_.~%20d");
    assert_int_equal(azsk_query_escape("abcdef", out, 6), AT_EINVAL);
}

static void test_retry_policy(void **state)
{
    (void)state;
    struct blob_cfg cfg = {.backoff_ms = 100, .backoff_max_ms = 1000};
    for (uint32_t r = 0; r < 2000; r += 7) {
        unsigned d1 = blob_backoff_ms(&cfg, 1, r), d3 = blob_backoff_ms(&cfg, 3, r);
        unsigned d9 = blob_backoff_ms(&cfg, 9, r);
        assert_in_range(d1, 50, 100);
        assert_in_range(d3, 200, 400);
        assert_in_range(d9, 500, 1000); /* capped */
    }
    /* Jitter: different random inputs give different delays. */
    assert_int_not_equal(blob_backoff_ms(&cfg, 4, 1), blob_backoff_ms(&cfg, 4, 250));
    static const long yes[] = {408, 429, 500, 502, 503, 504};
    static const long no[] = {200, 201, 304, 400, 401, 403, 404, 409, 412, 416};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(blob_status_retryable(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(blob_status_retryable(no[i]));
}

static void test_names(void **state)
{
    (void)state;
    static const char *ok[] = {"a", "backups/20261128T0100Z/manifest", "x.y~z_w-1/2/3", ".a/..b"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (blob_name_check(ok[i]) != 0)
            fail_msg("name '%s' refused: %s", ok[i], at_error_detail());
    static const char *bad[] = {"", "/a", "a/", "a//b", "a/./b", "../a", "a/..", "a b",
                                "a:b", "a%2Fb", "ä", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (blob_name_check(bad[i]) != AT_EINVAL)
            fail_msg("name '%s' accepted", bad[i]);
    char *longname = malloc(BLOB_NAME_MAX + 2);
    memset(longname, 'a', BLOB_NAME_MAX + 1);
    longname[BLOB_NAME_MAX + 1] = '\0';
    assert_int_equal(blob_name_check(longname), AT_EINVAL);
    longname[BLOB_NAME_MAX] = '\0';
    assert_int_equal(blob_name_check(longname), 0);
    free(longname);
}

static void test_hex_b64(void **state)
{
    (void)state;
    uint8_t in[20], out[20];
    for (int i = 0; i < 20; i++)
        in[i] = (uint8_t)(i * 37 + 5);
    for (size_t n = 1; n <= 20; n++) {
        char b64[32], hex[41];
        size_t got = 0;
        blob_b64(in, n, b64);
        assert_int_equal(blob_unb64(b64, out, sizeof out, &got), 0);
        assert_int_equal(got, n);
        assert_memory_equal(in, out, n);
        blob_hex(in, n, hex);
        assert_int_equal(blob_unhex(hex, out, n), 0);
        assert_memory_equal(in, out, n);
    }
    size_t got;
    assert_int_equal(blob_unb64("abc", out, sizeof out, &got), AT_EFORMAT);
    assert_int_equal(blob_unb64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", out, 8, &got), AT_EFORMAT);
    assert_int_equal(blob_unhex("0g", out, 1), AT_EFORMAT);
}

static void test_open_rejects_bad_targets(void **state)
{
    (void)state;
    struct blob_store *bs = (struct blob_store *)1;
    struct blob_options o = {.target = "s3:bucket"};
    assert_int_equal(blob_open(&o, &bs), AT_EINVAL);
    assert_null(bs);
    o.target = "azblob:http://127.0.0.1:1/devstoreaccount1/c";
    assert_int_equal(blob_open(&o, &bs), AT_EINVAL); /* no key file */
    o.account_key_file = "/nonexistent/key";
    o.target = "azblob:http://127.0.0.1:1/onlyaccount";
    assert_int_equal(blob_open(&o, &bs), AT_EINVAL); /* no container */
    o.target = "azblob:ftp://127.0.0.1/a/b";
    assert_int_equal(blob_open(&o, &bs), AT_EINVAL);
    o.target = "azblob:http://127.0.0.1:1/devstoreaccount1/c";
    assert_int_equal(blob_open(&o, &bs), ENOENT);
    o.target = "file:/tmp";
    o.block_size = 100;
    assert_int_equal(blob_open(&o, &bs), AT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_string_to_sign),
        cmocka_unit_test(test_put_block_vector),
        cmocka_unit_test(test_put_block_list_vector),
        cmocka_unit_test(test_list_vector),
        cmocka_unit_test(test_ranged_get_and_delete_vectors),
        cmocka_unit_test(test_query_escape),
        cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_hex_b64),
        cmocka_unit_test(test_open_rejects_bad_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
