"""Sync strategies between real processes: each forced strategy (change,
batch, bulk, snapshot) gives the same replica; a change made on the owner
while a transfer runs still arrives; a bulk commit is announced by a small
notice and a lazy peer loads only the folders it browses; a snapshot
download survives SIGKILL of either side and resumes at its byte offset; a
new device gets a snapshot while a current one gets live StateChanges.

Rate limits: `--rate-limit` is a token bucket (src/sync/rate_limiter.h)
whose burst, max(64 KiB, a quarter second of rate), goes at once; only what
follows waits. So a transfer meant to take a while under a limit must be
well past 64 KiB: the batch test names its files at random (about 18 bytes
a row on the wire, against about one for f00001.txt), and the snapshot
tests keep 120K files (about 11 MiB of snapshot) even under a sanitizer.
"""

import json
import os
import re
import shutil
import time

import es


def sync_json(dev, peer, *flags, timeout=None):
    """`sync --peer PEER --json -v FLAGS`: (summary dict, its log). The JSON
    summary is stdout; -v logs the session (strategy chosen, resume offset)
    on stderr."""
    t = timeout if timeout is not None else 120 * es.SLOW
    p = dev.cli("sync", "--peer", peer, "--json", "-v", "--timeout", str(int(t)), *flags, timeout=t + 30)
    return json.loads(p.stdout.splitlines()[-1]), p.stderr


def pull_of(summary, owner):
    pulls = [t for t in summary["transfers"] if t["direction"] == "pull" and t["owner"] == owner]
    assert pulls, "no pull of %s in %s" % (owner, summary)
    return pulls


def live_session(dev, peer):
    """The running daemon's (latest, not closed) session with `peer` from
    `status --json`, or None."""
    st = dev.status()
    daemon = st.get("daemon")
    if not daemon:
        return None
    found = [s for s in daemon["sessions"] if s["peer"] == peer and s["state"] != "closed"]
    return found[-1] if found else None


def rows_of(dev, owner):
    """Rows `dev` holds of `owner` as replication counts them: entries
    (tombstones included) + locations; 0 if unknown."""
    for o in dev.stats()["owners"]:
        if o["name"] == owner:
            return o["entries"] + o["tombstones"] + len(o["locations"])
    return 0


def part_file(dev, owner_uuid):
    return os.path.join(dev.lib, "snapshots", owner_uuid + ".part")


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def read_first_line(path):
    with open(path) as f:
        return f.readline().strip()


def change_before(dirs):
    """Renames 10 files of dirs[0], deletes 15 of dirs[1] and the whole
    dirs[2]: a rescan then leaves renamed rows and tombstones."""
    for name in sorted(os.listdir(dirs[0]))[:10]:
        os.rename(os.path.join(dirs[0], name), os.path.join(dirs[0], "renamed-" + name))
    for name in sorted(os.listdir(dirs[1]))[:15]:
        os.remove(os.path.join(dirs[1], name))
    shutil.rmtree(dirs[2])


def offered_size(log):
    """Size in bytes of the last snapshot offer a receiver logged, or None."""
    m = re.findall(r"offers a snapshot of \S+: \d+ entries up to seq \d+, (\d+) bytes", log)
    return int(m[-1]) if m else None


class EachStrategy(es.EsTestCase):
    """The same tree (renames and deletions already rescanned) pulled by
    fresh devices with `sync --strategy X`: X is the strategy used, and
    every replica has the owner's digest."""

    def owner(self, n):
        self.a = self.device("alpha")
        dirs = es.make_tree(self.a.data, n, per_dir=max(10, n // 20))
        self.a.add_location()
        before = self.a.digest()
        change_before(dirs)
        self.a.rescan()
        da = self.a.digest()
        self.assertNotEqual(da, before)
        self.assertLess(da[2], da[1], "tombstones expected after the deletions")
        self.a.serve()
        return da

    def pull_fresh(self, strategy, da):
        """A new device of A's library pulls everything with --strategy."""
        b = self.device("beta-" + strategy, self.a.library_id)
        es.pair(self.a, b, addr_b=False)
        t0 = time.monotonic()
        summary, out = sync_json(b, "alpha", "--strategy", strategy)
        secs = time.monotonic() - t0
        pulls = pull_of(summary, "alpha")
        self.assertEqual([p["strategy"] for p in pulls], [strategy], summary)
        self.assertIn("(%s)" % strategy if strategy != "snapshot" else "imported the snapshot of alpha", out)
        self.assertEqual(b.digest("alpha"), da, strategy)
        self.assertEqual(b.watermark("alpha"), self.a.max_seq())
        self.assertEqual(b.stats()["rows_applied_total"], rows_of(self.a, "alpha"))
        self.assertEqual(summary["snapshots_imported"], 1 if strategy == "snapshot" else 0, summary)
        es.report("strategy %s: %d entries (%d live) in %.2fs, %d bytes received"
                  % (strategy, da[1], da[2], secs, summary["wire_received"]))
        return b, summary

    def test_batch_bulk_snapshot(self):
        n = es.scaled(20_000, minimum=2_000)
        da = self.owner(n)
        for strategy in ("batch", "bulk", "snapshot"):
            self.pull_fresh(strategy, da)
        log = self.a.log()
        self.assertIn("to beta-batch as batch (forced by the peer: batch)", log)
        self.assertIn("to beta-bulk as batch (forced by the peer: bulk)", log)
        self.assertIn("offering a snapshot of alpha to beta-snapshot", log)
        self.assertIn("served the snapshot of alpha to beta-snapshot", log)
        self.a.assert_alive()

    def test_change(self):
        # One StateChange per row: a smaller tree.
        n = es.scaled(3_000, minimum=500)
        da = self.owner(n)
        self.pull_fresh("change", da)
        self.assertIn("to beta-change as change (forced by the peer: change)", self.a.log())
        self.a.assert_alive()


class ChangeDuringTransfer(es.EsTestCase):
    """Base: A renames and deletes files (rescan from another process) while
    its daemon serves B's daemon a rate-limited transfer: B must end with
    A's digest."""

    def setup_devices(self, n, per_dir, random_names=False):
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b, addr_b=False)  # B dials A
        es.make_tree(self.a.data, n, per_dir=per_dir, random_names=random_names)
        self.a.add_location()
        # The changes during the transfer go to a second, small location:
        # rescanning it takes milliseconds, far less than the transfer.
        self.extra = os.path.join(self.a.dir, "extra")
        es.make_tree(self.extra, 50, per_dir=50)
        self.a.add_location(self.extra)
        self.seq0 = self.a.max_seq()
        self.a.serve()

    def change_now(self):
        sub = os.path.join(self.extra, "d0000")
        os.rename(os.path.join(sub, "f00001.txt"), os.path.join(sub, "renamed-during.txt"))
        os.remove(os.path.join(sub, "f00002.txt"))
        self.a.rescan(self.extra)
        self.assertGreater(self.a.max_seq(), self.seq0)

    def converge(self, what):
        a, b = self.a, self.b
        t0 = time.monotonic()
        # A few rows: they arrive within a second of the transfer's end (under
        # B's rate limit too: the transfer already took its time).
        es.wait_watermark(b, "alpha", a.max_seq(), timeout=20 * es.SLOW, daemons=[a, b])
        _, got = es.wait_digests_equal("alpha", [a, b], timeout=20 * es.SLOW, daemons=[a, b])
        self.assertEqual(got, a.digest())
        self.assertEqual(b.export("alpha"), a.export())
        es.report("%s: B caught up with the change made during the transfer %.2fs after checking"
                  % (what, time.monotonic() - t0))


class BatchChangeDuringTransfer(ChangeDuringTransfer):
    def test_batch(self):
        # Regression test (found by it, fixed in d2c1a37): a change A commits
        # while it serves B a batch transfer of the same owner used to never
        # reach B. Session::OnAdvance leaves an owner with a running serve
        # alone, and the serve's Current carries its `upto`, fixed when the
        # request arrived: B ended current at the old max seq and nothing
        # announced the newer rows until A changed again.
        # Random names, ~18 bytes a row on the wire: 20,000 rows are ~360 KB,
        # and at 40 KB/s the batches past the 64 KiB burst arrive over
        # several seconds.
        n = es.scaled(20_000, minimum=12_000)
        self.setup_devices(n, per_dir=1000, random_names=True)
        a, b = self.a, self.b
        b.serve("--strategy", "batch", "--rate-limit", str(0.04 / es.SLOW))
        es.wait_until(lambda: (b.watermark("alpha") or 0) > 0, 30 * es.SLOW, "B's first batch",
                      on_timeout=lambda: es.logs(a, b))
        self.assertLess(b.watermark("alpha"), self.seq0, "the transfer ended before the change")
        self.change_now()
        wm = b.watermark("alpha")
        self.assertLess(wm, self.seq0,
                        "the transfer ended before the rescan committed; the test needs a lower --rate-limit")
        es.report("batch: change committed on A while B held alpha up to seq %d of %d" % (wm, self.seq0))
        # The transfer ends (B holds alpha up to the max seq it was asked at)...
        es.wait_watermark(b, "alpha", self.seq0, timeout=60 * es.SLOW, daemons=[a, b])
        # ...once its Current is written (just after the last batch).
        es.wait_until(lambda: re.search(r"pulled \d+ rows of alpha from alpha in [0-9.]+s \(batch\)", b.log()),
                      30 * es.SLOW, "B's pull to end", on_timeout=lambda: es.logs(a, b))
        self.converge("batch")


class SnapshotChangeDuringTransfer(ChangeDuringTransfer):
    def test_snapshot(self):
        # 120K files (even under ASan): ~11 MiB of snapshot, 3 chunks past the first window.
        self.setup_devices(120_000, per_dir=2000)
        a, b = self.a, self.b
        part = part_file(b, a.uuid)
        b.serve("--strategy", "snapshot", "--rate-limit", str(0.1 / es.SLOW))
        es.wait_until(lambda: (file_size(part) or 0) > 0, 30 * es.SLOW, "B's snapshot download to start",
                      on_timeout=lambda: es.logs(a, b))
        self.change_now()
        log = b.log()
        self.assertNotIn("imported the snapshot", log,
                         "the download ended before the rescan committed; the test needs a lower --rate-limit")
        size = offered_size(log)
        es.report("snapshot: change committed on A with %s of %s bytes downloaded" % (file_size(part), size))
        self.converge("snapshot")
        log = b.log()
        # The snapshot (up to the max seq when it was offered), then the
        # change as rows on top of it.
        imported = log.index("imported the snapshot of alpha from alpha")
        self.assertRegex(log[imported:], r"pulling alpha from alpha: since seq %d " % self.seq0)
        self.assertIn("announced", log[:imported], "A's notice should arrive during the download")
        self.assertFalse(os.path.exists(part))
        s = es.wait_until(lambda: (lambda s: s if s and s["snapshots_imported"] else None)(live_session(b, "alpha")),
                          10 * es.SLOW, "B's status to show the import")
        self.assertEqual(s["snapshots_imported"], 1, s)
        self.assertGreaterEqual(s["notices_received"], 1, s)
        # Every row once: the snapshot's rows, then each row the rescan gave a new seq.
        self.assertEqual(b.stats()["rows_applied_total"], rows_of(a, "alpha") + a.max_seq() - self.seq0)


class BulkNotice(es.EsTestCase):
    """A bulk commit on A reaches a lazy B (serve --fetch lazy) as one small
    BulkIndexComplete notice; B loads only the folder it lists."""

    def test_notice_then_lazy_ls(self):
        n = es.scaled(20_000, minimum=2_000)
        per_dir = 200
        a, b = self.library("alpha", "beta")
        es.pair(a, b, addr_b=False)
        dirs = es.make_tree(a.data, n, per_dir=per_dir)
        a.serve()
        b.serve("--fetch", "lazy")
        es.wait_until(lambda: (live_session(b, "alpha") or {}).get("state") == "current", 20 * es.SLOW,
                      "B's session with A to be current", on_timeout=lambda: es.logs(a, b))
        before = live_session(b, "alpha")
        self.assertEqual(before["notices_received"], 0)

        t0 = time.monotonic()
        a.add_location()
        t_add = time.monotonic() - t0
        total = a.digest()[1]
        self.assertEqual(total, n + len(dirs) + 1)
        after = es.wait_until(lambda: (lambda s: s if s and s["notices_received"] >= 1 else None)(
            live_session(b, "alpha")), 20 * es.SLOW, "B to receive A's notice",
            on_timeout=lambda: es.logs(a, b))
        t_notice = time.monotonic() - t0
        grew = after["wire_received"] - before["wire_received"]
        # `location add` commits the location row, then its entries: two
        # advances, so a notice of 0 rows may come before the one of the tree.
        self.assertGreaterEqual(after["notices_received"], 1, after)
        # The notice (~70 bytes) plus record overhead and at most a keepalive
        # ping or pong or two: far less than the rows (~19 bytes each).
        self.assertLess(grew, 300, "B's wire_received grew by %d bytes across the notice" % grew)
        self.assertEqual(len(re.findall(r"alpha announced %d new rows of owner" % total, b.log())), 1, b.log_tail())

        # No rows moved: B holds nothing of A's new location and pulls nothing.
        b.assert_alive()
        self.assertEqual(b.owner_entries("alpha"), 0)
        s = live_session(b, "alpha")
        self.assertEqual([t for t in s["transfers"] if t["direction"] == "pull"], [], s)
        self.assertEqual(s["rows_applied"], 0, s)
        self.assertEqual(s["batches_received"], 0, s)
        self.assertEqual(b.stats()["rows_applied_total"], 0)

        # Browsing one folder loads the path to it and its children only.
        folder = dirs[len(dirs) // 2]
        t0 = time.monotonic()
        listed = b.cli("ls", "--device", "alpha", folder).stdout.splitlines()
        t_ls = time.monotonic() - t0
        self.assertEqual(sorted(l.split("\t")[-1] for l in listed), sorted(os.listdir(folder)))
        self.assertEqual(len(listed), per_dir)
        held = b.owner_entries("alpha")
        self.assertEqual(held, per_dir + 2, "the location root, the folder and its %d children" % per_dir)
        uuids = [l.split("\t", 1)[0] for l in b.export("alpha").splitlines()]
        self.assertEqual(len(uuids), held)
        self.assertLess(held, total // 5)
        b.assert_alive()
        a.assert_alive()
        es.report("bulk notice: location add of %d entries %.2fs, notice on B %.2fs after it began, "
                  "B's wire_received +%d bytes; ls of one folder %.2fs -> B holds %d of %d entries"
                  % (total, t_add, t_notice, grew, t_ls, held, total))


class SnapshotKill(es.EsTestCase):
    """SIGKILL either side in the middle of a rate-limited snapshot download:
    the download resumes at its byte offset against the same file, and every
    row is imported exactly once."""

    def setUp(self):
        super().setUp()
        # 120K files even under ASan: ~11 MiB of snapshot, 3 chunks past the first window.
        self.n = 120_000
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b, addr_b=False)  # B dials A
        es.make_tree(self.a.data, self.n, per_dir=2000)
        self.a.add_location()
        self.da = self.a.digest()
        self.a_rows = rows_of(self.a, "alpha")
        self.part = part_file(self.b, self.a.uuid)
        self.offer = os.path.join(self.b.lib, "snapshots", self.a.uuid + ".offer")

    def start_slow_download(self):
        a, b = self.a, self.b
        a.serve()
        b.serve("--strategy", "snapshot", "--rate-limit", str(0.05 / es.SLOW))
        state = {}

        def midway():
            a.assert_alive()
            b.assert_alive()
            size = offered_size(b.log())
            got = file_size(self.part) or 0
            state["last"] = (got, size)
            return size and 0 < got < size and (got, size)

        got, size = es.wait_until(midway, 30 * es.SLOW, "B's snapshot download to be under way", interval=0.02,
                                  on_timeout=lambda: "\n.part, offered: %s%s" % (state.get("last"),
                                                                                es.logs(a, b)))
        self.assertNotIn("imported the snapshot", b.log())
        return size

    def served_info(self):
        """(sha256, size) of A's cached export of itself."""
        d = os.path.join(self.a.lib, "snapshots")
        infos = [f for f in os.listdir(d) if f.startswith("serve-" + self.a.uuid) and f.endswith(".db.info")]
        self.assertEqual(len(infos), 1, os.listdir(d))
        sha, size, _ = read_first_line(os.path.join(d, infos[0])).split()
        return sha, int(size)

    def check_done(self):
        a, b = self.a, self.b
        self.assertEqual(b.digest("alpha"), self.da)
        self.assertEqual(b.watermark("alpha"), a.max_seq())
        self.assertEqual(b.export("alpha"), a.export())
        stats = b.stats()
        self.assertEqual(stats["rows_applied_total"], self.a_rows,
                         "B wrote %d rows by replication but A has %d rows: something was applied twice"
                         % (stats["rows_applied_total"], self.a_rows))
        self.assertFalse(os.path.exists(self.part))
        self.assertFalse(os.path.exists(self.offer))

    def test_kill_receiver(self):
        a, b = self.a, self.b
        t0 = time.monotonic()
        size = self.start_slow_download()
        offer_line = read_first_line(self.offer)
        b.kill9()
        t_kill = time.monotonic() - t0
        at_kill = file_size(self.part)
        self.assertTrue(0 < at_kill < size, (at_kill, size))
        self.assertEqual(b.owner_entries("alpha"), 0)
        self.assertEqual(b.stats()["rows_applied_total"], 0)
        # A's cached export is the file B was downloading.
        self.assertEqual(offer_line.split()[:2], ["%s" % x for x in self.served_info()])
        self.assertEqual(int(offer_line.split()[3]), a.max_seq())  # SHA256 SIZE EPOCH MAX_SEQ

        t0 = time.monotonic()
        summary, out = sync_json(b, "alpha", "--strategy", "snapshot")
        t_resume = time.monotonic() - t0
        self.assertEqual([p["strategy"] for p in pull_of(summary, "alpha")], ["snapshot"], summary)
        self.assertIn("alpha offers a snapshot of alpha: %d entries up to seq %d, %d bytes, resuming at byte %d"
                      % (self.da[1], a.max_seq(), size, at_kill), out)
        self.assertIn("resuming the snapshot of alpha for beta at byte %d of %d" % (at_kill, size), a.log())
        self.assertEqual(summary["snapshots_imported"], 1)
        self.assertEqual(summary["rows_applied"], self.a_rows)
        self.check_done()
        a.assert_alive()
        es.report("snapshot kill receiver: %d entries, %d bytes; killed after %.2fs at byte %d; "
                  "resumed and imported in %.2fs (%d bytes on the wire)"
                  % (self.da[1], size, t_kill, at_kill, t_resume, summary["wire_received"]))

    def test_kill_sender(self):
        a, b = self.a, self.b
        t0 = time.monotonic()
        size = self.start_slow_download()
        offer_line = read_first_line(self.offer)
        a.kill9()
        t_kill = time.monotonic() - t0
        es.wait_until(lambda: live_session(b, "alpha") is None, 40 * es.SLOW, "B to notice A is gone",
                      on_timeout=lambda: es.logs(b))
        at_kill = file_size(self.part)
        self.assertTrue(0 < at_kill < size, (at_kill, size))
        self.assertEqual(b.owner_entries("alpha"), 0)

        t0 = time.monotonic()
        a.serve()
        # The restarted A offers its cached export again: same sha256, same size.
        es.wait_digests_equal("alpha", [a, b], timeout=60 * es.SLOW, daemons=[a, b])
        t_resume = time.monotonic() - t0
        self.assertEqual(offer_line.split()[:2], ["%s" % x for x in self.served_info()])
        self.assertEqual(int(offer_line.split()[3]), a.max_seq())  # SHA256 SIZE EPOCH MAX_SEQ
        m = re.findall(r"alpha offers a snapshot of alpha: \d+ entries up to seq \d+, %d bytes, resuming at byte (\d+)"
                       % size, b.log())
        self.assertEqual(len(m), 1, b.log_tail(40))
        resumed_at = int(m[0])
        self.assertEqual(resumed_at, at_kill)
        self.assertIn("resuming the snapshot of alpha for beta at byte %d of %d" % (resumed_at, size), a.log())
        self.assertEqual(b.log().count("imported the snapshot of alpha"), 1)
        self.check_done()
        b.assert_alive()
        es.report("snapshot kill sender: %d entries, %d bytes; killed after %.2fs with %d bytes on B; "
                  "restarted A -> B resumed at byte %d and converged in %.2fs"
                  % (self.da[1], size, t_kill, at_kill, resumed_at, t_resume))


class NewDeviceGetsSnapshotCurrentGetsChanges(es.EsTestCase):
    """A serves with a low --snapshot-threshold: a new device C gets a
    snapshot, while B, already current, gets A's later rename as a
    StateChange."""

    def test_new_device_snapshot_current_changes(self):
        n = es.scaled(20_000, minimum=2_000)
        threshold = es.scaled(5_000, minimum=500)
        a, b, c = self.library("alpha", "beta", "gamma")
        es.pair(a, b, addr_b=False)
        es.pair(a, c, addr_b=False)
        dirs = es.make_tree(a.data, n, per_dir=1000)
        a.add_location()
        da = a.digest()
        self.assertGreater(da[1], threshold)
        a.serve("--snapshot-threshold", str(threshold))

        # B: current, by batch.
        summary, _ = sync_json(b, "alpha", "--strategy", "batch")
        self.assertEqual([p["strategy"] for p in pull_of(summary, "alpha")], ["batch"], summary)
        self.assertEqual(b.digest("alpha"), da)
        b.serve()
        es.wait_until(lambda: (live_session(b, "alpha") or {}).get("state") == "current", 20 * es.SLOW,
                      "B's daemon to be current with A", on_timeout=lambda: es.logs(a, b))

        # C: new device, strategy chosen by A (auto): a snapshot.
        summary, out = sync_json(c, "alpha")
        self.assertEqual([p["strategy"] for p in pull_of(summary, "alpha")], ["snapshot"], summary)
        self.assertEqual(summary["snapshots_imported"], 1)
        self.assertIn("imported the snapshot of alpha from alpha", out)
        self.assertIn("offering a snapshot of alpha to gamma", a.log())
        self.assertEqual(c.digest("alpha"), da)
        self.assertEqual(c.stats()["rows_applied_total"], rows_of(a, "alpha"))

        # A renames one file: B (current) receives it as StateChanges.
        before = live_session(b, "alpha")
        self.assertEqual(before["snapshots_imported"], 0, before)
        seq_before = a.max_seq()
        os.rename(os.path.join(dirs[0], "f00003.txt"), os.path.join(dirs[0], "renamed-f00003.txt"))
        a.rescan()
        da2 = a.digest()
        self.assertNotEqual(da2, da)
        es.wait_digests_equal("alpha", [a, b], timeout=30 * es.SLOW, daemons=[a, b])
        # status.json is rewritten twice a second: wait for it to show the rows.
        after = es.wait_until(lambda: (lambda s: s if s and s["rows_applied"] > before["rows_applied"] else None)(
            live_session(b, "alpha")), 10 * es.SLOW, "B's status to show the rows applied",
            on_timeout=lambda: "\n%s" % live_session(b, "alpha"))
        changed = a.max_seq() - seq_before  # rows the rescan changed (the file, maybe its folder)
        self.assertGreaterEqual(after["changes_received"] - before["changes_received"], 1, after)
        self.assertEqual(after["snapshots_imported"], 0, after)
        self.assertEqual(after["batches_received"], before["batches_received"], after)
        self.assertEqual(b.log().count("offers a snapshot"), 0)
        self.assertEqual(b.log().count("imported the snapshot"), 0)
        self.assertIn("renamed-f00003.txt",
                      [l.split("\t")[-1] for l in b.cli("ls", "--device", "alpha", dirs[0]).stdout.splitlines()])
        b.assert_alive()
        a.assert_alive()
        es.report("new device: C took a snapshot of %d entries (threshold %d); B got the rename as %d "
                  "StateChanges (%d rows changed on A)"
                  % (da[1], threshold, after["changes_received"] - before["changes_received"], changed))


if __name__ == "__main__":
    es.main()
