#!/usr/bin/env bash
# tests/test_compat.sh - source compatibility with the original MAPI: a program written only
# against the original API (tests/compat/original_api.c: <mapi.h>, <mapi/pktinfo.h>,
# <mapi/stats.h>, <mapi/bucket.h>, <mapi/dist.h>, <mapi/binop.h>, <mapi/res2file.h>,
# mapi_create_offline_flow, mapi_apply_function_array, mapi_results_t casts) must compile
# unchanged with -std=gnu99 -Wall -Werror against the installed-style headers and libmapi, and
# print the values that independent tools compute for the same trace:
#   PKT_COUNTER, BYTE_COUNTER, PKTINFO, GAP,    python over one tshark run per trace
#   STATS (count, sum, sum2, min, max of the    (frame.len, frame.time_epoch)
#   sizes), BINOP, DIST, BUCKET (cumulative
#   per second; per half second with reset)
#   BPF_FILTER "tcp" packets and bytes          the records tcpdump -w writes for "tcp"
#   STR_SEARCH                                  python: the pattern's bytes in each frame
#   RES2FILE (one line at the end)              packet count and last frame.time_epoch
#   TO_FILE (count 50, result 11 -> 0)          the file read back by tcpdump -xx and compared
#                                               record by record with the trace (python)
# and the error numbers of the original for provoked errors (second connect 3081, unknown
# function 6144, bad fd 6145, ...).
#
# Usage: test_compat.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

if ! command -v tshark >/dev/null 2>&1 || ! command -v tcpdump >/dev/null 2>&1; then
    echo "SKIP: tshark or tcpdump not installed"
    exit 77
fi
if ! command -v cc >/dev/null 2>&1; then
    echo "SKIP: no C compiler (cc)"
    exit 77
fi

# Compile exactly as an application of the original would be, against the source tree's
# include/ (what `make install` puts into P/include) and the built libmapi.
LIBDIR=$(dirname "$(find "$BUILD" -maxdepth 2 -name 'libmapi.so' -print -quit)")
[ -n "$LIBDIR" ] || die "libmapi.so not found under $BUILD"
# A sanitizer build's libmapi needs the sanitizer runtime in the program too.
SANITIZE=()
if grep -q '^MAPI_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    SANITIZE=("-fsanitize=address,undefined")
fi
if cc -std=gnu99 -Wall -Werror "${SANITIZE[@]}" -I"$SRC/include" \
    "$SRC/tests/compat/original_api.c" -o "$TMPD/original_api" -L"$LIBDIR" -lmapi \
    -Wl,-rpath,"$LIBDIR" 2>"$TMPD/cc.err"; then
    pass "tests/compat/original_api.c compiles with -std=gnu99 -Wall -Werror"
else
    cat "$TMPD/cc.err"
    die "tests/compat/original_api.c does not compile against the original API"
fi

start_mapid compat

# TRACE PATTERN for STR_SEARCH.
RUNS=(
    "weibo.pcap HTTP"
    "iphone.pcap HTTP"
    "log4j-webapp-exploit.pcap jndi"
)

for run in "${RUNS[@]}"; do
    read -r f pattern <<<"$run"
    trace=$DATA/$f
    out=$TMPD/${f%.pcap}
    mkdir -p "$out"
    if ! "$TMPD/original_api" "$trace" "$out" "$pattern" >"$out/got" 2>"$out/err"; then
        cat "$out/err"
        fail "$f: original_api failed"
        continue
    fi

    # The oracles.
    tshark -r "$trace" -T fields -e frame.len -e frame.time_epoch >"$out/frames" 2>/dev/null
    tcpdump -r "$trace" -w "$out/tcp.pcap" tcp 2>/dev/null
    tcpdump -r "$trace" -c 50 -tt -n -xx >"$out/want.dump" 2>/dev/null
    tcpdump -r "$out/to_file.pcap" -tt -n -xx >"$out/got.dump" 2>/dev/null ||
        echo "tcpdump cannot read it" >"$out/got.dump"

    "$PY" - "$f" "$out" "$pattern" "$trace" <<'PYEOF' >"$out/check"
import struct, sys
from decimal import Decimal as D
name, out, pattern, trace = sys.argv[1:5]
def ok(m): print("ok:   %s: %s" % (name, m))
def bad(m): print("FAIL: %s: %s" % (name, m))
def check(what, got, want):
    (ok if got == want else bad)("%s: got %s, want %s" % (what, got, want))

lens, us = [], []
for line in open(out + "/frames"):
    l, t = line.split()
    lens.append(int(l))
    us.append(int(D(t) * 1000000))
n = len(lens)

# TO_FILE, BPF_FILTER and STR_SEARCH oracles from pcap bytes: the records of a file.
def records(path, limit):
    data = open(path, "rb").read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off, recs = 24, []
    while off + 16 <= len(data) and len(recs) < limit:
        s, u, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        recs.append((s, u, incl, orig, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return linktype, recs
tcp_recs = records(out + "/tcp.pcap", 10**9)[1]          # what tcpdump's "tcp" selected
tcp, tcp_bytes = len(tcp_recs), sum(r[3] for r in tcp_recs)
strn = sum(1 for r in records(trace, 10**9)[1] if pattern.encode() in r[4])
if len(records(trace, 10**9)[1]) != n:
    bad("python and tshark disagree on the number of packets")
got = {}
buckets = {"bucket": [], "bucket_reset": []}
errors = {}
for line in open(out + "/got"):
    w = line.split()
    if w[0] in buckets:
        buckets[w[0]].append((int(w[1]), int(w[2]), int(w[3])))
    elif w[0] == "error":
        errors[w[1]] = int(w[2])
    else:
        got[w[0]] = [int(x) for x in w[1:]]

# Sanity of the oracles: the filters must select a proper subset, or the test proves little.
if not (0 < tcp < n and 0 < strn < n):
    bad("oracle counts are degenerate: %d packets, tcp %d, pattern %d" % (n, tcp, strn))

check("PKT_COUNTER", got.get("pkts"), [n])
check("BYTE_COUNTER", got.get("bytes"), [sum(lens)])
check("PKTINFO PKT_SIZE", got.get("pktinfo_size"), [lens[-1]])
ts = got.get("pktinfo_ts", [0])[0]
(ok if abs(D(ts) / D(2**32) * 1000000 - us[-1]) <= 1 else bad)(
    "PKTINFO PKT_TS %s ~ tshark %s us" % (ts, us[-1]))
gap = got.get("gap", [0])[0]
(ok if abs(D(gap) / D(2**32) * 1000000 - (us[-1] - us[-2])) <= 1 else bad)(
    "GAP %s ~ tshark %s us" % (gap, us[-1] - us[-2]))
check("STATS over PKTINFO PKT_SIZE (count sum sum2 min max)", got.get("stats"),
      [n, sum(lens), sum(x * x for x in lens), min(lens), max(lens)])
check("BINOP_ADD pkts + bytes", got.get("binop_add"), [n + sum(lens)])
check("BINOP_SUB bytes - pkts", got.get("binop_sub"), [sum(lens) - n])

# DIST 100 1500 200 over the sizes: intervals = ceil((max-min)/interval); slot 0 below min,
# slot k (1..intervals-1) [min+(k-1)I, min+kI), the last slot everything from
# min+(intervals-1)I up (include/mapi/dist.h).
lo, hi, step = 100, 1500, 200
intervals = -(-(hi - lo) // step)
slots = [0] * (intervals + 1)
for v in lens:
    if v < lo:
        slots[0] += 1
    else:
        slots[min(intervals, (v - lo) // step + 1)] += 1
check("DIST 100 1500 200 (min max intervals slots...)", got.get("dist"), [lo, hi, intervals] + slots)

check("BPF_FILTER tcp packets (tcpdump -w, records counted)", got.get("tcp_pkts"), [tcp])
check("BPF_FILTER tcp bytes (wire lengths of tcpdump's records)", got.get("tcp_bytes"), [tcp_bytes])
check("STR_SEARCH (python: pattern in the frame bytes)", got.get("str_pkts"), [strn])
check("TO_FILE result after its count", got.get("to_file"), [0])

# BUCKET: interval k = [t0 + k*I, t0 + (k+1)*I) from the first packet; one bucket per
# interval up to the last packet's; timestamp = the start of the interval (32.32).
def want_buckets(step_us, reset):
    t0, K = us[0], (us[-1] - us[0]) // step_us
    res = []
    for k in range(K + 1):
        a, b = t0 + k * step_us, t0 + (k + 1) * step_us
        res.append(sum(1 for t in us if (a <= t if reset else True) and t < b))
    return res
for key, step_us, reset in (("bucket", 1000000, False), ("bucket_reset", 500000, True)):
    b = buckets[key]
    what = "BUCKET %s%s" % ("500ms reset" if reset else "1s", "")
    check(what + " values", [x[2] for x in b], want_buckets(step_us, reset))
    step_ticks = step_us * 2**32 // 1000000
    if b and all(x[1] - b[0][1] == k * step_ticks for k, x in enumerate(b)) and \
            abs(D(b[0][1]) / D(2**32) * 1000000 - us[0]) <= 1 and [x[0] for x in b] == list(range(len(b))):
        ok(what + " timestamps: first packet's time + k * interval")
    else:
        bad(what + " timestamps %r (first packet at %d us)" % ([x[1] for x in b][:5], us[0]))
    check(what + " end of the queue (NULL, error)", got.get(key + "_end"), [6158])

# TO_FILE: the records of the written file are the trace's first 50, byte for byte.
try:
    lt_w, want_recs = records(trace, 50)
    lt_g, got_recs = records(out + "/to_file.pcap", 10**9)
    check("TO_FILE link type", lt_g, lt_w)
    (ok if got_recs == want_recs else bad)(
        "TO_FILE records = the trace's first %d, byte for byte (got %d)" % (len(want_recs), len(got_recs)))
except Exception as e:
    bad("TO_FILE output unreadable: %s" % e)

# RES2FILE "1,2" of PKT_COUNTER and PKTINFO PKT_TS, interval "-1": the header, then one line
# at the end of the trace: "<packets> <last timestamp in seconds, 12 decimals> ".
try:
    lines = open(out + "/res2file.txt").read().split("\n")
    fields = lines[1].split(" ")
    good = (lines[0] == "packets last_ts" and len(lines) == 3 and lines[2] == ""
            and len(fields) == 3 and fields[2] == "" and int(fields[0]) == n
            and len(fields[1].split(".")[1]) == 12
            and abs(D(fields[1]) * 1000000 - us[-1]) <= 1)
    (ok if good else bad)("RES2FILE file %r (want %d packets, last at %d us)" % (lines, n, us[-1]))
except Exception as e:
    bad("RES2FILE file unreadable: %s" % e)

# The original's error numbers.
want_err = {
    "second_connect": 3081, "apply_after_connect": 7006, "bad_fd_apply": 6145,
    "bad_fd_read": 6145, "bad_fid_read": 6147, "missing_trace": 6155,
    "unknown_function": 6144, "bad_bpf": 1025, "hash_layer": 7001, "to_file_exists": 3083,
    "stats_no_result": 7002, "binop_op": 7001, "bucket_interval": 7003,
    "bucket_other_device": 7001, "not_connected_read": 6143,
}
for k, v in want_err.items():
    check("error " + k, errors.get(k), v)
PYEOF
    cat "$out/check"
    FAILURES=$((FAILURES + $(grep -c '^FAIL:' "$out/check" || true)))
    grep -q '^ok: ' "$out/check" || fail "$f: the python checks did not run"
    if cmp -s "$out/want.dump" "$out/got.dump" && [ -s "$out/want.dump" ]; then
        pass "$f: TO_FILE output read back by tcpdump = tcpdump -c 50 of the trace"
    else
        fail "$f: tcpdump reads a different TO_FILE output: $(diff "$out/want.dump" "$out/got.dump" | head -n 5)"
    fi
done

stop_mapid compat
finish
