/*
 * daemon/mapid/flibs.c - loads the function libraries named by `libs=` from `libpath` and
 * looks functions up by name. A library must export mapi_flib_entry; its ABI version and
 * descriptor size are checked before anything else in it is used (see mapi/flib.h).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "daemon/mapid/mapid.h"

static int load_one(struct mapid *m, const char *file)
{
    char path[8192];
    if (strchr(file, '/'))
        snprintf(path, sizeof(path), "%s", file);
    else
        snprintf(path, sizeof(path), "%s/%s", m->conf.libpath, file);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        mapi_log(LOG_LVL_ERROR, "cannot load function library %s: %s", path, dlerror());
        return -1;
    }
    mapi_flib_entry_fn entry = (mapi_flib_entry_fn)dlsym(dl, MAPI_FLIB_ENTRY_SYMBOL);
    const struct mapi_flib *lib = entry ? entry() : NULL;
    if (!lib || lib->abi_version != MAPI_FLIB_ABI_VERSION ||
        lib->struct_size != sizeof(struct mapi_flib) || !lib->name || !lib->functions) {
        mapi_log(LOG_LVL_ERROR, "%s is not a MAPI function library of ABI version %u", path,
                 MAPI_FLIB_ABI_VERSION);
        dlclose(dl);
        return -1;
    }
    int n = 0;
    for (const struct mapi_fn_def *d = lib->functions; d->name; d++) {
        if (!d->argdescr || !d->process ||
            strspn(d->argdescr, "sSRircflw") != strlen(d->argdescr)) {
            mapi_log(LOG_LVL_ERROR, "%s: function %s has a bad definition", path, d->name);
            dlclose(dl);
            return -1;
        }
        n++;
    }
    struct flib_entry *nl = realloc(m->libs, sizeof(*nl) * (size_t)(m->nlibs + 1));
    if (!nl) {
        dlclose(dl);
        return -1;
    }
    m->libs = nl;
    struct flib_entry *e = &m->libs[m->nlibs++];
    e->dl = dl;
    e->lib = lib;
    e->nfuncs = n;
    snprintf(e->file, sizeof(e->file), "%s", file);
    mapi_log(LOG_LVL_INFO, "loaded function library %s (%s, %d functions)", lib->name, path, n);
    return 0;
}

int flibs_load(struct mapid *m)
{
    char libs[sizeof(m->conf.libs)];
    snprintf(libs, sizeof(libs), "%s", m->conf.libs);
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(libs, ":, ", &save); t; t = strtok_r(NULL, ":, ", &save))
        if (load_one(m, t) < 0)
            rc = -1;
    return rc;
}

void flibs_unload(struct mapid *m)
{
    for (int i = 0; i < m->nlibs; i++)
        dlclose(m->libs[i].dl);
    free(m->libs);
    m->libs = NULL;
    m->nlibs = 0;
}

const struct mapi_fn_def *flibs_find(struct mapid *m, const char *name, int *libidx)
{
    const char *colon = strchr(name, ':');
    size_t liblen = colon ? (size_t)(colon - name) : 0;
    const char *fname = colon ? colon + 1 : name;
    for (int i = 0; i < m->nlibs; i++) {
        const char *ln = m->libs[i].lib->name;
        if (colon) {
            /* "stdflib:NAME" and "stdflib.so:NAME" both select the library. */
            const char *file = m->libs[i].file;
            int by_name = strncasecmp(ln, name, liblen) == 0 && ln[liblen] == 0;
            int by_file = strncasecmp(file, name, liblen) == 0 && file[liblen] == 0;
            if (!by_name && !by_file)
                continue;
        }
        for (const struct mapi_fn_def *d = m->libs[i].lib->functions; d->name; d++) {
            if (strcasecmp(d->name, fname) == 0) {
                *libidx = i;
                return d;
            }
        }
    }
    return NULL;
}
