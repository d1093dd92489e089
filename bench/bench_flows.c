/*
 * bench/bench_flows.c - benchmark client of the memory measurement: holds many connected flows
 * on one offline device so that the harness can read mapid's peak resident set size.
 *
 * Usage: bench_flows [-s] FLOWS TRACE
 *   -s   also start the device and wait until every flow has finished the trace
 *
 * Creates an offline device on TRACE and FLOWS flows on it, flow i with
 * BPF_FILTER "tcp and dst port P" (P = 1024 + i, so every flow has its own compiled filter:
 * nothing is shared) and PKT_COUNTER, and connects them all. With -s it then starts the device
 * and waits for the end of the trace. Then it prints "ready FLOWS" and waits (pause) until it
 * is killed, holding the flows. MAPI_CONF names mapid's configuration.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    int start = 0, opt;

    bench_prog = "bench_flows";
    while ((opt = getopt(argc, argv, "s")) != -1) {
        if (opt == 's') {
            start = 1;
        } else {
            fprintf(stderr, "usage: bench_flows [-s] FLOWS TRACE\n");
            return 2;
        }
    }
    if (optind + 2 != argc || atoi(argv[optind]) < 1) {
        fprintf(stderr, "usage: bench_flows [-s] FLOWS TRACE\n");
        return 2;
    }
    int n = atoi(argv[optind]);
    char *dev = mapi_create_offline_device(argv[optind + 1], MFF_PCAP);
    if (dev == NULL)
        bench_die_mapi("mapi_create_offline_device");
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        bench_die("out of memory");
    for (int i = 0; i < n; i++) {
        char filter[64];
        snprintf(filter, sizeof filter, "tcp and dst port %d", 1024 + i);
        fds[i] = mapi_create_flow(dev);
        if (fds[i] < 0)
            bench_die_mapi("mapi_create_flow");
        if (mapi_apply_function(fds[i], "BPF_FILTER", filter) < 0)
            bench_die_mapi("BPF_FILTER");
        if (mapi_apply_function(fds[i], "PKT_COUNTER") < 0)
            bench_die_mapi("PKT_COUNTER");
        if (mapi_connect(fds[i]) < 0)
            bench_die_mapi("mapi_connect");
    }
    if (start) {
        if (mapi_start_offline_device(dev) < 0)
            bench_die_mapi("mapi_start_offline_device");
        for (int i = 0; i < n; i++)
            bench_wait_finished(fds[i], 0, 300);
    }
    printf("ready %d\n", n);
    fflush(stdout);
    for (;;)
        pause();
}
