"""Misbehaving clients for hostile-load tests (test_hostile_net.py) and
bench/hostile_load.py. Python 3 stdlib only.

IdleConnections: holds N TCP connections to a daemon and never says a word
(no TLS ClientHello); reopens each one the daemon closes, after
`reconnect_delay` seconds, so that N stay open or knocking.

PingFlood: a paired device that behaves until its Hello, then floods Pings
and never reads what it is sent (its receive buffer kept small, so the
daemon's replies back up at once). Cut off, it connects again after
`reconnect_delay` seconds. It speaks the wire format by hand
(docs/wire-format.md): frames are u32 length | u8 type | protobuf | u32 CRC-32.
"""

import errno
import os
import selectors
import socket
import ssl
import struct
import threading
import time
import uuid
import zlib

HELLO = 1
PING = 8


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_varint(num, value):
    return _varint(num << 3) + _varint(value)


def _field_bytes(num, data):
    return _varint((num << 3) | 2) + _varint(len(data)) + data


def frame(msg_type, payload):
    """One frame: length (type + payload + CRC), type, payload, CRC-32 of type + payload."""
    body = bytes([msg_type]) + payload
    return struct.pack(">I", len(body) + 4) + body + struct.pack(">I", zlib.crc32(body))


def hello_frame(info):
    """A Hello for the device described by `entrysync id --json` (`info`)."""
    payload = (_field_varint(1, 1)  # protocol_version
               + _field_bytes(2, uuid.UUID(info["library_id"]).bytes)
               + _field_bytes(3, bytes.fromhex(info["device_id"]))
               + _field_bytes(4, uuid.UUID(info["device_uuid"]).bytes)
               + _field_bytes(5, info["name"].encode()))
    return frame(HELLO, payload)


def ping_frame(nonce):
    return frame(PING, b"\x09" + struct.pack("<Q", nonce))  # Ping.nonce: fixed64, field 1


def raise_nofile(n):
    """Raises this process's open-file limit to at least n (up to the hard limit)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class IdleConnections(threading.Thread):
    """`count` silent TCP connections to host:port, reopened when closed."""

    def __init__(self, host, port, count, reconnect_delay=1.0):
        super().__init__(daemon=True, name="idle-conns")
        self.addr = (host, port)
        self.count = count
        self.reconnect_delay = reconnect_delay
        self.opened = 0           # connections opened (first time and again)
        self.closed_by_peer = 0   # connections the daemon closed (or refused)
        self._halt = threading.Event()
        self._open = 0
        self._lock = threading.Lock()

    def open_now(self):
        with self._lock:
            return self._open

    def stop(self):
        self._halt.set()
        self.join(10)

    def _connect(self, sel):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(self.addr)
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            return False
        sel.register(s, selectors.EVENT_READ)
        self.opened += 1
        with self._lock:
            self._open += 1
        return True

    def run(self):
        sel = selectors.DefaultSelector()
        due = []  # times at which a connection is to be reopened
        for _ in range(self.count):
            if not self._connect(sel):
                due.append(time.monotonic() + self.reconnect_delay)
        while not self._halt.is_set():
            for key, _ in sel.select(0.05):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    continue  # nothing is expected; ignore it
                sel.unregister(s)
                s.close()
                self.closed_by_peer += 1
                with self._lock:
                    self._open -= 1
                due.append(time.monotonic() + self.reconnect_delay)
            now = time.monotonic()
            later = []
            for t in due:
                if t <= now and not self._halt.is_set():
                    if not self._connect(sel):
                        later.append(now + self.reconnect_delay)
                else:
                    later.append(t)
            due = later
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


class PingFlood(threading.Thread):
    """A paired device (identity files in `identity_dir`, `info` from its
    `entrysync id --json`) that sends Hello, then Pings without end, and
    never reads."""

    def __init__(self, host, port, identity_dir, info, reconnect_delay=1.0, block_pings=4096):
        super().__init__(daemon=True, name="ping-flood")
        self.addr = (host, port)
        self.cert = os.path.join(identity_dir, "cert.pem")
        self.key = os.path.join(identity_dir, "key.pem")
        self.info = info
        self.reconnect_delay = reconnect_delay
        self.block = b"".join(ping_frame(i) for i in range(block_pings))
        self.connections = 0     # sessions that got past the admission byte
        self.disconnects = []    # (seconds connected, bytes of pings sent, error)
        self.refusals = []       # errors before the flood started
        self.bytes_sent = 0
        self._halt = threading.Event()
        self._sock = None
        self._lock = threading.Lock()

    def stop(self):
        self._halt.set()
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.join(15)

    def _context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the daemon's key is not what is tested here
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def run(self):
        ctx = self._context()
        while not self._halt.is_set():
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A small receive window: the daemon's replies back up at once.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(60)
            started = None
            sent = 0
            try:
                raw.connect(self.addr)
                tls = ctx.wrap_socket(raw)
                with self._lock:
                    self._sock = tls
                if tls.recv(1) != b"\x01":
                    raise OSError("no admission byte")
                tls.sendall(hello_frame(self.info))
                self.connections += 1
                started = time.monotonic()
                while not self._halt.is_set():
                    tls.sendall(self.block)
                    sent += len(self.block)
                    self.bytes_sent += len(self.block)
            except (OSError, ssl.SSLError) as e:
                if self._halt.is_set():
                    break
                if started is None:
                    self.refusals.append(repr(e))
                else:
                    self.disconnects.append((time.monotonic() - started, sent, repr(e)))
            finally:
                with self._lock:
                    self._sock = None
                raw.close()
            self._halt.wait(self.reconnect_delay)
