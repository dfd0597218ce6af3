/*
 * auth.c — master-key authentication as the Cosmos SDKs compute it.
 *
 *   text = lower(verb) \n lower(resourceType) \n resourceLink \n lower(date) \n \n
 *   sig  = base64(HMAC-SHA256(key, text))
 *
 * The configured keys are tried in order until one matches, and signatures
 * are compared with CRYPTO_memcmp. Stopping at the match tells a client
 * nothing it does not know (which key it signed with); a signature that
 * matches no key costs every key, whichever it is. A missing or malformed authorization header
 * or a wrong signature is 401; a date outside +-15 minutes is 403; a
 * read-only key asking for a write is 403. Keys never reach a log line.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto/secmem.h"
#include "server/srv.h"

#define DATE_WINDOW (15 * 60)

int auth_sign(const unsigned char *key, size_t keylen, const char *verb, const char *type,
              const char *link, const char *date, char out[64])
{
    size_t n = strlen(verb) + strlen(type) + strlen(link) + strlen(date) + 8;
    char *text = malloc(n);
    if (!text)
        return AT_ENOMEM;
    size_t o = 0;
    for (const char *p = verb; *p; p++)
        text[o++] = (char)tolower((unsigned char)*p);
    text[o++] = '\n';
    for (const char *p = type; *p; p++)
        text[o++] = (char)tolower((unsigned char)*p);
    text[o++] = '\n';
    size_t l = strlen(link);
    memcpy(text + o, link, l);
    o += l;
    text[o++] = '\n';
    for (const char *p = date; *p; p++)
        text[o++] = (char)tolower((unsigned char)*p);
    text[o++] = '\n';
    text[o++] = '\n';
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    unsigned char *ok =
        HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)text, o, mac, &maclen);
    free(text);
    if (!ok)
        return AT_ECRYPTO;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    secmem_wipe(mac, sizeof mac);
    return 0;
}

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strncasecmp(s, names[i], 3) == 0)
            return i;
    return -1;
}

static int two_digits(const char *s)
{
    return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1])
               ? (s[0] - '0') * 10 + s[1] - '0'
               : -1;
}

/* The form every SDK sends, "Sun, 06 Nov 1994 08:49:37 GMT" (any case), read
 * without strptime (a sixth of a read's authentication). Anything else:
 * -1, and strptime decides. */
static int parse_rfc1123(const char *s, time_t *out)
{
    static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || s[25] != ' ' ||
        strcasecmp(s + 26, "GMT") != 0 || name_index(s, days, 7) < 0)
        return -1;
    int day = two_digits(s + 5), mon = name_index(s + 8, months, 12);
    int cent = two_digits(s + 12), yy = two_digits(s + 14);
    int hh = two_digits(s + 17), mm = two_digits(s + 20), ss = two_digits(s + 23);
    if (day < 1 || mon < 0 || day > mdays[mon] || cent < 0 || yy < 0 || hh < 0 || hh > 23 ||
        mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return -1;
    int year = cent * 100 + yy;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon == 1 && day == 29 && !leap)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    *out = timegm(&tm);
    return 0;
}

int auth_parse_date(const char *s, time_t *out)
{
    if (parse_rfc1123(s, out) == 0)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *e = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm);
    if (!e)
        return -1;
    while (*e == ' ')
        e++;
    if (strcasecmp(e, "GMT") != 0 && strcasecmp(e, "UTC") != 0 && *e)
        return -1;
    *out = timegm(&tm);
    return 0;
}

/* Resource ids are base64 of 4 (database), 8 (container) or 16 bytes. */
static int looks_like_rid(const char *s)
{
    size_t n = strlen(s);
    if (n != 8 && n != 12 && n != 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("+-/=", s[i]))
            return 0;
    return 1;
}

/* A POST reads only when it is a query of a feed that the router answers
 * with a query (databases, containers, documents, conflicts, offers): anywhere else the query
 * headers must not turn a write into a read for a read-only key. */
static int is_read(struct req *r)
{
    if (r->verb == SRV_GET || r->verb == SRV_HEAD)
        return 1;
    if (!req_is_query(r) || r->nseg == 0)
        return 0;
    if (strcmp(r->segs[0], "offers") == 0)
        return r->nseg == 1;
    if (strcmp(r->segs[0], "dbs") != 0)
        return 0;
    return r->nseg == 1 || (r->nseg == 3 && strcmp(r->segs[2], "colls") == 0) ||
           (r->nseg == 5 && strcmp(r->segs[2], "colls") == 0 &&
            (strcmp(r->segs[4], "docs") == 0 || strcmp(r->segs[4], "conflicts") == 0));
}

int auth_check(struct req *r)
{
    const char *auth = req_header(r, "authorization");
    if (!auth || !*auth)
        return srv_error(r, 401, 0,
                         "Required header 'authorization' is missing.  Ensure a valid "
                         "authorization token is passed.");
    char *dec = srv_pct_decode(auth, strlen(auth));
    if (!dec)
        return srv_error(r, 500, 0, "Out of memory.");
    const char *typ = NULL, *sig = NULL;
    for (char *save = NULL, *tok = strtok_r(dec, "&", &save); tok;
         tok = strtok_r(NULL, "&", &save)) {
        if (strncmp(tok, "type=", 5) == 0)
            typ = tok + 5;
        else if (strncmp(tok, "sig=", 4) == 0)
            sig = tok + 4;
    }
    if (!typ || !sig || strcmp(typ, "master") != 0) {
        free(dec);
        return srv_error(r, 401, 0,
                         "The input authorization token can't serve the request. Please check "
                         "that the expected payload is built as per the protocol, and check the "
                         "key being used.");
    }
    const char *date = req_header(r, "x-ms-date");
    if (!date || !*date)
        date = req_header(r, "date");
    time_t t;
    if (!date || !*date || auth_parse_date(date, &t) != 0) {
        free(dec);
        return srv_error(r, 401, 0,
                         "The input date header is invalid format. Please pass in RFC 1123 style "
                         "date format.");
    }
    time_t now = time(NULL);
    if (t > now + DATE_WINDOW || t < now - DATE_WINDOW) {
        free(dec);
        return srv_error(r, 403, 0,
                         "The authorization token is not valid at the current time. Please "
                         "create another token and retry (token start time: request date, "
                         "current time: server time).");
    }
    const char *rtype;
    char *link;
    /* POST .../colls/{c}/operations/partitionkeydelete is signed as its
     * container: resource type "colls", link "dbs/{db}/colls/{c}". */
    int nsig = r->nseg;
    if (nsig == 6 && strcmp(r->segs[2], "colls") == 0 && strcmp(r->segs[4], "operations") == 0)
        nsig = 4;
    srv_resource_of(r->segs, nsig, &rtype, &link);
    /* /media/{id}: the SDKs sign resource type "media" with the media id,
     * lowercased, as the link (attachments.c), and nothing else. */
    int media = r->nseg == 2 && strcmp(r->segs[0], "media") == 0;
    if (media && link) {
        free(link);
        link = strdup(r->segs[1]);
        for (char *p = link; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    if (!link) {
        free(dec);
        return srv_error(r, 500, 0, "Out of memory.");
    }
    /* A resource-id based link ("dbs/AQAAAA==/colls") is signed with the
     * last resource id, lowercased (Python SDK 3.x does this). */
    char ridlink[32] = "";
    if (nsig >= 2 && !media) {
        const char *last = r->segs[nsig % 2 ? nsig - 2 : nsig - 1];
        if (looks_like_rid(last))
            for (size_t i = 0; i <= strlen(last); i++)
                ridlink[i] = (char)tolower((unsigned char)last[i]);
    }
    size_t siglen = strlen(sig);
    int match = -1;
    for (int i = 0; i < r->srv->nkeys; i++) {
        for (int form = 0; form < 2; form++) {
            char want[64];
            if (form == 1 && !ridlink[0])
                continue;
            if (auth_sign(r->srv->keys[i].bytes, r->srv->keys[i].len, r->method, rtype,
                          form ? ridlink : link, date, want) != 0)
                continue;
            if (strlen(want) == siglen && CRYPTO_memcmp(want, sig, siglen) == 0 && match < 0)
                match = i;
        }
        if (match >= 0)
            break;
    }
    free(link);
    free(dec);
    if (match < 0)
        return srv_error(r, 401, 0,
                         "The input authorization token can't serve the request. The wrong key "
                         "is being used or the expected payload is not built as per the "
                         "protocol.");
    r->readonly = r->srv->keys[match].readonly;
    if (r->readonly && !is_read(r))
        return srv_error(r, 403, 0,
                         "Request blocked by Auth: a read-only key cannot perform writes.");
    return 0;
}
