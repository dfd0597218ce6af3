/*
 * main.c — atrestd: the Cosmos DB SQL API over HTTPS on the encrypted store.
 *
 * Start-up: harden the process (secmem), read settings (config.c), decode
 * the account keys into locked memory, open the key providers (keysetup.c:
 * the embedded one, or the key service with --kms, plus the customer key
 * with --cmk) and the data folder (created at first start), start the key
 * monitor (keymon.c) when a key service is involved, open every store
 * (catalog.c), load or create the TLS certificate (tls.c), listen
 * (http.c), print the banner. SIGTERM/SIGINT: stop accepting and finish
 * requests in flight (MHD_stop_daemon), stop the writers, close the stores,
 * exit 0. Exit 2 on a setup error.
 */
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/secmem.h"
#include "server/keymon.h"
#include "server/keysetup.h"
#include "server/server.h"
#include "server/srv.h"
#include "storage/pagecache.h"
#include "storage/store.h"

static const char DEV_KEY[] =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

static int add_key(struct server *srv, const char *b64, int readonly, const char *what)
{
    size_t n = strlen(b64);
    if (n == 0 || n % 4 || n > 1024 || srv->nkeys == SRV_MAX_KEYS) {
        fprintf(stderr, "atrestd: the %s is not valid base64\n", what);
        return -1;
    }
    unsigned char *k = secmem_alloc(n);
    if (!k) {
        fprintf(stderr, "atrestd: cannot lock memory for the %s\n", what);
        return -1;
    }
    int len = EVP_DecodeBlock(k, (const unsigned char *)b64, (int)n);
    if (len < 0) {
        secmem_free(k, n);
        fprintf(stderr, "atrestd: the %s is not valid base64\n", what);
        return -1;
    }
    if (b64[n - 1] == '=')
        len--;
    if (b64[n - 2] == '=')
        len--;
    if (len < 16) {
        secmem_free(k, n);
        fprintf(stderr, "atrestd: the %s is too short (at least 16 bytes)\n", what);
        return -1;
    }
    srv->keys[srv->nkeys].bytes = k;
    srv->keys[srv->nkeys].len = (size_t)len;
    srv->keys[srv->nkeys].alloc = n;
    srv->keys[srv->nkeys].readonly = readonly;
    srv->nkeys++;
    return 0;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(int argc, char **argv)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Block the stop signals in every thread; main waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    umask(077); /* every file atrestd creates is private to its user */
    if (secmem_init() != 0)
        fprintf(stderr, "atrestd: warning: could not disable core dumps\n");

    struct config cfg;
    int crc = config_load(&cfg, argc, argv);
    if (crc != 0) {
        config_free(&cfg);
        return crc > 0 ? 0 : 2;
    }
    static struct server srv;
    srv.log_requests = cfg.log_requests;
    snprintf(srv.listen_host, sizeof srv.listen_host, "%s", cfg.host);
    srv.listen_port = cfg.port;
    int dev = !cfg.master_key;
    int rc = add_key(&srv, dev ? DEV_KEY : cfg.master_key, 0, "master key");
    if (!rc && cfg.secondary_key)
        rc = add_key(&srv, cfg.secondary_key, 0, "secondary key");
    for (int i = 0; !rc && i < cfg.nreadonly; i++)
        rc = add_key(&srv, cfg.readonly_keys[i], 1, "read-only key");
    if (rc) {
        config_free(&cfg);
        return 2;
    }

    struct keysetup ks = {{NULL, NULL}, {0, 0}, 0};
    struct store_env *env = NULL;
    struct http *http = NULL;
    char *cert = NULL, *key = NULL, *cert_path = NULL;
    int exit_code = 2;
    at_error_clear();
    if (keysetup_open(&cfg, &ks) != 0)
        goto out;
    struct store_env_options eo = {.data_dir = cfg.data_dir,
                                   .outer = ks.kp[0],
                                   .inner = ks.kp[1],
                                   .create = 1,
                                   .rotate_at = (uint64_t)cfg.dek_max_encryptions};
    if ((rc = store_env_open(&eo, &env)) != 0) {
        fprintf(stderr, "atrestd: cannot open the data folder: %s\n", at_error_detail());
        goto out;
    }
    struct backup_settings bset = {.target = cfg.backup_target,
                                   .account_key_file = cfg.backup_key_file,
                                   .interval_h = cfg.backup_interval_h,
                                   .retain = cfg.backup_retain,
                                   .continuous = cfg.backup_continuous,
                                   .days = cfg.backup_days,
                                   .ship_s = cfg.backup_ship_s,
                                   .busy_mbps = cfg.backup_busy_mbps};
    if ((rc = backups_prepare(&srv, env, &bset)) != 0) {
        fprintf(stderr, "atrestd: continuous backups: %s\n", at_error_detail());
        goto out;
    }
    ix_set_merge_keys(cfg.index_merge_keys);
    if ((rc = pagecache_configure((size_t)cfg.page_cache_mb << 20)) != 0) {
        fprintf(stderr, "atrestd: cannot set up a page cache of %ld MB\n", cfg.page_cache_mb);
        goto out;
    }
    if ((rc = catalog_open(env, &srv.cat)) != 0) {
        fprintf(stderr, "atrestd: cannot open the account: %s\n", at_error_detail());
        goto out;
    }
    if (!cfg.media_target ||
        (rc = catalog_set_media(srv.cat, cfg.media_target, cfg.media_key_file)) != 0) {
        fprintf(stderr, "atrestd: media target: %s\n",
                cfg.media_target ? at_error_detail() : "out of memory");
        goto out;
    }
    if ((rc = backups_start(&srv, env, &bset)) != 0) {
        fprintf(stderr, "atrestd: backups: %s\n", at_error_detail());
        goto out;
    }
    struct datakeys_settings dset = {.rotate_days = cfg.dek_rotation_days,
                                     .rate_mbps = cfg.reencrypt_mbps};
    if ((rc = datakeys_start(&srv, env, &dset)) != 0) {
        fprintf(stderr, "atrestd: %s\n", at_error_detail());
        goto out;
    }
    if ((rc = ttl_start(srv.cat, &srv.ttl)) != 0) {
        fprintf(stderr, "atrestd: %s\n", at_error_detail());
        goto out;
    }
    struct keymon_options ko = {.kr = store_env_keyring(env),
                                .remote = {ks.remote[0], ks.remote[1]},
                                .check_s = cfg.cmk_check_s,
                                .grace_s = cfg.kms_grace_s,
                                .rewrap = 1,
                                .kp = {ks.kp[0], ks.kp[1]}};
    if ((rc = keymon_start(&ko, &srv.keymon)) != 0) {
        fprintf(stderr, "atrestd: %s\n", at_error_detail());
        goto out;
    }
    if ((rc = tls_load_or_create(cfg.key_dir, cfg.tls_cert, cfg.tls_key, &cert, &key,
                                 &cert_path)) != 0) {
        fprintf(stderr, "atrestd: TLS certificate: %s\n", at_error_detail());
        goto out;
    }
    struct http_options ho = {.host = cfg.host, .port = cfg.port, .cert_pem = cert, .key_pem = key};
    rc = http_start(&srv, &ho, &http);
    secmem_wipe(key, strlen(key));
    if (rc) {
        fprintf(stderr, "atrestd: %s\n", at_error_detail());
        goto out;
    }
    const char *shown =
        strcmp(cfg.host, "0.0.0.0") == 0 || strcmp(cfg.host, "::") == 0 ? "127.0.0.1" : cfg.host;
    int v6 = strchr(shown, ':') != NULL;
    fprintf(stderr,
            "atrestd: serving the Cosmos DB SQL API, encrypted at rest\n"
            "  endpoint:     https://%s%s%s:%d/\n"
            "  key:          %s\n"
            "  certificate:  %s\n"
            "  data folder:  %s (%d container%s)\n"
            "  key folder:   %s\n"
            "  started in    %.1f ms\n",
            v6 ? "[" : "", shown, v6 ? "]" : "", cfg.port, dev ? DEV_KEY : "(from --master-key)",
            cert_path, cfg.data_dir, catalog_count_colls(srv.cat),
            catalog_count_colls(srv.cat) == 1 ? "" : "s", cfg.key_dir, ms_since(&t0));
    for (int l = 0; l < 2; l++)
        if (ks.remote[l])
            fprintf(stderr, "  %s  %s (key service)\n", l ? "customer key:" : "service key: ",
                    keyring_key_id(store_env_keyring(env), l));
    if (dev)
        fprintf(stderr,
                "atrestd: WARNING: using the well-known Cosmos DB emulator key. It is a "
                "DEVELOPMENT key that everyone knows;\n"
                "atrestd: WARNING: anyone who can reach this port can read and write all data. "
                "Pass --master-key for real use.\n");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "atrestd: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    http_stop(http);
    http = NULL;
    exit_code = 0;
out:
    http_stop(http);
    ttl_stop(srv.ttl);
    datakeys_stop(&srv);
    keymon_stop(srv.keymon);
    backups_stop(&srv);
    catalog_close(srv.cat);
    backups_finish(&srv); /* the shipper, once every store is closed */
    if (env)
        store_env_close(env);
    keysetup_close(&ks);
    for (int i = 0; i < srv.nkeys; i++)
        secmem_free(srv.keys[i].bytes, srv.keys[i].alloc);
    free(cert);
    free(key);
    free(cert_path);
    config_free(&cfg);
    if (exit_code == 0)
        fprintf(stderr, "atrestd: stopped cleanly\n");
    return exit_code;
}
