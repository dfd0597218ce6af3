/*
 * keysetup.h — atrestd's key providers, chosen from the settings and from
 * what the data folder's keyring records (keysetup.c; linked into atrestd
 * only, with the key-service client).
 *
 *   data folder   settings             layer 0 (outer)          layer 1 (inner)
 *   new           (none)               embedded (--key-dir)     none
 *   new           --kms U              U/keys/<--kms-key>       none
 *   new           --cmk C              as above                 C
 *   existing      as recorded          must match the keyring   must match, or be omitted
 *
 * Refusals (a clear line on stderr, exit 2): --kms on an account made with
 * the embedded provider and the reverse; --kms or --kms-key naming another
 * key than the keyring's; --cmk on an existing account unless it names the
 * key the keyring was made with; a key that cannot wrap and unwrap now.
 */
#ifndef ATREST_SERVER_KEYSETUP_H
#define ATREST_SERVER_KEYSETUP_H

#include "keys/provider.h"
#include "server/server.h"

struct keysetup {
    struct key_provider *kp[2]; /* outer, inner (NULL: one layer) */
    int remote[2];              /* layer l is held by a key service */
    int create;                 /* the data folder has no keyring yet */
};

/* 0, or -1 after printing why to stderr. */
int keysetup_open(const struct config *cfg, struct keysetup *ks);
void keysetup_close(struct keysetup *ks);

#endif
