#!/usr/bin/env bash
# tests/test_live.sh - live capture (root only; exits 77 = skipped otherwise).
#
# Two network namespaces joined by a veth pair, addresses from the benchmarking range
# 198.18.0.0/15, IPv6 disabled and static ARP entries, so that no packet crosses the link
# except the ones the test sends. mapid runs in namespace A with a [driver] section for its
# veth end; a client there (tests/mapi_live.c) connects flows with PKT_COUNTER and
# BYTE_COUNTER, BPF_FILTER "udp and dst port 9" + counters, and TO_BUFFER. Namespace B then
# sends exactly N UDP packets to 198.18.0.1 port 9 with payload sizes cycling from 18 to 1400
# bytes (a burst, then the last five 0.2 s apart, so that a packet that waits in a capture
# buffer for more traffic to arrive is noticed), and the counts, the byte sums (wire length =
# payload + 42: Ethernet, IPv4, UDP) and the packets delivered by TO_BUFFER must be exact; so
# must STATS over the packet sizes, HASHSAMP keeping all of them, and the packets summed over
# 200 ms BUCKETs (which close on a quiet link too).
#
# Usage: test_live.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the live test needs root (network namespaces)"
    exit 77
fi
common_init "$@"

N=1000
NSA=mapitest-$$-a
NSB=mapitest-$$-b
MAC_A=02:00:5e:12:00:01
MAC_B=02:00:5e:12:00:02
CLEANUP_CMDS="ip netns del $NSA 2>/dev/null; ip netns del $NSB 2>/dev/null"

if ! ip netns add "$NSA" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
fi
ip netns add "$NSB"
for ns in "$NSA" "$NSB"; do
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$NSA" link add mapi0 address "$MAC_A" type veth peer name mapi1 address "$MAC_B" netns "$NSB"
ip -n "$NSA" addr add 198.18.0.1/30 dev mapi0
ip -n "$NSB" addr add 198.18.0.2/30 dev mapi1
ip -n "$NSA" neigh add 198.18.0.2 lladdr "$MAC_B" dev mapi0 nud permanent
ip -n "$NSB" neigh add 198.18.0.1 lladdr "$MAC_A" dev mapi1 nud permanent
ip -n "$NSA" link set mapi0 up
ip -n "$NSB" link set mapi1 up

start_mapid live "$(printf '[driver]\ndevice=mapi0\ndriver=mapinicdrv.so\npromisc=1')" \
    ip netns exec "$NSA"

ip netns exec "$NSA" env MAPI_CONF="$MAPI_CONF" "$TBIN/mapi_live" mapi0 "$N" 30 \
    >"$TMPD/client.out" 2>"$TMPD/client.err" &
client=$!
track_pid "$client"
for _ in $(seq 200); do
    grep -qx ready "$TMPD/client.out" && break
    kill -0 "$client" 2>/dev/null || break
    sleep 0.05
done
grep -qx ready "$TMPD/client.out" || die "the live client did not get ready: $(cat "$TMPD/client.err")"
sleep 0.5

# Send the packets; the sender prints the expected byte total (payload + 42 per packet).
want_bytes=$(ip netns exec "$NSB" "$PY" - "$N" <<'EOF'
import socket, struct, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total = 0
for i in range(n):
    size = 18 + (i * 37) % (1400 - 18 + 1)
    s.sendto(struct.pack("!I", i) + bytes(size - 4), ("198.18.0.1", 9))
    total += size + 42
    if i % 50 == 49:
        time.sleep(0.002)  # stay well below the receive backlog of the veth
    if i >= n - 5:
        time.sleep(0.2)  # the last packets one by one: each must arrive on its own
print(total)
EOF
)

wait "$client" || die "the live client failed: $(cat "$TMPD/client.err")"
get()
{
    sed -n "s/^$1 //p" "$TMPD/client.out"
}
check()
{
    if [ "$(get "$1")" = "$2" ]; then
        pass "$1 = $2"
    else
        fail "$1 = $(get "$1"), expected $2"
    fi
}
check all_pkts "$N"
check all_bytes "$want_bytes"
check udp9_pkts "$N"
check udp9_bytes "$want_bytes"
check buf_pkts "$N"
check buf_bytes "$want_bytes"
check buf_caplen_ok 1
check buf_seq_ok 1
# STATS over PKTINFO(PKT_SIZE): payload sizes 18 + (i * 37) % 1383, plus 42.
read -r want_min want_max <<<"$("$PY" -c "
n = $N
s = [18 + (i * 37) % 1383 + 42 for i in range(n)]
print(min(s), max(s))")"
check stats_count "$N"
check stats_sum "$want_bytes"
check stats_min "$want_min"
check stats_max "$want_max"
check hashsamp_pkts "$N"
check bucket_sum "$N"
check bucket_steps_ok 1

stop_mapid live
finish
