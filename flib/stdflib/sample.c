/*
 * flib/stdflib/sample.c - SAMPLE "ii" value, mode: keeps a sample of the packets.
 *
 *   PERIODIC (2)       passes every value-th packet that reaches it: the value-th, the
 *                      2*value-th, ... (value >= 1; value 1 passes everything).
 *   PROBABILISTIC (3)  passes each packet independently with probability value percent
 *                      (0..100), drawn from a per-instance splitmix64 generator seeded from
 *                      the flow, the fid, the clock and the instance's address.
 * The mode constants are in the installed header mapi/sample.h.
 *
 * Deliberate differences from the original, which clamped value (<= 0 became 1, percentages
 * to 0..100) and treated any unknown mode as PERIODIC: we reject such arguments so that
 * mistakes show up at apply time. Errors: 7002 unknown mode (checked first, since the valid
 * range of value depends on it), 7001 value out of range for the mode.
 */
#include <stdlib.h>
#include <time.h>

#include "mapi/sample.h"
#include "stdflib.h"

struct sample {
    int mode;
    uint32_t value;  /* PERIODIC: period; PROBABILISTIC: percent */
    uint32_t count;  /* PERIODIC: packets since the last one passed */
    uint64_t state;  /* PROBABILISTIC: splitmix64 state */
    uint64_t thresh; /* PROBABILISTIC: pass if the next 64-bit draw is below this */
    int always;      /* PROBABILISTIC with 100 percent */
};

static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * Validates (value, mode) and sets up the sampler. Returns 0, 7002 (mode neither PERIODIC
 * nor PROBABILISTIC), 7001 (value <= 0 for PERIODIC, outside 0..100 for PROBABILISTIC),
 * 7000 (missing arguments) or 3084.
 */
int stdflib_sample_instance(struct mapi_fn_instance *fi)
{
    struct sample *s;
    struct timespec ts;
    int32_t value, mode;

    if (fi->nargs < 2)
        return MFUNCT_INVALID_ARGUMENT;
    value = fi->args[0].v.i;
    mode = fi->args[1].v.i;
    if (mode != PERIODIC && mode != PROBABILISTIC) {
        stdflib_errmsg(fi, "SAMPLE: mode %d is neither PERIODIC (%d) nor PROBABILISTIC (%d)",
                       (int)mode, PERIODIC, PROBABILISTIC);
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    if (mode == PERIODIC && value <= 0) {
        stdflib_errmsg(fi, "SAMPLE: the period must be at least 1, not %d", (int)value);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (mode == PROBABILISTIC && (value < 0 || value > 100)) {
        stdflib_errmsg(fi, "SAMPLE: the percentage must be 0..100, not %d", (int)value);
        return MFUNCT_INVALID_ARGUMENT_1;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    s->mode = mode;
    s->value = (uint32_t)value;
    if (mode == PROBABILISTIC) {
        /* P(draw < value * floor(2^64 / 100)) = value / 100 up to 2^-57. */
        s->thresh = (uint64_t)value * (UINT64_MAX / 100);
        s->always = value == 100;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s->state = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        s->state ^=
            ((uint64_t)(uint32_t)fi->flow_id << 32 | (uint32_t)fi->fid) * 0xd6e8feb86659fd93ull;
        s->state ^= (uint64_t)(uintptr_t)fi;
        (void)splitmix64(&s->state);
    }
    fi->priv = s;
    fi->result_size = 0;
    return 0;
}

/* Returns 1 for a packet in the sample, 0 for one left out. */
int stdflib_sample_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct sample *s = fi->priv;

    (void)pkt;
    if (s->mode == PERIODIC) {
        if (++s->count < s->value)
            return 0;
        s->count = 0;
        return 1;
    }
    return s->always || splitmix64(&s->state) < s->thresh;
}

void stdflib_sample_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
