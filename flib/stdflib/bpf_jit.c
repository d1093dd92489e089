/*
 * flib/stdflib/bpf_jit.c - classic BPF to x86-64 machine code (see bpf_jit.h for the contract).
 *
 * Register map of the generated function unsigned f(const uint8_t *pkt, uint32_t wirelen,
 * uint32_t caplen) (System V ABI): A = eax, X = ecx, pkt = rdi, wirelen = esi, caplen = r8
 * (zero-extended copy of edx, which div clobbers), r9/r10/edx scratch. The scratch memory
 * M[0..15] lives in the red zone below rsp (the function is a leaf and needs no frame).
 *
 * Every BPF instruction is translated to a sequence whose length depends only on the
 * instruction itself (all jumps use 32-bit displacements, no relaxation), so a first pass
 * with unknown targets yields the start offset of each instruction and the second pass emits
 * the final code. Rejections (load out of bounds, division by zero) jump to a shared
 * "return 0" tail. The buffer is mapped read-write, filled, then made read+execute (W^X).
 *
 * The semantics copy libpcap 1.10's pcap_filter_with_aux_data() without aux data:
 *   - A = X = 0 at entry; BPF_LEN loads wirelen;
 *   - ABS loads of n bytes at k reject unless k + n <= caplen (computed without overflow);
 *     IND loads reject unless X + k + n <= caplen in 64-bit arithmetic, which is exactly the
 *     interpreter's chain of overflow-safe comparisons; BPF_MSH likewise for 1 byte at k;
 *   - DIV/MOD by X == 0 return 0; by a constant 0 the program is refused (the interpreter
 *     would trap; libpcap's validator refuses it too);
 *   - shifts by X >= 32 give 0 (libpcap 1.10 tests "X < 32"); programs shifting by a
 *     constant K >= 32 are refused (the interpreter's "A <<= pc->k" is undefined behaviour
 *     there and libpcap's validator refuses them);
 *   - NEG is two's complement; arithmetic is unsigned 32-bit;
 *   - JA may jump backwards (libpcap's "protochain" code does), any target must lie inside
 *     the program and the last instruction must not fall off the end.
 * Extension loads (SKF_AD_OFF + n) are ordinary huge offsets here, as they are for the
 * userspace interpreter with no aux data: both reject them because they exceed any caplen.
 */
#include "bpf_jit.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <sys/mman.h>
#include <unistd.h>
#endif

typedef unsigned (*bpf_jit_fn)(const uint8_t *pkt, uint32_t wirelen, uint32_t caplen);

struct bpf_jit {
    bpf_jit_fn fn;
    void *mem;
    size_t mapped;
};

#if defined(__x86_64__)

/* Code buffer: with buf == NULL only counts bytes (first pass). */
struct emitter {
    uint8_t *buf;
    size_t len;
};

static void emit_bytes(struct emitter *e, const void *bytes, size_t n)
{
    if (e->buf != NULL)
        memcpy(e->buf + e->len, bytes, n);
    e->len += n;
}

#define EMIT(e, ...)                                                                               \
    do {                                                                                           \
        static const uint8_t bytes_[] = {__VA_ARGS__};                                             \
        emit_bytes((e), bytes_, sizeof(bytes_));                                                   \
    } while (0)

static void emit_u8(struct emitter *e, uint8_t v)
{
    emit_bytes(e, &v, 1);
}

static void emit_u32(struct emitter *e, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    emit_bytes(e, b, 4);
}

/* Little-endian rel32 to target from the end of the current instruction (end = len + 4). */
static void emit_rel32(struct emitter *e, size_t target)
{
    emit_u32(e, (uint32_t)(int32_t)((int64_t)target - (int64_t)(e->len + 4)));
}

/* jmp rel32 */
static void emit_jmp(struct emitter *e, size_t target)
{
    emit_u8(e, 0xE9);
    emit_rel32(e, target);
}

/* jcc rel32, cc is the low nibble of the 0F 8x opcode */
static void emit_jcc(struct emitter *e, uint8_t cc, size_t target)
{
    emit_u8(e, 0x0F);
    emit_u8(e, (uint8_t)(0x80 | cc));
    emit_rel32(e, target);
}

enum { CC_B = 0x2, CC_AE = 0x3, CC_E = 0x4, CC_NE = 0x5, CC_BE = 0x6, CC_A = 0x7 };

/* Load widths for emit_load: 4, 2 or 1 byte into eax, or 1 byte for MSH into ecx. */
enum load_kind { LOAD_W, LOAD_H, LOAD_B, LOAD_MSH };

/* The load itself from [rdi + r9] (r9 = zero-extended offset), bounds already checked. */
static void emit_load_r9(struct emitter *e, enum load_kind kind)
{
    switch (kind) {
    case LOAD_W:
        EMIT(e, 0x42, 0x8B, 0x04, 0x0F); /* mov eax, [rdi + r9] */
        EMIT(e, 0x0F, 0xC8);             /* bswap eax */
        break;
    case LOAD_H:
        EMIT(e, 0x42, 0x0F, 0xB7, 0x04, 0x0F); /* movzx eax, word [rdi + r9] */
        EMIT(e, 0x66, 0xC1, 0xC0, 0x08);       /* rol ax, 8 */
        break;
    case LOAD_B:
        EMIT(e, 0x42, 0x0F, 0xB6, 0x04, 0x0F); /* movzx eax, byte [rdi + r9] */
        break;
    case LOAD_MSH:
        EMIT(e, 0x42, 0x0F, 0xB6, 0x0C, 0x0F); /* movzx ecx, byte [rdi + r9] */
        EMIT(e, 0x83, 0xE1, 0x0F);             /* and ecx, 0xf */
        EMIT(e, 0xC1, 0xE1, 0x02);             /* shl ecx, 2 */
        break;
    }
}

/* The load from [rdi + k], k < 2^31, bounds already checked. */
static void emit_load_abs(struct emitter *e, enum load_kind kind, uint32_t k)
{
    switch (kind) {
    case LOAD_W:
        EMIT(e, 0x8B, 0x87); /* mov eax, [rdi + disp32] */
        emit_u32(e, k);
        EMIT(e, 0x0F, 0xC8); /* bswap eax */
        break;
    case LOAD_H:
        EMIT(e, 0x0F, 0xB7, 0x87); /* movzx eax, word [rdi + disp32] */
        emit_u32(e, k);
        EMIT(e, 0x66, 0xC1, 0xC0, 0x08); /* rol ax, 8 */
        break;
    case LOAD_B:
        EMIT(e, 0x0F, 0xB6, 0x87); /* movzx eax, byte [rdi + disp32] */
        emit_u32(e, k);
        break;
    case LOAD_MSH:
        EMIT(e, 0x0F, 0xB6, 0x8F); /* movzx ecx, byte [rdi + disp32] */
        emit_u32(e, k);
        EMIT(e, 0x83, 0xE1, 0x0F); /* and ecx, 0xf */
        EMIT(e, 0xC1, 0xE1, 0x02); /* shl ecx, 2 */
        break;
    }
}

/* Absolute load of size bytes at k: reject unless k + size <= caplen. */
static void emit_abs(struct emitter *e, enum load_kind kind, uint32_t size, uint32_t k, size_t ret0)
{
    if (k > UINT32_MAX - size) { /* k + size > any caplen */
        emit_jmp(e, ret0);
        return;
    }
    EMIT(e, 0x41, 0x81, 0xF8); /* cmp r8d, imm32 */
    emit_u32(e, k + size);
    emit_jcc(e, CC_B, ret0); /* caplen < k + size: reject */
    if (k <= INT32_MAX) {
        emit_load_abs(e, kind, k);
    } else {
        EMIT(e, 0x41, 0xB9); /* mov r9d, imm32 */
        emit_u32(e, k);
        emit_load_r9(e, kind);
    }
}

/* Indirect load of size bytes at X + k: reject unless X + k + size <= caplen (64-bit). */
static void emit_ind(struct emitter *e, enum load_kind kind, uint32_t size, uint32_t k, size_t ret0)
{
    EMIT(e, 0x41, 0x89, 0xC9); /* mov r9d, ecx */
    EMIT(e, 0x41, 0xBA);       /* mov r10d, imm32 */
    emit_u32(e, k);
    EMIT(e, 0x4D, 0x01, 0xD1); /* add r9, r10 */
    EMIT(e, 0x4D, 0x8D, 0x51); /* lea r10, [r9 + disp8 size] */
    emit_u8(e, (uint8_t)size);
    EMIT(e, 0x4D, 0x39, 0xC2); /* cmp r10, r8 */
    emit_jcc(e, CC_A, ret0);   /* X + k + size > caplen: reject */
    emit_load_r9(e, kind);
}

/* disp8 of M[k] in the red zone: [rsp - 64 + 4k] */
static uint8_t mem_disp(uint32_t k)
{
    return (uint8_t)(int8_t)(-64 + 4 * (int)k);
}

/* A conditional jump after a cmp/test: to jt if cc holds, else to jf. */
static int emit_cond(struct emitter *e, const size_t *off, unsigned n, unsigned i,
                     const struct bpf_insn *in, uint8_t cc)
{
    unsigned tt = i + 1 + in->jt, tf = i + 1 + in->jf;

    if (tt >= n || tf >= n)
        return -1;
    if (in->jt == in->jf) {
        if (in->jt != 0)
            emit_jmp(e, off[tt]);
    } else if (in->jf == 0) {
        emit_jcc(e, cc, off[tt]);
    } else if (in->jt == 0) {
        emit_jcc(e, cc ^ 1, off[tf]); /* x86 condition codes: cc ^ 1 is the negation */
    } else {
        emit_jcc(e, cc, off[tt]);
        emit_jmp(e, off[tf]);
    }
    return 0;
}

/*
 * One pass over the program. off[0..n] are the instruction start offsets and the "return 0"
 * tail (set when e->buf == NULL, checked otherwise). Returns 0, or -1 if unsupported.
 */
static int jit_pass(struct emitter *e, const struct bpf_insn *insns, unsigned n, size_t *off)
{
    int first = e->buf == NULL;
    size_t ret0 = off[n];
    unsigned i;

    EMIT(e, 0x41, 0x89, 0xD0); /* mov r8d, edx  (caplen) */
    EMIT(e, 0x31, 0xC0);       /* xor eax, eax  (A = 0) */
    EMIT(e, 0x31, 0xC9);       /* xor ecx, ecx  (X = 0) */
    for (i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        uint32_t k = in->k;

        if (first)
            off[i] = e->len;
        else if (off[i] != e->len)
            return -1;
        switch (in->code) {
        case BPF_RET | BPF_K:
            EMIT(e, 0xB8); /* mov eax, imm32 */
            emit_u32(e, k);
            EMIT(e, 0xC3); /* ret */
            break;
        case BPF_RET | BPF_A:
            EMIT(e, 0xC3);
            break;

        case BPF_LD | BPF_W | BPF_ABS:
            emit_abs(e, LOAD_W, 4, k, ret0);
            break;
        case BPF_LD | BPF_H | BPF_ABS:
            emit_abs(e, LOAD_H, 2, k, ret0);
            break;
        case BPF_LD | BPF_B | BPF_ABS:
            emit_abs(e, LOAD_B, 1, k, ret0);
            break;
        case BPF_LDX | BPF_MSH | BPF_B:
            emit_abs(e, LOAD_MSH, 1, k, ret0);
            break;
        case BPF_LD | BPF_W | BPF_IND:
            emit_ind(e, LOAD_W, 4, k, ret0);
            break;
        case BPF_LD | BPF_H | BPF_IND:
            emit_ind(e, LOAD_H, 2, k, ret0);
            break;
        case BPF_LD | BPF_B | BPF_IND:
            emit_ind(e, LOAD_B, 1, k, ret0);
            break;

        case BPF_LD | BPF_W | BPF_LEN:
            EMIT(e, 0x89, 0xF0); /* mov eax, esi */
            break;
        case BPF_LDX | BPF_W | BPF_LEN:
            EMIT(e, 0x89, 0xF1); /* mov ecx, esi */
            break;
        case BPF_LD | BPF_IMM:
            EMIT(e, 0xB8); /* mov eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_LDX | BPF_IMM:
            EMIT(e, 0xB9); /* mov ecx, imm32 */
            emit_u32(e, k);
            break;
        case BPF_LD | BPF_MEM:
        case BPF_LDX | BPF_MEM:
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS)
                return -1;
            emit_u8(e,
                    BPF_CLASS(in->code) == BPF_LD || BPF_CLASS(in->code) == BPF_LDX ? 0x8B : 0x89);
            /* modrm: eax (0x44) for LD/ST, ecx (0x4C) for LDX/STX; base rsp via SIB 0x24 */
            emit_u8(e, in->code == (BPF_LD | BPF_MEM) || in->code == BPF_ST ? 0x44 : 0x4C);
            emit_u8(e, 0x24);
            emit_u8(e, mem_disp(k));
            break;

        case BPF_JMP | BPF_JA: {
            int64_t t = (int64_t)i + 1 + (int32_t)k;

            if (t < 0 || t >= (int64_t)n)
                return -1;
            if (t != (int64_t)i + 1)
                emit_jmp(e, off[t]);
            break;
        }
        case BPF_JMP | BPF_JGT | BPF_K:
        case BPF_JMP | BPF_JGE | BPF_K:
        case BPF_JMP | BPF_JEQ | BPF_K:
            EMIT(e, 0x3D); /* cmp eax, imm32 */
            emit_u32(e, k);
            goto cond;
        case BPF_JMP | BPF_JSET | BPF_K:
            EMIT(e, 0xA9); /* test eax, imm32 */
            emit_u32(e, k);
            goto cond;
        case BPF_JMP | BPF_JGT | BPF_X:
        case BPF_JMP | BPF_JGE | BPF_X:
        case BPF_JMP | BPF_JEQ | BPF_X:
            EMIT(e, 0x39, 0xC8); /* cmp eax, ecx */
            goto cond;
        case BPF_JMP | BPF_JSET | BPF_X:
            EMIT(e, 0x85, 0xC8); /* test eax, ecx */
        cond : {
            uint8_t cc;

            switch (BPF_OP(in->code)) {
            case BPF_JGT:
                cc = CC_A;
                break;
            case BPF_JGE:
                cc = CC_AE;
                break;
            case BPF_JEQ:
                cc = CC_E;
                break;
            default: /* BPF_JSET */
                cc = CC_NE;
                break;
            }
            if (emit_cond(e, off, n, i, in, cc) != 0)
                return -1;
            break;
        }

        case BPF_ALU | BPF_ADD | BPF_K:
            EMIT(e, 0x05); /* add eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_SUB | BPF_K:
            EMIT(e, 0x2D); /* sub eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            EMIT(e, 0x25); /* and eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_OR | BPF_K:
            EMIT(e, 0x0D); /* or eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_XOR | BPF_K:
            EMIT(e, 0x35); /* xor eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_MUL | BPF_K:
            EMIT(e, 0x69, 0xC0); /* imul eax, eax, imm32 */
            emit_u32(e, k);
            break;
        case BPF_ALU | BPF_DIV | BPF_K:
        case BPF_ALU | BPF_MOD | BPF_K:
            if (k == 0)
                return -1;
            EMIT(e, 0x31, 0xD2); /* xor edx, edx */
            EMIT(e, 0x41, 0xB9); /* mov r9d, imm32 */
            emit_u32(e, k);
            EMIT(e, 0x41, 0xF7, 0xF1); /* div r9d */
            if (BPF_OP(in->code) == BPF_MOD)
                EMIT(e, 0x89, 0xD0); /* mov eax, edx */
            break;
        case BPF_ALU | BPF_LSH | BPF_K:
        case BPF_ALU | BPF_RSH | BPF_K:
            if (k >= 32) /* undefined in the interpreter, refused by libpcap's validator */
                return -1;
            EMIT(e, 0xC1); /* shl/shr eax, imm8 */
            emit_u8(e, BPF_OP(in->code) == BPF_LSH ? 0xE0 : 0xE8);
            emit_u8(e, (uint8_t)k);
            break;
        case BPF_ALU | BPF_ADD | BPF_X:
            EMIT(e, 0x01, 0xC8); /* add eax, ecx */
            break;
        case BPF_ALU | BPF_SUB | BPF_X:
            EMIT(e, 0x29, 0xC8); /* sub eax, ecx */
            break;
        case BPF_ALU | BPF_AND | BPF_X:
            EMIT(e, 0x21, 0xC8); /* and eax, ecx */
            break;
        case BPF_ALU | BPF_OR | BPF_X:
            EMIT(e, 0x09, 0xC8); /* or eax, ecx */
            break;
        case BPF_ALU | BPF_XOR | BPF_X:
            EMIT(e, 0x31, 0xC8); /* xor eax, ecx */
            break;
        case BPF_ALU | BPF_MUL | BPF_X:
            EMIT(e, 0x0F, 0xAF, 0xC1); /* imul eax, ecx */
            break;
        case BPF_ALU | BPF_DIV | BPF_X:
        case BPF_ALU | BPF_MOD | BPF_X:
            EMIT(e, 0x85, 0xC9); /* test ecx, ecx */
            emit_jcc(e, CC_E, ret0);
            EMIT(e, 0x31, 0xD2); /* xor edx, edx */
            EMIT(e, 0xF7, 0xF1); /* div ecx */
            if (BPF_OP(in->code) == BPF_MOD)
                EMIT(e, 0x89, 0xD0); /* mov eax, edx */
            break;
        case BPF_ALU | BPF_LSH | BPF_X:
        case BPF_ALU | BPF_RSH | BPF_X:
            if (BPF_OP(in->code) == BPF_LSH)
                EMIT(e, 0xD3, 0xE0); /* shl eax, cl  (count masked to 5 bits) */
            else
                EMIT(e, 0xD3, 0xE8);         /* shr eax, cl */
            EMIT(e, 0x45, 0x31, 0xC9);       /* xor r9d, r9d */
            EMIT(e, 0x83, 0xF9, 0x20);       /* cmp ecx, 32 */
            EMIT(e, 0x41, 0x0F, 0x43, 0xC1); /* cmovae eax, r9d  (X >= 32: A = 0) */
            break;
        case BPF_ALU | BPF_NEG:
            EMIT(e, 0xF7, 0xD8); /* neg eax */
            break;
        case BPF_MISC | BPF_TAX:
            EMIT(e, 0x89, 0xC1); /* mov ecx, eax */
            break;
        case BPF_MISC | BPF_TXA:
            EMIT(e, 0x89, 0xC8); /* mov eax, ecx */
            break;
        default:
            return -1;
        }
    }
    /* The last instruction must not fall through to the end. */
    if (insns[n - 1].code != (BPF_RET | BPF_K) && insns[n - 1].code != (BPF_RET | BPF_A) &&
        insns[n - 1].code != (BPF_JMP | BPF_JA))
        return -1;
    if (first)
        off[n] = e->len;
    else if (off[n] != e->len)
        return -1;
    EMIT(e, 0x31, 0xC0, 0xC3); /* xor eax, eax; ret */
    return 0;
}

struct bpf_jit *bpf_jit_compile(const struct bpf_insn *insns, unsigned n)
{
    struct emitter e = {NULL, 0};
    struct bpf_jit *jit;
    size_t *off, page, mapped;
    void *mem;

    if (insns == NULL || n == 0 || n > (1u << 20))
        return NULL;
    off = calloc((size_t)n + 1, sizeof(*off));
    if (off == NULL)
        return NULL;
    if (jit_pass(&e, insns, n, off) != 0) {
        free(off);
        return NULL;
    }
    page = (size_t)sysconf(_SC_PAGESIZE);
    mapped = (e.len + page - 1) / page * page;
    mem = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        free(off);
        return NULL;
    }
    e.buf = mem;
    e.len = 0;
    if (jit_pass(&e, insns, n, off) != 0 || mprotect(mem, mapped, PROT_READ | PROT_EXEC) != 0) {
        munmap(mem, mapped);
        free(off);
        return NULL;
    }
    free(off);
    jit = malloc(sizeof(*jit));
    if (jit == NULL) {
        munmap(mem, mapped);
        return NULL;
    }
    jit->mem = mem;
    jit->mapped = mapped;
    jit->fn = (bpf_jit_fn)mem;
    return jit;
}

void bpf_jit_free(struct bpf_jit *jit)
{
    if (jit == NULL)
        return;
    munmap(jit->mem, jit->mapped);
    free(jit);
}

#else /* !__x86_64__ */

struct bpf_jit *bpf_jit_compile(const struct bpf_insn *insns, unsigned n)
{
    (void)insns;
    (void)n;
    return NULL;
}

void bpf_jit_free(struct bpf_jit *jit)
{
    free(jit);
}

#endif

unsigned bpf_jit_run(const struct bpf_jit *jit, const uint8_t *pkt, uint32_t wirelen,
                     uint32_t caplen)
{
    return jit->fn(pkt, wirelen, caplen);
}
