/*
 * lib/client.c - libmapi's connection to mapid (the local back end).
 *
 * One AF_UNIX stream socket per process, opened on the first call that needs mapid: the path
 * is `socket=` of mapi.conf ($MAPI_CONF or the installed file; defaults if it cannot be
 * read). After connect we say HELLO. If nobody listens we fail at once with 5124 naming the
 * path. Requests are serialized by one global mutex; each waits at most
 * LIB_REQUEST_TIMEOUT_MS for its reply, so a hung mapid cannot hang the application.
 *
 * While waiting for a reply we may receive unsolicited messages (request id 0): SHUTDOWN
 * (remembered: later calls fail with 6140) and DEVICE_FINISHED (ignored). Replies whose
 * request id is not the one we wait for are stale (their request timed out) and dropped.
 *
 * Once mapid shut down or the connection broke, calls fail (6140 / 5123) as long as the
 * application still holds flows from that connection; when it has closed them all, the next
 * call connects afresh (and if that fails, reports the remembered reason). A program that
 * multiplexes many users' flows over libmapi (mapicommd) calls lm_client_forget_dead
 * instead, which drops the dead connection's flows at once so the next call reconnects.
 *
 * Also here: the cache of GET_FUNCTION answers and the names of offline devices created
 * through this connection (used to tell them from remote "host:dev" scopes).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/conf.h"
#include "lib/internal.h"

struct fn_cache_entry {
    struct lib_fninfo info;
    struct fn_cache_entry *next;
};

struct name_entry {
    char *name;
    struct name_entry *next;
};

static struct {
    pthread_mutex_t lock;
    int sock;
    uint32_t reqid;
    int have_path;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int shutdown;     /* atomic: SHUTDOWN received */
    int dead;         /* atomic: connection lost */
    char reason[256]; /* written before shutdown/dead are set, stable while they are */
    int forgotten;    /* lm_client_forget_dead ran for the current dead connection */
    struct fn_cache_entry *fns;
    struct name_entry *offline;
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1};

void lm_client_lock(void)
{
    pthread_mutex_lock(&C.lock);
}

void lm_client_unlock(void)
{
    pthread_mutex_unlock(&C.lock);
}

void lm_get_str_trunc(struct wire_reader *r, char *dst, size_t dstlen)
{
    uint32_t n;
    const uint8_t *p = wire_get_bytes(r, &n);
    if (dstlen == 0)
        return;
    size_t k = n < dstlen - 1 ? n : dstlen - 1;
    memcpy(dst, p, k);
    dst[k] = 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* Lock held. The connection is unusable from now on. */
static void mark_dead(const char *why)
{
    if (C.sock >= 0) {
        close(C.sock);
        C.sock = -1;
    }
    if (!__atomic_load_n(&C.dead, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&C.shutdown, __ATOMIC_RELAXED))
        snprintf(C.reason, sizeof(C.reason), "%s", why);
    __atomic_store_n(&C.dead, 1, __ATOMIC_RELEASE);
}

/* Lock held. Handles a message with request id 0. */
static void handle_unsolicited(const struct wire_hdr *h, const uint8_t *payload)
{
    struct wire_reader r;
    wire_reader_init(&r, payload, h->length);
    if (h->type == WIRE_SHUTDOWN) {
        char why[200];
        lm_get_str_trunc(&r, why, sizeof(why));
        /* The reason is read without the lock once a flag is set: write it only before. */
        if (!__atomic_load_n(&C.shutdown, __ATOMIC_RELAXED) &&
            !__atomic_load_n(&C.dead, __ATOMIC_RELAXED))
            snprintf(C.reason, sizeof(C.reason), "%s", why[0] ? why : "mapid is stopping");
        __atomic_store_n(&C.shutdown, 1, __ATOMIC_RELEASE);
    }
    /* WIRE_DEVICE_FINISHED and unknown notifications: nothing to do (flows see the end of
     * the trace in their shared memory). */
}

int lm_client_gone(void)
{
    return __atomic_load_n(&C.shutdown, __ATOMIC_RELAXED) |
           __atomic_load_n(&C.dead, __ATOMIC_RELAXED);
}

int lm_client_state_error(void)
{
    if (__atomic_load_n(&C.shutdown, __ATOMIC_ACQUIRE)) {
        lm_set_error(MAPI_SHUTTING_DOWN, "%s", C.reason);
        return MAPI_SHUTTING_DOWN;
    }
    if (__atomic_load_n(&C.dead, __ATOMIC_ACQUIRE)) {
        lm_set_error(MCOM_SOCKET_ERROR, "%s", C.reason);
        return MCOM_SOCKET_ERROR;
    }
    return 0;
}

static void cache_clear(void)
{
    while (C.fns) {
        struct fn_cache_entry *e = C.fns;
        C.fns = e->next;
        free(e);
    }
    while (C.offline) {
        struct name_entry *e = C.offline;
        C.offline = e->next;
        free(e->name);
        free(e);
    }
}

static void load_socket_path(void)
{
    if (C.have_path)
        return;
    struct mapi_conf *conf = malloc(sizeof(*conf));
    if (conf) {
        char err[256];
        /* On failure conf still holds the defaults (plus whatever was read before the bad
         * line); we only need the socket path. */
        if (mapi_conf_load(conf, mapi_conf_default_path(), err, sizeof(err)) == 0)
            mapi_conf_free(conf);
        snprintf(C.path, sizeof(C.path), "%s",
                 conf->socket[0] ? conf->socket : MAPI_DEFAULT_SOCKET);
        free(conf);
    } else {
        snprintf(C.path, sizeof(C.path), "%s", MAPI_DEFAULT_SOCKET);
    }
    C.have_path = 1;
}

static int send_and_wait(struct wire_writer *w, const int *fds, int nfds, struct lib_reply *rep);
static void drain_pending(void);

/* Lock held. Request ids are never 0 (the id of unsolicited messages). */
static uint32_t next_reqid(void)
{
    if (++C.reqid == 0)
        ++C.reqid;
    return C.reqid;
}

/* Lock held, not connected. Connects and says HELLO. 0, or -1 with the error set. */
static int do_connect(void)
{
    load_socket_path();
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(C.path) >= sizeof(sa.sun_path)) {
        lm_set_error(MCOM_INIT_SOCKET_ERROR, "socket path too long: %s", C.path);
        return -1;
    }
    memcpy(sa.sun_path, C.path, strlen(C.path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        lm_set_error(MCOM_INIT_SOCKET_ERROR, "socket: %s", strerror(errno));
        return -1;
    }
    /* Bounds connect (full backlog) and send (mapid not reading) on a hung daemon. */
    struct timeval tv = {LIB_REQUEST_TIMEOUT_MS / 1000, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc;
    do
        rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        lm_set_error(MCOM_INIT_SOCKET_ERROR, "%s: %s", C.path, strerror(errno));
        close(s);
        return -1;
    }
    C.sock = s;
    struct wire_writer w;
    wire_writer_init(&w, WIRE_HELLO, next_reqid(), 0);
    wire_put_u16(&w, WIRE_VERSION);
    wire_put_u16(&w, WIRE_VERSION);
    struct lib_reply rep;
    rc = send_and_wait(&w, NULL, 0, &rep);
    if (rc < 0) {
        if (C.sock >= 0) {
            close(C.sock);
            C.sock = -1;
        }
        /* This connection never worked: nothing to remember about it. */
        __atomic_store_n(&C.dead, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&C.shutdown, 0, __ATOMIC_RELEASE);
        if (rc == CLIENT_ERR_DAEMON)
            return -1; /* mapid refused us, its error is set */
        int code = lm_last_error();
        lm_set_error(MCOM_INIT_SOCKET_ERROR, "%s: HELLO failed (%s)", C.path, mapi_strerror(code));
        return -1;
    }
    uint16_t version = wire_get_u16(&rep.r);
    char server[128];
    lm_get_str_trunc(&rep.r, server, sizeof(server));
    int ok = wire_reader_ok(&rep.r) && version == WIRE_VERSION;
    lm_client_reply_free(&rep);
    if (!ok) {
        close(C.sock);
        C.sock = -1;
        lm_set_error(MCOM_INIT_SOCKET_ERROR, "%s: mapid speaks wire version %u, we speak %u",
                     C.path, version, WIRE_VERSION);
        return -1;
    }
    return 0;
}

int lm_client_begin(struct wire_writer *w, uint16_t type)
{
    /* A SHUTDOWN (or EOF) may be waiting in the socket: notice it before sending. */
    drain_pending();
    if (__atomic_load_n(&C.shutdown, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&C.dead, __ATOMIC_ACQUIRE)) {
        if (lm_flow_count() > 0) {
            lm_client_state_error();
            return -1;
        }
        /* Nothing of the old connection is left: try a new one. */
        int was_shutdown = C.shutdown;
        char reason[sizeof(C.reason)];
        memcpy(reason, C.reason, sizeof(reason));
        if (C.sock >= 0) {
            close(C.sock);
            C.sock = -1;
        }
        cache_clear();
        __atomic_store_n(&C.shutdown, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&C.dead, 0, __ATOMIC_RELEASE);
        if (do_connect() < 0) {
            /* No new mapid: keep reporting why the old connection ended. */
            memcpy(C.reason, reason, sizeof(reason));
            __atomic_store_n(was_shutdown ? &C.shutdown : &C.dead, 1, __ATOMIC_RELEASE);
            if (lm_last_error() == MCOM_INIT_SOCKET_ERROR)
                lm_client_state_error();
            return -1;
        }
        C.forgotten = 0;
    } else if (C.sock < 0 && do_connect() < 0) {
        return -1;
    }
    wire_writer_init(w, type, next_reqid(), 0);
    return 0;
}

/* Lock held, connected. Sends w (with its request id) and waits for the matching reply. */
static int send_and_wait(struct wire_writer *w, const int *fds, int nfds, struct lib_reply *rep)
{
    memset(rep, 0, sizeof(*rep));
    uint32_t reqid = 0;
    uint16_t type = 0;
    if (w->len >= WIRE_HDR_SIZE) {
        type = (uint16_t)((w->buf[6] << 8) | w->buf[7]);
        reqid = ((uint32_t)w->buf[12] << 24) | ((uint32_t)w->buf[13] << 16) |
                ((uint32_t)w->buf[14] << 8) | w->buf[15];
    }
    if (wire_finish(w) < 0) {
        wire_writer_free(w);
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "request too large or out of memory");
        return CLIENT_ERR_LOCAL;
    }
    if (C.sock < 0) {
        wire_writer_free(w);
        if (!lm_client_state_error())
            lm_set_error(MCOM_SOCKET_ERROR, "not connected to mapid");
        return CLIENT_ERR_LOCAL;
    }
    int rc = wire_send(C.sock, w, fds, nfds);
    int err = errno;
    wire_writer_free(w);
    if (rc < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            mark_dead("mapid does not read its socket (send timed out)");
        } else {
            char why[160];
            snprintf(why, sizeof(why), "sending %s to mapid: %s", wire_type_name(type),
                     strerror(err));
            mark_dead(why);
        }
        if (nfds > 0)
            lm_set_error(MAPI_ERROR_SEND_FD, "%s", C.reason);
        else if (!lm_client_state_error())
            lm_set_error(MCOM_SOCKET_ERROR, "%s", C.reason);
        return CLIENT_ERR_LOCAL;
    }
    uint64_t deadline = now_ms() + LIB_REQUEST_TIMEOUT_MS;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            rc = -1;
        } else {
            rc = wire_recv(C.sock, &rep->hdr, &rep->payload, rep->fds, WIRE_MAX_FDS, &rep->nfds,
                           (int)(deadline - now));
        }
        if (rc == -2) {
            mark_dead("malformed message from mapid");
            lm_set_error(MCOM_UNKNOWN_ERROR, "%s", C.reason);
            return CLIENT_ERR_LOCAL;
        }
        if (rc < 0) {
            char why[160];
            if (errno == ETIMEDOUT || errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(why, sizeof(why), "no reply from mapid to %s within %d s",
                         wire_type_name(type), LIB_REQUEST_TIMEOUT_MS / 1000);
            else if (errno == ECONNRESET)
                snprintf(why, sizeof(why), "mapid closed the connection");
            else
                snprintf(why, sizeof(why), "reading from mapid: %s", strerror(errno));
            mark_dead(why);
            lm_client_state_error();
            return CLIENT_ERR_LOCAL;
        }
        if (rep->hdr.reqid == 0) {
            handle_unsolicited(&rep->hdr, rep->payload);
            lm_client_reply_free(rep);
            continue;
        }
        if (rep->hdr.reqid != reqid) {
            lm_client_reply_free(rep); /* stale reply to a request that timed out */
            continue;
        }
        if (rep->hdr.type != type) {
            lm_client_reply_free(rep);
            mark_dead("mapid replied with the wrong message type");
            lm_set_error(MCOM_UNKNOWN_ERROR, "%s", C.reason);
            return CLIENT_ERR_LOCAL;
        }
        wire_reader_init(&rep->r, rep->payload, rep->hdr.length);
        if (rep->hdr.flags & WIRE_F_ERROR) {
            int32_t code = wire_get_i32(&rep->r);
            char msg[MAPI_ERRORSTR_LENGTH];
            lm_get_str_trunc(&rep->r, msg, sizeof(msg));
            if (code <= 0)
                code = MCOM_ERROR_ACK;
            if (msg[0])
                lm_set_error(code, "%s", msg);
            else
                lm_set_error(code, NULL);
            lm_client_reply_free(rep);
            return CLIENT_ERR_DAEMON;
        }
        return 0;
    }
}

int lm_client_call(struct wire_writer *w, const int *fds, int nfds, struct lib_reply *rep)
{
    return send_and_wait(w, fds, nfds, rep);
}

void lm_client_reply_free(struct lib_reply *rep)
{
    free(rep->payload);
    rep->payload = NULL;
    close_fds(rep->fds, rep->nfds);
    rep->nfds = 0;
}

/* Lock held. Handles whatever mapid sent us unasked (SHUTDOWN, DEVICE_FINISHED, EOF)
 * without blocking. */
static void drain_pending(void)
{
    for (int i = 0; i < 16 && C.sock >= 0; i++) {
        struct pollfd p = {.fd = C.sock, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
            break;
        struct wire_hdr h;
        uint8_t *payload;
        int fds[WIRE_MAX_FDS], nfds = 0;
        int rc = wire_recv(C.sock, &h, &payload, fds, WIRE_MAX_FDS, &nfds, 1000);
        if (rc == -2) {
            mark_dead("malformed message from mapid");
            break;
        }
        if (rc < 0) {
            mark_dead(errno == ECONNRESET ? "mapid closed the connection"
                                          : "lost the connection to mapid");
            break;
        }
        if (h.reqid == 0)
            handle_unsolicited(&h, payload);
        free(payload);
        close_fds(fds, nfds);
    }
}

void lm_client_poll_events(void)
{
    if (pthread_mutex_trylock(&C.lock) != 0)
        return;
    drain_pending();
    pthread_mutex_unlock(&C.lock);
}

int lm_client_forget_dead(char *why, size_t len)
{
    pthread_mutex_lock(&C.lock);
    drain_pending();
    int rc = 0;
    if (lm_client_gone() && !C.forgotten) {
        snprintf(why, len, "%s", C.reason);
        lm_flows_forget_local();
        C.forgotten = 1;
        rc = 1;
    }
    pthread_mutex_unlock(&C.lock);
    return rc;
}

void lm_client_add_offline_device(const char *name)
{
    struct name_entry *e = malloc(sizeof(*e));
    if (!e)
        return;
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return;
    }
    e->next = C.offline;
    C.offline = e;
}

void lm_client_remove_offline_device(const char *name)
{
    for (struct name_entry **p = &C.offline; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            struct name_entry *e = *p;
            *p = e->next;
            free(e->name);
            free(e);
            return;
        }
    }
}

int lm_client_is_offline_device(const char *name)
{
    for (struct name_entry *e = C.offline; e; e = e->next)
        if (strcmp(e->name, name) == 0)
            return 1;
    return 0;
}

const struct lib_fninfo *lm_client_get_function(const char *name)
{
    if (strlen(name) >= sizeof(C.fns->info.name)) {
        lm_set_error(MAPI_FUNCTION_NOT_FOUND, "function name longer than %d bytes",
                     MAPI_STR_LENGTH - 1);
        return NULL;
    }
    for (struct fn_cache_entry *e = C.fns; e; e = e->next)
        if (strcmp(e->info.name, name) == 0)
            return &e->info;
    struct wire_writer w;
    if (lm_client_begin(&w, WIRE_GET_FUNCTION) < 0)
        return NULL;
    wire_put_str(&w, name);
    struct lib_reply rep;
    int rc = lm_client_call(&w, NULL, 0, &rep);
    if (rc < 0) {
        if (rc == CLIENT_ERR_DAEMON && lm_last_error() == MDLIB_FUNCTION_NOT_FOUND)
            lm_set_error(MAPI_FUNCTION_NOT_FOUND, "%s", name);
        return NULL;
    }
    struct fn_cache_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        lm_client_reply_free(&rep);
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, NULL);
        return NULL;
    }
    char replied[MAPI_STR_LENGTH];
    lm_get_str_trunc(&rep.r, replied, sizeof(replied));
    wire_get_str(&rep.r, e->info.argdescr, sizeof(e->info.argdescr));
    lm_get_str_trunc(&rep.r, e->info.libname, sizeof(e->info.libname));
    e->info.flags = wire_get_u32(&rep.r);
    int ok = wire_reader_ok(&rep.r);
    lm_client_reply_free(&rep);
    if (!ok) {
        free(e);
        lm_set_error(MCOM_UNKNOWN_ERROR, "malformed GET_FUNCTION reply for %s", name);
        return NULL;
    }
    /* Cache under the name the application used (it may carry "lib:" or "!oid" parts). */
    memcpy(e->info.name, name, strlen(name) + 1);
    e->next = C.fns;
    C.fns = e;
    return &e->info;
}
