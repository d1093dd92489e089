/*
 * tests/fuzz/fuzz_util.h - helpers shared by the fuzz targets of the trace-file drivers
 * (pcap_fuzz.c, erf_fuzz.c): run a driver over a byte buffer (through a memfd, as mapid reads
 * the descriptor a client sent) and collect what it hands out; gzip a buffer with zlib.
 * Header-only (static functions) so that each target stays one translation unit.
 */
#ifndef MAPI_TESTS_FUZZ_UTIL_H
#define MAPI_TESTS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "drivers/driver.h"

/* One packet as a driver handed it out (data copied). */
struct fz_pkt {
    uint8_t *data;
    uint32_t caplen, wlen;
    uint64_t ts;
    uint16_t ifindex, linktype;
};

/* What one run of a driver produced. */
struct fz_run {
    int opened;       /* open succeeded */
    int open_err;     /* MAPI error number when it did not */
    int linktype;     /* of the source */
    uint32_t snaplen; /* of the source */
    int end;          /* CAPTURE_EOF or CAPTURE_ERROR */
    char err[512];    /* open's message, or error() at the end */
    struct fz_pkt *pkts;
    size_t n, cap;
};

static inline void fz_run_free(struct fz_run *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->pkts[i].data);
    free(r->pkts);
    memset(r, 0, sizeof *r);
}

/* A memfd holding data[0..size), positioned at 0; -1 on failure. */
/* A new packet slot at the end of r (grown as needed); its fields are the caller's to fill. */
static inline struct fz_pkt *fz_run_push(struct fz_run *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->pkts = realloc(r->pkts, r->cap * sizeof *r->pkts);
        if (!r->pkts)
            abort();
    }
    return &r->pkts[r->n++];
}

static inline int fz_memfd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-trace", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Runs ops over data with batches of `batch` packets and fills r. Checks what every driver
 * must guarantee: a refusal says why; caplen <= cap_bound (the format's bound) and the
 * packet's bytes are readable (copied here; ASan checks the read); the link type of each
 * packet is known. Aborts on a violation. Returns 0, or -1 when the run could not be set up.
 */
static inline int fz_run_driver(const struct capture_driver_ops *ops, int format,
                                const uint8_t *data, size_t size, int batch, struct fz_run *r)
{
    memset(r, 0, sizeof *r);
    int fd = fz_memfd(data, size);
    if (fd < 0)
        return -1;
    struct capture_params p = {.device = "fuzz", .fd = fd, .format = format};
    int err = 0;
    struct capture_source *src = ops->open(&p, r->err, sizeof r->err, &err);
    if (!src) {
        if (r->err[0] == 0 || err == 0)
            abort(); /* a refusal names its reason and an error number */
        r->open_err = err;
        return 0;
    }
    r->opened = 1;
    r->linktype = ops->linktype(src);
    r->snaplen = ops->snaplen(src);
    struct mapi_pkt *pk = calloc((size_t)batch, sizeof *pk);
    if (!pk)
        abort();
    for (;;) {
        int n = ops->next_batch(src, pk, batch, 0);
        if (n == 0 || n > batch)
            abort(); /* files never time out, and a batch holds at most max packets */
        if (n < 0) {
            if (n != CAPTURE_EOF && n != CAPTURE_ERROR)
                abort();
            r->end = n;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct fz_pkt *q = fz_run_push(r);
            q->caplen = pk[i].caplen;
            q->wlen = pk[i].wlen;
            q->ts = pk[i].ts;
            q->ifindex = pk[i].ifindex;
            q->linktype = pk[i].linktype;
            q->data = malloc(q->caplen ? q->caplen : 1);
            if (!q->data)
                abort();
            if (q->caplen)
                memcpy(q->data, pk[i].data, q->caplen);
        }
    }
    /* After the end the source stays at its end. */
    if (ops->next_batch(src, pk, batch, 0) >= 0)
        abort();
    snprintf(r->err, sizeof r->err, "%s", ops->error(src));
    uint64_t recv = 0, drop = 0;
    if (ops->stats(src, &recv, &drop) == 0 && (recv != r->n || drop != 0))
        abort(); /* a trace counts what it delivered and drops nothing */
    free(pk);
    ops->close(src);
    return 0;
}

/* Whether two runs handed out the same packets (and ended the same way). */
static inline int fz_same_packets(const struct fz_run *a, const struct fz_run *b)
{
    if (a->opened != b->opened || a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const struct fz_pkt *x = &a->pkts[i], *y = &b->pkts[i];
        if (x->caplen != y->caplen || x->wlen != y->wlen || x->ts != y->ts ||
            x->ifindex != y->ifindex || x->linktype != y->linktype ||
            memcmp(x->data, y->data, x->caplen) != 0)
            return 0;
    }
    return 1;
}

/* data gzip-compressed (a new buffer in *out), as gzip(1) writes it. Returns 0 or -1. */
static inline int fz_gzip(const uint8_t *data, size_t size, uint8_t **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 9 + 16, 1, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)size) + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Whether data starts like a gzip stream (the drivers' test). */
static inline int fz_is_gzip(const uint8_t *data, size_t size)
{
    return size >= 4 && data[0] == 0x1f && data[1] == 0x8b && data[2] == 8 && (data[3] & 0xe0) == 0;
}

/* Property shared by the trace readers: the same trace gzip-compressed reads the same packets,
 * to the same end and (when it opened) the same error text as `plain`, read in batches of 64.
 * Aborts otherwise; does nothing when zlib cannot compress the input. */
static inline void fz_check_gzip_same(const struct capture_driver_ops *ops, int format,
                                      const uint8_t *data, size_t size, const struct fz_run *plain)
{
    uint8_t *gz;
    size_t gzlen;
    if (fz_gzip(data, size, &gz, &gzlen) != 0)
        return;
    struct fz_run z;
    if (fz_run_driver(ops, format, gz, gzlen, 64, &z) == 0) {
        if (!fz_same_packets(&z, plain) || z.end != plain->end ||
            (plain->opened && strcmp(z.err, plain->err) != 0))
            abort();
    }
    fz_run_free(&z);
    free(gz);
}

#endif
