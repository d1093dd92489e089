/*
 * drivers/pcap_live.c - capture driver for live network interfaces through libpcap.
 * Interface in drivers/driver.h.
 *
 * mapid opens one per configured NIC and its capture thread calls next_batch in a loop.
 * The handle is set up with pcap_create/pcap_activate: snaplen, promiscuous mode, a large
 * kernel ring (ring_bytes, default LIVE_DEFAULT_RING), nanosecond timestamps when the
 * interface offers them, non-blocking mode.
 *
 * Ring format: on Linux libpcap uses the block-based TPACKET_V3 ring unless immediate mode is
 * requested, in which case it falls back to TPACKET_V2 (one slot per packet, sized by
 * snaplen). This driver therefore does not set immediate mode; instead a short block timeout
 * (LIVE_BLOCK_TIMEOUT_MS) bounds the latency of a partly filled block. Set LIVE_IMMEDIATE to
 * 1 to trade the V3 ring for per-packet wake-ups.
 *
 * next_batch first drains what the ring holds; only when it is empty does it poll the
 * selectable descriptor for up to timeout_ms. libpcap's packet pointers are valid only
 * inside its callback, so each packet is copied into an arena owned by the source, which
 * stays valid until the next call.
 */
#include "drivers/driver.h"

#include "common/decode.h"
#include "mapi/errors.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LIVE_IMMEDIATE
#define LIVE_IMMEDIATE 0
#endif
#define LIVE_BLOCK_TIMEOUT_MS 10      /* TPACKET_V3 block retire timeout */
#define LIVE_DEFAULT_RING (64u << 20) /* bytes of kernel ring when ring_bytes is 0 */
#define LIVE_DEFAULT_SNAPLEN 65535u
#define ARENA_INIT_LEN (1u << 20)

struct capture_source {
    pcap_t *pcap;
    int fd; /* selectable descriptor, -1 if none */
    int linktype;
    uint32_t snaplen;
    int nsec; /* timestamps in nanoseconds */

    /* the batch being filled by the callback */
    struct mapi_pkt *pkts;
    int n;
    size_t used;
    int oom;

    uint8_t *arena;
    size_t arena_cap;

    /* pcap_stat counters are 32 bits: widened here from their deltas */
    uint32_t last_recv, last_drop;
    uint64_t recv, drop;
    char err[PCAP_ERRBUF_SIZE + 128];
};

/* libpcap callback: appends one packet to the batch (data as an arena offset for now). */
static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct capture_source *s = (struct capture_source *)user;
    size_t caplen = h->caplen;
    if (s->used + caplen > s->arena_cap) {
        size_t cap = s->arena_cap ? s->arena_cap : ARENA_INIT_LEN;
        while (cap < s->used + caplen)
            cap *= 2;
        uint8_t *a = realloc(s->arena, cap);
        if (!a) {
            s->oom = 1;
            pcap_breakloop(s->pcap);
            return;
        }
        s->arena = a;
        s->arena_cap = cap;
    }
    memcpy(s->arena + s->used, bytes, caplen);
    struct mapi_pkt *p = &s->pkts[s->n++];
    p->data = (const uint8_t *)(uintptr_t)s->used;
    p->caplen = (uint32_t)caplen;
    p->wlen = h->len;
    p->ts = s->nsec ? mapi_ts_from_nsec((uint64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec)
                    : mapi_ts_from_usec((uint64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec);
    p->ifindex = 0;
    p->linktype = (uint16_t)s->linktype;
    s->used = (s->used + caplen + 7) & ~(size_t)7;
}

/* One pcap_dispatch into the batch. Returns packets added, or CAPTURE_ERROR. */
static int dispatch(struct capture_source *s, int room)
{
    int before = s->n;
    int r = pcap_dispatch(s->pcap, room, on_packet, (u_char *)s);
    if (s->oom) {
        s->oom = 0;
        snprintf(s->err, sizeof s->err, "out of memory copying packets");
        return CAPTURE_ERROR;
    }
    if (r == PCAP_ERROR) {
        snprintf(s->err, sizeof s->err, "%s", pcap_geterr(s->pcap));
        return CAPTURE_ERROR;
    }
    return s->n - before; /* also for PCAP_ERROR_BREAK */
}

static void live_close(struct capture_source *s)
{
    if (!s)
        return;
    if (s->pcap)
        pcap_close(s->pcap);
    free(s->arena);
    free(s);
}

static struct capture_source *live_open(const struct capture_params *params, char *errbuf,
                                        size_t errlen, int *err)
{
    const char *dev = params->device;
    char pe[PCAP_ERRBUF_SIZE] = "";
    *err = PCAP_OPEN_ERR;
    if (!dev || !dev[0]) {
        snprintf(errbuf, errlen, "no interface name given");
        return NULL;
    }
    struct capture_source *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(errbuf, errlen, "%s: out of memory", dev);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        return NULL;
    }
    s->fd = -1;
    s->pcap = pcap_create(dev, pe);
    if (!s->pcap) {
        snprintf(errbuf, errlen, "%s: %s", dev, pe);
        goto fail;
    }
    uint32_t snaplen = params->snaplen ? params->snaplen : LIVE_DEFAULT_SNAPLEN;
    pcap_set_snaplen(s->pcap, (int)(snaplen > 0x7fffffffu ? 0x7fffffffu : snaplen));
    pcap_set_promisc(s->pcap, params->promisc ? 1 : 0);
    uint32_t ring = params->ring_bytes ? params->ring_bytes : LIVE_DEFAULT_RING;
    pcap_set_buffer_size(s->pcap, (int)(ring > 0x7fffffffu ? 0x7fffffffu : ring));
    if (LIVE_IMMEDIATE)
        pcap_set_immediate_mode(s->pcap, 1);
    else
        pcap_set_timeout(s->pcap, LIVE_BLOCK_TIMEOUT_MS);
    /* Fails (PCAP_ERROR_TSTAMP_PRECISION_NOTSUP) where unsupported: keep microseconds. */
    (void)pcap_set_tstamp_precision(s->pcap, PCAP_TSTAMP_PRECISION_NANO);

    int r = pcap_activate(s->pcap);
    if (r < 0) {
        const char *detail = pcap_geterr(s->pcap);
        switch (r) {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            snprintf(errbuf, errlen, "%s: no such network interface (%s)", dev, detail);
            break;
        case PCAP_ERROR_PERM_DENIED:
            snprintf(errbuf, errlen,
                     "%s: permission denied: capturing needs root or CAP_NET_RAW (%s)", dev,
                     detail);
            break;
        case PCAP_ERROR_IFACE_NOT_UP:
            snprintf(errbuf, errlen, "%s: the interface is not up", dev);
            break;
        default:
            snprintf(errbuf, errlen, "%s: %s%s%s", dev, pcap_statustostr(r), detail[0] ? ": " : "",
                     detail);
            break;
        }
        goto fail;
    }
    if (r > 0) /* a warning: capture works, keep the text for error() */
        snprintf(s->err, sizeof s->err, "%s: %s (%s)", dev, pcap_statustostr(r),
                 pcap_geterr(s->pcap));
    if (pcap_setnonblock(s->pcap, 1, pe) < 0) {
        snprintf(errbuf, errlen, "%s: %s", dev, pe);
        goto fail;
    }
    s->fd = pcap_get_selectable_fd(s->pcap);
    s->linktype = pcap_datalink(s->pcap);
    s->snaplen = (uint32_t)pcap_snapshot(s->pcap);
    s->nsec = pcap_get_tstamp_precision(s->pcap) == PCAP_TSTAMP_PRECISION_NANO;
    return s;

fail:
    live_close(s);
    return NULL;
}

static int live_next_batch(struct capture_source *s, struct mapi_pkt *pkts, int max, int timeout_ms)
{
    if (max <= 0)
        return 0;
    s->pkts = pkts;
    s->n = 0;
    s->used = 0;

    int r = dispatch(s, max);
    if (r == 0 && timeout_ms != 0) {
        if (s->fd >= 0) {
            struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, timeout_ms < 0 ? -1 : timeout_ms);
            if (pr < 0 && errno != EINTR) {
                snprintf(s->err, sizeof s->err, "poll: %s", strerror(errno));
                return CAPTURE_ERROR;
            }
            if (pr > 0 && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
                /* In blocking mode libpcap reads the socket error itself ("the interface
                 * went down"); if even that yields nothing, report instead of spinning. */
                char eb[PCAP_ERRBUF_SIZE];
                pcap_setnonblock(s->pcap, 0, eb);
                r = dispatch(s, max);
                pcap_setnonblock(s->pcap, 1, eb);
                if (r == 0) {
                    snprintf(s->err, sizeof s->err, "error on the capture socket (revents 0x%x)",
                             (unsigned)pfd.revents);
                    return CAPTURE_ERROR;
                }
            } else if (pr > 0) {
                r = dispatch(s, max);
            }
        } else {
            r = dispatch(s, max);
        }
    }
    if (r < 0)
        return CAPTURE_ERROR;
    for (int i = 0; i < s->n; i++)
        pkts[i].data = s->arena + (uintptr_t)pkts[i].data;
    return s->n;
}

static int live_linktype(const struct capture_source *s)
{
    return s->linktype;
}

static uint32_t live_snaplen(const struct capture_source *s)
{
    return s->snaplen;
}

static int live_stats(struct capture_source *s, uint64_t *recv, uint64_t *ifdrop)
{
    struct pcap_stat ps;
    if (pcap_stats(s->pcap, &ps) < 0) {
        snprintf(s->err, sizeof s->err, "%s", pcap_geterr(s->pcap));
        return -1;
    }
    uint32_t drop = ps.ps_drop + ps.ps_ifdrop;
    s->recv += (uint32_t)(ps.ps_recv - s->last_recv);
    s->drop += (uint32_t)(drop - s->last_drop);
    s->last_recv = ps.ps_recv;
    s->last_drop = drop;
    *recv = s->recv;
    *ifdrop = s->drop;
    return 0;
}

static const char *live_error(const struct capture_source *s)
{
    return s->err;
}

/* The driver for live interfaces (libpcap, TPACKET_V3 on Linux). */
const struct capture_driver_ops capture_pcap_live = {
    .name = "pcap-live",
    .open = live_open,
    .next_batch = live_next_batch,
    .linktype = live_linktype,
    .snaplen = live_snaplen,
    .stats = live_stats,
    .error = live_error,
    .close = live_close,
};
