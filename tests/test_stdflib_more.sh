#!/usr/bin/env bash
# tests/test_stdflib_more.sh - PKTINFO, GAP, HASH and STARTSTOP of stdflib on real captures,
# through a private mapid and the client tests/mapi_fnresult.c, compared with independent
# oracles:
#   PKTINFO PKT_SIZE / PKT_TS   tshark's frame.len / frame.time_epoch of the last packet
#   GAP                         tshark's frame.time_delta of the last packet
#   HASH 0 (and 1 for IP over   (len + sum of bytes) % 500009 computed in python over the last
#   plain Ethernet)             record of the pcap file, read with the struct module
#   STARTSTOP relative          packet counts of tshark with a display filter on
#                               frame.time_relative; first/first_processed/last against
#                               frame.time_epoch of the first packet and of the window
#   STARTSTOP absolute          a local-time start string made by python, counted by tshark
#                               on frame.time_epoch
# plus the argument errors (7000, 7001, 7002).
#
# Usage: test_stdflib_more.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

if ! command -v tshark >/dev/null 2>&1; then
    echo "SKIP: tshark not installed"
    exit 77
fi

FILES=(weibo.pcap iphone.pcap http_ipv6.pcap ajp.pcap QinQpacket.pcap log4j-webapp-exploit.pcap
    pptp.pcap)

start_mapid sm

# run FILE FUNCTION ARG...: the output line of mapi_fnresult ("count N result ..." / "ERR N").
run()
{
    "$TBIN/mapi_fnresult" "$DATA/$1" "${@:2}" 2>"$TMPD/client.err" || {
        cat "$TMPD/client.err"
        echo "CLIENT-FAILED"
    }
}

# tlast FILE TSHARK_ARGS...: tshark's -T fields output for the last packet.
tlast()
{
    local f=$1
    shift
    tshark -r "$DATA/$f" -T fields "$@" 2>/dev/null | tail -n 1
}

# near A B TOL: true if |A - B| <= TOL (decimal strings).
near()
{
    "$PY" -c 'import sys; from decimal import Decimal as D
sys.exit(0 if abs(D(sys.argv[1]) - D(sys.argv[2])) <= D(sys.argv[3]) else 1)' "$1" "$2" "$3"
}

# secs TICKS: a 32.32 value as seconds with 9 decimals.
secs()
{
    "$PY" -c 'import sys; from decimal import Decimal as D
print("%.9f" % (D(int(sys.argv[1])) / D(2**32)))' "$1"
}

# pyhash FILE LAYER1: the additive hash of the last record of a pcap file, over the whole frame
# (LAYER1=0) or from byte 14 on (LAYER1=1, only if the frame is plain Ethernet carrying
# IPv4/IPv6; prints "-" otherwise).
pyhash()
{
    "$PY" - "$DATA/$1" "$2" <<'PYEOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = data[:4]
if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
    e = "<"
elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
    e = ">"
else:
    sys.exit("not a pcap file")
linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
off, last = 24, None
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(e + "IIII", data[off:off + 16])
    last = data[off + 16:off + 16 + incl]
    off += 16 + incl
frame = last
if sys.argv[2] == "1":
    if linktype != 1 or len(frame) < 14 or frame[12:14] not in (b"\x08\x00", b"\x86\xdd"):
        print("-")
        sys.exit(0)
    frame = frame[14:]
print((len(frame) + sum(frame)) % 500009)
PYEOF
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

# result_field LINE N: the N-th value after "result" (1-based).
result_field()
{
    echo "$1" | awk -v n="$2" '$1 == "count" && $3 == "result" { print $(3 + n); exit }
                               { print "?" }'
}

for f in "${FILES[@]}"; do
    total=$(tshark -r "$DATA/$f" -T fields -e frame.number 2>/dev/null | wc -l)
    read -r tlen tepoch tdelta <<<"$(tlast "$f" -e frame.len -e frame.time_epoch -e frame.time_delta)"

    out=$(run "$f" PKTINFO 1)
    check "$f PKTINFO PKT_SIZE count" "$(echo "$out" | awk '{ print $2 }')" "$total"
    check "$f PKTINFO PKT_SIZE" "$(result_field "$out" 1)" "$tlen"

    out=$(run "$f" PKTINFO 0)
    v=$(result_field "$out" 1)
    if [ "$v" != "?" ] && near "$(secs "$v")" "$tepoch" 0.000001; then
        pass "$f PKTINFO PKT_TS: $(secs "$v") ~ $tepoch"
    else
        fail "$f PKTINFO PKT_TS: got '$out', tshark $tepoch"
    fi

    out=$(run "$f" GAP)
    v=$(result_field "$out" 1)
    if [ "$v" != "?" ] && near "$(secs "$v")" "$tdelta" 0.000001; then
        pass "$f GAP: $(secs "$v") ~ $tdelta"
    else
        fail "$f GAP: got '$out', tshark frame.time_delta $tdelta"
    fi

    out=$(run "$f" HASH 0)
    check "$f HASH 0" "$(result_field "$out" 1)" "$(pyhash "$f" 0)"
    want=$(pyhash "$f" 1)
    if [ "$want" != "-" ]; then
        out=$(run "$f" HASH 1)
        check "$f HASH 1" "$(result_field "$out" 1)" "$want"
    fi
done

# STARTSTOP, relative windows: START STOP LOW HIGH (seconds after the first packet).
WINDOWS=(
    "+0.5s +1s 0.5 1.5"
    "+250ms +500ms 0.25 0.75"
    "+1 +2000000us 1 3"
    "+0 +0.01m 0 0.6"
    "+0s +1h 0 3600"
)
for f in weibo.pcap iphone.pcap log4j-webapp-exploit.pcap pptp.pcap; do
    first=$(tshark -r "$DATA/$f" -c 1 -T fields -e frame.time_epoch 2>/dev/null)
    for w in "${WINDOWS[@]}"; do
        read -r start stop lo hi <<<"$w"
        filter="frame.time_relative >= $lo && frame.time_relative <= $hi"
        sel=$(tshark -r "$DATA/$f" -Y "$filter" -T fields -e frame.time_epoch 2>/dev/null)
        want=$(printf '%s' "$sel" | grep -c . || true)
        out=$(run "$f" STARTSTOP "$start" "$stop")
        check "$f STARTSTOP $start $stop count" "$(echo "$out" | awk '{ print $2 }')" "$want"
        v=$(result_field "$out" 1)
        if [ "$v" != "?" ] && near "$(secs "$v")" "$first" 0.000001; then
            pass "$f STARTSTOP $start $stop first ~ $first"
        else
            fail "$f STARTSTOP $start $stop first: got '$out', tshark $first"
        fi
        if [ "$want" -gt 0 ]; then
            fp=$(echo "$sel" | head -n 1)
            lp=$(echo "$sel" | tail -n 1)
            if near "$(secs "$(result_field "$out" 2)")" "$fp" 0.000001 &&
                near "$(secs "$(result_field "$out" 3)")" "$lp" 0.000001; then
                pass "$f STARTSTOP $start $stop first_processed/last ~ $fp $lp"
            else
                fail "$f STARTSTOP $start $stop: got '$out', tshark first/last passed $fp $lp"
            fi
        else
            check "$f STARTSTOP $start $stop empty window" \
                "$(result_field "$out" 2) $(result_field "$out" 3)" "0 0"
        fi
    done
done

# STARTSTOP, absolute start (local time, the second after the first packet of iphone.pcap)
# with a relative and with an absolute stop.
f=iphone.pcap
first=$(tshark -r "$DATA/$f" -c 1 -T fields -e frame.time_epoch 2>/dev/null)
s=$("$PY" -c 'import sys; print(int(float(sys.argv[1])) + 1)' "$first")
abs_start=$("$PY" -c 'import sys, time
print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(sys.argv[1]))))' "$s")
abs_stop=$("$PY" -c 'import sys, time
print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(sys.argv[1]) + 5)))' "$s")
want=$(tshark -r "$DATA/$f" -Y "frame.time_epoch >= $s && frame.time_epoch <= $((s + 2))" \
    -T fields -e frame.number 2>/dev/null | grep -c . || true)
check "$f STARTSTOP '$abs_start' +2s count" \
    "$(run "$f" STARTSTOP "$abs_start" +2s | awk '{ print $2 }')" "$want"
want=$(tshark -r "$DATA/$f" -Y "frame.time_epoch >= $s && frame.time_epoch <= $((s + 5))" \
    -T fields -e frame.number 2>/dev/null | grep -c . || true)
check "$f STARTSTOP '$abs_start' '$abs_stop' count" \
    "$(run "$f" STARTSTOP "$abs_start" "$abs_stop" | awk '{ print $2 }')" "$want"

# Argument errors.
f=pptp.pcap
check "PKTINFO 2" "$(run "$f" PKTINFO 2)" "ERR 7001"
check "PKTINFO -1" "$(run "$f" PKTINFO -1)" "ERR 7001"
check "HASH 4" "$(run "$f" HASH 4)" "ERR 7001"
check "HASH -1" "$(run "$f" HASH -1)" "ERR 7001"
check "STARTSTOP relative start, absolute stop" \
    "$(run "$f" STARTSTOP +1s "2020-01-01 00:00:00")" "ERR 7000"
check "STARTSTOP bad start" "$(run "$f" STARTSTOP bogus +1s)" "ERR 7001"
check "STARTSTOP empty start" "$(run "$f" STARTSTOP "" +1s)" "ERR 7001"
check "STARTSTOP negative start" "$(run "$f" STARTSTOP +-1s +1s)" "ERR 7001"
check "STARTSTOP bad unit" "$(run "$f" STARTSTOP +1s +1x)" "ERR 7002"
check "STARTSTOP bad stop" "$(run "$f" STARTSTOP "2020-01-01 00:00:00" "2020-13-01 00:00:00")" \
    "ERR 7002"
check "STARTSTOP stop before start" \
    "$(run "$f" STARTSTOP "2020-01-02 00:00:00" "2020-01-01 00:00:00")" "ERR 7002"

stop_mapid sm
finish
