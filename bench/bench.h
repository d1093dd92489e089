/*
 * bench/bench.h - small helpers shared by the benchmark clients (bench/bench_*.c): fatal
 * errors with MAPI's error text, a monotonic clock, waiting for an offline flow to reach
 * FLOW_FINISHED, reading a 64-bit counter result, and parsing expected counts.
 *
 * Every client checks its own answer: an expected count given on the command line that does
 * not match what MAPI reports makes the client print both numbers on stderr and exit with
 * status 1, which makes the benchmark run (hyperfine) fail instead of timing a wrong answer.
 */
#ifndef MAPI_BENCH_H
#define MAPI_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

/* How often a client asks mapid whether its flow has finished (one request per poll). */
#define BENCH_POLL_US 1000

static const char *bench_prog = "bench";

static inline void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", bench_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Exits with the last MAPI error of this thread. */
static inline void bench_die_mapi(const char *what) __attribute__((noreturn));
static inline void bench_die_mapi(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    bench_die("%s: MAPI error %d: %s", what, err, msg);
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned long long bench_read_u64(int fd, int fid)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    if (r == NULL)
        bench_die_mapi("mapi_read_results");
    if (r->size < (int)sizeof(unsigned long long))
        bench_die("result of fid %d has %d bytes", fid, r->size);
    unsigned long long v;
    memcpy(&v, r->res, sizeof v);
    return v;
}

/*
 * Waits until flow fd is FLOW_FINISHED (end of its trace); exits after timeout_s seconds.
 * Asking mapid costs a request and a reply (tens of microseconds of CPU on both sides), so
 * with a counter fid (> 0) the client first reads that counter from shared memory (no system
 * call) every BENCH_POLL_US and asks mapid for the flow's status only when the counter has not
 * moved since the last look: while mapid is busy with the trace the clients stay off its
 * control thread and off the CPUs, and the end is still seen within about two polls.
 */
static inline void bench_wait_finished(int fd, int counter_fid, double timeout_s)
{
    uint64_t end = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    unsigned long long last = 0;
    int first = 1;
    mapi_flow_info_t info;
    for (;;) {
        if (counter_fid > 0) {
            unsigned long long v = bench_read_u64(fd, counter_fid);
            int moved = !first && v != last; /* the first look asks mapid */
            last = v;
            first = 0;
            if (moved && bench_now_ns() < end) {
                usleep(BENCH_POLL_US);
                continue;
            }
        }
        if (mapi_get_flow_info(fd, &info) < 0)
            bench_die_mapi("mapi_get_flow_info");
        if (info.status == FLOW_FINISHED)
            return;
        if (info.status == FLOW_CLOSED)
            bench_die("flow %d was closed by mapid", fd);
        if (bench_now_ns() > end)
            bench_die("flow %d not finished after %.0f s", fd, timeout_s);
        usleep(BENCH_POLL_US);
    }
}

/* Parses a count given on the command line ("-" or "" = not checked: returns -1). */
static inline long long bench_parse_count(const char *s)
{
    if (s == NULL || *s == '\0' || strcmp(s, "-") == 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v > (unsigned long long)INT64_MAX)
        bench_die("bad count \"%s\"", s);
    return (long long)v;
}

/* Compares a result with its expected value (-1: unchecked). Returns 0 if it matches. */
static inline int bench_check(const char *what, unsigned long long got, long long want)
{
    if (want < 0 || got == (unsigned long long)want)
        return 0;
    fprintf(stderr, "%s: WRONG %s: got %llu, expected %lld\n", bench_prog, what, got, want);
    return 1;
}

#endif /* MAPI_BENCH_H */
