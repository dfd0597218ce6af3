/*
 * backup_cmd.c — `atrest backup now|list|verify|restore` (docs/backup.md).
 *
 *   now      asks a running atrestd for a backup (POST /atrest/backups,
 *            signed with the master key) and prints the backup id
 *   list     id, time, size and stores of every backup in a target
 *   verify   authenticates the manifest and every chunk of a backup
 *   restore  into a NEW data folder and key folder (a new account); with
 *            --at TIME (RFC 3339) to that moment, from a continuous-mode
 *            base and its log
 *
 * Exit codes: 0 done; 1 a backup failed authentication or is damaged
 * (verify/restore refuse it); 2 usage, setup or any other error.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "backup/backup.h"
#include "cli/admin.h"
#include "common/error.h"
#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "media/media.h"
#include "storage/store.h"

int cmd_backup(int argc, char **argv);

static void usage(FILE *to)
{
    fputs("usage:\n"
          "  atrest backup now --endpoint https://HOST:PORT --master-key B64 [--insecure | "
          "--cacert F]\n"
          "  atrest backup list --target T [--backup-account-key-file F] [--key-dir K]\n"
          "  atrest backup verify --target T [--backup-account-key-file F] --key-dir K "
          "[--backup ID]\n"
          "  atrest backup restore --target T [--backup-account-key-file F] --key-dir K "
          "[--backup ID | --at TIME]\n"
          "                        --to NEWDATA --to-key-dir NEWKEYS\n"
          "                        [--to-media-target T2 [--to-media-account-key-file F]]\n"
          "With an account whose keys are in a key service, instead of --key-dir:\n"
          "  [--kms https://HOST:PORT] --kms-token-file F [--kms-ca F] [--kms-insecure]\n"
          "  [--cmk-token-file F] [--cmk-ca F]   (the keys are the ones the backup names)\n"
          "T is file:DIR or azblob:URL; K is the key folder of the account that was backed\n"
          "up (without it its backups cannot be read). --backup defaults to the newest.\n"
          "--at restores the moment TIME (RFC 3339, e.g. 2026-11-28T09:30:00.250Z or\n"
          "2026-11-28T10:30:00+01:00) from a continuous-mode backup (atrestd --backup-mode\n"
          "continuous). Attachments' media go to T2 (default file:NEWDATA/media, where\n"
          "atrestd looks by default); give atrestd --media-target T2 if you change it.\n",
          to);
}

struct opts {
    const char *target, *key_file, *key_dir, *id, *to, *to_keys, *at;
    const char *endpoint, *master_key, *cacert;
    int insecure;
    /* an account whose keys are in a key service (docs/kms.md) */
    const char *kms, *kms_token, *kms_ca, *cmk_token, *cmk_ca;
    int kms_insecure;
    /* restore: where the new account keeps its media (docs/attachments.md) */
    const char *to_media, *to_media_key;
};

/* ---- progress: a bar on a terminal, lines otherwise ---- */

struct progress {
    double t0, last;
    int tty, shown;
};

static void fmt_eta(double s, char *out, size_t n)
{
    if (s < 0 || s > 360000)
        snprintf(out, n, "--");
    else if (s >= 3600)
        snprintf(out, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(out, n, "%ds", (int)s);
}

static void on_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    double t = mono_seconds();
    int end = total && done >= total;
    if (!end && t - p->last < (p->tty ? 0.1 : 1.0))
        return;
    p->last = t;
    double el = t - p->t0, rate = el > 0 ? (double)done / el : 0;
    double frac = total ? (double)done / (double)total : 0;
    char eta[16];
    fmt_eta(rate > 0 && total ? (double)(total - done) / rate : -1, eta, sizeof eta);
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%-7s [%s] %3d%%  %.1f / %.1f MB  %.1f MB/s  ETA %s   ", phase, bar,
                (int)(frac * 100), (double)done / 1e6, (double)total / 1e6, rate / 1e6, eta);
        if (end)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %.1f of %.1f MB (%d%%), %.1f MB/s, ETA %s\n", phase,
                (double)done / 1e6, (double)total / 1e6, (int)(frac * 100), rate / 1e6, eta);
    }
    p->shown = 1;
}

/* ---- errors ---- */

static int exit_code(int rc)
{
    return rc == AT_EINTEGRITY || rc == AT_EFORMAT || rc == AT_EKEYMISMATCH ? 1 : 2;
}

static int failed(const char *what, int rc)
{
    fprintf(stderr, "atrest backup %s: %s\n", what, at_error_detail());
    if (exit_code(rc) == 1)
        fprintf(stderr, "atrest backup %s: REFUSED: the backup is damaged, tampered with, or "
                        "not this key folder's\n", what);
    return exit_code(rc);
}

/* ---- now ---- */

static int json_str(const char *json, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n)
        out[i++] = *p++;
    out[i] = 0;
    return 0;
}

static int cmd_now(const struct opts *o)
{
    struct admin_conn a = {o->endpoint, o->master_key, o->cacert, o->insecure};
    char body[8192];
    long status = 0;
    if (o->endpoint)
        fprintf(stderr, "atrest backup now: asking %s for a backup...\n", o->endpoint);
    double t0 = mono_seconds();
    int rc = admin_call(&a, "atrest backup now", "POST", "atrest/backups", &status, body,
                        sizeof body);
    if (rc)
        return rc;
    char id[BACKUP_ID_LEN + 8], msg[sizeof body];
    if (status != 201 || json_str(body, "id", id, sizeof id) != 0) {
        if (json_str(body, "message", msg, sizeof msg) != 0)
            snprintf(msg, sizeof msg, "%s", body);
        fprintf(stderr, "atrest backup now: the server answered %ld: %s\n", status, msg);
        return 2;
    }
    fprintf(stderr, "atrest backup now: backup complete in %.1f s\n", mono_seconds() - t0);
    printf("%s\n", id);
    return 0;
}

/* ---- list / verify / restore ---- */

static int open_keys(const char *key_dir, const char *data_for_check, struct key_provider **kp)
{
    int rc = embedded_provider_open(key_dir, data_for_check, 0, kp);
    if (rc)
        fprintf(stderr, "atrest backup: cannot open the key folder %s: %s\n", key_dir,
                at_error_detail());
    return rc;
}

/* The provider of a layer whose key id is a key service's key URL. */
static int open_kms_layer(const struct opts *o, const char *key_id, int layer,
                          struct key_provider **kp)
{
    const char *tf = layer && o->cmk_token ? o->cmk_token : o->kms_token;
    if (!tf) {
        fprintf(stderr, "atrest backup: the backup's %s key %s is in a key service: give "
                        "--kms-token-file%s\n",
                layer ? "customer-managed" : "service", key_id, layer ? " or --cmk-token-file" : "");
        return AT_EINVAL;
    }
    size_t kl = o->kms ? strlen(o->kms) : 0;
    while (kl && o->kms[kl - 1] == '/')
        kl--;
    if (!layer && o->kms && (strncmp(key_id, o->kms, kl) != 0 || key_id[kl] != '/')) {
        fprintf(stderr, "atrest backup: the backup's service key is %s, not in %s\n", key_id,
                o->kms);
        return AT_EINVAL;
    }
    int rc = cli_open_kms(key_id, tf, layer && o->cmk_ca ? o->cmk_ca : o->kms_ca,
                          o->kms_insecure, 0, kp);
    if (rc)
        fprintf(stderr, "atrest backup: key %s: %s\n", key_id, at_error_detail());
    return rc;
}

/* The account's key providers for backup id (NULL: the newest), from what
 * its manifest names: a key service's key (the --kms-* and --cmk-* flags)
 * or the embedded provider of --key-dir, per layer. 0, or an error
 * (printed). Free with keys_close. */
static int open_backup_keys(const struct opts *o, struct blob_store *bs, const char *id,
                            const char *data_for_check, struct backup_keys *k)
{
    char ids[2][KP_KEY_ID_MAX];
    int layers = 0;
    memset(k, 0, sizeof *k);
    int rc = backup_key_ids(bs, id, ids, &layers);
    if (rc == AT_ENOTFOUND && !id && o->key_dir) /* no backup yet: the key folder alone */
        return open_keys(o->key_dir, data_for_check, &k->outer);
    if (rc) {
        fprintf(stderr, "atrest backup: %s\n", at_error_detail());
        return rc;
    }
    for (int l = 0; l < layers && !rc; l++) {
        struct key_provider **kp = l ? &k->inner : &k->outer;
        if (strncmp(ids[l], "https://", 8) == 0) {
            rc = open_kms_layer(o, ids[l], l, kp);
        } else if (!o->key_dir) {
            fprintf(stderr, "atrest backup: the backup's keys are in a key folder: give "
                            "--key-dir\n");
            rc = AT_EINVAL;
        } else {
            rc = open_keys(o->key_dir, data_for_check, kp);
        }
    }
    if (rc) {
        kp_destroy(k->outer);
        kp_destroy(k->inner);
        memset(k, 0, sizeof *k);
    }
    return rc;
}

static void keys_close(struct backup_keys *k)
{
    kp_destroy(k->outer);
    kp_destroy(k->inner);
}

static int open_target(const struct opts *o, struct blob_store **bs)
{
    struct blob_options bo = {.target = o->target, .account_key_file = o->key_file};
    int rc = blob_open(&bo, bs);
    if (rc)
        fprintf(stderr, "atrest backup: cannot open the target: %s\n", at_error_detail());
    return rc;
}

static void fmt_time(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A placeholder data folder for the key folder's placement check when no
 * data folder is involved: a sibling that never exists. */
static void no_data(const char *key_dir, char *out, size_t n)
{
    snprintf(out, n, "%s.atrest-backup-no-data", key_dir);
}

static int cmd_list(const struct opts *o)
{
    struct blob_store *bs = NULL;
    struct backup_keys keys = {0};
    char nd[4096];
    if (open_target(o, &bs) != 0)
        return 2;
    if (o->key_dir || o->kms_token) {
        no_data(o->key_dir ? o->key_dir : "/", nd, sizeof nd);
        if (open_backup_keys(o, bs, NULL, nd, &keys) != 0) {
            blob_close(bs);
            return 2;
        }
    }
    struct key_provider *kp = keys.outer;
    struct backup_info *v = NULL;
    size_t n = 0;
    struct backup_log_info *lv = NULL;
    size_t ln = 0;
    int rc = backup_list(bs, kp ? &keys : NULL, &v, &n);
    if (!rc)
        rc = backup_log_list(bs, kp ? &keys : NULL, &lv, &ln);
    blob_close(bs);
    keys_close(&keys);
    if (rc) {
        free(v);
        return failed("list", rc);
    }
    printf("%-27s %-20s %12s %6s  %s\n", "ID", "TIME (UTC)", "BYTES", "STORES", "MANIFEST");
    for (size_t i = 0; i < n; i++) {
        char t[32];
        fmt_time(v[i].created, t, sizeof t);
        printf("%-27s %-20s %12" PRIu64 " %6u  %s\n", v[i].id, v[i].created ? t : "-",
               v[i].bytes, v[i].nstores,
               v[i].verified > 0    ? "authentic"
               : v[i].verified == 0 ? "not checked (no --key-dir)"
                                    : "FAILED authentication");
    }
    free(v);
    if (ln)
        printf("\n%-27s %9s  %-24s %s\n", "LOG EPOCH (continuous)", "SEGMENTS",
               "COVERS UNTIL (UTC)", "HEAD");
    for (size_t i = 0; i < ln; i++) {
        char t[40] = "-";
        if (lv[i].verified > 0) {
            time_t s = (time_t)(lv[i].covered_us / 1000000);
            struct tm tm;
            gmtime_r(&s, &tm);
            strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(t + strlen(t), sizeof t - strlen(t), ".%03dZ",
                     (int)(lv[i].covered_us % 1000000 / 1000));
        }
        printf("%-27s %9" PRIu64 "  %-24s %s\n", lv[i].epoch, lv[i].segments, t,
               lv[i].verified > 0 && lv[i].closed ? "authentic, closed (a clean stop)"
               : lv[i].verified > 0               ? "authentic"
               : lv[i].verified == 0              ? "not checked (no --key-dir)"
                                                  : "MISSING or FAILED authentication");
    }
    free(lv);
    return 0;
}

static int pick_id(struct blob_store *bs, const struct opts *o, char id[BACKUP_ID_LEN])
{
    if (o->id) {
        if (strlen(o->id) >= BACKUP_ID_LEN) {
            fprintf(stderr, "atrest backup: '%s' is not a backup id\n", o->id);
            return AT_EINVAL;
        }
        snprintf(id, BACKUP_ID_LEN, "%s", o->id);
        return 0;
    }
    int rc = backup_latest(bs, id);
    if (rc)
        fprintf(stderr, "atrest backup: %s\n", at_error_detail());
    return rc;
}

static int cmd_verify(const struct opts *o)
{
    if (!o->target || (!o->key_dir && !o->kms_token)) {
        fprintf(stderr, "atrest backup verify: --target and --key-dir (or the key service's "
                        "--kms-token-file) are required\n");
        return 2;
    }
    struct blob_store *bs = NULL;
    struct backup_keys keys = {0};
    char nd[4096], id[BACKUP_ID_LEN];
    no_data(o->key_dir ? o->key_dir : "/", nd, sizeof nd);
    if (open_target(o, &bs) != 0 || (!o->at && pick_id(bs, o, id) != 0) ||
        open_backup_keys(o, bs, o->at ? NULL : id, nd, &keys) != 0) {
        blob_close(bs);
        return 2;
    }
    struct progress p = {.t0 = mono_seconds(), .tty = isatty(2)};
    struct backup_info info;
    int rc = backup_verify(bs, &keys, id, on_progress, &p, &info);
    blob_close(bs);
    keys_close(&keys);
    if (p.tty && p.shown && rc)
        fputc('\n', stderr);
    if (rc)
        return failed("verify", rc);
    double el = mono_seconds() - p.t0;
    printf("backup %s: OK (manifest and %u stores authentic, %.1f MB in %.1f s, %.1f MB/s)\n", id,
           info.nstores, (double)info.plain_bytes / 1e6, el,
           (double)info.plain_bytes / 1e6 / (el > 0 ? el : 1e-9));
    return 0;
}

/* 0 when path does not exist or is an empty folder. */
static int fresh(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n ? -1 : 0;
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

/* RFC 3339 date-time (fraction and offset optional, "Z" or ±HH:MM) to unix
 * microseconds; -1 when it is not one. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t us = 0, scale = 100000;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            us += scale ? (*p - '0') * scale : 0;
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
            return -1;
        off = (hh * 60 + mm) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return ((int64_t)timegm(&tm) - off) * 1000000 + us;
}

static int cmd_restore_at(const struct opts *o, struct blob_store *bs,
                          const struct backup_keys *keys, struct store_env *env,
                          struct progress *p, char id[BACKUP_ID_LEN])
{
    int64_t at = parse_time(o->at);
    if (at < 0)
        return at_error_set(AT_EINVAL, "--at '%s' is not an RFC 3339 time", o->at);
    int rc = backup_restore_at(bs, keys, at, env, on_progress, p, id);
    if (!rc)
        printf("restored %s as of %s (base backup %s and its log)\n"
               "  data folder: %s\n  key folder:  %s\n"
               "serve it with: atrestd --data-dir %s --key-dir %s\n",
               o->target, o->at, id, o->to, o->to_keys, o->to, o->to_keys);
    return rc;
}

static int count_blob(void *ctx, const struct blob_info *info)
{
    (void)info;
    (*(size_t *)ctx)++;
    return 0;
}

/* The media of restored backup id: each container's attachment keys move
 * from the backup's media key to the container's new keys and the sealed
 * blobs are copied into the new account's media target, each read through
 * (authenticated) on the way (media_copy_table). Nothing to do, and no
 * media folder made, when the backup holds no media. */
static int restore_media(const struct opts *o, struct blob_store *bs,
                         const struct backup_keys *keys, struct store_env *env, const char *id,
                         struct media_copy_stats *total)
{
    memset(total, 0, sizeof *total);
    char prefix[BACKUP_ID_LEN + 8], target[4200];
    uint8_t *key = secmem_alloc(BACKUP_MEDIA_KEY_LEN);
    if (!key)
        return AT_ENOMEM;
    size_t nblobs = 0;
    int rc = backup_media_key(bs, keys, id, key, prefix, sizeof prefix);
    if (!rc)
        rc = blob_list(bs, prefix, count_blob, &nblobs);
    if (rc || nblobs == 0) {
        secmem_free(key, BACKUP_MEDIA_KEY_LEN);
        return rc;
    }
    snprintf(target, sizeof target, "file:%s/media", o->to);
    if (!o->to_media && mkdir(target + 5, 0700) != 0 && errno != EEXIST) {
        secmem_free(key, BACKUP_MEDIA_KEY_LEN);
        return at_error_set(errno, "cannot make %s: %s", target + 5, strerror(errno));
    }
    struct blob_options mo = {.target = o->to_media ? o->to_media : target,
                              .account_key_file = o->to_media_key,
                              .block_size = 1u << 20};
    struct blob_store *mbs = NULL;
    struct keyring *kr = store_env_keyring(env);
    char(*names)[KEYRING_NAME_MAX] = calloc(4096, KEYRING_NAME_MAX);
    uint8_t(*ids)[KEYRING_FILE_ID_LEN] = calloc(4096, KEYRING_FILE_ID_LEN);
    size_t n = 0;
    rc = !names || !ids ? AT_ENOMEM : blob_open(&mo, &mbs);
    if (!rc)
        rc = keyring_list_files(kr, names, ids, 4096, &n);
    struct media_keys from = {.fixed = key, .fixed_layers = keyring_layers(kr)};
    for (size_t i = 0; i < n && !rc; i++) {
        if (strcmp(names[i], "meta") == 0)
            continue;
        struct media_keys to = {.kr = kr};
        memcpy(to.file_id, ids[i], KEYRING_FILE_ID_LEN);
        struct store *st = NULL;
        struct media_copy_stats one;
        rc = store_open(env, names[i], &st);
        if (!rc)
            rc = store_begin(st);
        if (!rc) {
            rc = media_copy_table(store_db(st), &from, &to, bs, mbs, prefix, 1, &one);
            if (!rc)
                rc = store_commit(st);
            else
                store_rollback(st);
        }
        if (st && store_close(st) != 0 && !rc)
            rc = AT_ESQLITE;
        if (rc) {
            at_error_set(rc, "media of %s: %s", names[i], at_error_detail());
            break;
        }
        total->copied += one.copied;
        total->missing += one.missing;
        total->bytes += one.bytes;
    }
    blob_close(mbs);
    free(names);
    free(ids);
    secmem_free(key, BACKUP_MEDIA_KEY_LEN);
    return rc;
}

static int cmd_restore(const struct opts *o)
{
    if (o->at && o->id) {
        fprintf(stderr, "atrest backup restore: --backup and --at exclude each other\n");
        return 2;
    }
    if (!o->target || (!o->key_dir && !o->kms_token) || !o->to || !o->to_keys) {
        fprintf(stderr, "atrest backup restore: --target, --key-dir (or the key service's "
                        "--kms-token-file), --to and --to-key-dir are required\n");
        return 2;
    }
    if (fresh(o->to) != 0 || fresh(o->to_keys) != 0) {
        fprintf(stderr, "atrest backup restore: --to and --to-key-dir must be new (missing or "
                        "empty) folders: a restore makes a new account\n");
        return 2;
    }
    struct blob_store *bs = NULL;
    struct key_provider *nkp = NULL;
    struct backup_keys keys = {0};
    struct store_env *env = NULL;
    char id[BACKUP_ID_LEN];
    if (open_target(o, &bs) != 0 || (!o->at && pick_id(bs, o, id) != 0) ||
        open_backup_keys(o, bs, o->at ? NULL : id, o->to, &keys) != 0) {
        blob_close(bs);
        return 2;
    }
    at_error_clear();
    int rc = embedded_provider_open(o->to_keys, o->to, 1, &nkp);
    if (!rc) {
        /* A two-layer account restores into a two-layer one: new DEKs,
         * a new service key (the embedded provider of --to-key-dir), and
         * the same customer-managed key (its owner keeps control). */
        struct store_env_options eo = {
            .data_dir = o->to, .outer = nkp, .inner = keys.inner, .create = 1};
        rc = store_env_open(&eo, &env);
    }
    if (rc) {
        fprintf(stderr, "atrest backup restore: cannot create the new account: %s\n",
                at_error_detail());
        kp_destroy(nkp);
        blob_close(bs);
        keys_close(&keys);
        rm_rf(o->to);
        rm_rf(o->to_keys);
        return 2;
    }
    struct progress p = {.t0 = mono_seconds(), .tty = isatty(2)};
    struct backup_info info;
    struct media_copy_stats media = {0};
    if (o->at)
        rc = cmd_restore_at(o, bs, &keys, env, &p, id);
    else
        rc = backup_restore(bs, &keys, id, env, on_progress, &p, &info);
    if (!rc)
        rc = restore_media(o, bs, &keys, env, id, &media);
    if (!rc && media.copied)
        printf("restored the media of %zu attachment%s (%.1f MB)\n", media.copied,
               media.copied == 1 ? "" : "s", (double)media.bytes / 1e6);
    if (!rc && media.missing)
        fprintf(stderr,
                "atrest backup restore: %zu attachment%s without media in the backup (deleted "
                "while it was taken, or added after its base by the continuous log): their "
                "media will not read\n",
                media.missing, media.missing == 1 ? " has" : "s have");
    store_env_close(env);
    kp_destroy(nkp);
    blob_close(bs);
    keys_close(&keys);
    if (p.tty && p.shown && rc)
        fputc('\n', stderr);
    if (rc) {
        /* Nothing that could pass for an account stays behind. */
        rm_rf(o->to);
        rm_rf(o->to_keys);
        int code = failed("restore", rc);
        fprintf(stderr, "atrest backup restore: nothing was restored; %s and %s were removed\n",
                o->to, o->to_keys);
        return code;
    }
    if (o->at)
        return 0;
    double el = mono_seconds() - p.t0;
    printf("restored backup %s: %u stores, %.1f MB in %.1f s (%.1f MB/s)\n"
           "  data folder: %s\n  key folder:  %s\n"
           "serve it with: atrestd --data-dir %s --key-dir %s\n",
           id, info.nstores, (double)info.plain_bytes / 1e6, el,
           (double)info.plain_bytes / 1e6 / (el > 0 ? el : 1e-9), o->to, o->to_keys, o->to,
           o->to_keys);
    return 0;
}

int cmd_backup(int argc, char **argv)
{
    static const struct option lo[] = {
        {"target", required_argument, NULL, 't'},
        {"backup-account-key-file", required_argument, NULL, 'a'},
        {"key-dir", required_argument, NULL, 'k'},
        {"backup", required_argument, NULL, 'b'},
        {"at", required_argument, NULL, 'T'},
        {"to", required_argument, NULL, 'o'},
        {"to-key-dir", required_argument, NULL, 'K'},
        {"endpoint", required_argument, NULL, 'e'},
        {"master-key", required_argument, NULL, 'm'},
        {"insecure", no_argument, NULL, 'i'},
        {"cacert", required_argument, NULL, 'c'},
        {"kms", required_argument, NULL, 1001},
        {"kms-token-file", required_argument, NULL, 1002},
        {"kms-ca", required_argument, NULL, 1003},
        {"kms-insecure", no_argument, NULL, 1004},
        {"cmk-token-file", required_argument, NULL, 1005},
        {"cmk-ca", required_argument, NULL, 1006},
        {"to-media-target", required_argument, NULL, 1007},
        {"to-media-account-key-file", required_argument, NULL, 1008},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    struct opts o = {0};
    static char mk[1024];
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            o.target = optarg;
            break;
        case 'a':
            o.key_file = optarg;
            break;
        case 'k':
            o.key_dir = optarg;
            break;
        case 'b':
            o.id = optarg;
            break;
        case 'T':
            o.at = optarg;
            break;
        case 'o':
            o.to = optarg;
            break;
        case 'K':
            o.to_keys = optarg;
            break;
        case 'e':
            o.endpoint = optarg;
            break;
        case 'm': /* copied, then wiped from argv (ps shows no key) */
            snprintf(mk, sizeof mk, "%s", optarg);
            secmem_wipe(optarg, strlen(optarg));
            o.master_key = mk;
            break;
        case 'i':
            o.insecure = 1;
            break;
        case 'c':
            o.cacert = optarg;
            break;
        case 1001:
            o.kms = optarg;
            break;
        case 1002:
            o.kms_token = optarg;
            break;
        case 1003:
            o.kms_ca = optarg;
            break;
        case 1004:
            o.kms_insecure = 1;
            break;
        case 1005:
            o.cmk_token = optarg;
            break;
        case 1006:
            o.cmk_ca = optarg;
            break;
        case 1007:
            o.to_media = optarg;
            break;
        case 1008:
            o.to_media_key = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    at_error_clear();
    if (!strcmp(verb, "now")) {
        int rc = cmd_now(&o);
        secmem_wipe(mk, sizeof mk);
        return rc;
    }
    if (!o.target && strcmp(verb, "now") != 0) {
        fprintf(stderr, "atrest backup %s: --target is required\n", verb);
        return 2;
    }
    if (!strcmp(verb, "list"))
        return cmd_list(&o);
    if (!strcmp(verb, "verify"))
        return cmd_verify(&o);
    if (!strcmp(verb, "restore"))
        return cmd_restore(&o);
    fprintf(stderr, "atrest backup: unknown verb '%s'\n", verb);
    usage(stderr);
    return 2;
}
