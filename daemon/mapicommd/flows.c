/*
 * daemon/mapicommd/flows.c - the flows created through this mapicommd and their pumps (see
 * mapicommd.h).
 *
 * Registry: a list of struct mc_flow under one mutex, each with the libmapi descriptor (rfd),
 * the application token of the HELLO it was created under, and the connection that created
 * it. Lookups check the token, so an application can only name its own flows (also inside
 * flow references of APPLY arguments). A flow is reference-counted: the registry holds one
 * until it is closed, each request working on it holds one.
 *
 * Pumps: libmapi's mapi_get_next_pkt on a TO_BUFFER applied with WAIT, and mapi_read_results
 * on a MAPI_FN_QUEUE function, block until a record arrives (or the flow is closed). A
 * connection thread must instead answer DIMAPI_GET_PKTS after wait_ms and notice a
 * DIMAPI_CLOSE_FLOW meanwhile. So such a (flow, fid) gets a pump thread that makes the
 * blocking calls and appends copies of the records to a FIFO; it stops taking records while
 * the FIFO holds MC_PUMP_MAX_BYTES, so that mapid's ring (and its drop accounting) still
 * applies to a client that does not read. Closing the flow makes libmapi return 6145 in the
 * pump, which then ends; mc_flow_close joins it. For NOWAIT rings there is no thread: the
 * connection thread reads the ring directly and the FIFO only keeps a packet that did not fit
 * in a reply (threaded = 0). A pump's memory (its thread's stack, MC_PUMP_STACK, and the
 * most its FIFO may hold) is reserved against dimapi_max_memory and the identity's
 * dimapi_max_memory_per_identity when it starts (quota.c) and released with the flow.
 *
 * Lost flows: when mapicommd's connection to mapid breaks (mapid restarted, or it cut
 * mapicommd off), mc_mapid_recover marks every registered flow lost (requests on it are
 * answered 5123 naming the reason; CLOSE_FLOW still works and frees it) and has libmapi
 * forget them, so that the next CREATE_FLOW connects to mapid afresh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/mapicommd/mapicommd.h"
#include "mapi.h"
#include "mapi/errors.h"

#define MC_PUMP_MAX_BYTES (2u * DIMAPI_MAX_BATCH_BYTES)
/* A pump thread makes one libmapi call and copies a record: a small stack is plenty (the
 * sanitizer build needs more for its redzones). */
#ifdef __SANITIZE_ADDRESS__
#define MC_PUMP_STACK (256u * 1024u)
#else
#define MC_PUMP_STACK (64u * 1024u)
#endif
#define MC_NOWAIT_RESERVE (64u * 1024u) /* a NOWAIT ring's FIFO keeps one packet */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mc_flow *reg_flows;

static void flow_free(struct mc_flow *f)
{
    for (struct mc_pump *p = f->pumps, *pn; p; p = pn) {
        pn = p->next;
        for (struct mc_item *it = p->head, *in; it; it = in) {
            in = it->next;
            free(it);
        }
        mc_mem_release(f->ident, p->reserved);
        free(p);
    }
    if (f->ident) {
        mc_ident_flow_del(f->ident);
        mc_ident_put(f->ident);
    }
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->io);
    pthread_cond_destroy(&f->cond);
    free(f);
}

struct mc_flow *mc_flow_add(int rfd, const uint8_t *token, const void *owner,
                            struct mc_ident *ident)
{
    struct mc_flow *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->rfd = rfd;
    f->ident = ident;
    if (ident)
        mc_ident_hold(ident);
    memcpy(f->token, token, DIMAPI_TOKEN_LEN);
    f->owner = owner;
    f->refs = 1;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->io, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&reg_lock);
    f->next = reg_flows;
    reg_flows = f;
    pthread_mutex_unlock(&reg_lock);
    return f;
}

struct mc_flow *mc_flow_get(int rfd, const uint8_t *token)
{
    pthread_mutex_lock(&reg_lock);
    struct mc_flow *f = reg_flows;
    while (f && f->rfd != rfd)
        f = f->next;
    if (f && (f->closed || memcmp(f->token, token, DIMAPI_TOKEN_LEN) != 0))
        f = NULL;
    if (f)
        f->refs++;
    pthread_mutex_unlock(&reg_lock);
    return f;
}

void mc_flow_put(struct mc_flow *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&reg_lock);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&reg_lock);
    if (last)
        flow_free(f);
}

int mc_flow_owned(int rfd, const uint8_t *token)
{
    struct mc_flow *f = mc_flow_get(rfd, token);
    mc_flow_put(f);
    return f != NULL;
}

int mc_flow_close(struct mc_flow *f, int *code, char *msg, size_t len)
{
    pthread_mutex_lock(&reg_lock);
    if (f->closed) {
        pthread_mutex_unlock(&reg_lock);
        *code = MAPI_INVALID_FLOW;
        snprintf(msg, len, "flow descriptor %d is not open", f->rfd);
        return -1;
    }
    f->closed = 1;
    struct mc_flow **pp = &reg_flows;
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    pthread_mutex_unlock(&reg_lock);

    pthread_mutex_lock(&f->lock);
    f->dead = 1; /* no new pumps from now on */
    for (struct mc_pump *p = f->pumps; p; p = p->next) {
        p->stop = 1;
        /* Waiters get this after the queued records (not the 6140 a woken pump may see). */
        if (!p->err) {
            p->err = MAPI_INVALID_FLOW;
            snprintf(p->errmsg, sizeof(p->errmsg), "flow %d was closed", f->rfd);
        }
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);

    pthread_mutex_lock(&f->io);
    /* Wakes pumps blocked in libmapi with 6145. A lost flow is no longer libmapi's. */
    int rc = f->lost ? 0 : mapi_close_flow(f->rfd);
    pthread_mutex_unlock(&f->io);
    *code = 0;
    if (msg && len)
        msg[0] = 0;
    if (rc < 0)
        *code = mc_last_error(msg, len);

    pthread_mutex_lock(&f->lock);
    struct mc_pump *list = f->pumps;
    pthread_mutex_unlock(&f->lock);
    for (struct mc_pump *p = list; p; p = p->next)
        if (p->threaded)
            pthread_join(p->th, NULL);
    pthread_mutex_lock(&f->lock);
    for (struct mc_pump *p = f->pumps; p; p = p->next) {
        p->threaded = 0;
        if (!p->err) {
            p->err = MAPI_INVALID_FLOW;
            snprintf(p->errmsg, sizeof(p->errmsg), "flow %d was closed", f->rfd);
        }
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    mc_flow_put(f); /* the registry's reference */
    return rc < 0 ? -1 : 0;
}

void mc_flows_close_owner(const void *owner)
{
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        struct mc_flow *f = reg_flows;
        while (f && f->owner != owner)
            f = f->next;
        if (f)
            f->refs++;
        pthread_mutex_unlock(&reg_lock);
        if (!f)
            return;
        int code;
        char msg[256];
        mc_flow_close(f, &code, msg, sizeof(msg));
        mc_flow_put(f);
    }
}

void mc_item_free(struct mc_item *it)
{
    free(it);
}

void mc_pump_push(struct mc_flow *f, struct mc_pump *p, struct mc_item *it)
{
    pthread_mutex_lock(&f->lock);
    it->next = NULL;
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    p->bytes += it->caplen + sizeof(*it);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void *pump_main(void *arg)
{
    struct mc_pump *p = arg;
    struct mc_flow *f = p->flow;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        while (p->bytes >= MC_PUMP_MAX_BYTES && !p->stop)
            pthread_cond_wait(&f->cond, &f->lock);
        int stop = p->stop;
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
        struct mc_item *it = NULL;
        int code = 0, end = 0;
        char msg[512] = "";
        if (p->kind == MC_PUMP_RING) {
            struct mapipkt *pkt = mapi_get_next_pkt(f->rfd, p->fid);
            if (pkt) {
                it = malloc(sizeof(*it) + pkt->caplen);
                if (it) {
                    it->ts = pkt->ts;
                    it->ifindex = pkt->ifindex;
                    it->caplen = pkt->caplen;
                    it->wlen = pkt->wlen;
                    memcpy(it->data, &pkt->pkt, pkt->caplen);
                } else {
                    code = MAPID_MEM_ALLOCATION_ERROR;
                    snprintf(msg, sizeof(msg), "out of memory");
                }
            } else {
                code = mc_last_error(msg, sizeof(msg));
                end = code == 0; /* NULL without an error: end of the trace */
            }
        } else {
            mapi_results_t *res = mapi_read_results(f->rfd, p->fid);
            if (res) {
                uint32_t n = res->size > 0 ? (uint32_t)res->size : 0;
                it = malloc(sizeof(*it) + n);
                if (it) {
                    it->ts = res->ts;
                    it->ifindex = 0;
                    it->caplen = n;
                    it->wlen = n;
                    if (n)
                        memcpy(it->data, res->res, n);
                } else {
                    code = MAPID_MEM_ALLOCATION_ERROR;
                    snprintf(msg, sizeof(msg), "out of memory");
                }
            } else {
                code = mc_last_error(msg, sizeof(msg));
                if (!code)
                    code = MCOM_UNKNOWN_ERROR;
            }
        }
        if (it) {
            mc_pump_push(f, p, it);
            continue;
        }
        pthread_mutex_lock(&f->lock);
        if (end)
            p->end = 1;
        if (code && !p->err) {
            p->err = code;
            snprintf(p->errmsg, sizeof(p->errmsg), "%s", msg);
        }
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        break;
    }
    return NULL;
}

struct mc_pump *mc_pump_get(struct mc_flow *f, int fid, int kind, int threaded, int *err, char *msg,
                            size_t len)
{
    *err = 0;
    for (struct mc_pump *p = f->pumps; p; p = p->next)
        if (p->fid == fid)
            return p;
    if (f->dead) {
        *err = MAPI_INVALID_FLOW;
        snprintf(msg, len, "flow %d was closed", f->rfd);
        return NULL;
    }
    uint64_t need = sizeof(struct mc_pump) +
                    (threaded ? (uint64_t)MC_PUMP_STACK + MC_PUMP_MAX_BYTES : MC_NOWAIT_RESERVE);
    if (mc_mem_reserve(f->ident, need, msg, len) < 0) {
        *err = MAPID_LIMIT_EXCEEDED;
        mapi_log(LOG_LVL_WARN, "flow %d function %d refused: %s", f->rfd, fid, msg);
        return NULL;
    }
    struct mc_pump *p = calloc(1, sizeof(*p));
    if (!p) {
        mc_mem_release(f->ident, need);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        snprintf(msg, len, "out of memory");
        return NULL;
    }
    p->fid = fid;
    p->kind = kind;
    p->flow = f;
    p->reserved = need;
    if (threaded) {
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, MC_PUMP_STACK);
        int rc = pthread_create(&p->th, &at, pump_main, p);
        pthread_attr_destroy(&at);
        if (rc != 0) {
            free(p);
            mc_mem_release(f->ident, need);
            *err = MAPID_MEM_ALLOCATION_ERROR;
            snprintf(msg, len, "cannot start a thread: %s", strerror(rc));
            return NULL;
        }
        p->threaded = 1;
    }
    p->next = f->pumps;
    f->pumps = p;
    return p;
}

int mc_flows_mark_lost(const char *msg)
{
    int n = 0;
    for (;;) {
        /* One flow at a time: take a reference, then its io lock (waits for a direct read in
         * progress), outside the registry lock. */
        pthread_mutex_lock(&reg_lock);
        struct mc_flow *f = reg_flows;
        while (f && __atomic_load_n(&f->lost, __ATOMIC_RELAXED))
            f = f->next;
        if (f)
            f->refs++;
        pthread_mutex_unlock(&reg_lock);
        if (!f)
            return n;
        pthread_mutex_lock(&f->io);
        pthread_mutex_lock(&f->lock);
        snprintf(f->lostmsg, sizeof(f->lostmsg),
                 "flow %d was lost: mapicommd's connection to mapid broke (%s); create a new "
                 "flow",
                 f->rfd, msg);
        __atomic_store_n(&f->lost, 1, __ATOMIC_RELAXED); /* written under io, scanned above */
        for (struct mc_pump *p = f->pumps; p; p = p->next) {
            if (!p->err) {
                p->err = MCOM_SOCKET_ERROR;
                snprintf(p->errmsg, sizeof(p->errmsg), "%s", f->lostmsg);
            }
        }
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        pthread_mutex_unlock(&f->io);
        mc_flow_put(f);
        n++;
    }
}

/* Serializes recoveries with flow creation, so that a flow made on a new connection to mapid
 * is never taken for one of the old connection. */
static pthread_mutex_t mapid_lock = PTHREAD_MUTEX_INITIALIZER;

/* mapid_lock held. */
static void recover_locked(void)
{
    char why[300];
    /* Cheap test first: libmapi notices EOF or SHUTDOWN without blocking. */
    if (mc_lm_gone(why, sizeof(why))) {
        int n = mc_flows_mark_lost(why);
        if (mc_lm_forget_dead(why, sizeof(why)))
            mapi_log(LOG_LVL_WARN,
                     "connection to mapid lost: %s; %d remote flows on it are gone; new requests "
                     "connect to mapid again",
                     why, n);
    }
}

void mc_mapid_recover(void)
{
    /* Busy: a CREATE_FLOW (which recovers first) or another recovery is under way. */
    if (pthread_mutex_trylock(&mapid_lock) != 0)
        return;
    recover_locked();
    pthread_mutex_unlock(&mapid_lock);
}

int mc_flow_create(const char *dev, const uint8_t *token, const void *owner, struct mc_ident *ident,
                   struct mc_flow **out)
{
    pthread_mutex_lock(&mapid_lock);
    recover_locked();
    int rfd = mapi_create_flow(dev);
    *out = NULL;
    if (rfd >= 0) {
        *out = mc_flow_add(rfd, token, owner, ident);
        if (!*out) {
            mapi_close_flow(rfd);
            rfd = -2;
        }
    }
    pthread_mutex_unlock(&mapid_lock);
    return rfd < 0 ? (rfd == -2 ? -2 : -1) : rfd;
}
