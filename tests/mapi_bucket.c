/*
 * tests/mapi_bucket.c - test client of BUCKET: on a flow over a trace file, applies an optional
 * BPF_FILTER, a source function (PKT_COUNTER, BYTE_COUNTER, ...) and BUCKET over it, runs the
 * trace and prints every bucket that mapi_read_results delivers until it returns NULL.
 *
 * Usage: mapi_bucket [-f BPF] [-x] [-t SECONDS] TRACE SOURCE INTERVAL RESET
 *   -f BPF    apply BPF_FILTER BPF first (in the flow of BUCKET)
 *   -x        apply SOURCE in another flow of the same device, created (and connected) before
 *             the flow of BUCKET: a cross-flow reference
 *   SOURCE    NAME[:ARG...] a function to apply (its arguments as strings), or a number: that
 *             fid is referenced without applying anything (to provoke reference errors)
 *   INTERVAL, RESET  BUCKET's arguments, as strings (mapi_apply_function_array)
 * Output:
 *   B TIMESTAMP DATA   one line per bucket (32.32 timestamp and value, decimal)
 *   END N              mapi_read_results returned NULL with MAPI error N (6158 = end of trace)
 *   ERR N              applying or connecting failed with MAPI error N (message on stderr)
 * Exit status 0 in these cases, 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>
#include <mapi/bucket.h>

#include "client_util.h"

static void usage(void)
{
    fprintf(stderr, "usage: mapi_bucket [-f BPF] [-x] [-t SECONDS] TRACE SOURCE INTERVAL RESET\n");
    exit(1);
}

/* Prints "ERR N" and the message, closes the flows (src_fd may equal fd) and deletes the
 * device. Returns 0 (the exit status). */
static int report_error(int fd, int src_fd, char *dev)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    printf("ERR %d\n", err);
    fflush(stdout);
    fprintf(stderr, "mapi_bucket: MAPI error %d: %s\n", err, msg);
    mapi_close_flow(fd);
    if (src_fd != fd)
        mapi_close_flow(src_fd);
    mapi_delete_offline_device(dev);
    return 0;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    int cross_flow = 0, opt;
    double timeout = 30;

    while ((opt = getopt(argc, argv, "+f:xt:")) != -1) {
        if (opt == 'f')
            filter = optarg;
        else if (opt == 'x')
            cross_flow = 1;
        else if (opt == 't')
            timeout = atof(optarg);
        else
            usage();
    }
    if (argc - optind != 4)
        usage();
    const char *trace = argv[optind], *source = argv[optind + 1];
    const char *interval = argv[optind + 2], *reset = argv[optind + 3];

    char *dev;
    int fd = offline_device_flow(trace, &dev);
    int src_fd = fd;
    if (cross_flow) {
        /* The source's flow is the one created first; BUCKET gets a newer flow. */
        fd = mapi_create_flow(dev);
        if (fd < 0)
            fatal("mapi_create_flow");
    }
    if (filter != NULL && mapi_apply_function(fd, "BPF_FILTER", filter) < 0)
        fatal("BPF_FILTER");

    char *end;
    long src_fid = strtol(source, &end, 10);
    if (*source == '\0' || *end != '\0') {
        /* NAME[:ARG...] */
        char *copy = strdup(source), *save = NULL, *sargs[8];
        int nsargs = 0;
        if (copy == NULL)
            return 1;
        char *name = strtok_r(copy, ":", &save);
        for (char *a; nsargs < 8 && (a = strtok_r(NULL, ":", &save)) != NULL;)
            sargs[nsargs++] = a;
        src_fid = mapi_apply_function_array(src_fd, name, sargs, nsargs);
        if (src_fid < 0)
            fatal(source);
        free(copy);
    }
    if (cross_flow && mapi_connect(src_fd) < 0)
        fatal("mapi_connect (source flow)");

    char fdstr[16], fidstr[16];
    snprintf(fdstr, sizeof fdstr, "%d", src_fd);
    snprintf(fidstr, sizeof fidstr, "%ld", src_fid);
    char *args[] = {fdstr, fidstr, (char *)interval, (char *)reset};
    int bfid = mapi_apply_function_array(fd, "BUCKET", args, 4);
    if (bfid < 0)
        return report_error(fd, src_fd, dev);
    if (mapi_connect(fd) < 0)
        return report_error(fd, src_fd, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");

    double deadline = now() + timeout;
    mapi_results_t *r;
    while ((r = mapi_read_results(fd, bfid)) != NULL) {
        struct bucket_data b;
        if (r->size != (int)sizeof b) {
            fprintf(stderr, "mapi_bucket: record of %d bytes, want %zu\n", r->size, sizeof b);
            return 1;
        }
        memcpy(&b, r->res, sizeof b);
        printf("B %llu %llu\n", b.timestamp, b.data);
        if (now() > deadline) {
            fprintf(stderr, "mapi_bucket: still reading after %.0f s\n", timeout);
            return 1;
        }
    }
    printf("END %d\n", last_error());
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    if (cross_flow && mapi_close_flow(src_fd) < 0)
        fatal("mapi_close_flow (source flow)");
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    return 0;
}
