/*
 * mapi/hashsamp.h - the records of the HASHSAMP function of stdflib (installed header).
 *
 *   int fid = mapi_apply_function(fd, "HASHSAMP", 256, 1);  keep about 1/4 of the TCP/UDP
 *                                                           5-tuples, and record each packet
 *   mapi_results_t *r = mapi_read_results(fd, fid);         one struct sample per call,
 *   struct sample *s = r->res;                              waiting for the next one; NULL
 *                                                           (error 6158) at the end of a trace
 *
 * HASHSAMP(range, keep) keeps the TCP and UDP packets (IPv4 and IPv6, also behind VLAN tags
 * or MPLS labels; not the non-first fragments) whose flow hash, a number 0..1023, is below
 * range (0..1024): the same 5-tuple is always kept or always dropped. Every other packet is
 * dropped. With keep != 0 every kept packet also queues one struct sample; with keep == 0
 * there is nothing to read (mapi_read_results fails with 6146).
 *
 * Fields of struct sample (the original's names and order):
 *   source_ip, dest_ip   the IPv4 addresses in network byte order, as in struct in_addr's
 *                        s_addr; for IPv6 the XOR of the four 32-bit words of the address
 *                        (each as it lies in memory), so also "network order" bytes
 *   sourceport, destport host byte order
 *   sequence             TCP sequence number (host order); 0 for UDP
 *   tcp_flags            TCP_SYN | TCP_ACK | ... below; 0 for UDP
 *   protocol             6 (TCP) or 17 (UDP)
 *   timestamp            the packet's 32.32 timestamp (seconds since the epoch << 32)
 */
#ifndef MAPI_HASHSAMP_H
#define MAPI_HASHSAMP_H

#define TCP_SYN 1
#define TCP_ACK 2
#define TCP_RST 4
#define TCP_FIN 8
#define TCP_PSH 16

struct sample {
    unsigned int source_ip;
    unsigned int dest_ip;
    unsigned int sourceport;
    unsigned int destport;
    unsigned int sequence;
    unsigned int tcp_flags;
    unsigned int protocol;
    unsigned long long timestamp;
};

#endif /* MAPI_HASHSAMP_H */
