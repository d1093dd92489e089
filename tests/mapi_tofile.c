/*
 * tests/mapi_tofile.c - test client of TO_FILE: writes (part of) a trace file to a pcap file
 * through mapid.
 *
 * Usage: mapi_tofile TRACE OUT FORMAT COUNT [FILTER]
 *   TRACE    a pcap/pcapng trace (read as MFF_PCAP)
 *   OUT      the file TO_FILE creates
 *   FORMAT   TO_FILE's format argument, a number (0 = MFF_PCAP, 1 = MFF_RAW, ...)
 *   COUNT    TO_FILE's count (0 = all)
 *   FILTER   optional BPF filter applied before TO_FILE
 *
 * Creates an offline flow, [BPF_FILTER FILTER] + TO_FILE FORMAT OUT COUNT, connects, waits
 * (up to 60 s) until the flow is FLOW_FINISHED, reads TO_FILE's int result, closes the flow
 * and prints the result. If mapi_apply_function(TO_FILE) fails it prints "ERR <number>" and
 * exits 0. Exit status 1 on any other error.
 * With MAPI_TOFILE_SNAPSHOT=PATH in the environment, OUT is copied to PATH once the flow is
 * FLOW_FINISHED and before it is closed (the file must already be complete then).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

#include "client_util.h"

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: mapi_tofile TRACE OUT FORMAT COUNT [FILTER]\n");
        return 1;
    }
    const char *trace = argv[1], *out = argv[2];
    int format = atoi(argv[3]);
    unsigned long long count = strtoull(argv[4], NULL, 10);

    int fd = mapi_create_offline_flow(trace, MFF_PCAP);
    if (fd < 0)
        fatal("mapi_create_offline_flow");
    if (argc == 6 && mapi_apply_function(fd, "BPF_FILTER", argv[5]) < 0)
        fatal("BPF_FILTER");
    int fid = mapi_apply_function(fd, "TO_FILE", format, out, count);
    if (fid < 0) {
        printf("ERR %d\n", last_error());
        mapi_close_flow(fd);
        return 0;
    }
    if (mapi_connect(fd) < 0)
        fatal("mapi_connect");

    if (wait_finished(fd, 60) != 0)
        return 1;
    const char *snap = getenv("MAPI_TOFILE_SNAPSHOT");
    if (snap) {
        FILE *in = fopen(out, "rb"), *copy = fopen(snap, "wb");
        char buf[65536];
        size_t n;
        if (!in || !copy)
            fatal("snapshot");
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            fwrite(buf, 1, n, copy);
        fclose(in);
        fclose(copy);
    }

    mapi_results_t *r = mapi_read_results(fd, fid);
    if (r == NULL || r->size != (int)sizeof(int))
        fatal("mapi_read_results(TO_FILE)");
    int result = *(int *)r->res;
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    printf("%d\n", result);
    return 0;
}
