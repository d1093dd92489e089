#!/usr/bin/env bash
# tests/test_shm_hostile.sh - a hostile user against mapid's shared memory (issue 10 #2, #18;
# docs/security.md). Needs root (it creates two throwaway users); exit 77 otherwise.
#
#  * seal: the attacker (tests/mapi_shmattack.c, stock libmapi keeping the descriptors mapid
#    sent) tries every way to write the result region, the ring's producer header and its data
#    (pwrite, read-write reopen via /proc/self/fd, writable shared mapping, mprotect, MADV_REMOVE,
#    fallocate punch-hole, ftruncate, pwritev, F_ADD_SEALS), including the odd-seqlock attack
#    on a PKT_COUNTER that a BINOP of the same flow reads. Every attempt must be refused, and
#    the attacker's own flow still counts weibo.pcap exactly (TO_BUFFER packets, counter, BINOP
#    ADD = 2 x counter).
#  * ctl: the attacker garbles the ring's consumer block (the part it may write): mapid logs
#    it, drops that ring's packets, still counts exactly, and the attacker's mapi_get_next_pkt
#    fails with 5121.
#  * hold: the attacker never reads a full ring on a trace (mapid's capture thread of that
#    device waits, 50 ms at a time) and keeps moving its tail between valid values and bumping
#    its futex word: mapid stays under 50% CPU; meanwhile another user's PKT_COUNTER on
#    weibo.pcap equals tcpdump --count, and mapid stops within 5 s of SIGTERM.
#  * big (#18): a pcap whose header claims a 4 MiB snaplen, holding a packet of 262144 bytes (the
#    largest any driver hands out; longer records are a format error, see
#    test_devices_hostile), with buffer_size=1M: the ring is sized for two of the largest
#    record, so TO_BUFFER delivers every packet exactly.
#
# Usage: test_shm_hostile.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

hostile_setup weibo.pcap

# fill.pcap: 3000 packets of 1400 bytes (4.2 MB: fills a 1 MiB ring many times over).
# big.pcap: snaplen 4 MiB; packets of 100 bytes, 262144 bytes, 200 bytes.
"$PY" - "$TMPD" <<'EOF'
import struct, sys
d = sys.argv[1]
def write(path, snaplen, sizes):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, snaplen, 1))
        for i, n in enumerate(sizes):
            frame = bytes([(i * 7 + k) & 0xff for k in range(min(n, 4096))])
            frame = (frame * (n // len(frame) + 1))[:n]
            f.write(struct.pack("<IIII", 1000 + i, i * 10, n, n) + frame)
write(d + "/fill.pcap", 65535, [1400] * 3000)
write(d + "/big.pcap", 4 << 20, [100, 262144, 200])
EOF
chmod 644 "$TMPD"/*.pcap
mkdir "$TMPD/out"
chmod 777 "$TMPD/out" # the victim's output files

BUFFER_SIZE=1M start_mapid shm
count_as_victim()
{
    "${AS_VICTIM[@]}" "$TBIN/mapi_count" -t 30 "$TMPD/weibo.pcap" pcap "" 2>"$TMPD/victim.err" |
        awk -F'\t' '{print $2}'
}

# seal --------------------------------------------------------------------------------------
"${AS_EVIL[@]}" "$TBIN/mapi_shmattack" seal "$TMPD/weibo.pcap" >"$TMPD/seal.out" 2>"$TMPD/seal.err" ||
    fail "mapi_shmattack seal failed: $(cat "$TMPD/seal.err")"
nref=$(grep -c '^refused ' "$TMPD/seal.out" || true)
if grep -q '^WROTE ' "$TMPD/seal.out"; then
    fail "the attacker wrote memory mapid reads:"
    grep '^WROTE ' "$TMPD/seal.out"
elif [ "$nref" -ne 36 ]; then
    fail "expected 36 refused write attempts, got $nref"
    cat "$TMPD/seal.out"
else
    pass "seal: all $nref ways to write the result region and the ring's producer part refused"
fi
if grep -qx "pkts $WANT counter $WANT binop $((2 * WANT)) err 0" "$TMPD/seal.out"; then
    pass "seal: the attacked flow still counts exactly ($WANT packets, BINOP $((2 * WANT)))"
else
    fail "seal: want 'pkts $WANT counter $WANT binop $((2 * WANT)) err 0', got: $(tail -n 1 "$TMPD/seal.out")"
fi

# ctl ---------------------------------------------------------------------------------------
"${AS_EVIL[@]}" "$TBIN/mapi_shmattack" ctl "$TMPD/weibo.pcap" >"$TMPD/ctl.out" 2>"$TMPD/ctl.err" ||
    fail "mapi_shmattack ctl failed: $(cat "$TMPD/ctl.err")"
if grep -qx "counter $WANT" "$TMPD/ctl.out" && grep -qx "next NULL err 5121" "$TMPD/ctl.out"; then
    pass "ctl: a garbled consumer block costs only the attacker's ring (5121), counts exact"
else
    fail "ctl: want 'counter $WANT' and 'next NULL err 5121', got: $(tr '\n' ' ' <"$TMPD/ctl.out")"
fi
grep -q "client corrupted its packet ring" "$TMPD/shm.log" ||
    fail "ctl: mapid did not log the corrupted ring"

# hold + victim -------------------------------------------------------------------------------
"${AS_EVIL[@]}" "$TBIN/mapi_shmattack" hold "$TMPD/fill.pcap" >"$TMPD/hold.out" 2>"$TMPD/hold.err" &
HOLD=$!
track_pid "$HOLD"
for _ in $(seq 100); do
    grep -q ready "$TMPD/hold.out" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$TMPD/hold.out" || fail "the holding attacker did not start: $(cat "$TMPD/hold.err")"
# mapid's CPU time over 2 s while the attacker keeps moving its tail and futex word: the
# capture thread of its device must still mostly sleep.
cpu_ticks()
{
    awk '{print $14 + $15}' "/proc/$(mapid_pid shm)/stat"
}
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
pct=$(((c1 - c0) * 100 / $(getconf CLK_TCK) / 2))
if [ "$pct" -lt 50 ]; then
    pass "mapid used ${pct}% CPU while the attacker churned its consumer block"
else
    fail "mapid used ${pct}% CPU while the attacker churned its consumer block"
fi
got=$(count_as_victim)
if [ "$got" = "$WANT" ]; then
    pass "another user counts weibo.pcap exactly ($got) while the attacker holds a full ring"
else
    fail "victim counted '$got', tcpdump $WANT: $(cat "$TMPD/victim.err")"
fi

# big packets (#18) ---------------------------------------------------------------------------
if "${AS_VICTIM[@]}" "$TBIN/mapi_dump" "$TMPD/big.pcap" pcap "$TMPD/out/big.pcap" EN10MB \
    >"$TMPD/big.n" 2>"$TMPD/big.err"; then
    if "$PY" - "$TMPD/big.pcap" "$TMPD/out/big.pcap" <<'EOF'; then
import struct, sys
def recs(path):
    b = open(path, "rb").read()
    o, out = 24, []
    while o + 16 <= len(b):
        s, u, cap, wl = struct.unpack_from("<IIII", b, o)
        out.append((s, u, wl, b[o + 16:o + 16 + cap]))
        o += 16 + cap
    return out
a, b = recs(sys.argv[1]), recs(sys.argv[2])
sys.exit(0 if a == b and len(a) == 3 else 1)
EOF
        pass "big: a 262144-byte packet (snaplen 4 MiB, buffer_size 1M) is delivered with the others"
    else
        fail "big: TO_BUFFER did not deliver the trace exactly ($(cat "$TMPD/big.n") packets)"
    fi
else
    fail "big: mapi_dump failed: $(cat "$TMPD/big.err")"
fi

# SIGTERM with the attacker still holding its full ring --------------------------------------
kill -0 "$HOLD" 2>/dev/null || fail "the holding attacker exited early"
pid=$(mapid_pid shm)
t0=$(date +%s%N)
stop_mapid shm
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -lt 5000 ]; then
    pass "mapid stopped ${ms} ms after SIGTERM with a client holding a full ring"
else
    fail "mapid took ${ms} ms to stop"
fi
kill -KILL "$HOLD" 2>/dev/null || true
wait "$HOLD" 2>/dev/null || true
: "$pid"
finish
