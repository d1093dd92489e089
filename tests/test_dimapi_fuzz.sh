#!/bin/bash
# tests/test_dimapi_fuzz.sh - fuzzes mapicommd's message decoder (header check and the
# request decoder of every DiMAPI type, tests/fuzz/dimapi_fuzz.c) with libFuzzer for a
# bounded time (20 s), starting from a seed corpus of valid, truncated and malformed messages
# written here. Fails on any crash, sanitizer report or broken invariant (the target
# re-encodes what it decoded and compares). Skipped (77) when clang has no libFuzzer.
#
# Usage: test_dimapi_fuzz.sh BUILD_DIR SOURCE_DIR   (the build directory is not used: the
# target is compiled here with clang -fsanitize=fuzzer,address,undefined).
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
SRC=$(cd "$2" && pwd)
FUZZ_TIME=${DIMAPI_FUZZ_TIME:-20}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

if ! command -v clang >/dev/null; then
    echo "SKIP: no clang"
    exit 77
fi
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapifuzz.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT

# Does this clang have libFuzzer?
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$TMPD/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$TMPD/probe.c" -o "$TMPD/probe" 2>/dev/null; then
    echo "SKIP: clang lacks libFuzzer (-fsanitize=fuzzer)"
    exit 77
fi

if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror -I"$SRC" -I"$SRC/include" \
    "$SRC/tests/fuzz/dimapi_fuzz.c" "$SRC/daemon/mapicommd/proto.c" "$SRC/common/wire.c" \
    -o "$TMPD/dimapi_fuzz" 2>"$TMPD/build.err"; then
    cat "$TMPD/build.err"
    echo "FAIL: the fuzz target does not build"
    exit 1
fi
echo "ok:   fuzz target built"

# Seed corpus: one valid request of every type, a few sequences, truncated and malformed ones.
mkdir -p "$TMPD/corpus"
"$PY" - "$TMPD/corpus" <<'EOF'
import os, struct, sys
d = sys.argv[1]
def s(x):
    b = x.encode()
    return struct.pack(">I", len(b)) + b
def msg(t, p, rid=1, flags=0):
    return struct.pack(">IBBHII", 0x4D415049, 1, flags, t, len(p), rid) + p
def arg(letter, v):
    if letter in "sSRw":
        return letter.encode() + s(v)
    if letter == "l":
        return letter.encode() + struct.pack(">Q", v)
    return letter.encode() + struct.pack(">i", v)
apply = struct.pack(">i", 3) + s("TO_FILE") + struct.pack(">I", 3) + arg("i", 0) + \
    arg("w", "x.pcap") + arg("l", 100)
apply2 = struct.pack(">i", 3) + s("BUCKET") + struct.pack(">I", 4) + arg("r", 2) + \
    arg("f", 1) + arg("s", "1s") + arg("i", 0)
apply3 = struct.pack(">i", 3) + s("RES2FILE") + struct.pack(">I", 6) + arg("s", "ll") + \
    arg("S", "1@2,2@2") + arg("s", "hdr") + arg("w", "f") + arg("s", "1") + arg("i", 0)
apply4 = struct.pack(">i", 3) + s("SYNC") + struct.pack(">I", 1) + arg("R", "1,2") + \
    arg("c", 65)
seeds = {
    "hello": msg(200, struct.pack(">HH", 1, 1) + bytes(range(16))),
    "create": msg(201, s("eth0")),
    "getfn": msg(202, s("PKT_COUNTER")),
    "apply": msg(203, apply),
    "apply2": msg(203, apply2),
    "apply3": msg(203, apply3),
    "apply4_trailing": msg(203, apply4),
    "connect": msg(204, struct.pack(">i", 1)),
    "read": msg(205, struct.pack(">ii", 1, 2)),
    "pkts": msg(206, struct.pack(">iiIII", 1, 2, 100, 900000, 500)),
    "close": msg(207, struct.pack(">i", 1)),
    "flowinfo": msg(208, struct.pack(">i", 1)),
    "fninfo": msg(209, struct.pack(">iiB", 1, 0, 1)),
    "stats": msg(210, s("eth0")),
    "devinfo": msg(211, struct.pack(">iB", 0, 1)),
    "libinfo": msg(212, struct.pack(">iB", -1, 1)),
    "libfunct": msg(213, struct.pack(">iiB", 0, -1, 1)),
    "unknown": msg(250, b"abc"),
    "flags": msg(201, s("eth0"), flags=1),
    "truncated": msg(203, apply)[:-5],
    "bigargs": msg(203, struct.pack(">i", 1) + s("X") + struct.pack(">I", 0xFFFFFFFF)),
    "hugestr": msg(201, struct.pack(">I", 0x7FFFFFFF) + b"a"),
    "nul": msg(201, s("et\0h0")),
    "badmagic": b"XAPI" + msg(201, s("eth0"))[4:],
}
seeds["session"] = b"".join(seeds[k] for k in ("hello", "create", "apply", "connect", "pkts",
                                               "read", "close"))
for name, data in seeds.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
EOF
echo "ok:   $(ls "$TMPD/corpus" | wc -l) seeds written"

# The seeds alone first (a regression run), then bounded fuzzing.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if ! (cd "$TMPD" && ./dimapi_fuzz -runs=0 corpus >seeds.log 2>&1); then
    tail -n 40 "$TMPD/seeds.log"
    echo "FAIL: the decoder crashed on a seed"
    exit 1
fi
echo "ok:   seeds decode without a crash"
mkdir -p "$TMPD/work"
cp "$TMPD"/corpus/* "$TMPD/work/"
if ! (cd "$TMPD" && ./dimapi_fuzz -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 work >fuzz.log 2>&1); then
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ " "$TMPD/fuzz.log" | tail -n 40
    for f in "$TMPD"/crash-* "$TMPD"/leak-* "$TMPD"/timeout-* "$TMPD"/oom-*; do
        [ -e "$f" ] && echo "reproducer: $(basename "$f") ($(od -An -tx1 "$f" | head -c 300))"
    done
    echo "FAIL: the fuzzer found a crash"
    exit 1
fi
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TMPD/fuzz.log" | grep -o '[0-9]*$')
echo "ok:   ${FUZZ_TIME} s of fuzzing, ${runs:-?} inputs, no crash"
echo "all checks passed"
exit 0
