/*
 * doc.h — the document model: JSON in and out, id rules, system
 * properties, partition keys.
 *
 * JSON values are jansson values. Numbers follow Cosmos: every number is an
 * IEEE double (doc_parse decodes integers as reals, so integers beyond
 * int64 never fail a request), and doc_dump prints integral doubles without
 * a fraction (42 stays 42) and others in the shortest form that reads back
 * to the same double. Objects keep their member order (jansson >= 2.8).
 *
 * Partition keys: a partition key value is a JSON array with one element
 * per path of the container's definition; a path that is absent from the
 * document is the empty object {} ("undefined"), as the SDKs send it. Two
 * values are equal when their canonical encodings (doc_pk_canon) are equal:
 * ["p1"] and ["\u0070\u0031"], [5] and [5.0] compare equal.
 *
 * Invariants:
 *   1. doc_parse never crashes on any input and bounds nesting depth
 *      (DOC_MAX_DEPTH) before jansson recurses.
 *   2. doc_dump(doc_parse(doc_dump(v))) == doc_dump(v) (canonical output).
 */
#ifndef ATREST_DOC_DOC_H
#define ATREST_DOC_DOC_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

#define DOC_MAX_DEPTH 128
#define DOC_ID_MAX    255
#define DOC_MAX_BYTES (2 * 1024 * 1024)

/* Parse len bytes of JSON (any value, UTF-8, NUL allowed inside strings).
 * NULL on error; err (if not NULL) receives a message without user data. */
json_t *doc_parse(const char *buf, size_t len, const char **err);

/* Canonical, compact JSON text of v (malloc'd, NUL-terminated; *len if
 * not NULL). NULL only on allocation failure. */
char *doc_dump(const json_t *v, size_t *len);

/* Append v's JSON text to a growable buffer. Returns 0 or AT_ENOMEM. */
struct doc_buf {
    char *p;
    size_t len, cap;
};
int doc_buf_put(struct doc_buf *b, const char *s, size_t n) AT_WUR;
int doc_buf_puts(struct doc_buf *b, const char *s) AT_WUR;
int doc_buf_json(struct doc_buf *b, const json_t *v) AT_WUR;
int doc_buf_str(struct doc_buf *b, const char *s, size_t n) AT_WUR; /* quoted */
void doc_buf_free(struct doc_buf *b);
/* Room for one more element after len in the array *(T **)pp of *cap
 * elements of elem bytes (doubling; first 64). 0 or AT_ENOMEM (the array
 * unchanged). */
int doc_grow(void *pp, size_t *cap, size_t len, size_t elem) AT_WUR;

/* The id rules of Cosmos: a non-empty string of at most 255 characters
 * without '/', '\\', '?' or '#'. NULL when valid, else why not. */
const char *doc_id_check(const char *id, size_t len);

/* A Cosmos-style number format for one double (used by doc_dump). */
void doc_fmt_number(double d, char out[32]);

/* Deep equality with Cosmos semantics (numbers as doubles). */
int doc_equal(const json_t *a, const json_t *b);

/* Remove the system properties _rid _self _etag _ts _attachments. */
void doc_strip_system(json_t *doc);

/* ---- partition keys ---- */

/* Parse a partition key path "/a/b" or "/\"a b\"/c" into its segments
 * (a JSON array of strings). NULL if malformed. */
json_t *doc_pk_path_parse(const char *path);

/* Extract a document's partition key: an array with one value per path in
 * paths (an array of parsed path arrays); {} for an absent path. */
json_t *doc_pk_extract(const json_t *doc, const json_t *parsed_paths);

/* Parse a partition key header value, which must be a JSON array. NULL if
 * it is not valid JSON or not an array (a bare "p" or 5 is refused). */
json_t *doc_pk_header(const char *hdr);

/* Canonical text of a partition key value (an array); malloc'd. */
char *doc_pk_canon(const json_t *pk);

/* Look up a path (array of segments) in a document; NULL if absent. */
json_t *doc_get_path(const json_t *doc, const json_t *segments);

#endif
