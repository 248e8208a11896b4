"""Hostile peers, from the attacker's side (docs/trust.md): a paired device
that claims another's identity, a relay that forges an owner's rows or
raises its watermark, and a removed device. Real daemons over TLS; the
attacker edits its own library with sqlite3, as anyone holding the file
can (it drops the digest triggers first: they refuse writes that bypass
the daemon)."""

import sqlite3
import time

import es


def edit(dev, *statements):
    """Runs `statements` on `dev`'s library behind entrysync's back, with the
    digest triggers dropped for the edit and put back after it."""
    db = sqlite3.connect(dev.lib + "/library.db")
    try:
        triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            db.execute("DROP TRIGGER %s" % name)
        for st in statements:
            db.execute(st)
        for _, sql in triggers:
            db.execute(sql)
        db.commit()
    finally:
        db.close()


def owner_row(dev, owner_uuid):
    db = sqlite3.connect(dev.lib + "/library.db")
    try:
        return db.execute("SELECT id FROM device WHERE hex(uuid) = ?",
                          (owner_uuid.replace("-", "").upper(),)).fetchone()[0]
    finally:
        db.close()


class Trust(es.EsTestCase):
    def test_a_paired_device_cannot_take_over_another_devices_pairing(self):
        a, b, d = self.library("alpha", "beta", "delta")
        es.pair(a, b)
        es.pair(d, b)
        es.make_tree(a.data, 50)
        a.add_location()
        # D claims to be A: its own device row gets A's uuid.
        edit(d, "UPDATE device SET uuid = x'%s' WHERE is_local = 1" % a.uuid.replace("-", ""))
        b.serve()
        d.serve()
        es.wait_until(lambda: "claims owner %s" % a.uuid in b.log(), 30 * es.SLOW,
                      "B to refuse D's Hello", on_timeout=lambda: es.logs(b, d))
        # A's pairing is still A's: the real A syncs.
        a.serve()
        es.wait_digests_equal("alpha", [a, b], 60 * es.SLOW, daemons=[a, b])
        self.assertIn(a.device_id, b.cli("peer", "list").stdout)
        for dev in (a, b, d):
            self.assertEqual(dev.stop(), 0, dev.log_tail())

    def test_forged_relayed_rows_are_dropped_and_the_relay_named(self):
        a, b, c = self.library("alpha", "beta", "gamma")
        es.pair(a, b)
        es.pair(b, c)
        es.pair(a, c)
        es.make_tree(a.data, 200, per_dir=50)
        a.add_location()
        truth = a.digest()
        a.serve()
        b.serve()
        es.wait_digests_equal("alpha", [a, b], 60 * es.SLOW, daemons=[a, b])
        self.assertEqual(a.stop(), 0, a.log_tail())
        self.assertEqual(b.stop(), 0, b.log_tail())
        # B renames one of A's rows, same seq: its watermark still matches
        # A's checkpoint, so C pulls from B, and C's digest must catch it.
        row = owner_row(b, a.uuid)
        edit(b, "UPDATE entry SET name = 'forged.txt' WHERE owner = %d AND id = "
                "(SELECT max(id) FROM entry WHERE owner = %d)" % (row, row))
        b.serve()
        c.serve()
        es.wait_until(lambda: "did not verify" in c.log(), 60 * es.SLOW,
                      "C to refuse B's forged rows of A", on_timeout=lambda: es.logs(b, c))
        self.assertIn("from beta did not verify", c.log())
        sessions = c.status().get("daemon", {}).get("sessions", [])
        es.report("C's sessions: %s" % [(s.get("peer"), s.get("counters", s).get("verification_failures"))
                                        for s in sessions])
        # Nothing of the forgery is kept: C holds none of A's rows or the
        # true ones, never the forged row.
        self.assertNotIn("forged.txt", c.export("alpha") if c.digest("alpha") else "")
        # The owner comes back: C gets A's true rows (from A).
        a.serve()
        es.wait_digests_equal("alpha", [a, c], 60 * es.SLOW, daemons=[a, b, c])
        self.assertEqual(c.digest("alpha"), truth)
        for dev in (a, b, c):
            self.assertEqual(dev.stop(), 0, dev.log_tail())

    def test_a_forged_watermark_is_not_relayed_and_heals_when_the_owner_returns(self):
        a, b, c = self.library("alpha", "beta", "gamma")
        es.pair(a, b)
        es.pair(b, c)
        es.pair(a, c)
        es.make_tree(a.data, 100, per_dir=50)
        a.add_location()
        a.serve()
        b.serve()
        es.wait_digests_equal("alpha", [a, b], 60 * es.SLOW, daemons=[a, b])
        self.assertEqual(a.stop(), 0, a.log_tail())
        self.assertEqual(b.stop(), 0, b.log_tail())
        # B renames one of A's rows under the next seq and raises its
        # watermark: the seq A's next real change will take.
        row = owner_row(b, a.uuid)
        edit(b,
             "UPDATE entry SET name = 'forged.txt', seq = (SELECT seq + 1 FROM watermark WHERE owner = %d)"
             " WHERE owner = %d AND id = (SELECT max(id) FROM entry WHERE owner = %d)" % (row, row, row),
             "UPDATE watermark SET seq = seq + 1 WHERE owner = %d" % row)
        forged_seq = b.watermark("alpha")
        b.serve()
        c.serve()
        es.wait_until(lambda: "not pulling alpha from beta" in c.log(), 60 * es.SLOW,
                      "C to refuse B's unprovable rows of A", on_timeout=lambda: es.logs(b, c))
        self.assertIsNone(c.digest("alpha"))
        # A's next real change takes the forged seq: B and C end with A's rows.
        with open(a.data + "/real-change.txt", "w") as f:
            f.write("x")
        a.rescan()
        self.assertEqual(a.max_seq(), forged_seq)
        a.serve()
        truth = a.digest()
        es.wait_digests_equal("alpha", [a, b, c], 60 * es.SLOW, daemons=[a, b, c])
        self.assertEqual(b.digest("alpha"), truth)
        self.assertNotIn("forged.txt", b.export("alpha"))
        self.assertIn("did not verify", b.log())
        for dev in (a, b, c):
            self.assertEqual(dev.stop(), 0, dev.log_tail())

    def test_a_removed_device_is_refused_from_relays_and_purged(self):
        a, b, c = self.library("alpha", "beta", "gamma")
        es.pair(a, b)
        es.pair(b, c)
        es.pair(a, c)
        es.make_tree(a.data, 100, per_dir=50)
        a.add_location()
        for dev in (a, b, c):
            dev.serve()
        es.wait_digests_equal("alpha", [a, b, c], 60 * es.SLOW, daemons=[a, b, c])
        # B removes A while everything runs: A's session ends at once, and
        # with --purge A's rows are gone.
        b.cli("peer", "remove", "alpha", "--purge")
        es.wait_until(lambda: b.digest("alpha") in (None,) or b.digest("alpha")[1] == 0, 20 * es.SLOW,
                      "B to purge A's rows")
        # A changes; C (still paired with A) gets it and would relay it to B.
        with open(a.data + "/after-removal.txt", "w") as f:
            f.write("x")
        a.rescan()
        es.wait_digests_equal("alpha", [a, c], 60 * es.SLOW, daemons=[a, b, c])
        time.sleep(2 * es.SLOW)
        d = b.digest("alpha")
        self.assertTrue(d is None or d[1] == 0, "B holds rows of the removed A: %s" % (d,))
        self.assertIn("not paired", a.log() + b.log())
        for dev in (a, b, c):
            self.assertEqual(dev.stop(), 0, dev.log_tail())


if __name__ == "__main__":
    es.main()
