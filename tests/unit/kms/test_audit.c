/*
 * test_audit.c — the hash-chained audit log: a clean log verifies; an
 * edited, removed, reordered or appended entry, a cut tail, a damaged or
 * foreign head are each caught and named; reopening continues the chain;
 * the crash window (one entry past the head) is resealed at open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kmstest.h"

static const uint8_t KEY[32] = "audit head key, 32 bytes long..";
static const uint8_t KEY2[32] = "another head key, 32 bytes long";

static void append_n(struct kt *t, int n)
{
    struct kms_audit *a = NULL;
    assert_int_equal(kms_audit_open(&t->d, KEY, &a), 0);
    for (int i = 0; i < n; i++) {
        struct kms_audit_entry e = {.time_ms = 1700000000000LL + i,
                                    .identity = i % 2 ? "atrestd" : NULL,
                                    .key = "cmk",
                                    .version = "0123456789abcdef0123456789abcdef",
                                    .op = i % 3 ? "unwrapKey" : "wrapKey",
                                    .result = "ok",
                                    .status = 200};
        assert_int_equal(kms_audit_append(a, &e), 0);
    }
    kms_audit_close(a);
}

/* The log as lines (each with its '\n'). */
struct lines {
    char *buf;
    char *l[64];
    size_t len[64];
    int n;
};

static void read_lines(struct kt *t, struct lines *ls)
{
    char path[PATH_MAX];
    size_t len;
    kt_file(t, KMS_AUDIT_FILE, path);
    assert_int_equal(testfs_read(path, (uint8_t **)&ls->buf, &len), 0);
    ls->n = 0;
    for (char *p = ls->buf; p < ls->buf + len && ls->n < 64;) {
        char *nl = memchr(p, '\n', (size_t)(ls->buf + len - p));
        assert_non_null(nl);
        ls->l[ls->n] = p;
        ls->len[ls->n++] = (size_t)(nl + 1 - p);
        p = nl + 1;
    }
}

/* Write lines in the given order (-1 ends; an index may be left out). */
static void write_lines(struct kt *t, const struct lines *ls, const int *order)
{
    char path[PATH_MAX];
    char out[64 * 1024];
    size_t pos = 0;
    for (int i = 0; order[i] >= 0; i++) {
        memcpy(out + pos, ls->l[order[i]], ls->len[order[i]]);
        pos += ls->len[order[i]];
    }
    kt_file(t, KMS_AUDIT_FILE, path);
    assert_int_equal(testfs_write(path, out, pos, 0600), 0);
}

static int verify(struct kt *t, const uint8_t *key, struct kms_audit_report *r)
{
    return kms_audit_verify(&t->d, key, r);
}

static void test_clean_log(void **state)
{
    struct kt *t = *state;
    struct kms_audit_report r;
    char path[PATH_MAX], hex[65];
    uint8_t g[KMS_HASH_LEN];
    assert_int_equal(verify(t, KEY, &r), 0); /* no log yet */
    append_n(t, 6);
    assert_int_equal(verify(t, KEY, &r), 0);
    assert_int_equal(r.entries, 6);
    assert_true(r.head_checked);
    assert_int_equal(r.head_seq, 6);
    kt_file(t, KMS_AUDIT_FILE, path);
    assert_int_equal(testfs_mode(path), 0600);
    kt_file(t, KMS_HEAD_FILE, path);
    assert_int_equal(testfs_mode(path), 0600);
    /* The first entry chains from the genesis value; fields are as given. */
    struct lines ls;
    read_lines(t, &ls);
    kms_audit_genesis(g);
    kms_hex(g, sizeof g, hex);
    assert_non_null(strstr(ls.l[0], hex));
    assert_non_null(strstr(ls.l[0], "\"seq\":1,\"time\":\"2023-11-14T22:13:20.000Z\","
                                    "\"identity\":\"-\",\"key\":\"cmk\""));
    assert_non_null(strstr(ls.l[1], "\"identity\":\"atrestd\""));
    free(ls.buf);
    /* Reopening continues the chain. */
    append_n(t, 2);
    assert_int_equal(verify(t, KEY, &r), 0);
    assert_int_equal(r.entries, 8);
}

static void test_edit_detected(void **state)
{
    struct kt *t = *state;
    struct kms_audit_report r;
    struct lines ls;
    append_n(t, 6);
    read_lines(t, &ls);
    /* Each single byte of entry 3, changed, is caught at entry 3. */
    for (size_t i = 0; i + 1 < ls.len[2]; i++) {
        char saved = ls.l[2][i];
        ls.l[2][i] = saved == '1' ? '2' : '1';
        const int all[] = {0, 1, 2, 3, 4, 5, -1};
        write_lines(t, &ls, all);
        assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
        assert_int_equal(r.bad_line, 3);
        ls.l[2][i] = saved;
    }
    const int all[] = {0, 1, 2, 3, 4, 5, -1};
    write_lines(t, &ls, all);
    assert_int_equal(verify(t, KEY, &r), 0);
    free(ls.buf);
}

static void test_remove_reorder_detected(void **state)
{
    struct kt *t = *state;
    struct kms_audit_report r;
    struct lines ls;
    append_n(t, 6);
    read_lines(t, &ls);
    const int removed[] = {0, 1, 3, 4, 5, -1};
    write_lines(t, &ls, removed);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    assert_int_equal(r.bad_line, 3);
    assert_non_null(strstr(r.why, "removed"));
    const int first_gone[] = {1, 2, 3, 4, 5, -1};
    write_lines(t, &ls, first_gone);
    assert_int_equal(verify(t, NULL, &r), AT_EINTEGRITY);
    assert_int_equal(r.bad_line, 1);
    const int swapped[] = {0, 1, 3, 2, 4, 5, -1};
    write_lines(t, &ls, swapped);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    assert_int_equal(r.bad_line, 3);
    /* The daemon refuses to append to it. */
    struct kms_audit *a = NULL;
    assert_int_equal(kms_audit_open(&t->d, KEY, &a), AT_EINTEGRITY);
    assert_null(a);
    free(ls.buf);
}

static void test_tail_and_head(void **state)
{
    struct kt *t = *state;
    struct kms_audit_report r;
    struct lines ls;
    char head[PATH_MAX];
    append_n(t, 6);
    read_lines(t, &ls);
    kt_file(t, KMS_HEAD_FILE, head);
    /* The tail cut: the chain alone cannot tell, the sealed head can. */
    const int cut[] = {0, 1, 2, 3, -1};
    write_lines(t, &ls, cut);
    assert_int_equal(verify(t, NULL, &r), 0);
    assert_false(r.head_checked);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    assert_non_null(strstr(r.why, "tail was removed"));
    /* Everything removed while the head remembers entries. */
    const int none[] = {-1};
    write_lines(t, &ls, none);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    /* Head sealed by another key, head damaged, head missing. */
    const int all[] = {0, 1, 2, 3, 4, 5, -1};
    write_lines(t, &ls, all);
    assert_int_equal(verify(t, KEY2, &r), AT_EINTEGRITY);
    uint8_t *hb;
    size_t hl;
    assert_int_equal(testfs_read(head, &hb, &hl), 0);
    hb[30] ^= 1;
    assert_int_equal(testfs_write(head, hb, hl, 0600), 0);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    hb[30] ^= 1;
    unlink(head);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    assert_non_null(strstr(r.why, "missing"));
    assert_int_equal(testfs_write(head, hb, hl, 0600), 0);
    assert_int_equal(verify(t, KEY, &r), 0);
    free(hb);
    free(ls.buf);
}

static void test_crash_window(void **state)
{
    struct kt *t = *state;
    struct kms_audit_report r;
    char head[PATH_MAX];
    uint8_t *hb;
    size_t hl;
    append_n(t, 3);
    kt_file(t, KMS_HEAD_FILE, head);
    assert_int_equal(testfs_read(head, &hb, &hl), 0);
    append_n(t, 1);
    /* As if the process died between the append and the head's update. */
    assert_int_equal(testfs_write(head, hb, hl, 0600), 0);
    assert_int_equal(verify(t, KEY, &r), AT_EINTEGRITY);
    assert_non_null(strstr(r.why, "past the sealed head"));
    append_n(t, 1); /* open reseals, then appends */
    assert_int_equal(verify(t, KEY, &r), 0);
    assert_int_equal(r.entries, 5);
    free(hb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_log, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_edit_detected, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_remove_reorder_detected, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_tail_and_head, kt_setup, kt_teardown),
        cmocka_unit_test_setup_teardown(test_crash_window, kt_setup, kt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
