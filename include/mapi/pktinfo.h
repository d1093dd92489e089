/*
 * mapi/pktinfo.h - argument values of the PKTINFO function of stdflib: which property of the
 * last packet it publishes. Usage: mapi_apply_function(fd, "PKTINFO", PKT_SIZE); the result is
 * an unsigned long long (the 32.32 timestamp for PKT_TS, the length on the wire for PKT_SIZE).
 */
#ifndef MAPI_PKTINFO_H
#define MAPI_PKTINFO_H

#define PKT_TS 0   /* timestamp of the last packet, 32.32 fixed point (Unix epoch) */
#define PKT_SIZE 1 /* length on the wire of the last packet (wlen) */

#endif /* MAPI_PKTINFO_H */
