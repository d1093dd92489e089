/*
 * flib/anonflib/maps.c - state shared by the ANONYMIZE rules of one flow, and hash tables.
 *
 * MAP must be consistent across the rules of a flow (the tutorial maps SRC_IP and DST_IP with
 * two rules, and an address must get the same number in both), and so must
 * PREFIX_PRESERVING_MAP. So the rules of a flow share a context, found by mapid's flow id in
 * a registry (under a mutex, touched from instance() and cleanup() only) and reference
 * counted. Its tables are used from process(), which for one flow always runs on one capture
 * thread, so they need no lock.
 *
 *   MAP tables: one per class (IPv4 addresses, IPv6 addresses, ports, 4-, 2- and 1-byte
 *   fields); a new value gets the next number 1, 2, 3, ...
 *   PREFIX_PRESERVING_MAP: a binary trie per address family, in the manner of tcpdpriv's
 *   table method: each node (a prefix seen so far) holds a random bit, and bit i of the
 *   output is bit i of the input XOR the bit of the node of the first i input bits. Two
 *   addresses sharing a k-bit prefix share the nodes of that prefix, so their outputs share
 *   exactly a k-bit prefix; the mapping is one-to-one and random per flow.
 * Tables grow by doubling (amortised; nothing is allocated for values already seen).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "anonflib.h"

/* ---- hash table ---- */

struct anon_table {
    unsigned keylen;
    uint32_t cap, count; /* cap: power of two */
    uint8_t *keys;
    uint32_t *vals;
    uint8_t *used;
};

static uint32_t key_hash(const uint8_t *k, unsigned n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < n; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

struct anon_table *anon_table_new(unsigned keylen)
{
    struct anon_table *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->keylen = keylen;
    t->cap = 1024;
    t->keys = malloc((size_t)t->cap * keylen);
    t->vals = malloc((size_t)t->cap * sizeof *t->vals);
    t->used = calloc(t->cap, 1);
    if (t->keys == NULL || t->vals == NULL || t->used == NULL) {
        anon_table_free(t);
        return NULL;
    }
    return t;
}

void anon_table_free(struct anon_table *t)
{
    if (t == NULL)
        return;
    free(t->keys);
    free(t->vals);
    free(t->used);
    free(t);
}

/* Doubles the table. Returns 0 or -1. */
static int table_grow(struct anon_table *t)
{
    struct anon_table n = *t;

    n.cap = t->cap * 2;
    n.count = 0;
    n.keys = malloc((size_t)n.cap * t->keylen);
    n.vals = malloc((size_t)n.cap * sizeof *n.vals);
    n.used = calloc(n.cap, 1);
    if (n.keys == NULL || n.vals == NULL || n.used == NULL) {
        free(n.keys);
        free(n.vals);
        free(n.used);
        return -1;
    }
    for (uint32_t i = 0; i < t->cap; i++) {
        if (!t->used[i])
            continue;
        const uint8_t *k = t->keys + (size_t)i * t->keylen;
        uint32_t j = key_hash(k, t->keylen) & (n.cap - 1);
        while (n.used[j])
            j = (j + 1) & (n.cap - 1);
        n.used[j] = 1;
        memcpy(n.keys + (size_t)j * t->keylen, k, t->keylen);
        n.vals[j] = t->vals[i];
        n.count++;
    }
    free(t->keys);
    free(t->vals);
    free(t->used);
    *t = n;
    return 0;
}

int anon_table_get(struct anon_table *t, const uint8_t *key, uint32_t *val, int make)
{
    uint32_t j;

    if (t == NULL)
        return -1;
    j = key_hash(key, t->keylen) & (t->cap - 1);
    while (t->used[j]) {
        if (memcmp(t->keys + (size_t)j * t->keylen, key, t->keylen) == 0) {
            *val = t->vals[j];
            return 1;
        }
        j = (j + 1) & (t->cap - 1);
    }
    if (!make)
        return -1;
    if ((t->count + 1) * 2 > t->cap) {
        if (table_grow(t) != 0)
            return -1;
        j = key_hash(key, t->keylen) & (t->cap - 1);
        while (t->used[j])
            j = (j + 1) & (t->cap - 1);
    }
    t->used[j] = 1;
    memcpy(t->keys + (size_t)j * t->keylen, key, t->keylen);
    t->vals[j] = *val;
    t->count++;
    return 0;
}

/* ---- prefix-preserving trie ---- */

struct pp_node {
    uint32_t child[2]; /* 0: none (node 0 is the root, never a child) */
    uint8_t flip;
};

struct pp_trie {
    struct pp_node *nodes;
    uint32_t n, cap;
};

/* ---- flow context ---- */

struct anon_flowctx {
    int flow_id;
    unsigned refs;
    struct anon_flowctx *next;
    struct anon_table *map[ANON_MAP_NCLASSES];
    uint32_t last[ANON_MAP_NCLASSES]; /* the last number given */
    struct pp_trie trie[2];           /* IPv4, IPv6 */
    uint64_t rng;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct anon_flowctx *registry;

struct anon_flowctx *anon_ctx_get(int flow_id)
{
    struct anon_flowctx *c;

    pthread_mutex_lock(&registry_lock);
    for (c = registry; c != NULL; c = c->next)
        if (c->flow_id == flow_id)
            break;
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL) {
            c->flow_id = flow_id;
            c->rng = anon_seed(c);
            c->next = registry;
            registry = c;
        }
    }
    if (c != NULL)
        c->refs++;
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void anon_ctx_put(struct anon_flowctx *ctx)
{
    struct anon_flowctx **pp;
    int last;

    pthread_mutex_lock(&registry_lock);
    last = --ctx->refs == 0;
    if (last)
        for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
            if (*pp == ctx) {
                *pp = ctx->next;
                break;
            }
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    for (int i = 0; i < ANON_MAP_NCLASSES; i++)
        anon_table_free(ctx->map[i]);
    free(ctx->trie[0].nodes);
    free(ctx->trie[1].nodes);
    free(ctx);
}

uint32_t anon_ctx_map(struct anon_flowctx *ctx, int cls, const uint8_t *key)
{
    uint32_t v;

    if (cls <= ANON_MAP_NONE || cls >= ANON_MAP_NCLASSES)
        return 0;
    if (ctx->map[cls] == NULL) {
        ctx->map[cls] = anon_table_new(cls == ANON_MAP_IP6 ? 16 : 4);
        if (ctx->map[cls] == NULL)
            return 0;
    }
    if (anon_table_get(ctx->map[cls], key, &v, 0) == 1)
        return v;
    v = ctx->last[cls] + 1;
    if (anon_table_get(ctx->map[cls], key, &v, 1) != 0)
        return 0;
    ctx->last[cls] = v;
    return v;
}

/* A new node with a random bit. Returns its index, or 0 if out of memory. */
static uint32_t pp_new(struct anon_flowctx *ctx, struct pp_trie *t)
{
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4096;
        struct pp_node *nn = realloc(t->nodes, (size_t)cap * sizeof *nn);
        if (nn == NULL)
            return 0;
        t->nodes = nn;
        t->cap = cap;
    }
    t->nodes[t->n].child[0] = t->nodes[t->n].child[1] = 0;
    t->nodes[t->n].flip = (uint8_t)(anon_rand64(&ctx->rng) & 1);
    return t->n++;
}

int anon_ctx_ppmap(struct anon_flowctx *ctx, uint8_t *addr, int bits)
{
    struct pp_trie *t = &ctx->trie[bits == 128];
    uint32_t node = 0;

    if (t->n == 0)
        pp_new(ctx, t); /* the root, node 0 */
    if (t->n == 0) {
        memset(addr, 0, (size_t)bits / 8);
        return -1;
    }
    for (int i = 0; i < bits; i++) {
        uint8_t *byte = &addr[i / 8];
        uint8_t mask = (uint8_t)(0x80u >> (i % 8));
        int bit = (*byte & mask) != 0;
        uint8_t flip = t->nodes[node].flip;
        if (flip)
            *byte ^= mask;
        if (i == bits - 1)
            break;
        uint32_t next = t->nodes[node].child[bit];
        if (next == 0) {
            next = pp_new(ctx, t);
            if (next == 0) { /* out of memory: never leave the original address */
                memset(addr, 0, (size_t)bits / 8);
                return -1;
            }
            t->nodes[node].child[bit] = next;
        }
        node = next;
    }
    return 0;
}
