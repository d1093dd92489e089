/*
 * tests/testflib.c - a function library for the tests only (built as build/flib/testflib.so,
 * never installed): functions that misbehave on purpose, to check that mapid survives them.
 *
 *   STALL "i"   seconds: on the first packet, the capture thread sleeps that long (and ignores
 *               everything meanwhile), as a function stuck in a slow call would. mapid must
 *               not wait for it without a bound when the flow closes (device_stop).
 */
#include <stdio.h>
#include <time.h>

#include "mapi/errors.h"
#include "mapi/flib.h"

static int stall_instance(struct mapi_fn_instance *fi)
{
    if (fi->nargs != 1 || fi->args[0].v.i < 0 || fi->args[0].v.i > 600) {
        snprintf(fi->errmsg, sizeof(fi->errmsg), "STALL takes 0 to 600 seconds");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    fi->priv = NULL;
    return 0;
}

static int stall_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    (void)pkt;
    if (fi->priv)
        return 1;
    fi->priv = fi; /* only once */
    struct timespec left = {fi->args[0].v.i, 0};
    while (nanosleep(&left, &left) != 0)
        ;
    return 1;
}

static const struct mapi_fn_def testflib_functions[] = {
    {
        .name = "STALL",
        .argdescr = "i",
        .descr = "test only: the capture thread sleeps N seconds on the first packet",
        .instance = stall_instance,
        .process = stall_process,
    },
    {.name = NULL},
};

static const struct mapi_flib testflib = {
    .abi_version = MAPI_FLIB_ABI_VERSION,
    .struct_size = sizeof(struct mapi_flib),
    .name = "testflib",
    .descr = "misbehaving functions for mapid's tests",
    .functions = testflib_functions,
};

/* The library's descriptor (static storage). */
__attribute__((visibility("default"))) const struct mapi_flib *mapi_flib_entry(void);

const struct mapi_flib *mapi_flib_entry(void)
{
    return &testflib;
}
