/*
 * kmsprov.c — the key provider over atrest-kms (see kmsprov.h for the
 * wrapped-value layout and the error contract).
 *
 * State: the immutable client (thread-safe by itself), the key's name and
 * identity, the algorithm (A256KW until the service says the key is RSA),
 * and the cause of the last failure, under mu. No key material is kept
 * here; unwrapped keys go straight into the caller's locked buffer.
 */
#include "keys/kmsprov.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "kms/client.h"

#define ALG_A256KW 1
#define ALG_RSA    2
#define PROBE_LEN  32

struct kmsprov {
    struct key_provider base;
    struct kms_client *client;
    char name[128];
    char id[KP_KEY_ID_MAX];
    pthread_mutex_t mu;
    int alg;                     /* under mu */
    enum kp_cause last;          /* under mu */
    struct kms_client_status st; /* under mu: the last failure's answer */
};

static const char *alg_name(int alg)
{
    return alg == ALG_RSA ? "RSA-OAEP-256" : "A256KW";
}

static enum kp_cause classify(int rc, const struct kms_client_status *st)
{
    if (rc == 0)
        return KP_CAUSE_OK;
    if (rc != AT_EKEYUNAVAIL || st->http == 0)
        return rc == AT_EIO ? KP_CAUSE_UNREACHABLE : KP_CAUSE_OTHER;
    if (st->http == 401)
        return KP_CAUSE_DENIED;
    if (st->http == 403)
        return strcmp(st->inner, "AccessDenied") == 0 ? KP_CAUSE_DENIED : KP_CAUSE_DISABLED;
    if (st->http == 404)
        return KP_CAUSE_DELETED;
    if (st->http == 400)
        return KP_CAUSE_WRONG_KEY;
    if (st->http >= 500)
        return KP_CAUSE_UNREACHABLE;
    return KP_CAUSE_OTHER;
}

static void note(struct kmsprov *p, int rc, const struct kms_client_status *st)
{
    pthread_mutex_lock(&p->mu);
    p->last = classify(rc, st);
    if (rc)
        p->st = *st;
    pthread_mutex_unlock(&p->mu);
}

/* The provider's error for a failed client call (the detail is kept). */
static int provider_error(struct kmsprov *p, int rc, const struct kms_client_status *st)
{
    note(p, rc, st);
    if (rc == AT_EKEYUNAVAIL && st->http == 400)
        return AT_EINTEGRITY;
    if (rc == AT_EIO || rc == AT_EKEYUNAVAIL)
        return AT_EKEYUNAVAIL;
    return rc;
}

/* The version id at the end of a kid (after the last '/'). */
static int kid_version(const char *kid, char out[65])
{
    const char *s = strrchr(kid, '/');
    size_t n = s ? strlen(s + 1) : 0;
    if (n == 0 || n > 64)
        return at_error_set(AT_EIO, "kms: the service named no key version");
    for (size_t i = 0; i < n; i++) {
        char c = s[1 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return at_error_set(AT_EIO, "kms: the service named a malformed key version");
    }
    memcpy(out, s + 1, n + 1);
    return 0;
}

static uint32_t short_version(const char *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 8 && v[i]; i++)
        x = x << 4 | (uint32_t)(v[i] <= '9' ? v[i] - '0' : v[i] - 'a' + 10);
    return x ? x : 1;
}

static int op_key_id(struct key_provider *kp, char *buf, size_t n)
{
    struct kmsprov *p = (struct kmsprov *)kp;
    if (snprintf(buf, n, "%s", p->id) >= (int)n)
        return at_error_set(AT_EINVAL, "key id buffer too small");
    return 0;
}

static int op_wrap(struct key_provider *kp, const uint8_t *key, size_t len, struct kp_wrapped *out)
{
    struct kmsprov *p = (struct kmsprov *)kp;
    struct kms_client_status st;
    char kid[512], ver[65];
    uint8_t buf[KP_WRAPPED_MAX];
    size_t wl = 0;
    pthread_mutex_lock(&p->mu);
    int alg = p->alg;
    pthread_mutex_unlock(&p->mu);
    int rc = kms_client_wrap(p->client, p->name, NULL, alg_name(alg), key, len, buf, sizeof buf,
                             &wl, kid, &st);
    if (rc == AT_EKEYUNAVAIL && st.http == 400 && alg == ALG_A256KW) {
        /* Not an oct key: try RSA-OAEP-256 once, and remember it. */
        rc = kms_client_wrap(p->client, p->name, NULL, alg_name(ALG_RSA), key, len, buf, sizeof buf,
                             &wl, kid, &st);
        if (rc == 0) {
            alg = ALG_RSA;
            pthread_mutex_lock(&p->mu);
            p->alg = ALG_RSA;
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (rc)
        return provider_error(p, rc, &st);
    if ((rc = kid_version(kid, ver)) != 0)
        return rc;
    size_t vl = strlen(ver);
    if (2 + vl + wl > KP_WRAPPED_MAX)
        return at_error_set(AT_EINVAL, "kms: wrapped key too large");
    memset(out, 0, sizeof *out);
    out->bytes[0] = (uint8_t)alg;
    out->bytes[1] = (uint8_t)vl;
    memcpy(out->bytes + 2, ver, vl);
    memcpy(out->bytes + 2 + vl, buf, wl);
    out->len = (uint16_t)(2 + vl + wl);
    out->kek_version = short_version(ver);
    note(p, 0, &st);
    return 0;
}

static int wrapped_version(const struct kp_wrapped *w, char out[65])
{
    if (w->len < 3 || (w->bytes[0] != ALG_A256KW && w->bytes[0] != ALG_RSA) || w->bytes[1] == 0 ||
        w->bytes[1] > 64 || (size_t)2 + w->bytes[1] >= w->len)
        return at_error_set(AT_EINTEGRITY, "not a wrapped value of the key service");
    memcpy(out, w->bytes + 2, w->bytes[1]);
    out[w->bytes[1]] = '\0';
    return 0;
}

static int op_unwrap(struct key_provider *kp, const struct kp_wrapped *in, uint8_t *key_out,
                     size_t *len)
{
    struct kmsprov *p = (struct kmsprov *)kp;
    struct kms_client_status st;
    char ver[65];
    int rc = wrapped_version(in, ver);
    if (rc)
        return rc;
    size_t off = 2 + strlen(ver);
    rc = kms_client_unwrap(p->client, p->name, ver, alg_name(in->bytes[0]), in->bytes + off,
                           in->len - off, key_out, KP_KEY_MAX, len, &st);
    if (rc) {
        secmem_wipe(key_out, KP_KEY_MAX);
        return provider_error(p, rc, &st);
    }
    note(p, 0, &st);
    return 0;
}

/* One wrap and unwrap of a random value; *ver (may be NULL) receives the
 * version the service wrapped with. */
static int round_trip(struct kmsprov *p, char ver[65])
{
    uint8_t *probe = secmem_alloc(KP_KEY_MAX), *back = secmem_alloc(KP_KEY_MAX);
    struct kp_wrapped w;
    size_t n = 0;
    int rc = AT_ENOMEM;
    if (!probe || !back)
        goto out;
    if ((rc = rand_key(probe, PROBE_LEN)) != 0)
        goto out;
    if ((rc = op_wrap(&p->base, probe, PROBE_LEN, &w)) != 0)
        goto out;
    if ((rc = op_unwrap(&p->base, &w, back, &n)) != 0)
        goto out;
    if (n != PROBE_LEN || !secmem_equal(probe, back, PROBE_LEN))
        rc = at_error_set(AT_EINTEGRITY, "kms: key %s unwrapped a value it did not wrap", p->id);
    else if (ver)
        rc = wrapped_version(&w, ver);
out:
    secmem_free(probe, KP_KEY_MAX);
    secmem_free(back, KP_KEY_MAX);
    return rc;
}

static int op_current_version(struct key_provider *kp, uint32_t *version)
{
    char ver[65];
    int rc = kp_kms_current_version_id(kp, ver);
    if (rc == 0)
        *version = short_version(ver);
    return rc;
}

int kp_kms_current_version_id(struct key_provider *kp, char out[65])
{
    if (!kp_is_kms(kp))
        return at_error_set(AT_EINVAL, "not a key service provider");
    return round_trip((struct kmsprov *)kp, out);
}

static int op_health(struct key_provider *kp)
{
    return round_trip((struct kmsprov *)kp, NULL);
}

static void op_last_status(struct key_provider *kp, struct kp_status *st)
{
    struct kmsprov *p = (struct kmsprov *)kp;
    pthread_mutex_lock(&p->mu);
    st->cause = p->last;
    st->http = p->last == KP_CAUSE_OK ? 200 : p->st.http;
    snprintf(st->code, sizeof st->code, "%s",
             p->last == KP_CAUSE_OK ? ""
             : p->st.inner[0]       ? p->st.inner
                                    : p->st.code);
    pthread_mutex_unlock(&p->mu);
}

static int op_wrapped_version(struct key_provider *kp, const struct kp_wrapped *w, char *buf,
                              size_t n)
{
    char v[65];
    (void)kp;
    int rc = wrapped_version(w, v);
    if (rc == 0 && snprintf(buf, n, "%s", v) >= (int)n)
        rc = at_error_set(AT_EINVAL, "version buffer too small");
    return rc;
}

static void op_destroy(struct key_provider *kp)
{
    struct kmsprov *p = (struct kmsprov *)kp;
    kms_client_close(p->client);
    pthread_mutex_destroy(&p->mu);
    secmem_wipe(p, sizeof *p);
    free(p);
}

static const struct key_provider_ops kms_ops = {
    .iVersion = 2,
    .name = "kms",
    .key_id = op_key_id,
    .current_version = op_current_version,
    .wrap = op_wrap,
    .unwrap = op_unwrap,
    .health = op_health,
    .destroy = op_destroy,
    .last_status = op_last_status,
    .wrapped_version = op_wrapped_version,
};

int kp_is_kms(const struct key_provider *kp)
{
    return kp && kp->ops == &kms_ops;
}

int kp_kms_parse_key_url(const char *key_url, char *base, size_t base_n, char *name, size_t name_n)
{
    if (!key_url || strncmp(key_url, "https://", 8) != 0)
        return at_error_set(AT_EINVAL, "a key URL is https://HOST:PORT/keys/NAME");
    const char *k = strstr(key_url + 8, "/keys/");
    const char *slash = strchr(key_url + 8, '/');
    if (!k || k != slash || k == key_url + 8)
        return at_error_set(AT_EINVAL, "%.200s is not a key URL (https://HOST:PORT/keys/NAME)",
                            key_url);
    const char *n = k + 6;
    size_t nl = strcspn(n, "/?#");
    if (nl == 0 || nl >= name_n || (size_t)(k - key_url) >= base_n)
        return at_error_set(AT_EINVAL, "%.200s is not a key URL (https://HOST:PORT/keys/NAME)",
                            key_url);
    for (size_t i = 0; i < nl; i++) {
        char c = n[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return at_error_set(AT_EINVAL, "%.200s: key names are [0-9a-zA-Z-]", key_url);
    }
    memcpy(base, key_url, (size_t)(k - key_url));
    base[k - key_url] = '\0';
    memcpy(name, n, nl);
    name[nl] = '\0';
    return 0;
}

int kp_kms_open(const struct kp_kms_options *o, struct key_provider **out)
{
    *out = NULL;
    if (!o || !o->url || !o->key_name || !o->token)
        return at_error_set(AT_EINVAL, "kms provider: URL, key name and token are required");
    struct kmsprov *p = calloc(1, sizeof *p);
    if (!p)
        return AT_ENOMEM;
    p->base.ops = &kms_ops;
    p->alg = ALG_A256KW;
    pthread_mutex_init(&p->mu, NULL);
    size_t ul = strlen(o->url);
    while (ul > 8 && o->url[ul - 1] == '/')
        ul--;
    int rc;
    if (snprintf(p->name, sizeof p->name, "%s", o->key_name) >= (int)sizeof p->name ||
        snprintf(p->id, sizeof p->id, "%.*s/keys/%s", (int)ul, o->url, o->key_name) >=
            (int)sizeof p->id) {
        rc = at_error_set(AT_EINVAL, "kms provider: URL or key name too long");
        goto fail;
    }
    struct kms_client_options co = {.url = o->url,
                                    .token = o->token,
                                    .ca_file = o->ca_file,
                                    .insecure = o->insecure,
                                    .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000};
    if ((rc = kms_client_open(&co, &p->client)) != 0)
        goto fail;
    if (o->no_check) {
        *out = &p->base;
        return 0;
    }
    rc = round_trip(p, NULL);
    if (rc && o->create && p->last == KP_CAUSE_DELETED) {
        struct kms_client_status st;
        int crc = kms_client_create_key(p->client, p->name, "oct-HSM", NULL, &st);
        if (crc) {
            char why[256];
            snprintf(why, sizeof why, "%s", at_error_detail());
            rc = at_error_set(AT_EKEYUNAVAIL,
                              "key %s does not exist and cannot be created (%s); create it in "
                              "the key service and grant this identity wrapKey,unwrapKey",
                              p->id, st.http == 403 ? "the token is not an admin's" : why);
            goto fail;
        }
        rc = round_trip(p, NULL);
    }
    if (rc) {
        enum kp_cause c = p->last;
        char why[256];
        snprintf(why, sizeof why, "%s", at_error_detail());
        rc = at_error_set(c == KP_CAUSE_UNREACHABLE ? AT_EIO : rc, "key %s: %s (%s)", p->id,
                          kp_cause_name(c), why);
        goto fail;
    }
    *out = &p->base;
    return 0;
fail:
    op_destroy(&p->base);
    return rc;
}
