/*
 * srv.h — internals shared by the files of src/server/ (not for other
 * layers; main.c uses server.h).
 *
 * A request is handled in three steps: http.c accumulates it into a struct
 * req, router.c authenticates it (auth.c) and calls the resource handler
 * (one file per REST resource), and the handler fills the response part of
 * the same struct, which http.c queues. Every path that answers an error
 * goes through srv_error() (errors.c), so every error has a Cosmos body.
 *
 * Logs never carry ids, documents, partition key values or keys.
 */
#ifndef ATREST_SERVER_SRV_H
#define ATREST_SERVER_SRV_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "doc/doc.h"
#include "backup/backup.h"
#include "backup/ship.h"
#include "storage/store.h"

#define SRV_MAX_SEGS  8
#define SRV_MAX_HDRS  12
#define SRV_MAX_KEYS  8
#define SRV_BODY_MAX  (16u * 1024 * 1024)
#define SRV_MEDIA_MAX (2ull << 30) /* bytes of one attachment's media (Cosmos: 2 GB) */

enum srv_verb { SRV_GET, SRV_HEAD, SRV_POST, SRV_PUT, SRV_DELETE, SRV_PATCH, SRV_OTHER };

struct srv_key {
    unsigned char *bytes; /* secmem, alloc bytes */
    size_t len, alloc;
    int readonly;
};

struct catalog;
struct backups;
struct datakeys;
struct keymon;

struct server {
    struct catalog *cat;
    struct backups *backups;   /* backups.c: NULL without --backup-target */
    struct datakeys *datakeys; /* datakeys.c: data-key rotation */
    struct ttl_sweeper *ttl;   /* ttl.c: deletes expired documents */
    struct keymon *keymon;     /* keymon.h: key states; NULL when nothing is watched */
    struct srv_key keys[SRV_MAX_KEYS];
    int nkeys;
    char listen_host[256];
    int listen_port;
    int log_requests; /* one log line per request */
};

struct srv_hdr {
    const char *name; /* static */
    char *value;      /* malloc'd */
};

struct req {
    struct server *srv;
    void *conn; /* struct MHD_Connection */
    int verb;
    const char *method;
    char *segs[SRV_MAX_SEGS]; /* percent-decoded path segments */
    int nseg;
    char *body;
    size_t body_len, body_cap;
    int too_big;
    int readonly;      /* authenticated with a read-only key */
    const char *rtype; /* resource type for logs ("docs", ...) */
    /* response */
    int status, substatus;
    struct doc_buf out;
    struct srv_hdr hdrs[SRV_MAX_HDRS];
    int nhdr;
    struct timespec t0;
    /* http.c: hand-off to a worker thread, or an asynchronous write */
    struct req *qnext;
    int ready;                             /* the response (or the async result) is there */
    int drain;                             /* refused upload: linger-close the socket */
    int close;                             /* answer with Connection: close */
    int async_ok;                          /* running on an epoll thread: may go asynchronous */
    int suspended;                         /* http_suspend() was called */
    int async_rc;                          /* result handed to finish */
    void (*finish)(struct req *r, int rc); /* builds the response */
    void *fin_arg;
    char *owned_id; /* documents.c: a document id resolved from a _rid link */
    /* attachments.c: a media upload in progress; a media response body */
    struct upload *up;
    struct att_stream *ms;
};

/* http.c */
const char *req_header(struct req *r, const char *name);
/* 200 with {"_rid": rid, key: list, "_count": n} and x-ms-item-count. */
void resp_list(struct req *r, const char *rid, const char *key, json_t *list);
/* Asynchronous answer (only when r->async_ok): set r->finish/fin_arg, call
 * http_suspend(), start the work; when it is done (any thread) call
 * http_complete(r, rc): r->finish(r, rc) then runs on the connection's
 * epoll thread to build the response. */
void http_suspend(struct req *r);
void http_complete(struct req *r, int rc);
int req_header_true(struct req *r, const char *name); /* "true"/"True" */
void resp_header(struct req *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Take the response body (JSON text) and status. */
void resp_body(struct req *r, int status, char *text, size_t len);
void resp_json(struct req *r, int status, const json_t *v);

/* errors.c: a Cosmos error body; returns status for chaining. */
int srv_error(struct req *r, int status, int substatus, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* While a key layer is unusable (keymon.h), answer r with the refusal
 * (403/503 with the key's substatus) and return its status; else 0. */
int srv_refuse_if_keys_unusable(struct req *r);
const char *srv_status_code(int status); /* "NotFound", ... */
/* Standard response headers (charge, activity id, session token). */
void srv_std_headers(struct req *r);
void srv_new_etag(char out[48]);
void srv_rid_encode(const unsigned char *bytes, size_t n, char *out, size_t outsz);

/* path.c helpers used by the router and auth */
/* Split and decode a path into at most max segments. 0 ok; -1 (more than
 * max segments, a %00, or no memory) leaves *nseg 0 and nothing allocated. */
int srv_path_split(const char *url, char **segs, int max, int *nseg); /* 0 ok */
char *srv_pct_decode(const char *s, size_t n);                        /* malloc'd */
/* Resource type and link for the signature (link malloc'd). */
void srv_resource_of(char *const *segs, int nseg, const char **type, char **link);

/* auth.c */
int auth_check(struct req *r); /* 0 ok, else error already answered */
int auth_sign(const unsigned char *key, size_t keylen, const char *verb, const char *type,
              const char *link, const char *date, char out[64]);
int auth_parse_date(const char *s, time_t *out);

/* router.c */
void router_dispatch(struct req *r);

/* ---- catalog (catalog.c): databases, containers and their stores ---- */

/* Writer statements (coll_wstmt): documents.c's W_*, the index's and
 * attachments.c's. */
#define COLL_NWSTMT 13
enum { W_IX_DEL = 8, W_IX_INS = 9, W_ATT_GC = 10, W_ATT_DEL = 11, W_IX_LOG = 12 };

#define RCONN_STMTS 24
/* ixdelta.c: readers' in-memory view of a container's index log (the
 * entries written since the last merge into ix; see the file's head). */
#define DX_LEVELS 16
#define DX_MAXCOV 32
struct dx_node;
struct rconn;
struct dx_view {
    uint64_t reg;         /* registered bound: merged can be no lower */
    uint64_t merged, top; /* this snapshot's merged mark and last log row */
    int active;           /* top > merged: the log has entries to read */
    struct dx_view *next, *prev;
};
struct ixdelta {
    pthread_rwlock_t lock;
    struct dx_node *head[DX_LEVELS];
    struct {
        uint64_t lo, hi;
    } cov[DX_MAXCOV]; /* under lock: rows in (lo, hi] are held */
    size_t ncov, nodes;
    uint64_t reclaimed, rng; /* under lock */
    pthread_mutex_t reg_mu;
    struct dx_view *readers; /* under reg_mu */
    uint64_t merged_seen;    /* under reg_mu */
};
void dx_init(struct ixdelta *d);
void dx_destroy(struct ixdelta *d);
/* Register v before the read transaction begins; leave after it ends. */
void dx_enter(struct ixdelta *d, struct dx_view *v);
void dx_leave(struct ixdelta *d, struct dx_view *v);
/* In the read transaction, before reading the index: this snapshot's
 * marks, and its log rows loaded. Nonzero: do not use the index. */
int dx_snapshot(struct ixdelta *d, struct rconn *rc, struct dx_view *v) AT_WUR;
/* fn for each entry of the log visible in v with lo <(=) key <(=) hi, in
 * (key, seq) order or its reverse (desc), under the read lock (copy what
 * is kept): ascending from the first (key, seq) >= from, descending from
 * the last (key, seq) <= from (from NULL: the range's end). A nonzero
 * return of fn stops the scan (1: enough; negative: returned as the
 * error). */
typedef int (*dx_each_fn)(void *arg, const char *key, size_t len, uint64_t seq);
struct dx_range {
    const void *lo;
    size_t lolen;
    int lo_incl;
    const void *hi;
    size_t hilen;
    int hi_incl;
};
struct dx_pos {
    const void *key;
    size_t len;
    uint64_t seq;
};
int dx_scan(struct ixdelta *d, const struct dx_view *v, const struct dx_range *r, int desc,
            const struct dx_pos *from, dx_each_fn fn, void *arg);
/* Key lists of a log row: (varint length, bytes)*. */
int dx_put_key(struct doc_buf *b, const void *k, size_t len) AT_WUR;
/* fn for each key of the log row s is on (adds in column col, dels in
 * col + 1); stops at fn's first nonzero return and returns it. */
typedef int (*dx_key_fn)(void *arg, const uint8_t *k, size_t len, int del);
int dx_row_keys(sqlite3_stmt *s, int col, dx_key_fn fn, void *arg) AT_WUR;
/* The same for one key list of n bytes at p (removed keys when del). */
int dx_list_keys(const uint8_t *p, size_t n, int del, dx_key_fn fn, void *arg) AT_WUR;

struct rconn {
    sqlite3 *db;
    sqlite3_stmt *get;
    struct rconn *next;
    /* prepared statements by SQL text (rconn_stmt), least recently used
     * first out */
    struct {
        char *sql;
        sqlite3_stmt *st;
        uint64_t used;
    } cache[RCONN_STMTS];
    uint64_t clock;
    /* a query's view of the index log (query.c), or NULL */
    struct ixdelta *dx;
    struct dx_view *view;
};

struct coll {
    struct catalog *cat;
    int refs, dead; /* under cat->ref_mu */
    uint32_t num;
    char *db_id, *id;
    char db_rid[16], rid[24];
    unsigned char ridb[8]; /* binary container rid (doc rids extend it) */
    char store_name[32];
    json_t *def;      /* definition with system properties */
    json_t *pk_paths; /* array of parsed paths; empty for a non-partitioned container */
    json_t *uniq;     /* array (keys) of arrays (paths) of parsed paths */
    struct store *st;
    struct store_writer *w;
    pthread_mutex_t pool_mu;
    struct rconn *pool;
    uint64_t next_seq;        /* writer thread only */
    int64_t next_lsn;         /* writer thread only: the change feed's order (changefeed.c) */
    atomic_llong default_ttl; /* the container's defaultTtl; TTL_NONE: none (ttl.c) */
    /* writer-thread statement cache */
    sqlite3 *wdb;
    sqlite3_stmt *ws[COLL_NWSTMT];
    /* index (index.c) */
    struct ixpol *wpol; /* the writer's policy: writer thread only */
    struct ixpol *pol;  /* the planner's policy: under pool_mu */
    atomic_int ix_progress, ix_stop;
    atomic_int uploads; /* media uploads holding a key made at their start (attachments.c) */
    pthread_t ix_thread;
    int ix_thread_on;
    struct ixdelta dx;      /* readers' view of the index log (ixdelta.c) */
    uint64_t dx_next;       /* writer thread only: the next log position */
    uint64_t dx_pending;    /* writer thread only: keys logged since the last merge */
    uint64_t dx_epoch;      /* writer thread only: merges and resets of the log so far */
    pthread_t mg_thread;    /* a background merge (index.c), */
    int mg_on;              /* started and not joined (writer thread only) */
    atomic_int mg_done;     /* and finished */
    atomic_int media_trash; /* a write retired media blobs (attachments.c) */
    json_t *offer;          /* its own throughput offer, or NULL (offers.c; under cat->lock) */
};

struct dbinfo {
    uint32_t num;
    char *id;
    char rid[16];
    json_t *def;
    json_t *offer; /* its shared throughput offer, or NULL (offers.c; under cat->lock) */
};

int catalog_open(struct store_env *env, struct catalog **out) AT_WUR;
/* Where media blobs go, and the keyring whose container DEKs wrap their
 * DEKs (attachments.c, media.h). */
struct media_conf {
    char *target, *key_file;
    struct keyring *kr; /* the account's, not owned */
};
/* Set the media blob store (target string, azblob key file or NULL); then
 * finish what a crash interrupted: delete retired blobs and the blobs of
 * dropped containers. */
int catalog_set_media(struct catalog *cat, const char *target, const char *key_file) AT_WUR;
const struct media_conf *catalog_media(struct catalog *cat);
/* 1 when the media target is a local folder that does not exist yet: no
 * media was ever stored (the folder is made by the first upload). */
int attachments_target_absent(const struct media_conf *m);
void catalog_close(struct catalog *cat);
int catalog_count_colls(struct catalog *cat);

/* Look up (by id, then by _rid). The result holds a reference. */
struct coll *catalog_coll_get(struct catalog *cat, const char *db, const char *coll);
void catalog_coll_put(struct coll *c);
/* One more reference to a container the caller already holds. */
void catalog_coll_hold(struct coll *c);
/* Copy of a container's definition (json_decref it). */
json_t *catalog_coll_def(struct coll *c);
/* Copy of a database's definition (json_decref it), or NULL. */
json_t *catalog_db_get(struct catalog *cat, const char *db);
/* JSON array of all databases / of a database's containers (NULL: no db). */
json_t *catalog_db_list(struct catalog *cat);
json_t *catalog_coll_list(struct catalog *cat, const char *db, char *db_rid, size_t n);

/* DDL. Return an HTTP status (201, 200, 204) or fill r with an error and
 * return its status. */
int catalog_db_create(struct catalog *cat, struct req *r, json_t *body);
int catalog_db_delete(struct catalog *cat, struct req *r, const char *db);
int catalog_coll_create(struct catalog *cat, struct req *r, const char *db, json_t *body);
int catalog_coll_replace(struct catalog *cat, struct req *r, const char *db, const char *coll,
                         json_t *body);
int catalog_coll_delete(struct catalog *cat, struct req *r, const char *db, const char *coll);

/* Reader connections of a container. */
struct rconn *coll_reader(struct coll *c);
void coll_reader_put(struct coll *c, struct rconn *rc);
/* A statement for sql on a reader connection, prepared once and kept: it
 * comes reset with no bindings; leave it with sqlite3_reset, never
 * finalize it. NULL if it does not prepare. */
sqlite3_stmt *rconn_stmt(struct rconn *rc, const char *sql);
/* A writer statement, prepared once per writer connection. */
sqlite3_stmt *coll_wstmt(struct coll *c, sqlite3 *db, int idx, const char *sql);

/* ---- indexing (ixpolicy.c, index.c) ---- */

#define IX_MAX_COMP  8   /* paths of one composite index */
#define IX_MAX_DEPTH 64  /* deeper document nodes are not indexed */
#define IX_STR_MAX   128 /* bytes of a string value in an index key */
enum { IX_CONSISTENT, IX_NONE };

struct ixpol;
/* Parse a container's indexingPolicy. 0, or an HTTP status with msg. */
int ixpol_parse(const json_t *policy, struct ixpol **out, char *msg, size_t n);
struct ixpol *ixpol_hold(struct ixpol *p);
void ixpol_put(struct ixpol *p);
int ixpol_mode(const struct ixpol *p);
int ixpol_automatic(const struct ixpol *p);
const char *ixpol_canon(const struct ixpol *p); /* identifies what an index was built for */
/* Whether values at path (segments: strings, null for "an element of the
 * array here") are in the index. */
int ixpol_path_indexed(const struct ixpol *p, const json_t *segs);
/* The composite index serving ORDER BY over paths/desc (n items), or -1;
 * *reverse when it serves them read backwards. */
int ixpol_composite_find(const struct ixpol *p, const json_t *const *paths, const int *desc,
                         size_t n, int *reverse);

/* Append the index key of value v (q_key_put, inverted when desc, with
 * strings cut at IX_STR_MAX bytes: *truncated then set). */
int ix_value_key(struct doc_buf *b, const json_t *v, int desc, int *truncated) AT_WUR;

/* The sorted index keys of one document. */
struct ixkeys {
    struct doc_buf buf;
    size_t *off;   /* n + 1 offsets into buf */
    size_t *order; /* key indexes in ascending key order */
    size_t n, cap;
};
int ix_doc_keys(const struct ixpol *p, const json_t *doc, struct ixkeys *out) AT_WUR;
void ixkeys_free(struct ixkeys *k);
/* Key i (in sorted order) and its length. */
const char *ixkeys_get(const struct ixkeys *k, size_t i, size_t *len);
int ixkeys_cmp(const struct ixkeys *a, size_t i, const struct ixkeys *b, size_t j);
extern const char IX_SCHEMA[];
/* Open a container's index after its writer started: follow the policy in
 * c->def, resuming or starting a rebuild as needed. */
int ix_open(struct coll *c) AT_WUR;
/* A new policy (DDL lock held): empties the index and rebuilds it online. */
int ix_policy_change(struct coll *c, struct ixpol *p) AT_WUR;
/* Stop the rebuild thread, merge the log (before the writer stops). */
void ix_close(struct coll *c);
void ix_free(struct coll *c);
/* A new document's keys computed before its write reaches the writer (on
 * the thread that parsed it), under the policy the planner had then and
 * with _ts the second it was taken in: the writer uses them when both
 * still hold (ix_update). pol NULL: none. */
struct ixpre {
    struct ixpol *pol;
    long long ts;
    struct ixkeys keys;
};
void ix_prepare(struct coll *c, json_t *doc, int directive, struct ixpre *out);
/* Whether a write with x-ms-indexing-directive directive (1 Include, -1
 * Exclude, 0 none) gets index entries under policy p: Include always,
 * Exclude never, neither unless p is a consistent policy that is not
 * automatic. */
int ix_indexed(const struct ixpol *p, int directive);
void ixpre_free(struct ixpre *p);
/* On the writer: replace the entries of document seq (old_body: its stored
 * text, NULL if new; newdoc: the new document, NULL when deleted; pre:
 * newdoc's keys from ix_prepare, or NULL). */
int ix_update(struct coll *c, sqlite3 *db, uint64_t seq, const char *old_body, json_t *newdoc,
              long long ts, const struct ixpre *pre) AT_WUR;
/* On the writer: move every entry of the index log into ix (ixdelta.c). */
int ix_merge(struct coll *c, sqlite3 *db) AT_WUR;
/* Log entries that make the writer merge (process-wide; 0: default). */
void ix_set_merge_keys(long n);
/* The planner's policy (a reference: ixpol_put it). */
struct ixpol *ix_policy(struct coll *c);
/* In a read transaction: whether the index is complete under p. */
int ix_usable(struct rconn *rc, const struct ixpol *p);
int ix_progress(struct coll *c); /* percent */

/* Append the key prefix of a path (segments as for ixpol_path_indexed),
 * up to and including the 0x00 that precedes the value key. */
int ix_path_prefix(struct doc_buf *b, const json_t *segs) AT_WUR;

/* ---- document operations (documents.c), shared by batch.c/patch.c ---- */

enum dop_kind { DOP_CREATE, DOP_UPSERT, DOP_REPLACE, DOP_DELETE, DOP_READ, DOP_PATCH };

/* ttl.c: time to live (docs/server.md, "Time to live"). */
#define TTL_NONE INT64_MIN
/* SQL: the docs row has not expired by the time bound to parameter p
 * ("?3"): the condition every read of docs adds. */
#define DOC_LIVE(p) " AND (exp IS NULL OR exp > " p ")"
/* The expiry time (Unix seconds) of a document written at ts with item
 * ttl item (TTL_NONE: no "ttl") in a container with defaultTtl def; 0:
 * never expires. */
int64_t ttl_expiry(int64_t def, int64_t item, int64_t ts);
/* A document's "ttl" into *item (TTL_NONE when absent or null): 0, or 400
 * when it is not -1 or an integer from 1 to 2147483647 (msg set). */
int ttl_item(const json_t *doc, int64_t *item, char *msg, size_t msgsz);
/* Whether column col of the current row of s (docs.exp) says expired. */
int ttl_row_expired(sqlite3_stmt *s, int col);
/* The container's defaultTtl from its definition (TTL_NONE when none). */
int64_t ttl_default_of(const json_t *def);
/* Recompute every document's expiry after defaultTtl changed (through the
 * writer). */
int ttl_apply(struct coll *c) AT_WUR;
/* The sweeper: deletes expired documents every second. */
struct ttl_sweeper;
int ttl_start(struct catalog *cat, struct ttl_sweeper **out) AT_WUR;
void ttl_stop(struct ttl_sweeper *t);

struct dop {
    int kind;
    char *pk;       /* canonical partition key text (owned) */
    json_t *pkval;  /* parsed partition key (owned) */
    const char *id; /* for REPLACE/DELETE/READ/PATCH */
    json_t *doc;    /* CREATE/UPSERT/REPLACE: stripped document (owned) */
    char *text;     /* its JSON text, prepared before the write */
    size_t text_len;
    json_t *patch;    /* PATCH: operations array (borrowed) */
    const char *cond; /* PATCH: "from c where ..." (borrowed) */
    const char *if_match, *if_none_match;
    int directive;    /* x-ms-indexing-directive: 1 Include, -1 Exclude, 0 the policy's automatic */
    int purge;        /* DELETE by the TTL sweeper: an expired document still counts */
    struct ixpre pre; /* CREATE/UPSERT/REPLACE: doc's index keys, if computed early */
    /* results */
    int status, substatus;
    char msg[400];
    char *body; /* resulting document (malloc'd) */
    size_t body_len;
    char etag[48];
};

/* Validate and prepare a CREATE/UPSERT/REPLACE op from a parsed document:
 * id rules, partition key against hdr_pk (NULL: take the document's),
 * size. 0 or an HTTP error status with op->msg set. */
int dop_prepare_doc(struct coll *c, struct dop *op, json_t *doc, json_t *hdr_pk, int require_pk);
/* Run one op on the writer connection (inside store_write). 0 on success,
 * else the HTTP status (op->status, op->msg set). */
int dop_exec(struct coll *c, sqlite3 *db, struct dop *op);
void dop_free(struct dop *op);
/* x-ms-indexing-directive of r into *out (1 Include, -1 Exclude, 0
 * Default/absent); a bad value is answered 400 and returns nonzero. */
int req_directive(struct req *r, int *out);
/* Run one op through the container's writer and answer r. */
void documents_run(struct req *r, struct coll *c, struct dop *op);
/* Delete every document that sql selects ("SELECT pk, id FROM docs WHERE
 * ... AND seq <= ?3 LIMIT ?2" with ?1 bound to text, or to num when text is
 * NULL, and ?3 to the highest seq when the first batch runs, so that
 * documents written meanwhile cannot keep it going for ever) through
 * c's writer, DOCS_DELETE_BATCH per transaction so that other writes go on
 * between them, as the TTL sweeper does (expired documents included; index
 * entries, unique keys and attachments with them). Stops early when c is
 * being dropped. The number deleted, or -1 when a batch failed (the batches
 * before it stay deleted). */
#define DOCS_DELETE_BATCH 500
long docs_delete_where(struct coll *c, const char *sql, const char *text, int64_t num);
/* Answer r from a finished op. */
void dop_respond(struct req *r, struct coll *c, struct dop *op);
/* Partition key of the request (header), parsed and canonical. */
int req_pk(struct req *r, struct coll *c, json_t **val, char **canon, int required);
/* The same from the header text h (NULL or "": absent) for a container with
 * npaths partition key paths. The header must be a JSON array of key values
 * ({} for an absent one): with npaths paths, 1..npaths of them (exactly
 * npaths when required); without, any array (ignored). Not partitioned:
 * *val [] and *canon "[]"; partitioned without a header (not required):
 * both NULL. Fewer values than paths (not required) name the first
 * components of a hierarchical key: *canon is then a prefix (below).
 * 0, or 400 answered. */
int srv_pk_parse(struct req *r, size_t npaths, const char *h, json_t **val, char **canon,
                 int required);
/* Whether canon is such a prefix: ["a", -- the text with which the
 * canonical key of every document under ["a"] begins (a value's JSON text
 * is self-delimiting). A whole canonical key ends with ']'. */
int srv_pk_is_prefix(const char *canon);
/* x-ms-start-epk and x-ms-end-epk: the range of effective partition keys
 * (doc/epk.h) a feed request reads; the SDKs send them for a feed range
 * narrower than the partition key range, and for a prefix of a
 * hierarchical key. 1 with *lo and *hi set ("": unbounded) when the range
 * is narrower than all keys, 0 when it is not, -1 with 400 answered. */
int req_epk(struct req *r, const char **lo, const char **hi);
/* Whether the document with canonical partition key canon lies in [lo, hi). */
int pk_in_epk(const char *canon, const char *lo, const char *hi);
/* SQL: the docs row's pk begins with the prefix bound to parameter p (a
 * range on pk: the prefix's last character ',' raised to '-'). */
#define PK_PREFIX(p) " AND pk >= " p " AND pk < substr(" p ", 1, length(" p ") - 1) || '-'"

/* patch.c */
int patch_apply(json_t *doc, const json_t *ops, char *msg, size_t msgsz);

/* Rows per page from x-ms-max-item-count: 1..1000; -1 (or less) 1000;
 * absent, 0 or over 1000: 100. */
long req_max_items(struct req *r);
/* The feed position from x-ms-continuation (a number; absent: 0). 0, or
 * 400 answered. */
int req_continuation(struct req *r, uint64_t *after);
/* Answer a feed page: b holds '{"_rid":…,"<Key>":[' and n items; close it
 * with "_count", send it with x-ms-item-count and, when more follow,
 * x-ms-continuation = last. err (or no memory): 500 instead. */
void resp_feed(struct req *r, struct doc_buf *b, int err, long n, int more, uint64_t last);

/* The feed of a container's documents: pages by seq, filters by partition
 * key (pk NULL: all). Answers r. */
void documents_scan(struct req *r, struct coll *c, const char *pk);

/* changefeed.c: a GET of the documents with "A-IM: Incremental feed" (pk:
 * the partition key header's value, or NULL). Answers r. */
void changefeed_handle(struct req *r, struct coll *c, const char *pk);

/* query.c */
/* A query on a partitioned container (npaths > 0) needs a partition key
 * header (pk_hdr) or x-ms-documentdb-query-enablecrosspartition "true" in
 * any case (xp_hdr); NULL or "" is absent. 0 ok, else 400 answered. */
int query_scope_check(struct req *r, size_t npaths, const char *pk_hdr, const char *xp_hdr);

/* A query (POST body {query, parameters}) over a small list of resources
 * (databases, containers), answered as one page {_rid: rid, key: [...]}. */
void query_list_handle(struct req *r, const char *rid, const char *key, const json_t *list);
/* Whether r is a POST that asks for a query or a query plan. */
int req_is_query(struct req *r);

/* The request body as a JSON object, or NULL with 400 answered. */
json_t *req_body_object(struct req *r);

/* offers.c: throughput offers. atrest does not meter request units; an
 * offer records what the application provisioned, so that the SDKs'
 * throughput calls work as on Cosmos. */
#define OFFER_DEFAULT_RUS 400
/* The offer id of a database (is_coll 0) or container num: 12 characters. */
void offer_id(char out[16], int is_coll, uint32_t num);
/* The offer content a create asks for with x-ms-offer-throughput or
 * x-ms-cosmos-offer-autopilot-settings into *content (NULL: none asked).
 * 0, or 400 answered. */
int offer_content_from_headers(struct req *r, json_t **content);
/* The content of the default offer (OFFER_DEFAULT_RUS, manual), or NULL. */
json_t *offer_default_content(void);
/* A new offer resource for the database or container whose _self and
 * _rid are given, with content (borrowed). */
json_t *offer_make(const char *id, const char *res_self, const char *res_rid, const json_t *content,
                   long long ts);
/* The content an offer replace body asks for (cur: the offer now), or
 * NULL with msg (a 400). */
json_t *offer_replace_content(const json_t *body, const json_t *cur, char *msg, size_t n);
void offers_handle(struct req *r);
/* catalog.c: every offer (new references), and replacing one (answers r). */
json_t *catalog_offer_list(struct catalog *cat);
int catalog_offer_replace(struct catalog *cat, struct req *r, const char *id, json_t *body);

/* resource handlers */
void account_get(struct req *r);
void containers_pk_delete(struct req *r);
void conflicts_handle(struct req *r);
void databases_handle(struct req *r);
void containers_handle(struct req *r);
void documents_handle(struct req *r);
void pkranges_handle(struct req *r);
void query_handle(struct req *r, struct coll *c);
void query_plan_handle(struct req *r, struct coll *c);
void batch_handle(struct req *r, struct coll *c);
void patch_handle(struct req *r, struct coll *c, const char *id);

/* ---- data-key rotation (datakeys.c, catalog.c; docs/kms.md) ---- */

struct store *catalog_meta_store(struct catalog *cat);
/* A reference to every container (catalog_coll_put each; free *out). */
int catalog_hold_colls(struct catalog *cat, struct coll ***out, size_t *n) AT_WUR;
/* 1 once a drop of c waits for its references to go. */
int catalog_coll_dying(struct coll *c);
/* Unix time of the last data-key rotation (0: never), kept in meta. */
int64_t catalog_dek_rotated_at(struct catalog *cat);
int catalog_set_dek_rotated_at(struct catalog *cat, int64_t t) AT_WUR;
/* /atrest/datakeys: POST rotates every store's DEKs now and starts the
 * re-encryption (202); GET reports its state. */
void datakeys_handle(struct req *r);
/* Continuous mode: 0 once every commit made before the call is shipped
 * (or no shipper runs), 1 when it is not yet after timeout_ms. */
int backups_ship_drain(struct server *srv, int timeout_ms);

/* ---- attachments and media (attachments.c; docs/attachments.md) ---- */

extern const char ATT_SCHEMA[];
void attachments_handle(struct req *r);       /* .../docs/{doc}/attachments[/{id}] */
void attachments_media_handle(struct req *r); /* /media/{mediaId} */
/* http.c, first call of a request: whether it uploads media (POST of
 * media bytes to .../attachments, PUT /media/{id}); then begin (0, or the
 * error answered), data for each piece of the body (nonzero: beyond
 * SRV_MEDIA_MAX), and abort when the request ends without its handler
 * taking the upload (req_free). */
int attachments_upload_route(struct req *r);
int attachments_upload_begin(struct req *r);
int attachments_upload_data(struct req *r, const char *p, size_t n);
void attachments_upload_abort(struct req *r);
/* A media response (r->ms): size, content type, the next bytes (-1: the
 * media failed its check mid-stream; the connection must be cut). */
uint64_t att_stream_size(const struct att_stream *ms);
const char *att_stream_type(const struct att_stream *ms);
long att_stream_read(struct att_stream *ms, char *buf, size_t max);
void att_stream_free(struct att_stream *ms);
/* On the writer, when document seq is deleted: drop its attachments and
 * retire their blobs (0, or -1 on a store error). */
int attachments_doc_deleted(struct coll *c, sqlite3 *db, uint64_t seq) AT_WUR;
/* After a write: delete the blobs it retired, if any. */
void attachments_after_write(struct coll *c);
/* Data-key rotation (datakeys.c): rewrap every media key of c under
 * container DEK versions below cur under the current ones (the media and
 * their DEKs stay). 0 done; 1 an upload that began earlier is still under
 * way (ask again); or an error. */
int attachments_rewrap_keys(struct coll *c, const uint32_t cur[2]);
/* Delete c's retired blobs now. */
void attachments_gc(struct coll *c);
/* The backup's media hook (backup_media_fn; ctx: the catalog): copy the
 * media blobs a container's snapshot names into the backup and put their
 * keys under the backup's media key in the snapshot (docs/backup.md). */
int attachments_backup_image(void *ctx, const char *store_name, sqlite3 *image, const uint8_t *key,
                             const char *prefix, struct blob_store *bs) AT_WUR;
/* Delete every media blob of a dropped container. */
void attachments_drop_container(struct catalog *cat, const char *store_name);

/* ---- backups (backups.c, catalog.c; docs/backup.md) ---- */

/* One full backup of the account into bs (catalog.c); with ship (continuous
 * mode) a base that records its position in the shipper's log. busy_mbps:
 * backup_job_set_busy_mbps. */
int catalog_backup(struct catalog *cat, const struct backup_keys *keys, struct ship *ship,
                   unsigned busy_mbps, struct blob_store *bs, char id[BACKUP_ID_LEN],
                   uint64_t *bytes, int *nstores) AT_WUR;
/* /atrest/backups: POST runs a backup now and answers when it is done;
 * GET lists the backups. */
void backups_handle(struct req *r);

#endif
