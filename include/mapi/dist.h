/*
 * mapi/dist.h - result of the DIST function of stdflib (installed header).
 *
 *   int sz = mapi_apply_function(fd, "PKTINFO", PKT_SIZE);
 *   int d = mapi_apply_function(fd, "DIST", fd, sz, "0", "1500", "100");
 *   ...
 *   dist_t *h = mapi_read_results(fd, d)->res;
 *   for (unsigned long long i = 0; i <= h->intervals; i++) ... h->data[i] ...
 *
 * DIST keeps a histogram of the unsigned 64-bit value of another function (flow fd, function
 * fid; the first 8 bytes of its result), one sample per packet that reaches DIST. min, max and
 * interval are strings: a plain integer ("1500") is that number, a time string with a unit
 * ("10ms", "1.5s", "2m" = minutes) is converted to 32.32 ticks (for values such as GAP or
 * PKTINFO PKT_TS). max must be greater than min, interval at least 1.
 *
 * Layout: intervals = ceil((max - min) / interval), and data has intervals + 1 slots:
 *   data[0]              v < min
 *   data[k], 1 <= k < intervals
 *                        min + (k-1)*interval <= v < min + k*interval
 *   data[intervals]      v >= min + (intervals-1)*interval, which includes every v > max
 *                        (the last bucket is open-ended: values above max are counted there,
 *                        as in the original)
 * Difference from the original: it put v in slot ceil((v-min-1)/interval), so buckets were
 * closed on the right, v == min landed in the "below min" slot 0 and the arithmetic was off by
 * one; here every bucket is half-open [lo, lo + interval) and slot 0 holds only v < min.
 * The result is 24 + 8 * (intervals + 1) bytes; at most 1 << 20 intervals (else error 7005).
 */
#ifndef MAPI_DIST_H
#define MAPI_DIST_H

typedef struct dist {
    unsigned long long min;       /* lower bound of bucket 1 */
    unsigned long long max;       /* upper bound given to DIST */
    unsigned long long intervals; /* index of the last slot: data has intervals + 1 entries */
    unsigned long long data[];    /* counts, see the layout above */
} dist_t;

#endif /* MAPI_DIST_H */
