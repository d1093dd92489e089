/*
 * mapi/flib.h - the function-library ABI: how mapid loads a library of MAPI functions
 * (stdflib, extraflib, ... or your own) and calls its functions for every packet.
 *
 * A library is a shared object that exports one symbol, `mapi_flib_entry`, a function that
 * returns a `const struct mapi_flib *`. mapid checks abi_version and struct_size before it
 * touches anything else. The library describes its functions in a table terminated by an
 * entry whose name is NULL.
 *
 * Life of an applied function (an "instance"):
 *   instance()  at mapi_apply_function: validate the arguments, set result_size, allocate
 *               priv. Return 0, or a MAPI error number (7001.. for the n-th argument) and
 *               optionally a message in fi->errmsg.
 *   init()      at mapi_connect: fi->result now points at result_size bytes of shared
 *               memory (zeroed). Return 0 or an error number.
 *   process()   for every packet that reached this function (functions run in the order
 *               applied; a function returning 0 ends the flow's work on this packet).
 *               Runs on the device's capture thread; must not block (except through
 *               host->ring_put, which applies back-pressure on trace files).
 *   reset()     optional: zero the result (used by functions that reference others).
 *   cleanup()   when the flow closes: free priv. Called even if init was never called.
 *
 * Results are read by clients without any system call, guarded by a seqlock: wrap every
 * change of fi->result in mapi_result_write_begin(fi) / mapi_result_write_end(fi).
 */
#ifndef MAPI_FLIB_H
#define MAPI_FLIB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: struct mapi_host_api gained may_use_site_key and conf_value returns numeric keys too.
 * mapid loads only libraries built for its own version. */
#define MAPI_FLIB_ABI_VERSION 2u

/* Link types are libpcap DLT_* values (DLT_EN10MB = 1, DLT_LINUX_SLL = 113, ...). */

/* Flags of pkt->flags, set by the decoder. */
#define MAPI_PKT_IPV4 0x0001u
#define MAPI_PKT_IPV6 0x0002u
#define MAPI_PKT_L4 0x0004u       /* l4_off and l4proto are valid, ports valid for TCP/UDP/SCTP */
#define MAPI_PKT_FRAGMENT 0x0008u /* IP fragment other than the first: no L4 header */
#define MAPI_PKT_VLAN 0x0010u
#define MAPI_PKT_MPLS 0x0020u
#define MAPI_PKT_TRUNCATED 0x0040u /* headers were cut short by the capture length */

/*
 * One captured packet, decoded once by the capture thread and seen by every flow of the
 * device. All offsets count from `data` (the link-layer frame) and lie inside caplen; an
 * offset of 0xffff means "absent". Functions must never read past data + caplen.
 */
struct mapi_pkt {
    const uint8_t *data; /* link-layer frame; a modifying function's flow gets a private copy */
    uint32_t caplen;     /* bytes captured */
    uint32_t wlen;       /* length on the wire */
    uint64_t ts;         /* 32.32 fixed point, Unix epoch */
    uint64_t seq;        /* per-device packet number, starting at 1: keys per-packet caches */
    uint16_t ifindex;
    uint16_t linktype;    /* DLT_* */
    uint16_t flags;       /* MAPI_PKT_* */
    uint16_t ethertype;   /* innermost ethertype (after VLAN tags), 0 if none */
    uint16_t l3_off;      /* IPv4/IPv6 header */
    uint16_t l4_off;      /* TCP/UDP/ICMP/... header */
    uint16_t payload_off; /* first byte after the L4 header (TCP/UDP/ICMP) */
    uint8_t l4proto;      /* IP protocol number of the transport header */
    uint8_t vlan_count;
    uint16_t vlan_id[2];      /* outer, inner (QinQ) */
    uint16_t sport, dport;    /* host byte order */
    uint8_t src[16], dst[16]; /* IPv4 in the first 4 bytes */
};

#define MAPI_OFF_NONE 0xffffu

/* Argument values as decoded by mapid from the wire (see the descriptor letters below). */
struct mapi_arg {
    char type; /* 's','S','R','i','r','f','c','l','w' */
    union {
        const char *s; /* 's', 'S', 'R' (owned by mapid, valid for the instance's life) */
        int32_t i;     /* 'i', 'c'; 'r' holds mapid's flow id, 'f' the fid */
        uint64_t l;    /* 'l' */
        int fd;        /* 'w': a file descriptor opened by the client; the function owns it */
    } v;
};

struct mapi_fn_instance;
struct mapi_ref; /* opaque: a reference to another function or flow (see ref_open) */

/* Services mapid offers to functions (the function must not keep pointers across calls). */
struct mapi_host_api {
    /*
     * Appends the packet (as the function currently sees it) to the instance's TO_BUFFER
     * ring. Returns 1 if stored, 0 if dropped (live device, ring full). On trace files it
     * waits for room instead of dropping, and returns 0 only if the flow closes meanwhile.
     */
    int (*ring_put)(struct mapi_fn_instance *fi, const struct mapi_pkt *pkt);
    /* Logs a message through mapid's log (level: 0 error, 1 warning, 2 info, 3 debug). */
    void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    /*
     * References to other functions ('r' + 'f' arguments, "fid@fd" lists of 'S', flow lists
     * of 'R'). Call ref_open only from instance(). flow_id is mapid's flow id exactly as it
     * arrives in an 'r' argument or in a translated 'S'/'R' string (libmapi translates the
     * application's descriptors); fid is a function of that flow, or 0 for the flow itself.
     * mapid checks that the flow exists, belongs to the same user (root may name anyone's),
     * runs on the same device as fi, and is fi's own flow or one created before it; and that
     * fid exists in it (for fi's own flow: applied before fi). The handle is owned by mapid and
     * lives as long as fi (it keeps the referenced flow's memory alive, even after that flow
     * closes; its values then stop changing). Returns NULL with fi->errmsg set if refused.
     */
    struct mapi_ref *(*ref_open)(struct mapi_fn_instance *fi, int flow_id, int fid);
    /* Result size of the referenced function (known from apply time on; 0 for none). */
    uint32_t (*ref_size)(const struct mapi_ref *ref);
    /*
     * Copies min(len, size) bytes of the referenced result as it is now, consistent under its
     * seqlock; zeroes buf and returns 0 while the referenced flow has not connected (or, never
     * in practice, when no consistent copy could be taken within a bound of about 1 ms: mapid
     * never spins without a bound; it logs that once), else returns the result size. Call from
     * process(), tick() or flush() (capture thread), or from cleanup() (any thread: the seqlock
     * keeps the copy consistent, the memory is kept).
     */
    uint32_t (*ref_read)(const struct mapi_ref *ref, void *buf, uint32_t len);
    /* The referenced result's first 8 bytes as an unsigned 64-bit number (smaller results are
     * zero-extended little-endian values): the common case of counters. 0 before connect. */
    uint64_t (*ref_read_u64)(const struct mapi_ref *ref);
    /* Calls the referenced function's reset() (which wraps its change in the seqlock).
     * Returns 1 if it has one and ran, 0 otherwise. Capture thread only. */
    int (*ref_reset)(const struct mapi_ref *ref);
    /* enum mapi_flow_status of the referenced flow (FLOW_INIT before its connect). */
    int (*ref_flow_status)(const struct mapi_ref *ref);

    /*
     * MAPI_FN_QUEUE functions: appends one result record of len bytes (at most 65536), stamped
     * ts, to the instance's queue; mapi_read_results returns the records one by one in order.
     * Same delivery rules as ring_put: on trace files it waits for the application to read
     * (nothing is lost), on live devices a full queue drops the record and returns 0.
     */
    int (*queue_put)(struct mapi_fn_instance *fi, const void *rec, uint32_t len, uint64_t ts);

    /*
     * Packet-modifying functions (MAPI_FN_MODIFIES) that change the frame's length or headers:
     * decodes pkt again (flags, offsets, addresses, ports), so that the functions after this
     * one see the packet as it is now. pkt->data may hold up to MAPI_PKT_ROOM bytes: a
     * function may grow caplen (and wlen) up to that.
     */
    void (*redecode)(struct mapi_pkt *pkt);
    /* The value of a global setting of mapi.conf, or NULL if the key is unknown. Strings
     * (e.g. "anon_key_file", paths made absolute; "" if not set) are static storage, valid
     * while mapid runs; numbers (e.g. "regexp_match_limit", sizes in bytes) come in decimal in
     * per-thread storage, valid until the next call of conf_value on this thread: copy or
     * parse them at once (instance() is the place). */
    const char *(*conf_value)(const char *key);
    /*
     * Whether the owner of fi's flow may use the site's secret anonymisation key (mapi.conf's
     * anon_key_file): 1 for root and for members of the group anon_key_group (membership as
     * the group database says for the flow's uid, which mapid took from SO_PEERCRED), else 0.
     * Call it from instance() before reading the site key, and refuse with 7001.. (the key's
     * argument) and a message naming anon_key_group when it returns 0.
     */
    int (*may_use_site_key)(const struct mapi_fn_instance *fi);
};

/* Bytes a modifying function may use at pkt->data (its flow works on a private copy). */
#define MAPI_PKT_ROOM 262144u

/* Per-application-of-a-function state. Fields marked [host] are set by mapid. */
struct mapi_fn_instance {
    const struct mapi_fn_def *def;    /* [host] */
    const struct mapi_host_api *host; /* [host] */
    const struct mapi_arg *args;      /* [host] decoded arguments, nargs = strlen(def->argdescr) */
    int nargs;                        /* [host] */
    int fid;                          /* [host] function descriptor within the flow */
    int flow_id;                      /* [host] mapid's flow id */
    int dev_id;                       /* [host] device the flow runs on */
    int linktype;                     /* [host] DLT_* of the device */
    uint32_t snaplen;                 /* [host] capture length of the device */
    int offline;                      /* [host] 1 if the device is a trace file */
    void *result;                     /* [host, from init on] result_size bytes of shared memory */
    uint32_t *result_seq;             /* [host] seqlock word guarding result */
    uint32_t result_size;             /* [function, in instance()] bytes of result, 0 for none */
    uint32_t ring_size; /* [function, in instance()] bytes of TO_BUFFER ring wanted; 0 none.
                           Set to UINT32_MAX to take mapi.conf's buffer_size. */
    void *priv;         /* [function] private state */
    char errmsg[256];   /* [function] detail for an error returned by instance or init */
};

/* Flags of a function definition. */
#define MAPI_FN_FILTERS 0x1u  /* may return 0 for packets it drops */
#define MAPI_FN_MODIFIES 0x2u /* writes into pkt->data: its flow works on a private copy */
#define MAPI_FN_RING 0x4u /* delivers packets through a ring (TO_BUFFER), read by get_next_pkt */
/* Deterministic, and every bit of state that depends on the packets seen lives in `result`
 * (none in priv): flows of a device that apply the same chain of such functions with the same
 * arguments, and started on the same packet, share one execution (mapid copies the results). */
#define MAPI_FN_SHAREABLE 0x8u
/* Reads only data, caplen, wlen, ts, seq, ifindex and linktype of struct mapi_pkt, never the
 * decoded fields: when every function of every flow of a device says so, mapid skips decoding. */
#define MAPI_FN_RAW 0x10u
/* Delivers its results as a queue of records (BUCKET, HASHSAMP, THRESHOLD): mapi_read_results
 * returns the next record per call, waiting for one, and NULL (error 6158) once the flow has
 * finished and the queue is empty. Set fi->ring_size in instance() to the bytes wanted
 * (each record costs its length + 28 bytes, rounded up to 8; at least 64 KiB are made);
 * UINT32_MAX takes mapi.conf's buffer_size; 0 means no queue (mapi_read_results: 6146). */
#define MAPI_FN_QUEUE 0x20u

struct mapi_fn_def {
    const char *name; /* upper case, e.g. "BPF_FILTER" */
    /* One letter per argument: s string; S "fid@fd,fid@fd" function list; R "fd,fd" flow list;
     * i int; r flow (an fd); f function (a fid); c char; l unsigned 64-bit; w file to write
     * (the application opens it). In 'r', 'S' and 'R' the application's flow descriptors
     * arrive translated to mapid's flow ids. */
    const char *argdescr;
    const char *descr; /* one line for humans */
    uint32_t flags;    /* MAPI_FN_* */
    int (*instance)(struct mapi_fn_instance *fi);
    int (*init)(struct mapi_fn_instance *fi);
    int (*process)(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
    void (*reset)(struct mapi_fn_instance *fi);
    void (*cleanup)(struct mapi_fn_instance *fi);
    /*
     * Optional, for periodic functions (BUCKET, STATS, RES2FILE, THRESHOLD polling): called on
     * the capture thread with the timestamp of every packet offered to the flow, BEFORE any
     * function of any flow of the device processes that packet, whatever the filters of the
     * flow. So a function that closes an interval in tick() reads referenced values that hold
     * exactly the packets before this one.
     */
    void (*tick)(struct mapi_fn_instance *fi, uint64_t ts);
    /* Optional: the trace has ended (trace files only): emit what remains (the last, partial
     * interval). Called on the capture thread before the flow is marked finished. */
    void (*flush)(struct mapi_fn_instance *fi);
};

struct mapi_flib {
    uint32_t abi_version; /* MAPI_FLIB_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct mapi_flib) */
    const char *name;     /* "stdflib" */
    const char *descr;
    const struct mapi_fn_def *functions; /* terminated by an entry with name == NULL */
};

typedef const struct mapi_flib *(*mapi_flib_entry_fn)(void);
#define MAPI_FLIB_ENTRY_SYMBOL "mapi_flib_entry"

/* Seqlock writer side: readers retry while the word is odd or changed. */
static inline void mapi_result_write_begin(struct mapi_fn_instance *fi)
{
    uint32_t s = __atomic_load_n(fi->result_seq, __ATOMIC_RELAXED);
    __atomic_store_n(fi->result_seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void mapi_result_write_end(struct mapi_fn_instance *fi)
{
    uint32_t s = __atomic_load_n(fi->result_seq, __ATOMIC_RELAXED);
    __atomic_store_n(fi->result_seq, s + 1, __ATOMIC_RELEASE);
}

#ifdef __cplusplus
}
#endif
#endif /* MAPI_FLIB_H */
