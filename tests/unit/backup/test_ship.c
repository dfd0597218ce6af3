/*
 * test_ship.c — continuous backups below the server: the segment, head and
 * position formats (round trips, every field authenticated, truncation and
 * bounds), and the shipper over a local-folder target end to end: a base
 * backup with its log position, writes before and after two noted times
 * (inserts, updates, deletes, a store born after the base, transactions
 * large enough to spill and checkpoints that restart the WAL), then
 * backup_restore_at to each time gives exactly the rows of that moment;
 * a time before the base or beyond the log is refused (AT_EINVAL); a
 * missing or edited segment is refused (AT_EINTEGRITY) and leaves no
 * store; segments wait in the spool while the target fails and arrive
 * once it is back, or, after a stop, at the next start; no canary in the
 * target or the spool. Retention by
 * days keeps the newest base before the window and the log it needs, and
 * removes older bases, their segments and unused epochs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup/backup.h"
#include "backup/backupint.h"
#include "backup/ship.h"
#include "crypto/secmem.h"
#include "fixture.h"
#include "keys/embedded.h"

#define CANARY "canary-5e0b9d13-ship"

/* ---- formats ------------------------------------------------------------ */

static struct bk_keys *test_keys(void)
{
    struct bk_keys *k = secmem_alloc(sizeof *k);
    uint8_t ikm[32] = {1, 2, 3};
    assert_int_equal(bk_derive(ikm, sizeof ikm, "20261128T000000000Z-abcdef", k), 0);
    return k;
}

static uint8_t *make_segment(const struct bk_keys *k, uint64_t segno, size_t *len)
{
    struct cs_rec r = {.seq = 7, .time_us = 1234567, .db_pages = 3, .nframes = 2};
    snprintf(r.name, sizeof r.name, "c-1");
    uint8_t *b = calloc(1, CS_SEG_HDR + CS_REC_HDR + 2 * CS_FRAME_MAX + AEAD_TAG_LEN);
    uint8_t *f = b + CS_SEG_HDR + CS_REC_HDR;
    /* page 1: a canary at the start, zeros, a byte at the end */
    memcpy(f + CS_FRAME_HDR, CANARY, sizeof CANARY);
    f[CS_FRAME_HDR + PAGE_SIZE - 1] = 0x77;
    f += cs_frame_pack(f, 1);
    /* page 3: no zeros at all */
    memset(f + CS_FRAME_HDR, 0x5c, PAGE_SIZE);
    f += cs_frame_pack(f, 3);
    size_t body = (size_t)(f - b) - CS_SEG_HDR;
    *len = CS_SEG_HDR + body + AEAD_TAG_LEN;
    struct cs_seg_hdr h = {
        .segno = segno, .first_us = 1234567, .last_us = 1234567, .nrec = 1, .body_len = body};
    snprintf(h.epoch, sizeof h.epoch, "20261128T000000000Z-abcdef");
    memset(h.prev_tag, 0x5a, sizeof h.prev_tag);
    cs_seg_hdr_encode(&h, b);
    cs_rec_encode(&r, b + CS_SEG_HDR);
    assert_int_equal(cs_seg_seal(k, b, body), 0);
    return b;
}

static void test_segment_format(void **state)
{
    (void)state;
    struct bk_keys *k = test_keys();
    size_t len;
    uint8_t *b = make_segment(k, 42, &len);
    assert_null(memmem(b, len, CANARY, strlen(CANARY)));
    struct cs_seg_hdr h;
    assert_int_equal(cs_seg_hdr_decode(b, len, &h), 0);
    assert_int_equal(h.segno, 42);
    assert_int_equal(h.nrec, 1);
    assert_string_equal(h.epoch, "20261128T000000000Z-abcdef");
    uint8_t *body = malloc(h.body_len);
    assert_int_equal(cs_seg_open(k, b, len, body), 0);
    struct cs_rec r;
    assert_int_equal(cs_rec_decode(body, h.body_len, &r), 0);
    assert_int_equal(r.seq, 7);
    assert_int_equal(r.nframes, 2);
    assert_int_equal(r.db_pages, 3);
    assert_string_equal(r.name, "c-1");
    /* the frames: zero runs dropped, pages rebuilt exactly */
    uint32_t pgno;
    size_t next, f2;
    uint8_t page[PAGE_SIZE], want[PAGE_SIZE] = {0};
    assert_int_equal(cs_frame_next(body, h.body_len, CS_REC_HDR, &pgno, &f2), 0);
    assert_int_equal(pgno, 1);
    assert_true(f2 - CS_REC_HDR < 64);
    cs_frame_unpack(body + CS_REC_HDR, page);
    memcpy(want, CANARY, sizeof CANARY);
    want[PAGE_SIZE - 1] = 0x77;
    assert_memory_equal(page, want, PAGE_SIZE);
    assert_int_equal(cs_frame_next(body, h.body_len, f2, &pgno, &next), 0);
    assert_int_equal(pgno, 3);
    assert_int_equal(next, h.body_len);
    cs_frame_unpack(body + f2, page);
    memset(want, 0x5c, PAGE_SIZE);
    assert_memory_equal(page, want, PAGE_SIZE);
    /* a frame that claims more than the body holds, or a page 0 */
    assert_int_equal(cs_frame_next(body, h.body_len - 1, f2, &pgno, &next), AT_EINTEGRITY);
    body[f2 + 6] = 0x20; /* zero run longer than the page */
    assert_int_equal(cs_frame_next(body, h.body_len, f2, &pgno, &next), AT_EINTEGRITY);
    memset(body + f2, 0, 4);
    assert_int_equal(cs_frame_next(body, h.body_len, f2, &pgno, &next), AT_EINTEGRITY);
    /* a record claiming more frames than the body can hold */
    page_put32(body + 84, 1000);
    assert_int_equal(cs_rec_decode(body, h.body_len, &r), AT_EINTEGRITY);
    /* every header byte is associated data; the body and tag are sealed */
    size_t probes[] = {9, 40, 47, 50, 65, 80, 90, 99, CS_SEG_HDR + 10, len - 1};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        b[probes[i]] ^= 1;
        struct cs_seg_hdr h2;
        int rc = cs_seg_hdr_decode(b, len, &h2);
        if (rc == 0)
            rc = cs_seg_open(k, b, len, body);
        assert_int_equal(rc, AT_EINTEGRITY);
        b[probes[i]] ^= 1;
    }
    /* truncated, or bytes appended: the body length no longer fits */
    assert_int_equal(cs_seg_hdr_decode(b, len - 1, &h), AT_EINTEGRITY);
    /* another key */
    struct bk_keys *k2 = test_keys();
    k2->data[0] ^= 1;
    k2->mac[0] ^= 1;
    assert_int_equal(cs_seg_open(k2, b, len, body), AT_EINTEGRITY);

    /* head */
    struct cs_head hd = {.nsegs = 9, .covered_us = 777, .closed = 1}, hd2;
    snprintf(hd.epoch, sizeof hd.epoch, "e1");
    uint8_t hb[CS_HEAD_LEN];
    assert_int_equal(cs_head_encode(&hd, k, hb), 0);
    assert_int_equal(cs_head_decode(hb, sizeof hb, k, &hd2), 0);
    assert_int_equal(hd2.nsegs, 9);
    assert_int_equal(hd2.covered_us, 777);
    assert_int_equal(hd2.closed, 1);
    hb[41] ^= 1;
    assert_int_equal(cs_head_decode(hb, sizeof hb, k, &hd2), AT_EINTEGRITY);
    hb[41] ^= 1;
    assert_int_equal(cs_head_decode(hb, sizeof hb, k2, &hd2), AT_EINTEGRITY);

    /* position */
    struct backup_chain_store st[2] = {{"meta", 5}, {"c-1", 11}};
    struct cs_position p = {.first_seg = 4, .t_end_us = 99, .nstores = 2, .stores = st}, p2;
    snprintf(p.id, sizeof p.id, "b1");
    snprintf(p.epoch, sizeof p.epoch, "e1");
    uint8_t *pb;
    size_t plen;
    assert_int_equal(cs_position_encode(&p, k, &pb, &plen), 0);
    assert_int_equal(cs_position_decode(pb, plen, k, &p2), 0);
    assert_int_equal(p2.nstores, 2);
    assert_int_equal(p2.stores[1].seq, 11);
    assert_string_equal(p2.stores[1].name, "c-1");
    assert_int_equal(p2.first_seg, 4);
    free(p2.stores);
    pb[90] ^= 1;
    assert_int_not_equal(cs_position_decode(pb, plen, k, &p2), 0);
    assert_int_not_equal(cs_position_decode(pb, plen - 1, k, &p2), 0);
    free(pb);
    free(body);
    free(b);
    bk_keys_free(k);
    bk_keys_free(k2);
}

/* ---- the shipper end to end ---------------------------------------------- */

static volatile int target_down; /* the file target's fault hook fails every write */

static int fault(void *ctx, const char *op, uint64_t offset)
{
    (void)ctx;
    (void)op;
    (void)offset;
    return target_down ? EIO : 0;
}

struct t {
    struct fixture fx;
    struct ship *sh;
    struct store *meta, *c1, *c2;
    char bkdir[PATH_MAX + 8], target[PATH_MAX + 16], spool[PATH_MAX + 16];
    struct blob_store *bs;
    char to_data[PATH_MAX + 16], to_keys[PATH_MAX + 16];
    struct ship_options so;
};

static void exec(struct store *st, const char *sql)
{
    int rc = store_exec(st, sql);
    if (rc)
        fail_msg("%s: %s", sql, at_error_detail());
}

static void insert(struct store *st, int from, int n, int size)
{
    char *body = malloc((size_t)size + 64);
    exec(st, "BEGIN");
    sqlite3_stmt *s;
    assert_int_equal(
        sqlite3_prepare_v2(store_db(st), "INSERT OR REPLACE INTO t VALUES (?, ?)", -1, &s, NULL),
        0);
    for (int i = from; i < from + n; i++) {
        fx_doc_body(body, (size_t)size + 64, i, size, CANARY);
        sqlite3_bind_int(s, 1, i);
        sqlite3_bind_text(s, 2, body, -1, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(s), SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    exec(st, "COMMIT");
    free(body);
}

/* "n:sum(k)" of table t, to compare states. */
static void digest(sqlite3 *db, char *out, size_t n)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), total(k), total(length(v)), "
                                        "(SELECT group_concat(k) FROM (SELECT k FROM t "
                                        "WHERE v LIKE '%upd%' ORDER BY k)) FROM t",
                                        -1, &s, NULL),
                     0);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    snprintf(out, n, "%d:%.0f:%.0f:%s", sqlite3_column_int(s, 0), sqlite3_column_double(s, 1),
             sqlite3_column_double(s, 2),
             sqlite3_column_text(s, 3) ? (const char *)sqlite3_column_text(s, 3) : "-");
    sqlite3_finalize(s);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    fx_setup(&t->fx, "ship");
    snprintf(t->bkdir, sizeof t->bkdir, "%s/bk", t->fx.root);
    snprintf(t->target, sizeof t->target, "file:%s", t->bkdir);
    snprintf(t->spool, sizeof t->spool, "%s/spool", t->fx.data_dir);
    snprintf(t->to_data, sizeof t->to_data, "%s/restored-data", t->fx.root);
    snprintf(t->to_keys, sizeof t->to_keys, "%s/restored-keys", t->fx.root);
    t->so = (struct ship_options){.target = t->target,
                                  .keys = {.outer = t->fx.kp},
                                  .spool_dir = t->spool,
                                  .interval_ms = 100,
                                  .fault = fault};
    if (ship_start(t->fx.env, &t->so, &t->sh) != 0)
        fail_msg("ship_start: %s", at_error_detail());
    assert_int_equal(store_create(t->fx.env, "meta", &t->meta), 0);
    assert_int_equal(store_create(t->fx.env, "c-1", &t->c1), 0);
    exec(t->meta, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
    exec(t->c1, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
    struct blob_options o = {.target = t->target};
    assert_int_equal(blob_open(&o, &t->bs), 0);
    *state = t;
    return 0;
}

static void stop_ship(struct t *t)
{
    struct store **sts[] = {&t->meta, &t->c1, &t->c2};
    for (size_t i = 0; i < 3; i++)
        if (*sts[i]) {
            assert_int_equal(store_close(*sts[i]), 0);
            *sts[i] = NULL;
        }
    ship_stop(t->sh);
    t->sh = NULL;
}

static int teardown(void **state)
{
    struct t *t = *state;
    stop_ship(t);
    blob_close(t->bs);
    fx_teardown(&t->fx);
    free(t);
    return 0;
}

/* A base backup of meta and c-1 with its log position (no writer runs, so
 * reading the commit counts next to the snapshot is exact). */
static void base_backup(struct t *t, char id[BACKUP_ID_LEN])
{
    struct backup_keys keys = {.outer = t->fx.kp};
    struct backup_job *j = NULL;
    assert_int_equal(backup_job_new(&keys, &j), 0);
    uint64_t first = ship_next_seg(t->sh);
    struct backup_chain_store cs[2] = {{"meta", 0}, {"c-1", 0}};
    cs[0].seq = ship_store_seq(t->sh, "meta");
    assert_int_equal(backup_job_add(j, "meta", t->meta), 0);
    cs[1].seq = ship_store_seq(t->sh, "c-1");
    assert_int_equal(backup_job_add(j, "c-1", t->c1), 0);
    assert_int_equal(backup_job_set_chain(j, ship_epoch(t->sh), first, now_us(), cs, 2), 0);
    if (backup_job_run(j, t->bs, NULL, NULL) != 0)
        fail_msg("backup: %s", at_error_detail());
    snprintf(id, BACKUP_ID_LEN, "%s", backup_job_id(j));
    backup_job_free(j);
}

/* Restore to at; on success compare the digests of c-1 (and c-2 when
 * want2 is given; "" means it must not exist). */
static int restore_at(struct t *t, int64_t at, const char *want1, const char *want2)
{
    struct key_provider *kp;
    struct store_env *env;
    fx_rmrf(t->to_data);
    fx_rmrf(t->to_keys);
    assert_int_equal(embedded_provider_open(t->to_keys, t->to_data, 1, &kp), 0);
    struct store_env_options eo = {.data_dir = t->to_data, .outer = kp, .create = 1};
    assert_int_equal(store_env_open(&eo, &env), 0);
    struct backup_keys keys = {.outer = t->fx.kp};
    int rc = backup_restore_at(t->bs, &keys, at, env, NULL, NULL, NULL);
    char names[8][KEYRING_NAME_MAX];
    uint8_t ids[8][KEYRING_FILE_ID_LEN];
    size_t n = 0;
    assert_int_equal(keyring_list_files(store_env_keyring(env), names, ids, 8, &n), 0);
    if (rc) {
        assert_int_equal(n, 0); /* a refused restore leaves no store */
    } else {
        struct store *c;
        char got[256];
        assert_int_equal(store_open(env, "c-1", &c), 0);
        digest(store_db(c), got, sizeof got);
        assert_string_equal(got, want1);
        assert_int_equal(store_exec(c, "PRAGMA integrity_check"), 0);
        assert_int_equal(store_close(c), 0);
        if (want2 && *want2) {
            assert_int_equal(store_open(env, "c-2", &c), 0);
            digest(store_db(c), got, sizeof got);
            assert_string_equal(got, want2);
            assert_int_equal(store_close(c), 0);
        } else if (want2) {
            assert_int_equal(store_open(env, "c-2", &c), AT_ENOTFOUND);
        }
    }
    store_env_close(env);
    kp_destroy(kp);
    return rc;
}

static void flush(struct t *t)
{
    if (ship_flush(t->sh, 20000) != 0) {
        struct ship_status s;
        ship_status_get(t->sh, &s);
        fail_msg("flush timed out: %s", s.last_error);
    }
}

static void test_point_in_time(void **state)
{
    struct t *t = *state;
    char id[BACKUP_ID_LEN], d0[256], d1[256], d2[256], d3[256], e2[256];
    insert(t->c1, 0, 200, 700);
    insert(t->meta, 0, 5, 100);
    int64_t before_base = now_us();
    usleep(2000);
    base_backup(t, id);
    digest(store_db(t->c1), d0, sizeof d0);
    int64_t t0 = now_us();
    usleep(2000);
    insert(t->c1, 200, 100, 700);
    exec(t->c1, "UPDATE t SET v = 'upd' || v WHERE k % 10 = 3");
    digest(store_db(t->c1), d1, sizeof d1);
    usleep(2000);
    int64_t t1 = now_us();
    usleep(2000);
    exec(t->c1, "DELETE FROM t WHERE k < 50");
    /* a transaction larger than SQLite's page cache: frames spill before
     * the commit, and some are rewritten (walRewriteChecksums) */
    exec(t->c1, "PRAGMA cache_size=50");
    insert(t->c1, 1000, 3000, 1500);
    assert_int_equal(store_create(t->fx.env, "c-2", &t->c2), 0);
    exec(t->c2, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
    insert(t->c2, 0, 30, 300);
    digest(store_db(t->c1), d2, sizeof d2);
    digest(store_db(t->c2), e2, sizeof e2);
    usleep(2000);
    int64_t t2 = now_us();
    usleep(2000);
    /* checkpoints restart the WAL under continued writes */
    for (int i = 0; i < 5; i++) {
        insert(t->c1, 5000 + i * 400, 400, 1500);
        exec(t->c1, "PRAGMA wal_checkpoint(TRUNCATE)");
    }
    exec(t->c1, "DELETE FROM t WHERE k >= 1000 AND k < 2000");
    exec(t->c1, "VACUUM"); /* shrinks the file: the last commit's size wins */
    digest(store_db(t->c1), d3, sizeof d3);
    flush(t);
    int64_t t3 = now_us();
    flush(t);

    assert_int_equal(restore_at(t, t0, d0, ""), 0);
    assert_int_equal(restore_at(t, t1, d1, ""), 0);
    assert_int_equal(restore_at(t, t2, d2, e2), 0);
    assert_int_equal(restore_at(t, t3, d3, e2), 0);
    assert_int_equal(restore_at(t, before_base, NULL, NULL), AT_EINVAL);
    assert_non_null(strstr(at_error_detail(), "before"));
    assert_int_equal(restore_at(t, now_us() + 60000000, NULL, NULL), AT_EINVAL);
    /* no plaintext in the target or the spool */
    assert_int_equal(fx_scan_dir(t->bkdir, CANARY, strlen(CANARY)), 0);
    assert_int_equal(fx_scan_dir(t->spool, CANARY, strlen(CANARY)), 0);

    struct ship_status s;
    ship_status_get(t->sh, &s);
    assert_true(s.segments >= 2);
    assert_int_equal(s.gaps, 0);
    assert_int_equal(s.commits_queued, 0);
    assert_true(s.lag_p99_ms < 10000);

    /* after a clean stop the epoch is closed: a later time restores the
     * last state */
    stop_ship(t);
    assert_int_equal(restore_at(t, now_us(), d3, e2), 0);
}

/* Get a blob, let fn change it, put it back (the blob checksum is valid). */
static int grab(void *ctx, const uint8_t *b, size_t n)
{
    struct bk_mem *m = ctx;
    if (bk_mem_reserve(m, m->len + n) != 0)
        return AT_ENOMEM;
    memcpy(m->p + m->len, b, n);
    m->len += n;
    return 0;
}

static void test_tampered_log(void **state)
{
    struct t *t = *state;
    char id[BACKUP_ID_LEN], d1[256];
    insert(t->c1, 0, 50, 500);
    base_backup(t, id);
    flush(t);
    uint64_t f = ship_next_seg(t->sh); /* the next three segments: f .. f+2 */
    for (int i = 0; i < 3; i++) {
        insert(t->c1, 100 + i * 10, 10, 500);
        flush(t); /* one segment each */
    }
    digest(store_db(t->c1), d1, sizeof d1);
    int64_t at = now_us();
    flush(t);
    assert_int_equal(restore_at(t, at, d1, NULL), 0);

    char name[BLOB_NAME_MAX];
    struct bk_mem m = {0};
    cs_seg_name(ship_epoch(t->sh), f + 1, name, sizeof name);
    assert_int_equal(blob_get(t->bs, name, 0, UINT64_MAX, grab, &m), 0);
    /* an edited byte */
    m.p[CS_SEG_HDR + 100] ^= 4;
    assert_int_equal(bk_put_mem(t->bs, name, m.p, m.len), 0);
    assert_int_equal(restore_at(t, at, NULL, NULL), AT_EINTEGRITY);
    assert_non_null(strstr(at_error_detail(), "failed authentication"));
    m.p[CS_SEG_HDR + 100] ^= 4;
    assert_int_equal(bk_put_mem(t->bs, name, m.p, m.len), 0);
    assert_int_equal(restore_at(t, at, d1, NULL), 0);
    /* segment f+2 put in the place of f+1: its number does not match */
    char name2[BLOB_NAME_MAX];
    struct bk_mem m2 = {0};
    cs_seg_name(ship_epoch(t->sh), f + 2, name2, sizeof name2);
    assert_int_equal(blob_get(t->bs, name2, 0, UINT64_MAX, grab, &m2), 0);
    assert_int_equal(bk_put_mem(t->bs, name, m2.p, m2.len), 0);
    assert_int_equal(restore_at(t, at, NULL, NULL), AT_EINTEGRITY);
    /* a missing segment */
    assert_int_equal(blob_delete(t->bs, name), 0);
    assert_int_equal(restore_at(t, at, NULL, NULL), AT_EINTEGRITY);
    assert_non_null(strstr(at_error_detail(), "missing"));
    /* the last segment removed: the head still lists it */
    assert_int_equal(bk_put_mem(t->bs, name, m.p, m.len), 0);
    assert_int_equal(restore_at(t, at, d1, NULL), 0);
    assert_int_equal(blob_delete(t->bs, name2), 0);
    assert_int_equal(restore_at(t, at, NULL, NULL), AT_EINTEGRITY);
    assert_non_null(strstr(at_error_detail(), "missing"));
    bk_mem_free(&m);
    bk_mem_free(&m2);
}

static void test_target_down_spools(void **state)
{
    struct t *t = *state;
    char id[BACKUP_ID_LEN], d1[256];
    insert(t->c1, 0, 50, 500);
    base_backup(t, id);
    flush(t);
    target_down = 1; /* every put of the shipper fails */
    for (int i = 0; i < 5; i++) {
        insert(t->c1, 100 + i * 20, 20, 500);
        usleep(150000);
    }
    digest(store_db(t->c1), d1, sizeof d1);
    int64_t at = now_us();
    struct ship_status s;
    ship_status_get(t->sh, &s);
    assert_true(s.spooled > 0);
    assert_true(s.last_error[0] != 0);
    assert_int_equal(ship_flush(t->sh, 300), ETIMEDOUT);
    assert_int_equal(fx_scan_dir(t->spool, CANARY, strlen(CANARY)), 0);
    /* the target is back: the spool drains in order, nothing is lost */
    target_down = 0;
    if (ship_flush(t->sh, 90000) != 0)
        fail_msg("the spool did not drain");
    ship_status_get(t->sh, &s);
    assert_int_equal(s.spooled, 0);
    assert_int_equal(s.gaps, 0);
    assert_int_equal(restore_at(t, at, d1, NULL), 0);
}

static int count_files(const char *dir)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -gt 0", dir);
    return system(cmd) == 0;
}

/* Segments a run could not put stay spooled across a stop; the next run
 * puts them, and the log is followed past the old epoch's head. */
static void test_spool_survives_a_restart(void **state)
{
    struct t *t = *state;
    char id[BACKUP_ID_LEN], d1[256];
    insert(t->c1, 0, 50, 500);
    base_backup(t, id);
    flush(t);
    target_down = 1;
    for (int i = 0; i < 3; i++) {
        insert(t->c1, 100 + i * 20, 20, 500);
        usleep(150000);
    }
    digest(store_db(t->c1), d1, sizeof d1);
    int64_t at = now_us();
    /* a later commit, cut into a segment whose covered-until passes at */
    insert(t->meta, 0, 1, 200);
    assert_int_equal(ship_flush(t->sh, 300), ETIMEDOUT);
    stop_ship(t);
    assert_true(count_files(t->spool));
    target_down = 0;
    if (ship_start(t->fx.env, &t->so, &t->sh) != 0)
        fail_msg("ship_start: %s", at_error_detail());
    assert_false(count_files(t->spool));
    assert_int_equal(restore_at(t, at, d1, NULL), 0);
}

static void test_retention(void **state)
{
    struct t *t = *state;
    char id1[BACKUP_ID_LEN], id2[BACKUP_ID_LEN], d2[256], name[BLOB_NAME_MAX];
    insert(t->c1, 0, 50, 500);
    base_backup(t, id1);
    insert(t->c1, 100, 50, 500);
    flush(t);
    int64_t between = now_us();
    usleep(2000);
    insert(t->c1, 200, 50, 500);
    flush(t);
    uint64_t f2 = ship_next_seg(t->sh);
    assert_true(f2 >= 2);
    base_backup(t, id2);
    insert(t->c1, 300, 50, 500);
    digest(store_db(t->c1), d2, sizeof d2);
    flush(t);
    int64_t at = now_us();
    flush(t);
    /* an epoch no base uses (a run whose bases were all pruned) */
    static const uint8_t x[1] = {1};
    assert_int_equal(bk_put_mem(t->bs, "cont/20200101T000000000Z-dead00/000000000000", x, 1), 0);
    assert_int_equal(bk_put_mem(t->bs, "cont/20200101T000000000Z-dead00/key", x, 1), 0);

    /* eight days on, with a 7-day window: both bases are older than the
     * window; the newest of them stays (the window's first moment) */
    struct backup_keys keys = {.outer = t->fx.kp};
    assert_int_equal(
        backup_prune_days(t->bs, &keys, 7, 1, ship_epoch(t->sh), (int64_t)time(NULL) + 8 * 86400),
        0);
    struct backup_info *v;
    size_t n;
    assert_int_equal(backup_list(t->bs, NULL, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, id2);
    free(v);
    struct bk_mem m = {0};
    cs_seg_name(ship_epoch(t->sh), f2 - 1, name, sizeof name);
    assert_int_equal(blob_get(t->bs, name, 0, UINT64_MAX, grab, &m), AT_ENOTFOUND);
    cs_seg_name(ship_epoch(t->sh), f2, name, sizeof name);
    assert_int_equal(blob_get(t->bs, name, 0, UINT64_MAX, grab, &m), 0);
    bk_mem_free(&m);
    assert_int_equal(
        blob_get(t->bs, "cont/20200101T000000000Z-dead00/key", 0, UINT64_MAX, grab, &m),
        AT_ENOTFOUND);
    /* what is left still restores; the pruned past is refused */
    assert_int_equal(restore_at(t, at, d2, NULL), 0);
    assert_int_equal(restore_at(t, between, NULL, NULL), AT_EINVAL);
    assert_non_null(strstr(at_error_detail(), "before the oldest base"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_format),
        cmocka_unit_test_setup_teardown(test_point_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_down_spools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_survives_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
