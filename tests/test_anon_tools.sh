#!/usr/bin/env bash
# tests/test_anon_tools.sh - the anonymisation command (tools/mapi_anonymize) and the tutorial's
# anonymisation example (examples/anonymize), run against a private mapid with anonflib:
#   1. a policy file (comments, blank lines, blanks around commas) through mapi_anonymize gives
#      the same file, byte for byte, as the same rules applied by a client (tests/mapi_anontest);
#      relative paths work; it reports the number of packets (tcpdump's count);
#   2. -f: an existing OUT is refused without -f (exit 1, file untouched) and replaced with it;
#   3. -n writes pcapng (capinfos) with the same packets (tcpdump -xx);
#   4. bad policy lines: exit 1, the message names POLICY:LINE, the rule and the MAPI error
#      (7001..7004), and no OUT is left behind; usage errors exit 2;
#   5. -k KEYFILE: PREFIX_PRESERVING rules without a key get the file's key: the addresses
#      equal those of `traceanon -s -d -c KEY` (a text key, one with a comma) and
#      `traceanon -s -d -f FILE` (a raw 32-byte key file); without -k and without anon_key_file
#      the rule is refused with 7004; with anon_key_file in mapi.conf the key-less rule uses it;
#   6. examples/anonymize on the bundled capture prints one record per TCP packet (tcpdump's
#      count), the MAC addresses tshark shows and the IP addresses mapped to 0.0.0.N in order of
#      first appearance (python over tshark's fields).
#
# Usage: test_anon_tools.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

TOOL=$BUILD/tools/mapi_anonymize
EXAMPLE=$BUILD/examples/anonymize
ANON=$TBIN/mapi_anontest
WEIBO=$DATA/weibo.pcap
for b in "$TOOL" "$EXAMPLE" "$ANON" "$BUILD/flib/anonflib.so"; do
    [ -e "$b" ] || die "missing $b"
done
if ! command -v tshark >/dev/null || ! command -v traceanon >/dev/null; then
    echo "tshark or traceanon (libtrace-tools) is not installed"
    exit 77
fi

# mapid loads anonflib; $ANON_KEY_FILE, when set, becomes anon_key_file (write_conf of
# common.sh).
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=stdflib.so:anonflib.so
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
ANON_KEY_FILE=

dump()
{
    tcpdump -r "$1" -tt -n -xx 2>/dev/null
    tcpdump -r "$1" -tt -n -e 2>/dev/null
}

start_mapid tools
NPKT=$(tcpdump_count "$WEIBO" "")

# 1. Policy file = client.
cat >"$TMPD/policy.txt" <<'EOF'
# anonymise weibo.pcap
IP, SRC_IP, MAP

   ip,dst_ip,map
	# an indented comment
TCP , PAYLOAD , STRIP , 4
TCP,PAYLOAD,PATTERN_FILL,STR,a#b
IP,TTL,ZERO
IP,CHECKSUM,CHECKSUM_ADJUST
EOF
RULES=("IP,SRC_IP,MAP" "IP,DST_IP,MAP" "TCP,PAYLOAD,STRIP,4" "TCP,PAYLOAD,PATTERN_FILL,STR,a#b"
    "IP,TTL,ZERO" "IP,CHECKSUM,CHECKSUM_ADJUST")
res=$("$ANON" "$WEIBO" "$TMPD/client.pcap" "${RULES[@]}" 2>&1) || true
[ "$res" = "ok $NPKT" ] || fail "client: '$res'"
out=$(cd "$TMPD" && "$TOOL" policy.txt "$WEIBO" tool.pcap 2>&1) || fail "mapi_anonymize: $out"
if [ "$out" = "$NPKT packets written to $TMPD/tool.pcap" ] &&
    cmp -s "$TMPD/client.pcap" "$TMPD/tool.pcap"; then
    pass "policy file = client rules, byte for byte ($out)"
else
    fail "policy file: '$out', or the file differs from the client's"
fi
cp "$TMPD/tool.pcap" "$TMPD/first.pcap"

# 2. -f.
if out=$("$TOOL" "$TMPD/policy.txt" "$WEIBO" "$TMPD/tool.pcap" 2>&1); then
    fail "existing OUT without -f: exit 0 ($out)"
elif echo "$out" | grep -q "exists (use -f" && cmp -s "$TMPD/tool.pcap" "$TMPD/first.pcap"; then
    pass "existing OUT without -f: refused, untouched"
else
    fail "existing OUT without -f: '$out'"
fi
head -c 300000 /dev/urandom >"$TMPD/tool.pcap"
if out=$("$TOOL" -f "$TMPD/policy.txt" "$WEIBO" "$TMPD/tool.pcap" 2>&1) &&
    cmp -s "$TMPD/tool.pcap" "$TMPD/first.pcap"; then
    pass "-f replaced a longer file"
else
    fail "-f: '$out', or the file differs"
fi

# 3. -n: pcapng.
if out=$("$TOOL" -n "$TMPD/policy.txt" "$WEIBO" "$TMPD/tool.pcapng" 2>&1); then
    fmt=$(capinfos -t "$TMPD/tool.pcapng" 2>/dev/null | awk -F': *' '/File type/ {print $2}')
    dump "$TMPD/first.pcap" >"$TMPD/want.txt"
    dump "$TMPD/tool.pcapng" >"$TMPD/got.txt"
    case $fmt in
    *pcapng*)
        if cmp -s "$TMPD/want.txt" "$TMPD/got.txt"; then
            pass "-n: $fmt, the same packets"
        else
            fail "-n: the packets differ from the pcap output"
        fi
        ;;
    *) fail "-n: capinfos says '$fmt'" ;;
    esac
else
    fail "-n: $out"
fi

# 4. Bad lines.
bad_policy()
{
    local line=$1 code=$2 out
    printf '# comment\nIP,TTL,ZERO\n\n%s\nIP,CHECKSUM,CHECKSUM_ADJUST\n' "$line" >"$TMPD/bad.txt"
    rm -f "$TMPD/bad.pcap"
    if out=$("$TOOL" "$TMPD/bad.txt" "$WEIBO" "$TMPD/bad.pcap" 2>&1); then
        fail "bad line '$line': exit 0"
    elif echo "$out" | grep -qF "$TMPD/bad.txt:4: $line: MAPI error $code:" &&
        [ ! -e "$TMPD/bad.pcap" ]; then
        pass "bad line '$line': ${out#*bad.txt:}"
    else
        fail "bad line '$line': '$out' (or OUT was created)"
    fi
}
bad_policy "IPX,SRC_IP,ZERO" 7001
bad_policy "TCP,NO_SUCH_FIELD,ZERO" 7002
bad_policy "IP,TTL,SCRAMBLE" 7003
bad_policy "TCP,PAYLOAD,STRIP" 7004
bad_policy "IP,SRC_IP,PREFIX_PRESERVING" 7004
rc=0
"$TOOL" "$TMPD/policy.txt" "$WEIBO" >/dev/null 2>&1 || rc=$?
if [ "$rc" -eq 2 ]; then pass "usage error: exit 2"; else fail "usage error: exit $rc"; fi
rc=0
out=$("$TOOL" "$TMPD/policy.txt" "$TMPD/missing.pcap" "$TMPD/m.pcap" 2>&1) || rc=$?
if [ "$rc" -eq 1 ] && [ ! -e "$TMPD/m.pcap" ]; then
    pass "missing IN: exit 1 ($out)"
else
    fail "missing IN: exit $rc, '$out'"
fi

# 5. Keys.
printf 'IP,SRC_IP,PREFIX_PRESERVING\nIP,DST_IP,PREFIX_PRESERVING\n' >"$TMPD/pp.txt"
addrs()
{
    tshark -n -r "$1" -T fields -e ip.src -e ip.dst 2>/dev/null
}
# key_check NAME KEYFILE TRACEANON_KEY_OPTION...
key_check()
{
    local name=$1 kf=$2 out
    shift 2
    rm -f "$TMPD/ta.pcap" "$TMPD/k.pcap"
    traceanon -s -d "$@" "pcapfile:$WEIBO" "pcapfile:$TMPD/ta.pcap" >/dev/null 2>&1 ||
        fail "$name: traceanon failed"
    if ! out=$("$TOOL" -k "$kf" "$TMPD/pp.txt" "$WEIBO" "$TMPD/k.pcap" 2>&1); then
        fail "$name: $out"
        return 0
    fi
    addrs "$TMPD/ta.pcap" >"$TMPD/ta.txt"
    addrs "$TMPD/k.pcap" >"$TMPD/k.txt"
    if [ -s "$TMPD/ta.txt" ] && cmp -s "$TMPD/ta.txt" "$TMPD/k.txt" &&
        ! cmp -s "$TMPD/k.txt" <(addrs "$WEIBO"); then
        pass "$name: the addresses of traceanon $*"
    else
        fail "$name: the addresses differ from traceanon $*"
        diff "$TMPD/ta.txt" "$TMPD/k.txt" | head -n 4
    fi
}
printf 'secret key\n' >"$TMPD/text.key"
key_check "-k text key" "$TMPD/text.key" -c "secret key"
printf 'a,b' >"$TMPD/comma.key"
key_check "-k key with a comma" "$TMPD/comma.key" -c "a,b"
"$PY" -c '
import os, sys
k = bytes(range(33, 65))
open(sys.argv[1], "wb").write(bytes([0xc3, 0x01]) + k[2:30] + bytes([0x80, 0x7f]))' "$TMPD/raw.key"
key_check "-k raw 32-byte key file" "$TMPD/raw.key" -f "$TMPD/raw.key"
# An explicit key in the rule wins over -k.
printf 'IP,SRC_IP,PREFIX_PRESERVING,secret key\nIP,DST_IP,PREFIX_PRESERVING,secret key\n' \
    >"$TMPD/ppk.txt"
rm -f "$TMPD/ta.pcap"
traceanon -s -d -c "secret key" "pcapfile:$WEIBO" "pcapfile:$TMPD/ta.pcap" >/dev/null 2>&1
if "$TOOL" -k "$TMPD/comma.key" "$TMPD/ppk.txt" "$WEIBO" "$TMPD/k2.pcap" >/dev/null 2>&1 &&
    cmp -s <(addrs "$TMPD/ta.pcap") <(addrs "$TMPD/k2.pcap"); then
    pass "a key named in the rule is kept despite -k"
else
    fail "a key named in the rule was not kept with -k"
fi
printf '\0abc' >"$TMPD/nul.key"
if out=$("$TOOL" -k "$TMPD/nul.key" "$TMPD/pp.txt" "$WEIBO" "$TMPD/k3.pcap" 2>&1); then
    fail "a key with a NUL byte inside was accepted"
else
    pass "a key with a NUL byte inside is refused: ${out#*: }"
fi
# mapid's anon_key_file.
stop_mapid tools
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
ANON_KEY_FILE=$TMPD/raw.key
start_mapid tools2
rm -f "$TMPD/ta.pcap"
traceanon -s -d -f "$TMPD/raw.key" "pcapfile:$WEIBO" "pcapfile:$TMPD/ta.pcap" >/dev/null 2>&1
if out=$("$TOOL" "$TMPD/pp.txt" "$WEIBO" "$TMPD/k4.pcap" 2>&1) &&
    cmp -s <(addrs "$TMPD/ta.pcap") <(addrs "$TMPD/k4.pcap"); then
    pass "without -k: mapid's anon_key_file, the addresses of traceanon -f"
else
    fail "without -k, anon_key_file: '$out', or the addresses differ from traceanon -f"
fi

# 6. The tutorial's example.
if out=$("$EXAMPLE" "$WEIBO" 2>&1); then
    ntcp=$(tcpdump_count "$WEIBO" tcp)
    tcpdump -r "$WEIBO" -w "$TMPD/tcp.pcap" tcp 2>/dev/null
    tshark -n -r "$TMPD/tcp.pcap" -T fields -e eth.src -e eth.dst -e ip.src -e ip.dst \
        2>/dev/null | "$PY" -c '
import sys
ids = {}
def m(a):
    return "0.0.0.%d" % ids.setdefault(a, len(ids) + 1) if len(ids) < 255 else "?"
for line in sys.stdin:
    es, ed, s, d = line.rstrip("\n").split("\t")
    print("Anonymized tcp packet captured!")
    print("%s -> %s" % (es.upper(), ed.upper()))
    s2 = m(s)
    print("%s -> %s" % (s2, m(d)))
' >"$TMPD/ex.want"
    echo "$out" | grep -v '^$' | sed '$d' >"$TMPD/ex.got"
    n=$(grep -c 'Anonymized tcp packet captured!' "$TMPD/ex.got" || true)
    if [ "$n" -eq "$ntcp" ] && [ "$n" -gt 0 ] && cmp -s "$TMPD/ex.want" "$TMPD/ex.got" &&
        [ "$(echo "$out" | tail -n 1)" = "$ntcp anonymized packets" ]; then
        pass "examples/anonymize: $n TCP packets, MACs kept, addresses 0.0.0.N in order"
    else
        fail "examples/anonymize: $n records (tcpdump: $ntcp); first differences:"
        diff "$TMPD/ex.want" "$TMPD/ex.got" | head -n 8
    fi
else
    fail "examples/anonymize failed: $(echo "$out" | tail -n 3)"
fi

mapid_alive tools2 || fail "mapid died"
stop_mapid tools2
finish
