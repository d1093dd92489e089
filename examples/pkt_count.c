/*
 * examples/pkt_count.c - "Getting Started: Simple Packet Count", section 6.1 of the MAPI
 * tutorial: count the packets sent to a web server.
 *
 * Usage: pkt_count [DEVICE | TRACE] [FILTER]
 *   DEVICE  a device of mapi.conf (default eth0): count for 10 seconds, as in the tutorial.
 *   TRACE   an existing pcap/pcapng file (.erf: ERF): count the whole trace, print the total.
 *   FILTER  the BPF filter (default "tcp and dst port 80").
 * mapid must be running; libmapi finds it through the file named by $MAPI_CONF.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <mapi.h>

/* A trace file is any argument that names an existing regular file. */
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
    int fd, fid;
    mapi_results_t *result;
    const char *dev = argc > 1 ? argv[1] : "eth0";
    const char *filter = argc > 2 ? argv[2] : "tcp and dst port 80";
    int offline = is_trace_file(dev);

    /* create a flow using the eth0 interface (or the given device or trace file) */
    if (offline)
        fd = mapi_create_offline_flow(dev, trace_format(dev));
    else
        fd = mapi_create_flow(dev);
    if (fd < 0) {
        printf("Could not create flow\n");
        print_mapi_error(dev);
        exit(EXIT_FAILURE);
    }

    /* keep only the packets directed to the web server */
    if (mapi_apply_function(fd, "BPF_FILTER", filter) < 0) {
        print_mapi_error("BPF_FILTER");
        exit(EXIT_FAILURE);
    }

    /* and just count them */
    fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (fid < 0) {
        print_mapi_error("PKT_COUNTER");
        exit(EXIT_FAILURE);
    }

    /* connect to the flow */
    if (mapi_connect(fd) < 0) {
        printf("Could not connect to flow %d\n", fd);
        print_mapi_error("mapi_connect");
        exit(EXIT_FAILURE);
    }

    if (offline) {
        /* a trace is read as fast as possible: wait for its end instead of 10 seconds */
        if (wait_finished(fd) < 0) {
            print_mapi_error("mapi_get_flow_info");
            exit(EXIT_FAILURE);
        }
    } else {
        sleep(10);
    }

    /* read the results of the applied PKT_COUNTER function */
    result = (mapi_results_t *)mapi_read_results(fd, fid);
    if (result == NULL) {
        print_mapi_error("mapi_read_results");
        exit(EXIT_FAILURE);
    }
    printf("pkts: %llu\n", *((unsigned long long *)result->res));

    mapi_close_flow(fd);
    return 0;
}
