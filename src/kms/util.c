/* util.c — base64url, hex, clocks, name rules, secret lines (see kms.h). */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "crypto/secmem.h"
#include "kms/kms.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void kms_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    char *o = out;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
        *o++ = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
    }
    *o = '\0';
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int kms_b64url_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0) {
            secmem_wipe(&acc, sizeof acc);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    secmem_wipe(&acc, sizeof acc);
    *out_len = o;
    return 0;
}

void kms_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int kms_unhex(const char *in, size_t n2, uint8_t *out)
{
    if (n2 % 2)
        return -1;
    for (size_t i = 0; i < n2; i += 2) {
        int hi = hexval(in[i]), lo = hexval(in[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void kms_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int64_t kms_now(void)
{
    return (int64_t)time(NULL);
}

int64_t kms_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int chars_ok(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr(extra, c)))
            return 0;
    }
    return 1;
}

int kms_name_ok(const char *s)
{
    return chars_ok(s, KMS_NAME_MAX, "-");
}

int kms_identity_ok(const char *s)
{
    return chars_ok(s, KMS_IDENT_MAX, "._@-");
}

int kms_secret_line_parse(const char *prefix, const char *text, size_t len, uint8_t key[32])
{
    size_t plen = strlen(prefix);
    uint8_t dec[36];
    int rc = -1;
    if (len < plen + 44 || memcmp(text, prefix, plen) != 0)
        goto out;
    const char *b = text + plen, *rest = b + 44;
    size_t rlen = len - plen - 44;
    if (!(rlen == 0 || (rlen == 1 && rest[0] == '\n')) || b[43] != '=' || memchr(b, '=', 43))
        goto out;
    if (EVP_DecodeBlock(dec, (const unsigned char *)b, 44) != 33)
        goto out;
    memcpy(key, dec, 32);
    rc = 0;
out:
    secmem_wipe(dec, sizeof dec);
    return rc;
}

size_t kms_secret_line_format(const char *prefix, const uint8_t key[32], char *line)
{
    size_t plen = strlen(prefix);
    memcpy(line, prefix, plen);
    EVP_EncodeBlock((unsigned char *)line + plen, key, 32);
    line[plen + 44] = '\n';
    line[plen + 45] = '\0';
    return plen + 45;
}
