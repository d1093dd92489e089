"""tests/devices_hostile.py - the attacks of tests/test_devices_hostile.sh on trace devices,
as a raw client of mapid (tests/mapiwire.py), run as an unprivileged user.

Usage: python3 devices_hostile.py PHASE SOCKET TRACE TMPDIR
Prints one line per step: "step OK", "step ERR <MAPI error number>" or "step <value>"; a
step that gets no reply within 10 s prints "step TIMEOUT" (mapid wedged). Phases:
  delete      CREATE_OFFLINE_FLOW, DEVICE_INFO, DELETE_OFFLINE_DEVICE of its device (closes the
              flow), then CLOSE_FLOW and DELETE again (used to be a double free)
  owning      a second flow on the device of an offline flow, close the owning flow, then
              apply/connect/close the second (used to be a use-after-free in flow_apply)
  disconnect  client A creates and starts a device, client B connects a flow on it; A leaves;
              B's flow ends FLOW_FINISHED and closes cleanly (used to be a use-after-free);
              then the same with A deleting the device under B's connected flow
  limit       16 trace devices tried over two connections (how many were made is printed:
              a parked device of the user counts), the 17th (and an offline flow) refused;
              after one connection closes, room again
  pipe        a pipe, a FIFO and a socket as traces (used to block mapid's control thread)
  tofile      TO_FILE to a pipe nobody reads (used to block the capture thread), to a file
  bigrec      a sparse pcap whose second record claims 100 MiB, plain and gzip-compressed
  stuck       a flow whose function (testflib's STALL) holds the capture thread for 20 s is
              closed: the close must answer within 5 s (device_stop waits 2 s, then parks)
"""
import os
import socket
import subprocess
import sys
import time

import mapiwire as mw

MFF_PCAP = 0
FLOW_FINISHED = 2

phase, sock, trace, tmpd = sys.argv[1:5]


def out(step, what):
    print("%s %s" % (step, what), flush=True)


def call(c, step, typ, payload=b"", fds=None, show=True):
    """(ok, Reader or error code); prints the outcome unless show is False."""
    try:
        flags, body = c.call(typ, payload, fds)
    except socket.timeout:
        out(step, "TIMEOUT")
        sys.exit(0)
    if flags & mw.F_ERROR:
        code, msg = mw.error(body)
        if show:
            out(step, "ERR %d" % code)
        print("# %s: %s" % (step, msg), file=sys.stderr)
        return False, code
    if show:
        out(step, "OK")
    return True, mw.Reader(body)


def offline_flow(c, step, path=trace, show=True):
    fd = os.open(path, os.O_RDONLY)
    try:
        ok, r = call(c, step, mw.CREATE_OFFLINE_FLOW, mw.u32(MFF_PCAP) + mw.s(path), [fd], show)
    finally:
        os.close(fd)
    if not ok:
        return None, None
    return r.i32(), r.i32()


def offline_device(c, step, fd, path=trace, show=True):
    ok, r = call(c, step, mw.CREATE_OFFLINE_DEVICE, mw.u32(MFF_PCAP) + mw.s(path), [fd], show)
    return r.s() if ok else None


def device_name(c, devid):
    ok, r = call(c, "device_info", mw.DEVICE_INFO, mw.i32(devid) + mw.u8(0), show=False)
    if not ok:
        out("device_info", "ERR %d" % r)
        sys.exit(0)
    r.i32()
    return r.s()


def apply(c, step, flow, fname, args=b"", nargs=0, fds=None):
    return call(c, step, mw.APPLY_FUNCTION, mw.i32(flow) + mw.s(fname) + mw.u32(nargs) + args, fds)


def flow_status(c, flow):
    ok, r = call(c, "flow_info", mw.FLOW_INFO, mw.i32(flow) + mw.u8(0), show=False)
    if not ok:
        return -r
    r.u32(), r.i32(), r.i32(), r.s(), r.u32(), r.u64(), r.u64()
    return r.u32()


def wait_status(c, flow, want, secs=10):
    end = time.time() + secs
    st = flow_status(c, flow)
    while st != want and time.time() < end:
        time.sleep(0.05)
        st = flow_status(c, flow)
    return st


c = mw.Client(sock)
if phase == "delete":
    flow, dev = offline_flow(c, "create_offline_flow")
    name = device_name(c, dev)
    call(c, "delete", mw.DELETE_OFFLINE_DEVICE, mw.s(name))
    call(c, "close_after_delete", mw.CLOSE_FLOW, mw.i32(flow))
    call(c, "delete_again", mw.DELETE_OFFLINE_DEVICE, mw.s(name))
elif phase == "owning":
    flow1, dev = offline_flow(c, "create_offline_flow")
    name = device_name(c, dev)
    ok, r = call(c, "second_flow", mw.CREATE_FLOW, mw.s(name))
    flow2 = r.i32()
    call(c, "close_owning", mw.CLOSE_FLOW, mw.i32(flow1))
    apply(c, "apply_second", flow2, "PKT_COUNTER")
    call(c, "connect_second", mw.CONNECT, mw.i32(flow2))
    call(c, "close_second", mw.CLOSE_FLOW, mw.i32(flow2))
elif phase == "disconnect":
    for how in ("leave", "delete"):
        a = mw.Client(sock)
        fd = os.open(trace, os.O_RDONLY)
        name = offline_device(a, how + "_create_device", fd)
        os.close(fd)
        ok, r = call(c, how + "_other_flow", mw.CREATE_FLOW, mw.s(name))
        flow = r.i32()
        apply(c, how + "_apply", flow, "PKT_COUNTER")
        call(c, how + "_connect", mw.CONNECT, mw.i32(flow))
        call(a, how + "_start", mw.START_OFFLINE_DEVICE, mw.s(name))
        if how == "leave":
            a.close()
        else:
            call(a, "delete_under_other", mw.DELETE_OFFLINE_DEVICE, mw.s(name))
        out(how + "_other_status", wait_status(c, flow, FLOW_FINISHED))
        call(c, how + "_close_other", mw.CLOSE_FLOW, mw.i32(flow))
        if how == "delete":
            a.close()
elif phase == "limit":
    c2 = mw.Client(sock)
    fd = os.open(trace, os.O_RDONLY)
    made = 0
    for i in range(16):
        if offline_device(c if i < 10 else c2, "device%d" % (i + 1), fd, show=False):
            made += 1
    out("devices_made", made)
    offline_device(c2, "device17", fd)
    offline_flow(c2, "offline_flow17")
    c.close()
    time.sleep(0.5)
    offline_device(c2, "after_close", fd)
    os.close(fd)
elif phase == "pipe":
    r, w = os.pipe()
    # Someone keeps the write end open and never writes (mapid used to wait for it forever).
    holder = subprocess.Popen(["sleep", "30"], pass_fds=[w])
    t0 = time.time()
    offline_device(c, "pipe", r)
    out("pipe_quick", "OK" if time.time() - t0 < 2 else "SLOW")
    fifo = os.path.join(tmpd, "trace.fifo")
    os.mkfifo(fifo)
    ffd = os.open(fifo, os.O_RDWR)
    offline_flow(c, "fifo", fifo)
    s1, s2 = socket.socketpair()
    offline_device(c, "socket", s1.fileno())
    holder.kill()
    os.close(ffd)
elif phase == "tofile":
    flow, dev = offline_flow(c, "create_offline_flow")
    r, w = os.pipe()
    apply(c, "tofile_pipe", flow, "TO_FILE", mw.arg("i", 0) + mw.arg("w", 0) + mw.arg("l", 0), 3, [w])
    path = os.path.join(tmpd, "out.pcap")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    apply(c, "tofile_file", flow, "TO_FILE", mw.arg("i", 0) + mw.arg("w", 0) + mw.arg("l", 0), 3, [fd])
    os.close(fd)
    apply(c, "counter", flow, "PKT_COUNTER")
    call(c, "connect", mw.CONNECT, mw.i32(flow))
    out("finished", wait_status(c, flow, FLOW_FINISHED))
    call(c, "close", mw.CLOSE_FLOW, mw.i32(flow))
elif phase == "bigrec":
    for path in sys.argv[5:]:
        step = os.path.basename(path)
        flow, dev = offline_flow(c, step, path)
        if flow is None:
            continue
        apply(c, step + "_counter", flow, "PKT_COUNTER")
        call(c, step + "_connect", mw.CONNECT, mw.i32(flow))
        out(step + "_status", wait_status(c, flow, FLOW_FINISHED))
        call(c, step + "_close", mw.CLOSE_FLOW, mw.i32(flow))
elif phase == "stuck":
    flow, dev = offline_flow(c, "create_offline_flow")
    apply(c, "stall", flow, "STALL", mw.arg("i", 20), 1)
    call(c, "connect", mw.CONNECT, mw.i32(flow))
    time.sleep(0.5)
    t0 = time.time()
    call(c, "close", mw.CLOSE_FLOW, mw.i32(flow))
    out("close_quick", "OK" if time.time() - t0 < 5 else "SLOW")
    flow, dev = offline_flow(c, "another_flow")
    apply(c, "counter", flow, "PKT_COUNTER")
    call(c, "connect_another", mw.CONNECT, mw.i32(flow))
    out("another_finished", wait_status(c, flow, FLOW_FINISHED))
else:
    sys.exit("unknown phase " + phase)
c.close()
