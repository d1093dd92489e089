/*
 * tests/mapi_cpan.c - test and benchmark client of address anonymisation: runs a chain of
 * functions given on the command line (ANONYMIZEIP, ANONYMIZE, BPF_FILTER, ...) followed by
 * TO_FILE on one or more offline flows of a trace, through mapid.
 *
 * Usage: mapi_cpan [-n FLOWS] [-t TIMEOUT] TRACE OUT -F NAME [ARG...] [-F NAME [ARG...]]...
 *   TRACE    a pcap/pcapng trace (read as MFF_PCAP)
 *   OUT      the pcap file TO_FILE writes; with -n FLOWS > 1, flow i (0-based) writes OUT.i
 *   -F       starts a function: its name, then its arguments as strings (converted by
 *            mapi_apply_function_array according to the function's argument descriptor)
 *   -n       number of flows (each its own offline device on TRACE), all connected before
 *            any is waited for, so they run at the same time (default 1)
 *   -t       seconds to wait for each flow to finish (default 60)
 *
 * Each flow gets the functions in order, then TO_FILE MFF_PCAP OUT 0. Output: for every
 * ANONYMIZEIP applied, one line "ANONYMIZEIP FLOW COUNT" (its result, the packets
 * anonymised), then "done". If applying a function fails it prints "ERR NAME NUMBER MESSAGE"
 * and exits 0 (the error tests read it). Exit status 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mapi.h>

#include "client_util.h"

#define MAX_FLOWS 16
#define MAX_FUNCS 32

struct func {
    const char *name;
    char **args;
    int nargs;
};

int main(int argc, char **argv)
{
    int nflows = 1;
    double timeout = 60;
    int i = 1;
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-F") != 0) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nflows = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            timeout = atof(argv[i + 1]);
        else
            break;
        i += 2;
    }
    if (argc - i < 4 || strcmp(argv[i + 2], "-F") != 0 || nflows < 1 || nflows > MAX_FLOWS) {
        fprintf(stderr, "usage: mapi_cpan [-n FLOWS] [-t TIMEOUT] TRACE OUT -F NAME [ARG...]...\n");
        return 1;
    }
    const char *trace = argv[i], *out = argv[i + 1];
    struct func funcs[MAX_FUNCS];
    int nfuncs = 0;
    for (i += 2; i < argc;) {
        /* argv[i] is "-F" */
        if (i + 1 >= argc || nfuncs == MAX_FUNCS) {
            fprintf(stderr, "mapi_cpan: -F without a name, or too many functions\n");
            return 1;
        }
        struct func *f = &funcs[nfuncs++];
        f->name = argv[i + 1];
        f->args = &argv[i + 2];
        f->nargs = 0;
        for (i += 2; i < argc && strcmp(argv[i], "-F") != 0; i++)
            f->nargs++;
    }

    int fds[MAX_FLOWS], anon_fid[MAX_FLOWS];
    for (int k = 0; k < nflows; k++) {
        fds[k] = mapi_create_offline_flow(trace, MFF_PCAP);
        if (fds[k] < 0)
            fatal("mapi_create_offline_flow");
        anon_fid[k] = 0;
        for (int j = 0; j < nfuncs; j++) {
            int fid =
                mapi_apply_function_array(fds[k], funcs[j].name, funcs[j].args, funcs[j].nargs);
            if (fid < 0) {
                int err = 0;
                char msg[MAPI_ERRORSTR_LENGTH] = "";
                mapi_read_error(&err, msg);
                printf("ERR %s %d %s\n", funcs[j].name, err, msg);
                return 0;
            }
            if (strcmp(funcs[j].name, "ANONYMIZEIP") == 0)
                anon_fid[k] = fid;
        }
        char path[4096];
        if (nflows == 1)
            snprintf(path, sizeof(path), "%s", out);
        else
            snprintf(path, sizeof(path), "%s.%d", out, k);
        if (mapi_apply_function(fds[k], "TO_FILE", MFF_PCAP, path, 0ULL) < 0)
            fatal("TO_FILE");
    }
    for (int k = 0; k < nflows; k++)
        if (mapi_connect(fds[k]) < 0)
            fatal("mapi_connect");
    for (int k = 0; k < nflows; k++) {
        if (wait_finished(fds[k], timeout) != 0)
            return 1;
        if (anon_fid[k] > 0) {
            mapi_results_t *r = mapi_read_results(fds[k], anon_fid[k]);
            if (r == NULL || r->size != (int)sizeof(unsigned long long))
                fatal("mapi_read_results(ANONYMIZEIP)");
            printf("ANONYMIZEIP %d %llu\n", k, *(unsigned long long *)r->res);
        }
    }
    for (int k = 0; k < nflows; k++)
        if (mapi_close_flow(fds[k]) < 0)
            fatal("mapi_close_flow");
    printf("done\n");
    return 0;
}
