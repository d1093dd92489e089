/*
 * tests/mapi_count.c - test client: counts the packets and bytes of a trace file through
 * several flows at once, one per filter, all on one offline device.
 *
 * Usage: mapi_count [-s] [-w GOFILE] [-t SECONDS] TRACE FORMAT ARG...
 *   FORMAT   pcap or erf (MFF_PCAP / MFF_DAG_ERF)
 *   ARG      a BPF filter for BPF_FILTER ("" = no filter); with -s a STR_SEARCH pattern
 *            (offset 0, depth 0)
 *   -w       after all flows are connected print "ready" and wait until GOFILE exists
 *            before starting the device (lets a test run several clients at the same time)
 *   -t       give up after SECONDS (default 60) waiting for the end of the trace
 *
 * Each flow is [BPF_FILTER ARG | STR_SEARCH ARG 0 0] + PKT_COUNTER + BYTE_COUNTER. The
 * program creates the offline device, the flows, connects them, starts the device, waits
 * until every flow is FLOW_FINISHED and prints one line per ARG, in order:
 *   ARG <TAB> packets <TAB> bytes        or        ARG <TAB> ERR <TAB> MAPI error number
 * (ERR when applying or connecting that flow failed). Exit status 0, or 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mapi.h>

#include "client_util.h"

struct flow {
    const char *arg;
    int fd, pkt_fid, byte_fid;
    int err; /* MAPI error number of a failed apply/connect, else 0 */
};

static int parse_format(const char *s)
{
    if (strcmp(s, "pcap") == 0 || strcmp(s, "MFF_PCAP") == 0)
        return MFF_PCAP;
    if (strcmp(s, "erf") == 0 || strcmp(s, "MFF_DAG_ERF") == 0)
        return MFF_DAG_ERF;
    fprintf(stderr, "mapi_count: unknown format %s (pcap or erf)\n", s);
    exit(1);
}

int main(int argc, char **argv)
{
    int search = 0, opt;
    const char *gofile = NULL;
    double timeout = 60;

    while ((opt = getopt(argc, argv, "sw:t:")) != -1) {
        switch (opt) {
        case 's':
            search = 1;
            break;
        case 'w':
            gofile = optarg;
            break;
        case 't':
            timeout = atof(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: mapi_count [-s] [-w GOFILE] [-t SECONDS] TRACE FORMAT ARG...\n");
            return 1;
        }
    }
    if (argc - optind < 3) {
        fprintf(stderr, "usage: mapi_count [-s] [-w GOFILE] [-t SECONDS] TRACE FORMAT ARG...\n");
        return 1;
    }
    const char *trace = argv[optind];
    int format = parse_format(argv[optind + 1]);
    int n = argc - optind - 2;
    struct flow *flows = calloc((size_t)n, sizeof *flows);
    if (flows == NULL)
        return 1;

    char *dev = mapi_create_offline_device(trace, format);
    if (dev == NULL)
        fatal("mapi_create_offline_device");

    for (int i = 0; i < n; i++) {
        struct flow *f = &flows[i];
        f->arg = argv[optind + 2 + i];
        f->fd = mapi_create_flow(dev);
        if (f->fd < 0)
            fatal("mapi_create_flow");
        int rc = 0;
        if (search)
            rc = mapi_apply_function(f->fd, "STR_SEARCH", f->arg, 0, 0);
        else if (f->arg[0] != '\0')
            rc = mapi_apply_function(f->fd, "BPF_FILTER", f->arg);
        if (rc >= 0) {
            f->pkt_fid = mapi_apply_function(f->fd, "PKT_COUNTER");
            if (f->pkt_fid < 0)
                fatal("PKT_COUNTER");
            f->byte_fid = mapi_apply_function(f->fd, "BYTE_COUNTER");
            if (f->byte_fid < 0)
                fatal("BYTE_COUNTER");
            rc = mapi_connect(f->fd);
        }
        if (rc < 0) {
            f->err = last_error();
            if (f->err == 0)
                f->err = -1;
            mapi_close_flow(f->fd);
            f->fd = -1;
        }
    }

    if (gofile != NULL) {
        struct stat st;
        printf("ready\n");
        fflush(stdout);
        double end = now() + timeout;
        while (stat(gofile, &st) != 0) {
            if (now() > end) {
                fprintf(stderr, "mapi_count: %s did not appear\n", gofile);
                return 1;
            }
            usleep(10000);
        }
    }

    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");

    double end = now() + timeout;
    for (int i = 0; i < n; i++) {
        mapi_flow_info_t info;
        if (flows[i].fd < 0)
            continue;
        for (;;) {
            if (mapi_get_flow_info(flows[i].fd, &info) < 0)
                fatal("mapi_get_flow_info");
            if (info.status == FLOW_FINISHED)
                break;
            if (info.status == FLOW_CLOSED) {
                fprintf(stderr, "mapi_count: flow %d was closed by mapid\n", flows[i].fd);
                return 1;
            }
            if (now() > end) {
                fprintf(stderr, "mapi_count: flow %d not finished after %.0f s (status %d)\n",
                        flows[i].fd, timeout, (int)info.status);
                return 1;
            }
            usleep(5000);
        }
    }

    for (int i = 0; i < n; i++) {
        struct flow *f = &flows[i];
        if (f->fd < 0) {
            printf("%s\tERR\t%d\n", f->arg, f->err);
            continue;
        }
        mapi_results_t *r = mapi_read_results(f->fd, f->pkt_fid);
        if (r == NULL || r->size < (int)sizeof(unsigned long long))
            fatal("mapi_read_results(PKT_COUNTER)");
        unsigned long long pkts = *(unsigned long long *)r->res;
        r = mapi_read_results(f->fd, f->byte_fid);
        if (r == NULL || r->size < (int)sizeof(unsigned long long))
            fatal("mapi_read_results(BYTE_COUNTER)");
        unsigned long long bytes = *(unsigned long long *)r->res;
        printf("%s\t%llu\t%llu\n", f->arg, pkts, bytes);
        if (mapi_close_flow(f->fd) < 0)
            fatal("mapi_close_flow");
    }
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    free(flows);
    return 0;
}
