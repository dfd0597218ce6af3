/*
 * tlsio.c — the socket under each TLS session.
 *
 * System calls are the largest cost of a small request on this kind of
 * machine (docs/bench-server.md). GnuTLS's own transport makes two recv
 * calls per request record (its 5-byte header, then the rest), and
 * libmicrohttpd sends a response's header and body as two records, so two
 * sendmsg (or, to join them, a cork and the socket options around it).
 * This transport does each with one call:
 *
 *   pull  reads up to IN_CAP bytes into the connection's buffer and serves
 *         GnuTLS's reads from it; a read as large as the buffer goes
 *         straight to the caller.
 *   push  sends what GnuTLS hands it with one sendmsg, after any bytes held
 *         for this connection; when asked to (tlsio_hold_next), it keeps
 *         the next record (a response's header) and sends it with the one
 *         after it (the body).
 *
 * Invariants:
 *   1. pull answers EAGAIN only when the buffer is empty and the socket
 *      said EAGAIN. libmicrohttpd waits for the next edge-triggered epoll
 *      event only after an EAGAIN, so bytes read ahead into the buffer are
 *      never left waiting for an event that will not come.
 *   2. Bytes go out in the order GnuTLS pushed them: every push sends the
 *      held bytes first, and says EAGAIN (with nothing of its own record
 *      sent) while any of them remain.
 *   3. A record is held only when another push surely follows on the same
 *      connection (the caller's promise, see tlsio.h). push says EAGAIN
 *      only after the socket took less than it was given, so the socket is
 *      full and epoll will report it writable again.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "server/tlsio.h"

#define IN_CAP   8192  /* read-ahead per connection */
#define HOLD_MAX 16384 /* largest record held back (a response header) */
#define IOV_CAP  16

struct tlsio {
    gnutls_session_t s;
    int fd;
    int hold;        /* hold the next record pushed */
    size_t in_off;   /* next unread byte of in[] */
    size_t in_len;   /* bytes in in[] */
    size_t held_len; /* bytes in held[] */
    size_t held_cap; /* bytes allocated for held[] */
    unsigned char *held;
    unsigned char in[IN_CAP];
};

static ssize_t fail(struct tlsio *t, int err)
{
    gnutls_transport_set_errno(t->s, err);
    errno = err;
    return -1;
}

ssize_t tlsio_pull(struct tlsio *t, void *data, size_t len)
{
    if (t->in_off == t->in_len) {
        void *to = len >= IN_CAP ? data : t->in;
        ssize_t n = recv(t->fd, to, len >= IN_CAP ? len : IN_CAP, 0);
        if (n < 0)
            return fail(t, errno);
        if (n == 0 || to == data)
            return n;
        t->in_off = 0;
        t->in_len = (size_t)n;
    }
    size_t n = t->in_len - t->in_off;
    if (n > len)
        n = len;
    memcpy(data, t->in + t->in_off, n);
    t->in_off += n;
    return (ssize_t)n;
}

/* GnuTLS asks whether data can be read within ms milliseconds. */
static int pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct tlsio *t = p;
    if (t->in_off < t->in_len)
        return 1;
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
    int n = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : ms > INT_MAX ? INT_MAX : (int)ms);
    return n < 0 ? (int)fail(t, errno) : n;
}

ssize_t tlsio_push(struct tlsio *t, const giovec_t *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (t->hold && t->held_len == 0) {
        t->hold = 0;
        if (total <= HOLD_MAX && total > t->held_cap) { /* headers are ~1 KiB: grow to fit */
            size_t cap = (total + 1023) & ~(size_t)1023;
            unsigned char *grown = realloc(t->held, cap);
            if (grown) {
                t->held = grown;
                t->held_cap = cap;
            }
        }
        if (total > 0 && total <= t->held_cap) {
            for (int i = 0; i < iovcnt; i++) {
                memcpy(t->held + t->held_len, iov[i].iov_base, iov[i].iov_len);
                t->held_len += iov[i].iov_len;
            }
            return (ssize_t)total;
        }
    }
    struct iovec v[IOV_CAP];
    int k = 0;
    if (t->held_len)
        v[k++] = (struct iovec){.iov_base = t->held, .iov_len = t->held_len};
    for (int i = 0; i < iovcnt && k < IOV_CAP; i++) /* the rest: a partial write */
        v[k++] = (struct iovec){.iov_base = iov[i].iov_base, .iov_len = iov[i].iov_len};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)k};
    ssize_t w = sendmsg(t->fd, &m, MSG_NOSIGNAL);
    if (w < 0)
        return fail(t, errno);
    if ((size_t)w < t->held_len) { /* invariant 2 */
        memmove(t->held, t->held + w, t->held_len - (size_t)w);
        t->held_len -= (size_t)w;
        return fail(t, EAGAIN);
    }
    w -= (ssize_t)t->held_len;
    t->held_len = 0;
    if (w == 0 && total > 0)
        return fail(t, EAGAIN);
    return w;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
    return tlsio_pull(p, data, len);
}

static ssize_t push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
    return tlsio_push(p, iov, iovcnt);
}

struct tlsio *tlsio_attach(gnutls_session_t s, int fd)
{
    struct tlsio *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    t->s = s;
    t->fd = fd;
    t->hold = 0;
    t->in_off = t->in_len = t->held_len = t->held_cap = 0;
    t->held = NULL;
    gnutls_transport_set_ptr(s, t);
    gnutls_transport_set_pull_function(s, pull);
    gnutls_transport_set_pull_timeout_function(s, pull_timeout);
    gnutls_transport_set_vec_push_function(s, push);
    return t;
}

void tlsio_hold_next(struct tlsio *t, int on)
{
    if (t)
        t->hold = on && t->held_len == 0;
}

size_t tlsio_held(const struct tlsio *t)
{
    return t ? t->held_len : 0;
}

void tlsio_free(struct tlsio *t)
{
    if (!t)
        return;
    free(t->held);
    free(t);
}
