#!/usr/bin/env bash
# tests/test_multi_client.sh - several clients of one mapid.
#  1. Two clients read the same trace at the same time (each starts its offline device at the
#     same moment), with different filters: each gets its own correct counts (tcpdump oracle).
#  2. Clients killed with SIGKILL while they hold flows (one waiting before its start, one
#     with a full TO_BUFFER ring that mapid is blocked on): mapid stays up, their flows
#     disappear from mapi_get_next_flow_info, a later client works, and mapid still stops
#     cleanly.
#
# Usage: test_multi_client.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

# flow_count: the number of flows mapid lists (mapi_get_next_flow_info), or "ERR".
flow_count()
{
    local out
    if out=$("$TBIN/mapi_flows" 2>"$TMPD/flows.err"); then
        echo "$out" | sed -n 's/^flows //p'
    else
        echo ERR
    fi
}

# A bigger trace of mixed traffic: several captures one after the other.
mergecap -F pcap -a -w "$TMPD/big.pcap" "$DATA/weibo.pcap" "$DATA/iphone.pcap" \
    "$DATA/weibo.pcap" "$DATA/iphone.pcap" "$DATA/weibo.pcap" "$DATA/iphone.pcap"
A_FILTERS=("tcp" "udp" "")
B_FILTERS=("tcp and dst port 80" "not tcp" "greater 1000" "udp and port 53")
"$PY" "$SRC/tests/oracle.py" "$TMPD/big.pcap" "${A_FILTERS[@]}" >"$TMPD/a.want"
"$PY" "$SRC/tests/oracle.py" "$TMPD/big.pcap" "${B_FILTERS[@]}" >"$TMPD/b.want"
"$PY" "$SRC/tests/oracle.py" "$DATA/weibo.pcap" "tcp and dst port 80" >"$TMPD/later.want"

BUFFER_SIZE=1M
start_mapid multi

# 1. Two clients at once.
"$TBIN/mapi_count" -w "$TMPD/go" "$TMPD/big.pcap" pcap "${A_FILTERS[@]}" >"$TMPD/a.out" &
pa=$!
track_pid "$pa"
"$TBIN/mapi_count" -w "$TMPD/go" "$TMPD/big.pcap" pcap "${B_FILTERS[@]}" >"$TMPD/b.out" &
pb=$!
track_pid "$pb"
wait_ready "$TMPD/a.out" "$pa" || die "client A did not get ready"
wait_ready "$TMPD/b.out" "$pb" || die "client B did not get ready"
n=$(flow_count)
if [ "$n" = "$((${#A_FILTERS[@]} + ${#B_FILTERS[@]}))" ]; then
    pass "mapi_get_next_flow_info lists the $n flows of both clients"
else
    fail "mapi_get_next_flow_info lists $n flows, expected $((${#A_FILTERS[@]} + ${#B_FILTERS[@]})) ($(cat "$TMPD/flows.err"))"
fi
touch "$TMPD/go"
wait "$pa" || fail "client A failed"
wait "$pb" || fail "client B failed"
grep -vx ready "$TMPD/a.out" >"$TMPD/a.got" || true
grep -vx ready "$TMPD/b.out" >"$TMPD/b.got" || true
if cmp -s "$TMPD/a.want" "$TMPD/a.got" && cmp -s "$TMPD/b.want" "$TMPD/b.got"; then
    pass "two simultaneous clients, different filters: both agree with tcpdump"
else
    fail "simultaneous clients disagree with tcpdump (want | got):"
    paste "$TMPD/a.want" "$TMPD/a.got"
    paste "$TMPD/b.want" "$TMPD/b.got"
fi

# 2. Clients killed while they hold flows.
"$TBIN/mapi_count" -w "$TMPD/never" -t 600 "$TMPD/big.pcap" pcap tcp udp >"$TMPD/k1.out" &
k1=$!
track_pid "$k1"
"$TBIN/mapi_dump" -s "$TMPD/big.pcap" pcap "$TMPD/k2.pcap" EN10MB >"$TMPD/k2.out" &
k2=$!
track_pid "$k2"
wait_ready "$TMPD/k1.out" "$k1" || die "client K1 did not get ready"
wait_ready "$TMPD/k2.out" "$k2" || die "client K2 did not get ready"
sleep 0.5 # K2's ring (1 MiB) is smaller than the trace: it fills up and mapid waits for room
n=$(flow_count)
[ "$n" = 3 ] || fail "before the kill mapid lists $n flows, expected 3"
kill -KILL "$k1" "$k2"
{ wait "$k1" || true; } 2>/dev/null
{ wait "$k2" || true; } 2>/dev/null
for i in $(seq 100); do
    n=$(flow_count)
    [ "$n" != 0 ] || break
    [ "$i" -eq 100 ] || sleep 0.05
done
if [ "$n" = 0 ]; then
    pass "the flows of the killed clients are gone"
else
    fail "5 s after SIGKILL of its clients mapid still lists $n flows"
    "$TBIN/mapi_flows" || true
fi
mapid_alive multi || die "mapid died when its clients were killed"
"$TBIN/mapi_count" "$DATA/weibo.pcap" pcap "tcp and dst port 80" >"$TMPD/later.got" ||
    fail "a client after the kills failed"
if cmp -s "$TMPD/later.want" "$TMPD/later.got"; then
    pass "a later client works: $(cat "$TMPD/later.got")"
else
    fail "a later client: want $(cat "$TMPD/later.want"), got $(cat "$TMPD/later.got")"
fi

stop_mapid multi
finish
