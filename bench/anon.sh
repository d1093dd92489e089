#!/usr/bin/env bash
# bench/anon.sh - the anonymisation benchmark (issue 6): Crypto-PAn of both addresses of every
# packet of a large synthetic trace, written to a new trace file, by libtrace's traceanon and
# by MAPI, in the same run, on the same file. Prints a markdown section on standard output.
#
# Usage: bench/anon.sh BUILD_DIR
#
# Commands timed (each ANON_BENCH_RUNS times, alternating, the trace read once with cat before
# so that it is in the page cache; the median wall time is reported):
#   traceanon    traceanon -s -d -c KEY pcapfile:TRACE pcapfile:OUT
#   anonflib     tests/mapi_cpan TRACE OUT with ANONYMIZE "IP,SRC_IP,PREFIX_PRESERVING,KEY",
#                ANONYMIZE "IP,DST_IP,PREFIX_PRESERVING,KEY", ANONYMIZE
#                "IP,CHECKSUM,CHECKSUM_ADJUST" and TO_FILE (MAPI's answer to the issue's
#                workload: valid checksums, which traceanon leaves zero)
#   ANONYMIZEIP  tests/mapi_cpan TRACE OUT with ANONYMIZEIP KEY and TO_FILE (extraflib: the
#                same bytes as traceanon)
# through a private mapid (buffer_size=4M) started here. Every run's answer is checked: the
# IPv4 addresses of the first ANON_BENCH_CHECK packets of each output (tshark) must equal
# traceanon's; a wrong answer fails the script
# instead of being timed.
#
# The trace: bench/gen_trace -n ANON_BENCH_PACKETS (default 2000000; 80% IPv4 in 198.18.0.0/15,
# 20% IPv6 in fd00::/8, ~100000 flows), cached in BENCH_DIR as anon-N.pcap. traceanon 3.0.22
# does not anonymise IPv6 and does not decode 802.1Q/QinQ frames (~10% of the packets), so it
# does a little less work than MAPI on this trace.
#
# Environment: BENCH_DIR (default /tmp/mapi-bench), ANON_BENCH_PACKETS (default 2000000),
# ANON_BENCH_RUNS (default 3), ANON_BENCH_CHECK (default 20000).
# Exit status: 0, or 1 if a tool failed or answered wrongly; 77 if traceanon, tshark,
# anonflib.so or extraflib.so are missing (after printing a markdown note).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/mapi-bench}
PACKETS=${ANON_BENCH_PACKETS:-2000000}
RUNS=${ANON_BENCH_RUNS:-3}
NCHECK=${ANON_BENCH_CHECK:-20000}
KEY="MAPI anonymisation benchmark key"
CPAN=$BUILD/tests/mapi_cpan

log()
{
    printf '[anon] %s\n' "$*" >&2
}

skip()
{
    printf '\n> Anonymisation benchmark skipped: %s.\n' "$*"
    exit 77
}

for f in "$BUILD/mapid" "$BUILD/bench/gen_trace" "$CPAN" "$BUILD/flib/stdflib.so"; do
    [ -x "$f" ] || [ -e "$f" ] || skip "missing $f (build the tree first)"
done
[ -e "$BUILD/flib/anonflib.so" ] || skip "anonflib.so is not built"
[ -e "$BUILD/flib/extraflib.so" ] || skip "extraflib.so is not built"
command -v traceanon >/dev/null || skip "traceanon (libtrace-tools) is not installed"
command -v tshark >/dev/null || skip "tshark is not installed"

mkdir -p "$BENCH_DIR"
TRACE=$BENCH_DIR/anon-$PACKETS.pcap
if [ ! -s "$TRACE" ]; then
    log "generating $TRACE (gen_trace -n $PACKETS)"
    "$BUILD/bench/gen_trace" -n "$PACKETS" "$TRACE.tmp"
    mv "$TRACE.tmp" "$TRACE"
fi
WORK=$(mktemp -d "$BENCH_DIR/anon.XXXXXX")
MAPID_PID=
cleanup()
{
    if [ -n "$MAPID_PID" ]; then
        kill -TERM "$MAPID_PID" 2>/dev/null || true
        wait "$MAPID_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/mapid.conf" <<EOF
libpath=$BUILD/flib
libs=stdflib.so:anonflib.so:extraflib.so
socket=$WORK/mapid.sock
logfile=$WORK/mapid.log
syslog_level=0
buffer_size=4M
[format]
format=MFF_PCAP
driver=mapinicdrv.so
EOF
"$BUILD/mapid" -c "$WORK/mapid.conf" >"$WORK/mapid.out" 2>&1 &
MAPID_PID=$!
export MAPI_CONF=$WORK/mapid.conf
for _ in $(seq 200); do
    [ -S "$WORK/mapid.sock" ] && break
    sleep 0.05
done
[ -S "$WORK/mapid.sock" ] || {
    log "mapid did not start: $(tail -n 3 "$WORK/mapid.out")"
    exit 1
}

# The commands, by name.
run_cmd()
{
    local out=$WORK/$1.pcap
    rm -f "$out"
    case $1 in
    traceanon)
        traceanon -s -d -c "$KEY" "pcapfile:$TRACE" "pcapfile:$out" >/dev/null 2>&1
        ;;
    anonflib)
        "$CPAN" -t 600 "$TRACE" "$out" -F ANONYMIZE "IP,SRC_IP,PREFIX_PRESERVING,$KEY" \
            -F ANONYMIZE "IP,DST_IP,PREFIX_PRESERVING,$KEY" \
            -F ANONYMIZE "IP,CHECKSUM,CHECKSUM_ADJUST" >"$WORK/$1.txt"
        grep -qx 'done' "$WORK/$1.txt"
        ;;
    ANONYMIZEIP)
        "$CPAN" -t 600 "$TRACE" "$out" -F ANONYMIZEIP "$KEY" >"$WORK/$1.txt"
        grep -qx 'done' "$WORK/$1.txt"
        ;;
    esac
}

# addr_sum NAME: digest of the IPv4 addresses of the first NCHECK packets of NAME's output,
# QinQ frames left out (traceanon 3.0.22 does not decode them and leaves them as they are).
addr_sum()
{
    tshark -r "$WORK/$1.pcap" -c "$NCHECK" -Y 'not eth.type == 0x88a8' -T fields -e ip.src \
        -e ip.dst 2>/dev/null | md5sum >"$WORK/$1.sum"
}

NAMES=(traceanon anonflib ANONYMIZEIP)
declare -A TIMES
cat "$TRACE" >/dev/null
for r in $(seq "$RUNS"); do
    for n in "${NAMES[@]}"; do
        cat "$TRACE" >/dev/null
        t0=$(date +%s.%N)
        if ! run_cmd "$n"; then
            log "$n failed (run $r)"
            exit 1
        fi
        t1=$(date +%s.%N)
        TIMES[$n]="${TIMES[$n]:-} $(echo "$t1 - $t0" | bc -l)"
        addr_sum "$n"
        if ! cmp -s "$WORK/$n.sum" "$WORK/traceanon.sum"; then
            log "$n: addresses differ from traceanon's (run $r)"
            exit 1
        fi
        log "run $r: $n $(echo "$t1 - $t0" | bc -l | cut -c1-6) s"
    done
done
# (ANONYMIZEIP's count of IP packets is checked against tshark by tests/test_cryptopan.sh on
# real captures; a tshark pass over this whole trace would take longer than the benchmark.)

median()
{
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
TA=$(echo "${TIMES[traceanon]}" | median)
printf '\n| Command | Median wall time (s) | Packets/s | traceanon time / this |\n'
printf '|---|---:|---:|---:|\n'
for n in "${NAMES[@]}"; do
    m=$(echo "${TIMES[$n]}" | median)
    awk -v n="$n" -v m="$m" -v p="$PACKETS" -v ta="$TA" 'BEGIN {
        printf "| %s | %.3f | %.0f | %.2f |\n", n, m, p / m, ta / m }'
done
SIZE=$(stat -c %s "$TRACE")
# shellcheck disable=SC2016 # backquotes are markdown
printf '\n%s packets, %.0f MB, `gen_trace -n %s`; key of %s bytes; median of %s runs ' \
    "$PACKETS" "$(echo "$SIZE / 1000000" | bc -l)" "$PACKETS" "${#KEY}" "$RUNS"
printf 'each, commands alternating, trace in the page cache. traceanon: libtrace-tools %s. ' \
    "$(dpkg-query -W -f '${Version}' libtrace-tools 2>/dev/null || echo '?')"
printf 'anonflib = ANONYMIZE SRC_IP and DST_IP PREFIX_PRESERVING + CHECKSUM_ADJUST + TO_FILE; '
printf 'ANONYMIZEIP = extraflib ANONYMIZEIP + TO_FILE (traceanon'"'"'s bytes). Answers checked: '
printf 'the IPv4 addresses of the first %s packets (QinQ frames excepted) equal traceanon'"'"'s.\n' \
    "$NCHECK"
