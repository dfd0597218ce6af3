/*
 * test_keyring_layers.c — what atrestd's key monitor does with a keyring's
 * layers: drop (keys wiped, layer unavailable), check, restore, rewrap
 * after a KEK rotation, peek; and that a drop never lets an encryption use
 * a wiped key while writers run.
 *
 * The inner layer's provider is an embedded provider behind a switch
 * ("gate") that can make it refuse like a disabled customer key, so the
 * tests need no key service (test_kmsprov.c covers that provider).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "testfs.h"

/* ---- a provider that can be switched off -------------------------------- */

struct gate {
    struct key_provider base;
    struct key_provider *inner;
    atomic_int off;     /* 1: refuse everything as "disabled" */
    atomic_int unwraps; /* calls seen */
    enum kp_cause last;
};

static struct gate *gate_of(struct key_provider *kp)
{
    return (struct gate *)kp;
}

static int refuse(struct gate *g)
{
    g->last = KP_CAUSE_DISABLED;
    return at_error_set(AT_EKEYUNAVAIL, "gate: key disabled");
}

static int g_key_id(struct key_provider *kp, char *buf, size_t n)
{
    return kp_key_id(gate_of(kp)->inner, buf, n);
}
static int g_current(struct key_provider *kp, uint32_t *v)
{
    return gate_of(kp)->off ? refuse(gate_of(kp)) : kp_current_version(gate_of(kp)->inner, v);
}
static int g_wrap(struct key_provider *kp, const uint8_t *k, size_t n, struct kp_wrapped *out)
{
    struct gate *g = gate_of(kp);
    if (g->off)
        return refuse(g);
    g->last = KP_CAUSE_OK;
    return kp_wrap(g->inner, k, n, out);
}
static int g_unwrap(struct key_provider *kp, const struct kp_wrapped *in, uint8_t *out, size_t *n)
{
    struct gate *g = gate_of(kp);
    atomic_fetch_add(&g->unwraps, 1);
    if (g->off)
        return refuse(g);
    g->last = KP_CAUSE_OK;
    return kp_unwrap(g->inner, in, out, n);
}
static int g_health(struct key_provider *kp)
{
    return gate_of(kp)->off ? refuse(gate_of(kp)) : 0;
}
static void g_destroy(struct key_provider *kp)
{
    kp_destroy(gate_of(kp)->inner);
    free(kp);
}
static void g_status(struct key_provider *kp, struct kp_status *st)
{
    memset(st, 0, sizeof *st);
    st->cause = gate_of(kp)->last;
}

static const struct key_provider_ops gate_ops = {
    .iVersion = 2,
    .name = "gate",
    .key_id = g_key_id,
    .current_version = g_current,
    .wrap = g_wrap,
    .unwrap = g_unwrap,
    .health = g_health,
    .destroy = g_destroy,
    .last_status = g_status,
};

/* ---- fixture -------------------------------------------------------------- */

struct env {
    char root[PATH_MAX], data[PATH_MAX], k1[PATH_MAX], k2[PATH_MAX];
    struct key_provider *outer, *inner; /* inner is a gate */
    struct key_provider *inner_raw;     /* the embedded provider behind it */
};

static struct key_provider *embedded(const char *keys, const char *data)
{
    struct key_provider *kp = NULL;
    if (embedded_provider_open(keys, data, 1, &kp) != 0)
        fail_msg("provider %s: %s", keys, at_error_detail());
    return kp;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    char tmp[PATH_MAX];
    unsetenv("ATREST_ROOT_KEY");
    testfs_mkdtemp(tmp, "krlayers");
    if (!e || !realpath(tmp, e->root))
        return -1;
    testfs_join(e->data, e->root, "data");
    testfs_join(e->k1, e->root, "keys1");
    testfs_join(e->k2, e->root, "keys2");
    if (mkdir(e->data, 0700) != 0)
        return -1;
    e->outer = embedded(e->k1, e->data);
    struct gate *g = calloc(1, sizeof *g);
    g->base.ops = &gate_ops;
    g->inner = e->inner_raw = embedded(e->k2, e->data);
    e->inner = &g->base;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    kp_destroy(e->outer);
    kp_destroy(e->inner);
    testfs_rm_rf(e->root);
    free(e);
    return 0;
}

static struct keyring *kopen(struct env *e, int create)
{
    struct keyring *kr = NULL;
    if (keyring_open(e->data, e->outer, e->inner, create, &kr) != 0)
        fail_msg("keyring_open: %s", at_error_detail());
    return kr;
}

static void add(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN])
{
    if (keyring_add_file(kr, name, id) != 0)
        fail_msg("add %s: %s", name, at_error_detail());
}

static void copy_read(struct keyring *kr, const uint8_t *id, int layer, uint32_t v,
                      uint8_t out[KEYRING_DEK_LEN])
{
    if (keyring_copy_key_for_read(kr, id, layer, v, out) != 0)
        fail_msg("copy_key_for_read: %s", at_error_detail());
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_drop_wipes_and_refuses(void **state)
{
    struct env *e = *state;
    struct keyring *kr = kopen(e, 1);
    uint8_t a[KEYRING_FILE_ID_LEN], b[KEYRING_FILE_ID_LEN], k[KEYRING_DEK_LEN];
    uint8_t inner_before[KEYRING_DEK_LEN], outer_before[KEYRING_DEK_LEN];
    uint32_t v = 0;
    const uint8_t *ptr = NULL;
    add(kr, "alpha", a);
    assert_int_equal(keyring_layers(kr), 2);
    copy_read(kr, a, 1, 1, inner_before);
    copy_read(kr, a, 0, 1, outer_before);
    assert_int_equal(keyring_key_for_read(kr, a, 1, 1, &ptr), 0);
    assert_int_equal(keyring_layer_available(kr, 1), 1);

    assert_int_equal(keyring_layer_drop(kr, 1), 0);
    assert_int_equal(keyring_layer_available(kr, 1), 0);
    assert_int_equal(keyring_layer_available(kr, 0), 1);
    assert_true(all_zero(ptr, KEYRING_DEK_LEN)); /* wiped in place */
    assert_int_equal(keyring_copy_key_for_read(kr, a, 1, 1, k), AT_EKEYUNAVAIL);
    assert_int_equal(keyring_copy_key_for_write(kr, a, 1, &v, k), AT_EKEYUNAVAIL);
    assert_int_equal(keyring_key_for_read(kr, a, 1, 1, &ptr), AT_EKEYUNAVAIL);
    assert_int_equal(keyring_key_for_write(kr, a, 1, &v, &ptr), AT_EKEYUNAVAIL);
    assert_non_null(strstr(at_error_detail(), "customer-managed"));
    /* No new DEK in a dropped layer; the outer layer goes on. */
    assert_int_equal(keyring_add_file(kr, "beta", b), AT_EKEYUNAVAIL);
    assert_int_equal(keyring_rotate_file(kr, a, 1), AT_EKEYUNAVAIL);
    copy_read(kr, a, 0, 1, k);
    assert_memory_equal(k, outer_before, KEYRING_DEK_LEN);
    assert_int_equal(keyring_layer_drop(kr, 1), 0); /* idempotent */
    assert_int_equal(keyring_layer_drop(kr, 2), AT_EINVAL);

    /* Restore brings back the very same keys. */
    assert_int_equal(keyring_layer_restore(kr, 1), 0);
    assert_int_equal(keyring_layer_available(kr, 1), 1);
    copy_read(kr, a, 1, 1, k);
    assert_memory_equal(k, inner_before, KEYRING_DEK_LEN);
    add(kr, "beta", b);
    assert_int_equal(keyring_copy_key_for_write(kr, b, 1, &v, k), 0);
    keyring_close(kr);
}

static void test_check_and_restore_follow_the_provider(void **state)
{
    struct env *e = *state;
    struct gate *g = gate_of(e->inner);
    struct keyring *kr = kopen(e, 1);
    uint8_t a[KEYRING_FILE_ID_LEN], k[KEYRING_DEK_LEN], before[KEYRING_DEK_LEN];
    struct kp_status st;

    /* No DEK yet: the check is the provider's health. */
    assert_int_equal(keyring_layer_check(kr, 1), 0);
    add(kr, "alpha", a);
    copy_read(kr, a, 1, 1, before);
    int calls = atomic_load(&g->unwraps);
    assert_int_equal(keyring_layer_check(kr, 1), 0);
    assert_true(atomic_load(&g->unwraps) > calls); /* it really asked */

    g->off = 1;
    assert_int_equal(keyring_layer_check(kr, 1), AT_EKEYUNAVAIL);
    kp_last_status(e->inner, &st);
    assert_int_equal(st.cause, KP_CAUSE_DISABLED);
    assert_string_equal(kp_cause_name(st.cause), "disabled");
    assert_int_equal(keyring_layer_drop(kr, 1), 0);
    assert_int_equal(keyring_layer_restore(kr, 1), AT_EKEYUNAVAIL);
    assert_int_equal(keyring_layer_available(kr, 1), 0); /* nothing changed */
    assert_int_equal(keyring_copy_key_for_read(kr, a, 1, 1, k), AT_EKEYUNAVAIL);
    /* The outer layer is checked through its own provider. */
    assert_int_equal(keyring_layer_check(kr, 0), 0);

    g->off = 0;
    assert_int_equal(keyring_layer_check(kr, 1), 0);
    assert_int_equal(keyring_layer_restore(kr, 1), 0);
    copy_read(kr, a, 1, 1, k);
    assert_memory_equal(k, before, KEYRING_DEK_LEN);
    keyring_close(kr);

    /* A dropped layer is never persisted as such: reopening unwraps it. */
    kr = kopen(e, 0);
    copy_read(kr, a, 1, 1, k);
    assert_memory_equal(k, before, KEYRING_DEK_LEN);
    keyring_close(kr);
}

static void test_rewrap_after_rotation(void **state)
{
    struct env *e = *state;
    struct keyring *kr = kopen(e, 1);
    uint8_t a[KEYRING_FILE_ID_LEN], b[KEYRING_FILE_ID_LEN], k[KEYRING_DEK_LEN];
    uint8_t ka[2][KEYRING_DEK_LEN];
    uint32_t cur = 0;
    size_t n = 0;
    add(kr, "alpha", a);
    add(kr, "beta", b);
    assert_int_equal(keyring_rotate_file(kr, a, 1), 0); /* two DEK versions in alpha */
    copy_read(kr, a, 1, 1, ka[0]);
    copy_read(kr, a, 1, 2, ka[1]);

    assert_int_equal(kp_current_version(e->inner, &cur), 0);
    assert_int_equal(keyring_layer_stale(kr, 1, cur), 0);
    assert_int_equal(embedded_provider_rotate(e->inner_raw), 0);
    assert_int_equal(kp_current_version(e->inner, &cur), 0);
    assert_int_equal(keyring_layer_stale(kr, 1, cur), 1);
    assert_int_equal(keyring_rewrap(kr, 1, &n), 0);
    assert_int_equal(n, 3); /* alpha v1, v2, beta v1 */
    assert_int_equal(keyring_layer_stale(kr, 1, cur), 0);

    /* The outer layer: its DEKs and the keyring's MAC key. */
    assert_int_equal(embedded_provider_rotate(e->outer), 0);
    assert_int_equal(kp_current_version(e->outer, &cur), 0);
    assert_int_equal(keyring_layer_stale(kr, 0, cur), 1);
    assert_int_equal(keyring_rewrap(kr, 0, &n), 0);
    assert_int_equal(n, 2 + 1); /* alpha v1, beta v1 and the MAC key */
    assert_int_equal(keyring_layer_stale(kr, 0, cur), 0);

    /* A dropped layer cannot be rewrapped (its keys are gone). */
    assert_int_equal(keyring_layer_drop(kr, 1), 0);
    assert_int_equal(keyring_rewrap(kr, 1, &n), AT_EKEYUNAVAIL);
    keyring_close(kr);

    /* Reopened: every value is under the new versions, the keys unchanged. */
    struct keyring_info info;
    assert_int_equal(keyring_peek(e->data, &info), 0);
    assert_int_equal(info.nkek[0], 1);
    assert_int_equal(info.nkek[1], 1);
    assert_int_equal(info.kek[1][0].kek_version, 2);
    kr = kopen(e, 0);
    copy_read(kr, a, 1, 1, k);
    assert_memory_equal(k, ka[0], KEYRING_DEK_LEN);
    copy_read(kr, a, 1, 2, k);
    assert_memory_equal(k, ka[1], KEYRING_DEK_LEN);
    keyring_close(kr);
}

static void test_peek(void **state)
{
    struct env *e = *state;
    struct keyring_info info;
    char id0[KP_KEY_ID_MAX], id1[KP_KEY_ID_MAX];
    uint8_t a[KEYRING_FILE_ID_LEN];
    assert_int_equal(keyring_peek(e->data, &info), AT_ENOTFOUND);
    struct keyring *kr = kopen(e, 1);
    add(kr, "alpha", a);
    keyring_close(kr);
    assert_int_equal(keyring_peek(e->data, &info), 0);
    assert_int_equal(kp_key_id(e->outer, id0, sizeof id0), 0);
    assert_int_equal(kp_key_id(e->inner, id1, sizeof id1), 0);
    assert_int_equal(info.layers, 2);
    assert_string_equal(info.key_id[0], id0);
    assert_string_equal(info.key_id[1], id1);
    assert_int_equal(info.files, 1);
    assert_int_equal(info.deks[0], 1);
    assert_int_equal(info.deks[1], 1);
    char ver[16];
    assert_int_equal(kp_wrapped_version(e->inner, &info.kek[1][0], ver, sizeof ver), 0);
    assert_string_equal(ver, "1");
    /* A damaged file is reported, not read. */
    char path[PATH_MAX];
    testfs_join(path, e->data, "keyring");
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 20, SEEK_SET);
    fputc(0x55 ^ fgetc(f), f);
    fclose(f);
    assert_int_equal(keyring_peek(e->data, &info), AT_EKEYRING);
}

/* Writers take keys while the layer is dropped and restored over and over:
 * every key handed out is the true key, never a wiped (zero) one. */
struct racer {
    struct keyring *kr;
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint8_t want[KEYRING_DEK_LEN];
    atomic_int *stop;
    atomic_long ok, refused, bad; /* read by the main thread while running */
};

static void *race_writer(void *p)
{
    struct racer *r = p;
    uint8_t k[KEYRING_DEK_LEN];
    uint32_t v;
    while (!atomic_load(r->stop)) {
        int rc = keyring_copy_key_for_write(r->kr, r->id, 1, &v, k);
        if (rc == AT_EKEYUNAVAIL)
            r->refused++;
        else if (rc == 0 && memcmp(k, r->want, sizeof k) == 0)
            r->ok++;
        else
            r->bad++;
    }
    secmem_wipe(k, sizeof k);
    return NULL;
}

static void test_drop_races_writers(void **state)
{
    struct env *e = *state;
    struct keyring *kr = kopen(e, 1);
    atomic_int stop = 0;
    struct racer r[3];
    pthread_t t[3];
    uint8_t id[KEYRING_FILE_ID_LEN];
    add(kr, "alpha", id);
    for (int i = 0; i < 3; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].kr = kr;
        r[i].stop = &stop;
        memcpy(r[i].id, id, sizeof id);
        copy_read(kr, id, 1, 1, r[i].want);
        assert_int_equal(pthread_create(&t[i], NULL, race_writer, &r[i]), 0);
    }
    for (int round = 0; round < 200; round++) {
        assert_int_equal(keyring_layer_drop(kr, 1), 0);
        assert_int_equal(keyring_layer_restore(kr, 1), 0);
    }
    /* On a busy machine a writer may not have run yet: give each one the
     * restored layer until it has had a key (at most 10 s). */
    for (int waited = 0; waited < 1000; waited++) {
        int all = 1;
        for (int i = 0; i < 3; i++)
            all &= atomic_load(&r[i].ok) > 0;
        if (all)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    long ok = 0, refused = 0, bad = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].ok;
        refused += r[i].refused;
        bad += r[i].bad;
    }
    assert_int_equal(bad, 0);
    assert_true(ok > 0);
    print_message("writers: %ld keys handed out, %ld refused while dropped\n", ok, refused);
    keyring_close(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop_wipes_and_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_and_restore_follow_the_provider, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_after_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_races_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
