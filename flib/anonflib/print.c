/*
 * flib/anonflib/print.c - PRINT_PACKET "": logs a one-line decode of every packet.
 *
 * The original printed to mapid's stdout; mapid is a daemon, so the line goes to mapid's log
 * at info level instead (host->log level 2: the log file and syslog as mapi.conf says). The
 * format follows `tcpdump -n -v`:
 *   1700000000.123456 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6),
 *     length 60) 10.0.0.1.1234 > 10.0.0.2.80: Flags [S], seq 1, win 65535, length 0
 *   ... IP6 (flowlabel 0x12345, hlim 64, next-header UDP (17) payload length: 20) a.53 > b.9:
 *     UDP, length 12
 *   ... ICMP type 8, code 0, length 56  /  ethertype 0x0806, length 42
 * (one line each). It reads the decoded fields, never changes the packet and never drops it.
 *
 * Rate limit: the log is root's and shared, so each PRINT_PACKET instance writes at most
 * print_packet_burst lines at once and print_packet_rate lines per second on average (a token
 * bucket on the monotonic clock; mapi.conf, defaults 100 and 10). Packets over the limit are
 * counted, not logged; the next line logged after them, and the instance's cleanup, say how
 * many lines were suppressed ("PRINT_PACKET of flow N: K lines suppressed ...").
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anonflib.h"

/* The token bucket of one PRINT_PACKET instance (fi->priv). Tokens are in 1/1000 lines. */
struct print_state {
    uint64_t rate;       /* lines per second (print_packet_rate) */
    uint64_t burst;      /* lines at once (print_packet_burst) */
    uint64_t tokens;     /* milli-lines available */
    uint64_t last_ns;    /* clock of the last refill */
    uint64_t suppressed; /* lines not logged since the last one logged */
    uint64_t total;      /* lines not logged in all */
};

/* A positive number of mapi.conf (def if unset or not a number). */
static uint64_t conf_count(const struct mapi_fn_instance *fi, const char *key, uint64_t def)
{
    const char *v = fi->host && fi->host->conf_value ? fi->host->conf_value(key) : NULL;
    unsigned long long x = 0;
    char *end;

    if (v == NULL || *v < '0' || *v > '9')
        return def;
    x = strtoull(v, &end, 10);
    return *end == '\0' ? x : def;
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* No arguments; reads the rate limit of mapi.conf. Returns 0, or 3084 (memory). */
int anon_print_instance(struct mapi_fn_instance *fi)
{
    struct print_state *st = calloc(1, sizeof *st);

    if (st == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    st->rate = conf_count(fi, "print_packet_rate", 10);
    st->burst = conf_count(fi, "print_packet_burst", 100);
    if (st->rate > 1000000u)
        st->rate = 1000000u;
    if (st->burst > 1000000u)
        st->burst = 1000000u;
    if (st->burst == 0)
        st->burst = 1;
    st->tokens = st->burst * 1000u;
    st->last_ns = coarse_ns();
    fi->priv = st;
    return 0;
}

/* Logs how many lines were suppressed in all, frees the state. */
void anon_print_cleanup(struct mapi_fn_instance *fi)
{
    struct print_state *st = fi->priv;

    if (st == NULL)
        return;
    if (st->total > 0)
        fi->host->log(1,
                      "PRINT_PACKET of flow %d: %llu lines suppressed in all "
                      "(print_packet_rate=%llu/s, print_packet_burst=%llu)",
                      fi->flow_id, (unsigned long long)st->total, (unsigned long long)st->rate,
                      (unsigned long long)st->burst);
    free(st);
    fi->priv = NULL;
}

static inline uint32_t rd16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}
static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* snprintf appending at *o, never past size. */
static void put(char *buf, size_t size, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t size, size_t *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*o >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *o, size - *o, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o = *o + (size_t)n < size ? *o + (size_t)n : size - 1;
}

static const char *proto_name(unsigned p)
{
    switch (p) {
    case 1:
        return "ICMP";
    case 2:
        return "IGMP";
    case 6:
        return "TCP";
    case 17:
        return "UDP";
    case 41:
        return "IPv6";
    case 47:
        return "GRE";
    case 50:
        return "ESP";
    case 58:
        return "ICMP6";
    case 132:
        return "SCTP";
    default:
        return "unknown";
    }
}

size_t anon_format_packet(const struct mapi_pkt *pkt, char *buf, size_t size)
{
    const uint8_t *d = pkt->data;
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    uint32_t ipend, l4len = 0;
    size_t o = 0;
    int v4 = (pkt->flags & MAPI_PKT_IPV4) != 0;

    if (size == 0)
        return 0;
    buf[0] = '\0';
    put(buf, size, &o, "%llu.%06llu ", (unsigned long long)(pkt->ts >> 32),
        (unsigned long long)(((pkt->ts & 0xffffffffu) * 1000000u) >> 32));
    if (!(pkt->flags & (MAPI_PKT_IPV4 | MAPI_PKT_IPV6))) {
        put(buf, size, &o, "ethertype 0x%04x, length %u", pkt->ethertype, pkt->wlen);
        return o;
    }
    const uint8_t *ip = d + pkt->l3_off;
    inet_ntop(v4 ? AF_INET : AF_INET6, pkt->src, src, sizeof src);
    inet_ntop(v4 ? AF_INET : AF_INET6, pkt->dst, dst, sizeof dst);
    if (v4) {
        uint32_t fo = rd16(ip + 6);
        put(buf, size, &o,
            "IP (tos 0x%x, ttl %u, id %u, offset %u, flags [%s], proto %s (%u), "
            "length %u)",
            ip[1], ip[8], rd16(ip + 4), (fo & 0x1fff) * 8,
            (fo & 0x4000) ? ((fo & 0x2000) ? "DF+" : "DF") : ((fo & 0x2000) ? "+" : "none"),
            proto_name(ip[9]), ip[9], rd16(ip + 2));
    } else {
        put(buf, size, &o,
            "IP6 (flowlabel 0x%05x, hlim %u, next-header %s (%u) payload length: %u)",
            rd32(ip) & 0xfffff, ip[7], proto_name(pkt->l4proto), pkt->l4proto, rd16(ip + 4));
    }
    ipend = anon_ip_end(pkt);
    if (!(pkt->flags & MAPI_PKT_L4) || (pkt->flags & MAPI_PKT_FRAGMENT)) {
        put(buf, size, &o, " %s > %s:%s", src, dst,
            (pkt->flags & MAPI_PKT_FRAGMENT) ? " fragment" : "");
        return o;
    }
    const uint8_t *t = d + pkt->l4_off;
    if (pkt->payload_off != MAPI_OFF_NONE && ipend > pkt->payload_off)
        l4len = ipend - pkt->payload_off;
    switch (pkt->l4proto) {
    case 6: {
        char fl[16];
        size_t k = 0;
        static const struct {
            uint8_t bit;
            char c;
        } f[] = {{0x02, 'S'}, {0x01, 'F'}, {0x08, 'P'}, {0x04, 'R'},
                 {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}, {0x10, '.'}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if (t[13] & f[i].bit)
                fl[k++] = f[i].c;
        if (k == 0)
            fl[k++] = 'n', fl[k++] = 'o', fl[k++] = 'n', fl[k++] = 'e';
        fl[k] = '\0';
        put(buf, size, &o, " %s.%u > %s.%u: Flags [%s], seq %u", src, pkt->sport, dst, pkt->dport,
            fl, rd32(t + 4));
        if (t[13] & 0x10)
            put(buf, size, &o, ", ack %u", rd32(t + 8));
        put(buf, size, &o, ", win %u, length %u", rd16(t + 14), l4len);
        break;
    }
    case 17:
        put(buf, size, &o, " %s.%u > %s.%u: UDP, length %u", src, pkt->sport, dst, pkt->dport,
            l4len);
        break;
    case 1:
    case 58:
        put(buf, size, &o, " %s > %s: ICMP%s type %u, code %u, length %u", src, dst,
            pkt->l4proto == 58 ? "6" : "", t[0], t[1], ipend - pkt->l4_off);
        break;
    default:
        put(buf, size, &o, " %s > %s: %s (%u)", src, dst, proto_name(pkt->l4proto), pkt->l4proto);
        break;
    }
    return o;
}

/* Logs the packet at info level if the rate limit allows. Returns 1 (never drops). */
int anon_print_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct print_state *st = fi->priv;
    char line[512];

    if (st->tokens < 1000u) {
        uint64_t now = coarse_ns(), cap = st->burst * 1000u;
        uint64_t add = (now - st->last_ns) / 1000u * st->rate / 1000u; /* milli-lines */
        if (add > 0) {
            st->tokens = cap - st->tokens < add ? cap : st->tokens + add;
            st->last_ns = now;
        }
        if (st->tokens < 1000u) {
            st->suppressed++;
            st->total++;
            return 1;
        }
    }
    st->tokens -= 1000u;
    if (st->suppressed > 0) {
        fi->host->log(1,
                      "PRINT_PACKET of flow %d: %llu lines suppressed (print_packet_rate=%llu/s, "
                      "print_packet_burst=%llu)",
                      fi->flow_id, (unsigned long long)st->suppressed, (unsigned long long)st->rate,
                      (unsigned long long)st->burst);
        st->suppressed = 0;
    }
    anon_format_packet(pkt, line, sizeof line);
    fi->host->log(2, "PRINT_PACKET: %s", line);
    return 1;
}
