/*
 * keyring.c — the data folder's keyring (see keyring.h for the invariants
 * this file keeps; the numbers below refer to them).
 *
 * In memory the keyring is an array of files; each file has one chain of
 * DEK versions per layer, ascending, the last one current for writes. Each
 * version has its unwrapped key in secmem (6), the wrapped key exactly as
 * stored, the encryptions handed out (count) and the persisted reservation
 * (reserved). Always count <= reserved (4): keyring_key_for_write raises the
 * reservation on disk before it hands out the key that would pass it.
 *
 * Layer drop and restore (7): keyring_layer_drop wipes every unwrapped DEK
 * of a layer in place (the secmem buffers stay allocated, all zero) and
 * marks the layer unavailable; from then on no key of that layer leaves the
 * keyring and no DEK is added to it. keyring_layer_restore unwraps the same
 * wrapped DEKs again, with the lock released during the provider's calls,
 * and installs them under the lock. The copying accessors copy a key out
 * under the lock, so a drop never races an encryption that is using it.
 *
 *          keyring_layer_drop()
 *   AVAILABLE ─────────────────▶ UNAVAILABLE
 *       ▲                            │
 *       └────────────────────────────┘
 *          keyring_layer_restore()
 *
 * Every change is made in memory, persisted with persist() (1), and undone
 * in memory if persisting failed, so memory never runs ahead of the disk.
 * Lock order: kr->mu, then whatever the key provider takes.
 *
 * File format (integers big-endian). Everything before the HMAC is
 * authenticated by it (2); the MAC key is a random 32-byte key wrapped by
 * the outer provider and stored in layer record 0.
 *
 *   offset    size  field
 *   0         8     magic "ATRKEYR1"
 *   8         4     format version (1)
 *   12        1     L, layer count (1 or 2)
 *   13        ...   L layer records:
 *     +0      2       k, length of the provider's key id (1..255)
 *     +2      k       key id, ASCII without NUL, e.g. "embedded:5f0c..." (3)
 *     +2+k    4       KEK version that wrapped the MAC key (0 in layer 1)
 *     +6+k    2       w, length of the wrapped MAC key (layer 0: > 0; layer 1: 0)
 *     +8+k    w       the MAC key, wrapped by this layer's provider
 *   ...       4     E, entry count
 *   ...       ...   E entries, one per (file, layer, DEK version), grouped by
 *                   file, then layer, versions ascending:
 *     +0      1       n, store name length (1..63)
 *     +1      n       store name, [a-z0-9_-]
 *     +1+n    16      file id (random)
 *     +17+n   1       layer (0 outer, 1 inner)
 *     +18+n   4       DEK version (1, 2, ...)
 *     +22+n   4       KEK version that wrapped the DEK
 *     +26+n   2       w, wrapped DEK length (1..KP_WRAPPED_MAX)
 *     +28+n   w       wrapped DEK
 *     +28+n+w 8       encryption count reservation (4)
 *   end-64    32    HMAC-SHA256(MAC key, bytes 0 .. end-65)
 *   end-32    32    SHA-256(bytes 0 .. end-33), a keyless checksum
 *
 * Opening checks before it trusts anything: the checksum first, so that a
 * damaged or truncated file is reported as such (AT_EKEYRING) and not as a
 * key mismatch; then the header is parsed defensively (every length checked
 * against the bytes left), the MAC key unwrapped with the outer provider
 * (failure: AT_EKEYMISMATCH, naming the recorded and the offered key ids),
 * the HMAC checked (AT_EKEYRING "authentication failed": the file was
 * changed and its checksum recomputed). Only then are key ids, layer count
 * and entries believed. The checksum is no security boundary; the HMAC is.
 */
#include "keys/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "keys/keyfile.h"

#define KR_FILE          "keyring"
#define KR_MAGIC         "ATRKEYR1"
#define KR_FORMAT        1
#define KR_MAC_LEN       32
#define KR_MACKEY_LEN    32
#define KR_DEK_LEN       32
#define KR_SUM_LEN       32
#define KR_MIN_LEN       (8 + 4 + 1 + 4 + KR_MAC_LEN + KR_SUM_LEN)
#define KR_MAX_FILE      (64u << 20)
#define KR_RESERVE_BLOCK 65536u /* encryptions reserved per persisted write */
#define KR_ROTATE_MAX    (1ULL << 32)

struct dek {
    uint32_t version;
    uint64_t count;    /* encryptions handed out */
    uint64_t reserved; /* the persisted count; count <= reserved */
    uint8_t *key;      /* secmem, KP_KEY_MAX bytes, KR_DEK_LEN used */
    struct kp_wrapped wrapped;
};

struct chain {
    struct dek *v; /* ascending versions; v[n - 1] is current */
    uint32_t n, cap;
};

struct kfile {
    char name[KEYRING_NAME_MAX];
    uint8_t id[KEYRING_FILE_ID_LEN];
    struct chain layer[2];
};

struct keyring {
    pthread_mutex_t mu;
    int dirfd;
    char path[PATH_MAX + sizeof KR_FILE + 1]; /* <data_dir>/keyring, for details */
    char dir[PATH_MAX];
    int layers;
    struct key_provider *kp[2];
    char key_id[2][KP_KEY_ID_MAX];
    uint8_t *mac_key; /* secmem, KP_KEY_MAX bytes, KR_MACKEY_LEN used */
    struct kp_wrapped mac_wrapped;
    struct kfile *files;
    size_t nfiles, cap;
    uint64_t rotate_at;
    int unavailable[2]; /* keyring_layer_drop(): the layer's DEKs are wiped (7) */
};

/* ---- helpers ---------------------------------------------------------- */

static int valid_name(const char *name)
{
    size_t n = 0;
    if (!name)
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= KEYRING_NAME_MAX - 1 ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

static int hmac_sha256(const uint8_t *key, const uint8_t *data, size_t len, uint8_t out[KR_MAC_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, KR_MACKEY_LEN, params) &&
             EVP_MAC_update(ctx, data, len) && EVP_MAC_final(ctx, out, &outl, KR_MAC_LEN) &&
             outl == KR_MAC_LEN;
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed state */
    EVP_MAC_free(mac);
    return ok ? 0 : AT_ECRYPTO;
}

static int sha256(const uint8_t *data, size_t len, uint8_t out[KR_SUM_LEN])
{
    unsigned int outl = 0;
    int ok = EVP_Digest(data, len, out, &outl, EVP_sha256(), NULL) && outl == KR_SUM_LEN;
    return ok ? 0 : AT_ECRYPTO;
}

static uint64_t first_reservation(const struct keyring *kr)
{
    return kr->rotate_at < KR_RESERVE_BLOCK ? kr->rotate_at : KR_RESERVE_BLOCK;
}

/* The page layer keeps key schedules (aead_*_kept): they go with the key. */
static void dek_wipe(struct dek *d)
{
    secmem_free(d->key, KP_KEY_MAX);
    secmem_wipe(d, sizeof *d);
    aead_forget_kept();
}

static void file_wipe(struct kfile *f)
{
    for (int l = 0; l < 2; l++) {
        for (uint32_t i = 0; i < f->layer[l].n; i++)
            dek_wipe(&f->layer[l].v[i]);
        free(f->layer[l].v);
    }
    memset(f, 0, sizeof *f);
}

static struct kfile *find_by_id(struct keyring *kr, const uint8_t *id, size_t *idx)
{
    for (size_t i = 0; i < kr->nfiles; i++)
        if (memcmp(kr->files[i].id, id, KEYRING_FILE_ID_LEN) == 0) {
            if (idx)
                *idx = i;
            return &kr->files[i];
        }
    return NULL;
}

static struct kfile *find_by_name(struct keyring *kr, const char *name)
{
    for (size_t i = 0; i < kr->nfiles; i++)
        if (strcmp(kr->files[i].name, name) == 0)
            return &kr->files[i];
    return NULL;
}

static int grow_files(struct keyring *kr)
{
    if (kr->nfiles < kr->cap)
        return 0;
    size_t cap = kr->cap ? kr->cap * 2 : 8;
    struct kfile *f = realloc(kr->files, cap * sizeof *f);
    if (!f)
        return at_error_set(AT_ENOMEM, "no memory for keyring %s", kr->path);
    kr->files = f;
    kr->cap = cap;
    return 0;
}

/* Room for one more version in c (dek structs may move; keys do not). */
static int grow_chain(struct keyring *kr, struct chain *c)
{
    if (c->n < c->cap)
        return 0;
    uint32_t cap = c->cap ? c->cap * 2 : 4;
    struct dek *v = realloc(c->v, cap * sizeof *v);
    if (!v)
        return at_error_set(AT_ENOMEM, "no memory for keyring %s", kr->path);
    c->v = v;
    c->cap = cap;
    return 0;
}

/* ---- serialising ------------------------------------------------------ */

/* The whole file image, HMAC included, leaving out file index skip
 * (SIZE_MAX: none). *out is malloc()ed; it holds no unwrapped key. */
static int serialise(struct keyring *kr, size_t skip, uint8_t **out, size_t *out_len)
{
    size_t len = 8 + 4 + 1, entries = 0;
    for (int l = 0; l < kr->layers; l++)
        len += 2 + strlen(kr->key_id[l]) + 4 + 2 + (l == 0 ? kr->mac_wrapped.len : 0);
    len += 4;
    for (size_t i = 0; i < kr->nfiles; i++) {
        if (i == skip)
            continue;
        const struct kfile *f = &kr->files[i];
        for (int l = 0; l < kr->layers; l++)
            for (uint32_t j = 0; j < f->layer[l].n; j++) {
                len += 1 + strlen(f->name) + 16 + 1 + 4 + 4 + 2 + f->layer[l].v[j].wrapped.len + 8;
                entries++;
            }
    }
    len += KR_MAC_LEN + KR_SUM_LEN;
    if (entries > UINT32_MAX || len > KR_MAX_FILE)
        return at_error_set(AT_ENOMEM, "keyring %s would grow beyond %u bytes", kr->path,
                            KR_MAX_FILE);
    uint8_t *buf = malloc(len), *p = buf;
    if (!buf)
        return at_error_set(AT_ENOMEM, "no memory to write keyring %s", kr->path);
    memcpy(p, KR_MAGIC, 8);
    keyfile_put_u32(p + 8, KR_FORMAT);
    p[12] = (uint8_t)kr->layers;
    p += 13;
    for (int l = 0; l < kr->layers; l++) {
        size_t k = strlen(kr->key_id[l]);
        keyfile_put_u16(p, (uint16_t)k);
        memcpy(p + 2, kr->key_id[l], k);
        p += 2 + k;
        uint16_t w = l == 0 ? kr->mac_wrapped.len : 0;
        keyfile_put_u32(p, l == 0 ? kr->mac_wrapped.kek_version : 0);
        keyfile_put_u16(p + 4, w);
        memcpy(p + 6, kr->mac_wrapped.bytes, w);
        p += 6 + w;
    }
    keyfile_put_u32(p, (uint32_t)entries);
    p += 4;
    for (size_t i = 0; i < kr->nfiles; i++) {
        if (i == skip)
            continue;
        const struct kfile *f = &kr->files[i];
        size_t nlen = strlen(f->name);
        for (int l = 0; l < kr->layers; l++)
            for (uint32_t j = 0; j < f->layer[l].n; j++) {
                const struct dek *d = &f->layer[l].v[j];
                *p++ = (uint8_t)nlen;
                memcpy(p, f->name, nlen);
                p += nlen;
                memcpy(p, f->id, KEYRING_FILE_ID_LEN);
                p += KEYRING_FILE_ID_LEN;
                *p++ = (uint8_t)l;
                keyfile_put_u32(p, d->version);
                keyfile_put_u32(p + 4, d->wrapped.kek_version);
                keyfile_put_u16(p + 8, d->wrapped.len);
                memcpy(p + 10, d->wrapped.bytes, d->wrapped.len);
                p += 10 + d->wrapped.len;
                keyfile_put_u64(p, d->reserved);
                p += 8;
            }
    }
    int rc = hmac_sha256(kr->mac_key, buf, (size_t)(p - buf), p);
    if (rc == 0)
        rc = sha256(buf, (size_t)(p - buf) + KR_MAC_LEN, p + KR_MAC_LEN);
    if (rc) {
        free(buf);
        return at_error_set(rc, "cannot authenticate keyring %s", kr->path);
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Write the keyring as it is in memory (minus file skip), atomically (1). */
static int persist_skip(struct keyring *kr, size_t skip, int replace)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = serialise(kr, skip, &buf, &len);
    if (rc == 0)
        rc = keyfile_write_atomic(kr->dirfd, kr->dir, KR_FILE, buf, len, replace);
    free(buf);
    return rc;
}

static int persist(struct keyring *kr)
{
    return persist_skip(kr, SIZE_MAX, 1);
}

/* ---- parsing ---------------------------------------------------------- */

struct cursor {
    const uint8_t *p;
    size_t left;
    int bad; /* ran past the end */
};

static const uint8_t *take(struct cursor *c, size_t n)
{
    if (c->bad || n > c->left) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint8_t take_u8(struct cursor *c)
{
    const uint8_t *p = take(c, 1);
    return p ? p[0] : 0;
}
static uint16_t take_u16(struct cursor *c)
{
    const uint8_t *p = take(c, 2);
    return p ? keyfile_get_u16(p) : 0;
}
static uint32_t take_u32(struct cursor *c)
{
    const uint8_t *p = take(c, 4);
    return p ? keyfile_get_u32(p) : 0;
}
static uint64_t take_u64(struct cursor *c)
{
    const uint8_t *p = take(c, 8);
    return p ? keyfile_get_u64(p) : 0;
}

static int corrupted(struct keyring *kr, const char *why)
{
    return at_error_set(AT_EKEYRING, "keyring %s is corrupted: %s", kr->path, why);
}

/* A provider's unwrap failure, as the keyring reports it. */
static int unwrap_failed(struct keyring *kr, int rc, int layer, const char *what)
{
    char why[256];
    snprintf(why, sizeof why, "%s", at_error_detail());
    if (rc == AT_EINTEGRITY || rc == AT_ENOTFOUND)
        return at_error_set(AT_EKEYMISMATCH,
                            "keyring %s: %s cannot be unwrapped with %s key %s (%s); the keys "
                            "given do not belong to this data folder",
                            kr->path, what, layer ? "inner" : "outer", kr->key_id[layer], why);
    return at_error_set(rc, "keyring %s: cannot unwrap %s: %s", kr->path, what, why);
}

/* Add an authenticated entry to the in-memory keyring. */
static int add_entry(struct keyring *kr, const char *name, const uint8_t *id, int layer,
                     const struct dek *d)
{
    struct kfile *f = NULL;
    if (kr->nfiles && memcmp(kr->files[kr->nfiles - 1].id, id, KEYRING_FILE_ID_LEN) == 0)
        f = &kr->files[kr->nfiles - 1];
    else if (find_by_id(kr, id, NULL))
        return corrupted(kr, "a file's entries are not together");
    if (!f) {
        if (find_by_name(kr, name))
            return corrupted(kr, "two files share a name");
        int rc = grow_files(kr);
        if (rc)
            return rc;
        f = &kr->files[kr->nfiles++];
        memset(f, 0, sizeof *f);
        memcpy(f->name, name, strlen(name) + 1);
        memcpy(f->id, id, KEYRING_FILE_ID_LEN);
    } else if (strcmp(f->name, name) != 0) {
        return corrupted(kr, "a file id has two names");
    }
    struct chain *c = &f->layer[layer];
    if (c->n && c->v[c->n - 1].version >= d->version)
        return corrupted(kr, "DEK versions out of order");
    if (layer == 1 && f->layer[0].n == 0)
        return corrupted(kr, "inner layer before outer layer");
    int rc = grow_chain(kr, c);
    if (rc)
        return rc;
    c->v[c->n++] = *d;
    return 0;
}

static int parse(struct keyring *kr, const uint8_t *buf, size_t len)
{
    char rec_id[2][KP_KEY_ID_MAX] = {{0}};
    uint8_t mac[KR_MAC_LEN];
    size_t klen = 0;
    int rc, nlayers;

    if (len >= 8 && memcmp(buf, KR_MAGIC, 8) != 0)
        return at_error_set(AT_EKEYRING, "%s is not an atrest keyring (bad magic)", kr->path);
    if (len < KR_MIN_LEN)
        return corrupted(kr, "truncated");
    if ((rc = sha256(buf, len - KR_SUM_LEN, mac)) != 0)
        return at_error_set(rc, "cannot check keyring %s", kr->path);
    if (!secmem_equal(mac, buf + len - KR_SUM_LEN, KR_SUM_LEN))
        return corrupted(kr, "damaged or truncated (checksum mismatch)");
    if (keyfile_get_u32(buf + 8) != KR_FORMAT)
        return at_error_set(AT_EKEYRING, "keyring %s has format version %u; this atrest reads %u",
                            kr->path, keyfile_get_u32(buf + 8), KR_FORMAT);

    len -= KR_SUM_LEN; /* from here on: the authenticated part and its HMAC */
    struct cursor c = {buf + 12, len - 12 - KR_MAC_LEN, 0};
    nlayers = take_u8(&c);
    if (nlayers < 1 || nlayers > 2)
        return corrupted(kr, "bad layer count");
    for (int l = 0; l < nlayers; l++) {
        uint16_t k = take_u16(&c);
        const uint8_t *id = take(&c, k);
        uint32_t kek = take_u32(&c);
        uint16_t w = take_u16(&c);
        const uint8_t *wrapped = take(&c, w);
        if (c.bad)
            return corrupted(kr, "truncated");
        if (k == 0 || k >= KP_KEY_ID_MAX || memchr(id, 0, k) || w > KP_WRAPPED_MAX ||
            (l == 0) != (w > 0))
            return corrupted(kr, "bad layer record");
        memcpy(rec_id[l], id, k);
        if (l == 0) {
            kr->mac_wrapped.kek_version = kek;
            kr->mac_wrapped.len = w;
            memcpy(kr->mac_wrapped.bytes, wrapped, w);
        }
    }

    /* The MAC key: failure means the outer provider is not the keyring's. */
    kr->mac_key = secmem_alloc(KP_KEY_MAX);
    if (!kr->mac_key)
        return at_error_set(AT_ENOMEM, "no locked memory for the keyring's MAC key");
    rc = kp_unwrap(kr->kp[0], &kr->mac_wrapped, kr->mac_key, &klen);
    if (rc == 0 && klen != KR_MACKEY_LEN)
        rc = at_error_set(AT_EINTEGRITY, "MAC key has %zu bytes", klen);
    if (rc) {
        if (strcmp(rec_id[0], kr->key_id[0]) != 0)
            return at_error_set(AT_EKEYMISMATCH,
                                "keyring %s was created with key %s, key folder has %s", kr->path,
                                rec_id[0], kr->key_id[0]);
        return unwrap_failed(kr, rc, 0, "its MAC key");
    }
    if ((rc = hmac_sha256(kr->mac_key, buf, len - KR_MAC_LEN, mac)) != 0)
        return at_error_set(rc, "cannot authenticate keyring %s", kr->path);
    if (!secmem_equal(mac, buf + len - KR_MAC_LEN, KR_MAC_LEN))
        return corrupted(kr, "authentication failed");

    /* Authenticated: the recorded identities and layout can be believed. */
    if (strcmp(rec_id[0], kr->key_id[0]) != 0)
        return at_error_set(AT_EKEYMISMATCH,
                            "keyring %s was created with key %s, key folder has %s", kr->path,
                            rec_id[0], kr->key_id[0]);
    if (nlayers != kr->layers)
        return at_error_set(AT_EKEYMISMATCH,
                            "keyring %s has %d key layer%s (%s customer key), but %d key "
                            "provider%s given",
                            kr->path, nlayers, nlayers == 1 ? "" : "s",
                            nlayers == 1 ? "no" : "with a", kr->layers,
                            kr->layers == 1 ? " was" : "s were");
    if (nlayers == 2 && strcmp(rec_id[1], kr->key_id[1]) != 0)
        return at_error_set(AT_EKEYMISMATCH,
                            "keyring %s was created with inner key %s, but %s was given", kr->path,
                            rec_id[1], kr->key_id[1]);

    uint32_t entries = take_u32(&c);
    for (uint32_t i = 0; i < entries; i++) {
        struct dek d;
        char name[KEYRING_NAME_MAX];
        memset(&d, 0, sizeof d);
        uint8_t nlen = take_u8(&c);
        const uint8_t *np = take(&c, nlen);
        const uint8_t *id = take(&c, KEYRING_FILE_ID_LEN);
        uint8_t layer = take_u8(&c);
        d.version = take_u32(&c);
        d.wrapped.kek_version = take_u32(&c);
        d.wrapped.len = take_u16(&c);
        const uint8_t *w = take(&c, d.wrapped.len);
        d.reserved = take_u64(&c);
        if (c.bad)
            return corrupted(kr, "truncated entry");
        if (nlen == 0 || nlen >= KEYRING_NAME_MAX)
            return corrupted(kr, "bad store name");
        memcpy(name, np, nlen);
        name[nlen] = '\0';
        if (!valid_name(name) || layer >= nlayers || d.version == 0 || d.wrapped.len == 0 ||
            d.wrapped.len > KP_WRAPPED_MAX)
            return corrupted(kr, "bad entry");
        memcpy(d.wrapped.bytes, w, d.wrapped.len);
        d.count = d.reserved; /* all of a reservation may have been used (4) */
        if ((rc = add_entry(kr, name, id, layer, &d)) != 0)
            return rc;
    }
    if (c.bad || c.left != 0)
        return corrupted(kr, c.bad ? "truncated" : "trailing bytes");

    /* Every file has every layer; unwrap all DEKs into secmem (6). */
    for (size_t i = 0; i < kr->nfiles; i++) {
        struct kfile *f = &kr->files[i];
        for (int l = 0; l < nlayers; l++) {
            if (f->layer[l].n == 0)
                return corrupted(kr, "a file lacks a key layer");
            for (uint32_t j = 0; j < f->layer[l].n; j++) {
                struct dek *d = &f->layer[l].v[j];
                char what[128];
                d->key = secmem_alloc(KP_KEY_MAX);
                if (!d->key)
                    return at_error_set(AT_ENOMEM,
                                        "no locked memory for DEKs (raise RLIMIT_MEMLOCK)");
                rc = kp_unwrap(kr->kp[l], &d->wrapped, d->key, &klen);
                if (rc == 0 && klen != KR_DEK_LEN)
                    rc = at_error_set(AT_EINTEGRITY, "DEK has %zu bytes", klen);
                if (rc) {
                    snprintf(what, sizeof what, "the DEK version %u of store %s", d->version,
                             f->name);
                    return unwrap_failed(kr, rc, l, what);
                }
            }
        }
    }
    return 0;
}

/* ---- open / close ----------------------------------------------------- */

static void keyring_free(struct keyring *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->nfiles; i++)
        file_wipe(&kr->files[i]);
    free(kr->files);
    secmem_free(kr->mac_key, KP_KEY_MAX);
    if (kr->dirfd >= 0)
        close(kr->dirfd);
    pthread_mutex_destroy(&kr->mu);
    secmem_wipe(kr, sizeof *kr);
    free(kr);
}

static int create_new(struct keyring *kr)
{
    int rc;
    kr->mac_key = secmem_alloc(KP_KEY_MAX);
    if (!kr->mac_key)
        return at_error_set(AT_ENOMEM, "no locked memory for the keyring's MAC key");
    if ((rc = rand_key(kr->mac_key, KR_MACKEY_LEN)) != 0)
        return at_error_set(rc, "cannot draw a key from the random generator");
    if ((rc = kp_wrap(kr->kp[0], kr->mac_key, KR_MACKEY_LEN, &kr->mac_wrapped)) != 0)
        return rc;
    /* Link into place: never replaces a keyring that appeared meanwhile. */
    return persist_skip(kr, SIZE_MAX, 0);
}

int keyring_open(const char *data_dir, struct key_provider *outer, struct key_provider *inner,
                 int create, struct keyring **out)
{
    struct keyring *kr;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc, fd = -1;
    if (!data_dir || !outer || !out)
        return at_error_set(AT_EINVAL, "keyring_open: data folder and outer provider required");
    kr = calloc(1, sizeof *kr);
    if (!kr)
        return at_error_set(AT_ENOMEM, "no memory for the keyring");
    pthread_mutex_init(&kr->mu, NULL);
    kr->dirfd = -1;
    kr->kp[0] = outer;
    kr->kp[1] = inner;
    kr->layers = inner ? 2 : 1;
    kr->rotate_at = KEYRING_DEFAULT_ROTATE_AT;
    if (snprintf(kr->dir, sizeof kr->dir, "%s", data_dir) >= (int)sizeof kr->dir) {
        rc = at_error_set(ENAMETOOLONG, "data folder path too long");
        goto out;
    }
    snprintf(kr->path, sizeof kr->path, "%s/" KR_FILE, data_dir);
    for (int l = 0; l < kr->layers; l++)
        if ((rc = kp_key_id(kr->kp[l], kr->key_id[l], KP_KEY_ID_MAX)) != 0)
            goto out;

    kr->dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (kr->dirfd < 0) {
        rc = at_error_set(errno, "cannot open data folder %s: %s", data_dir, strerror(errno));
        goto out;
    }
    fd = openat(kr->dirfd, KR_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (create)
            rc = create_new(kr);
        else
            rc = at_error_set(AT_EKEYRING, "data folder %s has no keyring", data_dir);
        goto out;
    }
    if (fd < 0) {
        rc = at_error_set(errno, "cannot open keyring %s: %s", kr->path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = at_error_set(errno, "cannot stat keyring %s: %s", kr->path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)KR_MAX_FILE) {
        rc = corrupted(kr, S_ISREG(st.st_mode) ? "too large" : "not a regular file");
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = at_error_set(AT_ENOMEM, "no memory to read keyring %s", kr->path);
        goto out;
    }
    rc = keyfile_read_all(fd, buf, (size_t)st.st_size, &len);
    if (rc == EFBIG)
        rc = corrupted(kr, "too large");
    else if (rc)
        rc = at_error_set(rc, "cannot read keyring %s: %s", kr->path, strerror(rc));
    else
        rc = parse(kr, buf, len);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (rc) {
        keyring_free(kr);
        return rc;
    }
    *out = kr;
    return 0;
}

/* Persist exact counts: reservation = count everywhere (nothing to write
 * when they are equal already). On failure the old reservations are kept
 * (still >= count). */
static int flush_locked(struct keyring *kr)
{
    size_t nd = 0, k = 0, dirty = 0;
    for (size_t i = 0; i < kr->nfiles; i++)
        for (int l = 0; l < kr->layers; l++)
            for (uint32_t j = 0; j < kr->files[i].layer[l].n; j++, nd++)
                dirty += kr->files[i].layer[l].v[j].reserved != kr->files[i].layer[l].v[j].count;
    if (!dirty)
        return 0; /* the file already holds the exact counts */
    uint64_t *old = malloc((nd ? nd : 1) * sizeof *old);
    if (!old)
        return at_error_set(AT_ENOMEM, "no memory to flush keyring %s", kr->path);
    for (size_t i = 0; i < kr->nfiles; i++)
        for (int l = 0; l < kr->layers; l++)
            for (uint32_t j = 0; j < kr->files[i].layer[l].n; j++) {
                struct dek *d = &kr->files[i].layer[l].v[j];
                old[k++] = d->reserved;
                d->reserved = d->count;
            }
    int rc = persist(kr);
    if (rc) {
        k = 0;
        for (size_t i = 0; i < kr->nfiles; i++)
            for (int l = 0; l < kr->layers; l++)
                for (uint32_t j = 0; j < kr->files[i].layer[l].n; j++)
                    kr->files[i].layer[l].v[j].reserved = old[k++];
    }
    free(old);
    return rc;
}

int keyring_flush(struct keyring *kr)
{
    pthread_mutex_lock(&kr->mu);
    int rc = flush_locked(kr);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

void keyring_close(struct keyring *kr)
{
    if (!kr)
        return;
    pthread_mutex_lock(&kr->mu);
    (void)flush_locked(kr); /* best effort: the reservations on disk already cover every use */
    pthread_mutex_unlock(&kr->mu);
    keyring_free(kr);
}

int keyring_layers(const struct keyring *kr)
{
    return kr->layers;
}

void keyring_set_rotate_at(struct keyring *kr, uint64_t encryptions)
{
    pthread_mutex_lock(&kr->mu);
    if (encryptions == 0)
        encryptions = KEYRING_DEFAULT_ROTATE_AT;
    kr->rotate_at = encryptions > KR_ROTATE_MAX ? KR_ROTATE_MAX : encryptions;
    pthread_mutex_unlock(&kr->mu);
}

/* ---- files ------------------------------------------------------------ */

static int layer_gone(struct keyring *kr, int layer)
{
    return at_error_set(AT_EKEYUNAVAIL,
                        "the %s layer's data keys are not in memory: key %s is unusable",
                        layer ? "inner (customer-managed)" : "outer", kr->key_id[layer]);
}

/* Append a new, unpersisted DEK version to f's chain for layer. */
static int new_version(struct keyring *kr, struct kfile *f, int layer)
{
    struct chain *c = &f->layer[layer];
    uint32_t v = c->n ? c->v[c->n - 1].version + 1 : 1;
    int rc;
    if (kr->unavailable[layer])
        return layer_gone(kr, layer);
    if (v == 0)
        return at_error_set(AT_EINVAL, "store %s has run out of DEK versions", f->name);
    if ((rc = grow_chain(kr, c)) != 0)
        return rc;
    struct dek *d = &c->v[c->n];
    memset(d, 0, sizeof *d);
    d->version = v;
    d->reserved = first_reservation(kr);
    d->key = secmem_alloc(KP_KEY_MAX);
    if (!d->key)
        return at_error_set(AT_ENOMEM, "no locked memory for a DEK (raise RLIMIT_MEMLOCK)");
    if ((rc = rand_key(d->key, KR_DEK_LEN)) != 0) {
        at_error_set(rc, "cannot draw a DEK from the random generator");
        goto fail;
    }
    if ((rc = kp_wrap(kr->kp[layer], d->key, KR_DEK_LEN, &d->wrapped)) != 0)
        goto fail;
    c->n++;
    return 0;
fail:
    dek_wipe(d);
    return rc;
}

/* Drop the last version of a chain (after a failed persist). */
static void drop_last(struct chain *c)
{
    dek_wipe(&c->v[--c->n]);
}

static int rotate_locked(struct keyring *kr, struct kfile *f, int layer)
{
    int rc = new_version(kr, f, layer);
    if (rc)
        return rc;
    if ((rc = persist(kr)) != 0)
        drop_last(&f->layer[layer]);
    return rc;
}

int keyring_add_file(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN])
{
    int rc;
    if (!valid_name(name))
        return at_error_set(AT_EINVAL, "invalid store name (want [a-z0-9_-]{1,63})");
    pthread_mutex_lock(&kr->mu);
    if (find_by_name(kr, name)) {
        rc = at_error_set(AT_EEXIST, "store %s already has keys in keyring %s", name, kr->path);
        goto out;
    }
    if ((rc = grow_files(kr)) != 0)
        goto out;
    struct kfile *f = &kr->files[kr->nfiles];
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, strlen(name) + 1);
    do {
        if ((rc = rand_bytes(f->id, KEYRING_FILE_ID_LEN)) != 0) {
            at_error_set(rc, "cannot draw a file id from the random generator");
            goto out;
        }
    } while (find_by_id(kr, f->id, NULL));
    for (int l = 0; l < kr->layers; l++)
        if ((rc = new_version(kr, f, l)) != 0) {
            file_wipe(f);
            goto out;
        }
    kr->nfiles++;
    if ((rc = persist(kr)) != 0) {
        file_wipe(&kr->files[--kr->nfiles]);
        goto out;
    }
    memcpy(id, f->id, KEYRING_FILE_ID_LEN);
out:
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_find_file(struct keyring *kr, const char *name, uint8_t id[KEYRING_FILE_ID_LEN])
{
    if (!valid_name(name))
        return at_error_set(AT_EINVAL, "invalid store name (want [a-z0-9_-]{1,63})");
    pthread_mutex_lock(&kr->mu);
    struct kfile *f = find_by_name(kr, name);
    if (f)
        memcpy(id, f->id, KEYRING_FILE_ID_LEN);
    pthread_mutex_unlock(&kr->mu);
    return f ? 0 : at_error_set(AT_ENOTFOUND, "no store %s in keyring %s", name, kr->path);
}

int keyring_remove_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN])
{
    size_t idx = 0;
    int rc;
    pthread_mutex_lock(&kr->mu);
    struct kfile *f = find_by_id(kr, id, &idx);
    if (!f) {
        rc = at_error_set(AT_ENOTFOUND, "no such store file in keyring %s", kr->path);
        goto out;
    }
    /* The wrapped DEKs leave the disk first; then memory is wiped. */
    if ((rc = persist_skip(kr, idx, 1)) != 0)
        goto out;
    file_wipe(f);
    memmove(f, f + 1, (kr->nfiles - idx - 1) * sizeof *f);
    kr->nfiles--;
out:
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_list_files(struct keyring *kr, char (*names)[KEYRING_NAME_MAX],
                       uint8_t (*ids)[KEYRING_FILE_ID_LEN], size_t max, size_t *n)
{
    pthread_mutex_lock(&kr->mu);
    size_t k = kr->nfiles < max ? kr->nfiles : max;
    for (size_t i = 0; i < k; i++) {
        if (names)
            memcpy(names[i], kr->files[i].name, KEYRING_NAME_MAX);
        if (ids)
            memcpy(ids[i], kr->files[i].id, KEYRING_FILE_ID_LEN);
    }
    *n = k;
    pthread_mutex_unlock(&kr->mu);
    return 0;
}

/* ---- keys ------------------------------------------------------------- */

/* The file and layer chain for id, or an error (lock held by caller). */
static int lookup(struct keyring *kr, const uint8_t *id, int layer, struct kfile **f)
{
    if (layer < 0 || layer >= kr->layers)
        return at_error_set(AT_EINVAL, "keyring %s has no key layer %d", kr->path, layer);
    *f = find_by_id(kr, id, NULL);
    if (!*f)
        return at_error_set(AT_ENOTFOUND, "no such store file in keyring %s", kr->path);
    return 0;
}

/* lookup() for handing out a key: also refuses a dropped layer (7). */
static int lookup_key(struct keyring *kr, const uint8_t *id, int layer, struct kfile **f)
{
    int rc = lookup(kr, id, layer, f);
    if (rc == 0 && kr->unavailable[layer])
        rc = layer_gone(kr, layer);
    return rc;
}

/* The current write key of a file and layer, counted (lock held). */
static int write_key_locked(struct keyring *kr, const uint8_t *id, int layer, uint32_t *version,
                            const uint8_t **key)
{
    struct kfile *f;
    int rc = lookup_key(kr, id, layer, &f);
    if (rc)
        return rc;
    struct chain *c = &f->layer[layer];
    /* Retire a version that reached the threshold (5). */
    if (c->v[c->n - 1].count >= kr->rotate_at && (rc = rotate_locked(kr, f, layer)) != 0)
        return rc;
    struct dek *d = &c->v[c->n - 1];
    if (d->count >= d->reserved) {
        /* Reserve more on disk before using it (4); never past the threshold. */
        uint64_t old = d->reserved, room = kr->rotate_at - d->count;
        d->reserved = d->count + (room < KR_RESERVE_BLOCK ? room : KR_RESERVE_BLOCK);
        if ((rc = persist(kr)) != 0) {
            d->reserved = old;
            return rc;
        }
    }
    d->count++;
    *version = d->version;
    *key = d->key;
    return 0;
}

/* The key of a file, layer and version (lock held). */
static int read_key_locked(struct keyring *kr, const uint8_t *id, int layer, uint32_t version,
                           const uint8_t **key)
{
    struct kfile *f;
    int rc = lookup_key(kr, id, layer, &f);
    if (rc)
        return rc;
    const struct chain *c = &f->layer[layer];
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->v[mid].version < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->n && c->v[lo].version == version) {
        *key = c->v[lo].key;
        return 0;
    }
    return at_error_set(AT_ENOTFOUND, "store %s has no DEK version %u in layer %d", f->name,
                        version, layer);
}

int keyring_key_for_write(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                          uint32_t *version, const uint8_t **key)
{
    pthread_mutex_lock(&kr->mu);
    int rc = write_key_locked(kr, id, layer, version, key);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_key_for_read(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                         uint32_t version, const uint8_t **key)
{
    pthread_mutex_lock(&kr->mu);
    int rc = read_key_locked(kr, id, layer, version, key);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_copy_key_for_write(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN],
                               int layer, uint32_t *version, uint8_t out[KEYRING_DEK_LEN])
{
    const uint8_t *key;
    pthread_mutex_lock(&kr->mu);
    int rc = write_key_locked(kr, id, layer, version, &key);
    if (rc == 0)
        memcpy(out, key, KEYRING_DEK_LEN);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_copy_key_for_read(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                              uint32_t version, uint8_t out[KEYRING_DEK_LEN])
{
    const uint8_t *key;
    pthread_mutex_lock(&kr->mu);
    int rc = read_key_locked(kr, id, layer, version, &key);
    if (rc == 0)
        memcpy(out, key, KEYRING_DEK_LEN);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_rotate_file(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer)
{
    struct kfile *f;
    pthread_mutex_lock(&kr->mu);
    int rc = lookup(kr, id, layer, &f);
    if (rc == 0)
        rc = rotate_locked(kr, f, layer);
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_file_status(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                        uint32_t *current_version, uint64_t *encryptions)
{
    struct kfile *f;
    pthread_mutex_lock(&kr->mu);
    int rc = lookup(kr, id, layer, &f);
    if (rc == 0) {
        const struct dek *d = &f->layer[layer].v[f->layer[layer].n - 1];
        *current_version = d->version;
        *encryptions = d->count;
    }
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_file_versions(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                          uint32_t *oldest, uint32_t *current)
{
    struct kfile *f;
    pthread_mutex_lock(&kr->mu);
    int rc = lookup(kr, id, layer, &f);
    if (rc == 0) {
        *oldest = f->layer[layer].v[0].version;
        *current = f->layer[layer].v[f->layer[layer].n - 1].version;
    }
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

int keyring_retire(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layer,
                   uint32_t below, size_t *destroyed)
{
    struct kfile *f;
    *destroyed = 0;
    pthread_mutex_lock(&kr->mu);
    int rc = lookup(kr, id, layer, &f);
    struct chain *c = rc ? NULL : &f->layer[layer];
    uint32_t k = 0;
    while (c && k + 1 < c->n && c->v[k].version < below)
        k++; /* never the current version */
    if (k > 0) {
        /* Persist the shortened chain first; only then wipe the old keys. */
        struct dek *old = malloc(k * sizeof *old);
        if (!old) {
            rc = AT_ENOMEM;
        } else {
            memcpy(old, c->v, k * sizeof *old);
            memmove(c->v, c->v + k, (c->n - k) * sizeof *c->v);
            c->n -= k;
            if ((rc = persist(kr)) != 0) {
                memmove(c->v + k, c->v, c->n * sizeof *c->v);
                memcpy(c->v, old, k * sizeof *old);
                c->n += k;
            } else {
                for (uint32_t i = 0; i < k; i++)
                    dek_wipe(&old[i]);
                *destroyed = k;
            }
            free(old);
        }
    }
    pthread_mutex_unlock(&kr->mu);
    return rc;
}

/* ---- layers: drop, restore, check, rewrap (7) --------------------------- */

const char *keyring_key_id(const struct keyring *kr, int layer)
{
    return layer >= 0 && layer < kr->layers ? kr->key_id[layer] : "";
}

int keyring_layer_available(struct keyring *kr, int layer)
{
    pthread_mutex_lock(&kr->mu);
    int ok = layer >= 0 && layer < kr->layers && !kr->unavailable[layer];
    pthread_mutex_unlock(&kr->mu);
    return ok;
}

int keyring_layer_drop(struct keyring *kr, int layer)
{
    if (layer < 0 || layer >= kr->layers)
        return at_error_set(AT_EINVAL, "keyring %s has no key layer %d", kr->path, layer);
    pthread_mutex_lock(&kr->mu);
    kr->unavailable[layer] = 1;
    for (size_t i = 0; i < kr->nfiles; i++) {
        struct chain *c = &kr->files[i].layer[layer];
        for (uint32_t j = 0; j < c->n; j++)
            secmem_wipe(c->v[j].key, KP_KEY_MAX);
    }
    aead_forget_kept();
    pthread_mutex_unlock(&kr->mu);
    return 0;
}

/* A copy of one DEK entry of a layer, taken under the lock. */
struct dek_ref {
    uint8_t id[KEYRING_FILE_ID_LEN];
    uint32_t version;
    struct kp_wrapped wrapped;
    uint8_t *key; /* secmem, KP_KEY_MAX */
};

static void refs_free(struct dek_ref *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        secmem_free(r[i].key, KP_KEY_MAX);
    free(r);
}

/* Copy the layer's entries (wrapped values; with keys when want_keys). */
static int refs_take(struct keyring *kr, int layer, int want_keys, struct dek_ref **out, size_t *n)
{
    size_t k = 0, total = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < kr->nfiles; i++)
        total += kr->files[i].layer[layer].n;
    struct dek_ref *r = calloc(total ? total : 1, sizeof *r);
    if (!r)
        return at_error_set(AT_ENOMEM, "no memory for keyring %s", kr->path);
    for (size_t i = 0; i < kr->nfiles; i++) {
        const struct chain *c = &kr->files[i].layer[layer];
        for (uint32_t j = 0; j < c->n; j++, k++) {
            memcpy(r[k].id, kr->files[i].id, KEYRING_FILE_ID_LEN);
            r[k].version = c->v[j].version;
            r[k].wrapped = c->v[j].wrapped;
            r[k].key = secmem_alloc(KP_KEY_MAX);
            if (!r[k].key) {
                refs_free(r, k);
                return at_error_set(AT_ENOMEM, "no locked memory for a DEK");
            }
            if (want_keys)
                memcpy(r[k].key, c->v[j].key, KR_DEK_LEN);
        }
    }
    *out = r;
    *n = total;
    return 0;
}

static struct dek *find_dek(struct keyring *kr, const uint8_t *id, int layer, uint32_t version)
{
    struct kfile *f = find_by_id(kr, id, NULL);
    if (!f)
        return NULL;
    struct chain *c = &f->layer[layer];
    for (uint32_t j = 0; j < c->n; j++)
        if (c->v[j].version == version)
            return &c->v[j];
    return NULL;
}

int keyring_layer_restore(struct keyring *kr, int layer)
{
    struct dek_ref *r = NULL;
    size_t n = 0, klen = 0;
    if (layer < 0 || layer >= kr->layers)
        return at_error_set(AT_EINVAL, "keyring %s has no key layer %d", kr->path, layer);
    pthread_mutex_lock(&kr->mu);
    int rc = kr->unavailable[layer] ? refs_take(kr, layer, 0, &r, &n) : 0;
    int was = kr->unavailable[layer];
    pthread_mutex_unlock(&kr->mu);
    if (rc || !was)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = kp_unwrap(kr->kp[layer], &r[i].wrapped, r[i].key, &klen);
        if (rc == 0 && klen != KR_DEK_LEN)
            rc = at_error_set(AT_EINTEGRITY, "DEK has %zu bytes", klen);
        if (rc)
            goto out;
    }
    pthread_mutex_lock(&kr->mu);
    /* Files may have been removed meanwhile (never added: the layer was
     * unavailable); every entry left must have been unwrapped. */
    size_t want = 0, got = 0;
    for (size_t i = 0; i < kr->nfiles; i++)
        want += kr->files[i].layer[layer].n;
    for (size_t i = 0; i < n; i++) {
        struct dek *d = find_dek(kr, r[i].id, layer, r[i].version);
        if (d && d->wrapped.len == r[i].wrapped.len &&
            memcmp(d->wrapped.bytes, r[i].wrapped.bytes, d->wrapped.len) == 0)
            got++;
    }
    if (got != want) {
        rc = at_error_set(AT_EKEYUNAVAIL, "keyring %s changed during restore; retry", kr->path);
    } else {
        for (size_t i = 0; i < n; i++) {
            struct dek *d = find_dek(kr, r[i].id, layer, r[i].version);
            if (d)
                memcpy(d->key, r[i].key, KR_DEK_LEN);
        }
        kr->unavailable[layer] = 0;
    }
    pthread_mutex_unlock(&kr->mu);
out:
    refs_free(r, n);
    return rc;
}

int keyring_layer_check(struct keyring *kr, int layer)
{
    struct kp_wrapped sample[KEYRING_INFO_KEKS];
    size_t ns = 0, klen = 0;
    if (layer < 0 || layer >= kr->layers)
        return at_error_set(AT_EINVAL, "keyring %s has no key layer %d", kr->path, layer);
    pthread_mutex_lock(&kr->mu);
    if (layer == 0)
        sample[ns++] = kr->mac_wrapped;
    for (size_t i = 0; i < kr->nfiles; i++) {
        const struct chain *c = &kr->files[i].layer[layer];
        for (uint32_t j = 0; j < c->n && ns < KEYRING_INFO_KEKS; j++) {
            size_t k = 0;
            while (k < ns && sample[k].kek_version != c->v[j].wrapped.kek_version)
                k++;
            if (k == ns)
                sample[ns++] = c->v[j].wrapped;
        }
    }
    pthread_mutex_unlock(&kr->mu);
    if (ns == 0)
        return kp_health(kr->kp[layer]);
    uint8_t *tmp = secmem_alloc(KP_KEY_MAX);
    if (!tmp)
        return at_error_set(AT_ENOMEM, "no locked memory for a key check");
    int rc = 0;
    for (size_t k = 0; k < ns && rc == 0; k++)
        rc = kp_unwrap(kr->kp[layer], &sample[k], tmp, &klen);
    secmem_free(tmp, KP_KEY_MAX);
    return rc;
}

int keyring_layer_stale(struct keyring *kr, int layer, uint32_t current)
{
    int stale = 0;
    pthread_mutex_lock(&kr->mu);
    if (layer == 0 && kr->mac_wrapped.kek_version != current)
        stale = 1;
    for (size_t i = 0; i < kr->nfiles && !stale && layer < kr->layers; i++) {
        const struct chain *c = &kr->files[i].layer[layer];
        for (uint32_t j = 0; j < c->n; j++)
            if (c->v[j].wrapped.kek_version != current)
                stale = 1;
    }
    pthread_mutex_unlock(&kr->mu);
    return stale;
}

int keyring_rewrap(struct keyring *kr, int layer, size_t *rewrapped)
{
    struct dek_ref *r = NULL;
    struct kp_wrapped mac_new;
    uint8_t *mac = NULL;
    size_t n = 0;
    int rc;
    *rewrapped = 0;
    if (layer < 0 || layer >= kr->layers)
        return at_error_set(AT_EINVAL, "keyring %s has no key layer %d", kr->path, layer);
    /* The keys are copied out (into locked memory) and wrapped under the
     * provider's current version with the lock released. */
    pthread_mutex_lock(&kr->mu);
    rc = kr->unavailable[layer] ? layer_gone(kr, layer) : refs_take(kr, layer, 1, &r, &n);
    if (rc == 0 && layer == 0) {
        if (!(mac = secmem_alloc(KP_KEY_MAX)))
            rc = at_error_set(AT_ENOMEM, "no locked memory for the MAC key");
        else
            memcpy(mac, kr->mac_key, KR_MACKEY_LEN);
    }
    pthread_mutex_unlock(&kr->mu);
    if (rc)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = kp_wrap(kr->kp[layer], r[i].key, KR_DEK_LEN, &r[i].wrapped);
    if (rc == 0 && mac)
        rc = kp_wrap(kr->kp[layer], mac, KR_MACKEY_LEN, &mac_new);
    if (rc)
        goto out;
    /* Install: swap the new wrapped values in, persist, swap back on failure. */
    pthread_mutex_lock(&kr->mu);
    for (size_t i = 0; i < n; i++) {
        struct dek *d = find_dek(kr, r[i].id, layer, r[i].version);
        if (d) {
            struct kp_wrapped old = d->wrapped;
            d->wrapped = r[i].wrapped;
            r[i].wrapped = old;
        }
    }
    if (mac) {
        struct kp_wrapped old = kr->mac_wrapped;
        kr->mac_wrapped = mac_new;
        mac_new = old;
    }
    rc = persist(kr);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            struct dek *d = find_dek(kr, r[i].id, layer, r[i].version);
            if (d)
                d->wrapped = r[i].wrapped;
        }
        if (mac)
            kr->mac_wrapped = mac_new;
    } else {
        *rewrapped = n + (mac != NULL);
    }
    pthread_mutex_unlock(&kr->mu);
out:
    refs_free(r, n);
    secmem_free(mac, KP_KEY_MAX);
    return rc;
}

/* ---- peek ----------------------------------------------------------------- */

static int peek(const char *data_dir, struct keyring_info *info, struct keyring_peek_file *files,
                size_t max, size_t *nfiles);

int keyring_peek(const char *data_dir, struct keyring_info *info)
{
    return peek(data_dir, info, NULL, 0, NULL);
}

int keyring_peek_files(const char *data_dir, struct keyring_peek_file *files, size_t max,
                       size_t *n)
{
    struct keyring_info info;
    return peek(data_dir, &info, files, max, n);
}

static int peek(const char *data_dir, struct keyring_info *info, struct keyring_peek_file *files,
                size_t max, size_t *nfiles)
{
    if (nfiles)
        *nfiles = 0;
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc, fd;
    memset(info, 0, sizeof *info);
    snprintf(path, sizeof path, "%s/" KR_FILE, data_dir);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AT_ENOTFOUND
                               : at_error_set(errno, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)KR_MAX_FILE) {
        close(fd);
        return at_error_set(AT_EKEYRING, "keyring %s is not a regular file or too large", path);
    }
    buf = malloc((size_t)st.st_size + 1);
    rc = buf ? keyfile_read_all(fd, buf, (size_t)st.st_size, &len) : AT_ENOMEM;
    close(fd);
    uint8_t sum[KR_SUM_LEN];
    if (rc == 0 && (len < KR_MIN_LEN || memcmp(buf, KR_MAGIC, 8) != 0 ||
                    sha256(buf, len - KR_SUM_LEN, sum) != 0 ||
                    memcmp(sum, buf + len - KR_SUM_LEN, KR_SUM_LEN) != 0 ||
                    keyfile_get_u32(buf + 8) != KR_FORMAT))
        rc = at_error_set(AT_EKEYRING, "keyring %s is damaged or not an atrest keyring", path);
    if (rc)
        goto out;
    struct cursor c = {buf + 12, len - 12 - KR_MAC_LEN - KR_SUM_LEN, 0};
    info->layers = take_u8(&c);
    if (info->layers < 1 || info->layers > 2) {
        rc = at_error_set(AT_EKEYRING, "keyring %s: bad layer count", path);
        goto out;
    }
    for (int l = 0; l < info->layers; l++) {
        uint16_t k = take_u16(&c);
        const uint8_t *id = take(&c, k);
        uint32_t kek = take_u32(&c);
        uint16_t w = take_u16(&c);
        const uint8_t *wrapped = take(&c, w);
        if (c.bad || k >= KP_KEY_ID_MAX || w > KP_WRAPPED_MAX) {
            rc = at_error_set(AT_EKEYRING, "keyring %s: bad layer record", path);
            goto out;
        }
        memcpy(info->key_id[l], id, k);
        if (l == 0 && w) {
            struct kp_wrapped *s0 = &info->kek[0][info->nkek[0]++];
            s0->kek_version = kek;
            s0->len = w;
            memcpy(s0->bytes, wrapped, w);
        }
    }
    uint32_t entries = take_u32(&c);
    uint8_t last[KEYRING_FILE_ID_LEN] = {0};
    for (uint32_t i = 0; i < entries && !c.bad; i++) {
        uint8_t nlen = take_u8(&c);
        const uint8_t *name = take(&c, nlen);
        const uint8_t *id = take(&c, KEYRING_FILE_ID_LEN);
        uint8_t layer = take_u8(&c);
        uint32_t ver = take_u32(&c);
        uint32_t kek = take_u32(&c);
        uint16_t w = take_u16(&c);
        const uint8_t *wb = take(&c, w);
        uint64_t count = take_u64(&c);
        if (c.bad || layer >= info->layers || w > KP_WRAPPED_MAX)
            break;
        if (i == 0 || memcmp(last, id, KEYRING_FILE_ID_LEN) != 0) {
            info->files++;
            memcpy(last, id, KEYRING_FILE_ID_LEN);
            if (files && *nfiles < max && nlen < KEYRING_NAME_MAX) {
                struct keyring_peek_file *pf = &files[(*nfiles)++];
                memset(pf, 0, sizeof *pf);
                memcpy(pf->name, name, nlen);
                memcpy(pf->id, id, KEYRING_FILE_ID_LEN);
            }
        }
        if (files && *nfiles && *nfiles <= max &&
            memcmp(files[*nfiles - 1].id, id, KEYRING_FILE_ID_LEN) == 0) {
            struct keyring_peek_file *pf = &files[*nfiles - 1];
            if (!pf->oldest[layer] || ver < pf->oldest[layer])
                pf->oldest[layer] = ver;
            if (ver > pf->current[layer])
                pf->current[layer] = ver;
        }
        info->deks[layer]++;
        info->encryptions[layer] += count;
        if (ver > info->max_dek_version[layer])
            info->max_dek_version[layer] = ver;
        size_t k = 0;
        while (k < info->nkek[layer] && info->kek[layer][k].kek_version != kek)
            k++;
        if (k == info->nkek[layer] && k < KEYRING_INFO_KEKS) {
            struct kp_wrapped *s1 = &info->kek[layer][info->nkek[layer]++];
            s1->kek_version = kek;
            s1->len = w;
            memcpy(s1->bytes, wb, w);
        }
    }
    if (c.bad)
        rc = at_error_set(AT_EKEYRING, "keyring %s is truncated", path);
out:
    free(buf);
    return rc;
}
