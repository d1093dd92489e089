/*
 * daemon/mapid/main.c - mapid's entry point and control loop: command line, mapi.conf,
 * logging, the control socket (mode 0660, group from socket_group, in a directory checked by
 * sockdir.c), one epoll loop that reads client messages incrementally (a slow or hostile client
 * cannot stall the others), the admission of connections (per-user and total limits, users.c),
 * request buffers that grow only as bytes arrive (within max_input_per_user/max_input_total), a
 * sweep every 250 ms that closes connections whose request did not arrive within
 * message_timeout, client clean-up when a connection closes, and a clean shutdown on
 * SIGTERM/SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "daemon/mapid/handlers.h"
#include "daemon/mapid/mapid.h"

struct mapid g_mapid;

#define TAG_LISTEN ((void *)1)
#define TAG_SIGNAL ((void *)2)
#define SWEEP_MS 250 /* granularity of message_timeout */

/* A descriptor kept in reserve: when mapid runs out of descriptors it is released to accept
 * and at once close the pending connection, so the listener does not stay readable forever
 * (a busy loop) and the client gets a clear EOF instead of a hang. */
static int spare_fd = -1;
static int listen_paused; /* out of descriptors: the listener waits for a client to leave */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mapid [-c FILE] [-d] [-s] [-t] [-h] [-v]\n"
            "  -c FILE  configuration file (default $MAPI_CONF or %s)\n"
            "  -d       run as a daemon in the background\n"
            "  -s       also log to syslog\n"
            "  -h       this help\n"
            "  -t       check the configuration: print every key's effective value and exit\n"
            "  -v       print the version\n",
            MAPI_DEFAULT_CONF);
}

static int make_listener(struct mapid *m)
{
    const char *path = m->conf.socket;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        mapi_log(LOG_LVL_ERROR, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    char why[1024];
    if (sockdir_prepare(path, m->conf.socket_group, why, sizeof(why)) < 0) {
        mapi_log(LOG_LVL_ERROR, "refusing the socket path %s: %s", path, why);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* A stale socket file from a crashed mapid is removed; a live one is not. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        mapi_log(LOG_LVL_ERROR, "another mapid is already listening on %s", path);
        close(fd);
        return -1;
    }
    unlink(path);
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0) {
        mapi_log(LOG_LVL_ERROR, "cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct group *g = getgrnam(m->conf.socket_group);
    if (g) {
        if (chown(path, (uid_t)-1, g->gr_gid) < 0)
            mapi_log(LOG_LVL_WARN, "cannot give %s to group %s: %s", path, m->conf.socket_group,
                     strerror(errno));
    } else {
        mapi_log(LOG_LVL_INFO, "group %s does not exist: %s is for its owner only",
                 m->conf.socket_group, path);
    }
    chmod(path, 0660);
    if (listen(fd, 128) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The events of the epoll batch being handled: a client freed while handling one event must
 * not be named by a later one. */
static struct epoll_event *batch_evs;
static int batch_n;

static void client_free(struct mapid *m, struct client *c)
{
    /* Close every flow of this client, then release the trace devices it created (other
     * applications' flows on them end with FLOW_FINISHED; see device_release). */
    for (struct flow *f = m->flows, *next; f; f = next) {
        next = f->next;
        if (f->owner == c)
            flow_close(m, f);
    }
    for (struct device *d = m->devices, *next; d; d = next) {
        next = d->next;
        if (d->offline && d->owner == c)
            device_release(m, d, "its creator disconnected");
    }
    epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
    close(c->sock);
    for (int i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    struct client **pp = &m->clients;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    char ignored[8];
    user_input_resize(m, c, 0, ignored, sizeof(ignored));
    if (c->refused) {
        m->nrefused--;
        c->user->nrefused--;
    } else {
        m->nconns--;
        c->user->nconns--;
    }
    user_drop_if_unused(m, c->user);
    for (int j = 0; j < batch_n; j++)
        if (batch_evs[j].data.ptr == c)
            batch_evs[j].data.ptr = NULL;
    free(c);
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (listen_paused) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_LISTEN};
        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->listen_fd, &ev) == 0)
            listen_paused = 0;
    }
}

/* Sends an error reply to the request whose header is hdr (its payload need not be there). */
static void send_error(struct client *c, const struct wire_hdr *hdr, int code, const char *msg)
{
    struct wire_writer w;
    wire_writer_init(&w, hdr->type, hdr->reqid, WIRE_F_ERROR);
    wire_put_i32(&w, code);
    wire_put_str(&w, msg);
    if (wire_finish(&w) == 0)
        wire_send(c->sock, &w, NULL, 0);
    wire_writer_free(&w);
}

/* Refused connections waiting for their first request (to answer it with the reason), in all
 * and per user; more are closed at once, without a reply. The per-user bound keeps one user's
 * refused flood from silencing the refusals of others. */
#define MAX_REFUSED_PENDING 64
#define MAX_REFUSED_PENDING_PER_USER 8
/* A refused connection that sends nothing is closed after this. */
#define REFUSED_GRACE_MS 2000

/* Warnings a flooding client could repeat at will are logged at most once per 10 s each, with
 * the number left out since the last one. */
struct ratelimit {
    uint64_t last;
    unsigned suppressed;
};
static struct ratelimit rl_refused, rl_input, rl_timeout;

static void warn_limited(struct ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn_limited(struct ratelimit *rl, const char *fmt, ...)
{
    uint64_t now = now_ms();
    if (rl->last && now - rl->last < 10000) {
        rl->suppressed++;
        return;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        mapi_log(LOG_LVL_WARN, "%s (and %u more like it since the last such message)", msg,
                 rl->suppressed);
    else
        mapi_log(LOG_LVL_WARN, "%s", msg);
    rl->last = now;
    rl->suppressed = 0;
}

static void accept_clients(struct mapid *m)
{
    for (;;) {
        int s = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s < 0 && (errno == EMFILE || errno == ENFILE)) {
            if (spare_fd >= 0) {
                close(spare_fd);
                s = accept(m->listen_fd, NULL, NULL);
                if (s >= 0) {
                    close(s);
                    mapi_log(LOG_LVL_WARN, "out of file descriptors: refused a client");
                }
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            if (spare_fd < 0 || s < 0) {
                /* Stop polling the listener (it would stay readable) until a client leaves. */
                epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, m->listen_fd, NULL);
                listen_paused = 1;
                return;
            }
            continue;
        }
        if (s < 0)
            return;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct client *c = calloc(1, sizeof(*c));
        struct user *u = NULL;
        if (!c || getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
            !(u = user_get(m, cred.uid))) {
            free(c);
            close(s);
            continue;
        }
        struct client *shed = NULL;
        char why[256];
        int refuse = user_admit(m, u, &shed, why, sizeof(why));
        if (refuse &&
            (m->nrefused >= MAX_REFUSED_PENDING || u->nrefused >= MAX_REFUSED_PENDING_PER_USER)) {
            warn_limited(&rl_refused, "refused a connection: %s", why);
            close(s);
            free(c);
            user_drop_if_unused(m, u);
            continue;
        }
        /* Replies are small; a client that never reads gets cut off after 2 s. */
        struct timeval tv = {2, 0};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        c->sock = s;
        c->uid = cred.uid;
        c->pid = cred.pid;
        c->user = u;
        c->since_ms = c->active_ms = now_ms();
        if (refuse) {
            c->refused = 1;
            snprintf(c->refuse_msg, sizeof(c->refuse_msg), "%s", why);
            m->nrefused++;
            u->nrefused++;
            warn_limited(&rl_refused, "refused a connection: %s", why);
        } else {
            m->nconns++;
            u->nconns++;
        }
        c->next = m->clients;
        m->clients = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, s, &ev);
        mapi_log(LOG_LVL_DEBUG, "client pid %d uid %d connected%s", (int)c->pid, (int)c->uid,
                 refuse ? " (refused)" : "");
        if (shed) {
            mapi_log(LOG_LVL_WARN,
                     "max_connections (%d) reached: closed an idle connection of uid %u (pid %d, "
                     "%d connections, the most) to admit uid %u (%d)",
                     m->conf.max_connections, (unsigned)shed->uid, (int)shed->pid,
                     shed->user->nconns, (unsigned)u->uid, u->nconns);
            client_free(m, shed);
        }
    }
}

/* Request buffers start at this size and shrink back to it once a larger request was
 * handled; they grow only as bytes arrive, never to a length a header merely announces. */
#define CLIENT_MIN_BUFFER 4096u

/* Reads what the client sent and handles every complete message. */
static void client_readable(struct mapid *m, struct client *c)
{
    char why[256];
    for (;;) {
        size_t want = WIRE_HDR_SIZE;
        struct wire_hdr hdr;
        if (c->inlen >= WIRE_HDR_SIZE) {
            if (wire_parse_header(c->in, &hdr) < 0) {
                mapi_log(LOG_LVL_WARN, "client pid %d sent a malformed message; disconnected",
                         (int)c->pid);
                c->dead = 1;
                return;
            }
            if (c->refused) {
                /* Over a limit at accept: the first request learns why, then EOF. */
                send_error(c, &hdr, MAPID_LIMIT_EXCEEDED, c->refuse_msg);
                c->dead = 1;
                return;
            }
            want = WIRE_HDR_SIZE + hdr.length;
            if (c->inlen >= want) {
                handle_message(m, c, &hdr, c->in + WIRE_HDR_SIZE);
                for (int i = 0; i < c->nfds; i++)
                    close(c->fds[i]); /* descriptors the handler did not take */
                c->nfds = 0;
                memmove(c->in, c->in + want, c->inlen - want);
                c->inlen -= want;
                c->active_ms = now_ms();
                c->partial_ms = c->inlen ? c->active_ms : 0;
                if (c->inlen <= CLIENT_MIN_BUFFER && c->incap > CLIENT_MIN_BUFFER)
                    user_input_resize(m, c, CLIENT_MIN_BUFFER, why, sizeof(why));
                if (c->dead)
                    return;
                continue;
            }
        }
        if (c->inlen == c->incap) {
            /* Full: double, up to the end of the current message. */
            size_t cap = c->incap ? c->incap * 2 : CLIENT_MIN_BUFFER;
            if (cap > want)
                cap = want > CLIENT_MIN_BUFFER ? want : CLIENT_MIN_BUFFER;
            if (cap <= c->incap)
                cap = c->incap + CLIENT_MIN_BUFFER;
            int rc = user_input_resize(m, c, cap, why, sizeof(why));
            if (rc) {
                warn_limited(&rl_input, "client pid %d uid %u: %s; disconnected", (int)c->pid,
                             (unsigned)c->uid, why);
                if (c->inlen >= WIRE_HDR_SIZE)
                    send_error(c, &hdr, rc, why);
                c->dead = 1;
                return;
            }
        }
        struct iovec iov = {.iov_base = c->in + c->inlen, .iov_len = c->incap - c->inlen};
        union {
            char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
            struct cmsghdr align;
        } ctl;
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};
        ssize_t r = recvmsg(c->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); r > 0 && cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < cnt; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (c->nfds < WIRE_MAX_FDS)
                    c->fds[c->nfds++] = fd;
                else
                    close(fd);
            }
        }
        if (r <= 0) {
            c->dead = 1;
            return;
        }
        if (c->inlen == 0)
            c->partial_ms = now_ms();
        c->inlen += (size_t)r;
    }
}

/* Closes the connections whose started request did not arrive within message_timeout, and
 * refused connections that sent nothing within REFUSED_GRACE_MS. */
static void sweep_clients(struct mapid *m)
{
    uint64_t now = now_ms();
    for (struct client *c = m->clients, *next; c; c = next) {
        next = c->next;
        if (c->refused && now - c->since_ms >= REFUSED_GRACE_MS) {
            client_free(m, c);
        } else if (c->partial_ms && now - c->partial_ms >= (uint64_t)m->conf.message_timeout) {
            warn_limited(&rl_timeout,
                         "client pid %d uid %u sent %zu bytes of a request and not the rest "
                         "within %d ms (message_timeout); disconnected",
                         (int)c->pid, (unsigned)c->uid, c->inlen, m->conf.message_timeout);
            if (c->inlen >= WIRE_HDR_SIZE) {
                struct wire_hdr hdr;
                if (wire_parse_header(c->in, &hdr) == 0)
                    send_error(c, &hdr, MAPID_LIMIT_EXCEEDED,
                               "the request did not arrive whole within message_timeout");
            }
            client_free(m, c);
        }
    }
}

static void shutdown_all(struct mapid *m)
{
    mapi_log(LOG_LVL_INFO, "shutting down");
    for (struct client *c = m->clients; c; c = c->next) {
        struct wire_writer w;
        wire_writer_init(&w, WIRE_SHUTDOWN, 0, 0);
        wire_put_str(&w, "mapid is shutting down");
        if (wire_finish(&w) == 0)
            wire_send(c->sock, &w, NULL, 0);
        wire_writer_free(&w);
    }
    /* Every capture thread is told to stop first, and all share one deadline: however many
     * are stuck, shutting down waits MAPID_STOP_TIMEOUT_MS at most. */
    for (struct device *d = m->devices; d; d = d->next)
        atomic_store(&d->stop, 1);
    device_stop_deadline(&m->stop_deadline);
    m->shutting_down = 1;
    while (m->clients)
        client_free(m, m->clients);
    device_destroy_all(m);
    unlink(m->conf.socket);
}

int main(int argc, char **argv)
{
    const char *conffile = NULL;
    int daemonize = 0, use_syslog = 0, check_only = 0, opt;
    while ((opt = getopt(argc, argv, "c:dshtv")) != -1) {
        switch (opt) {
        case 'c':
            conffile = optarg;
            break;
        case 'd':
            daemonize = 1;
            break;
        case 's':
            use_syslog = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 't':
            check_only = 1;
            break;
        case 'v':
            printf("mapid %s\n", MAPI_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!conffile)
        conffile = mapi_conf_default_path();
    struct mapid *m = &g_mapid;
    char err[1024];
    if (mapi_conf_load(&m->conf, conffile, err, sizeof(err)) < 0) {
        fprintf(stderr, "mapid: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("# %s: configuration OK; effective values:\n", conffile);
        int rc = mapi_conf_write(&m->conf, stdout);
        mapi_conf_free(&m->conf);
        return rc == 0 ? 0 : 1;
    }
    if (mapi_log_open("mapid", m->conf.logfile, !daemonize, use_syslog, m->conf.syslog_level) < 0)
        fprintf(stderr, "mapid: cannot open log file %s: %s\n", m->conf.logfile, strerror(errno));
    m->next_devid = 1;
    m->next_flowid = 1;
    if (flibs_load(m) < 0 || m->nlibs == 0) {
        mapi_log(LOG_LVL_ERROR, "no usable function library (libpath=%s libs=%s)", m->conf.libpath,
                 m->conf.libs);
        return 1;
    }
    if (device_create_conf_devices(m) < 0)
        return 1;
    /* Every client holds a socket and every connected flow a memfd: the descriptor limit is
     * raised to its maximum. */
    int sfd = daemon_setup(daemonize, 0);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* Connections may take at most half the descriptors: the rest are for flows (memfds,
     * rings, trace files), so a flood of connections cannot starve them. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
        long most = ((long)nofile.rlim_cur - 64) / 2;
        if (most < 8)
            most = 8;
        if (m->conf.max_connections > most) {
            mapi_log(LOG_LVL_INFO,
                     "max_connections lowered from %d to %ld (half of the descriptor limit %ld)",
                     m->conf.max_connections, most, (long)nofile.rlim_cur);
            m->conf.max_connections = (int)most;
        }
    }
    m->listen_fd = make_listener(m);
    m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || m->listen_fd < 0 || m->epoll_fd < 0) {
        mapi_log(LOG_LVL_ERROR, "cannot set up the control socket %s", m->conf.socket);
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_LISTEN};
    epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, m->listen_fd, &ev);
    ev.data.ptr = TAG_SIGNAL;
    epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, sfd, &ev);
    mapi_log(LOG_LVL_INFO, "mapid %s ready on %s (%d devices, %d function libraries)", MAPI_VERSION,
             m->conf.socket, m->conf.ndevices, m->nlibs);
    int running = 1;
    uint64_t next_sweep = 0;
    while (running) {
        struct epoll_event evs[64];
        /* Timeouts are checked every SWEEP_MS while there are clients. */
        int n = epoll_wait(m->epoll_fd, evs, 64, m->clients ? SWEEP_MS : -1);
        if (n < 0 && errno != EINTR)
            break;
        batch_evs = evs;
        batch_n = n > 0 ? n : 0;
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (!tag)
                continue;
            if (tag == TAG_LISTEN) {
                accept_clients(m);
            } else if (tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof(si)) == sizeof(si))
                    if (si.ssi_signo != SIGHUP)
                        running = 0;
            } else {
                struct client *c = tag;
                client_readable(m, c);
                if (c->dead || (evs[i].events & (EPOLLHUP | EPOLLERR))) {
                    mapi_log(LOG_LVL_DEBUG, "client pid %d gone", (int)c->pid);
                    client_free(m, c);
                }
            }
        }
        batch_n = 0;
        uint64_t now = now_ms();
        if (now >= next_sweep) {
            sweep_clients(m);
            next_sweep = now + SWEEP_MS;
        }
    }
    shutdown_all(m);
    if (m->parked) {
        /* A stuck capture thread may still run code of a function library: leave them
         * loaded, and leave without waiting for it. */
        mapi_log(LOG_LVL_ERROR, "stopped with capture threads still stuck (see above)");
        mapi_log_close();
        _exit(0);
    }
    flibs_unload(m);
    close(m->listen_fd);
    close(m->epoll_fd);
    close(sfd);
    mapi_conf_free(&m->conf);
    mapi_log(LOG_LVL_INFO, "stopped");
    mapi_log_close();
    return 0;
}
