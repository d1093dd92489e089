/*
 * flib/stdflib/gap.c - GAP "": the difference of the 32.32 timestamps of this packet and of the
 * previous packet that reached the function (0 for the first packet, and 0 when the
 * timestamps go backwards, so the unsigned result never wraps).
 *
 * Result: one uint64_t (8 bytes), updated under the result seqlock. The previous timestamp
 * is kept in priv, which is why GAP is not MAPI_FN_SHAREABLE (that flag requires every bit of
 * packet-dependent state to live in the result).
 */
#include <stdlib.h>

#include "stdflib.h"

struct gap_state {
    int seen;      /* a packet has reached the function */
    uint64_t prev; /* its timestamp */
};

/* No argument; allocates the state. Returns 0 or MAPID_MEM_ALLOCATION_ERROR. */
int stdflib_gap_instance(struct mapi_fn_instance *fi)
{
    struct gap_state *st = calloc(1, sizeof *st);

    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    fi->priv = st;
    fi->result_size = sizeof(uint64_t);
    return 0;
}

/* Publishes the gap to the previous packet. Returns 1 (never filters). */
int stdflib_gap_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct gap_state *st = fi->priv;
    uint64_t *r = fi->result;
    uint64_t gap = 0;

    if (st->seen && pkt->ts > st->prev)
        gap = pkt->ts - st->prev;
    st->seen = 1;
    st->prev = pkt->ts;
    mapi_result_write_begin(fi);
    __atomic_store_n(r, gap, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
    return 1;
}

void stdflib_gap_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
