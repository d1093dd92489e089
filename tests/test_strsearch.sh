#!/usr/bin/env bash
# tests/test_strsearch.sh - STR_SEARCH (offset 0, depth 0: the whole frame) + PKT_COUNTER +
# BYTE_COUNTER, compared with tshark's `frame contains BYTES` (which also searches the whole
# captured frame, link-layer header included): frames and bytes of its io,stat statistics.
# Patterns use STR_SEARCH's syntax (|hex bytes| between pipes); the test turns each into the
# byte string that tshark wants.
#
# Usage: test_strsearch.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

# shellcheck disable=SC2016 # ${jndi: is a literal pattern
PATTERNS=(
    'HTTP/1.1'
    'Host:'
    'host:'
    'GET '
    '|0d 0a 0d 0a|'
    '|0d 0a|Host: '
    'User-Agent: Mozilla'
    '${jndi:'
    'weibo'
    '|00 00 00 00 00 00|'
    'no-such-string-in-any-capture'
)
FILES=(weibo.pcap log4j-webapp-exploit.pcap)

# tshark_oracle FILE OUT: pattern <TAB> frames <TAB> bytes for every pattern, from one pass of
# tshark's io,stat over the whole capture with one "frame contains" column per pattern.
tshark_oracle()
{
    local file=$1 out=$2 p hex stat="io,stat,0"
    for p in "${PATTERNS[@]}"; do
        hex=$("$PY" -c '
import re, sys
out = bytearray()
for i, part in enumerate(re.split(r"\|", sys.argv[1])):
    out += bytes.fromhex(part) if i % 2 else part.encode()
print(":".join("%02x" % b for b in out))
' "$p")
        stat="$stat,frame contains $hex"
    done
    tshark -n -q -r "$file" -z "$stat" 2>/dev/null | grep '<>' >"$out.row" || return 1
    [ "$(wc -l <"$out.row")" -eq 1 ] || return 1
    # | 0.000 <> 6.089 |  frames | bytes | frames | bytes | ...
    tr -d ' ' <"$out.row" | tr '|' '\n' | sed -n '3,$p' | grep . | paste - - >"$out.nums"
    printf '%s\n' "${PATTERNS[@]}" | paste - "$out.nums" >"$out"
    [ "$(wc -l <"$out.nums")" -eq "${#PATTERNS[@]}" ]
}

pids=""
for f in "${FILES[@]}"; do
    tshark_oracle "$DATA/$f" "$TMPD/$f.want" &
    pids="$pids $!"
done

start_mapid strsearch
for f in "${FILES[@]}"; do
    "$TBIN/mapi_count" -s "$DATA/$f" pcap "${PATTERNS[@]}" >"$TMPD/$f.got" ||
        fail "$f: mapi_count -s failed"
done
for p in $pids; do
    wait "$p" || die "tshark failed"
done

total=0
for f in "${FILES[@]}"; do
    bad=$(paste "$TMPD/$f.want" "$TMPD/$f.got" | awk -F '\t' '
        $1 != $4 || $2 != $5 || $3 != $6 {
            printf "  \"%s\": tshark %s frames %s bytes, mapi %s %s\n", $1, $2, $3, $5, $6 }')
    if [ "$(wc -l <"$TMPD/$f.got")" -ne "${#PATTERNS[@]}" ]; then
        fail "$f: mapi_count printed $(wc -l <"$TMPD/$f.got") lines for ${#PATTERNS[@]} patterns"
    elif [ -n "$bad" ]; then
        fail "$f:"
        echo "$bad"
    else
        pass "$f: ${#PATTERNS[@]} patterns agree with tshark"
    fi
    total=$((total + $(awk -F '\t' '$2 > 0' "$TMPD/$f.want" | wc -l)))
done
# Guard against a degenerate oracle (for example tshark failing on every filter).
[ "$total" -ge 10 ] || fail "only $total pattern/capture pairs match anything"

# A bad pattern is refused: unterminated |hex| (3503 at connect, or at apply).
if "$TBIN/mapi_count" -s "$DATA/weibo.pcap" pcap '|0d 0a' >"$TMPD/bad.got" 2>&1; then
    if grep -q "	ERR	350[35]" "$TMPD/bad.got"; then
        pass "unterminated |hex| pattern refused: $(cut -f3 "$TMPD/bad.got")"
    else
        fail "unterminated |hex| pattern: $(cat "$TMPD/bad.got")"
    fi
else
    fail "mapi_count failed on a bad pattern: $(cat "$TMPD/bad.got")"
fi

mapid_alive strsearch || fail "mapid died"
stop_mapid strsearch
finish
