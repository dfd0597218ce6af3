/*
 * attachments.c — Cosmos attachments and their media (docs/attachments.md):
 *
 *   /dbs/{db}/colls/{coll}/docs/{doc}/attachments        POST create (JSON
 *        metadata, or media bytes with Slug/Content-Type), upsert with
 *        x-ms-documentdb-is-upsert; GET feed (paged)
 *   /dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}   GET, PUT, DELETE
 *   /media/{mediaId}                                     GET (streamed), PUT
 *
 * Where things live:
 *   atts(aseq, doc, id, etag, ts, body, mid, blob, size, dek) in the
 *        container's encrypted store: body holds the user's properties;
 *        mid/blob/size/dek are set for media atrest keeps ("managed"):
 *        the media id of its /media link, the sealed blob's name, the
 *        plaintext size and the per-blob DEK's shares, wrapped under keys
 *        derived from this container's keyring DEKs (media.h).
 *   media_gc(blob) in the same store: blobs no row refers to any more,
 *        written in the same transaction that let go of them and deleted
 *        from the blob store after it committed (attachments_gc).
 *   the sealed blobs in the media blob store (<data-dir>/media by default),
 *        named "<container store>/<32 random hex digits>" — never an id.
 *
 * A media id is 18 bytes in the SDK's base64 ('+', '-'): the container's
 * 8-byte rid (so /media/{id} finds its container) and 10 random bytes.
 * The SDK signs media requests with resource type "media" and the media id
 * lowercased as the link (auth.c).
 *
 * Uploads stream: http.c calls upload_begin on the first call (headers
 * only: authenticated and checked before a byte is taken), upload_data for
 * each piece of the body, which goes through a pipe to a thread running
 * media_put (sealing 64 KiB chunks into the blob store), and the handler
 * on a worker thread at the end, which waits for that thread and commits
 * the row. A new blob becomes visible only through that commit; a failed
 * or aborted upload deletes its blob.
 *
 * Invariants:
 *   1. A blob is deleted only after the transaction that dropped its last
 *      reference committed (through media_gc), so a rolled-back write never
 *      loses media.
 *   2. Every media put has a fresh DEK and a fresh blob name: replacing
 *      media writes a new blob and retires the old one.
 *   3. Media DEKs exist unwrapped only in secmem, for one request.
 *   4. At start, before serving, every blob no row names (a crash between
 *      a put and its commit, an interrupted drop) is deleted (catalog.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "media/media.h"
#include "server/keymon.h"
#include "server/srv.h"

const char ATT_SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS atts(aseq INTEGER PRIMARY KEY, doc INTEGER NOT NULL, id TEXT NOT "
    "NULL, etag TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, mid TEXT, blob TEXT, "
    "size INTEGER, dek BLOB, UNIQUE(doc, id));"
    "CREATE UNIQUE INDEX IF NOT EXISTS atts_mid ON atts(mid) WHERE mid IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS atts_blob ON atts(blob) WHERE blob IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS media_gc(blob TEXT PRIMARY KEY) WITHOUT ROWID;";

#define MID_BYTES 18
#define MID_LEN   24 /* base64 of MID_BYTES, no padding */
#define MID_BUF   32 /* room srv_rid_encode wants for it */

static const char MSG_NODOC[] = "Entity with the specified id does not exist in the system.";
static const char MSG_412[] =
    "Operation cannot be performed because one of the specified precondition is not met.";

/* ---- names and ids ---- */

static int b64val(char ch)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-";
    const char *p = ch ? strchr(tab, ch) : NULL;
    return p ? (int)(p - tab) : -1;
}

/* The container rid bytes of a media id, or -1 when it is not one. */
static int mid_decode(const char *mid, unsigned char ridb[8])
{
    unsigned char raw[MID_BYTES];
    if (strlen(mid) != MID_LEN)
        return -1;
    for (int i = 0, o = 0; i < MID_LEN; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            if ((v[k] = b64val(mid[i + k])) < 0)
                return -1;
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        raw[o++] = (unsigned char)(x >> 16);
        raw[o++] = (unsigned char)(x >> 8);
        raw[o++] = (unsigned char)x;
    }
    memcpy(ridb, raw, 8);
    return 0;
}

static int mid_new(const struct coll *c, char out[MID_BUF])
{
    unsigned char raw[MID_BYTES];
    memcpy(raw, c->ridb, 8);
    if (rand_bytes(raw + 8, MID_BYTES - 8) != 0)
        return -1;
    srv_rid_encode(raw, MID_BYTES, out, MID_BUF);
    return 0;
}

static int blob_name_new(const struct coll *c, char out[MEDIA_NAME_MAX + 1])
{
    unsigned char r[16];
    if (rand_bytes(r, sizeof r) != 0)
        return -1;
    int o = snprintf(out, MEDIA_NAME_MAX + 1, "%s/", c->store_name);
    for (size_t i = 0; i < sizeof r && o + 2 < MEDIA_NAME_MAX; i++)
        o += snprintf(out + o, (size_t)(MEDIA_NAME_MAX + 1 - o), "%02x", r[i]);
    return 0;
}

static void att_rid(const struct coll *c, uint64_t docseq, uint64_t aseq, char *rid, size_t n)
{
    unsigned char b[20];
    memcpy(b, c->ridb, 8);
    for (int i = 0; i < 8; i++)
        b[8 + i] = (unsigned char)(docseq >> (8 * i));
    for (int i = 0; i < 4; i++)
        b[16 + i] = (unsigned char)(aseq >> (8 * i));
    srv_rid_encode(b, 20, rid, n);
}

static void doc_rid(const struct coll *c, uint64_t docseq, char *rid, size_t n)
{
    unsigned char b[16];
    memcpy(b, c->ridb, 8);
    for (int i = 0; i < 8; i++)
        b[8 + i] = (unsigned char)(docseq >> (8 * i));
    srv_rid_encode(b, 16, rid, n);
}

/* The resource as the SDK reads it: the stored properties plus _rid,
 * _self, _etag, _ts and, for managed media, its /media link. */
static char *att_json(const struct coll *c, uint64_t docseq, uint64_t aseq, const char *body,
                      const char *etag, long long ts, const char *mid, size_t *len)
{
    json_t *o = doc_parse(body, strlen(body), NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    char rid[40], drid[32], self[192];
    att_rid(c, docseq, aseq, rid, sizeof rid);
    doc_rid(c, docseq, drid, sizeof drid);
    snprintf(self, sizeof self, "dbs/%s/colls/%s/docs/%s/attachments/%s/", c->db_rid, c->rid, drid,
             rid);
    if (mid) {
        char link[64];
        snprintf(link, sizeof link, "/media/%s", mid);
        json_object_set_new(o, "media", json_string(link));
    }
    json_object_set_new(o, "_rid", json_string(rid));
    json_object_set_new(o, "_self", json_string(self));
    json_object_set_new(o, "_etag", json_string(etag));
    json_object_set_new(o, "_ts", json_integer(ts));
    char *t = doc_dump(o, len);
    json_decref(o);
    return t;
}

/* ---- the media blob store ---- */

static int media_store(struct catalog *cat, struct blob_store **bs)
{
    const struct media_conf *m = catalog_media(cat);
    if (!m->target)
        return at_error_set(AT_EINVAL, "no media target");
    struct blob_options o = {
        .target = m->target, .account_key_file = m->key_file, .block_size = 1u << 20};
    return blob_open(&o, bs);
}

/* The keys that wrap c's media DEKs: its store's keyring entry. */
static int media_keys_of(const struct coll *c, struct media_keys *k)
{
    *k = (struct media_keys){.kr = catalog_media(c->cat)->kr};
    return keyring_find_file(k->kr, c->store_name, k->file_id);
}

/* Delete the blobs in c's media_gc, then their rows. */
static int gc_forget(sqlite3 *db, void *arg)
{
    char **names = arg;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM media_gc WHERE blob=?1", -1, &s, NULL) != SQLITE_OK)
        return 1;
    for (size_t i = 0; names[i]; i++) {
        sqlite3_bind_text(s, 1, names[i], -1, SQLITE_STATIC);
        sqlite3_step(s);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return 0;
}

void attachments_gc(struct coll *c)
{
    enum { BATCH = 256 };
    for (;;) {
        char *names[BATCH + 1] = {0};
        size_t n = 0;
        struct rconn *rc = coll_reader(c);
        if (!rc)
            return;
        sqlite3_stmt *s = rconn_stmt(rc, "SELECT blob FROM media_gc LIMIT 256");
        while (s && n < BATCH && sqlite3_step(s) == SQLITE_ROW)
            if ((names[n] = strdup((const char *)sqlite3_column_text(s, 0))) != NULL)
                n++;
        coll_reader_put(c, rc);
        if (n == 0)
            return;
        struct blob_store *bs = NULL;
        int rc2 = media_store(c->cat, &bs);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            int d = rc2 ? rc2 : blob_delete(bs, names[i]);
            if (d != 0 && d != AT_ENOTFOUND) { /* keep it for the next pass */
                free(names[i]);
                continue;
            }
            names[kept++] = names[i];
        }
        names[kept] = NULL;
        blob_close(bs);
        int wrc = kept ? store_write(c->w, gc_forget, names) : 0;
        for (size_t i = 0; i < kept; i++)
            free(names[i]);
        if (rc2 || wrc || kept < n || n < BATCH) {
            if (rc2 || kept < n)
                fprintf(stderr, "atrestd: deleting retired media blobs failed; retried later\n");
            return;
        }
    }
}

int attachments_target_absent(const struct media_conf *m)
{
    const char *t = m->target;
    if (strncmp(t, "azblob:", 7) == 0)
        return 0;
    struct stat sb;
    return stat(strncmp(t, "file:", 5) == 0 ? t + 5 : t, &sb) != 0 && errno == ENOENT;
}

int attachments_backup_image(void *ctx, const char *store_name, sqlite3 *image, const uint8_t *key,
                             const char *prefix, struct blob_store *bs)
{
    struct catalog *cat = ctx;
    const struct media_conf *m = catalog_media(cat);
    if (!m->target || strcmp(store_name, "meta") == 0 || attachments_target_absent(m))
        return 0; /* no media was ever stored */
    struct media_keys from = {.kr = m->kr};
    struct media_keys to = {.fixed = key, .fixed_layers = keyring_layers(m->kr)};
    struct blob_store *mbs = NULL;
    int rc = keyring_find_file(m->kr, store_name, from.file_id);
    if (!rc)
        rc = media_store(cat, &mbs);
    struct media_copy_stats st;
    if (!rc)
        rc = media_copy_table(image, &from, &to, mbs, bs, prefix, 0, &st);
    blob_close(mbs);
    if (!rc && st.missing)
        fprintf(stderr,
                "atrestd: backup: %zu media blob%s of %s deleted while the backup ran left out\n",
                st.missing, st.missing == 1 ? "" : "s", store_name);
    return rc ? at_error_set(rc, "media of %s: %s", store_name, at_error_detail()) : 0;
}

/* Every blob of a dropped container (its keys are already shredded). */
static int drop_one(void *ctx, const struct blob_info *info)
{
    (void)blob_delete(ctx, info->name); /* AT_ENOTFOUND: gone already */
    return 0;
}

void attachments_drop_container(struct catalog *cat, const char *store_name)
{
    struct blob_store *bs = NULL;
    if (attachments_target_absent(catalog_media(cat)) || media_store(cat, &bs) != 0)
        return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/", store_name);
    if (blob_list(bs, prefix, drop_one, bs) != 0)
        fprintf(stderr, "atrestd: removing a dropped container's media failed: %s\n",
                at_error_detail());
    blob_close(bs);
}

/* ---- the doc-delete hook (documents.c, on the writer) ---- */

int attachments_doc_deleted(struct coll *c, sqlite3 *db, uint64_t seq)
{
    sqlite3_stmt *g = coll_wstmt(c, db, W_ATT_GC,
                                 "INSERT OR IGNORE INTO media_gc(blob) SELECT blob FROM atts "
                                 "WHERE doc=?1 AND blob IS NOT NULL");
    sqlite3_stmt *d = coll_wstmt(c, db, W_ATT_DEL, "DELETE FROM atts WHERE doc=?1");
    if (!g || !d)
        return -1;
    sqlite3_bind_int64(g, 1, (sqlite3_int64)seq);
    int s1 = sqlite3_step(g);
    int moved = sqlite3_changes(db);
    sqlite3_reset(g);
    if (s1 != SQLITE_DONE)
        return -1;
    sqlite3_bind_int64(d, 1, (sqlite3_int64)seq);
    int s2 = sqlite3_step(d);
    sqlite3_reset(d);
    if (s2 != SQLITE_DONE)
        return -1;
    if (moved)
        atomic_store(&c->media_trash, 1);
    return 0;
}

void attachments_after_write(struct coll *c)
{
    if (atomic_exchange(&c->media_trash, 0))
        attachments_gc(c);
}

/* ---- attachment writes (on the container's writer) ---- */

enum { AOP_CREATE, AOP_UPSERT, AOP_REPLACE, AOP_DELETE, AOP_MEDIA_UPDATE };

struct aop {
    int kind;
    const char *pk, *doc_id; /* the owner document (not for MEDIA_UPDATE) */
    const char *url_id;      /* REPLACE/DELETE: the attachment in the URL */
    const char *mid_in;      /* MEDIA_UPDATE: the media id in the URL */
    char *text;              /* CREATE/UPSERT/REPLACE: stored properties */
    const char *new_id;      /* their id */
    const char *media_link;  /* CREATE/UPSERT/REPLACE: the body's "media" */
    char *text_managed;      /* text without "media": kept when the link is the
                                attachment's own /media link (its bytes stay) */
    const char *if_match;
    /* a newly put blob (media uploads) */
    const char *blob;
    uint64_t size;
    const uint8_t *dek;
    size_t dek_len;
    const char *content_type;
    /* results */
    int status;
    char msg[200];
    char *out;
    size_t out_len;
    char etag[48];
    int trashed;
};

static int afail(struct aop *op, int status, const char *msg)
{
    op->status = status;
    snprintf(op->msg, sizeof op->msg, "%s", msg);
    return 1;
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int trash(sqlite3 *db, const char *blob)
{
    sqlite3_stmt *s = NULL;
    if (!blob)
        return 0;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO media_gc(blob) VALUES(?1)", -1, &s, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, blob, -1, SQLITE_TRANSIENT);
    return step_done(s);
}

struct arow {
    int exists;
    uint64_t aseq, doc;
    char etag[48];
    char *mid, *blob, *body;
};

static void arow_free(struct arow *a)
{
    free(a->mid);
    free(a->blob);
    free(a->body);
}

static int arow_load(sqlite3_stmt *s, struct arow *a)
{
    int st = sqlite3_step(s);
    if (st == SQLITE_ROW) {
        a->exists = 1;
        a->aseq = (uint64_t)sqlite3_column_int64(s, 0);
        a->doc = (uint64_t)sqlite3_column_int64(s, 1);
        snprintf(a->etag, sizeof a->etag, "%s", (const char *)sqlite3_column_text(s, 2));
        if (sqlite3_column_type(s, 3) != SQLITE_NULL)
            a->mid = strdup((const char *)sqlite3_column_text(s, 3));
        if (sqlite3_column_type(s, 4) != SQLITE_NULL)
            a->blob = strdup((const char *)sqlite3_column_text(s, 4));
        a->body = strdup((const char *)sqlite3_column_text(s, 5));
        st = a->body ? SQLITE_DONE : SQLITE_NOMEM;
    }
    sqlite3_finalize(s);
    return st == SQLITE_DONE ? 0 : -1;
}

#define AROW_COLS "aseq, doc, etag, mid, blob, body"

static int aop_exec(struct coll *c, sqlite3 *db, struct aop *op)
{
    struct arow a = {0};
    sqlite3_stmt *s = NULL;
    uint64_t docseq = 0;
    int rc = 1;
    if (op->kind == AOP_MEDIA_UPDATE) {
        if (sqlite3_prepare_v2(db, "SELECT " AROW_COLS " FROM atts WHERE mid=?1", -1, &s, NULL) !=
            SQLITE_OK)
            return afail(op, 500, "The store failed the operation.");
        sqlite3_bind_text(s, 1, op->mid_in, -1, SQLITE_STATIC);
        if (arow_load(s, &a) != 0)
            return afail(op, 500, "The store failed the operation.");
        if (!a.exists)
            return afail(op, 404, MSG_NODOC);
        docseq = a.doc;
    } else {
        if (sqlite3_prepare_v2(db, "SELECT seq FROM docs WHERE pk=?1 AND id=?2", -1, &s, NULL) !=
            SQLITE_OK)
            return afail(op, 500, "The store failed the operation.");
        sqlite3_bind_text(s, 1, op->pk, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, op->doc_id, -1, SQLITE_STATIC);
        int st = sqlite3_step(s);
        docseq = st == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
        sqlite3_finalize(s);
        if (st != SQLITE_ROW)
            return afail(op, st == SQLITE_DONE ? 404 : 500, MSG_NODOC);
        const char *look = op->url_id ? op->url_id : op->new_id;
        if (sqlite3_prepare_v2(db, "SELECT " AROW_COLS " FROM atts WHERE doc=?1 AND id=?2", -1, &s,
                               NULL) != SQLITE_OK)
            return afail(op, 500, "The store failed the operation.");
        sqlite3_bind_int64(s, 1, (sqlite3_int64)docseq);
        sqlite3_bind_text(s, 2, look, -1, SQLITE_STATIC);
        if (arow_load(s, &a) != 0)
            return afail(op, 500, "The store failed the operation.");
    }
    if (op->kind == AOP_CREATE && a.exists) {
        afail(op, 409, "Resource with specified id or name already exists.");
        goto out;
    }
    if ((op->kind == AOP_REPLACE || op->kind == AOP_DELETE) && !a.exists) {
        afail(op, 404, MSG_NODOC);
        goto out;
    }
    if (a.exists && op->if_match && strcmp(op->if_match, "*") != 0 &&
        strcmp(op->if_match, a.etag) != 0) {
        afail(op, 412, MSG_412);
        goto out;
    }
    if (op->kind == AOP_DELETE) {
        if (trash(db, a.blob) != 0 ||
            sqlite3_prepare_v2(db, "DELETE FROM atts WHERE aseq=?1", -1, &s, NULL) != SQLITE_OK) {
            afail(op, 500, "The store failed the operation.");
            goto out;
        }
        sqlite3_bind_int64(s, 1, (sqlite3_int64)a.aseq);
        if (step_done(s) != 0) {
            afail(op, 500, "The store failed the operation.");
            goto out;
        }
        op->trashed = a.blob != NULL;
        op->status = 204;
        rc = 0;
        goto out;
    }
    /* What the row becomes. */
    const char *body = op->text ? op->text : a.body;
    char *owned_body = NULL;
    const char *mid = NULL, *blob = NULL, *dek = NULL;
    size_t dek_len = 0;
    sqlite3_int64 size = 0;
    char newmid[MID_BUF];
    int keep_old = 0;
    if (op->blob) { /* new media bytes: keep the media id when there is one */
        if (a.mid) {
            mid = a.mid;
        } else if (mid_new(c, newmid) == 0) {
            mid = newmid;
        } else {
            afail(op, 500, "Out of randomness.");
            goto out;
        }
        blob = op->blob;
        dek = (const char *)op->dek;
        dek_len = op->dek_len;
        size = (sqlite3_int64)op->size;
        if (op->kind == AOP_MEDIA_UPDATE) { /* new contentType, same properties */
            json_t *o = doc_parse(a.body, strlen(a.body), NULL);
            if (json_is_object(o) && op->content_type)
                json_object_set_new(o, "contentType", json_string(op->content_type));
            owned_body = json_is_object(o) ? doc_dump(o, NULL) : NULL;
            json_decref(o);
            if (!owned_body) {
                afail(op, 500, "Out of memory.");
                goto out;
            }
            body = owned_body;
        }
    } else if (a.exists && a.mid && op->text_managed &&
               strncmp(op->media_link, "/media/", 7) == 0 &&
               strcmp(op->media_link + 7, a.mid) == 0) {
        keep_old = 1;
        mid = a.mid;
        body = op->text_managed;
    }
    if (a.exists && !keep_old && trash(db, a.blob) != 0) {
        free(owned_body);
        afail(op, 500, "The store failed the operation.");
        goto out;
    }
    op->trashed = a.exists && !keep_old && a.blob;
    const char *id = op->new_id;
    long long ts = (long long)time(NULL);
    srv_new_etag(op->etag);
    uint64_t aseq = a.aseq;
    int st;
    if (a.exists) {
        const char *sql =
            keep_old ? "UPDATE atts SET id=COALESCE(?2,id), etag=?3, ts=?4, body=?5 WHERE aseq=?1"
                     : "UPDATE atts SET id=COALESCE(?2,id), etag=?3, ts=?4, body=?5, mid=?6, "
                       "blob=?7, size=?8, dek=?9 WHERE aseq=?1";
        st = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    } else {
        sqlite3_stmt *m = NULL;
        st = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(aseq),0)+1 FROM atts", -1, &m, NULL);
        if (st == SQLITE_OK && sqlite3_step(m) == SQLITE_ROW)
            aseq = (uint64_t)sqlite3_column_int64(m, 0);
        else
            st = SQLITE_ERROR;
        sqlite3_finalize(m);
        if (st == SQLITE_OK)
            st = sqlite3_prepare_v2(db,
                                    "INSERT INTO atts(aseq, id, etag, ts, body, mid, blob, size, "
                                    "dek, doc) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                    -1, &s, NULL);
    }
    if (st != SQLITE_OK) {
        free(owned_body);
        afail(op, 500, "The store failed the operation.");
        goto out;
    }
    sqlite3_bind_int64(s, 1, (sqlite3_int64)aseq);
    if (id)
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, ts);
    sqlite3_bind_text(s, 5, body, -1, SQLITE_STATIC);
    if (!keep_old || !a.exists) {
        if (mid)
            sqlite3_bind_text(s, 6, mid, -1, SQLITE_STATIC);
        if (blob) {
            sqlite3_bind_text(s, 7, blob, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 8, size);
            sqlite3_bind_blob(s, 9, dek, (int)dek_len, SQLITE_STATIC);
        }
    }
    if (!a.exists)
        sqlite3_bind_int64(s, 10, (sqlite3_int64)docseq);
    st = sqlite3_step(s);
    sqlite3_finalize(s);
    if (st == SQLITE_CONSTRAINT) {
        free(owned_body);
        afail(op, 409, "Resource with specified id or name already exists.");
        goto out;
    }
    if (st != SQLITE_DONE) {
        free(owned_body);
        afail(op, 500, "The store failed the operation.");
        goto out;
    }
    op->out = att_json(c, docseq, aseq, body, op->etag, ts, mid, &op->out_len);
    free(owned_body);
    if (!op->out) {
        afail(op, 500, "Out of memory.");
        goto out;
    }
    op->status = a.exists ? 200 : 201;
    rc = 0;
out:
    arow_free(&a);
    return rc;
}

static int aop_write(sqlite3 *db, void *arg)
{
    void **a = arg;
    return aop_exec(a[0], db, a[1]);
}

/* Run op on the writer and answer r. */
static void aop_run(struct req *r, struct coll *c, struct aop *op)
{
    void *a[2] = {c, op};
    int rc = store_write(c->w, aop_write, a);
    if (op->status >= 400) {
        srv_error(r, op->status, 0, "%s", op->msg);
    } else if (rc) {
        fprintf(stderr, "atrestd: an attachment write failed: %s\n", at_strerror(rc));
        srv_error(r, 503, 0, "The write could not be made durable; retry.");
        op->status = 503;
    } else if (op->status == 204) {
        resp_body(r, 204, NULL, 0);
    } else {
        resp_body(r, op->status, op->out, op->out_len);
        op->out = NULL;
        resp_header(r, "etag", "%s", op->etag);
    }
    free(op->out);
    op->out = NULL;
    if (op->status < 400 && op->trashed)
        attachments_gc(c);
}

/* ---- reads ---- */

static int doc_seq(struct rconn *rc, const char *pk, const char *id, uint64_t *seq)
{
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT seq FROM docs WHERE pk=?1 AND id=?2");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, pk, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
    int st = sqlite3_step(s);
    if (st == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return st == SQLITE_ROW ? 1 : st == SQLITE_DONE ? 0 : -1;
}

/* Append the JSON of the row s is on. */
static int row_json(const struct coll *c, sqlite3_stmt *s, struct doc_buf *b)
{
    size_t n = 0;
    char *t = att_json(
        c, (uint64_t)sqlite3_column_int64(s, 1), (uint64_t)sqlite3_column_int64(s, 0),
        (const char *)sqlite3_column_text(s, 5), (const char *)sqlite3_column_text(s, 2),
        (long long)sqlite3_column_int64(s, 6),
        sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : (const char *)sqlite3_column_text(s, 3),
        &n);
    if (!t)
        return -1;
    int rc = doc_buf_put(b, t, n);
    free(t);
    return rc;
}

#define READ_COLS "aseq, doc, etag, mid, blob, body, ts"

/* A reader connection and the sequence number of the owner document, or
 * NULL with the error (503, 404, 500) answered. */
static struct rconn *doc_reader(struct req *r, struct coll *c, const char *pk, const char *doc,
                                uint64_t *seq)
{
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        srv_error(r, 503, 0, "No store connection available; retry.");
        return NULL;
    }
    int f = doc_seq(rc, pk, doc, seq);
    if (f == 1)
        return rc;
    coll_reader_put(c, rc);
    if (f == 0)
        srv_error(r, 404, 0, MSG_NODOC);
    else
        srv_error(r, 500, 0, "The store failed the read.");
    return NULL;
}

static void att_read(struct req *r, struct coll *c, const char *pk, const char *doc, const char *id)
{
    uint64_t seq = 0;
    struct rconn *rc = doc_reader(r, c, pk, doc, &seq);
    if (!rc)
        return;
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT " READ_COLS " FROM atts WHERE doc=?1 AND id=?2");
    int st = SQLITE_ERROR;
    if (s) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        st = sqlite3_step(s);
    }
    if (st != SQLITE_ROW && st != SQLITE_DONE) {
        srv_error(r, 500, 0, "The store failed the read.");
    } else if (st != SQLITE_ROW) {
        srv_error(r, 404, 0, MSG_NODOC);
    } else {
        const char *etag = (const char *)sqlite3_column_text(s, 2);
        const char *inm = req_header(r, "if-none-match");
        struct doc_buf b = {0};
        if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
            resp_body(r, 304, NULL, 0);
        } else if (row_json(c, s, &b) == 0) {
            resp_body(r, 200, b.p, b.len);
        } else {
            doc_buf_free(&b);
            srv_error(r, 500, 0, "A stored attachment is damaged.");
        }
        resp_header(r, "etag", "%s", etag);
    }
    coll_reader_put(c, rc);
}

static void att_feed(struct req *r, struct coll *c, const char *pk, const char *doc)
{
    long limit = req_max_items(r);
    uint64_t after = 0, seq = 0;
    if (req_continuation(r, &after) != 0)
        return;
    struct rconn *rc = doc_reader(r, c, pk, doc, &seq);
    if (!rc)
        return;
    sqlite3_stmt *s =
        rconn_stmt(rc, "SELECT " READ_COLS " FROM atts WHERE doc=?1 AND aseq>?2 ORDER BY aseq");
    char drid[32];
    doc_rid(c, seq, drid, sizeof drid);
    struct doc_buf b = {0};
    int err = !s || doc_buf_puts(&b, "{\"_rid\":\"") || doc_buf_puts(&b, drid) ||
              doc_buf_puts(&b, "\",\"Attachments\":[");
    long n = 0;
    uint64_t last = 0;
    int more = 0;
    if (s) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)after);
    }
    while (!err && sqlite3_step(s) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        last = (uint64_t)sqlite3_column_int64(s, 0);
        err = (n && doc_buf_put(&b, ",", 1)) || row_json(c, s, &b);
        n++;
    }
    coll_reader_put(c, rc);
    resp_feed(r, &b, err, n, more, last);
}

/* ---- uploads ---- */

struct upload {
    struct coll *c; /* held */
    int counted;    /* in c->uploads */
    int fd[2];      /* plaintext: http.c writes fd[1], the put thread reads fd[0] */
    pthread_t th;
    int started, joined;
    atomic_int abort;
    struct blob_store *bs;
    struct media_dek *dek;
    uint8_t wrapped[MEDIA_WRAPPED_MAX];
    size_t wlen;
    char blob[MEDIA_NAME_MAX + 1];
    uint64_t received, size;
    int rc; /* media_put's result */
};

static int pipe_source(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
    struct upload *u = ctx;
    *got = 0;
    for (;;) {
        ssize_t n = read(u->fd[0], buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0 && atomic_load(&u->abort))
            return ECANCELED;
        *got = (size_t)n;
        return 0;
    }
}

static void *put_main(void *p)
{
    struct upload *u = p;
    u->rc = media_put(u->bs, u->blob, u->dek, pipe_source, u, SRV_MEDIA_MAX, &u->size);
    /* Take whatever still comes, so the writer never blocks on a full pipe. */
    char sink[16384];
    for (;;) {
        ssize_t n = read(u->fd[0], sink, sizeof sink);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    return NULL;
}

static void upload_free(struct upload *u)
{
    if (!u)
        return;
    if (u->counted)
        atomic_fetch_sub(&u->c->uploads, 1);
    if (u->fd[1] >= 0)
        close(u->fd[1]);
    if (u->started && !u->joined)
        pthread_join(u->th, NULL);
    if (u->fd[0] >= 0)
        close(u->fd[0]);
    media_dek_free(u->dek);
    blob_close(u->bs);
    catalog_coll_put(u->c);
    free(u);
}

/* Wait for the put; 0 when the blob is stored. */
static int upload_finish(struct upload *u)
{
    if (u->fd[1] >= 0)
        close(u->fd[1]);
    u->fd[1] = -1;
    if (u->started && !u->joined) {
        pthread_join(u->th, NULL);
        u->joined = 1;
    }
    return u->started ? u->rc : AT_EIO;
}

void attachments_upload_abort(struct req *r)
{
    struct upload *u = r->up;
    r->up = NULL;
    if (!u)
        return;
    atomic_store(&u->abort, 1);
    if (upload_finish(u) == 0) /* cannot happen after abort; be safe */
        (void)blob_delete(u->bs, u->blob);
    upload_free(u);
}

int attachments_upload_route(struct req *r)
{
    if (r->nseg == 2 && strcmp(r->segs[0], "media") == 0)
        return r->verb == SRV_PUT;
    if (r->nseg != 7 || r->verb != SRV_POST || strcmp(r->segs[0], "dbs") != 0 ||
        strcmp(r->segs[2], "colls") != 0 || strcmp(r->segs[4], "docs") != 0 ||
        strcmp(r->segs[6], "attachments") != 0)
        return 0;
    const char *ct = req_header(r, "content-type");
    const char *slug = req_header(r, "slug");
    if (slug)
        return 1;
    return !ct || strncasecmp(ct, "application/json", 16) != 0;
}

/* The container and the row a media request addresses (held; NULL: 404
 * answered). */
static struct coll *media_coll(struct req *r, const char *mid)
{
    unsigned char ridb[8];
    struct coll *c = NULL;
    if (mid_decode(mid, ridb) == 0) {
        char dbr[16], cr[24];
        srv_rid_encode(ridb, 4, dbr, sizeof dbr);
        srv_rid_encode(ridb, 8, cr, sizeof cr);
        c = catalog_coll_get(r->srv->cat, dbr, cr);
        if (c && memcmp(c->ridb, ridb, 8) != 0) {
            catalog_coll_put(c);
            c = NULL;
        }
    }
    if (!c)
        srv_error(r, 404, 0, "The requested media does not exist.");
    return c;
}

/* 1 when mid names a row of c, 0 when not, -1 on a store error. */
static int mid_exists(struct coll *c, const char *mid)
{
    struct rconn *rc = coll_reader(c);
    if (!rc)
        return -1;
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT 1 FROM atts WHERE mid=?1");
    int st = SQLITE_ERROR;
    if (s) {
        sqlite3_bind_text(s, 1, mid, -1, SQLITE_STATIC);
        st = sqlite3_step(s);
    }
    coll_reader_put(c, rc);
    return st == SQLITE_ROW ? 1 : st == SQLITE_DONE ? 0 : -1;
}

static int check_slug(struct req *r)
{
    const char *slug = req_header(r, "slug");
    if (!slug)
        return 0;
    const char *bad = doc_id_check(slug, strlen(slug));
    return bad ? srv_error(r, 400, 0, "%s", bad) : 0;
}

int attachments_upload_begin(struct req *r)
{
    if (auth_check(r) != 0)
        return -1;
    int refused = srv_refuse_if_keys_unusable(r);
    if (refused)
        return refused;
    struct coll *c = NULL;
    if (r->nseg == 2) {
        if (!(c = media_coll(r, r->segs[1])))
            return -1;
        int e = mid_exists(c, r->segs[1]);
        if (e != 1) {
            catalog_coll_put(c);
            return e == 0 ? srv_error(r, 404, 0, "The requested media does not exist.")
                          : srv_error(r, 500, 0, "The store failed the read.");
        }
    } else {
        if (!(c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3])))
            return srv_error(r, 404, 1003, "Owner resource does not exist.");
        json_t *pkv = NULL;
        char *pk = NULL;
        if (req_pk(r, c, &pkv, &pk, 1) != 0 || check_slug(r) != 0) {
            json_decref(pkv);
            free(pk);
            catalog_coll_put(c);
            return -1;
        }
        json_decref(pkv);
        uint64_t seq = 0;
        struct rconn *rc = doc_reader(r, c, pk, r->segs[5], &seq);
        free(pk);
        if (!rc) {
            catalog_coll_put(c);
            return -1;
        }
        coll_reader_put(c, rc);
    }
    struct upload *u = calloc(1, sizeof *u);
    if (!u) {
        catalog_coll_put(c);
        return srv_error(r, 500, 0, "Out of memory.");
    }
    u->c = c;
    u->fd[0] = u->fd[1] = -1;
    struct media_keys keys = {0};
    int rc = blob_name_new(c, u->blob) != 0 ? AT_ECRYPTO : media_keys_of(c, &keys);
    if (!rc) {
        /* counted until the row is written: a data-key rotation waits */
        atomic_fetch_add(&c->uploads, 1);
        u->counted = 1;
        rc = media_dek_new(&keys, u->blob, &u->dek, u->wrapped, &u->wlen);
    }
    if (!rc)
        rc = media_store(c->cat, &u->bs);
    if (!rc && pipe2(u->fd, O_CLOEXEC) != 0)
        rc = errno;
    if (rc) {
        fprintf(stderr, "atrestd: cannot start a media upload: %s\n", at_error_detail());
        upload_free(u);
        return srv_error(r, 500, 0, "The media could not be stored.");
    }
    fcntl(u->fd[1], F_SETPIPE_SZ, 1 << 20); /* best effort: fewer wake-ups */
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024);
    u->started = pthread_create(&u->th, &a, put_main, u) == 0;
    pthread_attr_destroy(&a);
    if (!u->started) {
        upload_free(u);
        return srv_error(r, 503, 0, "The media upload could not start; retry.");
    }
    r->up = u;
    return 0;
}

int attachments_upload_data(struct req *r, const char *p, size_t n)
{
    struct upload *u = r->up;
    if (n > SRV_MEDIA_MAX - u->received)
        return -1;
    u->received += n;
    while (n > 0) {
        ssize_t w = write(u->fd[1], p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) /* the put thread is gone: it failed; the end says so */
            return 0;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The handler's side of an upload: wait for the blob, commit the row. */
static void upload_commit(struct req *r, struct coll *c, struct aop *op)
{
    struct upload *u = r->up;
    r->up = NULL;
    int rc = upload_finish(u);
    if (rc == EFBIG) {
        srv_error(r, 413, 0, "Request size is too large.");
    } else if (rc) {
        fprintf(stderr, "atrestd: storing media failed: %s\n", at_error_detail());
        srv_error(r, 500, 0, "The media could not be stored.");
    } else {
        op->blob = u->blob;
        op->size = u->size;
        op->dek = u->wrapped;
        op->dek_len = u->wlen;
        aop_run(r, c, op);
        if (op->status >= 400 && blob_delete(u->bs, u->blob) != 0)
            fprintf(stderr, "atrestd: removing an unused media blob failed\n");
    }
    if (rc && rc != AT_ENOTFOUND)
        (void)blob_delete(u->bs, u->blob); /* a failed put leaves none; be sure */
    upload_free(u);
}

/* ---- data-key rotation ---- */

struct rewrap {
    struct media_keys keys;
    uint32_t cur[2];
    size_t n;
};

static int rewrap_rows(sqlite3 *db, void *arg)
{
    struct rewrap *w = arg;
    return media_rewrap_table(db, &w->keys, w->cur, &w->n);
}

int attachments_rewrap_keys(struct coll *c, const uint32_t cur[2])
{
    if (atomic_load(&c->uploads) > 0)
        return 1;
    struct rewrap w = {.cur = {cur[0], cur[1]}};
    int rc = media_keys_of(c, &w.keys);
    if (!rc)
        rc = store_write(c->w, rewrap_rows, &w);
    if (!rc && w.n)
        fprintf(stderr, "atrestd: store %s: %zu media keys rewrapped under the new data keys\n",
                c->store_name, w.n);
    return rc;
}

/* ---- /dbs/.../docs/{doc}/attachments[/{id}] ---- */

/* Parse and check the JSON properties of an attachment: 0, or answered. */
static int att_props(struct req *r, struct aop *op, json_t **out)
{
    const char *why = NULL;
    json_t *o = doc_parse(r->body, r->body_len, &why);
    if (!json_is_object(o)) {
        json_decref(o);
        return srv_error(r, 400, 0, "The request payload is invalid: %s.",
                         o ? "not a JSON object" : "malformed JSON");
    }
    json_t *id = json_object_get(o, "id");
    const char *bad = !json_is_string(id)
                          ? "The input content is invalid because the required "
                            "properties - 'id; ' - are missing"
                          : doc_id_check(json_string_value(id), json_string_length(id));
    json_t *media = json_object_get(o, "media");
    if (!bad && !json_is_string(media))
        bad = "The input content is invalid because the required properties - 'media; ' - are "
              "missing";
    json_t *ct = json_object_get(o, "contentType");
    if (!bad && ct && !json_is_string(ct))
        bad = "The value of 'contentType' must be a string.";
    if (bad) {
        json_decref(o);
        return srv_error(r, 400, 0, "%s", bad);
    }
    doc_strip_system(o);
    op->new_id = json_string_value(json_object_get(o, "id"));
    op->media_link = json_string_value(media);
    op->text = doc_dump(o, NULL);
    /* The attachment's own /media link keeps its bytes (aop_exec decides);
     * then the link is not stored: it is made from the media id. */
    if (op->text && strncmp(op->media_link, "/media/", 7) == 0) {
        json_t *m = json_copy(o);
        json_object_del(m, "media");
        op->text_managed = m ? doc_dump(m, NULL) : NULL;
        json_decref(m);
    }
    *out = o;
    if (!op->text)
        return srv_error(r, 500, 0, "Out of memory.");
    return 0;
}

void attachments_handle(struct req *r)
{
    struct coll *c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3]);
    if (!c) {
        attachments_upload_abort(r);
        srv_error(r, 404, 1003, "Owner resource does not exist.");
        return;
    }
    json_t *pkv = NULL;
    char *pk = NULL;
    int reading = r->verb == SRV_GET || r->verb == SRV_HEAD;
    if (req_pk(r, c, &pkv, &pk, 1) != 0) {
        attachments_upload_abort(r);
        catalog_coll_put(c);
        return;
    }
    json_decref(pkv);
    struct aop op = {0};
    op.pk = pk;
    op.doc_id = r->segs[5];
    op.if_match = req_header(r, "if-match");
    json_t *props = NULL;
    if (r->nseg == 7 && reading) {
        att_feed(r, c, pk, r->segs[5]);
    } else if (r->nseg == 8 && reading) {
        att_read(r, c, pk, r->segs[5], r->segs[7]);
    } else if (r->nseg == 7 && r->verb == SRV_POST && r->up) {
        /* media bytes: the attachment is {id: Slug, contentType} */
        op.kind = req_header_true(r, "x-ms-documentdb-is-upsert") ? AOP_UPSERT : AOP_CREATE;
        const char *slug = req_header(r, "slug");
        const char *ct = req_header(r, "content-type");
        char gen[40];
        if (!slug) {
            unsigned char u[16];
            if (rand_bytes(u, sizeof u) != 0)
                memset(u, 0, sizeof u);
            snprintf(gen, sizeof gen,
                     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                     u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                     u[13], u[14], u[15]);
            slug = gen;
        }
        props =
            json_pack("{s:s,s:s}", "id", slug, "contentType", ct ? ct : "application/octet-stream");
        op.text = props ? doc_dump(props, NULL) : NULL;
        op.new_id = slug;
        if (!op.text) {
            attachments_upload_abort(r);
            srv_error(r, 500, 0, "Out of memory.");
        } else {
            upload_commit(r, c, &op);
        }
    } else if ((r->nseg == 7 && r->verb == SRV_POST) || (r->nseg == 8 && r->verb == SRV_PUT)) {
        op.kind = r->nseg == 8                                      ? AOP_REPLACE
                  : req_header_true(r, "x-ms-documentdb-is-upsert") ? AOP_UPSERT
                                                                    : AOP_CREATE;
        op.url_id = r->nseg == 8 ? r->segs[7] : NULL;
        if (att_props(r, &op, &props) == 0)
            aop_run(r, c, &op);
    } else if (r->nseg == 8 && r->verb == SRV_DELETE) {
        op.kind = AOP_DELETE;
        op.url_id = r->segs[7];
        aop_run(r, c, &op);
    } else {
        attachments_upload_abort(r);
        srv_error(r, 405, 0, "The requested verb is not supported.");
    }
    free(op.text);
    free(op.text_managed);
    json_decref(props);
    free(pk);
    catalog_coll_put(c);
}

/* ---- /media/{mid} ---- */

struct att_stream {
    struct blob_store *bs;
    struct media_dek *dek;
    struct media_reader *rd;
    uint64_t size;
    char type[128];
    uint8_t *first; /* the first chunk, read (and authenticated) before answering */
    size_t first_len, first_off;
};

void att_stream_free(struct att_stream *ms)
{
    if (!ms)
        return;
    media_reader_close(ms->rd);
    media_dek_free(ms->dek);
    blob_close(ms->bs);
    if (ms->first)
        secmem_wipe(ms->first, MEDIA_CHUNK);
    free(ms->first);
    free(ms);
}

uint64_t att_stream_size(const struct att_stream *ms)
{
    return ms->size;
}

const char *att_stream_type(const struct att_stream *ms)
{
    return ms->type;
}

long att_stream_read(struct att_stream *ms, char *buf, size_t max)
{
    if (ms->first_off < ms->first_len) {
        size_t n = ms->first_len - ms->first_off;
        if (n > max)
            n = max;
        memcpy(buf, ms->first + ms->first_off, n);
        ms->first_off += n;
        return (long)n;
    }
    size_t got = 0;
    if (media_read(ms->rd, (uint8_t *)buf, max, &got) != 0) {
        fprintf(stderr, "atrestd: a media read failed mid-stream: %s\n", at_error_detail());
        return -1;
    }
    return (long)got;
}

static void media_get(struct req *r, struct coll *c, const char *mid)
{
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        srv_error(r, 503, 0, "No store connection available; retry.");
        return;
    }
    sqlite3_stmt *s = rconn_stmt(rc, "SELECT blob, size, dek, body, etag FROM atts WHERE mid=?1");
    int st = SQLITE_ERROR;
    struct att_stream *ms = calloc(1, sizeof *ms);
    char blob[MEDIA_NAME_MAX + 1] = "", etag[48] = "";
    uint8_t wrapped[MEDIA_WRAPPED_MAX];
    size_t wlen = 0;
    if (s && ms) {
        sqlite3_bind_text(s, 1, mid, -1, SQLITE_STATIC);
        st = sqlite3_step(s);
    }
    if (st == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        snprintf(blob, sizeof blob, "%s", (const char *)sqlite3_column_text(s, 0));
        ms->size = (uint64_t)sqlite3_column_int64(s, 1);
        wlen = (size_t)sqlite3_column_bytes(s, 2);
        if (wlen > sizeof wrapped)
            wlen = 0;
        memcpy(wrapped, sqlite3_column_blob(s, 2), wlen);
        json_t *o = doc_parse((const char *)sqlite3_column_text(s, 3),
                              (size_t)sqlite3_column_bytes(s, 3), NULL);
        const char *t = json_string_value(json_object_get(o, "contentType"));
        snprintf(ms->type, sizeof ms->type, "%s", t ? t : "application/octet-stream");
        json_decref(o);
        snprintf(etag, sizeof etag, "%s", (const char *)sqlite3_column_text(s, 4));
    }
    coll_reader_put(c, rc);
    if (st != SQLITE_ROW && st != SQLITE_DONE) {
        att_stream_free(ms);
        srv_error(r, 500, 0, "The store failed the read.");
        return;
    }
    if (!blob[0]) {
        att_stream_free(ms);
        srv_error(r, 404, 0, "The requested media does not exist.");
        return;
    }
    struct media_keys keys = {0};
    int e = media_keys_of(c, &keys);
    if (!e)
        e = media_dek_open(&keys, blob, wrapped, wlen, &ms->dek);
    if (e) {
        fprintf(stderr, "atrestd: a media key cannot be unwrapped: %s\n", at_error_detail());
        att_stream_free(ms);
        srv_error(r, 500, 0,
                  "The media's key cannot be unwrapped with this account's keys (media of "
                  "another account, or a key that is unavailable).");
        return;
    }
    e = media_store(c->cat, &ms->bs);
    if (!e)
        e = media_reader_open(ms->bs, blob, ms->dek, ms->size, &ms->rd);
    if (!e && !(ms->first = malloc(MEDIA_CHUNK)))
        e = AT_ENOMEM;
    if (!e)
        e = media_read(ms->rd, ms->first, MEDIA_CHUNK, &ms->first_len);
    if (e) {
        fprintf(stderr, "atrestd: a media read failed: %s\n", at_error_detail());
        att_stream_free(ms);
        if (e == AT_EINTEGRITY || e == AT_EFORMAT)
            srv_error(r, 500, 0,
                      "The stored media failed its integrity check (damaged or tampered with); "
                      "no bytes of it are returned.");
        else if (e == AT_ENOTFOUND)
            srv_error(r, 500, 0, "The stored media is missing from the media store.");
        else
            srv_error(r, 500, 0, "The media could not be read.");
        return;
    }
    r->ms = ms;
    r->status = 200;
    resp_header(r, "etag", "%s", etag);
}

void attachments_media_handle(struct req *r)
{
    if (r->nseg != 2) {
        attachments_upload_abort(r);
        srv_error(r, 404, 0, "The requested resource does not exist.");
        return;
    }
    struct coll *c = media_coll(r, r->segs[1]);
    if (!c) {
        attachments_upload_abort(r);
        return;
    }
    if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
        media_get(r, c, r->segs[1]);
    } else if (r->verb == SRV_PUT && r->up) {
        struct aop op = {0};
        op.kind = AOP_MEDIA_UPDATE;
        op.mid_in = r->segs[1];
        op.if_match = req_header(r, "if-match");
        op.content_type = req_header(r, "content-type");
        upload_commit(r, c, &op);
        free(op.out);
    } else {
        attachments_upload_abort(r);
        srv_error(r, 405, 0, "The requested verb is not supported.");
    }
    catalog_coll_put(c);
}
