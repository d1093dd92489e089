/*
 * mapi/res2file.h - value formats of the RES2FILE function of stdflib (installed header).
 *
 *   int c1 = mapi_apply_function(fd, "PKT_COUNTER");
 *   int c2 = mapi_apply_function(fd, "BYTE_COUNTER");
 *   char fids[64];
 *   snprintf(fids, sizeof fids, "%d@%d,%d@%d", c1, fd, c2, fd);
 *   mapi_apply_function(fd, "RES2FILE", "1,1", fids, "packets bytes", "out.txt", "1s", 1);
 *
 * The first argument lists one format per referenced function, in the order of the list:
 */
#ifndef MAPI_RES2FILE_H
#define MAPI_RES2FILE_H

enum res2file_format {
    R2F_RAW = 0,    /* binary: the result size as a native unsigned long, then the result bytes */
    R2F_ULLSTR = 1, /* an unsigned long long as decimal text, "%llu " */
    R2F_ULLSEC = 2, /* a 32.32 unsigned long long as seconds, "%.12Lf " */
    R2F_STATS = 3   /* a stats_t (mapi/stats.h): "count sum sum2 min max " */
};

#endif /* MAPI_RES2FILE_H */
