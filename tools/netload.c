/*
 * tools/netload.c - prints the load of a network scope every interval: packets per second and
 * bits per second on every sensor of the scope and in total.
 *
 * One flow over the scope (a local device, or remote sensors "host:dev, host:port:dev, ..."
 * through DiMAPI), an optional BPF_FILTER, then PKT_COUNTER and BYTE_COUNTER; every interval
 * it reads both counters (mapi_read_results gives one mapi_results_t per sensor, in scope
 * order) and divides the growth by the time between the two reads as the sensor stamped them
 * (the result's ts, taken on the sensor: network delays do not distort the rates). Bits are
 * those of the frames as captured on the wire (BYTE_COUNTER's wire length, without FCS).
 *
 * Usage: netload [-i SECONDS] [-c COUNT] [-f FILTER] [--json] SCOPE
 *   -i, --interval SECONDS  time between reports (default 1; fractions allowed, >= 0.01)
 *   -c, --count COUNT       stop after COUNT reports (default 0: until SIGINT or SIGTERM)
 *   -f, --filter FILTER     count only the packets of this BPF expression
 *   --json                  one JSON object per report and line instead of the table:
 *     {"time":T,"interval":S,"sensors":[{"sensor":"host:dev","pkts":N,"bytes":N,
 *      "pps":X,"bps":X},...],"total":{"pkts":N,"bytes":N,"pps":X,"bps":X}}
 *     (pkts and bytes: counted in this interval; time: Unix seconds of the report)
 * A sensor of a scope that stops answering shows 0 from then on, with a warning naming it on
 * stderr; the others go on. Exit status: 0 after COUNT reports or a signal, 1 on a MAPI error
 * (message on stderr; for a remote scope it names the sensor), 2 on a usage error. libmapi finds
 * mapid, or its DiMAPI settings (CA, client certificate, timeout), through $MAPI_CONF; see
 * docs/dimapi.md.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

static volatile sig_atomic_t stop;

/* SIGINT / SIGTERM: stop after the current report. */
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Prints the last MAPI error (its text names the sensor for a remote scope); returns 1. */
static int mapi_fail(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "netload: %s: MAPI error %d: %s\n", what, err, msg);
    return 1;
}

/* The usage text, on f. */
static void usage(FILE *f)
{
    fprintf(f, "usage: netload [-i SECONDS] [-c COUNT] [-f FILTER] [--json] SCOPE\n"
               "  SCOPE: a device of mapi.conf, or sensors \"host:dev, host:port:dev, ...\"\n");
}

/* Label i of the scope: the i-th comma-separated item, trimmed, copied into buf (len > 0). */
static void scope_item(const char *scope, int i, char *buf, size_t len)
{
    const char *p = scope;
    while (i-- > 0 && p != NULL) {
        p = strchr(p, ',');
        if (p != NULL)
            p++;
    }
    buf[0] = '\0';
    if (p == NULL)
        return;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, ",");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* The 64-bit counter in a result entry, 0 if the entry is empty. */
static unsigned long long u64(const mapi_results_t *r)
{
    unsigned long long v = 0;
    if (r->res != NULL && r->size >= (int)sizeof v)
        memcpy(&v, r->res, sizeof v);
    return v;
}

/* Writes s as a JSON string (quotes and escapes). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* "12.3 Mbit/s"-style text of a rate in bits per second. */
static const char *human_bps(double bps, char *buf, size_t len)
{
    const char *unit[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
    int u = 0;
    while (bps >= 1000 && u < 4) {
        bps /= 1000;
        u++;
    }
    snprintf(buf, len, "%.1f %s", bps, unit[u]);
    return buf;
}

/* Sleeps s seconds unless a signal arrives first. */
static void nap(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (!stop && nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    double interval = 1;
    long count = 0;
    const char *filter = NULL;
    int json = 0;
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'}, {"count", required_argument, NULL, 'c'},
        {"filter", required_argument, NULL, 'f'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "i:c:f:h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'i':
            interval = strtod(optarg, &end);
            if (*end != '\0' || interval < 0.01 || interval > 86400) {
                fprintf(stderr, "netload: bad interval '%s'\n", optarg);
                return 2;
            }
            break;
        case 'c':
            count = strtol(optarg, &end, 10);
            if (*end != '\0' || count < 0) {
                fprintf(stderr, "netload: bad count '%s'\n", optarg);
                return 2;
            }
            break;
        case 'f':
            filter = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *scope = argv[optind];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = mapi_create_flow(scope);
    if (fd < 0)
        return mapi_fail(scope);
    if (filter != NULL && mapi_apply_function(fd, "BPF_FILTER", filter) < 0)
        return mapi_fail("BPF_FILTER");
    int fp = mapi_apply_function(fd, "PKT_COUNTER");
    if (fp < 0)
        return mapi_fail("PKT_COUNTER");
    int fb = mapi_apply_function(fd, "BYTE_COUNTER");
    if (fb < 0)
        return mapi_fail("BYTE_COUNTER");
    if (mapi_connect(fd) < 0)
        return mapi_fail("mapi_connect");
    int n = mapi_get_scope_size(fd);
    if (n < 1)
        return mapi_fail("mapi_get_scope_size");

    char(*names)[MAPI_STR_LENGTH] = calloc((size_t)n, sizeof *names);
    unsigned long long *pk0 = calloc((size_t)n, sizeof *pk0);
    unsigned long long *by0 = calloc((size_t)n, sizeof *by0);
    unsigned long long *ts0 = calloc((size_t)n, sizeof *ts0);
    if (names == NULL || pk0 == NULL || by0 == NULL || ts0 == NULL) {
        fprintf(stderr, "netload: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        scope_item(scope, i, names[i], sizeof names[i]);
        if (n == 1 && names[i][0] == '\0')
            snprintf(names[i], sizeof names[i], "%s", scope);
    }

    /* The starting point: the counters right after connect. */
    mapi_results_t *rp = mapi_read_results(fd, fp);
    if (rp == NULL)
        return mapi_fail("mapi_read_results (PKT_COUNTER)");
    for (int i = 0; i < n; i++) {
        pk0[i] = u64(&rp[i]);
        ts0[i] = rp[i].ts;
    }
    mapi_results_t *rb = mapi_read_results(fd, fb);
    if (rb == NULL)
        return mapi_fail("mapi_read_results (BYTE_COUNTER)");
    for (int i = 0; i < n; i++)
        by0[i] = u64(&rb[i]);

    int status = 0;
    if (!json)
        printf("%-8s  %-32s %14s %16s\n", "time", "sensor", "pkts/s", "bits/s");
    for (long k = 0; !stop && (count == 0 || k < count); k++) {
        nap(interval);
        if (stop)
            break;
        rp = mapi_read_results(fd, fp);
        if (rp == NULL) {
            status = mapi_fail("mapi_read_results (PKT_COUNTER)");
            break;
        }
        /* rp stays valid until the next read of fp (the library reuses it per fid) */
        rb = mapi_read_results(fd, fb);
        if (rb == NULL) {
            status = mapi_fail("mapi_read_results (BYTE_COUNTER)");
            break;
        }
        /* a sensor that is down: its entries are empty (size 0) and its error is left */
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        if (mapi_read_error(&err, msg) == 0 && err != 0)
            fprintf(stderr, "netload: warning: MAPI error %d: %s\n", err, msg);
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        char when[16];
        struct tm tm;
        localtime_r(&wall.tv_sec, &tm);
        strftime(when, sizeof when, "%H:%M:%S", &tm);
        double tpps = 0, tbps = 0;
        unsigned long long tpk = 0, tby = 0;
        if (json)
            printf("{\"time\":%.3f,\"interval\":%g,\"sensors\":[",
                   (double)wall.tv_sec + (double)wall.tv_nsec / 1e9, interval);
        for (int i = 0; i < n; i++) {
            unsigned long long p = u64(&rp[i]), b = u64(&rb[i]);
            if (rp[i].size == 0) /* no answer from this sensor: keep its last state */
                p = pk0[i], b = by0[i];
            unsigned long long dp = p >= pk0[i] ? p - pk0[i] : p, db = b >= by0[i] ? b - by0[i] : b;
            /* microseconds between the sensor's two reads; the interval if the sensor gave none */
            double dt = rp[i].ts > ts0[i] ? (double)(rp[i].ts - ts0[i]) / 1e6 : interval;
            double pps = (double)dp / dt, bps = (double)db * 8 / dt;
            pk0[i] = p;
            by0[i] = b;
            if (rp[i].size != 0)
                ts0[i] = rp[i].ts;
            tpps += pps;
            tbps += bps;
            tpk += dp;
            tby += db;
            if (json) {
                printf("%s{\"sensor\":", i ? "," : "");
                json_str(names[i]);
                printf(",\"pkts\":%llu,\"bytes\":%llu,\"pps\":%.1f,\"bps\":%.1f}", dp, db, pps,
                       bps);
            } else {
                char hb[32];
                printf("%-8s  %-32s %14.1f %16s\n", when, names[i], pps,
                       human_bps(bps, hb, sizeof hb));
            }
        }
        if (json) {
            printf("],\"total\":{\"pkts\":%llu,\"bytes\":%llu,\"pps\":%.1f,\"bps\":%.1f}}\n", tpk,
                   tby, tpps, tbps);
        } else {
            char hb[32];
            printf("%-8s  %-32s %14.1f %16s\n", when, "total", tpps,
                   human_bps(tbps, hb, sizeof hb));
        }
        fflush(stdout);
    }
    mapi_close_flow(fd);
    free(names);
    free(pk0);
    free(by0);
    free(ts0);
    return status;
}
