/*
 * drivers/pcap_file.c - capture driver for trace files: classic pcap (microsecond and
 * nanosecond timestamps, either byte order) and pcapng, plain or gzip-compressed. Interface
 * in drivers/driver.h.
 *
 * mapid opens one of these for an offline device, on the descriptor the client sent.
 *
 * Input. The descriptor is always read with read() (never mmap'ed: a client that truncates
 * the file while mapid has it mapped would make mapid die of SIGBUS) into a buffer of 4 MiB,
 * grown for larger records, with POSIX_FADV_SEQUENTIAL on regular files. A trace that starts
 * with the gzip magic (1f 8b 08) is inflated with zlib into the same buffer, gzip members
 * concatenated as gzip(1) does; a corrupt or truncated compressed stream ends the trace like
 * a truncated file.
 *
 * Classic pcap is parsed without libpcap, since it is the hot path of offline benchmarks: the
 * 16-byte record headers are walked explicitly and packets point into the buffer (no copy);
 * the buffer is compacted only when a record runs past its end. A record whose caplen exceeds
 * max(snaplen, 262144) is corrupt, one running past the end of the file is truncated: the
 * packets before it are delivered, then CAPTURE_EOF with the reason in error(). Files of
 * version 2.0-2.2 store caplen and wlen the other way round; 2.3 files may (fixed when caplen
 * > wlen), as libpcap does. Link types are LINKTYPE_* values in the file; the few that differ
 * from the DLT_* of this system are mapped (101 -> DLT_RAW ...).
 *
 * pcapng (and the rare "modified" pcap, magic a1b2cd34) is read through libpcap with
 * nanosecond precision, from a FILE (fopencookie) that returns the bytes already read and
 * then the rest of the (inflated) stream; libpcap's packet pointer is valid only until its
 * next read, so each batch is copied into an arena owned by the source.
 */
#include "drivers/driver.h"

#include "common/decode.h"
#include "mapi/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC_USEC 0xa1b2c3d4u
#define MAGIC_NSEC 0xa1b23c4du
#define MAGIC_MODIFIED 0xa1b2cd34u /* Kuznetzov's patched pcap: left to libpcap */
#define MAGIC_PCAPNG 0x0a0d0d0au   /* section header block type, same in both orders */

#define FILE_HDR_LEN 24u
#define REC_HDR_LEN 16u
#define MIN_CAPLEN_LIMIT 262144u      /* caplen above max(snaplen, this) is corrupt */
#define MAX_CAPLEN_LIMIT (128u << 20) /* ... and above this in any case (bounds the buffer) */
#define READ_BUF_LEN (4u << 20)       /* read buffer and read size; grown for larger records */
#define ARENA_INIT_LEN (1u << 20)     /* pcapng copy arena, grown as needed */

/* ---------------------------------------------------------------- input: read() or zlib */

/*
 * The bytes of the trace: read() from the descriptor, or inflated from it when the trace is
 * gzip-compressed. The same code is in drivers/erf_file.c.
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

enum src_kind { KIND_READ, KIND_LIBPCAP };
enum len_mode { LEN_NORMAL, LEN_SWAPPED, LEN_MAYBE_SWAPPED };
enum walk_status { WALK_FULL, WALK_END, WALK_SHORT, WALK_CORRUPT };

struct prefixed;

struct capture_source {
    enum src_kind kind;
    struct input *in; /* the trace's bytes; NULL once handed to libpcap */
    int linktype;
    uint32_t snaplen;
    int finished;  /* CAPTURE_EOF is all that is left */
    uint64_t nrec; /* packets delivered so far */

    /* classic pcap */
    uint8_t *buf;      /* the bytes read: buf[0..size) */
    size_t size;       /* valid bytes at buf */
    size_t cap;        /* allocated bytes at buf */
    size_t pos;        /* offset in buf of the next record header */
    uint64_t base_off; /* offset in the (uncompressed) trace of buf[0] */
    size_t need;       /* bytes the record at pos needs (after WALK_SHORT) */
    int at_eof;        /* the input has no more bytes */
    int swapped;
    int nsec;
    enum len_mode lenmode;
    uint32_t limit; /* largest acceptable caplen */

    /* pcapng through libpcap */
    pcap_t *pcap;
    struct prefixed *cookie; /* the FILE's cookie, owned by the FILE (for gz_err) */
    char *stdio_buf;         /* the FILE's buffer, freed after the FILE */
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

/* A FILE for libpcap: the bytes already read first, then the rest of the input. */
struct prefixed {
    struct input *in;
    uint8_t *pre;
    size_t len, off;
};

static ssize_t prefixed_read(void *cookie, char *out, size_t n)
{
    struct prefixed *c = cookie;
    if (c->pre) {
        size_t k = c->len - c->off < n ? c->len - c->off : n;
        memcpy(out, c->pre + c->off, k);
        c->off += k;
        if (c->off == c->len) {
            free(c->pre);
            c->pre = NULL;
        }
        if (k > 0)
            return (ssize_t)k;
    }
    return input_read(c->in, (uint8_t *)out, n);
}

static int prefixed_close(void *cookie)
{
    struct prefixed *c = cookie;
    int r = input_close(c->in);
    free(c->pre);
    free(c);
    return r;
}

/* ---------------------------------------------------------------- classic pcap */

/*
 * The hot loop: fills pkts from the records at s->pos. The swapped/lenmode arguments are
 * constants at each call site so that the common case (native order, version 2.4) gets a
 * loop without byte swapping.
 */
static inline __attribute__((always_inline)) int walk_records(struct capture_source *s,
                                                              struct mapi_pkt *pkts, int max,
                                                              int *count, const int swapped,
                                                              const enum len_mode lenmode)
{
    const uint8_t *d = s->buf;
    const size_t size = s->size;
    const uint32_t limit = s->limit;
    const uint16_t lt = (uint16_t)s->linktype;
    const int nsec = s->nsec;
    size_t pos = s->pos;
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
        if (caplen > limit) {
            st = WALK_CORRUPT;
            s->need = caplen;
            break;
        }
        if (left - REC_HDR_LEN < caplen) {
            st = WALK_SHORT;
            s->need = REC_HDR_LEN + (size_t)caplen;
            break;
        }
        struct mapi_pkt *p = &pkts[n++];
        p->data = d + pos + REC_HDR_LEN;
        p->caplen = caplen;
        p->wlen = wlen;
        p->ts = nsec ? mapi_ts_from_nsec(h[0], h[1]) : mapi_ts_from_usec(h[0], h[1]);
        p->ifindex = 0;
        p->linktype = lt;
        pos += REC_HDR_LEN + caplen;
    }
    s->pos = pos;
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
    unsigned long long off = (unsigned long long)(s->base_off + s->pos);
    const char *gz = s->in->gz_err;
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
        if (st == WALK_CORRUPT || s->at_eof)
            return finish(s, st);
        /* The previous batch is released: drop what it used, then read one more record at
         * least (compacting only here keeps the copying to the tail of a record). */
        compact(s);
        size_t need = st == WALK_SHORT ? s->need : REC_HDR_LEN;
        if (need < s->size + 1)
            need = s->size + 1;
        if (read_more(s, need) < 0) {
            snprintf(s->err, sizeof s->err, "reading the trace: %s", strerror(errno));
            return CAPTURE_ERROR;
        }
    }
}

/* ---------------------------------------------------------------- pcapng (libpcap) */

static int next_libpcap(struct capture_source *s, struct mapi_pkt *pkts, int max)
{
    const char *gz = s->cookie->in->gz_err; /* libpcap sees a damaged gzip stream end */
    size_t used = 0;
    int n = 0;
    while (n < max) {
        struct pcap_pkthdr *h;
        const u_char *bytes;
        int r = pcap_next_ex(s->pcap, &h, &bytes);
        if (r == 1) {
            size_t caplen = h->caplen;
            if (used + caplen > s->arena_cap) {
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
    struct prefixed *c = malloc(sizeof *c);
    cookie_io_functions_t io = {.read = prefixed_read, .close = prefixed_close};
    FILE *fp = c ? fopencookie(c, "rb", io) : NULL;
    if (!fp) {
        free(c);
        snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
        return -1;
    }
    c->in = s->in;
    c->pre = s->buf;
    c->len = s->size;
    c->off = 0;
    s->in = NULL;
    s->buf = NULL;
    s->cap = s->size = 0;
    /* Large reads, as on the classic path (glibc ignores the size without a buffer). */
    s->stdio_buf = malloc(READ_BUF_LEN);
    if (s->stdio_buf)
        (void)setvbuf(fp, s->stdio_buf, _IOFBF, READ_BUF_LEN);
    char pe[PCAP_ERRBUF_SIZE] = "";
    s->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, pe);
    if (!s->pcap) {
        fclose(fp); /* libpcap leaves the stream to the caller on failure */
        snprintf(errbuf, errlen, "%s: not a readable pcapng file: %s", name, pe);
        return -1;
    }
    s->cookie = c;
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
    input_close(s->in);
    free(s->stdio_buf);
    free(s->buf);
    free(s->arena);
    free(s);
}

/* Parses the classic pcap file header at buf[0..24). Returns 0 or -1 with errbuf set. */
static int parse_header(struct capture_source *s, const char *name, char *errbuf, size_t errlen)
{
    const uint8_t *h = s->buf;
    if (s->size < FILE_HDR_LEN) {
        snprintf(errbuf, errlen, "%s: truncated pcap file header (%zu of 24 bytes)", name, s->size);
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
    s->limit = s->snaplen > MIN_CAPLEN_LIMIT ? s->snaplen : MIN_CAPLEN_LIMIT;
    if (s->limit > MAX_CAPLEN_LIMIT)
        s->limit = MAX_CAPLEN_LIMIT;
    s->pos = FILE_HDR_LEN;
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
    if (open_input(s, params->fd, FILE_HDR_LEN, name, errbuf, errlen, err) < 0)
        goto fail;
    if (s->size < 4) {
        snprintf(errbuf, errlen, "%s: not a pcap or pcapng file (only %zu bytes)", name, s->size);
        goto fail;
    }
    uint32_t magic = rd32(s->buf, 0);
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
                 rd32(s->buf, 1));
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
