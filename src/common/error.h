/*
 * error.h — atrest's error convention.
 *
 * Every fallible function returns an int: 0 is success, a positive value is
 * an errno passed through unchanged, and a negative value is one of the
 * project codes below. at_strerror() names either kind.
 *
 * Where a caller needs to tell a person what went wrong (which file, which
 * mode), the failing function also records a one-line detail with
 * at_error_set(); at_error_detail() returns the last one recorded on the
 * calling thread. Details never contain key material or user data.
 */
#ifndef ATREST_COMMON_ERROR_H
#define ATREST_COMMON_ERROR_H

#define AT_WUR __attribute__((warn_unused_result))

enum at_error {
    AT_OK = 0,
    AT_EINTEGRITY = -1000,   /* authentication of stored data failed */
    AT_EINVAL = -1001,       /* invalid argument */
    AT_ENOMEM = -1002,       /* out of memory (or locked memory) */
    AT_ECRYPTO = -1003,      /* the crypto library failed */
    AT_EKEYDIR = -1004,      /* key folder missing, misplaced or unusable */
    AT_EPERM_OPEN = -1005,   /* file or folder permissions too open */
    AT_EKEYRING = -1006,     /* keyring missing, corrupted or not ours */
    AT_EKEYMISMATCH = -1007, /* key folder does not belong to this data folder */
    AT_ELOCKED = -1008,      /* data folder owned by another process */
    AT_ENOTFOUND = -1009,    /* no such store, key or version */
    AT_ESQLITE = -1010,      /* SQLite reported an error */
    AT_EFORMAT = -1011,      /* file is not in a format atrest understands */
    AT_EEXIST = -1012,       /* already exists */
    AT_EKEYUNAVAIL = -1013,  /* key provider cannot wrap/unwrap right now */
    AT_EIO = -1014,          /* I/O error without a more precise errno */
};

/* A static, human-readable name for an error code (project code or errno). */
const char *at_strerror(int err);

/* Record a detail line for the calling thread; returns err for chaining:
 *   return at_error_set(AT_EPERM_OPEN, "%s has mode %o", path, mode);     */
int at_error_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last detail recorded on this thread, or at_strerror(err) if none. */
const char *at_error_detail(void);

/* Forget the thread's detail. */
void at_error_clear(void);

#endif
