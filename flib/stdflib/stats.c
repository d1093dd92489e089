/*
 * flib/stdflib/stats.c - STATS "rfs" (flow, fid, when): count, sum, sum of squares, maximum and
 * minimum of samples of another function's unsigned 64-bit value (mapi/stats.h, stats_t).
 *
 * When it samples (the third argument, checked as a string before any time parsing):
 *   "0"     in process(), on every packet that reaches STATS (after the referenced function
 *           when that one was applied earlier in the same flow);
 *   "1"     the same, but the first packet is skipped (GAP's first value is always 0);
 *   period  in tick(), at the end of every interval of packet time: the grid starts at the
 *           first packet offered to the flow, interval k = [t0 + k*period, t0 + (k+1)*period).
 *           tick() runs before any function processes the packet, so the sample holds exactly
 *           the packets of the interval. After each sample the referenced function is reset
 *           (rate statistics: STATS over PKT_COUNTER with "1s" gives packets per second).
 *           Intervals without packets are sampled too (the value as it is after the reset);
 *           flush() samples the last, partial interval at the end of a trace.
 *
 * Differences from the original: the period is a time string of stdflib_parse_duration ("m" is
 * minutes, a bare number seconds, not raw ticks); min is the true minimum of the samples (the
 * original treated min == 0 as "unset", so a sample of 0 was never the minimum); periodic
 * sampling of the last partial interval at the end of a trace.
 *
 * Errors of instance(): 7001 bad flow, 7002 bad fid or a function without a result, 7003 a
 * period that is not "0", "1" or a positive time string.
 */
#include <stdlib.h>
#include <string.h>

#include "mapi/stats.h"
#include "stdflib.h"

enum stats_mode {
    STATS_EVERY_PACKET, /* "0" */
    STATS_SKIP_FIRST,   /* "1" */
    STATS_PERIODIC,     /* a period of packet time */
};

struct stats_state {
    const struct mapi_ref *src; /* the sampled function */
    enum stats_mode mode;
    uint64_t period;   /* ticks (STATS_PERIODIC) */
    int started;       /* STATS_PERIODIC: the grid has its origin; STATS_SKIP_FIRST: first seen */
    uint64_t next_end; /* STATS_PERIODIC: end of the current interval */
    /* The statistics, copied into fi->result after every change: the result area in shared
     * memory is only 8-byte aligned, and stats_t (long double) wants 16. */
    stats_t acc;
};

/*
 * Opens the reference (flow argument at position flow_pos, fid at flow_pos + 1) to a function
 * with a numeric result. Returns 0 and sets *out, or the position error of the bad argument
 * with fi->errmsg set. Shared by STATS, BINOP and DIST (declared in stdflib.h).
 */
int stdflib_open_numeric_ref(struct mapi_fn_instance *fi, int flow_pos, const struct mapi_ref **out)
{
    int flow_id = fi->args[flow_pos - 1].v.i;
    int fid = fi->args[flow_pos].v.i;
    const struct mapi_ref *ref;

    if (fi->host->ref_open == NULL) {
        stdflib_errmsg(fi, "this mapid does not support function references");
        return MFUNCT_NOT_SUPPORTED;
    }
    /* The flow alone first, so that a bad flow and a bad fid get their own positions. A
     * function may read only flows created before its own (mapid's rule, refs.c). */
    if (flow_id > fi->flow_id) {
        stdflib_errmsg(fi, "flow %d was created after this flow %d: name earlier flows only",
                       flow_id, fi->flow_id);
        return MFUNCT_INVALID_ARGUMENT_1 + flow_pos - 1;
    }
    if (fi->host->ref_open(fi, flow_id, 0) == NULL)
        return MFUNCT_INVALID_ARGUMENT_1 + flow_pos - 1;
    ref = fi->host->ref_open(fi, flow_id, fid);
    if (ref == NULL)
        return MFUNCT_INVALID_ARGUMENT_1 + flow_pos;
    if (fid <= 0 || fi->host->ref_size(ref) == 0) {
        stdflib_errmsg(fi, "function %d has no numeric result to read", fid);
        return MFUNCT_INVALID_ARGUMENT_1 + flow_pos;
    }
    *out = ref;
    return 0;
}

/* Parses the arguments and opens the reference. Returns 0 or a MAPI error number (see the file
 * comment), MAPID_MEM_ALLOCATION_ERROR if out of memory. */
int stdflib_stats_instance(struct mapi_fn_instance *fi)
{
    const char *when = fi->args[2].v.s;
    struct stats_state *st;
    int err;

    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    err = stdflib_open_numeric_ref(fi, 1, &st->src);
    if (err != 0) {
        free(st);
        return err;
    }
    if (when != NULL && strcmp(when, "0") == 0) {
        st->mode = STATS_EVERY_PACKET;
    } else if (when != NULL && strcmp(when, "1") == 0) {
        st->mode = STATS_SKIP_FIRST;
    } else if (stdflib_parse_duration(when, &st->period) == 0 && st->period > 0) {
        st->mode = STATS_PERIODIC;
    } else {
        stdflib_errmsg(fi, "\"%s\" is neither \"0\", \"1\" nor a positive period",
                       when ? when : "(null)");
        free(st);
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    fi->priv = st;
    fi->result_size = sizeof(stats_t);
    return 0;
}

/* Adds n samples of value v (n >= 1) and publishes the statistics. */
static void add_samples(struct mapi_fn_instance *fi, uint64_t v, uint64_t n)
{
    struct stats_state *st = fi->priv;
    stats_t *s = &st->acc;
    long double lv = (long double)v;
    double dv = (double)v;

    if (s->count == 0) {
        s->min = dv;
        s->max = dv;
    } else {
        if (dv < s->min)
            s->min = dv;
        if (dv > s->max)
            s->max = dv;
    }
    s->count += n;
    s->sum += lv * (long double)n;
    s->sum2 += lv * lv * (long double)n;
    mapi_result_write_begin(fi);
    memcpy(fi->result, s, sizeof *s);
    mapi_result_write_end(fi);
}

/* Samples the referenced value in the per-packet modes. Returns 1 (never filters). */
int stdflib_stats_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct stats_state *st = fi->priv;

    (void)pkt;
    if (st->mode == STATS_PERIODIC)
        return 1;
    if (st->mode == STATS_SKIP_FIRST && !st->started) {
        st->started = 1;
        return 1;
    }
    add_samples(fi, fi->host->ref_read_u64(st->src), 1);
    return 1;
}

/* Closes every interval that ends at or before ts (periodic mode). */
void stdflib_stats_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    struct stats_state *st = fi->priv;
    uint64_t empty;

    if (st->mode != STATS_PERIODIC)
        return;
    if (!st->started) {
        st->started = 1;
        st->next_end = ts + st->period;
        if (st->next_end < ts) /* no interval end fits before 2^64 ticks */
            st->next_end = UINT64_MAX;
        return;
    }
    if (ts < st->next_end)
        return;
    /* The interval that holds the packets so far. */
    add_samples(fi, fi->host->ref_read_u64(st->src), 1);
    fi->host->ref_reset(st->src);
    /* Intervals without packets between it and ts: they all read the same value (nothing ran
     * since the reset), so they are added in one step however long the silence was. */
    empty = (ts - st->next_end) / st->period;
    if (empty > 0) {
        add_samples(fi, fi->host->ref_read_u64(st->src), empty);
        fi->host->ref_reset(st->src);
    }
    /* The end of the interval that holds ts (saturated: no wrap-around on absurd times). */
    uint64_t advance;
    if (__builtin_mul_overflow(empty + 1, st->period, &advance) ||
        __builtin_add_overflow(st->next_end, advance, &st->next_end))
        st->next_end = UINT64_MAX;
}

/* End of a trace: samples the last, partial interval (periodic mode). The source is not reset,
 * so it keeps the value of that interval for whoever reads it afterwards. */
void stdflib_stats_flush(struct mapi_fn_instance *fi)
{
    struct stats_state *st = fi->priv;

    if (st->mode != STATS_PERIODIC || !st->started)
        return;
    add_samples(fi, fi->host->ref_read_u64(st->src), 1);
    st->started = 0; /* a later packet would start a new grid */
}

/* Zeroes the statistics (the periodic grid and the "1" mode's first-packet skip stay). */
void stdflib_stats_reset(struct mapi_fn_instance *fi)
{
    struct stats_state *st = fi->priv;

    memset(&st->acc, 0, sizeof st->acc);
    if (fi->result != NULL) /* NULL: not connected yet */
        memset(fi->result, 0, sizeof(stats_t));
}

void stdflib_stats_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
