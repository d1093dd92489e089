/*
 * drivers/trace_input.h - the input of the trace-file drivers (pcap_file.c, erf_file.c): the
 * bytes of a trace, read from the descriptor the client sent, inflated on the way when the
 * trace is gzip-compressed.
 *
 * The descriptor is always read with read() (never mmap'ed: a client that truncates the file
 * while mapid has it mapped would make mapid die of SIGBUS) into a buffer of
 * TRACE_INPUT_BUF_LEN bytes, with POSIX_FADV_SEQUENTIAL on regular files. The buffer never
 * grows: a driver never needs more than one record (at most 256 KiB + its header) at once, and
 * a larger request fails (EFBIG), so a record header cannot make mapid allocate what it
 * claims (a gzip-compressed trace costs a second buffer of the same size for its input). A trace
 * that starts with the gzip magic (1f 8b 08, reserved flag bits clear) is inflated with zlib into
 * the same buffer, gzip members concatenated as gzip(1) does; a corrupt or truncated compressed
 * stream ends the input like the end of a truncated file, with the reason in trace_input_error().
 *
 * A driver walks its records in buf[pos..size) itself (the hot loop: the fields are read
 * directly, no call per record or batch) and hands out pointers into the buffer. When a walk
 * delivers nothing (the previous batch is released), trace_input_refill() drops the bytes
 * before pos and reads more, so only the tail of a record is ever copied.
 */
#ifndef MAPI_DRIVERS_TRACE_INPUT_H
#define MAPI_DRIVERS_TRACE_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Read buffer and read size, and the most bytes a driver may ask for at once. 1 MiB keeps the
 * records just read in the L2 cache while they are walked (measured: 4 MiB was 12% slower on W1,
 * BENCHMARKS.md). */
#define TRACE_INPUT_BUF_LEN (1u << 20)

struct trace_stream; /* the descriptor and the zlib state (trace_input.c) */

/* Embedded in a driver's source; all zero before trace_input_open. */
struct trace_input {
    uint8_t *buf;                /* the bytes read: buf[0..size) */
    size_t size;                 /* valid bytes at buf */
    size_t cap;                  /* allocated bytes at buf */
    size_t pos;                  /* the driver's: offset in buf of the next record */
    uint64_t base_off;           /* offset in the (uncompressed) trace of buf[0] */
    int at_eof;                  /* the input has no more bytes */
    const char *gz_err;          /* read with trace_input_error */
    struct trace_stream *stream; /* NULL before open and after trace_input_fopen */
};

/*
 * Opens the input on fd (the input owns fd from the call on, also when it fails) and reads the
 * start of the trace: at least `need` bytes unless the trace is shorter, inflated from then on
 * when it starts like gzip. An empty trace is an error. Returns 0, or -1 with "NAME: reason"
 * in errbuf and a MAPI error number in *err (MAPID_BAD_TRACE, MAPID_MEM_ALLOCATION_ERROR).
 * Call trace_input_close in both cases.
 */
int trace_input_open(struct trace_input *in, int fd, size_t need, const char *name, char *errbuf,
                     size_t errlen, int *err);

/*
 * Drops the bytes before pos (moving the rest to buf[0]), then reads until at least `need`
 * bytes, and at least one more than before, are valid in buf or the input ends (at_eof);
 * pointers into buf are invalid afterwards. Returns 0, or -1 with errno set when read() fails,
 * memory runs out, or need exceeds TRACE_INPUT_BUF_LEN (EFBIG).
 */
int trace_input_refill(struct trace_input *in, size_t need);

/* Why the compressed stream ended early ("" if it did not, or the trace is not compressed). */
static inline const char *trace_input_error(const struct trace_input *in)
{
    return in->gz_err ? in->gz_err : "";
}

/* The offset in the (uncompressed) trace of buf[pos]. */
static inline uint64_t trace_input_offset(const struct trace_input *in)
{
    return in->base_off + in->pos;
}

/*
 * Hands the input to a FILE (fopencookie, for libpcap) that returns buf[pos..size), then the
 * rest of the (inflated) stream; fclose closes the descriptor. The input keeps no buffer or
 * stream afterwards, but trace_input_error stays valid until the FILE is closed. Returns NULL
 * with errno set (the input unchanged) on failure.
 */
FILE *trace_input_fopen(struct trace_input *in);

/* Frees the buffer and the stream and closes the descriptor (not one handed to a FILE). */
void trace_input_close(struct trace_input *in);

#endif /* MAPI_DRIVERS_TRACE_INPUT_H */
