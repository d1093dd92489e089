/*
 * flib/stdflib/stdflib.h - internal header of stdflib, the standard function library.
 *
 * Not installed. Every file of the library implements one function (or a small group) and
 * exposes its callbacks here; stdflib.c puts them into the function table that
 * mapi_flib_entry() returns. All names declared here are hidden (STDFLIB_HIDDEN), so the
 * only symbol the .so exports is mapi_flib_entry.
 *
 * It also declares the shared-evaluation registry (shared.c) that lets identical filters
 * (BPF_FILTER, STR_SEARCH) on flows of the same device cost one evaluation per packet.
 */
#ifndef STDFLIB_STDFLIB_H
#define STDFLIB_STDFLIB_H

#include <stddef.h>
#include <stdint.h>

#include "mapi/errors.h"
#include "mapi/flib.h"

#define STDFLIB_HIDDEN __attribute__((visibility("hidden")))

/*
 * Shared evaluations.
 *
 * A filter whose verdict depends only on its arguments and on the packet can be shared by
 * every instance with the same arguments on the same device: the first instance evaluates
 * the packet, the others read the cached verdict. An entry is keyed by (kind, dev_id,
 * linktype, snaplen, key bytes) and reference counted. The registry itself is protected by a
 * mutex and touched only from instance() and cleanup(); the per-packet cache in an entry is
 * touched only from process(), which for one device always runs on that device's single
 * capture thread, so it needs no lock.
 *
 * The cached verdict is keyed by (pkt->seq, pkt->data, pkt->caplen): a flow that works on a
 * private copy of the packet (because a function of it modifies packets) presents another
 * data pointer and is evaluated on its own bytes. This relies on two host conventions:
 * pkt->seq increases per device and is never reused while instances of the device exist,
 * and two different packet contents are never presented with the same seq and data pointer.
 */
enum stdflib_shared_kind {
    STDFLIB_SHARED_BPF = 1,
    STDFLIB_SHARED_STR_SEARCH = 2,
};

struct stdflib_shared {
    /* Per-packet cache: written and read by the device's capture thread only. */
    uint64_t seq;        /* packet number of the cached verdict; 0 = nothing cached */
    const uint8_t *data; /* frame the verdict was computed on */
    uint32_t caplen;
    int verdict;
    uint64_t evaluations; /* number of real evaluations (for statistics and tests) */

    void *obj;                  /* compiled program or search state, owned by the entry */
    void (*destroy)(void *obj); /* frees obj */

    /* Registry bookkeeping, under the registry mutex. */
    int kind;
    int dev_id;
    int linktype;
    uint32_t snaplen;
    unsigned refcount;
    size_t keylen;
    struct stdflib_shared *next;
    unsigned char key[]; /* keylen bytes */
};

/*
 * Builds the shared object for a new entry from the instance's arguments. Returns 0 and sets
 * *obj, or a MAPI error number (with fi->errmsg filled if useful).
 */
typedef int (*stdflib_shared_build_fn)(struct mapi_fn_instance *fi, void **obj);

/*
 * Finds the entry (kind, fi->dev_id, fi->linktype, fi->snaplen, key) and takes a reference,
 * or creates it by calling build (under the registry lock, so two flows never compile the
 * same thing twice). Returns 0 and sets *out, or the error of build, or
 * MAPID_MEM_ALLOCATION_ERROR.
 */
STDFLIB_HIDDEN int stdflib_shared_get(struct mapi_fn_instance *fi, int kind, const void *key,
                                      size_t keylen, stdflib_shared_build_fn build,
                                      void (*destroy)(void *obj), struct stdflib_shared **out);

/* Drops a reference; the last one unlinks the entry and destroys its object. NULL is ignored. */
STDFLIB_HIDDEN void stdflib_shared_put(struct stdflib_shared *sh);

/* The cached verdict for this packet, or -1 if the entry has none for it. */
static inline int stdflib_shared_cached(const struct stdflib_shared *sh, const struct mapi_pkt *pkt)
{
    if (sh->seq == pkt->seq && sh->data == pkt->data && sh->caplen == pkt->caplen)
        return sh->verdict;
    return -1;
}

/* Records the verdict computed for this packet; returns it. */
static inline int stdflib_shared_store(struct stdflib_shared *sh, const struct mapi_pkt *pkt,
                                       int verdict)
{
    sh->seq = pkt->seq;
    sh->data = pkt->data;
    sh->caplen = pkt->caplen;
    sh->verdict = verdict;
    sh->evaluations++;
    return verdict;
}

/* Copies a message into fi->errmsg (truncated, always terminated). */
STDFLIB_HIDDEN void stdflib_errmsg(struct mapi_fn_instance *fi, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* BPF_FILTER (bpf_filter.c) */
STDFLIB_HIDDEN int stdflib_bpf_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_bpf_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_bpf_cleanup(struct mapi_fn_instance *fi);

/* PKT_COUNTER and BYTE_COUNTER (counters.c) */
STDFLIB_HIDDEN int stdflib_counter_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_pkt_counter_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN int stdflib_byte_counter_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_counter_reset(struct mapi_fn_instance *fi);

/* STR_SEARCH (str_search.c) */
STDFLIB_HIDDEN int stdflib_str_search_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_str_search_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_str_search_cleanup(struct mapi_fn_instance *fi);

/* SAMPLE (sample.c) */
STDFLIB_HIDDEN int stdflib_sample_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_sample_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_sample_cleanup(struct mapi_fn_instance *fi);

/* TO_BUFFER (to_buffer.c) */
STDFLIB_HIDDEN int stdflib_to_buffer_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_to_buffer_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);

/* TO_FILE (to_file.c) */
STDFLIB_HIDDEN int stdflib_to_file_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_to_file_init(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_to_file_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_to_file_cleanup(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_to_file_flush(struct mapi_fn_instance *fi);

/* PKTINFO (pktinfo.c) */
STDFLIB_HIDDEN int stdflib_pktinfo_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_pktinfo_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);

/* GAP (gap.c) */
STDFLIB_HIDDEN int stdflib_gap_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_gap_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_gap_cleanup(struct mapi_fn_instance *fi);

/* HASH (hash.c) */
STDFLIB_HIDDEN int stdflib_hash_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_hash_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);

/* STARTSTOP (startstop.c) */
STDFLIB_HIDDEN int stdflib_startstop_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_startstop_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_startstop_cleanup(struct mapi_fn_instance *fi);

/* Time strings and reference lists (timestr.c) */
#define STDFLIB_TICKS_PER_SECOND 4294967296.0L
/* "10s", "250ms", "100us", "5ns", "1.5m", "2h", or a bare number of seconds (no sign) into
 * 32.32 ticks. Returns 0, or -1 if malformed. */
STDFLIB_HIDDEN int stdflib_parse_duration(const char *s, uint64_t *ticks);
struct stdflib_fnref {
    int fid;
    int flow_id; /* mapid's flow id (libmapi translated the application's fd) */
};
/* Parses a translated 'S' list "fid@flow,fid@flow" (blanks allowed around items). Returns the
 * number of pairs (0 for an empty string), or -1 if malformed or longer than max. */
STDFLIB_HIDDEN int stdflib_parse_function_list(const char *s, struct stdflib_fnref *out, int max);
/* Parses "n,n,..." (blanks allowed around items) into out, each within lo..hi. Returns the
 * count, or -1 if empty, malformed, out of range or longer than max. */
STDFLIB_HIDDEN int stdflib_parse_int_list(const char *s, long lo, long hi, int *out, int max);

/* STATS (stats.c) */
STDFLIB_HIDDEN int stdflib_stats_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_stats_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_stats_tick(struct mapi_fn_instance *fi, uint64_t ts);
STDFLIB_HIDDEN void stdflib_stats_flush(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_stats_reset(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_stats_cleanup(struct mapi_fn_instance *fi);
/* For STATS, BINOP and DIST: opens the reference given by the 'r' argument at 1-based position
 * flow_pos and the 'f' argument after it, to a function with a result (read as a u64). Returns
 * 0 and sets *out, or the position error of the flow (MFUNCT_INVALID_ARGUMENT_1 + flow_pos - 1)
 * or of the fid (the next code) with fi->errmsg set. Call from instance(). */
STDFLIB_HIDDEN int stdflib_open_numeric_ref(struct mapi_fn_instance *fi, int flow_pos,
                                            const struct mapi_ref **out);

/* BINOP (binop.c) */
STDFLIB_HIDDEN int stdflib_binop_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_binop_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_binop_reset(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_binop_cleanup(struct mapi_fn_instance *fi);

/* DIST (dist.c) */
STDFLIB_HIDDEN int stdflib_dist_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_dist_init(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_dist_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_dist_reset(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_dist_cleanup(struct mapi_fn_instance *fi);

/* BUCKET (bucket.c) */
STDFLIB_HIDDEN int stdflib_bucket_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_bucket_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_bucket_tick(struct mapi_fn_instance *fi, uint64_t ts);
STDFLIB_HIDDEN void stdflib_bucket_flush(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_bucket_cleanup(struct mapi_fn_instance *fi);

/* RES2FILE (res2file.c) */
STDFLIB_HIDDEN int stdflib_res2file_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_res2file_init(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_res2file_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_res2file_tick(struct mapi_fn_instance *fi, uint64_t ts);
STDFLIB_HIDDEN void stdflib_res2file_flush(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_res2file_cleanup(struct mapi_fn_instance *fi);

/* HASHSAMP (hashsamp.c) */
STDFLIB_HIDDEN int stdflib_hashsamp_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_hashsamp_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_hashsamp_cleanup(struct mapi_fn_instance *fi);

/* BURST (burst.c) */
STDFLIB_HIDDEN int stdflib_burst_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_burst_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_burst_flush(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_burst_reset(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN void stdflib_burst_cleanup(struct mapi_fn_instance *fi);

/* THRESHOLD (threshold.c) */
STDFLIB_HIDDEN int stdflib_threshold_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_threshold_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_threshold_tick(struct mapi_fn_instance *fi, uint64_t ts);
STDFLIB_HIDDEN void stdflib_threshold_cleanup(struct mapi_fn_instance *fi);

/* SYNC (sync.c) */
STDFLIB_HIDDEN int stdflib_sync_instance(struct mapi_fn_instance *fi);
STDFLIB_HIDDEN int stdflib_sync_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
STDFLIB_HIDDEN void stdflib_sync_cleanup(struct mapi_fn_instance *fi);

#endif /* STDFLIB_STDFLIB_H */
