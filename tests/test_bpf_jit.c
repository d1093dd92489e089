/*
 * tests/test_bpf_jit.c - differential test of the BPF JIT (flib/stdflib/bpf_jit.c) against
 * libpcap's interpreter bpf_filter(), which is the reference: every (program, packet) pair
 * must give the same value.
 *
 * Programs: tcpdump expressions compiled with pcap_compile() for DLT_EN10MB, DLT_LINUX_SLL
 * and DLT_RAW, hand-written programs for the corners pcap_compile rarely emits (division and
 * modulo by zero, NEG, shifts >= 32, scratch memory, TAX/TXA, JSET, RET A), and random
 * programs. Packets: every record of the captures in the data directory (argv[1]), each
 * also at every truncation (caplen 0..full, wirelen unchanged) and with random byte
 * mutations. The packet bytes are placed to end right before a PROT_NONE page, so a JIT load
 * past caplen would fault instead of passing unnoticed.
 *
 * Usage: test_bpf_jit DATADIR            run the differential test (exit 0 = all equal)
 *        test_bpf_jit --bench FILE [N]   time the 8 W3 filters, interpreter vs JIT, over the
 *                                        first N (default 200000) packets of FILE
 */
#include <dirent.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "flib/stdflib/bpf_jit.h"

#ifndef DLT_LINUX_SLL
#define DLT_LINUX_SLL 113
#endif

struct pkt {
    uint8_t *data;
    uint32_t caplen, wirelen;
};

static struct pkt *pkts;
static size_t npkts, pkts_cap;

static unsigned long long compared, mismatches;

/* Guarded buffer: data placed to end at the start of a PROT_NONE page. */
static uint8_t *guard_base;
static size_t guard_span;

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    guard_span = (70000 + page - 1) / page * page;
    guard_base =
        mmap(NULL, guard_span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_base == MAP_FAILED || mprotect(guard_base + guard_span, page, PROT_NONE) != 0) {
        perror("mmap guard");
        exit(1);
    }
}

static const uint8_t *guard_place(const uint8_t *data, uint32_t caplen)
{
    uint8_t *p = guard_base + guard_span - caplen;

    memcpy(p, data, caplen);
    return p;
}

static void add_pkt(const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    if (caplen > 65535)
        caplen = 65535;
    if (npkts == pkts_cap) {
        pkts_cap = pkts_cap ? 2 * pkts_cap : 1024;
        pkts = realloc(pkts, pkts_cap * sizeof(*pkts));
        if (pkts == NULL)
            abort();
    }
    pkts[npkts].data = malloc(caplen ? caplen : 1);
    if (pkts[npkts].data == NULL)
        abort();
    memcpy(pkts[npkts].data, data, caplen);
    pkts[npkts].caplen = caplen;
    pkts[npkts].wirelen = wirelen;
    npkts++;
}

static size_t load_capture(const char *path, size_t max)
{
    char err[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *h;
    const u_char *d;
    size_t n = 0;
    pcap_t *p = pcap_open_offline(path, err);

    if (p == NULL)
        return 0;
    while (n < max && pcap_next_ex(p, &h, &d) == 1) {
        add_pkt(d, h->caplen, h->len);
        n++;
    }
    pcap_close(p);
    return n;
}

/* Compares one program on one packet (copied into the guarded buffer). */
static void compare(const char *name, const struct bpf_insn *insns, const struct bpf_jit *jit,
                    const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    const uint8_t *p = guard_place(data, caplen);
    unsigned want = bpf_filter(insns, p, wirelen, caplen);
    unsigned got = bpf_jit_run(jit, p, wirelen, caplen);

    static const char *last_name;

    compared++;
    if (want != got) {
        if (mismatches < 10 || name != last_name)
            fprintf(stderr, "MISMATCH %s: caplen %u wirelen %u: interpreter %u, jit %u\n", name,
                    caplen, wirelen, want, got);
        last_name = name;
        mismatches++;
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Runs a program over every packet, every truncation and random mutations. */
static void run_all(const char *name, const struct bpf_insn *insns, const struct bpf_jit *jit,
                    int mutations)
{
    static uint8_t buf[65536];
    size_t i;

    for (i = 0; i < npkts; i++) {
        const struct pkt *pk = &pkts[i];
        uint32_t c;
        int m;

        for (c = 0; c <= pk->caplen; c++)
            compare(name, insns, jit, pk->data, c, pk->wirelen);
        for (m = 0; m < mutations && pk->caplen > 0; m++) {
            int nb = 1 + (int)(rnd() % 4), b;
            uint32_t span = pk->caplen < 96 ? pk->caplen : 96;

            memcpy(buf, pk->data, pk->caplen);
            for (b = 0; b < nb; b++) {
                uint32_t pos = rnd() % (rnd() % 4 == 0 ? pk->caplen : span);

                buf[pos] =
                    rnd() % 3 == 0 ? (uint8_t)(buf[pos] ^ (1u << (rnd() % 8))) : (uint8_t)rnd();
            }
            compare(name, insns, jit, buf, pk->caplen, pk->wirelen);
            compare(name, insns, jit, buf, rnd() % (pk->caplen + 1), pk->wirelen);
        }
    }
}

struct filter {
    int dlt;
    const char *expr;
};

static const struct filter filters[] = {
    {DLT_EN10MB, "tcp and dst port 80"},
    {DLT_EN10MB, "udp"},
    {DLT_EN10MB, "tcp"},
    {DLT_EN10MB, "ip6"},
    {DLT_EN10MB, "vlan"},
    {DLT_EN10MB, "port 53"},
    {DLT_EN10MB, "tcp and port 443"},
    {DLT_EN10MB, "greater 1000"},
    {DLT_EN10MB, "less 100"},
    {DLT_EN10MB, "ip"},
    {DLT_EN10MB, "arp"},
    {DLT_EN10MB, "icmp"},
    {DLT_EN10MB, "icmp6"},
    {DLT_EN10MB, "tcp port 80"},
    {DLT_EN10MB, "udp port 53"},
    {DLT_EN10MB, "src port 443"},
    {DLT_EN10MB, "portrange 1000-2000"},
    {DLT_EN10MB, "tcp portrange 8000-8100"},
    {DLT_EN10MB, "udp dst portrange 1-1024"},
    {DLT_EN10MB, "host 192.168.1.1"},
    {DLT_EN10MB, "src host 10.0.0.1 or dst host 10.0.0.2"},
    {DLT_EN10MB, "net 10.0.0.0/8"},
    {DLT_EN10MB, "net 192.168.0.0/16 and not port 22"},
    {DLT_EN10MB, "dst net 172.16.0.0/12"},
    {DLT_EN10MB, "host 2001:db8::1"},
    {DLT_EN10MB, "net 2001:db8::/32"},
    {DLT_EN10MB, "ip6 net fe80::/10"},
    {DLT_EN10MB, "ip6 and tcp"},
    {DLT_EN10MB, "ip6 and udp port 53"},
    {DLT_EN10MB, "ip6 and ip6[6] = 17"},
    {DLT_EN10MB, "ip6 and ip6[6] = 6"},
    {DLT_EN10MB, "ip6 protochain 6"},
    {DLT_EN10MB, "ip protochain 17"},
    {DLT_EN10MB, "vlan and tcp"},
    {DLT_EN10MB, "vlan 100"},
    {DLT_EN10MB, "vlan and vlan"},
    {DLT_EN10MB, "vlan and udp port 53"},
    {DLT_EN10MB, "mpls"},
    {DLT_EN10MB, "mpls and icmp"},
    {DLT_EN10MB, "mpls 100000"},
    {DLT_EN10MB, "pppoes"},
    {DLT_EN10MB, "pppoes and ip"},
    {DLT_EN10MB, "tcp[tcpflags] & tcp-syn != 0"},
    {DLT_EN10MB, "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0"},
    {DLT_EN10MB, "tcp[tcpflags] = tcp-ack"},
    {DLT_EN10MB, "ip[2:2] > 576"},
    {DLT_EN10MB, "ip[8] < 64"},
    {DLT_EN10MB, "ip[6:2] & 0x1fff != 0"},
    {DLT_EN10MB, "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
    {DLT_EN10MB, "tcp[((tcp[12:1] & 0xf0) >> 2):2] = 0x4854"},
    {DLT_EN10MB, "udp[8:4] = 0"},
    {DLT_EN10MB, "tcp[20:1] = 0x16"},
    {DLT_EN10MB, "ether broadcast"},
    {DLT_EN10MB, "ether multicast"},
    {DLT_EN10MB, "ether host 00:11:22:33:44:55"},
    {DLT_EN10MB, "ether src 00:11:22:33:44:55 or ether dst ff:ff:ff:ff:ff:ff"},
    {DLT_EN10MB, "ip multicast"},
    {DLT_EN10MB, "ip broadcast"},
    {DLT_EN10MB, "ip6 multicast"},
    {DLT_EN10MB, "icmp[icmptype] = icmp-echo"},
    {DLT_EN10MB, "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply"},
    {DLT_EN10MB, "ip[2:2] * 2 / 3 % 7 > 100"},
    {DLT_EN10MB, "ip[2:2] * 2 / 3 % 7 > 2"},
    {DLT_EN10MB, "ip[2:2] - ip[0] & 0xf + 3 > 40"},
    {DLT_EN10MB, "len - 14 > 1000"},
    {DLT_EN10MB, "len * 3 / 2 > 600"},
    {DLT_EN10MB, "ip[0] << 2 > 60"},
    {DLT_EN10MB, "ip[0] >> 1 = 34"},
    {DLT_EN10MB, "(ip[0] & 0xf) << (ip[1] & 0x3f) > 100"},
    {DLT_EN10MB, "ip[2:2] >> ip[9] != 0"},
    {DLT_EN10MB, "ip[2:2] ^ ip[4:2] > 0x7fff"},
    {DLT_EN10MB, "ip[2:2] | 1 = ip[2:2]"},
    {DLT_EN10MB, "ip[2:2] / (ip[8] - 64) > 3"},
    {DLT_EN10MB, "ip[2:2] % (ip[8] - 64) = 0"},
    {DLT_EN10MB, "-ip[0] > 0xffffff00"},
    {DLT_EN10MB, "len = ip[2:2] + 14"},
    {DLT_EN10MB, "ip[ip[0] & 0xf] = 0"},
    {DLT_EN10MB, "ip[(ip[0] & 0xf) * 4 : 2] = 443"},
    {DLT_EN10MB, "tcp and (tcp[2:2] = 80 or tcp[0:2] = 80)"},
    {DLT_EN10MB, "not ip and not ip6"},
    {DLT_EN10MB, "ip and not tcp and not udp"},
    {DLT_EN10MB, "ip6[40] = 135 and icmp6"},
    {DLT_EN10MB, "ip6[4:2] > 100"},
    {DLT_EN10MB, "sctp"},
    {DLT_EN10MB, "igmp"},
    {DLT_EN10MB, "gre"},
    {DLT_EN10MB, "proto 47"},
    {DLT_EN10MB, "ip proto 50 or ip proto 51"},
    {DLT_EN10MB, "rarp"},
    {DLT_EN10MB, "decnet"},
    {DLT_EN10MB, "stp"},
    {DLT_EN10MB, "llc"},
    {DLT_EN10MB, "ether proto 0x88cc"},
    {DLT_EN10MB, "ip host 8.8.8.8 and (udp or tcp)"},
    {DLT_EN10MB, "tcp and len > 1400"},
    {DLT_EN10MB, "udp and ip[6:2] & 0x3fff = 0"},
    {DLT_EN10MB, "geneve"},
    {DLT_EN10MB, "vxlan"},
    {DLT_LINUX_SLL, "tcp and dst port 80"},
    {DLT_LINUX_SLL, "udp port 53"},
    {DLT_LINUX_SLL, "ip6"},
    {DLT_LINUX_SLL, "host 10.0.0.1"},
    {DLT_LINUX_SLL, "tcp[tcpflags] & tcp-syn != 0"},
    {DLT_LINUX_SLL, "greater 1000"},
    {DLT_LINUX_SLL, "vlan"},
    {DLT_RAW, "tcp and dst port 80"},
    {DLT_RAW, "udp"},
    {DLT_RAW, "ip6 and tcp"},
    {DLT_RAW, "net 10.0.0.0/8"},
    {DLT_RAW, "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"},
    {DLT_RAW, "icmp[icmptype] = icmp-echo"},
    {DLT_RAW, "less 100"},
};

#define INS(c, t, f, kk)                                                                           \
    {                                                                                              \
        (u_short)(c), (u_char)(t), (u_char)(f), (bpf_u_int32)(kk)                                  \
    }

/* Random program: zeroes M[], then random ALU/load/jump/store instructions, ends RET A. */
static unsigned random_program(struct bpf_insn *p, unsigned max)
{
    static const uint16_t ops[] = {
        BPF_LD | BPF_W | BPF_ABS,
        BPF_LD | BPF_H | BPF_ABS,
        BPF_LD | BPF_B | BPF_ABS,
        BPF_LD | BPF_W | BPF_IND,
        BPF_LD | BPF_H | BPF_IND,
        BPF_LD | BPF_B | BPF_IND,
        BPF_LDX | BPF_MSH | BPF_B,
        BPF_LD | BPF_W | BPF_LEN,
        BPF_LDX | BPF_W | BPF_LEN,
        BPF_LD | BPF_IMM,
        BPF_LDX | BPF_IMM,
        BPF_LD | BPF_MEM,
        BPF_LDX | BPF_MEM,
        BPF_ST,
        BPF_STX,
        BPF_JMP | BPF_JA,
        BPF_JMP | BPF_JGT | BPF_K,
        BPF_JMP | BPF_JGE | BPF_K,
        BPF_JMP | BPF_JEQ | BPF_K,
        BPF_JMP | BPF_JSET | BPF_K,
        BPF_JMP | BPF_JGT | BPF_X,
        BPF_JMP | BPF_JGE | BPF_X,
        BPF_JMP | BPF_JEQ | BPF_X,
        BPF_JMP | BPF_JSET | BPF_X,
        BPF_ALU | BPF_ADD | BPF_K,
        BPF_ALU | BPF_SUB | BPF_K,
        BPF_ALU | BPF_MUL | BPF_K,
        BPF_ALU | BPF_DIV | BPF_K,
        BPF_ALU | BPF_MOD | BPF_K,
        BPF_ALU | BPF_AND | BPF_K,
        BPF_ALU | BPF_OR | BPF_K,
        BPF_ALU | BPF_XOR | BPF_K,
        BPF_ALU | BPF_LSH | BPF_K,
        BPF_ALU | BPF_RSH | BPF_K,
        BPF_ALU | BPF_ADD | BPF_X,
        BPF_ALU | BPF_SUB | BPF_X,
        BPF_ALU | BPF_MUL | BPF_X,
        BPF_ALU | BPF_DIV | BPF_X,
        BPF_ALU | BPF_MOD | BPF_X,
        BPF_ALU | BPF_AND | BPF_X,
        BPF_ALU | BPF_OR | BPF_X,
        BPF_ALU | BPF_XOR | BPF_X,
        BPF_ALU | BPF_LSH | BPF_X,
        BPF_ALU | BPF_RSH | BPF_X,
        BPF_ALU | BPF_NEG,
        BPF_MISC | BPF_TAX,
        BPF_MISC | BPF_TXA,
        BPF_RET | BPF_K,
    };
    unsigned n = 0, body = 4 + rnd() % (max - BPF_MEMWORDS - 4), i;

    for (i = 0; i < BPF_MEMWORDS; i++)
        p[n++] = (struct bpf_insn)INS(BPF_ST, 0, 0, i);
    for (i = 0; i < body; i++) {
        uint16_t code = ops[rnd() % (sizeof(ops) / sizeof(ops[0]))];
        unsigned left = body - i; /* instructions after this one, counting the final RET */
        uint32_t k;

        switch (rnd() % 4) {
        case 0:
            k = rnd();
            break;
        case 1:
            k = rnd() % 64;
            break;
        case 2:
            k = 28 + rnd() % 8;
            break;
        default:
            k = (uint32_t) - (int32_t)(rnd() % 8);
            break;
        }
        switch (BPF_CLASS(code)) {
        case BPF_LD:
        case BPF_LDX:
            if (BPF_MODE(code) == BPF_MEM)
                k = rnd() % BPF_MEMWORDS;
            else if (BPF_MODE(code) != BPF_IMM && rnd() % 8 != 0)
                k = rnd() % 80;
            break;
        case BPF_ST:
        case BPF_STX:
            k = rnd() % BPF_MEMWORDS;
            break;
        case BPF_JMP:
            if (BPF_OP(code) == BPF_JA)
                k = rnd() % left;
            break;
        case BPF_ALU:
            if ((BPF_OP(code) == BPF_DIV || BPF_OP(code) == BPF_MOD) && BPF_SRC(code) == BPF_K &&
                k == 0)
                k = 3;
            if ((BPF_OP(code) == BPF_LSH || BPF_OP(code) == BPF_RSH) && BPF_SRC(code) == BPF_K)
                k %= 32;
            break;
        default:
            break;
        }
        p[n] = (struct bpf_insn)INS(code, 0, 0, k);
        if (BPF_CLASS(code) == BPF_JMP && BPF_OP(code) != BPF_JA) {
            unsigned span = left < 256 ? left : 256;

            p[n].jt = (u_char)(rnd() % span);
            p[n].jf = (u_char)(rnd() % span);
        }
        n++;
    }
    p[n++] = (struct bpf_insn)INS(BPF_RET | BPF_A, 0, 0, 0);
    return n;
}

static int test_hand_written(void)
{
    /* A = word at [0], X = word at [4] (or small), then the operation, RET A. */
    static const uint16_t alu_x[] = {
        BPF_ALU | BPF_ADD | BPF_X, BPF_ALU | BPF_SUB | BPF_X, BPF_ALU | BPF_MUL | BPF_X,
        BPF_ALU | BPF_DIV | BPF_X, BPF_ALU | BPF_MOD | BPF_X, BPF_ALU | BPF_AND | BPF_X,
        BPF_ALU | BPF_OR | BPF_X,  BPF_ALU | BPF_XOR | BPF_X, BPF_ALU | BPF_LSH | BPF_X,
        BPF_ALU | BPF_RSH | BPF_X,
    };
    static const uint16_t alu_k[] = {
        BPF_ALU | BPF_ADD | BPF_K, BPF_ALU | BPF_SUB | BPF_K, BPF_ALU | BPF_MUL | BPF_K,
        BPF_ALU | BPF_DIV | BPF_K, BPF_ALU | BPF_MOD | BPF_K, BPF_ALU | BPF_AND | BPF_K,
        BPF_ALU | BPF_OR | BPF_K,  BPF_ALU | BPF_XOR | BPF_K, BPF_ALU | BPF_LSH | BPF_K,
        BPF_ALU | BPF_RSH | BPF_K,
    };
    static const uint32_t ks[] = {0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 255, 0x80000000u, 0xffffffffu};
    static const uint32_t xs[] = {0, 1, 5, 31, 32, 33, 40, 64, 0xffffffffu};
    uint8_t pk[64];
    unsigned a, i, j, nprog = 0;
    int failed = 0;

    for (i = 0; i < sizeof(alu_x) / sizeof(alu_x[0]); i++) {
        for (j = 0; j < sizeof(xs) / sizeof(xs[0]); j++) {
            struct bpf_insn p[] = {INS(BPF_LDX | BPF_IMM, 0, 0, xs[j]),
                                   INS(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0), INS(alu_x[i], 0, 0, 0),
                                   INS(BPF_RET | BPF_A, 0, 0, 0)};
            struct bpf_insn q[] = {INS(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),
                                   INS(BPF_MISC | BPF_TAX, 0, 0, 0),
                                   INS(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0), INS(alu_x[i], 0, 0, 0),
                                   INS(BPF_RET | BPF_A, 0, 0, 0)};
            struct bpf_jit *jp = bpf_jit_compile(p, 4), *jq = bpf_jit_compile(q, 5);

            if (jp == NULL || jq == NULL) {
                fprintf(stderr, "FAIL: hand-written ALU X program not compiled\n");
                return 1;
            }
            for (a = 0; a < 2000; a++) {
                uint32_t c;

                for (c = 0; c < sizeof(pk); c++)
                    pk[c] = (uint8_t)rnd();
                if (a % 4 == 0)
                    pk[4] = pk[5] = pk[6] = pk[7] = 0; /* X = 0 through the packet */
                if (a % 4 == 1)
                    pk[4] = pk[5] = pk[6] = 0; /* small X: shift counts 0..255 */
                compare("alu-x-imm", p, jp, pk, sizeof(pk), sizeof(pk));
                compare("alu-x-pkt", q, jq, pk, sizeof(pk), sizeof(pk));
            }
            bpf_jit_free(jp);
            bpf_jit_free(jq);
            nprog += 2;
        }
    }
    for (i = 0; i < sizeof(alu_k) / sizeof(alu_k[0]); i++) {
        for (j = 0; j < sizeof(ks) / sizeof(ks[0]); j++) {
            struct bpf_insn p[] = {INS(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
                                   INS(alu_k[i], 0, 0, ks[j]), INS(BPF_RET | BPF_A, 0, 0, 0)};
            struct bpf_jit *jp = bpf_jit_compile(p, 3);

            if ((ks[j] == 0 && (BPF_OP(alu_k[i]) == BPF_DIV || BPF_OP(alu_k[i]) == BPF_MOD)) ||
                (ks[j] >= 32 && (BPF_OP(alu_k[i]) == BPF_LSH || BPF_OP(alu_k[i]) == BPF_RSH))) {
                /* the interpreter would trap or do undefined behaviour; the JIT must refuse */
                if (jp != NULL) {
                    fprintf(stderr, "FAIL: division by constant 0 or shift >= 32 accepted\n");
                    failed = 1;
                }
                bpf_jit_free(jp);
                continue;
            }
            if (jp == NULL) {
                fprintf(stderr, "FAIL: hand-written ALU K program not compiled\n");
                return 1;
            }
            for (a = 0; a < 500; a++) {
                uint32_t c;

                for (c = 0; c < sizeof(pk); c++)
                    pk[c] = (uint8_t)rnd();
                compare("alu-k", p, jp, pk, sizeof(pk), sizeof(pk));
            }
            bpf_jit_free(jp);
            nprog++;
        }
    }
    {
        /* NEG, scratch memory, TAX/TXA, JSET K and X, RET A, RET K, LEN. */
        struct bpf_insn p[] = {
            INS(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),    /* 0: A = w[0] */
            INS(BPF_ALU | BPF_NEG, 0, 0, 0),           /* 1: A = -A */
            INS(BPF_ST, 0, 0, 3),                      /* 2: M[3] = A */
            INS(BPF_LD | BPF_H | BPF_ABS, 0, 0, 6),    /* 3: A = h[6] */
            INS(BPF_MISC | BPF_TAX, 0, 0, 0),          /* 4: X = A */
            INS(BPF_STX, 0, 0, 15),                    /* 5: M[15] = X */
            INS(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0),    /* 6: A = len */
            INS(BPF_ST, 0, 0, 0),                      /* 7: M[0] = A */
            INS(BPF_LDX | BPF_MEM, 0, 0, 3),           /* 8: X = M[3] */
            INS(BPF_MISC | BPF_TXA, 0, 0, 0),          /* 9: A = X */
            INS(BPF_JMP | BPF_JSET | BPF_K, 0, 2, 1),  /* 10: A & 1 ? 11 : 13 */
            INS(BPF_LD | BPF_MEM, 0, 0, 15),           /* 11: A = M[15] */
            INS(BPF_RET | BPF_A, 0, 0, 0),             /* 12 */
            INS(BPF_LDX | BPF_MEM, 0, 0, 15),          /* 13: X = M[15] */
            INS(BPF_JMP | BPF_JSET | BPF_X, 1, 0, 0),  /* 14: A & X ? 16 : 15 */
            INS(BPF_RET | BPF_K, 0, 0, 0x12345678),    /* 15 */
            INS(BPF_LDX | BPF_W | BPF_LEN, 0, 0, 0),   /* 16: X = len */
            INS(BPF_LD | BPF_MEM, 0, 0, 0),            /* 17: A = M[0] */
            INS(BPF_JMP | BPF_JEQ | BPF_X, 0, 1, 0),   /* 18: A == X ? 19 : 20 */
            INS(BPF_RET | BPF_K, 0, 0, 0xffffffffu),   /* 19 */
            INS(BPF_LDX | BPF_MSH | BPF_B, 0, 0, 9),   /* 20: X = 4 * (b[9] & 0xf) */
            INS(BPF_LD | BPF_B | BPF_IND, 0, 0, 1),    /* 21: A = b[X + 1] */
            INS(BPF_JMP | BPF_JGE | BPF_X, 0, 1, 0),   /* 22 */
            INS(BPF_LD | BPF_H | BPF_IND, 0, 0, 0),    /* 23: A = h[X] */
            INS(BPF_JMP | BPF_JGT | BPF_K, 1, 0, 100), /* 24 */
            INS(BPF_JMP | BPF_JA, 0, 0, 1),            /* 25: to 27 */
            INS(BPF_RET | BPF_K, 0, 0, 7),             /* 26 */
            INS(BPF_LD | BPF_W | BPF_IND, 0, 0, 2),    /* 27: A = w[X + 2] */
            INS(BPF_RET | BPF_A, 0, 0, 0),             /* 28 */
        };
        struct bpf_jit *jp = bpf_jit_compile(p, sizeof(p) / sizeof(p[0]));

        if (jp == NULL) {
            fprintf(stderr, "FAIL: hand-written misc program not compiled\n");
            return 1;
        }
        for (a = 0; a < 200000; a++) {
            uint32_t c, cap = rnd() % (sizeof(pk) + 1);

            for (c = 0; c < sizeof(pk); c++)
                pk[c] = (uint8_t)(a % 3 ? rnd() % 4 : rnd());
            compare("misc", p, jp, pk, cap, a % 5 ? cap : cap + rnd() % 3);
        }
        bpf_jit_free(jp);
        nprog++;
    }
    {
        /* Unsupported programs must be refused. */
        struct bpf_insn bad_op[] = {INS(0xff, 0, 0, 0), INS(BPF_RET | BPF_A, 0, 0, 0)};
        struct bpf_insn bad_jump[] = {INS(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 0),
                                      INS(BPF_RET | BPF_A, 0, 0, 0)};
        struct bpf_insn bad_mem[] = {INS(BPF_ST, 0, 0, 16), INS(BPF_RET | BPF_A, 0, 0, 0)};
        struct bpf_insn no_ret[] = {INS(BPF_LD | BPF_IMM, 0, 0, 1)};
        struct bpf_insn bad_ja[] = {INS(BPF_JMP | BPF_JA, 0, 0, (uint32_t)-2),
                                    INS(BPF_RET | BPF_A, 0, 0, 0)};

        if (bpf_jit_compile(bad_op, 2) || bpf_jit_compile(bad_jump, 2) ||
            bpf_jit_compile(bad_mem, 2) || bpf_jit_compile(no_ret, 1) ||
            bpf_jit_compile(bad_ja, 2) || bpf_jit_compile(bad_op, 0)) {
            fprintf(stderr, "FAIL: an invalid program was accepted\n");
            failed = 1;
        }
    }
    printf("hand-written programs: %u\n", nprog);
    return failed;
}

static int test_random_programs(unsigned count)
{
    struct bpf_insn p[80];
    uint8_t pk[96];
    unsigned i, a;

    for (i = 0; i < count; i++) {
        unsigned n = random_program(p, sizeof(p) / sizeof(p[0]));
        struct bpf_jit *j = bpf_jit_compile(p, n);

        if (j == NULL) {
            fprintf(stderr, "FAIL: random program %u not compiled\n", i);
            return 1;
        }
        for (a = 0; a < 40; a++) {
            uint32_t c, cap = a < 20 ? sizeof(pk) : rnd() % (sizeof(pk) + 1);

            for (c = 0; c < sizeof(pk); c++)
                pk[c] = (uint8_t)(a % 2 ? rnd() % 8 : rnd());
            compare("random", p, j, pk, cap, cap + (a % 3 ? 0 : rnd() % 100));
        }
        bpf_jit_free(j);
    }
    printf("random programs: %u\n", count);
    return 0;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int bench(const char *path, size_t max)
{
    static const char *w3[] = {
        "tcp and dst port 80", "udp",         "tcp", "ip6", "vlan", "port 53",
        "tcp and port 443",    "greater 1000"};
    struct bpf_program progs[8];
    struct bpf_jit *jits[8];
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    unsigned long long acc_i = 0, acc_j = 0;
    double t0, ti, tj, best_i = 1e30, best_j = 1e30;
    size_t i, f;
    int rep;

    if (load_capture(path, max) == 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    for (f = 0; f < 8; f++) {
        if (pcap_compile(dead, &progs[f], w3[f], 1, PCAP_NETMASK_UNKNOWN) != 0)
            return 1;
        jits[f] = bpf_jit_compile(progs[f].bf_insns, progs[f].bf_len);
        if (jits[f] == NULL)
            return 1;
    }
    for (rep = 0; rep < 5; rep++) {
        t0 = now_ns();
        for (i = 0; i < npkts; i++)
            for (f = 0; f < 8; f++)
                acc_i += bpf_filter(progs[f].bf_insns, pkts[i].data, pkts[i].wirelen,
                                    pkts[i].caplen) != 0;
        ti = now_ns() - t0;
        t0 = now_ns();
        for (i = 0; i < npkts; i++)
            for (f = 0; f < 8; f++)
                acc_j += bpf_jit_run(jits[f], pkts[i].data, pkts[i].wirelen, pkts[i].caplen) != 0;
        tj = now_ns() - t0;
        best_i = ti < best_i ? ti : best_i;
        best_j = tj < best_j ? tj : best_j;
    }
    printf("%zu packets x 8 filters, best of 5: interpreter %.2f ns/eval, jit %.2f ns/eval, "
           "speedup %.2fx (matches %llu / %llu)\n",
           npkts, best_i / (npkts * 8.0), best_j / (npkts * 8.0), best_i / best_j, acc_i, acc_j);
    return acc_i != acc_j;
}

int main(int argc, char **argv)
{
    char path[4096];
    struct dirent *de;
    DIR *dir;
    size_t f, compiled = 0;
    int failed = 0;

    if (argc >= 3 && strcmp(argv[1], "--bench") == 0)
        return bench(argv[2], argc >= 4 ? strtoul(argv[3], NULL, 0) : 200000);
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATADIR | --bench FILE [N]\n", argv[0]);
        return 2;
    }
#if !defined(__x86_64__)
    printf("not x86-64: the JIT is disabled\n");
    return 77;
#endif
    guard_init();
    dir = opendir(argv[1]);
    if (dir == NULL) {
        perror(argv[1]);
        return 1;
    }
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);

        if ((len > 5 && strcmp(de->d_name + len - 5, ".pcap") == 0) ||
            (len > 7 && strcmp(de->d_name + len - 7, ".pcapng") == 0)) {
            snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
            load_capture(path, 100000);
        }
    }
    closedir(dir);
    printf("packets: %zu\n", npkts);
    if (npkts < 100) {
        fprintf(stderr, "FAIL: too few packets in %s\n", argv[1]);
        return 1;
    }
    for (f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
        pcap_t *dead = pcap_open_dead(filters[f].dlt, 65535);
        struct bpf_program prog;
        struct bpf_jit *jit;

        if (pcap_compile(dead, &prog, filters[f].expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            printf("not accepted by pcap_compile (dlt %d): \"%s\": %s\n", filters[f].dlt,
                   filters[f].expr, pcap_geterr(dead));
            pcap_close(dead);
            continue;
        }
        pcap_close(dead);
        jit = bpf_jit_compile(prog.bf_insns, prog.bf_len);
        if (jit == NULL) {
            fprintf(stderr, "FAIL: JIT refused pcap_compile output for \"%s\"\n", filters[f].expr);
            failed = 1;
        } else {
            run_all(filters[f].expr, prog.bf_insns, jit, 8);
            bpf_jit_free(jit);
            compiled++;
        }
        pcap_freecode(&prog);
    }
    printf("filters compiled and compared: %zu; (filter, packet) pairs so far: %llu\n", compiled,
           compared);
    if (compiled < 60) {
        fprintf(stderr, "FAIL: only %zu filters\n", compiled);
        failed = 1;
    }
    failed |= test_hand_written();
    failed |= test_random_programs(20000);
    printf("total comparisons: %llu, mismatches: %llu\n", compared, mismatches);
    for (f = 0; f < npkts; f++)
        free(pkts[f].data);
    free(pkts);
    return failed || mismatches != 0;
}
