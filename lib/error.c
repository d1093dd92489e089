/*
 * lib/error.c - the last error of libmapi, kept per thread.
 *
 * Every failing call stores an error number (table in mapi/errors.h) and, when there is one,
 * a detail message (for instance mapid's explanation, or the socket path that could not be
 * reached). Successful calls leave it alone. mapi_read_error copies and clears it.
 */
#include <stdio.h>
#include <string.h>

#include "lib/internal.h"

static _Thread_local int err_code;
static _Thread_local char err_detail[MAPI_ERRORSTR_LENGTH];

void lm_set_error(int code, const char *fmt, ...)
{
    err_code = code;
    err_detail[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_detail, sizeof(err_detail), fmt, ap);
        va_end(ap);
    }
}

int lm_last_error(void)
{
    return err_code;
}

/* Appends src to dst (size bytes, NUL-terminated), truncating. */
static void append(char *dst, size_t size, const char *src)
{
    size_t len = strlen(dst), n = strlen(src);
    if (len + 1 >= size)
        return;
    if (n > size - 1 - len)
        n = size - 1 - len;
    memcpy(dst + len, src, n);
    dst[len + n] = 0;
}

void lm_remap_error(int code)
{
    if (err_code == code)
        return;
    char suffix[40];
    snprintf(suffix, sizeof(suffix), " (mapid error %d)", err_code);
    if (!err_detail[0])
        append(err_detail, sizeof(err_detail), mapi_strerror(err_code));
    /* Keep room for the suffix. */
    size_t room = sizeof(err_detail) - strlen(suffix) - 1;
    if (strlen(err_detail) > room)
        err_detail[room] = 0;
    append(err_detail, sizeof(err_detail), suffix);
    err_code = code;
}

void lm_clear_error(void)
{
    err_code = 0;
    err_detail[0] = 0;
}

/*
 * mapi_read_error: *err_no gets the error number of this thread's last failing call (0 if
 * none), errstr (MAPI_ERRORSTR_LENGTH bytes) its text: the table's text, then ": " and the
 * detail when there is one, truncated. Either pointer may be NULL. Clears the error.
 * Returns 0, or -1 if both pointers are NULL (the error is then kept).
 */
MAPI_API int mapi_read_error(int *err_no, char *errstr)
{
    if (!err_no && !errstr)
        return -1;
    if (err_no)
        *err_no = err_code;
    if (errstr) {
        errstr[0] = 0;
        append(errstr, MAPI_ERRORSTR_LENGTH, mapi_strerror(err_code));
        if (err_code != 0 && err_detail[0]) {
            append(errstr, MAPI_ERRORSTR_LENGTH, ": ");
            append(errstr, MAPI_ERRORSTR_LENGTH, err_detail);
        }
    }
    lm_clear_error();
    return 0;
}
