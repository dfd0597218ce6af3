/*
 * test_blob_file.c — the local-folder target: round trips, list order and
 * prefixes, ranges, a 50 MB streamed put from a source that never holds
 * the blob, atomicity (a failed put leaves the old blob and no temp file),
 * disk full through the fault hook and on a real 1 MiB tmpfs (when root
 * may mount one), fsync/rename failures, and damage found on get.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "blob/blob.h"
#include "testfs.h"

struct env {
    char root[PATH_MAX], dir[PATH_MAX], target[PATH_MAX + 8];
    struct blob_store *bs;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    testfs_mkdtemp(e->root, "blobfile");
    testfs_join(e->dir, e->root, "store");
    snprintf(e->target, sizeof e->target, "file:%s", e->dir);
    struct blob_options o = {.target = e->target, .block_size = 256 << 10};
    if (blob_open(&o, &e->bs) != 0)
        fail_msg("open: %s", at_error_detail());
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    blob_close(e->bs);
    testfs_rm_rf(e->root);
    free(e);
    return 0;
}

/* A source of n deterministic pseudo-random bytes made on the fly, handed
 * out in chunks of at most `chunk` (so block boundaries do not follow the
 * source's), failing with fail_rc once fail_at bytes were produced. */
struct gen {
    uint64_t n, pos, seed;
    size_t chunk;
    uint64_t fail_at;
    int fail_rc;
};

static uint8_t gen_byte(uint64_t seed, uint64_t i)
{
    uint64_t x = (i / 8 + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint8_t)(x >> (8 * (i % 8)));
}

static int gen_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct gen *g = ctx;
    if (g->fail_at && g->pos >= g->fail_at)
        return at_error_set(g->fail_rc, "test source failed on purpose");
    size_t n = cap;
    if (g->chunk && n > g->chunk)
        n = g->chunk;
    if (n > g->n - g->pos)
        n = (size_t)(g->n - g->pos);
    for (size_t i = 0; i < n; i++)
        buf[i] = gen_byte(g->seed, g->pos + i);
    g->pos += n;
    *got = n;
    return 0;
}

/* A sink that checks bytes against the generator and hashes them. */
struct check {
    uint64_t seed, pos, start;
    EVP_MD_CTX *sha;
    int mismatch;
};

static int check_sink(void *ctx, const uint8_t *buf, size_t len)
{
    struct check *c = ctx;
    for (size_t i = 0; i < len; i++)
        if (buf[i] != gen_byte(c->seed, c->start + c->pos + i))
            c->mismatch = 1;
    if (c->sha)
        EVP_DigestUpdate(c->sha, buf, len);
    c->pos += len;
    return 0;
}

static void put_gen(struct blob_store *bs, const char *name, uint64_t n, uint64_t seed)
{
    struct gen g = {.n = n, .seed = seed, .chunk = 7777};
    struct blob_put_stats st;
    if (blob_put(bs, name, gen_source, &g, &st) != 0)
        fail_msg("put %s: %s", name, at_error_detail());
    assert_int_equal(st.bytes, n);
}

static void expect_blob(struct blob_store *bs, const char *name, uint64_t n, uint64_t seed)
{
    struct check c = {.seed = seed};
    if (blob_get(bs, name, 0, UINT64_MAX, check_sink, &c) != 0)
        fail_msg("get %s: %s", name, at_error_detail());
    assert_int_equal(c.pos, n);
    assert_false(c.mismatch);
}

static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_roundtrip(void **state)
{
    struct env *e = *state;
    put_gen(e->bs, "a/b/c", 1000003, 1);
    put_gen(e->bs, "empty", 0, 2);
    put_gen(e->bs, "exact", 256 << 10, 3); /* exactly one block */
    expect_blob(e->bs, "a/b/c", 1000003, 1);
    expect_blob(e->bs, "empty", 0, 2);
    expect_blob(e->bs, "exact", 256 << 10, 3);

    struct blob_info info;
    assert_int_equal(blob_head(e->bs, "a/b/c", &info), 0);
    assert_string_equal(info.name, "a/b/c");
    assert_int_equal(info.size, 1000003);
    assert_true(info.has_sha256);
    assert_false(info.has_md5); /* the local target keeps no MD5 */
    /* The stored SHA-256 is the data's, computed independently. */
    uint8_t *all = malloc(1000003), sha[32];
    for (size_t i = 0; i < 1000003; i++)
        all[i] = gen_byte(1, i);
    EVP_Digest(all, 1000003, sha, NULL, EVP_sha256(), NULL);
    free(all);
    assert_memory_equal(info.sha256, sha, 32);

    /* Overwrite replaces. */
    put_gen(e->bs, "a/b/c", 5000, 9);
    expect_blob(e->bs, "a/b/c", 5000, 9);

    assert_int_equal(blob_delete(e->bs, "a/b/c"), 0);
    assert_int_equal(blob_delete(e->bs, "a/b/c"), AT_ENOTFOUND);
    struct check c = {0};
    assert_int_equal(blob_get(e->bs, "a/b/c", 0, UINT64_MAX, check_sink, &c), AT_ENOTFOUND);
    assert_int_equal(blob_head(e->bs, "a/b/c", &info), AT_ENOTFOUND);
    assert_int_equal(blob_put(e->bs, "../x", gen_source, &(struct gen){0}, NULL), AT_EINVAL);
}

struct names {
    char got[16][64];
    int n;
};

static int collect(void *ctx, const struct blob_info *info)
{
    struct names *ns = ctx;
    if (ns->n < 16)
        snprintf(ns->got[ns->n++], 64, "%.63s", info->name);
    return 0;
}

static int stop_after_one(void *ctx, const struct blob_info *info)
{
    (void)ctx;
    (void)info;
    return 42;
}

static void test_list(void **state)
{
    struct env *e = *state;
    static const char *names[] = {"db/2", "db/10", "media/x", "db/1/a", "dbz"};
    for (int i = 0; i < 5; i++)
        put_gen(e->bs, names[i], 10 + (uint64_t)i, (uint64_t)i);
    /* Junk that is not a blob: a crash leftover and a foreign file. */
    char p[PATH_MAX];
    testfs_join(p, e->dir, "db%2F3.blob.0123456789abcdef.tmp");
    assert_int_equal(testfs_write(p, "xx", 2, 0600), 0);
    testfs_join(p, e->dir, "README");
    assert_int_equal(testfs_write(p, "xx", 2, 0600), 0);

    struct names ns = {0};
    assert_int_equal(blob_list(e->bs, "", collect, &ns), 0);
    assert_int_equal(ns.n, 5);
    assert_string_equal(ns.got[0], "db/1/a");
    assert_string_equal(ns.got[1], "db/10");
    assert_string_equal(ns.got[2], "db/2");
    assert_string_equal(ns.got[3], "dbz");
    assert_string_equal(ns.got[4], "media/x");
    memset(&ns, 0, sizeof ns);
    assert_int_equal(blob_list(e->bs, "db/", collect, &ns), 0);
    assert_int_equal(ns.n, 3);
    memset(&ns, 0, sizeof ns);
    assert_int_equal(blob_list(e->bs, "nothing", collect, &ns), 0);
    assert_int_equal(ns.n, 0);
    assert_int_equal(blob_list(e->bs, "", stop_after_one, NULL), 42);
}

static void test_ranges(void **state)
{
    struct env *e = *state;
    put_gen(e->bs, "r", 600000, 5);
    static const uint64_t cases[][3] = {
        /* offset, length, expected bytes */
        {0, 10, 10},          {599990, 100, 10}, {300000, 300000, 300000},
        {600000, 5, 0},       {700000, 5, 0},    {123, UINT64_MAX, 600000 - 123},
        {262143, 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct check c = {.seed = 5, .start = cases[i][0]};
        assert_int_equal(blob_get(e->bs, "r", cases[i][0], cases[i][1], check_sink, &c), 0);
        assert_int_equal(c.pos, cases[i][2]);
        assert_false(c.mismatch);
    }
}

/* 50 MB through put and get; neither side ever holds the blob. */
static void test_large_streaming(void **state)
{
    struct env *e = *state;
    struct blob_store *bs = NULL;
    struct blob_options o = {.target = e->target}; /* default 4 MiB blocks */
    assert_int_equal(blob_open(&o, &bs), 0);
    const uint64_t n = 50ull << 20;
    struct gen g = {.n = n, .seed = 77, .chunk = 100000};
    struct blob_put_stats st;
    assert_int_equal(blob_put(bs, "big", gen_source, &g, &st), 0);
    assert_int_equal(st.bytes, n);
    assert_int_equal(st.blocks, 13); /* 12.5 blocks of 4 MiB */
    struct check c = {.seed = 77, .sha = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(c.sha, EVP_sha256(), NULL);
    assert_int_equal(blob_get(bs, "big", 0, UINT64_MAX, check_sink, &c), 0);
    assert_int_equal(c.pos, n);
    assert_false(c.mismatch);
    uint8_t sha[32];
    EVP_DigestFinal_ex(c.sha, sha, NULL);
    EVP_MD_CTX_free(c.sha);
    struct blob_info info;
    assert_int_equal(blob_head(bs, "big", &info), 0);
    assert_memory_equal(info.sha256, sha, 32);
    char p[PATH_MAX];
    testfs_join(p, e->dir, "big.blob");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, n + 80);
    blob_close(bs);
}

static void test_failed_put_keeps_old(void **state)
{
    struct env *e = *state;
    put_gen(e->bs, "keep", 700000, 11);
    struct gen g = {.n = 2000000, .seed = 12, .fail_at = 900000, .fail_rc = EPIPE};
    assert_int_equal(blob_put(e->bs, "keep", gen_source, &g, NULL), EPIPE);
    expect_blob(e->bs, "keep", 700000, 11);
    assert_int_equal(count_tmp(e->dir), 0);
}

struct fault {
    const char *op;
    uint64_t after;
    int err;
    int hits;
};

static int fault_fn(void *ctx, const char *op, uint64_t offset)
{
    struct fault *f = ctx;
    if (strcmp(op, f->op) == 0 && offset >= f->after) {
        f->hits++;
        return f->err;
    }
    return 0;
}

static void test_injected_faults(void **state)
{
    struct env *e = *state;
    put_gen(e->bs, "old", 400000, 21);
    static const struct {
        const char *op;
        uint64_t after;
        int err;
        const char *detail;
    } cases[] = {
        {"write", 300000, ENOSPC, "disk full"},
        {"write", 0, EDQUOT, "disk full"},
        {"fsync", 0, EIO, "syncing"},
        {"rename", 0, EACCES, "renaming"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct fault f = {cases[i].op, cases[i].after, cases[i].err, 0};
        struct blob_options o = {.target = e->target, .block_size = 64 << 10, .fault = fault_fn,
                                 .fault_ctx = &f};
        struct blob_store *bs = NULL;
        assert_int_equal(blob_open(&o, &bs), 0);
        struct gen g = {.n = 1000000, .seed = 22};
        at_error_clear();
        assert_int_equal(blob_put(bs, "old", gen_source, &g, NULL), cases[i].err);
        assert_true(f.hits > 0);
        if (!strstr(at_error_detail(), cases[i].detail) ||
            !strstr(at_error_detail(), "untouched"))
            fail_msg("detail: %s", at_error_detail());
        blob_close(bs);
        expect_blob(e->bs, "old", 400000, 21);
        assert_int_equal(count_tmp(e->dir), 0);
    }
}

/* A real full disk: a 1 MiB tmpfs (needs root and mount rights). */
static void test_real_enospc(void **state)
{
    struct env *e = *state;
    char mnt[PATH_MAX];
    testfs_join(mnt, e->root, "tiny");
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        rmdir(mnt);
        skip();
    }
    char target[PATH_MAX + 16];
    snprintf(target, sizeof target, "file:%s/b", mnt);
    struct blob_options o = {.target = target, .block_size = 64 << 10};
    struct blob_store *bs = NULL;
    assert_int_equal(blob_open(&o, &bs), 0);
    put_gen(bs, "old", 300000, 31);
    struct gen g = {.n = 2000000, .seed = 32};
    at_error_clear();
    int rc = blob_put(bs, "old", gen_source, &g, NULL);
    char detail[600];
    snprintf(detail, sizeof detail, "%s", at_error_detail());
    expect_blob(bs, "old", 300000, 31);
    char dir[PATH_MAX];
    testfs_join(dir, mnt, "b");
    int tmps = count_tmp(dir);
    /* After the failure the space is back: a blob that fits still goes in. */
    put_gen(bs, "small", 200000, 33);
    blob_close(bs);
    umount2(mnt, MNT_DETACH);
    assert_int_equal(rc, ENOSPC);
    if (!strstr(detail, "disk full"))
        fail_msg("detail: %s", detail);
    assert_int_equal(tmps, 0);
}

static void test_damage_detected(void **state)
{
    struct env *e = *state;
    put_gen(e->bs, "d", 500000, 41);
    char p[PATH_MAX];
    testfs_join(p, e->dir, "d.blob");
    uint8_t *buf;
    size_t len;
    assert_int_equal(testfs_read(p, &buf, &len), 0);
    buf[80 + 123456] ^= 0x01;
    assert_int_equal(testfs_write(p, buf, len, 0600), 0);
    struct check c = {.seed = 41};
    at_error_clear();
    assert_int_equal(blob_get(e->bs, "d", 0, UINT64_MAX, check_sink, &c), AT_EINTEGRITY);
    assert_non_null(strstr(at_error_detail(), "SHA-256"));
    /* A range away from the damage still reads (ranges are not checked). */
    struct check r = {.seed = 41, .start = 0};
    assert_int_equal(blob_get(e->bs, "d", 0, 1000, check_sink, &r), 0);
    assert_false(r.mismatch);
    /* Truncated: caught before a byte is returned. */
    assert_int_equal(testfs_write(p, buf, len - 10, 0600), 0);
    struct check t = {.seed = 41};
    assert_int_equal(blob_get(e->bs, "d", 0, UINT64_MAX, check_sink, &t), AT_EINTEGRITY);
    assert_int_equal(t.pos, 0);
    /* Not a blob file at all. */
    memset(buf, 'x', 100);
    assert_int_equal(testfs_write(p, buf, 100, 0600), 0);
    struct blob_info info;
    assert_int_equal(blob_head(e->bs, "d", &info), AT_EFORMAT);
    free(buf);
}

static void test_long_names(void **state)
{
    struct env *e = *state;
    char name[BLOB_NAME_MAX + 1];
    memset(name, 'n', 300);
    name[300] = '\0';
    struct gen g = {.n = 10};
    assert_int_equal(blob_put(e->bs, name, gen_source, &g, NULL), ENAMETOOLONG);
    memset(name, 'n', 200);
    name[200] = '\0';
    put_gen(e->bs, name, 10, 1);
    expect_blob(e->bs, name, 10, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_put_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
