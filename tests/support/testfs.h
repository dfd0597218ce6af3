/*
 * testfs.h — file helpers for unit tests: private temp folders under
 * $ATREST_TEST_TMP (set by ctest; /tmp otherwise), whole-file read/write,
 * recursive removal.
 */
#ifndef ATREST_TESTS_TESTFS_H
#define ATREST_TESTS_TESTFS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Create a fresh folder (mode 0700) named <prefix>.XXXXXX; aborts the
 * test program on failure. */
void testfs_mkdtemp(char out[PATH_MAX], const char *prefix);

/* rm -rf path (fixing permissions on the way). */
void testfs_rm_rf(const char *path);

/* out = dir/name. */
void testfs_join(char out[PATH_MAX], const char *dir, const char *name);

/* Whole-file read into a malloc()ed buffer (free it); 0 or errno. */
int testfs_read(const char *path, uint8_t **buf, size_t *len);

/* Create or truncate path with mode, write buf; 0 or errno. */
int testfs_write(const char *path, const void *buf, size_t len, mode_t mode);

/* 1 when path exists (lstat). */
int testfs_exists(const char *path);

/* The permission bits of path, or -1. */
int testfs_mode(const char *path);

#endif
