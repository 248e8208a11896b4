#!/usr/bin/env python3
"""Fault sweep: real `entrysync` processes, real faults, checked invariants.

    tests/faults/sweep.py --bin build/entrysync                 # the full sweep
    tests/faults/sweep.py --bin build/entrysync --quick         # the CI version (ctest faults.quick)

Device alpha indexes N files (`--entries`, default 1,000,000); device beta
starts each trial from the same empty library and pulls alpha's rows with a
forced strategy (`--strategies batch,snapshot`, as test_kill.py and
bench/strategies.sh force one: `serve --strategy S` on the receiver).

Scenarios (`--cases`, default all):

  kill      for each strategy and side (`--sides receiver,sender`), `--kills`
            trials (default 20): both daemons start, the victim gets SIGKILL
            at a random moment of the transfer (uniform over the duration a
            first, unkilled run of that strategy took), is restarted, and the
            transfer must finish with: beta's digest of alpha equal to
            alpha's; beta's lifetime rows_applied equal to alpha's rows
            (nothing applied twice); no .part/.offer left in beta's
            snapshots/; both daemons alive, then stopping cleanly; no
            sanitizer report. A batch transfer resumes at the watermark beta
            had at the kill, a snapshot download at the byte it reached.
  commitkill  the receiver killed the moment its snapshot import committed
            (its watermark polled every 2 ms; `--kills`/4 trials, at least
            1): the .part/.offer it had not removed yet go at its restart.
  diskfull  per strategy: beta's library on a tmpfs too small for alpha's
            rows (mount -t tmpfs -o size=..., as root): one clear error line
            naming the library and the space available (a snapshot import:
            also the space it needs), beta's daemon alive, its library passing
            PRAGMA integrity_check; then the tmpfs grows (remount) and the
            sync completes (a snapshot without being downloaded again), with
            the kill scenario's checks. Skipped when mounting fails (not root).
  corrupt   copies of alpha's library with flipped bytes: `structure` trials
            damage the header of a b-tree page (SQLite's quick_check must
            see it), `random` trials flip random bytes anywhere. `stats` and
            `digest` must not crash; `serve` must refuse with one error line
            and a non-zero exit, or serve only rows alpha really has (a new
            peer syncs from it and is checked against the original export).
            A random flip inside a valid record (a changed name, size...) is
            invisible to SQLite; `serve`'s start-up check recomputes each
            owner's set digest (docs/trust.md) and refuses it. Should one be
            served anyway it counts as `gap` (undetected) — a failure only
            with --strict (100K entries, 24 random flips: 0 gaps).
  twoserve  a second `serve` on a library a daemon holds refuses with one
            line naming the holder's pid, and the first keeps running.

Output: a table (one row per scenario) and a JSON summary on stdout
(`--json FILE` writes every trial too). Exit status 1 when any trial failed.
`--quick`: 10K entries, 2 kills per scenario, 1 structural and 2 random
corruptions (~10 s; at 10K a snapshot is one 1 MiB chunk, so its kills land
before, between or after the download, rarely inside it: the full sweep
covers that).
Python 3 stdlib only; uses tests/integration/es.py.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import es  # noqa: E402

CRASH_MARKS = ("AddressSanitizer", "ThreadSanitizer", "LeakSanitizer", "runtime error:", "terminate called",
               "Segmentation fault", "double free", "stack smashing")
DOWNLOAD_FILE = re.compile(r"^[0-9a-f-]{36}\.(part|offer|offer\.tmp)$")
NO_SPACE = "no space left on the filesystem of "


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def uuid_blob(text):
    return bytes.fromhex(text.replace("-", ""))


class LibView:
    """Reads a library file directly (read-only: no checkpoint, nothing
    written), so that polling costs no process start."""

    def __init__(self, lib):
        self.path = os.path.join(lib, "library.db")

    def query(self, sql, args=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def watermark(self, owner_uuid):
        """(epoch, seq) of owner, or None."""
        rows = self.query("SELECT w.epoch, w.seq FROM watermark w JOIN device d ON d.id = w.owner "
                          "WHERE d.uuid = ?", (uuid_blob(owner_uuid),))
        return tuple(rows[0]) if rows else None

    def integrity(self):
        return "; ".join(r[0] for r in self.query("PRAGMA integrity_check"))


class Sweep:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.results = []  # one dict per trial
        self.calib = {}  # strategy -> {"seconds", "lib_bytes", "snapshot_bytes"}
        self.mounts = []

    # -- setup ---------------------------------------------------------------
    def setup(self):
        a = self.args
        self.base = tempfile.mkdtemp(prefix="es-faults-", dir=a.tmp or es.temp_base())
        t0 = time.monotonic()
        self.a = es.Device(self.base, "alpha")
        self.b = es.Device(self.base, "beta", self.a.library_id)
        es.pair(self.a, self.b)
        es.make_tree(self.a.data, a.entries, per_dir=2000)
        self.a.add_location()
        self.digest = self.a.digest()
        self.max_seq = self.a.max_seq()
        self.a_rows = self.digest[1] + len(self.a.stats()["owners"][0]["locations"])
        self.pristine = os.path.join(self.base, "beta-pristine")
        shutil.copytree(self.b.lib, self.pristine)
        self.pristine_bytes = dir_bytes(self.pristine)
        self.say("alpha: %d entries, max seq %d, %d rows; set up in %.1fs (%s)"
                 % (self.digest[1], self.max_seq, self.a_rows, time.monotonic() - t0, self.base))

    def cleanup(self):
        for d in (self.a, self.b):
            try:
                d.stop(timeout=10)
            except Exception:
                d.kill9()
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if self.args.keep:
            self.say("kept %s" % self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def say(self, msg):
        if not self.args.quiet:
            sys.stderr.write("[sweep %6.1fs] %s\n" % (time.monotonic() - self.t_start, msg))
            sys.stderr.flush()

    def reset_beta(self, into=None):
        """beta's library as it was before any sync (its identity and pairing kept)."""
        lib = into or self.b.lib
        if os.path.ismount(lib):
            for f in os.listdir(lib):
                p = os.path.join(lib, f)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
            for f in os.listdir(self.pristine):
                s, d = os.path.join(self.pristine, f), os.path.join(lib, f)
                shutil.copytree(s, d) if os.path.isdir(s) else shutil.copy2(s, d)
        else:
            shutil.rmtree(lib, ignore_errors=True)
            shutil.copytree(self.pristine, lib)

    # -- shared checks ---------------------------------------------------------
    def pull_flags(self, strategy):
        f = ["--strategy", strategy]
        if self.args.rate_limit:
            f += ["--rate-limit", str(self.args.rate_limit)]
        return f

    def leftovers(self):
        d = os.path.join(self.b.lib, "snapshots")
        return sorted(f for f in os.listdir(d) if DOWNLOAD_FILE.match(f)) if os.path.isdir(d) else []

    def wait_converged(self, timeout, what):
        view = LibView(self.b.lib)
        state = {}

        def done():
            self.a.assert_alive()
            self.b.assert_alive()
            wm = view.watermark(self.a.uuid)
            state["wm"] = wm
            return wm is not None and wm[1] >= self.max_seq

        es.wait_until(done, timeout, what, interval=0.05,
                      on_timeout=lambda: "\nbeta's watermark: %s%s" % (state.get("wm"), es.logs(self.a, self.b)))

    def check_synced(self, r):
        """beta holds exactly alpha's rows, each written once, and no download files."""
        got = self.b.digest("alpha")
        check(got == self.digest, "beta's digest of alpha %s != alpha's %s" % (got, self.digest))
        applied = self.b.stats()["rows_applied_total"]
        r["rows_applied"] = applied
        check(applied == self.a_rows, "beta wrote %d rows by replication, alpha has %d: %s"
              % (applied, self.a_rows, "something was applied twice" if applied > self.a_rows else "rows missing"))
        left = []
        deadline = time.monotonic() + 10 * es.SLOW
        while time.monotonic() < deadline:
            left = self.leftovers()
            if not left:
                break
            time.sleep(0.1)
        check(not left, "left in beta's snapshots/: %s" % left)

    def stop_both(self):
        """Both daemons stop cleanly on SIGTERM; no sanitizer report in their logs."""
        for d in (self.a, self.b):
            d.assert_alive()
        rcs = {d.name: d.stop() for d in (self.a, self.b)}
        check(all(rc == 0 for rc in rcs.values()), "exit codes on SIGTERM: %s" % rcs)
        for d in (self.a, self.b):
            self.check_no_crash(d.log(), d.name)

    @staticmethod
    def check_no_crash(text, who):
        for m in CRASH_MARKS:
            check(m not in text, "%s: '%s' in its output" % (who, m))

    def record(self, r):
        self.results.append(r)
        mark = r["status"].upper()
        self.say("%-28s %-5s %s" % (r["scenario"] + (" #%d" % r["trial"] if "trial" in r else ""), mark,
                                     r.get("error") or r.get("phase") or r.get("outcome") or ""))

    def trial(self, r, body):
        t0 = time.monotonic()
        try:
            body(r)
            r.setdefault("status", "pass")
        except Fail as e:
            r["status"] = "fail"
            r["error"] = str(e).splitlines()[0][:300]
            r["detail"] = str(e)[-3000:]
        except Exception as e:  # a timeout or a harness error is a failed trial too
            r["status"] = "fail"
            r["error"] = ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:300]
            r["detail"] = traceback.format_exc()[-3000:] + "\n" + str(e)[-3000:]
        finally:
            r["seconds"] = round(time.monotonic() - t0, 2)
            for d in (self.a, self.b):
                if d.running():
                    d.kill9()
        self.record(r)
        return r

    # -- calibration: one unkilled transfer per strategy -----------------------
    def calibrate(self, strategy):
        def body(r):
            self.reset_beta()
            self.a.serve()
            self.b.serve(*self.pull_flags(strategy))
            t0 = time.monotonic()
            self.wait_converged(600 * es.SLOW, "the calibration transfer (%s)" % strategy)
            seconds = time.monotonic() - t0
            self.check_synced(r)
            offered = re.findall(r"offers a snapshot of alpha: \d+ entries up to seq \d+, (\d+) bytes", self.b.log())
            self.stop_both()
            self.calib[strategy] = {"seconds": seconds, "lib_bytes": dir_bytes(self.b.lib),
                                    "snapshot_bytes": int(offered[0]) if offered else 0}
            r["transfer_s"] = round(seconds, 2)
            r.update({k: v for k, v in self.calib[strategy].items() if k != "seconds"})
            r["phase"] = "%.2fs, library %s, snapshot %s" % (seconds, es_mb(r["lib_bytes"]),
                                                             es_mb(r["snapshot_bytes"]))
        return self.trial({"scenario": "baseline %s" % strategy, "case": "baseline", "strategy": strategy}, body)

    # -- kill -9 -----------------------------------------------------------------
    def phase_at_kill(self, strategy):
        """What beta holds the moment the victim died."""
        wm = LibView(self.b.lib).watermark(self.a.uuid)
        seq = wm[1] if wm else 0
        part = os.path.join(self.b.lib, "snapshots", self.a.uuid + ".part")
        part_bytes = os.path.getsize(part) if os.path.exists(part) else None
        left = self.leftovers()
        if seq >= self.max_seq:
            phase = "imported, files left" if left else "done"
        elif strategy == "snapshot" and part_bytes is not None:
            size = self.calib[strategy]["snapshot_bytes"]
            phase = "downloaded, not imported" if size and part_bytes >= size else "downloading"
        elif seq > 0:
            phase = "mid-stream"
        else:
            phase = "before the first row"
        return {"phase": phase, "seq": seq, "part_bytes": part_bytes}

    def kill_trial(self, strategy, side, i):
        a, b = self.a, self.b
        victim = b if side == "receiver" else a
        calib = self.calib[strategy]["seconds"]

        def body(r):
            self.reset_beta()
            start_b = lambda: b.serve(*self.pull_flags(strategy))  # noqa: E731
            if side == "receiver":
                a.serve()
                start_b()
            else:
                start_b()
                a.serve()
            delay = self.rng.uniform(0.02, 0.95) * calib
            r["kill_after_s"] = round(delay, 3)
            time.sleep(delay)
            a.assert_alive()
            b.assert_alive()
            victim.kill9()
            at = self.phase_at_kill(strategy)
            r.update(at)
            if side == "sender":  # the receiver notices; what it had buffered may still commit
                time.sleep(0.2)
            restart_marker = "---- serve start %d ----" % victim.starts
            if side == "receiver":
                start_b()
            else:
                a.serve()
            t0 = time.monotonic()
            self.wait_converged(max(60, 20 * calib) * es.SLOW, "the transfer to finish after the restart")
            r["resume_s"] = round(time.monotonic() - t0, 2)
            self.check_synced(r)
            self.check_resumed(r, strategy, side, at, b.log().split(restart_marker)[-1] if side == "receiver"
                               else b.log())
            self.stop_both()

        return self.trial({"scenario": "kill %s %s" % (side, strategy), "case": "kill", "strategy": strategy,
                           "side": side, "trial": i}, body)

    def check_resumed(self, r, strategy, side, at, log_after):
        """Evidence that the restarted transfer went on from what was committed."""
        if strategy == "batch" and side == "receiver" and at["phase"] in ("mid-stream", "before the first row"):
            pulls = [int(s) for s in re.findall(r"pulling alpha from alpha: since seq (\d+)", log_after)]
            check(pulls and pulls[0] == at["seq"],
                  "the restarted receiver pulled from seq %s, its watermark at the kill was %d" % (pulls, at["seq"]))
            r["resumed"] = "from seq %d" % pulls[0]
        elif strategy == "snapshot" and side == "receiver" and at["phase"] in ("downloading",
                                                                               "downloaded, not imported"):
            m = re.search(r"offers a snapshot of alpha: .*, resuming at byte (\d+)", log_after)
            check(m and int(m.group(1)) == at["part_bytes"],
                  "the restarted receiver did not resume at byte %s: %s" % (at["part_bytes"], m and m.group(0)))
            r["resumed"] = "at byte %s" % m.group(1)
        elif at["phase"] == "imported, files left" and side == "receiver":
            check("its snapshot was imported" in log_after, "the restart did not remove the finished download")
            r["resumed"] = "leftovers removed at start"

    def commitkill_trial(self, i):
        """SIGKILL the receiver the moment its snapshot import committed
        (polling its watermark every few ms): the .part and .offer it had
        not removed yet must go when it starts again."""
        a, b = self.a, self.b

        def body(r):
            self.reset_beta()
            a.serve()
            b.serve("--strategy", "snapshot")
            view = LibView(b.lib)
            deadline = time.monotonic() + 600 * es.SLOW
            while True:
                wm = view.watermark(a.uuid)
                if wm and wm[1] >= self.max_seq:
                    break
                check(time.monotonic() < deadline and b.running(), "the import did not commit")
                time.sleep(0.002)
            b.kill9()
            at = self.phase_at_kill("snapshot")
            r.update(at)
            marker = "---- serve start %d ----" % b.starts
            b.serve("--strategy", "snapshot")
            self.wait_converged(120 * es.SLOW, "beta to start again")
            self.check_synced(r)
            self.check_resumed(r, "snapshot", "receiver", at, b.log().split(marker)[-1])
            self.stop_both()

        return self.trial({"scenario": "kill receiver at commit", "case": "kill", "strategy": "snapshot",
                           "side": "receiver", "trial": i}, body)

    # -- disk full -------------------------------------------------------------
    def diskfull_trial(self, strategy):
        a, b = self.a, self.b
        c = self.calib[strategy]
        grown = self.pristine_bytes + c["lib_bytes"] * 4 + c["snapshot_bytes"] * 2 + (64 << 20)
        rows_bytes = max(c["lib_bytes"] - self.pristine_bytes, 1 << 20)
        if strategy == "snapshot":  # the download fits, its import does not
            small = self.pristine_bytes + c["snapshot_bytes"] + rows_bytes // 2 + (256 << 10)
        else:
            small = self.pristine_bytes + rows_bytes // 2 + (256 << 10)

        def body(r):
            r["tmpfs_bytes"] = [small, grown]
            lib = b.lib
            shutil.rmtree(lib, ignore_errors=True)
            os.makedirs(lib)
            m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % small, "tmpfs", lib],
                               capture_output=True, text=True)
            if m.returncode != 0:
                r["status"] = "skip"
                r["outcome"] = "cannot mount a tmpfs (%s)" % m.stderr.strip()
                return
            self.mounts.append(lib)
            try:
                self.reset_beta(into=lib)
                a.serve()
                marker = "---- serve start %d ----" % b.starts
                b.serve(*["--strategy", strategy])
                state = {}
                log = lambda: b.log().split(marker)[-1]  # noqa: E731

                def failed():
                    a.assert_alive()
                    b.assert_alive()
                    lines = [l for l in log().splitlines() if NO_SPACE in l]
                    state["lines"] = lines
                    return lines

                lines = es.wait_until(failed, 120 * es.SLOW, "beta to report its full disk", interval=0.1,
                                      on_timeout=lambda: es.logs(a, b))
                line = lines[0]
                r["error_line"] = line
                check(lib in line and "MB available" in line, "the error names neither the library nor the "
                      "space available: %s" % line)
                if strategy == "snapshot":
                    check(("import snapshot" in line and "needs about" in line) or "download a snapshot" in line,
                          "not a snapshot's disk-full error: %s" % line)
                time.sleep(0.5)
                b.assert_alive()
                ok = LibView(lib).integrity()
                check(ok == "ok", "beta's library fails PRAGMA integrity_check on the full disk: %s" % ok)
                t_full = time.monotonic()
                m = subprocess.run(["mount", "-o", "remount,size=%d" % grown, lib], capture_output=True, text=True)
                check(m.returncode == 0, "remount: %s" % m.stderr)
                self.wait_converged(180 * es.SLOW, "the sync to complete once the disk has room")
                r["after_room_s"] = round(time.monotonic() - t_full, 2)
                r["full_errors"] = len([l for l in log().splitlines() if NO_SPACE in l])
                self.check_synced(r)
                if strategy == "snapshot":
                    offers = re.findall(r"offers a snapshot of alpha: [^\n]*", log())
                    fresh = [o for o in offers if "resuming at byte" not in o]
                    check(len(fresh) == 1, "the snapshot was downloaded %d times: %s" % (len(fresh), offers))
                    r["offers"] = len(offers)
                r["outcome"] = "%d disk-full errors, synced %.1fs after the disk grew" % (r["full_errors"],
                                                                                         r["after_room_s"])
                self.stop_both()
            finally:
                for d in (a, b):
                    if d.running():
                        d.kill9()
                if self.args.keep:  # what the tmpfs held, for a look afterwards
                    shutil.copytree(lib, os.path.join(self.base, "diskfull-%s-lib" % strategy), dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("*.sock"))
                subprocess.run(["umount", lib], capture_output=True)
                if lib in self.mounts:
                    self.mounts.remove(lib)
                os.makedirs(lib, exist_ok=True)

        return self.trial({"scenario": "diskfull %s" % strategy, "case": "diskfull", "strategy": strategy}, body)

    # -- corruption ------------------------------------------------------------
    def prepare_corrupt(self):
        """A copy of alpha's library in one file (its WAL checkpointed) and its canonical export."""
        self.a.stop()
        self.clean_alpha = os.path.join(self.base, "alpha-clean")
        shutil.rmtree(self.clean_alpha, ignore_errors=True)
        shutil.copytree(self.a.lib, self.clean_alpha, ignore=shutil.ignore_patterns("snapshots", "*.sock", "lock",
                                                                                     "status.json"))
        con = sqlite3.connect(os.path.join(self.clean_alpha, "library.db"))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()  # the last connection: the WAL goes
        for f in ("library.db-wal", "library.db-shm"):
            check(not os.path.exists(os.path.join(self.clean_alpha, f)), "%s left after a checkpoint" % f)
        self.export_path = os.path.join(self.base, "alpha.export")
        with open(self.export_path, "w") as f:
            f.write(self.a.export())

    def btree_pages(self, path):
        """Page numbers (from 2) of b-tree pages: page type 2, 5, 10 or 13."""
        with open(path, "rb") as f:
            data = f.read()
        size = int.from_bytes(data[16:18], "big") or 65536
        return size, [p for p in range(2, len(data) // size + 1) if data[(p - 1) * size] in (2, 5, 10, 13)]

    def corrupt_trial(self, kind, i):
        a, b = self.a, self.b

        def body(r):
            shutil.rmtree(a.lib, ignore_errors=True)
            shutil.copytree(self.clean_alpha, a.lib)
            db = os.path.join(a.lib, "library.db")
            size = os.path.getsize(db)
            with open(db, "r+b") as f:
                if kind == "structure":
                    page_size, pages = self.btree_pages(db)
                    page = self.rng.choice(pages)
                    f.seek((page - 1) * page_size + 1)
                    f.write(bytes(self.rng.randrange(256) for _ in range(7)))  # freeblock, cells, content start
                    r["where"] = "header of b-tree page %d of %d" % (page, size // page_size)
                else:
                    spots = sorted(self.rng.randrange(100, size) for _ in range(self.args.flips))
                    for at in spots:
                        f.seek(at)
                        byte = f.read(1)[0]
                        f.seek(at)
                        f.write(bytes([byte ^ self.rng.randrange(1, 256)]))
                    r["where"] = "bytes %s of %d" % (spots, size)
            # Reading commands: an error or an answer, never a crash.
            for cmd in (["stats", "--json"], ["digest"]):
                p = a.cli(*cmd, check=False, timeout=120 * es.SLOW)
                self.check_no_crash(p.stderr, "entrysync %s" % cmd[0])
                check(p.returncode >= 0, "entrysync %s died of signal %d" % (cmd[0], -p.returncode))
                if p.returncode != 0:
                    check(len(p.stderr.strip().splitlines()) == 1, "entrysync %s: not one error line: %s"
                          % (cmd[0], p.stderr[-500:]))
                if cmd[0] == "digest":
                    r["digest_cli"] = ("error" if p.returncode else
                                       "same" if p.stdout.split()[:1] == [self.digest[0]] else "different")
            # serve: refuses with one line, or serves only what alpha has.
            a.serve(wait=False)
            marker = "---- serve start %d ----" % (a.starts - 1)
            es.wait_until(lambda: a.proc.poll() is not None or "listening on" in a.log().split(marker)[-1],
                          120 * es.SLOW, "alpha to listen or refuse")
            log = a.log().split(marker)[-1]
            self.check_no_crash(log, "serve")
            if a.proc.poll() is not None:
                rc = a.stop()
                check(rc > 0, "serve died of signal %d" % -rc)
                errors = [l for l in log.splitlines() if l.startswith("entrysync: error:")]
                check(len(errors) == 1, "serve exited %d without one error line: %s" % (rc, log[-800:]))
                r["outcome"] = "refused at start"
                r["error_line"] = errors[0]
                return
            self.reset_beta()
            p = b.cli("sync", "--peer", "alpha", "--strategy", "batch", "--timeout", str(int(120 * es.SLOW)),
                      "--json", check=False, timeout=180 * es.SLOW)
            self.check_no_crash(p.stderr, "beta's sync")
            check(p.returncode >= 0, "beta's sync died of signal %d" % -p.returncode)
            if a.proc.poll() is not None:
                check(a.proc.returncode >= 0, "alpha's serve died of signal %d" % -a.proc.returncode)
            foreign = self.rows_not_in_alpha()
            r["sync_rc"] = p.returncode
            if p.returncode != 0:
                r["sync_error"] = (p.stderr.strip().splitlines() or [""])[-1][:300]
            if foreign:
                r["outcome"] = "wrong rows served (%d), e.g. %s" % (len(foreign), foreign[0][:120])
                r["status"] = "fail" if self.args.strict else "gap"
            elif p.returncode == 0:
                r["outcome"] = "served, every row right (the flip changed nothing served)"
            else:
                r["outcome"] = "served until a clear error"
            rc = a.stop()
            check(rc is not None and rc >= 0, "alpha's serve died of signal %s" % (rc and -rc))

        return self.trial({"scenario": "corrupt %s" % kind, "case": "corrupt", "kind": kind, "trial": i}, body)

    def rows_not_in_alpha(self):
        """Rows beta holds of alpha that alpha's original export lacks."""
        got = self.b.cli("export", "--device", "alpha", check=False).stdout.splitlines()
        if not got:
            return []
        want = set()
        with open(self.export_path) as f:
            for line in f:
                want.add(hash(line.rstrip("\n")))
        return [line for line in got if hash(line) not in want]

    def restore_alpha(self):
        shutil.rmtree(self.a.lib, ignore_errors=True)
        shutil.copytree(self.clean_alpha, self.a.lib)

    # -- two daemons, one library ---------------------------------------------
    def twoserve_trial(self):
        a = self.a

        def body(r):
            first = a.serve()
            p = es.run(["--library", a.lib, "serve", "--listen", "127.0.0.1:%d" % es.free_port()], check=False,
                       timeout=60 * es.SLOW)
            self.check_no_crash(p.stderr, "the second serve")
            errors = [l for l in p.stderr.splitlines() if l.startswith("entrysync: error:")]
            check(p.returncode > 0 and len(errors) == 1, "second serve: rc %d, %s" % (p.returncode, p.stderr[-500:]))
            check("in use by pid %d" % first.pid in errors[0], "the refusal does not name pid %d: %s"
                  % (first.pid, errors[0]))
            r["error_line"] = errors[0]
            r["outcome"] = "refused"
            a.assert_alive()
            check(a.stop() == 0, "the first serve did not stop cleanly")

        return self.trial({"scenario": "twoserve", "case": "twoserve"}, body)

    # -- the run -----------------------------------------------------------------
    def run(self):
        a = self.args
        self.t_start = time.monotonic()
        try:
            self.setup()
            if "twoserve" in a.cases:
                self.twoserve_trial()
            needs_calib = any(c in a.cases for c in ("kill", "commitkill", "diskfull"))
            for s in a.strategies if needs_calib else []:
                if self.calibrate(s)["status"] != "pass":
                    continue
                if "kill" in a.cases:
                    for side in a.sides:
                        for i in range(a.kills):
                            self.kill_trial(s, side, i)
                if "commitkill" in a.cases and s == "snapshot":
                    for i in range(max(1, a.kills // 4)):
                        self.commitkill_trial(i)
                if "diskfull" in a.cases:
                    self.diskfull_trial(s)
            if "corrupt" in a.cases:
                self.prepare_corrupt()
                for i in range(a.structure_flips):
                    self.corrupt_trial("structure", i)
                for i in range(a.random_flips):
                    self.corrupt_trial("random", i)
                self.restore_alpha()
        finally:
            self.cleanup()
        return self.report()

    def report(self):
        groups = {}
        for r in self.results:
            groups.setdefault(r["scenario"], []).append(r)
        rows = []
        for name, rs in groups.items():
            count = {s: sum(1 for r in rs if r["status"] == s) for s in ("pass", "fail", "gap", "skip")}
            phases = {}
            for r in rs:
                key = r.get("phase") if r["case"] == "kill" else r.get("outcome")
                if key:
                    key = re.sub(r" \(\d+\), e\.g\..*", "", key)
                    phases[key] = phases.get(key, 0) + 1
            resume = [r["resume_s"] for r in rs if "resume_s" in r]
            rows.append({"scenario": name, "trials": len(rs), **count,
                         "median_resume_s": round(statistics.median(resume), 2) if resume else None,
                         "seconds": round(sum(r["seconds"] for r in rs), 1),
                         "what": ", ".join("%s %d" % kv for kv in sorted(phases.items(), key=lambda kv: -kv[1]))})
        failed = sum(r["fail"] for r in rows)
        summary = {"entries": self.args.entries, "alpha_rows": getattr(self, "a_rows", None),
                   "kills_per_scenario": self.args.kills, "seed": self.args.seed, "binary": es.BIN,
                   "seconds": round(time.monotonic() - self.t_start, 1), "failed": failed, "scenarios": rows,
                   "errors": [{"scenario": r["scenario"], "trial": r.get("trial"), "error": r["error"]}
                              for r in self.results if r["status"] == "fail"],
                   "lines": sorted({r["error_line"] for r in self.results if r.get("error_line")})}
        hdr = "%-26s %6s %5s %5s %4s %5s %8s %8s  %s" % ("scenario", "trials", "pass", "fail", "gap", "skip",
                                                         "resume", "time s", "at the kill / outcome")
        print(hdr)
        print("-" * len(hdr))
        for r in rows:
            print("%-26s %6d %5d %5d %4d %5d %8s %8.1f  %s"
                  % (r["scenario"], r["trials"], r["pass"], r["fail"], r["gap"], r["skip"],
                     "-" if r["median_resume_s"] is None else "%.2f" % r["median_resume_s"], r["seconds"], r["what"]))
        print("-" * len(hdr))
        print("%d trials, %d failed, %.0fs; %d entries (seed %d)"
              % (len(self.results), failed, summary["seconds"], self.args.entries, self.args.seed))
        for e in summary["errors"]:
            print("FAIL %s #%s: %s" % (e["scenario"], e["trial"], e["error"]))
        print(json.dumps(summary, sort_keys=True))
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"summary": summary, "trials": self.results}, f, indent=1, sort_keys=True)
        for r in self.results:
            if r["status"] == "fail" and r.get("detail"):
                sys.stderr.write("\n==== %s #%s\n%s\n" % (r["scenario"], r.get("trial"), r["detail"]))
        return 1 if failed else 0


def es_mb(n):
    return "%.1f MB" % (n / 1e6)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--bin", default=os.environ.get("ENTRYSYNC_BIN"), help="the entrysync binary")
    p.add_argument("--quick", action="store_true", help="the CI version (see above)")
    p.add_argument("--entries", type=int, help="files alpha indexes (default 1000000; --quick 10000)")
    p.add_argument("--kills", type=int, help="kills per strategy and side (default 20; --quick 2)")
    p.add_argument("--strategies", default="batch,snapshot")
    p.add_argument("--sides", default="receiver,sender")
    p.add_argument("--cases", default="kill,commitkill,diskfull,corrupt,twoserve")
    p.add_argument("--rate-limit", type=float, default=0, help="MB/s the receiver pulls at (default: no limit)")
    p.add_argument("--structure-flips", type=int, help="b-tree page headers damaged (default 4; --quick 1)")
    p.add_argument("--random-flips", type=int, help="libraries with random bytes flipped (default 12; --quick 2)")
    p.add_argument("--flips", type=int, default=1, help="bytes flipped per random trial")
    p.add_argument("--strict", action="store_true", help="wrong rows served after a random flip fail the sweep")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", help="write every trial's record here")
    p.add_argument("--tmp", help="where the libraries go (default: es.temp_base())")
    p.add_argument("--keep", action="store_true", help="keep the libraries")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a = p.parse_args()
    if not a.bin:
        p.error("--bin PATH/TO/entrysync")
    es.use_binary(a.bin)
    quick = a.quick
    a.entries = a.entries or (10_000 if quick else 1_000_000)
    a.kills = a.kills if a.kills is not None else (2 if quick else 20)
    a.structure_flips = a.structure_flips if a.structure_flips is not None else (1 if quick else 4)
    a.random_flips = a.random_flips if a.random_flips is not None else (2 if quick else 12)
    a.seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    a.strategies = [s for s in a.strategies.split(",") if s]
    a.sides = [s for s in a.sides.split(",") if s]
    a.cases = [c for c in a.cases.split(",") if c]
    sys.exit(Sweep(a).run())


if __name__ == "__main__":
    main()
