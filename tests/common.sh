# shellcheck shell=bash
# tests/common.sh - helpers sourced by the integration tests (tests/test_*.sh).
#
# A test script calls `common_init "$@"` with the build and source directories. That sets
#   BUILD, SRC   the directories          DATA   tests/data of the source tree
#   TMPD         a private temp directory, removed at exit
#   MAPID        the mapid binary         TBIN   the test programs (build/tests)
#   PY           the python3 to use
# and installs an EXIT trap that stops every mapid started by start_mapid and every process
# registered with track_pid, then removes TMPD (and runs the commands in CLEANUP_CMDS).
#
# write_conf (used by start_mapid) loads the function libraries named by $MAPI_LIBS
# (default stdflib.so) and, when $ANON_KEY_FILE is set, gives it as anon_key_file.
# start_mapid NAME [EXTRA_CONF_TEXT] starts a private mapid with the configuration
# $TMPD/NAME.conf and the socket $TMPD/NAME.sock, exports MAPI_CONF for the clients, and waits
# up to 10 s for the socket to accept connections. stop_mapid NAME sends SIGTERM and checks a
# clean exit (status 0, socket file removed).
# wait_ready FILE PID waits for the "ready" line of a test client started in the background.

# Directory layout of the build (see the top-level CMakeLists.txt).
common_init()
{
    if [ $# -lt 2 ]; then
        echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
        exit 2
    fi
    # The variables below are used by the scripts that source this file.
    # shellcheck disable=SC2034
    BUILD=$(cd "$1" && pwd)
    SRC=$(cd "$2" && pwd)
    # shellcheck disable=SC2034
    DATA=$SRC/tests/data
    MAPID=$BUILD/mapid
    # shellcheck disable=SC2034
    TBIN=$BUILD/tests
    TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mapitest.XXXXXX")
    chmod 755 "$TMPD"
    MAPID_NAMES=""
    TRACKED_PIDS=""
    CLEANUP_CMDS=""
    FAILURES=0
    # The system's python3 (a version manager's shim in PATH can take 0.3 s per start).
    PY=python3
    if [ -x /usr/bin/python3 ]; then
        PY=/usr/bin/python3
    fi
    # Sanitizer builds: report leaks and errors as failures, keep the output readable.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    trap common_cleanup EXIT
    trap 'exit 130' INT TERM
    for b in "$MAPID" "$BUILD/flib/stdflib.so"; do
        if [ ! -e "$b" ]; then
            echo "missing $b: build first" >&2
            exit 2
        fi
    done
}

common_cleanup()
{
    local rc=$?
    local p n
    set +e
    for p in $TRACKED_PIDS; do
        kill -KILL "$p" 2>/dev/null
    done
    for n in $MAPID_NAMES; do
        p=$(cat "$TMPD/$n.pid" 2>/dev/null)
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
            for _ in $(seq 50); do
                kill -0 "$p" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$p" 2>/dev/null
        fi
    done
    if [ -n "$CLEANUP_CMDS" ]; then
        eval "$CLEANUP_CMDS"
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        for n in $MAPID_NAMES; do
            if [ -s "$TMPD/$n.out" ]; then
                echo "---- output of mapid $n (last 30 lines) ----"
                tail -n 30 "$TMPD/$n.out"
            fi
        done
    fi
    rm -rf "$TMPD"
    exit "$rc"
}

track_pid()
{
    TRACKED_PIDS="$TRACKED_PIDS $1"
}

# Prints a message and counts a failure; the script decides when to stop (see finish).
fail()
{
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

pass()
{
    echo "ok:   $*"
}

die()
{
    echo "FAIL: $*"
    exit 1
}

# Exits with the verdict of the whole script.
finish()
{
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}

# write_conf NAME [EXTRA_TEXT]: writes $TMPD/NAME.conf (EXTRA_TEXT is appended verbatim, after
# the [format] sections). $BUFFER_SIZE, if set, is the TO_BUFFER ring size (default 4M);
# $GLOBALS, if set, holds more global key=value lines (written before the first section).
write_conf()
{
    local name=$1 extra=${2:-}
    {
        echo "# private configuration of a test mapid"
        echo "libpath=$BUILD/flib"
        echo "libs=${MAPI_LIBS:-stdflib.so}"
        if [ -n "${ANON_KEY_FILE:-}" ]; then
            echo "anon_key_file=$ANON_KEY_FILE"
        fi
        echo "socket=$TMPD/$name.sock"
        echo "logfile=$TMPD/$name.log"
        echo "syslog_level=0"
        echo "buffer_size=${BUFFER_SIZE:-4M}"
        if [ -n "${GLOBALS:-}" ]; then
            # A test's own global keys (limits, ...): before the first section.
            printf '%s\n' "$GLOBALS"
        fi
        if [ "$(id -u)" -eq 0 ]; then
            # Lets the unprivileged client of the permission tests reach the socket.
            echo "socket_group=nogroup"
        fi
        echo "[format]"
        echo "format=MFF_PCAP"
        echo "driver=mapinicdrv.so"
        echo "[format]"
        echo "format=MFF_DAG_ERF"
        echo "driver=mapinicdrv.so"
        if [ -n "$extra" ]; then
            printf '%s\n' "$extra"
        fi
    } >"$TMPD/$name.conf"
    chmod 644 "$TMPD/$name.conf"
}

# sock_ready PATH: true if a Unix stream socket accepts a connection at PATH.
sock_ready()
{
    "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(1)
s.close()
' "$1"
}

# start_mapid NAME [EXTRA_CONF_TEXT] [PREFIX_CMD...]: see the file comment. PREFIX_CMD (e.g.
# "ip netns exec NS") runs mapid inside something else.
start_mapid()
{
    local name=$1 extra=${2:-}
    shift
    [ $# -gt 0 ] && shift
    write_conf "$name" "$extra"
    "$@" "$MAPID" -c "$TMPD/$name.conf" >"$TMPD/$name.out" 2>&1 &
    echo $! >"$TMPD/$name.pid"
    MAPID_NAMES="$MAPID_NAMES $name"
    export MAPI_CONF="$TMPD/$name.conf"
    local pid i
    pid=$(cat "$TMPD/$name.pid")
    for i in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$TMPD/$name.out"
            die "mapid $name exited during start-up"
        fi
        if [ -S "$TMPD/$name.sock" ] && sock_ready "$TMPD/$name.sock"; then
            return 0
        fi
        [ "$i" -eq 200 ] || sleep 0.05
    done
    die "mapid $name did not accept connections within 10 s"
}

# wait_ready FILE PID: waits up to 10 s for the line "ready" in FILE, which a test client
# (mapi_count -w, mapi_hold hold, ...) writes when it is set up; false at once if PID exits.
wait_ready()
{
    local i
    for i in $(seq 200); do
        if grep -qx ready "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        [ "$i" -eq 200 ] || sleep 0.05
    done
    return 1
}

mapid_pid()
{
    cat "$TMPD/$1.pid"
}

mapid_alive()
{
    kill -0 "$(mapid_pid "$1")" 2>/dev/null
}

# stop_mapid NAME: SIGTERM, then checks exit status 0 within 10 s and that the socket is gone.
stop_mapid()
{
    local name=$1 pid rc=0 i
    pid=$(mapid_pid "$name")
    kill -TERM "$pid" 2>/dev/null || {
        fail "mapid $name was not running at the end"
        return 0
    }
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        fail "mapid $name did not stop within 10 s of SIGTERM"
        return 0
    fi
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "mapid $name exited with status $rc after SIGTERM"
        tail -n 30 "$TMPD/$name.out"
    else
        pass "mapid $name stopped cleanly"
    fi
    if [ -e "$TMPD/$name.sock" ]; then
        fail "mapid $name left its socket file behind"
    fi
    local rest="" n
    for n in $MAPID_NAMES; do
        [ "$n" = "$name" ] || rest="$rest $n"
    done
    MAPID_NAMES=$rest
}

# Oracles --------------------------------------------------------------------------------

# tcpdump_count FILE FILTER: number of packets tcpdump matches, or "ERR" if it rejects FILTER.
tcpdump_count()
{
    local out
    if ! out=$(tcpdump -r "$1" --count "$2" 2>/dev/null); then
        echo ERR
        return 0
    fi
    echo "$out" | awk '/packets?$/ { n = $1 } END { print (n == "" ? "ERR" : n) }'
}

# wire_bytes FILE FILTER: sum of the wire lengths (frame.len) of the packets tcpdump matches.
wire_bytes()
{
    tcpdump -r "$1" -w - "$2" 2>/dev/null | tshark -r - -T fields -e frame.len 2>/dev/null |
        awk '{ s += $1 } END { printf "%d\n", s }'
}

# link_type FILE: libpcap's name of the link type (EN10MB, LINUX_SLL, ...).
link_type()
{
    tcpdump -r "$1" -c 1 2>&1 >/dev/null | sed -n 's/.*link-type \([^ ]*\) .*/\1/p' | head -n 1
}

# to_erf IN OUT: converts a pcap to an uncompressed ERF file (traceconvert writes gzip).
to_erf()
{
    traceconvert "pcapfile:$1" "erf:$2.gz" >/dev/null 2>&1 || return 1
    gzip -dc "$2.gz" >"$2" && rm -f "$2.gz"
}

# Hostile local users -------------------------------------------------------------------------

# make_user VAR: creates a throwaway unprivileged user with useradd (no home, no login shell,
# primary group nogroup, which the test mapid's socket_group is when run as root) and removes it
# with userdel at exit. Sets VAR to the user name, VAR_UID to its uid, and the array AS_VAR to
# the command prefix that runs a program as that user (setpriv). Names are unique per test run
# (mt<pid><n>), so tests running side by side never share a user. Exits 77 (skip) when not
# root or when useradd/setpriv are missing.
MADE_USERS=0
make_user()
{
    local var=$1 name
    if [ "$(id -u)" -ne 0 ] || ! command -v useradd >/dev/null || ! command -v setpriv >/dev/null; then
        echo "SKIP: creating test users needs root, useradd and setpriv"
        exit 77
    fi
    MADE_USERS=$((MADE_USERS + 1))
    name="mt$$x$MADE_USERS"
    useradd -M -N -g nogroup -s /usr/sbin/nologin -d /nonexistent "$name" ||
        die "useradd $name failed"
    CLEANUP_CMDS="$CLEANUP_CMDS
pkill -KILL -u $name 2>/dev/null; userdel $name 2>/dev/null"
    printf -v "$var" '%s' "$name"
    printf -v "${var}_UID" '%s' "$(id -u "$name")"
    eval "AS_$var=(setpriv --reuid=$name --regid=nogroup --init-groups)"
    # The programs and the test's files must be reachable by the new user.
    "setpriv" --reuid="$name" --regid=nogroup --init-groups test -x "$MAPID" ||
        die "user $name cannot reach the build directory $BUILD"
}

# raw_py USERPREFIX... -- SCRIPT ARGS...: runs a python3 script (text) that may
# `import mapiwire` (tests/mapiwire.py, a raw client of mapid's protocol), e.g.
#   raw_py "${AS_EVIL[@]}" -- "$SCRIPT" "$TMPD/x.sock"
raw_py()
{
    local pre=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        pre+=("$1")
        shift
    done
    shift
    local script=$1
    shift
    "${pre[@]}" env PYTHONPATH="$SRC/tests" "$PY" -c "$script" "$@"
}

# hostile_setup TRACE: the usual cast of an attack test: two throwaway users made with
# make_user, EVIL (the attacker) and VICTIM (who must keep getting exact results), the bundled
# weibo.pcap copied to $TMPD/TRACE readable by both, and WANT set to its packet count by the
# oracle (tcpdump). Skips (77) without tcpdump; dies if tcpdump cannot read the trace.
hostile_setup()
{
    command -v tcpdump >/dev/null || {
        echo "SKIP: tcpdump is needed as the oracle"
        exit 77
    }
    make_user EVIL
    make_user VICTIM
    cp "$DATA/weibo.pcap" "$TMPD/$1"
    chmod 644 "$TMPD/$1"
    WANT=$(tcpdump_count "$TMPD/$1" "")
    [ "$WANT" != ERR ] && [ "$WANT" -gt 0 ] || die "tcpdump cannot count $TMPD/$1"
}
