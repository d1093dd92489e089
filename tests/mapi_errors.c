/*
 * tests/mapi_errors.c - test client: provokes one error case of the MAPI API and checks the
 * error number that mapi_read_error() reports (and that reading it clears it).
 *
 * Usage: mapi_errors CASE [ARG]
 *   badbpf TRACE       BPF_FILTER with a bad expression              -> 1025
 *   nodev              mapi_create_flow on an unknown device           -> 3200
 *   nofunc TRACE       mapi_apply_function of an unknown function      -> 6144
 *   afterconnect TRACE mapi_apply_function on a connected flow         -> 7006
 *   notconnected TRACE mapi_read_results before mapi_connect           -> 6143
 *   badfd TRACE        calls on a flow descriptor that does not exist  -> 6145
 *   badfid TRACE       mapi_read_results with an unknown fid           -> 6147
 *   nofile PATH        mapi_create_offline_flow/_device, missing file  -> 6155
 *   unreadable PATH    the same with a file we may not read            -> 6155
 *   corrupt PATH       a damaged trace: the flow still reaches FLOW_FINISHED;
 *                      prints "pkts N" (the packets before the damage)
 *   badheader PATH     not a capture at all: creating (or connecting) the flow fails
 *   notrunning TRACE   no mapid at $MAPI_CONF's socket                  -> 5124 within 2 s
 * The expected numbers are written out as in the error table of the original MAPI.
 * Prints "ok: ..." or "FAIL: ..." lines; exit status 0 if every check of the case passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

static int failures;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Checks that the call failed (failed != 0) with error number `want`, and that reading the
 * error cleared it. */
static void expect(const char *what, int failed, int want)
{
    int err = 0, again = -1;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    mapi_read_error(&again, NULL);
    if (!failed) {
        printf("FAIL: %s: the call succeeded, expected error %d\n", what, want);
        failures++;
    } else if (err != want) {
        printf("FAIL: %s: error %d (%s), expected %d\n", what, err, msg, want);
        failures++;
    } else if (again != 0) {
        printf("FAIL: %s: error %d not cleared by mapi_read_error (second read gave %d)\n", what,
               want, again);
        failures++;
    } else if (msg[0] == '\0') {
        printf("FAIL: %s: error %d has no text\n", what, want);
        failures++;
    } else {
        printf("ok: %s: error %d (%s)\n", what, err, msg);
    }
}

static void must(const char *what, int ok)
{
    if (!ok) {
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        mapi_read_error(&err, msg);
        printf("FAIL: %s failed: MAPI error %d: %s\n", what, err, msg);
        exit(1);
    }
}

/* An offline flow on trace with a PKT_COUNTER; returns fd, the fid in *fid. */
static int counter_flow(const char *trace, int *fid)
{
    int fd = mapi_create_offline_flow(trace, MFF_PCAP);
    must("mapi_create_offline_flow", fd > 0);
    *fid = mapi_apply_function(fd, "PKT_COUNTER");
    must("PKT_COUNTER", *fid > 0);
    return fd;
}

/* Waits up to `secs` for FLOW_FINISHED. Returns 0, or -1 (timeout or error). */
static int wait_finished(int fd, double secs)
{
    double end = now() + secs;
    mapi_flow_info_t info;
    while (now() < end) {
        if (mapi_get_flow_info(fd, &info) < 0)
            return -1;
        if (info.status == FLOW_FINISHED)
            return 0;
        usleep(5000);
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mapi_errors CASE [ARG] (see the source)\n");
        return 2;
    }
    const char *c = argv[1];
    const char *arg = argc > 2 ? argv[2] : "";
    int fd, fid;

    if (strcmp(c, "badbpf") == 0) {
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        must("mapi_create_offline_flow", fd > 0);
        int rc = mapi_apply_function(fd, "BPF_FILTER", "tcp and and port 80 ((");
        if (rc >= 0) /* a library may compile the filter only at connect */
            rc = mapi_connect(fd);
        expect("BPF_FILTER with a syntax error", rc < 0, 1025);
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        must("mapi_create_offline_flow", fd > 0);
        rc = mapi_apply_function(fd, "BPF_FILTER", "port 99999999");
        if (rc >= 0)
            rc = mapi_connect(fd);
        expect("BPF_FILTER with a port out of range", rc < 0, 1025);
    } else if (strcmp(c, "nodev") == 0) {
        fd = mapi_create_flow("mapi-no-such-device0");
        expect("mapi_create_flow(unknown device)", fd < 0, 3200);
    } else if (strcmp(c, "nofunc") == 0) {
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        must("mapi_create_offline_flow", fd > 0);
        fid = mapi_apply_function(fd, "NO_SUCH_FUNCTION");
        expect("mapi_apply_function(NO_SUCH_FUNCTION)", fid < 0, 6144);
        /* the flow is still usable */
        must("PKT_COUNTER after the error", mapi_apply_function(fd, "PKT_COUNTER") > 0);
        must("mapi_connect after the error", mapi_connect(fd) == 0);
    } else if (strcmp(c, "afterconnect") == 0) {
        fd = counter_flow(arg, &fid);
        must("mapi_connect", mapi_connect(fd) == 0);
        int rc = mapi_apply_function(fd, "BYTE_COUNTER");
        expect("mapi_apply_function after mapi_connect", rc < 0, 7006);
    } else if (strcmp(c, "notconnected") == 0) {
        fd = counter_flow(arg, &fid);
        mapi_results_t *r = mapi_read_results(fd, fid);
        expect("mapi_read_results before mapi_connect", r == NULL, 6143);
    } else if (strcmp(c, "badfd") == 0) {
        mapi_flow_info_t info;
        fd = counter_flow(arg, &fid); /* the library is initialised and connected to mapid */
        int bad = fd + 1000;
        expect("mapi_connect(unknown fd)", mapi_connect(bad) < 0, 6145);
        expect("mapi_read_results(unknown fd)", mapi_read_results(bad, fid) == NULL, 6145);
        expect("mapi_close_flow(unknown fd)", mapi_close_flow(bad) < 0, 6145);
        expect("mapi_get_flow_info(unknown fd)", mapi_get_flow_info(bad, &info) < 0, 6145);
        must("mapi_close_flow", mapi_close_flow(fd) == 0);
        expect("mapi_connect(closed fd)", mapi_connect(fd) < 0, 6145);
    } else if (strcmp(c, "badfid") == 0) {
        fd = counter_flow(arg, &fid);
        must("mapi_connect", mapi_connect(fd) == 0);
        expect("mapi_read_results(unknown fid)", mapi_read_results(fd, fid + 1000) == NULL, 6147);
        must("mapi_read_results(good fid)", mapi_read_results(fd, fid) != NULL);
    } else if (strcmp(c, "nofile") == 0 || strcmp(c, "unreadable") == 0) {
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        expect("mapi_create_offline_flow", fd < 0, 6155);
        char *dev = mapi_create_offline_device(arg, MFF_PCAP);
        expect("mapi_create_offline_device", dev == NULL, 6155);
    } else if (strcmp(c, "corrupt") == 0) {
        fd = counter_flow(arg, &fid);
        must("mapi_connect", mapi_connect(fd) == 0);
        if (wait_finished(fd, 20) < 0) {
            printf("FAIL: the flow on a damaged trace did not reach FLOW_FINISHED in 20 s\n");
            return 1;
        }
        mapi_results_t *r = mapi_read_results(fd, fid);
        must("mapi_read_results", r != NULL);
        printf("pkts %llu\n", *(unsigned long long *)r->res);
        must("mapi_close_flow", mapi_close_flow(fd) == 0);
    } else if (strcmp(c, "badheader") == 0) {
        int err = 0;
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        if (fd >= 0) {
            fid = mapi_apply_function(fd, "PKT_COUNTER");
            if (fid < 0 || mapi_connect(fd) == 0) {
                printf("FAIL: a file that is not a capture was accepted\n");
                return 1;
            }
        }
        mapi_read_error(&err, NULL);
        if (err == 0) {
            printf("FAIL: the call failed without an error number\n");
            return 1;
        }
        printf("ok: not a capture: error %d\n", err);
    } else if (strcmp(c, "notrunning") == 0) {
        double t0 = now();
        fd = mapi_create_flow("eth0");
        double t1 = now();
        expect("mapi_create_flow without mapid", fd < 0, 5124);
        fd = mapi_create_offline_flow(arg, MFF_PCAP);
        double t2 = now();
        expect("mapi_create_offline_flow without mapid", fd < 0, 5124);
        if (t1 - t0 > 2 || t2 - t1 > 2) {
            printf("FAIL: the calls took %.2f s and %.2f s (limit 2 s)\n", t1 - t0, t2 - t1);
            failures++;
        } else {
            printf("ok: failed in %.3f s and %.3f s\n", t1 - t0, t2 - t1);
        }
    } else {
        fprintf(stderr, "mapi_errors: unknown case %s\n", c);
        return 2;
    }
    return failures ? 1 : 0;
}
