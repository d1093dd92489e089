/*
 * tests/mapi_dump.c - test client: reads every packet of a trace file through TO_BUFFER and
 * writes them to a pcap file, so that tests can compare it with the original (tcpdump -xx).
 *
 * Usage: mapi_dump [-s] TRACE FORMAT OUT.pcap LINKTYPE
 *   FORMAT    pcap or erf
 *   LINKTYPE  libpcap's name of the link type of the output (EN10MB, LINUX_SLL, ...)
 *   -s        stall: connect, print "ready", then never read (for a test that kills a client
 *             while mapid waits for it to make room in the ring)
 *
 * libpcap is used only to write the output (pcap_dump). A packet's 32.32 fixed-point
 * timestamp is converted back to microseconds with rounding. Prints the number of packets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include <mapi.h>

static void fatal(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "mapi_dump: %s: MAPI error %d: %s\n", what, err, msg);
    exit(1);
}

/* 32.32 fixed point to seconds and microseconds, rounded to the nearest microsecond. */
static void ts_to_timeval(unsigned long long ts, struct timeval *tv)
{
    unsigned long long sec = ts >> 32;
    unsigned long long frac = ts & 0xffffffffull;
    unsigned long long usec = (frac * 1000000ull + (1ull << 31)) >> 32;
    if (usec >= 1000000ull) {
        sec++;
        usec -= 1000000ull;
    }
    tv->tv_sec = (time_t)sec;
    tv->tv_usec = (suseconds_t)usec;
}

int main(int argc, char **argv)
{
    int stall = 0;
    if (argc > 1 && strcmp(argv[1], "-s") == 0) {
        stall = 1;
        argv++;
        argc--;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: mapi_dump [-s] TRACE FORMAT OUT.pcap LINKTYPE\n");
        return 1;
    }
    int format = strcmp(argv[2], "erf") == 0 ? MFF_DAG_ERF : MFF_PCAP;
    int dlt = pcap_datalink_name_to_val(argv[4]);
    if (dlt < 0) {
        fprintf(stderr, "mapi_dump: unknown link type %s\n", argv[4]);
        return 1;
    }
    pcap_t *dead = pcap_open_dead(dlt, 262144);
    if (dead == NULL)
        return 1;
    pcap_dumper_t *out = pcap_dump_open(dead, argv[3]);
    if (out == NULL) {
        fprintf(stderr, "mapi_dump: %s\n", pcap_geterr(dead));
        return 1;
    }

    int fd = mapi_create_offline_flow(argv[1], format);
    if (fd < 0)
        fatal("mapi_create_offline_flow");
    int fid = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    if (fid < 0)
        fatal("TO_BUFFER");
    if (mapi_connect(fd) < 0)
        fatal("mapi_connect");
    if (stall) {
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }

    unsigned long long n = 0;
    struct mapipkt *p;
    while ((p = mapi_get_next_pkt(fd, fid)) != NULL) {
        struct pcap_pkthdr h;
        ts_to_timeval(p->ts, &h.ts);
        h.caplen = p->caplen;
        h.len = p->wlen;
        pcap_dump((u_char *)out, &h, &p->pkt);
        n++;
    }
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    if (err != 0) {
        fprintf(stderr, "mapi_dump: mapi_get_next_pkt ended with MAPI error %d: %s\n", err, msg);
        return 1;
    }
    mapi_flow_info_t info;
    if (mapi_get_flow_info(fd, &info) < 0)
        fatal("mapi_get_flow_info");
    if (info.status != FLOW_FINISHED) {
        fprintf(stderr, "mapi_dump: no more packets but the flow is not FINISHED (status %d)\n",
                (int)info.status);
        return 1;
    }
    pcap_dump_close(out);
    pcap_close(dead);
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    printf("%llu\n", n);
    return 0;
}
