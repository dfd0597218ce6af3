/* error.c — error names and per-thread detail lines (see error.h). */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[512];

const char *at_strerror(int err)
{
    switch (err) {
    case AT_OK:
        return "success";
    case AT_EINTEGRITY:
        return "integrity check failed: stored data is corrupted or was tampered with";
    case AT_EINVAL:
        return "invalid argument";
    case AT_ENOMEM:
        return "out of memory";
    case AT_ECRYPTO:
        return "crypto library error";
    case AT_EKEYDIR:
        return "key folder missing or unusable";
    case AT_EPERM_OPEN:
        return "permissions too open";
    case AT_EKEYRING:
        return "keyring missing or corrupted";
    case AT_EKEYMISMATCH:
        return "key folder does not belong to this data folder";
    case AT_ELOCKED:
        return "data folder is in use by another process";
    case AT_ENOTFOUND:
        return "not found";
    case AT_ESQLITE:
        return "storage engine error";
    case AT_EFORMAT:
        return "unrecognised file format";
    case AT_EEXIST:
        return "already exists";
    case AT_EKEYUNAVAIL:
        return "key provider unavailable";
    case AT_EIO:
        return "I/O error";
    default:
        break;
    }
    if (err > 0)
        return strerror(err);
    return "unknown error";
}

int at_error_set(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err;
}

const char *at_error_detail(void)
{
    return detail[0] ? detail : "no detail recorded";
}

void at_error_clear(void)
{
    detail[0] = '\0';
}
