/*
 * admin.h — signed requests from the CLI to a running atrestd's admin
 * resources (/atrest/...), with the master key like every Cosmos request
 * (resource type "atrest", resource link e.g. "atrest/backups"); and
 * reading a key service token for the CLI's commands.
 */
#ifndef ATREST_CLI_ADMIN_H
#define ATREST_CLI_ADMIN_H

#include <stddef.h>

struct admin_conn {
    const char *endpoint;   /* https://HOST:PORT */
    const char *master_key; /* base64 */
    const char *cacert;     /* trust this certificate (PEM), or NULL */
    int insecure;           /* skip certificate checks (self-signed dev certs) */
};

/* Send verb ("POST" or "GET", empty body) to /link. On a response: 0 with
 * *status and the body in out (NUL-terminated, cut at cap - 1). Otherwise
 * 2, with the reason printed to stderr after "what: ". */
int admin_call(const struct admin_conn *a, const char *what, const char *verb, const char *link,
               long *status, char *out, size_t cap);

/* The first line of a token file (trailing blanks cut) in locked memory:
 * free it with secmem_free(p, *alloc). NULL when it cannot be read. */
char *cli_read_secret(const char *path, size_t *alloc);

/* A provider for a key in a key service, key_url being
 * https://HOST:PORT/keys/NAME, with the bearer token in token_file and the
 * service's certificate(s) in ca (NULL: system roots). no_check: no round
 * trip at open. 0, or an error (at_error_detail() says why). */
struct key_provider;
int cli_open_kms(const char *key_url, const char *token_file, const char *ca, int insecure,
                 int no_check, struct key_provider **kp);

#endif
