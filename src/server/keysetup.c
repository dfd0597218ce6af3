/*
 * keysetup.c — atrestd's key providers (see keysetup.h for the table of
 * what is chosen when, and what is refused).
 */
#include "server/keysetup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "keys/kmsprov.h"

#define TOKEN_MAX 4096

/* Read a bearer token file into locked memory (trailing whitespace cut). */
static char *read_token(const char *path, size_t *alloc)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "atrestd: cannot read token file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *t = secmem_alloc(TOKEN_MAX);
    size_t n = t ? fread(t, 1, TOKEN_MAX - 1, f) : 0;
    fclose(f);
    if (!t) {
        fprintf(stderr, "atrestd: no locked memory for the key service token\n");
        return NULL;
    }
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    t[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "atrestd: token file %s is empty\n", path);
        secmem_free(t, TOKEN_MAX);
        return NULL;
    }
    *alloc = TOKEN_MAX;
    return t;
}

/* The base URL without trailing slashes, into out. */
static void norm_url(const char *url, char *out, size_t n)
{
    size_t l = strlen(url);
    while (l > 8 && url[l - 1] == '/')
        l--;
    snprintf(out, n, "%.*s", (int)l, url);
}

static int open_kms(const struct config *cfg, const char *base, const char *name,
                    const char *token_file, const char *ca, int create, const char *role,
                    struct key_provider **out)
{
    size_t alloc = 0;
    char *token = read_token(token_file, &alloc);
    if (!token)
        return -1;
    struct kp_kms_options o = {.url = base,
                               .key_name = name,
                               .token = token,
                               .ca_file = ca,
                               .insecure = cfg->kms_insecure,
                               .create = create};
    at_error_clear();
    int rc = kp_kms_open(&o, out);
    secmem_free(token, alloc);
    if (rc) {
        fprintf(stderr, "atrestd: the %s cannot be used: %s\n", role, at_error_detail());
        return -1;
    }
    return 0;
}

int keysetup_open(const struct config *cfg, struct keysetup *ks)
{
    struct keyring_info info;
    char base[300], name[128], want[300];
    memset(ks, 0, sizeof *ks);
    at_error_clear();
    int rc = keyring_peek(cfg->data_dir, &info);
    if (rc && rc != AT_ENOTFOUND) {
        fprintf(stderr, "atrestd: cannot read the data folder's keyring: %s\n", at_error_detail());
        return -1;
    }
    int exists = rc == 0;
    ks->create = !exists;

    /* ---- layer 0: the service key ---- */
    int kms_account = exists && strncmp(info.key_id[0], "https://", 8) == 0;
    if (exists && kms_account && !cfg->kms_url) {
        fprintf(stderr,
                "atrestd: this account's service key is held by a key service (%s); start "
                "atrestd with --kms and --kms-token-file\n",
                info.key_id[0]);
        return -1;
    }
    if (exists && !kms_account && cfg->kms_url) {
        fprintf(stderr,
                "atrestd: this account was created with the embedded key provider (key folder "
                "%s); --kms applies to a new account only\n",
                cfg->key_dir);
        return -1;
    }
    if (cfg->kms_url) {
        const char *tf = cfg->kms_token_file ? cfg->kms_token_file : cfg->cmk_token_file;
        norm_url(cfg->kms_url, want, sizeof want);
        if (exists) {
            if (kp_kms_parse_key_url(info.key_id[0], base, sizeof base, name, sizeof name) != 0) {
                fprintf(stderr, "atrestd: the keyring's service key id is not a key URL: %s\n",
                        at_error_detail());
                return -1;
            }
            if (strcmp(base, want) != 0 || (cfg->kms_key && strcmp(cfg->kms_key, name) != 0)) {
                fprintf(stderr,
                        "atrestd: this account's service key is %s, but --kms/--kms-key name "
                        "%s/keys/%s\n",
                        info.key_id[0], want, cfg->kms_key ? cfg->kms_key : name);
                return -1;
            }
        } else if (cfg->kms_key) {
            snprintf(name, sizeof name, "%s", cfg->kms_key);
        } else {
            uint8_t r[6];
            if (rand_bytes(r, sizeof r) != 0) {
                fprintf(stderr, "atrestd: cannot draw a key name from the random generator\n");
                return -1;
            }
            snprintf(name, sizeof name, "atrest-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
                     r[4], r[5]);
        }
        snprintf(base, sizeof base, "%s", want);
        if (open_kms(cfg, base, name, tf, cfg->kms_ca, !exists, "service key", &ks->kp[0]) != 0)
            return -1;
        ks->remote[0] = 1;
        /* The key folder still holds the TLS certificate. */
        if (mkdir(cfg->key_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "atrestd: cannot create key folder %s: %s\n", cfg->key_dir,
                    strerror(errno));
            goto fail;
        }
    } else if ((rc = embedded_provider_open(cfg->key_dir, cfg->data_dir, 1, &ks->kp[0])) != 0) {
        fprintf(stderr, "atrestd: cannot open the key folder: %s\n", at_error_detail());
        return -1;
    }

    /* ---- layer 1: the customer-managed key ---- */
    const char *cmk = NULL;
    char cbase[300], cname[128];
    if (exists && info.layers == 2) {
        cmk = info.key_id[1];
        if (cfg->cmk) {
            char gbase[300], gname[128];
            if (kp_kms_parse_key_url(cfg->cmk, gbase, sizeof gbase, gname, sizeof gname) != 0 ||
                kp_kms_parse_key_url(cmk, cbase, sizeof cbase, cname, sizeof cname) != 0 ||
                strcmp(gbase, cbase) != 0 || strcmp(gname, cname) != 0) {
                fprintf(stderr,
                        "atrestd: --cmk %s does not name this account's customer-managed key %s; "
                        "the customer key is chosen when the account is created and cannot be "
                        "changed\n",
                        cfg->cmk, cmk);
                goto fail;
            }
        }
    } else if (exists && cfg->cmk) {
        fprintf(stderr,
                "atrestd: --cmk applies only when the data folder is empty (account creation); "
                "the account in %s has no customer-managed key\n",
                cfg->data_dir);
        goto fail;
    } else if (!exists) {
        cmk = cfg->cmk;
    }
    if (cmk) {
        const char *tf = cfg->cmk_token_file ? cfg->cmk_token_file : cfg->kms_token_file;
        if (!tf) {
            fprintf(stderr,
                    "atrestd: this account has a customer-managed key (%s); give "
                    "--cmk-token-file or --kms-token-file\n",
                    cmk);
            goto fail;
        }
        if (kp_kms_parse_key_url(cmk, cbase, sizeof cbase, cname, sizeof cname) != 0) {
            fprintf(stderr, "atrestd: --cmk: %s\n", at_error_detail());
            goto fail;
        }
        if (open_kms(cfg, cbase, cname, tf, cfg->cmk_ca ? cfg->cmk_ca : cfg->kms_ca, 0,
                     "customer-managed key", &ks->kp[1]) != 0)
            goto fail;
        ks->remote[1] = 1;
    }
    return 0;
fail:
    keysetup_close(ks);
    return -1;
}

void keysetup_close(struct keysetup *ks)
{
    kp_destroy(ks->kp[1]);
    kp_destroy(ks->kp[0]);
    ks->kp[0] = ks->kp[1] = NULL;
}
