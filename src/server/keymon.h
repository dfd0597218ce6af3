/*
 * keymon.h — atrestd's key monitor: watches the keys the account's layers
 * are wrapped by, and decides whether data requests may be served.
 *
 * A thread checks each remote layer (a key service: --kms for layer 0,
 * --cmk for layer 1) every check_s seconds by unwrapping the wrapped values
 * the keyring actually depends on (keyring_layer_check). Per layer:
 *
 *                check ok                      refused (disabled, access
 *        ┌──────────────────┐                  revoked, deleted, wrong key)
 *        ▼                  │             ┌──────────────────────────────┐
 *   ┌─────────┐ unreachable ┌─────────┐   │                              ▼
 *   │   OK    │────────────▶│  GRACE  │───┼── grace_s passed ──▶ ┌──────────┐
 *   └─────────┘             └─────────┘   │                      │   DOWN   │
 *     ▲   │ refused                       │                      └──────────┘
 *     │   └───────────────────────────────┘                           │
 *     └──────────── check ok (layer 1: keyring_layer_restore) ────────┘
 *
 * Entering DOWN on layer 1 (the customer-managed key) drops the layer's
 * DEKs from memory at once (keyring_layer_drop); leaving it unwraps them
 * again. Layer 0's DEKs stay cached (the service is ours); DOWN there only
 * fails requests closed. While unreachable the thread retries with backoff
 * (1 s doubling up to check_s). In OK it also asks the provider for its
 * current KEK version and rewraps the layer when it changed (rotation).
 *
 * Answers (keymon_refuse): layer 1 DOWN → 403 with Cosmos's CMK substatus
 * (4002 disabled or access revoked, 4003 deleted, 4004 unreachable, 4005
 * not the key that wrapped the data, 4008 other); else layer 0 DOWN → 503.
 */
#ifndef ATREST_SERVER_KEYMON_H
#define ATREST_SERVER_KEYMON_H

#include <jansson.h>

#include "common/error.h"
#include "keys/keyring.h"

struct keymon;

struct keymon_options {
    struct keyring *kr;
    int remote[2];              /* layer l is held by a key service: monitor it */
    int check_s;                /* seconds between checks (default 30) */
    int grace_s;                /* how long an unreachable service is tolerated (default 300) */
    int rewrap;                 /* rewrap a layer when its KEK gets a new current version */
    struct key_provider *kp[2]; /* the layers' providers (kp[1] NULL: one layer) */
};

int keymon_start(const struct keymon_options *o, struct keymon **out) AT_WUR;
void keymon_stop(struct keymon *m);

/* 0 when data requests may be served; else the HTTP status to answer with
 * (403, 503), its substatus and message. */
int keymon_refuse(struct keymon *m, int *substatus, char *msg, size_t n);

/* Account properties for GET /: customerManagedKeyStatus (when the account
 * has a customer-managed key) and atrestKeyLayers (every layer's key id,
 * state, cause and KEK versions). */
void keymon_account_props(struct keymon *m, json_t *account);

/* Run one round of checks now (tests, and after a failure seen in a
 * request). */
void keymon_poke(struct keymon *m);

#endif
