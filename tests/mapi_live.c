/*
 * tests/mapi_live.c - test client of the live-capture test (tests/test_live.sh): flows on a
 * network interface of mapi.conf while another host sends it UDP packets to port 9.
 *
 * Usage: mapi_live DEVICE N SECONDS
 * Binds UDP port 9 (so the kernel answers no ICMP port-unreachable), then connects:
 *   flow 1: PKT_COUNTER, BYTE_COUNTER                                   (every packet)
 *   flow 2: BPF_FILTER "udp and dst port 9", PKT_COUNTER, BYTE_COUNTER
 *   flow 3: BPF_FILTER "udp and dst port 9", TO_BUFFER(NOWAIT)
 *   flow 4: BPF_FILTER "udp and dst port 9", PKTINFO(PKT_SIZE), STATS over it ("0"),
 *           HASHSAMP(1024, 0), PKT_COUNTER
 *   flow 5: BPF_FILTER "udp and dst port 9", PKT_COUNTER, BUCKET over it ("200ms", reset)
 * prints "ready", reads flow 3's packets until N arrived or SECONDS passed, waits a little for
 * the counters, and prints "key value" lines: all_pkts, all_bytes, udp9_pkts, udp9_bytes,
 * buf_pkts, buf_bytes (wire lengths), buf_caplen_ok (1 if caplen == wlen for all), buf_seq_ok
 * (1 if the first 4 payload bytes, a big-endian sequence number, were 0, 1, 2, ... in order),
 * stats_count, stats_sum, stats_min, stats_max (of the wire lengths), hashsamp_pkts, and
 * bucket_sum (packets summed over buckets read until they add up to N or 3 s passed: on a
 * quiet link the buckets keep closing, by mapid's idle ticks) and bucket_steps_ok (1 if the
 * bucket timestamps advance by exactly 200 ms).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <mapi.h>
#include <mapi/bucket.h>
#include <mapi/pktinfo.h>
#include <mapi/stats.h>

#define UDP_PAYLOAD_OFF 42 /* Ethernet 14 + IPv4 20 + UDP 8 */

static void fatal(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "mapi_live: %s: MAPI error %d: %s\n", what, err, msg);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long counter(int fd, int fid)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    if (r == NULL)
        fatal("mapi_read_results");
    return *(unsigned long long *)r->res;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mapi_live DEVICE N SECONDS\n");
        return 1;
    }
    const char *dev = argv[1];
    unsigned long long n = strtoull(argv[2], NULL, 10);
    double secs = atof(argv[3]);

    int us = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9)};
    if (us < 0 || bind(us, (struct sockaddr *)&sin, sizeof sin) < 0) {
        perror("mapi_live: bind udp/9");
        return 1;
    }

    int fd1 = mapi_create_flow(dev);
    int fd2 = mapi_create_flow(dev);
    int fd3 = mapi_create_flow(dev);
    if (fd1 < 0 || fd2 < 0 || fd3 < 0)
        fatal("mapi_create_flow");
    int all_pkts = mapi_apply_function(fd1, "PKT_COUNTER");
    int all_bytes = mapi_apply_function(fd1, "BYTE_COUNTER");
    if (mapi_apply_function(fd2, "BPF_FILTER", "udp and dst port 9") < 0)
        fatal("BPF_FILTER");
    int udp_pkts = mapi_apply_function(fd2, "PKT_COUNTER");
    int udp_bytes = mapi_apply_function(fd2, "BYTE_COUNTER");
    if (mapi_apply_function(fd3, "BPF_FILTER", "udp and dst port 9") < 0)
        fatal("BPF_FILTER");
    int buf = mapi_apply_function(fd3, "TO_BUFFER", NOWAIT);
    if (all_pkts < 0 || all_bytes < 0 || udp_pkts < 0 || udp_bytes < 0 || buf < 0)
        fatal("mapi_apply_function");
    int fd4 = mapi_create_flow(dev);
    int fd5 = mapi_create_flow(dev);
    if (fd4 < 0 || fd5 < 0 || mapi_apply_function(fd4, "BPF_FILTER", "udp and dst port 9") < 0 ||
        mapi_apply_function(fd5, "BPF_FILTER", "udp and dst port 9") < 0)
        fatal("flows 4 and 5");
    int size = mapi_apply_function(fd4, "PKTINFO", PKT_SIZE);
    int stats = mapi_apply_function(fd4, "STATS", fd4, size, "0");
    int hs = mapi_apply_function(fd4, "HASHSAMP", 1024, 0);
    int hs_pkts = mapi_apply_function(fd4, "PKT_COUNTER");
    int b_pkts = mapi_apply_function(fd5, "PKT_COUNTER");
    int bucket = mapi_apply_function(fd5, "BUCKET", fd5, b_pkts, "200ms", 1);
    if (size < 0 || stats < 0 || hs < 0 || hs_pkts < 0 || b_pkts < 0 || bucket < 0)
        fatal("mapi_apply_function (flows 4 and 5)");
    if (mapi_connect(fd1) < 0 || mapi_connect(fd2) < 0 || mapi_connect(fd3) < 0 ||
        mapi_connect(fd4) < 0 || mapi_connect(fd5) < 0)
        fatal("mapi_connect");
    printf("ready\n");
    fflush(stdout);

    unsigned long long got = 0, bytes = 0;
    int caplen_ok = 1, seq_ok = 1;
    double end = now() + secs;
    while (got < n && now() < end) {
        struct mapipkt *p = mapi_get_next_pkt(fd3, buf);
        if (p == NULL) {
            int err = 0;
            mapi_read_error(&err, NULL);
            if (err != 0) {
                fprintf(stderr, "mapi_live: mapi_get_next_pkt: MAPI error %d\n", err);
                return 1;
            }
            usleep(1000);
            continue;
        }
        if (p->caplen != p->wlen)
            caplen_ok = 0;
        if (p->caplen >= UDP_PAYLOAD_OFF + 4) {
            const unsigned char *d = &p->pkt + UDP_PAYLOAD_OFF;
            unsigned long long seq =
                ((unsigned long long)d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
            if (seq != got)
                seq_ok = 0;
        } else {
            seq_ok = 0;
        }
        got++;
        bytes += p->wlen;
    }
    /* the counter flows see the same packets; give the capture thread a moment */
    double settle = now() + 2;
    while (now() < settle && counter(fd2, udp_pkts) < got)
        usleep(10000);
    usleep(200000);

    printf("all_pkts %llu\nall_bytes %llu\n", counter(fd1, all_pkts), counter(fd1, all_bytes));
    printf("udp9_pkts %llu\nudp9_bytes %llu\n", counter(fd2, udp_pkts), counter(fd2, udp_bytes));
    printf("buf_pkts %llu\nbuf_bytes %llu\nbuf_caplen_ok %d\nbuf_seq_ok %d\n", got, bytes,
           caplen_ok, seq_ok);
    mapi_results_t *r = mapi_read_results(fd4, stats);
    if (r == NULL || r->size != (int)sizeof(stats_t))
        fatal("mapi_read_results(STATS)");
    stats_t *st = r->res;
    printf("stats_count %llu\nstats_sum %.0Lf\nstats_min %.0f\nstats_max %.0f\n", st->count,
           st->sum, st->min, st->max);
    printf("hashsamp_pkts %llu\n", counter(fd4, hs_pkts));
    unsigned long long bsum = 0, prev_ts = 0;
    int steps_ok = 1;
    double bend = now() + 3;
    while (bsum < n && now() < bend) {
        r = mapi_read_results(fd5, bucket); /* blocks at most about 200 ms: idle ticks */
        if (r == NULL)
            fatal("mapi_read_results(BUCKET)");
        struct bucket_data *b = r->res;
        /* 200 ms in 32.32 ticks, rounded as stdflib_parse_duration does */
        unsigned long long step = (unsigned long long)(0.2 * 4294967296.0 + 0.5);
        if (prev_ts && b->timestamp - prev_ts != step)
            steps_ok = 0;
        prev_ts = b->timestamp;
        bsum += b->data;
    }
    printf("bucket_sum %llu\nbucket_steps_ok %d\n", bsum, steps_ok);
    mapi_close_flow(fd4);
    mapi_close_flow(fd5);
    mapi_close_flow(fd1);
    mapi_close_flow(fd2);
    mapi_close_flow(fd3);
    close(us);
    return 0;
}
