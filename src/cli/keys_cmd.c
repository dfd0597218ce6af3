/*
 * keys_cmd.c — `atrest keys status | rotate-data-keys` (docs/kms.md).
 *
 *   atrest keys status --data-dir D [--key-dir K]
 *          [--kms-token-file F] [--kms-ca F] [--cmk-token-file F] [--cmk-ca F]
 *          [--kms-insecure]
 *   atrest keys rotate-data-keys --endpoint https://HOST:PORT --master-key B64
 *          [--insecure | --cacert F] [--wait]
 *
 * status reads the keyring (keyring_peek: no lock, so it works beside a
 * running atrestd) and asks each layer's provider to unwrap one wrapped
 * value per key version in use: the same check atrestd's key monitor
 * makes. A layer held by a key service is checked when a token is given
 * for it. Then, per store, the DEK versions the keyring holds and which
 * versions the pages on disk are sealed under (rekey_census, read from the
 * page trailers: the outer layer's version; the inner one is sealed).
 *
 * rotate-data-keys asks a running atrestd to rotate every store's DEKs
 * (POST /atrest/datakeys with --endpoint, or "rotate-data-keys" on the
 * folder's control socket with --data-dir); with --wait it follows the
 * re-encryption until the old DEKs are destroyed, with a progress line.
 * With --data-dir and no atrestd on the folder it rotates and re-encrypts
 * every store itself (the folder's lock keeps atrestd out meanwhile).
 *
 * Exit: status: 0 every checked key can unwrap; 1 some key cannot (the
 * line says why: disabled, access revoked, deleted, unreachable).
 * rotate-data-keys: 0 done (or started, without --wait); 1 the
 * re-encryption stopped with an error. 2 usage or setup.
 */
#include <getopt.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/error.h"
#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "keys/kmsprov.h"
#include "cli/admin.h"
#include "common/ctlsock.h"
#include "media/media.h"
#include "storage/rekey.h"
#include "storage/store.h"

int cmd_keys(int argc, char **argv);

struct keys_opts {
    const char *data, *keys, *kms_token, *kms_ca, *cmk_token, *cmk_ca;
    int insecure;
};

/* The provider of layer l, or NULL (why printed) when it cannot be checked. */
static struct key_provider *layer_provider(const struct keys_opts *o, const char *id, int l)
{
    struct key_provider *kp = NULL;
    if (strncmp(id, "https://", 8) == 0) {
        const char *tf = l ? (o->cmk_token ? o->cmk_token : o->kms_token) : o->kms_token;
        if (!tf) {
            printf("  state:         not checked (give --%s-token-file)\n", l ? "cmk" : "kms");
            return NULL;
        }
        if (cli_open_kms(id, tf, l && o->cmk_ca ? o->cmk_ca : o->kms_ca, o->insecure, 1, &kp) !=
            0) {
            printf("  state:         not checked (%s)\n", at_error_detail());
            return NULL;
        }
        return kp;
    }
    if (!o->keys) {
        printf("  state:         not checked (give --key-dir)\n");
        return NULL;
    }
    if (embedded_provider_open(o->keys, o->data, 0, &kp) != 0) {
        printf("  state:         not checked (%s)\n", at_error_detail());
        return NULL;
    }
    return kp;
}

/* Print layer l; 1 when its key cannot unwrap what it must, -1 when it
 * could not be checked. */
static int show_layer(const struct keys_opts *o, const struct keyring_info *info, int l)
{
    printf("layer %d (%s, %s)\n", l, l ? "inner" : "outer",
           l ? "customer-managed key" : "service key");
    printf("  key:           %s\n", info->key_id[l]);
    printf("  provider:      %s\n",
           strncmp(info->key_id[l], "https://", 8) == 0 ? "key service" : "embedded (key folder)");
    printf("  data keys:     %zu DEK version%s over %zu store%s (highest version %u), %llu "
           "encryptions reserved\n",
           info->deks[l], info->deks[l] == 1 ? "" : "s", info->files, info->files == 1 ? "" : "s",
           info->max_dek_version[l], (unsigned long long)info->encryptions[l]);
    struct key_provider *kp = layer_provider(o, info->key_id[l], l);
    int bad = kp ? 0 : -1;
    if (kp) {
        uint8_t *tmp = secmem_alloc(KP_KEY_MAX);
        for (size_t k = 0; k < info->nkek[l] && tmp; k++) {
            char ver[80] = "?";
            size_t n = 0;
            if (kp_wrapped_version(kp, &info->kek[l][k], ver, sizeof ver) != 0)
                snprintf(ver, sizeof ver, "%u", (unsigned)info->kek[l][k].kek_version);
            at_error_clear();
            int rc = kp_unwrap(kp, &info->kek[l][k], tmp, &n);
            struct kp_status st;
            kp_last_status(kp, &st);
            if (rc == 0) {
                printf("  key version:   %s  in use, unwraps\n", ver);
            } else {
                bad = 1;
                printf("  key version:   %s  in use, CANNOT UNWRAP: %s%s%s%s\n", ver,
                       kp_cause_name(st.cause), st.code[0] ? " (" : "", st.code,
                       st.code[0] ? ")" : "");
            }
        }
        secmem_free(tmp, KP_KEY_MAX);
        if (kp_is_kms(kp)) {
            char cur[65], ver[80];
            int stale = 0;
            if (kp_kms_current_version_id(kp, cur) == 0) {
                for (size_t k = 0; k < info->nkek[l]; k++)
                    if (kp_wrapped_version(kp, &info->kek[l][k], ver, sizeof ver) == 0 &&
                        strcmp(ver, cur) != 0)
                        stale = 1;
                printf("  current:       %s%s\n", cur,
                       stale ? " (older versions still wrap data keys: atrestd rewraps them at "
                               "its next check)"
                             : " (wraps every data key)");
            } else {
                printf("  current:       unknown (%s)\n", at_error_detail());
            }
        }
        printf("  state:         %s\n", bad ? "UNUSABLE" : "available");
        kp_destroy(kp);
    }
    return bad;
}

/* The folder and key flags status and rotate-data-keys share: 1 when c
 * was one of them (stored in o). */
static int key_opt(int c, struct keys_opts *o)
{
    switch (c) {
    case 'd':
        o->data = optarg;
        return 1;
    case 'k':
        o->keys = optarg;
        return 1;
    case 't':
        o->kms_token = optarg;
        return 1;
    case 'c':
        o->kms_ca = optarg;
        return 1;
    case 'T':
        o->cmk_token = optarg;
        return 1;
    case 'C':
        o->cmk_ca = optarg;
        return 1;
    case 'i':
        o->insecure = 1;
        return 1;
    default:
        return 0;
    }
}

/* Per store: DEK versions in the keyring, versions of the pages on disk. */
static void show_stores(const char *data_dir, int layers)
{
    size_t n = 0, max = 4096;
    struct keyring_peek_file *f = calloc(max, sizeof *f);
    if (!f || keyring_peek_files(data_dir, f, max, &n) != 0) {
        free(f);
        return;
    }
    printf("stores:        %zu (pages on disk per outer DEK version; main file + WAL)\n", n);
    for (size_t i = 0; i < n; i++) {
        char path[4096 + 40];
        store_file_path(data_dir, f[i].id, path, sizeof path);
        printf("  %-12s DEK versions", f[i].name);
        for (int l = 0; l < layers; l++)
            printf(" %s %u..%u", l ? "inner" : "outer", f[i].oldest[l], f[i].current[l]);
        struct rekey_census c;
        if (rekey_census(path, layers, NULL, NULL, &c) != 0) {
            printf("; pages: cannot read (%s)\n", at_error_detail());
            continue;
        }
        uint64_t total = c.pages + c.wal_frames, cur = 0;
        printf("; pages");
        for (int k = 0; k < c.nver[0]; k++) {
            uint64_t at = c.pages_at[0][k] + c.frames_at[0][k];
            printf(" v%u:%llu", c.ver[0][k], (unsigned long long)at);
            if (c.ver[0][k] >= f[i].current[0])
                cur += at;
        }
        printf("; %.1f%% on the current version%s\n", total ? 100.0 * (double)cur / (double)total : 100.0,
               f[i].oldest[0] < f[i].current[0] ? " (re-encryption pending)" : "");
    }
    free(f);
}

/* ---- rotate-data-keys ---- */

static int rotate_usage(void)
{
    fprintf(stderr,
            "usage: atrest keys rotate-data-keys --endpoint https://HOST:PORT --master-key B64\n"
            "                                    [--insecure | --cacert F] [--wait]\n"
            "       atrest keys rotate-data-keys --data-dir D [--wait]\n"
            "                                    [--key-dir K | --kms-token-file F [--kms-ca F]\n"
            "                                     [--cmk-token-file F] [--cmk-ca F] "
            "[--kms-insecure]]\n"
            "With --data-dir it asks the atrestd serving D through its control socket, or, when\n"
            "none runs, rotates and re-encrypts D itself (the key flags open its keys).\n");
    return 2;
}

/* GET or POST /atrest/datakeys, parsed. NULL (printed) on failure. */
static json_t *datakeys_get(const struct admin_conn *a, const char *what, const char *verb,
                            long want)
{
    char body[65536];
    long status = 0;
    if (admin_call(a, what, verb, "atrest/datakeys", &status, body, sizeof body) != 0)
        return NULL;
    json_t *j = json_loads(body, 0, NULL);
    if (status != want || !j) {
        json_t *m = j ? json_object_get(j, "message") : NULL;
        fprintf(stderr, "%s: the server answered %ld: %s\n", what, status,
                m ? json_string_value(m) : body);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Where the state of a rotation comes from: atrestd over HTTPS or over
 * its control socket. */
struct rot_src {
    const char *what;
    const struct admin_conn *http; /* or */
    const char *data_dir; /* control socket of this folder */
};

/* One command to data_dir's control socket (common/ctlsock.h); its JSON
 * answer, or NULL. errno_out: the connect error when no atrestd listens. */
static json_t *sock_call(const char *data_dir, const char *cmd, int *errno_out)
{
    struct sockaddr_un a;
    socklen_t alen;
    *errno_out = ctlsock_addr(data_dir, &a, &alen);
    if (*errno_out)
        return NULL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, alen) != 0) {
        *errno_out = errno ? errno : ECONNREFUSED;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char buf[65536];
    size_t n = 0;
    int sent = dprintf(fd, "%s\n", cmd) > 0;
    while (sent && n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    return json_loads(buf, 0, NULL);
}

static json_t *rot_call(const struct rot_src *src, int rotate)
{
    if (src->http)
        return datakeys_get(src->http, src->what, rotate ? "POST" : "GET", rotate ? 202 : 200);
    int e;
    json_t *j = sock_call(src->data_dir, rotate ? "rotate-data-keys" : "status", &e);
    if (!j)
        fprintf(stderr, "%s: the control socket of %s: %s\n", src->what, src->data_dir,
                e ? strerror(e) : "no answer");
    return j;
}

/* Ask for a rotation; with wait, follow it to its end. */
static int rotate_online(const struct rot_src *src, int wait)
{
    const char *what = src->what;
    json_t *j = rot_call(src, 1);
    if (!j)
        return 2;
    json_int_t mine = json_integer_value(json_object_get(j, "requested"));
    json_decref(j);
    fprintf(stderr, "%s: rotation %lld requested; new writes use the new data keys once it is "
                    "made\n",
            what, (long long)mine);
    if (!wait)
        return 0;
    int tty = isatty(2);
    for (;;) {
        sleep(1);
        if (!(j = rot_call(src, 0)))
            return 2;
        json_int_t served = json_integer_value(json_object_get(j, "requestsDone"));
        const char *state = json_string_value(json_object_get(j, "state"));
        json_t *stores = json_object_get(j, "stores");
        json_int_t rewritten = 0, pending = 0;
        for (size_t i = 0; i < json_array_size(stores); i++) {
            json_t *s = json_array_get(stores, i);
            rewritten += json_integer_value(json_object_get(s, "pagesRewritten"));
            pending += json_is_true(json_object_get(s, "pending"));
        }
        fprintf(stderr, "%s%s: %s, %lld of %zu stores pending, %lld pages re-encrypted%s",
                tty ? "\r" : "", what, state ? state : "?", (long long)pending,
                json_array_size(stores), (long long)rewritten, tty ? "   " : "\n");
        int over = served >= mine && state && strcmp(state, "idle") == 0 && pending == 0;
        int failed = served >= mine && state && strcmp(state, "error") == 0;
        if (failed)
            fprintf(stderr, "%s%s: stopped: %s\n", tty ? "\n" : "", what,
                    json_string_value(json_object_get(j, "error")));
        json_decref(j);
        if (failed)
            return 1;
        if (over) {
            fprintf(stderr, "%s%s: done: every page is under the new data keys; the old ones are "
                            "destroyed\n",
                    tty ? "\n" : "", what);
            return 0;
        }
    }
}

/* Offline, before a store's older DEKs go: its media keys (attachments)
 * move to the current versions, in one transaction on the store. */
static int offline_retire(void *arg, const uint32_t cur[2])
{
    struct store *st = arg;
    struct media_keys k = {.kr = store_keyring(st)};
    memcpy(k.file_id, store_file_id(st), KEYRING_FILE_ID_LEN);
    size_t n = 0;
    int rc = store_begin(st);
    if (!rc)
        rc = media_rewrap_table(store_db(st), &k, cur, &n);
    if (!rc)
        rc = store_commit(st);
    else
        store_rollback(st);
    return rc;
}

/* No atrestd on the folder: rotate and re-encrypt every store here. */
static int rotate_offline(const struct keys_opts *o, const char *what)
{
    struct keyring_info info;
    struct key_provider *kp[2] = {NULL, NULL};
    struct store_env *env = NULL;
    int rc = keyring_peek(o->data, &info), out = 2;
    if (rc) {
        fprintf(stderr, "%s: %s\n", what,
                rc == AT_ENOTFOUND ? "the data folder has no keyring" : at_error_detail());
        return 2;
    }
    for (int l = 0; l < info.layers; l++)
        if (!(kp[l] = layer_provider(o, info.key_id[l], l))) {
            fprintf(stderr, "%s: cannot open the keys of layer %d (give --key-dir, or the key "
                            "service's token flags)\n",
                    what, l);
            goto done;
        }
    struct store_env_options eo = {.data_dir = o->data, .outer = kp[0], .inner = kp[1]};
    if ((rc = store_env_open(&eo, &env)) != 0) {
        fprintf(stderr, "%s: %s%s\n", what, at_error_detail(),
                rc == AT_ELOCKED ? " (atrestd holds it: ask it with --endpoint)" : "");
        goto done;
    }
    struct keyring *kr = store_env_keyring(env);
    char(*names)[KEYRING_NAME_MAX] = calloc(4096, KEYRING_NAME_MAX);
    uint8_t(*ids)[KEYRING_FILE_ID_LEN] = calloc(4096, KEYRING_FILE_ID_LEN);
    size_t n = 0;
    if (!names || !ids || keyring_list_files(kr, names, ids, 4096, &n) != 0) {
        fprintf(stderr, "%s: cannot list the stores\n", what);
        free(names);
        free(ids);
        goto done;
    }
    out = 0;
    for (size_t i = 0; i < n && out == 0; i++) {
        struct store *st = NULL;
        struct store_rekey *rk = NULL;
        int done = 0;
        rc = store_open(env, names[i], &st);
        if (!rc && !store_rekey_pending(st))
            rc = store_rotate_keys(st);
        if (!rc)
            rc = store_rekey_new(st, &rk);
        if (!rc) {
            store_rekey_set_threads(rk, 2); /* nothing else runs on the folder */
            store_rekey_set_before_retire(rk, offline_retire, st);
        }
        while (!rc && !done)
            rc = store_rekey_step(rk, 0, &done);
        struct store_rekey_progress p = {0};
        if (rk)
            store_rekey_progress(rk, &p);
        store_rekey_free(rk);
        if (st && store_close(st) != 0 && !rc)
            rc = AT_ESQLITE;
        if (rc) {
            fprintf(stderr, "%s: store %s: %s\n", what, names[i], at_error_detail());
            out = rc == AT_EINTEGRITY ? 1 : 2;
        } else {
            fprintf(stderr, "%s: store %s: %llu pages re-encrypted, %llu old DEK versions "
                            "destroyed\n",
                    what, names[i], (unsigned long long)p.rewritten,
                    (unsigned long long)p.destroyed);
        }
    }
    free(names);
    free(ids);
    if (out == 0)
        fprintf(stderr, "%s: done: every page is under the new data keys; the old ones are "
                        "destroyed\n",
                what);
done:
    store_env_close(env);
    kp_destroy(kp[0]);
    kp_destroy(kp[1]);
    return out;
}

static int cmd_rotate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"endpoint", required_argument, NULL, 'e'},       {"master-key", required_argument, NULL, 'm'},
        {"cacert", required_argument, NULL, 'a'},         {"insecure", no_argument, NULL, 'I'},
        {"wait", no_argument, NULL, 'w'},                 {"data-dir", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},        {"kms-token-file", required_argument, NULL, 't'},
        {"kms-ca", required_argument, NULL, 'c'},         {"cmk-token-file", required_argument, NULL, 'T'},
        {"cmk-ca", required_argument, NULL, 'C'},         {"kms-insecure", no_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    struct admin_conn a = {0};
    struct keys_opts o = {0};
    int wait = 0, ch;
    const char *what = "atrest keys rotate-data-keys";
    optind = 1;
    while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            a.endpoint = optarg;
            break;
        case 'm':
            a.master_key = optarg;
            break;
        case 'a':
            a.cacert = optarg;
            break;
        case 'I':
            a.insecure = 1;
            break;
        case 'w':
            wait = 1;
            break;
        default:
            if (!key_opt(ch, &o))
                return rotate_usage();
        }
    }
    if (optind + 1 != argc || (!a.endpoint && !o.data))
        return rotate_usage();
    struct rot_src src = {.what = what};
    if (a.endpoint) {
        src.http = &a;
        return rotate_online(&src, wait);
    }
    src.data_dir = o.data;
    int e;
    json_t *probe = sock_call(o.data, "status", &e);
    if (!probe) {
        if (e == ECONNREFUSED)
            return rotate_offline(&o, what); /* no atrestd serves the folder */
        fprintf(stderr, "%s: the control socket of %s: %s\n", what, o.data,
                e ? strerror(e) : "no answer");
        return 2;
    }
    json_decref(probe);
    return rotate_online(&src, wait);
}

int cmd_keys(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "rotate-data-keys") == 0)
        return cmd_rotate(argc, argv);
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},       {"key-dir", required_argument, NULL, 'k'},
        {"kms-token-file", required_argument, NULL, 't'}, {"kms-ca", required_argument, NULL, 'c'},
        {"cmk-token-file", required_argument, NULL, 'T'}, {"cmk-ca", required_argument, NULL, 'C'},
        {"kms-insecure", no_argument, NULL, 'i'},         {NULL, 0, NULL, 0},
    };
    struct keys_opts o = {0};
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        fprintf(stderr, "usage: atrest keys status --data-dir D [--key-dir K] [--kms-token-file F] "
                        "[--kms-ca F]\n"
                        "                          [--cmk-token-file F] [--cmk-ca F] "
                        "[--kms-insecure]\n"
                        "       atrest keys rotate-data-keys --endpoint https://HOST:PORT "
                        "--master-key B64\n"
                        "                          [--insecure | --cacert F] [--wait]\n"
                        "       atrest keys rotate-data-keys --data-dir D [--wait] [key flags as "
                        "for status]\n");
        return 2;
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1)
        if (!key_opt(c, &o))
            return 2;
    if (!o.data) {
        fprintf(stderr, "atrest keys status: --data-dir is required\n");
        return 2;
    }
    struct keyring_info info;
    at_error_clear();
    int rc = keyring_peek(o.data, &info);
    if (rc) {
        fprintf(stderr, "atrest keys status: %s\n",
                rc == AT_ENOTFOUND ? "the data folder has no keyring" : at_error_detail());
        return 2;
    }
    printf("data folder:   %s\n", o.data);
    printf("key layers:    %d (%s)\n", info.layers,
           info.layers == 2 ? "service key + customer-managed key" : "service key only");
    int bad = 0, cmk = 0;
    for (int l = 0; l < info.layers; l++) {
        int r = show_layer(&o, &info, l);
        bad |= r == 1;
        if (l == 1)
            cmk = r;
    }
    show_stores(o.data, info.layers);
    if (info.layers == 2)
        printf("customer-managed key: %s\n", cmk == 1   ? "UNUSABLE (atrestd refuses data requests)"
                                             : cmk == 0 ? "confirmed"
                                                        : "not checked");
    return bad ? 1 : 0;
}
