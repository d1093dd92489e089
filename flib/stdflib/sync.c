/*
 * flib/stdflib/sync.c - SYNC "R" flows: drops the flow's packets until none of the listed
 * flows is still being set up (FLOW_INIT, i.e. not connected yet), then passes everything.
 * Applied to a flow that lists the flows it should be compared with, it makes that flow start
 * counting no earlier than the last of them.
 *
 * The argument is the application's "fd1,fd2,..." list; libmapi translates the descriptors
 * to mapid's flow ids ('R'), and each one is opened as a flow reference
 * (host->ref_open(fi, id, 0)), which mapid grants for any flow of the same user on the same
 * device, created before or after this one (a flow reference holds only the flow's status).
 * A listed flow counts as connected once the capture thread runs it, so flows that SYNC
 * together start on the same packet. An empty or malformed list, more than
 * SYNC_MAX_FLOWS entries, or a flow mapid refuses: 7001 (message in errmsg).
 *
 * Once every listed flow has left FLOW_INIT (connected, finished or closed) the function
 * stops looking: a flow that closes later does not stop this one.
 *
 * Differences from the original: it took a plain string 's' of descriptors that mapid looked
 * up untranslated, and returned 7002 for an unknown one (7001 here, the argument's position).
 */
#include <stdlib.h>

#include "mapi.h"
#include "stdflib.h"

#define SYNC_MAX_FLOWS 256

struct sync_state {
    int nrefs;
    int synced; /* every listed flow has left FLOW_INIT */
    const struct mapi_ref *refs[SYNC_MAX_FLOWS];
};

/* Opens a reference to every listed flow. Returns 0, 7001 or MAPID_MEM_ALLOCATION_ERROR. */
int stdflib_sync_instance(struct mapi_fn_instance *fi)
{
    const char *list = fi->args[0].v.s;
    int ids[SYNC_MAX_FLOWS];
    int n = stdflib_parse_int_list(list, 1, 0x7fffffff, ids, SYNC_MAX_FLOWS);
    struct sync_state *st;

    if (n <= 0) {
        stdflib_errmsg(fi, "bad flow list \"%s\" (\"fd1,fd2,...\", at most %d flows)",
                       list ? list : "(null)", SYNC_MAX_FLOWS);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    for (int i = 0; i < n; i++) {
        st->refs[i] = fi->host->ref_open(fi, ids[i], 0);
        if (st->refs[i] == NULL) {
            free(st);
            return MFUNCT_INVALID_ARGUMENT_1; /* mapid wrote the reason into errmsg */
        }
    }
    st->nrefs = n;
    fi->priv = st;
    fi->result_size = 0;
    return 0;
}

/* Returns 0 while a listed flow is in FLOW_INIT, then 1 for good. */
int stdflib_sync_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct sync_state *st = fi->priv;
    (void)pkt;
    if (st->synced)
        return 1;
    for (int i = 0; i < st->nrefs; i++)
        if (fi->host->ref_flow_status(st->refs[i]) == FLOW_INIT)
            return 0;
    st->synced = 1;
    return 1;
}

void stdflib_sync_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
