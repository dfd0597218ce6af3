/*
 * embedded.h — the embedded key provider: a keystore in a key folder that is
 * separate from the data folder, sealed by a root key.
 *
 * Key folder layout (folder mode 0700, owned by the running user):
 *   root.key   mode 0600. One line "atrest-root-key-v1 <base64 of 32 bytes>".
 *              Absent when the root key comes from the environment variable
 *              ATREST_ROOT_KEY (same base64 form, no prefix).
 *   keystore   mode 0600. The KEK versions, sealed with AES-256-GCM under the
 *              root key (format documented in embedded.c).
 *
 * Refuses (AT_EKEYDIR / AT_EPERM_OPEN, with a detail naming the path):
 *   - a key folder equal to, inside, or containing the data folder;
 *   - a key folder, root.key or keystore readable or writable by group or
 *     others, or owned by another user;
 *   - a missing key folder or keystore unless create is set (create never
 *     overwrites an existing keystore or root key).
 */
#ifndef ATREST_KEYS_EMBEDDED_H
#define ATREST_KEYS_EMBEDDED_H

#include "keys/provider.h"

/* Open the keystore in key_dir. data_dir is the data folder it serves (used
 * only for the placement check; it need not exist yet). With create set, a
 * missing key folder/keystore is created with a fresh root key and KEK v1. */
int embedded_provider_open(const char *key_dir, const char *data_dir, int create,
                           struct key_provider **out) AT_WUR;

/* Add a new KEK version and make it current; older versions still unwrap. */
int embedded_provider_rotate(struct key_provider *kp) AT_WUR;

#endif
