/*
 * daemon/mapid/request.c - mapid's request decoder (interface and limits in request.h): one
 * message of the wire protocol (common/wire.h) into a struct mapid_request. Pure: no I/O, no
 * daemon state, no descriptors; every field is read through the bounds-checked wire_reader
 * and the payload must be consumed exactly. APPLY_FUNCTION's arguments are read in one pass:
 * their strings are remembered as (pointer into the payload, length) and copied into one
 * exactly sized block once the whole message is known to be well formed. Built into mapid
 * and into the libFuzzer target tests/fuzz/mapid_msg_fuzz.c.
 */
#include "daemon/mapid/request.h"

#include <stdlib.h>
#include <string.h>

void mapid_request_free(struct mapid_request *req)
{
    free(req->args);
    free(req->strings);
    req->args = NULL;
    req->strings = NULL;
    req->nargs = 0;
}

/* APPLY_FUNCTION's nargs and arguments into req (allocated only when all is well formed).
 * Returns MAPID_DECODE_OK, _MALFORMED or _NOMEM. */
static int decode_args(struct wire_reader *r, struct mapid_request *req)
{
    uint32_t n = wire_get_u32(r);
    if (!wire_reader_ok(r))
        return MAPID_DECODE_MALFORMED;
    /* Each argument takes at least 5 bytes (letter + 4). */
    if (n > MAPID_REQ_MAX_ARGS || (size_t)n * 5 > r->left)
        return MAPID_DECODE_MALFORMED;
    struct mapi_arg a[MAPID_REQ_MAX_ARGS];
    const uint8_t *sp[MAPID_REQ_MAX_ARGS];
    uint32_t slen[MAPID_REQ_MAX_ARGS];
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        sp[i] = NULL;
        slen[i] = 0;
        uint8_t t = wire_get_u8(r);
        a[i].type = (char)t;
        switch (t) {
        case 's':
        case 'S':
        case 'R':
            sp[i] = wire_get_bytes(r, &slen[i]);
            if (wire_reader_ok(r) && memchr(sp[i], 0, slen[i]))
                return MAPID_DECODE_MALFORMED;
            total += (size_t)slen[i] + 1;
            break;
        case 'i':
        case 'r':
        case 'f':
        case 'c':
            a[i].v.i = wire_get_i32(r);
            break;
        case 'l':
            a[i].v.l = wire_get_u64(r);
            break;
        case 'w': {
            uint32_t idx = wire_get_u32(r);
            if (idx >= WIRE_MAX_FDS)
                return MAPID_DECODE_MALFORMED;
            a[i].v.fd = (int)idx;
            break;
        }
        default:
            return MAPID_DECODE_MALFORMED;
        }
        if (!wire_reader_ok(r))
            return MAPID_DECODE_MALFORMED;
    }
    if (r->left != 0)
        return MAPID_DECODE_MALFORMED; /* trailing bytes */
    if (n == 0)
        return MAPID_DECODE_OK;
    struct mapi_arg *args = calloc(n, sizeof(*args));
    char *strings = malloc(total ? total : 1);
    if (!args || !strings) {
        free(args);
        free(strings);
        return MAPID_DECODE_NOMEM;
    }
    char *p = strings;
    for (uint32_t i = 0; i < n; i++) {
        args[i] = a[i];
        if (sp[i]) {
            memcpy(p, sp[i], slen[i]);
            p[slen[i]] = 0;
            args[i].v.s = p;
            p += slen[i] + 1;
        }
    }
    req->nargs = n;
    req->args = args;
    req->strings = strings;
    return MAPID_DECODE_OK;
}

int mapid_decode_request(const struct wire_hdr *hdr, const uint8_t *payload,
                         struct mapid_request *out)
{
    memset(out, 0, sizeof(*out));
    out->type = hdr->type;
    out->reqid = hdr->reqid;
    if (hdr->type < WIRE_HELLO || hdr->type > WIRE_STATS || (hdr->flags & WIRE_F_ERROR))
        return MAPID_DECODE_UNKNOWN;
    if (hdr->length > WIRE_MAX_PAYLOAD || (hdr->length && !payload))
        return MAPID_DECODE_MALFORMED;
    struct wire_reader r;
    wire_reader_init(&r, payload ? payload : (const uint8_t *)"", hdr->length);
    switch ((enum wire_type)hdr->type) {
    case WIRE_HELLO:
        out->min_version = wire_get_u16(&r);
        out->max_version = wire_get_u16(&r);
        break;
    case WIRE_CREATE_FLOW:
    case WIRE_START_OFFLINE_DEVICE:
    case WIRE_DELETE_OFFLINE_DEVICE:
    case WIRE_STATS:
        wire_get_str(&r, out->device, sizeof(out->device));
        break;
    case WIRE_CREATE_OFFLINE_DEVICE:
    case WIRE_CREATE_OFFLINE_FLOW:
        out->format = wire_get_u32(&r);
        wire_get_str(&r, out->path, sizeof(out->path));
        break;
    case WIRE_GET_FUNCTION:
        wire_get_str(&r, out->name, sizeof(out->name));
        break;
    case WIRE_APPLY_FUNCTION: {
        out->flow = wire_get_i32(&r);
        wire_get_str(&r, out->name, sizeof(out->name));
        if (!wire_reader_ok(&r))
            break;
        int rc = decode_args(&r, out);
        if (rc != MAPID_DECODE_OK) {
            mapid_request_free(out);
            return rc;
        }
        return MAPID_DECODE_OK;
    }
    case WIRE_CONNECT:
    case WIRE_CLOSE_FLOW:
        out->flow = wire_get_i32(&r);
        break;
    case WIRE_DEVICE_INFO:
    case WIRE_LIBRARY_INFO:
        out->id = wire_get_i32(&r);
        out->next = wire_get_u8(&r);
        break;
    case WIRE_LIBFUNCT_INFO:
        out->lib = wire_get_i32(&r);
        out->fnum = wire_get_i32(&r);
        out->next = wire_get_u8(&r);
        break;
    case WIRE_FLOW_INFO:
        out->flow = wire_get_i32(&r);
        out->next = wire_get_u8(&r);
        break;
    case WIRE_FUNCTION_INFO:
        out->flow = wire_get_i32(&r);
        out->fid = wire_get_i32(&r);
        out->next = wire_get_u8(&r);
        break;
    default:
        return MAPID_DECODE_UNKNOWN;
    }
    if (!wire_reader_ok(&r) || r.left != 0)
        return MAPID_DECODE_MALFORMED;
    return MAPID_DECODE_OK;
}
