#!/bin/bash
# scripts/tsan.sh - runs the threaded tests of a ThreadSanitizer build (make test-tsan) and
# fails on any ThreadSanitizer report, also one from a daemon (mapid, mapicommd) that a test
# started: every process writes its reports to BUILD/tsan-reports/report.PID
# (TSAN_OPTIONS log_path), which are summed up here after ctest. scripts/tsan.supp suppresses
# known races inside third-party libraries (OpenSSL), each with its reason.
#
# Usage: scripts/tsan.sh BUILD_DIR TEST_REGEX
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR TEST_REGEX" >&2
    exit 2
fi
B=$(cd "$1" && pwd)
REPORTS=$B/tsan-reports
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
chmod 1777 "$REPORTS" # the tests' unprivileged users write their reports here too
SUPP=$(cd "$(dirname "$0")" && pwd)/tsan.supp # third-party races only, each explained there
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1} suppressions=$SUPP log_path=$REPORTS/report"
(cd "$B" && ctest --output-on-failure -R "$2")
rc=$?
n=0
for f in "$REPORTS"/report.*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    echo "==== ThreadSanitizer report $(basename "$f")"
    grep -E "^(WARNING|SUMMARY): ThreadSanitizer" "$f" | sort | uniq -c
    head -n 60 "$f"
done
if [ "$n" -gt 0 ]; then
    echo "FAIL: $n process(es) wrote ThreadSanitizer reports (in $REPORTS)"
    exit 1
fi
[ $rc -eq 0 ] && echo "ThreadSanitizer: no report"
exit $rc
