#!/bin/bash
# tests/fuzz/fuzz.sh - builds the libFuzzer targets of tests/fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and runs each for a bounded time, starting from its
# seed corpus tests/fuzz/corpus/<target>/ (SOURCES there says where the seeds come from).
# Every target checks properties, not only crashes (see the comment at the top of each
# <target>_fuzz.c and docs/security.md). `make fuzz` and .ci/run call this.
#
# Usage: tests/fuzz/fuzz.sh [-t SECONDS] [-o DIR] [TARGET...]
#   -t SECONDS  fuzzing time per target (default $FUZZ_SECONDS, else 60)
#   -o DIR      where the binaries, the growing corpora (DIR/corpus/<target>) and any
#               reproducers (DIR/crash-*) go (default ./build-fuzz)
#   TARGET      some of: pcap erf decode conf anon_policy strsearch bpf_jit dimapi mapid_msg
#               (default all)
# Exits 0 when every target ran its time without a crash or a broken property, 1 otherwise
# (the reproducer is printed; replay it with DIR/<target>_fuzz FILE), 2 on a usage or build
# error. A new crash input belongs in tests/fuzz/corpus/<target>/ once fixed, so that the
# ctest replay (tests/fuzz/fuzz.cmake) keeps checking it.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=build-fuzz
while getopts "t:o:" o; do
    case $o in
    t) SECONDS_EACH=$OPTARG ;;
    o) OUT=$OPTARG ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
ALL="pcap erf decode conf anon_policy strsearch bpf_jit dimapi mapid_msg"
TARGETS=${*:-$ALL}
CC=${FUZZ_CC:-clang}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)

# name -> sources (relative to the tree) and libraries
sources() {
    case $1 in
    pcap) echo "drivers/pcap_file.c drivers/trace_input.c" ;;
    erf) echo "drivers/erf_file.c drivers/trace_input.c" ;;
    decode) echo "common/decode.c" ;;
    conf) echo "common/conf.c" ;;
    anon_policy) (cd "$SRC" && echo flib/anonflib/*.c common/cryptopan.c) ;;
    strsearch) echo "flib/stdflib/str_search.c flib/stdflib/shared.c" ;;
    bpf_jit) echo "flib/stdflib/bpf_jit.c" ;;
    dimapi) echo "daemon/mapicommd/proto.c common/wire.c" ;;
    mapid_msg) echo "daemon/mapid/request.c common/wire.c" ;;
    *) return 1 ;;
    esac
}
libs() {
    case $1 in
    pcap) echo "-lpcap -lz" ;;
    erf) echo "-lz" ;;
    conf) echo "-ldl" ;;
    anon_policy) echo "-lcrypto -lpcre2-8 -lm -lpthread" ;;
    strsearch) echo "-lpthread" ;;
    bpf_jit) echo "-lpcap" ;;
    *) echo "" ;;
    esac
}
maxlen() {
    case $1 in
    pcap | erf) echo 16384 ;;
    decode | conf | dimapi | mapid_msg) echo 8192 ;;
    *) echo 1024 ;;
    esac
}

if ! command -v "$CC" >/dev/null; then
    echo "fuzz: $CC not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$OUT/probe.c"
if ! "$CC" -fsanitize=fuzzer,address,undefined "$OUT/probe.c" -o "$OUT/probe" 2>/dev/null; then
    echo "fuzz: $CC lacks libFuzzer (-fsanitize=fuzzer; Debian: libclang-rt-14-dev)" >&2
    exit 2
fi

build() {
    local t=$1 src
    src=$(sources "$t") || { echo "fuzz: unknown target $t (targets: $ALL)" >&2; return 2; }
    local abs=""
    for f in $src; do abs="$abs $SRC/$f"; done
    # shellcheck disable=SC2046,SC2086
    "$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror -I"$SRC" -I"$SRC/include" \
        -DMAPI_DEFAULT_CONF=\"/etc/mapi/mapi.conf\" -DMAPI_DEFAULT_LIBPATH=\"/usr/lib/mapi\" \
        -DMAPI_VERSION=\"fuzz\" "$SRC/tests/fuzz/${t}_fuzz.c" $abs $(libs "$t") \
        -o "$OUT/${t}_fuzz"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
summary=""
for t in $TARGETS; do
    if ! build "$t"; then
        echo "fuzz: $t does not build" >&2
        exit 2
    fi
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
    if [ -d "$SRC/tests/fuzz/corpus/$t" ]; then
        find "$SRC/tests/fuzz/corpus/$t" -maxdepth 1 -type f ! -name SOURCES \
            -exec cp -f {} "$OUT/corpus/$t/" \;
    fi
    start=$(date +%s)
    log="$OUT/$t.log"
    (cd "$OUT" && "./${t}_fuzz" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(maxlen "$t")" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" \
        "corpus/$t" >"$log" 2>&1)
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    if [ $rc -ne 0 ]; then
        failed=1
        grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ +in " "$log" | head -n 30
        for f in "$OUT/artifacts/$t"/*; do
            [ -e "$f" ] && echo "reproducer: $f   (replay: $OUT/${t}_fuzz $f)"
        done
        summary="$summary$(printf '%-12s FAIL  %4ss  %s inputs' "$t" "$took" "${runs:-?}")\n"
    else
        summary="$summary$(printf '%-12s ok    %4ss  %s inputs' "$t" "$took" "${runs:-?}")\n"
    fi
done
printf "%b" "$summary"
exit $failed
