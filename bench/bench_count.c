/*
 * bench/bench_count.c - benchmark client of W1 (ingest), W2 (one filter), W3b (many flows
 * sharing one filter) and W4 (payload search): counts the packets of a trace file through one
 * or more identical flows on one offline device, and checks the counts.
 *
 * Usage: bench_count [-n FLOWS] [-f BPF] [-s PATTERN] [-b] [-p PKTS] [-B BYTES] [-t SECS] TRACE
 *   -n FLOWS    number of identical flows (default 1), all on the same offline device
 *   -f BPF      apply BPF_FILTER BPF first
 *   -s PATTERN  apply STR_SEARCH PATTERN 0 0 (anywhere in the frame) after the filter
 *   -b          apply BYTE_COUNTER too (sum of wire lengths)
 *   -p PKTS     expected PKT_COUNTER value of every flow ("-": not checked)
 *   -B BYTES    expected BYTE_COUNTER value of every flow ("-": not checked)
 *   -t SECS     give up after SECS seconds (default 300)
 *
 * Each flow is [BPF_FILTER] [STR_SEARCH] PKT_COUNTER [BYTE_COUNTER]. The program creates the
 * offline device (mapi_create_offline_device, MFF_PCAP), the flows, connects them, starts the
 * device, waits until the flows are FLOW_FINISHED (bench.h: bench_wait_finished, about 1 ms
 * of latency), reads the counters and prints "packets N" (and "bytes M") of the first flow.
 * Exit status 0 if every flow reported the expected counts, 1 otherwise or on any error.
 * MAPI_CONF names mapid's configuration.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    int nflows = 1, bytes = 0, opt;
    const char *filter = NULL, *pattern = NULL;
    long long want_pkts = -1, want_bytes = -1;
    double timeout = 300;

    bench_prog = "bench_count";
    while ((opt = getopt(argc, argv, "n:f:s:bp:B:t:")) != -1) {
        switch (opt) {
        case 'n':
            nflows = atoi(optarg);
            break;
        case 'f':
            filter = optarg;
            break;
        case 's':
            pattern = optarg;
            break;
        case 'b':
            bytes = 1;
            break;
        case 'p':
            want_pkts = bench_parse_count(optarg);
            break;
        case 'B':
            want_bytes = bench_parse_count(optarg);
            break;
        case 't':
            timeout = atof(optarg);
            break;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc || nflows < 1)
        goto usage;

    char *dev = mapi_create_offline_device(argv[optind], MFF_PCAP);
    if (dev == NULL)
        bench_die_mapi("mapi_create_offline_device");
    int *fds = calloc((size_t)nflows, sizeof *fds);
    int *pkt_fids = calloc((size_t)nflows, sizeof *pkt_fids);
    int *byte_fids = calloc((size_t)nflows, sizeof *byte_fids);
    if (!fds || !pkt_fids || !byte_fids)
        bench_die("out of memory");
    for (int i = 0; i < nflows; i++) {
        fds[i] = mapi_create_flow(dev);
        if (fds[i] < 0)
            bench_die_mapi("mapi_create_flow");
        if (filter && mapi_apply_function(fds[i], "BPF_FILTER", filter) < 0)
            bench_die_mapi("BPF_FILTER");
        if (pattern && mapi_apply_function(fds[i], "STR_SEARCH", pattern, 0, 0) < 0)
            bench_die_mapi("STR_SEARCH");
        pkt_fids[i] = mapi_apply_function(fds[i], "PKT_COUNTER");
        if (pkt_fids[i] < 0)
            bench_die_mapi("PKT_COUNTER");
        if (bytes) {
            byte_fids[i] = mapi_apply_function(fds[i], "BYTE_COUNTER");
            if (byte_fids[i] < 0)
                bench_die_mapi("BYTE_COUNTER");
        }
        if (mapi_connect(fds[i]) < 0)
            bench_die_mapi("mapi_connect");
    }
    if (mapi_start_offline_device(dev) < 0)
        bench_die_mapi("mapi_start_offline_device");
    /* All flows of the device finish together, at the end of the trace. */
    for (int i = 0; i < nflows; i++)
        bench_wait_finished(fds[i], pkt_fids[i], timeout);

    int bad = 0;
    for (int i = 0; i < nflows; i++) {
        unsigned long long p = bench_read_u64(fds[i], pkt_fids[i]);
        bad |= bench_check("packet count", p, want_pkts);
        if (i == 0)
            printf("packets %llu\n", p);
        if (bytes) {
            unsigned long long b = bench_read_u64(fds[i], byte_fids[i]);
            bad |= bench_check("byte count", b, want_bytes);
            if (i == 0)
                printf("bytes %llu\n", b);
        }
    }
    if (mapi_delete_offline_device(dev) < 0)
        bench_die_mapi("mapi_delete_offline_device");
    free(fds);
    free(pkt_fids);
    free(byte_fids);
    return bad;

usage:
    fprintf(stderr, "usage: bench_count [-n FLOWS] [-f BPF] [-s PATTERN] [-b] [-p PKTS] "
                    "[-B BYTES] [-t SECS] TRACE\n");
    return 2;
}
