"""Hostile peers, from the attacker's side (docs/trust.md): a paired device
that claims another's identity, a relay that forges an owner's rows or
raises its watermark, and a removed device. Real daemons over TLS; the
attacker edits its own library with sqlite3, as anyone holding the file
can (it drops the digest triggers first: they refuse writes that bypass
the daemon)."""

import hashlib
import sqlite3
import struct
import time

import es


# The set digest, recomputed by the attacker (docs/trust.md): LtHash16 over
# ChaCha20 expansions. Anyone can compute it; only the owner can sign it.
def _chacha20_block(key, counter):
    def rotl(v, n):
        return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))

    def qr(x, a, b, c, d):
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 16)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 12)
        x[a] = (x[a] + x[b]) & 0xFFFFFFFF; x[d] = rotl(x[d] ^ x[a], 8)
        x[c] = (x[c] + x[d]) & 0xFFFFFFFF; x[b] = rotl(x[b] ^ x[c], 7)

    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + list(struct.unpack("<8I", key)) + [counter, 0, 0, 0]
    x = list(state)
    for _ in range(10):
        qr(x, 0, 4, 8, 12); qr(x, 1, 5, 9, 13); qr(x, 2, 6, 10, 14); qr(x, 3, 7, 11, 15)
        qr(x, 0, 5, 10, 15); qr(x, 1, 6, 11, 12); qr(x, 2, 7, 8, 13); qr(x, 3, 4, 9, 14)
    return struct.pack("<16I", *[(x[i] + state[i]) & 0xFFFFFFFF for i in range(16)])


def _expand(element):
    key = hashlib.sha256(b"entrysync-lthash16-v1" + element).digest()
    stream = b"".join(_chacha20_block(key, i) for i in range(32))
    return struct.unpack("<1024H", stream)


def _lanes(delta, element, sign):
    for i, v in enumerate(_expand(element)):
        delta[i] = (delta[i] + sign * v) & 0xFFFF


def _bytes(v):
    if v is None:
        return b""
    return v if isinstance(v, bytes) else v.encode()


def _uuid(v):
    return v if isinstance(v, bytes) and len(v) == 16 else b"\0" * 16


def _entry_element(uuid, parent, loc, name, ext, kind, size, inode, c, m, a, h, seq, deleted):
    out = b"E" + _uuid(uuid) + _uuid(parent) + _uuid(loc)
    for s in (_bytes(name), _bytes(ext)):
        out += struct.pack("<I", len(s)) + s
    out += struct.pack("<B", kind) + struct.pack("<5q", size, inode, c, m, a)
    out += struct.pack("<I", len(_bytes(h))) + _bytes(h) + struct.pack("<qB", seq, 1 if deleted else 0)
    return out


def _location_element(uuid, root, name, seq, deleted):
    out = b"L" + _uuid(uuid)
    for s in (_bytes(root), _bytes(name)):
        out += struct.pack("<I", len(s)) + s
    return out + struct.pack("<qB", seq, 1 if deleted else 0)


def edit(dev, *statements):
    """Runs `statements` on `dev`'s library behind entrysync's back, keeping
    its stored set digests consistent as entrysync itself would: what a
    modified build, or a bug, on that device could do."""
    db = sqlite3.connect(dev.lib + "/library.db")
    deltas = {}

    def entry_fn(sign, owner, *cols):
        _lanes(deltas.setdefault(owner, [0] * 1024), _entry_element(*cols), sign)

    def location_fn(sign, owner, *cols):
        _lanes(deltas.setdefault(owner, [0] * 1024), _location_element(*cols), sign)

    db.create_function("es_digest_entry", 16, entry_fn)
    db.create_function("es_digest_location", 7, location_fn)
    # entrysync sees row changes through SQLite's pre-update hook, which
    # Python cannot set; temporary triggers on this connection do the same.
    entry_cols = ("{0}.uuid, {0}.parent, (SELECT uuid FROM location WHERE id = {0}.location), {0}.name,"
                  " {0}.extension, {0}.kind, {0}.size, {0}.inode, {0}.created_ns, {0}.modified_ns,"
                  " {0}.accessed_ns, {0}.content_hash, {0}.seq, {0}.deleted")
    loc_cols = "{0}.uuid, {0}.root_path, {0}.name, {0}.seq, {0}.deleted"
    for table, fn, cols in (("entry", "es_digest_entry", entry_cols), ("location", "es_digest_location", loc_cols)):
        old = "SELECT %s(-1, OLD.owner, %s);" % (fn, cols.format("OLD"))
        new = "SELECT %s(1, NEW.owner, %s);" % (fn, cols.format("NEW"))
        db.execute("CREATE TEMP TRIGGER %s_ins AFTER INSERT ON main.%s BEGIN %s END" % (table, table, new))
        db.execute("CREATE TEMP TRIGGER %s_upd AFTER UPDATE ON main.%s BEGIN %s %s END" % (table, table, old, new))
        db.execute("CREATE TEMP TRIGGER %s_del AFTER DELETE ON main.%s BEGIN %s END" % (table, table, old))
    try:
        for st in statements:
            db.execute(st)
        for owner, delta in deltas.items():
            row = db.execute("SELECT lthash FROM owner_digest WHERE owner = ?", (owner,)).fetchone()
            lanes = list(struct.unpack("<1024H", row[0])) if row else [0] * 1024
            lanes = [(x + d) & 0xFFFF for x, d in zip(lanes, delta)]
            db.execute("INSERT OR REPLACE INTO owner_digest(owner, lthash) VALUES(?, ?)",
                       (owner, struct.pack("<1024H", *lanes)))
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
        got = c.digest("alpha")
        self.assertTrue(got is None or got[1] == 0, "C took B's unprovable rows of A: %s" % (got,))
        # A's next real change takes the forged seq: B and C end with A's rows.
        with open(a.data + "/real-change.txt", "w") as f:
            f.write("x")
        a.rescan()
        self.assertGreaterEqual(a.max_seq(), forged_seq)  # the file, then its folder
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
        self.assertIn("was unpaired", a.log())
        for dev in (a, b, c):
            self.assertEqual(dev.stop(), 0, dev.log_tail())


if __name__ == "__main__":
    es.main()
