#!/usr/bin/env python3
"""What an idle `entrysync serve` costs, with real daemons on localhost.

    bench/daemon_idle.py [--bin build/entrysync] [--seconds 30] [--json FILE]

Builds nothing: it runs the binary given by --bin. Three figures (issue 8,
"Targets"), each from /proc:

  1. context switches per second of an idle daemon with two connected
     peers, summed over all its threads (voluntary + nonvoluntary in
     /proc/PID/task/*/status), over --seconds once every daemon is connected
     and current. Target <= 5/s. Every thread's share is printed.
  2. threads of a daemon (entries of /proc/PID/task) with 8 connected peers
     vs with 2. Target: equal.
  3. established TCP connections held by a daemon whose 2 peers and itself
     all have each other's addresses, so that every pair dials both ways
     (its socket inodes in /proc/PID/fd matched against /proc/net/tcp{,6}).
     Target: 2, one per peer.

Setups: a "mesh" of three devices, every pair paired both ways with
addresses (figures 1, 2 and 3 on device `m0`), and a "star" of a hub with 8
peers, each paired with the hub only, both ways with addresses (figure 2;
its idle rate is printed too). Every device indexes a tree of --files files.
"Connected and current": every daemon's status shows a session in state
`current` with each of its peers, every device holds every owner it knows
of up to that owner's max seq, and this held for --settle seconds.

Every daemon is stopped and the temp dir removed at exit (--keep keeps the
libraries and daemon logs). Exit code 0; with --check, 1 when a target is
missed. Python 3 stdlib; the library and daemon helpers are those of the
integration tests (tests/integration/es.py).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import es  # noqa: E402

CTX_TARGET = 5.0


# ---- /proc ----------------------------------------------------------------
def threads(pid):
    """{tid: (name, voluntary + nonvoluntary context switches)} of pid; the
    name is the thread's comm ("main" for the main thread). Threads inherit
    their creator's name: the snapshot preparer is named like the main
    thread, asio's resolver thread like the io thread (es-io)."""
    out = {}
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            with open(os.path.join(base, tid, "comm")) as f:
                name = f.read().strip()
            switches = 0
            with open(os.path.join(base, tid, "status")) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            out[int(tid)] = ("main" if int(tid) == pid else name, switches)
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return out


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def established_tcp(pid):
    """[(local, remote)] of the TCP connections in state ESTABLISHED whose
    socket is open in process pid (addresses as hex, from /proc/net/tcp*)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    conns = []
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                for line in f:
                    p = line.split()
                    # sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                    if p[3] == "01" and p[9] in inodes:
                        conns.append((p[1], p[2]))
        except FileNotFoundError:
            pass
    return conns


def hexaddr(a):
    """'0100007F:1F40' -> '127.0.0.1:8000' (IPv4 only; else as is)."""
    host, port = a.split(":")
    if len(host) != 8:
        return a
    octets = [str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0)]
    return "%s:%d" % (".".join(octets), int(port, 16))


# ---- setups ---------------------------------------------------------------
class Setup:
    """Devices of one library, each with a few files, paired along `edges`
    (both ways, with addresses), then all serving."""

    def __init__(self, base, name, names, edges, files, addresses=True):
        self.name = name
        self.edges = edges
        self.devices = []
        first = es.Device(base, names[0])
        self.devices.append(first)
        for n in names[1:]:
            self.devices.append(es.Device(base, n, first.library_id))
        self.by_name = {d.name: d for d in self.devices}
        self.peers = {d.name: set() for d in self.devices}
        for a, b in edges:
            es.pair(self.by_name[a], self.by_name[b], addr_a=addresses, addr_b=addresses)
            self.peers[a].add(b)
            self.peers[b].add(a)
        for d in self.devices:
            es.make_tree(d.data, files, per_dir=max(1, files))
            d.add_location()

    def serve(self):
        """All daemons at once, so that paired daemons dial each other at
        about the same time."""
        for d in self.devices:
            d.serve(wait=False)
        for d in self.devices:
            d.wait_listening()

    def serve_all_dialing(self):
        """Makes every paired daemon dial its peers at the same moment: the
        daemons start paired without addresses (so they dial nobody) and
        listen; then, all stopped (SIGSTOP), each is sent its peers'
        addresses (`peer add` again, which the CLI hands to the daemon over
        LIBRARY/control.sock: the requests wait in the socket's backlog) and
        all continue at once: each pairs and dials every peer, which is
        dialing it too."""
        self.serve()
        for d in self.devices:
            os.kill(d.proc.pid, signal.SIGSTOP)
        env = dict(os.environ)
        env.pop("ENTRYSYNC_LIBRARY", None)
        pending = []
        try:
            for a, b in self.edges:
                for x, y in ((self.by_name[a], self.by_name[b]), (self.by_name[b], self.by_name[a])):
                    args = [es.BIN, "--library", x.lib, "peer", "add", "--name", y.name, "--id", y.device_id,
                            "--addr", y.addr]
                    pending.append((args, subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                                           stderr=subprocess.PIPE, text=True)))
            # Time for every command to start and queue its request (a late
            # one is served a little later: the dials are then less
            # simultaneous, nothing breaks).
            time.sleep(0.5)
        finally:
            for d in self.devices:
                os.kill(d.proc.pid, signal.SIGCONT)
        for args, p in pending:
            out, err = p.communicate(timeout=60 * es.SLOW)
            if p.returncode != 0:
                raise RuntimeError("%s -> rc %d: %s" % (" ".join(args), p.returncode, err.strip()))

    def connections(self, name):
        """What the daemon's log says of its connections: dials that came up,
        failed dials, accepted connections, and duplicates closed by the
        tie-break (this side's connection of a pair that both dialed)."""
        log = self.by_name[name].log()
        return {"dialed": len(re.findall(r"\] connected to \S+ at ", log)),
                "dial_failed": log.count("(next try in"),
                "accepted": log.count("] accepted "),
                "duplicates_closed": log.count("keeping the other connection")}

    def stop(self):
        for d in self.devices:
            try:
                d.stop(timeout=10)
            except Exception:
                d.kill9()

    def _current(self, state):
        max_seq = {}
        statuses = {}
        for d in self.devices:
            d.assert_alive()
            st = d.status()
            statuses[d.name] = st
            max_seq[d.name] = next(o["max_seq"] for o in st["owners"] if o.get("local"))
        for d in self.devices:
            st = statuses[d.name]
            daemon = st.get("daemon") or {}
            current = {s["peer"] for s in daemon.get("sessions", []) if s["state"] == "current"}
            if not self.peers[d.name] <= current:
                state["why"] = "%s: sessions current with %s of %s" % (d.name, sorted(current),
                                                                       sorted(self.peers[d.name]))
                return False
            for o in st["owners"]:
                if o.get("local") or o["name"] not in max_seq:
                    continue
                wm = o["watermark"]["seq"] if o.get("watermark") else 0
                if wm < max_seq[o["name"]]:
                    state["why"] = "%s holds %s up to %d of %d" % (d.name, o["name"], wm, max_seq[o["name"]])
                    return False
        return True

    def wait_current(self, settle, timeout):
        """Waits until connected and current for `settle` s in a row; returns
        the seconds from the call until it first was."""
        t0 = time.monotonic()
        state = {}
        since = None
        first = None
        deadline = t0 + timeout
        while True:
            if self._current(state):
                now = time.monotonic()
                if since is None:
                    since = now
                    first = first or now - t0
                if now - since >= settle:
                    return first
            else:
                since = None
            if time.monotonic() > deadline:
                raise AssertionError("%s: not connected and current after %.0fs: %s%s"
                                     % (self.name, timeout, state.get("why"), es.logs(*self.devices)))
            time.sleep(0.2)


def rates(before, after, elapsed):
    """Context switches per second between two threads() readings of one
    process, in all and per thread ("new": started in between)."""
    per_thread = []
    for tid, (name, n) in sorted(after.items()):
        start = before.get(tid, (name, 0))[1]
        per_thread.append({"tid": tid, "name": name, "switches": n - start,
                           "per_s": round((n - start) / elapsed, 2), "new": tid not in before})
    total = sum(t["switches"] for t in per_thread)
    return {"seconds": round(elapsed, 2), "switches": total, "per_s": round(total / elapsed, 2),
            "threads": per_thread, "threads_gone": sorted(set(before) - set(after))}


def idle_rates(pids, seconds):
    """{name: rates(...)} of every process of `pids` ({name: pid}) over one window."""
    before = {n: threads(p) for n, p in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    after = {n: threads(p) for n, p in pids.items()}
    elapsed = time.monotonic() - t0
    return {n: rates(before[n], after[n], elapsed) for n in pids}


# ---- report -----------------------------------------------------------------
def print_table(res):
    rows = [
        ("idle context switches/s, daemon with 2 peers (m0)", "<= %g" % CTX_TARGET,
         "%.2f" % res["idle_2_peers"]["per_s"], res["idle_2_peers"]["per_s"] <= CTX_TARGET),
        ("threads, 8 peers vs 2 peers", "equal",
         "%d vs %d" % (res["threads"]["8_peers"], res["threads"]["2_peers"]),
         res["threads"]["8_peers"] == res["threads"]["2_peers"]),
        ("established TCP connections, 2 peers all dialing (m0)", "2",
         "%s" % res["tcp"]["m0"], all(n == 2 for n in res["tcp_samples"]["m0"])),
    ]
    w = max(len(r[0]) for r in rows)
    print("%-*s  %-8s  %-12s  %s" % (w, "figure", "target", "measured", "met"))
    for name, target, got, ok in rows:
        print("%-*s  %-8s  %-12s  %s" % (w, name, target, got, "yes" if ok else "NO"))
    print()
    print("idle context switches/s of every daemon (over %.1fs):" % res["idle_2_peers"]["seconds"])
    for who, r in res["idle_all"].items():
        print("  %-14s %6.2f/s   %s" % (who, r["per_s"], ", ".join(
            "%s %.2f" % (t["name"], t["per_s"]) for t in r["threads"])))
    print("TCP connections held, sampled before and after the window: %s" % res["tcp_samples"])
    print("mesh: %d TCP connections came up for %d pairs (every pair dialed both ways); per daemon: %s"
          % (res["mesh_connections"]["set_up"], res["mesh_connections"]["pairs"], res["connections_logged"]))
    print("threads of m0 (2 peers): %s" % ", ".join(res["thread_names"]["2_peers"]))
    print("threads of hub (8 peers): %s" % ", ".join(res["thread_names"]["8_peers"]))
    print("connected and current after: mesh %.2fs, star %.2fs (daemons started -> first current)"
          % (res["current_after_s"]["mesh"], res["current_after_s"]["star"]))
    return all(r[3] for r in rows)


def thread_names(pid):
    return sorted(name for name, _ in threads(pid).values())


def measure(args, base):
    res = {"binary": es.BIN, "seconds": args.seconds, "files_per_device": args.files}
    # The mesh: m0, m1, m2, every pair paired both ways with addresses.
    names = ["m0", "m1", "m2"]
    mesh = Setup(os.path.join(base, "mesh"), "mesh", names,
                 [(a, b) for i, a in enumerate(names) for b in names[i + 1:]], args.files, addresses=False)
    setups = [mesh]
    try:
        mesh.serve_all_dialing()
        res["current_after_s"] = {"mesh": mesh.wait_current(args.settle, args.timeout)}
        m0 = mesh.by_name["m0"]
        res["tcp_samples"] = {d.name: [len(established_tcp(d.proc.pid))] for d in mesh.devices}
        res["threads"] = {"2_peers": thread_count(m0.proc.pid)}
        res["thread_names"] = {"2_peers": thread_names(m0.proc.pid)}
        # Figure 1, every daemon of the mesh in one window (m0 is the one reported).
        res["idle_all"] = idle_rates({d.name: d.proc.pid for d in mesh.devices}, args.seconds)
        res["idle_2_peers"] = res["idle_all"]["m0"]
        for d in mesh.devices:
            d.assert_alive()
            res["tcp_samples"][d.name].append(len(established_tcp(d.proc.pid)))
        res["tcp"] = {d.name: res["tcp_samples"][d.name][-1] for d in mesh.devices}
        res["tcp_connections_m0"] = [(hexaddr(l), hexaddr(r)) for l, r in established_tcp(m0.proc.pid)]
        res["connections_logged"] = {d.name: mesh.connections(d.name) for d in mesh.devices}
        # Every connection that came up was accepted by exactly one daemon.
        res["mesh_connections"] = {"set_up": sum(c["accepted"] for c in res["connections_logged"].values()),
                                   "pairs": len(mesh.edges)}
        mesh.stop()

        # The star: a hub with 8 peers.
        peers = ["p%d" % i for i in range(1, 9)]
        star = Setup(os.path.join(base, "star"), "star", ["hub"] + peers, [("hub", p) for p in peers], args.files)
        setups.append(star)
        star.serve()
        res["current_after_s"]["star"] = star.wait_current(args.settle, args.timeout)
        hub = star.by_name["hub"]
        res["threads"]["8_peers"] = thread_count(hub.proc.pid)
        res["thread_names"]["8_peers"] = thread_names(hub.proc.pid)
        res["tcp_samples"]["hub"] = [len(established_tcp(hub.proc.pid))]
        if args.star_seconds > 0:
            res["idle_all"]["hub (8 peers)"] = idle_rates({"hub": hub.proc.pid}, args.star_seconds)["hub"]
        res["tcp_samples"]["hub"].append(len(established_tcp(hub.proc.pid)))
        res["threads"]["8_peers_after"] = thread_count(hub.proc.pid)
        hub.assert_alive()
    finally:
        for s in setups:
            s.stop()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "entrysync"), help="entrysync binary")
    ap.add_argument("--seconds", type=float, default=30, help="idle window of the mesh (default 30)")
    ap.add_argument("--star-seconds", type=float, default=10,
                    help="idle window of the 8-peer hub, printed only (default 10; 0: none)")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds connected and current before a window starts (default 3)")
    ap.add_argument("--files", type=int, default=5, help="files per device (default 5)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to get connected and current")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--keep", action="store_true", help="keep libraries and daemon logs")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    es.use_binary(args.bin)
    args.timeout *= es.SLOW

    # SIGTERM / SIGHUP end the run like Ctrl-C: daemons stopped, temp dir removed.
    def interrupted(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    base = tempfile.mkdtemp(prefix="es-idle-", dir=es.temp_base())
    try:
        res = measure(args, base)
    finally:
        if args.keep:
            sys.stderr.write("kept %s\n" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    met = print_table(res)
    res["targets_met"] = met
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 1 if (args.check and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
