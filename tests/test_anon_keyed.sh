#!/usr/bin/env bash
# tests/test_anon_keyed.sh - anonflib's PREFIX_PRESERVING_MAP and HASHED (digests, CRC32 and
# keyed ciphers) on real captures, checked with tshark, python (hashlib, zlib) and the openssl
# command, not with our code. tests/mapi_anontest applies the rules to an offline flow and
# writes the result with TO_FILE.
#   1. PREFIX_PRESERVING_MAP on SRC_IP and DST_IP (weibo.pcap, IPv4; http_ipv6.pcap, IPv6):
#      over tshark's outer addresses of the input and the output, the mapping is a function,
#      one-to-one, and prefix-preserving (for every pair of distinct original addresses of a
#      family, the common-prefix length in bits equals that of their images); two flows get
#      different tables; MAP's output fails the same oracle (the check can fail).
#   2. HASHED with CRC32, MD5, SHA, SHA_2 on IP,ID, TCP,SEQUENCE_NUMBER (the last 2 / 4 bytes
#      of the digest of the big-endian field value) and TCP,PAYLOAD (the digest, NUL-padded to
#      the old length, or growing the payload when longer; PAD UNCHANGED / STRIP_REST too): the
#      expected bytes come from python's zlib.crc32 / hashlib over the original bytes read
#      from the pcap with struct, for every TCP packet; comparing an MD5 result against SHA-1
#      expectations must fail.
#   3. HASHED with AES (AES-256-ECB), TRIPLEDES (DES-EDE3-ECB) and DES (DES-ECB, OpenSSL's
#      legacy provider) and a key in the rule (NUL-padded to 32 bytes; DES uses bytes 0..7,
#      3DES 0..23): the expected ciphertexts of the NUL-padded field values come from
#      `openssl enc -<cipher> -nopad -K HEX` (all values of a trace in one ECB call, block by
#      block); the same comparison with a wrong key must fail.
#
# Usage: test_anon_keyed.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

[ -e "$BUILD/flib/anonflib.so" ] || die "missing $BUILD/flib/anonflib.so"
for t in tshark openssl; do
    command -v "$t" >/dev/null || {
        echo "$t is not installed"
        exit 77
    }
done

# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=stdflib.so:anonflib.so

ANON=$TBIN/mapi_anontest
WEIBO=$DATA/weibo.pcap
V6=$DATA/http_ipv6.pcap

cat >"$TMPD/oracle.py" <<'EOF'
"""Oracles of test_anon_keyed.sh.

  oracle.py pp ORIG.tsv NEW.tsv      prefix-preserving one-to-one mapping of the addresses
  oracle.py differ A.tsv B.tsv ORIG.tsv  the two results map the addresses differently
  oracle.py hash ORIG.pcap NEW.pcap ALG PAD [KEY]
                                     HASHED,ALG on IP,ID, TCP,SEQUENCE_NUMBER, TCP,PAYLOAD
Prints what is wrong and exits 3, or prints a summary and exits 0.
"""
import hashlib
import ipaddress
import struct
import subprocess
import sys
import tempfile
import zlib


def bad(msg):
    """A mismatch: exit status 3 (an exception exits 1, so a crash is no negative result)."""
    print(msg)
    sys.exit(3)


def load_tsv(path):
    with open(path) as f:
        lines = f.read().split("\n")
    head = lines[0].split("\t")
    return [dict(zip(head, l.split("\t"))) for l in lines[1:] if l != ""]


COLS = (("ip.src", "ip.dst"), ("ipv6.src", "ipv6.dst"))


def addr_map(orig, new):
    """{family bits: {orig int: new int}}; exits if not a function / one-to-one."""
    maps = {32: {}, 128: {}}
    if len(orig) != len(new):
        bad(f"{len(orig)} packets in the original, {len(new)} in the result")
    for i, (o, n) in enumerate(zip(orig, new)):
        for cols, bits in zip(COLS, (32, 128)):
            for c in cols:
                a, b = o.get(c, ""), n.get(c, "")
                if a == "" and b == "":
                    continue
                if a == "" or b == "":
                    bad(f"packet {i + 1}: {c} '{a}' -> '{b}'")
                a, b = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
                if maps[bits].setdefault(a, b) != b:
                    bad(f"packet {i + 1}: {c} {a:#x} -> {b:#x}, earlier -> {maps[bits][a]:#x}")
    for bits, m in maps.items():
        if len(set(m.values())) != len(m):
            bad(f"{bits}-bit addresses: two originals share an image")
    return maps


def common(a, b, bits):
    """The length in bits of the common prefix of a and b."""
    x = a ^ b
    return bits if x == 0 else bits - x.bit_length()


def check_pp(orig, new):
    maps = addr_map(load_tsv(orig), load_tsv(new))
    out = []
    for bits, m in maps.items():
        items = sorted(m.items())
        for i in range(len(items)):
            a, fa = items[i]
            for b, fb in items[i + 1:]:
                if common(a, b, bits) != common(fa, fb, bits):
                    bad(f"not prefix-preserving: {ipaddress.ip_address(a)} "
                        f"{ipaddress.ip_address(b)} share {common(a, b, bits)} bits, their images "
                        f"{ipaddress.ip_address(fa)} {ipaddress.ip_address(fb)} share "
                        f"{common(fa, fb, bits)}")
        if m:
            out.append(f"{len(m)} IPv{4 if bits == 32 else 6} addresses "
                       f"({len(m) * (len(m) - 1) // 2} pairs)")
    if not out:
        bad("no addresses")
    print("function, one-to-one, prefix-preserving: " + ", ".join(out))


def check_differ(a, b, orig):
    ma = addr_map(load_tsv(orig), load_tsv(a))
    mb = addr_map(load_tsv(orig), load_tsv(b))
    same = sum(ma[32][k] == mb[32][k] for k in ma[32])
    if not ma[32] or same == len(ma[32]):
        bad(f"two flows: {same} of {len(ma[32])} addresses mapped alike")
    print(f"two flows: {same} of {len(ma[32])} addresses mapped alike")


def packets(path):
    """(caplen, wlen, data) of each record of a pcap (Ethernet)."""
    d = open(path, "rb").read()
    e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    if struct.unpack(e + "I", d[20:24])[0] != 1:
        bad(f"{path}: not Ethernet")
    pos, out = 24, []
    while pos + 16 <= len(d):
        _, _, incl, orig = struct.unpack(e + "IIII", d[pos:pos + 16])
        out.append(d[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    return out


def parse(p):
    """The fields of a TCP packet: dict(id=bytes or None, seq=bytes, payload=bytes), or None
    (not TCP over IPv4/IPv6 directly, a fragment, or cut)."""
    off, et = 14, struct.unpack(">H", p[12:14])[0]
    while et == 0x8100:
        et = struct.unpack(">H", p[off + 2:off + 4])[0]
        off += 4
    if et == 0x0800:
        ihl = (p[off] & 15) * 4
        tot = struct.unpack(">H", p[off + 2:off + 4])[0]
        frag = struct.unpack(">H", p[off + 6:off + 8])[0]
        if p[off + 9] != 6 or frag & 0x3fff:
            return None
        ipid, t, end = p[off + 4:off + 6], off + ihl, off + tot
    elif et == 0x86DD:
        if p[off + 6] != 6:
            return None
        ipid, t, end = None, off + 40, off + 40 + struct.unpack(">H", p[off + 4:off + 6])[0]
    else:
        return None
    if end > len(p) or t + 20 > end:
        return None
    doff = (p[t + 12] >> 4) * 4
    return {"id": ipid, "seq": p[t + 4:t + 8], "payload": p[t + doff:end]}


CIPHERS = {"AES": ("aes-256-ecb", 16, 32), "TRIPLEDES": ("des-ede3-ecb", 8, 24),
           "DES": ("des-ecb", 8, 8)}


def digests(alg, key, values):
    """The digest (ciphertext) of each value, computed by hashlib/zlib/the openssl command."""
    if alg == "CRC32":
        return [struct.pack(">I", zlib.crc32(v)) for v in values]
    if alg in ("MD5", "SHA", "SHA_2"):
        h = {"MD5": hashlib.md5, "SHA": hashlib.sha1, "SHA_2": hashlib.sha256}[alg]
        return [h(v).digest() for v in values]
    name, block, klen = CIPHERS[alg]
    kb = key.encode()[:32].ljust(32, b"\0")[:klen]
    padded = [v + b"\0" * (-len(v) % block) for v in values]
    cmd = ["openssl", "enc", "-" + name, "-nopad", "-K", kb.hex()]
    if alg == "DES":
        cmd += ["-provider", "legacy", "-provider", "default"]
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"".join(padded))
        f.flush()
        ct = subprocess.run(cmd + ["-in", f.name], capture_output=True, check=True).stdout
    out, pos = [], 0
    for v, p in zip(values, padded):
        # HASHED leaves an empty value alone (nothing to encrypt)
        out.append(ct[pos:pos + len(p)] if v else None)
        pos += len(p)
    if pos != len(ct):
        bad(f"openssl returned {len(ct)} bytes for {pos}")
    return out


def check_hash(orig, new, alg, pad, key=""):
    po, pn = packets(orig), packets(new)
    if len(po) != len(pn):
        bad(f"{len(po)} packets in the original, {len(pn)} in the result")
    pairs = [(i, parse(a), parse(b)) for i, (a, b) in enumerate(zip(po, pn))]
    pairs = [(i, a, b) for i, a, b in pairs if a is not None]
    ids = [a["id"] for _, a, _ in pairs if a["id"] is not None]
    dig = iter(digests(alg, key, ids + [a["seq"] for _, a, _ in pairs] +
                       [a["payload"] for _, a, _ in pairs]))
    did = {i: next(dig) for i, a, _ in pairs if a["id"] is not None}
    dseq = {i: next(dig) for i, _, _ in pairs}
    dpay = {i: next(dig) for i, _, _ in pairs}
    nid = npay = grown = 0
    for i, a, b in pairs:
        if b is None:
            bad(f"packet {i + 1}: no longer a complete TCP packet")
        if a["id"] is not None:
            want = struct.pack(">H", int.from_bytes(did[i][-4:], "big") & 0xFFFF)
            if b["id"] != want:
                bad(f"IP,ID packet {i + 1}: {a['id'].hex()} -> {b['id'].hex()}, want {want.hex()}")
            nid += 1
        want = dseq[i][-4:]
        if b["seq"] != want:
            bad(f"TCP,SEQUENCE_NUMBER packet {i + 1}: {a['seq'].hex()} -> {b['seq'].hex()}, "
                f"want {want.hex()}")
        old, d = a["payload"], dpay[i]
        if d is None:
            want = old
        elif len(d) >= len(old) or pad == "STRIP_REST":
            want = d
        elif pad == "UNCHANGED":
            want = d + old[len(d):]
        else:
            want = d + b"\0" * (len(old) - len(d))
        if b["payload"] != want:
            bad(f"TCP,PAYLOAD packet {i + 1} ({len(old)} bytes): got {len(b['payload'])} bytes "
                f"{b['payload'][:24].hex()}..., want {len(want)} bytes {want[:24].hex()}...")
        npay += len(old) > 0
        grown += len(want) > len(old)
    if nid + npay == 0:
        bad("no values compared")
    print(f"{len(pairs)} TCP packets: {nid} IP IDs, {len(pairs)} sequence numbers, {npay} "
          f"non-empty payloads ({grown} grown) as expected")


if __name__ == "__main__":
    {"pp": check_pp, "differ": check_differ, "hash": check_hash}[sys.argv[1]](*sys.argv[2:])
EOF

# fields FILE: tshark's outer addresses of FILE, with a header line.
fields()
{
    tshark -n -r "$1" -T fields -E header=y -E occurrence=f -e ip.src -e ip.dst -e ipv6.src \
        -e ipv6.dst 2>/dev/null
}

# anon OUT TRACE ITEM...: runs the rules; true if the client printed "ok N".
anon()
{
    local out=$1 trace=$2 res
    shift 2
    res=$("$ANON" "$trace" "$out" "$@" 2>&1) || true
    case $res in
    ok\ *) return 0 ;;
    *)
        fail "mapi_anontest $(basename "$trace") $*: $res"
        return 1
        ;;
    esac
}

# oracle NAME EXPECT ARGS...: runs oracle.py ARGS; EXPECT "ok" wants it to pass (status 0),
# "bad" wants it to report a mismatch (status 3: a negative control).
oracle()
{
    local name=$1 expect=$2 res rc=0
    shift 2
    res=$("$PY" "$TMPD/oracle.py" "$@" 2>&1) || rc=$?
    if [ "$expect" = ok ] && [ $rc -eq 0 ]; then
        pass "$name: $res"
    elif [ "$expect" = bad ] && [ $rc -eq 3 ]; then
        pass "$name (negative control) rejected: $res"
    else
        fail "$name: exit $rc, $res"
    fi
}

start_mapid keyed

# 1. PREFIX_PRESERVING_MAP.
for f in "$WEIBO" "$V6"; do
    b=$(basename "$f" .pcap)
    fields "$f" >"$TMPD/$b.tsv"
    if anon "$TMPD/pp-$b.pcap" "$f" "IP,SRC_IP,PREFIX_PRESERVING_MAP" \
        "IP,DST_IP,PREFIX_PRESERVING_MAP"; then
        fields "$TMPD/pp-$b.pcap" >"$TMPD/pp-$b.tsv"
        oracle "PREFIX_PRESERVING_MAP $b" ok pp "$TMPD/$b.tsv" "$TMPD/pp-$b.tsv"
    fi
done
if anon "$TMPD/pp2.pcap" "$WEIBO" "IP,SRC_IP,PREFIX_PRESERVING_MAP" \
    "IP,DST_IP,PREFIX_PRESERVING_MAP"; then
    fields "$TMPD/pp2.pcap" >"$TMPD/pp2.tsv"
    oracle "PREFIX_PRESERVING_MAP, another flow" ok differ "$TMPD/pp-weibo.tsv" \
        "$TMPD/pp2.tsv" "$TMPD/weibo.tsv"
fi
if anon "$TMPD/map.pcap" "$WEIBO" "IP,SRC_IP,MAP" "IP,DST_IP,MAP"; then
    fields "$TMPD/map.pcap" >"$TMPD/map.tsv"
    oracle "prefix-preserving oracle on MAP" bad pp "$TMPD/weibo.tsv" "$TMPD/map.tsv"
fi

# 2. and 3. HASHED: digests without a key, ciphers with the key in the rule.
KEY=k3y-for-test
# hashed TRACE ALG PAD [KEY]: HASHED,ALG[,PAD][,KEY] on IP,ID, TCP,SEQUENCE_NUMBER and
# TCP,PAYLOAD of TRACE, checked by oracle.py hash; prints the output file's name.
H=0
hashed()
{
    local trace=$1 alg=$2 pad=$3 extra=""
    shift 3
    [ "$pad" = PAD_WITH_ZERO ] || extra=",$pad"
    [ $# -eq 0 ] || extra="$extra,$1"
    H=$((H + 1))
    if anon "$TMPD/h$H.pcap" "$trace" "IP,ID,HASHED,$alg$extra" \
        "TCP,SEQUENCE_NUMBER,HASHED,$alg$extra" "TCP,PAYLOAD,HASHED,$alg$extra"; then
        oracle "HASHED,$alg$extra $(basename "$trace")" ok hash "$trace" "$TMPD/h$H.pcap" \
            "$alg" "$pad" "$@"
    fi
}
for alg in CRC32 MD5 SHA SHA_2; do
    hashed "$WEIBO" "$alg" PAD_WITH_ZERO
done
hashed "$V6" SHA_2 PAD_WITH_ZERO
hashed "$WEIBO" MD5 UNCHANGED
hashed "$WEIBO" CRC32 STRIP_REST
# an MD5 result is not what SHA-1 gives
oracle "HASHED,MD5 against SHA" bad hash "$WEIBO" "$TMPD/h2.pcap" SHA PAD_WITH_ZERO
for alg in AES TRIPLEDES DES; do
    hashed "$WEIBO" "$alg" PAD_WITH_ZERO "$KEY"
    oracle "HASHED,$alg,$KEY with another key" bad hash "$WEIBO" "$TMPD/h$H.pcap" "$alg" \
        PAD_WITH_ZERO "K3y-for-test"
done
hashed "$V6" AES PAD_WITH_ZERO "$KEY"

mapid_alive keyed || fail "mapid died"
stop_mapid keyed
finish
