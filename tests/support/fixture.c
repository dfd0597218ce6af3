/* fixture.c — shared helpers for storage tests (see fixture.h). */
#include "fixture.h"
#include "testfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys/embedded.h"
#include "storage/page.h"

void fx_mkroot(struct fixture *fx, const char *tag)
{
    memset(fx, 0, sizeof *fx);
    testfs_mkdtemp(fx->root, tag);
    snprintf(fx->data_dir, sizeof fx->data_dir, "%.3900s/data", fx->root);
    snprintf(fx->key_dir, sizeof fx->key_dir, "%.3900s/keys", fx->root);
}

void fx_setup(struct fixture *fx, const char *tag)
{
    fx_mkroot(fx, tag);
    int rc = embedded_provider_open(fx->key_dir, fx->data_dir, 1, &fx->kp);
    if (rc)
        fail_msg("embedded_provider_open: %s", at_error_detail());
    struct store_env_options opt = {.data_dir = fx->data_dir, .outer = fx->kp, .create = 1};
    rc = store_env_open(&opt, &fx->env);
    if (rc)
        fail_msg("store_env_open: %s", at_error_detail());
}

void fx_close(struct fixture *fx)
{
    store_env_close(fx->env);
    fx->env = NULL;
    kp_destroy(fx->kp);
    fx->kp = NULL;
}

int fx_reopen(struct fixture *fx)
{
    fx_close(fx);
    int rc = embedded_provider_open(fx->key_dir, fx->data_dir, 0, &fx->kp);
    if (rc)
        return rc;
    struct store_env_options opt = {.data_dir = fx->data_dir, .outer = fx->kp};
    return store_env_open(&opt, &fx->env);
}

pid_t fx_fork_piped(int *fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    close(p[pid == 0 ? 0 : 1]);
    *fd = p[pid == 0 ? 1 : 0];
    return pid;
}

void fx_teardown(struct fixture *fx)
{
    fx_close(fx);
    if (fx->root[0])
        fx_rmrf(fx->root);
}

void fx_rmrf(const char *path)
{
    testfs_rm_rf(path);
}

void fx_copy_tree(const char *src, const char *dst)
{
    struct stat sb;
    assert_int_equal(lstat(src, &sb), 0);
    if (S_ISDIR(sb.st_mode)) {
        assert_true(mkdir(dst, sb.st_mode & 07777) == 0 || errno == EEXIST);
        DIR *d = opendir(src);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char a[PATH_MAX], b[PATH_MAX];
            snprintf(a, sizeof a, "%s/%s", src, e->d_name);
            snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
            fx_copy_tree(a, b);
        }
        closedir(d);
    } else {
        size_t len;
        uint8_t *buf = fx_read_file(src, &len);
        fx_write_file(dst, buf, len);
        chmod(dst, sb.st_mode & 07777);
        free(buf);
    }
}

uint8_t *fx_read_file(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    int rc = testfs_read(path, &buf, len);
    if (rc)
        fail_msg("read %s: %s", path, strerror(rc));
    uint8_t *z = realloc(buf, *len + 1); /* callers may treat it as text */
    assert_non_null(z);
    z[*len] = 0;
    return z;
}

void fx_write_file(const char *path, const uint8_t *buf, size_t len)
{
    int rc = testfs_write(path, buf, len, 0600);
    if (rc)
        fail_msg("write %s: %s", path, strerror(rc));
}

void fx_flip_bit(const char *path, uint64_t off, int bit)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

long long fx_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

size_t fx_scan_dir(const char *dir, const void *needle, size_t n)
{
    size_t hits = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            hits += fx_scan_dir(p, needle, n);
            continue;
        }
        if (!S_ISREG(sb.st_mode))
            continue;
        size_t len;
        uint8_t *buf = fx_read_file(p, &len);
        size_t here = 0;
        for (size_t i = 0; len >= n && i <= len - n; i++)
            if (memcmp(buf + i, needle, n) == 0)
                here++;
        if (here)
            fprintf(stderr, "  %zu hit(s) in %s\n", here, p);
        hits += here;
        free(buf);
    }
    closedir(d);
    return hits;
}

void fx_doc_body(char *out, size_t cap, int i, int doc_size, const char *canary)
{
    int n = snprintf(out, cap,
                     "{\"id\":\"doc-%d\",\"canary\":\"%s\",\"city\":\"Tromsoe-%07d\","
                     "\"amount\":%d.25,\"tags\":[\"t%d\",\"u%d\"],\"pad\":\"",
                     i, canary ? canary : "", i, i * 7, i % 13, i % 7);
    uint32_t x = (uint32_t)i * 2654435761u + 1;
    while (n < doc_size - 3 && (size_t)n < cap - 3) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[n++] = "abcdefghijklmnopqrstuvwxyz0123456789"[x % 36];
    }
    snprintf(out + n, cap - (size_t)n, "\"}");
}

void fx_fill(struct store *st, int n, int doc_size, int batch, const char *canary)
{
    if (store_exec(st, "CREATE TABLE IF NOT EXISTS docs(id TEXT PRIMARY KEY, body TEXT)"))
        fail_msg("create table: %s", at_error_detail());
    sqlite3_stmt *ins;
    assert_int_equal(
        sqlite3_prepare_v2(store_db(st), "INSERT INTO docs VALUES(?,?)", -1, &ins, NULL),
        SQLITE_OK);
    char *body = malloc((size_t)doc_size + 256);
    assert_non_null(body);
    for (int i = 0; i < n; i += batch) {
        assert_int_equal(store_begin(st), 0);
        for (int j = i; j < i + batch && j < n; j++) {
            char id[32];
            snprintf(id, sizeof id, "doc-%d", j);
            fx_doc_body(body, (size_t)doc_size + 256, j, doc_size, canary);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, body, -1, SQLITE_TRANSIENT);
            assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
            sqlite3_reset(ins);
        }
        if (store_commit(st))
            fail_msg("commit: %s", at_error_detail());
    }
    free(body);
    sqlite3_finalize(ins);
}

int fx_check_docs(struct store *st, int n, int doc_size, const char *canary)
{
    sqlite3_stmt *q;
    int src =
        sqlite3_prepare_v2(store_db(st), "SELECT id, body FROM docs ORDER BY rowid", -1, &q, NULL);
    if (src != SQLITE_OK)
        return store_error(st, src);
    char *want = malloc((size_t)doc_size + 256);
    int seen = 0, wrong = 0;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        int i = id && strncmp(id, "doc-", 4) == 0 ? atoi(id + 4) : -1;
        fx_doc_body(want, (size_t)doc_size + 256, i, doc_size, canary);
        const char *body = (const char *)sqlite3_column_text(q, 1);
        if (i != seen || !body || strcmp(body, want) != 0)
            wrong = 1;
        seen++;
    }
    sqlite3_finalize(q);
    free(want);
    if (src != SQLITE_DONE)
        return store_error(st, src);
    return wrong || seen != n ? 1 : 0;
}

void fx_store_file(const char *data_dir, char *out, size_t cap)
{
    DIR *d = opendir(data_dir);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l == 35 && strcmp(e->d_name + 32, ".db") == 0) {
            snprintf(out, cap, "%s/%s", data_dir, e->d_name);
            found++;
        }
    }
    closedir(d);
    assert_int_equal(found, 1);
}

/* A 32-bit field of page pgno of st's main file, read through the seal. */
static uint32_t sealed_u32(struct store *st, int fd, uint32_t pgno, size_t off)
{
    uint8_t page[PAGE_SIZE];
    assert_int_equal(pread(fd, page, PAGE_SIZE, (off_t)(pgno - 1) * PAGE_SIZE), PAGE_SIZE);
    assert_int_equal(page_open(store_keyring(st), store_file_id(st),
                               keyring_layers(store_keyring(st)), pgno, page),
                     0);
    return page_get32(page + off);
}

uint32_t fx_unwrite_free_leaf(struct store *st)
{
    static const uint8_t zeros[PAGE_SIZE];
    int fd = open(store_path(st), O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint32_t trunk = sealed_u32(st, fd, 1, 32); /* the first free-list trunk */
    assert_true(trunk > 1);
    assert_true(sealed_u32(st, fd, trunk, 4) >= 1); /* its leaves */
    uint32_t leaf = sealed_u32(st, fd, trunk, 8);
    assert_int_equal(pwrite(fd, zeros, PAGE_SIZE, (off_t)(leaf - 1) * PAGE_SIZE), PAGE_SIZE);
    close(fd);
    return leaf;
}

uint32_t fx_xorshift(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (uint32_t)(x >> 16);
}
