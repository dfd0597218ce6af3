/*
 * ctlsock.c — see ctlsock.h.
 */
#include "common/ctlsock.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctlsock_addr(const char *data_dir, struct sockaddr_un *a, socklen_t *len)
{
    char real[PATH_MAX];
    if (!realpath(data_dir, real))
        return errno ? errno : ENOENT;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(real, strlen(real), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
        return EIO;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "atrestd-");
    for (int i = 0; i < 16; i++)
        n += snprintf(a->sun_path + 1 + n, sizeof a->sun_path - 1 - (size_t)n, "%02x", md[i]);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    return 0;
}
