/*
 * tests/fuzz/bpf_jit_fuzz.c - libFuzzer target for the BPF JIT of stdflib
 * (flib/stdflib/bpf_jit.c), differentially against libpcap's interpreter bpf_filter().
 *
 * Input: byte 0 selects the mode.
 *   even: a raw program: byte 1 gives the instruction count (1..64), then 8 bytes per
 *         instruction (code, jt, jf, k); programs libpcap's bpf_validate() refuses are
 *         skipped (mapid only ever runs what pcap_compile produced);
 *   odd:  a filter expression (up to the first NUL byte) compiled by pcap_compile for
 *         Ethernet, with the optimiser when bit 1 of byte 0 is set.
 * The rest of the input is a packet. Property: whenever bpf_jit_compile() accepts the
 * program, bpf_jit_run() returns exactly bpf_filter()'s value on that packet for several
 * capture lengths (all of it, half, none, one byte) and wire lengths (= caplen, larger).
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flib/stdflib/bpf_jit.h"

static void compare(const struct bpf_insn *insns, unsigned n, const uint8_t *pkt, size_t len)
{
    struct bpf_jit *jit = bpf_jit_compile(insns, n);
    if (!jit)
        return;
    uint32_t caps[4] = {(uint32_t)len, (uint32_t)len / 2, 0, len ? 1u : 0u};
    for (int i = 0; i < 4; i++) {
        uint32_t cap = caps[i];
        uint8_t *copy = malloc(cap ? cap : 1); /* exact size: ASan sees an over-read */
        if (!copy)
            abort();
        memcpy(copy, pkt, cap);
        uint32_t wires[2] = {cap, cap + 1000};
        for (int w = 0; w < 2; w++) {
            unsigned want = bpf_filter(insns, copy, wires[w], cap);
            unsigned got = bpf_jit_run(jit, copy, wires[w], cap);
            if (want != got)
                abort();
        }
        free(copy);
    }
    bpf_jit_free(jit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if ((data[0] & 1) == 0) {
        unsigned n = data[1] % 64u + 1;
        if (size < 2 + 8 * (size_t)n)
            return 0;
        struct bpf_insn *insns = calloc(n, sizeof *insns);
        if (!insns)
            abort();
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *b = data + 2 + 8 * i;
            insns[i].code = (uint16_t)(b[0] | b[1] << 8);
            insns[i].jt = b[2];
            insns[i].jf = b[3];
            insns[i].k =
                (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        }
        if (bpf_validate(insns, (int)n))
            compare(insns, n, data + 2 + 8 * n, size - 2 - 8 * n);
        free(insns);
        return 0;
    }
    const uint8_t *e = data + 1, *nul = memchr(e, 0, size - 1);
    if (!nul)
        return 0;
    char *expr = strndup((const char *)e, (size_t)(nul - e));
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
    if (!expr || !p)
        abort();
    struct bpf_program prog;
    if (pcap_compile(p, &prog, expr, (data[0] & 2) != 0, PCAP_NETMASK_UNKNOWN) == 0) {
        if (!bpf_validate(prog.bf_insns, (int)prog.bf_len))
            abort(); /* pcap_compile's output is always valid */
        compare(prog.bf_insns, prog.bf_len, nul + 1, (size_t)(data + size - nul - 1));
        pcap_freecode(&prog);
    }
    pcap_close(p);
    free(expr);
    return 0;
}
