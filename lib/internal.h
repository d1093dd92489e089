/*
 * lib/internal.h - internal interfaces of libmapi (not installed).
 *
 * libmapi is split into:
 *   error.c   the per-thread last error (mapi_read_error).
 *   client.c  the connection to mapid: lazy connect + HELLO, one global mutex that serializes
 *             requests, request/reply with a receive timeout, unsolicited messages (SHUTDOWN,
 *             DEVICE_FINISHED), and the non-blocking liveness check used while waiting for
 *             packets.
 *   flows.c   the table of the application's flow descriptors (1, 2, ...) and their functions,
 *             with lock-free lookup for the fast paths (mapi_read_results, mapi_get_next_pkt).
 *   args.c    argument encoding for mapi_apply_function (varargs) and
 *             mapi_apply_function_array (strings), including the translation of flow
 *             references ('r', "fid@fd" in 'S') from our descriptors to mapid's flow ids.
 *   ring.c    the consumer side of a TO_BUFFER packet ring (layout in common/shm.h).
 *   mapi.c    the public calls on flows, functions, results and packets.
 *   info.c    the public management calls (device, library, flow, function info, stats).
 *   remote.c  DiMAPI, the remote back end: mapi.conf's dimapi_* keys, scope parsing, the TLS/TCP
 *             connections to the sensors' mapicommd (common/net.h) and the engine that sends a
 *             request to every sensor of a scope and then collects the replies with poll().
 *   remote_flow.c  the public calls on remote flows (a scope "host:dev, host:port:dev, ..."),
 *             reached from mapi.c / info.c when a flow has f->remote set.
 *
 * Locking: every call that talks to mapid or changes the flow table holds the client lock
 * (lm_client_lock) for its whole duration. mapi_read_results and mapi_get_next_pkt never take it
 * (get_next_pkt only tries it, to poll the socket while it waits).
 *
 * Internal functions are prefixed lm_ so that libmapi.a does not clash with the
 * application's own symbols (the shared library hides them with -fvisibility=hidden).
 */
#ifndef MAPI_LIB_INTERNAL_H
#define MAPI_LIB_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "common/shm.h"
#include "common/wire.h"
#include "mapi.h"
#include "mapi/errors.h"

#define LIB_REQUEST_TIMEOUT_MS 30000 /* a hung mapid never blocks a call longer than this */
#define LIB_MAX_FID 65536            /* fids above this in a reply are a protocol error */

/* ---- error.c ------------------------------------------------------------------------- */

/* Sets this thread's last error: code plus an optional printf-style detail (fmt may be NULL). */
void lm_set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The code of this thread's last error (0 if none); does not clear it. */
int lm_last_error(void);
/* Replaces the code of this thread's last error by `code`, keeping the old code and detail
 * in the detail text (used to report daemon errors under a call's documented number). */
void lm_remap_error(int code);
/* Clears this thread's last error. */
void lm_clear_error(void);

/* ---- client.c ------------------------------------------------------------------------ */

/* A reply received from mapid. Release with lm_client_reply_free. */
struct lib_reply {
    struct wire_hdr hdr;
    uint8_t *payload;
    struct wire_reader r;  /* positioned at the start of the payload */
    int fds[WIRE_MAX_FDS]; /* descriptors that came with the reply; set an entry to -1 to keep it */
    int nfds;
};

void lm_client_lock(void);
void lm_client_unlock(void);

/*
 * Lock held. Makes sure we are connected (connects and says HELLO on first use) and starts
 * a request of `type` in w with a fresh request id. Returns 0, or -1 with the error set
 * (5124 mapid not running, 6140 mapid shut down, 5123 connection lost); w is then untouched.
 */
int lm_client_begin(struct wire_writer *w, uint16_t type);

/* Return values of lm_client_call besides 0. */
#define CLIENT_ERR_LOCAL (-1)  /* connection or protocol failure (5121, 5123, 6140, ...) */
#define CLIENT_ERR_DAEMON (-2) /* mapid answered with an error; code and its message are set */

/*
 * Lock held. Finishes and sends w with nfds descriptors (SCM_RIGHTS; the caller keeps its
 * copies), then waits up to LIB_REQUEST_TIMEOUT_MS for the reply, handling unsolicited
 * messages meanwhile. Always frees w. Returns 0 with *rep filled (free it with
 * lm_client_reply_free), or CLIENT_ERR_LOCAL / CLIENT_ERR_DAEMON with the error set.
 */
int lm_client_call(struct wire_writer *w, const int *fds, int nfds, struct lib_reply *rep);
/* Frees the payload and closes the reply's descriptors that are still >= 0. */
void lm_client_reply_free(struct lib_reply *rep);

/*
 * No lock needed. If mapid sent SHUTDOWN or the connection was lost, sets the error (6140 or
 * 5123) and returns it; otherwise returns 0. Costs two atomic loads.
 */
int lm_client_state_error(void);

/* No lock needed. Nonzero once mapid sent SHUTDOWN or the connection was lost (one load
 * each of two flags; for the fast paths). */
int lm_client_gone(void);

/*
 * No lock needed. Tries the lock (skips if another thread holds it) and, if the socket has
 * anything to read, handles it: SHUTDOWN and EOF set the state that lm_client_state_error
 * reports. Used by the packet consumer between futex waits.
 */
void lm_client_poll_events(void);

/*
 * Takes the lock. If the connection to mapid broke or mapid shut down, and this was not yet
 * done for that connection: copies the reason to why, removes every local flow from the
 * table (lm_flows_forget_local: their calls fail with 6145 from now on, waiters wake up) and
 * returns 1, so the next request connects afresh. 0 otherwise. For mapicommd, whose remote
 * applications must not wait for each other's flows to close (docs/dimapi.md); ordinary
 * applications keep the rule of lm_client_begin.
 */
int lm_client_forget_dead(char *why, size_t len);

/* Lock held. Records that `name` is an offline device created through this library. */
void lm_client_add_offline_device(const char *name);
/* Lock held. Forgets an offline device name. */
void lm_client_remove_offline_device(const char *name);
/* Lock held. 1 if `name` was returned by mapi_create_offline_device on this connection. */
int lm_client_is_offline_device(const char *name);

/* Cached answer of GET_FUNCTION. */
struct lib_fninfo {
    char name[MAPI_STR_LENGTH];
    char argdescr[MAPI_STR_LENGTH];
    char libname[MAPI_STR_LENGTH];
    uint32_t flags;
};
/* Lock held. Looks `name` up (cache first, then GET_FUNCTION). Returns a pointer valid while
 * the lock is held, or NULL with the error set (6144 from mapid for an unknown name). */
const struct lib_fninfo *lm_client_get_function(const char *name);

/* Reads a str field into dst (dstlen bytes with the NUL), truncating a longer string. */
void lm_get_str_trunc(struct wire_reader *r, char *dst, size_t dstlen);

/* ---- mapi.c -------------------------------------------------------------------------- */

/* Lock held. 1 if dev is a remote "host:dev" scope (DiMAPI), 0 if it is local. */
int lm_is_remote_scope(const char *dev);

/* ---- flows.c ------------------------------------------------------------------------- */

struct lib_ring {
    int fid;
    struct mapi_ring_hdr *hdr; /* read-only mapping of maplen bytes (header, then data) */
    struct mapi_ring_ctl *ctl; /* read-write mapping of the consumer block */
    uint8_t *data;
    uint64_t size; /* bytes of the data area */
    size_t maplen;
    uint64_t tail;          /* our copy of ctl->tail */
    uint32_t pending;       /* bytes of the record handed out last, consumed at the next call */
    uint64_t last_check_ns; /* last liveness check (lm_client_poll_events) */
};

struct lib_fn {
    int fid;
    char name[MAPI_STR_LENGTH];
    uint32_t result_size; /* from the APPLY_FUNCTION reply */
    uint32_t flags;       /* MAPI_FN_* from the APPLY_FUNCTION reply */
    /* Set at connect: */
    const struct mapi_shm_result *slot; /* NULL if the region has no slot for this fid */
    uint32_t slot_size;
    void *buf;             /* library-owned copy handed out by mapi_read_results (aligned) */
    uint32_t bufcap;       /* bytes at buf */
    mapi_results_t res;    /* the struct mapi_read_results returns */
    struct lib_ring *ring; /* TO_BUFFER and MAPI_FN_QUEUE functions only */
};

struct lib_rflow; /* remote_flow.c: the sensors of a remote flow */

struct lib_flow {
    int fd;              /* ours */
    int id;              /* mapid's flow id */
    int devid;           /* mapid's device id */
    int connected;       /* atomic; set with release order once everything below is ready */
    int closing;         /* atomic; set by mapi_close_flow */
    int gone;            /* lock held; mapid closed the flow when its connect failed */
    int refs;            /* atomic; the table holds one, a waiting get_next_pkt/loop holds one */
    struct lib_fn **fns; /* indexed by fid, nfns entries (some NULL) */
    int nfns;
    struct mapi_shm_hdr *region; /* read-only mapping of region_len bytes */
    size_t region_len;
    struct lib_ring *rings;
    int nrings;
    struct lib_rflow *remote; /* DiMAPI flow (then id, devid, fns, region are unused); set
                                 before the flow is published, freed with the flow */
};

/* Lock-free lookup of one of our descriptors. NULL if fd <= 0 or unknown. */
struct lib_flow *lm_flow_get(int fd);
/* Lock held. Allocates a flow for mapid's id and gives it the next descriptor. NULL on
 * ENOMEM (error set). */
struct lib_flow *lm_flow_add(int id, int devid);
/* Lock held. Removes fd from the table (lookups fail from now on), marks the flow closing,
 * wakes any thread waiting on its rings and drops the table's reference. */
void lm_flow_remove(struct lib_flow *f);
/* Lock held. Allocates a remote flow holding r (owned by the flow from now on) and gives it the
 * next descriptor. NULL on ENOMEM (error set; r is not freed). */
struct lib_flow *lm_flow_add_remote(struct lib_rflow *r);
/* Lock held. Number of local flows in the table (remote flows do not depend on mapid). */
int lm_flow_count(void);
/* Lock held. Removes every local flow from the table (lm_flow_remove), without telling
 * mapid: for a dead connection (lm_client_forget_dead). */
void lm_flows_forget_local(void);
/* Takes a reference on fd's flow (for long waits); NULL if unknown or closing. */
struct lib_flow *lm_flow_acquire(int fd);
/* Drops a reference; the last one unmaps and frees the flow. */
void lm_flow_release(struct lib_flow *f);
/* The function fid of f, or NULL. Safe without the lock once f is connected. */
static inline struct lib_fn *lm_flow_fn(const struct lib_flow *f, int fid)
{
    if (fid <= 0 || fid >= f->nfns)
        return NULL;
    return f->fns[fid];
}
/* Lock held, before connect. Records an applied function. -1 with the error set. */
int lm_flow_add_fn(struct lib_flow *f, int fid, const char *name, uint32_t result_size,
                   uint32_t flags);

/* ---- args.c -------------------------------------------------------------------------- */

struct lib_arg {
    char type;     /* letter of the descriptor */
    int32_t i;     /* 'i','r','f','c' (already translated for 'r') */
    uint64_t l;    /* 'l' */
    const char *s; /* 's','S','w': borrowed, or owned (below) */
    char *owned;   /* translated 'S' string, freed by lm_args_free */
    int fdidx;     /* 'w': index into fds */
};

struct lib_args {
    struct lib_arg *a;
    int n;
    int fds[WIRE_MAX_FDS];     /* opened 'w' files */
    char *paths[WIRE_MAX_FDS]; /* names of the files we created (NULL for a file replaced),
                                  to remove them again if the apply fails */
    int nfds;
};

/*
 * Lock held. Read arguments per argdescr from varargs (lm_args_from_va) or from nargs strings
 * (lm_args_from_array), validate them, translate flow references, and open 'w' files. Returns 0,
 * or -1 with the error set (7000+position, 7011, 7000, 6155, 3083, 7010); on failure nothing
 * is left to free. On success call lm_args_free after the request.
 */
/* Argument strings (args.c): blank = space, tab, CR or LF. lm_parse_int: a whole decimal int
 * in lo..hi with optional blanks around it; lm_parse_ull: a whole unsigned decimal (no sign).
 * Both return 0 and set *out, or -1. */
int lm_is_blank(char c);
int lm_parse_int(const char *s, long lo, long hi, int32_t *out);
int lm_parse_ull(const char *s, uint64_t *out);
/* Reads the item at *pp of an 'S' ("fid@fd,...", with_fid; *fid set) or 'R' ("fd,...", *fid
 * 0) list, blanks allowed around the parts. Returns 1 and advances *pp past the comma when
 * more items follow, 0 after the last item, -1 if malformed. */
int lm_list_next(const char **pp, int with_fid, long *fid, long *fd);

/* From now on, 'w' files are opened beneath directory dirfd (openat2, RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS; an existing file only if regular with one link), -1: as given,
 * relative to the working directory (the default). Set once before any apply (mapicommd's
 * dimapi_file_dir). */
void lm_args_set_file_root(int dirfd);
/* nvar: number of varargs the caller passed, or -1 if unknown (then all are read). */
int lm_args_from_va(struct lib_args *out, const char *argdescr, int nvar, va_list ap);
int lm_args_from_array(struct lib_args *out, const char *argdescr, char **args, int nargs);
/* Appends "u32 nargs, nargs x arg" to w. */
void lm_args_encode(const struct lib_args *a, struct wire_writer *w);
/* Closes the 'w' descriptors and frees; with failed != 0 also removes the files created. */
void lm_args_free(struct lib_args *a, int failed);
/* The error number for a bad argument at 1-based position pos (7001..7005, 7011, 7000). */
int lm_args_position_error(int pos);

/* ---- ring.c -------------------------------------------------------------------------- */

/* Outcome of lm_ring_next besides a packet. */
#define RING_PACKET 1
#define RING_END 0      /* end of trace, or NOWAIT and empty: NULL with no error */
#define RING_ERROR (-1) /* error set */

/* Maps and checks a ring received at connect. Returns 0 or -1 with the error set. */
int lm_ring_attach(struct lib_ring *r, int fid, int fd, int ctlfd, uint64_t bytes);
void lm_ring_detach(struct lib_ring *r);
/*
 * Consumes the record handed out last and returns the next one in *pkt (RING_PACKET), or
 * RING_END, or RING_ERROR. Blocks (WAIT rings) while the ring is empty, noticing the flow
 * being closed (6145 by us, 6140 by mapid) and mapid going away (6140, 5123). The caller
 * holds a reference on f.
 */
int lm_ring_next(struct lib_flow *f, struct lib_ring *r, struct mapipkt **pkt);
/* Wakes threads sleeping in lm_ring_next on r (used when the flow is closed). */
void lm_ring_wake(struct lib_ring *r);

/* ---- remote.c, remote_flow.c (DiMAPI) ------------------------------------------------ */

/* No lock needed. 1 if dev is exactly a device= of the application's mapi.conf (so that a
 * local name with a ':' such as "eth0:1" is not taken for a remote scope). */
int lm_remote_conf_has_device(const char *dev);

/*
 * The remote back end's calls. Unless noted, they are called WITHOUT the client lock (they may
 * wait for sensors up to dimapi_timeout, and must not hold up local calls) and with a
 * reference on f (lm_flow_acquire), and return what the public call of the same name returns,
 * with the error set on failure. Errors name the sensor ("host:port: ...").
 */
/* Parses the scope, connects to every sensor (in parallel) and creates the flow there.
 * Returns our new descriptor or -1. */
int lm_remote_create_flow(const char *scope);
/* f was removed from the table already (lm_flow_remove); closes the flow on every sensor and
 * the connections. 0, or -1 if a sensor could not be told (the flow is gone anyway). */
int lm_remote_close_flow(struct lib_flow *f);
/* Exactly one of (nvar >= -1 with ap) or (args, nargs >= 0) is used: from_array selects. */
int lm_remote_apply(struct lib_flow *f, const char *funct, int from_array, int nvar, va_list ap,
                    char **args, int nargs);
int lm_remote_connect(struct lib_flow *f);
/* Returns the library-owned array of scope-size entries (see remote_flow.c). */
mapi_results_t *lm_remote_read_results(struct lib_flow *f, int fid);
struct mapipkt *lm_remote_get_next_pkt(struct lib_flow *f, int fid);
int lm_remote_loop(struct lib_flow *f, int fid, int cnt, mapi_handler cb);
int lm_remote_scope_size(const struct lib_flow *f);
int lm_remote_flow_info(struct lib_flow *f, mapi_flow_info_t *info);
int lm_remote_function_info(struct lib_flow *f, int fid, int next, mapi_function_info_t *info);
/* mapi_stats over a scope: one entry per sensor in scope order; returns the count or -1. */
int lm_remote_stats(const char *scope, struct mapi_stat *stats);
/* Frees a remote flow's state (connections closed if still open). Called by flows.c when the
 * last reference to the flow goes. */
void lm_remote_free(struct lib_rflow *r);

/* -- shared by remote.c and remote_flow.c -- */

#define LM_PEER_LEN 300
#define LM_MAX_SCOPE 256 /* sensors in one scope */

/* One item of a scope: a sensor's mapicommd (host, port) and the device there. */
struct lm_scope_item {
    char host[256]; /* name or address, IPv6 without brackets */
    int port;
    char dev[MAPI_STR_LENGTH];
    char peer[LM_PEER_LEN]; /* "host:port" or "[v6]:port", for messages */
};

/* Parses a scope (see remote.c). Returns the number of items with *items malloc'd (free
 * it), or -1 with error 7000 naming the bad item. Needs lm_remote_init first (default port). */
int lm_scope_parse(const char *scope, struct lm_scope_item **items);

/* No lock needed. Loads mapi.conf's dimapi_* keys, the TLS context and the token once per
 * process. 0, or -1 with the error set (5124 and the reason: no CA, unreadable certificate). */
int lm_remote_init(void);
/* dimapi_timeout in ms (after lm_remote_init). */
int lm_remote_timeout(void);
/* dst = "peer: msg", or msg alone if it names the peer already (cut to len, ending "..."). */
void lm_with_peer(char *dst, size_t len, const char *peer, const char *msg);
/* Milliseconds on the monotonic clock. */
uint64_t lm_now_ms(void);

struct net_conn;
struct lm_rconn;
/* Called with the reply (payload malloc'd, now the callee's) of a request sent with
 * lm_rconn_send_late, or with hdr == NULL when the connection failed first. */
typedef void (*lm_late_cb)(void *arg, struct lm_rconn *c, const struct wire_hdr *hdr,
                           uint8_t *payload);

/*
 * One connection to a sensor's mapicommd. Used by one thread at a time (the owner's lock).
 * At most one request is in flight on it, as the protocol wants; a "late" request is one
 * whose reply is collected by whoever uses the connection next (GET_PKTS).
 */
struct lm_rconn {
    struct net_conn *nc; /* NULL when not connected */
    char peer[LM_PEER_LEN];
    int down;                       /* failed: err and why say how (why names the peer) */
    int err;                        /* 5124 could not connect, 5123 lost, 5121 malformed */
    char why[MAPI_ERRORSTR_LENGTH]; /* "host:port: reason" */
    uint32_t reqid;
    int late; /* a late request is in flight */
    uint32_t late_reqid;
    uint64_t late_deadline; /* lm_now_ms() limit for its reply */
    lm_late_cb late_cb;
    void *late_arg;
};

/* Connects (TCP, TLS handshake with verification) and says HELLO, all before deadline
 * (lm_now_ms). 0, or -1 with c->down/err/why set. Thread-safe for distinct c (sets no
 * thread error). */
int lm_rconn_open(struct lm_rconn *c, const struct lm_scope_item *it, uint64_t deadline);
/* Marks c failed with err and the reason ("peer: " is prepended), closing it; a late request
 * in flight is reported to its callback. */
void lm_rconn_fail(struct lm_rconn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Closes c (if open); the late callback, if any, gets hdr == NULL. */
void lm_rconn_close(struct lm_rconn *c);
/* Sets this thread's error from a failed connection. Returns -1. */
int lm_rconn_set_error(const struct lm_rconn *c);
/* Sends w (freed) as a late request whose reply may take up to timeout_ms. 0 or -1 (c failed). */
int lm_rconn_send_late(struct lm_rconn *c, struct wire_writer *w, int timeout_ms, lm_late_cb cb,
                       void *arg);
/* Waits up to timeout_ms (0: only what is there already) until at least one of the late
 * requests of cs[0..n-1] (NULL entries and connections without one are skipped) is answered
 * or fails; dispatches every reply that is ready. Returns the number dispatched. */
int lm_rconn_wait_late(struct lm_rconn **cs, int n, int timeout_ms);

/* One request of a parallel call (lm_rops_run). */
enum { LM_ROP_SKIP, LM_ROP_WAITPREV, LM_ROP_SENT, LM_ROP_OK, LM_ROP_REFUSED, LM_ROP_FAILED };
struct lm_rop {
    struct lm_rconn *c; /* NULL: skipped */
    struct wire_writer w;
    int timeout_ms; /* for the reply after sending; < 0 waits as long as the connection lives */
    int state;
    uint64_t deadline;
    uint32_t reqid;
    uint16_t type;
    struct wire_hdr hdr;
    uint8_t *payload;
    struct wire_reader r;           /* LM_ROP_OK: positioned at the reply's payload */
    int err;                        /* REFUSED: the sensor's MAPI error; FAILED: c->err */
    char msg[MAPI_ERRORSTR_LENGTH]; /* "host:port: text" */
};
/* Starts a request of type on c (c may be NULL or down: the op is then skipped/failed). */
void lm_rop_begin(struct lm_rop *op, struct lm_rconn *c, uint16_t type, int timeout_ms);
/* Sends every op's request (after the late reply its connection waits for, if any), then
 * collects all replies with poll(). Sets no thread error. */
void lm_rops_run(struct lm_rop *ops, int n);
/* Frees the writer and payload of op. */
void lm_rop_free(struct lm_rop *op);
/* Sets this thread's error from a REFUSED or FAILED op. Returns -1. */
int lm_rop_set_error(const struct lm_rop *op);

/* Runs fn(arg, i) for i in 0..n-1 in parallel threads (inline when n == 1 or threads fail). */
void lm_remote_parallel(int n, void (*fn)(void *arg, int i), void *arg);

/* The function `name` as the sensor it (its management connection) describes it; cached per
 * name for the process. 0 with *out filled, or -1 with the error set. */
int lm_remote_get_function(const struct lm_scope_item *it, const char *name,
                           struct lib_fninfo *out);

#endif /* MAPI_LIB_INTERNAL_H */
