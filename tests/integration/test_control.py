"""The CLI talks to a running daemon (docs/control.md): with A's daemon
running, `rescan`, `location add`, `peer remove` and `snapshot import` run
in the daemon, their commits reach B at once, and an unpaired peer's session
ends; control.sock is owner-only; after a kill -9 the CLI works in-process
again and the next daemon replaces the stale socket."""

import os
import stat
import time

import es


def wait_no_session(dev, peer, timeout):
    """Waits until dev's daemon has no open session with `peer`."""
    def gone():
        daemon = dev.status().get("daemon") or {}
        return not any(s["peer"] == peer and s["state"] != "closed" for s in daemon.get("sessions", []))
    es.wait_until(gone, timeout, "%s's session with %s to end" % (dev.name, peer), interval=0.05,
                  on_timeout=lambda: es.logs(dev))


def wait_session(dev, peer, timeout):
    def up():
        daemon = dev.status().get("daemon") or {}
        return any(s["peer"] == peer and s["state"] == "current" for s in daemon.get("sessions", []))
    es.wait_until(up, timeout, "%s to be current with %s" % (dev.name, peer), interval=0.05,
                  on_timeout=lambda: es.logs(dev))


class Control(es.EsTestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b)
        es.make_tree(self.a.data, 50, per_dir=25)
        self.a.add_location()
        self.a.serve()
        self.b.serve()
        es.wait_watermark(self.b, "alpha", self.a.max_seq(), 30 * es.SLOW, daemons=[self.a, self.b])
        self.sock = os.path.join(self.a.lib, "control.sock")

    def served(self, op):
        return self.a.log().count("control: %s for pid" % op)

    def test_writes_go_through_the_daemon_and_reach_the_peer(self):
        a, b = self.a, self.b
        mode = os.stat(self.sock).st_mode
        self.assertTrue(stat.S_ISSOCK(mode))
        self.assertEqual(stat.S_IMODE(mode), 0o600)

        # rescan: exits 0, done by the daemon, B holds the file shortly after.
        with open(os.path.join(a.data, "new-file.txt"), "wb") as f:
            f.write(b"hello")
        p = a.rescan()
        self.assertIn("1 added", p.stdout)
        self.assertEqual(p.stderr, "")  # nothing extra for the user
        self.assertEqual(self.served("rescan"), 1, a.log_tail())
        t = es.wait_watermark(b, "alpha", a.max_seq(), 10 * es.SLOW, daemons=[a, b])
        self.assertIn("file\t5\tnew-file.txt", b.cli("ls", "--device", "alpha", a.data).stdout)
        es.report("control: rescan via the daemon -> B's watermark caught up %.3fs after the CLI exited" % t)

        # location add: a new folder, indexed by the daemon, reaches B.
        second = os.path.join(a.dir, "second")
        es.make_tree(second, 10, per_dir=10)
        a.cli("location", "add", second)
        self.assertEqual(self.served("add_location"), 1, a.log_tail())
        es.wait_watermark(b, "alpha", a.max_seq(), 10 * es.SLOW, daemons=[a, b])
        es.wait_digests_equal("alpha", [a, b], 10 * es.SLOW, daemons=[a, b])

        # Errors come back as they are, one line, nothing changed.
        seq = a.max_seq()
        p = a.cli("location", "add", second, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(a.max_seq(), seq)

    def test_peer_remove_ends_the_live_session_and_peer_add_dials(self):
        a, b = self.a, self.b
        wait_session(a, "beta", 10 * es.SLOW)
        a.cli("peer", "remove", "beta")
        self.assertEqual(self.served("unpair"), 1, a.log_tail())
        wait_no_session(a, "beta", 5 * es.SLOW)
        wait_no_session(b, "alpha", 5 * es.SLOW)
        # B keeps knocking; A refuses it.
        es.wait_until(lambda: "is not paired" in a.log(), 10 * es.SLOW, "A to refuse beta")

        # Paired again (with an address, through the daemon): A dials B at once.
        a.add_peer(b)
        self.assertEqual(self.served("pair"), 1, a.log_tail())
        wait_session(a, "beta", 10 * es.SLOW)

    def test_snapshot_import_while_the_daemon_runs(self):
        a, b = self.a, self.b
        c = self.device("gamma", a.library_id)
        es.make_tree(c.data, 40, per_dir=20)
        c.add_location()
        snap = os.path.join(self.tmp, "gamma.snap")
        c.cli("snapshot", "export", snap)
        p = b.cli("snapshot", "import", snap)  # was refused: B's daemon holds the library
        self.assertIn("imported", p.stdout)
        self.assertIn("control: import_snapshot for pid", b.log())
        self.assertEqual(b.digest("gamma"), c.digest())
        # Refusals come back from the daemon unchanged.
        p = b.cli("snapshot", "import", snap, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already current", p.stderr)
        # The imported rows do not flow on to A: gamma never signed a
        # checkpoint (it never ran a daemon), so B cannot prove them and A
        # does not take them from B (docs/trust.md).
        time.sleep(2 * es.SLOW)
        for o in a.status()["owners"]:
            if o["uuid"] == c.uuid:
                self.assertEqual(o["entries"], 0, "A took gamma's unprovable rows from B")

    def test_daemon_that_does_not_answer_then_kill9(self):
        a, b = self.a, self.b
        # The daemon holds the lock but its socket is gone: one line naming
        # the pid and the socket, nothing changed.
        pid = a.proc.pid
        os.rename(self.sock, self.sock + ".hidden")
        with open(os.path.join(a.data, "later.txt"), "wb") as f:
            f.write(b"x")
        seq = a.max_seq()
        p = a.cli("rescan", check=False)
        self.assertNotEqual(p.returncode, 0)
        line = p.stderr.strip()
        self.assertEqual(len(line.splitlines()), 1, p.stderr)
        self.assertIn("pid %d" % pid, line)
        self.assertIn(self.sock, line)
        self.assertEqual(a.max_seq(), seq)
        os.rename(self.sock + ".hidden", self.sock)

        # kill -9: the socket file stays, the lock goes; the CLI works in-process.
        a.kill9()
        self.assertTrue(os.path.exists(self.sock))
        p = a.rescan()
        self.assertIn("1 added", p.stdout)
        self.assertGreater(a.max_seq(), seq)
        # The next daemon replaces the stale socket and serves again.
        a.serve()
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600)
        with open(os.path.join(a.data, "after-restart.txt"), "wb") as f:
            f.write(b"y")
        before = self.served("rescan")
        a.rescan()
        self.assertEqual(self.served("rescan"), before + 1, a.log_tail())
        es.wait_watermark(b, "alpha", a.max_seq(), 20 * es.SLOW, daemons=[a, b])
        a.stop()
        self.assertFalse(os.path.exists(self.sock))


if __name__ == "__main__":
    es.main()
