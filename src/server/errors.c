/*
 * errors.c — Cosmos error bodies and the headers every response carries.
 *
 * Every error answer is {"code":"<Cosmos code>","message":"..."} with the
 * HTTP status and, where Cosmos has one, x-ms-substatus. Messages are
 * fixed texts: they never echo ids, documents, keys or partition keys.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "server/keymon.h"
#include "server/srv.h"

const char *srv_status_code(int status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 408:
        return "RequestTimeout";
    case 409:
        return "Conflict";
    case 412:
        return "PreconditionFailed";
    case 413:
        return "RequestEntityTooLarge";
    case 424:
        return "FailedDependency";
    case 429:
        return "TooManyRequests";
    case 449:
        return "RetryWith";
    case 500:
        return "InternalServerError";
    case 501:
        return "NotImplemented";
    case 503:
        return "ServiceUnavailable";
    default:
        return status >= 500 ? "InternalServerError" : "BadRequest";
    }
}

int srv_error(struct req *r, int status, int substatus, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A failure while a key is unusable (a write in flight when the
     * customer-managed key was revoked) is reported as that. */
    if (status >= 500 && r->srv && r->srv->keymon) {
        int sub = 0, ks = keymon_refuse(r->srv->keymon, &sub, msg, sizeof msg);
        if (ks) {
            status = ks;
            substatus = sub;
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "code", json_string(srv_status_code(status)));
    json_object_set_new(o, "message", json_string(msg));
    resp_json(r, status, o);
    json_decref(o);
    r->substatus = substatus;
    return status;
}

int srv_refuse_if_keys_unusable(struct req *r)
{
    if (!r->srv->keymon)
        return 0;
    char msg[512];
    int sub = 0, status = keymon_refuse(r->srv->keymon, &sub, msg, sizeof msg);
    return status ? srv_error(r, status, sub, "%s", msg) : 0;
}

static uint64_t rnd64(void)
{
    static _Thread_local uint64_t s;
    if (!s) {
        if (getrandom(&s, sizeof s, 0) != sizeof s)
            s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&s;
        s |= 1;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

static atomic_ullong lsn = 1;

void srv_std_headers(struct req *r)
{
    uint64_t a = rnd64(), b = rnd64();
    resp_header(r, "x-ms-activity-id", "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
                (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
                (unsigned)((b >> 48) & 0x3fff) | 0x8000,
                (unsigned long long)(b & 0xffffffffffffULL));
    resp_header(r, "x-ms-request-charge", "%s", r->verb == SRV_GET ? "1" : "5.71");
    resp_header(r, "x-ms-session-token", "0:-1#%llu", (unsigned long long)atomic_load(&lsn));
    if (r->substatus)
        resp_header(r, "x-ms-substatus", "%d", r->substatus);
}

void srv_new_etag(char out[48])
{
    static atomic_ullong ctr;
    static uint32_t boot;
    if (!boot) {
        uint32_t b = 0;
        if (getrandom(&b, sizeof b, 0) != sizeof b)
            b = (uint32_t)time(NULL);
        boot = b | 1;
    }
    unsigned long long n = atomic_fetch_add(&ctr, 1) + 1;
    atomic_fetch_add(&lsn, 1);
    snprintf(out, 48, "\"%08x-0000-0100-0000-%012llx\"", boot, n & 0xffffffffffffULL);
}

void srv_rid_encode(const unsigned char *bytes, size_t n, char *out, size_t outsz)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outsz; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < n)
            v |= bytes[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}
