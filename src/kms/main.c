/*
 * main.c — atrest-kms: the key service daemon and its command line.
 *
 *   atrest-kms [serve] --data-dir D --listen HOST:PORT [--tls-cert F --tls-key F]
 *              [--public-url URL] [--purge-protection] [--log-requests]
 *   atrest-kms token  --data-dir D --identity NAME [--admin] [--ttl SECONDS]
 *   atrest-kms grant  --data-dir D --key NAME --identity NAME --permissions get,wrapKey,unwrapKey
 *   atrest-kms revoke --data-dir D --key NAME --identity NAME [--permissions ...]
 *   atrest-kms audit verify --data-dir D
 *   atrest-kms client get|wrap|unwrap --url URL --token-file F [--ca F | --insecure]
 *              --key NAME [--version V] [--alg ALG --value BASE64URL]
 *
 * `client` drives client.c against a running service (scripts, diagnosis,
 * tests): it prints the key id, or the key id and the base64url value; on a
 * refusal the status and Key Vault error codes, exit 1; unreachable, exit 3.
 *
 * Serving: harden the process, open the folder (created 0700 at first
 * start) and take its lock, open the vault (root key, sealed keystore), the
 * token secret, the audit log (verified before anything is appended), the
 * access policy and the TLS certificate (created self-signed in D/tls when
 * none is given), listen, print the ready banner. SIGTERM/SIGINT: stop
 * accepting, finish requests in flight, close everything, exit 0.
 * Exit status 2 on a setup or usage error.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/secmem.h"
#include "keys/keyfile.h"
#include "kms/api.h"
#include "kms/client.h"
#include "server/server.h"

#define DEFAULT_TTL (365LL * 24 * 3600)

struct opts {
    const char *data_dir, *listen, *tls_cert, *tls_key, *public_url;
    const char *identity, *key, *permissions;
    const char *url, *token_file, *ca, *version, *alg, *value;
    int insecure;
    long long ttl;
    int admin, purge_protection, log_requests;
};

static void usage(void)
{
    fputs("usage:\n"
          "  atrest-kms [serve] --data-dir D --listen HOST:PORT [--tls-cert F --tls-key F]\n"
          "             [--public-url URL] [--purge-protection] [--log-requests]\n"
          "  atrest-kms token  --data-dir D --identity NAME [--admin] [--ttl SECONDS]\n"
          "  atrest-kms grant  --data-dir D --key NAME --identity NAME "
          "--permissions get,wrapKey,unwrapKey\n"
          "  atrest-kms revoke --data-dir D --key NAME --identity NAME [--permissions LIST]\n"
          "  atrest-kms audit verify --data-dir D\n"
          "  atrest-kms client get|wrap|unwrap --url URL --token-file F [--ca F | --insecure]\n"
          "             --key NAME [--version V] [--alg ALG --value BASE64URL]\n",
          stderr);
}

static int parse_opts(int argc, char **argv, int i, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->ttl = DEFAULT_TTL;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--admin") == 0) {
            o->admin = 1;
            continue;
        }
        if (strcmp(a, "--purge-protection") == 0) {
            o->purge_protection = 1;
            continue;
        }
        if (strcmp(a, "--insecure") == 0) {
            o->insecure = 1;
            continue;
        }
        if (strcmp(a, "--log-requests") == 0) {
            o->log_requests = 1;
            continue;
        }
        if (strcmp(a, "--data-dir") == 0)
            slot = &o->data_dir;
        else if (strcmp(a, "--listen") == 0)
            slot = &o->listen;
        else if (strcmp(a, "--tls-cert") == 0)
            slot = &o->tls_cert;
        else if (strcmp(a, "--tls-key") == 0)
            slot = &o->tls_key;
        else if (strcmp(a, "--public-url") == 0)
            slot = &o->public_url;
        else if (strcmp(a, "--identity") == 0)
            slot = &o->identity;
        else if (strcmp(a, "--key") == 0)
            slot = &o->key;
        else if (strcmp(a, "--permissions") == 0)
            slot = &o->permissions;
        else if (strcmp(a, "--url") == 0)
            slot = &o->url;
        else if (strcmp(a, "--token-file") == 0)
            slot = &o->token_file;
        else if (strcmp(a, "--ca") == 0)
            slot = &o->ca;
        else if (strcmp(a, "--version") == 0)
            slot = &o->version;
        else if (strcmp(a, "--alg") == 0)
            slot = &o->alg;
        else if (strcmp(a, "--value") == 0)
            slot = &o->value;
        if (strcmp(a, "--ttl") == 0 && i + 1 < argc) {
            char *end;
            o->ttl = strtoll(argv[++i], &end, 10);
            if (*end || o->ttl <= 0) {
                fprintf(stderr, "atrest-kms: --ttl takes a positive number of seconds\n");
                return -1;
            }
            continue;
        }
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "atrest-kms: unknown or incomplete option %s\n", a);
            usage();
            return -1;
        }
        *slot = argv[++i];
    }
    if (!o->data_dir && !o->url) {
        fprintf(stderr, "atrest-kms: --data-dir is required\n");
        return -1;
    }
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "atrest-kms: %s: %s\n", what, at_error_detail());
    return 2;
}

/* ---- commands ----------------------------------------------------------------- */

static int cmd_token(const struct opts *o)
{
    struct kms_dir d;
    uint8_t *secret = NULL;
    char tok[KMS_TOKEN_MAX];
    int rc;
    if (!o->identity) {
        fprintf(stderr, "atrest-kms: token needs --identity\n");
        return 2;
    }
    if ((rc = kms_dir_open(o->data_dir, 1, &d)) != 0)
        return fail("cannot open the folder");
    if ((rc = kms_token_secret_load(&d, 1, &secret)) != 0) {
        kms_dir_close(&d);
        return fail("cannot load the token secret");
    }
    rc = kms_token_mint(secret, o->identity, o->admin, kms_now(), o->ttl, tok);
    secmem_free(secret, KMS_SECRET_LEN);
    kms_dir_close(&d);
    if (rc)
        return fail("cannot mint a token");
    printf("%s\n", tok);
    secmem_wipe(tok, sizeof tok);
    return 0;
}

static int cmd_policy(const struct opts *o, int grant)
{
    struct kms_dir d;
    unsigned perms = 0;
    if (!o->key || !o->identity || (grant && !o->permissions)) {
        fprintf(stderr, "atrest-kms: %s needs --key, --identity%s\n", grant ? "grant" : "revoke",
                grant ? " and --permissions" : "");
        return 2;
    }
    if (o->permissions && kms_perms_parse(o->permissions, &perms) != 0) {
        fprintf(stderr, "atrest-kms: --permissions is a list of get, wrapKey, unwrapKey\n");
        return 2;
    }
    if (kms_dir_open(o->data_dir, 1, &d) != 0)
        return fail("cannot open the folder");
    int rc = kms_policy_edit(&d, o->key, o->identity, perms, grant);
    kms_dir_close(&d);
    if (rc)
        return fail(grant ? "grant failed" : "revoke failed");
    char list[64];
    kms_perms_format(perms ? perms : KMS_PERM_ALL, list, sizeof list);
    printf("%s %s on key %s %s %s\n", grant ? "granted" : "revoked", list, o->key,
           grant ? "to" : "from", o->identity);
    return 0;
}

static int cmd_audit_verify(const struct opts *o)
{
    struct kms_dir d;
    struct kms_vault *v = NULL;
    struct kms_audit_report r;
    uint8_t key[32];
    int have_key = 0;
    if (kms_dir_open(o->data_dir, 0, &d) != 0)
        return fail("cannot open the folder");
    if (kms_vault_open(&d, 0, &v) == 0) {
        kms_vault_audit_key(v, key);
        kms_vault_close(v);
        have_key = 1;
    } else {
        fprintf(stderr,
                "atrest-kms: warning: the root key does not open the keystore (%s); checking "
                "the chain only: a removed tail cannot be detected without it\n",
                at_error_detail());
    }
    int rc = kms_audit_verify(&d, have_key ? key : NULL, &r);
    secmem_wipe(key, sizeof key);
    kms_dir_close(&d);
    if (rc == AT_EINTEGRITY) {
        printf("audit log: FAILED at entry %llu: %s\n", (unsigned long long)r.bad_line, r.why);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "atrest-kms: cannot read the audit log: %s\n", at_strerror(rc));
        return 2;
    }
    printf("audit log: %llu entries, hash chain intact%s\n", (unsigned long long)r.entries,
           r.head_checked ? ", sealed head matches the last entry" : " (sealed head NOT checked)");
    return 0;
}

static int cmd_client(const struct opts *o, const char *what)
{
    char token[KMS_TOKEN_MAX + 2], kid[512];
    size_t tl = 0;
    FILE *f = o->token_file ? fopen(o->token_file, "r") : NULL;
    if (!o->url || !f || !o->key) {
        if (f)
            fclose(f);
        fprintf(stderr, "atrest-kms: client needs --url, a readable --token-file and --key\n");
        return 2;
    }
    tl = fread(token, 1, sizeof token - 1, f);
    fclose(f);
    while (tl > 0 && (token[tl - 1] == '\n' || token[tl - 1] == '\r'))
        tl--;
    token[tl] = '\0';
    struct kms_client_options co = {.url = o->url, .token = token, .ca_file = o->ca,
                                    .insecure = o->insecure};
    struct kms_client *c = NULL;
    struct kms_client_status st;
    int rc = kms_client_open(&co, &c);
    secmem_wipe(token, sizeof token);
    if (rc)
        return fail("client");
    size_t in_len = 0, out_len = 0;
    uint8_t *in = secmem_alloc(KMS_WRAP_MAX + 3), *out = secmem_alloc(KMS_WRAP_MAX);
    char *b64 = secmem_alloc(KMS_B64URL_LEN(KMS_WRAP_MAX) + 1);
    if (!in || !out || !b64) {
        rc = AT_ENOMEM;
    } else if (strcmp(what, "get") == 0) {
        struct kms_client_key k;
        rc = kms_client_get_key(c, o->key, o->version, &k, &st);
        if (rc == 0)
            printf("%s %s %s\n", k.kid, k.kty, k.enabled ? "enabled" : "disabled");
    } else if (!o->alg || !o->value || strlen(o->value) > KMS_B64URL_LEN(KMS_WRAP_MAX) ||
               kms_b64url_decode(o->value, strlen(o->value), in, &in_len) != 0) {
        fprintf(stderr, "atrest-kms: client %s needs --alg and a base64url --value\n", what);
        rc = AT_EINVAL;
    } else if (strcmp(what, "wrap") == 0) {
        rc = kms_client_wrap(c, o->key, o->version, o->alg, in, in_len, out, KMS_WRAP_MAX,
                             &out_len, kid, &st);
        if (rc == 0) {
            kms_b64url_encode(out, out_len, b64);
            printf("%s %s\n", kid, b64);
        }
    } else if (strcmp(what, "unwrap") == 0) {
        rc = kms_client_unwrap(c, o->key, o->version, o->alg, in, in_len, out, KMS_WRAP_MAX,
                               &out_len, &st);
        if (rc == 0) {
            kms_b64url_encode(out, out_len, b64);
            printf("%s\n", b64);
        }
    } else {
        usage();
        rc = AT_EINVAL;
    }
    if (rc == AT_EKEYUNAVAIL)
        printf("refused: status=%d code=%s inner=%s\n", st.http, st.code,
               st.inner[0] ? st.inner : "-");
    if (rc && rc != AT_EINVAL)
        fprintf(stderr, "atrest-kms: %s\n", at_error_detail());
    secmem_free(in, KMS_WRAP_MAX + 3);
    secmem_free(out, KMS_WRAP_MAX);
    secmem_free(b64, KMS_B64URL_LEN(KMS_WRAP_MAX) + 1);
    kms_client_close(c);
    return rc == 0 ? 0 : rc == AT_EKEYUNAVAIL ? 1 : rc == AT_EIO ? 3 : 2;
}

/* ---- serving ------------------------------------------------------------------- */

static void *wiping_malloc(size_t n)
{
    return malloc(n);
}

static int split_listen(const char *listen, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -1;
    size_t hl = (size_t)(colon - listen);
    if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (hl >= cap)
        return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int cmd_serve(const struct opts *o)
{
    struct kms_server s;
    struct kms_http *h = NULL;
    char host[256], *cert = NULL, *key = NULL, *cert_path = NULL;
    int port = 0, lock = -1, status = 2;
    memset(&s, 0, sizeof s);
    s.dir.fd = -1;
    s.log_requests = o->log_requests;
    kms_policy_view_init(&s.policy);
    if (!o->listen || split_listen(o->listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "atrest-kms: --listen HOST:PORT is required\n");
        goto out;
    }
    if (kms_dir_open(o->data_dir, 1, &s.dir) != 0) {
        status = fail("cannot open the folder");
        goto out;
    }
    if (kms_dir_lock(&s.dir, KMS_LOCK_FILE, 0, &lock) != 0) {
        status = fail("cannot lock the folder");
        goto out;
    }
    if (kms_vault_open(&s.dir, 1, &s.vault) != 0) {
        status = fail("cannot open the keystore");
        goto out;
    }
    if (o->purge_protection && kms_vault_set_purge_protection(s.vault) != 0) {
        status = fail("cannot turn on purge protection");
        goto out;
    }
    if (kms_token_secret_load(&s.dir, 1, &s.secret) != 0) {
        status = fail("cannot load the token secret");
        goto out;
    }
    uint8_t hk[32];
    kms_vault_audit_key(s.vault, hk);
    int arc = kms_audit_open(&s.dir, hk, &s.audit);
    secmem_wipe(hk, sizeof hk);
    if (arc != 0) {
        status = fail("cannot open the audit log");
        goto out;
    }
    if (kms_policy_view_refresh(&s.policy, &s.dir) != 0) {
        status = fail("cannot read the access policy");
        goto out;
    }
    if (tls_load_or_create(s.dir.path, o->tls_cert, o->tls_key, &cert, &key, &cert_path) != 0) {
        status = fail("cannot set up TLS");
        goto out;
    }
    if (kms_http_start(&s, host, port, cert, key, &h) != 0) {
        status = fail("cannot listen");
        goto out;
    }
    port = kms_http_port(h);
    if (o->public_url)
        snprintf(s.url, sizeof s.url, "%s", o->public_url);
    else
        snprintf(s.url, sizeof s.url, strchr(host, ':') ? "https://[%s]:%d" : "https://%s:%d",
                 host, port);
    size_t ul = strlen(s.url);
    while (ul > 0 && s.url[ul - 1] == '/')
        s.url[--ul] = '\0';
    printf("atrest-kms: key service ready (Key Vault keys API 7.4, encrypted keystore)\n"
           "  endpoint:     %s\n"
           "  certificate:  %s\n"
           "  purge protection: %s\n"
           "  folder:       %s\n",
           s.url, cert_path, (s.vault->flags & KMS_VAULT_PURGE_PROTECTION) ? "on" : "off",
           s.dir.path);
    fflush(stdout);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "atrest-kms: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
out:
    kms_http_stop(h);
    if (key)
        secmem_wipe(key, strlen(key));
    free(key);
    free(cert);
    free(cert_path);
    kms_audit_close(s.audit);
    kms_vault_close(s.vault);
    secmem_free(s.secret, KMS_SECRET_LEN);
    kms_policy_view_free(&s.policy);
    kms_dir_unlock(lock);
    kms_dir_close(&s.dir);
    return status;
}

int main(int argc, char **argv)
{
    struct opts o;
    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (secmem_init() != 0)
        fprintf(stderr, "atrest-kms: warning: cannot disable core dumps\n");
    /* RSA private numbers in OpenSSL's locked heap; JSON buffers (they hold
     * keys being wrapped) wiped when jansson frees them. */
    if (CRYPTO_secure_malloc_init(1 << 20, 32) != 1)
        fprintf(stderr, "atrest-kms: warning: no OpenSSL secure heap (RLIMIT_MEMLOCK?)\n");
    json_set_alloc_funcs(wiping_malloc, kms_wipe_free);

    int i = 1, rc;
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "serve";
    if (argc > 1 && argv[1][0] != '-')
        i = 2;
    if (strcmp(cmd, "audit") == 0) {
        if (argc < 3 || strcmp(argv[2], "verify") != 0) {
            usage();
            return 2;
        }
        i = 3;
    }
    if (strcmp(cmd, "client") == 0) {
        if (argc < 3) {
            usage();
            return 2;
        }
        i = 3;
    }
    if (strcmp(cmd, "help") == 0 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
        usage();
        return 0;
    }
    if (parse_opts(argc, argv, i, &o) != 0)
        return 2;
    if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(&o);
    else if (strcmp(cmd, "token") == 0)
        rc = cmd_token(&o);
    else if (strcmp(cmd, "grant") == 0)
        rc = cmd_policy(&o, 1);
    else if (strcmp(cmd, "revoke") == 0)
        rc = cmd_policy(&o, 0);
    else if (strcmp(cmd, "audit") == 0)
        rc = cmd_audit_verify(&o);
    else if (strcmp(cmd, "client") == 0)
        rc = cmd_client(&o, argv[2]);
    else {
        usage();
        rc = 2;
    }
    CRYPTO_secure_malloc_done();
    return rc;
}
