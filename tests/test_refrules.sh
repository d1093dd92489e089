#!/usr/bin/env bash
# tests/test_refrules.sh - the rules of function references inside mapid (daemon/mapid/refs.c)
# and of queued results, through tests/mapi_refrules.c:
#   refused: a flow on another device (7002), a flow created later (7002), a closed flow
#   (7002), a fid not applied yet in the own flow (7003), a function without a numeric result
#   (7003), a closed flow in SYNC's list (7001); SYNC may list a later flow;
#   queues: HASHSAMP without a queue gives 6146, BUCKET "-1" gives exactly one record and
#   then 6158;
#   values: BINOP ADD of two earlier flows' counters equals tcpdump's count of tcp plus udp,
#   and a referenced flow's counter equals tcpdump's count after the referencing flow closed.
#
# Usage: test_refrules.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

start_mapid refrules
T1=$DATA/weibo.pcap
T2=$DATA/iphone.pcap
out=$("$TBIN/mapi_refrules" "$T1" "$T2") || fail "mapi_refrules failed"
tcp=$(tcpdump -r "$T1" -n tcp 2>/dev/null | wc -l)
udp=$(tcpdump -r "$T1" -n udp 2>/dev/null | wc -l)

expect()
{
    local name=$1 want=$2 got
    got=$(awk -v n="$name" '$1 == n {print $2}' <<<"$out")
    if [ "$got" = "$want" ]; then
        pass "$name: $got"
    else
        fail "$name: got '${got:-nothing}', expected $want"
    fi
}
expect other_device 7002
expect later_flow 7002
expect closed_flow 7002
expect own_later_fid 7003
expect no_result 7003
expect sync_closed 7001
expect sync_later 0
expect queue_no_queue 6146
expect bucket_records 1
expect bucket_end 6158
expect binop_sum $((tcp + udp))
expect counter_after_ref "$tcp"
[ "$tcp" -gt 0 ] && [ "$udp" -gt 0 ] || fail "the trace needs tcp and udp packets ($tcp, $udp)"

mapid_alive refrules || fail "mapid died"
stop_mapid refrules
finish
