#!/usr/bin/env bash
# tests/test_counts.sh - BPF_FILTER + PKT_COUNTER + BYTE_COUNTER on real captures, compared
# with tcpdump: packet counts with `tcpdump --count`, bytes with the sum of the wire lengths of
# the packets that `tcpdump -w -` selects (tests/oracle.py; it also checks its reading of the
# lengths against tshark's frame.len for every whole capture).
#
# Captures: Ethernet IPv4+IPv6 (weibo, iphone), IPv6 only (http_ipv6), 802.1Q VLAN (ajp),
# QinQ (QinQpacket), Linux cooked SLL (log4j-webapp-exploit); and iphone.pcap converted at
# test time to ERF (traceconvert), pcapng and nanosecond pcap (editcap), which must give the
# counts of the original. A filter that tcpdump rejects for a link type must fail with 1025.
#
# Usage: test_counts.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

FILTERS=(
    ""
    "ip"
    "ip6"
    "tcp"
    "udp"
    "arp"
    "icmp"
    "icmp6"
    "not ip"
    "vlan"
    "vlan and tcp"
    "vlan and udp"
    "tcp and dst port 80"
    "portrange 1024-2048"
    "tcp portrange 8000-9100"
    "tcp[tcpflags] & tcp-syn != 0"
    "net 192.168.0.0/16"
    "src net 10.0.0.0/8"
    "dst net 192.168.1.0 mask 255.255.255.0"
    "net 2a00::/16"
    "greater 1000"
    "less 100"
    "udp and port 53"
    "ip6 and tcp"
    "ip[6:2] & 0x1fff = 0"
    "ether broadcast"
    "ip multicast or ip6 multicast"
)
FILES=(weibo.pcap iphone.pcap http_ipv6.pcap ajp.pcap QinQpacket.pcap log4j-webapp-exploit.pcap)

# oracle FILE OUT: one line per filter: filter <TAB> packets <TAB> bytes, or filter <TAB> ERR <TAB> -
# (tests/oracle.py: tcpdump's selection; its parsing is checked against tshark's frame.len).
oracle()
{
    "$PY" "$SRC/tests/oracle.py" --tshark "$1" "${FILTERS[@]}" >"$2"
}

# compare NAME ORACLE MAPI_OUTPUT: checks every filter's line.
compare()
{
    local name=$1 want=$2 got=$3 bad
    if [ "$(wc -l <"$got")" -ne "${#FILTERS[@]}" ]; then
        fail "$name: mapi_count printed $(wc -l <"$got") lines for ${#FILTERS[@]} filters"
        cat "$got"
        return 0
    fi
    bad=$(paste "$want" "$got" | awk -F '\t' '
        $2 == "ERR" { if (!($5 == "ERR" && $6 == 1025))
                          printf "  \"%s\": tcpdump rejects it, mapi gave %s %s (want ERR 1025)\n", $1, $5, $6
                      next }
        $1 != $4 || $2 != $5 || $3 != $6 {
            printf "  \"%s\": tcpdump %s pkts %s bytes, mapi %s %s\n", $1, $2, $3, $5, $6 }')
    if [ -n "$bad" ]; then
        fail "$name:"
        echo "$bad"
    else
        pass "$name: ${#FILTERS[@]} filters agree with tcpdump"
    fi
}

# Oracles of all captures, in the background while mapid starts.
pids=""
for f in "${FILES[@]}"; do
    oracle "$DATA/$f" "$TMPD/$f.want" &
    pids="$pids $!"
done

# The converted captures.
to_erf "$DATA/iphone.pcap" "$TMPD/iphone.erf" || die "traceconvert failed"
to_erf "$DATA/ajp.pcap" "$TMPD/ajp.erf" || die "traceconvert failed"
editcap -F pcapng "$DATA/iphone.pcap" "$TMPD/iphone.pcapng"
editcap -F nsecpcap "$DATA/iphone.pcap" "$TMPD/iphone-ns.pcap"
# The conversions must keep every packet (checked with tcpdump where it can read the result).
for conv in iphone.pcapng iphone-ns.pcap; do
    [ "$(tcpdump_count "$TMPD/$conv" "")" = "$(tcpdump_count "$DATA/iphone.pcap" "")" ] ||
        die "editcap lost packets in $conv"
done

start_mapid counts

for f in "${FILES[@]}"; do
    "$TBIN/mapi_count" "$DATA/$f" pcap "${FILTERS[@]}" >"$TMPD/$f.got" ||
        fail "$f: mapi_count failed"
done
"$TBIN/mapi_count" "$TMPD/iphone.erf" erf "${FILTERS[@]}" >"$TMPD/iphone.erf.got" ||
    fail "iphone.erf: mapi_count failed"
"$TBIN/mapi_count" "$TMPD/ajp.erf" erf "${FILTERS[@]}" >"$TMPD/ajp.erf.got" ||
    fail "ajp.erf: mapi_count failed"
for conv in iphone.pcapng iphone-ns.pcap; do
    "$TBIN/mapi_count" "$TMPD/$conv" pcap "${FILTERS[@]}" >"$TMPD/$conv.got" ||
        fail "$conv: mapi_count failed"
done

for p in $pids; do
    wait "$p" || die "computing the tcpdump oracle failed"
done

for f in "${FILES[@]}"; do
    compare "$f" "$TMPD/$f.want" "$TMPD/$f.got"
done
compare "iphone.pcap as ERF" "$TMPD/iphone.pcap.want" "$TMPD/iphone.erf.got"
compare "ajp.pcap as ERF" "$TMPD/ajp.pcap.want" "$TMPD/ajp.erf.got"
compare "iphone.pcap as pcapng" "$TMPD/iphone.pcap.want" "$TMPD/iphone.pcapng.got"
compare "iphone.pcap as nanosecond pcap" "$TMPD/iphone.pcap.want" "$TMPD/iphone-ns.pcap.got"

# Function sharing: every filter twice on one device. The second flow of each pair has the same
# chain and start, so mapid runs the chain once and copies the results; both must be right.
"$TBIN/mapi_count" "$DATA/weibo.pcap" pcap "${FILTERS[@]}" "${FILTERS[@]}" >"$TMPD/twice.got" ||
    fail "weibo.pcap with every filter twice: mapi_count failed"
head -n "${#FILTERS[@]}" "$TMPD/twice.got" >"$TMPD/twice1.got"
tail -n "${#FILTERS[@]}" "$TMPD/twice.got" >"$TMPD/twice2.got"
compare "weibo.pcap, first of two identical flows" "$TMPD/weibo.pcap.want" "$TMPD/twice1.got"
compare "weibo.pcap, second of two identical flows" "$TMPD/weibo.pcap.want" "$TMPD/twice2.got"

# The oracle itself must not be degenerate: most filters match something somewhere.
nonzero=$(cat "$TMPD"/*.pcap.want | awk -F '\t' '$2 != "ERR" && $2 > 0 { print $1 }' | sort -u | wc -l)
if [ "$nonzero" -lt 20 ]; then
    fail "only $nonzero filters match any packet: the test captures are too poor"
fi

mapid_alive counts || fail "mapid died"
stop_mapid counts
finish
