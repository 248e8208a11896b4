"""Refusals over real TLS: an unpaired device, a device of another library,
garbage and oversized frames (plain TCP, and inside an authenticated TLS
session of a paired device). Each is refused, the daemon survives, the
library is unchanged, and a legitimate sync still works afterwards."""

import errno
import json
import os
import socket
import ssl
import struct
import time
import zlib

import es


def one_error_line(testcase, p):
    lines = p.stderr.splitlines()
    testcase.assertNotEqual(p.returncode, 0, p)
    testcase.assertEqual(len(lines), 1, "expected exactly one stderr line, got %r" % p.stderr)
    testcase.assertTrue(lines[0].startswith("entrysync: error: "), lines[0])
    return lines[0]


def frame(msg_type, payload):
    body = bytes([msg_type]) + payload
    return struct.pack(">I", len(body) + 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def parse_frames(data):
    """[(type, payload)] of the complete frames in data."""
    out = []
    while len(data) >= 4:
        (n,) = struct.unpack(">I", data[:4])
        if n < 5 or len(data) < 4 + n:
            break
        out.append((data[4], data[5:4 + n - 4]))
        data = data[4 + n:]
    return out


def read_until_closed(sock, timeout):
    """Reads until the peer closes; returns the bytes, or raises if it stays open."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        try:
            d = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return got
        if not d:
            return got
        got += d
    raise AssertionError("the daemon kept the connection open for %.0fs (received %d bytes)" % (timeout, len(got)))


class Refusals(es.EsTestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b, addr_a=False)  # B never dials A: A syncs one-shot
        es.make_tree(self.a.data, 500, per_dir=100)
        self.a.add_location()
        es.make_tree(self.b.data, 50, per_dir=50)
        self.b.add_location()
        self.b.serve()
        self.snapshot = self.b_state()

    def b_state(self):
        st = self.b.stats()
        return json.dumps(st, sort_keys=True), self.b.digest(), self.b.digest("alpha")

    def assert_b_unchanged(self, what):
        self.b.assert_alive()
        self.assertEqual(self.b_state(), self.snapshot, "B's library changed after " + what)

    def assert_legit_sync_works(self):
        p = self.a.cli("sync", "--peer", "beta", "--timeout", str(60 * es.SLOW))
        self.assertIn("synced with beta", p.stdout)
        self.assertEqual(self.b.digest("alpha"), self.a.digest())
        self.assertEqual(self.a.digest("beta"), self.b.digest())
        self.b.assert_alive()

    def test_unpaired_device_refused(self):
        x = self.device("xeno", self.a.library_id)
        x.add_peer(self.b)  # X pairs B; B does not know X
        es.make_tree(x.data, 20, per_dir=20)
        x.add_location()
        p = x.cli("sync", "--peer", "beta", "--timeout", str(30 * es.SLOW), check=False)
        line = one_error_line(self, p)
        self.assertIn("not paired", line)
        es.report("unpaired: %s" % line)
        self.assertIsNone(self.b.digest("xeno"), "B knows the intruder's owner")
        self.assertNotIn(x.device_id, self.b.cli("peer", "list").stdout)
        self.assertNotIn("xeno", self.b.cli("stats", "--json").stdout)
        self.assert_b_unchanged("the unpaired device's attempt")
        self.assertEqual(x.digest("beta"), (es.EMPTY_SHA256, 0, 0), "the intruder got B's entries")
        self.assert_legit_sync_works()

    def test_other_library_refused(self):
        y = self.device("yank")  # a library of its own
        self.assertNotEqual(y.library_id, self.a.library_id)
        es.pair(y, self.b, addr_a=False)  # paired on both sides, B never dials it
        es.make_tree(y.data, 20, per_dir=20)
        y.add_location()
        self.snapshot = self.b_state()  # pairing added 'yank' to B's devices
        p = y.cli("sync", "--peer", "beta", "--timeout", str(30 * es.SLOW), check=False)
        line = one_error_line(self, p)
        self.assertIn("library", line)
        es.report("other library: %s" % line)
        self.assertEqual(self.b.digest("yank"), (es.EMPTY_SHA256, 0, 0))
        self.assert_b_unchanged("the other library's attempt")
        self.assertEqual(y.digest("beta"), (es.EMPTY_SHA256, 0, 0), "the other library got B's entries")
        self.assert_legit_sync_works()

    def test_garbage_on_plain_tcp(self):
        port = self.b.port
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)  # stays open, says nothing
        try:
            for blob in (os.urandom(64 * 1024),
                         b"\xff\xff\xff\xff" + b"\x01" * 64,  # oversized length prefix
                         frame(1, b"hello?"),  # an entrysync frame without TLS
                         b"GET / HTTP/1.0\r\n\r\n",
                         b""):  # connect and close
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    try:
                        s.sendall(blob)
                        s.shutdown(socket.SHUT_WR)
                        read_until_closed(s, 20 * es.SLOW)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    except OSError as e:
                        # Reset before our shutdown: the daemon read 16 KiB of
                        # the garbage, refused it and closed with the rest unread.
                        if e.errno != errno.ENOTCONN:
                            raise
                self.b.assert_alive()
            self.assert_b_unchanged("garbage on the port")
            self.assert_legit_sync_works()  # while the idle connection is still open
        finally:
            idle.close()
        self.b.assert_alive()

    def tls_session(self, device):
        """A TLS 1.3 connection to B authenticated with `device`'s identity (a paired
        device, so B admits it and expects entrysync frames)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ident = os.path.join(device.lib, "identity")
        ctx.load_cert_chain(os.path.join(ident, "cert.pem"), os.path.join(ident, "key.pem"))
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=10)
        return ctx.wrap_socket(s)

    def test_garbage_frames_inside_tls(self):
        # name: (bytes sent after the handshake, what B logs, per docs/wire-format.md)
        cases = {
            "oversized length prefix": (struct.pack(">I", 0xFFFFFFF0) + b"\x01" + b"x" * 100,
                                        "frame of 4294967280 bytes exceeds limit 8388608"),
            "length just over 8 MiB": (struct.pack(">I", 8 * 1024 * 1024 + 1) + b"\x03" + b"x" * 100,
                                       "frame of 8388609 bytes exceeds limit 8388608"),
            "unknown type": (frame(77, b"abc"), "unknown message type 77"),
            "bad checksum": (frame(1, b"\x08\x01")[:-1] + b"\x00", "frame checksum mismatch"),
            "short frame": (struct.pack(">I", 3) + b"\x01\x02\x03", "shorter than the minimum 5"),
            "undecodable Hello": (frame(1, b"\xff" * 40), "undecodable Hello payload"),
            "random bytes": (os.urandom(4096), None),
        }
        errors = {}
        for name, (blob, logged) in cases.items():
            t = self.tls_session(self.a)
            try:
                t.sendall(blob)
                got = read_until_closed(t, 20 * es.SLOW)
            finally:
                t.close()
            types = [ft for ft, _ in parse_frames(got)]
            errors[name] = 10 in types  # an Error frame before closing
            self.b.assert_alive()
            if logged:
                es.wait_until(lambda: logged in self.b.log(), 10 * es.SLOW, "B to log %r" % logged,
                              on_timeout=lambda: es.logs(self.b))
        es.report("garbage inside TLS: daemon closed every connection; Error frame sent: %s" % errors)
        self.assert_b_unchanged("garbage frames inside TLS")
        self.assert_legit_sync_works()


if __name__ == "__main__":
    es.main()
