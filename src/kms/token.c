/*
 * token.c — bearer tokens (see kms.h).
 *
 * A token is "akms1.<payload>.<mac>": payload is the base64url of
 * "identity|a|issued|expires" (a: admin, u: not), mac the base64url of
 * HMAC-SHA256(token secret, "akms1.<payload>"). Whoever can read the token
 * secret (d/token.secret, 0600) can mint tokens without asking the daemon;
 * replacing the secret invalidates every token at the daemon's next start.
 * Tokens are not stored anywhere; the daemon never logs them.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/rand.h"
#include "crypto/secmem.h"
#include "keys/keyfile.h"
#include "kms/kms.h"

#define SECRET_PREFIX "atrest-kms-token-secret-v1 "
#define TOKEN_TAG     "akms1."
#define PAYLOAD_MAX   128

int kms_token_secret_load(const struct kms_dir *d, int create, uint8_t **secret)
{
    char text[128];
    size_t len = 0;
    uint8_t *s = secmem_alloc(KMS_SECRET_LEN);
    int rc;
    *secret = NULL;
    if (!s)
        return at_error_set(AT_ENOMEM, "no locked memory for the token secret");
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = kms_dir_read(d, KMS_SECRET_FILE, (uint8_t *)text, sizeof text, &len);
        if (rc != ENOENT || !create)
            break;
        /* Create it; link() refuses to replace one made meanwhile. */
        if ((rc = rand_key(s, KMS_SECRET_LEN)) != 0)
            break;
        size_t n = kms_secret_line_format(SECRET_PREFIX, s, text);
        rc = keyfile_write_atomic(d->fd, d->path, KMS_SECRET_FILE, (const uint8_t *)text, n, 0);
        if (rc != EEXIST)
            goto out;
    }
    if (rc == ENOENT)
        rc = at_error_set(AT_EKEYDIR, "%s has no " KMS_SECRET_FILE, d->path);
    else if (rc == 0 && kms_secret_line_parse(SECRET_PREFIX, text, len, s) != 0)
        rc = at_error_set(AT_EKEYDIR, "%s/" KMS_SECRET_FILE " is not one line \"" SECRET_PREFIX
                                      "<base64 of 32 bytes>\"",
                          d->path);
out:
    secmem_wipe(text, sizeof text);
    if (rc) {
        secmem_free(s, KMS_SECRET_LEN);
        return rc;
    }
    *secret = s;
    return 0;
}

static void mac(const uint8_t *secret, const char *text, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), secret, KMS_SECRET_LEN, (const unsigned char *)text, len, out, &n);
}

int kms_token_mint(const uint8_t *secret, const char *identity, int admin, int64_t now,
                   int64_t ttl_s, char out[KMS_TOKEN_MAX])
{
    char payload[PAYLOAD_MAX];
    uint8_t m[32];
    if (!kms_identity_ok(identity))
        return at_error_set(AT_EINVAL, "an identity is 1 to %d of [0-9a-zA-Z._@-]", KMS_IDENT_MAX);
    if (ttl_s <= 0)
        return at_error_set(AT_EINVAL, "a token's lifetime must be positive");
    int n = snprintf(payload, sizeof payload, "%s|%c|%" PRId64 "|%" PRId64, identity,
                     admin ? 'a' : 'u', now, now + ttl_s);
    size_t pos = strlen(TOKEN_TAG);
    memcpy(out, TOKEN_TAG, pos);
    kms_b64url_encode((const uint8_t *)payload, (size_t)n, out + pos);
    pos += strlen(out + pos);
    mac(secret, out, pos, m);
    out[pos++] = '.';
    kms_b64url_encode(m, sizeof m, out + pos);
    secmem_wipe(m, sizeof m);
    return 0;
}

int kms_token_verify(const uint8_t *secret, const char *token, int64_t now,
                     struct kms_identity *id)
{
    const size_t tl = strlen(TOKEN_TAG);
    size_t len = token ? strnlen(token, KMS_TOKEN_MAX) : 0;
    if (len < tl || len >= KMS_TOKEN_MAX || memcmp(token, TOKEN_TAG, tl) != 0)
        return AT_EINVAL;
    const char *dot = strchr(token + tl, '.');
    if (!dot)
        return AT_EINVAL;
    /* Compare the text, not decoded bytes: base64's unused low bits would
     * otherwise let several spellings of one MAC pass. */
    uint8_t want[32];
    char want_b64[KMS_B64URL_LEN(32) + 1];
    mac(secret, token, (size_t)(dot - token), want);
    kms_b64url_encode(want, sizeof want, want_b64);
    int ok = strlen(dot + 1) == strlen(want_b64) &&
             secmem_equal(want_b64, dot + 1, strlen(want_b64));
    secmem_wipe(want, sizeof want);
    secmem_wipe(want_b64, sizeof want_b64);
    if (!ok)
        return AT_EINVAL;
    /* Authentic: now parse what we wrote ourselves. */
    char payload[PAYLOAD_MAX + 4];
    size_t plen = 0, b64len = (size_t)(dot - token) - tl;
    if (b64len > KMS_B64URL_LEN(PAYLOAD_MAX) ||
        kms_b64url_decode(token + tl, b64len, (uint8_t *)payload, &plen) != 0)
        return AT_EINVAL;
    payload[plen] = '\0';
    char *bar1 = strchr(payload, '|');
    if (!bar1)
        return AT_EINVAL;
    *bar1 = '\0';
    char role = 0;
    long long issued = 0, expires = 0;
    int used = 0;
    if (sscanf(bar1 + 1, "%c|%lld|%lld%n", &role, &issued, &expires, &used) != 3 ||
        bar1[1 + used] != '\0' || (role != 'a' && role != 'u') || !kms_identity_ok(payload))
        return AT_EINVAL;
    if (now >= expires)
        return AT_EINVAL;
    kms_copy(id->name, sizeof id->name, payload);
    id->admin = role == 'a';
    id->expires = expires;
    return 0;
}
