#!/usr/bin/env bash
# tests/test_anon_key_group.sh - the site key (mapi.conf's anon_key_file) is a permission
# (issue 10, item 16): anyone who may anonymise chosen addresses with it can invert traces
# anonymised with it. mapid is configured with a random key file and anon_key_group=<a group
# made by the test>. Users made by the test (make_user, useradd/userdel):
#   EVIL     not in the group: every way of asking for the site key is refused at apply time
#            with the key's error (ANONYMIZE PREFIX_PRESERVING and HASHED,AES without a key:
#            7004; extraflib's ANONYMIZEIP "": 7001), the message naming anon_key_group; with a
#            key of its own the same rule works;
#   MEMBER   in the group (supplementary, usermod -aG): PREFIX_PRESERVING without a key works
#            and gives the IPv4 addresses of `traceanon -s -d -f KEYFILE` (libtrace: the oracle);
#   root     always allowed, same addresses;
#   VICTIM   another user whose PKT_COUNTER on weibo.pcap must equal tcpdump's afterwards.
# mapid must survive all of it.
#
# Usage: test_anon_key_group.sh BUILD_DIR SOURCE_DIR
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

for b in "$BUILD/flib/anonflib.so" "$BUILD/flib/extraflib.so"; do
    [ -e "$b" ] || die "missing $b"
done
for t in traceanon tshark groupadd usermod; do
    command -v "$t" >/dev/null || {
        echo "SKIP: $t is not installed"
        exit 77
    }
done
make_user EVIL
make_user MEMBER
make_user VICTIM
GROUP=mtg$$
groupadd "$GROUP" || die "groupadd $GROUP failed"
CLEANUP_CMDS="$CLEANUP_CMDS
groupdel $GROUP 2>/dev/null"
usermod -aG "$GROUP" "$MEMBER" || die "usermod -aG $GROUP $MEMBER failed"

cp "$DATA/weibo.pcap" "$TMPD/weibo.pcap"
chmod 644 "$TMPD/weibo.pcap"
mkdir -m 777 "$TMPD/out"
WANT=$(tcpdump_count "$TMPD/weibo.pcap" "")

# A random raw key without NUL bytes, readable by root only (mapid reads it).
head -c 256 /dev/urandom | tr -d '\000' | head -c 32 >"$TMPD/site.key"
chmod 600 "$TMPD/site.key"
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
ANON_KEY_FILE=$TMPD/site.key
# shellcheck disable=SC2034 # read by write_conf (tests/common.sh)
MAPI_LIBS=stdflib.so:anonflib.so:extraflib.so
# with_group CMD...: puts anon_key_group before the first section of mapid's configuration (the
# last argument), then runs CMD.
# shellcheck disable=SC2317 # called indirectly, by start_mapid
with_group()
{
    local conf=${!#}
    awk -v g="anon_key_group=$GROUP" '!done && /^\[/ { print g; done = 1 } { print }' "$conf" \
        >"$conf.new"
    mv "$conf.new" "$conf"
    chmod 644 "$conf"
    exec "$@"
}
start_mapid kg "" with_group
grep -qx "anon_key_group=$GROUP" "$TMPD/kg.conf" || die "the test's mapi.conf lacks anon_key_group"

# anon USER OUT ITEM...: mapi_anontest on weibo.pcap as USER ("root" or a made user).
anon()
{
    local who=$1 out=$2
    shift 2
    if [ "$who" = root ]; then
        "$TBIN/mapi_anontest" "$TMPD/weibo.pcap" "$TMPD/out/$out" "$@" 2>&1 || true
    else
        # shellcheck disable=SC2178 # a nameref to the array AS_<who> of make_user
        local -n pre="AS_$who"
        "${pre[@]}" "$TBIN/mapi_anontest" "$TMPD/weibo.pcap" "$TMPD/out/$out" "$@" 2>&1 || true
    fi
}

# refused WHAT WANT_CODE OUTPUT: OUTPUT must be "ERR 1 CODE ..." naming anon_key_group.
refused()
{
    local what=$1 code=$2 out=$3
    case "$out" in
    "ERR 1 $code "*anon_key_group*) pass "$what: refused with $code naming anon_key_group" ;;
    *) fail "$what: got '$out', expected ERR 1 $code ... anon_key_group" ;;
    esac
}

refused "EVIL: PREFIX_PRESERVING with the site key" 7004 \
    "$(anon EVIL e1.pcap "IP,SRC_IP,PREFIX_PRESERVING")"
refused "EVIL: HASHED,AES with the site key" 7004 "$(anon EVIL e2.pcap "TCP,PAYLOAD,HASHED,AES")"
refused "EVIL: ANONYMIZEIP with the site key" 7001 "$(anon EVIL e3.pcap "=ANONYMIZEIP:")"
got=$(anon EVIL e4.pcap "IP,SRC_IP,PREFIX_PRESERVING,my own key")
if [ "$got" = "ok $WANT" ]; then
    pass "EVIL: PREFIX_PRESERVING with a key of its own works"
else
    fail "EVIL with its own key: got '$got'"
fi

# The oracle: traceanon with the same key file, IPv4 addresses compared with tshark.
traceanon -s -d -f "$TMPD/site.key" "pcapfile:$TMPD/weibo.pcap" "pcapfile:$TMPD/ta.pcap" \
    >/dev/null 2>&1 || die "traceanon failed"
addrs()
{
    tshark -r "$1" -T fields -e ip.src -e ip.dst 2>/dev/null
}
addrs "$TMPD/ta.pcap" >"$TMPD/ta.txt"
addrs "$TMPD/weibo.pcap" >"$TMPD/orig.txt"
cmp -s "$TMPD/ta.txt" "$TMPD/orig.txt" && die "traceanon left the addresses alone"
for who in MEMBER root; do
    got=$(anon "$who" "$who.pcap" "IP,SRC_IP,PREFIX_PRESERVING" "IP,DST_IP,PREFIX_PRESERVING")
    if [ "$got" != "ok $WANT" ]; then
        fail "$who: PREFIX_PRESERVING with the site key: got '$got'"
        continue
    fi
    addrs "$TMPD/out/$who.pcap" >"$TMPD/$who.txt"
    if cmp -s "$TMPD/$who.txt" "$TMPD/ta.txt"; then
        pass "$who: the site key is allowed; addresses equal traceanon -s -d -f's ($(wc -l <"$TMPD/ta.txt") packets)"
    else
        fail "$who: addresses differ from traceanon -s -d -f's"
    fi
done

got=$("${AS_VICTIM[@]}" env MAPI_CONF="$TMPD/kg.conf" "$TBIN/mapi_count" -t 30 \
    "$TMPD/weibo.pcap" pcap "" 2>&1 | awk -F '\t' '{ print $2 }') || true
if [ "$got" = "$WANT" ]; then
    pass "mapid still serves VICTIM: PKT_COUNTER $got = tcpdump's $WANT"
else
    fail "VICTIM's PKT_COUNTER is '$got', tcpdump counts $WANT"
fi
mapid_alive kg || die "mapid died"
stop_mapid kg
finish
