/*
 * tests/mapi_hold.c - test client of test_users.sh: holds a connected flow for the permission
 * checks, or exercises the per-user limits of mapi.conf.
 *
 * Usage: mapi_hold hold TRACE STOPFILE
 *   Creates an offline device on TRACE (pcap) that it never starts, a flow on it with
 *   PKT_COUNTER, connects it, finds the flow's mapid id with mapi_get_next_flow_info (the
 *   flow on our device), prints "id N" and "ready", then waits until STOPFILE exists (or it is
 *   killed; it gives up after 60 s). Then it prints "still open" if mapid still has the
 *   flow (mapi_get_flow_info succeeds) or "gone ERR n", closes what is left and exits 0.
 *
 * Usage: mapi_hold limits TRACE
 *   Runs these steps and prints one line per step, "<step> OK" or "<step> ERR <MAPI error>":
 *     create1..create3   mapi_create_flow on one offline device of TRACE
 *     create4            a 4th mapi_create_flow
 *     offline4           a 4th flow with mapi_create_offline_flow
 *     reopen             mapi_create_flow after closing one of the three flows
 *     (all flows closed)
 *     apply1..apply3     PKT_COUNTER, BYTE_COUNTER, PKT_COUNTER on one new flow
 *     (flow closed)
 *     tobuffer_connect   mapi_connect of a new flow with TO_BUFFER (WAIT)
 *     counter_connect    mapi_connect of a new flow with only PKT_COUNTER
 *   Exit status 0 unless something outside these steps fails (1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mapi.h>

#include "client_util.h"

/* Prints "<step> OK" if rc >= 0, else "<step> ERR <error>". Returns rc. */
static int report(const char *step, int rc)
{
    if (rc >= 0)
        printf("%s OK\n", step);
    else
        printf("%s ERR %d\n", step, last_error());
    fflush(stdout);
    return rc;
}

static int hold(const char *trace, const char *stopfile)
{
    char *dev;
    int fd = offline_device_flow(trace, &dev);
    if (mapi_apply_function(fd, "PKT_COUNTER") < 0)
        fatal("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        fatal("mapi_connect");

    /* Our mapid flow id: the flow on our device (device names are unique). */
    mapi_flow_info_t info;
    int id = 0, found = 0;
    while (mapi_get_next_flow_info(id, &info) == 0) {
        id = info.fd;
        if (strcmp(info.device, dev) == 0) {
            found = id;
            break;
        }
    }
    if (found <= 0)
        fatal("mapi_get_next_flow_info: our flow is not listed");
    printf("id %d\nready\n", found);
    fflush(stdout);

    struct stat st;
    for (int i = 0; i < 6000 && stat(stopfile, &st) != 0; i++)
        usleep(10000);
    if (mapi_get_flow_info(fd, &info) == 0)
        printf("still open\n");
    else
        printf("gone ERR %d\n", last_error());
    mapi_close_flow(fd); /* fails if another user closed it */
    mapi_delete_offline_device(dev);
    return 0;
}

static int limits(const char *trace)
{
    char *dev = mapi_create_offline_device(trace, MFF_PCAP);
    if (dev == NULL)
        fatal("mapi_create_offline_device");

    /* max_flows_per_client */
    int fds[3];
    char step[32];
    for (int i = 0; i < 3; i++) {
        snprintf(step, sizeof(step), "create%d", i + 1);
        fds[i] = report(step, mapi_create_flow(dev));
    }
    int extra = report("create4", mapi_create_flow(dev));
    if (extra >= 0)
        mapi_close_flow(extra);
    extra = report("offline4", mapi_create_offline_flow(trace, MFF_PCAP));
    if (extra >= 0)
        mapi_close_flow(extra);
    if (fds[2] >= 0) {
        if (mapi_close_flow(fds[2]) < 0)
            fatal("mapi_close_flow");
        fds[2] = report("reopen", mapi_create_flow(dev));
    } else {
        printf("reopen ERR 0\n");
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0 && mapi_close_flow(fds[i]) < 0)
            fatal("mapi_close_flow");

    /* max_functions_per_flow */
    int fd = mapi_create_flow(dev);
    if (fd < 0)
        fatal("mapi_create_flow (functions)");
    report("apply1", mapi_apply_function(fd, "PKT_COUNTER"));
    report("apply2", mapi_apply_function(fd, "BYTE_COUNTER"));
    report("apply3", mapi_apply_function(fd, "PKT_COUNTER"));
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");

    /* max_shm_per_client */
    fd = mapi_create_flow(dev);
    if (fd < 0)
        fatal("mapi_create_flow (TO_BUFFER)");
    if (mapi_apply_function(fd, "TO_BUFFER", WAIT) < 0)
        fatal("TO_BUFFER");
    report("tobuffer_connect", mapi_connect(fd));
    mapi_close_flow(fd); /* mapid already closed it if the connect failed */
    fd = mapi_create_flow(dev);
    if (fd < 0)
        fatal("mapi_create_flow (PKT_COUNTER)");
    if (mapi_apply_function(fd, "PKT_COUNTER") < 0)
        fatal("PKT_COUNTER");
    report("counter_connect", mapi_connect(fd));
    mapi_close_flow(fd);
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "hold") == 0)
        return hold(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "limits") == 0)
        return limits(argv[2]);
    fprintf(stderr, "usage: mapi_hold hold TRACE STOPFILE | mapi_hold limits TRACE\n");
    return 1;
}
