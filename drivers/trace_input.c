/*
 * drivers/trace_input.c - the input of the trace-file drivers: read() or zlib. Interface and
 * description in drivers/trace_input.h.
 */
#include "drivers/trace_input.h"

#include "mapi/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The bytes of the trace: read() from the descriptor, or inflated from it. */
struct trace_stream {
    int fd;
    int gz;            /* inflating */
    int gz_member_end; /* a gzip member ended: another may follow */
    int gz_eof;        /* read() returned 0 */
    int end;           /* no more bytes: a clean end, or the reason is in gz_err */
    z_stream z;        /* must not move once initialised: streams live on the heap */
    uint8_t *zbuf;     /* compressed bytes read from fd */
    size_t zcap;
    char gz_err[128]; /* why the compressed stream ended early, "" if it did not */
};

/* The start of a gzip member: magic 1f 8b, method 8 (deflate), reserved flag bits clear. */
static int is_gzip(const uint8_t *p, size_t n)
{
    return n >= 4 && p[0] == 0x1f && p[1] == 0x8b && p[2] == 8 && (p[3] & 0xe0) == 0;
}

/*
 * Switches to inflating. The first n bytes of the stream were already read into buf (of cap
 * bytes); on success the stream takes buf. Returns 0, or -1 when zlib has no memory.
 */
static int stream_start_gz(struct trace_stream *st, uint8_t *buf, size_t cap, size_t n, int eof)
{
    memset(&st->z, 0, sizeof st->z);
    if (inflateInit2(&st->z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
        return -1;
    st->gz = 1;
    st->zbuf = buf;
    st->zcap = cap > UINT_MAX ? UINT_MAX : cap;
    st->z.next_in = buf;
    st->z.avail_in = (uInt)n;
    st->gz_eof = eof;
    return 0;
}

/*
 * Reads up to n bytes of the trace into out. Returns their number; 0 at the end, also when
 * the compressed stream is truncated or corrupt (the reason is then in gz_err); -1 with errno
 * set when read() fails.
 */
static ssize_t stream_read(struct trace_stream *st, uint8_t *out, size_t n)
{
    if (n > UINT_MAX)
        n = UINT_MAX;
    if (!st->gz) {
        for (;;) {
            ssize_t r = read(st->fd, out, n);
            if (r >= 0 || errno != EINTR)
                return r;
        }
    }
    z_stream *z = &st->z;
    while (!st->end) {
        /* Refill when the input is used up, or too short to see whether a member follows. */
        if ((z->avail_in == 0 || (st->gz_member_end && z->avail_in < 4)) && !st->gz_eof) {
            if (z->avail_in > 0)
                memmove(st->zbuf, z->next_in, z->avail_in);
            z->next_in = st->zbuf;
            ssize_t r = read(st->fd, st->zbuf + z->avail_in, st->zcap - z->avail_in);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            if (r == 0)
                st->gz_eof = 1;
            z->avail_in += (uInt)r;
            continue;
        }
        if (st->gz_member_end) {
            /* Concatenated members are one stream; other trailing bytes are ignored, as
             * gzip -d does. */
            if (!is_gzip(z->next_in, z->avail_in)) {
                st->end = 1;
                break;
            }
            inflateReset(z);
            st->gz_member_end = 0;
        }
        if (z->avail_in == 0) { /* and gz_eof: the member is incomplete */
            snprintf(st->gz_err, sizeof st->gz_err, "the gzip stream is truncated");
            st->end = 1;
            break;
        }
        z->next_out = out;
        z->avail_out = (uInt)n;
        int ret = inflate(z, Z_NO_FLUSH);
        size_t got = n - z->avail_out;
        if (ret == Z_STREAM_END) {
            st->gz_member_end = 1;
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            snprintf(st->gz_err, sizeof st->gz_err, "corrupt gzip data (%s)",
                     z->msg ? z->msg : zError(ret));
            st->end = 1;
        }
        if (got > 0)
            return (ssize_t)got;
    }
    return 0;
}

/* Frees the stream and closes the descriptor. Returns close()'s result. */
static int stream_close(struct trace_stream *st)
{
    if (!st)
        return 0;
    if (st->gz)
        inflateEnd(&st->z);
    free(st->zbuf);
    int r = st->fd >= 0 ? close(st->fd) : 0;
    free(st);
    return r;
}

/* Reads until at least `need` bytes are valid in buf or the input ends. Returns 0, or -1 on
 * error (errno set; EFBIG when need exceeds TRACE_INPUT_BUF_LEN: the buffer never grows past
 * it, whatever a record claims). */
static int fill(struct trace_input *in, size_t need)
{
    if (need > TRACE_INPUT_BUF_LEN) {
        errno = EFBIG;
        return -1;
    }
    if (need > in->cap) {
        size_t cap = in->cap ? in->cap : TRACE_INPUT_BUF_LEN;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(in->buf, cap);
        if (!b)
            return -1;
        in->buf = b;
        in->cap = cap;
    }
    while (in->size < need && !in->at_eof) {
        ssize_t r = stream_read(in->stream, in->buf + in->size, in->cap - in->size);
        if (r < 0)
            return -1;
        if (r == 0)
            in->at_eof = 1;
        in->size += (size_t)r;
    }
    return 0;
}

int trace_input_open(struct trace_input *in, int fd, size_t need, const char *name, char *errbuf,
                     size_t errlen, int *err)
{
    struct trace_stream *st = calloc(1, sizeof *st);
    if (!st) {
        if (fd >= 0)
            close(fd);
        snprintf(errbuf, errlen, "%s: out of memory", name);
        *err = MAPID_MEM_ALLOCATION_ERROR;
        return -1;
    }
    st->fd = fd;
    in->stream = st;
    in->gz_err = st->gz_err;
    *err = MAPID_BAD_TRACE;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        snprintf(errbuf, errlen, "%s: bad trace descriptor: %s", name, strerror(errno));
        return -1;
    }
    if (S_ISREG(sb.st_mode)) {
        /* The descriptor may be past the start (an inherited, already read file). */
        (void)lseek(fd, 0, SEEK_SET);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    int compressed = 0;
    for (;;) {
        if (fill(in, need) < 0) {
            snprintf(errbuf, errlen, "%s: cannot read the trace: %s", name, strerror(errno));
            if (errno == ENOMEM)
                *err = MAPID_MEM_ALLOCATION_ERROR;
            return -1;
        }
        if (compressed || !is_gzip(in->buf, in->size))
            break;
        if (stream_start_gz(st, in->buf, in->cap, in->size, in->at_eof) < 0) {
            snprintf(errbuf, errlen, "%s: out of memory for zlib", name);
            *err = MAPID_MEM_ALLOCATION_ERROR;
            return -1;
        }
        compressed = 1;
        in->buf = NULL;
        in->cap = in->size = 0;
        in->at_eof = 0;
    }
    if (in->size == 0) {
        if (st->gz_err[0])
            snprintf(errbuf, errlen, "%s: %s", name, st->gz_err);
        else
            snprintf(errbuf, errlen, "%s: the trace is empty%s", name,
                     compressed ? " (after decompression)" : "");
        return -1;
    }
    return 0;
}

int trace_input_refill(struct trace_input *in, size_t need)
{
    if (in->pos > 0) {
        memmove(in->buf, in->buf + in->pos, in->size - in->pos);
        in->base_off += in->pos;
        in->size -= in->pos;
        in->pos = 0;
    }
    if (need < in->size + 1)
        need = in->size + 1;
    return fill(in, need);
}

/* The FILE's cookie: the bytes already read first, then the rest of the stream. */
struct prefixed {
    struct trace_stream *st;
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
    return stream_read(c->st, (uint8_t *)out, n);
}

static int prefixed_close(void *cookie)
{
    struct prefixed *c = cookie;
    int r = stream_close(c->st);
    free(c->pre);
    free(c);
    return r;
}

FILE *trace_input_fopen(struct trace_input *in)
{
    struct prefixed *c = malloc(sizeof *c);
    cookie_io_functions_t io = {.read = prefixed_read, .close = prefixed_close};
    FILE *fp = c ? fopencookie(c, "rb", io) : NULL;
    if (!fp) {
        free(c);
        return NULL;
    }
    c->st = in->stream;
    c->pre = in->buf;
    c->len = in->size;
    c->off = in->pos;
    in->stream = NULL;
    in->buf = NULL;
    in->cap = in->size = in->pos = 0;
    return fp; /* in->gz_err points into the stream, now the FILE's */
}

void trace_input_close(struct trace_input *in)
{
    free(in->buf);
    (void)stream_close(in->stream);
    in->buf = NULL;
    in->stream = NULL;
    in->gz_err = NULL;
    in->cap = in->size = in->pos = 0;
}
