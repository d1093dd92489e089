/*
 * mapi/sample.h - modes of the SAMPLE function of stdflib (installed header).
 *
 *   mapi_apply_function(fd, "SAMPLE", 10, PERIODIC);      every 10th packet
 *   mapi_apply_function(fd, "SAMPLE", 25, PROBABILISTIC); each packet with probability 25 %
 *
 * SAMPLE has no result. A period <= 0, a percentage outside 0..100 (error 7001) or another
 * mode (error 7002) is rejected when the function is applied.
 */
#ifndef MAPI_SAMPLE_H
#define MAPI_SAMPLE_H

#define PERIODIC 2      /* value: pass the value-th, 2*value-th, ... packet */
#define PROBABILISTIC 3 /* value: percentage 0..100 of packets passed at random */

/* The original man page calls PERIODIC "DETERMINISTIC". */
#ifndef DETERMINISTIC
#define DETERMINISTIC PERIODIC
#endif

#endif /* MAPI_SAMPLE_H */
