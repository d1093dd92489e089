/*
 * flib/anonflib/fields.c - the fields of ANONYMIZE and where they are in a packet.
 *
 * Header fields are found from the decoder's offsets (struct mapi_pkt: l3_off, l4_off,
 * payload_off), so IPv4 options, IPv6 extension headers, VLAN/MPLS/PPPoE encapsulations and
 * TCP options are handled by the decoder. A field that is not completely inside the capture
 * (caplen) is absent; variable fields (payloads, HTTP/FTP values) end at the end of the IP
 * datagram or of the capture, whichever comes first (never the Ethernet padding).
 *
 * IPv6 equivalents: TTL = hop limit, TOS = traffic class, IP_PROTO = next header of the fixed
 * header, PACKET_LENGTH = payload length, FLOW = flow label (IPv6 only), ID and
 * FRAGMENT_OFFSET = those of the fragment extension header when there is one; OPTIONS and the
 * IP CHECKSUM do not exist in IPv6 (absent). ICMP rules act on ICMP over IPv4 and ICMPv6 over
 * IPv6.
 *
 * PAYLOAD by protocol: IP = everything after the IP header (and IPv6 extension headers);
 * TCP/UDP = the transport payload; ICMP = after the 8-byte ICMP header; FTP = the TCP
 * payload; HTTP = the message bodies that start in the segment (after the blank line of each
 * message, Content-Length bytes or to the end), or the whole TCP payload of a segment that
 * starts no HTTP message (a continuation).
 * CHECKSUM by protocol: IP = the IPv4 header checksum; TCP/HTTP/FTP, UDP, ICMP = the
 * transport checksum.
 *
 * Which TCP segments are HTTP: those from or to port 80, 8080 or 8000, and any other segment
 * whose payload starts with an HTTP request line ("GET ", "POST ", ... followed by a URI and
 * " HTTP/") or a status line ("HTTP/1."). Up to 50 pipelined messages per segment are parsed:
 * a request without Content-Length ends at its blank line, so the next request follows.
 * Header names are matched case-insensitively; the value excludes the blanks after the colon
 * and the line end. FTP: TCP segments from or to port 21; from port 21 every line "ddd text"
 * or "ddd-text" is a response (FTP_RESPONSE_CODE = the 3 digits, FTP_RESPONSE_ARG = the text);
 * towards port 21 every line "CMD arg" is a command, whose field (USER, PASS, ...) is the
 * argument (possibly empty: then a zero-length field right after the command name).
 */
#include <string.h>
#include <strings.h>

#include "anonflib.h"

#define NUM(n, f, s, c)                                                                            \
    {                                                                                              \
        n, f, s, ANON_K_NUM, c, NULL                                                               \
    }
#define HTTPH(n, h)                                                                                \
    {                                                                                              \
        n, ANON_F_HTTP_HEADER, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, h                           \
    }
#define FTPC(n, c)                                                                                 \
    {                                                                                              \
        n, ANON_F_FTP_COMMAND, ANON_S_FTP, ANON_K_VAR, ANON_MAP_NONE, c                            \
    }

const struct anon_field_def anon_fields[] = {
    {"PAYLOAD", ANON_F_PAYLOAD, ANON_S_COMMON, ANON_K_VAR, ANON_MAP_NONE, NULL},
    NUM("CHECKSUM", ANON_F_CHECKSUM, ANON_S_COMMON, ANON_MAP_2),
    {"SRC_IP", ANON_F_SRC_IP, ANON_S_IP, ANON_K_ADDR, ANON_MAP_IP4, NULL},
    {"DST_IP", ANON_F_DST_IP, ANON_S_IP, ANON_K_ADDR, ANON_MAP_IP4, NULL},
    NUM("TTL", ANON_F_TTL, ANON_S_IP, ANON_MAP_1),
    NUM("TOS", ANON_F_TOS, ANON_S_IP, ANON_MAP_1),
    NUM("ID", ANON_F_ID, ANON_S_IP, ANON_MAP_2),
    NUM("IP_PROTO", ANON_F_IP_PROTO, ANON_S_IP, ANON_MAP_1),
    NUM("VERSION", ANON_F_VERSION, ANON_S_IP, ANON_MAP_NONE),
    NUM("IHL", ANON_F_IHL, ANON_S_IP, ANON_MAP_NONE),
    {"OPTIONS", ANON_F_OPTIONS, ANON_S_IP, ANON_K_OPT, ANON_MAP_NONE, NULL},
    NUM("FRAGMENT_OFFSET", ANON_F_FRAGMENT_OFFSET, ANON_S_IP, ANON_MAP_2),
    NUM("PACKET_LENGTH", ANON_F_PACKET_LENGTH, ANON_S_IP, ANON_MAP_2),
    NUM("FLOW", ANON_F_FLOW, ANON_S_IP, ANON_MAP_4),
    NUM("SRC_PORT", ANON_F_SRC_PORT, ANON_S_PORTS, ANON_MAP_PORT),
    NUM("DST_PORT", ANON_F_DST_PORT, ANON_S_PORTS, ANON_MAP_PORT),
    NUM("SEQUENCE_NUMBER", ANON_F_SEQUENCE_NUMBER, ANON_S_TCP, ANON_MAP_4),
    NUM("ACK_NUMBER", ANON_F_ACK_NUMBER, ANON_S_TCP, ANON_MAP_4),
    NUM("FLAGS", ANON_F_FLAGS, ANON_S_TCP, ANON_MAP_1),
    NUM("WINDOW", ANON_F_WINDOW, ANON_S_TCP, ANON_MAP_2),
    {"TCP_OPTIONS", ANON_F_TCP_OPTIONS, ANON_S_TCP, ANON_K_OPT, ANON_MAP_NONE, NULL},
    NUM("URGENT_POINTER", ANON_F_URGENT_POINTER, ANON_S_TCP, ANON_MAP_2),
    NUM("OFFSET_AND_RESERVED", ANON_F_OFFSET_AND_RESERVED, ANON_S_TCP, ANON_MAP_1),
    NUM("UDP_DATAGRAM_LENGTH", ANON_F_UDP_DATAGRAM_LENGTH, ANON_S_UDP, ANON_MAP_2),
    NUM("TYPE", ANON_F_TYPE, ANON_S_ICMP, ANON_MAP_1),
    NUM("CODE", ANON_F_CODE, ANON_S_ICMP, ANON_MAP_1),
    {"HTTP_VERSION", ANON_F_HTTP_VERSION, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {"METHOD", ANON_F_METHOD, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {"URI", ANON_F_URI, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {"RESPONSE_CODE", ANON_F_RESPONSE_CODE, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {"RESP_CODE_DESCR", ANON_F_RESP_CODE_DESCR, ANON_S_HTTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    HTTPH("USER_AGENT", "User-Agent"),
    HTTPH("ACCEPT", "Accept"),
    HTTPH("ACCEPT_CHARSET", "Accept-Charset"),
    HTTPH("ACCEPT_ENCODING", "Accept-Encoding"),
    HTTPH("ACCEPT_LANGUAGE", "Accept-Language"),
    HTTPH("ACCEPT_RANGES", "Accept-Ranges"),
    HTTPH("AGE", "Age"),
    HTTPH("ALLOW", "Allow"),
    HTTPH("AUTHORIZATION", "Authorization"),
    HTTPH("CACHE_CONTROL", "Cache-Control"),
    HTTPH("CONNECTION_TYPE", "Connection"),
    HTTPH("CONTENT_TYPE", "Content-Type"),
    HTTPH("CONTENT_LENGTH", "Content-Length"),
    HTTPH("CONTENT_LOCATION", "Content-Location"),
    HTTPH("CONTENT_MD5", "Content-MD5"),
    HTTPH("CONTENT_RANGE", "Content-Range"),
    HTTPH("COOKIE", "Cookie"),
    HTTPH("ETAG", "ETag"),
    HTTPH("EXPECT", "Expect"),
    HTTPH("EXPIRES", "Expires"),
    HTTPH("FROM", "From"),
    HTTPH("HOST", "Host"),
    HTTPH("IF_MATCH", "If-Match"),
    HTTPH("IF_MODIFIED_SINCE", "If-Modified-Since"),
    HTTPH("IF_NONE_MATCH", "If-None-Match"),
    HTTPH("IF_RANGE", "If-Range"),
    HTTPH("IF_UNMODIFIED_SINCE", "If-Unmodified-Since"),
    HTTPH("LAST_MODIFIED", "Last-Modified"),
    HTTPH("MAX_FORWRDS", "Max-Forwards"),
    HTTPH("MAX_FORWARDS", "Max-Forwards"),
    HTTPH("PRAGMA", "Pragma"),
    HTTPH("PROXY_AUTHENTICATE", "Proxy-Authenticate"),
    HTTPH("PROXY_AUTHORIZATION", "Proxy-Authorization"),
    HTTPH("RANGE", "Range"),
    HTTPH("REFERRER", "Referer"),
    HTTPH("REFERER", "Referer"),
    HTTPH("RETRY_AFTER", "Retry-After"),
    HTTPH("SET_COOKIE", "Set-Cookie"),
    HTTPH("SERVER", "Server"),
    HTTPH("TE", "TE"),
    HTTPH("TRAILER", "Trailer"),
    HTTPH("TRANSFER_ENCODING", "Transfer-Encoding"),
    HTTPH("UPGRADE", "Upgrade"),
    HTTPH("VIA", "Via"),
    HTTPH("WARNING", "Warning"),
    HTTPH("WWW_AUTHENTICATE", "WWW-Authenticate"),
    HTTPH("X_POWERED_BY", "X-Powered-By"),
    HTTPH("VARY", "Vary"),
    HTTPH("DATE", "Date"),
    HTTPH("CONTENT_ENCODING", "Content-Encoding"),
    HTTPH("KEEP_ALIVE", "Keep-Alive"),
    HTTPH("LOCATION", "Location"),
    HTTPH("CONTENT_LANGUAGE", "Content-Language"),
    HTTPH("DERIVED_FROM", "Derived-From"),
    HTTPH("ALLOWED", "Allowed"),
    HTTPH("MIME_VERSION", "MIME-Version"),
    HTTPH("TITLE", "Title"),
    HTTPH("REFRESH", "Refresh"),
    FTPC("USER", "USER"),
    FTPC("PASS", "PASS"),
    FTPC("ACCT", "ACCT"),
    FTPC("FTP_TYPE", "TYPE"),
    FTPC("STRU", "STRU"),
    FTPC("MODE", "MODE"),
    FTPC("CWD", "CWD"),
    FTPC("PWD", "PWD"),
    FTPC("CDUP", "CDUP"),
    FTPC("PASV", "PASV"),
    FTPC("RETR", "RETR"),
    FTPC("REST", "REST"),
    FTPC("PORT", "PORT"),
    FTPC("LIST", "LIST"),
    FTPC("NLST", "NLST"),
    FTPC("QUIT", "QUIT"),
    FTPC("SYST", "SYST"),
    FTPC("STAT", "STAT"),
    FTPC("HELP", "HELP"),
    FTPC("NOOP", "NOOP"),
    FTPC("STOR", "STOR"),
    FTPC("APPE", "APPE"),
    FTPC("STOU", "STOU"),
    FTPC("ALLO", "ALLO"),
    FTPC("MKD", "MKD"),
    FTPC("RMD", "RMD"),
    FTPC("DELE", "DELE"),
    FTPC("RNFR", "RNFR"),
    FTPC("RNTO", "RNTO"),
    FTPC("SITE", "SITE"),
    {"FTP_RESPONSE_CODE", ANON_F_FTP_RESPONSE_CODE, ANON_S_FTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {"FTP_RESPONSE_ARG", ANON_F_FTP_RESPONSE_ARG, ANON_S_FTP, ANON_K_VAR, ANON_MAP_NONE, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static inline uint32_t rd16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

static const char *const http_methods[] = {"GET ",     "POST ",  "HEAD ",    "PUT ",   "DELETE ",
                                           "OPTIONS ", "TRACE ", "CONNECT ", "PATCH ", NULL};

/* Length of the method + blank that starts p[0..n), or 0. */
static size_t http_method_len(const uint8_t *p, size_t n)
{
    for (int i = 0; http_methods[i] != NULL; i++) {
        size_t l = strlen(http_methods[i]);
        if (n >= l && memcmp(p, http_methods[i], l) == 0)
            return l;
    }
    return 0;
}

/* Whether p[0..n) starts an HTTP message (request or status line). */
static int http_starts(const uint8_t *p, size_t n)
{
    if (n >= 7 && memcmp(p, "HTTP/1.", 7) == 0)
        return 1;
    return http_method_len(p, n) != 0;
}

uint32_t anon_ip_end(const struct mapi_pkt *pkt)
{
    const uint8_t *ip;
    uint32_t end;

    if (!(pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6)))
        return 0;
    ip = pkt->data + pkt->l3_off;
    if (pkt->flags & MAPI_PKT_IPV4)
        end = pkt->l3_off + rd16(ip + 2);
    else
        end = pkt->l3_off + 40 + rd16(ip + 4);
    return end < pkt->caplen ? end : pkt->caplen;
}

/* The TCP payload [*b, *e) of a TCP packet. Returns 0 if there is none captured. */
static int tcp_payload(const struct mapi_pkt *pkt, uint32_t *b, uint32_t *e)
{
    if (!(pkt->flags & MAPI_PKT_L4) || pkt->l4proto != 6 || pkt->payload_off == MAPI_OFF_NONE)
        return 0;
    *b = pkt->payload_off;
    *e = anon_ip_end(pkt);
    return *e > *b;
}

int anon_pkt_is(const struct mapi_pkt *pkt, int proto)
{
    uint32_t b, e;

    switch (proto) {
    case ANON_P_IP:
        return (pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6)) != 0;
    case ANON_P_TCP:
        return (pkt->flags & MAPI_PKT_L4) && pkt->l4proto == 6;
    case ANON_P_UDP:
        return (pkt->flags & MAPI_PKT_L4) && pkt->l4proto == 17;
    case ANON_P_ICMP:
        return (pkt->flags & MAPI_PKT_L4) && ((pkt->l4proto == 1 && (pkt->flags & MAPI_PKT_IPV4)) ||
                                              (pkt->l4proto == 58 && (pkt->flags & MAPI_PKT_IPV6)));
    case ANON_P_HTTP:
        if (!((pkt->flags & MAPI_PKT_L4) && pkt->l4proto == 6))
            return 0;
        if (pkt->sport == 80 || pkt->dport == 80 || pkt->sport == 8080 || pkt->dport == 8080 ||
            pkt->sport == 8000 || pkt->dport == 8000)
            return 1;
        return tcp_payload(pkt, &b, &e) && http_starts(pkt->data + b, e - b);
    case ANON_P_FTP:
        return (pkt->flags & MAPI_PKT_L4) && pkt->l4proto == 6 &&
               (pkt->sport == 21 || pkt->dport == 21);
    default:
        return 0;
    }
}

uint32_t anon_ip6_frag_header(const struct mapi_pkt *pkt)
{
    const uint8_t *d = pkt->data;
    uint32_t off = pkt->l3_off + 40u, proto = d[pkt->l3_off + 6], end = pkt->caplen;

    for (int guard = 0; guard < 64; guard++) {
        if (proto == 44)
            return off + 8 <= end ? off : 0;
        if (proto == 0 || proto == 43 || proto == 60) {
            if (off + 2 > end)
                return 0;
            proto = d[off];
            off += ((uint32_t)d[off + 1] + 1) * 8;
        } else if (proto == 51) {
            if (off + 2 > end)
                return 0;
            proto = d[off];
            off += ((uint32_t)d[off + 1] + 2) * 4;
        } else {
            return 0;
        }
    }
    return 0;
}

/* Fills a numeric location. Returns 1 if it lies inside the capture, else 0. */
static int num(const struct mapi_pkt *pkt, struct anon_loc *l, uint32_t off, uint32_t len,
               uint32_t mask, unsigned shift)
{
    if (off + len > pkt->caplen)
        return 0;
    l->off = off;
    l->len = len;
    l->mask = mask;
    l->shift = (uint8_t)shift;
    l->kind = ANON_K_NUM;
    l->text = 0;
    return 1;
}

/* Fills a byte-region location [b, e) of kind k. Returns 1 (0 if b > e). */
static int region(struct anon_loc *l, uint32_t b, uint32_t e, int k, int text)
{
    if (b > e)
        return 0;
    l->off = b;
    l->len = e - b;
    l->mask = 0;
    l->shift = 0;
    l->kind = (uint8_t)k;
    l->text = (uint8_t)text;
    return 1;
}

/* IP-layer fields. */
static int locate_ip(int field, const struct mapi_pkt *pkt, struct anon_loc *l)
{
    uint32_t ip = pkt->l3_off, fh;
    int v4 = (pkt->flags & MAPI_PKT_IPV4) != 0;
    const uint8_t *d = pkt->data;

    switch (field) {
    case ANON_F_SRC_IP:
    case ANON_F_DST_IP:
        if (v4)
            return region(l, ip + (field == ANON_F_SRC_IP ? 12 : 16),
                          ip + (field == ANON_F_SRC_IP ? 16 : 20), ANON_K_ADDR, 0);
        return region(l, ip + (field == ANON_F_SRC_IP ? 8 : 24),
                      ip + (field == ANON_F_SRC_IP ? 24 : 40), ANON_K_ADDR, 0);
    case ANON_F_TTL:
        return v4 ? num(pkt, l, ip + 8, 1, 0xff, 0) : num(pkt, l, ip + 7, 1, 0xff, 0);
    case ANON_F_TOS:
        return v4 ? num(pkt, l, ip + 1, 1, 0xff, 0) : num(pkt, l, ip, 2, 0x0ff0, 4);
    case ANON_F_ID:
        if (v4)
            return num(pkt, l, ip + 4, 2, 0xffff, 0);
        fh = anon_ip6_frag_header(pkt);
        return fh ? num(pkt, l, fh + 4, 4, 0xffffffffu, 0) : 0;
    case ANON_F_IP_PROTO:
        return v4 ? num(pkt, l, ip + 9, 1, 0xff, 0) : num(pkt, l, ip + 6, 1, 0xff, 0);
    case ANON_F_OPTIONS:
        if (!v4)
            return 0;
        {
            uint32_t hl = (uint32_t)(d[ip] & 0x0f) * 4;
            if (hl <= 20 || ip + hl > pkt->caplen)
                return 0;
            return region(l, ip + 20, ip + hl, ANON_K_OPT, 0);
        }
    case ANON_F_FRAGMENT_OFFSET:
        if (v4)
            return num(pkt, l, ip + 6, 2, 0x1fff, 0);
        fh = anon_ip6_frag_header(pkt);
        return fh ? num(pkt, l, fh + 2, 2, 0xfff8, 3) : 0;
    case ANON_F_PACKET_LENGTH:
        return num(pkt, l, ip + (v4 ? 2 : 4), 2, 0xffff, 0);
    case ANON_F_FLOW:
        return v4 ? 0 : num(pkt, l, ip + 1, 3, 0x0fffff, 0);
    default:
        return 0;
    }
}

/* Transport-layer fields (TCP, UDP, ICMP). */
static int locate_l4(int field, const struct mapi_pkt *pkt, struct anon_loc *l)
{
    uint32_t t = pkt->l4_off;

    if (!(pkt->flags & MAPI_PKT_L4))
        return 0;
    switch (field) {
    case ANON_F_SRC_PORT:
        return num(pkt, l, t, 2, 0xffff, 0);
    case ANON_F_DST_PORT:
        return num(pkt, l, t + 2, 2, 0xffff, 0);
    case ANON_F_SEQUENCE_NUMBER:
        return num(pkt, l, t + 4, 4, 0xffffffffu, 0);
    case ANON_F_ACK_NUMBER:
        return num(pkt, l, t + 8, 4, 0xffffffffu, 0);
    case ANON_F_OFFSET_AND_RESERVED:
        return num(pkt, l, t + 12, 1, 0xff, 0);
    case ANON_F_FLAGS:
        return num(pkt, l, t + 13, 1, 0xff, 0);
    case ANON_F_WINDOW:
        return num(pkt, l, t + 14, 2, 0xffff, 0);
    case ANON_F_URGENT_POINTER:
        return num(pkt, l, t + 18, 2, 0xffff, 0);
    case ANON_F_TCP_OPTIONS:
        if (pkt->payload_off == MAPI_OFF_NONE || pkt->payload_off <= t + 20)
            return 0;
        return region(l, t + 20, pkt->payload_off, ANON_K_OPT, 0);
    case ANON_F_UDP_DATAGRAM_LENGTH:
        return num(pkt, l, t + 4, 2, 0xffff, 0);
    case ANON_F_TYPE:
        return num(pkt, l, t, 1, 0xff, 0);
    case ANON_F_CODE:
        return num(pkt, l, t + 1, 1, 0xff, 0);
    default:
        return 0;
    }
}

/* ---- HTTP ---- */

#define HTTP_MAX_MSGS 50

/* Finds the end of the line starting at i: returns the index of its '\r' or '\n' (or e). */
static uint32_t line_end(const uint8_t *d, uint32_t i, uint32_t e)
{
    const uint8_t *p = memchr(d + i, '\n', e - i);
    uint32_t le = p ? (uint32_t)(p - d) : e;
    if (le > i && d[le - 1] == '\r')
        le--;
    return le;
}

/* Index after the line end at le (skips "\r\n" or "\n"). */
static uint32_t next_line(const uint8_t *d, uint32_t le, uint32_t e)
{
    if (le < e && d[le] == '\r')
        le++;
    if (le < e && d[le] == '\n')
        le++;
    return le;
}

static int add(struct anon_loc *locs, int n, int max, uint32_t b, uint32_t e, int text)
{
    if (n < max && region(&locs[n], b, e, ANON_K_VAR, text))
        n++;
    return n;
}

/* Parses a decimal Content-Length value. Returns it, or -1. */
static long long parse_clen(const uint8_t *d, uint32_t b, uint32_t e)
{
    long long v = 0;
    if (b >= e)
        return -1;
    for (uint32_t i = b; i < e; i++) {
        if (d[i] == ' ' || d[i] == '\t')
            continue;
        if (d[i] < '0' || d[i] > '9' || v > 1000000000000LL)
            return -1;
        v = v * 10 + (d[i] - '0');
    }
    return v;
}

/* Locates an HTTP field in the TCP payload [b, e). */
static int locate_http(const struct anon_rule *r, const struct mapi_pkt *pkt, uint32_t b,
                       uint32_t e, struct anon_loc *locs, int max)
{
    const uint8_t *d = pkt->data;
    const int field = r->fd->field;
    const char *hdr = r->fd->hdr;
    size_t hlen = hdr ? strlen(hdr) : 0;
    uint32_t i = b;
    int n = 0, msgs = 0;

    if (!http_starts(d + b, e - b))
        return field == ANON_F_PAYLOAD ? add(locs, n, max, b, e, 0) : 0;
    while (i < e && msgs < HTTP_MAX_MSGS && http_starts(d + i, e - i)) {
        uint32_t le = line_end(d, i, e), sp1, sp2;
        int response = memcmp(d + i, "HTTP/", 5) == 0;
        long long clen = -1;

        msgs++;
        /* start line: three parts separated by the first two blanks */
        sp1 = i;
        while (sp1 < le && d[sp1] != ' ')
            sp1++;
        sp2 = sp1 < le ? sp1 + 1 : le;
        while (sp2 < le && d[sp2] != ' ')
            sp2++;
        if (response) {
            if (field == ANON_F_HTTP_VERSION)
                n = add(locs, n, max, i, sp1, 1);
            else if (field == ANON_F_RESPONSE_CODE && sp1 < le)
                n = add(locs, n, max, sp1 + 1, sp2, 1);
            else if (field == ANON_F_RESP_CODE_DESCR && sp2 < le)
                n = add(locs, n, max, sp2 + 1, le, 1);
        } else {
            if (field == ANON_F_METHOD)
                n = add(locs, n, max, i, sp1, 1);
            else if (field == ANON_F_URI && sp1 < le)
                n = add(locs, n, max, sp1 + 1, sp2, 1);
            else if (field == ANON_F_HTTP_VERSION && sp2 < le)
                n = add(locs, n, max, sp2 + 1, le, 1);
        }
        /* header lines up to the blank line */
        i = next_line(d, le, e);
        int complete = 0;
        while (i < e) {
            le = line_end(d, i, e);
            if (le == i) { /* blank line */
                i = next_line(d, le, e);
                complete = 1;
                break;
            }
            const uint8_t *colon = memchr(d + i, ':', le - i);
            if (colon != NULL) {
                uint32_t c = (uint32_t)(colon - d), vb = c + 1;
                while (vb < le && (d[vb] == ' ' || d[vb] == '\t'))
                    vb++;
                if (hdr != NULL && c - i == hlen &&
                    strncasecmp((const char *)d + i, hdr, hlen) == 0)
                    n = add(locs, n, max, vb, le, 1);
                if (c - i == 14 && strncasecmp((const char *)d + i, "Content-Length", 14) == 0)
                    clen = parse_clen(d, vb, le);
            }
            i = next_line(d, le, e);
        }
        if (!complete)
            break;
        /* body */
        if (clen < 0 && !response)
            clen = 0; /* a request without Content-Length has no body: the next one may follow */
        uint32_t be = (clen < 0 || (long long)(e - i) < clen) ? e : i + (uint32_t)clen;
        if (field == ANON_F_PAYLOAD && be > i)
            n = add(locs, n, max, i, be, 0);
        i = be;
    }
    return n;
}

/* ---- FTP ---- */

static int locate_ftp(const struct anon_rule *r, const struct mapi_pkt *pkt, uint32_t b, uint32_t e,
                      struct anon_loc *locs, int max)
{
    const uint8_t *d = pkt->data;
    const int field = r->fd->field;
    const int server = pkt->sport == 21;
    uint32_t i = b;
    int n = 0;

    if (field == ANON_F_PAYLOAD)
        return add(locs, n, max, b, e, 0);
    while (i < e) {
        uint32_t le = line_end(d, i, e);
        if (server) {
            if (le - i >= 3 && d[i] >= '0' && d[i] <= '9' && d[i + 1] >= '0' && d[i + 1] <= '9' &&
                d[i + 2] >= '0' && d[i + 2] <= '9' &&
                (le - i == 3 || d[i + 3] == ' ' || d[i + 3] == '-')) {
                if (field == ANON_F_FTP_RESPONSE_CODE)
                    n = add(locs, n, max, i, i + 3, 1);
                else if (field == ANON_F_FTP_RESPONSE_ARG && le - i > 3)
                    n = add(locs, n, max, i + 4, le, 1);
            }
        } else if (field == ANON_F_FTP_COMMAND) {
            size_t cl = strlen(r->fd->hdr);
            if (le - i >= cl && strncasecmp((const char *)d + i, r->fd->hdr, cl) == 0 &&
                (le - i == cl || d[i + cl] == ' ')) {
                uint32_t ab = i + (uint32_t)cl;
                if (ab < le)
                    ab++; /* the blank */
                n = add(locs, n, max, ab, le, 1);
            }
        }
        i = next_line(d, le, e);
    }
    return n;
}

int anon_locate(const struct anon_rule *r, const struct mapi_pkt *pkt, struct anon_loc *locs,
                int max)
{
    const int field = r->fd->field;
    uint32_t b, e;

    if (!(pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6)) || max < 1)
        return 0;
    switch (r->fd->scope) {
    case ANON_S_IP:
        return locate_ip(field, pkt, locs);
    case ANON_S_PORTS:
    case ANON_S_TCP:
    case ANON_S_UDP:
    case ANON_S_ICMP:
        return locate_l4(field, pkt, locs);
    case ANON_S_HTTP:
        return tcp_payload(pkt, &b, &e) ? locate_http(r, pkt, b, e, locs, max) : 0;
    case ANON_S_FTP:
        return tcp_payload(pkt, &b, &e) ? locate_ftp(r, pkt, b, e, locs, max) : 0;
    default:
        break;
    }
    /* PAYLOAD and CHECKSUM, by protocol */
    e = anon_ip_end(pkt);
    if (field == ANON_F_CHECKSUM) {
        if (r->proto == ANON_P_IP)
            return (pkt->flags & MAPI_PKT_IPV4) ? num(pkt, locs, pkt->l3_off + 10u, 2, 0xffff, 0)
                                                : 0;
        if (!(pkt->flags & MAPI_PKT_L4))
            return 0;
        switch (pkt->l4proto) {
        case 6:
            return num(pkt, locs, pkt->l4_off + 16u, 2, 0xffff, 0);
        case 17:
            return num(pkt, locs, pkt->l4_off + 6u, 2, 0xffff, 0);
        default:
            return num(pkt, locs, pkt->l4_off + 2u, 2, 0xffff, 0);
        }
    }
    /* PAYLOAD */
    switch (r->proto) {
    case ANON_P_IP:
        if (pkt->flags & MAPI_PKT_IPV4)
            b = pkt->l3_off + (uint32_t)(pkt->data[pkt->l3_off] & 0x0f) * 4;
        else if (pkt->l4_off != MAPI_OFF_NONE)
            b = pkt->l4_off;
        else
            return 0; /* IPv6 fragment or truncated chain: where the payload starts is unknown */
        return region(locs, b, e > b ? e : b, ANON_K_VAR, 0);
    case ANON_P_HTTP:
        return tcp_payload(pkt, &b, &e) ? locate_http(r, pkt, b, e, locs, max) : 0;
    default: /* TCP, UDP, ICMP, FTP */
        if (pkt->payload_off == MAPI_OFF_NONE || pkt->payload_off > e)
            return 0;
        return region(locs, pkt->payload_off, e, ANON_K_VAR, 0);
    }
}
