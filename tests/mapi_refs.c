/*
 * tests/mapi_refs.c - test client for functions that reference other functions (STATS, BINOP,
 * DIST, ...): builds several flows on one trace-file device from a small command language, runs
 * the trace to its end and prints every applied function's result.
 *
 * Usage: mapi_refs [-t SECONDS] TRACE COMMAND...        (TRACE is read as pcap)
 * Commands:
 *   flow                    creates a flow on the device; it becomes the current flow. Flows
 *                           are numbered 1, 2, ... in order of creation.
 *   use N                   makes flow N the current flow again.
 *   close N                 closes flow N now (before anything is connected); "@N" then still
 *                           gives its old, now invalid descriptor.
 *   apply NAME NARGS ARG... applies NAME to the current flow with NARGS string arguments
 *                           (mapi_apply_function_array). An argument "@N" is replaced by the
 *                           descriptor of flow N, "#J" by the fid of the J-th applied function
 *                           (1-based, counting every apply command). Anything else is passed
 *                           as it is.
 * After the commands: connects every open flow in order of creation, starts the device, waits
 * for every flow to finish and prints one line per applied function J:
 *   fn J NAME STATS count C sum S sum2 Q max X min N    (STATS: stats_t of mapi/stats.h)
 *   fn J NAME DIST min A max B intervals I data D0 D1 ... (DIST: dist_t of mapi/dist.h)
 *   fn J NAME V1 V2 ...     one unsigned value per 8 bytes of the result (one unsigned int for
 *                           a 4-byte result); nothing after NAME for no result
 * If an apply or a connect fails, prints "ERR N" (N = the MAPI error; the message on stderr)
 * and stops there. Exit status 0 in both cases, 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>
#include <mapi/dist.h>
#include <mapi/stats.h>

#include "client_util.h"

#define MAX_FLOWS 16
#define MAX_FNS 64
#define MAX_ARGS 16

struct applied {
    int flow; /* index into flows */
    int fid;
    const char *name;
};

static int flows[MAX_FLOWS];
static int flow_open[MAX_FLOWS];
static int nflows;
static int current; /* index of the current flow */
static struct applied fns[MAX_FNS];
static int nfns;
static char *dev;

/* Prints "ERR N" for the last MAPI error, closes everything. Returns 0 (the exit status). */
static int report_error(void)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    printf("ERR %d\n", err);
    fprintf(stderr, "mapi_refs: MAPI error %d: %s\n", err, msg);
    for (int i = 0; i < nflows; i++)
        if (flow_open[i])
            mapi_close_flow(flows[i]);
    mapi_delete_offline_device(dev);
    return 0;
}

/* Substitutes "@N" and "#J" in an argument into buf. Returns the argument to pass, or NULL
 * after printing why if N or J is out of range. */
static const char *substitute(const char *arg, char *buf, size_t len)
{
    if ((arg[0] == '@' || arg[0] == '#') && arg[1] != '\0') {
        char *end;
        long k = strtol(arg + 1, &end, 10);
        if (*end == '\0') {
            if (arg[0] == '@' && k >= 1 && k <= nflows) {
                snprintf(buf, len, "%d", flows[k - 1]);
                return buf;
            }
            if (arg[0] == '#' && k >= 1 && k <= nfns) {
                snprintf(buf, len, "%d", fns[k - 1].fid);
                return buf;
            }
            fprintf(stderr, "mapi_refs: no such flow or function: %s\n", arg);
            return NULL;
        }
    }
    return arg;
}

/* Prints the result line of applied function j (0-based). Returns 0, or 1 on a read error. */
static int print_result(int j)
{
    const struct applied *a = &fns[j];
    mapi_results_t *r = mapi_read_results(flows[a->flow], a->fid);
    if (r == NULL) {
        int err = last_error();
        fprintf(stderr, "mapi_refs: mapi_read_results(%s): error %d\n", a->name, err);
        return 1;
    }
    printf("fn %d %s", j + 1, a->name);
    if (strcmp(a->name, "STATS") == 0 && r->size == (int)sizeof(stats_t)) {
        stats_t s;
        memcpy(&s, r->res, sizeof s);
        printf(" count %llu sum %.3Lf sum2 %.3Lf max %.3f min %.3f", s.count, s.sum, s.sum2, s.max,
               s.min);
    } else if (strcmp(a->name, "DIST") == 0 && r->size >= (int)sizeof(dist_t)) {
        dist_t h;
        memcpy(&h, r->res, sizeof h);
        printf(" min %llu max %llu intervals %llu data", h.min, h.max, h.intervals);
        if ((size_t)r->size != sizeof(dist_t) + (h.intervals + 1) * sizeof(unsigned long long)) {
            printf(" BAD-SIZE %d\n", r->size);
            return 0;
        }
        for (unsigned long long i = 0; i <= h.intervals; i++) {
            unsigned long long v;
            memcpy(&v, (const char *)r->res + sizeof(dist_t) + i * sizeof v, sizeof v);
            printf(" %llu", v);
        }
    } else if (r->size == (int)sizeof(unsigned int)) {
        unsigned int v;
        memcpy(&v, r->res, sizeof v);
        printf(" %u", v);
    } else {
        for (int off = 0; off + 8 <= r->size; off += 8) {
            unsigned long long v;
            memcpy(&v, (const char *)r->res + off, sizeof v);
            printf(" %llu", v);
        }
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    double timeout = 60;
    int opt;

    while ((opt = getopt(argc, argv, "+t:")) != -1) {
        if (opt != 't') {
            fprintf(stderr, "usage: mapi_refs [-t SECONDS] TRACE COMMAND...\n");
            return 1;
        }
        timeout = atof(optarg);
    }
    if (argc - optind < 1) {
        fprintf(stderr, "usage: mapi_refs [-t SECONDS] TRACE COMMAND...\n");
        return 1;
    }
    dev = mapi_create_offline_device(argv[optind], MFF_PCAP);
    if (dev == NULL)
        fatal("mapi_create_offline_device");

    for (int i = optind + 1; i < argc;) {
        const char *cmd = argv[i];
        if (strcmp(cmd, "flow") == 0) {
            if (nflows == MAX_FLOWS) {
                fprintf(stderr, "mapi_refs: too many flows\n");
                return 1;
            }
            int fd = mapi_create_flow(dev);
            if (fd < 0)
                fatal("mapi_create_flow");
            flows[nflows] = fd;
            flow_open[nflows] = 1;
            current = nflows++;
            i++;
        } else if (strcmp(cmd, "use") == 0 && i + 1 < argc) {
            int k = atoi(argv[i + 1]);
            if (k < 1 || k > nflows) {
                fprintf(stderr, "mapi_refs: use %s: no such flow\n", argv[i + 1]);
                return 1;
            }
            current = k - 1;
            i += 2;
        } else if (strcmp(cmd, "close") == 0 && i + 1 < argc) {
            int k = atoi(argv[i + 1]);
            if (k < 1 || k > nflows || !flow_open[k - 1]) {
                fprintf(stderr, "mapi_refs: close %s: no such open flow\n", argv[i + 1]);
                return 1;
            }
            if (mapi_close_flow(flows[k - 1]) < 0)
                fatal("mapi_close_flow");
            flow_open[k - 1] = 0;
            i += 2;
        } else if (strcmp(cmd, "apply") == 0 && i + 2 < argc) {
            const char *name = argv[i + 1];
            int n = atoi(argv[i + 2]);
            char bufs[MAX_ARGS][32];
            char *args[MAX_ARGS];
            if (n < 0 || n > MAX_ARGS || i + 3 + n > argc || nflows == 0 || nfns == MAX_FNS) {
                fprintf(stderr, "mapi_refs: bad apply command\n");
                return 1;
            }
            for (int k = 0; k < n; k++) {
                const char *s = substitute(argv[i + 3 + k], bufs[k], sizeof bufs[k]);
                if (s == NULL)
                    return 1;
                args[k] = (char *)s;
            }
            int fid = mapi_apply_function_array(flows[current], name, args, n);
            if (fid < 0)
                return report_error();
            fns[nfns].flow = current;
            fns[nfns].fid = fid;
            fns[nfns].name = name;
            nfns++;
            i += 3 + n;
        } else {
            fprintf(stderr, "mapi_refs: bad command \"%s\"\n", cmd);
            return 1;
        }
    }

    for (int k = 0; k < nflows; k++)
        if (flow_open[k] && mapi_connect(flows[k]) < 0)
            return report_error();
    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    for (int k = 0; k < nflows; k++)
        if (flow_open[k] && wait_finished(flows[k], timeout) != 0)
            return 1;
    int rc = 0;
    for (int j = 0; j < nfns; j++)
        if (flow_open[fns[j].flow])
            rc |= print_result(j);
    for (int k = 0; k < nflows; k++)
        if (flow_open[k] && mapi_close_flow(flows[k]) < 0)
            fatal("mapi_close_flow");
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    return rc;
}
