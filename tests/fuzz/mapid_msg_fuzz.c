/*
 * tests/fuzz/mapid_msg_fuzz.c - libFuzzer target for mapid's message decoder: the wire header
 * check (wire_parse_header) and mapid_decode_request (daemon/mapid/request.c) on every
 * request type of common/wire.h; linked with daemon/mapid/request.c and common/wire.c.
 * Fuzzed by tests/fuzz/fuzz.sh (`make fuzz`); ctest fuzz_mapid_msg (tests/fuzz/fuzz.cmake)
 * replays tests/fuzz/corpus/mapid_msg/ (written by tests/fuzz/gen_mapid_msg_corpus.py).
 *
 * The input is a byte stream read as consecutive messages (16-byte header + payload), as mapid
 * reads a connection; a payload cut short by the end of the input is decoded with its real
 * length. Each payload is copied into a buffer of exactly its size, so ASan reports any read
 * past it. Properties checked besides the sanitizers' (abort() on a violation):
 *   - the result is one of the documented codes; UNKNOWN exactly for non-request types;
 *   - decoding is pure: a second decode of the same bytes gives the same result;
 *   - an accepted request re-encoded here with the wire_writer (independently of request.c)
 *     gives exactly the payload bytes (no field skipped, invented or reordered; nargs equals
 *     the number of arguments);
 *   - its strings are NUL-terminated within their limits (so contain no NUL), argument
 *     letters are known, 'w' indices are < WIRE_MAX_FDS, string arguments lie inside the
 *     request's string block, and the fields of other types are zero;
 *   - the payload with its last byte cut, or with one byte added, is refused (strictness).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "daemon/mapid/request.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Re-encodes a decoded request's payload (the format of common/wire.h). */
static void encode(const struct mapid_request *r, struct wire_writer *w)
{
    switch (r->type) {
    case WIRE_HELLO:
        wire_put_u16(w, r->min_version);
        wire_put_u16(w, r->max_version);
        break;
    case WIRE_CREATE_FLOW:
    case WIRE_START_OFFLINE_DEVICE:
    case WIRE_DELETE_OFFLINE_DEVICE:
    case WIRE_STATS:
        wire_put_str(w, r->device);
        break;
    case WIRE_CREATE_OFFLINE_DEVICE:
    case WIRE_CREATE_OFFLINE_FLOW:
        wire_put_u32(w, r->format);
        wire_put_str(w, r->path);
        break;
    case WIRE_GET_FUNCTION:
        wire_put_str(w, r->name);
        break;
    case WIRE_APPLY_FUNCTION:
        wire_put_i32(w, r->flow);
        wire_put_str(w, r->name);
        wire_put_u32(w, r->nargs);
        for (uint32_t i = 0; i < r->nargs; i++) {
            const struct mapi_arg *a = &r->args[i];
            wire_put_u8(w, (uint8_t)a->type);
            switch (a->type) {
            case 's':
            case 'S':
            case 'R':
                CHECK(a->v.s != NULL);
                wire_put_str(w, a->v.s);
                break;
            case 'l':
                wire_put_u64(w, a->v.l);
                break;
            case 'w':
                wire_put_u32(w, (uint32_t)a->v.fd);
                break;
            default:
                wire_put_i32(w, a->v.i);
                break;
            }
        }
        break;
    case WIRE_CONNECT:
    case WIRE_CLOSE_FLOW:
        wire_put_i32(w, r->flow);
        break;
    case WIRE_DEVICE_INFO:
    case WIRE_LIBRARY_INFO:
        wire_put_i32(w, r->id);
        wire_put_u8(w, r->next);
        break;
    case WIRE_LIBFUNCT_INFO:
        wire_put_i32(w, r->lib);
        wire_put_i32(w, r->fnum);
        wire_put_u8(w, r->next);
        break;
    case WIRE_FLOW_INFO:
        wire_put_i32(w, r->flow);
        wire_put_u8(w, r->next);
        break;
    case WIRE_FUNCTION_INFO:
        wire_put_i32(w, r->flow);
        wire_put_i32(w, r->fid);
        wire_put_u8(w, r->next);
        break;
    default:
        abort(); /* the decoder accepted a type it does not know */
    }
}

/* The payload of an accepted request, re-encoded (malloc'd, *len bytes). */
static uint8_t *reencode(const struct wire_hdr *h, const struct mapid_request *r, size_t *len)
{
    struct wire_writer w;
    wire_writer_init(&w, h->type, h->reqid, 0);
    encode(r, &w);
    CHECK(!w.failed && w.len >= WIRE_HDR_SIZE);
    *len = w.len - WIRE_HDR_SIZE;
    uint8_t *p = malloc(*len ? *len : 1);
    CHECK(p != NULL);
    memcpy(p, w.buf + WIRE_HDR_SIZE, *len);
    wire_writer_free(&w);
    return p;
}

static int is_string_field(uint16_t type, const char *field)
{
    if (!strcmp(field, "device"))
        return type == WIRE_CREATE_FLOW || type == WIRE_START_OFFLINE_DEVICE ||
               type == WIRE_DELETE_OFFLINE_DEVICE || type == WIRE_STATS;
    if (!strcmp(field, "path"))
        return type == WIRE_CREATE_OFFLINE_DEVICE || type == WIRE_CREATE_OFFLINE_FLOW;
    return type == WIRE_GET_FUNCTION || type == WIRE_APPLY_FUNCTION; /* name */
}

/* Invariants of an accepted request that the round trip does not cover. */
static void check_fields(const struct mapid_request *r)
{
    CHECK(strnlen(r->device, sizeof(r->device)) < sizeof(r->device));
    CHECK(strnlen(r->path, sizeof(r->path)) < sizeof(r->path));
    CHECK(strnlen(r->name, sizeof(r->name)) < sizeof(r->name));
    CHECK(is_string_field(r->type, "device") || r->device[0] == 0);
    CHECK(is_string_field(r->type, "path") || r->path[0] == 0);
    CHECK(is_string_field(r->type, "name") || r->name[0] == 0);
    CHECK(r->nargs <= MAPID_REQ_MAX_ARGS);
    CHECK((r->nargs == 0) == (r->args == NULL));
    CHECK((r->nargs == 0) == (r->strings == NULL));
    if (r->type != WIRE_APPLY_FUNCTION)
        CHECK(r->nargs == 0);
    const char *end = r->strings; /* string arguments lie one after the other in the block */
    for (uint32_t i = 0; i < r->nargs; i++) {
        const struct mapi_arg *a = &r->args[i];
        CHECK(a->type && strchr("sSRirfclw", a->type));
        if (a->type == 's' || a->type == 'S' || a->type == 'R') {
            CHECK(a->v.s == end);
            end += strlen(a->v.s) + 1;
        } else if (a->type == 'w') {
            CHECK(a->v.fd >= 0 && a->v.fd < WIRE_MAX_FDS);
        }
    }
}

/* Decodes payload[0..len) (an exactly sized buffer, NULL if len is 0) as type h. */
static int decode(const struct wire_hdr *h, const uint8_t *payload, size_t len,
                  struct mapid_request *r)
{
    struct wire_hdr hh = *h;
    hh.length = (uint32_t)len;
    return mapid_decode_request(&hh, payload, r);
}

/* An exactly sized copy of p[0..len) (NULL for 0 bytes), so ASan sees any read past it. */
static uint8_t *copy(const uint8_t *p, size_t len)
{
    if (len == 0)
        return NULL;
    uint8_t *c = malloc(len);
    CHECK(c != NULL);
    memcpy(c, p, len);
    return c;
}

static void check_one(const struct wire_hdr *h, const uint8_t *data, size_t len)
{
    uint8_t *payload = copy(data, len);
    struct mapid_request r, r2;
    int rc = decode(h, payload, len, &r);
    CHECK(rc == MAPID_DECODE_OK || rc == MAPID_DECODE_MALFORMED || rc == MAPID_DECODE_UNKNOWN ||
          rc == MAPID_DECODE_NOMEM);
    CHECK(r.type == h->type && r.reqid == h->reqid);
    int is_request = h->type >= WIRE_HELLO && h->type <= WIRE_STATS && !(h->flags & WIRE_F_ERROR);
    CHECK((rc == MAPID_DECODE_UNKNOWN) == !is_request);
    CHECK(rc != MAPID_DECODE_NOMEM || h->type == WIRE_APPLY_FUNCTION);
    if (rc != MAPID_DECODE_OK)
        CHECK(r.args == NULL && r.strings == NULL); /* nothing to free */

    /* Pure: the same bytes decode the same way. */
    int rc2 = decode(h, payload, len, &r2);
    CHECK(rc2 == rc);

    if (rc == MAPID_DECODE_OK) {
        check_fields(&r);
        size_t n, n2;
        uint8_t *again = reencode(h, &r, &n);
        CHECK(n == len && (len == 0 || memcmp(again, payload, len) == 0));
        uint8_t *again2 = reencode(h, &r2, &n2);
        CHECK(n2 == n && memcmp(again2, again, n) == 0);
        free(again);
        free(again2);

        /* Strict: one byte less or one byte more is malformed. */
        struct mapid_request t;
        if (len > 0) {
            uint8_t *cut = copy(payload, len - 1);
            CHECK(decode(h, cut, len - 1, &t) == MAPID_DECODE_MALFORMED);
            mapid_request_free(&t);
            free(cut);
        }
        uint8_t *more = malloc(len + 1);
        CHECK(more != NULL);
        if (len)
            memcpy(more, payload, len);
        more[len] = 0;
        CHECK(decode(h, more, len + 1, &t) == MAPID_DECODE_MALFORMED);
        mapid_request_free(&t);
        free(more);
    }
    mapid_request_free(&r);
    mapid_request_free(&r2);
    CHECK(r.args == NULL && r.strings == NULL && r.nargs == 0);
    free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= WIRE_HDR_SIZE) {
        struct wire_hdr h;
        if (wire_parse_header(data, &h) < 0)
            return 0;                        /* mapid closes the connection here */
        CHECK(h.length <= WIRE_MAX_PAYLOAD); /* wire_parse_header must refuse it */
        data += WIRE_HDR_SIZE;
        size -= WIRE_HDR_SIZE;
        size_t len = h.length <= size ? h.length : size;
        check_one(&h, data, len);
        data += len;
        size -= len;
    }
    return 0;
}
