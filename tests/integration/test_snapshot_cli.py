"""`entrysync snapshot export / inspect / import` between real processes:
A's snapshot imported offline on B gives the same digest; truncated,
tampered, not-SQLite and other-library files are refused with one error line
and B unchanged; then A renames and deletes files and B catches up with
`sync --peer` over TLS from the snapshot's max seq (deltas only)."""

import hashlib
import json
import os
import shutil
import sqlite3
import struct
import zlib

import es

SUM_MULT = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
ENTRY_COLUMNS = ("seq", "uuid", "location", "parent", "name", "extension", "kind", "size", "inode",
                 "created_ns", "modified_ns", "accessed_ns", "content_hash", "deleted")
LOCATION_COLUMNS = ("id", "uuid", "root_path", "name", "seq", "deleted")


def table_sum(con, sql_from, columns):
    """docs/snapshot-format.md, "Content checksum": one table's sum."""
    select = ", ".join("typeof(%s), %s" % (c, c) for c in columns)
    total = 0
    for row in con.execute("SELECT %s FROM %s" % (select, sql_from)):
        buf = bytearray()
        for kind, value in zip(row[0::2], row[1::2]):
            kind = kind.decode()  # typeof() comes back as bytes too
            if kind == "integer":
                buf += b"i" + struct.pack("<q", value)
            elif kind == "real":
                buf += b"f" + struct.pack("<d", value)
            elif kind == "null":
                buf += b"n"
            else:
                data = bytes(value)  # text_factory = bytes: UTF-8 as stored
                buf += (b"t" if kind == "text" else b"b") + struct.pack("<I", len(data)) + data
        total = (total + (zlib.crc32(bytes(buf)) + 1) * SUM_MULT) & MASK64
    return total


def content_sum(path):
    """(computed, stored) content_sum of a snapshot, as unsigned 64-bit."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    con.text_factory = bytes
    try:
        s = (table_sum(con, "entry", ENTRY_COLUMNS) + 3 * table_sum(con, "location", LOCATION_COLUMNS)
             + 5 * table_sum(con, "meta WHERE key <> 'content_sum'", ("key", "value"))) & MASK64
        stored = con.execute("SELECT value FROM meta WHERE key = 'content_sum'").fetchone()[0] & MASK64
        pragmas = {p: con.execute("PRAGMA %s" % p).fetchone()[0]
                   for p in ("page_size", "application_id", "user_version")}
        return s, stored, pragmas
    finally:
        con.close()


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class SnapshotCli(es.EsTestCase):
    def refused(self, dev, args, contains):
        p = dev.cli(*args, check=False)
        with self.subTest(args=" ".join(args)):
            self.assertNotEqual(p.returncode, 0, "rc 0 for %s: %r" % (args, p.stdout))
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, "stderr of %s: %r" % (args, p.stderr))
            self.assertTrue(lines[0].startswith("entrysync: error: "), lines[0])
            self.assertIn(contains.lower(), lines[0].lower())
            self.assertEqual(p.stdout, "")
        return lines[0] if lines else ""

    def b_state(self):
        return self.b.digest("alpha"), self.b.stats()

    def assert_b_unchanged(self, what):
        self.assertEqual(self.b_state(), self.before, "B's library changed after " + what)

    def test_export_import_refusals_then_deltas(self):
        a, b = self.library("alpha", "beta")
        self.b = b
        n = es.scaled(3000, minimum=750)  # at least 3 folders: the deltas below use three
        dirs = es.make_tree(a.data, n, per_dir=250)
        a.add_location()
        da = a.digest()

        # Export: one summary line, or JSON; the file matches what it says.
        snap = os.path.join(self.tmp, "alpha.snap")
        p = a.cli("snapshot", "export", snap)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)
        self.assertIn("exported alpha to %s: %d entries" % (snap, da[1]), p.stdout)
        info = json.loads(a.cli("snapshot", "export", "--device", "alpha", "--json", snap).stdout)
        self.assertFalse(os.path.exists(snap + ".tmp"))
        self.assertEqual(info["owner"], "alpha")
        self.assertEqual(info["owner_uuid"], a.uuid)
        self.assertEqual(info["library_id"], a.library_id)
        self.assertEqual(info["entries"], da[1])
        self.assertEqual(info["locations"], 1)
        self.assertEqual(info["max_seq"], a.max_seq())
        self.assertEqual(info["size_bytes"], os.path.getsize(snap))
        self.assertEqual(info["sha256"], sha256_file(snap))
        # The documented format: PRAGMAs and a content checksum recomputed
        # independently of the C++ code (docs/snapshot-format.md).
        computed, stored, pragmas = content_sum(snap)
        self.assertEqual(computed, stored, "content_sum as documented")
        self.assertEqual(pragmas["page_size"], 4096)
        self.assertEqual(pragmas["application_id"], 0x45534E50)
        self.assertEqual(pragmas["user_version"], 1)
        with open(snap, "rb") as f:
            header = f.read(100)
        self.assertEqual(header[18:20], b"\x01\x01", "rollback journal, not WAL")

        # Inspect needs no library and says what export said.
        seen = json.loads(es.run(["snapshot", "inspect", "--json", snap]).stdout)
        for k in ("owner", "owner_uuid", "library_id", "exported_by", "epoch", "max_seq", "entries",
                  "locations", "size_bytes", "sha256"):
            self.assertEqual(seen[k], info[k], k)
        self.assertIn(info["sha256"], es.run(["snapshot", "inspect", snap]).stdout)
        self.refused(a, ["snapshot", "export", "--device", "nobody", snap], "nobody")
        self.assertEqual(sha256_file(snap), info["sha256"])

        # Offline import on B (of the same library, never synced with A).
        self.assertIsNone(b.digest("alpha"))
        p = b.cli("snapshot", "import", snap)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)
        self.assertIn("imported alpha from %s: %d rows written" % (snap, info["entries"] + 1), p.stdout)
        self.assertIn(", 0 replaced,", p.stdout)
        self.assertEqual(b.digest("alpha"), da)
        self.assertEqual(b.watermark("alpha"), info["max_seq"])
        self.before = self.b_state()
        self.assertEqual(self.before[1]["rows_applied_total"], info["entries"] + 1)

        # Refusals: one error line, non-zero exit, B unchanged.
        with open(snap, "rb") as f:
            data = f.read()

        def write(name, content):
            path = os.path.join(self.tmp, name)
            with open(path, "wb") as f:
                f.write(content)
            return path

        cut = write("cut.snap", data[: len(data) // 2 + 17])
        # A byte of row data near the middle (a file name), caught by the
        # content checksum; a byte exactly in the middle, caught by --sha256.
        at = data.find(b"f0", len(data) // 2)
        self.assertGreater(at, 0)
        flipped = bytearray(data)
        flipped[at + 1] ^= 0x01
        tampered = write("tampered.snap", bytes(flipped))
        middle = bytearray(data)
        middle[len(data) // 2] ^= 0x01
        mid = write("middle.snap", bytes(middle))
        junk = write("junk.snap", os.urandom(16384))
        stranger = self.device("stranger")  # another library
        es.make_tree(stranger.data, 50, per_dir=50)
        stranger.add_location()
        foreign = os.path.join(self.tmp, "stranger.snap")
        stranger.cli("snapshot", "export", foreign)

        for path, contains in ((cut, "truncated"), (tampered, "checksum"), (junk, "not a sqlite file")):
            line = self.refused(b, ["snapshot", "import", path], path)
            self.assertIn(contains, line.lower())
            self.refused(b, ["snapshot", "inspect", path], path)
            self.assert_b_unchanged("importing " + path)
        self.refused(b, ["snapshot", "import", "--sha256", info["sha256"], mid], "sha-256 mismatch")
        self.assert_b_unchanged("importing the copy flipped in the middle")
        self.refused(b, ["snapshot", "import", foreign], "library")
        self.assert_b_unchanged("importing another library's snapshot")
        self.assertIsNone(b.digest("stranger"))
        self.refused(b, ["snapshot", "import", snap], "already current")
        self.refused(a, ["snapshot", "import", snap], "own index")
        self.assertEqual(a.digest(), da)
        self.refused(b, ["snapshot", "import", os.path.join(self.tmp, "missing.snap")], "no such file")
        # While a daemon runs on the library, the daemon imports (and refuses) it.
        b.serve()
        self.refused(b, ["snapshot", "import", snap], "already current")
        self.assertIn("control: import_snapshot for pid", b.log())
        b.stop()
        self.assert_b_unchanged("the refusals")

        # A renames and deletes; B syncs over TLS and pulls only the deltas.
        d0, d1 = dirs[0], dirs[1]
        renamed = 0
        for name in sorted(os.listdir(d0))[:10]:
            os.rename(os.path.join(d0, name), os.path.join(d0, "renamed-" + name))
            renamed += 1
        deleted = 0
        for name in sorted(os.listdir(d1))[:15]:
            os.remove(os.path.join(d1, name))
            deleted += 1
        deleted_dir = len(os.listdir(dirs[2])) + 1
        shutil.rmtree(dirs[2])
        a.rescan()
        da2 = a.digest()
        self.assertNotEqual(da2, da)
        # Paired only now: a pairing made before the import would leave B a
        # second, empty device row named 'alpha' until the first Hello.
        es.pair(a, b)
        a.serve()
        p = b.cli("sync", "--peer", "alpha", "--json", "--timeout", str(60 * es.SLOW))
        # The JSON summary is the last line (sync's log lines go to stdout too).
        summary = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual(b.digest("alpha"), da2)
        self.assertEqual(b.export("alpha"), a.export())
        self.assertEqual(b.watermark("alpha"), a.max_seq())
        # Only rows above the snapshot's max seq moved (renamed files and
        # their folder, tombstones), not the whole index again.
        changed = a.max_seq() - info["max_seq"]
        self.assertGreaterEqual(changed, renamed + deleted + deleted_dir)
        self.assertLessEqual(summary["rows_applied"], changed + 1)
        self.assertNotIn("snapshot", [t["strategy"] for t in summary["transfers"]])
        self.assertEqual(b.stats()["rows_applied_total"], info["entries"] + 1 + summary["rows_applied"])
        es.report("snapshot cli: %d entries, %d bytes; deltas after import: %d rows"
                  % (info["entries"], info["size_bytes"], summary["rows_applied"]))


if __name__ == "__main__":
    es.main()
