"""tests/mapiwire.py - a raw client of mapid's wire protocol (common/wire.h), for the tests
that act as a hostile local user: they send what libmapi never would (bad ids, other users'
objects, half messages, odd descriptors) and check that mapid answers with a clear error and
keeps serving everyone else.

Usage from a test script (python3 -c or a here-document), with tests/ on sys.path:

    import mapiwire as mw
    c = mw.Client(sock_path)          # connects and says HELLO
    flags, body = c.call(mw.CREATE_OFFLINE_FLOW, mw.u32(0) + mw.s("x.pcap"), fds=[fd])
    if flags & mw.F_ERROR: code, msg = mw.error(body)
    r = mw.Reader(body); flow = r.i32(); devid = r.i32()

Only the standard library; every integer in network byte order, strings as u32 length + bytes.
"""
import array
import socket
import struct

MAGIC = 0x4D415049
VERSION = 1
F_ERROR = 0x01
HDR = struct.Struct("!IBBHII")

(HELLO, CREATE_FLOW, CREATE_OFFLINE_DEVICE, START_OFFLINE_DEVICE, DELETE_OFFLINE_DEVICE,
 CREATE_OFFLINE_FLOW, GET_FUNCTION, APPLY_FUNCTION, CONNECT, CLOSE_FLOW, DEVICE_INFO,
 LIBRARY_INFO, LIBFUNCT_INFO, FLOW_INFO, FUNCTION_INFO, STATS) = range(1, 17)
SHUTDOWN, DEVICE_FINISHED = 100, 101


def u8(v):
    return struct.pack("!B", v)


def u16(v):
    return struct.pack("!H", v)


def u32(v):
    return struct.pack("!I", v & 0xFFFFFFFF)


def i32(v):
    return struct.pack("!i", v)


def u64(v):
    return struct.pack("!Q", v)


def s(text):
    b = text.encode() if isinstance(text, str) else bytes(text)
    return u32(len(b)) + b


def arg(letter, value):
    """One APPLY_FUNCTION argument: 's'/'S' str, 'l' u64, 'w' index of a descriptor sent with
    the message, the other letters i32."""
    if letter in "sS":
        return u8(ord(letter)) + s(value)
    if letter == "l":
        return u8(ord(letter)) + u64(value)
    if letter == "w":
        return u8(ord(letter)) + u32(value)
    return u8(ord(letter)) + i32(value)


def header(typ, length, reqid, flags=0, magic=MAGIC, version=VERSION):
    return HDR.pack(magic, version, flags, typ, length, reqid)


class Reader:
    """Reads the fields of a reply payload in order."""

    def __init__(self, body):
        self.b, self.o = body, 0

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def u8(self):
        return self._take("!B")

    def u16(self):
        return self._take("!H")

    def u32(self):
        return self._take("!I")

    def i32(self):
        return self._take("!i")

    def u64(self):
        return self._take("!Q")

    def s(self):
        n = self.u32()
        v = self.b[self.o:self.o + n].decode(errors="replace")
        self.o += n
        return v


def error(body):
    """(code, message) of an error reply."""
    r = Reader(body)
    return r.i32(), r.s()


class Client:
    """One connection to mapid. call() sends a request and returns (flags, body) of its reply,
    skipping unsolicited messages; received descriptors are kept in self.fds."""

    def __init__(self, path, timeout=10.0, hello=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reqid = 0
        self.fds = []
        if hello:
            flags, body = self.call(HELLO, u16(1) + u16(1))
            if flags & F_ERROR:
                raise RuntimeError("HELLO refused: %s" % (error(body),))

    def send(self, typ, payload=b"", fds=None, reqid=None):
        if reqid is None:
            self.reqid += 1
            reqid = self.reqid
        msg = header(typ, len(payload), reqid) + payload
        if fds:
            self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       array.array("i", fds))])
        else:
            self.sock.sendall(msg)
        return reqid

    def _recvall(self, n):
        b = b""
        while len(b) < n:
            data, anc, _, _ = self.sock.recvmsg(n - len(b), socket.CMSG_SPACE(64 * 4))
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                    self.fds.extend(a)
            if not data:
                raise EOFError("mapid closed the connection")
            b += data
        return b

    def recv(self):
        magic, _ver, flags, typ, length, reqid = HDR.unpack(self._recvall(HDR.size))
        if magic != MAGIC:
            raise ValueError("bad magic in a reply")
        return typ, flags, reqid, self._recvall(length)

    def call(self, typ, payload=b"", fds=None):
        reqid = self.send(typ, payload, fds)
        while True:
            rtyp, flags, rid, body = self.recv()
            if rid == 0:
                continue  # unsolicited (SHUTDOWN, DEVICE_FINISHED)
            if rtyp != typ or rid != reqid:
                raise ValueError("unexpected reply type %d id %d" % (rtyp, rid))
            return flags, body

    def close(self):
        self.sock.close()
