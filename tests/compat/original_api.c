/*
 * tests/compat/original_api.c - a test program written only against the API of the original
 * MAPI (FORTH-ICS / UNINETT), in the style of its test suite: <mapi.h> and the installed
 * result headers <mapi/pktinfo.h>, <mapi/stats.h>, <mapi/bucket.h>, <mapi/dist.h>,
 * <mapi/binop.h>, <mapi/res2file.h>, mapi_create_offline_flow(path, MFF_PCAP), arguments as strings
 * through mapi_apply_function_array, results as mapi_results_t with casts of res->res, and error
 * numbers compared as plain numbers. Nothing of this implementation's own (no mapi/errors.h, no
 * helpers of tests/) is used, so it shows that such a program compiles unchanged.
 *
 * tests/test_compat.sh compiles it with -std=gnu99 -Wall -Werror against the source tree's
 * headers and the built libmapi, runs it on a trace and compares every printed value with
 * tshark, tcpdump and python over the capture.
 *
 * Usage: original_api TRACE OUTDIR PATTERN
 *   OUTDIR   a writable directory (TO_FILE writes OUTDIR/to_file.pcap, RES2FILE
 *            OUTDIR/res2file.txt)
 *   PATTERN  a STR_SEARCH pattern (searched in the whole frame)
 * Output: "NAME VALUE..." lines (see the printf calls), then "error NAME CODE" lines with the
 * error number each provoked error case gave (0 if the call unexpectedly succeeded).
 * Exit status 0, or 1 if a call that must succeed failed (message on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>
#include <mapi/binop.h>
#include <mapi/bucket.h>
#include <mapi/dist.h>
#include <mapi/pktinfo.h>
#include <mapi/res2file.h>
#include <mapi/stats.h>

#define TO_FILE_COUNT "50"

static char error[512];
static int err_no;

/* Prints the last MAPI error after what and exits with status 1. */
static void die(const char *what)
{
    err_no = 0;
    error[0] = 0;
    mapi_read_error(&err_no, error);
    fprintf(stderr, "original_api: %s: Errorcode :%d description: %s\n", what, err_no, error);
    exit(1);
}

/* mapi_apply_function_array with up to six string arguments (the first NULL ends the list);
 * exits if it fails. Returns the fid. */
static int apply(int fd, const char *funct, const char *a1, const char *a2, const char *a3,
                 const char *a4, const char *a5, const char *a6)
{
    char *args[6];
    const char *given[6];
    int n = 0, fid;

    given[0] = a1;
    given[1] = a2;
    given[2] = a3;
    given[3] = a4;
    given[4] = a5;
    given[5] = a6;
    while (n < 6 && given[n] != NULL) {
        args[n] = strdup(given[n]);
        n++;
    }
    fid = mapi_apply_function_array(fd, funct, n ? args : NULL, n);
    while (n > 0)
        free(args[--n]);
    if (fid < 0)
        die(funct);
    return fid;
}

/* Writes v in decimal into buf (16 bytes) and returns buf. */
static const char *num(int v, char *buf)
{
    sprintf(buf, "%d", v);
    return buf;
}

static unsigned long long read_ull(int fd, int fid, const char *what)
{
    mapi_results_t *res = mapi_read_results(fd, fid);

    if (res == NULL)
        die(what);
    return *((unsigned long long *)res->res);
}

/* Waits until flow fd has read its whole trace. */
static void wait_end(int fd)
{
    mapi_flow_info_t info;
    int i;

    for (i = 0; i < 6000; i++) {
        if (mapi_get_flow_info(fd, &info) < 0)
            die("mapi_get_flow_info");
        if (info.status == FLOW_FINISHED)
            return;
        usleep(10000);
    }
    fprintf(stderr, "original_api: flow %d did not finish within 60 s\n", fd);
    exit(1);
}

/* Prints "error NAME CODE": the error of the call that just returned rc (0 if rc >= 0). */
static void report_error(const char *name, int rc)
{
    err_no = 0;
    if (rc < 0)
        mapi_read_error(&err_no, error);
    printf("error %s %d\n", name, err_no);
}

/* Reads a BUCKET until the end of the trace: "NAME k timestamp data" per bucket, then
 * "NAME_end ERRNO" (the original API's end of a queue: NULL and an error number). */
static void read_buckets(int fd, int fid, const char *name)
{
    mapi_results_t *res;
    struct bucket_data *b;
    int k = 0;

    while ((res = mapi_read_results(fd, fid)) != NULL) {
        b = (struct bucket_data *)res->res;
        printf("%s %d %llu %llu\n", name, k++, b->timestamp, b->data);
        if (k > 100000)
            break;
    }
    err_no = 0;
    mapi_read_error(&err_no, error);
    printf("%s_end %d\n", name, err_no);
}

int main(int argc, char *argv[])
{
    int fd, fd_tcp, fd_str, fd_bucket, fd_err;
    int fid_pkts, fid_bytes, fid_size, fid_ts, fid_gap, fid_file, fid_stats, fid_add, fid_sub,
        fid_dist, fid_bucket, fid_tcp_pkts, fid_tcp_bytes, fid_str_pkts, fid_bucket_pkts,
        fid_bucket_reset, fid_bpf, fid_err_pkts, i;
    char b1[16], b2[16], b3[16], b4[16], file[4096], r2f_file[4096], fids[64], types[16];
    char *args[6];
    mapi_results_t *res;
    stats_t *st;
    dist_t *dist;

    if (argc != 4) {
        printf("\nWrong arguments: original_api TRACE OUTDIR PATTERN\n");
        return 1;
    }
    snprintf(file, sizeof(file), "%s/to_file.pcap", argv[2]);
    snprintf(r2f_file, sizeof(r2f_file), "%s/res2file.txt", argv[2]);

    /* Flow 1: every packet. Counters, packet info, and functions over their results. */
    if ((fd = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow");
    fid_pkts = apply(fd, "PKT_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);
    fid_bytes = apply(fd, "BYTE_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);
    if ((fid_size = mapi_apply_function(fd, "PKTINFO", PKT_SIZE)) < 0)
        die("PKTINFO PKT_SIZE");
    if ((fid_ts = mapi_apply_function(fd, "PKTINFO", PKT_TS)) < 0)
        die("PKTINFO PKT_TS");
    fid_gap = apply(fd, "GAP", NULL, NULL, NULL, NULL, NULL, NULL);
    fid_file = apply(fd, "TO_FILE", "0", file, TO_FILE_COUNT, NULL, NULL, NULL);
    fid_stats = apply(fd, "STATS", num(fd, b1), num(fid_size, b2), "0", NULL, NULL, NULL);
    sprintf(b3, "%d", BINOP_ADD);
    fid_add = apply(fd, "BINOP", b3, num(fd, b1), num(fid_pkts, b2), b1, num(fid_bytes, b4), NULL);
    sprintf(b3, "%d", BINOP_SUB);
    fid_sub = apply(fd, "BINOP", b3, num(fd, b1), num(fid_bytes, b2), b1, num(fid_pkts, b4), NULL);
    /* RES2FILE as the original's tests call it: six strings; one line at the end ("-1"). */
    snprintf(fids, sizeof(fids), "%d@%d,%d@%d", fid_pkts, fd, fid_ts, fd);
    snprintf(types, sizeof(types), "%d,%d", R2F_ULLSTR, R2F_ULLSEC);
    args[0] = strdup(types);
    args[1] = strdup(fids);
    args[2] = strdup("packets last_ts");
    args[3] = strdup(r2f_file);
    args[4] = strdup("-1");
    args[5] = strdup("0");
    if (mapi_apply_function_array(fd, "RES2FILE", &args[0], 6) < 0)
        die("RES2FILE");
    for (i = 0; i < 6; i++)
        free(args[i]);
    fid_dist = apply(fd, "DIST", num(fd, b1), num(fid_size, b2), "100", "1500", "200", NULL);
    /* Cumulative packet count at the end of every second of packet time. */
    fid_bucket = apply(fd, "BUCKET", num(fd, b1), num(fid_pkts, b2), "1s", "0", NULL, NULL);

    /* Flow 2: BPF_FILTER. */
    if ((fd_tcp = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow (2)");
    apply(fd_tcp, "BPF_FILTER", "tcp", NULL, NULL, NULL, NULL, NULL);
    fid_tcp_pkts = apply(fd_tcp, "PKT_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);
    fid_tcp_bytes = apply(fd_tcp, "BYTE_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);

    /* Flow 3: STR_SEARCH from the start of the frame, to its end. */
    if ((fd_str = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow (3)");
    apply(fd_str, "STR_SEARCH", argv[3], "0", "0", NULL, NULL, NULL);
    fid_str_pkts = apply(fd_str, "PKT_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);

    /* Flow 4: packets per half second (the counter is reset after every bucket). */
    if ((fd_bucket = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow (4)");
    fid_bucket_pkts = apply(fd_bucket, "PKT_COUNTER", NULL, NULL, NULL, NULL, NULL, NULL);
    fid_bucket_reset = apply(fd_bucket, "BUCKET", num(fd_bucket, b1), num(fid_bucket_pkts, b2),
                             "500ms", "1", NULL, NULL);

    if (mapi_connect(fd) < 0 || mapi_connect(fd_tcp) < 0 || mapi_connect(fd_str) < 0 ||
        mapi_connect(fd_bucket) < 0)
        die("mapi_connect");

    /* The queues first: on a trace file the reader waits for us. */
    read_buckets(fd, fid_bucket, "bucket");
    read_buckets(fd_bucket, fid_bucket_reset, "bucket_reset");
    wait_end(fd);
    wait_end(fd_tcp);
    wait_end(fd_str);
    wait_end(fd_bucket);

    printf("pkts %llu\n", read_ull(fd, fid_pkts, "PKT_COUNTER"));
    printf("bytes %llu\n", read_ull(fd, fid_bytes, "BYTE_COUNTER"));
    printf("pktinfo_size %llu\n", read_ull(fd, fid_size, "PKTINFO PKT_SIZE"));
    printf("pktinfo_ts %llu\n", read_ull(fd, fid_ts, "PKTINFO PKT_TS"));
    printf("gap %llu\n", read_ull(fd, fid_gap, "GAP"));
    if ((res = mapi_read_results(fd, fid_file)) == NULL)
        die("TO_FILE");
    printf("to_file %d\n", *((int *)res->res));
    if ((res = mapi_read_results(fd, fid_stats)) == NULL)
        die("STATS");
    st = (stats_t *)res->res;
    printf("stats %llu %.0Lf %.0Lf %.0f %.0f\n", st->count, st->sum, st->sum2, st->min, st->max);
    printf("binop_add %llu\n", read_ull(fd, fid_add, "BINOP ADD"));
    printf("binop_sub %llu\n", read_ull(fd, fid_sub, "BINOP SUB"));
    if ((res = mapi_read_results(fd, fid_dist)) == NULL)
        die("DIST");
    dist = (dist_t *)res->res;
    printf("dist %llu %llu %llu", dist->min, dist->max, dist->intervals);
    for (i = 0; i <= (int)dist->intervals && (int)(sizeof(dist_t) + (i + 1) * 8) <= res->size; i++)
        printf(" %llu", dist->data[i]);
    printf("\n");
    printf("tcp_pkts %llu\n", read_ull(fd_tcp, fid_tcp_pkts, "PKT_COUNTER (tcp)"));
    printf("tcp_bytes %llu\n", read_ull(fd_tcp, fid_tcp_bytes, "BYTE_COUNTER (tcp)"));
    printf("str_pkts %llu\n", read_ull(fd_str, fid_str_pkts, "PKT_COUNTER (STR_SEARCH)"));

    /* The original's error numbers. */
    report_error("second_connect", mapi_connect(fd));
    report_error("apply_after_connect", mapi_apply_function(fd, "PKT_COUNTER"));
    report_error("bad_fd_apply", mapi_apply_function(4242, "PKT_COUNTER"));
    report_error("bad_fd_read", mapi_read_results(4242, fid_pkts) == NULL ? -1 : 0);
    report_error("bad_fid_read", mapi_read_results(fd, 4242) == NULL ? -1 : 0);
    report_error("missing_trace", mapi_create_offline_flow("/nonexistent/trace.pcap", MFF_PCAP));
    if ((fd_err = mapi_create_offline_flow(argv[1], MFF_PCAP)) < 0)
        die("mapi_create_offline_flow (errors)");
    report_error("unknown_function", mapi_apply_function(fd_err, "NO_SUCH_FUNCTION"));
    report_error("bad_bpf", mapi_apply_function(fd_err, "BPF_FILTER", "tcp and and ("));
    report_error("hash_layer", mapi_apply_function(fd_err, "HASH", 7));
    report_error("to_file_exists", mapi_apply_function(fd_err, "TO_FILE", MFF_PCAP, file, 0ULL));
    /* References must name functions of flows on the same device: here fd_err's own. */
    if ((fid_err_pkts = mapi_apply_function(fd_err, "PKT_COUNTER")) < 0)
        die("PKT_COUNTER (errors)");
    if ((fid_bpf = mapi_apply_function(fd_err, "BPF_FILTER", "udp")) < 0)
        die("BPF_FILTER (errors)");
    report_error("stats_no_result", mapi_apply_function(fd_err, "STATS", fd_err, fid_bpf, "0"));
    report_error("binop_op", mapi_apply_function(fd_err, "BINOP", 5, fd_err, fid_err_pkts, fd_err,
                                                 fid_err_pkts));
    report_error("bucket_interval",
                 mapi_apply_function(fd_err, "BUCKET", fd_err, fid_err_pkts, "0s", 0));
    report_error("bucket_other_device",
                 mapi_apply_function(fd_err, "BUCKET", fd, fid_pkts, "1s", 0));
    report_error("not_connected_read", mapi_read_results(fd_err, fid_err_pkts) == NULL ? -1 : 0);

    mapi_close_flow(fd_err);
    mapi_close_flow(fd_bucket);
    mapi_close_flow(fd_str);
    mapi_close_flow(fd_tcp);
    mapi_close_flow(fd);
    return 0;
}
