/*
 * bench/walk_floor.c - the floor of the offline benchmarks: the least work any tool must do to
 * look at every packet of a classic pcap file. It reads the file with 1 MiB read() calls,
 * walks the 16-byte record headers, and counts the packets, the wire bytes (sum of the
 * records' original lengths) and the captured bytes (sum of caplen). It never touches the
 * packet data, so a tool that runs within a small factor of this is bound by reading the file.
 *
 * Usage: walk_floor [-p PKTS] [-B BYTES] [-C CAPTURED] FILE.pcap
 *   -p, -B, -C   expected packets, wire bytes and captured bytes ("-": not checked)
 * Prints "packets N", "bytes B" and "captured C"; exit status 1 if a count differs from the
 * expected one, the file is not a classic pcap file (micro- or nanosecond, either byte order)
 * or it ends inside a record. libc only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define MAX_RECORD (CHUNK - 16u)

static long long parse_count(const char *s)
{
    if (strcmp(s, "-") == 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || *s == '\0') {
        fprintf(stderr, "walk_floor: bad count \"%s\"\n", s);
        exit(2);
    }
    return (long long)v;
}

static int check(const char *what, unsigned long long got, long long want)
{
    if (want < 0 || got == (unsigned long long)want)
        return 0;
    fprintf(stderr, "walk_floor: WRONG %s: got %llu, expected %lld\n", what, got, want);
    return 1;
}

static uint32_t get32(const unsigned char *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

/* Reads until n bytes or end of file; returns the bytes read or -1. */
static ssize_t read_full(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int main(int argc, char **argv)
{
    long long want_pkts = -1, want_bytes = -1, want_cap = -1;
    int opt;
    while ((opt = getopt(argc, argv, "p:B:C:")) != -1) {
        switch (opt) {
        case 'p':
            want_pkts = parse_count(optarg);
            break;
        case 'B':
            want_bytes = parse_count(optarg);
            break;
        case 'C':
            want_cap = parse_count(optarg);
            break;
        default:
            fprintf(stderr, "usage: walk_floor [-p PKTS] [-B BYTES] [-C CAPTURED] FILE.pcap\n");
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: walk_floor [-p PKTS] [-B BYTES] [-C CAPTURED] FILE.pcap\n");
        return 2;
    }
    int fd = open(argv[optind], O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "walk_floor: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    /* A record never exceeds MAX_RECORD, so what is left of one chunk plus the next fits. */
    unsigned char *buf = malloc(2 * (size_t)CHUNK);
    if (!buf)
        return 1;
    unsigned char ghdr[24];
    if (read_full(fd, ghdr, sizeof ghdr) != (ssize_t)sizeof ghdr) {
        fprintf(stderr, "walk_floor: %s: no pcap header\n", argv[optind]);
        return 1;
    }
    uint32_t magic;
    memcpy(&magic, ghdr, 4);
    int swap;
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
        swap = 0;
    else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
        swap = 1;
    else {
        fprintf(stderr, "walk_floor: %s is not a classic pcap file\n", argv[optind]);
        return 1;
    }

    unsigned long long pkts = 0, bytes = 0, captured = 0;
    size_t have = 0; /* bytes of an unfinished record at the start of buf */
    for (;;) {
        ssize_t r = read(fd, buf + have, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "walk_floor: read: %s\n", strerror(errno));
            return 1;
        }
        if (r == 0)
            break;
        size_t end = have + (size_t)r, off = 0;
        while (end - off >= 16) {
            uint32_t caplen = get32(buf + off + 8, swap);
            if (caplen > MAX_RECORD) {
                fprintf(stderr, "walk_floor: record %llu: caplen %u\n", pkts + 1, caplen);
                return 1;
            }
            if (end - off < 16 + (size_t)caplen)
                break;
            pkts++;
            captured += caplen;
            bytes += get32(buf + off + 12, swap);
            off += 16 + (size_t)caplen;
        }
        have = end - off;
        if (have)
            memmove(buf, buf + off, have);
    }
    close(fd);
    if (have) {
        fprintf(stderr, "walk_floor: the file ends inside record %llu\n", pkts + 1);
        return 1;
    }
    printf("packets %llu\nbytes %llu\ncaptured %llu\n", pkts, bytes, captured);
    int bad = check("packet count", pkts, want_pkts) | check("byte count", bytes, want_bytes) |
              check("captured bytes", captured, want_cap);
    free(buf);
    return bad;
}
