#!/usr/bin/env python3
"""A daemon under hostile load still serves its paired peers, with bounded memory and logs.

    bench/hostile_load.py [--bin build/entrysync] [--entries 100000] [--idle 2000]
                          [--nofile 1024] [--attack-seconds 30] [--json FILE] [--check]

Real processes on 127.0.0.1 (issue 9, item 6). Four devices of one library:
`alpha` and `beta` run daemons, paired both ways with addresses; `carol` and
`mallory` are paired with beta and run no daemon. Beta, the receiver under
attack, is started with `ulimit -n --nofile` (1024, the usual default).

1. Normal: alpha indexes a folder of --entries files (`location add`, which
   its daemon runs); the sync time is from the start of that command until
   beta's library holds alpha's rows up to alpha's max seq (beta's
   `watermark` row, read with sqlite3, read-only, every 20 ms). Then
   --probes times `carol sync --peer beta --fetch lazy`: a paired device's
   new connection, TLS + Hello + "done" both ways, start to exit.
2. Under attack: this script raises its own RLIMIT_NOFILE and holds --idle
   silent TCP connections to beta (no TLS ClientHello; each one beta closes
   is opened again after --reconnect-delay s), and `mallory`, a paired
   device, floods beta with Pings and never reads (its identity from its
   library's identity/ folder; frames by hand, tests/integration/hostile.py);
   cut off, it connects again after --reconnect-delay s. After --warmup s,
   the same measurements with another folder of --entries files. The attack
   lasts at least --attack-seconds.

Figures: sync time under attack vs normal (target <= 2x), new-connection
time, beta's peak RSS over its whole life (VmHWM, target <= 150 MB), beta's
log size at the end (target <= 1 MB), beta's CPU during the attack, and
what the attackers saw (connections closed by beta, flood sessions and how
long each lasted). Every daemon is stopped and the temp dir removed at exit
(--keep keeps them). Exit code 0; with --check, 1 when a target is missed.
Python 3 stdlib; the device and daemon helpers are those of the integration
tests (tests/integration/es.py, hostile.py).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import es  # noqa: E402
import hostile  # noqa: E402

RSS_TARGET_MB = 150.0
LOG_TARGET_BYTES = 1 << 20
SLOWDOWN_TARGET = 2.0


def proc_status(pid, field):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM) in MB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """The largest VmRSS of a process, sampled every 0.2 s."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.max_mb = 0.0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.max_mb = max(self.max_mb, proc_status(self.pid, "VmRSS"))
            except (OSError, ValueError):
                return
            self.halt.wait(0.2)


def timed_sync(alpha, beta_wm, folder, timeout):
    """Indexes `folder` on alpha; (seconds until beta holds it, seconds of the command)."""
    t0 = time.monotonic()
    alpha.add_location(folder)
    t1 = time.monotonic()
    target = alpha.max_seq()
    deadline = time.monotonic() + timeout
    while beta_wm.seq() < target:
        if time.monotonic() > deadline:
            raise AssertionError("beta does not hold alpha up to seq %d after %.0fs (holds %d)%s"
                                 % (target, timeout, beta_wm.seq(), es.logs(alpha)))
        time.sleep(0.02)
    t2 = time.monotonic()
    return t2 - t0, t1 - t0


def probe(carol, n, timeout):
    """Seconds of `carol sync --peer beta --fetch lazy`, n times."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        carol.cli("sync", "--peer", "beta", "--fetch", "lazy", "--timeout", str(timeout), timeout=timeout + 30)
        out.append(time.monotonic() - t0)
    return out


def measure(args, base):
    res = {"binary": es.BIN, "entries": args.entries, "idle_connections": args.idle, "nofile": args.nofile}
    alpha = es.Device(base, "alpha")
    beta = es.Device(base, "beta", alpha.library_id)
    carol = es.Device(base, "carol", alpha.library_id)
    mallory = es.Device(base, "mallory", alpha.library_id)
    es.pair(alpha, beta)
    for d in (carol, mallory):
        beta.add_peer(d, with_addr=False)
        d.add_peer(beta)
    daemons = (alpha, beta)
    try:
        folders = {}
        for name, n in (("warm", 1000), ("normal", args.entries), ("attack", args.entries)):
            folders[name] = os.path.join(alpha.data, name)
            es.make_tree(folders[name], n)
        beta.serve(nofile=args.nofile)
        alpha.serve()
        wm = es.WatermarkReader(beta.lib, alpha.uuid)
        # Connected, and beta holds some of alpha: both runs below move the
        # same kind of delta (a bulk commit on top of held rows).
        timed_sync(alpha, wm, folders["warm"], 60 * es.SLOW)
        pid = beta.proc.pid

        sync_s, index_s = timed_sync(alpha, wm, folders["normal"], 600 * es.SLOW)
        res["normal"] = {"sync_s": round(sync_s, 3), "index_command_s": round(index_s, 3),
                         "connect_s": [round(x, 3) for x in probe(carol, args.probes, 60)]}
        res["normal"]["rss_peak_mb"] = round(proc_status(pid, "VmHWM"), 1)
        res["normal"]["log_bytes"] = os.path.getsize(beta.log_path)

        hostile.raise_nofile(args.idle + 1000)
        log0 = os.path.getsize(beta.log_path)
        cpu0 = cpu_seconds(pid)
        sampler = RssSampler(pid)
        sampler.start()
        t_attack = time.monotonic()
        idle = hostile.IdleConnections("127.0.0.1", beta.port, args.idle, args.reconnect_delay)
        flood = hostile.PingFlood("127.0.0.1", beta.port, os.path.join(mallory.lib, "identity"), mallory.id(),
                                  args.reconnect_delay)
        idle.start()
        flood.start()
        try:
            time.sleep(args.warmup)
            for d in daemons:
                d.assert_alive()
            sync_s, index_s = timed_sync(alpha, wm, folders["attack"], 600 * es.SLOW)
            connect = probe(carol, args.probes, 60)
            rest = args.attack_seconds - (time.monotonic() - t_attack)
            if rest > 0:
                time.sleep(rest)
            for d in daemons:
                d.assert_alive()
        finally:
            flood.stop()
            idle.stop()
            sampler.halt.set()
        attack_s = time.monotonic() - t_attack
        log = beta.log()
        res["attack"] = {
            "sync_s": round(sync_s, 3), "index_command_s": round(index_s, 3),
            "connect_s": [round(x, 3) for x in connect],
            "seconds": round(attack_s, 1),
            "rss_max_mb": round(sampler.max_mb, 1),
            "cpu_s": round(cpu_seconds(pid) - cpu0, 2),
            "log_bytes": os.path.getsize(beta.log_path) - log0,
            "idle": {"opened": idle.opened, "closed_by_daemon": idle.closed_by_peer},
            "flood": {"sessions": flood.connections,
                      "cut_off": len(flood.disconnects),
                      "refused": len(flood.refusals),
                      "mb_sent": round(flood.bytes_sent / 1e6, 1),
                      "seconds_per_session": round(statistics.median([d[0] for d in flood.disconnects]), 3)
                      if flood.disconnects else None,
                      "logged_not_reading": log.count("not reading its replies")},
            "refusals_logged": log.count("refused a connection: "),
        }
        res["rss_peak_mb"] = round(proc_status(pid, "VmHWM"), 1)
        res["log_bytes"] = os.path.getsize(beta.log_path)
        res["log_lines"] = log.count("\n")
        res["log_sample"] = [l for l in log.splitlines() if "refused a connection" in l or "not reading" in l][:8]
        return res
    finally:
        for d in daemons + (carol, mallory):
            try:
                d.stop(timeout=20)
            except Exception:
                d.kill9()


def print_table(res):
    n, a = res["normal"], res["attack"]
    ratio = a["sync_s"] / n["sync_s"] if n["sync_s"] > 0 else float("inf")
    rows = [
        ("sync of %d entries alpha -> beta, under attack vs normal" % res["entries"], "<= %gx" % SLOWDOWN_TARGET,
         "%.2fs vs %.2fs (%.2fx)" % (a["sync_s"], n["sync_s"], ratio), ratio <= SLOWDOWN_TARGET),
        ("beta's peak RSS (VmHWM, whole life)", "<= %g MB" % RSS_TARGET_MB, "%.1f MB" % res["rss_peak_mb"],
         res["rss_peak_mb"] <= RSS_TARGET_MB),
        ("beta's log at the end", "<= 1 MB", "%d bytes" % res["log_bytes"], res["log_bytes"] <= LOG_TARGET_BYTES),
    ]
    w = max(len(r[0]) for r in rows)
    print("%-*s  %-9s  %-26s  %s" % (w, "figure", "target", "measured", "met"))
    for name, target, got, ok in rows:
        print("%-*s  %-9s  %-26s  %s" % (w, name, target, got, "yes" if ok else "NO"))
    print()
    print("attack: %d idle connections, ulimit -n %d, %.0fs; beta used %.1fs CPU, max RSS %.1f MB during it "
          "(%.1f MB before), log +%d bytes"
          % (res["idle_connections"], res["nofile"], a["seconds"], a["cpu_s"], a["rss_max_mb"],
             n["rss_peak_mb"], a["log_bytes"]))
    print("new connection of a paired device (carol sync --fetch lazy): normal %s s, under attack %s s"
          % (n["connect_s"], a["connect_s"]))
    print("idle attacker: %d connections opened, %d closed by beta" % (a["idle"]["opened"],
                                                                       a["idle"]["closed_by_daemon"]))
    f = a["flood"]
    print("ping flood: %d sessions, %d cut off (after %ss each, median), %.1f MB of Pings sent; "
          "beta logged 'not reading its replies' %d times"
          % (f["sessions"], f["cut_off"], f["seconds_per_session"], f["mb_sent"], f["logged_not_reading"]))
    print("beta's log: %d lines; samples:" % res["log_lines"])
    for line in res["log_sample"]:
        print("  " + line)
    return all(r[3] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "entrysync"), help="entrysync binary")
    ap.add_argument("--entries", type=int, default=100000, help="entries per sync (default 100000)")
    ap.add_argument("--idle", type=int, default=2000, help="idle unauthenticated connections (default 2000)")
    ap.add_argument("--nofile", type=int, default=1024, help="beta's open-file limit (default 1024)")
    ap.add_argument("--reconnect-delay", type=float, default=1.0,
                    help="seconds before an attacker's closed connection is opened again (default 1)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of attack before measuring (default 3)")
    ap.add_argument("--attack-seconds", type=float, default=30.0, help="shortest attack (default 30)")
    ap.add_argument("--probes", type=int, default=5, help="new connections timed per phase (default 5)")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--keep", action="store_true", help="keep libraries and daemon logs")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    es.use_binary(args.bin)

    def interrupted(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    base = tempfile.mkdtemp(prefix="es-hostile-", dir=es.temp_base())
    try:
        res = measure(args, base)
    finally:
        if args.keep:
            sys.stderr.write("kept %s\n" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    met = print_table(res)
    res["targets_met"] = met
    print()
    print(json.dumps({k: v for k, v in res.items() if k != "log_sample"}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 1 if (args.check and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
