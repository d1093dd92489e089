/*
 * tests/mapi_anontest.c - test client of anonflib: applies a list of ANONYMIZE rules (and
 * optionally other functions) to an offline flow and writes the result with TO_FILE.
 *
 * Usage: mapi_anontest [-F FORMAT] [-p PLAIN_OUT] [-P PLAIN_OUT] TRACE OUT ITEM...
 *   TRACE    a pcap/pcapng trace (read as MFF_PCAP)
 *   OUT      the file TO_FILE writes (FORMAT: TO_FILE's format number, default 0 = MFF_PCAP)
 *   ITEM     "PROTO,FIELD,FUNCTION[,PARAMS]": one ANONYMIZE call with that string;
 *            "=FUNC": FUNC without arguments (e.g. =PRINT_PACKET);
 *            "=FUNC:ARG": FUNC with one string argument (e.g. =BPF_FILTER:tcp).
 *   -p FILE  also open a second flow on the same trace device, created BEFORE the anonymising
 *            one, with only TO_FILE FORMAT FILE (it must see the original packets);
 *   -P FILE  the same, created AFTER the anonymising flow.
 *
 * The items are applied in order, then TO_FILE; the device starts once every flow is
 * connected; the client waits (up to 50 s) for FLOW_FINISHED, closes the flows and prints
 * "ok PACKETS" (PKT_COUNTER of the anonymising flow after its rules). If an item fails, it
 * prints "ERR INDEX ERRNO MESSAGE" (INDEX counts items from 1) and exits 0, so that scripts can
 * check the error code and the message. Exit status 1 on any other error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mapi.h>

#include "client_util.h"

/* Applies one ITEM (see the file comment) to flow fd. Returns the fid, or -1 on a MAPI error
 * (the error is left for mapi_read_error). */
static int apply_item(int fd, const char *item)
{
    if (item[0] != '=')
        return mapi_apply_function(fd, "ANONYMIZE", item);
    char name[128];
    const char *colon = strchr(item + 1, ':');
    size_t len = colon ? (size_t)(colon - item - 1) : strlen(item + 1);
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, item + 1, len);
    name[len] = '\0';
    if (colon)
        return mapi_apply_function(fd, name, colon + 1);
    return mapi_apply_function(fd, name);
}

/* Creates the plain flow (TO_FILE only) on dev. Returns its fd; exits on a MAPI error. */
static int plain_flow(const char *dev, int format, const char *out)
{
    int fd = mapi_create_flow(dev);
    if (fd < 0)
        fatal("mapi_create_flow (plain)");
    if (mapi_apply_function(fd, "TO_FILE", format, out, 0ULL) < 0)
        fatal("TO_FILE (plain)");
    if (mapi_connect(fd) < 0)
        fatal("mapi_connect (plain)");
    return fd;
}

int main(int argc, char **argv)
{
    int format = 0, opt;
    const char *plain_before = NULL, *plain_after = NULL;
    while ((opt = getopt(argc, argv, "F:p:P:")) != -1) {
        switch (opt) {
        case 'F':
            format = (int)strtol(optarg, NULL, 0);
            break;
        case 'p':
            plain_before = optarg;
            break;
        case 'P':
            plain_after = optarg;
            break;
        default:
            return 1;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, "usage: mapi_anontest [-F FORMAT] [-p|-P PLAIN_OUT] TRACE OUT ITEM...\n");
        return 1;
    }
    const char *trace = argv[optind], *out = argv[optind + 1];
    char *dev;
    int plain1 = -1, plain2 = -1;

    dev = mapi_create_offline_device(trace, MFF_PCAP);
    if (dev == NULL)
        fatal("mapi_create_offline_device");
    if (plain_before)
        plain1 = plain_flow(dev, format, plain_before);
    int fd = mapi_create_flow(dev);
    if (fd < 0)
        fatal("mapi_create_flow");
    for (int i = optind + 2; i < argc; i++) {
        if (apply_item(fd, argv[i]) < 0) {
            int err = 0;
            char msg[MAPI_ERRORSTR_LENGTH] = "";
            mapi_read_error(&err, msg);
            printf("ERR %d %d %s\n", i - optind - 1, err, msg);
            mapi_close_flow(fd);
            if (plain1 >= 0)
                mapi_close_flow(plain1);
            mapi_delete_offline_device(dev);
            return 0;
        }
    }
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0)
        fatal("PKT_COUNTER");
    if (mapi_apply_function(fd, "TO_FILE", format, out, 0ULL) < 0)
        fatal("TO_FILE");
    if (mapi_connect(fd) < 0)
        fatal("mapi_connect");
    if (plain_after)
        plain2 = plain_flow(dev, format, plain_after);

    if (mapi_start_offline_device(dev) < 0)
        fatal("mapi_start_offline_device");
    if (wait_finished(fd, 50) != 0)
        return 1;
    if (plain1 >= 0 && wait_finished(plain1, 50) != 0)
        return 1;
    if (plain2 >= 0 && wait_finished(plain2, 50) != 0)
        return 1;
    mapi_results_t *r = mapi_read_results(fd, cnt);
    if (r == NULL || r->size < (int)sizeof(unsigned long long))
        fatal("mapi_read_results(PKT_COUNTER)");
    unsigned long long pkts = *(unsigned long long *)r->res;
    if (mapi_close_flow(fd) < 0)
        fatal("mapi_close_flow");
    if (plain1 >= 0 && mapi_close_flow(plain1) < 0)
        fatal("mapi_close_flow (plain)");
    if (plain2 >= 0 && mapi_close_flow(plain2) < 0)
        fatal("mapi_close_flow (plain)");
    if (mapi_delete_offline_device(dev) < 0)
        fatal("mapi_delete_offline_device");
    printf("ok %llu\n", pkts);
    return 0;
}
