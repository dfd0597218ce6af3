/*
 * test_kmsprov.c — the key provider over atrest-kms, against the real daemon
 * (ATREST_KMS_BIN, started on a free port with a temporary folder): key
 * URLs, creating a missing key with an admin token and refusing without
 * one, wrap/unwrap round trips with the version carried in the wrapped
 * value, damaged values, a new key version (older values still unwrap),
 * and the causes of failures: access removed, service stopped.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/secmem.h"
#include "keys/kmsprov.h"
#include "kms/client.h"
#include "testfs.h"

static char root[PATH_MAX], folder[PATH_MAX], url[128], admin[512], app[512];
static const char *bin;
static pid_t kms_pid;

static void run_capture(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("cannot run %s", cmd);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    while (got && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        out[--got] = '\0';
    if (pclose(p) != 0)
        fail_msg("%s failed: %s", cmd, out);
}

static void start_kms(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        fail_msg("pipe");
    kms_pid = fork();
    if (kms_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(bin, bin, "--data-dir", folder, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512];
    url[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char *e = strstr(line, "endpoint:");
        if (e && sscanf(e + 9, " %127s", url) == 1)
            break;
    }
    fclose(f); /* the daemon's later output goes nowhere */
    if (!url[0])
        fail_msg("atrest-kms did not start");
}

static void stop_kms(void)
{
    if (kms_pid > 0) {
        kill(kms_pid, SIGTERM);
        waitpid(kms_pid, NULL, 0);
        kms_pid = 0;
    }
}

static int setup(void **state)
{
    (void)state;
    bin = getenv("ATREST_KMS_BIN");
    if (!bin)
        return 0;
    char tmp[PATH_MAX], cmd[PATH_MAX * 2];
    testfs_mkdtemp(tmp, "kmsprov");
    if (!realpath(tmp, root))
        return -1;
    testfs_join(folder, root, "kms");
    start_kms();
    snprintf(cmd, sizeof cmd, "%s token --data-dir %s --identity ops --admin", bin, folder);
    run_capture(cmd, admin, sizeof admin);
    snprintf(cmd, sizeof cmd, "%s token --data-dir %s --identity app", bin, folder);
    run_capture(cmd, app, sizeof app);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_kms();
    if (root[0])
        testfs_rm_rf(root);
    return 0;
}

static struct key_provider *open_as(const char *token, const char *name, int create, int want)
{
    struct kp_kms_options o = {
        .url = url, .key_name = name, .token = token, .insecure = 1, .create = create};
    struct key_provider *kp = NULL;
    int rc = kp_kms_open(&o, &kp);
    if (rc != want)
        fail_msg("kp_kms_open %s: want %d, got %d (%s)", name, want, rc, at_error_detail());
    return kp;
}

static void grant(const char *key, const char *perms)
{
    char cmd[PATH_MAX * 2], out[256];
    if (perms)
        snprintf(cmd, sizeof cmd, "%s grant --data-dir %s --key %s --identity app --permissions %s",
                 bin, folder, key, perms);
    else
        snprintf(cmd, sizeof cmd, "%s revoke --data-dir %s --key %s --identity app", bin, folder,
                 key);
    run_capture(cmd, out, sizeof out);
}

static void test_parse_key_url(void **state)
{
    (void)state;
    char base[128], name[64];
    assert_int_equal(kp_kms_parse_key_url("https://127.0.0.1:8443/keys/cmk", base, sizeof base,
                                          name, sizeof name),
                     0);
    assert_string_equal(base, "https://127.0.0.1:8443");
    assert_string_equal(name, "cmk");
    assert_int_equal(kp_kms_parse_key_url("https://h:1/keys/a-B9/0123abcd", base, sizeof base, name,
                                          sizeof name),
                     0);
    assert_string_equal(name, "a-B9");
    static const char *const bad[] = {"http://h:1/keys/a",
                                      "https://h:1/key/a",
                                      "https://h:1/keys/",
                                      "https:///keys/a",
                                      "https://h:1/x/keys/a",
                                      "https://h:1/keys/a_b",
                                      NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(kp_kms_parse_key_url(bad[i], base, sizeof base, name, sizeof name),
                         AT_EINVAL);
}

static void test_create_wrap_unwrap_rotate(void **state)
{
    (void)state;
    if (!bin)
        skip();
    struct kp_status st;
    /* Missing key: refused without create, and for a non-admin with it. */
    open_as(admin, "k1", 0, AT_EKEYUNAVAIL);
    assert_non_null(strstr(at_error_detail(), "k1: deleted"));
    /* A non-admin is refused before the key is looked up (403), so it is
     * never created by one. */
    open_as(app, "k1", 1, AT_EKEYUNAVAIL);
    assert_non_null(strstr(at_error_detail(), "access revoked"));
    struct key_provider *kp = open_as(admin, "k1", 1, 0);
    assert_true(kp_is_kms(kp));
    char id[KP_KEY_ID_MAX], want[256];
    assert_int_equal(kp_key_id(kp, id, sizeof id), 0);
    snprintf(want, sizeof want, "%s/keys/k1", url);
    assert_string_equal(id, want);
    assert_int_equal(kp_health(kp), 0);

    uint8_t dek[32], *out = secmem_alloc(KP_KEY_MAX);
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        dek[i] = (uint8_t)(i * 7 + 1);
    struct kp_wrapped w1, w2, bad;
    assert_int_equal(kp_wrap(kp, dek, sizeof dek, &w1), 0);
    char v1[80], v2[80], cur[65];
    assert_int_equal(kp_wrapped_version(kp, &w1, v1, sizeof v1), 0);
    assert_int_equal(strlen(v1), 32);
    assert_int_equal(kp_kms_current_version_id(kp, cur), 0);
    assert_string_equal(cur, v1);
    uint32_t short_v = 0;
    assert_int_equal(kp_current_version(kp, &short_v), 0);
    assert_int_equal(short_v, w1.kek_version);
    assert_int_equal(kp_unwrap(kp, &w1, out, &n), 0);
    assert_int_equal(n, 32);
    assert_memory_equal(out, dek, 32);

    /* A damaged value: the service says it was not wrapped by the key. */
    bad = w1;
    bad.bytes[bad.len - 1] ^= 1;
    assert_int_equal(kp_unwrap(kp, &bad, out, &n), AT_EINTEGRITY);
    kp_last_status(kp, &st);
    assert_int_equal(st.cause, KP_CAUSE_WRONG_KEY);
    bad = w1;
    bad.bytes[0] = 9; /* not our layout */
    assert_int_equal(kp_unwrap(kp, &bad, out, &n), AT_EINTEGRITY);

    /* A new version (create on an existing name): wraps use it, older
     * values still unwrap with theirs. */
    struct kms_client *c = NULL;
    struct kms_client_options co = {.url = url, .token = admin, .insecure = 1};
    assert_int_equal(kms_client_open(&co, &c), 0);
    assert_int_equal(kms_client_create_key(c, "k1", "oct-HSM", NULL, NULL), 0);
    kms_client_close(c);
    assert_int_equal(kp_wrap(kp, dek, sizeof dek, &w2), 0);
    assert_int_equal(kp_wrapped_version(kp, &w2, v2, sizeof v2), 0);
    assert_string_not_equal(v1, v2);
    assert_int_equal(kp_current_version(kp, &short_v), 0);
    assert_int_equal(short_v, w2.kek_version);
    assert_int_equal(kp_unwrap(kp, &w1, out, &n), 0);
    assert_memory_equal(out, dek, 32);
    assert_int_equal(kp_unwrap(kp, &w2, out, &n), 0);
    assert_memory_equal(out, dek, 32);
    secmem_free(out, KP_KEY_MAX);
    kp_destroy(kp);
}

static void test_causes(void **state)
{
    (void)state;
    if (!bin)
        skip();
    struct kp_status st;
    struct key_provider *ka = open_as(admin, "k2", 1, 0);
    kp_destroy(ka);
    grant("k2", "wrapKey,unwrapKey");
    struct key_provider *kp = open_as(app, "k2", 0, 0);
    uint8_t dek[32] = {1, 2, 3}, *out = secmem_alloc(KP_KEY_MAX);
    size_t n = 0;
    struct kp_wrapped w;
    assert_int_equal(kp_wrap(kp, dek, sizeof dek, &w), 0);
    kp_last_status(kp, &st);
    assert_int_equal(st.cause, KP_CAUSE_OK);

    grant("k2", NULL); /* access removed */
    assert_int_equal(kp_unwrap(kp, &w, out, &n), AT_EKEYUNAVAIL);
    kp_last_status(kp, &st);
    assert_int_equal(st.cause, KP_CAUSE_DENIED);
    assert_int_equal(st.http, 403);
    assert_string_equal(st.code, "AccessDenied");
    assert_string_equal(kp_cause_name(st.cause), "access revoked");
    assert_int_equal(kp_health(kp), AT_EKEYUNAVAIL);

    grant("k2", "wrapKey,unwrapKey");
    assert_int_equal(kp_unwrap(kp, &w, out, &n), 0);
    assert_memory_equal(out, dek, 32);

    stop_kms(); /* unreachable */
    assert_int_equal(kp_unwrap(kp, &w, out, &n), AT_EKEYUNAVAIL);
    kp_last_status(kp, &st);
    assert_int_equal(st.cause, KP_CAUSE_UNREACHABLE);
    assert_int_equal(st.http, 0);
    secmem_free(out, KP_KEY_MAX);
    kp_destroy(kp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_key_url),
        cmocka_unit_test(test_create_wrap_unwrap_rotate),
        cmocka_unit_test(test_causes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
