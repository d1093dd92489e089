/*
 * tests/mapi_shmattack.c - a hostile client of mapid's shared memory (tests/test_shm_hostile.sh;
 * issue 10 #2). It links stock libmapi and keeps a duplicate of every descriptor libmapi
 * receives from mapid (it wraps recvmsg; libmapi itself closes them after mapping), as any
 * client that speaks the protocol itself could. Then it tries every way to write what mapid
 * reads.
 *
 * Usage: mapi_shmattack MODE TRACE
 *   seal     Creates a trace device on TRACE and one flow with PKT_COUNTER (fid c), BINOP ADD of
 *            that counter with itself and TO_BUFFER, connects it and, before starting the
 *            device, attacks the result region and the ring's producer part (each sealed
 *            descriptor mapid sent). Prints one line per attempt:
 *              refused WHAT errno=N   (the kernel refused it)
 *              WROTE WHAT             (the attack succeeded: the test fails)
 *            Also writes an odd seqlock word into the counter's result through every way that
 *            worked (none should). Then starts the device, reads every packet with
 *            mapi_get_next_pkt and prints
 *              pkts P counter C binop B
 *   ctl      Same flow; garbles the ring's consumer block (the part the client may write):
 *            tail far ahead and misaligned, waiting flags set, futex words garbage. Starts the
 *            device, waits for the end of the trace (mapi_read_results status through the
 *            counter: it stops changing), prints "counter C" and the error of get_next_pkt as
 *            "next NULL|PKT err E".
 *   hold     Same flow; starts the device and never reads the ring (mapid waits for room on
 *            the trace file). Once the ring is full prints "ready" and, until killed, keeps
 *            moving tail between two valid values and bumping space_futex (with wakes), so
 *            that mapid's wait never sleeps on its own.
 * Exit status 0 when the program ran (the verdict is in the output), 1 on a MAPI error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/falloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <mapi.h>
#include <mapi/binop.h>

#include "../common/shm.h"
#include "client_util.h"

#define MAX_KEPT 64
static int kept[MAX_KEPT]; /* duplicates of the descriptors received, in order */
static int nkept;

/* Wraps libc's recvmsg (libmapi's calls resolve to this definition first): keeps a duplicate
 * of every descriptor that arrives with SCM_RIGHTS. */
ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t n = syscall(SYS_recvmsg, fd, msg, flags);
    if (n < 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && nkept < MAX_KEPT; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            kept[nkept++] = fcntl(got, F_DUPFD_CLOEXEC, 100);
        }
    }
    return n;
}

static int failures;

static void result(const char *what, int rc)
{
    if (rc < 0) {
        printf("refused %s errno=%d\n", what, errno);
    } else {
        printf("WROTE %s\n", what);
        failures++;
    }
}

/* Every way to write descriptor fd (size bytes) at offset off with the 4 bytes val. */
static void attack_fd(const char *name, int fd, off_t size, off_t off, uint32_t val)
{
    char what[128], path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    snprintf(what, sizeof(what), "%s: pwrite on the descriptor mapid sent", name);
    result(what, (int)pwrite(fd, &val, sizeof(val), off));

    int rw = open(path, O_RDWR | O_CLOEXEC);
    printf("info %s: read-write reopen %s\n", name, rw >= 0 ? "opened" : "refused");
    if (rw >= 0) {
        snprintf(what, sizeof(what), "%s: pwrite on a read-write reopen", name);
        result(what, (int)pwrite(rw, &val, sizeof(val), off));

        void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
        snprintf(what, sizeof(what), "%s: writable MAP_SHARED mapping of a read-write reopen",
                 name);
        if (m != MAP_FAILED) {
            memcpy((char *)m + off, &val, sizeof(val));
            munmap(m, (size_t)size);
            result(what, 0);
        } else {
            result(what, -1);
        }

        m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, rw, 0);
        snprintf(what, sizeof(what), "%s: mprotect(PROT_WRITE) of a read-only shared mapping",
                 name);
        if (m == MAP_FAILED) {
            printf("info %s: read-only mapping of the reopen failed errno=%d\n", name, errno);
        } else {
            int rc = mprotect(m, (size_t)size, PROT_READ | PROT_WRITE);
            if (rc == 0)
                memcpy((char *)m + off, &val, sizeof(val));
            result(what, rc);
            snprintf(what, sizeof(what), "%s: madvise(MADV_REMOVE) of a shared mapping", name);
            result(what, madvise(m, (size_t)size, MADV_REMOVE));
            munmap(m, (size_t)size);
        }

        snprintf(what, sizeof(what), "%s: fallocate punch-hole", name);
        result(what, fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, size));
        snprintf(what, sizeof(what), "%s: ftruncate to 0", name);
        result(what, ftruncate(rw, 0));
        snprintf(what, sizeof(what), "%s: ftruncate to twice the size", name);
        result(what, ftruncate(rw, size * 2));
        snprintf(what, sizeof(what), "%s: writev on a read-write reopen", name);
        struct iovec iov = {&val, sizeof(val)};
        result(what, (int)pwritev(rw, &iov, 1, off));
        close(rw);
    }

    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    snprintf(what, sizeof(what), "%s: mprotect(PROT_WRITE) of a mapping of the descriptor", name);
    if (m == MAP_FAILED) {
        printf("info %s: cannot map the descriptor errno=%d\n", name, errno);
    } else {
        int rc = mprotect(m, (size_t)size, PROT_READ | PROT_WRITE);
        if (rc == 0)
            memcpy((char *)m + off, &val, sizeof(val));
        result(what, rc);
        munmap(m, (size_t)size);
    }
    snprintf(what, sizeof(what), "%s: writable MAP_SHARED mapping of the descriptor", name);
    m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
        memcpy((char *)m + off, &val, sizeof(val));
        munmap(m, (size_t)size);
    }
    result(what, m == MAP_FAILED ? -1 : 0);
    snprintf(what, sizeof(what), "%s: fcntl F_ADD_SEALS", name);
    result(what, fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));

    /* A private writable mapping is allowed (copy on write): it must not reach mapid. */
    m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
        memcpy((char *)m + off, &val, sizeof(val));
        munmap(m, (size_t)size);
    }
}

struct target {
    int fd, counter, binop, buf;
};

/* Trace device on trace, one flow: PKT_COUNTER, BINOP ADD counter counter, TO_BUFFER WAIT.
 * Connected, the device not started. Descriptors kept: [0] region, [1] ring, [2] ring ctl. */
static char *setup(const char *trace, struct target *t)
{
    char *dev = mapi_create_offline_device(trace, MFF_PCAP);
    if (!dev)
        fatal("mapi_create_offline_device");
    t->fd = mapi_create_flow(dev);
    if (t->fd < 0)
        fatal("mapi_create_flow");
    t->counter = mapi_apply_function(t->fd, "PKT_COUNTER");
    t->binop = mapi_apply_function(t->fd, "BINOP", BINOP_ADD, t->fd, t->counter, t->fd, t->counter);
    t->buf = mapi_apply_function(t->fd, "TO_BUFFER", WAIT);
    if (t->counter < 0 || t->binop < 0 || t->buf < 0)
        fatal("mapi_apply_function");
    nkept = 0;
    if (mapi_connect(t->fd) < 0)
        fatal("mapi_connect");
    if (nkept != 3) {
        fprintf(stderr, "mapi_shmattack: CONNECT brought %d descriptors, not 3\n", nkept);
        exit(1);
    }
    return dev;
}

static off_t fd_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : 0;
}

/* Offset of fid's seqlock word in the region (read through a read-only mapping). */
static off_t seq_offset(int region_fd, int fid)
{
    off_t size = fd_size(region_fd);
    const struct mapi_shm_hdr *h = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, region_fd, 0);
    if (h == MAP_FAILED)
        return 0;
    off_t off = 0;
    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].fid == fid)
            off = (off_t)h->slots[i].offset;
    munmap((void *)h, (size_t)size);
    return off;
}

static unsigned long long read_u64(int fd, int fid)
{
    mapi_results_t *r = mapi_read_results(fd, fid);
    return r ? *(unsigned long long *)r->res : ~0ull;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mapi_shmattack seal|ctl|hold TRACE\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct target t;
    char *dev = setup(argv[2], &t);
    if (!strcmp(argv[1], "seal")) {
        int region = kept[0], ring = kept[1];
        attack_fd("result region", region, fd_size(region), seq_offset(region, t.counter), 1u);
        /* The ring's producer part: head (an offset the client reads) and the first record. */
        attack_fd("ring producer part", ring, fd_size(ring),
                  (off_t)offsetof(struct mapi_ring_hdr, head), 0x7fffffffu);
        attack_fd("ring data", ring, fd_size(ring), MAPI_RING_HDR_SIZE, 0xffffffffu);
        if (mapi_start_offline_device(dev) < 0)
            fatal("mapi_start_offline_device");
        unsigned long long pkts = 0;
        while (mapi_get_next_pkt(t.fd, t.buf) != NULL)
            pkts++;
        int err = last_error();
        printf("pkts %llu counter %llu binop %llu err %d\n", pkts, read_u64(t.fd, t.counter),
               read_u64(t.fd, t.binop), err);
    } else if (!strcmp(argv[1], "ctl")) {
        struct mapi_ring_ctl *c =
            mmap(NULL, MAPI_RING_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, kept[2], 0);
        if (c == MAP_FAILED) {
            perror("mapi_shmattack: mapping the consumer block");
            return 1;
        }
        c->tail = 0x123456789abcdefull; /* ahead of head, misaligned */
        c->consumer_waiting = 1;
        c->producer_waiting = 0xffffffffu;
        c->space_futex = 0xdeadbeefu;
        c->data_futex = 0xfeedu;
        if (mapi_start_offline_device(dev) < 0)
            fatal("mapi_start_offline_device");
        /* The trace runs to its end: the counter stops changing. */
        unsigned long long prev = ~0ull, now = read_u64(t.fd, t.counter);
        for (int i = 0; i < 100 && now != prev; i++) {
            usleep(200 * 1000);
            prev = now;
            now = read_u64(t.fd, t.counter);
        }
        printf("counter %llu\n", now);
        struct mapipkt *p = mapi_get_next_pkt(t.fd, t.buf);
        printf("next %s err %d\n", p ? "PKT" : "NULL", last_error());
    } else if (!strcmp(argv[1], "hold")) {
        off_t len = fd_size(kept[1]);
        const struct mapi_ring_hdr *h = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, kept[1], 0);
        struct mapi_ring_ctl *c =
            mmap(NULL, MAPI_RING_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, kept[2], 0);
        if (h == MAP_FAILED || c == MAP_FAILED) {
            perror("mapi_shmattack: mapping the ring");
            return 1;
        }
        if (mapi_start_offline_device(dev) < 0)
            fatal("mapi_start_offline_device");
        /* Wait until the ring is full (mapid waits for room), then keep moving tail between
         * two valid values and bumping the futex word, never making room. */
        while (__atomic_load_n(&h->head, __ATOMIC_ACQUIRE) + 4096u < h->size)
            usleep(1000);
        printf("ready\n");
        for (uint64_t i = 0;; i++) {
            __atomic_store_n(&c->tail, (i & 1) * 8u, __ATOMIC_RELEASE);
            __atomic_fetch_add(&c->space_futex, 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, &c->space_futex, FUTEX_WAKE, 1, NULL, NULL, 0);
        }
    } else {
        fprintf(stderr, "mapi_shmattack: unknown mode %s\n", argv[1]);
        return 2;
    }
    mapi_close_flow(t.fd);
    mapi_delete_offline_device(dev); /* frees dev */
    return 0;
}
