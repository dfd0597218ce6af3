/*
 * rekey.c — re-encryption after a data-key rotation (see rekey.h).
 *
 * Pages reach the disk sealed under the current DEK version of each layer
 * (page.h trailers carry the version). After store_rotate_keys every new
 * page is sealed under the new versions, but the main file and the WAL
 * still hold pages under older ones. A re-encryption makes them current
 * and then destroys the older versions:
 *
 *            store_rekey_step()                 store_rekey_step()
 *   WAL_CHECK ────────────────▶ MAIN_PASS ───────────────────────▶ DONE
 *     │  ▲   no WAL frame under   │  pages 1..N in batches:         older DEK
 *     └──┘   an older version     │  re-seal the ones under an      versions
 *   older frames: checkpoint      │  older version, in place        destroyed
 *   (PASSIVE, then TRUNCATE)      │  (keyring_retire)
 *                                 └── error: stays, nothing destroyed
 *
 * Invariants:
 *   1. The main pass starts only after the WAL held no frame under an older
 *      version — looked at once every frame sealed before the rotation is
 *      in the file (vfs_wal_settled: a transaction that fetched the old key
 *      just before the rotation may not have written its frames yet): from
 *      then on a checkpoint only copies current frames into the main file,
 *      so a page the pass made (or found) current stays current, and one
 *      pass over every page suffices.
 *   2. A page is re-sealed with its plaintext unchanged, under the VFS's
 *      rewrite lock (vfs.c invariant 6): no checkpoint write to that main
 *      file interleaves with the batch's read and write, and a reader whose
 *      read overlapped a rewrite reads again.
 *   3. Crash safety, power loss included: a batch's new images of the
 *      run of pages from its first to its last older page go to
 *      <file>-rekey first (layout below), fsynced; then the run is written
 *      in place and the main file fsynced; then the journal's header is
 *      zeroed and fsynced, all before the lock is let go. rekey_recover
 *      (store open) writes a complete journal's pages in place again (each
 *      must authenticate first) and drops an incomplete or cleared one: an
 *      incomplete journal means no page was written in place yet. A
 *      journal is never replayed after a later checkpoint could have
 *      written the same pages, because it is cleared on disk before the
 *      lock is released. (Pages of the run that were current are written
 *      back unchanged: under the lock they are the latest bytes.)
 *   4. Older DEK versions are destroyed only after a complete pass that
 *      began after invariant 1 held, and only versions below the ones the
 *      pass made current; the keyring is persisted without them first.
 *      A crash before that leaves them in the keyring: the next start
 *      sees the store as pending (store_rekey_pending) and runs again;
 *      pages already current are only read.
 *   5. Plaintext exists only in one locked page buffer (secmem), wiped
 *      after each page; the journal and every write hold ciphertext.
 */
#include "storage/rekey.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "storage/page.h"
#include "storage/vfs.h"

/* The journal (integers big-endian); overwritten in place, never
 * truncated, so its syncs need no metadata commit; removed at the end:
 *
 *   offset        size          field
 *   0             8             magic "ATRRKJ03" (zeros: cleared)
 *   8             4             first page number of the run
 *   12            4             n, pages in the run
 *   16            n * 4096      the run's sealed pages, in order
 *   16 + n*4096   32            SHA-256 of bytes 0..15 and of the SHA-256 of
 *                               each chunk of RJ_CHUNK pages, in order (the
 *                               chunks are hashed by the threads that seal them)
 *   ...                         left over from a longer batch: ignored
 *
 * The header and the sum are written last, after the pages, and all of it
 * is fsynced before a page is written in place. */
#define RJ_MAGIC  "ATRRKJ03"
#define RJ_CHUNK  1024u /* pages per hashed chunk (4 MiB) */
#define RJ_HDR    16
#define RJ_REC    PAGE_SIZE
#define RJ_SUM    32
#define MAX_BATCH 8192u /* pages per step (32 MiB of journal) */

enum phase { WAL_CHECK, MAIN_PASS, DONE };

struct store_rekey {
    struct store *st;
    struct keyring *kr;
    const uint8_t *id;
    int layers;
    sqlite3 *db; /* for checkpoints */
    enum phase phase;
    uint32_t cur[2];   /* the versions this pass makes current */
    uint32_t next;     /* next page of the pass */
    uint64_t wal_mark; /* vfs_wal_settled's mark */
    uint64_t npages;
    uint8_t *journal; /* header + up to MAX_BATCH pages + sum */
    uint8_t *plain;   /* secmem page */
    uint8_t *plain2;  /* the second thread's, when threads == 2 */
    int threads;      /* 1 or 2: threads reading and re-sealing a batch */
    struct store_rekey_progress prog;
    store_rekey_retire_fn before_retire;
    void *before_retire_arg;
    char jpath[PATH_MAX + 8];
    int jfd;
};

/* ---- helpers --------------------------------------------------------------- */

static int sys_error(const char *what, const char *path)
{
    int e = errno ? errno : EIO;
    return at_error_set(e, "%s %s: %s", what, path, strerror(e));
}

static int pread_full(int fd, void *buf, size_t n, off_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ENOSPC;
            return -1;
        }
        done += (size_t)r;
    }
    return 0;
}

static int sha256(const uint8_t *p, size_t n, uint8_t out[RJ_SUM])
{
    unsigned len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 ? 0 : AT_ECRYPTO;
}

/* The version in layer l's trailer of a sealed page. */
static uint32_t trailer_version(const uint8_t *page, int l)
{
    return page_get32(page + PAGE_SIZE - PAGE_TRAILER_LEN * (size_t)(l + 1));
}

static int current_versions(struct keyring *kr, const uint8_t *id, int layers, uint32_t cur[2],
                            int *pending)
{
    *pending = 0;
    for (int l = 0; l < layers; l++) {
        uint32_t oldest;
        int rc = keyring_file_versions(kr, id, l, &oldest, &cur[l]);
        if (rc)
            return rc;
        if (oldest < cur[l])
            *pending = 1;
    }
    return 0;
}

/* ---- rotation ---------------------------------------------------------------- */

int store_rotate_keys(struct store *st)
{
    struct keyring *kr = store_keyring(st);
    for (int l = 0; l < keyring_layers(kr); l++) {
        int rc = keyring_rotate_file(kr, store_file_id(st), l);
        if (rc)
            return rc;
    }
    return 0;
}

int store_rekey_pending(struct store *st)
{
    struct keyring *kr = store_keyring(st);
    uint32_t cur[2];
    int pending = 0;
    if (current_versions(kr, store_file_id(st), keyring_layers(kr), cur, &pending) != 0)
        return 0;
    return pending;
}

/* ---- the WAL ------------------------------------------------------------------ */

/* Whether any complete frame of path-wal is sealed under a version below
 * cur in some layer (the stale tail beyond SQLite's last frame included:
 * those bytes are on disk too). */
static int census_wal(const char *path, int layers, struct keyring *kr, const uint8_t *id,
                      struct rekey_census *c);

static int wal_has_older(struct store_rekey *rk, int *older)
{
    struct rekey_census c;
    memset(&c, 0, sizeof c);
    int rc = census_wal(store_path(rk->st), rk->layers, rk->kr, rk->id, &c);
    *older = 0;
    for (int l = 0; !rc && l < rk->layers; l++)
        for (int i = 0; i < c.nver[l]; i++)
            if (c.ver[l][i] < rk->cur[l])
                *older = 1;
    return rc;
}

/* Move older WAL frames out: a passive checkpoint copies them to the main
 * file (the pass then re-seals them there); a truncating one removes the
 * WAL's bytes, stale tail included, when no writer or reader is in the
 * way. Busy is no error: the next step tries again. */
static void wal_flush_older(struct store_rekey *rk)
{
    int log = -1, ckpt = -1;
    sqlite3_wal_checkpoint_v2(rk->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    if (log >= 0 && log == ckpt)
        sqlite3_wal_checkpoint_v2(rk->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* ---- the journal (invariant 3) ---------------------------------------------------- */

static int journal_open(struct store_rekey *rk)
{
    if (rk->jfd >= 0)
        return 0;
    rk->jfd = open(rk->jpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (rk->jfd < 0)
        return sys_error("cannot create", rk->jpath);
    /* The journal's name must be durable before a page is written in place. */
    char dir[sizeof rk->jpath];
    memcpy(dir, rk->jpath, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : sys_error("cannot sync the folder of", rk->jpath);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* The journal's sum over its header and the chunk digests (layout above). */
static int journal_sum(const uint8_t hdr[RJ_HDR], const uint8_t (*digest)[RJ_SUM], uint32_t n,
                       uint8_t out[RJ_SUM])
{
    uint32_t chunks = (n + RJ_CHUNK - 1) / RJ_CHUNK;
    uint8_t buf[RJ_HDR + (MAX_BATCH / RJ_CHUNK) * RJ_SUM];
    memcpy(buf, hdr, RJ_HDR);
    memcpy(buf + RJ_HDR, digest, (size_t)chunks * RJ_SUM);
    return sha256(buf, RJ_HDR + (size_t)chunks * RJ_SUM, out);
}

/* Complete the journal of the n pages from first (in rk->journal after the
 * header; chunks marked in written[] are in the file already) and make it
 * durable. */
static int journal_write(struct store_rekey *rk, uint32_t first, uint32_t n,
                         const uint8_t (*digest)[RJ_SUM], const int *written)
{
    uint8_t *j = rk->journal;
    memcpy(j, RJ_MAGIC, 8);
    page_put32(j + 8, first);
    page_put32(j + 12, n);
    size_t len = RJ_HDR + (size_t)n * RJ_REC;
    int rc = journal_sum(j, digest, n, j + len);
    if (rc)
        return at_error_set(rc, "cannot checksum the re-encryption journal");
    for (uint32_t c = 0; c * RJ_CHUNK < n; c++) {
        size_t off = RJ_HDR + (size_t)c * RJ_CHUNK * RJ_REC;
        size_t clen = (size_t)(n - c * RJ_CHUNK < RJ_CHUNK ? n - c * RJ_CHUNK : RJ_CHUNK) * RJ_REC;
        if (!written[c] && pwrite_full(rk->jfd, j + off, clen, (off_t)off) != 0)
            return sys_error("cannot write", rk->jpath);
    }
    if (pwrite_full(rk->jfd, j + len, RJ_SUM, (off_t)len) != 0 ||
        pwrite_full(rk->jfd, j, RJ_HDR, 0) != 0 || fdatasync(rk->jfd) != 0)
        return sys_error("cannot write", rk->jpath);
    return 0;
}

/* Invalidate the journal: its header zeroed, durably. */
static int journal_clear(int jfd, const char *jpath)
{
    static const uint8_t zero[RJ_HDR];
    if (pwrite_full(jfd, zero, sizeof zero, 0) != 0 || fdatasync(jfd) != 0)
        return sys_error("cannot clear", jpath);
    return 0;
}

int rekey_recover(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layers,
                  const char *path)
{
    char jpath[PATH_MAX + 8];
    snprintf(jpath, sizeof jpath, "%s-rekey", path);
    int jfd = open(jpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (jfd < 0)
        return errno == ENOENT ? 0 : sys_error("cannot open", jpath);
    struct stat sb;
    uint8_t *buf = NULL, *plain = NULL;
    int fd = -1, rc = 0;
    if (fstat(jfd, &sb) != 0) {
        rc = sys_error("cannot stat", jpath);
        goto out;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    if (len > RJ_HDR + (size_t)MAX_BATCH * RJ_REC + RJ_SUM)
        len = RJ_HDR + (size_t)MAX_BATCH * RJ_REC + RJ_SUM;
    if (len < RJ_HDR + RJ_SUM)
        goto drop; /* empty, or cut short before it was complete */
    if (!(buf = malloc(len)) || !(plain = secmem_alloc(PAGE_SIZE))) {
        rc = AT_ENOMEM;
        goto out;
    }
    if (pread_full(jfd, buf, len, 0, &got) != 0 || got != len) {
        rc = sys_error("cannot read", jpath);
        goto out;
    }
    /* Bytes past the records and their sum are left over from a larger
     * batch; a cleared journal has a zero header. */
    uint8_t sum[RJ_SUM], digest[MAX_BATCH / RJ_CHUNK][RJ_SUM];
    uint32_t first = page_get32(buf + 8), n = page_get32(buf + 12);
    size_t end = RJ_HDR + (size_t)n * RJ_REC;
    if (memcmp(buf, RJ_MAGIC, 8) != 0 || n > MAX_BATCH || first == 0 || end + RJ_SUM > len)
        goto drop; /* cleared or incomplete: nothing of it reached the main file */
    for (uint32_t c = 0; c * RJ_CHUNK < n; c++) {
        uint32_t k = n - c * RJ_CHUNK < RJ_CHUNK ? n - c * RJ_CHUNK : RJ_CHUNK;
        if (sha256(buf + RJ_HDR + (size_t)c * RJ_CHUNK * RJ_REC, (size_t)k * RJ_REC, digest[c]))
            goto drop;
    }
    if (journal_sum(buf, (const uint8_t(*)[RJ_SUM])digest, n, sum) != 0 ||
        memcmp(sum, buf + end, RJ_SUM) != 0)
        goto drop;
    if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        rc = sys_error("cannot open", path);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pgno = first + i;
        memcpy(plain, buf + RJ_HDR + (size_t)i * RJ_REC, PAGE_SIZE);
        if (page_all_zero(plain, PAGE_SIZE))
            continue; /* an unwritten page of the run, written back as it was */
        int arc = page_open(kr, id, layers, pgno, plain);
        secmem_wipe(plain, PAGE_SIZE);
        if (arc) {
            rc =
                at_error_set(AT_EINTEGRITY,
                             "re-encryption journal %s: page %u fails authentication", jpath, pgno);
            goto out;
        }
    }
    if (pwrite_full(fd, buf + RJ_HDR, (size_t)n * RJ_REC, (off_t)(first - 1) * PAGE_SIZE) != 0) {
        rc = sys_error("cannot write", path);
        goto out;
    }
    if (fdatasync(fd) != 0) {
        rc = sys_error("cannot sync", path);
        goto out;
    }
drop:
    if ((rc = journal_clear(jfd, jpath)) == 0 && unlink(jpath) != 0)
        rc = sys_error("cannot remove", jpath);
out:
    if (fd >= 0)
        close(fd);
    close(jfd);
    free(buf);
    secmem_free(plain, PAGE_SIZE);
    return rc;
}

/* ---- re-encryption ------------------------------------------------------------------- */

int store_rekey_new(struct store *st, struct store_rekey **out)
{
    struct store_rekey *rk = calloc(1, sizeof *rk);
    *out = NULL;
    if (!rk)
        return AT_ENOMEM;
    rk->st = st;
    rk->kr = store_keyring(st);
    rk->id = store_file_id(st);
    rk->layers = keyring_layers(rk->kr);
    rk->jfd = -1;
    rk->phase = WAL_CHECK;
    snprintf(rk->jpath, sizeof rk->jpath, "%s-rekey", store_path(st));
    rk->journal = malloc(RJ_HDR + (size_t)MAX_BATCH * RJ_REC + RJ_SUM);
    rk->plain = secmem_alloc(PAGE_SIZE);
    rk->plain2 = secmem_alloc(PAGE_SIZE);
    rk->threads = 1;
    int rc = rk->journal && rk->plain && rk->plain2 ? store_connect(st, &rk->db) : AT_ENOMEM;
    if (rc) {
        store_rekey_free(rk);
        return rc;
    }
    /* A truncating checkpoint holds new writers back while it waits for
     * readers: never for long (wal_flush_older tries again later). */
    sqlite3_busy_timeout(rk->db, 50);
    *out = rk;
    return 0;
}

void store_rekey_free(struct store_rekey *rk)
{
    if (!rk)
        return;
    if (rk->db)
        store_disconnect(rk->db);
    if (rk->jfd >= 0)
        close(rk->jfd);
    free(rk->journal);
    secmem_free(rk->plain, PAGE_SIZE);
    secmem_free(rk->plain2, PAGE_SIZE);
    free(rk);
}

void store_rekey_set_before_retire(struct store_rekey *rk, store_rekey_retire_fn fn, void *arg)
{
    rk->before_retire = fn;
    rk->before_retire_arg = arg;
}

void store_rekey_set_threads(struct store_rekey *rk, int threads)
{
    rk->threads = threads == 2 ? 2 : 1;
}

void store_rekey_progress(const struct store_rekey *rk, struct store_rekey_progress *p)
{
    *p = rk->prog;
}

/* Re-seal one sealed page in place if it is under an older version in
 * any layer (*resealed set), or leave it as it is. The outer version is
 * in the clear; the inner one only shows once the outer layer is open. */
static int reseal(struct store_rekey *rk, uint8_t *plain, uint32_t pgno, uint8_t *page,
                  int *resealed)
{
    if (page_all_zero(page, PAGE_SIZE)) {
        *resealed = 0; /* an unwritten page (page.h): no ciphertext, no key */
        return 0;
    }
    *resealed = trailer_version(page, 0) < rk->cur[0];
    if (!*resealed && rk->layers == 1)
        return 0;
    uint32_t v[2];
    memcpy(plain, page, PAGE_SIZE);
    int rc = page_open_versions(rk->kr, rk->id, rk->layers, pgno, plain, v);
    if (rc == 0 && rk->layers == 2 && v[1] < rk->cur[1])
        *resealed = 1;
    if (rc == 0 && *resealed)
        rc = page_seal(rk->kr, rk->id, rk->layers, pgno, plain);
    if (rc == 0 && *resealed)
        memcpy(page, plain, PAGE_SIZE);
    secmem_wipe(plain, PAGE_SIZE);
    if (rc == AT_EINTEGRITY)
        return at_error_set(rc, "store %s: page %u fails authentication; re-encryption stopped",
                            store_path(rk->st), pgno);
    return rc;
}

/* A batch is read and re-sealed in chunks of RJ_CHUNK pages by one or two
 * threads (each with its own plaintext page). A chunk with an older page is
 * hashed and written to the journal at once, its writeback started, so the
 * journal's fsync finds it mostly on disk; chunks of current pages wait:
 * they go to the journal only if another chunk needs the batch written. */
struct batch {
    struct store_rekey *rk;
    int fd;
    uint32_t n, nchunks;
    atomic_uint next; /* next chunk to take */
    pthread_mutex_t mu;
    int rc;         /* the first error, under mu */
    int journal_ok; /* the journal file is open */
    uint32_t got[MAX_BATCH / RJ_CHUNK], resealed[MAX_BATCH / RJ_CHUNK];
    int written[MAX_BATCH / RJ_CHUNK];
    uint8_t digest[MAX_BATCH / RJ_CHUNK][RJ_SUM];
};

static void batch_fail(struct batch *b, int rc)
{
    pthread_mutex_lock(&b->mu);
    if (!b->rc)
        b->rc = rc;
    pthread_mutex_unlock(&b->mu);
}

static void chunk_run(struct batch *b, uint32_t c, uint8_t *plain)
{
    struct store_rekey *rk = b->rk;
    uint32_t first = c * RJ_CHUNK, k = b->n - first < RJ_CHUNK ? b->n - first : RJ_CHUNK;
    size_t off = RJ_HDR + (size_t)first * RJ_REC, got;
    uint8_t *pages = rk->journal + off;
    if (pread_full(b->fd, pages, (size_t)k * PAGE_SIZE, (off_t)(rk->next + first - 1) * PAGE_SIZE,
                   &got) != 0) {
        batch_fail(b, sys_error("cannot read", store_path(rk->st)));
        return;
    }
    b->got[c] = (uint32_t)(got / PAGE_SIZE);
    for (uint32_t i = 0; i < b->got[c]; i++) {
        int resealed = 0;
        int rc = reseal(rk, plain, rk->next + first + i, pages + (size_t)i * PAGE_SIZE, &resealed);
        if (rc) {
            batch_fail(b, rc);
            return;
        }
        b->resealed[c] += (uint32_t)resealed;
    }
    if (b->got[c] == k && sha256(pages, (size_t)k * RJ_REC, b->digest[c]) != 0) {
        batch_fail(b, at_error_set(AT_ECRYPTO, "cannot checksum the re-encryption journal"));
        return;
    }
    if (b->resealed[c] && b->got[c] == k && b->journal_ok) {
        if (pwrite_full(rk->jfd, pages, (size_t)k * RJ_REC, (off_t)off) != 0) {
            batch_fail(b, sys_error("cannot write", rk->jpath));
            return;
        }
        sync_file_range(rk->jfd, (off_t)off, (off_t)k * RJ_REC, SYNC_FILE_RANGE_WRITE);
        b->written[c] = 1;
    }
}

static void batch_work(struct batch *b, uint8_t *plain)
{
    unsigned c;
    while ((c = atomic_fetch_add(&b->next, 1)) < b->nchunks) {
        pthread_mutex_lock(&b->mu);
        int failed = b->rc != 0;
        pthread_mutex_unlock(&b->mu);
        if (failed)
            return;
        chunk_run(b, c, plain);
    }
}

static void *batch_thread(void *arg)
{
    struct batch *b = arg;
    batch_work(b, b->rk->plain2);
    return NULL;
}

/* One batch of the main pass, under the rewrite lock (invariant 2). */
static int pass_batch(struct store_rekey *rk, uint32_t max)
{
    const char *path = store_path(rk->st);
    struct vfs_rekey *h;
    int fd, rc = vfs_rekey_hold(path, &h, &fd);
    if (rc)
        return rc;
    struct stat sb;
    uint32_t n = 0, resealed_n = 0;
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        rc = AT_ENOMEM;
        goto out;
    }
    pthread_mutex_init(&b->mu, NULL);
    if (fstat(fd, &sb) != 0) {
        rc = sys_error("cannot stat", path);
        goto out;
    }
    uint64_t npages = (uint64_t)sb.st_size / PAGE_SIZE;
    if (rk->next == 1)
        rk->prog.pages = npages;
    if (rk->next > npages) {
        rk->phase = DONE;
        goto out;
    }
    n = (uint32_t)(npages - rk->next + 1 < max ? npages - rk->next + 1 : max);
    b->rk = rk;
    b->fd = fd;
    b->n = n;
    b->nchunks = (n + RJ_CHUNK - 1) / RJ_CHUNK;
    b->journal_ok = journal_open(rk) == 0;
    pthread_t t2;
    int spawned =
        rk->threads == 2 && b->nchunks > 1 && pthread_create(&t2, NULL, batch_thread, b) == 0;
    batch_work(b, rk->plain);
    if (spawned)
        pthread_join(t2, NULL);
    if ((rc = b->rc) != 0)
        goto out;
    /* A chunk that read short (a checkpoint truncated the file before we
     * held the lock) ends the batch there. */
    n = 0;
    for (uint32_t c = 0; c < b->nchunks; c++) {
        n += b->got[c];
        resealed_n += b->resealed[c];
        if (b->got[c] < (b->n - c * RJ_CHUNK < RJ_CHUNK ? b->n - c * RJ_CHUNK : RJ_CHUNK))
            break;
    }
    rk->prog.bytes += (uint64_t)n * PAGE_SIZE;
    rk->prog.visited += n;
    if (resealed_n) {
        if (n % RJ_CHUNK) { /* a short last chunk: its digest covers what was read */
            uint32_t c = n / RJ_CHUNK;
            b->written[c] = 0;
            if (sha256(rk->journal + RJ_HDR + (size_t)c * RJ_CHUNK * RJ_REC,
                       (size_t)(n % RJ_CHUNK) * RJ_REC, b->digest[c]) != 0) {
                rc = at_error_set(AT_ECRYPTO, "cannot checksum the re-encryption journal");
                goto out;
            }
        }
        if ((rc = journal_open(rk)) != 0 ||
            (rc = journal_write(rk, rk->next, n, (const uint8_t(*)[RJ_SUM])b->digest,
                                b->written)) != 0)
            goto out;
        if (pwrite_full(fd, rk->journal + RJ_HDR, (size_t)n * PAGE_SIZE,
                        (off_t)(rk->next - 1) * PAGE_SIZE) != 0) {
            rc = sys_error("cannot write", path);
            goto out;
        }
        if (fdatasync(fd) != 0) {
            rc = sys_error("cannot sync", path);
            goto out;
        }
        if ((rc = journal_clear(rk->jfd, rk->jpath)) != 0)
            goto out;
        rk->prog.rewritten += resealed_n;
    }
    rk->next += n;
out:
    if (b)
        pthread_mutex_destroy(&b->mu);
    free(b);
    vfs_rekey_release(h);
    return rc;
}

/* Destroy the versions below the ones the pass made current (invariant 4).
 * *later: the caller's before-retire hook asked to wait. */
static int finish(struct store_rekey *rk, int *later)
{
    *later = 0;
    if (rk->before_retire) {
        int r = rk->before_retire(rk->before_retire_arg, rk->cur);
        if (r == 1) {
            *later = 1;
            rk->prog.waiting_wal = 1; /* reported as waiting, like the WAL */
            return 0;
        }
        if (r)
            return r;
    }
    for (int l = 0; l < rk->layers; l++) {
        size_t destroyed = 0;
        int rc = keyring_retire(rk->kr, rk->id, l, rk->cur[l], &destroyed);
        if (rc)
            return rc;
        rk->prog.destroyed += destroyed;
    }
    if (rk->jfd >= 0) {
        close(rk->jfd);
        rk->jfd = -1;
    }
    if (unlink(rk->jpath) != 0 && errno != ENOENT)
        return sys_error("cannot remove", rk->jpath);
    return 0;
}

int store_rekey_step(struct store_rekey *rk, uint32_t max_pages, int *done)
{
    *done = 0;
    if (max_pages == 0 || max_pages > MAX_BATCH)
        max_pages = MAX_BATCH;
    int rc = 0;
    if (rk->phase == WAL_CHECK) {
        int pending, older;
        if ((rc = current_versions(rk->kr, rk->id, rk->layers, rk->cur, &pending)) != 0)
            return rc;
        /* Frames sealed just before the rotation may still be on their
         * way into the WAL file: wait until they are in it. */
        if (!vfs_wal_settled(store_path(rk->st), &rk->wal_mark)) {
            rk->prog.waiting_wal = 1;
            return 0;
        }
        if ((rc = wal_has_older(rk, &older)) != 0)
            return rc;
        rk->prog.waiting_wal = older;
        if (older) {
            wal_flush_older(rk);
            return 0;
        }
        rk->phase = MAIN_PASS;
        rk->next = 1;
        rk->prog.visited = 0;
    }
    if (rk->phase == MAIN_PASS && (rc = pass_batch(rk, max_pages)) != 0)
        return rc;
    if (rk->phase == DONE) {
        int later;
        if ((rc = finish(rk, &later)) != 0)
            return rc;
        *done = !later;
    }
    return 0;
}

/* ---- census ------------------------------------------------------------------------ */

static void census_add(struct rekey_census *c, int l, uint32_t v, int wal)
{
    int i = 0;
    while (i < c->nver[l] && c->ver[l][i] < v)
        i++;
    if (i == c->nver[l] || c->ver[l][i] != v) {
        if (c->nver[l] == REKEY_CENSUS_MAX) {
            c->other[l]++;
            return;
        }
        /* keep versions ascending */
        memmove(&c->ver[l][i + 1], &c->ver[l][i], (size_t)(c->nver[l] - i) * sizeof(uint32_t));
        memmove(&c->pages_at[l][i + 1], &c->pages_at[l][i],
                (size_t)(c->nver[l] - i) * sizeof(uint64_t));
        memmove(&c->frames_at[l][i + 1], &c->frames_at[l][i],
                (size_t)(c->nver[l] - i) * sizeof(uint64_t));
        c->ver[l][i] = v;
        c->pages_at[l][i] = c->frames_at[l][i] = 0;
        c->nver[l]++;
    }
    if (wal)
        c->frames_at[l][i]++;
    else
        c->pages_at[l][i]++;
}

/* Count the versions of every whole page of path from offset first, one
 * page every stride bytes (the page is the last PAGE_SIZE bytes). */
static int census_file(const char *path, int layers, struct keyring *kr, const uint8_t *id,
                       off_t first, off_t stride, struct rekey_census *c, uint64_t *units)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : sys_error("cannot open", path);
    int wal = first != 0;
    int keyed = kr && layers == 2;
    size_t want = keyed ? (size_t)stride : PAGE_TRAILER_LEN * (size_t)layers;
    uint8_t *buf = keyed ? secmem_alloc(FRAME_SIZE) : malloc(PAGE_TRAILER_LEN * 2);
    struct stat sb;
    int rc = !buf ? AT_ENOMEM : fstat(fd, &sb) == 0 ? 0 : sys_error("cannot stat", path);
    for (off_t end = first + stride; !rc && end <= sb.st_size; end += stride) {
        size_t got;
        if (pread_full(fd, buf, want, end - (off_t)want, &got) != 0) {
            rc = sys_error("cannot read", path);
            break;
        }
        if (got != want) /* the file shrank since fstat (a live WAL truncated by a checkpoint) */
            break;
        if (!wal && page_all_zero(buf, want)) /* an unwritten page (page.h); a sealed
                                                 page's trailer is never all zero */
            continue;
        (*units)++;
        if (!keyed) {
            /* the trailers only: the outer version; the inner one is sealed */
            census_add(c, 0, page_get32(buf + want - PAGE_TRAILER_LEN), wal);
            continue;
        }
        uint8_t *page = buf + want - PAGE_SIZE;
        uint32_t pgno = wal ? page_get32(buf) : (uint32_t)((end - first) / stride);
        uint32_t v[2] = {trailer_version(page, 0), 0};
        census_add(c, 0, v[0], wal);
        if (page_open_versions(kr, id, layers, pgno, page, v) == 0)
            census_add(c, 1, v[1], wal);
        else
            c->other[1]++; /* does not open: a torn WAL tail, or damage */
    }
    close(fd);
    if (keyed)
        secmem_free(buf, FRAME_SIZE);
    else
        free(buf);
    return rc;
}

static int census_wal(const char *path, int layers, struct keyring *kr, const uint8_t *id,
                      struct rekey_census *c)
{
    char wpath[PATH_MAX + 8];
    snprintf(wpath, sizeof wpath, "%s-wal", path);
    return census_file(wpath, layers, kr, id, WAL_HDR, FRAME_SIZE, c, &c->wal_frames);
}

int rekey_census(const char *path, int layers, struct keyring *kr,
                 const uint8_t id[KEYRING_FILE_ID_LEN], struct rekey_census *c)
{
    memset(c, 0, sizeof *c);
    if (layers < 1 || layers > 2)
        return AT_EINVAL;
    c->inner_known = layers == 2 && kr;
    int rc = census_file(path, layers, kr, id, 0, PAGE_SIZE, c, &c->pages);
    return rc ? rc : census_wal(path, layers, kr, id, c);
}
