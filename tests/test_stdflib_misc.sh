#!/usr/bin/env bash
# tests/test_stdflib_misc.sh - HASHSAMP, BURST, THRESHOLD and SYNC of stdflib on real captures,
# through a private mapid and the clients tests/mapi_misc.c and tests/mapi_fnresult.c, against
# oracles computed in python from tshark's fields only (one tshark run per file, one python
# run for all expected values):
#   HASHSAMP 1024      the TCP/UDP packets: tshark's layers are link headers, IP, then TCP or
#                      UDP (not ICMP errors quoting a UDP header, not GRE, not Cisco FabricPath
#                      frames, whose inner headers our decoder does not open); the captures
#                      hold no IP fragments
#   HASHSAMP R         the kernel's jhash_3words written in python over tshark's ip/ipv6
#                      addresses, ports and protocol (IPv4, IPv6, VLAN, QinQ, SLL, PPP+MPLS,
#                      IPv6 extension headers, a nanosecond pcap)
#   HASHSAMP keep=1    every struct sample, field by field (addresses, ports, TCP sequence and
#                      flags, protocol, timestamp) against the same tshark fields
#   BURST              the burst/gap rule (flib/stdflib/burst.c's comment) rewritten in python
#                      over frame.time_epoch (as integer ns) and frame.len
#   THRESHOLD          the events of a THRESHOLD on the flow's PKT_COUNTER (per packet with and
#                      without hold-off, signed char and int values, D boundary, TR_POLL on the
#                      32.32 grid, TR_MW) from the packet times
#   SYNC               a flow listing a flow connected before the trace starts counts every
#                      packet; one listing a flow that never connects counts none; one listing a
#                      flow that connects while the trace is stalled starts with it (within
#                      mapid's batch of 256 packets: see the report in the check)
# plus every argument error code.
#
# Usage: test_stdflib_misc.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

if ! command -v tshark >/dev/null 2>&1; then
    echo "SKIP: tshark not installed"
    exit 77
fi

# 1 MiB TO_BUFFER rings (the smallest mapid makes): the SYNC check stalls a trace with one.
BUFFER_SIZE=1M start_mapid misc

FILES=(weibo.pcap iphone.pcap http_ipv6.pcap ajp.pcap QinQpacket.pcap log4j-webapp-exploit.pcap
    mpls-traceroute.pcap ipv6_ext_headers.pcap pptp.pcap doq-nsec.pcap)

# The fields of every packet, first occurrence of each: one tshark run per file (in parallel).
FIELDS=(-e frame.number -e frame.time_epoch -e frame.len -e ip.src -e ip.dst -e ipv6.src
    -e ipv6.dst -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e tcp.seq_raw
    -e tcp.flags -e frame.protocols)
TSHARK_PIDS=()
for f in "${FILES[@]}"; do
    tshark -r "$DATA/$f" -T fields -E occurrence=f -E separator='|' "${FIELDS[@]}" \
        2>/dev/null >"$TMPD/$f.all" &
    TSHARK_PIDS+=($!)
    track_pid $!
done
for p in "${TSHARK_PIDS[@]}"; do
    wait "$p" || die "tshark failed"
done

cat >"$TMPD/oracle.py" <<'PYEOF'
# oracle.py of tests/test_stdflib_misc.sh: the python side of every check, computed from
# tshark's fields only (see the functions' comments).
#
# Batch mode: every line of the plan (argv[1]) is "KEY CMD FILE ARGS...": the output of
# cmd_CMD over the packets of DIR/FILE.all (argv[2]) goes to DIR/want/KEY.
import contextlib, os, socket, struct, sys

M = 0xffffffff


def rol(w, s):
    return ((w << s) | (w >> (32 - s))) & M


def jhash_3words(a, b, c, initval):
    """include/linux/jhash.h: __jhash_nwords(a, b, c, initval + JHASH_INITVAL + (3 << 2))."""
    iv = (initval + 0xdeadbeef + 12) & M
    a, b, c = (a + iv) & M, (b + iv) & M, (c + iv) & M
    c ^= b; c = (c - rol(b, 14)) & M
    a ^= c; a = (a - rol(c, 11)) & M
    b ^= a; b = (b - rol(a, 25)) & M
    c ^= b; c = (c - rol(b, 16)) & M
    a ^= c; a = (a - rol(c, 4)) & M
    b ^= a; b = (b - rol(a, 14)) & M
    c ^= b; c = (c - rol(b, 24)) & M
    return c


LINK = {"eth", "ethertype", "vlan", "ieee8021ad", "mpls", "ppp", "sll", "pppoes"}


def tcp_udp(protocols):
    """True if tshark's layers are link headers, IP (IPv6 extension headers allowed), then
    TCP or UDP: what HASHSAMP samples. ICMP errors quoting a UDP header, GRE tunnels and
    encapsulations the decoder does not open (Cisco FabricPath "cfp") do not count."""
    layers = protocols.split(":")
    i = 0
    while i < len(layers) and layers[i] in LINK:
        i += 1
    if i >= len(layers) or layers[i] not in ("ip", "ipv6"):
        return False
    i += 1
    while i < len(layers) and layers[i].startswith("ipv6."):
        i += 1
    return i < len(layers) and layers[i] in ("tcp", "udp")


def load(path):
    """Packets as dicts; 'l4' is set for the TCP/UDP packets (see tcp_udp)."""
    pkts = []
    for line in open(path):
        v = line.rstrip("\n").split("|")
        sec, _, frac = v[1].partition(".")
        frac9 = int((frac + "000000000")[:9])
        p = {"ns": int(sec) * 10**9 + frac9, "sec": int(sec), "frac9": frac9, "len": int(v[2])}
        if tcp_udp(v[13]):
            v6 = bool(v[5])
            p["v6"] = v6
            p["src"] = v[5] if v6 else v[3]
            p["dst"] = v[6] if v6 else v[4]
            if v[7]:
                p["proto"], p["sport"], p["dport"] = 6, int(v[7]), int(v[8])
                p["seq"], p["flags"] = int(v[11]), int(v[12], 16)
            else:
                p["proto"], p["sport"], p["dport"] = 17, int(v[9]), int(v[10])
                p["seq"], p["flags"] = 0, 0
            p["l4"] = True
        pkts.append(p)
    return pkts


def addr_bytes(p, which):
    """The address as struct sample holds it: IPv4 itself, IPv6 the XOR of its 4 words."""
    if p["v6"]:
        b = socket.inet_pton(socket.AF_INET6, p[which])
        return bytes(b[i] ^ b[4 + i] ^ b[8 + i] ^ b[12 + i] for i in range(4))
    return socket.inet_aton(p[which])


def hashsamp(p):
    """a = saddr, b = daddr ^ proto, c = the port fields, each 4 packet bytes read little-endian."""
    a = struct.unpack("<I", addr_bytes(p, "src"))[0]
    b = struct.unpack("<I", addr_bytes(p, "dst"))[0] ^ p["proto"]
    c = struct.unpack("<I", struct.pack(">HH", p["sport"], p["dport"]))[0]
    return jhash_3words(a, b, c, 6564987) % 1024


def ticks(p, nsec_file):
    """The 32.32 timestamp of a pcap record (seconds << 32, fraction truncated)."""
    if nsec_file:
        return (p["sec"] << 32) + ((p["frac9"] << 32) // 10**9)
    return (p["sec"] << 32) + (((p["frac9"] // 1000) << 32) // 10**6)


def cmd_total(pkts):
    print(len(pkts))


def cmd_l4count(pkts):
    print("count %d" % sum(1 for p in pkts if p.get("l4")))


def cmd_hashcount(pkts, rng):
    print("count %d" % sum(1 for p in pkts if p.get("l4") and hashsamp(p) < int(rng)))


def cmd_hashmax(pkts):
    """The largest hash of the file: ranges h and h + 1 keep different numbers of packets."""
    print(max(hashsamp(p) for p in pkts if p.get("l4")))


def cmd_samples(pkts, rng):
    n = 0
    for p in pkts:
        if not p.get("l4") or hashsamp(p) >= int(rng):
            continue
        f = p["flags"]
        fl = (1 if f & 2 else 0) | (2 if f & 16 else 0) | (4 if f & 4 else 0) | \
             (8 if f & 1 else 0) | (16 if f & 8 else 0)
        print("S %s %s %d %d %d %d %d %d" % (
            socket.inet_ntoa(addr_bytes(p, "src")), socket.inet_ntoa(addr_bytes(p, "dst")),
            p["sport"], p["dport"], p["seq"], fl, p["proto"], p["ns"]))
        n += 1
    print("count %d" % n)


def cmd_burst(pkts, mn, mx, step, ift, late, early, speed):
    """The rule of burst.c rewritten: expected = prev + prev_len * 8 / speed + iftime; a packet
    within [expected - early, expected + late] continues the burst. Integers only: times are
    ns multiplied by the speed in Mbit/s (bits * 1000)."""
    mn, mx, step, ift, late, early, speed = map(int, (mn, mx, step, ift, late, early, speed))
    ncat = (mx - mn) // step + 2
    cats = [[0, 0, 0, 0, 0] for _ in range(ncat)]

    def cat(n):
        return 0 if n < mn else min(1 + (n - mn) // step, ncat - 1)
    prev = None
    bbytes = bpk = 0
    for p in pkts:
        if prev is not None:
            exp = (prev["ns"] + ift) * speed + prev["len"] * 8000
            t = p["ns"] * speed
            if t < exp - early * speed or t > exp + late * speed:
                c = cats[cat(bbytes)]
                c[0] += bbytes; c[1] += bpk; c[2] += 1
                g = (t - exp) // 8000 if t > exp else 0
                c = cats[cat(g)]
                c[3] += g; c[4] += 1
                bbytes = bpk = 0
        bbytes += p["len"]; bpk += 1
        prev = p
    if bpk:
        c = cats[cat(bbytes)]
        c[0] += bbytes; c[1] += bpk; c[2] += 1
    print("count %d result %s" % (len(pkts), " ".join(str(x) for c in cats for x in c)))


def cmd_threshold(pkts, mode, vtype, thr, bound, timeout, divider, count, nsec):
    """Events of THRESHOLD on the flow's own PKT_COUNTER (value after packet i = i), read as
    a signed char (TYPE_CHAR), an int (TYPE_INT) or unsigned 64 bits."""
    vtype, thr, bound, timeout, divider, count = map(
        int, (vtype, thr, bound, timeout, divider, count))
    bits = {0: 8, 1: 32}.get(vtype & 63)

    def typed(x):
        if bits is None:
            return x
        x &= (1 << bits) - 1
        return x - (1 << bits) if x >> (bits - 1) else x
    thr = typed(thr)
    ts = [ticks(p, nsec == "1") for p in pkts]
    diff = bound in (4, 8, 16)
    ev = []

    def crosses(v):
        if bound in (0, 4):
            return v == thr
        if bound in (1, 8):
            return v > thr
        return v < thr
    if mode == "packet":  # checks after every packet; hold-off of timeout ms after an event
        prev, last = 0, None
        hold = ((timeout << 32) + 500) // 1000
        for i, t in enumerate(ts):
            v = typed(i + 1)
            cmp = v - prev if diff else v
            prev = v
            if crosses(cmp) and (last is None or hold == 0 or t - last >= hold):
                ev.append((t, cmp))
                last = t
    elif mode == "poll":  # checks at t0 + k * timeout, value = packets before that time
        per = ((timeout << 32) + 500) // 1000
        g, prev = ts[0] + per, 0
        for i, t in enumerate(ts):
            while t >= g:
                v = typed(i)
                cmp = v - prev if diff else v
                prev = v
                if crosses(cmp):
                    ev.append((g, cmp))
                g += per
    else:  # moving window: samples every timeout / divider, increase over divider samples
        per = (((timeout << 32) // divider) + 500) // 1000
        g, samples = ts[0] + per, [0]
        for i, t in enumerate(ts):
            while t >= g:
                samples.append(typed(i))
                k = len(samples) - 1
                if k >= divider and crosses(samples[k] - samples[k - divider]):
                    ev.append((g, samples[k] - samples[k - divider]))
                g += per
    if count:
        ev = ev[:count]
    for t, v in ev:
        print("E %d %d" % (t, v & 0xffffffffffffffff))
    print("count %d" % len(pkts))


cache = {}
for line in open(sys.argv[1]):
    key, cmd, name, *args = line.split()
    if name not in cache:
        cache[name] = load(os.path.join(sys.argv[2], name + ".all"))
    with open(os.path.join(sys.argv[2], "want", key), "w") as out, \
            contextlib.redirect_stdout(out):
        globals()["cmd_" + cmd](cache[name], *args)
PYEOF

# Every check is declared first (its oracle computation goes into the plan), the oracle runs
# once, then the clients run and are compared.
mkdir "$TMPD/want"
: >"$TMPD/plan"
CASES=()
NCASES=0
# expect NAME ORACLE_CMD FILE ORACLE_ARGS... -- CLIENT ARGS...: the client's output must equal
# the oracle's.
expect()
{
    local name=$1 key=case$NCASES
    shift
    local o=() c=()
    while [ "$1" != "--" ]; do
        o+=("$1")
        shift
    done
    shift
    c=("$@")
    echo "$key ${o[*]}" >>"$TMPD/plan"
    printf '%s\n' "${c[@]}" >"$TMPD/want/$key.cmd"
    CASES+=("$name")
    NCASES=$((NCASES + 1))
}

# check NAME GOT WANT
check()
{
    if [ "$2" = "$3" ]; then
        pass "$1: $2"
    else
        fail "$1: got '$2', want '$3'"
    fi
}

# run CLIENT ARGS...: the client's output (CLIENT-FAILED and its stderr on a failure). The
# trace argument of mapi_fnresult and mapi_misc is a file of tests/data unless it has a /.
run()
{
    local prog=$1
    shift
    "$TBIN/$prog" "$@" 2>"$TMPD/client.err" || {
        cat "$TMPD/client.err"
        echo "CLIENT-FAILED"
    }
}

# ---- HASHSAMP ----
for f in "${FILES[@]}"; do
    expect "$f HASHSAMP 1024 0 = tshark's TCP/UDP" l4count "$f" -- \
        mapi_misc hashcount "$DATA/$f" 1024
    for r in 0 1 100 512; do
        expect "$f HASHSAMP $r 0" hashcount "$f" "$r" -- mapi_misc hashcount "$DATA/$f" "$r"
    done
done
for f in weibo.pcap iphone.pcap http_ipv6.pcap ajp.pcap QinQpacket.pcap mpls-traceroute.pcap \
    ipv6_ext_headers.pcap doq-nsec.pcap; do
    expect "$f HASHSAMP 300 1: every sample" samples "$f" 300 -- \
        mapi_misc samples "$DATA/$f" 300
done
expect "iphone.pcap HASHSAMP 1024 1: every sample" samples iphone.pcap 1024 -- \
    mapi_misc samples "$DATA/iphone.pcap" 1024
echo "hashmax_iphone hashmax iphone.pcap" >>"$TMPD/plan"

# ---- BURST ----
BURSTS=(
    "0 10000 1000 0 1000 1000 100"
    "0 3000 500 960 50000 20000 1000"
    "100 1600 100 0 1000000 1000000 10"
    "1500 1500 1 0 0 0 100000"
    "0 100000 5000 12000 2000000 500000 1"
)
for f in weibo.pcap iphone.pcap log4j-webapp-exploit.pcap QinQpacket.pcap doq-nsec.pcap; do
    for b in "${BURSTS[@]}"; do
        # shellcheck disable=SC2086
        expect "$f BURST $b" burst "$f" $b -- mapi_fnresult "$DATA/$f" BURST $b
    done
done

# ---- THRESHOLD on the flow's PKT_COUNTER ----
# MODE TYPE THRESHOLD BOUNDARY TIMEOUT DIVIDER COUNT
THRESHOLDS=(
    "packet 2 10 1 0 0 3"
    "packet 2 10 1 250 0 4"
    "packet 1 5 2 0 0 0"
    "packet 0 7 0 0 0 0"
    "packet 0 100 1 0 0 0"
    "packet 2 0 8 1000 0 0"
    "poll 66 100 1 500 0 0"
    "poll 66 5 8 200 0 0"
    "mw 130 20 1 1000 4 0"
    "mw 130 3 2 400 2 5"
)
for f in weibo.pcap iphone.pcap doq-nsec.pcap; do
    nsec=0
    [ "$f" = doq-nsec.pcap ] && nsec=1
    for t in "${THRESHOLDS[@]}"; do
        read -r mode type thr bound timeout divider count <<<"$t"
        expect "$f THRESHOLD $t" threshold "$f" "$mode" "$type" "$thr" "$bound" "$timeout" \
            "$divider" "$count" "$nsec" -- \
            mapi_misc threshold "$DATA/$f" "$type" "$thr" "$bound" "$timeout" "$divider" "$count"
    done
done
echo "total_weibo.pcap total weibo.pcap" >>"$TMPD/plan"

"$PY" "$TMPD/oracle.py" "$TMPD/plan" "$TMPD"

for ((i = 0; i < NCASES; i++)); do
    mapfile -t cmd <"$TMPD/want/case$i.cmd"
    run "${cmd[@]}" >"$TMPD/got"
    n=$(grep -c '^[SE] ' "$TMPD/got" || true)
    if cmp -s "$TMPD/got" "$TMPD/want/case$i"; then
        pass "${CASES[$i]}: $(tail -n 1 "$TMPD/got" | cut -c1-60)${n:+ ($n records)}"
    else
        fail "${CASES[$i]}: differs from the oracle (< got, > want)"
        diff "$TMPD/got" "$TMPD/want/case$i" | head -n 6
    fi
done

# The comparison can tell ranges apart: h = the largest hash of iphone.pcap; range h keeps
# fewer packets than range h + 1 (whose count the oracle also gives).
h=$(cat "$TMPD/want/hashmax_iphone")
got=$(run mapi_misc hashcount "$DATA/iphone.pcap" "$h")
echo "neg hashcount iphone.pcap $((h + 1))" >"$TMPD/plan2"
"$PY" "$TMPD/oracle.py" "$TMPD/plan2" "$TMPD"
if [ "$got" != "$(cat "$TMPD/want/neg")" ]; then
    pass "HASHSAMP $h ('$got') differs from the oracle's count for $((h + 1))"
else
    fail "HASHSAMP $h equals the oracle's count for $((h + 1)): ranges indistinguishable"
fi
check "THRESHOLD GT 10 count 3 on weibo.pcap: three events at packets 11-13" \
    "$(run mapi_misc threshold "$DATA/weibo.pcap" 2 10 1 0 0 3 | awk '$1 == "E" { print $3 }' |
        tr '\n' ' ')" "11 12 13 "

# ---- SYNC: flows A, B (SYNC "A"), C on one trace device (tests/mapi_misc.c) ----
f=weibo.pcap
total=$(cat "$TMPD/want/total_$f")
check "SYNC, listed flow connected before the start" "$(run mapi_misc sync "$DATA/$f" before)" \
    "A $total B $total C $total"
check "SYNC, listed flow never connected" "$(run mapi_misc sync "$DATA/$f" never)" \
    "A 0 B 0 C $total"
# Mid-trace: a trace larger than the 1 MiB ring of the gate flow (weibo.pcap six times over,
# timestamps shifted), which stalls once the ring is full; A connects during the stall. SYNC
# reports A as connected only once the capture thread runs it, so B starts on A's first packet.
"$PY" - "$DATA/$f" "$TMPD/big.pcap" <<'PYEOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] == b"\xd4\xc3\xb2\xa1" else ">"
recs, off = [], 24
while off + 16 <= len(d):
    s, u, incl, orig = struct.unpack(e + "IIII", d[off:off + 16])
    recs.append((s, u, incl, orig, d[off + 16:off + 16 + incl]))
    off += 16 + incl
span = recs[-1][0] - recs[0][0] + 2
with open(sys.argv[2], "wb") as out:
    out.write(d[:24])
    for k in range(6):
        for s, u, incl, orig, data in recs:
            out.write(struct.pack(e + "IIII", s + k * span, u, incl, orig) + data)
PYEOF
big=$((total * 6))
read -r _ a _ b _ c <<<"$(run mapi_misc sync "$TMPD/big.pcap" mid 10)"
if [ "$c" = "$big" ] && [ "$a" -gt 0 ] && [ "$a" -lt "$big" ] && [ "$b" = "$a" ]; then
    pass "SYNC, listed flow connected mid-trace: B $b starts with A $a (C $c)"
else
    fail "SYNC mid-trace: A '$a' B '$b' C '$c' (want 0 < A < $big, B = A, C $big)"
fi

# ---- argument errors ----
f=$DATA/pptp.pcap
check "HASHSAMP range -1" "$(run mapi_misc hashcount "$f" -1)" "ERR 7001"
check "HASHSAMP range 1025" "$(run mapi_misc hashcount "$f" 1025)" "ERR 7001"
check "HASHSAMP keep 2" "$(run mapi_fnresult "$f" HASHSAMP 10 2)" "ERR 7002"
check "HASHSAMP keep -1" "$(run mapi_fnresult "$f" HASHSAMP 10 -1)" "ERR 7002"
check "BURST min -1" "$(run mapi_fnresult "$f" BURST -1 100 10 0 0 0 100)" "ERR 7001"
check "BURST max < min" "$(run mapi_fnresult "$f" BURST 100 99 10 0 0 0 100)" "ERR 7002"
check "BURST step 0" "$(run mapi_fnresult "$f" BURST 0 100 0 0 0 0 100)" "ERR 7003"
check "BURST too many categories" "$(run mapi_fnresult "$f" BURST 0 2000000000 1 0 0 0 100)" \
    "ERR 7003"
check "BURST iftime -1" "$(run mapi_fnresult "$f" BURST 0 100 10 -1 0 0 100)" "ERR 7004"
check "BURST late -1" "$(run mapi_fnresult "$f" BURST 0 100 10 0 -1 0 100)" "ERR 7005"
check "BURST early -1" "$(run mapi_fnresult "$f" BURST 0 100 10 0 0 -1 100)" "ERR 7011"
check "BURST link_speed 0" "$(run mapi_fnresult "$f" BURST 0 100 10 0 0 0 0)" "ERR 7000"
check "THRESHOLD type 3" "$(run mapi_misc threshold "$f" 3 1 1 0 0 0)" "ERR 7001"
check "THRESHOLD type 258" "$(run mapi_misc threshold "$f" 258 1 1 0 0 0)" "ERR 7001"
check "THRESHOLD flow not open" "$(run mapi_fnresult "$f" THRESHOLD 2 9 1 0 1 1 0 0 0)" "ERR 7002"
check "THRESHOLD no such function" "$(run mapi_fnresult "$f" THRESHOLD 2 1 7 0 1 1 0 0 0)" \
    "ERR 7002"
check "THRESHOLD function without a result" "$(run mapi_misc threshold "$f" nores 1 1 0 0 0)" \
    "ERR 7003"
check "THRESHOLD boundary 3" "$(run mapi_misc threshold "$f" 2 1 3 0 0 0)" "ERR 7011"
check "THRESHOLD TR_MW with a D boundary" "$(run mapi_misc threshold "$f" 130 1 8 100 2 0)" \
    "ERR 7011"
check "THRESHOLD timeout -1" "$(run mapi_misc threshold "$f" 2 1 1 -1 0 0)" "ERR 7000"
check "THRESHOLD TR_POLL timeout 0" "$(run mapi_misc threshold "$f" 66 1 1 0 0 0)" "ERR 7000"
check "THRESHOLD TR_MW divider 0" "$(run mapi_misc threshold "$f" 130 1 1 100 0 0)" "ERR 7000"
check "THRESHOLD TR_MW divider > timeout" "$(run mapi_misc threshold "$f" 130 1 1 10 11 0)" \
    "ERR 7000"
check "THRESHOLD count -1" "$(run mapi_misc threshold "$f" 2 1 1 0 0 -1)" "ERR 7000"
check "SYNC empty list" "$(run mapi_fnresult "$f" SYNC "")" "ERR 7001"
check "SYNC malformed list" "$(run mapi_fnresult "$f" SYNC "1,x")" "ERR 7001"
check "SYNC flow not open" "$(run mapi_fnresult "$f" SYNC "1,9")" "ERR 7001"

stop_mapid misc
finish
