/*
 * flib/anonflib/functions.c - the anonymisation functions of ANONYMIZE, applied to a located
 * field, plus the resize helper and the checksums.
 *
 * By kind of field (see fields.c):
 *   numbers (TTL, ports, SEQ, FLOW, ...): the value (only the field's bits, e.g. 13 bits of
 *     FRAGMENT_OFFSET or 20 of FLOW) is replaced: ZERO 0; RANDOM random; MAP its number
 *     (1, 2, ...) in the flow's table of its size class (one table for addresses, one for
 *     ports, one each for 4-, 2- and 1-byte fields, shared by all rules of the flow, so
 *     SRC_IP and DST_IP, or SEQ and ACK, map consistently), reduced modulo the field's range;
 *     MAP_DISTRIBUTION a value drawn once per distinct input value (UNIFORM in [a, b] or
 *     GAUSSIAN(mean, sd), rounded, reduced modulo the range; one table per rule); HASHED the
 *     last bytes of the digest; PATTERN_FILL,INTEGER,n the value n; PATTERN_FILL,STR the text's
 *     bytes repeated.
 *   addresses (SRC_IP, DST_IP; 4 or 16 bytes): as numbers, MAP gives 0.0.0.N or 2001:db8::N;
 *     MAP_DISTRIBUTION the drawn value (IPv6: 2001:db8::value); PREFIX_PRESERVING Crypto-PAn
 *     (common/cryptopan.h; results cached in small direct-mapped caches per rule);
 *     PREFIX_PRESERVING_MAP a prefix-preserving random table of the flow (maps.c).
 *   options (IPv4 OPTIONS, TCP_OPTIONS): ZERO, RANDOM, PATTERN_FILL, HASHED fill the region;
 *     STRIP,n keeps n bytes rounded up to a multiple of 4 and fixes IHL / the data offset.
 *   variable fields (PAYLOAD, HTTP and FTP values): STRIP,n keeps the first n bytes; REPLACE
 *     puts the text instead; REGEXP replaces the groups of every match (NULL keeps a group);
 *     FILENAME_RANDOM randomises the part before the last '.' with characters 33..125;
 *     RANDOM fills with random bytes (printable characters 33..125 in HTTP/FTP values, so the
 *     protocol stays parseable); HASHED puts the digest (as lower-case hex in HTTP/FTP values,
 *     raw bytes elsewhere) and then pads with NUL bytes to the old length (PAD_WITH_ZERO),
 *     drops the rest (STRIP_REST) or keeps the rest of the old bytes (UNCHANGED); a digest
 *     longer than the field grows it.
 * CHECKSUM_ADJUST recomputes the IPv4 header checksum and the transport checksum (whatever
 * the rule's protocol), the latter only when the whole datagram was captured and it is not a
 * fragment. Length changes go through anon_resize (IP/UDP lengths, caplen, wlen) and one
 * host->redecode per rule and packet. Nothing is allocated per packet except when a MAP or
 * PREFIX_PRESERVING_MAP table grows for a new value.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "anonflib.h"
#include "common/cryptopan.h"

static inline uint32_t rd16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}
static inline void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint32_t rdbe(const uint8_t *p, uint32_t len)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < len; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void wrbe(uint8_t *p, uint32_t len, uint32_t v)
{
    for (uint32_t i = len; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

uint64_t anon_seed(const void *salt)
{
    uint64_t s = 0;
    struct timespec ts;

    if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
        return s;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)salt;
}

/* ---- resize and checksums ---- */

int anon_resize(struct mapi_pkt *pkt, uint32_t off, uint32_t len, const void *src, uint32_t newlen)
{
    uint8_t *d = (uint8_t *)(uintptr_t)pkt->data;
    uint32_t end = off + len;
    int64_t delta = (int64_t)newlen - (int64_t)len;

    if (end > pkt->caplen || (int64_t)pkt->caplen + delta > (int64_t)MAPI_PKT_ROOM)
        return -1;
    if (delta != 0)
        memmove(d + off + newlen, d + end, pkt->caplen - end);
    if (src != NULL && newlen > 0)
        memcpy(d + off, src, newlen);
    if (delta == 0)
        return 0;
    pkt->caplen = (uint32_t)((int64_t)pkt->caplen + delta);
    pkt->wlen = (uint32_t)((int64_t)pkt->wlen + delta);
    if ((pkt->flags & MAPI_PKT_IPV4) && off >= pkt->l3_off + 20u)
        wr16(d + pkt->l3_off + 2, (uint32_t)((int64_t)rd16(d + pkt->l3_off + 2) + delta));
    else if ((pkt->flags & MAPI_PKT_IPV6) && off >= pkt->l3_off + 40u)
        wr16(d + pkt->l3_off + 4, (uint32_t)((int64_t)rd16(d + pkt->l3_off + 4) + delta));
    if ((pkt->flags & MAPI_PKT_L4) && pkt->l4proto == 17 && off >= pkt->l4_off + 8u)
        wr16(d + pkt->l4_off + 4, (uint32_t)((int64_t)rd16(d + pkt->l4_off + 4) + delta));
    return 0;
}

/* One's complement sum of p[0..n) added to sum (not folded). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        sum += ((uint32_t)p[i] << 8 | p[i + 1]) + ((uint32_t)p[i + 2] << 8 | p[i + 3]) +
               ((uint32_t)p[i + 4] << 8 | p[i + 5]) + ((uint32_t)p[i + 6] << 8 | p[i + 7]);
    }
    for (; i + 2 <= n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (i < n)
        sum += (uint32_t)p[i] << 8;
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

void anon_fix_checksums(struct mapi_pkt *pkt)
{
    uint8_t *d = (uint8_t *)(uintptr_t)pkt->data;
    uint32_t ip = pkt->l3_off, l4 = pkt->l4_off, dgram_end, cso;
    uint64_t sum = 0;
    int v4 = (pkt->flags & MAPI_PKT_IPV4) != 0;

    if (!(pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6)))
        return;
    if (v4) {
        uint32_t hl = (uint32_t)(d[ip] & 0x0f) * 4;
        if (ip + hl <= pkt->caplen) {
            wr16(d + ip + 10, 0);
            wr16(d + ip + 10, csum_fold(csum_add(0, d + ip, hl)));
        }
        dgram_end = ip + rd16(d + ip + 2);
        if (rd16(d + ip + 6) & 0x2000) /* more fragments: the segment is not all here */
            return;
    } else {
        dgram_end = ip + 40 + rd16(d + ip + 4);
        if (anon_ip6_frag_header(pkt) != 0)
            return;
    }
    if (!(pkt->flags & MAPI_PKT_L4) || (pkt->flags & MAPI_PKT_FRAGMENT) ||
        dgram_end > pkt->caplen || dgram_end <= l4)
        return;
    switch (pkt->l4proto) {
    case 6:
        cso = 16;
        break;
    case 17:
        cso = 6;
        if (v4 && rd16(d + l4 + 6) == 0)
            return; /* no checksum in use */
        break;
    case 1:
        cso = 2;
        if (!v4)
            return;
        break;
    case 58:
        cso = 2;
        if (v4)
            return;
        break;
    default:
        return;
    }
    if (l4 + cso + 2 > dgram_end)
        return;
    uint32_t l4len = dgram_end - l4;
    if (pkt->l4proto != 1) { /* pseudo-header */
        if (v4)
            sum = csum_add(sum, d + ip + 12, 8);
        else
            sum = csum_add(sum, d + ip + 8, 32);
        sum += pkt->l4proto;
        sum += l4len;
    }
    wr16(d + l4 + cso, 0);
    sum = csum_add(sum, d + l4, l4len);
    uint16_t c = csum_fold(sum);
    if (c == 0 && pkt->l4proto == 17)
        c = 0xffff;
    wr16(d + l4 + cso, c);
}

/* ---- helpers ---- */

/* Fills p[0..n) with random bytes (printable 33..125 if printable). */
static void fill_random(struct anon_rule *r, uint8_t *p, uint32_t n, int printable)
{
    uint64_t x = 0;
    for (uint32_t i = 0; i < n; i++) {
        if ((i & 7) == 0)
            x = anon_rand64(&r->rng);
        p[i] = printable ? (uint8_t)(33 + (x & 0xff) % 93) : (uint8_t)x;
        x >>= 8;
    }
}

/* Fills p[0..n) with the PATTERN_FILL pattern. */
static void fill_pattern(const struct anon_rule *r, uint8_t *p, uint32_t n)
{
    if (r->fill_int) {
        memset(p, (int)(r->fill_value & 0xff), n);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)r->text[i % r->text_len];
}

/* A uniform double in (0, 1). */
static double unif(struct anon_rule *r)
{
    return ((double)(anon_rand64(&r->rng) >> 11) + 0.5) / 9007199254740992.0;
}

/* A value drawn from the rule's distribution (UNIFORM in [a, b]; GAUSSIAN by Marsaglia's
 * polar form of Box-Muller), rounded, as an unsigned 32-bit number (wrapped). */
static uint32_t draw(struct anon_rule *r)
{
    double x;

    if (!r->dist_gauss) {
        x = r->dist_a + (r->dist_b - r->dist_a) * unif(r);
    } else {
        double u, v, s;
        do {
            u = 2.0 * unif(r) - 1.0;
            v = 2.0 * unif(r) - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        x = r->dist_a + r->dist_b * u * sqrt(-2.0 * log(s) / s);
    }
    if (!(x > -9.2e18 && x < 9.2e18))
        x = 0;
    x += x < 0 ? -0.5 : 0.5; /* round half away from zero */
    return (uint32_t)(uint64_t)(int64_t)x;
}

/* MAP_DISTRIBUTION: the consistent drawn value of key (4 or 16 bytes). */
static uint32_t dist_map(struct anon_rule *r, const uint8_t *key, int v6)
{
    uint32_t v = 0;
    struct anon_table *t = v6 ? r->dist_tab6 : r->dist_tab;

    if (anon_table_get(t, key, &v, 0) == 1)
        return v;
    v = draw(r);
    anon_table_get(t, key, &v, 1);
    return v;
}

/* The digest of in[0..n) into r->scratch; hex if text. Returns its length (0 on failure). */
static uint32_t digest(struct anon_rule *r, const uint8_t *in, uint32_t n, int text)
{
    uint8_t *out = r->scratch;
    int dl;

    if (text) {
        /* raw digest at the end of the scratch, hex at the start */
        uint8_t *raw = r->scratch + MAPI_PKT_ROOM / 2;
        if (n > MAPI_PKT_ROOM / 2 - 64)
            return 0;
        dl = anon_hash(r, in, n, raw);
        if (dl <= 0 || (uint32_t)dl * 2 > MAPI_PKT_ROOM / 2)
            return 0;
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < dl; i++) {
            out[2 * i] = (uint8_t)hx[raw[i] >> 4];
            out[2 * i + 1] = (uint8_t)hx[raw[i] & 15];
        }
        return (uint32_t)dl * 2;
    }
    if (n > MAPI_PKT_ROOM - 64)
        return 0;
    dl = anon_hash(r, in, n, out);
    return dl > 0 ? (uint32_t)dl : 0;
}

/* HASHED on a field of fixed size len at p: its last len digest bytes, or a shorter digest
 * followed by zeros (PAD_WITH_ZERO, STRIP_REST) or by the field's own bytes (UNCHANGED).
 * The field stays as it is if the digest fails. */
static void hash_in_place(struct anon_rule *r, uint8_t *p, uint32_t len)
{
    uint32_t dl = digest(r, p, len, 0);
    if (dl == 0)
        return;
    if (dl >= len) {
        memcpy(p, r->scratch + dl - len, len);
    } else {
        memcpy(p, r->scratch, dl);
        if (r->hash_pad != ANON_PAD_UNCHANGED)
            memset(p + dl, 0, len - dl);
    }
}

/* ---- by kind ---- */

static void apply_num(struct anon_rule *r, uint8_t *p, const struct anon_loc *l)
{
    uint32_t w = rdbe(p, l->len), v = (w & l->mask) >> l->shift, vmax = l->mask >> l->shift;
    uint8_t key[4], tmp[4];

    switch (r->fn) {
    case ANON_FN_ZERO:
        v = 0;
        break;
    case ANON_FN_RANDOM:
        v = (uint32_t)anon_rand64(&r->rng);
        break;
    case ANON_FN_MAP:
        wrbe(key, 4, v);
        v = anon_ctx_map(r->ctx, r->fd->mapclass, key);
        break;
    case ANON_FN_MAP_DISTRIBUTION:
        wrbe(key, 4, v);
        v = dist_map(r, key, 0);
        break;
    case ANON_FN_HASHED: {
        uint32_t dl;
        wrbe(key, l->len, v);
        dl = digest(r, key, l->len, 0);
        if (dl == 0)
            return;
        v = rdbe(r->scratch + (dl >= 4 ? dl - 4 : 0), dl >= 4 ? 4 : dl);
        break;
    }
    case ANON_FN_PATTERN_FILL:
        if (r->fill_int) {
            v = r->fill_value;
        } else {
            fill_pattern(r, tmp, 4);
            v = rdbe(tmp, 4) >> (8 * (4 - l->len));
        }
        break;
    default:
        return;
    }
    v &= vmax;
    w = (w & ~l->mask) | ((v << l->shift) & l->mask);
    wrbe(p, l->len, w);
}

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void apply_addr(struct anon_rule *r, uint8_t *p, const struct anon_loc *l)
{
    const int v6 = l->len == 16;
    uint32_t n;

    switch (r->fn) {
    case ANON_FN_ZERO:
        memset(p, 0, l->len);
        return;
    case ANON_FN_RANDOM:
        fill_random(r, p, l->len, 0);
        return;
    case ANON_FN_PATTERN_FILL:
        if (r->fill_int) {
            memset(p, 0, l->len);
            wrbe(p + l->len - 4, 4, r->fill_value);
        } else {
            fill_pattern(r, p, l->len);
        }
        return;
    case ANON_FN_MAP:
    case ANON_FN_MAP_DISTRIBUTION:
        if (r->fn == ANON_FN_MAP)
            n = anon_ctx_map(r->ctx, v6 ? ANON_MAP_IP6 : ANON_MAP_IP4, p);
        else
            n = dist_map(r, p, v6);
        if (v6) {
            static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
            memset(p, 0, 16);
            memcpy(p, doc, 4);
            wrbe(p + 12, 4, n);
        } else {
            wrbe(p, 4, n);
        }
        return;
    case ANON_FN_HASHED:
        hash_in_place(r, p, l->len);
        return;
    case ANON_FN_PREFIX_PRESERVING:
        if (!v6) {
            uint32_t a;
            memcpy(&a, p, 4);
            struct anon_pp_cache4 *c = &r->c4[hash32(a) & (ANON_PP_CACHE4 - 1)];
            if (c->in != a || c->out == 0) {
                c->in = a;
                c->out = cryptopan_ip4(r->cp, a);
            }
            memcpy(p, &c->out, 4);
        } else {
            uint32_t h;
            memcpy(&h, p + 12, 4);
            h ^= (uint32_t)p[0] << 24 ^ (uint32_t)p[5] << 16 ^ (uint32_t)p[9];
            struct anon_pp_cache6 *c = &r->c6[hash32(h) & (ANON_PP_CACHE6 - 1)];
            if (!c->valid || memcmp(c->in, p, 16) != 0) {
                memcpy(c->in, p, 16);
                cryptopan_ip6(r->cp, p, c->out);
                c->valid = 1;
            }
            memcpy(p, c->out, 16);
        }
        return;
    case ANON_FN_PREFIX_PRESERVING_MAP:
        anon_ctx_ppmap(r->ctx, p, v6 ? 128 : 32);
        return;
    default:
        return;
    }
}

/* Options regions. Returns 1 if the packet was resized. */
static int apply_opt(struct anon_rule *r, struct mapi_pkt *pkt, uint8_t *p,
                     const struct anon_loc *l)
{
    uint8_t *d = (uint8_t *)(uintptr_t)pkt->data;

    switch (r->fn) {
    case ANON_FN_ZERO:
        memset(p, 0, l->len);
        return 0;
    case ANON_FN_RANDOM:
        fill_random(r, p, l->len, 0);
        return 0;
    case ANON_FN_PATTERN_FILL:
        fill_pattern(r, p, l->len);
        return 0;
    case ANON_FN_HASHED:
        hash_in_place(r, p, l->len);
        return 0;
    case ANON_FN_STRIP: {
        uint32_t keep = r->strip_keep < l->len ? (r->strip_keep + 3u) & ~3u : l->len;
        if (keep >= l->len)
            return 0;
        uint32_t removed = l->len - keep;
        if (r->fd->field == ANON_F_OPTIONS) {
            uint32_t ip = pkt->l3_off;
            uint32_t hl = (uint32_t)(d[ip] & 0x0f) * 4 - removed;
            if (anon_resize(pkt, l->off + keep, removed, NULL, 0) != 0)
                return 0;
            d[ip] = (uint8_t)((d[ip] & 0xf0) | (hl / 4)); /* resize fixed the total length */
        } else {
            uint32_t t = pkt->l4_off;
            uint32_t doff = (uint32_t)(d[t + 12] >> 4) * 4 - removed;
            if (anon_resize(pkt, l->off + keep, removed, NULL, 0) != 0)
                return 0;
            d[t + 12] = (uint8_t)((d[t + 12] & 0x0f) | ((doff / 4) << 4));
        }
        return 1;
    }
    default:
        return 0;
    }
}

/* Units of PCRE2 work (match-limit units or subject bytes) one search call may cover: the
 * window of start positions of a call is chosen so that (positions) x (match limit + bytes
 * scanned) stays under this: 1.5 ms with the JIT at worst (measured 5.8 ns per match-limit
 * unit), 6 ms with the interpreter (22 ns). */
#define REGEXP_CALL_UNITS (1u << 18)

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * One bounded search call: the leftmost match starting in [pos, last]. Returns pcre2_match's
 * result, or PCRE2_ERROR_MATCHLIMIT when the rule's time for this packet is used up. The
 * first call of a packet is bounded by the window alone; from the second on, the monotonic
 * clock (cheap: vDSO) is read before each call. Once regexp_time_limit has passed on it, the
 * thread's CPU time (a system call, so only then) is taken as a baseline, and the search stops when
 * another regexp_time_limit of CPU time has been spent: a capture thread that was merely
 * preempted does not cut a search short (the output stays deterministic unless the pattern
 * really costs that much).
 */
static int regexp_search(struct anon_rule *r, const uint8_t *p, uint32_t n, size_t pos, size_t last)
{
    if (r->re_calls == 1) {
        r->re_t0 = clock_ns(CLOCK_MONOTONIC);
        r->re_c0 = 0;
    } else if (r->re_calls > 1 && r->re_time_ns != 0 &&
               clock_ns(CLOCK_MONOTONIC) - r->re_t0 > r->re_time_ns) {
        uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (r->re_c0 == 0)
            r->re_c0 = cpu ? cpu : 1;
        else if (cpu - r->re_c0 > r->re_time_ns)
            return PCRE2_ERROR_MATCHLIMIT;
    }
    r->re_calls++;
    pcre2_set_offset_limit(r->re_mc, last);
    return pcre2_match(r->re, p, n, pos, 0, r->re_md, r->re_mc);
}

/*
 * REGEXP over p[0..n): builds the new value in r->scratch. Returns its length, or -1 if
 * nothing matched (or it would not fit). Bounded work: PCRE2's match limit (per start
 * position) and heap limit are in r->re_mc, start positions are searched in windows (see
 * REGEXP_CALL_UNITS), and the time per packet is checked between calls. When a limit is
 * reached (r->re_stop), the search of this rule on this packet ends: replacements made so far
 * stay, the rest of the field is left as it is.
 */
static long regexp_build(struct anon_rule *r, const uint8_t *p, uint32_t n)
{
    pcre2_match_data *md = r->re_md;
    uint8_t *out = r->scratch;
    size_t o = 0, pos = 0, copied = 0, room = MAPI_PKT_ROOM;
    size_t window = REGEXP_CALL_UNITS / ((size_t)r->re_limit + n + 1);
    int matched = 0;

    if (window == 0)
        window = 1;
    while (pos <= n && !r->re_stop) {
        size_t last = n - pos < window ? n : pos + window - 1;
        int rc = regexp_search(r, p, n, pos, last);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (last >= n)
                break;
            pos = last + 1;
            continue;
        }
        if (rc < 0) {
            r->re_stop = 1; /* match, heap, JIT stack or time limit */
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        matched = 1;
        for (int g = 1; g < rc && g <= r->re_n; g++) {
            if (ov[2 * g] == PCRE2_UNSET || r->re_rep[g - 1] == NULL || ov[2 * g] < copied)
                continue;
            size_t rl = strlen(r->re_rep[g - 1]);
            if (o + (ov[2 * g] - copied) + rl > room)
                return -1;
            memcpy(out + o, p + copied, ov[2 * g] - copied);
            o += ov[2 * g] - copied;
            memcpy(out + o, r->re_rep[g - 1], rl);
            o += rl;
            copied = ov[2 * g + 1];
        }
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
    if (!matched)
        return -1;
    if (o + (n - copied) > room)
        return -1;
    memcpy(out + o, p + copied, n - copied);
    return (long)(o + (n - copied));
}

/* Variable fields. Returns 1 if the packet was resized. */
static int apply_var(struct anon_rule *r, struct mapi_pkt *pkt, const struct anon_loc *l)
{
    uint8_t *p = (uint8_t *)(uintptr_t)pkt->data + l->off;

    switch (r->fn) {
    case ANON_FN_ZERO:
        memset(p, 0, l->len);
        return 0;
    case ANON_FN_RANDOM:
        fill_random(r, p, l->len, l->text);
        return 0;
    case ANON_FN_PATTERN_FILL:
        fill_pattern(r, p, l->len);
        return 0;
    case ANON_FN_FILENAME_RANDOM: {
        uint32_t k = l->len;
        while (k > 0 && p[k - 1] != '.')
            k--;
        fill_random(r, p, k > 0 ? k - 1 : l->len, 1);
        return 0;
    }
    case ANON_FN_STRIP:
        if (r->strip_keep >= l->len)
            return 0;
        return anon_resize(pkt, l->off + r->strip_keep, l->len - r->strip_keep, NULL, 0) == 0;
    case ANON_FN_REPLACE:
        return anon_resize(pkt, l->off, l->len, r->text, (uint32_t)r->text_len) == 0 &&
               r->text_len != l->len;
    case ANON_FN_REGEXP: {
        long nl = regexp_build(r, p, l->len);
        if (nl < 0)
            return 0;
        return anon_resize(pkt, l->off, l->len, r->scratch, (uint32_t)nl) == 0 &&
               (uint32_t)nl != l->len;
    }
    case ANON_FN_HASHED: {
        uint32_t dl = digest(r, p, l->len, l->text);
        if (dl == 0)
            return 0;
        if (dl < l->len) {
            if (r->hash_pad == ANON_PAD_ZERO) {
                memcpy(p, r->scratch, dl);
                memset(p + dl, 0, l->len - dl);
                return 0;
            }
            if (r->hash_pad == ANON_PAD_UNCHANGED) {
                memcpy(p, r->scratch, dl);
                return 0;
            }
        }
        return anon_resize(pkt, l->off, l->len, r->scratch, dl) == 0 && dl != l->len;
    }
    default:
        return 0;
    }
}

int anon_apply(struct anon_rule *r, struct mapi_pkt *pkt)
{
    struct anon_loc locs[ANON_MAX_LOCS];
    int n, resized = 0;

    if (r->fn == ANON_FN_CHECKSUM_ADJUST) {
        anon_fix_checksums(pkt);
        return 1;
    }
    n = anon_locate(r, pkt, locs, ANON_MAX_LOCS);
    if (r->fn == ANON_FN_REGEXP) {
        r->re_calls = 0;
        r->re_stop = 0;
    }
    /* last occurrence first: a length change does not move the earlier ones */
    for (int k = n - 1; k >= 0; k--) {
        const struct anon_loc *l = &locs[k];
        uint8_t *p = (uint8_t *)(uintptr_t)pkt->data + l->off;
        switch (l->kind) {
        case ANON_K_NUM:
            apply_num(r, p, l);
            break;
        case ANON_K_ADDR:
            apply_addr(r, p, l);
            break;
        case ANON_K_OPT:
            resized |= apply_opt(r, pkt, p, l);
            break;
        default:
            resized |= apply_var(r, pkt, l);
            break;
        }
    }
    if (r->re_stop && ++r->re_stopped == 1)
        r->host->log(1,
                     "ANONYMIZE REGEXP of flow %d: the search stopped at a limit "
                     "(regexp_match_limit=%u, regexp_heap_limit=%llu, regexp_time_limit=%llu us); "
                     "the rest of such fields is left unchanged (count logged at close)",
                     r->fi->flow_id, r->re_limit, (unsigned long long)r->re_heap,
                     (unsigned long long)(r->re_time_ns / 1000u));
    if (n == 0)
        return 1;
    /* keep the decoded fields true for the functions after this one */
    switch (r->fd->field) {
    case ANON_F_SRC_IP:
    case ANON_F_DST_IP: {
        uint8_t *dst = r->fd->field == ANON_F_SRC_IP ? pkt->src : pkt->dst;
        memcpy(dst, pkt->data + locs[0].off, locs[0].len);
        break;
    }
    case ANON_F_SRC_PORT:
        pkt->sport = (uint16_t)rd16(pkt->data + locs[0].off);
        break;
    case ANON_F_DST_PORT:
        pkt->dport = (uint16_t)rd16(pkt->data + locs[0].off);
        break;
    case ANON_F_IP_PROTO:
    case ANON_F_FRAGMENT_OFFSET:
    case ANON_F_OFFSET_AND_RESERVED:
        resized = 1; /* these steer the decoder */
        break;
    case ANON_F_PAYLOAD:
        if (r->proto == ANON_P_IP)
            resized = 1; /* the transport header is part of the IP payload */
        break;
    default:
        break;
    }
    if (resized)
        r->host->redecode(pkt);
    return 1;
}
