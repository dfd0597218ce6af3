/* folder.c — the key service's folder: checks, private files, locks (see kms.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys/keyfile.h"
#include "kms/kms.h"

int kms_dir_open(const char *path, int create, struct kms_dir *d)
{
    d->fd = -1;
    if (!path || !*path)
        return at_error_set(AT_EINVAL, "atrest-kms needs --data-dir");
    if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
        return at_error_set(AT_EKEYDIR, "cannot create folder %s: %s", path, strerror(errno));
    if (!realpath(path, d->path))
        return at_error_set(AT_EKEYDIR, "cannot open folder %s: %s", path, strerror(errno));
    d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0)
        return at_error_set(AT_EKEYDIR, "cannot open folder %s: %s", d->path, strerror(errno));
    int rc = keyfile_check_private(d->fd, d->path, "key service folder", 1);
    if (rc)
        kms_dir_close(d);
    return rc;
}

void kms_dir_close(struct kms_dir *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

int kms_dir_open_private(const struct kms_dir *d, const char *name, int flags, int *fd)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", d->path, name);
    *fd = openat(d->fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return ENOENT;
        return at_error_set(e, "cannot open %s: %s", path, strerror(e));
    }
    int rc = keyfile_check_private(*fd, path, "file", 0);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int kms_dir_read(const struct kms_dir *d, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    int fd;
    int rc = kms_dir_open_private(d, name, O_RDONLY, &fd);
    if (rc)
        return rc;
    rc = keyfile_read_all(fd, buf, cap, len);
    close(fd);
    if (rc)
        return at_error_set(rc, "cannot read %s/%s: %s", d->path, name,
                            rc == EFBIG ? "too large" : strerror(rc));
    return 0;
}

int kms_dir_lock(const struct kms_dir *d, const char *name, int block, int *fd)
{
    int rc = kms_dir_open_private(d, name, O_RDWR | O_CREAT, fd);
    if (rc)
        return rc == ENOENT ? at_error_set(rc, "cannot create %s/%s", d->path, name) : rc;
    while (flock(*fd, LOCK_EX | (block ? 0 : LOCK_NB)) != 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK)
            return at_error_set(AT_ELOCKED, "%s is in use by another atrest-kms", d->path);
        return at_error_set(e, "cannot lock %s/%s: %s", d->path, name, strerror(e));
    }
    return 0;
}

void kms_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}
