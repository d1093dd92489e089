#!/usr/bin/env bash
# tests/test_to_buffer.sh - TO_BUFFER + mapi_get_next_pkt deliver every packet of a trace,
# in order, byte for byte, with its timestamp: tests/mapi_dump writes what it receives to a
# pcap file, and `tcpdump -tt -n -xx` of that file must equal tcpdump's output for the original
# (same packets, same bytes, same microsecond timestamps, same wire lengths).
# Inputs: pcap files of several link types, and iphone.pcap converted to ERF (traceconvert)
# and to pcapng (editcap), which must reproduce the original pcap exactly.
#
# Usage: test_to_buffer.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

# check NAME TRACE FORMAT ORIGINAL: dumps TRACE through mapid and compares with ORIGINAL.
check()
{
    local name=$1 trace=$2 format=$3 orig=$4 lt n want
    lt=$(link_type "$orig")
    [ -n "$lt" ] || die "cannot tell the link type of $orig"
    if ! n=$("$TBIN/mapi_dump" "$trace" "$format" "$TMPD/out.pcap" "$lt"); then
        fail "$name: mapi_dump failed"
        return 0
    fi
    want=$(tcpdump_count "$orig" "")
    if [ "$n" != "$want" ]; then
        fail "$name: mapi_dump received $n packets, tcpdump reads $want"
    fi
    tcpdump -r "$orig" -tt -n -xx >"$TMPD/want.txt" 2>/dev/null
    tcpdump -r "$TMPD/out.pcap" -tt -n -xx >"$TMPD/got.txt" 2>/dev/null
    # -e shows the wire length of each frame ("length N") for the link types that print it.
    tcpdump -r "$orig" -tt -n -e >>"$TMPD/want.txt" 2>/dev/null
    tcpdump -r "$TMPD/out.pcap" -tt -n -e >>"$TMPD/got.txt" 2>/dev/null
    if cmp -s "$TMPD/want.txt" "$TMPD/got.txt"; then
        pass "$name: $n packets identical (bytes, order, timestamps)"
    else
        fail "$name: the dumped packets differ from the original; first differences:"
        diff "$TMPD/want.txt" "$TMPD/got.txt" | head -n 10
    fi
}

to_erf "$DATA/iphone.pcap" "$TMPD/iphone.erf" || die "traceconvert failed"
editcap -F pcapng "$DATA/iphone.pcap" "$TMPD/iphone.pcapng"

# Small rings (1 MiB, mapid's minimum), so that the bigger trace below wraps them many times.
BUFFER_SIZE=1M
start_mapid tobuf

for f in weibo.pcap iphone.pcap http_ipv6.pcap QinQpacket.pcap log4j-webapp-exploit.pcap; do
    check "$f" "$DATA/$f" pcap "$DATA/$f"
done
check "iphone.pcap as ERF" "$TMPD/iphone.erf" erf "$DATA/iphone.pcap"
check "iphone.pcap as pcapng" "$TMPD/iphone.pcapng" pcap "$DATA/iphone.pcap"

# Several TO_BUFFER clients at once on a bigger trace (the ring wraps many times).
copies=()
for _ in $(seq 16); do
    copies+=("$DATA/weibo.pcap")
done
mergecap -F pcap -a -w "$TMPD/big.pcap" "${copies[@]}"
tcpdump -r "$TMPD/big.pcap" -tt -n -xx >"$TMPD/big.want" 2>/dev/null
pids=""
for i in 1 2 3; do
    "$TBIN/mapi_dump" "$TMPD/big.pcap" pcap "$TMPD/big$i.pcap" EN10MB >"$TMPD/big$i.n" &
    pids="$pids $!"
done
i=0
for p in $pids; do
    i=$((i + 1))
    if ! wait "$p"; then
        fail "concurrent mapi_dump $i failed"
        continue
    fi
    tcpdump -r "$TMPD/big$i.pcap" -tt -n -xx 2>/dev/null | cmp -s - "$TMPD/big.want" ||
        fail "concurrent mapi_dump $i: output differs from the original"
done
[ "$FAILURES" -ne 0 ] || pass "3 concurrent TO_BUFFER clients, $(cat "$TMPD/big1.n") packets each, identical"

mapid_alive tobuf || fail "mapid died"
stop_mapid tobuf
finish
