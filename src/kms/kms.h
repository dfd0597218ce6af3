/*
 * kms.h — atrest-kms, the key service: its modules as the daemon (main.c),
 * the REST layer (api.c) and the unit tests see them.
 *
 *   folder.c    the service folder: open/create, permission checks, lock
 *   vault.c     the sealed keystore: keys and versions, key material in
 *               locked memory, create/rotate/update/delete/recover/purge,
 *               wrap/unwrap (A256KW, RSA-OAEP-256, RSA-OAEP)
 *   token.c     bearer tokens: HMAC-SHA256 under the folder's token secret
 *   policy.c    per-key access policies (a text file edited atomically by the
 *               CLI; the daemon reloads it when it changes)
 *   audit.c     the append-only, hash-chained audit log and its sealed head
 *   util.c      base64url, hex, time
 *   api.c       the Key Vault keys REST subset (api-version 7.4) over jansson
 *   http.c      libmicrohttpd glue (HTTPS only, thread per connection)
 *   main.c      the daemon and its command line (token, grant, revoke, audit)
 *
 * Errors follow common/error.h: 0, errno, or AT_E* with a detail line.
 * No function here ever puts key material, a token or a token secret into
 * an error detail, a log line or an audit entry.
 */
#ifndef ATREST_KMS_KMS_H
#define ATREST_KMS_KMS_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---- folder.c ----------------------------------------------------------- */

#define KMS_ROOT_FILE     "root.key"
#define KMS_KEYSTORE_FILE "keystore"
#define KMS_SECRET_FILE   "token.secret"
#define KMS_POLICY_FILE   "policy"
#define KMS_AUDIT_FILE    "audit.log"
#define KMS_HEAD_FILE     "audit.head"
#define KMS_LOCK_FILE     "lock"
#define KMS_ROOT_ENV      "ATREST_KMS_ROOT_KEY"

struct kms_dir {
    int fd;              /* the folder, checked once (owner, mode 0700) */
    char path[PATH_MAX]; /* resolved, for details */
};

/* Open (create with mode 0700 when create is set and it is missing) and
 * check the service folder: a folder owned by the running user with no
 * group/other permission bits (AT_EPERM_OPEN otherwise). */
int kms_dir_open(const char *path, int create, struct kms_dir *d) AT_WUR;
void kms_dir_close(struct kms_dir *d);

/* Open d/name for reading; ENOENT passes through. The file must be a
 * regular file owned by the running user with mode 0600 or stricter. */
int kms_dir_open_private(const struct kms_dir *d, const char *name, int flags, int *fd) AT_WUR;

/* Read a small private file whole (cap bytes at most) into buf. */
int kms_dir_read(const struct kms_dir *d, const char *name, uint8_t *buf, size_t cap,
                 size_t *len) AT_WUR;

/* Exclusive, non-blocking flock on d/name (created 0600); AT_ELOCKED when
 * another process holds it, block set: wait for it. *fd to kms_dir_unlock. */
int kms_dir_lock(const struct kms_dir *d, const char *name, int block, int *fd) AT_WUR;
void kms_dir_unlock(int fd);

/* ---- util.c ------------------------------------------------------------- */

/* base64url without padding; out holds KMS_B64URL_LEN(n) + 1 bytes. */
#define KMS_B64URL_LEN(n) (((n) * 4 + 2) / 3)
void kms_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Accepts base64url or base64, padded or not. out holds len*3/4 + 3 bytes.
 * -1 on a character outside the alphabet or a bad length. */
int kms_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *out_len);
void kms_hex(const uint8_t *in, size_t n, char *out); /* out: 2n + 1 bytes */
int kms_unhex(const char *in, size_t n2, uint8_t *out); /* -1 on a bad digit */
/* Copy src (NULL: "") into dst of cap bytes, truncating, always terminated. */
void kms_copy(char *dst, size_t cap, const char *src);
int64_t kms_now(void);    /* Unix seconds */
int64_t kms_now_ms(void); /* Unix milliseconds */
/* Key Vault object names: 1..127 of [0-9a-zA-Z-]. */
int kms_name_ok(const char *s);
/* Identities: 1..64 of [0-9a-zA-Z._@-]. */
int kms_identity_ok(const char *s);
/* A file that holds "<prefix><base64 of 32 bytes>\n": parse (0 or -1) and
 * format (line needs strlen(prefix) + 46 bytes). */
int kms_secret_line_parse(const char *prefix, const char *text, size_t len, uint8_t key[32]);
size_t kms_secret_line_format(const char *prefix, const uint8_t key[32], char *line);

/* ---- vault.c ------------------------------------------------------------ */

#define KMS_NAME_MAX     127
#define KMS_VERSION_HEX  32
#define KMS_MAX_KEYS     4096
#define KMS_MAX_VERSIONS 1024
#define KMS_TAGS_MAX     4096 /* JSON text of a version's tags */
#define KMS_RETENTION_S  (90LL * 24 * 3600)
#define KMS_AES_LEN      32

enum kms_kty { KMS_KTY_OCT = 1, KMS_KTY_RSA = 2 };

/* key_ops, as a bit set */
enum {
    KMS_OP_ENCRYPT = 1,
    KMS_OP_DECRYPT = 2,
    KMS_OP_SIGN = 4,
    KMS_OP_VERIFY = 8,
    KMS_OP_WRAP = 16,
    KMS_OP_UNWRAP = 32,
};

enum kms_alg { KMS_ALG_A256KW = 1, KMS_ALG_RSA_OAEP_256 = 2, KMS_ALG_RSA_OAEP = 3 };

struct kms_version {
    char id[KMS_VERSION_HEX + 1];
    uint8_t kty, hsm, enabled, ops;
    uint16_t bits;                     /* 256, or the RSA modulus size */
    int64_t created, updated, nbf, exp; /* Unix seconds; nbf/exp 0: unset */
    char *tags;                        /* JSON object text, or NULL */
    size_t mat_off, mat_len;           /* key material in the vault's arena */
    char *n_b64, *e_b64;               /* RSA public part, base64url (not secret) */
};

struct kms_key {
    char name[KMS_NAME_MAX + 1];
    int deleted;
    int64_t deleted_on, purge_on;
    uint32_t nver;
    struct kms_version *ver; /* creation order: the last is current */
};

/* Every field is guarded by mu; api.c holds it for a whole request. */
struct kms_vault {
    pthread_mutex_t mu;
    const struct kms_dir *dir;
    uint8_t id[16];
    uint8_t *root; /* secmem, 32 bytes */
    uint32_t flags;
    uint32_t nkeys;
    struct kms_key *keys;
    uint8_t *arena; /* secmem: every version's key material */
    size_t arena_len, arena_cap;
};
#define KMS_VAULT_PURGE_PROTECTION 1u

/* Load the root key (ATREST_KMS_ROOT_KEY, else d/root.key) and the sealed
 * keystore. create: make a root key file (unless the environment supplies
 * one) and an empty keystore when there is none. AT_EINTEGRITY when the
 * root key does not open the keystore; AT_EKEYDIR when a keystore exists
 * without its root key. */
int kms_vault_open(const struct kms_dir *d, int create, struct kms_vault **out) AT_WUR;
void kms_vault_close(struct kms_vault *v);

/* Seal and write the keystore (atomically). Callers that change the vault
 * call this before they report success, and undo their change if it fails. */
int kms_vault_save(struct kms_vault *v) AT_WUR;

/* The HMAC key for the audit log's head: HMAC-SHA256(root, label). */
void kms_vault_audit_key(const struct kms_vault *v, uint8_t out[32]);

struct kms_key *kms_vault_find(struct kms_vault *v, const char *name);
struct kms_version *kms_key_version(struct kms_key *k, const char *version); /* NULL/"": current */

/* Fresh key material in secmem (free with secmem_free(*mat, *len)):
 * 32 random bytes for oct, a DER RSA private key of bits for RSA. Slow for
 * RSA; call it without holding mu. */
int kms_keygen(int kty, unsigned bits, uint8_t **mat, size_t *len) AT_WUR;

struct kms_new_version {
    int kty, hsm;
    unsigned bits, ops;
    int enabled;
    int64_t nbf, exp;
    const char *tags; /* JSON object text or NULL */
};

/* Add a version (a new key, or a new version of an existing one) with the
 * given material, persist, and return it. AT_EEXIST when the name belongs
 * to a deleted key; AT_EINVAL on limits. The material is copied. */
int kms_vault_add_version(struct kms_vault *v, const char *name, const struct kms_new_version *nv,
                          const uint8_t *mat, size_t len, struct kms_version **out) AT_WUR;

/* Soft delete / recover / purge, persisted. */
int kms_vault_delete(struct kms_vault *v, struct kms_key *k) AT_WUR;
int kms_vault_recover(struct kms_vault *v, struct kms_key *k) AT_WUR;
int kms_vault_purge(struct kms_vault *v, struct kms_key *k) AT_WUR;
int kms_vault_set_purge_protection(struct kms_vault *v) AT_WUR;

/* Wrap or unwrap in under a version. out must hold KMS_WRAP_MAX bytes.
 * AT_EINVAL: algorithm does not fit the key or bad input length;
 * AT_EINTEGRITY: unwrap failed (wrong key or damaged input; out wiped). */
#define KMS_WRAP_MAX 1024
int kms_vault_wrap(struct kms_vault *v, const struct kms_version *kv, int alg, const uint8_t *in,
                   size_t len, uint8_t *out, size_t *out_len) AT_WUR;
int kms_vault_unwrap(struct kms_vault *v, const struct kms_version *kv, int alg,
                     const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) AT_WUR;

/* ---- token.c ------------------------------------------------------------ */

#define KMS_TOKEN_MAX  256
#define KMS_IDENT_MAX  64
#define KMS_SECRET_LEN 32

struct kms_identity {
    char name[KMS_IDENT_MAX + 1];
    int admin;
    int64_t expires; /* Unix seconds */
};

/* Load d/token.secret into secmem (*secret, KMS_SECRET_LEN bytes; free with
 * secmem_free); create it when missing and create is set. */
int kms_token_secret_load(const struct kms_dir *d, int create, uint8_t **secret) AT_WUR;

/* Token: "akms1." b64url(payload) "." b64url(HMAC-SHA256(secret, the text
 * before the second dot)); payload "identity|a or u|issued|expires". */
int kms_token_mint(const uint8_t *secret, const char *identity, int admin, int64_t now,
                   int64_t ttl_s, char out[KMS_TOKEN_MAX]) AT_WUR;

/* 0 and *id for a token that is well formed, carries a valid MAC
 * (compared in constant time) and has not expired; AT_EINVAL otherwise. */
int kms_token_verify(const uint8_t *secret, const char *token, int64_t now,
                     struct kms_identity *id) AT_WUR;

/* ---- policy.c ----------------------------------------------------------- */

/* Per-key permissions: the three an access policy can grant. */
enum { KMS_PERM_GET = 1, KMS_PERM_WRAP = 2, KMS_PERM_UNWRAP = 4 };
#define KMS_PERM_ALL (KMS_PERM_GET | KMS_PERM_WRAP | KMS_PERM_UNWRAP)

struct kms_grant {
    char key[KMS_NAME_MAX + 1];
    char identity[KMS_IDENT_MAX + 1];
    unsigned perms;
};

struct kms_policy {
    size_t n;
    struct kms_grant *g; /* sorted by key, then identity */
};

/* "get,wrapKey,unwrapKey" (any order, case-insensitive) -> bits. -1 on an
 * unknown name. kms_perms_format writes the canonical list. */
int kms_perms_parse(const char *list, unsigned *out);
void kms_perms_format(unsigned perms, char *out, size_t cap);

/* Parse the policy text (lines "key identity perms", '#' comments). */
int kms_policy_parse(const char *text, size_t len, struct kms_policy *p) AT_WUR;
void kms_policy_free(struct kms_policy *p);
unsigned kms_policy_perms(const struct kms_policy *p, const char *key, const char *identity);

/* Grant (add perms) or revoke (remove perms; perms 0 removes every grant of
 * the identity on the key) in d/policy, under the policy lock (flock on
 * d/policy.lock), written atomically (tmp, fsync, rename). drop_key removes
 * every grant on a key (when it is purged). */
int kms_policy_edit(const struct kms_dir *d, const char *key, const char *identity,
                    unsigned perms, int grant) AT_WUR;
int kms_policy_drop_key(const struct kms_dir *d, const char *key) AT_WUR;

/* The daemon's view: reloads d/policy when its inode, size or mtime
 * changed since the last call. On a file that cannot be read or parsed the
 * view becomes empty (non-admins are refused) and the error is returned. */
struct kms_policy_view {
    pthread_mutex_t mu;
    struct kms_policy p;
    int have;            /* a stat is cached */
    uint64_t ino, size;  /* of the loaded file */
    int64_t mtime_ns;
};
void kms_policy_view_init(struct kms_policy_view *pv);
void kms_policy_view_free(struct kms_policy_view *pv);
int kms_policy_view_refresh(struct kms_policy_view *pv, const struct kms_dir *d);
unsigned kms_policy_view_perms(struct kms_policy_view *pv, const char *key, const char *identity);

/* The access decision for one request. */
enum kms_action {
    KMS_ACT_GET,     /* get a key, list its versions */
    KMS_ACT_WRAP,    /* wrapkey */
    KMS_ACT_UNWRAP,  /* unwrapkey */
    KMS_ACT_MANAGE,  /* create, update, rotate, delete, recover, purge */
    KMS_ACT_LISTALL, /* list deleted keys */
};
int kms_access_allowed(const struct kms_identity *id, unsigned perms_on_key, enum kms_action a);

/* ---- audit.c ------------------------------------------------------------ */

#define KMS_HASH_LEN 32

struct kms_audit {
    pthread_mutex_t mu;
    const struct kms_dir *dir;
    int fd;                     /* audit.log, O_APPEND */
    uint64_t seq;               /* entries so far */
    uint8_t last[KMS_HASH_LEN]; /* hash of the last entry (genesis if none) */
    uint8_t head_key[32];       /* HMAC key for audit.head (from the root key) */
};

struct kms_audit_entry {
    int64_t time_ms;
    const char *identity, *key, *version, *op, *result;
    int status;
};

/* Open for appending: verify the whole chain and the sealed head first.
 * A log exactly one entry past its head (a crash between the append and
 * the head's update) is accepted and the head resealed, with a warning on
 * stderr. Anything else that fails verification is AT_EINTEGRITY. */
int kms_audit_open(const struct kms_dir *d, const uint8_t head_key[32], struct kms_audit **out) AT_WUR;
void kms_audit_close(struct kms_audit *a);

/* Append one entry (fsync'd) and reseal the head. */
int kms_audit_append(struct kms_audit *a, const struct kms_audit_entry *e) AT_WUR;

struct kms_audit_report {
    uint64_t entries;     /* entries that verified */
    uint64_t bad_line;    /* 1-based line of the first bad entry; 0 if none */
    int head_checked;     /* the sealed head was checked */
    uint64_t head_seq;    /* what the head records */
    char why[256];        /* the first problem, for a person */
};

/* Verify d/audit.log: every line parses, seq runs 1, 2, 3, ..., each
 * entry's prev is the hash of the entry before (genesis for the first),
 * each hash is SHA-256(prev || the entry's text before ,"hash"). With
 * head_key, also that d/audit.head carries a valid MAC and names the last
 * entry (seq and hash): a truncated tail is caught there. 0 when intact,
 * AT_EINTEGRITY (report filled) when not, errno when unreadable. */
int kms_audit_verify(const struct kms_dir *d, const uint8_t *head_key, struct kms_audit_report *r) AT_WUR;

/* The genesis value the first entry chains from. */
void kms_audit_genesis(uint8_t out[KMS_HASH_LEN]);

#endif
