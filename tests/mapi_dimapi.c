/*
 * tests/mapi_dimapi.c - test client of the three-sensor DiMAPI test (tests/test_dimapi.sh).
 * It runs in the test's client namespace; libmapi reaches the sensors' mapicommds over TLS
 * (configuration from $MAPI_CONF). Sensor I has the address 198.18.I.2 and the test sends it
 * UDP packets to port 9 from 198.18.I.1, each payload starting with a big-endian sequence
 * number counted per sensor (tests/dimapi_env.sh describes the test bed).
 *
 * Usage:
 *   mapi_dimapi traffic SCOPE TOTAL SECONDS
 *       flow 1: BPF_FILTER "udp and dst port 9", PKT_COUNTER, BYTE_COUNTER; flow 2: the same
 *       filter and TO_BUFFER(NOWAIT). Prints scope_size and is_remote, then "ready"; reads
 *       flow 2's packets until TOTAL arrived or SECONDS passed, counting them per sensor by
 *       source address; then reads flow 1's counters (one mapi_results_t per sensor) until
 *       they add up to the packets seen or 3 s passed. Prints "key value" lines, I = 1..n in
 *       scope order: pkts_I, bytes_I (flow 1), buf_I, bufbytes_I, bufseq_I (1 if the sequence
 *       numbers of sensor I came in order 0, 1, ...), buf_other (packets from no sensor),
 *       buf_total, pkts_total, longest_run (the longest run of packets handed out from one
 *       sensor; informational: how fair the hand-out was), stats_n (entries mapi_stats filled for
 * the scope) and stats_host_I. mapi_dimapi refuse SCOPE create_flow, PKT_COUNTER, connect and
 * read_results; the first call that fails is reported: "failed CALL", "errno N", "error TEXT",
 * "elapsed SECONDS". Exit status 0 if a call failed, 1 if all succeeded (prints "failed none").
 *   mapi_dimapi kill SCOPE_ALL SCOPE_OTHERS DIR
 *       A flow A over SCOPE_ALL and B over SCOPE_OTHERS (each PKT_COUNTER), connected and read
 *       once; prints "ready" (the test then kills a sensor of SCOPE_ALL that is not in
 *       SCOPE_OTHERS). Reads A every 20 ms until a call fails (at most 20 s): "fail_at T"
 *       (CLOCK_REALTIME seconds when it returned), "fail_ms" (how long the failing call took),
 *       "fail_errno", "fail_error TEXT". Then
 *       reads B ("others_ok 1" if it still works and gives scope-size entries), makes a new
 *       flow C over SCOPE_OTHERS ("new_ok 1"), prints "step2" and waits for the file
 *       DIR/go2 (the test restarted the sensor): a new flow over SCOPE_ALL ("restart_ok 1");
 *       prints "step3" and waits for DIR/go3 (the test stopped another sensor's mapicommd
 *       with SIGSTOP): reads C once: "hang_ms", "hang_errno", "hang_error TEXT". Ends with
 *       "done".
 * Exit status 1 on an unexpected MAPI error (message on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mapi.h>

#include "client_util.h"

#define MAX_SENSORS 16
#define UDP_PAYLOAD_OFF 42 /* Ethernet 14 + IPv4 20 + UDP 8 */

/* Seconds on CLOCK_REALTIME (comparable with the test script's date +%s.%N). */
static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sensor number I of a frame from 198.18.I.1 to 198.18.I.2, or 0 for anything else. */
static int sensor_of(const struct mapipkt *p)
{
    const unsigned char *f = &p->pkt;
    if (p->caplen < UDP_PAYLOAD_OFF || f[12] != 0x08 || f[13] != 0x00)
        return 0;
    const unsigned char *src = f + 26, *dst = f + 30;
    if (src[0] != 198 || src[1] != 18 || src[3] != 1 || dst[0] != 198 || dst[1] != 18 ||
        dst[2] != src[2] || dst[3] != 2)
        return 0;
    return src[2];
}

/* The 64-bit counter in a result entry, 0 if the entry is empty (a sensor that failed). */
static unsigned long long u64_of(const mapi_results_t *r)
{
    unsigned long long v = 0;
    if (r->res != NULL && r->size >= (int)sizeof v)
        memcpy(&v, r->res, sizeof v);
    return v;
}

/* The sensor number of scope entry i ("198.18.I.2:dev"): I, or i + 1 if the address differs. */
static void scope_sensors(const char *scope, int *num, int n)
{
    const char *p = scope;
    for (int i = 0; i < n; i++) {
        num[i] = i + 1;
        while (*p == ' ' || *p == ',')
            p++;
        unsigned a, b, c, d;
        if (sscanf(p, "%u.%u.%u.%u:", &a, &b, &c, &d) == 4 && a == 198 && b == 18)
            num[i] = (int)c;
        const char *comma = strchr(p, ',');
        if (comma == NULL)
            break;
        p = comma + 1;
    }
}

/* mapi_read_results over the scope; exits if it fails or leaves an error (a sensor failed). */
static mapi_results_t *read_all(int fd, int fid, const char *what)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    if (r == NULL || err != 0) {
        fprintf(stderr, "mapi_dimapi: %s: MAPI error %d: %s\n", what, err, msg);
        exit(1);
    }
    return r;
}

/* "traffic" (see the file comment). Returns the exit status; exits on MAPI errors. */
static int cmd_traffic(const char *scope, unsigned long long total, double secs)
{
    int fd1 = mapi_create_flow(scope);
    if (fd1 < 0)
        fatal("mapi_create_flow (counters)");
    if (mapi_apply_function(fd1, "BPF_FILTER", "udp and dst port 9") < 0)
        fatal("BPF_FILTER");
    int pk = mapi_apply_function(fd1, "PKT_COUNTER");
    int by = mapi_apply_function(fd1, "BYTE_COUNTER");
    if (pk < 0 || by < 0)
        fatal("counters");
    int fd2 = mapi_create_flow(scope);
    if (fd2 < 0)
        fatal("mapi_create_flow (TO_BUFFER)");
    if (mapi_apply_function(fd2, "BPF_FILTER", "udp and dst port 9") < 0)
        fatal("BPF_FILTER");
    int buf = mapi_apply_function(fd2, "TO_BUFFER", NOWAIT);
    if (buf < 0)
        fatal("TO_BUFFER");
    if (mapi_connect(fd1) < 0 || mapi_connect(fd2) < 0)
        fatal("mapi_connect");
    int n = mapi_get_scope_size(fd1);
    printf("scope_size %d\nis_remote %d\n", n, mapi_is_remote(fd1));
    if (n < 1 || n > MAX_SENSORS) {
        fprintf(stderr, "mapi_dimapi: scope size %d\n", n);
        return 1;
    }
    int num[MAX_SENSORS];
    scope_sensors(scope, num, n);
    printf("ready\n");
    fflush(stdout);

    /* sensor number -> counts (sensor numbers are < 256) */
    static unsigned long long got[256], gbytes[256], nextseq[256];
    static int seq_ok[256];
    for (int i = 0; i < 256; i++)
        seq_ok[i] = 1;
    unsigned long long all = 0, other = 0;
    /* fairness: the longest run of packets from one sensor */
    int last = -1;
    unsigned long long run = 0, longest = 0;
    double end = now() + secs;
    while (all < total && now() < end) {
        struct mapipkt *p = mapi_get_next_pkt(fd2, buf);
        if (p == NULL) {
            int err = 0;
            char msg[MAPI_ERRORSTR_LENGTH] = "";
            mapi_read_error(&err, msg);
            if (err != 0) {
                fprintf(stderr, "mapi_dimapi: mapi_get_next_pkt: MAPI error %d: %s\n", err, msg);
                return 1;
            }
            usleep(1000);
            continue;
        }
        all++;
        int s = sensor_of(p);
        if (s == 0) {
            other++;
            continue;
        }
        got[s]++;
        gbytes[s] += p->wlen;
        const unsigned char *d = &p->pkt + UDP_PAYLOAD_OFF;
        unsigned long long seq = 0;
        if (p->caplen >= UDP_PAYLOAD_OFF + 4)
            seq = ((unsigned long long)d[0] << 24) | ((unsigned long long)d[1] << 16) |
                  ((unsigned long long)d[2] << 8) | d[3];
        if (seq != nextseq[s])
            seq_ok[s] = 0;
        nextseq[s] = seq + 1;
        if (s == last) {
            run++;
        } else {
            last = s;
            run = 1;
        }
        if (run > longest)
            longest = run;
    }

    /* counters: the same packets, once the sensors have seen them */
    mapi_results_t *r = NULL;
    unsigned long long sum = 0;
    double settle = now() + 3;
    do {
        r = read_all(fd1, pk, "mapi_read_results (PKT_COUNTER)");
        sum = 0;
        for (int i = 0; i < n; i++)
            sum += u64_of(&r[i]);
        if (sum >= all - other)
            break;
        usleep(20000);
    } while (now() < settle);
    usleep(200000);
    r = read_all(fd1, pk, "mapi_read_results (PKT_COUNTER)");
    unsigned long long pkts[MAX_SENSORS], ptotal = 0;
    for (int i = 0; i < n; i++) {
        pkts[i] = u64_of(&r[i]);
        ptotal += pkts[i];
    }
    r = read_all(fd1, by, "mapi_read_results (BYTE_COUNTER)");
    for (int i = 0; i < n; i++) {
        int s = num[i] & 255;
        printf("pkts_%d %llu\nbytes_%d %llu\n", num[i], pkts[i], num[i], u64_of(&r[i]));
        printf("buf_%d %llu\nbufbytes_%d %llu\nbufseq_%d %d\n", num[i], got[s], num[i], gbytes[s],
               num[i], seq_ok[s]);
    }
    printf("buf_other %llu\nbuf_total %llu\npkts_total %llu\n", other, all, ptotal);
    printf("longest_run %llu\n", longest);

    struct mapi_stat st[MAX_SENSORS];
    memset(st, 0, sizeof st);
    int ns = mapi_stats(scope, st);
    printf("stats_n %d\n", ns);
    for (int i = 0; i < ns && i < n; i++)
        printf("stats_host_%d %s\nstats_recv_%d %u\n", num[i], st[i].hostname, num[i],
               st[i].ps_recv);
    if (ns < 0) {
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        mapi_read_error(&err, msg);
        printf("stats_error %d %s\n", err, msg);
    }
    if (mapi_close_flow(fd1) < 0 || mapi_close_flow(fd2) < 0)
        fatal("mapi_close_flow");
    return 0;
}

/* Prints the first failing call of a flow's life and how long it took (see the file comment). */
static int cmd_refuse(const char *scope)
{
    const char *call = "none";
    double t0 = now();
    int fd = mapi_create_flow(scope), fid = -1;
    if (fd < 0) {
        call = "mapi_create_flow";
    } else if ((fid = mapi_apply_function(fd, "PKT_COUNTER")) < 0) {
        call = "mapi_apply_function";
    } else if (mapi_connect(fd) < 0) {
        call = "mapi_connect";
    }
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    if (strcmp(call, "none") == 0) {
        /* over a scope the read returns the array and leaves a failed sensor's error */
        mapi_results_t *r = mapi_read_results(fd, fid);
        mapi_read_error(&err, msg);
        if (r == NULL || err != 0)
            call = "mapi_read_results";
    } else {
        mapi_read_error(&err, msg);
    }
    double el = now() - t0;
    printf("failed %s\nerrno %d\nerror %s\nelapsed %.3f\n", call, err, msg, el);
    if (fd >= 0)
        mapi_close_flow(fd);
    return strcmp(call, "none") == 0 ? 1 : 0;
}

/* A connected flow with PKT_COUNTER over scope; *fid gets the function. Exits on errors. */
static int counter_flow(const char *scope, int *fid, const char *what)
{
    int fd = mapi_create_flow(scope);
    if (fd < 0)
        fatal(what);
    *fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (*fid < 0 || mapi_connect(fd) < 0)
        fatal(what);
    return fd;
}

/* Waits up to 30 s for the file DIR/NAME. Returns 0, or 1. */
static int wait_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    double end = now() + 30;
    while (stat(path, &st) != 0) {
        if (now() > end) {
            fprintf(stderr, "mapi_dimapi: no %s after 30 s\n", path);
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

/*
 * One timed read of (fd, fid). Over a scope, mapi_read_results still returns the array when a
 * sensor is down (its entry empty) and leaves that sensor's error for mapi_read_error: a read
 * fails if it returns NULL or leaves an error. On failure prints PREFIX_at (CLOCK_REALTIME),
 * PREFIX_ms, PREFIX_errno and PREFIX_error and returns 1; 0 if it worked.
 */
static int timed_read(int fd, int fid, const char *prefix)
{
    double t0 = now();
    mapi_results_t *r = mapi_read_results(fd, fid);
    double ms = (now() - t0) * 1000;
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    if (r != NULL && err == 0)
        return 0;
    printf("%s_at %.3f\n%s_ms %.0f\n%s_errno %d\n%s_error %s\n", prefix, wall(), prefix, ms, prefix,
           err, prefix, msg);
    fflush(stdout);
    return 1;
}

/* "kill" (see the file comment). Returns the exit status; exits on MAPI errors. */
static int cmd_kill(const char *all, const char *others, const char *dir)
{
    int fa, fb, fc, fd, ia, ib, ic, id;
    fa = counter_flow(all, &ia, "flow A");
    fb = counter_flow(others, &ib, "flow B");
    if (timed_read(fa, ia, "first") || timed_read(fb, ib, "first"))
        return 1;
    printf("ready\n");
    fflush(stdout);

    double end = now() + 20;
    int failed = 0;
    while (!failed && now() < end) {
        failed = timed_read(fa, ia, "fail");
        usleep(20000);
    }
    if (!failed)
        printf("fail_at none\n");
    printf("others_ok %d\n", timed_read(fb, ib, "others") == 0);
    fflush(stdout);
    fc = mapi_create_flow(others);
    ic = fc < 0 ? -1 : mapi_apply_function(fc, "PKT_COUNTER");
    int new_ok = fc >= 0 && ic >= 0 && mapi_connect(fc) == 0 && timed_read(fc, ic, "new") == 0;
    printf("new_ok %d\n", new_ok);
    if (!new_ok)
        return 1;
    if (mapi_close_flow(fa) < 0)
        printf("close_dead_errno %d\n", last_error());
    printf("step2\n");
    fflush(stdout);

    if (wait_file(dir, "go2"))
        return 1;
    fd = mapi_create_flow(all);
    id = fd < 0 ? -1 : mapi_apply_function(fd, "PKT_COUNTER");
    int re_ok = fd >= 0 && id >= 0 && mapi_connect(fd) == 0 && timed_read(fd, id, "restart") == 0;
    printf("restart_ok %d\n", re_ok);
    if (fd >= 0)
        mapi_close_flow(fd);
    printf("step3\n");
    fflush(stdout);

    if (wait_file(dir, "go3"))
        return 1;
    if (timed_read(fc, ic, "hang") == 0)
        printf("hang_ms none\n");
    printf("done\n");
    fflush(stdout);
    /* the flows on the stopped sensor are left to the exit */
    (void)fb;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(argv[1], "traffic") == 0)
        return cmd_traffic(argv[2], strtoull(argv[3], NULL, 10), atof(argv[4]));
    if (argc == 3 && strcmp(argv[1], "refuse") == 0)
        return cmd_refuse(argv[2]);
    if (argc == 5 && strcmp(argv[1], "kill") == 0)
        return cmd_kill(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: mapi_dimapi traffic SCOPE TOTAL SECONDS | refuse SCOPE | "
                    "kill SCOPE_ALL SCOPE_OTHERS DIR\n");
    return 2;
}
