"""Two real daemons converge on a 100K-file tree, then on renames, a size
change, a deleted folder and an added file (rescan run by another process)."""

import os
import shutil
import time

import es


class TwoDaemons(es.EsTestCase):
    def test_100k_files_then_changes(self):
        n = es.scaled(100_000, minimum=2_000)
        a, b = self.library("alpha", "beta")
        es.pair(a, b)

        t0 = time.monotonic()
        dirs = es.make_tree(a.data, n, per_dir=1000)
        t_gen = time.monotonic() - t0
        t0 = time.monotonic()
        a.add_location()
        t_index = time.monotonic() - t0
        da = a.digest()
        expected_entries = n + len(dirs) + 1  # files, folders, the root
        self.assertEqual(da[1], expected_entries, da)

        seq = a.max_seq()
        t0 = time.monotonic()
        a.serve()
        b.serve()
        t_wm = es.wait_watermark(b, "alpha", seq, timeout=120 * es.SLOW, daemons=[a, b])
        secs, got = es.wait_digests_equal("alpha", [a, b], timeout=120 * es.SLOW, daemons=[a, b])
        t_sync = time.monotonic() - t0
        self.assertEqual(got, da)
        es.report("two daemons: %d files (%d entries): generate %.2fs, location add %.2fs, "
                  "initial sync: daemons started -> B's watermark at A's max seq %.2fs, -> digests "
                  "checked equal %.2fs" % (n, expected_entries, t_gen, t_index, t_wm, t_sync))

        # Changes on A while both daemons run; rescan from a separate process.
        d0, d1, d2, d3 = dirs[0], dirs[1], dirs[2], dirs[3]
        old = os.path.join(d0, "f00001.txt")
        renamed = os.path.join(d0, "renamed-f00001.txt")
        os.rename(old, renamed)
        modified = os.path.join(d1, "f00002.txt")
        with open(modified, "wb") as f:
            f.write(b"x" * 1234)
        deleted_files = len(os.listdir(d2))
        shutil.rmtree(d2)
        added = os.path.join(d3, "brand-new.txt")
        with open(added, "wb") as f:
            f.write(b"hello")
        t0 = time.monotonic()
        a.rescan()
        t_rescan = time.monotonic() - t0
        da2 = a.digest()
        t_wm2 = es.wait_watermark(b, "alpha", a.max_seq(), timeout=60 * es.SLOW, daemons=[a, b])
        self.assertNotEqual(da2, da)
        self.assertEqual(da2[2], expected_entries - deleted_files - 1 + 1, da2)  # live entries
        secs2, got2 = es.wait_digests_equal("alpha", [a, b], timeout=60 * es.SLOW, daemons=[a, b])
        self.assertEqual(got2, da2)
        es.report("two daemons: rescan %.2fs; B's watermark caught up %.2fs after the rescan ended"
                  % (t_rescan, t_wm2))

        # B browses A's tree with A's paths.
        ls_d0 = b.cli("ls", "--device", "alpha", d0).stdout.splitlines()
        names = [l.split("\t")[-1] for l in ls_d0]
        self.assertIn("renamed-f00001.txt", names)
        self.assertNotIn("f00001.txt", names)
        self.assertEqual(len(names), len(os.listdir(d0)))
        ls_d1 = b.cli("ls", "--device", "alpha", d1).stdout.splitlines()
        self.assertIn("file\t1234\tf00002.txt", ls_d1)
        ls_d3 = b.cli("ls", "--device", "alpha", d3).stdout.splitlines()
        self.assertIn("file\t5\tbrand-new.txt", ls_d3)
        ls_root = [l.split("\t")[-1] for l in b.cli("ls", "--device", "alpha", a.data).stdout.splitlines()]
        self.assertNotIn(os.path.basename(d2) + "/", ls_root)
        self.assertIn(os.path.basename(d3) + "/", ls_root)
        self.assertEqual(len(ls_root), len(dirs) - 1)
        # And the canonical exports are byte-identical.
        self.assertEqual(a.export(), b.export("alpha"))

        a.assert_alive()
        b.assert_alive()
        self.assertEqual(a.stop(), 0, a.log_tail())
        self.assertEqual(b.stop(), 0, b.log_tail())


if __name__ == "__main__":
    es.main()
