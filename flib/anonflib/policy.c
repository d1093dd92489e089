/*
 * flib/anonflib/policy.c - parsing of one ANONYMIZE rule, "PROTOCOL,FIELD,FUNCTION[,PARAMS...]".
 *
 * Syntax: comma-separated items, case-insensitive (protocol, field, function and keyword
 * parameters; texts keep their case), blanks around the commas ignored. Inside a parameter
 * "\," stands for a literal comma. REPLACE's text and PATTERN_FILL's STR text are the rest of
 * the rule verbatim (they may contain commas).
 *
 * Protocols: IP (IPv4 and IPv6), TCP, UDP, ICMP (ICMP on IPv4, ICMPv6 on IPv6), HTTP, FTP.
 * Lower-layer fields are reachable from the higher protocols (IP fields from all, TCP fields
 * and ports from HTTP and FTP); a rule acts only on packets of its protocol.
 *
 * Functions and parameters (7004 when the count or a value is wrong):
 *   UNCHANGED                       no parameter
 *   MAP                             none; numeric header fields and addresses
 *   MAP_DISTRIBUTION,UNIFORM,a,b    a <= b;  MAP_DISTRIBUTION,GAUSSIAN,mean,sd   sd >= 0
 *   STRIP,n                         n >= 0; PAYLOAD, OPTIONS, TCP_OPTIONS, HTTP and FTP fields
 *   RANDOM, ZERO                    none
 *   FILENAME_RANDOM                 none; PAYLOAD, HTTP and FTP fields
 *   HASHED,ALG[,PAD][,KEY]          ALG MD5, SHA (SHA1), SHA_2 (SHA256), CRC32, DES,
 *                                   TRIPLEDES (3DES), AES; PAD PAD_WITH_ZERO (default),
 *                                   STRIP_REST, UNCHANGED; KEY only for the ciphers (else
 *                                   anon_key_file; a key is required)
 *   PATTERN_FILL,INTEGER,n / PATTERN_FILL,STR,text
 *   REPLACE,text                    PAYLOAD, HTTP and FTP fields
 *   PREFIX_PRESERVING[,KEY]         SRC_IP, DST_IP (key else anon_key_file; required)
 *   PREFIX_PRESERVING_MAP           SRC_IP, DST_IP
 *   REGEXP,regex,N,rep1,...,repN    PAYLOAD, HTTP and FTP fields; "NULL" keeps a group
 *   CHECKSUM_ADJUST                 CHECKSUM only
 * A key given as a parameter is a string padded with NUL bytes to 32 bytes (traceanon -c).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "anonflib.h"
#include "common/cryptopan.h"

#define MAX_ITEMS 64

void anon_errmsg(struct mapi_fn_instance *fi, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fi->errmsg, sizeof fi->errmsg, fmt, ap);
    va_end(ap);
}

static const struct {
    const char *name;
    int proto;
} protos[] = {
    {"IP", ANON_P_IP},     {"TCP", ANON_P_TCP},   {"UDP", ANON_P_UDP},
    {"ICMP", ANON_P_ICMP}, {"HTTP", ANON_P_HTTP}, {"FTP", ANON_P_FTP},
};

static const struct {
    const char *name;
    int fn;
} fns[] = {
    {"UNCHANGED", ANON_FN_UNCHANGED},
    {"MAP", ANON_FN_MAP},
    {"MAP_DISTRIBUTION", ANON_FN_MAP_DISTRIBUTION},
    {"STRIP", ANON_FN_STRIP},
    {"RANDOM", ANON_FN_RANDOM},
    {"FILENAME_RANDOM", ANON_FN_FILENAME_RANDOM},
    {"HASHED", ANON_FN_HASHED},
    {"PATTERN_FILL", ANON_FN_PATTERN_FILL},
    {"ZERO", ANON_FN_ZERO},
    {"REPLACE", ANON_FN_REPLACE},
    {"PREFIX_PRESERVING", ANON_FN_PREFIX_PRESERVING},
    {"PREFIX_PRESERVING_MAP", ANON_FN_PREFIX_PRESERVING_MAP},
    {"REGEXP", ANON_FN_REGEXP},
    {"CHECKSUM_ADJUST", ANON_FN_CHECKSUM_ADJUST},
};

/* The items of a rule: unescaped, trimmed copies, plus where each started in the input. */
struct items {
    int n;
    char *v[MAX_ITEMS];
    size_t start[MAX_ITEMS];
};

static void items_free(struct items *it)
{
    for (int i = 0; i < it->n; i++)
        free(it->v[i]);
    it->n = 0;
}

/* Splits s at unescaped commas. Returns 0, -1 (too many items) or -2 (memory). */
static int split(const char *s, struct items *it)
{
    size_t i = 0, n = strlen(s);

    it->n = 0;
    for (;;) {
        if (it->n == MAX_ITEMS)
            return -1;
        char *out = malloc(n - i + 1);
        size_t o = 0;
        if (out == NULL)
            return -2;
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        it->start[it->n] = i;
        while (i < n && s[i] != ',') {
            if (s[i] == '\\' && i + 1 < n && s[i + 1] == ',')
                i++;
            out[o++] = s[i++];
        }
        while (o > 0 && isspace((unsigned char)out[o - 1]))
            o--;
        out[o] = '\0';
        it->v[it->n++] = out;
        if (i >= n)
            return 0;
        i++; /* the comma */
    }
}

/* The rest of s from item k on, verbatim but trimmed (a new string), or NULL (memory). */
static char *rest_of(const char *s, const struct items *it, int k)
{
    const char *b = s + it->start[k];
    size_t len = strlen(b);

    while (len > 0 && isspace((unsigned char)b[len - 1]))
        len--;
    char *out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, b, len);
        out[len] = '\0';
    }
    return out;
}

/* Parses a double. Returns 0 or -1. */
static int parse_double(const char *s, double *v)
{
    char *end;

    if (*s == '\0')
        return -1;
    errno = 0;
    *v = strtod(s, &end);
    if (*end != '\0' || errno != 0 || !isfinite(*v))
        return -1;
    return 0;
}

/* Parses an integer in [lo, hi]. Returns 0 or -1. */
static int parse_long(const char *s, long long lo, long long hi, long long *v)
{
    char *end;

    if (*s == '\0')
        return -1;
    errno = 0;
    *v = strtoll(s, &end, 0);
    if (*end != '\0' || errno != 0 || *v < lo || *v > hi)
        return -1;
    return 0;
}

int anon_default_key(struct mapi_fn_instance *fi, uint8_t key[32])
{
    const char *path =
        fi->host && fi->host->conf_value ? fi->host->conf_value("anon_key_file") : NULL;
    char err[200];

    if (path == NULL || *path == '\0') {
        anon_errmsg(fi, "no key: give one as the last parameter or set anon_key_file in "
                        "mapi.conf");
        return -1;
    }
    if (!fi->host->may_use_site_key || !fi->host->may_use_site_key(fi)) {
        anon_errmsg(fi, "the site key (anon_key_file) is only for root and the group "
                        "anon_key_group of mapi.conf: give your own key as the last parameter");
        return -1;
    }
    if (cryptopan_key_from_file(path, key, err, sizeof(err)) < 0) {
        anon_errmsg(fi, "%s (anon_key_file)", err);
        return -1;
    }
    return 0;
}

/* A numeric setting of mapi.conf through the host (def if absent or not a number >= lo). */
static uint64_t conf_num(const struct mapi_fn_instance *fi, const char *key, uint64_t def,
                         uint64_t lo)
{
    const char *v = fi->host && fi->host->conf_value ? fi->host->conf_value(key) : NULL;
    char *end;
    unsigned long long x;

    if (v == NULL || *v == '\0' || *v == '-')
        return def;
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo)
        return def;
    return x;
}

/* REGEXP's bounds from mapi.conf (defaults as in common/conf.c). */
static void regexp_limits(struct anon_rule *r)
{
    uint64_t l = conf_num(r->fi, "regexp_match_limit", 1000, 1);
    r->re_limit = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
    r->re_heap = conf_num(r->fi, "regexp_heap_limit", 1u << 20, 1024);
    r->re_time_ns = conf_num(r->fi, "regexp_time_limit", 1000, 0) * 1000u;
}

/* The key of a keyed function: item k if present, else the default key. Returns 0 or 7004. */
static int get_key(struct anon_rule *r, const struct items *it, int k)
{
    if (k < it->n) {
        if (it->v[k][0] == '\0') {
            anon_errmsg(r->fi, "empty key");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        cryptopan_key_from_string(it->v[k], r->key);
        return 0;
    }
    return anon_default_key(r->fi, r->key) == 0 ? 0 : MFUNCT_INVALID_ARGUMENT_4;
}

/* Whether field scope is reachable from protocol proto. */
static int reachable(int scope, int proto)
{
    switch (scope) {
    case ANON_S_COMMON:
    case ANON_S_IP:
        return 1;
    case ANON_S_PORTS:
        return proto == ANON_P_TCP || proto == ANON_P_UDP || proto == ANON_P_HTTP ||
               proto == ANON_P_FTP;
    case ANON_S_TCP:
        return proto == ANON_P_TCP || proto == ANON_P_HTTP || proto == ANON_P_FTP;
    case ANON_S_UDP:
        return proto == ANON_P_UDP;
    case ANON_S_ICMP:
        return proto == ANON_P_ICMP;
    case ANON_S_HTTP:
        return proto == ANON_P_HTTP;
    case ANON_S_FTP:
        return proto == ANON_P_FTP;
    default:
        return 0;
    }
}

/* Whether function fn applies to field fd. */
static int applies(int fn, const struct anon_field_def *fd)
{
    switch (fn) {
    case ANON_FN_MAP:
    case ANON_FN_MAP_DISTRIBUTION:
        return (fd->kind == ANON_K_NUM || fd->kind == ANON_K_ADDR) && fd->mapclass != ANON_MAP_NONE;
    case ANON_FN_STRIP:
        return fd->kind == ANON_K_OPT || fd->kind == ANON_K_VAR;
    case ANON_FN_FILENAME_RANDOM:
    case ANON_FN_REPLACE:
    case ANON_FN_REGEXP:
        return fd->kind == ANON_K_VAR;
    case ANON_FN_PREFIX_PRESERVING:
    case ANON_FN_PREFIX_PRESERVING_MAP:
        return fd->kind == ANON_K_ADDR;
    case ANON_FN_CHECKSUM_ADJUST:
        return fd->field == ANON_F_CHECKSUM;
    default:
        return 1;
    }
}

/* Expects exactly n parameters (or lo..hi). Returns 0 or 7004 with a message. */
static int want_params(struct anon_rule *r, const char *fname, int have, int lo, int hi)
{
    if (have >= lo && have <= hi)
        return 0;
    if (lo == hi)
        anon_errmsg(r->fi, "%s takes %d parameter%s, got %d", fname, lo, lo == 1 ? "" : "s", have);
    else
        anon_errmsg(r->fi, "%s takes %d to %d parameters, got %d", fname, lo, hi, have);
    return MFUNCT_INVALID_ARGUMENT_4;
}

/* The function-specific part: items 3.. are the parameters. Returns 0 or an error. */
static int parse_params(struct anon_rule *r, const char *s, struct items *it, const char *fname)
{
    int np = it->n - 3, err;
    char **p = it->v + 3;

    switch (r->fn) {
    case ANON_FN_UNCHANGED:
    case ANON_FN_MAP:
    case ANON_FN_RANDOM:
    case ANON_FN_ZERO:
    case ANON_FN_FILENAME_RANDOM:
    case ANON_FN_PREFIX_PRESERVING_MAP:
    case ANON_FN_CHECKSUM_ADJUST:
        return want_params(r, fname, np, 0, 0);
    case ANON_FN_MAP_DISTRIBUTION:
        /* "2 parameters" in the reference: the distribution's two numbers (+ its name) */
        if ((err = want_params(r, fname, np, 3, 3)) != 0) {
            anon_errmsg(r->fi, "MAP_DISTRIBUTION takes UNIFORM,a,b or GAUSSIAN,mean,sd");
            return err;
        }
        if (strcasecmp(p[0], "UNIFORM") == 0)
            r->dist_gauss = 0;
        else if (strcasecmp(p[0], "GAUSSIAN") == 0)
            r->dist_gauss = 1;
        else {
            anon_errmsg(r->fi, "MAP_DISTRIBUTION: unknown distribution \"%s\" (UNIFORM, GAUSSIAN)",
                        p[0]);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        if (parse_double(p[1], &r->dist_a) != 0 || parse_double(p[2], &r->dist_b) != 0) {
            anon_errmsg(r->fi, "MAP_DISTRIBUTION: \"%s\", \"%s\" are not numbers", p[1], p[2]);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        if ((!r->dist_gauss && r->dist_a > r->dist_b) || (r->dist_gauss && r->dist_b < 0)) {
            anon_errmsg(r->fi, "MAP_DISTRIBUTION: %s",
                        r->dist_gauss ? "negative deviation" : "UNIFORM needs a <= b");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        return 0;
    case ANON_FN_STRIP: {
        long long v;
        if ((err = want_params(r, fname, np, 1, 1)) != 0)
            return err;
        if (parse_long(p[0], 0, 65535, &v) != 0) {
            anon_errmsg(r->fi, "STRIP: \"%s\" is not a byte count 0..65535", p[0]);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        r->strip_keep = (uint32_t)v;
        return 0;
    }
    case ANON_FN_HASHED: {
        static const struct {
            const char *n;
            int a;
        } algs[] = {{"MD5", ANON_H_MD5},      {"SHA", ANON_H_SHA1},       {"SHA1", ANON_H_SHA1},
                    {"SHA_2", ANON_H_SHA256}, {"SHA256", ANON_H_SHA256},  {"CRC32", ANON_H_CRC32},
                    {"DES", ANON_H_DES},      {"TRIPLEDES", ANON_H_3DES}, {"3DES", ANON_H_3DES},
                    {"AES", ANON_H_AES}};
        int k = 1, cipher;
        if (np < 1) {
            anon_errmsg(r->fi, "HASHED takes ALG[,PAD][,KEY]");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
            if (strcasecmp(p[0], algs[i].n) == 0)
                r->hash_alg = algs[i].a;
        if (r->hash_alg == 0) {
            anon_errmsg(r->fi,
                        "HASHED: unknown algorithm \"%s\" (MD5, SHA, SHA_2, CRC32, DES, "
                        "TRIPLEDES, AES)",
                        p[0]);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        r->hash_pad = ANON_PAD_ZERO;
        if (np > 1) {
            if (strcasecmp(p[1], "PAD_WITH_ZERO") == 0) {
                k = 2;
            } else if (strcasecmp(p[1], "STRIP_REST") == 0) {
                r->hash_pad = ANON_PAD_STRIP_REST;
                k = 2;
            } else if (strcasecmp(p[1], "UNCHANGED") == 0) {
                r->hash_pad = ANON_PAD_UNCHANGED;
                k = 2;
            }
        }
        cipher =
            r->hash_alg == ANON_H_DES || r->hash_alg == ANON_H_3DES || r->hash_alg == ANON_H_AES;
        if (np > k + (cipher ? 1 : 0)) {
            anon_errmsg(r->fi,
                        "HASHED: unexpected parameter \"%s\" (PAD is PAD_WITH_ZERO, "
                        "STRIP_REST or UNCHANGED; only DES, TRIPLEDES and AES take a key)",
                        p[k]);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        if (cipher && (err = get_key(r, it, 3 + k)) != 0)
            return err;
        return anon_hash_init(r);
    }
    case ANON_FN_PATTERN_FILL:
        if (np < 2) {
            anon_errmsg(r->fi, "PATTERN_FILL takes INTEGER,n or STR,text");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        if (strcasecmp(p[0], "INTEGER") == 0) {
            long long v;
            if (np != 2 || parse_long(p[1], -2147483648LL, 4294967295LL, &v) != 0) {
                anon_errmsg(r->fi, "PATTERN_FILL,INTEGER takes one integer");
                return MFUNCT_INVALID_ARGUMENT_4;
            }
            r->fill_int = 1;
            r->fill_value = (uint32_t)v;
            return 0;
        }
        if (strcasecmp(p[0], "STR") == 0) {
            r->text = rest_of(s, it, 4);
            if (r->text == NULL)
                return MAPID_MEM_ALLOCATION_ERROR;
            r->text_len = strlen(r->text);
            if (r->text_len == 0) {
                anon_errmsg(r->fi, "PATTERN_FILL,STR needs a non-empty text");
                return MFUNCT_INVALID_ARGUMENT_4;
            }
            return 0;
        }
        anon_errmsg(r->fi, "PATTERN_FILL: type \"%s\" is neither INTEGER nor STR", p[0]);
        return MFUNCT_INVALID_ARGUMENT_4;
    case ANON_FN_REPLACE:
        if (np < 1) {
            anon_errmsg(r->fi, "REPLACE takes 1 parameter (the text), got 0");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        r->text = rest_of(s, it, 3);
        if (r->text == NULL)
            return MAPID_MEM_ALLOCATION_ERROR;
        r->text_len = strlen(r->text);
        return 0;
    case ANON_FN_PREFIX_PRESERVING:
        if ((err = want_params(r, fname, np, 0, 1)) != 0)
            return err;
        return get_key(r, it, 3);
    case ANON_FN_REGEXP: {
        long long n;
        int ecode;
        PCRE2_SIZE eoff;
        if (np < 3) {
            anon_errmsg(r->fi, "REGEXP takes regex,N,rep1,...,repN (at least 3 parameters), got %d",
                        np);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        if (parse_long(p[1], 1, MAX_ITEMS, &n) != 0 || n != np - 2) {
            anon_errmsg(r->fi, "REGEXP: N = \"%s\" but %d replacement%s given", p[1], np - 2,
                        np - 2 == 1 ? "" : "s");
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        for (const char *c = p[0]; *c; c++) {
            if (*c == '\\' && c[1] == 'G') {
                anon_errmsg(r->fi, "REGEXP: \\G is not supported (searches are split into "
                                   "windows of start positions to bound their work)");
                return MFUNCT_INVALID_ARGUMENT_4;
            }
            if (*c == '\\' && c[1] != '\0')
                c++;
        }
        r->re = pcre2_compile((PCRE2_SPTR)p[0], PCRE2_ZERO_TERMINATED, PCRE2_USE_OFFSET_LIMIT,
                              &ecode, &eoff, NULL);
        if (r->re == NULL) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            anon_errmsg(r->fi, "REGEXP: bad pattern \"%s\" at %zu: %s", p[0], (size_t)eoff,
                        (char *)msg);
            return MFUNCT_INVALID_ARGUMENT_4;
        }
        pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* optional speed-up */
        r->re_md = pcre2_match_data_create_from_pattern(r->re, NULL);
        r->re_n = (int)n;
        r->re_rep = calloc((size_t)n, sizeof *r->re_rep);
        r->re_mc = pcre2_match_context_create(NULL);
        if (r->re_md == NULL || r->re_rep == NULL || r->re_mc == NULL)
            return MAPID_MEM_ALLOCATION_ERROR;
        regexp_limits(r);
        pcre2_set_match_limit(r->re_mc, r->re_limit);
        pcre2_set_heap_limit(r->re_mc, (uint32_t)(r->re_heap / 1024 > 0 ? r->re_heap / 1024 : 1));
        for (int i = 0; i < r->re_n; i++) {
            if (strcmp(p[2 + i], "NULL") == 0)
                continue;
            r->re_rep[i] = strdup(p[2 + i]);
            if (r->re_rep[i] == NULL)
                return MAPID_MEM_ALLOCATION_ERROR;
        }
        return 0;
    }
    default:
        return MFUNCT_INVALID_ARGUMENT_3;
    }
}

int anon_parse_rule(struct anon_rule *r, const char *s)
{
    struct items it;
    int err = 0, rc;
    size_t i;

    rc = split(s, &it);
    if (rc == -2) {
        items_free(&it);
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    if (rc == -1) {
        items_free(&it);
        anon_errmsg(r->fi, "too many parameters in rule \"%s\"", s);
        return MFUNCT_INVALID_ARGUMENT_4;
    }
    /* protocol */
    for (i = 0; i < sizeof protos / sizeof protos[0]; i++)
        if (strcasecmp(it.v[0], protos[i].name) == 0)
            r->proto = protos[i].proto;
    if (r->proto == 0) {
        anon_errmsg(r->fi, "unknown protocol \"%s\" (IP, TCP, UDP, ICMP, HTTP, FTP)", it.v[0]);
        err = MFUNCT_INVALID_ARGUMENT_1;
        goto out;
    }
    /* field */
    if (it.n < 2 || it.v[1][0] == '\0') {
        anon_errmsg(r->fi, "missing field in rule \"%s\"", s);
        err = MFUNCT_INVALID_ARGUMENT_2;
        goto out;
    }
    for (i = 0; anon_fields[i].name != NULL; i++)
        if (strcasecmp(it.v[1], anon_fields[i].name) == 0)
            r->fd = &anon_fields[i];
    if (r->fd == NULL) {
        anon_errmsg(r->fi, "unknown field \"%s\"", it.v[1]);
        err = MFUNCT_INVALID_ARGUMENT_2;
        goto out;
    }
    if (r->fd->field == ANON_F_VERSION || r->fd->field == ANON_F_IHL) {
        anon_errmsg(r->fi, "field %s cannot be anonymised", r->fd->name);
        err = MFUNCT_INVALID_ARGUMENT_2;
        goto out;
    }
    if (!reachable(r->fd->scope, r->proto)) {
        anon_errmsg(r->fi, "field %s does not belong to protocol %s", r->fd->name,
                    protos[r->proto - 1].name);
        err = MFUNCT_INVALID_ARGUMENT_2;
        goto out;
    }
    /* function */
    if (it.n < 3 || it.v[2][0] == '\0') {
        anon_errmsg(r->fi, "missing function in rule \"%s\"", s);
        err = MFUNCT_INVALID_ARGUMENT_3;
        goto out;
    }
    for (i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (strcasecmp(it.v[2], fns[i].name) == 0)
            r->fn = fns[i].fn;
    if (r->fn == 0) {
        anon_errmsg(r->fi, "unknown function \"%s\"", it.v[2]);
        err = MFUNCT_INVALID_ARGUMENT_3;
        goto out;
    }
    if (!applies(r->fn, r->fd)) {
        anon_errmsg(r->fi, "function %s does not apply to field %s", it.v[2], r->fd->name);
        err = MFUNCT_INVALID_ARGUMENT_2;
        goto out;
    }
    err = parse_params(r, s, &it, it.v[2]);
    if (err != 0)
        goto out;
    /* state */
    r->rng = anon_seed(r);
    if (r->fn == ANON_FN_MAP || r->fn == ANON_FN_PREFIX_PRESERVING_MAP) {
        r->ctx = anon_ctx_get(r->fi->flow_id);
        if (r->ctx == NULL)
            err = MAPID_MEM_ALLOCATION_ERROR;
    } else if (r->fn == ANON_FN_MAP_DISTRIBUTION) {
        r->dist_tab = anon_table_new(4);
        r->dist_tab6 = anon_table_new(16);
        if (r->dist_tab == NULL || r->dist_tab6 == NULL)
            err = MAPID_MEM_ALLOCATION_ERROR;
    } else if (r->fn == ANON_FN_PREFIX_PRESERVING) {
        r->cp = cryptopan_new(r->key);
        r->c4 = calloc(ANON_PP_CACHE4, sizeof *r->c4);
        r->c6 = calloc(ANON_PP_CACHE6, sizeof *r->c6);
        if (r->cp == NULL || r->c4 == NULL || r->c6 == NULL)
            err = MAPID_MEM_ALLOCATION_ERROR;
    }
    if (err == 0 && (r->fn == ANON_FN_HASHED || r->fn == ANON_FN_REGEXP)) {
        r->scratch = malloc(MAPI_PKT_ROOM + 64);
        if (r->scratch == NULL)
            err = MAPID_MEM_ALLOCATION_ERROR;
    }
out:
    items_free(&it);
    return err;
}

void anon_rule_free(struct anon_rule *r)
{
    free(r->text);
    r->text = NULL;
    if (r->re_md != NULL)
        pcre2_match_data_free(r->re_md);
    if (r->re != NULL)
        pcre2_code_free(r->re);
    if (r->re_mc != NULL)
        pcre2_match_context_free(r->re_mc);
    r->re_mc = NULL;
    if (r->re_stopped > 0 && r->host != NULL)
        r->host->log(1,
                     "ANONYMIZE REGEXP of flow %d: the search stopped at a limit on %llu "
                     "packet(s) in all (regexp_match_limit, regexp_heap_limit, "
                     "regexp_time_limit)",
                     r->fi->flow_id, (unsigned long long)r->re_stopped);
    r->re_stopped = 0;
    r->re = r->re_md = NULL;
    if (r->re_rep != NULL) {
        for (int i = 0; i < r->re_n; i++)
            free(r->re_rep[i]);
        free(r->re_rep);
        r->re_rep = NULL;
    }
    anon_hash_free(r);
    if (r->cp != NULL)
        cryptopan_free(r->cp);
    r->cp = NULL;
    free(r->c4);
    free(r->c6);
    r->c4 = NULL;
    r->c6 = NULL;
    anon_table_free(r->dist_tab);
    anon_table_free(r->dist_tab6);
    r->dist_tab = r->dist_tab6 = NULL;
    if (r->ctx != NULL)
        anon_ctx_put(r->ctx);
    r->ctx = NULL;
    free(r->scratch);
    r->scratch = NULL;
    memset(r->key, 0, sizeof r->key);
}
