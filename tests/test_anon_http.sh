#!/usr/bin/env bash
# tests/test_anon_http.sh - anonflib's HTTP and FTP field rules (ANONYMIZE "HTTP,..." and
# "FTP,..."), checked with tshark's HTTP/FTP dissection and python, not with our parser.
# tests/mapi_anontest applies the rules to an offline flow and writes the result with TO_FILE;
# tshark (TCP reassembly off, so each packet is dissected alone) reads the original and the
# result, and the oracle below compares them packet by packet:
#   1. a rule on one header (REPLACE, STRIP,n, HASHED with an independent hashlib digest,
#      PATTERN_FILL, several rules at once) changes exactly that header's value in every request
#      or response (all header lines, start lines, addresses, ports, seq/ack raw and flags are
#      otherwise identical), on weibo.pcap (many requests and responses) and http_auth.pcap
#      (Authorization, Cookie, Referer, WWW-Authenticate);
#   2. start-line fields: METHOD, URI, RESP_CODE_DESCR, and the REGEXP function on URI
#      (python's re as the oracle);
#   3. FTP: USER's argument, FTP_RESPONSE_ARG (STRIP), FTP_RESPONSE_CODE (PATTERN_FILL), other
#      commands and responses unchanged (ftp_failed.pcap);
#   4. resizing: in every packet, the IP total length, the TCP payload length and the frame and
#      capture lengths change by the same amount (the link-layer part is kept), tshark finds no
#      new malformed packet, and after CHECKSUM_ADJUST `tshark -o ip.check_checksum:TRUE -o
#      tcp.check_checksum:TRUE` finds no bad checksum (while the same rules without
#      CHECKSUM_ADJUST leave bad ones: the check can fail);
#   5. a capture made here (python): two pipelined requests in one segment (both User-Agent
#      values replaced), HTTP on IPv6 to port 8080, HTTP recognised by its request line on port
#      5555, a non-HTTP segment on port 5555 containing "User-Agent:" left alone, and a request
#      cut by the snap length; checked on the raw bytes by python;
#   6. bad rules: 7001 protocol, 7002 field (unknown, HTTP field under TCP, VERSION, IHL,
#      REPLACE on a header field), 7003 function, 7004 parameter counts (STRIP, REPLACE,
#      PATTERN_FILL, HASHED, REGEXP, MAP_DISTRIBUTION), with the bad part in the message.
#
# Usage: test_anon_http.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

[ -e "$BUILD/flib/anonflib.so" ] || die "missing $BUILD/flib/anonflib.so"
command -v tshark >/dev/null || {
    echo "tshark is not installed"
    exit 77
}

# mapid loads anonflib too (write_conf of common.sh).
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=stdflib.so:anonflib.so

ANON=$TBIN/mapi_anontest
WEIBO=$DATA/weibo.pcap
AUTH=$DATA/http_auth.pcap
FTP=$DATA/ftp_failed.pcap
[ -x "$ANON" ] || die "missing $ANON"

cat >"$TMPD/check.py" <<'EOF'
"""Oracle of test_anon_http.sh: compares tshark's dissection of an original and an anonymised
capture. Usage: check.py MODE ORIG NEW [SPEC...]; prints problems and exits 1, or a summary.

MODE hdr: the lengths checks below, and SPEC is NAME=TRANSFORM (HTTP header, case-insensitive) or @FIELD=TRANSFORM for
tshark fields (http.request.method, http.request.uri, http.response.phrase, ftp.request.arg
for command X via @ftp:X, ftp.response.arg, ftp.response.code). TRANSFORM: rep:TEXT,
strip:N, md5, sha256, fill:TEXT, re:PATTERN:REPLACEMENT (group 1 replaced), same.
Lengths: IP/TCP/frame lengths change consistently; no new malformed packets.
MODE checksums: prints the number of bad IP/TCP checksums of NEW.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

FIELDS = ["frame.number", "frame.len", "frame.cap_len", "ip.src", "ip.dst", "ipv6.src",
          "ipv6.dst", "ip.len", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw",
          "tcp.flags", "tcp.len", "http.request.method", "http.request.uri",
          "http.request.version", "http.response.version", "http.response.code",
          "http.response.phrase", "http.request.line", "http.response.line",
          "ftp.request.command", "ftp.request.arg", "ftp.response.code", "ftp.response.arg",
          "_ws.malformed", "_ws.expert.message"]


def dissect(path):
    """tshark's fields of path; the originals are cached in $CHECK_CACHE (same run)."""
    cache = os.environ.get("CHECK_CACHE")
    key = os.path.join(cache, path.replace("/", "_") + ".json") if cache else None
    if key and os.path.exists(key):
        with open(key) as f:
            return json.load(f)
    # Resizing a segment does not renumber the later ones of its connection (as in the
    # original MAPI): sequence analysis would call them retransmissions and skip them.
    cmd = ["tshark", "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE",
           "-o", "tcp.analyze_sequence_numbers:FALSE",
           "-o", "http.desegment_headers:FALSE", "-o", "http.desegment_body:FALSE",
           "-T", "json"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    pkts = []
    for p in json.loads(out):
        lay = p["_source"]["layers"]
        pkts.append({f: lay.get(f, []) for f in FIELDS})
    if key and not os.path.basename(path).startswith("out"):
        with open(key, "w") as f:
            json.dump(pkts, f)
    return pkts


def transform(spec, v):
    kind, _, arg = spec.partition(":")
    if kind == "rep":
        return arg
    if kind == "strip":
        return v[:int(arg)]
    if kind == "md5":
        return hashlib.md5(v.encode("latin-1")).hexdigest()
    if kind == "sha256":
        return hashlib.sha256(v.encode("latin-1")).hexdigest()
    if kind == "fill":
        return (arg * (len(v) // len(arg) + 1))[:len(v)]
    if kind == "re":
        pat, _, rep = arg.partition(":")
        m = re.search(pat, v)
        if not m:
            return v
        return v[:m.start(1)] + rep + v[m.end(1):]
    if kind == "same":
        return v
    raise SystemExit("bad transform " + spec)


def hdr_mode(orig, new, specs):
    headers = {}
    fields = {}
    for s in specs:
        name, _, tr = s.partition("=")
        if name.startswith("@"):
            fields[name[1:]] = tr
        else:
            headers[name.lower()] = tr
    errors = []
    changed = 0
    if len(orig) != len(new):
        return ["packet counts differ: %d vs %d" % (len(orig), len(new))], 0
    for o, n in zip(orig, new):
        num = o["frame.number"][0]
        for f in FIELDS:
            if f in ("frame.len", "frame.cap_len", "ip.len", "tcp.len", "_ws.expert.message",
                     "_ws.malformed"):
                continue
            ov, nv = o[f], n[f]
            if f in ("http.request.line", "http.response.line"):
                want = []
                for line in ov:
                    name, sep, val = line.partition(":")
                    if sep and name.strip().lower() in headers:
                        assert val.endswith("\r\n")
                        val = val[:-2]
                        lead = val[:len(val) - len(val.lstrip(" \t"))]
                        val = val[len(lead):]
                        want.append(name + ":" + lead + transform(headers[name.strip().lower()],
                                                                  val) + "\r\n")
                    else:
                        want.append(line)
                if want != ov:
                    changed += 1
                ov = want
            elif f == "ftp.request.arg" and any(k.startswith("ftp:") for k in fields):
                cmds = o["ftp.request.command"]
                if cmds:
                    tr = fields.get("ftp:" + cmds[0])
                    if tr is not None:
                        ov = [transform(tr, ov[0] if ov else "")] if (ov or tr.startswith("rep")) else ov
                        ov = [x for x in ov if x != ""]
                        changed += 1
            elif f in fields:
                ov = [transform(fields[f], v) for v in ov]
                if ov != o[f]:
                    changed += 1
            if ov != nv:
                errors.append("frame %s: %s is %r, expected %r" % (num, f, nv, ov))
    return errors, changed


def lengths_mode(orig, new):
    errors = []
    om = sum(1 for p in orig if p["_ws.malformed"])
    nm = sum(1 for p in new if p["_ws.malformed"])
    if nm > om:
        errors.append("malformed packets: %d, originally %d" % (nm, om))
    for o, n in zip(orig, new):
        num = o["frame.number"][0]
        d = int(n["frame.len"][0]) - int(o["frame.len"][0])
        if int(n["frame.cap_len"][0]) - int(o["frame.cap_len"][0]) != d:
            errors.append("frame %s: caplen and wire length changed differently" % num)
        if o["ip.len"]:
            if int(n["ip.len"][0]) - int(o["ip.len"][0]) != d:
                errors.append("frame %s: ip.len changed by %d, frame by %d" %
                              (num, int(n["ip.len"][0]) - int(o["ip.len"][0]), d))
        if o["tcp.len"] and n["tcp.len"]:
            if int(n["tcp.len"][0]) - int(o["tcp.len"][0]) != d:
                errors.append("frame %s: tcp.len changed by %d, frame by %d" %
                              (num, int(n["tcp.len"][0]) - int(o["tcp.len"][0]), d))
    return errors


def main():
    mode, orig_path, new_path = sys.argv[1:4]
    if mode == "checksums":
        out = subprocess.run(
            ["tshark", "-n", "-r", new_path, "-o", "ip.check_checksum:TRUE", "-o",
             "tcp.check_checksum:TRUE", "-Y", "ip.checksum.status==0 || tcp.checksum.status==0"],
            capture_output=True, text=True, check=True).stdout
        print(len([l for l in out.split("\n") if l.strip()]))
        return 0
    orig, new = dissect(orig_path), dissect(new_path)
    errors, changed = hdr_mode(orig, new, sys.argv[4:])
    if changed == 0:
        errors.append("no packet had the field: the check proves nothing")
    errors += lengths_mode(orig, new)
    for e in errors[:15]:
        print(e)
    if errors:
        print("%d problem(s)" % len(errors))
        return 1
    print("%d packets, %d changes as expected, lengths consistent" % (len(new), changed))
    return 0


sys.exit(main())
EOF

mkdir "$TMPD/cache"
export CHECK_CACHE=$TMPD/cache
start_mapid anon

N=0
# run TRACE ITEM...: anonymises TRACE into $TMPD/outN.pcap (OUT set to it); true if "ok".
run()
{
    local trace=$1 res
    shift
    N=$((N + 1))
    OUT=$TMPD/out$N.pcap
    res=$("$ANON" "$trace" "$OUT" "$@" 2>&1) || true
    case $res in
    ok\ *) return 0 ;;
    *)
        fail "mapi_anontest $(basename "$trace") $*: $res"
        return 1
        ;;
    esac
}

# expect NAME TRACE "SPEC..." ITEM...: the rules change exactly what the specs say, lengths
# stay consistent and (the items end with CHECKSUM_ADJUST) no checksum is bad.
expect()
{
    local name=$1 trace=$2 specs=$3 res bad
    shift 3
    run "$trace" "$@" "IP,CHECKSUM,CHECKSUM_ADJUST" || return 0
    # shellcheck disable=SC2086
    if res=$("$PY" "$TMPD/check.py" hdr "$trace" "$OUT" $specs 2>&1); then
        pass "$name: $res"
    else
        fail "$name: $res"
    fi
    bad=$("$PY" "$TMPD/check.py" checksums "$trace" "$OUT")
    if [ "$bad" = 0 ]; then
        pass "$name: no bad checksum after CHECKSUM_ADJUST"
    else
        fail "$name: $bad packets with bad checksums after CHECKSUM_ADJUST"
    fi
}

# 1. header rules
expect "REPLACE User-Agent" "$WEIBO" "User-Agent=rep:anon-agent" "HTTP, USER_AGENT, REPLACE, anon-agent"
expect "STRIP,5 Host" "$WEIBO" "Host=strip:5" "http,host,strip,5"
expect "HASHED MD5 Host" "$WEIBO" "Host=md5" "HTTP,HOST,HASHED,MD5,STRIP_REST"
expect "HASHED SHA_2 Referer" "$WEIBO" "Referer=sha256" "HTTP,REFERRER,HASHED,SHA_2,STRIP_REST"
expect "PATTERN_FILL Server, REPLACE Date (responses)" "$WEIBO" "Server=fill:ab Date=rep:today" \
    "HTTP,SERVER,PATTERN_FILL,STR,ab" "HTTP,DATE,REPLACE,today"
expect "several rules (http_auth)" "$AUTH" \
    "Authorization=strip:0 Cookie=rep:c=1 Referer=md5 WWW-Authenticate=rep:Basic Accept-Language=same" \
    "HTTP,AUTHORIZATION,STRIP,0" "HTTP,COOKIE,REPLACE,c=1" "HTTP,REFERRER,HASHED,MD5,STRIP_REST" \
    "HTTP,WWW_AUTHENTICATE,REPLACE,Basic" "HTTP,ACCEPT_LANGUAGE,UNCHANGED"
# 2. start lines
expect "METHOD and URI" "$WEIBO" "@http.request.method=rep:HEAD @http.request.uri=fill:x" \
    "HTTP,METHOD,REPLACE,HEAD" "HTTP,URI,PATTERN_FILL,STR,x"
expect "REGEXP on URI" "$WEIBO" "@http.request.uri=re:^/([^?]*):anon" \
    "HTTP,URI,REGEXP,^/([^?]*),1,anon"
expect "RESP_CODE_DESCR" "$AUTH" "@http.response.phrase=rep:Nope" "HTTP,RESP_CODE_DESCR,REPLACE,Nope"
# 3. FTP
expect "FTP USER" "$FTP" "@ftp:USER=rep:anonymous" "FTP,USER,REPLACE,anonymous"
expect "FTP responses" "$FTP" "@ftp.response.arg=strip:3 @ftp.response.code=fill:9" \
    "FTP,FTP_RESPONSE_ARG,STRIP,3" "FTP,FTP_RESPONSE_CODE,PATTERN_FILL,STR,9"

# 4. without CHECKSUM_ADJUST the resized packets keep bad checksums (the oracle can fail)
if run "$WEIBO" "HTTP,USER_AGENT,REPLACE,x"; then
    bad=$("$PY" "$TMPD/check.py" checksums "$WEIBO" "$OUT")
    orig_bad=$("$PY" "$TMPD/check.py" checksums "$WEIBO" "$WEIBO")
    if [ "$bad" -gt "$orig_bad" ]; then
        pass "without CHECKSUM_ADJUST: $bad bad checksums (original $orig_bad)"
    else
        fail "without CHECKSUM_ADJUST: $bad bad checksums, original $orig_bad"
    fi
fi

# 5. pipelining, IPv6, HTTP recognised by content, truncation (made here, checked on bytes)
"$PY" - "$TMPD/made.pcap" <<'EOF'
import struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def tcp(src, dst, sp, dp, payload, v6=False):
    hdr = struct.pack("!HHIIBBHHH", sp, dp, 1000, 2000, 5 << 4, 0x18, 65535, 0, 0)
    seg = hdr + payload
    if v6:
        ph = src + dst + struct.pack("!IxxxB", len(seg), 6)
    else:
        ph = src + dst + struct.pack("!xBH", 6, len(seg))
    c = csum(ph + seg)
    seg = seg[:16] + struct.pack("!H", c) + seg[18:]
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, len(seg), 6, 64) + src + dst
        return b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x86\xdd" + ip + seg
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0) + src + dst
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + ip + seg

a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
a6, b6 = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002")
req = lambda u, ua: ("GET %s HTTP/1.1\r\nHost: h\r\nUser-Agent: %s\r\nAccept: */*\r\n\r\n" % (u, ua)).encode()
frames = [
    tcp(a, b, 40000, 80, req("/one", "agent-one") + req("/two", "agent-two-longer")),
    tcp(a6, b6, 40001, 8080, req("/six", "agent-six"), v6=True),
    tcp(a, b, 40002, 5555, req("/odd", "agent-odd")),
    tcp(a, b, 40003, 5555, b"hello\r\nUser-Agent: not-http\r\n\r\n"),
    tcp(a, b, 40004, 80, req("/cut", "agent-cut-here")),
]
out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
for i, f in enumerate(frames):
    incl = len(f) - 10 if i == 4 else len(f)  # the last one cut inside Accept
    out.append(struct.pack("<IIII", 1700000000 + i, 0, incl, len(f)) + f[:incl])
open(sys.argv[1], "wb").write(b"".join(out))
EOF
if run "$TMPD/made.pcap" "HTTP,USER_AGENT,REPLACE,UA" "HTTP,CHECKSUM,CHECKSUM_ADJUST"; then
    if res=$("$PY" - "$TMPD/made.pcap" "$OUT" <<'EOF'
import struct, sys

def read(path):
    d = open(path, "rb").read()
    pos, pk = 24, []
    while pos + 16 <= len(d):
        _, _, incl, orig = struct.unpack("<IIII", d[pos:pos + 16])
        pk.append((d[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    return pk

o, n = read(sys.argv[1]), read(sys.argv[2])
errs = []
def payload(f):
    if f[12:14] == b"\x86\xdd":
        return f[14 + 40 + 20:], struct.unpack("!H", f[18:20])[0] + 40
    return f[14 + 20 + 20:], struct.unpack("!H", f[16:18])[0]
for i, ((of, ow), (nf, nw)) in enumerate(zip(o, n)):
    op, oiplen = payload(of)
    np_, niplen = payload(nf)
    if i == 3:
        want = op
    else:
        want = op
        for ua in (b"agent-one", b"agent-two-longer", b"agent-six", b"agent-odd", b"agent-cut-here"):
            want = want.replace(b"User-Agent: " + ua, b"User-Agent: UA")
    if np_ != want:
        errs.append("packet %d: payload %r, expected %r" % (i + 1, np_, want))
    d = len(want) - len(op)
    if niplen - oiplen != d or nw - ow != d or len(nf) - len(of) != d:
        errs.append("packet %d: lengths changed by ip %d, wire %d, caplen %d; payload by %d" %
                    (i + 1, niplen - oiplen, nw - ow, len(nf) - len(of), d))
print("; ".join(errs) if errs else "%d packets as expected" % len(n))
sys.exit(1 if errs else 0)
EOF
    ); then
        pass "pipelining, IPv6 port 8080, request line on port 5555, truncated request: $res"
    else
        fail "made capture: $res"
    fi
    bad=$("$PY" "$TMPD/check.py" checksums "$TMPD/made.pcap" "$OUT")
    # the truncated packet cannot be checked by tshark (its checksum is left as it was)
    if [ "$bad" -le 1 ]; then
        pass "made capture: no bad checksum on the complete packets"
    else
        fail "made capture: $bad bad checksums"
    fi
fi

# 6. errors
# err WANT_CODE WORD RULE: the rule is refused with WANT_CODE and WORD in the message.
err()
{
    local want=$1 word=$2 rule=$3 res
    res=$("$ANON" "$WEIBO" "$TMPD/err.pcap" "$rule" 2>&1) || true
    case $res in
    "ERR 1 $want "*"$word"*) pass "\"$rule\" -> $want ($res)" ;;
    *) fail "\"$rule\": expected ERR 1 $want ...$word..., got: $res" ;;
    esac
}
err 7001 SMTP "SMTP,USER_AGENT,REPLACE,x"
err 7002 USER_AGENTX "HTTP,USER_AGENTX,REPLACE,x"
err 7002 USER_AGENT "TCP,USER_AGENT,REPLACE,x"
err 7002 USER "HTTP,USER,REPLACE,x"
err 7002 VERSION "HTTP,VERSION,ZERO"
err 7002 IHL "IP,IHL,ZERO"
err 7002 REPLACE "HTTP,TTL,REPLACE,x"
err 7002 CHECKSUM_ADJUST "HTTP,USER_AGENT,CHECKSUM_ADJUST"
err 7003 SCRAMBLE "HTTP,USER_AGENT,SCRAMBLE"
err 7004 STRIP "HTTP,USER_AGENT,STRIP"
err 7004 STRIP "HTTP,USER_AGENT,STRIP,1,2"
err 7004 REPLACE "FTP,USER,REPLACE"
err 7004 PATTERN_FILL "HTTP,HOST,PATTERN_FILL,STR"
err 7004 HASHED "HTTP,HOST,HASHED"
err 7004 WHIRLPOOL "HTTP,HOST,HASHED,WHIRLPOOL"
err 7004 REGEXP "HTTP,URI,REGEXP,(a)(b),2,x"
err 7004 MAP_DISTRIBUTION "IP,TTL,MAP_DISTRIBUTION,UNIFORM,1"
err 7004 UNCHANGED "HTTP,HOST,UNCHANGED,1"

stop_mapid anon
finish
