/*
 * tests/compat/flow_holder.c - a client written against the original MAPI API only, used by
 * tests/test_mapiinfo.sh: it runs a trace file through one flow and then keeps that flow open
 * so that mapiinfo (another process) can list it with its functions and their statistics.
 *
 * Usage: flow_holder TRACE FILTER STOPFILE
 *   Creates an offline flow on TRACE (pcap) with BPF_FILTER FILTER, PKT_COUNTER and
 *   BYTE_COUNTER (in that order), connects it (reading starts), waits until the whole trace
 *   has been read (status FLOW_FINISHED), and prints
 *     device NAME       mapid's name of the flow's device (mapi_get_flow_info)
 *     pkts N            the PKT_COUNTER result
 *     ready
 *   then waits until STOPFILE exists (at most 60 s), closes the flow and exits 0.
 * Exit status 1 on any MAPI error (the error is printed on stderr).
 *
 * Compiled by the test script itself (not by CMake), like tests/compat/original_api.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mapi.h>

/* Prints the last MAPI error after what and exits with status 1. */
static void die(const char *what)
{
    int err_no = 0;
    char error[512];

    error[0] = 0;
    mapi_read_error(&err_no, error);
    fprintf(stderr, "flow_holder: %s: Errorcode :%d description: %s\n", what, err_no, error);
    exit(1);
}

int main(int argc, char *argv[])
{
    int fd, fid;
    char *args[1];
    mapi_flow_info_t info;
    mapi_results_t *res;
    struct stat st;
    int i;

    if (argc != 4) {
        fprintf(stderr, "usage: flow_holder TRACE FILTER STOPFILE\n");
        return 1;
    }
    if ((fd = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow");
    args[0] = argv[2];
    if (mapi_apply_function_array(fd, "BPF_FILTER", args, 1) < 0)
        die("BPF_FILTER");
    if ((fid = mapi_apply_function_array(fd, "PKT_COUNTER", NULL, 0)) < 0)
        die("PKT_COUNTER");
    if (mapi_apply_function_array(fd, "BYTE_COUNTER", NULL, 0) < 0)
        die("BYTE_COUNTER");
    if (mapi_connect(fd) < 0)
        die("mapi_connect");

    /* Until the end of the trace (60 s at most). */
    for (i = 0;; i++) {
        if (mapi_get_flow_info(fd, &info) < 0)
            die("mapi_get_flow_info");
        if (info.status == FLOW_FINISHED)
            break;
        if (i == 6000) {
            fprintf(stderr, "flow_holder: the trace did not finish within 60 s\n");
            return 1;
        }
        usleep(10000);
    }
    if ((res = mapi_read_results(fd, fid)) == NULL)
        die("mapi_read_results");
    printf("device %s\npkts %llu\nready\n", info.device, *((unsigned long long *)res->res));
    fflush(stdout);

    for (i = 0; i < 6000 && stat(argv[3], &st) != 0; i++)
        usleep(10000);
    if (mapi_close_flow(fd) < 0)
        die("mapi_close_flow");
    return 0;
}
