/*
 * tlsio.h — the socket under each TLS session: fewer system calls per
 * request than GnuTLS's own transport (see tlsio.c).
 */
#ifndef ATREST_TLSIO_H
#define ATREST_TLSIO_H

#include <gnutls/gnutls.h>
#include <sys/types.h>

struct tlsio;

/* Put a tlsio between session s and socket fd. NULL when out of memory: s
 * keeps GnuTLS's own transport, which works, only with more calls. */
struct tlsio *tlsio_attach(gnutls_session_t s, int fd);

/* on: the next record GnuTLS pushes is a response's header and its body
 * comes next: hold the header and send both with one sendmsg. Only when a
 * body record surely follows (never for HEAD, 1xx, 204 or 304). off: forget
 * such a request (a response that was not queued after all). */
void tlsio_hold_next(struct tlsio *t, int on);

/* Bytes still held (0 when the last response went out whole). */
size_t tlsio_held(const struct tlsio *t);

/* What GnuTLS calls (exported for tests): read up to len bytes; send the
 * vector (a prefix of it may go). -1 with errno (EAGAIN: try again once
 * the socket is ready), 0 at the end of the stream for pull. */
ssize_t tlsio_pull(struct tlsio *t, void *data, size_t len);
ssize_t tlsio_push(struct tlsio *t, const giovec_t *iov, int iovcnt);

/* Free t; its session must not push or pull any more. */
void tlsio_free(struct tlsio *t);

#endif
