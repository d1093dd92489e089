/*
 * daemon/mapid/mapid.h - internal structures of mapid, the MAPI daemon.
 *
 * DESIGN. One control thread (main.c) owns the Unix socket, the clients, and every change to
 * flows and devices; it handles one request at a time (handlers.c). Each device that has
 * connected flows runs a capture thread (device.c) that reads batches from its driver,
 * decodes each packet once and runs every flow's functions on it (flow.c).
 *
 * Sharing between the two: a device's array of active flows is guarded by dev->lock, taken
 * by the capture thread once per batch to take references (flow->refs) on the flows it will
 * run. Closing a flow removes it from the array, marks it closed and drops the control
 * thread's reference; whoever drops the last reference frees it. So a capture thread that
 * waits for room in a slow client's TO_BUFFER ring never holds a lock the control thread
 * needs.
 */
#ifndef MAPID_MAPID_H
#define MAPID_MAPID_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/conf.h"
#include "common/shm.h"
#include "common/wire.h"
#include "drivers/driver.h"
#include "mapi.h"
#include "mapi/errors.h"
#include "mapi/flib.h"

#define MAPID_BATCH 256
#define MAPID_MAX_CAPLEN 262144u /* largest frame a driver hands out */

struct client;
struct device;

struct flib_entry {
    void *dl;
    const struct mapi_flib *lib;
    char file[256];
    int nfuncs;
};

struct ring {
    int fd;
    void *map;
    size_t maplen;
    struct mapi_ring_hdr *hdr;
    uint8_t *data;
    uint64_t size;
    uint64_t head;       /* producer's own copy */
    uint64_t woken_head; /* head when the consumer was last woken */
    int broken;          /* the client corrupted tail: drop everything */
};

struct fn_inst {
    struct mapi_fn_instance fi; /* first: callbacks get &fi, container_of gives this */
    struct mapi_arg *args;
    char *strings; /* storage for the string arguments */
    int libidx;
    int initialized;
    uint64_t pkts, passed; /* written by the capture thread only */
    uint64_t result_offset;
    struct ring *ring;     /* TO_BUFFER packets or MAPI_FN_QUEUE records */
    struct mapi_ref *refs; /* references this function opened (refs.c) */
    struct flow *flow;
};

/*
 * What other flows may learn about a flow from any thread, in a small reference-counted
 * object of its own: SYNC's flow references hold the cell, not the flow, so they may name
 * flows created later without keeping them alive (no cycles).
 */
struct flow_cell {
    atomic_int status;  /* enum mapi_flow_status */
    atomic_int running; /* the capture thread has started running the flow */
    atomic_int refs;
};
void flow_cell_put(struct flow_cell *c);

struct flow {
    int id;
    uid_t uid;
    struct client *owner;
    struct device *dev;
    int status; /* enum mapi_flow_status as the control thread sees it */
    struct fn_inst **fns;
    int nfns;
    int modifies;
    uint8_t *copybuf;
    int region_fd;
    void *region;
    size_t region_len;
    struct mapi_shm_hdr *shm;
    uint64_t shm_bytes;
    time_t start, end;
    uint64_t start_ts; /* live devices: packets stamped before connect are not the flow's */
    int owns_device;   /* created by CREATE_OFFLINE_FLOW: started at connect, deleted at close */
    /* Function sharing: flows whose chains are identical and shareable (signature != NULL)
     * and that started on the same packet run once, by the group's leader (capture thread). */
    int needs_decode;       /* a function reads the decoded fields (not MAPI_FN_RAW) */
    char *signature;        /* set at connect; NULL if the chain cannot be shared */
    uint64_t first_seq;     /* capture thread: seq of the first packet the flow was offered */
    struct flow *leader;    /* capture thread: the flow that runs this one's chain, or NULL */
    int referenced;         /* another function reads our results: never shared (refs.c) */
    int has_tick;           /* a function has a tick() callback (set at connect) */
    uint64_t last_ts;       /* capture thread: latest time given to tick() (never goes back) */
    struct flow_cell *cell; /* status readable from capture threads, outlives the flow */
    /* Time the capture thread spent in this flow's functions (tick and process), ns,
     * estimated by sampling (device.c); written by the capture thread only, read atomically by
     * FLOW_INFO. A follower of function sharing is not charged: its leader runs the chain. */
    uint64_t cpu_ns;
    atomic_int refs;
    atomic_int closed;
    struct flow *next; /* in the global list, ordered by id */
};

struct device {
    int id;
    char name[512];
    int offline;
    const struct mapi_conf_device *conf; /* [driver] devices; NULL for trace files */
    const struct capture_driver_ops *ops;
    struct capture_params params;
    struct capture_source *src;
    int linktype;
    uint32_t snaplen;
    int status; /* mapi_offline_device_status_t for trace files */
    uid_t uid;
    struct client *owner; /* trace files: the client that created it */
    int nflows;           /* flows created on it (any state) */
    pthread_mutex_t lock; /* guards active[] */
    struct flow **active;
    int nactive, capactive;
    uint64_t active_gen; /* changes whenever active[] does (guarded by lock) */
    pthread_t thread;
    int thread_running;
    atomic_int stop;
    atomic_uint_fast64_t seen;  /* packets read */
    atomic_uint_fast64_t drops; /* packets dropped by full rings */
    uint64_t seq;
    struct device *next;
};

struct client {
    int sock;
    uid_t uid;
    pid_t pid;
    uint8_t *in;
    size_t inlen, incap;
    int fds[WIRE_MAX_FDS];
    int nfds;
    int nflows;
    uint64_t shm_bytes;
    int dead;
    struct client *next;
};

struct mapid {
    struct mapi_conf conf;
    struct flib_entry *libs;
    int nlibs;
    struct device *devices;
    int next_devid;
    struct flow *flows;
    int next_flowid;
    struct client *clients;
    int listen_fd;
    int epoll_fd;
    int offline_counter;
};

extern struct mapid g_mapid;
extern const struct mapi_host_api mapid_host_api;

/* flibs.c */
int flibs_load(struct mapid *m);
void flibs_unload(struct mapid *m);
/* Finds a function by "NAME" or "lib:NAME" (case-insensitive). NULL if unknown. */
const struct mapi_fn_def *flibs_find(struct mapid *m, const char *name, int *libidx);

/* device.c */
struct device *device_find(struct mapid *m, const char *name);
struct device *device_by_id(struct mapid *m, int id);
int device_create_conf_devices(struct mapid *m);
/* Creates a trace-file device from a client's descriptor (takes ownership of fd). Returns the
 * device or NULL with *err and msg set. */
struct device *device_create_offline(struct mapid *m, struct client *c, int fd, int format,
                                     const char *path, int *err, char *msg, size_t msglen);
/* Opens a live device's source if not open yet. 0 or an error number with msg. */
int device_open(struct device *d, char *msg, size_t msglen);
/* Starts the capture thread if not running. 0 or an error number. */
int device_start(struct device *d, char *msg, size_t msglen);
void device_stop(struct device *d);
void device_add_active(struct device *d, struct flow *f);
void device_remove_active(struct device *d, struct flow *f);
/* Deletes a trace-file device: stops it and frees it (its flows must be closed). */
void device_delete(struct mapid *m, struct device *d);
/* Called when a flow on d goes away; stops a live device nobody uses. */
void device_flow_gone(struct device *d);

/* flow.c */
struct flow *flow_create(struct mapid *m, struct client *c, struct device *d);
struct flow *flow_find(struct mapid *m, int id);
/* Applies a function. Returns fid > 0, or -(error number) with msg. Takes ownership of args. */
int flow_apply(struct flow *f, const struct mapi_fn_def *def, int libidx, struct mapi_arg *args,
               int nargs, char *strings, char *msg, size_t msglen);
/* Creates shared memory, inits the functions and activates the flow. 0 or an error number. */
int flow_connect(struct mapid *m, struct flow *f, char *msg, size_t msglen);
/* Closes and unlinks a flow; frees it when the capture thread lets go. */
void flow_close(struct mapid *m, struct flow *f);
void flow_put(struct flow *f);
/* Runs the flow's functions on one packet (capture thread). */
void flow_process(struct flow *f, struct mapi_pkt *pkt);
/* End of a batch (capture thread): wakes the clients whose packet rings received packets. */
void flow_batch_done(struct flow *f);
/* Copies the results (and statistics) of a group leader into a follower (capture thread). */
void flow_copy_results(struct flow *to, const struct flow *from);
/* Marks a flow finished (end of trace): status in shared memory and EOF on its rings. */
void flow_finish(struct flow *f, int status);
/* Capture thread, before any flow processes a packet: the tick() callbacks of f. */
void flow_tick(struct flow *f, uint64_t ts);
/* Capture thread, end of a trace: the flush() callbacks of f, then wakes its readers. */
void flow_flush(struct flow *f);

/* perms.c: host->may_use_site_key (see mapi/flib.h) */
int perms_may_use_site_key(const struct mapi_fn_instance *fi);

/* refs.c: the reference part of the host API (see mapi/flib.h) */
struct mapi_ref *refs_open(struct mapi_fn_instance *fi, int flow_id, int fid);
uint32_t refs_size(const struct mapi_ref *r);
uint32_t refs_read(const struct mapi_ref *r, void *buf, uint32_t len);
uint64_t refs_read_u64(const struct mapi_ref *r);
int refs_reset(const struct mapi_ref *r);
int refs_flow_status(const struct mapi_ref *r);
/* Drops the references fn opened (when fn is destroyed). */
void refs_release(struct fn_inst *fn);

#endif /* MAPID_MAPID_H */
