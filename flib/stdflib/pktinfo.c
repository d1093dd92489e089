/*
 * flib/stdflib/pktinfo.c - PKTINFO "i": publishes one property of the last packet that reached
 * the function: PKT_TS (0) its 32.32 timestamp or PKT_SIZE (1) its length on the wire (wlen),
 * constants of mapi/pktinfo.h.
 *
 * Result: one uint64_t (8 bytes), updated under the result seqlock. Any other argument value
 * is error 7001 (MFUNCT_INVALID_ARGUMENT_1). The original MAPI returned 7002 here, although
 * the value is the first argument; we use the number of the argument, like every other
 * function.
 */
#include "mapi/pktinfo.h"
#include "stdflib.h"

/* Checks the property. Returns 0 or 7001. */
int stdflib_pktinfo_instance(struct mapi_fn_instance *fi)
{
    int32_t what = fi->args[0].v.i;

    if (what != PKT_TS && what != PKT_SIZE) {
        stdflib_errmsg(fi, "%d is neither PKT_TS (%d) nor PKT_SIZE (%d)", (int)what, PKT_TS,
                       PKT_SIZE);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    fi->result_size = sizeof(uint64_t);
    return 0;
}

/* Stores the property of this packet. Returns 1 (never filters). */
int stdflib_pktinfo_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    uint64_t *r = fi->result;
    uint64_t v = fi->args[0].v.i == PKT_TS ? pkt->ts : (uint64_t)pkt->wlen;

    mapi_result_write_begin(fi);
    __atomic_store_n(r, v, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
    return 1;
}
