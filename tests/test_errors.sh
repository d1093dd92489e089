#!/usr/bin/env bash
# tests/test_errors.sh - error cases: each API misuse reports the documented MAPI error number
# (tests/mapi_errors.c), damaged traces end cleanly, clients that send garbage on mapid's
# socket only lose their own connection, and without mapid the library fails fast with 5124.
# After every group mapid must still be running and serve a normal client correctly.
#
# Usage: test_errors.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

TRACE=$DATA/weibo.pcap
"$PY" "$SRC/tests/oracle.py" "$TRACE" "tcp and dst port 80" >"$TMPD/health.want"

# run_case NAME ARGS...: runs mapi_errors with ARGS, shows its lines, counts a failure.
run_case()
{
    local name=$1
    shift
    if "$TBIN/mapi_errors" "$@" >"$TMPD/case.out" 2>&1; then
        sed 's/^/      /' "$TMPD/case.out"
        pass "$name"
    else
        sed 's/^/      /' "$TMPD/case.out"
        fail "$name"
    fi
}

# healthy WHEN: mapid is running and a normal client gets correct counts.
healthy()
{
    if ! mapid_alive errors; then
        die "mapid is not running $1"
    fi
    if "$TBIN/mapi_count" "$TRACE" pcap "tcp and dst port 80" >"$TMPD/health.got" 2>&1 &&
        cmp -s "$TMPD/health.want" "$TMPD/health.got"; then
        pass "mapid up and correct $1"
    else
        fail "a normal client $1: $(cat "$TMPD/health.got")"
    fi
}

start_mapid errors

# API misuse.
run_case "bad BPF filter -> 1025" badbpf "$TRACE"
run_case "unknown device -> 3200" nodev
run_case "unknown function -> 6144" nofunc "$TRACE"
run_case "apply after connect -> 7006" afterconnect "$TRACE"
run_case "read_results before connect -> 6143" notconnected "$TRACE"
run_case "unknown flow descriptor -> 6145" badfd "$TRACE"
run_case "unknown function descriptor -> 6147" badfid "$TRACE"
run_case "missing trace file -> 6155" nofile "$TMPD/no-such-file.pcap"
healthy "after the API errors"

# A trace we may not read. The client opens the file, so this needs a client without the
# power to read anything: as root, run it as nobody (who must reach the build and the socket).
cp "$TRACE" "$TMPD/unreadable.pcap"
chmod 000 "$TMPD/unreadable.pcap"
if [ "$(id -u)" -ne 0 ]; then
    run_case "unreadable trace file -> 6155" unreadable "$TMPD/unreadable.pcap"
elif command -v setpriv >/dev/null &&
    setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$TBIN/mapi_errors" 2>/dev/null; then
    if setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env MAPI_CONF="$MAPI_CONF" "$TBIN/mapi_errors" unreadable "$TMPD/unreadable.pcap" \
        >"$TMPD/case.out" 2>&1; then
        sed 's/^/      /' "$TMPD/case.out"
        pass "unreadable trace file -> 6155 (client run as nobody)"
    else
        sed 's/^/      /' "$TMPD/case.out"
        fail "unreadable trace file -> 6155 (client run as nobody)"
    fi
else
    echo "note: unreadable-file case skipped: user nobody cannot run $TBIN/mapi_errors"
fi

# Damaged traces: cut in the middle of a packet, and a record header with an absurd length.
# The flow must still finish, with tcpdump's count of the packets before the damage.
head -c 100000 "$TRACE" >"$TMPD/truncated.pcap"
"$PY" - "$TRACE" "$TMPD/bogus.pcap" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
off = 24
for _ in range(100):  # skip 100 records
    off += 16 + struct.unpack_from("<I", d, off + 8)[0]
struct.pack_into("<I", d, off + 8, 0x7FFFFFFF)  # caplen of record 101
open(sys.argv[2], "wb").write(d)
EOF
for bad in truncated bogus; do
    # tcpdump counts the good packets, then fails on the damage (so its status is ignored).
    want=$(tcpdump -r "$TMPD/$bad.pcap" --count 2>/dev/null | awk '/packets?$/ { print $1 }')
    [ -n "$want" ] || die "tcpdump does not count the packets of $bad.pcap"
    if "$TBIN/mapi_errors" corrupt "$TMPD/$bad.pcap" >"$TMPD/case.out" 2>&1; then
        got=$(sed -n 's/^pkts //p' "$TMPD/case.out")
        if [ "$got" = "$want" ]; then
            pass "$bad pcap: the flow finished after the $got good packets"
        else
            fail "$bad pcap: $got packets counted, tcpdump reads $want before the damage"
        fi
    else
        sed 's/^/      /' "$TMPD/case.out"
        fail "$bad pcap: $(tail -n 1 "$TMPD/case.out")"
    fi
done
# Not a capture at all (and an empty file): refused with an error number.
head -c 4096 /dev/urandom >"$TMPD/random.pcap"
: >"$TMPD/empty.pcap"
run_case "random bytes as a trace are refused" badheader "$TMPD/random.pcap"
run_case "an empty file as a trace is refused" badheader "$TMPD/empty.pcap"
healthy "after the damaged traces"

# Garbage on the socket. Each connection must be closed by mapid (or answered with an
# error), never crash or hang it.
if "$PY" - "$TMPD/errors.sock" <<'EOF'; then
import os, socket, struct, sys, time
path = sys.argv[1]
MAGIC, VERSION = 0x4D415049, 1

def hdr(type_, length, version=VERSION, magic=MAGIC, reqid=1):
    return struct.pack("!IBBHII", magic, version, 0, type_, length, reqid)

cases = [
    ("random bytes", os.urandom(4096)),
    ("bad magic", hdr(1, 4, magic=0xDEADBEEF) + b"\0\1\0\1"),
    ("bad version", hdr(1, 4, version=99) + b"\0\1\0\1"),
    ("huge length", hdr(1, 0xFFFFFFFF)),
    ("unknown type", hdr(999, 0)),
    ("string past the payload", hdr(2, 8) + struct.pack("!I", 1000) + b"eth0"),
    ("short payload, then close", hdr(2, 100) + b"abc"),
    ("half a header, then close", hdr(1, 4)[:7]),
    ("nothing, then close", b""),
]
bad = 0
for name, data in cases:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    try:
        s.sendall(data)
    except OSError:
        pass  # mapid may already have closed the connection
    if name.endswith("then close"):
        s.close()
        continue
    # mapid must close this connection (an error reply before that is fine).
    try:
        while s.recv(65536):
            pass
        print("ok:   garbage '%s': connection closed by mapid" % name)
    except socket.timeout:
        if name == "unknown type":
            print("ok:   garbage '%s': connection kept open (answered or ignored)" % name)
        else:
            print("FAIL: garbage '%s': mapid kept the connection open for 5 s" % name)
            bad += 1
    except ConnectionResetError:
        print("ok:   garbage '%s': connection reset by mapid" % name)
    s.close()
# Many idle connections at once, closed again.
socks = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    socks.append(s)
for s in socks:
    s.close()
time.sleep(0.2)
sys.exit(1 if bad else 0)
EOF
    pass "garbage on the socket"
else
    fail "garbage on the socket"
fi
healthy "after the garbage clients"

# A client whose mapid goes away must fail, not hang: a client waits with connected flows,
# mapid is stopped (SIGTERM), then the client proceeds.
"$TBIN/mapi_count" -w "$TMPD/go" "$TRACE" pcap tcp >"$TMPD/orphan.out" 2>"$TMPD/orphan.err" &
orphan=$!
track_pid "$orphan"
for _ in $(seq 200); do
    grep -qx ready "$TMPD/orphan.out" && break
    sleep 0.05
done
grep -qx ready "$TMPD/orphan.out" || die "the waiting client did not get ready"
stop_mapid errors
touch "$TMPD/go"
for _ in $(seq 100); do
    kill -0 "$orphan" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$orphan" 2>/dev/null; then
    fail "a client of a stopped mapid still hangs after 10 s"
elif wait "$orphan"; then
    fail "a client of a stopped mapid reported success: $(cat "$TMPD/orphan.out")"
else
    pass "a client of a stopped mapid fails: $(tail -n 1 "$TMPD/orphan.err")"
fi

# Out of descriptors: with a descriptor limit of 48, 100 clients connect at once. mapid must
# refuse the extra ones (EOF, or 3085 at their first request) without spinning on its listener,
# and serve clients again later.
# shellcheck disable=SC2016 # the inner shell expands $0 and $@
start_mapid fdlimit "" bash -c 'ulimit -n 48; exec "$0" "$@"'
fdpid=$(cat "$TMPD/fdlimit.pid")
ticks=$("$PY" - "$TMPD/fdlimit.sock" "$fdpid" <<'PYEOF'
import socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
def cpu():
    f = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
conns = []
for _ in range(100):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    conns.append(s)
time.sleep(0.3)
before = cpu()
time.sleep(1.0)
print(cpu() - before)
for s in conns:
    s.close()
time.sleep(0.3)
PYEOF
)
if [ "$ticks" -le 20 ] && "$TBIN/mapi_count" "$TRACE" pcap "" >"$TMPD/fdlimit.count" 2>&1; then
    pass "out of descriptors: mapid used $ticks ticks of CPU in 1 s and serves clients afterwards"
else
    fail "out of descriptors: mapid used $ticks ticks in 1 s; later client: $(cat "$TMPD/fdlimit.count")"
fi
# (max_connections is lowered to half the descriptor limit, so mapid refuses them before it
# runs out of descriptors: "refused a connection"; "refused a client" is the EMFILE fallback.)
grep -Eq "refused a (client|connection)" "$TMPD/fdlimit.out" ||
    fail "mapid did not log the refused clients"
stop_mapid fdlimit

# No mapid at all: 5124, quickly.
run_case "mapid not running -> 5124 within 2 s" notrunning "$TRACE"
finish
