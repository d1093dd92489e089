#!/usr/bin/env bash
# tests/test_user_limits.sh - mapid's limits hold per user (uid), across connections, and one
# user's flood of connections or half-sent requests cannot lock another user out (issue 10,
# items 5, 6, 13, 14, 15). The attacks run as a throwaway unprivileged user (make_user EVIL)
# with raw protocol clients (tests/user_attacks.py); a second throwaway user (VICTIM) must
# meanwhile count weibo.pcap exactly (tcpdump --count is the oracle). Needs root (skips, 77,
# otherwise).
#
# mapid "lim" (max_flows_per_user=3, max_shm_per_user=6M with 4M rings,
# max_threads_per_user=2, max_connections_per_user=8):
#  * 5 connections with one trace flow each: the 4th and 5th flow fail with 3085.
#  * 2 connections each connecting a TO_BUFFER flow: the second fails with 3085 (shm).
#  * 3 connections each connecting a trace flow: the 3rd fails with 3085 (threads); the same
#    for 3 trace devices started with START_OFFLINE_DEVICE.
#  * 10 connections: the 9th and 10th HELLO get 3085 (max_connections_per_user); with 8
#    held, a libmapi application of the same user fails with 3085 naming the key.
#  * *_INFO requests with ids INT32_MAX/INT32_MIN get their error numbers (under UBSan the
#    old `id + 1` aborted mapid), and mapid still answers.
#  * a trace path with a newline is logged escaped: no forged line in the log file.
# mapid "flood" (descriptor limit 256 so max_connections becomes 96, message_timeout=1500,
# max_input_per_user=2500K):
#  * EVIL opens 300 idle connections (more than the descriptor limit): 96 are admitted, the
#    rest get 3085; VICTIM still gets in (one of EVIL's idle connections is shed) and counts
#    the trace exactly. (The old mapid ran out of descriptors and locked everyone out.)
#  * EVIL sends the first 400 KB of a 1 MiB request on 40 connections: mapid's RSS grows by
#    less than 8 MB (the old code kept every half-sent message: 16 MB here, 828 MB for 800),
#    connections over max_input_per_user get 3085 at once, the rest 3085 after
#    message_timeout; VICTIM counts the trace exactly meanwhile.
# Socket path (item 15): mapid refuses (non-zero exit, message) a socket in a directory others
# can write, and an existing path of another user in a sticky directory; it creates a missing
# socket directory with mode 0750.
#
# Usage: test_user_limits.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

hostile_setup trace.pcap
ATTACK=$(cat "$SRC/tests/user_attacks.py")


# evil NAME SUBCOMMAND ARGS...: runs an attack as EVIL on mapid NAME.
evil()
{
    local name=$1
    shift
    raw_py "${AS_EVIL[@]}" -- "$ATTACK" "$TMPD/$name.sock" "$@"
}

# expect WHAT GOT WANT
expect()
{
    if [ "$2" = "$3" ]; then
        pass "$1: $2"
    else
        fail "$1: got '$2', expected '$3'"
    fi
}


# victim_count: VICTIM counts every packet of the trace through its own mapid connection.
victim_count()
{
    local out
    out=$("${AS_VICTIM[@]}" "$TBIN/mapi_count" -t 30 "$TMPD/trace.pcap" pcap "" 2>&1) || {
        echo "failed: $out"
        return 0
    }
    echo "$out" | awk -F '\t' '{ print $2 }'
}

rss_kb()
{
    awk '/^VmRSS:/ { print $2 }' "/proc/$(mapid_pid "$1")/status"
}

# mapid "lim" ---------------------------------------------------------------------------------
GLOBALS="max_flows_per_user=3
max_shm_per_user=6M
max_threads_per_user=2
max_connections_per_user=8"
start_mapid lim ""

expect "5 connections of one user, one trace flow each" \
    "$(evil lim flows "$TMPD/trace.pcap" 5)" "ok ok ok err3085 err3085"
expect "2 connections of one user, a 4 MiB TO_BUFFER flow each (max_shm_per_user=6M)" \
    "$(evil lim shm "$TMPD/trace.pcap" 2)" "ok err3085"
expect "3 connections of one user, a connected trace flow each (max_threads_per_user=2)" \
    "$(evil lim threads "$TMPD/trace.pcap" 3)" "ok ok err3085"
expect "3 trace devices of one user, each started (max_threads_per_user=2)" \
    "$(evil lim devthreads "$TMPD/trace.pcap" 3)" "ok ok err3085"
expect "10 connections of one user (max_connections_per_user=8)" \
    "$(evil lim conns 10)" "ok ok ok ok ok ok ok ok err3085 err3085"
# The same through libmapi: EVIL holds 8 connections, its application gets 3085 and the reason.
evil lim flood 8 "$TMPD/stop0" >"$TMPD/hold.res" 2>&1 &
phold=$!
track_pid "$phold"
wait_ready "$TMPD/hold.res" "$phold" || die "EVIL's 8 connections: $(cat "$TMPD/hold.res")"
got=$("${AS_EVIL[@]}" "$TBIN/mapi_count" "$TMPD/trace.pcap" pcap "" 2>&1 || true)
if echo "$got" | grep -q "MAPI error 3085: .*max_connections_per_user"; then
    pass "EVIL's 9th connection through libmapi: $got"
else
    fail "EVIL's 9th connection through libmapi: got '$got', expected error 3085"
fi
touch "$TMPD/stop0"
wait "$phold" || true
expect "*_INFO with ids at INT32_MAX / INT32_MIN" "$(evil lim info "$TMPD/trace.pcap")" \
    "ok err6151 err6151 err6151 err6151 err6150 err6150 err6149 err6157 ok"
mapid_alive lim || die "mapid lim died"

FORGED="x.pcap
2026-01-01 00:00:00 mapid[error]: FORGED LINE"
expect "a trace path with a newline" "$(evil lim logforge "$TMPD/trace.pcap" "$FORGED")" "ok"
if grep -q "^2026-01-01 00:00:00 mapid\[error\]: FORGED" "$TMPD/lim.log"; then
    fail "the log file has a forged line: $(grep -n FORGED "$TMPD/lim.log")"
elif grep -qF 'x.pcap\n2026-01-01 00:00:00 mapid[error]: FORGED LINE@' "$TMPD/lim.log"; then
    pass "the newline of the client's path is logged as \\n, on the same line"
else
    fail "the client's path is not in the log: $(tail -n 3 "$TMPD/lim.log")"
fi
expect "VICTIM's count while EVIL is at its limits" "$(victim_count)" "$WANT"
stop_mapid lim

# mapid "flood" -------------------------------------------------------------------------------
GLOBALS="max_connections_per_user=1000
message_timeout=1500
max_input_per_user=2500K"
# (Under ASan, freed buffers would stay in its quarantine and count in the RSS measured below.)
start_mapid flood "" env ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" \
    prlimit --nofile=256:256
grep -q "max_connections lowered from 1024 to 96" "$TMPD/flood.out" ||
    fail "mapid did not lower max_connections to half the descriptor limit: $(head -n 5 "$TMPD/flood.out")"

evil flood flood 300 "$TMPD/stop1" >"$TMPD/flood.res" 2>&1 &
pflood=$!
track_pid "$pflood"
wait_ready "$TMPD/flood.res" "$pflood" || die "the flood did not start: $(cat "$TMPD/flood.res")"
expect "EVIL's 300 idle connections" "$(head -n 1 "$TMPD/flood.res")" \
    "admitted 96 refused 204 codes err3085"
expect "VICTIM's count while EVIL holds every connection" "$(victim_count)" "$WANT"
touch "$TMPD/stop1"
wait "$pflood" || true
expect "EVIL's connections shed for VICTIM" "$(tail -n 1 "$TMPD/flood.res")" "shed 1"
grep -q "max_connections (96) reached: closed an idle connection of uid $EVIL_UID" \
    "$TMPD/flood.log" || fail "no log line about the shed connection"
mapid_alive flood || die "mapid flood died"

sleep 0.5 # EVIL's connections are gone
rss0=$(rss_kb flood)
evil flood halfsent 40 400000 "$TMPD/stop2" >"$TMPD/half.res" 2>&1 &
phalf=$!
track_pid "$phalf"
wait_ready "$TMPD/half.res" "$phalf" || die "the half-sent attack did not start: $(cat "$TMPD/half.res")"
rss1=$(rss_kb flood)
growth=$(((rss1 - rss0) / 1024))
if [ "$growth" -lt 8 ]; then
    pass "40 half-sent 1 MiB requests: mapid's RSS grew by $growth MB (from $((rss0 / 1024)) MB)"
else
    fail "40 half-sent 1 MiB requests: mapid's RSS grew by $growth MB (limit 8)"
fi
expect "VICTIM's count during the half-sent requests" "$(victim_count)" "$WANT"
touch "$TMPD/stop2"
wait "$phalf" || true
got=$(tail -n 1 "$TMPD/half.res")
if echo "$got" | awk '{ exit !($2 + $8 == 40 && $4 > 0 && $6 > 0 && $4 + $6 + $8 == 40 && $10 == 0) }'; then
    pass "half-sent requests: all closed, with 3085 (max_input_per_user or message_timeout): $got"
else
    fail "half-sent requests: $got (expected all 40 closed with 3085, some for each reason)"
fi
expect "VICTIM's count after the attacks" "$(victim_count)" "$WANT"
mapid_alive flood || die "mapid flood died"
stop_mapid flood

# Socket path -------------------------------------------------------------------------------
# refused_start CONF: runs mapid on CONF; prints its exit status and its error line.
refused_start()
{
    local rc=0
    timeout 10 "$MAPID" -c "$1" >"$TMPD/refused.out" 2>&1 || rc=$?
    echo "$rc $(grep -c 'refusing the socket path' "$TMPD/refused.out")"
}
mkdir "$TMPD/open"
chmod 777 "$TMPD/open"
write_conf open
sed -i "s|^socket=.*|socket=$TMPD/open/mapid.sock|" "$TMPD/open.conf"
expect "mapid on a socket in a world-writable directory (exit status, error lines)" \
    "$(refused_start "$TMPD/open.conf")" "1 1"
grep -q "writable by other users" "$TMPD/refused.out" ||
    fail "the refusal does not say why: $(cat "$TMPD/refused.out")"
mkdir "$TMPD/sticky"
chmod 1777 "$TMPD/sticky"
"${AS_EVIL[@]}" "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$TMPD/sticky/mapid.sock"
sed "s|^socket=.*|socket=$TMPD/sticky/mapid.sock|" "$TMPD/open.conf" >"$TMPD/sticky.conf"
expect "mapid on another user's socket path in a sticky directory" \
    "$(refused_start "$TMPD/sticky.conf")" "1 1"
if [ -S "$TMPD/sticky/mapid.sock" ] && [ "$(stat -c %U "$TMPD/sticky/mapid.sock")" = "$EVIL" ]; then
    pass "EVIL's socket file is left alone"
else
    fail "mapid touched EVIL's socket file"
fi
# A missing directory is created (mode 0750) and used.
write_conf fresh2
sed -i "s|^socket=.*|socket=$TMPD/newdir/mapid.sock|" "$TMPD/fresh2.conf"
"$MAPID" -c "$TMPD/fresh2.conf" >"$TMPD/fresh2.out" 2>&1 &
pfresh=$!
track_pid "$pfresh"
for _ in $(seq 100); do
    [ -S "$TMPD/newdir/mapid.sock" ] && break
    sleep 0.05
done
expect "the socket directory mapid created" "$(stat -c '%a %U' "$TMPD/newdir" 2>&1)" "750 root"
kill -TERM "$pfresh"
wait "$pfresh" || fail "mapid with a fresh socket directory exited with $?"

finish
