/*
 * flib/stdflib/hashsamp.c - HASHSAMP (not implemented yet: instance() refuses with 7009).
 */
#include "stdflib.h"

int stdflib_hashsamp_instance(struct mapi_fn_instance *fi)
{
    stdflib_errmsg(fi, "HASHSAMP is not implemented yet");
    return MFUNCT_NOT_SUPPORTED;
}

int stdflib_hashsamp_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)fi;
    (void)pkt;
    return 1;
}

void stdflib_hashsamp_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
