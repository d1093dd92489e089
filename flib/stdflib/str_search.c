/*
 * flib/stdflib/str_search.c - STR_SEARCH "sii" pattern, offset, depth: keeps the packets
 * that contain the pattern.
 *
 * Pattern syntax (as Snort's content option):
 *   |61 62|   bytes in hex between pipes; spaces and tabs inside are ignored
 *   \|        a literal pipe; "\\" a literal backslash (a backslash takes the next character
 *             literally, whatever it is)
 *   A||B      alternatives: the packet passes if any alternative occurs
 * Outside a hex block, "||" always separates alternatives, and a single '|' opens a block.
 * So adjacent hex blocks join ("|41||42|" is "AB", the second pair being close + open), and
 * "A" or "B" in hex is written "|41||||42|" (close, separator, open).
 *
 * The search covers the bytes [offset, offset + depth) of the link-layer frame (offset counts
 * from the start of the frame, not of the payload, as in the original), cut at caplen;
 * depth 0 means to the end of the captured bytes, and an offset at or past caplen never
 * matches. Each alternative is found with glibc's memmem (two-way / hashed shift search).
 *
 * The same (pattern, offset, depth) on several flows of one device shares one parsed pattern
 * and one verdict per packet (registry in stdflib.h).
 *
 * Errors at apply time (the original reported 3503-3505 only at connect):
 *   7001 empty pattern, 7002 offset < 0, 7003 depth < 0,
 *   3503 a hex block without its closing pipe,
 *   3505 bad hex (odd digit count, a non-hex character, an empty block), an empty
 *        alternative, more than STR_SEARCH_MAX_ALTS (16) alternatives, or a trailing lone
 *        backslash,
 *   3504 depth != 0 and depth shorter than the longest alternative (that alternative could
 *        never match).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "stdflib.h"

/* Alternatives of one pattern at most: each costs a memmem over the window of every packet,
 * on the capture thread that all flows of the device share (1000 alternatives cost 2 ms per
 * packet: one user's filter would starve the others). */
#define STR_SEARCH_MAX_ALTS 16

struct search_alt {
    uint32_t off; /* into bytes */
    uint32_t len;
};

struct str_search {
    uint32_t offset;
    uint32_t depth; /* 0 = to the end */
    uint32_t nalts;
    uint32_t maxlen; /* longest alternative */
    struct search_alt *alts;
    uint8_t *bytes;
};

static void search_destroy(void *obj)
{
    struct str_search *s = obj;

    if (s == NULL)
        return;
    free(s->alts);
    free(s->bytes);
    free(s);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int close_alt(struct str_search *s, uint32_t *start, uint32_t out)
{
    if (out == *start)
        return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING; /* empty alternative */
    if (s->nalts == STR_SEARCH_MAX_ALTS)
        return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING; /* too many: see the file comment */
    s->alts[s->nalts].off = *start;
    s->alts[s->nalts].len = out - *start;
    if (out - *start > s->maxlen)
        s->maxlen = out - *start;
    s->nalts++;
    *start = out;
    return 0;
}

/*
 * Parses pattern p into s->bytes / s->alts (both sized by the caller for strlen(p)).
 * Returns 0, 3503 or 3505, with a message in fi->errmsg.
 */
static int parse_pattern(struct mapi_fn_instance *fi, struct str_search *s, const char *p)
{
    size_t n = strlen(p), i = 0;
    uint32_t out = 0, start = 0;
    int err;

    while (i < n) {
        unsigned char c = (unsigned char)p[i];

        if (c == '\\') {
            if (i + 1 >= n) {
                stdflib_errmsg(fi, "STR_SEARCH: lone backslash at the end of the pattern");
                return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
            }
            s->bytes[out++] = (uint8_t)p[i + 1];
            i += 2;
        } else if (c == '|' && i + 1 < n && p[i + 1] == '|') {
            if ((err = close_alt(s, &start, out)) != 0) {
                if (s->nalts == STR_SEARCH_MAX_ALTS)
                    stdflib_errmsg(fi, "STR_SEARCH: more than %d alternatives",
                                   STR_SEARCH_MAX_ALTS);
                else
                    stdflib_errmsg(fi, "STR_SEARCH: empty alternative before position %zu", i);
                return err;
            }
            i += 2;
        } else if (c == '|') {
            size_t open = i++;
            int hi = -1, nbytes = 0;

            for (; i < n && p[i] != '|'; i++) {
                int v = hexval((unsigned char)p[i]);

                if (p[i] == ' ' || p[i] == '\t')
                    continue;
                if (v < 0) {
                    stdflib_errmsg(fi, "STR_SEARCH: '%c' at position %zu is not a hex digit",
                                   isprint((unsigned char)p[i]) ? p[i] : '?', i);
                    return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
                }
                if (hi < 0) {
                    hi = v;
                } else {
                    s->bytes[out++] = (uint8_t)(hi << 4 | v);
                    hi = -1;
                    nbytes++;
                }
            }
            if (i >= n) {
                stdflib_errmsg(fi, "STR_SEARCH: the '|' at position %zu is never closed", open);
                return MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR;
            }
            if (hi >= 0 || nbytes == 0) {
                stdflib_errmsg(fi, "STR_SEARCH: the hex block at position %zu %s", open,
                               hi >= 0 ? "has an odd number of digits" : "is empty");
                return MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING;
            }
            i++; /* the closing pipe */
        } else {
            s->bytes[out++] = c;
            i++;
        }
    }
    if ((err = close_alt(s, &start, out)) != 0) {
        if (s->nalts == STR_SEARCH_MAX_ALTS)
            stdflib_errmsg(fi, "STR_SEARCH: more than %d alternatives", STR_SEARCH_MAX_ALTS);
        else
            stdflib_errmsg(fi, "STR_SEARCH: empty alternative at the end of the pattern");
        return err;
    }
    return 0;
}

/* Parses args (pattern, offset, depth) into a new struct str_search. */
static int search_build(struct mapi_fn_instance *fi, void **obj)
{
    const char *p = fi->args[0].v.s;
    size_t n = strlen(p);
    struct str_search *s;
    int err;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    s->offset = (uint32_t)fi->args[1].v.i;
    s->depth = (uint32_t)fi->args[2].v.i;
    s->bytes = malloc(n);
    s->alts = calloc(n / 2 + 1, sizeof(*s->alts));
    if (s->bytes == NULL || s->alts == NULL) {
        search_destroy(s);
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    err = parse_pattern(fi, s, p);
    if (err == 0 && s->depth != 0 && s->depth < s->maxlen) {
        stdflib_errmsg(fi, "STR_SEARCH: depth %u is shorter than the pattern (%u bytes)", s->depth,
                       s->maxlen);
        err = MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR;
    }
    if (err != 0) {
        search_destroy(s);
        return err;
    }
    *obj = s;
    return 0;
}

/*
 * Validates the arguments and parses the pattern. Returns 0, 7001 (empty pattern), 7002
 * (offset < 0), 7003 (depth < 0), 3503, 3504, 3505 (see the top of the file) or 3084.
 */
int stdflib_str_search_instance(struct mapi_fn_instance *fi)
{
    struct stdflib_shared *sh;
    const char *p;
    int32_t nums[2];
    unsigned char *key;
    size_t n;
    int err;

    if (fi->nargs < 3)
        return MFUNCT_INVALID_ARGUMENT;
    p = fi->args[0].v.s;
    if (p == NULL || p[0] == '\0') {
        stdflib_errmsg(fi, "STR_SEARCH needs a non-empty pattern");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    if (fi->args[1].v.i < 0) {
        stdflib_errmsg(fi, "STR_SEARCH: offset %d is negative", (int)fi->args[1].v.i);
        return MFUNCT_INVALID_ARGUMENT_2;
    }
    if (fi->args[2].v.i < 0) {
        stdflib_errmsg(fi, "STR_SEARCH: depth %d is negative", (int)fi->args[2].v.i);
        return MFUNCT_INVALID_ARGUMENT_3;
    }

    /* Registry key: offset, depth, then the pattern text as given. */
    n = strlen(p);
    key = malloc(sizeof(nums) + n);
    if (key == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    nums[0] = fi->args[1].v.i;
    nums[1] = fi->args[2].v.i;
    memcpy(key, nums, sizeof(nums));
    memcpy(key + sizeof(nums), p, n);
    err = stdflib_shared_get(fi, STDFLIB_SHARED_STR_SEARCH, key, sizeof(nums) + n, search_build,
                             search_destroy, &sh);
    free(key);
    if (err != 0)
        return err;
    fi->priv = sh;
    fi->result_size = 0;
    return 0;
}

/* Returns 1 if any alternative occurs in the search window of the packet, 0 if not. */
int stdflib_str_search_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct stdflib_shared *sh = fi->priv;
    const struct str_search *s;
    const uint8_t *base;
    uint32_t len, k;
    int verdict = stdflib_shared_cached(sh, pkt);

    if (verdict >= 0)
        return verdict;
    s = sh->obj;
    verdict = 0;
    if (s->offset < pkt->caplen) {
        base = pkt->data + s->offset;
        len = pkt->caplen - s->offset;
        if (s->depth != 0 && s->depth < len)
            len = s->depth;
        for (k = 0; k < s->nalts; k++) {
            const struct search_alt *a = &s->alts[k];

            if (a->len <= len && memmem(base, len, s->bytes + a->off, a->len) != NULL) {
                verdict = 1;
                break;
            }
        }
    }
    return stdflib_shared_store(sh, pkt, verdict);
}

void stdflib_str_search_cleanup(struct mapi_fn_instance *fi)
{
    stdflib_shared_put(fi->priv);
    fi->priv = NULL;
}
