/*
 * flib/stdflib/shared.c - the registry of shared evaluations (see stdflib.h) and small
 * helpers used by every function of stdflib.
 *
 * The registry is a plain linked list under one mutex: it is walked only when a function is
 * applied or a flow closes, never per packet, and holds one entry per distinct (device,
 * filter) pair, so a list is enough.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stdflib.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stdflib_shared *registry;

void stdflib_errmsg(struct mapi_fn_instance *fi, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fi->errmsg, sizeof(fi->errmsg), fmt, ap);
    va_end(ap);
}

static int key_matches(const struct stdflib_shared *sh, const struct mapi_fn_instance *fi, int kind,
                       const void *key, size_t keylen)
{
    return sh->kind == kind && sh->dev_id == fi->dev_id && sh->linktype == fi->linktype &&
           sh->snaplen == fi->snaplen && sh->keylen == keylen && memcmp(sh->key, key, keylen) == 0;
}

int stdflib_shared_get(struct mapi_fn_instance *fi, int kind, const void *key, size_t keylen,
                       stdflib_shared_build_fn build, void (*destroy)(void *obj),
                       struct stdflib_shared **out)
{
    struct stdflib_shared *sh;
    int err = 0;

    pthread_mutex_lock(&registry_lock);
    for (sh = registry; sh != NULL; sh = sh->next) {
        if (key_matches(sh, fi, kind, key, keylen)) {
            sh->refcount++;
            *out = sh;
            goto out;
        }
    }

    sh = calloc(1, sizeof(*sh) + keylen);
    if (sh == NULL) {
        err = MAPID_MEM_ALLOCATION_ERROR;
        goto out;
    }
    err = build(fi, &sh->obj);
    if (err != 0) {
        free(sh);
        goto out;
    }
    sh->destroy = destroy;
    sh->kind = kind;
    sh->dev_id = fi->dev_id;
    sh->linktype = fi->linktype;
    sh->snaplen = fi->snaplen;
    sh->refcount = 1;
    sh->keylen = keylen;
    memcpy(sh->key, key, keylen);
    sh->next = registry;
    registry = sh;
    *out = sh;
out:
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void stdflib_shared_put(struct stdflib_shared *sh)
{
    struct stdflib_shared **pp;

    if (sh == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--sh->refcount > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (sh->destroy != NULL)
        sh->destroy(sh->obj);
    free(sh);
}
