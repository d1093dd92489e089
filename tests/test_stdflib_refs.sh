#!/usr/bin/env bash
# tests/test_stdflib_refs.sh - the stdflib functions that read other functions' results: STATS,
# BINOP and DIST, on real captures through a private mapid and the client tests/mapi_refs.c
# (several flows on one trace-file device), compared with independent oracles:
#   STATS "0" over PKTINFO PKT_SIZE      count/sum/sum2/max/min of tshark's frame.len (same flow
#                                        and from another flow)
#   STATS "1" over GAP                   the gaps between tshark's frame.time_epoch values
#   STATS "1s" / "250ms" / "2.5s"        per-interval packet counts and byte sums (PKT_COUNTER,
#                                        BYTE_COUNTER, reset after every interval) computed in
#                                        python from frame.time_epoch and frame.len on a grid
#                                        that starts at the first packet, empty intervals and
#                                        the last partial one included
#   DIST over PKT_SIZE and over GAP      python histograms with the half-open buckets of
#                                        mapi/dist.h (integer bounds, and time-string bounds)
#   BINOP ADD / SUB                      tcpdump --count of "tcp", "udp" and "tcp or udp" for
#                                        counters in three flows; in one flow, packets + bytes
#                                        and bytes - packets from tshark; SUB saturating at 0
# plus the argument errors (7001..7005): bad op, a fid without a result, a fid that does not
# exist, a closed flow, a flow created later, bad periods, bad DIST bounds.
#
# Usage: test_stdflib_refs.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

if ! command -v tshark >/dev/null 2>&1 || ! command -v tcpdump >/dev/null 2>&1; then
    echo "SKIP: tshark or tcpdump not installed"
    exit 77
fi

FILES=(weibo.pcap iphone.pcap http_ipv6.pcap)

start_mapid rf

# run FILE COMMAND...: the output of mapi_refs (lines "fn J NAME ..." or "ERR N").
run()
{
    "$TBIN/mapi_refs" "$DATA/$1" "${@:2}" 2>"$TMPD/client.err" || {
        cat "$TMPD/client.err"
        echo "CLIENT-FAILED"
    }
}

# check NAME GOT WANT
check()
{
    if [ "$2" = "$3" ]; then
        pass "$1: $2"
    else
        fail "$1: got '$2', want '$3'"
    fi
}

cat >"$TMPD/check.py" <<'PYEOF'
# check.py FIELDS SIZES_OUT PERIODIC_OUT BINOP_OUT NTCP NUDP NBOTH: compares the outputs of
# mapi_refs with values computed here from tshark's "frame.len<TAB>frame.time_epoch" lines and
# tcpdump's counts. Prints ok:/FAIL: lines; exits with the number of failures.
import sys
from decimal import Decimal as D

fields, sizes_out, periodic_out, binop_out = sys.argv[1:5]
ntcp, nudp, nboth = (int(x) for x in sys.argv[5:8])
lens, usecs = [], []
for line in open(fields):
    a, b = line.split("\t")
    lens.append(int(a))
    usecs.append(int((D(b.strip()) * 1000000).to_integral_value()))  # microsecond captures
n = len(lens)
TICKS = 2**32
failures = 0


def report(ok, what):
    global failures
    print(("ok:   " if ok else "FAIL: ") + what)
    failures += 0 if ok else 1


def results(path):
    """{J: [NAME, words...]} from 'fn J NAME ...' lines; {} with the raw text if none."""
    res = {}
    text = open(path).read()
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] == "fn":
            res[int(w[1])] = w[2:]
    if not res:
        report(False, "%s: no results: %r" % (path, text[:300]))
    return res


def stats_of(words):
    """STATS words -> (count, sum, sum2, max, min) as Decimals."""
    kv = dict(zip(words[1::2], words[2::2]))
    return tuple(D(kv[k]) for k in ("count", "sum", "sum2", "max", "min"))


def want_stats(samples):
    if not samples:
        return (0, 0, 0, 0, 0)
    return (len(samples), sum(samples), sum(v * v for v in samples), max(samples), min(samples))


def check_stats(res, j, samples, what):
    if j not in res:
        report(False, "%s: fn %d missing" % (what, j))
        return
    got = stats_of(res[j])
    want = tuple(D(x) for x in want_stats(samples))
    report(got == want, "%s: got %s, want %s" % (what, [str(x) for x in got], [str(x) for x in want]))


def check_dist(res, j, samples, lo, hi, step, what):
    """Half-open buckets of mapi/dist.h: slot 0 below lo, then [lo + (k-1)*step, lo + k*step),
    the last slot open-ended."""
    nint = -(-(hi - lo) // step)
    data = [0] * (nint + 1)
    for v in samples:
        data[0 if v < lo else min(nint, (v - lo) // step + 1)] += 1
    want = ["DIST", "min", str(lo), "max", str(hi), "intervals", str(nint), "data"] + [str(x) for x in data]
    got = res.get(j)
    report(got == want, "%s: got %s, want %s" % (what, got, want))


def check_value(res, j, value, what):
    got = res.get(j)
    report(got is not None and got[1:] == [str(value)], "%s: got %s, want %d" % (what, got, value))


# Sizes, gaps and same-flow BINOP (see the commands in the shell script).
res = results(sizes_out)
check_stats(res, 2, lens, "STATS 0 over PKT_SIZE")
check_stats(res, 13, lens, "STATS 0 over PKT_SIZE of another flow")
check_dist(res, 3, lens, 0, 1500, 100, "DIST PKT_SIZE 0 1500 100")
check_dist(res, 4, lens, 60, 1000, 64, "DIST PKT_SIZE 60 1000 64")
gaps_us = [0] + [max(0, usecs[i] - usecs[i - 1]) for i in range(1, n)]
# GAP values are 32.32 ticks: DIST on the exact grid of 250 ms = 2^30 ticks, where a gap of
# u microseconds always falls in bucket u // 250000 + 1.
check_dist(res, 7, [g * TICKS // 1000000 for g in gaps_us], 0, 4 * TICKS, TICKS // 4,
           "DIST GAP 0 4s 250ms")
if 6 in res:
    cnt, s, s2, mx, mn = stats_of(res[6])
    g = gaps_us[1:]
    ok = (cnt == n - 1 and abs(s / TICKS - D(sum(g)) / 1000000) <= D("0.000001")
          and abs(mx / TICKS - D(max(g)) / 1000000) <= D("0.000001")
          and abs(mn / TICKS - D(min(g)) / 1000000) <= D("0.000001"))
    report(ok, "STATS 1 over GAP: count %s sum %.6f s max %.6f min %.6f; want %d %.6f %.6f %.6f"
           % (cnt, s / TICKS, mx / TICKS, mn / TICKS, n - 1, sum(g) / 1e6, max(g) / 1e6, min(g) / 1e6))
else:
    report(False, "STATS 1 over GAP missing")
check_value(res, 8, n, "PKT_COUNTER")
check_value(res, 10, n + sum(lens), "BINOP ADD packets bytes (same flow)")
check_value(res, 11, sum(lens) - n, "BINOP SUB bytes packets (same flow)")
check_value(res, 12, 0, "BINOP SUB packets bytes saturates at 0")

# Periodic STATS over counters reset after every interval.
res = results(periodic_out)


def per_interval(values, period_us):
    """Sums of values per interval of a grid starting at the first packet; every interval up to
    the one of the last packet (empty ones as 0). A packet whose time goes backwards stays in
    the current interval."""
    out, cur, end = [], 0, usecs[0] + period_us
    for t, v in zip(usecs, values):
        while t >= end:
            out.append(cur)
            cur = 0
            end += period_us
        cur += v
    out.append(cur)
    return out


check_stats(res, 2, per_interval([1] * n, 1000000), "STATS 1s over PKT_COUNTER")
check_stats(res, 4, per_interval(lens, 250000), "STATS 250ms over BYTE_COUNTER")
check_stats(res, 6, per_interval([1] * n, 2500000), "STATS 2.5s over PKT_COUNTER")

# BINOP across flows.
res = results(binop_out)
check_value(res, 2, ntcp, "PKT_COUNTER of flow tcp")
check_value(res, 4, nudp, "PKT_COUNTER of flow udp")
check_value(res, 5, nboth, "BINOP ADD tcp udp = tcp or udp")
check_value(res, 6, max(0, ntcp - nudp), "BINOP SUB tcp udp")
check_value(res, 7, max(0, nudp - ntcp), "BINOP SUB udp tcp")
sys.exit(min(failures, 100))
PYEOF

for f in "${FILES[@]}"; do
    tshark -r "$DATA/$f" -T fields -e frame.len -e frame.time_epoch >"$TMPD/fields" 2>/dev/null
    run "$f" flow \
        apply PKTINFO 1 1 \
        apply STATS 3 @1 '#1' 0 \
        apply DIST 5 @1 '#1' 0 1500 100 \
        apply DIST 5 @1 '#1' 60 1000 64 \
        apply GAP 0 \
        apply STATS 3 @1 '#5' 1 \
        apply DIST 5 @1 '#5' 0 4s 250ms \
        apply PKT_COUNTER 0 \
        apply BYTE_COUNTER 0 \
        apply BINOP 5 0 @1 '#8' @1 '#9' \
        apply BINOP 5 1 @1 '#9' @1 '#8' \
        apply BINOP 5 1 @1 '#8' @1 '#9' \
        flow \
        apply STATS 3 @1 '#1' 0 >"$TMPD/sizes.out"
    run "$f" flow \
        apply PKT_COUNTER 0 \
        apply STATS 3 @1 '#1' 1s \
        apply BYTE_COUNTER 0 \
        apply STATS 3 @1 '#3' 250ms \
        apply PKT_COUNTER 0 \
        apply STATS 3 @1 '#5' 2.5s >"$TMPD/periodic.out"
    run "$f" flow \
        apply BPF_FILTER 1 tcp \
        apply PKT_COUNTER 0 \
        flow \
        apply BPF_FILTER 1 udp \
        apply PKT_COUNTER 0 \
        flow \
        apply BINOP 5 0 @1 '#2' @2 '#4' \
        apply BINOP 5 1 @1 '#2' @2 '#4' \
        apply BINOP 5 1 @2 '#4' @1 '#2' >"$TMPD/binop.out"
    ntcp=$(tcpdump_count "$DATA/$f" tcp)
    nudp=$(tcpdump_count "$DATA/$f" udp)
    nboth=$(tcpdump_count "$DATA/$f" "tcp or udp")
    rc=0
    "$PY" "$TMPD/check.py" "$TMPD/fields" "$TMPD/sizes.out" "$TMPD/periodic.out" \
        "$TMPD/binop.out" "$ntcp" "$nudp" "$nboth" >"$TMPD/check.txt" || rc=$?
    sed "s/^\(ok:   \|FAIL: \)/\1$f /" "$TMPD/check.txt"
    FAILURES=$((FAILURES + rc))
    mapid_alive rf || die "mapid died on $f"
done

# Argument errors (positions: STATS fd 1, fid 2, period 3; BINOP op 1, fd 2 / 4, fid 3 / 5;
# DIST fd 1, fid 2, min 3, max 4, interval 5).
f=weibo.pcap
err()
{
    local want=$1
    shift
    check "$*" "$(run "$f" flow apply PKT_COUNTER 0 apply BPF_FILTER 1 tcp "$@" | tail -n 1)" "$want"
}
err "ERR 7001" apply BINOP 5 2 @1 '#1' @1 '#1'
err "ERR 7001" apply BINOP 5 -1 @1 '#1' @1 '#1'
err "ERR 7003" apply BINOP 5 0 @1 '#2' @1 '#1'
err "ERR 7005" apply BINOP 5 0 @1 '#1' @1 '#2'
err "ERR 7005" apply BINOP 5 0 @1 '#1' @1 999
err "ERR 7003" apply BINOP 5 0 @1 0 @1 '#1'
err "ERR 7002" apply STATS 3 @1 '#2' 0
err "ERR 7002" apply STATS 3 @1 999 0
err "ERR 7003" apply STATS 3 @1 '#1' 0s
err "ERR 7003" apply STATS 3 @1 '#1' -1
err "ERR 7003" apply STATS 3 @1 '#1' -1s
err "ERR 7003" apply STATS 3 @1 '#1' ""
err "ERR 7003" apply STATS 3 @1 '#1' 1x
err "ERR 7002" apply DIST 5 @1 '#2' 0 100 10
err "ERR 7003" apply DIST 5 @1 '#1' x 100 10
err "ERR 7003" apply DIST 5 @1 '#1' -5 100 10
err "ERR 7004" apply DIST 5 @1 '#1' 100 50 10
err "ERR 7004" apply DIST 5 @1 '#1' 100 100 10
err "ERR 7004" apply DIST 5 @1 '#1' 0 1.5 10
err "ERR 7005" apply DIST 5 @1 '#1' 0 100 0
err "ERR 7005" apply DIST 5 @1 '#1' 0 100 0ms
err "ERR 7005" apply DIST 5 @1 '#1' 0 100000000 1
# A closed flow: refused by libmapi (the descriptor is no longer open) at the flow's position.
check "STATS over a closed flow" \
    "$(run "$f" flow apply PKT_COUNTER 0 flow close 1 apply STATS 3 @1 '#1' 0 | tail -n 1)" "ERR 7001"
check "BINOP with a closed second flow" \
    "$(run "$f" flow apply PKT_COUNTER 0 flow apply PKT_COUNTER 0 close 1 \
        apply BINOP 5 0 @2 '#2' @1 '#1' | tail -n 1)" "ERR 7004"
# A flow created after the referencing one: refused by mapid at the flow's position.
check "STATS over a later flow" \
    "$(run "$f" flow flow apply PKT_COUNTER 0 use 1 apply STATS 3 @2 '#1' 0 | tail -n 1)" "ERR 7001"
# A fid of another flow named with the wrong flow.
check "DIST fid of another flow" \
    "$(run "$f" flow apply PKT_COUNTER 0 flow apply DIST 5 @2 '#1' 0 10 1 | tail -n 1)" "ERR 7002"

stop_mapid rf
finish
