/*
 * daemon/mapid/flow.c - flows inside mapid: applying functions, creating the shared memory at
 * connect (result region and TO_BUFFER rings, layout in common/shm.h), running the functions
 * on each packet, the ring producer, and tearing a flow down.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/decode.h"
#include "common/log.h"
#include "daemon/mapid/mapid.h"

#define ALIGN64(x) (((x) + 63u) & ~(uint64_t)63u)
#define RING_MIN_BYTES (1u << 20)

static void log_from_flib(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int host_ring_put(struct mapi_fn_instance *fi, const struct mapi_pkt *pkt);
static int host_queue_put(struct mapi_fn_instance *fi, const void *rec, uint32_t len, uint64_t ts);
static void ring_wake_consumer(struct ring *r);
static const char *host_conf_value(const char *key);

const struct mapi_host_api mapid_host_api = {
    .ring_put = host_ring_put,
    .log = log_from_flib,
    .ref_open = refs_open,
    .ref_size = refs_size,
    .ref_read = refs_read,
    .ref_read_u64 = refs_read_u64,
    .ref_reset = refs_reset,
    .ref_flow_status = refs_flow_status,
    .queue_put = host_queue_put,
    .redecode = mapi_decode,
    .conf_value = host_conf_value,
    .may_use_site_key = perms_may_use_site_key,
};

static const char *host_conf_value(const char *key)
{
    return key ? mapi_conf_text(&g_mapid.conf, key) : NULL;
}

static void log_from_flib(int level, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mapi_log(level, "%s", msg);
}

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

struct flow *flow_find(struct mapid *m, int id)
{
    for (struct flow *f = m->flows; f; f = f->next)
        if (f->id == id)
            return f;
    return NULL;
}

struct flow *flow_create(struct mapid *m, struct client *c, struct device *d)
{
    struct flow *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->id = m->next_flowid++;
    f->uid = c->uid;
    f->owner = c;
    f->dev = d;
    f->status = FLOW_INIT;
    f->region_fd = -1;
    atomic_init(&f->refs, 1);
    atomic_init(&f->closed, 0);
    f->cell = calloc(1, sizeof(*f->cell));
    if (!f->cell) {
        free(f);
        return NULL;
    }
    atomic_init(&f->cell->status, FLOW_INIT);
    atomic_init(&f->cell->running, 0);
    atomic_init(&f->cell->refs, 1);
    /* keep the list ordered by id: append */
    struct flow **pp = &m->flows;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    d->nflows++;
    c->nflows++;
    c->user->nflows++;
    return f;
}

int flow_apply(struct flow *f, const struct mapi_fn_def *def, int libidx, struct mapi_arg *args,
               int nargs, char *strings, char *msg, size_t msglen)
{
    struct fn_inst *fn = calloc(1, sizeof(*fn));
    struct fn_inst **nf = realloc(f->fns, sizeof(*nf) * (size_t)(f->nfns + 1));
    if (!fn || !nf) {
        free(fn);
        if (nf)
            f->fns = nf;
        for (int i = 0; i < nargs; i++) /* args, strings and 'w' descriptors are ours */
            if (args[i].type == 'w' && args[i].v.fd >= 0)
                close(args[i].v.fd);
        free(args);
        free(strings);
        snprintf(msg, msglen, "out of memory");
        return -MAPID_MEM_ALLOCATION_ERROR;
    }
    f->fns = nf;
    fn->flow = f;
    fn->args = args;
    fn->strings = strings;
    fn->libidx = libidx;
    fn->fi.def = def;
    fn->fi.host = &mapid_host_api;
    fn->fi.args = args;
    fn->fi.nargs = nargs;
    fn->fi.fid = f->nfns + 1;
    fn->fi.flow_id = f->id;
    fn->fi.dev_id = f->dev->id;
    fn->fi.linktype = f->dev->linktype;
    fn->fi.snaplen = f->dev->snaplen;
    fn->fi.offline = f->dev->offline;
    int rc = def->instance ? def->instance(&fn->fi) : 0;
    if (rc != 0) {
        snprintf(msg, msglen, "%s: %s", def->name, fn->fi.errmsg[0] ? fn->fi.errmsg : "rejected");
        if (def->cleanup)
            def->cleanup(&fn->fi);
        refs_release(fn);
        for (int i = 0; i < nargs; i++)
            if (args[i].type == 'w' && args[i].v.fd >= 0)
                close(args[i].v.fd);
        free(args);
        free(strings);
        free(fn);
        return rc > 0 ? -rc : -MFUNCT_COULD_NOT_APPLY_FUNCT;
    }
    if ((def->flags & MAPI_FN_RING) && fn->fi.ring_size == 0)
        fn->fi.ring_size = UINT32_MAX;
    if (!(def->flags & (MAPI_FN_RING | MAPI_FN_QUEUE)))
        fn->fi.ring_size = 0;
    if (def->flags & MAPI_FN_MODIFIES)
        f->modifies = 1;
    f->fns[f->nfns++] = fn;
    return fn->fi.fid;
}

/*
 * A memfd of len bytes mapped read-write into mapid (*map). Sealed against shrinking, growing
 * and further seals; with client_ro also with F_SEAL_FUTURE_WRITE, added after our mapping, so
 * that no one else can ever write it (write(), writable MAP_SHARED mappings, mprotect,
 * fallocate punch-hole all fail with EPERM) while our mapping stays writable. Returns the
 * descriptor (owned by the caller) or -1 with errno set.
 */
static int make_memfd(const char *name, size_t len, void **map, int client_ro)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)len) < 0) {
        close(fd);
        return -1;
    }
    *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*map == MAP_FAILED) {
        close(fd);
        return -1;
    }
    int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | (client_ro ? F_SEAL_FUTURE_WRITE : 0);
    if (fcntl(fd, F_ADD_SEALS, seals) < 0) {
        int e = errno;
        munmap(*map, len);
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void ring_free(struct ring *r)
{
    if (!r)
        return;
    if (r->map)
        munmap(r->map, r->maplen);
    if (r->fd >= 0)
        close(r->fd);
    if (r->ctl)
        munmap(r->ctl, MAPI_RING_CTL_SIZE);
    if (r->ctl_fd >= 0)
        close(r->ctl_fd);
    free(r);
}

/* A ring of `bytes` data bytes: the producer part (sealed read-only for the client) and the
 * consumer block (client-writable). NULL with errno set. */
static struct ring *ring_create(int flow_id, int fid, uint64_t bytes, int nowait)
{
    struct ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->fd = r->ctl_fd = -1;
    bytes = (bytes + 4095u) & ~(uint64_t)4095u;
    r->size = bytes;
    r->maplen = MAPI_RING_HDR_SIZE + bytes;
    char name[64];
    snprintf(name, sizeof(name), "mapi-ring-%d-%d", flow_id, fid);
    r->fd = make_memfd(name, r->maplen, &r->map, 1);
    if (r->fd < 0) {
        r->map = NULL;
        ring_free(r);
        return NULL;
    }
    snprintf(name, sizeof(name), "mapi-ringctl-%d-%d", flow_id, fid);
    void *ctl = NULL;
    r->ctl_fd = make_memfd(name, MAPI_RING_CTL_SIZE, &ctl, 0);
    if (r->ctl_fd < 0) {
        ring_free(r);
        return NULL;
    }
    r->ctl = ctl;
    r->hdr = r->map;
    r->data = (uint8_t *)r->map + MAPI_RING_HDR_SIZE;
    r->hdr->magic = MAPI_RING_MAGIC;
    r->hdr->version = MAPI_SHM_VERSION;
    r->hdr->nowait = nowait ? 1 : 0;
    r->hdr->size = bytes;
    return r;
}

/*
 * Data bytes of the ring of fn (requested: fi.ring_size, UINT32_MAX = buffer_size), so that
 * every record the function can produce fits twice (a record may need the whole space left
 * before the wrap plus itself): TO_BUFFER gets at least 2 records of the largest packet a
 * driver hands out (MAPID_MAX_CAPLEN: larger records are a format error of the trace), a queue
 * at least 2 of queue_put's largest record. So no record is ever too large for its ring
 * (issue 10 #18).
 */
static uint64_t ring_bytes_for(const struct mapid *m, const struct fn_inst *fn)
{
    uint64_t want = fn->fi.ring_size == UINT32_MAX ? m->conf.buffer_size : fn->fi.ring_size;
    uint64_t largest = MAPI_QUEUE_MAX_RECORD;
    if (fn->fi.def->flags & MAPI_FN_RING) {
        largest = MAPID_MAX_CAPLEN;
        if (want < RING_MIN_BYTES)
            want = RING_MIN_BYTES;
    }
    uint64_t least = 2u * (uint64_t)mapi_ring_record_len((uint32_t)largest);
    if (want < least)
        want = least;
    if (want > UINT32_MAX - 8192u)
        want = UINT32_MAX - 8192u;
    return (want + 4095u) & ~(uint64_t)4095u;
}

/* The chain's identity for function sharing: each function and its arguments. NULL when a
 * function is not MAPI_FN_SHAREABLE (or on allocation failure: then nothing is shared). */
static char *chain_signature(const struct flow *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return NULL;
    int ok = f->nfns > 0 && !f->modifies;
    for (int i = 0; ok && i < f->nfns; i++) {
        const struct fn_inst *fn = f->fns[i];
        if (!(fn->fi.def->flags & MAPI_FN_SHAREABLE)) {
            ok = 0;
            break;
        }
        fprintf(out, "%p(", (const void *)fn->fi.def);
        for (int a = 0; a < fn->fi.nargs; a++) {
            const struct mapi_arg *arg = &fn->args[a];
            switch (arg->type) {
            case 's':
            case 'S':
                fprintf(out, "s%zu:%s,", strlen(arg->v.s), arg->v.s);
                break;
            case 'l':
                fprintf(out, "l%llu,", (unsigned long long)arg->v.l);
                break;
            case 'w':
                ok = 0; /* a file of its own */
                break;
            default:
                fprintf(out, "i%d,", (int)arg->v.i);
                break;
            }
        }
        fprintf(out, ")%u;", fn->fi.result_size);
    }
    if (fclose(out) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

void flow_batch_done(struct flow *f)
{
    for (int i = 0; i < f->nfns; i++) {
        struct ring *r = f->fns[i]->ring;
        if (r && r->woken_head != r->head) {
            r->woken_head = r->head;
            ring_wake_consumer(r); /* a system call only if the client sleeps */
        }
    }
}

void flow_copy_results(struct flow *to, const struct flow *from)
{
    for (int i = 0; i < to->nfns; i++) {
        struct fn_inst *dst = to->fns[i];
        const struct fn_inst *src = from->fns[i];
        __atomic_store_n(&dst->pkts, src->pkts, __ATOMIC_RELAXED); /* read by FUNCTION_INFO */
        __atomic_store_n(&dst->passed, src->passed, __ATOMIC_RELAXED);
        if (!dst->fi.result_size)
            continue;
        mapi_result_write_begin(&dst->fi);
        memcpy(dst->fi.result, src->fi.result, dst->fi.result_size);
        mapi_result_write_end(&dst->fi);
    }
}

int flow_connect(struct mapid *m, struct flow *f, char *msg, size_t msglen)
{
    /* Layout: header + slot table, then each result area on its own cache line. */
    uint64_t off = ALIGN64(sizeof(struct mapi_shm_hdr) + sizeof(struct mapi_shm_slot) * f->nfns);
    uint64_t ring_bytes = 0;
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        fn->result_offset = off;
        off = ALIGN64(off + sizeof(struct mapi_shm_result) + fn->fi.result_size);
        if (fn->fi.ring_size != 0) {
            fn->fi.ring_size = (uint32_t)ring_bytes_for(m, fn);
            ring_bytes += fn->fi.ring_size + MAPI_RING_HDR_SIZE + MAPI_RING_CTL_SIZE;
        }
    }
    uint64_t total = (off + 4095u) & ~(uint64_t)4095u;
    struct client *c = f->owner;
    struct user *u = c->user;
    if (u->shm_bytes + total + ring_bytes > m->conf.max_shm_per_user) {
        snprintf(msg, msglen,
                 "shared memory of uid %u would reach %llu bytes, max_shm_per_user is %llu",
                 (unsigned)u->uid, (unsigned long long)(u->shm_bytes + total + ring_bytes),
                 (unsigned long long)m->conf.max_shm_per_user);
        return MAPID_LIMIT_EXCEEDED;
    }
    char name[64];
    snprintf(name, sizeof(name), "mapi-flow-%d", f->id);
    f->region_fd = make_memfd(name, total, &f->region, 1);
    if (f->region_fd < 0) {
        f->region = NULL;
        snprintf(msg, msglen, "cannot create shared memory: %s", strerror(errno));
        return MDLIB_SHM_ERR;
    }
    f->region_len = total;
    f->shm = f->region;
    f->shm->magic = MAPI_SHM_MAGIC;
    f->shm->version = MAPI_SHM_VERSION;
    f->shm->nslots = (uint32_t)f->nfns;
    f->shm->size = total;
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        f->shm->slots[i].fid = fn->fi.fid;
        f->shm->slots[i].size = fn->fi.result_size;
        f->shm->slots[i].offset = fn->result_offset;
        struct mapi_shm_result *r =
            (struct mapi_shm_result *)((char *)f->region + fn->result_offset);
        fn->fi.result_seq = &r->seq;
        fn->fi.result = fn->fi.result_size ? r->data : NULL;
        if (fn->fi.ring_size != 0) {
            int nowait = (fn->fi.def->flags & MAPI_FN_RING) && fn->fi.nargs > 0 &&
                         fn->fi.args[0].type == 'i' && fn->fi.args[0].v.i == NOWAIT;
            fn->ring = ring_create(f->id, fn->fi.fid, fn->fi.ring_size, nowait);
            if (!fn->ring) {
                snprintf(msg, msglen, "cannot create a %u-byte packet ring: %s", fn->fi.ring_size,
                         strerror(errno));
                return MDLIB_SHM_ERR;
            }
        }
    }
    if (f->modifies) {
        _Static_assert(MAPID_MAX_CAPLEN + 64u >= MAPI_PKT_ROOM,
                       "private copy smaller than promised");
        f->copybuf = malloc(MAPID_MAX_CAPLEN + 64u);
        if (!f->copybuf) {
            snprintf(msg, msglen, "out of memory");
            return MAPID_MEM_ALLOCATION_ERROR;
        }
    }
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        int rc = fn->fi.def->init ? fn->fi.def->init(&fn->fi) : 0;
        if (rc != 0) {
            snprintf(msg, msglen, "%s: %s", fn->fi.def->name,
                     fn->fi.errmsg[0] ? fn->fi.errmsg : "init failed");
            return rc > 0 ? rc : MFUNCT_COULD_NOT_INIT_FUNCT;
        }
        fn->initialized = 1;
    }
    f->shm_bytes = total + ring_bytes;
    c->shm_bytes += f->shm_bytes;
    u->shm_bytes += f->shm_bytes;
    f->signature = chain_signature(f);
    for (int i = 0; i < f->nfns; i++) {
        if (!(f->fns[i]->fi.def->flags & MAPI_FN_RAW))
            f->needs_decode = 1;
        if (f->fns[i]->fi.def->tick)
            f->has_tick = 1;
    }
    f->start = time(NULL);
    if (!f->dev->offline) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        f->start_ts = ((uint64_t)now.tv_sec << 32) + (((uint64_t)now.tv_nsec << 32) / 1000000000u);
    }
    f->status = FLOW_ACTIVE;
    __atomic_store_n(&f->shm->status, FLOW_ACTIVE, __ATOMIC_RELEASE);
    atomic_store_explicit(&f->cell->status, FLOW_ACTIVE, memory_order_release);
    return 0;
}

/* consumer_waiting is the client's: a hint only (a client that always sets it costs itself a
 * futex call per batch). */
static void ring_wake_consumer(struct ring *r)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->ctl->consumer_waiting, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&r->ctl->data_futex, 1, __ATOMIC_RELEASE);
        futex(&r->ctl->data_futex, FUTEX_WAKE, INT_MAX, NULL);
    }
}

void flow_finish(struct flow *f, int status)
{
    atomic_store_explicit(&f->cell->status, status, memory_order_release);
    if (f->shm)
        __atomic_store_n(&f->shm->status, (uint32_t)status, __ATOMIC_RELEASE);
    for (int i = 0; i < f->nfns; i++) {
        struct ring *r = f->fns[i]->ring;
        if (!r)
            continue;
        __atomic_store_n(&r->hdr->eof, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&r->ctl->data_futex, 1, __ATOMIC_RELEASE);
        futex(&r->ctl->data_futex, FUTEX_WAKE, INT_MAX, NULL);
    }
}

static void flow_free(struct flow *f)
{
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        if (fn->fi.def->cleanup)
            fn->fi.def->cleanup(&fn->fi);
        refs_release(fn);
        ring_free(fn->ring);
        free(fn->args);
        free(fn->strings);
        free(fn);
    }
    free(f->fns);
    flow_cell_put(f->cell);
    free(f->copybuf);
    free(f->signature);
    if (f->region)
        munmap(f->region, f->region_len);
    if (f->region_fd >= 0)
        close(f->region_fd);
    free(f);
}

void flow_cell_put(struct flow_cell *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        free(c);
}

void flow_put(struct flow *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1)
        flow_free(f);
}

void flow_close(struct mapid *m, struct flow *f)
{
    int f_id = f->id;
    struct flow **pp = &m->flows;
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
    atomic_store(&f->closed, 1);
    struct device *d = f->dev;
    if (f->status != FLOW_INIT)
        device_remove_active(d, f);
    f->end = time(NULL);
    flow_finish(f, FLOW_CLOSED);
    if (f->owner) {
        f->owner->nflows--;
        f->owner->shm_bytes -= f->shm_bytes;
        f->owner->user->nflows--;
        f->owner->user->shm_bytes -= f->shm_bytes;
    }
    int owns = f->owns_device;
    flow_put(f);
    /* The device's lifetime is device.c's: the flow only lets go of what it holds. */
    if (owns) {
        char why[64];
        snprintf(why, sizeof(why), "its offline flow %d was closed", f_id);
        device_release(m, d, why);
    }
    device_flow_gone(m, d);
}

void flow_process(struct flow *f, struct mapi_pkt *pkt)
{
    struct mapi_pkt copy;
    if (f->modifies) {
        if (pkt->caplen > MAPID_MAX_CAPLEN)
            return; /* never let a modifying function touch the shared original */
        copy = *pkt;
        memcpy(f->copybuf, pkt->data, pkt->caplen);
        copy.data = f->copybuf;
        pkt = &copy;
    }
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        /* Single writer; the control thread reads them (FUNCTION_INFO): relaxed atomic
         * stores, plain moves on x86-64. */
        __atomic_store_n(&fn->pkts, fn->pkts + 1, __ATOMIC_RELAXED);
        if (!fn->fi.def->process(&fn->fi, pkt))
            return;
        __atomic_store_n(&fn->passed, fn->passed + 1, __ATOMIC_RELAXED);
    }
}

/*
 * The producer side of a ring (consumer: lib/ring.c): appends one record, a struct mapipkt
 * header and caplen bytes. TO_BUFFER stores packets, MAPI_FN_QUEUE functions their result
 * records (ifindex 0, caplen = wlen = the record's length). Returns 1 if stored, 0 if dropped.
 */
static int ring_put_record(struct mapi_fn_instance *fi, uint64_t ts, uint16_t ifindex,
                           uint32_t caplen, uint32_t wlen, const void *data)
{
    struct fn_inst *fn = (struct fn_inst *)fi;
    struct ring *r = fn->ring;
    struct flow *f = fn->flow;
    if (!r || r->broken)
        goto drop;
    uint32_t need = mapi_ring_record_len(caplen);
    unsigned rounds = 0;
    if (need > r->size / 2) {
        /* Cannot happen: rings are sized for the largest record (ring_bytes_for). Counted
         * (mapi_stats) and logged once, never silent. */
        if (!r->toobig_logged) {
            r->toobig_logged = 1;
            mapi_log(LOG_LVL_ERROR,
                     "flow %d: a %u-byte record does not fit its %llu-byte ring; dropped", f->id,
                     need, (unsigned long long)r->size);
        }
        goto drop;
    }
    for (;;) {
        /* tail is the client's: read once, validated, then used. */
        uint64_t tail = __atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE);
        if (tail > r->head || r->head - tail > r->size || (tail & 7u)) {
            mapi_log(LOG_LVL_WARN, "flow %d: client corrupted its packet ring; dropping", f->id);
            r->broken = 1;
            __atomic_store_n(&r->hdr->broken, 1, __ATOMIC_RELEASE); /* the client reports it */
            goto drop;
        }
        uint64_t pos = r->head % r->size;
        uint64_t contig = r->size - pos;
        uint64_t total = need + (contig < need ? contig : 0);
        if (r->size - (r->head - tail) >= total)
            break;
        if (!fi->offline)
            goto drop;
        /* Trace file: wait for the client (back-pressure), unless the flow closes or mapid
         * stops: checked on every round, whatever the client does to its consumer block. */
        if (atomic_load(&f->closed) || atomic_load(&f->dev->stop))
            return 0;
        if (++rounds % 64 == 0) {
            /* A client that keeps moving tail or its futex word without making room would
             * otherwise keep us from sleeping: pause 1 ms every 64 rounds. */
            struct timespec pause = {0, 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        /* Wake it first: wake-ups are otherwise sent once per batch (flow_batch_done). */
        ring_wake_consumer(r);
        uint32_t v = __atomic_load_n(&r->ctl->space_futex, __ATOMIC_ACQUIRE);
        __atomic_store_n(&r->ctl->producer_waiting, 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE) != tail)
            continue;
        /* Bounded: at most 50 ms per wait (the client's futex word can only make it end
         * early). */
        struct timespec ts = {0, 50 * 1000 * 1000};
        futex(&r->ctl->space_futex, FUTEX_WAIT, v, &ts);
    }
    uint64_t pos = r->head % r->size;
    if (r->size - pos < need) {
        uint32_t wrap = MAPI_RING_WRAP;
        memcpy(r->data + pos, &wrap, sizeof(wrap));
        r->head += r->size - pos;
        pos = 0;
    }
    uint8_t *rec = r->data + pos;
    uint32_t hdr2[2] = {need, 0};
    memcpy(rec, hdr2, sizeof(hdr2));
    struct mapipkt *mp = (struct mapipkt *)(rec + MAPI_RING_RECHDR);
    mp->ts = ts;
    mp->ifindex = ifindex;
    mp->caplen = caplen;
    mp->wlen = wlen;
    memcpy(&mp->pkt, data, caplen);
    r->head += need;
    __atomic_store_n(&r->hdr->written, r->hdr->written + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&r->hdr->head, r->head, __ATOMIC_RELEASE);
    return 1;
drop:
    if (r)
        __atomic_store_n(&r->hdr->drops, r->hdr->drops + 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&f->dev->drops, 1);
    return 0;
}

static int host_ring_put(struct mapi_fn_instance *fi, const struct mapi_pkt *pkt)
{
    return ring_put_record(fi, pkt->ts, pkt->ifindex, pkt->caplen, pkt->wlen, pkt->data);
}

static int host_queue_put(struct mapi_fn_instance *fi, const void *rec, uint32_t len, uint64_t ts)
{
    if (len > MAPI_QUEUE_MAX_RECORD || (len > 0 && !rec))
        return 0;
    return ring_put_record(fi, ts, 0, len, len, rec);
}

void flow_tick(struct flow *f, uint64_t ts)
{
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        if (fn->fi.def->tick)
            fn->fi.def->tick(&fn->fi, ts);
    }
}

void flow_flush(struct flow *f)
{
    for (int i = 0; i < f->nfns; i++) {
        struct fn_inst *fn = f->fns[i];
        if (fn->fi.def->flush && fn->initialized)
            fn->fi.def->flush(&fn->fi);
    }
    flow_batch_done(f);
}
