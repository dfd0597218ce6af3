/*
 * test_media.c — the sealed media format (src/media/media.h): round trips
 * at chunk boundaries, streaming reads in odd sizes, the size limit, keys
 * (two layers, a revoked layer, KEK and container DEK rotation,
 * crypto-shredding), and tampering (a flipped byte, a truncation at a chunk
 * boundary, two chunks swapped, a blob copied under another name, the
 * wrong key) — each refused, never returned as data.
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
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "keys/embedded.h"
#include "media/media.h"

struct t {
    struct fixture fx;
    char blobdir[PATH_MAX];
    struct blob_store *bs;
    struct media_keys keys;
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    fx_setup(&t->fx, "media");
    assert_true(snprintf(t->blobdir, sizeof t->blobdir, "%s/media", t->fx.root) <
                (int)sizeof t->blobdir);
    struct blob_options o = {.target = t->blobdir, .block_size = 1u << 20};
    assert_int_equal(blob_open(&o, &t->bs), 0);
    t->keys.kr = store_env_keyring(t->fx.env);
    assert_int_equal(keyring_add_file(t->keys.kr, "c-00000001", t->keys.file_id), 0);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    blob_close(t->bs);
    fx_teardown(&t->fx);
    free(t);
    return 0;
}

/* A source of n pattern bytes, handed out in pieces of at most step. */
struct gen {
    uint64_t n, pos;
    size_t step;
};

static uint8_t pat(uint64_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

static int gen_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct gen *g = ctx;
    size_t n = g->n - g->pos < cap ? (size_t)(g->n - g->pos) : cap;
    if (g->step && n > g->step)
        n = g->step;
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(g->pos + i);
    g->pos += n;
    *got = n;
    return 0;
}

static void put(struct t *t, const char *name, uint64_t n, size_t step, struct media_dek **dek,
                uint8_t *w, size_t *wlen)
{
    assert_int_equal(media_dek_new(&t->keys, name, dek, w, wlen), 0);
    struct gen g = {n, 0, step};
    uint64_t got = 0;
    assert_int_equal(media_put(t->bs, name, *dek, gen_source, &g, UINT64_MAX, &got), 0);
    assert_int_equal(got, n);
}

/* Read all of name through buffers of size step; 0 or the error. */
static int read_all(struct t *t, const char *name, const struct media_dek *dek, uint64_t n,
                    size_t step)
{
    struct media_reader *rd = NULL;
    int rc = media_reader_open(t->bs, name, dek, n, &rd);
    if (rc)
        return rc;
    uint8_t *buf = malloc(step);
    uint64_t pos = 0;
    for (;;) {
        size_t got = 0;
        rc = media_read(rd, buf, step, &got);
        if (rc || got == 0)
            break;
        for (size_t i = 0; i < got; i++)
            assert_int_equal(buf[i], pat(pos + i));
        pos += got;
    }
    free(buf);
    media_reader_close(rd);
    if (!rc)
        assert_int_equal(pos, n);
    return rc;
}

static void test_round_trip_sizes(void **state)
{
    struct t *t = *state;
    const uint64_t sizes[] = {0,
                              1,
                              MEDIA_CHUNK - 1,
                              MEDIA_CHUNK,
                              MEDIA_CHUNK + 1,
                              (uint64_t)MEDIA_CHUNK * MEDIA_WINDOW,
                              (uint64_t)MEDIA_CHUNK * (MEDIA_WINDOW + 3) + 77,
                              5u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char name[64];
        snprintf(name, sizeof name, "c-00000001/m%zu", i);
        struct media_dek *dek = NULL;
        uint8_t w[MEDIA_WRAPPED_MAX];
        size_t wlen = 0;
        put(t, name, sizes[i], i % 2 ? 1000 : 0, &dek, w, &wlen);
        struct blob_info info;
        assert_int_equal(blob_head(t->bs, name, &info), 0);
        assert_int_equal(info.size, media_sealed_size(sizes[i]));
        /* The key comes back from its wrapped form, and reads in any step. */
        struct media_dek *again = NULL;
        assert_int_equal(media_dek_open(&t->keys, name, w, wlen, &again), 0);
        assert_memory_equal(again->key, dek->key, sizeof dek->key);
        assert_int_equal(read_all(t, name, again, sizes[i], 7), 0);
        assert_int_equal(read_all(t, name, again, sizes[i], 1u << 20), 0);
        media_dek_free(again);
        media_dek_free(dek);
    }
}

static void test_limit(void **state)
{
    struct t *t = *state;
    struct media_dek *dek = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX];
    size_t wlen = 0;
    const char *name = "c-00000001/big";
    assert_int_equal(media_dek_new(&t->keys, name, &dek, w, &wlen), 0);
    struct gen g = {3 * MEDIA_CHUNK, 0, 0};
    uint64_t got = 0;
    assert_int_equal(media_put(t->bs, name, dek, gen_source, &g, 2 * MEDIA_CHUNK + 5, &got), EFBIG);
    struct blob_info info;
    assert_int_equal(blob_head(t->bs, name, &info), AT_ENOTFOUND);
    /* Exactly the limit is fine. */
    g = (struct gen){2 * MEDIA_CHUNK + 5, 0, 0};
    assert_int_equal(media_put(t->bs, name, dek, gen_source, &g, 2 * MEDIA_CHUNK + 5, &got), 0);
    media_dek_free(dek);
}

static void test_two_layers(void **state)
{
    struct t *t = *state;
    char kd[PATH_MAX], dd[PATH_MAX];
    assert_true(snprintf(kd, sizeof kd, "%s/keys2", t->fx.root) < (int)sizeof kd);
    assert_true(snprintf(dd, sizeof dd, "%s/data2", t->fx.root) < (int)sizeof dd);
    struct key_provider *inner = NULL;
    assert_int_equal(embedded_provider_open(kd, dd, 1, &inner), 0);
    assert_int_equal(mkdir(dd, 0700), 0);
    struct media_keys two = {0};
    assert_int_equal(keyring_open(dd, t->fx.kp, inner, 1, &two.kr), 0);
    assert_int_equal(keyring_add_file(two.kr, "c-00000002", two.file_id), 0);
    struct media_dek *dek = NULL, *back = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX];
    size_t wlen = 0;
    assert_int_equal(media_dek_new(&two, "c-00000002/two", &dek, w, &wlen), 0);
    assert_int_equal(w[0], 2);
    assert_int_equal(wlen, 1 + 2 * MEDIA_WRAPPED_REC);
    assert_int_equal(media_dek_open(&two, "c-00000002/two", w, wlen, &back), 0);
    assert_memory_equal(back->key, dek->key, sizeof dek->key);
    media_dek_free(back);
    /* A damaged record is refused, not misread. */
    assert_int_equal(media_dek_open(&two, "c-00000002/two", w, wlen - 1, &back), AT_EFORMAT);
    w[wlen - 3] ^= 1;
    assert_int_equal(media_dek_open(&two, "c-00000002/two", w, wlen, &back), AT_EINTEGRITY);
    w[wlen - 3] ^= 1;
    /* The customer layer revoked: no media key until it is back. */
    assert_int_equal(keyring_layer_drop(two.kr, KEYRING_LAYER_INNER), 0);
    assert_int_equal(media_dek_open(&two, "c-00000002/two", w, wlen, &back), AT_EKEYUNAVAIL);
    assert_null(back);
    assert_int_equal(keyring_layer_restore(two.kr, KEYRING_LAYER_INNER), 0);
    assert_int_equal(media_dek_open(&two, "c-00000002/two", w, wlen, &back), 0);
    media_dek_free(back);
    media_dek_free(dek);
    keyring_close(two.kr);
    kp_destroy(inner);
}

static void test_rotation_and_shredding(void **state)
{
    struct t *t = *state;
    struct media_dek *dek = NULL, *back = NULL, *dek2 = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX], w2[MEDIA_WRAPPED_MAX];
    size_t wlen = 0, wlen2 = 0;
    const char *name = "c-00000001/rot";
    assert_int_equal(media_dek_new(&t->keys, name, &dek, w, &wlen), 0);
    /* A KEK rotation rewraps the container's DEKs: media stays readable. */
    size_t n = 0;
    assert_int_equal(embedded_provider_rotate(t->fx.kp), 0);
    assert_int_equal(keyring_rewrap(t->keys.kr, KEYRING_LAYER_OUTER, &n), 0);
    assert_int_equal(media_dek_open(&t->keys, name, w, wlen, &back), 0);
    assert_memory_equal(back->key, dek->key, sizeof dek->key);
    media_dek_free(back);
    /* A container DEK rotation: new media under the new version, old media
     * under the version it names. */
    assert_int_equal(keyring_rotate_file(t->keys.kr, t->keys.file_id, KEYRING_LAYER_OUTER), 0);
    assert_int_equal(media_dek_new(&t->keys, "c-00000001/rot2", &dek2, w2, &wlen2), 0);
    assert_memory_not_equal(w + 1, w2 + 1, 4);
    assert_int_equal(media_dek_open(&t->keys, name, w, wlen, &back), 0);
    media_dek_free(back);
    /* The wrapped key of one blob is not another's (the name is bound). */
    assert_int_equal(media_dek_open(&t->keys, "c-00000001/rot2", w, wlen, &back), AT_EINTEGRITY);
    /* Dropping the container's keys crypto-shreds its media. */
    assert_int_equal(keyring_remove_file(t->keys.kr, t->keys.file_id), 0);
    assert_int_not_equal(media_dek_open(&t->keys, name, w, wlen, &back), 0);
    assert_null(back);
    media_dek_free(dek);
    media_dek_free(dek2);
}

static void blob_path(struct t *t, const char *name, char *out, size_t n)
{
    char enc[256];
    size_t o = 0;
    for (const char *p = name; *p && o + 4 < sizeof enc; p++) {
        if (*p == '/') {
            memcpy(enc + o, "%2F", 3);
            o += 3;
        } else {
            enc[o++] = *p;
        }
    }
    enc[o] = 0;
    assert_true(snprintf(out, n, "%s/%s.blob", t->blobdir, enc) < (int)n);
}

/* Rewrite the data part of a local blob (keeping its header's checksum
 * right would need the blob layer; these tests go below it on purpose, so
 * they read with ranged gets, which check lengths only, like the server). */
static void test_tamper(void **state)
{
    struct t *t = *state;
    const char *name = "c-00000001/victim";
    uint64_t n = 4 * MEDIA_CHUNK + 10;
    struct media_dek *dek = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX];
    size_t wlen = 0;
    put(t, name, n, 0, &dek, w, &wlen);
    char path[PATH_MAX];
    blob_path(t, name, path, sizeof path);
    size_t flen = 0;
    uint8_t *orig = fx_read_file(path, &flen);
    assert_non_null(orig);
    size_t data0 = flen - (size_t)media_sealed_size(n); /* the blob layer's header */

    /* A flipped byte in chunk 2. */
    fx_flip_bit(path, data0 + MEDIA_HDR_LEN + 2 * MEDIA_REC_LEN + 100, 0);
    assert_int_equal(read_all(t, name, dek, n, 4096), AT_EINTEGRITY);
    fx_write_file(path, orig, flen);
    assert_int_equal(read_all(t, name, dek, n, 4096), 0);

    /* Chunks 1 and 2 swapped. */
    uint8_t *sw = malloc(flen);
    memcpy(sw, orig, flen);
    memcpy(sw + data0 + MEDIA_HDR_LEN + MEDIA_REC_LEN,
           orig + data0 + MEDIA_HDR_LEN + 2 * MEDIA_REC_LEN, MEDIA_REC_LEN);
    memcpy(sw + data0 + MEDIA_HDR_LEN + 2 * MEDIA_REC_LEN,
           orig + data0 + MEDIA_HDR_LEN + MEDIA_REC_LEN, MEDIA_REC_LEN);
    fx_write_file(path, sw, flen);
    assert_int_equal(read_all(t, name, dek, n, 4096), AT_EINTEGRITY);
    free(sw);
    fx_write_file(path, orig, flen);

    /* Cut after chunk 3 and told the media is that long: chunk 3 is not
     * marked last, so the cut is caught. */
    struct media_dek *dek2 = NULL;
    const char *cutname = "c-00000001/cut";
    put(t, cutname, n, 0, &dek2, w, &wlen);
    uint64_t cut = 4 * (uint64_t)MEDIA_CHUNK;
    char cpath[PATH_MAX];
    blob_path(t, cutname, cpath, sizeof cpath);
    size_t clen = 0;
    uint8_t *c = fx_read_file(cpath, &clen);
    size_t keep = data0 + (size_t)media_sealed_size(cut);
    /* Fix the blob layer's length field so only our layer can object. */
    for (int i = 0; i < 8; i++)
        c[16 + i] = (uint8_t)((media_sealed_size(cut)) >> (56 - 8 * i));
    fx_write_file(cpath, c, keep);
    free(c);
    assert_int_equal(read_all(t, cutname, dek2, cut, 4096), AT_EINTEGRITY);
    media_dek_free(dek2);

    /* The same bytes under another name: the name is in every chunk's AAD. */
    char other[PATH_MAX];
    blob_path(t, "c-00000001/copy", other, sizeof other);
    fx_write_file(other, orig, flen);
    assert_int_equal(read_all(t, "c-00000001/copy", dek, n, 4096), AT_EINTEGRITY);

    /* Another media's key. */
    struct media_dek *wrong = NULL;
    assert_int_equal(media_dek_new(&t->keys, name, &wrong, w, &wlen), 0);
    assert_int_equal(read_all(t, name, wrong, n, 4096), AT_EINTEGRITY);
    media_dek_free(wrong);

    /* A wrong length in the record. */
    assert_int_equal(read_all(t, name, dek, n + 1, 4096), AT_EINTEGRITY);
    free(orig);
    media_dek_free(dek);
}

static void test_no_plaintext(void **state)
{
    struct t *t = *state;
    static const char canary[] = "MEDIA-CANARY-7d1f0c";
    struct media_dek *dek = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX];
    size_t wlen = 0;
    const char *name = "c-00000001/canary";
    assert_int_equal(media_dek_new(&t->keys, name, &dek, w, &wlen), 0);
    /* many copies of the canary, across chunk boundaries */
    size_t n = 3 * MEDIA_CHUNK;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)canary[i % (sizeof canary - 1)];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], buf, n > 65536 ? 65536 : n) > 0, 1);
    close(fds[1]);
    uint64_t got = 0;
    assert_int_equal(media_put(t->bs, name, dek, blob_fd_source, &fds[0], UINT64_MAX, &got), 0);
    close(fds[0]);
    assert_int_equal(fx_scan_dir(t->blobdir, canary, sizeof canary - 1), 0);
    free(buf);
    media_dek_free(dek);
}

/* Backups: a record moves from the container's keys to a fixed key and on
 * to another container's keys; the media DEK (and so the blob) stays the
 * same. The fixed key opens nothing of the container's, a wrong fixed key
 * opens nothing of its own, and a record stays bound to its blob name. */
static void test_transfer_through_a_fixed_key(void **state)
{
    struct t *t = *state;
    const char *name = "c-00000001/moved";
    struct media_dek *dek = NULL, *again = NULL;
    uint8_t w[MEDIA_WRAPPED_MAX], fixed_rec[MEDIA_WRAPPED_MAX], moved[MEDIA_WRAPPED_MAX];
    size_t wlen = 0, flen = 0, mlen = 0;
    put(t, name, 200000, 0, &dek, w, &wlen);

    uint8_t fixed[MEDIA_FIXED_LEN], wrong[MEDIA_FIXED_LEN];
    memset(fixed, 0x5a, sizeof fixed);
    memset(wrong, 0xa5, sizeof wrong);
    struct media_keys fk = {.fixed = fixed, .fixed_layers = keyring_layers(t->keys.kr)};
    struct media_keys wk = {.fixed = wrong, .fixed_layers = fk.fixed_layers};
    assert_int_equal(media_dek_transfer(&t->keys, &fk, name, w, wlen, fixed_rec, &flen), 0);
    assert_int_equal(flen, wlen);
    assert_int_equal(media_dek_open(&fk, name, fixed_rec, flen, &again), 0);
    assert_memory_equal(again->key, dek->key, sizeof dek->key);
    media_dek_free(again);
    again = NULL;
    assert_int_equal(media_dek_open(&wk, name, fixed_rec, flen, &again), AT_EINTEGRITY);
    assert_int_equal(media_dek_open(&fk, "c-00000001/other", fixed_rec, flen, &again),
                     AT_EINTEGRITY);
    assert_int_equal(media_dek_open(&fk, name, w, wlen, &again), AT_EINTEGRITY);

    /* On to another container's keys (a restored account's). */
    struct media_keys other = {.kr = t->keys.kr};
    assert_int_equal(keyring_add_file(t->keys.kr, "c-00000002", other.file_id), 0);
    assert_int_equal(media_dek_transfer(&fk, &other, name, fixed_rec, flen, moved, &mlen), 0);
    assert_int_equal(media_dek_open(&other, name, moved, mlen, &again), 0);
    assert_int_equal(read_all(t, name, again, 200000, 7000), 0);
    media_dek_free(again);
    again = NULL;
    assert_int_not_equal(media_dek_open(&t->keys, name, moved, mlen, &again), 0);
    /* Layer counts must match. */
    struct media_keys two = {.fixed = fixed, .fixed_layers = 2};
    assert_int_equal(media_dek_transfer(&fk, &two, name, fixed_rec, flen, moved, &mlen),
                     AT_EFORMAT);
    media_dek_free(dek);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transfer_through_a_fixed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_shredding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
