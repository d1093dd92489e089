/*
 * bench/live_client.c - client of benchmark workload W7 (bench/live.sh): N flows on a live
 * network interface of mapid while tcpreplay sends a trace into it as fast as it can.
 *
 * Usage: live_client DEVICE NFLOWS [STOP_FILE]
 *
 * Creates NFLOWS flows on DEVICE; flow i gets BPF_FILTER with the i-th (modulo 8) of eight
 * different expressions that all match every Ethernet frame, then PKT_COUNTER. The
 * expressions differ on purpose: mapid shares a BPF program (and its verdict per packet)
 * between flows with the same expression, so identical filters would cost one evaluation per
 * packet however many flows there are; eight different ones make mapid do eight flows' work.
 * Since every filter matches everything, every flow's count must equal the packets mapid
 * captured.
 *
 * Connects all flows, prints "ready", then waits until SIGTERM/SIGINT arrives or STOP_FILE
 * exists (checked every 20 ms). Then it prints "key value" lines:
 *   flow<I> <packets>            one per flow, I = 1..NFLOWS
 *   filter<I> <expression>
 *   ps_recv <n>                  mapi_stats of DEVICE: packets mapid's capture thread handled
 *   ps_drop <n>                  packets mapid dropped (full TO_BUFFER rings; none here)
 *   ps_ifdrop <n>                packets the kernel dropped (capture ring full)
 * The device stats are read before the flows are closed: mapid closes a live device's
 * capture when its last flow goes, and its kernel counters with it.
 *
 * Build: in the tree (bench/live.cmake), or by hand:
 *   gcc -std=c11 -O2 -I include -o live_client bench/live_client.c -L build -lmapi \
 *       -Wl,-rpath,"$PWD/build"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigaction, nanosleep with -std=c11 */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

/* Every expression is "a real filter or len >= 14": true for every Ethernet frame, but
 * libpcap's optimizer cannot fold it to "accept" (as it does "ip or not ip"), so each packet
 * runs the real filter's instructions first and the length test after a mismatch. */
static const char *const FILTERS[8] = {
    "tcp dst port 80 or len >= 14",
    "udp port 53 or len >= 14",
    "ip src net 198.18.0.0/15 or len >= 14",
    "tcp[tcpflags] & tcp-syn != 0 or len >= 14",
    "tcp port 443 or len >= 14",
    "icmp or icmp6 or len >= 14",
    "ip6 and udp or len >= 14",
    "vlan 100 or len >= 14",
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void fatal(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "live_client: %s: MAPI error %d: %s\n", what, err, msg);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: live_client DEVICE NFLOWS [STOP_FILE]\n");
        return 2;
    }
    const char *dev = argv[1];
    int nflows = atoi(argv[2]);
    const char *stop_file = argc > 3 ? argv[3] : NULL;
    if (nflows < 1 || nflows > 1024) {
        fprintf(stderr, "live_client: NFLOWS must be 1..1024\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int *fds = calloc((size_t)nflows, sizeof *fds);
    int *fids = calloc((size_t)nflows, sizeof *fids);
    if (!fds || !fids) {
        fprintf(stderr, "live_client: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nflows; i++) {
        fds[i] = mapi_create_flow(dev);
        if (fds[i] < 0)
            fatal("mapi_create_flow");
        if (mapi_apply_function(fds[i], "BPF_FILTER", FILTERS[i % 8]) < 0)
            fatal("BPF_FILTER");
        fids[i] = mapi_apply_function(fds[i], "PKT_COUNTER");
        if (fids[i] < 0)
            fatal("PKT_COUNTER");
    }
    for (int i = 0; i < nflows; i++)
        if (mapi_connect(fds[i]) < 0)
            fatal("mapi_connect");
    printf("ready\n");
    fflush(stdout);

    const struct timespec tick = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    while (!stop_requested && !(stop_file && access(stop_file, F_OK) == 0))
        nanosleep(&tick, NULL);

    /* counters first, then the device's stats, both while the flows are still open */
    unsigned long long *counts = calloc((size_t)nflows, sizeof *counts);
    if (!counts) {
        fprintf(stderr, "live_client: out of memory\n");
        return 1;
    }
    for (int i = 0; i < nflows; i++) {
        mapi_results_t *r = mapi_read_results(fds[i], fids[i]);
        if (r == NULL)
            fatal("mapi_read_results");
        counts[i] = *(unsigned long long *)r->res;
    }
    struct mapi_stat st;
    memset(&st, 0, sizeof st);
    if (mapi_stats(dev, &st) < 0)
        fatal("mapi_stats");

    for (int i = 0; i < nflows; i++)
        printf("flow%d %llu\nfilter%d %s\n", i + 1, counts[i], i + 1, FILTERS[i % 8]);
    printf("ps_recv %u\nps_drop %u\nps_ifdrop %u\n", st.ps_recv, st.ps_drop, st.ps_ifdrop);
    fflush(stdout);

    for (int i = 0; i < nflows; i++)
        mapi_close_flow(fds[i]);
    free(counts);
    free(fids);
    free(fds);
    return 0;
}
