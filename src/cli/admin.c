/*
 * admin.c — signed admin requests to atrestd (see admin.h).
 *
 * The signature is the Cosmos master-key one: HMAC-SHA256 over
 * "verb\nresource type\nresource link\nx-ms-date\n\n" (lower-case verb and
 * date), base64, URL-encoded in the authorization header.
 */
#include "cli/admin.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "crypto/secmem.h"
#include "keys/kmsprov.h"

struct body {
    char *buf;
    size_t n, cap;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ctx)
{
    struct body *b = ctx;
    size_t n = sz * nm, room = b->cap - 1 - b->n;
    memcpy(b->buf + b->n, p, n < room ? n : room);
    b->n += n < room ? n : room;
    b->buf[b->n] = 0;
    return n;
}

/* The authorization header for verb on link at date (RFC 1123). */
static int sign(const char *master_key, const char *verb, const char *link, const char *date,
                char *out, size_t cap)
{
    size_t kl = strlen(master_key);
    unsigned char *key = secmem_alloc(kl + 4);
    int klen = key && kl % 4 == 0 && kl
                   ? EVP_DecodeBlock(key, (const unsigned char *)master_key, (int)kl)
                   : -1;
    if (klen <= 0) {
        if (key)
            secmem_free(key, kl + 4);
        return -1;
    }
    klen -= (master_key[kl - 1] == '=') + (kl > 1 && master_key[kl - 2] == '=');
    char text[512], lverb[16];
    size_t i;
    for (i = 0; verb[i] && i + 1 < sizeof lverb; i++)
        lverb[i] = (char)(verb[i] >= 'A' && verb[i] <= 'Z' ? verb[i] + 32 : verb[i]);
    lverb[i] = 0;
    int tl = snprintf(text, sizeof text, "%s\natrest\n%s\n", lverb, link);
    for (i = 0; date[i] && (size_t)tl + 1 < sizeof text; i++)
        text[tl++] = (char)(date[i] >= 'A' && date[i] <= 'Z' ? date[i] + 32 : date[i]);
    tl += snprintf(text + tl, sizeof text - (size_t)tl, "\n\n");
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, klen, (unsigned char *)text, (size_t)tl, mac, &ml);
    secmem_free(key, kl + 4);
    char sig[64];
    EVP_EncodeBlock((unsigned char *)sig, mac, (int)ml);
    secmem_wipe(mac, sizeof mac);
    char *esc = curl_easy_escape(NULL, sig, 0);
    if (!esc)
        return -1;
    snprintf(out, cap, "authorization: type%%3Dmaster%%26ver%%3D1.0%%26sig%%3D%s", esc);
    curl_free(esc);
    return 0;
}

char *cli_read_secret(const char *path, size_t *alloc)
{
    FILE *f = fopen(path, "r");
    char *t = f ? secmem_alloc(4096) : NULL;
    size_t n = t ? fread(t, 1, 4095, f) : 0;
    if (f)
        fclose(f);
    if (!t)
        return NULL;
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' '))
        n--;
    t[n] = '\0';
    *alloc = 4096;
    return t;
}

int cli_open_kms(const char *key_url, const char *token_file, const char *ca, int insecure,
                 int no_check, struct key_provider **kp)
{
    char base[300], name[128];
    size_t alloc = 0;
    *kp = NULL;
    int rc = kp_kms_parse_key_url(key_url, base, sizeof base, name, sizeof name);
    if (rc)
        return rc;
    char *token = cli_read_secret(token_file, &alloc);
    if (!token)
        return at_error_set(AT_EINVAL, "cannot read the token file %s", token_file);
    struct kp_kms_options ko = {.url = base,
                                .key_name = name,
                                .token = token,
                                .ca_file = ca,
                                .insecure = insecure,
                                .no_check = no_check};
    rc = kp_kms_open(&ko, kp);
    secmem_free(token, alloc);
    return rc;
}

int admin_call(const struct admin_conn *a, const char *what, const char *verb, const char *link,
               long *status, char *out, size_t cap)
{
    if (!a->endpoint || !a->master_key) {
        fprintf(stderr, "%s: --endpoint and --master-key are required\n", what);
        return 2;
    }
    char date[64], auth[256], dh[96], url[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (sign(a->master_key, verb, link, date, auth, sizeof auth) != 0) {
        fprintf(stderr, "%s: the master key is not valid base64\n", what);
        return 2;
    }
    snprintf(dh, sizeof dh, "x-ms-date: %s", date);
    size_t el = strlen(a->endpoint);
    while (el && a->endpoint[el - 1] == '/')
        el--;
    snprintf(url, sizeof url, "%.*s/%s", (int)el, a->endpoint, link);
    CURL *c = curl_easy_init();
    if (!c)
        return 2;
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, dh);
    h = curl_slist_append(h, "x-ms-version: 2018-12-31");
    h = curl_slist_append(h, "content-type: application/json");
    struct body b = {.buf = out, .n = 0, .cap = cap};
    out[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (strcmp(verb, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (a->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (a->cacert) {
        curl_easy_setopt(c, CURLOPT_CAINFO, a->cacert);
    }
    CURLcode cr = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    secmem_wipe(auth, sizeof auth);
    if (cr != CURLE_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, url, curl_easy_strerror(cr));
        return 2;
    }
    return 0;
}
