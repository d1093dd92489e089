#!/bin/bash
# tests/test_mapid_msg_fuzz.sh - fuzzes mapid's request decoder (header check and
# mapid_decode_request of every request type, tests/fuzz/mapid_msg_fuzz.c) with libFuzzer for
# a bounded time (20 s, MAPID_MSG_FUZZ_TIME), starting from the committed seed corpus
# tests/fuzz/corpus/mapid_msg (written by tests/fuzz/gen_mapid_msg_corpus.py: valid messages
# of every type, truncated and malformed ones). Fails on any crash, sanitizer report or broken
# property (round trip, limits, strictness: see the target's comment). Skipped (77) when
# clang has no libFuzzer.
#
# Usage: test_mapid_msg_fuzz.sh BUILD_DIR SOURCE_DIR   (the build directory is not used: the
# target is compiled here with clang -fsanitize=fuzzer,address,undefined).
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
SRC=$(cd "$2" && pwd)
FUZZ_TIME=${MAPID_MSG_FUZZ_TIME:-20}
CORPUS=$SRC/tests/fuzz/corpus/mapid_msg

if ! command -v clang >/dev/null; then
    echo "SKIP: no clang"
    exit 77
fi
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapifuzz.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT

printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$TMPD/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$TMPD/probe.c" -o "$TMPD/probe" 2>/dev/null; then
    echo "SKIP: clang lacks libFuzzer (-fsanitize=fuzzer)"
    exit 77
fi

if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror -I"$SRC" -I"$SRC/include" \
    "$SRC/tests/fuzz/mapid_msg_fuzz.c" "$SRC/daemon/mapid/request.c" "$SRC/common/wire.c" \
    -o "$TMPD/mapid_msg_fuzz" 2>"$TMPD/build.err"; then
    cat "$TMPD/build.err"
    echo "FAIL: the fuzz target does not build"
    exit 1
fi
echo "ok:   fuzz target built"
nseeds=$(find "$CORPUS" -type f | wc -l)
if [ "$nseeds" -lt 30 ]; then
    echo "FAIL: the seed corpus $CORPUS has $nseeds files (regenerate it with gen_mapid_msg_corpus.py)"
    exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if ! (cd "$TMPD" && ./mapid_msg_fuzz -runs=0 "$CORPUS" >seeds.log 2>&1); then
    tail -n 40 "$TMPD/seeds.log"
    echo "FAIL: a seed breaks the decoder or one of its properties"
    exit 1
fi
echo "ok:   $nseeds seeds decode with every property holding"
mkdir -p "$TMPD/work"
cp "$CORPUS"/* "$TMPD/work/"
if ! (cd "$TMPD" && ./mapid_msg_fuzz -max_total_time="$FUZZ_TIME" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 work >fuzz.log 2>&1); then
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ " "$TMPD/fuzz.log" | tail -n 40
    for f in "$TMPD"/crash-* "$TMPD"/leak-* "$TMPD"/timeout-* "$TMPD"/oom-*; do
        [ -e "$f" ] && echo "reproducer: $(basename "$f") ($(od -An -tx1 "$f" | head -c 300))"
    done
    echo "FAIL: the fuzzer found a crash or a broken property"
    exit 1
fi
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TMPD/fuzz.log" | grep -o '[0-9]*$')
echo "ok:   ${FUZZ_TIME} s of fuzzing, ${runs:-?} inputs, no crash, properties hold"
echo "all checks passed"
exit 0
