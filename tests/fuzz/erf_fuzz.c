/*
 * tests/fuzz/erf_fuzz.c - libFuzzer target for mapid's ERF reader (drivers/erf_file.c with
 * drivers/trace_input.c): the input is a trace file as a client could hand it to mapid.
 *
 * Properties checked (abort on a violation), besides the sanitizers' checks:
 *   - the generic ones of fuzz_util.h (refusals say why, packet bytes readable, stats exact,
 *     a finished source stays finished);
 *   - the batch size does not change what is read (batches of 1 and of 64);
 *   - a model: an independent walk of the records written here from the format description
 *     at the top of erf_file.c (16-byte header, extension headers, 2-byte pad of Ethernet
 *     types, FCS not counted, caplen clamped to wlen, records without packets skipped) must
 *     give exactly the reader's packets, with their bytes at the right offset of the input,
 *     the same acceptance at open, and an end message exactly when the model says the trace
 *     is truncated, corrupt or had unsupported records;
 *   - gzip: the same input gzip-compressed gives exactly the same packets and end message.
 * ERF does not require monotone timestamps, so none is checked.
 */
#include <pcap/dlt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/driver.h"
#include "mapi.h"
#include "tests/fuzz/fuzz_util.h"

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Packet types: DLT and whether it is Ethernet (pad 2, FCS in wlen); -1 no packet, -2 unknown. */
static int model_type(unsigned t, const uint8_t *payload, size_t len, int *eth)
{
    *eth = 0;
    switch (t) {
    case 2:
    case 11:
    case 16:
    case 20:
        *eth = 1;
        return DLT_EN10MB;
    case 22:
    case 23:
        return DLT_RAW;
    case 1:
    case 10:
    case 15:
    case 19:
        return len > 0 && payload[0] == 0xff ? DLT_PPP_SERIAL : DLT_C_HDLC;
    case 27:
    case 48:
        return -1;
    default:
        return -2;
    }
}

/* Checks run r (of the plain input d[0..size)) against the model. */
static void check_model(const uint8_t *d, size_t size, const struct fz_run *r)
{
    /* Acceptance at open: pcap magics refused, a first record of type 1..48 with rlen >= 16. */
    int accept = size >= 16;
    if (size >= 4) {
        uint32_t m;
        memcpy(&m, d, 4);
        if (m == 0xa1b2c3d4u || m == 0xd4c3b2a1u || m == 0xa1b23c4du || m == 0x4d3cb2a1u ||
            m == 0x0a0d0d0au)
            accept = 0;
    }
    if (accept && (be16(d + 10) < 16 || (d[8] & 0x7f) == 0 || (d[8] & 0x7f) > 48))
        accept = 0;
    if (accept != r->opened)
        abort();
    if (!accept)
        return;
    size_t pos = 0, k = 0;
    int trouble = 0; /* truncated, corrupt or skipped records: an end message is due */
    for (;;) {
        if (size - pos == 0)
            break;
        if (size - pos < 16) {
            trouble = 1;
            break;
        }
        const uint8_t *rec = d + pos;
        unsigned rlen = be16(rec + 10);
        if (rlen < 16 || size - pos < rlen) {
            trouble = 1;
            break;
        }
        unsigned hdr = 16, t = rec[8];
        while ((t & 0x80) && hdr + 8 <= rlen) {
            t = rec[hdr];
            hdr += 8;
        }
        if (t & 0x80) {
            trouble = 1;
            break;
        }
        int eth;
        int lt = model_type(rec[8] & 0x7fu, rec + hdr, rlen - hdr, &eth);
        pos += rlen;
        if (lt == -2)
            trouble = 1;
        if (lt < 0)
            continue;
        unsigned pad = eth ? 2 : 0;
        uint32_t wlen = be16(rec + 14);
        if (eth)
            wlen = wlen >= 4 ? wlen - 4 : 0;
        uint32_t caplen = rlen - hdr >= pad ? rlen - hdr - pad : 0;
        if (caplen > wlen)
            caplen = wlen;
        uint64_t ts;
        memcpy(&ts, rec, 8); /* little-endian: this test runs on x86-64 */
        if (k >= r->n)
            abort(); /* the reader stopped early */
        const struct fz_pkt *p = &r->pkts[k++];
        if (p->caplen != caplen || p->wlen != wlen || p->ts != ts || p->ifindex != (rec[9] & 3) ||
            p->linktype != lt || memcmp(p->data, rec + hdr + pad, caplen) != 0)
            abort();
    }
    if (k != r->n)
        abort(); /* the reader handed out packets the model does not have */
    if (trouble != (r->err[0] != 0))
        abort(); /* an end message exactly when something was wrong */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_run one, many;
    if (fz_run_driver(&capture_erf_file, MFF_DAG_ERF, data, size, 1, &one) < 0)
        return 0;
    if (fz_run_driver(&capture_erf_file, MFF_DAG_ERF, data, size, 64, &many) < 0) {
        fz_run_free(&one);
        return 0;
    }
    if (!fz_same_packets(&one, &many) || one.end != many.end || strcmp(one.err, many.err) != 0)
        abort(); /* the batch size changed the result */
    for (size_t i = 0; i < many.n; i++)
        if (many.pkts[i].caplen > 65535u - 16u)
            abort(); /* rlen is 16 bits */

    if (!fz_is_gzip(data, size)) {
        check_model(data, size, &many);
        fz_check_gzip_same(&capture_erf_file, MFF_DAG_ERF, data, size, &many);
    }
    fz_run_free(&one);
    fz_run_free(&many);
    return 0;
}
