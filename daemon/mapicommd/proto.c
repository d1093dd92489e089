/*
 * daemon/mapicommd/proto.c - decoder of DiMAPI requests (formats in common/dimapi.h) into a
 * struct dimapi_req. Pure: no I/O, no libmapi, no global state; every field is read through
 * the bounds-checked wire_reader, and a payload must be consumed exactly (trailing bytes are
 * malformed). Built into mapicommd and into the libFuzzer target tests/fuzz/dimapi_fuzz.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mapicommd/mapicommd.h"

static const char *const type_names[] = {
    "HELLO",       "CREATE_FLOW", "GET_FUNCTION", "APPLY",         "CONNECT",
    "READ_RESULT", "GET_PKTS",    "CLOSE_FLOW",   "FLOW_INFO",     "FUNCTION_INFO",
    "STATS",       "DEVICE_INFO", "LIBRARY_INFO", "LIBFUNCT_INFO",
};

const char *dimapi_type_name(unsigned type)
{
    if (type < DIMAPI_HELLO || type >= DIMAPI_TYPE_MAX)
        return "?";
    return type_names[type - DIMAPI_HELLO];
}

void dimapi_req_free(struct dimapi_req *req)
{
    if (!req->args)
        return;
    for (uint32_t i = 0; i < req->nargs; i++)
        free(req->args[i].s);
    free(req->args);
    req->args = NULL;
    req->nargs = 0;
}

/* A str field of at most max-1 bytes without NUL, malloc'd; NULL (reader failed) otherwise. */
static char *get_str_alloc(struct wire_reader *r, size_t max)
{
    uint32_t n;
    const uint8_t *p = wire_get_bytes(r, &n);
    if (!wire_reader_ok(r) || n >= max || memchr(p, 0, n)) {
        r->failed = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->failed = 1;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static int decode_args(struct wire_reader *r, struct dimapi_req *req, char *why, size_t whylen)
{
    uint32_t n = wire_get_u32(r);
    if (!wire_reader_ok(r))
        return -1;
    /* Each argument takes at least 5 bytes: bound n before allocating. */
    if (n > DIMAPI_MAX_ARGS || (size_t)n * 5 > r->left) {
        snprintf(why, whylen, "APPLY with %u arguments", n);
        return -1;
    }
    if (n == 0)
        return 0;
    req->args = calloc(n, sizeof(*req->args));
    if (!req->args) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    req->nargs = n;
    for (uint32_t i = 0; i < n; i++) {
        struct dimapi_arg *a = &req->args[i];
        a->type = (char)wire_get_u8(r);
        switch (a->type) {
        case 's':
        case 'S':
        case 'R':
        case 'w':
            a->s = get_str_alloc(r, DIMAPI_MAX_ARGSTR);
            break;
        case 'i':
        case 'r':
        case 'f':
        case 'c':
            a->i = wire_get_i32(r);
            break;
        case 'l':
            a->l = wire_get_u64(r);
            break;
        default:
            snprintf(why, whylen, "APPLY argument %u has unknown type 0x%02x", i + 1,
                     (unsigned)(uint8_t)a->type);
            return -1;
        }
        if (!wire_reader_ok(r)) {
            snprintf(why, whylen, "APPLY argument %u ('%c') is truncated or too long", i + 1,
                     a->type);
            return -1;
        }
    }
    return 0;
}

int dimapi_decode(const struct wire_hdr *hdr, const uint8_t *payload, size_t len,
                  struct dimapi_req *req, char *why, size_t whylen)
{
    memset(req, 0, sizeof(*req));
    req->type = hdr->type;
    req->reqid = hdr->reqid;
    if (why && whylen)
        why[0] = 0;
    if (hdr->type < DIMAPI_HELLO || hdr->type >= DIMAPI_TYPE_MAX) {
        snprintf(why, whylen, "unknown request type %u", hdr->type);
        return DIMAPI_DECODE_UNKNOWN;
    }
    if (hdr->flags != 0) {
        snprintf(why, whylen, "%s request with flags 0x%02x", dimapi_type_name(hdr->type),
                 hdr->flags);
        return DIMAPI_DECODE_MALFORMED;
    }
    if (len != hdr->length) {
        snprintf(why, whylen, "payload length mismatch");
        return DIMAPI_DECODE_MALFORMED;
    }
    struct wire_reader r;
    wire_reader_init(&r, payload, len);
    switch (hdr->type) {
    case DIMAPI_HELLO: {
        req->min_version = wire_get_u16(&r);
        req->max_version = wire_get_u16(&r);
        uint32_t n = 0;
        /* 16 raw bytes (not a str field) */
        for (n = 0; n < DIMAPI_TOKEN_LEN; n++)
            req->token[n] = wire_get_u8(&r);
        break;
    }
    case DIMAPI_CREATE_FLOW:
    case DIMAPI_GET_FUNCTION:
    case DIMAPI_STATS:
        wire_get_str(&r, req->str, sizeof(req->str));
        break;
    case DIMAPI_APPLY:
        req->rfd = wire_get_i32(&r);
        wire_get_str(&r, req->str, sizeof(req->str));
        if (wire_reader_ok(&r) && decode_args(&r, req, why, whylen) < 0) {
            if (!why || !why[0])
                snprintf(why, whylen, "malformed APPLY arguments");
            return DIMAPI_DECODE_MALFORMED;
        }
        break;
    case DIMAPI_CONNECT:
    case DIMAPI_CLOSE_FLOW:
    case DIMAPI_FLOW_INFO:
        req->rfd = wire_get_i32(&r);
        break;
    case DIMAPI_READ_RESULT:
        req->rfd = wire_get_i32(&r);
        req->fid = wire_get_i32(&r);
        break;
    case DIMAPI_GET_PKTS:
        req->rfd = wire_get_i32(&r);
        req->fid = wire_get_i32(&r);
        req->max_pkts = wire_get_u32(&r);
        req->max_bytes = wire_get_u32(&r);
        req->wait_ms = wire_get_u32(&r);
        break;
    case DIMAPI_FUNCTION_INFO:
        req->rfd = wire_get_i32(&r);
        req->fid = wire_get_i32(&r);
        req->next = wire_get_u8(&r);
        break;
    case DIMAPI_DEVICE_INFO:
    case DIMAPI_LIBRARY_INFO:
        req->id = wire_get_i32(&r);
        req->next = wire_get_u8(&r);
        break;
    case DIMAPI_LIBFUNCT_INFO:
        req->lib = wire_get_i32(&r);
        req->fnum = wire_get_i32(&r);
        req->next = wire_get_u8(&r);
        break;
    default:
        break;
    }
    if (!wire_reader_ok(&r)) {
        snprintf(why, whylen, "%s request truncated or with a bad field",
                 dimapi_type_name(hdr->type));
        return DIMAPI_DECODE_MALFORMED;
    }
    if (r.left != 0) {
        snprintf(why, whylen, "%s request with %zu trailing bytes", dimapi_type_name(hdr->type),
                 r.left);
        return DIMAPI_DECODE_MALFORMED;
    }
    if (hdr->type == DIMAPI_FUNCTION_INFO || hdr->type == DIMAPI_DEVICE_INFO ||
        hdr->type == DIMAPI_LIBRARY_INFO || hdr->type == DIMAPI_LIBFUNCT_INFO) {
        if (req->next > 1) {
            snprintf(why, whylen, "%s request with next=%u", dimapi_type_name(hdr->type),
                     req->next);
            return DIMAPI_DECODE_MALFORMED;
        }
    }
    return 0;
}
