# tests/dimapiclient.py - a minimal DiMAPI client for the mapicommd tests: the messages of
# common/dimapi.h built with struct, over TLS (python's ssl) or plain TCP. Conn(host, port,
# token=None, hello=True, ca=, cert=, key=, plain=, src=) connects (src: a local address to bind
# first, e.g. "127.0.0.2") and says HELLO; calls raise DError(code, msg) on an error reply.
import os, socket, ssl, struct

MAGIC = 0x4D415049
T = dict(HELLO=200, CREATE_FLOW=201, GET_FUNCTION=202, APPLY=203, CONNECT=204, READ_RESULT=205,
         GET_PKTS=206, CLOSE_FLOW=207, FLOW_INFO=208, FUNCTION_INFO=209, STATS=210,
         DEVICE_INFO=211, LIBRARY_INFO=212, LIBFUNCT_INFO=213)


class DError(Exception):
    def __init__(self, code, msg):
        super().__init__("%d: %s" % (code, msg))
        self.code, self.msg = code, msg


def sstr(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack(">I", len(b)) + b


def hdr(typ, length, rid, flags=0, magic=MAGIC, version=1):
    return struct.pack(">IBBHII", magic, version, flags, typ, length, rid)


def tls_socket(host, port, ca=None, cert=None, key=None, plain=False, timeout=10, src=None):
    sock = socket.create_connection((host, port), timeout, (src, 0) if src else None)
    if plain:
        return sock
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx.wrap_socket(sock, server_hostname=host)


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("short reply")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack(">H", self.take(2))[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def u64(self): return struct.unpack(">Q", self.take(8))[0]
    def bytes(self): return self.take(self.u32())
    def str(self): return self.bytes().decode()


class Conn:
    def __init__(self, host, port, token=None, hello=True, **kw):
        self.s = tls_socket(host, port, **kw)
        self.rid = 0
        self.token = token or os.urandom(16)
        if hello:
            r = self.call("HELLO", struct.pack(">HH", 1, 1) + self.token)
            self.version, self.server = r.u16(), r.str()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def recvn(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed by mapicommd")
            b += c
        return b

    def send(self, typ, payload=b"", flags=0):
        self.rid += 1
        t = T[typ] if isinstance(typ, str) else typ
        self.s.sendall(hdr(t, len(payload), self.rid, flags) + payload)
        return self.rid

    def recv(self):
        h = self.recvn(16)
        magic, ver, flags, typ, ln, rid = struct.unpack(">IBBHII", h)
        assert magic == MAGIC and ver == 1, "bad reply header"
        return flags, typ, rid, self.recvn(ln)

    def reply(self, rid):
        flags, typ, rrid, p = self.recv()
        assert rrid == rid, "reply id %d, expected %d" % (rrid, rid)
        r = Reader(p)
        if flags & 1:
            code = r.i32()
            raise DError(code, r.str())
        return r

    def call(self, typ, payload=b""):
        return self.reply(self.send(typ, payload))

    def create_flow(self, dev):
        return self.call("CREATE_FLOW", sstr(dev)).i32()

    def apply(self, rfd, name, *args):
        p = struct.pack(">i", rfd) + sstr(name) + struct.pack(">I", len(args))
        for letter, v in args:
            p += letter.encode()
            if letter in "sSRw":
                p += sstr(v)
            elif letter == "l":
                p += struct.pack(">Q", v)
            else:
                p += struct.pack(">i", v)
        r = self.call("APPLY", p)
        return r.i32(), r.u32(), r.u32()

    def connect(self, rfd):
        self.call("CONNECT", struct.pack(">i", rfd))

    def read_result(self, rfd, fid):
        r = self.call("READ_RESULT", struct.pack(">ii", rfd, fid))
        return r.u64(), r.bytes()

    def get_pkts(self, rfd, fid, max_pkts=1000, max_bytes=900000, wait_ms=500):
        r = self.call("GET_PKTS", struct.pack(">iiIII", rfd, fid, max_pkts, max_bytes, wait_ms))
        end, n = r.u8(), r.u32()
        pkts = []
        for _ in range(n):
            ts, ifi, cap, wlen = r.u64(), r.u16(), r.u32(), r.u32()
            pkts.append((ts, ifi, cap, wlen, r.bytes()))
        return end, pkts

    def close_flow(self, rfd):
        self.call("CLOSE_FLOW", struct.pack(">i", rfd))

    def stats(self, dev):
        r = self.call("STATS", sstr(dev))
        return r.u32(), r.u32(), r.u32(), r.str(), r.str()
