/*
 * flib/stdflib/dist.c - DIST "rfsss" (flow, fid, min, max, interval): a histogram of another
 * function's unsigned 64-bit value, one sample per packet that reaches DIST (mapi/dist.h,
 * dist_t: {min, max, intervals, data[intervals + 1]}).
 *
 * min, max and interval are strings: a plain decimal integer ("1500") is that number (DIST is
 * mostly used over sizes and counts); a time string with a unit ("10ms", "1.5s", "2m" =
 * minutes) is converted to 32.32 ticks (for GAP or PKT_TS values). A number with a fraction but
 * no unit ("1.5") is refused as ambiguous.
 *
 * Slots (intervals = ceil((max - min) / interval)):
 *   data[0]           v < min
 *   data[k]           min + (k-1)*interval <= v < min + k*interval, 1 <= k < intervals
 *   data[intervals]   v >= min + (intervals-1)*interval: the last bucket, open-ended, which
 *                     also counts every v > max (the original's "slot intervals if v > max")
 * Differences from the original: it used slot ceil((v-min-1)/interval), which put v == min in
 * slot 0 together with the values below min and made every bucket closed on the right; here
 * the buckets are half-open and slot 0 holds only v < min. max must be greater than min (with
 * max == min there would be no bucket at all).
 *
 * Errors of instance(): 7001 bad flow, 7002 bad fid or a function without a result, 7003 bad
 * min, 7004 bad max or max <= min, 7005 bad or zero interval, or more than DIST_MAX_INTERVALS
 * buckets.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mapi/dist.h"
#include "stdflib.h"

#define DIST_MAX_INTERVALS (1ull << 20)

struct dist_state {
    const struct mapi_ref *src;
    uint64_t min, max, interval; /* the arguments */
    uint64_t intervals;          /* index of the last slot */
};

/*
 * Parses a DIST bound: a plain decimal integer, or a time string with a unit. Returns 0 and
 * sets *out, or -1 if s is not such a string (negative, malformed, too large).
 */
static int parse_dist_value(const char *s, uint64_t *out)
{
    const char *p, *end;
    char *num_end;
    unsigned long long v;

    if (s == NULL)
        return -1;
    p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == p)
        return -1;
    if (isdigit((unsigned char)*p)) {
        errno = 0;
        v = strtoull(p, &num_end, 10);
        if (num_end == end) {
            if (errno == ERANGE)
                return -1;
            *out = v;
            return 0;
        }
    }
    /* Not a plain integer: a time string, which must end with its unit. */
    if (!isalpha((unsigned char)end[-1]))
        return -1;
    return stdflib_parse_duration(s, out);
}

/* Parses the bounds and opens the reference. Returns 0 or a MAPI error number (see the file
 * comment), MAPID_MEM_ALLOCATION_ERROR if out of memory. */
int stdflib_dist_instance(struct mapi_fn_instance *fi)
{
    const char *smin = fi->args[2].v.s, *smax = fi->args[3].v.s, *sint = fi->args[4].v.s;
    struct dist_state *st;
    uint64_t span;
    int err;

    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    err = stdflib_open_numeric_ref(fi, 1, &st->src);
    if (err != 0)
        goto fail;
    err = MFUNCT_INVALID_ARGUMENT_3;
    if (parse_dist_value(smin, &st->min) < 0) {
        stdflib_errmsg(fi, "min \"%s\" is neither an integer nor a time string",
                       smin ? smin : "(null)");
        goto fail;
    }
    err = MFUNCT_INVALID_ARGUMENT_4;
    if (parse_dist_value(smax, &st->max) < 0) {
        stdflib_errmsg(fi, "max \"%s\" is neither an integer nor a time string",
                       smax ? smax : "(null)");
        goto fail;
    }
    if (st->max <= st->min) {
        stdflib_errmsg(fi, "max (%s) must be greater than min (%s)", smax, smin);
        goto fail;
    }
    err = MFUNCT_INVALID_ARGUMENT_5;
    if (parse_dist_value(sint, &st->interval) < 0 || st->interval == 0) {
        stdflib_errmsg(fi, "interval \"%s\" is not a positive integer or time string",
                       sint ? sint : "(null)");
        goto fail;
    }
    span = st->max - st->min;
    st->intervals = span / st->interval + (span % st->interval != 0);
    if (st->intervals > DIST_MAX_INTERVALS) {
        stdflib_errmsg(fi, "%llu buckets between min and max, at most %llu allowed",
                       (unsigned long long)st->intervals, DIST_MAX_INTERVALS);
        goto fail;
    }
    fi->priv = st;
    fi->result_size = (uint32_t)(sizeof(dist_t) + (st->intervals + 1) * sizeof(uint64_t));
    return 0;
fail:
    free(st);
    return err;
}

/* Writes min, max and intervals into the (zeroed) result. Returns 0. */
int stdflib_dist_init(struct mapi_fn_instance *fi)
{
    const struct dist_state *st = fi->priv;
    dist_t *d = fi->result;

    mapi_result_write_begin(fi);
    d->min = st->min;
    d->max = st->max;
    d->intervals = st->intervals;
    mapi_result_write_end(fi);
    return 0;
}

/* Counts the referenced value in its slot. Returns 1 (never filters). */
int stdflib_dist_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    const struct dist_state *st = fi->priv;
    dist_t *d = fi->result;
    uint64_t v = fi->host->ref_read_u64(st->src);
    uint64_t slot;

    (void)pkt;
    if (v < st->min) {
        slot = 0;
    } else {
        slot = (v - st->min) / st->interval + 1;
        if (slot > st->intervals)
            slot = st->intervals;
    }
    mapi_result_write_begin(fi);
    d->data[slot]++;
    mapi_result_write_end(fi);
    return 1;
}

/* Zeroes the counts (min, max and intervals stay). */
void stdflib_dist_reset(struct mapi_fn_instance *fi)
{
    const struct dist_state *st = fi->priv;
    dist_t *d = fi->result;

    if (d == NULL) /* not connected yet */
        return;
    memset(d->data, 0, (size_t)(st->intervals + 1) * sizeof d->data[0]);
}

void stdflib_dist_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
