/*
 * flib/stdflib/res2file.c - RES2FILE "sSswsi" types, fids, header, file, interval, reset:
 * writes the results of other functions to a file, one line per packet, per interval of packet
 * time, or once at the end.
 *
 *   types     one format per referenced function, "1,1,2" (mapi/res2file.h): R2F_RAW 0,
 *             R2F_ULLSTR 1, R2F_ULLSEC 2, R2F_STATS 3. Missing or malformed: 7001.
 *   fids      "fid@fd,fid@fd,..." (libmapi translated every fd to mapid's flow id): functions
 *             with a result, in this flow (applied before) or in earlier flows of the same
 *             application and device. Missing, malformed, refused, without a (large enough)
 *             result, or not as many as the types: 7002.
 *   header    written as "header\n" at mapi_connect. Missing: 7003.
 *   file      a 'w' argument: libmapi created the file and mapid hands us the open descriptor,
 *             ours from a successful instance() on (closed in cleanup). Not open for writing:
 *             7004.
 *   interval  "0": a line per packet that reaches RES2FILE (process(): it holds the values
 *             after the functions applied before it in the flow saw the packet);
 *             "-1": one line at the end of the trace (flush()), or at close (cleanup()) if
 *             none was written by then (live devices);
 *             a period ("1s", "250ms", "1.5m" = minutes, a bare number = seconds): a line per
 *             interval of packet time. Missing, malformed or zero: 7005.
 *   reset     1: the referenced functions are reset after every periodic line; 0: not; else
 *             7011.
 *
 * Periodic intervals form a grid from the first packet offered to the flow (t0): interval k =
 * [t0 + k*I, t0 + (k+1)*I). mapid calls tick() with every packet's timestamp BEFORE any
 * function processes it, so a line closed in tick() holds exactly the packets of its
 * interval. Empty intervals give a line too, with the values as they are (unchanged counters,
 * or 0 after a reset); the original wrote "0 " per function instead. flush() (end of a trace)
 * writes the last, partial interval.
 *
 * Line format: the values, each followed by its separator, then "\n":
 *   R2F_RAW     the result size as a native unsigned long, then the result bytes (binary, as
 *               the original)
 *   R2F_ULLSTR  "%llu "            R2F_ULLSEC  "%.12Lf " of value / 2^32
 *   R2F_STATS   "%llu %Lf %Lf %f %f " = count, sum, sum2, min, max of a stats_t. The original
 *               printed two blanks after count (a slip); we print one, so every value is
 *               followed by exactly one blank; whitespace-splitting readers see the same fields.
 * Values of ULLSTR and ULLSEC are the first 8 bytes of the result as a number (smaller results
 * zero-extended).
 *
 * Output goes through a FILE with a 1 MiB buffer: on trace files it is flushed at the end of
 * the trace and at close, on live devices after every periodic line. A write error is logged
 * once in mapid's log and ends writing (the flow goes on).
 *
 * Timestamp jumps: a packet far later than the previous one closes its interval and then every
 * empty interval up to its own. At most res2file_max_empty (mapi.conf, default 100) empty
 * lines are written in a row; the rest are replaced by one line
 *   "# N empty intervals skipped (timestamp jump; res2file_max_empty=M)"
 * and the grid goes on at the interval of the new packet. mapid's log says so too (the first
 * jump at once, the number of jumps cut short at close). So a trace with a bogus timestamp
 * cannot make mapid (root) write gigabytes of empty lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapi/res2file.h"
#include "mapi/stats.h"
#include "stdflib.h"

#define R2F_BUFSIZE (1u << 20)
#define R2F_MAX_EMPTY_DEFAULT 100u
#define R2F_MAX_SOURCES 256

enum r2f_mode {
    R2F_PERIODIC,  /* a line per interval of packet time */
    R2F_EVERY_PKT, /* "0" */
    R2F_AT_END,    /* "-1" */
};

struct r2f_source {
    const struct mapi_ref *ref;
    int type;      /* enum res2file_format */
    uint32_t size; /* result size of the referenced function */
};

struct r2f_state {
    FILE *out;
    char *iobuf;        /* R2F_BUFSIZE bytes of stdio buffer for out */
    const char *header; /* owned by mapid, valid for the instance's life */
    int nsources;
    struct r2f_source *sources;
    void *scratch; /* max(RAW result sizes, sizeof(stats_t)) bytes */
    enum r2f_mode mode;
    int reset;
    uint64_t interval;  /* ticks, R2F_PERIODIC only */
    int connected;      /* init() ran: the header is written */
    int failed;         /* a write failed: nothing more is written */
    int started;        /* a packet has been ticked */
    uint64_t start;     /* start of the open interval */
    int line_written;   /* R2F_AT_END: the line is written */
    int flushed;        /* flush() ran: the trace is over */
    uint64_t max_empty; /* empty lines written in a row at most (res2file_max_empty) */
    uint64_t gaps;      /* timestamp jumps cut short */
};

/* Marks the output failed and logs why, once. */
static void r2f_fail(struct mapi_fn_instance *fi, struct r2f_state *st, int err)
{
    if (st->failed)
        return;
    st->failed = 1;
    fi->host->log(0, "RES2FILE (flow %d, fid %d): write failed: %s; no more lines written",
                  fi->flow_id, fi->fid, strerror(err ? err : EIO));
}

/* Formatted output to the file unless writing failed. */
static void r2f_printf(struct mapi_fn_instance *fi, struct r2f_state *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void r2f_printf(struct mapi_fn_instance *fi, struct r2f_state *st, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (st->failed)
        return;
    va_start(ap, fmt);
    n = vfprintf(st->out, fmt, ap);
    va_end(ap);
    if (n < 0)
        r2f_fail(fi, st, errno);
}

/* Binary output to the file unless writing failed. */
static void r2f_write(struct mapi_fn_instance *fi, struct r2f_state *st, const void *p, size_t n)
{
    if (st->failed || n == 0)
        return;
    if (fwrite(p, 1, n, st->out) != n)
        r2f_fail(fi, st, errno);
}

/* Hands the buffered bytes to the kernel. */
static void r2f_flush_file(struct mapi_fn_instance *fi, struct r2f_state *st)
{
    if (!st->failed && fflush(st->out) != 0)
        r2f_fail(fi, st, errno);
}

/* Writes one line with the current values of every source. */
static void write_line(struct mapi_fn_instance *fi, struct r2f_state *st)
{
    const struct mapi_host_api *h = fi->host;

    for (int i = 0; i < st->nsources && !st->failed; i++) {
        const struct r2f_source *src = &st->sources[i];
        switch (src->type) {
        case R2F_ULLSTR:
            r2f_printf(fi, st, "%llu ", (unsigned long long)h->ref_read_u64(src->ref));
            break;
        case R2F_ULLSEC:
            r2f_printf(fi, st, "%.12Lf ",
                       (long double)h->ref_read_u64(src->ref) / STDFLIB_TICKS_PER_SECOND);
            break;
        case R2F_STATS: {
            stats_t s;
            h->ref_read(src->ref, st->scratch, sizeof s);
            memcpy(&s, st->scratch, sizeof s);
            r2f_printf(fi, st, "%llu %Lf %Lf %f %f ", s.count, s.sum, s.sum2, s.min, s.max);
            break;
        }
        default: { /* R2F_RAW */
            unsigned long size = src->size;
            h->ref_read(src->ref, st->scratch, src->size);
            r2f_write(fi, st, &size, sizeof size);
            r2f_write(fi, st, st->scratch, src->size);
            break;
        }
        }
    }
    r2f_write(fi, st, "\n", 1);
}

/* Resets every source (after a periodic line, if asked). */
static void reset_sources(struct mapi_fn_instance *fi, struct r2f_state *st)
{
    for (int i = 0; i < st->nsources; i++)
        fi->host->ref_reset(st->sources[i].ref);
}

/* Number of items of a comma-separated list (commas + 1). */
static int list_items(const char *s)
{
    int n = 1;

    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* Frees the state; closes the file if it was opened (fclose flushes). */
static void r2f_free(struct mapi_fn_instance *fi, struct r2f_state *st)
{
    if (st == NULL)
        return;
    if (st->out != NULL) {
        if (!st->failed && fflush(st->out) != 0)
            r2f_fail(fi, st, errno);
        fclose(st->out);
    }
    free(st->iobuf);
    free(st->sources);
    free(st->scratch);
    free(st);
}

/*
 * Checks the arguments, opens the references and takes over the file descriptor. Returns 0;
 * 7001..7005 or 7011 (the argument at fault, with a message in fi->errmsg); or
 * MAPID_MEM_ALLOCATION_ERROR. On error the descriptor is left to mapid, which closes it.
 */
int stdflib_res2file_instance(struct mapi_fn_instance *fi)
{
    const char *types = fi->args[0].v.s, *fids = fi->args[1].v.s, *header = fi->args[2].v.s;
    const char *interval = fi->args[4].v.s;
    int fd = fi->args[3].type == 'w' ? fi->args[3].v.fd : -1;
    int reset = fi->args[5].v.i;
    int type_list[R2F_MAX_SOURCES];
    struct stdflib_fnref *refs = NULL;
    struct r2f_state *st = NULL;
    enum r2f_mode mode = R2F_PERIODIC;
    uint64_t ticks = 0;
    int ntypes, nfids, flags, err;
    size_t scratch_size = sizeof(stats_t);

    if (fi->host->ref_open == NULL) {
        stdflib_errmsg(fi, "this mapid does not support function references");
        return MFUNCT_NOT_SUPPORTED;
    }
    if (types == NULL || types[0] == '\0') {
        stdflib_errmsg(fi, "missing list of types (\"1,1,2\")");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (fids == NULL || fids[0] == '\0') {
        stdflib_errmsg(fi, "missing list of functions (\"fid@fd,...\")");
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    if (header == NULL) {
        stdflib_errmsg(fi, "missing header");
        return MFUNCT_INVALID_ARGUMENT_3;
    }
    flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (flags < 0 || ((flags & O_ACCMODE) != O_WRONLY && (flags & O_ACCMODE) != O_RDWR)) {
        stdflib_errmsg(fi, "the output file is not open for writing");
        return MFUNCT_INVALID_ARGUMENT_4;
    }
    if (interval == NULL) {
        stdflib_errmsg(fi, "missing interval");
        return MFUNCT_INVALID_ARGUMENT_5;
    }
    if (strcmp(interval, "0") == 0)
        mode = R2F_EVERY_PKT;
    else if (strcmp(interval, "-1") == 0)
        mode = R2F_AT_END;
    else if (stdflib_parse_duration(interval, &ticks) < 0 || ticks == 0) {
        stdflib_errmsg(fi, "bad interval \"%s\" (a period like \"1s\", \"0\" or \"-1\")", interval);
        return MFUNCT_INVALID_ARGUMENT_5;
    }
    if (reset != 0 && reset != 1) {
        stdflib_errmsg(fi, "reset must be 0 or 1, not %d", reset);
        return MFUNCT_INVALID_ARGUMENT_6;
    }
    ntypes = stdflib_parse_int_list(types, R2F_RAW, R2F_STATS, type_list, R2F_MAX_SOURCES);
    if (ntypes < 0) {
        stdflib_errmsg(fi,
                       "bad list of types \"%s\" (0 RAW, 1 ULLSTR, 2 ULLSEC, 3 STATS, "
                       "comma separated, at most %d)",
                       types, R2F_MAX_SOURCES);
        return MFUNCT_INVALID_ARGUMENT_1;
    }

    err = MAPID_MEM_ALLOCATION_ERROR;
    st = calloc(1, sizeof *st);
    refs = calloc((size_t)list_items(fids), sizeof *refs);
    if (st == NULL || refs == NULL)
        goto fail;
    nfids = stdflib_parse_function_list(fids, refs, list_items(fids));
    err = MFUNCT_INVALID_ARGUMENT_2;
    if (nfids <= 0) {
        stdflib_errmsg(fi, "bad list of functions \"%s\" (\"fid@fd,...\")", fids);
        goto fail;
    }
    if (nfids != ntypes) {
        stdflib_errmsg(fi, "%d functions listed but %d types", nfids, ntypes);
        goto fail;
    }
    st->sources = calloc((size_t)nfids, sizeof *st->sources);
    if (st->sources == NULL) {
        err = MAPID_MEM_ALLOCATION_ERROR;
        goto fail;
    }
    st->nsources = nfids;
    for (int i = 0; i < nfids; i++) {
        struct r2f_source *src = &st->sources[i];
        uint32_t need = type_list[i] == R2F_STATS ? (uint32_t)sizeof(stats_t) : 1;
        src->ref = fi->host->ref_open(fi, refs[i].flow_id, refs[i].fid);
        if (src->ref == NULL)
            goto fail; /* mapid wrote the reason */
        src->type = type_list[i];
        src->size = fi->host->ref_size(src->ref);
        if (src->size < need) {
            stdflib_errmsg(fi, "function %d@%d has %s (%u bytes) for type %d", refs[i].fid,
                           refs[i].flow_id, src->size ? "too small a result" : "no result",
                           src->size, type_list[i]);
            goto fail;
        }
        if (src->type == R2F_RAW && src->size > scratch_size)
            scratch_size = src->size;
    }
    free(refs);
    refs = NULL;

    err = MAPID_MEM_ALLOCATION_ERROR;
    st->scratch = calloc(1, scratch_size);
    st->iobuf = malloc(R2F_BUFSIZE);
    if (st->scratch == NULL || st->iobuf == NULL)
        goto fail;
    st->header = header;
    st->mode = mode;
    st->reset = reset;
    st->interval = ticks;
    st->max_empty = R2F_MAX_EMPTY_DEFAULT;
    if (fi->host->conf_value != NULL) {
        const char *v = fi->host->conf_value("res2file_max_empty");
        char *end;
        if (v != NULL && *v >= '0' && *v <= '9') {
            unsigned long long m = strtoull(v, &end, 10);
            if (*end == '\0')
                st->max_empty = m;
        }
    }
    /* Last, as fclose would close the descriptor that mapid closes when we fail. */
    st->out = fdopen(fd, "w");
    if (st->out == NULL)
        goto fail;
    setvbuf(st->out, st->iobuf, _IOFBF, R2F_BUFSIZE);
    fi->priv = st;
    fi->result_size = 0;
    return 0;

fail:
    free(refs);
    r2f_free(fi, st);
    return err;
}

/* mapi_connect: writes "header\n" (flushed, so that the file shows it at once). Returns 0. */
int stdflib_res2file_init(struct mapi_fn_instance *fi)
{
    struct r2f_state *st = fi->priv;

    st->connected = 1;
    r2f_printf(fi, st, "%s\n", st->header);
    r2f_flush_file(fi, st);
    return 0;
}

/* Interval "0": a line per packet. Returns 1 (never filters). */
int stdflib_res2file_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct r2f_state *st = fi->priv;

    (void)pkt;
    if (st->mode == R2F_EVERY_PKT)
        write_line(fi, st);
    return 1;
}

/* Before every packet: opens the grid at the first one, writes a line for every interval
 * that ends at or before ts (periodic mode). */
void stdflib_res2file_tick(struct mapi_fn_instance *fi, uint64_t ts)
{
    struct r2f_state *st = fi->priv;
    uint64_t lines = 0;

    if (!st->started) {
        st->started = 1;
        st->start = ts;
        return;
    }
    if (st->mode != R2F_PERIODIC)
        return;
    while (ts >= st->start && ts - st->start >= st->interval) {
        /* lines: the interval of the previous packets, then empty ones */
        if (lines > st->max_empty) {
            uint64_t skip = (ts - st->start) / st->interval;
            r2f_printf(fi, st,
                       "# %llu empty intervals skipped (timestamp jump; "
                       "res2file_max_empty=%llu)\n",
                       (unsigned long long)skip, (unsigned long long)st->max_empty);
            if (st->gaps++ == 0)
                fi->host->log(1,
                              "RES2FILE (flow %d, fid %d): timestamp jump: %llu empty intervals "
                              "skipped after %llu (res2file_max_empty); the file says so",
                              fi->flow_id, fi->fid, (unsigned long long)skip,
                              (unsigned long long)st->max_empty);
            st->start += skip * st->interval;
            lines++;
            break;
        }
        write_line(fi, st);
        if (st->reset)
            reset_sources(fi, st);
        st->start += st->interval;
        lines++;
    }
    if (lines > 0 && !fi->offline)
        r2f_flush_file(fi, st);
}

/* End of the trace: the last, partial interval, or the one line of "-1"; then flushes. */
void stdflib_res2file_flush(struct mapi_fn_instance *fi)
{
    struct r2f_state *st = fi->priv;

    if (st->flushed)
        return;
    st->flushed = 1;
    if (st->mode == R2F_AT_END && !st->line_written) {
        write_line(fi, st);
        st->line_written = 1;
    } else if (st->mode == R2F_PERIODIC && st->started) {
        write_line(fi, st);
    }
    r2f_flush_file(fi, st);
}

/* Close: the line of "-1" if the trace never ended (live device), then closes the file. */
void stdflib_res2file_cleanup(struct mapi_fn_instance *fi)
{
    struct r2f_state *st = fi->priv;

    if (st == NULL)
        return;
    if (st->gaps > 1)
        fi->host->log(1, "RES2FILE (flow %d, fid %d): %llu timestamp jumps cut short in all",
                      fi->flow_id, fi->fid, (unsigned long long)st->gaps);
    if (st->connected && st->mode == R2F_AT_END && !st->line_written) {
        write_line(fi, st);
        st->line_written = 1;
    }
    r2f_free(fi, st);
    fi->priv = NULL;
}
