/*
 * common/dimapi.h - the DiMAPI protocol between libmapi's remote back end (lib/remote*.c) and
 * mapicommd (daemon/mapicommd/), the agent on every sensor, over TCP with TLS (common/net.h).
 *
 * Framing and field encoding are those of the local protocol (common/wire.h): a 16-byte header
 * (magic, version, flags, type, length, request id) and typed fields in network byte order.
 * There is no descriptor passing: a 'w' argument travels as a file name that mapicommd opens in
 * its own working directory (same O_EXCL / MFF_OVERWRITE rules as libmapi).
 *
 * Connections. libmapi opens one connection per (remote flow, sensor), plus one per sensor for
 * the management calls, so a call that waits (a queued result, packets) never holds up
 * another flow. mapicommd serves each connection in its own thread, as an ordinary local
 * client of mapid through libmapi, and closes the flows of a connection when it goes away.
 * Requests on one connection are answered in order; the client sends the next request of a
 * connection after the reply to the previous one, except that it may send DIMAPI_CLOSE_FLOW
 * at any time (it is answered once the call in progress has returned).
 *
 * An application identifies itself in DIMAPI_HELLO with a random 16-byte token, the same on
 * all its connections; a function reference ('r', 'S', 'R') may name only flows created with
 * the same token (another application's flows on that sensor are refused with the reference's
 * argument error, as mapid refuses another user's).
 *
 * Errors: a reply with WIRE_F_ERROR carries i32 MAPI error number and str message, as in the
 * local protocol; mapicommd passes on the error libmapi gave it. A malformed message closes the
 * connection (and its flows).
 *
 * Requests (-> reply payload). "rfd" is the flow descriptor mapicommd's libmapi returned for
 * the flow (a local descriptor of the sensor); fids are that sensor's.
 *   DIMAPI_HELLO         u16 min_version, u16 max_version, token (DIMAPI_TOKEN_LEN raw bytes,
 *                        no length prefix)
 *                        -> u16 version, str server ("mapicommd 0.x on HOST")
 *   DIMAPI_CREATE_FLOW   str device                      -> i32 rfd
 *   DIMAPI_GET_FUNCTION  str name                        -> str name, str argdescr, str libname,
 *                                                           u32 flags (MAPI_FN_*)
 *   DIMAPI_APPLY         i32 rfd, str name, u32 nargs, nargs x arg
 *                        -> i32 fid, u32 result_size, u32 flags
 *       arg = u8 letter, then 's','S','R','w' str | 'i','r','f','c' i32 | 'l' u64
 *       ('r' and the fds in 'S'/'R' are rfds of this sensor, fids are this sensor's)
 *   DIMAPI_CONNECT       i32 rfd                         -> (empty)
 *   DIMAPI_READ_RESULT   i32 rfd, i32 fid                -> u64 ts (microseconds, read time on
 *                        the sensor), bytes result. For MAPI_FN_QUEUE functions the next record
 *                        (waits for it; error 6158 at the end of a trace).
 *   DIMAPI_GET_PKTS      i32 rfd, i32 fid, u32 max_pkts, u32 max_bytes, u32 wait_ms
 *                        -> u8 end (1: end of the trace, no packet will follow), u32 n,
 *                           n x (u64 ts, u16 ifindex, u32 caplen, u32 wlen, bytes frame)
 *                        Returns as soon as at least one packet is there (then as many as are
 *                        ready, up to the limits), or after wait_ms with n = 0.
 *   DIMAPI_CLOSE_FLOW    i32 rfd                         -> (empty)
 *   DIMAPI_FLOW_INFO     i32 rfd                         -> as the local FLOW_INFO reply
 *   DIMAPI_FUNCTION_INFO i32 rfd, i32 fid, u8 next       -> as the local FUNCTION_INFO reply
 *   DIMAPI_STATS         str device                      -> u32 recv, u32 drop, u32 ifdrop,
 *                                                           str hostname, str device
 *   DIMAPI_DEVICE_INFO, DIMAPI_LIBRARY_INFO, DIMAPI_LIBFUNCT_INFO: as the local requests and
 *                        replies of the same names (the sensor's devices and libraries).
 */
#ifndef MAPI_COMMON_DIMAPI_H
#define MAPI_COMMON_DIMAPI_H

#define DIMAPI_VERSION 1u
#define DIMAPI_TOKEN_LEN 16
#define DIMAPI_DEFAULT_PORT 2233
/* Largest batch of packets mapicommd puts in one DIMAPI_GET_PKTS reply. */
#define DIMAPI_MAX_BATCH_BYTES (960u * 1024u) /* below WIRE_MAX_PAYLOAD with headers */

enum dimapi_type {
    DIMAPI_HELLO = 200,
    DIMAPI_CREATE_FLOW,
    DIMAPI_GET_FUNCTION,
    DIMAPI_APPLY,
    DIMAPI_CONNECT,
    DIMAPI_READ_RESULT,
    DIMAPI_GET_PKTS,
    DIMAPI_CLOSE_FLOW,
    DIMAPI_FLOW_INFO,
    DIMAPI_FUNCTION_INFO,
    DIMAPI_STATS,
    DIMAPI_DEVICE_INFO,
    DIMAPI_LIBRARY_INFO,
    DIMAPI_LIBFUNCT_INFO,
    DIMAPI_TYPE_MAX
};

#endif /* MAPI_COMMON_DIMAPI_H */
