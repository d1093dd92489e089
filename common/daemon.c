/*
 * common/daemon.c - start-up steps shared by mapid and mapicommd (see daemon.h).
 */
#include "common/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"

int daemon_setup(int daemonize, int keep_cwd)
{
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    /* Blocked in every thread (they inherit the mask); read through the signalfd. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (daemonize && daemon(keep_cwd, 0) < 0) {
        mapi_log(LOG_LVL_ERROR, "cannot daemonize: %s", strerror(errno));
        return -1;
    }
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        mapi_log(LOG_LVL_ERROR, "signalfd: %s", strerror(errno));
    return sfd;
}
