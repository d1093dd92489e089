#!/usr/bin/env bash
# tests/test_anonflib.sh - anonflib's ANONYMIZE (header fields, payload, checksums) and
# PRINT_PACKET on real captures, checked with tshark, tcpdump and python, not with our code.
# tests/mapi_anontest applies the rules to an offline flow and writes the result with TO_FILE;
# tshark's field output of the original and of the result (-E occurrence=f: the outer header
# of ICMP errors) is compared packet by packet:
#   1. CHECKSUM_ADJUST: after ZERO on TTL (hop limit) and MAP on ports, tshark with checksum
#      validation on (ip, tcp, udp, icmp, icmpv6) finds no bad checksum, on Ethernet and Linux
#      SLL captures, IPv4 and IPv6 (captures whose original has bad TCP checksums included);
#      the same rules without CHECKSUM_ADJUST do leave bad checksums (the check can fail);
#   2. MAP: over a whole trace the mapping original -> new is a function and one-to-one, and the
#      new values are 1, 2, ... in order of first appearance (source before destination; one
#      table for IPv4 addresses (0.0.0.N), one for IPv6 (2001:db8::N), one for all ports);
#   3. ZERO gives zeros (IP ID, TOS, IPv6 traffic class and flow label, TCP sequence number and
#      window, UDP source port) and leaves the other fields alone;
#   4. STRIP,n leaves n payload bytes (tcp.len, udp.length, the first bytes equal), and the IPv4
#      total length / IPv6 payload length / frame lengths shrink by what was removed;
#   5. RANDOM changes the field; PATTERN_FILL gives the pattern; MAP_DISTRIBUTION is consistent
#      and within the distribution's range;
#   6. another flow on the same device (created before, or after, the anonymising one) writes
#      the original packets, byte for byte (tcpdump -xx -e);
#   7. a capture cut to 60 bytes (editcap -s 60): lengths never grow past the capture, the IPv4
#      header checksum is fixed, the checksum of an incomplete TCP segment is left as it was,
#      complete segments get a good checksum, mapid survives (run it on the sanitizer build
#      too);
#   8. bad rules: 7001 protocol, 7002 field / field-function mismatch, 7003 function, 7004
#      parameters (and a key-less PREFIX_PRESERVING without anon_key_file), the message naming
#      the bad part; lower case and blanks around commas give the same file as the canonical
#      spelling;
#   9. PRINT_PACKET writes the packets to mapid's log.
#
# Usage: test_anonflib.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

[ -e "$BUILD/flib/anonflib.so" ] || die "missing $BUILD/flib/anonflib.so"
command -v tshark >/dev/null || {
    echo "tshark is not installed"
    exit 77
}

# mapid loads anonflib too (write_conf of common.sh).
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=stdflib.so:anonflib.so

ANON=$TBIN/mapi_anontest
WEIBO=$DATA/weibo.pcap
IPHONE=$DATA/iphone.pcap
V6=$DATA/http_ipv6.pcap
SLL=$DATA/log4j-webapp-exploit.pcap

cat >"$TMPD/oracle.py" <<'EOF'
"""Checks of test_anonflib.sh on tshark field output (TSV with a header line).

Usage: oracle.py CHECK ORIG.tsv NEW.tsv [ARGS]; prints what is wrong and exits 1, or prints a
summary and exits 0.
"""
import ipaddress
import sys


def load(path):
    with open(path) as f:
        lines = f.read().split("\n")
    head = lines[0].split("\t")
    rows = [dict(zip(head, l.split("\t"))) for l in lines[1:] if l != ""]
    return rows


def num(v):
    return int(v, 0)


def bad(msg):
    print(msg)
    sys.exit(1)


def is_icmp(row):
    return "icmp" in row.get("frame.protocols", "")


def check_map(orig, new):
    """MAP: consistent, one-to-one, sequential in order of first appearance."""
    classes = {
        "ip4": (["ip.src", "ip.dst"], lambda v: int(ipaddress.IPv4Address(v))),
        "ip6": (["ipv6.src", "ipv6.dst"],
                lambda v: int(ipaddress.IPv6Address(v)) - int(ipaddress.IPv6Address("2001:db8::"))),
        "port": (["tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"], int),
    }
    summary = []
    for name, (cols, val) in classes.items():
        fwd, back, order = {}, {}, []
        for i, (o, n) in enumerate(zip(orig, new)):
            if name == "port" and is_icmp(o):
                continue  # the ports of ICMP errors belong to the quoted header
            for c in cols:
                a, b = o.get(c, ""), n.get(c, "")
                if a == "" and b == "":
                    continue
                if a == "" or b == "":
                    bad(f"MAP {c}: packet {i + 1}: '{a}' -> '{b}'")
                if fwd.setdefault(a, b) != b:
                    bad(f"MAP {c}: packet {i + 1}: {a} -> {b}, earlier -> {fwd[a]}")
                if back.setdefault(b, a) != a:
                    bad(f"MAP {c}: packet {i + 1}: {a} and {back[b]} both -> {b}")
                if len(order) < len(fwd):
                    order.append(b)
        want = list(range(1, len(order) + 1))
        got = [val(v) for v in order]
        if got != want:
            bad(f"MAP {name}: values in order of first appearance {got[:10]}..., want 1..N")
        summary.append(f"{len(order)} {name}")
    print("one-to-one, 1..N: " + ", ".join(summary))


def check_zero(orig, new, *cols):
    """ZERO: the named columns are 0 wherever present; ip.src/ipv6.src/dst ports unchanged."""
    n = 0
    for i, (o, r) in enumerate(zip(orig, new)):
        for c in cols:
            if c.startswith("udp") and is_icmp(o):
                continue
            if (o.get(c, "") == "") != (r.get(c, "") == ""):
                bad(f"ZERO {c}: packet {i + 1}: '{o.get(c)}' -> '{r.get(c)}'")
            if r.get(c, "") != "":
                if num(r[c]) != 0:
                    bad(f"ZERO {c}: packet {i + 1}: {r[c]}")
                n += 1
        for c in ("ip.src", "ipv6.src", "tcp.dstport", "frame.len"):
            if o.get(c, "") != r.get(c, ""):
                bad(f"ZERO changed {c}: packet {i + 1}: {o.get(c)} -> {r.get(c)}")
    if n == 0:
        bad("ZERO: no field seen")
    print(f"{n} zeroed values, other fields unchanged")


def check_strip(orig, new, keep):
    """STRIP,keep on TCP and UDP payloads."""
    keep = int(keep)
    n = 0
    for i, (o, r) in enumerate(zip(orig, new)):
        if is_icmp(o):
            continue
        removed = 0
        if o.get("tcp.len", "") != "":
            old, got = int(o["tcp.len"]), int(r["tcp.len"])
            if got != min(old, keep):
                bad(f"STRIP tcp.len: packet {i + 1}: {old} -> {got}, want {min(old, keep)}")
            if r.get("tcp.payload", "") != o.get("tcp.payload", "")[:2 * keep]:
                bad(f"STRIP: packet {i + 1}: the kept TCP bytes differ")
            removed = old - got
        elif o.get("udp.length", "") != "":
            old, got = int(o["udp.length"]) - 8, int(r["udp.length"]) - 8
            if got != min(old, keep):
                bad(f"STRIP udp.length: packet {i + 1}: {old + 8} -> {got + 8}")
            removed = old - got
        else:
            continue
        n += removed > 0
        for c in ("ip.len", "ipv6.plen", "frame.len", "frame.cap_len"):
            if o.get(c, "") != "" and int(r[c]) != int(o[c]) - removed:
                bad(f"STRIP {c}: packet {i + 1}: {o[c]} -> {r[c]}, removed {removed}")
    if n == 0:
        bad("STRIP: nothing stripped")
    print(f"{n} packets shortened, lengths fixed")


def check_changed(orig, new, *cols):
    """RANDOM: at least 90% of the values changed."""
    out = []
    for c in cols:
        pairs = [(o[c], r[c]) for o, r in zip(orig, new) if o.get(c, "") != ""]
        changed = sum(a != b for a, b in pairs)
        if not pairs or changed < 0.9 * len(pairs):
            bad(f"RANDOM {c}: {changed} of {len(pairs)} values changed")
        out.append(f"{c}: {changed} of {len(pairs)} changed")
    print(", ".join(out))


def check_pattern(orig, new, text, ttl):
    """PATTERN_FILL,STR,text on the TCP payload and PATTERN_FILL,INTEGER,ttl on TTL."""
    n = 0
    for i, (o, r) in enumerate(zip(orig, new)):
        if r.get("ip.ttl", "") != "" and int(r["ip.ttl"]) != int(ttl):
            bad(f"PATTERN_FILL TTL: packet {i + 1}: {r['ip.ttl']}")
        p = o.get("tcp.payload", "")
        if p == "":
            continue
        want = (text.encode() * (len(p) // 2)).hex()[:len(p)]
        if r.get("tcp.payload", "") != want or r["tcp.len"] != o["tcp.len"]:
            bad(f"PATTERN_FILL payload: packet {i + 1}: {r.get('tcp.payload', '')[:40]}...")
        n += 1
    print(f"{n} payloads filled with '{text}', TTL {ttl}")


def check_dist(orig, new, col, lo, hi):
    """MAP_DISTRIBUTION: a function, values within [lo, hi]."""
    fwd = {}
    for i, (o, r) in enumerate(zip(orig, new)):
        if is_icmp(o) or o.get(col, "") == "":
            continue
        a, b = o[col], num(r[col])
        if fwd.setdefault(a, b) != b:
            bad(f"MAP_DISTRIBUTION {col}: {a} -> {b} and earlier -> {fwd[a]}")
        if not float(lo) <= b <= float(hi):
            bad(f"MAP_DISTRIBUTION {col}: {a} -> {b}, outside [{lo}, {hi}]")
    if not fwd:
        bad(f"MAP_DISTRIBUTION {col}: no values")
    print(f"{col}: {len(fwd)} values mapped consistently into [{lo}, {hi}]")


def check_trunc(orig, new):
    """A truncated capture: same lengths; IP checksum good; incomplete TCP segments keep their
    checksum, complete ones are good; TTL zero."""
    kept = good = 0
    for i, (o, r) in enumerate(zip(orig, new)):
        for c in ("frame.len", "frame.cap_len"):
            if o[c] != r[c]:
                bad(f"truncated: packet {i + 1}: {c} {o[c]} -> {r[c]}")
        if r.get("ip.ttl", "") not in ("", "0"):
            bad(f"truncated: packet {i + 1}: TTL {r['ip.ttl']}")
        if r.get("ip.checksum.status", "") not in ("", "1"):
            bad(f"truncated: packet {i + 1}: IP checksum status {r['ip.checksum.status']}")
        if o.get("tcp.checksum", "") == "":
            continue
        if int(o["frame.cap_len"]) < int(o["frame.len"]):
            if r["tcp.checksum"] != o["tcp.checksum"]:
                bad(f"truncated: packet {i + 1}: checksum of an incomplete segment changed")
            kept += 1
        else:
            if r["tcp.checksum.status"] != "1":
                bad(f"truncated: packet {i + 1}: complete segment, bad TCP checksum")
            good += 1
    if kept == 0 or good == 0:
        bad(f"truncated: {kept} incomplete and {good} complete segments seen")
    print(f"{kept} incomplete segments kept their checksum, {good} complete ones are good")


CHECKS = {"map": check_map, "zero": check_zero, "strip": check_strip, "changed": check_changed,
          "pattern": check_pattern, "dist": check_dist, "trunc": check_trunc}

if __name__ == "__main__":
    orig, new = load(sys.argv[2]), load(sys.argv[3])
    if len(orig) != len(new):
        bad(f"{len(orig)} packets in the original, {len(new)} in the result")
    CHECKS[sys.argv[1]](orig, new, *sys.argv[4:])
EOF

# The tshark fields every check reads (first occurrence: the outer header of ICMP errors).
ALLF="frame.protocols frame.len frame.cap_len ip.src ip.dst ipv6.src ipv6.dst ip.len ipv6.plen
ip.id ip.dsfield ip.ttl ipv6.tclass ipv6.flow ipv6.hlim tcp.srcport tcp.dstport udp.srcport
udp.dstport tcp.seq_raw tcp.window_size_value tcp.len tcp.payload udp.length udp.payload
tcp.checksum ip.checksum.status tcp.checksum.status udp.checksum.status icmp.checksum.status
icmpv6.checksum.status"
# fields FILE: tshark's values of $ALLF with a header line, checksum checks on.
fields()
{
    local args=() x
    for x in $ALLF; do
        args+=(-e "$x")
    done
    tshark -n -r "$1" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
        -o udp.check_checksum:TRUE -T fields -E header=y -E occurrence=f "${args[@]}" 2>/dev/null
}

# tsv FILE: prints the name of a file with the fields of FILE (made once per trace name).
tsv()
{
    local t
    t=$TMPD/$(basename "$1").tsv
    [ -s "$t" ] || fields "$1" >"$t"
    echo "$t"
}

# count_bad TSV [REGEX]: packets (whose frame.protocols match REGEX) with a bad IP, TCP, UDP,
# ICMP or ICMPv6 checksum.
count_bad()
{
    awk -F'\t' -v re="${2:-.}" 'NR == 1 {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /checksum\.status$/) st[i] = 1
                if ($i == "frame.protocols") p = i
            }
            next
        }
        $p ~ re { for (i in st) if ($i == "0") { n++; break } }
        END { print n + 0 }' "$1"
}

# values TSV FIELD...: the distinct non-empty values of the fields, on one line.
values()
{
    local t=$1
    shift
    awk -F'\t' -v want=" $* " 'NR == 1 { for (i = 1; i <= NF; i++) if (index(want, " " $i " ")) c[i] = 1; next }
        { for (i in c) if ($i != "") v[$i] = 1 }
        END { for (x in v) printf "%s ", x }' "$t"
}

# anon OUT TRACE ITEM...: runs the rules; true if the client printed "ok N".
N=0
anon()
{
    local out=$1 trace=$2 res
    shift 2
    res=$("$ANON" "$trace" "$out" "$@" 2>&1) || true
    case $res in
    ok\ *) return 0 ;;
    *)
        fail "mapi_anontest $(basename "$trace") $*: $res"
        return 1
        ;;
    esac
}

# compare CHECK NAME TRACE ARGS -- ITEM...: anonymises TRACE with the items and runs
# oracle.py CHECK on the tshark fields of the original and the result.
compare()
{
    local check=$1 name=$2 trace=$3 args=() out res
    shift 3
    while [ "$1" != "--" ]; do
        args+=("$1")
        shift
    done
    shift
    N=$((N + 1))
    out=$TMPD/c$N.pcap
    anon "$out" "$trace" "$@" || return 0
    fields "$out" >"$TMPD/c$N.new.tsv"
    if res=$("$PY" "$TMPD/oracle.py" "$check" "$(tsv "$trace")" "$TMPD/c$N.new.tsv" \
        ${args[@]+"${args[@]}"}); then
        pass "$name: $res"
    else
        fail "$name: $res"
    fi
}

start_mapid anon

# 1. CHECKSUM_ADJUST.
RULES=("IP,TTL,ZERO" "TCP,SRC_PORT,MAP" "UDP,DST_PORT,MAP")
K=0
for f in "$WEIBO" "$IPHONE" "$V6" "$SLL"; do
    name=$(basename "$f")
    before=$(count_bad "$(tsv "$f")")
    K=$((K + 1))
    if anon "$TMPD/ck$K.pcap" "$f" "${RULES[@]}" "IP,CHECKSUM,CHECKSUM_ADJUST"; then
        fields "$TMPD/ck$K.pcap" >"$TMPD/ck$K.tsv"
        n=$(count_bad "$TMPD/ck$K.tsv")
        ttl=$(values "$TMPD/ck$K.tsv" ip.ttl ipv6.hlim)
        if [ "$n" -eq 0 ] && [ "$ttl" = "0 " ]; then
            pass "CHECKSUM_ADJUST $name: no bad checksum (the original had $before), TTL 0"
        else
            fail "CHECKSUM_ADJUST $name: $n packets with a bad checksum, TTL/hop limits '$ttl'"
        fi
    fi
    if anon "$TMPD/nock$K.pcap" "$f" "${RULES[@]}"; then
        fields "$TMPD/nock$K.pcap" >"$TMPD/nock$K.tsv"
        n=$(count_bad "$TMPD/nock$K.tsv")
        if [ "$n" -gt "$before" ]; then
            pass "without CHECKSUM_ADJUST $name: tshark finds $n bad checksums"
        else
            fail "without CHECKSUM_ADJUST $name: only $n bad checksums (original $before)"
        fi
    fi
done
# At the TCP, UDP and ICMP level (the IP header checksum of those packets is fixed too; other
# protocols, IGMP here, are not touched by these rules and keep a bad header checksum).
if anon "$TMPD/ck0.pcap" "$IPHONE" "${RULES[@]}" "TCP,CHECKSUM,CHECKSUM_ADJUST" \
    "UDP,CHECKSUM,CHECKSUM_ADJUST" "ICMP,CHECKSUM,CHECKSUM_ADJUST"; then
    fields "$TMPD/ck0.pcap" >"$TMPD/ck0.tsv"
    n=$(count_bad "$TMPD/ck0.tsv" ":(tcp|udp|icmp|icmpv6)(:|$)")
    m=$(count_bad "$TMPD/ck0.tsv" ":igmp")
    if [ "$n" -eq 0 ] && [ "$m" -gt 0 ]; then
        pass "CHECKSUM_ADJUST at TCP/UDP/ICMP level: no bad checksum there ($m IGMP left bad)"
    else
        fail "CHECKSUM_ADJUST at TCP/UDP/ICMP level: $n bad TCP/UDP/ICMP, $m bad IGMP packets"
    fi
fi

# 2. MAP.
for f in "$WEIBO" "$IPHONE" "$V6"; do
    compare map "MAP $(basename "$f")" "$f" -- "IP,SRC_IP,MAP" "IP,DST_IP,MAP" \
        "TCP,SRC_PORT,MAP" "TCP,DST_PORT,MAP" "UDP,SRC_PORT,MAP" "UDP,DST_PORT,MAP"
done

# 3. ZERO.
for f in "$IPHONE" "$V6"; do
    compare zero "ZERO $(basename "$f")" "$f" ip.id ip.dsfield ipv6.tclass ipv6.flow \
        tcp.seq_raw tcp.window_size_value udp.srcport -- "IP,ID,ZERO" "IP,TOS,ZERO" \
        "IP,FLOW,ZERO" "TCP,SEQUENCE_NUMBER,ZERO" "TCP,WINDOW,ZERO" "UDP,SRC_PORT,ZERO"
done

# 4. STRIP.
for f in "$WEIBO" "$IPHONE" "$V6"; do
    compare strip "STRIP,10 $(basename "$f")" "$f" 10 -- "TCP,PAYLOAD,STRIP,10" \
        "UDP,PAYLOAD,STRIP,10" "IP,CHECKSUM,CHECKSUM_ADJUST"
    n=$(count_bad "$TMPD/c$N.new.tsv")
    [ "$n" -eq 0 ] || fail "STRIP $(basename "$f"): $n bad checksums after CHECKSUM_ADJUST"
done
compare strip "STRIP,0 weibo.pcap" "$WEIBO" 0 -- "TCP,PAYLOAD,STRIP,0" "UDP,PAYLOAD,STRIP,0"

# 5. RANDOM, PATTERN_FILL, MAP_DISTRIBUTION.
compare changed "RANDOM weibo.pcap" "$WEIBO" ip.id tcp.seq_raw -- \
    "IP,ID,RANDOM" "TCP,SEQUENCE_NUMBER,RANDOM"
compare pattern "PATTERN_FILL weibo.pcap" "$WEIBO" abc 7 -- \
    "TCP,PAYLOAD,PATTERN_FILL,STR,abc" "IP,TTL,PATTERN_FILL,INTEGER,7"
compare dist "MAP_DISTRIBUTION,UNIFORM iphone.pcap" "$IPHONE" ip.ttl 10 20 -- "IP,TTL,MAP_DISTRIBUTION,UNIFORM,10,20"
compare dist "MAP_DISTRIBUTION,GAUSSIAN iphone.pcap" "$IPHONE" \
    tcp.dstport 900 1100 -- "TCP,DST_PORT,MAP_DISTRIBUTION,GAUSSIAN,1000,10"

# 6. Other flows on the device see the original packets.
dump()
{
    tcpdump -r "$1" -tt -n -xx 2>/dev/null
    tcpdump -r "$1" -tt -n -e 2>/dev/null
}
dump "$WEIBO" >"$TMPD/want.txt"
for opt in -p -P; do
    res=$("$ANON" "$opt" "$TMPD/plain$opt.pcap" "$WEIBO" "$TMPD/anon$opt.pcap" "IP,SRC_IP,MAP" \
        "TCP,PAYLOAD,ZERO" "IP,TTL,ZERO" "TCP,PAYLOAD,STRIP,3" "IP,CHECKSUM,CHECKSUM_ADJUST" \
        2>&1) || true
    dump "$TMPD/plain$opt.pcap" >"$TMPD/got.txt"
    dump "$TMPD/anon$opt.pcap" >"$TMPD/anon.txt"
    if [ "$res" = "ok 498" ] && cmp -s "$TMPD/want.txt" "$TMPD/got.txt" &&
        ! cmp -s "$TMPD/want.txt" "$TMPD/anon.txt"; then
        pass "plain flow ($opt): the original packets byte for byte; the other flow anonymised"
    else
        fail "plain flow ($opt): '$res', or the plain file differs from the original"
        diff "$TMPD/want.txt" "$TMPD/got.txt" | head -n 6
    fi
done

# 7. Truncated packets.
editcap -F pcap -s 60 "$WEIBO" "$TMPD/cut.pcap" 2>/dev/null
compare trunc "snaplen 60 weibo.pcap" "$TMPD/cut.pcap" -- "IP,TTL,ZERO" \
    "TCP,SRC_PORT,MAP" "IP,CHECKSUM,CHECKSUM_ADJUST"
editcap -F pcap -s 60 "$IPHONE" "$TMPD/cut6.pcap" 2>/dev/null
# On cut packets, functions that keep or shrink lengths never make a packet longer than its
# capture; the captured part of a cut payload is anonymised (ZERO gives zeros); functions that
# grow a field (REPLACE, HASHED) keep caplen <= wlen; mapid survives all of them.
# caplens OUT.txt FILE: "caplen wlen" per record of the pcap FILE.
caplens()
{
    "$PY" - "$1" <<'EOF2'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
pos = 24
while pos + 16 <= len(d):
    _, _, incl, orig = struct.unpack(e + "IIII", d[pos:pos + 16])
    print(incl, orig)
    pos += 16 + incl
EOF2
}
caplens "$TMPD/cut6.pcap" >"$TMPD/cut6.len"
if anon "$TMPD/cutsame.pcap" "$TMPD/cut6.pcap" "UDP,PAYLOAD,ZERO" "TCP,PAYLOAD,STRIP,2" \
    "TCP,TCP_OPTIONS,RANDOM" "IP,OPTIONS,ZERO" "IP,SRC_IP,PREFIX_PRESERVING,key" \
    "IP,DST_IP,MAP" "ICMP,PAYLOAD,PATTERN_FILL,STR,zz" "IP,CHECKSUM,CHECKSUM_ADJUST"; then
    caplens "$TMPD/cutsame.pcap" >"$TMPD/cutsame.len"
    grew=$(paste -d ' ' "$TMPD/cut6.len" "$TMPD/cutsame.len" |
        awk '$3 > $1 || $3 > $4 || $4 > $2 { n++ } END { print n + 0 }')
    zeros=$(fields "$TMPD/cutsame.pcap" | awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $c["frame.cap_len"] < $c["frame.len"] && $c["udp.payload"] != "" {
            n++; if ($c["udp.payload"] !~ /^0+$/) bad++ } END { print n + 0, bad + 0 }')
    if [ "$(wc -l <"$TMPD/cutsame.len")" -eq 500 ] && [ "$grew" -eq 0 ] &&
        [ "${zeros#* }" = 0 ] && [ "${zeros% *}" -gt 0 ]; then
        pass "60-byte capture: no packet grew, ${zeros% *} cut UDP payloads zeroed as captured"
    else
        fail "60-byte capture: $grew packets grew; cut UDP payloads (seen, not zero): $zeros"
    fi
fi
if anon "$TMPD/cutgrow.pcap" "$TMPD/cut6.pcap" "UDP,PAYLOAD,REPLACE,xxxxxxxxxxxxxxxxxxxxxxxxx" \
    "TCP,PAYLOAD,HASHED,SHA_2" "UDP,PAYLOAD,REGEXP,(.),1,yy" "IP,CHECKSUM,CHECKSUM_ADJUST"; then
    bad=$(caplens "$TMPD/cutgrow.pcap" | awk '$1 > $2 { n++ } END { print n + 0 }')
    if [ "$bad" -eq 0 ]; then
        pass "60-byte capture, growing functions: caplen <= wlen everywhere"
    else
        fail "60-byte capture, growing functions: $bad packets with caplen > wlen"
    fi
fi
mapid_alive anon || die "mapid died on truncated packets"

# 8. Bad rules, and the spelling.
berr()
{
    local rule=$1 want=$2 part=$3 res
    res=$("$ANON" "$WEIBO" "$TMPD/err.pcap" "IP,TTL,ZERO" "$rule" 2>&1) || true
    case $res in
    "ERR 2 $want "*"$part"*) pass "\"$rule\": $want, \"${res#ERR 2 "$want" }\"" ;;
    *) fail "\"$rule\": '$res', expected ERR 2 $want naming $part" ;;
    esac
}
berr "IPX,SRC_IP,ZERO" 7001 IPX
berr "IP,SRC_MAC,ZERO" 7002 SRC_MAC
berr "IP,VERSION,ZERO" 7002 VERSION
berr "UDP,SEQUENCE_NUMBER,ZERO" 7002 SEQUENCE_NUMBER
berr "TCP,SRC_PORT,STRIP,0" 7002 STRIP
berr "IP,TTL,SHUFFLE" 7003 SHUFFLE
berr "TCP,PAYLOAD,STRIP" 7004 STRIP
berr "TCP,PAYLOAD,STRIP,x" 7004 x
berr "IP,TTL,MAP_DISTRIBUTION,POISSON,1,2" 7004 POISSON
berr "IP,SRC_IP,PREFIX_PRESERVING" 7004 anon_key_file
berr "TCP,PAYLOAD,HASHED,MD4" 7004 MD4
berr "TCP,PAYLOAD,REGEXP,(a,1,b" 7004 "bad pattern"
if anon "$TMPD/canon.pcap" "$WEIBO" "IP,TTL,ZERO" "TCP,PAYLOAD,STRIP,5" \
    "IP,CHECKSUM,CHECKSUM_ADJUST" &&
    anon "$TMPD/loose.pcap" "$WEIBO" " ip , ttl , zero " "Tcp,Payload , strip,  5" \
        "ip,checksum,Checksum_Adjust"; then
    if cmp -s "$TMPD/canon.pcap" "$TMPD/loose.pcap"; then
        pass "lower case and blanks around commas: the same file"
    else
        fail "lower case and blanks around commas give another file"
    fi
fi

# 9. PRINT_PACKET: the first 3 packets in mapid's output.
tcpdump -r "$WEIBO" -c 3 -w "$TMPD/three.pcap" 2>/dev/null
before=$(cat "$TMPD/anon.out" "$TMPD/anon.log" 2>/dev/null | grep -c '192\.168\.1\.105' || true)
if anon "$TMPD/printed.pcap" "$TMPD/three.pcap" "=PRINT_PACKET"; then
    sleep 0.2
    after=$(cat "$TMPD/anon.out" "$TMPD/anon.log" 2>/dev/null | grep -c '192\.168\.1\.105' || true)
    if [ $((after - before)) -ge 3 ]; then
        pass "PRINT_PACKET: $((after - before)) lines with the packets' address in mapid's output"
    else
        fail "PRINT_PACKET: $((after - before)) lines with 192.168.1.105 in mapid's output"
    fi
fi

mapid_alive anon || fail "mapid died"
stop_mapid anon
finish
