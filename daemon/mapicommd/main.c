/*
 * daemon/mapicommd/main.c - mapicommd's entry point: command line, mapi.conf, logging, the
 * TLS context, the listening socket, the privilege drop, the accept loop and the shutdown.
 *
 * mapicommd runs unprivileged: as root it refuses to start unless -u USER is given, and then
 * switches to that user (and its groups) right after the TLS files are read and the port is
 * bound. libmapi inside reads the same configuration (MAPI_CONF is set to the -c file) to
 * find mapid's socket. SIGPIPE is ignored (writes use MSG_NOSIGNAL anyway, see common/net.c).
 * SIGTERM / SIGINT: stop accepting, shut every connection down (their flows are closed) and
 * exit 0. SIGHUP is ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/daemon.h"
#include "common/log.h"
#include "daemon/mapicommd/mapicommd.h"

struct mapi_conf g_conf;
struct net_ctx *g_netctx;
char g_hostname[256];
_Atomic int g_stopping; /* set by the main thread at shutdown, read by every session thread */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mapicommd [-c FILE] [-p PORT] [-u USER] [-d] [-s] [-h] [-v]\n"
            "  -c FILE  configuration file (default $MAPI_CONF or %s)\n"
            "  -p PORT  TCP port (default dimapi_port of the configuration, 2233)\n"
            "  -u USER  run as USER after binding the port (required when started as root)\n"
            "  -d       run as a daemon in the background (stays in the current directory,\n"
            "           where files of TO_FILE-style arguments are created)\n"
            "  -s       also log to syslog\n"
            "  -h       this help\n"
            "  -v       print the version\n",
            MAPI_DEFAULT_CONF);
}

/* Switches to user (its uid, primary gid and supplementary groups). 0 or -1. */
static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        mapi_log(LOG_LVL_ERROR, "unknown user %s", user);
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        mapi_log(LOG_LVL_ERROR, "cannot switch to user %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        mapi_log(LOG_LVL_ERROR, "could regain root after switching to %s", user);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *conffile = NULL, *user = NULL;
    int daemonize = 0, use_syslog = 0, port = 0, opt;
    while ((opt = getopt(argc, argv, "c:p:u:dshv")) != -1) {
        switch (opt) {
        case 'c':
            conffile = optarg;
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || v > 65535) {
                fprintf(stderr, "mapicommd: bad port %s\n", optarg);
                return 2;
            }
            port = (int)v;
            break;
        }
        case 'u':
            user = optarg;
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
        case 'v':
            printf("mapicommd %s (DiMAPI protocol %u)\n", MAPI_VERSION, DIMAPI_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (geteuid() == 0 && !user) {
        fprintf(stderr, "mapicommd: refusing to run as root; give -u USER to switch to an "
                        "unprivileged user after start-up\n");
        return 1;
    }
    if (!conffile)
        conffile = mapi_conf_default_path();
    char err[1024];
    if (mapi_conf_load(&g_conf, conffile, err, sizeof(err)) < 0) {
        fprintf(stderr, "mapicommd: %s\n", err);
        return 1;
    }
    /* libmapi (our connection to mapid) reads the same file. */
    setenv("MAPI_CONF", conffile, 1);
    if (port)
        g_conf.dimapi_port = port;
    if (g_conf.dimapi_max_clients < 1)
        g_conf.dimapi_max_clients = 1;
    if (g_conf.dimapi_idle_timeout < 100)
        g_conf.dimapi_idle_timeout = 100;
    if (mapi_log_open("mapicommd", g_conf.logfile, !daemonize, use_syslog, g_conf.syslog_level) < 0)
        fprintf(stderr, "mapicommd: cannot open log file %s: %s\n", g_conf.logfile,
                strerror(errno));
    if (gethostname(g_hostname, sizeof(g_hostname) - 1) < 0)
        snprintf(g_hostname, sizeof(g_hostname), "localhost");
    g_netctx = net_server_ctx(&g_conf, err, sizeof(err));
    if (!g_netctx) {
        mapi_log(LOG_LVL_ERROR, "%s", err);
        return 1;
    }
    int lfd = net_listen(g_conf.dimapi_listen, g_conf.dimapi_port, err, sizeof(err));
    if (lfd < 0) {
        mapi_log(LOG_LVL_ERROR, "%s", err);
        return 1;
    }
    if (user && drop_privileges(user) < 0)
        return 1;
    if (geteuid() == 0) {
        mapi_log(LOG_LVL_ERROR, "still root after start-up; refusing to run");
        return 1;
    }
    /* -d keeps the working directory: 'w' files of remote applications are created there. */
    int sfd = daemon_setup(daemonize, 1);
    if (sfd < 0)
        return 1;
    mapi_log(LOG_LVL_INFO, "mapicommd %s listening on %s port %d (%s%s), at most %d clients",
             MAPI_VERSION, g_conf.dimapi_listen[0] ? g_conf.dimapi_listen : "all addresses",
             g_conf.dimapi_port, g_conf.dimapi_plaintext ? "plain TCP" : "TLS",
             !g_conf.dimapi_plaintext && g_conf.dimapi_client_ca[0]
                 ? ", client certificates required"
                 : "",
             g_conf.dimapi_max_clients);
    int running = 1;
    while (running) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            mapi_log(LOG_LVL_ERROR, "poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo != SIGHUP)
                    running = 0;
        }
        if (!running)
            break;
        if (p[0].revents) {
            for (int i = 0; i < 64; i++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno == EMFILE || errno == ENFILE) {
                        mapi_log(LOG_LVL_WARN, "out of file descriptors: not accepting for 100 ms");
                        poll(NULL, 0, 100);
                    }
                    break;
                }
                session_start(fd);
            }
        }
    }
    mapi_log(LOG_LVL_INFO, "shutting down");
    g_stopping = 1;
    close(lfd);
    int left = sessions_stop(5000);
    if (left)
        mapi_log(LOG_LVL_WARN, "%d connections still busy at exit", left);
    net_ctx_free(g_netctx);
    close(sfd);
    mapi_log(LOG_LVL_INFO, "stopped");
    mapi_log_close();
    if (left)
        _exit(0); /* threads may still be inside libmapi: do not run exit handlers */
    mapi_conf_free(&g_conf);
    return 0;
}
