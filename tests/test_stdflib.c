/*
 * tests/test_stdflib.c - unit test of stdflib.so, the standard function library.
 *
 * Usage: test_stdflib path/to/stdflib.so
 *
 * Loads the plugin the way mapid does (dlopen, the one exported entry symbol, ABI checks),
 * then drives instance/init/process/reset/cleanup of each function directly with hand-built
 * struct mapi_pkt values and a fake host API whose ring_put counts its calls. Every frame is
 * copied into a heap block of exactly caplen bytes, so a run under AddressSanitizer catches
 * any read past data + caplen.
 *
 * The shared-evaluation checks are black-box where possible: after one instance has judged a
 * packet, the frame is changed in place (same pointer, seq and caplen); an instance sharing
 * the cached verdict must repeat the old answer, while a re-evaluation would give the new
 * one. They also read the evaluation counter of the shared entry (fi->priv points at a
 * struct stdflib_shared, from the library's internal header), which counts real evaluations.
 *
 * Exit status 0 if every check passed, 1 otherwise.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flib/stdflib/stdflib.h"
#include "mapi/errors.h"
#include "mapi/flib.h"
#include "mapi/sample.h"

static int checks, failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        checks++;                                                                                  \
        if (a_ != b_) {                                                                            \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, a_, b_);                                                               \
        }                                                                                          \
    } while (0)

/* ---- fake host ---------------------------------------------------------------------------- */

static int ring_puts;
static const struct mapi_fn_instance *ring_last_fi;
static const struct mapi_pkt *ring_last_pkt;

static int fake_ring_put(struct mapi_fn_instance *fi, const struct mapi_pkt *pkt)
{
    ring_puts++;
    ring_last_fi = fi;
    ring_last_pkt = pkt;
    return 1;
}

static void fake_log(int level, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "[log %d] ", level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const struct mapi_host_api host = {.ring_put = fake_ring_put, .log = fake_log};

/* ---- instances ---------------------------------------------------------------------------- */

static const struct mapi_flib *lib;

struct tinst {
    struct mapi_fn_instance fi;
    struct mapi_arg args[8];
    uint64_t result[8];
    uint32_t result_seq;
    int live; /* instance() succeeded, cleanup() pending */
};

static uint32_t apply_snaplen = 65535; /* snaplen of the device apply() pretends */

static const struct mapi_fn_def *find_fn(const char *name)
{
    for (const struct mapi_fn_def *d = lib->functions; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

/*
 * Applies function `name` on device dev_id (Ethernet, snaplen 65535) with arguments given
 * as varargs per its argdescr ('s': const char *, 'i': int), then runs init() as connect
 * would. Returns the error of instance() or init(), 0 on success.
 */
static int apply(struct tinst *t, const char *name, int dev_id, ...)
{
    const struct mapi_fn_def *d = find_fn(name);
    va_list ap;
    int err, n;

    memset(t, 0, sizeof(*t));
    if (d == NULL) {
        fprintf(stderr, "function %s not found\n", name);
        return -1;
    }
    n = (int)strlen(d->argdescr);
    va_start(ap, dev_id);
    for (int k = 0; k < n; k++) {
        t->args[k].type = d->argdescr[k];
        if (d->argdescr[k] == 's')
            t->args[k].v.s = va_arg(ap, const char *);
        else
            t->args[k].v.i = va_arg(ap, int);
    }
    va_end(ap);
    t->fi.def = d;
    t->fi.host = &host;
    t->fi.args = t->args;
    t->fi.nargs = n;
    t->fi.fid = 1;
    t->fi.flow_id = 1;
    t->fi.dev_id = dev_id;
    t->fi.linktype = 1; /* DLT_EN10MB */
    t->fi.snaplen = apply_snaplen;
    t->fi.result_seq = &t->result_seq;
    err = d->instance(&t->fi);
    if (err != 0)
        return err;
    t->live = 1;
    if (t->fi.result_size > sizeof(t->result)) {
        fprintf(stderr, "%s: result_size %u too big for the test\n", name, t->fi.result_size);
        return -1;
    }
    t->fi.result = t->fi.result_size > 0 ? t->result : NULL;
    if (d->init != NULL && (err = d->init(&t->fi)) != 0)
        return err;
    return 0;
}

static void close_inst(struct tinst *t)
{
    if (t->live && t->fi.def->cleanup != NULL)
        t->fi.def->cleanup(&t->fi);
    t->live = 0;
}

/* Applies, checks the expected code, and cleans up at once. */
static int apply_code(const char *name, ...)
{
    const struct mapi_fn_def *d = find_fn(name);
    struct tinst t;
    va_list ap;
    const char *s = NULL;
    int i1 = 0, i2 = 0, err;

    /* The functions tested this way take at most (s, i, i) or (i, i). */
    va_start(ap, name);
    if (d->argdescr[0] == 's') {
        s = va_arg(ap, const char *);
        if (d->argdescr[1] != '\0') {
            i1 = va_arg(ap, int);
            i2 = va_arg(ap, int);
        }
        va_end(ap);
        err = d->argdescr[1] != '\0' ? apply(&t, name, 99, s, i1, i2) : apply(&t, name, 99, s);
    } else {
        i1 = va_arg(ap, int);
        if (d->argdescr[1] != '\0')
            i2 = va_arg(ap, int);
        va_end(ap);
        err = apply(&t, name, 99, i1, i2);
    }
    if (err != 0 && t.fi.errmsg[0] == '\0' && err != MFUNCT_INVALID_ARGUMENT)
        fprintf(stderr, "note: %s returned %d without a message\n", name, err);
    close_inst(&t);
    return err;
}

/* ---- packets ------------------------------------------------------------------------------ */

static uint64_t next_seq = 1;

/* A packet whose data is a heap copy of exactly caplen bytes of frame. Free with pkt_free. */
static struct mapi_pkt pkt_make(const uint8_t *frame, uint32_t caplen, uint32_t wlen)
{
    struct mapi_pkt p;
    uint8_t *buf = malloc(caplen > 0 ? caplen : 1);

    memset(&p, 0, sizeof(p));
    memcpy(buf, frame, caplen);
    p.data = buf;
    p.caplen = caplen;
    p.wlen = wlen;
    p.seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);
    p.linktype = 1;
    p.l3_off = p.l4_off = p.payload_off = MAPI_OFF_NONE;
    return p;
}

static void pkt_free(struct mapi_pkt *p)
{
    free((void *)p->data);
    p->data = NULL;
}

static int run(struct tinst *t, struct mapi_pkt *p)
{
    return t->fi.def->process(&t->fi, p);
}

/* Runs on a fresh packet (new seq) built from frame[0..caplen). */
static int run_frame(struct tinst *t, const uint8_t *frame, uint32_t caplen)
{
    struct mapi_pkt p = pkt_make(frame, caplen, caplen);
    int r = run(t, &p);

    pkt_free(&p);
    return r;
}

/* Ethernet / IPv4 / TCP 12345 -> 80 with an HTTP request as payload. */
static uint8_t http_frame[128];
static uint32_t http_len;
#define HTTP_PAYLOAD "GET /a|b\\c HTTP/1.0\r\n\r\n"
#define ETH_IP_TCP 54 /* header bytes before the payload */

static void build_http_frame(void)
{
    static const uint8_t hdr[ETH_IP_TCP] = {
        /* Ethernet: dst, src, IPv4 */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
        /* IPv4: v4 ihl 5, tos, total length (patched), id, DF, ttl 64, TCP, csum, addrs */
        0x45, 0x00, 0x00, 0x00, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2,
        /* TCP: sport 12345, dport 80, seq, ack, data offset 5, flags PSH|ACK, win, csum, urg */
        0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0};
    size_t plen = strlen(HTTP_PAYLOAD);

    memcpy(http_frame, hdr, sizeof(hdr));
    memcpy(http_frame + ETH_IP_TCP, HTTP_PAYLOAD, plen);
    http_len = (uint32_t)(ETH_IP_TCP + plen);
    http_frame[16] = (uint8_t)((http_len - 14) >> 8);
    http_frame[17] = (uint8_t)(http_len - 14);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_abi(void *h)
{
    static const struct {
        const char *name, *argdescr;
        uint32_t flags;
    } expect[] = {
        {"BPF_FILTER", "s", MAPI_FN_FILTERS | MAPI_FN_SHAREABLE | MAPI_FN_RAW},
        {"PKT_COUNTER", "", MAPI_FN_SHAREABLE | MAPI_FN_RAW},
        {"BYTE_COUNTER", "", MAPI_FN_SHAREABLE | MAPI_FN_RAW},
        {"STR_SEARCH", "sii", MAPI_FN_FILTERS | MAPI_FN_SHAREABLE | MAPI_FN_RAW},
        {"SAMPLE", "ii", MAPI_FN_FILTERS | MAPI_FN_RAW},
        {"TO_BUFFER", "i", MAPI_FN_RING | MAPI_FN_RAW},
    };
    int n = 0;

    CHECK_EQ(lib->abi_version, MAPI_FLIB_ABI_VERSION);
    CHECK_EQ(lib->struct_size, sizeof(struct mapi_flib));
    CHECK(lib->name != NULL && strcmp(lib->name, "stdflib") == 0);
    CHECK(lib->descr != NULL && lib->descr[0] != '\0');
    for (const struct mapi_fn_def *d = lib->functions; d->name != NULL; d++) {
        n++;
        CHECK(d->descr != NULL && d->descr[0] != '\0' && strchr(d->descr, '\n') == NULL);
        CHECK(d->argdescr != NULL);
        CHECK(d->instance != NULL && d->process != NULL);
    }
    CHECK(n >= 6);
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        const struct mapi_fn_def *d = find_fn(expect[k].name);

        CHECK(d != NULL);
        if (d == NULL)
            continue;
        CHECK(strcmp(d->argdescr, expect[k].argdescr) == 0);
        CHECK_EQ(d->flags, expect[k].flags);
    }
    CHECK(find_fn("NO_SUCH_FUNCTION") == NULL);
    /* Only the entry point is exported. */
    CHECK(dlsym(h, "stdflib_shared_get") == NULL);
    CHECK(dlsym(h, "stdflib_bpf_process") == NULL);
}

static void test_bpf(void)
{
    struct tinst t;
    uint8_t udp[128];

    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "tcp and dst port 80"), 0);
    CHECK_EQ(t.fi.result_size, 0);
    CHECK_EQ(run_frame(&t, http_frame, http_len), 1);
    CHECK_EQ(run_frame(&t, http_frame, 37), 0); /* cut inside the destination port */
    CHECK_EQ(run_frame(&t, http_frame, 14), 0);
    CHECK_EQ(run_frame(&t, http_frame, 1), 0);
    memcpy(udp, http_frame, http_len);
    udp[23] = 17; /* UDP */
    CHECK_EQ(run_frame(&t, udp, http_len), 0);
    close_inst(&t);

    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "udp"), 0);
    CHECK_EQ(run_frame(&t, http_frame, http_len), 0);
    CHECK_EQ(run_frame(&t, udp, http_len), 1);
    close_inst(&t);

    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "tcp and dst port 81"), 0);
    CHECK_EQ(run_frame(&t, http_frame, http_len), 0);
    close_inst(&t);

    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "src host 10.0.0.1 and tcp[13] & 8 != 0"), 0);
    CHECK_EQ(run_frame(&t, http_frame, http_len), 1);
    close_inst(&t);

    CHECK_EQ(apply(&t, "BPF_FILTER", 1, ""), MFUNCT_INVALID_ARGUMENT_1);
    close_inst(&t);
    CHECK_EQ(apply(&t, "BPF_FILTER", 1, (const char *)NULL), MFUNCT_INVALID_ARGUMENT_1);
    close_inst(&t);
    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "tcp and and"), PCAP_BPF_ERR);
    CHECK(t.fi.errmsg[0] != '\0');
    close_inst(&t);
    CHECK_EQ(apply(&t, "BPF_FILTER", 1, "no such primitive"), PCAP_BPF_ERR);
    CHECK(t.fi.errmsg[0] != '\0');
    close_inst(&t);
}

static void test_counters(void)
{
    struct tinst pc, bc;
    const uint32_t wlens[] = {60, 1514, 100, 9000};
    uint64_t sum = 0;

    CHECK_EQ(apply(&pc, "PKT_COUNTER", 1), 0);
    CHECK_EQ(apply(&bc, "BYTE_COUNTER", 1), 0);
    CHECK_EQ(pc.fi.result_size, 8);
    CHECK_EQ(bc.fi.result_size, 8);
    for (size_t k = 0; k < sizeof(wlens) / sizeof(wlens[0]); k++) {
        /* BYTE_COUNTER counts the length on the wire, not the captured bytes. */
        struct mapi_pkt p = pkt_make(http_frame, 60, wlens[k]);

        CHECK_EQ(run(&pc, &p), 1);
        CHECK_EQ(run(&bc, &p), 1);
        sum += wlens[k];
        pkt_free(&p);
    }
    CHECK_EQ(pc.result[0], 4);
    CHECK_EQ(bc.result[0], sum);
    CHECK_EQ(pc.result_seq, 8); /* two increments per update, even = stable */
    CHECK(pc.fi.def->reset != NULL && bc.fi.def->reset != NULL);
    pc.fi.def->reset(&pc.fi);
    bc.fi.def->reset(&bc.fi);
    CHECK_EQ(pc.result[0], 0);
    CHECK_EQ(bc.result[0], 0);
    CHECK_EQ(pc.result_seq % 2, 0);
    CHECK_EQ(run_frame(&pc, http_frame, http_len), 1);
    CHECK_EQ(pc.result[0], 1);
    close_inst(&pc);
    close_inst(&bc);
}

/* STR_SEARCH on the HTTP frame, whole frame (offset 0, depth 0). */
static int search_http(const char *pattern)
{
    struct tinst t;
    int r;

    if (apply(&t, "STR_SEARCH", 1, pattern, 0, 0) != 0) {
        fprintf(stderr, "STR_SEARCH \"%s\": %s\n", pattern, t.fi.errmsg);
        close_inst(&t);
        return -1;
    }
    r = run_frame(&t, http_frame, http_len);
    close_inst(&t);
    return r;
}

static int search_window(const uint8_t *frame, uint32_t caplen, const char *pattern, int offset,
                         int depth)
{
    struct tinst t;
    int r;

    if (apply(&t, "STR_SEARCH", 1, pattern, offset, depth) != 0) {
        close_inst(&t);
        return -1;
    }
    r = run_frame(&t, frame, caplen);
    close_inst(&t);
    return r;
}

static void test_str_search(void)
{
    uint8_t frame[64];

    /* Plain text, hex, mixed, escapes, alternatives. */
    CHECK_EQ(search_http("GET"), 1);
    CHECK_EQ(search_http("POST"), 0);
    CHECK_EQ(search_http("|47 45 54|"), 1);
    CHECK_EQ(search_http("|474554|"), 1);
    CHECK_EQ(search_http("| 47 4 5 54 |"), 1); /* spaces ignored anywhere in a block */
    CHECK_EQ(search_http("|47|E|54| /"), 1);
    CHECK_EQ(search_http("|0d 0a 0d 0a|"), 1);
    CHECK_EQ(search_http("|00 50|"), 1);  /* the TCP destination port */
    CHECK_EQ(search_http("|47||45|"), 1); /* adjacent hex blocks join: "GE" */
    CHECK_EQ(search_http("|47||58|"), 0); /* "GX" */
    CHECK_EQ(search_http("|47|E"), 1);
    CHECK_EQ(search_http("|58||||45|"), 1); /* "X" or "E" */
    CHECK_EQ(search_http("|58||||5a|"), 0); /* "X" or "Z" */
    CHECK_EQ(search_http("a\\|b"), 1);      /* literal pipe */
    CHECK_EQ(search_http("a|7c|b"), 1);
    CHECK_EQ(search_http("b\\\\c"), 1); /* literal backslash */
    CHECK_EQ(search_http("a\\|c"), 0);
    CHECK_EQ(search_http("POST||GET"), 1);
    CHECK_EQ(search_http("GET||POST"), 1);
    CHECK_EQ(search_http("POST||PUT||HEAD"), 0);
    CHECK_EQ(search_http("POST||PUT||HTTP/1.0"), 1);
    CHECK_EQ(search_http("|50 4f|ST||GE|54|"), 1);
    CHECK_EQ(search_http("x||a\\|b"), 1);
    CHECK_EQ(search_http("|41||||48 54|"), 1); /* "A" or "HT" */

    /* Errors. */
    CHECK_EQ(apply_code("STR_SEARCH", "", 0, 0), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("STR_SEARCH", (const char *)NULL, 0, 0), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("STR_SEARCH", "abc", -1, 0), MFUNCT_INVALID_ARGUMENT_2);
    CHECK_EQ(apply_code("STR_SEARCH", "abc", 0, -1), MFUNCT_INVALID_ARGUMENT_3);
    CHECK_EQ(apply_code("STR_SEARCH", "|41", 0, 0), MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "ab|41 42", 0, 0), MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "A|||B", 0, 0), MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "|4G|", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "|414|", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "| |", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "A||", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "||A", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "A||||B", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "ab\\", 0, 0), MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING);
    CHECK_EQ(apply_code("STR_SEARCH", "abc", 0, 2), MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "|41 42 43|", 0, 2),
             MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "ab||abcd", 0, 3), MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR);
    CHECK_EQ(apply_code("STR_SEARCH", "abc", 0, 3), 0);   /* depth == pattern length is fine */
    CHECK_EQ(apply_code("STR_SEARCH", "a\\|c", 0, 3), 0); /* the escape counts one byte */

    /* Window boundaries: "XYZ" at bytes 40..42 of a 64-byte frame, "END" at 61..63. */
    memset(frame, '.', sizeof(frame));
    memcpy(frame + 40, "XYZ", 3);
    memcpy(frame + 61, "END", 3);
    CHECK_EQ(search_window(frame, 64, "XYZ", 0, 0), 1);
    CHECK_EQ(search_window(frame, 64, "XYZ", 0, 43), 1); /* ends exactly at the window end */
    CHECK_EQ(search_window(frame, 64, "XYZ", 0, 42), 0); /* one byte beyond */
    CHECK_EQ(search_window(frame, 64, "XYZ", 40, 3), 1);
    CHECK_EQ(search_window(frame, 64, "XYZ", 40, 0), 1);
    CHECK_EQ(search_window(frame, 64, "XYZ", 41, 0), 0); /* starts before the window */
    CHECK_EQ(search_window(frame, 64, "XYZ", 37, 6), 1);
    CHECK_EQ(search_window(frame, 64, "XYZ", 37, 5), 0);
    CHECK_EQ(search_window(frame, 64, "END", 0, 0), 1);     /* last bytes of caplen */
    CHECK_EQ(search_window(frame, 63, "END", 0, 0), 0);     /* one byte beyond caplen */
    CHECK_EQ(search_window(frame, 64, "END", 61, 1000), 1); /* depth clipped at caplen */
    CHECK_EQ(search_window(frame, 63, "END", 61, 1000), 0);
    CHECK_EQ(search_window(frame, 64, "D", 63, 0), 1);
    CHECK_EQ(search_window(frame, 64, "D", 64, 0), 0);   /* offset == caplen */
    CHECK_EQ(search_window(frame, 64, "D", 1000, 0), 0); /* offset > caplen */
    CHECK_EQ(search_window(frame, 64, "NOPE||END", 50, 14), 1);
    CHECK_EQ(search_window(frame, 64, "NOPE||END", 50, 13), 0);
}

static void test_sample(void)
{
    struct tinst t, u;
    int passed, same;

    /* PERIODIC: exactly the value-th, 2*value-th, ... packet. */
    CHECK_EQ(apply(&t, "SAMPLE", 1, 3, PERIODIC), 0);
    for (int k = 1; k <= 30; k++)
        CHECK_EQ(run_frame(&t, http_frame, 60), k % 3 == 0);
    close_inst(&t);
    CHECK_EQ(apply(&t, "SAMPLE", 1, 1, PERIODIC), 0);
    for (int k = 1; k <= 5; k++)
        CHECK_EQ(run_frame(&t, http_frame, 60), 1);
    close_inst(&t);
    CHECK_EQ(apply(&t, "SAMPLE", 1, 1000, DETERMINISTIC), 0);
    passed = 0;
    for (int k = 1; k <= 100000; k++)
        passed += run_frame(&t, http_frame, 60);
    CHECK_EQ(passed, 100);
    close_inst(&t);

    /* PROBABILISTIC: 25 % of 100000 is 25000 with a standard deviation of 137. */
    CHECK_EQ(apply(&t, "SAMPLE", 1, 25, PROBABILISTIC), 0);
    passed = 0;
    for (int k = 0; k < 100000; k++)
        passed += run_frame(&t, http_frame, 60);
    CHECK(passed > 25000 - 800 && passed < 25000 + 800);
    close_inst(&t);
    CHECK_EQ(apply(&t, "SAMPLE", 1, 0, PROBABILISTIC), 0);
    passed = 0;
    for (int k = 0; k < 10000; k++)
        passed += run_frame(&t, http_frame, 60);
    CHECK_EQ(passed, 0);
    close_inst(&t);
    CHECK_EQ(apply(&t, "SAMPLE", 1, 100, PROBABILISTIC), 0);
    passed = 0;
    for (int k = 0; k < 10000; k++)
        passed += run_frame(&t, http_frame, 60);
    CHECK_EQ(passed, 10000);
    close_inst(&t);

    /* Two instances draw different sequences. */
    CHECK_EQ(apply(&t, "SAMPLE", 1, 50, PROBABILISTIC), 0);
    CHECK_EQ(apply(&u, "SAMPLE", 1, 50, PROBABILISTIC), 0);
    same = 0;
    for (int k = 0; k < 256; k++)
        same += run_frame(&t, http_frame, 60) == run_frame(&u, http_frame, 60);
    CHECK(same < 256);
    close_inst(&t);
    close_inst(&u);

    CHECK_EQ(apply_code("SAMPLE", 0, PERIODIC), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("SAMPLE", -5, PERIODIC), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("SAMPLE", -1, PROBABILISTIC), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("SAMPLE", 101, PROBABILISTIC), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("SAMPLE", 10, 0), MFUNCT_INVALID_ARGUMENT_2);
    CHECK_EQ(apply_code("SAMPLE", 10, 7), MFUNCT_INVALID_ARGUMENT_2);
    CHECK_EQ(apply_code("SAMPLE", 0, 7), MFUNCT_INVALID_ARGUMENT_2);
}

static void test_to_buffer(void)
{
    struct tinst t;
    struct mapi_pkt p;

    CHECK_EQ(apply(&t, "TO_BUFFER", 1, 0), 0);
    CHECK_EQ(t.fi.ring_size, UINT32_MAX);
    CHECK_EQ(t.fi.result_size, 0);
    CHECK(t.fi.def->flags & MAPI_FN_RING);
    CHECK_EQ(t.fi.args[0].v.i, 0); /* the host reads the flag here */
    ring_puts = 0;
    for (int k = 0; k < 5; k++) {
        p = pkt_make(http_frame, http_len, http_len);
        CHECK_EQ(run(&t, &p), 1);
        CHECK(ring_last_fi == &t.fi && ring_last_pkt == &p);
        pkt_free(&p);
    }
    CHECK_EQ(ring_puts, 5);
    close_inst(&t);

    CHECK_EQ(apply(&t, "TO_BUFFER", 1, 1), 0);
    CHECK_EQ(t.fi.args[0].v.i, 1);
    CHECK_EQ(t.fi.ring_size, UINT32_MAX);
    close_inst(&t);
    CHECK_EQ(apply_code("TO_BUFFER", 2), MFUNCT_INVALID_ARGUMENT_1);
    CHECK_EQ(apply_code("TO_BUFFER", -1), MFUNCT_INVALID_ARGUMENT_1);
}

static uint64_t evaluations(const struct tinst *t)
{
    return ((const struct stdflib_shared *)t->fi.priv)->evaluations;
}

/*
 * Sharing: a and b are identical filters on device 1, c the same on device 2. `unmatch`
 * changes the frame in place so that the filter no longer matches.
 */
static void check_sharing(struct tinst *a, struct tinst *b, struct tinst *c,
                          void (*unmatch)(uint8_t *frame))
{
    struct mapi_pkt p = pkt_make(http_frame, http_len, http_len);
    struct mapi_pkt copy;
    uint64_t ea;

    CHECK(a->fi.priv == b->fi.priv); /* one shared entry ... */
    CHECK(a->fi.priv != c->fi.priv); /* ... per device */
    ea = evaluations(a);
    CHECK_EQ(run(a, &p), 1);
    CHECK_EQ(evaluations(a), ea + 1);
    unmatch((uint8_t *)p.data); /* same seq, pointer and caplen: b must reuse a's verdict */
    CHECK_EQ(run(b, &p), 1);
    CHECK_EQ(evaluations(b), ea + 1);
    CHECK_EQ(run(c, &p), 0); /* another device evaluates for itself */
    /* A private copy (another data pointer) with the same seq is evaluated on its bytes. */
    copy = p;
    copy.data = malloc(p.caplen);
    memcpy((void *)copy.data, p.data, p.caplen);
    CHECK_EQ(run(b, &copy), 0);
    CHECK_EQ(evaluations(b), ea + 2);
    free((void *)copy.data);
    /* The next packet is evaluated again. */
    p.seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);
    CHECK_EQ(run(b, &p), 0);
    CHECK_EQ(run(a, &p), 0);
    CHECK_EQ(evaluations(a), ea + 3);
    pkt_free(&p);
}

static void unmatch_port(uint8_t *frame)
{
    frame[37] = 81; /* TCP destination port 80 -> 81 */
}

static void unmatch_payload(uint8_t *frame)
{
    frame[ETH_IP_TCP] = 'P'; /* "GET" -> "PET" */
}

static void test_sharing(void)
{
    struct tinst a, b, c, d, e;

    CHECK_EQ(apply(&a, "BPF_FILTER", 1, "tcp and dst port 80"), 0);
    CHECK_EQ(apply(&b, "BPF_FILTER", 1, "tcp and dst port 80"), 0);
    CHECK_EQ(apply(&c, "BPF_FILTER", 2, "tcp and dst port 80"), 0);
    check_sharing(&a, &b, &c, unmatch_port);
    /* Another snaplen or another expression compiles its own program. */
    apply_snaplen = 1500;
    CHECK_EQ(apply(&d, "BPF_FILTER", 1, "tcp and dst port 80"), 0);
    apply_snaplen = 65535;
    CHECK(d.fi.priv != a.fi.priv);
    close_inst(&d);
    CHECK_EQ(apply(&d, "BPF_FILTER", 1, "tcp and dst port 8080"), 0);
    CHECK(d.fi.priv != a.fi.priv);
    close_inst(&d);
    /* Dropping one reference keeps the entry for the other. */
    close_inst(&a);
    CHECK_EQ(((struct stdflib_shared *)b.fi.priv)->refcount, 1);
    CHECK_EQ(run_frame(&b, http_frame, http_len), 1);
    close_inst(&b);
    close_inst(&c);
    /* After the last reference, a new instance gets a fresh entry. */
    CHECK_EQ(apply(&e, "BPF_FILTER", 1, "tcp and dst port 80"), 0);
    CHECK_EQ(evaluations(&e), 0);
    CHECK_EQ(((struct stdflib_shared *)e.fi.priv)->refcount, 1);
    close_inst(&e);

    CHECK_EQ(apply(&a, "STR_SEARCH", 1, "GET", 0, 100), 0);
    CHECK_EQ(apply(&b, "STR_SEARCH", 1, "GET", 0, 100), 0);
    CHECK_EQ(apply(&c, "STR_SEARCH", 2, "GET", 0, 100), 0);
    check_sharing(&a, &b, &c, unmatch_payload);
    /* Other offset or depth: not shared. */
    CHECK_EQ(apply(&d, "STR_SEARCH", 1, "GET", 0, 99), 0);
    CHECK(d.fi.priv != a.fi.priv);
    close_inst(&d);
    CHECK_EQ(apply(&d, "STR_SEARCH", 1, "GET", 1, 100), 0);
    CHECK(d.fi.priv != a.fi.priv);
    close_inst(&d);
    close_inst(&a);
    close_inst(&b);
    close_inst(&c);
}

/*
 * Several threads apply and close the same filters at once (registry locking). They share
 * entries on device 7 but process packets only on a device of their own, since the cache of
 * an entry belongs to its device's single capture thread.
 */
static void *churn(void *arg)
{
    int own_dev = 100 + (int)(intptr_t)arg;

    for (int k = 0; k < 100; k++) {
        struct tinst t, u, v;
        int ok;

        if (apply(&t, "BPF_FILTER", 7, "tcp and dst port 80") != 0 ||
            apply(&u, "STR_SEARCH", 7, "|47 45 54|", 0, 0) != 0 ||
            apply(&v, "STR_SEARCH", own_dev, "|47 45 54|", 0, 0) != 0)
            return (void *)1;
        ok = run_frame(&v, http_frame, http_len) == 1;
        close_inst(&v);
        close_inst(&u);
        close_inst(&t);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

static void test_registry_threads(void)
{
    pthread_t th[4];
    void *ret;

    for (int k = 0; k < 4; k++)
        CHECK_EQ(pthread_create(&th[k], NULL, churn, (void *)(intptr_t)k), 0);
    for (int k = 0; k < 4; k++) {
        CHECK_EQ(pthread_join(th[k], &ret), 0);
        CHECK(ret == NULL);
    }
}

int main(int argc, char **argv)
{
    mapi_flib_entry_fn entry;
    void *h;

    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/stdflib.so\n", argv[0]);
        return 2;
    }
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    *(void **)&entry = dlsym(h, MAPI_FLIB_ENTRY_SYMBOL);
    if (entry == NULL || (lib = entry()) == NULL) {
        fprintf(stderr, "no %s in %s\n", MAPI_FLIB_ENTRY_SYMBOL, argv[1]);
        return 1;
    }
    if (lib->abi_version != MAPI_FLIB_ABI_VERSION || lib->struct_size != sizeof(struct mapi_flib)) {
        fprintf(stderr, "ABI mismatch: version %u size %u\n", lib->abi_version, lib->struct_size);
        return 1;
    }
    build_http_frame();

    test_abi(h);
    test_bpf();
    test_counters();
    test_str_search();
    test_sample();
    test_to_buffer();
    test_sharing();
    test_registry_threads();

    dlclose(h);
    printf("test_stdflib: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
