/*
 * daemon/mapicommd/session.c - one DiMAPI connection per thread (protocol in
 * common/dimapi.h).
 *
 * A connection runs the TLS handshake and must send DIMAPI_HELLO within
 * dimapi_handshake_timeout of being accepted, else it is dropped; after HELLO it may stay idle
 * (libmapi keeps one management connection per sensor), dead peers are found by TCP keepalive.
 * Requests are decoded by proto.c and answered in order by calling libmapi's public API; the token
 * of the HELLO scopes every flow reference (flows.c). A malformed message closes only its
 * connection; an unknown request type is answered with error 7009 and the connection stays.
 * When a connection goes away, every flow it created is closed.
 *
 * Waiting calls (DIMAPI_GET_PKTS up to wait_ms, DIMAPI_READ_RESULT of a queue function) wait
 * on a pump (flows.c) or, for a NOWAIT TO_BUFFER, poll the ring every 2 ms; meanwhile the
 * connection's socket is checked (every 50 ms at most), and a DIMAPI_CLOSE_FLOW that arrives
 * is carried out at once (which ends the wait if it names the flow waited on) and answered
 * right after the reply of the call in progress. Any other request during a wait breaks the
 * protocol and closes the connection.
 *
 * Limits (docs/dimapi.md, "Limits"): until its HELLO a connection is pending, with
 * dimapi_handshake_timeout for the TLS handshake and the HELLO. At most
 * dimapi_max_handshakes_per_address are pending from one IPv4 address or IPv6 /64 (a new
 * socket beyond that is closed at once); when dimapi_max_handshakes are pending, the
 * longest-pending connection is dropped to make room for the new one (up to a quarter more
 * may exist until the dropped ones have ended; beyond that new sockets are closed). Both are
 * counted and logged at most once a second. So a client that never finishes its handshake holds no
 * slot of the served connections. With the HELLO the connection gets its identity (quota.c) and
 * counts against dimapi_max_clients and dimapi_max_connections_per_identity; over either, the HELLO
 * is answered 3085 naming the key and the connection closed. CREATE_FLOW counts against
 * dimapi_max_flows_per_identity, a pump against the memory limits (flows.c). Requests that
 * need mapid first check that mapicommd's connection to it is alive (mc_mapid_recover).
 * 'w' (file) arguments are refused unless dimapi_file_dir is set; then libmapi opens them
 * beneath it (lib/args.c, openat2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "daemon/mapicommd/mapicommd.h"
#include "mapi.h"
#include "mapi/errors.h"
#include "mapi/flib.h"

#define SEND_TIMEOUT_MS 30000 /* a client that does not read its replies is dropped */
#define MAX_DEFERRED 8
#define WAIT_SLICE_MS 50     /* how often a waiting call looks at the socket */
#define NOWAIT_POLL_MS 2     /* how often an empty NOWAIT ring is looked at */
#define PRE_HELLO_MAX 4096   /* bytes of a message before the HELLO */
#define PKT_WIRE_OVERHEAD 22 /* u64 ts, u16 ifindex, u32 caplen, u32 wlen, u32 byte count */

struct deferred {
    uint32_t reqid;
    int code;
    char msg[256];
};

struct session {
    int fd;           /* our copy of the socket, for shutdown() at stop; closed at the end */
    int pending;      /* under sess_lock: counted in npending (before HELLO), else in nsessions */
    uint8_t addr[16]; /* peer address (IPv4 mapped into IPv6), /64 for IPv6: the key of
                         dimapi_max_handshakes_per_address */
    struct mc_ident *ident; /* from the HELLO on, with one of its connections counted */
    int64_t start_ms;       /* accepted at (CLOCK_MONOTONIC) */
    int evicted;            /* under sess_lock: shut down to make room (still pending) */
    struct net_conn *c;
    char peer[300];
    uint8_t token[DIMAPI_TOKEN_LEN];
    int hello;
    struct deferred def[MAX_DEFERRED];
    int ndef;
    struct session *next, **pprev;
};

static pthread_mutex_t sess_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sess_cond = PTHREAD_COND_INITIALIZER;
static struct session *sess_list;
static int nsessions, npending;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replies ------------------------------------------------------------------------- */

/* Finishes, sends and frees w. 0, or -1 if the connection failed (it is then closed). */
static int send_msg(struct session *s, struct wire_writer *w)
{
    char err[512];
    int rc = -1;
    if (wire_finish(w) < 0)
        mapi_log(LOG_LVL_WARN, "%s: reply too large or out of memory", s->peer);
    else if ((rc = net_send(s->c, w, SEND_TIMEOUT_MS, err, sizeof(err))) < 0)
        mapi_log(LOG_LVL_DEBUG, "%s", err);
    wire_writer_free(w);
    return rc;
}

static int reply_error(struct session *s, uint16_t type, uint32_t reqid, int code, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
static int reply_error(struct session *s, uint16_t type, uint32_t reqid, int code, const char *fmt,
                       ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct wire_writer w;
    wire_writer_init(&w, type, reqid, WIRE_F_ERROR);
    wire_put_i32(&w, code);
    wire_put_str(&w, msg);
    return send_msg(s, &w);
}

/* Replies with libmapi's last error of this thread. */
static int reply_lmerr(struct session *s, const struct dimapi_req *r)
{
    char msg[MAPI_ERRORSTR_LENGTH];
    int code = mc_last_error(msg, sizeof(msg));
    if (!code) {
        code = MCOM_UNKNOWN_ERROR;
        snprintf(msg, sizeof(msg), "libmapi failed without an error");
    }
    int rc = reply_error(s, r->type, r->reqid, code, "%s", msg);
    if (code == MCOM_SOCKET_ERROR || code == MAPI_SHUTTING_DOWN)
        mc_mapid_recover(); /* so that the next request gets a new connection to mapid */
    return rc;
}

static int reply_no_flow(struct session *s, const struct dimapi_req *r)
{
    return reply_error(s, r->type, r->reqid, MAPI_INVALID_FLOW, "flow descriptor %d is not open",
                       r->rfd);
}

/* The flow of request r with a reference (mc_flow_put), or NULL after an error reply (*rc
 * its result): not open, not this application's, or lost with the connection to mapid. */
static struct mc_flow *req_flow(struct session *s, const struct dimapi_req *r, int *rc)
{
    /* Results are read from shared memory without asking mapid: find out first whether the
     * connection to mapid is still there (a poll() without waiting). */
    mc_mapid_recover();
    struct mc_flow *f = mc_flow_get(r->rfd, s->token);
    if (!f) {
        *rc = reply_no_flow(s, r);
        return NULL;
    }
    pthread_mutex_lock(&f->io);
    int lost = f->lost;
    char msg[sizeof(f->lostmsg)];
    memcpy(msg, f->lostmsg, sizeof(msg));
    pthread_mutex_unlock(&f->io);
    if (lost) {
        mc_flow_put(f);
        *rc = reply_error(s, r->type, r->reqid, MCOM_SOCKET_ERROR, "%s", msg);
        return NULL;
    }
    return f;
}

/* Sends the answers of DIMAPI_CLOSE_FLOW requests carried out during a wait. */
static int flush_deferred(struct session *s)
{
    int rc = 0;
    for (int i = 0; i < s->ndef && rc == 0; i++) {
        struct deferred *d = &s->def[i];
        if (d->code) {
            rc = reply_error(s, DIMAPI_CLOSE_FLOW, d->reqid, d->code, "%s", d->msg);
        } else {
            struct wire_writer w;
            wire_writer_init(&w, DIMAPI_CLOSE_FLOW, d->reqid, 0);
            rc = send_msg(s, &w);
        }
    }
    s->ndef = 0;
    return rc;
}

/* ---- interrupts during waits ---------------------------------------------------------- */

/* 1 if the client sent something (or closed, or the socket failed) within timeout_ms (< 0:
 * no limit). */
static int socket_readable(struct session *s, int timeout_ms)
{
    if (net_pending(s->c) > 0)
        return 1;
    struct pollfd p = {.fd = net_fd(s->c), .events = POLLIN};
    int rc;
    while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return rc != 0;
}

/* Reads the message that arrived during a wait: a DIMAPI_CLOSE_FLOW is carried out now and
 * answered later; anything else (or EOF) ends the connection. 0 or -1. */
static int handle_interrupt(struct session *s)
{
    struct wire_hdr h;
    uint8_t *payload = NULL;
    char err[512];
    int rc = net_recv(s->c, &h, &payload, g_conf.dimapi_idle_timeout, NULL, err, sizeof(err));
    if (rc < 0) {
        mapi_log(rc == -2 ? LOG_LVL_WARN : LOG_LVL_DEBUG, "%s", err);
        return -1;
    }
    struct dimapi_req r;
    char why[256];
    int d = dimapi_decode(&h, payload, h.length, &r, why, sizeof(why));
    free(payload);
    if (d != 0 || r.type != DIMAPI_CLOSE_FLOW || s->ndef >= MAX_DEFERRED) {
        mapi_log(LOG_LVL_WARN, "%s: %s while a call is in progress; connection closed", s->peer,
                 d ? why : dimapi_type_name(r.type));
        dimapi_req_free(&r);
        return -1;
    }
    struct deferred *df = &s->def[s->ndef++];
    df->reqid = r.reqid;
    df->code = 0;
    struct mc_flow *f = mc_flow_get(r.rfd, s->token);
    if (!f) {
        df->code = MAPI_INVALID_FLOW;
        snprintf(df->msg, sizeof(df->msg), "flow descriptor %d is not open", r.rfd);
    } else {
        mc_flow_close(f, &df->code, df->msg, sizeof(df->msg));
        mc_flow_put(f);
    }
    dimapi_req_free(&r);
    return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

/* Leaves the pending state (lock held). */
static void unpend(struct session *s)
{
    if (s->pending) {
        s->pending = 0;
        npending--;
        nsessions++;
    }
}

/*
 * The HELLO came: s stops being pending, gets its identity (certificate subject when client
 * certificates are required, else the token) and is counted against dimapi_max_clients and
 * dimapi_max_connections_per_identity. 0, or -1 after an error reply 3085 naming the key.
 */
static int admit(struct session *s, const struct dimapi_req *r)
{
    const char *subj = g_conf.dimapi_client_ca[0] ? net_peer_subject(s->c) : "";
    s->ident = mc_ident_get(subj, s->token);
    if (!s->ident) {
        reply_error(s, r->type, r->reqid, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return -1;
    }
    char msg[900];
    pthread_mutex_lock(&sess_lock);
    int full = nsessions >= g_conf.dimapi_max_clients;
    if (!full)
        unpend(s);
    pthread_mutex_unlock(&sess_lock);
    if (full) {
        snprintf(msg, sizeof(msg),
                 "mapicommd on %s serves at most %d connections at once (dimapi_max_clients); "
                 "try again later",
                 g_hostname, g_conf.dimapi_max_clients);
    } else if (mc_ident_conn_add(s->ident, msg, sizeof(msg)) < 0) {
        full = 1;
    } else {
        return 0;
    }
    mapi_log(LOG_LVL_WARN, "%s: refused: %s", s->peer, msg);
    mc_ident_put(s->ident);
    s->ident = NULL;
    reply_error(s, r->type, r->reqid, MAPID_LIMIT_EXCEEDED, "%s", msg);
    return -1;
}

static int do_hello(struct session *s, const struct dimapi_req *r)
{
    if (s->hello)
        return reply_error(s, r->type, r->reqid, MCOM_UNKNOWN_ERROR, "HELLO was already received");
    if (r->min_version > DIMAPI_VERSION || r->max_version < DIMAPI_VERSION) {
        reply_error(s, r->type, r->reqid, MCOM_UNKNOWN_ERROR,
                    "DiMAPI versions %u..%u are not supported: this mapicommd speaks version %u",
                    r->min_version, r->max_version, DIMAPI_VERSION);
        return -1;
    }
    memcpy(s->token, r->token, DIMAPI_TOKEN_LEN);
    if (admit(s, r) < 0)
        return -1;
    s->hello = 1;
    char server[512];
    snprintf(server, sizeof(server), "mapicommd %s on %s", MAPI_VERSION, g_hostname);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_u16(&w, DIMAPI_VERSION);
    wire_put_str(&w, server);
    return send_msg(s, &w);
}

static int refuse_remote(struct session *s, const struct dimapi_req *r)
{
    return reply_error(s, r->type, r->reqid, MFUNCT_NOT_SUPPORTED,
                       "\"%s\" is a remote scope: mapicommd on %s serves its own devices only",
                       r->str, g_hostname);
}

static int do_create_flow(struct session *s, const struct dimapi_req *r)
{
    if (mc_is_remote_scope(r->str))
        return refuse_remote(s, r);
    char msg[900];
    if (mc_ident_flow_add(s->ident, msg, sizeof(msg)) < 0) {
        mapi_log(LOG_LVL_INFO, "%s: CREATE_FLOW refused: %s", s->peer, msg);
        return reply_error(s, r->type, r->reqid, MAPID_LIMIT_EXCEEDED, "%s", msg);
    }
    struct mc_flow *f;
    int rfd = mc_flow_create(r->str, s->token, s, s->ident, &f);
    if (rfd < 0)
        mc_ident_flow_del(s->ident);
    if (rfd == -1)
        return reply_lmerr(s, r);
    if (rfd < 0)
        return reply_error(s, r->type, r->reqid, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
    mapi_log(LOG_LVL_DEBUG, "%s: flow %d on %s", s->peer, rfd, r->str);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, rfd);
    return send_msg(s, &w);
}

static int do_get_function(struct session *s, const struct dimapi_req *r)
{
    char argdescr[MAPI_STR_LENGTH], libname[MAPI_STR_LENGTH];
    uint32_t flags;
    if (mc_lookup_function(r->str, argdescr, sizeof(argdescr), libname, sizeof(libname), &flags) <
        0)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_str(&w, r->str);
    wire_put_str(&w, argdescr);
    wire_put_str(&w, libname);
    wire_put_u32(&w, flags);
    return send_msg(s, &w);
}

static int position_error(int pos)
{
    if (pos >= 1 && pos <= 5)
        return MFUNCT_INVALID_ARGUMENT + pos;
    if (pos == 6)
        return MFUNCT_INVALID_ARGUMENT_6;
    return MFUNCT_INVALID_ARGUMENT;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Checks every flow descriptor of an 'S' ("fid@fd,...", with_fid) or 'R' ("fd,...") list
 * with libmapi's grammar (lib/args.c). Returns 0 if all are flows of token, -1 if the list is
 * malformed, or -2 with *bad set to a descriptor that is not one of the token's flows.
 */
static int check_list(const char *in, int with_fid, const uint8_t *token, long *bad)
{
    const char *p = in;
    while (is_blank(*p))
        p++;
    if (!*p)
        return 0; /* libmapi passes it on; the function reports the missing list */
    for (;;) {
        char *end;
        while (is_blank(*p))
            p++;
        if (with_fid) {
            errno = 0;
            long fid = strtol(p, &end, 10);
            if (end == p || errno || fid < INT_MIN || fid > INT_MAX)
                return -1;
            p = end;
            while (is_blank(*p))
                p++;
            if (*p != '@')
                return -1;
            p++;
            while (is_blank(*p))
                p++;
        }
        errno = 0;
        long fd = strtol(p, &end, 10);
        if (end == p || errno || fd < INT_MIN || fd > INT_MAX)
            return -1;
        p = end;
        if (!mc_flow_owned((int)fd, token)) {
            *bad = fd;
            return -2;
        }
        while (is_blank(*p))
            p++;
        if (!*p)
            return 0;
        if (*p != ',')
            return -1;
        p++;
    }
}

/* 1 if a 'w' file name is absolute or has a ".." component. */
static int unsafe_path(const char *s)
{
    if (s[0] == '/')
        return 1;
    for (const char *p = s; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

static int do_apply(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    int rc;
    char argdescr[MAPI_STR_LENGTH], libname[MAPI_STR_LENGTH];
    uint32_t flags;
    char *strs[DIMAPI_MAX_ARGS];
    char nums[DIMAPI_MAX_ARGS][32];
    if (mc_lookup_function(r->str, argdescr, sizeof(argdescr), libname, sizeof(libname), &flags) <
        0) {
        rc = reply_lmerr(s, r);
        goto out;
    }
    if (strlen(argdescr) != r->nargs) {
        rc = reply_error(s, r->type, r->reqid, MFUNCT_INVALID_ARGUMENT,
                         "%s takes %zu arguments (\"%s\"), got %u", r->str, strlen(argdescr),
                         argdescr, r->nargs);
        goto out;
    }
    for (uint32_t i = 0; i < r->nargs; i++) {
        const struct dimapi_arg *a = &r->args[i];
        int pos = (int)i + 1;
        if (a->type != argdescr[i]) {
            rc = reply_error(s, r->type, r->reqid, position_error(pos),
                             "argument %d of %s has type '%c', the function expects '%c' (\"%s\")",
                             pos, r->str, a->type, argdescr[i], argdescr);
            goto out;
        }
        long bad = 0;
        int lr;
        switch (a->type) {
        case 'w':
            if (!g_conf.dimapi_file_dir[0]) {
                rc = reply_error(s, r->type, r->reqid, MAPI_ERROR_FILE,
                                 "argument %d: mapicommd on %s does not write files for remote "
                                 "applications (dimapi_file_dir is not set)",
                                 pos, g_hostname);
                goto out;
            }
            if (unsafe_path(a->s)) {
                rc = reply_error(s, r->type, r->reqid, MAPI_ERROR_FILE,
                                 "argument %d: file name \"%s\" must be relative to "
                                 "dimapi_file_dir, without \"..\"",
                                 pos, a->s);
                goto out;
            }
            strs[i] = a->s;
            break;
        case 's':
            strs[i] = a->s;
            break;
        case 'S':
        case 'R':
            lr = check_list(a->s, a->type == 'S', s->token, &bad);
            if (lr == -1) {
                rc = reply_error(s, r->type, r->reqid, position_error(pos), "argument %d \"%s\" %s",
                                 pos, a->s,
                                 a->type == 'S' ? "is not a list of fid@fd pairs"
                                                : "is not a list of flow descriptors");
                goto out;
            }
            if (lr == -2) {
                rc = reply_error(s, r->type, r->reqid, position_error(pos),
                                 "argument %d: flow descriptor %ld is not a flow of this "
                                 "application on %s",
                                 pos, bad, g_hostname);
                goto out;
            }
            strs[i] = a->s;
            break;
        case 'r':
            if (!mc_flow_owned(a->i, s->token)) {
                rc = reply_error(s, r->type, r->reqid, position_error(pos),
                                 "argument %d: flow descriptor %d is not a flow of this "
                                 "application on %s",
                                 pos, (int)a->i, g_hostname);
                goto out;
            }
            snprintf(nums[i], sizeof(nums[i]), "%d", (int)a->i);
            strs[i] = nums[i];
            break;
        case 'c':
            /* A leading blank makes libmapi read a number, not a one-character string. */
            snprintf(nums[i], sizeof(nums[i]), " %d", (int)a->i);
            strs[i] = nums[i];
            break;
        case 'l':
            snprintf(nums[i], sizeof(nums[i]), "%llu", (unsigned long long)a->l);
            strs[i] = nums[i];
            break;
        default: /* i f */
            snprintf(nums[i], sizeof(nums[i]), "%d", (int)a->i);
            strs[i] = nums[i];
            break;
        }
    }
    int fid = mapi_apply_function_array(r->rfd, r->str, strs, (int)r->nargs);
    if (fid < 0) {
        rc = reply_lmerr(s, r);
        goto out;
    }
    uint32_t fl = 0, rsize = 0;
    int connected, nowait;
    if (mc_fn_meta(r->rfd, fid, &fl, &rsize, &connected, &nowait) < 0)
        fl = flags;
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, fid);
    wire_put_u32(&w, rsize);
    wire_put_u32(&w, fl);
    rc = send_msg(s, &w);
out:
    mc_flow_put(f);
    return rc;
}

static int do_connect(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    int rc;
    if (mapi_connect(r->rfd) < 0) {
        rc = reply_lmerr(s, r);
    } else {
        struct wire_writer w;
        wire_writer_init(&w, r->type, r->reqid, 0);
        rc = send_msg(s, &w);
    }
    mc_flow_put(f);
    return rc;
}

/* Common checks of READ_RESULT and GET_PKTS: f's function fid, connected. 0, or -1 after an
 * error reply was sent (*rc its result). */
static int fn_check(struct session *s, const struct dimapi_req *r, uint32_t *flags, int *nowait,
                    int *rc)
{
    uint32_t rsize;
    int connected;
    if (mc_fn_meta(r->rfd, r->fid, flags, &rsize, &connected, nowait) < 0) {
        *rc = reply_lmerr(s, r);
        return -1;
    }
    if (!connected) {
        *rc = reply_error(s, r->type, r->reqid, MAPI_FLOW_NOT_CONNECTED, "flow %d is not connected",
                          r->rfd);
        return -1;
    }
    return 0;
}

static int do_read_result(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    int rc;
    uint32_t flags;
    int nowait;
    if (fn_check(s, r, &flags, &nowait, &rc) < 0)
        goto out;
    struct wire_writer w;
    if (!(flags & MAPI_FN_QUEUE)) {
        pthread_mutex_lock(&f->io);
        int lost = f->lost;
        mapi_results_t *res = lost ? NULL : mapi_read_results(r->rfd, r->fid);
        if (res) {
            wire_writer_init(&w, r->type, r->reqid, 0);
            wire_put_u64(&w, res->ts);
            wire_put_bytes(&w, res->res, res->size > 0 ? (uint32_t)res->size : 0);
        }
        pthread_mutex_unlock(&f->io);
        if (lost)
            rc = reply_error(s, r->type, r->reqid, MCOM_SOCKET_ERROR, "%s", f->lostmsg);
        else
            rc = res ? send_msg(s, &w) : reply_lmerr(s, r);
        goto out;
    }
    /* A queue: the next record, waiting for it as long as it takes. */
    pthread_mutex_lock(&f->lock);
    int perr;
    char pmsg[512];
    struct mc_pump *p = mc_pump_get(f, r->fid, MC_PUMP_QUEUE, 1, &perr, pmsg, sizeof(pmsg));
    for (;;) {
        if (!p || p->head || p->err || p->end)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
        if (p->head || p->err || p->end)
            break;
        pthread_mutex_unlock(&f->lock);
        if (socket_readable(s, 0) && handle_interrupt(s) < 0) {
            mc_flow_put(f);
            return -1;
        }
        pthread_mutex_lock(&f->lock);
    }
    struct mc_item *it = NULL;
    int code = 0;
    char msg[512] = "";
    if (!p) {
        code = perr;
        snprintf(msg, sizeof(msg), "%s", pmsg);
    } else if (p->head) {
        it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        p->bytes -= it->caplen + sizeof(*it);
        pthread_cond_broadcast(&f->cond); /* room for the pump */
    } else if (p->err) {
        code = p->err;
        snprintf(msg, sizeof(msg), "%s", p->errmsg);
    } else {
        code = MAPI_END_OF_RESULTS;
        snprintf(msg, sizeof(msg), "function %d of flow %d has no more results", r->fid, r->rfd);
    }
    pthread_mutex_unlock(&f->lock);
    if (it) {
        wire_writer_init(&w, r->type, r->reqid, 0);
        wire_put_u64(&w, it->ts);
        wire_put_bytes(&w, it->data, it->caplen);
        mc_item_free(it);
        rc = send_msg(s, &w);
    } else {
        rc = reply_error(s, r->type, r->reqid, code, "%s", msg);
    }
out:
    mc_flow_put(f);
    return rc;
}

/* Appends one packet to a GET_PKTS reply. */
static void put_pkt(struct wire_writer *w, uint64_t ts, uint16_t ifindex, uint32_t caplen,
                    uint32_t wlen, const void *data)
{
    wire_put_u64(w, ts);
    wire_put_u16(w, ifindex);
    wire_put_u32(w, caplen);
    wire_put_u32(w, wlen);
    wire_put_bytes(w, data, caplen);
}

static int do_get_pkts(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    int rc;
    uint32_t flags;
    int nowait;
    if (fn_check(s, r, &flags, &nowait, &rc) < 0)
        goto out;
    if (!(flags & MAPI_FN_RING)) {
        rc = reply_error(s, r->type, r->reqid, MAPI_INVALID_FID_FUNCID,
                         "function %d of flow %d is not a TO_BUFFER", r->fid, r->rfd);
        goto out;
    }
    uint32_t max_pkts = r->max_pkts ? r->max_pkts : UINT32_MAX;
    size_t max_bytes = r->max_bytes && r->max_bytes < DIMAPI_MAX_BATCH_BYTES
                           ? r->max_bytes
                           : DIMAPI_MAX_BATCH_BYTES;
    int64_t deadline = now_ms() + r->wait_ms;
    pthread_mutex_lock(&f->lock);
    int perr;
    char pmsg[512];
    struct mc_pump *p = mc_pump_get(f, r->fid, MC_PUMP_RING, !nowait, &perr, pmsg, sizeof(pmsg));
    pthread_mutex_unlock(&f->lock);
    if (!p) {
        rc = reply_error(s, r->type, r->reqid, perr, "%s", pmsg);
        goto out;
    }
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    size_t end_off = w.len;
    wire_put_u8(&w, 0);
    size_t n_off = w.len;
    wire_put_u32(&w, 0);
    uint32_t n = 0;
    size_t bytes = 0;
    int end = 0, code = 0;
    char msg[512] = "";
    for (;;) {
        /* Records the pump (or an earlier request) left in the FIFO. */
        pthread_mutex_lock(&f->lock);
        while (p->head && n < max_pkts) {
            struct mc_item *it = p->head;
            size_t sz = PKT_WIRE_OVERHEAD + it->caplen;
            if (n > 0 && bytes + sz > max_bytes)
                break;
            p->head = it->next;
            if (!p->head)
                p->tail = NULL;
            p->bytes -= it->caplen + sizeof(*it);
            put_pkt(&w, it->ts, it->ifindex, it->caplen, it->wlen, it->data);
            bytes += sz;
            n++;
            mc_item_free(it);
        }
        int fifo_empty = p->head == NULL;
        if (fifo_empty && p->end)
            end = 1;
        if (fifo_empty && p->err && !n) {
            code = p->err;
            snprintf(msg, sizeof(msg), "%s", p->errmsg);
        }
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        /* A NOWAIT ring: read it here. */
        if (nowait && fifo_empty && !code && !end && n < max_pkts && bytes < max_bytes) {
            pthread_mutex_lock(&f->io);
            if (f->lost && !n) {
                code = MCOM_SOCKET_ERROR;
                snprintf(msg, sizeof(msg), "%s", f->lostmsg);
            }
            for (int tries = 0; n < max_pkts && !f->lost;) {
                struct mapipkt *pkt = mapi_get_next_pkt(r->rfd, r->fid);
                if (!pkt) {
                    int c = mc_last_error(msg, sizeof(msg));
                    if (c) {
                        if (!n)
                            code = c;
                        break;
                    }
                    /* Empty: at the end of a trace, look once more (a last packet may have
                     * come before the end mark). */
                    if (mc_ring_eof(r->rfd, r->fid) && tries++ == 0)
                        continue;
                    end = mc_ring_eof(r->rfd, r->fid) && tries > 0;
                    break;
                }
                size_t sz = PKT_WIRE_OVERHEAD + pkt->caplen;
                if (n > 0 && bytes + sz > max_bytes) {
                    /* Keep it for the next request. */
                    struct mc_item *it = malloc(sizeof(*it) + pkt->caplen);
                    if (it) {
                        it->ts = pkt->ts;
                        it->ifindex = pkt->ifindex;
                        it->caplen = pkt->caplen;
                        it->wlen = pkt->wlen;
                        memcpy(it->data, &pkt->pkt, pkt->caplen);
                        mc_pump_push(f, p, it);
                    }
                    break;
                }
                put_pkt(&w, pkt->ts, pkt->ifindex, pkt->caplen, pkt->wlen, &pkt->pkt);
                bytes += sz;
                n++;
                if (bytes >= max_bytes)
                    break;
            }
            pthread_mutex_unlock(&f->io);
        }
        if (n > 0 || end || code)
            break;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        if (nowait) {
            if (socket_readable(s, left < NOWAIT_POLL_MS ? (int)left : NOWAIT_POLL_MS) &&
                handle_interrupt(s) < 0) {
                wire_writer_free(&w);
                mc_flow_put(f);
                return -1;
            }
            continue;
        }
        pthread_mutex_lock(&f->lock);
        if (!p->head && !p->end && !p->err) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long slice = left < WAIT_SLICE_MS ? (long)left : WAIT_SLICE_MS;
            ts.tv_nsec += slice * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cond, &f->lock, &ts);
        }
        int ready = p->head || p->end || p->err;
        pthread_mutex_unlock(&f->lock);
        if (!ready && socket_readable(s, 0) && handle_interrupt(s) < 0) {
            wire_writer_free(&w);
            mc_flow_put(f);
            return -1;
        }
    }
    if (code && !n) {
        wire_writer_free(&w);
        rc = reply_error(s, r->type, r->reqid, code, "%s", msg);
        goto out;
    }
    if (!w.failed) {
        w.buf[end_off] = (uint8_t)end;
        uint32_t nn = htonl(n);
        memcpy(w.buf + n_off, &nn, 4);
    }
    rc = send_msg(s, &w);
out:
    mc_flow_put(f);
    return rc;
}

static int do_close_flow(struct session *s, const struct dimapi_req *r)
{
    struct mc_flow *f = mc_flow_get(r->rfd, s->token);
    if (!f)
        return reply_no_flow(s, r);
    int code;
    char msg[512];
    int rc = mc_flow_close(f, &code, msg, sizeof(msg));
    mc_flow_put(f);
    if (rc < 0)
        return reply_error(s, r->type, r->reqid, code, "%s", msg);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    return send_msg(s, &w);
}

static int do_flow_info(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    mapi_flow_info_t fi;
    int ok = mapi_get_flow_info(r->rfd, &fi) == 0;
    mc_flow_put(f);
    if (!ok)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_u32(&w, (uint32_t)fi.uid);
    wire_put_i32(&w, r->rfd);
    wire_put_i32(&w, fi.devid);
    wire_put_str(&w, fi.device);
    wire_put_u32(&w, fi.num_functions);
    wire_put_u64(&w, (uint64_t)fi.start);
    wire_put_u64(&w, (uint64_t)fi.end);
    wire_put_u32(&w, (uint32_t)fi.status);
    wire_put_u64(&w, fi.cpu_ns);
    return send_msg(s, &w);
}

static int do_function_info(struct session *s, const struct dimapi_req *r)
{
    int lrc;
    struct mc_flow *f = req_flow(s, r, &lrc);
    if (!f)
        return lrc;
    mapi_function_info_t fi;
    int ok = (r->next ? mapi_get_next_function_info(r->rfd, r->fid, &fi)
                      : mapi_get_function_info(r->rfd, r->fid, &fi)) == 0;
    mc_flow_put(f);
    if (!ok)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, fi.fid);
    wire_put_str(&w, fi.name);
    wire_put_str(&w, fi.libname);
    wire_put_str(&w, fi.devtype);
    wire_put_u64(&w, fi.pkts);
    wire_put_u64(&w, fi.passed_pkts);
    wire_put_i32(&w, fi.result_size);
    return send_msg(s, &w);
}

static int do_stats(struct session *s, const struct dimapi_req *r)
{
    if (mc_is_remote_scope(r->str))
        return refuse_remote(s, r);
    struct mapi_stat st;
    if (mapi_stats(r->str, &st) < 1)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_u32(&w, st.ps_recv);
    wire_put_u32(&w, st.ps_drop);
    wire_put_u32(&w, st.ps_ifdrop);
    wire_put_str(&w, g_hostname);
    wire_put_str(&w, st.dev);
    return send_msg(s, &w);
}

static int do_device_info(struct session *s, const struct dimapi_req *r)
{
    mapi_device_info_t d;
    if ((r->next ? mapi_get_next_device_info(r->id, &d) : mapi_get_device_info(r->id, &d)) < 0)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, d.id);
    wire_put_str(&w, d.device);
    wire_put_str(&w, d.name);
    wire_put_str(&w, d.alias);
    wire_put_str(&w, d.description);
    wire_put_i32(&w, d.link_speed);
    wire_put_i32(&w, d.mpls);
    wire_put_i32(&w, d.vlan);
    return send_msg(s, &w);
}

static int do_library_info(struct session *s, const struct dimapi_req *r)
{
    mapi_lib_info_t l;
    if ((r->next ? mapi_get_next_library_info(r->id, &l) : mapi_get_library_info(r->id, &l)) < 0)
        return reply_lmerr(s, r);
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, l.id);
    wire_put_str(&w, l.libname);
    wire_put_u32(&w, l.functs);
    return send_msg(s, &w);
}

static int do_libfunct_info(struct session *s, const struct dimapi_req *r)
{
    mapi_libfunct_info_t fi;
    if ((r->next ? mapi_get_next_libfunct_info(r->lib, r->fnum, &fi)
                 : mapi_get_libfunct_info(r->lib, r->fnum, &fi)) < 0)
        return reply_lmerr(s, r);
    /* Functions are numbered 0.. without gaps: "next" of fnum is fnum + 1 (0 from below). */
    int32_t fnum = r->fnum;
    if (r->next)
        fnum = fnum < 0 ? 0 : fnum < INT32_MAX ? fnum + 1 : fnum; /* no signed overflow */
    struct wire_writer w;
    wire_writer_init(&w, r->type, r->reqid, 0);
    wire_put_i32(&w, fnum);
    wire_put_str(&w, fi.name);
    wire_put_str(&w, fi.descr);
    wire_put_str(&w, fi.argdescr);
    wire_put_str(&w, fi.devtype);
    return send_msg(s, &w);
}

/* Handles one received message. 0 to go on, -1 to close the connection. */
static int handle_message(struct session *s, const struct wire_hdr *h, const uint8_t *payload)
{
    struct dimapi_req r;
    char why[256];
    int d = dimapi_decode(h, payload, h->length, &r, why, sizeof(why));
    int rc;
    if (d == DIMAPI_DECODE_MALFORMED) {
        mapi_log(LOG_LVL_WARN, "%s: malformed message (%s); connection closed", s->peer, why);
        dimapi_req_free(&r);
        return -1;
    }
    if (d == DIMAPI_DECODE_UNKNOWN) {
        rc = reply_error(s, h->type, h->reqid, MFUNCT_NOT_SUPPORTED, "%s", why);
        return s->hello ? rc : -1;
    }
    if (!s->hello && r.type != DIMAPI_HELLO) {
        reply_error(s, r.type, r.reqid, MCOM_UNKNOWN_ERROR, "the first request must be HELLO");
        dimapi_req_free(&r);
        return -1;
    }
    switch (r.type) {
    case DIMAPI_GET_FUNCTION:
    case DIMAPI_STATS:
    case DIMAPI_DEVICE_INFO:
    case DIMAPI_LIBRARY_INFO:
    case DIMAPI_LIBFUNCT_INFO:
        mc_mapid_recover(); /* a new connection to mapid if the old one broke */
        break;
    default:
        break;
    }
    switch (r.type) {
    case DIMAPI_HELLO:
        rc = do_hello(s, &r);
        break;
    case DIMAPI_CREATE_FLOW:
        rc = do_create_flow(s, &r);
        break;
    case DIMAPI_GET_FUNCTION:
        rc = do_get_function(s, &r);
        break;
    case DIMAPI_APPLY:
        rc = do_apply(s, &r);
        break;
    case DIMAPI_CONNECT:
        rc = do_connect(s, &r);
        break;
    case DIMAPI_READ_RESULT:
        rc = do_read_result(s, &r);
        break;
    case DIMAPI_GET_PKTS:
        rc = do_get_pkts(s, &r);
        break;
    case DIMAPI_CLOSE_FLOW:
        rc = do_close_flow(s, &r);
        break;
    case DIMAPI_FLOW_INFO:
        rc = do_flow_info(s, &r);
        break;
    case DIMAPI_FUNCTION_INFO:
        rc = do_function_info(s, &r);
        break;
    case DIMAPI_STATS:
        rc = do_stats(s, &r);
        break;
    case DIMAPI_DEVICE_INFO:
        rc = do_device_info(s, &r);
        break;
    case DIMAPI_LIBRARY_INFO:
        rc = do_library_info(s, &r);
        break;
    case DIMAPI_LIBFUNCT_INFO:
        rc = do_libfunct_info(s, &r);
        break;
    default:
        rc = reply_error(s, r.type, r.reqid, MFUNCT_NOT_SUPPORTED, "unknown request type %u",
                         r.type);
        break;
    }
    dimapi_req_free(&r);
    if (rc == 0 && s->ndef)
        rc = flush_deferred(s);
    return rc;
}

/* ---- connection threads -------------------------------------------------------------- */

/*
 * Closes s's flows and connection and forgets it. from_thread: called by s's own thread as it
 * ends, which then also frees OpenSSL's per-thread state (random generators) before it says
 * it is gone, so that mapicommd, waiting for its connections at shutdown, never exits while
 * that state still exists.
 */
static void session_end(struct session *s, int from_thread)
{
    mc_flows_close_owner(s);
    if (s->ident) {
        mc_ident_conn_del(s->ident);
        mc_ident_put(s->ident);
    }
    net_close(s->c);
    if (from_thread)
        OPENSSL_thread_stop();
    pthread_mutex_lock(&sess_lock);
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    if (s->pending)
        npending--;
    else
        nsessions--;
    close(s->fd);
    pthread_cond_broadcast(&sess_cond);
    pthread_mutex_unlock(&sess_lock);
    free(s);
}

/* Accepts the TLS handshake of s (on a duplicate of its socket). 0 or -1. */
static int session_accept(struct session *s, int timeout_ms)
{
    char err[512];
    int fd = dup(s->fd);
    if (fd < 0) {
        mapi_log(LOG_LVL_WARN, "cannot duplicate a socket: %s", strerror(errno));
        return -1;
    }
    s->c = net_accept(g_netctx, fd, timeout_ms, err, sizeof(err));
    if (!s->c) {
        mapi_log(LOG_LVL_INFO, "%s", err);
        return -1;
    }
    snprintf(s->peer, sizeof(s->peer), "%s", net_peer(s->c));
    return 0;
}

static void *session_main(void *arg)
{
    struct session *s = arg;
    int hs = g_conf.dimapi_handshake_timeout;
    int64_t deadline = now_ms() + hs;
    if (session_accept(s, hs) < 0)
        goto out;
    const char *subj = net_peer_subject(s->c);
    mapi_log(LOG_LVL_DEBUG, "%s: connected%s%s", s->peer, subj[0] ? " as " : "", subj);
    for (;;) {
        int timeout = -1;
        if (!s->hello) {
            int64_t left = deadline - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        struct wire_hdr h;
        uint8_t *payload = NULL;
        int timed_out = 0;
        char err[512];
        /* Wait for the first byte as long as allowed; a message that has begun must then be
         * complete within dimapi_idle_timeout (a client stalling mid-message is dropped). */
        if (s->hello && !socket_readable(s, -1))
            continue;
        /* Before the HELLO only a small message is accepted (a HELLO is 20 bytes): an
         * unauthenticated peer cannot make us allocate a megabyte per connection. */
        int rc = net_recv_max(s->c, &h, &payload, s->hello ? WIRE_MAX_PAYLOAD : PRE_HELLO_MAX,
                              s->hello ? g_conf.dimapi_idle_timeout : timeout, &timed_out, err,
                              sizeof(err));
        if (rc == -2) {
            mapi_log(LOG_LVL_WARN, "%s; connection closed", err);
            break;
        }
        if (rc < 0) {
            if (timed_out && s->hello)
                mapi_log(LOG_LVL_INFO,
                         "%s: incomplete message within %d ms (dimapi_idle_timeout); connection "
                         "closed",
                         s->peer, g_conf.dimapi_idle_timeout);
            else if (timed_out)
                mapi_log(LOG_LVL_INFO,
                         "%s: no HELLO within %d ms (dimapi_handshake_timeout); connection closed",
                         s->peer, hs);
            else
                mapi_log(LOG_LVL_DEBUG, "%s", err);
            break;
        }
        rc = handle_message(s, &h, payload);
        free(payload);
        if (rc < 0 || __atomic_load_n(&g_stopping, __ATOMIC_RELAXED))
            break;
    }
out:
    if (s->c)
        mapi_log(LOG_LVL_DEBUG, "%s: disconnected", s->peer);
    session_end(s, 1);
    return NULL;
}

/* The key of dimapi_max_handshakes_per_address: an IPv4 address (as IPv4-mapped IPv6), or
 * the /64 of an IPv6 address (one host usually has a whole /64). */
static void addr_key(const struct sockaddr *sa, unsigned salen, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa && sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
    }
}

/* Connections closed at accept (pending limits) and pending ones evicted, logged at most once a
 * second. */
static uint64_t refused_pending, evicted_pending;
static int64_t refused_logged_ms;

/* Lock held, the pending pool full: shuts the longest-pending connection down, so that an
 * attacker holding the whole pool with idle connections (from many addresses) must keep
 * opening new ones faster than a valid client completes its handshake to keep it out. Its
 * thread then ends by itself (and frees its place). */
static void evict_oldest_pending(void)
{
    struct session *old = NULL;
    for (struct session *o = sess_list; o; o = o->next)
        if (o->pending && !o->evicted && (!old || o->start_ms < old->start_ms))
            old = o;
    if (old) {
        old->evicted = 1;
        shutdown(old->fd, SHUT_RDWR);
        evicted_pending++;
    }
}

void session_start(int fd, const struct sockaddr *sa, unsigned salen)
{
    int ka = 1, idle = 60, intvl = 10, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof(ka));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    s->fd = fd;
    s->pending = 1;
    s->start_ms = now_ms();
    addr_key(sa, salen, s->addr);
    snprintf(s->peer, sizeof(s->peer), "?");
    pthread_mutex_lock(&sess_lock);
    if (__atomic_load_n(&g_stopping, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&sess_lock);
        close(fd);
        free(s);
        return;
    }
    const char *why = NULL;
    int same = 0, evicted = 0;
    for (struct session *o = sess_list; o; o = o->next) {
        same += o->pending && !o->evicted && memcmp(o->addr, s->addr, 16) == 0;
        evicted += o->pending && o->evicted;
    }
    if (same >= g_conf.dimapi_max_handshakes_per_address) {
        why = "dimapi_max_handshakes_per_address";
    } else if (npending - evicted >= g_conf.dimapi_max_handshakes) {
        /* Make room by evicting; evicted connections still hold a thread until they notice,
         * so the hard ceiling is a quarter above the limit. */
        evict_oldest_pending();
        if (npending >= g_conf.dimapi_max_handshakes + g_conf.dimapi_max_handshakes / 4 + 1)
            why = "dimapi_max_handshakes";
    }
    int64_t now = now_ms();
    if (why)
        refused_pending++;
    uint64_t nref = refused_pending, nev = evicted_pending;
    int log = (nref || nev) && now - refused_logged_ms >= 1000;
    if (log) {
        refused_logged_ms = now;
        refused_pending = evicted_pending = 0;
    }
    if (!why) {
        npending++;
        s->next = sess_list;
        if (sess_list)
            sess_list->pprev = &s->next;
        s->pprev = &sess_list;
        sess_list = s;
    }
    pthread_mutex_unlock(&sess_lock);
    if (log) {
        char peer[64] = "?";
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
        memcpy(&s6.sin6_addr, s->addr, 16);
        inet_ntop(AF_INET6, &s6.sin6_addr, peer, sizeof(peer));
        mapi_log(LOG_LVL_WARN,
                 "too many connections in their TLS handshake or before HELLO: %llu new ones "
                 "closed at once, %llu longest-pending ones dropped (dimapi_max_handshakes %d, "
                 "dimapi_max_handshakes_per_address %d; the last from %s)",
                 (unsigned long long)nref, (unsigned long long)nev, g_conf.dimapi_max_handshakes,
                 g_conf.dimapi_max_handshakes_per_address, peer);
    }
    if (why) {
        close(fd);
        free(s);
        return;
    }

    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 512 * 1024);
    pthread_t th;
    int rc = pthread_create(&th, &at, session_main, s);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        mapi_log(LOG_LVL_WARN, "cannot start a connection thread: %s", strerror(rc));
        session_end(s, 0);
    }
}

int sessions_stop(int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&sess_lock);
    for (struct session *s = sess_list; s; s = s->next)
        shutdown(s->fd, SHUT_RDWR);
    while (nsessions + npending > 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sess_cond, &sess_lock, &ts);
        /* New sessions may have started their handshake meanwhile. */
        for (struct session *s = sess_list; s; s = s->next)
            shutdown(s->fd, SHUT_RDWR);
    }
    int left = nsessions + npending;
    pthread_mutex_unlock(&sess_lock);
    return left;
}
