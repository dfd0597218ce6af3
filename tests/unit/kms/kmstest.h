/*
 * kmstest.h — a scratch key service folder for the kms unit tests.
 * Header-only: each test program includes it once.
 */
#ifndef ATREST_TESTS_KMSTEST_H
#define ATREST_TESTS_KMSTEST_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/kms.h"
#include "testfs.h"

struct kt {
    char root[PATH_MAX]; /* scratch folder */
    char path[PATH_MAX]; /* root/kms, the service folder */
    struct kms_dir d;
};

static inline int kt_setup(void **state)
{
    struct kt *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    unsetenv(KMS_ROOT_ENV);
    testfs_mkdtemp(t->root, "kms");
    testfs_join(t->path, t->root, "kms");
    if (kms_dir_open(t->path, 1, &t->d) != 0) {
        fprintf(stderr, "kms_dir_open: %s\n", at_error_detail());
        return -1;
    }
    *state = t;
    return 0;
}

static inline int kt_teardown(void **state)
{
    struct kt *t = *state;
    unsetenv(KMS_ROOT_ENV);
    kms_dir_close(&t->d);
    testfs_rm_rf(t->root);
    free(t);
    return 0;
}

/* t->path/name */
static inline void kt_file(const struct kt *t, const char *name, char out[PATH_MAX])
{
    testfs_join(out, t->path, name);
}

#endif
