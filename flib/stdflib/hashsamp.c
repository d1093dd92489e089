/*
 * flib/stdflib/hashsamp.c - HASHSAMP "ii" range, keep: hash-based sampling of TCP and UDP
 * flows. Every packet of one 5-tuple gets the same hash, so a flow is kept whole or not at all,
 * and two monitors with the same range keep the same flows.
 *
 * The packet must be TCP or UDP over IPv4 or IPv6 as found by mapid's decoder (any link type
 * it decodes, behind VLAN tags, MPLS labels or PPPoE; IPv6 extension headers skipped), with
 * its ports captured: non-first fragments, truncated headers and every other protocol are
 * dropped. The hash is Bob Jenkins' jhash_3words of the Linux kernel's include/linux/jhash.h
 * (lookup3's final mix) with initval 6564987, modulo 1024:
 *     a = saddr, b = daddr ^ protocol, c = the two port fields,
 * each the 32-bit number that the 4 bytes as they lie in the packet give when read as
 * little-endian (what the original computed on its x86 hosts by reading the header words
 * as host integers), so the result does not depend on the host's byte order; an IPv6
 * address counts as the XOR of its four 32-bit words read that way. The packet passes if
 * hash < range (range 0..1024: 0 keeps nothing, 1024 every TCP/UDP packet; else 7001).
 *
 * keep (0 or 1, else 7002): 1 queues a struct sample (mapi/hashsamp.h) per packet kept, read
 * one per mapi_read_results; 0 keeps no queue (read_results then fails with 6146).
 *
 * Differences from the original: IPv6, VLAN, MPLS and every link type of the decoder (the
 * original knew IPv4 over plain Ethernet and Cisco HDLC, and asserted on anything else);
 * range 0 is accepted (the man page's 0..1024); the original hashed with the kernel's older
 * jhash (lookup2's mix on signed ints), so the flows it picked for a range differ from ours;
 * samples are never lost on trace files (the original dropped them when its 40-entry ring was
 * full).
 */
#include <string.h>

#include "mapi/hashsamp.h"
#include "stdflib.h"

#define HASHSAMP_INITVAL 6564987u
#define HASHSAMP_BUCKETS 1024u
#define HASHSAMP_QUEUE_RECORDS 4096u
#define JHASH_INITVAL 0xdeadbeefu

static inline uint32_t rol32(uint32_t w, unsigned s)
{
    return (w << s) | (w >> (32u - s));
}

/* The kernel's jhash_3words: __jhash_nwords with initval + JHASH_INITVAL + (3 << 2), then
 * __jhash_final. Returns the 32-bit hash. */
static uint32_t jhash_3words(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
    initval += JHASH_INITVAL + (3u << 2);
    a += initval;
    b += initval;
    c += initval;
    c ^= b;
    c -= rol32(b, 14);
    a ^= c;
    a -= rol32(c, 11);
    b ^= a;
    b -= rol32(a, 25);
    c ^= b;
    c -= rol32(b, 16);
    a ^= c;
    a -= rol32(c, 4);
    b ^= a;
    b -= rol32(a, 14);
    c ^= b;
    c -= rol32(b, 24);
    return c;
}

/* The 4 bytes at p as a little-endian number. */
static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* An address as one 32-bit number for the hash: IPv4 itself, IPv6 the XOR of its words. */
static inline uint32_t addr_word(const uint8_t *addr, int ipv6)
{
    return ipv6 ? le32(addr) ^ le32(addr + 4) ^ le32(addr + 8) ^ le32(addr + 12) : le32(addr);
}

/* The same folding, but of the words as they lie in memory (struct sample's convention). */
static inline unsigned int addr_native(const uint8_t *addr, int ipv6)
{
    uint32_t w[4];
    memcpy(w, addr, sizeof w);
    return ipv6 ? w[0] ^ w[1] ^ w[2] ^ w[3] : w[0];
}

/* Checks range and keep; sets up the queue for keep = 1. Returns 0, 7001 or 7002. */
int stdflib_hashsamp_instance(struct mapi_fn_instance *fi)
{
    int range = fi->args[0].v.i, keep = fi->args[1].v.i;

    if (range < 0 || range > (int)HASHSAMP_BUCKETS) {
        stdflib_errmsg(fi, "range %d is not in 0..%u", range, HASHSAMP_BUCKETS);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (keep != 0 && keep != 1) {
        stdflib_errmsg(fi, "keep must be 0 or 1, not %d", keep);
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    /* A queued record costs its length + 28 bytes, rounded up to 8. */
    fi->ring_size = keep ? HASHSAMP_QUEUE_RECORDS * ((sizeof(struct sample) + 28u + 7u) & ~7u) : 0;
    fi->result_size = 0;
    return 0;
}

/* Returns 1 for a TCP/UDP packet whose hash is below range, else 0. */
int stdflib_hashsamp_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    const uint32_t range = (uint32_t)fi->args[0].v.i;
    const int ipv6 = (pkt->flags & MAPI_PKT_IPV6) != 0;
    uint32_t ports, hash;

    if (!(pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6)) || !(pkt->flags & MAPI_PKT_L4) ||
        (pkt->flags & MAPI_PKT_FRAGMENT) || (pkt->l4proto != 6 && pkt->l4proto != 17))
        return 0;
    /* The port fields in packet byte order, read little-endian. */
    ports = (uint32_t)(((pkt->sport & 0xffu) << 8) | (pkt->sport >> 8)) |
            ((uint32_t)(((pkt->dport & 0xffu) << 8) | (pkt->dport >> 8)) << 16);
    hash = jhash_3words(addr_word(pkt->src, ipv6), addr_word(pkt->dst, ipv6) ^ pkt->l4proto, ports,
                        HASHSAMP_INITVAL) %
           HASHSAMP_BUCKETS;
    if (hash >= range)
        return 0;
    if (fi->args[1].v.i) {
        struct sample s;
        memset(&s, 0, sizeof s);
        s.source_ip = addr_native(pkt->src, ipv6);
        s.dest_ip = addr_native(pkt->dst, ipv6);
        s.sourceport = pkt->sport;
        s.destport = pkt->dport;
        s.protocol = pkt->l4proto;
        s.timestamp = pkt->ts;
        if (pkt->l4proto == 6) { /* the decoder saw the 20 fixed bytes of the TCP header */
            const uint8_t *tcp = pkt->data + pkt->l4_off;
            uint8_t f = tcp[13];
            s.sequence = ((uint32_t)tcp[4] << 24) | ((uint32_t)tcp[5] << 16) |
                         ((uint32_t)tcp[6] << 8) | tcp[7];
            s.tcp_flags = ((f & 0x02u) ? TCP_SYN : 0u) | ((f & 0x10u) ? TCP_ACK : 0u) |
                          ((f & 0x04u) ? TCP_RST : 0u) | ((f & 0x01u) ? TCP_FIN : 0u) |
                          ((f & 0x08u) ? TCP_PSH : 0u);
        }
        fi->host->queue_put(fi, &s, sizeof s, pkt->ts);
    }
    return 1;
}

/* Nothing to free: the state is the arguments. */
void stdflib_hashsamp_cleanup(struct mapi_fn_instance *fi)
{
    (void)fi;
}
