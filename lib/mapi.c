/*
 * lib/mapi.c - libmapi's public calls on flows, functions, results and packets (the local
 * back end: everything goes to mapid over the Unix socket, see client.c). A flow created on a
 * remote scope ("host:dev, ...") has f->remote set, and every call on it is handed to the
 * remote back end (lib/remote_flow.c, which documents the semantics over a scope).
 *
 * Descriptors: flow descriptors are ours (1, 2, ..., see flows.c) and mapped to mapid's flow
 * ids; function descriptors (fids) are mapid's, numbered per flow from 1.
 *
 * Errors of each call (besides the connection errors every call that talks to mapid can
 * give: 5124 mapid not running, 5123 connection lost or no reply within 30 s, 6140 mapid
 * shut down, 5121 malformed reply) are listed above it. Codes that mapid answers are passed
 * on with mapid's explanation as the detail text of mapi_read_error.
 *
 * Thread safety: all calls may be used from several threads; requests to mapid are
 * serialized. mapi_read_results and mapi_get_next_pkt/mapi_loop take no lock. Each TO_BUFFER
 * fid must be consumed by one thread at a time, and the struct mapi_read_results returns is
 * shared by all threads reading the same (fd, fid).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/internal.h"
#include "mapi/flib.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int scope_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * A device string is a remote (DiMAPI) scope when one of its comma-separated items (blanks
 * around it ignored) has a "host:" part: it starts with '[' (an IPv6 address), or a ':' is
 * preceded by a non-empty host name or address (letters, digits, '.', '-', '_'). Offline
 * device names we created and the devices of our mapi.conf (e.g. "eth0:1") are local, and so
 * is anything without such an item ("/dev/dag0", "eth0"). The remote back end then parses the
 * scope and reports a malformed item (7000).
 */
int lm_is_remote_scope(const char *dev)
{
    if (!strchr(dev, ':') || lm_client_is_offline_device(dev) || lm_remote_conf_has_device(dev))
        return 0;
    const char *p = dev;
    while (*p) {
        while (scope_blank(*p))
            p++;
        if (*p == '[')
            return 1;
        const char *h = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '.' || *p == '-' || *p == '_')
            p++;
        if (p > h && *p == ':')
            return 1;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    return 0;
}

static int malformed(const char *what)
{
    lm_set_error(MCOM_UNKNOWN_ERROR, "malformed %s reply from mapid", what);
    return -1;
}

/* Lock held. Reads "i32 flow, i32 devid" and registers the flow. Returns our fd or -1. */
static int finish_create(struct lib_reply *rep, const char *what)
{
    int32_t id = wire_get_i32(&rep->r);
    int32_t devid = wire_get_i32(&rep->r);
    int ok = wire_reader_ok(&rep->r);
    lm_client_reply_free(rep);
    if (!ok)
        return malformed(what);
    struct lib_flow *f = lm_flow_add(id, devid);
    if (!f) {
        /* Out of memory or descriptors: do not leave the flow behind in mapid. */
        struct wire_writer w;
        struct lib_reply r2;
        int err = lm_last_error();
        if (lm_client_begin(&w, WIRE_CLOSE_FLOW) == 0) {
            wire_put_i32(&w, id);
            if (lm_client_call(&w, NULL, 0, &r2) == 0)
                lm_client_reply_free(&r2);
        }
        lm_set_error(err, "cannot register the new flow");
        return -1;
    }
    return f->fd;
}

/* Opens a trace for mapid to read (the path is relative to our working directory). */
static int open_trace(const char *path)
{
    if (!path) {
        lm_set_error(MAPI_ERROR_FILE, "trace file name is NULL");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        lm_set_error(MAPI_ERROR_FILE, "%s: %s", path, strerror(errno));
    return fd;
}

/* Lock held. Sends `type` (u32 format, str path, + the trace's fd). 0 with *rep, or -1. */
static int send_trace(uint16_t type, const char *path, int format, struct lib_reply *rep)
{
    int tfd = open_trace(path);
    if (tfd < 0)
        return -1;
    struct wire_writer w;
    if (lm_client_begin(&w, type) < 0) {
        close(tfd);
        return -1;
    }
    wire_put_u32(&w, (uint32_t)format);
    wire_put_str(&w, path);
    int rc = lm_client_call(&w, &tfd, 1, rep);
    close(tfd);
    return rc < 0 ? -1 : 0;
}

/* Lock held. Sends a request whose payload is one string and whose reply is empty. */
static int simple_str_request(uint16_t type, const char *s)
{
    struct wire_writer w;
    if (lm_client_begin(&w, type) < 0)
        return -1;
    wire_put_str(&w, s);
    struct lib_reply rep;
    if (lm_client_call(&w, NULL, 0, &rep) < 0)
        return -1;
    lm_client_reply_free(&rep);
    return 0;
}

/* ---- flows --------------------------------------------------------------------------- */

/*
 * mapi_create_flow: a flow on device dev (a device= of mapi.conf, or a name returned by
 * mapi_create_offline_device), or on a remote scope "host:dev, host:port:dev, [v6]:dev, ..."
 * (DiMAPI, see lib/remote.c and lib/remote_flow.c). Returns our flow descriptor (>= 1) or -1.
 * Errors: 6157 dev is NULL; from mapid: 3200/3202 unknown device, 3085 too many flows, 1026
 * the interface cannot be opened. Remote: 7000 malformed scope item; 5124 a sensor cannot be
 * reached (within dimapi_timeout) or the TLS setup failed; 5123 a sensor dropped the
 * connection; the sensor's own error (e.g. 3200) if it refused; the text names the sensor.
 */
MAPI_API int mapi_create_flow(const char *dev)
{
    if (!dev) {
        lm_set_error(MAPI_DEVICE_INFO_ERR, "device name is NULL");
        return -1;
    }
    lm_client_lock();
    int fd = -1;
    if (lm_is_remote_scope(dev)) {
        lm_client_unlock();
        return lm_remote_create_flow(dev);
    }
    struct wire_writer w;
    if (lm_client_begin(&w, WIRE_CREATE_FLOW) < 0)
        goto out;
    wire_put_str(&w, dev);
    struct lib_reply rep;
    if (lm_client_call(&w, NULL, 0, &rep) < 0)
        goto out;
    fd = finish_create(&rep, "CREATE_FLOW");
out:
    lm_client_unlock();
    return fd;
}

/*
 * mapi_create_offline_device: registers the trace file `path` (opened here, so relative to
 * our working directory; mapid gets the open descriptor) in format `format` (MFF_PCAP,
 * MFF_DAG_ERF) as a new device. Returns its name, malloc'd: pass it to
 * mapi_delete_offline_device, which frees it. NULL on error.
 * Errors: 6155 path NULL or not readable (with the reason); from mapid: 3200 no driver for
 * the format, 3203 not a capture file of that format.
 */
MAPI_API char *mapi_create_offline_device(const char *path, int format)
{
    lm_client_lock();
    char *name = NULL;
    struct lib_reply rep;
    if (send_trace(WIRE_CREATE_OFFLINE_DEVICE, path, format, &rep) < 0)
        goto out;
    uint32_t n;
    const uint8_t *p = wire_get_bytes(&rep.r, &n);
    if (!wire_reader_ok(&rep.r) || n == 0 || memchr(p, 0, n)) {
        lm_client_reply_free(&rep);
        malformed("CREATE_OFFLINE_DEVICE");
        goto out;
    }
    name = malloc((size_t)n + 1);
    if (name) {
        memcpy(name, p, n);
        name[n] = 0;
        lm_client_add_offline_device(name);
    } else {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
    }
    lm_client_reply_free(&rep);
out:
    lm_client_unlock();
    return name;
}

/*
 * mapi_start_offline_device: starts reading the trace of an offline device through all
 * flows on it (create, apply and connect them first). Returns 0 or -1.
 * Errors: 3202 dev NULL or unknown (mapid); 3086 the device belongs to another user.
 */
MAPI_API int mapi_start_offline_device(const char *dev)
{
    if (!dev) {
        lm_set_error(MAPID_NO_DEVICE, "device name is NULL");
        return -1;
    }
    lm_client_lock();
    int rc = simple_str_request(WIRE_START_OFFLINE_DEVICE, dev);
    lm_client_unlock();
    return rc;
}

/*
 * mapi_delete_offline_device: stops and deletes an offline device, and frees `dev` (the
 * string mapi_create_offline_device returned), whether or not mapid could delete it.
 * Returns 0 or -1. Errors: 3202 dev NULL or unknown.
 */
MAPI_API int mapi_delete_offline_device(char *dev)
{
    if (!dev) {
        lm_set_error(MAPID_NO_DEVICE, "device name is NULL");
        return -1;
    }
    lm_client_lock();
    int rc = simple_str_request(WIRE_DELETE_OFFLINE_DEVICE, dev);
    lm_client_remove_offline_device(dev);
    lm_client_unlock();
    free(dev);
    return rc;
}

/*
 * mapi_create_offline_flow: an offline device for the trace `path` (opened here) plus a flow
 * on it, in one step; mapid starts reading the trace when the flow is connected, and deletes
 * the device when the flow is closed. Returns our flow descriptor or -1.
 * Errors: 6155 path NULL or not readable; from mapid: 3200 no driver for the format, 3203
 * not a capture file.
 */
MAPI_API int mapi_create_offline_flow(const char *path, int format)
{
    lm_client_lock();
    int fd = -1;
    struct lib_reply rep;
    if (send_trace(WIRE_CREATE_OFFLINE_FLOW, path, format, &rep) == 0)
        fd = finish_create(&rep, "CREATE_OFFLINE_FLOW");
    lm_client_unlock();
    return fd;
}

/*
 * mapi_close_flow: closes flow fd in mapid and releases its shared memory here. The flow is
 * gone locally even if mapid cannot be told (then -1 with 6140/5123 is returned). A thread
 * blocked in mapi_get_next_pkt on this flow returns NULL with 6145.
 * Returns 0 or -1. Errors: 6145 fd <= 0 or unknown.
 */
MAPI_API int mapi_close_flow(int fd)
{
    lm_client_lock();
    struct lib_flow *f = lm_flow_get(fd);
    int rc = -1;
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        goto out;
    }
    if (f->remote) {
        /* Keep the flow alive past its removal from the table while the sensors are told. */
        __atomic_add_fetch(&f->refs, 1, __ATOMIC_ACQ_REL);
        lm_flow_remove(f);
        lm_client_unlock();
        rc = lm_remote_close_flow(f);
        lm_flow_release(f);
        return rc;
    }
    struct wire_writer w;
    if (f->gone) {
        rc = 0; /* mapid already closed it when its connect failed */
    } else if (lm_client_begin(&w, WIRE_CLOSE_FLOW) == 0) {
        wire_put_i32(&w, f->id);
        struct lib_reply rep;
        if (lm_client_call(&w, NULL, 0, &rep) == 0) {
            lm_client_reply_free(&rep);
            rc = 0;
        }
    }
    lm_flow_remove(f);
out:
    lm_client_unlock();
    return rc;
}

/* ---- functions ----------------------------------------------------------------------- */

/*
 * A remote flow with a reference taken (release it), or NULL for a local or unknown fd (the
 * local code then reports unknown descriptors as it always did). No lock needed.
 */
static struct lib_flow *remote_flow(int fd)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (!f || !f->remote)
        return NULL;
    return lm_flow_acquire(fd);
}

/* The array form of apply on a remote flow (the va_list is never read). */
static int apply_array_remote(struct lib_flow *f, const char *funct, char **args, int nargs, ...)
{
    va_list ap;
    va_start(ap, nargs);
    int fid = lm_remote_apply(f, funct, 1, -1, ap, args, nargs);
    va_end(ap);
    return fid;
}

/* Lock held. Checks fd for apply: 6145 unknown, 7006 connected. */
static struct lib_flow *apply_flow(int fd, const char *funct)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        return NULL;
    }
    if (__atomic_load_n(&f->connected, __ATOMIC_ACQUIRE)) {
        lm_set_error(MFUNCT_COULD_NOT_APPLY_FUNCT,
                     "flow %d is already connected: apply functions before mapi_connect", fd);
        return NULL;
    }
    if (!funct) {
        lm_set_error(MAPI_FUNCTION_NOT_FOUND, "function name is NULL");
        return NULL;
    }
    return f;
}

/* Lock held. Sends APPLY_FUNCTION with the encoded args and records the new fid. */
static int apply_send(struct lib_flow *f, const char *funct, struct lib_args *a)
{
    struct wire_writer w;
    if (lm_client_begin(&w, WIRE_APPLY_FUNCTION) < 0) {
        lm_args_free(a, 1);
        return -1;
    }
    wire_put_i32(&w, f->id);
    wire_put_str(&w, funct);
    lm_args_encode(a, &w);
    struct lib_reply rep;
    if (lm_client_call(&w, a->fds, a->nfds, &rep) < 0) {
        lm_args_free(a, 1);
        return -1;
    }
    int32_t fid = wire_get_i32(&rep.r);
    uint32_t result_size = wire_get_u32(&rep.r);
    uint32_t flags = wire_get_u32(&rep.r);
    int ok = wire_reader_ok(&rep.r);
    lm_client_reply_free(&rep);
    if (!ok) {
        lm_args_free(a, 1);
        return malformed("APPLY_FUNCTION");
    }
    if (lm_flow_add_fn(f, fid, funct, result_size, flags) < 0) {
        lm_args_free(a, 1);
        return -1;
    }
    lm_args_free(a, 0);
    return fid;
}

/*
 * mapi_apply_function: applies function `funct` (its argument descriptor comes from mapid)
 * to flow fd; the varargs follow the descriptor (see lib/args.c). Returns the fid (>= 1) or
 * -1. Errors: 6145 fd unknown; 7006 flow already connected; 6144 unknown function;
 * 7001..7005, 7011 (n-th argument), 7000 bad argument (NULL string, flow reference to a
 * descriptor that is not open, malformed "fid@fd" list); 6155 / 3083 'w' file cannot be
 * created / exists; from mapid: the function's own codes (7000.., 1025, ...).
 */
static int apply_va(int fd, const char *funct, int nvar, va_list ap)
{
    struct lib_flow *rf = remote_flow(fd);
    if (rf) {
        int rfid = lm_remote_apply(rf, funct, 0, nvar, ap, NULL, 0);
        lm_flow_release(rf);
        return rfid;
    }
    lm_client_lock();
    int fid = -1;
    struct lib_flow *f = apply_flow(fd, funct);
    if (!f)
        goto out;
    const struct lib_fninfo *info = lm_client_get_function(funct);
    if (!info)
        goto out;
    char argdescr[MAPI_STR_LENGTH];
    memcpy(argdescr, info->argdescr, sizeof(argdescr));
    struct lib_args a;
    if (lm_args_from_va(&a, argdescr, nvar, ap) == 0)
        fid = apply_send(f, funct, &a);
out:
    lm_client_unlock();
    return fid;
}

/* The plain symbol, for callers that bypass the counting macro of mapi.h. */
MAPI_API int(mapi_apply_function)(int fd, const char *funct, ...)
{
    va_list ap;
    va_start(ap, funct);
    int fid = apply_va(fd, funct, -1, ap);
    va_end(ap);
    return fid;
}

/*
 * mapi_apply_function_n: what the mapi_apply_function macro calls, with the number of
 * arguments after funct counted at compile time: missing numeric arguments default to 0,
 * missing strings and extra arguments are errors (instead of reading stray varargs).
 */
MAPI_API int mapi_apply_function_n(int fd, int nvar, const char *funct, ...)
{
    va_list ap;
    va_start(ap, funct);
    int fid = apply_va(fd, funct, nvar, ap);
    va_end(ap);
    return fid;
}

/*
 * mapi_apply_function_array: as mapi_apply_function, with every argument given as a string
 * (args[0..nargs-1]) converted according to the descriptor. Errors as mapi_apply_function,
 * plus 7000 when nargs differs from the number of arguments the function takes and
 * 7001..7005/7011 for a string that is not a valid number of the argument's type.
 */
MAPI_API int mapi_apply_function_array(int fd, const char *funct, char **args, int nargs)
{
    struct lib_flow *rf = remote_flow(fd);
    if (rf) {
        int rfid = apply_array_remote(rf, funct, args, nargs);
        lm_flow_release(rf);
        return rfid;
    }
    lm_client_lock();
    int fid = -1;
    struct lib_flow *f = apply_flow(fd, funct);
    if (!f)
        goto out;
    const struct lib_fninfo *info = lm_client_get_function(funct);
    if (!info)
        goto out;
    struct lib_args a;
    if (lm_args_from_array(&a, info->argdescr, args, nargs) == 0)
        fid = apply_send(f, funct, &a);
out:
    lm_client_unlock();
    return fid;
}

/* ---- connect ------------------------------------------------------------------------- */

/* Maps and checks the result region; caches each function's slot. 0 or -1 (6142). */
static int attach_region(struct lib_flow *f, int fd, uint64_t bytes)
{
    struct stat st;
    if (bytes < sizeof(struct mapi_shm_hdr) || bytes > SIZE_MAX || fstat(fd, &st) < 0 ||
        (uint64_t)st.st_size < bytes) {
        lm_set_error(MAPI_CONNECT, "result region has a bad size (%llu bytes)",
                     (unsigned long long)bytes);
        return -1;
    }
    void *m = mmap(NULL, (size_t)bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        lm_set_error(MAPI_CONNECT, "mapping the result region: %s", strerror(errno));
        return -1;
    }
    struct mapi_shm_hdr *h = m;
    f->region = h;
    f->region_len = (size_t)bytes;
    if (h->magic != MAPI_SHM_MAGIC || h->version != MAPI_SHM_VERSION || h->size != bytes ||
        h->nslots > (bytes - sizeof(*h)) / sizeof(struct mapi_shm_slot)) {
        lm_set_error(MAPI_CONNECT, "the result region has a bad header");
        return -1;
    }
    for (int fid = 1; fid < f->nfns; fid++) {
        struct lib_fn *fn = f->fns[fid];
        if (!fn || fn->result_size == 0)
            continue;
        for (uint32_t i = 0; i < h->nslots; i++) {
            if (h->slots[i].fid != fid)
                continue;
            const struct mapi_shm_result *r = mapi_shm_result_at(h, bytes, i);
            if (!r)
                break;
            fn->slot_size = h->slots[i].size;
            fn->buf = calloc(1, fn->slot_size ? fn->slot_size : 1);
            fn->bufcap = fn->slot_size;
            if (!fn->buf) {
                lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
                return -1;
            }
            fn->slot = r;
            break;
        }
    }
    return 0;
}

/* Undoes a partial connect (the flow stays connected in mapid; closing it cleans up). */
static void detach_all(struct lib_flow *f)
{
    for (int i = 0; i < f->nrings; i++)
        lm_ring_detach(&f->rings[i]);
    free(f->rings);
    f->rings = NULL;
    f->nrings = 0;
    if (f->region)
        munmap(f->region, f->region_len);
    f->region = NULL;
    for (int fid = 1; fid < f->nfns; fid++) {
        struct lib_fn *fn = f->fns[fid];
        if (!fn)
            continue;
        free(fn->buf);
        fn->buf = NULL;
        fn->bufcap = 0;
        fn->slot = NULL;
        fn->ring = NULL;
    }
}

/*
 * mapi_connect: activates flow fd in mapid and maps its shared memory (results and packet
 * rings read-only, each ring's consumer block read-write). Returns 0 or -1. Errors: 6145 fd
 * unknown; 3081 already connected; 6142 the shared memory mapid sent is unusable; from mapid: 3085
 * shared-memory limit, 3075 cannot allocate, the init errors of the functions (3503.., 7007, ...),
 * 1026 the capture cannot start. After an error from mapid (other than 3081) mapid has closed the
 * flow: only mapi_close_flow is useful then (it succeeds without asking mapid).
 */
MAPI_API int mapi_connect(int fd)
{
    struct lib_flow *rf = remote_flow(fd);
    if (rf) {
        int rrc = lm_remote_connect(rf);
        lm_flow_release(rf);
        return rrc;
    }
    lm_client_lock();
    int rc = -1;
    struct lib_flow *f = lm_flow_get(fd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        goto out;
    }
    if (__atomic_load_n(&f->connected, __ATOMIC_ACQUIRE)) {
        lm_set_error(MDLIB_FLOW_ALREADY_ACTIVE, "flow %d is already connected", fd);
        goto out;
    }
    struct wire_writer w;
    if (lm_client_begin(&w, WIRE_CONNECT) < 0)
        goto out;
    wire_put_i32(&w, f->id);
    struct lib_reply rep;
    int crc = lm_client_call(&w, NULL, 0, &rep);
    if (crc < 0) {
        /* mapid closes a flow whose connect failed (a function's init, the capture). */
        if (crc == CLIENT_ERR_DAEMON && lm_last_error() != MDLIB_FLOW_ALREADY_ACTIVE &&
            lm_last_error() != MAPI_INVALID_FLOW && lm_last_error() != MAPID_PERMISSION_DENIED)
            f->gone = 1;
        goto out;
    }
    uint64_t region_bytes = wire_get_u64(&rep.r);
    uint32_t nrings = wire_get_u32(&rep.r);
    if (!wire_reader_ok(&rep.r) || nrings >= WIRE_MAX_FDS || rep.nfds != 2 * (int)nrings + 1) {
        lm_set_error(MAPI_CONNECT, "malformed CONNECT reply (%u rings, %d descriptors)", nrings,
                     rep.nfds);
        lm_client_reply_free(&rep);
        goto out;
    }
    if (attach_region(f, rep.fds[0], region_bytes) < 0)
        goto fail;
    if (nrings) {
        f->rings = calloc(nrings, sizeof(*f->rings));
        if (!f->rings) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            goto fail;
        }
    }
    for (uint32_t i = 0; i < nrings; i++) {
        int32_t fid = wire_get_i32(&rep.r);
        uint64_t bytes = wire_get_u64(&rep.r);
        struct lib_fn *fn = lm_flow_fn(f, fid);
        if (!wire_reader_ok(&rep.r) || !fn || fn->ring) {
            lm_set_error(MAPI_CONNECT, "CONNECT reply names an unknown ring fid %d", fid);
            goto fail;
        }
        if (lm_ring_attach(&f->rings[i], fid, rep.fds[1 + 2 * i], rep.fds[2 + 2 * i], bytes) < 0)
            goto fail;
        f->nrings++;
        fn->ring = &f->rings[i];
    }
    lm_client_reply_free(&rep); /* closes the descriptors: the mappings stay */
    __atomic_store_n(&f->connected, 1, __ATOMIC_RELEASE);
    rc = 0;
    goto out;
fail:
    lm_client_reply_free(&rep);
    detach_all(f);
out:
    lm_client_unlock();
    return rc;
}

/* ---- results and packets ------------------------------------------------------------- */

/*
 * The next record of a MAPI_FN_QUEUE function (BUCKET, HASHSAMP, THRESHOLD): res points to a
 * library-owned, suitably aligned copy, valid until the next read of this fid. Waits for a record;
 * NULL with 6158 once the flow has finished (end of a trace) and the queue is empty, 6146 if the
 * function keeps no queue (e.g. HASHSAMP with keep = 0).
 */
static mapi_results_t *read_queue(int fd, int fid)
{
    struct lib_flow *f = lm_flow_acquire(fd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        return NULL;
    }
    struct lib_fn *fn = lm_flow_fn(f, fid);
    if (!fn || !fn->ring) {
        lm_flow_release(f);
        lm_set_error(MAPI_SHM_ERR, "function %d keeps no queue of results", fid);
        return NULL;
    }
    struct mapipkt *rec;
    int rc = lm_ring_next(f, fn->ring, &rec);
    mapi_results_t *out = NULL;
    if (rc == RING_PACKET && rec->caplen > fn->bufcap) {
        /* Records sit 4-byte aligned in the ring: hand out an aligned copy. */
        void *nb = malloc(rec->caplen);
        if (!nb) {
            lm_flow_release(f);
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            return NULL;
        }
        free(fn->buf);
        fn->buf = nb;
        fn->bufcap = rec->caplen;
    }
    if (rc == RING_PACKET) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        memcpy(fn->buf, &rec->pkt, rec->caplen);
        fn->res.res = fn->buf;
        fn->res.ts = (unsigned long long)tv.tv_sec * 1000000ull + (unsigned long long)tv.tv_usec;
        fn->res.size = (int)rec->caplen;
        out = &fn->res;
    } else if (rc == RING_END) {
        lm_set_error(MAPI_END_OF_RESULTS, "function %d of flow %d has no more results", fid, fd);
    }
    lm_flow_release(f);
    return out;
}

/*
 * mapi_read_results: a consistent snapshot of fid's result, copied from shared memory with
 * no system call besides gettimeofday and no message to mapid. Returns a library-owned
 * struct {res, ts (microseconds since the epoch, time of this read), size}, reused (and the
 * bytes at res overwritten) by the next read of the same (fd, fid) and freed by
 * mapi_close_flow. NULL on error.
 * Errors: 6145 fd <= 0 or unknown; 6143 not connected; 6147 unknown fid; 6146 the function
 * has no result; 6140 mapid closed the flow (shutdown); 5123 the connection to mapid was found
 * lost by another call (this call makes no system call to find out itself); 6140 (or 5123)
 * also when the result stayed locked for MAPI_SHM_READ_MAX_NS (1 s; mapid stopped in the
 * middle of writing it): the read is bounded, never a hang.
 * Functions that queue records (MAPI_FN_QUEUE: BUCKET, HASHSAMP, THRESHOLD) return the next
 * record per call instead, waiting for it (see read_queue: 6158 at the end of a trace).
 */
MAPI_API mapi_results_t *mapi_read_results(int fd, int fid)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (__builtin_expect(!f, 0)) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        return NULL;
    }
    if (__builtin_expect(f->remote != NULL, 0)) {
        struct lib_flow *rf = lm_flow_acquire(fd);
        if (!rf) {
            lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
            return NULL;
        }
        mapi_results_t *res = lm_remote_read_results(rf, fid);
        lm_flow_release(rf);
        return res;
    }
    if (__builtin_expect(!__atomic_load_n(&f->connected, __ATOMIC_ACQUIRE), 0)) {
        lm_set_error(MAPI_FLOW_NOT_CONNECTED, "flow %d is not connected", fd);
        return NULL;
    }
    struct lib_fn *fn = lm_flow_fn(f, fid);
    if (__builtin_expect(!fn, 0)) {
        lm_set_error(MAPI_INVALID_FID_FUNCID, "flow %d has no function %d", fd, fid);
        return NULL;
    }
    if (__builtin_expect(fn->flags & MAPI_FN_QUEUE, 0))
        return read_queue(fd, fid);
    if (__builtin_expect(!fn->slot, 0)) {
        lm_set_error(MAPI_SHM_ERR, "function %d (%s) has no result", fid, fn->name);
        return NULL;
    }
    int closed = __atomic_load_n(&f->region->status, __ATOMIC_RELAXED) == FLOW_CLOSED;
    if (__builtin_expect(closed || lm_client_gone(), 0)) {
        /* The values would never change again: say why. */
        if (!lm_client_state_error())
            lm_set_error(MAPI_SHUTTING_DOWN, "mapid closed flow %d", fd);
        return NULL;
    }
    if (__builtin_expect(mapi_shm_result_read(fn->slot, fn->buf, fn->slot_size) < 0, 0)) {
        /* Locked for a second: mapid died (or stopped) in the middle of writing it. */
        lm_client_poll_events();
        if (!lm_client_state_error())
            lm_set_error(MAPI_SHUTTING_DOWN,
                         "result of function %d of flow %d stayed locked for 1 s: mapid stopped "
                         "while writing it",
                         fid, fd);
        return NULL;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    fn->res.res = fn->buf;
    fn->res.ts = (unsigned long long)tv.tv_sec * 1000000ull + (unsigned long long)tv.tv_usec;
    fn->res.size = (int)fn->slot_size;
    return &fn->res;
}

/* Common checks of get_next_pkt and loop; takes a reference on the flow. */
static struct lib_flow *pkt_flow(int fd, int fid, int unknown_flow_err, struct lib_fn **fnp)
{
    if (fd <= 0 || fid <= 0) {
        lm_set_error(MAPI_INVALID_FID_FUNCID, "invalid descriptors fd %d, fid %d", fd, fid);
        return NULL;
    }
    struct lib_flow *f = lm_flow_acquire(fd);
    if (!f) {
        lm_set_error(unknown_flow_err, "flow descriptor %d is not open", fd);
        return NULL;
    }
    if (!__atomic_load_n(&f->connected, __ATOMIC_ACQUIRE)) {
        lm_flow_release(f);
        lm_set_error(MAPI_FLOW_NOT_CONNECTED, "flow %d is not connected", fd);
        return NULL;
    }
    struct lib_fn *fn = lm_flow_fn(f, fid);
    if (!fn || !(fn->flags & MAPI_FN_RING) || !fn->ring) {
        lm_flow_release(f);
        lm_set_error(MAPI_INVALID_FID_FUNCID, "function %d of flow %d is not a TO_BUFFER", fid, fd);
        return NULL;
    }
    *fnp = fn;
    return f;
}

/*
 * mapi_get_next_pkt: the next packet of TO_BUFFER function fid, as a pointer into the shared
 * ring, valid until the next call on this fid (or mapi_close_flow). Blocks while the ring is
 * empty, unless TO_BUFFER was applied with NOWAIT (then NULL at once, no error). NULL with
 * no error at the end of an offline trace.
 * Errors: 6147 fd or fid <= 0, or fid not a TO_BUFFER of this flow; 6145 fd unknown or
 * closed while waiting; 6143 not connected; 6140 mapid shut down / closed the flow; 5123
 * mapid went away; 5121 the ring is corrupt.
 */
MAPI_API struct mapipkt *mapi_get_next_pkt(int fd, int fid)
{
    struct lib_flow *rf = fd > 0 && fid > 0 ? remote_flow(fd) : NULL;
    if (rf) {
        struct mapipkt *rp = lm_remote_get_next_pkt(rf, fid);
        lm_flow_release(rf);
        return rp;
    }
    struct lib_fn *fn;
    struct lib_flow *f = pkt_flow(fd, fid, MAPI_INVALID_FLOW, &fn);
    if (!f)
        return NULL;
    struct mapipkt *pkt;
    lm_ring_next(f, fn->ring, &pkt);
    lm_flow_release(f);
    return pkt;
}

/*
 * mapi_loop: calls cb for each of the next cnt packets of TO_BUFFER fid (cnt <= 0: until
 * there are no more). Returns 0 when cnt packets were handled or at a clean end (end of the
 * trace; with NOWAIT, an empty ring), else -1 with the error of mapi_get_next_pkt.
 * Errors: 7004 cb is NULL; 6147 fd/fid invalid or unknown; 6143 not connected; as
 * mapi_get_next_pkt.
 */
MAPI_API int mapi_loop(int fd, int fid, int cnt, mapi_handler cb)
{
    if (!cb) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT_4, "callback is NULL");
        return -1;
    }
    struct lib_flow *rf = fd > 0 && fid > 0 ? remote_flow(fd) : NULL;
    if (rf) {
        int rrc = lm_remote_loop(rf, fid, cnt, cb);
        lm_flow_release(rf);
        return rrc;
    }
    struct lib_fn *fn;
    struct lib_flow *f = pkt_flow(fd, fid, MAPI_INVALID_FID_FUNCID, &fn);
    if (!f)
        return -1;
    int rc = RING_END;
    for (long n = 0; cnt <= 0 || n < cnt; n++) {
        struct mapipkt *pkt;
        rc = lm_ring_next(f, fn->ring, &pkt);
        if (rc != RING_PACKET)
            break;
        cb(pkt);
    }
    lm_flow_release(f);
    return rc == RING_ERROR ? -1 : 0;
}

/* ---- scope --------------------------------------------------------------------------- */

/* mapi_get_scope_size: number of sensors of flow fd: 1 for a local flow, the number of scope
 * items for a remote one. -1 (6145). */
MAPI_API int mapi_get_scope_size(int fd)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        return -1;
    }
    return f->remote ? lm_remote_scope_size(f) : 1;
}

/* mapi_is_remote: 1 for a remote (DiMAPI) flow, 0 for a local one. -1 (6145). */
MAPI_API int mapi_is_remote(int fd)
{
    struct lib_flow *f = lm_flow_get(fd);
    if (!f) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        return -1;
    }
    return f->remote ? 1 : 0;
}
