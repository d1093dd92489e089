#!/usr/bin/env bash
# tests/test_mapid_decode.sh - mapid decodes every request completely and strictly before it
# acts on it (daemon/mapid/request.c). An unprivileged user sends, each on a fresh connection
# that already holds a trace flow, requests that mapid used to accept or answer with an error
# but are malformed: trailing bytes (CONNECT, FLOW_INFO), an APPLY_FUNCTION string argument
# with a NUL byte, an unknown argument letter, a 'w' index >= WIRE_MAX_FDS (64), 33 arguments
# (more than MAPID_REQ_MAX_ARGS), 2^32-1 arguments, plus a truncated field, a device name of
# 512 bytes, an unknown type and a request with the error flag. Each must close that
# connection without a reply. Well-formed requests that break a rule still get their error
# number (7000 argument count, 7001 argument type, 6155 'w' index without a descriptor, 6145
# unknown flow, 6144 unknown function), and the connection keeps working. Afterwards mapid is
# alive, logged the malformed messages, and another user's PKT_COUNTER on weibo.pcap equals
# tcpdump's count.
#
# Usage: test_mapid_decode.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

hostile_setup weibo.pcap

start_mapid decode

ATTACK='
import os, socket, struct, sys
import mapiwire as mw
sock, trace = sys.argv[1], sys.argv[2]

def connect():
    """A connection holding one trace flow; returns (client, flow id)."""
    c = mw.Client(sock)
    fd = os.open(trace, os.O_RDONLY)
    try:
        flags, body = c.call(mw.CREATE_OFFLINE_FLOW, mw.u32(0) + mw.s(trace), fds=[fd])
    finally:
        os.close(fd)
    if flags & mw.F_ERROR:
        raise RuntimeError("create_offline_flow: %s" % (mw.error(body),))
    return c, mw.Reader(body).i32()

def apply(flow, name, args, nargs=None):
    return mw.i32(flow) + mw.s(name) + mw.u32(len(args) if nargs is None else nargs) + \
        b"".join(args)

def closed(name, build, typ=None, raw=None, flags=0):
    """Sends one malformed request; prints "NAME closed" if mapid hangs up without a reply."""
    c, flow = connect()
    if raw is None:
        payload = build(flow)
        c.sock.sendall(mw.header(typ, len(payload), 77, flags=flags) + payload)
    else:
        c.sock.sendall(raw(flow))
    try:
        typ_, fl, rid, body = c.recv()
        what = "reply"
        if fl & mw.F_ERROR:
            what = "error %d" % mw.error(body)[0]
        print(name, what, flush=True)
    except (EOFError, ConnectionResetError):
        print(name, "closed", flush=True)
    c.close()

closed("trailing_connect", lambda f: mw.i32(f) + b"\0", mw.CONNECT)
closed("trailing_flow_info", lambda f: mw.i32(f) + mw.u8(0) + b"xyz", mw.FLOW_INFO)
closed("nul_arg", lambda f: apply(f, "BPF_FILTER", [mw.u8(ord("s")) + mw.s("tcp\0port 80")]),
       mw.APPLY_FUNCTION)
closed("bad_letter", lambda f: apply(f, "BPF_FILTER", [mw.u8(ord("x")) + mw.i32(0)]),
       mw.APPLY_FUNCTION)
closed("w_index", lambda f: apply(f, "TO_FILE", [mw.arg("i", 0), mw.arg("w", 64), mw.arg("l", 0)]),
       mw.APPLY_FUNCTION)
closed("many_args", lambda f: apply(f, "PKT_COUNTER", [mw.arg("i", 1)] * 33), mw.APPLY_FUNCTION)
closed("huge_nargs", lambda f: apply(f, "PKT_COUNTER", [], 0xFFFFFFFF), mw.APPLY_FUNCTION)
closed("truncated", lambda f: mw.i32(f)[:3], mw.CLOSE_FLOW)
closed("long_device", lambda f: mw.s("d" * 512), mw.STATS)
closed("unknown_type", lambda f: b"", 99)
closed("error_flag", lambda f: mw.i32(f), mw.CLOSE_FLOW, flags=mw.F_ERROR)

# Well-formed requests that break a rule: an error number, and the connection goes on.
c, flow = connect()
def code(payload, typ=mw.APPLY_FUNCTION):
    flags, body = c.call(typ, payload)
    return mw.error(body)[0] if flags & mw.F_ERROR else 0
print("nargs_mismatch", code(apply(flow, "PKT_COUNTER", [mw.arg("i", 1)])))
print("wrong_letter", code(apply(flow, "BPF_FILTER", [mw.arg("i", 1)])))
print("w_no_fd", code(apply(flow, "TO_FILE", [mw.arg("i", 0), mw.arg("w", 63), mw.arg("l", 0)])))
print("no_flow", code(apply(flow + 1000, "PKT_COUNTER", [])))
print("no_function", code(apply(flow, "NO_SUCH_FUNCTION", [])))
print("max_args_ok", code(apply(flow, "PKT_COUNTER", [mw.arg("c", 65)] * 32)))
print("still_serving", code(apply(flow, "PKT_COUNTER", [])))
'
cat >"$TMPD/attack.want" <<'EOF2'
trailing_connect closed
trailing_flow_info closed
nul_arg closed
bad_letter closed
w_index closed
many_args closed
huge_nargs closed
truncated closed
long_device closed
unknown_type closed
error_flag closed
nargs_mismatch 7000
wrong_letter 7001
w_no_fd 6155
no_flow 6145
no_function 6144
max_args_ok 7000
still_serving 0
EOF2
if raw_py "${AS_EVIL[@]}" -- "$ATTACK" "$TMPD/decode.sock" "$TMPD/weibo.pcap" \
    >"$TMPD/attack.got" 2>"$TMPD/attack.err"; then
    if cmp -s "$TMPD/attack.want" "$TMPD/attack.got"; then
        pass "11 malformed requests close their connection; rule breaks get 7000/7001/6155/6145/6144"
    else
        fail "attack (want | got):"
        diff "$TMPD/attack.want" "$TMPD/attack.got" || true
    fi
else
    fail "the attack script failed: $(tail -n 5 "$TMPD/attack.err")"
fi

if mapid_alive decode; then
    pass "mapid survived the malformed requests"
else
    fail "mapid died"
    tail -n 20 "$TMPD/decode.out"
fi
n=$(grep -c "sent a malformed message" "$TMPD/decode.log" 2>/dev/null || true)
u=$(grep -c "sent unknown message type" "$TMPD/decode.log" 2>/dev/null || true)
if [ "${n:-0}" -ge 9 ] && [ "${u:-0}" -ge 2 ]; then
    pass "mapid logged $n malformed and $u unknown messages"
else
    fail "mapid logged ${n:-0} malformed (want 9) and ${u:-0} unknown (want 2) messages"
fi

got=$("${AS_VICTIM[@]}" "$TBIN/mapi_count" -t 30 "$TMPD/weibo.pcap" pcap "" 2>"$TMPD/victim.err" |
    awk -F'\t' '{print $2}')
if [ "$got" = "$WANT" ]; then
    pass "another user's PKT_COUNTER on weibo.pcap counts $got packets (tcpdump: $WANT)"
else
    fail "another user's count: got '$got', tcpdump $WANT ($(cat "$TMPD/victim.err"))"
fi

stop_mapid decode
finish
