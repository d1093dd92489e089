#!/usr/bin/env bash
# tests/test_devices_hostile.sh - trace devices against a hostile local user (issue 10, items
# 1, 3, 4; docs/security.md). An unprivileged user made by the test (EVIL) attacks
# mapid with a raw client (tests/devices_hostile.py, phases described there):
#  * device lifetime: DELETE_OFFLINE_DEVICE of an offline flow's device, closing the owning
#    flow under a second flow, the creator leaving or deleting the device under another
#    client's connected flow (used to be use-after-free / double free: mapid died);
#  * max_devices_per_user (default 16), over two connections: the 17th fails with 3085 (the
#    device parked by the stuck phase below counts: then the 16th fails);
#  * a pipe, a FIFO and a socket as traces: refused at once with 3203 (used to block mapid's
#    control thread); TO_FILE to a pipe: refused with 6155 (used to block the capture thread);
#  * a sparse pcap and a gzip bomb whose record claims 100 MiB: the trace ends as corrupt and
#    mapid's peak RSS (VmHWM) grows by less than 32 MiB (it used to grow by the claim);
#  * a capture thread stuck in a function (tests/testflib.c's STALL, 20 s): closing its flow
#    answers after device_stop's 2 s bound (the device is parked, an error logged), and
#    SIGTERM still stops mapid at once (it used to wait for the thread).
# After each phase mapid must be alive, and another unprivileged user (VICTIM) counts
# weibo.pcap with PKT_COUNTER exactly as tcpdump does.
#
# Usage: test_devices_hostile.sh BUILD_DIR SOURCE_DIR   (ONLY="phase ..." runs only those
# phases, e.g. to see each fail against an older mapid)
set -eu
# shellcheck source=tests/common.sh
. "$(dirname "$0")/common.sh"
common_init "$@"

hostile_setup trace.pcap
mkdir "$TMPD/evil"
chown "$EVIL" "$TMPD/evil"

MAPI_LIBS="stdflib.so:testflib.so" start_mapid devs ""
SOCK=$TMPD/devs.sock
PID=$(mapid_pid devs)
ATTACK=$(cat "$SRC/tests/devices_hostile.py")

# victim_counts LABEL: the victim's PKT_COUNTER on weibo.pcap equals tcpdump's count.
victim_counts()
{
    local got
    got=$(timeout 30 "${AS_VICTIM[@]}" "$TBIN/mapi_count" -t 20 "$TMPD/trace.pcap" pcap "" \
        2>"$TMPD/victim.err" | cut -f2) || true
    if [ "$got" = "$WANT" ]; then
        pass "$1: mapid alive, the victim counts $got packets as tcpdump does"
    else
        fail "$1: victim counted '$got', tcpdump $WANT ($(head -c 300 "$TMPD/victim.err"))"
    fi
}

# selected PHASE: whether PHASE is to run (all unless ONLY is set).
selected()
{
    case " ${ONLY:-$1} " in
    *" $1 "*) return 0 ;;
    esac
    return 1
}

# attack PHASE WANT_TEXT [ARGS...]: runs a phase as EVIL and compares its output.
attack()
{
    local phase=$1 want=$2
    shift 2
    selected "$phase" || return 0
    printf '%s\n' "$want" >"$TMPD/$phase.want"
    timeout 60 env -C "$TMPD/evil" "${AS_EVIL[@]}" env PYTHONPATH="$SRC/tests" "$PY" -c "$ATTACK" \
        "$phase" "$SOCK" "$TMPD/trace.pcap" "$TMPD/evil" "$@" >"$TMPD/$phase.got" \
        2>"$TMPD/$phase.err" || true
    if cmp -s "$TMPD/$phase.want" "$TMPD/$phase.got"; then
        pass "$phase: the attacker gets the documented answers"
    else
        fail "$phase (want | got):"
        diff "$TMPD/$phase.want" "$TMPD/$phase.got" || true
        tail -n 5 "$TMPD/$phase.err"
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
        die "mapid died during the $phase attack"
    fi
    victim_counts "$phase"
}

hwm_kb()
{
    awk '/^VmHWM/ { print $2 }' "/proc/$PID/status"
}

victim_counts baseline

attack delete "create_offline_flow OK
delete OK
close_after_delete ERR 6145
delete_again ERR 3202"

attack owning "create_offline_flow OK
second_flow OK
close_owning OK
apply_second OK
connect_second ERR 3202
close_second OK"

attack disconnect "leave_create_device OK
leave_other_flow OK
leave_apply OK
leave_connect OK
leave_start OK
leave_other_status 2
leave_close_other OK
delete_create_device OK
delete_other_flow OK
delete_apply OK
delete_connect OK
delete_start OK
delete_under_other OK
delete_other_status 2
delete_close_other OK"

attack stuck "create_offline_flow OK
stall OK
connect OK
close OK
close_quick OK
another_flow OK
counter OK
connect_another OK
another_finished 2"
! selected stuck || grep -q "did not stop within 2000 ms" "$TMPD/devs.log" ||
    fail "mapid's log does not name the stuck capture thread"

# The device parked above (its thread still stalls) counts towards max_devices_per_user.
MADE=16
! selected stuck || MADE=15
attack limit "devices_made $MADE
device17 ERR 3085
offline_flow17 ERR 3085
after_close OK"

attack pipe "pipe ERR 3203
pipe_quick OK
fifo ERR 3203
socket ERR 3203"
! selected pipe || grep -q "a pipe or FIFO is refused" "$TMPD/pipe.err" ||
    fail "the pipe's error message does not name the reason: $(cat "$TMPD/pipe.err")"

attack tofile "create_offline_flow OK
tofile_pipe ERR 6155
tofile_file OK
counter OK
connect OK
finished 2
close OK"
if selected tofile; then
    got=$(tcpdump -r "$TMPD/evil/out.pcap" --count 2>/dev/null | awk '{ print $1 }')
    if [ "$got" = "$WANT" ]; then
        pass "TO_FILE to a regular file still writes all $got packets"
    else
        fail "TO_FILE to a regular file wrote '$got' packets, want $WANT"
    fi
fi

# A sparse file: a valid first record, then one that claims 100 MiB; 128 MiB long, 4 KB on
# disk. And the same gzip-compressed (about 130 KB).
"$PY" - "$TMPD/evil/sparse.pcap" "$TMPD/evil/bomb.pcap.gz" <<'EOF'
import gzip, struct, sys
# snaplen 0xffffffff: mapid used to accept records up to 128 MiB from such a file
hdr = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 0xFFFFFFFF, 1)
rec1 = struct.pack("<IIII", 1, 0, 60, 60) + bytes(60)
big = 100 << 20
rec2 = struct.pack("<IIII", 2, 0, big, big)
with open(sys.argv[1], "wb") as f:
    f.write(hdr + rec1 + rec2)
    f.truncate(128 << 20)
with gzip.open(sys.argv[2], "wb", compresslevel=9) as f:
    f.write(hdr + rec1 + rec2)
    chunk = bytes(1 << 20)
    for _ in range(128):
        f.write(chunk)
EOF
chmod 644 "$TMPD/evil/sparse.pcap" "$TMPD/evil/bomb.pcap.gz"
before=$(hwm_kb)
attack bigrec "sparse.pcap OK
sparse.pcap_counter OK
sparse.pcap_connect OK
sparse.pcap_status 2
sparse.pcap_close OK
bomb.pcap.gz OK
bomb.pcap.gz_counter OK
bomb.pcap.gz_connect OK
bomb.pcap.gz_status 2
bomb.pcap.gz_close OK" "$TMPD/evil/sparse.pcap" "$TMPD/evil/bomb.pcap.gz"
after=$(hwm_kb)
selected bigrec || after=$before
echo "mapid VmHWM before the 100 MiB records: $before kB, after: $after kB"
if [ $((after - before)) -lt 32768 ]; then
    pass "records claiming 100 MiB did not grow mapid (peak RSS +$((after - before)) kB)"
else
    fail "records claiming 100 MiB grew mapid's peak RSS by $((after - before)) kB"
fi
! selected bigrec || grep -q "caplen 104857600 exceeds the limit 262144" "$TMPD/devs.log" ||
    fail "mapid's log does not name the corrupt record: $(grep -i corrupt "$TMPD/devs.log" | tail -2)"


t0=$(date +%s)
stop_mapid devs
t1=$(date +%s)
if [ $((t1 - t0)) -le 5 ]; then
    pass "SIGTERM stopped mapid in $((t1 - t0)) s with a capture thread stuck"
else
    fail "SIGTERM took $((t1 - t0)) s with a capture thread stuck"
fi
finish
