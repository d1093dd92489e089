/*
 * lib/ring.c - the consumer side of a TO_BUFFER packet ring (layout and producer in
 * common/shm.h and daemon/mapid/flow.c).
 *
 * mapid (the single producer) appends records and advances `head` with release order; we
 * (the single consumer) read the record at `tail`, hand the application a pointer to its
 * struct mapipkt (8 bytes into the record), and advance `tail` with release order only at the
 * next call, when the application is done with the previous packet. MAPI_RING_WRAP means
 * "continue at the start of the data area".
 *
 * The ring comes in two mappings: the producer part (header and data: read-only, mapid sealed
 * it so nobody can write it but mapid) and the consumer block struct mapi_ring_ctl (tail,
 * wake-up words), which we write and mapid validates.
 *
 * Sleeping: when the ring is empty we set consumer_waiting, issue a seq_cst fence, read
 * data_futex and re-check head; if still empty we FUTEX_WAIT (shared, not private: the
 * mapping is shared with mapid) on data_futex for at most 200 ms. The producer increments
 * data_futex and wakes us after publishing head when it sees consumer_waiting. Between waits
 * (every 200 ms at most) we check that mapid is still there (lm_client_poll_events) and whether
 * the flow was closed, by mapid (region status FLOW_CLOSED: 6140) or by us (6145).
 *
 * Back-pressure: after advancing tail we look at producer_waiting (after a seq_cst fence);
 * if mapid waits for room (trace files), we clear it, increment space_futex and wake it.
 *
 * Only one thread may consume a given ring at a time (the ring is single-consumer).
 * Signals do not interrupt a wait: like SA_RESTART, mapi_get_next_pkt keeps waiting.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/internal.h"

#define RING_WAIT_NS (200u * 1000u * 1000u)

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Maps a ring: fd is the producer part (header and data, read-only for us: mapid sealed it),
 * ctlfd the consumer block we write. 0, or -1 with the error set (6142). */
int lm_ring_attach(struct lib_ring *r, int fid, int fd, int ctlfd, uint64_t bytes)
{
    memset(r, 0, sizeof(*r));
    r->fid = fid;
    struct stat st, cst;
    if (bytes < MAPI_RING_HDR_SIZE + 64 || bytes > SIZE_MAX || fstat(fd, &st) < 0 ||
        (uint64_t)st.st_size < bytes || fstat(ctlfd, &cst) < 0 ||
        (uint64_t)cst.st_size < MAPI_RING_CTL_SIZE) {
        lm_set_error(MAPI_CONNECT, "packet ring of fid %d: bad size %llu", fid,
                     (unsigned long long)bytes);
        return -1;
    }
    void *m = mmap(NULL, (size_t)bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        lm_set_error(MAPI_CONNECT, "mapping the packet ring of fid %d: %s", fid, strerror(errno));
        return -1;
    }
    void *c = mmap(NULL, MAPI_RING_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ctlfd, 0);
    if (c == MAP_FAILED) {
        lm_set_error(MAPI_CONNECT, "mapping the consumer block of fid %d: %s", fid,
                     strerror(errno));
        munmap(m, (size_t)bytes);
        return -1;
    }
    struct mapi_ring_hdr *h = m;
    uint64_t size = h->size;
    if (h->magic != MAPI_RING_MAGIC || h->version != MAPI_SHM_VERSION || size == 0 || (size & 7u) ||
        size > bytes - MAPI_RING_HDR_SIZE) {
        munmap(m, (size_t)bytes);
        munmap(c, MAPI_RING_CTL_SIZE);
        lm_set_error(MAPI_CONNECT, "packet ring of fid %d has a bad header", fid);
        return -1;
    }
    r->hdr = h;
    r->ctl = c;
    r->data = (uint8_t *)m + MAPI_RING_HDR_SIZE;
    r->size = size;
    r->maplen = (size_t)bytes;
    r->tail = __atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE);
    return 0;
}

void lm_ring_detach(struct lib_ring *r)
{
    if (r->hdr)
        munmap(r->hdr, r->maplen);
    if (r->ctl)
        munmap(r->ctl, MAPI_RING_CTL_SIZE);
    r->hdr = NULL;
    r->ctl = NULL;
}

void lm_ring_wake(struct lib_ring *r)
{
    if (!r->ctl)
        return;
    __atomic_fetch_add(&r->ctl->data_futex, 1, __ATOMIC_RELEASE);
    futex(&r->ctl->data_futex, FUTEX_WAKE, INT_MAX, NULL);
}

/* Publishes our tail and wakes mapid if it waits for room. */
static void advance(struct lib_ring *r, uint64_t bytes)
{
    struct mapi_ring_ctl *h = r->ctl;
    r->tail += bytes;
    __atomic_store_n(&h->tail, r->tail, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&h->producer_waiting, __ATOMIC_RELAXED)) {
        __atomic_store_n(&h->producer_waiting, 0, __ATOMIC_RELAXED);
        __atomic_fetch_add(&h->space_futex, 1, __ATOMIC_RELEASE);
        futex(&h->space_futex, FUTEX_WAKE, INT_MAX, NULL);
    }
}

static int corrupt(struct lib_ring *r, const char *what)
{
    lm_set_error(MCOM_UNKNOWN_ERROR, "packet ring of fid %d is corrupt (%s)", r->fid, what);
    return RING_ERROR;
}

/* Why an empty ring will never fill again, or 0. Sets the error. */
static int dead_reason(struct lib_flow *f)
{
    if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
        lm_set_error(MAPI_INVALID_FLOW, "flow %d was closed", f->fd);
        return MAPI_INVALID_FLOW;
    }
    if (__atomic_load_n(&f->region->status, __ATOMIC_ACQUIRE) == FLOW_CLOSED) {
        lm_client_poll_events(); /* a SHUTDOWN explains why */
        if (!lm_client_state_error())
            lm_set_error(MAPI_SHUTTING_DOWN, "mapid closed flow %d", f->fd);
        return lm_last_error();
    }
    return lm_client_state_error();
}

int lm_ring_next(struct lib_flow *f, struct lib_ring *r, struct mapipkt **pkt)
{
    struct mapi_ring_hdr *h = r->hdr;
    *pkt = NULL;
    if (r->pending) {
        uint32_t n = r->pending;
        r->pending = 0;
        __atomic_store_n(&r->ctl->read, r->ctl->read + 1, __ATOMIC_RELAXED);
        advance(r, n);
    }
    for (;;) {
        uint64_t head = __atomic_load_n(&h->head, __ATOMIC_ACQUIRE);
        if (head != r->tail) {
            if (head < r->tail || head - r->tail > r->size)
                return corrupt(r, "head out of range");
            uint64_t off = r->tail % r->size;
            uint32_t len;
            memcpy(&len, r->data + off, sizeof(len));
            if (len == MAPI_RING_WRAP) {
                if (off == 0 || head - r->tail < r->size - off)
                    return corrupt(r, "bad wrap marker");
                advance(r, r->size - off);
                continue;
            }
            if (len < MAPI_RING_RECHDR + MAPI_PKTHDR_SIZE || (len & 7u) || len > r->size - off ||
                len > head - r->tail)
                return corrupt(r, "bad record length");
            struct mapipkt *p = (struct mapipkt *)(r->data + off + MAPI_RING_RECHDR);
            if (p->caplen > len || mapi_ring_record_len(p->caplen) > len)
                return corrupt(r, "caplen exceeds the record");
            r->pending = len;
            *pkt = p;
            return RING_PACKET;
        }
        /* Empty. */
        if (__atomic_load_n(&h->broken, __ATOMIC_ACQUIRE))
            return corrupt(r, "its consumer block was overwritten with an impossible tail; "
                              "mapid stopped delivering to it");
        if (__atomic_load_n(&f->region->status, __ATOMIC_ACQUIRE) == FLOW_CLOSED ||
            __atomic_load_n(&f->closing, __ATOMIC_ACQUIRE))
            return dead_reason(f) ? RING_ERROR : RING_END;
        if (__atomic_load_n(&h->eof, __ATOMIC_ACQUIRE)) {
            if (__atomic_load_n(&h->head, __ATOMIC_ACQUIRE) != r->tail)
                continue;
            return RING_END; /* end of the trace */
        }
        uint64_t now = mono_ns();
        if (now - r->last_check_ns >= RING_WAIT_NS) {
            r->last_check_ns = now;
            lm_client_poll_events();
        }
        if (lm_client_state_error())
            return RING_ERROR;
        if (__atomic_load_n(&h->nowait, __ATOMIC_RELAXED))
            return RING_END;
        __atomic_store_n(&r->ctl->consumer_waiting, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t v = __atomic_load_n(&r->ctl->data_futex, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&h->head, __ATOMIC_ACQUIRE) == r->tail &&
            !__atomic_load_n(&h->eof, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
            struct timespec ts = {0, RING_WAIT_NS};
            futex(&r->ctl->data_futex, FUTEX_WAIT, v, &ts);
        }
        __atomic_store_n(&r->ctl->consumer_waiting, 0, __ATOMIC_RELAXED);
    }
}
