/*
 * tests/fuzz/dimapi_fuzz.c - libFuzzer target for mapicommd's message decoder: the wire
 * header check (wire_parse_header) and the request decoder of every DiMAPI type
 * (dimapi_decode in daemon/mapicommd/proto.c). Built and run for a bounded time by
 * tests/test_dimapi_fuzz.sh:
 *     clang -fsanitize=fuzzer,address,undefined -I. -Iinclude -D_GNU_SOURCE \
 *         tests/fuzz/dimapi_fuzz.c daemon/mapicommd/proto.c common/wire.c
 *
 * The input is a byte stream read as consecutive messages (16-byte header + payload), as
 * mapicommd reads a connection; a payload cut short by the end of the input is decoded with
 * its real length (a truncated message). Besides the sanitizers' checks, every request that
 * decodes is re-encoded here, independently of proto.c, and must give back exactly the
 * payload bytes (so the decoder neither skips nor invents fields), and its strings must be
 * NUL-terminated within their limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dimapi.h"
#include "common/wire.h"
#include "daemon/mapicommd/mapicommd.h"

/* Re-encodes a decoded request's payload (the format of common/dimapi.h). */
static void encode(const struct dimapi_req *r, struct wire_writer *w)
{
    switch (r->type) {
    case DIMAPI_HELLO:
        wire_put_u16(w, r->min_version);
        wire_put_u16(w, r->max_version);
        for (int i = 0; i < DIMAPI_TOKEN_LEN; i++)
            wire_put_u8(w, r->token[i]);
        break;
    case DIMAPI_CREATE_FLOW:
    case DIMAPI_GET_FUNCTION:
    case DIMAPI_STATS:
        wire_put_str(w, r->str);
        break;
    case DIMAPI_APPLY:
        wire_put_i32(w, r->rfd);
        wire_put_str(w, r->str);
        wire_put_u32(w, r->nargs);
        for (uint32_t i = 0; i < r->nargs; i++) {
            const struct dimapi_arg *a = &r->args[i];
            wire_put_u8(w, (uint8_t)a->type);
            if (strchr("sSRw", a->type)) {
                if (!a->s)
                    abort();
                wire_put_str(w, a->s);
            } else if (a->type == 'l') {
                wire_put_u64(w, a->l);
            } else {
                wire_put_i32(w, a->i);
            }
        }
        break;
    case DIMAPI_CONNECT:
    case DIMAPI_CLOSE_FLOW:
    case DIMAPI_FLOW_INFO:
        wire_put_i32(w, r->rfd);
        break;
    case DIMAPI_READ_RESULT:
        wire_put_i32(w, r->rfd);
        wire_put_i32(w, r->fid);
        break;
    case DIMAPI_GET_PKTS:
        wire_put_i32(w, r->rfd);
        wire_put_i32(w, r->fid);
        wire_put_u32(w, r->max_pkts);
        wire_put_u32(w, r->max_bytes);
        wire_put_u32(w, r->wait_ms);
        break;
    case DIMAPI_FUNCTION_INFO:
        wire_put_i32(w, r->rfd);
        wire_put_i32(w, r->fid);
        wire_put_u8(w, r->next);
        break;
    case DIMAPI_DEVICE_INFO:
    case DIMAPI_LIBRARY_INFO:
        wire_put_i32(w, r->id);
        wire_put_u8(w, r->next);
        break;
    case DIMAPI_LIBFUNCT_INFO:
        wire_put_i32(w, r->lib);
        wire_put_i32(w, r->fnum);
        wire_put_u8(w, r->next);
        break;
    default:
        abort(); /* the decoder accepted a type it does not know */
    }
}

static void check_one(const struct wire_hdr *h, const uint8_t *payload, size_t len)
{
    struct dimapi_req r;
    char why[256];
    int rc = dimapi_decode(h, payload, len, &r, why, sizeof(why));
    if (rc != 0 && rc != DIMAPI_DECODE_MALFORMED && rc != DIMAPI_DECODE_UNKNOWN)
        abort();
    if (rc != 0 && strnlen(why, sizeof(why)) == 0)
        abort(); /* every refusal says why */
    if (rc == 0) {
        if (strnlen(r.str, sizeof(r.str)) >= sizeof(r.str) || r.nargs > DIMAPI_MAX_ARGS)
            abort();
        struct wire_writer w;
        wire_writer_init(&w, h->type, h->reqid, 0);
        encode(&r, &w);
        if (w.failed || w.len - WIRE_HDR_SIZE != len ||
            memcmp(w.buf + WIRE_HDR_SIZE, payload, len) != 0)
            abort();
        wire_writer_free(&w);
    }
    dimapi_req_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= WIRE_HDR_SIZE) {
        struct wire_hdr h;
        if (wire_parse_header(data, &h) < 0)
            return 0; /* mapicommd closes the connection here */
        if (h.length > WIRE_MAX_PAYLOAD)
            abort(); /* wire_parse_header must refuse it */
        data += WIRE_HDR_SIZE;
        size -= WIRE_HDR_SIZE;
        size_t len = h.length <= size ? h.length : size;
        /* Copy so that ASan sees reads past the payload. */
        uint8_t *p = malloc(len ? len : 1);
        if (!p)
            return 0;
        memcpy(p, data, len);
        if (len < h.length) {
            /* Truncated: decode what is there as if it were the whole message, and check that
             * the decoder refuses the mismatch of declared and real length. */
            check_one(&h, p, len);
            struct dimapi_req r;
            char why[64];
            if (dimapi_decode(&h, p, len, &r, why, sizeof(why)) == 0)
                abort();
            dimapi_req_free(&r);
            h.length = (uint32_t)len;
        }
        check_one(&h, p, len);
        free(p);
        data += len;
        size -= len;
    }
    return 0;
}
