/*
 * common/net.c - DiMAPI transport (interface and security rules in common/net.h): TCP
 * connections, TLS 1.2+ with OpenSSL 3 or plain TCP, carrying wire.h messages. Used by
 * mapicommd (net_server_ctx, net_listen, net_accept) and libmapi's remote back end
 * (net_client_ctx, net_connect); both use net_send / net_recv / net_close.
 *
 * Non-blocking I/O: every socket is O_NONBLOCK; each call computes a deadline from its
 * timeout and waits with poll() for what OpenSSL (or the plain socket) needs (SSL_ERROR_WANT_READ
 * / WANT_WRITE), so no call blocks longer than its timeout.
 *
 * SIGPIPE: a write to a connection the peer has closed must not kill the process (libmapi runs
 * inside applications that may not ignore SIGPIPE). Plain TCP writes use send(MSG_NOSIGNAL).
 * TLS connections do not use OpenSSL's socket BIO (it writes with write(), which raises
 * SIGPIPE) but a small BIO of our own (sock_bio_*) that reads with recv() and writes with
 * send(MSG_NOSIGNAL). So neither side needs to touch the process's signal dispositions.
 *
 * Mode mismatch: a TLS server that sees a plain DiMAPI message (the wire magic "MAPI") as the
 * first bytes answers it with a plain wire error ("this sensor requires TLS") before closing,
 * so a plaintext client gets a clear error; a TLS client that talks to a plaintext server sees
 * the connection closed in the handshake and says the server may be in plaintext mode.
 */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mapi/errors.h"

struct net_ctx {
    SSL_CTX *ssl; /* NULL in plaintext mode */
    int server;
};

struct net_conn {
    int fd;
    SSL *ssl;       /* NULL in plaintext mode */
    char peer[300]; /* "host:port" or "[v6]:port" */
    char subject[256];
};

/* ---- helpers ------------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a timeout (< 0: none, returned as -1). */
static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Milliseconds left until deadline (-1: forever), 0 when passed. */
static int left_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t l = deadline - now_ms();
    return l <= 0 ? 0 : (l > 0x7fffffff ? 0x7fffffff : (int)l);
}

/* Waits for events on fd until the deadline. 1 ready, 0 timeout, -1 error (errno). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, left_ms(deadline));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        return rc > 0 ? 1 : 0;
    }
}

/* The most recent OpenSSL error text (and clears the queue), or `fallback`. */
static const char *ssl_errstr(char *buf, size_t len, const char *fallback)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!last)
        return fallback;
    ERR_error_string_n(last, buf, len);
    /* "error:0A000086:SSL routines::certificate verify failed" -> keep the reason. */
    const char *p = strrchr(buf, ':');
    return p && p[1] ? p + 1 : buf;
}

static void format_peer(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(out, len, "%s:%d", host, port);
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            snprintf(out, len, "[%s]:%d", host, port);
        }
    } else {
        snprintf(out, len, "?");
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

/* ---- a socket BIO that never raises SIGPIPE ------------------------------------------- */

static BIO_METHOD *sock_bio_method;
static pthread_once_t sock_bio_once = PTHREAD_ONCE_INIT;

static int sock_bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_write(b);
        *written = 0;
        return 0;
    }
    *written = (size_t)n;
    return 1;
}

static int sock_bio_read(BIO *b, char *buf, size_t len, size_t *readbytes)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(fd, buf, len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            BIO_set_retry_read(b);
        *readbytes = 0;
        return 0;
    }
    *readbytes = (size_t)n;
    return n > 0; /* 0 bytes: EOF, not retryable */
}

static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int sock_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int sock_bio_destroy(BIO *b)
{
    (void)b; /* the descriptor belongs to the net_conn */
    return 1;
}

static void sock_bio_init(void)
{
    OPENSSL_init_ssl(0, NULL);
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mapi_socket");
    if (!m)
        return;
    BIO_meth_set_write_ex(m, sock_bio_write);
    BIO_meth_set_read_ex(m, sock_bio_read);
    BIO_meth_set_ctrl(m, sock_bio_ctrl);
    BIO_meth_set_create(m, sock_bio_create);
    BIO_meth_set_destroy(m, sock_bio_destroy);
    sock_bio_method = m;
}

/* A BIO over fd (not owning it), or NULL. */
static BIO *sock_bio_new(int fd)
{
    pthread_once(&sock_bio_once, sock_bio_init);
    if (!sock_bio_method)
        return NULL;
    BIO *b = BIO_new(sock_bio_method);
    if (b)
        BIO_set_data(b, (void *)(intptr_t)fd);
    return b;
}

/* ---- contexts ------------------------------------------------------------------------ */

static SSL_CTX *new_ssl_ctx(int server, char *err, size_t errlen)
{
    pthread_once(&sock_bio_once, sock_bio_init);
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        char b[256];
        set_err(err, errlen, "cannot create a TLS context: %s",
                ssl_errstr(b, sizeof(b), "out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return ctx;
}

struct net_ctx *net_server_ctx(const struct mapi_conf *conf, char *err, size_t errlen)
{
    struct net_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->server = 1;
    if (conf->dimapi_plaintext)
        return c;
    char b[256];
    if (!conf->dimapi_cert[0] || !conf->dimapi_key[0]) {
        set_err(err, errlen,
                "dimapi_cert and dimapi_key must be set in %s (or dimapi_plaintext=1 for plain "
                "TCP)",
                conf->path[0] ? conf->path : "mapi.conf");
        goto fail;
    }
    c->ssl = new_ssl_ctx(1, err, errlen);
    if (!c->ssl)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(c->ssl, conf->dimapi_cert) != 1) {
        set_err(err, errlen, "dimapi_cert %s: %s", conf->dimapi_cert,
                ssl_errstr(b, sizeof(b), "unreadable certificate"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ssl, conf->dimapi_key, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "dimapi_key %s: %s", conf->dimapi_key,
                ssl_errstr(b, sizeof(b), "unreadable key"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(c->ssl) != 1) {
        set_err(err, errlen, "dimapi_key %s does not match dimapi_cert %s", conf->dimapi_key,
                conf->dimapi_cert);
        ERR_clear_error();
        goto fail;
    }
    if (conf->dimapi_client_ca[0]) {
        if (SSL_CTX_load_verify_locations(c->ssl, conf->dimapi_client_ca, NULL) != 1) {
            set_err(err, errlen, "dimapi_client_ca %s: %s", conf->dimapi_client_ca,
                    ssl_errstr(b, sizeof(b), "unreadable CA file"));
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->dimapi_client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(c->ssl, names);
        ERR_clear_error();
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    }
    /* No session resumption: connections are long-lived, and no tickets to send. */
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c->ssl, 0);
    return c;
fail:
    net_ctx_free(c);
    return NULL;
}

struct net_ctx *net_client_ctx(const struct mapi_conf *conf, char *err, size_t errlen)
{
    struct net_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (conf->dimapi_plaintext)
        return c;
    char b[256];
    if (!conf->dimapi_ca[0]) {
        set_err(err, errlen,
                "dimapi_ca (the CA that signs the sensors' certificates) must be set in %s (or "
                "dimapi_plaintext=1 for plain TCP)",
                conf->path[0] ? conf->path : "mapi.conf");
        goto fail;
    }
    c->ssl = new_ssl_ctx(0, err, errlen);
    if (!c->ssl)
        goto fail;
    if (SSL_CTX_load_verify_locations(c->ssl, conf->dimapi_ca, NULL) != 1) {
        set_err(err, errlen, "dimapi_ca %s: %s", conf->dimapi_ca,
                ssl_errstr(b, sizeof(b), "unreadable CA file"));
        goto fail;
    }
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    if (conf->dimapi_client_cert[0] || conf->dimapi_client_key[0]) {
        if (!conf->dimapi_client_cert[0] || !conf->dimapi_client_key[0]) {
            set_err(err, errlen, "dimapi_client_cert and dimapi_client_key go together");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(c->ssl, conf->dimapi_client_cert) != 1) {
            set_err(err, errlen, "dimapi_client_cert %s: %s", conf->dimapi_client_cert,
                    ssl_errstr(b, sizeof(b), "unreadable certificate"));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(c->ssl, conf->dimapi_client_key, SSL_FILETYPE_PEM) != 1) {
            set_err(err, errlen, "dimapi_client_key %s: %s", conf->dimapi_client_key,
                    ssl_errstr(b, sizeof(b), "unreadable key"));
            goto fail;
        }
        if (SSL_CTX_check_private_key(c->ssl) != 1) {
            set_err(err, errlen, "dimapi_client_key %s does not match dimapi_client_cert %s",
                    conf->dimapi_client_key, conf->dimapi_client_cert);
            ERR_clear_error();
            goto fail;
        }
    }
    return c;
fail:
    net_ctx_free(c);
    return NULL;
}

void net_ctx_free(struct net_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

/* ---- listening ----------------------------------------------------------------------- */

static int bind_listen(int family, const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(fd, sa, salen) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int net_listen(const char *addr, int port, char *err, size_t errlen)
{
    if (port <= 0 || port > 65535) {
        set_err(err, errlen, "bad port %d", port);
        return -1;
    }
    if (!addr || !addr[0]) {
        /* All addresses: one IPv6 socket that also takes IPv4 (mapped); IPv4 only if the
         * host has no IPv6. */
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons((uint16_t)port),
                                  .sin6_addr = IN6ADDR_ANY_INIT};
        int fd = bind_listen(AF_INET6, (struct sockaddr *)&s6, sizeof(s6), 0);
        if (fd >= 0)
            return fd;
        if (errno != EAFNOSUPPORT) {
            set_err(err, errlen, "cannot listen on [::]:%d: %s", port, strerror(errno));
            return -1;
        }
        struct sockaddr_in s4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        fd = bind_listen(AF_INET, (struct sockaddr *)&s4, sizeof(s4), 0);
        if (fd < 0)
            set_err(err, errlen, "cannot listen on 0.0.0.0:%d: %s", port, strerror(errno));
        return fd;
    }
    char host[256];
    snprintf(host, sizeof(host), "%s", addr);
    /* Accept "[v6]" too. */
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n >= 2 && host[n - 1] == ']') {
            memmove(host, host + 1, n - 2);
            host[n - 2] = 0;
        }
    }
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        set_err(err, errlen, "cannot listen on %s:%d: %s", addr, port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = bind_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, 1);
        if (fd < 0)
            e = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        set_err(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(e));
    return fd;
}

/* ---- connections --------------------------------------------------------------------- */

static struct net_conn *conn_new(int fd)
{
    struct net_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "?");
    return c;
}

static void conn_free(struct net_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Describes a failed SSL call (after SSL_get_error gave `e`) into err. */
static void ssl_fail(struct net_conn *c, int e, const char *what, char *err, size_t errlen)
{
    char b[256];
    if (e == SSL_ERROR_SSL) {
        long vr = SSL_get_verify_result(c->ssl);
        const char *reason = ssl_errstr(b, sizeof(b), "TLS error");
        if (vr != X509_V_OK && strstr(reason, "verify"))
            set_err(err, errlen, "%s: %s: %s (%s)", c->peer, what, reason,
                    X509_verify_cert_error_string(vr));
        else
            set_err(err, errlen, "%s: %s: %s", c->peer, what, reason);
    } else if (e == SSL_ERROR_ZERO_RETURN) {
        set_err(err, errlen, "%s: connection closed by the peer", c->peer);
    } else if (e == SSL_ERROR_SYSCALL) {
        int se = errno;
        const char *reason = ssl_errstr(b, sizeof(b), NULL);
        if (reason)
            set_err(err, errlen, "%s: %s: %s", c->peer, what, reason);
        else if (se && se != EAGAIN)
            set_err(err, errlen, "%s: %s: %s", c->peer, what, strerror(se));
        else
            set_err(err, errlen, "%s: %s: connection closed by the peer", c->peer, what);
    } else {
        set_err(err, errlen, "%s: %s: TLS error %d", c->peer, what, e);
    }
    ERR_clear_error();
}

/* Runs the TLS handshake (server or client) until the deadline. 0, or -1 with err. */
static int handshake(struct net_conn *c, int server, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        ERR_clear_error();
        int rc = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
        if (rc == 1)
            return 0;
        int e = SSL_get_error(c->ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            ssl_fail(c, e, "TLS handshake failed", err, errlen);
            if (!server && (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN))
                set_err(err + strlen(err), errlen - strlen(err),
                        " (does the server expect plain TCP, dimapi_plaintext=1?)");
            return -1;
        }
        int w = wait_fd(c->fd, ev, deadline);
        if (w <= 0) {
            set_err(err, errlen, "%s: TLS handshake: %s", c->peer,
                    w == 0 ? "timed out" : strerror(errno));
            return -1;
        }
    }
}

/* Server in TLS mode: if the client speaks plain DiMAPI (first bytes are the wire magic),
 * answers with a plain error and returns 1; 0 if it looks like TLS (or nothing came yet). */
static int refuse_plain_client(struct net_conn *c, int64_t deadline)
{
    uint8_t b[4];
    if (wait_fd(c->fd, POLLIN, deadline) <= 0)
        return 0;
    ssize_t n = recv(c->fd, b, sizeof(b), MSG_PEEK);
    if (n < 4 ||
        ((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]) != WIRE_MAGIC)
        return 0;
    /* Consume what the client sent (a HELLO is small), so that closing does not reset the
     * connection and destroy our answer before the client reads it. */
    uint8_t buf[256];
    n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    struct wire_hdr h = {0};
    if (n < (ssize_t)WIRE_HDR_SIZE || wire_parse_header(buf, &h) < 0)
        h.type = 0;
    while (recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    struct wire_writer w;
    wire_writer_init(&w, h.type, h.reqid, WIRE_F_ERROR);
    wire_put_i32(&w, MCOM_INIT_SOCKET_ERROR);
    wire_put_str(&w, "this sensor requires TLS: set dimapi_ca (and dimapi_plaintext=0) in the "
                     "client's mapi.conf");
    if (wire_finish(&w) == 0)
        (void)send(c->fd, w.buf, w.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    wire_writer_free(&w);
    shutdown(c->fd, SHUT_WR);
    return 1;
}

struct net_conn *net_accept(struct net_ctx *ctx, int fd, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = deadline_of(timeout_ms);
    struct net_conn *c = conn_new(fd);
    if (!c) {
        close(fd);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        format_peer((struct sockaddr *)&ss, c->peer, sizeof(c->peer));
    if (set_nonblock(fd) < 0) {
        set_err(err, errlen, "%s: %s", c->peer, strerror(errno));
        conn_free(c);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    if (!ctx->ssl)
        return c;
    if (refuse_plain_client(c, deadline)) {
        set_err(err, errlen, "%s: refused a plain TCP client (TLS required)", c->peer);
        conn_free(c);
        return NULL;
    }
    BIO *b = sock_bio_new(fd);
    c->ssl = SSL_new(ctx->ssl);
    if (!b || !c->ssl) {
        BIO_free(b);
        set_err(err, errlen, "%s: out of memory", c->peer);
        conn_free(c);
        return NULL;
    }
    SSL_set_bio(c->ssl, b, b);
    if (handshake(c, 1, deadline, err, errlen) < 0) {
        conn_free(c);
        return NULL;
    }
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    if (cert)
        X509_NAME_oneline(X509_get_subject_name(cert), c->subject, sizeof(c->subject));
    return c;
}

/* Non-blocking connect of one address within the deadline. fd or -1 (errno). */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int w = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (w <= 0) {
            close(fd);
            errno = w == 0 ? ETIMEDOUT : errno;
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            close(fd);
            errno = soerr ? soerr : EIO;
            return -1;
        }
    }
    return fd;
}

/*
 * getaddrinfo within the deadline. Address literals are converted at once; names go to glibc's
 * asynchronous resolver (getaddrinfo_a), waited for with gai_suspend until the deadline, so a
 * dead DNS server cannot hold a call longer than dimapi_timeout. A request still running at the
 * deadline is cancelled; if the resolver cannot cancel it, its memory is left to it (a few
 * hundred bytes, only when DNS itself hangs). Returns 0 and *res, or an EAI_* code.
 */
static int resolve(const char *host, const char *port, const struct addrinfo *hints,
                   int64_t deadline, struct addrinfo **res)
{
    unsigned char lit[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, lit) == 1 || inet_pton(AF_INET6, host, lit) == 1) {
        struct addrinfo h = *hints;
        h.ai_flags |= AI_NUMERICHOST;
        return getaddrinfo(host, port, &h, res);
    }
    struct gai_req {
        struct gaicb cb;
        struct addrinfo hints;
        char host[256], port[16];
    } *q = calloc(1, sizeof(*q));
    if (!q)
        return EAI_MEMORY;
    snprintf(q->host, sizeof(q->host), "%s", host);
    snprintf(q->port, sizeof(q->port), "%s", port);
    q->hints = *hints;
    q->cb.ar_name = q->host;
    q->cb.ar_service = q->port;
    q->cb.ar_request = &q->hints;
    struct gaicb *list[1] = {&q->cb};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc != 0) {
        free(q);
        return rc;
    }
    for (;;) {
        rc = gai_error(&q->cb);
        if (rc != EAI_INPROGRESS)
            break;
        int ms = left_ms(deadline);
        if (ms == 0) {
            if (gai_cancel(&q->cb) == EAI_CANCELED || gai_error(&q->cb) != EAI_INPROGRESS) {
                rc = gai_error(&q->cb);
                if (rc == 0)
                    freeaddrinfo(q->cb.ar_result);
                free(q);
            } /* else: still running in the resolver's thread; it owns q now */
            return EAI_AGAIN;
        }
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        const struct gaicb *wait[1] = {&q->cb};
        gai_suspend(wait, 1, ms < 0 ? NULL : &ts);
    }
    if (rc == 0)
        *res = q->cb.ar_result;
    free(q);
    return rc;
}

struct net_conn *net_connect(struct net_ctx *ctx, const char *host, int port, int timeout_ms,
                             char *err, size_t errlen)
{
    int64_t deadline = deadline_of(timeout_ms);
    char peer[300];
    int v6lit = host && strchr(host, ':') != NULL;
    snprintf(peer, sizeof(peer), v6lit ? "[%s]:%d" : "%s:%d", host ? host : "", port);
    if (!host || !host[0] || port <= 0 || port > 65535) {
        set_err(err, errlen, "%s: bad address", peer);
        return NULL;
    }
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = resolve(host, ports, &hints, deadline, &res);
    if (gai != 0) {
        set_err(err, errlen, "%s: cannot resolve: %s", peer,
                gai == EAI_AGAIN && left_ms(deadline) == 0 ? "timed out" : gai_strerror(gai));
        return NULL;
    }
    int fd = -1, e = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_addr(ai, deadline);
        if (fd < 0) {
            e = errno;
            if (e == ETIMEDOUT)
                break;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot connect: %s", peer,
                e == ETIMEDOUT ? "timed out" : strerror(e));
        return NULL;
    }
    struct net_conn *c = conn_new(fd);
    if (!c) {
        close(fd);
        set_err(err, errlen, "%s: out of memory", peer);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    if (!ctx->ssl)
        return c;
    BIO *b = sock_bio_new(fd);
    c->ssl = SSL_new(ctx->ssl);
    if (!b || !c->ssl) {
        BIO_free(b);
        set_err(err, errlen, "%s: out of memory", peer);
        conn_free(c);
        return NULL;
    }
    SSL_set_bio(c->ssl, b, b);
    /* Check the certificate against the address or name we connected to. */
    struct in6_addr a6;
    struct in_addr a4;
    int ok;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) == 1;
    } else {
        ok = SSL_set1_host(c->ssl, host) == 1 && SSL_set_tlsext_host_name(c->ssl, host) == 1;
    }
    if (!ok) {
        set_err(err, errlen, "%s: cannot set the expected certificate name", peer);
        ERR_clear_error();
        conn_free(c);
        return NULL;
    }
    if (handshake(c, 0, deadline, err, errlen) < 0) {
        conn_free(c);
        return NULL;
    }
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        set_err(err, errlen, "%s: certificate verify failed: %s", peer,
                X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
        conn_free(c);
        return NULL;
    }
    return c;
}

/* ---- messages ------------------------------------------------------------------------ */

/* Writes all n bytes before the deadline. 0 or -1 with err. */
static int write_all(struct net_conn *c, const uint8_t *p, size_t n, int64_t deadline, char *err,
                     size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        short ev;
        if (c->ssl) {
            ERR_clear_error();
            size_t w = 0;
            int rc = SSL_write_ex(c->ssl, p + off, n - off, &w);
            if (rc == 1) {
                off += w;
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_WRITE)
                ev = POLLOUT;
            else if (e == SSL_ERROR_WANT_READ)
                ev = POLLIN;
            else {
                ssl_fail(c, e, "send", err, errlen);
                return -1;
            }
        } else {
            ssize_t w = send(c->fd, p + off, n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                continue;
            }
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                set_err(err, errlen, "%s: send: %s", c->peer, strerror(errno));
                return -1;
            }
            ev = POLLOUT;
        }
        int r = wait_fd(c->fd, ev, deadline);
        if (r <= 0) {
            set_err(err, errlen, "%s: send: %s", c->peer, r == 0 ? "timed out" : strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Reads exactly n bytes before the deadline. 0, -1 with err (*timed_out set on timeout). */
static int read_all(struct net_conn *c, uint8_t *p, size_t n, int64_t deadline, int *timed_out,
                    char *err, size_t errlen)
{
    size_t off = 0;
    while (off < n) {
        short ev;
        if (c->ssl) {
            ERR_clear_error();
            size_t r = 0;
            int rc = SSL_read_ex(c->ssl, p + off, n - off, &r);
            if (rc == 1) {
                off += r;
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ)
                ev = POLLIN;
            else if (e == SSL_ERROR_WANT_WRITE)
                ev = POLLOUT;
            else {
                ssl_fail(c, e, "receive", err, errlen);
                return -1;
            }
        } else {
            ssize_t r = recv(c->fd, p + off, n - off, 0);
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            if (r == 0) {
                set_err(err, errlen, "%s: connection closed by the peer", c->peer);
                return -1;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                set_err(err, errlen, "%s: receive: %s", c->peer, strerror(errno));
                return -1;
            }
            ev = POLLIN;
        }
        int w = wait_fd(c->fd, ev, deadline);
        if (w <= 0) {
            if (w == 0 && timed_out)
                *timed_out = 1;
            set_err(err, errlen, "%s: receive: %s", c->peer,
                    w == 0 ? "timed out" : strerror(errno));
            return -1;
        }
    }
    return 0;
}

int net_send(struct net_conn *c, const struct wire_writer *w, int timeout_ms, char *err,
             size_t errlen)
{
    if (w->failed || w->len < WIRE_HDR_SIZE || w->len - WIRE_HDR_SIZE > WIRE_MAX_PAYLOAD) {
        set_err(err, errlen, "%s: message too large or incomplete", c->peer);
        return -1;
    }
    return write_all(c, w->buf, w->len, deadline_of(timeout_ms), err, errlen);
}

int net_recv(struct net_conn *c, struct wire_hdr *hdr, uint8_t **payload, int timeout_ms,
             int *timed_out, char *err, size_t errlen)
{
    return net_recv_max(c, hdr, payload, WIRE_MAX_PAYLOAD, timeout_ms, timed_out, err, errlen);
}

int net_recv_max(struct net_conn *c, struct wire_hdr *hdr, uint8_t **payload, uint32_t max_len,
                 int timeout_ms, int *timed_out, char *err, size_t errlen)
{
    int64_t deadline = deadline_of(timeout_ms);
    uint8_t raw[WIRE_HDR_SIZE];
    *payload = NULL;
    if (timed_out)
        *timed_out = 0;
    if (read_all(c, raw, sizeof(raw), deadline, timed_out, err, errlen) < 0)
        return -1;
    if (wire_parse_header(raw, hdr) < 0) {
        set_err(err, errlen, "%s: malformed message header", c->peer);
        return -2;
    }
    if (hdr->length > max_len) {
        set_err(err, errlen, "%s: a %u-byte message where at most %u are allowed", c->peer,
                hdr->length, max_len);
        return -2;
    }
    uint8_t *p = malloc(hdr->length ? hdr->length : 1);
    if (!p) {
        set_err(err, errlen, "%s: out of memory for a %u-byte message", c->peer, hdr->length);
        return -1;
    }
    if (hdr->length && read_all(c, p, hdr->length, deadline, timed_out, err, errlen) < 0) {
        free(p);
        return -1;
    }
    *payload = p;
    return 0;
}

int net_fd(const struct net_conn *c)
{
    return c->fd;
}

int net_pending(const struct net_conn *c)
{
    if (!c->ssl)
        return 0;
    int n = SSL_pending(c->ssl);
    return n > 0 ? n : SSL_has_pending(c->ssl);
}

const char *net_peer(const struct net_conn *c)
{
    return c->peer;
}

const char *net_peer_subject(const struct net_conn *c)
{
    return c->subject;
}

void net_close(struct net_conn *c)
{
    if (!c)
        return;
    if (c->ssl) {
        /* Best effort close_notify: one non-blocking attempt. */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    conn_free(c);
}
