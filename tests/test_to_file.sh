#!/usr/bin/env bash
# tests/test_to_file.sh - TO_FILE writes the packets of a flow to a pcap file: tests/mapi_tofile
# applies [BPF_FILTER] + TO_FILE on an offline flow, and `tcpdump -tt -n -xx` (and -e, for the
# wire lengths) of the file it writes must equal tcpdump's output for the original.
#   1. all packets (count 0) of Ethernet, Linux SLL, PPP, big-endian and raw-IP (LINKTYPE_RAW,
#      made here from iphone.pcap) captures; a nanosecond capture, compared with a microsecond
#      copy made here with the timestamps rounded to the nearest microsecond; result 11;
#      and a 4.4 MB trace (several flushes of TO_FILE's 1 MiB buffer);
#   2. with the filter "tcp": equals `tcpdump -r ORIG -w - tcp`;
#   3. count 10: exactly the first 10 packets and result 0; count above the trace's length:
#      every packet and result 11;
#   4. errors: existing file -> 3083 (file untouched), unwritable place -> 6155, format 7 ->
#      7001 (no file left behind); mapid stays up and stops cleanly;
#   5. MFF_PCAPNG (5): the same comparisons on the pcapng file (read by tcpdump), and at
#      nanosecond precision for a nanosecond capture; checked by capinfos as pcapng;
#   6. MFF_OVERWRITE (0x100) replaces an existing (longer) file; the file is complete as soon
#      as the flow is FLOW_FINISHED (copied before mapi_close_flow).
#
# Usage: test_to_file.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

# pcap_convert IN OUT MODE: rewrites a classic pcap as a little-endian microsecond pcap.
# MODE "usec": nanosecond timestamps are rounded to the nearest microsecond (half up);
# MODE "rawip": also keeps only the IPv4/IPv6 packets of an Ethernet capture, without the
# 14-byte Ethernet header, as LINKTYPE_RAW (101).
pcap_convert()
{
    "$PY" - "$1" "$2" "$3" <<'EOF'
import struct, sys
src, dst, mode = sys.argv[1:4]
data = open(src, "rb").read()
magic = data[:4]
order = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\x4d\x3c\xb2\xa1": ("<", 1),
         b"\xa1\xb2\xc3\xd4": (">", 1000), b"\xa1\xb2\x3c\x4d": (">", 1)}
e, mult = order[magic]
_, vmaj, vmin, zone, sig, snap, lt = struct.unpack(e + "IHHiIII", data[:24])
if mode == "rawip":
    assert lt == 1
    lt = 101
out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap, lt)]
pos = 24
while pos + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack(e + "IIII", data[pos:pos + 16])
    body = data[pos + 16:pos + 16 + incl]
    pos += 16 + incl
    ns = frac * mult
    usec = (ns + 500) // 1000
    if usec >= 1000000:
        sec, usec = sec + 1, usec - 1000000
    if mode == "rawip":
        if len(body) < 14 or body[12:14] not in (b"\x08\x00", b"\x86\xdd"):
            continue
        body, incl, orig = body[14:], incl - 14, orig - 14
    out.append(struct.pack("<IIII", sec, usec, incl, orig) + body)
open(dst, "wb").write(b"".join(out))
EOF
}

# dump FILE [FILTER]: tcpdump's text of the packets (timestamps, bytes, wire lengths), at the
# precision in $PRECISION (micro unless set).
PRECISION=micro
dump()
{
    local f=$1 filter=${2:-}
    if [ -n "$filter" ]; then
        tcpdump -r "$f" -w "$TMPD/filtered.pcap" "$filter" 2>/dev/null
        f=$TMPD/filtered.pcap
    fi
    tcpdump --time-stamp-precision=$PRECISION -r "$f" -tt -n -xx 2>/dev/null
    tcpdump --time-stamp-precision=$PRECISION -r "$f" -tt -n -e 2>/dev/null
}

# check NAME TRACE ORACLE WANT_RESULT COUNT [FILTER]: TO_FILE of TRACE must equal ORACLE (the
# first COUNT packets of it if COUNT > 0), and the result must be WANT_RESULT.
N=0
FORMAT=0
check()
{
    local name=$1 trace=$2 oracle=$3 want=$4 count=$5 filter=${6:-} out res
    N=$((N + 1))
    out=$TMPD/out$N.pcap
    if ! res=$("$TBIN/mapi_tofile" "$trace" "$out" "$FORMAT" "$count" ${filter:+"$filter"}); then
        fail "$name: mapi_tofile failed"
        return 0
    fi
    [ "$res" = "$want" ] || fail "$name: result $res, expected $want"
    if [ "$count" -gt 0 ]; then
        # The first COUNT packets that pass the filter.
        tcpdump -r "$oracle" -c "$count" -w "$TMPD/first.pcap" ${filter:+"$filter"} 2>/dev/null
        oracle=$TMPD/first.pcap
        filter=
    fi
    dump "$oracle" "$filter" >"$TMPD/want.txt"
    dump "$out" >"$TMPD/got.txt"
    if [ ! -s "$TMPD/want.txt" ]; then
        fail "$name: the oracle printed nothing"
    elif cmp -s "$TMPD/want.txt" "$TMPD/got.txt"; then
        pass "$name: $(tcpdump -r "$out" 2>/dev/null | wc -l) packets identical, result $res"
    else
        fail "$name: the written file differs from the original; first differences:"
        diff "$TMPD/want.txt" "$TMPD/got.txt" | head -n 10
    fi
}

pcap_convert "$DATA/iphone.pcap" "$TMPD/rawip.pcap" rawip
pcap_convert "$DATA/doq-nsec.pcap" "$TMPD/doq-usec.pcap" usec
start_mapid tofile

# 1. Every packet, several link types.
for f in iphone.pcap weibo.pcap QinQpacket.pcap RADIUS-RFC4675.pcap log4j-webapp-exploit.pcap \
    mpls-traceroute.pcap pptp.pcap; do
    check "$f" "$DATA/$f" "$DATA/$f" 11 0
done
check "raw IP (LINKTYPE_RAW)" "$TMPD/rawip.pcap" "$TMPD/rawip.pcap" 11 0
check "doq-nsec.pcap (ns rounded to us)" "$DATA/doq-nsec.pcap" "$TMPD/doq-usec.pcap" 11 0
# The file header: magic, version 2.4, the original's snaplen and link type.
"$TBIN/mapi_tofile" "$DATA/iphone.pcap" "$TMPD/hdr.pcap" 1 0 >/dev/null
want=$("$PY" -c 'import struct,sys; h=open(sys.argv[1],"rb").read(24); print(struct.unpack("<I",h[16:20])[0], struct.unpack("<I",h[20:24])[0])' "$DATA/iphone.pcap")
got=$(od -An -tx1 -N8 "$TMPD/hdr.pcap" | tr -d ' \n')
[ "$got" = "d4c3b2a102000400" ] || fail "header of a MFF_RAW file: magic/version bytes $got"
got=$("$PY" -c 'import struct,sys; h=open(sys.argv[1],"rb").read(24); print(struct.unpack("<I",h[16:20])[0], struct.unpack("<I",h[20:24])[0])' "$TMPD/hdr.pcap")
if [ "$got" = "$want" ]; then
    pass "MFF_RAW writes the pcap header (snaplen, link type: $got)"
else
    fail "header snaplen/link type $got, expected $want"
fi

# 2. Behind a filter.
for f in iphone.pcap weibo.pcap log4j-webapp-exploit.pcap; do
    check "$f, filter tcp" "$DATA/$f" "$DATA/$f" 11 0 tcp
done

# A trace of about 4.4 MB: several flushes of the 1 MiB buffer, records split across them.
copies=()
for _ in $(seq 16); do
    copies+=("$DATA/weibo.pcap")
done
mergecap -F pcap -a -w "$TMPD/big.pcap" "${copies[@]}"
check "weibo.pcap x16 (4.4 MB)" "$TMPD/big.pcap" "$TMPD/big.pcap" 11 0

# 3. Count limits.
check "iphone.pcap, count 10" "$DATA/iphone.pcap" "$DATA/iphone.pcap" 0 10
check "iphone.pcap, count 1" "$DATA/iphone.pcap" "$DATA/iphone.pcap" 0 1
n=$(tcpdump_count "$DATA/iphone.pcap" "")
check "iphone.pcap, count $n (= the trace)" "$DATA/iphone.pcap" "$DATA/iphone.pcap" 0 "$n"
check "iphone.pcap, count 100000" "$DATA/iphone.pcap" "$DATA/iphone.pcap" 11 100000
check "weibo.pcap, filter tcp, count 10" "$DATA/weibo.pcap" "$DATA/weibo.pcap" 0 10 tcp
check "weibo.pcap x16, count 5000" "$TMPD/big.pcap" "$TMPD/big.pcap" 0 5000

# 4. Errors.
echo keep >"$TMPD/exists.pcap"
res=$("$TBIN/mapi_tofile" "$DATA/iphone.pcap" "$TMPD/exists.pcap" 0 0) || res="client failed"
[ "$res" = "ERR 3083" ] || fail "existing file: got '$res', expected ERR 3083"
[ "$(cat "$TMPD/exists.pcap")" = keep ] || fail "existing file was modified"
res=$("$TBIN/mapi_tofile" "$DATA/iphone.pcap" "$TMPD/nodir/out.pcap" 0 0) || res="client failed"
[ "$res" = "ERR 6155" ] || fail "file in a missing directory: got '$res', expected ERR 6155"
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$TMPD/ro" && chmod 555 "$TMPD/ro"
    res=$("$TBIN/mapi_tofile" "$DATA/iphone.pcap" "$TMPD/ro/out.pcap" 0 0) || res="client failed"
    [ "$res" = "ERR 6155" ] || fail "file in a read-only directory: got '$res', expected ERR 6155"
fi
res=$("$TBIN/mapi_tofile" "$DATA/iphone.pcap" "$TMPD/badfmt.pcap" 7 0) || res="client failed"
[ "$res" = "ERR 7001" ] || fail "format 7: got '$res', expected ERR 7001"
[ ! -e "$TMPD/badfmt.pcap" ] || fail "format 7 left its file behind"
[ "$FAILURES" -ne 0 ] || pass "errors: 3083 (exists), 6155 (cannot create), 7001 (format)"
# After the errors mapid still works.
check "iphone.pcap after the errors" "$DATA/iphone.pcap" "$DATA/iphone.pcap" 11 0

# 5. pcapng.
FORMAT=5
for f in iphone.pcap weibo.pcap pptp.pcap; do
    check "$f as pcapng" "$DATA/$f" "$DATA/$f" 11 0
done
check "weibo.pcap as pcapng, filter tcp, count 10" "$DATA/weibo.pcap" "$DATA/weibo.pcap" 0 10 tcp
PRECISION=nano
check "doq-nsec.pcap as pcapng, nanoseconds" "$DATA/doq-nsec.pcap" "$DATA/doq-nsec.pcap" 11 0
PRECISION=micro
fmt=$(capinfos -t "$TMPD/out$N.pcap" 2>/dev/null | awk -F': *' '/File type/ {print $2}')
case "$fmt" in
*pcapng*) pass "capinfos: $fmt" ;;
*) fail "capinfos file type of the pcapng output: '$fmt'" ;;
esac

# 6. Overwriting, and a file complete at FLOW_FINISHED.
head -c 200000 /dev/urandom >"$TMPD/old.pcap"
res=$(MAPI_TOFILE_SNAPSHOT=$TMPD/snap.pcap "$TBIN/mapi_tofile" "$DATA/iphone.pcap" \
    "$TMPD/old.pcap" $((0x100)) 0) || res="client failed"
dump "$DATA/iphone.pcap" >"$TMPD/want.txt"
dump "$TMPD/old.pcap" >"$TMPD/got.txt"
dump "$TMPD/snap.pcap" >"$TMPD/snap.txt"
if [ "$res" = 11 ] && cmp -s "$TMPD/want.txt" "$TMPD/got.txt" &&
    cmp -s "$TMPD/old.pcap" "$TMPD/snap.pcap"; then
    pass "MFF_OVERWRITE replaced a longer file; complete at FLOW_FINISHED"
else
    fail "MFF_OVERWRITE: result '$res', or the file (or its copy at FLOW_FINISHED) differs"
fi

mapid_alive tofile || fail "mapid died"
stop_mapid tofile
finish
