/*
 * tests/mapi_res2file.c - test client of RES2FILE: on a flow over a trace file, applies an
 * optional BPF_FILTER, the listed source functions and RES2FILE over them, runs the trace to
 * its end and closes the flow (so the file is complete when the program exits).
 *
 * Usage: mapi_res2file [-f BPF] [-H HEADER] [-t SECONDS] TRACE OUTFILE TYPES INTERVAL RESET
 *                      SPEC...
 *   SPEC      NAME[:ARG...] a function to apply, its arguments as strings; an ARG "@fd" is the
 *             flow's descriptor, "@prev" the fid of the previous SPEC. A SPEC starting with '-'
 *             is applied but not listed in RES2FILE's "fid@fd" list.
 *   TYPES, INTERVAL, RESET, HEADER (default "header")  RES2FILE's other arguments.
 * Output: "OK", or "ERR N" if applying or connecting failed with MAPI error N (message on
 * stderr). Exit status 0 in both cases, 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>

#include "client_util.h"

#define MAX_ARGS 16

static void usage(void)
{
    fprintf(stderr, "usage: mapi_res2file [-f BPF] [-H HEADER] [-t SECONDS] TRACE OUTFILE TYPES "
                    "INTERVAL RESET SPEC...\n");
    exit(1);
}

/* Prints "ERR N" and the message. Returns 0 (the exit status). */
static int report_error(int fd, char *dev)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    printf("ERR %d\n", err);
    fflush(stdout);
    fprintf(stderr, "mapi_res2file: MAPI error %d: %s\n", err, msg);
    mapi_close_flow(fd);
    mapi_delete_offline_device(dev);
    return 0;
}

/* Applies SPEC (see the usage) to fd. Returns its fid; exits on error. */
static int apply_spec(int fd, const char *spec, int prev_fid)
{
    char *copy = strdup(spec), *save = NULL;
    char *args[MAX_ARGS], num[MAX_ARGS][16];
    int nargs = 0;

    if (copy == NULL)
        exit(1);
    char *name = strtok_r(copy, ":", &save);
    if (name == NULL)
        usage();
    for (char *a; (a = strtok_r(NULL, ":", &save)) != NULL;) {
        if (nargs == MAX_ARGS)
            usage();
        if (strcmp(a, "@fd") == 0 || strcmp(a, "@prev") == 0) {
            snprintf(num[nargs], sizeof num[nargs], "%d", a[1] == 'f' ? fd : prev_fid);
            a = num[nargs];
        }
        args[nargs++] = a;
    }
    int fid = mapi_apply_function_array(fd, name, args, nargs);
    if (fid < 0)
        fatal(spec);
    free(copy);
    return fid;
}

int main(int argc, char **argv)
{
    const char *filter = NULL, *header = "header";
    double timeout = 30;
    int opt;

    while ((opt = getopt(argc, argv, "+f:H:t:")) != -1) {
        if (opt == 'f')
            filter = optarg;
        else if (opt == 'H')
            header = optarg;
        else if (opt == 't')
            timeout = atof(optarg);
        else
            usage();
    }
    if (argc - optind < 6)
        usage();
    const char *trace = argv[optind], *outfile = argv[optind + 1], *types = argv[optind + 2];
    const char *interval = argv[optind + 3], *reset = argv[optind + 4];

    char *dev;
    int fd = offline_device_flow(trace, &dev);
    if (filter != NULL && mapi_apply_function(fd, "BPF_FILTER", filter) < 0)
        fatal("BPF_FILTER");

    char fids[1024] = "";
    size_t used = 0;
    int prev = 0;
    for (int i = optind + 5; i < argc; i++) {
        const char *spec = argv[i];
        int listed = spec[0] != '-';
        prev = apply_spec(fd, listed ? spec : spec + 1, prev);
        if (listed) {
            int n = snprintf(fids + used, sizeof fids - used, "%s%d@%d", used ? "," : "", prev, fd);
            if (n < 0 || (size_t)n >= sizeof fids - used)
                usage();
            used += (size_t)n;
        }
    }

    char *args[] = {(char *)types,    fids,         (char *)header, (char *)outfile,
                    (char *)interval, (char *)reset};
    if (mapi_apply_function_array(fd, "RES2FILE", args, 6) < 0)
        return report_error(fd, dev);
    if (mapi_connect(fd) < 0)
        return report_error(fd, dev);
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    if (wait_finished(fd, timeout) != 0)
        return 1;
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    printf("OK\n");
    return 0;
}
