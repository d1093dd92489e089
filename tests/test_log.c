/*
 * tests/test_log.c - unit test of the log escaping (common/log.c): a client-controlled string
 * with newlines, carriage returns, other C0 controls, DEL and invalid UTF-8 must come out of
 * mapi_log as one line with those bytes escaped, valid UTF-8 unchanged; the escaping itself
 * (mapi_log_escape) is checked case by case, including truncation, and on random strings (the
 * output holds no control character, is valid UTF-8 and unescapes to the input). Returns
 * non-zero on failure.
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

/* Undoes mapi_log_escape: \n \r \t \\ and \xHH. Returns the length, or -1 if malformed. */
static int unescape(const char *in, char *out)
{
    size_t o = 0;
    for (size_t i = 0; in[i]; i++) {
        if (in[i] != '\\') {
            out[o++] = in[i];
            continue;
        }
        char e = in[++i];
        if (e == 'n' || e == 'r' || e == 't' || e == '\\') {
            out[o++] = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : '\\';
        } else if (e == 'x' && in[i + 1] && in[i + 2]) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            return -1;
        }
    }
    out[o] = 0;
    return (int)o;
}

/* An independent check of the output: no C0, DEL or C1 control, and well-formed UTF-8. */
static int clean_utf8(const unsigned char *p)
{
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        int len = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0)
            return 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if (p[0] == 0xc2 && p[1] < 0xa0)
            return 0; /* C1 control */
        p += len;
    }
    return 1;
}

/* Random strings: the escaped form is clean and unescapes to the input. */
static void random_round_trips(void)
{
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        char in[64], out[4 * sizeof(in) + 1], back[sizeof(in)];
        int n = (int)(rand_r(&seed) % (sizeof(in) - 1));
        for (int i = 0; i < n; i++) {
            int r = rand_r(&seed) % 4;
            in[i] = (char)(r == 0   ? rand_r(&seed) % 0x20 + 1
                           : r == 1 ? 0x80 + rand_r(&seed) % 0x80
                                    : 0x20 + rand_r(&seed) % 0x60);
        }
        in[n] = 0;
        mapi_log_escape(in, out, sizeof(out));
        if (!clean_utf8((const unsigned char *)out) || unescape(out, back) < 0 ||
            strcmp(back, in) != 0) {
            printf("FAIL: random round trip %d: escaped to \"%s\"\n", round, out);
            failures++;
            return;
        }
    }
}

int main(void)
{
    random_round_trips();
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
