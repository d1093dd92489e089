#!/usr/bin/env python3
"""tests/fuzz/gen_mapid_msg_corpus.py - writes the seed corpus of tests/fuzz/mapid_msg_fuzz.c
(mapid's request decoder) into a directory (default tests/fuzz/corpus/mapid_msg, where its
output is committed): one valid message of every request type of common/wire.h, APPLY_FUNCTION
with every argument letter, a whole client session, and truncated and malformed variants
(trailing bytes, too long or NUL-bearing strings, unknown letters, too many arguments, 'w'
index out of range, unknown type, the error flag). Each file is a stream of messages
(16-byte header + payload), as mapid reads a connection.

Usage: gen_mapid_msg_corpus.py [DIR]
"""
import os
import struct
import sys

MAGIC = 0x4D415049
(HELLO, CREATE_FLOW, CREATE_OFFLINE_DEVICE, START_OFFLINE_DEVICE, DELETE_OFFLINE_DEVICE,
 CREATE_OFFLINE_FLOW, GET_FUNCTION, APPLY_FUNCTION, CONNECT, CLOSE_FLOW, DEVICE_INFO,
 LIBRARY_INFO, LIBFUNCT_INFO, FLOW_INFO, FUNCTION_INFO, STATS) = range(1, 17)


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">I", len(b)) + b


def msg(typ, payload, reqid=1, flags=0):
    return struct.pack(">IBBHII", MAGIC, 1, flags, typ, len(payload), reqid) + payload


def arg(letter, v):
    if letter in "sSR":
        return letter.encode() + s(v)
    if letter == "l":
        return letter.encode() + struct.pack(">Q", v)
    if letter == "w":
        return letter.encode() + struct.pack(">I", v)
    return letter.encode() + struct.pack(">i", v)


def apply(flow, name, *args):
    return struct.pack(">i", flow) + s(name) + struct.pack(">I", len(args)) + \
        b"".join(arg(l, v) for l, v in args)


def seeds():
    i32 = lambda v: struct.pack(">i", v)
    out = {
        "hello": msg(HELLO, struct.pack(">HH", 1, 1)),
        "create_flow": msg(CREATE_FLOW, s("eth0")),
        "create_offline_device": msg(CREATE_OFFLINE_DEVICE, struct.pack(">I", 0) + s("/tmp/t.pcap")),
        "start_offline_device": msg(START_OFFLINE_DEVICE, s("trace0")),
        "delete_offline_device": msg(DELETE_OFFLINE_DEVICE, s("trace0")),
        "create_offline_flow": msg(CREATE_OFFLINE_FLOW, struct.pack(">I", 1) + s("weibo.pcap")),
        "get_function": msg(GET_FUNCTION, s("PKT_COUNTER")),
        "apply_noargs": msg(APPLY_FUNCTION, apply(1, "PKT_COUNTER")),
        "apply_bpf": msg(APPLY_FUNCTION, apply(1, "BPF_FILTER", ("s", "tcp port 80"))),
        "apply_tofile": msg(APPLY_FUNCTION, apply(1, "TO_FILE", ("i", 0), ("w", 0), ("l", 1 << 40))),
        "apply_bucket": msg(APPLY_FUNCTION, apply(2, "BUCKET", ("r", 1), ("f", 1), ("s", "1s"), ("i", 0))),
        "apply_res2file": msg(APPLY_FUNCTION, apply(3, "RES2FILE", ("s", "ll"), ("S", "1@2,2@2"),
                                                    ("s", "hdr"), ("w", 1), ("s", "1"), ("i", 0))),
        "apply_sync": msg(APPLY_FUNCTION, apply(1, "SYNC", ("R", "1,2"))),
        "apply_char": msg(APPLY_FUNCTION, apply(1, "X", ("c", 65), ("s", ""))),
        "connect": msg(CONNECT, i32(1)),
        "close_flow": msg(CLOSE_FLOW, i32(1)),
        "device_info": msg(DEVICE_INFO, i32(-1) + b"\x01"),
        "library_info": msg(LIBRARY_INFO, i32(0) + b"\x00"),
        "libfunct_info": msg(LIBFUNCT_INFO, i32(0) + i32(-1) + b"\x01"),
        "flow_info": msg(FLOW_INFO, i32(0) + b"\x01"),
        "function_info": msg(FUNCTION_INFO, i32(1) + i32(0) + b"\x01"),
        "stats": msg(STATS, s("eth0")),
        # malformed
        "trailing": msg(CONNECT, i32(1) + b"x"),
        "truncated_apply": msg(APPLY_FUNCTION, apply(1, "TO_FILE", ("i", 0), ("w", 0), ("l", 5)))[:-3],
        "short_header_len": msg(STATS, s("eth0"))[:-2],
        "long_device": msg(CREATE_FLOW, s("d" * 512)),
        "long_path": msg(CREATE_OFFLINE_FLOW, struct.pack(">I", 0) + s("p" * 400)),
        "long_name": msg(GET_FUNCTION, s("N" * 256)),
        "nul_device": msg(CREATE_FLOW, s(b"et\0h0")),
        "nul_arg": msg(APPLY_FUNCTION, apply(1, "BPF_FILTER", ("s", b"tcp\0"))),
        "bad_letter": msg(APPLY_FUNCTION, struct.pack(">i", 1) + s("X") + struct.pack(">I", 1) + b"x" + i32(0)),
        "many_args": msg(APPLY_FUNCTION, apply(1, "X", *([("i", 7)] * 33))),
        "nargs_huge": msg(APPLY_FUNCTION, struct.pack(">i", 1) + s("X") + struct.pack(">I", 0xFFFFFFFF)),
        "w_index": msg(APPLY_FUNCTION, apply(1, "TO_FILE", ("i", 0), ("w", 64), ("l", 0))),
        "huge_str": msg(CREATE_FLOW, struct.pack(">I", 0x7FFFFFFF) + b"a"),
        "unknown_type": msg(99, b"abc"),
        "server_type": msg(100, s("bye")),
        "error_flag": msg(CONNECT, i32(1), flags=1),
        "bad_magic": b"XAPI" + msg(CONNECT, i32(1))[4:],
    }
    out["session"] = b"".join(out[k] for k in ("hello", "create_offline_flow", "apply_bpf",
                                               "apply_noargs", "connect", "function_info",
                                               "flow_info", "close_flow"))
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus",
                                                            "mapid_msg")
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds()), d))


if __name__ == "__main__":
    main()
