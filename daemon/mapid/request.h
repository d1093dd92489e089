/*
 * daemon/mapid/request.h - mapid's request decoder: one wire message (common/wire.h) into a
 * struct mapid_request, as a pure function (no I/O, no daemon state, no descriptors). The
 * handlers (handlers.c) act on the decoded request only; the libFuzzer target
 * tests/fuzz/mapid_msg_fuzz.c checks the decoder on its own.
 *
 * Decoding is complete and strict: every field of the type's payload must be present, the
 * payload must be consumed exactly (trailing bytes are malformed), strings must fit their
 * limit below and contain no NUL, APPLY_FUNCTION has at most MAPID_REQ_MAX_ARGS arguments,
 * each with a known letter ('s','S','R' str; 'i','r','f','c' i32; 'l' u64; 'w' u32 index
 * < WIRE_MAX_FDS). A message that fails any of this closes its connection.
 */
#ifndef MAPID_REQUEST_H
#define MAPID_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"
#include "mapi.h"
#include "mapi/flib.h"

/* Buffer sizes of the string fields, NUL included (the longest string is one byte less). */
#define MAPID_REQ_DEVICE_MAX 512           /* device names */
#define MAPID_REQ_PATH_MAX 400             /* trace file paths (for messages and names) */
#define MAPID_REQ_NAME_MAX MAPI_STR_LENGTH /* function names */
/* Arguments of APPLY_FUNCTION (the longest argdescr of the shipped libraries has 9). */
#define MAPID_REQ_MAX_ARGS 32

/* Results of mapid_decode_request. */
#define MAPID_DECODE_OK 0
#define MAPID_DECODE_MALFORMED (-1) /* bad or missing field, trailing bytes, limit exceeded */
#define MAPID_DECODE_UNKNOWN (-2)   /* not a request type (or WIRE_F_ERROR set) */
#define MAPID_DECODE_NOMEM (-3)     /* a well-formed APPLY_FUNCTION, but no memory for it */

/*
 * A decoded request. Which fields are set depends on type (the others are zero):
 *   HELLO                 min_version, max_version
 *   CREATE_FLOW, START_OFFLINE_DEVICE, DELETE_OFFLINE_DEVICE, STATS      device
 *   CREATE_OFFLINE_DEVICE, CREATE_OFFLINE_FLOW                           format, path
 *   GET_FUNCTION          name
 *   APPLY_FUNCTION        flow, name, nargs, args, strings
 *   CONNECT, CLOSE_FLOW   flow
 *   DEVICE_INFO, LIBRARY_INFO                                            id, next
 *   LIBFUNCT_INFO         lib, fnum, next
 *   FLOW_INFO             flow, next
 *   FUNCTION_INFO         flow, fid, next
 * Strings are copies, NUL-terminated. args (nargs entries, NULL when nargs is 0) and strings
 * (one block holding every 's','S','R' argument, each NUL-terminated; args[i].v.s points into
 * it) are malloc'd and owned by the request: mapid_request_free() frees them, or a caller
 * that keeps them sets the pointers to NULL. For 'w', args[i].v.fd holds the index of the
 * descriptor among those sent with the message (< WIRE_MAX_FDS), not a descriptor.
 */
struct mapid_request {
    uint16_t type;
    uint32_t reqid;
    uint16_t min_version, max_version;
    uint32_t format;
    int32_t flow, id, lib, fnum, fid;
    uint8_t next; /* as sent: nonzero asks for the object after the one given */
    char device[MAPID_REQ_DEVICE_MAX];
    char path[MAPID_REQ_PATH_MAX];
    char name[MAPID_REQ_NAME_MAX];
    uint32_t nargs;
    struct mapi_arg *args;
    char *strings;
};

/*
 * Decodes the message with header hdr (already checked by wire_parse_header) and its
 * hdr->length payload bytes (payload may be NULL when the length is 0) into *out. Reads
 * nothing outside the payload and has no side effect but allocating out's argument memory.
 * Returns MAPID_DECODE_OK, or MAPID_DECODE_MALFORMED / _UNKNOWN / _NOMEM with *out holding
 * nothing to free (mapid_request_free is still safe). On success free with
 * mapid_request_free().
 */
int mapid_decode_request(const struct wire_hdr *hdr, const uint8_t *payload,
                         struct mapid_request *out);

/* Frees what a decoded request owns (args, strings); safe on a zeroed or freed request. */
void mapid_request_free(struct mapid_request *req);

#endif
