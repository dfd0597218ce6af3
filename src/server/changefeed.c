/*
 * changefeed.c — the change feed of a container (docs/changefeed.md): the
 * latest version of every document created or changed, in the order of the
 * changes, as the SDKs read it (GET .../docs with "A-IM: Incremental feed").
 *
 *   docs.lsn   set by the container's writer thread on every create,
 *              replace, upsert and patch (coll.next_lsn, one per change,
 *              increasing; index docs_lsn). A delete removes the row: the
 *              latest-version feed does not report deletes, as in Cosmos.
 *   request    If-None-Match: the position (the etag of the previous page;
 *              "*": from now on), else If-Modified-Since (documents whose
 *              _ts is at or after that time), else from the beginning;
 *              x-ms-documentdb-partitionkey narrows it to one partition
 *              key (or a prefix of a hierarchical one), x-ms-start-epk and
 *              x-ms-end-epk to a range of effective partition keys (epk.h);
 *              x-ms-max-item-count as for other feeds.
 *   response   200 {"_rid","Documents":[... each with "_lsn"],"_count"} and
 *              etag = the last _lsn on the page; or 304 (nothing newer) with
 *              etag = the position to ask from next time.
 *
 * Invariant: lsn values are handed out on the writer thread and committed
 * in that order, so a reader's snapshot holds every change up to some lsn
 * and none after it (a document changed again leaves its old lsn behind):
 * a position never skips a change the next page could still show.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/srv.h"

/* "123" or 123 → 123; -1 when it is not such a number. */
static int64_t parse_position(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        s++, n -= 2;
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* An HTTP date (RFC 7231 IMF-fixdate) → Unix time; -1 when it is not one. */
static int64_t parse_http_date(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}

/* The newest lsn (of partition key pk, or all): where "from now on" starts. */
static int64_t newest(sqlite3 *db, const char *pk)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    const char *sql = !pk ? "SELECT COALESCE(MAX(lsn),0) FROM docs"
                      : srv_pk_is_prefix(pk)
                          ? "SELECT COALESCE(MAX(lsn),0) FROM docs WHERE 1" PK_PREFIX("?1")
                          : "SELECT COALESCE(MAX(lsn),0) FROM docs WHERE pk=?1";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (pk)
            sqlite3_bind_text(s, 1, pk, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

static void not_modified(struct req *r, int64_t pos)
{
    resp_body(r, 304, NULL, 0);
    resp_header(r, "etag", "\"%" PRId64 "\"", pos);
    resp_header(r, "x-ms-item-count", "0");
}

void changefeed_handle(struct req *r, struct coll *c, const char *pk)
{
    const char *inm = req_header(r, "if-none-match");
    const char *ims = req_header(r, "if-modified-since");
    int64_t after = 0, since = 0;
    int from_now = inm && strcmp(inm, "*") == 0;
    if (inm && *inm && !from_now && (after = parse_position(inm)) < 0) {
        srv_error(r, 400, 0, "The change feed position (If-None-Match) is not one atrest gave.");
        return;
    }
    if (ims && *ims && (since = parse_http_date(ims)) < 0) {
        srv_error(r, 400, 0, "If-Modified-Since is not an HTTP date.");
        return;
    }
    long limit = req_max_items(r);
    const char *lo, *hi;
    int ranged = req_epk(r, &lo, &hi);
    if (ranged < 0)
        return;
    struct rconn *rc = coll_reader(c);
    if (!rc) {
        srv_error(r, 503, 0, "No store connection available; retry.");
        return;
    }
    /* One read transaction: "from now on" and the page agree. */
    int err = sqlite3_exec(rc->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK;
    if (!err && from_now) {
        int64_t pos = newest(rc->db, pk);
        sqlite3_exec(rc->db, "COMMIT", NULL, NULL, NULL);
        coll_reader_put(c, rc);
        if (pos < 0)
            srv_error(r, 500, 0, "The store failed the change feed.");
        else
            not_modified(r, pos);
        return;
    }
    sqlite3_stmt *s = NULL;
    const char *sql =
        !pk ? "SELECT lsn, body, pk FROM docs WHERE lsn > ?1 AND ts >= ?2" DOC_LIVE(
                  "?4") " ORDER BY lsn"
        : srv_pk_is_prefix(pk)
            ? "SELECT lsn, body, pk FROM docs WHERE lsn > ?1 AND ts >= ?2" DOC_LIVE("?4")
                  PK_PREFIX("?3") " ORDER BY lsn"
            : "SELECT lsn, body, pk FROM docs WHERE lsn > ?1 AND ts >= ?2" DOC_LIVE(
                  "?4") " AND pk = ?3 ORDER BY lsn";
    if (!err && sqlite3_prepare_v2(rc->db, sql, -1, &s, NULL) != SQLITE_OK)
        err = 1;
    struct doc_buf b = {0};
    long n = 0;
    int64_t last = after;
    if (!err) {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int64(s, 2, since);
        if (pk)
            sqlite3_bind_text(s, 3, pk, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)time(NULL)); /* expired: gone (ttl.c) */
        err = doc_buf_puts(&b, "{\"_rid\":\"") || doc_buf_puts(&b, c->rid) ||
              doc_buf_puts(&b, "\",\"Documents\":[");
    }
    int step = SQLITE_DONE;
    while (!err && n < limit && b.len < 4 * 1024 * 1024 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        last = sqlite3_column_int64(s, 0);
        if (ranged && !pk_in_epk((const char *)sqlite3_column_text(s, 2), lo, hi))
            continue; /* outside the range: the position still moves past it */
        const char *body = (const char *)sqlite3_column_text(s, 1);
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        char lsn[40];
        snprintf(lsn, sizeof lsn, ",\"_lsn\":%" PRId64 "}", last);
        /* the stored body is a JSON object: "_lsn" goes before its '}' */
        err = !body || len < 2 || body[len - 1] != '}' || (n && doc_buf_put(&b, ",", 1)) ||
              doc_buf_put(&b, body, len - 1) || doc_buf_puts(&b, len > 2 ? lsn : lsn + 1);
        n++;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        err = 1;
    sqlite3_finalize(s);
    sqlite3_exec(rc->db, "COMMIT", NULL, NULL, NULL);
    coll_reader_put(c, rc);
    if (!err && n == 0) {
        doc_buf_free(&b);
        not_modified(r, last);
        return;
    }
    if (err) {
        doc_buf_free(&b);
        srv_error(r, 500, 0, "The store failed the change feed.");
        return;
    }
    resp_feed(r, &b, 0, n, 0, 0);
    resp_header(r, "etag", "\"%" PRId64 "\"", last);
}
