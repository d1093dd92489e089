/*
 * drivers/driver.h - the capture driver interface of mapid: a vtable per kind of packet
 * source (live NIC through libpcap, pcap/pcapng trace files, ERF trace files).
 *
 * mapid runs one capture thread per device. The thread calls next_batch() in a loop, runs
 * the packet decoder (common/decode.h) once per packet, and hands each packet to every flow
 * of the device. A driver fills only data, caplen, wlen, ts, ifindex and linktype of each
 * struct mapi_pkt; the decoder fills the rest.
 */
#ifndef MAPI_DRIVERS_DRIVER_H
#define MAPI_DRIVERS_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "mapi/flib.h"

#define CAPTURE_EOF (-1)
#define CAPTURE_ERROR (-2)

struct capture_source; /* private to each driver */

struct capture_params {
    const char *device;  /* interface name (live) or a name for messages (trace files) */
    int fd;              /* trace files: descriptor opened by the client; the driver owns it */
    int format;          /* trace files: MFF_PCAP (pcap, nanosecond pcap, pcapng) or MFF_DAG_ERF */
    int promisc;         /* live: promiscuous mode */
    uint32_t snaplen;    /* live: bytes captured per packet (default 65535) */
    uint32_t ring_bytes; /* live: kernel ring (TPACKET_V3) size in bytes, 0 = driver default */
};

struct capture_driver_ops {
    const char *name; /* "pcap-live", "pcap-file", "erf-file" */
    /*
     * Opens the source. Returns a new source (free with close) or NULL with a message in
     * errbuf and a MAPI error number in *err (3203 bad trace, 1026 pcap open error, ...).
     * Trace files: the driver owns params->fd from the call on, also when it fails.
     */
    struct capture_source *(*open)(const struct capture_params *params, char *errbuf, size_t errlen,
                                   int *err);
    /*
     * Fills up to max packets. Packet data stays valid until the next call of next_batch or
     * close. Returns the number of packets (> 0); 0 when a live source had nothing within
     * timeout_ms; CAPTURE_EOF at the end of a trace (also after a truncated or corrupt
     * record: the message is then in error()); CAPTURE_ERROR on a failure.
     */
    int (*next_batch)(struct capture_source *src, struct mapi_pkt *pkts, int max, int timeout_ms);
    /* Link type (DLT_*) and capture length, known once open succeeded. */
    int (*linktype)(const struct capture_source *src);
    uint32_t (*snaplen)(const struct capture_source *src);
    /* Counters since open: packets received and dropped by the kernel/interface. 0 or -1. */
    int (*stats)(struct capture_source *src, uint64_t *recv, uint64_t *ifdrop);
    /* Last error or warning text ("" if none); owned by the source. */
    const char *(*error)(const struct capture_source *src);
    void (*close)(struct capture_source *src);
};

extern const struct capture_driver_ops capture_pcap_live;
extern const struct capture_driver_ops capture_pcap_file; /* pcap (us and ns) and pcapng */
extern const struct capture_driver_ops capture_erf_file;

#endif /* MAPI_DRIVERS_DRIVER_H */
