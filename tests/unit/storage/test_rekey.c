/*
 * test_rekey.c — data-key rotation with online re-encryption (rekey.c).
 *
 *  - idle store: after store_rotate_keys and a re-encryption, every page of
 *    the main file and every WAL frame carries the new version, the old DEK
 *    version is gone from the keyring, the data reads back and verifies,
 *    also after a reopen.
 *  - under load: a group-commit writer and a reader run while the
 *    re-encryption goes in small batches; the reader never sees an error,
 *    every write is present, and the census ends all-current.
 *  - two layers: both layers' versions move.
 *  - crash: a child re-encrypts (and writes) and is SIGKILLed at random
 *    moments, 12 times; each time the store opens, every acknowledged row
 *    is there, verify passes; then the re-encryption completes.
 *  - journal: a complete journal is replayed at open, an incomplete one is
 *    dropped, one whose page does not authenticate refuses the open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/error.h"
#include "fixture.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "storage/page.h"
#include "storage/rekey.h"
#include "storage/store.h"
#include "storage/verify.h"

/* Run a re-encryption of st to the end in batches of batch pages, with
 * threads (1 or 2) reading and re-sealing each batch. */
static void rekey_all(struct store *st, uint32_t batch, int threads,
                      struct store_rekey_progress *out)
{
    struct store_rekey *rk;
    assert_int_equal(store_rekey_new(st, &rk), 0);
    store_rekey_set_threads(rk, threads);
    int done = 0;
    for (int i = 0; i < 1000000 && !done; i++) {
        int rc = store_rekey_step(rk, batch, &done);
        if (rc)
            fail_msg("rekey step: %d %s", rc, at_error_detail());
    }
    assert_true(done);
    if (out)
        store_rekey_progress(rk, out);
    store_rekey_free(rk);
}

/* Every page and frame of st's file is under version v in every layer. */
static void assert_census_only(struct store *st, int layers, uint32_t v)
{
    struct rekey_census c;
    assert_int_equal(rekey_census(store_path(st), layers, store_keyring(st), store_file_id(st), &c),
                     0);
    assert_true(c.pages > 0);
    for (int l = 0; l < layers; l++) {
        if (c.nver[l] != 1 || c.ver[l][0] != v || c.other[l])
            fail_msg("layer %d: %d versions on disk, first %u (want only %u)", l, c.nver[l],
                     c.ver[l][0], v);
        assert_int_equal(c.pages_at[l][0], c.pages);
        assert_int_equal(c.frames_at[l][0], c.wal_frames);
    }
}

static void assert_versions(struct store *st, int layers, uint32_t oldest, uint32_t current)
{
    for (int l = 0; l < layers; l++) {
        uint32_t o, cur;
        assert_int_equal(keyring_file_versions(store_keyring(st), store_file_id(st), l, &o, &cur),
                         0);
        assert_int_equal(o, oldest);
        assert_int_equal(cur, current);
    }
}

static void assert_verifies(struct fixture *fx)
{
    struct verify_report r;
    assert_int_equal(verify_data_dir(store_env_keyring(fx->env), fx->data_dir, &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 0);
    assert_true(r.pages_checked > 0);
}

static void test_idle(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    fx_setup(&fx, "rekey-idle");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 3000, 600, 100, "CANARY");
    /* Part of it checkpointed into the main file, the rest in the WAL. */
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(PASSIVE)"), 0);
    assert_int_equal(store_exec(st, "UPDATE docs SET body = body WHERE rowid % 3 = 0"), 0);
    assert_false(store_rekey_pending(st));
    assert_int_equal(store_rotate_keys(st), 0);
    assert_true(store_rekey_pending(st));
    assert_versions(st, 1, 1, 2);
    struct store_rekey_progress p;
    rekey_all(st, 64, 1, &p);
    assert_true(p.rewritten > 100);
    assert_int_equal(p.destroyed, 1);
    assert_false(store_rekey_pending(st));
    assert_versions(st, 1, 2, 2);
    assert_census_only(st, 1, 2);
    assert_int_equal(fx_check_docs(st, 3000, 600, "CANARY"), 0);
    assert_verifies(&fx);
    /* A second rotation works the same way. */
    assert_int_equal(store_rotate_keys(st), 0);
    rekey_all(st, 8192, 2, NULL); /* two threads, 2 parts per batch */
    assert_census_only(st, 1, 3);
    assert_int_equal(store_close(st), 0);
    fx_close(&fx);
    assert_int_equal(fx_reopen(&fx), 0);
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_versions(st, 1, 3, 3);
    assert_int_equal(fx_check_docs(st, 3000, 600, "CANARY"), 0);
    assert_int_equal(store_close(st), 0);
    assert_verifies(&fx);
    fx_teardown(&fx);
}

/* The before-retire hook: asked once the pages are current; "later" holds
 * the old DEK back, an error stops the step and destroys nothing. */
struct hook_state {
    int calls, later, fail;
    uint32_t seen;
};

static int hook(void *arg, const uint32_t current[2])
{
    struct hook_state *h = arg;
    h->calls++;
    h->seen = current[0];
    if (h->fail)
        return AT_EIO;
    return h->later-- > 0 ? 1 : 0;
}

static void test_before_retire(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    fx_setup(&fx, "rekey-hook");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 500, 500, 100, NULL);
    assert_int_equal(store_rotate_keys(st), 0);
    struct store_rekey *rk;
    struct hook_state h = {.fail = 1};
    assert_int_equal(store_rekey_new(st, &rk), 0);
    store_rekey_set_before_retire(rk, hook, &h);
    int done = 0, rc = 0;
    for (int i = 0; i < 1000 && !done && !rc; i++)
        rc = store_rekey_step(rk, 64, &done);
    assert_int_equal(rc, AT_EIO);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.seen, 2);
    assert_versions(st, 1, 1, 2); /* nothing destroyed */
    h = (struct hook_state){.later = 2};
    int steps = 0;
    for (done = 0; !done; steps++)
        assert_int_equal(store_rekey_step(rk, 8192, &done), 0);
    assert_int_equal(h.calls, 3); /* later, later, go */
    assert_versions(st, 1, 2, 2);
    store_rekey_free(rk);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* ---- under load ------------------------------------------------------------ */

struct load {
    struct store *st;
    struct store_writer *w;
    volatile int stop;
    long written, reads, read_errors;
};

static int insert_one(sqlite3 *db, void *arg)
{
    long n = *(long *)arg;
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%ld, printf('%%.*c', 300 + %ld %% 900, 'x'))",
             n, n);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : AT_ESQLITE;
}

static void *writer_main(void *arg)
{
    struct load *L = arg;
    for (long n = 1; !L->stop; n++) {
        long v = n;
        if (store_write(L->w, insert_one, &v) != 0)
            break;
        L->written = n;
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    struct load *L = arg;
    sqlite3 *db;
    assert_int_equal(store_connect(L->st, &db), 0);
    while (!L->stop) {
        /* A full scan touches every page, checkpointed ones from the main file. */
        int rc = sqlite3_exec(db, "SELECT sum(length(p)) FROM t", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            L->read_errors++;
        L->reads++;
    }
    store_disconnect(db);
    return NULL;
}

static void run_under_load(int layers)
{
    struct fixture fx;
    struct store *st;
    fx_mkroot(&fx, layers == 2 ? "rekey-load2" : "rekey-load");
    char inner_dir[PATH_MAX + 8];
    struct key_provider *inner = NULL;
    assert_true(snprintf(fx.data_dir, sizeof fx.data_dir, "%s/data", fx.root) <
                (int)sizeof fx.data_dir);
    assert_true(snprintf(fx.key_dir, sizeof fx.key_dir, "%s/keys", fx.root) <
                (int)sizeof fx.key_dir);
    assert_true(snprintf(inner_dir, sizeof inner_dir, "%s/cmk", fx.root) < (int)sizeof inner_dir);
    assert_int_equal(embedded_provider_open(fx.key_dir, fx.data_dir, 1, &fx.kp), 0);
    if (layers == 2)
        assert_int_equal(embedded_provider_open(inner_dir, fx.data_dir, 1, &inner), 0);
    struct store_env_options o = {
        .data_dir = fx.data_dir, .outer = fx.kp, .inner = inner, .create = 1};
    assert_int_equal(store_env_open(&o, &fx.env), 0);
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    assert_int_equal(store_exec(st, "CREATE TABLE t(n INTEGER PRIMARY KEY, p TEXT)"), 0);
    struct load L = {.st = st};
    assert_int_equal(store_writer_start(st, &L.w), 0);
    pthread_t wt, rt;
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &L), 0);
    while (L.written < 3000)
        usleep(1000);
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &L), 0);
    assert_int_equal(store_rotate_keys(st), 0);
    struct store_rekey_progress p;
    rekey_all(st, layers == 2 ? 300 : 32, layers, &p);
    L.stop = 1;
    pthread_join(wt, NULL);
    pthread_join(rt, NULL);
    store_writer_stop(L.w);
    print_message("layers %d: %ld writes, %ld reads during re-encryption; %llu pages rewritten\n",
                  layers, L.written, L.reads, (unsigned long long)p.rewritten);
    assert_int_equal(L.read_errors, 0);
    assert_true(L.reads > 0);
    assert_versions(st, layers, 2, 2);
    assert_census_only(st, layers, 2);
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(store_db(st), "SELECT count(*), max(n) FROM t", -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_true(sqlite3_column_int64(q, 0) >= L.written);
    assert_int_equal(sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1));
    sqlite3_finalize(q);
    assert_int_equal(store_exec(st, "PRAGMA integrity_check"), 0);
    assert_int_equal(store_close(st), 0);
    assert_verifies(&fx);
    store_env_close(fx.env);
    fx.env = NULL;
    kp_destroy(inner);
    fx_teardown(&fx);
}

static void test_under_load(void **state)
{
    (void)state;
    run_under_load(1);
}

static void test_two_layers(void **state)
{
    (void)state;
    run_under_load(2);
}

/* ---- SIGKILL ----------------------------------------------------------------- */

static void crash_child(struct fixture *fx, int fd)
{
    struct store *st;
    if (fx_reopen(fx) || store_open(fx->env, "s", &st))
        _exit(3);
    if (!store_rekey_pending(st) && store_rotate_keys(st))
        _exit(4);
    struct store_rekey *rk;
    if (store_rekey_new(st, &rk))
        _exit(5);
    long ready = 0;
    if (write(fd, &ready, sizeof ready) != sizeof ready)
        _exit(6);
    for (long n = 1;; n++) {
        int done;
        if (store_rekey_step(rk, 16, &done))
            _exit(7);
        if (done)
            _exit(0);
        usleep(1000); /* a throttled re-encryption: kills land mid-pass */
        /* a write between batches: acknowledged once it returns */
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO k VALUES(NULL, %ld)", n);
        if (store_exec(st, sql))
            _exit(8);
        if (write(fd, &n, sizeof n) != sizeof n)
            _exit(9);
    }
}

static void test_sigkill(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    fx_setup(&fx, "rekey-crash");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 6000, 700, 200, NULL);
    assert_int_equal(store_exec(st, "CREATE TABLE k(i INTEGER PRIMARY KEY, n INTEGER);"
                                    "PRAGMA wal_checkpoint(TRUNCATE)"),
                     0);
    assert_int_equal(store_close(st), 0);
    fx_close(&fx);
    srand((unsigned)time(NULL));
    long acked = 0;
    int finished = 0;
    int rounds = 0;
    for (int round = 0; round < 12 && !finished; round++, rounds++) {
        int fd;
        pid_t pid = fx_fork_piped(&fd);
        if (pid == 0)
            crash_child(&fx, fd);
        long n;
        assert_int_equal(read(fd, &n, sizeof n), sizeof n);
        struct timespec ts = {0, (long)(rand() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        long round_acked = 0;
        while (read(fd, &n, sizeof n) == sizeof n)
            round_acked = n;
        close(fd);
        int status;
        waitpid(pid, &status, 0);
        finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            fail_msg("child failed with %d", WEXITSTATUS(status));
        acked += round_acked;
        assert_int_equal(fx_reopen(&fx), 0);
        assert_int_equal(store_open(fx.env, "s", &st), 0);
        assert_int_equal(fx_check_docs(st, 6000, 700, NULL), 0);
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(store_db(st), "SELECT count(*) FROM k", -1, &q, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int64(q, 0) < acked)
            fail_msg("round %d: %lld rows, %ld acknowledged", round,
                     (long long)sqlite3_column_int64(q, 0), acked);
        acked = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        assert_int_equal(store_close(st), 0);
        assert_verifies(&fx);
        fx_close(&fx);
    }
    print_message("%d kills, finished by a child: %s, %ld rows acknowledged\n", rounds,
                  finished ? "yes" : "no", acked);
    assert_true(rounds >= 3); /* the kills landed mid-pass */
    assert_int_equal(fx_reopen(&fx), 0);
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    if (store_rekey_pending(st))
        rekey_all(st, 256, 2, NULL);
    assert_versions(st, 1, 2, 2);
    assert_census_only(st, 1, 2);
    assert_int_equal(fx_check_docs(st, 6000, 700, NULL), 0);
    assert_int_equal(store_close(st), 0);
    fx_teardown(&fx);
}

/* ---- the journal ---------------------------------------------------------------- */

/* A journal of one record: page pgno of path as it is on disk (sum right
 * or wrong). */
static void write_journal(const char *path, uint32_t pgno, int good_sum, int flip)
{
    size_t len;
    uint8_t *file = fx_read_file(path, &len);
    assert_true(len >= (size_t)pgno * PAGE_SIZE);
    uint8_t j[16 + PAGE_SIZE + 32], hs[16 + 32];
    memcpy(j, "ATRRKJ03", 8);
    page_put32(j + 8, pgno);
    page_put32(j + 12, 1);
    memcpy(j + 16, file + (size_t)(pgno - 1) * PAGE_SIZE, PAGE_SIZE);
    if (flip)
        j[16 + 100] ^= 1;
    /* the sum: SHA-256 of the header and of each chunk's SHA-256 (one chunk) */
    unsigned sl = 0;
    memcpy(hs, j, 16);
    assert_int_equal(EVP_Digest(j + 16, PAGE_SIZE, hs + 16, &sl, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_Digest(hs, sizeof hs, j + sizeof j - 32, &sl, EVP_sha256(), NULL), 1);
    if (!good_sum)
        j[sizeof j - 1] ^= 1;
    char jp[PATH_MAX + 8];
    snprintf(jp, sizeof jp, "%s-rekey", path);
    fx_write_file(jp, j, sizeof j);
    free(file);
}

static void test_journal(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    char path[PATH_MAX], jp[PATH_MAX + 8];
    fx_setup(&fx, "rekey-journal");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 500, 500, 100, NULL);
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    assert_int_equal(store_close(st), 0);
    fx_store_file(fx.data_dir, path, sizeof path);
    snprintf(jp, sizeof jp, "%s-rekey", path);

    /* complete and authentic: replayed (same bytes) and removed */
    write_journal(path, 3, 1, 0);
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_int_equal(fx_file_size(jp), -1);
    assert_int_equal(fx_check_docs(st, 500, 500, NULL), 0);
    assert_int_equal(store_close(st), 0);

    /* incomplete (checksum wrong): dropped, nothing written */
    write_journal(path, 3, 0, 1);
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_int_equal(fx_file_size(jp), -1);
    assert_int_equal(fx_check_docs(st, 500, 500, NULL), 0);
    assert_int_equal(store_close(st), 0);

    /* a run holding an unwritten page (zeros, storage/page.h): replayed as
     * it is, not refused as a page that fails authentication */
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_int_equal(
        store_exec(st, "DELETE FROM docs WHERE rowid > 400; PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    uint32_t leaf = fx_unwrite_free_leaf(st);
    assert_int_equal(store_close(st), 0);
    write_journal(path, leaf, 1, 0);
    assert_int_equal(store_open(fx.env, "s", &st), 0);
    assert_int_equal(fx_file_size(jp), -1);
    assert_int_equal(fx_check_docs(st, 400, 500, NULL), 0);
    assert_int_equal(store_close(st), 0);

    /* complete but a page that does not authenticate: the open is refused */
    write_journal(path, 3, 1, 1);
    assert_int_equal(store_open(fx.env, "s", &st), AT_EINTEGRITY);
    assert_non_null(strstr(at_error_detail(), "journal"));
    assert_true(fx_file_size(jp) > 0);
    fx_teardown(&fx);
}

/* A store of more than 1 GiB has SQLite's lock-byte page as a hole of
 * zeros (PAGE_LOCK_BYTE_PGNO): the census counts it as no page, nor any
 * other page of zeros (page.h, "Unwritten pages"). A sparse copy of a real
 * store's page 2 placed on both sides of the hole stands in for the real
 * thing (the census reads trailers, no key). */
static void test_census_skips_lock_byte_page(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    char path[PATH_MAX], fake[PATH_MAX + 8];
    fx_setup(&fx, "rekey-lockbyte");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 50, 500, 50, NULL);
    assert_int_equal(store_exec(st, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
    snprintf(path, sizeof path, "%s", store_path(st));
    assert_int_equal(store_close(st), 0);
    size_t len;
    uint8_t *file = fx_read_file(path, &len);
    assert_true(len >= 2 * PAGE_SIZE);
    snprintf(fake, sizeof fake, "%s.sparse", path);
    int fd = open(fake, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    uint32_t before = PAGE_LOCK_BYTE_PGNO - 1, after = PAGE_LOCK_BYTE_PGNO + 1;
    assert_int_equal(pwrite(fd, file + PAGE_SIZE, PAGE_SIZE, (off_t)(before - 1) * PAGE_SIZE),
                     PAGE_SIZE);
    assert_int_equal(pwrite(fd, file + PAGE_SIZE, PAGE_SIZE, (off_t)(after - 1) * PAGE_SIZE),
                     PAGE_SIZE);
    close(fd);
    free(file);
    struct rekey_census c;
    assert_int_equal(rekey_census(fake, 1, NULL, NULL, &c), 0);
    /* the two sealed pages only */
    assert_int_equal(c.pages, 2);
    assert_int_equal(c.nver[0], 1);
    assert_int_equal(c.ver[0][0], 1);
    assert_int_equal(c.pages_at[0][0], 2);
    unlink(fake);
    fx_teardown(&fx);
}

/* Unwritten pages (page.h). SQLite leaves a page it allocated and freed
 * in one transaction unwritten: a free-list leaf of zeros in the main file,
 * which a re-encryption once met under load ("fails authentication;
 * re-encryption stopped"). Made here by zeroing a free-list leaf of a
 * checkpointed store, as SQLite leaves one: verification counts it as
 * unwritten, a re-encryption goes past it, the census does not count it; a
 * live page of zeros still fails verification. */
static void test_unwritten_pages(void **state)
{
    (void)state;
    struct fixture fx;
    struct store *st;
    char path[PATH_MAX];
    static const uint8_t zeros[PAGE_SIZE];
    fx_setup(&fx, "rekey-unwritten");
    assert_int_equal(store_create(fx.env, "s", &st), 0);
    fx_fill(st, 400, 2000, 100, NULL);
    assert_int_equal(store_exec(st, "DELETE FROM docs WHERE rowid > 100;"
                                    "PRAGMA wal_checkpoint(TRUNCATE)"),
                     0);
    snprintf(path, sizeof path, "%s", store_path(st));
    fx_unwrite_free_leaf(st);
    struct verify_report r;
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 0);
    assert_int_equal(r.unwritten_pages, 1);
    /* re-encryption under a new key goes past it and finishes */
    assert_int_equal(store_rotate_keys(st), 0);
    rekey_all(st, 16, 1, NULL);
    assert_versions(st, 1, 2, 2);
    assert_census_only(st, 1, 2);
    assert_int_equal(store_exec(st, "PRAGMA integrity_check"), 0);
    /* the leaf is used again (written through the WAL): still no failure */
    assert_int_equal(store_exec(st, "INSERT INTO docs SELECT id || '-2', body FROM docs LIMIT 50"),
                     0);
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 0);
    assert_int_equal(store_close(st), 0);
    /* a page in use that reads as zeros is damage */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t page[PAGE_SIZE];
    assert_int_equal(pread(fd, page, PAGE_SIZE, PAGE_SIZE), PAGE_SIZE); /* page 2 */
    assert_false(page_all_zero(page, PAGE_SIZE));
    assert_int_equal(pwrite(fd, zeros, PAGE_SIZE, PAGE_SIZE), PAGE_SIZE);
    close(fd);
    assert_int_equal(verify_data_dir(store_env_keyring(fx.env), fx.data_dir, &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 1);
    fx_teardown(&fx);
}

/* A census of a live store: its WAL shrinks (a truncating checkpoint) while
 * it is read. What is gone is not counted, and it is not an error. */
struct shrinker {
    const char *wal;
    atomic_int stop;
};

static void *shrink_loop(void *p)
{
    struct shrinker *s = p;
    static uint8_t frames[64 * FRAME_SIZE];
    while (!atomic_load(&s->stop)) {
        int fd = open(s->wal, O_WRONLY | O_CREAT, 0600);
        if (fd < 0)
            break;
        if (pwrite(fd, frames, sizeof frames, WAL_HDR) != (ssize_t)sizeof frames ||
            ftruncate(fd, WAL_HDR) != 0) {
            close(fd);
            break;
        }
        close(fd);
    }
    return NULL;
}

static void test_census_of_a_shrinking_wal(void **state)
{
    (void)state;
    struct fixture fx;
    fx_mkroot(&fx, "rekey-census-wal");
    char path[PATH_MAX + 16], wal[PATH_MAX + 24];
    snprintf(path, sizeof path, "%s/store.db", fx.root);
    snprintf(wal, sizeof wal, "%s-wal", path);
    static uint8_t pages[8 * PAGE_SIZE];
    memset(pages, 1, sizeof pages); /* no page of zeros: the census skips those */
    fx_write_file(path, pages, sizeof pages);
    struct shrinker sh = {.wal = wal};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, shrink_loop, &sh), 0);
    for (int i = 0; i < 3000; i++) {
        struct rekey_census c;
        int rc = rekey_census(path, 1, NULL, NULL, &c);
        if (rc)
            fail_msg("census %d of a live WAL: %s", i, at_error_detail());
        assert_int_equal(c.pages, 8);
        assert_true(c.wal_frames <= 64);
    }
    atomic_store(&sh.stop, 1);
    pthread_join(t, NULL);
    fx_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_before_retire),
        cmocka_unit_test(test_under_load),
        cmocka_unit_test(test_two_layers),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_journal),
        cmocka_unit_test(test_census_skips_lock_byte_page),
        cmocka_unit_test(test_unwritten_pages),
        cmocka_unit_test(test_census_of_a_shrinking_wal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
