/*
 * lib/remote.c - DiMAPI, libmapi's remote back end: configuration, scope parsing, the
 * connections to the sensors' mapicommd, and the parallel request engine. The public calls on
 * remote flows are in remote_flow.c; the protocol is common/dimapi.h, the transport
 * common/net.h (TCP + TLS 1.2 or newer, the server verified against dimapi_ca).
 *
 * Configuration: the application's mapi.conf ($MAPI_CONF or the installed one, as client.c)
 * gives dimapi_port (default port of a scope item), dimapi_timeout (ms a sensor may take to
 * answer), dimapi_ca, dimapi_client_cert/key and dimapi_plaintext. It is read once, at the
 * first remote call, together with a random 16-byte application token (getrandom) that every
 * connection presents in DIMAPI_HELLO.
 *
 * Scope syntax: comma-separated items, blanks (space, tab, newline) around items ignored:
 *     host:dev   host:port:dev   [v6addr]:dev   [v6addr]:port:dev
 * host is a name or address (letters, digits, '.', '-', '_'); dev is the sensor's device and
 * may itself contain ':' (a port is recognised only as all digits followed by ':'). A bad item
 * (empty, no host, no device, bad port, bad characters) is error 7000 naming the item.
 *
 * Connections (struct lm_rconn): one per (remote flow, sensor), owned by the flow, plus one
 * management connection per sensor (host, port), owned by this file and used under R.lock
 * for GET_FUNCTION and STATS. A connection that fails (no reply within dimapi_timeout, EOF,
 * malformed message) is closed and marked down with a reason naming the sensor; flows never
 * reconnect (a new flow reaches a restarted sensor), a management connection reconnects at
 * its next use. TCP keepalive (idle = dimapi_timeout) notices a vanished host while a call
 * waits without a deadline (a queued result).
 *
 * The engine (lm_rops_run): a call sends its request to every sensor first, then collects the
 * replies with poll() over their connections (net_pending() for data TLS has buffered), each
 * with its own deadline, so a call over N sensors costs about one round trip.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/dimapi.h"
#include "common/net.h"
#include "lib/internal.h"

struct mgmt {
    struct lm_rconn c;
    char host[256];
    int port;
    struct mgmt *next;
};

struct fncache {
    struct lib_fninfo info;
    struct fncache *next;
};

static struct {
    pthread_mutex_t lock; /* everything below; innermost lock of libmapi's remote side */
    int inited;           /* atomic: conf, ctx and token are ready */
    struct mapi_conf conf;
    int conf_loaded; /* conf lists must be freed... never: kept for the process */
    struct net_ctx *ctx;
    uint8_t token[DIMAPI_TOKEN_LEN];
    struct mgmt *mgmt;
    struct fncache *fns;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER};

uint64_t lm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- configuration ------------------------------------------------------------------- */

/* R.lock held. Loads the configuration once (defaults if it cannot be read). */
static void load_conf(void)
{
    if (R.conf_loaded)
        return;
    char err[256];
    if (mapi_conf_load(&R.conf, mapi_conf_default_path(), err, sizeof(err)) < 0) {
        /* Unreadable: defaults (the lists may hold what was read before a bad line). */
        mapi_conf_free(&R.conf);
        mapi_conf_defaults(&R.conf);
    }
    if (R.conf.dimapi_port <= 0 || R.conf.dimapi_port > 65535)
        R.conf.dimapi_port = DIMAPI_DEFAULT_PORT;
    if (R.conf.dimapi_timeout <= 0)
        R.conf.dimapi_timeout = 5000;
    R.conf_loaded = 1;
}

int lm_remote_conf_has_device(const char *dev)
{
    pthread_mutex_lock(&R.lock);
    load_conf();
    int found = 0;
    for (int i = 0; i < R.conf.ndevices && !found; i++)
        found = strcmp(R.conf.devices[i].device, dev) == 0;
    pthread_mutex_unlock(&R.lock);
    return found;
}

int lm_remote_init(void)
{
    if (__atomic_load_n(&R.inited, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&R.lock);
    int rc = 0;
    if (!R.inited) {
        load_conf();
        char err[MAPI_ERRORSTR_LENGTH];
        err[0] = 0;
        R.ctx = net_client_ctx(&R.conf, err, sizeof(err));
        if (!R.ctx) {
            lm_set_error(MCOM_INIT_SOCKET_ERROR, "DiMAPI client setup (%s): %s",
                         mapi_conf_default_path(), err[0] ? err : "failed");
            rc = -1;
        } else {
            size_t got = 0;
            while (got < sizeof(R.token)) {
                ssize_t n = getrandom(R.token + got, sizeof(R.token) - got, 0);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                got += (size_t)n;
            }
            if (got < sizeof(R.token)) {
                lm_set_error(MCOM_INIT_SOCKET_ERROR, "getrandom: %s", strerror(errno));
                net_ctx_free(R.ctx);
                R.ctx = NULL;
                rc = -1;
            } else {
                __atomic_store_n(&R.inited, 1, __ATOMIC_RELEASE);
            }
        }
    }
    pthread_mutex_unlock(&R.lock);
    return rc;
}

int lm_remote_timeout(void)
{
    return R.conf.dimapi_timeout;
}

/* ---- scope parsing ------------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.' || c == '%' || (c >= 'g' && c <= 'z'); /* zone names */
}

/* Parses one trimmed item s (len bytes). 0 or -1 with *why. */
static int parse_item(const char *s, size_t len, struct lm_scope_item *it, const char **why)
{
    memset(it, 0, sizeof(*it));
    const char *end = s + len, *p = s;
    int v6 = 0;
    if (len == 0) {
        *why = "is empty";
        return -1;
    }
    if (*p == '[') {
        const char *close = memchr(p, ']', len);
        if (!close || close == p + 1) {
            *why = "has no closing ']' after an IPv6 address";
            return -1;
        }
        for (const char *q = p + 1; q < close; q++)
            if (!v6_char(*q)) {
                *why = "has a bad character in its IPv6 address";
                return -1;
            }
        if ((size_t)(close - p - 1) >= sizeof(it->host)) {
            *why = "has a host name that is too long";
            return -1;
        }
        memcpy(it->host, p + 1, (size_t)(close - p - 1));
        p = close + 1;
        if (p >= end || *p != ':') {
            *why = "needs \":device\" after the address";
            return -1;
        }
        p++;
        v6 = 1;
    } else {
        const char *colon = memchr(p, ':', len);
        if (!colon) {
            *why = "has no \"host:\" part";
            return -1;
        }
        if (colon == p) {
            *why = "has an empty host";
            return -1;
        }
        for (const char *q = p; q < colon; q++)
            if (!host_char(*q)) {
                *why = "has a bad character in its host name";
                return -1;
            }
        if ((size_t)(colon - p) >= sizeof(it->host)) {
            *why = "has a host name that is too long";
            return -1;
        }
        memcpy(it->host, p, (size_t)(colon - p));
        p = colon + 1;
    }
    /* Optional "port:" */
    it->port = R.conf.dimapi_port;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    if (q > p && q < end && *q == ':') {
        long port = 0;
        for (const char *d = p; d < q; d++) {
            port = port * 10 + (*d - '0');
            if (port > 65535)
                break;
        }
        if (port < 1 || port > 65535) {
            *why = "has a port outside 1..65535";
            return -1;
        }
        it->port = (int)port;
        p = q + 1;
    }
    if (p >= end) {
        *why = "has no device";
        return -1;
    }
    if ((size_t)(end - p) >= sizeof(it->dev)) {
        *why = "has a device name that is too long";
        return -1;
    }
    for (const char *d = p; d < end; d++)
        if ((unsigned char)*d < 0x20 || *d == ',') {
            *why = "has a bad character in its device name";
            return -1;
        }
    memcpy(it->dev, p, (size_t)(end - p));
    snprintf(it->peer, sizeof(it->peer), v6 ? "[%s]:%d" : "%s:%d", it->host, it->port);
    return 0;
}

int lm_scope_parse(const char *scope, struct lm_scope_item **items)
{
    *items = NULL;
    if (!scope) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "scope is NULL");
        return -1;
    }
    int n = 1;
    for (const char *p = scope; *p; p++)
        n += *p == ',';
    if (n > LM_MAX_SCOPE) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "scope has %d items, at most %d are allowed", n,
                     LM_MAX_SCOPE);
        return -1;
    }
    struct lm_scope_item *it = calloc((size_t)n, sizeof(*it));
    if (!it) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return -1;
    }
    const char *p = scope;
    for (int i = 0; i < n; i++) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        const char *why = NULL;
        if (parse_item(b, (size_t)(e - b), &it[i], &why) < 0) {
            int len = (int)(e - b);
            if (len > 200)
                len = 200;
            lm_set_error(MFUNCT_INVALID_ARGUMENT, "scope item %d \"%.*s\" %s", i + 1, len, b, why);
            free(it);
            return -1;
        }
        p = comma ? comma + 1 : end;
    }
    *items = it;
    return n;
}

/* ---- connections --------------------------------------------------------------------- */

void lm_with_peer(char *dst, size_t len, const char *peer, const char *msg)
{
    size_t pl = strlen(peer);
    int n;
    if (strncmp(msg, peer, pl) == 0)
        n = snprintf(dst, len, "%s", msg);
    else
        n = snprintf(dst, len, "%s: %s", peer, msg);
    /* A message cut to fit ends with "..." so that the reader sees it was cut. */
    if (n > 0 && (size_t)n >= len && len > 4)
        memcpy(dst + len - 4, "...", 4);
}

void lm_rconn_fail(struct lm_rconn *c, int err, const char *fmt, ...)
{
    char msg[MAPI_ERRORSTR_LENGTH];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!c->down) {
        c->err = err;
        lm_with_peer(c->why, sizeof(c->why), c->peer, msg);
    }
    c->down = 1;
    lm_rconn_close(c);
}

void lm_rconn_close(struct lm_rconn *c)
{
    if (c->nc) {
        net_close(c->nc);
        c->nc = NULL;
    }
    if (c->late) {
        c->late = 0;
        lm_late_cb cb = c->late_cb;
        c->late_cb = NULL;
        if (cb)
            cb(c->late_arg, c, NULL, NULL);
    }
}

int lm_rconn_set_error(const struct lm_rconn *c)
{
    if (c->down)
        lm_set_error(c->err ? c->err : MCOM_SOCKET_ERROR, "%s", c->why);
    else
        lm_set_error(MCOM_SOCKET_ERROR, "%s: not connected", c->peer);
    return -1;
}

static uint32_t next_reqid(struct lm_rconn *c)
{
    if (++c->reqid == 0)
        ++c->reqid;
    return c->reqid;
}

/* Remaining ms until deadline (0 if past); deadline 0 means none (-1). */
static int remaining(uint64_t deadline)
{
    if (deadline == 0)
        return -1;
    uint64_t now = lm_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Sends w (finished here, then freed) on c. 0 or -1 (c failed). */
static int send_msg(struct lm_rconn *c, struct wire_writer *w, uint64_t deadline)
{
    if (wire_finish(w) < 0) {
        wire_writer_free(w);
        lm_rconn_fail(c, MAPID_MEM_ALLOCATION_ERROR, "request too large or out of memory");
        return -1;
    }
    if (!c->nc) {
        wire_writer_free(w);
        if (!c->down)
            lm_rconn_fail(c, MCOM_SOCKET_ERROR, "not connected");
        return -1;
    }
    char err[MAPI_ERRORSTR_LENGTH];
    err[0] = 0;
    int t = remaining(deadline);
    int rc = net_send(c->nc, w, t < 0 ? lm_remote_timeout() : (t ? t : 1), err, sizeof(err));
    wire_writer_free(w);
    if (rc < 0) {
        lm_rconn_fail(c, MCOM_SOCKET_ERROR, "%s", err[0] ? err : "send failed");
        return -1;
    }
    return 0;
}

/* Receives one message on c within deadline. 0, or -1 (c failed). */
static int recv_msg(struct lm_rconn *c, struct wire_hdr *h, uint8_t **payload, uint64_t deadline)
{
    char err[MAPI_ERRORSTR_LENGTH];
    err[0] = 0;
    int timed_out = 0;
    *payload = NULL;
    int rc = net_recv(c->nc, h, payload, remaining(deadline), &timed_out, err, sizeof(err));
    if (rc == 0)
        return 0;
    free(*payload);
    *payload = NULL;
    if (timed_out)
        lm_rconn_fail(c, MCOM_SOCKET_ERROR, "no reply within %d ms (%s)", lm_remote_timeout(),
                      err[0] ? err : "timeout");
    else if (rc == -2)
        lm_rconn_fail(c, MCOM_UNKNOWN_ERROR, "malformed message from mapicommd (%s)", err);
    else
        lm_rconn_fail(c, MCOM_SOCKET_ERROR, "%s", err[0] ? err : "connection lost");
    return -1;
}

static void set_keepalive(int fd, int timeout_ms)
{
    int on = 1, idle = timeout_ms / 1000 > 0 ? timeout_ms / 1000 : 1, intvl = 1, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Reads an error reply's "i32 code, str message" into op-style fields. */
static void read_error_reply(const uint8_t *payload, uint32_t len, const char *peer, int *err,
                             char *msg, size_t msglen)
{
    struct wire_reader r;
    wire_reader_init(&r, payload, len);
    int32_t code = wire_get_i32(&r);
    char text[MAPI_ERRORSTR_LENGTH];
    lm_get_str_trunc(&r, text, sizeof(text));
    if (!wire_reader_ok(&r) || code <= 0)
        code = code > 0 ? code : MCOM_ERROR_ACK;
    *err = code;
    lm_with_peer(msg, msglen, peer, text[0] ? text : mapi_strerror(code));
}

int lm_rconn_open(struct lm_rconn *c, const struct lm_scope_item *it, uint64_t deadline)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->peer, sizeof(c->peer), "%s", it->peer);
    char err[MAPI_ERRORSTR_LENGTH];
    err[0] = 0;
    int t = remaining(deadline);
    c->nc = net_connect(R.ctx, it->host, it->port, t ? t : 1, err, sizeof(err));
    if (!c->nc) {
        c->down = 1;
        c->err = MCOM_INIT_SOCKET_ERROR;
        lm_with_peer(c->why, sizeof(c->why), c->peer, err[0] ? err : "cannot connect");
        return -1;
    }
    set_keepalive(net_fd(c->nc), lm_remote_timeout());
    struct wire_writer w;
    uint32_t id = next_reqid(c);
    wire_writer_init(&w, DIMAPI_HELLO, id, 0);
    wire_put_u16(&w, DIMAPI_VERSION);
    wire_put_u16(&w, DIMAPI_VERSION);
    for (int i = 0; i < DIMAPI_TOKEN_LEN; i++) /* 16 raw bytes, not a str field */
        wire_put_u8(&w, R.token[i]);
    if (send_msg(c, &w, deadline) < 0)
        goto hello_failed;
    struct wire_hdr h;
    uint8_t *payload;
    for (;;) {
        if (recv_msg(c, &h, &payload, deadline) < 0)
            goto hello_failed;
        if (h.reqid == id)
            break;
        free(payload); /* nothing else is expected before HELLO's reply */
    }
    if (h.type != DIMAPI_HELLO) {
        free(payload);
        lm_rconn_fail(c, MCOM_INIT_SOCKET_ERROR, "not a mapicommd (reply type %u to HELLO)",
                      h.type);
        return -1;
    }
    if (h.flags & WIRE_F_ERROR) {
        char msg[MAPI_ERRORSTR_LENGTH];
        int code;
        read_error_reply(payload, h.length, c->peer, &code, msg, sizeof(msg));
        free(payload);
        lm_rconn_fail(c, code, "%s", msg);
        return -1;
    }
    struct wire_reader r;
    wire_reader_init(&r, payload, h.length);
    uint16_t version = wire_get_u16(&r);
    int ok = wire_reader_ok(&r);
    free(payload);
    if (!ok || version != DIMAPI_VERSION) {
        lm_rconn_fail(c, MCOM_INIT_SOCKET_ERROR, "mapicommd speaks DiMAPI version %u, we speak %u",
                      version, DIMAPI_VERSION);
        return -1;
    }
    return 0;
hello_failed:
    /* The connection never worked: report it as "cannot connect". */
    c->err = MCOM_INIT_SOCKET_ERROR;
    return -1;
}

int lm_rconn_send_late(struct lm_rconn *c, struct wire_writer *w, int timeout_ms, lm_late_cb cb,
                       void *arg)
{
    uint32_t id = next_reqid(c);
    /* The id sits at bytes 12..15 of the header written by wire_writer_init. */
    uint32_t nid = htonl(id);
    if (w->len >= WIRE_HDR_SIZE)
        memcpy(w->buf + 12, &nid, 4);
    if (send_msg(c, w, lm_now_ms() + (uint64_t)lm_remote_timeout()) < 0)
        return -1;
    c->late = 1;
    c->late_reqid = id;
    c->late_deadline = lm_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    if (timeout_ms < 0)
        c->late_deadline = 0;
    c->late_cb = cb;
    c->late_arg = arg;
    return 0;
}

/* A message arrived on c for its late request: hand it over. */
static void deliver_late(struct lm_rconn *c, const struct wire_hdr *h, uint8_t *payload)
{
    c->late = 0;
    lm_late_cb cb = c->late_cb;
    c->late_cb = NULL;
    if (cb)
        cb(c->late_arg, c, h, payload);
    else
        free(payload);
}

/* ---- the parallel engine ------------------------------------------------------------- */

void lm_rop_begin(struct lm_rop *op, struct lm_rconn *c, uint16_t type, int timeout_ms)
{
    memset(op, 0, sizeof(*op));
    op->c = c;
    op->type = type;
    op->timeout_ms = timeout_ms;
    op->reqid = c ? next_reqid(c) : 1;
    wire_writer_init(&op->w, type, op->reqid, 0);
}

void lm_rop_free(struct lm_rop *op)
{
    wire_writer_free(&op->w);
    free(op->payload);
    op->payload = NULL;
}

int lm_rop_set_error(const struct lm_rop *op)
{
    lm_set_error(op->err ? op->err : MCOM_SOCKET_ERROR, "%s", op->msg);
    return -1;
}

static void op_failed(struct lm_rop *op)
{
    op->state = LM_ROP_FAILED;
    op->err = op->c->err ? op->c->err : MCOM_SOCKET_ERROR;
    snprintf(op->msg, sizeof(op->msg), "%s", op->c->why);
}

static void op_send(struct lm_rop *op)
{
    uint64_t now = lm_now_ms();
    if (send_msg(op->c, &op->w, now + (uint64_t)lm_remote_timeout()) < 0) {
        op_failed(op);
        return;
    }
    op->state = LM_ROP_SENT;
    op->deadline = op->timeout_ms < 0 ? 0 : lm_now_ms() + (uint64_t)op->timeout_ms;
}

/* A message m arrived for op (its reqid). */
static void op_reply(struct lm_rop *op, struct wire_hdr *h, uint8_t *payload)
{
    if (h->type != op->type) {
        free(payload);
        lm_rconn_fail(op->c, MCOM_UNKNOWN_ERROR, "mapicommd replied with message type %u to %u",
                      h->type, op->type);
        op_failed(op);
        return;
    }
    if (h->flags & WIRE_F_ERROR) {
        read_error_reply(payload, h->length, op->c->peer, &op->err, op->msg, sizeof(op->msg));
        free(payload);
        op->state = LM_ROP_REFUSED;
        return;
    }
    op->hdr = *h;
    op->payload = payload;
    wire_reader_init(&op->r, payload, h->length);
    op->state = LM_ROP_OK;
}

/* Receives one message on c and dispatches it to the late callback or to op (may be NULL). */
static void receive_one(struct lm_rconn *c, struct lm_rop *op, uint64_t deadline)
{
    struct wire_hdr h;
    uint8_t *payload;
    if (recv_msg(c, &h, &payload, deadline) < 0) {
        /* lm_rconn_fail already told the late callback. */
        if (op && (op->state == LM_ROP_SENT || op->state == LM_ROP_WAITPREV))
            op_failed(op);
        return;
    }
    if (c->late && h.reqid == c->late_reqid) {
        deliver_late(c, &h, payload);
        if (op && op->state == LM_ROP_WAITPREV)
            op_send(op);
        return;
    }
    if (op && op->state == LM_ROP_SENT && h.reqid == op->reqid) {
        op_reply(op, &h, payload);
        return;
    }
    free(payload);
    lm_rconn_fail(c, MCOM_UNKNOWN_ERROR, "unexpected message (type %u, request %u)", h.type,
                  h.reqid);
    if (op && (op->state == LM_ROP_SENT || op->state == LM_ROP_WAITPREV))
        op_failed(op);
}

/* The deadline op waits for next (its own, or its connection's late request). */
static uint64_t op_deadline(const struct lm_rop *op)
{
    return op->state == LM_ROP_WAITPREV ? op->c->late_deadline : op->deadline;
}

void lm_rops_run(struct lm_rop *ops, int n)
{
    for (int i = 0; i < n; i++) {
        struct lm_rop *op = &ops[i];
        if (!op->c) {
            op->state = LM_ROP_SKIP;
            continue;
        }
        if (op->c->down || !op->c->nc) {
            if (!op->c->down)
                lm_rconn_fail(op->c, MCOM_SOCKET_ERROR, "not connected");
            op_failed(op);
            continue;
        }
        if (op->c->late)
            op->state = LM_ROP_WAITPREV;
        else
            op_send(op);
    }
    struct pollfd *pfd = calloc((size_t)(n ? n : 1), sizeof(*pfd));
    int *idx = calloc((size_t)(n ? n : 1), sizeof(*idx));
    if (!pfd || !idx) {
        free(pfd);
        free(idx);
        for (int i = 0; i < n; i++)
            if (ops[i].state == LM_ROP_SENT || ops[i].state == LM_ROP_WAITPREV) {
                lm_rconn_fail(ops[i].c, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
                op_failed(&ops[i]);
            }
        return;
    }
    for (;;) {
        int np = 0, timeout = -1, ready_now = 0;
        uint64_t now = lm_now_ms();
        for (int i = 0; i < n; i++) {
            struct lm_rop *op = &ops[i];
            if (op->state != LM_ROP_SENT && op->state != LM_ROP_WAITPREV)
                continue;
            uint64_t dl = op_deadline(op);
            if (dl && now >= dl) {
                lm_rconn_fail(op->c, MCOM_SOCKET_ERROR, "no reply within %d ms",
                              lm_remote_timeout());
                op_failed(op);
                continue;
            }
            if (net_pending(op->c->nc) > 0)
                ready_now = 1;
            pfd[np].fd = net_fd(op->c->nc);
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            idx[np] = i;
            np++;
            if (dl) {
                int t = (int)(dl - now);
                if (timeout < 0 || t < timeout)
                    timeout = t;
            }
        }
        if (np == 0)
            break;
        int pr = poll(pfd, (nfds_t)np, ready_now ? 0 : timeout);
        if (pr < 0 && errno != EINTR) {
            for (int k = 0; k < np; k++) {
                lm_rconn_fail(ops[idx[k]].c, MCOM_SOCKET_ERROR, "poll: %s", strerror(errno));
                op_failed(&ops[idx[k]]);
            }
            break;
        }
        for (int k = 0; k < np; k++) {
            struct lm_rop *op = &ops[idx[k]];
            if (op->state != LM_ROP_SENT && op->state != LM_ROP_WAITPREV)
                continue;
            if (!op->c->nc)
                continue;
            if ((pr > 0 && pfd[k].revents) || net_pending(op->c->nc) > 0)
                receive_one(op->c, op, op_deadline(op));
        }
    }
    free(pfd);
    free(idx);
}

int lm_rconn_wait_late(struct lm_rconn **cs, int n, int timeout_ms)
{
    struct pollfd *pfd = calloc((size_t)(n ? n : 1), sizeof(*pfd));
    int *idx = calloc((size_t)(n ? n : 1), sizeof(*idx));
    int done = 0;
    if (!pfd || !idx) {
        free(pfd);
        free(idx);
        return 0;
    }
    uint64_t until = lm_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int np = 0, ready_now = 0;
        uint64_t now = lm_now_ms();
        int timeout = now >= until ? 0 : (int)(until - now);
        for (int i = 0; i < n; i++) {
            struct lm_rconn *c = cs[i];
            if (!c || !c->late || !c->nc)
                continue;
            if (c->late_deadline && now >= c->late_deadline) {
                lm_rconn_fail(c, MCOM_SOCKET_ERROR, "no reply within %d ms", lm_remote_timeout());
                done++;
                continue;
            }
            if (net_pending(c->nc) > 0)
                ready_now = 1;
            if (c->late_deadline && (int)(c->late_deadline - now) < timeout)
                timeout = (int)(c->late_deadline - now);
            pfd[np].fd = net_fd(c->nc);
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            idx[np++] = i;
        }
        if (np == 0 || (done && !ready_now))
            break;
        int pr = poll(pfd, (nfds_t)np, ready_now ? 0 : timeout);
        if (pr < 0 && errno != EINTR)
            break;
        for (int k = 0; k < np; k++) {
            struct lm_rconn *c = cs[idx[k]];
            if (!c->late || !c->nc)
                continue;
            if ((pr > 0 && pfd[k].revents) || net_pending(c->nc) > 0) {
                receive_one(c, NULL, c->late_deadline);
                done++;
            }
        }
        if (done || lm_now_ms() >= until)
            break;
    }
    free(pfd);
    free(idx);
    return done;
}

/* ---- parallel helpers ---------------------------------------------------------------- */

struct par_job {
    void (*fn)(void *arg, int i);
    void *arg;
    int i;
};

static void *par_main(void *p)
{
    struct par_job *j = p;
    j->fn(j->arg, j->i);
    return NULL;
}

void lm_remote_parallel(int n, void (*fn)(void *arg, int i), void *arg)
{
    if (n <= 1) {
        if (n == 1)
            fn(arg, 0);
        return;
    }
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    struct par_job *j = calloc((size_t)n, sizeof(*j));
    int *started = calloc((size_t)n, sizeof(*started));
    if (!t || !j || !started) {
        for (int i = 0; i < n; i++)
            fn(arg, i);
        free(t);
        free(j);
        free(started);
        return;
    }
    for (int i = 1; i < n; i++) {
        j[i] = (struct par_job){fn, arg, i};
        started[i] = pthread_create(&t[i], NULL, par_main, &j[i]) == 0;
        if (!started[i])
            fn(arg, i);
    }
    fn(arg, 0);
    for (int i = 1; i < n; i++)
        if (started[i])
            pthread_join(t[i], NULL);
    free(t);
    free(j);
    free(started);
}

/* ---- management connections ---------------------------------------------------------- */

/* An idle management connection has nothing to read; if it has (EOF: mapicommd restarted or
 * dropped us, or anything unexpected), it is stale: close it so that it is opened again. */
static void mgmt_check(struct lm_rconn *c)
{
    if (!c->nc || c->down)
        return;
    struct pollfd p = {.fd = net_fd(c->nc), .events = POLLIN};
    if (net_pending(c->nc) > 0 || poll(&p, 1, 0) > 0)
        lm_rconn_fail(c, MCOM_SOCKET_ERROR, "management connection lost");
}

/* R.lock held. The management connection of it's sensor, connected (or down with a reason).
 * NULL only on ENOMEM. */
static struct mgmt *mgmt_get(const struct lm_scope_item *it, int connect)
{
    struct mgmt *m;
    for (m = R.mgmt; m; m = m->next)
        if (m->port == it->port && strcmp(m->host, it->host) == 0)
            break;
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return NULL;
        snprintf(m->host, sizeof(m->host), "%s", it->host);
        m->port = it->port;
        snprintf(m->c.peer, sizeof(m->c.peer), "%s", it->peer);
        m->c.down = 1; /* not connected yet */
        m->next = R.mgmt;
        R.mgmt = m;
    }
    mgmt_check(&m->c);
    if (connect && (m->c.down || !m->c.nc)) {
        lm_rconn_close(&m->c);
        lm_rconn_open(&m->c, it, lm_now_ms() + (uint64_t)lm_remote_timeout());
    }
    return m;
}

int lm_remote_get_function(const struct lm_scope_item *it, const char *name, struct lib_fninfo *out)
{
    if (strlen(name) >= sizeof(out->name)) {
        lm_set_error(MAPI_FUNCTION_NOT_FOUND, "function name longer than %d bytes",
                     MAPI_STR_LENGTH - 1);
        return -1;
    }
    pthread_mutex_lock(&R.lock);
    int rc = -1;
    for (struct fncache *e = R.fns; e; e = e->next)
        if (strcmp(e->info.name, name) == 0) {
            *out = e->info;
            rc = 0;
            goto out;
        }
    struct mgmt *m = mgmt_get(it, 1);
    if (!m) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        goto out;
    }
    if (m->c.down) {
        lm_rconn_set_error(&m->c);
        goto out;
    }
    struct lm_rop op;
    lm_rop_begin(&op, &m->c, DIMAPI_GET_FUNCTION, lm_remote_timeout());
    wire_put_str(&op.w, name);
    lm_rops_run(&op, 1);
    if (op.state != LM_ROP_OK) {
        lm_rop_set_error(&op);
        lm_rop_free(&op);
        goto out;
    }
    struct fncache *e = calloc(1, sizeof(*e));
    if (!e) {
        lm_rop_free(&op);
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        goto out;
    }
    char replied[MAPI_STR_LENGTH];
    lm_get_str_trunc(&op.r, replied, sizeof(replied));
    wire_get_str(&op.r, e->info.argdescr, sizeof(e->info.argdescr));
    lm_get_str_trunc(&op.r, e->info.libname, sizeof(e->info.libname));
    e->info.flags = wire_get_u32(&op.r);
    int ok = wire_reader_ok(&op.r);
    lm_rop_free(&op);
    if (!ok) {
        free(e);
        lm_set_error(MCOM_UNKNOWN_ERROR, "%s: malformed GET_FUNCTION reply for %s", it->peer, name);
        goto out;
    }
    memcpy(e->info.name, name, strlen(name) + 1);
    e->next = R.fns;
    R.fns = e;
    *out = e->info;
    rc = 0;
out:
    pthread_mutex_unlock(&R.lock);
    return rc;
}

/* ---- mapi_stats over a scope --------------------------------------------------------- */

struct stats_job {
    struct mgmt **m;
    const struct lm_scope_item *it;
};

static void stats_connect(void *arg, int i)
{
    struct stats_job *j = arg;
    struct lm_rconn *c = &j->m[i]->c;
    if (c->down || !c->nc) {
        lm_rconn_close(c);
        lm_rconn_open(c, &j->it[i], lm_now_ms() + (uint64_t)lm_remote_timeout());
    }
}

/*
 * mapi_stats over a scope: DIMAPI_STATS for each item's device on the sensor's management
 * connection, all sent before any reply is read. stats[i] is item i (hostname as the sensor
 * names itself, dev as the sensor names the device). A sensor that cannot be reached or
 * refuses fails the whole call with its error (naming it).
 */
int lm_remote_stats(const char *scope, struct mapi_stat *stats)
{
    if (lm_remote_init() < 0)
        return -1;
    struct lm_scope_item *it;
    int n = lm_scope_parse(scope, &it);
    if (n < 0)
        return -1;
    pthread_mutex_lock(&R.lock);
    int rc = -1;
    struct mgmt **m = calloc((size_t)n, sizeof(*m));
    struct lm_rop *ops = calloc((size_t)n, sizeof(*ops));
    if (!m || !ops) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        m[i] = mgmt_get(&it[i], 0);
        if (!m[i]) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            goto out;
        }
    }
    /* Connect the distinct sensors that need it, in parallel (one job per item; items on
     * the same sensor share the connection, so connect each one only once). */
    struct mgmt **todo = calloc((size_t)n, sizeof(*todo));
    struct lm_scope_item *todo_it = calloc((size_t)n, sizeof(*todo_it));
    int ntodo = 0;
    if (!todo || !todo_it) {
        free(todo);
        free(todo_it);
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int k = 0; k < ntodo && !dup; k++)
            dup = todo[k] == m[i];
        if (!dup && (m[i]->c.down || !m[i]->c.nc)) {
            todo[ntodo] = m[i];
            todo_it[ntodo++] = it[i];
        }
    }
    struct stats_job job = {todo, todo_it};
    lm_remote_parallel(ntodo, stats_connect, &job);
    free(todo);
    free(todo_it);
    /* One request per item; items on the same connection go one after the other. */
    int first_err = -1;
    for (int round = 0;; round++) {
        int any = 0;
        for (int i = 0; i < n; i++) {
            ops[i].c = NULL;
            ops[i].state = LM_ROP_SKIP;
        }
        int *mine = calloc((size_t)n, sizeof(*mine));
        if (!mine) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            goto out;
        }
        /* Pick, for each connection, the round-th item that uses it. */
        for (int i = 0; i < n; i++) {
            int k = 0;
            for (int j = 0; j < i; j++)
                k += m[j] == m[i];
            if (k == round) {
                lm_rop_begin(&ops[i], &m[i]->c, DIMAPI_STATS, lm_remote_timeout());
                wire_put_str(&ops[i].w, it[i].dev);
                mine[i] = 1;
                any = 1;
            }
        }
        if (!any) {
            free(mine);
            break;
        }
        lm_rops_run(ops, n);
        for (int i = 0; i < n; i++) {
            if (!mine[i])
                continue;
            struct lm_rop *op = &ops[i];
            if (op->state == LM_ROP_OK) {
                struct mapi_stat st;
                memset(&st, 0, sizeof(st));
                st.ps_recv = wire_get_u32(&op->r);
                st.ps_drop = wire_get_u32(&op->r);
                st.ps_ifdrop = wire_get_u32(&op->r);
                lm_get_str_trunc(&op->r, st.hostname, sizeof(st.hostname));
                lm_get_str_trunc(&op->r, st.dev, sizeof(st.dev));
                if (!wire_reader_ok(&op->r)) {
                    op->state = LM_ROP_FAILED;
                    op->err = MCOM_UNKNOWN_ERROR;
                    snprintf(op->msg, sizeof(op->msg), "%s: malformed STATS reply", it[i].peer);
                } else {
                    if (!st.hostname[0])
                        snprintf(st.hostname, sizeof(st.hostname), "%s", it[i].host);
                    if (!st.dev[0])
                        snprintf(st.dev, sizeof(st.dev), "%s", it[i].dev);
                    stats[i] = st;
                }
            }
            if (op->state != LM_ROP_OK && first_err < 0) {
                lm_rop_set_error(op);
                first_err = i;
            }
            lm_rop_free(op);
        }
        free(mine);
    }
    rc = first_err < 0 ? n : -1;
out:
    pthread_mutex_unlock(&R.lock);
    free(m);
    free(ops);
    free(it);
    return rc;
}
