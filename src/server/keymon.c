/*
 * keymon.c — the key monitor (see keymon.h for the state machine).
 *
 * One thread; the states are read by request threads under mu. The thread
 * never holds mu during a provider call (each is an HTTPS request with a
 * timeout), so a slow key service never stalls a request: requests only
 * ever read the last verdict.
 */
#include "common/clock.h"
#include "server/keymon.h"
#include "storage/pagecache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ST_OK, ST_GRACE, ST_DOWN };

struct lstate {
    int state;
    struct kp_status st; /* the cause when not OK */
    double since;        /* monotonic seconds: when it left OK */
    time_t since_wall;
    time_t last_ok;   /* wall clock of the last good check */
    uint32_t current; /* current KEK version (short form), 0 unknown */
    size_t rewrapped; /* values rewrapped since start */
    char detail[256]; /* the last failure, for the log */
};

struct keymon {
    struct keymon_options o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, poke;
    struct lstate l[2];
};

static const char *layer_name(int l)
{
    return l ? "customer-managed key" : "service key";
}

static void log_change(struct keymon *m, int l, const char *what)
{
    fprintf(stderr, "atrestd: %s %s: %s\n", layer_name(l), keyring_key_id(m->o.kr, l), what);
}

/* One check of layer l; updates its state. Called on the monitor thread. */
static void check_layer(struct keymon *m, int l)
{
    struct keyring *kr = m->o.kr;
    struct key_provider *kp = m->o.kp[l];
    at_error_clear();
    int rc = keyring_layer_check(kr, l);
    if (rc == 0 && !keyring_layer_available(kr, l))
        rc = keyring_layer_restore(kr, l);
    struct kp_status st;
    kp_last_status(kp, &st);
    char detail[256];
    snprintf(detail, sizeof detail, "%s", at_error_detail());

    if (rc == 0) {
        uint32_t cur = 0;
        size_t n = 0;
        /* A new current KEK version (rotation): rewrap, so that the old
         * version can be disabled without losing access. */
        if (m->o.rewrap && kp_current_version(kp, &cur) == 0 && keyring_layer_stale(kr, l, cur)) {
            if (keyring_rewrap(kr, l, &n) == 0) {
                char msg[96];
                snprintf(msg, sizeof msg, "new key version %08x: %zu wrapped key%s rewrapped", cur,
                         n, n == 1 ? "" : "s");
                log_change(m, l, msg);
            } else {
                log_change(m, l, at_error_detail());
            }
        }
        pthread_mutex_lock(&m->mu);
        int was = m->l[l].state;
        m->l[l].state = ST_OK;
        memset(&m->l[l].st, 0, sizeof m->l[l].st);
        m->l[l].last_ok = time(NULL);
        if (cur)
            m->l[l].current = cur;
        m->l[l].rewrapped += n;
        pthread_mutex_unlock(&m->mu);
        if (was != ST_OK)
            log_change(m, l,
                       l ? "usable again: data keys unwrapped, serving"
                         : "reachable again, serving");
        return;
    }

    int unreachable = st.cause == KP_CAUSE_UNREACHABLE || rc == AT_EIO;
    if (unreachable)
        st.cause = KP_CAUSE_UNREACHABLE;
    double t = mono_seconds();
    pthread_mutex_lock(&m->mu);
    struct lstate *s = &m->l[l];
    int was = s->state;
    if (was == ST_OK) {
        s->since = t;
        s->since_wall = time(NULL);
    }
    int down = !unreachable || (t - s->since >= (double)m->o.grace_s);
    /* Keep the first cause while unreachable after a refusal. */
    if (!(was == ST_DOWN && unreachable && s->st.cause != KP_CAUSE_UNREACHABLE))
        s->st = st;
    s->state = down ? ST_DOWN : (was == ST_DOWN ? ST_DOWN : ST_GRACE);
    snprintf(s->detail, sizeof s->detail, "%s", detail);
    int now_down = s->state == ST_DOWN;
    pthread_mutex_unlock(&m->mu);

    if (now_down && l == 1 && keyring_layer_available(kr, 1)) {
        /* Revoked (or unreachable past the grace period): the inner DEKs
         * leave memory now. Writes in flight fail cleanly (the key is
         * refused before a page is sealed) or have already committed. */
        int drc = keyring_layer_drop(kr, 1);
        (void)drc;
        pagecache_clear(); /* and the plaintext they decrypted */
    }
    if (was != s->state) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s (%s)%s", kp_cause_name(st.cause), detail,
                 s->state == ST_GRACE ? "; serving from cached keys during the grace period"
                 : l == 1             ? "; data keys dropped, data requests refused (403)"
                                      : "; data requests refused (503)");
        log_change(m, l, msg);
    }
}

static void *monitor_main(void *arg)
{
    struct keymon *m = arg;
    int backoff = 1;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        for (int l = 0; l < 2; l++)
            if (m->o.remote[l] && m->o.kp[l])
                check_layer(m, l);
        pthread_mutex_lock(&m->mu);
        int trouble = m->l[0].state != ST_OK || m->l[1].state != ST_OK;
        int wait_s = m->o.check_s;
        if (trouble) {
            wait_s = backoff < m->o.check_s ? backoff : m->o.check_s;
            backoff = backoff < 1 << 20 ? backoff * 2 : backoff;
        } else {
            backoff = 1;
        }
        struct timespec until = deadline_after(CLOCK_MONOTONIC, wait_s);
        while (!m->stop && !m->poke)
            if (pthread_cond_timedwait(&m->cv, &m->mu, &until) != 0)
                break;
        m->poke = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int keymon_start(const struct keymon_options *o, struct keymon **out)
{
    *out = NULL;
    struct keymon *m = calloc(1, sizeof *m);
    if (!m)
        return AT_ENOMEM;
    m->o = *o;
    if (m->o.check_s <= 0)
        m->o.check_s = 30;
    if (m->o.grace_s < 0)
        m->o.grace_s = 300;
    for (int l = 0; l < 2; l++)
        m->l[l].last_ok = time(NULL);
    pthread_mutex_init(&m->mu, NULL);
    cond_init_monotonic(&m->cv);
    if (!(o->remote[0] && o->kp[0]) && !(o->remote[1] && o->kp[1])) {
        *out = m; /* nothing remote to watch: no thread */
        return 0;
    }
    int rc = pthread_create(&m->thread, NULL, monitor_main, m);
    if (rc) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
        free(m);
        return at_error_set(rc, "cannot start the key monitor: %s", strerror(rc));
    }
    *out = m;
    return 0;
}

void keymon_stop(struct keymon *m)
{
    if (!m)
        return;
    int threaded = (m->o.remote[0] && m->o.kp[0]) || (m->o.remote[1] && m->o.kp[1]);
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    if (threaded)
        pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

void keymon_poke(struct keymon *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->poke = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static int cmk_substatus(enum kp_cause c)
{
    switch (c) {
    case KP_CAUSE_DISABLED:
    case KP_CAUSE_DENIED:
        return 4002; /* KeyVaultAuthenticationFailure */
    case KP_CAUSE_DELETED:
        return 4003; /* KeyVaultKeyNotFound */
    case KP_CAUSE_UNREACHABLE:
        return 4004; /* KeyVaultServiceUnavailable */
    case KP_CAUSE_WRONG_KEY:
        return 4005; /* KeyVaultWrapUnwrapFailure */
    default:
        return 4008; /* KeyVaultInternalServerError */
    }
}

static const char *cmk_remedy(enum kp_cause c)
{
    switch (c) {
    case KP_CAUSE_DISABLED:
        return "Re-enable the key version to restore access.";
    case KP_CAUSE_DENIED:
        return "Grant atrestd's identity wrapKey and unwrapKey on the key again to restore access.";
    case KP_CAUSE_DELETED:
        return "Recover the deleted key to restore access; a purged key cannot be recovered.";
    case KP_CAUSE_UNREACHABLE:
        return "Access resumes when the key service answers again.";
    default:
        return "Access resumes when the key unwraps the account's data keys again.";
    }
}

/* The message for a layer that is DOWN (mu held). */
static void down_message(struct keymon *m, int l, char *msg, size_t n)
{
    const struct lstate *s = &m->l[l];
    const char *id = keyring_key_id(m->o.kr, l);
    char code[80] = "";
    if (s->st.code[0])
        snprintf(code, sizeof code, " (%s)", s->st.code);
    if (l == 1) {
        if (s->st.cause == KP_CAUSE_UNREACHABLE)
            snprintf(msg, n,
                     "Request is blocked because the customer-managed key %s is unreachable: "
                     "the key service holding it has not answered for more than %d seconds. %s",
                     id, m->o.grace_s, cmk_remedy(s->st.cause));
        else
            snprintf(msg, n,
                     "Request is blocked because the customer-managed key %s is %s%s; the "
                     "account's customer-layer data keys have been dropped from memory. %s",
                     id, kp_cause_name(s->st.cause), code, cmk_remedy(s->st.cause));
    } else {
        if (s->st.cause == KP_CAUSE_UNREACHABLE)
            snprintf(msg, n,
                     "The key service holding the service key %s has not answered for more than "
                     "%d seconds; atrestd refuses data requests until it answers again.",
                     id, m->o.grace_s);
        else
            snprintf(msg, n,
                     "The service key %s is %s%s at the key service; atrestd refuses data "
                     "requests until it is usable again.",
                     id, kp_cause_name(s->st.cause), code);
    }
}

int keymon_refuse(struct keymon *m, int *substatus, char *msg, size_t n)
{
    int status = 0;
    *substatus = 0;
    pthread_mutex_lock(&m->mu);
    if (m->l[1].state == ST_DOWN) {
        status = 403;
        *substatus = cmk_substatus(m->l[1].st.cause);
        down_message(m, 1, msg, n);
    } else if (m->l[0].state == ST_DOWN) {
        status = 503;
        down_message(m, 0, msg, n);
    }
    pthread_mutex_unlock(&m->mu);
    return status;
}

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void keymon_account_props(struct keymon *m, json_t *account)
{
    int layers = keyring_layers(m->o.kr);
    json_t *arr = json_array();
    pthread_mutex_lock(&m->mu);
    for (int l = 0; l < layers; l++) {
        const struct lstate *s = &m->l[l];
        char since[32], ok[32], ver[16] = "";
        iso_time(s->since_wall, since);
        iso_time(s->last_ok, ok);
        if (s->current)
            snprintf(ver, sizeof ver, "%08x", s->current);
        const char *state = s->state == ST_OK      ? "available"
                            : s->state == ST_GRACE ? "unreachable-grace"
                            : l == 1               ? "revoked"
                                                   : "unavailable";
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:b,s:s}", "layer", l ? "inner" : "outer", "role",
                      l ? "customer-managed key" : "service key", "keyId",
                      keyring_key_id(m->o.kr, l), "monitored", m->o.remote[l], "state", state);
        if (s->state != ST_OK) {
            json_object_set_new(o, "cause", json_string(kp_cause_name(s->st.cause)));
            json_object_set_new(o, "since", json_string(since));
        }
        json_object_set_new(o, "lastConfirmed", json_string(ok));
        if (ver[0])
            json_object_set_new(o, "currentKeyVersion", json_string(ver));
        json_object_set_new(o, "dataKeysInMemory",
                            json_boolean(keyring_layer_available(m->o.kr, l)));
        json_array_append_new(arr, o);
    }
    if (layers == 2) {
        char msg[600], text[700];
        int sub = 0;
        if (m->l[1].state == ST_DOWN) {
            sub = cmk_substatus(m->l[1].st.cause);
            down_message(m, 1, msg, sizeof msg);
            snprintf(text, sizeof text, "%s (%d)", msg, sub);
        } else if (m->l[1].state == ST_GRACE) {
            snprintf(text, sizeof text,
                     "The key service holding the customer-managed key %s is unreachable; "
                     "serving from keys in memory for up to %d seconds.",
                     keyring_key_id(m->o.kr, 1), m->o.grace_s);
        } else {
            snprintf(text, sizeof text, "Access to the configured customer managed key confirmed.");
        }
        json_object_set_new(account, "customerManagedKeyStatus", json_string(text));
        json_object_set_new(account, "keyVaultKeyUri", json_string(keyring_key_id(m->o.kr, 1)));
    }
    pthread_mutex_unlock(&m->mu);
    json_object_set_new(account, "atrestKeyLayers", arr);
}
