#!/usr/bin/env bash
# tests/test_dimapi.sh - DiMAPI end to end with three sensors (root only; exits 77 otherwise).
#
# Test bed (tests/dimapi_env.sh): a client namespace and three sensor namespaces, sensor I
# joined to the client by a veth pair 198.18.I.1 (client) <-> 198.18.I.2 (sensor, "dsenI"),
# IPv6 off, static ARP. Each sensor runs its own mapid (a [driver] for dsenI) and mapicommd
# (TLS on port 2233, certificate from a test CA made with openssl, client certificates
# required), as nobody. The clients run in the client namespace with a mapi.conf that trusts
# the CA and presents a client certificate.
#
# Checks:
#  1. Traffic: the client sends N1, N2, N3 (different) UDP packets to port 9 of the three
#     sensors, interleaved; the oracles are the sender's own counts and byte sums (python) and
#     a tcpdump on each sensor's interface. tests/mapi_dimapi (traffic) must see, per sensor
#     and in total, exactly those counts with PKT_COUNTER and BYTE_COUNTER (mapi_read_results
#     array in scope order) and as TO_BUFFER packets through mapi_get_next_pkt (counted per
#     sensor by source address, per-sensor sequence numbers in order); scope size 3,
#     mapi_is_remote 1, mapi_stats one entry per sensor. The tutorial's 6.4 program
#     (examples/remote_count) runs at the same time and must print the same per-host counts
#     and total; so must tools/netload --json (its per-interval packets and bytes, summed).
#  2. TLS refusals, each failing quickly (well under dimapi_timeout) with an error naming the
#     sensor (198.18.1.2:2233): a client trusting another CA, a client without a client
#     certificate, a plain-TCP client (dimapi_plaintext=1) against the TLS mapicommd.
#  3. A dead sensor: while a client reads a flow over the three sensors, sensor 2's mapicommd
#     is killed (SIGKILL); the next call returns within the timeout with an error naming
#     198.18.2.2:2233; a flow over sensors 1 and 3 made before keeps working and a new one
#     works; after mapicommd 2 is restarted a new flow over all three works; then sensor 3's
#     mapicommd is stopped (SIGSTOP, a hung sensor): a read returns within dimapi_timeout
#     (3 s) + 1 s with an error naming 198.18.3.2:2233.
#  4. Every mapicommd and mapid stops on SIGTERM with status 0.
#
# Usage: test_dimapi.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tests/dimapi_env.sh
. "$(dirname "$0")/dimapi_env.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the DiMAPI test needs root (network namespaces)"
    exit 77
fi
common_init "$@"
for b in "$BUILD/mapicommd" "$TBIN/mapi_dimapi" "$BUILD/examples/remote_count" \
    "$BUILD/tools/netload"; do
    [ -x "$b" ] || die "missing $b: build first"
done
command -v openssl >/dev/null || die "openssl is missing"
command -v tcpdump >/dev/null || die "tcpdump is missing"

T0=$(date +%s.%N)
elapsed()
{
    awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'
}

denv_init "$TMPD" "$BUILD" "mapitest-$$"
CLEANUP_CMDS="denv_cleanup"
if ! denv_client_ns 2>/dev/null; then
    echo "SKIP: cannot create network namespaces here"
    exit 77
fi

N=(0 300 500 700) # packets per sensor (index = sensor number)
TOTAL=$((N[1] + N[2] + N[3]))
PORT=2233
SCOPE="198.18.1.2:dsen1, 198.18.2.2:dsen2, 198.18.3.2:dsen3"
OTHERS="198.18.1.2:dsen1, 198.18.3.2:dsen3"

# Certificates: the CA, one server certificate per sensor (SAN = its address), a client
# certificate, and another CA (for the wrong-CA client).
denv_ca ca || die "cannot make the test CA"
denv_ca otherca || die "cannot make the second CA"
for i in 1 2 3; do
    denv_cert ca "sensor$i" server "IP:198.18.$i.2,DNS:sensor$i" || die "certificate of sensor $i"
done
denv_cert ca client client "DNS:client" || die "client certificate"
pass "test CAs and certificates made with openssl ($(elapsed))"

for i in 1 2 3; do
    denv_sensor "$i" || die "cannot set up sensor namespace $i"
    denv_mapid "$i" || die "mapid of sensor $i"
    denv_mapicommd "$i" tls "$PORT" || die "mapicommd of sensor $i"
done
pass "3 sensors with mapid and mapicommd up ($(elapsed))"

denv_client_conf client
denv_client_conf wrongca otherca client
denv_client_conf nocert ca -
denv_client_conf plain ca client "dimapi_plaintext=1"
CONF=$TMPD/client.conf

# in_client CONF CMD...: runs CMD in the client namespace with MAPI_CONF=CONF, in place of the
# shell that calls it: use it as "in_client ... &" (then $! is CMD's pid) or in $( ).
in_client()
{
    local conf=$1
    shift
    exec ip netns exec "$DENV_CNS" env MAPI_CONF="$conf" "$@"
}

# ---- 1. traffic ------------------------------------------------------------------------------

for i in 1 2 3; do
    ip netns exec "$(denv_ns "$i")" tcpdump -i "dsen$i" -n -U --immediate-mode -s 2048 -B 16384 -w "$TMPD/cap$i.pcap" \
        'udp and dst port 9' >/dev/null 2>"$TMPD/tcpdump$i.err" &
    echo $! >"$TMPD/tcpdump$i.pid"
    denv_track "$(cat "$TMPD/tcpdump$i.pid")"
done

in_client "$CONF" "$TBIN/mapi_dimapi" traffic "$SCOPE" "$TOTAL" 20 \
    >"$TMPD/traffic.out" 2>"$TMPD/traffic.err" &
client=$!
track_pid "$client"
in_client "$CONF" "$BUILD/examples/remote_count" "$SCOPE" "udp and dst port 9" 40 \
    >"$TMPD/example.out" 2>"$TMPD/example.err" &
example=$!
track_pid "$example"
in_client "$CONF" "$BUILD/tools/netload" -i 0.5 -f "udp and dst port 9" --json "$SCOPE" \
    >"$TMPD/netload.out" 2>"$TMPD/netload.err" &
netload=$!
track_pid "$netload"

wait_ready "$TMPD/traffic.out" "$client" ||
    die "the traffic client did not get ready: $(cat "$TMPD/traffic.err")"
for _ in $(seq 100); do
    grep -q '^Total' "$TMPD/example.out" && break
    kill -0 "$example" 2>/dev/null || break
    sleep 0.1
done
grep -q '^Total' "$TMPD/example.out" ||
    die "remote_count printed no result: $(cat "$TMPD/example.out" "$TMPD/example.err")"
for i in 1 2 3; do
    denv_wait 10 grep -q "listening on" "$TMPD/tcpdump$i.err" || die "tcpdump $i did not start"
done
pass "clients connected over TLS ($(elapsed))"

# The sender: N[I] packets to 198.18.I.2 port 9, interleaved, payload = 4-byte sequence number
# (per sensor) + padding, sizes cycling 18..1000 bytes; prints "I packets wire_bytes" per sensor.
ip netns exec "$DENV_CNS" "$PY" - "${N[1]}" "${N[2]}" "${N[3]}" >"$TMPD/sent" <<'EOF'
import socket, struct, sys, time
n = [int(a) for a in sys.argv[1:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = [0] * len(n)
wire = [0] * len(n)
k = 0
while any(sent[i] < n[i] for i in range(len(n))):
    for i in range(len(n)):
        if sent[i] >= n[i]:
            continue
        size = 18 + (sent[i] * 37 + i * 101) % 983
        s.sendto(struct.pack("!I", sent[i]) + bytes(size - 4), ("198.18.%d.2" % (i + 1), 9))
        sent[i] += 1
        wire[i] += size + 42
        k += 1
        if k % 50 == 0:
            time.sleep(0.002)  # stay below the veth receive backlog
for i in range(len(n)):
    print(i + 1, sent[i], wire[i])
EOF
wait "$client" || die "the traffic client failed: $(cat "$TMPD/traffic.err")"
cat "$TMPD/traffic.out"

# tcpdump: stop, then count what each sensor's interface saw.
for i in 1 2 3; do
    p=$(cat "$TMPD/tcpdump$i.pid")
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
done

get()
{
    sed -n "s/^$1 //p" "$TMPD/traffic.out" | head -n 1
}
check()
{
    if [ "$(get "$1")" = "$2" ]; then
        pass "$1 = $2${3:+ ($3)}"
    else
        fail "$1 = '$(get "$1")', expected $2${3:+ ($3)}"
    fi
}
check scope_size 3
check is_remote 1
want_total=0
for i in 1 2 3; do
    read -r _ sent_pkts sent_bytes < <(awk -v i="$i" '$1 == i' "$TMPD/sent")
    [ "$sent_pkts" = "${N[$i]}" ] || fail "the sender sent $sent_pkts packets to sensor $i"
    seen=$(tcpdump_count "$TMPD/cap$i.pcap" "")
    [ "$seen" = "$sent_pkts" ] ||
        fail "tcpdump on sensor $i saw $seen packets, the sender sent $sent_pkts ($(tr '\n' ' ' <"$TMPD/tcpdump$i.err"))"
    check "pkts_$i" "$sent_pkts" "PKT_COUNTER, sensor $i"
    check "bytes_$i" "$sent_bytes" "BYTE_COUNTER, sensor $i"
    check "buf_$i" "$sent_pkts" "TO_BUFFER packets from 198.18.$i.1"
    check "bufbytes_$i" "$sent_bytes"
    check "bufseq_$i" 1 "sensor $i's packets in order"
    want_total=$((want_total + sent_pkts))
done
check pkts_total "$want_total"
check buf_total "$want_total"
check buf_other 0
check stats_n 3 "mapi_stats over the scope"
echo "info: longest run of packets from one sensor in mapi_get_next_pkt: $(get longest_run) of $want_total"

# The 6.4 program: wait for a block of lines with the final counts, then stop it (SIGTERM).
ex_ok=0
for _ in $(seq 60); do
    if awk -v a="${N[1]}" -v b="${N[2]}" -v c="${N[3]}" -v t="$want_total" '
        /^pkts in host 0 / { h0 = $NF } /^pkts in host 1 / { h1 = $NF } /^pkts in host 2 / { h2 = $NF }
        /^Total pkts: / { if (h0 == a && h1 == b && h2 == c && $NF == t) ok = 1 }
        END { exit !ok }' "$TMPD/example.out"; then
        ex_ok=1
        break
    fi
    kill -0 "$example" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$example" 2>/dev/null || true
ex_rc=0
wait "$example" || ex_rc=$?
if [ "$ex_ok" -eq 1 ] && [ "$ex_rc" -eq 0 ]; then
    pass "remote_count (tutorial 6.4): per host ${N[1]} ${N[2]} ${N[3]}, total $want_total, exit 0 on SIGTERM"
else
    fail "remote_count: final counts not seen (want ${N[1]} ${N[2]} ${N[3]} / $want_total) or exit status $ex_rc"
    tail -n 8 "$TMPD/example.out"
    cat "$TMPD/example.err"
fi
# No count may exceed what was sent (the last block printed).
if awk -v t="$want_total" '/^Total pkts: / && $NF > t { bad = 1 } END { exit !bad }' "$TMPD/example.out"; then
    fail "remote_count printed a total above $want_total"
fi
# netload: the packets and bytes of its reports, summed per sensor, are what was sent.
netload_sums()
{
    "$PY" - "$TMPD/netload.out" <<'EOF'
import json, sys
pk, by = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    for s in r["sensors"]:
        pk[s["sensor"]] = pk.get(s["sensor"], 0) + s["pkts"]
        by[s["sensor"]] = by.get(s["sensor"], 0) + s["bytes"]
print(" ".join("%s=%d/%d" % (k, pk[k], by[k]) for k in sorted(pk)))
EOF
}
want_nl=""
for i in 1 2 3; do
    read -r _ sent_pkts sent_bytes < <(awk -v i="$i" '$1 == i' "$TMPD/sent")
    want_nl="$want_nl${want_nl:+ }198.18.$i.2:dsen$i=$sent_pkts/$sent_bytes"
done
got_nl=""
for _ in $(seq 50); do
    got_nl=$(netload_sums 2>/dev/null || true)
    [ "$got_nl" = "$want_nl" ] && break
    kill -0 "$netload" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$netload" 2>/dev/null || true
nl_rc=0
wait "$netload" || nl_rc=$?
if [ "$got_nl" = "$want_nl" ] && [ "$nl_rc" -eq 0 ]; then
    pass "netload --json: per-sensor packets/bytes summed over its reports: $got_nl"
else
    fail "netload: '$got_nl' (status $nl_rc), expected '$want_nl': $(tail -n 2 "$TMPD/netload.out") $(cat "$TMPD/netload.err")"
fi
pass "traffic checks done ($(elapsed))"

# ---- 2. TLS refusals ---------------------------------------------------------------------

refusal()
{
    local conf=$1 what=$2 out=$TMPD/refuse-$1.out rc=0
    timeout 20 ip netns exec "$DENV_CNS" env MAPI_CONF="$TMPD/$conf.conf" \
        "$TBIN/mapi_dimapi" refuse "198.18.1.2:dsen1" >"$out" 2>&1 || rc=$?
    local call err el
    call=$(sed -n 's/^failed //p' "$out")
    err=$(sed -n 's/^error //p' "$out")
    el=$(sed -n 's/^elapsed //p' "$out")
    if [ "$rc" -ne 0 ] || [ -z "$call" ] || [ "$call" = none ]; then
        fail "$what: the client was not refused (status $rc): $(tr '\n' ' ' <"$out")"
    elif ! printf '%s' "$err" | grep -q "198\.18\.1\.2:$PORT"; then
        fail "$what: $call failed but the error does not name 198.18.1.2:$PORT: '$err'"
    elif ! awk -v e="$el" 'BEGIN { exit !(e < 2.0) }'; then
        fail "$what: refused only after $el s (dimapi_timeout is 3 s): '$err'"
    else
        pass "$what: $call failed in $el s: $err"
    fi
}
refusal wrongca "client trusting another CA"
refusal nocert "client without a client certificate"
refusal plain "plain-TCP client against the TLS mapicommd"
for i in 1 2 3; do
    kill -0 "$(cat "$TMPD/s$i-tls.pid")" 2>/dev/null || fail "mapicommd $i died after the refusals"
done

# ---- 3. a dead sensor, a restarted one, a hung one -----------------------------------------

# wait_line LINE SECONDS: waits for LINE in the kill client's output, or for the client to exit.
wait_line()
{
    local n
    for n in $(seq $(($2 * 20))); do
        grep -qx "$1" "$TMPD/kill.out" && return 0
        kill -0 "$kc" 2>/dev/null || break
        sleep 0.05
    done
    grep -qx "$1" "$TMPD/kill.out"
}

in_client "$CONF" "$TBIN/mapi_dimapi" kill "$SCOPE" "$OTHERS" "$TMPD" \
    >"$TMPD/kill.out" 2>"$TMPD/kill.err" &
kc=$!
track_pid "$kc"
wait_ready "$TMPD/kill.out" "$kc" || die "the kill client did not get ready: $(cat "$TMPD/kill.err")"
sleep 0.3
kill_at=$(date +%s.%N)
denv_kill_pid "$(cat "$TMPD/s2-tls.pid")"
wait_line step2 25 || true
kget()
{
    sed -n "s/^$1 //p" "$TMPD/kill.out" | head -n 1
}
fail_at=$(kget fail_at)
if [ -z "$fail_at" ] || [ "$fail_at" = none ]; then
    fail "killed sensor 2: no call on the flow over three sensors failed ($(tr '\n' ' ' <"$TMPD/kill.out") $(cat "$TMPD/kill.err"))"
else
    took=$(awk -v a="$kill_at" -v b="$fail_at" 'BEGIN { printf "%.2f", b - a }')
    if ! kget fail_error | grep -q "198\.18\.2\.2:$PORT"; then
        fail "killed sensor 2: the error does not name 198.18.2.2:$PORT: '$(kget fail_error)'"
    elif ! awk -v t="$took" 'BEGIN { exit !(t < 4.0) }'; then
        fail "killed sensor 2: the failing call returned $took s after the kill (timeout 3 s)"
    else
        pass "killed sensor 2: the next call failed $took s after the kill (call took $(kget fail_ms) ms): $(kget fail_error)"
    fi
fi
if [ "$(kget others_ok)" = 1 ]; then
    pass "the flow over sensors 1 and 3 made before the kill still works"
else
    fail "the flow over sensors 1 and 3 failed after sensor 2 died: $(kget others_error)"
fi
if [ "$(kget new_ok)" = 1 ]; then
    pass "a new flow over sensors 1 and 3 works"
else
    fail "a new flow over sensors 1 and 3 failed: $(kget new_error) $(cat "$TMPD/kill.err")"
fi

if grep -qx step2 "$TMPD/kill.out"; then
    denv_mapicommd 2 tls "$PORT" || fail "mapicommd 2 could not be restarted"
    touch "$TMPD/go2"
    wait_line step3 15 || true
    if [ "$(kget restart_ok)" = 1 ]; then
        pass "after mapicommd 2 restarted, a new flow over all three works"
    else
        fail "a new flow over all three sensors after the restart failed: $(kget restart_error)"
    fi
fi
if grep -qx step3 "$TMPD/kill.out"; then
    kill -STOP "$(cat "$TMPD/s3-tls.pid")"
    touch "$TMPD/go3"
    wait_line "done" 15 || true
    kill -CONT "$(cat "$TMPD/s3-tls.pid")"
    hang_ms=$(kget hang_ms)
    if [ -z "$hang_ms" ] || [ "$hang_ms" = none ]; then
        fail "hung sensor 3: the read did not fail ($(tail -n 3 "$TMPD/kill.out"))"
    elif ! kget hang_error | grep -q "198\.18\.3\.2:$PORT"; then
        fail "hung sensor 3: the error does not name 198.18.3.2:$PORT: '$(kget hang_error)'"
    elif [ "$hang_ms" -gt 4000 ]; then
        fail "hung sensor 3: the read returned after $hang_ms ms (dimapi_timeout 3000)"
    else
        pass "hung sensor 3 (SIGSTOP): the read failed after $hang_ms ms: $(kget hang_error)"
    fi
fi
kc_rc=0
wait "$kc" || kc_rc=$?
[ "$kc_rc" -eq 0 ] || fail "the kill client exited with status $kc_rc: $(cat "$TMPD/kill.err")"

# ---- 4. clean stop -------------------------------------------------------------------------

# stop_clean WHAT PID OUT: SIGTERM, then exit status 0 within 5 s.
stop_clean()
{
    local what=$1 p=$2 rc=0
    kill -TERM "$p" 2>/dev/null || {
        fail "$what was not running at the end"
        return 0
    }
    if ! denv_wait 5 eval "! kill -0 $p 2>/dev/null"; then
        fail "$what did not stop within 5 s of SIGTERM"
        return 0
    fi
    wait "$p" 2>/dev/null || rc=$?
    denv_untrack "$p"
    if [ "$rc" -eq 0 ]; then
        pass "$what stopped cleanly on SIGTERM"
    else
        fail "$what exited with status $rc on SIGTERM ($(tail -n 3 "$3"))"
    fi
}
for i in 1 2 3; do
    stop_clean "mapicommd $i" "$(cat "$TMPD/s$i-tls.pid")" "$TMPD/s$i-tls.out"
done
for i in 1 2 3; do
    stop_clean "mapid $i" "$(cat "$TMPD/s$i.pid")" "$TMPD/s$i.out"
done
echo "elapsed: $(elapsed)"
if [ "$FAILURES" -ne 0 ]; then
    for i in 1 2 3; do
        echo "---- mapicommd $i (last 10 lines) ----"
        tail -n 10 "$TMPD/s$i-tls.out" 2>/dev/null
    done
fi
finish
