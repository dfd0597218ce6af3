/*
 * test_tamper.c — every modified page is detected; none returns wrong data.
 *
 *  - 200 random pages of the main file, one random bit flipped in each
 *    (one at a time, on a fresh copy): verify reports exactly that page,
 *    and reading through SQLite either fails with AT_EINTEGRITY or returns
 *    exactly the original documents (a page the query did not touch).
 *    PRAGMA integrity_check, which reads every page, must fail.
 *  - 200 random frames of the WAL of a crashed (copied while open) store,
 *    in its durable part: opening the store fails with AT_EINTEGRITY.
 *  - two pages swapped within a file; a page copied in from another store
 *    file at the same page number: detected.
 *  - a torn WAL tail (the last transaction's frame damaged, or the WAL cut
 *    mid-frame) is not tampering: the store opens with every earlier commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "storage/page.h"
#include "storage/verify.h"
#include "storage/vfs.h"

#define NDOCS    2000
#define DOC_SIZE 900

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

struct failed {
    int n;
    uint32_t pgno[8];
};
static void on_fail(void *ctx, const char *path, uint64_t off, uint32_t pgno)
{
    (void)path;
    (void)off;
    struct failed *f = ctx;
    if (f->n < 8)
        f->pgno[f->n] = pgno;
    f->n++;
}

static int integrity_check(struct store *st)
{
    sqlite3_stmt *q;
    int src = sqlite3_prepare_v2(store_db(st), "PRAGMA integrity_check", -1, &q, NULL);
    if (src != SQLITE_OK)
        return store_error(st, src);
    src = sqlite3_step(q);
    int ok = src == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0;
    /* integrity_check reports unreadable pages as rows ("unable to get the
     * page"); the VFS counted the authentication failures behind them. */
    if (src != SQLITE_ROW)
        src = store_error(st, src);
    else if (ok)
        src = vfs_auth_failures(store_path(st)) ? AT_EINTEGRITY : 0;
    else
        src = vfs_auth_failures(store_path(st)) ? AT_EINTEGRITY : 1;
    sqlite3_finalize(q);
    return src;
}

/* Open the store in work/ and classify: 0 = integrity error surfaced
 * everywhere it must; fails the test otherwise. */
static void expect_detected_main(struct fixture *fx, const char *file, uint32_t pgno)
{
    struct store *st;
    struct failed f = {0};
    struct verify_report r;
    assert_int_equal(verify_data_dir(store_env_keyring(fx->env), fx->data_dir, &r, on_fail, &f), 0);
    assert_int_equal(r.pages_failed, 1);
    assert_int_equal(f.pgno[0], pgno);
    int rc = store_open(fx->env, "docs", &st);
    if (rc) {
        assert_int_equal(rc, AT_EINTEGRITY); /* page 1 or schema page */
        return;
    }
    rc = fx_check_docs(st, NDOCS, DOC_SIZE, NULL);
    assert_true(rc == 0 || rc == AT_EINTEGRITY); /* never wrong data (1) */
    rc = integrity_check(st);
    if (rc != AT_EINTEGRITY)
        fail_msg("page %u of %s: integrity_check gave %d, not AT_EINTEGRITY", pgno, file, rc);
    (void)store_close(st);
}

static void test_main_file_bit_flips(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    fx_setup(&fx, "tamper-main");
    assert_int_equal(store_create(fx.env, "docs", &st), 0);
    fx_fill(st, NDOCS, DOC_SIZE, 100, NULL);
    assert_int_equal(store_close(st), 0);
    char file[PATH_MAX];
    fx_store_file(fx.data_dir, file, sizeof file);
    size_t len;
    uint8_t *pristine = fx_read_file(file, &len);
    uint32_t npages = (uint32_t)(len / PAGE_SIZE);
    assert_true(npages > 400);
    uint8_t *picked = calloc(npages + 1, 1);
    for (int i = 0; i < 200; i++) {
        uint32_t pgno;
        do
            pgno = 1 + (uint32_t)(next_rand() % npages);
        while (picked[pgno]);
        picked[pgno] = 1;
        uint64_t off = (uint64_t)(pgno - 1) * PAGE_SIZE + next_rand() % PAGE_SIZE;
        fx_write_file(file, pristine, len);
        fx_flip_bit(file, off, (int)(next_rand() % 8));
        expect_detected_main(&fx, file, pgno);
    }
    /* Sanity: the pristine copy passes. */
    fx_write_file(file, pristine, len);
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(integrity_check(st), 0);
    assert_int_equal(store_close(st), 0);
    free(picked);
    free(pristine);
    fx_teardown(&fx);
}

static void test_swap_and_foreign_pages(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *a, *b;
    fx_setup(&fx, "tamper-swap");
    assert_int_equal(store_create(fx.env, "docs", &a), 0);
    fx_fill(a, NDOCS, DOC_SIZE, 100, NULL);
    assert_int_equal(store_create(fx.env, "other", &b), 0);
    fx_fill(b, NDOCS, DOC_SIZE, 100, NULL); /* identical content, other file */
    char fa[PATH_MAX], fb[PATH_MAX];
    snprintf(fa, sizeof fa, "%s", store_path(a));
    snprintf(fb, sizeof fb, "%s", store_path(b));
    assert_int_equal(store_close(a), 0);
    assert_int_equal(store_close(b), 0);
    size_t la, lb;
    uint8_t *pa = fx_read_file(fa, &la), *pb = fx_read_file(fb, &lb);

    /* Swap pages 5 and 9 of a. */
    uint8_t *w = malloc(la);
    memcpy(w, pa, la);
    memcpy(w + 4 * PAGE_SIZE, pa + 8 * PAGE_SIZE, PAGE_SIZE);
    memcpy(w + 8 * PAGE_SIZE, pa + 4 * PAGE_SIZE, PAGE_SIZE);
    fx_write_file(fa, w, la);
    struct failed f = {0};
    struct verify_report r;
    memset(&r, 0, sizeof r);
    assert_int_equal(verify_store_file(store_env_keyring(fx.env), (uint8_t[KEYRING_FILE_ID_LEN]){0},
                                       fa, &r, NULL, NULL),
                     0);
    assert_true(r.pages_failed > 0); /* wrong id: everything fails */
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, on_fail, &f), 0);
    assert_int_equal(r.pages_failed, 2);
    assert_int_equal(f.pgno[0], 5);
    assert_int_equal(f.pgno[1], 9);
    assert_int_equal(store_open(fx.env, "docs", &a), 0);
    assert_int_equal(integrity_check(a), AT_EINTEGRITY);
    assert_true(fx_check_docs(a, NDOCS, DOC_SIZE, NULL) != 1);
    (void)store_close(a);

    /* Page 7 of the other store, at page 7 of this one. */
    memcpy(w, pa, la);
    memcpy(w + 6 * PAGE_SIZE, pb + 6 * PAGE_SIZE, PAGE_SIZE);
    fx_write_file(fa, w, la);
    memset(&f, 0, sizeof f);
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, on_fail, &f), 0);
    assert_int_equal(r.pages_failed, 1);
    assert_int_equal(f.pgno[0], 7);
    assert_int_equal(store_open(fx.env, "docs", &a), 0);
    assert_int_equal(integrity_check(a), AT_EINTEGRITY);
    (void)store_close(a);

    /* Page 1 of the other store (same plaintext header) as page 1. */
    memcpy(w, pa, la);
    memcpy(w, pb, PAGE_SIZE);
    fx_write_file(fa, w, la);
    assert_int_equal(store_open(fx.env, "docs", &a), AT_EINTEGRITY);
    free(w);
    free(pa);
    free(pb);
    fx_teardown(&fx);
}

/* Build a crashed store: many small transactions left in the WAL, copied
 * (data folder and all) while the writer still has it open. */
static void make_crashed(struct fixture *fx, char *snapshot, size_t cap, int ntx)
{
    struct store *st;
    fx_setup(fx, "tamper-wal");
    assert_int_equal(store_create(fx->env, "docs", &st), 0);
    assert_int_equal(store_exec(st, "PRAGMA wal_autocheckpoint=0"), 0);
    fx_fill(st, ntx * 5, DOC_SIZE, 5, NULL);
    snprintf(snapshot, cap, "%.3900s/snapshot", fx->root);
    fx_copy_tree(fx->data_dir, snapshot);
    assert_int_equal(store_close(st), 0);
    fx_close(fx);
}

static void restore(struct fixture *fx, const char *snapshot)
{
    fx_rmrf(fx->data_dir);
    fx_copy_tree(snapshot, fx->data_dir);
}

static void test_wal_bit_flips(void **state)
{
    (void)state;
    struct fixture fx;
    char snap[PATH_MAX], wal[PATH_MAX + 8];
    const int ntx = 120;
    make_crashed(&fx, snap, sizeof snap, ntx);
    restore(&fx, snap);
    fx_store_file(fx.data_dir, wal, sizeof wal - 8);
    strcat(wal, "-wal");
    long long size = fx_file_size(wal);
    long long nframes = (size - WAL_HDR) / FRAME_SIZE;
    assert_true(nframes > 250);
    /* The last transaction is a few frames; stay clear of it. */
    long long durable = nframes - 20;
    uint8_t *picked = calloc((size_t)nframes, 1);
    for (int i = 0; i < 200; i++) {
        long long k;
        do
            k = (long long)(next_rand() % (uint64_t)durable);
        while (picked[k]);
        picked[k] = 1;
        restore(&fx, snap);
        uint64_t off = WAL_HDR + (uint64_t)k * FRAME_SIZE + 24 + next_rand() % PAGE_SIZE;
        fx_flip_bit(wal, off, (int)(next_rand() % 8));
        assert_int_equal(fx_reopen(&fx), 0);
        struct verify_report r;
        assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, NULL, NULL),
                         0);
        assert_int_equal(r.pages_failed, 1);
        struct store *st;
        int rc = store_open(fx.env, "docs", &st);
        if (rc != AT_EINTEGRITY)
            fail_msg("frame %lld of %lld: store_open gave %d (%s)", k, nframes, rc,
                     at_error_detail());
        fx_close(&fx);
    }
    free(picked);
    /* The untouched snapshot opens with every document. */
    restore(&fx, snap);
    assert_int_equal(fx_reopen(&fx), 0);
    struct store *st;
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(fx_check_docs(st, ntx * 5, DOC_SIZE, NULL), 0);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

static void test_torn_tail(void **state)
{
    (void)state;
    struct fixture fx;
    char snap[PATH_MAX], wal[PATH_MAX + 8];
    const int ntx = 40;
    make_crashed(&fx, snap, sizeof snap, ntx);
    restore(&fx, snap);
    fx_store_file(fx.data_dir, wal, sizeof wal - 8);
    strcat(wal, "-wal");
    long long nframes = (fx_file_size(wal) - WAL_HDR) / FRAME_SIZE;

    /* (a) The last frame (the last commit) damaged: that transaction is
     * lost, all before it survive, verify reports a tail, not a failure. */
    fx_flip_bit(wal, WAL_HDR + (uint64_t)(nframes - 1) * FRAME_SIZE + 24 + 100, 3);
    assert_int_equal(fx_reopen(&fx), 0);
    struct verify_report r;
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 0);
    assert_int_equal(r.wal_tail_frames, 1);
    struct store *st;
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(fx_check_docs(st, (ntx - 1) * 5, DOC_SIZE, NULL), 0);
    assert_int_equal(store_close(st), 0);
    fx_close(&fx);

    /* (b) The WAL cut in the middle of its last frame. */
    restore(&fx, snap);
    assert_int_equal(truncate(wal, WAL_HDR + (nframes - 1) * FRAME_SIZE + 1000), 0);
    assert_int_equal(fx_reopen(&fx), 0);
    assert_int_equal(store_open(fx.env, "docs", &st), 0);
    assert_int_equal(fx_check_docs(st, (ntx - 1) * 5, DOC_SIZE, NULL), 0);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_main_file_bit_flips),
        cmocka_unit_test(test_swap_and_foreign_pages),
        cmocka_unit_test(test_wal_bit_flips),
        cmocka_unit_test(test_torn_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
