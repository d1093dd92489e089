/*
 * flib/stdflib/bpf_filter.c - BPF_FILTER "s": keeps the packets that match a tcpdump-syntax
 * expression.
 *
 * The expression is compiled once with libpcap when the function is applied (on a dead
 * handle of the device's link type and snaplen, optimized, netmask unknown), then to x86-64
 * machine code by bpf_jit.c, which runs on the link-layer frame for each packet with exactly
 * the semantics of libpcap's interpreter. The libpcap program is kept: where the JIT does not
 * apply (another architecture, an instruction it refuses) bpf_filter() runs it instead. Identical
 * expressions on flows of the same device share one compiled program and one verdict per packet
 * through the shared registry (stdflib.h), so N monitoring flows with the same filter cost one
 * evaluation.
 */
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "bpf_jit.h"
#include "stdflib.h"

#define BPF_DEFAULT_SNAPLEN 65535
/* Longest expression compiled by default (mapi.conf bpf_filter_max_len; 0 = no limit): libpcap
 * compiles on mapid's control thread, which serves every user, in time that grows about
 * cubically with the expression (measured with "port N or port M ...": 1.4 KB 0.14 s, 2.8 KB
 * 1.1 s, 5.6 KB 10 s; 1 KB of various shapes at most 0.08 s). */
#define BPF_MAX_EXPR_DEFAULT 1024u

/* The shared object: libpcap's program and its machine code (NULL: use the interpreter). */
struct bpf_compiled {
    struct bpf_program prog;
    struct bpf_jit *jit;
};

static void bpf_destroy(void *obj)
{
    struct bpf_compiled *c = obj;

    bpf_jit_free(c->jit);
    pcap_freecode(&c->prog);
    free(c);
}

/* Compiles args[0] for the instance's device. Returns 0, 1027 or 1025 (message in errmsg). */
static int bpf_build(struct mapi_fn_instance *fi, void **obj)
{
    int snaplen =
        fi->snaplen > 0 && fi->snaplen <= INT32_MAX ? (int)fi->snaplen : BPF_DEFAULT_SNAPLEN;
    struct bpf_compiled *c;
    pcap_t *p;

    p = pcap_open_dead(fi->linktype, snaplen);
    if (p == NULL) {
        stdflib_errmsg(fi, "pcap_open_dead(linktype %d, snaplen %d) failed", fi->linktype, snaplen);
        return PCAP_OPEN_DEAD_ERR;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        pcap_close(p);
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    if (pcap_compile(p, &c->prog, fi->args[0].v.s, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        stdflib_errmsg(fi, "%s", pcap_geterr(p));
        free(c);
        pcap_close(p);
        return PCAP_BPF_ERR;
    }
    pcap_close(p);
    c->jit = bpf_jit_compile(c->prog.bf_insns, c->prog.bf_len); /* NULL: interpreter */
    *obj = c;
    return 0;
}

/*
 * Validates and compiles the expression. Returns 0; 7001 for a missing or empty expression;
 * 7001 also for an expression longer than bpf_filter_max_len (default 1024 bytes);
 * 1025 if libpcap rejects it (its message in fi->errmsg); 1027 if no pcap handle could be
 * made; 3084 on memory shortage.
 */
int stdflib_bpf_instance(struct mapi_fn_instance *fi)
{
    struct stdflib_shared *sh;
    const char *expr;
    int err;

    if (fi->nargs < 1 || fi->args[0].v.s == NULL || fi->args[0].v.s[0] == '\0') {
        stdflib_errmsg(fi, "BPF_FILTER needs a non-empty filter expression");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    expr = fi->args[0].v.s;
    size_t max = BPF_MAX_EXPR_DEFAULT;
    const char *v =
        fi->host && fi->host->conf_value ? fi->host->conf_value("bpf_filter_max_len") : NULL;
    if (v != NULL && *v >= '0' && *v <= '9')
        max = (size_t)strtoull(v, NULL, 10);
    if (max > 0 && strlen(expr) > max) {
        stdflib_errmsg(fi,
                       "BPF_FILTER: the expression has %zu bytes, more than bpf_filter_max_len "
                       "(%zu) of mapi.conf",
                       strlen(expr), max);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    err =
        stdflib_shared_get(fi, STDFLIB_SHARED_BPF, expr, strlen(expr), bpf_build, bpf_destroy, &sh);
    if (err != 0)
        return err;
    fi->priv = sh;
    fi->result_size = 0;
    return 0;
}

/* Returns 1 if the packet matches the expression, 0 if not. */
int stdflib_bpf_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct stdflib_shared *sh = fi->priv;
    const struct bpf_compiled *c;
    int verdict = stdflib_shared_cached(sh, pkt);

    if (verdict >= 0)
        return verdict;
    c = sh->obj;
    /* Both check every load against caplen: they never read past it. */
    if (c->jit != NULL)
        verdict = bpf_jit_run(c->jit, pkt->data, pkt->wlen, pkt->caplen) != 0;
    else
        verdict = bpf_filter(c->prog.bf_insns, pkt->data, pkt->wlen, pkt->caplen) != 0;
    return stdflib_shared_store(sh, pkt, verdict);
}

void stdflib_bpf_cleanup(struct mapi_fn_instance *fi)
{
    stdflib_shared_put(fi->priv);
    fi->priv = NULL;
}
