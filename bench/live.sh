#!/usr/bin/env bash
# bench/live.sh - benchmark workload W7 (issue 3): live capture at the highest rate this
# machine can generate, mapid side by side with tcpdump.
#
# Usage: bench/live.sh BUILD_DIR [TRACE]
#
# Root only (as another user it prints a markdown note and exits 0). Builds its own test bed:
# two network namespaces (names with this script's PID) joined by a veth pair, addresses from
# the benchmarking range 198.18.0.0/15, IPv6 and forwarding disabled, so that nothing crosses
# the link but the replayed trace, and nothing leaves the namespaces. Then, for 1 flow and for
# 8 flows (LIVE_FLOWS="1 8"), with a fresh mapid each time:
#   - a private mapid in the receiving namespace with a [driver] for the receiving veth end
#     (kernel ring LIVE_RING, default 64M);
#   - bench/live_client (N flows, each a BPF_FILTER that matches every packet, a different
#     expression per flow, and PKT_COUNTER), which prints "ready" once connected;
#   - tcpdump -i VETH -w /dev/null at the same time in the same namespace (default buffer;
#     LIVE_TCPDUMP_OPTS adds options, e.g. "-B 65536" for a ring as large as mapid's);
#   - tcpreplay --topspeed of the first LIVE_PACKETS (default 1000000) packets of TRACE from
#     the sending namespace;
# waits a second, stops the client (stop file), tcpdump (SIGINT) and mapid (SIGTERM), and
# prints a markdown table: packets sent and rate (tcpreplay's report), mapid's count per flow
# and its drops (ps_drop + ps_ifdrop of mapi_stats), tcpdump's "packets captured" and
# "dropped by kernel". A note under the table gives the sends tcpreplay saw fail, the packets
# the veth itself dropped (receive backlog full: those reach neither capture), and the CPU
# time mapid and tcpdump used. LIVE_REPLAY_OPTS adds tcpreplay options (e.g. -K to preload).
#
# TRACE defaults to ${BENCH_DIR:-/tmp/mapi-bench}/bench.pcap if it exists, else to
# ${BENCH_DIR}/live-LIVE_PACKETS.pcap, generated once with gen_trace -n LIVE_PACKETS (frames
# of at most 1514 bytes; the veth MTU is 9000 anyway, for other traces). tcpreplay is installed with
# apt-get if missing. The client is BUILD_DIR/bench/live_client if built (bench/live.cmake),
# else it is compiled here against BUILD_DIR/libmapi.so.
#
# Exit status: 0 (also when skipped), 1 on a failure of the test bed.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [TRACE]" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    printf '\n> W7 skipped: needs root (network namespaces, live capture).\n'
    exit 0
fi

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/mapi-bench}
LIVE_PACKETS=${LIVE_PACKETS:-1000000}
LIVE_RING=${LIVE_RING:-64M}
LIVE_FLOWS=${LIVE_FLOWS:-1 8}
LIVE_TCPDUMP_OPTS=${LIVE_TCPDUMP_OPTS:-}
LIVE_REPLAY_OPTS=${LIVE_REPLAY_OPTS:-}

NSRX=mapibench-$$-rx
NSTX=mapibench-$$-tx
VRX=w7rx0
VTX=w7tx0
MAC_RX=02:00:5e:12:07:01
MAC_TX=02:00:5e:12:07:02
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapibench-w7.XXXXXX")
chmod 755 "$TMPD"
PIDS=""
NETNS_MADE=""

die()
{
    echo "live.sh: $*" >&2
    exit 1
}

cleanup()
{
    local rc=$? p ns
    set +e
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $PIDS; do
        for _ in $(seq 30); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
    done
    for ns in $NETNS_MADE; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$rc" -ne 0 ]; then
        for f in "$TMPD"/*.out "$TMPD"/*.err "$TMPD"/*.log; do
            [ -s "$f" ] || continue
            echo "---- $f (last 20 lines) ----" >&2
            tail -n 20 "$f" >&2
        done
    fi
    rm -rf "$TMPD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# forget PID (it has been waited for)
untrack()
{
    local p rest=""
    for p in $PIDS; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    PIDS=$rest
}

# wait_for SECONDS CMD...: true as soon as CMD succeeds, false after SECONDS.
wait_for()
{
    local n=$(($1 * 20))
    shift
    for _ in $(seq "$n"); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# ---- tools ------------------------------------------------------------------------------

if [ ! -x "$BUILD/mapid" ] || [ ! -e "$BUILD/flib/stdflib.so" ]; then
    die "build first: no $BUILD/mapid or $BUILD/flib/stdflib.so"
fi
for tool in tcpreplay tcpdump; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || die "$tool is missing (and apt-get is not here)"
        echo "installing $tool with apt-get ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >"$TMPD/apt.log" 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >"$TMPD/apt.log" 2>&1; } ||
            die "cannot install $tool: $(tail -n 3 "$TMPD/apt.log")"
    fi
done

CLIENT=$BUILD/bench/live_client
if [ ! -x "$CLIENT" ]; then
    CLIENT=$TMPD/live_client
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -I "$SRC/include" -o "$CLIENT" "$SRC/bench/live_client.c" \
        -L "$BUILD" -lmapi -Wl,-rpath,"$BUILD" || die "cannot build bench/live_client.c"
fi

TRACE=${2:-}
if [ -z "$TRACE" ]; then
    if [ -s "$BENCH_DIR/bench.pcap" ]; then
        TRACE=$BENCH_DIR/bench.pcap
    else
        mkdir -p "$BENCH_DIR"
        TRACE=$BENCH_DIR/live-$LIVE_PACKETS.pcap
        if [ ! -s "$TRACE" ]; then
            GEN=$BUILD/bench/gen_trace
            if [ ! -x "$GEN" ]; then
                GEN=$TMPD/gen_trace
                ${CC:-cc} -std=c11 -O2 -o "$GEN" "$SRC/bench/gen_trace.c" ||
                    die "cannot build bench/gen_trace.c"
            fi
            echo "generating $TRACE ($LIVE_PACKETS packets) ..." >&2
            "$GEN" -n "$LIVE_PACKETS" "$TRACE.tmp" || die "gen_trace failed"
            mv "$TRACE.tmp" "$TRACE"
        fi
    fi
fi
[ -r "$TRACE" ] || die "cannot read $TRACE"
# Into the page cache (the part that is sent: at most 1600 bytes a record), so that the
# sender does not wait for the disk.
head -c $((LIVE_PACKETS * 1600)) "$TRACE" >/dev/null

# ---- the test bed -----------------------------------------------------------------------

ip netns add "$NSRX" 2>/dev/null || die "cannot create network namespaces here"
NETNS_MADE=$NSRX
ip netns add "$NSTX"
NETNS_MADE="$NSRX $NSTX"
for ns in "$NSRX" "$NSTX"; do
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=0
done
ip -n "$NSRX" link add "$VRX" address "$MAC_RX" mtu 9000 type veth \
    peer name "$VTX" address "$MAC_TX" mtu 9000 netns "$NSTX"
ip -n "$NSRX" addr add 198.18.1.1/30 dev "$VRX"
ip -n "$NSTX" addr add 198.18.1.2/30 dev "$VTX"
ip -n "$NSRX" neigh add 198.18.1.2 lladdr "$MAC_TX" dev "$VRX" nud permanent
ip -n "$NSTX" neigh add 198.18.1.1 lladdr "$MAC_RX" dev "$VTX" nud permanent
ip -n "$NSRX" link set "$VRX" up
ip -n "$NSTX" link set "$VTX" up

# tx "dropped" of the sending veth end: packets the receiving end's backlog refused (veth
# counts them on the sender); those reach no capture. (rx "dropped" of the receiving end is
# something else: frames after the taps that no protocol took, e.g. QinQ.)
veth_tx_dropped()
{
    ip -n "$NSTX" -s -j link show dev "$VTX" 2>/dev/null |
        sed -n 's/.*"tx":{[^}]*"dropped":\([0-9]*\).*/\1/p'
}

# cpu_ms PID: user + system CPU time of a process so far, in milliseconds
cpu_ms()
{
    local hz
    hz=$(getconf CLK_TCK)
    # fields 14 and 15 of /proc/PID/stat; the command name (field 2) has no spaces here
    awk -v hz="$hz" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null ||
        echo "?"
}

# ---- one run ----------------------------------------------------------------------------

# run_once NFLOWS: writes $TMPD/run-NFLOWS.{client.out,tcpdump.err,replay.out,veth,cpu}
run_once()
{
    local nf=$1 r=$TMPD/run-$1
    local sock=$TMPD/mapid-$nf.sock stop=$TMPD/stop-$nf
    {
        echo "# private mapid of bench/live.sh (W7)"
        echo "libpath=$BUILD/flib"
        echo "libs=stdflib.so"
        echo "socket=$sock"
        echo "logfile=$r.mapid.log"
        echo "syslog_level=0"
        echo "[driver]"
        echo "device=$VRX"
        echo "driver=mapinicdrv.so"
        echo "description=W7 receiving veth end"
        echo "promisc=1"
        echo "ring_size=$LIVE_RING"
    } >"$r.conf"

    ip netns exec "$NSRX" "$BUILD/mapid" -c "$r.conf" >"$r.mapid.out" 2>&1 &
    local mapid=$!
    PIDS="$PIDS $mapid"
    wait_for 10 test -S "$sock" || die "mapid did not create its socket"
    sleep 0.1

    ip netns exec "$NSRX" env MAPI_CONF="$r.conf" "$CLIENT" "$VRX" "$nf" "$stop" \
        >"$r.client.out" 2>"$r.client.err" &
    local client=$!
    PIDS="$PIDS $client"
    wait_for 15 grep -qx ready "$r.client.out" ||
        die "live_client did not get ready: $(cat "$r.client.err")"

    # shellcheck disable=SC2086 # LIVE_TCPDUMP_OPTS is a list of options
    ip netns exec "$NSRX" tcpdump -i "$VRX" -n $LIVE_TCPDUMP_OPTS -w /dev/null \
        >"$r.tcpdump.out" 2>"$r.tcpdump.err" &
    local tcpd=$!
    PIDS="$PIDS $tcpd"
    wait_for 10 grep -q "listening on" "$r.tcpdump.err" ||
        die "tcpdump did not start: $(cat "$r.tcpdump.err")"
    sleep 0.3

    local vd0
    vd0=$(veth_tx_dropped)
    # shellcheck disable=SC2086 # LIVE_REPLAY_OPTS is a list of options
    ip netns exec "$NSTX" tcpreplay --topspeed --limit="$LIVE_PACKETS" $LIVE_REPLAY_OPTS \
        -i "$VTX" "$TRACE" \
        >"$r.replay.out" 2>&1 || die "tcpreplay failed: $(tail -n 5 "$r.replay.out")"
    sleep 1
    echo $(($(veth_tx_dropped) - vd0)) >"$r.veth"

    echo "$(cpu_ms "$mapid") $(cpu_ms "$tcpd")" >"$r.cpu"

    touch "$stop"
    wait "$client" || die "live_client failed: $(cat "$r.client.err")"
    untrack "$client"
    kill -INT "$tcpd" 2>/dev/null || true
    wait "$tcpd" || true
    untrack "$tcpd"
    kill -TERM "$mapid" 2>/dev/null || true
    wait "$mapid" || echo "live.sh: mapid exited with status $? after SIGTERM" >&2
    untrack "$mapid"
}

# ---- report -----------------------------------------------------------------------------

# kv FILE KEY: the value of a "KEY value" line
kv()
{
    sed -n "s/^$2 //p" "$1" | head -n 1
}

row()
{
    local nf=$1 r=$TMPD/run-$1
    local sent pps per_flow min max mdrop td_recv td_drop label
    sent=$(sed -n 's/^[[:space:]]*Successful packets:[[:space:]]*\([0-9]*\).*/\1/p' "$r.replay.out")
    pps=$(sed -n 's/^[[:space:]]*Rated:.*, \([0-9.]*\) pps.*/\1/p' "$r.replay.out")
    min=$(grep '^flow[0-9]* ' "$r.client.out" | awk '{ print $2 }' | sort -n | head -n 1)
    max=$(grep '^flow[0-9]* ' "$r.client.out" | awk '{ print $2 }' | sort -n | tail -n 1)
    if [ "$min" = "$max" ]; then
        per_flow=$min
        [ "$nf" -eq 1 ] || per_flow="$min (each of $nf)"
    else
        per_flow="$min .. $max"
    fi
    mdrop=$(($(kv "$r.client.out" ps_drop) + $(kv "$r.client.out" ps_ifdrop)))
    td_recv=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$r.tcpdump.err")
    td_drop=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$r.tcpdump.err")
    label="$nf flow"
    [ "$nf" -eq 1 ] || label="$nf flows"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "${sent:-?}" "${pps%.*}" \
        "$per_flow" "$mdrop" "${td_recv:-?}" "${td_drop:-?}"
}

t0=$(date +%s)
for nf in $LIVE_FLOWS; do
    run_once "$nf"
done
t1=$(date +%s)

echo
echo "### W7 live capture: tcpreplay --topspeed into a veth, mapid and tcpdump side by side"
echo
echo "Trace: \`$TRACE\`, first $LIVE_PACKETS packets; mapid ring_size=$LIVE_RING;" \
    "tcpdump \`-i $VRX -n ${LIVE_TCPDUMP_OPTS:+$LIVE_TCPDUMP_OPTS }-w /dev/null\`;" \
    "$(nproc) CPUs; $((t1 - t0)) s."
echo
echo "| run | packets sent | rate (pps) | mapid received per flow | mapid dropped (ps_drop + ps_ifdrop) | tcpdump received | tcpdump dropped |"
echo "|---|---|---|---|---|---|---|"
for nf in $LIVE_FLOWS; do
    row "$nf"
done
echo
notes=""
for nf in $LIVE_FLOWS; do
    r=$TMPD/run-$nf
    failed=$(sed -n 's/^[[:space:]]*Failed packets:[[:space:]]*\([0-9]*\).*/\1/p' "$r.replay.out")
    read -r cpu_m cpu_t <"$r.cpu"
    notes="$notes $nf: ${failed:-?} / $(cat "$r.veth") / $(kv "$r.client.out" ps_recv) / $cpu_m ms / $cpu_t ms;"
done
echo "Per number of flows: sends that failed (tcpreplay) / packets the veth dropped before any" \
    "capture (receive backlog full: tx_dropped of the sending end) / mapid's ps_recv /" \
    "CPU time of mapid / of tcpdump (user + system, from start to the end of the replay):${notes%;}."
