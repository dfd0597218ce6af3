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

/* Why the last call of a provider failed (iVersion >= 2), for callers that
 * must tell a revoked key from an unreachable service. */
enum kp_cause {
    KP_CAUSE_OK = 0,      /* the last call succeeded */
    KP_CAUSE_DISABLED,    /* the key (version) is disabled, expired or not yet valid */
    KP_CAUSE_DENIED,      /* the provider refuses us: access removed, bad credential */
    KP_CAUSE_DELETED,     /* the key or version no longer exists */
    KP_CAUSE_WRONG_KEY,   /* the value was not wrapped by this key */
    KP_CAUSE_UNREACHABLE, /* no answer: down, network, TLS */
    KP_CAUSE_OTHER,       /* anything else */
};

struct kp_status {
    enum kp_cause cause;
    int http;      /* the provider's HTTP status, 0 when none */
    char code[64]; /* the provider's error code, e.g. "KeyDisabled" */
};

struct key_provider_ops {
    int iVersion;     /* 1 or 2 */
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

    /* Version 2 methods. */

    /* The cause of the last failed call (KP_CAUSE_OK after a success). */
    void (*last_status)(struct key_provider *kp, struct kp_status *st);

    /* A printable name of the KEK version that wrapped w (for status);
     * AT_EINTEGRITY when w is not one of this provider's values. */
    int (*wrapped_version)(struct key_provider *kp, const struct kp_wrapped *w, char *buf,
                           size_t n);
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
/* The cause of the last failure; KP_CAUSE_OTHER for version-1 providers. */
static inline void kp_last_status(struct key_provider *kp, struct kp_status *st)
{
    if (kp->ops->iVersion >= 2 && kp->ops->last_status) {
        kp->ops->last_status(kp, st);
    } else {
        st->cause = KP_CAUSE_OTHER;
        st->http = 0;
        st->code[0] = '\0';
    }
}
/* The version name of w; version-1 providers: the number in kek_version. */
int kp_wrapped_version(struct key_provider *kp, const struct kp_wrapped *w, char *buf,
                       size_t n) AT_WUR;
const char *kp_cause_name(enum kp_cause c); /* "disabled", "access revoked", ... */
static inline void kp_destroy(struct key_provider *kp)
{
    if (kp)
        kp->ops->destroy(kp);
}

#endif
