"""SIGKILL the sender or the receiver daemon in the middle of a large
transfer, restart it, and check the transfer completes with every row applied
exactly once.

Evidence that nothing was applied twice, after convergence:
  * B's canonical export of alpha is byte-identical to A's and lists each uuid once;
  * B's live entry count for alpha equals A's;
  * B's `stats --json` rows_applied_total (a lifetime counter of rows written by
    replication, committed in the same transaction as the rows) equals exactly
    the number of rows A has (entries + locations): a row written twice (or a
    row re-written with the same content) would push it above.
"""

import re
import time

import es


class KillMidStream(es.EsTestCase):
    """The StateBatch stream (B forces batch: a new peer of an owner this large
    would otherwise get a snapshot, whose kill tests are in test_strategies.py)."""
    N = 300_000
    PULL = ("--strategy", "batch")

    def setUp(self):
        super().setUp()
        # Not below 100K even under ASan: the transfer must last long enough to be caught mid-stream.
        self.n = es.scaled(self.N, minimum=100_000)
        self.a, self.b = self.library("alpha", "beta")
        es.pair(self.a, self.b)
        es.make_tree(self.a.data, self.n, per_dir=2000)
        self.a.add_location()
        self.total = self.a.digest()[1]
        self.a_rows = self.total + len(self.a.stats()["owners"][0]["locations"])

    def wait_partial(self):
        """Polls the receiver's committed rows until a good part (>= 1/5) but not all
        of alpha is there: the kill lands in the middle of the stream."""
        state = {}

        def partial():
            self.a.assert_alive()
            self.b.assert_alive()
            got = self.b.owner_entries("alpha") or 0
            state["got"] = got
            return self.total // 5 <= got < self.total and got

        got = es.wait_until(partial, 60 * es.SLOW, "a partial transfer", interval=0.02,
                            on_timeout=lambda: "\nlast count %s of %d%s" % (state.get("got"), self.total,
                                                                           es.logs(self.a, self.b)))
        return got

    def pulls(self):
        """(since, they_have) of every pull of alpha the receiver logged, in order."""
        return [(int(m.group(1)), int(m.group(2))) for m in
                re.finditer(r"pulling alpha from alpha: since seq (\d+) \(they have (\d+)\)", self.b.log())]

    def converge_and_check(self, victim, t_kill, at_kill):
        a, b = self.a, self.b
        seq = a.max_seq()
        t0 = time.monotonic()
        es.wait_watermark(b, "alpha", seq, timeout=180 * es.SLOW, daemons=[a, b])
        t_resume = time.monotonic() - t0
        es.wait_digests_equal("alpha", [a, b], timeout=60 * es.SLOW, daemons=[a, b])

        exp_a = a.export()
        exp_b = b.export("alpha")
        self.assertEqual(exp_a, exp_b, "exports differ")
        uuids = [line.split("\t", 1)[0] for line in exp_b.splitlines()]
        self.assertEqual(len(uuids), self.total)
        self.assertEqual(len(set(uuids)), len(uuids), "a uuid appears twice in B's export")
        self.assertEqual(b.owner_entries("alpha"), a.owner_entries("alpha"))
        stats_b = b.stats()
        owner = next(o for o in stats_b["owners"] if o["name"] == "alpha")
        self.assertEqual(owner["watermark"], seq)
        self.assertEqual(owner["tombstones"], 0)
        self.assertEqual(stats_b["rows_applied_total"], self.a_rows,
                         "B wrote %d rows by replication but A has %d rows: something was applied twice"
                         % (stats_b["rows_applied_total"], self.a_rows))
        pulls = self.pulls()
        # The restarted transfer resumed from the receiver's committed watermark
        # (not from 0): the last pull starts at or after the watermark at the kill.
        self.assertGreaterEqual(len(pulls), 2, pulls)
        self.assertGreater(at_kill[1], 0)
        if victim == "receiver":
            self.assertEqual(pulls[-1][0], at_kill[1], pulls)
        else:  # the receiver may still commit batches it had buffered when the sender died
            self.assertGreaterEqual(pulls[-1][0], at_kill[1], pulls)
        es.report("kill %s: %d entries; killed at %d committed on B (watermark %d) after %.2fs; "
                  "restart -> caught up in %.2fs; pulls logged by B (since, they have): %s; "
                  "B rows_applied_total %d == A rows %d"
                  % (victim, self.total, at_kill[0], at_kill[1], t_kill, t_resume, pulls,
                     stats_b["rows_applied_total"], self.a_rows))
        return pulls

    def test_kill_sender(self):
        a, b = self.a, self.b
        t0 = time.monotonic()
        b.serve(*self.PULL)
        a.serve()
        self.wait_partial()
        a.kill9()
        t_kill = time.monotonic() - t0
        at_kill = (b.owner_entries("alpha"), b.watermark("alpha"))
        self.assertLess(at_kill[0], self.total)
        b.assert_alive()
        a.serve()
        self.converge_and_check("sender", t_kill, at_kill)
        b.assert_alive()

    def test_kill_receiver(self):
        a, b = self.a, self.b
        t0 = time.monotonic()
        a.serve()
        b.serve(*self.PULL)
        self.wait_partial()
        b.kill9()
        t_kill = time.monotonic() - t0
        at_kill = (b.owner_entries("alpha"), b.watermark("alpha"))
        self.assertLess(at_kill[0], self.total)
        a.assert_alive()
        b.serve(*self.PULL)
        self.converge_and_check("receiver", t_kill, at_kill)
        a.assert_alive()


class StaleStatusAfterKill(es.EsTestCase):
    # Regression test (found by it, fixed in a1ce879): after `kill -9` of `serve`,
    # LIBRARY/status.json stays behind; `entrysync status` must not report the
    # dead daemon ("daemon: not running").
    def test_status_after_kill9(self):
        (a,) = self.library("alpha")
        a.serve()
        es.wait_until(lambda: a.status()["daemon"] is not None, 10 * es.SLOW, "status.json")
        a.kill9()
        st = a.status()
        self.assertIsNone(st["daemon"], "status reports a daemon that was killed: %s" % st["daemon"])
        self.assertIn("not running", a.cli("status").stdout)


if __name__ == "__main__":
    es.main()
