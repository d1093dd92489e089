/*
 * flib/stdflib/burst.c - BURST "iiiiiii" min, max, step, iftime, late, early, link_speed:
 * histogram of bursts of back-to-back packets and of the gaps between them.
 *
 * Arguments (all int): min, max, step in bytes; iftime (inter-frame time), late and early
 * in nanoseconds; link_speed in Mbit/s. The rule, on packet times in integer nanoseconds
 * (the 32.32 timestamp rounded to the nearest ns, which is exact for micro- and nanosecond
 * traces):
 *   - the first packet opens a burst;
 *   - for every next packet, expected = prev_ts + prev_wlen * 8000 / link_speed + iftime
 *     (ns; the previous packet's transmission time at link speed plus the inter-frame time);
 *     the packet continues the open burst iff expected - early <= ts <= expected + late,
 *     else it closes the open burst and opens a new one;
 *   - closing a burst adds its bytes (sum of wlen) and packets to its category and counts
 *     one burst there; the gap that follows it is max(0, ts - expected) ns expressed in bytes
 *     at link speed, floor(gap_ns * link_speed / 8000), and adds gap_bytes and one gap to
 *     the category of that byte count;
 *   - at the end of a trace (flush) the open burst is closed (no gap follows it); on a live
 *     device it stays open until the next packet closes it.
 * Category of n bytes: 0 if n < min, else min(1 + (n - min) / step, ncat - 1), with
 * ncat = (max - min) / step + 2 (so the last category also holds everything larger).
 * All comparisons are exact (128-bit integers): no floating point.
 *
 * Result: ncat x burst_category_t (mapi/burst.h; five unsigned longs = 8 bytes each on our
 * 64-bit targets), zeroed at connect.
 *
 * Errors: min < 0 7001, max < min 7002, step <= 0 or more than BURST_MAX_CATEGORIES
 * categories 7003, iftime < 0 7004, late < 0 7005, early < 0 7011 (sixth argument),
 * link_speed <= 0 7000 (there is no code for a seventh argument).
 *
 * Differences from the original: the original never counted gaps (it tested the burst size
 * after zeroing it), lost the last burst of a trace, and computed in floating point; it did
 * not validate its arguments (step 0 divided by zero).
 */
#include <stdlib.h>
#include <string.h>

#include "mapi/burst.h"
#include "stdflib.h"

#define BURST_MAX_CATEGORIES 100000

struct burst_state {
    int64_t min, step, ncat;
    int64_t iftime_ns, late_ns, early_ns, speed_mbps;
    int open;           /* a burst is open (a packet has been seen) */
    uint64_t prev_ns;   /* time of the previous packet */
    uint32_t prev_wlen; /* its wire length */
    uint64_t burst_bytes, burst_packets;
};

/* 32.32 time to nanoseconds, rounded to the nearest. */
static uint64_t ts_to_ns(uint64_t ts)
{
    return (ts >> 32) * 1000000000ull +
           (((ts & 0xffffffffull) * 1000000000ull + (1ull << 31)) >> 32);
}

static int64_t category(const struct burst_state *st, uint64_t bytes)
{
    uint64_t k;
    if (bytes < (uint64_t)st->min)
        return 0;
    k = 1 + (bytes - (uint64_t)st->min) / (uint64_t)st->step;
    return k >= (uint64_t)st->ncat ? st->ncat - 1 : (int64_t)k;
}

/* Validates the arguments (see the file comment) and sizes the result. Returns 0 or an
 * error number. */
int stdflib_burst_instance(struct mapi_fn_instance *fi)
{
    int64_t a[7];
    struct burst_state *st;

    for (int i = 0; i < 7; i++)
        a[i] = fi->args[i].v.i;
    if (a[0] < 0) {
        stdflib_errmsg(fi, "min %lld is negative", (long long)a[0]);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (a[1] < a[0]) {
        stdflib_errmsg(fi, "max %lld is below min %lld", (long long)a[1], (long long)a[0]);
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    if (a[2] <= 0) {
        stdflib_errmsg(fi, "step %lld must be positive", (long long)a[2]);
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    if ((a[1] - a[0]) / a[2] + 2 > BURST_MAX_CATEGORIES) {
        stdflib_errmsg(fi, "(max - min) / step + 2 = %lld categories: at most %d",
                       (long long)((a[1] - a[0]) / a[2] + 2), BURST_MAX_CATEGORIES);
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    if (a[3] < 0) {
        stdflib_errmsg(fi, "iftime %lld ns is negative", (long long)a[3]);
        return MFUNCT_INVALID_ARGUMENT_4;
    }
    if (a[4] < 0) {
        stdflib_errmsg(fi, "late %lld ns is negative", (long long)a[4]);
        return MFUNCT_INVALID_ARGUMENT_5;
    }
    if (a[5] < 0) {
        stdflib_errmsg(fi, "early %lld ns is negative", (long long)a[5]);
        return MFUNCT_INVALID_ARGUMENT_6;
    }
    if (a[6] <= 0) {
        stdflib_errmsg(fi, "link_speed %lld Mbit/s (7th argument) must be positive",
                       (long long)a[6]);
        return MFUNCT_INVALID_ARGUMENT;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->min = a[0];
    st->step = a[2];
    st->ncat = (a[1] - a[0]) / a[2] + 2;
    st->iftime_ns = a[3];
    st->late_ns = a[4];
    st->early_ns = a[5];
    st->speed_mbps = a[6];
    fi->priv = st;
    fi->result_size = (uint32_t)(st->ncat * (int64_t)sizeof(burst_category_t));
    return 0;
}

/* Adds the open burst to its category. */
static void close_burst(struct mapi_fn_instance *fi, struct burst_state *st)
{
    burst_category_t *c = (burst_category_t *)fi->result + category(st, st->burst_bytes);
    mapi_result_write_begin(fi);
    c->bytes += st->burst_bytes;
    c->packets += st->burst_packets;
    c->bursts++;
    mapi_result_write_end(fi);
    st->burst_bytes = st->burst_packets = 0;
}

/* Returns 1 (never filters). */
int stdflib_burst_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct burst_state *st = fi->priv;
    uint64_t now = ts_to_ns(pkt->ts);

    if (st->open) {
        /* Everything scaled by link_speed (ns * Mbit/s = bits * 1000), so exact. */
        __int128 speed = st->speed_mbps;
        __int128 expected =
            ((__int128)st->prev_ns + st->iftime_ns) * speed + (__int128)st->prev_wlen * 8000;
        __int128 t = (__int128)now * speed;
        if (t < expected - (__int128)st->early_ns * speed ||
            t > expected + (__int128)st->late_ns * speed) {
            uint64_t gap_bytes = 0;
            burst_category_t *c;
            close_burst(fi, st);
            if (t > expected) {
                __int128 g = (t - expected) / 8000;
                gap_bytes = g > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)g;
            }
            c = (burst_category_t *)fi->result + category(st, gap_bytes);
            mapi_result_write_begin(fi);
            c->gap_bytes += gap_bytes;
            c->gaps++;
            mapi_result_write_end(fi);
        }
    }
    st->open = 1;
    st->burst_bytes += pkt->wlen;
    st->burst_packets++;
    st->prev_ns = now;
    st->prev_wlen = pkt->wlen;
    return 1;
}

/* End of a trace: the open burst counts too. */
void stdflib_burst_flush(struct mapi_fn_instance *fi)
{
    struct burst_state *st = fi->priv;
    if (st->open && st->burst_packets > 0)
        close_burst(fi, st);
    st->open = 0;
}

/* Zeroes the histogram and forgets the open burst (for functions that reset their sources). */
void stdflib_burst_reset(struct mapi_fn_instance *fi)
{
    struct burst_state *st = fi->priv;
    mapi_result_write_begin(fi);
    memset(fi->result, 0, fi->result_size);
    mapi_result_write_end(fi);
    st->open = 0;
    st->burst_bytes = st->burst_packets = 0;
}

void stdflib_burst_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
