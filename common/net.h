/*
 * common/net.h - DiMAPI transport: TCP connections carrying wire messages (common/wire.h),
 * encrypted and authenticated with TLS 1.2 or newer (OpenSSL), or in plain TCP when the
 * configuration says dimapi_plaintext=1. Used by mapicommd (server side) and by libmapi's
 * remote back end (client side); see common/dimapi.h for the messages.
 *
 * Security rules (from mapi.conf, struct mapi_conf):
 *   server  certificate dimapi_cert + key dimapi_key (required unless plaintext); with
 *           dimapi_client_ca set, a client must present a certificate signed by that CA
 *           (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT), else it is refused.
 *   client  verifies the server's chain against dimapi_ca (required unless plaintext) and the
 *           host name or IP address it connected to (SSL_set1_host / X509_VERIFY_PARAM_set1_ip);
 *           presents dimapi_client_cert + dimapi_client_key when set.
 *   Minimum protocol TLS 1.2. A TLS client talking to a plain server, or the reverse, fails in
 *   the handshake with an error.
 *
 * All calls take a timeout in milliseconds (< 0: wait forever) and never block longer; sockets
 * are non-blocking underneath, with poll(). Errors come back as -1 with a human-readable
 * message in the caller's buffer (naming the peer: "198.18.0.2:2233: certificate verify
 * failed"). Not thread-safe per connection: one thread uses a connection at a time.
 */
#ifndef MAPI_COMMON_NET_H
#define MAPI_COMMON_NET_H

#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/wire.h"

struct net_ctx;  /* TLS settings of one side (an SSL_CTX, or plaintext) */
struct net_conn; /* one connection */

/* Server / client contexts from the configuration. NULL with a message on error (unreadable
 * certificate, key not matching, missing CA). Free with net_ctx_free. */
struct net_ctx *net_server_ctx(const struct mapi_conf *conf, char *err, size_t errlen);
struct net_ctx *net_client_ctx(const struct mapi_conf *conf, char *err, size_t errlen);
void net_ctx_free(struct net_ctx *ctx);

/* Server: opens the listening socket for conf->dimapi_listen (all addresses, IPv6 with IPv4
 * mapped, when empty) and port. Returns the fd or -1 with a message. */
int net_listen(const char *addr, int port, char *err, size_t errlen);
/* Server: wraps an accepted socket (takes ownership of fd) and runs the TLS handshake within
 * timeout_ms. NULL with a message on failure (fd closed). */
struct net_conn *net_accept(struct net_ctx *ctx, int fd, int timeout_ms, char *err, size_t errlen);
/* Client: connects to host (name, IPv4 or IPv6 literal without brackets) and port, and runs
 * the TLS handshake with verification, all within timeout_ms. NULL with a message. */
struct net_conn *net_connect(struct net_ctx *ctx, const char *host, int port, int timeout_ms,
                             char *err, size_t errlen);

/* Sends one finished message (wire_finish done). 0, or -1 with a message. */
int net_send(struct net_conn *c, const struct wire_writer *w, int timeout_ms, char *err,
             size_t errlen);
/* Receives one whole message: *payload is malloc'd (free it), hdr->length bytes. Returns 0,
 * -1 on a connection error, EOF or timeout (message says which; *timed_out set to 1 on
 * timeout if not NULL), -2 on a malformed message. */
int net_recv(struct net_conn *c, struct wire_hdr *hdr, uint8_t **payload, int timeout_ms,
             int *timed_out, char *err, size_t errlen);
/* As net_recv, but a header announcing more than max_len payload bytes is malformed (-2)
 * before anything is allocated (mapicommd: small messages only before the HELLO). */
int net_recv_max(struct net_conn *c, struct wire_hdr *hdr, uint8_t **payload, uint32_t max_len,
                 int timeout_ms, int *timed_out, char *err, size_t errlen);
/* The socket, for poll() over many connections; net_pending() > 0 means bytes are already
 * decrypted and buffered (poll would not show them). */
int net_fd(const struct net_conn *c);
int net_pending(const struct net_conn *c);
/* "host:port" of the peer, for messages. */
const char *net_peer(const struct net_conn *c);
/* The verified client certificate's subject ("" without one), server side. */
const char *net_peer_subject(const struct net_conn *c);
/* Closes (TLS close_notify, best effort) and frees. NULL is ignored. */
void net_close(struct net_conn *c);

#endif /* MAPI_COMMON_NET_H */
