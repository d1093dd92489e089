/*
 * examples/link_util.c - "Link Utilization", section 6.2 of the MAPI tutorial: report the
 * incoming and outgoing traffic of a host with two flows and BYTE_COUNTER.
 *
 * Usage: link_util [DEVICE | TRACE] [HOST | NET/LEN]
 *   DEVICE  a device of mapi.conf (default eth0): report every second until interrupted.
 *   TRACE   an existing pcap/pcapng file (.erf: ERF): both flows read the same trace through
 *           one offline device; the totals are printed at the end of the trace.
 *   HOST    the monitored host (default 139.91.145.84, as in the tutorial), or a subnet such
 *           as 139.91.0.0/16 (the filters then use "dst net" and "src net").
 * mapid must be running; libmapi finds it through the file named by $MAPI_CONF.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <sys/stat.h>
#include <mapi.h>

static void terminate(int sig);
int in_fd, out_fd;

static int is_trace_file(const char *arg)
{
    struct stat st;
    return stat(arg, &st) == 0 && S_ISREG(st.st_mode);
}

static int trace_format(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && strcmp(path + n - 4, ".erf") == 0) ? MFF_DAG_ERF : MFF_PCAP;
}

static void print_mapi_error(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: MAPI error %d: %s\n", what, err, msg);
}

/* Waits until the offline flow fd has read its whole trace. Returns 0, or -1 on an error. */
static int wait_finished(int fd)
{
    mapi_flow_info_t info;
    for (;;) {
        if (mapi_get_flow_info(fd, &info) < 0)
            return -1;
        if (info.status == FLOW_FINISHED || info.status == FLOW_CLOSED)
            return 0;
        usleep(10000);
    }
}

int main(int argc, char *argv[])
{
    int in_fid, out_fid;
    mapi_results_t *result1, *result2;
    unsigned long long *in_cnt, *out_cnt;
    unsigned long long in_prev = 0, out_prev = 0;
    const char *dev = argc > 1 ? argv[1] : "eth0";
    const char *host = argc > 2 ? argv[2] : "139.91.145.84";
    const char *kind = strchr(host, '/') ? "net" : "host";
    char in_filter[512], out_filter[512];
    char *offline_dev = NULL;

    signal(SIGINT, terminate);
    signal(SIGQUIT, terminate);
    signal(SIGTERM, terminate);

    /* a trace file becomes an offline device that both flows read */
    if (is_trace_file(dev)) {
        offline_dev = mapi_create_offline_device(dev, trace_format(dev));
        if (offline_dev == NULL) {
            printf("Could not create offline device\n");
            print_mapi_error(dev);
            exit(EXIT_FAILURE);
        }
        dev = offline_dev;
    }

    /* create two flows, one for each traffic direction */
    in_fd = mapi_create_flow(dev);
    out_fd = mapi_create_flow(dev);
    if ((in_fd < 0) || (out_fd < 0)) {
        printf("Could not create flow\n");
        print_mapi_error(dev);
        exit(EXIT_FAILURE);
    }

    /* separate incoming from outgoing packets */
    snprintf(in_filter, sizeof in_filter, "dst %s %s", kind, host);
    snprintf(out_filter, sizeof out_filter, "src %s %s", kind, host);
    if (mapi_apply_function(in_fd, "BPF_FILTER", in_filter) < 0 ||
        mapi_apply_function(out_fd, "BPF_FILTER", out_filter) < 0) {
        print_mapi_error("BPF_FILTER");
        exit(EXIT_FAILURE);
    }

    /* count the bytes of each flow */
    in_fid = mapi_apply_function(in_fd, "BYTE_COUNTER");
    out_fid = mapi_apply_function(out_fd, "BYTE_COUNTER");
    if (in_fid < 0 || out_fid < 0) {
        print_mapi_error("BYTE_COUNTER");
        exit(EXIT_FAILURE);
    }

    /* connect to the flows */
    if (mapi_connect(in_fd) < 0) {
        printf("Could not connect to flow %d\n", in_fd);
        print_mapi_error("mapi_connect");
        exit(EXIT_FAILURE);
    }
    if (mapi_connect(out_fd) < 0) {
        printf("Could not connect to flow %d\n", out_fd);
        print_mapi_error("mapi_connect");
        exit(EXIT_FAILURE);
    }

    if (offline_dev != NULL) {
        /* read the trace through both flows at once, then report the totals */
        if (mapi_start_offline_device(offline_dev) < 0) {
            print_mapi_error("mapi_start_offline_device");
            exit(EXIT_FAILURE);
        }
        if (wait_finished(in_fd) < 0 || wait_finished(out_fd) < 0) {
            print_mapi_error("mapi_get_flow_info");
            exit(EXIT_FAILURE);
        }
        result1 = mapi_read_results(in_fd, in_fid);
        result2 = mapi_read_results(out_fd, out_fid);
        if (result1 == NULL || result2 == NULL) {
            print_mapi_error("mapi_read_results");
            exit(EXIT_FAILURE);
        }
        in_cnt = result1->res;
        out_cnt = result2->res;
        printf("incoming: %.2f Mbit (%llu bytes)\n", *in_cnt * 8 / 1000000.0, *in_cnt);
        printf("outgoing: %.2f Mbit (%llu bytes)\n", *out_cnt * 8 / 1000000.0, *out_cnt);
        mapi_close_flow(in_fd);
        mapi_close_flow(out_fd);
        mapi_delete_offline_device(offline_dev);
        return 0;
    }

    while (1) { /* forever, report the load */

        sleep(1);

        result1 = mapi_read_results(in_fd, in_fid);
        result2 = mapi_read_results(out_fd, out_fid);
        if (result1 == NULL || result2 == NULL) {
            print_mapi_error("mapi_read_results");
            exit(EXIT_FAILURE);
        }
        in_cnt = result1->res;
        out_cnt = result2->res;

        printf("incoming: %.2f Mbit/s (%llu bytes)\n", (*in_cnt - in_prev) * 8 / 1000000.0,
               (*in_cnt - in_prev));
        printf("outgoing: %.2f Mbit/s (%llu bytes)\n\n", (*out_cnt - out_prev) * 8 / 1000000.0,
               (*out_cnt - out_prev));
        fflush(stdout);

        in_prev = *in_cnt;
        out_prev = *out_cnt;
    }

    return 0;
}

static void terminate(int sig)
{
    (void)sig;
    mapi_close_flow(in_fd);
    mapi_close_flow(out_fd);
    exit(EXIT_SUCCESS);
}
