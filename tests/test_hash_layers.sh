#!/usr/bin/env bash
# tests/test_hash_layers.sh - HASH layers 2 (the L3 payload: from the transport header on, after
# IPv4 options and IPv6 extension headers) and 3 (the L4 payload: after the TCP/UDP/SCTP/ICMP
# header) of stdflib (flib/stdflib/hash.c), through a private mapid and tests/mapi_fnresult.
#
# Oracle: python with its own header parsing over the pcap bytes (struct), computing
# (len + sum of bytes) % 500009 of the layer of the LAST packet that has it (HASH leaves its
# result alone for packets without the layer; 0 if no packet had it). To look at many packets
# and not only the last one of each capture, the test runs HASH on prefixes of the captures:
#   - a capture made here with one packet of each kind: IPv4 with options, TCP with options,
#     UDP, ICMP, SCTP, GRE, a non-first fragment, 802.1Q and QinQ tags, MPLS, PPPoE, LLC/SNAP,
#     IPv6 with hop-by-hop and fragment headers, ICMPv6, "no next header", ARP, a TCP header
#     cut by the capture length, a payload cut by it, a TCP data offset < 5; every prefix;
#   - real captures of tests/data (Ethernet, VLAN, QinQ, SLL, PPP + MPLS, PPPoE, IPv6 with 60
#     extension headers, big-endian and nanosecond pcap), each cut after three packets chosen
#     so that the last packets differ.
#
# Usage: test_hash_layers.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

FILES=(weibo.pcap iphone.pcap http_ipv6.pcap ajp.pcap QinQpacket.pcap log4j-webapp-exploit.pcap
    RADIUS-RFC4675.pcap pptp.pcap mpls-traceroute.pcap ipv6_ext_headers.pcap pppoes.pcap
    doq-nsec.pcap)

# Writes the prefixes into $TMPD/cases and prints one line per check: FILE LAYER EXPECTED.
"$PY" - "$TMPD/cases" "$DATA" "${FILES[@]}" >"$TMPD/plan" <<'PYEOF'
import os, struct, sys

outdir, datadir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(outdir)
MOD = 500009

def be16(d, o):
    return (d[o] << 8) | d[o + 1]

def offsets(lt, d):
    """(start of layer 2, start of layer 3) of frame d of link type lt; None if absent."""
    n = len(d)
    l4 = pay = None
    off, et = 0, None
    if lt == 1:                                   # Ethernet
        if n < 14:
            return None, None
        et, off = be16(d, 12), 14
        if et < 0x600:                            # 802.3: only LLC/SNAP carries a type
            if n < 17 or d[14:17] != b"\xaa\xaa\x03" or n < 22:
                return None, None
            et, off = be16(d, 20), 22
    elif lt == 113:                               # Linux cooked v1
        if n < 16:
            return None, None
        et, off = be16(d, 14), 16
    elif lt in (9, 50):                           # PPP, optional ff 03
        if n >= 2 and d[0] == 0xff and d[1] == 0x03:
            off = 2
        if off + 2 > n:
            return None, None
        p = be16(d, off)
        off += 2
        et = {0x21: 0x800, 0x57: 0x86dd, 0x281: 0x8847, 0x283: 0x8848}.get(p)
        if et is None:
            return None, None
    else:
        raise SystemExit("link type %d not handled by the oracle" % lt)
    while et in (0x8100, 0x88a8, 0x9100):         # VLAN tags
        if off + 4 > n:
            return None, None
        et, off = be16(d, off + 2), off + 4
    if et == 0x8864:                              # PPPoE session
        if off + 8 > n:
            return None, None
        p = be16(d, off + 6)
        off += 8
        et = {0x21: 0x800, 0x57: 0x86dd}.get(p)
    if et in (0x8847, 0x8848):                    # MPLS: to the bottom of the stack
        while True:
            if off + 4 > n:
                return None, None
            off += 4
            if d[off - 2] & 1:
                break
        if off >= n:
            return None, None
        et = {4: 0x800, 6: 0x86dd}.get(d[off] >> 4)
    if et == 0x800:
        if off + 20 > n or d[off] >> 4 != 4 or d[off] & 15 < 5:
            return None, None
        proto = d[off + 9]
        if be16(d, off + 6) & 0x1fff:             # not the first fragment
            return None, None
        off += (d[off] & 15) * 4
    elif et == 0x86dd:
        if off + 40 > n or d[off] >> 4 != 6:
            return None, None
        proto, off = d[off + 6], off + 40
        while True:
            if proto in (0, 43, 60):
                if off + 2 > n:
                    return None, None
                proto, off = d[off], off + (d[off + 1] + 1) * 8
            elif proto == 51:
                if off + 2 > n:
                    return None, None
                proto, off = d[off], off + (d[off + 1] + 2) * 4
            elif proto == 44:
                if off + 8 > n:
                    return None, None
                if be16(d, off + 2) & 0xfff8:
                    return None, None
                proto, off = d[off], off + 8
            else:
                break
        if proto == 59:
            return None, None
    else:
        return None, None
    hdr = {6: 20, 17: 8, 136: 8, 132: 12, 1: 8, 58: 8}.get(proto)
    if hdr is None:                               # another protocol: layer 2 only
        return (off if off < n else None), None
    if off + hdr > n:
        return None, None
    l4 = off
    if proto == 6:
        doff = (d[off + 12] >> 4) * 4
        if doff < 20 or off + doff > n:
            return l4, None
        return l4, off + doff
    return l4, off + hdr

def hashed(d, off):
    return None if off is None or off > len(d) else (len(d) - off + sum(d[off:])) % MOD

def read_pcap(path):
    data = open(path, "rb").read()
    magic = data[:4]
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    lt = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    recs, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        recs.append(data[off:off + 16 + incl])
        off += 16 + incl
    return data[:24], lt, recs

def plan(name, header, lt, recs, cuts):
    h2 = h3 = 0
    want = []
    for rec in recs:
        l4, pay = offsets(lt, rec[16:])
        v2, v3 = hashed(rec[16:], l4), hashed(rec[16:], pay)
        h2 = h2 if v2 is None else v2
        h3 = h3 if v3 is None else v3
        want.append((h2, h3))
    for k in cuts:
        path = "%s/%s.first%d.pcap" % (outdir, name, k)
        with open(path, "wb") as f:
            f.write(header + b"".join(recs[:k]))
        print("%s 2 %d" % (path, want[k - 1][0]))
        print("%s 3 %d" % (path, want[k - 1][1]))

# ---- the capture made here ----
def csum_free_ipv4(proto, payload, opts=b"", frag=0, total=None):
    ihl = 5 + len(opts) // 4
    tl = total if total is not None else ihl * 4 + len(payload)
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, tl, 1, frag, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + opts + payload

def ipv6(nh, payload):
    return struct.pack(">IHBB16s16s", 0x60000000, len(payload), nh, 64, b"\x20\x01" + b"\0" * 13 + b"\x01",
                       b"\x20\x01" + b"\0" * 13 + b"\x02") + payload

def tcp(payload, doff=5, opts=b""):
    return struct.pack(">HHIIBBHHH", 1234, 80, 1, 0, doff << 4, 0x18, 512, 0, 0) + opts + payload

def udp(payload):
    return struct.pack(">HHHH", 5353, 53, 8 + len(payload), 0) + payload

def eth(et, payload, tags=()):
    h = b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb"
    for tpid, vid in tags:
        h += struct.pack(">HH", tpid, vid)
    return h + struct.pack(">H", et) + payload

PAYLOADS = iter(range(1, 100))
def P():
    """A payload that differs from packet to packet (so each one's hash differs)."""
    k = next(PAYLOADS)
    return b"payload bytes \x00\xff\x80 of the test" + bytes([k * 7 % 256]) * k
frames = [
    eth(0x800, csum_free_ipv4(6, tcp(P(), 8, b"\x01" * 12), opts=b"\x94\x04\x00\x00")),  # options
    eth(0x800, csum_free_ipv4(17, udp(P()))),
    eth(0x800, csum_free_ipv4(1, b"\x08\x00\x00\x00\x00\x01\x00\x01" + P())),            # ICMP
    eth(0x800, csum_free_ipv4(17, udp(P()), frag=10)),                                    # fragment
    eth(0x800, csum_free_ipv4(47, b"\x00\x00\x08\x00" + P())),                            # GRE
    eth(0x86dd, ipv6(0, b"\x11\x00" + b"\x01\x04\x00\x00\x00\x00" + udp(P())), ((0x8100, 7),)),
    eth(0x800, csum_free_ipv4(6, tcp(P())), ((0x88a8, 100), (0x8100, 200))),              # QinQ
    eth(0x86dd, ipv6(44, b"\x06\x00\x00\x01\x00\x00\x00\x01" + tcp(P()))),                # 1st frag
    eth(0x86dd, ipv6(44, b"\x06\x00\x00\x50\x00\x00\x00\x01" + tcp(P()))),                # later frag
    eth(0x806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x01" * 20),                      # ARP
    eth(0x800, csum_free_ipv4(6, tcp(P())))[:14 + 20 + 10],                              # TCP cut
    eth(0x800, csum_free_ipv4(6, tcp(P())))[:14 + 20 + 20 + 5],                          # data cut
    eth(0x8847, b"\x00\x01\x01\x40" + csum_free_ipv4(17, udp(P()))),                      # MPLS
    eth(0x8864, b"\x11\x00\x00\x01\x00\x40\x00\x21" + csum_free_ipv4(17, udp(P()))),      # PPPoE
    eth(0x86dd, ipv6(59, P())),                                                           # no next
    eth(0x800, csum_free_ipv4(132, b"\x00\x01\x00\x02" + b"\x00" * 8 + P())),             # SCTP
    eth(0x86dd, ipv6(58, b"\x80\x00\x00\x00\x00\x01\x00\x01" + P())),                     # ICMPv6
    b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb" + struct.pack(">H", 60) +
        b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + csum_free_ipv4(17, udp(P())),               # SNAP
    eth(0x800, csum_free_ipv4(6, tcp(P(), 4))),                                           # doff 4
    eth(0x800, csum_free_ipv4(99, b"")),                                                # empty L4
]
header = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
recs = []
for i, fr in enumerate(frames):
    recs.append(struct.pack("<IIII", 1700000000 + i, 1000 * i, len(fr), len(fr) + (8 if i == 11 else 0)) + fr)
plan("crafted", header, 1, recs, range(1, len(recs) + 1))

# ---- real captures: the whole file and two shorter prefixes ending on other packets ----
for f in files:
    header, lt, recs = read_pcap(os.path.join(datadir, f))
    n = len(recs)
    cuts = sorted({n, max(1, n // 2), max(1, n // 3 + 1)})
    plan(f.replace(".pcap", ""), header, lt, recs, cuts)
PYEOF
nplan=$(wc -l <"$TMPD/plan")
[ "$nplan" -gt 60 ] || die "the python oracle planned only $nplan checks"

start_mapid hl

while read -r file layer want; do
    out=$("$TBIN/mapi_fnresult" "$file" HASH "$layer" 2>"$TMPD/client.err") || {
        cat "$TMPD/client.err"
        out="CLIENT-FAILED"
    }
    got=$(echo "$out" | awk '$1 == "count" && $3 == "result" { print $4; exit } { print "?" }')
    if [ "$got" = "$want" ]; then
        pass "$(basename "$file") HASH $layer: $got"
    else
        fail "$(basename "$file") HASH $layer: got '$out', python says $want"
    fi
done <"$TMPD/plan"

# A layer outside 0..3 is refused with 7001.
out=$("$TBIN/mapi_fnresult" "$DATA/weibo.pcap" HASH 4 2>/dev/null || true)
if [ "$out" = "ERR 7001" ]; then
    pass "HASH 4 refused with 7001"
else
    fail "HASH 4: got '$out', want ERR 7001"
fi

stop_mapid hl
finish
