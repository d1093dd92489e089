/*
 * examples/anonymize.c - "Using Anonymization", section 6.5 of the MAPI tutorial: capture TCP
 * packets, anonymise them with anonflib's ANONYMIZE (addresses mapped to sequential integers,
 * IP and TCP options zeroed, payload removed, checksums fixed) and print each one with
 * print_IP_pkt() from appendix G of the tutorial.
 *
 * Usage: anonymize [DEVICE | TRACE] [FILTER]
 *   DEVICE   a device of mapi.conf (default eth0): wait for packets forever (Ctrl-C stops).
 *   TRACE    an existing pcap/pcapng file (.erf: ERF): print the anonymised packets of the
 *            whole trace and their number.
 *   FILTER   BPF filter (default "tcp", the tutorial's).
 * mapid must be running with anonflib.so loaded (libs= in mapi.conf); libmapi finds it
 * through the file named by $MAPI_CONF. Unlike the tutorial's listing, every call is checked
 * and a failure prints the MAPI error.
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
void print_IP_pkt(struct mapipkt *rec);

int fd;

/* Returns 1 if arg names an existing regular file (a trace), else 0. */
static int is_trace_file(const char *arg)
{
    struct stat st;
    return stat(arg, &st) == 0 && S_ISREG(st.st_mode);
}

/* Returns the trace format of path: MFF_DAG_ERF for a name ending in .erf, else MFF_PCAP. */
static int trace_format(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && strcmp(path + n - 4, ".erf") == 0) ? MFF_DAG_ERF : MFF_PCAP;
}

/* Prints "WHAT: MAPI error N: TEXT" on stderr and exits with EXIT_FAILURE. */
static void die(const char *what)
{
    int err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";
    mapi_read_error(&err, msg);
    fprintf(stderr, "%s: MAPI error %d: %s\n", what, err, msg);
    exit(EXIT_FAILURE);
}

/* Applies one ANONYMIZE rule to the flow, or dies naming it. */
static void anonymize(const char *rule)
{
    if (mapi_apply_function(fd, "ANONYMIZE", rule) < 0)
        die(rule);
}

int main(int argc, char *argv[])
{
    int fid;
    int connect_status;
    struct mapipkt *pkt;
    const char *dev = argc > 1 ? argv[1] : "eth0";
    const char *filter = argc > 2 ? argv[2] : "tcp";
    int offline = is_trace_file(dev);
    unsigned long long packets = 0;

    signal(SIGINT, terminate);
    signal(SIGQUIT, terminate);
    signal(SIGTERM, terminate);

    if (offline)
        fd = mapi_create_offline_flow(dev, trace_format(dev));
    else
        fd = mapi_create_flow(dev);
    if (fd == -1) {
        printf("Flow cannot be created. Exiting..\n");
        die(dev);
    }

    // Anonymization of TCP packets

    if (mapi_apply_function(fd, "BPF_FILTER", filter) < 0)
        die("BPF_FILTER");

    // map IP addresses to sequential integers (1-to-1 mapping)
    anonymize("IP, SRC_IP, MAP");
    anonymize("IP, DST_IP, MAP");

    // replace with zero, tcp and ip options
    anonymize("IP, OPTIONS, ZERO");
    anonymize("TCP, TCP_OPTIONS, ZERO");

    // remove payload
    anonymize("TCP, PAYLOAD, STRIP, 0");
    // checksum fix in IP fixes checksums in TCP and UDP as well
    anonymize("IP, CHECKSUM, CHECKSUM_ADJUST");
    fid = mapi_apply_function(fd, "TO_BUFFER");
    if (fid < 0)
        die("TO_BUFFER");

    /* connect to the flow */
    connect_status = mapi_connect(fd);
    if (connect_status < 0) {
        printf("Connect failed");
        die("mapi_connect");
    }

    while (1) { /* forever, wait for matching packets */

        pkt = mapi_get_next_pkt(fd, fid);
        if (pkt == NULL) /* the end of a trace, or an error */
            break;
        packets++;
        printf("\nAnonymized tcp packet captured!\n");
        print_IP_pkt(pkt);
    }

    if (!offline)
        die("mapi_get_next_pkt");
    printf("\n%llu anonymized packets\n", packets);
    mapi_close_flow(fd);
    return 0;
}

/* Signal handler: closes the flow and exits. */
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
