/*
 * builtins_str.c — the Cosmos string functions, RegexMatch (PCRE2) and the
 * StringTo* / ToString conversions.
 *
 * Lengths and positions count Unicode code points (a character outside
 * the BMP is one character, not two UTF-16 units). jansson strings are
 * valid UTF-8 and may contain NUL, so every function works on (pointer,
 * length) and never on C strings.
 *
 * Case mapping (LOWER, UPPER, the ignore-case flags) is Unicode simple
 * case mapping of the C.UTF-8 locale, one code point to one; when that
 * locale is missing it falls back to ASCII. Whitespace for the trims
 * without a character list is that locale's iswspace (ASCII otherwise).
 */
#include "query/builtins_int.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Result length cap of REPLICATE, in characters (documented). */
#define REPLICATE_MAX 10000
/* Bytes of a string that CONCAT or REPLACE may build: nested, they would
 * otherwise grow without end (REPLACE(REPLACE(s, ...), ...)). */
#define BUILT_MAX (16u * 1024 * 1024)
#define TOO_LONG  (-2)
/* Backtracking budget of one RegexMatch (PCRE2 match and depth limits). */
#define REGEX_MATCH_LIMIT 1000000
#define REGEX_DEPTH_LIMIT 10000
/* A match also stops after this long: the match limit does not count
 * every step ('(?=a*b)(?=a*c)' over 100,000 'a' is quadratic within it,
 * seconds per call; over a 2 MB string, hours). Patterns are compiled with
 * automatic callouts, and the callout looks at the clock (2-3 times
 * slower matching). A pattern too large with the callouts (an alternation
 * of a thousand words) is compiled without them: the match limit alone
 * bounds it. */
#define REGEX_SECONDS     1.0
#define REGEX_OUT_OF_TIME (-1000)

/* ---- UTF-8 ---- */

static int is_cont(unsigned char b)
{
    return (b & 0xC0) == 0x80;
}

/* Byte offset of the code point after the one at i. */
static size_t cp_next(const char *s, size_t len, size_t i)
{
    for (i++; i < len && is_cont((unsigned char)s[i]); i++)
        ;
    return i;
}

static size_t cp_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += !is_cont((unsigned char)s[i]);
    return n;
}

/* Byte offset of code point n (len when the string is shorter). */
static size_t cp_offset(const char *s, size_t len, size_t n)
{
    size_t i = 0;
    while (n-- && i < len)
        i = cp_next(s, len, i);
    return i;
}

static unsigned cp_decode(const char *s, size_t len, size_t i)
{
    const unsigned char *p = (const unsigned char *)s + i;
    size_t n = cp_next(s, len, i) - i;
    if (n == 1)
        return p[0];
    unsigned cp = p[0] & (0x7F >> n);
    for (size_t k = 1; k < n; k++)
        cp = (cp << 6) | (p[k] & 0x3F);
    return cp;
}

static int cp_encode(struct doc_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return doc_buf_put(b, u, n);
}

/* ---- case and whitespace ---- */

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static unsigned map_case(unsigned cp, int upper)
{
    pthread_once(&utf8_once, utf8_init);
    if (utf8_locale) {
        wint_t r =
            upper ? towupper_l((wint_t)cp, utf8_locale) : towlower_l((wint_t)cp, utf8_locale);
        /* one-to-one mappings that stay valid scalar values only */
        return r <= 0x10FFFF && (r < 0xD800 || r > 0xDFFF) ? (unsigned)r : cp;
    }
    if (upper)
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

static int is_space(unsigned cp)
{
    pthread_once(&utf8_once, utf8_init);
    if (utf8_locale)
        return iswspace_l((wint_t)cp, utf8_locale) != 0;
    return cp == ' ' || (cp >= '\t' && cp <= '\r');
}

/* Append s with every code point case-mapped. */
static int put_case(struct doc_buf *b, const char *s, size_t len, int upper)
{
    int rc = doc_buf_put(b, "", 0); /* an empty string still gets a buffer */
    for (size_t i = 0; i < len && !rc; i = cp_next(s, len, i))
        rc = cp_encode(b, map_case(cp_decode(s, len, i), upper));
    return rc;
}

/* A string argument viewed as (p, len), optionally lower-cased into own. */
struct text {
    const char *p;
    size_t len;
    struct doc_buf own;
};

static int text_of(struct text *t, const json_t *v, int fold)
{
    memset(t, 0, sizeof *t);
    t->p = json_string_value(v);
    t->len = json_string_length(v);
    if (!fold)
        return 0;
    if (put_case(&t->own, t->p, t->len, 0))
        return -1;
    t->p = t->own.p;
    t->len = t->own.len;
    return 0;
}

/* ---- comparisons with an optional ignore-case flag ---- */

enum str_test { T_CONTAINS, T_STARTS, T_ENDS, T_EQUALS };

static int str_test(struct bi_call *c, enum str_test op)
{
    int ci = bi_flag(c, 2);
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]) || ci < 0)
        return 0;
    struct text s, x;
    int rc = text_of(&s, c->a[0], ci) || text_of(&x, c->a[1], ci);
    if (rc) {
        doc_buf_free(&s.own);
        return bi_oom(c);
    }
    int r;
    switch (op) {
    case T_CONTAINS:
        r = memmem(s.p, s.len, x.p, x.len) != NULL || x.len == 0;
        break;
    case T_STARTS:
        r = x.len <= s.len && memcmp(s.p, x.p, x.len) == 0;
        break;
    case T_ENDS:
        r = x.len <= s.len && memcmp(s.p + s.len - x.len, x.p, x.len) == 0;
        break;
    default:
        r = x.len == s.len && memcmp(s.p, x.p, x.len) == 0;
        break;
    }
    doc_buf_free(&s.own);
    doc_buf_free(&x.own);
    return bi_bool(c, r);
}

int bi_contains(struct bi_call *c)
{
    return str_test(c, T_CONTAINS);
}

int bi_startswith(struct bi_call *c)
{
    return str_test(c, T_STARTS);
}

int bi_endswith(struct bi_call *c)
{
    return str_test(c, T_ENDS);
}

int bi_stringequals(struct bi_call *c)
{
    return str_test(c, T_EQUALS);
}

/* CONTAINS_ALL_* / CONTAINS_ANY_*(s, x1, ..., xn): CONTAINS(s, xi, ci)
 * joined with AND (all) or OR (any), with their three-valued logic
 * (documented): a decided term decides, else an undefined term makes the
 * whole undefined. */
static int contains_list(struct bi_call *c, int all, int ci)
{
    int undef = 0;
    for (size_t i = 1; i < c->n; i++) {
        json_t *args[3] = {c->a[0], c->a[i], ci ? json_true() : json_false()};
        json_t *r = NULL;
        struct bi_call one = {args, 3, c->ctx, &r, c->err};
        if (str_test(&one, T_CONTAINS) != 0)
            return -1;
        if (!r) {
            undef = 1;
            continue;
        }
        int t = json_is_true(r);
        json_decref(r);
        if (t != all) /* false under AND, true under OR */
            return bi_bool(c, t);
    }
    return undef ? 0 : bi_bool(c, all);
}

int bi_contains_all_ci(struct bi_call *c)
{
    return contains_list(c, 1, 1);
}

int bi_contains_all_cs(struct bi_call *c)
{
    return contains_list(c, 1, 0);
}

int bi_contains_any_ci(struct bi_call *c)
{
    return contains_list(c, 0, 1);
}

int bi_contains_any_cs(struct bi_call *c)
{
    return contains_list(c, 0, 0);
}

/* ---- positions ---- */

/* INDEX_OF(s, x [, start]): the code point index of the first x at or
 * after start, or -1. A negative start counts as 0. */
int bi_index_of(struct bi_call *c)
{
    double start = 0;
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]) ||
        (c->n > 2 && !bi_number(c->a[2], &start)))
        return 0;
    const char *s = json_string_value(c->a[0]), *x = json_string_value(c->a[1]);
    size_t len = json_string_length(c->a[0]), xlen = json_string_length(c->a[1]);
    size_t n = cp_count(s, len);
    start = trunc(fmax(start, 0));
    if (start > (double)n)
        return bi_num(c, -1);
    size_t from = cp_offset(s, len, (size_t)start);
    const char *hit = memmem(s + from, len - from, x, xlen);
    if (!hit)
        return bi_num(c, -1);
    return bi_num(c, start + (double)cp_count(s + from, (size_t)(hit - s) - from));
}

/* LastIndexOf(s, x [, start]): the code point index of the last x that
 * begins at or before start (default: anywhere), or -1. */
int bi_lastindexof(struct bi_call *c)
{
    double start = INFINITY;
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]) ||
        (c->n > 2 && !bi_number(c->a[2], &start)))
        return 0;
    const char *s = json_string_value(c->a[0]), *x = json_string_value(c->a[1]);
    size_t len = json_string_length(c->a[0]), xlen = json_string_length(c->a[1]);
    double found = -1, idx = 0;
    for (size_t i = 0; i <= len && idx <= start; i = cp_next(s, len, i), idx++) {
        if (xlen <= len - i && memcmp(s + i, x, xlen) == 0)
            found = idx;
        if (i == len)
            break;
    }
    return bi_num(c, found);
}

/* ---- substrings ---- */

/* Code points [from, from + count) of s; both clamped to the string. */
static int sub_cp(struct bi_call *c, const json_t *v, double from, double count)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    from = fmax(0, trunc(from));
    count = trunc(count);
    if (count <= 0 || from >= (double)len)
        return bi_str(c, "", 0);
    size_t a = cp_offset(s, len, (size_t)from);
    size_t b = count >= (double)len ? len : a + cp_offset(s + a, len - a, (size_t)count);
    return bi_str(c, s + a, b - a);
}

/* SUBSTRING(s, start, length): zero-based; a negative length gives ""
 * (documented); a negative start counts as 0. */
int bi_substring(struct bi_call *c)
{
    double start, count;
    if (!json_is_string(c->a[0]) || !bi_number(c->a[1], &start) || !bi_number(c->a[2], &count))
        return 0;
    return sub_cp(c, c->a[0], start, count);
}

int bi_left(struct bi_call *c)
{
    double count;
    if (!json_is_string(c->a[0]) || !bi_number(c->a[1], &count))
        return 0;
    return sub_cp(c, c->a[0], 0, count);
}

int bi_right(struct bi_call *c)
{
    double count;
    if (!json_is_string(c->a[0]) || !bi_number(c->a[1], &count))
        return 0;
    double n = (double)cp_count(json_string_value(c->a[0]), json_string_length(c->a[0]));
    count = fmin(trunc(count), n);
    return sub_cp(c, c->a[0], n - count, count);
}

int bi_length(struct bi_call *c)
{
    if (!json_is_string(c->a[0]))
        return 0;
    return bi_num(c, (double)cp_count(json_string_value(c->a[0]), json_string_length(c->a[0])));
}

/* Take ownership of a built buffer as the string result. */
static int take_buf(struct bi_call *c, struct doc_buf *b, int rc)
{
    if (!rc)
        rc = bi_str(c, b->p, b->len);
    else if (rc == TOO_LONG)
        rc = bi_fail(c, 400, "A string built by the query would be longer than 16 MB.");
    else
        rc = bi_oom(c);
    doc_buf_free(b);
    return rc;
}

/* Append to a string being built, up to BUILT_MAX bytes (TOO_LONG). */
static int put_built(struct doc_buf *b, const char *p, size_t n)
{
    if (n > BUILT_MAX - b->len)
        return TOO_LONG;
    return doc_buf_put(b, p, n) ? -1 : 0;
}

static int change_case(struct bi_call *c, int upper)
{
    if (!json_is_string(c->a[0]))
        return 0;
    struct doc_buf b = {0};
    return take_buf(c, &b,
                    put_case(&b, json_string_value(c->a[0]), json_string_length(c->a[0]), upper));
}

int bi_lower(struct bi_call *c)
{
    return change_case(c, 0);
}

int bi_upper(struct bi_call *c)
{
    return change_case(c, 1);
}

/* ---- trimming ---- */

/* Whether code point cp is in the trim set: the characters of set, or
 * whitespace when set is NULL. */
static int in_set(unsigned cp, const json_t *set)
{
    if (!set)
        return is_space(cp);
    const char *s = json_string_value(set);
    size_t len = json_string_length(set);
    for (size_t i = 0; i < len; i = cp_next(s, len, i))
        if (cp_decode(s, len, i) == cp)
            return 1;
    return 0;
}

/* LTRIM / RTRIM / TRIM(s [, chars]): the documented examples treat chars
 * as a set of characters (TRIM("-_-x-_-", "-_") is "x"). */
static int trim(struct bi_call *c, int left, int right)
{
    json_t *set = bi_arg(c, 1);
    if (!json_is_string(c->a[0]) || (c->n > 1 && !json_is_string(set)))
        return 0;
    const char *s = json_string_value(c->a[0]);
    size_t len = json_string_length(c->a[0]), a = 0, b = len;
    while (left && a < b && in_set(cp_decode(s, len, a), set))
        a = cp_next(s, len, a);
    while (right && b > a) {
        size_t last = b - 1;
        while (last > a && is_cont((unsigned char)s[last]))
            last--;
        if (!in_set(cp_decode(s, len, last), set))
            break;
        b = last;
    }
    return bi_str(c, s + a, b - a);
}

int bi_ltrim(struct bi_call *c)
{
    return trim(c, 1, 0);
}

int bi_rtrim(struct bi_call *c)
{
    return trim(c, 0, 1);
}

int bi_trim(struct bi_call *c)
{
    return trim(c, 1, 1);
}

/* ---- building ---- */

int bi_concat(struct bi_call *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (!json_is_string(c->a[i]))
            return 0;
    struct doc_buf b = {0};
    int rc = doc_buf_put(&b, "", 0);
    for (size_t i = 0; i < c->n && !rc; i++)
        rc = put_built(&b, json_string_value(c->a[i]), json_string_length(c->a[i]));
    return take_buf(c, &b, rc);
}

/* REPLACE(s, find, with): every non-overlapping find, left to right; an
 * empty find leaves s unchanged. */
int bi_replace(struct bi_call *c)
{
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]) || !json_is_string(c->a[2]))
        return 0;
    const char *s = json_string_value(c->a[0]), *f = json_string_value(c->a[1]);
    size_t len = json_string_length(c->a[0]), flen = json_string_length(c->a[1]);
    if (flen == 0)
        return bi_copy(c, c->a[0]);
    struct doc_buf b = {0};
    int rc = doc_buf_put(&b, "", 0);
    size_t i = 0;
    while (!rc) {
        const char *hit = memmem(s + i, len - i, f, flen);
        size_t upto = hit ? (size_t)(hit - s) : len;
        rc = put_built(&b, s + i, upto - i);
        if (!hit || rc)
            break;
        rc = put_built(&b, json_string_value(c->a[2]), json_string_length(c->a[2]));
        i = upto + flen;
    }
    return take_buf(c, &b, rc);
}

/* StringJoin(array, separator): the array's strings with the separator
 * between them; undefined when an element is not a string. */
int bi_stringjoin(struct bi_call *c)
{
    if (!json_is_array(c->a[0]) || !json_is_string(c->a[1]))
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(c->a[0], i, e)
    {
        if (!json_is_string(e))
            return 0;
    }
    struct doc_buf b = {0};
    int rc = doc_buf_put(&b, "", 0);
    json_array_foreach(c->a[0], i, e)
    {
        if (!rc && i)
            rc = put_built(&b, json_string_value(c->a[1]), json_string_length(c->a[1]));
        if (!rc)
            rc = put_built(&b, json_string_value(e), json_string_length(e));
        if (rc)
            break;
    }
    return take_buf(c, &b, rc);
}

/* StringSplit(s, delimiter): the pieces of s between non-overlapping
 * delimiters, left to right (empty pieces kept); an empty delimiter gives
 * [s]. */
int bi_stringsplit(struct bi_call *c)
{
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]))
        return 0;
    const char *s = json_string_value(c->a[0]), *d = json_string_value(c->a[1]);
    size_t len = json_string_length(c->a[0]), dlen = json_string_length(c->a[1]);
    json_t *out = json_array();
    if (!out)
        return bi_oom(c);
    size_t i = 0;
    for (;;) {
        const char *hit = dlen ? memmem(s + i, len - i, d, dlen) : NULL;
        size_t upto = hit ? (size_t)(hit - s) : len;
        if (json_array_size(out) == ARRAY_BUILT_MAX) {
            json_decref(out);
            return bi_array_too_big(c);
        }
        if (json_array_append_new(out, json_stringn(s + i, upto - i)) != 0) {
            json_decref(out);
            return bi_oom(c);
        }
        if (!hit)
            break;
        i = upto + dlen;
    }
    return bi_take(c, out);
}

/* REPLICATE(s, n): n copies (n truncated); negative n, or a result longer
 * than 10,000 characters, is undefined (documented). */
int bi_replicate(struct bi_call *c)
{
    double n;
    if (!json_is_string(c->a[0]) || !bi_number(c->a[1], &n) || n < 0)
        return 0;
    n = trunc(n);
    const char *s = json_string_value(c->a[0]);
    size_t len = json_string_length(c->a[0]);
    if (len == 0)
        return bi_str(c, "", 0); /* any number of copies of "" (no loop: n may be 1e300) */
    if ((double)cp_count(s, len) * n > REPLICATE_MAX)
        return 0;
    struct doc_buf b = {0};
    int rc = doc_buf_put(&b, "", 0);
    for (size_t i = 0; i < (size_t)n && !rc; i++) /* n <= REPLICATE_MAX here */
        rc = doc_buf_put(&b, s, len);
    return take_buf(c, &b, rc);
}

int bi_reverse(struct bi_call *c)
{
    if (!json_is_string(c->a[0]))
        return 0;
    const char *s = json_string_value(c->a[0]);
    size_t len = json_string_length(c->a[0]);
    char *r = malloc(len + 1);
    if (!r)
        return bi_oom(c);
    for (size_t i = 0; i < len;) {
        size_t j = cp_next(s, len, i);
        memcpy(r + len - j, s + i, j - i);
        i = j;
    }
    int rc = bi_str(c, r, len);
    free(r);
    return rc;
}

/* ---- conversions ---- */

/* ToString(v): strings as they are, numbers in Cosmos's format, other
 * values as compact JSON. */
int bi_tostring(struct bi_call *c)
{
    json_t *v = c->a[0];
    if (!v)
        return 0;
    if (json_is_string(v))
        return bi_copy(c, v);
    if (json_is_number(v)) {
        char num[32];
        doc_fmt_number(json_number_value(v), num);
        return bi_str(c, num, strlen(num));
    }
    size_t len;
    char *text = doc_dump(v, &len);
    if (!text)
        return bi_oom(c);
    int rc = bi_str(c, text, len);
    free(text);
    return rc;
}

/* Parse a string argument as JSON and keep it if its type is in types
 * (a jansson type mask). Surrounding whitespace is allowed (documented for
 * StringToNumber/Boolean/Null). Anything else is undefined. */
static int parse_as(struct bi_call *c, unsigned types)
{
    if (!json_is_string(c->a[0]))
        return 0;
    json_t *v = doc_parse(json_string_value(c->a[0]), json_string_length(c->a[0]), NULL);
    if (v && !(types & (1u << json_typeof(v))))
        json_decref(v), v = NULL;
    *c->out = v;
    return 0;
}

int bi_stringtoarray(struct bi_call *c)
{
    return parse_as(c, 1u << JSON_ARRAY);
}

int bi_stringtoobject(struct bi_call *c)
{
    return parse_as(c, 1u << JSON_OBJECT);
}

int bi_stringtoboolean(struct bi_call *c)
{
    return parse_as(c, 1u << JSON_TRUE | 1u << JSON_FALSE);
}

int bi_stringtonull(struct bi_call *c)
{
    return parse_as(c, 1u << JSON_NULL);
}

int bi_stringtonumber(struct bi_call *c)
{
    return parse_as(c, 1u << JSON_REAL | 1u << JSON_INTEGER);
}

/* ---- RegexMatch ---- */

/* The last compiled pattern of this thread: queries test one pattern
 * against many documents. Freed when the thread ends (a thread-specific
 * key's destructor), so no pattern outlives its thread. */
struct regex_cache {
    char *pattern;
    size_t len;
    uint32_t options;
    pcre2_code *code;
};

static pthread_key_t regex_key;
static pthread_once_t regex_once = PTHREAD_ONCE_INIT;

static void regex_cache_free(void *p)
{
    struct regex_cache *rc = p;
    pcre2_code_free(rc->code);
    free(rc->pattern);
    free(rc);
}

static void regex_key_init(void)
{
    pthread_key_create(&regex_key, regex_cache_free);
}

static struct regex_cache *regex_cache_get(void)
{
    pthread_once(&regex_once, regex_key_init);
    struct regex_cache *rc = pthread_getspecific(regex_key);
    if (!rc && (rc = calloc(1, sizeof *rc)) != NULL && pthread_setspecific(regex_key, rc) != 0) {
        free(rc);
        rc = NULL;
    }
    return rc;
}

static pcre2_code *regex_compile(const char *pat, size_t len, uint32_t options, struct bi_call *c)
{
    struct regex_cache *cache = regex_cache_get();
    if (!cache) {
        bi_oom(c);
        return NULL;
    }
    if (cache->code && cache->len == len && cache->options == options &&
        memcmp(cache->pattern, pat, len) == 0)
        return cache->code;
    int code;
    PCRE2_SIZE at;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, len, options | PCRE2_AUTO_CALLOUT, &code, &at, NULL);
    if (!re && code == PCRE2_ERROR_PATTERN_TOO_LARGE) /* the callouts make it too big */
        re = pcre2_compile((PCRE2_SPTR)pat, len, options, &code, &at, NULL);
    /* Compiled to machine code (where PCRE2 can) matching is 10-100 times
     * faster, which bounds hostile patterns' cost far more than the match
     * limit alone (which does not count every step); a failed JIT compile
     * leaves the interpreter. */
    if (re)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if (!re) {
        PCRE2_UCHAR why[120];
        pcre2_get_error_message(code, why, sizeof why);
        char msg[sizeof c->err->msg];
        snprintf(msg, sizeof msg,
                 "The regular expression of RegexMatch is invalid: %s (at offset "
                 "%zu of the "
                 "pattern).",
                 (const char *)why, (size_t)at);
        bi_fail(c, 400, msg);
        return NULL;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        pcre2_code_free(re);
        bi_oom(c);
        return NULL;
    }
    memcpy(copy, pat, len);
    pcre2_code_free(cache->code);
    free(cache->pattern);
    cache->pattern = copy;
    cache->len = len;
    cache->options = options;
    cache->code = re;
    return re;
}

struct regex_clock {
    struct timespec end;
    unsigned long calls;
};

/* Automatic callout: every 256th, the time budget of the match. */
static int regex_callout(pcre2_callout_block *b, void *arg)
{
    (void)b;
    struct regex_clock *k = arg;
    if ((++k->calls & 255) != 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > k->end.tv_sec ||
                   (now.tv_sec == k->end.tv_sec && now.tv_nsec > k->end.tv_nsec)
               ? REGEX_OUT_OF_TIME
               : 0;
}

/* RegexMatch(s, pattern [, modifiers]): modifiers from "imsx"; any other
 * modifier character is undefined (documented). A pattern that does not
 * compile is a 400 error (the documentation says undefined; the engine
 * reports it so the mistake is visible). A match that exceeds the
 * backtracking budget or REGEX_SECONDS is undefined. */
int bi_regexmatch(struct bi_call *c)
{
    json_t *mods = bi_arg(c, 2);
    if (!json_is_string(c->a[0]) || !json_is_string(c->a[1]) || (c->n > 2 && !json_is_string(mods)))
        return 0;
    uint32_t options = PCRE2_UTF;
    for (size_t i = 0; mods && i < json_string_length(mods); i++) {
        switch (json_string_value(mods)[i]) {
        case 'i':
            options |= PCRE2_CASELESS;
            break;
        case 'm':
            options |= PCRE2_MULTILINE;
            break;
        case 's':
            options |= PCRE2_DOTALL;
            break;
        case 'x':
            options |= PCRE2_EXTENDED;
            break;
        default:
            return 0;
        }
    }
    pcre2_code *re =
        regex_compile(json_string_value(c->a[1]), json_string_length(c->a[1]), options, c);
    if (!re)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!md || !mc) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        return bi_oom(c);
    }
    pcre2_set_match_limit(mc, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, REGEX_DEPTH_LIMIT);
    struct regex_clock k = {.calls = 0};
    clock_gettime(CLOCK_MONOTONIC, &k.end);
    k.end.tv_sec += (time_t)REGEX_SECONDS;
    pcre2_set_callout(mc, regex_callout, &k);
    int r = pcre2_match(re, (PCRE2_SPTR)json_string_value(c->a[0]), json_string_length(c->a[0]), 0,
                        0, md, mc);
    if (r == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its frames on the heap */
        r = pcre2_match(re, (PCRE2_SPTR)json_string_value(c->a[0]), json_string_length(c->a[0]), 0,
                        PCRE2_NO_JIT, md, mc);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    if (r >= 0)
        return bi_bool(c, 1);
    if (r == PCRE2_ERROR_NOMATCH)
        return bi_bool(c, 0);
    return 0;
}
