#!/usr/bin/env python3
# tests/oracle.py - the independent reference for the counting tests: what tcpdump selects.
#
# Usage: oracle.py FILE FILTER...
# For each FILTER prints "FILTER<TAB>packets<TAB>bytes", where packets is tcpdump's own count
# (`tcpdump -r FILE --count FILTER`) and bytes the sum of the wire lengths (the orig_len of
# every record, which is what tshark shows as frame.len) of the packets that
# `tcpdump -r FILE -w - FILTER` writes. A filter that tcpdump rejects prints "FILTER<TAB>ERR<TAB>-".
# With --tshark, the sum for the empty filter is also checked against
# `tshark -r FILE -T fields -e frame.len`, so the record parsing here is itself verified.
import struct
import subprocess
import sys


def tcpdump_count(path, flt):
    p = subprocess.run(["tcpdump", "-r", path, "--count", flt], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    for line in p.stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[1] in ("packet", "packets"):
            return int(words[0])
    return None


def tcpdump_wire_lengths(path, flt):
    p = subprocess.run(["tcpdump", "-r", path, "-w", "-", flt], capture_output=True)
    if p.returncode != 0:
        return None
    d = p.stdout
    if len(d) < 24:
        raise SystemExit("oracle: tcpdump wrote no pcap header for %r" % flt)
    magic = struct.unpack_from("<I", d, 0)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        end = ">"
    else:
        raise SystemExit("oracle: unexpected pcap magic %08x" % magic)
    off, lens = 24, []
    while off + 16 <= len(d):
        incl, orig = struct.unpack_from(end + "II", d, off + 8)
        lens.append(orig)
        off += 16 + incl
    if off != len(d):
        raise SystemExit("oracle: trailing bytes in tcpdump's output for %r" % flt)
    return lens


def main():
    args = sys.argv[1:]
    check_tshark = False
    if args and args[0] == "--tshark":
        check_tshark = True
        args = args[1:]
    if len(args) < 2:
        raise SystemExit("usage: oracle.py [--tshark] FILE FILTER...")
    path, filters = args[0], args[1:]
    for flt in filters:
        n = tcpdump_count(path, flt)
        if n is None:
            print("%s\tERR\t-" % flt)
            continue
        lens = tcpdump_wire_lengths(path, flt)
        if lens is None or len(lens) != n:
            raise SystemExit("oracle: tcpdump --count and tcpdump -w disagree on %r" % flt)
        print("%s\t%d\t%d" % (flt, n, sum(lens)))
        if check_tshark and flt == "":
            t = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.len"],
                               capture_output=True, text=True, check=True)
            tl = [int(x) for x in t.stdout.split()]
            if tl != lens:
                raise SystemExit("oracle: tshark's frame.len differ from the records of %s" % path)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
