/*
 * common/log.h - logging of the daemons: to stderr when in the foreground, to the logfile of
 * mapi.conf when set, and to syslog with -s (levels per syslog_level, see the tutorial 5.2).
 */
#ifndef MAPI_COMMON_LOG_H
#define MAPI_COMMON_LOG_H

enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* Configures the sinks. logfile may be NULL or "". Returns 0, or -1 if the file cannot be
 * opened (logging then goes to stderr/syslog only). */
int mapi_log_open(const char *ident, const char *logfile, int to_stderr, int to_syslog,
                  int syslog_level);
void mapi_log_close(void);
#include <stddef.h>

/* Thread-safe; messages end without a newline. The formatted message (at most 1023 bytes) is
 * escaped with mapi_log_escape, so it always stays one line. */
void mapi_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Copies the NUL-terminated string in to out (outlen bytes, NUL-terminated) with every byte
 * that could forge or garble a log line escaped: \n \r \t and \\ as two-character escapes,
 * other C0 controls, DEL and bytes that are not part of valid UTF-8 (or encode a C1 control)
 * as \xHH. Valid UTF-8 is kept. Stops early rather than split an escape or a character when
 * out is too small (4 * strlen(in) + 1 always suffices). Returns the length written.
 */
size_t mapi_log_escape(const char *in, char *out, size_t outlen);

#endif
