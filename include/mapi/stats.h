/*
 * mapi/stats.h - result of the STATS function of stdflib (installed header).
 *
 *   int cnt = mapi_apply_function(fd, "PKTINFO", PKT_SIZE);
 *   int st = mapi_apply_function(fd, "STATS", fd, cnt, "0");  a sample per packet
 *   ...
 *   mapi_results_t *r = mapi_read_results(fd, st);
 *   stats_t *s = r->res;          mean = s->sum / s->count
 *
 * STATS samples the unsigned 64-bit value of another function (flow fd, function fid; the first
 * 8 bytes of its result, a smaller result zero-extended) and keeps count, sum, sum of squares,
 * maximum and minimum of the samples. Its third argument says when it samples:
 *   "0"     on every packet that reaches STATS;
 *   "1"     on every packet but the first (useful over GAP, whose first value is always 0);
 *   period  a time string ("1s", "100ms", "1.5m" = minutes, a bare number = seconds) of packet
 *           time: at the end of every interval [t0 + k*period, t0 + (k+1)*period), t0 = the
 *           first packet of the flow, STATS samples the value and then resets the referenced
 *           function (so over PKT_COUNTER it samples packets per interval). Intervals without
 *           packets are sampled too; the last, partial interval of a trace file is sampled when
 *           the trace ends.
 *
 * Difference from the original: it treated a minimum of 0 as "not set yet", so a sample of 0
 * never became the minimum. Here min is the true minimum of the samples; with no sample yet
 * (count == 0) every field is 0.
 */
#ifndef MAPI_STATS_H
#define MAPI_STATS_H

typedef struct stats {
    unsigned long long count; /* samples taken */
    long double sum;          /* sum of the samples */
    long double sum2;         /* sum of their squares */
    double max;               /* largest sample (0 while count == 0) */
    double min;               /* smallest sample (0 while count == 0) */
} stats_t;

#endif /* MAPI_STATS_H */
