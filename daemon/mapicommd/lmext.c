/*
 * daemon/mapicommd/lmext.c - what mapicommd needs from libmapi beyond its public API (see
 * mapicommd.h). The DiMAPI replies carry a function's flags (MAPI_FN_*) and argument
 * descriptor, which the public API does not expose, and the packet service must know
 * whether a TO_BUFFER ring is NOWAIT and whether it reached the end of a trace, to wait
 * with a timeout. These are read from libmapi's own tables (mapicommd links the static
 * libmapi), under libmapi's client lock where libmapi itself takes it. This is the only
 * file of mapicommd that includes lib/internal.h; everything else uses include/mapi.h.
 */
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "daemon/mapicommd/mapicommd.h"
#include "lib/internal.h"
#include "mapi/flib.h"

int mc_lookup_function(const char *name, char *argdescr, size_t alen, char *libname, size_t llen,
                       uint32_t *flags)
{
    lm_client_lock();
    const struct lib_fninfo *fi = lm_client_get_function(name);
    if (fi) {
        snprintf(argdescr, alen, "%s", fi->argdescr);
        snprintf(libname, llen, "%s", fi->libname);
        *flags = fi->flags;
    }
    lm_client_unlock();
    return fi ? 0 : -1;
}

int mc_fn_meta(int rfd, int fid, uint32_t *flags, uint32_t *result_size, int *connected,
               int *nowait)
{
    lm_client_lock();
    int rc = -1;
    struct lib_flow *f = lm_flow_get(rfd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", rfd);
        goto out;
    }
    struct lib_fn *fn = lm_flow_fn(f, fid);
    if (!fn) {
        lm_set_error(MAPI_INVALID_FID_FUNCID, "flow %d has no function %d", rfd, fid);
        goto out;
    }
    *flags = fn->flags;
    *result_size = fn->result_size;
    *connected = __atomic_load_n(&f->connected, __ATOMIC_ACQUIRE);
    *nowait =
        fn->ring && fn->ring->hdr && __atomic_load_n(&fn->ring->hdr->nowait, __ATOMIC_RELAXED);
    rc = 0;
out:
    lm_client_unlock();
    return rc;
}

int mc_ring_eof(int rfd, int fid)
{
    lm_client_lock();
    int eof = 0;
    struct lib_flow *f = lm_flow_get(rfd);
    struct lib_fn *fn = f ? lm_flow_fn(f, fid) : NULL;
    if (fn && fn->ring && fn->ring->hdr)
        eof = __atomic_load_n(&fn->ring->hdr->eof, __ATOMIC_ACQUIRE) != 0;
    if (f && f->region &&
        __atomic_load_n(&f->region->status, __ATOMIC_ACQUIRE) == (uint32_t)FLOW_FINISHED)
        eof = 1;
    lm_client_unlock();
    return eof;
}

int mc_is_remote_scope(const char *dev)
{
    lm_client_lock();
    int r = lm_is_remote_scope(dev);
    lm_client_unlock();
    return r;
}

void mc_set_file_dir(int dirfd)
{
    lm_args_set_file_root(dirfd);
}

int mc_lm_gone(char *why, size_t len)
{
    lm_client_poll_events();
    if (!lm_client_gone())
        return 0;
    lm_client_state_error(); /* the reason, as this thread's error */
    mc_last_error(why, len);
    return 1;
}

int mc_lm_forget_dead(char *why, size_t len)
{
    return lm_client_forget_dead(why, len);
}

int mc_last_error(char *msg, size_t len)
{
    int code = 0;
    char text[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&code, text);
    if (code == 0) {
        if (len)
            msg[0] = 0;
        return 0;
    }
    /* mapi_read_error gives "<table text>: <detail>"; the client adds the table text itself. */
    const char *t = mapi_strerror(code);
    size_t tl = strlen(t);
    const char *d = text;
    if (strncmp(text, t, tl) == 0 && text[tl] == ':' && text[tl + 1] == ' ')
        d = text + tl + 2;
    snprintf(msg, len, "%s", d);
    return code;
}
