/*
 * daemon/mapid/refs.c - references between functions: the host API that lets a function read
 * (and reset) the result of another function, in its own flow or in another flow of the same
 * application and device (BINOP, STATS, DIST, BUCKET, RES2FILE, THRESHOLD, SYNC).
 *
 * A reference is opened in the referencing function's instance() on the control thread. The
 * rules keep every read on one thread and every lifetime simple:
 *   - the referenced flow must run on the same device, so its functions and the referencing
 *     function run on the same capture thread: values are read between packets, never while
 *     being written, and resets never race with process();
 *   - it must be the referencing function's own flow (a function applied earlier) or a flow
 *     created before (a lower id), so references never form cycles; a flow reference (fid 0,
 *     SYNC) may name any flow of the device, since it holds only the flow's status cell;
 *   - the referencing instance holds a reference count on another flow (struct flow refs), so
 *     that flow's memory lives until the instance goes, even if the flow closes first (its
 *     values then stop changing);
 *   - a referenced flow leaves function sharing (flow->referenced), since a follower's results
 *     are copied only once per batch and a reset must not reach the other flows of a group.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/shm.h"
#include "daemon/mapid/mapid.h"

/* Bound of one read: spins, then yields for at most this long (see refs_read). */
#define REFS_READ_SPINS 1024u
#define REFS_READ_MAX_NS (1000u * 1000u)

struct mapi_ref {
    struct flow *flow;       /* referenced flow (function references only) */
    struct flow_cell *cell;  /* its status, held by every reference */
    struct fn_inst *fn;      /* referenced function, NULL for a flow reference (fid 0) */
    int counted;             /* we hold a reference count on flow (another flow than our own) */
    atomic_int stuck_logged; /* a read found the result locked for too long (logged once) */
    struct mapi_ref *next;
};

static void ref_error(struct mapi_fn_instance *fi, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ref_error(struct mapi_fn_instance *fi, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fi->errmsg, sizeof(fi->errmsg), fmt, ap);
    va_end(ap);
}

static int may_reference(const struct flow *self, const struct flow *target)
{
    return self->uid == 0 || self->uid == target->uid;
}

struct mapi_ref *refs_open(struct mapi_fn_instance *fi, int flow_id, int fid)
{
    struct fn_inst *me = (struct fn_inst *)fi;
    struct flow *self = me->flow;
    struct flow *target = flow_find(&g_mapid, flow_id);

    if (!target || !may_reference(self, target)) {
        ref_error(fi, "flow %d is not an open flow of yours", flow_id);
        return NULL;
    }
    if (target->dev != self->dev) {
        ref_error(fi, "flow %d runs on %s, not on this flow's device %s", flow_id,
                  target->dev->name, self->dev->name);
        return NULL;
    }
    if (fid != 0 && target != self && target->id > self->id) {
        ref_error(fi, "flow %d was created after this flow %d: reference earlier flows only",
                  flow_id, self->id);
        return NULL;
    }
    struct fn_inst *fn = NULL;
    if (fid != 0) {
        for (int i = 0; i < target->nfns; i++)
            if (target->fns[i]->fi.fid == fid)
                fn = target->fns[i];
        if (!fn) {
            ref_error(fi, "flow %d has no function %d%s", flow_id, fid,
                      target == self ? " applied before this one" : "");
            return NULL;
        }
    }
    struct mapi_ref *r = calloc(1, sizeof(*r));
    if (!r) {
        ref_error(fi, "out of memory");
        return NULL;
    }
    r->cell = target->cell;
    atomic_fetch_add(&r->cell->refs, 1);
    r->fn = fn;
    if (fid == 0) {
        /* A flow reference (SYNC) only reads the status: it holds the cell, not the flow,
         * so it may name any flow of the device, even one created later. */
    } else if (target != self) {
        r->flow = target;
        atomic_fetch_add(&target->refs, 1);
        r->counted = 1;
        if (!target->referenced) {
            /* Leave function sharing: the capture thread regroups at its next batch. */
            pthread_mutex_lock(&target->dev->lock);
            target->referenced = 1;
            target->dev->active_gen++;
            pthread_mutex_unlock(&target->dev->lock);
        }
    } else {
        r->flow = target;
        self->referenced = 1; /* not shareable anyway (the referencing function is not) */
    }
    r->next = me->refs;
    me->refs = r;
    return r;
}

void refs_release(struct fn_inst *fn)
{
    struct mapi_ref *r = fn->refs;
    while (r) {
        struct mapi_ref *next = r->next;
        if (r->counted)
            flow_put(r->flow);
        flow_cell_put(r->cell);
        free(r);
        r = next;
    }
    fn->refs = NULL;
}

uint32_t refs_size(const struct mapi_ref *r)
{
    return r && r->fn ? r->fn->fi.result_size : 0;
}

/* The referenced result, or NULL before its flow connected (or for a flow reference). */
static const void *ref_result(const struct mapi_ref *r)
{
    if (!r || !r->fn || atomic_load_explicit(&r->cell->status, memory_order_acquire) == FLOW_INIT)
        return NULL;
    return r->fn->fi.result;
}

uint32_t refs_read(const struct mapi_ref *r, void *buf, uint32_t len)
{
    const void *src = ref_result(r);
    uint32_t size = refs_size(r);
    if (!src || size == 0) {
        memset(buf, 0, len);
        return 0;
    }
    uint32_t n = len < size ? len : size;
    /* Bounded (mapid never waits without a bound on memory): on the capture thread the writer
     * is this same thread, so the word is never odd here; from cleanup() on another thread a
     * writer holds it for nanoseconds. A word that stays odd (a bug, or memory corrupted) makes
     * the value missing, as before connect, logged once per reference. */
    struct mapi_ref *w = (struct mapi_ref *)r; /* allocated non-const by refs_open */
    /* Once a result was found stuck, later reads of it only spin (no 1 ms per packet). */
    uint64_t max_ns =
        atomic_load_explicit(&w->stuck_logged, memory_order_relaxed) ? 0 : REFS_READ_MAX_NS;
    if (mapi_seqlock_read(r->fn->fi.result_seq, src, buf, n, REFS_READ_SPINS, max_ns) < 0) {
        if (!atomic_exchange(&w->stuck_logged, 1))
            mapi_log(LOG_LVL_ERROR,
                     "flow %d: result of function %d stayed locked (seqlock word odd); reading "
                     "it as missing",
                     r->flow ? r->flow->id : -1, r->fn->fi.fid);
        memset(buf, 0, len);
        return 0;
    }
    if (n < len)
        memset((char *)buf + n, 0, len - n);
    return size;
}

uint64_t refs_read_u64(const struct mapi_ref *r)
{
    uint8_t b[8];
    refs_read(r, b, sizeof(b));
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

int refs_reset(const struct mapi_ref *r)
{
    if (!ref_result(r) || !r->fn->fi.def->reset)
        return 0;
    r->fn->fi.def->reset(&r->fn->fi);
    return 1;
}

int refs_flow_status(const struct mapi_ref *r)
{
    if (!r)
        return FLOW_CLOSED;
    int st = atomic_load_explicit(&r->cell->status, memory_order_acquire);
    /* Connected, but the capture thread has not picked it up yet: it sees no packet yet. */
    if (st == FLOW_ACTIVE && !atomic_load_explicit(&r->cell->running, memory_order_acquire))
        return FLOW_INIT;
    return st;
}
