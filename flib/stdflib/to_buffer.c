/*
 * flib/stdflib/to_buffer.c - TO_BUFFER "i" flag: delivers the packets that reach it to the
 * application, which reads them with mapi_get_next_pkt().
 *
 * The ring itself belongs to mapid: the function asks for one (MAPI_FN_RING, ring_size
 * UINT32_MAX = mapi.conf's buffer_size) and hands every packet to host->ring_put(). A full
 * ring on a live device drops the packet (mapid counts the drop); on a trace file ring_put
 * waits for room.
 *
 * The flag is WAIT (0: mapi_get_next_pkt blocks until a packet arrives) or NOWAIT (1: it
 * returns NULL at once when the ring is empty). The client side implements it in libmapi;
 * mapid learns it by convention: for any function with MAPI_FN_RING, the host reads
 * args[0].v.i as the WAIT/NOWAIT flag (it stays there, validated, for the instance's life).
 */
#include "stdflib.h"

#define TO_BUFFER_WAIT 0 /* same values as enum toba_flg of mapi.h */
#define TO_BUFFER_NOWAIT 1

/* Validates the flag and requests the ring. Returns 0, 7001 (not WAIT or NOWAIT) or 7000. */
int stdflib_to_buffer_instance(struct mapi_fn_instance *fi)
{
    if (fi->nargs < 1)
        return MFUNCT_INVALID_ARGUMENT;
    if (fi->args[0].v.i != TO_BUFFER_WAIT && fi->args[0].v.i != TO_BUFFER_NOWAIT) {
        stdflib_errmsg(fi, "TO_BUFFER: the flag must be WAIT (0) or NOWAIT (1), not %d",
                       (int)fi->args[0].v.i);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    fi->ring_size = UINT32_MAX;
    fi->result_size = 0;
    return 0;
}

/* Appends the packet to the ring. Returns 1 always: TO_BUFFER never filters. */
int stdflib_to_buffer_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    fi->host->ring_put(fi, pkt);
    return 1;
}
