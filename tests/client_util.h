/*
 * tests/client_util.h - small helpers shared by the integration tests' client programs
 * (tests/mapi_*.c). Header only: each client is one .c file.
 */
#ifndef MAPI_TESTS_CLIENT_UTIL_H
#define MAPI_TESTS_CLIENT_UTIL_H

#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE, set by the build) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

/* The number of the last MAPI error of this thread (0 if none); clears it. */
static inline int last_error(void)
{
    int err = 0;
    mapi_read_error(&err, NULL);
    return err;
}

/* Prints "PROGRAM: WHAT: MAPI error N: TEXT" on stderr and exits with status 1. */
static inline _Noreturn void fatal(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: %s: MAPI error %d: %s\n", program_invocation_short_name, what, err, msg);
    exit(1);
}

/* Creates an offline (trace) device for trace and one flow on it; *dev gets the device name
 * (free it with mapi_delete_offline_device). Returns the flow; exits on a MAPI error. */
static inline int offline_device_flow(const char *trace, char **dev)
{
    *dev = mapi_create_offline_device(trace, MFF_PCAP);
    if (*dev == NULL)
        fatal("mapi_create_offline_device");
    int fd = mapi_create_flow(*dev);
    if (fd < 0)
        fatal("mapi_create_flow");
    return fd;
}

/* Seconds on the monotonic clock. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until flow fd is FLOW_FINISHED (end of its trace). Returns 0, or 1 after printing why
 * on stderr (mapid closed the flow, or timeout seconds passed); exits on a MAPI error. */
static inline int wait_finished(int fd, double timeout)
{
    double end = now() + timeout;
    for (;;) {
        mapi_flow_info_t info;
        if (mapi_get_flow_info(fd, &info) < 0)
            fatal("mapi_get_flow_info");
        if (info.status == FLOW_FINISHED)
            return 0;
        if (info.status == FLOW_CLOSED) {
            fprintf(stderr, "%s: the flow was closed by mapid\n", program_invocation_short_name);
            return 1;
        }
        if (now() > end) {
            fprintf(stderr, "%s: flow not finished after %.0f s\n", program_invocation_short_name,
                    timeout);
            return 1;
        }
        usleep(5000);
    }
}

#endif /* MAPI_TESTS_CLIENT_UTIL_H */
