"""Three devices, pairs A-B and B-C only: A's entries reach C through B after
A's daemon has stopped."""

import os
import time

import es


class ThreeDevices(es.EsTestCase):
    def test_relay_through_b(self):
        n = es.scaled(20_000, minimum=2_000)
        a, b, c = self.library("alpha", "beta", "gamma")
        es.pair(a, b)
        es.pair(b, c)
        es.make_tree(a.data, n, per_dir=500)
        a.add_location()
        es.make_tree(b.data, 300, per_dir=100)
        b.add_location()
        da = a.digest()
        db = b.digest()

        a.serve()
        b.serve()
        t0 = time.monotonic()
        es.wait_digests_equal("alpha", [a, b], timeout=60 * es.SLOW, daemons=[a, b])
        es.wait_digests_equal("beta", [a, b], timeout=60 * es.SLOW, daemons=[a, b])
        t_ab = time.monotonic() - t0
        self.assertEqual(a.stop(), 0, a.log_tail())

        # A's library does not change while its daemon is down.
        self.assertEqual(a.digest(), da)
        c.serve()
        t0 = time.monotonic()
        _, got = es.wait_digests_equal("alpha", [a, c], timeout=60 * es.SLOW, daemons=[b, c])
        t_bc = time.monotonic() - t0
        self.assertEqual(got, da)
        es.wait_digests_equal("beta", [b, c], timeout=60 * es.SLOW, daemons=[b, c])
        self.assertEqual(c.digest("beta"), db)
        self.assertEqual(c.export("alpha"), a.export())
        # C browses A's tree although it never talked to A.
        self.assertEqual(len(c.cli("ls", "--device", "alpha", a.data).stdout.splitlines()),
                         len(os.listdir(a.data)))
        # C never paired with A, and A never saw C.
        # C knows A's key only from A's signed checkpoints (docs/trust.md).
        c_peers = c.cli("peer", "list").stdout
        self.assertIn("alpha\t%s\t-\tunpaired" % a.device_id, c_peers)
        self.assertNotIn("gamma", a.cli("peer", "list").stdout)
        self.assertIsNone(a.digest("gamma"))
        es.report("three devices: %d entries of alpha: A->B %.2fs; after A stopped, B->C %.2fs"
                  % (da[1], t_ab, t_bc))
        self.assertEqual(b.stop(), 0, b.log_tail())
        self.assertEqual(c.stop(), 0, c.log_tail())


if __name__ == "__main__":
    es.main()
