/*
 * path.c — request paths: normalising, percent-decoding, and the resource
 * type and link a signature covers (COSMOS-REST.md, "Authentication").
 *
 * The path arrives percent-encoded; each segment is decoded on its own
 * ("+" stays "+"). Empty segments are dropped, so "//dbs/d/" is "dbs/d".
 */
#include <stdlib.h>
#include <string.h>

#include "server/srv.h"

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

char *srv_pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
            (l = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return out;
}

int srv_path_split(const char *url, char **segs, int max, int *nseg)
{
    *nseg = 0;
    const char *p = url ? url : "";
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p || *p == '?')
            break;
        const char *e = p;
        while (*e && *e != '/' && *e != '?')
            e++;
        /* "%00" would end the decoded C string early: another resource
         * than the one the client named (and signed). */
        int nul = 0;
        for (const char *q = p; q + 2 < e && !nul; q++)
            nul = q[0] == '%' && q[1] == '0' && q[2] == '0';
        char *seg = *nseg == max || nul ? NULL : srv_pct_decode(p, (size_t)(e - p));
        if (!seg) {
            /* Too many segments, a NUL or no memory: give back what was decoded. */
            for (int i = 0; i < *nseg; i++) {
                free(segs[i]);
                segs[i] = NULL;
            }
            *nseg = 0;
            return -1;
        }
        segs[(*nseg)++] = seg;
        p = e;
        if (*p == '?')
            break;
    }
    return 0;
}

void srv_resource_of(char *const *segs, int nseg, const char **type, char **link)
{
    int nlink = nseg % 2 ? nseg - 1 : nseg;
    *type = nseg == 0 ? "" : nseg % 2 ? segs[nseg - 1] : segs[nseg - 2];
    size_t len = 1;
    for (int i = 0; i < nlink; i++)
        len += strlen(segs[i]) + 1;
    char *l = malloc(len);
    if (!l) {
        *link = NULL;
        return;
    }
    l[0] = 0;
    size_t o = 0;
    for (int i = 0; i < nlink; i++) {
        size_t n = strlen(segs[i]);
        if (i)
            l[o++] = '/';
        memcpy(l + o, segs[i], n);
        o += n;
        l[o] = 0;
    }
    *link = l;
}
