/*
 * flib/stdflib/stdflib.c - entry point of stdflib, MAPI's standard function library.
 *
 * mapid dlopens stdflib.so from libpath, calls the one exported symbol, mapi_flib_entry(),
 * checks abi_version and struct_size, and looks functions up by name in the table below.
 * Each function lives in its own file (bpf_filter.c, counters.c, str_search.c, sample.c,
 * to_buffer.c); shared.c holds the registry that lets identical filters on one device share
 * their per-packet work. This file only assembles the table.
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
        .descr = "Writes the packets to a pcap file (format MFF_PCAP or MFF_RAW, file, "
                 "count; 0 = all)",
        .flags = MAPI_FN_RAW,
        .instance = stdflib_to_file_instance,
        .init = stdflib_to_file_init,
        .process = stdflib_to_file_process,
        .cleanup = stdflib_to_file_cleanup,
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
