/*
 * flib/extraflib/extraflib.h - internal header of extraflib, the library of MAPI functions
 * beyond stdflib (reference §3.4: ANONYMIZEIP; later COOKING, EXPIRED_FLOWS, REGEXP, TOP).
 *
 * Not installed. Every file implements one function and exposes its callbacks here;
 * extraflib.c puts them into the table that mapi_flib_entry() returns. All names declared
 * here are hidden (EXTRAFLIB_HIDDEN), so the only symbol the .so exports is mapi_flib_entry.
 */
#ifndef EXTRAFLIB_EXTRAFLIB_H
#define EXTRAFLIB_EXTRAFLIB_H

#include <stddef.h>
#include <stdint.h>

#include "mapi/errors.h"
#include "mapi/flib.h"

#define EXTRAFLIB_HIDDEN __attribute__((visibility("hidden")))

/* ANONYMIZEIP (anonymizeip.c) */
EXTRAFLIB_HIDDEN int extraflib_anonymizeip_instance(struct mapi_fn_instance *fi);
EXTRAFLIB_HIDDEN int extraflib_anonymizeip_process(struct mapi_fn_instance *fi,
                                                   struct mapi_pkt *pkt);
EXTRAFLIB_HIDDEN void extraflib_anonymizeip_cleanup(struct mapi_fn_instance *fi);

#endif /* EXTRAFLIB_EXTRAFLIB_H */
