/*
 * flib/stdflib/startstop.c - STARTSTOP "ss": keeps the packets of a time window.
 *
 * start and stop are time strings:
 *   "+DURATION"            relative: a number (decimals allowed) and a unit, "s" seconds,
 *                          "ms", "us", "m" minutes (the original multiplied by about 6 s, a bug
 *                          we fix), "h" hours; no unit means seconds (the original took raw
 *                          32.32 ticks). "+10s", "+0.5", "+250ms".
 *   "%Y-%m-%d %H:%M:%S"    absolute, local time (strptime + mktime), e.g. "2024-05-01 12:00:00".
 * A relative start counts from `first`, the timestamp of the first packet that reaches the
 * function, and needs a relative stop (else 7000): packets pass while
 *     first + start <= ts <= first + start + stop.
 * An absolute start opens the window at that time; the stop is then either absolute (the end
 * of the window, not before start, else 7002) or "+DURATION" (start + duration).
 * Unparsable strings: 7001 for start, 7002 for stop. All comparisons are on packet time.
 *
 * Result: struct { uint64_t first, first_processed, last; } (24 bytes) = the timestamp of the
 * first packet seen, of the first packet passed and of the last packet passed (0 until then).
 * Window and "seen" state live in priv, so the function is not MAPI_FN_SHAREABLE.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stdflib.h"

struct startstop_result {
    uint64_t first;
    uint64_t first_processed;
    uint64_t last;
};

struct startstop_state {
    int relative;    /* start (and stop) are durations from the first packet */
    int seen;        /* a packet has reached the function */
    int passed;      /* a packet has passed */
    uint64_t start;  /* relative: duration; absolute: 32.32 time */
    uint64_t stop;   /* relative: duration */
    uint64_t lo, hi; /* the window, inclusive (relative: set at the first packet) */
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Parses "%Y-%m-%d %H:%M:%S" (local time) into a 32.32 time. Returns 0, or -1. */
static int parse_absolute(const char *s, uint64_t *out)
{
    struct tm tm;
    const char *end;
    time_t t;

    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    tm.tm_isdst = -1;
    t = mktime(&tm);
    if (t < 0 || (uint64_t)t > UINT32_MAX)
        return -1;
    *out = (uint64_t)t << 32;
    return 0;
}

/* Parses one time string: sets *relative and *v. Returns 0, or -1 if malformed. */
static int parse_time(const char *s, int *relative, uint64_t *v)
{
    if (s == NULL)
        return -1;
    *relative = s[0] == '+';
    return *relative ? stdflib_parse_duration(s + 1, v) : parse_absolute(s, v);
}

/* Parses start and stop. Returns 0, 7000, 7001 or 7002 (with a message) or 3084. */
int stdflib_startstop_instance(struct mapi_fn_instance *fi)
{
    const char *start = fi->args[0].v.s, *stop = fi->args[1].v.s;
    int rel_start, rel_stop;
    uint64_t vstart, vstop;
    struct startstop_state *st;

    if (parse_time(start, &rel_start, &vstart) < 0) {
        stdflib_errmsg(fi, "bad start time \"%s\" (\"+10s\" or \"%%Y-%%m-%%d %%H:%%M:%%S\")",
                       start ? start : "(null)");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (parse_time(stop, &rel_stop, &vstop) < 0) {
        stdflib_errmsg(fi, "bad stop time \"%s\" (\"+10s\" or \"%%Y-%%m-%%d %%H:%%M:%%S\")",
                       stop ? stop : "(null)");
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    if (rel_start && !rel_stop) {
        stdflib_errmsg(fi, "a relative start (\"%s\") needs a relative stop, not \"%s\"", start,
                       stop);
        return MFUNCT_INVALID_ARGUMENT;
    }
    if (!rel_start && !rel_stop && vstop < vstart) {
        stdflib_errmsg(fi, "stop \"%s\" is before start \"%s\"", stop, start);
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->relative = rel_start;
    st->start = vstart;
    st->stop = vstop;
    if (!rel_start) {
        st->lo = vstart;
        st->hi = rel_stop ? sat_add(vstart, vstop) : vstop;
    }
    fi->priv = st;
    fi->result_size = sizeof(struct startstop_result);
    return 0;
}

/* Returns 1 if the packet lies in the window, else 0. */
int stdflib_startstop_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct startstop_state *st = fi->priv;
    struct startstop_result *r = fi->result;
    uint64_t ts = pkt->ts;
    int pass;

    if (!st->seen) {
        st->seen = 1;
        if (st->relative) {
            st->lo = sat_add(ts, st->start);
            st->hi = sat_add(st->lo, st->stop);
        }
        mapi_result_write_begin(fi);
        __atomic_store_n(&r->first, ts, __ATOMIC_RELAXED);
        mapi_result_write_end(fi);
    }
    pass = st->lo <= ts && ts <= st->hi;
    if (pass) {
        mapi_result_write_begin(fi);
        if (!st->passed)
            __atomic_store_n(&r->first_processed, ts, __ATOMIC_RELAXED);
        __atomic_store_n(&r->last, ts, __ATOMIC_RELAXED);
        mapi_result_write_end(fi);
        st->passed = 1;
    }
    return pass;
}

void stdflib_startstop_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
