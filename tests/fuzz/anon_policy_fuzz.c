/*
 * tests/fuzz/anon_policy_fuzz.c - libFuzzer target for ANONYMIZE's rule parser
 * (flib/anonflib/policy.c, "PROTOCOL,FIELD,FUNCTION[,PARAMS...]"), linked with the rest of
 * anonflib. The input is one rule (up to the first NUL byte).
 *
 * Properties (abort on a violation):
 *   - the result is 0 or one of the documented errors (7001-7004, 3084), and a refusal other
 *     than running out of memory says why in fi->errmsg;
 *   - round trip: an accepted rule (other than REGEXP, whose pattern is not kept as text)
 *     written back in canonical form (names in upper case, numbers printed exactly, commas
 *     in a key escaped as "\,", texts verbatim) parses again to the same rule: protocol,
 *     field, function and every parameter (STRIP count, distribution and its numbers,
 *     hash algorithm and padding, fill value or text, replacement text, key);
 *   - REGEXP: N equals the number of replacements kept;
 *   - anon_rule_free releases everything (LeakSanitizer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flib/anonflib/anonflib.h"
#include "mapi/errors.h"

static const char *const proto_names[] = {NULL, "IP", "TCP", "UDP", "ICMP", "HTTP", "FTP"};
static const char *const fn_names[] = {NULL,
                                       "UNCHANGED",
                                       "MAP",
                                       "MAP_DISTRIBUTION",
                                       "STRIP",
                                       "RANDOM",
                                       "FILENAME_RANDOM",
                                       "HASHED",
                                       "PATTERN_FILL",
                                       "ZERO",
                                       "REPLACE",
                                       "PREFIX_PRESERVING",
                                       "PREFIX_PRESERVING_MAP",
                                       "REGEXP",
                                       "CHECKSUM_ADJUST"};
static const char *const alg_names[] = {NULL,    "MD5", "SHA",       "SHA_2",
                                        "CRC32", "DES", "TRIPLEDES", "AES"};
static const char *const pad_names[] = {NULL, "PAD_WITH_ZERO", "STRIP_REST", "UNCHANGED"};

static int parse(const char *s, struct anon_rule *r, struct mapi_fn_instance *fi)
{
    memset(r, 0, sizeof *r);
    memset(fi, 0, sizeof *fi);
    fi->flow_id = 1;
    r->fi = fi;
    r->host = fi->host;
    int rc = anon_parse_rule(r, s);
    if (rc != 0 && rc != MFUNCT_INVALID_ARGUMENT_1 && rc != MFUNCT_INVALID_ARGUMENT_2 &&
        rc != MFUNCT_INVALID_ARGUMENT_3 && rc != MFUNCT_INVALID_ARGUMENT_4 &&
        rc != MAPID_MEM_ALLOCATION_ERROR)
        abort();
    if (rc != 0 && rc != MAPID_MEM_ALLOCATION_ERROR && fi->errmsg[0] == 0)
        abort();
    return rc;
}

/* Appends the key as a rule item (commas escaped); 0 if it cannot be written back exactly. */
static int put_key(char *out, size_t cap, const uint8_t key[32])
{
    size_t n = strlen(out), len = strnlen((const char *)key, 32);
    if (len == 0 || key[len - 1] == ' ' || (key[len - 1] >= '\t' && key[len - 1] <= '\r') ||
        key[0] == ' ' || (key[0] >= '\t' && key[0] <= '\r'))
        return 0; /* blanks at the ends are trimmed from items */
    for (size_t i = 0; i < len; i++) {
        if (n + 3 >= cap)
            return 0;
        if (key[i] == ',')
            out[n++] = '\\';
        out[n++] = (char)key[i];
    }
    out[n] = 0;
    return 1;
}

/* The canonical text of r; 0 if r cannot be written back (REGEXP, awkward keys). */
static int serialise(const struct anon_rule *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s,%s,%s", proto_names[r->proto], r->fd->name, fn_names[r->fn]);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t left = cap - (size_t)n;
    char *p = out + n;
    switch (r->fn) {
    case ANON_FN_MAP_DISTRIBUTION:
        snprintf(p, left, ",%s,%.17g,%.17g", r->dist_gauss ? "GAUSSIAN" : "UNIFORM", r->dist_a,
                 r->dist_b);
        break;
    case ANON_FN_STRIP:
        snprintf(p, left, ",%u", r->strip_keep);
        break;
    case ANON_FN_HASHED:
        snprintf(p, left, ",%s,%s", alg_names[r->hash_alg], pad_names[r->hash_pad]);
        if (r->hash_alg == ANON_H_DES || r->hash_alg == ANON_H_3DES || r->hash_alg == ANON_H_AES) {
            strncat(out, ",", cap - strlen(out) - 1);
            return put_key(out, cap, r->key);
        }
        break;
    case ANON_FN_PATTERN_FILL:
        if (r->fill_int)
            snprintf(p, left, ",INTEGER,%u", r->fill_value);
        else if ((size_t)snprintf(p, left, ",STR,%s", r->text) >= left)
            return 0;
        break;
    case ANON_FN_REPLACE:
        if ((size_t)snprintf(p, left, ",%s", r->text) >= left)
            return 0;
        break;
    case ANON_FN_PREFIX_PRESERVING:
        strncat(out, ",", cap - strlen(out) - 1);
        return put_key(out, cap, r->key);
    case ANON_FN_REGEXP:
        return 0;
    default:
        break;
    }
    return 1;
}

static int same(const struct anon_rule *a, const struct anon_rule *b)
{
    if (a->proto != b->proto || a->fd != b->fd || a->fn != b->fn ||
        a->strip_keep != b->strip_keep || a->dist_gauss != b->dist_gauss ||
        memcmp(&a->dist_a, &b->dist_a, sizeof a->dist_a) != 0 ||
        memcmp(&a->dist_b, &b->dist_b, sizeof a->dist_b) != 0 || a->hash_alg != b->hash_alg ||
        a->hash_pad != b->hash_pad || a->fill_int != b->fill_int ||
        a->fill_value != b->fill_value || memcmp(a->key, b->key, sizeof a->key) != 0)
        return 0;
    if (!a->text != !b->text || (a->text && strcmp(a->text, b->text) != 0) ||
        a->text_len != b->text_len)
        return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    struct anon_rule r, r2;
    struct mapi_fn_instance fi, fi2;
    if (parse(s, &r, &fi) == 0) {
        if (!r.fd || r.proto < ANON_P_IP || r.proto > ANON_P_FTP || r.fn < ANON_FN_UNCHANGED ||
            r.fn > ANON_FN_CHECKSUM_ADJUST)
            abort();
        if (r.fn == ANON_FN_REGEXP && (r.re_n < 1 || !r.re_rep || !r.re))
            abort();
        if (r.text && r.text_len != strlen(r.text))
            abort();
        static char canon[16384];
        if (serialise(&r, canon, sizeof canon)) {
            if (parse(canon, &r2, &fi2) != 0)
                abort(); /* the canonical form of an accepted rule is refused */
            if (!same(&r, &r2))
                abort(); /* ... or means something else */
            anon_rule_free(&r2);
        }
    }
    anon_rule_free(&r);
    free(s);
    return 0;
}
