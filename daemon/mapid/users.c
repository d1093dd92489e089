/*
 * daemon/mapid/users.c - what mapid counts per user (uid), across all of that user's
 * connections, and the admission of new connections.
 *
 * A struct user is created when a uid connects for the first time and freed when its last
 * connection is gone (its flows and buffers go with the connections). It counts the user's
 * admitted connections, flows, shared-memory bytes of connected flows and buffered request
 * bytes; mapi.conf's max_*_per_user keys bound them (root included: the limits are per uid,
 * an operator raises them for root in mapi.conf if needed). Capture threads of trace devices
 * are counted on demand from the device list (a device's thread lives from its start to its
 * deletion), so no counter can drift from what really runs.
 *
 * Admission (user_admit): a uid at max_connections_per_user is refused. When mapid holds
 * max_connections connections, a newcomer whose uid has fewer connections than the uid with
 * the most (by two or more) still gets in, and one connection of that heaviest uid is shed
 * (one without flows if it has any, else the one idle longest): one user's flood of idle
 * connections cannot lock the others out. Refused connections are answered with
 * MAPID_LIMIT_EXCEEDED at their first request (main.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemon/mapid/mapid.h"

struct user *user_get(struct mapid *m, uid_t uid)
{
    for (struct user *u = m->users; u; u = u->next)
        if (u->uid == uid)
            return u;
    struct user *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->uid = uid;
    u->next = m->users;
    m->users = u;
    return u;
}

void user_drop_if_unused(struct mapid *m, struct user *u)
{
    if (!u || u->nconns > 0 || u->nrefused > 0 || u->nflows > 0 || u->shm_bytes > 0 ||
        u->input_bytes > 0)
        return;
    for (struct user **pp = &m->users; *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            free(u);
            return;
        }
    }
}

/* The connection of u to shed: one without flows if there is one, else the one idle longest. */
static struct client *pick_victim(struct mapid *m, const struct user *u)
{
    struct client *best = NULL;
    for (struct client *c = m->clients; c; c = c->next) {
        if (c->user != u || c->refused || c->dead)
            continue;
        if (!best || (c->nflows == 0 && best->nflows > 0) ||
            ((c->nflows == 0) == (best->nflows == 0) && c->active_ms < best->active_ms))
            best = c;
    }
    return best;
}

int user_admit(struct mapid *m, struct user *u, struct client **shed, char *msg, size_t msglen)
{
    *shed = NULL;
    if (u->nconns >= m->conf.max_connections_per_user) {
        snprintf(msg, msglen,
                 "uid %u already has %d connections to mapid (max_connections_per_user)",
                 (unsigned)u->uid, u->nconns);
        return MAPID_LIMIT_EXCEEDED;
    }
    if (m->nconns < m->conf.max_connections)
        return 0;
    struct user *heavy = NULL;
    for (struct user *v = m->users; v; v = v->next)
        if (!heavy || v->nconns > heavy->nconns)
            heavy = v;
    if (heavy && heavy != u && heavy->nconns > u->nconns + 1) {
        *shed = pick_victim(m, heavy);
        if (*shed)
            return 0;
    }
    snprintf(msg, msglen,
             "mapid has %d connections (max_connections) and uid %u has as many as any other "
             "user",
             m->nconns, (unsigned)u->uid);
    return MAPID_LIMIT_EXCEEDED;
}

int user_thread_check(struct mapid *m, const struct device *d, char *msg, size_t msglen)
{
    if (!d->offline || d->thread_running)
        return 0;
    int n = 0;
    for (const struct device *e = m->devices; e; e = e->next)
        n += e->offline && e->thread_running && e->uid == d->uid;
    if (n >= m->conf.max_threads_per_user) {
        snprintf(msg, msglen,
                 "uid %u already runs %d trace capture threads (max_threads_per_user); close "
                 "a trace flow first",
                 (unsigned)d->uid, n);
        return MAPID_LIMIT_EXCEEDED;
    }
    return 0;
}

int user_input_resize(struct mapid *m, struct client *c, size_t newcap, char *msg, size_t msglen)
{
    struct user *u = c->user;
    if (newcap > c->incap) {
        uint64_t more = newcap - c->incap;
        if (u->input_bytes + more > m->conf.max_input_per_user) {
            snprintf(msg, msglen,
                     "buffered requests of uid %u would reach %llu bytes (max_input_per_user is "
                     "%llu)",
                     (unsigned)u->uid, (unsigned long long)(u->input_bytes + more),
                     (unsigned long long)m->conf.max_input_per_user);
            return MAPID_LIMIT_EXCEEDED;
        }
        if (m->input_bytes + more > m->conf.max_input_total) {
            snprintf(msg, msglen,
                     "buffered requests of all users would reach %llu bytes (max_input_total is "
                     "%llu)",
                     (unsigned long long)(m->input_bytes + more),
                     (unsigned long long)m->conf.max_input_total);
            return MAPID_LIMIT_EXCEEDED;
        }
    }
    uint8_t *n = NULL;
    if (newcap) {
        n = realloc(c->in, newcap);
        if (!n) {
            snprintf(msg, msglen, "out of memory");
            return MAPID_MEM_ALLOCATION_ERROR;
        }
    } else {
        free(c->in);
    }
    c->in = n;
    u->input_bytes = u->input_bytes - c->incap + newcap;
    m->input_bytes = m->input_bytes - c->incap + newcap;
    c->incap = newcap;
    return 0;
}
