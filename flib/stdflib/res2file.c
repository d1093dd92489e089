/*
 * flib/stdflib/res2file.c - RES2FILE (not implemented yet: instance() refuses with 7009).
 */
#include "stdflib.h"

int stdflib_res2file_instance(struct mapi_fn_instance *fi)
{
    stdflib_errmsg(fi, "RES2FILE is not implemented yet");
    return MFUNCT_NOT_SUPPORTED;
}

int stdflib_res2file_init(struct mapi_fn_instance *fi)
{
    (void)fi;
    return 0;
}

int stdflib_res2file_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)fi;
    (void)pkt;
    return 1;
}

void stdflib_res2file_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    (void)fi;
    (void)ts;
}

void stdflib_res2file_flush(struct mapi_fn_instance *fi)
{
    (void)fi;
}

void stdflib_res2file_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
