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

# fields FILE: path of tshark's fields of every packet of FILE (one tshark run per file, all
# files in parallel at the start): frame.number, frame.len, frame.time_epoch,
# frame.time_delta, frame.time_relative, tab-separated.
fields()
{
    echo "$TMPD/$1.tsv"
}
pids=()
for f in "${FILES[@]}"; do
    tshark -r "$DATA/$f" -T fields -e frame.number -e frame.len -e frame.time_epoch \
        -e frame.time_delta -e frame.time_relative >"$(fields "$f")" 2>/dev/null &
    pids+=($!)
done
wait "${pids[@]}"

# secs TICKS: a 32.32 value as seconds with 9 decimals (bash integers, no subprocess).
secs()
{
    local t=$1
    printf '%d.%09d' $((t >> 32)) $((((t & 0xffffffff) * 1000000000 + 2147483648) >> 32))
}

# near A B: true if the decimal seconds A and B (tshark's 9-decimal notation) differ by at most
# a microsecond; exact integer arithmetic on nanoseconds.
to_ns()
{
    local int=${1%%.*} frac=0
    [ "$1" != "$int" ] && frac=${1#*.}
    frac=${frac}000000000
    echo $((10#$int * 1000000000 + 10#${frac:0:9}))
}
near()
{
    local d=$(($(to_ns "$1") - $(to_ns "$2")))
    [ "${d#-}" -le 1000 ]
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
    total=$(wc -l <"$(fields "$f")")
    read -r _ tlen tepoch tdelta _ <<<"$(tail -n 1 "$(fields "$f")")"

    out=$(run "$f" PKTINFO 1)
    check "$f PKTINFO PKT_SIZE count" "$(echo "$out" | awk '{ print $2 }')" "$total"
    check "$f PKTINFO PKT_SIZE" "$(result_field "$out" 1)" "$tlen"

    out=$(run "$f" PKTINFO 0)
    v=$(result_field "$out" 1)
    if [ "$v" != "?" ] && near "$(secs "$v")" "$tepoch" ; then
        pass "$f PKTINFO PKT_TS: $(secs "$v") ~ $tepoch"
    else
        fail "$f PKTINFO PKT_TS: got '$out', tshark $tepoch"
    fi

    out=$(run "$f" GAP)
    v=$(result_field "$out" 1)
    if [ "$v" != "?" ] && near "$(secs "$v")" "$tdelta" ; then
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
    first=$(head -n 1 "$(fields "$f")" | cut -f 3)
    for w in "${WINDOWS[@]}"; do
        read -r start stop lo hi <<<"$w"
        # The packets with lo <= frame.time_relative <= hi (tshark's fields, compared by awk).
        sel=$(awk -F '\t' -v lo="$lo" -v hi="$hi" '$5 + 0 >= lo && $5 + 0 <= hi { print $3 }' \
            "$(fields "$f")")
        want=$(printf '%s' "$sel" | grep -c . || true)
        out=$(run "$f" STARTSTOP "$start" "$stop")
        check "$f STARTSTOP $start $stop count" "$(echo "$out" | awk '{ print $2 }')" "$want"
        v=$(result_field "$out" 1)
        if [ "$v" != "?" ] && near "$(secs "$v")" "$first" ; then
            pass "$f STARTSTOP $start $stop first ~ $first"
        else
            fail "$f STARTSTOP $start $stop first: got '$out', tshark $first"
        fi
        if [ "$want" -gt 0 ]; then
            fp=$(echo "$sel" | head -n 1)
            lp=$(echo "$sel" | tail -n 1)
            if near "$(secs "$(result_field "$out" 2)")" "$fp" &&
                near "$(secs "$(result_field "$out" 3)")" "$lp" ; then
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
first=$(head -n 1 "$(fields "$f")" | cut -f 3)
s=$("$PY" -c 'import sys; print(int(float(sys.argv[1])) + 1)' "$first")
abs_start=$("$PY" -c 'import sys, time
print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(sys.argv[1]))))' "$s")
abs_stop=$("$PY" -c 'import sys, time
print(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(sys.argv[1]) + 5)))' "$s")
want=$(awk -F '\t' -v lo="$s" -v hi=$((s + 2)) '$3 + 0 >= lo && $3 + 0 <= hi' "$(fields "$f")" |
    grep -c . || true)
check "$f STARTSTOP '$abs_start' +2s count" \
    "$(run "$f" STARTSTOP "$abs_start" +2s | awk '{ print $2 }')" "$want"
want=$(awk -F '\t' -v lo="$s" -v hi=$((s + 5)) '$3 + 0 >= lo && $3 + 0 <= hi' "$(fields "$f")" |
    grep -c . || true)
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
