/*
 * flib/stdflib/to_file.c - TO_FILE "iwl" format, file, count: writes the packets that reach
 * the function to a libpcap or pcapng file.
 *
 *   format  MFF_PCAP (0) or MFF_RAW (1): classic pcap (microsecond magic a1b2c3d4, version
 *           2.4); MFF_PCAPNG (5, ours): pcapng with nanosecond timestamps (one section, one
 *           interface with if_tsresol 9, enhanced packet blocks). Anything else is 7001.
 *           MFF_OVERWRITE (0x100) ORed in lets libmapi open an existing file, which we
 *           truncate at init; without it an existing file is refused (3083) by libmapi.
 *   file    a 'w' argument: libmapi created the file (O_EXCL, 0644; 3083 if it exists, 6155
 *           if it cannot be created) and mapid hands us the open descriptor. We own it from a
 *           successful instance() on and close it in cleanup(); if instance() fails, the host
 *           closes it.
 *   count   0 = unlimited; after count packets the function stops writing.
 *
 * The file header (snaplen = the device's, 65535 if 0; link type = the device's DLT mapped
 * to its LINKTYPE, i.e. DLT_RAW 12/14 -> LINKTYPE_RAW 101) is written at init (mapi_connect).
 * pcap: each record is the 16-byte record header (the 32.32 timestamp rounded to the nearest
 * microsecond) followed by caplen bytes of the frame. pcapng: each packet is an enhanced
 * packet block (timestamp rounded to the nearest nanosecond, data padded to 4 bytes).
 * Records are collected in a 1 MiB buffer, written with write() when it is full, when the
 * count is reached, at the end of a trace (flush: the file is complete once the flow is
 * FLOW_FINISHED) and at cleanup; short writes and EINTR are retried. A write error is logged
 * once and ends writing (the flow goes on).
 *
 * Result: int (4 bytes), 11 ("writing") from init on, 0 once count packets were written (the
 * original's clients poll for 0). Always returns 1 (never filters).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pcap/dlt.h>

#include "mapi.h"
#include "stdflib.h"

#define TO_FILE_BUFSIZE (1u << 20)
#define TO_FILE_WRITING 11
#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_HDR_LEN 24u
#define PCAP_REC_HDR_LEN 16u
#define LINKTYPE_RAW 101
#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 1u
#define PCAPNG_EPB 6u
#define PCAPNG_BOM 0x1A2B3C4Du

struct to_file {
    int fd;
    int pcapng;     /* MFF_PCAPNG, else classic pcap */
    int failed;     /* a write failed: nothing more is written */
    int done;       /* the count limit was reached */
    uint64_t limit; /* 0 = unlimited */
    uint64_t written;
    size_t used; /* bytes in buf */
    uint8_t *buf;
};

/*
 * DLT_* of this system -> LINKTYPE_* of the file: the inverse of the pcap driver's mapping
 * (the values that differ between platforms; DLT_RAW is 12, or 14 on OpenBSD).
 */
static uint32_t linktype_of(int dlt)
{
    if (dlt == 12 || dlt == 14)
        return LINKTYPE_RAW;
    switch (dlt) {
    case DLT_ATM_RFC1483:
        return 100;
    case DLT_SLIP_BSDOS:
        return 102;
    case DLT_PPP_BSDOS:
        return 103;
    case DLT_ATM_CLIP:
        return 106;
    default:
        return (uint32_t)dlt;
    }
}

/* Writes all of p[0..n) to the fd, retrying short writes and EINTR. Returns 0 or -1. */
static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the buffered bytes; on error logs it and stops writing for good. */
static void tf_flush(struct mapi_fn_instance *fi, struct to_file *t)
{
    if (t->used == 0 || t->failed)
        return;
    if (write_all(t->fd, t->buf, t->used) < 0) {
        int e = errno;
        t->failed = 1;
        fi->host->log(0, "TO_FILE (flow %d, fid %d): write failed: %s; no more packets written",
                      fi->flow_id, fi->fid, strerror(e));
    }
    t->used = 0;
}

/* Appends n bytes to the buffer, flushing when it is full. */
static void tf_append(struct mapi_fn_instance *fi, struct to_file *t, const void *p, size_t n)
{
    const uint8_t *q = p;

    while (n > 0 && !t->failed) {
        size_t room = TO_FILE_BUFSIZE - t->used;
        size_t k = n < room ? n : room;
        memcpy(t->buf + t->used, q, k);
        t->used += k;
        q += k;
        n -= k;
        if (t->used == TO_FILE_BUFSIZE)
            tf_flush(fi, t);
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* native byte order, as libpcap writes (the magic tells readers) */
}

static void put_u16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void set_result(struct mapi_fn_instance *fi, int32_t v)
{
    int32_t *r = fi->result;

    if (r == NULL)
        return;
    mapi_result_write_begin(fi);
    __atomic_store_n(r, v, __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
}

/* Checks the format, takes the file. Returns 0, 7001 (bad format), 7000 or 3084. */
int stdflib_to_file_instance(struct mapi_fn_instance *fi)
{
    struct to_file *t;
    int32_t format;

    if (fi->nargs < 3 || fi->args[1].type != 'w' || fi->args[1].v.fd < 0)
        return MFUNCT_INVALID_ARGUMENT;
    format = fi->args[0].v.i & ~MFF_OVERWRITE;
    if (format != MFF_PCAP && format != MFF_RAW && format != MFF_PCAPNG) {
        stdflib_errmsg(fi,
                       "TO_FILE: format %d is not MFF_PCAP (%d), MFF_RAW (%d) or MFF_PCAPNG (%d)",
                       (int)fi->args[0].v.i, MFF_PCAP, MFF_RAW, MFF_PCAPNG);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    t->buf = malloc(TO_FILE_BUFSIZE);
    if (t->buf == NULL) {
        free(t);
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    t->fd = fi->args[1].v.fd;
    t->pcapng = format == MFF_PCAPNG;
    t->limit = fi->args[2].v.l;
    fi->priv = t;
    fi->result_size = sizeof(int32_t);
    return 0;
}

/* The pcapng section header and interface description blocks. */
static void write_pcapng_header(struct mapi_fn_instance *fi, struct to_file *t)
{
    uint8_t b[28 + 32];

    put_u32(b, PCAPNG_SHB);
    put_u32(b + 4, 28);
    put_u32(b + 8, PCAPNG_BOM);
    put_u16(b + 12, 1); /* version 1.0 */
    put_u16(b + 14, 0);
    put_u32(b + 16, 0xffffffffu); /* section length unknown: -1 */
    put_u32(b + 20, 0xffffffffu);
    put_u32(b + 24, 28);
    uint8_t *i = b + 28;
    put_u32(i, PCAPNG_IDB);
    put_u32(i + 4, 32);
    put_u16(i + 8, (uint16_t)linktype_of(fi->linktype));
    put_u16(i + 10, 0);
    put_u32(i + 12, fi->snaplen ? fi->snaplen : 65535);
    put_u16(i + 16, 9); /* if_tsresol: 10^-9 */
    put_u16(i + 18, 1);
    put_u32(i + 20, 9); /* value byte 9, then padding */
    put_u32(i + 24, 0); /* opt_endofopt */
    put_u32(i + 28, 32);
    tf_append(fi, t, b, sizeof(b));
}

/* Truncates a replaced file, writes the file header and publishes 11. Returns 0. */
int stdflib_to_file_init(struct mapi_fn_instance *fi)
{
    struct to_file *t = fi->priv;
    uint8_t h[PCAP_HDR_LEN];

    if (ftruncate(t->fd, 0) < 0 && errno != EINVAL)
        fi->host->log(1, "TO_FILE (flow %d, fid %d): cannot truncate the file: %s", fi->flow_id,
                      fi->fid, strerror(errno));
    if (t->pcapng) {
        write_pcapng_header(fi, t);
    } else {
        put_u32(h, PCAP_MAGIC_USEC);
        put_u16(h + 4, 2);
        put_u16(h + 6, 4);
        put_u32(h + 8, 0);  /* thiszone */
        put_u32(h + 12, 0); /* sigfigs */
        put_u32(h + 16, fi->snaplen ? fi->snaplen : 65535);
        put_u32(h + 20, linktype_of(fi->linktype));
        tf_append(fi, t, h, sizeof(h));
    }
    set_result(fi, TO_FILE_WRITING);
    return 0;
}

/* One pcapng enhanced packet block. */
static void append_epb(struct mapi_fn_instance *fi, struct to_file *t, const struct mapi_pkt *pkt)
{
    static const uint8_t zeros[4];
    uint8_t h[28], tail[4];
    uint32_t pad = (4u - (pkt->caplen & 3u)) & 3u;
    uint32_t len = 32u + pkt->caplen + pad;
    uint64_t ns = (pkt->ts >> 32) * 1000000000ull +
                  (((pkt->ts & 0xffffffffull) * 1000000000ull + (1ull << 31)) >> 32);

    put_u32(h, PCAPNG_EPB);
    put_u32(h + 4, len);
    put_u32(h + 8, 0); /* interface 0 */
    put_u32(h + 12, (uint32_t)(ns >> 32));
    put_u32(h + 16, (uint32_t)ns);
    put_u32(h + 20, pkt->caplen);
    put_u32(h + 24, pkt->wlen);
    tf_append(fi, t, h, sizeof(h));
    tf_append(fi, t, pkt->data, pkt->caplen);
    tf_append(fi, t, zeros, pad);
    put_u32(tail, len);
    tf_append(fi, t, tail, sizeof(tail));
}

/* Appends the packet (until the count is reached). Returns 1. */
int stdflib_to_file_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct to_file *t = fi->priv;
    uint8_t h[PCAP_REC_HDR_LEN];
    uint64_t sec = pkt->ts >> 32;
    uint64_t usec = ((pkt->ts & 0xffffffffull) * 1000000ull + (1ull << 31)) >> 32;

    if (t->done || t->failed)
        return 1;
    if (t->pcapng) {
        append_epb(fi, t, pkt);
    } else {
        if (usec >= 1000000) {
            usec -= 1000000;
            sec++;
        }
        put_u32(h, (uint32_t)sec);
        put_u32(h + 4, (uint32_t)usec);
        put_u32(h + 8, pkt->caplen);
        put_u32(h + 12, pkt->wlen);
        tf_append(fi, t, h, sizeof(h));
        tf_append(fi, t, pkt->data, pkt->caplen);
    }
    t->written++;
    if (t->limit != 0 && t->written >= t->limit) {
        t->done = 1;
        tf_flush(fi, t);
        set_result(fi, 0);
    }
    return 1;
}

/* End of a trace: writes what is buffered, so the file is complete when the flow finishes. */
void stdflib_to_file_flush(struct mapi_fn_instance *fi)
{
    struct to_file *t = fi->priv;

    if (t != NULL)
        tf_flush(fi, t);
}

/* Flushes what is buffered, closes the file, frees the state. */
void stdflib_to_file_cleanup(struct mapi_fn_instance *fi)
{
    struct to_file *t = fi->priv;

    if (t == NULL)
        return;
    tf_flush(fi, t);
    if (close(t->fd) < 0 && errno != EINTR)
        fi->host->log(0, "TO_FILE (flow %d, fid %d): close failed: %s", fi->flow_id, fi->fid,
                      strerror(errno));
    free(t->buf);
    free(t);
    fi->priv = NULL;
}
