/*
 * flib/stdflib/binop.c - BINOP "irfrf" (op, flow1, fid1, flow2, fid2): on every packet that
 * reaches it, publishes v1 + v2 (BINOP_ADD) or v1 - v2 (BINOP_SUB) of the unsigned 64-bit values
 * of two other functions (mapi/binop.h). The referenced functions may live in this flow (applied
 * before BINOP) or in flows of the same device created before this one.
 *
 * Result: one uint64_t. The sum wraps modulo 2^64 like the original's; the difference saturates
 * at 0 where the original wrapped around to a huge number (a counter minus a larger counter
 * would otherwise read as 18446744073709551615-ish).
 *
 * Errors of instance(): 7001 op not BINOP_ADD / BINOP_SUB; 7002 / 7004 a bad flow; 7003 / 7005
 * a bad fid or a function without a result.
 */
#include <stdlib.h>
#include <string.h>

#include "mapi/binop.h"
#include "stdflib.h"

struct binop_state {
    int op;                     /* BINOP_ADD or BINOP_SUB */
    const struct mapi_ref *lhs; /* v1 */
    const struct mapi_ref *rhs; /* v2 */
};

/* Checks op and opens both references. Returns 0 or a MAPI error number (see the file
 * comment), MAPID_MEM_ALLOCATION_ERROR if out of memory. */
int stdflib_binop_instance(struct mapi_fn_instance *fi)
{
    int op = fi->args[0].v.i;
    struct binop_state *st;
    int err;

    if (op != BINOP_ADD && op != BINOP_SUB) {
        stdflib_errmsg(fi, "op %d is neither BINOP_ADD (0) nor BINOP_SUB (1)", op);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->op = op;
    err = stdflib_open_numeric_ref(fi, 2, &st->lhs);
    if (err == 0)
        err = stdflib_open_numeric_ref(fi, 4, &st->rhs);
    if (err != 0) {
        free(st);
        return err;
    }
    fi->priv = st;
    fi->result_size = sizeof(uint64_t);
    return 0;
}

/* Publishes v1 op v2. Returns 1 (never filters). */
int stdflib_binop_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    const struct binop_state *st = fi->priv;
    uint64_t v1 = fi->host->ref_read_u64(st->lhs);
    uint64_t v2 = fi->host->ref_read_u64(st->rhs);
    uint64_t v;

    (void)pkt;
    if (st->op == BINOP_ADD)
        v = v1 + v2;
    else
        v = v1 > v2 ? v1 - v2 : 0;
    mapi_result_write_begin(fi);
    __atomic_store_n((uint64_t *)fi->result, v, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
    return 1;
}

/* Zeroes the result (the next packet computes it again). */
void stdflib_binop_reset(struct mapi_fn_instance *fi)
{
    if (fi->result != NULL) /* NULL: not connected yet */
        __atomic_store_n((uint64_t *)fi->result, 0, __ATOMIC_RELAXED);
}

void stdflib_binop_cleanup(struct mapi_fn_instance *fi)
{
    free(fi->priv);
    fi->priv = NULL;
}
