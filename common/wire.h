/*
 * common/wire.h - the MAPI wire protocol: one codec for the local Unix socket (libmapi <->
 * mapid) and, later, DiMAPI (libmapi <-> mapicommd).
 *
 * Every message is a 16-byte header followed by `length` payload bytes. All integers are in
 * network byte order. The header:
 *     u32 magic (WIRE_MAGIC)  u8 version (WIRE_VERSION)  u8 flags  u16 type
 *     u32 length (payload bytes, <= WIRE_MAX_PAYLOAD)  u32 request id (echoed in the reply)
 * Payload fields are u8/u16/u32/i32/u64 and str (u32 byte count, then the bytes, no NUL).
 * File descriptors travel beside a message with SCM_RIGHTS (Unix socket only).
 *
 * A reply has the request's type and id. A failed request gets a reply with WIRE_F_ERROR set
 * and the payload: i32 MAPI error number, str message. Any malformed message (bad magic,
 * version, length, a field that runs past the payload, bytes after the last field, a string
 * over its limit or with a NUL; mapid's rules are in daemon/mapid/request.h) closes that
 * connection only.
 *
 * Requests and their payloads (-> reply payload):
 *   HELLO            u16 min_version, u16 max_version          -> u16 version, str server
 *   CREATE_FLOW      str device                                -> i32 flow, i32 devid
 *   CREATE_OFFLINE_DEVICE  u32 format, str path  [+1 fd]       -> str device name
 *   START_OFFLINE_DEVICE   str device                          -> (empty)
 *   DELETE_OFFLINE_DEVICE  str device                          -> (empty)
 *   CREATE_OFFLINE_FLOW    u32 format, str path  [+1 fd]       -> i32 flow, i32 devid
 *   GET_FUNCTION     str name                                  -> str name, str argdescr,
 *                                                                 str libname, u32 flags
 *   APPLY_FUNCTION   i32 flow, str name, u32 nargs, nargs x arg [+fds for 'w']
 *                                                              -> i32 fid, u32 result_size,
 *                                                                 u32 flags (MAPI_FN_*)
 *       arg = u8 letter, then: 's','S','R' str | 'i','r','f','c' i32 | 'l' u64 |
 *             'w' u32 index (< WIRE_MAX_FDS) into the fds sent with this message
 *   CONNECT          i32 flow                                  -> u64 region bytes,
 *         u32 nrings, nrings x (i32 fid, u64 ring bytes)  [+fds: region (read-only), rings]
 *   CLOSE_FLOW       i32 flow                                  -> (empty)
 *   DEVICE_INFO      i32 id, u8 next                           -> i32 id, str device,
 *         str driver, str alias, str description, i32 link_speed, i32 mpls, i32 vlan
 *   LIBRARY_INFO     i32 id, u8 next                           -> i32 id, str name, u32 nfuncs
 *   LIBFUNCT_INFO    i32 lib, i32 fnum, u8 next                -> i32 fnum, str name,
 *         str descr, str argdescr, str devtype
 *   FLOW_INFO        i32 flow, u8 next                         -> u32 uid, i32 flow, i32 devid,
 *         str device, u32 nfuncs, u64 start, u64 end, u32 status, u64 cpu_ns (time the capture
 *         thread spent in the flow's functions, estimated by sampling)
 *   FUNCTION_INFO    i32 flow, i32 fid, u8 next                -> i32 fid, str name,
 *         str libname, str devtype, u64 pkts, u64 passed, i32 result_size
 *   STATS            str device                                -> u32 recv, u32 drop,
 *         u32 ifdrop, str device
 * Unsolicited, server to client (request id 0):
 *   SHUTDOWN         str reason       mapid is stopping; every flow of the client is closed.
 *   DEVICE_FINISHED  str device       an offline device reached the end of its trace.
 * "next" (u8 1) asks for the first object with an id greater than the one given.
 */
#ifndef MAPI_COMMON_WIRE_H
#define MAPI_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0x4d415049u /* "MAPI" */
#define WIRE_VERSION 1u
#define WIRE_HDR_SIZE 16u
#define WIRE_MAX_PAYLOAD (1u << 20)
#define WIRE_MAX_FDS 64
#define WIRE_F_ERROR 0x01u

enum wire_type {
    WIRE_HELLO = 1,
    WIRE_CREATE_FLOW,
    WIRE_CREATE_OFFLINE_DEVICE,
    WIRE_START_OFFLINE_DEVICE,
    WIRE_DELETE_OFFLINE_DEVICE,
    WIRE_CREATE_OFFLINE_FLOW,
    WIRE_GET_FUNCTION,
    WIRE_APPLY_FUNCTION,
    WIRE_CONNECT,
    WIRE_CLOSE_FLOW,
    WIRE_DEVICE_INFO,
    WIRE_LIBRARY_INFO,
    WIRE_LIBFUNCT_INFO,
    WIRE_FLOW_INFO,
    WIRE_FUNCTION_INFO,
    WIRE_STATS,
    WIRE_SHUTDOWN = 100,
    WIRE_DEVICE_FINISHED,
    WIRE_TYPE_MAX
};

struct wire_hdr {
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint32_t length;
    uint32_t reqid;
};

/* A message being built. Grows on demand; after an allocation failure every put is a no-op
 * and wire_finish() fails. Free the buffer with wire_writer_free(). */
struct wire_writer {
    uint8_t *buf;
    size_t len, cap;
    int failed;
};

void wire_writer_init(struct wire_writer *w, uint16_t type, uint32_t reqid, uint8_t flags);
void wire_writer_free(struct wire_writer *w);
void wire_put_u8(struct wire_writer *w, uint8_t v);
void wire_put_u16(struct wire_writer *w, uint16_t v);
void wire_put_u32(struct wire_writer *w, uint32_t v);
void wire_put_i32(struct wire_writer *w, int32_t v);
void wire_put_u64(struct wire_writer *w, uint64_t v);
/* A NULL string is sent as the empty string. */
void wire_put_str(struct wire_writer *w, const char *s);
void wire_put_bytes(struct wire_writer *w, const void *p, uint32_t n);
/* Writes the payload length into the header. Returns 0, or -1 if too large or out of memory. */
int wire_finish(struct wire_writer *w);

/* Reading a received payload. After any error (field past the end, string too long) every
 * get returns 0/"" and wire_reader_ok() is false. */
struct wire_reader {
    const uint8_t *p;
    size_t left;
    int failed;
};

void wire_reader_init(struct wire_reader *r, const void *payload, size_t len);
uint8_t wire_get_u8(struct wire_reader *r);
uint16_t wire_get_u16(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
int32_t wire_get_i32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
/* Copies a str field into dst (dstlen bytes with the NUL); a longer string or one with an
 * embedded NUL is an error. */
void wire_get_str(struct wire_reader *r, char *dst, size_t dstlen);
/* Returns a pointer into the payload (not NUL-terminated) and its length. */
const uint8_t *wire_get_bytes(struct wire_reader *r, uint32_t *len);
static inline int wire_reader_ok(const struct wire_reader *r)
{
    return !r->failed;
}

/* The name of a message type ("CREATE_FLOW"), or "?" for a type that is not one. For logs and
 * error messages of both sides. */
const char *wire_type_name(unsigned type);

/* Parses and validates a 16-byte header. Returns 0, or -1 if it is not a valid header. */
int wire_parse_header(const uint8_t *raw, struct wire_hdr *out);

/*
 * Blocking socket helpers (client side and daemon replies).
 * wire_send: sends the finished message with up to WIRE_MAX_FDS descriptors. 0 or -1 (errno).
 * wire_recv: receives one whole message. *payload becomes a malloc'd buffer (free it) of
 * hdr->length bytes; received descriptors are stored in fds (up to maxfds, extra ones are
 * closed) and counted in *nfds. Returns 0, -1 on a socket error or EOF (errno = ECONNRESET
 * at EOF), -2 on a malformed message. timeout_ms < 0 waits forever.
 */
int wire_send(int sock, const struct wire_writer *w, const int *fds, int nfds);
int wire_recv(int sock, struct wire_hdr *hdr, uint8_t **payload, int *fds, int maxfds, int *nfds,
              int timeout_ms);

#endif /* MAPI_COMMON_WIRE_H */
