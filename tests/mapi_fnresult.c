/*
 * tests/mapi_fnresult.c - test client: applies one function (with its arguments given as
 * strings, converted by mapi_apply_function_array) and then PKT_COUNTER to a flow on a trace
 * file, runs the trace to its end and prints the function's result and the number of packets
 * that passed it.
 *
 * Usage: mapi_fnresult [-t SECONDS] TRACE FUNCTION [ARG...]     (TRACE is read as pcap)
 * Output, one line:
 *   count N result V1 V2 ...   the packets counted after FUNCTION, then the result: one
 *                              unsigned value per 8 bytes (unsigned long long), or one
 *                              unsigned int for a 4-byte result; nothing for no result
 *   ERR N                      applying or connecting failed with MAPI error N (the message
 *                              goes to stderr)
 * Exit status 0 in both cases, 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

#include "client_util.h"

/* Prints the last error, closes the flow and deletes the device. Returns 0. */
static int report_error(int fd, char *dev)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    printf("ERR %d\n", err);
    fprintf(stderr, "mapi_fnresult: MAPI error %d: %s\n", err, msg);
    mapi_close_flow(fd);
    mapi_delete_offline_device(dev);
    return 0;
}

int main(int argc, char **argv)
{
    double timeout = 60;
    int opt;

    while ((opt = getopt(argc, argv, "+t:")) != -1) {
        if (opt != 't') {
            fprintf(stderr, "usage: mapi_fnresult [-t SECONDS] TRACE FUNCTION [ARG...]\n");
            return 1;
        }
        timeout = atof(optarg);
    }
    if (argc - optind < 2) {
        fprintf(stderr, "usage: mapi_fnresult [-t SECONDS] TRACE FUNCTION [ARG...]\n");
        return 1;
    }
    const char *trace = argv[optind];
    const char *func = argv[optind + 1];
    char **args = argv + optind + 2;
    int nargs = argc - optind - 2;

    char *dev;
    int fd = offline_device_flow(trace, &dev);
    int fid = mapi_apply_function_array(fd, func, args, nargs);
    if (fid < 0)
        return report_error(fd, dev);
    int cnt_fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt_fid < 0)
        fatal("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        return report_error(fd, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");

    if (wait_finished(fd, timeout) != 0)
        return 1;

    mapi_results_t *r = mapi_read_results(fd, cnt_fid);
    if (r == NULL || r->size < (int)sizeof(unsigned long long))
        fatal("mapi_read_results(PKT_COUNTER)");
    printf("count %llu result", *(unsigned long long *)r->res);
    r = mapi_read_results(fd, fid);
    if (r == NULL)
        fatal("mapi_read_results");
    if (r->size == (int)sizeof(unsigned int)) {
        unsigned int v;
        memcpy(&v, r->res, sizeof v);
        printf(" %u", v);
    } else {
        for (int off = 0; off + 8 <= r->size; off += 8) {
            unsigned long long v;
            memcpy(&v, (const char *)r->res + off, sizeof v);
            printf(" %llu", v);
        }
    }
    printf("\n");
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    return 0;
}
