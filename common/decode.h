/*
 * common/decode.h - the packet decoder: parses a captured frame once (link layer, VLAN/QinQ,
 * MPLS, IPv4/IPv6 with extension headers, TCP/UDP/SCTP/ICMP) and fills the metadata of
 * struct mapi_pkt that every function of every flow then uses. Never reads past caplen.
 */
#ifndef MAPI_COMMON_DECODE_H
#define MAPI_COMMON_DECODE_H

#include "mapi/flib.h"

/*
 * Decodes pkt->data[0..caplen) according to pkt->linktype (DLT_EN10MB, DLT_LINUX_SLL,
 * DLT_LINUX_SLL2, DLT_RAW, LINKTYPE_IPV4/IPV6, DLT_NULL, DLT_LOOP, ...). Fills flags,
 * ethertype, l3_off, l4_off, payload_off, l4proto, vlan_count/vlan_id, sport/dport and
 * src/dst; fields that do not apply are MAPI_OFF_NONE or 0. Leaves data, caplen, wlen,
 * ts, seq, ifindex and linktype untouched.
 */
void mapi_decode(struct mapi_pkt *pkt);

/* 32.32 fixed-point timestamps from seconds plus micro- or nanoseconds. */
static inline uint64_t mapi_ts_from_usec(uint64_t sec, uint32_t usec)
{
    return (sec << 32) + (((uint64_t)usec << 32) / 1000000u);
}
static inline uint64_t mapi_ts_from_nsec(uint64_t sec, uint32_t nsec)
{
    return (sec << 32) + (((uint64_t)nsec << 32) / 1000000000u);
}

#endif /* MAPI_COMMON_DECODE_H */
