/*
 * vault.c — the key service's keystore: named keys with versions, sealed
 * under the root key (see kms.h).
 *
 * Invariants:
 *   1. The root key and every version's key material live only in secmem
 *      (the root in its own allocation, the material in one arena that is
 *      reallocated as keys come and go, so the number of locked mappings
 *      stays small). The plaintext keystore body is built and parsed in
 *      secmem too. RSA private keys are parsed from that arena for each
 *      operation and freed at once; OpenSSL's secure heap (initialised by
 *      the daemon) keeps their private numbers in locked memory meanwhile.
 *   2. The keystore is sealed with AES-256-GCM under the root key with its
 *      header as associated data: another root key, a flipped bit or a
 *      truncation is AT_EINTEGRITY, never a wrong key.
 *   3. Every change is written (keyfile_write_atomic: tmp, fsync, rename,
 *      fsync folder) before it is reported; a change whose write fails is
 *      undone in memory, so memory never runs ahead of the disk.
 *   4. Version ids are 16 random bytes (32 hex digits); a key's versions
 *      are kept in creation order and the last one is current.
 *
 * root.key: one line "atrest-kms-root-key-v1 <base64 of 32 bytes>\n",
 * mode 0600; or ATREST_KMS_ROOT_KEY holds the base64 alone (then no
 * root.key is read or created).
 *
 * keystore (integers big-endian):
 *
 *   offset  size  field
 *   0       4     magic "AKMS"
 *   4       4     format version (1)
 *   8       16    keystore id (random at creation)
 *   24      4     L, body length
 *   28      12    GCM nonce (fresh for every write)
 *   40      16    GCM tag
 *   56      L     body, AES-256-GCM under the root key; AAD = bytes 0..39
 *
 *   body:   u32 flags (1: purge protection), u32 number of keys, then keys
 *   key:    u8 name length, name, u8 deleted, i64 deleted on, i64 purge on,
 *           u32 number of versions, then versions
 *   version: 16 id, u8 kty (1 oct, 2 RSA), u8 hsm, u8 enabled, u8 key_ops,
 *           u16 bits, i64 created, i64 updated, i64 nbf, i64 exp,
 *           u16 tags length, tags (JSON text), u32 material length, material
 *           (oct: 32 bytes; RSA: the DER RSAPrivateKey)
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "keys/keyfile.h"
#include "kms/kms.h"

#define ROOT_PREFIX "atrest-kms-root-key-v1 "
#define KS_MAGIC    "AKMS"
#define KS_FORMAT   1
#define KS_OFF_LEN  24
#define KS_OFF_NONCE 28
#define KS_HDR_LEN  40
#define KS_OFF_TAG  40
#define KS_OFF_BODY 56
#define KS_BODY_MAX (64u << 20)

/* ---- root key ------------------------------------------------------------ */

static int load_root(struct kms_vault *v, int create, int have_keystore)
{
    const struct kms_dir *d = v->dir;
    char text[128], line[128];
    size_t len = 0;
    int rc;
    const char *env = getenv(KMS_ROOT_ENV);
    if (env) {
        /* The environment carries the base64 alone. */
        snprintf(text, sizeof text, ROOT_PREFIX "%.100s", env);
        rc = kms_secret_line_parse(ROOT_PREFIX, text, strlen(text), v->root) == 0
                 ? 0
                 : at_error_set(AT_EKEYDIR, KMS_ROOT_ENV
                                " is set but is not the base64 of a 32-byte key");
        goto out;
    }
    rc = kms_dir_read(d, KMS_ROOT_FILE, (uint8_t *)text, sizeof text, &len);
    if (rc == ENOENT) {
        if (have_keystore) {
            rc = at_error_set(AT_EKEYDIR,
                              "%s has a keystore but no " KMS_ROOT_FILE " and " KMS_ROOT_ENV
                              " is not set: restore the root key from your backup",
                              d->path);
        } else if (!create) {
            rc = at_error_set(AT_EKEYDIR, "%s has no " KMS_ROOT_FILE " and no keystore",
                              d->path);
        } else if ((rc = rand_key(v->root, 32)) != 0) {
            at_error_set(rc, "cannot draw a root key from the random generator");
        } else {
            size_t n = kms_secret_line_format(ROOT_PREFIX, v->root, line);
            rc = keyfile_write_atomic(d->fd, d->path, KMS_ROOT_FILE, (const uint8_t *)line, n, 0);
        }
        goto out;
    }
    if (rc)
        goto out;
    if (kms_secret_line_parse(ROOT_PREFIX, text, len, v->root) != 0)
        rc = at_error_set(AT_EKEYDIR,
                          "%s/" KMS_ROOT_FILE " is not one line \"" ROOT_PREFIX
                          "<base64 of 32 bytes>\"",
                          d->path);
out:
    secmem_wipe(text, sizeof text);
    secmem_wipe(line, sizeof line);
    return rc;
}

/* ---- RSA helpers ---------------------------------------------------------- */

static EVP_PKEY *rsa_from_der(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    return d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, (long)len);
}

static char *bn_param_b64(const EVP_PKEY *pk, const char *name)
{
    BIGNUM *bn = NULL;
    char *out = NULL;
    if (!EVP_PKEY_get_bn_param(pk, name, &bn))
        return NULL;
    int n = BN_num_bytes(bn);
    uint8_t *buf = malloc((size_t)n + 1);
    out = malloc(KMS_B64URL_LEN((size_t)n) + 1);
    if (buf && out && BN_bn2bin(bn, buf) == n) {
        kms_b64url_encode(buf, (size_t)n, out);
    } else {
        free(out);
        out = NULL;
    }
    free(buf);
    BN_free(bn);
    return out;
}

/* Fill kv's public part and bits from its DER. */
static int rsa_public(struct kms_version *kv, const uint8_t *der, size_t len)
{
    EVP_PKEY *pk = rsa_from_der(der, len);
    if (!pk)
        return at_error_set(AT_EFORMAT, "an RSA key in the keystore does not parse");
    kv->n_b64 = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_N);
    kv->e_b64 = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_E);
    kv->bits = (uint16_t)EVP_PKEY_get_bits(pk);
    EVP_PKEY_free(pk);
    return kv->n_b64 && kv->e_b64 ? 0 : AT_ENOMEM;
}

int kms_keygen(int kty, unsigned bits, uint8_t **mat, size_t *len)
{
    *mat = NULL;
    *len = 0;
    if (kty == KMS_KTY_OCT) {
        if (!(*mat = secmem_alloc(KMS_AES_LEN)))
            return at_error_set(AT_ENOMEM, "no locked memory for a key");
        int rc = rand_key(*mat, KMS_AES_LEN);
        if (rc) {
            secmem_free(*mat, KMS_AES_LEN);
            *mat = NULL;
            return at_error_set(rc, "cannot draw a key from the random generator");
        }
        *len = KMS_AES_LEN;
        return 0;
    }
    EVP_PKEY *pk = EVP_RSA_gen(bits);
    if (!pk)
        return at_error_set(AT_ECRYPTO, "RSA key generation (%u bits) failed", bits);
    int rc = 0, n = i2d_PrivateKey(pk, NULL);
    unsigned char *p;
    if (n <= 0) {
        rc = at_error_set(AT_ECRYPTO, "cannot encode an RSA key");
    } else if (!(*mat = secmem_alloc((size_t)n))) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for an RSA key");
    } else {
        p = *mat;
        if (i2d_PrivateKey(pk, &p) != n) {
            secmem_free(*mat, (size_t)n);
            *mat = NULL;
            rc = at_error_set(AT_ECRYPTO, "cannot encode an RSA key");
        } else {
            *len = (size_t)n;
        }
    }
    EVP_PKEY_free(pk);
    return rc;
}

/* ---- the material arena ----------------------------------------------- */

static int arena_reserve(struct kms_vault *v, size_t add)
{
    if (v->arena_len + add <= v->arena_cap)
        return 0;
    size_t cap = v->arena_cap ? v->arena_cap : 4096;
    while (cap < v->arena_len + add)
        cap *= 2;
    uint8_t *a = secmem_alloc(cap);
    if (!a)
        return at_error_set(AT_ENOMEM, "no locked memory for key material (RLIMIT_MEMLOCK?)");
    if (v->arena_len)
        memcpy(a, v->arena, v->arena_len);
    secmem_free(v->arena, v->arena_cap);
    v->arena = a;
    v->arena_cap = cap;
    return 0;
}

/* ---- serialisation -------------------------------------------------------- */

struct wbuf {
    uint8_t *p;
    size_t len, cap; /* p == NULL: only count */
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (n == 0)
        return;
    if (w->p && w->len + n <= w->cap)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct wbuf *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put_u16(struct wbuf *w, unsigned v)
{
    uint8_t b[2];
    keyfile_put_u16(b, (uint16_t)v);
    put(w, b, 2);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4];
    keyfile_put_u32(b, v);
    put(w, b, 4);
}

static void put_i64(struct wbuf *w, int64_t v)
{
    uint8_t b[8];
    keyfile_put_u64(b, (uint64_t)v);
    put(w, b, 8);
}

static void serialise(const struct kms_vault *v, const struct kms_key *skip, struct wbuf *w)
{
    put_u32(w, v->flags);
    put_u32(w, v->nkeys - (skip ? 1 : 0));
    for (uint32_t i = 0; i < v->nkeys; i++) {
        const struct kms_key *k = &v->keys[i];
        if (k == skip)
            continue;
        size_t nl = strlen(k->name);
        put_u8(w, (unsigned)nl);
        put(w, k->name, nl);
        put_u8(w, (unsigned)k->deleted);
        put_i64(w, k->deleted_on);
        put_i64(w, k->purge_on);
        put_u32(w, k->nver);
        for (uint32_t j = 0; j < k->nver; j++) {
            const struct kms_version *kv = &k->ver[j];
            uint8_t id[16];
            (void)kms_unhex(kv->id, KMS_VERSION_HEX, id);
            put(w, id, 16);
            put_u8(w, kv->kty);
            put_u8(w, kv->hsm);
            put_u8(w, kv->enabled);
            put_u8(w, kv->ops);
            put_u16(w, kv->bits);
            put_i64(w, kv->created);
            put_i64(w, kv->updated);
            put_i64(w, kv->nbf);
            put_i64(w, kv->exp);
            size_t tl = kv->tags ? strlen(kv->tags) : 0;
            put_u16(w, (unsigned)tl);
            put(w, kv->tags, tl);
            put_u32(w, (uint32_t)kv->mat_len);
            put(w, v->arena + kv->mat_off, kv->mat_len);
        }
    }
}

static int save(struct kms_vault *v, const struct kms_key *skip, int replace)
{
    struct wbuf w = {0};
    serialise(v, skip, &w); /* count */
    size_t body_len = w.len, file_len = KS_OFF_BODY + body_len;
    uint8_t *file = malloc(file_len);
    w.p = secmem_alloc(body_len);
    w.cap = body_len;
    w.len = 0;
    int rc;
    if (!file || !w.p) {
        rc = at_error_set(AT_ENOMEM, "no memory to write the keystore");
        goto out;
    }
    serialise(v, skip, &w);
    memcpy(file, KS_MAGIC, 4);
    keyfile_put_u32(file + 4, KS_FORMAT);
    memcpy(file + 8, v->id, 16);
    keyfile_put_u32(file + KS_OFF_LEN, (uint32_t)body_len);
    if ((rc = rand_bytes(file + KS_OFF_NONCE, AEAD_NONCE_LEN)) != 0) {
        at_error_set(rc, "cannot draw a nonce from the random generator");
        goto out;
    }
    rc = aead_seal(v->root, file + KS_OFF_NONCE, file, KS_HDR_LEN, w.p, body_len,
                   file + KS_OFF_BODY, file + KS_OFF_TAG);
    if (rc) {
        at_error_set(rc, "cannot seal the keystore");
        goto out;
    }
    rc = keyfile_write_atomic(v->dir->fd, v->dir->path, KMS_KEYSTORE_FILE, file, file_len, replace);
out:
    secmem_free(w.p, body_len);
    free(file);
    return rc;
}

int kms_vault_save(struct kms_vault *v)
{
    return save(v, NULL, 1);
}

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad;
};

static const uint8_t *take(struct rbuf *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static unsigned get_u8(struct rbuf *r)
{
    const uint8_t *q = take(r, 1);
    return q ? q[0] : 0;
}

static unsigned get_u16(struct rbuf *r)
{
    const uint8_t *q = take(r, 2);
    return q ? keyfile_get_u16(q) : 0;
}

static uint32_t get_u32(struct rbuf *r)
{
    const uint8_t *q = take(r, 4);
    return q ? keyfile_get_u32(q) : 0;
}

static int64_t get_i64(struct rbuf *r)
{
    const uint8_t *q = take(r, 8);
    return q ? (int64_t)keyfile_get_u64(q) : 0;
}

static void free_version(struct kms_version *kv)
{
    free(kv->tags);
    free(kv->n_b64);
    free(kv->e_b64);
    memset(kv, 0, sizeof *kv);
}

static void free_key(struct kms_key *k)
{
    for (uint32_t j = 0; j < k->nver; j++)
        free_version(&k->ver[j]);
    free(k->ver);
    k->ver = NULL;
    k->nver = 0;
}

static int parse_body(struct kms_vault *v, const uint8_t *body, size_t len)
{
    struct rbuf r = {body, len, 0, 0};
    v->flags = get_u32(&r);
    uint32_t nkeys = get_u32(&r);
    if (r.bad || nkeys > KMS_MAX_KEYS)
        return AT_EFORMAT;
    v->keys = calloc(nkeys ? nkeys : 1, sizeof *v->keys);
    if (!v->keys)
        return AT_ENOMEM;
    if (arena_reserve(v, len))
        return AT_ENOMEM;
    for (uint32_t i = 0; i < nkeys; i++) {
        struct kms_key *k = &v->keys[i];
        unsigned nl = get_u8(&r);
        const uint8_t *name = take(&r, nl);
        if (!name || nl > KMS_NAME_MAX)
            return AT_EFORMAT;
        memcpy(k->name, name, nl);
        k->name[nl] = '\0';
        v->nkeys = i + 1;
        k->deleted = (int)get_u8(&r);
        k->deleted_on = get_i64(&r);
        k->purge_on = get_i64(&r);
        uint32_t nver = get_u32(&r);
        if (r.bad || !kms_name_ok(k->name) || nver < 1 || nver > KMS_MAX_VERSIONS)
            return AT_EFORMAT;
        if (!(k->ver = calloc(nver, sizeof *k->ver)))
            return AT_ENOMEM;
        for (uint32_t j = 0; j < nver; j++) {
            struct kms_version *kv = &k->ver[j];
            k->nver = j + 1;
            const uint8_t *id = take(&r, 16);
            if (id)
                kms_hex(id, 16, kv->id);
            kv->kty = (uint8_t)get_u8(&r);
            kv->hsm = (uint8_t)get_u8(&r);
            kv->enabled = (uint8_t)get_u8(&r);
            kv->ops = (uint8_t)get_u8(&r);
            kv->bits = (uint16_t)get_u16(&r);
            kv->created = get_i64(&r);
            kv->updated = get_i64(&r);
            kv->nbf = get_i64(&r);
            kv->exp = get_i64(&r);
            unsigned tl = get_u16(&r);
            const uint8_t *tags = take(&r, tl);
            if (tags && tl) {
                if (!(kv->tags = malloc(tl + 1)))
                    return AT_ENOMEM;
                memcpy(kv->tags, tags, tl);
                kv->tags[tl] = '\0';
            }
            uint32_t ml = get_u32(&r);
            const uint8_t *mat = take(&r, ml);
            if (!mat || (kv->kty == KMS_KTY_OCT && ml != KMS_AES_LEN) ||
                (kv->kty != KMS_KTY_OCT && kv->kty != KMS_KTY_RSA))
                return AT_EFORMAT;
            kv->mat_off = v->arena_len;
            kv->mat_len = ml;
            memcpy(v->arena + v->arena_len, mat, ml);
            v->arena_len += ml;
            if (kv->kty == KMS_KTY_RSA && rsa_public(kv, mat, ml) != 0)
                return AT_EFORMAT;
        }
    }
    return r.bad || r.pos != len ? AT_EFORMAT : 0;
}

static int read_keystore(struct kms_vault *v, int fd)
{
    const struct kms_dir *d = v->dir;
    uint8_t *file = NULL, *body = NULL;
    size_t len = 0, body_len = 0;
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0)
        return at_error_set(errno, "cannot stat %s/" KMS_KEYSTORE_FILE, d->path);
    if (st.st_size < KS_OFF_BODY || (uint64_t)st.st_size > KS_OFF_BODY + (uint64_t)KS_BODY_MAX) {
        rc = AT_EINTEGRITY;
        goto damaged;
    }
    file = malloc((size_t)st.st_size + 1);
    if (!file)
        return at_error_set(AT_ENOMEM, "no memory to read the keystore");
    rc = keyfile_read_all(fd, file, (size_t)st.st_size + 1, &len);
    if (rc) {
        rc = at_error_set(rc, "cannot read %s/" KMS_KEYSTORE_FILE ": %s", d->path, strerror(rc));
        goto out;
    }
    if (len >= 8 && memcmp(file, KS_MAGIC, 4) != 0) {
        rc = at_error_set(AT_EFORMAT, "%s/" KMS_KEYSTORE_FILE " is not an atrest-kms keystore",
                          d->path);
        goto out;
    }
    if (len >= 8 && keyfile_get_u32(file + 4) != KS_FORMAT) {
        rc = at_error_set(AT_EFORMAT, "%s/" KMS_KEYSTORE_FILE " has format %u; this reads %u",
                          d->path, keyfile_get_u32(file + 4), KS_FORMAT);
        goto out;
    }
    if (len >= KS_OFF_BODY)
        body_len = keyfile_get_u32(file + KS_OFF_LEN);
    if (len < KS_OFF_BODY || len != KS_OFF_BODY + body_len) {
        body_len = 0;
        rc = AT_EINTEGRITY;
        goto damaged;
    }
    body = secmem_alloc(body_len ? body_len : 1);
    if (!body) {
        rc = at_error_set(AT_ENOMEM, "no locked memory to read the keystore");
        goto out;
    }
    rc = aead_open(v->root, file + KS_OFF_NONCE, file, KS_HDR_LEN, file + KS_OFF_BODY, body_len,
                   body, file + KS_OFF_TAG);
    if (rc) {
        rc = at_error_set(AT_EINTEGRITY,
                          "%s/" KMS_KEYSTORE_FILE " failed authentication: the root key (" KMS_ROOT_FILE
                          " or " KMS_ROOT_ENV ") is not the one that sealed it, or the keystore is "
                          "damaged",
                          d->path);
        goto out;
    }
    memcpy(v->id, file + 8, 16);
    rc = parse_body(v, body, body_len);
    if (rc)
        rc = at_error_set(rc, "%s/" KMS_KEYSTORE_FILE " authenticated but does not parse (%s)",
                          d->path, at_strerror(rc));
    goto out;
damaged:
    rc = at_error_set(AT_EINTEGRITY, "%s/" KMS_KEYSTORE_FILE " is damaged: truncated or wrong size",
                      d->path);
out:
    secmem_free(body, body_len ? body_len : 1);
    free(file);
    return rc;
}

/* ---- open / close ---------------------------------------------------- */

void kms_vault_close(struct kms_vault *v)
{
    if (!v)
        return;
    for (uint32_t i = 0; i < v->nkeys; i++)
        free_key(&v->keys[i]);
    free(v->keys);
    secmem_free(v->arena, v->arena_cap);
    secmem_free(v->root, 32);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

int kms_vault_open(const struct kms_dir *d, int create, struct kms_vault **out)
{
    struct kms_vault *v = calloc(1, sizeof *v);
    int rc, fd = -1;
    if (!v)
        return AT_ENOMEM;
    pthread_mutex_init(&v->mu, NULL);
    v->dir = d;
    if (!(v->root = secmem_alloc(32))) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for the root key (RLIMIT_MEMLOCK?)");
        goto out;
    }
    rc = kms_dir_open_private(d, KMS_KEYSTORE_FILE, O_RDONLY, &fd);
    if (rc && rc != ENOENT)
        goto out;
    if ((rc = load_root(v, create, fd >= 0)) != 0)
        goto out;
    if (fd >= 0) {
        rc = read_keystore(v, fd);
    } else if (!create) {
        rc = at_error_set(AT_EKEYDIR, "%s has no keystore", d->path);
    } else if ((rc = rand_bytes(v->id, sizeof v->id)) != 0) {
        at_error_set(rc, "cannot draw a keystore id");
    } else if (!(v->keys = calloc(1, sizeof *v->keys))) {
        rc = AT_ENOMEM;
    } else {
        rc = save(v, NULL, 0);
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc) {
        kms_vault_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void kms_vault_audit_key(const struct kms_vault *v, uint8_t out[32])
{
    static const char label[] = "atrest-kms audit head v1";
    unsigned int n = 32;
    HMAC(EVP_sha256(), v->root, 32, (const unsigned char *)label, sizeof label - 1, out, &n);
}

/* ---- lookups -------------------------------------------------------------- */

struct kms_key *kms_vault_find(struct kms_vault *v, const char *name)
{
    for (uint32_t i = 0; i < v->nkeys; i++)
        if (strcmp(v->keys[i].name, name) == 0)
            return &v->keys[i];
    return NULL;
}

struct kms_version *kms_key_version(struct kms_key *k, const char *version)
{
    if (!version || !*version)
        return &k->ver[k->nver - 1];
    for (uint32_t j = 0; j < k->nver; j++)
        if (strcmp(k->ver[j].id, version) == 0)
            return &k->ver[j];
    return NULL;
}

/* ---- changes ------------------------------------------------------------- */

int kms_vault_add_version(struct kms_vault *v, const char *name, const struct kms_new_version *nv,
                          const uint8_t *mat, size_t len, struct kms_version **out)
{
    struct kms_key *k = kms_vault_find(v, name);
    int rc, new_key = !k;
    if (k && k->deleted)
        return at_error_set(AT_EEXIST, "key %s is deleted but recoverable", name);
    if (!kms_name_ok(name))
        return at_error_set(AT_EINVAL, "invalid key name");
    if (new_key && v->nkeys >= KMS_MAX_KEYS)
        return at_error_set(AT_EINVAL, "the keystore holds the most keys (%d)", KMS_MAX_KEYS);
    if (k && k->nver >= KMS_MAX_VERSIONS)
        return at_error_set(AT_EINVAL, "key %s has the most versions (%d)", name, KMS_MAX_VERSIONS);
    if (nv->tags && strlen(nv->tags) > KMS_TAGS_MAX)
        return at_error_set(AT_EINVAL, "tags too long");
    if ((rc = arena_reserve(v, len)) != 0)
        return rc;
    if (new_key) {
        struct kms_key *keys = realloc(v->keys, (v->nkeys + 1) * sizeof *keys);
        if (!keys)
            return AT_ENOMEM;
        v->keys = keys;
        k = &v->keys[v->nkeys];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", name);
    }
    struct kms_version *ver = realloc(k->ver, (k->nver + 1) * sizeof *ver);
    if (!ver)
        return AT_ENOMEM;
    k->ver = ver;
    struct kms_version *kv = &k->ver[k->nver];
    memset(kv, 0, sizeof *kv);
    uint8_t id[16];
    if ((rc = rand_bytes(id, sizeof id)) != 0)
        return at_error_set(rc, "cannot draw a version id");
    kms_hex(id, 16, kv->id);
    kv->kty = (uint8_t)nv->kty;
    kv->hsm = (uint8_t)nv->hsm;
    kv->enabled = (uint8_t)(nv->enabled != 0);
    kv->ops = (uint8_t)nv->ops;
    kv->bits = (uint16_t)nv->bits;
    kv->created = kv->updated = kms_now();
    kv->nbf = nv->nbf;
    kv->exp = nv->exp;
    if (nv->tags && !(kv->tags = strdup(nv->tags)))
        return AT_ENOMEM;
    kv->mat_off = v->arena_len;
    kv->mat_len = len;
    memcpy(v->arena + v->arena_len, mat, len);
    if (kv->kty == KMS_KTY_RSA && (rc = rsa_public(kv, mat, len)) != 0) {
        free_version(kv);
        return rc;
    }
    v->arena_len += len;
    k->nver++;
    if (new_key)
        v->nkeys++;
    if ((rc = kms_vault_save(v)) != 0) {
        /* Undo (invariant 3). */
        k->nver--;
        free_version(&k->ver[k->nver]);
        secmem_wipe(v->arena + v->arena_len - len, len);
        v->arena_len -= len;
        if (new_key) {
            free_key(k);
            v->nkeys--;
        }
        return rc;
    }
    *out = &k->ver[k->nver - 1];
    return 0;
}

int kms_vault_delete(struct kms_vault *v, struct kms_key *k)
{
    int64_t now = kms_now();
    k->deleted = 1;
    k->deleted_on = now;
    k->purge_on = now + KMS_RETENTION_S;
    int rc = kms_vault_save(v);
    if (rc)
        k->deleted = 0;
    return rc;
}

int kms_vault_recover(struct kms_vault *v, struct kms_key *k)
{
    k->deleted = 0;
    int rc = kms_vault_save(v);
    if (rc)
        k->deleted = 1;
    return rc;
}

int kms_vault_set_purge_protection(struct kms_vault *v)
{
    if (v->flags & KMS_VAULT_PURGE_PROTECTION)
        return 0;
    v->flags |= KMS_VAULT_PURGE_PROTECTION;
    int rc = kms_vault_save(v);
    if (rc)
        v->flags &= ~KMS_VAULT_PURGE_PROTECTION;
    return rc;
}

int kms_vault_purge(struct kms_vault *v, struct kms_key *k)
{
    int rc = save(v, k, 1);
    if (rc)
        return rc;
    /* Written without k: compact the arena, then drop k. */
    size_t gone = 0;
    for (uint32_t j = 0; j < k->nver; j++)
        gone += k->ver[j].mat_len;
    uint8_t *a = v->arena_len > gone ? secmem_alloc(v->arena_cap) : NULL;
    size_t pos = 0;
    for (uint32_t i = 0; i < v->nkeys; i++) {
        struct kms_key *o = &v->keys[i];
        for (uint32_t j = 0; o != k && j < o->nver; j++) {
            struct kms_version *kv = &o->ver[j];
            if (a) {
                memcpy(a + pos, v->arena + kv->mat_off, kv->mat_len);
                kv->mat_off = pos;
                pos += kv->mat_len;
            }
        }
    }
    if (a || v->arena_len == gone) {
        secmem_free(v->arena, v->arena_cap);
        v->arena = a;
        v->arena_len = pos;
        if (!a)
            v->arena_cap = 0;
    } else {
        /* No memory to compact: keep the arena, wipe the purged bytes. */
        for (uint32_t j = 0; j < k->nver; j++)
            secmem_wipe(v->arena + k->ver[j].mat_off, k->ver[j].mat_len);
    }
    free_key(k);
    size_t idx = (size_t)(k - v->keys);
    memmove(k, k + 1, (v->nkeys - idx - 1) * sizeof *k);
    v->nkeys--;
    return 0;
}

/* ---- wrap / unwrap -------------------------------------------------------- */

static int aes_kw(const uint8_t key[KMS_AES_LEN], int enc, const uint8_t *in, size_t len,
                  uint8_t *out, size_t *out_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok;
    if (!c)
        return AT_ENOMEM;
    EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, key, NULL, enc) == 1 &&
         EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && EVP_CipherFinal_ex(c, out + n, &f) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        secmem_wipe(out, len + 8);
        return enc ? AT_ECRYPTO : AT_EINTEGRITY;
    }
    *out_len = (size_t)(n + f);
    return 0;
}

static int rsa_oaep(const uint8_t *der, size_t der_len, int alg, int enc, const uint8_t *in,
                    size_t len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY *pk = rsa_from_der(der, der_len);
    EVP_PKEY_CTX *c = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
    const EVP_MD *md = alg == KMS_ALG_RSA_OAEP_256 ? EVP_sha256() : EVP_sha1();
    size_t n = KMS_WRAP_MAX;
    int ok = c && (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(c, md) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) == 1;
    if (ok)
        ok = (enc ? EVP_PKEY_encrypt(c, out, &n, in, len) : EVP_PKEY_decrypt(c, out, &n, in, len)) ==
             1;
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pk);
    if (!ok) {
        secmem_wipe(out, KMS_WRAP_MAX);
        return enc ? AT_EINVAL : AT_EINTEGRITY;
    }
    *out_len = n;
    return 0;
}

static int check_alg(const struct kms_version *kv, int alg)
{
    if (kv->kty == KMS_KTY_OCT && alg == KMS_ALG_A256KW)
        return 0;
    if (kv->kty == KMS_KTY_RSA && (alg == KMS_ALG_RSA_OAEP_256 || alg == KMS_ALG_RSA_OAEP))
        return 0;
    return at_error_set(AT_EINVAL, "the algorithm does not fit a key of type %s",
                        kv->kty == KMS_KTY_OCT ? "oct" : "RSA");
}

int kms_vault_wrap(struct kms_vault *v, const struct kms_version *kv, int alg, const uint8_t *in,
                   size_t len, uint8_t *out, size_t *out_len)
{
    int rc = check_alg(kv, alg);
    if (rc)
        return rc;
    const uint8_t *mat = v->arena + kv->mat_off;
    if (alg == KMS_ALG_A256KW) {
        /* RFC 3394: whole 64-bit blocks, at least two. */
        if (len < 16 || len % 8 || len + 8 > KMS_WRAP_MAX)
            return at_error_set(AT_EINVAL, "A256KW wraps 16 to %d bytes in multiples of 8",
                                KMS_WRAP_MAX - 8);
        return aes_kw(mat, 1, in, len, out, out_len);
    }
    if (len == 0)
        return at_error_set(AT_EINVAL, "nothing to wrap");
    rc = rsa_oaep(mat, kv->mat_len, alg, 1, in, len, out, out_len);
    return rc ? at_error_set(rc, "the value is too long for RSA-OAEP with this key") : 0;
}

int kms_vault_unwrap(struct kms_vault *v, const struct kms_version *kv, int alg,
                     const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    int rc = check_alg(kv, alg);
    if (rc)
        return rc;
    const uint8_t *mat = v->arena + kv->mat_off;
    if (alg == KMS_ALG_A256KW) {
        if (len < 24 || len % 8 || len > KMS_WRAP_MAX)
            return at_error_set(AT_EINVAL, "an A256KW value is 24 to %d bytes in multiples of 8",
                                KMS_WRAP_MAX);
        rc = aes_kw(mat, 0, in, len, out, out_len);
    } else {
        if (len == 0 || len > KMS_WRAP_MAX)
            return at_error_set(AT_EINVAL, "bad RSA-OAEP value length");
        rc = rsa_oaep(mat, kv->mat_len, alg, 0, in, len, out, out_len);
    }
    return rc ? at_error_set(rc, "unwrap failed: the value was not wrapped by this key version, "
                                 "or is damaged")
              : 0;
}
