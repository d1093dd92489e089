/*
 * lib/remote_flow.c - the public calls on remote (DiMAPI) flows. mapi.c and info.c call the
 * lm_remote_* functions here when a flow has f->remote set; the connections and the parallel
 * engine are in remote.c, the protocol in common/dimapi.h.
 *
 * A remote flow holds, per sensor of its scope (in scope order): its own connection to the
 * sensor's mapicommd, the flow descriptor the sensor gave it (rfd) and, per function, the
 * sensor's fid. Our flow descriptor comes from the same counter as local flows (flows.c);
 * our fids count 1, 2, ... per flow and map to each sensor's fid.
 *
 * Every call sends its request to all sensors, then collects the replies (one round trip for
 * the whole scope). Semantics over a scope, where they differ from a local flow:
 *   apply       the argument descriptor comes from the first sensor (cached per name);
 *               references are rewritten per sensor: 'r' and the fds of 'S' / 'R' lists must
 *               be remote flows with a sensor at the same host:port (same position in their
 *               scope preferred, else the first such sensor), else the argument's position
 *               error; 'f' and the fids of 'S' become that sensor's fids; 'w' is sent as the
 *               file name, which mapicommd creates in its own working directory. If some
 *               sensors applied the function and another refused, the call fails naming the
 *               sensor, and the flow can no longer be connected (it would differ between
 *               sensors): close it.
 *   connect     fails if any sensor fails (naming it); the sensors that did connect stay
 *               connected, and the calls below work on them.
 *   mapi_read_results  an array of scope-size mapi_results_t in scope order (res and size as
 *               the sensor sent them, ts = the sensor's read time in microseconds), library
 *               owned, reused by the next call on the same (fd, fid). A sensor that is down
 *               or refuses gets an entry with size 0, ts 0 and res pointing to zeroed bytes
 *               (at least the function's result size), and the call still returns the array
 *               but leaves the error of the first such sensor (code and "host:port: reason")
 *               for mapi_read_error; NULL only when no sensor answered. For MAPI_FN_QUEUE
 *               functions (BUCKET, HASHSAMP, THRESHOLD) each call returns the next record of
 *               every sensor (it waits until each sensor has one, without the dimapi_timeout
 *               limit: a queue may legitimately stay empty for long; a vanished host is
 *               noticed by TCP keepalive); a sensor whose queue ended (6158) gets size 0, and
 *               once all have ended the call returns NULL with 6158.
 *   mapi_get_next_pkt / mapi_loop  packets come in batches (DIMAPI_GET_PKTS, one request in
 *               flight per sensor, the next one sent while the application consumes the last
 *               batch) and are handed out round robin over the sensors that have packets.
 *               The record is a library-owned copy valid until the next call on the fid.
 *               NULL without error when every sensor has ended (end of a trace) or, with
 *               NOWAIT, when no sensor has a packet now. A sensor that fails or refuses makes
 *               one call return NULL with its error; later calls go on with the others.
 *   mapi_get_flow_info  the first live sensor's FLOW_INFO with fd = our descriptor,
 *               num_functions = our count and device = the scope as given (truncated).
 *   mapi_get_function_info  fid = ours; name, libname, devtype, result_size from the first
 *               sensor; pkts and passed_pkts summed over the sensors; fails if one fails.
 *   mapi_close_flow  closes the flow on every sensor and the connections; -1 naming a sensor
 *               that could not be told (the flow is gone anyway).
 *
 * Locking: each remote flow has its own mutex, held for a whole call (the client lock is not
 * taken, so local flows and other remote flows are not held up). mapi_apply_function also
 * holds apply_lock, which protects the fid maps of all remote flows (references read other
 * flows' maps); lock order apply_lock -> flow mutex -> remote.c's R.lock.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dimapi.h"
#include "common/net.h"
#include "lib/internal.h"
#include "mapi/flib.h"

#define PKTS_WAIT_MS 50 /* how long mapicommd may hold a GET_PKTS while we block for packets */
#define PKTS_MAX 256    /* packets per batch */
#define WAIT_SLICE_MS 100

/* A batch of packets from one sensor (a GET_PKTS reply). */
struct batch {
    uint8_t *payload;
    struct wire_reader r; /* at the next packet */
    uint32_t left;
    struct batch *next;
};

/* Function fid on one sensor. */
struct sfn {
    int rfid;
    void *buf; /* mapi_read_results copy */
    uint32_t cap;
    struct batch *head, *tail;
    int nbatches;
    int ended; /* GET_PKTS said end / the queue answered 6158 */
    int err;   /* a refused GET_PKTS (then ended too) */
    char msg[MAPI_ERRORSTR_LENGTH];
    int reported; /* get_next_pkt reported this sensor's failure already */
};

struct rfn {
    char name[MAPI_STR_LENGTH];
    uint32_t result_size, flags;
    int nowait;    /* TO_BUFFER(NOWAIT) */
    struct sfn *s; /* per sensor */
    mapi_results_t *res;
    void *zero; /* zeroed bytes for the entries of sensors without a result */
    int rr;     /* round robin: the sensor to look at first */
    struct mapipkt *pkt;
    size_t pktcap;
};

struct rsensor {
    struct lm_rconn c;
    struct lm_scope_item it;
    int rfd;
    int pk_fid; /* our fid of the GET_PKTS in flight on c */
    struct lib_rflow *owner;
    int index;
};

struct lib_rflow {
    pthread_mutex_t mu;
    char scope[MAPI_STR_LENGTH];
    int n;
    struct rsensor *s;
    struct rfn **fns; /* [1..nfns] */
    int nfns;
    int connected;
    int wanting; /* atomic: threads waiting for mu (a blocked packet reader lets them in) */
    int broken;  /* a partial apply: connect refuses */
    char broken_msg[MAPI_ERRORSTR_LENGTH];
};

static pthread_mutex_t apply_lock = PTHREAD_MUTEX_INITIALIZER;

/* Takes r's mutex, telling a thread blocked in mapi_get_next_pkt on this flow to let us in. */
static void lock_flow(struct lib_rflow *r)
{
    __atomic_add_fetch(&r->wanting, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&r->mu);
    __atomic_sub_fetch(&r->wanting, 1, __ATOMIC_SEQ_CST);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
    return p;
}

static void free_batches(struct sfn *sf)
{
    while (sf->head) {
        struct batch *b = sf->head;
        sf->head = b->next;
        free(b->payload);
        free(b);
    }
    sf->tail = NULL;
    sf->nbatches = 0;
}

void lm_remote_free(struct lib_rflow *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        lm_rconn_close(&r->s[i].c);
    for (int k = 1; k <= r->nfns; k++) {
        struct rfn *fn = r->fns[k];
        if (!fn)
            continue;
        for (int i = 0; i < r->n; i++) {
            free(fn->s[i].buf);
            free_batches(&fn->s[i]);
        }
        free(fn->s);
        free(fn->res);
        free(fn->zero);
        free(fn->pkt);
        free(fn);
    }
    free(r->fns);
    free(r->s);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int lm_remote_scope_size(const struct lib_flow *f)
{
    return f->remote->n;
}

/* ---- create and close ---------------------------------------------------------------- */

static void create_one(void *arg, int i)
{
    struct lib_rflow *r = arg;
    struct rsensor *s = &r->s[i];
    uint64_t deadline = lm_now_ms() + (uint64_t)lm_remote_timeout();
    if (lm_rconn_open(&s->c, &s->it, deadline) < 0)
        return;
    struct lm_rop op;
    lm_rop_begin(&op, &s->c, DIMAPI_CREATE_FLOW, lm_remote_timeout());
    wire_put_str(&op.w, s->it.dev);
    lm_rops_run(&op, 1);
    if (op.state == LM_ROP_OK) {
        s->rfd = wire_get_i32(&op.r);
        if (!wire_reader_ok(&op.r))
            lm_rconn_fail(&s->c, MCOM_UNKNOWN_ERROR, "malformed CREATE_FLOW reply");
    } else if (op.state == LM_ROP_REFUSED) {
        /* Keep the sensor's error (3200 unknown device, ...). */
        lm_rconn_fail(&s->c, op.err, "%s", op.msg);
    }
    lm_rop_free(&op);
}

int lm_remote_create_flow(const char *scope)
{
    if (lm_remote_init() < 0)
        return -1;
    struct lm_scope_item *it;
    int n = lm_scope_parse(scope, &it);
    if (n < 0)
        return -1;
    struct lib_rflow *r = xcalloc(1, sizeof(*r));
    if (!r) {
        free(it);
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->s = xcalloc((size_t)n, sizeof(*r->s));
    if (!r->s) {
        free(it);
        lm_remote_free(r);
        return -1;
    }
    r->n = n;
    const char *b = scope;
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r')
        b++;
    snprintf(r->scope, sizeof(r->scope), "%s", b);
    for (int i = 0; i < n; i++) {
        r->s[i].it = it[i];
        r->s[i].owner = r;
        r->s[i].index = i;
        snprintf(r->s[i].c.peer, sizeof(r->s[i].c.peer), "%s", it[i].peer);
    }
    free(it);
    lm_remote_parallel(n, create_one, r);
    for (int i = 0; i < n; i++) {
        if (r->s[i].c.down) {
            lm_rconn_set_error(&r->s[i].c);
            lm_remote_free(r); /* closing the connections closes the others' flows */
            return -1;
        }
    }
    lm_client_lock();
    struct lib_flow *f = lm_flow_add_remote(r);
    lm_client_unlock();
    if (!f) {
        lm_remote_free(r);
        return -1;
    }
    return f->fd;
}

int lm_remote_close_flow(struct lib_flow *f)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    struct lm_rop *ops = calloc((size_t)r->n, sizeof(*ops));
    int rc = 0;
    if (ops) {
        for (int i = 0; i < r->n; i++) {
            lm_rop_begin(&ops[i], &r->s[i].c, DIMAPI_CLOSE_FLOW, lm_remote_timeout());
            wire_put_i32(&ops[i].w, r->s[i].rfd);
        }
        lm_rops_run(ops, r->n);
        for (int i = 0; i < r->n; i++) {
            if (ops[i].state != LM_ROP_OK && rc == 0) {
                lm_rop_set_error(&ops[i]);
                rc = -1;
            }
            lm_rop_free(&ops[i]);
        }
        free(ops);
    }
    for (int i = 0; i < r->n; i++)
        lm_rconn_close(&r->s[i].c);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- apply --------------------------------------------------------------------------- */

struct rarg {
    char type;
    int32_t i;
    uint64_t l;
    const char *s;
    struct lib_flow *ref;   /* 'r': the referenced flow (a reference held) */
    struct lib_flow **refs; /* 'S', 'R': the flows of the list (references held) */
    int32_t *fids;          /* 'S': the fids of the list */
    int nrefs;
};

static void free_rargs(struct rarg *a, int n)
{
    if (!a)
        return;
    for (int i = 0; i < n; i++) {
        if (a[i].ref)
            lm_flow_release(a[i].ref);
        for (int k = 0; k < a[i].nrefs; k++)
            if (a[i].refs[k])
                lm_flow_release(a[i].refs[k]);
        free(a[i].refs);
        free(a[i].fids);
    }
    free(a);
}

static int pos_error(int pos, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pos_error(int pos, const char *fmt, ...)
{
    char msg[MAPI_ERRORSTR_LENGTH];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lm_set_error(lm_args_position_error(pos), "argument %d: %s", pos, msg);
    return -1;
}

/* A referenced remote flow (reference taken), or NULL with the position error. */
static struct lib_flow *ref_flow(int32_t fd, int pos)
{
    struct lib_flow *g = lm_flow_acquire(fd);
    if (!g) {
        pos_error(pos, "flow descriptor %d is not open", (int)fd);
        return NULL;
    }
    if (!g->remote) {
        lm_flow_release(g);
        pos_error(pos, "flow %d is local: a remote flow can refer only to remote flows", (int)fd);
        return NULL;
    }
    return g;
}

/* Parses an 'S' ("fid@fd,...") or 'R' ("fd,...") list into a->refs / a->fids. */
static int parse_list(struct rarg *a, int pos)
{
    int with_fid = a->type == 'S';
    const char *p = a->s;
    while (lm_is_blank(*p))
        p++;
    if (!*p)
        return 0; /* passed on as it is: the function reports the missing list */
    int cap = 1;
    for (const char *q = p; *q; q++)
        cap += *q == ',';
    a->refs = calloc((size_t)cap, sizeof(*a->refs));
    a->fids = calloc((size_t)cap, sizeof(*a->fids));
    if (!a->refs || !a->fids) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return -1;
    }
    for (;;) {
        long fid, fd;
        int more = lm_list_next(&p, with_fid, &fid, &fd);
        if (more < 0)
            goto malformed;
        if (a->nrefs >= cap)
            goto malformed;
        struct lib_flow *g = ref_flow((int32_t)fd, pos);
        if (!g)
            return -1;
        a->refs[a->nrefs] = g;
        a->fids[a->nrefs] = (int32_t)fid;
        a->nrefs++;
        if (with_fid && (fid <= 0 || fid > g->remote->nfns || !g->remote->fns[fid]))
            return pos_error(pos, "flow %ld has no function %ld", fd, fid);
        if (!more)
            return 0;
    }
malformed:
    return pos_error(pos, "\"%s\" %s", a->s,
                     with_fid ? "is not a list of fid@fd pairs"
                              : "is not a list of flow descriptors");
}

/* The index of the sensor of g that stands for sensor i of r, or -1. */
static int map_sensor(const struct lib_rflow *r, int i, const struct lib_rflow *g)
{
    const struct lm_scope_item *it = &r->s[i].it;
    if (i < g->n && g->s[i].it.port == it->port && strcmp(g->s[i].it.host, it->host) == 0)
        return i;
    for (int j = 0; j < g->n; j++)
        if (g->s[j].it.port == it->port && strcmp(g->s[j].it.host, it->host) == 0)
            return j;
    return -1;
}

/* Reads the arguments from varargs or strings (as lib/args.c), takes references. */
static struct rarg *read_args(const char *descr, int from_array, int nvar, va_list ap, char **args,
                              int nargs)
{
    int n = (int)strlen(descr);
    for (int i = 0; i < n; i++)
        if (!strchr("sSRirfclw", descr[i])) {
            lm_set_error(MFUNCT_INVALID_ARGUMENT_DESCRIPTOR,
                         "argument descriptor \"%s\" has an unknown letter '%c'", descr, descr[i]);
            return NULL;
        }
    if (from_array && (nargs < 0 || (nargs > 0 && !args) || nargs != n)) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "the function takes %d arguments (\"%s\"), got %d", n,
                     descr, nargs);
        return NULL;
    }
    if (!from_array && nvar > n) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "%d arguments given, the function takes %d (\"%s\")",
                     nvar, n, descr);
        return NULL;
    }
    struct rarg *a = xcalloc((size_t)n + 1, sizeof(*a));
    if (!a)
        return NULL;
    for (int i = 0; i < n; i++) {
        struct rarg *x = &a[i];
        int pos = i + 1;
        x->type = descr[i];
        if (from_array) {
            const char *s = args[i];
            int bad = 0;
            switch (x->type) {
            case 's':
            case 'S':
            case 'R':
            case 'w':
                x->s = s;
                break;
            case 'l':
                bad = lm_parse_ull(s, &x->l) < 0;
                break;
            case 'c':
                if (s && strlen(s) == 1)
                    x->i = (unsigned char)s[0];
                else
                    bad = lm_parse_int(s, -128, 255, &x->i) < 0;
                break;
            default:
                bad = lm_parse_int(s, INT_MIN, INT_MAX, &x->i) < 0;
                break;
            }
            if (bad) {
                pos_error(pos, "\"%s\" is not a valid %s", s ? s : "(null)",
                          x->type == 'l'   ? "unsigned number"
                          : x->type == 'c' ? "character"
                                           : "integer");
                goto fail;
            }
        } else if (nvar >= 0 && i >= nvar) {
            if (!strchr("icfl", x->type)) {
                pos_error(pos, "(type '%c') is missing", x->type);
                goto fail;
            }
        } else {
            switch (x->type) {
            case 's':
            case 'S':
            case 'R':
            case 'w':
                x->s = va_arg(ap, const char *);
                break;
            case 'l':
                x->l = va_arg(ap, unsigned long long);
                break;
            default:
                x->i = va_arg(ap, int);
                break;
            }
        }
        if (x->type == 's' && !x->s) {
            pos_error(pos, "(a string) is NULL");
            goto fail;
        }
        if (x->type == 'w' && !x->s) {
            lm_set_error(MAPI_ERROR_FILE, "argument %d: NULL file name", pos);
            goto fail;
        }
        if ((x->type == 'S' || x->type == 'R') && !x->s) {
            pos_error(pos, "(%s) is NULL", x->type == 'S' ? "a fid@fd list" : "a list of flows");
            goto fail;
        }
        if (x->type == 'r' && !(x->ref = ref_flow(x->i, pos)))
            goto fail;
        if ((x->type == 'S' || x->type == 'R') && parse_list(x, pos) < 0)
            goto fail;
    }
    return a;
fail:
    free_rargs(a, n);
    return NULL;
}

/* Appends to a growing string. */
static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

/* Encodes the arguments for sensor i of r into w; strings built here are kept in *tmp (one
 * per argument, freed by the caller). 0 or -1 with the position error. */
static int encode_args(struct lib_rflow *r, int i, struct rarg *a, int n, struct wire_writer *w,
                       char **tmp)
{
    wire_put_u32(w, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        struct rarg *x = &a[k];
        int pos = k + 1;
        wire_put_u8(w, (uint8_t)x->type);
        switch (x->type) {
        case 's':
        case 'w':
            wire_put_str(w, x->s);
            break;
        case 'l':
            wire_put_u64(w, x->l);
            break;
        case 'r': {
            int j = map_sensor(r, i, x->ref->remote);
            if (j < 0)
                return pos_error(pos, "flow %d has no sensor %s", (int)x->i, r->s[i].it.peer);
            wire_put_i32(w, x->ref->remote->s[j].rfd);
            break;
        }
        case 'f':
            if (x->i > 0) {
                if (x->i > r->nfns || !r->fns[x->i])
                    return pos_error(pos, "this flow has no function %d", (int)x->i);
                wire_put_i32(w, r->fns[x->i]->s[i].rfid);
            } else {
                wire_put_i32(w, x->i);
            }
            break;
        case 'S':
        case 'R': {
            if (x->nrefs == 0) {
                wire_put_str(w, x->s);
                break;
            }
            size_t len = 0, cap = 0;
            char *out = NULL;
            for (int q = 0; q < x->nrefs; q++) {
                struct lib_rflow *g = x->refs[q]->remote;
                int j = map_sensor(r, i, g);
                if (j < 0) {
                    free(out);
                    return pos_error(pos, "flow %d has no sensor %s", x->refs[q]->fd,
                                     r->s[i].it.peer);
                }
                char item[48];
                if (x->type == 'S')
                    snprintf(item, sizeof(item), "%s%d@%d", q ? "," : "",
                             g->fns[x->fids[q]]->s[j].rfid, g->s[j].rfd);
                else
                    snprintf(item, sizeof(item), "%s%d", q ? "," : "", g->s[j].rfd);
                if (append(&out, &len, &cap, item) < 0) {
                    free(out);
                    lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
                    return -1;
                }
            }
            tmp[k] = out;
            wire_put_str(w, out);
            break;
        }
        default: /* i c */
            wire_put_i32(w, x->i);
            break;
        }
    }
    return 0;
}

int lm_remote_apply(struct lib_flow *f, const char *funct, int from_array, int nvar, va_list ap,
                    char **args, int nargs)
{
    struct lib_rflow *r = f->remote;
    pthread_mutex_lock(&apply_lock);
    lock_flow(r);
    int fid = -1, n = 0;
    struct rarg *a = NULL;
    struct lm_rop *ops = NULL;
    char **tmp = NULL;
    if (r->connected) {
        lm_set_error(MFUNCT_COULD_NOT_APPLY_FUNCT,
                     "flow %d is already connected: apply functions before mapi_connect", f->fd);
        goto out;
    }
    if (!funct) {
        lm_set_error(MAPI_FUNCTION_NOT_FOUND, "function name is NULL");
        goto out;
    }
    int first = 0;
    while (first < r->n && r->s[first].c.down)
        first++;
    if (first == r->n) {
        lm_rconn_set_error(&r->s[0].c);
        goto out;
    }
    struct lib_fninfo info;
    if (lm_remote_get_function(&r->s[first].it, funct, &info) < 0)
        goto out;
    n = (int)strlen(info.argdescr);
    a = read_args(info.argdescr, from_array, nvar, ap, args, nargs);
    if (!a)
        goto out;
    ops = xcalloc((size_t)r->n, sizeof(*ops));
    tmp = xcalloc((size_t)r->n * (size_t)(n + 1), sizeof(*tmp));
    if (!ops || !tmp)
        goto out;
    for (int i = 0; i < r->n; i++) {
        lm_rop_begin(&ops[i], &r->s[i].c, DIMAPI_APPLY, lm_remote_timeout());
        wire_put_i32(&ops[i].w, r->s[i].rfd);
        wire_put_str(&ops[i].w, funct);
        if (encode_args(r, i, a, n, &ops[i].w, tmp + (size_t)i * (size_t)(n + 1)) < 0) {
            for (int k = 0; k <= i; k++)
                lm_rop_free(&ops[k]);
            goto out;
        }
    }
    lm_rops_run(ops, r->n);
    struct rfn *fn = calloc(1, sizeof(*fn));
    struct rfn **nf = realloc(r->fns, sizeof(*nf) * (size_t)(r->nfns + 2));
    if (nf)
        r->fns = nf;
    if (fn) {
        fn->s = calloc((size_t)r->n, sizeof(*fn->s));
        fn->res = calloc((size_t)r->n, sizeof(*fn->res));
    }
    int nok = 0, bad = -1, malformed = 0;
    for (int i = 0; i < r->n; i++) {
        if (ops[i].state == LM_ROP_OK) {
            int32_t rfid = wire_get_i32(&ops[i].r);
            uint32_t rsize = wire_get_u32(&ops[i].r);
            uint32_t flags = wire_get_u32(&ops[i].r);
            if (!wire_reader_ok(&ops[i].r)) {
                malformed = 1;
                lm_rconn_fail(&r->s[i].c, MCOM_UNKNOWN_ERROR, "malformed APPLY reply");
                ops[i].state = LM_ROP_FAILED;
                ops[i].err = r->s[i].c.err;
                snprintf(ops[i].msg, sizeof(ops[i].msg), "%s", r->s[i].c.why);
            } else {
                if (fn && fn->s)
                    fn->s[i].rfid = rfid;
                if (fn && nok == 0) {
                    fn->result_size = rsize;
                    fn->flags = flags;
                }
                nok++;
            }
        }
        if (ops[i].state != LM_ROP_OK && bad < 0)
            bad = i;
    }
    (void)malformed;
    if (!fn || !nf || !fn->s || !fn->res) {
        if (fn) {
            free(fn->s);
            free(fn->res);
            free(fn);
        }
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        if (nok) {
            r->broken = 1;
            snprintf(r->broken_msg, sizeof(r->broken_msg), "out of memory in %s", funct);
        }
    } else if (bad >= 0) {
        lm_rop_set_error(&ops[bad]);
        free(fn->s);
        free(fn->res);
        free(fn);
        if (nok) {
            r->broken = 1;
            snprintf(r->broken_msg, sizeof(r->broken_msg),
                     "%.100s was applied on some sensors only (%.300s): close the flow", funct,
                     ops[bad].msg);
        }
    } else {
        snprintf(fn->name, sizeof(fn->name), "%s", funct);
        if (fn->flags & MAPI_FN_RING) {
            for (int k = 0; k < n; k++)
                if (a[k].type == 'i') {
                    fn->nowait = a[k].i == NOWAIT;
                    break;
                }
        }
        fid = ++r->nfns;
        r->fns[fid] = fn;
    }
    for (int i = 0; i < r->n; i++)
        lm_rop_free(&ops[i]);
out:
    if (tmp) {
        for (size_t k = 0; k < (size_t)r->n * (size_t)(n + 1); k++)
            free(tmp[k]);
        free(tmp);
    }
    free(ops);
    free_rargs(a, n);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&apply_lock);
    return fid;
}

/* ---- connect ------------------------------------------------------------------------- */

int lm_remote_connect(struct lib_flow *f)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    int rc = -1;
    if (r->connected) {
        lm_set_error(MDLIB_FLOW_ALREADY_ACTIVE, "flow %d is already connected", f->fd);
        goto out;
    }
    if (r->broken) {
        lm_set_error(MAPI_CONNECT, "%s", r->broken_msg);
        goto out;
    }
    struct lm_rop *ops = xcalloc((size_t)r->n, sizeof(*ops));
    if (!ops)
        goto out;
    for (int i = 0; i < r->n; i++) {
        lm_rop_begin(&ops[i], &r->s[i].c, DIMAPI_CONNECT, lm_remote_timeout());
        wire_put_i32(&ops[i].w, r->s[i].rfd);
    }
    lm_rops_run(ops, r->n);
    int nok = 0, bad = -1;
    for (int i = 0; i < r->n; i++) {
        if (ops[i].state == LM_ROP_OK)
            nok++;
        else if (bad < 0)
            bad = i;
        if (ops[i].state == LM_ROP_REFUSED) /* the sensor closed its flow */
            lm_rconn_fail(&r->s[i].c, ops[i].err, "%s", ops[i].msg);
    }
    if (bad >= 0)
        lm_rop_set_error(&ops[bad]);
    else
        rc = 0;
    if (nok) {
        r->connected = 1;
        __atomic_store_n(&f->connected, 1, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < r->n; i++)
        lm_rop_free(&ops[i]);
    free(ops);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- results ------------------------------------------------------------------------- */

/* Flow mutex held. The function fid of a connected flow, or NULL with the error. */
static struct rfn *connected_fn(struct lib_flow *f, int fid)
{
    struct lib_rflow *r = f->remote;
    if (!r->connected) {
        lm_set_error(MAPI_FLOW_NOT_CONNECTED, "flow %d is not connected", f->fd);
        return NULL;
    }
    if (fid <= 0 || fid > r->nfns || !r->fns[fid]) {
        lm_set_error(MAPI_INVALID_FID_FUNCID, "flow %d has no function %d", f->fd, fid);
        return NULL;
    }
    return r->fns[fid];
}

/* Makes sure fn->zero holds at least the result size in zeroed bytes. */
static void *zero_buf(struct rfn *fn)
{
    if (!fn->zero)
        fn->zero = calloc(1, fn->result_size > 64 ? fn->result_size : 64);
    return fn->zero;
}

mapi_results_t *lm_remote_read_results(struct lib_flow *f, int fid)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    mapi_results_t *out = NULL;
    struct rfn *fn = connected_fn(f, fid);
    if (!fn)
        goto out;
    int queue = (fn->flags & MAPI_FN_QUEUE) != 0;
    if (!queue && fn->result_size == 0) {
        lm_set_error(MAPI_SHM_ERR, "function %d (%s) has no result", fid, fn->name);
        goto out;
    }
    struct lm_rop *ops = xcalloc((size_t)r->n, sizeof(*ops));
    if (!ops || !zero_buf(fn)) {
        free(ops);
        goto out;
    }
    for (int i = 0; i < r->n; i++) {
        if (queue && fn->s[i].ended)
            continue; /* skipped: c == NULL */
        lm_rop_begin(&ops[i], &r->s[i].c, DIMAPI_READ_RESULT, queue ? -1 : lm_remote_timeout());
        wire_put_i32(&ops[i].w, r->s[i].rfd);
        wire_put_i32(&ops[i].w, fn->s[i].rfid);
    }
    lm_rops_run(ops, r->n);
    int nok = 0, bad = -1, nended = 0;
    for (int i = 0; i < r->n; i++) {
        struct lm_rop *op = &ops[i];
        struct sfn *sf = &fn->s[i];
        mapi_results_t *e = &fn->res[i];
        e->res = fn->zero;
        e->ts = 0;
        e->size = 0;
        if (op->state == LM_ROP_OK) {
            uint64_t ts = wire_get_u64(&op->r);
            uint32_t len;
            const uint8_t *p = wire_get_bytes(&op->r, &len);
            if (!wire_reader_ok(&op->r)) {
                lm_rconn_fail(op->c, MCOM_UNKNOWN_ERROR, "malformed READ_RESULT reply");
                op->state = LM_ROP_FAILED;
                op->err = op->c->err;
                snprintf(op->msg, sizeof(op->msg), "%s", op->c->why);
            } else {
                if (len > sf->cap || !sf->buf) {
                    uint32_t want = len > fn->result_size ? len : fn->result_size;
                    void *nb = malloc(want ? want : 16);
                    if (!nb) {
                        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
                        op->state = LM_ROP_FAILED;
                        op->err = MAPID_MEM_ALLOCATION_ERROR;
                        snprintf(op->msg, sizeof(op->msg), "out of memory");
                    } else {
                        free(sf->buf);
                        sf->buf = nb;
                        sf->cap = want;
                    }
                }
                if (op->state == LM_ROP_OK) {
                    memcpy(sf->buf, p, len);
                    e->res = sf->buf;
                    e->ts = ts;
                    e->size = (int)len;
                    nok++;
                }
            }
        }
        if (op->state == LM_ROP_REFUSED && queue && op->err == MAPI_END_OF_RESULTS)
            sf->ended = 1;
        if (queue && sf->ended) {
            nended++;
        } else if (op->state != LM_ROP_OK && bad < 0) {
            bad = i;
        }
    }
    if (bad >= 0)
        lm_rop_set_error(&ops[bad]);
    if (nok > 0) {
        out = fn->res;
    } else if (bad < 0 && queue && nended == r->n) {
        lm_set_error(MAPI_END_OF_RESULTS,
                     "function %d of flow %d has no more results on any sensor", fid, f->fd);
    }
    for (int i = 0; i < r->n; i++)
        lm_rop_free(&ops[i]);
    free(ops);
out:
    pthread_mutex_unlock(&r->mu);
    return out;
}

/* ---- packets ------------------------------------------------------------------------- */

/* The reply to a GET_PKTS (hdr NULL: the connection failed). */
static void pkts_reply(void *arg, struct lm_rconn *c, const struct wire_hdr *h, uint8_t *payload)
{
    struct rsensor *s = arg;
    struct lib_rflow *r = s->owner;
    int fid = s->pk_fid;
    s->pk_fid = 0;
    if (!h || fid <= 0 || fid > r->nfns || !r->fns[fid]) {
        free(payload);
        return;
    }
    struct sfn *sf = &r->fns[fid]->s[s->index];
    if (h->type != DIMAPI_GET_PKTS) {
        free(payload);
        lm_rconn_fail(c, MCOM_UNKNOWN_ERROR, "mapicommd replied with type %u to GET_PKTS", h->type);
        return;
    }
    struct wire_reader rd;
    wire_reader_init(&rd, payload, h->length);
    if (h->flags & WIRE_F_ERROR) {
        int32_t code = wire_get_i32(&rd);
        char text[MAPI_ERRORSTR_LENGTH];
        lm_get_str_trunc(&rd, text, sizeof(text));
        sf->err = code > 0 ? code : MCOM_ERROR_ACK;
        lm_with_peer(sf->msg, sizeof(sf->msg), c->peer, text[0] ? text : mapi_strerror(sf->err));
        sf->ended = 1;
        free(payload);
        return;
    }
    uint8_t end = wire_get_u8(&rd);
    uint32_t n = wire_get_u32(&rd);
    if (!wire_reader_ok(&rd) || n > PKTS_MAX * 16u) {
        free(payload);
        lm_rconn_fail(c, MCOM_UNKNOWN_ERROR, "malformed GET_PKTS reply");
        return;
    }
    if (end)
        sf->ended = 1;
    if (n == 0) {
        free(payload);
        return;
    }
    struct batch *b = malloc(sizeof(*b));
    if (!b) {
        free(payload);
        lm_rconn_fail(c, MAPID_MEM_ALLOCATION_ERROR, "out of memory for a batch of packets");
        return;
    }
    b->payload = payload;
    b->r = rd;
    b->left = n;
    b->next = NULL;
    if (sf->tail)
        sf->tail->next = b;
    else
        sf->head = b;
    sf->tail = b;
    sf->nbatches++;
}

/* Sends GET_PKTS for fid on sensor i if nothing is in flight on its connection; mapicommd may
 * hold it up to wait_ms for a packet to come (0 while the application is not blocked, so that
 * its other calls on the flow never wait long behind it). */
static void request_pkts(struct lib_rflow *r, int fid, int i, uint32_t wait_ms)
{
    struct rsensor *s = &r->s[i];
    struct sfn *sf = &r->fns[fid]->s[i];
    if (s->c.late || s->c.down || !s->c.nc || sf->ended)
        return;
    struct wire_writer w;
    wire_writer_init(&w, DIMAPI_GET_PKTS, 0, 0);
    wire_put_i32(&w, s->rfd);
    wire_put_i32(&w, sf->rfid);
    wire_put_u32(&w, PKTS_MAX);
    wire_put_u32(&w, DIMAPI_MAX_BATCH_BYTES);
    wire_put_u32(&w, wait_ms);
    s->pk_fid = fid;
    if (lm_rconn_send_late(&s->c, &w, (int)wait_ms + lm_remote_timeout(), pkts_reply, s) < 0)
        s->pk_fid = 0;
}

/* Takes the next packet of sensor i into fn->pkt. 1 packet, 0 none buffered. */
static int take_pkt(struct lib_rflow *r, struct rfn *fn, int i)
{
    struct sfn *sf = &fn->s[i];
    while (sf->head && sf->head->left == 0) {
        struct batch *b = sf->head;
        sf->head = b->next;
        if (!sf->head)
            sf->tail = NULL;
        sf->nbatches--;
        free(b->payload);
        free(b);
    }
    if (!sf->head)
        return 0;
    struct batch *b = sf->head;
    uint64_t ts = wire_get_u64(&b->r);
    uint16_t ifindex = wire_get_u16(&b->r);
    uint32_t caplen = wire_get_u32(&b->r);
    uint32_t wlen = wire_get_u32(&b->r);
    uint32_t len;
    const uint8_t *p = wire_get_bytes(&b->r, &len);
    b->left--;
    size_t need = offsetof(struct mapipkt, pkt) + (size_t)len;
    if (need < sizeof(struct mapipkt))
        need = sizeof(struct mapipkt);
    if (!wire_reader_ok(&b->r) || len != caplen) {
        free_batches(sf);
        lm_rconn_fail(&r->s[i].c, MCOM_UNKNOWN_ERROR, "malformed packet in a GET_PKTS batch");
        return 0;
    }
    if (need > fn->pktcap) {
        struct mapipkt *np = malloc(need);
        if (!np) {
            free_batches(sf);
            lm_rconn_fail(&r->s[i].c, MAPID_MEM_ALLOCATION_ERROR, "out of memory for a packet");
            return 0;
        }
        free(fn->pkt);
        fn->pkt = np;
        fn->pktcap = need;
    }
    fn->pkt->ts = ts;
    fn->pkt->ifindex = ifindex;
    fn->pkt->caplen = caplen;
    fn->pkt->wlen = wlen;
    memcpy(&fn->pkt->pkt, p, len);
    return 1;
}

/* The next packet: RING_PACKET (in *out), RING_END or RING_ERROR. Flow mutex held. */
static int next_pkt(struct lib_flow *f, int fid, struct rfn *fn, struct mapipkt **out)
{
    struct lib_rflow *r = f->remote;
    struct lm_rconn **cs = calloc((size_t)r->n, sizeof(*cs));
    *out = NULL;
    if (!cs) {
        lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
        return RING_ERROR;
    }
    for (int i = 0; i < r->n; i++)
        cs[i] = &r->s[i].c;
    int rc = RING_END, polled = 0;
    for (;;) {
        /* 1. Round robin over the sensors with packets. */
        for (int k = 0; k < r->n; k++) {
            int i = (fn->rr + k) % r->n;
            if (take_pkt(r, fn, i)) {
                fn->rr = (i + 1) % r->n;
                struct sfn *sf = &fn->s[i];
                /* Keep the next batch coming while this one is consumed. */
                if (sf->nbatches <= 1)
                    request_pkts(r, fid, i, 0);
                *out = fn->pkt;
                rc = RING_PACKET;
                goto done;
            }
        }
        /* 2. Nothing buffered: report a failed sensor once. */
        int alive = 0;
        for (int i = 0; i < r->n; i++) {
            struct sfn *sf = &fn->s[i];
            if (sf->err && !sf->reported) {
                sf->reported = 1;
                lm_set_error(sf->err, "%s", sf->msg);
                rc = RING_ERROR;
                goto done;
            }
            if (r->s[i].c.down && !sf->reported) {
                sf->reported = 1;
                lm_rconn_set_error(&r->s[i].c);
                rc = RING_ERROR;
                goto done;
            }
            if (!r->s[i].c.down && !sf->ended)
                alive++;
        }
        if (alive == 0) {
            rc = RING_END;
            goto done;
        }
        /* 3. Ask the sensors that have nothing in flight, then wait for any reply. */
        for (int i = 0; i < r->n; i++)
            request_pkts(r, fid, i, fn->nowait ? 0 : PKTS_WAIT_MS);
        if (fn->nowait) {
            if (polled) {
                rc = RING_END;
                goto done;
            }
            lm_rconn_wait_late(cs, r->n, 0);
            polled = 1;
            continue;
        }
        if (__atomic_load_n(&f->closing, __ATOMIC_ACQUIRE)) {
            lm_set_error(MAPI_INVALID_FLOW, "flow %d was closed", f->fd);
            rc = RING_ERROR;
            goto done;
        }
        lm_rconn_wait_late(cs, r->n, WAIT_SLICE_MS);
        if (__atomic_load_n(&r->wanting, __ATOMIC_SEQ_CST) > 0) {
            /* Another thread wants this flow (results, info, close): let it run. */
            pthread_mutex_unlock(&r->mu);
            while (__atomic_load_n(&r->wanting, __ATOMIC_SEQ_CST) > 0) {
                struct timespec ts = {0, 200000};
                nanosleep(&ts, NULL);
            }
            pthread_mutex_lock(&r->mu);
        }
    }
done:
    free(cs);
    return rc;
}

/* Flow mutex held. The TO_BUFFER function fid, or NULL with the error. */
static struct rfn *ring_fn(struct lib_flow *f, int fid)
{
    struct rfn *fn = connected_fn(f, fid);
    if (fn && !(fn->flags & MAPI_FN_RING)) {
        lm_set_error(MAPI_INVALID_FID_FUNCID, "function %d of flow %d is not a TO_BUFFER", fid,
                     f->fd);
        return NULL;
    }
    return fn;
}

struct mapipkt *lm_remote_get_next_pkt(struct lib_flow *f, int fid)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    struct mapipkt *pkt = NULL;
    struct rfn *fn = ring_fn(f, fid);
    if (fn)
        next_pkt(f, fid, fn, &pkt);
    pthread_mutex_unlock(&r->mu);
    return pkt;
}

int lm_remote_loop(struct lib_flow *f, int fid, int cnt, mapi_handler cb)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    int rc = RING_ERROR;
    struct rfn *fn = ring_fn(f, fid);
    if (fn) {
        for (long n = 0; cnt <= 0 || n < cnt; n++) {
            struct mapipkt *pkt;
            rc = next_pkt(f, fid, fn, &pkt);
            if (rc != RING_PACKET)
                break;
            cb(pkt);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc == RING_ERROR ? -1 : 0;
}

/* ---- information --------------------------------------------------------------------- */

int lm_remote_flow_info(struct lib_flow *f, mapi_flow_info_t *info)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    int rc = -1, i = 0;
    while (i < r->n && r->s[i].c.down)
        i++;
    if (i == r->n) {
        lm_rconn_set_error(&r->s[0].c);
        goto out;
    }
    struct lm_rop op;
    lm_rop_begin(&op, &r->s[i].c, DIMAPI_FLOW_INFO, lm_remote_timeout());
    wire_put_i32(&op.w, r->s[i].rfd);
    lm_rops_run(&op, 1);
    if (op.state != LM_ROP_OK) {
        lm_rop_set_error(&op);
        if (op.state == LM_ROP_REFUSED)
            lm_remap_error(MAPI_FLOW_INFO_ERR);
        lm_rop_free(&op);
        goto out;
    }
    mapi_flow_info_t fl;
    memset(&fl, 0, sizeof(fl));
    fl.uid = (uid_t)wire_get_u32(&op.r);
    (void)wire_get_i32(&op.r);
    fl.devid = wire_get_i32(&op.r);
    char dev[MAPI_STR_LENGTH];
    lm_get_str_trunc(&op.r, dev, sizeof(dev));
    (void)wire_get_u32(&op.r);
    fl.start = (time_t)wire_get_u64(&op.r);
    fl.end = (time_t)wire_get_u64(&op.r);
    fl.status = (enum mapi_flow_status)wire_get_u32(&op.r);
    /* The sensor's cpu_ns, if its mapicommd sends it (older ones end before). */
    if (wire_reader_ok(&op.r) && op.r.left >= 8)
        fl.cpu_ns = wire_get_u64(&op.r);
    int ok = wire_reader_ok(&op.r);
    lm_rop_free(&op);
    if (!ok) {
        lm_set_error(MCOM_UNKNOWN_ERROR, "%s: malformed FLOW_INFO reply", r->s[i].it.peer);
        goto out;
    }
    fl.fd = f->fd;
    fl.num_functions = (unsigned)r->nfns;
    snprintf(fl.device, sizeof(fl.device), "%s", r->scope);
    *info = fl;
    rc = 0;
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int lm_remote_function_info(struct lib_flow *f, int fid, int next, mapi_function_info_t *info)
{
    struct lib_rflow *r = f->remote;
    lock_flow(r);
    int rc = -1;
    struct lm_rop *ops = NULL;
    int want = fid;
    if (next) {
        want = fid < 0 ? 1 : fid < r->nfns ? fid + 1 : r->nfns + 1; /* no overflow at INT_MAX */
        while (want <= r->nfns && !r->fns[want])
            want++;
    }
    if (want <= 0 || want > r->nfns || !r->fns[want]) {
        lm_set_error(MAPI_FUNCTION_INFO_ERR,
                     next ? "flow %d has no function after %d" : "flow %d has no function %d",
                     f->fd, fid);
        goto out;
    }
    struct rfn *fn = r->fns[want];
    ops = xcalloc((size_t)r->n, sizeof(*ops));
    if (!ops)
        goto out;
    for (int i = 0; i < r->n; i++) {
        lm_rop_begin(&ops[i], &r->s[i].c, DIMAPI_FUNCTION_INFO, lm_remote_timeout());
        wire_put_i32(&ops[i].w, r->s[i].rfd);
        wire_put_i32(&ops[i].w, fn->s[i].rfid);
        wire_put_u8(&ops[i].w, 0);
    }
    lm_rops_run(ops, r->n);
    mapi_function_info_t fi;
    memset(&fi, 0, sizeof(fi));
    int bad = -1;
    for (int i = 0; i < r->n; i++) {
        struct lm_rop *op = &ops[i];
        if (op->state == LM_ROP_OK) {
            mapi_function_info_t one;
            memset(&one, 0, sizeof(one));
            (void)wire_get_i32(&op->r);
            lm_get_str_trunc(&op->r, one.name, sizeof(one.name));
            lm_get_str_trunc(&op->r, one.libname, sizeof(one.libname));
            lm_get_str_trunc(&op->r, one.devtype, sizeof(one.devtype));
            one.pkts = wire_get_u64(&op->r);
            one.passed_pkts = wire_get_u64(&op->r);
            one.result_size = wire_get_i32(&op->r);
            if (!wire_reader_ok(&op->r)) {
                op->state = LM_ROP_FAILED;
                op->err = MCOM_UNKNOWN_ERROR;
                snprintf(op->msg, sizeof(op->msg), "%s: malformed FUNCTION_INFO reply",
                         r->s[i].it.peer);
            } else if (!fi.name[0]) {
                fi = one;
            } else {
                fi.pkts += one.pkts;
                fi.passed_pkts += one.passed_pkts;
            }
        }
        if (op->state != LM_ROP_OK && bad < 0)
            bad = i;
    }
    if (bad >= 0) {
        lm_rop_set_error(&ops[bad]);
        if (ops[bad].state == LM_ROP_REFUSED)
            lm_remap_error(MAPI_FUNCTION_INFO_ERR);
    } else {
        fi.fid = want;
        *info = fi;
        rc = 0;
    }
    for (int i = 0; i < r->n; i++)
        lm_rop_free(&ops[i]);
out:
    free(ops);
    pthread_mutex_unlock(&r->mu);
    return rc;
}
