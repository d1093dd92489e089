/*
 * common/net.c - DiMAPI transport (interface and rules in common/net.h). Placeholder until
 * the implementation lands: every call fails with "not built yet".
 */
#include "common/net.h"

#include <stdio.h>

struct net_ctx *net_server_ctx(const struct mapi_conf *conf, char *err, size_t errlen)
{
    (void)conf;
    snprintf(err, errlen, "DiMAPI transport not built yet");
    return NULL;
}

struct net_ctx *net_client_ctx(const struct mapi_conf *conf, char *err, size_t errlen)
{
    (void)conf;
    snprintf(err, errlen, "DiMAPI transport not built yet");
    return NULL;
}

void net_ctx_free(struct net_ctx *ctx)
{
    (void)ctx;
}
