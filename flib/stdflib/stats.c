/*
 * flib/stdflib/stats.c - STATS (not implemented yet: instance() refuses with 7009).
 */
#include "stdflib.h"

int stdflib_stats_instance(struct mapi_fn_instance *fi)
{
    stdflib_errmsg(fi, "STATS is not implemented yet");
    return MFUNCT_NOT_SUPPORTED;
}

int stdflib_stats_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)fi;
    (void)pkt;
    return 1;
}

void stdflib_stats_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    (void)fi;
    (void)ts;
}

void stdflib_stats_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
