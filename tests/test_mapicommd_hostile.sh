#!/bin/bash
# tests/test_mapicommd_hostile.sh - mapicommd as a trust boundary (issue 10, items 8-11 and
# the reconnection of item 3), attacked by raw DiMAPI clients and a hostile local user.
#
# Root only (77 otherwise). A private network namespace whose "lo" is mapid's capture device;
# mapid, and two mapicommds as nobody in it:
#   MC1  TLS with client certificates (a test CA; clients alice, bob, carol), tight limits:
#        dimapi_handshake_timeout 1500 ms, dimapi_max_clients 6, dimapi_max_handshakes 32,
#        dimapi_max_handshakes_per_address 4, dimapi_max_connections_per_identity 3,
#        dimapi_max_flows_per_identity 3, dimapi_max_memory 5M, dimapi_max_memory_per_identity
#        3M (a TO_BUFFER pump reserves about 2 MB), dimapi_file_dir $TMPD/files (mode 0777
#        without the sticky bit, so a local user can plant links in it);
#   MC2  plain TCP, dimapi_max_flows_per_identity 2 (identity = the application token), no
#        dimapi_file_dir.
# Oracle for "still serves the others with exact results": PKT_COUNTER of a flow with
# BPF_FILTER "udp and dst port 9999" equals the number of UDP datagrams python sent to
# 127.0.0.1:9999 meanwhile (and TO_BUFFER hands out exactly those packets).
# Checks:
#   1. half-open flood (item 8): 60 TCP connections from 127.0.0.2 that never finish the TLS
#      handshake (some send half a ClientHello): at most 4 stay open, the rest are closed at
#      once, the held ones after ~1.5 s; meanwhile bob (from 127.0.0.1) connects and counts
#      exactly although dimapi_max_clients is 6 (sessions count only after the HELLO).
#   1b. 160 idle connections from 40 addresses (4 each) against dimapi_max_handshakes 32: bob
#      still connects (the longest-pending connection is dropped for him).
#   2. quotas per identity (item 9): alice's 4th flow and 4th connection get 3085 naming
#      dimapi_max_flows_per_identity / dimapi_max_connections_per_identity while bob still
#      creates flows and counts exactly; on MC2 the same per token.
#   3. memory (item 11): alice's second TO_BUFFER pump is refused 3085 naming
#      dimapi_max_memory_per_identity, carol's first (bob holding one) dimapi_max_memory; after
#      bob closes his flow carol's works and delivers every packet.
#   4. files (item 10): MC2 refuses 'w' arguments (6155, "dimapi_file_dir is not set"); MC1
#      refuses "../x", "/abs", a symbolic link planted in dimapi_file_dir by another user
#      (pointing to a file of nobody's outside: with MFF_OVERWRITE it stays untouched), a
#      symbolic link to a directory outside, a hard link; a plain name is created inside and
#      holds a pcap of the packets.
#   5. mapid restarted (item 3), once stopped with SIGTERM and once killed with SIGKILL: bob's
#      old flow answers 5123 ("lost"), a new CREATE_FLOW works and counts exactly; mapicommd
#      logs why its connection to mapid broke.
#   6. mapicommd still alive, no flow of nobody left in mapid, SIGTERM -> exit status 0.
set -u
. "$(dirname "$0")/common.sh"
common_init "$@"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (a network namespace, test users)"
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
make_user EVIL

NS=mapitest-mch-$$
ip netns add "$NS" || die "cannot create a network namespace"
CLEANUP_CMDS="$CLEANUP_CMDS
ip netns del $NS 2>/dev/null"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 2>/dev/null

# ---- certificates ----------------------------------------------------------------------
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TMPD/ca.key" -out "$TMPD/ca.pem" -days 2 -subj "/CN=mapicommd hostile test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || die "openssl: CA"
mkcert()
{
    local name=$1 eku=$2 san=$3
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$eku" "$san" >"$TMPD/$name.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$TMPD/$name.key" -out "$TMPD/$name.csr" -subj "/CN=$name" >/dev/null 2>&1 &&
        openssl x509 -req -in "$TMPD/$name.csr" -CA "$TMPD/ca.pem" -CAkey "$TMPD/ca.key" \
            -CAcreateserial -days 2 -extfile "$TMPD/$name.ext" -out "$TMPD/$name.pem" \
            >/dev/null 2>&1
}
for c in alice bob carol; do
    mkcert "$c" clientAuth "DNS:$c" || die "openssl: client $c"
done
mkcert server serverAuth "IP:127.0.0.1" || die "openssl: server"
chmod 600 "$TMPD/server.key"

# ---- mapid, the file directory, two mapicommds ------------------------------------------
BUFFER_SIZE=1M start_mapid m "[driver]
device=lo
driver=mapinicdrv.so
promisc=0" ip netns exec "$NS"
MAPID_CONF=$TMPD/m.conf

FILES=$TMPD/files
mkdir -p "$FILES" "$TMPD/outside"
chmod 0777 "$FILES"                          # no sticky bit: others may plant links
chown nobody "$TMPD/outside"
printf 'precious\n' >"$TMPD/victim"          # a file nobody (mapicommd) could write
chown nobody "$TMPD/victim"
"${AS_EVIL[@]}" ln -s "$TMPD/victim" "$FILES/evil.pcap" || die "EVIL cannot plant a link"
"${AS_EVIL[@]}" ln -s "$TMPD/outside" "$FILES/sub" || die "EVIL cannot plant a link"
"${AS_EVIL[@]}" sh -c "umask 0; echo mine > '$FILES/own.pcap' && ln '$FILES/own.pcap' '$FILES/hl.pcap'" ||
    die "EVIL cannot make a hard link"

P1=$((20000 + $$ % 20000))
P2=$((P1 + 1))
cat >"$TMPD/mc1.conf" <<EOF
socket=$TMPD/m.sock
logfile=$TMPD/mc1.log
syslog_level=0
dimapi_port=$P1
dimapi_listen=0.0.0.0
dimapi_cert=$TMPD/server.pem
dimapi_key=$TMPD/server.key
dimapi_client_ca=$TMPD/ca.pem
dimapi_idle_timeout=1500
dimapi_handshake_timeout=1500
dimapi_max_clients=6
dimapi_max_handshakes=32
dimapi_max_handshakes_per_address=4
dimapi_max_connections_per_identity=3
dimapi_max_flows_per_identity=3
dimapi_max_memory=5M
dimapi_max_memory_per_identity=3M
dimapi_file_dir=$FILES
EOF
cat >"$TMPD/mc2.conf" <<EOF
socket=$TMPD/m.sock
logfile=$TMPD/mc2.log
syslog_level=0
dimapi_port=$P2
dimapi_listen=127.0.0.1
dimapi_plaintext=1
dimapi_max_flows_per_identity=2
EOF
chmod 644 "$TMPD/mc1.conf" "$TMPD/mc2.conf"

listening()
{
    [ -n "$(ip netns exec "$NS" ss -Hltn "sport = :$1" 2>/dev/null)" ]
}
start_mc()
{
    local n=$1 port=$2 pid
    (cd / && exec ip netns exec "$NS" "$MAPICOMMD" -c "$TMPD/$n.conf" -u nobody) \
        >"$TMPD/$n.out" 2>&1 &
    pid=$!
    track_pid "$pid"
    eval "${n}_PID=$pid"
    for _ in $(seq 100); do
        listening "$port" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMPD/$n.out"
    die "mapicommd $n does not listen on port $port"
}
start_mc mc1 "$P1"
start_mc mc2 "$P2"
if grep -q "dimapi_file_dir .* writable by other users" "$TMPD/mc1.log"; then
    pass "mapicommd warns that dimapi_file_dir is writable by others"
else
    fail "no warning about a dimapi_file_dir writable by others"
fi

cp "$SRC/tests/dimapiclient.py" "$TMPD/dimapi.py"
cat >"$TMPD/t.py" <<'EOF'
import os, signal, socket, ssl, struct, subprocess, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[0]))
from dimapi import *

D, P1, P2, FLOWS, MAPID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
H = "127.0.0.1"
ID = {n: dict(ca=D + "/ca.pem", cert=D + "/%s.pem" % n, key=D + "/%s.key" % n) for n in ("alice", "bob", "carol")}
failures = 0
NOBODY = int(subprocess.check_output(["id", "-u", "nobody"]).strip())


def ok(m): print("ok:   " + m, flush=True)


def bad(m):
    global failures
    failures += 1
    print("FAIL: " + m, flush=True)


def check(cond, m):
    ok(m) if cond else bad(m)


def expect_err(code, f, m, words=()):
    try:
        f()
        bad("%s: no error (expected %d)" % (m, code))
    except DError as e:
        check(e.code == code and all(w in e.msg for w in words), "%s -> %d (%s)" % (m, e.code, e.msg))


def send_udp(n):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        u.sendto(struct.pack(">I", i) + b"x" * 40, (H, 9999))
        if i % 50 == 49:
            time.sleep(0.002)
    u.close()


def u64le(b): return struct.unpack("<Q", b[:8])[0]


def counter_flow(c):
    fd = c.create_flow("lo")
    c.apply(fd, "BPF_FILTER", ("s", "udp and dst port 9999"))
    fid = c.apply(fd, "PKT_COUNTER")[0]
    c.connect(fd)
    return fd, fid


def exact_count(c, tag, n=200):
    """A fresh counting flow on c sees exactly the n datagrams sent now."""
    fd, fid = counter_flow(c)
    time.sleep(0.1)
    send_udp(n)
    t = time.time() + 3
    while True:
        v = u64le(c.read_result(fd, fid)[1])
        if v >= n or time.time() > t:
            break
        time.sleep(0.05)
    time.sleep(0.1)
    v = u64le(c.read_result(fd, fid)[1])
    check(v == n, "%s: PKT_COUNTER %d = datagrams sent %d" % (tag, v, n))
    c.close_flow(fd)


# ---- 1. half-open TLS flood from 127.0.0.2 --------------------------------------------------
held = []
for i in range(60):
    s = socket.create_connection((H, P1), 5, ("127.0.0.2", 0))
    if i % 3 == 1:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
    held.append(s)
time.sleep(0.3)
closed_now = 0
for s in held:
    s.setblocking(False)
    try:
        closed_now += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed_now += 1
check(closed_now >= 56, "half-open flood: %d of 60 connections from one address closed at once (4 may wait)" % closed_now)
t0 = time.time()
try:
    bob = Conn(H, P1, **ID["bob"])
    ok("bob connects while 60 half-open connections from 127.0.0.2 exist (%.2f s)" % (time.time() - t0))
    exact_count(bob, "bob during the flood")
except Exception as e:
    bad("bob could not connect during the half-open flood: %r" % e)
    bob = None
t1 = time.time()
for s in held:
    s.setblocking(True)
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
el = time.time() - t0
check(el < 4.5, "the held half-open connections were all dropped %.1f s after bob came (dimapi_handshake_timeout 1500 ms)" % el)
for s in held:
    s.close()

# ---- 1b. the whole pending pool held from 40 addresses ---------------------------------------
held = []
for a in range(40):
    for i in range(4):
        try:
            held.append(socket.create_connection((H, P1), 5, ("127.0.0.%d" % (10 + a), 0)))
        except OSError:
            pass
time.sleep(0.3)
t0 = time.time()
try:
    b2 = Conn(H, P1, **ID["bob"])
    ok("bob connects while %d idle connections from 40 addresses fill the pending pool (%.2f s)" % (len(held), time.time() - t0))
    b2.close()
except Exception as e:
    bad("bob could not connect while the pending pool was held from 40 addresses: %r" % e)
for s in held:
    s.close()
time.sleep(0.2)

# ---- 2. quotas per identity ------------------------------------------------------------------
alice = Conn(H, P1, **ID["alice"])
afds = [alice.create_flow("lo") for _ in range(3)]
check(len(afds) == 3, "alice creates 3 flows")
expect_err(3085, lambda: alice.create_flow("lo"), "alice's 4th flow", ("dimapi_max_flows_per_identity", "subject:/CN=alice"))
exact_count(bob, "bob while alice is at her flow limit")
a2 = Conn(H, P1, **ID["alice"])
a3 = Conn(H, P1, **ID["alice"])
expect_err(3085, lambda: Conn(H, P1, **ID["alice"]), "alice's 4th connection", ("dimapi_max_connections_per_identity",))
carol = Conn(H, P1, **ID["carol"])
ok("carol connects while alice is at her connection limit")
a2.close()
a3.close()
for fd in afds:
    alice.close_flow(fd)
check(alice.create_flow("lo") > 0, "alice creates a flow again after closing hers")

tokA, tokB = os.urandom(16), os.urandom(16)
pa = Conn(H, P2, token=tokA, plain=True)
pa2 = Conn(H, P2, token=tokA, plain=True)
pa.create_flow("lo")
pa2.create_flow("lo")
expect_err(3085, lambda: pa.create_flow("lo"), "plain TCP: token A's 3rd flow over two connections", ("dimapi_max_flows_per_identity", "token:"))
pb = Conn(H, P2, token=tokB, plain=True)
exact_count(pb, "plain TCP: token B while token A is at its limit")

# ---- 3. memory -------------------------------------------------------------------------------
def ring_flow(c, n):
    fd = c.create_flow("lo")
    c.apply(fd, "BPF_FILTER", ("s", "udp and dst port 9999"))
    tbs = [c.apply(fd, "TO_BUFFER", ("i", 0))[0] for _ in range(n)]
    c.connect(fd)
    return fd, tbs


afd, atb = ring_flow(alice, 2)
alice.get_pkts(afd, atb[0], wait_ms=0)
ok("alice's first TO_BUFFER pump")
expect_err(3085, lambda: alice.get_pkts(afd, atb[1], wait_ms=0), "alice's second pump", ("dimapi_max_memory_per_identity",))
bfd, btb = ring_flow(bob, 1)
bob.get_pkts(bfd, btb[0], wait_ms=0)
ok("bob's first TO_BUFFER pump")
cfd, ctb = ring_flow(carol, 1)
expect_err(3085, lambda: carol.get_pkts(cfd, ctb[0], wait_ms=0), "carol's pump beyond mapicommd's total", ("(dimapi_max_memory)",))
bob.close_flow(bfd)
try:
    carol.get_pkts(cfd, ctb[0], wait_ms=0)
    send_udp(100)
    got = []
    t = time.time() + 5
    while len(got) < 100 and time.time() < t:
        got += carol.get_pkts(cfd, ctb[0], 64, 900000, 300)[1]
    seqs = [struct.unpack(">I", p[4][42:46])[0] for p in got]
    check(seqs == list(range(100)), "after bob closed his flow, carol's TO_BUFFER delivers all 100 packets in order (%d)" % len(got))
except DError as e:
    bad("carol's pump after bob closed his flow: %s" % e)
alice.close_flow(afd)
carol.close_flow(cfd)

# ---- 4. files --------------------------------------------------------------------------------
fd2 = pb.create_flow("lo")
expect_err(6155, lambda: pb.apply(fd2, "TO_FILE", ("i", 0), ("w", "x.pcap"), ("l", 0)), "MC2 without dimapi_file_dir: 'w' refused", ("dimapi_file_dir is not set",))
pb.close_flow(fd2)
ffd = alice.create_flow("lo")
victim = open(D + "/victim").read()
expect_err(3083, lambda: alice.apply(ffd, "TO_FILE", ("i", 0), ("w", "evil.pcap"), ("l", 0)), "TO_FILE 'evil.pcap' (a planted symbolic link) without MFF_OVERWRITE: exists")
for name, fmt, why in (("evil.pcap", 0x100, "a symbolic link planted by another user (MFF_OVERWRITE)"),
                       ("sub/x.pcap", 0, "a symbolic link to a directory outside"),
                       ("hl.pcap", 0x100, "a hard link (MFF_OVERWRITE)"),
                       ("../escape.pcap", 0, "../"),
                       ("/tmp/abs.pcap", 0, "an absolute name")):
    expect_err(6155, lambda: alice.apply(ffd, "TO_FILE", ("i", fmt), ("w", name), ("l", 0)), "TO_FILE %r: %s" % (name, why))
check(open(D + "/victim").read() == victim, "the symbolic link's target outside is untouched")
check(not os.path.exists(D + "/outside/x.pcap") and not os.path.exists(D + "/escape.pcap"), "nothing was created outside dimapi_file_dir")
check(open(D + "/files/own.pcap").read() == "mine\n", "the hard-linked file is untouched")
alice.apply(ffd, "BPF_FILTER", ("s", "udp and dst port 9999"))
alice.apply(ffd, "TO_FILE", ("i", 0), ("w", "good.pcap"), ("l", 0))
alice.connect(ffd)
send_udp(50)
time.sleep(0.5)
alice.close_flow(ffd)
time.sleep(0.2)
p = D + "/files/good.pcap"
st = os.stat(p)
data = open(p, "rb").read()
check(st.st_uid == NOBODY and data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") and len(data) == 24 + 50 * (16 + 14 + 20 + 8 + 44),
      "a plain name is created in dimapi_file_dir by mapicommd's user and holds the 50 packets (%d bytes)" % len(data))
ffd = alice.create_flow("lo")
expect_err(3083, lambda: alice.apply(ffd, "TO_FILE", ("i", 0), ("w", "good.pcap"), ("l", 0)), "an existing file without MFF_OVERWRITE")
alice.close_flow(ffd)

# ---- 5. mapid restarted ----------------------------------------------------------------------
def restart_mapid(sig):
    pid = int(open(D + "/m.pid").read())
    os.kill(pid, sig)
    t = time.time() + 10
    while time.time() < t:
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except ProcessLookupError:
            break
    out = open(D + "/m.out", "a")
    np = subprocess.Popen([MAPID, "-c", D + "/m.conf"], stdout=out, stderr=out)
    open(D + "/m.pid", "w").write("%d\n" % np.pid)
    t = time.time() + 10
    while time.time() < t:
        try:
            u = socket.socket(socket.AF_UNIX)
            u.connect(D + "/m.sock")
            u.close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


for sig, how in ((signal.SIGTERM, "stopped (SIGTERM)"), (signal.SIGKILL, "killed (SIGKILL)")):
    ofd, ofid = counter_flow(bob)
    check(restart_mapid(sig), "mapid %s and started again" % how)
    expect_err(5123, lambda: bob.read_result(ofd, ofid), "after mapid was %s: bob's flow of the old mapid" % how, ("lost",))
    try:
        exact_count(bob, "after mapid was %s: bob's new flow" % how)
    except DError as e:
        bad("CREATE_FLOW after mapid was %s: %s" % (how, e))
    bob.close_flow(ofd)
log = open(D + "/mc1.log").read()
check("connection to mapid lost" in log, "mapicommd logged why its connection to mapid broke")
for c in (bob, alice, carol, pa, pa2, pb):
    c.close()
time.sleep(0.5)
out = subprocess.run([FLOWS], capture_output=True, text=True).stdout
n = sum(1 for l in out.splitlines() if "\t" in l and l.split("\t")[1] == str(NOBODY))
check(n == 0, "no flow of mapicommd's user left in mapid (%d)" % n)
print("failures %d" % failures)
sys.exit(1 if failures else 0)
EOF

export MAPI_CONF=$MAPID_CONF
ip netns exec "$NS" "$PY" "$TMPD/t.py" "$TMPD" "$P1" "$P2" "$TBIN/mapi_flows" "$MAPID" 2>&1 |
    tee "$TMPD/t.out"
grep -q '^FAIL' "$TMPD/t.out" && FAILURES=$((FAILURES + $(grep -c '^FAIL' "$TMPD/t.out")))
grep -q '^failures [0-9]*$' "$TMPD/t.out" || fail "the python checks did not finish"

for n in mc1 mc2; do
    eval "pid=\$${n}_PID"
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "mapicommd $n died"
        tail -n 20 "$TMPD/$n.out"
        continue
    fi
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "mapicommd $n survived and stopped with status 0 on SIGTERM"
    else
        fail "mapicommd $n exited with status $rc"
        tail -n 20 "$TMPD/$n.out"
    fi
done
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMPD"/mc*.out "$TMPD/m.out" 2>/dev/null; then
    fail "sanitizer reports (see above)"
    grep -A20 "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMPD"/mc*.out "$TMPD/m.out" | head -60
fi
finish
