/*
 * flib/stdflib/burst.c - BURST (not implemented yet: instance() refuses with 7009).
 */
#include "stdflib.h"

int stdflib_burst_instance(struct mapi_fn_instance *fi)
{
    stdflib_errmsg(fi, "BURST is not implemented yet");
    return MFUNCT_NOT_SUPPORTED;
}

int stdflib_burst_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)fi;
    (void)pkt;
    return 1;
}

void stdflib_burst_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
