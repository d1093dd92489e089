#!/usr/bin/env bash
# scripts/deps.sh - checks (and as root on Debian, installs) what building and testing MAPI
# needs.
#
# Usage: scripts/deps.sh [--install] build|test|format
#   build   the build: cmake gcc make pkg-config libpcap-dev zlib1g-dev libssl-dev libpcre2-dev
#   test    the build plus the test oracles and tools: tcpdump tshark libtrace-tools python3
#           iproute2, openssl (test certificates), clang and libclang-rt-14-dev (libFuzzer)
#   format  clang-format
# Without --install, missing packages are listed and the exit status is 1. With --install and
# root on a system with apt-get, missing packages are installed (noninteractively).
set -eu

install=0
if [ "${1:-}" = "--install" ]; then
    install=1
    shift
fi
what=${1:-build}

case $what in
build) pkgs="cmake gcc make pkg-config libpcap-dev zlib1g-dev libssl-dev libpcre2-dev" ;;
test) pkgs="cmake gcc make pkg-config libpcap-dev zlib1g-dev libssl-dev libpcre2-dev tcpdump tshark libtrace-tools python3 iproute2 openssl clang libclang-rt-14-dev" ;;
format) pkgs="clang-format" ;;
*)
    echo "usage: $0 [--install] build|test|format" >&2
    exit 2
    ;;
esac

# has_pkg PKG: installed? dpkg where there is one, otherwise a command or file it provides.
has_pkg()
{
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
        return
    fi
    case $1 in
    libpcap-dev) pkg-config --exists libpcap 2>/dev/null ;;
    zlib1g-dev) pkg-config --exists zlib 2>/dev/null ;;
    libssl-dev) pkg-config --exists openssl 2>/dev/null ;;
    libpcre2-dev) pkg-config --exists libpcre2-8 2>/dev/null ;;
    libtrace-tools) command -v traceconvert >/dev/null 2>&1 ;;
    iproute2) command -v ip >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

missing=""
for p in $pkgs; do
    has_pkg "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    exit 0
fi

if [ "$install" -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; the default answer (no) is fine.
    # shellcheck disable=SC2086 # one word per package
    if ! apt-get install -y $missing; then
        apt-get update
        # shellcheck disable=SC2086
        apt-get install -y $missing
    fi
    exit 0
fi

echo "missing packages:$missing"
echo "install them with:  sudo apt-get install$missing"
exit 1
