/*
 * server.h — the atrestd HTTPS server, as main.c sees it.
 *
 * http_start() serves the Cosmos REST API on an address with libmicrohttpd
 * (thread per connection, TLS 1.2+ only, GnuTLS inside) until http_stop(),
 * which stops accepting and waits for requests in flight to finish.
 */
#ifndef ATREST_SERVER_SERVER_H
#define ATREST_SERVER_SERVER_H

#include "common/error.h"

struct server;
struct http;

struct http_options {
    const char *host; /* numeric address or name */
    int port;
    const char *cert_pem, *key_pem; /* PEM text */
    unsigned conn_limit;            /* 0: default */
    unsigned timeout_s;             /* idle/slow connection timeout; 0: default */
};

int http_start(struct server *srv, const struct http_options *opt, struct http **out) AT_WUR;
void http_stop(struct http *h);

/* tls.c: make sure a certificate exists. With cert_path/key_path given,
 * read them; otherwise use <key_dir>/tls/server.{crt,key}, creating a
 * self-signed one (EC P-256, SAN IP:127.0.0.1, DNS:localhost, 2 years)
 * when missing. *cert_out / *key_out are malloc'd PEM texts; *used_path
 * (malloc'd) names the certificate file. */
int tls_load_or_create(const char *key_dir, const char *cert_path, const char *key_path,
                       char **cert_out, char **key_out, char **used_path) AT_WUR;

/* config.c: settings from flags > environment > config file > defaults.
 * Key strings are wiped from argv once read (ps shows no keys). */
#define CONFIG_MAX_RO 4
struct config {
    char *data_dir, *key_dir, *listen, *config_file;
    char *master_key, *secondary_key;
    char *readonly_keys[CONFIG_MAX_RO];
    int nreadonly;
    char *tls_cert, *tls_key;
    int log_requests;
    /* backups (docs/backup.md) */
    int backup_continuous; /* --backup-mode continuous */
    int backup_days;       /* 7 or 30; 0: 7 */
    int backup_ship_s;     /* segment interval; 0: 2 */
    char *backup_target, *backup_key_file;
    int backup_interval_h, backup_retain; /* 0: defaults (4, 2) */
    int backup_busy_mbps;                 /* -1: default; 0: never paced */
    /* data-key rotation (docs/kms.md) */
    int dek_rotation_days;         /* -1: default (90); 0: off */
    int reencrypt_mbps;            /* -1: default (64); 0: no limit */
    long long dek_max_encryptions; /* 0: default (2^30) */
    /* media attachments (docs/attachments.md): default file:<data-dir>/media */
    char *media_target, *media_key_file;
    char host[256];
    int port;
    /* key service (docs/kms.md, "atrestd and the key service") */
    char *kms_url, *kms_token_file, *kms_ca, *kms_key;
    char *cmk, *cmk_token_file, *cmk_ca;
    int kms_insecure;
    int kms_grace_s;       /* -1: default (300) */
    int cmk_check_s;       /* 0: default (30) */
    long index_merge_keys; /* 0: default (131072; docs/query.md) */
    long page_cache_mb;    /* decrypted pages kept for all stores (pagecache.h) */
    char bad_number[64];   /* the first setting whose number did not parse */
};
/* 0 ok; 1 printed help; -1 usage error (printed). */
int config_load(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);

/* backups.c: periodic and on-demand backups (docs/backup.md). Nothing is
 * started without a target. */
struct server;
struct store_env;
struct backup_settings {
    const char *target, *account_key_file;
    int interval_h, retain; /* 0: defaults */
    int continuous;         /* ship every commit (ship.h) */
    int days;               /* continuous retention window; 0: 7 */
    int ship_s;             /* continuous: a segment every ship_s seconds; 0: 2 */
    int busy_mbps;          /* backup_job_set_busy_mbps; 0: never paced */
};
/* In continuous mode backups_prepare runs before the catalog opens (the
 * shipper must see every store open); backups_start after it. */
int backups_prepare(struct server *srv, struct store_env *env,
                    const struct backup_settings *s) AT_WUR;
int backups_start(struct server *srv, struct store_env *env,
                  const struct backup_settings *s) AT_WUR;
/* Waits for a backup in progress. backups_finish stops the shipper once
 * every store is closed (after catalog_close). */
void backups_stop(struct server *srv);
void backups_finish(struct server *srv);

/* datakeys.c: data-key rotation and re-encryption (docs/kms.md). */
struct datakeys_settings {
    int rotate_days; /* rotate every N days; 0: only on request */
    int rate_mbps;   /* re-encryption throttle in MB/s; 0: no limit */
};
int datakeys_start(struct server *srv, struct store_env *env,
                   const struct datakeys_settings *s) AT_WUR;
void datakeys_stop(struct server *srv); /* lets a running batch finish */

#endif
