/*
 * common/log.c - the daemons' log sinks (see log.h). One mutex keeps lines whole when several
 * capture threads log at once.
 */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static int log_stderr = 1;
static int log_syslog;
static int log_debug_stderr; /* syslog_level 1: debug to stdout/stderr as well */
static int log_debug_syslog;
static const char *log_ident = "mapid";

int mapi_log_open(const char *ident, const char *logfile, int to_stderr, int to_syslog,
                  int syslog_level)
{
    int rc = 0;
    log_ident = ident;
    log_stderr = to_stderr;
    log_syslog = to_syslog;
    log_debug_stderr = syslog_level == 1;
    log_debug_syslog = syslog_level >= 1;
    if (logfile && *logfile) {
        log_file = fopen(logfile, "a");
        if (!log_file)
            rc = -1;
        else
            setvbuf(log_file, NULL, _IOLBF, 0);
    }
    if (to_syslog)
        openlog(ident, LOG_PID, LOG_DAEMON);
    return rc;
}

void mapi_log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    if (log_syslog)
        closelog();
    pthread_mutex_unlock(&log_lock);
}

void mapi_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if (level < 0)
        level = 0;
    if (level > LOG_LVL_DEBUG)
        level = LOG_LVL_DEBUG;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    int debug = level == LOG_LVL_DEBUG;
    pthread_mutex_lock(&log_lock);
    if (log_stderr && (!debug || log_debug_stderr))
        fprintf(stderr, "%s %s[%s]: %s\n", stamp, log_ident, names[level], msg);
    if (log_file)
        fprintf(log_file, "%s %s[%s]: %s\n", stamp, log_ident, names[level], msg);
    if (log_syslog && (!debug || log_debug_syslog))
        syslog(prio[level], "%s", msg);
    pthread_mutex_unlock(&log_lock);
}
