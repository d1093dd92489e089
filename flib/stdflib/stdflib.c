/*
 * flib/stdflib/stdflib.c - entry point of stdflib, MAPI's standard function library.
 *
 * mapid dlopens stdflib.so from libpath, calls the one exported symbol, mapi_flib_entry(),
 * checks abi_version and struct_size, and looks functions up by name in the table below.
 * Each function lives in its own file (bpf_filter.c, counters.c, ..., named after it);
 * timestr.c parses time strings and "fid@fd" lists; shared.c holds the registry that lets identical
 * filters on one device share their per-packet work. This file only assembles the table.
 *
 * Host conventions beyond mapi/flib.h that these functions rely on:
 *   - pkt->seq is per device, starts at 1, increases, and is not reused while instances of
 *     the device exist; a flow working on a private copy of the packet presents it through
 *     its own data pointer (the shared verdict cache is keyed by seq, data and caplen);
 *   - process() of all instances of one device runs on that device's single capture thread;
 *   - for a MAPI_FN_RING function (TO_BUFFER) args[0].v.i is the WAIT (0) / NOWAIT (1) flag.
 */
#include <stddef.h>

#include "stdflib.h"

static const struct mapi_fn_def stdflib_functions[] = {
    {
        .name = "BPF_FILTER",
        .argdescr = "s",
        .descr = "Keeps the packets that match a tcpdump-syntax BPF filter expression",
        .flags = MAPI_FN_FILTERS | MAPI_FN_SHAREABLE | MAPI_FN_RAW,
        .instance = stdflib_bpf_instance,
        .process = stdflib_bpf_process,
        .cleanup = stdflib_bpf_cleanup,
    },
    {
        .name = "PKT_COUNTER",
        .argdescr = "",
        .descr = "Counts the packets (result: unsigned long long)",
        .flags = MAPI_FN_SHAREABLE | MAPI_FN_RAW,
        .instance = stdflib_counter_instance,
        .process = stdflib_pkt_counter_process,
        .reset = stdflib_counter_reset,
    },
    {
        .name = "BYTE_COUNTER",
        .argdescr = "",
        .descr = "Counts the bytes of the packets on the wire (result: unsigned long long)",
        .flags = MAPI_FN_SHAREABLE | MAPI_FN_RAW,
        .instance = stdflib_counter_instance,
        .process = stdflib_byte_counter_process,
        .reset = stdflib_counter_reset,
    },
    {
        .name = "STR_SEARCH",
        .argdescr = "sii",
        .descr = "Keeps the packets containing a Snort-style pattern between offset and "
                 "offset+depth of the frame",
        .flags = MAPI_FN_FILTERS | MAPI_FN_SHAREABLE | MAPI_FN_RAW,
        .instance = stdflib_str_search_instance,
        .process = stdflib_str_search_process,
        .cleanup = stdflib_str_search_cleanup,
    },
    {
        .name = "SAMPLE",
        .argdescr = "ii",
        .descr = "Keeps every value-th packet (PERIODIC) or value percent at random "
                 "(PROBABILISTIC)",
        .flags = MAPI_FN_FILTERS | MAPI_FN_RAW,
        .instance = stdflib_sample_instance,
        .process = stdflib_sample_process,
        .cleanup = stdflib_sample_cleanup,
    },
    {
        .name = "TO_BUFFER",
        .argdescr = "i",
        .descr = "Stores the packets for mapi_get_next_pkt (flag WAIT or NOWAIT)",
        .flags = MAPI_FN_RING | MAPI_FN_RAW,
        .instance = stdflib_to_buffer_instance,
        .process = stdflib_to_buffer_process,
    },
    {
        .name = "TO_FILE",
        .argdescr = "iwl",
        .descr = "Writes the packets to a pcap or pcapng file (format MFF_PCAP, MFF_RAW or "
                 "MFF_PCAPNG, | MFF_OVERWRITE; file; count, 0 = all)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_to_file_instance,
        .init = stdflib_to_file_init,
        .process = stdflib_to_file_process,
        .cleanup = stdflib_to_file_cleanup,
        .flush = stdflib_to_file_flush,
    },
    {
        .name = "PKTINFO",
        .argdescr = "i",
        .descr = "Publishes the timestamp (PKT_TS) or wire length (PKT_SIZE) of the last packet "
                 "(result: unsigned long long)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_pktinfo_instance,
        .process = stdflib_pktinfo_process,
    },
    {
        .name = "GAP",
        .argdescr = "",
        .descr = "Publishes the 32.32 time since the previous packet (result: unsigned long long)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_gap_instance,
        .process = stdflib_gap_process,
        .cleanup = stdflib_gap_cleanup,
    },
    {
        .name = "HASH",
        .argdescr = "i",
        .descr = "Publishes an additive hash of layer 0..3 of the last packet (result: unsigned "
                 "int)",
        .flags = 0,
        .instance = stdflib_hash_instance,
        .process = stdflib_hash_process,
    },
    {
        .name = "STARTSTOP",
        .argdescr = "ss",
        .descr = "Keeps the packets of a time window (relative \"+10s\" or absolute "
                 "\"%Y-%m-%d %H:%M:%S\" times)",
        .flags = MAPI_FN_FILTERS | MAPI_FN_RAW,
        .instance = stdflib_startstop_instance,
        .process = stdflib_startstop_process,
        .cleanup = stdflib_startstop_cleanup,
    },
    {
        .name = "HASHSAMP",
        .argdescr = "ii",
        .descr = "Keeps the TCP/UDP packets whose 5-tuple hash (0..1023) is below range; keep != 0 "
                 "queues a struct sample per packet kept",
        .flags = MAPI_FN_FILTERS | MAPI_FN_QUEUE,
        .instance = stdflib_hashsamp_instance,
        .process = stdflib_hashsamp_process,
        .cleanup = stdflib_hashsamp_cleanup,
    },
    {
        .name = "BUCKET",
        .argdescr = "rfsi",
        .descr = "Queues the value of another function at the end of every interval of packet time "
                 "(struct bucket_data)",
        .flags = MAPI_FN_QUEUE | MAPI_FN_RAW,
        .instance = stdflib_bucket_instance,
        .process = stdflib_bucket_process,
        .cleanup = stdflib_bucket_cleanup,
        .tick = stdflib_bucket_tick,
        .flush = stdflib_bucket_flush,
    },
    {
        .name = "THRESHOLD",
        .argdescr = "irfiliiii",
        .descr = "Queues an event when another function's value (or its change) crosses a "
                 "threshold",
        .flags = MAPI_FN_QUEUE | MAPI_FN_RAW,
        .instance = stdflib_threshold_instance,
        .process = stdflib_threshold_process,
        .cleanup = stdflib_threshold_cleanup,
        .tick = stdflib_threshold_tick,
    },
    {
        .name = "BINOP",
        .argdescr = "irfrf",
        .descr = "Adds (BINOP_ADD) or subtracts (BINOP_SUB) the values of two other functions "
                 "(result: unsigned long long)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_binop_instance,
        .process = stdflib_binop_process,
        .reset = stdflib_binop_reset,
        .cleanup = stdflib_binop_cleanup,
    },
    {
        .name = "DIST",
        .argdescr = "rfsss",
        .descr = "Histogram of another function's value between min and max in steps of interval "
                 "(dist_t)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_dist_instance,
        .init = stdflib_dist_init,
        .process = stdflib_dist_process,
        .reset = stdflib_dist_reset,
        .cleanup = stdflib_dist_cleanup,
    },
    {
        .name = "RES2FILE",
        .argdescr = "sSswsi",
        .descr = "Writes the results of other functions to a text file, per packet, per interval "
                 "or at close",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_res2file_instance,
        .init = stdflib_res2file_init,
        .process = stdflib_res2file_process,
        .cleanup = stdflib_res2file_cleanup,
        .tick = stdflib_res2file_tick,
        .flush = stdflib_res2file_flush,
    },
    {
        .name = "STATS",
        .argdescr = "rfs",
        .descr = "Count, sum, sum of squares, min and max of another function's value (stats_t)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_stats_instance,
        .process = stdflib_stats_process,
        .reset = stdflib_stats_reset,
        .cleanup = stdflib_stats_cleanup,
        .tick = stdflib_stats_tick,
        .flush = stdflib_stats_flush,
    },
    {
        .name = "BURST",
        .argdescr = "iiiiiii",
        .descr = "Histogram of bursts of back-to-back packets at link speed (burst_category_t[])",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_burst_instance,
        .process = stdflib_burst_process,
        .reset = stdflib_burst_reset,
        .cleanup = stdflib_burst_cleanup,
        .flush = stdflib_burst_flush,
    },
    {
        .name = "SYNC",
        .argdescr = "R",
        .descr = "Drops packets until every listed flow (\"fd1,fd2\") is connected, so that they "
                 "start on the same packet",
        .flags = MAPI_FN_FILTERS | MAPI_FN_RAW,
        .instance = stdflib_sync_instance,
        .process = stdflib_sync_process,
        .cleanup = stdflib_sync_cleanup,
    },
    {.name = NULL},
};

static const struct mapi_flib stdflib = {
    .abi_version = MAPI_FLIB_ABI_VERSION,
    .struct_size = sizeof(struct mapi_flib),
    .name = "stdflib",
    .descr = "MAPI standard function library: filters, counters, sampling, packet delivery",
    .functions = stdflib_functions,
};

/* The library's descriptor (static storage, never freed). */
__attribute__((visibility("default"))) const struct mapi_flib *mapi_flib_entry(void);

const struct mapi_flib *mapi_flib_entry(void)
{
    return &stdflib;
}
