/*
 * doc.c — JSON parsing and canonical printing, id rules, partition keys.
 * See doc.h for the number rules and invariants.
 */
#include "doc/doc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reject nesting deeper than DOC_MAX_DEPTH before jansson recurses. */
static int depth_ok(const char *buf, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{') {
            if (++depth > DOC_MAX_DEPTH)
                return 0;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return 1;
}

json_t *doc_parse(const char *buf, size_t len, const char **err)
{
    if (err)
        *err = "invalid JSON";
    if (!buf)
        return NULL;
    if (!depth_ok(buf, len)) {
        if (err)
            *err = "JSON nested too deeply";
        return NULL;
    }
    json_error_t je;
    json_t *v =
        json_loadb(buf, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
    return v;
}

/* JavaScript's Number.prototype.toString for finite doubles: the shortest
 * digits that read back to d, integers up to 1e21 written out in full. */
void doc_fmt_number(double d, char out[32])
{
    if (!isfinite(d)) {
        strcpy(out, "null");
        return;
    }
    if (d == 0) {
        strcpy(out, "0");
        return;
    }
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        snprintf(out, 32, "%.0f", d);
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    /* e = [-]D[.DDD]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    int neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = 0;
    int exp10 = atoi(p + 1); /* d = 0.DIGITS * 10^(exp10+1) */
    char *o = out;
    if (neg)
        *o++ = '-';
    int k = (int)nd, n = exp10 + 1;
    if (k <= n && n <= 21) { /* integer: digits then zeros */
        memcpy(o, digits, nd);
        o += nd;
        for (int i = 0; i < n - k; i++)
            *o++ = '0';
        *o = 0;
    } else if (0 < n && n <= 21) { /* 123.456 */
        memcpy(o, digits, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, digits + n, nd - (size_t)n);
        o += nd - (size_t)n;
        *o = 0;
    } else if (-6 < n && n <= 0) { /* 0.000123 */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
        *o = 0;
    } else { /* 1.23e+25, 1e-7 */
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1);
            o += nd - 1;
        }
        snprintf(o, 16, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1) % 1000);
    }
}

int doc_buf_put(struct doc_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return AT_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int doc_buf_puts(struct doc_buf *b, const char *s)
{
    return doc_buf_put(b, s, strlen(s));
}

int doc_grow(void *pp, size_t *cap, size_t len, size_t elem)
{
    if (len < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void **p = pp;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return AT_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

void doc_buf_free(struct doc_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int doc_buf_str(struct doc_buf *b, const char *s, size_t n)
{
    int rc = doc_buf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            }
        }
        if (esc) {
            rc = doc_buf_put(b, s + i - run, run);
            run = 0;
            if (!rc)
                rc = doc_buf_puts(b, esc);
        } else {
            run++;
        }
    }
    if (!rc)
        rc = doc_buf_put(b, s + n - run, run);
    if (!rc)
        rc = doc_buf_put(b, "\"", 1);
    return rc;
}

static int buf_json(struct doc_buf *b, const json_t *v, int depth)
{
    char num[32];
    int rc = 0;
    if (depth > DOC_MAX_DEPTH * 2)
        return AT_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        size_t klen;
        int first = 1;
        rc = doc_buf_put(b, "{", 1);
        json_object_keylen_foreach((json_t *)v, k, klen, m)
        {
            if (rc)
                break;
            if (!first)
                rc = doc_buf_put(b, ",", 1);
            first = 0;
            if (!rc)
                rc = doc_buf_str(b, k, klen);
            if (!rc)
                rc = doc_buf_put(b, ":", 1);
            if (!rc)
                rc = buf_json(b, m, depth + 1);
        }
        if (!rc)
            rc = doc_buf_put(b, "}", 1);
        return rc;
    }
    case JSON_ARRAY: {
        rc = doc_buf_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
            if (i)
                rc = doc_buf_put(b, ",", 1);
            if (!rc)
                rc = buf_json(b, json_array_get(v, i), depth + 1);
        }
        if (!rc)
            rc = doc_buf_put(b, "]", 1);
        return rc;
    }
    case JSON_STRING:
        return doc_buf_str(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return doc_buf_puts(b, num);
    case JSON_REAL:
        doc_fmt_number(json_real_value(v), num);
        return doc_buf_puts(b, num);
    case JSON_TRUE:
        return doc_buf_puts(b, "true");
    case JSON_FALSE:
        return doc_buf_puts(b, "false");
    case JSON_NULL:
        return doc_buf_puts(b, "null");
    }
    return AT_EINVAL;
}

int doc_buf_json(struct doc_buf *b, const json_t *v)
{
    return buf_json(b, v, 0);
}

char *doc_dump(const json_t *v, size_t *len)
{
    struct doc_buf b = {0};
    if (buf_json(&b, v, 0) != 0) {
        doc_buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

const char *doc_id_check(const char *id, size_t len)
{
    if (!id || len == 0)
        return "The id must not be empty.";
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '/' || c == '\\' || c == '?' || c == '#')
            return "The id must not contain '/', '\\', '?' or '#'.";
        if (c == 0) /* no URL could name it: "%00" is refused in paths */
            return "The id must not contain the character U+0000.";
        if ((c & 0xC0) != 0x80)
            chars++;
    }
    if (chars > DOC_ID_MAX)
        return "The id must not be longer than 255 characters.";
    return NULL;
}

static double num_of(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

int doc_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_of(a) == num_of(b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!doc_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        size_t klen;
        json_t *m;
        json_object_keylen_foreach((json_t *)a, k, klen, m)
        {
            json_t *o = json_object_getn(b, k, klen);
            if (!o || !doc_equal(m, o))
                return 0;
        }
        return 1;
    }
    default:
        return 1;
    }
}

void doc_strip_system(json_t *doc)
{
    static const char *const sys[] = {"_rid", "_self", "_etag", "_ts", "_attachments"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        json_object_del(doc, sys[i]);
}

json_t *doc_pk_path_parse(const char *path)
{
    if (!path || path[0] != '/')
        return NULL;
    json_t *segs = json_array();
    const char *p = path;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t n = 0;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q) {
                if (*p == '\\' && p[1])
                    p++;
                if (n + 1 >= sizeof seg)
                    goto bad;
                seg[n++] = *p++;
            }
            if (*p != q)
                goto bad;
            p++;
        } else {
            while (*p && *p != '/') {
                if (n + 1 >= sizeof seg)
                    goto bad;
                seg[n++] = *p++;
            }
        }
        if (n == 0)
            goto bad;
        json_array_append_new(segs, json_stringn(seg, n));
    }
    if (*p || json_array_size(segs) == 0)
        goto bad;
    return segs;
bad:
    json_decref(segs);
    return NULL;
}

json_t *doc_get_path(const json_t *doc, const json_t *segments)
{
    const json_t *cur = doc;
    for (size_t i = 0; i < json_array_size(segments) && cur; i++) {
        const json_t *s = json_array_get(segments, i);
        if (json_is_object(cur) && json_is_string(s))
            cur = json_object_getn(cur, json_string_value(s), json_string_length(s));
        else if (json_is_array(cur) && json_is_integer(s))
            cur = json_array_get(cur, (size_t)json_integer_value(s));
        else
            cur = NULL;
    }
    return (json_t *)cur;
}

json_t *doc_pk_extract(const json_t *doc, const json_t *parsed_paths)
{
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(parsed_paths); i++) {
        json_t *v = doc_get_path(doc, json_array_get(parsed_paths, i));
        json_array_append_new(out, v ? json_incref(v) : json_object());
    }
    return out;
}

json_t *doc_pk_header(const char *hdr)
{
    if (!hdr)
        return NULL;
    json_t *v = doc_parse(hdr, strlen(hdr), NULL);
    if (v && !json_is_array(v)) {
        /* Cosmos answers 400 for a bare value ("p", 5): never wrap it. */
        json_decref(v);
        return NULL;
    }
    return v;
}

char *doc_pk_canon(const json_t *pk)
{
    return doc_dump(pk, NULL);
}
