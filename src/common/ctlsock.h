/*
 * ctlsock.h — the name of atrestd's control socket for a data folder.
 *
 * The socket lives in Linux's abstract namespace (no file: nothing in the
 * data folder that a scan of it could trip over, nothing left behind by a
 * killed process), named "atrestd-" and the first 32 hex digits of the
 * SHA-256 of the folder's real path. Abstract sockets have no file
 * permissions, so the server checks each peer's credentials (SO_PEERCRED)
 * and serves only its own user.
 */
#ifndef ATREST_COMMON_CTLSOCK_H
#define ATREST_COMMON_CTLSOCK_H

#include <sys/socket.h>
#include <sys/un.h>

#include "common/error.h"

/* Fill *a for data_dir (which must exist); *len is the address length to
 * pass to bind/connect. 0, or an errno value. */
int ctlsock_addr(const char *data_dir, struct sockaddr_un *a, socklen_t *len) AT_WUR;

#endif
