#!/usr/bin/env bash
# tests/test_stdflib_bucket.sh - BUCKET and RES2FILE of stdflib on real captures, through a
# private mapid and the clients tests/mapi_bucket.c and tests/mapi_res2file.c, compared with an
# independent oracle: a few lines of python over the records of the pcap file (for a
# BPF_FILTER: of the pcap file that `tcpdump -w OUT FILTER` writes).
#
# check.py reads the time and length of the packets from the pcap records with python's struct
# module; that reader is checked first against tshark's frame.time_epoch and frame.len.
# The oracle builds the grid of intervals from the first packet of the file (t0, in integer
# microseconds: every period used here is a whole number of microseconds, so the interval of a
# packet is exact), and expects:
#   BUCKET periodic   one bucket per interval from t0 to the last packet, empty ones included,
#                     timestamp = t0 + k*I (within 1 us), data = the packets (bytes) of interval
#                     k with reset 1, the running total at its end with reset 0
#   BUCKET "0"        one bucket per packet: its time, and 1 / its length (reset 1) or the
#                     running total (reset 0)
#   BUCKET "-1"       one bucket: t0 and the total
#   RES2FILE          "header\n", then the same values as text, "%llu " each, one line per
#                     interval / packet / once; ULLSEC of PKTINFO PKT_TS (the packet times),
#                     STATS of PKTINFO PKT_SIZE (count, sum, sum of squares, min, max of the
#                     lengths) and RAW of PKT_COUNTER (8-byte size + 8-byte value) once.
# Then a write error (a full tmpfs: logged once, the flow goes on), the argument errors
# (7001..7005, 7011) and a negative check that the oracle rejects a
# bucket list with one wrong value.
#
# Usage: test_stdflib_bucket.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

for t in tshark tcpdump; do
    if ! command -v "$t" >/dev/null 2>&1; then
        echo "SKIP: $t not installed"
        exit 77
    fi
done

start_mapid bk

# The oracle: check.py KIND FIELDS OUTPUT ARGS... (prints the first mismatch, exits 1 on one).
cat >"$TMPD/check.py" <<'PYEOF'
import struct, sys
from decimal import Decimal as D
from fractions import Fraction as F

TICKS = 2**32

def usecs(s):
    return int((D(s) * 1000000).to_integral_value())

def pcap_packets(path):
    """(time_us, orig_len) of every record of a microsecond pcap file, read with struct."""
    data = open(path, "rb").read()
    e = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    if struct.unpack(e + "I", data[:4])[0] != 0xa1b2c3d4:
        fail("%s is not a microsecond pcap file" % path)
    out, off = [], 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        out.append((sec * 1000000 + usec, orig))
        off += 16 + incl
    return out

def packets(path):
    if path.endswith(".pcap"):
        return pcap_packets(path)
    out = []
    for line in open(path):
        f = line.split()
        if len(f) >= 2:
            out.append((usecs(f[0]), int(f[1])))
    return out

def period_us(s):
    for suffix, mult in (("ms", 1000), ("us", 1), ("s", 1000000), ("m", 60000000)):
        if s.endswith(suffix):
            return int(D(s[:-len(suffix)]) * mult)
    return int(D(s) * 1000000)

def expected(allp, sel, interval, reset, what):
    """[(time_us, value)] of the buckets (or lines) for the selected packets sel."""
    val = (lambda p: 1) if what == "pkts" else (lambda p: p[1])
    t0 = allp[0][0]
    if interval == "-1":
        return [(t0, sum(val(p) for p in sel))]
    if interval == "0":
        res, tot = [], 0
        for p in sel:
            tot = val(p) if reset else tot + val(p)
            res.append((p[0], tot))
        return res
    I = period_us(interval)
    n = (allp[-1][0] - t0) // I + 1
    per = [0] * n
    for p in sel:
        per[(p[0] - t0) // I] += val(p)
    res, tot = [], 0
    for k in range(n):
        tot = per[k] if reset else tot + per[k]
        res.append((t0 + k * I, tot))
    return res

def fail(msg):
    print("mismatch: " + msg)
    sys.exit(1)

kind, fields, output = sys.argv[1:4]
if kind == "reader":
    for name in sys.argv[4:]:
        a = pcap_packets(fields + "/" + name)
        b = packets(output + "/" + name + ".fields")
        if a != b or not a:
            fail("%s: %d records, tshark %d, first difference %r" % (name, len(a), len(b),
                 next(((x, y) for x, y in zip(a, b) if x != y), None)))
    print("%d files" % (len(sys.argv) - 4))
    sys.exit(0)
allp = packets(fields)
if kind == "bucket":
    sel_fields, interval, reset, what = sys.argv[4:8]
    sel = packets(sel_fields)
    want = expected(allp, sel, interval, int(reset), what)
    lines = open(output).read().split("\n")
    got = [l.split() for l in lines if l.startswith("B ")]
    if "END 6158" not in lines:
        fail("no 'END 6158' after the buckets")
    if len(got) != len(want):
        fail("%d buckets, want %d" % (len(got), len(want)))
    for k, (g, w) in enumerate(zip(got, want)):
        ts_us = F(int(g[1]), TICKS) * 1000000
        if abs(ts_us - w[0]) > 1 or int(g[2]) != w[1]:
            fail("bucket %d: got ts %s us value %s, want %d us value %d"
                 % (k, float(ts_us), g[2], w[0], w[1]))
    print("%d buckets" % len(got))
elif kind == "ullstr":
    header, interval, reset = sys.argv[4:7]
    cols = [expected(allp, allp, interval, int(reset), w) for w in ("pkts", "bytes")]
    want = [header + "\n"] + ["%d %d \n" % (a[1], b[1]) for a, b in zip(*cols)]
    got = open(output).read().splitlines(keepends=True)
    if len(got) != len(want):
        fail("%d lines, want %d" % (len(got), len(want)))
    for k, (g, w) in enumerate(zip(got, want)):
        if g != w:
            fail("line %d: got %r, want %r" % (k + 1, g, w))
    print("%d lines" % len(got))
elif kind == "ullsec":
    got = open(output).read().splitlines(keepends=True)
    if got[0] != "header\n" or len(got) != len(allp) + 1:
        fail("%d lines (want header + %d)" % (len(got), len(allp)))
    for k, (g, p) in enumerate(zip(got[1:], allp)):
        if not g.endswith(" \n") or len(g.split(".")[1]) != 14:
            fail("line %d %r is not \"%%.12Lf \\n\"" % (k + 2, g))
        if abs(D(g.strip()) * 1000000 - p[0]) > 1:
            fail("line %d: %s, want %d us" % (k + 2, g.strip(), p[0]))
    print("%d lines" % len(got))
elif kind == "stats":
    lens = [p[1] for p in allp]
    want = "header\n%d %d.000000 %d.000000 %d.000000 %d.000000 \n" % (
        len(lens), sum(lens), sum(l * l for l in lens), min(lens), max(lens))
    got = open(output).read()
    if got != want:
        fail("got %r, want %r" % (got, want))
    print(repr(got))
elif kind == "raw":
    want = b"header\n" + struct.pack("=QQ", 8, len(allp)) + b"\n"
    got = open(output, "rb").read()
    if got != want:
        fail("got %r, want %r" % (got, want))
    print("%d bytes" % len(got))
PYEOF

# fields FILE [FILTER]: the pcap file whose records check.py reads: FILE itself, or the
# packets tcpdump keeps with FILTER (cached).
fields()
{
    local out=$DATA/$1
    if [ -n "${2:-}" ]; then
        out="$TMPD/$1.$(echo "$2" | tr -c 'a-z0-9' _).pcap"
        [ -e "$out" ] || tcpdump -r "$DATA/$1" -w "$out" "$2" 2>/dev/null
    fi
    echo "$out"
}

# verdict NAME CHECK_ARGS...: runs the oracle and counts the result.
verdict()
{
    local name=$1 msg
    shift
    if msg=$("$PY" "$TMPD/check.py" "$@" 2>&1); then
        pass "$name: $msg"
    else
        fail "$name: $msg"
    fi
}

# The struct reader of check.py against tshark (time in us, length): little- and big-endian
# files, Ethernet and Linux cooked.
for f in iphone.pcap log4j-webapp-exploit.pcap pptp.pcap; do
    tshark -r "$DATA/$f" -T fields -e frame.time_epoch -e frame.len 2>/dev/null >"$TMPD/$f.fields"
done
verdict "check.py's pcap reader agrees with tshark" reader "$DATA" "$TMPD" iphone.pcap \
    log4j-webapp-exploit.pcap pptp.pcap

# bucket FILE SOURCE INTERVAL RESET [CLIENT_OPTIONS...]: BUCKET over SOURCE, checked.
bucket()
{
    local f=$1 src=$2 iv=$3 rs=$4 filter="" sel
    shift 4
    if [ "${1:-}" = "-f" ]; then
        filter=$2
    fi
    "$TBIN/mapi_bucket" "$@" "$DATA/$f" "$src" "$iv" "$rs" >"$TMPD/out" 2>"$TMPD/err" ||
        cat "$TMPD/err"
    sel=$(fields "$f" "$filter")
    verdict "$f BUCKET $src '$iv' reset $rs $*" bucket "$(fields "$f")" "$TMPD/out" "$sel" \
        "$iv" "$rs" "$([ "$src" = BYTE_COUNTER ] && echo bytes || echo pkts)"
}

bucket iphone.pcap PKT_COUNTER 1s 1
bucket iphone.pcap PKT_COUNTER 1s 0
bucket iphone.pcap BYTE_COUNTER 1s 1
bucket iphone.pcap BYTE_COUNTER 2500ms 0
bucket log4j-webapp-exploit.pcap PKT_COUNTER 1s 1
bucket log4j-webapp-exploit.pcap BYTE_COUNTER 0.5s 1
bucket http_ipv6.pcap BYTE_COUNTER 1s 1
bucket weibo.pcap PKT_COUNTER 250ms 1
bucket QinQpacket.pcap PKT_COUNTER 10s 1
bucket QinQpacket.pcap BYTE_COUNTER 1m 0
bucket pptp.pcap PKT_COUNTER 0 0
bucket pptp.pcap BYTE_COUNTER 0 1
bucket weibo.pcap BYTE_COUNTER -1 0
bucket iphone.pcap PKT_COUNTER -1 1
# After a filter of the same flow (the grid still starts at the first packet of the file).
bucket iphone.pcap PKT_COUNTER 1s 1 -f udp
bucket iphone.pcap PKT_COUNTER 0 0 -f "icmp or icmp6"
bucket weibo.pcap PKT_COUNTER 500ms 0 -f "tcp[tcpflags] & tcp-syn != 0"
# The source in another, earlier flow of the application.
bucket iphone.pcap PKT_COUNTER 1s 1 -x

# Negative check: the oracle must reject a bucket list with one value changed.
"$TBIN/mapi_bucket" "$DATA/weibo.pcap" PKT_COUNTER 1s 1 >"$TMPD/out" 2>"$TMPD/err" || true
awk 'NR == 3 && $1 == "B" { $3 = $3 + 1 } { print }' "$TMPD/out" >"$TMPD/out.bad"
if "$PY" "$TMPD/check.py" bucket "$(fields weibo.pcap)" "$TMPD/out.bad" "$(fields weibo.pcap)" \
    1s 1 pkts >/dev/null; then
    fail "the oracle accepted a wrong bucket"
else
    pass "the oracle rejects a wrong bucket"
fi

# res2file NAME FILE TYPES INTERVAL RESET SPEC...: runs RES2FILE into $TMPD/NAME.txt.
res2file()
{
    local name=$1 f=$2
    shift 2
    rm -f "$TMPD/$name.txt"
    "$TBIN/mapi_res2file" "$DATA/$f" "$TMPD/$name.txt" "$@" 2>"$TMPD/err" || {
        cat "$TMPD/err"
        echo CLIENT-FAILED
    }
}

for a in "iphone.pcap 1s 1" "iphone.pcap 1s 0" "QinQpacket.pcap 10s 1" "pptp.pcap 0 0" \
    "weibo.pcap -1 0" "log4j-webapp-exploit.pcap 250ms 0"; do
    read -r f iv rs <<<"$a"
    out=$(res2file r "$f" 1,1 "$iv" "$rs" PKT_COUNTER BYTE_COUNTER)
    if [ "$out" = OK ]; then
        verdict "$f RES2FILE 1,1 '$iv' reset $rs" ullstr "$(fields "$f")" "$TMPD/r.txt" header \
            "$iv" "$rs"
    else
        fail "$f RES2FILE 1,1 '$iv' reset $rs: $out"
    fi
done
f=pptp.pcap
out=$(res2file sec "$f" 2 0 0 PKTINFO:0)
verdict "$f RES2FILE ULLSEC of PKTINFO PKT_TS '0' ($out)" ullsec "$(fields "$f")" "$TMPD/sec.txt"
f=weibo.pcap
out=$(res2file raw "$f" 0 -1 0 PKT_COUNTER)
verdict "$f RES2FILE RAW of PKT_COUNTER '-1' ($out)" raw "$(fields "$f")" "$TMPD/raw.txt"

# A full file system: the writes fail at the end of the trace; mapid logs it once and goes on.
# The client alone runs in a private mount namespace with a 4 KiB tmpfs (root only).
mkdir "$TMPD/full"
if unshare -m true 2>/dev/null; then
    # shellcheck disable=SC2016 # $1 and $@ are expanded by the inner shell
    out=$(unshare -m sh -c 'mount -t tmpfs -o size=4k none "$1" && shift && exec "$@"' sh \
        "$TMPD/full" "$TBIN/mapi_res2file" "$DATA/iphone.pcap" "$TMPD/full/r.txt" 1,1 0 0 \
        PKT_COUNTER BYTE_COUNTER 2>&1)
    n=$(grep -c "RES2FILE.*write failed" "$TMPD/bk.log" || true)
    if [ "$out" = OK ] && [ "$n" = 1 ] && mapid_alive bk; then
        pass "RES2FILE on a full file system: flow finished, one log line, mapid alive"
    else
        fail "RES2FILE on a full file system: client '$out', $n log lines"
    fi
else
    echo "skip: RES2FILE on a full file system (unshare -m not permitted)"
fi

# check NAME GOT WANT
check()
{
    if [ "$2" = "$3" ]; then
        pass "$1: $2"
    else
        fail "$1: got '$2', want '$3'"
    fi
}

# Argument errors.
f=pptp.pcap
berr()
{
    "$TBIN/mapi_bucket" "$DATA/$f" "$@" 2>/dev/null | head -n 1
}
check "BUCKET interval 0s" "$(berr PKT_COUNTER 0s 0)" "ERR 7003"
check "BUCKET interval bogus" "$(berr PKT_COUNTER 1x 0)" "ERR 7003"
check "BUCKET interval -2" "$(berr PKT_COUNTER -2 0)" "ERR 7003"
check "BUCKET reset 2" "$(berr PKT_COUNTER 1s 2)" "ERR 7004"
check "BUCKET unknown fid" "$(berr 99 1s 0)" "ERR 7002"
check "BUCKET over a function without a result" "$(berr SAMPLE:1:2 1s 0)" "ERR 7002"
rerr()
{
    local out
    out=$(res2file e "$f" "$@")
    if [ -e "$TMPD/e.txt" ]; then
        out="$out (file left behind)"
    fi
    echo "$out"
}
check "RES2FILE 2 types, 1 function" "$(rerr 1,1 1s 0 PKT_COUNTER)" "ERR 7002"
check "RES2FILE 1 type, 2 functions" "$(rerr 1 1s 0 PKT_COUNTER BYTE_COUNTER)" "ERR 7002"
check "RES2FILE STATS type over a counter" "$(rerr 3 1s 0 PKT_COUNTER)" "ERR 7002"
check "RES2FILE reset 2" "$(rerr 1 1s 2 PKT_COUNTER)" "ERR 7011"
check "RES2FILE interval 0s" "$(rerr 1 0s 0 PKT_COUNTER)" "ERR 7005"
check "RES2FILE interval bogus" "$(rerr 1 soon 0 PKT_COUNTER)" "ERR 7005"
check "RES2FILE type 4" "$(rerr 4 1s 0 PKT_COUNTER)" "ERR 7001"
check "RES2FILE types empty" "$(rerr '' 1s 0 PKT_COUNTER)" "ERR 7001"
check "RES2FILE types 1,x" "$(rerr 1,x 1s 0 PKT_COUNTER PKT_COUNTER)" "ERR 7001"

# RES2FILE of STATS (last: it relies on one more function of the library).
f=weibo.pcap
out=$(res2file st "$f" 3 -1 0 -PKTINFO:1 STATS:@fd:@prev:0)
verdict "$f RES2FILE STATS of PKTINFO PKT_SIZE '-1' ($out)" stats "$(fields "$f")" "$TMPD/st.txt"

stop_mapid bk
finish
