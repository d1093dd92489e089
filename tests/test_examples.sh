#!/usr/bin/env bash
# tests/test_examples.sh - the tutorial's example programs (examples/) run on the bundled
# capture print what tcpdump and tshark say:
#   pkt_count    "pkts: N"  = tcpdump --count of the filter
#   link_util    incoming/outgoing bytes = sum of frame.len (tshark) of dst/src host traffic
#   worm_detect  one record per packet tshark finds with the same filter and content, with
#                the same MAC and IP addresses, in the same order
#
# Usage: test_examples.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

EX=$BUILD/examples
TRACE=$DATA/weibo.pcap
HOST=192.168.1.105

start_mapid examples

# pkt_count: the tutorial's filter, and another one given on the command line.
for filter in "tcp and dst port 80" "udp"; do
    want=$(tcpdump_count "$TRACE" "$filter")
    if [ "$filter" = "tcp and dst port 80" ]; then
        got=$("$EX/pkt_count" "$TRACE") || fail "pkt_count failed"
    else
        got=$("$EX/pkt_count" "$TRACE" "$filter") || fail "pkt_count failed"
    fi
    if [ "$got" = "pkts: $want" ]; then
        pass "pkt_count \"$filter\": $got"
    else
        fail "pkt_count \"$filter\": printed '$got', tcpdump counts $want"
    fi
done

# link_util: a host and a subnet.
for host in "$HOST" 93.188.134.0/24; do
    kind=host
    case $host in */*) kind=net ;; esac
    in_want=$(wire_bytes "$TRACE" "dst $kind $host")
    out_want=$(wire_bytes "$TRACE" "src $kind $host")
    out=$("$EX/link_util" "$TRACE" "$host") || fail "link_util failed"
    in_got=$(echo "$out" | sed -n 's/^incoming: .*(\([0-9]*\) bytes)$/\1/p')
    out_got=$(echo "$out" | sed -n 's/^outgoing: .*(\([0-9]*\) bytes)$/\1/p')
    if [ "$in_got" = "$in_want" ] && [ "$out_got" = "$out_want" ] && [ "$in_want" -gt 0 ] &&
        [ "$out_want" -gt 0 ]; then
        pass "link_util $host: in $in_got bytes, out $out_got bytes"
    else
        fail "link_util $host: printed in '$in_got' out '$out_got', tshark sums in $in_want out $out_want"
        echo "$out"
    fi
done

# worm_detect: the tutorial's signature finds nothing here (nor does tcpdump) ...
want=$(tcpdump_count "$TRACE" "udp and src port 2002 and dst net 139.91.23 and dst port 80")
out=$("$EX/worm_detect" "$TRACE") || fail "worm_detect failed"
if echo "$out" | grep -qx "$want matching packets"; then
    pass "worm_detect with the Slapper signature: $want matching packets"
else
    fail "worm_detect with the Slapper signature: $(echo "$out" | tail -n 1), tcpdump: $want"
fi
# ... and a signature that matches: HTTP requests to port 80 ("GET /" anywhere in the frame).
tcpdump -r "$TRACE" -w - "tcp and dst port 80" 2>/dev/null |
    tshark -n -r - -Y 'frame contains 47:45:54:20:2f' -T fields -E separator=' ' \
        -e eth.src -e eth.dst -e ip.src -e ip.dst 2>/dev/null |
    awk '{ printf "%s -> %s\n%s -> %s\n", toupper($1), toupper($2), $3, $4 }' >"$TMPD/worm.want"
out=$("$EX/worm_detect" "$TRACE" "tcp and dst port 80" "GET /" 0) || fail "worm_detect failed"
echo "$out" | grep -E '^([0-9A-F]{2}:){5}[0-9A-F]{2} -> |^[0-9.]+ -> [0-9.]+$' >"$TMPD/worm.got" || true
n=$(($(wc -l <"$TMPD/worm.want") / 2))
if [ "$n" -gt 0 ] && cmp -s "$TMPD/worm.want" "$TMPD/worm.got" &&
    echo "$out" | grep -qx "$n matching packets" &&
    [ "$(echo "$out" | grep -c 'Signature match!')" -eq "$n" ]; then
    pass "worm_detect \"GET /\": the $n packets tshark finds, same addresses"
else
    fail "worm_detect \"GET /\": differs from tshark ($n packets); first differences:"
    diff "$TMPD/worm.want" "$TMPD/worm.got" | head -n 10
fi

stop_mapid examples
finish
