/*
 * atrest.c — the command line.
 *
 *   atrest verify --data-dir D --key-dir K
 *       Authenticate every page of every store file (WAL included) and print
 *       pages checked and pages failed. Exit 0 only when none failed.
 *   atrest init --data-dir D --key-dir K
 *       Create a key folder (embedded keystore) and an empty data folder.
 *
 * Exit codes: 0 success, 1 verification failed, 2 usage or setup error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "crypto/secmem.h"
#include "keys/embedded.h"
#include "keys/keyring.h"
#include "storage/store.h"
#include "storage/verify.h"

static void usage(FILE *to)
{
    fputs("usage: atrest <command> [options]\n"
          "\n"
          "commands:\n"
          "  verify --data-dir D --key-dir K   authenticate every stored page\n"
          "  init   --data-dir D --key-dir K   create key folder and data folder\n"
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
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "atrest: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
