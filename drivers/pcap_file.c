/*
 * drivers/pcap_file.c - capture driver for trace files: classic pcap (microsecond and
 * nanosecond timestamps, either byte order) and pcapng, plain or gzip-compressed. Interface
 * in drivers/driver.h.
 *
 * mapid opens one of these for an offline device, on the descriptor the client sent.
 *
 * Input: drivers/trace_input.h, shared with the ERF driver. The descriptor is read with read()
 * (never mmap'ed, so a trace truncated under mapid cannot kill it with SIGBUS) into a buffer of
 * 1 MiB; a gzip-compressed trace is inflated into the same buffer, and a corrupt or truncated
 * compressed stream ends the trace like a truncated file.
 *
 * Classic pcap is parsed without libpcap, since it is the hot path of offline benchmarks: the
 * 16-byte record headers are walked explicitly and packets point into the buffer (no copy);
 * the buffer is compacted only when a record runs past its end. As in libpcap, a record whose
 * caplen exceeds 262144 (MAX_CAPLEN, whatever the file's snaplen says) is corrupt, and one
 * whose caplen exceeds a smaller non-zero snaplen is delivered cut to snaplen; so no record
 * makes the buffer grow (a hostile file cannot make mapid allocate what a header claims). A
 * record running past the end of the file is truncated: the packets before it are
 * delivered, then CAPTURE_EOF with the reason in error(). Files of
 * version 2.0-2.2 store caplen and wlen the other way round; 2.3 files may (fixed when caplen
 * > wlen), as libpcap does. Link types are LINKTYPE_* values in the file; the few that differ
 * from the DLT_* of this system are mapped (101 -> DLT_RAW ...).
 *
 * pcapng (and the rare "modified" pcap, magic a1b2cd34) is read through libpcap with
 * nanosecond precision, from a FILE (fopencookie) that returns the bytes already read and
 * then the rest of the (inflated) stream; libpcap's packet pointer is valid only until its
 * next read, so each batch is copied into an arena owned by the source. A batch ends once the
 * arena holds ARENA_INIT_LEN bytes, so the arena stays below ARENA_INIT_LEN + one packet
 * (libpcap bounds its own buffer by the link type's maximum snaplen).
 */
#include "drivers/driver.h"
#include "drivers/trace_input.h"

#include "common/decode.h"
#include "mapi/errors.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC_USEC 0xa1b2c3d4u
#define MAGIC_NSEC 0xa1b23c4du
#define MAGIC_MODIFIED 0xa1b2cd34u /* Kuznetzov's patched pcap: left to libpcap */
#define MAGIC_PCAPNG 0x0a0d0d0au   /* section header block type, same in both orders */

#define FILE_HDR_LEN 24u
#define REC_HDR_LEN 16u
#define MAX_CAPLEN 262144u        /* caplen above this is corrupt (= MAPID_MAX_CAPLEN) */
#define ARENA_INIT_LEN (1u << 20) /* pcapng copy arena (a batch stops when it is full) */

enum src_kind { KIND_READ, KIND_LIBPCAP };
enum len_mode { LEN_NORMAL, LEN_SWAPPED, LEN_MAYBE_SWAPPED };
enum walk_status { WALK_FULL, WALK_END, WALK_SHORT, WALK_CORRUPT };

struct capture_source {
    enum src_kind kind;
    struct trace_input in; /* the trace's bytes; handed to libpcap's FILE for pcapng */
    int linktype;
    uint32_t snaplen;
    int finished;  /* CAPTURE_EOF is all that is left */
    uint64_t nrec; /* packets delivered so far */

    /* classic pcap: records in in.buf, the next header at in.pos */
    size_t need; /* bytes the record at in.pos needs (after WALK_SHORT) */
    int swapped;
    int nsec;
    enum len_mode lenmode;
    uint32_t limit; /* largest acceptable caplen (MAX_CAPLEN) */
    uint32_t cut;   /* larger caplens are delivered cut to this (snaplen, else MAX_CAPLEN) */

    /* pcapng through libpcap */
    pcap_t *pcap;
    char *stdio_buf; /* the FILE's buffer, freed after the FILE */
    uint8_t *arena;
    size_t arena_cap;

    char err[PCAP_ERRBUF_SIZE + 256];
};

/* ---------------------------------------------------------------- helpers */

static uint32_t rd32(const uint8_t *p, int swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

static uint16_t rd16(const uint8_t *p, int swapped)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return swapped ? __builtin_bswap16(v) : v;
}

/* LINKTYPE_* (file) to DLT_* (this system) for the values that differ. */
static int linktype_to_dlt(uint32_t lt)
{
    switch (lt) {
    case 100:
        return DLT_ATM_RFC1483;
    case 101:
        return DLT_RAW;
    case 102:
        return DLT_SLIP_BSDOS;
    case 103:
        return DLT_PPP_BSDOS;
    case 106:
        return DLT_ATM_CLIP;
    default:
        return (int)lt;
    }
}

/* ---------------------------------------------------------------- classic pcap */

/*
 * The hot loop: fills pkts from the records at s->in.pos. The swapped/lenmode arguments are
 * constants at each call site so that the common case (native order, version 2.4) gets a
 * loop without byte swapping.
 */
static inline __attribute__((always_inline)) int walk_records(struct capture_source *s,
                                                              struct mapi_pkt *pkts, int max,
                                                              int *count, const int swapped,
                                                              const enum len_mode lenmode)
{
    const uint8_t *d = s->in.buf;
    const size_t size = s->in.size;
    const uint32_t limit = s->limit, cut = s->cut;
    const uint16_t lt = (uint16_t)s->linktype;
    const int nsec = s->nsec;
    size_t pos = s->in.pos;
    int n = 0, st = WALK_FULL;

    while (n < max) {
        const size_t left = size - pos;
        if (left < REC_HDR_LEN) {
            st = left ? WALK_SHORT : WALK_END;
            s->need = REC_HDR_LEN;
            break;
        }
        uint32_t h[4];
        memcpy(h, d + pos, REC_HDR_LEN);
        if (swapped) {
            h[0] = __builtin_bswap32(h[0]);
            h[1] = __builtin_bswap32(h[1]);
            h[2] = __builtin_bswap32(h[2]);
            h[3] = __builtin_bswap32(h[3]);
        }
        uint32_t caplen = h[2], wlen = h[3];
        if (lenmode == LEN_SWAPPED || (lenmode == LEN_MAYBE_SWAPPED && caplen > wlen)) {
            caplen = h[3];
            wlen = h[2];
        }
        uint32_t take = caplen;
        if (caplen > cut) {
            if (caplen > limit) {
                st = WALK_CORRUPT;
                s->need = caplen;
                break;
            }
            take = cut; /* libpcap cuts records longer than the snaplen */
        }
        if (left - REC_HDR_LEN < caplen) {
            st = WALK_SHORT;
            s->need = REC_HDR_LEN + (size_t)caplen;
            break;
        }
        struct mapi_pkt *p = &pkts[n++];
        p->data = d + pos + REC_HDR_LEN;
        p->caplen = take;
        p->wlen = wlen;
        p->ts = nsec ? mapi_ts_from_nsec(h[0], h[1]) : mapi_ts_from_usec(h[0], h[1]);
        p->ifindex = 0;
        p->linktype = lt;
        pos += REC_HDR_LEN + caplen;
    }
    s->in.pos = pos;
    s->nrec += (uint64_t)n;
    *count = n;
    return st;
}

static int walk(struct capture_source *s, struct mapi_pkt *pkts, int max, int *count)
{
    if (!s->swapped && s->lenmode == LEN_NORMAL)
        return walk_records(s, pkts, max, count, 0, LEN_NORMAL);
    if (s->swapped && s->lenmode == LEN_NORMAL)
        return walk_records(s, pkts, max, count, 1, LEN_NORMAL);
    return walk_records(s, pkts, max, count, s->swapped, s->lenmode);
}

/* Ends the trace after a walk that delivered nothing; records the reason if any. */
static int finish(struct capture_source *s, int st)
{
    s->finished = 1;
    unsigned long long rec = (unsigned long long)s->nrec + 1;
    unsigned long long off = (unsigned long long)trace_input_offset(&s->in);
    const char *gz = trace_input_error(&s->in);
    if (st == WALK_CORRUPT)
        snprintf(s->err, sizeof s->err,
                 "trace corrupt at record %llu (offset %llu): caplen %zu exceeds the limit %u", rec,
                 off, s->need, s->limit);
    else if (st == WALK_SHORT || gz[0])
        snprintf(s->err, sizeof s->err, "trace truncated at record %llu (offset %llu)%s%s", rec,
                 off, gz[0] ? ": " : "", gz);
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
        /* The previous batch is released: drop what it used, then read one more record at
         * least (compacting only here keeps the copying to the tail of a record). */
        if (trace_input_refill(&s->in, st == WALK_SHORT ? s->need : REC_HDR_LEN) < 0) {
            snprintf(s->err, sizeof s->err, "reading the trace: %s", strerror(errno));
            return CAPTURE_ERROR;
        }
    }
}

/* ---------------------------------------------------------------- pcapng (libpcap) */

static int next_libpcap(struct capture_source *s, struct mapi_pkt *pkts, int max)
{
    const char *gz = trace_input_error(&s->in); /* libpcap sees a damaged gzip stream end */
    size_t used = 0;
    int n = 0;
    while (n < max) {
        struct pcap_pkthdr *h;
        const u_char *bytes;
        int r = pcap_next_ex(s->pcap, &h, &bytes);
        if (r == 1) {
            size_t caplen = h->caplen;
            if (!s->arena || used + caplen > s->arena_cap) { /* never NULL + offset */
                size_t cap = s->arena_cap ? s->arena_cap : ARENA_INIT_LEN;
                while (cap < used + caplen)
                    cap *= 2;
                uint8_t *a = realloc(s->arena, cap);
                if (!a) {
                    snprintf(s->err, sizeof s->err, "out of memory copying packets");
                    return CAPTURE_ERROR;
                }
                s->arena = a;
                s->arena_cap = cap;
            }
            memcpy(s->arena + used, bytes, caplen);
            /* The arena may still move: keep the offset, make it a pointer below. */
            pkts[n].data = (const uint8_t *)(uintptr_t)used;
            pkts[n].caplen = (uint32_t)caplen;
            pkts[n].wlen = h->len;
            pkts[n].ts = mapi_ts_from_nsec((uint64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec);
            pkts[n].ifindex = 0;
            pkts[n].linktype = (uint16_t)s->linktype;
            n++;
            used = (used + caplen + 7) & ~(size_t)7;
            if (used >= ARENA_INIT_LEN)
                break;                      /* the arena is full: the rest goes in the next batch */
        } else if (r == PCAP_ERROR_BREAK) { /* -2: end of file */
            /* A gzip stream that broke at a block boundary looks like a clean end here. */
            if (gz[0])
                snprintf(s->err, sizeof s->err, "trace truncated at record %llu: %s",
                         (unsigned long long)(s->nrec + (uint64_t)n + 1), gz);
            s->finished = 1;
            break;
        } else {
            snprintf(s->err, sizeof s->err, "trace truncated or corrupt at record %llu: %s%s%s",
                     (unsigned long long)(s->nrec + (uint64_t)n + 1), pcap_geterr(s->pcap),
                     gz[0] ? "; " : "", gz);
            s->finished = 1;
            break;
        }
    }
    for (int i = 0; i < n; i++)
        pkts[i].data = s->arena + (uintptr_t)pkts[i].data;
    s->nrec += (uint64_t)n;
    return n > 0 ? n : CAPTURE_EOF;
}

/* Hands the stream to libpcap. Returns 0 or -1 with a message in errbuf. */
static int open_libpcap(struct capture_source *s, const char *name, char *errbuf, size_t errlen)
{
    FILE *fp = trace_input_fopen(&s->in);
    if (!fp) {
        snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    /* Large reads, as on the classic path (glibc ignores the size without a buffer). */
    s->stdio_buf = malloc(TRACE_INPUT_BUF_LEN);
    if (s->stdio_buf)
        (void)setvbuf(fp, s->stdio_buf, _IOFBF, TRACE_INPUT_BUF_LEN);
    char pe[PCAP_ERRBUF_SIZE] = "";
    s->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, pe);
    if (!s->pcap) {
        fclose(fp); /* libpcap leaves the stream to the caller on failure */
        snprintf(errbuf, errlen, "%s: not a readable pcapng file: %s", name, pe);
        return -1;
    }
    s->kind = KIND_LIBPCAP;
    s->linktype = pcap_datalink(s->pcap);
    s->snaplen = (uint32_t)pcap_snapshot(s->pcap);
    return 0;
}

/* ---------------------------------------------------------------- vtable */

static void pf_close(struct capture_source *s)
{
    if (!s)
        return;
    if (s->pcap)
        pcap_close(s->pcap); /* closes the FILE and so the input and the descriptor */
    trace_input_close(&s->in);
    free(s->stdio_buf);
    free(s->arena);
    free(s);
}

/* Parses the classic pcap file header at buf[0..24). Returns 0 or -1 with errbuf set. */
static int parse_header(struct capture_source *s, const char *name, char *errbuf, size_t errlen)
{
    const uint8_t *h = s->in.buf;
    if (s->in.size < FILE_HDR_LEN) {
        snprintf(errbuf, errlen, "%s: truncated pcap file header (%zu of 24 bytes)", name,
                 s->in.size);
        return -1;
    }
    unsigned major = rd16(h + 4, s->swapped), minor = rd16(h + 6, s->swapped);
    if (major != 2 || minor > 4) {
        snprintf(errbuf, errlen, "%s: unsupported pcap version %u.%u (2.0 to 2.4 are read)", name,
                 major, minor);
        return -1;
    }
    s->lenmode = minor < 3 ? LEN_SWAPPED : minor == 3 ? LEN_MAYBE_SWAPPED : LEN_NORMAL;
    s->snaplen = rd32(h + 16, s->swapped);
    uint32_t lt = rd32(h + 20, s->swapped);
    if (lt & 0x03ff0000u) { /* bits 16-25 are reserved; 26-31 describe the FCS */
        snprintf(errbuf, errlen, "%s: invalid pcap link-type field 0x%08x (reserved bits set)",
                 name, lt);
        return -1;
    }
    s->linktype = linktype_to_dlt(lt & 0xffffu);
    /* As libpcap: a snaplen of 0 or above the maximum means the maximum. */
    if (s->snaplen == 0 || s->snaplen > MAX_CAPLEN)
        s->snaplen = MAX_CAPLEN;
    s->limit = MAX_CAPLEN;
    s->cut = s->snaplen;
    s->in.pos = FILE_HDR_LEN;
    return 0;
}

static struct capture_source *pf_open(const struct capture_params *params, char *errbuf,
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
    s->kind = KIND_READ;
    if (trace_input_open(&s->in, params->fd, FILE_HDR_LEN, name, errbuf, errlen, err) < 0)
        goto fail;
    if (s->in.size < 4) {
        snprintf(errbuf, errlen, "%s: not a pcap or pcapng file (only %zu bytes)", name,
                 s->in.size);
        goto fail;
    }
    uint32_t magic = rd32(s->in.buf, 0);
    if (magic == MAGIC_USEC || magic == MAGIC_NSEC) {
        s->swapped = 0;
    } else if (__builtin_bswap32(magic) == MAGIC_USEC || __builtin_bswap32(magic) == MAGIC_NSEC) {
        s->swapped = 1;
        magic = __builtin_bswap32(magic);
    } else if (magic == MAGIC_PCAPNG || magic == MAGIC_MODIFIED ||
               __builtin_bswap32(magic) == MAGIC_MODIFIED) {
        if (open_libpcap(s, name, errbuf, errlen) < 0)
            goto fail;
        return s;
    } else {
        snprintf(errbuf, errlen, "%s: not a pcap or pcapng file (magic 0x%08x)", name,
                 rd32(s->in.buf, 1));
        goto fail;
    }
    s->nsec = magic == MAGIC_NSEC;
    if (parse_header(s, name, errbuf, errlen) < 0)
        goto fail;
    return s;

fail:
    pf_close(s);
    return NULL;
}

static int pf_next_batch(struct capture_source *s, struct mapi_pkt *pkts, int max, int timeout_ms)
{
    (void)timeout_ms; /* files never wait */
    if (s->finished)
        return CAPTURE_EOF;
    if (max <= 0)
        return 0;
    return s->kind == KIND_READ ? next_read(s, pkts, max) : next_libpcap(s, pkts, max);
}

static int pf_linktype(const struct capture_source *s)
{
    return s->linktype;
}

static uint32_t pf_snaplen(const struct capture_source *s)
{
    return s->snaplen;
}

static int pf_stats(struct capture_source *s, uint64_t *recv, uint64_t *ifdrop)
{
    *recv = s->nrec;
    *ifdrop = 0;
    return 0;
}

static const char *pf_error(const struct capture_source *s)
{
    return s->err;
}

/* The driver for MFF_PCAP trace files (pcap in both byte orders and precisions, pcapng). */
const struct capture_driver_ops capture_pcap_file = {
    .name = "pcap-file",
    .open = pf_open,
    .next_batch = pf_next_batch,
    .linktype = pf_linktype,
    .snaplen = pf_snaplen,
    .stats = pf_stats,
    .error = pf_error,
    .close = pf_close,
};
