/*
 * common/errors.c - maps MAPI error numbers to their text, from the table in mapi/errors.h.
 */
#include "common/errors.h"

#include <stddef.h>

struct error_entry {
    int code;
    const char *text;
};

#define ERROR_ENTRY_(num, name, text) {num, text},
static const struct error_entry error_table[] = {MAPI_ERROR_TABLE(ERROR_ENTRY_){0, NULL}};
#undef ERROR_ENTRY_

const char *mapi_strerror(int code)
{
    if (code == 0)
        return "no error";
    for (const struct error_entry *e = error_table; e->text; e++)
        if (e->code == code)
            return e->text;
    return "unknown error";
}
