#!/usr/bin/env python3
"""bench/pcapscan.py - an independent oracle for the benchmarks: scans a classic pcap file
(micro- or nanosecond, either byte order; "-" reads standard input, e.g. tcpdump -w - output)
and prints, one per line:

    packets N
    bytes B        (sum of the records' wire lengths)
    captured C     (sum of caplen)
    string S M     (frames whose captured bytes contain S, for each -s S)

Usage: pcapscan.py [-s STRING]... FILE|-

It shares no code with mapid or the benchmark clients, so the harness can check their
answers (and ngrep's) against it on traces for which the generator's expected counts do not
apply (the real captures, or a subset of the generated trace).
"""
import struct
import sys


def main():
    args = sys.argv[1:]
    strings = []
    while len(args) >= 2 and args[0] == "-s":
        strings.append(args[1].encode())
        args = args[2:]
    if len(args) != 1:
        sys.stderr.write("usage: pcapscan.py [-s STRING]... FILE|-\n")
        return 2
    f = sys.stdin.buffer if args[0] == "-" else open(args[0], "rb")
    ghdr = f.read(24)
    if len(ghdr) != 24:
        sys.stderr.write("pcapscan.py: no pcap header\n")
        return 1
    magic = struct.unpack("<I", ghdr[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        rec = struct.Struct("<IIII")
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        rec = struct.Struct(">IIII")
    else:
        sys.stderr.write("pcapscan.py: not a classic pcap file\n")
        return 1
    pkts = wire = captured = 0
    found = [0] * len(strings)
    while True:
        hdr = f.read(16)
        if not hdr:
            break
        if len(hdr) != 16:
            sys.stderr.write("pcapscan.py: truncated record header\n")
            return 1
        _, _, caplen, length = rec.unpack(hdr)
        data = f.read(caplen)
        if len(data) != caplen:
            sys.stderr.write("pcapscan.py: truncated record\n")
            return 1
        pkts += 1
        wire += length
        captured += caplen
        for i, s in enumerate(strings):
            if s in data:
                found[i] += 1
    print("packets %d" % pkts)
    print("bytes %d" % wire)
    print("captured %d" % captured)
    for s, n in zip(strings, found):
        print("string %s %d" % (s.decode(), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
