/*
 * mapi/binop.h - operations of the BINOP function of stdflib (installed header).
 *
 *   mapi_apply_function(fd, "BINOP", BINOP_ADD, fd1, fid1, fd2, fid2);
 *
 * On every packet that reaches it, BINOP reads the unsigned 64-bit values of two other functions
 * (flow fd1 / function fid1 and flow fd2 / function fid2; the first 8 bytes of each result) and
 * publishes their sum or difference as an unsigned long long. The sum wraps modulo 2^64.
 *
 * Difference from the original: BINOP_SUB saturates at 0 (v1 < v2 gives 0) instead of wrapping
 * around to a huge number.
 */
#ifndef MAPI_BINOP_H
#define MAPI_BINOP_H

#define BINOP_ADD 0 /* v1 + v2 */
#define BINOP_SUB 1 /* v1 - v2, 0 if v2 > v1 */

#endif /* MAPI_BINOP_H */
