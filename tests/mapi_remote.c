/*
 * tests/mapi_remote.c - test client of tests/test_remote_loopback.sh: the remote (DiMAPI) back
 * end of libmapi against mapicommds that share one mapid.
 *
 * Usage:
 *   mapi_remote count SCOPE SHIFT_SCOPE UDPPORT N SECONDS
 *       Creates a flow on SHIFT_SCOPE first (so that the sensors' flow descriptors differ
 *       from ours and between sensors), then on SCOPE:
 *         flow A: BPF_FILTER "udp and dst port UDPPORT", PKT_COUNTER, BYTE_COUNTER,
 *                 TO_BUFFER(NOWAIT)
 *         flow B: BPF_FILTER (same), PKT_COUNTER, BINOP(ADD, A, A's PKT_COUNTER, B, B's
 *                 PKT_COUNTER)   (flow and function references translated per sensor)
 *       prints "ready", then reads results every 50 ms and drains A's TO_BUFFER until every
 *       sensor counted N, the packets add up to scope_size * N and BINOP to 2N, or SECONDS
 *       passed. Prints "key value" lines: scope_size, is_remote, pkts_I, bytes_I, binop_I
 *       (per sensor I), buf_pkts, buf_bytes (wire lengths), flow_info_ok, fninfo_pkts (summed
 *       FUNCTION_INFO of A's PKT_COUNTER), stats_n (mapi_stats over SCOPE), read_ms_max and
 *       read_ms_avg (mapi_read_results round trips).
 *   mapi_remote fail SCOPE
 *       Expects mapi_create_flow(SCOPE) to fail: prints "errno N", "elapsed_ms T" and
 *       "msg TEXT" (exit 0), or "created" (exit 1).
 *   mapi_remote kill SCOPE UDPPORT
 *       Two-sensor scope; connects flow A as above (without TO_BUFFER), prints "ready", waits
 *       for a line on stdin (the test kills the second sensor's mapicommd meanwhile), then
 *       calls mapi_read_results and prints "res_ok 1|0", "size_0", "size_1", "err N",
 *       "errmsg TEXT", "elapsed_ms T"; then a second read ("again_size_0"), and the close
 *       ("close_rc", "close_err").
 *   mapi_remote threads SCOPE UDPPORT N SECONDS
 *       Flow with BPF_FILTER, PKT_COUNTER and TO_BUFFER(WAIT); a second thread blocks in
 *       mapi_get_next_pkt counting packets while the main thread, after "ready", polls
 *       mapi_read_results (which must not be starved by the blocked reader) until every sensor
 *       counted N, waits for the reader to have scope_size * N packets, then closes the flow:
 *       the reader must return NULL with 6145. Prints "thread_pkts", "counts_ok", "thread_err",
 *       "close_ms" (time until the reader returned), "read_ms_max".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mapi.h>
#include <mapi/binop.h>

#include "client_util.h"

static double ms_since(double t0)
{
    return (now() - t0) * 1000.0;
}

static int apply_or_die(int fid, const char *what)
{
    if (fid < 0)
        fatal(what);
    return fid;
}

static int do_count(const char *scope, const char *shift, int port, unsigned long long n,
                    double seconds)
{
    char filter[64];
    snprintf(filter, sizeof(filter), "udp and dst port %d", port);
    int dummy = mapi_create_flow(shift);
    if (dummy < 0)
        fatal("mapi_create_flow(shift)");
    int a = mapi_create_flow(scope);
    if (a < 0)
        fatal("mapi_create_flow(A)");
    apply_or_die(mapi_apply_function(a, "BPF_FILTER", filter), "BPF_FILTER A");
    int a_pkts = apply_or_die(mapi_apply_function(a, "PKT_COUNTER"), "PKT_COUNTER A");
    int a_bytes = apply_or_die(mapi_apply_function(a, "BYTE_COUNTER"), "BYTE_COUNTER A");
    int a_buf = apply_or_die(mapi_apply_function(a, "TO_BUFFER", NOWAIT), "TO_BUFFER A");
    int b = mapi_create_flow(scope);
    if (b < 0)
        fatal("mapi_create_flow(B)");
    apply_or_die(mapi_apply_function(b, "BPF_FILTER", filter), "BPF_FILTER B");
    int b_pkts = apply_or_die(mapi_apply_function(b, "PKT_COUNTER"), "PKT_COUNTER B");
    int b_sum =
        apply_or_die(mapi_apply_function(b, "BINOP", BINOP_ADD, a, a_pkts, b, b_pkts), "BINOP B");
    if (mapi_connect(a) < 0)
        fatal("mapi_connect(A)");
    if (mapi_connect(b) < 0)
        fatal("mapi_connect(B)");
    int size = mapi_get_scope_size(a);
    printf("scope_size %d\nis_remote %d\n", size, mapi_is_remote(a));
    printf("ready\n");
    fflush(stdout);

    unsigned long long *pk = calloc((size_t)size, sizeof(*pk));
    unsigned long long *by = calloc((size_t)size, sizeof(*by));
    unsigned long long *sum = calloc((size_t)size, sizeof(*sum));
    unsigned long long buf_pkts = 0, buf_bytes = 0;
    double read_max = 0, read_total = 0;
    int reads = 0;
    double end = now() + seconds;
    for (;;) {
        struct mapipkt *p;
        while ((p = mapi_get_next_pkt(a, a_buf)) != NULL) {
            buf_pkts++;
            buf_bytes += p->wlen;
        }
        if (last_error())
            fatal("mapi_get_next_pkt");
        double t0 = now();
        mapi_results_t *rp = mapi_read_results(a, a_pkts);
        double dt = ms_since(t0);
        if (!rp)
            fatal("mapi_read_results(pkts)");
        read_total += dt;
        reads++;
        if (dt > read_max)
            read_max = dt;
        int done = 1;
        for (int i = 0; i < size; i++) {
            pk[i] = rp[i].size == 8 ? *(unsigned long long *)rp[i].res : 0;
            done &= pk[i] == n;
        }
        mapi_results_t *rb = mapi_read_results(a, a_bytes);
        mapi_results_t *rs = mapi_read_results(b, b_sum);
        if (!rb || !rs)
            fatal("mapi_read_results");
        for (int i = 0; i < size; i++) {
            by[i] = rb[i].size == 8 ? *(unsigned long long *)rb[i].res : 0;
            sum[i] = rs[i].size == 8 ? *(unsigned long long *)rs[i].res : 0;
            done &= sum[i] == 2 * n;
        }
        done &= buf_pkts == (unsigned long long)size * n;
        if (done || now() > end)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < size; i++)
        printf("pkts_%d %llu\nbytes_%d %llu\nbinop_%d %llu\n", i, pk[i], i, by[i], i, sum[i]);
    printf("buf_pkts %llu\nbuf_bytes %llu\n", buf_pkts, buf_bytes);
    mapi_flow_info_t fi;
    printf("flow_info_ok %d\n", mapi_get_flow_info(a, &fi) == 0 && fi.fd == a &&
                                    fi.num_functions == 4 && fi.status == FLOW_ACTIVE);
    mapi_function_info_t fn;
    if (mapi_get_function_info(a, a_pkts, &fn) < 0)
        fatal("mapi_get_function_info");
    printf("fninfo_name %s\nfninfo_pkts %llu\n", fn.name, fn.pkts);
    struct mapi_stat *st = calloc((size_t)size, sizeof(*st));
    int ns = mapi_stats(scope, st);
    if (ns < 0)
        fatal("mapi_stats");
    printf("stats_n %d\n", ns);
    printf("read_ms_max %.1f\nread_ms_avg %.2f\n", read_max, reads ? read_total / reads : 0.0);
    if (mapi_close_flow(b) < 0 || mapi_close_flow(a) < 0 || mapi_close_flow(dummy) < 0)
        fatal("mapi_close_flow");
    printf("closed 1\n");
    free(pk);
    free(by);
    free(sum);
    free(st);
    return 0;
}

static int do_fail(const char *scope)
{
    double t0 = now();
    int fd = mapi_create_flow(scope);
    double dt = ms_since(t0);
    if (fd >= 0) {
        printf("created\n");
        return 1;
    }
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&err, msg);
    printf("errno %d\nelapsed_ms %.0f\nmsg %s\n", err, dt, msg);
    return 0;
}

static int do_kill(const char *scope, int port)
{
    char filter[64];
    snprintf(filter, sizeof(filter), "udp and dst port %d", port);
    int a = mapi_create_flow(scope);
    if (a < 0)
        fatal("mapi_create_flow");
    apply_or_die(mapi_apply_function(a, "BPF_FILTER", filter), "BPF_FILTER");
    int fid = apply_or_die(mapi_apply_function(a, "PKT_COUNTER"), "PKT_COUNTER");
    if (mapi_connect(a) < 0)
        fatal("mapi_connect");
    if (!mapi_read_results(a, fid))
        fatal("mapi_read_results before");
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof(line), stdin))
        return 1;
    double t0 = now();
    mapi_results_t *r = mapi_read_results(a, fid);
    double dt = ms_since(t0);
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&err, msg);
    printf("res_ok %d\n", r != NULL);
    if (r)
        printf("size_0 %d\nsize_1 %d\n", r[0].size, r[1].size);
    printf("err %d\nerrmsg %s\nelapsed_ms %.0f\n", err, msg, dt);
    r = mapi_read_results(a, fid);
    printf("again_size_0 %d\n", r ? r[0].size : -1);
    int rc = mapi_close_flow(a);
    err = 0;
    mapi_read_error(&err, NULL);
    printf("close_rc %d\nclose_err %d\n", rc, err);
    return 0;
}

struct reader {
    int fd, fid;
    unsigned long long pkts; /* atomic */
    int err;
};

static void *reader_main(void *p)
{
    struct reader *r = p;
    while (mapi_get_next_pkt(r->fd, r->fid) != NULL)
        __atomic_add_fetch(&r->pkts, 1, __ATOMIC_RELAXED);
    r->err = last_error();
    return NULL;
}

static int do_threads(const char *scope, int port, unsigned long long n, double seconds)
{
    char filter[64];
    snprintf(filter, sizeof(filter), "udp and dst port %d", port);
    int a = mapi_create_flow(scope);
    if (a < 0)
        fatal("mapi_create_flow");
    apply_or_die(mapi_apply_function(a, "BPF_FILTER", filter), "BPF_FILTER");
    int cnt = apply_or_die(mapi_apply_function(a, "PKT_COUNTER"), "PKT_COUNTER");
    int buf = apply_or_die(mapi_apply_function(a, "TO_BUFFER", WAIT), "TO_BUFFER");
    if (mapi_connect(a) < 0)
        fatal("mapi_connect");
    int size = mapi_get_scope_size(a);
    struct reader rd = {a, buf, 0, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, reader_main, &rd) != 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    double end = now() + seconds, read_max = 0;
    int ok = 0;
    while (now() < end) {
        double t0 = now();
        mapi_results_t *r = mapi_read_results(a, cnt);
        double dt = ms_since(t0);
        if (dt > read_max)
            read_max = dt;
        if (!r)
            fatal("mapi_read_results");
        ok = 1;
        for (int i = 0; i < size; i++)
            ok &= r[i].size == 8 && *(unsigned long long *)r[i].res == n;
        if (ok && __atomic_load_n(&rd.pkts, __ATOMIC_RELAXED) >= (unsigned long long)size * n)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    double t0 = now();
    mapi_close_flow(a);
    pthread_join(t, NULL);
    printf("thread_pkts %llu\ncounts_ok %d\nthread_err %d\nclose_ms %.0f\nread_ms_max %.1f\n",
           rd.pkts, ok, rd.err, ms_since(t0), read_max);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 7 && strcmp(argv[1], "count") == 0)
        return do_count(argv[2], argv[3], atoi(argv[4]), strtoull(argv[5], NULL, 10),
                        atof(argv[6]));
    if (argc == 3 && strcmp(argv[1], "fail") == 0)
        return do_fail(argv[2]);
    if (argc == 6 && strcmp(argv[1], "threads") == 0)
        return do_threads(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10), atof(argv[5]));
    if (argc == 4 && strcmp(argv[1], "kill") == 0)
        return do_kill(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: mapi_remote count SCOPE SHIFT_SCOPE UDPPORT N SECONDS\n"
                    "       mapi_remote fail SCOPE\n"
                    "       mapi_remote kill SCOPE UDPPORT\n"
                    "       mapi_remote threads SCOPE UDPPORT N SECONDS\n");
    return 2;
}
