/*
 * atrest.c — the command line.
 *
 *   atrest verify --data-dir D --key-dir K
 *       Authenticate every page of every store file (WAL included) and print
 *       pages checked and pages failed. Exit 0 only when none failed.
 *   atrest init --data-dir D --key-dir K
 *       Create a key folder (embedded keystore) and an empty data folder.
 *   atrest backup now|list|verify|restore ...
 *       Encrypted backups (backup_cmd.c, docs/backup.md).
 *   atrest keys status --data-dir D [--key-dir K] [--kms-token-file F] ...
 *       Key layers, key versions in use, customer key state (keys_cmd.c).
 *   atrest blob put|get|head|ls|rm --target T [--account-key-file F] ...
 *       The blob store (src/blob/, docs/blob.md) by hand and for tests.
 *
 * Exit codes: 0 success, 1 verification failed, 2 usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "blob/blob.h"
#include "common/error.h"
#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "storage/store.h"
#include "storage/verify.h"

int cmd_backup(int argc, char **argv); /* backup_cmd.c */
int cmd_keys(int argc, char **argv);   /* keys_cmd.c */

static void usage(FILE *to)
{
    fputs("usage: atrest <command> [options]\n"
          "\n"
          "commands:\n"
          "  verify --data-dir D --key-dir K   authenticate every stored page\n"
          "  init   --data-dir D --key-dir K   create key folder and data folder\n"
          "  blob   put|get|head|ls|rm ...     the blob store ('atrest blob help')\n"
          "  backup now|list|verify|restore    encrypted backups ('atrest backup help')\n"
          "  keys status --data-dir D ...      key layers, key versions, customer key state\n"
          "  help                              this text\n",
          to);
}

struct dirs {
    const char *data;
    const char *keys;
};

static int parse_dirs(int argc, char **argv, struct dirs *d)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            d->data = optarg;
            break;
        case 'k':
            d->keys = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (!d->data || !d->keys || optind != argc) {
        fprintf(stderr, "atrest: --data-dir and --key-dir are required\n");
        return -1;
    }
    return 0;
}

static void report_fail(void *ctx, const char *path, uint64_t offset, uint32_t pgno)
{
    (void)ctx;
    printf("FAILED  %s  offset %" PRIu64 "  page %" PRIu32 "\n", path, offset, pgno);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "atrest: %s: %s\n", what, at_error_detail());
    (void)rc;
    return 2;
}

static int cmd_verify(int argc, char **argv)
{
    struct dirs d = {0};
    if (parse_dirs(argc, argv, &d) != 0)
        return 2;
    struct key_provider *kp = NULL;
    struct keyring *kr = NULL;
    at_error_clear();
    int rc = embedded_provider_open(d.keys, d.data, 0, &kp);
    if (rc)
        return fail("cannot open key folder", rc);
    rc = keyring_open(d.data, kp, NULL, 0, &kr);
    if (rc) {
        kp_destroy(kp);
        return fail("cannot open keyring", rc);
    }
    struct verify_report r;
    rc = verify_data_dir(kr, d.data, &r, report_fail, NULL);
    keyring_close(kr);
    kp_destroy(kp);
    if (rc)
        return fail("verification could not run", rc);
    printf("store files:      %" PRIu64 "\n", r.files);
    printf("pages checked:    %" PRIu64 " (WAL frames %" PRIu64 ")\n", r.pages_checked,
           r.wal_frames);
    printf("pages failed:     %" PRIu64 "\n", r.pages_failed);
    if (r.wal_tail_frames)
        printf("torn WAL tail:    %" PRIu64 " frame(s) of an unfinished transaction "
               "(discarded by recovery, not data)\n",
               r.wal_tail_frames);
    if (r.unwritten_pages)
        printf("unwritten pages:  %" PRIu64 " (zeros SQLite has not written yet: free pages, or "
               "pages whose content is in the WAL; not data)\n",
               r.unwritten_pages);
    if (r.missing_files)
        printf("missing files:    %" PRIu64 " keyring entr%s without a store file\n",
               r.missing_files, r.missing_files == 1 ? "y" : "ies");
    printf("%s\n", r.pages_failed ? "FAILED" : "OK");
    return r.pages_failed ? 1 : 0;
}

static int cmd_init(int argc, char **argv)
{
    struct dirs d = {0};
    if (parse_dirs(argc, argv, &d) != 0)
        return 2;
    struct key_provider *kp = NULL;
    at_error_clear();
    int rc = embedded_provider_open(d.keys, d.data, 1, &kp);
    if (rc)
        return fail("cannot create key folder", rc);
    /* A store environment creates the folder (0700), takes its lock and
     * writes the keyring, exactly as the server will. */
    struct store_env_options opt = {.data_dir = d.data, .outer = kp, .create = 1};
    struct store_env *env = NULL;
    rc = store_env_open(&opt, &env);
    if (rc) {
        kp_destroy(kp);
        return fail("cannot create data folder", rc);
    }
    store_env_close(env);
    kp_destroy(kp);
    printf("key folder:  %s\ndata folder: %s\n", d.keys, d.data);
    return 0;
}

/* ---- atrest blob ---- */

static void blob_usage(FILE *to)
{
    fputs("usage: atrest blob <verb> --target T [options] ...\n"
          "\n"
          "  put  NAME FILE|-          store FILE (or stdin) as NAME\n"
          "  get  NAME FILE|-          write NAME to FILE (or stdout), checksum verified\n"
          "       [--range OFF:LEN]    only bytes OFF..OFF+LEN-1 (no checksum)\n"
          "  head NAME                 size, MD5, SHA-256, time\n"
          "  ls   [PREFIX]             one line per blob: size, SHA-256, name\n"
          "  rm   NAME                 delete NAME\n"
          "\n"
          "options:\n"
          "  --target T                file:DIR (default kind) or azblob:CONTAINER-URL\n"
          "  --account-key-file F      azblob: file holding the base64 account key\n"
          "  --block-size N            bytes per block (default 4 MiB)\n"
          "  --attempts N              tries per request, first included (default 6)\n"
          "  --backoff-ms N            first retry delay (default 200)\n"
          "  --stats                   print what put did (blocks sent, skipped, retries)\n"
          "  --throughput              print MB/s of put/get on stderr\n"
          "\n"
          "exit: 0 done, 1 checksum/integrity failure, 2 any other error\n",
          to);
}

static int blob_list_line(void *ctx, const struct blob_info *info)
{
    (void)ctx;
    char hex[65] = "-";
    if (info->has_sha256)
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", info->sha256[i]);
    printf("%12" PRIu64 "  %s  %s\n", info->size, hex, info->name);
    return 0;
}

struct counting_sink {
    int fd;
    uint64_t bytes;
};

static int count_sink(void *ctx, const uint8_t *buf, size_t len)
{
    struct counting_sink *cs = ctx;
    cs->bytes += len;
    return blob_fd_sink(&cs->fd, buf, len);
}

static int blob_fail(const char *verb, int rc)
{
    fprintf(stderr, "atrest blob %s: %s\n", verb, at_error_detail());
    return rc == AT_EINTEGRITY ? 1 : 2;
}

static int cmd_blob(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'},
        {"account-key-file", required_argument, NULL, 'k'},
        {"block-size", required_argument, NULL, 'b'},
        {"attempts", required_argument, NULL, 'a'},
        {"backoff-ms", required_argument, NULL, 'w'},
        {"range", required_argument, NULL, 'r'},
        {"stats", no_argument, NULL, 's'},
        {"throughput", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        blob_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *verb = argv[1];
    struct blob_options o = {0};
    const char *range = NULL;
    int stats = 0, tput = 0, c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "t:k:b:a:w:r:sTh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            o.target = optarg;
            break;
        case 'k':
            o.account_key_file = optarg;
            break;
        case 'b':
            o.block_size = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'a':
            o.max_attempts = atoi(optarg);
            break;
        case 'w':
            o.backoff_ms = (unsigned)atoi(optarg);
            break;
        case 'r':
            range = optarg;
            break;
        case 's':
            stats = 1;
            break;
        case 'T':
            tput = 1;
            break;
        case 'h':
            blob_usage(stdout);
            return 0;
        default:
            blob_usage(stderr);
            return 2;
        }
    }
    char **args = argv + 1 + optind;
    int nargs = argc - 1 - optind;
    int want = strcmp(verb, "put") == 0 || strcmp(verb, "get") == 0 ? 2
               : strcmp(verb, "ls") == 0                            ? -1
                                                                    : 1;
    if (!o.target || (want >= 0 && nargs != want) || (want < 0 && nargs > 1)) {
        fprintf(stderr, "atrest blob %s: %s\n", verb,
                o.target ? "wrong number of arguments" : "--target is required");
        blob_usage(stderr);
        return 2;
    }
    struct blob_store *bs = NULL;
    at_error_clear();
    int rc = blob_open(&o, &bs);
    if (rc)
        return blob_fail(verb, rc);
    double t0 = mono_seconds();
    uint64_t bytes = 0;
    if (strcmp(verb, "put") == 0) {
        int fd = strcmp(args[1], "-") == 0 ? 0 : open(args[1], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "atrest blob put: %s: %s\n", args[1], strerror(errno));
            blob_close(bs);
            return 2;
        }
        struct blob_put_stats st = {0};
        rc = blob_put(bs, args[0], blob_fd_source, &fd, &st);
        if (fd)
            close(fd);
        bytes = st.bytes;
        if (stats)
            printf("bytes %" PRIu64 " blocks %u sent %u skipped %u retries %u\n", st.bytes,
                   st.blocks, st.blocks_sent, st.blocks_skipped, st.retries);
    } else if (strcmp(verb, "get") == 0) {
        uint64_t off = 0, len = UINT64_MAX;
        if (range) {
            char *end = NULL;
            off = strtoull(range, &end, 0);
            if (!end || *end != ':') {
                fprintf(stderr, "atrest blob get: --range OFF:LEN\n");
                blob_close(bs);
                return 2;
            }
            len = strtoull(end + 1, NULL, 0);
        }
        int to_stdout = strcmp(args[1], "-") == 0;
        int fd = to_stdout ? 1 : open(args[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "atrest blob get: %s: %s\n", args[1], strerror(errno));
            blob_close(bs);
            return 2;
        }
        struct counting_sink cs = {.fd = fd};
        rc = blob_get(bs, args[0], off, len, count_sink, &cs);
        bytes = cs.bytes;
        if (!to_stdout) {
            if (!rc && fsync(fd) != 0)
                rc = at_error_set(errno, "%s: %s", args[1], strerror(errno));
            close(fd);
            if (rc) /* never leave bytes that failed their check behind */
                unlink(args[1]);
        }
    } else if (strcmp(verb, "head") == 0) {
        struct blob_info info;
        rc = blob_head(bs, args[0], &info);
        if (!rc) {
            char sha[65] = "-", md5[33] = "-";
            for (int i = 0; info.has_sha256 && i < 32; i++)
                snprintf(sha + 2 * i, 3, "%02x", info.sha256[i]);
            for (int i = 0; info.has_md5 && i < 16; i++)
                snprintf(md5 + 2 * i, 3, "%02x", info.md5[i]);
            printf("name    %s\nsize    %" PRIu64 "\nsha256  %s\nmd5     %s\nmtime   %" PRId64 "\n",
                   info.name, info.size, sha, md5, info.mtime);
        }
    } else if (strcmp(verb, "ls") == 0) {
        rc = blob_list(bs, nargs ? args[0] : "", blob_list_line, NULL);
    } else if (strcmp(verb, "rm") == 0) {
        rc = blob_delete(bs, args[0]);
    } else {
        fprintf(stderr, "atrest blob: unknown verb '%s'\n", verb);
        blob_close(bs);
        return 2;
    }
    blob_close(bs);
    if (rc)
        return blob_fail(verb, rc);
    double dt = mono_seconds() - t0;
    if (tput && bytes)
        fprintf(stderr, "%s %" PRIu64 " bytes in %.3f s: %.1f MB/s\n", verb, bytes, dt,
                (double)bytes / 1e6 / (dt > 0 ? dt : 1e-9));
    return 0;
}

int main(int argc, char **argv)
{
    if (secmem_init() != 0)
        fprintf(stderr, "atrest: warning: could not disable core dumps\n");
    umask(077); /* every file atrest creates is private to its user */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "blob") == 0)
        return cmd_blob(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0)
        return cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "atrest: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
