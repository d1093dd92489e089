/*
 * daemon/mapid/handlers.c - mapid's request handlers, one per message type of the wire
 * protocol (payloads in common/wire.h). handle_message first decodes the whole message with
 * the pure decoder of request.c (a malformed or unknown message closes the connection, no
 * handler runs); each handler then works on the decoded struct mapid_request only: it checks
 * that the client may touch the objects it names (same uid, or root), does the work and
 * sends exactly one reply: the answer, or an error (MAPI error number and a message).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/mapid/handlers.h"
#include "daemon/mapid/request.h"

struct req {
    struct mapid *m;
    struct client *c;
    const struct wire_hdr *hdr;
    struct mapid_request *rq; /* the decoded request */
    int replied;
};

static void send_reply(struct req *q, struct wire_writer *w, const int *fds, int nfds)
{
    if (wire_finish(w) < 0 || wire_send(q->c->sock, w, fds, nfds) < 0) {
        mapi_log(LOG_LVL_DEBUG, "cannot reply to client pid %d: %s", (int)q->c->pid,
                 strerror(errno));
        q->c->dead = 1;
    }
    wire_writer_free(w);
    q->replied = 1;
}

static void reply_error(struct req *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(struct req *q, int code, const char *fmt, ...)
{
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    struct wire_writer w;
    wire_writer_init(&w, q->hdr->type, q->hdr->reqid, WIRE_F_ERROR);
    wire_put_i32(&w, code);
    wire_put_str(&w, msg);
    send_reply(q, &w, NULL, 0);
}

static void reply_begin(struct req *q, struct wire_writer *w)
{
    wire_writer_init(w, q->hdr->type, q->hdr->reqid, 0);
}

static void reply_empty(struct req *q)
{
    struct wire_writer w;
    reply_begin(q, &w);
    send_reply(q, &w, NULL, 0);
}

static int may_see(const struct client *c, uid_t uid)
{
    return c->uid == 0 || c->uid == uid;
}

/* Takes the first descriptor that came with the request, or -1. */
static int take_fd(struct client *c, uint32_t index)
{
    if (index >= (uint32_t)c->nfds || c->fds[index] < 0)
        return -1;
    int fd = c->fds[index];
    c->fds[index] = -1;
    return fd;
}

/* A flow the client owns, or NULL after replying with an error. */
static struct flow *own_flow(struct req *q, int id)
{
    struct flow *f = flow_find(q->m, id);
    if (!f) {
        reply_error(q, MAPI_INVALID_FLOW, "no flow %d", id);
        return NULL;
    }
    if (f->owner != q->c) {
        reply_error(q, may_see(q->c, f->uid) ? MAPI_INVALID_FLOW : MAPID_PERMISSION_DENIED,
                    "flow %d belongs to another application", id);
        return NULL;
    }
    return f;
}

static void msg_hello(struct req *q)
{
    uint16_t lo = q->rq->min_version;
    if (lo > WIRE_VERSION) {
        reply_error(q, MCOM_UNKNOWN_ERROR, "protocol version %u not supported (mapid speaks %u)",
                    lo, WIRE_VERSION);
        return;
    }
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_u16(&w, WIRE_VERSION);
    wire_put_str(&w, "mapid " MAPI_VERSION);
    send_reply(q, &w, NULL, 0);
}

static void reply_flow_created(struct req *q, struct flow *f)
{
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, f->id);
    wire_put_i32(&w, f->dev->id);
    send_reply(q, &w, NULL, 0);
}

static int check_flow_limit(struct req *q)
{
    const struct user *u = q->c->user;
    if (u->nflows >= q->m->conf.max_flows_per_user) {
        reply_error(q, MAPID_LIMIT_EXCEEDED,
                    "uid %u already has %d flows over all its connections (max_flows_per_user)",
                    (unsigned)u->uid, u->nflows);
        return -1;
    }
    return 0;
}

static void msg_create_flow(struct req *q)
{
    const char *dev = q->rq->device;
    struct device *d = device_find(q->m, dev);
    if (!d) {
        reply_error(q, MAPID_NO_DRIVER, "no device \"%s\" in %s", dev, q->m->conf.path);
        return;
    }
    if (d->offline && !may_see(q->c, d->uid)) {
        reply_error(q, MAPID_PERMISSION_DENIED, "device %s belongs to another user", dev);
        return;
    }
    if (check_flow_limit(q) < 0)
        return;
    char msg[512] = "";
    int rc = device_open(d, msg, sizeof(msg));
    if (rc) {
        reply_error(q, rc, "%s: %s", dev, msg);
        return;
    }
    struct flow *f = flow_create(q->m, q->c, d);
    if (!f) {
        reply_error(q, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return;
    }
    reply_flow_created(q, f);
}

static struct device *offline_device_from_request(struct req *q)
{
    uint32_t format = q->rq->format;
    const char *path = q->rq->path;
    /* Counted over all of mapid's trace devices, so the limit holds across connections. */
    int have = device_count_offline(q->m, q->c->uid);
    if (have >= q->m->conf.max_devices_per_user) {
        reply_error(q, MAPID_LIMIT_EXCEEDED,
                    "user %d already has %d trace devices (max_devices_per_user is %d)",
                    (int)q->c->uid, have, q->m->conf.max_devices_per_user);
        return NULL;
    }
    int fd = take_fd(q->c, 0);
    if (fd < 0) {
        reply_error(q, MAPID_NO_FD, "no file descriptor came with the request for %s", path);
        return NULL;
    }
    int err = 0;
    char msg[512] = "";
    struct device *d =
        device_create_offline(q->m, q->c, fd, (int)format, path, &err, msg, sizeof(msg));
    if (!d)
        reply_error(q, err, "%s", msg);
    return d;
}

static void msg_create_offline_device(struct req *q)
{
    struct device *d = offline_device_from_request(q);
    if (!d)
        return;
    mapi_log(LOG_LVL_DEBUG, "client pid %d created trace device %s", (int)q->c->pid, d->name);
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_str(&w, d->name);
    send_reply(q, &w, NULL, 0);
}

static struct device *own_offline_device(struct req *q)
{
    const char *dev = q->rq->device;
    struct device *d = device_find(q->m, dev);
    if (!d || !d->offline) {
        reply_error(q, MAPID_NO_DEVICE, "no trace device \"%s\"", dev);
        return NULL;
    }
    if (!may_see(q->c, d->uid)) {
        reply_error(q, MAPID_PERMISSION_DENIED, "device %s belongs to another user", dev);
        return NULL;
    }
    return d;
}

static void msg_start_offline_device(struct req *q)
{
    struct device *d = own_offline_device(q);
    if (!d)
        return;
    char msg[512] = "";
    int rc = user_thread_check(q->m, d, msg, sizeof(msg));
    if (!rc)
        rc = device_start(d, msg, sizeof(msg));
    if (rc) {
        reply_error(q, rc, "%s", msg);
        return;
    }
    reply_empty(q);
}

/*
 * Ends a trace device: the requester's flows on it are closed, the creator's hold released
 * (device_release: flows of other applications on it end with FLOW_FINISHED; the device is
 * freed when the last of them closes). Any client of the device's uid (or root) may do it.
 */
static void msg_delete_offline_device(struct req *q)
{
    struct device *d = own_offline_device(q);
    if (!d)
        return;
    d->nflows++; /* keeps d while its flows close (one of them may release it) */
    for (struct flow *f = q->m->flows, *next; f; f = next) {
        next = f->next;
        if (f->dev == d && f->owner == q->c)
            flow_close(q->m, f);
    }
    char why[64];
    snprintf(why, sizeof(why), "deleted by client pid %d", (int)q->c->pid);
    device_release(q->m, d, why);
    device_flow_gone(q->m, d);
    reply_empty(q);
}

static void msg_create_offline_flow(struct req *q)
{
    if (check_flow_limit(q) < 0)
        return;
    struct device *d = offline_device_from_request(q);
    if (!d)
        return;
    struct flow *f = flow_create(q->m, q->c, d);
    if (!f) {
        device_release(q->m, d, "out of memory");
        reply_error(q, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return;
    }
    f->owns_device = 1; /* its close releases the device */
    reply_flow_created(q, f);
}

static void msg_get_function(struct req *q)
{
    const char *name = q->rq->name;
    int libidx;
    const struct mapi_fn_def *def = flibs_find(q->m, name, &libidx);
    if (!def) {
        reply_error(q, MAPI_FUNCTION_NOT_FOUND, "no function %s in the loaded libraries (%s)", name,
                    q->m->conf.libs);
        return;
    }
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_str(&w, def->name);
    wire_put_str(&w, def->argdescr);
    wire_put_str(&w, q->m->libs[libidx].lib->name);
    wire_put_u32(&w, def->flags);
    send_reply(q, &w, NULL, 0);
}

/*
 * Applies a function to a flow. The decoder has checked the arguments' form (letters,
 * strings, descriptor indices); here they are checked against the function's argdescr, 'w'
 * indices become the descriptors sent with the message and 'r' must name a flow the client
 * may see. The argument array and its string block go to the instance (flow_apply).
 */
static void msg_apply_function(struct req *q)
{
    struct mapid_request *rq = q->rq;
    int32_t id = rq->flow;
    struct flow *f = own_flow(q, id);
    if (!f)
        return;
    if (f->status != FLOW_INIT) {
        reply_error(q, MFUNCT_COULD_NOT_APPLY_FUNCT, "flow %d is already connected", id);
        return;
    }
    if (f->nfns >= q->m->conf.max_functions_per_flow) {
        reply_error(q, MAPID_LIMIT_EXCEEDED,
                    "flow %d already has %d functions (max_functions_per_flow)", id, f->nfns);
        return;
    }
    int libidx;
    const struct mapi_fn_def *def = flibs_find(q->m, rq->name, &libidx);
    if (!def) {
        reply_error(q, MAPI_FUNCTION_NOT_FOUND, "no function %s", rq->name);
        return;
    }
    size_t want = strlen(def->argdescr);
    if (rq->nargs != want) {
        reply_error(q, MFUNCT_INVALID_ARGUMENT, "%s takes %zu arguments (\"%s\"), got %u",
                    def->name, want, def->argdescr, rq->nargs);
        return;
    }
    struct mapi_arg *args = rq->args;
    size_t done = 0; /* arguments looked at; their 'w' slots hold descriptors (or -1) */
    int bad = 0;
    for (size_t i = 0; i < want && !bad; i++) {
        char letter = def->argdescr[i];
        int argerr = i < 5 ? MFUNCT_INVALID_ARGUMENT_1 + (int)i : MFUNCT_INVALID_ARGUMENT_6;
        if (args[i].type != letter) {
            reply_error(q, argerr, "%s: argument %zu must be of type '%c'", def->name, i + 1,
                        letter);
            bad = 1;
            break;
        }
        done = i + 1;
        switch (letter) {
        case 'w': {
            args[i].v.fd = take_fd(q->c, (uint32_t)args[i].v.fd);
            if (args[i].v.fd < 0) {
                reply_error(q, MAPI_ERROR_FILE, "%s: no file descriptor for argument %zu",
                            def->name, i + 1);
                bad = 1;
                break;
            }
            /* Written by the capture thread: a pipe nobody reads must not block it. */
            char why[256];
            if (device_check_fd(args[i].v.fd, 1, why, sizeof(why)) < 0) {
                reply_error(q, MAPI_ERROR_FILE, "%s: argument %zu: %s", def->name, i + 1, why);
                bad = 1;
            }
            break;
        }
        case 'r': {
            struct flow *ref = flow_find(q->m, args[i].v.i);
            if (!ref || !may_see(q->c, ref->uid)) {
                reply_error(q, argerr, "%s: argument %zu names no flow of yours", def->name, i + 1);
                bad = 1;
            }
            break;
        }
        default:
            break;
        }
    }
    if (bad) {
        for (size_t i = 0; i < done; i++)
            if (args[i].type == 'w' && args[i].v.fd >= 0)
                close(args[i].v.fd);
        return; /* handle_message frees args and strings */
    }
    /* flow_apply owns them from here, whatever it returns. */
    char *strings = rq->strings;
    rq->args = NULL;
    rq->strings = NULL;
    rq->nargs = 0;
    char msg[512] = "";
    int fid = flow_apply(f, def, libidx, args, (int)want, strings, msg, sizeof(msg));
    if (fid < 0) {
        reply_error(q, -fid, "%s", msg);
        return;
    }
    struct fn_inst *fn = f->fns[f->nfns - 1];
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, fid);
    wire_put_u32(&w, fn->fi.result_size);
    wire_put_u32(&w, def->flags);
    send_reply(q, &w, NULL, 0);
}

/* A read-only descriptor of the memfd fd (a new open file description), or -1. */
static int reopen_ro(int fd)
{
    char procpath[64];
    snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
    return open(procpath, O_RDONLY | O_CLOEXEC);
}

/* Activates a flow and sends the client its shared memory. A failed connect closes the flow:
 * going back to FLOW_INIT is not possible once functions were initialised. */
static void msg_connect(struct req *q)
{
    int32_t id = q->rq->flow;
    struct flow *f = own_flow(q, id);
    if (!f)
        return;
    if (f->status != FLOW_INIT) {
        reply_error(q, MDLIB_FLOW_ALREADY_ACTIVE, "flow %d is already connected", id);
        return;
    }
    if (f->dev->retired) {
        reply_error(q, MAPID_NO_DEVICE,
                    "trace device %s of flow %d was deleted (or its creator went away); close "
                    "the flow",
                    f->dev->name, id);
        return;
    }
    char msg[512] = "";
    int rc = 0;
    if (f->owns_device)
        rc = user_thread_check(q->m, f->dev, msg, sizeof(msg));
    if (!rc)
        rc = flow_connect(q->m, f, msg, sizeof(msg));
    if (rc == 0) {
        /* Active before the capture starts, so a trace's first packet is not missed. */
        device_add_active(f->dev, f);
        if (f->owns_device || !f->dev->offline)
            rc = device_start(f->dev, msg, sizeof(msg));
    }
    if (rc) {
        reply_error(q, rc, "%s", msg);
        flow_close(q->m, f);
        return;
    }
    /* Descriptors: the result region, then per ring its producer part and its consumer
     * block. The sealed regions go out as read-only reopens (the seals are what protects
     * them; the read-only descriptor is a second fence). */
    int fds[WIRE_MAX_FDS];
    int opened[WIRE_MAX_FDS]; /* ours to close after sending */
    int nfds = 0, ok = 1;
    uint32_t nrings = 0;
    for (int i = 0; i < f->nfns; i++)
        nrings += f->fns[i]->ring != NULL;
    if (1 + 2 * (uint64_t)nrings > WIRE_MAX_FDS)
        ok = 0;
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_u64(&w, f->region_len);
    wire_put_u32(&w, nrings);
    if (ok) {
        opened[nfds] = 1;
        fds[nfds] = reopen_ro(f->region_fd);
        ok = fds[nfds++] >= 0;
    }
    for (int i = 0; i < f->nfns && ok; i++) {
        struct ring *r = f->fns[i]->ring;
        if (!r)
            continue;
        wire_put_i32(&w, f->fns[i]->fi.fid);
        wire_put_u64(&w, r->maplen);
        opened[nfds] = 1;
        fds[nfds] = reopen_ro(r->fd);
        ok = fds[nfds++] >= 0;
        opened[nfds] = 0;
        fds[nfds++] = r->ctl_fd;
    }
    if (ok) {
        send_reply(q, &w, fds, nfds);
    } else {
        wire_writer_free(&w);
        reply_error(q, MDLIB_SHM_ERR,
                    "cannot share the flow's memory (%u rings; at most %d per flow)", nrings,
                    (WIRE_MAX_FDS - 1) / 2);
    }
    for (int i = 0; i < nfds; i++)
        if (opened[i] && fds[i] >= 0)
            close(fds[i]);
    if (!ok)
        flow_close(q->m, f);
}

static void msg_close_flow(struct req *q)
{
    int32_t id = q->rq->flow;
    struct flow *f = flow_find(q->m, id);
    if (!f) {
        reply_error(q, MAPI_INVALID_FLOW, "no flow %d", id);
        return;
    }
    if (!may_see(q->c, f->uid)) {
        reply_error(q, MAPID_PERMISSION_DENIED, "flow %d belongs to another user", id);
        return;
    }
    flow_close(q->m, f);
    reply_empty(q);
}

static void msg_device_info(struct req *q)
{
    int32_t id = q->rq->id;
    uint8_t next = q->rq->next;
    struct device *best = NULL;
    for (struct device *d = q->m->devices; d; d = d->next) {
        if (d->offline && !may_see(q->c, d->uid))
            continue;
        if (next ? (d->id > id && (!best || d->id < best->id)) : d->id == id)
            best = d;
    }
    if (!best) {
        reply_error(q, MAPI_DEVICE_INFO_ERR, next ? "no device after %d" : "no device %d", id);
        return;
    }
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, best->id);
    wire_put_str(&w, best->name);
    wire_put_str(&w, best->offline
                         ? best->ops->name
                         : (best->conf->driver[0] ? best->conf->driver : "mapinicdrv.so"));
    wire_put_str(&w, best->conf ? best->conf->alias : "");
    wire_put_str(&w, best->conf ? best->conf->description : "trace file");
    wire_put_i32(&w, best->conf ? best->conf->link_speed : 0);
    wire_put_i32(&w, best->conf ? best->conf->mpls : 0);
    wire_put_i32(&w, best->conf ? best->conf->vlan : 0);
    send_reply(q, &w, NULL, 0);
}

static void msg_library_info(struct req *q)
{
    int32_t id = q->rq->id;
    uint8_t next = q->rq->next;
    /* 64-bit: "next" of INT32_MAX must not overflow (ids come from the client). */
    int64_t idx = next ? (int64_t)id + 1 : id;
    if (idx < 0 || idx >= q->m->nlibs) {
        reply_error(q, MAPI_LIBRARY_LOAD_ERR, "no library %lld", (long long)idx);
        return;
    }
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, (int32_t)idx);
    wire_put_str(&w, q->m->libs[idx].lib->name);
    wire_put_u32(&w, (uint32_t)q->m->libs[idx].nfuncs);
    send_reply(q, &w, NULL, 0);
}

static void msg_libfunct_info(struct req *q)
{
    int32_t lib = q->rq->lib, fnum = q->rq->fnum;
    uint8_t next = q->rq->next;
    int64_t idx = next ? (int64_t)fnum + 1 : fnum; /* no overflow at INT32_MAX */
    if (lib < 0 || lib >= q->m->nlibs || idx < 0 || idx >= q->m->libs[lib].nfuncs) {
        reply_error(q, MAPI_LIBRARY_LOAD_ERR, "no function %lld in library %d", (long long)idx,
                    lib);
        return;
    }
    const struct mapi_fn_def *d = &q->m->libs[lib].lib->functions[idx];
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, (int32_t)idx);
    wire_put_str(&w, d->name);
    wire_put_str(&w, d->descr ? d->descr : "");
    wire_put_str(&w, d->argdescr);
    wire_put_str(&w, "1");
    send_reply(q, &w, NULL, 0);
}

static void msg_flow_info(struct req *q)
{
    int32_t id = q->rq->flow;
    uint8_t next = q->rq->next;
    struct flow *best = NULL;
    for (struct flow *f = q->m->flows; f; f = f->next) {
        if (!may_see(q->c, f->uid))
            continue;
        if (next ? (f->id > id && (!best || f->id < best->id)) : f->id == id)
            best = f;
    }
    if (!best) {
        reply_error(q, next ? MAPI_FLOW_INFO_ERR : MAPI_INVALID_FLOW,
                    next ? "no flow after %d" : "no flow %d", id);
        return;
    }
    uint32_t status = (uint32_t)best->status;
    if (best->shm)
        status = __atomic_load_n(&best->shm->status, __ATOMIC_ACQUIRE);
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_u32(&w, (uint32_t)best->uid);
    wire_put_i32(&w, best->id);
    wire_put_i32(&w, best->dev->id);
    wire_put_str(&w, best->dev->name);
    wire_put_u32(&w, (uint32_t)best->nfns);
    wire_put_u64(&w, (uint64_t)best->start);
    wire_put_u64(&w, (uint64_t)best->end);
    wire_put_u32(&w, status);
    wire_put_u64(&w, __atomic_load_n(&best->cpu_ns, __ATOMIC_RELAXED));
    send_reply(q, &w, NULL, 0);
}

static void msg_function_info(struct req *q)
{
    int32_t id = q->rq->flow, fid = q->rq->fid;
    uint8_t next = q->rq->next;
    struct flow *f = flow_find(q->m, id);
    if (!f || !may_see(q->c, f->uid)) {
        reply_error(q, MAPI_INVALID_FLOW, "no flow %d", id);
        return;
    }
    int64_t idx = next ? fid : (int64_t)fid - 1; /* fids are 1..nfns; no overflow at INT32_MIN */
    if (idx < 0 || idx >= f->nfns) {
        reply_error(q, MAPI_FUNCTION_INFO_ERR, "no function %d%s in flow %d", fid,
                    next ? " or after" : "", id);
        return;
    }
    struct fn_inst *fn = f->fns[idx];
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_i32(&w, fn->fi.fid);
    wire_put_str(&w, fn->fi.def->name);
    wire_put_str(&w, q->m->libs[fn->libidx].lib->name);
    wire_put_str(&w, "1");
    wire_put_u64(&w, __atomic_load_n(&fn->pkts, __ATOMIC_RELAXED));
    wire_put_u64(&w, __atomic_load_n(&fn->passed, __ATOMIC_RELAXED));
    wire_put_i32(&w, (int32_t)fn->fi.result_size);
    send_reply(q, &w, NULL, 0);
}

static void msg_stats(struct req *q)
{
    const char *dev = q->rq->device;
    struct device *d = device_find(q->m, dev);
    if (!d || (d->offline && !may_see(q->c, d->uid))) {
        reply_error(q, MAPI_STATS_ERROR, "no device \"%s\"", dev);
        return;
    }
    uint64_t recv = atomic_load(&d->seen), ifdrop = 0, krecv = 0;
    if (d->src && d->ops->stats)
        d->ops->stats(d->src, &krecv, &ifdrop);
    struct wire_writer w;
    reply_begin(q, &w);
    wire_put_u32(&w, (uint32_t)recv);
    wire_put_u32(&w, (uint32_t)atomic_load(&d->drops));
    wire_put_u32(&w, (uint32_t)ifdrop);
    wire_put_str(&w, d->name);
    send_reply(q, &w, NULL, 0);
}

typedef void (*handler_fn)(struct req *q);

static const handler_fn handlers[WIRE_TYPE_MAX] = {
    [WIRE_HELLO] = msg_hello,
    [WIRE_CREATE_FLOW] = msg_create_flow,
    [WIRE_CREATE_OFFLINE_DEVICE] = msg_create_offline_device,
    [WIRE_START_OFFLINE_DEVICE] = msg_start_offline_device,
    [WIRE_DELETE_OFFLINE_DEVICE] = msg_delete_offline_device,
    [WIRE_CREATE_OFFLINE_FLOW] = msg_create_offline_flow,
    [WIRE_GET_FUNCTION] = msg_get_function,
    [WIRE_APPLY_FUNCTION] = msg_apply_function,
    [WIRE_CONNECT] = msg_connect,
    [WIRE_CLOSE_FLOW] = msg_close_flow,
    [WIRE_DEVICE_INFO] = msg_device_info,
    [WIRE_LIBRARY_INFO] = msg_library_info,
    [WIRE_LIBFUNCT_INFO] = msg_libfunct_info,
    [WIRE_FLOW_INFO] = msg_flow_info,
    [WIRE_FUNCTION_INFO] = msg_function_info,
    [WIRE_STATS] = msg_stats,
};

void handle_message(struct mapid *m, struct client *c, const struct wire_hdr *hdr,
                    const uint8_t *payload)
{
    struct mapid_request rq;
    int rc = mapid_decode_request(hdr, payload, &rq);
    handler_fn h = hdr->type < WIRE_TYPE_MAX ? handlers[hdr->type] : NULL;
    if (rc == MAPID_DECODE_UNKNOWN || !h) {
        mapi_log(LOG_LVL_WARN, "client pid %d sent unknown message type %u; disconnected",
                 (int)c->pid, hdr->type);
        c->dead = 1;
        mapid_request_free(&rq);
        return;
    }
    if (rc == MAPID_DECODE_MALFORMED) {
        /* A field ran past the payload, broke a limit, or bytes were left over. */
        mapi_log(LOG_LVL_WARN, "client pid %d sent a malformed message (type %u); disconnected",
                 (int)c->pid, hdr->type);
        c->dead = 1;
        return;
    }
    struct req q = {.m = m, .c = c, .hdr = hdr, .rq = &rq};
    if (rc == MAPID_DECODE_NOMEM)
        reply_error(&q, MAPID_MEM_ALLOCATION_ERROR, "out of memory");
    else
        h(&q);
    mapid_request_free(&rq);
    if (!q.replied && !c->dead) {
        /* Every handler replies once; never leave a client waiting. */
        mapi_log(LOG_LVL_ERROR, "no reply to client pid %d for %s; disconnected", (int)c->pid,
                 wire_type_name(hdr->type));
        c->dead = 1;
    }
}
