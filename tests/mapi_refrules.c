/*
 * tests/mapi_refrules.c - test client of the rules for function references (daemon/mapid/
 * refs.c), the 'R' flow lists and queued results, driven by tests/test_refrules.sh.
 *
 * Usage: mapi_refrules TRACE1 TRACE2
 * Prints one line per check, "NAME VALUE", where VALUE is the MAPI error number of a call
 * that must fail (0 if it succeeded) or a number read from a result:
 *   other_device     BINOP in a flow of TRACE2's device naming a counter of TRACE1's device
 *   later_flow       BINOP in flow A naming a counter of flow B, created after A
 *   closed_flow      BINOP naming a flow that was closed (libmapi refuses the descriptor)
 *   own_later_fid    BINOP naming a function of its own flow applied after it (no such fid yet)
 *   no_result        BINOP naming a BPF_FILTER (a function without a numeric result)
 *   sync_closed      SYNC with a closed flow in its list
 *   sync_later       SYNC in flow tcp listing a flow created after it (allowed: 0)
 *   queue_no_queue   mapi_read_results of HASHSAMP with keep 0 (no queue)
 *   binop_sum        BINOP ADD of the counters of two earlier flows on TRACE1's device, read
 *                    at the end of the trace (the test compares it with tcpdump)
 *   bucket_records / bucket_end   BUCKET "-1" over PKT_COUNTER: the number of records read,
 *                    then the error of the read after the last one (6158)
 *   counter_after_ref  PKT_COUNTER of a referenced flow, read after the referencing flow
 *                    closed (its value must still be whole)
 */
#include <stdio.h>
#include <stdlib.h>

#include <mapi.h>
#include <mapi/bucket.h>

#include "client_util.h"

static void report(const char *name, long long v)
{
    printf("%s %lld\n", name, v);
}

/* Applies BINOP ADD fd1/fid1 + fd2/fid2 in flow fd; returns 0 or the MAPI error. */
static int binop(int fd, int fd1, int fid1, int fd2, int fid2)
{
    if (mapi_apply_function(fd, "BINOP", 0, fd1, fid1, fd2, fid2) >= 0)
        return 0;
    return last_error();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mapi_refrules TRACE1 TRACE2\n");
        return 1;
    }
    char *dev1 = mapi_create_offline_device(argv[1], MFF_PCAP);
    char *dev2 = mapi_create_offline_device(argv[2], MFF_PCAP);
    if (!dev1 || !dev2)
        fatal("mapi_create_offline_device");
    int tcp = mapi_create_flow(dev1);
    int udp = mapi_create_flow(dev1);
    int sum = mapi_create_flow(dev1);
    int other = mapi_create_flow(dev2);
    if (tcp < 0 || udp < 0 || sum < 0 || other < 0)
        fatal("mapi_create_flow");
    int fid_tcp, fid_udp;
    if (mapi_apply_function(tcp, "BPF_FILTER", "tcp") < 0 ||
        (fid_tcp = mapi_apply_function(tcp, "PKT_COUNTER")) < 0 ||
        mapi_apply_function(udp, "BPF_FILTER", "udp") < 0 ||
        (fid_udp = mapi_apply_function(udp, "PKT_COUNTER")) < 0)
        fatal("counters");

    report("other_device", binop(other, tcp, fid_tcp, udp, fid_udp));
    int later = mapi_create_flow(dev1);
    int fid_later = mapi_apply_function(later, "PKT_COUNTER");
    if (later < 0 || fid_later < 0)
        fatal("later flow");
    report("later_flow", binop(tcp, later, fid_later, udp, fid_udp));
    int gone = mapi_create_flow(dev1);
    int fid_gone = mapi_apply_function(gone, "PKT_COUNTER");
    if (gone < 0 || fid_gone < 0 || mapi_close_flow(gone) < 0)
        fatal("closed flow");
    report("closed_flow", binop(sum, gone, fid_gone, udp, fid_udp));
    report("own_later_fid", binop(sum, sum, 5, udp, fid_udp));
    report("no_result", binop(sum, tcp, 1, udp, fid_udp));
    char list[64];
    snprintf(list, sizeof(list), "%d,%d", tcp, gone);
    report("sync_closed", mapi_apply_function(sum, "SYNC", list) >= 0 ? 0 : last_error());
    snprintf(list, sizeof(list), "%d", sum);
    report("sync_later", mapi_apply_function(tcp, "SYNC", list) >= 0 ? 0 : last_error());

    int fid_sum = mapi_apply_function(sum, "BINOP", 0, tcp, fid_tcp, udp, fid_udp);
    int fid_hs = mapi_apply_function(sum, "HASHSAMP", 1024, 0);
    int fid_cnt = mapi_apply_function(sum, "PKT_COUNTER");
    int fid_bucket = mapi_apply_function(sum, "BUCKET", sum, fid_cnt, "-1", 0);
    if (fid_sum < 0 || fid_hs < 0 || fid_cnt < 0 || fid_bucket < 0)
        fatal("apply on the sum flow");
    if (mapi_close_flow(later) < 0)
        fatal("close later");
    if (mapi_connect(tcp) < 0 || mapi_connect(udp) < 0 || mapi_connect(sum) < 0)
        fatal("mapi_connect");
    if (mapi_start_offline_device(dev1) < 0)
        fatal("mapi_start_offline_device");

    report("queue_no_queue", mapi_read_results(sum, fid_hs) ? 0 : last_error());
    long long records = 0;
    mapi_results_t *r;
    while ((r = mapi_read_results(sum, fid_bucket)) != NULL) {
        if (r->size != (int)sizeof(struct bucket_data))
            fatal("bucket record size");
        records++;
    }
    int end = last_error();
    report("bucket_records", records);
    report("bucket_end", end);
    if (wait_finished(sum, 60) != 0 || wait_finished(tcp, 60) != 0)
        return 1;
    r = mapi_read_results(sum, fid_sum);
    if (!r)
        fatal("read BINOP");
    report("binop_sum", (long long)*(unsigned long long *)r->res);
    if (mapi_close_flow(sum) < 0)
        fatal("close sum");
    r = mapi_read_results(tcp, fid_tcp);
    if (!r)
        fatal("read tcp counter");
    report("counter_after_ref", (long long)*(unsigned long long *)r->res);
    mapi_close_flow(tcp);
    mapi_close_flow(udp);
    mapi_close_flow(other);
    mapi_delete_offline_device(dev1);
    mapi_delete_offline_device(dev2);
    return 0;
}
