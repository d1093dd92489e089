/*
 * flib/anonflib/anonflib.h - internal header of anonflib, the anonymisation library
 * (ANONYMIZE and PRINT_PACKET).
 *
 * Not installed. The parts:
 *   anonflib.c   the function table, ANONYMIZE's instance/process/cleanup
 *   policy.c     parsing of one rule "PROTOCOL,FIELD,FUNCTION[,PARAMS...]" into struct
 *                anon_rule (errors 7001..7004), and the key file
 *   fields.c     locating a field in a decoded packet (IPv4/IPv6/TCP/UDP/ICMP headers) and
 *                the HTTP and FTP parsers over the TCP payload
 *   functions.c  the anonymisation functions, the resize helper and the checksums
 *   maps.c       the per-flow context shared by the rules of one flow (MAP tables, the
 *                PREFIX_PRESERVING_MAP tries), and the hash tables
 *   hashed.c     HASHED (OpenSSL EVP digests and ciphers, CRC32)
 *   print.c      PRINT_PACKET
 * All names declared here are hidden (ANONFLIB_HIDDEN): the .so exports mapi_flib_entry only.
 */
#ifndef ANONFLIB_ANONFLIB_H
#define ANONFLIB_ANONFLIB_H

#include <stddef.h>
#include <stdint.h>

#include "mapi/errors.h"
#include "mapi/flib.h"

#define ANONFLIB_HIDDEN __attribute__((visibility("hidden")))

/* Protocols of a rule. */
enum anon_proto { ANON_P_IP = 1, ANON_P_TCP, ANON_P_UDP, ANON_P_ICMP, ANON_P_HTTP, ANON_P_FTP };

/* Where a field lives (which protocols may name it). */
enum anon_scope {
    ANON_S_COMMON = 1, /* PAYLOAD, CHECKSUM: meaning depends on the rule's protocol */
    ANON_S_IP,         /* reachable from every protocol */
    ANON_S_PORTS,      /* TCP, UDP, HTTP, FTP */
    ANON_S_TCP,        /* TCP, HTTP, FTP */
    ANON_S_UDP,
    ANON_S_ICMP,
    ANON_S_HTTP,
    ANON_S_FTP,
};

/* What kind of value a field holds (decides which functions apply). */
enum anon_kind {
    ANON_K_NUM = 1, /* a fixed-size header number (<= 32 bits) */
    ANON_K_ADDR,    /* SRC_IP / DST_IP: 4 or 16 bytes */
    ANON_K_OPT,     /* IPv4 OPTIONS, TCP_OPTIONS: fixed region, may shrink by 4-byte units */
    ANON_K_VAR,     /* PAYLOAD, HTTP and FTP values: resizable byte strings */
};

/* MAP tables (one per class, shared by all rules of a flow). */
enum anon_mapclass {
    ANON_MAP_NONE = 0,
    ANON_MAP_IP4,
    ANON_MAP_IP6,
    ANON_MAP_PORT,
    ANON_MAP_4,
    ANON_MAP_2,
    ANON_MAP_1,
    ANON_MAP_NCLASSES
};

/* Fields. */
enum anon_field {
    ANON_F_PAYLOAD = 1,
    ANON_F_CHECKSUM,
    ANON_F_SRC_IP,
    ANON_F_DST_IP,
    ANON_F_TTL,
    ANON_F_TOS,
    ANON_F_ID,
    ANON_F_IP_PROTO,
    ANON_F_VERSION,
    ANON_F_IHL,
    ANON_F_OPTIONS,
    ANON_F_FRAGMENT_OFFSET,
    ANON_F_PACKET_LENGTH,
    ANON_F_FLOW,
    ANON_F_SRC_PORT,
    ANON_F_DST_PORT,
    ANON_F_SEQUENCE_NUMBER,
    ANON_F_ACK_NUMBER,
    ANON_F_FLAGS,
    ANON_F_WINDOW,
    ANON_F_TCP_OPTIONS,
    ANON_F_URGENT_POINTER,
    ANON_F_OFFSET_AND_RESERVED,
    ANON_F_UDP_DATAGRAM_LENGTH,
    ANON_F_TYPE,
    ANON_F_CODE,
    /* HTTP: special parts of the start line */
    ANON_F_HTTP_VERSION,
    ANON_F_METHOD,
    ANON_F_URI,
    ANON_F_RESPONSE_CODE,
    ANON_F_RESP_CODE_DESCR,
    ANON_F_HTTP_HEADER, /* every header field: struct anon_field_def.hdr names it */
    /* FTP */
    ANON_F_FTP_COMMAND, /* the argument of the command struct anon_field_def.hdr */
    ANON_F_FTP_RESPONSE_CODE,
    ANON_F_FTP_RESPONSE_ARG,
};

struct anon_field_def {
    const char *name; /* as written in a rule (upper case) */
    int field;        /* enum anon_field */
    int scope;        /* enum anon_scope */
    int kind;         /* enum anon_kind */
    int mapclass;     /* enum anon_mapclass for MAP (ANON_MAP_NONE: MAP refused) */
    const char *hdr;  /* HTTP header name / FTP command, else NULL */
};

/* The table of all fields, terminated by name == NULL (fields.c). */
ANONFLIB_HIDDEN extern const struct anon_field_def anon_fields[];

/* Functions. */
enum anon_fn {
    ANON_FN_UNCHANGED = 1,
    ANON_FN_MAP,
    ANON_FN_MAP_DISTRIBUTION,
    ANON_FN_STRIP,
    ANON_FN_RANDOM,
    ANON_FN_FILENAME_RANDOM,
    ANON_FN_HASHED,
    ANON_FN_PATTERN_FILL,
    ANON_FN_ZERO,
    ANON_FN_REPLACE,
    ANON_FN_PREFIX_PRESERVING,
    ANON_FN_PREFIX_PRESERVING_MAP,
    ANON_FN_REGEXP,
    ANON_FN_CHECKSUM_ADJUST,
};

enum anon_hash_alg {
    ANON_H_MD5 = 1,
    ANON_H_SHA1,
    ANON_H_SHA256,
    ANON_H_CRC32,
    ANON_H_DES,
    ANON_H_3DES,
    ANON_H_AES,
};
enum anon_hash_pad { ANON_PAD_ZERO = 1, ANON_PAD_STRIP_REST, ANON_PAD_UNCHANGED };

struct anon_flowctx; /* maps.c */
struct anon_table;   /* maps.c */
struct cryptopan;

/* Size of the PREFIX_PRESERVING caches (direct mapped, entries). */
#define ANON_PP_CACHE4 4096u
#define ANON_PP_CACHE6 1024u

struct anon_pp_cache4 {
    uint32_t in, out; /* network byte order; in == out == 0 means empty (0.0.0.0 not cached) */
};
struct anon_pp_cache6 {
    uint8_t in[16], out[16];
    uint8_t valid;
};

/* One parsed rule: the state of one ANONYMIZE instance. */
struct anon_rule {
    int proto;                        /* enum anon_proto */
    const struct anon_field_def *fd;  /* the field */
    int fn;                           /* enum anon_fn */
    struct mapi_fn_instance *fi;      /* back pointer (host, errmsg) */
    const struct mapi_host_api *host; /* fi->host */

    /* parameters */
    uint32_t strip_keep;       /* STRIP */
    int dist_gauss;            /* MAP_DISTRIBUTION: 0 UNIFORM(a,b), 1 GAUSSIAN(mean,sd) */
    double dist_a, dist_b;     /* MAP_DISTRIBUTION */
    int hash_alg, hash_pad;    /* HASHED */
    int fill_int;              /* PATTERN_FILL: 1 INTEGER, 0 STR */
    uint32_t fill_value;       /* PATTERN_FILL INTEGER */
    char *text;                /* PATTERN_FILL STR / REPLACE text (owned) */
    size_t text_len;           /* its length */
    void *re;                  /* REGEXP: pcre2_code_8 * */
    void *re_md;               /* REGEXP: pcre2_match_data_8 * */
    int re_n;                  /* REGEXP: number of replacements */
    char **re_rep;             /* REGEXP: re_n replacements, NULL = keep the group (owned) */
    void *re_mc;               /* REGEXP: pcre2_match_context_8 * with the limits */
    uint32_t re_limit;         /* REGEXP: match limit per start position (regexp_match_limit) */
    uint64_t re_heap;          /* REGEXP: bytes of backtracking memory (regexp_heap_limit) */
    uint64_t re_time_ns;       /* REGEXP: time per packet (regexp_time_limit), 0 = none */
    uint64_t re_t0;            /* REGEXP, per packet: clock at the second search call */
    uint64_t re_c0;            /* REGEXP, per packet: thread CPU time once re_t0 + limit passed */
    uint32_t re_calls;         /* REGEXP, per packet: pcre2_match calls so far */
    int re_stop;               /* REGEXP, per packet: a limit was reached, search no more */
    uint64_t re_stopped;       /* REGEXP: packets on which a limit stopped the search */
    uint8_t key[32];           /* HASHED ciphers, PREFIX_PRESERVING */
    struct cryptopan *cp;      /* PREFIX_PRESERVING */
    struct anon_pp_cache4 *c4; /* PREFIX_PRESERVING caches */
    struct anon_pp_cache6 *c6;
    void *hash_state;            /* HASHED: struct anon_hash (hashed.c) */
    struct anon_table *dist_tab; /* MAP_DISTRIBUTION: value -> drawn value */
    struct anon_table *dist_tab6;
    uint64_t rng;             /* splitmix64 state (RANDOM, FILENAME_RANDOM, distributions) */
    struct anon_flowctx *ctx; /* shared per flow (MAP, PREFIX_PRESERVING_MAP) */
    uint8_t *scratch;         /* MAPI_PKT_ROOM bytes for functions that build a new value */
};

/* ---- policy.c ---- */
/*
 * Parses s ("PROTOCOL,FIELD,FUNCTION[,PARAMS...]", case-insensitive, blanks around the
 * commas allowed) into r (zeroed by the caller; r->fi and r->host set). Returns 0, or 7001
 * (protocol), 7002 (field, or a field the function does not apply to), 7003 (function), 7004
 * (parameters, or no key), 3084 (memory), with fi->errmsg naming the bad part.
 */
ANONFLIB_HIDDEN int anon_parse_rule(struct anon_rule *r, const char *s);
/* Frees what a rule owns (safe on a partially built rule). */
ANONFLIB_HIDDEN void anon_rule_free(struct anon_rule *r);
/* Copies a message into fi->errmsg (truncated, always terminated). */
ANONFLIB_HIDDEN void anon_errmsg(struct mapi_fn_instance *fi, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Reads the default key from the file named by mapi.conf's anon_key_file into key. The file
 * holds the key itself: when it has 32 bytes or more, its first 32 bytes are the key (the
 * raw key file of traceanon -f); a shorter file is a string key (one trailing "\n" or "\r\n"
 * removed) padded with NUL bytes, as a key given in the rule. Returns 0, or -1 with
 * fi->errmsg set (no anon_key_file configured, the flow's owner is neither root nor in
 * anon_key_group (host->may_use_site_key), or the file cannot be read or is empty).
 */
ANONFLIB_HIDDEN int anon_default_key(struct mapi_fn_instance *fi, uint8_t key[32]);

/* ---- fields.c ---- */
/* A located field: bytes [off, off+len) of pkt->data. For ANON_K_NUM, the field is the bits
 * `mask` of the big-endian number formed by those len (<= 4) bytes. */
struct anon_loc {
    uint32_t off;
    uint32_t len;
    uint32_t mask; /* ANON_K_NUM: the field's bits in the window (already shifted) */
    uint8_t shift; /* ANON_K_NUM: value = (window & mask) >> shift */
    uint8_t kind;  /* enum anon_kind */
    uint8_t text;  /* 1 for HTTP/FTP values (HASHED writes hex there) */
};

#define ANON_MAX_LOCS 128 /* occurrences of one field in one packet (HTTP pipelining) */

/* Whether the packet belongs to protocol proto (enum anon_proto); see fields.c for HTTP/FTP. */
ANONFLIB_HIDDEN int anon_pkt_is(const struct mapi_pkt *pkt, int proto);
/* End of the IP datagram inside the capture: min(caplen, l3_off + IP length). 0 if not IP. */
ANONFLIB_HIDDEN uint32_t anon_ip_end(const struct mapi_pkt *pkt);
/* Offset of the fragment extension header of an IPv6 packet (walking the extension headers
 * inside the capture), or 0 if it has none. */
ANONFLIB_HIDDEN uint32_t anon_ip6_frag_header(const struct mapi_pkt *pkt);
/*
 * Locates the rule's field in pkt (which anon_pkt_is(rule->proto) accepted). Fills locs in
 * increasing offset order, returns their number (0: absent or not completely captured; HTTP
 * and FTP fields may occur several times in a segment).
 */
ANONFLIB_HIDDEN int anon_locate(const struct anon_rule *r, const struct mapi_pkt *pkt,
                                struct anon_loc *locs, int max);

/* ---- functions.c ---- */
/* Applies the rule to the packet (which anon_pkt_is accepted). Returns 1 (the packet goes on). */
ANONFLIB_HIDDEN int anon_apply(struct anon_rule *r, struct mapi_pkt *pkt);
/*
 * Replaces the len bytes at off with newlen bytes from src (src may be NULL: the new bytes are
 * left as they are, i.e. the old content moves with the rest). Shifts the rest of the capture,
 * fixes caplen, wlen, the IPv4 total length, the IPv6 payload length and the UDP length. Does
 * not redecode (the caller does, once). Returns 0, or -1 if the packet would outgrow
 * MAPI_PKT_ROOM (nothing changed).
 */
ANONFLIB_HIDDEN int anon_resize(struct mapi_pkt *pkt, uint32_t off, uint32_t len, const void *src,
                                uint32_t newlen);
/* Recomputes the IPv4 header checksum and the TCP/UDP/ICMP/ICMPv6 checksum (the latter only
 * when the whole datagram was captured and it is not a fragment). */
ANONFLIB_HIDDEN void anon_fix_checksums(struct mapi_pkt *pkt);
/* splitmix64 */
static inline uint64_t anon_rand64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* A seed for a per-instance generator (getrandom, else clock and address). */
ANONFLIB_HIDDEN uint64_t anon_seed(const void *salt);

/* ---- maps.c ---- */
/* Takes a reference to the context of flow_id (creating it). NULL if out of memory. */
ANONFLIB_HIDDEN struct anon_flowctx *anon_ctx_get(int flow_id);
ANONFLIB_HIDDEN void anon_ctx_put(struct anon_flowctx *ctx);
/* MAP: the number (1, 2, ...) of key in the flow's table of class cls. 0 if out of memory. */
ANONFLIB_HIDDEN uint32_t anon_ctx_map(struct anon_flowctx *ctx, int cls, const uint8_t *key);
/* PREFIX_PRESERVING_MAP of an address of bits 32 or 128 (in place). Returns 0 or -1 (memory). */
ANONFLIB_HIDDEN int anon_ctx_ppmap(struct anon_flowctx *ctx, uint8_t *addr, int bits);
/* A hash table from keys of keylen bytes (<= 16) to uint32_t values. */
ANONFLIB_HIDDEN struct anon_table *anon_table_new(unsigned keylen);
ANONFLIB_HIDDEN void anon_table_free(struct anon_table *t);
/* Looks key up; if absent and make is set, inserts it with value *val. Returns 1 if found
 * (*val set), 0 if inserted, -1 if absent and not made (or out of memory). */
ANONFLIB_HIDDEN int anon_table_get(struct anon_table *t, const uint8_t *key, uint32_t *val,
                                   int make);

/* ---- hashed.c ---- */
/* Prepares HASHED for r (alg, key). Returns 0 or 7004 / 3084 with errmsg. */
ANONFLIB_HIDDEN int anon_hash_init(struct anon_rule *r);
ANONFLIB_HIDDEN void anon_hash_free(struct anon_rule *r);
/* Digest (or ciphertext) of in[0..len) into out (room for len + 64 bytes). Returns its
 * length, or -1 on an OpenSSL failure. */
ANONFLIB_HIDDEN int anon_hash(struct anon_rule *r, const uint8_t *in, size_t len, uint8_t *out);

/* ---- print.c ---- */
ANONFLIB_HIDDEN int anon_print_instance(struct mapi_fn_instance *fi);
ANONFLIB_HIDDEN int anon_print_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt);
ANONFLIB_HIDDEN void anon_print_cleanup(struct mapi_fn_instance *fi);
/* Formats a one-line decode of pkt (like tcpdump -n -v) into buf. Returns the length. */
ANONFLIB_HIDDEN size_t anon_format_packet(const struct mapi_pkt *pkt, char *buf, size_t size);

#endif /* ANONFLIB_ANONFLIB_H */
