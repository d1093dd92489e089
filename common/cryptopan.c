/*
 * common/cryptopan.c - Crypto-PAn (Xu, Fan, Ammar, Moon: prefix-preserving IP address
 * anonymisation with AES-128 as the pseudo-random function), interface in common/cryptopan.h.
 *
 * The algorithm, as libtrace 3's traceanon computes it (checked bit for bit against
 * /usr/bin/traceanon of libtrace-tools 3.0.22 by tests/test_cryptopan.sh):
 *   - key[0..16) is the AES-128 key; pad = AES(key[16..32)) is the 128-bit padding block;
 *   - for every bit position p of the address (0 = most significant), the input block is the
 *     first p bits of the original address followed by the last 128 - p bits of pad; the most
 *     significant bit of AES(input block) is bit p of a one-time pad;
 *   - the anonymised address is the original XOR the one-time pad.
 * So bit p of the result depends only on the first p + 1 bits of the original: two addresses
 * that share a k-bit prefix map to addresses that share exactly a k-bit prefix.
 *
 * IPv6 uses the same construction over 128 bits with the same pad (libtrace 3.0.22's traceanon
 * does not anonymise IPv6 at all; libtrace 4 anonymises the two 64-bit halves independently
 * with an unencrypted pad, which is not prefix preserving across the halves, so we do not follow
 * it). Because the IPv4 input blocks equal the first 32 IPv6 input blocks, the first 32 bits
 * of the IPv6 result for an address whose first 32 bits are A are the IPv4 result for A.
 *
 * Differences from traceanon, on purpose: traceanon's two-entry "recent" cache starts filled
 * with (0.0.0.0 -> 0.0.0.0), so 0.0.0.0 stays 0.0.0.0 if it occurs before two other addresses
 * were anonymised; here the mapping is a pure function of the key and the address (the same in
 * every flow and run), and 0.0.0.0 always gets its real Crypto-PAn image.
 *
 * Speed: the input blocks of one address do not depend on each other, so all of them go to
 * OpenSSL in one ECB call (AES-NI pipelines them). On top, three caches per context:
 *   - l16: the one-time-pad bits 0..15 of every 16-bit prefix (65536 words, direct index);
 *   - l24: bits 16..23 of recently seen 24-bit prefixes (direct-mapped by a hash);
 *   - memo: recently anonymised addresses and their images (direct-mapped by a hash).
 * A repeated address costs a hash and a compare; a new address in a known /24 costs one call
 * of 8 AES blocks; in a known /16, 16 blocks; else 32. IPv6 has a memo of addresses and a cache
 * of the one-time-pad bits of 64-bit prefixes (64 blocks for a new address of a known /64).
 *
 * Direct-mapped tables without a valid flag: an entry is "empty" when its stored key hashes to
 * another slot; the multiplicative hash sends key 0 to slot 0, so zeroed tables are empty except
 * slot 0, which is initialised with key 1 (hash(1) != 0).
 */
#include "common/cryptopan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define CP_L24_BITS 16
#define CP_MEMO_BITS 16
#define CP_V6_BITS 12

struct cp_memo4 {
    uint32_t addr; /* original, host byte order */
    uint32_t anon; /* image, host byte order */
};

struct cp_memo6 {
    uint8_t in[16], out[16];
    uint8_t valid;
};

struct cp_pre6 {
    uint64_t prefix; /* first 64 bits of the original, host order */
    uint64_t otp;    /* one-time-pad bits 0..63 */
    uint8_t valid;
};

struct cryptopan {
    EVP_CIPHER_CTX *ctx;
    uint8_t pad[16]; /* AES(key[16..32)) */
    uint32_t pad4;   /* pad[0..4) as a host-order number */
    int failed;      /* OpenSSL failed once: every later address becomes 0 */
    /* 32 input blocks for IPv4, pad bytes 4..15 prefilled: only bytes 0..3 change per use. */
    uint8_t blocks4[32][16];
    uint32_t l16[65536];             /* otp bits 0..15 << 16 | 1, 0 = not computed */
    uint32_t l24[1u << CP_L24_BITS]; /* prefix24 << 8 | otp bits 16..23 */
    struct cp_memo4 memo[1u << CP_MEMO_BITS];
    struct cp_memo6 memo6[1u << CP_V6_BITS];
    struct cp_pre6 pre6[1u << CP_V6_BITS];
};

static inline uint32_t hash32(uint32_t x, unsigned bits)
{
    return (x * 0x9e3779b1u) >> (32 - bits);
}

static inline uint32_t hash64(uint64_t hi, uint64_t lo, unsigned bits)
{
    uint64_t h = hi * 0x9e3779b97f4a7c15ull ^ lo * 0xc2b2ae3d27d4eb4full;
    return (uint32_t)((h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull >> (64 - bits));
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* Encrypts n consecutive 16-byte blocks (ECB). Returns 0, or -1 (and marks the context
 * failed) if OpenSSL fails. */
static int cp_encrypt(struct cryptopan *cp, const uint8_t *in, uint8_t *out, int n)
{
    int outl = 0;
    if (cp->failed || EVP_EncryptUpdate(cp->ctx, out, &outl, in, n * 16) != 1 || outl != n * 16) {
        cp->failed = 1;
        return -1;
    }
    return 0;
}

void cryptopan_key_from_string(const char *s, uint8_t key[CRYPTOPAN_KEY_LEN])
{
    memset(key, 0, CRYPTOPAN_KEY_LEN);
    if (s != NULL)
        memcpy(key, s, strnlen(s, CRYPTOPAN_KEY_LEN));
}

struct cryptopan *cryptopan_new(const uint8_t key[CRYPTOPAN_KEY_LEN])
{
    struct cryptopan *cp = calloc(1, sizeof(*cp));
    if (cp == NULL)
        return NULL;
    cp->ctx = EVP_CIPHER_CTX_new();
    if (cp->ctx == NULL || EVP_EncryptInit_ex(cp->ctx, EVP_aes_128_ecb(), NULL, key, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(cp->ctx, 0) != 1 || cp_encrypt(cp, key + 16, cp->pad, 1) != 0) {
        cryptopan_free(cp);
        return NULL;
    }
    cp->pad4 = rd32(cp->pad);
    for (int i = 0; i < 32; i++)
        memcpy(cp->blocks4[i], cp->pad, 16);
    /* Empty markers of the direct-mapped tables (see the file comment). */
    cp->l24[0] = 1u << 8;
    cp->memo[0].addr = 1;
    return cp;
}

void cryptopan_free(struct cryptopan *cp)
{
    if (cp == NULL)
        return;
    EVP_CIPHER_CTX_free(cp->ctx);
    free(cp);
}

/* One-time-pad bits start..31 of host-order address a (bit p at 1 << (31 - p)). Returns them
 * (the other bits 0), or 0 with cp->failed set if OpenSSL fails. */
static uint32_t otp4(struct cryptopan *cp, uint32_t a, int start)
{
    uint8_t out[32][16];
    int n = 32 - start;
    for (int p = start; p < 32; p++) {
        uint32_t m = p == 0 ? 0 : ~0u << (32 - p);
        wr32(cp->blocks4[p - start], (a & m) | (cp->pad4 & ~m));
    }
    if (cp_encrypt(cp, cp->blocks4[0], out[0], n) != 0)
        return 0;
    uint32_t otp = 0;
    for (int i = 0; i < n; i++)
        otp |= (uint32_t)(out[i][0] >> 7) << (31 - (start + i));
    return otp;
}

uint32_t cryptopan_ip4(struct cryptopan *cp, uint32_t addr)
{
    const uint8_t *b = (const uint8_t *)&addr;
    uint32_t a = rd32(b); /* host order */
    struct cp_memo4 *m = &cp->memo[hash32(a, CP_MEMO_BITS)];
    if (m->addr == a) {
        uint32_t r;
        wr32((uint8_t *)&r, m->anon);
        return r;
    }

    if (cp->failed)
        return 0; /* never leak the original: see cp_encrypt */
    uint32_t otp, p24 = a >> 8;
    uint32_t *e16 = &cp->l16[a >> 16];
    uint32_t *e24 = &cp->l24[hash32(p24, CP_L24_BITS)];
    int fresh16 = *e16 == 0, hit24 = !fresh16 && (*e24 >> 8) == p24;
    if (fresh16)
        otp = otp4(cp, a, 0);
    else if (hit24)
        otp = (*e16 & 0xffff0000u) | (*e24 & 0xffu) << 8 | otp4(cp, a, 24);
    else
        otp = (*e16 & 0xffff0000u) | otp4(cp, a, 16);
    if (cp->failed)
        return 0; /* nothing cached */
    if (fresh16)
        *e16 = (otp & 0xffff0000u) | 1u;
    if (!hit24)
        *e24 = p24 << 8 | ((otp >> 8) & 0xffu);
    m->addr = a;
    m->anon = a ^ otp;
    uint32_t r;
    wr32((uint8_t *)&r, m->anon);
    return r;
}

/* Writes the input block of bit position p (first p bits of in, the rest from pad) to blk. */
static void block6(const struct cryptopan *cp, const uint8_t in[16], int p, uint8_t blk[16])
{
    int full = p / 8, rem = p % 8;
    memcpy(blk, in, (size_t)full);
    memcpy(blk + full, cp->pad + full, (size_t)(16 - full));
    if (rem != 0) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rem));
        blk[full] = (uint8_t)((in[full] & mask) | (cp->pad[full] & ~mask));
    }
}

/* ORs one-time-pad bits start..start+n-1 of in into otp[16]. Returns 0, or -1 on failure. */
static int otp6(struct cryptopan *cp, const uint8_t in[16], int start, int n, uint8_t otp[16])
{
    uint8_t blocks[128][16], out[128][16];
    for (int i = 0; i < n; i++)
        block6(cp, in, start + i, blocks[i]);
    if (cp_encrypt(cp, blocks[0], out[0], n) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int p = start + i;
        otp[p / 8] |= (uint8_t)((out[i][0] >> 7) << (7 - p % 8));
    }
    return 0;
}

void cryptopan_ip6(struct cryptopan *cp, const uint8_t in[16], uint8_t out[16])
{
    uint8_t a[16], otp[16] = {0};
    memcpy(a, in, 16); /* out may equal in */
    uint64_t hi = rd64(a), lo = rd64(a + 8);
    struct cp_memo6 *m = &cp->memo6[hash64(hi, lo, CP_V6_BITS)];
    if (m->valid && memcmp(m->in, a, 16) == 0) {
        memcpy(out, m->out, 16);
        return;
    }
    struct cp_pre6 *pe = &cp->pre6[hash64(hi, 0, CP_V6_BITS)];
    int rc;
    if (pe->valid && pe->prefix == hi) {
        for (int i = 0; i < 8; i++)
            otp[i] = (uint8_t)(pe->otp >> (56 - 8 * i));
        rc = otp6(cp, a, 64, 64, otp);
    } else {
        rc = otp6(cp, a, 0, 128, otp);
        if (rc == 0) {
            pe->prefix = hi;
            pe->otp = rd64(otp);
            pe->valid = 1;
        }
    }
    if (rc != 0) {
        memset(out, 0, 16); /* never leak the original */
        return;
    }
    for (int i = 0; i < 16; i++)
        m->out[i] = (uint8_t)(a[i] ^ otp[i]);
    memcpy(m->in, a, 16);
    m->valid = 1;
    memcpy(out, m->out, 16);
}

int cryptopan_key_from_file(const char *path, uint8_t key[CRYPTOPAN_KEY_LEN], char *err,
                            size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t buf[CRYPTOPAN_KEY_LEN];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n < sizeof(buf) && n > 0 && buf[n - 1] == '\n')
        n--;
    if (n < sizeof(buf) && n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        snprintf(err, errlen, "the key file %s is empty", path);
        return -1;
    }
    /* traceanon treats the key as a C string: bytes after a NUL count as NUL. So do we, so
     * that the same key file gives the same addresses (checked against traceanon -f). */
    const uint8_t *nul = memchr(buf, 0, n);
    if (nul)
        n = (size_t)(nul - buf);
    memset(key, 0, CRYPTOPAN_KEY_LEN);
    memcpy(key, buf, n);
    memset(buf, 0, sizeof(buf));
    return 0;
}
