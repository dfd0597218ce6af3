/* keyfile.c — permission checks and atomic writes for key files (see keyfile.h). */
#include "keys/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int keyfile_check_private(int fd, const char *path, const char *what, int want_dir)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return at_error_set(errno, "cannot stat %s %s: %s", what, path, strerror(errno));
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return at_error_set(AT_EPERM_OPEN, "%s %s is not a %s", what, path,
                            want_dir ? "folder" : "regular file");
    if (st.st_uid != geteuid())
        return at_error_set(AT_EPERM_OPEN,
                            "%s %s is owned by uid %u, not by the user running atrest (uid %u)",
                            what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if (mode & 077)
        return at_error_set(AT_EPERM_OPEN,
                            "%s %s has mode %04o; it must not be %s by group or others (chmod %s)",
                            what, path, mode, want_dir ? "accessible" : "readable or writable",
                            want_dir ? "700" : "600");
    return 0;
}

int keyfile_read_all(int fd, uint8_t *buf, size_t cap, size_t *len)
{
    size_t got = 0;
    for (;;) {
        uint8_t extra;
        /* Once buf is full, one more byte tells "exactly cap" from "larger". */
        uint8_t *dst = got < cap ? buf + got : &extra;
        size_t want = got < cap ? cap - got : 1;
        ssize_t n = read(fd, dst, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            break;
        if (got >= cap)
            return EFBIG;
        got += (size_t)n;
    }
    *len = got;
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int keyfile_write_atomic(int dirfd, const char *dir_path, const char *name, const uint8_t *data,
                         size_t len, int replace)
{
    char tmp[256];
    int rc, fd = -1, have_tmp = 0;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", name) >= sizeof tmp)
        return at_error_set(EINVAL, "file name %s is too long", name);

    /* A tmp left by a crash is ours and incomplete: remove it. */
    if (unlinkat(dirfd, tmp, 0) != 0 && errno != ENOENT) {
        rc = errno;
        at_error_set(rc, "cannot remove stale %s/%s: %s", dir_path, tmp, strerror(rc));
        goto out;
    }
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = errno;
        at_error_set(rc, "cannot create %s/%s: %s", dir_path, tmp, strerror(rc));
        goto out;
    }
    have_tmp = 1;
    /* The umask may only remove bits; make the mode exact anyway. */
    rc = fchmod(fd, 0600) != 0 ? errno : write_full(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    if (rc) {
        at_error_set(rc, "cannot write %s/%s: %s", dir_path, tmp, strerror(rc));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = errno;
        at_error_set(rc, "cannot write %s/%s: %s", dir_path, tmp, strerror(rc));
        goto out;
    }
    fd = -1;
    if (replace) {
        if (renameat(dirfd, tmp, dirfd, name) != 0) {
            rc = errno;
            at_error_set(rc, "cannot rename %s/%s to %s: %s", dir_path, tmp, name, strerror(rc));
            goto out;
        }
        have_tmp = 0;
    } else {
        /* link() never replaces an existing name, unlike rename(). */
        if (linkat(dirfd, tmp, dirfd, name, 0) != 0) {
            rc = errno;
            at_error_set(rc, "cannot create %s/%s: %s", dir_path, name, strerror(rc));
            goto out;
        }
        (void)unlinkat(dirfd, tmp, 0);
        have_tmp = 0;
    }
    if (fsync(dirfd) != 0) {
        rc = errno;
        at_error_set(rc, "cannot sync folder %s: %s", dir_path, strerror(rc));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (have_tmp)
        (void)unlinkat(dirfd, tmp, 0);
    return rc;
}
