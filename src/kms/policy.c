/*
 * policy.c — per-key access policies (see kms.h).
 *
 * d/policy is a text file, mode 0600, one grant a line:
 *
 *   # atrest-kms access policies v1: key identity permissions
 *   cmk-1 atrestd get,wrapKey,unwrapKey
 *
 * How a change reaches the running daemon: `atrest-kms grant|revoke` takes
 * d/policy.lock (flock), reads the file, changes it, and writes it
 * atomically (tmp, fsync, rename). The daemon stats d/policy before every
 * access decision and reloads it when its inode, size or mtime changed, so
 * the next request after the rename sees the new policy; no signal, no
 * server round trip, and a half-written file is never read. A file that
 * cannot be parsed leaves the daemon with an empty policy (fail closed:
 * only admins pass) until it is fixed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys/keyfile.h"
#include "kms/kms.h"

#define POLICY_MAX   (4u << 20)
#define POLICY_LOCK  "policy.lock"
#define POLICY_HEAD  "# atrest-kms access policies v1: key identity permissions\n"

static const struct {
    const char *name;
    unsigned bit;
} PERMS[] = {{"get", KMS_PERM_GET}, {"wrapKey", KMS_PERM_WRAP}, {"unwrapKey", KMS_PERM_UNWRAP}};

int kms_perms_parse(const char *list, unsigned *out)
{
    unsigned bits = 0;
    const char *p = list;
    if (!p || !*p)
        return -1;
    while (*p) {
        size_t n = strcspn(p, ",");
        size_t i = 0;
        while (i < 3 && !(strlen(PERMS[i].name) == n && strncasecmp(PERMS[i].name, p, n) == 0))
            i++;
        if (i == 3)
            return -1;
        bits |= PERMS[i].bit;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = bits;
    return 0;
}

void kms_perms_format(unsigned perms, char *out, size_t cap)
{
    size_t pos = 0;
    out[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (perms & PERMS[i].bit)
            pos += (size_t)snprintf(out + pos, pos < cap ? cap - pos : 0, "%s%s", pos ? "," : "",
                                    PERMS[i].name);
}

static int grant_cmp(const void *a, const void *b)
{
    const struct kms_grant *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->identity, y->identity);
}

void kms_policy_free(struct kms_policy *p)
{
    free(p->g);
    p->g = NULL;
    p->n = 0;
}

int kms_policy_parse(const char *text, size_t len, struct kms_policy *p)
{
    size_t cap = 0, lineno = 0;
    const char *s = text, *end = text + len;
    p->n = 0;
    p->g = NULL;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        char line[512];
        size_t ll = (size_t)(le - s);
        lineno++;
        if (ll >= sizeof line) {
            kms_policy_free(p);
            return at_error_set(AT_EFORMAT, "policy line %zu is too long", lineno);
        }
        memcpy(line, s, ll);
        line[ll] = '\0';
        s = nl ? nl + 1 : end;
        if (ll == 0 || line[0] == '#')
            continue;
        char key[256], ident[256], perms[256], extra[2];
        struct kms_grant g;
        if (sscanf(line, "%255s %255s %255s %1s", key, ident, perms, extra) != 3 ||
            !kms_name_ok(key) || !kms_identity_ok(ident) || kms_perms_parse(perms, &g.perms) != 0) {
            kms_policy_free(p);
            return at_error_set(AT_EFORMAT, "policy line %zu is not \"key identity perms\"",
                                lineno);
        }
        kms_copy(g.key, sizeof g.key, key);
        kms_copy(g.identity, sizeof g.identity, ident);
        if (p->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct kms_grant *ng = realloc(p->g, cap * sizeof *ng);
            if (!ng) {
                kms_policy_free(p);
                return AT_ENOMEM;
            }
            p->g = ng;
        }
        p->g[p->n++] = g;
    }
    if (p->n)
        qsort(p->g, p->n, sizeof *p->g, grant_cmp);
    /* Merge duplicate lines. */
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (w && grant_cmp(&p->g[w - 1], &p->g[i]) == 0)
            p->g[w - 1].perms |= p->g[i].perms;
        else
            p->g[w++] = p->g[i];
    }
    p->n = w;
    return 0;
}

unsigned kms_policy_perms(const struct kms_policy *p, const char *key, const char *identity)
{
    struct kms_grant want;
    if (!key || !identity || strlen(key) > KMS_NAME_MAX || strlen(identity) > KMS_IDENT_MAX)
        return 0;
    kms_copy(want.key, sizeof want.key, key);
    kms_copy(want.identity, sizeof want.identity, identity);
    const struct kms_grant *g = p->n ? bsearch(&want, p->g, p->n, sizeof *p->g, grant_cmp) : NULL;
    return g ? g->perms : 0;
}

/* ---- editing (CLI, and the daemon on purge) ------------------------------ */

static int read_policy(const struct kms_dir *d, struct kms_policy *p)
{
    char *buf = malloc(POLICY_MAX);
    size_t len = 0;
    if (!buf)
        return AT_ENOMEM;
    int rc = kms_dir_read(d, KMS_POLICY_FILE, (uint8_t *)buf, POLICY_MAX, &len);
    if (rc == ENOENT) {
        p->n = 0;
        p->g = NULL;
        rc = 0;
    } else if (rc == 0) {
        rc = kms_policy_parse(buf, len, p);
    }
    free(buf);
    return rc;
}

static int write_policy(const struct kms_dir *d, const struct kms_policy *p)
{
    size_t cap = sizeof POLICY_HEAD + p->n * (KMS_NAME_MAX + KMS_IDENT_MAX + 40);
    char *buf = malloc(cap);
    if (!buf)
        return AT_ENOMEM;
    size_t pos = (size_t)snprintf(buf, cap, "%s", POLICY_HEAD);
    for (size_t i = 0; i < p->n; i++) {
        char perms[64];
        if (!p->g[i].perms)
            continue;
        kms_perms_format(p->g[i].perms, perms, sizeof perms);
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s %s %s\n", p->g[i].key,
                                p->g[i].identity, perms);
    }
    int rc = keyfile_write_atomic(d->fd, d->path, KMS_POLICY_FILE, (const uint8_t *)buf, pos, 1);
    free(buf);
    return rc;
}

static int edit(const struct kms_dir *d, const char *key, const char *identity, unsigned perms,
                int grant)
{
    struct kms_policy p;
    int lock = -1;
    int rc = kms_dir_lock(d, POLICY_LOCK, 1, &lock);
    if (rc)
        return rc;
    if ((rc = read_policy(d, &p)) != 0)
        goto out;
    int found = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct kms_grant *g = &p.g[i];
        if (strcmp(g->key, key) != 0 || (identity && strcmp(g->identity, identity) != 0))
            continue;
        found = 1;
        g->perms = grant ? g->perms | perms : perms ? g->perms & ~perms : 0;
    }
    if (!found && grant) {
        struct kms_grant *ng = realloc(p.g, (p.n + 1) * sizeof *ng);
        if (!ng) {
            rc = AT_ENOMEM;
            kms_policy_free(&p);
            goto out;
        }
        p.g = ng;
        kms_copy(p.g[p.n].key, sizeof p.g[p.n].key, key);
        kms_copy(p.g[p.n].identity, sizeof p.g[p.n].identity, identity);
        p.g[p.n++].perms = perms;
        qsort(p.g, p.n, sizeof *p.g, grant_cmp);
    }
    rc = write_policy(d, &p);
    kms_policy_free(&p);
out:
    kms_dir_unlock(lock);
    return rc;
}

int kms_policy_edit(const struct kms_dir *d, const char *key, const char *identity,
                    unsigned perms, int grant)
{
    if (!kms_name_ok(key))
        return at_error_set(AT_EINVAL, "a key name is 1 to %d of [0-9a-zA-Z-]", KMS_NAME_MAX);
    if (!kms_identity_ok(identity))
        return at_error_set(AT_EINVAL, "an identity is 1 to %d of [0-9a-zA-Z._@-]", KMS_IDENT_MAX);
    if (grant && !perms)
        return at_error_set(AT_EINVAL, "grant needs --permissions");
    return edit(d, key, identity, perms & KMS_PERM_ALL, grant);
}

int kms_policy_drop_key(const struct kms_dir *d, const char *key)
{
    return edit(d, key, NULL, 0, 0);
}

/* ---- the daemon's view ------------------------------------------------------ */

void kms_policy_view_init(struct kms_policy_view *pv)
{
    memset(pv, 0, sizeof *pv);
    pthread_mutex_init(&pv->mu, NULL);
}

void kms_policy_view_free(struct kms_policy_view *pv)
{
    kms_policy_free(&pv->p);
    pthread_mutex_destroy(&pv->mu);
}

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int same(const struct kms_policy_view *pv, const struct stat *st)
{
    return pv->have && pv->ino == (uint64_t)st->st_ino && pv->size == (uint64_t)st->st_size &&
           pv->mtime_ns == mtime_ns(st);
}

/* Caller holds pv->mu. */
static int refresh(struct kms_policy_view *pv, const struct kms_dir *d)
{
    struct stat st;
    if (fstatat(d->fd, KMS_POLICY_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return at_error_set(errno, "cannot stat %s/" KMS_POLICY_FILE, d->path);
        memset(&st, 0, sizeof st); /* no file: no grants */
        if (same(pv, &st))
            return 0;
        kms_policy_free(&pv->p);
        pv->have = 1;
        pv->ino = pv->size = 0;
        pv->mtime_ns = 0;
        return 0;
    }
    if (same(pv, &st))
        return 0;
    int fd;
    struct kms_policy np = {0};
    char *buf = NULL;
    size_t len = 0;
    int rc = kms_dir_open_private(d, KMS_POLICY_FILE, O_RDONLY, &fd);
    if (rc == 0) {
        /* Remember the file we read, not the one we stat'ed before. */
        if (fstat(fd, &st) != 0)
            rc = errno;
        else if (!(buf = malloc(POLICY_MAX)))
            rc = AT_ENOMEM;
        else if ((rc = keyfile_read_all(fd, (uint8_t *)buf, POLICY_MAX, &len)) == 0)
            rc = kms_policy_parse(buf, len, &np);
        close(fd);
        free(buf);
    }
    kms_policy_free(&pv->p);
    pv->have = rc == 0;
    if (rc)
        return rc; /* empty policy until the file is fixed */
    pv->p = np;
    pv->ino = (uint64_t)st.st_ino;
    pv->size = (uint64_t)st.st_size;
    pv->mtime_ns = mtime_ns(&st);
    return 0;
}

int kms_policy_view_refresh(struct kms_policy_view *pv, const struct kms_dir *d)
{
    pthread_mutex_lock(&pv->mu);
    int rc = refresh(pv, d);
    pthread_mutex_unlock(&pv->mu);
    return rc;
}

unsigned kms_policy_view_perms(struct kms_policy_view *pv, const char *key, const char *identity)
{
    pthread_mutex_lock(&pv->mu);
    unsigned perms = kms_policy_perms(&pv->p, key, identity);
    pthread_mutex_unlock(&pv->mu);
    return perms;
}

int kms_access_allowed(const struct kms_identity *id, unsigned perms_on_key, enum kms_action a)
{
    if (!id)
        return 0;
    if (id->admin)
        return 1;
    switch (a) {
    case KMS_ACT_GET:
        return (perms_on_key & KMS_PERM_GET) != 0;
    case KMS_ACT_WRAP:
        return (perms_on_key & KMS_PERM_WRAP) != 0;
    case KMS_ACT_UNWRAP:
        return (perms_on_key & KMS_PERM_UNWRAP) != 0;
    default:
        return 0;
    }
}
