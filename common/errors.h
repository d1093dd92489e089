/*
 * common/errors.h - text of MAPI error numbers (table in include/mapi/errors.h).
 */
#ifndef MAPI_COMMON_ERRORS_H
#define MAPI_COMMON_ERRORS_H

#include "mapi/errors.h"

/* Static text of an error number; "unknown error" for numbers not in the table. */
const char *mapi_strerror(int code);

#endif
