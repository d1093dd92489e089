/*
 * mapi/bucket.h - the result record of the BUCKET function of stdflib (installed header).
 *
 *   int cnt = mapi_apply_function(fd, "PKT_COUNTER");
 *   int b = mapi_apply_function(fd, "BUCKET", fd, cnt, "1s", 1);   (interval, reset 0/1)
 *   ...
 *   mapi_results_t *r;
 *   while ((r = mapi_read_results(fd, b)) != NULL) {
 *       struct bucket_data *bd = r->res;    one bucket per call, in order
 *       ...
 *   }                                       NULL (error 6158) once the trace is done
 *
 * Every interval of packet time gives one bucket: timestamp is the start of the interval
 * (32.32 fixed point, Unix epoch) and data the referenced function's value at its end.
 */
#ifndef MAPI_BUCKET_H
#define MAPI_BUCKET_H

struct bucket_data {
    unsigned long long timestamp; /* start of the interval (interval "0": the packet's time) */
    unsigned long long data;      /* value of the referenced function */
};

#endif /* MAPI_BUCKET_H */
