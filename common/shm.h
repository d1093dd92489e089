/*
 * common/shm.h - layout of the shared memory between mapid and its clients, and the lock-free
 * code both sides run on it. Internal to MAPI (not installed).
 *
 * Two kinds of region, each a memfd that mapid creates at mapi_connect and passes to the client
 * with SCM_RIGHTS:
 *
 * 1. The flow's result region (client maps it read-only):
 *      struct mapi_shm_hdr | nslots x struct mapi_shm_slot | result areas
 *    Each result area is struct mapi_shm_result: a seqlock word and the function's result bytes.
 *    The header also carries the flow status (FLOW_ACTIVE, FLOW_FINISHED at the end of a trace,
 *    FLOW_CLOSED when mapid closed it).
 *
 * 2. One packet ring per TO_BUFFER function (client maps it read-write, it owns `tail`):
 *      struct mapi_ring_hdr (4 KiB) | data area of `size` bytes
 *    A single-producer single-consumer ring of variable-length records. head and tail are
 *    monotonic byte counts; a record starts at (pos % size), always 8-byte aligned:
 *      uint32 len (whole record, 8-aligned, or MAPI_RING_WRAP: skip to the start) | uint32 0 |
 *      struct mapipkt header (20 bytes) | caplen bytes of frame | padding
 *    The consumer sleeps on data_futex when the ring is empty; on trace files the producer
 *    sleeps on space_futex when it is full (back-pressure); live capture drops and counts.
 *    mapid never trusts `tail` (the client can write it): it is validated on every read.
 */
#ifndef MAPI_COMMON_SHM_H
#define MAPI_COMMON_SHM_H

#include <stdint.h>
#include <string.h>

#define MAPI_SHM_MAGIC 0x4d41504953484d31ull  /* "MAPISHM1" */
#define MAPI_RING_MAGIC 0x4d41504952494e47ull /* "MAPIRING" */
#define MAPI_SHM_VERSION 2u

struct mapi_shm_slot {
    int32_t fid;
    uint32_t size;   /* result bytes */
    uint64_t offset; /* of the struct mapi_shm_result, from the start of the region */
};

struct mapi_shm_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t status; /* enum mapi_flow_status; written by mapid with release order */
    uint32_t reserved;
    uint64_t size; /* bytes of the whole region */
    struct mapi_shm_slot slots[];
};

struct mapi_shm_result {
    uint32_t seq; /* seqlock: odd while mapid writes */
    uint32_t reserved[3];
    /* 16-byte aligned (result areas start on 64-byte boundaries): results may hold long
     * double (STATS) */
    _Alignas(16) unsigned char data[];
};

#define MAPI_RING_HDR_SIZE 4096u
#define MAPI_RING_WRAP 0xffffffffu
#define MAPI_PKTHDR_SIZE 20u /* struct mapipkt up to, not including, pkt */
#define MAPI_RING_RECHDR 8u

struct mapi_ring_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t nowait; /* TO_BUFFER's flag: get_next_pkt returns NULL at once when empty */
    uint64_t size;   /* bytes of the data area, which starts at MAPI_RING_HDR_SIZE */
    uint64_t reserved0[5];
    /* producer (mapid) cache line */
    uint64_t head __attribute__((aligned(64)));
    uint64_t written; /* records stored */
    uint64_t drops;   /* records dropped because the ring was full (live devices) */
    uint32_t data_futex;
    uint32_t eof; /* 1: no more records will come (end of trace, or flow closed) */
    /* consumer (client) cache line */
    uint64_t tail __attribute__((aligned(64)));
    uint64_t read; /* records consumed */
    uint32_t space_futex;
    uint32_t consumer_waiting;
    uint32_t producer_waiting;
};

static inline uint32_t mapi_ring_record_len(uint32_t caplen)
{
    return (MAPI_RING_RECHDR + MAPI_PKTHDR_SIZE + caplen + 7u) & ~7u;
}

/* Result area of slot i; NULL if the table is inconsistent with the region size. */
static inline struct mapi_shm_result *mapi_shm_result_at(struct mapi_shm_hdr *h, uint64_t region,
                                                         uint32_t i)
{
    if (i >= h->nslots)
        return NULL;
    struct mapi_shm_slot *s = &h->slots[i];
    if (s->offset < sizeof(*h) || s->offset > region ||
        region - s->offset < sizeof(struct mapi_shm_result) + s->size)
        return NULL;
    return (struct mapi_shm_result *)((char *)h + s->offset);
}

/* Seqlock reader: copies size bytes of a consistent snapshot into dst. */
static inline void mapi_shm_result_read(const struct mapi_shm_result *r, void *dst, uint32_t size)
{
    for (;;) {
        uint32_t s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1u) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        memcpy(dst, r->data, size);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint32_t s2 = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
        if (s1 == s2)
            return;
    }
}

#endif /* MAPI_COMMON_SHM_H */
