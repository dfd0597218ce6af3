/*
 * provider.h — the key-provider interface.
 *
 * A key provider holds a key-encryption key (KEK) that atrest never sees;
 * it only asks the provider to wrap and unwrap data-encryption keys (DEKs).
 * The embedded provider (embedded.c, keystore in a separate key folder), the
 * key service client (later) and KMIP (later) all implement this vtable.
 *
 * Like sqlite3_vfs, the ops table carries iVersion: methods are only ever
 * appended, and a caller checks iVersion before using a newer one.
 *
 * Duties on failure, for every method: return a nonzero error (error.h),
 * leave *out untouched or wiped, record a detail with at_error_set(), and
 * never put key bytes into that detail.
 */
#ifndef ATREST_KEYS_PROVIDER_H
#define ATREST_KEYS_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define KP_WRAPPED_MAX 512 /* room for RSA-3072 OAEP output */
#define KP_KEY_MAX     64  /* largest key a provider unwraps */
#define KP_KEY_ID_MAX  256 /* longest key identity string, NUL included */

/* A wrapped key and the KEK version that wrapped it. */
struct kp_wrapped {
    uint32_t kek_version;
    uint16_t len;
    uint8_t bytes[KP_WRAPPED_MAX];
};

struct key_provider;

struct key_provider_ops {
    int iVersion;     /* 1 */
    const char *name; /* "embedded", "kms", ... */

    /* Version 1 methods. */

    /* A stable identity of the provider's KEK (not of a version), recorded
     * in the keyring so a data folder opened with the wrong keys says so:
     * e.g. "embedded:5f0c...". Writes a NUL-terminated string into buf. */
    int (*key_id)(struct key_provider *kp, char *buf, size_t n);

    /* The KEK version that wrap() uses now. */
    int (*current_version)(struct key_provider *kp, uint32_t *version);

    /* Wrap key[0..len) under the current KEK version. */
    int (*wrap)(struct key_provider *kp, const uint8_t *key, size_t len, struct kp_wrapped *out);

    /* Unwrap in (with the KEK version it names) into key_out, which the
     * caller allocated with secmem_alloc(KP_KEY_MAX); *len receives the size.
     * AT_EINTEGRITY: not wrapped by this KEK, or damaged. AT_ENOTFOUND: that
     * KEK version is unknown. AT_EKEYUNAVAIL: provider unreachable/disabled. */
    int (*unwrap)(struct key_provider *kp, const struct kp_wrapped *in, uint8_t *key_out,
                  size_t *len);

    /* 0 when the provider can wrap and unwrap now, else why not. */
    int (*health)(struct key_provider *kp);

    /* Wipe everything and free kp. */
    void (*destroy)(struct key_provider *kp);
};

/* Every provider struct embeds this first. */
struct key_provider {
    const struct key_provider_ops *ops;
};

static inline int kp_key_id(struct key_provider *kp, char *buf, size_t n)
{
    return kp->ops->key_id(kp, buf, n);
}
static inline int kp_current_version(struct key_provider *kp, uint32_t *v)
{
    return kp->ops->current_version(kp, v);
}
static inline int kp_wrap(struct key_provider *kp, const uint8_t *k, size_t n,
                          struct kp_wrapped *out)
{
    return kp->ops->wrap(kp, k, n, out);
}
static inline int kp_unwrap(struct key_provider *kp, const struct kp_wrapped *in, uint8_t *out,
                            size_t *n)
{
    return kp->ops->unwrap(kp, in, out, n);
}
static inline int kp_health(struct key_provider *kp)
{
    return kp->ops->health(kp);
}
static inline void kp_destroy(struct key_provider *kp)
{
    if (kp)
        kp->ops->destroy(kp);
}

#endif
