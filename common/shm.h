/*
 * common/shm.h - layout of the shared memory between mapid and its clients, and the lock-free
 * code both sides run on it. Internal to MAPI (not installed; libmapi and mapid are built
 * together, MAPI_SHM_VERSION names the layout).
 *
 * Trust: mapid is a trust boundary (docs/security.md). mapid never reads memory a client
 * can write except the small consumer block of a ring (3. below), whose every field it either
 * validates (tail) or only uses as a hint (waiting flags, futex words: a wrong value costs only
 * a system call or a wake-up of that client's own ring, and every wait is bounded).
 *
 * Each region is a memfd that mapid creates at mapi_connect and passes with SCM_RIGHTS. Every
 * memfd is sealed against shrinking and growing (a client cannot make mapid fault) and against
 * further sealing; the ones the client must not write are also sealed with
 * F_SEAL_FUTURE_WRITE after mapid mapped them: from then on nobody (not even through a
 * read-write reopen of /proc/PID/fd/N) can write(), map writable (MAP_SHARED), mprotect a
 * mapping writable or punch holes. mapid's own mapping made before the seal stays writable.
 *
 * 1. The flow's result region (client: read-only, sealed):
 *      struct mapi_shm_hdr | nslots x struct mapi_shm_slot | result areas
 *    Each result area is struct mapi_shm_result: a seqlock word and the function's result bytes.
 *    The header also carries the flow status (FLOW_ACTIVE, FLOW_FINISHED at the end of a trace,
 *    FLOW_CLOSED when mapid closed it).
 *
 * 2. The producer part of a ring, one per TO_BUFFER or MAPI_FN_QUEUE function (client:
 *    read-only, sealed):
 *      struct mapi_ring_hdr (4 KiB) | data area of `size` bytes
 *    A single-producer single-consumer ring of variable-length records. head and tail are
 *    monotonic byte counts; a record starts at (pos % size), always 8-byte aligned:
 *      uint32 len (whole record, 8-aligned, or MAPI_RING_WRAP: skip to the start) | uint32 0 |
 *      struct mapipkt header (20 bytes) | caplen bytes of frame | padding
 *    mapid sizes every ring so that two of the largest records it can produce fit
 *    (ring_bytes_for in daemon/mapid/flow.c): no record is ever too large for its ring.
 *
 * 3. The consumer block of that ring (client: read-write, its own memfd of
 *    MAPI_RING_CTL_SIZE bytes): struct mapi_ring_ctl, tail and the wake-up words.
 *    The consumer sleeps on data_futex when the ring is empty; on trace files the producer
 *    sleeps on space_futex (at most 50 ms per wait, rechecking whether the flow closed) when
 *    it is full (back-pressure); live capture drops and counts. mapid reads `tail` once per
 *    check and validates it (monotonic, 8-aligned, at most `size` behind head); a bad tail
 *    marks the ring broken (everything later is dropped and counted).
 */
#ifndef MAPI_COMMON_SHM_H
#define MAPI_COMMON_SHM_H

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAPI_SHM_MAGIC 0x4d41504953484d31ull  /* "MAPISHM1" */
#define MAPI_RING_MAGIC 0x4d41504952494e47ull /* "MAPIRING" */
#define MAPI_SHM_VERSION 3u

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

/* Producer part: written by mapid only (read-only and sealed for the client). */
struct mapi_ring_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t nowait; /* TO_BUFFER's flag: get_next_pkt returns NULL at once when empty */
    uint64_t size;   /* bytes of the data area, which starts at MAPI_RING_HDR_SIZE */
    uint64_t reserved0[5];
    uint64_t head __attribute__((aligned(64)));
    uint64_t written; /* records stored */
    uint64_t drops;   /* records dropped because the ring was full (live devices) */
    uint32_t eof;     /* 1: no more records will come (end of trace, or flow closed) */
    uint32_t broken;  /* 1: the consumer block held an impossible tail; nothing more comes */
};

#define MAPI_RING_CTL_SIZE 4096u

/* Consumer part: the client writes it; mapid validates tail and treats the rest as hints. */
struct mapi_ring_ctl {
    uint64_t tail __attribute__((aligned(64)));       /* consumer: bytes consumed */
    uint64_t read;                                    /* consumer: records consumed */
    uint32_t consumer_waiting;                        /* consumer: about to sleep on data_futex */
    uint32_t space_futex;                             /* consumer increments, producer waits */
    uint32_t data_futex __attribute__((aligned(64))); /* producer increments, consumer waits */
    uint32_t producer_waiting; /* producer sets (trace files, ring full), consumer clears */
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

/*
 * Bounded seqlock reader: copies size bytes of a consistent snapshot of data (guarded by the
 * seqlock word *seq) into dst. Tries `spins` times with a CPU pause; after that keeps trying
 * with sched_yield until max_ns nanoseconds have passed. Returns 0, or -1 if no consistent
 * snapshot was seen within the bound (the word stayed odd: a writer that died mid-write, or
 * memory someone else corrupted); dst then holds unspecified bytes.
 */
static inline int mapi_seqlock_read(const uint32_t *seq, const void *data, void *dst, uint32_t size,
                                    uint32_t spins, uint64_t max_ns)
{
    uint64_t deadline = 0;
    for (uint32_t i = 0;; i++) {
        uint32_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if (!(s1 & 1u)) {
            memcpy(dst, data, size);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(seq, __ATOMIC_RELAXED) == s1)
                return 0;
        }
        if (i < spins) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t t = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        if (deadline == 0)
            deadline = t + max_ns;
        if (t >= deadline)
            return -1;
        sched_yield();
    }
}

/* libmapi's reader of a result (the writer is mapid): spins briefly, then yields for at most
 * MAPI_SHM_READ_MAX_NS. 0, or -1 when the result stayed locked that long. */
#define MAPI_SHM_READ_MAX_NS (1000u * 1000u * 1000u)
static inline int mapi_shm_result_read(const struct mapi_shm_result *r, void *dst, uint32_t size)
{
    return mapi_seqlock_read(&r->seq, r->data, dst, size, 4096u, MAPI_SHM_READ_MAX_NS);
}

#endif /* MAPI_COMMON_SHM_H */
