#!/bin/bash
# tests/test_mapicommd.sh - mapicommd, the DiMAPI agent, spoken to by raw clients.
#
# Root only (skips with 77 otherwise): a private network namespace whose loopback device "lo"
# is mapid's capture device; mapid and mapicommd (as nobody, TLS with client certificates,
# dimapi_idle_timeout and dimapi_handshake_timeout 1500 ms, dimapi_max_clients 24) run in
# it, and so do the clients, which connect to 127.0.0.1 and send their test packets there (nothing leaves the namespace).
# Certificates come from test CAs made here with the openssl command: a CA with the server
# certificate (SAN IP:127.0.0.1) and a client certificate, and a second, "wrong" CA with a
# client certificate of its own.
#
# The clients are python3 (ssl + struct, tests/dimapiclient.py) speaking common/dimapi.h byte
# by byte, so the test does not depend on libmapi's remote back end. Checks (oracles: the packets python sent,
# mapi_flows listing mapid's flows):
#   - a full flow over TLS: HELLO, CREATE_FLOW lo, BPF_FILTER, PKT_COUNTER, BYTE_COUNTER,
#     TO_BUFFER (WAIT) and HASHSAMP (a queue); counts equal the packets sent, GET_PKTS hands
#     out every packet in order with the bytes sent, a queue gives one record per packet;
#     a NOWAIT TO_BUFFER in small batches (max_bytes respected); a blocked READ_RESULT of a
#     queue ended by CLOSE_FLOW; token scoping ('r', 'R', 'S' references to another
#     application's flow: 700x), 'w' names with ".." (6155), remote scopes (7009);
#   - bad input: bad magic, oversized length, truncated message, huge argument count,
#     flags in a request, a request before HELLO, unknown types (answered 7009, connection
#     kept), a silent TCP client and a silent TLS client (dropped after the idle timeout), a
#     client stalling mid-message, 2000 connections opened and dropped, more clients than
#     dimapi_max_clients (3085), a client certificate from the wrong CA, no client
#     certificate, a server certificate from the wrong CA (client side), plain TCP to the
#     TLS port (answered with a plain "requires TLS" error);
#   - after all that: the flows of dropped connections are gone from mapid, a well-behaved
#     client still gets exact counts, and mapicommd stops with status 0 on SIGTERM while a
#     client waits in GET_PKTS.
set -u
. "$(dirname "$0")/common.sh"
common_init "$@"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (a network namespace with lo as mapid's capture device)"
    exit 77
fi
MAPICOMMD=$BUILD/mapicommd
[ -x "$MAPICOMMD" ] || die "missing $MAPICOMMD: build first"
command -v openssl >/dev/null || {
    echo "SKIP: no openssl command"
    exit 77
}
id nobody >/dev/null 2>&1 || {
    echo "SKIP: no user nobody"
    exit 77
}

NS=mapitest-mc-$$
ip netns add "$NS" || die "cannot create a network namespace"
CLEANUP_CMDS="ip netns del $NS 2>/dev/null"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 2>/dev/null

# ---- certificates ----------------------------------------------------------------------
mkca()
{
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TMPD/$1.key" -out "$TMPD/$1.pem" -days 2 -subj "/CN=mapicommd test CA $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}
mkcert()
{
    local ca=$1 name=$2 eku=$3 san=$4
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$eku" "$san" >"$TMPD/$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TMPD/$name.key" -out "$TMPD/$name.csr" -subj "/CN=$name" >/dev/null 2>&1 &&
        openssl x509 -req -in "$TMPD/$name.csr" -CA "$TMPD/$ca.pem" -CAkey "$TMPD/$ca.key" \
            -CAcreateserial -days 2 -extfile "$TMPD/$name.ext" -out "$TMPD/$name.pem" \
            >/dev/null 2>&1
}
mkca ca && mkca wrongca &&
    mkcert ca server serverAuth "IP:127.0.0.1" &&
    mkcert ca client clientAuth "DNS:client" &&
    mkcert wrongca wrongclient clientAuth "DNS:client" &&
    mkcert wrongca wrongserver serverAuth "IP:127.0.0.1" || die "openssl could not make the test certificates"
pass "test CAs and certificates made with openssl"

# ---- mapid and mapicommd -----------------------------------------------------------------
start_mapid m "[driver]
device=lo
driver=mapinicdrv.so" ip netns exec "$NS"
MAPID_CONF=$TMPD/m.conf

PORT=$((20000 + $$ % 20000))
IDLE_MS=1500
MAXCL=24
cat >"$TMPD/mc.conf" <<EOF
# mapicommd of the test (libmapi inside reads socket= to reach mapid)
socket=$TMPD/m.sock
logfile=$TMPD/mc.log
syslog_level=0
dimapi_port=$PORT
dimapi_listen=127.0.0.1
dimapi_cert=$TMPD/server.pem
dimapi_key=$TMPD/server.key
dimapi_client_ca=$TMPD/ca.pem
dimapi_idle_timeout=$IDLE_MS
dimapi_handshake_timeout=$IDLE_MS
dimapi_max_clients=$MAXCL
EOF
chmod 644 "$TMPD/mc.conf"
chmod 600 "$TMPD/server.key" # read before mapicommd drops root

# Refuses root without -u.
if ip netns exec "$NS" "$MAPICOMMD" -c "$TMPD/mc.conf" >"$TMPD/root.out" 2>&1; then
    fail "mapicommd ran as root without -u"
elif grep -q "refusing to run as root" "$TMPD/root.out"; then
    pass "mapicommd refuses to run as root without -u USER"
else
    fail "mapicommd as root without -u: $(cat "$TMPD/root.out")"
fi

(cd "$TMPD" && exec ip netns exec "$NS" "$MAPICOMMD" -c "$TMPD/mc.conf" -u nobody) \
    >"$TMPD/mc.out" 2>&1 &
MC_PID=$!
track_pid "$MC_PID"
listening()
{
    [ -n "$(ip netns exec "$NS" ss -Hltn "sport = :$PORT" 2>/dev/null)" ]
}
for i in $(seq 100); do
    listening && break
    kill -0 "$MC_PID" 2>/dev/null || break
    sleep 0.1
done
listening || {
    cat "$TMPD/mc.out"
    die "mapicommd does not listen on 127.0.0.1:$PORT"
}
user=$(ps -o user= -p "$(pgrep -P "$MC_PID" -x mapicommd || echo "$MC_PID")" 2>/dev/null | tr -d ' ')
if [ "$user" = nobody ]; then
    pass "mapicommd runs as nobody"
else
    fail "mapicommd runs as '$user', not nobody"
fi

# ---- the raw client --------------------------------------------------------------------
cp "$SRC/tests/dimapiclient.py" "$TMPD/dimapi.py"

cat >"$TMPD/t.py" <<'EOF'
import os, socket, ssl, struct, subprocess, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from dimapi import *

D, PORT, IDLE_MS, MAXCL, FLOWS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
H = "127.0.0.1"
GOOD = dict(ca=D + "/ca.pem", cert=D + "/client.pem", key=D + "/client.key")
failures = 0
NOBODY = int(subprocess.check_output(["id", "-u", "nobody"]).strip())


def ok(m): print("ok:   " + m, flush=True)


def bad(m):
    global failures
    failures += 1
    print("FAIL: " + m, flush=True)


def check(cond, m):
    ok(m) if cond else bad(m)


def expect_err(code, f, m):
    try:
        f()
        bad("%s: no error (expected %d)" % (m, code))
    except DError as e:
        check(e.code == code, "%s -> %d (%s)" % (m, e.code, e.msg))


def nobody_flows():
    out = subprocess.run([FLOWS], capture_output=True, text=True).stdout
    return sum(1 for l in out.splitlines() if "\t" in l and l.split("\t")[1] == str(NOBODY))


SEQ = [0]


def send_udp(n, size=60):
    """n UDP packets to 127.0.0.1:9999, payload = 4-byte sequence number + filler. Returns
    [(seq, wire length)]: Ethernet (lo) 14 + IPv4 20 + UDP 8 + payload."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = []
    for _ in range(n):
        s = SEQ[0]
        SEQ[0] += 1
        pl = struct.pack(">I", s) + bytes([s & 0xFF]) * (size - 4)
        u.sendto(pl, (H, 9999))
        sent.append((s, 14 + 20 + 8 + len(pl)))
        if s % 50 == 49:
            time.sleep(0.002)
    u.close()
    return sent


def u64le(b): return struct.unpack("<Q", b[:8])[0]


def wait_count(c, fd, fid, want, secs=3.0):
    t = time.time() + secs
    while True:
        v = u64le(c.read_result(fd, fid)[1])
        if v >= want or time.time() > t:
            return v
        time.sleep(0.05)


def full_flow(tag, n=300):
    c = Conn(H, PORT, **GOOD)
    check(c.version == 1 and c.server.startswith("mapicommd"), "%s: HELLO -> version 1, %r" % (tag, c.server))
    fd = c.create_flow("lo")
    c.apply(fd, "BPF_FILTER", ("s", "udp and dst port 9999"))
    pc = c.apply(fd, "PKT_COUNTER")
    bc = c.apply(fd, "BYTE_COUNTER")
    tb, rs, tbflags = c.apply(fd, "TO_BUFFER", ("i", 0))
    hs, _, hsflags = c.apply(fd, "HASHSAMP", ("i", 1024), ("i", 1))
    check(pc[1] == 8 and tbflags & 0x4 and hsflags & 0x20,
          "%s: APPLY replies carry result sizes and flags (PKT_COUNTER %d bytes, TO_BUFFER ring, HASHSAMP queue)" % (tag, pc[1]))
    c.connect(fd)
    sent = send_udp(n)
    cnt = wait_count(c, fd, pc[0], n)
    check(cnt == n, "%s: PKT_COUNTER %d = packets sent %d" % (tag, cnt, n))
    b = u64le(c.read_result(fd, bc[0])[1])
    want = sum(w for _, w in sent)
    check(b == want, "%s: BYTE_COUNTER %d = bytes sent %d" % (tag, b, want))
    got = []
    t = time.time() + 5
    while len(got) < n and time.time() < t:
        end, pk = c.get_pkts(fd, tb, 64, 900000, 300)
        got += pk
    seqs = [struct.unpack(">I", p[4][42:46])[0] for p in got]
    check(seqs == [s for s, _ in sent], "%s: GET_PKTS (WAIT ring) gave all %d packets in order (%d)" % (tag, n, len(got)))
    check(all(p[2] == p[3] == w and len(p[4]) == w for p, (_, w) in zip(got, sent)),
          "%s: caplen = wlen = frame bytes = sent length" % tag)
    t0 = time.time()
    end, pk = c.get_pkts(fd, tb, 64, 900000, 400)
    el = time.time() - t0
    check(not pk and end == 0 and 0.3 <= el < 2.0, "%s: GET_PKTS on an empty WAIT ring returns n=0 after wait_ms (%.2f s)" % (tag, el))
    recs = 0
    for _ in range(n):
        ts, r = c.read_result(fd, hs)
        # struct sample (mapi/hashsamp.h): u32 source_ip, dest_ip, sourceport, destport, ...
        if len(r) >= 16 and struct.unpack("<II", r[8:16])[1] == 9999:
            recs += 1
    check(recs == n, "%s: HASHSAMP queue: %d records with destination port 9999" % (tag, recs))
    st = c.stats("lo")
    check(st[3] == socket.gethostname() and st[4] == "lo" and st[0] >= n, "%s: STATS lo -> recv %d, host %s" % (tag, st[0], st[3]))
    r = c.call("FLOW_INFO", struct.pack(">i", fd))
    uid, rfd, devid, dev, nf = r.u32(), r.i32(), r.i32(), r.str(), r.u32()
    check(rfd == fd and dev == "lo" and nf == 5 and uid == NOBODY, "%s: FLOW_INFO (fd %d, %s, %d functions, uid %d)" % (tag, rfd, dev, nf, uid))
    c.close_flow(fd)
    expect_err(6145, lambda: c.close_flow(fd), "%s: CLOSE_FLOW twice" % tag)
    c.close()


# ---- 1. a full flow ------------------------------------------------------------------------
full_flow("tls")

# ---- 2. NOWAIT batches, interrupted queue read, scoping ----------------------------------
c = Conn(H, PORT, **GOOD)
fd = c.create_flow("lo")
c.apply(fd, "BPF_FILTER", ("s", "udp and dst port 9999"))
tb = c.apply(fd, "TO_BUFFER", ("i", 1))[0]
hs = c.apply(fd, "HASHSAMP", ("i", 1024), ("i", 1))[0]
c.connect(fd)
t0 = time.time()
end, pk = c.get_pkts(fd, tb, 10, 10000, 300)
el = time.time() - t0
check(not pk and 0.25 <= el < 2.0, "NOWAIT ring: empty GET_PKTS waits wait_ms (%.2f s)" % el)
sent = send_udp(200, 1000)
got, batches, over = [], 0, 0
t = time.time() + 5
while len(got) < 200 and time.time() < t:
    end, pk = c.get_pkts(fd, tb, 0, 5000, 300)
    batches += 1
    if sum(22 + p[2] for p in pk) > 5000:
        over += 1
    got += pk
seqs = [struct.unpack(">I", p[4][42:46])[0] for p in got]
check(seqs == [s for s, _ in sent], "NOWAIT ring: all 200 packets in order, in %d batches" % batches)
check(over == 0 and batches >= 40, "NOWAIT ring: every batch within max_bytes=5000 (%d over)" % over)
for _ in range(200):
    c.read_result(fd, hs)
rid = c.send("READ_RESULT", struct.pack(">ii", fd, hs))  # the queue is empty: waits
time.sleep(0.3)
rid2 = c.send("CLOSE_FLOW", struct.pack(">i", fd))
t0 = time.time()
try:
    c.reply(rid)
    bad("a waiting READ_RESULT returned a record after CLOSE_FLOW")
except DError as e:
    check(e.code == 6145, "a waiting READ_RESULT ends with 6145 when CLOSE_FLOW arrives (%s, %.2f s)" % (e, time.time() - t0))
try:
    c.reply(rid2)
    ok("CLOSE_FLOW sent during a wait is answered after it")
except Exception as e:
    bad("CLOSE_FLOW during a wait: %s" % e)

other = Conn(H, PORT, **GOOD)
ofd = other.create_flow("lo")
expect_err(6145, lambda: c.connect(ofd), "CONNECT of another application's flow")
expect_err(6145, lambda: c.call("FLOW_INFO", struct.pack(">i", ofd)), "FLOW_INFO of another application's flow")
myfd = c.create_flow("lo")
expect_err(7001, lambda: c.apply(myfd, "BUCKET", ("r", ofd), ("f", 1), ("s", "1"), ("i", 0)), "'r' reference to another application's flow")
expect_err(7001, lambda: c.apply(myfd, "SYNC", ("R", "%d,%d" % (myfd, ofd))), "'R' list naming another application's flow")
expect_err(7002, lambda: c.apply(myfd, "RES2FILE", ("s", "ll"), ("S", "1@%d" % ofd), ("s", "x"), ("w", "r.txt"), ("s", "1"), ("i", 0)), "'S' list naming another application's flow")
expect_err(6155, lambda: c.apply(myfd, "TO_FILE", ("i", 0), ("w", "../x.pcap"), ("l", 0)), "'w' name with ..")
expect_err(6155, lambda: c.apply(myfd, "TO_FILE", ("i", 0), ("w", "/tmp/x.pcap"), ("l", 0)), "'w' absolute name")
expect_err(7002, lambda: c.apply(myfd, "TO_FILE", ("i", 0), ("s", "x.pcap"), ("l", 0)), "argument of the wrong type")
expect_err(7000, lambda: c.apply(myfd, "TO_FILE", ("i", 0)), "too few arguments")
expect_err(6144, lambda: c.apply(myfd, "NO_SUCH_FUNCTION"), "unknown function")
expect_err(7009, lambda: c.create_flow("198.18.0.9:eth0"), "a remote scope in CREATE_FLOW")
expect_err(7009, lambda: c.call(199, b"x"), "unknown request type 199")
expect_err(7009, lambda: c.call(4000), "unknown request type 4000")
check(c.create_flow("lo") > 0, "the connection still works after errors and unknown types")
try:
    c.create_flow("nosuchdev")
    bad("CREATE_FLOW of an unknown device succeeded")
except DError as e:
    check(e.code in (3200, 3202), "CREATE_FLOW of an unknown device -> %d (%s)" % (e.code, e.msg))
other.close()
c.close()
time.sleep(0.5)
n = nobody_flows()
check(n == 0, "flows of closed connections are gone from mapid (%d left)" % n)


# ---- 3. malformed, truncated, oversized --------------------------------------------------
def raw_after_hello(data, label, expect_close=True, hello=True):
    c = Conn(H, PORT, hello=hello, **GOOD)
    c.s.settimeout(5)
    try:
        c.s.sendall(data)
        c.s.shutdown(socket.SHUT_WR) if False else None
        b = c.s.recv(4096)
        closed = b == b""
        if not closed:
            # an error reply, then EOF
            b2 = c.s.recv(4096)
            closed = b2 == b""
        check(closed == expect_close, "%s: connection %s" % (label, "closed" if closed else "kept"))
    except (ConnectionError, ssl.SSLError, OSError) as e:
        check(expect_close, "%s: connection closed (%s)" % (label, e.__class__.__name__))
    c.close()


raw_after_hello(b"XAPI" + hdr(201, 4, 1)[4:] + sstr("lo")[:4], "bad magic")
raw_after_hello(hdr(201, 4, 1, version=9) + b"\0\0\0\0", "bad version")
raw_after_hello(hdr(201, (1 << 20) + 1, 1), "length above WIRE_MAX_PAYLOAD")
raw_after_hello(hdr(203, 13, 1) + struct.pack(">i", 1) + sstr("X") + struct.pack(">I", 0xFFFFFFFF), "APPLY with 2^32-1 arguments")
raw_after_hello(hdr(201, 8, 1) + struct.pack(">I", 1000) + b"lo\0\0", "string longer than its message")
raw_after_hello(hdr(201, 6, 1, flags=1) + sstr("lo"), "request with the error flag")
raw_after_hello(hdr(204, 5, 1) + b"\0\0\0\1\0", "trailing bytes")
raw_after_hello(hdr(201, 6, 1) + sstr("lo"), "CREATE_FLOW before HELLO", hello=False)

# truncated: a header announcing 100 bytes, 10 sent, then silence: dropped after the idle timeout
c = Conn(H, PORT, **GOOD)
c.s.settimeout(10)
c.s.sendall(hdr(201, 100, 1) + b"\0" * 10)
t0 = time.time()
try:
    b = c.s.recv(100)
    el = time.time() - t0
    check(b == b"" and IDLE_MS / 1000 * 0.8 <= el < IDLE_MS / 1000 + 3, "truncated message: dropped after %.1f s" % el)
except OSError as e:
    el = time.time() - t0
    check(IDLE_MS / 1000 * 0.8 <= el < IDLE_MS / 1000 + 3, "truncated message: dropped after %.1f s (%s)" % (el, e.__class__.__name__))
c.close()

# silent clients
for label, mk in (("silent TCP client", lambda: socket.create_connection((H, PORT), 10)),
                  ("silent TLS client (no HELLO)", lambda: Conn(H, PORT, hello=False, **GOOD).s)):
    s = mk()
    s.settimeout(10)
    t0 = time.time()
    try:
        b = s.recv(100)
    except OSError:
        b = b""
    el = time.time() - t0
    check(b == b"" and IDLE_MS / 1000 * 0.8 <= el < IDLE_MS / 1000 + 3, "%s: dropped after %.1f s (idle timeout %d ms)" % (label, el, IDLE_MS))
    s.close()

# ---- 4. TLS refusals -------------------------------------------------------------------
def tls_refused(label, **kw):
    try:
        c = Conn(H, PORT, **kw)
        bad("%s: HELLO answered (%s)" % (label, c.server))
        c.close()
    except (ssl.SSLError, ConnectionError, EOFError, OSError) as e:
        ok("%s: refused (%s)" % (label, str(e)[:80]))


tls_refused("client certificate from the wrong CA", ca=D + "/ca.pem", cert=D + "/wrongclient.pem", key=D + "/wrongclient.key")
tls_refused("no client certificate", ca=D + "/ca.pem")
tls_refused("server certificate checked against the wrong CA", ca=D + "/wrongca.pem", cert=D + "/client.pem", key=D + "/client.key")
s = socket.create_connection((H, PORT), 5)
s.settimeout(5)
s.sendall(hdr(200, 20, 7) + struct.pack(">HH", 1, 1) + b"\0" * 16)
try:
    b = b""
    while True:
        x = s.recv(4096)
        if not x:
            break
        b += x
    ok_reply = len(b) >= 24 and b[5] & 1 and struct.unpack(">I", b[12:16])[0] == 7
    code = struct.unpack(">i", b[16:20])[0] if len(b) >= 20 else 0
    msg = b[24:].decode(errors="replace")
    check(ok_reply and "requires TLS" in msg, "plain TCP to the TLS port: plain error %d %r, then closed" % (code, msg[:60]))
except OSError as e:
    bad("plain TCP to the TLS port: %s" % e)
s.close()

# ---- 5. many connections -----------------------------------------------------------------
t0 = time.time()
errs = 0
for i in range(2000):
    try:
        s = socket.create_connection((H, PORT), 5)
        if i % 4 == 1:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken TLS record
        elif i % 4 == 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    except OSError:
        errs += 1
check(errs == 0, "2000 connections opened and dropped in %.1f s (%d failed to connect)" % (time.time() - t0, errs))

# the limit: MAXCL clients served, the next one is refused politely. First wait until the
# dropped connections are gone (their threads end when their handshake fails).
t = time.time() + 15
while True:
    try:
        Conn(H, PORT, **GOOD).close()
        break
    except Exception as e:
        if time.time() > t:
            bad("no connection accepted 15 s after the 2000 dropped ones: %r" % e)
            break
        time.sleep(0.2)
time.sleep(0.5)
conns = []
try:
    for i in range(MAXCL):
        conns.append(Conn(H, PORT, **GOOD))
    ok("%d clients served at once" % MAXCL)
except Exception as e:
    bad("only %d of %d clients could connect: %s" % (len(conns), MAXCL, e))
try:
    x = Conn(H, PORT, **GOOD)
    bad("client %d beyond dimapi_max_clients was served" % (MAXCL + 1))
    x.close()
except DError as e:
    check(e.code == 3085, "client %d beyond dimapi_max_clients refused: %s" % (MAXCL + 1, e))
except Exception as e:
    bad("client beyond dimapi_max_clients: %r" % e)
for x in conns:
    x.close()
time.sleep(0.5)

# ---- 6. still correct ------------------------------------------------------------------
full_flow("after the bad input")
time.sleep(0.3)
n = nobody_flows()
check(n == 0, "no flow left in mapid (%d)" % n)
print("failures %d" % failures)
sys.exit(1 if failures else 0)
EOF

export MAPI_CONF=$MAPID_CONF # for mapi_flows (mapid's socket is a path: reachable from here)
ip netns exec "$NS" "$PY" "$TMPD/t.py" "$TMPD" "$PORT" "$IDLE_MS" "$MAXCL" "$TBIN/mapi_flows" \
    >"$TMPD/t.out" 2>&1
rc=$?
cat "$TMPD/t.out"
n=$(grep -c '^FAIL' "$TMPD/t.out")
FAILURES=$((FAILURES + n))
if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
    fail "the python client stopped with status $rc"
fi
if kill -0 "$MC_PID" 2>/dev/null; then
    pass "mapicommd is alive after the bad input"
else
    fail "mapicommd died"
fi
if grep -qE "AddressSanitizer|UndefinedBehaviorSanitizer|runtime error" "$TMPD/mc.out"; then
    fail "sanitizer report in mapicommd's output"
    grep -E -A5 "AddressSanitizer|runtime error" "$TMPD/mc.out" | head -30
fi

# ---- the client side of common/net.c ---------------------------------------------------------
# net_probe CONF HOST PORT: net_client_ctx + net_connect + HELLO with common/net.c itself (the
# transport libmapi's remote back end uses): "ok SERVER" or "error MESSAGE".
cat >"$TMPD/net_probe.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/dimapi.h"
#include "common/net.h"
int main(int argc, char **argv)
{
    struct mapi_conf conf;
    char err[1024];
    if (argc != 4 || mapi_conf_load(&conf, argv[1], err, sizeof(err)) < 0) {
        printf("error conf: %s\n", argc == 4 ? err : "usage");
        return 1;
    }
    struct net_ctx *ctx = net_client_ctx(&conf, err, sizeof(err));
    struct net_conn *c = ctx ? net_connect(ctx, argv[2], atoi(argv[3]), 3000, err, sizeof(err)) : NULL;
    if (!c) {
        printf("error %s\n", err);
        return 1;
    }
    struct wire_writer w;
    wire_writer_init(&w, DIMAPI_HELLO, 1, 0);
    wire_put_u16(&w, 1);
    wire_put_u16(&w, 1);
    for (int i = 0; i < DIMAPI_TOKEN_LEN; i++)
        wire_put_u8(&w, (uint8_t)i);
    struct wire_hdr h;
    uint8_t *p = NULL;
    if (wire_finish(&w) < 0 || net_send(c, &w, 3000, err, sizeof(err)) < 0 ||
        net_recv(c, &h, &p, 3000, NULL, err, sizeof(err)) != 0) {
        printf("error %s\n", err);
        return 1;
    }
    struct wire_reader r;
    wire_reader_init(&r, p, h.length);
    if (h.flags & WIRE_F_ERROR) {
        int code = wire_get_i32(&r);
        char msg[512];
        wire_get_str(&r, msg, sizeof(msg));
        printf("error %s: %d %s\n", net_peer(c), code, msg);
        return 1;
    }
    wire_get_u16(&r);
    char server[256];
    wire_get_str(&r, server, sizeof(server));
    printf("ok %s\n", server);
    free(p);
    wire_writer_free(&w);
    net_close(c);
    net_ctx_free(ctx);
    mapi_conf_free(&conf);
    return 0;
}
EOF
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
if cc -std=gnu11 -D_GNU_SOURCE -DMAPI_DEFAULT_LIBPATH='"/nonexistent"' \
    -DMAPI_DEFAULT_CONF='"/nonexistent/mapi.conf"' -I"$SRC" -I"$SRC/include" "$TMPD/net_probe.c" "$SRC/common/net.c" \
    "$SRC/common/wire.c" "$SRC/common/conf.c" "$SRC/common/errors.c" -o "$TMPD/net_probe" \
    $(pkg-config --cflags --libs openssl) -lpthread 2>"$TMPD/probe.err"; then
    PPORT=$((PORT + 1))
    sed -e "s/^dimapi_port=.*/dimapi_port=$PPORT/" -e '/^dimapi_cert/d' -e '/^dimapi_key/d' \
        -e '/^dimapi_client_ca/d' -e "s|^logfile=.*|logfile=$TMPD/mcp.log|" "$TMPD/mc.conf" >"$TMPD/mcp.conf"
    echo "dimapi_plaintext=1" >>"$TMPD/mcp.conf"
    ip netns exec "$NS" "$MAPICOMMD" -c "$TMPD/mcp.conf" -u nobody >"$TMPD/mcp.out" 2>&1 &
    MCP_PID=$!
    track_pid "$MCP_PID"
    clientconf()
    {
        {
            echo "socket=$TMPD/none.sock"
            echo "dimapi_ca=$TMPD/$1.pem"
            [ "$2" = - ] || printf 'dimapi_client_cert=%s\ndimapi_client_key=%s\n' "$TMPD/$2.pem" "$TMPD/$2.key"
            [ -z "${3:-}" ] || echo "$3"
        } >"$TMPD/cl-$4.conf"
    }
    clientconf ca client "" good
    clientconf wrongca client "" wrongca
    clientconf ca - "" nocert
    clientconf ca client "dimapi_plaintext=1" plain
    probe()
    { # probe LABEL CONF HOST PORT EXPECT (ok, or a regex the error must match)
        local out
        out=$(ip netns exec "$NS" "$TMPD/net_probe" "$TMPD/cl-$2.conf" "$3" "$4" 2>&1)
        if [ "$5" = ok ]; then
            case $out in "ok mapicommd"*) pass "net_connect: $1: $out" ;; *) fail "net_connect: $1: $out" ;; esac
        elif echo "$out" | grep -qE "^error .*($5)"; then
            pass "net_connect: $1: $out"
        else
            fail "net_connect: $1: expected an error matching '$5', got: $out"
        fi
    }
    for i in $(seq 50); do
        [ -n "$(ip netns exec "$NS" ss -Hltn "sport = :$PPORT" 2>/dev/null)" ] && break
        sleep 0.1
    done
    probe "TLS, right CA, client certificate" good 127.0.0.1 "$PORT" ok
    probe "server certificate from another CA" wrongca 127.0.0.1 "$PORT" "127.0.0.1:$PORT: .*certificate verify failed"
    probe "name not in the certificate (localhost vs IP:127.0.0.1)" good localhost "$PORT" "localhost:$PORT: .*(certificate verify failed|hostname mismatch)"
    probe "no client certificate" nocert 127.0.0.1 "$PORT" "127.0.0.1:$PORT: "
    probe "plaintext client, TLS server" plain 127.0.0.1 "$PORT" "requires TLS"
    probe "TLS client, plaintext server" good 127.0.0.1 "$PPORT" "dimapi_plaintext=1"
    probe "plaintext on both sides" plain 127.0.0.1 "$PPORT" ok
    probe "nobody listening" good 127.0.0.1 "$((PORT + 2))" "127.0.0.1:$((PORT + 2)): cannot connect"
    kill -TERM "$MCP_PID"
    if wait "$MCP_PID"; then
        pass "plaintext mapicommd stopped with status 0"
    else
        fail "plaintext mapicommd: bad exit status"
    fi
else
    cat "$TMPD/probe.err"
    fail "cannot build the net_probe client of common/net.c"
fi

# ---- SIGTERM while a client waits ----------------------------------------------------------
cat >"$TMPD/wait.py" <<'EOF'
import os, struct, sys
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from dimapi import *
D, PORT = sys.argv[1], int(sys.argv[2])
c = Conn("127.0.0.1", PORT, ca=D + "/ca.pem", cert=D + "/client.pem", key=D + "/client.key")
fd = c.create_flow("lo")
c.apply(fd, "BPF_FILTER", ("s", "udp and dst port 9999"))
tb = c.apply(fd, "TO_BUFFER", ("i", 0))[0]
c.connect(fd)
print("ready", flush=True)
try:
    c.get_pkts(fd, tb, 1, 1000, 60000)
    print("reply")
except Exception as e:
    print("ended", e.__class__.__name__)
EOF
ip netns exec "$NS" "$PY" "$TMPD/wait.py" "$TMPD" "$PORT" >"$TMPD/wait.out" 2>&1 &
WPID=$!
track_pid "$WPID"
wait_ready "$TMPD/wait.out" "$WPID" || fail "the waiting client did not start: $(cat "$TMPD/wait.out")"
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$MC_PID"
rc=0
for i in $(seq 100); do
    kill -0 "$MC_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$MC_PID" 2>/dev/null; then
    fail "mapicommd did not stop within 10 s of SIGTERM"
else
    wait "$MC_PID" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$rc" -eq 0 ]; then
        pass "mapicommd stopped with status 0 on SIGTERM in $ms ms (a client was waiting in GET_PKTS)"
    else
        fail "mapicommd exited with status $rc on SIGTERM"
        grep -A12 -E "ERROR: |Direct leak" "$TMPD/mc.out" | head -n 80
        tail -n 5 "$TMPD/mc.out"
    fi
fi
wait "$WPID" 2>/dev/null
grep -q "ended" "$TMPD/wait.out" && pass "the waiting client saw its connection end" ||
    fail "waiting client: $(cat "$TMPD/wait.out")"
sleep 0.2
n=$("$TBIN/mapi_flows" | awk -F'\t' -v u="$(id -u nobody)" 'NF > 1 && $2 == u' | wc -l)
[ "$n" -eq 0 ] && pass "mapicommd closed its flows in mapid when it stopped" ||
    fail "$n flows of mapicommd left in mapid after it stopped"
stop_mapid m
finish
