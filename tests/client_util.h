/*
 * tests/client_util.h - small helpers shared by the integration tests' client programs
 * (tests/mapi_*.c). Header only: each client is one .c file.
 */
#ifndef MAPI_TESTS_CLIENT_UTIL_H
#define MAPI_TESTS_CLIENT_UTIL_H

#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE, set by the build) */
#include <stdio.h>
#include <stdlib.h>

#include <mapi.h>

/* The number of the last MAPI error of this thread (0 if none); clears it. */
static inline int last_error(void)
{
    int err = 0;
    mapi_read_error(&err, NULL);
    return err;
}

/* Prints "PROGRAM: WHAT: MAPI error N: TEXT" on stderr and exits with status 1. */
static inline _Noreturn void fatal(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: %s: MAPI error %d: %s\n", program_invocation_short_name, what, err, msg);
    exit(1);
}

#endif /* MAPI_TESTS_CLIENT_UTIL_H */
