/*
 * mapi/threshold.h - constants and event records of the THRESHOLD function of stdflib
 * (installed header).
 *
 *   int cnt = mapi_apply_function(fd, "PKT_COUNTER");
 *   int thr = mapi_apply_function(fd, "THRESHOLD", TYPE_UNSIGNED_LONG_LONG, fd, cnt, 0,
 *                                 1000ULL, GT_BOUND, 0, 0, 3);
 *   mapi_results_t *r = mapi_read_results(fd, thr);      waits for the next event
 *   struct threshold_event *ev = r->res;                 NULL (error 6158) at the end of a trace
 *
 * Arguments: type, flow, function, an int that is ignored (the original never used it),
 * threshold (unsigned long long), boundary, timeout (ms), divider, count.
 *
 * type is TYPE_CHAR, TYPE_INT or TYPE_UNSIGNED_LONG_LONG (how to read the other function's
 * result: 1 signed byte, a 4-byte int, or 8 bytes), optionally ORed with one mode flag:
 *   no flag   checked after every packet of the flow; after an event, no further event for
 *             `timeout` ms of packet time (0: one per packet at most)
 *   TR_POLL   checked every `timeout` ms of packet time
 *   TR_MW     moving window: every timeout/divider ms, the increase of the value over the last
 *             `timeout` ms (the window) is compared with the threshold
 * boundary says what fires an event: the value (the window's increase for TR_MW) is equal
 * to / greater than / less than the threshold (EQUAL_BOUND, GT_BOUND, LT_BOUND), or its
 * difference to the previous check is (EQUAL_D_BOUND, GT_D_BOUND, LT_D_BOUND; not with TR_MW).
 * count: events before the function stops (0 = unlimited).
 *
 * Every event queues one struct threshold_event: the 32.32 packet time of the check and the
 * value that was compared (the value, the difference or the window's increase, as a 64-bit
 * two's-complement number).
 */
#ifndef MAPI_THRESHOLD_H
#define MAPI_THRESHOLD_H

/* Types of the watched value (the low 6 bits of the type argument). */
#define TYPE_CHAR 0
#define TYPE_INT 1
#define TYPE_UNSIGNED_LONG_LONG 2

/* Mode flags ORed into the type. */
#define TR_POLL 64
#define TR_MW 128

/* Boundaries. */
#define EQUAL_BOUND 0
#define GT_BOUND 1
#define LT_BOUND 2
#define EQUAL_D_BOUND 4
#define GT_D_BOUND 8
#define LT_D_BOUND 16

/* The names of the original man page. */
#define TR_B_EQ EQUAL_BOUND
#define TR_B_POS GT_BOUND
#define TR_B_NEG LT_BOUND
#define TR_B_D_EQ EQUAL_D_BOUND
#define TR_B_D_POS GT_D_BOUND
#define TR_B_D_NEG LT_D_BOUND

/* One event, as returned by mapi_read_results. */
struct threshold_event {
    unsigned long long timestamp; /* 32.32 packet time of the check that fired */
    unsigned long long value;     /* the value compared with the threshold */
};

#endif /* MAPI_THRESHOLD_H */
