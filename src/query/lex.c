/*
 * lex.c — tokens of the Cosmos NoSQL query language, the parse arena and
 * error messages with line and column.
 *
 * Tokens: identifiers [A-Za-z_][A-Za-z0-9_]* (keywords case-insensitive),
 * numbers (123, 1.5, .5, 1e-3, 0x1F), strings in '...' or "..." with the JSON
 * escapes plus \' (\uXXXX surrogate pairs combine; a lone surrogate is an
 * error), parameters @name, punctuation. Comments: -- to end of line.
 * The text was checked for UTF-8 before the first token.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/qint.h"

/* ---- arena ---- */

struct q_block {
    struct q_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *q_arena_alloc(struct q_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct q_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void q_arena_free(struct q_arena *a)
{
    while (a->head) {
        struct q_block *b = a->head;
        a->head = b->next;
        free(b);
    }
}

/* ---- errors ---- */

void q_seterr(struct q_error *err, int status, const char *text, size_t len, long pos,
              const char *fmt, ...)
{
    if (!err)
        return;
    err->status = status;
    err->pos = pos >= 0 && pos <= (long)len ? (int)pos : -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (err->pos < 0 || n < 0 || (size_t)n >= sizeof err->msg)
        return;
    int line = 1, col = 1;
    for (long i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, " (at line %d, column %d)", line, col);
}

_Noreturn void q_fail(struct q_parser *p, size_t pos, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    q_seterr(p->err, 400, p->text, p->len, (long)pos, "%s", msg);
    longjmp(p->fail, 1);
}

static _Noreturn void fail_oom(struct q_parser *p)
{
    q_seterr(p->err, 500, p->text, p->len, -1, "Out of memory while parsing the query.");
    longjmp(p->fail, 1);
}

void *q_palloc(struct q_parser *p, size_t n)
{
    void *m = q_arena_alloc(&p->q->arena, n);
    if (!m)
        fail_oom(p);
    return m;
}

json_t *q_keep(struct q_parser *p, json_t *v)
{
    if (!v || json_array_append_new(p->q->consts, v) != 0)
        fail_oom(p);
    return v;
}

/* ---- tokens ---- */

static const struct {
    const char *word;
    int kw;
} keywords[] = {
    {"AND", KW_AND},
    {"ARRAY", KW_ARRAY},
    {"AS", KW_AS},
    {"ASC", KW_ASC},
    {"BETWEEN", KW_BETWEEN},
    {"BY", KW_BY},
    {"DESC", KW_DESC},
    {"DISTINCT", KW_DISTINCT},
    {"ESCAPE", KW_ESCAPE},
    {"EXISTS", KW_EXISTS},
    {"FALSE", KW_FALSE},
    {"FROM", KW_FROM},
    {"GROUP", KW_GROUP},
    {"IN", KW_IN},
    {"JOIN", KW_JOIN},
    {"LEFT", KW_LEFT},
    {"LIKE", KW_LIKE},
    {"LIMIT", KW_LIMIT},
    {"NOT", KW_NOT},
    {"NULL", KW_NULL},
    {"OFFSET", KW_OFFSET},
    {"OR", KW_OR},
    {"ORDER", KW_ORDER},
    {"RIGHT", KW_RIGHT},
    {"SELECT", KW_SELECT},
    {"TOP", KW_TOP},
    {"TRUE", KW_TRUE},
    {"UDF", KW_UDF},
    {"UNDEFINED", KW_UNDEFINED},
    {"VALUE", KW_VALUE},
    {"WHERE", KW_WHERE},
    {"CASE", KW_CASE},
    {"CAST", KW_CAST},
    {"CONVERT", KW_CONVERT},
    {"CROSS", KW_CROSS},
    {"ELSE", KW_ELSE},
    {"END", KW_END},
    {"FOR", KW_FOR},
    {"HAVING", KW_HAVING},
    {"INNER", KW_INNER},
    {"INSERT", KW_INSERT},
    {"INTO", KW_INTO},
    {"IS", KW_IS},
    {"ON", KW_ON},
    {"OUTER", KW_OUTER},
    {"OVER", KW_OVER},
    {"SET", KW_SET},
    {"THEN", KW_THEN},
    {"UPDATE", KW_UPDATE},
    {"WHEN", KW_WHEN},
    {"WITH", KW_WITH},
};

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Four hex digits at s[i..i+4), or -1. */
static long hex4(const char *s, size_t i, size_t len)
{
    if (i + 4 > len)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A quoted string starting at s[i] (the quote); fills out. */
static void lex_string(struct q_parser *p, size_t i, struct q_token *out)
{
    const char *s = p->text;
    char quote = s[i];
    size_t j = i + 1;
    /* decoded text is never longer than the source */
    size_t end = j;
    while (end < p->len && s[end] != quote) {
        if (s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        q_fail(p, i, "Syntax error, unclosed quotation mark.");
    out->kind = T_STR;
    out->len = end + 1 - i;
    if (p->skim)
        return;
    char *o = q_palloc(p, end - j + 1);
    size_t n = 0;
    while (j < end) {
        char c = s[j];
        if (c != '\\') {
            o[n++] = c;
            j++;
            continue;
        }
        size_t esc = j;
        c = s[j + 1];
        j += 2;
        switch (c) {
        case '\'':
        case '"':
        case '\\':
        case '/':
            o[n++] = c;
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u': {
            long cp = hex4(s, j, end);
            if (cp < 0)
                q_fail(p, esc, "Syntax error, invalid unicode escape sequence.");
            j += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = j + 1 < end && s[j] == '\\' && s[j + 1] == 'u' ? hex4(s, j + 2, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    q_fail(p, esc, "Syntax error, invalid unicode escape sequence.");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                j += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                q_fail(p, esc, "Syntax error, invalid unicode escape sequence.");
            }
            n += put_utf8(o + n, (unsigned)cp);
            break;
        }
        default:
            q_fail(p, esc, "Syntax error, invalid escape sequence '\\%c'.",
                   (unsigned char)c < 0x80 && c >= 0x20 ? c : '?');
        }
    }
    o[n] = 0;
    out->str = o;
    out->slen = n;
}

/* 0x followed by hex digits (the constants page's hexadecimal_literal). */
static void lex_hex(struct q_parser *p, size_t i, struct q_token *out)
{
    const char *s = p->text;
    size_t j = i + 2;
    double d = 0;
    while (j < p->len && hexval(s[j]) >= 0)
        d = d * 16 + hexval(s[j++]);
    if (j < p->len && is_ident_char(s[j]))
        q_fail(p, i, "Syntax error, incorrect syntax near '%.*s'.", (int)(j - i + 1), s + i);
    if (!isfinite(d))
        q_fail(p, i, "The number '%.*s' is out of range.", (int)(j - i > 40 ? 40 : j - i), s + i);
    out->kind = T_NUM;
    out->num = d;
    out->len = j - i;
}

static void lex_number(struct q_parser *p, size_t i, struct q_token *out)
{
    const char *s = p->text;
    size_t j = i;
    if (s[i] == '0' && i + 2 < p->len && (s[i + 1] == 'x' || s[i + 1] == 'X') &&
        hexval(s[i + 2]) >= 0) {
        lex_hex(p, i, out);
        return;
    }
    while (j < p->len && s[j] >= '0' && s[j] <= '9')
        j++;
    if (j < p->len && s[j] == '.') {
        j++;
        while (j < p->len && s[j] >= '0' && s[j] <= '9')
            j++;
    }
    if (j < p->len && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < p->len && (s[k] == '+' || s[k] == '-'))
            k++;
        if (k < p->len && s[k] >= '0' && s[k] <= '9') {
            while (k < p->len && s[k] >= '0' && s[k] <= '9')
                k++;
            j = k;
        }
    }
    if (j < p->len && is_ident_char(s[j]))
        q_fail(p, i, "Syntax error, incorrect syntax near '%.*s'.", (int)(j - i + 1), s + i);
    char buf[64];
    size_t n = j - i;
    double d;
    if (n < sizeof buf) {
        memcpy(buf, s + i, n);
        buf[n] = 0;
        d = strtod(buf, NULL);
    } else {
        char *tmp = q_palloc(p, n + 1);
        memcpy(tmp, s + i, n);
        d = strtod(tmp, NULL);
    }
    if (!isfinite(d))
        q_fail(p, i, "The number '%.*s' is out of range.", (int)(n > 40 ? 40 : n), s + i);
    out->kind = T_NUM;
    out->num = d;
    out->len = n;
}

void q_lex(struct q_parser *p, size_t at, struct q_token *out)
{
    const char *s = p->text;
    size_t i = at;
    for (;;) {
        while (i < p->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                              s[i] == '\f' || s[i] == '\v'))
            i++;
        if (i + 1 < p->len && s[i] == '-' && s[i + 1] == '-') {
            while (i < p->len && s[i] != '\n')
                i++;
            continue;
        }
        break;
    }
    memset(out, 0, sizeof *out);
    out->pos = i;
    if (i >= p->len) {
        out->kind = T_EOF;
        return;
    }
    char c = s[i];
    char c1 = i + 1 < p->len ? s[i + 1] : 0;
    char c2 = i + 2 < p->len ? s[i + 2] : 0;
    if (is_ident_start(c) || c == '@') {
        size_t j = c == '@' ? i + 1 : i;
        size_t start = j;
        while (j < p->len && is_ident_char(s[j]))
            j++;
        if (j == start)
            q_fail(p, i, "Syntax error, incorrect syntax near '@'.");
        if (j - start > Q_MAX_IDENT)
            q_fail(p, i, "The identifier is longer than %d bytes.", Q_MAX_IDENT);
        out->kind = c == '@' ? T_PARAM : T_IDENT;
        out->len = j - i;
        if (!p->skim) {
            out->str = q_palloc(p, j - i + 1);
            memcpy(out->str, s + i, j - i);
            out->slen = j - i;
        }
        if (c != '@') {
            for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
                if (strlen(keywords[k].word) == j - i &&
                    strncasecmp(keywords[k].word, s + i, j - i) == 0) {
                    out->kw = keywords[k].kw;
                    break;
                }
            }
        }
        return;
    }
    if ((c >= '0' && c <= '9') || (c == '.' && c1 >= '0' && c1 <= '9')) {
        lex_number(p, i, out);
        return;
    }
    if (c == '\'' || c == '"') {
        lex_string(p, i, out);
        return;
    }
    out->len = 2;
    if (c == '<' && c1 == '=') {
        out->kind = T_LE;
    } else if (c == '>' && c1 == '=') {
        out->kind = T_GE;
    } else if ((c == '!' && c1 == '=') || (c == '<' && c1 == '>')) {
        out->kind = T_NE;
    } else if (c == '<' && c1 == '<') {
        out->kind = T_SHL;
    } else if (c == '>' && c1 == '>' && c2 == '>') {
        out->kind = T_USHR;
        out->len = 3;
    } else if (c == '>' && c1 == '>') {
        out->kind = T_SHR;
    } else if (c == '|' && c1 == '|') {
        out->kind = T_CONCAT;
    } else if (c == '?' && c1 == '?') {
        out->kind = T_COALESCE;
    } else if (c && strchr("()[]{},.:?*/%+-<>=~&|^", c)) {
        out->kind = (unsigned char)c;
        out->len = 1;
    } else {
        size_t n = 1;
        while (i + n < p->len && ((unsigned char)s[i + n] & 0xC0) == 0x80)
            n++;
        q_fail(p, i, "Syntax error, incorrect syntax near '%.*s'.", (int)n, s + i);
    }
}
