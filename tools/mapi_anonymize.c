/*
 * tools/mapi_anonymize.c - anonymises a trace file into a new trace file through mapid, with a
 * policy file of anonflib rules, for operators who share traces.
 *
 * Usage: mapi_anonymize [-f] [-n] [-k KEYFILE] POLICY IN OUT
 *   POLICY   a text file, one ANONYMIZE rule a line: "PROTOCOL,FIELD,FUNCTION[,PARAMS...]"
 *            exactly as an application passes it to mapi_apply_function(fd, "ANONYMIZE", ...)
 *            (case-insensitive, blanks around commas allowed; see docs/anonymization.md).
 *            Blank lines and lines whose first non-blank character is '#' are ignored (a '#'
 *            later in a line belongs to the rule: REPLACE and REGEXP texts may contain one).
 *            Rules are applied in the order of the file; put CHECKSUM_ADJUST last.
 *   IN       the trace to read: pcap or pcapng (a name ending in .erf: DAG ERF).
 *   OUT      the trace to write; an existing OUT is refused unless -f is given.
 *   -f       overwrite OUT if it exists (TO_FILE's MFF_OVERWRITE).
 *   -n       write pcapng (nanosecond timestamps) instead of classic pcap.
 *   -k FILE  the key of the rules that take one and name none (PREFIX_PRESERVING without a
 *            parameter; HASHED with DES, TRIPLEDES/3DES or AES followed by nothing or a PAD
 *            keyword only): FILE is read as anonflib reads mapi.conf's anon_key_file (32
 *            bytes or more: its first 32 bytes, the raw key file of `traceanon -f`; shorter:
 *            a string key without its trailing line end, padded with NUL bytes as
 *            `traceanon -c KEY` does) and appended to those rules as their last parameter
 *            (commas escaped as "\,"). The same key gives the same Crypto-PAn addresses as
 *            traceanon. A key with a NUL byte inside or blanks at an end cannot be a rule
 *            parameter: name such a file with anon_key_file in mapid's mapi.conf instead.
 *            Without -k those rules use mapid's anon_key_file (an error if there is none:
 *            anonflib has no built-in key; an error 7004 too for a user who is neither root
 *            nor in mapi.conf's anon_key_group). Rules that name a key keep it.
 *
 * How: an offline flow on IN (mapi_create_offline_flow), one ANONYMIZE call per rule, then
 * PKT_COUNTER and TO_FILE (format MFF_PCAP or MFF_PCAPNG, | MFF_OVERWRITE with -f); connect,
 * wait until the flow is FLOW_FINISHED (the file is complete then), close. mapid is found like
 * every application finds it: through $MAPI_CONF or the installed mapi.conf, and it must have
 * loaded anonflib.so (libs= in mapi.conf). mapid opens IN and MAPI's client library creates
 * OUT, so both paths are resolved here to absolute paths first.
 *
 * Output: "N packets written to OUT" on stdout. Exit status 0 on success; 1 on an error: a bad
 * rule ("POLICY:LINE: RULE: MAPI error N: MESSAGE", where N is 7001 bad protocol, 7002 bad
 * field, 7003 bad function, 7004 bad parameters), an unreadable policy or key file, a trace
 * mapid cannot open, OUT exists without -f; 2 on a usage error. Nothing is written to OUT
 * when a rule is refused (TO_FILE is applied after every rule was accepted).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <mapi.h>

#define ERR_FILE_EXISTS 3083 /* TO_FILE: OUT exists and MFF_OVERWRITE was not given */
#define KEY_MAX 32           /* bytes of a key (CRYPTOPAN_KEY_LEN) */
#define FINISH_TIMEOUT 3600  /* seconds to wait for the end of the trace */

static const char *progname = "mapi_anonymize";

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-f] [-n] [-k KEYFILE] POLICY IN OUT\n"
            "  POLICY   one ANONYMIZE rule a line, \"PROTOCOL,FIELD,FUNCTION[,PARAMS...]\";\n"
            "           blank lines and lines starting with # are ignored\n"
            "  IN       trace to read (pcap, pcapng; .erf: ERF)\n"
            "  OUT      trace to write (classic pcap unless -n)\n"
            "  -f       overwrite OUT if it exists\n"
            "  -n       write pcapng instead of pcap\n"
            "  -k FILE  key file (32 raw bytes, or a shorter text key) for PREFIX_PRESERVING\n"
            "           and HASHED cipher rules that name no key; default: the anon_key_file\n"
            "           of mapid's mapi.conf\n",
            progname);
}

/* Prints "WHAT: MAPI error N: TEXT" on stderr. Returns the error number. */
static int mapi_error(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: %s: MAPI error %d: %s\n", progname, what, err, msg);
    return err;
}

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Removes trailing blanks and line ends of s in place. Returns s. */
static char *rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Reads the key file as anonflib reads anon_key_file: 32 bytes or more are a raw key (its
 * first 32 bytes), a shorter file is a string key (one trailing "\n" or "\r\n" removed).
 * Then makes it a rule parameter: trailing NUL bytes dropped (the key is padded with NUL bytes
 * anyway), commas escaped as "\,". Returns a malloc'd parameter, or NULL after printing why:
 * a key that cannot be a parameter (a NUL byte inside, blanks at either end, which the rule
 * parser trims) must be given to mapid through anon_key_file instead. */
static char *read_key(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: key file %s: %s\n", progname, path, strerror(errno));
        return NULL;
    }
    unsigned char buf[KEY_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n > KEY_MAX)
        n = KEY_MAX;
    else {
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    if (n == 0) {
        fprintf(stderr, "%s: key file %s: empty key\n", progname, path);
        return NULL;
    }
    if (memchr(buf, '\0', n) != NULL || isspace(buf[0]) || isspace(buf[n - 1])) {
        fprintf(stderr,
                "%s: key file %s: this key cannot be passed as a rule parameter (a NUL byte "
                "inside, or blanks at an end); name the file with anon_key_file in mapid's "
                "mapi.conf and omit -k\n",
                progname, path);
        return NULL;
    }
    char *key = malloc(2 * n + 1), *o = key;
    if (key == NULL) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == ',')
            *o++ = '\\';
        *o++ = (char)buf[i];
    }
    *o = '\0';
    return key;
}

/* Splits rule (a copy) at its commas into at most max trimmed, upper-cased-for-comparison
 * parts. Returns the number of parts. */
static int split_rule(const char *rule, char parts[][64], int max)
{
    int n = 0;
    const char *p = rule;
    while (n < max) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (len >= 64)
            len = 63;
        for (size_t i = 0; i < len; i++)
            parts[n][i] = (char)toupper((unsigned char)p[i]);
        parts[n][len] = '\0';
        n++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return n;
}

/* Whether rule takes a key it does not name: PREFIX_PRESERVING without a parameter, or
 * HASHED with a cipher (DES, TRIPLEDES/3DES, AES) followed by nothing or by a PAD keyword
 * only. Returns 1 or 0. */
static int rule_needs_key(const char *rule)
{
    char parts[8][64];
    int n = split_rule(rule, parts, 8);
    if (n < 3)
        return 0;
    if (strcmp(parts[2], "PREFIX_PRESERVING") == 0)
        return n == 3;
    if (strcmp(parts[2], "HASHED") != 0 || n < 4 || n > 5)
        return 0;
    if (strcmp(parts[3], "DES") != 0 && strcmp(parts[3], "TRIPLEDES") != 0 &&
        strcmp(parts[3], "3DES") != 0 && strcmp(parts[3], "AES") != 0)
        return 0;
    return n == 4 || strcmp(parts[4], "PAD_WITH_ZERO") == 0 ||
           strcmp(parts[4], "STRIP_REST") == 0 || strcmp(parts[4], "UNCHANGED") == 0;
}

/* Returns the trace format of path: MFF_DAG_ERF for a name ending in .erf, else MFF_PCAP. */
static int trace_format(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && strcasecmp(path + n - 4, ".erf") == 0) ? MFF_DAG_ERF : MFF_PCAP;
}

/* Makes path absolute (mapid and libmapi may run elsewhere) into out (PATH_MAX bytes).
 * Returns 0, or -1 after printing why. */
static int absolute(const char *path, char *out)
{
    if (path[0] == '/') {
        if (strlen(path) >= PATH_MAX)
            goto toolong;
        strcpy(out, path);
        return 0;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        fprintf(stderr, "%s: getcwd: %s\n", progname, strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", cwd, path) < PATH_MAX)
        return 0;
toolong:
    fprintf(stderr, "%s: %s: path too long\n", progname, path);
    return -1;
}

/* Applies every rule of the policy file to flow fd (see the file comment). Returns the number
 * of rules applied, or -1 after printing the line, the rule and the MAPI error. */
static int apply_policy(int fd, const char *policy, const char *key)
{
    FILE *f = fopen(policy, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: policy %s: %s\n", progname, policy, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rules = 0, rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *rule = line;
        while (isspace((unsigned char)*rule))
            rule++;
        rstrip(rule);
        if (*rule == '\0' || *rule == '#')
            continue;
        char *full = NULL;
        if (key != NULL && rule_needs_key(rule)) {
            size_t len = strlen(rule) + strlen(key) + 2;
            full = malloc(len);
            if (full == NULL) {
                fprintf(stderr, "%s: out of memory\n", progname);
                rc = -1;
                break;
            }
            snprintf(full, len, "%s,%s", rule, key);
        }
        if (mapi_apply_function(fd, "ANONYMIZE", full ? full : rule) < 0) {
            char where[128];
            snprintf(where, sizeof where, "%s:%d", policy, lineno);
            int err = 0;
            char msg[MAPI_ERRORSTR_LENGTH] = "";
            mapi_read_error(&err, msg);
            /* The rule as written in the file: the key appended by -k is not printed. */
            fprintf(stderr, "%s: %s: %s: MAPI error %d: %s\n", progname, where, rule, err, msg);
            free(full);
            rc = -1;
            break;
        }
        free(full);
        rules++;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "%s: policy %s: read error\n", progname, policy);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc < 0 ? -1 : rules;
}

/* Waits until flow fd is FLOW_FINISHED. Returns 0, or -1 after printing why. */
static int wait_finished(int fd)
{
    double end = now() + FINISH_TIMEOUT;
    for (;;) {
        mapi_flow_info_t info;
        if (mapi_get_flow_info(fd, &info) < 0) {
            mapi_error("mapi_get_flow_info");
            return -1;
        }
        if (info.status == FLOW_FINISHED)
            return 0;
        if (info.status == FLOW_CLOSED) {
            fprintf(stderr, "%s: mapid closed the flow\n", progname);
            return -1;
        }
        if (now() > end) {
            fprintf(stderr, "%s: the trace was not finished after %d s\n", progname,
                    FINISH_TIMEOUT);
            return -1;
        }
        usleep(10000);
    }
}

/* Anonymises in into out (see the file comment). Returns the exit status: 0 or 1. */
static int run(const char *policy, const char *in, const char *out, const char *key, int format)
{
    if (access(in, R_OK) != 0) {
        fprintf(stderr, "%s: %s: %s\n", progname, in, strerror(errno));
        return 1;
    }

    int fd = mapi_create_offline_flow(in, trace_format(in));
    if (fd < 0) {
        mapi_error(in);
        return 1;
    }
    if (apply_policy(fd, policy, key) < 0) {
        mapi_close_flow(fd);
        return 1;
    }
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    if (cnt < 0) {
        mapi_error("PKT_COUNTER");
        mapi_close_flow(fd);
        return 1;
    }
    if (mapi_apply_function(fd, "TO_FILE", format, out, 0ULL) < 0) {
        int err = 0;
        char msg[MAPI_ERRORSTR_LENGTH] = "";
        mapi_read_error(&err, msg);
        if (err == ERR_FILE_EXISTS)
            fprintf(stderr, "%s: %s exists (use -f to overwrite it)\n", progname, out);
        else
            fprintf(stderr, "%s: TO_FILE %s: MAPI error %d: %s\n", progname, out, err, msg);
        mapi_close_flow(fd);
        return 1;
    }
    if (mapi_connect(fd) < 0) {
        mapi_error("mapi_connect");
        mapi_close_flow(fd);
        return 1;
    }
    if (wait_finished(fd) < 0) {
        mapi_close_flow(fd);
        return 1;
    }
    mapi_results_t *r = mapi_read_results(fd, cnt);
    if (r == NULL || r->size < (int)sizeof(unsigned long long)) {
        mapi_error("mapi_read_results");
        mapi_close_flow(fd);
        return 1;
    }
    unsigned long long pkts = *(unsigned long long *)r->res;
    if (mapi_close_flow(fd) < 0) {
        mapi_error("mapi_close_flow");
        return 1;
    }
    printf("%llu packets written to %s\n", pkts, out);
    return 0;
}

int main(int argc, char **argv)
{
    int overwrite = 0, pcapng = 0, opt;
    const char *keyfile = NULL;
    char *key = NULL;

    while ((opt = getopt(argc, argv, "fnk:h")) != -1) {
        switch (opt) {
        case 'f':
            overwrite = 1;
            break;
        case 'n':
            pcapng = 1;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (argc - optind != 3) {
        usage();
        return 2;
    }
    const char *policy = argv[optind];
    char in[PATH_MAX], out[PATH_MAX];
    if (absolute(argv[optind + 1], in) < 0 || absolute(argv[optind + 2], out) < 0)
        return 1;
    if (strcmp(in, out) == 0) {
        fprintf(stderr, "%s: IN and OUT are the same file\n", progname);
        return 1;
    }
    if (keyfile != NULL && (key = read_key(keyfile)) == NULL)
        return 1;
    int format = (pcapng ? MFF_PCAPNG : MFF_PCAP) | (overwrite ? MFF_OVERWRITE : 0);
    int rc = run(policy, in, out, key, format);
    free(key);
    return rc;
}
