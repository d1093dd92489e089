/*
 * examples/worm_detect.c - "Worm Detection", section 6.3 of the MAPI tutorial: print every
 * packet that matches the Snort signature of the Slapper worm (a BPF filter plus a content
 * search), with print_IP_pkt() from appendix G of the tutorial.
 *
 * Usage: worm_detect [DEVICE | TRACE] [FILTER [PATTERN [DEPTH]]]
 *   DEVICE   a device of mapi.conf (default eth0): wait for matching packets forever.
 *   TRACE    an existing pcap/pcapng file (.erf: ERF): print the matches of the whole trace
 *            and their number.
 *   FILTER   BPF filter (default "udp and src port 2002 and dst net 139.91.23 and dst port 80")
 *   PATTERN  STR_SEARCH pattern, |hex| bytes allowed (default "|00 00|E|00 00|E|00 00|@|00|")
 *   DEPTH    bytes from the start of the frame to search, 0 = all (default 100)
 * mapid must be running; libmapi finds it through the file named by $MAPI_CONF.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <net/ethernet.h>
#include <netinet/ip.h>
/* inet_ntoa() */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <mapi.h>

static void terminate(int sig);
void print_IP_pkt(struct mapipkt *pkt);

int fd;

static int is_trace_file(const char *arg)
{
    struct stat st;
    return stat(arg, &st) == 0 && S_ISREG(st.st_mode);
}

static int trace_format(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && strcmp(path + n - 4, ".erf") == 0) ? MFF_DAG_ERF : MFF_PCAP;
}

static void print_mapi_error(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: MAPI error %d: %s\n", what, err, msg);
}

int main(int argc, char *argv[])
{
    int fid;
    struct mapipkt *pkt;
    const char *dev = argc > 1 ? argv[1] : "eth0";
    const char *filter =
        argc > 2 ? argv[2] : "udp and src port 2002 and dst net 139.91.23 and dst port 80";
    const char *pattern = argc > 3 ? argv[3] : "|00 00|E|00 00|E|00 00|@|00|";
    int depth = argc > 4 ? atoi(argv[4]) : 100;
    int offline = is_trace_file(dev);
    unsigned long long matches = 0;

    signal(SIGINT, terminate);
    signal(SIGQUIT, terminate);
    signal(SIGTERM, terminate);

    /* create a flow using the eth0 interface (or the given device or trace file) */
    if (offline)
        fd = mapi_create_offline_flow(dev, trace_format(dev));
    else
        fd = mapi_create_flow(dev);
    if (fd < 0) {
        printf("Could not create flow\n");
        print_mapi_error(dev);
        exit(EXIT_FAILURE);
    }

    /* the bpf part of the signature */
    if (mapi_apply_function(fd, "BPF_FILTER", filter) < 0) {
        print_mapi_error("BPF_FILTER");
        exit(EXIT_FAILURE);
    }

    /* the content search part of the signature */
    if (mapi_apply_function(fd, "STR_SEARCH", pattern, 0, depth) < 0) {
        print_mapi_error("STR_SEARCH");
        exit(EXIT_FAILURE);
    }

    /* must use TO_BUFFER in order to read full packet records */
    fid = mapi_apply_function(fd, "TO_BUFFER", WAIT);
    if (fid < 0) {
        print_mapi_error("TO_BUFFER");
        exit(EXIT_FAILURE);
    }

    /* connect to the flow */
    if (mapi_connect(fd) < 0) {
        printf("Could not connect to flow %d\n", fd);
        print_mapi_error("mapi_connect");
        exit(EXIT_FAILURE);
    }

    while (1) { /* forever, wait for matching packets */

        pkt = mapi_get_next_pkt(fd, fid);
        if (pkt == NULL) /* the end of a trace, or an error */
            break;
        matches++;
        printf("\n%s\n", argc > 2 ? "Signature match!" : "Slapper worm packet!");
        print_IP_pkt(pkt);
    }

    if (!offline) {
        print_mapi_error("mapi_get_next_pkt");
        mapi_close_flow(fd);
        return EXIT_FAILURE;
    }
    printf("\n%llu matching packets\n", matches);
    mapi_close_flow(fd);
    return 0;
}

static void terminate(int sig)
{
    (void)sig;
    mapi_close_flow(fd);
    exit(EXIT_SUCCESS);
}

/*
 * print_IP_pkt(), appendix G of the tutorial. The IP header is copied out of the packet
 * record first: in the record it need not be 4-byte aligned.
 */
void print_IP_pkt(struct mapipkt *rec)
{

    int i;
    unsigned char *p;
    struct ether_header *eth;
    struct iphdr iph;

    p = &(rec->pkt);
    eth = (struct ether_header *)p;

    /* print MAC addresses */
    for (i = 0; i < ETH_ALEN; i++) {
        printf("%.2X", eth->ether_shost[i]);
        if (i != 5)
            printf(":");
    }
    printf(" -> ");
    for (i = 0; i < ETH_ALEN; i++) {
        printf("%.2X", eth->ether_dhost[i]);
        if (i != 5)
            printf(":");
    }

    /* make sure that this is indeed an IP packet */
    if (rec->caplen < ETH_HLEN + sizeof iph || ntohs(eth->ether_type) != ETHERTYPE_IP) {
        printf("\nprint_IP_pkt(): Not an IP packet\n");
        return;
    }

    /* lay the IP header struct over the packet data */
    memcpy(&iph, p + ETH_HLEN, sizeof iph);

    printf("\n%s -> ", inet_ntoa(*(struct in_addr *)&(iph.saddr)));
    printf("%s\n", inet_ntoa(*(struct in_addr *)&(iph.daddr)));
}
