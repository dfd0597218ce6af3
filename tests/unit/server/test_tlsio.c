/*
 * test_tlsio.c — the transport under each TLS session (server/tlsio.h),
 * over a real TCP connection on 127.0.0.1 with small socket buffers.
 *
 *  - pull: several records arriving in one segment are served in order
 *    from the read-ahead, EAGAIN only once they are all used; a large read
 *    goes straight to the caller; 0 at the end of the stream;
 *  - push with a held header: nothing reaches the wire until the body is
 *    pushed, then both arrive in order;
 *  - a full socket (a Unix socket pair, whose sends are cut at ~2 KiB
 *    buffers, so a 5,000-byte header goes out in parts): 400 rounds of
 *    filler that fills the send buffer, then
 *    a held header and a body pushed as GnuTLS retries them (same bytes
 *    again after EAGAIN, the rest after a partial write) while the peer
 *    drains a random amount at a time: the peer reads exactly the bytes
 *    pushed, in order; the rounds must include held headers that went out
 *    only in part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "server/tlsio.h"

struct pair {
    int srv; /* non-blocking, small send buffer: the tlsio's socket */
    int cli; /* the peer, non-blocking reads */
    gnutls_session_t s;
    struct tlsio *t;
};

/* A TCP connection on 127.0.0.1, or (local) a Unix stream socket pair,
 * whose sends are refused or cut at whole buffers of about 2 KiB: the way
 * to get a held header out only in part every time. */
static void pair_open(struct pair *p, int local)
{
    if (local) {
        int sv[2], small = 4096;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        p->srv = sv[0];
        p->cli = sv[1];
        assert_int_equal(setsockopt(p->srv, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        goto session;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    p->cli = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096, one = 1;
    assert_int_equal(setsockopt(p->cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(connect(p->cli, (struct sockaddr *)&a, sizeof a), 0);
    p->srv = accept(ls, NULL, NULL);
    assert_true(p->srv >= 0);
    close(ls);
    assert_int_equal(setsockopt(p->srv, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(p->srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
session:
    fcntl(p->srv, F_SETFL, fcntl(p->srv, F_GETFL) | O_NONBLOCK);
    fcntl(p->cli, F_SETFL, fcntl(p->cli, F_GETFL) | O_NONBLOCK);
    assert_int_equal(gnutls_init(&p->s, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
    p->t = tlsio_attach(p->s, p->srv);
    assert_non_null(p->t);
}

static void pair_close(struct pair *p)
{
    tlsio_free(p->t);
    gnutls_deinit(p->s);
    close(p->srv);
    if (p->cli >= 0)
        close(p->cli);
}

/* Read from the peer until n bytes came or none are ready after a pause. */
static size_t peer_read(struct pair *p, unsigned char *buf, size_t n)
{
    size_t got = 0;
    for (int idle = 0; got < n && idle < 20;) {
        ssize_t r = recv(p->cli, buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            idle = 0;
        } else {
            assert_true(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            usleep(1000);
            idle++;
        }
    }
    return got;
}

static ssize_t push1(struct pair *p, const void *b, size_t n)
{
    giovec_t v = {.iov_base = (void *)b, .iov_len = n};
    return tlsio_push(p->t, &v, 1);
}

static void test_pull(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, 0);
    unsigned char in[3 * 1024], out[40000];
    memset(in, 'A', 5);
    memset(in + 5, 'B', 300);
    memset(in + 305, 'C', 20);
    assert_int_equal(send(p.cli, in, 325, 0), 325);
    usleep(20000);
    assert_int_equal(tlsio_pull(p.t, out, 5), 5);
    assert_memory_equal(out, in, 5);
    assert_int_equal(tlsio_pull(p.t, out, 300), 300);
    assert_memory_equal(out, in + 5, 300);
    assert_int_equal(tlsio_pull(p.t, out, 100), 20); /* what is left, no more */
    assert_memory_equal(out, in + 305, 20);
    errno = 0;
    assert_int_equal(tlsio_pull(p.t, out, 10), -1);
    assert_int_equal(errno, EAGAIN);

    /* A read as large as the read-ahead goes to the caller directly. */
    unsigned char big[20000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    assert_int_equal(send(p.cli, big, sizeof big, 0), (ssize_t)sizeof big);
    usleep(20000);
    size_t got = 0;
    while (got < sizeof big) {
        ssize_t r = tlsio_pull(p.t, out + got, sizeof out - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(out, big, sizeof big);

    /* The peer closes: 0 once everything sent before was read. */
    assert_int_equal(send(p.cli, "xyz", 3, 0), 3);
    close(p.cli);
    p.cli = -1;
    usleep(20000);
    assert_int_equal(tlsio_pull(p.t, out, 2), 2);
    assert_int_equal(tlsio_pull(p.t, out, 2), 1);
    assert_int_equal(tlsio_pull(p.t, out, 2), 0);
    pair_close(&p);
}

static void test_hold(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, 0);
    unsigned char hdr[700], body[1000], got[2000];
    memset(hdr, 'h', sizeof hdr);
    memset(body, 'b', sizeof body);
    tlsio_hold_next(p.t, 1);
    assert_int_equal(push1(&p, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    assert_int_equal(tlsio_held(p.t), sizeof hdr);
    usleep(20000);
    assert_int_equal(recv(p.cli, got, sizeof got, 0), -1); /* nothing on the wire */
    assert_int_equal(push1(&p, body, sizeof body), (ssize_t)sizeof body);
    assert_int_equal(tlsio_held(p.t), 0);
    assert_int_equal(peer_read(&p, got, 1700), 1700);
    assert_memory_equal(got, hdr, sizeof hdr);
    assert_memory_equal(got + 700, body, sizeof body);

    /* Called off: the next record goes out at once. */
    tlsio_hold_next(p.t, 1);
    tlsio_hold_next(p.t, 0);
    assert_int_equal(push1(&p, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    assert_int_equal(peer_read(&p, got, 700), 700);
    pair_close(&p);
}

static void test_full_socket(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p, 1);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    enum { HDR = 5000, BODY = 9000, CAP = 1 << 20 };
    unsigned char *want = malloc(CAP), *got = malloc(CAP);
    assert_non_null(want);
    assert_non_null(got);
    int partial_held = 0;
    for (int round = 0; round < 400; round++) {
        size_t nwant = 0, ngot = 0;
        unsigned char filler[1024];
        /* Fill the socket. */
        for (;;) {
            memset(filler, 'a' + round % 26, sizeof filler);
            ssize_t w = push1(&p, filler, sizeof filler);
            if (w < 0) {
                assert_int_equal(errno, EAGAIN);
                break;
            }
            memcpy(want + nwant, filler, (size_t)w);
            nwant += (size_t)w;
        }
        /* Let a little drain, then push a held header and its body. */
        ngot += peer_read(&p, got + ngot, 1 + fx_xorshift(&rng) % 3000);
        unsigned char rec[HDR + BODY];
        for (size_t i = 0; i < sizeof rec; i++)
            rec[i] = (unsigned char)(round + i * 13);
        tlsio_hold_next(p.t, 1);
        assert_int_equal(push1(&p, rec, HDR), HDR);
        memcpy(want + nwant, rec, sizeof rec);
        nwant += sizeof rec;
        for (size_t off = HDR; off < sizeof rec;) {
            ssize_t w = push1(&p, rec + off, sizeof rec - off);
            if (w < 0) {
                assert_int_equal(errno, EAGAIN);
                size_t held = tlsio_held(p.t);
                partial_held += held > 0 && held < HDR;
                ngot += peer_read(&p, got + ngot, 1 + fx_xorshift(&rng) % 2000);
            } else {
                off += (size_t)w;
            }
        }
        assert_int_equal(tlsio_held(p.t), 0);
        ngot += peer_read(&p, got + ngot, nwant - ngot);
        assert_int_equal(ngot, nwant);
        assert_memory_equal(got, want, nwant);
    }
    print_message("held headers sent in part: %d\n", partial_held);
    assert_true(partial_held > 0);
    free(want);
    free(got);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull),
        cmocka_unit_test(test_hold),
        cmocka_unit_test(test_full_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
