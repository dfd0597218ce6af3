/* testfs.c — file helpers for unit tests (see testfs.h). */
#include "testfs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void testfs_mkdtemp(char out[PATH_MAX], const char *prefix)
{
    const char *base = getenv("ATREST_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "testfs: cannot create %s: %s\n", base, strerror(errno));
        abort();
    }
    snprintf(out, PATH_MAX, "%s/%s.XXXXXX", base, prefix);
    if (!mkdtemp(out) || chmod(out, 0700) != 0) {
        fprintf(stderr, "testfs: mkdtemp %s: %s\n", out, strerror(errno));
        abort();
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 ? 0 : (chmod(path, 0700), rmdir(path), 0);
    unlink(path);
    return 0;
}

static int fix_mode(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, 0700);
    return 0;
}

void testfs_rm_rf(const char *path)
{
    nftw(path, fix_mode, 16, FTW_PHYS);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void testfs_join(char out[PATH_MAX], const char *dir, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

int testfs_read(const char *path, uint8_t **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            close(fd);
            return e;
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

int testfs_write(const char *path, const void *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return errno;
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            int e = errno;
            close(fd);
            return e;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || close(fd) != 0)
        return errno;
    return 0;
}

int testfs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int testfs_mode(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    return (int)(st.st_mode & 07777);
}
