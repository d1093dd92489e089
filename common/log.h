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
/* Thread-safe; messages end without a newline. */
void mapi_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
