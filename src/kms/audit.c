/*
 * audit.c — the append-only, hash-chained audit log (see kms.h).
 *
 * d/audit.log (mode 0600, opened O_APPEND) holds one JSON object a line:
 *
 *   {"seq":1,"time":"2024-05-01T12:00:00.123Z","identity":"atrestd",
 *    "key":"cmk","version":"<32 hex>","op":"unwrapKey","result":"ok",
 *    "status":200,"prev":"<64 hex>","hash":"<64 hex>"}
 *
 * (on one line). Invariants:
 *   1. seq runs 1, 2, 3, ... without gaps.
 *   2. prev is the hash of the entry before; the first entry's prev is the
 *      genesis value SHA-256("atrest-kms audit genesis v1").
 *   3. hash = SHA-256(prev as 32 raw bytes || the line's bytes from '{' up
 *      to, not including, ,"hash":"). Editing any byte of an entry breaks
 *      its hash; removing or reordering entries breaks seq and prev.
 *   4. Field values are restricted to [0-9A-Za-z._@:-] (anything else is
 *      written as '?'), so a line never needs JSON escaping and never
 *      contains key material or tokens: identities, key names, versions,
 *      operation names and results only.
 *   5. d/audit.head is rewritten (atomically) after every append:
 *        "atrest-kms-audit-head-v1 <seq> <hash hex> <mac hex>\n"
 *      mac = HMAC-SHA256(K, the text before the last space), K derived
 *      from the root key (kms_vault_audit_key). A hash chain alone cannot
 *      show that its tail was cut off; the head can, and only the holder
 *      of the root key can forge it. What it cannot show: a rollback of
 *      both files to an older consistent pair.
 *   6. Each entry is written with one write() and fdatasync()ed before the
 *      request is answered; a failed write is truncated away.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "keys/keyfile.h"
#include "kms/kms.h"

#define HEAD_PREFIX "atrest-kms-audit-head-v1"
#define HASH_SEP    ",\"hash\":\""
#define LINE_MAX_   4096

void kms_audit_genesis(uint8_t out[KMS_HASH_LEN])
{
    static const char g[] = "atrest-kms audit genesis v1";
    SHA256((const unsigned char *)g, sizeof g - 1, out);
}

static void entry_hash(const uint8_t prev[KMS_HASH_LEN], const char *text, size_t len,
                       uint8_t out[KMS_HASH_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = KMS_HASH_LEN;
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, prev, KMS_HASH_LEN) != 1 || EVP_DigestUpdate(c, text, len) != 1 ||
        EVP_DigestFinal_ex(c, out, &n) != 1)
        memset(out, 0, KMS_HASH_LEN); /* matches no stated hash: verification fails */
    EVP_MD_CTX_free(c);
}

/* ---- the head -------------------------------------------------------------- */

static size_t head_text(uint64_t seq, const uint8_t hash[KMS_HASH_LEN], char *out, size_t cap)
{
    char hex[2 * KMS_HASH_LEN + 1];
    kms_hex(hash, KMS_HASH_LEN, hex);
    return (size_t)snprintf(out, cap, HEAD_PREFIX " %" PRIu64 " %s", seq, hex);
}

static void head_mac(const uint8_t key[32], const char *text, size_t len, char hex[65])
{
    uint8_t m[32];
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)text, len, m, &n);
    kms_hex(m, 32, hex);
}

static int write_head(const struct kms_dir *d, const uint8_t key[32], uint64_t seq,
                      const uint8_t hash[KMS_HASH_LEN])
{
    char text[256], mac[65];
    size_t n = head_text(seq, hash, text, sizeof text);
    head_mac(key, text, n, mac);
    n += (size_t)snprintf(text + n, sizeof text - n, " %s\n", mac);
    return keyfile_write_atomic(d->fd, d->path, KMS_HEAD_FILE, (const uint8_t *)text, n, 1);
}

/* 0 and seq/hash from a head with a valid MAC; ENOENT; AT_EINTEGRITY. */
static int read_head(const struct kms_dir *d, const uint8_t key[32], uint64_t *seq,
                     uint8_t hash[KMS_HASH_LEN])
{
    char text[256], want[65], hex[65], mac[65];
    size_t len = 0;
    unsigned long long s = 0;
    int used = 0;
    int rc = kms_dir_read(d, KMS_HEAD_FILE, (uint8_t *)text, sizeof text - 1, &len);
    if (rc)
        return rc;
    text[len] = '\0';
    if (sscanf(text, HEAD_PREFIX " %llu %64[0-9a-f] %64[0-9a-f]\n%n", &s, hex, mac, &used) != 3 ||
        (size_t)used != len || strlen(hex) != 64 || strlen(mac) != 64)
        return AT_EINTEGRITY;
    size_t n = (size_t)(strrchr(text, ' ') - text);
    head_mac(key, text, n, want);
    if (!secmem_equal(want, mac, 64) || kms_unhex(hex, 64, hash) != 0)
        return AT_EINTEGRITY;
    *seq = s;
    return 0;
}

/* ---- verification -------------------------------------------------------------- */

static int bad(struct kms_audit_report *r, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct kms_audit_report *r, uint64_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    r->bad_line = line;
    return AT_EINTEGRITY;
}

/* Check one line (without its '\n') against the expected seq and prev;
 * on success *hash is its hash. */
static int check_line(const char *line, size_t len, uint64_t seq, const uint8_t prev[KMS_HASH_LEN],
                      uint8_t hash[KMS_HASH_LEN], struct kms_audit_report *r)
{
    const size_t seplen = strlen(HASH_SEP);
    /* Ends with ,"hash":"<64 hex>"} */
    if (len < seplen + 66 || memcmp(line + len - 66 - seplen, HASH_SEP, seplen) != 0 ||
        line[len - 2] != '"' || line[len - 1] != '}')
        return bad(r, seq, "entry at line %" PRIu64 " is not an audit entry (edited?)", seq);
    size_t plen = len - 66 - seplen;
    uint8_t stated[KMS_HASH_LEN], got_prev[KMS_HASH_LEN];
    if (kms_unhex(line + plen + seplen, 64, stated) != 0)
        return bad(r, seq, "entry at line %" PRIu64 " has a malformed hash", seq);
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    json_t *js = json_object_get(o, "seq"), *jp = json_object_get(o, "prev");
    int rc = 0;
    if (!o || !json_is_integer(js) || !json_is_string(jp) || json_string_length(jp) != 64 ||
        kms_unhex(json_string_value(jp), 64, got_prev) != 0) {
        rc = bad(r, seq, "entry at line %" PRIu64 " does not parse (edited?)", seq);
    } else if ((uint64_t)json_integer_value(js) != seq) {
        rc = bad(r, seq,
                 "line %" PRIu64 " holds entry %" PRId64 ", expected entry %" PRIu64
                 ": an entry was removed, inserted or reordered",
                 seq, (int64_t)json_integer_value(js), seq);
    } else if (memcmp(got_prev, prev, KMS_HASH_LEN) != 0) {
        rc = bad(r, seq,
                 "entry %" PRIu64 " does not chain from the entry before it (prev differs): an "
                 "entry before it was removed, replaced or reordered",
                 seq);
    } else {
        entry_hash(prev, line, plen, hash);
        if (memcmp(hash, stated, KMS_HASH_LEN) != 0)
            rc = bad(r, seq, "entry %" PRIu64 " was edited: its hash does not match its content",
                     seq);
    }
    json_decref(o);
    return rc;
}

/* Verify the chain; *last gets the last hash (genesis if empty). */
static int scan(const struct kms_dir *d, struct kms_audit_report *r, uint8_t last[KMS_HASH_LEN])
{
    int fd;
    kms_audit_genesis(last);
    int rc = kms_dir_open_private(d, KMS_AUDIT_FILE, O_RDONLY, &fd);
    if (rc == ENOENT)
        return 0;
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t seq = 0;
    uint8_t h[KMS_HASH_LEN];
    while ((n = getline(&line, &cap, f)) > 0) {
        seq++;
        if (line[n - 1] != '\n') {
            rc = bad(r, seq, "entry at line %" PRIu64 " is incomplete (no end of line)", seq);
            break;
        }
        if (n > LINE_MAX_) {
            rc = bad(r, seq, "line %" PRIu64 " is too long for an audit entry", seq);
            break;
        }
        if ((rc = check_line(line, (size_t)n - 1, seq, last, h, r)) != 0)
            break;
        memcpy(last, h, KMS_HASH_LEN);
        r->entries = seq;
    }
    if (rc == 0 && ferror(f))
        rc = EIO;
    free(line);
    fclose(f);
    return rc;
}

int kms_audit_verify(const struct kms_dir *d, const uint8_t *head_key, struct kms_audit_report *r)
{
    uint8_t last[KMS_HASH_LEN], hh[KMS_HASH_LEN];
    memset(r, 0, sizeof *r);
    int rc = scan(d, r, last);
    if (rc || !head_key)
        return rc;
    r->head_checked = 1;
    rc = read_head(d, head_key, &r->head_seq, hh);
    if (rc == ENOENT)
        return r->entries ? bad(r, r->entries, KMS_HEAD_FILE " is missing") : 0;
    if (rc == AT_EINTEGRITY)
        return bad(r, r->entries, KMS_HEAD_FILE " is damaged or was not sealed by this root key");
    if (rc)
        return rc;
    if (r->head_seq > r->entries)
        return bad(r, r->entries + 1,
                   "the log ends after entry %" PRIu64 " but its sealed head records %" PRIu64
                   " entries: the tail was removed",
                   r->entries, r->head_seq);
    if (r->head_seq + 1 == r->entries)
        return bad(r, r->entries,
                   "entry %" PRIu64 " is past the sealed head (%" PRIu64
                   "): written just before a crash, or appended by someone else",
                   r->entries, r->head_seq);
    if (r->head_seq < r->entries)
        return bad(r, r->head_seq + 1,
                   "entries %" PRIu64 "..%" PRIu64 " are past the sealed head: appended by someone "
                   "else",
                   r->head_seq + 1, r->entries);
    if (memcmp(hh, last, KMS_HASH_LEN) != 0)
        return bad(r, r->entries,
                   "entry %" PRIu64 " does not match the sealed head: the last entry was replaced",
                   r->entries);
    return 0;
}

/* ---- appending ------------------------------------------------------------------ */

int kms_audit_open(const struct kms_dir *d, const uint8_t head_key[32], struct kms_audit **out)
{
    struct kms_audit_report r;
    struct kms_audit *a = calloc(1, sizeof *a);
    if (!a)
        return AT_ENOMEM;
    a->fd = -1;
    a->dir = d;
    pthread_mutex_init(&a->mu, NULL);
    memcpy(a->head_key, head_key, 32);
    int rc = kms_audit_verify(d, head_key, &r);
    if (rc == AT_EINTEGRITY && r.head_checked && r.head_seq + 1 == r.entries) {
        fprintf(stderr, "atrest-kms: warning: %s; resealing the audit head\n", r.why);
        rc = 0;
    }
    if (rc == AT_EINTEGRITY)
        rc = at_error_set(rc,
                          "the audit log %s/" KMS_AUDIT_FILE " fails verification: %s. Keep "
                          "it as evidence; move audit.log and audit.head aside to start a new "
                          "log",
                          d->path, r.why);
    if (rc)
        goto fail;
    a->seq = r.entries;
    if ((rc = scan(d, &r, a->last)) != 0)
        goto fail;
    if ((rc = kms_dir_open_private(d, KMS_AUDIT_FILE, O_WRONLY | O_APPEND | O_CREAT, &a->fd)) != 0)
        goto fail;
    if ((rc = write_head(d, a->head_key, a->seq, a->last)) != 0)
        goto fail;
    *out = a;
    return 0;
fail:
    kms_audit_close(a);
    return rc;
}

void kms_audit_close(struct kms_audit *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    secmem_wipe(a->head_key, sizeof a->head_key);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static void clean(const char *in, char *out, size_t cap)
{
    size_t i = 0;
    if (!in || !*in)
        in = "-";
    for (; in[i] && i + 1 < cap; i++) {
        char c = in[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 strchr("._@:-", c) != NULL;
        out[i] = ok ? c : '?';
    }
    out[i] = '\0';
}

int kms_audit_append(struct kms_audit *a, const struct kms_audit_entry *e)
{
    char ident[KMS_IDENT_MAX + 1], key[KMS_NAME_MAX + 1], ver[KMS_VERSION_HEX + 1], op[32],
        res[32], ts[40], prev[65], hex[65], line[LINE_MAX_];
    clean(e->identity, ident, sizeof ident);
    clean(e->key, key, sizeof key);
    clean(e->version, ver, sizeof ver);
    clean(e->op, op, sizeof op);
    clean(e->result, res, sizeof res);
    time_t secs = (time_t)(e->time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof ts - tl, ".%03dZ", (int)(e->time_ms % 1000));

    pthread_mutex_lock(&a->mu);
    uint64_t seq = a->seq + 1;
    uint8_t h[KMS_HASH_LEN];
    kms_hex(a->last, KMS_HASH_LEN, prev);
    int n = snprintf(line, sizeof line,
                     "{\"seq\":%" PRIu64 ",\"time\":\"%s\",\"identity\":\"%s\",\"key\":\"%s\","
                     "\"version\":\"%s\",\"op\":\"%s\",\"result\":\"%s\",\"status\":%d,"
                     "\"prev\":\"%s\"",
                     seq, ts, ident, key, ver, op, res, e->status, prev);
    entry_hash(a->last, line, (size_t)n, h);
    kms_hex(h, KMS_HASH_LEN, hex);
    n += snprintf(line + n, sizeof line - (size_t)n, HASH_SEP "%s\"}\n", hex);

    int rc = 0;
    off_t before = lseek(a->fd, 0, SEEK_END);
    ssize_t w = write(a->fd, line, (size_t)n);
    if (w != n || fdatasync(a->fd) != 0) {
        rc = at_error_set(w < 0 || errno ? errno : AT_EIO, "cannot append to %s/" KMS_AUDIT_FILE,
                          a->dir->path);
        if (before >= 0 && ftruncate(a->fd, before) != 0)
            fprintf(stderr, "atrest-kms: cannot truncate a partial audit entry\n");
        goto out;
    }
    a->seq = seq;
    memcpy(a->last, h, KMS_HASH_LEN);
    rc = write_head(a->dir, a->head_key, a->seq, a->last);
out:
    pthread_mutex_unlock(&a->mu);
    return rc;
}
