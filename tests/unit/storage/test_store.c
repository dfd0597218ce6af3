/*
 * test_store.c — the store API and what it leaves on disk.
 *
 *  - create/open/close round trip; AT_EEXIST, AT_ENOTFOUND, AT_ELOCKED.
 *  - the data folder holds only LOCK, keyring and <32 hex>.db[-wal]: the WAL
 *    index is in memory (shm.h), there is no -shm file.
 *  - page format: plaintext SQLite magic and reserved-byte count, key
 *    version 1 in every trailer, distinct nonces, random-looking pages.
 *  - two key layers (64 reserved bytes); the wrong or a missing inner key
 *    is AT_EKEYMISMATCH and changes nothing on disk.
 *  - DEK rotation by encryption count (rotate_at = 50).
 *  - checkpoints copy ciphertext (no crypto); temp files are refused and
 *    never needed (temp_store=MEMORY); mmap_size cannot bypass the VFS.
 *  - store_drop crypto-shreds: a copy of the dropped file cannot be opened.
 *  - wrong, missing, corrupted or too-open keys fail cleanly with a detail
 *    and leave every file of the data and key folders unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "fixture.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "storage/page.h"
#include "storage/store.h"
#include "storage/verify.h"
#include "storage/vfs.h"

/* ---- per-test state, cleaned up even when an assertion fails ------------ */

struct ctx {
    struct fixture fx;
    struct store *st[3];        /* closed first */
    struct store_env *env[3];   /* then these */
    struct key_provider *kp[4]; /* then these, then fx_teardown */
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    for (int i = 0; i < 3; i++)
        if (c->st[i])
            (void)store_close(c->st[i]);
    for (int i = 0; i < 3; i++)
        store_env_close(c->env[i]);
    for (int i = 0; i < 4; i++)
        kp_destroy(c->kp[i]);
    if (c->fx.root[0])
        fx_teardown(&c->fx);
    free(c);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static void sub(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static int env_open(const char *data_dir, struct key_provider *outer, struct key_provider *inner,
                    int create, uint64_t rotate_at, struct store_env **out)
{
    struct store_env_options opt = {
        .data_dir = data_dir,
        .outer = outer,
        .inner = inner,
        .create = create,
        .rotate_at = rotate_at,
    };
    at_error_clear();
    return store_env_open(&opt, out);
}

static int provider_open(const char *key_dir, const char *data_dir, int create,
                         struct key_provider **out)
{
    at_error_clear();
    return embedded_provider_open(key_dir, data_dir, create, out);
}

static void file_path_of(const char *data_dir, const uint8_t id[KEYRING_FILE_ID_LEN], char *out,
                         size_t cap)
{
    int n = snprintf(out, cap, "%s/", data_dir);
    for (int i = 0; i < KEYRING_FILE_ID_LEN; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", id[i]);
    snprintf(out + n, cap - (size_t)n, ".db");
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Sorted names of a folder's entries (without . and ..). */
struct listing {
    int n;
    char name[32][NAME_MAX + 1];
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void list_dir(const char *dir, struct listing *l)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    l->n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_true(l->n < 32);
        snprintf(l->name[l->n++], sizeof l->name[0], "%s", e->d_name);
    }
    closedir(d);
    qsort(l->name, (size_t)l->n, sizeof l->name[0], cmp_name);
}

static void assert_same_listing(const struct listing *a, const struct listing *b)
{
    for (int i = 0; i < a->n || i < b->n; i++)
        if (i >= a->n || i >= b->n || strcmp(a->name[i], b->name[i]) != 0)
            fail_msg("folder listing changed at entry %d: \"%s\" vs \"%s\"", i,
                     i < a->n ? a->name[i] : "(none)", i < b->n ? b->name[i] : "(none)");
}

/* 1 when name is <32 lowercase hex>.db or .db-wal. */
static int is_store_file_name(const char *name)
{
    for (int i = 0; i < 32; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return 0;
    const char *rest = name + 32;
    return strcmp(rest, ".db") == 0 || strcmp(rest, ".db-wal") == 0;
}

/* Every file under a set of folders: relative path, mode and bytes. */
struct snap_entry {
    char path[PATH_MAX];
    mode_t mode;
    size_t len;
    uint8_t *bytes; /* regular files only */
};

struct snapshot {
    int n;
    struct snap_entry e[64];
};

static void snap_walk(struct snapshot *s, const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        assert_true(s->n < 64);
        struct snap_entry *e = &s->e[s->n++];
        sub(e->path, sizeof e->path, dir, de->d_name);
        struct stat sb;
        assert_int_equal(lstat(e->path, &sb), 0);
        e->mode = sb.st_mode;
        e->bytes = NULL;
        e->len = 0;
        if (S_ISREG(sb.st_mode))
            e->bytes = fx_read_file(e->path, &e->len);
        else if (S_ISDIR(sb.st_mode))
            snap_walk(s, e->path);
    }
    closedir(d);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct snap_entry *)a)->path, ((const struct snap_entry *)b)->path);
}

static void snap_take(struct snapshot *s, const char *dir1, const char *dir2)
{
    s->n = 0;
    snap_walk(s, dir1);
    if (dir2)
        snap_walk(s, dir2);
    qsort(s->e, (size_t)s->n, sizeof s->e[0], cmp_entry);
}

static void snap_free(struct snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->e[i].bytes);
    s->n = 0;
}

/* Fails the test naming the first difference; frees `now`. */
static void snap_assert_same(const struct snapshot *before, struct snapshot *now, const char *what)
{
    for (int i = 0; i < before->n || i < now->n; i++) {
        if (i >= before->n || i >= now->n || strcmp(before->e[i].path, now->e[i].path) != 0)
            fail_msg("%s: files added or removed near %s", what,
                     i < now->n ? now->e[i].path : before->e[i].path);
        const struct snap_entry *a = &before->e[i], *b = &now->e[i];
        if (a->mode != b->mode)
            fail_msg("%s: mode of %s changed %o -> %o", what, a->path, (unsigned)a->mode,
                     (unsigned)b->mode);
        if (a->len != b->len || (a->len && memcmp(a->bytes, b->bytes, a->len) != 0))
            fail_msg("%s: content of %s changed", what, a->path);
    }
    snap_free(now);
}

static void assert_detail_has(const char *needle1, const char *needle2)
{
    const char *d = at_error_detail();
    if (!strstr(d, needle1) && !(needle2 && strstr(d, needle2)))
        fail_msg("error detail \"%s\" mentions neither \"%s\" nor \"%s\"", d, needle1,
                 needle2 ? needle2 : "");
}

/* Spread of byte values: a page of ciphertext has no byte value much more
 * frequent than n/256; SQLite plaintext (zeros, ASCII) has. */
static int looks_random(const uint8_t *p, size_t n)
{
    unsigned hist[256] = {0}, max = 0;
    for (size_t i = 0; i < n; i++)
        hist[p[i]]++;
    for (int v = 0; v < 256; v++)
        max = hist[v] > max ? hist[v] : max;
    return max <= n / 256 * 3 + 8;
}

/* The key versions found in the outer trailers of a main file or a WAL. */
struct versions {
    int n;
    uint32_t v[256];
    size_t pages;
};

static void add_version(struct versions *vs, uint32_t v)
{
    for (int i = 0; i < vs->n; i++)
        if (vs->v[i] == v)
            return;
    if (vs->n < 256)
        vs->v[vs->n++] = v;
}

static void collect_versions(const char *path, int wal, struct versions *vs)
{
    size_t len = 0;
    if (!exists(path))
        return;
    uint8_t *buf = fx_read_file(path, &len);
    assert_non_null(buf);
    if (!wal) {
        for (size_t off = 0; off + PAGE_SIZE <= len; off += PAGE_SIZE, vs->pages++)
            add_version(vs, page_get32(buf + off + PAGE_SIZE - PAGE_TRAILER_LEN));
    } else {
        for (size_t off = WAL_HDR; off + FRAME_SIZE <= len; off += FRAME_SIZE, vs->pages++)
            add_version(vs, page_get32(buf + off + FRAME_SIZE - PAGE_TRAILER_LEN));
    }
    free(buf);
}

static sqlite3_int64 query_int(struct store *st, const char *sql)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_round_trip_and_errors(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_roundtrip");

    assert_int_equal(store_create(fx->env, "docs", &c->st[0]), 0);
    fx_fill(c->st[0], 600, 400, 50, NULL);
    assert_int_equal(fx_check_docs(c->st[0], 600, 400, NULL), 0);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;

    /* A new process' view: provider and environment opened again. */
    fx_close(fx);
    assert_int_equal(fx_reopen(fx), 0);
    assert_int_equal(store_open(fx->env, "docs", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 600, 400, NULL), 0);
    assert_int_equal(query_int(c->st[0], "SELECT count(*) FROM docs"), 600);

    /* Names: taken, unknown. */
    struct store *other = NULL;
    assert_int_equal(store_create(fx->env, "docs", &other), AT_EEXIST);
    assert_null(other);
    assert_int_equal(store_open(fx->env, "nosuchstore", &other), AT_ENOTFOUND);
    assert_null(other);
    /* A failed create left no keys behind: the name is still free. */
    assert_int_equal(store_create(fx->env, "second", &c->st[1]), 0);
    assert_int_equal(store_close(c->st[1]), 0);
    c->st[1] = NULL;

    /* One owner per data folder, even within one process. */
    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 0, &c->kp[0]), 0);
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 0, 0, &c->env[0]), AT_ELOCKED);
    assert_null(c->env[0]);
    assert_detail_has("in use", "data");
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 1, 0, &c->env[0]), AT_ELOCKED);

    /* Closing the first owner frees the folder. */
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    store_env_close(fx->env);
    fx->env = NULL;
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 0, 0, &c->env[0]), 0);
    assert_int_equal(store_open(c->env[0], "docs", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 600, 400, NULL), 0);
    assert_int_equal(store_open(c->env[0], "second", &c->st[1]), 0);
}

static void test_on_disk_names(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    static const char *names[] = {"customer_orders", "payroll-2024"};
    fx_setup(fx, "store_names");

    assert_int_equal(store_create(fx->env, names[0], &c->st[0]), 0);
    assert_int_equal(store_create(fx->env, names[1], &c->st[1]), 0);
    fx_fill(c->st[0], 200, 300, 50, NULL);
    fx_fill(c->st[1], 50, 300, 50, NULL);

    for (int round = 0; round < 2; round++) {
        /* round 0: stores open (WAL present); round 1: closed. */
        struct listing l;
        list_dir(fx->data_dir, &l);
        int db = 0, wal = 0, lock = 0, keyring = 0;
        for (int i = 0; i < l.n; i++) {
            const char *n = l.name[i];
            if (strcmp(n, "LOCK") == 0)
                lock++;
            else if (strcmp(n, "keyring") == 0)
                keyring++;
            else if (is_store_file_name(n))
                db += strcmp(n + 32, ".db") == 0, wal += strcmp(n + 32, ".db-wal") == 0;
            else
                fail_msg("unexpected file in the data folder: %s", n);
            for (size_t k = 0; k < 2; k++)
                if (strstr(n, names[k]) || strstr(n, "customer") || strstr(n, "payroll"))
                    fail_msg("file name %s contains the store name", n);
        }
        assert_int_equal(lock, 1);
        assert_int_equal(keyring, 1);
        assert_int_equal(db, 2);
        if (round == 0) {
            assert_int_equal(wal, 2); /* the check above covered -wal names */
            for (int k = 0; k < 2; k++) {
                assert_int_equal(store_close(c->st[k]), 0);
                c->st[k] = NULL;
            }
        }
    }

    /* The two file ids are the keyring's, not derived from the names. */
    uint8_t id0[KEYRING_FILE_ID_LEN], id1[KEYRING_FILE_ID_LEN];
    struct keyring *kr = store_env_keyring(fx->env);
    assert_int_equal(keyring_find_file(kr, names[0], id0), 0);
    assert_int_equal(keyring_find_file(kr, names[1], id1), 0);
    assert_memory_not_equal(id0, id1, KEYRING_FILE_ID_LEN);
    char p[PATH_MAX];
    file_path_of(fx->data_dir, id0, p, sizeof p);
    assert_true(exists(p));
}

static void test_page_format(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    static const char canary[] = "CANARY-page-format-7f3a";
    fx_setup(fx, "store_pages");
    assert_int_equal(store_create(fx->env, "fmt", &c->st[0]), 0);
    fx_fill(c->st[0], 300, 500, 30, canary);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;

    char path[PATH_MAX], wal[PATH_MAX + 8];
    fx_store_file(fx->data_dir, path, sizeof path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_false(exists(wal)); /* checkpointed into the main file */
    size_t len = 0;
    uint8_t *f = fx_read_file(path, &len);
    assert_non_null(f);
    assert_int_equal(len % PAGE_SIZE, 0);
    size_t npages = len / PAGE_SIZE;
    assert_true(npages >= 10);

    /* The plaintext header: magic, page size, reserved bytes = one trailer. */
    assert_memory_equal(f, "SQLite format 3\0", 16);
    assert_int_equal(f[16] << 8 | f[17], PAGE_SIZE);
    assert_int_equal(f[18], 2); /* WAL mode */
    assert_int_equal(f[20], 32);

    /* Every page: outer key version 1, a nonce of its own. */
    uint8_t(*nonces)[12] = calloc(npages, 12);
    assert_non_null(nonces);
    for (size_t i = 0; i < npages; i++) {
        const uint8_t *t = f + i * PAGE_SIZE + PAGE_SIZE - PAGE_TRAILER_LEN;
        if (page_get32(t) != 1)
            fail_msg("page %zu: key version %u, want 1", i + 1, page_get32(t));
        memcpy(nonces[i], t + 4, 12);
        for (size_t j = 0; j < i; j++)
            if (memcmp(nonces[i], nonces[j], 12) == 0)
                fail_msg("pages %zu and %zu share a nonce", j + 1, i + 1);
    }
    free(nonces);

    /* Page 1 after its 24 plaintext bytes, and page 2, look random. */
    assert_true(looks_random(f + PAGE_PLAIN_HDR, PAGE_SIZE - PAGE_PLAIN_HDR - PAGE_TRAILER_LEN));
    assert_true(looks_random(f + PAGE_SIZE, PAGE_SIZE - PAGE_TRAILER_LEN));
    size_t random_pages = 0;
    for (size_t i = 1; i < npages; i++)
        random_pages += looks_random(f + i * PAGE_SIZE, PAGE_SIZE - PAGE_TRAILER_LEN);
    assert_int_equal(random_pages, npages - 1);
    /* Not even the schema or the documents show through. */
    assert_null(memmem(f, len, "CREATE TABLE", 12));
    assert_null(memmem(f, len, canary, sizeof canary - 1));
    assert_null(memmem(f, len, "doc-1", 5));
    free(f);
    assert_int_equal(fx_scan_dir(fx->data_dir, canary, sizeof canary - 1), 0);
    assert_int_equal(fx_scan_dir(fx->data_dir, "SQLite format 3", 15), 1); /* the .db only */
}

static void test_two_layers(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    char inner_dir[PATH_MAX], other_dir[PATH_MAX];
    fx_mkroot(fx, "store_layers");
    sub(inner_dir, sizeof inner_dir, fx->root, "customer-keys");
    sub(other_dir, sizeof other_dir, fx->root, "other-customer-keys");

    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 1, &c->kp[0]), 0);
    assert_int_equal(provider_open(inner_dir, fx->data_dir, 1, &c->kp[1]), 0);
    assert_int_equal(env_open(fx->data_dir, c->kp[0], c->kp[1], 1, 0, &c->env[0]), 0);
    assert_int_equal(keyring_layers(store_env_keyring(c->env[0])), 2);
    assert_int_equal(store_create(c->env[0], "two", &c->st[0]), 0);
    fx_fill(c->st[0], 300, 500, 50, NULL);
    assert_int_equal(fx_check_docs(c->st[0], 300, 500, NULL), 0);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    store_env_close(c->env[0]);
    c->env[0] = NULL;

    char path[PATH_MAX];
    fx_store_file(fx->data_dir, path, sizeof path);
    size_t len = 0;
    uint8_t *f = fx_read_file(path, &len);
    assert_non_null(f);
    assert_memory_equal(f, "SQLite format 3\0", 16);
    assert_int_equal(f[20], 64);
    size_t npages = len / PAGE_SIZE;
    assert_true(npages >= 10);
    for (size_t off = 0; off < len; off += PAGE_SIZE)
        assert_int_equal(page_get32(f + off + PAGE_SIZE - 32), 1); /* outer key version */

    /* Both layers present: the data reads back. */
    assert_int_equal(env_open(fx->data_dir, c->kp[0], c->kp[1], 0, 0, &c->env[0]), 0);

    /* Two real layers: peeling the outer one alone (page_open with one
     * layer) leaves inner ciphertext and a plaintext inner trailer (key
     * version 1), which only then opens with both layers. */
    struct keyring *kr = store_env_keyring(c->env[0]);
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint8_t page[PAGE_SIZE], orig[PAGE_SIZE];
    assert_int_equal(keyring_find_file(kr, "two", id), 0);
    for (size_t i = 1; i < npages; i++) {
        uint32_t pgno = (uint32_t)i + 1;
        memcpy(orig, f + i * PAGE_SIZE, PAGE_SIZE);
        assert_true(looks_random(orig, PAGE_SIZE - 64)); /* inner trailer encrypted too */
        memcpy(page, orig, PAGE_SIZE);
        assert_int_equal(page_open(kr, id, 1, pgno, page), 0);
        assert_int_equal(page_get32(page + PAGE_SIZE - 64), 1);
        assert_true(looks_random(page, PAGE_SIZE - 64));
        memcpy(page, orig, PAGE_SIZE);
        assert_int_equal(page_open(kr, id, 2, pgno, page), 0);
        uint8_t zero[64] = {0};
        assert_memory_equal(page + PAGE_SIZE - 64, zero, 64);
    }
    free(f);
    assert_int_equal(store_open(c->env[0], "two", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 300, 500, NULL), 0);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    store_env_close(c->env[0]);
    c->env[0] = NULL;

    /* Without the customer key, or with another one: refused, nothing
     * written. */
    struct snapshot before, now;
    snap_take(&before, fx->data_dir, NULL);
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 0, 0, &c->env[0]), AT_EKEYMISMATCH);
    assert_null(c->env[0]);
    assert_detail_has("keyring", NULL);
    snap_take(&now, fx->data_dir, NULL);
    snap_assert_same(&before, &now, "open without inner key");
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 1, 0, &c->env[0]), AT_EKEYMISMATCH);
    snap_take(&now, fx->data_dir, NULL);
    snap_assert_same(&before, &now, "open without inner key, create set");

    assert_int_equal(provider_open(other_dir, fx->data_dir, 1, &c->kp[2]), 0);
    assert_int_equal(env_open(fx->data_dir, c->kp[0], c->kp[2], 0, 0, &c->env[0]), AT_EKEYMISMATCH);
    assert_null(c->env[0]);
    assert_detail_has("keyring", NULL);
    snap_take(&now, fx->data_dir, NULL);
    snap_assert_same(&before, &now, "open with another inner key");
    assert_int_equal(env_open(fx->data_dir, c->kp[0], c->kp[2], 1, 0, &c->env[0]), AT_EKEYMISMATCH);
    snap_take(&now, fx->data_dir, NULL);
    snap_assert_same(&before, &now, "open with another inner key, create set");
    /* Inner and outer swapped. */
    assert_int_equal(env_open(fx->data_dir, c->kp[1], c->kp[0], 0, 0, &c->env[0]), AT_EKEYMISMATCH);
    snap_take(&now, fx->data_dir, NULL);
    snap_assert_same(&before, &now, "open with the layers swapped");
    snap_free(&before);

    /* And the right keys still work afterwards. */
    assert_int_equal(env_open(fx->data_dir, c->kp[0], c->kp[1], 0, 0, &c->env[0]), 0);
    assert_int_equal(store_open(c->env[0], "two", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 300, 500, NULL), 0);
}

static void test_rotation_by_count(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_mkroot(fx, "store_rotate");
    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 1, &c->kp[0]), 0);
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 1, 50, &c->env[0]), 0);
    assert_int_equal(store_create(c->env[0], "rot", &c->st[0]), 0);
    struct vfs_stats s0, s1;
    vfs_stats_get(&s0);
    fx_fill(c->st[0], 800, 1000, 40, NULL);
    vfs_stats_get(&s1);
    assert_true(s1.pages_sealed - s0.pages_sealed >= 300);

    struct keyring *kr = store_env_keyring(c->env[0]);
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint32_t version = 0;
    uint64_t count = 0;
    assert_int_equal(keyring_find_file(kr, "rot", id), 0);
    assert_int_equal(keyring_file_status(kr, id, KEYRING_LAYER_OUTER, &version, &count), 0);
    assert_true(version >= 3);
    assert_true(count <= 50);
    /* At least one rotation per 50 encryptions. */
    assert_true(version >= (s1.pages_sealed - s0.pages_sealed) / 50);

    /* The raw trailers show several versions (main file and WAL). */
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", store_path(c->st[0]));
    struct versions vs = {0};
    collect_versions(store_path(c->st[0]), 0, &vs);
    collect_versions(wal, 1, &vs);
    assert_true(vs.pages > 0);
    assert_true(vs.n > 1);
    for (int i = 0; i < vs.n; i++)
        assert_true(vs.v[i] >= 1 && vs.v[i] <= version);

    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    store_env_close(c->env[0]);
    c->env[0] = NULL;

    /* After reopening (default threshold): the data and the versions. */
    assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, 0, 0, &c->env[0]), 0);
    kr = store_env_keyring(c->env[0]);
    uint32_t version2 = 0;
    assert_int_equal(keyring_file_status(kr, id, KEYRING_LAYER_OUTER, &version2, &count), 0);
    assert_true(version2 >= version);
    assert_int_equal(store_open(c->env[0], "rot", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 800, 1000, NULL), 0);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;

    char path[PATH_MAX];
    fx_store_file(fx->data_dir, path, sizeof path);
    struct versions after = {0};
    collect_versions(path, 0, &after);
    assert_true(after.n > 1); /* checkpointed pages keep their versions */

    struct verify_report r;
    assert_int_equal(verify_data_dir(kr, store_env_data_dir(c->env[0]), &r, NULL, NULL), 0);
    assert_int_equal(r.pages_failed, 0);
    assert_int_equal(r.pages_checked, after.pages);
    assert_int_equal(r.missing_files, 0);
}

static void test_checkpoint_passthrough(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_ckpt");
    assert_int_equal(store_create(fx->env, "ck", &c->st[0]), 0);
    assert_int_equal(store_exec(c->st[0], "PRAGMA wal_autocheckpoint=0"), 0);
    fx_fill(c->st[0], 500, 800, 50, NULL);

    /* The distinct pages in the WAL are what the checkpoint copies. */
    char wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", store_path(c->st[0]));
    size_t len = 0;
    uint8_t *w = fx_read_file(wal, &len);
    assert_non_null(w);
    uint8_t *seen = calloc(1 << 16, 1);
    assert_non_null(seen);
    uint64_t distinct = 0;
    for (size_t off = WAL_HDR; off + FRAME_SIZE <= len; off += FRAME_SIZE) {
        uint32_t pgno = page_get32(w + off);
        assert_true(pgno > 0 && pgno < (1 << 16));
        if (!seen[pgno]++)
            distinct++;
    }
    free(seen);
    free(w);
    assert_true(distinct >= 50);

    struct vfs_stats a, b;
    vfs_stats_get(&a);
    assert_int_equal(store_close(c->st[0]), 0); /* checkpoints */
    c->st[0] = NULL;
    vfs_stats_get(&b);
    assert_false(exists(wal));
    print_message("checkpoint of %llu pages: sealed +%llu, opened +%llu, passthrough +%llu\n",
                  (unsigned long long)distinct,
                  (unsigned long long)(b.pages_sealed - a.pages_sealed),
                  (unsigned long long)(b.pages_opened - a.pages_opened),
                  (unsigned long long)(b.ckpt_passthrough - a.ckpt_passthrough));
    assert_true(b.pages_sealed - a.pages_sealed <= 2);
    assert_true(b.ckpt_passthrough - a.ckpt_passthrough >= distinct);
    assert_true(b.pages_opened - a.pages_opened <= 4);
    assert_int_equal(b.auth_failures, a.auth_failures);

    /* The copied ciphertext is valid where it landed. */
    assert_int_equal(store_open(fx->env, "ck", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 500, 800, NULL), 0);
    struct verify_report r;
    assert_int_equal(
        verify_data_dir(store_env_keyring(fx->env), store_env_data_dir(fx->env), &r, NULL, NULL),
        0);
    assert_int_equal(r.pages_failed, 0);
    assert_int_equal(r.wal_frames, 0);
    assert_true(r.pages_checked >= distinct);
}

static void test_temp_files_refused(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_temp"); /* registers the VFS */

    /* A temporary database through the VFS: refused when it needs a file. */
    struct vfs_stats a, b;
    vfs_stats_get(&a);
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2("", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, VFS_NAME);
    if (src == SQLITE_OK) {
        src = sqlite3_exec(db,
                           "PRAGMA cache_size=4;"
                           "CREATE TABLE t(x);"
                           "BEGIN;"
                           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                           "WHERE i<2000) INSERT INTO t SELECT randomblob(900) FROM n;"
                           "COMMIT;",
                           NULL, NULL, NULL);
    }
    sqlite3_close_v2(db);
    vfs_stats_get(&b);
    assert_int_not_equal(src, SQLITE_OK);
    assert_true(b.refused_opens > a.refused_opens);

    /* A store: big sorts stay in memory, no file appears anywhere near. */
    assert_int_equal(store_create(fx->env, "sorts", &c->st[0]), 0);
    struct store *st = c->st[0];
    assert_int_equal(store_exec(st, "CREATE TABLE big(id INTEGER PRIMARY KEY, k TEXT, v TEXT);"
                                    "BEGIN;"
                                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 "
                                    "FROM n WHERE i<4000) INSERT INTO big(k, v) SELECT "
                                    "hex(randomblob(300)), hex(randomblob(500)) FROM n;"
                                    "COMMIT;"),
                     0);
    struct listing before, after;
    list_dir(fx->data_dir, &before);
    vfs_stats_get(&a);
    assert_int_equal(store_exec(st, "CREATE INDEX big_k ON big(k)"), 0);
    sqlite3_stmt *q = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(store_db(st), "SELECT v, k FROM big ORDER BY v", -1, &q, NULL),
        SQLITE_OK);
    char prev[1001] = "";
    int rows = 0;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        assert_true(strcmp(prev, v) <= 0);
        snprintf(prev, sizeof prev, "%s", v);
        rows++;
    }
    sqlite3_finalize(q);
    assert_int_equal(src, SQLITE_DONE);
    assert_int_equal(rows, 4000);
    assert_int_equal(query_int(st, "SELECT count(*) FROM big INDEXED BY big_k WHERE k > ''"), 4000);
    vfs_stats_get(&b);
    list_dir(fx->data_dir, &after);
    assert_same_listing(&before, &after);
    assert_int_equal(b.refused_opens, a.refused_opens);

    /* Control: the same sort with temp_store=FILE would need a temp file;
     * the VFS refuses it (so the sort above really stayed in memory). */
    /* A small page cache makes SQLite's sorter spill (it keeps in memory
     * about what the cache allows). */
    assert_int_equal(store_exec(st, "PRAGMA temp_store=FILE; PRAGMA cache_size=-500"), 0);
    vfs_stats_get(&a);
    assert_int_equal(
        sqlite3_prepare_v2(store_db(st), "SELECT v, k FROM big ORDER BY v", -1, &q, NULL),
        SQLITE_OK);
    while ((src = sqlite3_step(q)) == SQLITE_ROW)
        ;
    sqlite3_finalize(q);
    vfs_stats_get(&b);
    assert_int_not_equal(src, SQLITE_DONE);
    assert_true(b.refused_opens > a.refused_opens);
    assert_int_equal(store_exec(st, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8192"), 0);
    list_dir(fx->data_dir, &after);
    assert_same_listing(&before, &after);
}

static void test_no_mmap(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_mmap");
    assert_int_equal(store_create(fx->env, "mm", &c->st[0]), 0);
    fx_fill(c->st[0], 400, 800, 100, NULL);
    sqlite3_int64 table_pages =
        query_int(c->st[0], "SELECT count(*) FROM dbstat WHERE name='docs'");
    assert_true(table_pages >= 50);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    char path[PATH_MAX];
    fx_store_file(fx->data_dir, path, sizeof path);
    long long pages = fx_file_size(path) / PAGE_SIZE;
    assert_true(pages >= 50);

    /* Cold: a new connection with an empty page cache asks for mmap. */
    assert_int_equal(store_open(fx->env, "mm", &c->st[0]), 0);
    assert_int_equal(store_exec(c->st[0], "PRAGMA mmap_size=268435456"), 0);
    struct vfs_stats a, b;
    vfs_stats_get(&a);
    assert_int_equal(fx_check_docs(c->st[0], 400, 800, NULL), 0);
    vfs_stats_get(&b);
    /* Every page of the table was decrypted by the VFS, none mapped. */
    assert_true((sqlite3_int64)(b.pages_opened - a.pages_opened) >= table_pages);
    assert_int_equal(b.auth_failures, a.auth_failures);
}

static void test_drop_shreds(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_drop");
    assert_int_equal(store_create(fx->env, "victim", &c->st[0]), 0);
    assert_int_equal(store_create(fx->env, "survivor", &c->st[1]), 0);
    fx_fill(c->st[0], 200, 500, 50, NULL);
    fx_fill(c->st[1], 100, 300, 50, NULL);
    char path[PATH_MAX], side[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s", store_path(c->st[0]));
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    assert_int_equal(store_close(c->st[1]), 0);
    c->st[1] = NULL;

    struct keyring *kr = store_env_keyring(fx->env);
    uint8_t id[KEYRING_FILE_ID_LEN], got[KEYRING_FILE_ID_LEN];
    assert_int_equal(keyring_find_file(kr, "victim", id), 0);
    size_t len = 0;
    uint8_t *copy = fx_read_file(path, &len);
    assert_non_null(copy);
    size_t npages = len / PAGE_SIZE;
    assert_true(npages >= 10);
    uint8_t *page = malloc(PAGE_SIZE);
    assert_non_null(page);

    /* Control: before the drop every page of the copy opens. */
    for (size_t i = 0; i < npages; i++) {
        memcpy(page, copy + i * PAGE_SIZE, PAGE_SIZE);
        assert_int_equal(page_open(kr, id, 1, (uint32_t)i + 1, page), 0);
    }

    assert_int_equal(store_drop(fx->env, "victim"), 0);
    assert_int_equal(keyring_find_file(kr, "victim", got), AT_ENOTFOUND);
    assert_false(exists(path));
    static const char *suffix[] = {"-wal", "-shm", "-journal"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffix[i]);
        assert_false(exists(side));
    }
    struct store *gone = NULL;
    assert_int_equal(store_open(fx->env, "victim", &gone), AT_ENOTFOUND);
    assert_int_equal(store_drop(fx->env, "victim"), AT_ENOTFOUND);

    /* Crypto-shredded: the ciphertext left behind cannot be opened. */
    for (size_t i = 0; i < npages; i++) {
        memcpy(page, copy + i * PAGE_SIZE, PAGE_SIZE);
        assert_int_equal(page_open(kr, id, 1, (uint32_t)i + 1, page), AT_EINTEGRITY);
    }
    /* Not even after the keyring is read again from disk. */
    fx_close(fx);
    assert_int_equal(fx_reopen(fx), 0);
    kr = store_env_keyring(fx->env);
    assert_int_equal(keyring_find_file(kr, "victim", got), AT_ENOTFOUND);
    for (size_t i = 0; i < npages; i += 7) {
        memcpy(page, copy + i * PAGE_SIZE, PAGE_SIZE);
        assert_int_equal(page_open(kr, id, 1, (uint32_t)i + 1, page), AT_EINTEGRITY);
    }
    free(page);
    free(copy);

    /* The other store is untouched. */
    assert_int_equal(store_open(fx->env, "survivor", &c->st[1]), 0);
    assert_int_equal(fx_check_docs(c->st[1], 100, 300, NULL), 0);
}

/* What a process killed inside store_create leaves (store.c invariant 5): a
 * keyring entry with no store file, perhaps a half-made "<file>-new" with
 * its journal. The name opens as "not found", can be created (the entry is
 * reused, the leftovers replaced) and dropped without a file remaining. */
static void test_killed_create_leftovers(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    fx_setup(fx, "store_leftovers");
    struct keyring *kr = store_env_keyring(fx->env);
    uint8_t id[KEYRING_FILE_ID_LEN], again[KEYRING_FILE_ID_LEN];
    char path[PATH_MAX], side[PATH_MAX + 16];
    static const uint8_t junk[100] = {1, 2, 3};
    const char *left[] = {"-new", "-new-journal"};
    for (int round = 0; round < 2; round++) {
        assert_int_equal(keyring_add_file(kr, "half", id), 0);
        store_file_path(fx->data_dir, id, path, sizeof path);
        for (int i = 0; i < 2; i++) {
            snprintf(side, sizeof side, "%s%s", path, left[i]);
            fx_write_file(side, junk, sizeof junk);
        }
        assert_int_equal(store_open(fx->env, "half", &c->st[0]), AT_ENOTFOUND);
        if (round == 0) {
            assert_int_equal(store_create(fx->env, "half", &c->st[0]), 0);
            assert_int_equal(keyring_find_file(kr, "half", again), 0);
            assert_memory_equal(id, again, sizeof id);
            fx_fill(c->st[0], 20, 300, 5, NULL);
            assert_int_equal(store_close(c->st[0]), 0);
            c->st[0] = NULL;
            assert_true(exists(path));
            assert_int_equal(store_open(fx->env, "half", &c->st[0]), 0);
            assert_int_equal(fx_check_docs(c->st[0], 20, 300, NULL), 0);
            assert_int_equal(store_close(c->st[0]), 0);
            c->st[0] = NULL;
            for (int i = 0; i < 2; i++) {
                snprintf(side, sizeof side, "%s%s", path, left[i]);
                assert_false(exists(side));
            }
        }
        /* An existing store is never replaced by a create. */
        if (round == 0)
            assert_int_equal(store_create(fx->env, "half", &c->st[0]), AT_EEXIST);
        assert_int_equal(store_drop(fx->env, "half"), 0);
        assert_false(exists(path));
        for (int i = 0; i < 2; i++) {
            snprintf(side, sizeof side, "%s%s", path, left[i]);
            assert_false(exists(side));
        }
    }
}

static void flip_byte(const char *path, size_t off)
{
    for (int bit = 0; bit < 8; bit++)
        fx_flip_bit(path, off, bit);
}

static void test_bad_keys(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    char other_dir[PATH_MAX], missing_dir[PATH_MAX], root_key[PATH_MAX], keyring[PATH_MAX];
    char real_data[PATH_MAX], real_keys[PATH_MAX];
    fx_setup(fx, "store_badkeys");
    assert_int_equal(store_create(fx->env, "kept", &c->st[0]), 0);
    fx_fill(c->st[0], 200, 500, 50, NULL);
    assert_int_equal(store_close(c->st[0]), 0);
    c->st[0] = NULL;
    fx_close(fx);
    sub(other_dir, sizeof other_dir, fx->root, "other-keys");
    sub(missing_dir, sizeof missing_dir, fx->root, "no-such-keys");
    sub(root_key, sizeof root_key, fx->key_dir, "root.key");
    sub(keyring, sizeof keyring, fx->data_dir, "keyring");
    assert_non_null(realpath(fx->data_dir, real_data));
    assert_non_null(realpath(fx->key_dir, real_keys));

    struct snapshot before, now;
    snap_take(&before, fx->data_dir, fx->key_dir);

    /* (a) another key folder. */
    assert_int_equal(provider_open(other_dir, fx->data_dir, 1, &c->kp[0]), 0);
    for (int create = 0; create <= 1; create++) {
        assert_int_equal(env_open(fx->data_dir, c->kp[0], NULL, create, 0, &c->env[0]),
                         AT_EKEYMISMATCH);
        assert_null(c->env[0]);
        assert_detail_has(real_data, fx->data_dir);
        snap_take(&now, fx->data_dir, fx->key_dir);
        snap_assert_same(&before, &now, "other key folder");
    }

    /* (b) a missing key folder. */
    assert_int_equal(provider_open(missing_dir, fx->data_dir, 0, &c->kp[1]), AT_EKEYDIR);
    assert_null(c->kp[1]);
    assert_detail_has("no-such-keys", NULL);
    assert_false(exists(missing_dir));
    snap_take(&now, fx->data_dir, fx->key_dir);
    snap_assert_same(&before, &now, "missing key folder");

    /* (c) the keyring with a flipped byte, anywhere in it. */
    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 0, &c->kp[1]), 0);
    size_t klen = 0;
    uint8_t *orig = fx_read_file(keyring, &klen);
    assert_non_null(orig);
    assert_true(klen > 64);
    /* The first 16 bytes (magic, format, layer count, key id length), then
     * every 7th byte, and the last one. Not every byte: each failed open
     * costs ~0.1 s under ASan (keyring_open allocates 64 MB to read it). */
    size_t offs[256];
    int noffs = 0, bad = 0;
    for (size_t off = 0; off < klen && noffs < 255; off += off < 16 ? 1 : 7)
        offs[noffs++] = off;
    if (offs[noffs - 1] != klen - 1)
        offs[noffs++] = klen - 1;
    for (int k = 0; k < noffs; k++) {
        size_t off = offs[k];
        flip_byte(keyring, off);
        int rc = env_open(fx->data_dir, c->kp[1], NULL, 0, 0, &c->env[0]);
        if (rc != AT_EKEYRING || c->env[0] || !strstr(at_error_detail(), "keyring")) {
            if (bad++ < 8)
                print_message("keyring byte %zu flipped: %s (%d): %s\n", off, at_strerror(rc), rc,
                              at_error_detail());
            store_env_close(c->env[0]);
            c->env[0] = NULL;
        }
        size_t nlen = 0;
        uint8_t *now_bytes = fx_read_file(keyring, &nlen);
        assert_int_equal(nlen, klen);
        for (size_t i = 0; i < klen; i++)
            assert_int_equal(now_bytes[i], i == off ? (uint8_t)~orig[i] : orig[i]);
        free(now_bytes);
        fx_write_file(keyring, orig, klen);
        if (k == noffs / 2) {
            /* Also with create set: never replaced by a fresh keyring. */
            flip_byte(keyring, off);
            assert_int_equal(env_open(fx->data_dir, c->kp[1], NULL, 1, 0, &c->env[0]), AT_EKEYRING);
            fx_write_file(keyring, orig, klen);
        }
    }
    /* Truncated. */
    fx_write_file(keyring, orig, klen - 1);
    assert_int_equal(env_open(fx->data_dir, c->kp[1], NULL, 0, 0, &c->env[0]), AT_EKEYRING);
    assert_int_equal(fx_file_size(keyring), (long long)klen - 1);
    fx_write_file(keyring, orig, klen);
    free(orig);
    if (bad)
        fail_msg("%d of %d flipped keyring bytes were not reported as AT_EKEYRING", bad, noffs);
    snap_take(&now, fx->data_dir, fx->key_dir);
    snap_assert_same(&before, &now, "corrupted keyring");
    kp_destroy(c->kp[1]);
    c->kp[1] = NULL;

    /* (d) root.key readable by others; (e) the key folder open to group. */
    snap_free(&before);
    assert_int_equal(chmod(root_key, 0644), 0);
    snap_take(&before, fx->data_dir, fx->key_dir);
    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 0, &c->kp[1]), AT_EPERM_OPEN);
    assert_null(c->kp[1]);
    assert_detail_has("root.key", NULL);
    snap_take(&now, fx->data_dir, fx->key_dir);
    snap_assert_same(&before, &now, "root.key mode 0644");
    snap_free(&before);
    assert_int_equal(chmod(root_key, 0600), 0);

    assert_int_equal(chmod(fx->key_dir, 0750), 0);
    snap_take(&before, fx->data_dir, fx->key_dir);
    assert_int_equal(provider_open(fx->key_dir, fx->data_dir, 0, &c->kp[1]), AT_EPERM_OPEN);
    assert_null(c->kp[1]);
    assert_detail_has(real_keys, fx->key_dir);
    snap_take(&now, fx->data_dir, fx->key_dir);
    snap_assert_same(&before, &now, "key folder mode 0750");
    snap_free(&before);
    assert_int_equal(chmod(fx->key_dir, 0700), 0);

    /* Everything intact: the right keys open the store. */
    assert_int_equal(fx_reopen(fx), 0);
    assert_int_equal(store_open(fx->env, "kept", &c->st[0]), 0);
    assert_int_equal(fx_check_docs(c->st[0], 200, 500, NULL), 0);
}

int main(void)
{
    unsetenv("ATREST_ROOT_KEY"); /* the tests use root.key files */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_disk_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_by_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_files_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_mmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_shreds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_create_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
