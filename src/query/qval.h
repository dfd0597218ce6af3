/*
 * qval.h — Cosmos value semantics shared by the query engine and the index:
 * the total order used by ORDER BY, the order-preserving key encoding the
 * index stores, and the built-in scalar functions.
 *
 * undefined is NULL (see query.h). Numbers are compared as doubles.
 *
 * Type order (ORDER BY and the index):
 *   undefined < null < false < true < numbers < strings < arrays < objects
 * Within a type: numbers numerically (-0 == 0); strings by Unicode code
 * point (UTF-8 byte order); arrays element by element with q_cmp, shorter
 * first on a common prefix; objects by their canonical text (doc_dump).
 *
 * Key encoding (q_key_put): memcmp order of encodings == q_cmp order for
 * scalars; arrays and objects encode as a type byte only (Q_KEY_ARRAY,
 * Q_KEY_OBJECT), which sorts after every scalar. Layout:
 *
 *   type byte | payload
 *   0x01 null     | -
 *   0x02 false    | -
 *   0x03 true     | -
 *   0x04 number   | 8 bytes: IEEE bits big-endian, sign bit flipped when
 *                 |   positive, all bits flipped when negative; -0 as +0
 *   0x05 string   | UTF-8 bytes with 0x00 -> 0x00 0xFF, then 0x00 0x00
 *   0x06 array    | -
 *   0x07 object   | -
 *
 * An encoded key is self-delimiting, so keys can be concatenated
 * (composite index entries) and still compare component by component.
 */
#ifndef ATREST_QUERY_QVAL_H
#define ATREST_QUERY_QVAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "doc/doc.h"
#include "query/query.h"

enum {
    Q_KEY_NULL = 0x01,
    Q_KEY_FALSE = 0x02,
    Q_KEY_TRUE = 0x03,
    Q_KEY_NUMBER = 0x04,
    Q_KEY_STRING = 0x05,
    Q_KEY_ARRAY = 0x06,
    Q_KEY_OBJECT = 0x07,
};

/* Total order as above: <0, 0, >0. Either side may be NULL (undefined). */
int q_cmp(const json_t *a, const json_t *b);

/* Append v's key encoding (v not NULL). Returns 0 or AT_ENOMEM. */
int q_key_put(struct doc_buf *b, const json_t *v);

/* Append the encoding of v with every byte inverted (for DESC components
 * of a composite index): memcmp order is then the reverse of q_cmp. */
int q_key_put_desc(struct doc_buf *b, const json_t *v);

/* ---- built-in functions ---- */

/* The id of the built-in called name (case-insensitive, len bytes), or -1.
 * Aggregates (COUNT SUM AVG MIN MAX) are not built-ins: the executor owns
 * them. */
int q_builtin_find(const char *name, size_t len);
const char *q_builtin_name(int id);       /* canonical spelling, e.g. "ARRAY_CONTAINS" */
void q_builtin_arity(int id, int *min, int *max); /* max -1: variadic */

/* Call built-in id on n arguments (borrowed; NULL = undefined). *out gets a
 * new reference, or NULL for undefined. Wrong argument types give undefined,
 * as in Cosmos. Returns 0, or -1 with err filled (out of memory, a regular
 * expression that does not compile). */
int q_builtin_call(int id, json_t *const *args, size_t n, const struct q_ctx *ctx, json_t **out,
                   struct q_error *err);

#endif
