/*
 * flib/stdflib/dist.c - DIST (not implemented yet: instance() refuses with 7009).
 */
#include "stdflib.h"

int stdflib_dist_instance(struct mapi_fn_instance *fi)
{
    stdflib_errmsg(fi, "DIST is not implemented yet");
    return MFUNCT_NOT_SUPPORTED;
}

int stdflib_dist_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)fi;
    (void)pkt;
    return 1;
}

void stdflib_dist_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
