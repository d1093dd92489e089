/*
 * daemon/mapid/device.c - devices of mapid (live NICs from [driver] sections and trace files
 * handed over by clients) and their capture threads. A capture thread reads a batch from
 * its driver, decodes every packet once (common/decode.h), takes references on the device's
 * active flows and runs each packet through each flow in turn (see mapid.h for the locking).
 *
 * Lifetime of trace devices (docs/security.md): the creating client holds one until it
 * lets go (device_release); then it is retired and freed when the last flow on it closes
 * (device_flow_gone). Flows never delete devices. A capture thread that does not stop within
 * MAPID_STOP_TIMEOUT_MS is left running and its device parked (never freed), so a function
 * or a read stuck in a capture thread cannot wedge the control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/decode.h"
#include "common/log.h"
#include "daemon/mapid/mapid.h"

struct device *device_find(struct mapid *m, const char *name)
{
    for (struct device *d = m->devices; d; d = d->next)
        if (strcmp(d->name, name) == 0 ||
            (d->conf && d->conf->alias[0] && strcmp(d->conf->alias, name) == 0))
            return d;
    return NULL;
}

struct device *device_by_id(struct mapid *m, int id)
{
    for (struct device *d = m->devices; d; d = d->next)
        if (d->id == id)
            return d;
    return NULL;
}

static struct device *device_new(struct mapid *m, const char *name)
{
    struct device *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->id = m->next_devid++;
    snprintf(d->name, sizeof(d->name), "%s", name);
    pthread_mutex_init(&d->lock, NULL);
    atomic_init(&d->stop, 0);
    atomic_init(&d->seen, 0);
    atomic_init(&d->drops, 0);
    d->params.fd = -1;
    struct device **pp = &m->devices;
    while (*pp)
        pp = &(*pp)->next;
    *pp = d;
    return d;
}

/* Drivers of mapi.conf by file name: the original names all map to our libpcap driver. */
static int known_live_driver(const char *drv)
{
    static const char *names[] = {"mapinicdrv.so", "mapinidrv.so", "pcap", "mapinicdrv", NULL};
    if (!drv[0])
        return 1;
    for (int i = 0; names[i]; i++)
        if (strcasecmp(drv, names[i]) == 0)
            return 1;
    return 0;
}

int device_create_conf_devices(struct mapid *m)
{
    for (int i = 0; i < m->conf.ndevices; i++) {
        const struct mapi_conf_device *cd = &m->conf.devices[i];
        if (!known_live_driver(cd->driver)) {
            mapi_log(LOG_LVL_WARN, "device %s: driver %s is not supported here, skipped",
                     cd->device, cd->driver);
            continue;
        }
        struct device *d = device_new(m, cd->device);
        if (!d)
            return -1;
        d->conf = cd;
        d->ops = &capture_pcap_live;
        d->params.device = d->name;
        d->params.promisc = cd->promisc;
        d->params.snaplen = cd->snaplen;
        d->params.ring_bytes = cd->ring_bytes;
        d->status = DEVICE_ONLINE;
    }
    return 0;
}

int device_open(struct device *d, char *msg, size_t msglen)
{
    if (d->src)
        return 0;
    int err = PCAP_OPEN_ERR;
    d->src = d->ops->open(&d->params, msg, msglen, &err);
    d->params.fd = -1; /* the driver owns it now */
    if (!d->src)
        return err ? err : PCAP_OPEN_ERR;
    d->linktype = d->ops->linktype(d->src);
    d->snaplen = d->ops->snaplen(d->src);
    if (d->snaplen == 0)
        d->snaplen = 65535;
    return 0;
}

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

int device_check_fd(int fd, int for_write, char *msg, size_t msglen)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        snprintf(msg, msglen, "bad descriptor: %s", strerror(errno));
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    int acc = flags < 0 ? -1 : (flags & O_ACCMODE);
    if (for_write ? (acc != O_WRONLY && acc != O_RDWR) : (acc != O_RDONLY && acc != O_RDWR)) {
        snprintf(msg, msglen, "the file is not open for %s", for_write ? "writing" : "reading");
        return -1;
    }
    if (for_write && S_ISCHR(sb.st_mode) && major(sb.st_rdev) == 1 && minor(sb.st_rdev) == 3)
        return 0; /* /dev/null never blocks */
    if (!S_ISREG(sb.st_mode)) {
        const char *kind = S_ISFIFO(sb.st_mode)   ? "a pipe or FIFO"
                           : S_ISSOCK(sb.st_mode) ? "a socket"
                           : S_ISCHR(sb.st_mode)  ? "a character device"
                           : S_ISBLK(sb.st_mode)  ? "a block device"
                           : S_ISDIR(sb.st_mode)  ? "a directory"
                                                  : "not a regular file";
        snprintf(msg, msglen,
                 "%s is refused: mapid %s only regular files, since %s could block it (%s)", kind,
                 for_write ? "writes" : "reads traces from",
                 for_write ? "a reader that never reads" : "a writer that never writes",
                 for_write ? "write to a file instead" : "save the capture to a file first");
        return -1;
    }
    struct statfs fs;
    if (fstatfs(fd, &fs) == 0 && (unsigned long)fs.f_type == FUSE_SUPER_MAGIC) {
        snprintf(msg, msglen,
                 "a file on a FUSE file system is refused: its I/O could block mapid (copy it "
                 "to a local file system first)");
        return -1;
    }
    return 0;
}

struct device *device_create_offline(struct mapid *m, struct client *c, int fd, int format,
                                     const char *path, int *err, char *msg, size_t msglen)
{
    const struct capture_driver_ops *ops;
    if (format == MFF_PCAP || format == MFF_RAW) {
        ops = &capture_pcap_file;
    } else if (format == MFF_DAG_ERF) {
        ops = &capture_erf_file;
    } else {
        close(fd);
        *err = MAPID_NO_DRIVER;
        snprintf(msg, msglen, "no driver for trace format %d (MFF_PCAP=0, MFF_DAG_ERF=2)", format);
        return NULL;
    }
    /* The header is read here, on the control thread: only from a file that cannot block. */
    char why[256];
    if (device_check_fd(fd, 0, why, sizeof(why)) < 0) {
        close(fd);
        *err = MAPID_BAD_TRACE;
        snprintf(msg, msglen, "%s: %s", path, why);
        return NULL;
    }
    char name[512];
    snprintf(name, sizeof(name), "%s@%d", path, ++m->offline_counter);
    struct device *d = device_new(m, name);
    if (!d) {
        close(fd);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    d->offline = 1;
    d->ops = ops;
    d->params.device = d->name;
    d->params.fd = fd;
    d->params.format = format;
    d->uid = c->uid;
    d->owner = c;
    d->held = 1;
    d->status = DEVICE_SETUP;
    int rc = device_open(d, msg, msglen);
    if (rc) {
        *err = rc;
        device_release(m, d, "its trace could not be opened");
        return NULL;
    }
    return d;
}

void device_add_active(struct device *d, struct flow *f)
{
    pthread_mutex_lock(&d->lock);
    if (d->nactive == d->capactive) {
        int cap = d->capactive ? d->capactive * 2 : 8;
        struct flow **n = realloc(d->active, sizeof(*n) * (size_t)cap);
        if (!n) {
            pthread_mutex_unlock(&d->lock);
            mapi_log(LOG_LVL_ERROR, "out of memory adding flow %d to %s", f->id, d->name);
            return;
        }
        d->active = n;
        d->capactive = cap;
    }
    atomic_fetch_add(&f->refs, 1);
    /* Kept in flow id order: a flow may reference only flows created before it (refs.c), so
     * the flows it reads have already seen each packet when it runs. */
    int at = d->nactive;
    while (at > 0 && d->active[at - 1]->id > f->id)
        at--;
    memmove(&d->active[at + 1], &d->active[at], sizeof(*d->active) * (size_t)(d->nactive - at));
    d->active[at] = f;
    d->nactive++;
    d->active_gen++;
    if (d->offline && d->status == DEVICE_FINISHED)
        flow_finish(f, FLOW_FINISHED); /* connected after the end of the trace */
    pthread_mutex_unlock(&d->lock);
}

void device_remove_active(struct device *d, struct flow *f)
{
    int found = 0;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < d->nactive; i++) {
        if (d->active[i] == f) {
            memmove(&d->active[i], &d->active[i + 1],
                    sizeof(*d->active) * (size_t)(d->nactive - i - 1));
            d->nactive--;
            d->active_gen++;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (found)
        flow_put(f);
}

/*
 * Function sharing: sorts the flows of a snapshot into runners (which run their chains) and
 * followers (which take a runner's results after each batch). A follower has the same chain
 * signature as its runner and started on the same packet (same first_seq and start_ts), so
 * both would compute exactly the same results. Returns 1 if a runner needs decoded packets.
 */
static int group_flows(struct flow **snap, int ns, uint64_t batch_first, struct flow **runners,
                       int *nrun, struct flow **followers, int *nfol, int *tick)
{
    int decode = 0;
    *tick = 0;
    *nrun = *nfol = 0;
    for (int j = 0; j < ns; j++) {
        struct flow *f = snap[j];
        if (f->first_seq == 0)
            f->first_seq = batch_first;
        f->leader = NULL;
        for (int k = 0; f->signature && !f->referenced && k < *nrun; k++) {
            struct flow *r = runners[k];
            if (r->signature && !r->referenced && r->first_seq == f->first_seq &&
                r->start_ts == f->start_ts && strcmp(r->signature, f->signature) == 0) {
                f->leader = r;
                break;
            }
        }
        if (f->leader) {
            followers[(*nfol)++] = f;
        } else {
            runners[(*nrun)++] = f;
            decode |= f->needs_decode;
            *tick |= f->has_tick;
        }
    }
    return decode;
}

/*
 * A live device with no packets for a while (next_batch timed out): periodic functions still
 * see time pass, so a quiet link closes its intervals (BUCKET, STATS, ...) on time. The clock
 * is taken IDLE_TICK_LAG_NS in the past, well beyond the driver's block timeout, so a packet
 * still waiting in the kernel's ring never lands in an interval already closed.
 */
#define IDLE_TICK_LAG_NS 50000000ull

static void idle_tick(struct device *d)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec - IDLE_TICK_LAG_NS;
    uint64_t ts = ((ns / 1000000000ull) << 32) + (((ns % 1000000000ull) << 32) / 1000000000ull);
    struct flow *ticking[64];
    int nt = 0;
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < d->nactive && nt < 64; i++) {
        struct flow *f = d->active[i];
        if (f->has_tick && ts >= f->start_ts && ts >= f->last_ts) {
            atomic_fetch_add(&f->refs, 1);
            ticking[nt++] = f;
        }
    }
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < nt; i++) {
        ticking[i]->last_ts = ts;
        flow_tick(ticking[i], ts);
        flow_batch_done(ticking[i]); /* wake readers of queued records */
        flow_put(ticking[i]);
    }
}

/*
 * Who costs what: the capture thread charges each flow the time spent in its functions (tick
 * and process), so that FLOW_INFO (mapiinfo) shows an operator which flow starves a shared
 * device. Reading the clock around every flow on every packet would cost more than cheap
 * functions themselves (a CLOCK_MONOTONIC read is 20-90 ns), so a batch of more than
 * COST_STRIDE packets is sampled: one packet in COST_STRIDE, at an offset that changes from
 * batch to batch (a flow cannot arrange to be expensive only on packets never timed), and the
 * time of the sampled packets is scaled to the batch. Small batches are timed whole.
 */
#define COST_STRIDE 64 /* a power of two: the offset takes the top 6 bits of rng */

static uint64_t cost_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A timed packet: adds the time since *since to *cost and restarts the clock there. */
static inline void charge(uint64_t *cost, uint64_t *since)
{
    uint64_t now = cost_now();
    *cost += now - *since;
    *since = now;
}

static void *capture_thread(void *arg)
{
    struct device *d = arg;
    struct mapi_pkt *pkts = calloc(MAPID_BATCH, sizeof(*pkts));
    struct flow **snap = NULL, **runners = NULL, **followers = NULL;
    uint64_t *cost = NULL;          /* per runner: sampled ns of this batch */
    uint64_t rng = cost_now() | 1u; /* xorshift: the sampling offset of each batch */
    int snapcap = 0, ns = 0, nrun = 0, nfol = 0;
    uint64_t seen_gen = UINT64_MAX;
    int decode = 1, tick = 0;
    if (!pkts) {
        mapi_log(LOG_LVL_ERROR, "%s: out of memory in the capture thread", d->name);
        return NULL;
    }
    mapi_log(LOG_LVL_INFO, "capture started on %s (link type %d, snaplen %u)", d->name, d->linktype,
             d->snaplen);
    int end = 0;
    while (!atomic_load(&d->stop)) {
        int n = d->ops->next_batch(d->src, pkts, MAPID_BATCH, 100);
        if (n == 0) {
            if (!d->offline)
                idle_tick(d);
            continue;
        }
        if (n < 0) {
            const char *e = d->ops->error(d->src);
            if (n == CAPTURE_EOF && !(e && *e))
                mapi_log(LOG_LVL_INFO, "%s: end of trace after %llu packets", d->name,
                         (unsigned long long)d->seq);
            else
                mapi_log(n == CAPTURE_EOF ? LOG_LVL_WARN : LOG_LVL_ERROR, "%s: %s", d->name,
                         e && *e ? e : "capture error");
            end = 1;
            break;
        }
        uint64_t batch_first = d->seq + 1;
        for (int i = 0; i < n; i++)
            pkts[i].seq = ++d->seq;
        atomic_fetch_add(&d->seen, (uint_fast64_t)n);
        /* References on the active flows for this batch; regroup when the set changed. */
        pthread_mutex_lock(&d->lock);
        int regroup = d->active_gen != seen_gen;
        if (regroup && d->nactive > snapcap) {
            struct flow **a = realloc(snap, sizeof(*a) * (size_t)d->nactive);
            struct flow **b = realloc(runners, sizeof(*b) * (size_t)d->nactive);
            struct flow **c = realloc(followers, sizeof(*c) * (size_t)d->nactive);
            uint64_t *e = realloc(cost, sizeof(*e) * (size_t)d->nactive);
            snap = a ? a : snap;
            runners = b ? b : runners;
            followers = c ? c : followers;
            cost = e ? e : cost;
            if (a && b && c && e)
                snapcap = d->nactive;
        }
        if (regroup) {
            ns = d->nactive < snapcap ? d->nactive : snapcap;
            if (ns > 0)
                memcpy(snap, d->active, sizeof(*snap) * (size_t)ns);
            seen_gen = d->active_gen;
        }
        for (int i = 0; i < ns; i++)
            atomic_fetch_add(&snap[i]->refs, 1);
        pthread_mutex_unlock(&d->lock);
        if (regroup) {
            decode = group_flows(snap, ns, batch_first, runners, &nrun, followers, &nfol, &tick);
            /* From this packet on they run: SYNC may let its flow start on the same one. */
            for (int i = 0; i < ns; i++)
                atomic_store_explicit(&snap[i]->cell->running, 1, memory_order_release);
        }
        /* Parse once: every packet is decoded here, for all flows, unless no flow's
         * functions read the decoded fields (all MAPI_FN_RAW). */
        for (int i = 0; decode && i < n; i++)
            mapi_decode(&pkts[i]);
        /* A flow closed during the batch is still run to its end: harmless, it holds a
         * reference, and its followers (if any) must not miss packets. */
        /* Sampled packets: i % stride == phase (see COST_STRIDE). */
        int stride = n > COST_STRIDE ? COST_STRIDE : 1;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int phase = stride == 1 ? 0 : (int)(rng >> 58); /* 0..COST_STRIDE - 1 */
        int sampled = 0;
        for (int j = 0; j < nrun; j++)
            cost[j] = 0;
        for (int i = 0; i < n; i++) {
            int timed = (i & (stride - 1)) == phase;
            uint64_t t = timed ? cost_now() : 0;
            sampled += timed;
            /* Periodic functions close their intervals before anyone counts this packet. */
            for (int j = 0; tick && j < nrun; j++) {
                if (runners[j]->has_tick && pkts[i].ts >= runners[j]->start_ts &&
                    pkts[i].ts >= runners[j]->last_ts) {
                    runners[j]->last_ts = pkts[i].ts;
                    flow_tick(runners[j], pkts[i].ts);
                    if (timed)
                        charge(&cost[j], &t);
                }
            }
            for (int j = 0; j < nrun; j++) {
                if (pkts[i].ts >= runners[j]->start_ts) {
                    flow_process(runners[j], &pkts[i]);
                    if (timed)
                        charge(&cost[j], &t);
                }
            }
        }
        for (int j = 0; sampled > 0 && j < nrun; j++)
            if (cost[j] != 0)
                __atomic_store_n(&runners[j]->cpu_ns,
                                 runners[j]->cpu_ns + cost[j] * (uint64_t)n / (uint64_t)sampled,
                                 __ATOMIC_RELAXED);
        for (int j = 0; j < nrun; j++)
            flow_batch_done(runners[j]);
        for (int j = 0; j < nfol; j++)
            flow_copy_results(followers[j], followers[j]->leader);
        for (int j = 0; j < ns; j++)
            flow_put(snap[j]);
    }
    if (end && d->offline) {
        /* Let the functions emit their last partial intervals, outside the lock: a queue
         * may wait for its reader. */
        pthread_mutex_lock(&d->lock);
        ns = d->nactive < snapcap ? d->nactive : snapcap;
        if (ns > 0)
            memcpy(snap, d->active, sizeof(*snap) * (size_t)ns);
        for (int i = 0; i < ns; i++)
            atomic_fetch_add(&snap[i]->refs, 1);
        pthread_mutex_unlock(&d->lock);
        for (int i = 0; i < ns; i++) {
            if (!atomic_load(&snap[i]->closed) && !atomic_load(&d->stop))
                flow_flush(snap[i]);
            flow_put(snap[i]);
        }
        pthread_mutex_lock(&d->lock);
        d->status = DEVICE_FINISHED;
        for (int i = 0; i < d->nactive; i++)
            flow_finish(d->active[i], FLOW_FINISHED);
        pthread_mutex_unlock(&d->lock);
    }
    free(snap);
    free(runners);
    free(followers);
    free(cost);
    free(pkts);
    return NULL;
}

void device_stop_deadline(struct timespec *until)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += MAPID_STOP_TIMEOUT_MS / 1000;
    until->tv_nsec += (long)(MAPID_STOP_TIMEOUT_MS % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* A parked device whose thread has finished after all: joins it. Returns 1 if it did. */
static int unpark(struct device *d)
{
    if (pthread_tryjoin_np(d->thread, NULL) != 0)
        return 0;
    struct device **pp = &g_mapid.parked;
    while (*pp && *pp != d)
        pp = &(*pp)->parked_next;
    if (*pp)
        *pp = d->parked_next;
    d->parked_next = NULL;
    d->thread_running = 0;
    d->parked = 0;
    mapi_log(LOG_LVL_INFO, "the capture thread of %s finished after all", d->name);
    return 1;
}

int device_start(struct device *d, char *msg, size_t msglen)
{
    if (d->parked && !unpark(d)) {
        snprintf(msg, msglen, "the capture thread of %s is stuck (see mapid's log)", d->name);
        return NICDRV_PTHR_ERR;
    }
    if (d->thread_running)
        return 0;
    if (d->retired) {
        snprintf(msg, msglen, "trace device %s was deleted by its creator", d->name);
        return MAPID_NO_DEVICE;
    }
    /* status is written by the capture thread too (DEVICE_FINISHED): read it under the lock. */
    pthread_mutex_lock(&d->lock);
    int started = d->offline && d->status != DEVICE_SETUP;
    pthread_mutex_unlock(&d->lock);
    if (started) {
        snprintf(msg, msglen, "%s was already started", d->name);
        return MAPID_NO_DEVICE;
    }
    int rc = device_open(d, msg, msglen);
    if (rc)
        return rc;
    /* A live device queues packets from flow creation on; each flow skips those stamped
     * before its own mapi_connect (flow->start_ts), so nothing is lost after it either. */
    atomic_store(&d->stop, 0);
    /* READING before the thread exists: a short trace may end (DEVICE_FINISHED, set by the
     * thread) before pthread_create returns. */
    if (d->offline)
        d->status = DEVICE_READING;
    rc = pthread_create(&d->thread, NULL, capture_thread, d);
    if (rc) {
        if (d->offline)
            d->status = DEVICE_SETUP;
        snprintf(msg, msglen, "cannot start the capture thread: %s", strerror(rc));
        return NICDRV_PTHR_ERR;
    }
    d->thread_running = 1;
    return 0;
}

int device_stop(struct mapid *m, struct device *d)
{
    if (!d->thread_running)
        return 0;
    atomic_store(&d->stop, 1);
    if (d->parked)
        return unpark(d) ? 0 : -1;
    struct timespec until = m->stop_deadline;
    if (!m->shutting_down)
        device_stop_deadline(&until);
    int rc = pthread_timedjoin_np(d->thread, NULL, &until);
    if (rc == 0) {
        d->thread_running = 0;
        return 0;
    }
    /* Stuck in a function or in I/O: leave it; it stops at its next batch if it ever gets
     * there. Its device (source, flows it holds) is never freed. */
    d->parked = 1;
    d->parked_next = m->parked;
    m->parked = d;
    mapi_log(LOG_LVL_ERROR,
             "the capture thread of %s did not stop within %d ms (stuck in a function or in "
             "I/O); device parked, its memory is kept",
             d->name, MAPID_STOP_TIMEOUT_MS);
    return -1;
}

static void device_unlink(struct mapid *m, struct device *d)
{
    struct device **pp = &m->devices;
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    d->next = NULL;
}

/* Frees a stopped device (not parked, no flows on it). */
static void device_free(struct device *d)
{
    if (d->src)
        d->ops->close(d->src);
    else if (d->params.fd >= 0)
        close(d->params.fd);
    free(d->active);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* Ends a trace device for good: no new flows, capture stopped, source closed, the flows
 * still on it finished. Idempotent. */
static void device_retire(struct mapid *m, struct device *d, const char *why)
{
    if (d->retired)
        return;
    d->retired = 1;
    device_unlink(m, d);
    if (device_stop(m, d) == 0 && d->src) {
        d->ops->close(d->src);
        d->src = NULL;
    }
    pthread_mutex_lock(&d->lock);
    int others = d->nactive;
    d->status = DEVICE_FINISHED;
    for (int i = 0; i < d->nactive; i++)
        flow_finish(d->active[i], FLOW_FINISHED);
    pthread_mutex_unlock(&d->lock);
    if (others > 0)
        mapi_log(LOG_LVL_INFO, "trace device %s ended (%s): %d flow(s) still on it finished",
                 d->name, why, others);
    else
        mapi_log(LOG_LVL_DEBUG, "trace device %s ended (%s)", d->name, why);
}

/* Frees a released trace device when no flow is on it any more. */
static void device_maybe_free(struct mapid *m, struct device *d)
{
    if (!d->offline || d->held || d->nflows > 0)
        return;
    device_retire(m, d, "released");
    if (!d->parked)
        device_free(d);
}

void device_release(struct mapid *m, struct device *d, const char *why)
{
    if (!d->held)
        return;
    d->held = 0;
    d->owner = NULL;
    device_retire(m, d, why);
    device_maybe_free(m, d);
}

void device_flow_gone(struct mapid *m, struct device *d)
{
    d->nflows--;
    if (d->offline) {
        device_maybe_free(m, d);
        return;
    }
    if (d->nflows <= 0 && device_stop(m, d) == 0 && d->src) {
        d->ops->close(d->src);
        d->src = NULL;
        mapi_log(LOG_LVL_INFO, "capture stopped on %s: no flows left", d->name);
    }
}

void device_destroy_all(struct mapid *m)
{
    while (m->devices) {
        struct device *d = m->devices;
        device_unlink(m, d);
        if (device_stop(m, d) == 0)
            device_free(d);
    }
}

/* Parked devices whose capture thread has finished after all: joined; a retired one closes its
 * source, and is freed if nothing holds it any more. */
static void reap_parked(struct mapid *m)
{
    for (struct device *d = m->parked, *next; d; d = next) {
        next = d->parked_next;
        if (!unpark(d) || !d->retired)
            continue;
        if (d->src) {
            d->ops->close(d->src);
            d->src = NULL;
        }
        if (!d->held && d->nflows == 0)
            device_free(d);
    }
}

int device_count_offline(struct mapid *m, uid_t uid)
{
    reap_parked(m);
    int n = 0;
    for (struct device *d = m->devices; d; d = d->next)
        n += d->offline && !d->retired && d->uid == uid;
    /* A parked trace device still costs its memory and a thread: it counts until reaped. */
    for (struct device *d = m->parked; d; d = d->parked_next)
        n += d->offline && d->retired && d->uid == uid;
    return n;
}
