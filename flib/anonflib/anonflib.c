/*
 * flib/anonflib/anonflib.c - entry point of anonflib, the anonymisation library: the function
 * table and ANONYMIZE's callbacks.
 *
 * ANONYMIZE "s" "PROTOCOL,FIELD,FUNCTION[,PARAMS...]" adds one rule to a flow; the rules of a
 * flow run in the order applied, each on the flow's private copy of the packet
 * (MAPI_FN_MODIFIES), so other flows of the device see the original. It needs the decoded
 * fields (offsets), so it is not MAPI_FN_RAW. The rule language is described in policy.c, the
 * fields in fields.c, the functions in functions.c. Errors at apply time: 7001 protocol, 7002
 * field (or a field the function does not apply to), 7003 function, 7004 parameters (or no
 * key), each with fi->errmsg naming the bad part.
 *
 * PRINT_PACKET "" writes a one-line decode of every packet (like `tcpdump -n -v`) to mapid's
 * log at info level (host->log level 2), not to mapid's stdout (a daemon has none); see
 * print.c. It never drops a packet. Its lines are rate-limited per flow (print_packet_rate,
 * print_packet_burst of mapi.conf); suppressed lines are counted in the log.
 */
#include <stdlib.h>

#include "anonflib.h"

/* Parses the rule. Returns 0 or the error of anon_parse_rule (7001..7004, 3084). */
static int anonymize_instance(struct mapi_fn_instance *fi)
{
    struct anon_rule *r;
    int err;

    if (fi->nargs < 1 || fi->args[0].v.s == NULL) {
        anon_errmsg(fi, "ANONYMIZE needs a rule \"PROTOCOL,FIELD,FUNCTION[,PARAMS...]\"");
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return MAPID_MEM_ALLOCATION_ERROR;
    r->fi = fi;
    r->host = fi->host;
    err = anon_parse_rule(r, fi->args[0].v.s);
    if (err != 0) {
        anon_rule_free(r);
        free(r);
        return err;
    }
    fi->priv = r;
    return 0;
}

/* Applies the rule to packets of its protocol. Always returns 1 (never drops). */
static int anonymize_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    struct anon_rule *r = fi->priv;

    if (r->fn == ANON_FN_UNCHANGED || !anon_pkt_is(pkt, r->proto))
        return 1;
    return anon_apply(r, pkt);
}

/* Frees the rule. */
static void anonymize_cleanup(struct mapi_fn_instance *fi)
{
    struct anon_rule *r = fi->priv;

    if (r == NULL)
        return;
    anon_rule_free(r);
    free(r);
    fi->priv = NULL;
}

static const struct mapi_fn_def anonflib_functions[] = {
    {
        .name = "ANONYMIZE",
        .argdescr = "s",
        .descr = "Anonymises one field of the packets: \"PROTOCOL,FIELD,FUNCTION[,PARAMS...]\"",
        .flags = MAPI_FN_MODIFIES,
        .instance = anonymize_instance,
        .process = anonymize_process,
        .cleanup = anonymize_cleanup,
    },
    {
        .name = "PRINT_PACKET",
        .argdescr = "",
        .descr = "Logs a one-line decode of every packet (like tcpdump -n -v) at info level",
        .flags = 0,
        .instance = anon_print_instance,
        .process = anon_print_process,
        .cleanup = anon_print_cleanup,
    },
    {.name = NULL},
};

static const struct mapi_flib anonflib = {
    .abi_version = MAPI_FLIB_ABI_VERSION,
    .struct_size = sizeof(struct mapi_flib),
    .name = "anonflib",
    .descr = "Anonymisation of packets (ANONYMIZE policies) and packet printing",
    .functions = anonflib_functions,
};

/* The library's one exported symbol. Returns the table above (static storage). */
__attribute__((visibility("default"))) const struct mapi_flib *mapi_flib_entry(void);

const struct mapi_flib *mapi_flib_entry(void)
{
    return &anonflib;
}
