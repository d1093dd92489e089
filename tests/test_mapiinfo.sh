#!/usr/bin/env bash
# tests/test_mapiinfo.sh - the mapiinfo tool (tools/mapiinfo.c) against a private mapid.
#
# Oracles, all independent of mapiinfo and of mapid:
#   functions (-f)   the table of flib/stdflib/stdflib.c: python pulls every .name and its
#                    .argdescr out of the source text; every one must be listed, with that
#                    argdescr, and nothing else for stdflib
#   --json           python's json module must parse it (a trace file name with a quote, a
#                    backslash, a tab, a control character and UTF-8 forces the escaping) and
#                    it must say the same as the text tables
#   flows (-o, -u)   a client (tests/compat/flow_holder.c, written against the original API)
#                    runs a trace through BPF_FILTER "tcp" + PKT_COUNTER + BYTE_COUNTER and
#                    holds the flow open; the flow must be listed with its 3 functions, and
#                    the packets BPF_FILTER saw = tshark's packet count of the trace, the
#                    packets it passed (= PKT_COUNTER's seen and passed) = tcpdump's count of
#                    "tcp" (the same libpcap filter language)
#   not running      with no mapid at the configured socket: exit status 1, error 5124 on
#                    stderr, nothing on stdout
#
# Usage: test_mapiinfo.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

if ! command -v tshark >/dev/null 2>&1 || ! command -v tcpdump >/dev/null 2>&1; then
    echo "SKIP: tshark or tcpdump not installed"
    exit 77
fi
MAPIINFO=$BUILD/tools/mapiinfo
[ -x "$MAPIINFO" ] || die "missing $MAPIINFO: build first"
LIBDIR=$(dirname "$(find "$BUILD" -maxdepth 2 -name 'libmapi.so' -print -quit)")
[ -n "$LIBDIR" ] || die "libmapi.so not found under $BUILD"
# A sanitizer build's libmapi needs the sanitizer runtime in the program too.
SANITIZE=()
if grep -q '^MAPI_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    SANITIZE=("-fsanitize=address,undefined")
fi
if ! cc -std=gnu99 -Wall -Wextra -Werror "${SANITIZE[@]}" -I"$SRC/include" \
    "$SRC/tests/compat/flow_holder.c" -o "$TMPD/flow_holder" -L"$LIBDIR" -lmapi \
    -Wl,-rpath,"$LIBDIR" 2>"$TMPD/cc.err"; then
    cat "$TMPD/cc.err"
    die "tests/compat/flow_holder.c does not compile"
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

# ---- mapid not running ---------------------------------------------------------------------
write_conf dead
rc=0
MAPI_CONF=$TMPD/dead.conf "$MAPIINFO" -a >"$TMPD/dead.out" 2>"$TMPD/dead.err" || rc=$?
check "no mapid: exit status" "$rc" 1
if grep -q 'MAPI error 5124' "$TMPD/dead.err" && [ ! -s "$TMPD/dead.out" ]; then
    pass "no mapid: error 5124 on stderr, nothing on stdout"
else
    fail "no mapid: stderr '$(cat "$TMPD/dead.err")', stdout '$(head -c 200 "$TMPD/dead.out")'"
fi
rc=0
MAPI_CONF=$TMPD/dead.conf "$MAPIINFO" --json >"$TMPD/dead.out" 2>/dev/null || rc=$?
check "no mapid: --json exit status" "$rc" 1
rc=0
"$MAPIINFO" --bogus >/dev/null 2>&1 || rc=$?
check "unknown option: exit status" "$rc" 2
if "$MAPIINFO" -h | grep -q -- '--json'; then
    pass "-h shows the options"
else
    fail "-h: no usage text"
fi

start_mapid mi

# ---- functions ------------------------------------------------------------------------------
# The oracle: NAME<TAB>ARGDESCR for every entry of stdflib's table, from the source text.
"$PY" - "$SRC/flib/stdflib/stdflib.c" >"$TMPD/want.fn" <<'PYEOF'
import re, sys
src = open(sys.argv[1]).read()
table = src[src.index("stdflib_functions[]"):]
table = table[:table.index("{.name = NULL}")]
for block in re.split(r"\n    \{", table)[1:]:
    name = re.search(r'\.name\s*=\s*"([^"]*)"', block)
    if not name:
        continue
    arg = re.search(r'\.argdescr\s*=\s*"([^"]*)"', block)
    print("%s\t%s" % (name.group(1), arg.group(1) if arg else ""))
PYEOF
nwant=$(wc -l <"$TMPD/want.fn")
[ "$nwant" -ge 11 ] || die "could not read the function table of stdflib.c ($nwant entries)"

"$MAPIINFO" -f >"$TMPD/f.txt" || die "mapiinfo -f failed"
# Function lines: indented NAME (ARGDESCR) ...; library lines: ID NAME COUNT.
awk '/^ +[A-Z0-9_]+ +\(/ { a = $0; sub(/^ +[^ ]+ +\(/, "", a); sub(/\).*/, "", a); print $1 "\t" a }' \
    "$TMPD/f.txt" >"$TMPD/got.fn"
if cmp -s "$TMPD/want.fn" "$TMPD/got.fn"; then
    pass "-f lists the $nwant functions of stdflib.c with their argdescr, in order"
else
    fail "-f differs from stdflib.c's table (< source, > mapiinfo):"
    diff "$TMPD/want.fn" "$TMPD/got.fn" || true
fi
check "-f: stdflib's function count" \
    "$(awk '$2 == "stdflib" && $1 ~ /^[0-9]+$/ { print $3 }' "$TMPD/f.txt")" "$nwant"
if grep -q '^Arguments: ' "$TMPD/f.txt"; then
    pass "-f prints the argument legend"
else
    fail "-f: no legend of the argument letters"
fi

"$MAPIINFO" -l >"$TMPD/l.txt" || die "mapiinfo -l failed"
if grep -q '(' "$TMPD/l.txt" || ! grep -q '^0 \+stdflib \+[0-9]' "$TMPD/l.txt"; then
    fail "-l should list the libraries only: $(cat "$TMPD/l.txt")"
else
    pass "-l lists stdflib without its functions"
fi

# ---- a flow held by another client ----------------------------------------------------------
# A copy of the trace whose name needs JSON escaping (the device name contains the path).
TRACE=$DATA/iphone.pcap
WEIRD=$("$PY" -c 'import sys; print(sys.argv[1] + "/we\"ird\\na\tme\x01-\u00e9.pcap")' "$TMPD")
cp "$TRACE" "$WEIRD"
total=$(tshark -r "$TRACE" -T fields -e frame.number 2>/dev/null | wc -l)
tcp=$(tcpdump_count "$TRACE" tcp)
if [ "$tcp" = ERR ] || [ "$tcp" -le 0 ] || [ "$tcp" -ge "$total" ]; then
    die "oracle counts of $TRACE unusable: total $total, tcp $tcp"
fi

"$TMPD/flow_holder" "$WEIRD" tcp "$TMPD/stop" >"$TMPD/holder.out" 2>"$TMPD/holder.err" &
holder=$!
track_pid "$holder"
wait_ready "$TMPD/holder.out" "$holder" ||
    die "flow_holder did not get ready: $(cat "$TMPD/holder.err")"
device=$(sed -n 's/^device //p' "$TMPD/holder.out")
check "flow_holder's own PKT_COUNTER" "$(sed -n 's/^pkts //p' "$TMPD/holder.out")" "$tcp"

"$MAPIINFO" -o >"$TMPD/o.txt" || die "mapiinfo -o failed"
line=$(grep -F -- "$device" "$TMPD/o.txt" || true)
if [ -n "$line" ]; then
    # ID UID STATUS DEVID DEVICE... START END FUNCTIONS: the last field is the count.
    check "-o: status of the held flow" "$(echo "$line" | awk '{ print $3 }')" FINISHED
    check "-o: functions of the held flow" "$(echo "$line" | awk '{ print $NF }')" 3
    check "-o: owner" "$(echo "$line" | awk '{ print $2 }')" "$(id -u)"
else
    fail "-o does not list the flow on '$device': $(cat "$TMPD/o.txt")"
fi

"$MAPIINFO" -a >"$TMPD/a.txt" || die "mapiinfo -a failed"
"$MAPIINFO" --json >"$TMPD/a.json" || die "mapiinfo --json failed"
"$MAPIINFO" -o -u --json >"$TMPD/u.json" || die "mapiinfo -u --json failed"
"$MAPIINFO" -d --json >"$TMPD/d.json" || die "mapiinfo -d --json failed"

# Everything about the JSON documents, checked in python. Prints ok:/FAIL:/GAP: lines.
"$PY" - "$TMPD" "$device" "$total" "$tcp" "$(id -u)" <<'PYEOF' >"$TMPD/json.check"
import json, re, sys
tmpd, device, total, tcp, uid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def ok(m): print("ok:   " + m)
def bad(m): print("FAIL: " + m)
docs = {}
for n in ("a", "u", "d"):
    try:
        docs[n] = json.load(open("%s/%s.json" % (tmpd, n), encoding="utf-8"))
        ok("--json (%s) parses" % n)
    except Exception as e:
        bad("--json (%s) does not parse: %s" % (n, e))
        sys.exit(0)
a, u, d = docs["a"], docs["u"], docs["d"]
if sorted(a) == ["devices", "flows", "libraries"] and sorted(d) == ["devices"] and sorted(u) == ["flows"]:
    ok("members: -a has devices/libraries/flows, -d devices only, -o -u flows only")
else:
    bad("members: -a %s, -d %s, -u %s" % (sorted(a), sorted(d), sorted(u)))

# Functions: the same as the source table and as the text of -f.
want = [l.rstrip("\n").split("\t") for l in open(tmpd + "/want.fn")]
libs = [l for l in a["libraries"] if l["name"] == "stdflib"]
if len(libs) != 1:
    bad("stdflib not listed once in --json: %r" % a["libraries"])
    sys.exit(0)
lib = libs[0]
got = [[f["name"], f["argdescr"]] for f in lib["functions"]]
if got == want:
    ok("--json functions = stdflib.c's table (%d)" % len(want))
else:
    bad("--json functions %r != source %r" % (got, want))
text = [l.rstrip("\n").split("\t") for l in open(tmpd + "/got.fn")]
if got == text:
    ok("--json functions = the text of -f")
else:
    bad("--json functions differ from -f's text")
if lib["nfunctions"] == len(want) and all(f["devtype"] == "1" and f["descr"] for f in lib["functions"]):
    ok("nfunctions %d, every function has devtype \"1\" and a description" % len(want))
else:
    bad("nfunctions %r / devtype / descr: %r" % (lib["nfunctions"], lib["functions"][:2]))

# Devices: the held flow's trace device is there, name escaped and decoded exactly.
devs = [x for x in d["devices"] if x["device"] == device]
if len(devs) == 1 and devs[0]["description"]:
    ok("-d --json lists the trace device %r" % device)
else:
    bad("-d --json: no device %r in %r" % (device, [x["device"] for x in d["devices"]]))
txt = open(tmpd + "/a.txt", encoding="utf-8", errors="replace").read()
if len(a["devices"]) == len(d["devices"]) and all(("\n%-4d " % x["id"]) in txt for x in a["devices"]):
    ok("devices of --json and of the text agree (%d)" % len(a["devices"]))
else:
    bad("devices of --json and of the text differ")

# Flows.
for name, doc in (("-a", a), ("-o -u", u)):
    fl = [f for f in doc["flows"] if f["device"] == device]
    if len(fl) != 1:
        bad("%s --json: flow on %r not listed once" % (name, device))
        continue
    f = fl[0]
    if f["status"] == "FINISHED" and f["num_functions"] == 3 and f["uid"] == uid and f["start"] > 0 and f["end"] == 0:
        ok("%s --json: the held flow: FINISHED, 3 functions, uid %d, started, not ended" % (name, uid))
    else:
        bad("%s --json: held flow %r" % (name, f))
    if "functions_error" in f and f["functions_error"]["code"] == 6145:
        # KNOWN GAP: lib/info.c's mapi_get_next_function_info accepts only the caller's own
        # flow descriptors, so another application's flow (the original mapiinfo's -u) is
        # refused with 6145. Once libmapi accepts mapid's flow id there, the list appears
        # and is checked below; this branch then no longer runs.
        print("GAP:  %s --json: functions of another client's flow refused by libmapi (6145): %s"
              % (name, f["functions_error"]["message"]))
        continue
    fns = f.get("functions")
    if fns is None:
        bad("%s --json: no functions member: %r" % (name, f))
        continue
    got = [(x["fid"], x["name"], x["library"], x["pkts"], x["passed_pkts"], x["result_size"]) for x in fns]
    want = [(1, "BPF_FILTER", "stdflib", total, tcp, 0),
            (2, "PKT_COUNTER", "stdflib", tcp, tcp, 8),
            (3, "BYTE_COUNTER", "stdflib", tcp, tcp, 8)]
    if got == want:
        ok("%s --json: functions with pkts seen/passed = tshark %d / tcpdump tcp %d" % (name, total, tcp))
    else:
        bad("%s --json: functions %r, want %r" % (name, got, want))
PYEOF
cat "$TMPD/json.check"
FAILURES=$((FAILURES + $(grep -c '^FAIL:' "$TMPD/json.check" || true)))
grep -q '^ok:   --json (a) parses' "$TMPD/json.check" || FAILURES=$((FAILURES + 1))

# The text of -u: the held flow's block lists the three functions with the same counts.
"$MAPIINFO" -u >"$TMPD/u.txt" || die "mapiinfo -u failed"
# (The device name goes through the environment: awk -v would interpret its backslashes.)
block=$(DEV=$device awk 'index($0, ENVIRON["DEV"]) { on = 1; next } on && /^[0-9]/ { on = 0 } on' \
    "$TMPD/u.txt")
if echo "$block" | grep -q 'functions not available: MAPI error 6145'; then
    echo "GAP:  -u: functions of another client's flow refused by libmapi (6145)"
else
    got=$(echo "$block" | awk '$1 ~ /^[0-9]+$/ { print $2, $5, $6, $7 }' | tr '\n' ';')
    check "-u: functions of the held flow (name pkts passed size)" "$got" \
        "BPF_FILTER $total $tcp 0;PKT_COUNTER $tcp $tcp 8;BYTE_COUNTER $tcp $tcp 8;"
fi

touch "$TMPD/stop"
wait "$holder" || fail "flow_holder exited with an error: $(cat "$TMPD/holder.err")"
# After the close the flow is gone from the listing.
"$MAPIINFO" -o --json >"$TMPD/o2.json" || die "mapiinfo -o --json failed"
if "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(1 if any(f["device"] == sys.argv[2] and f["status"] != "CLOSED" for f in d["flows"]) else 0)' \
    "$TMPD/o2.json" "$device"; then
    pass "the flow is no longer listed as open after its client closed it"
else
    fail "the closed flow is still listed as open"
fi

stop_mapid mi
finish
