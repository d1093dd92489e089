/*
 * tests/test_decode.c - unit test of the packet decoder (common/decode.c).
 *
 * Builds frames by hand (Ethernet, 802.1Q/QinQ, MPLS, PPPoE, SLL, SLL2, raw IP, null/loop;
 * IPv4 with options and fragments, IPv6 with extension headers; TCP, UDP, SCTP, ICMP) and
 * checks every decoded field against values computed by hand. Then decodes every frame at
 * every capture length from 0 to its full length, each time from a heap block of exactly
 * caplen bytes so that AddressSanitizer catches any read past it, and checks that the
 * result is a consistent prefix of the full decode. Finally decodes random bytes.
 *
 * Usage: test_decode. Exit status 0 when all checks pass; failures are printed.
 */
#include "common/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------- frame builder */

struct frame {
    uint8_t b[1024];
    size_t len;
};

static void put(struct frame *f, const void *p, size_t n)
{
    memcpy(f->b + f->len, p, n);
    f->len += n;
}
static void put8(struct frame *f, unsigned v)
{
    f->b[f->len++] = (uint8_t)v;
}
static void put16(struct frame *f, unsigned v)
{
    put8(f, v >> 8);
    put8(f, v & 0xff);
}
static void put32(struct frame *f, uint32_t v)
{
    put16(f, v >> 16);
    put16(f, v & 0xffff);
}
static void putz(struct frame *f, size_t n)
{
    memset(f->b + f->len, 0, n);
    f->len += n;
}

static const uint8_t MAC_A[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t MAC_B[6] = {0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
static const uint8_t V4_SRC[4] = {192, 0, 2, 1};
static const uint8_t V4_DST[4] = {198, 51, 100, 7};
static const uint8_t V6_SRC[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
static const uint8_t V6_DST[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
                                   0,    0,    0,    0,    0, 0, 0xbe, 0xef};

static void eth(struct frame *f, unsigned type)
{
    put(f, MAC_B, 6);
    put(f, MAC_A, 6);
    put16(f, type);
}
static void vlan(struct frame *f, unsigned vid, unsigned type)
{
    put16(f, (5u << 13) | vid); /* priority 5 must not leak into the id */
    put16(f, type);
}
/* IPv4 header of 20 + optlen bytes (optlen a multiple of 4). */
static void ipv4(struct frame *f, unsigned proto, unsigned optlen, unsigned frag, unsigned paylen)
{
    put8(f, 0x40 | (5 + optlen / 4));
    put8(f, 0);
    put16(f, 20 + optlen + paylen);
    put16(f, 0x1234);
    put16(f, frag);
    put8(f, 64);
    put8(f, proto);
    put16(f, 0);
    put(f, V4_SRC, 4);
    put(f, V4_DST, 4);
    for (unsigned i = 0; i < optlen; i++)
        put8(f, 1); /* NOP options */
}
static void ipv6(struct frame *f, unsigned nh, unsigned paylen)
{
    put32(f, 0x60000000u);
    put16(f, paylen);
    put8(f, nh);
    put8(f, 64);
    put(f, V6_SRC, 16);
    put(f, V6_DST, 16);
}
/* Generic IPv6 extension header (hop-by-hop, routing, destination options): 8*(1+hlen). */
static void ext6(struct frame *f, unsigned nh, unsigned hlen)
{
    put8(f, nh);
    put8(f, hlen);
    putz(f, 6 + 8 * hlen);
}
static void tcp(struct frame *f, unsigned sport, unsigned dport, unsigned optlen)
{
    put16(f, sport);
    put16(f, dport);
    put32(f, 1000);
    put32(f, 2000);
    put8(f, (uint8_t)(((20 + optlen) / 4) << 4));
    put8(f, 0x18);
    put16(f, 65535);
    put16(f, 0);
    put16(f, 0);
    for (unsigned i = 0; i < optlen; i++)
        put8(f, 1);
}
static void udp(struct frame *f, unsigned sport, unsigned dport, unsigned paylen)
{
    put16(f, sport);
    put16(f, dport);
    put16(f, 8 + paylen);
    put16(f, 0);
}
static void payload(struct frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(f, 'a' + (unsigned)(i % 26));
}

/* ---------------------------------------------------------------- checking */

struct expect {
    uint16_t flags, ethertype, l3, l4, pay;
    uint8_t proto, vlan_count;
    uint16_t vid0, vid1, sport, dport;
    int v6; /* addresses: 0 none, 4 V4_*, 6 V6_* */
};

/* Decodes data[0..caplen) from a heap block of exactly caplen bytes. */
static struct mapi_pkt decode_copy(const uint8_t *data, size_t caplen, int linktype)
{
    static const uint8_t dummy[1];
    uint8_t *copy = caplen ? malloc(caplen) : NULL;
    if (caplen && !copy) {
        perror("malloc");
        exit(2);
    }
    if (caplen)
        memcpy(copy, data, caplen);
    struct mapi_pkt p;
    memset(&p, 0xa5, sizeof p);         /* garbage in every field the decoder must set */
    p.data = caplen ? copy : dummy + 1; /* caplen 0: any read is out of bounds */
    p.caplen = (uint32_t)caplen;
    p.wlen = 1500;
    p.ts = 42;
    p.seq = 7;
    p.ifindex = 3;
    p.linktype = (uint16_t)linktype;
    mapi_decode(&p);
    CHECK(p.wlen == 1500 && p.ts == 42 && p.seq == 7 && p.ifindex == 3 &&
              p.linktype == (uint16_t)linktype && p.caplen == caplen,
          "decoder touched driver fields");
    free(copy);
    p.data = NULL;
    return p;
}

static void check_full(const char *name, const struct frame *f, int linktype,
                       const struct expect *e)
{
    struct mapi_pkt p = decode_copy(f->b, f->len, linktype);
    CHECK(p.flags == e->flags, "%s: flags 0x%x, want 0x%x", name, p.flags, e->flags);
    CHECK(p.ethertype == e->ethertype, "%s: ethertype 0x%x, want 0x%x", name, p.ethertype,
          e->ethertype);
    CHECK(p.l3_off == e->l3, "%s: l3_off %u, want %u", name, p.l3_off, e->l3);
    CHECK(p.l4_off == e->l4, "%s: l4_off %u, want %u", name, p.l4_off, e->l4);
    CHECK(p.payload_off == e->pay, "%s: payload_off %u, want %u", name, p.payload_off, e->pay);
    CHECK(p.l4proto == e->proto, "%s: l4proto %u, want %u", name, p.l4proto, e->proto);
    CHECK(p.vlan_count == e->vlan_count, "%s: vlan_count %u, want %u", name, p.vlan_count,
          e->vlan_count);
    CHECK(p.vlan_id[0] == e->vid0 && p.vlan_id[1] == e->vid1, "%s: vlan ids %u/%u, want %u/%u",
          name, p.vlan_id[0], p.vlan_id[1], e->vid0, e->vid1);
    CHECK(p.sport == e->sport && p.dport == e->dport, "%s: ports %u>%u, want %u>%u", name, p.sport,
          p.dport, e->sport, e->dport);
    uint8_t src[16] = {0}, dst[16] = {0};
    if (e->v6 == 4) {
        memcpy(src, V4_SRC, 4);
        memcpy(dst, V4_DST, 4);
    } else if (e->v6 == 6) {
        memcpy(src, V6_SRC, 16);
        memcpy(dst, V6_DST, 16);
    }
    CHECK(!memcmp(p.src, src, 16) && !memcmp(p.dst, dst, 16), "%s: addresses differ", name);
}

/* Consistency at every capture length against the full decode. */
static void check_truncations(const char *name, const struct frame *f, int linktype)
{
    struct mapi_pkt full = decode_copy(f->b, f->len, linktype);
    const uint16_t NONE = MAPI_OFF_NONE;
    /* where the last header the full decode used ends: cutting before it must be noticed */
    uint32_t need = 0;
    if (full.payload_off != NONE)
        need = full.payload_off;
    else if (full.l4_off != NONE)
        need = full.l4_off + 1;
    else if (full.l3_off != NONE)
        need = full.l3_off + ((full.flags & MAPI_PKT_IPV6) ? 40 : 20);
    for (size_t cl = 0; cl <= f->len; cl++) {
        struct mapi_pkt p = decode_copy(f->b, cl, linktype);
        uint16_t keep = (uint16_t)(MAPI_PKT_TRUNCATED);
        /* offsets inside caplen */
        CHECK(p.l3_off == NONE || p.l3_off < cl, "%s@%zu: l3_off %u", name, cl, p.l3_off);
        CHECK(p.l4_off == NONE || p.l4_off < cl, "%s@%zu: l4_off %u", name, cl, p.l4_off);
        CHECK(p.payload_off == NONE || p.payload_off <= cl, "%s@%zu: payload_off %u", name, cl,
              p.payload_off);
        /* a prefix of the full decode: every field equal, or absent */
        CHECK(p.l3_off == NONE || p.l3_off == full.l3_off, "%s@%zu: l3_off %u vs %u", name, cl,
              p.l3_off, full.l3_off);
        CHECK(p.l4_off == NONE || p.l4_off == full.l4_off, "%s@%zu: l4_off", name, cl);
        CHECK(p.payload_off == NONE || p.payload_off == full.payload_off, "%s@%zu: payload_off",
              name, cl);
        CHECK((p.flags & ~keep & ~full.flags) == 0, "%s@%zu: flags 0x%x not in full 0x%x", name, cl,
              p.flags, full.flags);
        CHECK(p.sport == 0 || p.sport == full.sport, "%s@%zu: sport", name, cl);
        CHECK(p.l4proto == 0 || p.l4proto == full.l4proto, "%s@%zu: l4proto", name, cl);
        if (p.l3_off != NONE)
            CHECK(!memcmp(p.src, full.src, 16) && !memcmp(p.dst, full.dst, 16), "%s@%zu: addresses",
                  name, cl);
        if (cl < need)
            CHECK(p.flags & MAPI_PKT_TRUNCATED, "%s@%zu: cut at %zu < %u not flagged", name, cl, cl,
                  need);
        if (cl == f->len)
            CHECK(!(p.flags & MAPI_PKT_TRUNCATED), "%s: full frame flagged truncated", name);
    }
}

static void run(const char *name, const struct frame *f, int linktype, struct expect e)
{
    check_full(name, f, linktype, &e);
    check_truncations(name, f, linktype);
}

#define NONE MAPI_OFF_NONE
#define F_V4 MAPI_PKT_IPV4
#define F_V6 MAPI_PKT_IPV6
#define F_L4 MAPI_PKT_L4

/* ---------------------------------------------------------------- cases */

static void test_eth_ipv4_tcp(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x0800);
    ipv4(&f, 6, 8, 0x4000 /* DF */, 32 + 10);
    tcp(&f, 40000, 80, 12);
    payload(&f, 10);
    /* 14 + 28 = 42: TCP at 42, header 32 bytes: payload at 74 */
    run("eth-ipv4-tcp", &f, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 42,
                        .pay = 74,
                        .proto = 6,
                        .sport = 40000,
                        .dport = 80,
                        .v6 = 4});
}

static void test_qinq_ipv6_hbh_udp(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x88a8);
    vlan(&f, 100, 0x8100);
    vlan(&f, 200, 0x86dd);
    ipv6(&f, 0, 16 + 8 + 5);
    ext6(&f, 17, 1); /* hop-by-hop, 16 bytes */
    udp(&f, 53, 33333, 5);
    payload(&f, 5);
    /* 14 + 8 = 22: IPv6; + 40 = 62: hop-by-hop; + 16 = 78: UDP; + 8 = 86 */
    run("qinq-ipv6-hbh-udp", &f, 1,
        (struct expect){.flags = MAPI_PKT_VLAN | F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 22,
                        .l4 = 78,
                        .pay = 86,
                        .proto = 17,
                        .vlan_count = 2,
                        .vid0 = 100,
                        .vid1 = 200,
                        .sport = 53,
                        .dport = 33333,
                        .v6 = 6});
}

static void test_three_tags(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x9100);
    vlan(&f, 1, 0x88a8);
    vlan(&f, 4095, 0x8100);
    vlan(&f, 7, 0x0800);
    ipv4(&f, 17, 0, 0, 8);
    udp(&f, 1, 2, 0);
    /* 14 + 12 = 26: IPv4, 46: UDP, 54: end (payload_off == caplen) */
    run("three-tags", &f, 1,
        (struct expect){.flags = MAPI_PKT_VLAN | F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 26,
                        .l4 = 46,
                        .pay = 54,
                        .proto = 17,
                        .vlan_count = 3,
                        .vid0 = 1,
                        .vid1 = 4095,
                        .sport = 1,
                        .dport = 2,
                        .v6 = 4});
}

static void test_mpls(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x8847);
    put32(&f, (1000u << 12) | (0 << 8) | 64); /* label 1000, not bottom */
    put32(&f, (2000u << 12) | (1 << 8) | 64); /* label 2000, bottom of stack */
    ipv4(&f, 17, 0, 0, 8 + 4);
    udp(&f, 4000, 5000, 4);
    payload(&f, 4);
    /* 14 + 8 = 22: IPv4, 42: UDP, 50: payload */
    run("mpls-ipv4-udp", &f, 1,
        (struct expect){.flags = MAPI_PKT_MPLS | F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 22,
                        .l4 = 42,
                        .pay = 50,
                        .proto = 17,
                        .sport = 4000,
                        .dport = 5000,
                        .v6 = 4});

    struct frame g = {.len = 0};
    eth(&g, 0x8100);
    vlan(&g, 10, 0x8848);
    put32(&g, (16u << 12) | (1 << 8) | 1);
    ipv6(&g, 58, 8);
    put8(&g, 128); /* echo request */
    put8(&g, 0);
    put16(&g, 0);
    put32(&g, 0x00010001);
    /* 18 + 4 = 22: IPv6, 62: ICMPv6, 70: payload (empty) */
    run("vlan-mpls-ipv6-icmp6", &g, 1,
        (struct expect){.flags = MAPI_PKT_VLAN | MAPI_PKT_MPLS | F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 22,
                        .l4 = 62,
                        .pay = 70,
                        .proto = 58,
                        .vlan_count = 1,
                        .vid0 = 10,
                        .v6 = 6});

    /* label stack followed by something that is not IP (pseudowire control word) */
    struct frame h = {.len = 0};
    eth(&h, 0x8847);
    put32(&h, (3u << 12) | (1 << 8) | 1);
    putz(&h, 4);
    payload(&h, 20);
    run("mpls-non-ip", &h, 1,
        (struct expect){
            .flags = MAPI_PKT_MPLS, .ethertype = 0x8847, .l3 = NONE, .l4 = NONE, .pay = NONE});
}

static void test_pppoe(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x8864);
    put8(&f, 0x11);
    put8(&f, 0);
    put16(&f, 0x0042);
    put16(&f, 2 + 20 + 8);
    put16(&f, 0x0021);
    ipv4(&f, 17, 0, 0, 8);
    udp(&f, 67, 68, 0);
    /* 14 + 8 = 22: IPv4, 42: UDP, 50 */
    run("pppoe-ipv4-udp", &f, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 22,
                        .l4 = 42,
                        .pay = 50,
                        .proto = 17,
                        .sport = 67,
                        .dport = 68,
                        .v6 = 4});
}

static void test_snap(void)
{
    struct frame f = {.len = 0};
    eth(&f, 8 + 20 + 8); /* 802.3 length */
    put8(&f, 0xaa);
    put8(&f, 0xaa);
    put8(&f, 0x03);
    putz(&f, 3);
    put16(&f, 0x0800);
    ipv4(&f, 17, 0, 0, 8);
    udp(&f, 9, 10, 0);
    run("802.3-snap-ipv4", &f, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 22,
                        .l4 = 42,
                        .pay = 50,
                        .proto = 17,
                        .sport = 9,
                        .dport = 10,
                        .v6 = 4});

    struct frame g = {.len = 0};
    eth(&g, 46);
    put8(&g, 0x42); /* STP LLC */
    put8(&g, 0x42);
    put8(&g, 0x03);
    putz(&g, 43);
    run("802.3-llc", &g, 1, (struct expect){.l3 = NONE, .l4 = NONE, .pay = NONE});
}

static void test_sll(void)
{
    struct frame f = {.len = 0};
    put16(&f, 0); /* packet type: to us */
    put16(&f, 1); /* ARPHRD_ETHER */
    put16(&f, 6); /* address length */
    put(&f, MAC_A, 6);
    putz(&f, 2);
    put16(&f, 0x0800);
    ipv4(&f, 17, 0, 0, 8 + 3);
    udp(&f, 1812, 1645, 3);
    payload(&f, 3);
    run("sll-ipv4-udp", &f, 113,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 16,
                        .l4 = 36,
                        .pay = 44,
                        .proto = 17,
                        .sport = 1812,
                        .dport = 1645,
                        .v6 = 4});

    struct frame g = {.len = 0};
    put16(&g, 0x86dd); /* protocol */
    put16(&g, 0);      /* reserved */
    put32(&g, 2);      /* ifindex */
    put16(&g, 1);      /* ARPHRD_ETHER */
    put8(&g, 4);       /* packet type: outgoing */
    put8(&g, 6);
    put(&g, MAC_B, 6);
    putz(&g, 2);
    ipv6(&g, 6, 20 + 7);
    tcp(&g, 443, 51000, 0);
    payload(&g, 7);
    /* 20: IPv6, 60: TCP, 80: payload */
    run("sll2-ipv6-tcp", &g, 276,
        (struct expect){.flags = F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 20,
                        .l4 = 60,
                        .pay = 80,
                        .proto = 6,
                        .sport = 443,
                        .dport = 51000,
                        .v6 = 6});

    struct frame h = {.len = 0};
    put16(&h, 0);
    put16(&h, 1);
    put16(&h, 6);
    put(&h, MAC_A, 6);
    putz(&h, 2);
    put16(&h, 0x8100);
    vlan(&h, 300, 0x0800);
    ipv4(&h, 1, 0, 0, 8);
    putz(&h, 8);
    run("sll-vlan-ipv4-icmp", &h, 113,
        (struct expect){.flags = MAPI_PKT_VLAN | F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 20,
                        .l4 = 40,
                        .pay = 48,
                        .proto = 1,
                        .vlan_count = 1,
                        .vid0 = 300,
                        .v6 = 4});
}

static void test_raw_null_loop(void)
{
    struct frame f = {.len = 0};
    ipv4(&f, 6, 0, 0, 20);
    tcp(&f, 22, 60000, 0);
    struct expect e4 = {.flags = F_V4 | F_L4,
                        .l3 = 0,
                        .l4 = 20,
                        .pay = 40,
                        .proto = 6,
                        .sport = 22,
                        .dport = 60000,
                        .v6 = 4};
    run("raw12-ipv4", &f, 12, e4);
    run("raw14-ipv4", &f, 14, e4);
    run("raw101-ipv4", &f, 101, e4);
    run("ipv4-228", &f, 228, e4);
    /* LINKTYPE_IPV6 with an IPv4 packet: not IPv6, nothing decoded */
    run("ipv6-229-with-v4", &f, 229, (struct expect){.l3 = NONE, .l4 = NONE, .pay = NONE});

    struct frame g = {.len = 0};
    ipv6(&g, 17, 8);
    udp(&g, 5353, 5353, 0);
    struct expect e6 = {.flags = F_V6 | F_L4,
                        .l3 = 0,
                        .l4 = 40,
                        .pay = 48,
                        .proto = 17,
                        .sport = 5353,
                        .dport = 5353,
                        .v6 = 6};
    run("raw12-ipv6", &g, 12, e6);
    run("ipv6-229", &g, 229, e6);

    /* DLT_NULL: family in the writer's byte order; DLT_LOOP: network order */
    struct frame n4 = {.len = 0};
    put32(&n4, 0x02000000u); /* 2 little-endian */
    put(&n4, f.b, f.len);
    struct expect en = e4;
    en.l3 = 4;
    en.l4 = 24;
    en.pay = 44;
    run("null-le-ipv4", &n4, 0, en);
    struct frame n6 = {.len = 0};
    put32(&n6, 30); /* AF_INET6 on Darwin, big-endian writer */
    put(&n6, g.b, g.len);
    struct expect en6 = e6;
    en6.l3 = 4;
    en6.l4 = 44;
    en6.pay = 52;
    run("null-be-ipv6", &n6, 0, en6);
    struct frame n24 = {.len = 0};
    put32(&n24, 0x18000000u); /* 24 (NetBSD/OpenBSD AF_INET6) little-endian */
    put(&n24, g.b, g.len);
    run("null-le-ipv6-24", &n24, 0, en6);
    struct frame l4 = {.len = 0};
    put32(&l4, 2);
    put(&l4, f.b, f.len);
    run("loop-ipv4", &l4, 108, en);
    struct frame lbad = {.len = 0};
    put32(&lbad, 0x02000000u); /* little-endian 2 is not AF_INET in network order */
    put(&lbad, f.b, f.len);
    run("loop-wrong-order", &lbad, 108, (struct expect){.l3 = NONE, .l4 = NONE, .pay = NONE});
}

static void test_ipv4_fragments(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x0800);
    ipv4(&f, 17, 0, 0x2000 /* MF, offset 0 */, 8 + 16);
    udp(&f, 500, 4500, 16);
    payload(&f, 16);
    run("ipv4-first-fragment", &f, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 34,
                        .pay = 42,
                        .proto = 17,
                        .sport = 500,
                        .dport = 4500,
                        .v6 = 4});

    struct frame g = {.len = 0};
    eth(&g, 0x0800);
    ipv4(&g, 17, 0, 0x0003 /* offset 24 bytes, last */, 16);
    payload(&g, 16);
    run("ipv4-later-fragment", &g, 1,
        (struct expect){.flags = F_V4 | MAPI_PKT_FRAGMENT,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = NONE,
                        .pay = NONE,
                        .proto = 17,
                        .v6 = 4});
}

static void test_ipv4_malformed(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x0800);
    ipv6(&f, 17, 8); /* ethertype says IPv4, header says 6 */
    udp(&f, 1, 2, 0);
    run("ipv4-bad-version", &f, 1,
        (struct expect){.ethertype = 0x0800, .l3 = NONE, .l4 = NONE, .pay = NONE});

    struct frame g = {.len = 0};
    eth(&g, 0x0800);
    ipv4(&g, 6, 0, 0, 20);
    g.b[14] = 0x44; /* IHL 4 */
    tcp(&g, 1, 2, 0);
    run("ipv4-ihl4", &g, 1,
        (struct expect){.ethertype = 0x0800, .l3 = NONE, .l4 = NONE, .pay = NONE});

    struct frame h = {.len = 0};
    eth(&h, 0x0800);
    ipv4(&h, 6, 0, 0, 20);
    tcp(&h, 7, 9, 0);
    h.b[34 + 12] = 0x30; /* data offset 3 words: no payload offset */
    run("tcp-bad-doff", &h, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 34,
                        .pay = NONE,
                        .proto = 6,
                        .sport = 7,
                        .dport = 9,
                        .v6 = 4});
}

static void test_ipv6_ext(void)
{
    /* routing (24 bytes), destination options (8), AH (24), TCP */
    struct frame f = {.len = 0};
    eth(&f, 0x86dd);
    ipv6(&f, 43, 24 + 8 + 24 + 20);
    ext6(&f, 60, 2);
    ext6(&f, 51, 0);
    put8(&f, 6); /* AH: next header, payload length 4 (=> (4+2)*4 = 24 bytes) */
    put8(&f, 4);
    putz(&f, 22);
    tcp(&f, 179, 1179, 0);
    /* 14 + 40 = 54, +24 = 78, +8 = 86, +24 = 110: TCP, 130 */
    run("ipv6-rh-dst-ah-tcp", &f, 1,
        (struct expect){.flags = F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 14,
                        .l4 = 110,
                        .pay = 130,
                        .proto = 6,
                        .sport = 179,
                        .dport = 1179,
                        .v6 = 6});

    /* first fragment: walk on to UDP */
    struct frame g = {.len = 0};
    eth(&g, 0x86dd);
    ipv6(&g, 44, 8 + 8 + 8);
    put8(&g, 17);
    put8(&g, 0);
    put16(&g, 0x0001); /* offset 0, M */
    put32(&g, 0xdeadbeef);
    udp(&g, 123, 123, 8);
    payload(&g, 8);
    run("ipv6-first-fragment", &g, 1,
        (struct expect){.flags = F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 14,
                        .l4 = 62,
                        .pay = 70,
                        .proto = 17,
                        .sport = 123,
                        .dport = 123,
                        .v6 = 6});

    /* later fragment, behind hop-by-hop */
    struct frame h = {.len = 0};
    eth(&h, 0x86dd);
    ipv6(&h, 0, 8 + 8 + 16);
    ext6(&h, 44, 0);
    put8(&h, 17);
    put8(&h, 0);
    put16(&h, 185 << 3); /* offset 1480 */
    put32(&h, 0xdeadbeef);
    payload(&h, 16);
    run("ipv6-later-fragment", &h, 1,
        (struct expect){.flags = F_V6 | MAPI_PKT_FRAGMENT,
                        .ethertype = 0x86dd,
                        .l3 = 14,
                        .l4 = NONE,
                        .pay = NONE,
                        .proto = 17,
                        .v6 = 6});

    /* mobility header ends the walk: an L4 header without ports or payload offset */
    struct frame m = {.len = 0};
    eth(&m, 0x86dd);
    ipv6(&m, 60, 8 + 8);
    ext6(&m, 135, 0);
    put8(&m, 59);
    put8(&m, 0);
    put8(&m, 5);
    putz(&m, 5);
    run("ipv6-mobility", &m, 1,
        (struct expect){.flags = F_V6 | F_L4,
                        .ethertype = 0x86dd,
                        .l3 = 14,
                        .l4 = 62,
                        .pay = NONE,
                        .proto = 135,
                        .v6 = 6});

    /* no next header */
    struct frame z = {.len = 0};
    eth(&z, 0x86dd);
    ipv6(&z, 59, 0);
    run("ipv6-no-next", &z, 1,
        (struct expect){.flags = F_V6,
                        .ethertype = 0x86dd,
                        .l3 = 14,
                        .l4 = NONE,
                        .pay = NONE,
                        .proto = 59,
                        .v6 = 6});
}

static void test_sctp_icmp_other(void)
{
    struct frame f = {.len = 0};
    eth(&f, 0x0800);
    ipv4(&f, 132, 4, 0, 12 + 16);
    put16(&f, 2905);
    put16(&f, 36412);
    put32(&f, 0x01020304);
    put32(&f, 0);
    payload(&f, 16);
    /* 14 + 24 = 38: SCTP, 50: first chunk */
    run("ipv4opts-sctp", &f, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 38,
                        .pay = 50,
                        .proto = 132,
                        .sport = 2905,
                        .dport = 36412,
                        .v6 = 4});

    struct frame g = {.len = 0};
    eth(&g, 0x0800);
    ipv4(&g, 1, 0, 0, 8 + 32);
    put8(&g, 8);
    put8(&g, 0);
    put16(&g, 0);
    put32(&g, 0x00070001);
    payload(&g, 32);
    run("ipv4-icmp", &g, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 34,
                        .pay = 42,
                        .proto = 1,
                        .v6 = 4});

    struct frame h = {.len = 0};
    eth(&h, 0x0800);
    ipv4(&h, 47, 0, 0, 4 + 20);
    put16(&h, 0);
    put16(&h, 0x0800);
    ipv4(&h, 17, 0, 0, 0);
    run("ipv4-gre", &h, 1,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 14,
                        .l4 = 34,
                        .pay = NONE,
                        .proto = 47,
                        .v6 = 4});
}

static void test_other_links(void)
{
    struct frame f = {.len = 0};
    ipv4(&f, 17, 0, 0, 8);
    udp(&f, 10, 20, 0);

    struct frame c = {.len = 0};
    put8(&c, 0x0f);
    put8(&c, 0);
    put16(&c, 0x0800);
    put(&c, f.b, f.len);
    run("chdlc-ipv4", &c, 104,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 4,
                        .l4 = 24,
                        .pay = 32,
                        .proto = 17,
                        .sport = 10,
                        .dport = 20,
                        .v6 = 4});

    struct frame p = {.len = 0};
    put8(&p, 0xff);
    put8(&p, 0x03);
    put16(&p, 0x0021);
    put(&p, f.b, f.len);
    run("ppp-serial-ipv4", &p, 50,
        (struct expect){.flags = F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 4,
                        .l4 = 24,
                        .pay = 32,
                        .proto = 17,
                        .sport = 10,
                        .dport = 20,
                        .v6 = 4});

    /* DLT_PPP without address/control, MPLS unicast (0x0281), then IPv4 */
    struct frame m = {.len = 0};
    put16(&m, 0x0281);
    put32(&m, (100u << 12) | (1 << 8) | 1);
    put(&m, f.b, f.len);
    run("ppp-mpls-ipv4", &m, 9,
        (struct expect){.flags = MAPI_PKT_MPLS | F_V4 | F_L4,
                        .ethertype = 0x0800,
                        .l3 = 6,
                        .l4 = 26,
                        .pay = 34,
                        .proto = 17,
                        .sport = 10,
                        .dport = 20,
                        .v6 = 4});

    struct frame u = {.len = 0};
    payload(&u, 60);
    run("unknown-linktype", &u, 127, (struct expect){.l3 = NONE, .l4 = NONE, .pay = NONE});

    struct frame a = {.len = 0};
    eth(&a, 0x0806);
    putz(&a, 28);
    run("arp", &a, 1, (struct expect){.ethertype = 0x0806, .l3 = NONE, .l4 = NONE, .pay = NONE});
}

/* Random bytes on every link type: no crash, no read past caplen, offsets in range. */
static void test_random(void)
{
    static const int lts[] = {0, 1, 9, 12, 14, 50, 101, 104, 108, 113, 228, 229, 276};
    uint32_t x = 12345;
    uint8_t buf[256];
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 0;
        for (size_t i = 0; i < sizeof buf; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        x = x * 1103515245u + 12345u;
        len = (x >> 16) % sizeof buf;
        int lt = lts[iter % (int)(sizeof lts / sizeof lts[0])];
        /* bias towards valid headers so that deep paths get exercised */
        if (lt == 1 && len > 14) {
            static const uint16_t ets[] = {0x0800, 0x86dd, 0x8100, 0x88a8, 0x8847, 0x8864};
            uint16_t et = ets[(x >> 8) % 6];
            buf[12] = (uint8_t)(et >> 8);
            buf[13] = (uint8_t)et;
            buf[14] = (x & 1) ? 0x45 : 0x60;
        } else if ((lt == 12 || lt == 228 || lt == 229) && len > 0) {
            buf[0] = (x & 1) ? 0x45 : 0x60;
            buf[6] = (uint8_t)(x >> 24) % 64; /* IPv6 next header: often an extension */
            buf[9] = (x & 2) ? 6 : 17;
        }
        struct mapi_pkt p = decode_copy(buf, len, lt);
        CHECK(p.l3_off == MAPI_OFF_NONE || p.l3_off < len, "random: l3_off");
        CHECK(p.l4_off == MAPI_OFF_NONE || p.l4_off < len, "random: l4_off");
        CHECK(p.payload_off == MAPI_OFF_NONE || p.payload_off <= len, "random: payload_off");
        CHECK(!(p.flags & MAPI_PKT_L4) || p.l4_off != MAPI_OFF_NONE, "random: L4 without l4_off");
        if (failures > 50)
            return;
    }
}

int main(void)
{
    test_eth_ipv4_tcp();
    test_qinq_ipv6_hbh_udp();
    test_three_tags();
    test_mpls();
    test_pppoe();
    test_snap();
    test_sll();
    test_raw_null_loop();
    test_ipv4_fragments();
    test_ipv4_malformed();
    test_ipv6_ext();
    test_sctp_icmp_other();
    test_other_links();
    test_random();
    printf("test_decode: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
