/*
 * mapi/burst.h - the result of the BURST function of stdflib (installed header).
 *
 *   int fid = mapi_apply_function(fd, "BURST", min, max, step, iftime_ns, late_ns, early_ns,
 *                                 link_speed_mbps);
 *   mapi_results_t *r = mapi_read_results(fd, fid);
 *   burst_category_t *cat = r->res;      r->size / sizeof(burst_category_t) categories,
 *                                        (max - min) / step + 2 of them
 *
 * A burst is a run of packets that follow each other back to back. With times in ns, a
 * packet continues the burst of the previous one iff
 *     expected - early_ns <= ts <= expected + late_ns,
 *     expected = prev_ts + prev_wire_len * 8000 / link_speed_mbps + iftime_ns;
 * otherwise the burst ends (its bytes, packets and 1 burst are added to its category) and so
 * does a gap of max(0, ts - expected) ns, counted as the bytes the link could have carried
 * meanwhile (gap_bytes, 1 gap) in the category of that byte count. The last burst of a trace
 * is counted at its end; on a live device a burst is counted when the next one starts.
 * Category 0 holds the byte counts below min, category k >= 1 those of
 * min + (k-1)*step .. min + k*step - 1, and the last category also everything larger.
 *
 * The fields are unsigned long as in the original; MAPI is built for 64-bit Linux, where they
 * are 64-bit (8 bytes each, 40 bytes per category).
 */
#ifndef MAPI_BURST_H
#define MAPI_BURST_H

typedef struct burst_category {
    unsigned long bytes;     /* bytes of the bursts counted here (wire lengths) */
    unsigned long packets;   /* packets of those bursts */
    unsigned long bursts;    /* number of bursts */
    unsigned long gap_bytes; /* total length of the gaps counted here, in bytes at link speed */
    unsigned long gaps;      /* number of gaps */
} burst_category_t;

#endif /* MAPI_BURST_H */
