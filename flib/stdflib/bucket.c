/*
 * flib/stdflib/bucket.c - BUCKET "rfsi" flow, fid, interval, reset: samples the value of
 * another function (e.g. PKT_COUNTER or BYTE_COUNTER) once per interval of packet time and
 * queues one struct bucket_data {timestamp, data} (mapi/bucket.h) per interval, which the
 * application reads one by one with mapi_read_results (a MAPI_FN_QUEUE function).
 *
 *   flow, fid  the referenced function: any function with a result, in this flow (applied
 *              before BUCKET) or in an earlier flow of the same application and device. Its
 *              first 8 bytes are read as an unsigned number (smaller results zero-extended).
 *              A refused flow is 7001, a refused function or one without a result 7002
 *              (7009 from a mapid without references).
 *   interval   a time string ("1s", "250ms", "1.5m" = minutes, a bare number = seconds), or
 *                "0"   a bucket per packet that reaches BUCKET (in process(), so it holds the
 *                      value after the referenced function saw the packet when that one runs
 *                      earlier in the same flow); timestamp = the packet's;
 *                "-1"  one bucket at the end of the trace (flush()), timestamp = the first
 *                      packet's (0 if there was none).
 *              Malformed or a zero period: 7003.
 *   reset      1: the referenced function is reset after every bucket; 0: not; else 7004.
 *
 * Periodic intervals form a grid from the first packet offered to the flow (t0):
 * interval k = [t0 + k*I, t0 + (k+1)*I). mapid calls tick() with every packet's timestamp
 * BEFORE any function processes the packet, so a bucket closed in tick() holds exactly the
 * packets of its interval. Its timestamp is the START of the interval; empty intervals give a
 * bucket too (the value as it is: unchanged for a cumulative counter, 0 after a reset).
 * flush() (end of a trace file) queues the last, partial interval, so nothing is lost.
 *
 * Differences from the original: no empty first slot (the original's reader started at slot 0,
 * which the writer never filled); the timestamp is the start of the interval (the original
 * stamped the end); empty intervals carry the value read rather than a hard 0; the last partial
 * interval is delivered; "m" means minutes; a bucket per packet for "0" also resets when asked
 * (as the original). A gap of more than BUCKET_MAX_EMPTY empty intervals (a bogus timestamp
 * jump) is cut short: after that many empty buckets the grid skips to the interval of the new
 * packet, with a warning in mapid's log, instead of stalling the capture thread.
 *
 * The queue holds about BUCKET_QUEUE_RECORDS buckets; on trace files a full queue waits for the
 * application, on live devices it drops.
 */
#include <stdlib.h>
#include <string.h>

#include "mapi/bucket.h"
#include "stdflib.h"

#define BUCKET_QUEUE_RECORDS 65536u
/* Queue cost of one record: 16 bytes + 28 bytes of header, rounded up to 8 (see MAPI_FN_QUEUE). */
#define BUCKET_QUEUE_RECORD_COST ((sizeof(struct bucket_data) + 28u + 7u) & ~(size_t)7u)
#define BUCKET_MAX_EMPTY (1u << 20)

enum bucket_mode {
    BUCKET_PERIODIC,  /* a bucket per interval of packet time */
    BUCKET_EVERY_PKT, /* "0" */
    BUCKET_AT_END,    /* "-1" */
};

struct bucket_state {
    const struct mapi_ref *ref; /* the referenced function */
    enum bucket_mode mode;
    int reset;         /* reset the referenced function after each bucket */
    uint64_t interval; /* ticks, BUCKET_PERIODIC only */
    int started;       /* a packet has been ticked */
    uint64_t start;    /* start of the open interval (periodic), or of the trace (at end) */
    int warned_gap;    /* the empty-interval cap was logged */
    int flushed;       /* flush() ran: the trace is over */
};

/* Queues the bucket {ts, current value} and resets the source if asked. */
static void emit_bucket(struct mapi_fn_instance *fi, struct bucket_state *st, uint64_t ts)
{
    struct bucket_data b;

    memset(&b, 0, sizeof b);
    b.timestamp = ts;
    b.data = fi->host->ref_read_u64(st->ref);
    fi->host->queue_put(fi, &b, sizeof b, ts);
    if (st->reset)
        fi->host->ref_reset(st->ref);
}

/*
 * Parses the arguments and opens the reference. Returns 0; 7001 (flow refused), 7002
 * (function refused or without a result), 7003 (bad interval), 7004 (reset not 0/1), each
 * with a message in fi->errmsg; or MAPID_MEM_ALLOCATION_ERROR.
 */
int stdflib_bucket_instance(struct mapi_fn_instance *fi)
{
    const char *interval = fi->args[2].v.s;
    int reset = fi->args[3].v.i;
    const struct mapi_ref *ref;
    struct bucket_state *st;
    enum bucket_mode mode = BUCKET_PERIODIC;
    uint64_t ticks = 0;
    int err;

    err = stdflib_open_numeric_ref(fi, 1, &ref);
    if (err != 0)
        return err;
    if (interval == NULL) {
        stdflib_errmsg(fi, "missing interval");
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    if (strcmp(interval, "0") == 0)
        mode = BUCKET_EVERY_PKT;
    else if (strcmp(interval, "-1") == 0)
        mode = BUCKET_AT_END;
    else if (stdflib_parse_duration(interval, &ticks) < 0 || ticks == 0) {
        stdflib_errmsg(fi, "bad interval \"%s\" (a period like \"1s\", \"0\" or \"-1\")", interval);
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    if (reset != 0 && reset != 1) {
        stdflib_errmsg(fi, "reset must be 0 or 1, not %d", reset);
        return MFUNCT_INVALID_ARGUMENT_4;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->ref = ref;
    st->mode = mode;
    st->reset = reset;
    st->interval = ticks;
    fi->priv = st;
    fi->result_size = 0;
    fi->ring_size = (uint32_t)(BUCKET_QUEUE_RECORDS * BUCKET_QUEUE_RECORD_COST);
    return 0;
}

/* Interval "0": a bucket per packet. Returns 1 (never filters). */
int stdflib_bucket_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct bucket_state *st = fi->priv;

    if (st->mode == BUCKET_EVERY_PKT)
        emit_bucket(fi, st, pkt->ts);
    return 1;
}

/* Before every packet: opens the grid at the first one, closes the intervals that end at or
 * before ts (periodic mode). */
void stdflib_bucket_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    struct bucket_state *st = fi->priv;
    uint32_t empty = 0;

    if (!st->started) {
        st->started = 1;
        st->start = ts;
        return;
    }
    if (st->mode != BUCKET_PERIODIC)
        return;
    while (ts >= st->start && ts - st->start >= st->interval) {
        if (empty == BUCKET_MAX_EMPTY) {
            if (!st->warned_gap) {
                st->warned_gap = 1;
                fi->host->log(1,
                              "BUCKET (flow %d, fid %d): timestamp jump of more than %u "
                              "intervals; the empty buckets after that are skipped",
                              fi->flow_id, fi->fid, BUCKET_MAX_EMPTY);
            }
            st->start += (ts - st->start) / st->interval * st->interval;
            break;
        }
        emit_bucket(fi, st, st->start);
        st->start += st->interval;
        empty++;
    }
}

/* End of the trace: the last, partial interval (periodic), or the one bucket of "-1". */
void stdflib_bucket_flush(struct mapi_fn_instance *fi)
{
    struct bucket_state *st = fi->priv;

    if (st->flushed)
        return;
    st->flushed = 1;
    if (st->mode == BUCKET_AT_END)
        emit_bucket(fi, st, st->started ? st->start : 0);
    else if (st->mode == BUCKET_PERIODIC && st->started)
        emit_bucket(fi, st, st->start);
}

void stdflib_bucket_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
