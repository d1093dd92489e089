"""tests/user_attacks.py - the attacks of test_user_limits.sh, run as a throwaway unprivileged
user with raw clients of mapid's protocol (tests/mapiwire.py). One subcommand per attack; each
prints one line of results that the shell script compares with what it expects:

  flows SOCK TRACE N         N connections, one CREATE_OFFLINE_FLOW each: "ok"/"errCODE" each
  shm SOCK TRACE N           N connections, each a trace flow with TO_BUFFER, then CONNECT
  threads SOCK TRACE N       N connections, each a trace flow with PKT_COUNTER, then CONNECT
  devthreads SOCK TRACE N    one connection: N trace devices, each created and started
  conns SOCK N               N connections, HELLO on each (kept open until all are made)
  info SOCK TRACE            *_INFO requests with ids at INT32_MAX / INT32_MIN
  logforge SOCK TRACE NAME   CREATE_OFFLINE_DEVICE whose path NAME holds a newline
  flood SOCK N STOPFILE      N idle connections (HELLO each); prints "admitted A refused R
                             codes C", then "ready", holds them until STOPFILE exists, then
                             prints "shed K" (admitted connections mapid closed meanwhile)
  halfsent SOCK N BYTES STOPFILE   N connections each sending the header of a 1 MiB request
                             and BYTES of its payload; prints "sent", "ready", waits for
                             STOPFILE, then reads every connection until EOF (at most 10 s)
                             and prints "closed C input I timeout T early E other O" (E:
                             connections refused before HELLO, the user's buffers being full)
"""
import os
import socket
import struct
import sys
import time

import mapiwire as mw

INT_MAX, INT_MIN = 2**31 - 1, -2**31


def res(flags, body):
    if flags & mw.F_ERROR:
        return "err%d" % mw.error(body)[0]
    return "ok"


def offline_flow(c, trace):
    fd = os.open(trace, os.O_RDONLY)
    try:
        flags, body = c.call(mw.CREATE_OFFLINE_FLOW, mw.u32(0) + mw.s(trace), fds=[fd])
    finally:
        os.close(fd)
    if flags & mw.F_ERROR:
        return None, res(flags, body)
    return mw.Reader(body).i32(), "ok"


def apply(c, flow, name, args=()):
    p = mw.i32(flow) + mw.s(name) + mw.u32(len(args))
    for letter, v in args:
        p += mw.arg(letter, v)
    return res(*c.call(mw.APPLY_FUNCTION, p))


def flow_with(c, trace, fn, args=()):
    """A trace flow with fn applied, connected: the result of the first failing step."""
    flow, r = offline_flow(c, trace)
    if flow is None:
        return r
    r = apply(c, flow, fn, args)
    if r != "ok":
        return r
    r = res(*c.call(mw.CONNECT, mw.i32(flow)))
    for fd in c.fds:
        os.close(fd)
    c.fds = []
    return r


def hello(c):
    try:
        return res(*c.call(mw.HELLO, mw.u16(1) + mw.u16(1)))
    except (OSError, EOFError) as e:
        return "eof(%s)" % type(e).__name__


def wait_file(path, limit=60):
    end = time.time() + limit
    while not os.path.exists(path) and time.time() < end:
        time.sleep(0.05)


def is_closed(c):
    """True if mapid closed the connection (EOF or reset), without blocking."""
    c.sock.setblocking(False)  # a timeout would make recv wait for data first
    try:
        data = c.sock.recv(65536)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    sock, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = []
    conns = []
    if cmd in ("flows", "shm", "threads"):
        trace, n = args[0], int(args[1])
        for _ in range(n):
            c = mw.Client(sock)
            conns.append(c)
            if cmd == "flows":
                out.append(offline_flow(c, trace)[1])
            elif cmd == "shm":
                out.append(flow_with(c, trace, "TO_BUFFER", [("i", 0)]))
            else:
                out.append(flow_with(c, trace, "PKT_COUNTER"))
    elif cmd == "devthreads":
        c = mw.Client(sock)
        for _ in range(int(args[1])):
            fd = os.open(args[0], os.O_RDONLY)
            flags, body = c.call(mw.CREATE_OFFLINE_DEVICE, mw.u32(0) + mw.s(args[0]), fds=[fd])
            os.close(fd)
            if flags & mw.F_ERROR:
                out.append(res(flags, body))
                continue
            dev = mw.Reader(body).s()
            out.append(res(*c.call(mw.START_OFFLINE_DEVICE, mw.s(dev))))
    elif cmd == "conns":
        for _ in range(int(args[0])):
            c = mw.Client(sock, hello=False)
            conns.append(c)
            out.append(hello(c))
    elif cmd == "info":
        c = mw.Client(sock)
        flow, _ = offline_flow(c, args[0])
        out.append(apply(c, flow, "PKT_COUNTER"))
        out.append(res(*c.call(mw.LIBRARY_INFO, mw.i32(INT_MAX) + mw.u8(1))))
        out.append(res(*c.call(mw.LIBRARY_INFO, mw.i32(INT_MIN) + mw.u8(1))))
        out.append(res(*c.call(mw.LIBFUNCT_INFO, mw.i32(0) + mw.i32(INT_MAX) + mw.u8(1))))
        out.append(res(*c.call(mw.LIBFUNCT_INFO, mw.i32(0) + mw.i32(INT_MIN) + mw.u8(0))))
        out.append(res(*c.call(mw.FUNCTION_INFO, mw.i32(flow) + mw.i32(INT_MIN) + mw.u8(0))))
        out.append(res(*c.call(mw.FUNCTION_INFO, mw.i32(flow) + mw.i32(INT_MAX) + mw.u8(1))))
        out.append(res(*c.call(mw.FLOW_INFO, mw.i32(INT_MAX) + mw.u8(1))))
        out.append(res(*c.call(mw.DEVICE_INFO, mw.i32(INT_MAX) + mw.u8(1))))
        # still served: the first function of our flow
        out.append(res(*c.call(mw.FUNCTION_INFO, mw.i32(flow) + mw.i32(1) + mw.u8(0))))
    elif cmd == "logforge":
        c = mw.Client(sock)
        fd = os.open(args[0], os.O_RDONLY)
        out.append(res(*c.call(mw.CREATE_OFFLINE_DEVICE, mw.u32(0) + mw.s(args[1]), fds=[fd])))
        os.close(fd)
    elif cmd == "flood":
        n, stop = int(args[0]), args[1]
        admitted, refused, codes = [], 0, set()
        for _ in range(n):
            try:
                c = mw.Client(sock, hello=False)
            except OSError:
                refused += 1
                codes.add("noconnect")
                continue
            r = hello(c)
            if r == "ok":
                admitted.append(c)
            else:
                refused += 1
                codes.add(r)
                c.close()
        print("admitted %d refused %d codes %s" % (len(admitted), refused,
                                                     ",".join(sorted(codes)) or "-"))
        print("ready", flush=True)
        wait_file(stop)
        print("shed %d" % sum(1 for c in admitted if is_closed(c)))
        return
    elif cmd == "halfsent":
        n, nbytes, stop = int(args[0]), int(args[1]), args[2]
        body = b"\0" * nbytes
        early = 0
        for _ in range(n):
            try:
                c = mw.Client(sock)
            except (OSError, EOFError):
                early += 1  # at max_input_per_user: not even HELLO gets a buffer
                continue
            conns.append(c)
            try:
                c.sock.sendall(mw.header(mw.APPLY_FUNCTION, 1 << 20, 99) + body)
            except OSError:
                pass  # mapid already cut this one off
        print("sent", flush=True)
        print("ready", flush=True)
        wait_file(stop)
        counts = {"closed": 0, "input": 0, "timeout": 0, "other": 0, "early": early}
        end = time.time() + 10
        for c in conns:
            c.sock.settimeout(max(0.1, end - time.time()))
            try:
                typ, flags, rid, rbody = c.recv()
                code, msg = mw.error(rbody) if flags & mw.F_ERROR else (0, "")
                if code == 3085 and "max_input" in msg:
                    counts["input"] += 1
                elif code == 3085 and "message_timeout" in msg:
                    counts["timeout"] += 1
                else:
                    counts["other"] += 1
                c.recv()  # EOF expected
            except (EOFError, ConnectionError):
                counts["closed"] += 1
                continue
            except (OSError, ValueError, struct.error):
                counts["other"] += 1
                continue
        print("closed %(closed)d input %(input)d timeout %(timeout)d early %(early)d "
              "other %(other)d" % counts)
        return
    print(" ".join(out))


main()
