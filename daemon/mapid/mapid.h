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
#define MAPID_MAX_CAPLEN 262144u     /* largest frame a driver hands out (drivers/ enforce it) */
#define MAPI_QUEUE_MAX_RECORD 65536u /* largest record of host queue_put */
#define MAPID_STOP_TIMEOUT_MS 2000   /* device_stop: how long to wait for a capture thread */

struct client;
struct device;

struct flib_entry {
    void *dl;
    const struct mapi_flib *lib;
    char file[256];
    int nfuncs;
};

struct ring {
    int fd; /* producer part: header and data, sealed read-only for the client */
    void *map;
    size_t maplen;
    struct mapi_ring_hdr *hdr;
    int ctl_fd;                /* consumer block (client-writable, MAPI_RING_CTL_SIZE bytes) */
    struct mapi_ring_ctl *ctl; /* never trusted: tail is validated, the rest are hints */
    int toobig_logged;         /* a record larger than half the ring was logged */
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
    uint64_t pkts, passed; /* written by the capture thread only (atomic stores), read atomically */
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
    int owns_device;   /* created by CREATE_OFFLINE_FLOW: started at connect, and its close
                          releases the creator's hold on the device (device_release) */
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
    /* Lifetime of a trace device (control thread only; see docs/security-devices.md). The
     * creator holds it (held) until DELETE_OFFLINE_DEVICE, its disconnect, or the close of
     * the flow that CREATE_OFFLINE_FLOW made (owns_device); then it is retired: capture
     * stopped, source closed, unlinked from m->devices (no new flows), the flows still on it
     * finished. The struct itself lives while flows are on it (nflows) or held is set. */
    struct client *owner; /* trace files: the client that created it, NULL once released */
    int held;             /* trace files: the creator's hold */
    int retired;          /* trace files: ended (see above) */
    int parked;           /* the capture thread did not stop in time: never freed */
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
    struct device *next;        /* m->devices */
    struct device *parked_next; /* m->parked */
};

/* What one uid holds across all its connections (users.c). */
struct user {
    uid_t uid;
    int nconns;           /* admitted connections */
    int nrefused;         /* refused connections waiting for their error reply */
    int nflows;           /* flows, connected or not */
    uint64_t shm_bytes;   /* shared memory of the connected flows */
    uint64_t input_bytes; /* request buffers of the connections */
    struct user *next;
};

struct client {
    int sock;
    uid_t uid;
    pid_t pid;
    struct user *user;
    uint8_t *in; /* request buffer, grown as bytes arrive (counted in user->input_bytes) */
    size_t inlen, incap;
    int fds[WIRE_MAX_FDS];
    int nfds;
    int nflows;
    uint64_t shm_bytes;
    int dead;
    int refused; /* over a limit: the first request gets refuse_msg, then EOF */
    char refuse_msg[256];
    uint64_t since_ms;   /* CLOCK_MONOTONIC ms: accepted */
    uint64_t active_ms;  /* last complete request */
    uint64_t partial_ms; /* when the request now in the buffer started, 0 if none */
    struct client *next;
};

struct mapid {
    struct mapi_conf conf;
    struct flib_entry *libs;
    int nlibs;
    struct device *devices;
    struct device *parked;         /* devices whose capture thread would not stop (device_stop) */
    int shutting_down;             /* device_stop waits until stop_deadline, not 2 s each */
    struct timespec stop_deadline; /* CLOCK_REALTIME */
    int next_devid;
    struct flow *flows;
    int next_flowid;
    struct client *clients;
    struct user *users;
    int nconns;           /* admitted connections */
    int nrefused;         /* refused connections not yet closed */
    uint64_t input_bytes; /* request buffers of all connections */
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
/* Creates a trace-file device from a client's descriptor (takes ownership of fd), held by
 * client c. Refuses descriptors that are not regular files (device_check_fd). Returns the
 * device or NULL with *err and msg set. */
struct device *device_create_offline(struct mapid *m, struct client *c, int fd, int format,
                                     const char *path, int *err, char *msg, size_t msglen);
/* Checks that a client's descriptor can never block mapid: a trace (for_write 0) or an output
 * file of a 'w' argument (for_write 1) must be a regular file not on FUSE, open for reading
 * (writing); /dev/null is accepted for writing. 0, or -1 with the reason in msg. */
int device_check_fd(int fd, int for_write, char *msg, size_t msglen);
/* Trace devices of this uid that are not retired, plus its parked ones (for
 * max_devices_per_user); first reaps parked devices whose thread has finished. */
int device_count_offline(struct mapid *m, uid_t uid);
/* Opens a live device's source if not open yet. 0 or an error number with msg. */
int device_open(struct device *d, char *msg, size_t msglen);
/* Starts the capture thread if not running. 0 or an error number. */
int device_start(struct device *d, char *msg, size_t msglen);
/* Stops the capture thread, waiting at most MAPID_STOP_TIMEOUT_MS. Returns 0 when it has
 * stopped (or was not running); -1 when it did not: the device is then parked (an error is
 * logged; its memory and source are kept, since the thread may still use them). */
int device_stop(struct mapid *m, struct device *d);
/* Sets *until to MAPID_STOP_TIMEOUT_MS from now (CLOCK_REALTIME, for pthread_timedjoin_np). */
void device_stop_deadline(struct timespec *until);
void device_add_active(struct device *d, struct flow *f);
void device_remove_active(struct device *d, struct flow *f);
/* The creator lets go of a trace device (DELETE_OFFLINE_DEVICE, its disconnect, the close of
 * its CREATE_OFFLINE_FLOW flow): retires it (capture stopped, flows still on it finished with
 * FLOW_FINISHED, no new flows) and frees it once no flow is on it. why goes to the log. */
void device_release(struct mapid *m, struct device *d, const char *why);
/* Called when a flow on d is closed: stops a live device nobody uses; frees a released trace
 * device when its last flow goes. */
void device_flow_gone(struct mapid *m, struct device *d);
/* Shutdown: stops and frees every device left (live ones; parked ones are only stopped). */
void device_destroy_all(struct mapid *m);

/* users.c: per-uid accounting and admission (see the file comment) */
/* The user of uid, created if needed. NULL when out of memory. */
struct user *user_get(struct mapid *m, uid_t uid);
/* Frees u when nothing counts on it any more. */
void user_drop_if_unused(struct mapid *m, struct user *u);
/* May a new connection of u be admitted? 0 (then *shed, if set, is a connection of the
 * heaviest user to close to make room), or MAPID_LIMIT_EXCEEDED with a message naming the key. */
int user_admit(struct mapid *m, struct user *u, struct client **shed, char *msg, size_t msglen);
/* Before starting the capture thread of trace device d: 0, or MAPID_LIMIT_EXCEEDED with msg
 * when d's uid already runs max_threads_per_user of them. */
int user_thread_check(struct mapid *m, const struct device *d, char *msg, size_t msglen);
/* Resizes c's request buffer to newcap bytes (0 frees it), within max_input_per_user and
 * max_input_total. 0, or an error number with msg (the buffer is then unchanged). */
int user_input_resize(struct mapid *m, struct client *c, size_t newcap, char *msg, size_t msglen);

/* sockdir.c: creates the socket's directory when missing (mode 0750, group group) and checks
 * that no other user can replace the socket (see the file comment). 0, or -1 with msg. */
int sockdir_prepare(const char *path, const char *group, char *msg, size_t msglen);

/* flow.c */
struct flow *flow_create(struct mapid *m, struct client *c, struct device *d);
struct flow *flow_find(struct mapid *m, int id);
/* Applies a function. Returns fid > 0, or -(error number) with msg. Takes ownership of args. */
int flow_apply(struct flow *f, const struct mapi_fn_def *def, int libidx, struct mapi_arg *args,
               int nargs, char *strings, char *msg, size_t msglen);
/* Creates shared memory, inits the functions and activates the flow. 0 or an error number. */
int flow_connect(struct mapid *m, struct flow *f, char *msg, size_t msglen);
/* Closes and unlinks a flow; frees it when the capture thread lets go. Tells its device
 * (device_flow_gone; device_release first for the flow of a CREATE_OFFLINE_FLOW), which
 * alone decides when a device goes. */
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
