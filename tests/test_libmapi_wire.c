/*
 * tests/test_libmapi_wire.c - unit test of libmapi's local back end against a fake mapid.
 *
 * The fake mapid is a thread of this process that listens on a private Unix socket (named
 * through a private mapi.conf in $MAPI_CONF) and speaks the wire protocol of common/wire.h.
 * It records what it decoded (apply arguments, request counts) and keeps its own mappings
 * of the shared memory it hands out, so the test can write results and packet records by
 * hand and check what libmapi's consumer makes of them. Covered: mapid not running (5124,
 * no hang), argument encoding of varargs and arrays with their errors, flow reference
 * translation, GET_FUNCTION caching, connect and the region/ring checks, read_results
 * (snapshot and errors, speed), the ring consumer (wrap records, eof, NOWAIT, blocking,
 * back-pressure wake-up), mapi_loop, management calls (the tutorial's library loop),
 * SHUTDOWN and mapid dying while a thread waits for packets, close while another thread
 * waits, and mapi_read_error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/shm.h"
#include "common/wire.h"
#include "mapi.h"
#include "mapi/errors.h"
#include "mapi/flib.h"

static int failures, checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Checks that the last error is `code` (and clears it). */
#define CHECK_ERR(code)                                                                            \
    do {                                                                                           \
        int e_ = -1;                                                                               \
        char s_[MAPI_ERRORSTR_LENGTH];                                                             \
        mapi_read_error(&e_, s_);                                                                  \
        checks++;                                                                                  \
        if (e_ != (code)) {                                                                        \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: expected error %d, got %d (%s)\n", __FILE__, __LINE__, (code), \
                    e_, s_);                                                                       \
        }                                                                                          \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the fake mapid ------------------------------------------------------------------ */

#define RING_DATA 4096u

struct fake_fn {
    char name[256];
    uint32_t flags, result_size;
    int nowait;
};

struct fake_ring {
    struct mapi_ring_hdr *hdr; /* producer part */
    struct mapi_ring_ctl *ctl; /* consumer block */
};

struct fake_flow {
    int id;
    int connected;
    struct fake_fn fns[16];
    int nfns;
    struct mapi_shm_hdr *region;
    size_t region_len;
    struct fake_ring rings[16]; /* by fid */
};

static struct {
    char sock_path[100];
    int listen_fd;
    int conn;
    int ctl[2]; /* pipe: commands from the test */
    pthread_t thread;
    pthread_mutex_t lock;
    struct fake_flow flows[32];
    int nflows;
    int next_flow_id;
    int get_function_count, apply_count;
    /* Last APPLY_FUNCTION as decoded. */
    char last_args[1024];
    char last_file_check[64];
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct fake_flow *fake_flow(int id)
{
    for (int i = 0; i < S.nflows; i++)
        if (S.flows[i].id == id)
            return &S.flows[i];
    return NULL;
}

static void reply_error(uint16_t type, uint32_t reqid, int code, const char *msg)
{
    struct wire_writer w;
    wire_writer_init(&w, type, reqid, WIRE_F_ERROR);
    wire_put_i32(&w, code);
    wire_put_str(&w, msg);
    wire_finish(&w);
    wire_send(S.conn, &w, NULL, 0);
    wire_writer_free(&w);
}

static void send_msg(struct wire_writer *w, const int *fds, int nfds)
{
    wire_finish(w);
    wire_send(S.conn, w, fds, nfds);
    wire_writer_free(w);
}

static const struct {
    const char *name, *argdescr;
    uint32_t flags, result_size;
} fake_functions[] = {
    {"ALL", "sSirfclw", 0, 0},
    {"PKT_COUNTER", "", 0, 8},
    {"TO_BUFFER", "i", MAPI_FN_RING, 0},
    {"BPF_FILTER", "s", MAPI_FN_FILTERS, 0},
    {"BADDESCR", "x", 0, 0},
};

static const struct {
    const char *name;
    int nfuncs;
} fake_libs[] = {{"stdflib", 3}, {"extraflib", 2}};

static void *make_shared(size_t len, int *fdp)
{
    int fd = memfd_create("fake", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
        abort();
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        abort();
    *fdp = fd;
    return m;
}

static void handle_connect(uint32_t reqid, struct fake_flow *f)
{
    size_t off =
        (sizeof(struct mapi_shm_hdr) + sizeof(struct mapi_shm_slot) * (size_t)f->nfns + 63) &
        ~(size_t)63;
    size_t offsets[16];
    for (int i = 0; i < f->nfns; i++) {
        offsets[i] = off;
        off = (off + sizeof(struct mapi_shm_result) + f->fns[i].result_size + 63) & ~(size_t)63;
    }
    size_t total = (off + 4095) & ~(size_t)4095;
    int fds[33], nfds = 0;
    f->region = make_shared(total, &fds[nfds++]);
    f->region_len = total;
    f->region->magic = MAPI_SHM_MAGIC;
    f->region->version = MAPI_SHM_VERSION;
    f->region->nslots = (uint32_t)f->nfns;
    f->region->size = total;
    f->region->status = FLOW_ACTIVE;
    struct wire_writer w;
    wire_writer_init(&w, WIRE_CONNECT, reqid, 0);
    wire_put_u64(&w, total);
    int nrings = 0;
    for (int i = 0; i < f->nfns; i++) {
        f->region->slots[i].fid = i + 1;
        f->region->slots[i].size = f->fns[i].result_size;
        f->region->slots[i].offset = offsets[i];
        if (f->fns[i].flags & MAPI_FN_RING)
            nrings++;
    }
    wire_put_u32(&w, (uint32_t)nrings);
    for (int i = 0; i < f->nfns; i++) {
        if (!(f->fns[i].flags & MAPI_FN_RING))
            continue;
        struct mapi_ring_hdr *h = make_shared(MAPI_RING_HDR_SIZE + RING_DATA, &fds[nfds++]);
        h->magic = MAPI_RING_MAGIC;
        h->version = MAPI_SHM_VERSION;
        h->size = RING_DATA;
        h->nowait = (uint32_t)f->fns[i].nowait;
        f->rings[i + 1].hdr = h;
        f->rings[i + 1].ctl = make_shared(MAPI_RING_CTL_SIZE, &fds[nfds++]);
        wire_put_i32(&w, i + 1);
        wire_put_u64(&w, MAPI_RING_HDR_SIZE + RING_DATA);
    }
    f->connected = 1;
    send_msg(&w, fds, nfds);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
}

static void handle_apply(uint32_t reqid, struct wire_reader *r, int *fds, int nfds)
{
    int32_t id = wire_get_i32(r);
    char name[256];
    wire_get_str(r, name, sizeof(name));
    uint32_t nargs = wire_get_u32(r);
    char out[1024] = "";
    size_t len = 0;
    for (uint32_t i = 0; i < nargs && wire_reader_ok(r); i++) {
        char t = (char)wire_get_u8(r);
        char v[300];
        switch (t) {
        case 's':
        case 'S': {
            char s[256];
            wire_get_str(r, s, sizeof(s));
            snprintf(v, sizeof(v), "%c=%s;", t, s);
            break;
        }
        case 'l':
            snprintf(v, sizeof(v), "l=%llu;", (unsigned long long)wire_get_u64(r));
            break;
        case 'w': {
            uint32_t idx = wire_get_u32(r);
            snprintf(v, sizeof(v), "w=#%u;", idx);
            if ((int)idx < nfds) {
                ssize_t n = write(fds[idx], "hello", 5);
                snprintf(S.last_file_check, sizeof(S.last_file_check), "%zd", n);
            }
            break;
        }
        default:
            snprintf(v, sizeof(v), "%c=%d;", t, (int)wire_get_i32(r));
            break;
        }
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s", v);
    }
    struct fake_flow *f = fake_flow(id);
    if (!wire_reader_ok(r) || !f) {
        reply_error(WIRE_APPLY_FUNCTION, reqid, MAPI_INVALID_FLOW, "bad apply");
        return;
    }
    pthread_mutex_lock(&S.lock);
    S.apply_count++;
    snprintf(S.last_args, sizeof(S.last_args), "%s", out);
    pthread_mutex_unlock(&S.lock);
    struct fake_fn *fn = &f->fns[f->nfns++];
    snprintf(fn->name, sizeof(fn->name), "%s", name);
    fn->flags = 0;
    fn->result_size = 0;
    for (size_t i = 0; i < sizeof(fake_functions) / sizeof(fake_functions[0]); i++) {
        if (strcmp(fake_functions[i].name, name) == 0) {
            fn->flags = fake_functions[i].flags;
            fn->result_size = fake_functions[i].result_size;
        }
    }
    fn->nowait = strcmp(name, "TO_BUFFER") == 0 && strstr(out, "i=1;") != NULL;
    struct wire_writer w;
    wire_writer_init(&w, WIRE_APPLY_FUNCTION, reqid, 0);
    wire_put_i32(&w, f->nfns);
    wire_put_u32(&w, fn->result_size);
    wire_put_u32(&w, fn->flags);
    send_msg(&w, NULL, 0);
}

/* Handles one request. Returns 0, or -1 to drop the connection. */
static int handle(const struct wire_hdr *h, const uint8_t *payload, int *fds, int nfds)
{
    struct wire_reader r;
    wire_reader_init(&r, payload, h->length);
    struct wire_writer w;
    char s[512];
    switch (h->type) {
    case WIRE_HELLO:
        wire_writer_init(&w, WIRE_HELLO, h->reqid, 0);
        wire_put_u16(&w, WIRE_VERSION);
        wire_put_str(&w, "fake mapid");
        send_msg(&w, NULL, 0);
        return 0;
    case WIRE_CREATE_FLOW:
        wire_get_str(&r, s, sizeof(s));
        if (strcmp(s, "eth0") != 0 && strncmp(s, "trace@", 6) != 0) {
            reply_error(h->type, h->reqid, MAPID_NO_DRIVER, "no device named like that");
            return 0;
        }
        /* fall through */
    case WIRE_CREATE_OFFLINE_FLOW: {
        if (h->type == WIRE_CREATE_OFFLINE_FLOW) {
            char buf[4];
            if (nfds != 1 || read(fds[0], buf, 4) != 4) {
                reply_error(h->type, h->reqid, MAPID_NO_FD, "no readable fd");
                return 0;
            }
        }
        struct fake_flow *f = &S.flows[S.nflows++];
        memset(f, 0, sizeof(*f));
        f->id = S.next_flow_id++;
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_i32(&w, f->id);
        wire_put_i32(&w, 1);
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_CREATE_OFFLINE_DEVICE:
        wire_get_u32(&r);
        wire_get_str(&r, s, sizeof(s));
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_str(&w, nfds == 1 ? "trace@1" : "nofd");
        send_msg(&w, NULL, 0);
        return 0;
    case WIRE_START_OFFLINE_DEVICE:
    case WIRE_DELETE_OFFLINE_DEVICE:
        wire_get_str(&r, s, sizeof(s));
        if (strcmp(s, "trace@1") != 0) {
            reply_error(h->type, h->reqid, MAPID_NO_DEVICE, s);
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        send_msg(&w, NULL, 0);
        return 0;
    case WIRE_GET_FUNCTION:
        wire_get_str(&r, s, sizeof(s));
        pthread_mutex_lock(&S.lock);
        S.get_function_count++;
        pthread_mutex_unlock(&S.lock);
        for (size_t i = 0; i < sizeof(fake_functions) / sizeof(fake_functions[0]); i++) {
            if (strcmp(fake_functions[i].name, s) == 0) {
                wire_writer_init(&w, h->type, h->reqid, 0);
                wire_put_str(&w, s);
                wire_put_str(&w, fake_functions[i].argdescr);
                wire_put_str(&w, "stdflib");
                wire_put_u32(&w, fake_functions[i].flags);
                send_msg(&w, NULL, 0);
                return 0;
            }
        }
        reply_error(h->type, h->reqid, MAPI_FUNCTION_NOT_FOUND, s);
        return 0;
    case WIRE_APPLY_FUNCTION:
        handle_apply(h->reqid, &r, fds, nfds);
        return 0;
    case WIRE_CONNECT: {
        struct fake_flow *f = fake_flow(wire_get_i32(&r));
        if (!f || f->connected) {
            reply_error(h->type, h->reqid, f ? MDLIB_FLOW_ALREADY_ACTIVE : MAPI_INVALID_FLOW, "");
            return 0;
        }
        handle_connect(h->reqid, f);
        return 0;
    }
    case WIRE_CLOSE_FLOW:
        wire_writer_init(&w, h->type, h->reqid, 0);
        send_msg(&w, NULL, 0);
        return 0;
    case WIRE_DEVICE_INFO: {
        int32_t id = wire_get_i32(&r);
        int next = wire_get_u8(&r);
        int want = next ? (id < 1 ? 1 : id + 1) : id;
        if (want < 1 || want > 2) {
            reply_error(h->type, h->reqid, MAPID_NO_DEVICE, "no such device");
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_i32(&w, want);
        wire_put_str(&w, want == 1 ? "eth0" : "lo");
        wire_put_str(&w, "mapinicdrv");
        wire_put_str(&w, "");
        wire_put_str(&w, "a device");
        wire_put_i32(&w, 1000);
        wire_put_i32(&w, 0);
        wire_put_i32(&w, 1);
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_LIBRARY_INFO: {
        int32_t id = wire_get_i32(&r);
        int next = wire_get_u8(&r);
        int want = next ? id + 1 : id;
        if (want < 0 || want > 1) {
            reply_error(h->type, h->reqid, MAPI_LIBRARY_LOAD_ERR, "no such library");
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_i32(&w, want);
        wire_put_str(&w, fake_libs[want].name);
        wire_put_u32(&w, (uint32_t)fake_libs[want].nfuncs);
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_LIBFUNCT_INFO: {
        int32_t lib = wire_get_i32(&r), fnum = wire_get_i32(&r);
        int next = wire_get_u8(&r);
        int want = next ? fnum + 1 : fnum;
        if (lib < 0 || lib > 1 || want < 0 || want >= fake_libs[lib].nfuncs) {
            reply_error(h->type, h->reqid, 3079, "no such function");
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_i32(&w, want);
        snprintf(s, sizeof(s), "%s_F%d", fake_libs[lib].name, want);
        wire_put_str(&w, s);
        wire_put_str(&w, "descr");
        wire_put_str(&w, "i");
        wire_put_str(&w, "1");
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_FLOW_INFO: {
        int32_t id = wire_get_i32(&r);
        int next = wire_get_u8(&r);
        struct fake_flow *best = NULL;
        for (int i = 0; i < S.nflows; i++) {
            struct fake_flow *f = &S.flows[i];
            if ((next && f->id > id && (!best || f->id < best->id)) || (!next && f->id == id))
                best = f;
        }
        if (!best) {
            reply_error(h->type, h->reqid, MAPI_INVALID_FLOW, "no flow");
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_u32(&w, 1000);
        wire_put_i32(&w, best->id);
        wire_put_i32(&w, 1);
        wire_put_str(&w, "eth0");
        wire_put_u32(&w, (uint32_t)best->nfns);
        wire_put_u64(&w, 12345);
        wire_put_u64(&w, 0);
        wire_put_u32(&w, best->connected ? FLOW_ACTIVE : FLOW_INIT);
        wire_put_u64(&w, 777); /* cpu_ns */
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_FUNCTION_INFO: {
        struct fake_flow *f = fake_flow(wire_get_i32(&r));
        int32_t fid = wire_get_i32(&r);
        int next = wire_get_u8(&r);
        int want = next ? fid + 1 : fid;
        if (!f) { /* as mapid: an unknown (or another user's) flow id */
            reply_error(h->type, h->reqid, MAPI_INVALID_FLOW, "no such flow");
            return 0;
        }
        if (want < 1 || want > f->nfns) {
            reply_error(h->type, h->reqid, MDLIB_INVALID_FUNCID, "no function");
            return 0;
        }
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_i32(&w, want);
        wire_put_str(&w, f->fns[want - 1].name);
        wire_put_str(&w, "stdflib");
        wire_put_str(&w, "1");
        wire_put_u64(&w, 7);
        wire_put_u64(&w, 3);
        wire_put_i32(&w, (int32_t)f->fns[want - 1].result_size);
        send_msg(&w, NULL, 0);
        return 0;
    }
    case WIRE_STATS:
        wire_get_str(&r, s, sizeof(s));
        wire_writer_init(&w, h->type, h->reqid, 0);
        wire_put_u32(&w, 10);
        wire_put_u32(&w, 2);
        wire_put_u32(&w, 1);
        wire_put_str(&w, s);
        send_msg(&w, NULL, 0);
        return 0;
    default:
        return -1;
    }
}

/* Commands from the test through S.ctl. */
enum { CMD_SHUTDOWN = 1, CMD_DROP, CMD_QUIT, CMD_NOTIFY, CMD_STOP };

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = S.conn >= 0 ? S.conn : S.listen_fd, .events = POLLIN},
                              {.fd = S.ctl[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents & POLLIN) {
            char cmd;
            if (read(S.ctl[0], &cmd, 1) != 1)
                continue;
            if (cmd == CMD_QUIT)
                return NULL;
            if (cmd == CMD_STOP) { /* mapid exits: no more listening socket */
                close(S.listen_fd);
                S.listen_fd = -1;
                unlink(S.sock_path);
                if (S.conn >= 0)
                    close(S.conn);
                S.conn = -1;
                continue;
            }
            if (S.conn < 0)
                continue;
            if (cmd == CMD_SHUTDOWN || cmd == CMD_NOTIFY) {
                struct wire_writer w;
                wire_writer_init(&w, cmd == CMD_SHUTDOWN ? WIRE_SHUTDOWN : WIRE_DEVICE_FINISHED, 0,
                                 0);
                wire_put_str(&w, cmd == CMD_SHUTDOWN ? "test says stop" : "trace@1");
                send_msg(&w, NULL, 0);
                if (cmd == CMD_SHUTDOWN) {
                    for (int i = 0; i < S.nflows; i++) {
                        struct fake_flow *f = &S.flows[i];
                        if (f->region)
                            __atomic_store_n(&f->region->status, FLOW_CLOSED, __ATOMIC_RELEASE);
                        for (int k = 0; k < 16; k++) {
                            if (!f->rings[k].hdr)
                                continue;
                            __atomic_store_n(&f->rings[k].hdr->eof, 1, __ATOMIC_RELEASE);
                            __atomic_fetch_add(&f->rings[k].ctl->data_futex, 1, __ATOMIC_RELEASE);
                            syscall(SYS_futex, &f->rings[k].ctl->data_futex, FUTEX_WAKE, 100, NULL,
                                    NULL, 0);
                        }
                    }
                }
            } else if (cmd == CMD_DROP) {
                close(S.conn);
                S.conn = -1;
            }
            continue;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (S.conn < 0) {
            S.conn = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            continue;
        }
        struct wire_hdr h;
        uint8_t *payload;
        int fds[WIRE_MAX_FDS], nfds = 0;
        if (wire_recv(S.conn, &h, &payload, fds, WIRE_MAX_FDS, &nfds, 5000) != 0 ||
            handle(&h, payload, fds, nfds) < 0) {
            close(S.conn);
            S.conn = -1;
        }
        free(payload);
        for (int i = 0; i < nfds; i++)
            close(fds[i]);
    }
}

static void server_start(void)
{
    S.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", S.sock_path);
    unlink(S.sock_path);
    if (bind(S.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(S.listen_fd, 8) < 0) {
        perror("fake mapid: bind");
        exit(2);
    }
    S.conn = -1;
    S.next_flow_id = 101;
    if (pipe(S.ctl) < 0)
        exit(2);
    pthread_create(&S.thread, NULL, server_main, NULL);
}

static void server_cmd(char cmd)
{
    if (write(S.ctl[1], &cmd, 1) != 1)
        abort();
}

/* ---- helpers to play the producer ----------------------------------------------------- */

static struct fake_flow *last_fake_flow(void)
{
    return &S.flows[S.nflows - 1];
}

/* Appends a record of caplen bytes (filled with `fill`) like mapid's host_ring_put. */
static void produce(struct fake_ring *h, uint32_t caplen, unsigned char fill, uint64_t ts)
{
    uint8_t *data = (uint8_t *)h->hdr + MAPI_RING_HDR_SIZE;
    uint64_t head = h->hdr->head;
    uint32_t need = mapi_ring_record_len(caplen);
    uint64_t pos = head % h->hdr->size;
    if (h->hdr->size - pos < need) {
        uint32_t wrap = MAPI_RING_WRAP;
        memcpy(data + pos, &wrap, 4);
        head += h->hdr->size - pos;
        pos = 0;
    }
    uint32_t rh[2] = {need, 0};
    memcpy(data + pos, rh, 8);
    struct mapipkt *p = (struct mapipkt *)(data + pos + 8);
    p->ts = ts;
    p->ifindex = 1;
    p->caplen = caplen;
    p->wlen = caplen + 4;
    memset(&p->pkt, fill, caplen);
    head += need;
    __atomic_store_n(&h->hdr->head, head, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&h->ctl->consumer_waiting, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&h->ctl->data_futex, 1, __ATOMIC_RELEASE);
        syscall(SYS_futex, &h->ctl->data_futex, FUTEX_WAKE, 100, NULL, NULL, 0);
    }
}

static int pkt_ok(const struct mapipkt *p, uint32_t caplen, unsigned char fill)
{
    if (!p || p->caplen != caplen || p->wlen != caplen + 4)
        return 0;
    const unsigned char *b = &p->pkt;
    for (uint32_t i = 0; i < caplen; i++)
        if (b[i] != fill)
            return 0;
    return 1;
}

struct delayed {
    struct fake_ring *h;
    int ms;
    char cmd; /* 0: produce a packet */
};

static void *delayed_main(void *arg)
{
    struct delayed *d = arg;
    usleep((useconds_t)d->ms * 1000);
    if (d->cmd)
        server_cmd(d->cmd);
    else
        produce(d->h, 100, 0x42, 9);
    return NULL;
}

static int loop_count;
static void count_cb(const struct mapipkt *p)
{
    (void)p;
    loop_count++;
}

struct waiter {
    int fd, fid;
    struct mapipkt *pkt;
    int err;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->pkt = mapi_get_next_pkt(w->fd, w->fid);
    mapi_read_error(&w->err, NULL);
    return NULL;
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_not_running(void)
{
    double t0 = now_s();
    int fd = mapi_create_flow("eth0");
    double dt = now_s() - t0;
    int err;
    char msg[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&err, msg);
    CHECK(fd == -1);
    CHECK(err == MCOM_INIT_SOCKET_ERROR);
    CHECK(strstr(msg, S.sock_path) != NULL);
    CHECK(dt < 1.0);
    /* The error was cleared by reading it. */
    mapi_read_error(&err, msg);
    CHECK(err == 0);
    CHECK(mapi_read_error(NULL, NULL) == -1);
    CHECK(mapi_get_next_device_info(0, &(mapi_device_info_t){0}) == -1);
    CHECK_ERR(MCOM_INIT_SOCKET_ERROR);
}

static void test_management(void)
{
    /* The tutorial's loop. */
    int id = -1, fid, nlibs = 0, nfuncs = 0;
    mapi_lib_info_t info;
    mapi_libfunct_info_t finfo;
    while (mapi_get_next_library_info(id++, &info) == 0) {
        CHECK(info.id == nlibs);
        nlibs++;
        fid = -1;
        while (mapi_get_next_libfunct_info(info.id, fid++, &finfo) == 0) {
            CHECK(strncmp(finfo.name, info.libname, strlen(info.libname)) == 0);
            nfuncs++;
        }
        CHECK_ERR(MAPI_LIBRARY_LOAD_ERR);
    }
    CHECK_ERR(MAPI_LIBRARY_LOAD_ERR);
    CHECK(nlibs == 2);
    CHECK(nfuncs == 5);
    CHECK(mapi_get_library_info(1, &info) == 0 && info.functs == 2);
    CHECK(mapi_get_libfunct_next_info(0, 0, &finfo) == 0 && strcmp(finfo.name, "stdflib_F1") == 0);
    CHECK(mapi_get_libfunct_info(0, 7, &finfo) == -1);
    CHECK_ERR(MAPI_LIBRARY_LOAD_ERR);
    CHECK(mapi_get_libfunct_info(0, 0, NULL) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_3);

    mapi_device_info_t d;
    int ndev = 0;
    for (int dev = 0; mapi_get_next_device_info(dev, &d) == 0; dev = d.id)
        ndev++;
    CHECK(ndev == 2);
    CHECK_ERR(MAPI_DEVICE_INFO_ERR);
    CHECK(mapi_get_device_info(1, &d) == 0 && strcmp(d.device, "eth0") == 0 &&
          strcmp(d.name, "mapinicdrv") == 0 && d.link_speed == 1000 && d.vlan == 1);
    CHECK(mapi_get_device_info(9, &d) == -1);
    CHECK_ERR(MAPI_DEVICE_INFO_ERR);
    CHECK(mapi_get_device_info(1, NULL) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_2);

    struct mapi_stat st;
    CHECK(mapi_stats("eth0", &st) == 1);
    CHECK(st.ps_recv == 10 && st.ps_drop == 2 && st.ps_ifdrop == 1);
    CHECK(strcmp(st.hostname, "localhost") == 0 && strcmp(st.dev, "eth0") == 0);
    /* A remote scope without dimapi_ca in mapi.conf: refused before any packet is sent. */
    CHECK(mapi_stats("198.18.0.9:eth0", &st) == -1);
    CHECK_ERR(MCOM_INIT_SOCKET_ERROR);
}

static void test_create(void)
{
    CHECK(mapi_create_flow(NULL) == -1);
    CHECK_ERR(MAPI_DEVICE_INFO_ERR);
    /* Remote scopes need dimapi_ca (or dimapi_plaintext) in mapi.conf; this one has neither,
     * so the flow is refused before anything goes on the network. */
    CHECK(mapi_create_flow("198.18.0.9:/dev/dag0, [fd00::9]:2234:eth0") == -1);
    int err;
    char msg[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&err, msg);
    CHECK(err == MCOM_INIT_SOCKET_ERROR && strstr(msg, "dimapi_ca"));
    CHECK(mapi_create_flow("wlan9") == -1);
    mapi_read_error(&err, msg);
    CHECK(err == MAPID_NO_DRIVER && strstr(msg, "no device named like that"));

    CHECK(mapi_create_offline_device("/nonexistent/trace.pcap", MFF_PCAP) == NULL);
    mapi_read_error(&err, msg);
    CHECK(err == MAPI_ERROR_FILE && strstr(msg, "No such file"));
    CHECK(mapi_create_offline_flow(NULL, MFF_PCAP) == -1);
    CHECK_ERR(MAPI_ERROR_FILE);
    char *dev = mapi_create_offline_device("/proc/self/exe", MFF_PCAP);
    CHECK(dev && strcmp(dev, "trace@1") == 0);
    CHECK(mapi_start_offline_device(dev) == 0);
    CHECK(mapi_start_offline_device("other") == -1);
    CHECK_ERR(MAPID_NO_DEVICE);
    int fd = mapi_create_flow(dev);
    CHECK(fd > 0);
    CHECK(mapi_close_flow(fd) == 0);
    CHECK(mapi_delete_offline_device(dev) == 0);
    int ofd = mapi_create_offline_flow("/proc/self/exe", MFF_PCAP);
    CHECK(ofd > 0);
    CHECK(mapi_get_scope_size(ofd) == 1 && mapi_is_remote(ofd) == 0);
    CHECK(mapi_close_flow(ofd) == 0);
    CHECK(mapi_close_flow(ofd) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_close_flow(0) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_get_scope_size(ofd) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_is_remote(-3) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
}

static void test_apply(const char *dir)
{
    int fd = mapi_create_flow("eth0");
    int fd2 = mapi_create_flow("eth0");
    CHECK(fd > 0 && fd2 == fd + 1);
    int id = last_fake_flow()->id - 1, id2 = last_fake_flow()->id;
    char file[512], expect[1024];
    snprintf(file, sizeof(file), "%s/out1", dir);

    /* Varargs, every letter; r and the fds of S are translated to mapid's ids. */
    char slist[64], sone[32], rstr[16];
    snprintf(slist, sizeof(slist), "1@%d, 2@%d", fd, fd2);
    snprintf(sone, sizeof(sone), "1@%d", fd);
    snprintf(rstr, sizeof(rstr), "%d", fd);
    int fid = mapi_apply_function(fd, "ALL", "str", slist, 12, fd2, 5, 'c', 123456789012ULL, file);
    CHECK(fid == 1);
    snprintf(expect, sizeof(expect), "s=str;S=1@%d,2@%d;i=12;r=%d;f=5;c=99;l=123456789012;w=#0;",
             id, id2, id2);
    CHECK(strcmp(S.last_args, expect) == 0);
    if (strcmp(S.last_args, expect) != 0)
        fprintf(stderr, "  got %s\n  want %s\n", S.last_args, expect);
    struct stat st;
    CHECK(stat(file, &st) == 0 && st.st_size == 5 && (st.st_mode & 0777) == 0644);
    int applies = S.apply_count;

    /* Errors found before asking mapid to apply. */
    CHECK(mapi_apply_function(fd, "ALL", "s", sone, 1, fd2, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MDLIB_FILE_EXSISTS);
    CHECK(mapi_apply_function(fd, "ALL", "s", sone, 1, fd2, 5, 'c', 1ULL, NULL) == -1);
    CHECK_ERR(MAPI_ERROR_FILE);
    snprintf(file, sizeof(file), "%s/out2", dir);
    CHECK(mapi_apply_function(fd, "ALL", NULL, sone, 1, fd2, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_1);
    CHECK(mapi_apply_function(fd, "ALL", "s", "1@", 1, fd2, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_2);
    CHECK(mapi_apply_function(fd, "ALL", "s", "1@77", 1, fd2, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_2);
    CHECK(mapi_apply_function(fd, "ALL", "s", NULL, 1, fd2, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_2);
    CHECK(mapi_apply_function(fd, "ALL", "s", sone, 1, 99, 5, 'c', 1ULL, file) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_4);
    CHECK(stat(file, &st) == -1); /* no file left behind by a failed apply */
    CHECK(S.apply_count == applies);

    /* Arrays; descriptor sSirfclw. */
    snprintf(file, sizeof(file), "%s/out3", dir);
    char *a7[] = {"a b", sone, "1", rstr, "x", "18446744073709551615", file};
    CHECK(mapi_apply_function_array(fd, "ALL", a7, 7) == -1); /* 7 strings for 8 arguments */
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT);
    CHECK(mapi_apply_function_array(fd, "ALL", NULL, 8) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT);
    char spad[40];
    snprintf(spad, sizeof(spad), " 1@%d ,3@%d", fd, fd2);
    char *a1[] = {"a b", spad, " 12 ", rstr, "-7", "x", "18446744073709551615", file};
    fid = mapi_apply_function_array(fd, "ALL", a1, 8);
    CHECK(fid == 2);
    snprintf(expect, sizeof(expect),
             "s=a b;S=1@%d,3@%d;i=12;r=%d;f=-7;c=120;l=18446744073709551615;w=#0;", id, id2, id);
    CHECK(strcmp(S.last_args, expect) == 0);
    if (strcmp(S.last_args, expect) != 0)
        fprintf(stderr, "  got %s\n  want %s\n", S.last_args, expect);
    applies = S.apply_count;
    snprintf(file, sizeof(file), "%s/out4", dir);
    struct {
        int pos;
        const char *val;
        int err;
    } bad[] = {
        {3, "12x", MFUNCT_INVALID_ARGUMENT_3},
        {3, "", MFUNCT_INVALID_ARGUMENT_3},
        {3, "99999999999", MFUNCT_INVALID_ARGUMENT_3},
        {3, NULL, MFUNCT_INVALID_ARGUMENT_3},
        {4, "77", MFUNCT_INVALID_ARGUMENT_4}, /* flow 77 is not open */
        {5, "0x10", MFUNCT_INVALID_ARGUMENT_5},
        {6, "ab", MFUNCT_INVALID_ARGUMENT_6},
        {6, "300", MFUNCT_INVALID_ARGUMENT_6},
        {7, "-1", MFUNCT_INVALID_ARGUMENT},
        {7, "1.5", MFUNCT_INVALID_ARGUMENT},
        {7, "99999999999999999999999", MFUNCT_INVALID_ARGUMENT},
        {2, "1@1,x", MFUNCT_INVALID_ARGUMENT_2},
        {2, "1@77", MFUNCT_INVALID_ARGUMENT_2},
        {1, NULL, MFUNCT_INVALID_ARGUMENT_1},
        {8, NULL, MAPI_ERROR_FILE},
        {8, "/nonexistent-dir/x", MAPI_ERROR_FILE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *a[8];
        memcpy(a, a1, sizeof(a));
        a[7] = file;
        a[bad[i].pos - 1] = (char *)bad[i].val;
        CHECK(mapi_apply_function_array(fd, "ALL", a, 8) == -1);
        int err;
        char msg[MAPI_ERRORSTR_LENGTH];
        mapi_read_error(&err, msg);
        CHECK(err == bad[i].err);
        if (err != bad[i].err)
            fprintf(stderr, "  bad[%zu]: got %d (%s)\n", i, err, msg);
    }
    CHECK(stat(file, &st) == -1);
    CHECK(S.apply_count == applies);
    CHECK(S.get_function_count == 1); /* "ALL" asked once, then cached */

    CHECK(mapi_apply_function(fd, "NOPE") == -1);
    CHECK_ERR(MAPI_FUNCTION_NOT_FOUND);
    CHECK(mapi_apply_function(fd, NULL) == -1);
    CHECK_ERR(MAPI_FUNCTION_NOT_FOUND);
    CHECK(mapi_apply_function(fd, "BADDESCR", 1) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_DESCRIPTOR);
    CHECK(mapi_apply_function(77, "PKT_COUNTER") == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    char *none[] = {NULL};
    CHECK(mapi_apply_function_array(fd, "PKT_COUNTER", none, 0) == 3);
    CHECK(mapi_close_flow(fd) == 0);
    CHECK(mapi_close_flow(fd2) == 0);
}

static void test_results_and_ring(void)
{
    int fd = mapi_create_flow("eth0");
    CHECK(fd > 0);
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    int buf = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    int filt = mapi_apply_function(fd, "BPF_FILTER", "tcp");
    CHECK(cnt == 1 && buf == 2 && filt == 3);
    struct fake_flow *ff = last_fake_flow();

    CHECK(mapi_read_results(fd, cnt) == NULL);
    CHECK_ERR(MAPI_FLOW_NOT_CONNECTED);
    CHECK(mapi_get_next_pkt(fd, buf) == NULL);
    CHECK_ERR(MAPI_FLOW_NOT_CONNECTED);
    CHECK(mapi_loop(fd, buf, 1, count_cb) == -1);
    CHECK_ERR(MAPI_FLOW_NOT_CONNECTED);

    CHECK(mapi_connect(fd) == 0);
    CHECK(mapi_connect(fd) == -1);
    CHECK_ERR(MDLIB_FLOW_ALREADY_ACTIVE);
    CHECK(mapi_connect(99) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    int applies = S.apply_count;
    CHECK(mapi_apply_function(fd, "PKT_COUNTER") == -1);
    CHECK_ERR(MFUNCT_COULD_NOT_APPLY_FUNCT);
    CHECK(S.apply_count == applies);

    /* Results. */
    struct mapi_shm_result *r =
        (struct mapi_shm_result *)((char *)ff->region + ff->region->slots[0].offset);
    uint64_t v = 4242;
    memcpy(r->data, &v, 8);
    mapi_results_t *res = mapi_read_results(fd, cnt);
    CHECK(res && res->size == 8 && *(unsigned long long *)res->res == 4242);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    CHECK(res && res->ts / 1000000ull >= (unsigned long long)now.tv_sec - 1 &&
          res->ts / 1000000ull <= (unsigned long long)now.tv_sec + 1);
    CHECK(mapi_read_results(fd, 0) == NULL);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_read_results(fd, 9) == NULL);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_read_results(fd, filt) == NULL);
    CHECK_ERR(MAPI_SHM_ERR);
    CHECK(mapi_read_results(0, cnt) == NULL);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_read_results(55, cnt) == NULL);
    CHECK_ERR(MAPI_INVALID_FLOW);

    /* Speed of the fast path. */
    const int n = 2000000;
    double t0 = now_s();
    unsigned long long sum = 0;
    for (int i = 0; i < n; i++)
        sum += *(unsigned long long *)mapi_read_results(fd, cnt)->res;
    double ns = (now_s() - t0) * 1e9 / n;
    printf("mapi_read_results: %.1f ns per call (sum %llu)\n", ns, sum);

    /* A writer that died mid-write (seqlock word left odd): the read is bounded (about 1 s),
     * then NULL with 6140; a later consistent value reads again. */
    __atomic_store_n(&r->seq, 1u, __ATOMIC_RELEASE);
    t0 = now_s();
    CHECK(mapi_read_results(fd, cnt) == NULL);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    double stuck = now_s() - t0;
    CHECK(stuck >= 0.9 && stuck < 3.0);
    __atomic_store_n(&r->seq, 2u, __ATOMIC_RELEASE);
    res = mapi_read_results(fd, cnt);
    CHECK(res && *(unsigned long long *)res->res == 4242);

    /* Packets. */
    CHECK(mapi_get_next_pkt(fd, cnt) == NULL);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_get_next_pkt(fd, 0) == NULL);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_get_next_pkt(0, buf) == NULL);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_get_next_pkt(66, buf) == NULL);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_loop(66, buf, 1, count_cb) == -1);
    CHECK_ERR(MAPI_INVALID_FID_FUNCID);
    CHECK(mapi_loop(fd, buf, 1, NULL) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_4);

    struct fake_ring *h = &ff->rings[buf];
    /* Fill most of the ring: 3 x 1000-byte records (1032 each), then one that must wrap. */
    produce(h, 1000, 1, 1);
    produce(h, 1000, 2, 2);
    produce(h, 1000, 3, 3);
    struct mapipkt *p = mapi_get_next_pkt(fd, buf);
    CHECK(pkt_ok(p, 1000, 1) && p->ts == 1);
    CHECK(h->ctl->tail == 0); /* not consumed until the next call */
    p = mapi_get_next_pkt(fd, buf);
    CHECK(pkt_ok(p, 1000, 2));
    CHECK(h->ctl->tail == 1032);
    produce(h, 1000, 4, 4); /* 3096 + 1032 > 4096: wraps to the start */
    CHECK(h->hdr->head == 4096 + 1032);
    p = mapi_get_next_pkt(fd, buf);
    CHECK(pkt_ok(p, 1000, 3));
    /* Back-pressure: mapid waits for room; consuming must wake it. */
    __atomic_store_n(&h->ctl->producer_waiting, 1, __ATOMIC_RELAXED);
    uint32_t sf = h->ctl->space_futex;
    p = mapi_get_next_pkt(fd, buf);
    /* The wrapped record sits at the start of the data area (page aligned in our mapping). */
    CHECK(pkt_ok(p, 1000, 4) && p->ts == 4 && ((uintptr_t)p & 4095u) == MAPI_RING_RECHDR);
    CHECK(h->ctl->producer_waiting == 0 && h->ctl->space_futex == sf + 1);
    CHECK(h->ctl->tail == 4096); /* the third record and the wrapped end consumed */
    CHECK(h->ctl->read == 3);

    /* Blocking: a packet arrives 300 ms later and wakes us. */
    struct delayed d = {h, 300, 0};
    pthread_t t;
    pthread_create(&t, NULL, delayed_main, &d);
    double t1 = now_s();
    p = mapi_get_next_pkt(fd, buf);
    double waited = now_s() - t1;
    pthread_join(t, NULL);
    CHECK(pkt_ok(p, 100, 0x42));
    CHECK(waited > 0.25 && waited < 1.0);

    /* mapi_loop with a count. */
    for (int i = 0; i < 5; i++)
        produce(h, 60 + (uint32_t)i, (unsigned char)i, 100);
    loop_count = 0;
    CHECK(mapi_loop(fd, buf, 3, count_cb) == 0);
    CHECK(loop_count == 3);

    /* Another thread blocked on the ring when we close the flow: it gets 6145. */
    CHECK(mapi_loop(fd, buf, 2, count_cb) == 0 && loop_count == 5);
    struct waiter w = {fd, buf, NULL, 0};
    pthread_create(&t, NULL, waiter_main, &w);
    usleep(100 * 1000);
    CHECK(mapi_close_flow(fd) == 0);
    pthread_join(t, NULL);
    CHECK(w.pkt == NULL && w.err == MAPI_INVALID_FLOW);
}

static void test_eof_nowait(void)
{
    /* End of a trace: the remaining records, then NULL with no error. */
    int fd = mapi_create_offline_flow("/proc/self/exe", MFF_PCAP);
    int buf = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    CHECK(fd > 0 && buf == 1 && mapi_connect(fd) == 0);
    struct fake_ring *h = &last_fake_flow()->rings[buf];
    for (int i = 0; i < 5; i++)
        produce(h, 500, (unsigned char)i, 0);
    __atomic_store_n(&h->hdr->eof, 1, __ATOMIC_RELEASE);
    int n = 0;
    struct mapipkt *p;
    while ((p = mapi_get_next_pkt(fd, buf)) != NULL) {
        CHECK(pkt_ok(p, 500, (unsigned char)n));
        n++;
    }
    int err;
    mapi_read_error(&err, NULL);
    CHECK(n == 5);
    CHECK(err == 0);
    CHECK(mapi_loop(fd, buf, 0, count_cb) == 0);
    CHECK(mapi_close_flow(fd) == 0);

    /* NOWAIT: NULL at once when empty, no error. */
    fd = mapi_create_flow("eth0");
    buf = mapi_apply_function(fd, "TO_BUFFER", NOWAIT);
    CHECK(mapi_connect(fd) == 0);
    h = &last_fake_flow()->rings[buf];
    CHECK(h->hdr->nowait == 1);
    double t0 = now_s();
    CHECK(mapi_get_next_pkt(fd, buf) == NULL);
    CHECK(now_s() - t0 < 0.1);
    CHECK_ERR(0);
    produce(h, 64, 7, 0);
    CHECK(pkt_ok(mapi_get_next_pkt(fd, buf), 64, 7));
    CHECK(mapi_get_next_pkt(fd, buf) == NULL);
    CHECK_ERR(0);
    CHECK(mapi_close_flow(fd) == 0);
}

static void test_flow_info(void)
{
    int fd = mapi_create_flow("eth0");
    int fid = mapi_apply_function(fd, "PKT_COUNTER");
    mapi_flow_info_t fi;
    CHECK(mapi_get_flow_info(fd, &fi) == 0 && fi.fd == fd && fi.num_functions == 1 &&
          fi.status == FLOW_INIT && strcmp(fi.device, "eth0") == 0 && fi.cpu_ns == 777);
    CHECK(mapi_get_flow_info(fd, NULL) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_2);
    CHECK(mapi_get_flow_info(0, &fi) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    int n = 0, id = 0;
    while (mapi_get_next_flow_info(id, &fi) == 0) {
        CHECK(fi.fd > id);
        id = fi.fd;
        n++;
    }
    CHECK_ERR(MAPI_FLOW_INFO_ERR);
    CHECK(n == S.nflows);
    mapi_function_info_t fn;
    CHECK(mapi_get_function_info(fd, fid, &fn) == 0 && fn.fid == fid &&
          strcmp(fn.name, "PKT_COUNTER") == 0 && fn.result_size == 8 && fn.pkts == 7);
    CHECK(mapi_get_function_info(fd, 5, &fn) == -1);
    CHECK_ERR(MAPI_FUNCTION_INFO_ERR);
    CHECK(mapi_get_next_function_info(fd, 0, &fn) == 0 && fn.fid == 1);
    CHECK(mapi_get_next_function_info(fd, 1, &fn) == -1);
    CHECK_ERR(MAPI_FUNCTION_INFO_ERR);
    CHECK(mapi_get_function_info(fd, fid, NULL) == -1);
    CHECK_ERR(MFUNCT_INVALID_ARGUMENT_3);
    CHECK(mapi_get_function_info(99, fid, &fn) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);
    CHECK(mapi_close_flow(fd) == 0);
}

static void test_shutdown_and_death(void)
{
    /* An unsolicited DEVICE_FINISHED before a reply is harmless. */
    server_cmd(CMD_NOTIFY);
    usleep(50 * 1000);
    mapi_device_info_t d;
    CHECK(mapi_get_device_info(1, &d) == 0);

    /* SHUTDOWN while a thread waits for packets: NULL with 6140; later calls fail too. */
    int fd = mapi_create_flow("eth0");
    int cnt = mapi_apply_function(fd, "PKT_COUNTER");
    int buf = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    CHECK(mapi_connect(fd) == 0);
    struct delayed dl = {NULL, 300, CMD_SHUTDOWN};
    pthread_t t;
    pthread_create(&t, NULL, delayed_main, &dl);
    double t0 = now_s();
    CHECK(mapi_get_next_pkt(fd, buf) == NULL);
    CHECK(now_s() - t0 < 1.5);
    int err;
    char msg[MAPI_ERRORSTR_LENGTH];
    mapi_read_error(&err, msg);
    CHECK(err == MAPI_SHUTTING_DOWN);
    pthread_join(t, NULL);
    usleep(50 * 1000);
    CHECK(mapi_read_results(fd, cnt) == NULL);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    CHECK(mapi_create_flow("eth0") == -1);
    mapi_read_error(&err, msg);
    CHECK(err == MAPI_SHUTTING_DOWN && strstr(msg, "test says stop"));
    CHECK(mapi_close_flow(fd) == -1); /* mapid could not be told, but the flow is gone */
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    CHECK(mapi_close_flow(fd) == -1);
    CHECK_ERR(MAPI_INVALID_FLOW);

    /* With no flows left, the next call connects afresh (our fake is still there). */
    fd = mapi_create_flow("eth0");
    CHECK(fd > 0);
    buf = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    cnt = mapi_apply_function(fd, "PKT_COUNTER");
    CHECK(mapi_connect(fd) == 0);
    CHECK(mapi_read_results(fd, cnt) != NULL);

    /* mapid dies (connection dropped, no SHUTDOWN) while we wait: NULL with 5123. */
    dl.cmd = CMD_DROP;
    pthread_create(&t, NULL, delayed_main, &dl);
    t0 = now_s();
    CHECK(mapi_get_next_pkt(fd, buf) == NULL);
    double dt = now_s() - t0;
    CHECK(dt < 1.5);
    CHECK_ERR(MCOM_SOCKET_ERROR);
    pthread_join(t, NULL);
    CHECK(mapi_read_results(fd, cnt) == NULL); /* results would be stale forever */
    CHECK_ERR(MCOM_SOCKET_ERROR);
    CHECK(mapi_apply_function(fd, "PKT_COUNTER") == -1);
    CHECK_ERR(MFUNCT_COULD_NOT_APPLY_FUNCT);
    CHECK(mapi_get_device_info(1, &d) == -1);
    CHECK_ERR(MCOM_SOCKET_ERROR);
    CHECK(mapi_close_flow(fd) == -1);
    CHECK_ERR(MCOM_SOCKET_ERROR);
    CHECK(mapi_get_device_info(1, &d) == 0); /* reconnected */

    /* mapid announces its shutdown and goes away for good: calls keep failing with 6140,
     * with the flows closed as well, and without hanging. */
    fd = mapi_create_flow("eth0");
    server_cmd(CMD_SHUTDOWN);
    usleep(50 * 1000);
    server_cmd(CMD_STOP);
    usleep(50 * 1000);
    CHECK(mapi_get_device_info(1, &d) == -1);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    CHECK(mapi_close_flow(fd) == -1);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    t0 = now_s();
    CHECK(mapi_get_device_info(1, &d) == -1);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    CHECK(mapi_create_flow("eth0") == -1);
    CHECK_ERR(MAPI_SHUTTING_DOWN);
    CHECK(now_s() - t0 < 0.5);
}

int main(void)
{
    char dir[] = "/tmp/mapi-libtest-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    char conf[300];
    snprintf(S.sock_path, sizeof(S.sock_path), "%s/mapid.sock", dir);
    snprintf(conf, sizeof(conf), "%s/mapi.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return 2;
    fprintf(f, "socket=%s\n", S.sock_path);
    fclose(f);
    setenv("MAPI_CONF", conf, 1);

    test_not_running();
    server_start();
    test_management();
    test_create();
    test_apply(dir);
    test_results_and_ring();
    test_eof_nowait();
    test_flow_info();
    test_shutdown_and_death();

    server_cmd(CMD_QUIT);
    pthread_join(S.thread, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
