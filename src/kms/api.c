/*
 * api.c — the Azure Key Vault keys REST subset (see api.h, docs/kms.md).
 *
 *   POST   /keys/{name}/create                 create (a new key, or a new version)
 *   GET    /keys                               list keys
 *   GET    /keys/{name}[/{version}]            get (version empty: current)
 *   GET    /keys/{name}/versions               list versions
 *   PATCH  /keys/{name}[/{version}]            update enabled, nbf, exp, key_ops, tags
 *   POST   /keys/{name}/rotate                 new version like the current one
 *   DELETE /keys/{name}                        soft delete
 *   POST   /keys/{name}/{version}/wrapkey      A256KW (oct), RSA-OAEP-256 / RSA-OAEP (RSA)
 *   POST   /keys/{name}/{version}/unwrapkey
 *   GET    /deletedkeys[/{name}]               list / get deleted keys
 *   POST   /deletedkeys/{name}/recover         recover
 *   DELETE /deletedkeys/{name}                 purge (403 under purge protection)
 *
 * Order of checks for every request: bearer token (401 with the challenge),
 * api-version (400), route (404/405), access (403: a non-admin is refused
 * before the key is looked up, so a refusal says nothing about whether the
 * key exists), then the operation. Exactly one audit entry per request.
 */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/secmem.h"
#include "kms/api.h"

#define MAX_SEGS 5

struct ctx {
    struct kms_server *s;
    const struct kms_request *rq;
    struct kms_response *rs;
    struct kms_identity id;
    int authed;
    const char *op;
    char key[KMS_NAME_MAX + 1];        /* "" when the request names none */
    char version[KMS_VERSION_HEX + 1]; /* "" when none */
};

static void set_version(struct ctx *c, const char *v)
{
    kms_copy(c->version, sizeof c->version, v);
}

void kms_wipe_free(void *p)
{
    if (!p)
        return;
    secmem_wipe(p, malloc_usable_size(p));
    free(p);
}

void kms_api_challenge(const struct kms_server *s, char *out, size_t cap)
{
    snprintf(out, cap, "Bearer authorization=\"%s\", resource=\"https://vault.azure.net\"", s->url);
}

/* ---- responses -------------------------------------------------------------- */

static void reply(struct ctx *c, int status, json_t *body)
{
    c->rs->status = status;
    if (body) {
        c->rs->body = json_dumps(body, JSON_COMPACT);
        c->rs->len = c->rs->body ? strlen(c->rs->body) : 0;
        if (!c->rs->body)
            c->rs->status = 500;
        json_decref(body);
    }
}

static void fail(struct ctx *c, int status, const char *code, const char *inner, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void fail(struct ctx *c, int status, const char *code, const char *inner, const char *fmt,
                 ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg);
    if (e && inner)
        json_object_set_new(e, "innererror", json_pack("{s:s}", "code", inner));
    reply(c, status, json_pack("{s:o*}", "error", e));
}

static void not_found(struct ctx *c, const char *name, const char *version)
{
    fail(c, 404, "KeyNotFound", NULL,
         "A key with (name/id) %s%s%s was not found in this key vault. If you recently deleted "
         "this key you may be able to recover it using the correct recovery command.",
         name, version && *version ? "/" : "", version ? version : "");
}

static void denied(struct ctx *c, const char *perm)
{
    fail(c, 403, "Forbidden", "AccessDenied",
         "The identity '%s' does not have keys %s permission on key '%s' in this key service.",
         c->id.name, perm, c->key[0] ? c->key : "*");
}

static void internal(struct ctx *c, int rc)
{
    fprintf(stderr, "atrest-kms: %s failed: %s\n", c->op, at_error_detail());
    fail(c, 500, "InternalServerError", NULL, "The key service could not complete the request (%s).",
         at_strerror(rc));
}

static const char *result_word(int status)
{
    switch (status) {
    case 200:
    case 204:
        return "ok";
    case 400:
        return "bad-request";
    case 401:
        return "unauthorized";
    case 403:
        return "denied";
    case 404:
        return "not-found";
    case 405:
        return "bad-method";
    case 409:
        return "conflict";
    default:
        return "error";
    }
}

/* ---- JSON of keys ------------------------------------------------------------ */

static const struct {
    const char *name;
    unsigned bit;
} OPS[] = {{"encrypt", KMS_OP_ENCRYPT}, {"decrypt", KMS_OP_DECRYPT}, {"sign", KMS_OP_SIGN},
           {"verify", KMS_OP_VERIFY},   {"wrapKey", KMS_OP_WRAP},     {"unwrapKey", KMS_OP_UNWRAP}};
#define NOPS 6

static const char *kty_name(const struct kms_version *kv)
{
    if (kv->kty == KMS_KTY_OCT)
        return kv->hsm ? "oct-HSM" : "oct";
    return kv->hsm ? "RSA-HSM" : "RSA";
}

static void kid(const struct ctx *c, const char *coll, const char *name, const char *version,
                char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s%s%s", c->s->url, coll, name, version ? "/" : "",
             version ? version : "");
}

static json_t *attributes(const struct ctx *c, const struct kms_version *kv)
{
    int pp = (c->s->vault->flags & KMS_VAULT_PURGE_PROTECTION) != 0;
    json_t *a = json_pack("{s:b,s:I,s:I,s:s,s:i}", "enabled", kv->enabled, "created",
                          (json_int_t)kv->created, "updated", (json_int_t)kv->updated,
                          "recoveryLevel", pp ? "Recoverable" : "Recoverable+Purgeable",
                          "recoverableDays", (int)(KMS_RETENTION_S / 86400));
    if (a && kv->nbf)
        json_object_set_new(a, "nbf", json_integer(kv->nbf));
    if (a && kv->exp)
        json_object_set_new(a, "exp", json_integer(kv->exp));
    return a;
}

static void add_tags(json_t *o, const struct kms_version *kv)
{
    json_t *t = kv->tags ? json_loads(kv->tags, 0, NULL) : NULL;
    if (t)
        json_object_set_new(o, "tags", t);
}

static void add_deleted(const struct ctx *c, json_t *o, const struct kms_key *k)
{
    char rid[600];
    kid(c, "deletedkeys", k->name, NULL, rid, sizeof rid);
    json_object_set_new(o, "recoveryId", json_string(rid));
    json_object_set_new(o, "deletedDate", json_integer(k->deleted_on));
    json_object_set_new(o, "scheduledPurgeDate", json_integer(k->purge_on));
}

static json_t *bundle(const struct ctx *c, const struct kms_key *k, const struct kms_version *kv)
{
    char id[600];
    kid(c, "keys", k->name, kv->id, id, sizeof id);
    json_t *ops = json_array();
    for (int i = 0; i < NOPS; i++)
        if (kv->ops & OPS[i].bit)
            json_array_append_new(ops, json_string(OPS[i].name));
    json_t *jwk = json_pack("{s:s,s:s,s:o}", "kid", id, "kty", kty_name(kv), "key_ops", ops);
    if (jwk && kv->kty == KMS_KTY_RSA) {
        json_object_set_new(jwk, "n", json_string(kv->n_b64));
        json_object_set_new(jwk, "e", json_string(kv->e_b64));
    }
    json_t *o = json_pack("{s:o*,s:o*}", "key", jwk, "attributes", attributes(c, kv));
    if (o) {
        add_tags(o, kv);
        if (k->deleted)
            add_deleted(c, o, k);
    }
    return o;
}

static json_t *item(const struct ctx *c, const struct kms_key *k, const struct kms_version *kv,
                    int versioned)
{
    char id[600];
    kid(c, "keys", k->name, versioned ? kv->id : NULL, id, sizeof id);
    json_t *o = json_pack("{s:s,s:o*}", "kid", id, "attributes", attributes(c, kv));
    if (o) {
        add_tags(o, kv);
        if (k->deleted)
            add_deleted(c, o, k);
    }
    return o;
}

static void reply_list(struct ctx *c, json_t *arr)
{
    reply(c, 200, json_pack("{s:o,s:n}", "value", arr, "nextLink"));
}

/* ---- request bodies ---------------------------------------------------------- */

static json_t *body_object(struct ctx *c)
{
    json_error_t err;
    json_t *o = c->rq->body && c->rq->body_len
                    ? json_loadb(c->rq->body, c->rq->body_len, JSON_REJECT_DUPLICATES, &err)
                    : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        fail(c, 400, "BadParameter", NULL, "The request body must be a JSON object.");
        return NULL;
    }
    return o;
}

static int parse_ops(struct ctx *c, json_t *arr, unsigned *out)
{
    size_t i;
    json_t *v;
    unsigned bits = 0;
    if (!json_is_array(arr))
        goto bad;
    json_array_foreach(arr, i, v)
    {
        int j = 0;
        while (j < NOPS && !(json_is_string(v) && strcmp(json_string_value(v), OPS[j].name) == 0))
            j++;
        if (j == NOPS)
            goto bad;
        bits |= OPS[j].bit;
    }
    *out = bits;
    return 0;
bad:
    fail(c, 400, "BadParameter", NULL,
         "key_ops must be an array of encrypt, decrypt, sign, verify, wrapKey, unwrapKey.");
    return -1;
}

/* attributes {enabled, nbf, exp} and tags, each optional. */
static int parse_attrs(struct ctx *c, json_t *o, int *enabled, int64_t *nbf, int64_t *exp,
                       char **tags)
{
    json_t *a = json_object_get(o, "attributes");
    if (a && !json_is_null(a)) {
        if (!json_is_object(a))
            goto bad;
        json_t *e = json_object_get(a, "enabled"), *n = json_object_get(a, "nbf"),
               *x = json_object_get(a, "exp");
        if ((e && !json_is_boolean(e) && !json_is_null(e)) ||
            (n && !json_is_integer(n) && !json_is_null(n)) ||
            (x && !json_is_integer(x) && !json_is_null(x)))
            goto bad;
        if (json_is_boolean(e))
            *enabled = json_is_true(e);
        if (json_is_integer(n))
            *nbf = json_integer_value(n);
        if (json_is_integer(x))
            *exp = json_integer_value(x);
    }
    json_t *t = json_object_get(o, "tags");
    if (t && !json_is_null(t)) {
        const char *k;
        json_t *v;
        if (!json_is_object(t) || json_object_size(t) > 15)
            goto bad_tags;
        json_object_foreach(t, k, v)
        {
            if (!json_is_string(v) || strlen(k) > 512 || json_string_length(v) > 256)
                goto bad_tags;
        }
        char *text = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text || strlen(text) > KMS_TAGS_MAX) {
            free(text);
            goto bad_tags;
        }
        free(*tags);
        *tags = text;
    }
    return 0;
bad:
    fail(c, 400, "BadParameter", NULL,
         "attributes must be an object with boolean enabled and integer nbf and exp.");
    return -1;
bad_tags:
    fail(c, 400, "BadParameter", NULL, "tags must be an object of at most 15 string values.");
    return -1;
}

/* ---- operations --------------------------------------------------------------- */

static void op_create(struct ctx *c, const char *name)
{
    json_t *o = body_object(c);
    char *tags = NULL;
    uint8_t *mat = NULL;
    size_t mat_len = 0;
    if (!o)
        return;
    struct kms_new_version nv = {.enabled = 1};
    const char *kty = json_string_value(json_object_get(o, "kty"));
    json_t *size = json_object_get(o, "key_size"), *ops = json_object_get(o, "key_ops");
    json_t *pubexp = json_object_get(o, "public_exponent");
    if (!kty) {
        fail(c, 400, "BadParameter", NULL, "Property kty is required.");
        goto out;
    }
    if (strcmp(kty, "oct-HSM") == 0 || strcmp(kty, "oct") == 0) {
        nv.kty = KMS_KTY_OCT;
        nv.bits = 256;
        nv.ops = KMS_OP_ENCRYPT | KMS_OP_DECRYPT | KMS_OP_WRAP | KMS_OP_UNWRAP;
    } else if (strcmp(kty, "RSA-HSM") == 0 || strcmp(kty, "RSA") == 0) {
        nv.kty = KMS_KTY_RSA;
        nv.bits = 3072;
        nv.ops = KMS_OP_ENCRYPT | KMS_OP_DECRYPT | KMS_OP_SIGN | KMS_OP_VERIFY | KMS_OP_WRAP |
                 KMS_OP_UNWRAP;
    } else {
        fail(c, 400, "BadParameter", NULL,
             "Key type %.32s is not supported: atrest-kms creates oct-HSM, oct (AES-256), RSA "
             "and RSA-HSM keys.",
             kty);
        goto out;
    }
    nv.hsm = strstr(kty, "-HSM") != NULL;
    if (size && !json_is_null(size)) {
        json_int_t b = json_is_integer(size) ? json_integer_value(size) : -1;
        int ok = nv.kty == KMS_KTY_OCT ? b == 256 : (b == 2048 || b == 3072 || b == 4096);
        if (!ok) {
            fail(c, 400, "BadParameter", NULL, "key_size %s is not supported for %s keys (%s).",
                 json_is_integer(size) ? "given" : "must be an integer", kty,
                 nv.kty == KMS_KTY_OCT ? "256" : "2048, 3072 or 4096");
            goto out;
        }
        nv.bits = (unsigned)b;
    }
    if (pubexp && !json_is_null(pubexp) &&
        !(json_is_integer(pubexp) && json_integer_value(pubexp) == 65537)) {
        fail(c, 400, "BadParameter", NULL, "public_exponent must be 65537.");
        goto out;
    }
    if (ops && !json_is_null(ops) && parse_ops(c, ops, &nv.ops) != 0)
        goto out;
    if (parse_attrs(c, o, &nv.enabled, &nv.nbf, &nv.exp, &tags) != 0)
        goto out;
    nv.tags = tags;
    /* Key generation (slow for RSA) runs outside the vault lock. */
    int rc = kms_keygen(nv.kty, nv.bits, &mat, &mat_len);
    if (rc) {
        internal(c, rc);
        goto out;
    }
    struct kms_vault *v = c->s->vault;
    pthread_mutex_lock(&v->mu);
    struct kms_version *kv = NULL;
    rc = kms_vault_add_version(v, name, &nv, mat, mat_len, &kv);
    if (rc == AT_EEXIST)
        fail(c, 409, "Conflict", "ObjectIsDeletedButRecoverable",
             "Key %s is currently in a deleted but recoverable state, and its name cannot be "
             "reused; in this state, the key can only be recovered or purged.",
             name);
    else if (rc == AT_EINVAL)
        fail(c, 400, "BadParameter", NULL, "%s", at_error_detail());
    else if (rc)
        internal(c, rc);
    else {
        set_version(c, kv->id);
        reply(c, 200, bundle(c, kms_vault_find(v, name), kv));
    }
    pthread_mutex_unlock(&v->mu);
out:
    secmem_free(mat, mat_len);
    free(tags);
    json_decref(o);
}

/* Caller holds the vault lock. A live key, or a reply (404). */
static struct kms_key *live_key(struct ctx *c, const char *name)
{
    struct kms_key *k = kms_vault_find(c->s->vault, name);
    if (!k || k->deleted) {
        not_found(c, name, NULL);
        return NULL;
    }
    return k;
}

static struct kms_version *live_version(struct ctx *c, struct kms_key *k, const char *version)
{
    struct kms_version *kv = kms_key_version(k, version);
    if (!kv)
        not_found(c, k->name, version);
    else
        set_version(c, kv->id);
    return kv;
}

static void op_get(struct ctx *c, const char *name, const char *version)
{
    struct kms_key *k = live_key(c, name);
    struct kms_version *kv = k ? live_version(c, k, version) : NULL;
    if (kv)
        reply(c, 200, bundle(c, k, kv));
}

static void op_versions(struct ctx *c, const char *name)
{
    struct kms_key *k = live_key(c, name);
    if (!k)
        return;
    json_t *arr = json_array();
    for (uint32_t j = 0; j < k->nver; j++)
        json_array_append_new(arr, item(c, k, &k->ver[j], 1));
    reply_list(c, arr);
}

static void op_list(struct ctx *c, int deleted)
{
    struct kms_vault *v = c->s->vault;
    json_t *arr = json_array();
    for (uint32_t i = 0; i < v->nkeys; i++) {
        struct kms_key *k = &v->keys[i];
        if (k->deleted != deleted)
            continue;
        unsigned perms = kms_policy_view_perms(&c->s->policy, k->name, c->id.name);
        if (!kms_access_allowed(&c->id, perms, deleted ? KMS_ACT_LISTALL : KMS_ACT_GET))
            continue;
        json_array_append_new(arr, item(c, k, &k->ver[k->nver - 1], 0));
    }
    reply_list(c, arr);
}

static void op_update(struct ctx *c, const char *name, const char *version)
{
    json_t *o = body_object(c);
    char *tags = NULL;
    if (!o)
        return;
    struct kms_key *k = live_key(c, name);
    struct kms_version *kv = k ? live_version(c, k, version) : NULL;
    if (!kv)
        goto out;
    int enabled = kv->enabled;
    int64_t nbf = kv->nbf, exp = kv->exp;
    unsigned ops = kv->ops;
    json_t *jops = json_object_get(o, "key_ops");
    if (jops && !json_is_null(jops) && parse_ops(c, jops, &ops) != 0)
        goto out;
    if (parse_attrs(c, o, &enabled, &nbf, &exp, &tags) != 0)
        goto out;
    struct kms_version old = *kv;
    kv->enabled = (uint8_t)(enabled != 0);
    kv->nbf = nbf;
    kv->exp = exp;
    kv->ops = (uint8_t)ops;
    kv->updated = kms_now();
    if (tags) {
        kv->tags = tags;
        tags = NULL;
    }
    int rc = kms_vault_save(c->s->vault);
    if (rc) {
        if (kv->tags != old.tags) {
            tags = kv->tags; /* freed below */
        }
        *kv = old;
        internal(c, rc);
        goto out;
    }
    if (kv->tags != old.tags)
        free(old.tags);
    reply(c, 200, bundle(c, k, kv));
out:
    free(tags);
    json_decref(o);
}

static void op_rotate(struct ctx *c, const char *name)
{
    struct kms_vault *v = c->s->vault;
    struct kms_key *k = live_key(c, name);
    if (!k)
        return;
    const struct kms_version *cur = &k->ver[k->nver - 1];
    struct kms_new_version nv = {.kty = cur->kty, .hsm = cur->hsm, .bits = cur->bits,
                                 .ops = cur->ops, .enabled = 1, .tags = cur->tags};
    char *tags = cur->tags ? strdup(cur->tags) : NULL;
    nv.tags = tags;
    uint8_t *mat = NULL;
    size_t len = 0;
    /* Rotation holds the lock through key generation: rare, admin only. */
    int rc = kms_keygen(nv.kty, nv.bits, &mat, &len);
    struct kms_version *kv = NULL;
    if (rc == 0)
        rc = kms_vault_add_version(v, name, &nv, mat, len, &kv);
    if (rc == AT_EINVAL)
        fail(c, 400, "BadParameter", NULL, "%s", at_error_detail());
    else if (rc)
        internal(c, rc);
    else {
        set_version(c, kv->id);
        reply(c, 200, bundle(c, kms_vault_find(v, name), kv));
    }
    secmem_free(mat, len);
    free(tags);
}

static void op_delete(struct ctx *c, const char *name)
{
    struct kms_key *k = live_key(c, name);
    if (!k)
        return;
    set_version(c, k->ver[k->nver - 1].id);
    int rc = kms_vault_delete(c->s->vault, k);
    if (rc)
        internal(c, rc);
    else
        reply(c, 200, bundle(c, k, &k->ver[k->nver - 1]));
}

static struct kms_key *deleted_key(struct ctx *c, const char *name)
{
    struct kms_key *k = kms_vault_find(c->s->vault, name);
    if (!k || !k->deleted) {
        fail(c, 404, "KeyNotFound", NULL, "Deleted Key not found: %s", name);
        return NULL;
    }
    return k;
}

static void op_get_deleted(struct ctx *c, const char *name)
{
    struct kms_key *k = deleted_key(c, name);
    if (k)
        reply(c, 200, bundle(c, k, &k->ver[k->nver - 1]));
}

static void op_recover(struct ctx *c, const char *name)
{
    struct kms_key *k = deleted_key(c, name);
    if (!k)
        return;
    int rc = kms_vault_recover(c->s->vault, k);
    if (rc)
        internal(c, rc);
    else
        reply(c, 200, bundle(c, k, &k->ver[k->nver - 1]));
}

static void op_purge(struct ctx *c, const char *name)
{
    struct kms_key *k = deleted_key(c, name);
    if (!k)
        return;
    if (c->s->vault->flags & KMS_VAULT_PURGE_PROTECTION) {
        fail(c, 403, "Forbidden", "PurgeProtected",
             "Operation \"purge\" is not allowed because purge protection is enabled for this "
             "key service. Deleted keys are kept for %d days.",
             (int)(KMS_RETENTION_S / 86400));
        return;
    }
    int rc = kms_vault_purge(c->s->vault, k);
    if (rc) {
        internal(c, rc);
        return;
    }
    /* A later key of the same name must not inherit this one's grants. */
    if (kms_policy_drop_key(&c->s->dir, name) != 0)
        fprintf(stderr, "atrest-kms: key %s purged but its grants remain: %s\n", name,
                at_error_detail());
    c->rs->status = 204;
}

static int parse_alg(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "A256KW") == 0)
        return KMS_ALG_A256KW;
    if (strcmp(s, "RSA-OAEP-256") == 0)
        return KMS_ALG_RSA_OAEP_256;
    if (strcmp(s, "RSA-OAEP") == 0)
        return KMS_ALG_RSA_OAEP;
    return 0;
}

static void op_wrap(struct ctx *c, const char *name, const char *version, int unwrap)
{
    const char *opname = unwrap ? "unwrapKey" : "wrapKey";
    json_t *o = body_object(c);
    uint8_t *in = NULL, *out = NULL;
    size_t in_cap = 0, in_len = 0, out_len = 0;
    char *b64 = NULL;
    if (!o)
        return;
    struct kms_key *k = live_key(c, name);
    struct kms_version *kv = k ? live_version(c, k, version) : NULL;
    if (!kv)
        goto out;
    const char *algs = json_string_value(json_object_get(o, "alg"));
    json_t *jv = json_object_get(o, "value");
    int alg = parse_alg(algs);
    if (!alg) {
        fail(c, 400, "BadParameter", NULL,
             "alg must be A256KW (oct keys), RSA-OAEP-256 or RSA-OAEP (RSA keys).");
        goto out;
    }
    if (!json_is_string(jv) || json_string_length(jv) > 2 * KMS_WRAP_MAX) {
        fail(c, 400, "BadParameter", NULL, "value must be a base64url string.");
        goto out;
    }
    in_cap = json_string_length(jv) * 3 / 4 + 3;
    in = secmem_alloc(in_cap);
    out = secmem_alloc(KMS_WRAP_MAX);
    if (!in || !out) {
        internal(c, AT_ENOMEM);
        goto out;
    }
    if (kms_b64url_decode(json_string_value(jv), json_string_length(jv), in, &in_len) != 0) {
        fail(c, 400, "BadParameter", NULL, "value must be a base64url string.");
        goto out;
    }
    int64_t now = kms_now();
    unsigned need = unwrap ? KMS_OP_UNWRAP : KMS_OP_WRAP;
    if (!kv->enabled) {
        fail(c, 403, "Forbidden", "KeyDisabled", "Operation %s is not allowed on a disabled key.",
             opname);
        goto out;
    }
    if (kv->nbf && now < kv->nbf) {
        fail(c, 403, "Forbidden", "KeyNotYetValid",
             "Operation %s is not allowed before the key's activation time (nbf).", opname);
        goto out;
    }
    if (!unwrap && kv->exp && now >= kv->exp) {
        fail(c, 403, "Forbidden", "KeyExpired", "Operation %s is not allowed on an expired key.",
             opname);
        goto out;
    }
    if (!(kv->ops & need)) {
        fail(c, 403, "Forbidden", "OperationNotAllowed",
             "Operation %s is not permitted by this key's key_ops.", opname);
        goto out;
    }
    int rc = unwrap ? kms_vault_unwrap(c->s->vault, kv, alg, in, in_len, out, &out_len)
                    : kms_vault_wrap(c->s->vault, kv, alg, in, in_len, out, &out_len);
    if (rc == AT_EINVAL || rc == AT_EINTEGRITY) {
        fail(c, 400, "BadParameter", NULL, "%s", at_error_detail());
        goto out;
    }
    if (rc) {
        internal(c, rc);
        goto out;
    }
    char id[600];
    kid(c, "keys", k->name, kv->id, id, sizeof id);
    b64 = secmem_alloc(KMS_B64URL_LEN(out_len) + 1);
    if (!b64) {
        internal(c, AT_ENOMEM);
        goto out;
    }
    kms_b64url_encode(out, out_len, b64);
    reply(c, 200, json_pack("{s:s,s:s}", "kid", id, "value", b64));
out:
    if (b64)
        secmem_free(b64, KMS_B64URL_LEN(out_len) + 1);
    secmem_free(in, in_cap);
    secmem_free(out, KMS_WRAP_MAX);
    json_decref(o);
}

/* ---- routing ------------------------------------------------------------------ */

static int split(const char *path, char segs[MAX_SEGS][KMS_NAME_MAX + 2], int *n)
{
    *n = 0;
    if (path[0] != '/')
        return -1;
    const char *p = path + 1;
    if (!*p)
        return 0;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (*n == MAX_SEGS || len > KMS_NAME_MAX)
            return -1;
        memcpy(segs[*n], p, len);
        segs[(*n)++][len] = '\0';
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

static int api_version_ok(const char *v)
{
    static const char *const ok[] = {"2016-10-01", "7.0", "7.1", "7.2", "7.3",
                                     "7.4-preview.1", "7.4", "7.5-preview.1", "7.5"};
    for (size_t i = 0; v && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(v, ok[i]) == 0)
            return 1;
    return 0;
}

static int authenticate(struct ctx *c)
{
    const char *h = c->rq->authorization;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        if (kms_token_verify(c->s->secret, t, kms_now(), &c->id) == 0) {
            c->authed = 1;
            return 0;
        }
    }
    c->rs->challenge = 1;
    fail(c, 401, "Unauthorized", NULL,
         h ? "The bearer token is not valid for this key service, or it has expired."
           : "Request is missing a Bearer token.");
    return -1;
}

/* The permission check of a request on one key. */
static int allowed(struct ctx *c, enum kms_action a, const char *perm)
{
    unsigned perms = 0;
    if (!c->id.admin) {
        if (kms_policy_view_refresh(&c->s->policy, &c->s->dir) != 0)
            fprintf(stderr, "atrest-kms: the access policy cannot be read, refusing non-admins: %s\n",
                    at_error_detail());
        perms = c->key[0] ? kms_policy_view_perms(&c->s->policy, c->key, c->id.name) : 0;
    }
    if (kms_access_allowed(&c->id, perms, a))
        return 1;
    denied(c, perm);
    return 0;
}

static void route(struct ctx *c)
{
    char segs[MAX_SEGS][KMS_NAME_MAX + 2];
    int n = 0;
    const char *m = c->rq->method;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0,
        del = strcmp(m, "DELETE") == 0, patch = strcmp(m, "PATCH") == 0;
    int bad_path = split(c->rq->path, segs, &n) != 0 || n == 0 ||
                   (strcmp(segs[0], "keys") != 0 && strcmp(segs[0], "deletedkeys") != 0);
    if (bad_path)
        n = 0;
    int deleted = n && strcmp(segs[0], "deletedkeys") == 0;
    /* Trailing slash: /keys/{name}/ is the key's current version. */
    if (n >= 2 && segs[n - 1][0] == '\0')
        n--;
    const char *name = n >= 2 ? segs[1] : NULL;
    const char *third = n >= 3 ? segs[2] : NULL;
    int bad_name = name && !kms_name_ok(name);
    if (bad_name)
        name = NULL;
    kms_copy(c->key, sizeof c->key, name);
    struct kms_vault *v = c->s->vault;

    enum { NONE, LIST, GET, VERSIONS, CREATE, UPDATE, ROTATE, DELETE, WRAP, UNWRAP, LISTDEL,
           GETDEL, RECOVER, PURGE } op = NONE;
    const char *version = NULL;
    if (!deleted) {
        if (n == 1 && get)
            op = LIST;
        else if (n == 2 && get)
            op = GET;
        else if (n == 2 && patch)
            op = UPDATE;
        else if (n == 2 && del)
            op = DELETE;
        else if (n == 3 && post && strcmp(third, "create") == 0)
            op = CREATE;
        else if (n == 3 && post && strcmp(third, "rotate") == 0)
            op = ROTATE;
        else if (n == 3 && get && strcmp(third, "versions") == 0)
            op = VERSIONS;
        else if (n == 3 && (get || patch))
            op = get ? GET : UPDATE, version = third;
        else if (n == 4 && post && strcasecmp(segs[3], "wrapkey") == 0)
            op = WRAP, version = third;
        else if (n == 4 && post && strcasecmp(segs[3], "unwrapkey") == 0)
            op = UNWRAP, version = third;
    } else {
        if (n == 1 && get)
            op = LISTDEL;
        else if (n == 2 && get)
            op = GETDEL;
        else if (n == 2 && del)
            op = PURGE;
        else if (n == 3 && post && strcmp(third, "recover") == 0)
            op = RECOVER;
    }
    static const char *const names[] = {
        "unknown", "list",   "get",       "listVersions", "create",  "update", "rotate",
        "delete",  "wrapKey", "unwrapKey", "listDeleted", "getDeleted", "recover", "purge"};
    c->op = names[op];
    /* Everything answers 401 to a caller without a valid token. */
    if (authenticate(c) != 0)
        return;
    if (!api_version_ok(c->rq->api_version)) {
        fail(c, 400, "BadParameter", NULL,
             "The api-version query parameter is missing or not supported (use 7.4).");
        return;
    }
    if (bad_path) {
        fail(c, 404, "NotFound", NULL, "The requested resource does not exist.");
        return;
    }
    if (bad_name) {
        fail(c, 400, "BadParameter", NULL,
             "Key names are 1 to 127 characters of 0-9, a-z, A-Z and -.");
        return;
    }
    if (op == NONE) {
        fail(c, 405, "MethodNotAllowed", NULL, "%s is not supported on this path.", m);
        return;
    }
    if (version && version[0] && strlen(version) != KMS_VERSION_HEX) {
        not_found(c, name, version);
        return;
    }
    set_version(c, version);
    enum kms_action act = op == GET || op == VERSIONS ? KMS_ACT_GET
                          : op == WRAP                ? KMS_ACT_WRAP
                          : op == UNWRAP              ? KMS_ACT_UNWRAP
                          : op == LISTDEL             ? KMS_ACT_LISTALL
                                                      : KMS_ACT_MANAGE;
    if (op == LIST) {
        /* Everyone may list; the list holds the keys the caller may get. */
        if (!c->id.admin)
            (void)kms_policy_view_refresh(&c->s->policy, &c->s->dir);
    } else if (!allowed(c, act,
                        act == KMS_ACT_GET      ? "get"
                        : act == KMS_ACT_WRAP   ? "wrapKey"
                        : act == KMS_ACT_UNWRAP ? "unwrapKey"
                                                : c->op)) {
        return;
    }
    if (op == CREATE) {
        op_create(c, name);
        return;
    }
    pthread_mutex_lock(&v->mu);
    switch (op) {
    case LIST:
        op_list(c, 0);
        break;
    case LISTDEL:
        op_list(c, 1);
        break;
    case GET:
        op_get(c, name, version);
        break;
    case VERSIONS:
        op_versions(c, name);
        break;
    case UPDATE:
        op_update(c, name, version);
        break;
    case ROTATE:
        op_rotate(c, name);
        break;
    case DELETE:
        op_delete(c, name);
        break;
    case WRAP:
    case UNWRAP:
        op_wrap(c, name, version, op == UNWRAP);
        break;
    case GETDEL:
        op_get_deleted(c, name);
        break;
    case RECOVER:
        op_recover(c, name);
        break;
    case PURGE:
        op_purge(c, name);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&v->mu);
}

void kms_api_handle(struct kms_server *s, const struct kms_request *rq, struct kms_response *rs)
{
    struct ctx c = {.s = s, .rq = rq, .rs = rs, .op = "unknown"};
    memset(rs, 0, sizeof *rs);
    route(&c);
    if (rs->status == 0)
        rs->status = 500;
    snprintf(rs->route, sizeof rs->route, "%s", c.op);
    struct kms_audit_entry e = {
        .time_ms = kms_now_ms(),
        .identity = c.authed ? c.id.name : NULL,
        .key = c.key[0] ? c.key : NULL,
        .version = c.version[0] ? c.version : NULL,
        .op = c.op,
        .result = result_word(rs->status),
        .status = rs->status,
    };
    if (kms_audit_append(s->audit, &e) != 0) {
        /* No audit, no answer: the operation's result is withheld. */
        fprintf(stderr, "atrest-kms: %s\n", at_error_detail());
        kms_wipe_free(rs->body);
        rs->body = NULL;
        rs->challenge = 0;
        c.rs = rs;
        fail(&c, 500, "InternalServerError", NULL, "The audit log cannot be written.");
    }
}
