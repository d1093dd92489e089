#!/usr/bin/env bash
# bench/dimapi.sh - the DiMAPI benchmark (issue 5): mapi_read_results latency over 1, 3 and 8
# remote sensors, and packets per second delivered to a remote application through TO_BUFFER
# and mapi_get_next_pkt with and without TLS, beside a local flow. Prints markdown.
#
# Usage: bench/dimapi.sh BUILD_DIR
#
# Root only (as another user it prints a markdown note and exits 0). The test bed is that of
# tests/test_dimapi.sh (tests/dimapi_env.sh): a client namespace and 8 sensor namespaces, each
# with its own mapid and a TLS mapicommd (client certificates required, EC P-256 certificates
# from a test CA), joined to the client by veth pairs 198.18.I.1 <-> 198.18.I.2, IPv6 off.
# Sensor 1 also runs a second mapicommd in plain TCP (dimapi_plaintext=1, port 2234) on the
# same mapid, and has a feed link "dfeed1" from a feeder namespace.
#
# Latency: bench/bench_dimapi latency (PKT_COUNTER, DIMAPI_BENCH_READS timed reads after 200
# warm-up reads, median/p90/p99 of the single calls), local (a client in sensor 1's namespace,
# its mapid), 1 sensor plain TCP, 1, 3 and 8 sensors over TLS: one flow over the scope, and
# (bench_dimapi -s) one flow per sensor read one after the other, what sequential round trips
# cost. (No netem here to add a network delay: the figures are CPU cost on the local machine.)
# Delivery: gen_trace -n DIMAPI_BENCH_PACKETS (cached in BENCH_DIR); per run a client connects
# a TO_BUFFER flow on dfeed1 (locally, or remotely through plain TCP or TLS), tcpreplay
# --topspeed sends the trace from the feeder namespace, the packets wait in mapid's TO_BUFFER
# ring (buffer_size=DIMAPI_BENCH_RING, large enough for all of them), then the client drains
# them: the rate is packets / (time from the start to the last packet), the delivery alone
# (the client starts the clock when its PKT_COUNTER, before TO_BUFFER, has seen every packet,
# so no sender competes for the CPUs). Each client checks it got every packet.
# DIMAPI_BENCH_RUNS runs per path, median shown.
#
# Environment: BENCH_DIR (default /tmp/mapi-bench), DIMAPI_BENCH_PACKETS (default 200000),
# DIMAPI_BENCH_RUNS (default 3), DIMAPI_BENCH_READS (default 2000), DIMAPI_BENCH_RING
# (default 512M), DIMAPI_BENCH_SENSORS (default 8).
# Exit status: 0 (also when skipped), 1 if the test bed or a measurement failed.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    printf '\n> DiMAPI benchmark skipped: needs root (network namespaces).\n'
    exit 0
fi

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/mapi-bench}
PACKETS=${DIMAPI_BENCH_PACKETS:-200000}
RUNS=${DIMAPI_BENCH_RUNS:-3}
READS=${DIMAPI_BENCH_READS:-2000}
RING=${DIMAPI_BENCH_RING:-512M}
NSENS=${DIMAPI_BENCH_SENSORS:-8}
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapibench-dimapi.XXXXXX")
chmod 755 "$TMPD"
START_S=$(date +%s)

# shellcheck source=tests/dimapi_env.sh
. "$SRC/tests/dimapi_env.sh"
denv_init "$TMPD" "$BUILD" "mapibench-$$"

log()
{
    printf '[dimapi %4ds] %s\n' "$(($(date +%s) - START_S))" "$*" >&2
}

die()
{
    log "ERROR: $*"
    exit 1
}

cleanup()
{
    local rc=$? f
    set +e
    denv_cleanup
    if [ "$rc" -ne 0 ]; then
        for f in "$TMPD"/*.out "$TMPD"/*.err; do
            [ -s "$f" ] || continue
            echo "---- $f (last 10 lines) ----" >&2
            tail -n 10 "$f" >&2
        done
    fi
    rm -rf "$TMPD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- tools -------------------------------------------------------------------------------

for f in "$BUILD/mapid" "$BUILD/mapicommd" "$BUILD/flib/stdflib.so" "$BUILD/libmapi.so"; do
    [ -e "$f" ] || die "missing $f: build first"
done
for tool in openssl tcpreplay; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (bench/deps.sh installs it)"
done
CLIENT=$BUILD/bench/bench_dimapi
if [ ! -x "$CLIENT" ]; then
    CLIENT=$TMPD/bench_dimapi
    ${CC:-cc} -std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -I "$SRC/include" -o "$CLIENT" \
        "$SRC/bench/bench_dimapi.c" -L "$BUILD" -lmapi -Wl,-rpath,"$BUILD" ||
        die "cannot build bench/bench_dimapi.c"
fi
GEN=$BUILD/bench/gen_trace
if [ ! -x "$GEN" ]; then
    GEN=$TMPD/gen_trace
    ${CC:-cc} -std=c11 -O2 -o "$GEN" "$SRC/bench/gen_trace.c" || die "cannot build gen_trace"
fi
mkdir -p "$BENCH_DIR"
TRACE=$BENCH_DIR/dimapi-$PACKETS.pcap
if [ ! -s "$TRACE" ]; then
    log "generating $TRACE"
    "$GEN" -n "$PACKETS" "$TRACE.tmp" >/dev/null || die "gen_trace failed"
    mv "$TRACE.tmp" "$TRACE"
fi
cat "$TRACE" >/dev/null

# ---- test bed ----------------------------------------------------------------------------

log "test bed: $NSENS sensors (CA and certificates, namespaces, mapid + mapicommd each)"
denv_ca ca || die "CA"
denv_cert ca client client "DNS:client" || die "client certificate"
denv_client_ns || die "cannot create network namespaces here"
for i in $(seq "$NSENS"); do
    denv_cert ca "sensor$i" server "IP:198.18.$i.2" || die "certificate of sensor $i"
    denv_sensor "$i" || die "sensor namespace $i"
    devs="dsen$i"
    if [ "$i" -eq 1 ]; then
        denv_feed 1 || die "feed link"
        devs="dsen1 dfeed1@256M"
    fi
    denv_mapid "$i" "$devs" "buffer_size=$RING" || die "mapid of sensor $i"
    denv_mapicommd "$i" tls 2233 || die "mapicommd of sensor $i"
done
denv_mapicommd 1 plain 2234 "dimapi_plaintext=1" || die "plain mapicommd of sensor 1"
denv_client_conf client
denv_client_conf plain ca client "dimapi_plaintext=1"
FEEDNS=$(denv_feed_ns 1)
S1NS=$(denv_ns 1)

# scope N [PORT] [DEV]: the first N sensors.
scope()
{
    local n=$1 port=${2:-} dev=${3:-} i s=""
    for i in $(seq "$n"); do
        s="$s${s:+, }198.18.$i.2:${port:+$port:}${dev:-dsen$i}"
    done
    echo "$s"
}

# ---- latency -----------------------------------------------------------------------------

# lat LABEL NS CONF SCOPE [-s]: one latency run; appends "LABEL<TAB>output" to $TMPD/lat.
lat()
{
    local label=$1 ns=$2 conf=$3 sc=$4 out
    shift 4
    log "latency: $label"
    out=$(ip netns exec "$ns" env MAPI_CONF="$conf" "$CLIENT" latency -n "$READS" "$@" "$sc" \
        2>"$TMPD/lat.err") || die "latency $label failed: $(cat "$TMPD/lat.err")"
    printf '%s\t%s\n' "$label" "$out" >>"$TMPD/lat"
}
: >"$TMPD/lat"
lat "local flow (client beside mapid)" "$S1NS" "$TMPD/s1.conf" dsen1
lat "1 sensor, plain TCP" "$DENV_CNS" "$TMPD/plain.conf" "$(scope 1 2234)"
lat "1 sensor, TLS" "$DENV_CNS" "$TMPD/client.conf" "$(scope 1)"
for n in 3 "$NSENS"; do
    [ "$NSENS" -ge "$n" ] || continue
    [ "$n" -eq 3 ] || [ "$NSENS" -gt 3 ] || continue
    lat "$n sensors, TLS: one flow over the scope" "$DENV_CNS" "$TMPD/client.conf" "$(scope "$n")"
    lat "$n sensors, TLS: $n one-sensor flows read one after the other" "$DENV_CNS" \
        "$TMPD/client.conf" "$(scope "$n")" -s
done

# ---- delivery ----------------------------------------------------------------------------

# deliver TAG NS CONF SCOPE RUN: one delivery run; appends "TAG<TAB>output" to $TMPD/dlv.
deliver()
{
    local tag=$1 ns=$2 conf=$3 sc=$4 run=$5 go=$TMPD/go-$1-$5 out=$TMPD/dlv-$1-$5 pid
    rm -f "$go"
    ip netns exec "$ns" env MAPI_CONF="$conf" "$CLIENT" deliver -p "$PACKETS" -g "$go" "$sc" \
        >"$out.out" 2>"$out.err" &
    pid=$!
    denv_track "$pid"
    denv_wait 15 grep -qx ready "$out.out" || die "$tag: the client did not get ready: $(cat "$out.err")"
    ip netns exec "$FEEDNS" tcpreplay --topspeed -i dfd1 "$TRACE" >"$out.replay" 2>&1 ||
        die "tcpreplay failed: $(tail -n 3 "$out.replay")"
    sleep 1 # the capture drains the kernel ring into TO_BUFFER
    touch "$go"
    wait "$pid" || die "$tag run $run: wrong answer or error: $(cat "$out.err") $(cat "$out.out")"
    denv_untrack "$pid"
    printf '%s\t%s\t%s\n' "$tag" "$(grep '^deliver' "$out.out")" \
        "$(sed -n 's/^[[:space:]]*Rated:.*, \([0-9.]*\) pps.*/\1/p' "$out.replay")" >>"$TMPD/dlv"
}
: >"$TMPD/dlv"
for run in $(seq "$RUNS"); do
    log "delivery run $run/$RUNS: local, plain TCP, TLS ($PACKETS packets each)"
    deliver local "$S1NS" "$TMPD/s1.conf" dfeed1 "$run"
    deliver plain "$DENV_CNS" "$TMPD/plain.conf" "198.18.1.2:2234:dfeed1" "$run"
    deliver tls "$DENV_CNS" "$TMPD/client.conf" "198.18.1.2:dfeed1" "$run"
done

# ---- report ------------------------------------------------------------------------------

# field LINE NAME: the value after NAME in a "key value key value" line
field()
{
    echo "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'
}

echo
echo "### DiMAPI: mapi_read_results latency"
echo
echo "PKT_COUNTER on an idle link, $READS timed calls after 200 warm-up calls, one client;" \
    "remote: TLS 1.2+ with client certificates (EC P-256) or plain TCP, over veth pairs between" \
    "network namespaces: no network delay, so the figures are the software's own cost on" \
    "$(nproc) CPUs shared by the client and all the sensors' mapid and mapicommd processes." \
    "\"one after the other\" is what the same reads cost as sequential round trips (one flow" \
    "per sensor); on a real network each round trip adds the RTT, which a scope read pays once."
echo
cp "$TMPD/lat" "$TMPD/lat.rows"
echo "| scope | median | p90 | p99 | mean | scope read / sequential reads (median) |"
echo "|---|---|---|---|---|---|"
while IFS=$'\t' read -r label out; do
    med=$(field "$out" median_us)
    ratio="-"
    case $label in
    *"one flow over the scope")
        n=${label%% *}
        seqline=$(awk -F'\t' -v n="$n" '$1 ~ ("^" n " sensors, TLS: " n " one-sensor") { print $2 }' "$TMPD/lat")
        if [ -n "$seqline" ]; then
            ratio=$(awk -v a="$med" -v b="$(field "$seqline" median_us)" 'BEGIN { printf "%.2f", a / b }')
        fi
        ;;
    esac
    printf '| %s | %s us | %s us | %s us | %s us | %s |\n' "$label" "$med" \
        "$(field "$out" p90_us)" "$(field "$out" p99_us)" "$(field "$out" mean_us)" "$ratio"
done <"$TMPD/lat.rows"

median()
{
    sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
LOCAL_PPS=$(awk -F'\t' '$1 == "local" { print $2 }' "$TMPD/dlv" | awk '{ print $9 }' | median)
echo
echo "### DiMAPI: packet delivery (TO_BUFFER + mapi_get_next_pkt)"
echo
echo "$PACKETS packets of \`gen_trace -n $PACKETS\` (mixed sizes, 64..1514 bytes), sent with" \
    "tcpreplay --topspeed into sensor 1's feed interface and held in mapid's TO_BUFFER ring" \
    "(buffer_size=$RING); once the flow's PKT_COUNTER has seen all of them the client drains" \
    "them: packets / (start -> last packet)." \
    "Median of $RUNS runs; every run delivered all $PACKETS packets (checked). $(nproc) CPUs," \
    "client, mapicommd and mapid on the same machine."
echo
echo "| path | packets/s (median) | Mbit/s | runs (packets/s) | vs local |"
echo "|---|---|---|---|---|"
for tag in local plain tls; do
    case $tag in
    local) label="local flow (client beside mapid)" ;;
    plain) label="remote, plain TCP (dimapi_plaintext=1)" ;;
    tls) label="remote, TLS" ;;
    esac
    lines=$(awk -F'\t' -v t="$tag" '$1 == t { print $2 }' "$TMPD/dlv")
    pps=$(echo "$lines" | awk '{ print $9 }' | median)
    mbps=$(echo "$lines" | awk '{ print $11 }' | median)
    all=$(echo "$lines" | awk '{ print $9 }' | paste -sd' ' -)
    vs=$(awk -v a="$pps" -v b="$LOCAL_PPS" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$pps" "$mbps" "$all" "$vs"
done
echo
echo "tcpreplay's send rates (packets/s): $(awk -F'\t' '{ print $3 }' "$TMPD/dlv" | paste -sd' ' -)." \
    "Test bed: $NSENS sensor namespaces, each its own mapid and mapicommd; took" \
    "$(($(date +%s) - START_S)) s."
