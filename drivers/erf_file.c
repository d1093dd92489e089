/*
 * drivers/erf_file.c - capture driver for ERF trace files (Endace's Extensible Record
 * Format, mapi.conf format MFF_DAG_ERF). Interface in drivers/driver.h.
 *
 * An ERF file is a plain sequence of records, with no file header. Each record starts with
 * 16 bytes: an 8-byte little-endian timestamp that is already 32.32 fixed point, a type byte
 * (low 7 bits the type, bit 7 "extension headers follow"), a flags byte (bits 0-1 the
 * capture interface, reported as ifindex), then big-endian rlen (the whole record), lctr
 * (loss counter or colour) and wlen. 8-byte extension headers follow while the top bit of
 * their first byte says so; then the payload:
 *   Ethernet types (2, 11 colour, 16 DSM colour, 20 colour hash): a 2-byte pad, then the
 *       frame -> DLT_EN10MB;
 *   HDLC/POS types (1, 10, 15, 19): the frame -> DLT_PPP_SERIAL when it starts with 0xff
 *       (PPP in HDLC framing), DLT_C_HDLC otherwise;
 *   IPv4 (22) / IPv6 (23): the IP packet -> DLT_RAW (the decoder looks at the version: libtrace
 *       writes both versions as type 22);
 *   padding (48) and provenance/metadata (27) records carry no packet and are skipped; other
 *   types are skipped too and counted in the warning that error() returns.
 *
 * Lengths. For Ethernet, ERF's wlen counts the 4-byte FCS (DAG cards report it, and libtrace's
 * traceconvert adds 4 to the pcap wire length when it writes ERF), while libpcap, tcpdump and
 * tshark-on-pcap count frames without it. The driver reports wlen - 4 for Ethernet records so
 * that byte counts over an ERF trace equal tcpdump's over the pcap it came from, and clamps
 * caplen (rlen - 16 - extension headers - pad) to that wlen, which drops a captured FCS and
 * the alignment padding some cards add. Other types report wlen as stored (for IP records
 * converted from Linux cooked captures, libtrace keeps the original frame length, 16 bytes
 * more than the IP packet).
 *
 * The link type of the file is that of its first packet record; each packet carries its own
 * linktype, so files mixing types decode correctly. rlen < 16 or extension headers running
 * past rlen make a record corrupt, a record running past the end of the file truncated: the
 * packets before it are delivered, then CAPTURE_EOF with the reason in error().
 *
 * Input: drivers/trace_input.h, shared with the pcap driver. The descriptor is read with read()
 * (never mmap'ed, so a trace truncated under mapid cannot kill it with SIGBUS) into a buffer of
 * 1 MiB; packets point into the buffer, which is compacted only when a record runs past its
 * end. A trace that starts with the gzip magic (1f 8b 08), as libtrace's traceconvert always
 * writes ERF, is inflated into the same buffer; a corrupt or truncated compressed stream ends
 * the trace like a truncated file.
 */
#include "drivers/driver.h"
#include "drivers/trace_input.h"

#include "mapi/errors.h"

#include <errno.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERF_HDR_LEN 16u
#define ERF_EXT_LEN 8u
#define ERF_MAX_RLEN 65535u /* rlen is 16 bits */
#define SNIFF_RECORDS 1024  /* records examined at open for the link type */

enum erf_type {
    ERF_TYPE_HDLC_POS = 1,
    ERF_TYPE_ETH = 2,
    ERF_TYPE_COLOR_HDLC_POS = 10,
    ERF_TYPE_COLOR_ETH = 11,
    ERF_TYPE_DSM_COLOR_HDLC_POS = 15,
    ERF_TYPE_DSM_COLOR_ETH = 16,
    ERF_TYPE_COLOR_HASH_POS = 19,
    ERF_TYPE_COLOR_HASH_ETH = 20,
    ERF_TYPE_IPV4 = 22,
    ERF_TYPE_IPV6 = 23,
    ERF_TYPE_META = 27,
    ERF_TYPE_PAD = 48,
};

enum walk_status { WALK_FULL, WALK_END, WALK_SHORT, WALK_CORRUPT };

struct capture_source {
    struct trace_input in; /* the trace's bytes; records in in.buf, the next at in.pos */
    int linktype;
    int finished;
    uint64_t nrec;    /* records consumed (packets and skipped ones) */
    uint64_t npkt;    /* packets delivered */
    uint64_t skipped; /* records of unsupported types */
    int last_skipped_type;

    size_t need;   /* bytes the record at in.pos needs (after WALK_SHORT) */
    char bad[160]; /* detail of a corrupt record */

    char err[320];
};

static inline uint32_t be16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/*
 * Classifies a record type: returns the DLT_* of its payload and sets *pad and *eth, or -1
 * for records without a packet (padding, metadata) and -2 for unsupported types.
 */
static inline int type_linktype(unsigned type, const uint8_t *payload, size_t len, unsigned *pad,
                                int *eth)
{
    *pad = 0;
    *eth = 0;
    switch (type) {
    case ERF_TYPE_ETH:
    case ERF_TYPE_COLOR_ETH:
    case ERF_TYPE_DSM_COLOR_ETH:
    case ERF_TYPE_COLOR_HASH_ETH:
        *pad = 2;
        *eth = 1;
        return DLT_EN10MB;
    case ERF_TYPE_IPV4:
    case ERF_TYPE_IPV6:
        return DLT_RAW;
    case ERF_TYPE_HDLC_POS:
    case ERF_TYPE_COLOR_HDLC_POS:
    case ERF_TYPE_DSM_COLOR_HDLC_POS:
    case ERF_TYPE_COLOR_HASH_POS:
        return len > 0 && payload[0] == 0xff ? DLT_PPP_SERIAL : DLT_C_HDLC;
    case ERF_TYPE_PAD:
    case ERF_TYPE_META:
        return -1;
    default:
        return -2;
    }
}

/* Fills pkts from the records at s->in.pos (the hot loop). */
static int walk(struct capture_source *s, struct mapi_pkt *pkts, int max, int *count)
{
    const uint8_t *d = s->in.buf;
    const size_t size = s->in.size;
    size_t pos = s->in.pos;
    int n = 0, st = WALK_FULL;

    while (n < max) {
        const size_t left = size - pos;
        if (left < ERF_HDR_LEN) {
            st = left ? WALK_SHORT : WALK_END;
            s->need = ERF_HDR_LEN;
            break;
        }
        const uint8_t *r = d + pos;
        const uint32_t rlen = be16(r + 10);
        if (rlen < ERF_HDR_LEN) {
            snprintf(s->bad, sizeof s->bad, "rlen %u < 16", rlen);
            st = WALK_CORRUPT;
            break;
        }
        if (left < rlen) {
            st = WALK_SHORT;
            s->need = rlen;
            break;
        }
        unsigned hdr = ERF_HDR_LEN, t = r[8];
        while (t & 0x80) { /* extension headers */
            if (hdr + ERF_EXT_LEN > rlen)
                break;
            t = r[hdr];
            hdr += ERF_EXT_LEN;
        }
        if (t & 0x80) {
            snprintf(s->bad, sizeof s->bad, "extension headers run past rlen %u", rlen);
            st = WALK_CORRUPT;
            break;
        }
        unsigned pad;
        int eth;
        int lt = type_linktype(r[8] & 0x7fu, r + hdr, rlen - hdr, &pad, &eth);
        pos += rlen;
        s->nrec++;
        if (lt < 0) {
            if (lt == -2) {
                s->skipped++;
                s->last_skipped_type = r[8] & 0x7f;
            }
            continue;
        }
        uint32_t wlen = be16(r + 14);
        if (eth)
            wlen = wlen >= 4 ? wlen - 4 : 0;
        uint32_t caplen = rlen - hdr >= pad ? rlen - hdr - pad : 0;
        if (caplen > wlen)
            caplen = wlen;
        struct mapi_pkt *p = &pkts[n++];
        p->data = r + hdr + pad;
        p->caplen = caplen;
        p->wlen = wlen;
        p->ts = le64(r);
        p->ifindex = r[9] & 0x03;
        p->linktype = (uint16_t)lt;
    }
    s->in.pos = pos;
    s->npkt += (uint64_t)n;
    *count = n;
    return st;
}

static int finish(struct capture_source *s, int st)
{
    s->finished = 1;
    unsigned long long rec = (unsigned long long)s->nrec + 1;
    unsigned long long off = (unsigned long long)trace_input_offset(&s->in);
    const char *gz = trace_input_error(&s->in);
    if (st == WALK_CORRUPT)
        snprintf(s->err, sizeof s->err, "trace corrupt at record %llu (offset %llu): %s", rec, off,
                 s->bad);
    else if (st == WALK_SHORT || gz[0])
        snprintf(s->err, sizeof s->err, "trace truncated at record %llu (offset %llu)%s%s", rec,
                 off, gz[0] ? ": " : "", gz);
    else if (s->skipped)
        snprintf(s->err, sizeof s->err,
                 "skipped %llu records of unsupported ERF types (the last of type %d)",
                 (unsigned long long)s->skipped, s->last_skipped_type);
    return CAPTURE_EOF;
}

static int next_read(struct capture_source *s, struct mapi_pkt *pkts, int max)
{
    for (;;) {
        int n;
        int st = walk(s, pkts, max, &n);
        if (n > 0)
            return n; /* a problem at pos shows up again, with n == 0, on the next call */
        if (st == WALK_CORRUPT || s->in.at_eof)
            return finish(s, st);
        /* Only skipped records, or the next record is incomplete. The previous batch is
         * released: drop what it used (only here, so only the tail of a record is copied), then
         * read more. */
        if (trace_input_refill(&s->in, st == WALK_SHORT ? s->need : ERF_HDR_LEN) < 0) {
            snprintf(s->err, sizeof s->err, "reading the trace: %s", strerror(errno));
            return CAPTURE_ERROR;
        }
    }
}

static void erf_close(struct capture_source *s)
{
    if (!s)
        return;
    trace_input_close(&s->in);
    free(s);
}

/*
 * Checks that data starts like an ERF trace and finds the link type of the first packet
 * record. Returns 0, or -1 with a message in errbuf.
 */
static int sniff(struct capture_source *s, const char *name, char *errbuf, size_t errlen)
{
    const uint8_t *d = s->in.buf;
    const size_t size = s->in.size;
    uint32_t magic = 0;
    if (size >= 4)
        memcpy(&magic, d, 4);
    if (size >= 4 && (magic == 0xa1b2c3d4u || magic == 0xd4c3b2a1u || magic == 0xa1b23c4du ||
                      magic == 0x4d3cb2a1u || magic == 0x0a0d0d0au)) {
        snprintf(errbuf, errlen, "%s: this is a pcap/pcapng file, not ERF (use format MFF_PCAP)",
                 name);
        return -1;
    }
    if (size < ERF_HDR_LEN) {
        snprintf(errbuf, errlen, "%s: not an ERF file (only %zu bytes)", name, size);
        return -1;
    }
    unsigned t0 = d[8] & 0x7fu, rlen0 = be16(d + 10);
    if (rlen0 < ERF_HDR_LEN || t0 == 0 || t0 > ERF_TYPE_PAD) {
        snprintf(errbuf, errlen, "%s: not an ERF file (first record: type %u, rlen %u)", name, t0,
                 rlen0);
        return -1;
    }
    s->linktype = DLT_EN10MB; /* for a file of padding only */
    size_t pos = 0;
    for (int i = 0; i < SNIFF_RECORDS && pos + ERF_HDR_LEN <= size; i++) {
        const uint8_t *r = d + pos;
        unsigned rlen = be16(r + 10), hdr = ERF_HDR_LEN, t = r[8], pad;
        int eth;
        if (rlen < ERF_HDR_LEN)
            break;
        while ((t & 0x80) && hdr + ERF_EXT_LEN <= rlen && pos + hdr + ERF_EXT_LEN <= size) {
            t = r[hdr];
            hdr += ERF_EXT_LEN;
        }
        /* hdr <= rlen and pos + hdr <= size here */
        size_t avail = size - pos - hdr < rlen - hdr ? size - pos - hdr : rlen - hdr;
        int lt = type_linktype(r[8] & 0x7fu, r + hdr, avail, &pad, &eth);
        if (lt >= 0) {
            s->linktype = lt;
            break;
        }
        pos += rlen;
    }
    return 0;
}

static struct capture_source *erf_open(const struct capture_params *params, char *errbuf,
                                       size_t errlen, int *err)
{
    const char *name = params->device && params->device[0] ? params->device : "trace";
    struct capture_source *s = calloc(1, sizeof *s);
    if (!s) {
        if (params->fd >= 0)
            close(params->fd);
        snprintf(errbuf, errlen, "%s: out of memory", name);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        return NULL;
    }
    if (trace_input_open(&s->in, params->fd, ERF_HDR_LEN, name, errbuf, errlen, err) < 0)
        goto fail;
    if (sniff(s, name, errbuf, errlen) < 0)
        goto fail;
    return s;

fail:
    erf_close(s);
    return NULL;
}

static int erf_next_batch(struct capture_source *s, struct mapi_pkt *pkts, int max, int timeout_ms)
{
    (void)timeout_ms;
    if (s->finished)
        return CAPTURE_EOF;
    if (max <= 0)
        return 0;
    return next_read(s, pkts, max);
}

static int erf_linktype(const struct capture_source *s)
{
    return s->linktype;
}

static uint32_t erf_snaplen(const struct capture_source *s)
{
    (void)s;
    return ERF_MAX_RLEN;
}

static int erf_stats(struct capture_source *s, uint64_t *recv, uint64_t *ifdrop)
{
    *recv = s->npkt;
    *ifdrop = 0;
    return 0;
}

static const char *erf_error(const struct capture_source *s)
{
    return s->err;
}

/* The driver for MFF_DAG_ERF trace files. */
const struct capture_driver_ops capture_erf_file = {
    .name = "erf-file",
    .open = erf_open,
    .next_batch = erf_next_batch,
    .linktype = erf_linktype,
    .snaplen = erf_snaplen,
    .stats = erf_stats,
    .error = erf_error,
    .close = erf_close,
};
