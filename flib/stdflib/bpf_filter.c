/*
 * flib/stdflib/bpf_filter.c - BPF_FILTER "s": keeps the packets that match a tcpdump-syntax
 * expression.
 *
 * The expression is compiled once with libpcap when the function is applied (on a dead
 * handle of the device's link type and snaplen, optimized, netmask unknown) and run with
 * bpf_filter() on the link-layer frame for each packet. Identical expressions on flows of
 * the same device share one compiled program and one verdict per packet through the shared
 * registry (stdflib.h), so N monitoring flows with the same filter cost one evaluation.
 */
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "stdflib.h"

#define BPF_DEFAULT_SNAPLEN 65535

static void bpf_destroy(void *obj)
{
    struct bpf_program *prog = obj;

    pcap_freecode(prog);
    free(prog);
}

/* Compiles args[0] for the instance's device. Returns 0, 1027 or 1025 (message in errmsg). */
static int bpf_build(struct mapi_fn_instance *fi, void **obj)
{
    int snaplen =
        fi->snaplen > 0 && fi->snaplen <= INT32_MAX ? (int)fi->snaplen : BPF_DEFAULT_SNAPLEN;
    struct bpf_program *prog;
    pcap_t *p;

    p = pcap_open_dead(fi->linktype, snaplen);
    if (p == NULL) {
        stdflib_errmsg(fi, "pcap_open_dead(linktype %d, snaplen %d) failed", fi->linktype, snaplen);
        return PCAP_OPEN_DEAD_ERR;
    }
    prog = calloc(1, sizeof(*prog));
    if (prog == NULL) {
        pcap_close(p);
        return MAPID_MEM_ALLOCATION_ERROR;
    }
    if (pcap_compile(p, prog, fi->args[0].v.s, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        stdflib_errmsg(fi, "%s", pcap_geterr(p));
        free(prog);
        pcap_close(p);
        return PCAP_BPF_ERR;
    }
    pcap_close(p);
    *obj = prog;
    return 0;
}

/*
 * Validates and compiles the expression. Returns 0; 7001 for a missing or empty expression;
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
    const struct bpf_program *prog;
    int verdict = stdflib_shared_cached(sh, pkt);

    if (verdict >= 0)
        return verdict;
    prog = sh->obj;
    /* bpf_filter() checks every load against buflen (caplen): it never reads past it. */
    verdict = bpf_filter(prog->bf_insns, pkt->data, pkt->wlen, pkt->caplen) != 0;
    return stdflib_shared_store(sh, pkt, verdict);
}

void stdflib_bpf_cleanup(struct mapi_fn_instance *fi)
{
    stdflib_shared_put(fi->priv);
    fi->priv = NULL;
}
