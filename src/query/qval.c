/*
 * qval.c — the total order of Cosmos values (q_cmp) and the
 * order-preserving key encoding the index stores (q_key_put).
 *
 * Invariants (qval.h has the order and the byte layout):
 *   1. For scalars a, b: sign(memcmp(key(a), key(b))) == sign(q_cmp(a, b)),
 *      where a shorter key that is a prefix of a longer one sorts first.
 *   2. A key is self-delimiting: no key is a proper prefix of another key,
 *      so concatenated keys compare component by component.
 *   3. q_key_put_desc(v) is q_key_put(v) with every byte inverted.
 */
#include "query/qval.h"

#include <stdlib.h>
#include <string.h>

/* Rank of a value's type in the order undefined < null < false < true <
 * numbers < strings < arrays < objects; equal to its key type byte. */
static int type_rank(const json_t *v)
{
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return Q_KEY_NULL;
    case JSON_FALSE:
        return Q_KEY_FALSE;
    case JSON_TRUE:
        return Q_KEY_TRUE;
    case JSON_INTEGER:
    case JSON_REAL:
        return Q_KEY_NUMBER;
    case JSON_STRING:
        return Q_KEY_STRING;
    case JSON_ARRAY:
        return Q_KEY_ARRAY;
    default:
        return Q_KEY_OBJECT;
    }
}

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_objects(const json_t *a, const json_t *b)
{
    size_t alen, blen;
    char *ta = doc_dump(a, &alen);
    char *tb = doc_dump(b, &blen);
    /* Out of memory: no order can be told; call them equal. */
    int c = ta && tb ? cmp_bytes(ta, alen, tb, blen) : 0;
    free(ta);
    free(tb);
    return c;
}

int q_cmp(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case Q_KEY_NUMBER: {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    case Q_KEY_STRING:
        return cmp_bytes(json_string_value(a), json_string_length(a), json_string_value(b),
                         json_string_length(b));
    case Q_KEY_ARRAY: {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            int c = q_cmp(json_array_get(a, i), json_array_get(b, i));
            if (c)
                return c;
        }
        return na < nb ? -1 : na > nb;
    }
    case Q_KEY_OBJECT:
        return cmp_objects(a, b);
    default:
        return 0; /* undefined, null, false, true: one value each */
    }
}

/* The 8 payload bytes of a number: big-endian IEEE bits, so that unsigned
 * byte order is numeric order (flip the sign bit of positives, every bit
 * of negatives; -0 is +0). */
static void number_bytes(double d, unsigned char out[8])
{
    if (d == 0)
        d = 0; /* -0 -> +0 */
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    u = (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)u;
        u >>= 8;
    }
}

/* Append v's encoding, each byte XORed with mask (0 or 0xFF). */
static int key_put(struct doc_buf *b, const json_t *v, unsigned char mask)
{
    unsigned char tmp[64];
    size_t n = 0;
    int rc = 0;
    tmp[n++] = (unsigned char)type_rank(v);
    if (tmp[0] == Q_KEY_NUMBER) {
        number_bytes(json_number_value(v), tmp + n);
        n += 8;
    } else if (tmp[0] == Q_KEY_STRING) {
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t len = json_string_length(v);
        for (size_t i = 0; i < len && !rc; i++) {
            tmp[n++] = s[i];
            if (s[i] == 0)
                tmp[n++] = 0xFF;
            if (n >= sizeof tmp - 2) {
                for (size_t j = 0; j < n; j++)
                    tmp[j] ^= mask;
                rc = doc_buf_put(b, (const char *)tmp, n);
                n = 0;
            }
        }
        tmp[n++] = 0;
        tmp[n++] = 0;
    }
    for (size_t j = 0; j < n; j++)
        tmp[j] ^= mask;
    return rc ? rc : doc_buf_put(b, (const char *)tmp, n);
}

int q_key_put(struct doc_buf *b, const json_t *v)
{
    return key_put(b, v, 0);
}

int q_key_put_desc(struct doc_buf *b, const json_t *v)
{
    return key_put(b, v, 0xFF);
}
