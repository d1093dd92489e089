/*
 * common/wire.c - encoder, decoder and blocking socket I/O of the MAPI wire protocol
 * (format in wire.h). Every read is bounds-checked: a malformed message can only make
 * the reader fail, never read outside the payload.
 */
#include "common/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void put_raw(struct wire_writer *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            w->failed = 1;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void wire_writer_init(struct wire_writer *w, uint16_t type, uint32_t reqid, uint8_t flags)
{
    memset(w, 0, sizeof(*w));
    uint8_t hdr[WIRE_HDR_SIZE] = {0};
    uint32_t magic = htonl(WIRE_MAGIC), rid = htonl(reqid);
    uint16_t t = htons(type);
    memcpy(hdr, &magic, 4);
    hdr[4] = WIRE_VERSION;
    hdr[5] = flags;
    memcpy(hdr + 6, &t, 2);
    memcpy(hdr + 12, &rid, 4);
    put_raw(w, hdr, sizeof(hdr));
}

void wire_writer_free(struct wire_writer *w)
{
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

void wire_put_u8(struct wire_writer *w, uint8_t v)
{
    put_raw(w, &v, 1);
}

void wire_put_u16(struct wire_writer *w, uint16_t v)
{
    v = htons(v);
    put_raw(w, &v, 2);
}

void wire_put_u32(struct wire_writer *w, uint32_t v)
{
    v = htonl(v);
    put_raw(w, &v, 4);
}

void wire_put_i32(struct wire_writer *w, int32_t v)
{
    wire_put_u32(w, (uint32_t)v);
}

void wire_put_u64(struct wire_writer *w, uint64_t v)
{
    wire_put_u32(w, (uint32_t)(v >> 32));
    wire_put_u32(w, (uint32_t)v);
}

void wire_put_bytes(struct wire_writer *w, const void *p, uint32_t n)
{
    wire_put_u32(w, n);
    if (n)
        put_raw(w, p, n);
}

void wire_put_str(struct wire_writer *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > WIRE_MAX_PAYLOAD) {
        w->failed = 1;
        return;
    }
    wire_put_bytes(w, s, (uint32_t)n);
}

int wire_finish(struct wire_writer *w)
{
    if (w->failed || w->len < WIRE_HDR_SIZE || w->len - WIRE_HDR_SIZE > WIRE_MAX_PAYLOAD)
        return -1;
    uint32_t n = htonl((uint32_t)(w->len - WIRE_HDR_SIZE));
    memcpy(w->buf + 8, &n, 4);
    return 0;
}

void wire_reader_init(struct wire_reader *r, const void *payload, size_t len)
{
    r->p = payload;
    r->left = len;
    r->failed = 0;
}

static const uint8_t *take(struct wire_reader *r, size_t n)
{
    if (r->failed || r->left < n) {
        r->failed = 1;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t wire_get_u8(struct wire_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? *p : 0;
}

uint16_t wire_get_u16(struct wire_reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t wire_get_u32(struct wire_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3] : 0;
}

int32_t wire_get_i32(struct wire_reader *r)
{
    return (int32_t)wire_get_u32(r);
}

uint64_t wire_get_u64(struct wire_reader *r)
{
    uint64_t hi = wire_get_u32(r);
    return (hi << 32) | wire_get_u32(r);
}

const uint8_t *wire_get_bytes(struct wire_reader *r, uint32_t *len)
{
    uint32_t n = wire_get_u32(r);
    const uint8_t *p = take(r, n);
    *len = p ? n : 0;
    return p ? p : (const uint8_t *)"";
}

void wire_get_str(struct wire_reader *r, char *dst, size_t dstlen)
{
    uint32_t n;
    const uint8_t *p = wire_get_bytes(r, &n);
    if (dstlen == 0)
        return;
    if (r->failed || n >= dstlen || memchr(p, 0, n)) {
        r->failed = 1;
        dst[0] = 0;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = 0;
}

int wire_parse_header(const uint8_t *raw, struct wire_hdr *out)
{
    uint32_t magic, len, rid;
    uint16_t type;
    memcpy(&magic, raw, 4);
    memcpy(&type, raw + 6, 2);
    memcpy(&len, raw + 8, 4);
    memcpy(&rid, raw + 12, 4);
    if (ntohl(magic) != WIRE_MAGIC || raw[4] != WIRE_VERSION)
        return -1;
    out->version = raw[4];
    out->flags = raw[5];
    out->type = ntohs(type);
    out->length = ntohl(len);
    out->reqid = ntohl(rid);
    if (out->length > WIRE_MAX_PAYLOAD)
        return -1;
    return 0;
}

int wire_send(int sock, const struct wire_writer *w, const int *fds, int nfds)
{
    if (w->failed || nfds < 0 || nfds > WIRE_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    size_t off = 0;
    while (off < w->len) {
        struct iovec iov = {.iov_base = w->buf + off, .iov_len = w->len - off};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
            struct cmsghdr align;
        } ctl;
        if (off == 0 && nfds > 0) {
            memset(&ctl, 0, sizeof(ctl));
            msg.msg_control = ctl.buf;
            msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Reads exactly n bytes, collecting any descriptors. 0, or -1 (errno; ECONNRESET at EOF,
 * ETIMEDOUT when timeout_ms passed with no data). */
static int recv_all(int sock, uint8_t *buf, size_t n, int *fds, int maxfds, int *nfds,
                    int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        if (timeout_ms >= 0) {
            struct pollfd pfd = {.fd = sock, .events = POLLIN};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0) {
                if (pr == 0)
                    errno = ETIMEDOUT;
                return -1;
            }
        }
        struct iovec iov = {.iov_base = buf + got, .iov_len = n - got};
        union {
            char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
            struct cmsghdr align;
        } ctl;
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};
        ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *in = (int *)CMSG_DATA(c);
            for (size_t i = 0; i < cnt; i++) {
                int fd;
                memcpy(&fd, in + i, sizeof(int));
                if (fds && *nfds < maxfds)
                    fds[(*nfds)++] = fd;
                else
                    close(fd);
            }
        }
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int wire_recv(int sock, struct wire_hdr *hdr, uint8_t **payload, int *fds, int maxfds, int *nfds,
              int timeout_ms)
{
    uint8_t raw[WIRE_HDR_SIZE];
    int dummy = 0;
    if (!nfds)
        nfds = &dummy;
    *nfds = 0;
    *payload = NULL;
    if (recv_all(sock, raw, sizeof(raw), fds, maxfds, nfds, timeout_ms) < 0)
        goto fail;
    if (wire_parse_header(raw, hdr) < 0) {
        for (int i = 0; i < *nfds; i++)
            close(fds[i]);
        *nfds = 0;
        return -2;
    }
    *payload = malloc(hdr->length ? hdr->length : 1);
    if (!*payload) {
        errno = ENOMEM;
        goto fail;
    }
    if (hdr->length && recv_all(sock, *payload, hdr->length, fds, maxfds, nfds, timeout_ms) < 0)
        goto fail;
    return 0;
fail:
    free(*payload);
    *payload = NULL;
    for (int i = 0; i < *nfds; i++)
        close(fds[i]);
    *nfds = 0;
    return -1;
}

const char *wire_type_name(unsigned type)
{
    static const char *const names[] = {
        [WIRE_HELLO] = "HELLO",
        [WIRE_CREATE_FLOW] = "CREATE_FLOW",
        [WIRE_CREATE_OFFLINE_DEVICE] = "CREATE_OFFLINE_DEVICE",
        [WIRE_START_OFFLINE_DEVICE] = "START_OFFLINE_DEVICE",
        [WIRE_DELETE_OFFLINE_DEVICE] = "DELETE_OFFLINE_DEVICE",
        [WIRE_CREATE_OFFLINE_FLOW] = "CREATE_OFFLINE_FLOW",
        [WIRE_GET_FUNCTION] = "GET_FUNCTION",
        [WIRE_APPLY_FUNCTION] = "APPLY_FUNCTION",
        [WIRE_CONNECT] = "CONNECT",
        [WIRE_CLOSE_FLOW] = "CLOSE_FLOW",
        [WIRE_DEVICE_INFO] = "DEVICE_INFO",
        [WIRE_LIBRARY_INFO] = "LIBRARY_INFO",
        [WIRE_LIBFUNCT_INFO] = "LIBFUNCT_INFO",
        [WIRE_FLOW_INFO] = "FLOW_INFO",
        [WIRE_FUNCTION_INFO] = "FUNCTION_INFO",
        [WIRE_STATS] = "STATS",
        [WIRE_SHUTDOWN] = "SHUTDOWN",
        [WIRE_DEVICE_FINISHED] = "DEVICE_FINISHED",
    };
    const char *n = type < sizeof(names) / sizeof(names[0]) ? names[type] : NULL;
    return n ? n : "?";
}
