#!/usr/bin/env bash
# tests/test_cryptopan.sh - Crypto-PAn (common/cryptopan.c) through extraflib's ANONYMIZEIP
# and anonflib's ANONYMIZE ... PREFIX_PRESERVING, against libtrace's traceanon (libtrace-tools
# 3.0.22) and a Python Crypto-PAn written from the published description (python3-cryptography
# for AES). A private mapid loads stdflib.so:extraflib.so (and anonflib.so when built);
# tests/mapi_cpan applies the functions + TO_FILE on offline flows.
#   1. For IPv4 captures (Ethernet, VLAN, Linux SLL, big-endian/GRE) and IPv6 captures (mixed,
#      IPv6 only, nanosecond, 60 extension headers): ANONYMIZEIP K must write, packet by
#      packet, the bytes `traceanon -s -d -c K` writes (IPv4: addresses, zeroed IP/TCP/UDP/ICMP
#      checksums, ICMP-quoted headers), except where traceanon 3.0.22 does nothing: IPv6
#      addresses (ours = the Python oracle) and its 0.0.0.0 start-up artefact. Also, with
#      tshark (-e ip.src -e ip.dst -e ipv6.src -e ipv6.dst), every address of our output is the
#      oracle's image of the original, and traceanon's IPv4 addresses equal ours. QinQ and
#      PPP/MPLS captures, which traceanon 3.0.22 does not decode (it leaves them as they are),
#      are checked against the oracle only; the PPP/MPLS traceroute (ICMP time exceeded quoting
#      UDP) is also rewritten as Ethernet and then compared with traceanon byte for byte.
#      The result of ANONYMIZEIP counts the IP packets; non-IP packets (ARP) pass unchanged.
#   2. Prefix preservation: over all pairs of addresses of a capture (IPv4 and IPv6), the common
#      prefix length of the originals equals that of the images; the mapping is one to one.
#   3. Same key, same mapping: two flows at once and a second run give identical files;
#      another key maps every address elsewhere.
#   4. Keys: a key longer than 32 bytes (traceanon uses the first 32); "" takes mapi.conf's
#      anon_key_file: 32 raw bytes = traceanon -f FILE, a short text file with a newline =
#      traceanon -c TEXT; errors 7001 for an empty file, a missing file, no anon_key_file.
#   5. anonflib (when built): ANONYMIZE "IP,SRC_IP,PREFIX_PRESERVING,K" and
#      "IP,DST_IP,PREFIX_PRESERVING,K" give the same outer addresses as traceanon / the oracle.
#
# Usage: test_cryptopan.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

for t in traceanon tshark; do
    command -v "$t" >/dev/null || {
        echo "$t is not installed (libtrace-tools, tshark)"
        exit 77
    }
done
"$PY" -c 'import cryptography' 2>/dev/null || {
    echo "python3-cryptography is not installed"
    exit 77
}
CPAN=$TBIN/mapi_cpan
for b in "$BUILD/flib/extraflib.so" "$CPAN"; do
    [ -e "$b" ] || die "missing $b: build first"
done
LIBS=stdflib.so:extraflib.so
HAVE_ANONFLIB=0
if [ -e "$BUILD/flib/anonflib.so" ]; then
    LIBS=$LIBS:anonflib.so
    HAVE_ANONFLIB=1
fi

K="MAPI test key"
KEYFILE=$TMPD/key.bin
# A random raw key with a NUL byte inside: traceanon -f reads it as a C string (the bytes
# after the NUL count as NUL), and so must we. Different every run.
{ head -c 20 /dev/urandom; printf '\000'; head -c 11 /dev/urandom; } >"$KEYFILE"
# write_conf of common.sh with our libraries and (except for the mapid "nokey") the key file.
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=$LIBS
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
ANON_KEY_FILE=$KEYFILE

CHECK=$TMPD/check.py
cat >"$CHECK" <<'PYEOF'
import struct, sys, ipaddress, itertools
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def read_pcap(path):
    data = open(path, "rb").read()
    m = data[:4]
    e = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
         b"\xa1\xb2\x3c\x4d": ">"}[m]
    lt = struct.unpack(e + "I", data[20:24])[0]
    pos, pkts = 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack(e + "I", data[pos + 8:pos + 12])[0]
        pkts.append(data[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    return lt, pkts

class Oracle:
    """Crypto-PAn from its published description: pad = AES_K(key[16:32]); bit p of the
    one-time pad is the top bit of AES_K(first p bits of the address | last 128-p bits of
    pad)."""
    def __init__(self, key):
        key = key[:32].ljust(32, b"\0")
        self.enc = Cipher(algorithms.AES(key[:16]), modes.ECB()).encryptor()
        self.pad = int.from_bytes(self.enc.update(key[16:]), "big")
        self.cache = {}
    def anon(self, b):
        b = bytes(b)
        if b in self.cache:
            return self.cache[b]
        bits = len(b) * 8
        a = int.from_bytes(b, "big") << (128 - bits)
        otp = 0
        for p in range(bits):
            m = ((1 << p) - 1) << (128 - p)
            blk = (a & m) | (self.pad & ~m & ((1 << 128) - 1))
            otp |= (self.enc.update(blk.to_bytes(16, "big"))[0] >> 7) << (bits - 1 - p)
        r = (int.from_bytes(b, "big") ^ otp).to_bytes(len(b), "big")
        self.cache[b] = r
        return r

def rd16(b, o):
    return b[o] << 8 | b[o + 1]

def l3(lt, b):
    """(offset, version) of the IP header of a frame, or (None, None)."""
    n = len(b)
    if lt == 1:
        if n < 14: return None, None
        et, off = rd16(b, 12), 14
        while et in (0x8100, 0x88a8, 0x9100) and off + 4 <= n:
            et, off = rd16(b, off + 2), off + 4
    elif lt == 113:
        if n < 16: return None, None
        et, off = rd16(b, 14), 16
    elif lt in (9, 50):
        off = 2 if n >= 2 and b[0] == 0xff and b[1] == 0x03 else 0
        if off + 2 > n: return None, None
        p = rd16(b, off)
        off += 2
        et = {0x21: 0x0800, 0x57: 0x86dd, 0x281: 0x8847}.get(p, 0)
    elif lt in (12, 14, 101):
        et, off = 0xffff, 0
    else:
        return None, None
    if et == 0x8847:
        while off + 4 <= n:
            off += 4
            if b[off - 2] & 1: break
        et = 0xffff
    if et == 0x8864 and off + 8 <= n:
        et = {0x21: 0x0800, 0x57: 0x86dd}.get(rd16(b, off + 6), 0)
        off += 8
    if et == 0xffff and off < n:
        et = {4: 0x0800, 6: 0x86dd}.get(b[off] >> 4, 0)
    if et == 0x0800 and off + 20 <= n and b[off] >> 4 == 4 and b[off] & 15 >= 5:
        return off, 4
    if et == 0x86dd and off + 40 <= n and b[off] >> 4 == 6:
        return off, 6
    return None, None

def csum_fix(exp, c, old, new):
    """RFC 1624 eqn. 3 on the checksum at exp[c:c+2], word by word."""
    for i in range(0, len(old), 2):
        C = rd16(exp, c)
        s = (~C & 0xffff) + (~rd16(old, i) & 0xffff) + rd16(new, i)
        s = (s & 0xffff) + (s >> 16)
        r = ~(s + (s >> 16)) & 0xffff
        exp[c:c + 2] = bytes([r >> 8, r & 0xff])

def v6_transport(b, off):
    nh, t = b[off + 6], off + 40
    while nh in (0, 43, 60, 44, 51) and t + 8 <= len(b):
        if nh == 44:
            if rd16(b, t + 2) & 0xfff8: return None, None
            nh, t = b[t], t + 8
        elif nh == 51:
            nh, t = b[t], t + (b[t + 1] + 2) * 4
        else:
            nh, t = b[t], t + (b[t + 1] + 1) * 8
    return nh, t

def expected(lt, orig, ta, O, stats):
    """What ANONYMIZEIP must write: traceanon's bytes (IPv4: all of them), with IPv6 addresses
    Crypto-PAn'd (traceanon 3.0.22 leaves them), ICMPv6 checksums zeroed and addresses quoted
    in ICMPv6 errors anonymised too; traceanon's 0.0.0.0 start-up artefact corrected."""
    exp = bytearray(ta)
    off, v = l3(lt, orig)
    if v == 4:
        stats["v4"] += 1
        for a in (off + 12, off + 16):
            if orig[a:a + 4] == b"\0\0\0\0" and ta[a:a + 4] == b"\0\0\0\0":
                exp[a:a + 4] = O.anon(b"\0\0\0\0")
                stats["zero_quirk"] += 1
    elif v == 6:
        stats["v6"] += 1
        n = len(orig)
        exp[off + 8:off + 24] = O.anon(orig[off + 8:off + 24])
        exp[off + 24:off + 40] = O.anon(orig[off + 24:off + 40])
        nh, t = v6_transport(orig, off)
        if nh == 58 and t + 4 <= n:
            stats["icmp6"] += 1
            if 1 <= orig[t] <= 4 and t + 8 + 7 <= n and orig[t + 8] >> 4 == 6:
                q = t + 8
                qnh, qt = orig[q + 6], q + 40
                for a in (q + 8, q + 24):
                    if a + 16 <= n:
                        new = O.anon(orig[a:a + 16])
                        if qnh == 6 and qt + 18 <= n:
                            csum_fix(exp, qt + 16, orig[a:a + 16], new)
                        elif qnh == 17 and qt + 8 <= n:
                            csum_fix(exp, qt + 6, orig[a:a + 16], new)
                        exp[a:a + 16] = new
                if qnh == 58 and qt + 4 <= n:
                    exp[qt + 2:qt + 4] = b"\0\0"
                stats["icmp6_quoted"] += 1
            exp[t + 2:t + 4] = b"\0\0"
    return bytes(exp)

def cmd_compare(orig_path, mapi_path, ta_path, key):
    """Packet by packet, mapi's bytes must be expected(): traceanon's output completed."""
    O = Oracle(key.encode())
    lt, orig = read_pcap(orig_path)
    _, mp = read_pcap(mapi_path)
    _, ta = read_pcap(ta_path)
    stats = dict(v4=0, v6=0, icmp6=0, icmp6_quoted=0, zero_quirk=0, changed=0)
    if not (len(orig) == len(mp) == len(ta)):
        print(f"packet counts differ: original {len(orig)} mapi {len(mp)} traceanon {len(ta)}")
        return 1
    bad = 0
    for i, (o, m, t) in enumerate(zip(orig, mp, ta)):
        exp = expected(lt, o, t, O, stats)
        stats["changed"] += m != o
        if m != exp:
            bad += 1
            if bad <= 3:
                d = [j for j in range(max(len(m), len(exp))) if j >= len(m) or j >= len(exp) or m[j] != exp[j]]
                print(f"packet {i + 1}: differs at bytes {d[:12]}: mapi {m[d[0]:d[0]+8].hex()} expected {exp[d[0]:d[0]+8].hex()}")
    print(" ".join(f"{k}={v}" for k, v in stats.items()), f"bad={bad}")
    return 1 if bad else 0

def read_fields(path):
    """tshark -T fields -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst: per packet 4 lists."""
    rows = []
    for line in open(path):
        cols = line.rstrip("\n").split("\t")
        cols += [""] * (4 - len(cols))
        rows.append([c.split(",") if c else [] for c in cols[:4]])
    return rows

def cmd_fields(orig_f, mapi_f, ta_f, key, outer_only="0"):
    """mapi's addresses must be the oracle's image of the original's (every address tshark
    shows, quoted ICMP packets included; only the outer ones if outer_only); traceanon's IPv4
    addresses (if ta_f is not "-") must equal mapi's, except traceanon's 0.0.0.0 artefact."""
    O = Oracle(key.encode())
    orig, mp = read_fields(orig_f), read_fields(mapi_f)
    ta = read_fields(ta_f) if ta_f != "-" else None
    if len(orig) != len(mp) or (ta is not None and len(ta) != len(orig)):
        print(f"packet counts differ: {len(orig)} {len(mp)} {len(ta) if ta else '-'}")
        return 1
    bad = n = quirk = 0
    for i in range(len(orig)):
        for c in range(4):
            o, m = orig[i][c], mp[i][c]
            if outer_only == "1":
                o, m = o[:1], m[:1]
            want = [str(ipaddress.ip_address(O.anon(ipaddress.ip_address(a).packed))) for a in o]
            n += len(want)
            if m != want:
                bad += 1
                if bad <= 3:
                    print(f"packet {i + 1} column {c}: original {o} mapi {m} oracle {want}")
            if ta is not None and c < 2:
                t = ta[i][c] if outer_only != "1" else ta[i][c][:1]
                fix = [w if (x == "0.0.0.0" and a == "0.0.0.0") else x for x, a, w in zip(t, o, want)]
                quirk += fix != t
                if fix != m:
                    bad += 1
                    if bad <= 3:
                        print(f"packet {i + 1} column {c}: traceanon {t} mapi {m}")
    print(f"{len(orig)} packets, {n} addresses checked, traceanon 0.0.0.0 artefacts {quirk}, bad {bad}")
    return 1 if bad else 0

def cmd_prefix(orig_f, anon_f):
    """The mapping original -> anonymised over all addresses of a capture is a function, one to
    one, and keeps the common prefix length of every pair (per address family)."""
    orig, an = read_fields(orig_f), read_fields(anon_f)
    mp = {}
    for ro, ra in zip(orig, an):
        for lo, la in zip(ro, ra):
            for a, b in zip(lo, la):
                a, b = ipaddress.ip_address(a), ipaddress.ip_address(b)
                if mp.setdefault(a, b) != b:
                    print(f"{a} maps to {mp[a]} and {b}")
                    return 1
    if len(set(mp.values())) != len(mp):
        print("two addresses map to the same image")
        return 1
    def cpl(x, y, bits):
        d = int(x) ^ int(y)
        return bits - d.bit_length()
    pairs = 0
    for fam in (4, 6):
        keys = [a for a in mp if a.version == fam]
        bits = 32 if fam == 4 else 128
        for a, b in itertools.combinations(keys, 2):
            pairs += 1
            if cpl(a, b, bits) != cpl(mp[a], mp[b], bits):
                print(f"prefix not preserved: {a} {b} -> {mp[a]} {mp[b]}")
                return 1
    print(f"{len(mp)} addresses, {pairs} pairs: prefixes preserved")
    return 0

def cmd_same(a, b):
    """Same packets (bytes) in two pcap files. Prints the number of packets."""
    pa, pb = read_pcap(a)[1], read_pcap(b)[1]
    print(len(pa))
    return 0 if pa == pb else 1

def cmd_differ(orig_f, f1, f2):
    """Every address (outer, tshark) of the original maps to different images in f1 and f2."""
    orig, x, y = read_fields(orig_f), read_fields(f1), read_fields(f2)
    seen = same = 0
    for ro, rx, ry in zip(orig, x, y):
        for lo, lx, ly in zip(ro, rx, ry):
            for a, b, c in zip(lo, lx, ly):
                seen += 1
                same += b == c
    print(f"{seen} addresses, {same} equal under the two keys")
    return 0 if seen > 0 and same == 0 else 1

def cmd_to_ether(src, dst):
    """A DLT_PPP capture (IPv4, or MPLS with IPv4 inside) as Ethernet frames carrying the IPv4
    packet (MPLS labels dropped), for libtrace 3.0.22, which decodes neither PPP nor MPLS."""
    lt, _ = read_pcap(src)
    data = open(src, "rb").read()
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[pos:pos + 16])
        body = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        off, v = l3(lt, body)
        if v != 4:
            continue
        frame = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + body[off:]
        out.append(struct.pack("<IIII", sec, frac, len(frame), orig - off + 14) + frame)
    open(dst, "wb").write(b"".join(out))
    return 0

CMDS = dict(compare=cmd_compare, fields=cmd_fields, prefix=cmd_prefix, same=cmd_same,
            differ=cmd_differ, to_ether=cmd_to_ether)
if __name__ == "__main__":
    sys.exit(CMDS[sys.argv[1]](*sys.argv[2:]))
PYEOF

fields()
{
    tshark -r "$1" -T fields -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst 2>/dev/null
}

# traceanon ARGS... IN OUT
tanon()
{
    local n=$#
    local in=${*:n-1:1} out=${*:n:1}
    traceanon "${@:1:n-2}" "pcapfile:$in" "pcapfile:$out" >/dev/null 2>&1 ||
        die "traceanon failed on $in"
}

# anonip IN OUT KEY: ANONYMIZEIP KEY + TO_FILE; prints the result (packets anonymised).
anonip()
{
    rm -f "$2"
    local out
    out=$("$CPAN" "$1" "$2" -F ANONYMIZEIP "$3") || die "mapi_cpan failed on $1"
    case $out in
    ERR*) die "ANONYMIZEIP refused: $out" ;;
    esac
    echo "$out" | awk '$1 == "ANONYMIZEIP" { print $3 }'
}

start_mapid cpan
W=$TMPD/w
mkdir -p "$W"

# 1. traceanon and the oracle. tshark takes a second per file, so the captures are merged
# (mergecap -a) by link type: Ethernet ones (ajp: its 802.1Q frames only; its 0x8903 frames
# are decoded neither by mapid nor by traceanon, and pass unchanged), Linux SLL ones, and those
# traceanon 3.0.22 does not decode (QinQ, PPP/MPLS), which are checked against the oracle only.
"$PY" "$CHECK" to_ether "$DATA/mpls-traceroute.pcap" "$W/mpls-eth.pcap"
tcpdump -r "$DATA/ajp.pcap" -w "$W/ajp-vlan.pcap" vlan 2>/dev/null
mergecap -a -F pcap -w "$W/eth.pcap" "$DATA/weibo.pcap" "$W/ajp-vlan.pcap" "$DATA/pptp.pcap" \
    "$DATA/iphone.pcap" "$DATA/http_ipv6.pcap" "$DATA/doq-nsec.pcap" \
    "$DATA/ipv6_ext_headers.pcap" "$W/mpls-eth.pcap" || die "mergecap"
mergecap -a -F pcap -w "$W/sll.pcap" "$DATA/log4j-webapp-exploit.pcap" \
    "$DATA/RADIUS-RFC4675.pcap" || die "mergecap"
cp "$DATA/QinQpacket.pcap" "$DATA/mpls-traceroute.pcap" "$W/"
for c in eth sll QinQpacket mpls-traceroute; do
    in=$W/$c.pcap
    n=$(anonip "$in" "$W/$c.m.pcap" "$K")
    fields "$in" >"$W/$c.o.f" &
    bg=$!
    fields "$W/$c.m.pcap" >"$W/$c.m.f"
    wait "$bg"
    ta=-
    case $c in
    eth | sll)
        ta=$W/$c.t.f
        tanon -s -d -c "$K" "$in" "$W/$c.t.pcap"
        fields "$W/$c.t.pcap" >"$ta"
        if out=$("$PY" "$CHECK" compare "$in" "$W/$c.m.pcap" "$W/$c.t.pcap" "$K"); then
            pass "$c: bytes as traceanon -s -d -c (IPv6: oracle): $out"
        else
            fail "$c: bytes differ from traceanon's: $out"
        fi
        ;;
    esac
    if out=$("$PY" "$CHECK" fields "$W/$c.o.f" "$W/$c.m.f" "$ta" "$K"); then
        pass "$c: tshark addresses = oracle$([ "$ta" = - ] || echo ' = traceanon (IPv4)'): $out"
    else
        fail "$c: tshark addresses: $out"
    fi
    # The result counts the IP packets (tshark: packets with an address).
    want=$(grep -c '[^[:space:]]' "$W/$c.o.f" || true)
    if [ "$n" = "$want" ]; then
        pass "$c: ANONYMIZEIP result $n = IP packets"
    else
        fail "$c: ANONYMIZEIP result $n, tshark sees $want IP packets"
    fi
done
# Non-IP packets pass unchanged (QinQpacket holds ARP frames; traceanon does not decode QinQ).
if [ "$(tcpdump -r "$DATA/QinQpacket.pcap" -xx 'vlan and arp' 2>/dev/null | md5sum)" = \
    "$(tcpdump -r "$W/QinQpacket.m.pcap" -xx 'vlan and arp' 2>/dev/null | md5sum)" ] &&
    [ "$(tcpdump_count "$W/QinQpacket.m.pcap" 'vlan and arp')" -gt 0 ]; then
    pass "non-IP (ARP) frames pass unchanged"
else
    fail "non-IP (ARP) frames changed or missing"
fi

# 2. Prefix preservation.
for c in eth sll; do
    if out=$("$PY" "$CHECK" prefix "$W/$c.o.f" "$W/$c.m.f"); then
        pass "$c: $out"
    else
        fail "$c: $out"
    fi
done

# 3. Same key in two flows and two runs; another key.
rm -f "$W/two.0" "$W/two.1"
"$CPAN" -n 2 "$W/eth.pcap" "$W/two" -F ANONYMIZEIP "$K" >/dev/null || die "two flows"
if "$PY" "$CHECK" same "$W/two.0" "$W/eth.m.pcap" >/dev/null &&
    "$PY" "$CHECK" same "$W/two.1" "$W/eth.m.pcap" >/dev/null; then
    pass "same key: two flows at once and another run write the same packets"
else
    fail "same key, different output across flows or runs"
fi
anonip "$W/eth.pcap" "$W/other.pcap" "another key" >/dev/null
fields "$W/other.pcap" >"$W/other.f"
if out=$("$PY" "$CHECK" differ "$W/eth.o.f" "$W/eth.m.f" "$W/other.f"); then
    pass "another key maps every address elsewhere: $out"
else
    fail "another key: $out"
fi

# 4. Keys.
check_key()
{
    local what=$1 key=$2
    shift 2
    anonip "$DATA/weibo.pcap" "$W/key.m.pcap" "$key" >/dev/null
    tanon -s -d "$@" "$DATA/weibo.pcap" "$W/key.t.pcap"
    if out=$("$PY" "$CHECK" same "$W/key.m.pcap" "$W/key.t.pcap"); then
        pass "$what: the packets of traceanon -s -d $1 ($out)"
    else
        fail "$what: differs from traceanon -s -d $1"
    fi
}
LONGKEY="0123456789abcdefghijklmnopqrstuvwxyz-ABCDEF"
check_key "a 44-byte key" "$LONGKEY" -c "$LONGKEY"
check_key "key \"\" with a 32-byte anon_key_file" "" -f "$KEYFILE"
printf 'short text key\n' >"$W/text.key"
cp "$W/text.key" "$KEYFILE"
check_key "key \"\" with a text anon_key_file" "" -c "short text key"
: >"$KEYFILE"
expect_err()
{
    local what=$1 out
    rm -f "$W/err.pcap"
    out=$("$CPAN" "$DATA/weibo.pcap" "$W/err.pcap" -F ANONYMIZEIP "")
    case $out in
    "ERR ANONYMIZEIP 7001"*) pass "$what: $out" ;;
    *) fail "$what: expected 7001, got: $out" ;;
    esac
}
expect_err "empty anon_key_file"
rm -f "$KEYFILE"
expect_err "missing anon_key_file"
stop_mapid cpan
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
ANON_KEY_FILE=
start_mapid nokey
expect_err "no anon_key_file in mapi.conf"

# 5. anonflib's ANONYMIZE PREFIX_PRESERVING.
if [ "$HAVE_ANONFLIB" = 1 ]; then
    for c in eth sll; do
        rm -f "$W/pp.pcap"
        out=$("$CPAN" "$W/$c.pcap" "$W/pp.pcap" -F ANONYMIZE "IP,SRC_IP,PREFIX_PRESERVING,$K" \
            -F ANONYMIZE "IP,DST_IP,PREFIX_PRESERVING,$K") || true
        case $out in
        done)
            fields "$W/pp.pcap" >"$W/pp.f"
            ta=$W/$c.t.f
            if out=$("$PY" "$CHECK" fields "$W/$c.o.f" "$W/pp.f" "$ta" "$K" 1); then
                pass "$c: ANONYMIZE PREFIX_PRESERVING = traceanon (IPv4) = oracle: $out"
            else
                fail "$c: ANONYMIZE PREFIX_PRESERVING: $out"
            fi
            ;;
        *) fail "$c: ANONYMIZE PREFIX_PRESERVING failed: $out" ;;
        esac
    done
else
    echo "note: anonflib.so not built: ANONYMIZE PREFIX_PRESERVING not checked"
fi

stop_mapid nokey
finish
