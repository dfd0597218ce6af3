/*
 * kmsprov.h — a key provider (provider.h) over atrest-kms, or any service
 * that speaks Key Vault's keys API, through src/kms/client.h.
 *
 * One provider is one key in one service: its identity (kp_key_id) is the
 * key's URL without a version, https://HOST:PORT/keys/NAME, which the
 * keyring records per layer. atrestd uses one for the service KEK (layer 0,
 * --kms) and one for the customer-managed key (layer 1, --cmk).
 *
 * Wrapped values. The service answers a wrap with the key version it used
 * (a 32-hex-digit id); unwrapping needs that exact version. So kp_wrapped
 * carries it in its bytes:
 *
 *   offset  size  field
 *   0       1     algorithm: 1 A256KW, 2 RSA-OAEP-256
 *   1       1     n, length of the version id (1..64)
 *   2       n     version id, ASCII (lower-case hex)
 *   2+n     ...   the service's wrapped value
 *
 * and kek_version holds the first 8 hex digits of the version id as a
 * number (never 0): a short name for logs and status, not used to unwrap.
 *
 * Errors (provider.h's contract): AT_EKEYUNAVAIL when the service refused
 * (disabled or expired version, no permission, no such key or version) or
 * could not be reached; AT_EINTEGRITY when the service says the value was
 * not wrapped by that key version (400). kp_last_status() (provider.h,
 * iVersion 2) tells the causes apart after a failure; kp_wrapped_version()
 * names the version id a wrapped value needs. Every method is thread-safe; each call is
 * one HTTPS request (client.h), so none is made while a caller holds a lock
 * it cannot afford to hold for the client's timeout.
 */
#ifndef ATREST_KEYS_KMSPROV_H
#define ATREST_KEYS_KMSPROV_H

#include <stddef.h>

#include "keys/provider.h"

struct kp_kms_options {
    const char *url;      /* https://HOST:PORT of the service */
    const char *key_name; /* the key, [0-9a-zA-Z-]{1,127} */
    const char *token;    /* bearer token (copied into locked memory) */
    const char *ca_file;  /* trusted certificates (PEM); NULL: system roots */
    int insecure;         /* do not verify the service's certificate (tests) */
    int timeout_ms;       /* per request; 0: 5000 */
    int create;           /* create the key (oct-HSM) when the service has none */
    int no_check;         /* skip the round trip at open (status tools) */
};

/* Open the provider and check that the key can wrap and unwrap now (one
 * round trip of a random value). With create set and the key missing (404),
 * it is created first (needs an admin token). Errors: AT_EINVAL (bad URL or
 * name), AT_EKEYUNAVAIL (refused; detail says why), AT_EIO (unreachable). */
int kp_kms_open(const struct kp_kms_options *o, struct key_provider **out) AT_WUR;

/* Split a key URL https://HOST:PORT/keys/NAME[/VERSION] into the service URL
 * (https://HOST:PORT) and the name. AT_EINVAL when it is not one. */
int kp_kms_parse_key_url(const char *key_url, char *base, size_t base_n, char *name,
                         size_t name_n) AT_WUR;

/* Whether kp is a kms provider. */
int kp_is_kms(const struct key_provider *kp);

/* The key's current version id (one wrap of a random value: needs only the
 * wrapKey permission). out: 65 bytes. */
int kp_kms_current_version_id(struct key_provider *kp, char out[65]) AT_WUR;

#endif
