/*
 * tests/fuzz/decode_fuzz.c - libFuzzer target for the packet decoder (common/decode.c).
 *
 * Input: byte 0 picks the link type (a table below; the last entry takes bytes 1-2 as a raw
 * DLT value), byte 1 a cut length, the rest is the captured frame. The frame is decoded from
 * a block of exactly caplen bytes, so ASan sees any read past caplen.
 *
 * Properties (the contract at the top of decode.c), abort on a violation:
 *   - the driver's fields (data, caplen, wlen, ts, seq, ifindex, linktype) are untouched, and
 *     decoding is deterministic;
 *   - IPv4 and IPv6 exclusive; when set, the fixed IP header lies inside caplen, has that
 *     version, and src/dst are its addresses (IPv4 in the first 4 bytes, the rest zero); no IP
 *     means no l3_off, no L4, no ports;
 *   - MAPI_PKT_L4: l4_off after the fixed IP header and inside caplen; TCP 20, UDP/UDP-Lite/
 *     ICMP/ICMPv6 8, SCTP 12 bytes captured, ports equal to the header's; no L4 means no
 *     l4_off and no payload_off; a non-first fragment has no L4;
 *   - payload_off <= caplen, after the transport header (TCP: exactly data offset * 4);
 *   - VLAN flag when vlan_count > 0, and without a counted tag only when a tag was cut short;
 *   - prefix consistency: the frame cut to a shorter caplen never contradicts the full
 *     decode (what the cut decode finds - IP header, addresses, transport header, ports,
 *     ethertype - the full decode finds identically), and a cut that keeps the whole IP or
 *     transport header still finds it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/decode.h"
#include "mapi/flib.h"

static const uint16_t linktypes[] = {1,   1,   1, 1,   113, 276, 12,  101,
                                     228, 229, 0, 108, 9,   50,  104, 14};
#define NLT (sizeof linktypes / sizeof linktypes[0])
#define NONE MAPI_OFF_NONE

static void decode_exact(const uint8_t *frame, uint32_t caplen, uint16_t lt, struct mapi_pkt *p)
{
    uint8_t *copy = malloc(caplen ? caplen : 1);
    if (!copy)
        abort();
    memcpy(copy, frame, caplen);
    memset(p, 0, sizeof *p);
    p->data = copy;
    p->caplen = caplen;
    p->wlen = caplen + 7;
    p->ts = 0x1234567890abcdefull;
    p->seq = 42;
    p->ifindex = 3;
    p->linktype = lt;
    mapi_decode(p);
    if (p->data != copy || p->caplen != caplen || p->wlen != caplen + 7 ||
        p->ts != 0x1234567890abcdefull || p->seq != 42 || p->ifindex != 3 || p->linktype != lt)
        abort();
    struct mapi_pkt again;
    memset(&again, 0, sizeof again);
    again.data = copy;
    again.caplen = caplen;
    again.wlen = caplen + 7;
    again.ts = p->ts;
    again.seq = 42;
    again.ifindex = 3;
    again.linktype = lt;
    mapi_decode(&again);
    if (memcmp(&again, p, sizeof again) != 0)
        abort();
    free(copy);
    p->data = NULL; /* freed: the checks below read the caller's frame */
}

static unsigned be16(const uint8_t *b)
{
    return (unsigned)b[0] << 8 | b[1];
}

static unsigned l4_min(unsigned proto)
{
    switch (proto) {
    case 6:
        return 20;
    case 17:
    case 136:
    case 1:
    case 58:
        return 8;
    case 132:
        return 12;
    default:
        return 1;
    }
}

static void check_contract(const uint8_t *f, const struct mapi_pkt *p)
{
    const uint32_t cap = p->caplen;
    const int v4 = !!(p->flags & MAPI_PKT_IPV4), v6 = !!(p->flags & MAPI_PKT_IPV6);
    static const uint8_t zero[16];
    if (v4 && v6)
        abort();
    if (v4 || v6) {
        unsigned hl = v4 ? 20 : 40;
        if (p->l3_off == NONE || (uint32_t)p->l3_off + hl > cap)
            abort();
        const uint8_t *ip = f + p->l3_off;
        if ((ip[0] >> 4) != (v4 ? 4 : 6))
            abort();
        if (v4 && (memcmp(p->src, ip + 12, 4) != 0 || memcmp(p->dst, ip + 16, 4) != 0 ||
                   memcmp(p->src + 4, zero, 12) != 0 || memcmp(p->dst + 4, zero, 12) != 0))
            abort();
        if (v6 && (memcmp(p->src, ip + 8, 16) != 0 || memcmp(p->dst, ip + 24, 16) != 0))
            abort();
    } else if (p->l3_off != NONE || (p->flags & (MAPI_PKT_L4 | MAPI_PKT_FRAGMENT)) || p->sport ||
               p->dport) {
        abort();
    }
    if (p->flags & MAPI_PKT_L4) {
        if ((p->flags & MAPI_PKT_FRAGMENT) || p->l4_off == NONE)
            abort();
        if (p->l4_off < p->l3_off + (v4 ? 20u : 40u) ||
            (uint32_t)p->l4_off + l4_min(p->l4proto) > cap)
            abort();
        const uint8_t *l4 = f + p->l4_off;
        int ports = p->l4proto == 6 || p->l4proto == 17 || p->l4proto == 136 || p->l4proto == 132;
        if (ports && (p->sport != be16(l4) || p->dport != be16(l4 + 2)))
            abort();
        if (!ports && (p->sport || p->dport))
            abort();
        if (p->payload_off != NONE) {
            if (p->payload_off > cap || p->payload_off < p->l4_off + l4_min(p->l4proto))
                abort();
            if (p->l4proto == 6 && p->payload_off != p->l4_off + (l4[12] >> 4) * 4u)
                abort();
        }
    } else if (p->l4_off != NONE || p->payload_off != NONE) {
        abort();
    }
    /* vlan_count counts every tag (ids of the first two kept); a tag cut short sets the flag
     * and MAPI_PKT_TRUNCATED without counting. */
    if (p->vlan_count > 0 && !(p->flags & MAPI_PKT_VLAN))
        abort();
    if ((p->flags & MAPI_PKT_VLAN) && p->vlan_count == 0 && !(p->flags & MAPI_PKT_TRUNCATED))
        abort();
}

/* What the decode of a shorter capture (c) found must be what the full decode (p) found. */
static void check_prefix(const struct mapi_pkt *c, const struct mapi_pkt *p)
{
    const uint16_t ipf = MAPI_PKT_IPV4 | MAPI_PKT_IPV6;
    if (c->flags & ipf) {
        if ((c->flags & ipf) != (p->flags & ipf) || c->l3_off != p->l3_off ||
            memcmp(c->src, p->src, 16) != 0 || memcmp(c->dst, p->dst, 16) != 0 ||
            c->ethertype != p->ethertype)
            abort();
    }
    if (c->flags & MAPI_PKT_L4) {
        if (!(p->flags & MAPI_PKT_L4) || c->l4_off != p->l4_off || c->l4proto != p->l4proto ||
            c->sport != p->sport || c->dport != p->dport)
            abort();
        if (c->payload_off != NONE && c->payload_off != p->payload_off)
            abort();
    }
    /* The cut kept the whole header: it must find it. */
    if ((p->flags & ipf) &&
        c->caplen >= (uint32_t)p->l3_off + ((p->flags & MAPI_PKT_IPV4) ? 20 : 40) &&
        !(c->flags & ipf))
        abort();
    if ((p->flags & MAPI_PKT_L4) && c->caplen >= (uint32_t)p->l4_off + l4_min(p->l4proto) &&
        !(c->flags & MAPI_PKT_L4))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t lt = linktypes[data[0] % NLT];
    if (data[0] == 255 && size >= 3)
        lt = (uint16_t)be16(data + 1);
    unsigned cutsel = data[1];
    const uint8_t *f = data + 2;
    size_t flen = size - 2;
    if (flen > MAPI_PKT_ROOM)
        flen = MAPI_PKT_ROOM;
    uint32_t caplen = (uint32_t)flen;

    struct mapi_pkt full;
    decode_exact(f, caplen, lt, &full);
    check_contract(f, &full);

    /* Cuts: one chosen by the input, and the ends of the headers the full decode found. */
    uint32_t cuts[6];
    int nc = 0;
    if (caplen)
        cuts[nc++] = cutsel % caplen;
    if (full.l3_off != NONE)
        cuts[nc++] = full.l3_off + ((full.flags & MAPI_PKT_IPV4) ? 20u : 40u);
    if (full.l4_off != NONE) {
        cuts[nc++] = full.l4_off;
        cuts[nc++] = full.l4_off + l4_min(full.l4proto);
    }
    if (full.payload_off != NONE)
        cuts[nc++] = full.payload_off;
    for (int i = 0; i < nc; i++) {
        if (cuts[i] > caplen)
            abort(); /* offsets beyond caplen: caught by check_contract already */
        struct mapi_pkt c;
        decode_exact(f, cuts[i], lt, &c);
        check_contract(f, &c);
        check_prefix(&c, &full);
    }
    return 0;
}
