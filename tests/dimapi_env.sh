# shellcheck shell=bash
# tests/dimapi_env.sh - shell helpers for DiMAPI test beds, sourced by tests/test_dimapi.sh and
# bench/dimapi.sh (root only: network namespaces).
#
# A test bed is a client namespace and N sensor namespaces. Sensor I (1..8; up to 99 works)
# is joined to the client namespace by a veth pair: "dcliI" (198.18.I.1/30, client side) and
# "dsenI" (198.18.I.2/30, sensor side). All addresses are in the benchmarking range
# 198.18.0.0/15, IPv6 is off in every namespace and ARP entries are static, so that nothing
# crosses a link but what the caller sends. Each sensor runs its own mapid (with a [driver]
# for dsenI, and optionally for a feed link "dfeedI" from a third namespace, see denv_feed)
# and one or more mapicommds. Certificates come from test CAs made with the openssl command.
#
# Usage:
#   . tests/dimapi_env.sh
#   denv_init WORKDIR BUILD_DIR TAG      TAG prefixes namespace names (e.g. mapitest-$$)
#   call denv_cleanup from the caller's EXIT trap (kills what was started, deletes namespaces)
#   denv_ca NAME                         -> WORKDIR/NAME.pem, NAME.key (a CA)
#   denv_cert CA NAME server|client SAN  -> WORKDIR/NAME.pem, NAME.key signed by CA
#                                          (SAN e.g. "IP:198.18.1.2,DNS:sensor1")
#   denv_client_ns                       -> $DENV_CNS, the client namespace
#   denv_sensor I                        -> namespace $(denv_ns I), link dcliI <-> dsenI
#   denv_feed I                          -> namespace $(denv_feed_ns I), link dfdI (198.18.(100+I).1)
#                                           <-> dfeedI (198.18.(100+I).2) in sensor I
#   denv_mapid I [DEVICES] [EXTRA]       -> mapid of sensor I (config WORKDIR/sI.conf, devices
#                                           default "dsenI", "DEV@SIZE" sets its ring_size;
#                                           EXTRA: global keys); waits for its socket
#   denv_mapicommd I NAME PORT [EXTRA]   -> a mapicommd of sensor I on PORT, configuration
#                                           WORKDIR/sI-NAME.conf = mapid's keys + the
#                                           TLS keys of WORKDIR/sensorI.pem/.key and client CA
#                                           WORKDIR/ca.pem + EXTRA (e.g. dimapi_plaintext=1);
#                                           waits until it listens; its pid in
#                                           WORKDIR/sI-NAME.pid, output in sI-NAME.out
#   denv_client_conf NAME [CA [CERT [EXTRA]]] -> WORKDIR/NAME.conf for libmapi in the client
#                                           namespace (CA, client cert, timeout) + EXTRA
#   denv_in_client CMD...                -> runs CMD in the client namespace
#   denv_kill_pid PID / denv_track PID / denv_untrack PID
# As root, mapicommd runs with -u nobody (so the key files are made world-readable: test only).
# Variables: DENV_DIR, DENV_BUILD, DENV_TAG, DENV_CNS, DENV_PIDS, DENV_NETNS, DENV_PY.

denv_init()
{
    DENV_DIR=$1
    DENV_BUILD=$2
    DENV_TAG=$3
    DENV_PIDS=""
    DENV_NETNS=""
    DENV_CNS=""
    DENV_PY=python3
    if [ -x /usr/bin/python3 ]; then
        DENV_PY=/usr/bin/python3
    fi
    DENV_MAPICOMMD=$DENV_BUILD/mapicommd
}

denv_track()
{
    DENV_PIDS="$DENV_PIDS $1"
}

# denv_untrack PID: forgets PID (it has been waited for).
denv_untrack()
{
    local p rest=""
    for p in $DENV_PIDS; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    DENV_PIDS=$rest
}

# Kills every process started here (TERM, then KILL after 2 s) and deletes the namespaces.
denv_cleanup()
{
    local p ns
    for p in $DENV_PIDS; do
        kill -TERM "$p" 2>/dev/null
        kill -CONT "$p" 2>/dev/null
    done
    for p in $DENV_PIDS; do
        for _ in $(seq 20); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
    done
    for ns in $DENV_NETNS; do
        ip netns del "$ns" 2>/dev/null
    done
    DENV_PIDS=""
    DENV_NETNS=""
    return 0
}

# denv_kill_pid PID: SIGKILL and reap (if it is our child).
denv_kill_pid()
{
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null || true
    denv_untrack "$1"
    return 0
}

# ---- certificates ------------------------------------------------------------------------

# denv_ca NAME: a self-signed CA (EC P-256, 30 days).
denv_ca()
{
    local d=$DENV_DIR
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/$1.key" -out "$d/$1.pem" -days 30 -subj "/CN=MAPI test CA $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>"$d/openssl.err" ||
        { cat "$d/openssl.err" >&2; return 1; }
}

# denv_cert CA NAME server|client SAN: a certificate signed by CA.
denv_cert()
{
    local d=$DENV_DIR ca=$1 name=$2 kind=$3 san=$4 eku=serverAuth
    if [ "$kind" = client ]; then
        eku=clientAuth
    fi
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$eku" "$san" >"$d/$name.ext"
    if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$name" >/dev/null 2>"$d/openssl.err" ||
        ! openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
            -CAcreateserial -days 30 -extfile "$d/$name.ext" -out "$d/$name.pem" \
            >/dev/null 2>"$d/openssl.err"; then
        cat "$d/openssl.err" >&2
        return 1
    fi
    chmod 644 "$d/$name.key" "$d/$name.pem"
}

# ---- namespaces ----------------------------------------------------------------------------

denv_ns()
{
    echo "$DENV_TAG-s$1"
}

denv_feed_ns()
{
    echo "$DENV_TAG-f$1"
}

denv_sensor_ip()
{
    echo "198.18.$1.2"
}

# denv_newns NAME: a namespace with lo up, IPv6 and forwarding off.
denv_newns()
{
    ip netns add "$1" || return 1
    DENV_NETNS="$DENV_NETNS $1"
    ip netns exec "$1" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$1" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$1" sysctl -q -w net.ipv4.ip_forward=0
    ip -n "$1" link set lo up
}

denv_client_ns()
{
    DENV_CNS=$DENV_TAG-c
    denv_newns "$DENV_CNS"
}

# denv_link NS_A IF_A ADDR_A NS_B IF_B ADDR_B MAC_A MAC_B: a /30 veth pair with static ARP.
denv_link()
{
    local na=$1 ia=$2 aa=$3 nb=$4 ib=$5 ab=$6 ma=$7 mb=$8
    ip -n "$na" link add "$ia" address "$ma" type veth peer name "$ib" address "$mb" netns "$nb" ||
        return 1
    ip -n "$na" addr add "$aa/30" dev "$ia"
    ip -n "$nb" addr add "$ab/30" dev "$ib"
    ip -n "$na" neigh add "$ab" lladdr "$mb" dev "$ia" nud permanent
    ip -n "$nb" neigh add "$aa" lladdr "$ma" dev "$ib" nud permanent
    ip -n "$na" link set "$ia" up
    ip -n "$nb" link set "$ib" up
}

# denv_sensor I: sensor namespace I and its link to the client namespace.
denv_sensor()
{
    local i=$1 ns
    ns=$(denv_ns "$i")
    denv_newns "$ns" || return 1
    denv_link "$DENV_CNS" "dcli$i" "198.18.$i.1" "$ns" "dsen$i" "198.18.$i.2" \
        "$(printf '02:00:5e:12:%02x:01' "$i")" "$(printf '02:00:5e:12:%02x:02' "$i")"
}

# denv_feed I: a feeder namespace whose link ends in sensor I as "dfeedI".
denv_feed()
{
    local i=$1 ns
    ns=$(denv_feed_ns "$i")
    denv_newns "$ns" || return 1
    denv_link "$ns" "dfd$i" "198.18.$((100 + i)).1" "$(denv_ns "$i")" "dfeed$i" \
        "198.18.$((100 + i)).2" "$(printf '02:00:5e:13:%02x:01' "$i")" \
        "$(printf '02:00:5e:13:%02x:02' "$i")"
}

denv_in_client()
{
    ip netns exec "$DENV_CNS" "$@"
}

# ---- daemons -------------------------------------------------------------------------------

# denv_wait SECONDS CMD...: true as soon as CMD succeeds, false after SECONDS.
denv_wait()
{
    local n=$(($1 * 20))
    shift
    for _ in $(seq "$n"); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

denv_sock_ready()
{
    [ -S "$1" ] && "$DENV_PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(1)
' "$1"
}

# denv_mapid_conf I DEVICES EXTRA: mapid's keys (global keys before any section).
denv_mapid_conf()
{
    local i=$1 devs=$2 extra=$3 dev
    echo "# sensor $i of a DiMAPI test bed (tests/dimapi_env.sh)"
    echo "libpath=$DENV_BUILD/flib"
    echo "libs=stdflib.so"
    echo "socket=$DENV_DIR/s$i.sock"
    echo "logfile=$DENV_DIR/s$i.log"
    echo "syslog_level=0"
    if [ "$(id -u)" -eq 0 ]; then
        echo "socket_group=nogroup"
    fi
    if [ -n "$extra" ]; then
        printf '%s\n' "$extra"
    fi
}

# denv_mapid_devices "DEV[@RING_SIZE] ...": the [driver] sections.
denv_mapid_devices()
{
    local dev
    for dev in $1; do
        printf '[driver]\ndevice=%s\ndriver=mapinicdrv.so\npromisc=1\n' "${dev%@*}"
        case $dev in
        *@*) printf 'ring_size=%s\n' "${dev#*@}" ;;
        esac
    done
}

# denv_mapid I [DEVICES] [EXTRA]: starts sensor I's mapid and waits for its socket (10 s).
denv_mapid()
{
    local i=$1 devs=${2:-dsen$1} extra=${3:-} ns pid
    ns=$(denv_ns "$i")
    {
        denv_mapid_conf "$i" "$devs" "$extra"
        denv_mapid_devices "$devs"
    } >"$DENV_DIR/s$i.conf"
    chmod 644 "$DENV_DIR/s$i.conf"
    ip netns exec "$ns" "$DENV_BUILD/mapid" -c "$DENV_DIR/s$i.conf" >"$DENV_DIR/s$i.out" 2>&1 &
    pid=$!
    echo "$pid" >"$DENV_DIR/s$i.pid"
    denv_track "$pid"
    if ! denv_wait 10 denv_sock_ready "$DENV_DIR/s$i.sock"; then
        echo "mapid of sensor $i did not start: $(tail -n 5 "$DENV_DIR/s$i.out")" >&2
        return 1
    fi
}

denv_listening()
{
    [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]
}

# denv_mapicommd I NAME PORT [EXTRA]: starts a mapicommd in sensor I (see the file comment).
denv_mapicommd()
{
    local i=$1 name=$2 port=$3 extra=${4:-} ns conf pid
    ns=$(denv_ns "$i")
    conf=$DENV_DIR/s$i-$name.conf
    {
        denv_mapid_conf "$i" "" "dimapi_port=$port
dimapi_cert=$DENV_DIR/sensor$i.pem
dimapi_key=$DENV_DIR/sensor$i.key
dimapi_client_ca=$DENV_DIR/ca.pem
dimapi_idle_timeout=5000
$extra"
        denv_mapid_devices "dsen$i"
    } >"$conf"
    chmod 644 "$conf"
    local user=()
    if [ "$(id -u)" -eq 0 ]; then
        user=(-u nobody)
    fi
    ip netns exec "$ns" "$DENV_MAPICOMMD" -c "$conf" "${user[@]}" \
        >"$DENV_DIR/s$i-$name.out" 2>&1 &
    pid=$!
    echo "$pid" >"$DENV_DIR/s$i-$name.pid"
    denv_track "$pid"
    local n
    for n in $(seq 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "mapicommd $name of sensor $i exited: $(tail -n 5 "$DENV_DIR/s$i-$name.out")" >&2
            return 1
        fi
        denv_listening "$ns" "$port" && return 0
        [ "$n" -eq 200 ] || sleep 0.05
    done
    echo "mapicommd $name of sensor $i does not listen on $port after 10 s" >&2
    return 1
}

# denv_client_conf NAME [CA [CLIENT_CERT [EXTRA]]]: libmapi's configuration for the client
# namespace: WORKDIR/NAME.conf trusting WORKDIR/CA.pem (default ca), presenting
# WORKDIR/CLIENT_CERT.pem/.key (default client; "-" presents none), dimapi_timeout=3000, EXTRA.
denv_client_conf()
{
    local name=$1 ca=${2:-ca} cert=${3:-client} extra=${4:-}
    {
        echo "# DiMAPI client of a test bed (tests/dimapi_env.sh)"
        echo "libpath=$DENV_BUILD/flib"
        echo "libs=stdflib.so"
        echo "socket=$DENV_DIR/client-nomapid.sock"
        echo "dimapi_ca=$DENV_DIR/$ca.pem"
        if [ "$cert" != - ]; then
            echo "dimapi_client_cert=$DENV_DIR/$cert.pem"
            echo "dimapi_client_key=$DENV_DIR/$cert.key"
        fi
        echo "dimapi_timeout=3000"
        if [ -n "$extra" ]; then
            printf '%s\n' "$extra"
        fi
    } >"$DENV_DIR/$name.conf"
    chmod 644 "$DENV_DIR/$name.conf"
}
