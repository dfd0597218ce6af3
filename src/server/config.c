/*
 * config.c — atrestd settings.
 *
 * Sources, strongest first: command-line flags, environment variables
 * (ATREST_DATA_DIR, ATREST_KEY_DIR, ATREST_LISTEN, ATREST_MASTER_KEY,
 * ATREST_SECONDARY_KEY, ATREST_READONLY_KEY, ATREST_READONLY_KEY2,
 * ATREST_TLS_CERT, ATREST_TLS_KEY, ATREST_CONFIG, ATREST_QUIET, and the
 * key-service settings ATREST_KMS, ATREST_KMS_TOKEN_FILE, ATREST_KMS_CA,
 * ATREST_KMS_INSECURE, ATREST_KMS_KEY, ATREST_CMK, ATREST_CMK_TOKEN_FILE, ATREST_CMK_CA,
 * ATREST_KMS_GRACE_SECONDS, ATREST_CMK_CHECK_SECONDS), a config
 * file (--config FILE: "key = value" lines, # comments; keys as the flags
 * without dashes or with underscores), defaults (./data, ./keys,
 * 127.0.0.1:8081). Read-only keys: up to 4 (repeat --readonly-key).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"
#include "crypto/secmem.h"
#include "server/server.h"
#include "storage/pagecache.h"

static void set(char **slot, const char *v)
{
    if (*slot) {
        secmem_wipe(*slot, strlen(*slot));
        free(*slot);
    }
    *slot = v ? strdup(v) : NULL;
}

static void add_ro(struct config *c, const char *v, int reset)
{
    if (reset) {
        for (int i = 0; i < c->nreadonly; i++)
            set(&c->readonly_keys[i], NULL);
        c->nreadonly = 0;
    }
    if (c->nreadonly < CONFIG_MAX_RO)
        set(&c->readonly_keys[c->nreadonly++], v);
}

/* A whole-number setting (k as the flag, without dashes). Anything else,
 * or a number out of range, is remembered and reported by config_load
 * instead of being read as 0 (a typo would silently mean "default"). */
static long long num(struct config *c, const char *k, const char *v, long long lo, long long hi)
{
    char *end = NULL;
    errno = 0;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (v && end != v && !*end && !errno && n >= lo && n <= hi)
        return n;
    if (!c->bad_number[0]) {
        snprintf(c->bad_number, sizeof c->bad_number, "%s", k);
        for (char *p = c->bad_number; *p; p++)
            *p = *p == '_' ? '-' : *p;
    }
    return 0;
}
#define NUM_INT(c, k, v) ((int)num(c, k, v, INT_MIN, INT_MAX))
/* Settings whose -1 means "not given": a given value is never negative. */
#define NUM_GIVEN(c, k, v) ((int)num(c, k, v, 0, INT_MAX))

/* Apply one setting by name ('-' and '_' alike). 0 ok, -1 unknown. */
static int apply(struct config *c, const char *key, const char *v, int *ro_reset)
{
    char k[64];
    size_t i = 0;
    for (; key[i] && i + 1 < sizeof k; i++)
        k[i] = key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
    k[i] = 0;
    if (!strcmp(k, "data_dir"))
        set(&c->data_dir, v);
    else if (!strcmp(k, "key_dir"))
        set(&c->key_dir, v);
    else if (!strcmp(k, "listen"))
        set(&c->listen, v);
    else if (!strcmp(k, "master_key"))
        set(&c->master_key, v);
    else if (!strcmp(k, "secondary_key"))
        set(&c->secondary_key, v);
    else if (!strcmp(k, "readonly_key") || !strcmp(k, "readonly_key2")) {
        add_ro(c, v, *ro_reset);
        *ro_reset = 0;
    } else if (!strcmp(k, "tls_cert"))
        set(&c->tls_cert, v);
    else if (!strcmp(k, "tls_key"))
        set(&c->tls_key, v);
    else if (!strcmp(k, "log_requests"))
        c->log_requests = v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
    else if (!strcmp(k, "kms"))
        set(&c->kms_url, v);
    else if (!strcmp(k, "kms_token_file"))
        set(&c->kms_token_file, v);
    else if (!strcmp(k, "kms_ca"))
        set(&c->kms_ca, v);
    else if (!strcmp(k, "kms_key"))
        set(&c->kms_key, v);
    else if (!strcmp(k, "cmk"))
        set(&c->cmk, v);
    else if (!strcmp(k, "cmk_token_file"))
        set(&c->cmk_token_file, v);
    else if (!strcmp(k, "cmk_ca"))
        set(&c->cmk_ca, v);
    else if (!strcmp(k, "kms_insecure"))
        c->kms_insecure = v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"));
    else if (!strcmp(k, "kms_grace_seconds"))
        c->kms_grace_s = NUM_GIVEN(c, k, v);
    else if (!strcmp(k, "cmk_check_seconds"))
        c->cmk_check_s = NUM_INT(c, k, v);
    else if (!strcmp(k, "backup_mode"))
        c->backup_continuous = !v ? -1 : !strcmp(v, "continuous") ? 1 : !strcmp(v, "full") ? 0 : -1;
    else if (!strcmp(k, "backup_continuous_days"))
        c->backup_days = NUM_INT(c, k, v);
    else if (!strcmp(k, "backup_ship_seconds"))
        c->backup_ship_s = NUM_INT(c, k, v);
    else if (!strcmp(k, "backup_target"))
        set(&c->backup_target, v);
    else if (!strcmp(k, "backup_account_key_file"))
        set(&c->backup_key_file, v);
    else if (!strcmp(k, "backup_interval_hours"))
        c->backup_interval_h = NUM_INT(c, k, v);
    else if (!strcmp(k, "backup_retain"))
        c->backup_retain = NUM_INT(c, k, v);
    else if (!strcmp(k, "dek_rotation_days"))
        c->dek_rotation_days = NUM_GIVEN(c, k, v);
    else if (!strcmp(k, "backup_busy_mbps"))
        c->backup_busy_mbps = NUM_GIVEN(c, k, v);
    else if (!strcmp(k, "reencrypt_mbps"))
        c->reencrypt_mbps = NUM_GIVEN(c, k, v);
    else if (!strcmp(k, "index_merge_keys"))
        c->index_merge_keys = (long)num(c, k, v, LONG_MIN, LONG_MAX);
    else if (!strcmp(k, "page_cache_mb"))
        c->page_cache_mb = (long)num(c, k, v, 0, 1048576); /* -1: not given */
    else if (!strcmp(k, "dek_max_encryptions"))
        c->dek_max_encryptions = num(c, k, v, LLONG_MIN, LLONG_MAX);
    else if (!strcmp(k, "media_target"))
        set(&c->media_target, v);
    else if (!strcmp(k, "media_account_key_file"))
        set(&c->media_key_file, v);
    else
        return -1;
    return 0;
}

static int load_file(struct config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "atrestd: cannot read config file %s\n", path);
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0, ro_reset = 1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            fprintf(stderr, "atrestd: %s:%d: expected key = value\n", path, lineno);
            rc = -1;
            continue;
        }
        char *ke = eq;
        while (ke > p && isspace((unsigned char)ke[-1]))
            ke--;
        *ke = 0;
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        char *ve = v + strlen(v);
        while (ve > v && isspace((unsigned char)ve[-1]))
            *--ve = 0;
        if (apply(c, p, v, &ro_reset) != 0) {
            fprintf(stderr, "atrestd: %s:%d: unknown setting\n", path, lineno);
            rc = -1;
        }
    }
    secmem_wipe(line, sizeof line);
    fclose(f);
    return rc;
}

static void usage(FILE *to)
{
    fputs(
        "usage: atrestd [--data-dir D] [--key-dir K] [--listen HOST:PORT]\n"
        "               [--master-key B64] [--secondary-key B64] [--readonly-key B64]...\n"
        "               [--tls-cert FILE --tls-key FILE] [--config FILE] [--log-requests]\n"
        "               [--kms https://HOST:PORT --kms-token-file F [--kms-ca F] [--kms-insecure]\n"
        "                [--kms-key NAME]] [--cmk https://HOST:PORT/keys/NAME [--cmk-token-file "
        "F]\n"
        "                [--cmk-ca F]]\n"
        "               [--kms-grace-seconds N] [--cmk-check-seconds N]\n"
        "               [--backup-mode full|continuous [--backup-continuous-days 7|30]\n"
        "                [--backup-ship-seconds 1-60]] (with --backup-target)\n"
        "               [--backup-target file:DIR|azblob:URL [--backup-account-key-file F]\n"
        "                [--backup-interval-hours 1-24] [--backup-retain N]\n"
        "                [--backup-busy-mbps N]]\n"
        "               [--dek-rotation-days N] [--reencrypt-mbps N] [--dek-max-encryptions N]\n"
        "               [--media-target file:DIR|azblob:URL [--media-account-key-file F]]\n"
        "               [--index-merge-keys N] [--page-cache-mb 0-1048576]\n"
        "defaults: --data-dir ./data --key-dir ./keys --listen 127.0.0.1:8081\n"
        "  --media-target file:<data-dir>/media\n"
        "environment: ATREST_DATA_DIR ATREST_KEY_DIR ATREST_LISTEN ATREST_MASTER_KEY\n"
        "  ATREST_SECONDARY_KEY ATREST_READONLY_KEY ATREST_TLS_CERT ATREST_TLS_KEY\n"
        "  ATREST_CONFIG ATREST_LOG_REQUESTS ATREST_KMS ATREST_KMS_TOKEN_FILE ATREST_KMS_CA\n"
        "  ATREST_KMS_INSECURE ATREST_KMS_KEY ATREST_CMK ATREST_CMK_TOKEN_FILE ATREST_CMK_CA\n"
        "  ATREST_KMS_GRACE_SECONDS ATREST_CMK_CHECK_SECONDS ATREST_DEK_ROTATION_DAYS\n"
        "  ATREST_REENCRYPT_MBPS ATREST_DEK_MAX_ENCRYPTIONS ATREST_MEDIA_TARGET\n"
        "  ATREST_MEDIA_ACCOUNT_KEY_FILE ATREST_INDEX_MERGE_KEYS ATREST_PAGE_CACHE_MB (and\n"
        "  the ATREST_BACKUP_* settings)\n",
        to);
}

static int parse_listen(struct config *c)
{
    const char *l = c->listen;
    const char *colon;
    if (l[0] == '[') {
        const char *e = strchr(l, ']');
        if (!e || e[1] != ':')
            return -1;
        snprintf(c->host, sizeof c->host, "%.*s", (int)(e - l - 1), l + 1);
        colon = e + 1;
    } else {
        colon = strrchr(l, ':');
        if (!colon)
            return -1;
        snprintf(c->host, sizeof c->host, "%.*s", (int)(colon - l), l);
        if (!c->host[0])
            snprintf(c->host, sizeof c->host, "0.0.0.0");
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    c->port = (int)port;
    return 0;
}

int config_load(struct config *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},
        {"listen", required_argument, NULL, 'l'},
        {"master-key", required_argument, NULL, 'm'},
        {"secondary-key", required_argument, NULL, 's'},
        {"readonly-key", required_argument, NULL, 'r'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'K'},
        {"config", required_argument, NULL, 'f'},
        {"log-requests", no_argument, NULL, 'q'},
        {"kms", required_argument, NULL, 1001},
        {"kms-token-file", required_argument, NULL, 1002},
        {"kms-ca", required_argument, NULL, 1003},
        {"kms-insecure", no_argument, NULL, 1004},
        {"kms-key", required_argument, NULL, 1005},
        {"cmk", required_argument, NULL, 1006},
        {"cmk-token-file", required_argument, NULL, 1007},
        {"kms-grace-seconds", required_argument, NULL, 1008},
        {"cmk-check-seconds", required_argument, NULL, 1009},
        {"cmk-ca", required_argument, NULL, 1010},
        {"backup-mode", required_argument, NULL, 1105},
        {"backup-continuous-days", required_argument, NULL, 1106},
        {"backup-ship-seconds", required_argument, NULL, 1107},
        {"backup-target", required_argument, NULL, 1101},
        {"backup-account-key-file", required_argument, NULL, 1102},
        {"backup-interval-hours", required_argument, NULL, 1103},
        {"backup-retain", required_argument, NULL, 1104},
        {"backup-busy-mbps", required_argument, NULL, 1108},
        {"dek-rotation-days", required_argument, NULL, 1201},
        {"reencrypt-mbps", required_argument, NULL, 1202},
        {"dek-max-encryptions", required_argument, NULL, 1203},
        {"media-target", required_argument, NULL, 1301},
        {"media-account-key-file", required_argument, NULL, 1302},
        {"index-merge-keys", required_argument, NULL, 1401},
        {"page-cache-mb", required_argument, NULL, 1402},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(c, 0, sizeof *c);
    c->kms_grace_s = -1;
    c->dek_rotation_days = c->reencrypt_mbps = c->backup_busy_mbps = -1;
    c->page_cache_mb = -1;
    /* pass 1: find --config */
    const char *file = getenv("ATREST_CONFIG");
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'f')
            file = optarg;
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
    }
    if (file && load_file(c, file) != 0)
        return -1;
    /* environment */
    static const char *const env[][2] = {
        {"ATREST_DATA_DIR", "data_dir"},
        {"ATREST_KEY_DIR", "key_dir"},
        {"ATREST_LISTEN", "listen"},
        {"ATREST_MASTER_KEY", "master_key"},
        {"ATREST_SECONDARY_KEY", "secondary_key"},
        {"ATREST_TLS_CERT", "tls_cert"},
        {"ATREST_TLS_KEY", "tls_key"},
        {"ATREST_LOG_REQUESTS", "log_requests"},
        {"ATREST_READONLY_KEY", "readonly_key"},
        {"ATREST_READONLY_KEY2", "readonly_key2"},
        {"ATREST_KMS", "kms"},
        {"ATREST_KMS_TOKEN_FILE", "kms_token_file"},
        {"ATREST_KMS_CA", "kms_ca"},
        {"ATREST_KMS_INSECURE", "kms_insecure"},
        {"ATREST_KMS_KEY", "kms_key"},
        {"ATREST_CMK", "cmk"},
        {"ATREST_CMK_TOKEN_FILE", "cmk_token_file"},
        {"ATREST_CMK_CA", "cmk_ca"},
        {"ATREST_KMS_GRACE_SECONDS", "kms_grace_seconds"},
        {"ATREST_CMK_CHECK_SECONDS", "cmk_check_seconds"},
        {"ATREST_BACKUP_MODE", "backup_mode"},
        {"ATREST_BACKUP_CONTINUOUS_DAYS", "backup_continuous_days"},
        {"ATREST_BACKUP_SHIP_SECONDS", "backup_ship_seconds"},
        {"ATREST_BACKUP_TARGET", "backup_target"},
        {"ATREST_BACKUP_ACCOUNT_KEY_FILE", "backup_account_key_file"},
        {"ATREST_BACKUP_INTERVAL_HOURS", "backup_interval_hours"},
        {"ATREST_BACKUP_RETAIN", "backup_retain"},
        {"ATREST_DEK_ROTATION_DAYS", "dek_rotation_days"},
        {"ATREST_BACKUP_BUSY_MBPS", "backup_busy_mbps"},
        {"ATREST_REENCRYPT_MBPS", "reencrypt_mbps"},
        {"ATREST_DEK_MAX_ENCRYPTIONS", "dek_max_encryptions"},
        {"ATREST_MEDIA_TARGET", "media_target"},
        {"ATREST_MEDIA_ACCOUNT_KEY_FILE", "media_account_key_file"},
        {"ATREST_INDEX_MERGE_KEYS", "index_merge_keys"},
        {"ATREST_PAGE_CACHE_MB", "page_cache_mb"},
    };
    int ro_reset = 1;
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        const char *v = getenv(env[i][0]);
        if (v && *v)
            apply(c, env[i][1], v, &ro_reset);
    }
    /* flags */
    optind = 1;
    opterr = 1;
    ro_reset = 1;
    int at;
    while ((ch = getopt_long(argc, argv, "", opts, &at)) != -1) {
        if (ch == '?' || ch == ':') {
            usage(stderr);
            return -1;
        }
        if (ch == 'f') /* read in pass 1 */
            continue;
        /* Every other flag is the setting of the same name; the two
         * without a value are switches. */
        apply(c, opts[at].name, optarg ? optarg : "1", &ro_reset);
        if (ch == 'm' || ch == 's' || ch == 'r') /* keep keys out of ps */
            secmem_wipe(optarg, strlen(optarg));
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    if (!c->data_dir)
        set(&c->data_dir, "./data");
    if (!c->key_dir)
        set(&c->key_dir, "./keys");
    if (!c->listen)
        set(&c->listen, "127.0.0.1:8081");
    if (!c->media_target) {
        size_t n = strlen(c->data_dir) + 16;
        char *t = malloc(n);
        if (t)
            snprintf(t, n, "file:%s/media", c->data_dir);
        c->media_target = t;
    }
    if (c->bad_number[0]) {
        fprintf(stderr, "atrestd: --%s wants a whole number in its range (see --help)\n",
                c->bad_number);
        return -1;
    }
    if (parse_listen(c) != 0) {
        fprintf(stderr, "atrestd: --listen wants HOST:PORT\n");
        return -1;
    }
    if ((c->kms_url || c->cmk) && !c->kms_token_file && !c->cmk_token_file) {
        fprintf(stderr, "atrestd: --kms and --cmk need --kms-token-file (or --cmk-token-file)\n");
        return -1;
    }
    if (c->cmk_check_s < 0) {
        fprintf(stderr, "atrestd: --cmk-check-seconds wants 0 or more\n");
        return -1;
    }
    if (c->backup_continuous < 0) {
        fprintf(stderr, "atrestd: --backup-mode wants full or continuous\n");
        return -1;
    }
    if (c->backup_days && (c->backup_days != 7 && c->backup_days != 30)) {
        fprintf(stderr, "atrestd: --backup-continuous-days wants 7 or 30\n");
        return -1;
    }
    if (c->backup_ship_s && (c->backup_ship_s < 1 || c->backup_ship_s > 60)) {
        fprintf(stderr, "atrestd: --backup-ship-seconds wants 1 to 60\n");
        return -1;
    }
    if (!c->backup_continuous && (c->backup_days || c->backup_ship_s)) {
        fprintf(stderr, "atrestd: --backup-continuous-days and --backup-ship-seconds need "
                        "--backup-mode continuous\n");
        return -1;
    }
    if (c->backup_continuous && !c->backup_target) {
        fprintf(stderr, "atrestd: --backup-mode continuous needs --backup-target\n");
        return -1;
    }
    if (c->backup_interval_h && (c->backup_interval_h < 1 || c->backup_interval_h > 24)) {
        fprintf(stderr, "atrestd: --backup-interval-hours wants 1 to 24\n");
        return -1;
    }
    if (c->backup_retain && (c->backup_retain < 1 || c->backup_retain > 720)) {
        fprintf(stderr, "atrestd: --backup-retain wants 1 to 720\n");
        return -1;
    }
    if (c->dek_rotation_days > 3650 || c->reencrypt_mbps > 100000) {
        fprintf(stderr, "atrestd: --dek-rotation-days wants 0 to 3650, --reencrypt-mbps 0 to "
                        "100000\n");
        return -1;
    }
    if (c->backup_busy_mbps > 100000) {
        fprintf(stderr, "atrestd: --backup-busy-mbps wants 0 (never paced) to 100000\n");
        return -1;
    }
    if (c->dek_max_encryptions < 0 || c->dek_max_encryptions > (1LL << 30)) {
        fprintf(stderr, "atrestd: --dek-max-encryptions wants 1 to 1073741824 (2^30)\n");
        return -1;
    }
    if (c->index_merge_keys < 0 || c->index_merge_keys > 16777216) {
        fprintf(stderr, "atrestd: --index-merge-keys wants 1 to 16777216\n");
        return -1;
    }
    if (c->page_cache_mb == -1)
        c->page_cache_mb = PAGECACHE_DEFAULT_MB;
    if (c->dek_rotation_days == -1)
        c->dek_rotation_days = 90;
    if (c->reencrypt_mbps == -1)
        c->reencrypt_mbps = 64;
    if (c->backup_busy_mbps == -1)
        c->backup_busy_mbps = BACKUP_BUSY_MBPS_DEFAULT;
    if (!c->backup_target && (c->backup_key_file || c->backup_interval_h || c->backup_retain)) {
        fprintf(stderr, "atrestd: the --backup-* settings need --backup-target\n");
        return -1;
    }
    return 0;
}

void config_free(struct config *c)
{
    set(&c->backup_target, NULL);
    set(&c->backup_key_file, NULL);
    set(&c->media_target, NULL);
    set(&c->media_key_file, NULL);
    set(&c->data_dir, NULL);
    set(&c->key_dir, NULL);
    set(&c->listen, NULL);
    set(&c->config_file, NULL);
    set(&c->master_key, NULL);
    set(&c->secondary_key, NULL);
    for (int i = 0; i < c->nreadonly; i++)
        set(&c->readonly_keys[i], NULL);
    set(&c->tls_cert, NULL);
    set(&c->tls_key, NULL);
    set(&c->kms_url, NULL);
    set(&c->kms_token_file, NULL);
    set(&c->kms_ca, NULL);
    set(&c->kms_key, NULL);
    set(&c->cmk, NULL);
    set(&c->cmk_token_file, NULL);
    set(&c->cmk_ca, NULL);
}
