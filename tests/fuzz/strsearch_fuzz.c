/*
 * tests/fuzz/strsearch_fuzz.c - libFuzzer target for STR_SEARCH's pattern parser and matcher
 * (flib/stdflib/str_search.c, with the shared-evaluation registry of shared.c).
 *
 * Input: byte 0 the offset (0..63), byte 1 the depth (0..63, 0 = to the end), then the
 * pattern up to the first NUL byte, then the bytes of a packet.
 *
 * Properties (abort on a violation):
 *   - a model of the pattern syntax written here from the description at the top of
 *     str_search.c (|hex| blocks, backslash escapes, || alternatives, at most 16 of them)
 *     accepts exactly the patterns the parser accepts, with the same error number (3503,
 *     3505, 3504 for a depth shorter than the longest alternative), and a refusal has a
 *     message;
 *   - every alternative of an accepted pattern matches a packet made of `offset` filler bytes
 *     followed by its own bytes (a pattern matches its literal bytes);
 *   - on the input's packet, the verdict equals a naive search of every alternative in the
 *     window [offset, offset + depth) cut at caplen.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flib/stdflib/stdflib.h"
#include "mapi/errors.h"
#include "mapi/flib.h"

struct alt {
    size_t off, len;
};

/* The documented bound: at most 16 alternatives (a 17th is refused with 3505). */
#define MODEL_MAX_ALTS 16

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The model: fills bytes/alts; returns 0 or the error number the syntax calls for. */
static int model(const char *p, uint8_t *bytes, struct alt *alts, size_t *nalts)
{
    size_t n = strlen(p), i = 0, out = 0, start = 0;
    *nalts = 0;
    while (i < n) {
        if (p[i] == '\\') {
            if (i + 1 >= n)
                return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
            bytes[out++] = (uint8_t)p[i + 1];
            i += 2;
        } else if (p[i] == '|' && i + 1 < n && p[i + 1] == '|') {
            if (out == start || *nalts == MODEL_MAX_ALTS)
                return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
            alts[(*nalts)++] = (struct alt){start, out - start};
            start = out;
            i += 2;
        } else if (p[i] == '|') {
            int digits = 0, hi = 0;
            for (i++; i < n && p[i] != '|'; i++) {
                if (p[i] == ' ' || p[i] == '\t')
                    continue;
                int v = hexval((unsigned char)p[i]);
                if (v < 0)
                    return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
                if (digits++ % 2 == 0)
                    hi = v;
                else
                    bytes[out++] = (uint8_t)(hi << 4 | v);
            }
            if (i >= n)
                return MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR;
            if (digits == 0 || digits % 2)
                return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
            i++;
        } else {
            bytes[out++] = (uint8_t)p[i++];
        }
    }
    if (out == start || *nalts == MODEL_MAX_ALTS)
        return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
    alts[(*nalts)++] = (struct alt){start, out - start};
    return 0;
}

static int naive(const uint8_t *pkt, size_t caplen, uint32_t offset, uint32_t depth,
                 const uint8_t *bytes, const struct alt *alts, size_t nalts)
{
    if (offset >= caplen)
        return 0;
    size_t len = caplen - offset;
    if (depth && depth < len)
        len = depth;
    for (size_t k = 0; k < nalts; k++)
        for (size_t s = 0; s + alts[k].len <= len; s++)
            if (memcmp(pkt + offset + s, bytes + alts[k].off, alts[k].len) == 0)
                return 1;
    return 0;
}

static uint64_t seq;

static int verdict(struct mapi_fn_instance *fi, const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees an over-read */
    if (!copy)
        abort();
    memcpy(copy, data, len);
    struct mapi_pkt pkt;
    memset(&pkt, 0, sizeof pkt);
    pkt.data = copy;
    pkt.caplen = pkt.wlen = (uint32_t)len;
    pkt.seq = ++seq;
    pkt.linktype = 1;
    int v = stdflib_str_search_process(fi, &pkt);
    if (v != 0 && v != 1)
        abort();
    free(copy);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint32_t offset = data[0] % 64u, depth = data[1] % 64u;
    const uint8_t *p0 = data + 2, *nul = memchr(p0, 0, size - 2);
    size_t plen = nul ? (size_t)(nul - p0) : size - 2;
    char *pattern = malloc(plen + 1);
    uint8_t *bytes = malloc(plen + 1);
    struct alt *alts = calloc(plen + 1, sizeof *alts);
    if (!pattern || !bytes || !alts)
        abort();
    memcpy(pattern, p0, plen);
    pattern[plen] = 0;
    const uint8_t *pkt = nul ? nul + 1 : data + size;
    size_t pktlen = (size_t)(data + size - pkt);

    struct mapi_arg args[3] = {{.type = 's', .v.s = pattern},
                               {.type = 'i', .v.i = (int32_t)offset},
                               {.type = 'i', .v.i = (int32_t)depth}};
    struct mapi_fn_instance fi;
    memset(&fi, 0, sizeof fi);
    fi.args = args;
    fi.nargs = 3;
    fi.linktype = 1;
    fi.snaplen = 65535;
    fi.offline = 1;
    int rc = stdflib_str_search_instance(&fi);

    size_t nalts = 0;
    int want = plen == 0 ? MFUNCT_INVALID_ARGUMENT_1 : model(pattern, bytes, alts, &nalts);
    if (want == 0 && depth != 0) {
        for (size_t k = 0; k < nalts; k++)
            if (alts[k].len > depth)
                want = MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR;
    }
    if (rc != want)
        abort(); /* the parser and the documented syntax disagree */
    if (rc != 0 && rc != MFUNCT_INVALID_ARGUMENT_1 && fi.errmsg[0] == 0)
        abort(); /* a refusal says why */
    if (rc == 0) {
        for (size_t k = 0; k < nalts; k++) {
            size_t len = offset + alts[k].len;
            uint8_t *own = malloc(len);
            if (!own)
                abort();
            memset(own, 0xa5, offset);
            memcpy(own + offset, bytes + alts[k].off, alts[k].len);
            if (verdict(&fi, own, len) != 1)
                abort(); /* a pattern matches its own bytes */
            free(own);
        }
        if (verdict(&fi, pkt, pktlen) != naive(pkt, pktlen, offset, depth, bytes, alts, nalts))
            abort();
        stdflib_str_search_cleanup(&fi);
    }
    free(pattern);
    free(bytes);
    free(alts);
    return 0;
}
