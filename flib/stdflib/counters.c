/*
 * flib/stdflib/counters.c - PKT_COUNTER "" and BYTE_COUNTER "": the number of packets and
 * the number of bytes on the wire (wlen) that reached the function.
 *
 * Result: one uint64_t (8 bytes) in the flow's shared memory, updated under the result
 * seqlock so that clients read it without a system call. reset() zeroes it. The per-packet
 * work is one load, one add and three stores.
 */
#include "stdflib.h"

/* Both counters take no argument and publish a uint64_t. Returns 0. */
int stdflib_counter_instance(struct mapi_fn_instance *fi)
{
    fi->result_size = sizeof(uint64_t);
    return 0;
}

static inline void counter_add(struct mapi_fn_instance *fi, uint64_t n)
{
    uint64_t *c = fi->result;

    mapi_result_write_begin(fi);
    /* A relaxed atomic store: readers copy the word concurrently and retry on the seqlock. */
    __atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
}

/* Counts the packet. Returns 1 (never filters). */
int stdflib_pkt_counter_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)pkt;
    counter_add(fi, 1);
    return 1;
}

/* Adds the packet's length on the wire. Returns 1 (never filters). */
int stdflib_byte_counter_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    counter_add(fi, pkt->wlen);
    return 1;
}

void stdflib_counter_reset(struct mapi_fn_instance *fi)
{
    uint64_t *c = fi->result;

    if (c == NULL)
        return;
    mapi_result_write_begin(fi);
    __atomic_store_n(c, 0, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
}
