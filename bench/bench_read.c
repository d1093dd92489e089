/*
 * bench/bench_read.c - benchmark client of W6 (result reads): the cost of one
 * mapi_read_results call on a local flow while mapid is updating that result.
 *
 * Usage: bench_read [-d MILLISECONDS] [-p PKTS] TRACE
 *   -d   length of the read loop (default 200 ms)
 *   -p   expected final packet count ("-": not checked)
 *
 * Creates an offline device with one flow [PKT_COUNTER], connects it, starts the device and
 * as soon as the counter moves calls mapi_read_results(fd, fid) in a tight loop, while mapid's
 * capture thread increments the counter for every packet (so the reads go through the
 * result's seqlock under contention). The loop ends after the given time, or earlier when the
 * counter reaches the expected final count (the end of the trace: the flow is no longer busy);
 * the clock is read every 1024 calls. Then waits for the end of the trace and checks the final
 * count. Prints one line:
 *   ns_per_call X calls N busy_reads B of M
 * where busy_reads B is how many of the M 1024-call batches saw the counter change since the
 * previous batch (a warning on stderr if fewer than half: the trace was too short for the
 * loop), and exits 1 if the final count is wrong.
 * MAPI_CONF names mapid's configuration.
 */
#include "bench.h"

#define BATCH 1024

int main(int argc, char **argv)
{
    long long want_pkts = -1;
    double ms = 200;
    int opt;

    bench_prog = "bench_read";
    while ((opt = getopt(argc, argv, "d:p:")) != -1) {
        switch (opt) {
        case 'd':
            ms = atof(optarg);
            break;
        case 'p':
            want_pkts = bench_parse_count(optarg);
            break;
        default:
            fprintf(stderr, "usage: bench_read [-d MILLISECONDS] [-p PKTS] TRACE\n");
            return 2;
        }
    }
    if (optind + 1 != argc || ms <= 0) {
        fprintf(stderr, "usage: bench_read [-d MILLISECONDS] [-p PKTS] TRACE\n");
        return 2;
    }
    char *dev = mapi_create_offline_device(argv[optind], MFF_PCAP);
    if (dev == NULL)
        bench_die_mapi("mapi_create_offline_device");
    int fd = mapi_create_flow(dev);
    if (fd < 0)
        bench_die_mapi("mapi_create_flow");
    int fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (fid < 0)
        bench_die_mapi("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        bench_die_mapi("mapi_connect");
    if (mapi_start_offline_device(dev) < 0)
        bench_die_mapi("mapi_start_offline_device");

    /* Wait for the first packet, so that the loop runs while the counter moves. */
    uint64_t give_up = bench_now_ns() + 10000000000ull;
    while (bench_read_u64(fd, fid) == 0 && bench_now_ns() < give_up)
        ;
    unsigned long long calls = 0, batches = 0, busy = 0, last = 0;
    uint64_t t0 = bench_now_ns(), t1;
    uint64_t end = t0 + (uint64_t)(ms * 1e6);
    do {
        mapi_results_t *r = NULL;
        for (int i = 0; i < BATCH; i++) {
            r = mapi_read_results(fd, fid);
            if (__builtin_expect(r == NULL, 0))
                bench_die_mapi("mapi_read_results");
        }
        unsigned long long v;
        memcpy(&v, r->res, sizeof v);
        busy += v != last;
        last = v;
        calls += BATCH;
        batches++;
        t1 = bench_now_ns();
    } while (t1 < end && (want_pkts < 0 || last != (unsigned long long)want_pkts));

    bench_wait_finished(fd, fid, 300);
    unsigned long long total = bench_read_u64(fd, fid);
    int bad = bench_check("packet count", total, want_pkts);
    printf("ns_per_call %.2f calls %llu busy_reads %llu of %llu\n", (double)(t1 - t0) / calls,
           calls, busy, batches);
    if (busy * 2 < batches)
        fprintf(stderr, "bench_read: warning: the flow was busy in only %llu of %llu batches\n",
                busy, batches);
    if (mapi_delete_offline_device(dev) < 0)
        bench_die_mapi("mapi_delete_offline_device");
    return bad;
}
