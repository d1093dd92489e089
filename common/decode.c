/*
 * common/decode.c - the packet decoder of mapid (interface in common/decode.h).
 *
 * The capture thread calls mapi_decode() once per packet, right after the driver filled
 * data/caplen/wlen/ts/linktype; every function of every flow then reads the metadata instead
 * of parsing headers again. The code is one straight function (a switch on the link type,
 * a switch on the ethertype, IPv4/IPv6, the transport header) with no allocation and no
 * indirect calls, since it runs at millions of packets per second.
 *
 * Contract of the result (stronger than decode.h, which other parts may rely on):
 *   - MAPI_PKT_IPV4/IPV6 and l3_off are set only when the fixed IP header (20 or 40 bytes)
 *     lies inside caplen; src/dst are then filled (IPv4 in the first 4 bytes, rest zero).
 *   - l4proto is the transport protocol as named by the IP header (after IPv6 extension
 *     headers); it is also set for non-first fragments (MAPI_PKT_FRAGMENT) and when the
 *     transport header is cut short, in which cases MAPI_PKT_L4 is not set.
 *   - MAPI_PKT_L4 and l4_off: TCP when its 20 fixed bytes are captured, UDP/UDP-Lite/ICMP/
 *     ICMPv6 with 8 bytes, SCTP with 12; any other protocol (GRE, ESP, IPv6 mobility, ...)
 *     when at least one byte of it is captured (ports 0, payload_off absent). IPv6 "no next
 *     header" (59) has no L4.
 *   - payload_off (TCP/UDP/UDP-Lite/SCTP/ICMP/ICMPv6) may equal caplen: no payload captured.
 *   - MAPI_PKT_TRUNCATED: a header the decoder wanted was cut short by caplen; offsets of
 *     what follows stay MAPI_OFF_NONE.
 *   - ethertype is the innermost ethertype after VLAN tags; behind MPLS or PPPoE it is the
 *     ethertype of the IP version found (0x0800/0x86dd), else 0x8847/0x8848/0x8864; for PPP
 *     the ethertype matching the PPP protocol (IPv4, IPv6, MPLS). 0 for 802.3 frames without
 *     SNAP and for link types without one (raw IP, null, loop).
 *   - DLT_PPP/DLT_PPP_SERIAL (address/control ff 03 optional) and DLT_C_HDLC are decoded too.
 *   - Headers starting beyond 65534 bytes into the frame are treated as not captured, since
 *     offsets are 16 bits.
 */
#include "common/decode.h"

#include <string.h>

/* Link types (libpcap DLT_* and LINKTYPE_* values). */
enum {
    LT_NULL = 0,
    LT_EN10MB = 1,
    LT_PPP = 9,
    LT_RAW = 12,     /* DLT_RAW on most systems */
    LT_RAW_BSD = 14, /* DLT_RAW on OpenBSD */
    LT_PPP_SERIAL = 50,
    LT_RAW_LT = 101, /* LINKTYPE_RAW as written in files */
    LT_C_HDLC = 104,
    LT_LOOP = 108,
    LT_LINUX_SLL = 113,
    LT_IPV4 = 228,
    LT_IPV6 = 229,
    LT_LINUX_SLL2 = 276,
};

#define ET_IPV4 0x0800u
#define ET_IPV6 0x86ddu
#define ET_VLAN 0x8100u
#define ET_QINQ 0x88a8u
#define ET_QINQ_OLD 0x9100u
#define ET_MPLS_UC 0x8847u
#define ET_MPLS_MC 0x8848u
#define ET_PPPOE_SESS 0x8864u

#define OFF_LIMIT 0xfffeu /* largest offset representable in the 16-bit fields */

static inline uint32_t rd16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

void mapi_decode(struct mapi_pkt *pkt)
{
    const uint8_t *d = pkt->data;
    const uint32_t len = pkt->caplen < OFF_LIMIT ? pkt->caplen : OFF_LIMIT;
    const uint8_t *ip;
    uint32_t off = 0, et = 0, fam, proto, vc = 0;
    uint16_t flags = 0;

    pkt->ethertype = 0;
    pkt->l3_off = MAPI_OFF_NONE;
    pkt->l4_off = MAPI_OFF_NONE;
    pkt->payload_off = MAPI_OFF_NONE;
    pkt->l4proto = 0;
    pkt->vlan_count = 0;
    pkt->vlan_id[0] = 0;
    pkt->vlan_id[1] = 0;
    pkt->sport = 0;
    pkt->dport = 0;
    memset(pkt->src, 0, sizeof pkt->src);
    memset(pkt->dst, 0, sizeof pkt->dst);

    /* ---- link layer ---- */
    switch (pkt->linktype) {
    case LT_EN10MB:
        if (len < 14)
            goto truncated;
        et = rd16(d + 12);
        off = 14;
        if (et < 0x0600) { /* 802.3 length field: only LLC/SNAP carries an ethertype */
            if (len < 17)
                goto truncated;
            if (d[14] != 0xaa || d[15] != 0xaa || d[16] != 0x03)
                goto done;
            if (len < 22)
                goto truncated;
            et = rd16(d + 20);
            off = 22;
        }
        goto ether;
    case LT_LINUX_SLL:
        if (len < 16)
            goto truncated;
        et = rd16(d + 14);
        off = 16;
        goto ether;
    case LT_LINUX_SLL2:
        if (len < 20)
            goto truncated;
        et = rd16(d);
        off = 20;
        goto ether;
    case LT_RAW:
    case LT_RAW_BSD:
    case LT_RAW_LT:
        goto guess_ip;
    case LT_IPV4:
        goto ipv4;
    case LT_IPV6:
        goto ipv6;
    case LT_NULL: /* family in the byte order of the writer: the non-zero half tells which */
        if (len < 4)
            goto truncated;
        if (d[0] | d[1])
            fam = d[0] | ((uint32_t)d[1] << 8);
        else
            fam = d[3] | ((uint32_t)d[2] << 8);
        off = 4;
        goto family;
    case LT_LOOP:
        if (len < 4)
            goto truncated;
        fam = d[3] | ((uint32_t)d[2] << 8) | ((uint32_t)(d[0] | d[1]) << 16);
        off = 4;
        goto family;
    case LT_C_HDLC: /* address, control, ethertype */
        if (len < 4)
            goto truncated;
        et = rd16(d + 2);
        off = 4;
        goto ether;
    case LT_PPP:
    case LT_PPP_SERIAL:
        if (len >= 2 && d[0] == 0xff && d[1] == 0x03)
            off = 2;
        if (off + 2 > len)
            goto truncated;
        proto = rd16(d + off);
        off += 2;
        if (proto == 0x0021) {
            pkt->ethertype = ET_IPV4;
            goto ipv4;
        }
        if (proto == 0x0057) {
            pkt->ethertype = ET_IPV6;
            goto ipv6;
        }
        if (proto == 0x0281 || proto == 0x0283) {
            et = proto == 0x0281 ? ET_MPLS_UC : ET_MPLS_MC;
            pkt->ethertype = (uint16_t)et;
            goto mpls;
        }
        goto done;
    default:
        goto done;
    }

family:
    if (fam == 2)
        goto ipv4;
    if (fam == 10 || fam == 24 || fam == 28 || fam == 30)
        goto ipv6;
    goto done;

ether:
    while (et == ET_VLAN || et == ET_QINQ || et == ET_QINQ_OLD) {
        flags |= MAPI_PKT_VLAN;
        if (off + 4 > len)
            goto truncated;
        if (vc < 2)
            pkt->vlan_id[vc] = (uint16_t)(rd16(d + off) & 0x0fff);
        if (vc < 255)
            vc++;
        et = rd16(d + off + 2);
        off += 4;
    }
    pkt->ethertype = (uint16_t)et;
    switch (et) {
    case ET_IPV4:
        goto ipv4;
    case ET_IPV6:
        goto ipv6;
    case ET_MPLS_UC:
    case ET_MPLS_MC:
        goto mpls;
    case ET_PPPOE_SESS:
        if (off + 8 > len)
            goto truncated;
        proto = rd16(d + off + 6);
        off += 8;
        if (proto == 0x0021) {
            pkt->ethertype = ET_IPV4;
            goto ipv4;
        }
        if (proto == 0x0057) {
            pkt->ethertype = ET_IPV6;
            goto ipv6;
        }
        goto done;
    default:
        goto done;
    }

mpls:
    flags |= MAPI_PKT_MPLS;
    for (;;) {
        if (off + 4 > len)
            goto truncated;
        off += 4;
        if (d[off - 2] & 0x01) /* bottom of stack */
            break;
    }
    if (off >= len)
        goto truncated;
    if ((d[off] >> 4) == 4) {
        pkt->ethertype = ET_IPV4;
        goto ipv4;
    }
    if ((d[off] >> 4) == 6) {
        pkt->ethertype = ET_IPV6;
        goto ipv6;
    }
    goto done;

guess_ip:
    if (off >= len)
        goto truncated;
    if ((d[off] >> 4) == 6)
        goto ipv6;
    if ((d[off] >> 4) != 4)
        goto done;
    /* fall through */

ipv4:
    if (off + 20 > len)
        goto truncated;
    ip = d + off;
    if ((ip[0] >> 4) != 4 || (ip[0] & 0x0f) < 5)
        goto done;
    flags |= MAPI_PKT_IPV4;
    pkt->l3_off = (uint16_t)off;
    memcpy(pkt->src, ip + 12, 4);
    memcpy(pkt->dst, ip + 16, 4);
    proto = ip[9];
    pkt->l4proto = (uint8_t)proto;
    if (rd16(ip + 6) & 0x1fff) {
        flags |= MAPI_PKT_FRAGMENT;
        goto done;
    }
    off += (uint32_t)(ip[0] & 0x0f) * 4;
    goto transport;

ipv6:
    if (off + 40 > len)
        goto truncated;
    ip = d + off;
    if ((ip[0] >> 4) != 6)
        goto done;
    flags |= MAPI_PKT_IPV6;
    pkt->l3_off = (uint16_t)off;
    memcpy(pkt->src, ip + 8, 16);
    memcpy(pkt->dst, ip + 24, 16);
    proto = ip[6];
    off += 40;
    /* Extension headers: every step consumes at least 8 bytes, and off + 2 <= len is checked
     * before each, so the walk ends. */
    for (;;) {
        if (proto == 0 || proto == 43 || proto == 60) { /* hop-by-hop, routing, dst opts */
            if (off + 2 > len)
                goto truncated;
            proto = d[off];
            off += ((uint32_t)d[off + 1] + 1) * 8;
        } else if (proto == 51) { /* AH: length in 4-byte units, minus 2 */
            if (off + 2 > len)
                goto truncated;
            proto = d[off];
            off += ((uint32_t)d[off + 1] + 2) * 4;
        } else if (proto == 44) { /* fragment */
            if (off + 8 > len)
                goto truncated;
            proto = d[off];
            if (rd16(d + off + 2) & 0xfff8) {
                pkt->l4proto = (uint8_t)proto;
                flags |= MAPI_PKT_FRAGMENT;
                goto done;
            }
            off += 8;
        } else {
            break; /* transport, ESP, mobility (135), no next header (59), ... */
        }
    }
    pkt->l4proto = (uint8_t)proto;
    if (proto == 59)
        goto done;
    goto transport;

transport:
    /* proto is the transport protocol, off its header. */
    switch (proto) {
    case 6: /* TCP */
        if (off + 20 > len)
            goto truncated;
        pkt->l4_off = (uint16_t)off;
        flags |= MAPI_PKT_L4;
        pkt->sport = (uint16_t)rd16(d + off);
        pkt->dport = (uint16_t)rd16(d + off + 2);
        {
            uint32_t doff = (uint32_t)(d[off + 12] >> 4) * 4;
            if (doff < 20)
                goto done; /* malformed: no payload offset */
            if (off + doff > len)
                goto truncated;
            pkt->payload_off = (uint16_t)(off + doff);
        }
        goto done;
    case 17:  /* UDP */
    case 136: /* UDP-Lite */
    case 132: /* SCTP: common header of 12 bytes */
        if (off + (proto == 132 ? 12u : 8u) > len)
            goto truncated;
        pkt->l4_off = (uint16_t)off;
        flags |= MAPI_PKT_L4;
        pkt->sport = (uint16_t)rd16(d + off);
        pkt->dport = (uint16_t)rd16(d + off + 2);
        pkt->payload_off = (uint16_t)(off + (proto == 132 ? 12u : 8u));
        goto done;
    case 1:  /* ICMP */
    case 58: /* ICMPv6 */
        if (off + 8 > len)
            goto truncated;
        pkt->l4_off = (uint16_t)off;
        flags |= MAPI_PKT_L4;
        pkt->payload_off = (uint16_t)(off + 8);
        goto done;
    default:
        if (off < len) {
            pkt->l4_off = (uint16_t)off;
            flags |= MAPI_PKT_L4;
            goto done;
        }
        goto truncated; /* not one byte of it captured */
    }

truncated:
    flags |= MAPI_PKT_TRUNCATED;
done:
    pkt->flags = flags;
    pkt->vlan_count = (uint8_t)vc;
}
