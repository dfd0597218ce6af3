/*
 * embedded.c — the embedded key provider (see embedded.h): a keystore of
 * versioned KEKs in a key folder of its own, sealed by a root key.
 *
 * Invariants:
 *   1. The root key and the KEKs live only in secmem; every stack buffer
 *      that held key bytes (or their base64) is wiped at its function's
 *      single out: label, on success and failure alike.
 *   2. The keystore is sealed with AES-256-GCM under the root key, with its
 *      header as associated data: a flipped bit anywhere in the file, a
 *      truncation or another root key is AT_EINTEGRITY, never a wrong KEK.
 *   3. Files are written with keyfile_write_atomic() (tmp, fsync, rename or
 *      link, fsync folder), created 0600. Create never overwrites root.key
 *      or keystore: it links the new file into place, which fails if a file
 *      of that name exists.
 *   4. KEK versions are 1, 2, 3, ... strictly increasing; the last one is
 *      current. Rotation adds one and persists before it becomes current.
 *   5. The key folder is checked before anything is read or created: it is
 *      neither the data folder nor inside it nor around it (compared after
 *      realpath(); a path that does not exist yet is resolved through its
 *      nearest existing ancestor), and it, root.key and keystore are owned
 *      by the running user with no group/other permission bits.
 *
 * root.key: one line "atrest-root-key-v1 <base64 of 32 bytes>\n" (44 base64
 * characters, one '=' of padding). Not read when ATREST_ROOT_KEY is set: the
 * environment then supplies the same base64 form, without the prefix.
 *
 * keystore (integers big-endian):
 *
 *   offset  size    field
 *   0       4       magic "ATKS"
 *   4       4       format version (1)
 *   8       16      keystore id (random at creation; key_id() is
 *                   "embedded:" + its 32 hex digits)
 *   24      4       N, number of KEK versions (1 .. EMB_MAX_VERSIONS)
 *   28      12      GCM nonce (random, fresh for every write)
 *   40      16      GCM tag
 *   56      36 * N  body, AES-256-GCM under the root key; AAD = bytes 0..39
 *
 *   body record i (plaintext, at 36 * i in the body):
 *   +0      4       KEK version (strictly increasing; the last is current)
 *   +4      32      KEK (AES-256 key-wrap key)
 *
 *   The file is exactly 56 + 36 * N bytes.
 */
#include "keys/embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/keywrap.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "keys/keyfile.h"

#define ROOT_KEY_LEN     32
#define KEK_LEN          32
#define KS_ID_LEN        16
#define KS_MAGIC         "ATKS"
#define KS_FORMAT        1
#define KS_OFF_ID        8
#define KS_OFF_COUNT     24
#define KS_OFF_NONCE     28
#define KS_HDR_LEN       40 /* bytes 0..39: the AAD */
#define KS_OFF_TAG       40
#define KS_OFF_BODY      56
#define KS_REC_LEN       (4 + KEK_LEN)
#define EMB_MAX_VERSIONS 4096

#define ROOT_FILE     "root.key"
#define KEYSTORE_FILE "keystore"
#define ROOT_ENV      "ATREST_ROOT_KEY"
#define ROOT_PREFIX   "atrest-root-key-v1 "
#define ROOT_B64_LEN  44 /* base64 of 32 bytes */

struct embedded {
    struct key_provider base; /* first: the vtable */
    pthread_mutex_t mu;       /* guards n, versions, keks */
    int dirfd;                /* the key folder, checked once */
    char dir[PATH_MAX];       /* its resolved path, for details */
    uint8_t id[KS_ID_LEN];
    uint8_t *root;      /* secmem, ROOT_KEY_LEN */
    uint32_t n;         /* number of KEK versions */
    uint32_t *versions; /* n versions, ascending */
    uint8_t *keks;      /* secmem, n * KEK_LEN, same order */
};

static const struct key_provider_ops embedded_ops;

/* ---- placement of the key folder ------------------------------------- */

/* Resolve path like realpath(), also when its last components do not exist
 * yet: the nearest existing ancestor is resolved, the rest appended with
 * "." and ".." applied lexically. */
static int resolve_path(const char *path, char out[PATH_MAX])
{
    char buf[PATH_MAX];
    size_t len = strlen(path), cut = len;
    if (len == 0 || len >= sizeof buf)
        return at_error_set(EINVAL, "invalid folder path \"%s\"", path);
    memcpy(buf, path, len + 1);
    for (;;) {
        const char *anc = cut ? buf : ".";
        if (realpath(anc, out))
            break;
        if (errno != ENOENT || cut == 0)
            return at_error_set(errno, "cannot resolve %s: %s", anc, strerror(errno));
        while (cut > 0 && buf[cut - 1] == '/')
            cut--;
        while (cut > 0 && buf[cut - 1] != '/')
            cut--;
        buf[cut] = '\0';
    }
    /* Append the components that do not exist yet. */
    size_t olen = strlen(out);
    const char *p = path + cut;
    while (*p) {
        while (*p == '/')
            p++;
        size_t clen = strcspn(p, "/");
        if (clen == 0 || (clen == 1 && p[0] == '.')) {
            /* nothing */
        } else if (clen == 2 && p[0] == '.' && p[1] == '.') {
            while (olen > 1 && out[olen - 1] != '/')
                olen--;
            if (olen > 1)
                olen--;
            out[olen] = '\0';
        } else {
            int sep = !(olen == 1 && out[0] == '/');
            if (olen + sep + clen >= PATH_MAX)
                return at_error_set(ENAMETOOLONG, "path too long: %s", path);
            if (sep)
                out[olen++] = '/';
            memcpy(out + olen, p, clen);
            olen += clen;
            out[olen] = '\0';
        }
        p += clen;
    }
    return 0;
}

/* 1 when child is parent or lies below it (both resolved). */
static int path_within(const char *child, const char *parent)
{
    size_t n = strlen(parent);
    if (n == 1 && parent[0] == '/')
        return 1;
    return strncmp(child, parent, n) == 0 && (child[n] == '/' || child[n] == '\0');
}

static int check_placement(const char *key_dir, const char *data_dir, char key_res[PATH_MAX])
{
    char data_res[PATH_MAX];
    int rc = resolve_path(key_dir, key_res);
    if (rc == 0)
        rc = resolve_path(data_dir, data_res);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", at_error_detail());
        return at_error_set(AT_EKEYDIR, "%s", why);
    }
    const char *why = NULL;
    if (strcmp(key_res, data_res) == 0)
        why = "is the data folder";
    else if (path_within(key_res, data_res))
        why = "is inside the data folder";
    else if (path_within(data_res, key_res))
        why = "contains the data folder";
    if (why)
        return at_error_set(AT_EKEYDIR,
                            "key folder %s %s %s; keep the keys apart from the data "
                            "(another folder tree, disk or machine)",
                            key_res, why, data_res);
    return 0;
}

/* ---- root key --------------------------------------------------------- */

/* Decode exactly ROOT_B64_LEN base64 characters (one '=' of padding) into
 * key. 0 or -1. */
static int decode_root_b64(const char *b64, uint8_t key[ROOT_KEY_LEN])
{
    uint8_t dec[ROOT_KEY_LEN + 4];
    int rc = -1;
    for (int i = 0; i < ROOT_B64_LEN - 1; i++)
        if (b64[i] == '=')
            goto out;
    if (b64[ROOT_B64_LEN - 1] != '=')
        goto out;
    if (EVP_DecodeBlock(dec, (const unsigned char *)b64, ROOT_B64_LEN) != ROOT_KEY_LEN + 1)
        goto out;
    memcpy(key, dec, ROOT_KEY_LEN);
    rc = 0;
out:
    secmem_wipe(dec, sizeof dec);
    return rc;
}

/* Accept "<b64>" followed by nothing, "\n" or "\r\n". */
static int parse_root_b64_line(const char *s, size_t len, uint8_t key[ROOT_KEY_LEN])
{
    if (len < ROOT_B64_LEN)
        return -1;
    const char *rest = s + ROOT_B64_LEN;
    size_t rlen = len - ROOT_B64_LEN;
    if (!(rlen == 0 || (rlen == 1 && rest[0] == '\n') ||
          (rlen == 2 && rest[0] == '\r' && rest[1] == '\n')))
        return -1;
    return decode_root_b64(s, key);
}

static int create_root_file(struct embedded *e)
{
    char line[sizeof ROOT_PREFIX + ROOT_B64_LEN + 8];
    size_t plen = strlen(ROOT_PREFIX);
    int rc = rand_key(e->root, ROOT_KEY_LEN);
    if (rc) {
        at_error_set(rc, "cannot draw a root key from the random generator");
        goto out;
    }
    memcpy(line, ROOT_PREFIX, plen);
    if (EVP_EncodeBlock((unsigned char *)line + plen, e->root, ROOT_KEY_LEN) != ROOT_B64_LEN) {
        rc = at_error_set(AT_ECRYPTO, "cannot encode the root key");
        goto out;
    }
    line[plen + ROOT_B64_LEN] = '\n';
    rc = keyfile_write_atomic(e->dirfd, e->dir, ROOT_FILE, (const uint8_t *)line,
                              plen + ROOT_B64_LEN + 1, 0);
out:
    secmem_wipe(line, sizeof line);
    return rc;
}

static int load_root_key(struct embedded *e, int create, int have_keystore)
{
    char text[128];
    size_t len = 0;
    int rc, fd = -1;
    const char *env = getenv(ROOT_ENV);
    if (env) {
        if (parse_root_b64_line(env, strlen(env), e->root) != 0)
            rc =
                at_error_set(AT_EKEYDIR, ROOT_ENV " is set but is not the base64 of a 32-byte key");
        else
            rc = 0;
        goto out;
    }
    fd = openat(e->dirfd, ROOT_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (have_keystore)
            rc = at_error_set(AT_EKEYDIR,
                              "key folder %s has a keystore but no " ROOT_FILE " (and " ROOT_ENV
                              " is not set); restore " ROOT_FILE
                              " from your backup: a new root key cannot open this keystore",
                              e->dir);
        else if (!create)
            rc = at_error_set(AT_EKEYDIR, "key folder %s has no " ROOT_FILE " and no keystore",
                              e->dir);
        else
            rc = create_root_file(e);
        goto out;
    }
    if (fd < 0) {
        rc = at_error_set(AT_EKEYDIR, "cannot open key file %s/" ROOT_FILE ": %s", e->dir,
                          strerror(errno));
        goto out;
    }
    char path[PATH_MAX + sizeof ROOT_FILE + 1];
    snprintf(path, sizeof path, "%s/" ROOT_FILE, e->dir);
    if ((rc = keyfile_check_private(fd, path, "key file", 0)) != 0)
        goto out;
    rc = keyfile_read_all(fd, (uint8_t *)text, sizeof text, &len);
    size_t plen = strlen(ROOT_PREFIX);
    if (rc == 0 && (len < plen || memcmp(text, ROOT_PREFIX, plen) != 0 ||
                    parse_root_b64_line(text + plen, len - plen, e->root) != 0))
        rc = EINVAL;
    if (rc == EINVAL || rc == EFBIG)
        rc = at_error_set(AT_EKEYDIR,
                          "key file %s is not one line \"" ROOT_PREFIX "<base64 of 32 bytes>\"",
                          path);
    else if (rc)
        rc = at_error_set(AT_EKEYDIR, "cannot read key file %s: %s", path, strerror(rc));
out:
    if (fd >= 0)
        close(fd);
    secmem_wipe(text, sizeof text);
    return rc;
}

/* ---- keystore --------------------------------------------------------- */

static int write_keystore(struct embedded *e, uint32_t n, const uint32_t *versions,
                          const uint8_t *keks, int replace)
{
    size_t body_len = (size_t)n * KS_REC_LEN, file_len = KS_OFF_BODY + body_len;
    uint8_t *file = malloc(file_len);
    uint8_t *body = secmem_alloc(body_len);
    int rc;
    if (!file || !body) {
        rc = at_error_set(AT_ENOMEM, "no memory to write keystore %s/" KEYSTORE_FILE, e->dir);
        goto out;
    }
    memcpy(file, KS_MAGIC, 4);
    keyfile_put_u32(file + 4, KS_FORMAT);
    memcpy(file + KS_OFF_ID, e->id, KS_ID_LEN);
    keyfile_put_u32(file + KS_OFF_COUNT, n);
    if ((rc = rand_bytes(file + KS_OFF_NONCE, AEAD_NONCE_LEN)) != 0) {
        at_error_set(rc, "cannot draw a nonce from the random generator");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        keyfile_put_u32(body + (size_t)i * KS_REC_LEN, versions[i]);
        memcpy(body + (size_t)i * KS_REC_LEN + 4, keks + (size_t)i * KEK_LEN, KEK_LEN);
    }
    rc = aead_seal(e->root, file + KS_OFF_NONCE, file, KS_HDR_LEN, body, body_len,
                   file + KS_OFF_BODY, file + KS_OFF_TAG);
    if (rc) {
        at_error_set(rc, "cannot seal keystore %s/" KEYSTORE_FILE, e->dir);
        goto out;
    }
    rc = keyfile_write_atomic(e->dirfd, e->dir, KEYSTORE_FILE, file, file_len, replace);
out:
    secmem_free(body, body_len);
    free(file);
    return rc;
}

static int read_keystore(struct embedded *e, int fd, const char *path)
{
    const size_t cap = KS_OFF_BODY + (size_t)EMB_MAX_VERSIONS * KS_REC_LEN;
    uint8_t *file = malloc(cap), *body = NULL;
    size_t len = 0, body_len = 0;
    uint32_t n = 0;
    int rc;
    if (!file) {
        rc = at_error_set(AT_ENOMEM, "no memory to read keystore %s", path);
        goto out;
    }
    rc = keyfile_read_all(fd, file, cap, &len);
    if (rc && rc != EFBIG) {
        rc = at_error_set(rc, "cannot read keystore %s: %s", path, strerror(rc));
        goto out;
    }
    if (rc == 0 && len >= 8 && memcmp(file, KS_MAGIC, 4) != 0) {
        rc = at_error_set(AT_EFORMAT, "%s is not an atrest keystore", path);
        goto out;
    }
    if (rc == 0 && len >= 8 && keyfile_get_u32(file + 4) != KS_FORMAT) {
        rc = at_error_set(AT_EFORMAT, "keystore %s has format version %u; this atrest reads %u",
                          path, keyfile_get_u32(file + 4), KS_FORMAT);
        goto out;
    }
    if (rc == 0 && len >= KS_OFF_BODY) {
        n = keyfile_get_u32(file + KS_OFF_COUNT);
        body_len = (size_t)n * KS_REC_LEN;
    }
    if (rc || len < KS_OFF_BODY || n < 1 || n > EMB_MAX_VERSIONS || len != KS_OFF_BODY + body_len) {
        rc = at_error_set(AT_EINTEGRITY,
                          "keystore %s is damaged: truncated or wrong size (%zu bytes)", path, len);
        goto out;
    }
    body = secmem_alloc(body_len);
    if (!body) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for keystore %s", path);
        goto out;
    }
    rc = aead_open(e->root, file + KS_OFF_NONCE, file, KS_HDR_LEN, file + KS_OFF_BODY, body_len,
                   body, file + KS_OFF_TAG);
    if (rc) {
        rc = at_error_set(AT_EINTEGRITY,
                          "keystore %s failed authentication: the root key (" ROOT_FILE
                          " or " ROOT_ENV ") is not the one that sealed it, or the keystore "
                          "is damaged",
                          path);
        goto out;
    }
    e->versions = malloc((size_t)n * sizeof *e->versions);
    e->keks = secmem_alloc((size_t)n * KEK_LEN);
    if (!e->versions || !e->keks) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for the KEKs of %s", path);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = keyfile_get_u32(body + (size_t)i * KS_REC_LEN);
        if (v == 0 || (i > 0 && v <= e->versions[i - 1])) {
            rc = at_error_set(AT_EFORMAT, "keystore %s lists KEK versions out of order", path);
            goto out;
        }
        e->versions[i] = v;
        memcpy(e->keks + (size_t)i * KEK_LEN, body + (size_t)i * KS_REC_LEN + 4, KEK_LEN);
    }
    memcpy(e->id, file + KS_OFF_ID, KS_ID_LEN);
    e->n = n;
    rc = 0;
out:
    if (rc) {
        secmem_free(e->keks, (size_t)n * KEK_LEN);
        free(e->versions);
        e->keks = NULL;
        e->versions = NULL;
    }
    secmem_free(body, body_len);
    free(file);
    return rc;
}

static int create_keystore(struct embedded *e)
{
    int rc;
    e->versions = malloc(sizeof *e->versions);
    e->keks = secmem_alloc(KEK_LEN);
    if (!e->versions || !e->keks) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for a new KEK");
        goto out;
    }
    e->versions[0] = 1;
    if ((rc = rand_bytes(e->id, KS_ID_LEN)) != 0 || (rc = rand_key(e->keks, KEK_LEN)) != 0) {
        at_error_set(rc, "cannot draw keys from the random generator");
        goto out;
    }
    rc = write_keystore(e, 1, e->versions, e->keks, 0);
    if (rc == 0)
        e->n = 1;
out:
    if (rc) {
        secmem_free(e->keks, KEK_LEN);
        free(e->versions);
        e->keks = NULL;
        e->versions = NULL;
    }
    return rc;
}

/* ---- the provider ----------------------------------------------------- */

static void embedded_destroy(struct key_provider *kp)
{
    struct embedded *e = (struct embedded *)kp;
    if (!e)
        return;
    secmem_free(e->keks, (size_t)e->n * KEK_LEN);
    secmem_free(e->root, ROOT_KEY_LEN);
    free(e->versions);
    if (e->dirfd >= 0)
        close(e->dirfd);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int embedded_provider_open(const char *key_dir, const char *data_dir, int create,
                           struct key_provider **out)
{
    char key_res[PATH_MAX], ks_path[PATH_MAX + sizeof KEYSTORE_FILE + 1];
    struct embedded *e = NULL;
    int rc, ksfd = -1;
    if (!key_dir || !data_dir || !out)
        return at_error_set(AT_EINVAL, "embedded key provider: key and data folder required");
    if ((rc = check_placement(key_dir, data_dir, key_res)) != 0)
        return rc;

    e = calloc(1, sizeof *e);
    if (!e)
        return at_error_set(AT_ENOMEM, "no memory for the key provider");
    e->base.ops = &embedded_ops;
    e->dirfd = -1;
    pthread_mutex_init(&e->mu, NULL);
    e->root = secmem_alloc(ROOT_KEY_LEN);
    if (!e->root) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for the root key (RLIMIT_MEMLOCK?)");
        goto out;
    }

    e->dirfd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e->dirfd < 0 && errno == ENOENT && create) {
        if (mkdir(key_dir, 0700) != 0 && errno != EEXIST) {
            rc = at_error_set(AT_EKEYDIR, "cannot create key folder %s: %s", key_res,
                              strerror(errno));
            goto out;
        }
        /* It exists now: resolve again (the lexical guess could differ). */
        if ((rc = check_placement(key_dir, data_dir, key_res)) != 0)
            goto out;
        e->dirfd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (e->dirfd < 0) {
        if (errno == ENOENT)
            rc = at_error_set(
                AT_EKEYDIR, "key folder %s does not exist (create it with `atrest init`)", key_res);
        else
            rc =
                at_error_set(AT_EKEYDIR, "cannot open key folder %s: %s", key_res, strerror(errno));
        goto out;
    }
    snprintf(e->dir, sizeof e->dir, "%s", key_res);
    if ((rc = keyfile_check_private(e->dirfd, e->dir, "key folder", 1)) != 0)
        goto out;

    snprintf(ks_path, sizeof ks_path, "%s/" KEYSTORE_FILE, e->dir);
    ksfd = openat(e->dirfd, KEYSTORE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ksfd < 0 && errno != ENOENT) {
        rc = at_error_set(AT_EKEYDIR, "cannot open keystore %s: %s", ks_path, strerror(errno));
        goto out;
    }
    if (ksfd >= 0 && (rc = keyfile_check_private(ksfd, ks_path, "key file", 0)) != 0)
        goto out;
    if ((rc = load_root_key(e, create, ksfd >= 0)) != 0)
        goto out;
    if (ksfd >= 0)
        rc = read_keystore(e, ksfd, ks_path);
    else if (create)
        rc = create_keystore(e);
    else
        rc = at_error_set(AT_EKEYDIR,
                          "key folder %s has no keystore (create one with `atrest init`)", e->dir);
out:
    if (ksfd >= 0)
        close(ksfd);
    if (rc) {
        embedded_destroy(&e->base);
        return rc;
    }
    *out = &e->base;
    return 0;
}

static int embedded_key_id(struct key_provider *kp, char *buf, size_t n)
{
    struct embedded *e = (struct embedded *)kp;
    static const char hex[] = "0123456789abcdef";
    const size_t need = sizeof "embedded:" - 1 + 2 * KS_ID_LEN + 1;
    if (!buf || n < need)
        return at_error_set(AT_EINVAL, "key id buffer too small (%zu < %zu)", n, need);
    char *p = buf + sprintf(buf, "embedded:");
    for (int i = 0; i < KS_ID_LEN; i++) {
        *p++ = hex[e->id[i] >> 4];
        *p++ = hex[e->id[i] & 15];
    }
    *p = '\0';
    return 0;
}

static int embedded_current_version(struct key_provider *kp, uint32_t *version)
{
    struct embedded *e = (struct embedded *)kp;
    pthread_mutex_lock(&e->mu);
    *version = e->versions[e->n - 1];
    pthread_mutex_unlock(&e->mu);
    return 0;
}

static int embedded_wrap(struct key_provider *kp, const uint8_t *key, size_t len,
                         struct kp_wrapped *out)
{
    struct embedded *e = (struct embedded *)kp;
    size_t wlen = 0;
    if (!key || len == 0 || len > KP_KEY_MAX || KEYWRAP_OUT_LEN(len) > KP_WRAPPED_MAX)
        return at_error_set(AT_EINVAL, "embedded: cannot wrap a key of %zu bytes", len);
    pthread_mutex_lock(&e->mu);
    uint32_t v = e->versions[e->n - 1];
    int rc =
        keywrap_wrap(e->keks + (size_t)(e->n - 1) * KEK_LEN, KEK_LEN, key, len, out->bytes, &wlen);
    pthread_mutex_unlock(&e->mu);
    if (rc) {
        secmem_wipe(out, sizeof *out);
        return at_error_set(rc, "embedded: key wrap under KEK version %u failed", v);
    }
    out->kek_version = v;
    out->len = (uint16_t)wlen;
    return 0;
}

static int embedded_unwrap(struct key_provider *kp, const struct kp_wrapped *in, uint8_t *key_out,
                           size_t *len)
{
    struct embedded *e = (struct embedded *)kp;
    int rc;
    size_t klen = 0;
    char id[KP_KEY_ID_MAX];
    (void)embedded_key_id(kp, id, sizeof id);
    /* RFC 5649 output is a multiple of 8, at least 16 bytes. */
    if (in->len < 16 || in->len % 8 || in->len - KEYWRAP_OVERHEAD > KP_KEY_MAX)
        return at_error_set(AT_EINTEGRITY, "%s: wrapped key of %u bytes is damaged", id,
                            (unsigned)in->len);
    pthread_mutex_lock(&e->mu);
    uint32_t i = 0;
    while (i < e->n && e->versions[i] != in->kek_version)
        i++;
    if (i == e->n) {
        pthread_mutex_unlock(&e->mu);
        return at_error_set(AT_ENOTFOUND, "%s has no KEK version %u", id, in->kek_version);
    }
    rc = keywrap_unwrap(e->keks + (size_t)i * KEK_LEN, KEK_LEN, in->bytes, in->len, key_out, &klen);
    pthread_mutex_unlock(&e->mu);
    if (rc)
        return at_error_set(AT_EINTEGRITY,
                            "%s: key unwrap under KEK version %u failed: not wrapped by this "
                            "key folder, or damaged",
                            id, in->kek_version);
    *len = klen;
    return 0;
}

static int embedded_health(struct key_provider *kp)
{
    struct embedded *e = (struct embedded *)kp;
    return e->n > 0 ? 0 : AT_EKEYUNAVAIL;
}

int embedded_provider_rotate(struct key_provider *kp)
{
    struct embedded *e = (struct embedded *)kp;
    int rc;
    if (!kp || kp->ops != &embedded_ops)
        return at_error_set(AT_EINVAL, "embedded_provider_rotate: not an embedded provider");
    pthread_mutex_lock(&e->mu);
    uint32_t n = e->n, last = e->versions[n - 1];
    uint32_t *nv = NULL;
    uint8_t *nk = NULL;
    if (n >= EMB_MAX_VERSIONS || last == UINT32_MAX) {
        rc = at_error_set(
            AT_EINVAL, "keystore %s/" KEYSTORE_FILE " holds the most KEK versions (%u)", e->dir, n);
        goto out;
    }
    nv = malloc((size_t)(n + 1) * sizeof *nv);
    nk = secmem_alloc((size_t)(n + 1) * KEK_LEN);
    if (!nv || !nk) {
        rc = at_error_set(AT_ENOMEM, "no locked memory for a new KEK version");
        goto out;
    }
    memcpy(nv, e->versions, (size_t)n * sizeof *nv);
    memcpy(nk, e->keks, (size_t)n * KEK_LEN);
    nv[n] = last + 1;
    if ((rc = rand_key(nk + (size_t)n * KEK_LEN, KEK_LEN)) != 0) {
        at_error_set(rc, "cannot draw a KEK from the random generator");
        goto out;
    }
    if ((rc = write_keystore(e, n + 1, nv, nk, 1)) != 0)
        goto out;
    /* Persisted: the new version becomes current. */
    secmem_free(e->keks, (size_t)n * KEK_LEN);
    free(e->versions);
    e->keks = nk;
    e->versions = nv;
    e->n = n + 1;
    nk = NULL;
    nv = NULL;
out:
    secmem_free(nk, (size_t)(n + 1) * KEK_LEN);
    free(nv);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static const struct key_provider_ops embedded_ops = {
    .iVersion = 1,
    .name = "embedded",
    .key_id = embedded_key_id,
    .current_version = embedded_current_version,
    .wrap = embedded_wrap,
    .unwrap = embedded_unwrap,
    .health = embedded_health,
    .destroy = embedded_destroy,
};
