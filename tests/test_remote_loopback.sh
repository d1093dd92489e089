#!/usr/bin/env bash
# tests/test_remote_loopback.sh - libmapi's remote (DiMAPI) back end over loopback (root only;
# exits 77 = skipped otherwise).
#
# One network namespace with only lo (up): a mapid with lo as a [driver] device, and four
# mapicommds on 127.0.0.1 sharing it: two in plain TCP (dimapi_plaintext=1, ports P1, P2) and
# two with TLS (a test CA and a server certificate for IP:127.0.0.1 made with openssl, ports
# P3, P4). A client (tests/mapi_remote.c) in the namespace uses the two-sensor scope
# "127.0.0.1:lo, 127.0.0.1:PORT2:lo" (the first item on the configuration's dimapi_port) with
# each pair, while python sends exactly N UDP datagrams to 127.0.0.1 port U. Checks, against
# python's count and byte total (wire length = payload + 14 + 20 + 8 on lo's Ethernet-style
# header): per-sensor PKT_COUNTER and BYTE_COUNTER, BINOP over two flows (2N: flow and function
# references translated per sensor, with the sensors' flow descriptors shifted apart), TO_BUFFER
# packets from both sensors (2N), scope size, flow and function info, mapi_stats over the scope.
# Failures: a scope naming a port where nothing listens fails within dimapi_timeout with 5124
# naming "127.0.0.1:PORT"; a malformed scope item gives 7000 naming it; a TLS client meeting a
# plain mapicommd fails naming it; killing one sensor's mapicommd after connect leaves the other
# sensor's entry of mapi_read_results working, the dead one with size 0 and 5123 naming it.
#
# Usage: test_remote_loopback.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the remote loopback test needs root (network namespaces)"
    exit 77
fi
common_init "$@"
if [ ! -x "$BUILD/mapicommd" ]; then
    echo "SKIP: mapicommd is not built"
    exit 77
fi
command -v openssl >/dev/null || {
    echo "SKIP: no openssl command"
    exit 77
}

N=400
UPORT=41234
P1=22331
P2=22332
P3=22333
P4=22334
PDEAD=22339
NS=mapitest-$$-rl
# shellcheck disable=SC2034 # used by common_cleanup
CLEANUP_CMDS="ip netns del $NS 2>/dev/null"
if ! ip netns add "$NS" 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
fi
ip -n "$NS" link set lo up
inns()
{
    ip netns exec "$NS" "$@"
}

# ---- certificates ------------------------------------------------------------------------
D=$TMPD
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$D/ca.key" -out "$D/ca.pem" -days 2 -subj "/CN=MAPI loopback test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >/dev/null 2>&1 || die "openssl: cannot make the CA"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' \
    >"$D/srv.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/srv.key" \
    -out "$D/srv.csr" -subj "/CN=127.0.0.1" >/dev/null 2>&1 || die "openssl: server key"
openssl x509 -req -in "$D/srv.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
    -extfile "$D/srv.ext" -out "$D/srv.pem" >/dev/null 2>&1 || die "openssl: server cert"
chmod 644 "$D/srv.key" "$D/srv.pem" # mapicommd reads them before dropping to nobody; test only

# ---- mapid and the mapicommds ------------------------------------------------------------
start_mapid rl "$(printf '[driver]\ndevice=lo\ndriver=mapinicdrv.so\npromisc=0')" \
    ip netns exec "$NS"
MAPID_CONF=$MAPI_CONF

listening()
{
    inns "$PY" -c '
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

# start_mapicommd NAME PORT EXTRA_KEYS: global keys first, then mapid's configuration.
start_mapicommd()
{
    local name=$1 port=$2 extra=$3 pid
    {
        echo "dimapi_port=$port"
        echo "dimapi_idle_timeout=5000"
        printf '%s\n' "$extra"
        cat "$MAPID_CONF"
    } >"$D/$name.conf"
    chmod 644 "$D/$name.conf"
    (cd "$D" && exec ip netns exec "$NS" "$BUILD/mapicommd" -c "$D/$name.conf" -u nobody) \
        >"$D/$name.out" 2>&1 &
    pid=$!
    echo "$pid" >"$D/$name.pid"
    track_pid "$pid"
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || {
            cat "$D/$name.out"
            die "mapicommd $name exited"
        }
        listening "$port" && return 0
        sleep 0.05
    done
    die "mapicommd $name does not listen on $port"
}

start_mapicommd plain1 "$P1" "dimapi_plaintext=1"
start_mapicommd plain2 "$P2" "dimapi_plaintext=1"
TLSKEYS="dimapi_cert=$D/srv.pem
dimapi_key=$D/srv.key"
start_mapicommd tls1 "$P3" "$TLSKEYS"
start_mapicommd tls2 "$P4" "$TLSKEYS"

# Client configurations (no mapid socket of their own is needed).
client_conf()
{
    local name=$1 port=$2 extra=$3
    {
        echo "socket=$D/none.sock"
        echo "dimapi_port=$port"
        echo "dimapi_timeout=2000"
        printf '%s\n' "$extra"
    } >"$D/$name.conf"
}
client_conf cplain "$P1" "dimapi_plaintext=1"
client_conf ctls "$P3" "dimapi_ca=$D/ca.pem"

get()
{
    sed -n "s/^$2 //p" "$1" | head -n 1
}
check()
{
    local v
    v=$(get "$1" "$2")
    if [ "$v" = "$3" ]; then
        pass "$4: $2 = $3"
    else
        fail "$4: $2 = '$v', expected $3"
    fi
}

# ---- counting over a two-sensor scope ----------------------------------------------------
# send_udp UDPPORT: sends N datagrams to 127.0.0.1:UDPPORT in the namespace; prints the sum of
# their wire lengths (payload + 42).
send_udp()
{
    inns "$PY" - "$N" "$1" <<'EOF'
import socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", port))  # no ICMP port-unreachable replies
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total = 0
for i in range(n):
    size = 10 + (i * 37) % 900
    s.sendto(bytes(size), ("127.0.0.1", port))
    total += size + 42
    if i % 50 == 49:
        time.sleep(0.002)
print(total)
EOF
}

# run_count LABEL CONF PORT2 UDPPORT
run_count()
{
    local label=$1 conf=$2 port2=$3 uport=$4 out=$D/$1.out err=$D/$1.err client
    inns env MAPI_CONF="$D/$conf.conf" "$TBIN/mapi_remote" count \
        "127.0.0.1:lo, 127.0.0.1:$port2:lo" "127.0.0.1:$port2:lo" "$uport" "$N" 20 \
        >"$out" 2>"$err" &
    client=$!
    track_pid "$client"
    wait_ready "$out" "$client" || die "$label: the client did not get ready: $(cat "$err")"
    sleep 0.3
    local want
    want=$(send_udp "$uport")
    if ! wait "$client"; then
        fail "$label: the client failed: $(cat "$err")"
        return 0
    fi
    check "$out" scope_size 2 "$label"
    check "$out" is_remote 1 "$label"
    for i in 0 1; do
        check "$out" "pkts_$i" "$N" "$label"
        check "$out" "bytes_$i" "$want" "$label"
        check "$out" "binop_$i" $((2 * N)) "$label"
    done
    check "$out" buf_pkts $((2 * N)) "$label"
    check "$out" buf_bytes $((2 * want)) "$label"
    check "$out" flow_info_ok 1 "$label"
    check "$out" fninfo_name PKT_COUNTER "$label"
    check "$out" stats_n 2 "$label"
    check "$out" closed 1 "$label"
    # One parallel round trip on loopback is well below a millisecond; a call that waited for
    # a packet request held by mapicommd (50 ms) or asked the sensors one by one would show.
    local avg
    avg=$(get "$out" read_ms_avg)
    if awk -v a="$avg" 'BEGIN { exit !(a != "" && a < 25) }'; then
        pass "$label: mapi_read_results over 2 sensors: average $avg ms (max $(get "$out" read_ms_max))"
    else
        fail "$label: mapi_read_results over 2 sensors takes $avg ms on average"
    fi
}

run_count plain cplain "$P2" "$UPORT"
run_count tls ctls "$P4" $((UPORT + 1))

# ---- a thread blocked in mapi_get_next_pkt (WAIT) beside mapi_read_results and close -----
TOUT=$D/threads.out
inns env MAPI_CONF="$D/ctls.conf" "$TBIN/mapi_remote" threads "127.0.0.1:lo, 127.0.0.1:$P4:lo" \
    $((UPORT + 3)) "$N" 20 >"$TOUT" 2>"$D/threads.err" &
tclient=$!
track_pid "$tclient"
wait_ready "$TOUT" "$tclient" || die "threads: the client did not get ready: $(cat "$D/threads.err")"
sleep 0.3
send_udp $((UPORT + 3)) >/dev/null
if wait "$tclient"; then
    check "$TOUT" thread_pkts $((2 * N)) threads
    check "$TOUT" counts_ok 1 threads
    check "$TOUT" thread_err 6145 threads
    cms=$(get "$TOUT" close_ms)
    if [ -n "$cms" ] && [ "$cms" -le 1000 ]; then
        pass "threads: the blocked reader returned $cms ms after mapi_close_flow"
    else
        fail "threads: the blocked reader returned '$cms' ms after mapi_close_flow"
    fi
    echo "      threads: mapi_read_results beside a blocked reader: max $(get "$TOUT" read_ms_max) ms"
else
    fail "threads: the client failed: $(cat "$D/threads.err")"
fi

# ---- failures ----------------------------------------------------------------------------
fail_case()
{
    local label=$1 conf=$2 scope=$3 want_err=$4 want_text=$5 out=$D/fail-$1.out
    inns env MAPI_CONF="$D/$conf.conf" "$TBIN/mapi_remote" fail "$scope" >"$out" 2>&1 || true
    check "$out" errno "$want_err" "$label"
    if grep -q "^msg .*$want_text" "$out"; then
        pass "$label: the message names $want_text"
    else
        fail "$label: the message does not name $want_text: $(get "$out" msg)"
    fi
    local ms
    ms=$(get "$out" elapsed_ms)
    if [ -n "$ms" ] && [ "$ms" -le 2500 ]; then
        pass "$label: failed within the timeout (${ms} ms)"
    else
        fail "$label: took '$ms' ms (timeout 2000)"
    fi
}
fail_case dead-port cplain "127.0.0.1:lo, 127.0.0.1:$PDEAD:lo" 5124 "127.0.0.1:$PDEAD"
fail_case malformed cplain "127.0.0.1:lo, 127.0.0.1:$P2:" 7000 "127.0.0.1:$P2:"
fail_case tls-to-plain ctls "127.0.0.1:$P1:lo" 5124 "127.0.0.1:$P1"
fail_case unknown-dev cplain "127.0.0.1:nosuchdev" 3200 "127.0.0.1:$P1"

# ---- a sensor dies after connect ---------------------------------------------------------
KOUT=$D/kill.out
mkfifo "$D/kill.in"
inns env MAPI_CONF="$D/cplain.conf" "$TBIN/mapi_remote" kill "127.0.0.1:lo, 127.0.0.1:$P2:lo" \
    "$UPORT" <"$D/kill.in" >"$KOUT" 2>"$D/kill.err" &
kclient=$!
track_pid "$kclient"
exec 7>"$D/kill.in"
if wait_ready "$KOUT" "$kclient"; then
    kpid=$(cat "$D/plain2.pid")
    kill -KILL "$kpid"
    { wait "$kpid"; } 2>/dev/null || true
    sleep 0.2
    echo go >&7
    exec 7>&-
    wait "$kclient" || fail "kill: the client failed: $(cat "$D/kill.err")"
    check "$KOUT" res_ok 1 "kill"
    check "$KOUT" size_0 8 "kill"
    check "$KOUT" size_1 0 "kill"
    check "$KOUT" err 5123 "kill"
    if grep -q "^errmsg .*127.0.0.1:$P2" "$KOUT"; then
        pass "kill: the error names 127.0.0.1:$P2"
    else
        fail "kill: the error does not name the dead sensor: $(get "$KOUT" errmsg)"
    fi
    check "$KOUT" again_size_0 8 "kill"
    check "$KOUT" close_rc -1 "kill"
    check "$KOUT" close_err 5123 "kill"
else
    exec 7>&-
    fail "kill: the client did not get ready: $(cat "$D/kill.err")"
fi
# A restarted sensor is reached by a new flow.
start_mapicommd plain2 "$P2" "dimapi_plaintext=1"
run_count restarted cplain "$P2" $((UPORT + 2))

# mapicommds stop cleanly on SIGTERM.
for name in plain1 plain2 tls1 tls2; do
    pid=$(cat "$D/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    { wait "$pid"; } 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || fail "mapicommd $name exited with status $rc after SIGTERM"
done
stop_mapid rl
finish
