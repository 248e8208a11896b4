"""Shared helpers for entrysync integration tests (Python 3 stdlib only).

Each test file is run as
    python3 tests/integration/<file>.py --bin /path/to/entrysync [unittest args]

A Device is one library folder driven through the real CLI; `serve()` starts a
real daemon (TLS listener on a free localhost port) whose stderr goes to a log
file in the device's folder. EsTestCase gives every test a temp dir and kills
every daemon it started in tearDown.

Scaling: file counts are multiplied by SCALE. It defaults to 1, to 0.1 when the
binary lives in a sanitizer build dir (build-asan, build-*-asan, build-tsan),
and ENTRYSYNC_IT_SCALE overrides both. Deadlines are multiplied by SLOW.
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

BIN = None
SCALE = 1.0
SLOW = 1.0
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _configure(argv):
    """Strips --bin PATH from argv and sets BIN, SCALE, SLOW."""
    global BIN, SCALE, SLOW
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--bin" and i + 1 < len(argv):
            BIN = argv[i + 1]
            i += 2
            continue
        if a.startswith("--bin="):
            BIN = a[len("--bin="):]
        else:
            rest.append(a)
        i += 1
    if BIN is None:
        BIN = os.environ.get("ENTRYSYNC_BIN")
    if not BIN or not os.access(BIN, os.X_OK):
        sys.exit("usage: %s --bin PATH/TO/entrysync [unittest args]  (got %r)" % (argv[0], BIN))
    BIN = os.path.abspath(BIN)
    sanitized = any(tag in BIN for tag in ("build-asan", "-asan", "build-tsan", "-tsan"))
    SCALE = 0.1 if sanitized else 1.0
    SLOW = 4.0 if sanitized else 1.0
    if os.environ.get("ENTRYSYNC_IT_SCALE"):
        SCALE = float(os.environ["ENTRYSYNC_IT_SCALE"])
    if os.environ.get("ENTRYSYNC_IT_SLOW"):
        SLOW = float(os.environ["ENTRYSYNC_IT_SLOW"])
    return rest


def use_binary(path):
    """Sets BIN, SCALE and SLOW for `path` as `--bin path` does (for scripts
    that are not unittest mains, such as bench/daemon_idle.py)."""
    _configure([sys.argv[0], "--bin", path])


def main():
    argv = _configure(sys.argv)
    unittest.main(argv=argv, verbosity=2)


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))


def report(msg):
    """Measurements go to stderr, visible with `ctest -V` / --output-on-failure."""
    sys.stderr.write("[measure] %s\n" % msg)
    sys.stderr.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CliError(AssertionError):
    pass


def run(args, env=None, timeout=None, check=True, input=None):
    """Runs the binary; returns CompletedProcess (text). check: rc must be 0."""
    full_env = dict(os.environ)
    full_env.pop("ENTRYSYNC_LIBRARY", None)
    if env:
        full_env.update(env)
    timeout = timeout if timeout is not None else 120 * SLOW
    p = subprocess.run([BIN] + list(args), env=full_env, capture_output=True, text=True,
                       timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise CliError("entrysync %s -> rc %d\nstdout: %s\nstderr: %s"
                       % (" ".join(args), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def wait_until(pred, timeout, what, interval=0.05, on_timeout=None):
    """Polls pred() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def make_tree(root, nfiles, per_dir=1000, content=b"", random_names=False):
    """Creates nfiles empty (or tiny) files in folders of per_dir; returns the dir names.
    Names are f00000.txt, f00001.txt...: a row of them takes about a byte on
    the wire, compressed. random_names: 32 random hex digits + .dat, about
    18 bytes a row (for transfers that must be large)."""
    os.makedirs(root, exist_ok=True)
    dirs = []
    made = 0
    d = 0
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
    while made < nfiles:
        dname = os.path.join(root, "d%04d" % d)
        os.mkdir(dname)
        dirs.append(dname)
        for i in range(min(per_dir, nfiles - made)):
            name = uuid.uuid4().hex + ".dat" if random_names else "f%05d.txt" % i
            fd = os.open(os.path.join(dname, name), flags, 0o644)
            if content:
                os.write(fd, content)
            os.close(fd)
        made += min(per_dir, nfiles - made)
        d += 1
    return dirs


class Device:
    def __init__(self, base, name, library_id=None):
        self.name = name
        self.dir = os.path.join(base, name)
        self.lib = os.path.join(self.dir, "lib")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.proc = None
        self.log_path = os.path.join(self.dir, "serve.log")
        self._log = None
        self.starts = 0
        args = ["init", "--library", self.lib, "--name", name]
        if library_id:
            args += ["--join", library_id]
        run(args)
        info = self.id()
        self.device_id = info["device_id"]
        self.library_id = info["library_id"]
        self.uuid = info["device_uuid"]

    # -- CLI -------------------------------------------------------------
    def cli(self, *args, check=True, timeout=None):
        return run(["--library", self.lib] + list(args), check=check, timeout=timeout)

    def id(self):
        return json.loads(self.cli("id", "--json").stdout)

    def add_peer(self, other, with_addr=True):
        """Pairs `other` on this side only."""
        args = ["peer", "add", "--name", other.name, "--id", other.device_id]
        if with_addr:
            args += ["--addr", other.addr]
        self.cli(*args)

    def add_location(self, path=None):
        return self.cli("location", "add", path or self.data)

    def rescan(self, path=None):
        return self.cli("rescan", *([path] if path else []))

    def digest(self, owner=None):
        """(sha256, entries, live) of `owner` (default: this device); None if unknown."""
        args = ["digest"] + (["--device", owner] if owner else [])
        p = self.cli(*args, check=False)
        if p.returncode != 0:
            return None
        parts = p.stdout.split()
        # <sha256>  <name>  N entries (M live)
        return (parts[0], int(parts[2]), int(parts[4].lstrip("(")))

    def export(self, owner=None):
        # NOTE: deliberately without `--format tsv` (the default): see
        # test_cli_errors.ExportFormatFlag for the crash it triggers.
        return self.cli("export", *(["--device", owner] if owner else [])).stdout

    def stats(self):
        return json.loads(self.cli("stats", "--json").stdout)

    def status(self):
        return json.loads(self.cli("status", "--json").stdout)

    def owner_stats(self, owner):
        for o in self.stats()["owners"]:
            if o["name"] == owner:
                return o
        return None

    def max_seq(self):
        """This device's own max seq."""
        return next(o["max_seq"] for o in self.status()["owners"] if o.get("local"))

    def watermark(self, owner):
        """Seq up to which this library holds `owner` (0 if none yet), None if unknown."""
        for o in self.status()["owners"]:
            if o["name"] == owner:
                wm = o.get("watermark")
                return wm["seq"] if wm else 0
        return None

    def owner_entries(self, owner):
        """Committed live entries of `owner` in this library (reads the DB), or None."""
        for o in self.status()["owners"]:
            if o["name"] == owner:
                return o["entries"]
        return None

    # -- daemon ----------------------------------------------------------
    def serve(self, *extra, wait=True, nofile=None):
        """Starts the daemon; with wait, returns once it listens (else call
        wait_listening). nofile: its open-file limit (RLIMIT_NOFILE, soft and
        hard), as `ulimit -n` would set it."""
        assert self.proc is None or self.proc.poll() is not None, "already serving"
        self._log = open(self.log_path, "ab")
        self._log.write(("---- serve start %d ----\n" % self.starts).encode())
        self._log.flush()
        self.starts += 1
        env = dict(os.environ)
        env.pop("ENTRYSYNC_LIBRARY", None)
        preexec = None
        if nofile:
            def preexec():
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([BIN, "--library", self.lib, "serve", "--listen", self.addr] + list(extra),
                                     stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=preexec)
        if wait:
            self.wait_listening()
        return self.proc

    def wait_listening(self):
        # Only this start's lines count: the log file keeps earlier starts'.
        marker = "---- serve start %d ----" % (self.starts - 1)
        wait_until(lambda: self.proc.poll() is not None or "listening on" in self.log().split(marker)[-1],
                   30 * SLOW, "%s to listen" % self.name)
        if self.proc.poll() is not None:
            raise AssertionError("%s: serve exited with %s\n%s" % (self.name, self.proc.returncode, self.log_tail()))
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError("%s: daemon died with %s\n%s" % (self.name, self.proc.returncode, self.log_tail()))

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL if it does not exit; returns the exit code."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout if timeout is not None else 20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=25):
        return "\n".join("    " + l for l in self.log().splitlines()[-n:])


def pair(a, b, addr_a=True, addr_b=True):
    """Pairs a and b on both sides (a dials b if b has an address, and vice versa)."""
    a.add_peer(b, with_addr=addr_b)
    b.add_peer(a, with_addr=addr_a)


def logs(*devices):
    return "".join("\n--- %s log:\n%s" % (d.name, d.log_tail()) for d in devices)


def wait_watermark(dev, owner, seq, timeout, daemons=()):
    """Waits (cheaply) until dev holds `owner` up to `seq`; returns seconds waited."""
    t0 = time.monotonic()

    def check():
        for d in daemons:
            d.assert_alive()
        wm = dev.watermark(owner)
        return wm is not None and wm >= seq

    wait_until(check, timeout, "%s to hold %s up to seq %d" % (dev.name, owner, seq), interval=0.05,
               on_timeout=lambda: "\nwatermark: %s%s" % (dev.watermark(owner), logs(*daemons)))
    return time.monotonic() - t0


class WatermarkReader:
    """A library's watermark seq of owner `owner_uuid` (0: none), read from its
    file with sqlite3, read-only, on one connection: cheap enough to poll
    every few ms while a daemon writes (benchmarks time syncs with it)."""

    def __init__(self, lib_dir, owner_uuid):
        path = os.path.join(lib_dir, "library.db")
        self.db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, isolation_level=None)
        self.owner = bytes.fromhex(owner_uuid.replace("-", ""))

    def seq(self):
        row = self.db.execute(
            "SELECT w.seq FROM watermark w JOIN device d ON d.id = w.owner WHERE d.uuid = ?",
            (self.owner,)).fetchone()
        return row[0] if row else 0

    def close(self):
        self.db.close()


def wait_digests_equal(owner, devices, timeout, daemons=()):
    """Waits until `digest --device owner` is identical (and non-empty) on all
    devices; returns (seconds waited, digest tuple)."""
    t0 = time.monotonic()
    state = {}

    def check():
        for d in daemons:
            d.assert_alive()
        ds = [d.digest(owner) for d in devices]
        state["last"] = ds
        return ds[0] is not None and all(x == ds[0] for x in ds) and ds[0]

    got = wait_until(check, timeout, "digest of %s equal on %s" % (owner, [d.name for d in devices]),
                     interval=0.1,
                     on_timeout=lambda: "\nlast digests: %s%s" % (state.get("last"), logs(*daemons)))
    return time.monotonic() - t0, got


def temp_base():
    """ENTRYSYNC_IT_TMPDIR, else /dev/shm when it is a roomy tmpfs (creating 100K
    files there is ~10x faster than on a disk), else the default temp dir."""
    if os.environ.get("ENTRYSYNC_IT_TMPDIR"):
        return os.environ["ENTRYSYNC_IT_TMPDIR"]
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize > (2 << 30) and st.f_favail > 1_000_000:
            return shm
    except OSError:
        pass
    return None


class EsTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="es-it-", dir=temp_base())
        self.devices = []

    def tearDown(self):
        for d in self.devices:
            try:
                d.stop(timeout=10)
            except Exception:
                d.kill9()
        if os.environ.get("ENTRYSYNC_IT_KEEP"):
            sys.stderr.write("kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def device(self, name, library_id=None):
        d = Device(self.tmp, name, library_id)
        self.devices.append(d)
        return d

    def library(self, *names):
        """Devices of one library: the first creates it, the others join it."""
        first = self.device(names[0])
        return [first] + [self.device(n, first.library_id) for n in names[1:]]
