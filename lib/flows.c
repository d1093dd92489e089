/*
 * lib/flows.c - the application's flow descriptors.
 *
 * Descriptors are numbered 1, 2, ... in creation order and never reused within a process
 * (like the original), each mapped to mapid's flow id. The table is two-level (chunks of
 * FLOW_CHUNK pointers, allocated on demand and never freed or moved), so a lookup is two
 * acquire loads with no lock: mapi_read_results and mapi_get_next_pkt use it on every call.
 * Insertions and removals happen under the client lock.
 *
 * Lifetime: the table holds one reference on a flow; a thread waiting for packets holds
 * another (lm_flow_acquire). mapi_close_flow removes the flow from the table and drops the
 * table's reference; whoever drops the last one unmaps the shared memory and frees it. So a
 * thread blocked in mapi_get_next_pkt while another closes the flow wakes up with an error
 * instead of touching unmapped memory. mapi_read_results takes no reference (it never
 * blocks): calling it concurrently with mapi_close_flow of the same fd is a bug of the
 * application, as with close(2).
 *
 * Remote (DiMAPI) flows take descriptors from the same counter; their state is f->remote
 * (lib/remote_flow.c), freed with the flow. They are not counted by lm_flow_count, which
 * client.c uses to decide whether the local connection to mapid may be renewed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/internal.h"

#define FLOW_CHUNK_BITS 10
#define FLOW_CHUNK (1 << FLOW_CHUNK_BITS)
#define FLOW_NCHUNKS 16384 /* 16 M descriptors per process */

static struct lib_flow **chunks[FLOW_NCHUNKS];
static int next_fd = 1; /* lock held */
static int nflows;      /* lock held; local flows only */

struct lib_flow *lm_flow_get(int fd)
{
    if (fd <= 0 || fd >= FLOW_NCHUNKS * FLOW_CHUNK)
        return NULL;
    struct lib_flow **c = __atomic_load_n(&chunks[fd >> FLOW_CHUNK_BITS], __ATOMIC_ACQUIRE);
    if (!c)
        return NULL;
    return __atomic_load_n(&c[fd & (FLOW_CHUNK - 1)], __ATOMIC_ACQUIRE);
}

/* Lock held. Allocates a flow with the next descriptor and publishes it; remote is set
 * before publication. NULL with the error set. */
static struct lib_flow *flow_add(int id, int devid, struct lib_rflow *remote)
{
    if (next_fd >= FLOW_NCHUNKS * FLOW_CHUNK) {
        lm_set_error(MAPID_LIMIT_EXCEEDED, "this process has used up its flow descriptors");
        return NULL;
    }
    int fd = next_fd;
    struct lib_flow **c = chunks[fd >> FLOW_CHUNK_BITS];
    if (!c) {
        c = calloc(FLOW_CHUNK, sizeof(*c));
        if (!c) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            return NULL;
        }
        __atomic_store_n(&chunks[fd >> FLOW_CHUNK_BITS], c, __ATOMIC_RELEASE);
    }
    struct lib_flow *f = calloc(1, sizeof(*f));
    if (!f) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return NULL;
    }
    f->fd = fd;
    f->id = id;
    f->devid = devid;
    f->refs = 1;
    f->remote = remote;
    next_fd++;
    if (!remote)
        nflows++;
    __atomic_store_n(&c[fd & (FLOW_CHUNK - 1)], f, __ATOMIC_RELEASE);
    return f;
}

struct lib_flow *lm_flow_add(int id, int devid)
{
    return flow_add(id, devid, NULL);
}

struct lib_flow *lm_flow_add_remote(struct lib_rflow *r)
{
    return flow_add(-1, -1, r);
}

int lm_flow_count(void)
{
    return nflows;
}

static void flow_free(struct lib_flow *f)
{
    for (int i = 0; i < f->nrings; i++)
        lm_ring_detach(&f->rings[i]);
    free(f->rings);
    if (f->region)
        munmap(f->region, f->region_len);
    for (int i = 0; i < f->nfns; i++) {
        if (f->fns[i]) {
            free(f->fns[i]->buf);
            free(f->fns[i]);
        }
    }
    free(f->fns);
    lm_remote_free(f->remote);
    free(f);
}

void lm_flow_remove(struct lib_flow *f)
{
    struct lib_flow **c = chunks[f->fd >> FLOW_CHUNK_BITS];
    __atomic_store_n(&c[f->fd & (FLOW_CHUNK - 1)], NULL, __ATOMIC_RELEASE);
    if (!f->remote)
        nflows--;
    __atomic_store_n(&f->closing, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < f->nrings; i++)
        lm_ring_wake(&f->rings[i]);
    lm_flow_release(f);
}

void lm_flows_forget_local(void)
{
    for (int fd = 1; fd < next_fd && nflows > 0; fd++) {
        struct lib_flow *f = lm_flow_get(fd);
        if (f && !f->remote)
            lm_flow_remove(f);
    }
}

struct lib_flow *lm_flow_acquire(int fd)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (!f)
        return NULL;
    int refs = __atomic_load_n(&f->refs, __ATOMIC_RELAXED);
    do {
        if (refs <= 0)
            return NULL;
    } while (!__atomic_compare_exchange_n(&f->refs, &refs, refs + 1, 1, __ATOMIC_ACQ_REL,
                                          __ATOMIC_RELAXED));
    if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
        lm_flow_release(f);
        return NULL;
    }
    return f;
}

void lm_flow_release(struct lib_flow *f)
{
    if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
        flow_free(f);
}

int lm_flow_add_fn(struct lib_flow *f, int fid, const char *name, uint32_t result_size,
                   uint32_t flags)
{
    if (fid <= 0 || fid > LIB_MAX_FID || (fid < f->nfns && f->fns[fid])) {
        lm_set_error(MCOM_UNKNOWN_ERROR, "mapid returned an invalid function descriptor %d", fid);
        return -1;
    }
    if (fid >= f->nfns) {
        int n = f->nfns ? f->nfns : 8;
        while (n <= fid)
            n *= 2;
        struct lib_fn **nf = realloc(f->fns, sizeof(*nf) * (size_t)n);
        if (!nf) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            return -1;
        }
        memset(nf + f->nfns, 0, sizeof(*nf) * (size_t)(n - f->nfns));
        f->fns = nf;
        f->nfns = n;
    }
    struct lib_fn *fn = calloc(1, sizeof(*fn));
    if (!fn) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return -1;
    }
    fn->fid = fid;
    snprintf(fn->name, sizeof(fn->name), "%s", name);
    fn->result_size = result_size;
    fn->flags = flags;
    f->fns[fid] = fn;
    return 0;
}
