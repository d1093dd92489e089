/*
 * flib/stdflib/timestr.c - parsing of stdflib's string arguments: time strings (STARTSTOP,
 * BUCKET, STATS, DIST, RES2FILE: "10s", "250ms", "100us", "1.5m", "2h" or a bare number of
 * seconds, converted to 32.32 fixed-point ticks, the unit of packet timestamps), "fid@flow"
 * lists and plain number lists ("1,1,2", "3,4").
 *
 * The original parsed "m" as about 6 s (a multiplier bug) and a bare number as raw ticks; we
 * read "m" as minutes and a bare number as seconds, as the manual's examples mean.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stdflib.h"

int stdflib_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    double v;
    long double mult, ticks;

    if (s == NULL)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "ms") == 0)
        mult = 1e-3L;
    else if (strcmp(end, "us") == 0)
        mult = 1e-6L;
    else if (strcmp(end, "ns") == 0)
        mult = 1e-9L;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else
        return -1;
    ticks = (long double)v * mult * STDFLIB_TICKS_PER_SECOND + 0.5L;
    if (ticks >= 18446744073709551615.0L)
        return -1;
    *out = (uint64_t)ticks;
    return 0;
}

int stdflib_parse_function_list(const char *s, struct stdflib_fnref *out, int max)
{
    int n = 0;

    if (s == NULL)
        return -1;
    while (*s) {
        char *end;
        long fid, fd;

        while (*s == ' ' || *s == '\t')
            s++;
        fid = strtol(s, &end, 10);
        if (end == s || *end != '@' || fid <= 0 || fid > 0x7fffffff)
            return -1;
        s = end + 1;
        fd = strtol(s, &end, 10);
        if (end == s || fd <= 0 || fd > 0x7fffffff)
            return -1;
        s = end;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == ',')
            s++;
        else if (*s != '\0')
            return -1;
        if (n >= max)
            return -1;
        out[n].fid = (int)fid;
        out[n].flow_id = (int)fd;
        n++;
    }
    return n;
}

int stdflib_parse_int_list(const char *s, long lo, long hi, int *out, int max)
{
    int n = 0;

    if (s == NULL)
        return -1;
    for (;;) {
        char *end;
        long v;

        while (*s == ' ' || *s == '\t')
            s++;
        v = strtol(s, &end, 10);
        if (end == s || v < lo || v > hi || n >= max)
            return -1;
        out[n++] = (int)v;
        s = end;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            return n;
        if (*s != ',')
            return -1;
        s++;
    }
}
