/*
 * daemon/mapicommd/mapicommd.h - internal interfaces of mapicommd, the DiMAPI agent of a
 * sensor (protocol in common/dimapi.h, transport in common/net.h).
 *
 * mapicommd is a TLS (or plain TCP) server and an ordinary local client of mapid through the
 * static libmapi. Its parts:
 *   main.c     command line, mapi.conf, logging, privilege drop, the accept loop, shutdown.
 *   session.c  one thread per connection: HELLO, then requests answered in order by calling
 *              the public libmapi API; closes the connection's flows when it goes away.
 *   proto.c    the side-effect-free decoder of request payloads (also built into the fuzzer,
 *              tests/fuzz/dimapi_fuzz.c).
 *   flows.c    the registry of the flows created through mapicommd (rfd -> application token,
 *              owning connection), and the "pumps": helper threads that wait in libmapi's
 *              blocking calls (TO_BUFFER with WAIT, queued results) so that a connection thread
 *              can wait with a timeout and still notice a DIMAPI_CLOSE_FLOW.
 *   lmext.c    the few facts libmapi's public API does not give (a function's flags and
 *              argument descriptor, whether a TO_BUFFER ring is NOWAIT or at its end), read
 *              from libmapi's internal tables; the only file that includes lib/internal.h.
 */
#ifndef MAPI_MAPICOMMD_H
#define MAPI_MAPICOMMD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/dimapi.h"
#include "common/net.h"
#include "common/wire.h"

/* ---- proto.c ------------------------------------------------------------------------- */

#define DIMAPI_MAX_ARGS 64      /* arguments of one DIMAPI_APPLY */
#define DIMAPI_MAX_STR 4096     /* device and function names */
#define DIMAPI_MAX_ARGSTR 65536 /* one string argument */

struct dimapi_arg {
    char type;  /* letter: s S R w i r f c l */
    int32_t i;  /* i r f c */
    uint64_t l; /* l */
    char *s;    /* s S R w: malloc'd, NUL-terminated */
};

/* A decoded request. Which fields are set depends on type (see common/dimapi.h). */
struct dimapi_req {
    uint16_t type;
    uint32_t reqid;
    uint16_t min_version, max_version;     /* HELLO */
    uint8_t token[DIMAPI_TOKEN_LEN];       /* HELLO */
    char str[DIMAPI_MAX_STR];              /* CREATE_FLOW/STATS device, GET_FUNCTION/APPLY name */
    int32_t rfd, fid;                      /* flow requests */
    int32_t id, lib, fnum;                 /* DEVICE/LIBRARY/LIBFUNCT_INFO */
    uint8_t next;                          /* *_INFO */
    uint32_t max_pkts, max_bytes, wait_ms; /* GET_PKTS */
    uint32_t nargs;                        /* APPLY */
    struct dimapi_arg *args;               /* APPLY: nargs entries, malloc'd */
};

#define DIMAPI_DECODE_MALFORMED (-1) /* bad field, trailing bytes, flags: close the connection */
#define DIMAPI_DECODE_UNKNOWN (-2)   /* a type this server does not know: answer an error */

/*
 * Decodes the payload of request hdr into *req (zeroed first). No side effects besides
 * allocating req->args (free with dimapi_req_free, also after a failure). Returns 0,
 * DIMAPI_DECODE_MALFORMED or DIMAPI_DECODE_UNKNOWN with a reason in why.
 */
int dimapi_decode(const struct wire_hdr *hdr, const uint8_t *payload, size_t len,
                  struct dimapi_req *req, char *why, size_t whylen);
void dimapi_req_free(struct dimapi_req *req);
/* Name of a request type ("CREATE_FLOW"), "?" if unknown. */
const char *dimapi_type_name(unsigned type);

/* ---- main.c -------------------------------------------------------------------------- */

extern struct mapi_conf g_conf;
extern struct net_ctx *g_netctx;
extern char g_hostname[256];
extern _Atomic int g_stopping;

/* ---- session.c ----------------------------------------------------------------------- */

/* Starts a detached thread for an accepted socket (takes ownership of fd). Refuses politely
 * when dimapi_max_clients connections are open. */
void session_start(int fd);
/* Wakes every connection (shutdown of its socket) and waits up to timeout_ms for all of
 * them to finish. Returns the number still running. */
int sessions_stop(int timeout_ms);

/* ---- flows.c ------------------------------------------------------------------------- */

struct mc_item; /* a packet or result record queued by a pump */

/* A helper thread consuming one blocking source of a flow. Fields under the flow's lock. */
struct mc_pump {
    int fid;
    int kind; /* MC_PUMP_RING (TO_BUFFER, WAIT) or MC_PUMP_QUEUE (MAPI_FN_QUEUE results) */
    int threaded;
    pthread_t th;
    struct mc_item *head, *tail; /* FIFO of records taken out of libmapi */
    size_t bytes;
    int end; /* no more records will come (end of trace) */
    int err; /* sticky error code after the queue, 0 if none */
    char errmsg[512];
    int stop;
    struct mc_flow *flow;
    struct mc_pump *next;
};
#define MC_PUMP_RING 1
#define MC_PUMP_QUEUE 2

struct mc_item {
    struct mc_item *next;
    uint64_t ts;
    uint16_t ifindex;
    uint32_t caplen, wlen;
    uint8_t data[];
};

struct mc_flow {
    int rfd;
    uint8_t token[DIMAPI_TOKEN_LEN];
    const void *owner;    /* the connection that created it */
    int refs;             /* under the registry lock */
    int closed;           /* under the registry lock */
    int dead;             /* under lock: closing, no new pumps */
    pthread_mutex_t lock; /* pumps and their queues */
    pthread_cond_t cond;  /* signalled when a pump queue changes */
    pthread_mutex_t io;   /* serializes direct libmapi reads with closing */
    struct mc_pump *pumps;
    struct mc_flow *next;
};

/* Registers a flow created through libmapi (rfd) for token and owner. NULL on ENOMEM. */
struct mc_flow *mc_flow_add(int rfd, const uint8_t *token, const void *owner);
/* The flow rfd if it is open and was created with token, with a reference (mc_flow_put). */
struct mc_flow *mc_flow_get(int rfd, const uint8_t *token);
void mc_flow_put(struct mc_flow *f);
/* 1 if rfd is an open flow of token. */
int mc_flow_owned(int rfd, const uint8_t *token);
/*
 * Closes f: unregisters it, stops its pumps, calls mapi_close_flow, joins the pumps. Returns
 * 0, or -1 with *code and msg (libmapi's error of mapi_close_flow; 6145 if already closed).
 * The caller keeps its own reference.
 */
int mc_flow_close(struct mc_flow *f, int *code, char *msg, size_t len);
/* Closes every flow owned by owner (a connection going away). */
void mc_flows_close_owner(const void *owner);
/* The pump of (f, fid), created (and its thread started if threaded) on first use. Flow lock
 * held. NULL with *err set (3084 out of memory, 6145 the flow is being closed). */
struct mc_pump *mc_pump_get(struct mc_flow *f, int fid, int kind, int threaded, int *err);
/* Frees an item taken out of a pump queue. */
void mc_item_free(struct mc_item *it);
/* Appends a record to p's FIFO and wakes the waiters (takes the flow lock). */
void mc_pump_push(struct mc_flow *f, struct mc_pump *p, struct mc_item *it);

/* ---- lmext.c ------------------------------------------------------------------------- */

/* GET_FUNCTION through libmapi's cache. 0, or -1 with libmapi's error set. */
int mc_lookup_function(const char *name, char *argdescr, size_t alen, char *libname, size_t llen,
                       uint32_t *flags);
/* Flags and result size of applied function fid of rfd; *connected and *nowait (TO_BUFFER
 * with NOWAIT) too. 0, or -1 with libmapi's error set (6145, 6147). */
int mc_fn_meta(int rfd, int fid, uint32_t *flags, uint32_t *result_size, int *connected,
               int *nowait);
/* 1 if the packet ring of (rfd, fid) has reached the end of a trace (or the flow finished). */
int mc_ring_eof(int rfd, int fid);
/* 1 if libmapi would take dev as a remote "host:dev" scope (mapicommd does not relay). */
int mc_is_remote_scope(const char *dev);
/* libmapi's last error of this thread: code and detail (without the table text). Clears it.
 * Returns the code, 0 if none was set (msg then ""). */
int mc_last_error(char *msg, size_t len);

#endif /* MAPI_MAPICOMMD_H */
