/*
 * ixpolicy.c — a container's indexing policy, parsed: which document paths
 * the index holds, and its composite indexes; and the index keys of one
 * document under it.
 *
 * Paths (Cosmos syntax): "/" segments, each a property name (quoted with
 * "..." when it has special characters) or "[]" (any array element); the
 * last segment is "?" (the value at exactly this path) or "*" (this path
 * and everything under it). A document node is indexed when the most
 * specific rule that matches it is an included one; "more specific" is more
 * segments before the terminal, and "?" over "*" at equal length; an
 * excluded rule wins a tie with an included one.
 *
 * Index key of a node (the ix table's k column):
 *
 *   path bytes | 0x00 | value key (qval.h: q_key_put; an empty array or
 *                                   object as its type byte only)
 *   path bytes: per segment  0x20 name 0x00 0x01   (name: 0x00 -> 0x00 0xFF)
 *                            0x21                   ([] : an array element)
 *
 * Composite entry of composite index i (one per document):
 *
 *   0xF0 | i | component keys (q_key_put, q_key_put_desc for DESC
 *             components; undefined is 0x00, or 0xFF when DESC)
 *
 * Invariants:
 *   1. Keys are self-delimiting, and memcmp order within one path (or one
 *      composite index) is q_cmp order of the scalar values.
 *   2. A policy is immutable once parsed; holders count references.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/qval.h"
#include "server/srv.h"

enum { T_SCALAR, T_ALL };

struct rule {
    json_t *segs; /* strings; "[]" marks an array element */
    int term;     /* T_SCALAR ("?") or T_ALL ("*") */
    int include;
};

struct comp {
    json_t *paths; /* array of parsed paths */
    int desc[IX_MAX_COMP];
    size_t n;
};

struct ixpol {
    atomic_int refs;
    int mode; /* IX_CONSISTENT or IX_NONE */
    int automatic;
    int all; /* includes the root path and excludes nothing but _etag */
    struct rule *rules;
    size_t nrules;
    struct comp *comps;
    size_t ncomps;
    char *canon; /* what the index was built for */
};

void ixpol_put(struct ixpol *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (size_t i = 0; i < p->nrules; i++)
        json_decref(p->rules[i].segs);
    for (size_t i = 0; i < p->ncomps; i++)
        json_decref(p->comps[i].paths);
    free(p->rules);
    free(p->comps);
    free(p->canon);
    free(p);
}

struct ixpol *ixpol_hold(struct ixpol *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

int ixpol_mode(const struct ixpol *p)
{
    return p->mode;
}

int ixpol_automatic(const struct ixpol *p)
{
    return p->automatic;
}

const char *ixpol_canon(const struct ixpol *p)
{
    return p->canon;
}

/* Parse "/a/\"b c\"/[]/?" into segments and a terminal. NULL if invalid. */
static json_t *parse_rule_path(const char *s, int *term)
{
    if (!s || s[0] != '/')
        return NULL;
    json_t *segs = json_array();
    const char *p = s;
    while (*p == '/') {
        p++;
        if (*p == '?' && p[1] == 0) {
            *term = T_SCALAR;
            return segs;
        }
        if (*p == '*' && p[1] == 0) {
            *term = T_ALL;
            return segs;
        }
        char name[256];
        size_t n = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"' && n + 1 < sizeof name)
                name[n++] = *p++;
            if (*p != '"')
                break;
            p++;
        } else {
            while (*p && *p != '/' && n + 1 < sizeof name)
                name[n++] = *p++;
        }
        if (n == 0 || (*p && *p != '/'))
            break;
        name[n] = 0;
        if (strcmp(name, "*") == 0 || strcmp(name, "?") == 0)
            break;
        json_array_append_new(segs, json_string(name));
    }
    json_decref(segs);
    return NULL;
}

static int add_rules(struct ixpol *p, const json_t *list, int include, char *msg, size_t n)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *path = json_string_value(json_object_get(json_array_get(list, i), "path"));
        int term = 0;
        json_t *segs = parse_rule_path(path, &term);
        if (!segs) {
            snprintf(msg, n,
                     "The indexing path '%.100s' could not be accepted. Please ensure "
                     "that the path is a valid path; a path ends with /? or /*.",
                     path ? path : "");
            return 400;
        }
        struct rule *r = realloc(p->rules, (p->nrules + 1) * sizeof *r);
        if (!r) {
            json_decref(segs);
            snprintf(msg, n, "Out of memory.");
            return 500;
        }
        p->rules = r;
        p->rules[p->nrules++] = (struct rule){segs, term, include};
    }
    return 0;
}

static int add_composites(struct ixpol *p, const json_t *list, char *msg, size_t n)
{
    if (!list)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > 64)
        goto bad;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *ci = json_array_get(list, i);
        if (!json_is_array(ci) || json_array_size(ci) < 2 || json_array_size(ci) > IX_MAX_COMP)
            goto bad;
        struct comp c = {.paths = json_array(), .n = json_array_size(ci)};
        for (size_t j = 0; j < c.n; j++) {
            json_t *e = json_array_get(ci, j);
            json_t *path = doc_pk_path_parse(json_string_value(json_object_get(e, "path")));
            const char *order = json_string_value(json_object_get(e, "order"));
            if (!path || (order && strcasecmp(order, "ascending") != 0 &&
                          strcasecmp(order, "descending") != 0)) {
                json_decref(path);
                json_decref(c.paths);
                goto bad;
            }
            json_array_append_new(c.paths, path);
            c.desc[j] = order && strcasecmp(order, "descending") == 0;
        }
        struct comp *a = realloc(p->comps, (p->ncomps + 1) * sizeof *a);
        if (!a) {
            json_decref(c.paths);
            snprintf(msg, n, "Out of memory.");
            return 500;
        }
        p->comps = a;
        p->comps[p->ncomps++] = c;
    }
    return 0;
bad:
    snprintf(msg, n,
             "The composite index definition is invalid: each composite index lists 2 to "
             "%d paths, each with an order of \"ascending\" or \"descending\".",
             IX_MAX_COMP);
    return 400;
}

int ixpol_parse(const json_t *policy, struct ixpol **out, char *msg, size_t n)
{
    *out = NULL;
    struct ixpol *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(msg, n, "Out of memory.");
        return 500;
    }
    atomic_init(&p->refs, 1);
    const char *mode = json_string_value(json_object_get(policy, "indexingMode"));
    p->mode = mode && strcasecmp(mode, "none") == 0 ? IX_NONE : IX_CONSISTENT;
    if (mode && p->mode == IX_CONSISTENT && strcasecmp(mode, "consistent") != 0 &&
        strcasecmp(mode, "lazy") != 0) {
        snprintf(msg, n, "The indexing mode '%.40s' is invalid: use consistent or none.", mode);
        ixpol_put(p);
        return 400;
    }
    json_t *a = json_object_get(policy, "automatic");
    p->automatic = !json_is_false(a);
    const json_t *inc = json_object_get(policy, "includedPaths");
    const json_t *exc = json_object_get(policy, "excludedPaths");
    int st = 0;
    if ((inc && !json_is_array(inc)) || (exc && !json_is_array(exc))) {
        snprintf(msg, n, "includedPaths and excludedPaths must be arrays.");
        st = 400;
    }
    if (!st)
        st = add_rules(p, inc, 1, msg, n);
    if (!st)
        st = add_rules(p, exc, 0, msg, n);
    if (!st)
        st = add_composites(p, json_object_get(policy, "compositeIndexes"), msg, n);
    if (st) {
        ixpol_put(p);
        return st;
    }
    int root = 0, others = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        struct rule *r = &p->rules[i];
        int is_root = json_array_size(r->segs) == 0 && r->term == T_ALL;
        root |= is_root;
        if (p->mode == IX_CONSISTENT && !is_root &&
            !(!r->include && json_array_size(r->segs) == 1 && r->term == T_SCALAR &&
              strcmp(json_string_value(json_array_get(r->segs, 0)), "_etag") == 0))
            others = 1;
        if (is_root && !r->include)
            others = 1;
    }
    if (p->mode == IX_CONSISTENT && !root) {
        snprintf(msg, n,
                 "The special mandatory indexing path \"/\" is not provided in any of the "
                 "path type sets. Please provide this path in one of the sets.");
        ixpol_put(p);
        return 400;
    }
    p->all = root && !others;
    json_t *c =
        json_pack("{s:s,s:O?,s:O?,s:O?}", "mode", p->mode == IX_NONE ? "none" : "consistent", "inc",
                  inc, "exc", exc, "comp", json_object_get(policy, "compositeIndexes"));
    p->canon = c ? doc_dump(c, NULL) : NULL;
    json_decref(c);
    if (!p->canon) {
        ixpol_put(p);
        snprintf(msg, n, "Out of memory.");
        return 500;
    }
    *out = p;
    return 0;
}

/* ---- which nodes are indexed ---- */

/* Whether rule r matches the node at path (names; "[]" for elements). */
static int rule_matches(const struct rule *r, const char *const *path, size_t depth)
{
    size_t n = json_array_size(r->segs);
    if (n > depth || (r->term == T_SCALAR && n != depth))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(json_array_get(r->segs, i)), path[i]) != 0)
            return 0;
    return 1;
}

static int node_indexed(const struct ixpol *p, const char *const *path, size_t depth)
{
    if (p->mode == IX_NONE)
        return 0;
    if (p->all)
        return !(depth == 1 && strcmp(path[0], "_etag") == 0);
    const struct rule *best = NULL;
    for (size_t i = 0; i < p->nrules; i++) {
        const struct rule *r = &p->rules[i];
        if (!rule_matches(r, path, depth))
            continue;
        if (!best) {
            best = r;
            continue;
        }
        size_t bl = json_array_size(best->segs), rl = json_array_size(r->segs);
        if (rl > bl || (rl == bl && r->term == T_SCALAR && best->term == T_ALL) ||
            (rl == bl && r->term == best->term && !r->include))
            best = r;
    }
    return best && best->include;
}

int ixpol_path_indexed(const struct ixpol *p, const json_t *segs)
{
    const char *path[IX_MAX_DEPTH];
    size_t d = json_array_size(segs);
    if (d == 0 || d > IX_MAX_DEPTH)
        return 0;
    for (size_t i = 0; i < d; i++) {
        json_t *s = json_array_get(segs, i);
        if (json_is_null(s))
            path[i] = "[]";
        else if (json_is_string(s))
            path[i] = json_string_value(s);
        else
            return 0; /* array positions are not in the index */
    }
    return node_indexed(p, path, d);
}

int ixpol_composite_find(const struct ixpol *p, const json_t *const *paths, const int *desc,
                         size_t n, int *reverse)
{
    for (size_t i = 0; p->mode == IX_CONSISTENT && i < p->ncomps; i++) {
        const struct comp *c = &p->comps[i];
        if (c->n != n)
            continue;
        int same = 1, inverted = 1;
        for (size_t j = 0; j < n; j++) {
            if (!doc_equal(json_array_get(c->paths, j), paths[j])) {
                same = inverted = 0;
                break;
            }
            same &= c->desc[j] == desc[j];
            inverted &= c->desc[j] != desc[j];
        }
        if (same || inverted) {
            *reverse = !same;
            return (int)i;
        }
    }
    return -1;
}

/* ---- keys ---- */

/* The index holds at most IX_STR_MAX bytes of a string: a longer one is
 * keyed by that prefix (cut at a character boundary) and a terminator of
 * 0x00 0x02 in place of 0x00 0x00, which sorts it after every string that
 * is a prefix of it. Strings sharing their first IX_STR_MAX bytes share a
 * key; the index still narrows the candidates and the executor decides. */
int ix_value_key(struct doc_buf *b, const json_t *v, int desc, int *truncated)
{
    if (truncated)
        *truncated = 0;
    if (!json_is_string(v) || json_string_length(v) <= IX_STR_MAX)
        return desc ? q_key_put_desc(b, v) : q_key_put(b, v);
    const char *t = json_string_value(v);
    size_t n = IX_STR_MAX;
    while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
        n--; /* not inside a UTF-8 sequence */
    json_t *cut = json_stringn_nocheck(t, n);
    if (!cut)
        return AT_ENOMEM;
    size_t at = b->len;
    int rc = q_key_put(b, cut);
    json_decref(cut);
    if (rc)
        return rc;
    b->p[b->len - 1] = 0x02;
    if (desc)
        for (size_t i = at; i < b->len; i++)
            b->p[i] = (char)~(unsigned char)b->p[i];
    if (truncated)
        *truncated = 1;
    return 0;
}

/* One property segment of a key's path: 0x20, the name (0x00 as 0x00
 * 0xFF), 0x00 0x01. */
static int put_name(struct doc_buf *b, const char *v, size_t len)
{
    int rc = doc_buf_put(b, "\x20", 1);
    for (size_t k = 0; !rc && k < len; k++)
        rc = v[k] ? doc_buf_put(b, v + k, 1) : doc_buf_put(b, "\x00\xff", 2);
    return rc ? rc : doc_buf_put(b, "\x00\x01", 2);
}

int ix_path_prefix(struct doc_buf *b, const json_t *segs)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < json_array_size(segs); i++) {
        json_t *s = json_array_get(segs, i);
        if (json_is_null(s)) {
            rc = doc_buf_put(b, "\x21", 1);
            continue;
        }
        if (!json_is_string(s))
            return AT_EINVAL;
        rc = put_name(b, json_string_value(s), json_string_length(s));
    }
    return rc ? rc : doc_buf_put(b, "\x00", 1);
}

struct walk {
    const struct ixpol *p;
    struct ixkeys *out;
    const char *path[IX_MAX_DEPTH];
    struct doc_buf prefix; /* path bytes of the current node */
    int rc;
};

/* Start a key: make room for one more offset. */
static int keys_room(struct ixkeys *k)
{
    if (k->n < k->cap)
        return 0;
    size_t nc = k->cap ? k->cap * 2 : 32;
    size_t *o = realloc(k->off, (nc + 1) * sizeof *o);
    if (!o)
        return AT_ENOMEM;
    k->off = o;
    k->cap = nc;
    if (k->n == 0)
        k->off[0] = 0;
    return 0;
}

/* The key being built at the end of k->buf is complete. */
static void keys_end(struct ixkeys *k)
{
    k->off[++k->n] = k->buf.len;
}

static void walk(struct walk *w, const json_t *v, size_t depth)
{
    if (w->rc || depth > IX_MAX_DEPTH)
        return;
    size_t mark = w->prefix.len;
    int container =
        json_is_object(v) ? json_object_size(v) > 0 : json_is_array(v) && json_array_size(v) > 0;
    /* an array or object with members is found through them (their keys
     * extend its path); only an empty one needs an entry of its own */
    if (depth > 0 && !container && node_indexed(w->p, w->path, depth)) {
        if (keys_room(w->out) || doc_buf_put(&w->out->buf, w->prefix.p, w->prefix.len) ||
            doc_buf_put(&w->out->buf, "\x00", 1) || ix_value_key(&w->out->buf, v, 0, NULL))
            w->rc = AT_ENOMEM;
        else
            keys_end(w->out);
    }
    if (depth == IX_MAX_DEPTH)
        return;
    if (json_is_object(v)) {
        const char *name;
        json_t *child;
        json_object_foreach((json_t *)v, name, child)
        {
            if (depth == 0 && name[0] == '_' &&
                (strcmp(name, "_rid") == 0 || strcmp(name, "_self") == 0 ||
                 strcmp(name, "_etag") == 0 || strcmp(name, "_attachments") == 0))
                continue; /* system properties other than _ts */
            w->path[depth] = name;
            if (put_name(&w->prefix, name, strlen(name))) {
                w->rc = AT_ENOMEM;
                return;
            }
            walk(w, child, depth + 1);
            w->prefix.len = mark;
        }
    } else if (json_is_array(v)) {
        w->path[depth] = "[]";
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (doc_buf_put(&w->prefix, "\x21", 1)) {
                w->rc = AT_ENOMEM;
                return;
            }
            walk(w, json_array_get(v, i), depth + 1);
            w->prefix.len = mark;
        }
    }
}

static int comp_key(const struct comp *c, int i, const json_t *doc, struct ixkeys *out)
{
    struct doc_buf *b = &out->buf;
    unsigned char head[2] = {0xF0, (unsigned char)i};
    int rc = keys_room(out) || doc_buf_put(b, (const char *)head, 2);
    for (size_t j = 0; !rc && j < c->n; j++) {
        const json_t *v = doc_get_path(doc, json_array_get(c->paths, j));
        if (!v)
            rc = doc_buf_put(b, c->desc[j] ? "\xff" : "\x00", 1);
        else
            rc = ix_value_key(b, v, c->desc[j], NULL);
    }
    if (rc)
        return AT_ENOMEM;
    keys_end(out);
    return 0;
}

static int cmp_keys(const struct ixkeys *k, size_t i, size_t j)
{
    size_t li = k->off[i + 1] - k->off[i], lj = k->off[j + 1] - k->off[j];
    int c = memcmp(k->buf.p + k->off[i], k->buf.p + k->off[j], li < lj ? li : lj);
    return c ? c : (li > lj) - (li < lj);
}

static int cmp_idx(const void *a, const void *b, void *k)
{
    return cmp_keys(k, *(const size_t *)a, *(const size_t *)b);
}

void ixkeys_free(struct ixkeys *k)
{
    doc_buf_free(&k->buf);
    free(k->off);
    free(k->order);
    memset(k, 0, sizeof *k);
}

int ix_doc_keys(const struct ixpol *p, const json_t *doc, struct ixkeys *out)
{
    memset(out, 0, sizeof *out);
    if (p->mode == IX_NONE || !doc)
        return 0;
    struct walk w = {.p = p, .out = out};
    walk(&w, doc, 0);
    doc_buf_free(&w.prefix);
    for (size_t i = 0; !w.rc && i < p->ncomps; i++)
        w.rc = comp_key(&p->comps[i], (int)i, doc, out);
    if (!w.rc && out->n) {
        out->order = malloc(out->n * sizeof *out->order);
        if (!out->order) {
            w.rc = AT_ENOMEM;
        } else {
            for (size_t i = 0; i < out->n; i++)
                out->order[i] = i;
            qsort_r(out->order, out->n, sizeof *out->order, cmp_idx, out);
            size_t u = 1; /* an array may hold a value twice: one entry */
            for (size_t i = 1; i < out->n; i++)
                if (cmp_keys(out, out->order[u - 1], out->order[i]) != 0)
                    out->order[u++] = out->order[i];
            out->n = u;
        }
    }
    if (w.rc)
        ixkeys_free(out);
    return w.rc;
}

int ixkeys_cmp(const struct ixkeys *a, size_t i, const struct ixkeys *b, size_t j)
{
    size_t ai = a->order[i], bj = b->order[j];
    size_t la = a->off[ai + 1] - a->off[ai], lb = b->off[bj + 1] - b->off[bj];
    int c = memcmp(a->buf.p + a->off[ai], b->buf.p + b->off[bj], la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

const char *ixkeys_get(const struct ixkeys *k, size_t i, size_t *len)
{
    size_t x = k->order[i];
    *len = k->off[x + 1] - k->off[x];
    return k->buf.p + k->off[x];
}
