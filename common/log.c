/*
 * common/log.c - the daemons' log sinks (see log.h). One mutex keeps lines whole when several
 * capture threads log at once. Every message is escaped (mapi_log_escape) before it is
 * written: messages carry client-controlled strings (trace paths, device and function names),
 * and a newline in one must not forge a second log line.
 */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
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

/* Length of the valid UTF-8 sequence at p (2..4 bytes, n available; no overlong forms, no
 * surrogates, nothing above U+10FFFF, no C1 controls U+0080..U+009F), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return len;
}

size_t mapi_log_escape(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    if (outlen == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        char esc[5];
        size_t elen = 0, take = 1;
        unsigned char ch = p[i];
        size_t u = ch >= 0x80 ? utf8_seq(p + i, n - i) : 0;
        if (u) {
            take = u; /* copied as is below */
        } else if (ch == '\n' || ch == '\r' || ch == '\t' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch == '\t' ? 't' : '\\';
            elen = 2;
        } else if (ch < 0x20 || ch >= 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
            elen = 4;
        }
        const char *src = elen ? esc : (const char *)p + i;
        size_t len = elen ? elen : take;
        if (o + len >= outlen)
            break; /* truncated, never in the middle of an escape or a character */
        memcpy(out + o, src, len);
        o += len;
        i += take;
    }
    out[o] = 0;
    return o;
}

void mapi_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if (level < 0)
        level = 0;
    if (level > LOG_LVL_DEBUG)
        level = LOG_LVL_DEBUG;
    char raw[1024], msg[4 * sizeof(raw)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    mapi_log_escape(raw, msg, sizeof(msg));
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
