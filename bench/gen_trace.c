/*
 * gen_trace: deterministic synthetic pcap trace generator for the MAPI benchmarks (issue 3,
 * "Benchmarks against tcpdump and libtrace").
 *
 * Usage: gen_trace [-n PACKETS] [-s SEED] [-f FLOWS] [-e EXPECT_FILE] OUT.pcap
 *        defaults: -n 5000000 -s 1 -f 100000; OUT.pcap "-" writes to standard output.
 *
 * The benchmark scripts generate one trace with this program and then run the same work (a BPF
 * filter plus packet and byte counters, a payload string search) over it with mapid/libmapi,
 * tcpdump and libtrace, comparing run times. Because the output depends only on the arguments
 * (same -n/-s/-f give a byte-identical file on every machine), nothing large has to be stored in
 * the repository. With -e the generator also writes the counts every tool must report, so that a
 * benchmark run checks the answers as well as the time: one line per filter,
 * "FILTER<TAB>packets<TAB>bytes" (bytes = sum of wire lengths), computed while generating from
 * the generator's own knowledge of each packet's fields (the output is never parsed back).
 * The filters are BPF strings, evaluated the way libpcap's BPF (tcpdump) does; the last line,
 * "STR:MAPIBENCH-SIGNATURE", counts the frames whose bytes contain that string.
 *
 * File format: classic pcap, written directly (no libpcap): global header magic 0xa1b2c3d4 in
 * host byte order, version 2.4, thiszone 0, sigfigs 0, snaplen 65535, linktype 1 (Ethernet);
 * 16-byte record headers with microsecond timestamps; every packet is captured whole
 * (caplen == len). The first packet is stamped 1700000000.000000, each next one 1..20 us later.
 *
 * Traffic model (all randomness from xoshiro256** seeded by splitmix64(SEED)):
 *  - FLOWS distinct unidirectional flows, each with fixed MACs, VLAN tags, addresses, protocol
 *    and ports. Flow attributes are drawn from a low-discrepancy (Kronecker) sequence over the
 *    flow's popularity rank, so that even the few heaviest flows together keep the packet mix
 *    close to the targets below; addresses, ports and VLAN ids come from a hash of (seed, rank).
 *  - Flow popularity (per packet, a cheap step approximation of Zipf): 10% of packets go to the
 *    top 10 flows, 15% to the top 100, 15% to the top 1000, 20% to the top 10000 and 40% to any
 *    flow, each uniformly within its set (sets are clamped to FLOWS).
 *  - Link layer: Ethernet II; ~10% of flows carry an 802.1Q tag (0x8100), a tenth of those
 *    (~1% of packets) QinQ (outer 0x88a8 S-tag, inner 0x8100 C-tag).
 *  - Network: IPv4 ~80% (addresses in 198.18.0.0/15, DF set, valid header checksum) and IPv6
 *    ~20% (addresses in fd00::/8, no extension headers: the upper-layer header follows the
 *    IPv6 header directly, so libpcap's "ip6 proto"/"icmp6" see it).
 *  - Transport: ~1% ICMP echo request (ICMPv6 for IPv6), of the rest ~70% TCP and ~30% UDP.
 *    TCP destination port 80 on ~15% of TCP flows, 443 on ~25%, source port 443 (server side)
 *    on ~5%, a well-known port below 1024 on ~15%, otherwise 1024..65535. UDP destination port
 *    53 on ~45%, source port 53 (DNS replies) on ~5%, then 123, 443, a few others, and random
 *    high ports. Client ports are 1024..65535.
 *  - Frame sizes (wire length, without FCS): 40% in 64..100 bytes (never below the headers),
 *    50% in 1400..1514, 10% uniform in 101..1399.
 *  - Payload: a cheap repeating byte pattern (consecutive byte values, which cannot form the
 *    strings below by accident); ~40% of TCP packets to port 80 with at least 48 payload bytes
 *    begin with an HTTP request line ("GET /..."); ~3% of TCP packets with a payload of at least
 *    40 bytes contain "MAPIBENCH-SIGNATURE" at a varying offset.
 *  - Checksums: the IPv4 header checksum is valid. The TCP, UDP and ICMP checksums are left 0
 *    (UDP over IPv4 allows 0; the others are simply not computed - tcpdump, tshark and libtrace
 *    do not verify them by default, and the benchmarks do not depend on them).
 *
 * BPF semantics used for the expected counts: without the "vlan" keyword a protocol filter
 * looks at the Ethernet type at offset 12, so VLAN-tagged frames (0x8100/0x88a8) match none of
 * "tcp", "udp", "ip6", "port 53", "net ...", "icmp or icmp6", ...; they match only "" (all),
 * "vlan", "greater 1000" (wire length >= 1000) and the payload string.
 *
 * Build: gcc -std=c11 -O2 -Wall -Wextra -Werror -o gen_trace bench/gen_trace.c  (libc only)
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_START 1700000000u
#define SNAPLEN 65535u
#define MAX_FRAME 1514u
#define OUTBUF_SIZE (8u << 20)

static const char SIGNATURE[] = "MAPIBENCH-SIGNATURE";
#define SIG_LEN (sizeof(SIGNATURE) - 1)
static const char HTTP_REQ[] = "GET /mapi/bench/index.html HTTP/1.1\r\nHost: bench.invalid\r\n\r\n";
#define HTTP_LEN (sizeof(HTTP_REQ) - 1)

/* ---- random numbers ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Stateless hash of (seed, rank, what) used for per-flow attributes. */
static uint64_t hash3(uint64_t seed, uint64_t rank, uint64_t what)
{
    uint64_t x = seed ^ (rank * 0xd1b54a32d192ed03ull) ^ (what * 0x8cb92ba72f3d8dd7ull);
    return splitmix64(&x);
}

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r) /* xoshiro256** */
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

/* Uniform integer in [0, n) for n <= 2^32 (multiply-shift; the bias is irrelevant here). */
static uint32_t below(uint64_t r, uint64_t n)
{
    return (uint32_t)(((r >> 32) * n) >> 32);
}

/* ---- flows ------------------------------------------------------------------------------- */

enum { P_TCP = 6, P_UDP = 17, P_ICMP = 1, P_ICMP6 = 58 };

typedef struct {
    uint8_t ready;
    uint8_t v6;
    uint8_t proto; /* P_TCP, P_UDP, P_ICMP or P_ICMP6 */
    uint8_t ntags; /* 0, 1 (802.1Q) or 2 (QinQ) */
    uint16_t vid_outer, vid_inner;
    uint16_t sport, dport; /* for ICMP: echo identifier in sport */
    uint32_t seq, ack, flowlabel;
    uint8_t mac_dst[6], mac_src[6];
    uint8_t src[16], dst[16]; /* IPv4 uses the first 4 bytes */
} flow_t;

/* Fractional parts of sqrt(2), sqrt(3), sqrt(5), sqrt(7), sqrt(11), sqrt(13). */
static const double KRONECKER[6] = {0.41421356237309515, 0.7320508075688772, 0.2360679774997898,
                                    0.6457513110645907,  0.3166247903554,    0.6055512754639891};

static double frac(double x)
{
    return x - (double)(uint64_t)x;
}

static uint16_t port_high(uint64_t h)
{
    return (uint16_t)(1024 + below(h, 65536 - 1024));
}

static void flow_init(flow_t *f, uint64_t seed, uint64_t rank)
{
    double u[6];
    for (int d = 0; d < 6; d++) {
        double off = (double)(hash3(seed, 0, 100 + (uint64_t)d) >> 11) * 0x1p-53;
        u[d] = frac(off + (double)rank * KRONECKER[d]);
    }
    uint64_t h = hash3(seed, rank, 1);

    f->ntags = u[0] < 0.10 ? (u[4] < 0.10 ? 2 : 1) : 0;
    f->v6 = u[1] < 0.20;
    if (u[2] < 0.01)
        f->proto = f->v6 ? P_ICMP6 : P_ICMP;
    else
        f->proto = u[2] < 0.01 + 0.99 * 0.70 ? P_TCP : P_UDP;
    f->vid_outer = (uint16_t)(1 + below(h, 4094));
    f->vid_inner = (uint16_t)(1 + below(hash3(seed, rank, 2), 4094));

    uint64_t hp = hash3(seed, rank, 3);
    uint16_t client = port_high(hash3(seed, rank, 4));
    double v = u[3];
    f->sport = client;
    if (f->proto == P_TCP) {
        static const uint16_t low[] = {21, 22, 23, 25, 53, 110, 143, 179, 389, 587, 636, 993, 995};
        if (v < 0.15) {
            f->dport = 80;
        } else if (v < 0.40) {
            f->dport = 443;
        } else if (v < 0.45) {
            f->sport = 443;
            f->dport = client;
        } else if (v < 0.60) {
            f->dport = low[below(hp, sizeof low / sizeof low[0])];
        } else {
            f->dport = port_high(hp);
        }
    } else if (f->proto == P_UDP) {
        static const uint16_t low[] = {67, 69, 137, 161, 500, 514};
        if (v < 0.45) {
            f->dport = 53;
        } else if (v < 0.50) {
            f->sport = 53;
            f->dport = client;
        } else if (v < 0.60) {
            f->dport = 123;
        } else if (v < 0.70) {
            f->dport = 443;
        } else if (v < 0.75) {
            f->dport = low[below(hp, sizeof low / sizeof low[0])];
        } else {
            f->dport = port_high(hp);
        }
    } else {
        f->sport = (uint16_t)hp;
        f->dport = 0;
    }

    uint64_t a = hash3(seed, rank, 5), b = hash3(seed, rank, 6);
    if (!f->v6) {
        uint32_t s4 = 0xC6120000u | (uint32_t)(a & 0x1FFFFu); /* 198.18.0.0/15 */
        uint32_t d4 = 0xC6120000u | (uint32_t)(b & 0x1FFFFu);
        for (int i = 0; i < 4; i++) {
            f->src[i] = (uint8_t)(s4 >> (24 - 8 * i));
            f->dst[i] = (uint8_t)(d4 >> (24 - 8 * i));
        }
    } else {
        uint64_t a2 = hash3(seed, rank, 7), b2 = hash3(seed, rank, 8);
        for (int i = 0; i < 8; i++) {
            f->src[i] = (uint8_t)(a >> (8 * i));
            f->src[8 + i] = (uint8_t)(a2 >> (8 * i));
            f->dst[i] = (uint8_t)(b >> (8 * i));
            f->dst[8 + i] = (uint8_t)(b2 >> (8 * i));
        }
        f->src[0] = f->dst[0] = 0xfd; /* fd00::/8 */
    }
    uint64_t md = hash3(seed, rank, 9), ms = hash3(seed, rank, 11);
    for (int i = 0; i < 6; i++) {
        f->mac_dst[i] = (uint8_t)(md >> (8 * i));
        f->mac_src[i] = (uint8_t)(ms >> (8 * i));
    }
    f->mac_dst[0] = 0x02; /* locally administered unicast */
    f->mac_src[0] = 0x06;
    uint64_t q = hash3(seed, rank, 10);
    f->seq = (uint32_t)q;
    f->ack = (uint32_t)(q >> 32);
    f->flowlabel = (uint32_t)(md >> 48) & 0xFFFFFu;
    f->ready = 1;
}

/* Popularity rank of the next packet's flow: step approximation of a Zipf distribution. */
static uint64_t pick_rank(rng_t *r, uint64_t nflows)
{
    uint64_t x = rng_next(r);
    uint32_t p = below(x, 100);
    uint64_t set = p < 10 ? 10 : p < 25 ? 100 : p < 40 ? 1000 : p < 60 ? 10000 : nflows;
    if (set > nflows)
        set = nflows;
    uint64_t y = rng_next(r);
    return set <= 0xFFFFFFFFull ? below(y, set) : y % set;
}

/* ---- expected counts --------------------------------------------------------------------- */

enum {
    F_ALL,
    F_TCP_DST80,
    F_UDP,
    F_TCP,
    F_IP6,
    F_VLAN,
    F_PORT53,
    F_TCP443,
    F_GREATER1000,
    F_NET18,
    F_ICMP,
    F_IP_TCP_LOWDST,
    F_SIG,
    F_COUNT
};

static const char *const FILTERS[F_COUNT] = {
    "",
    "tcp and dst port 80",
    "udp",
    "tcp",
    "ip6",
    "vlan",
    "port 53",
    "tcp and port 443",
    "greater 1000",
    "net 198.18.0.0/16",
    "icmp or icmp6",
    "ip and tcp and dst portrange 1-1023",
    "STR:MAPIBENCH-SIGNATURE",
};

typedef struct {
    uint64_t pkts[F_COUNT], bytes[F_COUNT];
} counts_t;

static void count(counts_t *c, int i, uint32_t len)
{
    c->pkts[i]++;
    c->bytes[i] += len;
}

/* Apply the filters the way libpcap's BPF code does on an Ethernet capture. */
static void account(counts_t *c, const flow_t *f, uint32_t len, int has_sig)
{
    count(c, F_ALL, len);
    if (len >= 1000)
        count(c, F_GREATER1000, len);
    if (has_sig)
        count(c, F_SIG, len);
    if (f->ntags) {
        count(c, F_VLAN, len); /* the ethertype is 0x8100/0x88a8: nothing else matches */
        return;
    }
    int tcp = f->proto == P_TCP, udp = f->proto == P_UDP;
    if (f->v6)
        count(c, F_IP6, len);
    if (tcp)
        count(c, F_TCP, len);
    if (udp)
        count(c, F_UDP, len);
    if (f->proto == P_ICMP || f->proto == P_ICMP6)
        count(c, F_ICMP, len);
    if (tcp && f->dport == 80)
        count(c, F_TCP_DST80, len);
    if (tcp && (f->sport == 443 || f->dport == 443))
        count(c, F_TCP443, len);
    if ((tcp || udp) && (f->sport == 53 || f->dport == 53))
        count(c, F_PORT53, len);
    if (!f->v6 && ((f->src[0] == 198 && f->src[1] == 18) || (f->dst[0] == 198 && f->dst[1] == 18)))
        count(c, F_NET18, len);
    if (!f->v6 && tcp && f->dport >= 1 && f->dport <= 1023)
        count(c, F_IP_TCP_LOWDST, len);
}

/* ---- packet construction ----------------------------------------------------------------- */

static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static void put32le_host(uint8_t *p, uint32_t v) /* pcap headers are in host byte order */
{
    memcpy(p, &v, 4);
}

static uint16_t ipv4_checksum(const uint8_t *h)
{
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)h[i] << 8 | h[i + 1];
    while (sum >> 16)
        sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Consecutive byte values; a payload is a slice of this starting anywhere in the first 256. */
static uint8_t pattern[256 + MAX_FRAME];

/* Writes one frame for flow f at p; returns 1 when the payload carries the signature. */
static int build_frame(uint8_t *p, flow_t *f, uint32_t len, uint32_t ipid, rng_t *r)
{
    uint8_t *q = p;
    memcpy(q, f->mac_dst, 6);
    memcpy(q + 6, f->mac_src, 6);
    q += 12;
    if (f->ntags == 2) {
        q = put16(q, 0x88a8);
        q = put16(q, f->vid_outer);
        q = put16(q, 0x8100);
        q = put16(q, f->vid_inner);
    } else if (f->ntags == 1) {
        q = put16(q, 0x8100);
        q = put16(q, f->vid_outer);
    }
    q = put16(q, f->v6 ? 0x86dd : 0x0800);
    uint32_t l3len = len - (uint32_t)(q - p);
    uint32_t l4hdr = f->proto == P_TCP ? 20 : 8;
    if (f->v6) {
        q = put32(q, 0x60000000u | f->flowlabel);
        q = put16(q, l3len - 40);
        *q++ = f->proto;
        *q++ = 64;
        memcpy(q, f->src, 16);
        memcpy(q + 16, f->dst, 16);
        q += 32;
    } else {
        uint8_t *ip = q;
        q = put16(q, 0x4500);
        q = put16(q, l3len);
        q = put16(q, ipid & 0xFFFFu);
        q = put16(q, 0x4000); /* DF, fragment offset 0 */
        *q++ = 64;
        *q++ = f->proto;
        q = put16(q, 0);
        memcpy(q, f->src, 4);
        memcpy(q + 4, f->dst, 4);
        q += 8;
        put16(ip + 10, ipv4_checksum(ip));
    }
    uint8_t *l4 = q;
    uint32_t plen = len - (uint32_t)(l4 - p) - l4hdr;
    if (f->proto == P_TCP) {
        q = put16(q, f->sport);
        q = put16(q, f->dport);
        q = put32(q, f->seq);
        q = put32(q, f->ack);
        *q++ = 0x50;               /* data offset 5 words */
        *q++ = plen ? 0x18 : 0x10; /* PSH|ACK or ACK */
        q = put16(q, 65535);       /* window */
        q = put32(q, 0);           /* checksum (not computed) and urgent pointer */
        f->seq += plen;
    } else if (f->proto == P_UDP) {
        q = put16(q, f->sport);
        q = put16(q, f->dport);
        q = put16(q, plen + 8);
        q = put16(q, 0); /* no checksum */
    } else {
        *q++ = f->proto == P_ICMP ? 8 : 128; /* echo request */
        *q++ = 0;
        q = put16(q, 0); /* checksum (not computed) */
        q = put16(q, f->sport);
        q = put16(q, ipid & 0xFFFFu);
    }
    memcpy(q, pattern + (f->seq & 0xFFu), plen);
    if (f->proto != P_TCP || plen < 40)
        return 0;
    uint32_t start = 0;
    if (f->dport == 80 && plen >= 48 && below(rng_next(r), 100) < 40) {
        uint32_t n = plen < HTTP_LEN ? plen : (uint32_t)HTTP_LEN;
        memcpy(q, HTTP_REQ, n);
        start = n + SIG_LEN <= plen ? n : 0;
    }
    if (below(rng_next(r), 1000) >= 30)
        return 0;
    uint32_t off = start + below(rng_next(r), plen - SIG_LEN - start + 1);
    memcpy(q + off, SIGNATURE, SIG_LEN);
    return 1;
}

static uint32_t frame_size(rng_t *r, uint32_t hdr)
{
    uint32_t c = below(rng_next(r), 100);
    uint32_t lo, hi;
    if (c < 40) {
        lo = hdr > 64 ? hdr : 64;
        hi = 100;
    } else if (c < 90) {
        lo = 1400;
        hi = MAX_FRAME;
    } else {
        lo = 101;
        hi = 1399;
    }
    return lo + below(rng_next(r), hi - lo + 1);
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: gen_trace [-n PACKETS] [-s SEED] [-f FLOWS] [-e EXPECT_FILE] OUT.pcap\n"
                 "  defaults: -n 5000000 -s 1 -f 100000; OUT.pcap '-' writes to stdout\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static int flush_out(FILE *out, const uint8_t *buf, size_t n)
{
    return n && fwrite(buf, 1, n, out) != n ? -1 : 0;
}

int main(int argc, char **argv)
{
    uint64_t npkts = 5000000, seed = 1, nflows = 100000;
    const char *expect = NULL, *outname = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] && !a[2] && strchr("nsfe", a[1])) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            int bad = 0;
            if (a[1] == 'e')
                bad = !(expect = v);
            else
                bad = parse_u64(v, a[1] == 'n' ? &npkts : a[1] == 's' ? &seed : &nflows);
            if (bad) {
                fprintf(stderr, "gen_trace: bad or missing value for %s\n", a);
                usage(stderr);
                return 2;
            }
        } else if (!outname && (a[0] != '-' || !a[1])) {
            outname = a;
        } else {
            fprintf(stderr, "gen_trace: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!outname || nflows == 0) {
        if (nflows == 0)
            fprintf(stderr, "gen_trace: -f must be at least 1\n");
        usage(stderr);
        return 2;
    }
    flow_t *flows = calloc((size_t)nflows, sizeof *flows); /* pages appear on first use */
    uint8_t *buf = malloc(OUTBUF_SIZE);
    if (!flows || !buf) {
        fprintf(stderr, "gen_trace: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)i;

    FILE *out = strcmp(outname, "-") ? fopen(outname, "wb") : stdout;
    if (!out) {
        fprintf(stderr, "gen_trace: %s: %s\n", outname, strerror(errno));
        return 1;
    }

    uint8_t *p = buf;
    put32le_host(p, 0xa1b2c3d4u);
    uint16_t vmaj = 2, vmin = 4;
    memcpy(p + 4, &vmaj, 2);
    memcpy(p + 6, &vmin, 2);
    memset(p + 8, 0, 8); /* thiszone, sigfigs */
    put32le_host(p + 16, SNAPLEN);
    put32le_host(p + 20, 1); /* LINKTYPE_ETHERNET */
    p += 24;

    rng_t r;
    rng_seed(&r, seed);
    counts_t c;
    memset(&c, 0, sizeof c);
    uint32_t ts_sec = TS_START, ts_usec = 0;
    int err = 0;

    for (uint64_t n = 0; n < npkts; n++) {
        if ((size_t)(buf + OUTBUF_SIZE - p) < 16 + MAX_FRAME) {
            if (flush_out(out, buf, (size_t)(p - buf))) {
                err = 1;
                break;
            }
            p = buf;
        }
        uint64_t rank = pick_rank(&r, nflows);
        flow_t *f = &flows[rank];
        if (!f->ready)
            flow_init(f, seed, rank);
        uint32_t hdr = 14 + 4u * f->ntags + (f->v6 ? 40 : 20) + (f->proto == P_TCP ? 20 : 8);
        uint32_t len = frame_size(&r, hdr);

        if (n > 0) {
            ts_usec += 1 + below(rng_next(&r), 20);
            if (ts_usec >= 1000000) {
                ts_usec -= 1000000;
                ts_sec++;
            }
        }
        put32le_host(p, ts_sec);
        put32le_host(p + 4, ts_usec);
        put32le_host(p + 8, len);
        put32le_host(p + 12, len);
        int sig = build_frame(p + 16, f, len, (uint32_t)n, &r);
        p += 16 + len;
        account(&c, f, len, sig);
    }
    if (!err && flush_out(out, buf, (size_t)(p - buf)))
        err = 1;
    if (fflush(out) || ferror(out))
        err = 1;
    if (out != stdout && fclose(out))
        err = 1;
    if (err) {
        fprintf(stderr, "gen_trace: writing %s: %s\n", outname, strerror(errno));
        return 1;
    }

    if (expect) {
        FILE *e = fopen(expect, "w");
        if (!e) {
            fprintf(stderr, "gen_trace: %s: %s\n", expect, strerror(errno));
            return 1;
        }
        for (int i = 0; i < F_COUNT; i++)
            fprintf(e, "%s\t%llu\t%llu\n", FILTERS[i], (unsigned long long)c.pkts[i],
                    (unsigned long long)c.bytes[i]);
        if (fclose(e)) {
            fprintf(stderr, "gen_trace: writing %s: %s\n", expect, strerror(errno));
            return 1;
        }
    }
    free(flows);
    free(buf);
    return 0;
}
