/*
 * flib/stdflib/threshold.c - THRESHOLD "irfiliiii": queues an event when the value of another
 * function (or its change) crosses a threshold.
 *
 * Arguments: type, flow, function, an int that is ignored, threshold (unsigned 64-bit),
 * boundary, timeout (ms), divider, count. Constants and the event record are in
 * mapi/threshold.h. The value is read through host->ref_read: TYPE_CHAR one signed byte,
 * TYPE_INT a 4-byte int, TYPE_UNSIGNED_LONG_LONG 8 bytes; the threshold is cast to the same
 * type (so an int threshold of -1 may be given as (unsigned long long)-1). Comparisons are
 * exact (128-bit), also for differences, which may be negative.
 *
 * The first tick (the first packet offered to the flow) records the value as the baseline
 * (the "previous check" of the D boundaries, the start of the TR_POLL/TR_MW grid t0). Then:
 *   per packet (no flag)  process() checks after every packet that reaches THRESHOLD (so
 *                         after the referenced function when it is earlier in the same flow);
 *                         after an event, checks that would fire are ignored until `timeout`
 *                         ms of packet time have passed (0: no hold-off). Event time: the
 *                         packet's.
 *   TR_POLL               tick() checks at t0 + k*timeout (k >= 1) of packet time, with the
 *                         value as it is before the first packet at or after that time.
 *                         Event time: t0 + k*timeout.
 *   TR_MW                 tick() samples the value at t0 + k*slot, slot = timeout/divider,
 *                         and, once a whole window is covered (k >= divider), compares the
 *                         increase over the last window, v(k) - v(k - divider), with the
 *                         threshold. D boundaries are refused (7011).
 * A D boundary compares value - value at the previous check. Every event queues a struct
 * threshold_event {timestamp, value compared}; after `count` events (0 = unlimited) the
 * function stops checking. It never filters.
 *
 * Errors: type 7001; flow/function refused by mapid 7002; a function without a result of the
 * type's size 7003; boundary 7011 (sixth argument); timeout < 0, or 0 with TR_POLL/TR_MW,
 * divider < 0, or with TR_MW outside 1..min(timeout, 65536), count < 0: 7000 (there are no
 * codes for arguments 7-9).
 *
 * Differences from the original: its instance() and init() read the arguments at different
 * positions (instance read the threshold from the ignored int's bytes, so it checked the
 * boundary at the wrong place; init took the function for the flow and the ignored int for
 * the function), we parse them once, in the documented order; its polling ran in a thread
 * on the wall clock (sleeping `timeout` microseconds, not ms), we poll on packet time, which is
 * deterministic on trace files; its integer moving window tested GT as "<"; its per-packet
 * mode had no hold-off; it dropped the flow's packets after `count` events (we pass them);
 * it signalled a bare semaphore, we queue the time and value of each event.
 */
#include <stdlib.h>
#include <string.h>

#include "mapi/threshold.h"
#include "stdflib.h"

#define THRESHOLD_QUEUE_RECORDS 4096u
#define THRESHOLD_MAX_DIVIDER 65536 /* slots of a moving window */

enum threshold_mode { MODE_PACKET, MODE_POLL, MODE_MW };

struct threshold_state {
    const struct mapi_ref *ref;
    int vtype;       /* TYPE_CHAR, TYPE_INT, TYPE_UNSIGNED_LONG_LONG */
    int mode;        /* enum threshold_mode */
    int boundary;    /* *_BOUND */
    __int128 limit;  /* the threshold, cast to the value's type */
    uint64_t period; /* per packet: hold-off; TR_POLL: period; TR_MW: slot (32.32 ticks) */
    int divider;     /* TR_MW: slots per window */
    int count;       /* events allowed, 0 = unlimited */
    int events;      /* events queued so far */
    int started;     /* the baseline has been taken */
    __int128 prev;   /* value at the previous check (D boundaries) */
    int have_event;  /* an event has been queued (per-packet hold-off) */
    uint64_t last_event;
    uint64_t next;    /* TR_POLL/TR_MW: time of the next check */
    uint64_t k;       /* TR_MW: number of samples taken after the baseline */
    __int128 *window; /* TR_MW: the last divider + 1 samples, indexed by k % (divider + 1) */
};

/* The referenced value as a signed 128-bit number. */
static __int128 read_value(struct mapi_fn_instance *fi, const struct threshold_state *st)
{
    switch (st->vtype) {
    case TYPE_CHAR: {
        int8_t c = 0;
        fi->host->ref_read(st->ref, &c, sizeof c);
        return c;
    }
    case TYPE_INT: {
        int32_t v = 0;
        fi->host->ref_read(st->ref, &v, sizeof v);
        return v;
    }
    default:
        return (__int128)fi->host->ref_read_u64(st->ref);
    }
}

/* 1 if cmp satisfies the boundary against the threshold. */
static int crosses(const struct threshold_state *st, __int128 cmp)
{
    switch (st->boundary) {
    case EQUAL_BOUND:
    case EQUAL_D_BOUND:
        return cmp == st->limit;
    case GT_BOUND:
    case GT_D_BOUND:
        return cmp > st->limit;
    default: /* LT_BOUND, LT_D_BOUND */
        return cmp < st->limit;
    }
}

static int is_difference(int boundary)
{
    return boundary == EQUAL_D_BOUND || boundary == GT_D_BOUND || boundary == LT_D_BOUND;
}

/* Queues one event unless the count is used up. */
static void emit(struct mapi_fn_instance *fi, struct threshold_state *st, uint64_t ts,
                 __int128 value)
{
    struct threshold_event ev;
    if (st->count > 0 && st->events >= st->count)
        return;
    ev.timestamp = ts;
    ev.value = (unsigned long long)(uint64_t)value;
    st->events++;
    st->have_event = 1;
    st->last_event = ts;
    fi->host->queue_put(fi, &ev, sizeof ev, ts);
}

/* One check of the value v at time ts (per packet and TR_POLL). Returns 1 if the boundary
 * was crossed (whether or not an event could be queued), else 0. */
static int check(struct mapi_fn_instance *fi, struct threshold_state *st, uint64_t ts, __int128 v)
{
    __int128 cmp = v;
    if (is_difference(st->boundary)) {
        cmp = v - st->prev;
        st->prev = v;
    }
    if (!crosses(st, cmp))
        return 0;
    if (st->mode == MODE_PACKET && st->have_event && st->period > 0 &&
        ts - st->last_event < st->period)
        return 1; /* hold-off after the previous event */
    emit(fi, st, ts, cmp);
    return 1;
}

/* Validates the arguments (see the file comment) and opens the reference. Returns 0 or an
 * error number. */
int stdflib_threshold_instance(struct mapi_fn_instance *fi)
{
    const int type = fi->args[0].v.i, flow = fi->args[1].v.i, fid = fi->args[2].v.i;
    const uint64_t threshold = fi->args[4].v.l;
    const int boundary = fi->args[5].v.i, timeout = fi->args[6].v.i;
    const int divider = fi->args[7].v.i, count = fi->args[8].v.i;
    const int vtype = type & 63;
    static const uint32_t value_size[] = {1, 4, 8};
    struct threshold_state *st;
    const struct mapi_ref *ref;
    int mode;

    if (vtype > TYPE_UNSIGNED_LONG_LONG || (type & ~(63 | TR_POLL | TR_MW)) != 0) {
        stdflib_errmsg(fi,
                       "type %d is not TYPE_CHAR, TYPE_INT or TYPE_UNSIGNED_LONG_LONG, "
                       "optionally | TR_POLL or TR_MW",
                       type);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    mode = (type & TR_MW) ? MODE_MW : (type & TR_POLL) ? MODE_POLL : MODE_PACKET;
    if (boundary != EQUAL_BOUND && boundary != GT_BOUND && boundary != LT_BOUND &&
        !is_difference(boundary)) {
        stdflib_errmsg(fi,
                       "boundary %d is not one of EQUAL_BOUND (0), GT_BOUND (1), LT_BOUND "
                       "(2), EQUAL_D_BOUND (4), GT_D_BOUND (8), LT_D_BOUND (16)",
                       boundary);
        return MFUNCT_INVALID_ARGUMENT_6;
    }
    if (mode == MODE_MW && is_difference(boundary)) {
        stdflib_errmsg(fi,
                       "a moving window (TR_MW) compares its sum: use EQUAL_BOUND, GT_BOUND "
                       "or LT_BOUND, not %d",
                       boundary);
        return MFUNCT_INVALID_ARGUMENT_6;
    }
    if (timeout < 0 || (timeout == 0 && mode != MODE_PACKET)) {
        stdflib_errmsg(fi, "timeout %d ms (7th argument) must be %s", timeout,
                       mode == MODE_PACKET ? ">= 0" : "> 0 with TR_POLL or TR_MW");
        return MFUNCT_INVALID_ARGUMENT;
    }
    if (divider < 0 || (mode == MODE_MW &&
                        (divider < 1 || divider > timeout || divider > THRESHOLD_MAX_DIVIDER))) {
        stdflib_errmsg(fi, "divider %d (8th argument) must be %s", divider,
                       mode == MODE_MW ? "in 1..timeout (at most 65536) with TR_MW" : ">= 0");
        return MFUNCT_INVALID_ARGUMENT;
    }
    if (count < 0) {
        stdflib_errmsg(fi, "count %d (9th argument) must be >= 0 (0 = unlimited)", count);
        return MFUNCT_INVALID_ARGUMENT;
    }
    ref = fi->host->ref_open(fi, flow, fid);
    if (ref == NULL)
        return MFUNCT_INVALID_ARGUMENT_2;
    if (fi->host->ref_size(ref) < value_size[vtype]) {
        stdflib_errmsg(fi, "function %d of flow %d has %u bytes of result, not a %u-byte value",
                       fid, flow, fi->host->ref_size(ref), value_size[vtype]);
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->ref = ref;
    st->vtype = vtype;
    st->mode = mode;
    st->boundary = boundary;
    st->limit = vtype == TYPE_CHAR  ? (__int128)(int8_t)threshold
                : vtype == TYPE_INT ? (__int128)(int32_t)threshold
                                    : (__int128)threshold;
    /* ms -> 32.32 ticks, rounded */
    st->period = (((uint64_t)timeout << 32) + 500) / 1000;
    st->divider = divider;
    st->count = count;
    if (mode == MODE_MW) {
        st->period = ((((uint64_t)timeout << 32) / (uint64_t)divider) + 500) / 1000;
        st->window = calloc((size_t)divider + 1, sizeof *st->window);
        if (st->window == NULL) {
            free(st);
            return MAPID_MEM_ALLOCATION_ERROR;
        }
    }
    fi->priv = st;
    fi->result_size = 0;
    {
        uint32_t records = count > 0 && (uint32_t)count < THRESHOLD_QUEUE_RECORDS
                               ? (uint32_t)count
                               : THRESHOLD_QUEUE_RECORDS;
        if (records < 2)
            records = 2; /* a record may take at most half of the queue */
        fi->ring_size = records * (uint32_t)((sizeof(struct threshold_event) + 28u + 7u) & ~7u);
    }
    return 0;
}

/* Per-packet mode: checks the value after this packet. Returns 1 (never filters). */
int stdflib_threshold_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct threshold_state *st = fi->priv;
    if (st->mode != MODE_PACKET || !st->started)
        return 1;
    if (st->count > 0 && st->events >= st->count)
        return 1;
    check(fi, st, pkt->ts, read_value(fi, st));
    return 1;
}

/* Takes the baseline at the first packet; TR_POLL and TR_MW check on their grid. */
void stdflib_threshold_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    struct threshold_state *st = fi->priv;
    uint64_t slots, steady;

    if (!st->started) {
        st->started = 1;
        st->prev = read_value(fi, st);
        st->next = ts + st->period;
        if (st->window)
            st->window[0] = st->prev;
        return;
    }
    if (st->mode == MODE_PACKET)
        return;
    slots = (uint64_t)st->divider + 1;
    /* The value cannot change during one call: after `steady` checks every further check
     * of this call gives the same answer, so a quiet run of grid points is skipped. */
    steady = st->mode == MODE_MW ? slots : is_difference(st->boundary) ? 2 : 1;
    for (uint64_t n = 0; ts >= st->next; n++) {
        uint64_t at = st->next;
        __int128 v;
        int crossed;
        if (st->count > 0 && st->events >= st->count)
            return;
        v = read_value(fi, st);
        if (st->mode == MODE_POLL) {
            crossed = check(fi, st, at, v);
        } else {
            __int128 increase;
            st->k++;
            st->window[st->k % slots] = v;
            crossed = 0;
            if (st->k >= (uint64_t)st->divider) {
                increase = v - st->window[(st->k - (uint64_t)st->divider) % slots];
                crossed = crosses(st, increase);
                if (crossed)
                    emit(fi, st, at, increase);
            }
        }
        if (!crossed && n + 1 >= steady && ts - at >= 2 * st->period) {
            /* Jump to the last grid point <= ts (the window holds v everywhere by now). */
            uint64_t skip = (ts - at) / st->period - 1;
            st->next += skip * st->period;
            st->k += skip;
        }
        if (st->next > UINT64_MAX - st->period)
            return;
        st->next += st->period;
    }
}

void stdflib_threshold_cleanup(struct mapi_fn_instance *fi)
{
    struct threshold_state *st = fi->priv;
    if (st != NULL)
        free(st->window);
    free(st);
    fi->priv = NULL;
}
