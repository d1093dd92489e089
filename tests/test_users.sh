#!/usr/bin/env bash
# tests/test_users.sh - the security rules of mapid.
#  * Limits of mapi.conf (any user), with the old key names (still accepted; the limits now
#    hold per uid over all its connections, see test_user_limits.sh): max_flows_per_client=3
#    (the 4th mapi_create_flow / mapi_create_offline_flow fails with 3085),
#    max_functions_per_flow=2 (the 3rd apply fails with 3085), max_shm_per_client=2M with
#    buffer_size=4M (connecting a flow with TO_BUFFER fails with 3085, one with only
#    PKT_COUNTER connects).
#  * Users (needs root; without root these checks are skipped and the verdict is that of the
#    limits): mapid identifies clients by SO_PEERCRED. The socket is mode 0660, group
#    socket_group. A user lists (FLOW_INFO) and closes (CLOSE_FLOW) only the flows of their
#    own uid; root lists and closes all. The unprivileged client runs as nobody:nogroup
#    (setpriv); CLOSE_FLOW is sent raw (python3) with another user's flow id.
# (Clients killed with SIGKILL are covered by test_multi_client.sh.)
#
# Usage: test_users.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

# Global keys of this test's mapi.conf; mapid accepts global keys only before any [section],
# and write_conf appends its extra text after the [format] sections.
GLOBALS="max_flows_per_client=3
max_functions_per_flow=2
max_shm_per_client=2M"
BUFFER_SIZE=4M


# The trace, readable by nobody (the source tree may not be).
cp "$DATA/weibo.pcap" "$TMPD/trace.pcap"
chmod 644 "$TMPD/trace.pcap"

start_mapid users ""
for k in max_flows_per_client=3 max_functions_per_flow=2 max_shm_per_client=2M; do
    grep -qx "$k" "$TMPD/users.conf" || die "the test's mapi.conf lacks $k"
done

# Limits ------------------------------------------------------------------------------------
cat >"$TMPD/limits.want" <<'EOF'
create1 OK
create2 OK
create3 OK
create4 ERR 3085
offline4 ERR 3085
reopen OK
apply1 OK
apply2 OK
apply3 ERR 3085
tobuffer_connect ERR 3085
counter_connect OK
EOF
if "$TBIN/mapi_hold" limits "$TMPD/trace.pcap" >"$TMPD/limits.got" 2>"$TMPD/limits.err"; then
    if cmp -s "$TMPD/limits.want" "$TMPD/limits.got"; then
        pass "limits: 4th flow, 3rd function and a 4 MiB ring over 2 MiB of shm fail with 3085"
    else
        fail "limits (want | got):"
        diff "$TMPD/limits.want" "$TMPD/limits.got" || true
    fi
else
    fail "mapi_hold limits failed: $(cat "$TMPD/limits.err")"
fi

# Users -------------------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the users checks need root to run a second user"
    stop_mapid users
    finish
fi
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
NOBODY_UID=$(id -u nobody)
if ! "${NOBODY[@]}" test -x "$TBIN/mapi_flows"; then
    echo "SKIP: the users checks: nobody cannot run the programs in $TBIN"
    stop_mapid users
    [ "$FAILURES" -eq 0 ] || finish
    exit 77
fi

# listing [nobody]: "id uid" of every flow mapi_flows lists (as root, or as nobody), or ERR.
listing()
{
    local out
    if [ "${1:-}" = nobody ]; then
        out=$("${NOBODY[@]}" "$TBIN/mapi_flows" 2>&1) || {
            echo "ERR $out"
            return 0
        }
    else
        out=$("$TBIN/mapi_flows" 2>&1) || {
            echo "ERR $out"
            return 0
        }
    fi
    echo "$out" | awk -F '\t' 'NF >= 5 { print $1, $2 }'
}

# raw_close [nobody] ID: sends HELLO and a raw CLOSE_FLOW for mapid's flow ID; prints "ok",
# "err CODE" or "fail REASON".
RAW_CLOSE='
import socket, struct, sys
MAGIC, HELLO, CLOSE_FLOW = 0x4D415049, 1, 10
def recvall(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("mapid closed the connection")
        b += c
    return b
def call(s, typ, reqid, payload):
    s.sendall(struct.pack("!IBBHII", MAGIC, 1, 0, typ, len(payload), reqid) + payload)
    while True:
        magic, ver, flags, rtyp, length, rid = struct.unpack("!IBBHII", recvall(s, 16))
        body = recvall(s, length)
        if rid == 0:
            continue  # unsolicited
        if magic != MAGIC or rtyp != typ or rid != reqid:
            raise ValueError("unexpected reply type %d id %d" % (rtyp, rid))
        return flags, body
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    flags, _ = call(s, HELLO, 1, struct.pack("!HH", 1, 1))
    if flags & 1:
        raise ValueError("HELLO failed")
    flags, body = call(s, CLOSE_FLOW, 2, struct.pack("!i", int(sys.argv[2])))
    print("err %d" % struct.unpack("!i", body[:4])[0] if flags & 1 else "ok")
except (OSError, EOFError, ValueError, struct.error) as e:
    print("fail %s" % e)
'
raw_close()
{
    if [ "$1" = nobody ]; then
        "${NOBODY[@]}" "$PY" -c "$RAW_CLOSE" "$TMPD/users.sock" "$2"
    else
        "$PY" -c "$RAW_CLOSE" "$TMPD/users.sock" "$1"
    fi
}

# (a) The socket.
sockperm=$(stat -c '%a %G' "$TMPD/users.sock")
if [ "$sockperm" = "660 nogroup" ]; then
    pass "the socket has mode 0660 and group nogroup"
else
    fail "the socket has mode and group '$sockperm', expected '660 nogroup'"
fi

# (b) A root client and a nobody client, each holding a connected flow.
"$TBIN/mapi_hold" hold "$TMPD/trace.pcap" "$TMPD/stop" >"$TMPD/root.out" 2>"$TMPD/root.err" &
proot=$!
track_pid "$proot"
wait_ready "$TMPD/root.out" "$proot" || die "root's client did not get ready: $(cat "$TMPD/root.err")"
"${NOBODY[@]}" "$TBIN/mapi_hold" hold "$TMPD/trace.pcap" "$TMPD/stop" >"$TMPD/nobody.out" \
    2>"$TMPD/nobody.err" &
pnobody=$!
track_pid "$pnobody"
wait_ready "$TMPD/nobody.out" "$pnobody" ||
    die "nobody's client did not get ready: $(cat "$TMPD/nobody.err")"
rid=$(sed -n 's/^id //p' "$TMPD/root.out")
nid=$(sed -n 's/^id //p' "$TMPD/nobody.out")
if [ -z "$rid" ] || [ -z "$nid" ] || [ "$rid" = "$nid" ]; then
    die "flow ids: root's '$rid', nobody's '$nid'"
fi

# (c) Listings.
got=$(listing nobody)
if [ "$got" = "$nid $NOBODY_UID" ]; then
    pass "nobody lists only its own flow"
else
    fail "nobody lists [$got], expected [$nid $NOBODY_UID]"
fi
want=$(printf '%s\n' "$rid 0" "$nid $NOBODY_UID" | sort -n)
got=$(listing)
if [ "$got" = "$want" ]; then
    pass "root lists the flows of both users"
else
    fail "root lists [$got], expected [$want]"
fi

# (c2) nobody may not reference root's flow in a function's arguments: a raw client of
# nobody's (libmapi would only translate nobody's own descriptors) creates a trace flow,
# applies PKT_COUNTER, then BINOP naming root's flow ('r', refused by mapid with 7002), SYNC
# listing root's flow ('R', refused with 7001) and, as a control, SYNC listing its own flow.
RAW_REF='
import socket, struct, sys, os
MAGIC, HELLO, CREATE_OFFLINE_FLOW, APPLY = 0x4D415049, 1, 6, 8
def recvall(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("mapid closed the connection")
        b += c
    return b
def call(s, typ, reqid, payload, fds=()):
    msg = struct.pack("!IBBHII", MAGIC, 1, 0, typ, len(payload), reqid) + payload
    if fds:
        socket.send_fds(s, [msg], list(fds))
    else:
        s.sendall(msg)
    while True:
        magic, ver, flags, rtyp, length, rid = struct.unpack("!IBBHII", recvall(s, 16))
        body = recvall(s, length)
        if rid == 0:
            continue
        return flags, body
def wstr(t):
    b = t.encode()
    return struct.pack("!I", len(b)) + b
def apply(s, reqid, flow, name, args):
    p = struct.pack("!i", flow) + wstr(name) + struct.pack("!I", len(args))
    for letter, v in args:
        p += letter.encode() + (wstr(v) if letter in "sSR" else struct.pack("!i", v))
    flags, body = call(s, APPLY, reqid, p)
    return "err %d" % struct.unpack("!i", body[:4])[0] if flags & 1 else "ok"
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    call(s, HELLO, 1, struct.pack("!HH", 1, 1))
    tf = os.open(sys.argv[2], os.O_RDONLY)
    flags, body = call(s, CREATE_OFFLINE_FLOW, 2, struct.pack("!I", 0) + wstr(sys.argv[2]), [tf])
    if flags & 1:
        raise ValueError("CREATE_OFFLINE_FLOW failed")
    own = struct.unpack("!i", body[:4])[0]
    root = int(sys.argv[3])
    print(apply(s, 3, own, "PKT_COUNTER", []),
          apply(s, 4, own, "BINOP", [("i", 0), ("r", root), ("f", 1), ("r", own), ("f", 1)]),
          apply(s, 5, own, "SYNC", [("R", str(root))]),
          apply(s, 6, own, "SYNC", [("R", str(own))]))
except (OSError, EOFError, ValueError, struct.error) as e:
    print("fail %s" % e)
'
got=$("${NOBODY[@]}" "$PY" -c "$RAW_REF" "$TMPD/users.sock" "$TMPD/trace.pcap" "$rid")
if [ "$got" = "ok err 7002 err 7001 ok" ]; then
    pass "nobody's references to root's flow are refused (7002 'r', 7001 'R'), its own accepted"
else
    fail "nobody's references to root's flow: got '$got', expected 'ok err 7002 err 7001 ok'"
fi

# (d) nobody may not close root's flow.
got=$(raw_close nobody "$rid")
if [ "$got" = "err 3086" ]; then
    pass "nobody's CLOSE_FLOW of root's flow fails with 3086"
else
    fail "nobody's CLOSE_FLOW of root's flow: got '$got', expected 'err 3086'"
fi
got=$(listing)
if [ "$got" = "$want" ]; then
    pass "root's flow still exists after nobody's CLOSE_FLOW"
else
    fail "after nobody's CLOSE_FLOW root lists [$got], expected [$want]"
fi

# (e) root may close nobody's flow.
got=$(raw_close "$nid")
if [ "$got" = "ok" ]; then
    pass "root's CLOSE_FLOW of nobody's flow succeeds"
else
    fail "root's CLOSE_FLOW of nobody's flow: got '$got', expected 'ok'"
fi
got=$(listing)
if [ "$got" = "$rid 0" ]; then
    pass "nobody's flow is gone"
else
    fail "after root's CLOSE_FLOW root lists [$got], expected [$rid 0]"
fi
got=$(listing nobody)
if [ -z "$got" ]; then
    pass "nobody lists no flow"
else
    fail "after root's CLOSE_FLOW nobody lists [$got], expected none"
fi

# The holders see the same from their side.
touch "$TMPD/stop"
wait "$proot" || fail "root's client failed: $(cat "$TMPD/root.err")"
wait "$pnobody" || fail "nobody's client failed: $(cat "$TMPD/nobody.err")"
if grep -qx "still open" "$TMPD/root.out"; then
    pass "root's client still has its flow"
else
    fail "root's client lost its flow: $(tail -n 1 "$TMPD/root.out")"
fi
if grep -q "^gone ERR " "$TMPD/nobody.out"; then
    pass "nobody's client sees its flow closed: $(tail -n 1 "$TMPD/nobody.out")"
else
    fail "nobody's client still sees its flow: $(tail -n 1 "$TMPD/nobody.out")"
fi

mapid_alive users || die "mapid died"
stop_mapid users
finish
