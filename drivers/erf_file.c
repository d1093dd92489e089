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
 * Input. The descriptor is always read with read() (never mmap'ed: a client that truncates
 * the file while mapid has it mapped would make mapid die of SIGBUS) into a buffer of 4 MiB,
 * with POSIX_FADV_SEQUENTIAL on regular files; packets point into the buffer, which is
 * compacted only when a record runs past its end. A trace that starts with the gzip magic
 * (1f 8b 08), as libtrace's traceconvert always writes ERF, is inflated with zlib into the
 * same buffer; a corrupt or truncated compressed stream ends the trace like a truncated file.
 */
#include "drivers/driver.h"

#include "mapi/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ERF_HDR_LEN 16u
#define ERF_EXT_LEN 8u
#define ERF_MAX_RLEN 65535u     /* rlen is 16 bits */
#define READ_BUF_LEN (4u << 20) /* read buffer and read size; grown for larger records */
#define SNIFF_RECORDS 1024      /* records examined at open for the link type */

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

/* ---------------------------------------------------------------- input: read() or zlib */

/*
 * The bytes of the trace: read() from the descriptor, or inflated from it when the trace is
 * gzip-compressed. The same code is in drivers/pcap_file.c.
 */
struct input {
    int fd;
    int gz;            /* inflating */
    int gz_member_end; /* a gzip member ended: another may follow */
    int gz_eof;        /* read() returned 0 */
    int end;           /* no more bytes: a clean end, or the reason is in gz_err */
    z_stream z;        /* must not move once initialised: inputs live on the heap */
    uint8_t *zbuf;     /* compressed bytes read from fd */
    size_t zcap;
    char gz_err[128]; /* why the compressed stream ended early, "" if it did not */
};

/* The start of a gzip member: magic 1f 8b, method 8 (deflate), reserved flag bits clear. */
static int is_gzip(const uint8_t *p, size_t n)
{
    return n >= 4 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8 && (p[3] & 0xe0) == 0;
}

static struct input *input_new(int fd)
{
    struct input *in = calloc(1, sizeof *in);
    if (in)
        in->fd = fd;
    return in;
}

/*
 * Switches to inflating. The first n bytes of the stream were already read into buf (of cap
 * bytes); on success the input takes buf. Returns 0, or -1 when zlib has no memory.
 */
static int input_start_gz(struct input *in, uint8_t *buf, size_t cap, size_t n, int eof)
{
    memset(&in->z, 0, sizeof in->z);
    if (inflateInit2(&in->z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return -1;
    in->gz = 1;
    in->zbuf = buf;
    in->zcap = cap > UINT_MAX ? UINT_MAX : cap;
    in->z.next_in = buf;
    in->z.avail_in = (uInt)n;
    in->gz_eof = eof;
    return 0;
}

/*
 * Reads up to n bytes of the trace into out. Returns their number; 0 at the end, also when
 * the compressed stream is truncated or corrupt (the reason is then in gz_err); -1 with errno
 * set when read() fails.
 */
static ssize_t input_read(struct input *in, uint8_t *out, size_t n)
{
    if (n > UINT_MAX)
        n = UINT_MAX;
    if (!in->gz) {
        for (;;) {
            ssize_t r = read(in->fd, out, n);
            if (r >= 0 || errno != EINTR)
                return r;
        }
    }
    z_stream *z = &in->z;
    while (!in->end) {
        /* Refill when the input is used up, or too short to see whether a member follows. */
        if ((z->avail_in == 0 || (in->gz_member_end && z->avail_in < 4)) && !in->gz_eof) {
            if (z->avail_in > 0)
                memmove(in->zbuf, z->next_in, z->avail_in);
            z->next_in = in->zbuf;
            ssize_t r = read(in->fd, in->zbuf + z->avail_in, in->zcap - z->avail_in);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (r == 0)
                in->gz_eof = 1;
            z->avail_in += (uInt)r;
            continue;
        }
        if (in->gz_member_end) {
            /* Concatenated members are one stream; other trailing bytes are ignored, as
             * gzip -d does. */
            if (!is_gzip(z->next_in, z->avail_in)) {
                in->end = 1;
                break;
            }
            inflateReset(z);
            in->gz_member_end = 0;
        }
        if (z->avail_in == 0) { /* and gz_eof: the member is incomplete */
            snprintf(in->gz_err, sizeof in->gz_err, "the gzip stream is truncated");
            in->end = 1;
            break;
        }
        z->next_out = out;
        z->avail_out = (uInt)n;
        int ret = inflate(z, Z_NO_FLUSH);
        size_t got = n - z->avail_out;
        if (ret == Z_STREAM_END) {
            in->gz_member_end = 1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            snprintf(in->gz_err, sizeof in->gz_err, "corrupt gzip data (%s)",
                     z->msg ? z->msg : zError(ret));
            in->end = 1;
        }
        if (got > 0)
            return (ssize_t)got;
    }
    return 0;
}

/* Frees the input and closes the descriptor. Returns close()'s result. */
static int input_close(struct input *in)
{
    if (!in)
        return 0;
    if (in->gz)
        inflateEnd(&in->z);
    free(in->zbuf);
    int r = in->fd >= 0 ? close(in->fd) : 0;
    free(in);
    return r;
}

enum walk_status { WALK_FULL, WALK_END, WALK_SHORT, WALK_CORRUPT };

struct capture_source {
    struct input *in; /* the trace's bytes */
    int linktype;
    int finished;
    uint64_t nrec;    /* records consumed (packets and skipped ones) */
    uint64_t npkt;    /* packets delivered */
    uint64_t skipped; /* records of unsupported types */
    int last_skipped_type;

    uint8_t *buf;      /* the bytes read: buf[0..size) */
    size_t size;       /* valid bytes at buf */
    size_t cap;        /* allocated bytes at buf */
    size_t pos;        /* offset in buf of the next record */
    uint64_t base_off; /* offset in the (uncompressed) trace of buf[0] */
    size_t need;       /* bytes the record at pos needs (after WALK_SHORT) */
    int at_eof;        /* the input has no more bytes */
    char bad[160];     /* detail of a corrupt record */

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

/* Reads until at least `need` bytes are valid in buf or the input ends. Returns 0, or -1 on
 * error (errno set). Grows buf when need exceeds its capacity. */
static int read_more(struct capture_source *s, size_t need)
{
    if (need > s->cap) {
        size_t cap = s->cap ? s->cap : READ_BUF_LEN;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    while (s->size < need && !s->at_eof) {
        ssize_t r = input_read(s->in, s->buf + s->size, s->cap - s->size);
        if (r < 0)
            return -1;
        if (r == 0)
            s->at_eof = 1;
        s->size += (size_t)r;
    }
    return 0;
}

/* Drops the bytes before pos (the records of batches already released). */
static void compact(struct capture_source *s)
{
    if (s->pos == 0)
        return;
    memmove(s->buf, s->buf + s->pos, s->size - s->pos);
    s->base_off += s->pos;
    s->size -= s->pos;
    s->pos = 0;
}

/*
 * Reads the start of the trace (at least `need` bytes unless it is shorter), inflating it from
 * then on when it starts like gzip. Returns 0, or -1 with a message in errbuf and *err set.
 */
static int open_input(struct capture_source *s, int fd, size_t need, const char *name, char *errbuf,
                      size_t errlen, int *err)
{
    s->in = input_new(fd);
    if (!s->in) {
        close(fd);
        snprintf(errbuf, errlen, "%s: out of memory", name);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        return -1;
    }
    *err = MAPID_BAD_TRACE;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(errbuf, errlen, "%s: bad trace descriptor: %s", name, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        /* The descriptor may be past the start (an inherited, already read file). */
        (void)lseek(fd, 0, SEEK_SET);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    int compressed = 0;
    for (;;) {
        if (read_more(s, need) < 0) {
            snprintf(errbuf, errlen, "%s: cannot read the trace: %s", name, strerror(errno));
            if (errno == ENOMEM)
                *err = MAPID_MEM_ALLOCATION_ERROR;
            return -1;
        }
        if (compressed || !is_gzip(s->buf, s->size))
            break;
        if (input_start_gz(s->in, s->buf, s->cap, s->size, s->at_eof) < 0) {
            snprintf(errbuf, errlen, "%s: out of memory for zlib", name);
            *err = MAPID_MEM_ALLOCATION_ERROR;
            return -1;
        }
        compressed = 1;
        s->buf = NULL;
        s->cap = s->size = 0;
        s->at_eof = 0;
    }
    if (s->size == 0) {
        if (s->in->gz_err[0])
            snprintf(errbuf, errlen, "%s: %s", name, s->in->gz_err);
        else
            snprintf(errbuf, errlen, "%s: the trace is empty%s", name,
                     compressed ? " (after decompression)" : "");
        return -1;
    }
    return 0;
}

/* Fills pkts from the records at s->pos (the hot loop). */
static int walk(struct capture_source *s, struct mapi_pkt *pkts, int max, int *count)
{
    const uint8_t *d = s->buf;
    const size_t size = s->size;
    size_t pos = s->pos;
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
    s->pos = pos;
    s->npkt += (uint64_t)n;
    *count = n;
    return st;
}

static int finish(struct capture_source *s, int st)
{
    s->finished = 1;
    unsigned long long rec = (unsigned long long)s->nrec + 1;
    unsigned long long off = (unsigned long long)(s->base_off + s->pos);
    const char *gz = s->in->gz_err;
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
        if (st == WALK_CORRUPT || s->at_eof)
            return finish(s, st);
        /* Only skipped records, or the next record is incomplete. The previous batch is
         * released: drop what it used (only here, so only the tail of a record is copied), then
         * read more. */
        compact(s);
        size_t need = st == WALK_SHORT ? s->need : ERF_HDR_LEN;
        if (need < s->size + 1)
            need = s->size + 1;
        if (read_more(s, need) < 0) {
            snprintf(s->err, sizeof s->err, "reading the trace: %s", strerror(errno));
            return CAPTURE_ERROR;
        }
    }
}

static void erf_close(struct capture_source *s)
{
    if (!s)
        return;
    input_close(s->in);
    free(s->buf);
    free(s);
}

/*
 * Checks that data starts like an ERF trace and finds the link type of the first packet
 * record. Returns 0, or -1 with a message in errbuf.
 */
static int sniff(struct capture_source *s, const char *name, char *errbuf, size_t errlen)
{
    const uint8_t *d = s->buf;
    uint32_t magic = 0;
    if (s->size >= 4)
        memcpy(&magic, d, 4);
    if (s->size >= 4 && (magic == 0xa1b2c3d4u || magic == 0xd4c3b2a1u || magic == 0xa1b23c4du ||
                         magic == 0x4d3cb2a1u || magic == 0x0a0d0d0au)) {
        snprintf(errbuf, errlen, "%s: this is a pcap/pcapng file, not ERF (use format MFF_PCAP)",
                 name);
        return -1;
    }
    if (s->size < ERF_HDR_LEN) {
        snprintf(errbuf, errlen, "%s: not an ERF file (only %zu bytes)", name, s->size);
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
    for (int i = 0; i < SNIFF_RECORDS && pos + ERF_HDR_LEN <= s->size; i++) {
        const uint8_t *r = d + pos;
        unsigned rlen = be16(r + 10), hdr = ERF_HDR_LEN, t = r[8], pad;
        int eth;
        if (rlen < ERF_HDR_LEN)
            break;
        while ((t & 0x80) && hdr + ERF_EXT_LEN <= rlen && pos + hdr + ERF_EXT_LEN <= s->size) {
            t = r[hdr];
            hdr += ERF_EXT_LEN;
        }
        /* hdr <= rlen and pos + hdr <= size here */
        size_t avail = s->size - pos - hdr < rlen - hdr ? s->size - pos - hdr : rlen - hdr;
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
    if (open_input(s, params->fd, ERF_HDR_LEN, name, errbuf, errlen, err) < 0)
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
