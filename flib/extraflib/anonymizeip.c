/*
 * flib/extraflib/anonymizeip.c - ANONYMIZEIP "s" key: Crypto-PAn prefix-preserving
 * anonymisation of the source and destination addresses of IPv4 and IPv6 packets, in place
 * (MAPI_FN_MODIFIES: the flow works on its own copy of each packet), producing for IPv4 the
 * very bytes that libtrace's `traceanon -s -d -c KEY` (libtrace-tools 3.0.22) writes.
 *
 * Key: the argument string, NUL-padded to 32 bytes (longer strings: the first 32 bytes), as
 * traceanon -c. An empty string takes the key from the file named by mapi.conf's
 * anon_key_file, read as anonflib reads it: its first 32 bytes, raw, as traceanon -f; a file
 * shorter than 32 bytes is a text key (a trailing newline dropped), NUL-padded. No key at all,
 * or a key file that cannot be read or is empty: error 7001 (MFUNCT_INVALID_ARGUMENT_1) with
 * fi->errmsg saying why. There is no built-in key. The site key is a permission: only root and
 * members of mapi.conf's anon_key_group may use it (host->may_use_site_key); anyone else who
 * asks for it gets 7001 with a message naming anon_key_group.
 *
 * What changes in a packet, following traceanon (whose behaviour is the oracle of
 * tests/test_cryptopan.sh), never reading or writing past caplen:
 *   - IPv4 (every fragment): source and destination address. Inside ICMP errors
 *     (destination unreachable 3, redirect 5, time exceeded 11, not for fragments other than
 *     the first) the quoted IP header's addresses too, source and destination swapped in role
 *     (quotes inside quotes likewise, up to 16 levels), with the quoted IP header checksum and
 *     the quoted TCP/UDP checksums adjusted incrementally (RFC 1624, the arithmetic of
 *     traceanon) and the ICMP checksums set to 0.
 *   - The outer IPv4 header checksum and the TCP and UDP checksums (IPv4 and IPv6, when the
 *     whole fixed TCP/UDP header was captured; also TCP/UDP inside IPv6-in-IPv4) are set to 0,
 *     as traceanon does "so that IP encryption cannot be reversed": an adjusted or recomputed
 *     checksum would be valid but is not what traceanon writes, and the original checksum would
 *     tell about the original addresses. For valid checksums, follow ANONYMIZEIP with anonflib's
 *     ANONYMIZE "IP,CHECKSUM,CHECKSUM_ADJUST" (or use ANONYMIZE ... PREFIX_PRESERVING).
 *   - IPv6 (our extension: traceanon 3.0.22 leaves IPv6 addresses alone, only zeroing the
 *     TCP/UDP checksums): source and destination by 128-bit Crypto-PAn (common/cryptopan.c;
 *     its first 32 bits equal the IPv4 image of the first 32 bits), ICMPv6 errors (types 1-4)
 *     handled like ICMP errors, ICMPv6 checksums set to 0.
 *   - Anything else passes unchanged. The original MAPI ANONYMIZEIP dropped non-IP packets
 *     (it could not anonymise them); we pass them, as traceanon does, so that a MAPI trace
 *     and a traceanon trace of the same input compare equal packet for packet. Beware that ARP
 *     (like traceanon's output) still carries the original IPv4 addresses: put BPF_FILTER
 *     "ip or ip6" before ANONYMIZEIP for the original's behaviour.
 * A partly captured address (snap length inside it) is left as it is, as are checksums whose
 * two bytes were not captured. IPv4 headers with IHL < 5 are not decoded as IPv4 by mapid, so
 * are left unchanged (traceanon would anonymise them).
 *
 * pkt->src/pkt->dst are updated to the new addresses; lengths and offsets do not change, so
 * no redecode is needed. Result: an unsigned long long, the number of IPv4/IPv6 packets
 * anonymised (the original's result was an unused unsigned long long).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cryptopan.h"
#include "extraflib.h"

#define ANONIP_MAX_DEPTH 16 /* ICMP errors quoted inside ICMP errors */

struct anonip {
    struct cryptopan *cp;
};

static inline uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

/* Incremental update of the one's complement checksum at c for the 16-bit word old -> new,
 * with traceanon's arithmetic (RFC 1624 eqn. 3), so that the bytes come out the same. */
static void csum_fix16(uint8_t *c, uint32_t old, uint32_t new)
{
    uint32_t sum = (~rd16(c) & 0xffffu) + (~old & 0xffffu) + new;
    sum = (sum & 0xffffu) + (sum >> 16);
    uint32_t r = ~(sum + (sum >> 16)) & 0xffffu;
    c[0] = (uint8_t)(r >> 8);
    c[1] = (uint8_t)r;
}

/* The same for a field of n bytes (n even) changing from old to new, word by word. */
static void csum_fix(uint8_t *c, const uint8_t *old, const uint8_t *new, int n)
{
    for (int i = 0; i < n; i += 2)
        csum_fix16(c, rd16(old + i), rd16(new + i));
}

/*
 * traceanon's encrypt_ips() on the IPv4 header at off: anonymises the source (if es) and the
 * destination (if ed), adjusting the IP header checksum and the TCP/UDP checksum that follows
 * (incrementally), then for ICMP errors the quoted packet (roles swapped), and zeroes the ICMP
 * checksum. Only bytes below cap are read or written.
 */
static void anon4(struct cryptopan *cp, uint8_t *d, uint32_t cap, uint32_t off, int es, int ed,
                  int depth)
{
    if (off + 10 > cap)
        return; /* not even the protocol field: no address either */
    const uint8_t *ip = d + off;
    int proto = -1; /* transport protocol, -1 if there is no transport header here */
    uint32_t t = 0;
    if ((ip[0] >> 4) == 4 && (rd16(ip + 6) & 0x1fffu) == 0) {
        proto = ip[9];
        t = off + (uint32_t)(ip[0] & 0x0f) * 4;
    }
    for (int i = 0; i < 2; i++) {
        if (!(i == 0 ? es : ed))
            continue;
        uint32_t a = off + 12 + 4 * (uint32_t)i;
        if (a + 4 > cap)
            continue;
        uint32_t oldv, newv;
        memcpy(&oldv, d + a, 4);
        newv = cryptopan_ip4(cp, oldv);
        const uint8_t *o = (const uint8_t *)&oldv, *n = (const uint8_t *)&newv;
        csum_fix(d + off + 10, o, n, 4);
        if (proto == 6 && t + 18 <= cap)
            csum_fix(d + t + 16, o, n, 4);
        else if (proto == 17 && t + 8 <= cap)
            csum_fix(d + t + 6, o, n, 4);
        memcpy(d + a, &newv, 4);
    }
    if (proto == 1) {
        if (t < cap && (d[t] == 3 || d[t] == 5 || d[t] == 11) && depth < ANONIP_MAX_DEPTH)
            anon4(cp, d, cap, t + 8, ed, es, depth + 1);
        if (t + 4 <= cap) {
            d[t + 2] = 0;
            d[t + 3] = 0;
        }
    }
}

/*
 * The IPv6 counterpart (our extension) for the IPv6 header at off whose transport header of
 * protocol nh is at t (nh -1: none known): addresses, incremental TCP/UDP checksums, quoted
 * packets of ICMPv6 errors (types 1-4, roles swapped), ICMPv6 checksum zeroed.
 */
static void anon6(struct cryptopan *cp, uint8_t *d, uint32_t cap, uint32_t off, uint32_t t, int nh,
                  int es, int ed, int depth)
{
    for (int i = 0; i < 2; i++) {
        if (!(i == 0 ? es : ed))
            continue;
        uint32_t a = off + 8 + 16 * (uint32_t)i;
        if (a + 16 > cap)
            continue;
        uint8_t o[16];
        memcpy(o, d + a, 16);
        cryptopan_ip6(cp, o, d + a);
        if (nh == 6 && t + 18 <= cap)
            csum_fix(d + t + 16, o, d + a, 16);
        else if (nh == 17 && t + 8 <= cap)
            csum_fix(d + t + 6, o, d + a, 16);
    }
    if (nh == 58) {
        if (t < cap && d[t] >= 1 && d[t] <= 4 && depth < ANONIP_MAX_DEPTH) {
            uint32_t q = t + 8; /* the quoted packet: IPv6 header, upper layer right after it */
            if (q + 7 <= cap && (d[q] >> 4) == 6)
                anon6(cp, d, cap, q, q + 40, d[q + 6], ed, es, depth + 1);
        }
        if (t + 4 <= cap) {
            d[t + 2] = 0;
            d[t + 3] = 0;
        }
    }
}

/* Zeroes the TCP or UDP checksum of the transport header of protocol proto at t, if the whole
 * fixed header (20 or 8 bytes) was captured, as traceanon (trace_get_tcp/trace_get_udp). */
static void zero_l4(uint8_t *d, uint32_t cap, uint32_t t, int proto)
{
    if (proto == 6 && t + 20 <= cap) {
        d[t + 16] = 0;
        d[t + 17] = 0;
    } else if (proto == 17 && t + 8 <= cap) {
        d[t + 6] = 0;
        d[t + 7] = 0;
    }
}

/* IPv6 inside IPv4 (protocol 41) at off: the transport header after the extension headers,
 * as libtrace's trace_get_transport() finds it. Returns its protocol and sets *t, or -1. */
static int inner6_transport(const uint8_t *d, uint32_t cap, uint32_t off, uint32_t *t)
{
    if (off + 40 > cap || (d[off] >> 4) != 6)
        return -1;
    int proto = d[off + 6];
    off += 40;
    while (proto == 0 || proto == 43 || proto == 60 || proto == 44) {
        if (off + 8 > cap)
            return -1;
        if (proto == 44 && (rd16(d + off + 2) & 0xfff8u) != 0)
            return -1; /* not the first fragment */
        uint32_t len = proto == 44 ? 8 : ((uint32_t)d[off + 1] + 1) * 8;
        proto = d[off];
        off += len;
    }
    *t = off;
    return proto;
}

/* The default key, from mapi.conf's anon_key_file (read by cryptopan_key_from_file, as
 * anonflib reads it). Returns 0, or MFUNCT_INVALID_ARGUMENT_1 with fi->errmsg set (no
 * anon_key_file, unreadable, empty). */
static int key_from_file(struct mapi_fn_instance *fi, uint8_t key[CRYPTOPAN_KEY_LEN])
{
    const char *path = fi->host->conf_value ? fi->host->conf_value("anon_key_file") : NULL;
    if (path == NULL || path[0] == '\0') {
        snprintf(fi->errmsg, sizeof(fi->errmsg),
                 "empty key and no anon_key_file in mapi.conf (no built-in key)");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (!fi->host->may_use_site_key || !fi->host->may_use_site_key(fi)) {
        snprintf(fi->errmsg, sizeof(fi->errmsg),
                 "the site key (anon_key_file) is only for root and the group anon_key_group "
                 "of mapi.conf: give your own key");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (cryptopan_key_from_file(path, key, fi->errmsg, sizeof(fi->errmsg)) < 0)
        return MFUNCT_INVALID_ARGUMENT_1;
    return 0;
}

/* Validates the key and makes the Crypto-PAn context. Returns 0, MFUNCT_INVALID_ARGUMENT_1
 * (no usable key; fi->errmsg says why) or MAPID_MEM_ALLOCATION_ERROR. */
int extraflib_anonymizeip_instance(struct mapi_fn_instance *fi)
{
    uint8_t key[CRYPTOPAN_KEY_LEN];
    const char *s = fi->nargs >= 1 ? fi->args[0].v.s : NULL;
    if (s != NULL && s[0] != '\0') {
        cryptopan_key_from_string(s, key);
    } else {
        int rc = key_from_file(fi, key);
        if (rc != 0)
            return rc;
    }
    struct anonip *st = calloc(1, sizeof(*st));
    if (st != NULL)
        st->cp = cryptopan_new(key);
    memset(key, 0, sizeof(key));
    if (st == NULL || st->cp == NULL) {
        free(st);
        snprintf(fi->errmsg, sizeof(fi->errmsg), "out of memory (or OpenSSL)");
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    fi->priv = st;
    fi->result_size = sizeof(unsigned long long);
    return 0;
}

/* Anonymises the packet's addresses in place (see the file comment). Returns 1: never
 * filters. */
int extraflib_anonymizeip_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct anonip *st = fi->priv;
    uint8_t *d = (uint8_t *)(uintptr_t)pkt->data; /* the flow's private copy (MODIFIES) */
    uint32_t cap = pkt->caplen, l3 = pkt->l3_off;
    int has_l4 = (pkt->flags & MAPI_PKT_L4) && pkt->l4_off != MAPI_OFF_NONE;

    if (pkt->flags & MAPI_PKT_IPV4) {
        /* The decoder guarantees the 20 fixed bytes at l3 and IHL >= 5. */
        anon4(st->cp, d, cap, l3, 1, 1, 0);
        d[l3 + 10] = 0;
        d[l3 + 11] = 0;
        memcpy(pkt->src, d + l3 + 12, 4);
        memcpy(pkt->dst, d + l3 + 16, 4);
        if (has_l4 && pkt->l4proto == 41) {
            uint32_t t = 0;
            int p = inner6_transport(d, cap, pkt->l4_off, &t);
            zero_l4(d, cap, t, p);
        }
    } else if (pkt->flags & MAPI_PKT_IPV6) {
        /* The decoder guarantees the 40 fixed bytes at l3; l4_off is after the extension
         * headers. */
        anon6(st->cp, d, cap, l3, has_l4 ? pkt->l4_off : 0, has_l4 ? pkt->l4proto : -1, 1, 1, 0);
        memcpy(pkt->src, d + l3 + 8, 16);
        memcpy(pkt->dst, d + l3 + 24, 16);
    } else {
        return 1;
    }
    if (has_l4)
        zero_l4(d, cap, pkt->l4_off, pkt->l4proto);

    unsigned long long *n = fi->result;
    mapi_result_write_begin(fi);
    __atomic_store_n(n, *n + 1, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
    return 1;
}

/* Frees the Crypto-PAn context. */
void extraflib_anonymizeip_cleanup(struct mapi_fn_instance *fi)
{
    struct anonip *st = fi->priv;
    if (st != NULL) {
        cryptopan_free(st->cp);
        free(st);
        fi->priv = NULL;
    }
}
