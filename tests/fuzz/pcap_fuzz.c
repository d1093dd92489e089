/*
 * tests/fuzz/pcap_fuzz.c - libFuzzer target for mapid's pcap/pcapng reader (drivers/pcap_file.c
 * with drivers/trace_input.c): the input is a trace file as a client could hand it to mapid.
 *
 * Properties checked (abort on a violation), besides the sanitizers' checks:
 *   - every refusal has a message and a MAPI error number; every packet's bytes are readable
 *     (copied, so ASan sees an over-read), caplen <= max(snaplen, 262144) for classic pcap and
 *     <= the snapshot length libpcap reports for pcapng; stats count exactly what was handed
 *     out; a finished source stays finished (fuzz_util.h);
 *   - the batch size does not change what is read (batches of 1 and of 64);
 *   - differential: on inputs libpcap's pcap_fopen_offline accepts, the reader hands out
 *     exactly libpcap's packets (lengths, timestamps, bytes) up to the first record libpcap
 *     would truncate or refuse (caplen above the snapshot length), and the same number of
 *     packets when there is no such record;
 *   - gzip: the same input gzip-compressed gives exactly the same packets and end message.
 * Timestamps are not required to be monotone: neither pcap nor pcapng says they are.
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decode.h"
#include "drivers/driver.h"
#include "mapi.h"
#include "mapi/flib.h"
#include "tests/fuzz/fuzz_util.h"

#define PCAP_MAX_SNAP 262144u

static uint32_t rd32(const uint8_t *p, int swapped)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

/*
 * For a classic pcap input: how many leading records libpcap and the reader must agree on
 * (complete records whose caplen is within the snapshot length), and whether that is all of
 * them (*all: no record after them but possibly a truncated tail). -1 if not classic pcap.
 */
static long agreed_records(const uint8_t *d, size_t size, int *all)
{
    if (size < 24)
        return -1;
    uint32_t magic = rd32(d, 0);
    int swapped;
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
        swapped = 0;
    else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
        swapped = 1;
    else
        return -1;
    uint16_t minor;
    memcpy(&minor, d + 6, 2);
    if (swapped)
        minor = __builtin_bswap16(minor);
    uint32_t snap = rd32(d + 16, swapped);
    uint32_t eff = snap == 0 || snap > PCAP_MAX_SNAP ? PCAP_MAX_SNAP : snap;
    size_t pos = 24;
    long k = 0;
    *all = 0;
    for (;;) {
        if (size - pos < 16) {
            *all = 1;
            return k;
        }
        uint32_t caplen = rd32(d + pos + 8, swapped), wlen = rd32(d + pos + 12, swapped);
        if (minor < 3 || (minor == 3 && caplen > wlen))
            caplen = wlen;
        if (caplen > eff)
            return k;
        if (size - pos - 16 < caplen) {
            *all = 1;
            return k;
        }
        pos += 16 + (size_t)caplen;
        k++;
    }
}

/* libpcap's reading of the same bytes; 0 if libpcap refuses the file. */
static int run_libpcap(const uint8_t *data, size_t size, int nsec, struct fz_run *r)
{
    memset(r, 0, sizeof *r);
    FILE *fp = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!fp)
        return 0;
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(
        fp, nsec ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO, eb);
    if (!p) {
        fclose(fp);
        return 0;
    }
    r->opened = 1;
    r->linktype = pcap_datalink(p);
    r->snaplen = (uint32_t)pcap_snapshot(p);
    struct pcap_pkthdr *h;
    const u_char *b;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &b)) == 1) {
        struct fz_pkt *q = fz_run_push(r);
        q->caplen = h->caplen;
        q->wlen = h->len;
        q->ts = nsec ? mapi_ts_from_nsec((uint64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec)
                     : mapi_ts_from_usec((uint64_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec);
        q->linktype = (uint16_t)r->linktype;
        q->data = malloc(h->caplen ? h->caplen : 1);
        if (!q->data)
            abort();
        memcpy(q->data, b, h->caplen);
    }
    r->end = rc == PCAP_ERROR_BREAK ? CAPTURE_EOF : CAPTURE_ERROR;
    pcap_close(p); /* closes fp */
    return 1;
}

static int same_prefix(const struct fz_run *a, const struct fz_run *b, size_t k)
{
    if (a->n < k || b->n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        const struct fz_pkt *x = &a->pkts[i], *y = &b->pkts[i];
        if (x->caplen != y->caplen || x->wlen != y->wlen || x->ts != y->ts ||
            x->linktype != y->linktype || memcmp(x->data, y->data, x->caplen) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_run one, many;
    if (fz_run_driver(&capture_pcap_file, MFF_PCAP, data, size, 1, &one) < 0)
        return 0;
    if (fz_run_driver(&capture_pcap_file, MFF_PCAP, data, size, 64, &many) < 0) {
        fz_run_free(&one);
        return 0;
    }
    if (!fz_same_packets(&one, &many) || one.end != many.end || strcmp(one.err, many.err) != 0)
        abort(); /* the batch size changed the result */

    if (many.opened) {
        int classic = size >= 4 && (rd32(data, 0) == 0xa1b2c3d4u || rd32(data, 0) == 0xa1b23c4du ||
                                    rd32(data, 0) == 0xd4c3b2a1u || rd32(data, 0) == 0x4d3cb2a1u);
        uint32_t bound = many.snaplen > PCAP_MAX_SNAP ? many.snaplen : PCAP_MAX_SNAP;
        for (size_t i = 0; i < many.n; i++) {
            if (many.pkts[i].caplen > (classic ? bound : many.snaplen))
                abort();
            if (many.pkts[i].linktype != (uint16_t)many.linktype)
                abort();
        }
    }

    if (!fz_is_gzip(data, size)) {
        /* Differential against libpcap. */
        int nsec = size >= 4 && (rd32(data, 0) == 0xa1b23c4du || rd32(data, 0) == 0x4d3cb2a1u ||
                                 rd32(data, 0) == 0x0a0d0d0au);
        struct fz_run ref;
        if (run_libpcap(data, size, nsec, &ref) && many.opened) {
            int all = 0;
            long k = agreed_records(data, size, &all);
            if (k < 0) { /* pcapng (read through libpcap by the driver too): all of it */
                if (!same_prefix(&many, &ref, ref.n) || many.n != ref.n)
                    abort();
            } else {
                if (!same_prefix(&many, &ref, (size_t)k))
                    abort();
                if (all && (many.n != (size_t)k || ref.n != (size_t)k))
                    abort();
            }
        }
        fz_run_free(&ref);

        /* The same trace gzip-compressed reads the same. */
        fz_check_gzip_same(&capture_pcap_file, MFF_PCAP, data, size, &many);
    }
    fz_run_free(&one);
    fz_run_free(&many);
    return 0;
}
