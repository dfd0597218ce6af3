/*
 * blob.h — the blob store: named, immutable byte streams in a local folder
 * or an Azure Blob Storage container, behind one small vtable.
 *
 * Backups and media attachments are written through it (docs/blob.md). The
 * blob store only ever receives what its callers hand it; once backups use
 * it that is ciphertext only — this layer adds integrity checks, never
 * secrecy.
 *
 * Targets, chosen by a target string (blob_open):
 *   file:DIR      a local folder (the default; a bare path means file:)
 *   azblob:URL    an Azure Blob Storage container URL, e.g.
 *                 http://127.0.0.1:10000/devstoreaccount1/backups, with the
 *                 account key (base64) read from blob_options.account_key_file
 *
 * What every target guarantees:
 *  1. put is atomic from a reader's view: a blob appears (or replaces the
 *     previous blob of its name) only once all of it is stored; a failed put
 *     leaves the previous blob of that name untouched.
 *  2. put streams: at most one block (blob_options.block_size) of the blob is
 *     in memory at a time, however large the blob.
 *  3. Every blob carries the SHA-256 of its bytes, computed while it was
 *     written (azblob also the MD5 Azure keeps as Content-MD5); a whole-blob
 *     get recomputes the SHA-256 and fails with AT_EINTEGRITY on a
 *     mismatch. A ranged get checks only the length.
 *  4. get streams into a sink. On failure the sink may already have seen
 *     bytes: a caller must discard them (for a whole-blob get, the checksum
 *     is only known good when get returns 0).
 *
 * Names: 1..1024 bytes of [A-Za-z0-9._~/-], no leading or trailing '/', no
 * empty, "." or ".." segment. The same names work on every target.
 *
 * Errors (error.h): 0; AT_EINVAL (bad name or options); AT_ENOTFOUND (no such
 * blob); AT_EINTEGRITY (checksum mismatch); AT_EFORMAT (a stored blob not
 * written by atrest); EACCES (the service refused the credentials); ENOSPC
 * (disk full); ECONNREFUSED, ETIMEDOUT or AT_EIO (the service stayed
 * unreachable or failing through every retry); any errno from the local file
 * system; or an error a source/sink/list callback returned, passed through.
 * Every failure records a one-line detail (at_error_detail()) that names the
 * target, the blob and the cause; details never contain key material.
 */
#ifndef ATREST_BLOB_BLOB_H
#define ATREST_BLOB_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define BLOB_NAME_MAX        1024
#define BLOB_BLOCK_DEFAULT   (4u << 20)   /* 4 MiB blocks */
#define BLOB_BLOCK_MIN       (64u << 10)  /* 64 KiB */
#define BLOB_BLOCK_MAX       (100u << 20) /* Azure's Put Block limit */
#define BLOB_MAX_BLOCKS      50000u       /* Azure's committed-block limit */
#define BLOB_ATTEMPTS_DEFAULT 6

/* Fill buf[0..cap) with the next bytes of the blob; *got = 0 means the end.
 * Return 0, or an error that aborts the put (passed through). */
typedef int (*blob_source_fn)(void *ctx, uint8_t *buf, size_t cap, size_t *got);

/* Take the next len bytes of the blob. Return 0, or an error that aborts
 * the get (passed through). */
typedef int (*blob_sink_fn)(void *ctx, const uint8_t *buf, size_t len);

/* What a target knows about one stored blob. */
struct blob_info {
    char name[BLOB_NAME_MAX + 1];
    uint64_t size;
    int64_t mtime;      /* seconds since the epoch, 0 when unknown */
    int has_sha256;     /* the blob carries atrest's SHA-256 */
    uint8_t sha256[32];
    int has_md5;
    uint8_t md5[16];
};

/* Called once per blob by list, in name order; a nonzero return stops the
 * listing and is returned by list. */
typedef int (*blob_list_fn)(void *ctx, const struct blob_info *info);

/* What a put did (optional out-parameter). */
struct blob_put_stats {
    uint64_t bytes;          /* blob size */
    uint32_t blocks;         /* blocks in the blob */
    uint32_t blocks_sent;    /* blocks transferred by this put */
    uint32_t blocks_skipped; /* already staged by an earlier, interrupted put */
    uint32_t retries;        /* requests repeated after a transient failure */
    uint8_t sha256[32];      /* SHA-256 of the whole blob (the one the store keeps) */
};

/* Test hook for the file target: called before each write ("write", offset
 * = bytes of the blob written so far), fsync ("fsync") and rename
 * ("rename"); a nonzero return is taken as that call's errno. */
typedef int (*blob_fault_fn)(void *ctx, const char *op, uint64_t offset);

struct blob_options {
    const char *target;           /* "file:DIR", "azblob:URL" or a path */
    const char *account_key_file; /* azblob: file holding the base64 key */
    const char *account_name;     /* azblob: override the account name found
                                     in the URL (NULL: from the URL) */
    size_t block_size;            /* 0: BLOB_BLOCK_DEFAULT */
    int max_attempts;             /* per request, first try included; 0: default */
    unsigned backoff_ms;          /* first retry delay; 0: 200 ms */
    unsigned backoff_max_ms;      /* cap of a delay; 0: 10 s */
    unsigned connect_timeout_s;   /* 0: 10 s */
    unsigned stall_timeout_s;     /* a transfer slower than 1 byte/s for this
                                     long fails (and is retried); 0: 30 s */
    blob_fault_fn fault;          /* file target test hook, normally NULL */
    void *fault_ctx;
};

struct blob_store;

struct blob_store_ops {
    int iVersion;     /* 1 */
    const char *name; /* "file", "azblob" */

    /* Version 1 methods. On failure every method returns nonzero (see the
     * list above) and records a detail; put leaves no partial blob visible. */

    /* Store the bytes that src produces as name, replacing a blob of that
     * name atomically. A restarted azblob put of the same bytes skips the
     * blocks an interrupted one already staged. stats may be NULL. */
    int (*put)(struct blob_store *bs, const char *name, blob_source_fn src, void *src_ctx,
               struct blob_put_stats *stats);

    /* Stream name's bytes [offset, offset+length) into sink; length
     * UINT64_MAX means "to the end". offset 0 and length UINT64_MAX is a
     * whole-blob get: its SHA-256 is verified (AT_EINTEGRITY). A range past
     * the end is clipped to the end. */
    int (*get)(struct blob_store *bs, const char *name, uint64_t offset, uint64_t length,
               blob_sink_fn sink, void *sink_ctx);

    /* Size and checksums of name, without its bytes. */
    int (*head)(struct blob_store *bs, const char *name, struct blob_info *out);

    /* Every blob whose name starts with prefix ("" for all), in name order. */
    int (*list)(struct blob_store *bs, const char *prefix, blob_list_fn fn, void *ctx);

    /* Remove name. AT_ENOTFOUND when there is none. */
    int (*del)(struct blob_store *bs, const char *name);

    /* Free bs (wiping the account key). */
    void (*close)(struct blob_store *bs);
};

/* Every target's struct embeds this first. */
struct blob_store {
    const struct blob_store_ops *ops;
};

/* Open the target opt->target names. Nothing is contacted yet: an azblob
 * container that does not exist is created by the first put. Errors:
 * AT_EINVAL (target string, options), errno/AT_EKEYDIR reading the key file,
 * ENOENT/ENOTDIR for a missing local folder. */
int blob_open(const struct blob_options *opt, struct blob_store **out) AT_WUR;

/* 0 when name follows the name rules above, else AT_EINVAL with a detail. */
int blob_name_check(const char *name) AT_WUR;

static inline int blob_put(struct blob_store *bs, const char *name, blob_source_fn src, void *ctx,
                           struct blob_put_stats *stats)
{
    return bs->ops->put(bs, name, src, ctx, stats);
}
static inline int blob_get(struct blob_store *bs, const char *name, uint64_t offset,
                           uint64_t length, blob_sink_fn sink, void *ctx)
{
    return bs->ops->get(bs, name, offset, length, sink, ctx);
}
static inline int blob_head(struct blob_store *bs, const char *name, struct blob_info *out)
{
    return bs->ops->head(bs, name, out);
}
static inline int blob_list(struct blob_store *bs, const char *prefix, blob_list_fn fn, void *ctx)
{
    return bs->ops->list(bs, prefix, fn, ctx);
}
static inline int blob_delete(struct blob_store *bs, const char *name)
{
    return bs->ops->del(bs, name);
}
static inline void blob_close(struct blob_store *bs)
{
    if (bs)
        bs->ops->close(bs);
}

/* Bytes [off, off + want) of name into buf; *got how many came (fewer at
 * the blob's end). */
int blob_get_range(struct blob_store *bs, const char *name, uint64_t off, uint8_t *buf,
                   size_t want, size_t *got) AT_WUR;

/* Copy blob from_name of src to to_name of dst (the same or another
 * store), streaming: one ranged get per block of the put, so no more than
 * a block is held. *bytes (may be NULL): the size copied. AT_ENOTFOUND
 * when src has no such blob. */
int blob_copy(struct blob_store *src, const char *from_name, struct blob_store *dst,
              const char *to_name, uint64_t *bytes) AT_WUR;

/* Ready-made sources and sinks over file descriptors (pipes included). */
int blob_fd_source(void *fd_ptr, uint8_t *buf, size_t cap, size_t *got);
int blob_fd_sink(void *fd_ptr, const uint8_t *buf, size_t len);

#endif
