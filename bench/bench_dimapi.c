/*
 * bench/bench_dimapi.c - client of the DiMAPI benchmark (bench/dimapi.sh): the cost of
 * mapi_read_results over a scope of remote sensors, and the rate at which packets reach a
 * remote application through TO_BUFFER and mapi_get_next_pkt, beside the same for a local flow
 * (the scope is then a device of the local mapid). MAPI_CONF names libmapi's configuration
 * (for remote scopes: the CA, the client certificate, or dimapi_plaintext=1).
 *
 * Usage:
 *   bench_dimapi latency [-n READS] [-w WARMUP] [-s] SCOPE
 *       One flow over SCOPE with PKT_COUNTER, connected; WARMUP reads (default 200), then READS
 *       (default 2000) reads timed one by one. With -s, one flow per item of SCOPE instead,
 *       and each timed step reads them one after the other (N sequential round trips, what a
 *       scope read would cost without the parallel requests). Prints one line: "latency
 *       sensors S flows F reads N median_us X p90_us X p99_us X mean_us X min_us X max_us X".
 *       A read that fails or leaves an error (a sensor failed) ends the program.
 *   bench_dimapi deliver -p PKTS -g GOFILE [-t SECONDS] SCOPE
 *       One flow over SCOPE with PKT_COUNTER and TO_BUFFER(NOWAIT), connected; prints
 *       "ready", waits for the file GOFILE (the script has sent the packets into the sensor's
 *       interface meanwhile) and then until PKT_COUNTER says mapid has processed PKTS packets
 *       (so they all wait in the sensor's TO_BUFFER ring); then the clock starts and it drains
 *       the flow with mapi_get_next_pkt until PKTS packets arrived (a NULL return just means
 *       none is there yet; it retries after 20 us). Stops after SECONDS (default 120) or 3 s
 *       without a packet. Prints "deliver pkts N bytes B secs S pps X mbps X drops D" (secs:
 *       from the start of the clock to the last packet; bytes: caplen; drops: ps_drop +
 *       ps_ifdrop of mapi_stats over the scope). Exit status 1 if fewer or more than PKTS
 *       arrived (a wrong answer is not timed).
 * Exit status 1 on a MAPI error (message on stderr), 2 on a usage error.
 */
#include "bench.h"

#include <sys/stat.h>

#define MAX_SCOPE 64

/* qsort order of doubles. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Splits scope at the commas into at most max trimmed items (malloc'd). Returns the count. */
static int split_scope(const char *scope, char **items, int max)
{
    int n = 0;
    const char *p = scope;
    while (*p != '\0' && n < max) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0)
            items[n++] = strndup(p, len);
        p += strcspn(p, ",");
    }
    return n;
}

/* A connected flow over scope with PKT_COUNTER (*fid). Exits on an error. */
static int counter_flow(const char *scope, int *fid)
{
    int fd = mapi_create_flow(scope);
    if (fd < 0)
        bench_die_mapi("mapi_create_flow");
    *fid = mapi_apply_function(fd, "PKT_COUNTER");
    if (*fid < 0)
        bench_die_mapi("PKT_COUNTER");
    if (mapi_connect(fd) < 0)
        bench_die_mapi("mapi_connect");
    return fd;
}

/* One mapi_read_results; exits if it fails or leaves an error (a sensor of the scope failed). */
static void read_once(int fd, int fid)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    if (r == NULL || err != 0)
        bench_die("mapi_read_results: MAPI error %d: %s", err, msg);
}

/*
 * Times reads over scope: one flow over the whole scope, or with sequential != 0 one flow
 * per scope item, read one after the other (what N round trips in a row cost).
 */
static int cmd_latency(int reads, int warmup, int sequential, const char *scope)
{
    char *items[MAX_SCOPE];
    int fds[MAX_SCOPE], fids[MAX_SCOPE], nflows, n;
    if (sequential) {
        nflows = split_scope(scope, items, MAX_SCOPE);
        for (int k = 0; k < nflows; k++)
            fds[k] = counter_flow(items[k], &fids[k]);
        n = nflows;
    } else {
        nflows = 1;
        fds[0] = counter_flow(scope, &fids[0]);
        n = mapi_get_scope_size(fds[0]);
    }
    for (int i = 0; i < warmup; i++)
        for (int k = 0; k < nflows; k++)
            read_once(fds[k], fids[k]);
    double *us = malloc((size_t)reads * sizeof *us);
    if (us == NULL)
        bench_die("out of memory");
    double sum = 0;
    for (int i = 0; i < reads; i++) {
        uint64_t t0 = bench_now_ns();
        for (int k = 0; k < nflows; k++)
            read_once(fds[k], fids[k]);
        us[i] = (double)(bench_now_ns() - t0) / 1e3;
        sum += us[i];
    }
    qsort(us, (size_t)reads, sizeof *us, cmp_double);
    printf("latency sensors %d flows %d reads %d median_us %.2f p90_us %.2f p99_us %.2f "
           "mean_us %.2f min_us %.2f max_us %.2f\n",
           n, nflows, reads, us[reads / 2], us[(int)(reads * 0.9)], us[(int)(reads * 0.99)],
           sum / reads, us[0], us[reads - 1]);
    free(us);
    for (int k = 0; k < nflows; k++) {
        if (mapi_close_flow(fds[k]) < 0)
            bench_die_mapi("mapi_close_flow");
        if (sequential)
            free(items[k]);
    }
    return 0;
}

/* "deliver" (see the file comment). Returns the exit status (1: not PKTS packets). */
static int cmd_deliver(long long want, const char *gofile, double secs, const char *scope)
{
    int fd = mapi_create_flow(scope);
    if (fd < 0)
        bench_die_mapi("mapi_create_flow");
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0)
        bench_die_mapi("PKT_COUNTER");
    int fid = mapi_apply_function(fd, "TO_BUFFER", NOWAIT);
    if (fid < 0)
        bench_die_mapi("TO_BUFFER");
    if (mapi_connect(fd) < 0)
        bench_die_mapi("mapi_connect");
    printf("ready\n");
    fflush(stdout);

    struct stat st;
    uint64_t deadline = bench_now_ns() + (uint64_t)(secs * 1e9);
    while (stat(gofile, &st) != 0) {
        if (bench_now_ns() > deadline)
            bench_die("no %s after %.0f s", gofile, secs);
        usleep(1000);
    }
    /* every packet through mapid's processing (so in the TO_BUFFER ring) before the clock
     * starts: PKT_COUNTER runs just before TO_BUFFER */
    unsigned long long seen = 0;
    while (want >= 0 && seen < (unsigned long long)want) {
        mapi_results_t *r = mapi_read_results(fd, cnt);
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        mapi_read_error(&err, msg);
        if (r == NULL || err != 0)
            bench_die("mapi_read_results: MAPI error %d: %s", err, msg);
        if (r->size >= (int)sizeof seen)
            memcpy(&seen, r->res, sizeof seen);
        if (seen >= (unsigned long long)want)
            break;
        if (bench_now_ns() > deadline)
            bench_die("mapid processed %llu of %lld packets after %.0f s", seen, want, secs);
        usleep(10000);
    }
    uint64_t t0 = bench_now_ns(), last = t0;
    unsigned long long pkts = 0, bytes = 0;
    while (want < 0 || pkts < (unsigned long long)want) {
        struct mapipkt *p = mapi_get_next_pkt(fd, fid);
        uint64_t now = bench_now_ns();
        if (p == NULL) {
            int err = 0;
            char msg[MAPI_ERRORSTR_LENGTH] = "";
            mapi_read_error(&err, msg);
            if (err != 0)
                bench_die("mapi_get_next_pkt: MAPI error %d: %s", err, msg);
            if (now > deadline || now - last > 3000000000u)
                break;
            usleep(20);
            continue;
        }
        pkts++;
        bytes += p->caplen;
        last = now;
    }
    double s = (double)(last - t0) / 1e9;
    struct mapi_stat stats[MAX_SCOPE];
    memset(stats, 0, sizeof stats);
    unsigned long long drops = 0;
    int ns = mapi_stats(scope, stats);
    for (int i = 0; i < ns && i < MAX_SCOPE; i++)
        drops += (unsigned long long)stats[i].ps_drop + stats[i].ps_ifdrop;
    printf("deliver pkts %llu bytes %llu secs %.4f pps %.0f mbps %.1f drops %llu\n", pkts, bytes, s,
           s > 0 ? (double)pkts / s : 0, s > 0 ? (double)bytes * 8 / s / 1e6 : 0, drops);
    mapi_close_flow(fd);
    return bench_check("packets", pkts, want);
}

int main(int argc, char **argv)
{
    bench_prog = "bench_dimapi";
    if (argc < 2)
        goto usage;
    const char *mode = argv[1];
    int reads = 2000, warmup = 200, sequential = 0;
    long long want = -1;
    const char *gofile = NULL;
    double secs = 120;
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "n:w:sp:g:t:")) != -1) {
        switch (opt) {
        case 's':
            sequential = 1;
            break;
        case 'n':
            reads = atoi(optarg);
            break;
        case 'w':
            warmup = atoi(optarg);
            break;
        case 'p':
            want = bench_parse_count(optarg);
            break;
        case 'g':
            gofile = optarg;
            break;
        case 't':
            secs = atof(optarg);
            break;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc)
        goto usage;
    if (strcmp(mode, "latency") == 0 && reads > 0 && warmup >= 0)
        return cmd_latency(reads, warmup, sequential, argv[optind]);
    if (strcmp(mode, "deliver") == 0 && gofile != NULL && secs > 0)
        return cmd_deliver(want, gofile, secs, argv[optind]);
usage:
    fprintf(stderr, "usage: bench_dimapi latency [-n READS] [-w WARMUP] [-s] SCOPE\n"
                    "       bench_dimapi deliver -p PKTS -g GOFILE [-t SECONDS] SCOPE\n");
    return 2;
}
