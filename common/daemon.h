/*
 * common/daemon.h - start-up steps shared by the two daemons, mapid and mapicommd: signals,
 * descriptor limit, optional detaching from the terminal.
 */
#ifndef MAPI_COMMON_DAEMON_H
#define MAPI_COMMON_DAEMON_H

/*
 * Ignores SIGPIPE, raises RLIMIT_NOFILE to its hard limit (every client costs descriptors),
 * blocks SIGTERM, SIGINT and SIGHUP in this and all later threads, detaches with daemon(3)
 * if daemonize (keeping the working directory if keep_cwd), and returns a non-blocking
 * signalfd that reports those three signals. Returns -1 with the reason logged on failure.
 */
int daemon_setup(int daemonize, int keep_cwd);

#endif /* MAPI_COMMON_DAEMON_H */
