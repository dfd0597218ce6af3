/*
 * http.c — libmicrohttpd glue for the key service (see api.h).
 *
 * A thread per connection: every request is short (a wrap is microseconds,
 * an RSA unwrap a millisecond or two, RSA key generation up to seconds) and
 * the service sees few clients, so blocking is simpler than hand-offs.
 * Request bodies (they carry keys to wrap) are capped at BODY_MAX and wiped
 * when freed; responses (they carry unwrapped keys) are wiped by
 * kms_wipe_free when MHD releases them. The response is queued on the
 * access handler's last call, never the first (libmicrohttpd 0.9.75 closes
 * the connection after a response queued on the first call).
 */
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kms/api.h"

#define BODY_MAX (64 * 1024)

struct kms_http {
    struct MHD_Daemon *d;
    struct kms_server *s;
};

struct conn {
    char *body;
    size_t len, cap;
    int too_big;
};

static void conn_free(struct conn *c)
{
    kms_wipe_free(c->body);
    free(c);
}

static enum MHD_Result send_response(struct kms_http *h, struct MHD_Connection *conn,
                                     const char *method, struct kms_response *rs)
{
    struct MHD_Response *r;
    if (rs->body) {
        r = MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, kms_wipe_free);
        if (!r)
            kms_wipe_free(rs->body);
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    rs->body = NULL;
    if (!r)
        return MHD_NO;
    if (rs->len)
        MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    if (rs->challenge) {
        char ch[512];
        kms_api_challenge(h->s, ch, sizeof ch);
        MHD_add_response_header(r, "WWW-Authenticate", ch);
    }
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    if (h->s->log_requests)
        fprintf(stderr, "atrest-kms: %s %s %d\n", method, rs->route, rs->status);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct kms_http *h = cls;
    struct conn *c = *con_cls;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_big || c->len + n > BODY_MAX) {
            c->too_big = 1;
            return MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 1024;
            while (cap < c->len + n + 1)
                cap *= 2;
            char *b = malloc(cap);
            if (!b)
                return MHD_NO;
            if (c->len)
                memcpy(b, c->body, c->len);
            kms_wipe_free(c->body);
            c->body = b;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    struct kms_response rs;
    if (c->too_big) {
        static const char big[] =
            "{\"error\":{\"code\":\"BadParameter\",\"message\":\"The request body is too large.\"}}";
        memset(&rs, 0, sizeof rs);
        rs.status = 413;
        rs.body = strdup(big);
        rs.len = rs.body ? strlen(big) : 0;
        snprintf(rs.route, sizeof rs.route, "too-large");
        return send_response(h, conn, method, &rs);
    }
    struct kms_request rq = {
        .method = method,
        .path = url,
        .api_version = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "api-version"),
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
        .body = c->body,
        .body_len = c->len,
    };
    kms_api_handle(h->s, &rq, &rs);
    return send_response(h, conn, method, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls)
        conn_free(*con_cls);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("atrest-kms: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int kms_http_start(struct kms_server *s, const char *host, int port, const char *cert_pem,
                   const char *key_pem, struct kms_http **out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int grc = getaddrinfo(host, ports, &hints, &ai);
    if (grc != 0 || !ai)
        return at_error_set(AT_EINVAL, "cannot resolve listen address %s: %s", host,
                            gai_strerror(grc));
    struct kms_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return AT_ENOMEM;
    }
    h->s = s;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_TLS | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_PRIORITIES,
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)128, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)60, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024), MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        free(h);
        return at_error_set(AT_EIO, "cannot listen on %s:%d", host, port);
    }
    *out = h;
    return 0;
}

int kms_http_port(const struct kms_http *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void kms_http_stop(struct kms_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d); /* closes listeners and connections, joins their threads */
    free(h);
}
