/*
 * tests/test_drivers.c - test of the trace-file capture drivers (drivers/pcap_file.c,
 * drivers/erf_file.c) together with the decoder (common/decode.c).
 *
 * Opens real captures from tests/data through the drivers and compares the packet count,
 * the sums of wlen and caplen, timestamps, and what the decoder finds (IPv4/IPv6 packets,
 * TCP/UDP ports) with values obtained from tcpdump and tshark, hard-coded below with the
 * command that produced them. Every file is read three ways (a regular file in batches of 64
 * and of 1, and through a pipe fed in small writes) and the three must agree, including a
 * hash of every captured byte (reading the bytes also checks that packet pointers stay valid
 * for the whole batch; run under ASan). gzip-compressed traces (traceconvert's ERF output,
 * gzip'ed pcap and pcapng) must give exactly what their uncompressed versions give. Then
 * damaged inputs, made at run time in a temporary directory: empty, header only, garbage,
 * truncated and corrupt pcap/pcapng/ERF files, ERF extension headers and padding records,
 * truncated and corrupt gzip streams, and traces truncated by someone else while the driver
 * reads them (mapid must not die of SIGBUS: the drivers never mmap), and the bounds of a
 * record's caplen (262144 at most, cut to a smaller snaplen, as libpcap does).
 *
 * Usage: test_drivers DATA_DIR. Exit status 0 when all checks pass; failures are printed.
 */
#include "common/decode.h"
#include "drivers/driver.h"
#include "mapi.h"
#include "mapi/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static int failures;
static int checks;
static const char *datadir;
static char tmpdir[256];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------- reading a whole trace */

struct tally {
    int opened;
    int open_err;
    char open_msg[512];
    int linktype;
    uint64_t count, wlen, caplen;
    uint64_t first_ts, last_ts;
    uint64_t n4, n6, nports, portsum; /* from the decoder: IPv4, IPv6, TCP/UDP with L4 */
    uint64_t hash;                    /* FNV-1a over all captured bytes and lengths */
    int end;                          /* last next_batch return value */
    char err[512];                    /* error() at the end */
};

static void hash_bytes(uint64_t *h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 0x100000001b3ull;
    }
}

/* Reads everything from an opened source in batches of max. */
static void drain(const struct capture_driver_ops *ops, struct capture_source *s, int max,
                  struct tally *t)
{
    struct mapi_pkt *pkts = calloc((size_t)max, sizeof *pkts);
    t->linktype = ops->linktype(s);
    t->hash = 0xcbf29ce484222325ull;
    int n;
    while ((n = ops->next_batch(s, pkts, max, 0)) > 0) {
        CHECK(n <= max, "batch of %d > max %d", n, max);
        for (int i = 0; i < n; i++) {
            struct mapi_pkt *p = &pkts[i];
            mapi_decode(p);
            if (t->count == 0)
                t->first_ts = p->ts;
            t->last_ts = p->ts;
            t->count++;
            t->wlen += p->wlen;
            t->caplen += p->caplen;
            if (p->flags & MAPI_PKT_IPV4)
                t->n4++;
            if (p->flags & MAPI_PKT_IPV6)
                t->n6++;
            if ((p->flags & MAPI_PKT_L4) && (p->l4proto == 6 || p->l4proto == 17)) {
                t->nports++;
                t->portsum += p->sport + p->dport;
            }
        }
        /* all pointers of the batch must still be valid here */
        for (int i = 0; i < n; i++) {
            uint32_t len[2] = {pkts[i].caplen, pkts[i].wlen};
            hash_bytes(&t->hash, (const uint8_t *)len, sizeof len);
            hash_bytes(&t->hash, pkts[i].data, pkts[i].caplen);
        }
    }
    t->end = n;
    snprintf(t->err, sizeof t->err, "%s", ops->error(s));
    uint64_t recv = 0, drop = 1;
    CHECK(ops->stats(s, &recv, &drop) == 0 && recv == t->count && drop == 0,
          "stats: recv %llu (count %llu), drop %llu", (unsigned long long)recv,
          (unsigned long long)t->count, (unsigned long long)drop);
    /* after the end, the end again */
    if (n == CAPTURE_EOF)
        CHECK(ops->next_batch(s, pkts, max, 0) == CAPTURE_EOF, "EOF is not sticky");
    free(pkts);
}

static struct tally read_fd(const struct capture_driver_ops *ops, int fd, const char *name,
                            int format, int max)
{
    struct tally t;
    memset(&t, 0, sizeof t);
    struct capture_params params = {.device = name, .fd = fd, .format = format};
    int err = 0;
    struct capture_source *s = ops->open(&params, t.open_msg, sizeof t.open_msg, &err);
    if (!s) {
        t.open_err = err;
        return t;
    }
    t.opened = 1;
    drain(ops, s, max, &t);
    ops->close(s);
    return t;
}

static void path_of(char *out, size_t len, const char *file)
{
    if (file[0] == '/')
        snprintf(out, len, "%s", file);
    else
        snprintf(out, len, "%s/%s", datadir, file);
}

static struct tally read_file(const struct capture_driver_ops *ops, const char *file, int max)
{
    char path[1024];
    path_of(path, sizeof path, file);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        struct tally t;
        memset(&t, 0, sizeof t);
        CHECK(0, "cannot open %s: %s", path, strerror(errno));
        return t;
    }
    return read_fd(ops, fd, file, ops == &capture_erf_file ? MFF_DAG_ERF : MFF_PCAP, max);
}

/* Same through a pipe fed by a child in small writes: the driver cannot mmap it. */
static struct tally read_pipe(const struct capture_driver_ops *ops, const char *file, int max)
{
    char path[1024];
    path_of(path, sizeof path, file);
    int p[2];
    if (pipe(p) < 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int fd = open(path, O_RDONLY);
        char buf[777]; /* odd size: records straddle the writes */
        ssize_t r;
        while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
            if (write(p[1], buf, (size_t)r) != r)
                break;
        _exit(0);
    }
    close(p[1]);
    struct tally t =
        read_fd(ops, p[0], file, ops == &capture_erf_file ? MFF_DAG_ERF : MFF_PCAP, max);
    waitpid(pid, NULL, 0);
    return t;
}

/* ---------------------------------------------------------------- real captures */

struct expect {
    const char *file;
    const struct capture_driver_ops *ops;
    int linktype;
    uint64_t count, wlen, caplen;
    uint64_t n4, n6, nports, portsum;
    const char *err; /* substring of error() at the end, "" for a clean end */
};

/*
 * Oracles (run in tests/data):
 *   count:  tcpdump -r F 2>/dev/null | wc -l  (one line per packet for these files; the same
 *           as tshark -r F -T fields -e frame.number | wc -l)
 *   wlen:   tshark -r F -T fields -e frame.len | awk '{s+=$1} END {print s}'
 *   caplen: tshark -r F -T fields -e frame.cap_len | awk '{s+=$1} END {print s}'
 *   n4/n6:  tshark -r F -Y ip | wc -l ;  tshark -r F -Y ipv6 | wc -l
 *   nports/portsum: tshark -r F -Y '(tcp or udp) and not icmp and not icmpv6' -T fields
 *           -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport
 *           | awk -F'\t' '{n++; s+=$1+$2+$3+$4} END {print n, s}'
 * ERF files were made from the pcap of the same name (see data/SOURCES.md); their oracle is
 * the original pcap, except caplen of RADIUS-RFC4675.erf: libtrace strips the 16-byte SLL
 * header when it converts to ERF type IPv4, so caplen = 646 - 6 * 16 = 550
 * (tshark -r RADIUS-RFC4675.erf -T fields -e frame.cap_len also sums to 550).
 */
static const struct expect EXPECTED[] = {
    /* Ethernet with 802.1ad tags, ARP and DHCP; pcap, little-endian, microseconds */
    {"QinQpacket.pcap", &capture_pcap_file, 1, 249, 74256, 74256, 144, 0, 144, 19440, ""},
    /* Linux cooked (SLL), RADIUS over UDP */
    {"RADIUS-RFC4675.pcap", &capture_pcap_file, 113, 6, 646, 646, 6, 0, 6, 288702, ""},
    /* big-endian pcap: PPTP (TCP control + GRE) */
    {"pptp.pcap", &capture_pcap_file, 1, 23, 2072, 2072, 23, 0, 22, 104456, ""},
    /* DLT_PPP with MPLS label stacks; 9 ICMP errors whose quoted UDP must not count */
    {"mpls-traceroute.pcap", &capture_pcap_file, 9, 18, 1644, 1644, 18, 0, 9, 681786, ""},
    /* pcapng with nanosecond timestamps (libpcap path): IPv6, QUIC over UDP, ICMPv6 */
    {"doq.pcapng", &capture_pcap_file, 1, 20, 5958, 5958, 0, 20, 14, 680540, ""},
    /* the same packets as a nanosecond classic pcap */
    {"doq-nsec.pcap", &capture_pcap_file, 1, 20, 5958, 5958, 0, 20, 14, 680540, ""},
    /* pcapng with only a section header: a valid empty trace */
    {"empty.pcapng", &capture_pcap_file, 1, 0, 0, 0, 0, 0, 0, 0, ""},
    /* 60 IPv6 extension headers (hop-by-hop, routing, fragment, destination) then UDP */
    {"ipv6_ext_headers.pcap", &capture_pcap_file, 1, 1, 872, 872, 0, 1, 1, 66666, ""},
    /* PPPoE session frames carrying LCP: no IP */
    {"pppoes.pcap", &capture_pcap_file, 1, 2, 68, 68, 0, 0, 0, 0, ""},
    /*
     * Fuzzer file: nanosecond pcap of version 2.0 (caplen and wlen stored the other way
     * round), the second record cut after 2 bytes. tcpdump reads 1 packet, then "truncated
     * dump file"; capinfos: 1 packet, data size 524501 bytes; the caplen is 197.
     */
    {"fuzz-2021-10-13.pcap", &capture_pcap_file, 0, 1, 524501, 197, 0, 0, 0, 0,
     "truncated at record 2 (offset 237)"},
    /* ERF made with traceconvert from the pcaps above */
    {"QinQpacket.erf", &capture_erf_file, 1, 249, 74256, 74256, 144, 0, 144, 19440, ""},
    {"RADIUS-RFC4675.erf", &capture_erf_file, 12, 6, 646, 550, 6, 0, 6, 288702, ""},
    /* gzip-compressed: traceconvert's own output (it always gzips), gzip -k of pcap and
     * pcapng; the oracle is that of the uncompressed file (tshark reads .gz the same) */
    {"QinQpacket.erf.gz", &capture_erf_file, 1, 249, 74256, 74256, 144, 0, 144, 19440, ""},
    {"RADIUS-RFC4675.erf.gz", &capture_erf_file, 12, 6, 646, 550, 6, 0, 6, 288702, ""},
    {"QinQpacket.pcap.gz", &capture_pcap_file, 1, 249, 74256, 74256, 144, 0, 144, 19440, ""},
    {"doq.pcapng.gz", &capture_pcap_file, 1, 20, 5958, 5958, 0, 20, 14, 680540, ""},
};

static int same_tally(const struct tally *a, const struct tally *b)
{
    return a->opened == b->opened && a->count == b->count && a->wlen == b->wlen &&
           a->caplen == b->caplen && a->hash == b->hash && a->first_ts == b->first_ts &&
           a->last_ts == b->last_ts && a->n4 == b->n4 && a->n6 == b->n6 &&
           a->portsum == b->portsum && a->end == b->end && a->linktype == b->linktype &&
           !strcmp(a->err, b->err);
}

static void test_real_captures(void)
{
    for (size_t i = 0; i < sizeof EXPECTED / sizeof EXPECTED[0]; i++) {
        const struct expect *e = &EXPECTED[i];
        struct tally t = read_file(e->ops, e->file, 64);
        CHECK(t.opened, "%s: open failed (%d): %s", e->file, t.open_err, t.open_msg);
        if (!t.opened)
            continue;
        CHECK(t.linktype == e->linktype, "%s: linktype %d, want %d", e->file, t.linktype,
              e->linktype);
        CHECK(t.count == e->count, "%s: %llu packets, want %llu", e->file,
              (unsigned long long)t.count, (unsigned long long)e->count);
        CHECK(t.wlen == e->wlen, "%s: wlen sum %llu, want %llu", e->file,
              (unsigned long long)t.wlen, (unsigned long long)e->wlen);
        CHECK(t.caplen == e->caplen, "%s: caplen sum %llu, want %llu", e->file,
              (unsigned long long)t.caplen, (unsigned long long)e->caplen);
        CHECK(t.n4 == e->n4 && t.n6 == e->n6, "%s: IPv4/IPv6 %llu/%llu, want %llu/%llu", e->file,
              (unsigned long long)t.n4, (unsigned long long)t.n6, (unsigned long long)e->n4,
              (unsigned long long)e->n6);
        CHECK(t.nports == e->nports && t.portsum == e->portsum,
              "%s: %llu TCP/UDP packets, port sum %llu, want %llu, %llu", e->file,
              (unsigned long long)t.nports, (unsigned long long)t.portsum,
              (unsigned long long)e->nports, (unsigned long long)e->portsum);
        CHECK(t.end == CAPTURE_EOF, "%s: ended with %d", e->file, t.end);
        if (e->err[0])
            CHECK(strstr(t.err, e->err) != NULL, "%s: error() \"%s\", want \"%s\"", e->file, t.err,
                  e->err);
        else
            CHECK(t.err[0] == '\0', "%s: unexpected error() \"%s\"", e->file, t.err);

        struct tally one = read_file(e->ops, e->file, 1);
        CHECK(same_tally(&t, &one), "%s: batches of 1 differ from batches of 64", e->file);
        struct tally piped = read_pipe(e->ops, e->file, 64);
        CHECK(same_tally(&t, &piped), "%s: reading through a pipe differs (%llu packets, %s)",
              e->file, (unsigned long long)piped.count, piped.opened ? piped.err : piped.open_msg);
    }
}

/* Timestamps: nanoseconds kept, pcapng and pcap agree, ERF 32.32 within a microsecond. */
static void test_timestamps(void)
{
    /* tshark -r doq-nsec.pcap -T fields -e frame.time_epoch -c 1: 1606056093.199591961;
     * last packet 1606056096.363710747 */
    struct tally ns = read_file(&capture_pcap_file, "doq-nsec.pcap", 64);
    CHECK(ns.first_ts == mapi_ts_from_nsec(1606056093u, 199591961u), "nsec pcap: first ts");
    CHECK(ns.last_ts == mapi_ts_from_nsec(1606056096u, 363710747u), "nsec pcap: last ts");
    struct tally ng = read_file(&capture_pcap_file, "doq.pcapng", 64);
    CHECK(ng.first_ts == ns.first_ts && ng.last_ts == ns.last_ts && ng.hash == ns.hash,
          "pcapng and nanosecond pcap of the same packets differ");

    /* big-endian pcap: tshark -r pptp.pcap -T fields -e frame.time_epoch -c 1 */
    struct tally be = read_file(&capture_pcap_file, "pptp.pcap", 64);
    CHECK(be.first_ts == mapi_ts_from_usec(954147395u, 148077u), "big-endian pcap: first ts");

    struct tally pc = read_file(&capture_pcap_file, "QinQpacket.pcap", 64);
    struct tally er = read_file(&capture_erf_file, "QinQpacket.erf", 64);
    uint64_t d1 = pc.first_ts > er.first_ts ? pc.first_ts - er.first_ts : er.first_ts - pc.first_ts;
    uint64_t d2 = pc.last_ts > er.last_ts ? pc.last_ts - er.last_ts : er.last_ts - pc.last_ts;
    CHECK(d1 < 4295 && d2 < 4295, "ERF and pcap timestamps differ by more than 1 us");
    CHECK(pc.hash == er.hash, "ERF and pcap of the same packets differ in bytes or lengths");
}

/* ---------------------------------------------------------------- damaged inputs */

static void *slurp(const char *file, size_t *len)
{
    char path[1024];
    path_of(path, sizeof path, file);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("cannot read %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        printf("short read of %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Writes len bytes to a new file in the temporary directory; returns its path (static). */
static const char *spit(const char *name, const void *data, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static void expect_open_fails(const struct capture_driver_ops *ops, const char *path,
                              const char *what, const char *msg)
{
    struct tally t = read_file(ops, path, 64);
    CHECK(!t.opened, "%s: open succeeded", what);
    CHECK(t.open_err == MAPID_BAD_TRACE, "%s: error %d, want %d", what, t.open_err,
          MAPID_BAD_TRACE);
    CHECK(strstr(t.open_msg, msg) != NULL, "%s: message \"%s\", want \"%s\"", what, t.open_msg,
          msg);
}

static void test_bad_files(void)
{
    /* libpcap's malformed-header files */
    expect_open_fails(&capture_pcap_file, "pcap-invalid-version-2.pcap", "pcap version 2.5",
                      "version 2.5");
    expect_open_fails(&capture_pcap_file, "pcapng-invalid-vers-1.pcapng", "pcapng version 0.1",
                      "pcapng");
    expect_open_fails(&capture_pcap_file, "linktype-reserved-field-not-zero.pcap",
                      "link-type reserved bits", "reserved");
    /* wrong driver for the format */
    expect_open_fails(&capture_pcap_file, "QinQpacket.erf", "ERF as pcap", "not a pcap");
    expect_open_fails(&capture_erf_file, "QinQpacket.pcap", "pcap as ERF", "not ERF");

    expect_open_fails(&capture_pcap_file, spit("empty.pcap", "", 0), "empty file", "empty");
    expect_open_fails(&capture_erf_file, spit("empty.erf", "", 0), "empty ERF file", "empty");
    expect_open_fails(&capture_pcap_file, spit("garbage.pcap", "hello, world\n", 13), "text file",
                      "not a pcap");
    expect_open_fails(&capture_erf_file, spit("garbage.erf", "hello, world, this is text\n", 27),
                      "text as ERF", "not an ERF");

    size_t len;
    uint8_t *q = slurp("QinQpacket.pcap", &len);
    expect_open_fails(&capture_pcap_file, spit("short-header.pcap", q, 20), "20-byte header",
                      "truncated pcap file header");

    /* a header alone is a valid empty trace */
    struct tally t = read_file(&capture_pcap_file, spit("header-only.pcap", q, 24), 64);
    CHECK(t.opened && t.count == 0 && t.end == CAPTURE_EOF && t.err[0] == '\0',
          "header-only pcap: opened %d count %llu end %d err \"%s\"", t.opened,
          (unsigned long long)t.count, t.end, t.err);

    /*
     * Cut at 40000 bytes: head -c 40000 QinQpacket.pcap | tcpdump -r - | wc -l gives 128 (then
     * "tried to read 344 captured bytes, only got 280"); tshark sums frame.len to 37632.
     * The 129th record starts at 40000 - 280 - 16 = 39704.
     */
    t = read_file(&capture_pcap_file, spit("cut.pcap", q, 40000), 64);
    CHECK(t.count == 128 && t.wlen == 37632, "cut pcap: %llu packets, %llu bytes",
          (unsigned long long)t.count, (unsigned long long)t.wlen);
    CHECK(strstr(t.err, "truncated at record 129 (offset 39704)") != NULL, "cut pcap: \"%s\"",
          t.err);
    struct tally tp = read_pipe(&capture_pcap_file, spit("cut.pcap", q, 40000), 64);
    CHECK(same_tally(&t, &tp), "cut pcap through a pipe: %llu packets, \"%s\"",
          (unsigned long long)tp.count, tp.err);

    /* Record 3 starts at 24 + (16 + 64) + (16 + 344) = 464; a caplen of 1 MiB is corrupt. */
    uint8_t *c = malloc(len);
    memcpy(c, q, len);
    uint32_t big = 1u << 20;
    memcpy(c + 464 + 8, &big, 4);
    t = read_file(&capture_pcap_file, spit("corrupt.pcap", c, len), 64);
    CHECK(t.count == 2 && t.wlen == 64 + 344 && t.end == CAPTURE_EOF,
          "corrupt pcap: %llu packets, %llu bytes", (unsigned long long)t.count,
          (unsigned long long)t.wlen);
    CHECK(strstr(t.err, "corrupt at record 3 (offset 464)") != NULL, "corrupt pcap: \"%s\"", t.err);
    /* caplen > wlen is kept as is: record 1 claims wlen 10 */
    memcpy(c, q, len);
    uint32_t ten = 10;
    memcpy(c + 24 + 12, &ten, 4);
    t = read_file(&capture_pcap_file, spit("caplen-gt-wlen.pcap", c, len), 64);
    CHECK(t.count == 249 && t.caplen == 74256 && t.wlen == 74256 - 64 + 10,
          "caplen > wlen: %llu packets, caplen %llu, wlen %llu", (unsigned long long)t.count,
          (unsigned long long)t.caplen, (unsigned long long)t.wlen);
    free(c);
    free(q);

    /* pcapng cut at 26000: head -c 26000 doq.pcapng | tcpdump -r - | wc -l gives 11, tshark
     * sums frame.len to 4395; libpcap reports "truncated pcapng dump file" */
    uint8_t *ng = slurp("doq.pcapng", &len);
    t = read_file(&capture_pcap_file, spit("cut.pcapng", ng, 26000), 64);
    CHECK(t.count == 11 && t.wlen == 4395 && t.end == CAPTURE_EOF, "cut pcapng: %llu, %llu",
          (unsigned long long)t.count, (unsigned long long)t.wlen);
    CHECK(strstr(t.err, "truncated") != NULL && strstr(t.err, "record 12") != NULL,
          "cut pcapng: \"%s\"", t.err);
    tp = read_pipe(&capture_pcap_file, spit("cut.pcapng", ng, 26000), 64);
    CHECK(tp.count == 11 && tp.wlen == 4395, "cut pcapng through a pipe: %llu",
          (unsigned long long)tp.count);
    free(ng);
}

static void put_be16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void test_bad_erf(void)
{
    size_t len;
    uint8_t *e = slurp("QinQpacket.erf", &len);

    /* head -c 40000 QinQpacket.erf: tracestats and tshark count 128 packets; tshark sums
     * frame.len (which includes the FCS) to 38144 = 37632 + 4 * 128 */
    struct tally t = read_file(&capture_erf_file, spit("cut.erf", e, 40000), 64);
    CHECK(t.count == 128 && t.wlen == 37632, "cut ERF: %llu packets, %llu bytes",
          (unsigned long long)t.count, (unsigned long long)t.wlen);
    CHECK(strstr(t.err, "truncated at record 129") != NULL, "cut ERF: \"%s\"", t.err);
    struct tally tp = read_pipe(&capture_erf_file, spit("cut.erf", e, 40000), 64);
    CHECK(same_tally(&t, &tp), "cut ERF through a pipe: %llu, \"%s\"", (unsigned long long)tp.count,
          tp.err);

    /* Records are 16 + 2 + caplen: 82 and 362 bytes; record 3 at 444 gets rlen 8. */
    uint8_t *c = malloc(len + 64);
    memcpy(c, e, len);
    put_be16(c + 444 + 10, 8);
    t = read_file(&capture_erf_file, spit("corrupt.erf", c, len), 64);
    CHECK(t.count == 2 && t.wlen == 64 + 344, "corrupt ERF: %llu packets",
          (unsigned long long)t.count);
    CHECK(strstr(t.err, "corrupt at record 3 (offset 444)") != NULL, "corrupt ERF: \"%s\"", t.err);

    /*
     * Record 1 again with an extension header (type | 0x80, 8 bytes after the header, rlen
     * + 8), followed by a padding record (type 48) and record 2: two packets, the same
     * bytes and lengths as the first two of the original.
     */
    size_t n = 0;
    memcpy(c, e, 16);
    c[8] |= 0x80;
    put_be16(c + 10, 82 + 8);
    n = 16;
    memset(c + n, 0, 8);
    c[n] = 0x05; /* an extension header type, no more follow */
    n += 8;
    memcpy(c + n, e + 16, 82 - 16);
    n += 82 - 16;
    memset(c + n, 0, 24); /* padding record of 24 bytes */
    c[n + 8] = 48;
    put_be16(c + n + 10, 24);
    n += 24;
    memcpy(c + n, e + 82, 362);
    n += 362;
    t = read_file(&capture_erf_file, spit("ext.erf", c, n), 64);
    struct tally ref = read_file(&capture_erf_file, spit("two.erf", e, 82 + 362), 64);
    CHECK(t.count == 2 && ref.count == 2 && t.hash == ref.hash && t.err[0] == '\0',
          "ERF with an extension header and padding: %llu packets, \"%s\"",
          (unsigned long long)t.count, t.err);
    /* an extension header that claims a successor past rlen */
    c[16] = 0x85;
    put_be16(c + 10, 16 + 8);
    t = read_file(&capture_erf_file, spit("ext-bad.erf", c, n), 64);
    CHECK(t.count == 0 && strstr(t.err, "corrupt at record 1") != NULL, "bad extension: \"%s\"",
          t.err);
    free(c);
    free(e);
}

/* ---------------------------------------------------------------- gzip-compressed traces */

/* Writes the parts as consecutive gzip members (gzopen "ab" starts a new member). */
static const char *spit_gz(const char *name, const uint8_t *data, const size_t *cuts, int nparts)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
    size_t off = 0;
    for (int i = 0; i < nparts; i++) {
        gzFile g = gzopen(path, "ab");
        size_t n = cuts[i] - off;
        if (!g || (n > 0 && gzwrite(g, data + off, (unsigned)n) != (int)n) || gzclose(g) != Z_OK) {
            printf("cannot write %s\n", path);
            exit(2);
        }
        off = cuts[i];
    }
    return path;
}

/* The first `count` packets of a trace, tallied like a trace that ends there. */
static struct tally read_prefix(const struct capture_driver_ops *ops, const char *file,
                                uint64_t count)
{
    char path[1024];
    path_of(path, sizeof path, file);
    struct tally t;
    memset(&t, 0, sizeof t);
    t.hash = 0xcbf29ce484222325ull;
    struct capture_params params = {.device = file,
                                    .fd = open(path, O_RDONLY),
                                    .format = ops == &capture_erf_file ? MFF_DAG_ERF : MFF_PCAP};
    int err;
    struct capture_source *s = ops->open(&params, t.open_msg, sizeof t.open_msg, &err);
    if (!s)
        return t;
    t.opened = 1;
    struct mapi_pkt p;
    while (t.count < count && ops->next_batch(s, &p, 1, 0) == 1) {
        uint32_t len[2] = {p.caplen, p.wlen};
        hash_bytes(&t.hash, (const uint8_t *)len, sizeof len);
        hash_bytes(&t.hash, p.data, p.caplen);
        t.count++;
        t.wlen += p.wlen;
    }
    ops->close(s);
    return t;
}

/*
 * A gzip file cut at `cut` bytes (through a file and a pipe): the packets whose records were
 * inflated completely, the same bytes as the first ones of the uncompressed trace, then
 * CAPTURE_EOF with both reasons in error().
 */
static void check_cut_gz(const struct capture_driver_ops *ops, const char *gz, const char *plain,
                         size_t cut, uint64_t count, uint64_t wlen, const char *msg)
{
    size_t len;
    uint8_t *z = slurp(gz, &len);
    const char *path = spit("cut.gz", z, cut);
    struct tally t = read_file(ops, path, 64);
    CHECK(t.opened && t.count == count && t.wlen == wlen && t.end == CAPTURE_EOF,
          "%s cut at %zu: opened %d, %llu packets, %llu bytes, end %d (%s)", gz, cut, t.opened,
          (unsigned long long)t.count, (unsigned long long)t.wlen, t.end, t.open_msg);
    CHECK(strstr(t.err, msg) != NULL && strstr(t.err, "the gzip stream is truncated") != NULL,
          "%s cut at %zu: error() \"%s\", want \"%s\" and the gzip reason", gz, cut, t.err, msg);
    struct tally ref = read_prefix(ops, plain, count);
    CHECK(ref.count == count && ref.hash == t.hash,
          "%s cut at %zu: the packets differ from the first %llu of %s", gz, cut,
          (unsigned long long)count, plain);
    struct tally tp = read_pipe(ops, path, 64);
    CHECK(same_tally(&t, &tp), "%s cut at %zu through a pipe: %llu packets, \"%s\"", gz, cut,
          (unsigned long long)tp.count, tp.err);
    free(z);
}

static void test_gzip(void)
{
    /* compressed and uncompressed give the same packets, bytes, timestamps and end */
    static const char *pairs[][2] = {{"QinQpacket.erf.gz", "QinQpacket.erf"},
                                     {"RADIUS-RFC4675.erf.gz", "RADIUS-RFC4675.erf"},
                                     {"QinQpacket.pcap.gz", "QinQpacket.pcap"},
                                     {"doq.pcapng.gz", "doq.pcapng"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const struct capture_driver_ops *ops =
            strstr(pairs[i][0], ".erf") ? &capture_erf_file : &capture_pcap_file;
        struct tally z = read_file(ops, pairs[i][0], 64), p = read_file(ops, pairs[i][1], 64);
        CHECK(z.opened && same_tally(&z, &p), "%s differs from %s (%llu packets, \"%s\")",
              pairs[i][0], pairs[i][1], (unsigned long long)z.count, z.opened ? z.err : z.open_msg);
    }
    /* the wrong driver still says what the inflated trace is */
    expect_open_fails(&capture_pcap_file, "QinQpacket.erf.gz", "ERF.gz as pcap", "not a pcap");
    expect_open_fails(&capture_erf_file, "QinQpacket.pcap.gz", "pcap.gz as ERF", "not ERF");

    /*
     * Cut in the middle. Oracles: head -c CUT F.gz | zcat > c (zcat: "unexpected end of
     * file"; Python's zlib inflates the same number of bytes), then
     *   QinQpacket.erf.gz at 2823 (36779 bytes): tshark -r c and tracestats erf:c count 118
     *     packets; tshark sums frame.len to 35064 = 34592 + 4 * 118; record 119 starts at
     *     36716 (the sum of the first 118 rlen).
     *   QinQpacket.pcap.gz at 2254 (35705 bytes): tcpdump -r c | wc -l gives 115 ("truncated
     *     dump file; tried to read 16 header bytes, only got 1"), tshark sums frame.len to 33840.
     *   doq.pcapng.gz at 11500 (25709 bytes): tcpdump 9 packets ("truncated pcapng dump
     *     file"), tshark sums frame.len to 4053.
     */
    check_cut_gz(&capture_erf_file, "QinQpacket.erf.gz", "QinQpacket.erf", 2823, 118, 34592,
                 "truncated at record 119 (offset 36716)");
    check_cut_gz(&capture_pcap_file, "QinQpacket.pcap.gz", "QinQpacket.pcap", 2254, 115, 33840,
                 "truncated at record 116 (offset 35704)");
    check_cut_gz(&capture_pcap_file, "doq.pcapng.gz", "doq.pcapng", 11500, 9, 4053,
                 "truncated or corrupt at record 10");

    size_t len;
    uint8_t *q = slurp("QinQpacket.pcap", &len);
    struct tally ref = read_file(&capture_pcap_file, "QinQpacket.pcap", 64);

    /* concatenated members are one trace (cuts inside a record header and a packet) */
    size_t cuts[3] = {30, 40000, len};
    struct tally t = read_file(&capture_pcap_file, spit_gz("members.pcap.gz", q, cuts, 3), 64);
    CHECK(same_tally(&t, &ref), "3 gzip members: %llu packets, \"%s\"", (unsigned long long)t.count,
          t.opened ? t.err : t.open_msg);
    struct tally tp = read_pipe(&capture_pcap_file, spit_gz("members.pcap.gz", q, cuts, 3), 64);
    CHECK(same_tally(&tp, &ref), "3 gzip members through a pipe: %llu packets, \"%s\"",
          (unsigned long long)tp.count, tp.opened ? tp.err : tp.open_msg);

    uint8_t *z = slurp("QinQpacket.pcap.gz", &len);
    uint8_t *c = malloc(len + 100);
    /* trailing zeros after the member are ignored, as gzip -d does */
    memcpy(c, z, len);
    memset(c + len, 0, 100);
    t = read_file(&capture_pcap_file, spit("trailing.pcap.gz", c, len + 100), 64);
    CHECK(same_tally(&t, &ref), "gzip with trailing zeros: %llu packets, \"%s\"",
          (unsigned long long)t.count, t.err);
    /* a wrong CRC-32 in the trailer: every packet, then the error (gzip -t: "invalid
     * compressed data--crc error") */
    c[len - 8] ^= 0xff;
    t = read_file(&capture_pcap_file, spit("crc.pcap.gz", c, len), 64);
    CHECK(t.count == 249 && t.hash == ref.hash && t.end == CAPTURE_EOF &&
              strstr(t.err, "truncated at record 250") != NULL &&
              strstr(t.err, "corrupt gzip data (incorrect data check)") != NULL,
          "gzip with a bad CRC: %llu packets, \"%s\"", (unsigned long long)t.count, t.err);
    /* corrupt deflate data in the middle: whatever comes out, the trace ends with a reason
     * and nothing crashes (ASan) */
    for (size_t off = 100; off + 16 < len; off += 397) {
        memcpy(c, z, len);
        for (int k = 0; k < 16; k++)
            c[off + (size_t)k] ^= (uint8_t)(0x5a + 13 * k);
        t = read_file(&capture_pcap_file, spit("corrupt.pcap.gz", c, len), 64);
        if (!t.opened) /* nothing usable came out before the damage */
            CHECK(t.open_err == MAPID_BAD_TRACE && strstr(t.open_msg, "gzip") != NULL,
                  "gzip corrupt at %zu: open error %d \"%s\"", off, t.open_err, t.open_msg);
        else
            CHECK(t.end == CAPTURE_EOF && t.err[0] != '\0' && t.count <= 249,
                  "gzip corrupt at %zu: end %d, %llu packets, \"%s\"", off, t.end,
                  (unsigned long long)t.count, t.err);
    }
    /* the gzip header alone; gzip of an empty file */
    expect_open_fails(&capture_pcap_file, spit("header.pcap.gz", z, 10), "gzip header only",
                      "the gzip stream is truncated");
    size_t none[1] = {0};
    expect_open_fails(&capture_erf_file, spit_gz("empty.erf.gz", q, none, 1), "gzip of nothing",
                      "empty");
    free(c);
    free(z);
    free(q);
}

/* ---------------------------------------------------------------- truncated while read */

/* Bytes of the complete records within the first len bytes of a pcap or ERF trace. */
static size_t complete_records(const uint8_t *b, size_t len, int erf, uint64_t *count)
{
    size_t pos = erf ? 0 : 24;
    *count = 0;
    for (;;) {
        if (pos + 16 > len)
            break;
        uint32_t caplen;
        memcpy(&caplen, b + pos + 8, 4); /* pcap, little-endian here */
        size_t rec = erf ? ((size_t)b[pos + 10] << 8 | b[pos + 11]) : 16 + (size_t)caplen;
        if (pos + rec > len)
            break;
        pos += rec;
        (*count)++;
    }
    return pos;
}

/*
 * A client truncates its trace to half while mapid reads it: the driver delivers the complete
 * records of the first half, says the trace is truncated, and does not crash (with mmap this
 * was SIGBUS). Runs in a child, so that a crash is reported as a failure.
 */
static void truncate_while_reading(const struct capture_driver_ops *ops, const char *file,
                                   const char *name, int copies)
{
    size_t len;
    uint8_t *one = slurp(file, &len);
    int erf = ops == &capture_erf_file;
    size_t hdr = erf ? 0 : 24, body = len - hdr;
    size_t big = hdr + body * (size_t)copies;
    uint8_t *b = malloc(big);
    memcpy(b, one, hdr);
    for (int i = 0; i < copies; i++)
        memcpy(b + hdr + body * (size_t)i, one + hdr, body);
    const char *path = spit(name, b, big);
    /* at a page boundary: a reader that mmap'ed the file faults on the next page, instead of
     * finding zeros in the rest of the last page */
    size_t half = (big / 2) & ~(size_t)4095;
    uint64_t want;
    int cut_in_record = complete_records(b, half, erf, &want) != half;
    free(b);
    free(one);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct capture_params params = {
            .device = name, .fd = open(path, O_RDONLY), .format = erf ? MFF_DAG_ERF : MFF_PCAP};
        char msg[512];
        int err;
        struct capture_source *s = ops->open(&params, msg, sizeof msg, &err);
        if (!s) {
            printf("FAIL %s: open: %s\n", name, msg);
            fflush(stdout);
            _exit(1);
        }
        struct mapi_pkt pkts[64];
        uint64_t count = 0, h = 0xcbf29ce484222325ull;
        int n = ops->next_batch(s, pkts, 64, 0);
        count += n > 0 ? (uint64_t)n : 0;
        int w = open(path, O_WRONLY);
        if (n != 64 || w < 0 || ftruncate(w, (off_t)half) < 0) {
            printf("FAIL %s: first batch %d, or cannot truncate: %s\n", name, n, strerror(errno));
            fflush(stdout);
            _exit(1);
        }
        close(w);
        while ((n = ops->next_batch(s, pkts, 64, 0)) > 0) {
            count += (uint64_t)n;
            for (int i = 0; i < n; i++) /* touch every byte */
                hash_bytes(&h, pkts[i].data, pkts[i].caplen);
        }
        const char *e = ops->error(s);
        int ok = n == CAPTURE_EOF && count == want &&
                 (cut_in_record ? strstr(e, "truncated") != NULL : e[0] == '\0');
        if (!ok)
            printf("FAIL %s: end %d, %llu packets (want %llu), error() \"%s\"\n", name, n,
                   (unsigned long long)count, (unsigned long long)want, e);
        ops->close(s);
        fflush(stdout); /* _exit does not */
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s (%zu bytes) truncated to %zu while read: %s %d", name, big, half,
          WIFSIGNALED(status) ? "killed by signal" : "exit status",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void test_truncated_while_reading(void)
{
    /* about 16 MiB each: four times the drivers' read buffer */
    truncate_while_reading(&capture_pcap_file, "QinQpacket.pcap", "big.pcap", 215);
    truncate_while_reading(&capture_erf_file, "QinQpacket.erf", "big.erf", 214);
}

/* ---------------------------------------------------------------- main */

/* Appends a classic pcap record (ts_sec = n, caplen bytes of n) to b at *len. */
static void put_rec(uint8_t *b, size_t *len, uint32_t n, uint32_t caplen, uint32_t wlen)
{
    uint32_t h[4] = {n, 0, caplen, wlen};
    memcpy(b + *len, h, sizeof h);
    memset(b + *len + sizeof h, (int)n, caplen);
    *len += sizeof h + caplen;
}

/*
 * The bounds of a record's caplen (issue 10, item 4), as libpcap has them: above 262144 a
 * record is corrupt whatever the file's snaplen says (a file's header used to raise the limit
 * up to 128 MiB, and the read buffer grew to fit); above a smaller snaplen it is cut to
 * snaplen (tcpdump -r F -w - writes caplen 100 for a 200-byte record of a snaplen-100 file).
 */
static void test_caplen_bounds(void)
{
    size_t cap = 24 + 3 * 16 + 60 + 300000 + 262144;
    uint8_t *b = calloc(1, cap);
    uint32_t fh[6] = {0xa1b2c3d4u, 2u | (4u << 16), 0, 0, 0xffffffffu, 1};
    memcpy(b, fh, sizeof fh);
    size_t len = 24;
    put_rec(b, &len, 1, 60, 60);
    put_rec(b, &len, 2, 300000, 300000);
    struct tally t = read_file(&capture_pcap_file, spit("huge-snaplen.pcap", b, len), 64);
    CHECK(t.count == 1 && t.end == CAPTURE_EOF &&
              strstr(t.err, "corrupt at record 2 (offset 100): caplen 300000 exceeds the limit "
                            "262144") != NULL,
          "caplen 300000 with snaplen 0xffffffff: %llu packets, \"%s\"",
          (unsigned long long)t.count, t.err);
    struct tally tp = read_pipe(&capture_pcap_file, spit("huge-snaplen.pcap", b, len), 64);
    CHECK(same_tally(&t, &tp), "the same through a pipe: %llu packets, \"%s\"",
          (unsigned long long)tp.count, tp.err);

    /* exactly the maximum is a valid record */
    len = 24;
    put_rec(b, &len, 1, 262144, 262144);
    put_rec(b, &len, 2, 60, 60);
    t = read_file(&capture_pcap_file, spit("max-caplen.pcap", b, len), 64);
    CHECK(t.count == 2 && t.caplen == 262144 + 60 && t.err[0] == '\0',
          "caplen 262144: %llu packets, caplen %llu, \"%s\"", (unsigned long long)t.count,
          (unsigned long long)t.caplen, t.err);

    /* snaplen 100: a 200-byte record is cut to 100 bytes, the next one read where it is */
    fh[4] = 100;
    memcpy(b, fh, sizeof fh);
    len = 24;
    put_rec(b, &len, 1, 200, 200);
    put_rec(b, &len, 2, 60, 60);
    t = read_file(&capture_pcap_file, spit("snaplen-cut.pcap", b, len), 64);
    CHECK(t.count == 2 && t.caplen == 160 && t.wlen == 260 && t.err[0] == '\0',
          "snaplen 100: %llu packets, caplen %llu, wlen %llu, \"%s\"", (unsigned long long)t.count,
          (unsigned long long)t.caplen, (unsigned long long)t.wlen, t.err);
    free(b);
}

static void cleanup_tmp(void)
{
    static const char *names[] = {"empty.pcap",
                                  "empty.erf",
                                  "garbage.pcap",
                                  "garbage.erf",
                                  "short-header.pcap",
                                  "header-only.pcap",
                                  "cut.pcap",
                                  "corrupt.pcap",
                                  "caplen-gt-wlen.pcap",
                                  "cut.pcapng",
                                  "cut.erf",
                                  "corrupt.erf",
                                  "ext.erf",
                                  "two.erf",
                                  "ext-bad.erf",
                                  "cut.gz",
                                  "members.pcap.gz",
                                  "trailing.pcap.gz",
                                  "crc.pcap.gz",
                                  "corrupt.pcap.gz",
                                  "header.pcap.gz",
                                  "empty.erf.gz",
                                  "big.pcap",
                                  "big.erf",
                                  "huge-snaplen.pcap",
                                  "max-caplen.pcap",
                                  "snaplen-cut.pcap"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    datadir = argv[1];
    signal(SIGPIPE, SIG_IGN);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_drivers.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_real_captures();
    test_timestamps();
    test_bad_files();
    test_caplen_bounds();
    test_bad_erf();
    test_gzip();
    test_truncated_while_reading();
    cleanup_tmp();
    printf("test_drivers: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
