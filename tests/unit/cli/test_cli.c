/*
 * test_cli.c — the real `atrest` binary ($ATREST_CLI), run as a child:
 *
 *  - `atrest init` creates a private key folder and a data folder with a
 *    keyring; `atrest verify` on it checks nothing and succeeds.
 *  - `atrest verify` on a closed store of 1000 documents: exit 0, every
 *    page of the .db file checked, none failed; one flipped bit in page 3:
 *    exit 1, FAILED and page 3 named; another key folder: exit 2 naming
 *    the mismatch; a missing key folder: exit 2; no arguments: exit 2 and
 *    the usage text.
 *  - `atrest verify` on a copy of a live store (not checkpointed): exit 0,
 *    WAL frames counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/error.h"
#include "fixture.h"
#include "keys/embedded.h"
#include "storage/page.h"
#include "storage/store.h"

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

struct run {
    int code; /* exit status, or 128 + signal */
    char *out;
    char *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Run $ATREST_CLI with args (NULL-terminated); capture stdout and stderr in
 * files under scratch. */
static void run_cli(struct run *r, const char *scratch, const char *const *args)
{
    run_free(r);
    const char *cli = getenv("ATREST_CLI");
    if (!cli || !*cli)
        fail_msg("ATREST_CLI is not set (run through ctest)");
    char out_path[PATH_MAX], err_path[PATH_MAX];
    join(out_path, sizeof out_path, scratch, "cli.out");
    join(err_path, sizeof err_path, scratch, "cli.err");
    const char *argv[16];
    int n = 0;
    argv[n++] = cli;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    size_t len;
    r->out = (char *)fx_read_file(out_path, &len);
    r->err = (char *)fx_read_file(err_path, &len);
    assert_non_null(r->out);
    assert_non_null(r->err);
    unlink(out_path);
    unlink(err_path);
    print_message("atrest %s ... -> exit %d\n", args[0] ? args[0] : "", r->code);
    if (r->code != 0 && r->code != 1 && r->code != 2)
        print_message("stdout:\n%s\nstderr:\n%s\n", r->out, r->err);
}

static void expect_code(const struct run *r, int code)
{
    if (r->code != code)
        fail_msg("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r->code, code, r->out, r->err);
}

static void expect_out(const struct run *r, const char *text)
{
    if (!strstr(r->out, text))
        fail_msg("stdout lacks \"%s\":\n%s\nstderr:\n%s", text, r->out, r->err);
}

/* The numbers of "pages checked:    N (WAL frames W)". */
static void parse_checked(const struct run *r, uint64_t *pages, uint64_t *frames)
{
    const char *p = strstr(r->out, "pages checked:");
    if (!p || sscanf(p, "pages checked: %" SCNu64 " (WAL frames %" SCNu64 ")", pages, frames) != 2)
        fail_msg("no pages checked line in:\n%s", r->out);
}

static int is_private_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 077) == 0;
}

static int is_private_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) == 0;
}

/* Main-file pages plus WAL frames of the one store file of a data folder. */
static uint64_t expected_pages(const char *data_dir, uint64_t *frames)
{
    char path[PATH_MAX], wal[PATH_MAX + 8];
    fx_store_file(data_dir, path, sizeof path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    long long size = fx_file_size(path), wsize = fx_file_size(wal);
    assert_true(size > 0 && size % PAGE_SIZE == 0);
    *frames = wsize > WAL_HDR ? (uint64_t)(wsize - WAL_HDR) / FRAME_SIZE : 0;
    return (uint64_t)size / PAGE_SIZE + *frames;
}

struct ctx {
    struct fixture fx;
    struct run r; /* freed by teardown, also after a failed assertion */
    struct store *st;
    struct key_provider *kp;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    *state = c;
    return c ? 0 : -1;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    if (c->st)
        (void)store_close(c->st);
    kp_destroy(c->kp);
    run_free(&c->r);
    if (c->fx.root[0])
        fx_teardown(&c->fx);
    free(c);
    return 0;
}

static void test_init(void **state)
{
    struct ctx *c = *state;
    char data[PATH_MAX], keys[PATH_MAX], p[PATH_MAX];
    struct run *r = &c->r;
    fx_mkroot(&c->fx, "cli_init");
    join(data, sizeof data, c->fx.root, "newdata");
    join(keys, sizeof keys, c->fx.root, "newkeys");

    run_cli(r, c->fx.root, (const char *[]){"init", "--data-dir", data, "--key-dir", keys, NULL});
    expect_code(r, 0);
    run_free(r);
    assert_true(is_private_dir(keys));
    join(p, sizeof p, keys, "root.key");
    assert_true(is_private_file(p));
    join(p, sizeof p, keys, "keystore");
    assert_true(is_private_file(p));
    assert_true(is_private_dir(data));
    join(p, sizeof p, data, "keyring");
    assert_true(is_private_file(p));

    /* The folders work: an empty data folder verifies. */
    run_cli(r, c->fx.root, (const char *[]){"verify", "--data-dir", data, "--key-dir", keys, NULL});
    expect_code(r, 0);
    expect_out(r, "pages failed:     0");
    run_free(r);

    /* And the store API accepts what init made. */
    assert_int_equal(embedded_provider_open(keys, data, 0, &c->kp), 0);
    struct store_env *env = NULL;
    struct store_env_options opt = {.data_dir = data, .outer = c->kp};
    assert_int_equal(store_env_open(&opt, &env), 0);
    store_env_close(env);
}

static void test_verify(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    struct run *r = &c->r;
    fx_setup(fx, "cli_verify");
    assert_int_equal(store_create(fx->env, "docs", &c->st), 0);
    fx_fill(c->st, 1000, 300, 100, NULL);
    assert_int_equal(store_close(c->st), 0);
    c->st = NULL;
    fx_close(fx);

    uint64_t frames = 0, want = expected_pages(fx->data_dir, &frames);
    assert_true(want > 3);

    /* Intact. */
    run_cli(r, fx->root,
            (const char *[]){"verify", "--data-dir", fx->data_dir, "--key-dir", fx->key_dir, NULL});
    expect_code(r, 0);
    expect_out(r, "pages failed:     0");
    uint64_t checked = 0, wal = 0;
    parse_checked(r, &checked, &wal);
    assert_true(checked > 0);
    assert_int_equal(checked, want);
    assert_int_equal(wal, frames);
    assert_null(strstr(r->out, "FAILED"));
    run_free(r);

    /* Another key folder. */
    char other[PATH_MAX], missing[PATH_MAX];
    join(other, sizeof other, fx->root, "other-keys");
    join(missing, sizeof missing, fx->root, "missing-keys");
    assert_int_equal(embedded_provider_open(other, fx->data_dir, 1, &c->kp), 0);
    run_cli(r, fx->root,
            (const char *[]){"verify", "--data-dir", fx->data_dir, "--key-dir", other, NULL});
    expect_code(r, 2);
    if (!strstr(r->err, "keyring") ||
        !(strstr(r->err, "created with key") || strstr(r->err, "mismatch") ||
          strstr(r->err, "do not belong") || strstr(r->err, at_strerror(AT_EKEYMISMATCH))))
        fail_msg("stderr does not name the key mismatch:\n%s", r->err);
    assert_null(strstr(r->out, "pages checked"));
    run_free(r);

    /* A missing key folder (and none created by verify). */
    run_cli(r, fx->root,
            (const char *[]){"verify", "--data-dir", fx->data_dir, "--key-dir", missing, NULL});
    expect_code(r, 2);
    if (!strstr(r->err, "missing-keys"))
        fail_msg("stderr does not name the missing key folder:\n%s", r->err);
    assert_int_equal(access(missing, F_OK), -1);
    run_free(r);

    /* No arguments; a command without its folders. */
    run_cli(r, fx->root, (const char *[]){NULL});
    expect_code(r, 2);
    if (!strstr(r->err, "usage:"))
        fail_msg("no usage text on stderr:\n%s", r->err);
    run_free(r);
    run_cli(r, fx->root, (const char *[]){"verify", "--data-dir", fx->data_dir, NULL});
    expect_code(r, 2);
    run_free(r);

    /* One flipped bit in page 3. */
    char path[PATH_MAX];
    fx_store_file(fx->data_dir, path, sizeof path);
    fx_flip_bit(path, 2 * PAGE_SIZE + 1234, 5);
    run_cli(r, fx->root,
            (const char *[]){"verify", "--data-dir", fx->data_dir, "--key-dir", fx->key_dir, NULL});
    expect_code(r, 1);
    expect_out(r, "FAILED");
    expect_out(r, "offset 8192  page 3\n");
    expect_out(r, "pages failed:     1\n");
    parse_checked(r, &checked, &wal);
    assert_int_equal(checked, want);
    /* Exactly one page named. */
    const char *first = strstr(r->out, "  page ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "  page "));
    run_free(r);
}

static void test_verify_live_copy(void **state)
{
    struct ctx *c = *state;
    struct fixture *fx = &c->fx;
    struct run *r = &c->r;
    char copy[PATH_MAX];
    fx_setup(fx, "cli_live");
    join(copy, sizeof copy, fx->root, "copy");
    assert_int_equal(store_create(fx->env, "live", &c->st), 0);
    assert_int_equal(store_exec(c->st, "PRAGMA wal_autocheckpoint=0"), 0);
    fx_fill(c->st, 1000, 300, 50, NULL);

    /* Copied while the store is open: main file, WAL, shm, keyring. */
    fx_copy_tree(fx->data_dir, copy);
    uint64_t frames = 0, want = expected_pages(copy, &frames);
    assert_true(frames > 0);

    run_cli(r, fx->root,
            (const char *[]){"verify", "--data-dir", copy, "--key-dir", fx->key_dir, NULL});
    expect_code(r, 0);
    expect_out(r, "pages failed:     0");
    uint64_t checked = 0, wal = 0;
    parse_checked(r, &checked, &wal);
    assert_true(wal > 0);
    assert_int_equal(wal, frames);
    assert_int_equal(checked, want);
    run_free(r);

    /* verify only reads: the live store is unaffected. */
    assert_int_equal(fx_check_docs(c->st, 1000, 300, NULL), 0);
}

int main(void)
{
    unsetenv("ATREST_ROOT_KEY");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_live_copy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
