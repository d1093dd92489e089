/*
 * tests/test_log.c - unit test of the log escaping (common/log.c): a client-controlled string
 * with newlines, carriage returns, other C0 controls, DEL and invalid UTF-8 must come out of
 * mapi_log as one line with those bytes escaped, valid UTF-8 unchanged; the escaping itself
 * (mapi_log_escape) is checked case by case, including truncation. Returns non-zero on failure.
 *
 * Usage: test_log   (writes a log file in $TMPDIR or /tmp and removes it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int failures;

static void check_escape(const char *in, const char *want)
{
    char out[256];
    size_t n = mapi_log_escape(in, out, sizeof(out));
    if (strcmp(out, want) != 0 || n != strlen(want)) {
        printf("FAIL: escape(\"%s\") = \"%s\" (%zu), want \"%s\"\n", in, out, n, want);
        failures++;
    }
}

int main(void)
{
    check_escape("plain text /tmp/a.pcap@3", "plain text /tmp/a.pcap@3");
    check_escape("a\nb", "a\\nb");
    check_escape("x\r\n2026-01-01 00:00:00 mapid[error]: forged",
                 "x\\r\\n2026-01-01 00:00:00 mapid[error]: forged");
    check_escape("tab\there", "tab\\there");
    check_escape("back\\slash", "back\\\\slash");
    check_escape("bell\a esc\x1b[31m del\x7f", "bell\\x07 esc\\x1b[31m del\\x7f");
    check_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    check_escape("bad \xff \xc3 \xc0\xaf \xed\xa0\x80",
                 "bad \\xff \\xc3 \\xc0\\xaf \\xed\\xa0\\x80");
    check_escape("c1 \xc2\x85 nel", "c1 \\xc2\\x85 nel");
    check_escape("cut \xe2\x82", "cut \\xe2\\x82");
    /* Truncation never splits an escape or a character. */
    char small[6];
    mapi_log_escape("ab\ncd", small, sizeof(small));
    if (strcmp(small, "ab\\nc") != 0) {
        printf("FAIL: truncated to 6 bytes: \"%s\", want \"ab\\\\nc\"\n", small);
        failures++;
    }
    mapi_log_escape("abcd\n", small, sizeof(small));
    if (strcmp(small, "abcd") != 0) {
        printf("FAIL: truncated escape: \"%s\", want \"abcd\"\n", small);
        failures++;
    }
    mapi_log_escape("a\xe2\x82\xac", small, 4);
    if (strcmp(small, "a") != 0) {
        printf("FAIL: truncated character: \"%s\", want \"a\"\n", small);
        failures++;
    }

    /* Through mapi_log into a file: exactly one line per call. */
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/test_log.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    if (mapi_log_open("test_log", path, 0, 0, 0) < 0) {
        perror(path);
        return 1;
    }
    mapi_log(LOG_LVL_WARN, "client pid %d created trace device %s", 42,
             "/tmp/x.pcap\n2026-01-01 00:00:00 mapid[error]: root password changed\r@1");
    mapi_log(LOG_LVL_INFO, "second %s", "line\x01\xff");
    mapi_log_close();
    FILE *f = fopen(path, "r");
    char line[8192];
    int lines = 0;
    while (f && fgets(line, sizeof(line), f)) {
        lines++;
        const char *want =
            lines == 1 ? "mapid[error]: root password changed\\r@1\n" : "second line\\x01\\xff\n";
        size_t ll = strlen(line), wl = strlen(want);
        if (ll < wl || strcmp(line + ll - wl, want) != 0) {
            printf("FAIL: log line %d is \"%s\"\n", lines, line);
            failures++;
        }
    }
    if (f)
        fclose(f);
    unlink(path);
    if (lines != 2) {
        printf("FAIL: the log file has %d lines, want 2\n", lines);
        failures++;
    }
    if (failures)
        return 1;
    printf("all checks passed\n");
    return 0;
}
