#!/usr/bin/env bash
# bench/deps.sh - checks (and as root on Debian, installs) the tools the benchmarks compare
# MAPI with or need: hyperfine (timing), tcpdump, libtrace-tools (tracestats), ngrep,
# wireshark-common (mergecap, capinfos: building the real-capture trace), tcpreplay (the live
# workload) and python3 (bench/pcapscan.py, reading hyperfine's JSON).
#
# Usage: bench/deps.sh
# As root with apt-get, missing packages are installed noninteractively (after an apt-get
# update if the first attempt fails). Otherwise missing packages are listed and the exit
# status is 1.
set -eu

pkgs="hyperfine tcpdump libtrace-tools ngrep wireshark-common tcpreplay python3"

# cmd_of PKG: a command that the package provides.
cmd_of()
{
    case $1 in
    libtrace-tools) echo tracestats ;;
    wireshark-common) echo mergecap ;;
    *) echo "$1" ;;
    esac
}

missing=""
for p in $pkgs; do
    command -v "$(cmd_of "$p")" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench/deps.sh: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086 # one word per package
    if ! apt-get install -y $missing >&2; then
        apt-get update >&2
        # shellcheck disable=SC2086
        apt-get install -y $missing >&2
    fi
    exit 0
fi
echo "bench/deps.sh: missing packages:$missing" >&2
echo "install them with:  sudo apt-get install$missing" >&2
exit 1
