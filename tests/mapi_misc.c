/*
 * tests/mapi_misc.c - test client of test_stdflib_misc.sh: runs HASHSAMP with keep = 1,
 * THRESHOLD on a PKT_COUNTER, and SYNC between flows of one trace device, and prints what
 * they deliver.
 *
 * Usage: mapi_misc samples TRACE RANGE
 *   HASHSAMP(RANGE, 1) then PKT_COUNTER on a flow of TRACE. Prints one line per queued
 *   struct sample, "S SRC DST SPORT DPORT SEQ FLAGS PROTO NS" (addresses dotted from the
 *   s_addr-style value, NS the 32.32 timestamp in ns since the epoch, rounded), then
 *   "count N" (packets after HASHSAMP).
 *
 * Usage: mapi_misc hashcount TRACE RANGE
 *   HASHSAMP(RANGE, 0) then PKT_COUNTER: prints "count N" (HASHSAMP without a queue has no
 *   result that mapi_fnresult could print), or "ERR n".
 *
 * Usage: mapi_misc threshold TRACE TYPE THRESHOLD BOUNDARY TIMEOUT DIVIDER COUNT
 *   PKT_COUNTER, then THRESHOLD(TYPE, this flow, the counter, 0, THRESHOLD, BOUNDARY, TIMEOUT,
 *   DIVIDER, COUNT). Prints "E TS VALUE" per event, then "count N". With TYPE "nores" it
 *   references a BPF_FILTER instead (a function without a result) and prints "ERR n".
 *
 * Usage: mapi_misc sync TRACE MODE [PAUSE]
 *   One trace device, three flows created in this order: A (PKT_COUNTER), B (SYNC "A", then
 *   PKT_COUNTER), C (PKT_COUNTER, no SYNC). MODE says when A connects:
 *     before  A, B and C connect, then the trace starts
 *     never   B and C connect and the trace runs to its end; A never connects
 *     mid     flow G (created first: TO_BUFFER WAIT) stalls the trace once its ring is
 *             full (the trace must be larger than the ring); B, C and G connect, the trace
 *             starts, G reads PAUSE packets and waits until C stops changing for 200 ms
 *             (the capture thread waits for room in G's ring), A connects, G reads the
 *             rest
 *   Prints "A n B n C n" (the counters at the end; A's is 0 if it never connected).
 *
 * Any MAPI error of apply or connect prints "ERR n"; exit status 0, 1 on other errors.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>
#include <mapi/hashsamp.h>
#include <mapi/threshold.h>

#include "client_util.h"

/* Prints "ERR n" for the last MAPI error (message on stderr), then closes the flow fd (if > 0)
 * and deletes the device dev (if not NULL). Returns 0. */
static int print_error(const char *what, int fd, char *dev)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    printf("ERR %d\n", err);
    fprintf(stderr, "mapi_misc: %s: MAPI error %d: %s\n", what, err, msg);
    if (fd > 0)
        mapi_close_flow(fd);
    if (dev != NULL)
        mapi_delete_offline_device(dev);
    return 0;
}

/* The counter's value (0 if the flow is not connected). */
static unsigned long long counter(int fd, int fid)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    if (r == NULL || r->size < (int)sizeof(unsigned long long))
        return 0;
    return *(unsigned long long *)r->res;
}

/* Reads queue records of fid until the end of the trace; calls print for each. Returns 0, or
 * 1 if the reading stopped on another error than 6158. */
static int drain(int fd, int fid, void (*print)(const void *rec, int size))
{
    for (;;) {
        mapi_results_t *r = mapi_read_results(fd, fid);
        if (r == NULL) {
            int err = last_error();
            if (err == 6158)
                return 0;
            fprintf(stderr, "mapi_misc: mapi_read_results: error %d\n", err);
            return 1;
        }
        print(r->res, r->size);
    }
}

static void print_sample(const void *rec, int size)
{
    struct sample s;
    char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
    struct in_addr a;
    if (size != (int)sizeof s) {
        printf("BADSIZE %d\n", size);
        return;
    }
    memcpy(&s, rec, sizeof s);
    a.s_addr = s.source_ip;
    inet_ntop(AF_INET, &a, src, sizeof src);
    a.s_addr = s.dest_ip;
    inet_ntop(AF_INET, &a, dst, sizeof dst);
    unsigned long long ns = (s.timestamp >> 32) * 1000000000ull +
                            (((s.timestamp & 0xffffffffull) * 1000000000ull + (1ull << 31)) >> 32);
    printf("S %s %s %u %u %u %u %u %llu\n", src, dst, s.sourceport, s.destport, s.sequence,
           s.tcp_flags, s.protocol, ns);
}

static void print_event(const void *rec, int size)
{
    struct threshold_event ev;
    if (size != (int)sizeof ev) {
        printf("BADSIZE %d\n", size);
        return;
    }
    memcpy(&ev, rec, sizeof ev);
    printf("E %llu %llu\n", ev.timestamp, ev.value);
}

/* Connects, starts the trace, drains fid's queue, prints the counter. Returns the exit status. */
static int run_queue(int fd, char *dev, int fid, int cnt, void (*print)(const void *, int))
{
    if (mapi_connect(fd) < 0)
        return print_error("mapi_connect", fd, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    if (drain(fd, fid, print) != 0)
        return 1;
    if (wait_finished(fd, 30) != 0)
        return 1;
    printf("count %llu\n", counter(fd, cnt));
    mapi_close_flow(fd);
    mapi_delete_offline_device(dev);
    return 0;
}

static int samples(const char *trace, int range)
{
    char *dev;
    int fd = offline_device_flow(trace, &dev);
    int fid = mapi_apply_function(fd, "HASHSAMP", range, 1);
    if (fid < 0)
        return print_error("HASHSAMP", fd, dev);
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0)
        fatal("PKT_COUNTER");
    return run_queue(fd, dev, fid, cnt, print_sample);
}

static int hashcount(const char *trace, int range)
{
    char *dev;
    int fd = offline_device_flow(trace, &dev);
    if (mapi_apply_function(fd, "HASHSAMP", range, 0) < 0)
        return print_error("HASHSAMP", fd, dev);
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0)
        fatal("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        return print_error("mapi_connect", fd, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    if (wait_finished(fd, 30) != 0)
        return 1;
    printf("count %llu\n", counter(fd, cnt));
    mapi_close_flow(fd);
    mapi_delete_offline_device(dev);
    return 0;
}

static int threshold(const char *trace, char **a)
{
    char *dev;
    int fd = offline_device_flow(trace, &dev);
    int nores = strcmp(a[0], "nores") == 0;
    int cnt = nores ? mapi_apply_function(fd, "BPF_FILTER", "ip")
                    : mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0)
        fatal("PKT_COUNTER");
    int fid = mapi_apply_function(fd, "THRESHOLD", nores ? TYPE_UNSIGNED_LONG_LONG : atoi(a[0]), fd,
                                  cnt, 0, strtoull(a[1], NULL, 0), atoi(a[2]), atoi(a[3]),
                                  atoi(a[4]), atoi(a[5]));
    if (fid < 0)
        return print_error("THRESHOLD", fd, dev);
    return run_queue(fd, dev, fid, cnt, print_event);
}

static int sync_flows(const char *trace, const char *mode, int pause)
{
    char *dev = mapi_create_offline_device(trace, MFF_PCAP);
    int mid = strcmp(mode, "mid") == 0;
    int g = -1, gbuf = -1;
    char list[32];
    if (dev == NULL)
        fatal("mapi_create_offline_device");
    if (mid) {
        g = mapi_create_flow(dev);
        if (g < 0 || (gbuf = mapi_apply_function(g, "TO_BUFFER", WAIT)) < 0)
            fatal("gate flow");
    }
    int a = mapi_create_flow(dev), b = mapi_create_flow(dev), c = mapi_create_flow(dev);
    if (a < 0 || b < 0 || c < 0)
        fatal("mapi_create_flow");
    int ca = mapi_apply_function(a, "PKT_COUNTER");
    snprintf(list, sizeof list, "%d", a);
    if (mapi_apply_function(b, "SYNC", list) < 0)
        return print_error("SYNC", 0, dev);
    int cb = mapi_apply_function(b, "PKT_COUNTER");
    int cc = mapi_apply_function(c, "PKT_COUNTER");
    if (ca < 0 || cb < 0 || cc < 0)
        fatal("PKT_COUNTER");
    if (strcmp(mode, "before") == 0 && mapi_connect(a) < 0)
        return print_error("mapi_connect A", 0, dev);
    if (mapi_connect(b) < 0 || mapi_connect(c) < 0)
        return print_error("mapi_connect", 0, dev);
    if (mid && mapi_connect(g) < 0)
        return print_error("mapi_connect G", 0, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    if (mid) {
        int got = 0;
        while (got < pause && mapi_get_next_pkt(g, gbuf) != NULL)
            got++;
        /* The ring is full again soon: wait until C stops changing for 200 ms. */
        unsigned long long last = counter(c, cc);
        double stable = now();
        while (now() - stable < 0.2) {
            usleep(10000);
            unsigned long long v = counter(c, cc);
            if (v != last) {
                last = v;
                stable = now();
            }
        }
        if (mapi_connect(a) < 0)
            return print_error("mapi_connect A", 0, dev);
        while (mapi_get_next_pkt(g, gbuf) != NULL)
            ;
    }
    if (wait_finished(c, 30) != 0)
        return 1;
    printf("A %llu B %llu C %llu\n", counter(a, ca), counter(b, cb), counter(c, cc));
    mapi_close_flow(a);
    mapi_close_flow(b);
    mapi_close_flow(c);
    if (g >= 0)
        mapi_close_flow(g);
    mapi_delete_offline_device(dev);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "samples") == 0)
        return samples(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "hashcount") == 0)
        return hashcount(argv[2], atoi(argv[3]));
    if (argc >= 9 && strcmp(argv[1], "threshold") == 0)
        return threshold(argv[2], argv + 3);
    if (argc >= 4 && strcmp(argv[1], "sync") == 0)
        return sync_flows(argv[2], argv[3], argc >= 5 ? atoi(argv[4]) : 0);
    fprintf(stderr,
            "usage: mapi_misc samples|hashcount TRACE RANGE | threshold TRACE TYPE THRESHOLD "
            "BOUNDARY TIMEOUT DIVIDER COUNT | sync TRACE before|never|mid [PAUSE]\n");
    return 1;
}
