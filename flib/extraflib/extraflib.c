/*
 * flib/extraflib/extraflib.c - entry point of extraflib, MAPI's library of extra functions
 * (reference §3.4).
 *
 * mapid dlopens extraflib.so from libpath (list it in mapi.conf's libs=), calls the one
 * exported symbol, mapi_flib_entry(), checks abi_version and struct_size, and looks functions
 * up by name in the table below. Each function lives in its own file, named after it
 * (anonymizeip.c, ...); this file only assembles the table. For now the table holds
 * ANONYMIZEIP; COOKING, EXPIRED_FLOWS, REGEXP and TOP of the original go here when built.
 */
#include <stddef.h>

#include "extraflib.h"

static const struct mapi_fn_def extraflib_functions[] = {
    {
        .name = "ANONYMIZEIP",
        .argdescr = "s",
        .descr = "Crypto-PAn prefix-preserving anonymisation of the IPv4/IPv6 addresses, as "
                 "libtrace's traceanon -s -d -c KEY (key string, \"\" = anon_key_file; "
                 "result: unsigned long long, packets anonymised)",
        .flags = MAPI_FN_MODIFIES,
        .instance = extraflib_anonymizeip_instance,
        .process = extraflib_anonymizeip_process,
        .cleanup = extraflib_anonymizeip_cleanup,
    },
    {.name = NULL},
};

static const struct mapi_flib extraflib_lib = {
    .abi_version = MAPI_FLIB_ABI_VERSION,
    .struct_size = sizeof(struct mapi_flib),
    .name = "extraflib",
    .descr = "Extra functions: ANONYMIZEIP (Crypto-PAn)",
    .functions = extraflib_functions,
};

/* The library's description; the only exported symbol. Returns a pointer to static data. */
__attribute__((visibility("default"))) const struct mapi_flib *mapi_flib_entry(void)
{
    return &extraflib_lib;
}
