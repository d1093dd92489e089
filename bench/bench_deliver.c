/*
 * bench/bench_deliver.c - benchmark client of W5 (packet delivery): every packet of a trace
 * file handed to the application through TO_BUFFER and mapi_get_next_pkt.
 *
 * Usage: bench_deliver [-p PKTS] [-C CAPTURED] TRACE
 *   -p PKTS       expected number of packets ("-": not checked)
 *   -C CAPTURED   expected sum of the packets' caplen ("-": not checked)
 *
 * Creates an offline flow (mapi_create_offline_flow, MFF_PCAP) with TO_BUFFER(WAIT) and
 * connects it, which starts the reading; then calls mapi_get_next_pkt until it returns NULL
 * at the end of the trace (mapid waits for room in the ring rather than dropping packets of a
 * trace file), counting the packets and summing their caplen. Prints "packets N" and
 * "captured C"; exit status 0 if both are the expected ones, 1 otherwise or on an error
 * (a NULL from mapi_get_next_pkt with an error set). The packet bytes are not read: the
 * figure is the cost of delivery. MAPI_CONF names mapid's configuration.
 */
#include "bench.h"

int main(int argc, char **argv)
{
    long long want_pkts = -1, want_cap = -1;
    int opt;

    bench_prog = "bench_deliver";
    while ((opt = getopt(argc, argv, "p:C:")) != -1) {
        switch (opt) {
        case 'p':
            want_pkts = bench_parse_count(optarg);
            break;
        case 'C':
            want_cap = bench_parse_count(optarg);
            break;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc)
        goto usage;

    int fd = mapi_create_offline_flow(argv[optind], MFF_PCAP);
    if (fd < 0)
        bench_die_mapi("mapi_create_offline_flow");
    int fid = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    if (fid < 0)
        bench_die_mapi("TO_BUFFER");
    if (mapi_connect(fd) < 0)
        bench_die_mapi("mapi_connect");

    unsigned long long pkts = 0, captured = 0;
    struct mapipkt *p;
    while ((p = mapi_get_next_pkt(fd, fid)) != NULL) {
        pkts++;
        captured += p->caplen;
    }
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    if (err != 0)
        bench_die("mapi_get_next_pkt after %llu packets: MAPI error %d: %s", pkts, err, msg);
    printf("packets %llu\ncaptured %llu\n", pkts, captured);
    int bad = bench_check("packet count", pkts, want_pkts) |
              bench_check("captured bytes", captured, want_cap);
    mapi_close_flow(fd);
    return bad;

usage:
    fprintf(stderr, "usage: bench_deliver [-p PKTS] [-C CAPTURED] TRACE\n");
    return 2;
}
