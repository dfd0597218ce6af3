/*
 * file.c — the local-folder target (file:DIR).
 *
 * One file per blob, flat in DIR: the blob name with '/' written as "%2F",
 * plus ".blob". A blob file is a fixed header followed by the bytes:
 *
 *   offset  size  field
 *        0     8  magic "ATRBLOB1"
 *        8     4  header length, big-endian (80)
 *       12     4  flags (0)
 *       16     8  data length, big-endian
 *       24    32  SHA-256 of the data
 *       56    16  reserved (0; MD5 is not computed locally: SHA-256 suffices)
 *       72     8  reserved (0)
 *       80     …  data
 *
 * Invariants:
 *  1. A file named *.blob is complete: put writes "<file>.<random>.tmp"
 *     (O_EXCL, 0600), fsyncs it, renames it over "<file>" and fsyncs DIR.
 *     A reader sees the old blob or the new one, never a mix.
 *  2. A failed put (disk full, source error, fsync failure) unlinks its
 *     temp file and leaves "<file>" as it was.
 *  3. The header is written last (pwrite at 0 after the data), so a temp
 *     file never looks valid before its checksums are known.
 * A crash between open and rename can leave a *.tmp file; list ignores
 * them and put removes those of its own blob name older than an hour.
 */
#include "blob/blobint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crypto/rand.h"

#define HDR_LEN   80
#define MAGIC     "ATRBLOB1"
#define SUFFIX    ".blob"
#define FNAME_MAX 240 /* below NAME_MAX with room for the temp suffix */

struct file_store {
    struct blob_store base;
    struct blob_cfg cfg;
    int dirfd;
    char dir[4096];
};

struct hdr {
    uint64_t size;
    uint8_t sha256[32];
};

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* name → file name; ENAMETOOLONG when it does not fit a directory entry. */
static int encode(const struct file_store *fs, const char *name, char *out, size_t cap)
{
    int rc = blob_name_check(name);
    if (rc)
        return rc;
    size_t o = 0;
    for (const char *p = name; *p; p++) {
        const char *piece = *p == '/' ? "%2F" : NULL;
        size_t len = piece ? 3 : 1;
        if (o + len + sizeof SUFFIX > cap || o + len + sizeof SUFFIX > FNAME_MAX)
            return at_error_set(ENAMETOOLONG,
                                "file:%s: blob name '%.64s…' is too long for a local folder "
                                "(at most %d bytes once '/' is written as %%2F)",
                                fs->dir, name, FNAME_MAX - (int)sizeof SUFFIX);
        if (piece)
            memcpy(out + o, piece, 3);
        else
            out[o] = *p;
        o += len;
    }
    memcpy(out + o, SUFFIX, sizeof SUFFIX);
    return 0;
}

/* file name → name; 0 when fname is a blob file. */
static int decode(const char *fname, char *out, size_t cap)
{
    size_t n = strlen(fname), s = strlen(SUFFIX);
    if (n <= s || strcmp(fname + n - s, SUFFIX) != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n - s; i++) {
        if (o + 1 >= cap)
            return -1;
        if (fname[i] == '%') {
            if (strncmp(fname + i, "%2F", 3) != 0)
                return -1;
            out[o++] = '/';
            i += 2;
        } else {
            out[o++] = fname[i];
        }
    }
    out[o] = '\0';
    return blob_name_check(out) == 0 ? 0 : -1;
}

static int fault(struct file_store *fs, const char *op, uint64_t off)
{
    return fs->cfg.fault ? fs->cfg.fault(fs->cfg.fault_ctx, op, off) : 0;
}

static int write_all(struct file_store *fs, int fd, const uint8_t *p, size_t n, uint64_t *done)
{
    while (n) {
        int e = fault(fs, "write", *done);
        if (e) {
            errno = e;
            return -1;
        }
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        *done += (uint64_t)w;
    }
    return 0;
}

/* A large blob is written back as it is written, not all at the final
 * fsync: once per WB_STEP of data, start writing the step just written and
 * wait for the one before it. The dirty pages a put holds stay under two
 * steps, and the disk sees a steady stream instead of one burst that
 * every other fsync on the machine (the stores' commits) would queue
 * behind. Best effort: the final fsync is what makes the blob durable. */
#define WB_STEP (8u << 20)

static void writeback(int fd, uint64_t total, uint64_t *submitted)
{
    while (total - *submitted >= WB_STEP) {
        off_t at = (off_t)(HDR_LEN + *submitted);
        (void)sync_file_range(fd, at, WB_STEP, SYNC_FILE_RANGE_WRITE);
        if (*submitted >= WB_STEP)
            (void)sync_file_range(fd, at - WB_STEP, WB_STEP,
                                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                      SYNC_FILE_RANGE_WAIT_AFTER);
        *submitted += WB_STEP;
    }
}

/* Remove this name's temp files older than an hour (crash leftovers). */
static void sweep_stale(struct file_store *fs, const char *fname)
{
    int fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t fl = strlen(fname);
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        struct stat st;
        if (n > fl + 5 && strncmp(e->d_name, fname, fl) == 0 && e->d_name[fl] == '.' &&
            strcmp(e->d_name + n - 4, ".tmp") == 0 &&
            fstatat(fs->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            now - st.st_mtime > 3600)
            unlinkat(fs->dirfd, e->d_name, 0);
    }
    closedir(d);
}

static int file_put(struct blob_store *bs, const char *name, blob_source_fn src, void *ctx,
                    struct blob_put_stats *stats)
{
    struct file_store *fs = (struct file_store *)bs;
    char fname[FNAME_MAX + 8], tmp[FNAME_MAX + 64];
    int rc = encode(fs, name, fname, FNAME_MAX);
    if (rc)
        return rc;
    sweep_stale(fs, fname);
    uint8_t rnd[8];
    char rhex[17];
    if ((rc = rand_bytes(rnd, sizeof rnd)) != 0)
        return rc;
    blob_hex(rnd, sizeof rnd, rhex);
    snprintf(tmp, sizeof tmp, "%s.%s.tmp", fname, rhex);

    struct blob_hash h = {0};
    uint8_t *buf = NULL;
    uint64_t total = 0, written = 0, submitted = 0;
    uint32_t blocks = 0;
    const char *stage = "creating";
    int fd = openat(fs->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = errno;
        goto fail;
    }
    if ((rc = blob_hash_init(&h, 0)) != 0 || !(buf = malloc(fs->cfg.block_size))) {
        rc = rc ? rc : AT_ENOMEM;
        goto out;
    }
    stage = "writing";
    if (lseek(fd, HDR_LEN, SEEK_SET) < 0) {
        rc = errno;
        goto fail;
    }
    for (;;) {
        size_t got = 0;
        if ((rc = blob_fill(src, ctx, buf, fs->cfg.block_size, &got)) != 0)
            goto out; /* the source's own error and detail */
        if (got == 0)
            break;
        blocks++;
        total += got;
        if ((rc = blob_hash_update(&h, buf, got)) != 0)
            goto out;
        if (write_all(fs, fd, buf, got, &written) != 0) {
            rc = errno;
            goto fail;
        }
        writeback(fd, total, &submitted);
        if (got < fs->cfg.block_size)
            break;
    }
    uint8_t hdr[HDR_LEN] = {0};
    memcpy(hdr, MAGIC, 8);
    put_be(hdr + 8, HDR_LEN, 4);
    put_be(hdr + 16, total, 8);
    if ((rc = blob_hash_final(&h, hdr + 24, hdr + 56)) != 0)
        goto out;
    if ((rc = fault(fs, "write", written)) != 0 ||
        (pwrite(fd, hdr, HDR_LEN, 0) != HDR_LEN && (rc = errno ? errno : AT_EIO) != 0))
        goto fail;
    stage = "syncing";
    if ((rc = fault(fs, "fsync", written)) != 0 || (fsync(fd) != 0 && (rc = errno) != 0))
        goto fail;
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        rc = errno;
        goto fail;
    }
    stage = "renaming";
    if ((rc = fault(fs, "rename", written)) != 0 ||
        (renameat(fs->dirfd, tmp, fs->dirfd, fname) != 0 && (rc = errno) != 0))
        goto fail;
    tmp[0] = '\0'; /* nothing left to clean up: the blob is in place */
    stage = "syncing the folder after storing";
    if (fsync(fs->dirfd) != 0) {
        rc = errno;
        goto fail;
    }
    if (stats) {
        *stats = (struct blob_put_stats){.bytes = total, .blocks = blocks, .blocks_sent = blocks};
        memcpy(stats->sha256, hdr + 24, 32);
    }
    goto out;
fail:
    if (!tmp[0])
        at_error_set(rc, "file:%s: blob '%s' was stored, but syncing the folder failed: %s; it "
                         "may not survive a crash", fs->dir, name, at_strerror(rc));
    else if (rc == ENOSPC || rc == EDQUOT)
        at_error_set(rc,
                     "file:%s: disk full while %s blob '%s' (%llu bytes written); the partial "
                     "copy was removed and the previous blob of that name is untouched",
                     fs->dir, stage, name, (unsigned long long)written);
    else
        at_error_set(rc, "file:%s: %s blob '%s' failed: %s; the previous blob of that name is "
                         "untouched", fs->dir, stage, name, at_strerror(rc));
out:
    if (fd >= 0)
        close(fd);
    if (rc && tmp[0])
        unlinkat(fs->dirfd, tmp, 0);
    blob_hash_free(&h);
    free(buf);
    return rc;
}

/* Open name's file and read its header. */
static int open_blob(struct file_store *fs, const char *name, struct hdr *hd, int *fdp)
{
    char fname[FNAME_MAX + 8];
    int rc = encode(fs, name, fname, FNAME_MAX);
    if (rc)
        return rc;
    int fd = openat(fs->dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return at_error_set(AT_ENOTFOUND, "file:%s: no blob '%s'", fs->dir, name);
        return at_error_set(errno, "file:%s: cannot open blob '%s': %s", fs->dir, name,
                            strerror(errno));
    }
    uint8_t b[HDR_LEN];
    struct stat st;
    ssize_t r = pread(fd, b, HDR_LEN, 0);
    if (r != HDR_LEN || memcmp(b, MAGIC, 8) != 0 || get_be(b + 8, 4) != HDR_LEN) {
        close(fd);
        return at_error_set(AT_EFORMAT, "file:%s: blob '%s' has no atrest blob header", fs->dir,
                            name);
    }
    hd->size = get_be(b + 16, 8);
    memcpy(hd->sha256, b + 24, 32);
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != HDR_LEN + hd->size) {
        close(fd);
        return at_error_set(AT_EINTEGRITY,
                            "file:%s: blob '%s' is %lld bytes on disk, its header says %llu: "
                            "truncated or extended",
                            fs->dir, name, (long long)st.st_size - HDR_LEN,
                            (unsigned long long)hd->size);
    }
    *fdp = fd;
    return 0;
}

static int file_get(struct blob_store *bs, const char *name, uint64_t offset, uint64_t length,
                    blob_sink_fn sink, void *ctx)
{
    struct file_store *fs = (struct file_store *)bs;
    struct hdr hd;
    int fd = -1;
    int rc = open_blob(fs, name, &hd, &fd);
    if (rc)
        return rc;
    int whole = offset == 0 && length == UINT64_MAX;
    uint64_t end = offset >= hd.size ? offset : hd.size;
    if (!whole && offset < hd.size && length < hd.size - offset)
        end = offset + length;
    struct blob_hash h = {0};
    uint8_t *buf = malloc(fs->cfg.block_size);
    if (!buf) {
        rc = AT_ENOMEM;
        goto out;
    }
    if (whole && (rc = blob_hash_init(&h, 0)) != 0)
        goto out;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (uint64_t pos = offset; pos < end;) {
        size_t want = end - pos < fs->cfg.block_size ? (size_t)(end - pos) : fs->cfg.block_size;
        ssize_t r = pread(fd, buf, want, (off_t)(HDR_LEN + pos));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = at_error_set(r < 0 ? errno : AT_EINTEGRITY, "file:%s: reading blob '%s': %s",
                              fs->dir, name, r < 0 ? strerror(errno) : "unexpected end");
            goto out;
        }
        if (whole && (rc = blob_hash_update(&h, buf, (size_t)r)) != 0)
            goto out;
        if ((rc = sink(ctx, buf, (size_t)r)) != 0)
            goto out;
        pos += (uint64_t)r;
    }
    if (whole) {
        uint8_t sha[32], md5[16];
        if ((rc = blob_hash_final(&h, sha, md5)) != 0)
            goto out;
        if (CRYPTO_memcmp(sha, hd.sha256, 32) != 0)
            rc = at_error_set(AT_EINTEGRITY,
                              "file:%s: blob '%s' fails its SHA-256 check: the stored bytes "
                              "were changed or damaged; discard what was read",
                              fs->dir, name);
    }
out:
    blob_hash_free(&h);
    free(buf);
    close(fd);
    return rc;
}

static void fill_info(struct blob_info *out, const char *name, const struct hdr *hd, int64_t mtime)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->size = hd->size;
    out->mtime = mtime;
    out->has_sha256 = 1;
    memcpy(out->sha256, hd->sha256, 32);
}

static int file_head(struct blob_store *bs, const char *name, struct blob_info *out)
{
    struct file_store *fs = (struct file_store *)bs;
    struct hdr hd;
    int fd = -1;
    int rc = open_blob(fs, name, &hd, &fd);
    if (rc)
        return rc;
    struct stat st;
    fill_info(out, name, &hd, fstat(fd, &st) == 0 ? (int64_t)st.st_mtime : 0);
    close(fd);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int file_list(struct blob_store *bs, const char *prefix, blob_list_fn fn, void *ctx)
{
    struct file_store *fs = (struct file_store *)bs;
    int fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return at_error_set(e, "file:%s: cannot list: %s", fs->dir, strerror(e));
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    struct dirent *e;
    char name[BLOB_NAME_MAX + 1];
    while ((e = readdir(d)) != NULL) {
        if (decode(e->d_name, name, sizeof name) != 0 || strncmp(name, prefix ? prefix : "", plen))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = AT_ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(name))) {
            rc = AT_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        struct blob_info info;
        rc = file_head(bs, names[i], &info);
        if (rc == AT_ENOTFOUND) { /* deleted while listing */
            rc = 0;
            continue;
        }
        if (!rc)
            rc = fn(ctx, &info);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int file_del(struct blob_store *bs, const char *name)
{
    struct file_store *fs = (struct file_store *)bs;
    char fname[FNAME_MAX + 8];
    int rc = encode(fs, name, fname, FNAME_MAX);
    if (rc)
        return rc;
    if (unlinkat(fs->dirfd, fname, 0) != 0) {
        if (errno == ENOENT)
            return at_error_set(AT_ENOTFOUND, "file:%s: no blob '%s'", fs->dir, name);
        return at_error_set(errno, "file:%s: cannot delete blob '%s': %s", fs->dir, name,
                            strerror(errno));
    }
    if (fsync(fs->dirfd) != 0)
        return at_error_set(errno, "file:%s: deleted '%s' but syncing the folder failed: %s",
                            fs->dir, name, strerror(errno));
    return 0;
}

static void file_close(struct blob_store *bs)
{
    struct file_store *fs = (struct file_store *)bs;
    close(fs->dirfd);
    free(fs);
}

static const struct blob_store_ops file_ops = {
    .iVersion = 1,
    .name = "file",
    .put = file_put,
    .get = file_get,
    .head = file_head,
    .list = file_list,
    .del = file_del,
    .close = file_close,
};

int blob_file_open(const struct blob_cfg *cfg, const char *dir, struct blob_store **out)
{
    if (strlen(dir) >= sizeof ((struct file_store *)0)->dir)
        return at_error_set(ENAMETOOLONG, "file: folder path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return at_error_set(errno, "file:%s: cannot create the blob folder: %s", dir,
                            strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return at_error_set(errno, "file:%s: cannot open the blob folder: %s", dir,
                            strerror(errno));
    struct file_store *fs = calloc(1, sizeof *fs);
    if (!fs) {
        close(dfd);
        return AT_ENOMEM;
    }
    fs->base.ops = &file_ops;
    fs->cfg = *cfg;
    fs->dirfd = dfd;
    snprintf(fs->dir, sizeof fs->dir, "%s", dir);
    *out = &fs->base;
    return 0;
}
