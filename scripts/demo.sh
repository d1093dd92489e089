#!/usr/bin/env bash
# scripts/demo.sh - the quick-start demo (`make demo`): starts a private mapid (temporary
# configuration and socket, no root needed), runs the tutorial's three example programs on
# the bundled capture tests/data/weibo.pcap, and stops mapid again.
#
# Usage: scripts/demo.sh [BUILD_DIR [SOURCE_DIR]]   (defaults: build, .)
set -eu

BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "${2:-.}" && pwd)
TRACE=$SRC/tests/data/weibo.pcap
EX=$BUILD/examples
for f in "$BUILD/mapid" "$BUILD/flib/stdflib.so" "$EX/pkt_count" "$EX/link_util" \
    "$EX/worm_detect" "$TRACE"; do
    if [ ! -e "$f" ]; then
        echo "demo: missing $f (run make first)" >&2
        exit 1
    fi
done

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapi-demo.XXXXXX")
MAPID_PID=""
cleanup()
{
    if [ -n "$MAPID_PID" ] && kill -0 "$MAPID_PID" 2>/dev/null; then
        kill -TERM "$MAPID_PID"
        wait "$MAPID_PID" 2>/dev/null || true
    fi
    rm -rf "$TMPD"
}
trap cleanup EXIT

cat >"$TMPD/mapi.conf" <<EOF
# a private configuration for the demo
libpath=$BUILD/flib
libs=stdflib.so
socket=$TMPD/mapid.sock
logfile=$TMPD/mapid.log
syslog_level=0
buffer_size=16M
[format]
format=MFF_PCAP
driver=mapinicdrv.so
EOF
export MAPI_CONF=$TMPD/mapi.conf

echo "== starting mapid: $BUILD/mapid -c $MAPI_CONF"
"$BUILD/mapid" -c "$MAPI_CONF" >"$TMPD/mapid.out" 2>&1 &
MAPID_PID=$!
for _ in $(seq 100); do
    [ -S "$TMPD/mapid.sock" ] && break
    if ! kill -0 "$MAPID_PID" 2>/dev/null; then
        cat "$TMPD/mapid.out" >&2
        echo "demo: mapid did not start" >&2
        exit 1
    fi
    sleep 0.1
done
[ -S "$TMPD/mapid.sock" ] || {
    echo "demo: mapid did not create its socket" >&2
    exit 1
}
sleep 0.1 # bound; give it the moment to listen

# run TITLE COMMAND...: prints the title and the command line, then runs it.
run()
{
    echo
    echo "== $1"
    shift
    printf '$'
    printf ' %q' "$@"
    echo
    "$@"
}

echo "== capture: $TRACE"
run "6.1 simple packet count: packets to web servers (tcp and dst port 80)" \
    "$EX/pkt_count" "$TRACE"
run "6.2 link utilization: traffic to and from host 192.168.1.105" \
    "$EX/link_util" "$TRACE" 192.168.1.105
run "6.3 worm detection with the tutorial's Slapper signature (none in this capture)" \
    "$EX/worm_detect" "$TRACE"
run "6.3 worm detection with a signature of our own: HTTP requests for /login.php" \
    "$EX/worm_detect" "$TRACE" "tcp and dst port 80" "GET /login.php" 0

echo
echo "== stopping mapid"
kill -TERM "$MAPID_PID"
wait "$MAPID_PID"
MAPID_PID=""
echo "done. With a live interface: add a [driver] section to a mapi.conf (see etc/mapi.conf.in),"
echo "run mapid as root, and give the examples the device name, e.g. $EX/pkt_count eth0"
