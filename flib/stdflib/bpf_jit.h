/*
 * flib/stdflib/bpf_jit.h - a just-in-time compiler from classic BPF (the struct bpf_insn
 * programs pcap_compile() produces) to x86-64 machine code.
 *
 * BPF_FILTER (bpf_filter.c) compiles each expression with libpcap, then with bpf_jit_compile();
 * when that returns a program, process() runs it with bpf_jit_run() instead of libpcap's
 * interpreter bpf_filter(). The generated code has exactly the interpreter's semantics
 * (libpcap 1.10: A and X start at 0, loads past caplen return 0, division by zero returns 0,
 * shifts by X >= 32 give 0, BPF_LEN is wirelen). Programs with anything the interpreter would
 * not run or runs with undefined behaviour (unknown opcodes, jumps out of the program, scratch
 * index >= BPF_MEMWORDS, constant division by 0, constant shift >= 32) are refused:
 * bpf_jit_compile() returns NULL and the caller keeps using bpf_filter(). On architectures
 * other than x86-64 it always returns NULL. Verified by tests/test_bpf_jit.c.
 */
#ifndef MAPI_STDFLIB_BPF_JIT_H
#define MAPI_STDFLIB_BPF_JIT_H

#include <stdint.h>
#include <sys/types.h> /* u_int, u_char used by pcap/bpf.h */

#include <pcap/bpf.h>

struct bpf_jit;

/* Compiles insns[0..n); NULL if unsupported, on another architecture or out of memory. */
struct bpf_jit *bpf_jit_compile(const struct bpf_insn *insns, unsigned n);

/* Runs the program on pkt (caplen bytes readable, wirelen on the wire): bpf_filter()'s value. */
unsigned bpf_jit_run(const struct bpf_jit *jit, const uint8_t *pkt, uint32_t wirelen,
                     uint32_t caplen);

/* Frees a compiled program (NULL is fine). */
void bpf_jit_free(struct bpf_jit *jit);

#endif
