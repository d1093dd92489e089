/*
 * flib/stdflib/hash.c - HASH "i": an additive hash of one layer of the last packet,
 * (len + sum of the bytes) % 500009, where the bytes are those captured from the layer's start
 * to caplen and len is their number. Layers (argument 0..3, else 7001):
 *   0  the whole link-layer frame (the original hashed the device record, which offline
 *      included the 16-byte pcap record header; we hash the frame only);
 *   1  from the network header on (pkt->l3_off: after the Ethernet/VLAN/SLL/... header);
 *   2  the L3 payload (pkt->l4_off: after IPv4 options / IPv6 extension headers);
 *   3  the L4 payload (pkt->payload_off: after the TCP/UDP/SCTP/ICMP header).
 * A packet without that layer (as decoded: layers 1-3 exist only for IPv4/IPv6, layer 2 not
 * for non-first fragments, layer 3 only for TCP/UDP/SCTP/ICMP) leaves the result unchanged.
 *
 * Result: one uint32_t (4 bytes) = the hash of the last packet that had the layer.
 */
#include "stdflib.h"

#define HASH_MODULUS 500009u

/* Checks the layer. Returns 0 or 7001. */
int stdflib_hash_instance(struct mapi_fn_instance *fi)
{
    int32_t layer = fi->args[0].v.i;

    if (layer < 0 || layer > 3) {
        stdflib_errmsg(fi, "layer %d is not 0..3", (int)layer);
        return MFUNCT_INVALID_ARGUMENT_1;
    }
    fi->result_size = sizeof(uint32_t);
    return 0;
}

/* Hashes the layer of this packet if it has it. Returns 1 (never filters). */
int stdflib_hash_process(struct mapi_fn_instance *fi, struct mapi_pkt *pkt)
{
    uint32_t off;
    uint64_t sum;
    uint32_t *r = fi->result;

    switch (fi->args[0].v.i) {
    case 0:
        off = 0;
        break;
    case 1:
        off = pkt->l3_off;
        break;
    case 2:
        off = pkt->l4_off;
        break;
    default:
        off = pkt->payload_off;
        break;
    }
    if (off == MAPI_OFF_NONE || off > pkt->caplen)
        return 1;
    sum = pkt->caplen - off;
    for (uint32_t i = off; i < pkt->caplen; i++)
        sum += pkt->data[i];
    mapi_result_write_begin(fi);
    __atomic_store_n(r, (uint32_t)(sum % HASH_MODULUS), __ATOMIC_RELAXED);
    mapi_result_write_end(fi);
    return 1;
}
