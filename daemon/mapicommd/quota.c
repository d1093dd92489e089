/*
 * daemon/mapicommd/quota.c - remote identities and mapicommd's own limits (see mapicommd.h).
 *
 * mapicommd is one client of mapid, so mapid's per-user limits hold for all remote
 * applications together. These limits share that out: every connection is charged, once its
 * HELLO arrived, to an identity - the subject of the verified client certificate when
 * mapicommd requires client certificates (dimapi_client_ca), else the application token of
 * the HELLO (self-asserted: it only keeps one well-meaning application from taking all) - and
 * an identity may hold at most dimapi_max_connections_per_identity connections,
 * dimapi_max_flows_per_identity open flows and dimapi_max_memory_per_identity bytes of
 * mapicommd's memory. Memory is what a remote flow makes mapicommd allocate besides its
 * connection: a pump thread's stack and the most its FIFO may hold (reserved in full when the
 * pump starts, released when the flow closes), bounded for all identities together by
 * dimapi_max_memory. Every refusal is MAPID_LIMIT_EXCEEDED with a message naming the key.
 *
 * One mutex guards the table; identities are reference-counted (a connection and each of its
 * flows hold one) and freed when the last reference goes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/mapicommd/mapicommd.h"
#include "mapi/errors.h"

struct mc_ident {
    char key[600]; /* "subject:/CN=alice" or "token:0011..." */
    int refs;
    int conns, flows;
    uint64_t mem;
    struct mc_ident *next;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mc_ident *q_list;
static uint64_t q_mem; /* all identities */

struct mc_ident *mc_ident_get(const char *subject, const uint8_t *token)
{
    char key[600];
    if (subject && subject[0]) {
        snprintf(key, sizeof(key), "subject:%s", subject);
    } else {
        char hex[2 * DIMAPI_TOKEN_LEN + 1];
        for (int i = 0; i < DIMAPI_TOKEN_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", token[i]);
        snprintf(key, sizeof(key), "token:%s", hex);
    }
    pthread_mutex_lock(&q_lock);
    struct mc_ident *id = q_list;
    while (id && strcmp(id->key, key) != 0)
        id = id->next;
    if (!id) {
        id = calloc(1, sizeof(*id));
        if (id) {
            memcpy(id->key, key, sizeof(key));
            id->next = q_list;
            q_list = id;
        }
    }
    if (id)
        id->refs++;
    pthread_mutex_unlock(&q_lock);
    return id;
}

void mc_ident_hold(struct mc_ident *id)
{
    pthread_mutex_lock(&q_lock);
    id->refs++;
    pthread_mutex_unlock(&q_lock);
}

void mc_ident_put(struct mc_ident *id)
{
    if (!id)
        return;
    pthread_mutex_lock(&q_lock);
    if (--id->refs == 0) {
        struct mc_ident **pp = &q_list;
        while (*pp != id)
            pp = &(*pp)->next;
        *pp = id->next;
        free(id);
    }
    pthread_mutex_unlock(&q_lock);
}

const char *mc_ident_name(const struct mc_ident *id)
{
    return id->key;
}

/* Adds one to *count (a counter of id) unless it is at max; else the message names what is
 * counted and the key of the limit. 0 or -1. */
static int ident_count_add(struct mc_ident *id, int *count, int max, const char *what,
                           const char *key, char *msg, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&q_lock);
    if (*count >= max) {
        snprintf(msg, len, "%s already has %d %s mapicommd on %s (%s)", id->key, *count, what,
                 g_hostname, key);
        rc = -1;
    } else {
        (*count)++;
    }
    pthread_mutex_unlock(&q_lock);
    return rc;
}

static void ident_count_del(int *count)
{
    pthread_mutex_lock(&q_lock);
    (*count)--;
    pthread_mutex_unlock(&q_lock);
}

int mc_ident_conn_add(struct mc_ident *id, char *msg, size_t len)
{
    return ident_count_add(id, &id->conns, g_conf.dimapi_max_connections_per_identity,
                           "connections to", "dimapi_max_connections_per_identity", msg, len);
}

void mc_ident_conn_del(struct mc_ident *id)
{
    ident_count_del(&id->conns);
}

int mc_ident_flow_add(struct mc_ident *id, char *msg, size_t len)
{
    return ident_count_add(id, &id->flows, g_conf.dimapi_max_flows_per_identity,
                           "open flows through", "dimapi_max_flows_per_identity", msg, len);
}

void mc_ident_flow_del(struct mc_ident *id)
{
    ident_count_del(&id->flows);
}

int mc_mem_reserve(struct mc_ident *id, uint64_t bytes, char *msg, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&q_lock);
    if (q_mem + bytes > g_conf.dimapi_max_memory) {
        snprintf(msg, len,
                 "mapicommd on %s has used %llu of its %llu bytes for remote packet and result "
                 "queues (dimapi_max_memory); this one needs %llu more",
                 g_hostname, (unsigned long long)q_mem,
                 (unsigned long long)g_conf.dimapi_max_memory, (unsigned long long)bytes);
        rc = -1;
    } else if (id && id->mem + bytes > g_conf.dimapi_max_memory_per_identity) {
        snprintf(msg, len,
                 "%s has used %llu of its %llu bytes of mapicommd's memory on %s "
                 "(dimapi_max_memory_per_identity); this queue needs %llu more",
                 id->key, (unsigned long long)id->mem,
                 (unsigned long long)g_conf.dimapi_max_memory_per_identity, g_hostname,
                 (unsigned long long)bytes);
        rc = -1;
    } else {
        q_mem += bytes;
        if (id)
            id->mem += bytes;
    }
    pthread_mutex_unlock(&q_lock);
    return rc;
}

void mc_mem_release(struct mc_ident *id, uint64_t bytes)
{
    pthread_mutex_lock(&q_lock);
    q_mem -= bytes;
    if (id)
        id->mem -= bytes;
    pthread_mutex_unlock(&q_lock);
}

uint64_t mc_mem_used(void)
{
    pthread_mutex_lock(&q_lock);
    uint64_t m = q_mem;
    pthread_mutex_unlock(&q_lock);
    return m;
}
